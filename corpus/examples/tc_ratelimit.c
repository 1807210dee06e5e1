// A per-source rate limiter for tc (clsact ingress or egress): each IPv4 source has a token
// bucket in an LRU hash, refilled from bpf_ktime_get_ns. Over the limit a packet is shot
// (TC_ACT_SHOT) and an event {saddr, dropped so far, timestamp} goes to a ring buffer.
//
// The bucket is kept in nanoseconds of credit: each packet costs NSEC / rate_pps, elapsed
// time adds credit, and credit is capped at burst packets' worth. A new source starts full.
#include <linux/bpf.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define NSEC_PER_SEC 1000000000ULL

// Set by the loader before load (skeleton rodata); the defaults: 10 packets/s, bursts of 3.
const volatile __u64 rate_pps = 10;
const volatile __u64 burst = 3;

struct bucket {
    __u64 credit_ns;   // time's worth of packets that may still pass
    __u64 last_ns;     // when credit_ns was last brought up to date
    __u64 passed;
    __u64 dropped;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);    // IPv4 source, network order
    __type(value, struct bucket);
} buckets SEC(".maps");

struct event {
    __u32 saddr;       // network order
    __u32 pad;
    __u64 dropped;     // this source's drops so far, this one included
    __u64 ts_ns;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

// Puts struct event in the object's BTF (clang emits no BTF for types only locals use), so
// that tools decode the ring buffer's records by name (bpftool, bpfsim's `records:`).
struct event *unused_event __attribute__((unused));

SEC("tc")
int tc_ratelimit(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip;
    struct bucket *b;
    __u64 now, cost, cap;
    __u32 saddr;

    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return TC_ACT_OK;
    saddr = ip->saddr;

    now = bpf_ktime_get_ns();
    cost = NSEC_PER_SEC / (rate_pps ? rate_pps : 1);
    cap = cost * burst;
    b = bpf_map_lookup_elem(&buckets, &saddr);
    if (!b) {
        struct bucket fresh = {.credit_ns = cap - cost, .last_ns = now, .passed = 1};
        bpf_map_update_elem(&buckets, &saddr, &fresh, BPF_NOEXIST);
        return TC_ACT_OK;
    }

    b->credit_ns += now - b->last_ns;
    if (b->credit_ns > cap)
        b->credit_ns = cap;
    b->last_ns = now;
    if (b->credit_ns >= cost) {
        b->credit_ns -= cost;
        b->passed++;
        return TC_ACT_OK;
    }

    b->dropped++;
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->saddr = saddr;
        e->pad = 0;
        e->dropped = b->dropped;
        e->ts_ns = now;
        bpf_ringbuf_submit(e, 0);
    }
    bpf_printk("tc_ratelimit: shot %pI4 (%llu dropped)", &ip->saddr, b->dropped);
    return TC_ACT_SHOT;
}
