// XDP: parse Ethernet/VLAN/IPv4/IPv6, count packets per protocol, drop what the
// configuration blocks, and log the first packet of each protocol.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vlan_hdr {
    __be16 tci;
    __be16 proto;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u64);
} proto_count SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

struct flow {
    __u32 saddr;
    __u32 daddr;
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 pad[3];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct flow);
    __type(value, __u64);
} flows SEC(".maps");

const volatile __u16 blocked_udp_port = 53;   // .rodata, set before load
__u64 packets_seen = 0;                        // .bss
__u32 log_first = 1;                           // .data

static __always_inline void count(__u32 key)
{
    __u64 *v = bpf_map_lookup_elem(&proto_count, &key);
    if (v)
        __sync_fetch_and_add(v, 1);
}

static __always_inline int verdict(int action)
{
    __u32 key = action;
    __u64 *v = bpf_map_lookup_elem(&verdicts, &key);
    if (v)
        *v += 1;
    return action;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u16 proto;
    void *l3;

    packets_seen++;
    if ((void *)(eth + 1) > data_end)
        return verdict(XDP_DROP);
    proto = eth->h_proto;
    l3 = eth + 1;
    if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
        struct vlan_hdr *vh = l3;
        if ((void *)(vh + 1) > data_end)
            return verdict(XDP_DROP);
        proto = vh->proto;
        l3 = vh + 1;
    }
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > data_end || ip->ihl < 5)
            return verdict(XDP_DROP);
        count(ip->protocol);
        struct flow f = {.saddr = ip->saddr, .daddr = ip->daddr, .proto = ip->protocol};
        void *l4 = (void *)ip + ip->ihl * 4;
        if (ip->protocol == IPPROTO_UDP) {
            struct udphdr *udp = l4;
            if ((void *)(udp + 1) > data_end)
                return verdict(XDP_DROP);
            f.sport = udp->source;
            f.dport = udp->dest;
            if (udp->dest == bpf_htons(blocked_udp_port))
                return verdict(XDP_DROP);
        } else if (ip->protocol == IPPROTO_TCP) {
            struct tcphdr *tcp = l4;
            if ((void *)(tcp + 1) > data_end)
                return verdict(XDP_DROP);
            f.sport = tcp->source;
            f.dport = tcp->dest;
        }
        __u64 one = 1, *n = bpf_map_lookup_elem(&flows, &f);
        if (n)
            *n += 1;
        else
            bpf_map_update_elem(&flows, &f, &one, BPF_NOEXIST);
        if (log_first) {
            log_first = 0;
            bpf_printk("first ipv4 packet: proto %d len %d", ip->protocol, (int)(data_end - data));
        }
        return verdict(XDP_PASS);
    }
    if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > data_end)
            return verdict(XDP_DROP);
        count(ip6->nexthdr);
        return verdict(XDP_PASS);
    }
    return verdict(XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
