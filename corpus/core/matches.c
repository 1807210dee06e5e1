// Type relocations for type_matches. clang 14 cannot emit BPF_TYPE_MATCHES, so this object
// has type_exists relocations; tests/core_diff.cpp rewrites every type_exists relocation of
// an object into type_matches (in a copy) and compares that with libbpf too. The local
// types below match the kernel's or differ from them in one way each. Note that "matches"
// compares the names of integer types too: clang calls a u64 "unsigned long long" where
// gcc-built kernel BTF has "long long unsigned int", so few structs with integer members
// match a kernel built by gcc.
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 out[32];

struct sched_entity___m1 {   // members of the right types: matches
    __u64 deadline;
    __u64 min_vruntime;
} CORE;
struct sched_entity___m2 {   // a member of another size: no match
    __u32 deadline;
} CORE;
struct sched_entity___m3 {   // a member the kernel lacks: no match
    __u64 bpfsim_nope;
} CORE;
struct task_struct___m1 {    // pointers to structs match by name and kind only: matches
    struct task_struct___m1 *real_parent;
    int pid;
    int tgid;
} CORE;
struct task_struct___m6 {    // a pointer to a struct of another name: no match
    struct bpfsim_whatever *mm;
} CORE;
struct list_head___m1 {      // matches
    struct list_head___m1 *next, *prev;
} CORE;
struct task_struct___m2 {    // signedness differs: pid is an int
    unsigned int pid;
} CORE;
struct task_struct___m3 {    // an array of the right length
    char comm[16];
} CORE;
struct task_struct___m4 {    // an array of another length
    char comm[8];
} CORE;
union task_struct___m5 {     // a union is not a struct
    int pid;
} CORE;
enum pid_type___m1 {         // a subset of the names: matches
    PIDTYPE_TGID___m1 = 5,
};
enum pid_type___m2 {         // a name the kernel lacks
    PIDTYPE_TGID___m2,
    PIDTYPE_BPFSIM___m2,
};
enum pid_type___m3 : unsigned char {   // another size
    PIDTYPE_PID___m3,
};
typedef int pid_t___m1;      // typedef to int: the kernel's pid_t is one too
typedef long pid_t___m2;     // another size
struct cgroup___m1 {
    int level;
    struct cgroup___m1 *ancestors[];   // the kernel's ancestors[] has no length either
} CORE;
struct css_set___m1 {
    void *subsys[16];       // the kernel's has CGROUP_SUBSYS_COUNT entries
} CORE;

SEC("tracepoint/syscalls/sys_enter_getpid")
int matches(void *ctx)
{
    out[0] = bpf_core_type_exists(struct sched_entity___m1);
    out[1] = bpf_core_type_exists(struct sched_entity___m2);
    out[2] = bpf_core_type_exists(struct sched_entity___m3);
    out[3] = bpf_core_type_exists(struct task_struct___m1);
    out[4] = bpf_core_type_exists(struct task_struct___m2);
    out[5] = bpf_core_type_exists(struct task_struct___m3);
    out[6] = bpf_core_type_exists(struct task_struct___m4);
    out[7] = bpf_core_type_exists(union task_struct___m5);
    out[8] = bpf_core_type_exists(enum pid_type___m1);
    out[9] = bpf_core_type_exists(enum pid_type___m2);
    out[10] = bpf_core_type_exists(enum pid_type___m3);
    out[11] = bpf_core_type_exists(pid_t___m1);
    out[12] = bpf_core_type_exists(pid_t___m2);
    out[13] = bpf_core_type_exists(struct cgroup___m1);
    out[14] = bpf_core_type_exists(struct css_set___m1);
    out[15] = bpf_core_type_exists(struct task_struct);
    out[16] = bpf_core_type_exists(struct task_struct___m6);
    out[17] = bpf_core_type_exists(struct list_head___m1);
    return 0;
}
