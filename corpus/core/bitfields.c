// CO-RE on bitfields: BPF_CORE_READ_BITFIELD_PROBED reads the bytes that hold the field
// (byte offset and byte size relocations) and extracts it with two shifts (lshift_u64,
// rshift_u64) and the signedness (signed); BPF_CORE_READ_BITFIELD loads it directly. The
// local declarations put the bits elsewhere than the kernel does: the relocations move
// them. A bitfield's offset and size are not checked against the instruction (libbpf does
// not either: the compiler may use any load that covers the bits).
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 out[16];

// A flavor that declares the kernel's bits in another order and with other widths, and a
// signed one: init_private_fork_class is 4 unsigned bits in the kernel.
struct task_struct___bits {
    int pad;
    signed init_private_fork_class : 3;
    unsigned in_iowait : 5;
    unsigned long long sched_reset_on_fork : 1;
    unsigned in_execve : 2;
} CORE;

SEC("tracepoint/syscalls/sys_enter_getpid")
int probed(void *ctx)
{
    struct task_struct *t = current_task();
    out[0] = BPF_CORE_READ_BITFIELD_PROBED(t, sched_reset_on_fork);
    out[1] = BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
    out[2] = BPF_CORE_READ_BITFIELD_PROBED(t, init_private_fork_class);
    out[3] = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int direct(struct task_struct *t)
{
    out[0] = BPF_CORE_READ_BITFIELD(t, sched_contributes_to_load);
    out[1] = BPF_CORE_READ_BITFIELD(t, init_private_fork_class);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_gettid")
int flavored(struct task_struct___bits *t)
{
    out[0] = BPF_CORE_READ_BITFIELD_PROBED(t, init_private_fork_class);
    out[1] = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
    out[2] = BPF_CORE_READ_BITFIELD(t, sched_reset_on_fork);
    out[3] = BPF_CORE_READ_BITFIELD(t, in_execve);
    out[4] = bpf_core_field_exists(t->in_execve);
    out[5] = bpf_core_field_size(t->in_execve);
    return 0;
}
