#!/usr/bin/env bash
# `bpfsim bench`: the interpreter and JIT rows, --engine, Google Benchmark JSON (and compare.py,
# where Debian's libbenchmark-tools and python3-scipy are installed), the profile of the parser
# kernel (its hottest source line, and line counts that agree with the instruction counts),
# helper time of a program that calls helpers, and clear errors on bad input.
set -u
bpfsim=$1 src=$2 corpus=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
quick=(--repetitions 3 --min-time 0.01)

# expect NAME WANT_RC PATTERN -- CMD...: exit code WANT_RC and PATTERN in stdout+stderr.
expect() {
  local name=$1 want=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then ok; else bad "$name: rc=$rc (want $want), output: $out"; fi
}

# The parser kernel's input, as bench/bench_interp.cpp's parser_input() builds it: 64 packets of
# 128 bytes from splitmix64 (seed 7), with VLAN tags, IPv4 (options, fragments, bad lengths),
# IPv6 and ARP headers written over the random bytes.
python3 - "$tmp/parser.bin" <<'EOF'
import sys
M = (1 << 64) - 1
state = 7
def splitmix():
    global state
    state = (state + 0x9e3779b97f4a7c15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
m = bytearray(64 * 128)
for n in range(64):
    p = n * 128
    for i in range(128):
        m[p + i] = splitmix() & 0xff
    off = 12
    kind = splitmix() % 16
    vlans = 1 if kind % 3 == 0 else 2 if kind % 5 == 0 else 0
    for v in range(vlans):
        m[p + off] = 0x88 if v == 0 and vlans == 2 else 0x81
        m[p + off + 1] = 0xa8 if v == 0 and vlans == 2 else 0x00
        off += 4
    l4 = [6, 17, 1, 6, 17, 58, 47, 6][splitmix() % 8]
    if kind < 9:
        m[p + off], m[p + off + 1] = 0x08, 0x00
        off += 2
        m[p + off] = 0x40 | (7 if kind == 4 else 5)
        if kind == 8:
            m[p + off] = 0x35
        m[p + off + 6] = 0x20 if kind == 7 else 0x40
        m[p + off + 7] = 0
        m[p + off + 9] = 1 if l4 == 58 else l4
    elif kind < 14:
        m[p + off], m[p + off + 1] = 0x86, 0xdd
        off += 2
        m[p + off] = 0x45 if kind == 13 else 0x60
        m[p + off + 6] = l4
    else:
        m[p + off], m[p + off + 1] = 0x08, 0x06
open(sys.argv[1], "wb").write(m)
EOF
kernels=$corpus/bench_kernels.o

# Both engines side by side: a row each, with positive ns/run, insns/run and ns/insn.
"$bpfsim" bench "$kernels" --prog parser --mem-file "$tmp/parser.bin" --profile --top 0 "${quick[@]}" > "$tmp/parser.txt" 2>&1
rc=$?
rows() { awk '$1 == "interp" || $1 == "jit"' "$1"; }
if [ $rc -eq 0 ] && [ "$(rows "$tmp/parser.txt" | wc -l)" -eq 2 ] &&
   rows "$tmp/parser.txt" | awk '!($3 > 0 && $6 > 0 && $7 > 0 && $8 > 0) { bad = 1 } END { exit bad }'; then ok
else bad "parser: want an interp and a jit row with positive numbers (rc=$rc): $(cat "$tmp/parser.txt")"; fi
expect parser-jit-mode 0 "^jit: checked: the verifier model checks a program against its context" -- cat "$tmp/parser.txt"
expect parser-reset 0 "^put back before every run: the input memory \(8192 bytes\)" -- cat "$tmp/parser.txt"
# The JIT follows the interpreter's path: both rows count the same instructions, the reference run's.
insns=$(sed -n 's/^result: .*, \([0-9]*\) instructions per run$/\1/p' "$tmp/parser.txt")
if [ -n "$insns" ] && [ "$(rows "$tmp/parser.txt" | awk -v n="$insns" '$7 == n' | wc -l)" -eq 2 ]; then ok
else bad "parser: insns/run of both rows should be the reference run's ($insns)"; fi

# The profile: its first source line is the parser's hottest, in kernels.c inside the parser's
# body or in a static inline function the body calls (be16 is inlined into it, and line_info
# gives inlined code the line of the function it came from); the line's count is that of its
# most executed instruction, and its insns the sum, as the instruction rows show them.
python3 - "$tmp/parser.txt" "$src/corpus/bench/kernels.c" <<'EOF' && ok || bad "parser profile (see above)"
import re, sys
text = open(sys.argv[1]).read().splitlines()
source = open(sys.argv[2]).read().splitlines()
head = next(i for i, l in enumerate(text) if l.startswith("source line (hottest first)"))
first = text[head + 1].split()
loc, count, insns = first[0], float(first[1]), float(first[2])
m = re.search(r"kernels\.c:(\d+)$", loc)
assert m, f"the hottest line is not in kernels.c: {text[head + 1]}"
line = int(m.group(1))
# The parser's body, and the static inline functions it calls.
start = next(i for i, l in enumerate(source, 1) if l.startswith("KERNEL(parser)"))
end = next(i for i, l in enumerate(source, 1) if i > start and l.startswith("}"))
body = "\n".join(source[start:end])
inline = set()
for i, l in enumerate(source, 1):
    d = re.match(r"static inline .*?(\w+)\(", l)
    if d and re.search(r"\b%s\(" % d.group(1), body):
        stop = i if l.rstrip().endswith("}") else next(j for j, k in enumerate(source, 1) if j > i and k.startswith("}"))
        inline.update(range(i, stop + 1))
where = "the parser's body" if start < line <= end else "a static inline function the parser calls" if line in inline else None
assert where, f"kernels.c:{line} is neither in the parser's body ({start}-{end}) nor in an inline function it calls"
# The instruction rows of that line: pc, count, [taken], est, %, location, instruction.
counts = []
for l in text[next(i for i, l in enumerate(text) if l.split()[:2] == ["pc", "count"]) + 1:]:
    f = l.split()
    if len(f) > 5 and f[0].isdigit():
        locs = [x for x in f if re.search(r":\d+$", x) or x == "-"]
        if locs and locs[0] == loc:
            counts.append(float(f[1]))
assert counts, f"no instruction rows for {loc}"
assert count == max(counts), f"{loc}: line count {count}, its instructions' largest {max(counts)}"
assert insns == sum(counts), f"{loc}: line insns {insns}, its instructions' sum {sum(counts)}"
print(f"hottest line: kernels.c:{line} ({where}): {source[line - 1].strip()}; count {count:.0f}, {insns:.0f} insns per run")
EOF

# --engine interp: one row, and no JIT.
"$bpfsim" bench "$kernels" --prog fnv1a --mem-file "$tmp/parser.bin" --engine interp "${quick[@]}" > "$tmp/interp.txt" 2>&1
if [ "$(rows "$tmp/interp.txt" | wc -l)" -eq 1 ] && rows "$tmp/interp.txt" | grep -q '^interp ' && ! grep -q '^jit' "$tmp/interp.txt"; then ok
else bad "--engine interp: want one interp row: $(cat "$tmp/interp.txt")"; fi

# --json: Google Benchmark's shape; two runs compared by its tools/compare.py where installed.
for run in a b; do
  "$bpfsim" bench "$kernels" --prog fnv1a --mem-file "$tmp/parser.bin" --json "${quick[@]}" > "$tmp/$run.json" 2>"$tmp/$run.err" ||
    bad "--json run $run: $(cat "$tmp/$run.err")"
done
python3 - "$tmp/a.json" <<'EOF' && ok || bad "--json shape (see above)"
import json, sys
j = json.load(open(sys.argv[1]))
ctx = j["context"]
for k in ["date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "caches", "library_build_type"]:
    assert k in ctx, f"context lacks {k}"
assert ctx["num_cpus"] >= 1 and isinstance(ctx["caches"], list)
names = set()
for b in j["benchmarks"]:
    for k in ["name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions", "threads",
              "iterations", "real_time", "cpu_time", "time_unit", "insns", "ns_per_insn"]:
        assert k in b, f"{b.get('name')} lacks {k}"
    assert b["threads"] == 1 and b["time_unit"] == "ns" and b["repetitions"] == 3
    assert b["run_name"] in ("bench_kernels.o/fnv1a/interp", "bench_kernels.o/fnv1a/jit"), b["run_name"]
    if b["run_type"] == "iteration":
        assert "repetition_index" in b and b["real_time"] > 0 and b["cpu_time"] > 0 and b["iterations"] >= 1 and b["insns"] > 0
        names.add(b["name"])
    else:
        assert b["run_type"] == "aggregate" and b["aggregate_name"] in ("mean", "median", "stddev", "cv"), b
        assert b["name"] == b["run_name"] + "_" + b["aggregate_name"]
assert names == {"bench_kernels.o/fnv1a/interp", "bench_kernels.o/fnv1a/jit"}, names
aggs = [b for b in j["benchmarks"] if b["run_type"] == "aggregate"]
assert len(aggs) == 8 and len(j["benchmarks"]) == 2 * 3 + 8
assert j["bpfsim"]["insns_per_run"] > 0 and [e["engine"] for e in j["bpfsim"]["engines"]] == ["interp", "jit"]
EOF
compare=${BENCHMARK_COMPARE:-/usr/share/benchmark/compare.py}
py=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import scipy, numpy' 2>/dev/null; then py=$p; break; fi
done
if [ -f "$compare" ] && [ -n "$py" ]; then
  expect compare-py 0 "bench_kernels.o/fnv1a/interp" -- "$py" "$compare" --no-color benchmarks "$tmp/a.json" "$tmp/b.json"
else
  echo "SKIP compare.py: needs $compare (libbenchmark-tools) and python3 with scipy (python3-scipy)"
fi

# Helpers: the firewall's drop path looks up two maps and prints a trace line.
step="UDP from 10.66.3.4 matches 10.66.0.0/16"
"$bpfsim" bench --scenario "$src/corpus/examples/xdp_firewall.yaml" -I "$corpus" --step "$step" "${quick[@]}" > "$tmp/fw.txt" 2>&1
if grep -qE '^bpf_map_lookup_elem +2 +[0-9.]+ +2 +[0-9.]+$' "$tmp/fw.txt" && grep -qE '^bpf_trace_printk +1 +[0-9.]+ +1 +[0-9.]+$' "$tmp/fw.txt" &&
   rows "$tmp/fw.txt" | awk '{ sub("%", "", $9) } !($9 > 0) { bad = 1 } END { exit bad }' &&
   grep -q "^jit: unchecked: the verifier model accepts the program" "$tmp/fw.txt" &&
   grep -q "^put back before every run: the context (24 bytes), the packet (54 bytes), map verdicts" "$tmp/fw.txt"; then ok
else bad "helpers: want both helpers with their calls per run and a helper share above 0: $(cat "$tmp/fw.txt")"; fi
# The same program on a packet from the command line, and a tracing program with its arguments.
expect packet 0 "\\^interp +threaded.*\\^jit +unchecked" -- bash -c "'$bpfsim' bench '$corpus/xdp_firewall.o' --packet \
  020000000001020000000002080045000028123400004006549a0a0000010a0000029c4001bb00000001000000005002ffff00000000 \
  --repetitions 2 --min-time 0.01 | tr '\n' '^'"
expect tracing 0 "input: a kprobe context of .* bytes" -- "$bpfsim" bench "$corpus/trace_contexts.o" -p on_unlinkat --arg -100 --arg 0x1000 \
  --engine interp "${quick[@]}"

# Bad input: clear messages; 2 for usage, 1 for failures.
expect missing-file 1 "nope.o: .*(no such file|cannot open)" -- "$bpfsim" bench "$tmp/nope.o" --prog parser
expect unknown-prog 1 "no program 'nope'; the object has: xorshift" -- "$bpfsim" bench "$kernels" --prog nope
expect bad-repetitions 2 "--repetitions must be 1 to 1000, not 0" -- "$bpfsim" bench "$kernels" --prog fnv1a --repetitions 0
expect bad-repetitions-text 2 "repetitions" -- "$bpfsim" bench "$kernels" --prog fnv1a --repetitions lots
expect bad-min-time 2 "--min-time must be above 0" -- "$bpfsim" bench "$kernels" --prog fnv1a --min-time 0
expect bad-engine 2 "--engine must be interp, jit or both, not 'gpu'" -- "$bpfsim" bench "$kernels" --prog fnv1a --engine gpu
expect no-input 2 "give an object file" -- "$bpfsim" bench
expect budget 1 "traps: .*budget" -- "$bpfsim" bench "$kernels" --prog xorshift --mem-file "$tmp/parser.bin" --budget 1000
expect needs-packet 2 "needs --packet" -- "$bpfsim" bench "$corpus/xdp_firewall.o"
expect unknown-step 1 "xdp_firewall.yaml: no step 'nope'; the steps that run programs: 'TCP from" -- \
  "$bpfsim" bench --scenario "$src/corpus/examples/xdp_firewall.yaml" -I "$corpus" --step nope
expect missing-scenario 1 "nope.yaml" -- "$bpfsim" bench --scenario "$tmp/nope.yaml"

echo "bench-cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
