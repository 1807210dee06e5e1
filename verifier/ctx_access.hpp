// bpfsim::verifier — which loads and stores of the context a program type may do, and what a
// load yields: the kernel's per-type `is_valid_access` callbacks (bpf_verifier_ops) as of
// Linux 6.18, as one table the verifier model asks (verifier/verifier.cpp).
//
//   xdp            struct xdp_md: data, data_end, data_meta (packet pointers), the rest scalars
//   sched_cls/act, socket_filter, cgroup_skb, lwt_*, sk_skb, flow_dissector:
//                  struct __sk_buff, per type: which fields, which writable (mark, cb[],
//                  tc_index, priority, ...), data/data_end/data_meta where the type has them,
//                  flow_keys, sk (PTR_TO_SOCK_COMMON_OR_NULL)
//   kprobe         struct pt_regs (read only, any aligned 1/2/4/8-byte access inside it)
//   tracepoint     the record (read only, the first 8 bytes of the common header refused...
//                  as the kernel does: off < 0 or off >= PERF_MAX_TRACE_SIZE, size alignment)
//   raw_tracepoint u64 args[] (read only, 8-byte aligned loads)
//   perf_event     struct bpf_perf_event_data
//   tracing (fentry/fexit/tp_btf/iter/lsm): args[] as u64, typed by the attach function's BTF
//                  (pointers to kernel structs become PTR_TO_BTF_ID)
//   cgroup_sock, cgroup_sock_addr, sock_ops, sk_msg, sk_lookup, cgroup_sysctl, cgroup_sockopt,
//   cgroup_device: their context structs
#pragma once

#include "harness/harness.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace bpfsim::verifier {

// The register type a context load produces (the kernel's bpf_insn_access_aux.reg_type).
enum class CtxLoad : uint8_t {
    Scalar,            // SCALAR_VALUE
    PacketData,        // PTR_TO_PACKET (off 0)
    PacketMeta,        // PTR_TO_PACKET_META
    PacketEnd,         // PTR_TO_PACKET_END
    FlowKeys,          // PTR_TO_FLOW_KEYS
    SockCommonOrNull,  // PTR_TO_SOCK_COMMON | PTR_MAYBE_NULL (__sk_buff.sk, sk_reuseport_md.migrating_sk)
    SockOrNull,        // PTR_TO_SOCKET | PTR_MAYBE_NULL (bpf_sk_lookup.sk, bpf_sock_ops.sk)
    Sock,              // PTR_TO_SOCKET (bpf_sock_addr.sk, sk_msg_md.sk, bpf_sockopt.sk, sk_reuseport_md.sk)
    BtfId,             // PTR_TO_BTF_ID of `btf_id` in the kernel BTF (tracing args, tp_btf)
    BtfIdOrNull,       // PTR_TO_BTF_ID | PTR_MAYBE_NULL
    Ctx,               // a pointer to the context again (rare)
};

struct CtxAccess {
    bool ok = false;
    CtxLoad load = CtxLoad::Scalar;   // for an allowed load
    uint32_t btf_id = 0;              // CtxLoad::BtfId(OrNull): the type in the kernel BTF
    // When refused: the kernel's message for this access, e.g.
    // "invalid bpf_context access off=76 size=4"; the caller prefixes nothing. For typed tracing
    // arguments btf_ctx_access()'s own line comes first ("func 'vfs_read' offset 4 is not
    // multiple of 8\ninvalid bpf_context access off=4 size=4"). For `atomic` the kernel names the
    // register ("BPF_ATOMIC stores into R1 ctx is not allowed"), which the caller must format.
    std::string message;
};

struct CtxAccessQuery {
    harness::ProgType type = harness::ProgType::Unspec;
    std::string_view attach;          // the section's attach part ("syscalls/sys_enter_openat", "vfs_read")
    // Where the kernel's rules depend on expected_attach_type, it is read from `attach`, either
    // the attach part or the whole libbpf section name: cgroup_sock "sock_create" (default),
    // "sock_release", "post_bind4", "post_bind6"; cgroup_sock_addr "bind4", "connect6",
    // "sendmsg4", "recvmsg6", "getpeername4", "getsockname6", "connect_unix", ...; xdp "devmap",
    // "cpumap"; cgroup_sockopt "getsockopt", "setsockopt". Tracing needs the whole section name
    // ("fentry/vfs_read", "fexit/vfs_read", "fmod_ret/...", "tp_btf/sched_switch", "iter/task")
    // since the attach part alone does not say which; a bare name is taken as fentry. Lsm:
    // "lsm/file_open" or "file_open" (BPF_LSM_MAC), "lsm_cgroup/..." (BPF_LSM_CGROUP).
    int64_t off = 0;                  // byte offset from the context pointer (fixed part + insn off)
    uint32_t size = 0;                // 1, 2, 4 or 8
    bool write = false;
    bool atomic = false;              // BPF_ATOMIC on the context (always refused by the kernel)
    const btf::Btf* kernel_btf = nullptr;   // for tracing programs' typed arguments; may be null
};

// Whether the access is allowed and what it yields. Never throws.
CtxAccess ctx_access(const CtxAccessQuery& q);

// The context's size in bytes for the type (as the kernel's accesses are bounded by it), 0 when
// the type has no context the model knows.
uint32_t ctx_size(harness::ProgType type, std::string_view attach);

}  // namespace bpfsim::verifier
