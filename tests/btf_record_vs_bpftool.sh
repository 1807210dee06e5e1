#!/usr/bin/env bash
# `bpfsim btf record` against `bpftool gen min_core_btf`, byte for byte: for every object of
# the corpora with CO-RE relocations, the minimal BTF both write from the recorded kernel BTF
# (CORPUS_DIR/vmlinux-6.18.44.btf, so the test does not depend on the machine), and from
# /sys/kernel/btf/vmlinux when there is one; then all those objects at once. Two more objects
# are compiled here with clang (see below). An object bpftool refuses must be refused by
# bpfsim too, except for the documented difference (FWD/TYPE_TAG kept), counted apart.
# Skips (77) without bpftool.
#
# usage: btf_record_vs_bpftool.sh BPFSIM SHARED_DIR CORPUS_DIR
set -u
bpfsim=$1 shared=$2 corpus=$3
recorded=$corpus/vmlinux-6.18.44.btf
if ! command -v bpftool >/dev/null 2>&1; then
  echo "SKIP: bpftool is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
if [ ! -r "$recorded" ]; then
  echo "FAIL: $recorded is missing (it is decompressed at build time)"
  exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# core_relo_len OBJ: the size of the CO-RE relocation part of OBJ's .BTF.ext (empty when
# the object has no .BTF.ext; 0 when its header has no CO-RE part).
core_relo_len() {
  local off
  off=$(readelf -S -W "$1" 2>/dev/null | awk '$2 == ".BTF.ext" {print $5; exit} $3 == ".BTF.ext" {print $6; exit}')
  [ -n "$off" ] || return
  off=$((16#$off))
  local hdr_len; hdr_len=$(od -An -tu4 -j$((off + 4)) -N4 "$1" | tr -d ' ')
  if [ "$hdr_len" -lt 32 ]; then echo 0; else od -An -tu4 -j$((off + 28)) -N4 "$1" | tr -d ' '; fi
}

# Every object with CO-RE relocations; objects without .BTF.ext, which both tools must
# refuse, and with a .BTF.ext but no CO-RE relocations, for which both write an empty BTF,
# are counted and a few of each checked.
objs=()
ncore=0 noext=0 norelo=0
while IFS= read -r -d '' obj; do
  len=$(core_relo_len "$obj")
  if [ -z "$len" ]; then
    noext=$((noext+1)); [ $noext -le 3 ] && objs+=("$obj")
  elif [ "$len" -eq 0 ]; then
    norelo=$((norelo+1)); [ $norelo -le 3 ] && objs+=("$obj")
  else
    ncore=$((ncore+1)); objs+=("$obj")
  fi
done < <(find "$corpus" "$shared/corpus" -name '*.o' -print0 2>/dev/null | sort -z)

# One more object, compiled here against a vmlinux.h of the recorded BTF, for what the corpus
# objects do not cover: BPF_CORE_READ chains through pointers and arrays, anonymous unions,
# flavors, field existence and sizes, bitfields, type existence/size/id (pointers followed,
# function prototypes), enum values of ENUM and ENUM64, a relocation nothing matches.
if command -v clang >/dev/null 2>&1; then
  bpftool btf dump file "$recorded" format c >"$tmp/vmlinux.h"
  cat >"$tmp/extra.c" <<'EOF_C'
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct task_struct___old { long state; } __attribute__((preserve_access_index));

SEC("kprobe/do_execve")
int prog(struct pt_regs *ctx)
{
    struct task_struct *t = (void *)bpf_get_current_task();
    struct sk_buff *skb = (void *)PT_REGS_PARM1(ctx);
    long r = 0;
    r += BPF_CORE_READ(t, mm, arg_start);
    r += BPF_CORE_READ(t, real_parent, cred, uid.val);
    r += BPF_CORE_READ(t, nsproxy, pid_ns_for_children, level);
    r += BPF_CORE_READ(t, fs, pwd.dentry, d_name.name) != 0;
    r += BPF_CORE_READ(t, files, fdt, max_fds);
    r += BPF_CORE_READ(t, signal, rlim[3].rlim_cur);
    r += BPF_CORE_READ(t, thread_info.flags);
    r += bpf_core_field_exists(((struct task_struct___old *)t)->state);
    r += bpf_core_field_size(t->comm);
    r += BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
    r += bpf_core_type_exists(struct file_operations);
    r += bpf_core_type_size(struct bpf_prog_aux);
    r += bpf_core_type_id_kernel(struct inode);
    r += bpf_core_type_size(irq_handler_t);
    r += bpf_core_type_exists(struct bpfsim_nonexistent___y);
    r += bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output);
    r += bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_ARENA);
    r += BPF_CORE_READ(skb, dev, ifindex);
    r += BPF_CORE_READ(skb, sk, __sk_common.skc_family);
    return r;
}
char LICENSE[] SEC("license") = "GPL";
EOF_C
  if clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$tmp" -c "$tmp/extra.c" -o "$tmp/extra.o" 2>"$tmp/cc.err"; then
    ncore=$((ncore+1)); objs+=("$tmp/extra.o")
  else
    echo "FAIL: the extra object does not compile:"; head -5 "$tmp/cc.err"; exit 1
  fi
  # A type relocation whose type leads to a FWD (key_ref_t is a pointer to a declared-only
  # struct): bpftool refuses it, bpfsim keeps the FWD (the documented difference).
  printf '%s\n' '#include "vmlinux.h"' '#include <bpf/bpf_helpers.h>' '#include <bpf/bpf_core_read.h>' \
    'SEC("kprobe/x") int prog(void *ctx) { return bpf_core_type_exists(key_ref_t) + bpf_core_type_size(key_ref_t); }' \
    'char LICENSE[] SEC("license") = "GPL";' >"$tmp/extra_fwd.c"
  if clang -g -O2 -target bpf -I"$tmp" -c "$tmp/extra_fwd.c" -o "$tmp/extra_fwd.o" 2>"$tmp/cc.err"; then
    ncore=$((ncore+1)); objs+=("$tmp/extra_fwd.o")
  else
    echo "FAIL: the extra FWD object does not compile:"; head -5 "$tmp/cc.err"; exit 1
  fi
else
  echo "note: no clang, the extra object is not checked"
fi

targets=("$recorded")
[ -r /sys/kernel/btf/vmlinux ] && targets+=(/sys/kernel/btf/vmlinux)

same=0 refused=0 differ=0 empty=0 beyond=0
declare -a core_objs=()
for target in "${targets[@]}"; do
  for obj in "${objs[@]}"; do
    bpftool gen min_core_btf "$target" "$tmp/ref.btf" "$obj" >"$tmp/ref.out" 2>&1; rrc=$?
    "$bpfsim" btf record --from "$target" --for "$obj" -o "$tmp/our.btf" >"$tmp/our.out" 2>&1; orc=$?
    if [ $rrc -ne 0 ] || [ $orc -ne 0 ]; then
      if [ $rrc -ne 0 ] && [ $orc -ne 0 ]; then refused=$((refused+1)); rm -f "$tmp/ref.btf" "$tmp/our.btf"; continue; fi
      # The documented difference (btf/record.hpp): bpftool stops at FWD and TYPE_TAG types
      # ("unsupported kind"), bpfsim keeps them.
      if [ $rrc -ne 0 ] && grep -qi 'unsupported kind: \(fwd\|type_tag\)' "$tmp/ref.out"; then
        beyond=$((beyond+1)); echo "note: $obj vs $target: bpftool refuses a FWD/TYPE_TAG type, bpfsim keeps it (documented)"
        rm -f "$tmp/ref.btf" "$tmp/our.btf"; continue
      fi
      differ=$((differ+1))
      echo "DIFFER $obj vs $target: bpftool rc=$rrc, bpfsim rc=$orc"
      echo "  bpftool: $(head -c 300 "$tmp/ref.out")"
      echo "  bpfsim:  $(head -c 300 "$tmp/our.out")"
      continue
    fi
    if cmp -s "$tmp/ref.btf" "$tmp/our.btf"; then
      # An empty BTF (header and one string: 25 bytes) means no CO-RE relocation matched.
      if [ "$(stat -c %s "$tmp/ref.btf")" -le 25 ]; then empty=$((empty+1)); else same=$((same+1)); fi
      [ "$target" = "$recorded" ] && core_objs+=("$obj")
    else
      differ=$((differ+1))
      echo "DIFFER $obj vs $target: the files differ ($(stat -c %s "$tmp/ref.btf") vs $(stat -c %s "$tmp/our.btf") bytes)"
      diff <(bpftool btf dump file "$tmp/ref.btf") <(bpftool btf dump file "$tmp/our.btf") | head -10
    fi
    rm -f "$tmp/ref.btf" "$tmp/our.btf"
  done
done

# All the accepted objects at once: the union, in one file.
if [ ${#core_objs[@]} -gt 0 ]; then
  bpftool gen min_core_btf "$recorded" "$tmp/ref.btf" "${core_objs[@]}" >"$tmp/ref.out" 2>&1; rrc=$?
  "$bpfsim" btf record --from "$recorded" --for "${core_objs[@]}" -o "$tmp/our.btf" >"$tmp/our.out" 2>&1; orc=$?
  if [ $rrc -eq 0 ] && [ $orc -eq 0 ] && cmp -s "$tmp/ref.btf" "$tmp/our.btf"; then same=$((same+1)); else
    differ=$((differ+1)); echo "DIFFER all ${#core_objs[@]} objects at once (bpftool rc=$rrc, bpfsim rc=$orc)"
    head -c 300 "$tmp/our.out"; fi
fi

echo "targets: ${targets[*]}"
echo "objects: $ncore with CO-RE relocations, $noext without .BTF.ext and $norelo without CO-RE relocations (up to 3 of each checked)"
echo "btf-record: $same identical, $empty identical and empty, $refused both refused, $beyond kept by bpfsim only (FWD/TYPE_TAG), $differ differ"
[ $differ -eq 0 ]
