// tc (sched_cls) helpers: packet bytes, checksum fix-ups, resizing, protocol and type
// changes, and bpf_redirect. Every program is compared with the kernel (output packet,
// verdict and `res`), so the checksum arithmetic is checked byte for byte.
//
// tc_csum (res 0..15, 33), IPv4 only: rewrites the source address to 10.9.9.9, fixing the IP
//   checksum with a bpf_csum_diff delta (l3_csum_replace, size 0) and the TCP/UDP checksum
//   with the 4-byte pseudo-header form of l4_csum_replace; decrements the TTL with the
//   2-byte form; probes out-of-range offsets, odd offsets, bad sizes and bad flags. Since
//   Linux 6.13 bpf_csum_diff folds its result to 16 bits and takes any sizes.
// tc_resize (res 16..23): grows the tail by 16 bytes, pushes 8 bytes of head room, and
//   probes the limits.
// tc_proto (res 24..31): IPv4 <-> IPv6 with bpf_skb_change_proto, then the packet type.
// tc_redirect (res 32): bpf_redirect with and without BPF_F_INGRESS, and with bad flags.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 40);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

/* 512 bytes: more than older kernels' bpf_csum_diff took (from + to together). */
struct blob {
    __u32 w[128];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct blob);
} scratch SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_TTL_OFF (IP_OFF + offsetof(struct iphdr, ttl))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define L4_OFF (IP_OFF + sizeof(struct iphdr))
#define TCP_CSUM_OFF (L4_OFF + 16)
#define UDP_CSUM_OFF (L4_OFF + 6)

SEC("tc")
int tc_csum(struct __sk_buff *skb)
{
    struct iphdr ip;
    __u32 buf[2] = {};

    if (skb->protocol != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    long rc = bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip));
    put(0, rc);
    if (rc < 0)
        return TC_ACT_OK;
    put(1, bpf_skb_load_bytes(skb, skb->len - 4, buf, 8));    /* -EFAULT: past the end, zeroed */
    put(2, buf[0] | buf[1]);                                   /* 0 */
    put(3, bpf_skb_load_bytes(skb, 0x10000, buf, 4));          /* -EFAULT */

    __be32 old = ip.saddr, new = bpf_htonl(0x0a090909);
    __s64 diff = bpf_csum_diff(&old, 4, &new, 4, 0);
    put(4, diff);                                              /* folded to 16 bits */
    put(5, bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, diff, 0)); /* 0: size 0 takes a delta */
    if (ip.ihl == 5 && !(ip.frag_off & bpf_htons(0x1fff))) {
        if (ip.protocol == IPPROTO_TCP)
            put(6, bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old, new, BPF_F_PSEUDO_HDR | 4));
        else if (ip.protocol == IPPROTO_UDP)
            put(6, bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old, new, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4));
    }
    put(7, bpf_skb_store_bytes(skb, IP_SRC_OFF, &new, 4, 0)); /* 0 */
    put(8, bpf_skb_store_bytes(skb, IP_SRC_OFF, &new, 4, 4)); /* -EINVAL: flags */

    __u8 old_ttl = ip.ttl, new_ttl = ip.ttl - 1;
    put(9, bpf_l3_csum_replace(skb, IP_CSUM_OFF, bpf_htons(old_ttl << 8), bpf_htons(new_ttl << 8), 2));
    put(10, bpf_skb_store_bytes(skb, IP_TTL_OFF, &new_ttl, 1, BPF_F_INVALIDATE_HASH));
    put(11, bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, 0, 3));          /* -EINVAL: size 3 */
    put(12, bpf_l3_csum_replace(skb, IP_CSUM_OFF + 1, 0, 0, 2));      /* -EFAULT: odd offset */
    put(13, bpf_l4_csum_replace(skb, 9999, 0, 0, 2));                  /* -EFAULT: past the end */
    put(14, bpf_csum_diff(&old, 3, &new, 4, 0));                       /* any size since 6.13 */
    put(33, bpf_l4_csum_replace(skb, IP_CSUM_OFF, 0, 0, BPF_F_IPV6 | 2));   /* 0: BPF_F_IPV6 is known */

    __u32 zero = 0;
    struct blob *b = bpf_map_lookup_elem(&scratch, &zero);
    if (b) {
        /* from + to larger than the 512 bytes older kernels took */
        put(15, bpf_csum_diff(b->w, 256, b->w, 260, 0));              /* 0xffff */
    }
    return TC_ACT_OK;
}

SEC("tc")
int tc_resize(struct __sk_buff *skb)
{
    __u32 len = skb->len;
    put(16, bpf_skb_change_tail(skb, len + 16, 0));   /* 0: 16 zero bytes at the end */
    put(17, skb->len);
    put(18, bpf_skb_change_tail(skb, 10, 0));         /* -EINVAL: shorter than the MAC header */
    put(19, bpf_skb_change_tail(skb, len, 1));        /* -EINVAL: flags */
    put(20, bpf_skb_change_head(skb, 8, 0));          /* 0: 8 zero bytes in front */
    put(21, bpf_skb_change_head(skb, 8, 1));          /* -EINVAL: flags */
    put(22, skb->len);
    __u8 mark[2] = {0xca, 0xfe};
    put(23, bpf_skb_store_bytes(skb, 0, mark, 2, 0));
    return TC_ACT_OK;
}

SEC("tc")
int tc_proto(struct __sk_buff *skb)
{
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        put(24, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0));   /* 0: 20 bytes inserted */
        put(25, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 1));   /* -EINVAL */
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        put(24, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0));     /* 0: 20 bytes removed */
        put(25, 0);
    } else {
        put(24, bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0));   /* -ENOTSUPP */
        put(25, 0);
    }
    put(26, bpf_ntohs(skb->protocol));
    put(27, skb->len);
    put(28, bpf_skb_change_type(skb, PACKET_HOST));                      /* 0 */
    put(29, skb->pkt_type);
    put(30, bpf_skb_change_type(skb, 8));                                /* -EINVAL */
    return TC_ACT_OK;
}

SEC("tc")
int tc_redirect(struct __sk_buff *skb)
{
    if (skb->protocol == bpf_htons(ETH_P_IPV6))
        return bpf_redirect(3, BPF_F_INGRESS);    /* TC_ACT_REDIRECT */
    if (skb->protocol == bpf_htons(ETH_P_ARP))
        return bpf_redirect(3, 0x10);             /* TC_ACT_SHOT: unknown flags */
    put(32, bpf_redirect(4, 0));                   /* TC_ACT_REDIRECT */
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
