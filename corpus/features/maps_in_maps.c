// Map-in-map: an array of maps and a hash of maps, whose slots userspace fills with inner
// maps of the declared shape. The outer maps start empty (no `.values`), as they do in the
// kernel differential test, where every lookup of an outer slot then misses.
//   res[0], res[1]: inner_arr slot 0 / 1: the inner map's key 0 after incrementing it, or -1
//   res[2]: outer_hash key 7: the update of key 1 in the inner hash, or -1 when absent
//   res[3]: that inner hash's key 1 afterwards, or -1
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_arr {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 2);
    __type(key, __u32);
    __array(values, struct inner_arr);
} outer_arr SEC(".maps");

struct inner_hash {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} inner_h SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct inner_hash);
} outer_hash SEC(".maps");

/* Same key and value as inner_arr, but a hash: outer_arr refuses it. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} wrong_shape SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

static __always_inline __s64 bump_slot(__u32 slot)
{
    __u32 zero = 0;
    void *inner = bpf_map_lookup_elem(&outer_arr, &slot);
    if (!inner)
        return -1;
    __u64 *v = bpf_map_lookup_elem(inner, &zero);
    if (!v)
        return -1;
    *v += 1;
    return *v;
}

SEC("xdp")
int maps_in_maps(struct xdp_md *ctx)
{
    put(0, bump_slot(0));
    put(1, bump_slot(1));

    __u32 seven = 7, one = 1;
    void *inner = bpf_map_lookup_elem(&outer_hash, &seven);
    if (!inner) {
        put(2, -1);
        put(3, -1);
        return XDP_PASS;
    }
    __u64 init = 100;
    long rc = bpf_map_update_elem(inner, &one, &init, BPF_NOEXIST);   /* -EEXIST after the first run */
    put(2, rc);
    __u64 *v = bpf_map_lookup_elem(inner, &one);
    if (v)
        *v += 1;
    put(3, v ? (__s64)*v : -1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
