#!/bin/sh
# The interpreter, the JIT and the default (auto: the JIT for programs the verifier model accepts)
# give the same report, trace lines included, on every scenario of corpus/ and tests/scenarios/
# and on the annotated object: one `bpfsim test` run per engine.
# usage: engines_agree.sh BPFSIM SOURCE_DIR CORPUS_DIR
set -u
bpfsim=$1 src=$2 corpus=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for engine in interp jit auto; do
    "$bpfsim" test "$src/corpus" "$src/tests/scenarios" "$corpus/feat_annotations.o" -I "$corpus" --show-trace --engine "$engine" \
        >"$tmp/$engine.out" 2>&1
    echo "$?" >"$tmp/$engine.rc"
done
for engine in jit auto; do
    if ! cmp -s "$tmp/interp.out" "$tmp/$engine.out" || ! cmp -s "$tmp/interp.rc" "$tmp/$engine.rc"; then
        echo "FAIL: the reports of --engine interp and --engine $engine differ:"
        diff "$tmp/interp.out" "$tmp/$engine.out" | head -40
        exit 1
    fi
done
echo "engines agree: $(tail -n 1 "$tmp/jit.out") (exit $(cat "$tmp/jit.rc"), the same with --engine interp, jit and auto)"
