// A socket filter that keeps DNS only: UDP datagrams from or to port 53, over IPv4 (without
// options or with them) and IPv6 (UDP right after the fixed header). It returns the packet's
// length to keep it and 0 to drop it. A socket filter sees the packet from the network
// header; its protocol (ETH_P_IP, ETH_P_IPV6) is skb->protocol.
//
// Direct packet access is not allowed in socket filters: headers are read with
// bpf_skb_load_bytes, which fails past the end of the packet.
#include <linux/bpf.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define DNS_PORT 53

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} kept SEC(".maps");   // 0: packets dropped, 1: DNS packets kept

static __always_inline int verdict(struct __sk_buff *skb, int keep)
{
    __u32 k = keep ? 1 : 0;
    __u64 *n = bpf_map_lookup_elem(&kept, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    return keep ? skb->len : 0;
}

SEC("socket")
int dns_only(struct __sk_buff *skb)
{
    struct udphdr udp;
    __u32 l4;

    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
            return verdict(skb, 0);
        if (ip.protocol != IPPROTO_UDP || (ip.frag_off & bpf_htons(0x1fff)))
            return verdict(skb, 0);
        l4 = ip.ihl * 4;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0 || ip6.nexthdr != IPPROTO_UDP)
            return verdict(skb, 0);
        l4 = sizeof(ip6);
    } else {
        return verdict(skb, 0);
    }
    if (bpf_skb_load_bytes(skb, l4, &udp, sizeof(udp)) < 0)
        return verdict(skb, 0);
    if (udp.source != bpf_htons(DNS_PORT) && udp.dest != bpf_htons(DNS_PORT))
        return verdict(skb, 0);
    bpf_printk("dns_only: keep %u bytes, port %u -> %u", skb->len, bpf_ntohs(udp.source), bpf_ntohs(udp.dest));
    return verdict(skb, 1);
}
