// Callbacks, formatting and locks.
//
// misc_xdp (XDP, compared with the kernel; results in res):
//   0..3   bpf_loop: ten iterations summing indices, an early stop, bad flags, too many loops
//   4..9   bpf_for_each_map_elem over an array (every index, values incremented in place, an
//          early stop) and over a hash (order-independent sum), and bad flags
// fmt_text (raw_tp, bpfsim only; res 10..12): bpf_snprintf into `text` (every conversion
//   the helper takes), truncation, and a format with too few arguments. Not XDP: the
//   kernel's verifier wants the format in a map that is read-only to programs
//   (BPF_F_RDONLY_PROG, as libbpf creates .rodata), which the kernel oracle does not set.
// lock_counter (lwt_xmit, bpfsim only: the kernel's verifier needs the map's BTF for a
//   bpf_spin_lock, which the kernel oracle does not pass): adds the packet length to a
//   counter under the value's spin lock.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} weights SEC(".maps");

struct line {
    char s[64];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct line);
} text SEC(".maps");

struct locked {
    struct bpf_spin_lock lock;
    __u32 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct locked);
} totals SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

static long sum_index(__u32 i, __u64 *acc)
{
    *acc += i;
    return 0;
}

static long stop_at_3(__u32 i, __u64 *acc)
{
    *acc += 100;
    return i == 3;
}

struct walk {
    __u64 sum;
    __u32 visited;
    __u32 stop_key;
};

static long walk_array(void *map, __u32 *key, __u64 *value, struct walk *w)
{
    *value += 1;
    w->sum += *value;
    w->visited++;
    return *key == w->stop_key;
}

static long walk_hash(void *map, __u32 *key, __u64 *value, struct walk *w)
{
    w->sum += *key * *value;
    w->visited++;
    return 0;
}

static __always_inline void weigh(__u32 key, __u64 value)
{
    bpf_map_update_elem(&weights, &key, &value, BPF_ANY);
}

SEC("xdp")
int misc_xdp(struct xdp_md *ctx)
{
    __u64 acc = 0;
    put(0, bpf_loop(10, sum_index, &acc, 0));       /* 10 */
    put(1, acc);                                    /* 45 */
    acc = 0;
    long n = bpf_loop(10, stop_at_3, &acc, 0);      /* 4 */
    put(2, n * 1000 + acc / 100);                   /* 4004 */
    put(3, bpf_loop(1 << 24, sum_index, &acc, 0) * 10 + bpf_loop(2, sum_index, &acc, 1));   /* -E2BIG*10 - EINVAL */

    struct walk w = {.stop_key = 99};
    put(4, bpf_for_each_map_elem(&counters, walk_array, &w, 0));   /* 4 */
    put(5, w.sum);
    struct walk stop = {.stop_key = 1};
    put(6, bpf_for_each_map_elem(&counters, walk_array, &stop, 0) * 1000 + stop.visited);   /* 2002 */

    weigh(1, 11);
    weigh(2, 12);
    weigh(3, 13);
    struct walk h = {};
    put(7, bpf_for_each_map_elem(&weights, walk_hash, &h, 0));     /* 3 */
    put(8, h.sum);                                                 /* 1*11 + 2*12 + 3*13 = 74 */
    put(9, bpf_for_each_map_elem(&weights, walk_hash, &h, 1));     /* -EINVAL */
    return XDP_PASS;
}

SEC("raw_tp/sys_enter")
int fmt_text(void *ctx)
{
    struct line l = {};
    __u32 ip = 0x0100007f;   /* 127.0.0.1 in network order on a little-endian host */
    static const char name[] = "bpfsim";
    __u64 args[] = {(__u64)-42, 3000000000u, 0xbeef, (__u64)name, (__u64)&ip, 'Z', (__u64)-1};
    put(10, bpf_snprintf(l.s, sizeof(l.s), "%d|%u|%x|%s|%pI4|%c|%llx", args, sizeof(args)));
    __u32 zero = 0, one = 1;
    bpf_map_update_elem(&text, &zero, &l, BPF_ANY);
    struct line t = {};
    put(11, bpf_snprintf(t.s, 8, "%s and more", args + 3, 8));   /* 16: the full length + 1 */
    bpf_map_update_elem(&text, &one, &t, BPF_ANY);
    put(12, bpf_snprintf(t.s, 8, "%d %d", args, 8));             /* -EINVAL: too few arguments */
    return 0;
}

SEC("lwt_xmit")
int lock_counter(struct __sk_buff *skb)
{
    __u32 zero = 0;
    struct locked *t = bpf_map_lookup_elem(&totals, &zero);
    if (!t)
        return BPF_DROP;
    bpf_spin_lock(&t->lock);
    t->packets++;
    t->bytes += skb->len;
    bpf_spin_unlock(&t->lock);
    return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
