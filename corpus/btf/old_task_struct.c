// A second kernel for the CO-RE portability test: task_struct laid out differently from this
// machine's kernel (fields in another order, other padding), compiled with clang -g so its
// .BTF section serves as a recorded kernel BTF.
struct list_head {
    struct list_head *next, *prev;
};

struct kuid {
    unsigned int val;
};

struct cred {
    long usage;
    struct kuid uid, gid, suid, sgid, euid, egid, fsuid, fsgid;
};

struct task_struct {
    volatile long state;
    void *stack;
    unsigned int flags;
    int prio;
    struct list_head tasks;
    char pad_a[200];
    char comm[16];
    struct task_struct *real_parent;
    struct task_struct *parent;
    struct task_struct *group_leader;
    const struct cred *real_cred;
    const struct cred *cred;
    char pad_b[100];
    int tgid;
    int pid;
};

struct task_struct old_kernel_task;
