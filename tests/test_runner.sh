#!/usr/bin/env bash
# `bpfsim test` as CI runs it: tests/scenarios/ (passing, deliberately failing and broken
# scenarios) and the seed demo. Checks the summary, exit codes, the failure diffs, JUnit
# (well-formed, with xmllint), TAP, -j N against -j 1, shards merged against one run, and the
# lcov tracefile of --coverage (lcov --summary, genhtml).
# usage: test_runner.sh BPFSIM SOURCE_DIR CORPUS_DIR
set -uo pipefail
bpfsim=$1
src=$2
corpus=$3
scen=$src/tests/scenarios
demo=$src/corpus/demo/trace_exec.yaml

for tool in xmllint lcov genhtml python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test_runner: skipped: '$tool' is not installed (scripts/install-deps.sh installs it)"
    exit 77
  fi
done
for obj in xdp_counter.o trace_exec.o vmlinux-6.18.44.btf old_task_struct.o feat_annotations.o; do
  if [ ! -f "$corpus/$obj" ]; then
    echo "test_runner: $corpus/$obj is missing (build the bpf_corpus target)" >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
# check DESCRIPTION COMMAND...: the command must succeed.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# contains FILE TEXT: FILE has the fixed string TEXT.
contains() { grep -qF -- "$2" "$1"; }
# run NAME EXPECTED_EXIT ARGS...: runs bpfsim test, stdout in $tmp/NAME.out, stderr in .err.
run() {
  local name=$1 want=$2
  shift 2
  "$bpfsim" test "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "$name: exit code $rc, expected $want"
    sed 's/^/    /' "$tmp/$name.err" | head -20
  else
    pass "$name: exit code $rc"
  fi
}
# no_time FILE: the report without its timings, which differ from run to run.
no_time() { sed -E 's/ time="[0-9.]+"//g; s/"duration_ns": [0-9]+/"duration_ns": 0/' "$1"; }

# ── the whole set: 15 cases in tests/scenarios, 6 in the demo (3 steps x 2 kernel BTFs) ──
run all 1 "$scen" "$demo" -I "$corpus" --junit "$tmp/all.xml" --json "$tmp/all.json"
check "all: summary line" contains "$tmp/all.out" "14 passed, 7 failed"
check "all: one line per case" test "$(grep -cE '^(ok  |FAIL) ' "$tmp/all.out")" -eq 21
check "all: a passing case" contains "$tmp/all.out" "ok   xdp/counter.yaml: ipv4 tcp passes and is logged once"
check "all: cases per kernel BTF" contains "$tmp/all.out" "ok   trace_exec.yaml: bash runs ls [old_task_struct.o]"
check "all: return value diff" contains "$tmp/all.out" "return: expected XDP_PASS, got 1 (XDP_DROP)"
# The trace diff: the regex line matched, the exact one did not.
sed -n '/FAIL xdp\/blocked_dns.yaml: WRONG tcp logged/,/^[^ ]/p' "$tmp/all.out" >"$tmp/diff.txt"
check "all: trace diff header" contains "$tmp/diff.txt" "trace: expected and actual differ"
check "all: trace diff, the expected line" contains "$tmp/diff.txt" "-first ipv4 packet: proto 17 len 54"
check "all: trace diff, the line /regex/ matched" grep -qE '^     first ipv4 packet: proto 6 len 54$' "$tmp/diff.txt"
check "all: trace diff, no other line" test "$(sed -n '/^    +++ actual/,/^    trace_pipe:/p' "$tmp/diff.txt" | wc -l)" -eq 4
check "all: trace diff per BTF, actual" test "$(grep -cxF '    +exec: 4242 sh' "$tmp/all.out")" -eq 2
check "all: trace diff per BTF, expected" test "$(grep -cxF '    -exec: 4243 sh' "$tmp/all.out")" -eq 2
check "all: a load error names file and line" grep -qE 'FAIL broken/bad_syntax.yaml: \(load\)' "$tmp/all.out"
check "all: ... with the line" grep -qE 'bad_syntax.yaml:6.*XDP_MAYBE' "$tmp/all.out"
check "all: a run error" grep -qE "no_such_program" "$tmp/all.out"
check "all: a step after an error is not run" contains "$tmp/all.out" "not run: an earlier step stopped the scenario"

# JUnit: well-formed, and the counts.
check "junit: well-formed (xmllint)" xmllint --noout "$tmp/all.xml"
check "junit: totals" contains "$tmp/all.xml" '<testsuites name="bpfsim test" tests="21" failures="4" errors="3"'
check "junit: one <failure> per failed case" test "$(grep -c '<failure ' "$tmp/all.xml")" -eq 4
check "junit: one <error> per broken case" test "$(grep -c '<error ' "$tmp/all.xml")" -eq 3
check "junit: one testsuite per scenario x BTF" test "$(grep -c '<testsuite ' "$tmp/all.xml")" -eq 8
check "junit: xmllint counts the failures too" test "$(xmllint --xpath 'count(//testcase[failure or error])' "$tmp/all.xml")" = 7
check "json: summary" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
assert (s["total"], s["passed"], s["failed"], s["errors"]) == (21, 14, 7, 3), s
assert r["shard"] is None and r["units"] == 8
assert "coverage" not in r' "$tmp/all.json"

# Only passing scenarios: exit 0.
run pass 0 "$scen/xdp/counter.yaml" "$demo" -I "$corpus"
check "pass: summary" contains "$tmp/pass.out" "10 passed, 0 failed"
# Errors in the command itself: exit 2 with a message.
run nothing 2 "$tmp" -I "$corpus"
check "no scenarios: message" contains "$tmp/nothing.err" "no scenario"
run badshard 2 "$scen" -I "$corpus" --shard 3/2
check "bad shard: message" contains "$tmp/badshard.err" "1 <= I <= N"

# TAP: the plan, one line per case, the diagnostics of a failure.
run tap 1 "$scen" "$demo" -I "$corpus" --tap
check "tap: version and plan" test "$(head -2 "$tmp/tap.out" | tr '\n' ' ')" = "TAP version 13 1..21 "
check "tap: ok lines" test "$(grep -cE '^ok [0-9]+ - ' "$tmp/tap.out")" -eq 14
check "tap: not ok lines" test "$(grep -cE '^not ok [0-9]+ - ' "$tmp/tap.out")" -eq 7
check "tap: numbered 1..21" test "$(grep -oE '^(not )?ok [0-9]+' "$tmp/tap.out" | awk '{print $NF}' | tr '\n' ' ')" = "$(seq 1 21 | tr '\n' ' ')"
check "tap: YAML diagnostics" contains "$tmp/tap.out" "  severity: fail"

# -j 2 (and -j 4): the same output, in the same order, as -j 1.
run j1 1 "$scen" "$demo" -I "$corpus" -j 1 --junit "$tmp/j1.xml" --json "$tmp/j1.json"
run j2 1 "$scen" "$demo" -I "$corpus" -j 2 --junit "$tmp/j2.xml" --json "$tmp/j2.json"
run j4 1 "$scen" "$demo" -I "$corpus" -j 4
check "-j 2: output identical to -j 1" cmp -s "$tmp/j1.out" "$tmp/j2.out"
check "-j 4: output identical to -j 1" cmp -s "$tmp/j1.out" "$tmp/j4.out"
check "-j 2: JUnit identical but for times" cmp -s <(no_time "$tmp/j1.xml") <(no_time "$tmp/j2.xml")
check "-j 2: JSON identical but for times" cmp -s <(no_time "$tmp/j1.json") <(no_time "$tmp/j2.json")

# Shards: 1/2 and 2/2 split the units, together they are the whole run.
run shard1 1 "$scen" "$demo" -I "$corpus" --shard 1/2 --json "$tmp/s1.json"
run shard2 1 "$scen" "$demo" -I "$corpus" --shard 2/2 --json "$tmp/s2.json"
n1=$(grep -cE '^(ok  |FAIL) ' "$tmp/shard1.out")
n2=$(grep -cE '^(ok  |FAIL) ' "$tmp/shard2.out")
check "shards: both have cases ($n1 + $n2)" test "$n1" -gt 0 -a "$n2" -gt 0
check "shards: the cases add up" test $((n1 + n2)) -eq 21
check "shards: no case in both" test -z "$(comm -12 <(grep -E '^(ok  |FAIL) ' "$tmp/shard1.out" | sort) <(grep -E '^(ok  |FAIL) ' "$tmp/shard2.out" | sort))"
run merge 1 --merge "$tmp/s2.json" "$tmp/s1.json" --junit "$tmp/merged.xml" --json "$tmp/merged.json"
check "merge: output identical to the unsharded run" cmp -s "$tmp/all.out" "$tmp/merge.out"
check "merge: JUnit identical but for times" cmp -s <(no_time "$tmp/all.xml") <(no_time "$tmp/merged.xml")
check "merge: JSON identical but for times" cmp -s <(no_time "$tmp/all.json") <(no_time "$tmp/merged.json")
check "merge: JUnit well-formed" xmllint --noout "$tmp/merged.xml"
run merge_missing 2 --merge "$tmp/s1.json"
check "merge: a missing shard is named" contains "$tmp/merge_missing.err" "shard 2/2 is missing"
run merge_twice 1 --merge "$tmp/s1.json" "$tmp/s1.json"
check "merge: a repeated shard is named" contains "$tmp/merge_twice.err" "shard 1/2 is also"

# --filter and --list.
run filter 1 "$scen" -I "$corpus" --filter WRONG
check "filter: only matching cases" test "$(grep -cE '^(ok  |FAIL) ' "$tmp/filter.out")" -eq 5
check "filter: summary" contains "$tmp/filter.out" "0 passed, 5 failed"
run list 1 "$scen" "$demo" -I "$corpus" --list
check "list: every case (and the broken file on stderr)" test "$(wc -l <"$tmp/list.out")" -eq 21

# Coverage: an lcov tracefile of the BPF C source that lcov and genhtml accept.
run cov 1 "$scen" "$demo" -I "$corpus" --coverage "$tmp/lcov.info" --json "$tmp/cov.json" -j 2
check "coverage: summary line" grep -qE '^coverage: lines [0-9]+/[0-9]+' "$tmp/cov.out"
check "coverage: the sources" contains "$tmp/lcov.info" "SF:$src/corpus/net/xdp_counter.c"
check "coverage: ... both of them" contains "$tmp/lcov.info" "SF:$src/corpus/demo/trace_exec.c"
lcov_summary() { lcov --summary "$1" >"$2" 2>&1; }
check "coverage: lcov --summary reads it" lcov_summary "$tmp/lcov.info" "$tmp/lcov.summary"
check "coverage: lcov --summary lines" grep -qE 'lines\.+: [0-9.]+% \([0-9]+ of [0-9]+ lines\)' "$tmp/lcov.summary"
html() { genhtml --branch-coverage -o "$1" "$2" >"$1.log" 2>&1; }
check "coverage: genhtml renders it" html "$tmp/html" "$tmp/lcov.info"
check "coverage: genhtml wrote the index" test -s "$tmp/html/index.html"
read -r lh lf < <(sed -nE 's|^coverage: lines ([0-9]+)/([0-9]+).*|\1 \2|p' "$tmp/cov.out")
check "coverage: genhtml counted the lines bpfsim did ($lh of $lf)" grep -qE "lines\.+: [0-9.]+% \(${lh:-x} of ${lf:-x} lines\)" "$tmp/html.log"
read -r bh bf < <(sed -nE 's|^coverage: .*branches ([0-9]+)/([0-9]+).*|\1 \2|p' "$tmp/cov.out")
check "coverage: genhtml counted the branches bpfsim did ($bh of $bf)" grep -qE "branches\.+: [0-9.]+% \(${bh:-x} of ${bf:-x} branches\)" "$tmp/html.log"
check "coverage: lcov --summary too" grep -qE "lines\.+: [0-9.]+% \(${lh:-x} of ${lf:-x} lines\)" "$tmp/lcov.summary"
check "coverage: genhtml has a page for the source" test -n "$(find "$tmp/html" -name 'xdp_counter.c.gcov.html')"
# Same totals with -j 1; the JSON carries instruction and branch coverage.
run cov1 1 "$scen" "$demo" -I "$corpus" --coverage "$tmp/lcov1.info" -j 1
check "coverage: -j 2 tracefile identical to -j 1" cmp -s "$tmp/lcov.info" "$tmp/lcov1.info"
check "coverage: JSON" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["coverage"]
t = r["total"]
for k in ("instructions", "branches", "lines", "functions"):
    assert 0 < t[k]["covered"] <= t[k]["total"], (k, t[k])
assert t["branches"]["covered"] < t["branches"]["total"], t
names = {p["program"] for p in r["programs"]}
assert {"xdp_count", "trace_exec"} <= names, names
lcov = open(sys.argv[2]).read()
lf = sum(int(l[3:]) for l in lcov.splitlines() if l.startswith("LF:"))
lh = sum(int(l[3:]) for l in lcov.splitlines() if l.startswith("LH:"))
assert (lf, lh) == (t["lines"]["total"], t["lines"]["covered"]), (lf, lh, t["lines"])' "$tmp/cov.json" "$tmp/lcov.info"

# ── an object's own expectations: bpf_misc.h annotations (__retval, __failure, ...) ──
run annotated 0 "$corpus/feat_annotations.o" --junit "$tmp/annotated.xml" --tap
check "annotations: TAP plan" contains "$tmp/annotated.out" "1..4"
check "annotations: __retval checked" contains "$tmp/annotated.out" "ok 3 - feat_annotations.o: socket: returns the packet's length"
check "annotations: __failure/__msg checked by the verifier model" \
  grep -qE "^ok 2 - feat_annotations.o: xdp: reads a packet byte past data_end$" "$tmp/annotated.out"
check "annotations: summary" contains "$tmp/annotated.out" "# 4 passed, 0 failed"
check "annotations: JUnit well-formed" xmllint --noout "$tmp/annotated.xml"
check "annotations: JUnit has no failure" test "$(xmllint --xpath 'count(//testcase/failure)' "$tmp/annotated.xml")" = 0
# A wrong verifier expectation fails with what the model said.
printf 'object: %s\nsteps:\n  - name: expects a rejection of an accepted program\n    run: xdp_count\n    expect:\n      verifier: {verdict: reject, messages: ["R0 !read_ok"]}\n' \
  "$corpus/xdp_counter.o" > "$tmp/verdict.yaml"
run verdict 1 "$tmp/verdict.yaml"
check "verifier: a wrong expectation fails" contains "$tmp/verdict.out" 'verifier: expected a rejection with "R0 !read_ok", but the program is accepted'
run unannotated 1 "$corpus/xdp_counter.o"
check "annotations: an object without them is an error case" contains "$tmp/unannotated.out" "no program has test annotations"

# ── --btf-matrix: every scenario against every kernel BTF of a directory ──
mkdir -p "$tmp/kernels"
cp "$corpus/vmlinux-6.18.44.btf" "$corpus/old_task_struct.o" "$tmp/kernels/"
run matrix 0 "$demo" -I "$corpus" --btf-matrix "$tmp/kernels"
check "btf-matrix: 3 steps x 2 kernels" contains "$tmp/matrix.out" "6 passed, 0 failed"
check "btf-matrix: one result per kernel" test "$(grep -c '\[old_task_struct.o\]' "$tmp/matrix.out")" -eq 3
mkdir -p "$tmp/empty"
run matrix_empty 2 "$demo" -I "$corpus" --btf-matrix "$tmp/empty"
check "btf-matrix: an empty directory is refused" contains "$tmp/matrix_empty.err" "no kernel BTF files"

echo
if [ "$failures" -ne 0 ]; then
  echo "test_runner: $failures check(s) failed"
  exit 1
fi
echo "test_runner: all checks passed"
