// XDP: drops UDP datagrams to the ports in `blocked_ports`, counts verdicts, and keeps
// packets and bytes per IPv4 source.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct source_stats {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);   // UDP destination port, host order
    __type(value, __u8);
} blocked_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 5);   // XDP_ABORTED .. XDP_REDIRECT
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);   // IPv4 source address, network order
    __type(value, struct source_stats);
} sources SEC(".maps");

__u64 packets_seen = 0;   // .bss

static __always_inline int verdict(__u32 action)
{
    __u64 *n = bpf_map_lookup_elem(&verdicts, &action);
    if (n)
        __sync_fetch_and_add(n, 1);
    return action;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);

    packets_seen++;
    if ((void *)(ip + 1) > data_end)
        return verdict(XDP_DROP);   // runt frame
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return verdict(XDP_PASS);

    __u32 saddr = ip->saddr;
    struct source_stats *st = bpf_map_lookup_elem(&sources, &saddr);
    if (!st) {
        struct source_stats zero = {};
        bpf_map_update_elem(&sources, &saddr, &zero, BPF_NOEXIST);
        st = bpf_map_lookup_elem(&sources, &saddr);
    }
    if (st) {
        st->packets++;
        st->bytes += data_end - data;
    }

    if (ip->protocol == IPPROTO_UDP) {
        struct udphdr *udp = (void *)ip + ip->ihl * 4;
        if ((void *)(udp + 1) > data_end)
            return verdict(XDP_DROP);
        __u16 port = bpf_ntohs(udp->dest);
        if (bpf_map_lookup_elem(&blocked_ports, &port)) {
            bpf_printk("drop %pI4 -> %d", &ip->saddr, port);
            return verdict(XDP_DROP);
        }
    }
    return verdict(XDP_PASS);
}
