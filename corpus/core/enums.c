// CO-RE on enums: enumerator existence and values, matched by name (flavors stripped) in
// enums of the same name; negative values, a 64-bit enum of the kernel's, an enumerator
// the kernel does not have, and local values that differ from the kernel's.
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 out[16];

enum pid_type {
    PIDTYPE_PID,
    PIDTYPE_TGID,
    PIDTYPE_PGID,
    PIDTYPE_SID,
    PIDTYPE_MAX,
};

// Another kernel's idea of the same enum: other values, one name the kernel lacks, and an
// enumerator flavor (PIDTYPE_SID___v2 looks for PIDTYPE_SID).
enum pid_type___v2 {
    PIDTYPE_SID___v2 = 7,
    PIDTYPE_MAX___v2 = 9,
    PIDTYPE_BPFSIM_NONE = 42,
};

enum perf_event_state {
    PERF_EVENT_STATE_DEAD = -5,
    PERF_EVENT_STATE_EXIT = -3,
    PERF_EVENT_STATE_ERROR = -2,
    PERF_EVENT_STATE_OFF = -1,
    PERF_EVENT_STATE_ACTIVE = 1,
};

// 64-bit values in the kernel (an ENUM64 there; clang 14 writes a 32-bit ENUM here).
enum perf_callchain_context {
    PERF_CONTEXT_HV = (__u64)-32,
    PERF_CONTEXT_KERNEL = (__u64)-128,
    PERF_CONTEXT_MAX = (__u64)-4095,
};

enum bpfsim_no_such_enum {
    BPFSIM_NOTHING = 3,
};

struct perf_event {
    enum perf_event_state state;   // a signed enum in the kernel (kflag set)
} CORE;

SEC("tracepoint/syscalls/sys_enter_getuid")
int enum_fields(struct perf_event *ev)
{
    out[0] = __builtin_preserve_field_info(ev->state, BPF_FIELD_SIGNED);
    out[1] = bpf_core_field_size(ev->state);
    out[2] = ev->state;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int values(void *ctx)
{
    out[0] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_TGID);
    out[1] = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
    out[2] = bpf_core_enum_value(enum pid_type, PIDTYPE_MAX);
    out[3] = bpf_core_enum_value(enum perf_event_state, PERF_EVENT_STATE_DEAD);
    out[4] = bpf_core_enum_value(enum perf_event_state, PERF_EVENT_STATE_ACTIVE);
    out[5] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
    out[6] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_MAX);
    out[7] = bpf_core_type_size(enum perf_callchain_context);
    out[8] = bpf_core_type_exists(enum perf_event_state);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int flavors(void *ctx)
{
    out[0] = bpf_core_enum_value_exists(enum pid_type___v2, PIDTYPE_SID___v2);
    out[1] = bpf_core_enum_value(enum pid_type___v2, PIDTYPE_SID___v2);
    out[2] = bpf_core_enum_value(enum pid_type___v2, PIDTYPE_MAX___v2);
    out[3] = bpf_core_enum_value_exists(enum pid_type___v2, PIDTYPE_BPFSIM_NONE);
    if (out[3])
        out[4] = bpf_core_enum_value(enum pid_type___v2, PIDTYPE_BPFSIM_NONE);   // poisoned
    out[5] = bpf_core_enum_value_exists(enum bpfsim_no_such_enum, BPFSIM_NOTHING);
    out[6] = bpf_core_type_exists(enum bpfsim_no_such_enum);
    out[7] = bpf_core_type_exists(enum pid_type___v2);
    return 0;
}
