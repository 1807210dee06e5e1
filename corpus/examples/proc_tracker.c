// Follows processes from fork to exit with the sched tracepoints: a hash map holds each
// process seen forking (pid -> parent, comm, start time, number of execs), and every fork,
// exec and exit goes to a ring buffer as a struct event (and to trace_pipe as one line).
//
// The tracepoint records are declared here as the kernel's format files show them
// (/sys/kernel/tracing/events/sched/<event>/format, Linux 6.18): the comm of fork and the
// filename of exec are __data_loc strings, a u32 holding (length << 16) | offset from the
// record's start, read with bpf_probe_read_kernel_str as libbpf-tools do.
// A process that execs without having been seen forking (it started before the program was
// loaded) is added then, its parent read from the current task_struct with CO-RE.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define TASK_COMM_LEN 16
#define FILENAME_LEN 64

struct trace_entry {
    unsigned short common_type;
    unsigned char common_flags;
    unsigned char common_preempt_count;
    int common_pid;
};

struct sched_process_fork_ctx {
    struct trace_entry ent;
    __u32 __data_loc_parent_comm;
    int parent_pid;
    __u32 __data_loc_child_comm;
    int child_pid;
};

struct sched_process_exec_ctx {
    struct trace_entry ent;
    __u32 __data_loc_filename;
    int pid;
    int old_pid;
};

struct sched_process_exit_ctx {
    struct trace_entry ent;
    char comm[TASK_COMM_LEN];
    int pid;
    int prio;
    _Bool group_dead;
};

// Only what is read; CO-RE finds the offsets in the running kernel's BTF.
struct task_struct {
    int pid;
    int tgid;
    struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct proc {
    __u32 ppid;
    __u32 exec_count;
    __u64 start_ns;
    char comm[TASK_COMM_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);    // pid
    __type(value, struct proc);
} procs SEC(".maps");

enum event_kind {
    EV_FORK = 1,
    EV_EXEC = 2,
    EV_EXIT = 3,
};

struct event {
    __u32 kind;            // enum event_kind
    __u32 pid;
    __u32 ppid;
    __u32 exec_count;
    __u64 ts_ns;
    __u64 lifetime_ns;     // exit only
    char comm[TASK_COMM_LEN];
    char filename[FILENAME_LEN];   // exec only
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

// Puts struct event in the object's BTF (clang emits no BTF for types only locals use), so
// that tools decode the ring buffer's records by name (bpftool, bpfsim's `records:`).
struct event *unused_event __attribute__((unused));

static __always_inline struct event *new_event(__u32 kind, __u32 pid, const struct proc *p, __u64 now)
{
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->pid = pid;
    e->ppid = p->ppid;
    e->exec_count = p->exec_count;
    e->ts_ns = now;
    __builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
    return e;
}

SEC("tracepoint/sched/sched_process_fork")
int handle_fork(struct sched_process_fork_ctx *ctx)
{
    __u32 pid = ctx->child_pid;
    __u64 now = bpf_ktime_get_ns();
    struct proc p = {.ppid = ctx->parent_pid, .start_ns = now};
    struct event *e;

    bpf_probe_read_kernel_str(p.comm, sizeof(p.comm), (void *)ctx + (ctx->__data_loc_child_comm & 0xffff));
    bpf_map_update_elem(&procs, &pid, &p, BPF_ANY);
    bpf_printk("fork: %d -> %d %s", p.ppid, pid, p.comm);
    e = new_event(EV_FORK, pid, &p, now);
    if (e)
        bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int handle_exec(struct sched_process_exec_ctx *ctx)
{
    __u32 pid = ctx->pid;
    __u64 now = bpf_ktime_get_ns();
    struct proc *p = bpf_map_lookup_elem(&procs, &pid);
    struct event *e;

    if (!p) {
        struct task_struct *task = (struct task_struct *)bpf_get_current_task();
        struct proc fresh = {.ppid = BPF_CORE_READ(task, real_parent, tgid), .start_ns = now};

        bpf_map_update_elem(&procs, &pid, &fresh, BPF_NOEXIST);
        p = bpf_map_lookup_elem(&procs, &pid);
        if (!p)
            return 0;
    }
    p->exec_count++;
    bpf_get_current_comm(p->comm, sizeof(p->comm));   // the new program's name

    e = new_event(EV_EXEC, pid, p, now);
    if (!e)
        return 0;
    bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + (ctx->__data_loc_filename & 0xffff));
    bpf_printk("exec: %d %s #%u", pid, e->filename, p->exec_count);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int handle_exit(struct sched_process_exit_ctx *ctx)
{
    __u32 pid = ctx->pid;
    __u64 now = bpf_ktime_get_ns();
    struct proc *p = bpf_map_lookup_elem(&procs, &pid);
    struct event *e;
    char comm[TASK_COMM_LEN];

    if (!p)   // a thread, or a process that started before we did
        return 0;
    // Copied out with a helper: the compiler may keep &ctx->comm in a register, and the
    // verifier refuses loads through a moved context pointer.
    bpf_probe_read_kernel(comm, sizeof(comm), ctx->comm);
    bpf_printk("exit: %d %s after %llu us", pid, comm, (now - p->start_ns) / 1000);
    e = new_event(EV_EXIT, pid, p, now);
    if (e) {
        e->lifetime_ns = now - p->start_ns;
        __builtin_memcpy(e->comm, comm, sizeof(e->comm));
        bpf_ringbuf_submit(e, 0);
    }
    bpf_map_delete_elem(&procs, &pid);
    return 0;
}
