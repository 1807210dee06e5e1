#!/usr/bin/env bash
# Bad input to the CLI ends in a clear error naming the file and place, never a crash.
set -u
bpfsim=$1 shared=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect NAME WANT_RC PATTERN -- CMD...: exit code WANT_RC and PATTERN on stderr+stdout.
expect() {
  local name=$1 want=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $name: rc=$rc (want $want), output: $out"; fi
}

expect unknown-verb 2 "unknown verb 'frobnicate'" -- "$bpfsim" frobnicate
expect no-args 2 "usage: bpfsim" -- "$bpfsim"
expect help 0 "usage: bpfsim run" -- "$bpfsim" run --help
expect bad-option 2 "unrecognised option|unrecognized option" -- "$bpfsim" run --bogus x
expect missing-dir 1 "nope: no such file or directory" -- "$bpfsim" conformance "$tmp/nope"

printf 'mov %%r0, 1\nfrob %%r1\nexit\n' > "$tmp/bad.s"
expect asm-mnemonic 1 "bad.s:2: unknown mnemonic 'frob'" -- "$bpfsim" asm "$tmp/bad.s"
printf 'ja nowhere\nexit\n' > "$tmp/label.s"
expect asm-label 1 "label.s:1: undefined label 'nowhere'" -- "$bpfsim" asm "$tmp/label.s"

printf '\xff\x00\x00\x00\x00\x00\x00\x00\x95\x00\x00\x00\x00\x00\x00\x00' > "$tmp/badop.bin"
expect unknown-opcode 1 "badop.bin: .*pc 0: invalid instruction \(opcode 0xff" -- "$bpfsim" run "$tmp/badop.bin"
printf '\x95\x00\x00' > "$tmp/short.bin"
expect short-raw 1 "short.bin: raw program is 3 bytes" -- "$bpfsim" run "$tmp/short.bin"
printf 'ldxdw %%r0, [%%r1+0]\nexit\n' > "$tmp/fault.s"
expect trap 2 "trap: pc 0: invalid memory access: read of 8 bytes at 0x0" -- "$bpfsim" run "$tmp/fault.s"
printf 'ja -1\n' > "$tmp/loop.s"
expect budget 2 "instruction budget of 1000 exhausted" -- "$bpfsim" run "$tmp/loop.s" --budget 1000

obj=$(dirname "$bpfsim")/corpus/bench_kernels.o
head -c 200 "$obj" > "$tmp/trunc.o"
expect truncated-elf 1 "trunc.o: " -- "$bpfsim" prog list "$tmp/trunc.o"
expect missing-prog 1 "no program 'nope'; the object has: xorshift" -- "$bpfsim" run "$obj" --prog nope

# Tracing contexts, kconfig, map-init and JSON output of run.
tr=$(dirname "$bpfsim")/corpus/trace_contexts.o
expect kprobe-args 0 '"r0":0,.*9c ff ff ff ff ff ff ff 00 10 00 00' -- "$bpfsim" run "$tr" -p on_unlinkat --arg -100 --arg 0x1000 --json
expect tp-exit 0 "on_openat_exit: return 1" -- "$bpfsim" run "$tr" -p on_openat_exit --field ret=-13
# on_openat reads common_pid, in the first 8 bytes the kernel keeps from tracepoint programs:
# the verifier model refuses it as the kernel does; --no-verify runs it anyway.
expect tp-rejected 1 "the verifier model rejects 'on_openat' at pc 0: invalid bpf_context access off=4 size=4" -- "$bpfsim" run "$tr" -p on_openat
expect tp-bad-field 2 "has no field 'nosuch'; it has common_type" -- "$bpfsim" run "$tr" -p on_openat --field nosuch=1 --no-verify
expect bad-number 2 "--arg: 'zz' is not a number" -- "$bpfsim" run "$tr" -p on_switch --arg zz
expect too-many-args 2 "at most 6 arguments" -- "$bpfsim" run "$tr" -p on_unlinkat --arg 1 --arg 2 --arg 3 --arg 4 --arg 5 --arg 6 --arg 7
# A truncated object: btf record and verify name the file and what is cut.
head -c 700 "$tr" > "$tmp/trunc.o"
expect btf-record-truncated 1 "trunc.o: section header table .* lies outside the file \(700 bytes\): truncated\?" -- \
  "$bpfsim" btf record --from "$(dirname "$bpfsim")/corpus/vmlinux-6.18.44.btf" --for "$tmp/trunc.o" -o "$tmp/out.btf"
expect verify-truncated 1 "trunc.o: section header table .* lies outside the file" -- "$bpfsim" verify "$tmp/trunc.o"
expect write-ctx-rejected 1 "rejects 'write_regs' at pc 1: invalid bpf_context access off=80 size=8" -- "$bpfsim" run "$tr" -p write_regs
expect write-ctx 2 "trap: .*write of 8 bytes" -- "$bpfsim" run "$tr" -p write_regs --no-verify
expect kconfig-missing 1 "extern \(kcfg\) 'CONFIG_HZ': no value" -- "$bpfsim" run "$tr" -p read_kconfig
expect kconfig-set 0 "fa 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02" -- "$bpfsim" run "$tr" -p read_kconfig \
  --kconfig CONFIG_HZ=250 --kconfig CONFIG_BPF_JIT=y --kconfig CONFIG_TUN=m --kconfig 'CONFIG_DEFAULT_HOSTNAME="x"'
xc=$(dirname "$bpfsim")/corpus/xdp_counter.o
"$bpfsim" map dump "$xc" --json > "$tmp/maps.json"
expect map-dump-json 0 '^\{".*": \[' -- cat "$tmp/maps.json"
expect map-init-roundtrip 0 "XDP_" -- "$bpfsim" run "$xc" --packet "$(printf '%028d' 0)0800" --map-init "$tmp/maps.json"
printf '{"nosuch": []}' > "$tmp/bad-init.json"
expect map-init-unknown 1 "bad-init.json: no map 'nosuch'" -- "$bpfsim" run "$xc" --packet 00 --map-init "$tmp/bad-init.json"
printf '{"x": [' > "$tmp/broken.json"
expect map-init-json 1 "broken.json: not valid JSON" -- "$bpfsim" run "$xc" --packet 00 --map-init "$tmp/broken.json"

# Every sample object, valid or fuzz-found: a listing or a clean error, never a signal.
corpus=$shared/corpus/ebpf-samples
if [ -d "$corpus" ]; then
  n=0 crashed=0
  while IFS= read -r -d '' f; do
    n=$((n+1))
    "$bpfsim" prog list "$f" >/dev/null 2>"$tmp/err"; rc=$?
    if [ $rc -ge 128 ] || { [ $rc -ne 0 ] && ! grep -q "bpfsim prog: " "$tmp/err"; }; then
      crashed=$((crashed+1)); echo "FAIL corpus $f: rc=$rc $(cat "$tmp/err")"; fi
  done < <(find "$corpus" -type f ! -name '*.md' ! -name 'LICENSE*' -print0)
  if [ $crashed -eq 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
  echo "corpus: $n files listed or rejected cleanly, $crashed crashed"
else
  echo "SKIP corpus: $corpus not found"
fi

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
