// Tracing contexts and __kconfig externs: each program copies what it sees into .bss,
// where tests/test_contexts.cpp reads it back.
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct seen {
    __u64 a, b, c, d;
};
struct seen kprobe_seen, kretprobe_seen, tp_seen, exit_seen, raw_tp_seen, fentry_seen, perf_seen;

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(on_unlinkat, int dfd, void *name, __u64 third)
{
    kprobe_seen.a = dfd;
    kprobe_seen.b = (__u64)name;
    kprobe_seen.c = third;
    kprobe_seen.d = PT_REGS_IP(ctx);
    return 0;
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(on_unlinkat_ret, long ret)
{
    kretprobe_seen.a = ret;
    return 0;
}

// The record of syscalls/sys_enter_openat, as its tracefs format describes it.
struct sys_enter_openat {
    __u16 common_type;
    __u8 common_flags;
    __u8 common_preempt_count;
    __s32 common_pid;
    __s32 syscall_nr;
    __u32 pad;
    __s64 dfd;
    const char *filename;
    __s64 flags;
    __u64 mode;
};

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat(struct sys_enter_openat *ctx)
{
    tp_seen.a = ctx->common_pid;
    tp_seen.b = ctx->syscall_nr;
    tp_seen.c = ctx->dfd;
    tp_seen.d = ctx->flags;
    return 0;
}

struct sys_exit {
    __u64 header;
    __s32 syscall_nr;
    __u32 pad;
    __s64 ret;
};

SEC("tp/syscalls/sys_exit_openat")
int on_openat_exit(struct sys_exit *ctx)
{
    exit_seen.a = ctx->syscall_nr;
    exit_seen.b = ctx->ret;
    return ctx->ret < 0;
}

SEC("raw_tp/sched_switch")
int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    raw_tp_seen.a = ctx->args[0];
    raw_tp_seen.b = ctx->args[1];
    raw_tp_seen.c = ctx->args[2];
    return 0;
}

SEC("fentry/do_unlinkat")
int BPF_PROG(fentry_unlinkat, int dfd, void *name)
{
    fentry_seen.a = dfd;
    fentry_seen.b = (__u64)name;
    return 0;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
    perf_seen.a = ctx->sample_period;
    perf_seen.b = ctx->addr;
    perf_seen.c = PT_REGS_IP(&ctx->regs);
    return 0;
}

// __kconfig externs, filled from the world's kernel configuration.
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_JIT __kconfig;
extern enum libbpf_tristate CONFIG_TUN __kconfig;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig;
extern __u32 LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_MISSING_BUT_WEAK __kconfig __weak;

struct {
    __u64 hz, jit, tun, version, weak;
    char hostname[16];
} kconfig_seen;

SEC("raw_tp/kconfig")
int read_kconfig(void *ctx)
{
    kconfig_seen.hz = CONFIG_HZ;
    kconfig_seen.jit = CONFIG_BPF_JIT;
    kconfig_seen.tun = CONFIG_TUN;
    kconfig_seen.version = LINUX_KERNEL_VERSION;
    kconfig_seen.weak = CONFIG_MISSING_BUT_WEAK;
    __builtin_memcpy(kconfig_seen.hostname, CONFIG_DEFAULT_HOSTNAME, 16);
    return 0;
}

// Writes its pt_regs, which the kernel's verifier refuses; bpfsim faults at run time.
SEC("kprobe/do_unlinkat")
int write_regs(struct pt_regs *ctx)
{
    ctx->rax = 1;
    return 0;
}

// Tracepoint records laid out from the kernel BTF (struct trace_event_raw_*), as their
// tracefs formats describe them.
struct sched_process_exec {
    __u64 header;
    __u32 filename_loc;   // __data_loc char[] filename: (length << 16) | offset
    __s32 pid;
    __s32 old_pid;
};

struct {
    __u64 pid, old_pid, loc;
    char filename[32];
} exec_seen;

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct sched_process_exec *ctx)
{
    unsigned off = ctx->filename_loc & 0xffff;
    exec_seen.pid = ctx->pid;
    exec_seen.old_pid = ctx->old_pid;
    exec_seen.loc = ctx->filename_loc;
    bpf_probe_read_kernel_str(exec_seen.filename, sizeof(exec_seen.filename), (void *)ctx + off);
    return 0;
}

// sched_process_exit is of class sched_process_template: struct trace_event_raw_sched_process_template.
struct sched_process_exit {
    __u64 header;
    char comm[16];
    __s32 pid;
    __s32 prio;
    _Bool group_dead;
};

struct {
    __u64 pid, prio, group_dead;
    char comm[16];
} exit_task_seen;

SEC("tp/sched/sched_process_exit")
int on_exit(struct sched_process_exit *ctx)
{
    exit_task_seen.pid = ctx->pid;
    exit_task_seen.prio = ctx->prio;
    exit_task_seen.group_dead = ctx->group_dead;
    __builtin_memcpy(exit_task_seen.comm, ctx->comm, 16);
    return 0;
}

// sys_enter_openat's filename argument points to user memory.
struct {
    __u64 dfd, flags;
    __s64 len;
    char filename[64];
} openat_seen;

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat_name(struct sys_enter_openat *ctx)
{
    openat_seen.dfd = ctx->dfd;
    openat_seen.flags = ctx->flags;
    openat_seen.len = bpf_probe_read_user_str(openat_seen.filename, sizeof(openat_seen.filename), ctx->filename);
    return 0;
}

// Kernel objects a kprobe's arguments point to (a scenario's world.objects), read with CO-RE.
#include <bpf/bpf_core_read.h>

struct qstr {
    const unsigned char *name;
} __attribute__((preserve_access_index));
struct dentry {
    struct qstr d_name;
} __attribute__((preserve_access_index));
struct path {
    struct dentry *dentry;
} __attribute__((preserve_access_index));
struct inode {
    unsigned long i_ino;
} __attribute__((preserve_access_index));
struct file {
    struct path f_path;
    struct inode *f_inode;
    unsigned int f_flags;
} __attribute__((preserve_access_index));

struct {
    __u64 flags, ino;
    char name[32];
} file_seen;

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_vfs_read, struct file *file)
{
    file_seen.flags = BPF_CORE_READ(file, f_flags);
    file_seen.ino = BPF_CORE_READ(file, f_inode, i_ino);
    bpf_probe_read_kernel_str(file_seen.name, sizeof(file_seen.name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
    bpf_printk("read %s ino %lu flags %x", file_seen.name, file_seen.ino, file_seen.flags);
    return 0;
}
