// The seed demo: every execve prints the pid and comm of the task that called it.
// CO-RE: task_struct is declared with only the fields read; libbpf (or bpfsim) relocates
// the offsets against the running (or recorded) kernel's BTF.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
    int pid;
    char comm[16];
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_execve")
int trace_exec(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    char comm[16];
    int pid = BPF_CORE_READ(task, pid);

    BPF_CORE_READ_STR_INTO(&comm, task, comm);
    bpf_printk("exec: %d %s\n", pid, comm);
    return 0;
}
