// A known verdict for `bpfsim kernel-verify` (ctest kernel-verify-corpus): the kernel's verifier
// must reject deref_scalar with "R1 invalid mem access 'scalar'" at the load through r1 (a
// plain number used as a pointer), and accept returns_zero.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

SEC("socket")
int deref_scalar(struct __sk_buff *skb)
{
    long v;
    asm volatile("r1 = 42\n"
                 "%0 = *(u64 *)(r1 + 0)\n"
                 : "=r"(v)
                 :
                 : "r1");
    return (int)v;
}

SEC("socket")
int returns_zero(struct __sk_buff *skb)
{
    return 0;
}

char _license[] SEC("license") = "GPL";
