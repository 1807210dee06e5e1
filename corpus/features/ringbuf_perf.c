// Ring buffer and perf event output.
//
// rb_xdp (XDP, compared with the kernel): each run outputs a 16-byte record, reserves and
// submits 1000 bytes, reserves and discards 200 bytes, and tries a reservation larger than
// the ring. Nothing consumes in the kernel test, so the ring fills after a few runs and the
// later reservations fail the same way in both. Return codes go to `res`:
//   0 output rc, 1 1000-byte reservation made (1/0), 2 200-byte reservation made,
//   3 oversize reservation made, 4 output with bad flags, 5 BPF_RB_AVAIL_DATA,
//   6 BPF_RB_RING_SIZE, 7 reserve with flags != 0 made, 8 runs so far
//
// perf_tp (tracepoint, bpfsim only): bpf_perf_event_output to the CPU's slot, to another
// CPU's slot, past max_entries, to a closed slot, and with context-length flags, which
// tracing programs may not use. Codes go to `res` 16..21.
//
// perf_xdp (XDP): one perf record of a 4-byte header plus the packet's first 14 bytes
// (BPF_F_CTXLEN_MASK). Its return code is not stored: the kernel test has no perf events
// open (-ENOENT there), while bpfsim opens one slot per CPU as libbpf's perf_buffer does.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} pe SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 24);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

struct small {
    __u32 run;
    __u32 magic;
    __u64 len;
};

struct big {
    __u32 run;
    __u8 fill[996];
};

SEC("xdp")
int rb_xdp(struct xdp_md *ctx)
{
    __u32 eight = 8;
    __s64 *runs = bpf_map_lookup_elem(&res, &eight);
    if (!runs)
        return XDP_ABORTED;
    __u32 run = (__u32)*runs;
    *runs += 1;

    struct small s = {.run = run, .magic = 0x5ba11, .len = ctx->data_end - ctx->data};
    put(0, bpf_ringbuf_output(&rb, &s, sizeof(s), 0));

    struct big *b = bpf_ringbuf_reserve(&rb, sizeof(struct big), 0);
    put(1, b != NULL);
    if (b) {
        b->run = run;
        for (int i = 0; i < 8; i++)
            b->fill[i] = 0xa0 + i;
        bpf_ringbuf_submit(b, BPF_RB_NO_WAKEUP);
    }
    __u64 *d = bpf_ringbuf_reserve(&rb, 200, 0);
    put(2, d != NULL);
    if (d) {
        *d = run;
        bpf_ringbuf_discard(d, 0);
    }
    void *huge = bpf_ringbuf_reserve(&rb, 8192, 0);
    put(3, huge != NULL);
    if (huge)
        bpf_ringbuf_discard(huge, 0);
    put(4, bpf_ringbuf_output(&rb, &s, sizeof(s), 4));
    put(5, bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA));
    put(6, bpf_ringbuf_query(&rb, BPF_RB_RING_SIZE));
    void *flagged = bpf_ringbuf_reserve(&rb, 8, 1);
    put(7, flagged != NULL);
    if (flagged)
        bpf_ringbuf_discard(flagged, 0);
    return XDP_PASS;
}

struct perf_rec {
    __u32 tag;
    __u32 cpu_slot;
};

SEC("tracepoint/syscalls/sys_enter_write")
int perf_tp(void *ctx)
{
    struct perf_rec r = {.tag = 0x7e57, .cpu_slot = 0xffffffff};
    put(16, bpf_perf_event_output(ctx, &pe, BPF_F_CURRENT_CPU, &r, sizeof(r)));
    r.cpu_slot = 0;
    put(17, bpf_perf_event_output(ctx, &pe, 0, &r, sizeof(r)));
    r.cpu_slot = 9;
    put(18, bpf_perf_event_output(ctx, &pe, 9, &r, sizeof(r)));
    r.cpu_slot = 3;
    put(19, bpf_perf_event_output(ctx, &pe, 3, &r, sizeof(r)));
    put(20, bpf_perf_event_output(ctx, &pe, BPF_F_CURRENT_CPU | (8ULL << 32), &r, sizeof(r)));
    r.cpu_slot = 1;
    put(21, bpf_perf_event_output(ctx, &pe, 1, &r, sizeof(r)));
    return 0;
}

SEC("xdp")
int perf_xdp(struct xdp_md *ctx)
{
    __u32 hdr = 0xfeedf00d;
    bpf_perf_event_output(ctx, &pe, BPF_F_CURRENT_CPU | (14ULL << 32), &hdr, sizeof(hdr));
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
