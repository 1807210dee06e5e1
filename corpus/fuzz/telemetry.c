// A telemetry collector with a planted bug, for `bpfsim fuzz` (tests/fuzz_cli.sh).
//
// tc ingress: UDP datagrams to port 7777 carry a small header, {magic "TM", version, flags,
// record count (big-endian u32)}, then 4-byte records {kind, value (u8), len (be16)}.
// Version 1 datagrams are counted per kind from the header alone; version 2 datagrams with
// the RECORDS flag have their records walked with bpf_loop and counted per record kind.
// Everything else passes untouched; cut-short headers are dropped.
//
// The bug: walk_record() skips a record it cannot load because it lies past the end of the
// packet (`return 0`, keep looping) where it should stop the walk (`return 1`), and the
// count is clamped to MAX_RECORDS = 1 << 20 rather than to what the packet can hold. A version 2 datagram with
// the RECORDS flag and a count above ~70000 then spins through empty iterations until the
// instruction budget runs out (in the kernel: a million bpf_loop turns per packet). The
// verifier accepts it: bpf_loop bounds the loop, and every record is checked against
// data_end. Reaching it takes "T", "M", version 2, the flag and a large count: four
// specific header bytes, so random inputs would need about 2^25 tries.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define TM_PORT 7777
#define TM_F_RECORDS 0x01
#define MAX_RECORDS (1u << 20)
#define MAX_KINDS 16

struct tm_hdr {
    __u8 magic[2];     // "TM"
    __u8 version;      // 1 or 2
    __u8 flags;        // TM_F_*
    __be32 count;      // records that follow (version 2)
};

struct tm_record {
    __u8 kind;
    __u8 value;
    __be16 len;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_KINDS);
    __type(key, __u32);
    __type(value, __u64);
} kinds SEC(".maps");

struct walk {
    struct __sk_buff *skb;
    __u32 off;         // the first record, from the Ethernet header
    __u32 seen;
};

static void count_kind(__u32 kind)
{
    kind &= MAX_KINDS - 1;
    __u64 *n = bpf_map_lookup_elem(&kinds, &kind);
    if (n)
        __sync_fetch_and_add(n, 1);
}

static long walk_record(__u64 i, void *arg)
{
    struct walk *w = arg;
    struct tm_record r;
    if (bpf_skb_load_bytes(w->skb, w->off + (i & 0xffff) * sizeof(r), &r, sizeof(r)))
        return 0;   /* BUG: past the end of the packet; should stop the walk (return 1) */
    count_kind(r.kind);
    w->seen++;
    return 0;
}

SEC("tc")
int tm_collect(struct __sk_buff *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return TC_ACT_SHOT;
    if (eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end)
        return TC_ACT_SHOT;
    if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
        return TC_ACT_OK;
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > data_end)
        return TC_ACT_SHOT;
    if (udp->dest != bpf_htons(TM_PORT))
        return TC_ACT_OK;
    struct tm_hdr *h = (void *)(udp + 1);
    if ((void *)(h + 1) > data_end)
        return TC_ACT_SHOT;
    if (h->magic[0] != 'T')
        return TC_ACT_OK;
    if (h->magic[1] != 'M')
        return TC_ACT_OK;
    if (h->version == 1) {
        count_kind(h->flags);
        return TC_ACT_OK;
    }
    if (h->version != 2)
        return TC_ACT_SHOT;
    if (!(h->flags & TM_F_RECORDS))
        return TC_ACT_OK;
    __u32 count = bpf_ntohl(h->count);
    if (count > MAX_RECORDS)
        count = MAX_RECORDS;
    struct walk w = {.skb = ctx, .off = (void *)(h + 1) - data};
    bpf_loop(count, walk_record, &w, 0);
    return w.seen ? TC_ACT_OK : TC_ACT_SHOT;
}
