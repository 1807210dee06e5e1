// A parser that trusts a length byte, for `bpfsim fuzz --no-verify` (tests/fuzz_cli.sh): the
// verifier rejects it (the variable offset is never checked against data_end), and the fuzzer
// shows the out-of-bounds read the kernel would have been spared: a frame whose bytes 14..15
// are "OB" and whose byte 13 points past its end.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int oob_read(struct xdp_md *ctx)
{
    __u8 *p = (void *)(long)ctx->data;
    __u8 *end = (void *)(long)ctx->data_end;
    if (p + 16 > end)
        return XDP_DROP;
    if (p[14] != 'O' || p[15] != 'B')
        return XDP_PASS;
    __u32 off = p[13];
    return p[16 + off * 8] == 1 ? XDP_DROP : XDP_PASS;   /* no check against end */
}
