// Shared declarations of the CO-RE corpus (corpus/core/*.c). The kernel types are declared
// here, partially, with preserve_access_index, instead of a vmlinux.h: clang records every
// access to them as a CO-RE relocation, and libbpf (or bpfsim) matches them by name against
// the running kernel's BTF. Some members are declared with a different type or size than
// the kernel's on purpose, to exercise the relocation rules (see each file).
#pragma once

#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define CORE __attribute__((preserve_access_index))

typedef int pid_t;

struct sched_entity {
    __u64 deadline;
    __u64 min_vruntime;
} CORE;

struct cgroup {
    int level;
    struct cgroup *ancestors[];   // a flexible array, the last member in the kernel too
} CORE;

struct css_set {
    void *subsys[16];
} CORE;

struct task_struct {
    unsigned int __state;
    unsigned int flags;
    int prio;
    struct sched_entity se;
    pid_t pid;
    pid_t tgid;
    struct task_struct *real_parent;
    char comm[16];
    struct css_set *cgroups;
    unsigned sched_reset_on_fork : 1;
    unsigned sched_contributes_to_load : 1;
    unsigned in_execve : 1;
    unsigned init_private_fork_class : 4;
    unsigned in_iowait : 1;
} CORE;

// The pre-5.14 layout: `state` was renamed `__state` (and was a long).
struct task_struct___old {
    long state;
} CORE;

static __always_inline struct task_struct *current_task(void)
{
    return (struct task_struct *)bpf_get_current_task();
}
