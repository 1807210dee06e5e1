#!/bin/bash -eu
# Builds the BPF object and installs one fuzz target per program into $OUT. A target is a
# copy of bpfsim named after the program, with the object beside it: run by ClusterFuzzLite as
# `$OUT/xdp_filter -runs=... CORPUS_DIR`, it is `bpfsim fuzz xdp_filter.bpf.o --prog xdp_filter`
# with libFuzzer's flags (bpfsim reads the object and program from BPFSIM_FUZZ_CHILD, the
# variable `bpfsim fuzz` itself sets for libFuzzer's -jobs and -fork processes).
clang -g -O2 -target bpf -c bpf/xdp_filter.bpf.c -o "$OUT/xdp_filter.bpf.o"

# The wrapper: ClusterFuzzLite runs executables in $OUT; each sets the variable and execs bpfsim.
cp /bpfsim/build/bpfsim "$OUT/bpfsim"
cat > "$OUT/xdp_filter" <<'WRAP'
#!/bin/bash
# LLVMFuzzerTestOneInput: the marker ClusterFuzzLite looks for in a fuzz target (bpfsim's is LLVMFuzzerRunDriver).
here=$(dirname "$(readlink -f "$0")")
export BPFSIM_FUZZ_CHILD="[\"$here/xdp_filter.bpf.o\", \"--prog\", \"xdp_filter\"]"
exec "$here/bpfsim" "$@"
WRAP
chmod +x "$OUT/xdp_filter"
# Seeds: a packet per scenario step, as `bpfsim fuzz --scenario` would start from.
mkdir -p seeds && cp scenarios/seeds/* seeds/ 2>/dev/null || true
(cd seeds && zip -q "$OUT/xdp_filter_seed_corpus.zip" ./* 2>/dev/null) || true
