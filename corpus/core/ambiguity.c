// CO-RE with several candidates: the kernel has more than one struct named `workspace`,
// `irq_info` and `syscall_tp_t` (from different compilation units). Candidates that agree
// are fine; candidates that give different offsets make the relocation fail; candidates
// that did not match one relocation are dropped for the next ones of the same local type,
// so the order of relocations matters. Each case is its own program: a failed relocation
// fails the whole load in libbpf, and the oracle loads one program at a time.
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

__u64 out[16];

struct workspace {
    void *mem;
    unsigned long mem_size;
    unsigned long window_size;
    void *strm;
    struct list_head { void *next, *prev; } list;
} CORE;

struct irq_info {
    int irq;
} CORE;

struct syscall_tp_t {
    unsigned long long ent;
    int syscall_nr;
    unsigned long ret;
    unsigned long args[6];
} CORE;

// `mem` matches two of the four kernel structs (at the same offset), which narrows the
// candidates to those two; `window_size` is in one of them; `strm` only in a dropped one.
SEC("tracepoint/syscalls/sys_enter_getpid")
int narrowing(struct workspace *w)
{
    out[0] = (unsigned long)w->mem;
    out[1] = w->window_size;
    out[2] = (unsigned long)w->strm;
    out[3] = bpf_core_field_exists(w->strm);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int fresh(struct workspace *w)
{
    // Run alone, `strm` still has its candidate.
    out[0] = (unsigned long)w->strm;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_gettid")
int ambiguous_offset(struct workspace *w)
{
    out[0] = (unsigned long)w->list.next;   // at 24 in one struct, 112 in another
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getuid")
int ambiguous_irq(struct irq_info *i)
{
    out[0] = i->irq;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getgid")
int agreeing(struct syscall_tp_t *s)
{
    out[0] = s->syscall_nr;   // at 8 in both
    out[1] = s->ret;          // only in one
    out[2] = s->args[5];      // only in the other: dropped by then, so poisoned
    out[3] = bpf_core_type_size(struct syscall_tp_t);   // two sizes: ambiguous
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_geteuid")
int type_sizes(void *ctx)
{
    out[0] = bpf_core_type_exists(struct workspace);
    out[1] = bpf_core_type_size(struct irq_info);   // 32 or 16: ambiguous
    return 0;
}

// An anonymous struct has no name to look for: libbpf refuses the relocation.
struct holder {
    struct {
        int x;
    } CORE *anon;
} CORE;

SEC("tracepoint/syscalls/sys_enter_getegid")
int anonymous(struct holder *h)
{
    out[0] = h->anon->x;
    return 0;
}
