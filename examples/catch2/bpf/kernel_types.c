// A stand-in kernel BTF for the tests: the task_struct and cred fields the programs and
// bpfsim's tasks use, compiled with -g so the object's .BTF serves as a recorded kernel BTF.
// Real projects can use /sys/kernel/btf/vmlinux or a recording of it instead.
typedef struct {
    unsigned int val;
} kuid_t;

typedef struct {
    unsigned int val;
} kgid_t;

struct cred {
    long usage;
    kuid_t uid, suid, euid, fsuid;
    kgid_t gid, sgid, egid, fsgid;
};

struct task_struct {
    unsigned int __state;
    void *stack;
    int pid;
    int tgid;
    struct task_struct *real_parent;
    struct task_struct *parent;
    struct task_struct *group_leader;
    const struct cred *real_cred;
    const struct cred *cred;
    char comm[16];
};

// Variables of each type put the types in the BTF in full: a struct only pointed to would be a
// forward declaration there, and tasks would get no cred.
struct task_struct kernel_types_task;
struct cred kernel_types_cred;
