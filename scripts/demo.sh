#!/usr/bin/env bash
# The seed demo: corpus/demo/trace_exec.c (compiled with clang -g -O2 -target bpf at build
# time) runs without privileges against this machine's recorded kernel BTF and an older
# task_struct layout; CO-RE relocates it for each, and the exec lines are the same.
set -euo pipefail
build=${1:-build}
bpfsim=$build/bpfsim
corpus=$build/corpus

echo "== trace_exec: the scenario (corpus/demo/trace_exec.yaml), against two kernels' BTF"
"$bpfsim" test corpus/demo/trace_exec.yaml -I "$corpus" --show-trace
echo
echo "== the same program from the command line: bpfsim run --btf ... --task"
"$bpfsim" run "$corpus/trace_exec.o" --btf "$corpus/vmlinux-6.18.44.btf" --task 4242:demo-shell
echo
echo "== the interpreter on plain BPF: xorshift64 over 10M iterations"
# The bench kernels take (mem, len) in r1/r2 like bare programs, which no kernel program type
# passes: the verifier model rejects them (R2 !read_ok), so they run with --no-verify.
"$bpfsim" run "$corpus/bench_kernels.o" --prog xorshift --mem "d3 08 a3 85 88 6a 3f 24" --budget 0 --no-verify
