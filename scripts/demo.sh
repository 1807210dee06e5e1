#!/usr/bin/env bash
# The demo until the seed demo (trace_exec) lands: BPF programs built from corpus/ with
# clang -target bpf, disassembled and run in bpfsim's interpreter.
set -euo pipefail
build=${1:-build}
obj=$build/corpus/bench_kernels.o
bpfsim=$build/bpfsim

echo "== programs in $obj"
"$bpfsim" prog list "$obj"
echo
echo "== bench/xorshift, disassembled"
"$bpfsim" disasm "$obj" --prog xorshift
echo
echo "== run: xorshift64 over 10M iterations (seed 0x243f6a8885a308d3)"
"$bpfsim" run "$obj" --prog xorshift --mem "d3 08 a3 85 88 6a 3f 24" --budget 0
echo
echo "== run: FNV-1a over 1 KiB of 0x5a, 64 times"
head -c 1024 /dev/zero | tr '\0' '\132' > "$build/demo-fnv.bin"
"$bpfsim" run "$obj" --prog fnv1a --mem-file "$build/demo-fnv.bin" --budget 0 --repeat 20
