// A tracepoint on execve: per pid, how often it ran exec, its parent, uid and comm; one ring
// buffer event per exec with the file name. task->real_parent->tgid is read with CO-RE, so
// it is relocated against the kernel BTF the world is given.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
    int tgid;
    struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct exec_info {
    __u32 ppid;
    __u32 uid;
    __u64 count;
    char comm[16];
};

struct event {
    __u32 pid;
    __u32 ppid;
    char comm[16];
    char filename[64];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);   // tgid
    __type(value, struct exec_info);
} execs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

// syscalls/sys_enter_execve, as /sys/kernel/tracing/events/syscalls/sys_enter_execve/format has it.
struct sys_enter_execve {
    __u64 common;
    __s32 syscall_nr;
    __u32 pad;
    const char *filename;
    const char *const *argv;
    const char *const *envp;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int exec_tracker(struct sys_enter_execve *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    __u32 ppid = BPF_CORE_READ(task, real_parent, tgid);

    struct exec_info *info = bpf_map_lookup_elem(&execs, &pid);
    if (!info) {
        struct exec_info first = {.ppid = ppid, .uid = (__u32)bpf_get_current_uid_gid()};
        bpf_get_current_comm(first.comm, sizeof(first.comm));
        bpf_map_update_elem(&execs, &pid, &first, BPF_NOEXIST);
        info = bpf_map_lookup_elem(&execs, &pid);
        if (!info)
            return 0;
    }
    info->count++;

    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->pid = pid;
        e->ppid = ppid;
        bpf_get_current_comm(e->comm, sizeof(e->comm));
        bpf_probe_read_user_str(e->filename, sizeof(e->filename), ctx->filename);
        bpf_ringbuf_submit(e, 0);
    }
    bpf_printk("exec %d (parent %d) #%d", pid, ppid, (int)info->count);
    return 0;
}
