// Kernel selftest annotations (the tags of the kernel's tools/testing/selftests/bpf/progs/
// bpf_misc.h): `bpfsim test annotations.o` runs these expectations without a scenario.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The attribute spellings of bpf_misc.h (Debian ships no copy of it).
#define __success __attribute__((btf_decl_tag("comment:test_expect_success")))
#define __failure __attribute__((btf_decl_tag("comment:test_expect_failure")))
#define __msg(msg) __attribute__((btf_decl_tag("comment:test_expect_msg=" msg)))
#define __description(desc) __attribute__((btf_decl_tag("comment:test_description=" desc)))
#define __retval(val) __attribute__((btf_decl_tag("comment:test_retval=" #val)))
#define TEST_DATA_LEN 64
#define __auxiliary __attribute__((btf_decl_tag("comment:test_auxiliary")))
#define __log_level(lvl) __attribute__((btf_decl_tag("comment:test_log_level=" #lvl)))

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

SEC("xdp")
__description("xdp: a packet passes")
__success __retval(XDP_PASS)
int xdp_pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}

// The test run gets TEST_DATA_LEN (64) bytes; a socket filter's skb starts after the
// Ethernet header (the kernel's test run pulls it), so its len is 50.
SEC("socket")
__description("socket: returns the packet's length")
__success __retval(50)
int socket_len(struct __sk_buff *skb)
{
    return skb->len;
}

SEC("tc")
__success __retval(-1)
int tc_counts(struct __sk_buff *skb)
{
    __u32 zero = 0;
    __u64 *n = bpf_map_lookup_elem(&hits, &zero);
    if (n)
        __sync_fetch_and_add(n, 1);
    return -1;
}

SEC("xdp")
__description("xdp: reads a packet byte past data_end")
__failure __msg("invalid access to packet") __log_level(2)
int xdp_past_end(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data;
    return data[100];
}

SEC("socket")
__auxiliary
int helper_target(struct __sk_buff *skb)
{
    return 0;
}

SEC("socket")
int not_annotated(struct __sk_buff *skb)
{
    return 1;
}
