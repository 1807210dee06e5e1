// tc (sched_cls): rate-limit per source with an LRU hash, rewrite the IPv4 TTL and the
// UDP destination port with checksum fix-ups, and report drops through a ring buffer.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} per_source SEC(".maps");

struct event {
    __u32 saddr;
    __u32 count;
    __u64 ts;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

#define LIMIT 3
#define IP_OFF ETH_HLEN
#define TTL_OFF (IP_OFF + offsetof(struct iphdr, ttl))
#define CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))

SEC("tc")
int tc_limit(struct __sk_buff *skb)
{
    struct iphdr ip;
    if (skb->protocol != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0)
        return TC_ACT_SHOT;
    __u32 src = ip.saddr;
    __u64 one = 1, *n = bpf_map_lookup_elem(&per_source, &src);
    if (n) {
        *n += 1;
        if (*n > LIMIT) {
            struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
            if (e) {
                e->saddr = src;
                e->count = *n;
                e->ts = bpf_ktime_get_ns();
                bpf_ringbuf_submit(e, 0);
            }
            return TC_ACT_SHOT;
        }
    } else {
        bpf_map_update_elem(&per_source, &src, &one, BPF_ANY);
    }
    /* Decrement the TTL, fixing the IP checksum incrementally. */
    __u8 old_ttl = ip.ttl, new_ttl = ip.ttl - 1;
    bpf_l3_csum_replace(skb, CSUM_OFF, bpf_htons(old_ttl << 8), bpf_htons(new_ttl << 8), 2);
    bpf_skb_store_bytes(skb, TTL_OFF, &new_ttl, 1, 0);
    if (ip.protocol == IPPROTO_UDP && ip.ihl == 5) {
        __be16 old_port, new_port = bpf_htons(5353);
        int port_off = IP_OFF + sizeof(struct iphdr) + offsetof(struct udphdr, dest);
        int sum_off = IP_OFF + sizeof(struct iphdr) + offsetof(struct udphdr, check);
        if (bpf_skb_load_bytes(skb, port_off, &old_port, 2) < 0)
            return TC_ACT_SHOT;
        bpf_l4_csum_replace(skb, sum_off, old_port, new_port, BPF_F_MARK_MANGLED_0 | 2);
        bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0);
    }
    skb->mark = 0x42;
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
