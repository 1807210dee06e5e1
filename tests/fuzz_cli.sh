#!/usr/bin/env bash
# `bpfsim fuzz` as a user runs it: the planted bug of corpus/fuzz/telemetry.c found within a
# minute with its source line, its reproducer replayed by `bpfsim run --input`, a clean program
# with no finding, a memory fault (--no-verify), a budget and an assertion finding, -jobs=2,
# --corpus-of-programs with shards, and clear errors for bad options.
# Usage: fuzz_cli.sh BPFSIM SOURCE_DIR CORPUS_DIR
set -uo pipefail
BPFSIM=$1
SRC=$2
CORPUS=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fails=0
passes=0
pass() { echo "ok   $1"; passes=$((passes + 1)); }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

TM=$CORPUS/fuzz_telemetry.o
# The lines of walk_record(), where the planted loop runs out of budget.
first=$(grep -n '^static long walk_record' "$SRC/corpus/fuzz/telemetry.c" | cut -d: -f1)
last=$(awk -v f="$first" 'NR > f && /^}/ { print NR; exit }' "$SRC/corpus/fuzz/telemetry.c")

# 1. The planted bug, from a plain UDP seed, within 60 s.
start=$(date +%s)
"$BPFSIM" fuzz "$TM" --prog tm_collect --time 60s -seed=1 -artifact_prefix="$T/" >out.txt 2>err.txt
rc=$?
secs=$(( $(date +%s) - start ))
check "planted bug: exit status 1 (was $rc)" test "$rc" -eq 1
check "planted bug: found in ${secs} s (< 60)" test "$secs" -lt 60
check "planted bug: reported as the instruction budget" grep -q '^==bpfsim fuzz== finding: instruction budget exhausted' err.txt
line=$(sed -n 's/^  source:  .*telemetry\.c:\([0-9]*\):.*/\1/p' err.txt | head -1)
check "planted bug: source line ${line:-none} is in walk_record (lines $first-$last)" test -n "$line" -a "${line:-0}" -ge "$first" -a "${line:-0}" -le "$last"
repro=$(sed -n 's/^  reproducer: \([^ ]*\) .*/\1/p' err.txt | head -1)
check "planted bug: libFuzzer wrote the reproducer the report names" test -n "$repro" -a -f "$repro"
check "planted bug: the report gives the replay command" grep -q "^  replay:  bpfsim run .*fuzz_telemetry.o --prog tm_collect --input $repro" err.txt

# 2. The reproducer replays: the same finding, the same line, a non-zero exit.
"$BPFSIM" run "$TM" --prog tm_collect --input "$repro" >replay.txt 2>&1
rc=$?
check "replay: exit status 1 (was $rc)" test "$rc" -eq 1
check "replay: the same finding" grep -q '^==bpfsim fuzz== finding: instruction budget exhausted' replay.txt
check "replay: the same source line" grep -q "^  source:  .*telemetry\.c:$line:" replay.txt
check "replay: the run itself stops at the budget" grep -q 'instruction budget of .* exhausted' replay.txt
# The same bytes as a plain packet say nothing about findings; a file that is no reproducer of
# anything (a normal datagram) replays clean.
printf '\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00' >plain.bin
"$BPFSIM" run "$TM" --prog tm_collect --input plain.bin >plain.txt 2>&1
check "replay of a harmless input: exit 0 and 'no finding'" test $? -eq 0 -a -n "$(grep -x 'no finding' plain.txt)"

# 3. A clean program fuzzed for a few seconds: no finding, exit 0, coverage reported.
"$BPFSIM" fuzz "$CORPUS/xdp_counter.o" --prog xdp_count --time 3s >clean.txt 2>&1
rc=$?
check "clean program: exit 0 (was $rc)" test "$rc" -eq 0
check "clean program: 'no finding' with coverage" grep -Eq '^bpfsim fuzz: no finding in [0-9]+ runs .* instructions of .xdp_count. covered' clean.txt
check "clean program: no finding report" test -z "$(grep '==bpfsim fuzz== finding' clean.txt)"

# 4. A memory fault in a program the verifier rejects: refused without --no-verify, found with it.
"$BPFSIM" fuzz "$CORPUS/fuzz_oob.o" --time 5s >oob0.txt 2>&1
rc=$?
check "rejected program: refused with the verdict (exit $rc)" test "$rc" -eq 1 -a -n "$(grep 'the verifier model rejects .oob_read.' oob0.txt)"
"$BPFSIM" fuzz "$CORPUS/fuzz_oob.o" --no-verify --time 30s -artifact_prefix="$T/oob-" >oob.txt 2>&1
rc=$?
check "memory fault: exit 1 (was $rc)" test "$rc" -eq 1
check "memory fault: reported with the faulting line" grep -q '^  source:  .*oob\.c:[0-9]*: .*return p\[16 + off \* 8\]' oob.txt
orepro=$(sed -n 's/^  reproducer: \([^ ]*\) .*/\1/p' oob.txt | head -1)
"$BPFSIM" run "$CORPUS/fuzz_oob.o" --prog oob_read --no-verify --input "$orepro" >oobr.txt 2>&1
check "memory fault: replays (exit $?)" grep -q '^==bpfsim fuzz== finding: memory fault' oobr.txt

# 5. The instruction budget as an option: any packet needs more than 20 instructions.
"$BPFSIM" fuzz "$CORPUS/xdp_counter.o" --prog xdp_count --budget 20 --runs 100 -artifact_prefix="$T/b-" >budget.txt 2>&1
check "--budget 20: a budget finding (exit $?)" grep -q '^==bpfsim fuzz== finding: instruction budget exhausted' budget.txt
check "--budget 20: the replay command carries --budget" grep -q '^  replay:  .* --budget 20 --input' budget.txt

# 6. A scenario's fuzz: invariants; the step's own packets are the seeds.
cat >scen.yaml <<EOF
object: $TM
steps:
  - name: version 1
    run: tm_collect
    packet: 02000000000202000000000108004500002412340000401154930a0000010a0000029c401e6100100000544d010300000000
    fuzz:
      return: TC_ACT_OK
EOF
"$BPFSIM" fuzz "$TM" --scenario scen.yaml --time 30s -artifact_prefix="$T/a-" >assert.txt 2>&1
rc=$?
check "assertion: exit 1 (was $rc)" test "$rc" -eq 1
check "assertion: a return outside fuzz.return" grep -q "^  what:    return: 2 (TC_ACT_SHOT) is not one of fuzz.return \[TC_ACT_OK\]" assert.txt
check "assertion: the exit it returned by, with its line" grep -q '^  source:  .*telemetry\.c:[0-9]*' assert.txt
arepro=$(sed -n 's/^  reproducer: \([^ ]*\) .*/\1/p' assert.txt | head -1)
"$BPFSIM" run "$TM" --scenario scen.yaml --step 1 --input "$arepro" >assertr.txt 2>&1
check "assertion: replays with the scenario (exit $?)" grep -q 'finding: scenario assertion failed' assertr.txt
cat >badscen.yaml <<EOF
object: $TM
steps:
  - run: tm_collect
    packet: "00"
    fuzz:
      return: [TC_ACT_OK, NOT_AN_ACTION]
EOF
"$BPFSIM" fuzz "$TM" --scenario badscen.yaml --runs 1 >bad.txt 2>&1
check "a bad fuzz: block names file:line (exit $?)" grep -q "badscen.yaml:6: fuzz.return: 'NOT_AN_ACTION' is neither a number nor a known action" bad.txt

# 7. -jobs=2: two libFuzzer jobs re-run bpfsim with bpfsim's options from the environment.
mkdir jobs && (cd jobs && "$BPFSIM" fuzz "$CORPUS/xdp_counter.o" --prog xdp_count -jobs=2 -runs=3000 >out.txt 2>&1)
rc=$?
check "-jobs=2: exit 0 (was $rc)" test "$rc" -eq 0
for j in 0 1; do
    check "-jobs=2: job $j fuzzed xdp_count" grep -q "^bpfsim fuzz: no finding in 3000 runs .* of 'xdp_count' covered" "jobs/fuzz-$j.log"
done

# 8. --corpus-of-programs: progress, the table, totals; shards cover every program once.
mkdir objs
cp "$CORPUS/xdp_counter.o" "$CORPUS/sock_filter.o" "$CORPUS/fuzz_oob.o" "$CORPUS/tc_rewrite.o" objs/
"$BPFSIM" fuzz --corpus-of-programs objs --runs 5000 --out co >table.txt 2>progress.txt
rc=$?
check "corpus: exit 0 (findings only in a rejected program; was $rc)" test "$rc" -eq 0
check "corpus: the table header" grep -Eq '^object +program +type +verdict +runs +covered +findings' table.txt
check "corpus: a progress line per program" test "$(grep -c '^\[[0-9]*/[0-9]*\] ' progress.txt)" -eq "$(grep -c '^[a-z_]*\.o ' table.txt)"
check "corpus: the rejected program's memory fault" grep -Eq '^fuzz_oob\.o +oob_read +xdp +rejected +[0-9]+ +[0-9.]+% +memory fault' table.txt
check "corpus: the totals line" grep -Eq '^[0-9]+ programs: [0-9]+ accepted, 1 rejected by the verifier model, 0 errors; 1 findings \(0 in accepted programs\)' table.txt
check "corpus: the finding's reproducer is kept" test -f "$(sed -n 's/^  reproducer: //p' table.txt | head -1)"
"$BPFSIM" fuzz --corpus-of-programs objs --list >all.txt
: >shards.txt
for i in 1 2 3; do
    "$BPFSIM" fuzz --corpus-of-programs objs --runs 200 --shard $i/3 --out "sh$i" >"sh$i.txt" 2>/dev/null
    grep -E '^[a-z_]+\.o ' "sh$i.txt" | awk '{ print $1, $2 }' >>shards.txt
done
check "corpus: shards 1/3..3/3 run every program exactly once" diff <(sort all.txt) <(sort shards.txt)
check "corpus: the list has every program" test "$(wc -l <all.txt)" -eq 4

# 9. Bad options: clear errors, exit status 2.
expect_usage() {   # WHAT MESSAGE ARGS...
    local what=$1 msg=$2; shift 2
    "$BPFSIM" "$@" >err.txt 2>&1
    local rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$msg" err.txt; then pass "$what"; else fail "$what (exit $rc: $(head -2 err.txt))"; fi
}
expect_usage "--time with a bad unit" "--time '10x'" fuzz "$TM" --time 10x
expect_usage "--shard out of range" "--shard '3/2'" fuzz --corpus-of-programs objs --shard 3/2
expect_usage "--shard without the corpus" "--shard goes with --corpus-of-programs" fuzz "$TM" --shard 1/2
expect_usage "--fuzz-map of no map" "no map 'nosuch'" fuzz "$TM" --fuzz-map nosuch
expect_usage "--fuzz-map of a bad count" "NAME:N with 1 <= N" fuzz "$TM" --fuzz-map kinds:0
expect_usage "no object" "give an object file" fuzz --time 1s
expect_usage "--step that does not exist" "no step named 'nosuch'" fuzz "$TM" --scenario scen.yaml --step nosuch
expect_usage "run --input on a bare program" "run --input replays" run "$SRC/tests/fuzz_cli.sh" --input plain.bin
"$BPFSIM" fuzz --corpus-of-programs "$T/nonexistent" >err.txt 2>&1
check "--corpus-of-programs of no directory: exit 1, named" test $? -eq 1 -a -n "$(grep 'nonexistent.*not a directory' err.txt)"
"$BPFSIM" run "$TM" --prog tm_collect --input "$T/nonexistent.bin" >err.txt 2>&1
check "run --input of no file: exit 1, named" test $? -eq 1 -a -n "$(grep 'nonexistent.bin.*cannot open' err.txt)"

echo "fuzz-cli: $passes passed, $fails failed"
exit $(( fails > 0 ))
