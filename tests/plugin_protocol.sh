#!/usr/bin/env bash
# Drives `bpfsim conformance-plugin` the way the bpf_conformance runner does: program
# bytes as hex on stdin, memory as hex bytes in argv[1], options in argv[2], r0 in hex on
# stdout. Checks every .data file's result, plus the error path. Skips (77) without the suite.
set -u
bpfsim=$1 dir=$2
if [ ! -d "$dir" ]; then
  echo "SKIP: conformance suite not found at $dir"
  exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for f in "$dir"/*.data; do
  awk '/^-- /{s=($2=="asm")} !/^-- / && s' "$f" > "$tmp/prog.s"
  mem=$(awk '/^-- /{s=($2=="mem")} !/^-- / && s' "$f" | tr '\n' ' ')
  want=$(awk '/^-- /{s=($2=="result")} !/^-- / && s && NF {print $1}' "$f")
  prog=$("$bpfsim" asm "$tmp/prog.s" | while read -r w; do
           v=${w#0x}; for i in 14 12 10 8 6 4 2 0; do printf '%s ' "${v:$i:2}"; done; done)
  got=$(printf '%s\n' "$prog" | "$bpfsim" conformance-plugin "$mem" "")
  if [ -n "$got" ] && [ $((16#$got)) -eq $((want)) ]; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL $(basename "$f"): plugin printed '$got', expected $want"; fi
done
# A program that faults: non-zero exit, message on stderr, nothing on stdout.
out=$(printf '79 10 00 01 00 00 00 00 95 00 00 00 00 00 00 00\n' | "$bpfsim" conformance-plugin "00 00" "" 2>"$tmp/err")
rc=$?
if [ $rc -ne 0 ] && [ -z "$out" ] && grep -q "invalid memory access" "$tmp/err"; then pass=$((pass+1)); else
  fail=$((fail+1)); echo "FAIL fault case: rc=$rc out='$out' err='$(cat "$tmp/err")'"; fi
echo "plugin: $pass passed, $fail failed"
[ $fail -eq 0 ]
