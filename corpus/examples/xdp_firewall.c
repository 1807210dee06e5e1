// An XDP firewall: parses Ethernet (one optional 802.1Q tag), IPv4 or IPv6, then TCP or UDP,
// checking every header against data_end; drops packets whose source address is in a deny
// list held in LPM tries (one per address family, keyed by prefix); counts packets per
// verdict in an array and prints a trace line for each drop.
//
// User space fills the tries with {prefixlen, address} keys (address in network order) and a
// rule number as the value; corpus/examples/xdp_firewall.yaml does it from a scenario.
#include <linux/bpf.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

struct lpm_v4_key {
    __u32 prefixlen;
    __u32 addr;            // network order
};

struct lpm_v6_key {
    __u32 prefixlen;
    __u8 addr[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_v4_key);
    __type(value, __u32);  // rule number
} deny_v4 SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1024);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_v6_key);
    __type(value, __u32);
} deny_v6 SEC(".maps");

enum verdict {
    V_PASS = 0,        // IP traffic allowed
    V_PASS_OTHER = 1,  // not IP (ARP, ...): passed unexamined
    V_DROP_DENY = 2,   // source in a deny list
    V_DROP_BAD = 3,    // cut short or malformed headers
    V_MAX,
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, V_MAX);
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif

struct vlan_hdr {
    __be16 tci;
    __be16 encap_proto;
};

static __always_inline int count(__u32 v, int action)
{
    __u64 *n = bpf_map_lookup_elem(&verdicts, &v);
    if (n)
        __sync_fetch_and_add(n, 1);
    return action;
}

// The destination port of a TCP or UDP header at l4, or -1 when it is cut short; 0 for other
// protocols.
static __always_inline int l4_dport(void *l4, void *data_end, __u8 proto)
{
    if (proto == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;
        if ((void *)(tcp + 1) > data_end || tcp->doff < 5)
            return -1;
        return bpf_ntohs(tcp->dest);
    }
    if (proto == IPPROTO_UDP) {
        struct udphdr *udp = l4;
        if ((void *)(udp + 1) > data_end)
            return -1;
        return bpf_ntohs(udp->dest);
    }
    return 0;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    void *l3;
    __u16 proto;

    if ((void *)(eth + 1) > data_end)
        return count(V_DROP_BAD, XDP_DROP);
    proto = bpf_ntohs(eth->h_proto);
    l3 = eth + 1;
    if (proto == ETH_P_8021Q) {
        struct vlan_hdr *vlan = l3;
        if ((void *)(vlan + 1) > data_end)
            return count(V_DROP_BAD, XDP_DROP);
        proto = bpf_ntohs(vlan->encap_proto);
        l3 = vlan + 1;
    }

    if (proto == ETH_P_IP) {
        struct iphdr *ip = l3;
        struct lpm_v4_key key = {.prefixlen = 32};
        __u32 *rule;
        int dport;

        if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->version != 4)
            return count(V_DROP_BAD, XDP_DROP);
        if ((void *)ip + ip->ihl * 4 > data_end)
            return count(V_DROP_BAD, XDP_DROP);
        // Only the first fragment carries the ports.
        dport = (ip->frag_off & bpf_htons(0x1fff)) ? 0 : l4_dport((void *)ip + ip->ihl * 4, data_end, ip->protocol);
        if (dport < 0)
            return count(V_DROP_BAD, XDP_DROP);
        key.addr = ip->saddr;
        rule = bpf_map_lookup_elem(&deny_v4, &key);
        if (rule) {
            bpf_printk("xdp_firewall: drop %pI4 rule %u dport %d", &ip->saddr, *rule, dport);
            return count(V_DROP_DENY, XDP_DROP);
        }
        return count(V_PASS, XDP_PASS);
    }

    if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6 = l3;
        struct lpm_v6_key key = {.prefixlen = 128};
        __u32 *rule;
        int dport;

        if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
            return count(V_DROP_BAD, XDP_DROP);
        // Extension headers are not followed: ports only for TCP/UDP right after the header.
        dport = l4_dport(ip6 + 1, data_end, ip6->nexthdr);
        if (dport < 0)
            return count(V_DROP_BAD, XDP_DROP);
        __builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
        rule = bpf_map_lookup_elem(&deny_v6, &key);
        if (rule) {
            bpf_printk("xdp_firewall: drop %pI6 rule %u dport %d", &ip6->saddr, *rule, dport);
            return count(V_DROP_DENY, XDP_DROP);
        }
        return count(V_PASS, XDP_PASS);
    }

    return count(V_PASS_OTHER, XDP_PASS);
}
