// Array, per-CPU array, hash and per-CPU hash as a program sees them: the update flags
// (BPF_ANY, BPF_NOEXIST, BPF_EXIST), full maps, deletes, and the errno each refusal gives.
// Every helper result goes to `res`, so the kernel differential test compares them with the
// kernel's. Each run starts from the same hash contents, so every run gives the same codes.
// Per-CPU values are only ever incremented (or written to a fresh element), so their sum
// over CPUs does not depend on where the kernel ran the program.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} pcpu_arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} pcpu_hash SEC(".maps");

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

static __always_inline void hash_del(__u32 key)
{
    bpf_map_delete_elem(&hash, &key);
}

static __always_inline void hash_set(__u32 key, __u64 value)
{
    bpf_map_update_elem(&hash, &key, &value, BPF_ANY);
}

SEC("xdp")
int maps_basic(struct xdp_md *ctx)
{
    __u64 v, *p;
    __u32 k;

    /* array: every index exists, nothing can be inserted or deleted */
    k = 1;
    v = 100;
    put(0, bpf_map_update_elem(&arr, &k, &v, BPF_ANY));        /* 0 */
    put(1, bpf_map_update_elem(&arr, &k, &v, BPF_NOEXIST));    /* -EEXIST */
    v = 101;
    put(2, bpf_map_update_elem(&arr, &k, &v, BPF_EXIST));      /* 0 */
    k = 4;
    put(3, bpf_map_update_elem(&arr, &k, &v, BPF_ANY));        /* -E2BIG: past max_entries */
    put(4, bpf_map_lookup_elem(&arr, &k) == NULL);             /* 1 */
    k = 1;
    put(5, bpf_map_delete_elem(&arr, &k));                     /* -EINVAL */
    put(6, bpf_map_update_elem(&arr, &k, &v, 3));              /* -EINVAL: unknown flags */
    k = 2;
    p = bpf_map_lookup_elem(&arr, &k);
    if (p)
        *p += 1;                                               /* runs so far, through the pointer */
    k = 1;
    p = bpf_map_lookup_elem(&arr, &k);
    put(7, p ? (__s64)*p : -1);                                /* 101 */

    /* hash: start each run from keys {} */
    hash_del(1);
    hash_del(2);
    hash_del(3);
    hash_del(4);
    hash_del(5);
    k = 1;
    v = 10;
    put(8, bpf_map_update_elem(&hash, &k, &v, BPF_NOEXIST));   /* 0 */
    put(9, bpf_map_update_elem(&hash, &k, &v, BPF_NOEXIST));   /* -EEXIST */
    k = 9;
    put(10, bpf_map_update_elem(&hash, &k, &v, BPF_EXIST));    /* -ENOENT */
    hash_set(2, 22);
    hash_set(3, 33);
    hash_set(4, 44);
    k = 5;
    put(11, bpf_map_update_elem(&hash, &k, &v, BPF_ANY));      /* -E2BIG: full */
    k = 4;
    v = 440;
    put(12, bpf_map_update_elem(&hash, &k, &v, BPF_ANY));      /* 0: replacing fits in a full map */
    k = 5;
    put(13, bpf_map_delete_elem(&hash, &k));                   /* -ENOENT */
    k = 4;
    put(14, bpf_map_delete_elem(&hash, &k));                   /* 0 */
    k = 5;
    v = 55;
    put(15, bpf_map_update_elem(&hash, &k, &v, BPF_NOEXIST));  /* 0: room again */
    put(16, bpf_map_update_elem(&hash, &k, &v, 3));            /* -EINVAL */
    k = 1;
    p = bpf_map_lookup_elem(&hash, &k);
    if (p)
        *p += 5;
    put(17, p ? (__s64)*p : -1);                               /* 15 */
    k = 4;
    put(18, bpf_map_lookup_elem(&hash, &k) == NULL);           /* 1 */

    /* per-CPU array: the program sees its own CPU's copy */
    k = 0;
    p = bpf_map_lookup_elem(&pcpu_arr, &k);
    if (p)
        *p += 1;
    k = 4;
    v = 1;
    put(19, bpf_map_update_elem(&pcpu_arr, &k, &v, BPF_ANY));  /* -E2BIG */
    k = 0;
    put(20, bpf_map_update_elem(&pcpu_arr, &k, &v, BPF_NOEXIST)); /* -EEXIST */
    k = 3;
    p = bpf_map_lookup_elem(&pcpu_arr, &k);
    put(21, p ? (__s64)*p : -1);                               /* this CPU's value of key 3 */
    k = 0;
    put(22, bpf_map_delete_elem(&pcpu_arr, &k));               /* -EINVAL */

    /* per-CPU hash: a new element is this CPU's value and zero elsewhere */
    k = 7;
    bpf_map_delete_elem(&pcpu_hash, &k);
    v = 70;
    put(23, bpf_map_update_elem(&pcpu_hash, &k, &v, BPF_NOEXIST)); /* 0 */
    p = bpf_map_lookup_elem(&pcpu_hash, &k);
    if (p)
        *p += 1;
    put(24, p ? (__s64)*p : -1);                               /* 71 */
    k = 8;
    put(25, bpf_map_update_elem(&pcpu_hash, &k, &v, BPF_EXIST));   /* -ENOENT */
    put(26, bpf_map_delete_elem(&pcpu_hash, &k));              /* -ENOENT */
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
