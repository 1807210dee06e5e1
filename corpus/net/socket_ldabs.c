// socket filter: legacy packet loads (LD_ABS / LD_IND) as classic filters use them.
// Keeps IPv4 TCP packets whole, truncates UDP to 64 bytes, drops the rest.
#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} bytes SEC(".maps");

SEC("socket")
int filter(struct __sk_buff *skb)
{
    /* skb->data is the network header for socket filters. */
    if ((load_byte(skb, 0) >> 4) != 4)
        return 0;
    __u32 proto = load_byte(skb, offsetof(struct iphdr, protocol));
    __u32 key = proto == IPPROTO_TCP ? 0 : 1;
    __u64 *v = bpf_map_lookup_elem(&bytes, &key);
    if (v)
        *v += skb->len;
    if (proto == IPPROTO_TCP)
        return skb->len;
    if (proto == IPPROTO_UDP)
        return load_word(skb, 12) ? 64 : 0;   /* source address */
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
