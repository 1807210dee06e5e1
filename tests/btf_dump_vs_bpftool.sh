#!/usr/bin/env bash
# `bpfsim btf dump` against bpftool, byte for byte: the C header (format c), the raw records
# and their JSON (-j), for this machine's vmlinux, its module BTFs (on top of vmlinux), split
# BTF cut out of vmlinux (tests/btf_split.py, so split BTF is covered where no module has BTF),
# and every object with a .BTF section in the corpora. The vmlinux header must also compile
# with clang -target bpf. Skips (77) without bpftool or /sys/kernel/btf/vmlinux.
#
# usage: btf_dump_vs_bpftool.sh BPFSIM SHARED_DIR CORPUS_DIR
set -u
bpfsim=$1 shared=$2 corpus=$3
here=$(cd "$(dirname "$0")" && pwd)
vmlinux=/sys/kernel/btf/vmlinux
if ! command -v bpftool >/dev/null 2>&1; then
  echo "SKIP: bpftool is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
if [ ! -r "$vmlinux" ]; then
  echo "SKIP: $vmlinux is missing (a kernel without CONFIG_DEBUG_INFO_BTF)"
  exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0 nobtf=0
declare -A kinds=()

# same WHAT REF_CMD -- OUR_CMD: both outputs (stdout) and success must agree.
same() {
  local what=$1; shift
  local ref=() ; while [ "$1" != "--" ]; do ref+=("$1"); shift; done; shift
  "${ref[@]}" >"$tmp/ref" 2>"$tmp/ref.err"; local rrc=$?
  "$@" >"$tmp/our" 2>"$tmp/our.err"; local orc=$?
  if [ $rrc -eq 0 ] && [ $orc -eq 0 ] && cmp -s "$tmp/ref" "$tmp/our"; then
    pass=$((pass+1))
  else
    fail=$((fail+1))
    echo "FAIL $what (bpftool rc=$rrc, bpfsim rc=$orc): $(head -c 300 "$tmp/our.err")"
    diff "$tmp/ref" "$tmp/our" | head -10
  fi
}

# check LABEL FILE [BASE]: the three formats.
check() {
  local label=$1 file=$2 base=${3:-}
  local bflag=() ourb=()
  [ -n "$base" ] && bflag=(-B "$base") && ourb=(--base "$base")
  same "$label $file format c" bpftool "${bflag[@]}" btf dump file "$file" format c -- "$bpfsim" btf dump "$file" "${ourb[@]}" --format c
  same "$label $file raw" bpftool "${bflag[@]}" btf dump file "$file" -- "$bpfsim" btf dump "$file" "${ourb[@]}"
  same "$label $file json" bpftool -j "${bflag[@]}" btf dump file "$file" -- "$bpfsim" btf dump "$file" "${ourb[@]}" --json
  kinds[$label]=$(( ${kinds[$label]:-0} + 1 ))
}

check vmlinux "$vmlinux"
for m in /sys/kernel/btf/*; do
  [ "$m" = "$vmlinux" ] && continue
  check module "$m" "$vmlinux"
done
if command -v python3 >/dev/null 2>&1; then
  cp "$vmlinux" "$tmp/vmlinux.btf"
  for k in 5000 60000; do
    python3 "$here/btf_split.py" "$tmp/vmlinux.btf" $k "$tmp/base$k.btf" "$tmp/split$k.btf" >/dev/null
    check split "$tmp/split$k.btf" "$tmp/base$k.btf"
  done
else
  echo "note: no python3, split BTF cut from vmlinux not checked"
fi
while IFS= read -r -d '' obj; do
  # Objects without .BTF: both tools must refuse them.
  if ! bpftool btf dump file "$obj" >/dev/null 2>&1; then
    if "$bpfsim" btf dump "$obj" >/dev/null 2>&1; then
      fail=$((fail+1)); echo "FAIL $obj: bpftool finds no BTF, bpfsim dumps some"
    else nobtf=$((nobtf+1)); fi
    continue
  fi
  check object "$obj"
done < <(find "$corpus" "$shared/corpus" -name '*.o' -print0 2>/dev/null | sort -z)

# The header compiles for BPF.
if command -v clang >/dev/null 2>&1; then
  "$bpfsim" btf dump "$vmlinux" --format c >"$tmp/vmlinux.h"
  printf '#include "vmlinux.h"\nint f(struct task_struct *t) { return t->pid; }\n' >"$tmp/use.c"
  if clang -target bpf -O2 -c "$tmp/use.c" -o "$tmp/use.o" 2>"$tmp/cc.err"; then pass=$((pass+1)); else
    fail=$((fail+1)); echo "FAIL vmlinux.h does not compile with clang -target bpf:"; head -5 "$tmp/cc.err"; fi
fi

for k in "${!kinds[@]}"; do echo "checked $k: ${kinds[$k]} file(s), 3 formats each"; done | sort
echo "objects without .BTF (refused by both): $nobtf"
echo "btf-dump: $pass passed, $fail failed"
[ $fail -eq 0 ]
