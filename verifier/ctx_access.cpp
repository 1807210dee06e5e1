// The kernel's per-program-type context access rules (bpf_verifier_ops.is_valid_access) of
// Linux 6.18: net/core/filter.c, kernel/trace/bpf_trace.c, kernel/bpf/cgroup.c, kernel/bpf/btf.c
// (btf_ctx_access), net/netfilter/nf_bpf_link.c, kernel/bpf/syscall.c, drivers/media/rc/bpf-lirc.c.
//
// Offsets come from the UAPI structs of <linux/bpf.h>; the one field this machine's header
// (6.1) lacks, bpf_sock_ops.skb_hwtstamp (6.2), is placed after skb_tcp_flags by hand.
//
// Assumptions the kernel decides from the loading process or the program, modelled fixed:
//   * the loader is privileged (bpf_capable(): cgroup_skb may read data/data_end, write tstamp);
//   * the program is not device-bound (xdp may not write rx_queue_index);
//   * expected_attach_type comes from `attach` (see parse_attach below).
#include "verifier/ctx_access.hpp"

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <asm/ptrace.h>

#include <fmt/format.h>

#include <cstddef>
#include <optional>

namespace bpfsim::verifier {

namespace {

using harness::ProgType;

// [offset, offset + size) of a member: the kernel's bpf_ctx_range() / bpf_ctx_range_till().
struct Range {
    int64_t lo, end;
    bool has(int64_t off) const { return off >= lo && off < end; }
};
#define CTX_FIELD(T, m) Range{static_cast<int64_t>(offsetof(T, m)), static_cast<int64_t>(offsetof(T, m) + sizeof(T::m))}
#define CTX_OFF(T, m) static_cast<int64_t>(offsetof(T, m))

constexpr int64_t kU32 = 4, kU64 = 8;
constexpr int64_t kPerfMaxTraceSize = 8192;      // PERF_MAX_TRACE_SIZE
constexpr int64_t kMaxBpfFuncArgs = 12;          // MAX_BPF_FUNC_ARGS
constexpr int64_t kSyscallCtxMax = 65535;        // U16_MAX (syscall_prog_is_valid_access)

// struct bpf_sock_ops as of 6.2+: __u64 skb_hwtstamp after skb_tcp_flags.
constexpr int64_t kSockOpsSkbHwtstamp = (CTX_OFF(bpf_sock_ops, skb_tcp_flags) + 4 + 7) & ~int64_t{7};
constexpr int64_t kSockOpsSize = kSockOpsSkbHwtstamp + 8;
static_assert(kSockOpsSize == 224);
static_assert(sizeof(__sk_buff) == 192 && sizeof(xdp_md) == 24 && sizeof(bpf_sock) == 80);
static_assert(sizeof(bpf_perf_event_data) == 184 && sizeof(pt_regs) == 168);

// struct bpf_nf_ctx (include/linux/netfilter.h... net/netfilter/nf_bpf_link.c): two pointers.
constexpr int64_t kNfCtxSize = 16;

// bpf_ctx_range_ptr(): the 8 bytes of a pointer field.
bool ptr_range(int64_t off, int64_t lo) { return off >= lo && off < lo + 8; }

// bpf_ctx_narrow_access_ok(): a power of two no wider than the field.
bool narrow_ok(int64_t size, int64_t field) { return size <= field && (size & (size - 1)) == 0; }

// bpf_ctx_wide_access_ok(): an aligned 8-byte access inside an array field.
bool wide_ok(int64_t off, int64_t size, Range r) {
    return size == kU64 && off >= r.lo && off + kU64 <= r.end && off % kU64 == 0;
}

// The expected_attach_type a program of this section is loaded with (libbpf's section table).
enum class Attach : uint8_t {
    None,
    // cgroup_sock
    SockCreate, SockRelease, PostBind4, PostBind6,
    // cgroup_sock_addr
    Bind4, Bind6, Connect4, Connect6, Getpeername4, Getpeername6, Getsockname4, Getsockname6,
    Sendmsg4, Sendmsg6, Recvmsg4, Recvmsg6, UnixConnect, UnixSendmsg, UnixRecvmsg, UnixGetpeername, UnixGetsockname,
    // xdp
    XdpDevmap, XdpCpumap,
    // cgroup_sockopt
    Getsockopt, Setsockopt,
    // tracing
    Fentry, Fexit, FmodRet, TpBtf, Iter, LsmMac, LsmCgroup,
};

// The last path component: "cgroup/bind4" and "bind4" both name BPF_CGROUP_INET4_BIND.
std::string_view last_part(std::string_view s) {
    const auto p = s.rfind('/');
    return p == std::string_view::npos ? s : s.substr(p + 1);
}

Attach parse_attach(ProgType t, std::string_view attach) {
    const std::string_view a = last_part(attach);
    switch (t) {
    case ProgType::CgroupSock:
        // "cgroup/sock" and a bare section load as BPF_CGROUP_INET_SOCK_CREATE.
        if (a == "sock_release") return Attach::SockRelease;
        if (a == "post_bind4") return Attach::PostBind4;
        if (a == "post_bind6") return Attach::PostBind6;
        return Attach::SockCreate;
    case ProgType::CgroupSockAddr: {
        static constexpr std::pair<std::string_view, Attach> kNames[] = {
            {"bind4", Attach::Bind4}, {"bind6", Attach::Bind6}, {"connect4", Attach::Connect4},
            {"connect6", Attach::Connect6}, {"getpeername4", Attach::Getpeername4},
            {"getpeername6", Attach::Getpeername6}, {"getsockname4", Attach::Getsockname4},
            {"getsockname6", Attach::Getsockname6}, {"sendmsg4", Attach::Sendmsg4}, {"sendmsg6", Attach::Sendmsg6},
            {"recvmsg4", Attach::Recvmsg4}, {"recvmsg6", Attach::Recvmsg6}, {"connect_unix", Attach::UnixConnect},
            {"sendmsg_unix", Attach::UnixSendmsg}, {"recvmsg_unix", Attach::UnixRecvmsg},
            {"getpeername_unix", Attach::UnixGetpeername}, {"getsockname_unix", Attach::UnixGetsockname},
        };
        for (const auto& [n, v] : kNames)
            if (a == n) return v;
        return Attach::None;
    }
    case ProgType::Xdp:
        if (a == "devmap") return Attach::XdpDevmap;
        if (a == "cpumap") return Attach::XdpCpumap;
        return Attach::None;
    case ProgType::CgroupSockopt:
        if (a == "getsockopt") return Attach::Getsockopt;
        if (a == "setsockopt") return Attach::Setsockopt;
        return Attach::None;
    case ProgType::Tracing: {
        const auto slash = attach.find('/');
        const std::string_view head = slash == std::string_view::npos ? std::string_view() : attach.substr(0, slash);
        if (head == "fexit" || head == "fexit.s") return Attach::Fexit;
        if (head == "fmod_ret" || head == "fmod_ret.s") return Attach::FmodRet;
        if (head == "tp_btf") return Attach::TpBtf;
        if (head == "iter" || head == "iter.s") return Attach::Iter;
        return Attach::Fentry;
    }
    case ProgType::Lsm: {
        const auto slash = attach.find('/');
        const std::string_view head = slash == std::string_view::npos ? std::string_view() : attach.substr(0, slash);
        return head == "lsm_cgroup" ? Attach::LsmCgroup : Attach::LsmMac;
    }
    default:
        return Attach::None;
    }
}

// What an is_valid_access callback decided: nullopt = refused.
using Verdict = std::optional<CtxLoad>;
constexpr Verdict kNo = std::nullopt;

// ─────────────────────────────── struct __sk_buff ───────────────────────────────

#define SKB(m) CTX_FIELD(__sk_buff, m)

// bpf_skb_is_valid_access(): the rules every __sk_buff type ends with. `load` is what the
// type's own callback set info->reg_type to before calling it.
Verdict skb_common(int64_t off, int64_t size, bool write, CtxLoad load) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(__sk_buff))) return kNo;
    if (off % size != 0) return kNo;
    if (SKB(cb).has(off)) {
        if (off + size > SKB(cb).end) return kNo;
        return load;
    }
    if (SKB(remote_ip6).has(off) || SKB(local_ip6).has(off) || SKB(remote_ip4).has(off) ||
        SKB(local_ip4).has(off) || SKB(data).has(off) || SKB(data_meta).has(off) || SKB(data_end).has(off))
        return size == kU32 ? Verdict(load) : kNo;
    if (off >= CTX_OFF(__sk_buff, flow_keys) && off < CTX_OFF(__sk_buff, flow_keys) + kU64) return kNo;
    if (SKB(hwtstamp).has(off)) return !write && size == kU64 ? Verdict(load) : kNo;
    if (SKB(tstamp).has(off)) return size == kU64 ? Verdict(load) : kNo;
    // Pointer fields are judged over all their 8 bytes (bpf_ctx_range_ptr) since 6.11: narrow
    // loads inside them are refused.
    if (ptr_range(off, CTX_OFF(__sk_buff, sk)))
        return !write && size == kU64 ? Verdict(CtxLoad::SockCommonOrNull) : kNo;
    if (off == CTX_OFF(__sk_buff, tstamp_type)) return kNo;
    // The padding between tstamp_type and hwtstamp.
    if (off >= SKB(tstamp_type).end && off < CTX_OFF(__sk_buff, hwtstamp)) return kNo;
    // Everything else is a __u32: writes whole, reads narrowed to 1/2/4 bytes.
    if (write) return size == kU32 ? Verdict(load) : kNo;
    return narrow_ok(size, kU32) ? Verdict(load) : kNo;
}

bool skb_sk_fields(int64_t off) {   // bpf_ctx_range_till(struct __sk_buff, family, local_port)
    return off >= CTX_OFF(__sk_buff, family) && off < SKB(local_port).end;
}

Verdict sk_filter_access(int64_t off, int64_t size, bool write) {
    if (SKB(tc_classid).has(off) || SKB(data).has(off) || SKB(data_meta).has(off) || SKB(data_end).has(off) ||
        skb_sk_fields(off) || SKB(tstamp).has(off) || SKB(wire_len).has(off) || SKB(hwtstamp).has(off))
        return kNo;
    if (write && !SKB(cb).has(off)) return kNo;
    return skb_common(off, size, write, CtxLoad::Scalar);
}

Verdict tc_cls_act_access(int64_t off, int64_t size, bool write) {
    if (write && !(SKB(mark).has(off) || SKB(tc_index).has(off) || SKB(priority).has(off) ||
                   SKB(tc_classid).has(off) || SKB(cb).has(off) || SKB(tstamp).has(off) ||
                   SKB(queue_mapping).has(off)))
        return kNo;
    CtxLoad load = CtxLoad::Scalar;
    if (SKB(data).has(off)) load = CtxLoad::PacketData;
    else if (SKB(data_meta).has(off)) load = CtxLoad::PacketMeta;
    else if (SKB(data_end).has(off)) load = CtxLoad::PacketEnd;
    else if (skb_sk_fields(off)) return kNo;
    else if (off == CTX_OFF(__sk_buff, tstamp_type)) return size == 1 ? Verdict(CtxLoad::Scalar) : kNo;
    return skb_common(off, size, write, load);
}

Verdict cg_skb_access(int64_t off, int64_t size, bool write) {
    if (SKB(tc_classid).has(off) || SKB(data_meta).has(off) || SKB(wire_len).has(off)) return kNo;
    // data, data_end: only for bpf_capable() loaders (modelled as privileged).
    if (write && !(SKB(mark).has(off) || SKB(priority).has(off) || SKB(cb).has(off) || SKB(tstamp).has(off)))
        return kNo;
    CtxLoad load = CtxLoad::Scalar;
    if (SKB(data).has(off)) load = CtxLoad::PacketData;
    else if (SKB(data_end).has(off)) load = CtxLoad::PacketEnd;
    return skb_common(off, size, write, load);
}

Verdict lwt_access(int64_t off, int64_t size, bool write) {
    if (SKB(tc_classid).has(off) || skb_sk_fields(off) || SKB(data_meta).has(off) || SKB(tstamp).has(off) ||
        SKB(wire_len).has(off) || SKB(hwtstamp).has(off))
        return kNo;
    if (write && !(SKB(mark).has(off) || SKB(priority).has(off) || SKB(cb).has(off))) return kNo;
    CtxLoad load = CtxLoad::Scalar;
    if (SKB(data).has(off)) load = CtxLoad::PacketData;
    else if (SKB(data_end).has(off)) load = CtxLoad::PacketEnd;
    return skb_common(off, size, write, load);
}

Verdict sk_skb_access(int64_t off, int64_t size, bool write) {
    if (SKB(tc_classid).has(off) || SKB(data_meta).has(off) || SKB(tstamp).has(off) || SKB(wire_len).has(off) ||
        SKB(hwtstamp).has(off))
        return kNo;
    if (write && !(SKB(tc_index).has(off) || SKB(priority).has(off))) return kNo;
    if (SKB(mark).has(off)) return kNo;
    CtxLoad load = CtxLoad::Scalar;
    if (SKB(data).has(off)) load = CtxLoad::PacketData;
    else if (SKB(data_end).has(off)) load = CtxLoad::PacketEnd;
    return skb_common(off, size, write, load);
}

// flow_dissector_is_valid_access().
Verdict flow_dissector_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(__sk_buff))) return kNo;
    if (off % size != 0) return kNo;
    if (write) return kNo;
    if (SKB(data).has(off)) return size == kU32 ? Verdict(CtxLoad::PacketData) : kNo;
    if (SKB(data_end).has(off)) return size == kU32 ? Verdict(CtxLoad::PacketEnd) : kNo;
    if (off >= CTX_OFF(__sk_buff, flow_keys) && off < CTX_OFF(__sk_buff, flow_keys) + kU64)
        return size == kU64 ? Verdict(CtxLoad::FlowKeys) : kNo;
    return kNo;
}

#undef SKB

// ─────────────────────────────── xdp_md ───────────────────────────────

Verdict xdp_access(int64_t off, int64_t size, bool write, Attach at) {
    if (at != Attach::XdpDevmap && off == CTX_OFF(xdp_md, egress_ifindex)) return kNo;
    if (write) return kNo;   // rx_queue_index is writable only by device-bound programs
    CtxLoad load = CtxLoad::Scalar;
    if (off == CTX_OFF(xdp_md, data)) load = CtxLoad::PacketData;
    else if (off == CTX_OFF(xdp_md, data_meta)) load = CtxLoad::PacketMeta;
    else if (off == CTX_OFF(xdp_md, data_end)) load = CtxLoad::PacketEnd;
    if (off < 0 || off >= static_cast<int64_t>(sizeof(xdp_md)) || off % size != 0 || size != kU32) return kNo;
    return load;
}

// ─────────────────────────────── bpf_sock (cgroup_sock) ───────────────────────────────

#define SOCK(m) CTX_FIELD(bpf_sock, m)

// bpf_sock_is_valid_access().
bool bpf_sock_access(int64_t off, int64_t size) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(bpf_sock))) return false;
    if (off % size != 0) return false;
    if (off == CTX_OFF(bpf_sock, state) || off == CTX_OFF(bpf_sock, family) || off == CTX_OFF(bpf_sock, type) ||
        off == CTX_OFF(bpf_sock, protocol) || off == CTX_OFF(bpf_sock, src_port) ||
        off == CTX_OFF(bpf_sock, rx_queue_mapping) || SOCK(src_ip4).has(off) || SOCK(src_ip6).has(off) ||
        SOCK(dst_ip4).has(off) || SOCK(dst_ip6).has(off))
        return narrow_ok(size, kU32);
    if (SOCK(dst_port).has(off)) return narrow_ok(size, size == kU32 ? kU32 : 2);
    if (off >= SOCK(dst_port).end && off < CTX_OFF(bpf_sock, dst_ip4)) return false;
    return size == kU32;
}

// __sock_filter_check_attach_type().
bool sock_attach_ok(int64_t off, bool write, Attach at) {
    if (off == CTX_OFF(bpf_sock, bound_dev_if) || off == CTX_OFF(bpf_sock, mark) ||
        off == CTX_OFF(bpf_sock, priority))
        return at == Attach::SockCreate || at == Attach::SockRelease;
    if (SOCK(src_ip4).has(off) && at != Attach::PostBind4) return false;
    if (SOCK(src_ip6).has(off) && at != Attach::PostBind6) return false;
    if (SOCK(src_port).has(off) && at != Attach::PostBind4 && at != Attach::PostBind6) return false;
    return !write;
}

#undef SOCK

Verdict sock_filter_access(int64_t off, int64_t size, bool write, Attach at) {
    if (!bpf_sock_access(off, size)) return kNo;
    return sock_attach_ok(off, write, at) ? Verdict(CtxLoad::Scalar) : kNo;
}

// ─────────────────────────────── bpf_sock_addr ───────────────────────────────

#define SADDR(m) CTX_FIELD(bpf_sock_addr, m)

Verdict sock_addr_access(int64_t off, int64_t size, bool write, Attach at) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(bpf_sock_addr))) return kNo;
    if (off % size != 0) return kNo;
    const bool v4 = at == Attach::Bind4 || at == Attach::Connect4 || at == Attach::Getpeername4 ||
                    at == Attach::Getsockname4 || at == Attach::Sendmsg4 || at == Attach::Recvmsg4;
    const bool v6 = at == Attach::Bind6 || at == Attach::Connect6 || at == Attach::Getpeername6 ||
                    at == Attach::Getsockname6 || at == Attach::Sendmsg6 || at == Attach::Recvmsg6;
    if (SADDR(user_ip4).has(off) && !v4) return kNo;
    if (SADDR(user_ip6).has(off) && !v6) return kNo;
    if (SADDR(msg_src_ip4).has(off) && at != Attach::Sendmsg4) return kNo;
    if (SADDR(msg_src_ip6).has(off) && at != Attach::Sendmsg6) return kNo;
    if (SADDR(user_ip4).has(off) || SADDR(user_ip6).has(off) || SADDR(msg_src_ip4).has(off) ||
        SADDR(msg_src_ip6).has(off) || SADDR(user_port).has(off)) {
        if (wide_ok(off, size, SADDR(user_ip6)) || wide_ok(off, size, SADDR(msg_src_ip6))) return CtxLoad::Scalar;
        if (write) return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
        return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    }
    if (ptr_range(off, CTX_OFF(bpf_sock_addr, sk))) return !write && size == kU64 ? Verdict(CtxLoad::Sock) : kNo;
    if (off >= SADDR(msg_src_ip6).end && off < CTX_OFF(bpf_sock_addr, sk)) return kNo;   // padding before sk
    if (write) return kNo;
    return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
}

#undef SADDR

// ─────────────────────────────── bpf_sock_ops ───────────────────────────────

Verdict sock_ops_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off >= kSockOpsSize) return kNo;
    if (off % size != 0) return kNo;
    if (write) {
        if (off == CTX_OFF(bpf_sock_ops, reply) || off == CTX_OFF(bpf_sock_ops, sk_txhash))
            return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
        return kNo;
    }
    if (off >= CTX_OFF(bpf_sock_ops, bytes_received) && off < CTX_FIELD(bpf_sock_ops, bytes_acked).end)
        return size == kU64 ? Verdict(CtxLoad::Scalar) : kNo;
    if (ptr_range(off, CTX_OFF(bpf_sock_ops, sk))) return size == kU64 ? Verdict(CtxLoad::SockOrNull) : kNo;
    if (ptr_range(off, CTX_OFF(bpf_sock_ops, skb_data))) return size == kU64 ? Verdict(CtxLoad::PacketData) : kNo;
    if (ptr_range(off, CTX_OFF(bpf_sock_ops, skb_data_end)))
        return size == kU64 ? Verdict(CtxLoad::PacketEnd) : kNo;
    if (off == CTX_OFF(bpf_sock_ops, skb_tcp_flags)) return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    if (ptr_range(off, kSockOpsSkbHwtstamp)) return size == kU64 ? Verdict(CtxLoad::Scalar) : kNo;
    return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
}

// ─────────────────────────────── sk_msg_md ───────────────────────────────

Verdict sk_msg_access(int64_t off, int64_t size, bool write) {
    if (write) return kNo;
    if (off % size != 0) return kNo;
    if (off == CTX_OFF(sk_msg_md, data)) return size == kU64 ? Verdict(CtxLoad::PacketData) : kNo;
    if (off == CTX_OFF(sk_msg_md, data_end)) return size == kU64 ? Verdict(CtxLoad::PacketEnd) : kNo;
    if (off == CTX_OFF(sk_msg_md, sk)) return size == kU64 ? Verdict(CtxLoad::Sock) : kNo;
    if (CTX_FIELD(sk_msg_md, family).has(off) || CTX_FIELD(sk_msg_md, remote_ip4).has(off) ||
        CTX_FIELD(sk_msg_md, local_ip4).has(off) || CTX_FIELD(sk_msg_md, remote_ip6).has(off) ||
        CTX_FIELD(sk_msg_md, local_ip6).has(off) || CTX_FIELD(sk_msg_md, remote_port).has(off) ||
        CTX_FIELD(sk_msg_md, local_port).has(off) || CTX_FIELD(sk_msg_md, size).has(off))
        return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
    return kNo;
}

// ─────────────────────────────── bpf_sk_lookup ───────────────────────────────

Verdict sk_lookup_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(bpf_sk_lookup))) return kNo;
    if (off % size != 0) return kNo;
    if (write) return kNo;
    if (off == CTX_OFF(bpf_sk_lookup, sk)) return size == kU64 ? Verdict(CtxLoad::SockOrNull) : kNo;
#define LK(m) CTX_FIELD(bpf_sk_lookup, m)
    if (LK(family).has(off) || LK(protocol).has(off) || LK(remote_ip4).has(off) || LK(local_ip4).has(off) ||
        LK(remote_ip6).has(off) || LK(local_ip6).has(off) || LK(local_port).has(off) ||
        LK(ingress_ifindex).has(off))
        return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    if (LK(remote_port).has(off)) {
        if (size == kU32) return CtxLoad::Scalar;   // 4-byte access to the 2-byte field, for compatibility
        return narrow_ok(size, 2) ? Verdict(CtxLoad::Scalar) : kNo;
    }
    if (off >= LK(remote_port).end && off < CTX_OFF(bpf_sk_lookup, local_ip4))   // the zero padding
        return narrow_ok(size, 2) ? Verdict(CtxLoad::Scalar) : kNo;
#undef LK
    return kNo;
}

// ─────────────────────────────── sk_reuseport_md ───────────────────────────────

Verdict sk_reuseport_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(sk_reuseport_md)) || off % size || write) return kNo;
    if (off == CTX_OFF(sk_reuseport_md, data)) return size == kU64 ? Verdict(CtxLoad::PacketData) : kNo;
    if (off == CTX_OFF(sk_reuseport_md, data_end)) return size == kU64 ? Verdict(CtxLoad::PacketEnd) : kNo;
    if (off == CTX_OFF(sk_reuseport_md, hash)) return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
    if (off == CTX_OFF(sk_reuseport_md, sk)) return size == kU64 ? Verdict(CtxLoad::Sock) : kNo;
    if (off == CTX_OFF(sk_reuseport_md, migrating_sk))
        return size == kU64 ? Verdict(CtxLoad::SockCommonOrNull) : kNo;
    if (CTX_FIELD(sk_reuseport_md, eth_protocol).has(off) && size < 2) return kNo;   // sk_buff.protocol is __be16
    if (CTX_FIELD(sk_reuseport_md, eth_protocol).has(off) || CTX_FIELD(sk_reuseport_md, ip_protocol).has(off) ||
        CTX_FIELD(sk_reuseport_md, bind_inany).has(off) || CTX_FIELD(sk_reuseport_md, len).has(off))
        return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    return kNo;
}

// ─────────────────────────────── kernel/bpf/cgroup.c ───────────────────────────────

Verdict cgroup_dev_access(int64_t off, int64_t size, bool write) {
    if (write) return kNo;
    if (off < 0 || off + size > static_cast<int64_t>(sizeof(bpf_cgroup_dev_ctx))) return kNo;
    if (off % size != 0) return kNo;
    if (CTX_FIELD(bpf_cgroup_dev_ctx, access_type).has(off))
        return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
}

Verdict sysctl_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off + size > static_cast<int64_t>(sizeof(bpf_sysctl)) || off % size) return kNo;
    if (CTX_FIELD(bpf_sysctl, write).has(off)) {
        if (write) return kNo;
        return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
    }
    if (CTX_FIELD(bpf_sysctl, file_pos).has(off)) {
        if (!write) return narrow_ok(size, kU32) ? Verdict(CtxLoad::Scalar) : kNo;
        return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
    }
    return kNo;
}

Verdict sockopt_access(int64_t off, int64_t size, bool write, Attach at) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(bpf_sockopt))) return kNo;
    if (off % size != 0) return kNo;
    if (write) {
        if (off == CTX_OFF(bpf_sockopt, retval))
            return size == kU32 && at == Attach::Getsockopt ? Verdict(CtxLoad::Scalar) : kNo;
        if (off == CTX_OFF(bpf_sockopt, optname) || off == CTX_OFF(bpf_sockopt, level))
            return size == kU32 && at == Attach::Setsockopt ? Verdict(CtxLoad::Scalar) : kNo;
        if (off == CTX_OFF(bpf_sockopt, optlen)) return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
        return kNo;
    }
    auto ptr = [&](int64_t lo) { return off >= lo && off < lo + kU64; };
    if (ptr(CTX_OFF(bpf_sockopt, sk))) return size == kU64 ? Verdict(CtxLoad::Sock) : kNo;
    if (ptr(CTX_OFF(bpf_sockopt, optval))) return size == kU64 ? Verdict(CtxLoad::PacketData) : kNo;
    if (ptr(CTX_OFF(bpf_sockopt, optval_end))) return size == kU64 ? Verdict(CtxLoad::PacketEnd) : kNo;
    if (CTX_FIELD(bpf_sockopt, retval).has(off))
        return size == kU32 && at == Attach::Getsockopt ? Verdict(CtxLoad::Scalar) : kNo;
    return size == kU32 ? Verdict(CtxLoad::Scalar) : kNo;
}

// ─────────────────────────────── kernel/trace/bpf_trace.c ───────────────────────────────

Verdict kprobe_access(int64_t off, int64_t size, bool write) {
    const int64_t n = sizeof(pt_regs);
    if (off < 0 || off >= n || write || off % size != 0 || off + size > n) return kNo;
    return CtxLoad::Scalar;
}

// tp_prog_is_valid_access() compares `off < sizeof(void *)` unsigned, so negative offsets pass
// it (and `off >= PERF_MAX_TRACE_SIZE`, signed): the kernel accepts r0 = *(u64 *)(r1 - 8).
Verdict tp_access(int64_t off, int64_t size, bool write) {
    const int32_t o = static_cast<int32_t>(off);
    if (static_cast<uint32_t>(o) < 8 || o >= kPerfMaxTraceSize || write || o % size != 0) return kNo;
    return CtxLoad::Scalar;
}

// bpf_tracing_ctx_access(): u64 args[MAX_BPF_FUNC_ARGS], read only, aligned to the access size.
bool tracing_ctx_access(int64_t off, int64_t size, bool write) {
    return off >= 0 && off < kU64 * kMaxBpfFuncArgs && !write && off % size == 0;
}

Verdict pe_access(int64_t off, int64_t size, bool write) {
    if (off < 0 || off >= static_cast<int64_t>(sizeof(bpf_perf_event_data)) || write) return kNo;
    if (off % size != 0) return kNo;   // 64-bit: no 4-byte-aligned u64 exception
    if (CTX_FIELD(bpf_perf_event_data, sample_period).has(off) || CTX_FIELD(bpf_perf_event_data, addr).has(off))
        return narrow_ok(size, kU64) ? Verdict(CtxLoad::Scalar) : kNo;
    return size == kU64 ? Verdict(CtxLoad::Scalar) : kNo;   // sizeof(long)
}

// ─────────────────────────────── btf_ctx_access ───────────────────────────────

struct TracingProto {
    std::string tname;           // the name the kernel's messages use
    std::optional<uint32_t> proto;   // FUNC_PROTO id; nullopt: unknown (12 u64 scalars)
    bool skip_first = false;     // tp_btf: the btf_trace_<name> typedef's `void *__data`
};

TracingProto tracing_proto(const btf::Btf* b, Attach at, std::string_view attach) {
    TracingProto p;
    std::string_view name = attach;
    if (auto slash = attach.find('/'); slash != std::string_view::npos) name = attach.substr(slash + 1);
    std::string lookup(name);
    if (at == Attach::TpBtf) lookup = "btf_trace_" + lookup;
    else if (at == Attach::Iter) lookup = "bpf_iter_" + lookup;
    else if (at == Attach::LsmMac || at == Attach::LsmCgroup) lookup = "bpf_lsm_" + lookup;
    p.tname = lookup;
    if (!b || name.empty()) return p;
    try {
        if (at == Attach::TpBtf) {
            auto td = b->find(lookup, btf::Kind::Typedef);
            if (!td) return p;
            const btf::Type ptr = b->type(b->resolve(*td));
            if (ptr.kind() != btf::Kind::Ptr) return p;
            const uint32_t fp = b->resolve(ptr.type());
            if (b->type(fp).kind() != btf::Kind::FuncProto) return p;
            p.proto = fp;
            p.skip_first = true;
        } else {
            auto fn = b->find(lookup, btf::Kind::Func);
            if (!fn) return p;
            p.proto = b->type(*fn).type();
        }
    } catch (const std::exception&) {
        p.proto.reset();
    }
    return p;
}

// btf_ctx_access(): arguments are u64 slots (struct arguments passed by value over several
// slots are not modelled); pointers to structs become PTR_TO_BTF_ID.
CtxAccess btf_ctx_access(const CtxAccessQuery& q, Attach at, const std::string& invalid) {
    CtxAccess r;
    const int64_t off = q.off;
    auto refuse = [&](std::string why) {
        r.ok = false;
        r.message = why.empty() ? invalid : why + "\n" + invalid;
        return r;
    };
    const TracingProto tp = tracing_proto(q.kernel_btf, at, q.attach);
    if (off % 8) return refuse(fmt::format("func '{}' offset {} is not multiple of 8", tp.tname, off));
    const int64_t arg = off / 8;
    if (!tp.proto) {   // no BTF: MAX_BPF_FUNC_REG_ARGS u64 scalars
        r.ok = true;
        return r;
    }
    const btf::Btf& b = *q.kernel_btf;
    try {
        const btf::Type proto = b.type(*tp.proto);
        const int64_t first = tp.skip_first ? 1 : 0;
        const int64_t nr_args = static_cast<int64_t>(proto.vlen()) - first;
        if (arg > nr_args) return refuse(fmt::format("func '{}' doesn't have {}-th argument", tp.tname, arg + 1));
        uint32_t tid;
        if (arg == nr_args) {
            switch (at) {
            case Attach::LsmMac: case Attach::LsmCgroup: case Attach::Fexit:
                if (proto.type() == 0) { r.ok = true; return r; }
                tid = proto.type();
                break;
            case Attach::FmodRet: {
                tid = proto.type();
                const btf::Type t = b.type(b.resolve(tid));
                if (t.kind() != btf::Kind::Int || t.size() > 8)
                    return refuse(fmt::format("ret type {} not allowed for fmod_ret", btf::kind_name(t.kind())));
                break;
            }
            default:
                return refuse(fmt::format("func '{}' doesn't have {}-th argument", tp.tname, arg + 1));
            }
        } else {
            tid = proto.param(static_cast<uint32_t>(arg + first)).type;
        }
        const uint32_t rid = b.resolve(tid);
        const btf::Type t = b.type(rid);
        if (t.kind() == btf::Kind::Int || t.kind() == btf::Kind::Enum || t.kind() == btf::Kind::Enum64 ||
            t.kind() == btf::Kind::Struct || t.kind() == btf::Kind::Union) {
            r.ok = true;
            return r;
        }
        if (t.kind() != btf::Kind::Ptr)
            return refuse(fmt::format("func '{}' arg{} '{}' has type {}. Only pointer access is allowed", tp.tname,
                                      arg, arg < nr_args ? proto.param(static_cast<uint32_t>(arg + first)).name : "",
                                      btf::kind_name(t.kind())));
        const uint32_t target = b.resolve(t.type());
        const btf::Type tt = b.type(target);
        if (target == 0 || tt.kind() == btf::Kind::Int || tt.kind() == btf::Kind::Enum ||
            tt.kind() == btf::Kind::Enum64) {   // void * and pointers to integers read as scalars
            r.ok = true;
            return r;
        }
        if (tt.kind() != btf::Kind::Struct)
            return refuse(fmt::format("func '{}' arg{} type {} is not a struct", tp.tname, arg,
                                      btf::kind_name(tt.kind())));
        r.ok = true;
        // bpf_iter targets declare their object arguments PTR_TO_BTF_ID_OR_NULL.
        r.load = at == Attach::Iter && arg >= 1 ? CtxLoad::BtfIdOrNull : CtxLoad::BtfId;
        r.btf_id = target;
        return r;
    } catch (const std::exception&) {
        r.ok = true;   // malformed BTF: fall back to a scalar
        r.load = CtxLoad::Scalar;
        return r;
    }
}

}  // namespace

CtxAccess ctx_access(const CtxAccessQuery& q) {
    CtxAccess r;
    const std::string invalid = fmt::format("invalid bpf_context access off={} size={}", q.off, q.size);
    if (q.atomic) {   // check_atomic() refuses any atomic on the context before its access is judged
        r.message = "BPF_ATOMIC stores into ctx is not allowed";
        return r;
    }
    const int64_t off = q.off, size = q.size;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        r.message = invalid;
        return r;
    }
    const bool w = q.write;
    const Attach at = parse_attach(q.type, q.attach);
    Verdict v = kNo;
    switch (q.type) {
    case ProgType::SocketFilter: v = sk_filter_access(off, size, w); break;
    case ProgType::SchedCls:
    case ProgType::SchedAct: v = tc_cls_act_access(off, size, w); break;
    case ProgType::Xdp: v = xdp_access(off, size, w, at); break;
    case ProgType::CgroupSkb: v = cg_skb_access(off, size, w); break;
    case ProgType::LwtIn:
    case ProgType::LwtOut:
    case ProgType::LwtXmit:
    case ProgType::LwtSeg6local: v = lwt_access(off, size, w); break;
    case ProgType::SkSkb: v = sk_skb_access(off, size, w); break;
    case ProgType::FlowDissector: v = flow_dissector_access(off, size, w); break;
    case ProgType::CgroupSock: v = sock_filter_access(off, size, w, at); break;
    case ProgType::CgroupSockAddr: v = sock_addr_access(off, size, w, at); break;
    case ProgType::SockOps: v = sock_ops_access(off, size, w); break;
    case ProgType::SkMsg: v = sk_msg_access(off, size, w); break;
    case ProgType::SkLookup: v = sk_lookup_access(off, size, w); break;
    case ProgType::SkReuseport: v = sk_reuseport_access(off, size, w); break;
    case ProgType::CgroupDevice: v = cgroup_dev_access(off, size, w); break;
    case ProgType::CgroupSysctl: v = sysctl_access(off, size, w); break;
    case ProgType::CgroupSockopt: v = sockopt_access(off, size, w, at); break;
    case ProgType::Kprobe: v = kprobe_access(off, size, w); break;
    case ProgType::Tracepoint: v = tp_access(off, size, w); break;
    case ProgType::PerfEvent: v = pe_access(off, size, w); break;
    case ProgType::RawTracepoint:
        v = tracing_ctx_access(off, size, w) ? Verdict(CtxLoad::Scalar) : kNo;
        break;
    case ProgType::RawTracepointWritable:
        if (off == 0) {
            // The kernel gives PTR_TO_TP_BUFFER here, which CtxLoad does not name (yet): a gap.
            v = size == kU64 && !w ? Verdict(CtxLoad::Scalar) : kNo;
        } else {
            v = tracing_ctx_access(off, size, w) ? Verdict(CtxLoad::Scalar) : kNo;
        }
        break;
    case ProgType::LircMode2: v = !w && off == 0 && size == kU32 ? Verdict(CtxLoad::Scalar) : kNo; break;
    case ProgType::Syscall:
        v = off >= 0 && off < kSyscallCtxMax && off % size == 0 ? Verdict(CtxLoad::Scalar) : kNo;
        break;
    case ProgType::Netfilter:
        // nf_is_valid_access(): struct bpf_nf_ctx { const struct nf_hook_state *state; struct sk_buff *skb; }
        if (off >= 0 && off < kNfCtxSize && !w && size == kU64 && off % size == 0) {
            r.ok = true;
            r.load = CtxLoad::BtfId;
            if (q.kernel_btf) {
                try {
                    r.btf_id = q.kernel_btf->find(off < 8 ? "nf_hook_state" : "sk_buff", btf::Kind::Struct).value_or(0);
                } catch (const std::exception&) {
                    r.btf_id = 0;
                }
            }
            return r;
        }
        break;
    case ProgType::Tracing:
    case ProgType::Lsm:
    case ProgType::StructOps:
    case ProgType::Ext:
        // tracing_prog_is_valid_access(): bpf_tracing_ctx_access() then btf_ctx_access(). LSM
        // programs use btf_ctx_access() directly; their args are bounded the same way here.
        if (!tracing_ctx_access(off, size, w)) break;
        if (q.type == ProgType::Tracing || q.type == ProgType::Lsm) return btf_ctx_access(q, at, invalid);
        v = off % 8 == 0 ? Verdict(CtxLoad::Scalar) : kNo;
        break;
    default:
        break;
    }
    if (!v) {
        r.message = invalid;
        return r;
    }
    r.ok = true;
    r.load = *v;
    return r;
}

uint32_t ctx_size(harness::ProgType type, std::string_view attach) {
    switch (type) {
    case ProgType::SocketFilter: case ProgType::SchedCls: case ProgType::SchedAct: case ProgType::CgroupSkb:
    case ProgType::LwtIn: case ProgType::LwtOut: case ProgType::LwtXmit: case ProgType::LwtSeg6local:
    case ProgType::SkSkb: case ProgType::FlowDissector:
        return sizeof(__sk_buff);
    case ProgType::Xdp: return sizeof(xdp_md);
    case ProgType::CgroupSock: return sizeof(bpf_sock);
    case ProgType::CgroupSockAddr: return sizeof(bpf_sock_addr);
    case ProgType::SockOps: return kSockOpsSize;
    case ProgType::SkMsg: return sizeof(sk_msg_md);
    case ProgType::SkLookup: return sizeof(bpf_sk_lookup);
    case ProgType::SkReuseport: return sizeof(sk_reuseport_md);
    case ProgType::CgroupDevice: return sizeof(bpf_cgroup_dev_ctx);
    case ProgType::CgroupSysctl: return sizeof(bpf_sysctl);
    case ProgType::CgroupSockopt: return sizeof(bpf_sockopt);
    case ProgType::Kprobe: return sizeof(pt_regs);
    case ProgType::PerfEvent: return sizeof(bpf_perf_event_data);
    case ProgType::Tracepoint: return kPerfMaxTraceSize;
    case ProgType::RawTracepoint: case ProgType::RawTracepointWritable: case ProgType::StructOps: case ProgType::Ext:
    case ProgType::Tracing: case ProgType::Lsm:
        (void)attach;
        return kU64 * kMaxBpfFuncArgs;
    case ProgType::LircMode2: return 4;
    case ProgType::Netfilter: return kNfCtxSize;
    case ProgType::Syscall: return kSyscallCtxMax;
    default: return 0;
    }
}

}  // namespace bpfsim::verifier
