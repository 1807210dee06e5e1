// CO-RE on task_struct: field offsets through BPF_CORE_READ (ALU adds before
// bpf_probe_read_kernel) and through direct access (loads and stores with relocated
// offsets), field sizes/existence/signedness, type existence/size/ids, a flavor for an old
// layout, member types whose size differs from the kernel's, and a subprogram in .text.
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 out[32];

// Local flavors with members whose size differs from the kernel's: `flags` is an unsigned
// int in the kernel, `prio` an int. Reading them changes the load size (unsigned) or is
// refused by poisoning the load (signed).
struct task_struct___sizes {
    unsigned long long flags;
    long prio;
    struct task_struct___sizes *real_parent;
} CORE;

// A member that does not exist, a member of the wrong kind, an array too short.
struct task_struct___bad {
    int no_such_member_here;
    struct sched_entity *pid;   // the kernel's pid is an integer
    char comm[32];
} CORE;

SEC("tracepoint/syscalls/sys_enter_getpid")
int read_macros(void *ctx)
{
    struct task_struct *t = current_task();
    out[0] = BPF_CORE_READ(t, pid);
    out[1] = BPF_CORE_READ(t, tgid);
    out[2] = BPF_CORE_READ(t, real_parent, tgid);
    out[3] = BPF_CORE_READ(t, real_parent, real_parent, pid);
    out[4] = BPF_CORE_READ(t, se.min_vruntime);
    out[5] = BPF_CORE_READ(t, comm[3]);
    char comm[16];
    bpf_core_read_str(comm, sizeof(comm), &t->comm);
    out[6] = comm[0];
    out[7] = BPF_CORE_READ(t, cgroups, subsys[2]) != 0;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int direct_access(struct task_struct *t)
{
    // Loads and stores whose offsets are relocated (as in BTF-enabled program types).
    out[0] = t->pid;
    out[1] = t->real_parent->tgid;
    out[2] = t->se.deadline;
    out[3] = t->comm[1];
    t->prio = 120;
    t->flags = out[4];
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_gettid")
int field_info(void *ctx)
{
    struct task_struct *t = current_task();
    out[0] = bpf_core_field_exists(t->pid);
    out[1] = bpf_core_field_size(t->pid);
    out[2] = bpf_core_field_size(t->comm);
    out[3] = bpf_core_field_size(t->se);
    out[4] = bpf_core_field_offset(t->tgid);
    out[5] = bpf_core_field_offset(t->comm[4]);
    out[6] = __builtin_preserve_field_info(t->pid, BPF_FIELD_SIGNED);
    out[7] = __builtin_preserve_field_info(t->flags, BPF_FIELD_SIGNED);
    out[8] = __builtin_preserve_field_info(t->pid, BPF_FIELD_LSHIFT_U64);
    out[9] = __builtin_preserve_field_info(t->pid, BPF_FIELD_RSHIFT_U64);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getuid")
int old_and_new(void *ctx)
{
    struct task_struct *t = current_task();
    struct task_struct___old *old = (void *)t;
    // The classic guard: the old member is gone, so its read is poisoned, but it is dead code.
    if (bpf_core_field_exists(old->state))
        out[0] = BPF_CORE_READ(old, state);
    else
        out[0] = BPF_CORE_READ(t, __state);
    out[1] = bpf_core_field_exists(t->__state);
    out[2] = bpf_core_field_exists(old->state);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getgid")
int sizes(struct task_struct___sizes *t)
{
    out[0] = t->flags;                // u64 -> u32 load: safe, the size is changed
    out[1] = t->real_parent->flags;
    out[2] = t->prio;                 // signed long -> int: poisoned
    t->flags = 7;                     // stores change size too
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_geteuid")
int missing(struct task_struct___bad *t)
{
    out[0] = bpf_core_field_exists(t->no_such_member_here);
    out[1] = bpf_core_field_exists(t->pid);
    out[2] = bpf_core_field_exists(t->comm[20]);
    out[3] = bpf_core_field_exists(t->comm[2]);
    if (out[9])
        out[4] = t->no_such_member_here;   // poisoned
    if (out[10])
        out[5] = t->comm[20];              // poisoned: index past the kernel's array
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getegid")
int types(void *ctx)
{
    out[0] = bpf_core_type_exists(struct task_struct);
    out[1] = bpf_core_type_exists(struct task_struct___old);
    out[2] = bpf_core_type_exists(struct bpfsim_no_such_struct);
    out[3] = bpf_core_type_size(struct task_struct);
    out[4] = bpf_core_type_size(struct sched_entity);
    out[5] = bpf_core_type_size(pid_t);
    out[6] = bpf_core_type_exists(pid_t);
    out[7] = bpf_core_type_id_kernel(struct task_struct);
    out[8] = bpf_core_type_id_kernel(struct bpfsim_no_such_struct);
    out[9] = bpf_core_type_id_local(struct task_struct);
    out[10] = bpf_core_type_size(struct bpfsim_no_such_struct);
    out[11] = bpf_core_type_exists(struct cgroup);
    out[12] = bpf_core_type_size(struct cgroup);
    return 0;
}

struct bpfsim_no_such_struct {
    int x;
};

// Types relocated by name: typedefs (u64 is `long long unsigned int` in a gcc-built
// kernel, `unsigned long long` here: integers are compatible whatever their names),
// function pointer typedefs, and a struct the kernel has twice (its
// `nf_conn___init` is a flavor of `nf_conn`, so both are candidates).
typedef __u64 u64;
typedef void (*smp_call_func_t)(void *info);
typedef int (*smp_call_func_t___bad)(long a, long b);
struct nf_conn {
    unsigned long timeout;
    unsigned long status;
} CORE;

SEC("tracepoint/syscalls/sys_enter_getpgid")
int more_types(struct nf_conn *ct)
{
    out[3] = bpf_core_type_size(u64);
    out[4] = bpf_core_type_exists(smp_call_func_t);
    out[5] = bpf_core_type_exists(smp_call_func_t___bad);
    out[6] = bpf_core_type_id_kernel(smp_call_func_t);
    out[7] = bpf_core_type_exists(struct nf_conn);
    out[8] = bpf_core_type_size(struct nf_conn);
    out[9] = ct->status;
    out[10] = bpf_core_field_offset(ct->timeout);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getsid")
int indexed(struct task_struct *t)
{
    // The first index of an access is pointer arithmetic on the root: t[1], t[2].
    out[0] = bpf_core_field_offset(t[1].pid);
    out[1] = t[2].comm[5];
    out[2] = bpf_core_field_exists(t[3].se.deadline);
    return 0;
}

// Relocations in a subprogram of .text.
static __noinline int parent_pid(struct task_struct *t)
{
    return BPF_CORE_READ(t, real_parent, pid) + bpf_core_field_size(t->comm);
}

__noinline int global_level(struct cgroup *cg)
{
    return cg ? BPF_CORE_READ(cg, level) + (BPF_CORE_READ(cg, ancestors[3]) != 0) : 0;
}

SEC("tracepoint/syscalls/sys_enter_sched_yield")
int subprogs(void *ctx)
{
    struct task_struct *t = current_task();
    out[0] = parent_pid(t);
    out[1] = global_level((struct cgroup *)out[2]);
    return 0;
}
