// Queue, stack, bloom filter and LPM trie as a program sees them: push/pop/peek with their
// flags, full and empty maps, false-positive-free bloom tests, longest-prefix matches, and
// the errno of each refusal. Each run empties the queue and stack first and leaves the trie
// as it found it, so every run gives the same codes; they go to `res`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 4);
    __type(value, __u32);
} fifo SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __uint(max_entries, 4);
    __type(value, __u32);
} lifo SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 64);
    __type(value, __u32);
    __uint(map_extra, 3);   /* three hash functions */
} seen SEC(".maps");

struct lpm_key {
    __u32 prefixlen;
    __u32 addr;   /* network order */
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 8);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key);
    __type(value, __u32);
} routes SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 48);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

static __always_inline long route(__u32 plen, __u32 addr_host, __u32 value, __u64 flags)
{
    struct lpm_key k = {.prefixlen = plen, .addr = bpf_htonl(addr_host)};
    return bpf_map_update_elem(&routes, &k, &value, flags);
}

static __always_inline __s64 match(__u32 addr_be)
{
    struct lpm_key k = {.prefixlen = 32, .addr = addr_be};
    __u32 *v = bpf_map_lookup_elem(&routes, &k);
    return v ? (__s64)*v : -1;
}

static __always_inline void push(void *map, __u32 value)
{
    bpf_map_push_elem(map, &value, BPF_ANY);
}

/* Pops until empty (at most max_entries + 1 times). */
static __always_inline void drain(void *map)
{
    __u32 v;
    bpf_map_pop_elem(map, &v);
    bpf_map_pop_elem(map, &v);
    bpf_map_pop_elem(map, &v);
    bpf_map_pop_elem(map, &v);
    bpf_map_pop_elem(map, &v);
}

SEC("xdp")
int containers(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    __u32 saddr = bpf_htonl(0xc0000201), daddr = bpf_htonl(0x0a000002);   /* 192.0.2.1, 10.0.0.2 */
    if ((void *)(ip + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
        saddr = ip->saddr;
        daddr = ip->daddr;
    }
    __u32 v;

    /* queue: first in, first out */
    drain(&fifo);
    push(&fifo, 10);
    push(&fifo, 20);
    push(&fifo, 30);
    push(&fifo, 40);
    v = 50;
    put(0, bpf_map_push_elem(&fifo, &v, BPF_ANY));       /* -E2BIG: full */
    put(1, bpf_map_push_elem(&fifo, &v, BPF_EXIST));     /* 0: drops the oldest (10) */
    put(2, bpf_map_push_elem(&fifo, &v, BPF_NOEXIST));   /* -EINVAL */
    v = 0;
    put(3, bpf_map_peek_elem(&fifo, &v));                /* 0 */
    put(4, v);                                           /* 20 */
    put(5, bpf_map_pop_elem(&fifo, &v));                 /* 0 */
    put(6, v);                                           /* 20 */
    bpf_map_pop_elem(&fifo, &v);
    put(7, v);                                           /* 30 */

    /* stack: last in, first out */
    drain(&lifo);
    put(8, bpf_map_pop_elem(&lifo, &v));                 /* -ENOENT: empty */
    put(9, bpf_map_peek_elem(&lifo, &v));                /* -ENOENT */
    push(&lifo, 1);
    push(&lifo, 2);
    push(&lifo, 3);
    push(&lifo, 4);
    v = 5;
    put(10, bpf_map_push_elem(&lifo, &v, BPF_ANY));      /* -E2BIG */
    put(11, bpf_map_push_elem(&lifo, &v, BPF_EXIST));    /* 0: drops the oldest (1) */
    v = 0;
    put(12, bpf_map_peek_elem(&lifo, &v));               /* 0 */
    put(13, v);                                          /* 5 */
    bpf_map_pop_elem(&lifo, &v);
    bpf_map_pop_elem(&lifo, &v);
    put(14, v);                                          /* 4 */

    /* bloom filter: push adds, peek tests */
    put(15, bpf_map_push_elem(&seen, &saddr, BPF_ANY));  /* 0 */
    put(16, bpf_map_push_elem(&seen, &saddr, BPF_EXIST)); /* -EINVAL: only BPF_ANY */
    put(17, bpf_map_peek_elem(&seen, &saddr));           /* 0: present */
    v = 0xdeadbeef;
    put(18, bpf_map_peek_elem(&seen, &v));               /* -ENOENT: never added */

    /* LPM trie: the longest stored prefix that covers the key */
    put(19, route(8, 0x0a000000, 8, BPF_ANY));           /* 10/8 */
    put(20, route(24, 0x0a000000, 24, BPF_ANY));         /* 10.0.0/24 */
    put(21, route(32, 0x0a000002, 32, BPF_ANY));         /* 10.0.0.2/32 */
    put(22, route(16, 0xc0a80000, 16, BPF_ANY));         /* 192.168/16 */
    put(23, route(24, 0x0a000000, 99, BPF_NOEXIST));     /* -EEXIST */
    put(24, route(20, 0x0a000000, 20, BPF_EXIST));       /* -ENOENT */
    put(25, route(33, 0x0a000000, 33, BPF_ANY));         /* -EINVAL: longer than the data */
    put(26, route(24, 0x0a0000ff, 24, 4));               /* -EINVAL: flags */
    put(27, match(daddr));
    put(28, match(saddr));
    put(29, match(bpf_htonl(0x0a000107)));               /* 10.0.1.7: 8 */
    put(30, match(bpf_htonl(0x0b000001)));               /* 11.0.0.1: -1 */
    struct lpm_key k20 = {.prefixlen = 20, .addr = bpf_htonl(0x0a000000)};
    put(31, bpf_map_delete_elem(&routes, &k20));         /* -ENOENT */
    route(32, 0x0a000003, 32, BPF_ANY);
    route(32, 0x0a000004, 32, BPF_ANY);
    route(32, 0x0a000005, 32, BPF_ANY);
    route(32, 0x0a000006, 32, BPF_ANY);                  /* 8 entries: full */
    put(32, route(32, 0x0a000007, 32, BPF_ANY));         /* -ENOSPC */
    put(33, route(32, 0x0a000006, 66, BPF_ANY));         /* 0: replacing needs no room */
    struct lpm_key k6 = {.prefixlen = 32, .addr = bpf_htonl(0x0a000006)};
    put(34, bpf_map_delete_elem(&routes, &k6));          /* 0 */
    put(35, bpf_map_delete_elem(&routes, &k6));          /* -ENOENT */
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
