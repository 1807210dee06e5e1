// XDP helpers: bpf_xdp_adjust_head/meta/tail and their limits, bpf_redirect, and
// bpf_redirect_map into a devmap, a cpumap and an xskmap. A sockmap and a sockhash are
// declared as containers that userspace fills (no program here takes a socket).
//
// xdp_adjust (results in res 0..18): pushes 8 bytes in front of the packet, pulls 4 back,
// adds 8 bytes of metadata, moves the head with the metadata in place, trims and grows the
// tail; each limit is probed once (too much headroom, the kernel's struct xdp_frame at the
// top of the headroom, metadata of a bad length, a tail shorter than an Ethernet header).
//
// xdp_redirects (results in res 24..30): redirect_map misses return the flags' action; bad
// flags abort; the packet's protocol picks the final verdict (TCP: devmap slot 1, UDP:
// cpumap slot 0, ICMP: xskmap slot 0, IPv6: bpf_redirect to ifindex 7).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);   /* ifindex */
} tx_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);   /* queue size */
} cpus SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);   /* AF_XDP socket fd */
} xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} socks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} sock_by_port SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 32);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

SEC("xdp")
int xdp_adjust(struct xdp_md *ctx)
{
    put(0, bpf_xdp_adjust_head(ctx, -8));            /* 0: 8 bytes in front */
    __u8 *d = (void *)(long)ctx->data;
    if ((void *)(d + 8) > (void *)(long)ctx->data_end)
        return XDP_ABORTED;
    for (int i = 0; i < 8; i++)
        d[i] = 0xa0 + i;
    put(1, bpf_xdp_adjust_head(ctx, 4));             /* 0: a0..a3 gone */
    put(2, bpf_xdp_adjust_head(ctx, -300));          /* -EINVAL: more than the headroom */
    put(3, bpf_xdp_adjust_head(ctx, 4096));          /* -EINVAL: past the end */

    put(4, bpf_xdp_adjust_meta(ctx, -8));            /* 0 */
    __u32 *meta = (void *)(long)ctx->data_meta;
    if ((void *)(meta + 2) > (void *)(long)ctx->data)
        return XDP_ABORTED;
    meta[0] = 0x11223344;
    meta[1] = 0x55667788;
    put(5, bpf_xdp_adjust_meta(ctx, -6));            /* -EACCES: not whole words */
    put(6, bpf_xdp_adjust_meta(ctx, -28));           /* 0: 36 bytes (older kernels stopped at 32) */
    put(7, bpf_xdp_adjust_meta(ctx, 28));            /* 0: back to 8 */
    put(8, bpf_xdp_adjust_meta(ctx, 12));            /* -EINVAL: past data */
    /* The kernel keeps its struct xdp_frame (40 bytes) at the top of the headroom: with
     * data 252 bytes in, the metadata can start no lower than 40. */
    put(9, bpf_xdp_adjust_meta(ctx, -208));          /* -EINVAL: meta would start at 36 */

    /* The metadata moves with the head. */
    put(10, bpf_xdp_adjust_head(ctx, -204));         /* 0: meta at 40 */
    put(11, bpf_xdp_adjust_head(ctx, -4));           /* -EINVAL: into the xdp_frame */
    put(12, bpf_xdp_adjust_head(ctx, 204));          /* 0 */
    put(13, bpf_xdp_adjust_head(ctx, -4));           /* 0: meta moves 4 bytes up */

    put(14, bpf_xdp_adjust_tail(ctx, -4));           /* 0 */
    put(15, bpf_xdp_adjust_tail(ctx, 16));           /* 0: 16 zero bytes at the end */
    put(16, bpf_xdp_adjust_tail(ctx, -10000));       /* -EINVAL: shorter than ETH_HLEN */
    put(17, ctx->data_end - ctx->data);
    put(18, ctx->data - ctx->data_meta);
    return XDP_PASS;
}

SEC("xdp")
int xdp_redirects(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);

    put(24, bpf_redirect_map(&tx_ports, 1, XDP_PASS));
    put(25, bpf_redirect_map(&cpus, 0, XDP_DROP));
    put(26, bpf_redirect_map(&xsks, 0, XDP_TX));
    put(27, bpf_redirect_map(&xsks, 0, 5));          /* XDP_ABORTED: flags past the action bits */
    put(28, bpf_redirect_map(&tx_ports, 100, XDP_TX)); /* past max_entries: XDP_TX */
    __u32 one = 1;
    __u32 *ifindex = bpf_map_lookup_elem(&tx_ports, &one);
    put(29, ifindex ? (__s64)*ifindex : -1);
    put(30, bpf_redirect(9, BPF_F_INGRESS));         /* XDP_ABORTED: XDP takes no flags */

    if ((void *)(eth + 1) > data_end)
        return XDP_DROP;
    if (eth->h_proto == bpf_htons(ETH_P_IPV6))
        return bpf_redirect(7, 0);
    if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end)
        return XDP_PASS;
    if (ip->protocol == IPPROTO_TCP)
        return bpf_redirect_map(&tx_ports, 1, XDP_PASS);
    if (ip->protocol == IPPROTO_UDP)
        return bpf_redirect_map(&cpus, 0, XDP_DROP);
    if (ip->protocol == IPPROTO_ICMP)
        return bpf_redirect_map(&xsks, 0, XDP_TX);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
