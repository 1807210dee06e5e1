// LRU hashes driven one operation per run, so a test can lay out an exact sequence of
// uses and see which entry a full map evicts. A raw tracepoint program (not run by the
// kernel differential test: the kernel's LRU is approximate, bpfsim's exact).
//   args[0] = operation: 0 update, 1 lookup, 2 delete
//   args[1] = key, args[2] = value, args[3] = update flags
// res[0] = the helper's return code (lookup: 0 or -ENOENT), res[1] = the value looked up.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} lru SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} lru_pcpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

#define LRU_OP(map, args)                                                       \
    do {                                                                        \
        __u32 key = (args)[1];                                                  \
        __u64 value = (args)[2], *p;                                            \
        switch ((args)[0]) {                                                    \
        case 0:                                                                 \
            put(0, bpf_map_update_elem(&map, &key, &value, (args)[3]));         \
            break;                                                              \
        case 1:                                                                 \
            p = bpf_map_lookup_elem(&map, &key);                                \
            put(0, p ? 0 : -2);                                                 \
            put(1, p ? (__s64)*p : -1);                                         \
            break;                                                              \
        default:                                                                \
            put(0, bpf_map_delete_elem(&map, &key));                            \
        }                                                                       \
    } while (0)

SEC("raw_tp/sys_enter")
int lru_op(struct bpf_raw_tracepoint_args *ctx)
{
    LRU_OP(lru, ctx->args);
    return 0;
}

SEC("raw_tp/sys_enter")
int lru_pcpu_op(struct bpf_raw_tracepoint_args *ctx)
{
    LRU_OP(lru_pcpu, ctx->args);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
