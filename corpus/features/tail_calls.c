// Tail calls through a prog array: misses fall through, and a chain stops after 33 calls
// (MAX_TAIL_CALL_CNT). The chain alternates between two programs (ping and pong) so that
// each occupies a slot the other names, as the kernel oracle fills slots per program.
//   res[0] tail call to an empty slot fell through (1)
//   res[1] tail call past max_entries fell through (1)
//   res[2] executions of ping/pong in the last chain
//   res[3] runs of tail_entry
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

int ping(struct xdp_md *ctx);
int pong(struct xdp_md *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, int(void *));
} jmp SEC(".maps") = {
    .values = {[0] = (void *)&ping, [1] = (void *)&pong},
};

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

static __always_inline void bump(__u32 slot)
{
    __s64 *v = bpf_map_lookup_elem(&res, &slot);
    if (v)
        *v += 1;
}

SEC("xdp")
int tail_entry(struct xdp_md *ctx)
{
    bump(3);
    put(2, 0);
    bpf_tail_call(ctx, &jmp, 2);     /* empty slot */
    put(0, 1);
    bpf_tail_call(ctx, &jmp, 64);    /* past max_entries */
    put(1, 1);
    bpf_tail_call(ctx, &jmp, 0);
    return XDP_ABORTED;              /* not reached while slot 0 holds ping */
}

SEC("xdp")
int ping(struct xdp_md *ctx)
{
    bump(2);
    bpf_tail_call(ctx, &jmp, 1);
    return XDP_TX;                   /* the tail call limit was reached here */
}

SEC("xdp")
int pong(struct xdp_md *ctx)
{
    bump(2);
    bpf_tail_call(ctx, &jmp, 0);
    return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
