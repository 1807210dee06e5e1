// XDP: tail calls, bpf_loop, bpf_for_each_map_elem, LPM trie, queue/stack, bloom filter,
// header adjustment and redirect through a devmap.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct lpm_key {
    __u32 prefixlen;
    __u32 addr;
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 16);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key);
    __type(value, __u32);
} routes SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 8);
    __type(value, __u32);
} recent SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __uint(max_entries, 8);
    __type(value, __u32);
} lifo SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 64);
    __type(value, __u32);
} seen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

int route_stage(struct xdp_md *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, int(void *));
} stages SEC(".maps") = {
    .values = {[1] = (void *)&route_stage},
};

struct sum_ctx {
    __u64 total;
    __u32 entries;
};

static long add_stat(void *map, __u32 *key, __u64 *value, struct sum_ctx *c)
{
    c->total += *value;
    c->entries++;
    return 0;
}

static long checksum_step(__u32 i, __u64 *acc)
{
    *acc = *acc * 31 + i;
    return *acc > 1000000 ? 1 : 0;
}

SEC("xdp")
int route_stage(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return XDP_ABORTED;
    struct lpm_key k = {.prefixlen = 32, .addr = ip->daddr};
    __u32 *port = bpf_map_lookup_elem(&routes, &k);
    if (!port)
        return XDP_PASS;
    return bpf_redirect_map(&ports, *port, XDP_DROP);
}

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    __u32 src = ip->saddr;
    bpf_map_push_elem(&recent, &src, BPF_EXIST);
    bpf_map_push_elem(&lifo, &src, BPF_EXIST);
    if (bpf_map_peek_elem(&seen, &src) != 0)
        bpf_map_push_elem(&seen, &src, BPF_ANY);

    __u32 key = ip->protocol;
    __u64 one = 1, *v = bpf_map_lookup_elem(&stats, &key);
    if (v)
        *v += 1;
    else
        bpf_map_update_elem(&stats, &key, &one, BPF_ANY);

    struct sum_ctx c = {};
    bpf_for_each_map_elem(&stats, add_stat, &c, 0);
    __u64 acc = c.total;
    long n = bpf_loop(16, checksum_step, &acc, 0);
    bpf_printk("entries %u total %llu loops %ld", c.entries, c.total, n);

    if (ip->ttl <= 1) {
        /* Too old: strip the Ethernet header's room for metadata and shrink the tail. */
        if (bpf_xdp_adjust_meta(ctx, -4) == 0) {
            __u32 *meta = (void *)(long)ctx->data_meta;
            if ((void *)(meta + 1) <= (void *)(long)ctx->data)
                *meta = 0xfeedbeef;
        }
        bpf_xdp_adjust_tail(ctx, -4);
        return XDP_DROP;
    }
    bpf_tail_call(ctx, &stages, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
