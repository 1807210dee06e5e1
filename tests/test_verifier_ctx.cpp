// verifier::ctx_access: the per-program-type context rules of Linux 6.18, case by case and
// differentially against the running kernel's BPF_PROG_LOAD.
#include "verifier/ctx_access.hpp"

#include "kernel_load.hpp"

#include <catch2/catch.hpp>

#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

using bpfsim::harness::ProgType;
using bpfsim::verifier::ctx_access;
using bpfsim::verifier::ctx_size;
using bpfsim::verifier::CtxAccess;
using bpfsim::verifier::CtxAccessQuery;
using bpfsim::verifier::CtxLoad;
using namespace bpfsim::testing;

namespace {

CtxAccess rd(ProgType t, int64_t off, uint32_t size, std::string_view attach = {}, const bpfsim::btf::Btf* btf = nullptr) {
    CtxAccessQuery q;
    q.type = t;
    q.attach = attach;
    q.off = off;
    q.size = size;
    q.kernel_btf = btf;
    return ctx_access(q);
}

CtxAccess wr(ProgType t, int64_t off, uint32_t size, std::string_view attach = {}) {
    CtxAccessQuery q;
    q.type = t;
    q.attach = attach;
    q.off = off;
    q.size = size;
    q.write = true;
    return ctx_access(q);
}

std::string invalid(int64_t off, uint32_t size) {
    return fmt::format("invalid bpf_context access off={} size={}", off, size);
}

constexpr int64_t skb(std::size_t off) { return static_cast<int64_t>(off); }

}  // namespace

TEST_CASE("ctx access: xdp_md packet pointers and scalars", "[verifier][ctx]") {
    auto a = rd(ProgType::Xdp, offsetof(xdp_md, data), 4);
    REQUIRE(a.ok);
    CHECK(a.load == CtxLoad::PacketData);
    CHECK(rd(ProgType::Xdp, offsetof(xdp_md, data_end), 4).load == CtxLoad::PacketEnd);
    CHECK(rd(ProgType::Xdp, offsetof(xdp_md, data_meta), 4).load == CtxLoad::PacketMeta);
    auto q = rd(ProgType::Xdp, offsetof(xdp_md, rx_queue_index), 4);
    CHECK((q.ok && q.load == CtxLoad::Scalar));
    // 8-byte and narrow loads, misaligned, out of range, writes: all refused.
    CHECK(rd(ProgType::Xdp, 0, 8).message == invalid(0, 8));
    CHECK(rd(ProgType::Xdp, 0, 1).message == invalid(0, 1));
    CHECK(rd(ProgType::Xdp, 2, 4).message == invalid(2, 4));
    CHECK(rd(ProgType::Xdp, 24, 4).message == invalid(24, 4));
    CHECK(rd(ProgType::Xdp, -4, 4).message == invalid(-4, 4));
    CHECK(wr(ProgType::Xdp, offsetof(xdp_md, data), 4).message == invalid(0, 4));
    // egress_ifindex only for devmap programs.
    CHECK_FALSE(rd(ProgType::Xdp, offsetof(xdp_md, egress_ifindex), 4).ok);
    CHECK(rd(ProgType::Xdp, offsetof(xdp_md, egress_ifindex), 4, "xdp/devmap").ok);
    CHECK(rd(ProgType::Xdp, offsetof(xdp_md, egress_ifindex), 4, "devmap").ok);
    CHECK(ctx_size(ProgType::Xdp, "") == sizeof(xdp_md));
}

TEST_CASE("ctx access: __sk_buff per program type", "[verifier][ctx]") {
    const int64_t data = offsetof(__sk_buff, data), data_end = offsetof(__sk_buff, data_end),
                  meta = offsetof(__sk_buff, data_meta);
    // tc has all three packet pointers; socket_filter none; cgroup_skb/lwt/sk_skb no data_meta.
    CHECK(rd(ProgType::SchedCls, data, 4).load == CtxLoad::PacketData);
    CHECK(rd(ProgType::SchedCls, data_end, 4).load == CtxLoad::PacketEnd);
    CHECK(rd(ProgType::SchedAct, meta, 4).load == CtxLoad::PacketMeta);
    CHECK(rd(ProgType::SocketFilter, data, 4).message == invalid(data, 4));
    CHECK_FALSE(rd(ProgType::SocketFilter, data_end, 4).ok);
    CHECK(rd(ProgType::CgroupSkb, data, 4).load == CtxLoad::PacketData);
    CHECK_FALSE(rd(ProgType::CgroupSkb, meta, 4).ok);
    CHECK(rd(ProgType::LwtIn, data_end, 4).load == CtxLoad::PacketEnd);
    CHECK_FALSE(rd(ProgType::LwtXmit, meta, 4).ok);
    CHECK(rd(ProgType::SkSkb, data, 4).load == CtxLoad::PacketData);
    CHECK_FALSE(rd(ProgType::SkSkb, meta, 4).ok);
    // flow_dissector: data, data_end, flow_keys and nothing else.
    CHECK(rd(ProgType::FlowDissector, data, 4).load == CtxLoad::PacketData);
    CHECK(rd(ProgType::FlowDissector, offsetof(__sk_buff, flow_keys), 8).load == CtxLoad::FlowKeys);
    CHECK_FALSE(rd(ProgType::FlowDissector, skb(offsetof(__sk_buff, flow_keys)) + 4, 8).ok);
    CHECK_FALSE(rd(ProgType::FlowDissector, data + 2, 4).ok);
    CHECK_FALSE(rd(ProgType::FlowDissector, offsetof(__sk_buff, len), 4).ok);
    CHECK_FALSE(rd(ProgType::SchedCls, offsetof(__sk_buff, flow_keys), 8).ok);
    // data is a whole __u32 only.
    CHECK(rd(ProgType::SchedCls, data, 1).message == invalid(data, 1));
    CHECK_FALSE(rd(ProgType::SchedCls, data, 8).ok);

    // Narrow loads of len: 1 byte at each of its 4 offsets, 2 bytes at 0 and 2, not misaligned.
    const int64_t len = offsetof(__sk_buff, len);
    for (int64_t i = 0; i < 4; ++i) CHECK(rd(ProgType::SocketFilter, len + i, 1).ok);
    CHECK(rd(ProgType::SocketFilter, len, 2).ok);
    CHECK(rd(ProgType::SocketFilter, len + 2, 2).ok);
    CHECK(rd(ProgType::SocketFilter, len + 1, 2).message == invalid(len + 1, 2));
    CHECK(rd(ProgType::SocketFilter, len, 8).message == invalid(len, 8));
    // ... but narrow writes are refused.
    CHECK_FALSE(wr(ProgType::SchedCls, offsetof(__sk_buff, mark), 1).ok);

    // The socket pointer and 64-bit fields.
    auto sk = rd(ProgType::SchedCls, offsetof(__sk_buff, sk), 8);
    REQUIRE(sk.ok);
    CHECK(sk.load == CtxLoad::SockCommonOrNull);
    CHECK_FALSE(rd(ProgType::SchedCls, offsetof(__sk_buff, sk), 4).ok);
    for (int64_t i = 1; i < 8; ++i)   // inside the pointer: refused since 6.11 (bpf_ctx_range_ptr)
        CHECK(rd(ProgType::CgroupSkb, skb(offsetof(__sk_buff, sk)) + i, 1).message ==
              invalid(skb(offsetof(__sk_buff, sk)) + i, 1));
    CHECK(rd(ProgType::SchedCls, offsetof(__sk_buff, tstamp), 8).ok);
    CHECK_FALSE(rd(ProgType::SchedCls, offsetof(__sk_buff, tstamp), 4).ok);
    CHECK_FALSE(rd(ProgType::SocketFilter, offsetof(__sk_buff, tstamp), 8).ok);
    CHECK(rd(ProgType::SchedCls, offsetof(__sk_buff, hwtstamp), 8).ok);
    CHECK_FALSE(wr(ProgType::SchedCls, offsetof(__sk_buff, hwtstamp), 8).ok);
    // tstamp_type: a byte, in tc only.
    CHECK(rd(ProgType::SchedCls, offsetof(__sk_buff, tstamp_type), 1).ok);
    CHECK_FALSE(rd(ProgType::SchedCls, offsetof(__sk_buff, tstamp_type), 2).ok);
    CHECK_FALSE(rd(ProgType::CgroupSkb, offsetof(__sk_buff, tstamp_type), 1).ok);
    // The socket fields (family..local_port): not in tc, socket_filter or lwt.
    CHECK(rd(ProgType::CgroupSkb, offsetof(__sk_buff, family), 4).ok);
    CHECK(rd(ProgType::SkSkb, offsetof(__sk_buff, remote_port), 4).ok);
    CHECK_FALSE(rd(ProgType::SchedCls, offsetof(__sk_buff, family), 4).ok);
    CHECK_FALSE(rd(ProgType::LwtOut, offsetof(__sk_buff, local_ip4), 4).ok);
    CHECK_FALSE(rd(ProgType::CgroupSkb, offsetof(__sk_buff, remote_ip6), 2).ok);   // ip fields: whole __u32

    // Writes: the per-type lists.
    const int64_t mark = offsetof(__sk_buff, mark), cb = offsetof(__sk_buff, cb), tc_index = offsetof(__sk_buff, tc_index);
    CHECK(wr(ProgType::SchedCls, mark, 4).ok);
    CHECK(wr(ProgType::SchedCls, tc_index, 4).ok);
    CHECK(wr(ProgType::SchedCls, offsetof(__sk_buff, tc_classid), 4).ok);
    CHECK(wr(ProgType::SchedCls, offsetof(__sk_buff, queue_mapping), 4).ok);
    CHECK(wr(ProgType::SchedCls, offsetof(__sk_buff, tstamp), 8).ok);
    CHECK(wr(ProgType::SchedCls, offsetof(__sk_buff, len), 4).message == invalid(skb(offsetof(__sk_buff, len)), 4));
    CHECK(wr(ProgType::SocketFilter, mark, 4).message == invalid(mark, 4));
    CHECK(wr(ProgType::SocketFilter, cb, 4).ok);
    CHECK(wr(ProgType::SocketFilter, cb + 8, 8).ok);    // cb[] takes any aligned size
    CHECK(wr(ProgType::SocketFilter, cb + 19, 1).ok);
    CHECK_FALSE(wr(ProgType::SocketFilter, cb + 16, 8).ok);   // past cb[4]
    CHECK(wr(ProgType::CgroupSkb, mark, 4).ok);
    CHECK(wr(ProgType::CgroupSkb, offsetof(__sk_buff, priority), 4).ok);
    CHECK_FALSE(wr(ProgType::CgroupSkb, tc_index, 4).ok);
    CHECK(wr(ProgType::SkSkb, tc_index, 4).ok);
    CHECK_FALSE(wr(ProgType::SkSkb, cb, 4).ok);
    CHECK_FALSE(rd(ProgType::SkSkb, mark, 4).ok);   // sk_skb may not even read mark
    CHECK_FALSE(wr(ProgType::FlowDissector, cb, 4).ok);
    // Out of range, misaligned.
    CHECK(rd(ProgType::SchedCls, 192, 4).message == invalid(192, 4));
    CHECK(rd(ProgType::SchedCls, -4, 4).message == invalid(-4, 4));
    CHECK_FALSE(rd(ProgType::SchedCls, mark + 1, 4).ok);
    CHECK(ctx_size(ProgType::SchedCls, "") == 192);
}

TEST_CASE("ctx access: bpf_sock, bpf_sock_addr and expected attach types", "[verifier][ctx]") {
    // cgroup_sock: mark writable at sock_create/release only; src_ip4 at post_bind4 only, read only.
    CHECK(wr(ProgType::CgroupSock, offsetof(bpf_sock, mark), 4, "cgroup/sock_create").ok);
    CHECK(wr(ProgType::CgroupSock, offsetof(bpf_sock, mark), 4).ok);
    CHECK_FALSE(wr(ProgType::CgroupSock, offsetof(bpf_sock, mark), 4, "post_bind4").ok);
    CHECK_FALSE(rd(ProgType::CgroupSock, offsetof(bpf_sock, mark), 4, "post_bind4").ok);
    CHECK(rd(ProgType::CgroupSock, offsetof(bpf_sock, src_ip4), 1, "post_bind4").ok);
    CHECK_FALSE(rd(ProgType::CgroupSock, offsetof(bpf_sock, src_ip4), 4, "post_bind6").ok);
    CHECK_FALSE(wr(ProgType::CgroupSock, offsetof(bpf_sock, src_ip4), 4, "post_bind4").ok);
    CHECK(rd(ProgType::CgroupSock, offsetof(bpf_sock, family), 2).ok);
    CHECK_FALSE(wr(ProgType::CgroupSock, offsetof(bpf_sock, family), 4).ok);
    CHECK(rd(ProgType::CgroupSock, offsetof(bpf_sock, dst_port), 2).ok);
    CHECK(rd(ProgType::CgroupSock, offsetof(bpf_sock, dst_port), 4).ok);
    CHECK_FALSE(rd(ProgType::CgroupSock, offsetof(bpf_sock, dst_port) + 2, 2).ok);   // the padding

    const int64_t ip4 = offsetof(bpf_sock_addr, user_ip4), ip6 = offsetof(bpf_sock_addr, user_ip6);
    CHECK(rd(ProgType::CgroupSockAddr, ip4, 4, "cgroup/connect4").ok);
    CHECK(wr(ProgType::CgroupSockAddr, ip4, 4, "connect4").ok);
    CHECK(rd(ProgType::CgroupSockAddr, ip4, 1, "bind4").ok);
    CHECK_FALSE(wr(ProgType::CgroupSockAddr, ip4, 1, "bind4").ok);
    CHECK(rd(ProgType::CgroupSockAddr, ip4, 4, "connect6").message == invalid(ip4, 4));
    CHECK(rd(ProgType::CgroupSockAddr, ip6 + 8, 8, "connect6").ok);   // wide access to user_ip6
    CHECK(wr(ProgType::CgroupSockAddr, ip6, 8, "sendmsg6").ok);
    CHECK_FALSE(rd(ProgType::CgroupSockAddr, ip6 + 12, 8, "connect6").ok);
    CHECK_FALSE(rd(ProgType::CgroupSockAddr, ip6, 4, "connect_unix").ok);
    CHECK(rd(ProgType::CgroupSockAddr, offsetof(bpf_sock_addr, msg_src_ip4), 4, "sendmsg4").ok);
    CHECK_FALSE(rd(ProgType::CgroupSockAddr, offsetof(bpf_sock_addr, msg_src_ip4), 4, "connect4").ok);
    CHECK(wr(ProgType::CgroupSockAddr, offsetof(bpf_sock_addr, user_port), 4, "bind4").ok);
    CHECK_FALSE(wr(ProgType::CgroupSockAddr, offsetof(bpf_sock_addr, family), 4, "bind4").ok);
    auto sk = rd(ProgType::CgroupSockAddr, offsetof(bpf_sock_addr, sk), 8, "bind4");
    REQUIRE(sk.ok);
    CHECK(sk.load == CtxLoad::Sock);
}

TEST_CASE("ctx access: sock_ops, sk_msg, sk_lookup, cgroup sysctl/sockopt/dev", "[verifier][ctx]") {
    CHECK(rd(ProgType::SockOps, offsetof(bpf_sock_ops, sk), 8).load == CtxLoad::SockOrNull);
    CHECK(rd(ProgType::SockOps, offsetof(bpf_sock_ops, skb_data), 8).load == CtxLoad::PacketData);
    CHECK(rd(ProgType::SockOps, offsetof(bpf_sock_ops, skb_data_end), 8).load == CtxLoad::PacketEnd);
    CHECK(rd(ProgType::SockOps, offsetof(bpf_sock_ops, bytes_acked), 8).ok);
    CHECK_FALSE(rd(ProgType::SockOps, offsetof(bpf_sock_ops, bytes_acked), 4).ok);
    CHECK(rd(ProgType::SockOps, offsetof(bpf_sock_ops, skb_tcp_flags), 1).ok);
    CHECK_FALSE(rd(ProgType::SockOps, offsetof(bpf_sock_ops, op), 1).ok);
    CHECK(rd(ProgType::SockOps, 216, 8).ok);   // skb_hwtstamp (6.2+, past this header's struct)
    CHECK(ctx_size(ProgType::SockOps, "") == 224);
    CHECK(wr(ProgType::SockOps, offsetof(bpf_sock_ops, reply), 4).ok);
    CHECK(wr(ProgType::SockOps, offsetof(bpf_sock_ops, sk_txhash), 4).ok);
    CHECK(wr(ProgType::SockOps, offsetof(bpf_sock_ops, op), 4).message == invalid(0, 4));

    CHECK(rd(ProgType::SkMsg, offsetof(sk_msg_md, data), 8).load == CtxLoad::PacketData);
    CHECK(rd(ProgType::SkMsg, offsetof(sk_msg_md, data_end), 8).load == CtxLoad::PacketEnd);
    CHECK(rd(ProgType::SkMsg, offsetof(sk_msg_md, sk), 8).load == CtxLoad::Sock);
    CHECK_FALSE(rd(ProgType::SkMsg, offsetof(sk_msg_md, family), 2).ok);
    CHECK_FALSE(wr(ProgType::SkMsg, offsetof(sk_msg_md, size), 4).ok);

    CHECK(rd(ProgType::SkLookup, offsetof(bpf_sk_lookup, sk), 8).load == CtxLoad::SockOrNull);
    CHECK(rd(ProgType::SkLookup, offsetof(bpf_sk_lookup, remote_port), 2).ok);
    CHECK(rd(ProgType::SkLookup, offsetof(bpf_sk_lookup, remote_port), 4).ok);
    CHECK(rd(ProgType::SkLookup, offsetof(bpf_sk_lookup, remote_port) + 2, 2).ok);   // the zero padding
    CHECK_FALSE(rd(ProgType::SkLookup, offsetof(bpf_sk_lookup, remote_port) + 2, 4).ok);
    CHECK_FALSE(wr(ProgType::SkLookup, offsetof(bpf_sk_lookup, family), 4).ok);

    CHECK(rd(ProgType::CgroupDevice, offsetof(bpf_cgroup_dev_ctx, access_type), 2).ok);
    CHECK_FALSE(rd(ProgType::CgroupDevice, offsetof(bpf_cgroup_dev_ctx, major), 2).ok);
    CHECK_FALSE(rd(ProgType::CgroupDevice, 8, 8).ok);
    CHECK(wr(ProgType::CgroupSysctl, offsetof(bpf_sysctl, file_pos), 4).ok);
    CHECK_FALSE(wr(ProgType::CgroupSysctl, offsetof(bpf_sysctl, write), 4).ok);
    CHECK(rd(ProgType::CgroupSockopt, offsetof(bpf_sockopt, optval), 8).load == CtxLoad::PacketData);
    CHECK(rd(ProgType::CgroupSockopt, offsetof(bpf_sockopt, optval_end), 8).load == CtxLoad::PacketEnd);
    CHECK(rd(ProgType::CgroupSockopt, offsetof(bpf_sockopt, sk), 8).load == CtxLoad::Sock);
    CHECK(rd(ProgType::CgroupSockopt, offsetof(bpf_sockopt, retval), 4, "cgroup/getsockopt").ok);
    CHECK_FALSE(rd(ProgType::CgroupSockopt, offsetof(bpf_sockopt, retval), 4, "cgroup/setsockopt").ok);
    CHECK(wr(ProgType::CgroupSockopt, offsetof(bpf_sockopt, optname), 4, "setsockopt").ok);
    CHECK_FALSE(wr(ProgType::CgroupSockopt, offsetof(bpf_sockopt, optname), 4, "getsockopt").ok);
}

TEST_CASE("ctx access: kprobe, tracepoint, raw_tracepoint, perf_event", "[verifier][ctx]") {
    CHECK(rd(ProgType::Kprobe, 160, 8).ok);
    CHECK(rd(ProgType::Kprobe, 161, 1).ok);
    CHECK(rd(ProgType::Kprobe, 168, 1).message == invalid(168, 1));
    CHECK_FALSE(rd(ProgType::Kprobe, 4, 8).ok);
    CHECK(wr(ProgType::Kprobe, 0, 8).message == invalid(0, 8));
    CHECK(ctx_size(ProgType::Kprobe, "") == 168);

    CHECK(rd(ProgType::Tracepoint, 0, 8).message == invalid(0, 8));
    CHECK_FALSE(rd(ProgType::Tracepoint, 4, 4).ok);
    CHECK(rd(ProgType::Tracepoint, 8, 8).ok);
    CHECK(rd(ProgType::Tracepoint, -8, 8).ok);   // as the kernel: its lower bound compares unsigned
    CHECK_FALSE(rd(ProgType::Tracepoint, -7, 2).ok);
    CHECK(rd(ProgType::Tracepoint, 8191, 1).ok);
    CHECK_FALSE(rd(ProgType::Tracepoint, 8192, 1).ok);
    CHECK_FALSE(wr(ProgType::Tracepoint, 16, 4).ok);

    CHECK(rd(ProgType::RawTracepoint, 88, 8).ok);
    CHECK(rd(ProgType::RawTracepoint, 4, 4).ok);
    CHECK(rd(ProgType::RawTracepoint, 96, 8).message == invalid(96, 8));
    CHECK_FALSE(wr(ProgType::RawTracepoint, 0, 8).ok);
    CHECK(rd(ProgType::RawTracepointWritable, 0, 8).ok);
    CHECK_FALSE(rd(ProgType::RawTracepointWritable, 0, 4).ok);

    const int64_t sp = offsetof(bpf_perf_event_data, sample_period);
    CHECK(rd(ProgType::PerfEvent, sp, 8).ok);
    CHECK(rd(ProgType::PerfEvent, sp + 4, 4).ok);
    CHECK(rd(ProgType::PerfEvent, sp + 7, 1).ok);
    CHECK(rd(ProgType::PerfEvent, 0, 8).ok);
    CHECK_FALSE(rd(ProgType::PerfEvent, 0, 4).ok);   // regs: whole longs
    CHECK_FALSE(rd(ProgType::PerfEvent, 184, 8).ok);

    CtxAccessQuery q;
    q.type = ProgType::Kprobe;
    q.off = 0;
    q.size = 8;
    q.atomic = true;
    q.write = true;
    CHECK_FALSE(ctx_access(q).ok);
    q.type = ProgType::SchedCls;
    q.off = offsetof(__sk_buff, mark);
    q.size = 4;
    CHECK_FALSE(ctx_access(q).ok);
}

TEST_CASE("ctx access: tracing arguments from the kernel BTF", "[verifier][ctx]") {
    // Without BTF: 12 u64 scalars, 8-byte aligned.
    auto a = rd(ProgType::Tracing, 0, 8, "fentry/vfs_read");
    CHECK((a.ok && a.load == CtxLoad::Scalar));
    auto m = rd(ProgType::Tracing, 4, 4, "fentry/vfs_read");
    CHECK_FALSE(m.ok);
    CHECK(m.message == "func 'vfs_read' offset 4 is not multiple of 8\n" + invalid(4, 4));
    CHECK_FALSE(rd(ProgType::Tracing, 96, 8, "fentry/vfs_read").ok);
    CHECK_FALSE(wr(ProgType::Tracing, 0, 8, "fentry/vfs_read").ok);

    const std::filesystem::path vmlinux = "/sys/kernel/btf/vmlinux";
    if (!std::filesystem::exists(vmlinux)) {
        WARN("no /sys/kernel/btf/vmlinux: typed tracing arguments not checked");
        return;
    }
    auto btf = bpfsim::btf::Btf::load_file(vmlinux);
    REQUIRE(btf);
    const bpfsim::btf::Btf* b = &*btf;
    const auto file = b->find("file", bpfsim::btf::Kind::Struct);
    const auto task = b->find("task_struct", bpfsim::btf::Kind::Struct);
    REQUIRE(file);
    REQUIRE(task);
    // ssize_t vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
    auto f = rd(ProgType::Tracing, 0, 8, "fentry/vfs_read", b);
    REQUIRE(f.ok);
    CHECK(f.load == CtxLoad::BtfId);
    CHECK(f.btf_id == *file);
    CHECK(rd(ProgType::Tracing, 16, 8, "fentry/vfs_read", b).load == CtxLoad::Scalar);   // count
    CHECK(rd(ProgType::Tracing, 8, 8, "fentry/vfs_read", b).load == CtxLoad::Scalar);    // char *: scalar
    auto ret = rd(ProgType::Tracing, 32, 8, "fentry/vfs_read", b);
    CHECK_FALSE(ret.ok);
    CHECK(ret.message == "func 'vfs_read' doesn't have 5-th argument\n" + invalid(32, 8));
    auto fx = rd(ProgType::Tracing, 32, 8, "fexit/vfs_read", b);
    CHECK((fx.ok && fx.load == CtxLoad::Scalar));
    CHECK_FALSE(rd(ProgType::Tracing, 40, 8, "fexit/vfs_read", b).ok);
    // tp_btf/sched_switch: (void *, bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    auto prev = rd(ProgType::Tracing, 8, 8, "tp_btf/sched_switch", b);
    REQUIRE(prev.ok);
    CHECK(prev.load == CtxLoad::BtfId);
    CHECK(prev.btf_id == *task);
    CHECK(rd(ProgType::Tracing, 0, 8, "tp_btf/sched_switch", b).load == CtxLoad::Scalar);
}

// ───────────────────────── differential: the running kernel ─────────────────────────

namespace {

uint8_t size_code(uint32_t size) {
    switch (size) {
    case 1: return BPF_B;
    case 2: return BPF_H;
    case 4: return BPF_W;
    default: return BPF_DW;
    }
}

// r0 = *(uN *)(r1 + off) or *(uN *)(r1 + off) = r2; r0 = 1; exit.
std::vector<bpf_insn> access_prog(int16_t off, uint32_t size, bool write) {
    std::vector<bpf_insn> p;
    if (write) {
        p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0));
        p.push_back(insn(BPF_STX | BPF_MEM | size_code(size), 1, 2, off, 0));
    } else {
        p.push_back(insn(BPF_LDX | BPF_MEM | size_code(size), 0, 1, off, 0));
    }
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
    p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    return p;
}

std::vector<KernelCase> kernel_cases() {
    // Attach types newer than this machine's 6.1 uapi header, by value.
    constexpr uint32_t kNetfilter = 45, kUnixConnect = 49, kUnixSendmsg = 50, kUnixRecvmsg = 51,
                       kUnixGetpeername = 52, kUnixGetsockname = 53;
    std::vector<KernelCase> v = {
        {"socket_filter", ProgType::SocketFilter, BPF_PROG_TYPE_SOCKET_FILTER, ""},
        {"sched_cls", ProgType::SchedCls, BPF_PROG_TYPE_SCHED_CLS, ""},
        {"sched_act", ProgType::SchedAct, BPF_PROG_TYPE_SCHED_ACT, ""},
        {"xdp", ProgType::Xdp, BPF_PROG_TYPE_XDP, "", BPF_XDP},
        {"xdp/devmap", ProgType::Xdp, BPF_PROG_TYPE_XDP, "devmap", BPF_XDP_DEVMAP},
        {"cgroup_skb", ProgType::CgroupSkb, BPF_PROG_TYPE_CGROUP_SKB, "ingress", BPF_CGROUP_INET_INGRESS},
        {"sk_skb", ProgType::SkSkb, BPF_PROG_TYPE_SK_SKB, "stream_verdict", BPF_SK_SKB_STREAM_VERDICT},
        {"lwt_in", ProgType::LwtIn, BPF_PROG_TYPE_LWT_IN, ""},
        {"lwt_out", ProgType::LwtOut, BPF_PROG_TYPE_LWT_OUT, ""},
        {"lwt_xmit", ProgType::LwtXmit, BPF_PROG_TYPE_LWT_XMIT, ""},
        {"lwt_seg6local", ProgType::LwtSeg6local, BPF_PROG_TYPE_LWT_SEG6LOCAL, ""},
        {"flow_dissector", ProgType::FlowDissector, BPF_PROG_TYPE_FLOW_DISSECTOR, "", BPF_FLOW_DISSECTOR},
        {"cgroup/sock_create", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "sock_create", BPF_CGROUP_INET_SOCK_CREATE},
        {"cgroup/sock_release", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "sock_release", BPF_CGROUP_INET_SOCK_RELEASE},
        {"cgroup/post_bind4", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "post_bind4", BPF_CGROUP_INET4_POST_BIND},
        {"cgroup/post_bind6", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "post_bind6", BPF_CGROUP_INET6_POST_BIND},
        {"sock_ops", ProgType::SockOps, BPF_PROG_TYPE_SOCK_OPS, "", BPF_CGROUP_SOCK_OPS},
        {"sk_msg", ProgType::SkMsg, BPF_PROG_TYPE_SK_MSG, "", BPF_SK_MSG_VERDICT},
        {"sk_lookup", ProgType::SkLookup, BPF_PROG_TYPE_SK_LOOKUP, "", BPF_SK_LOOKUP},
        {"sk_reuseport", ProgType::SkReuseport, BPF_PROG_TYPE_SK_REUSEPORT, "", BPF_SK_REUSEPORT_SELECT},
        {"cgroup/dev", ProgType::CgroupDevice, BPF_PROG_TYPE_CGROUP_DEVICE, "", BPF_CGROUP_DEVICE},
        {"cgroup/sysctl", ProgType::CgroupSysctl, BPF_PROG_TYPE_CGROUP_SYSCTL, "", BPF_CGROUP_SYSCTL},
        {"cgroup/getsockopt", ProgType::CgroupSockopt, BPF_PROG_TYPE_CGROUP_SOCKOPT, "getsockopt", BPF_CGROUP_GETSOCKOPT},
        {"cgroup/setsockopt", ProgType::CgroupSockopt, BPF_PROG_TYPE_CGROUP_SOCKOPT, "setsockopt", BPF_CGROUP_SETSOCKOPT},
        {"kprobe", ProgType::Kprobe, BPF_PROG_TYPE_KPROBE, ""},
        {"tracepoint", ProgType::Tracepoint, BPF_PROG_TYPE_TRACEPOINT, ""},
        {"raw_tracepoint", ProgType::RawTracepoint, BPF_PROG_TYPE_RAW_TRACEPOINT, ""},
        {"raw_tracepoint.w", ProgType::RawTracepointWritable, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, ""},
        {"perf_event", ProgType::PerfEvent, BPF_PROG_TYPE_PERF_EVENT, ""},
        {"lirc_mode2", ProgType::LircMode2, BPF_PROG_TYPE_LIRC_MODE2, "", BPF_LIRC_MODE2},
        {"netfilter", ProgType::Netfilter, 32, "", kNetfilter},
    };
    const std::pair<const char*, uint32_t> addr[] = {
        {"bind4", BPF_CGROUP_INET4_BIND}, {"bind6", BPF_CGROUP_INET6_BIND},
        {"connect4", BPF_CGROUP_INET4_CONNECT}, {"connect6", BPF_CGROUP_INET6_CONNECT},
        {"getpeername4", BPF_CGROUP_INET4_GETPEERNAME}, {"getpeername6", BPF_CGROUP_INET6_GETPEERNAME},
        {"getsockname4", BPF_CGROUP_INET4_GETSOCKNAME}, {"getsockname6", BPF_CGROUP_INET6_GETSOCKNAME},
        {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG}, {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
        {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG}, {"recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
        {"connect_unix", kUnixConnect}, {"sendmsg_unix", kUnixSendmsg}, {"recvmsg_unix", kUnixRecvmsg},
        {"getpeername_unix", kUnixGetpeername}, {"getsockname_unix", kUnixGetsockname},
    };
    for (const auto& [n, e] : addr)
        v.push_back({std::string("cgroup/") + n, ProgType::CgroupSockAddr, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, n, e});
    return v;
}

}  // namespace

TEST_CASE("ctx access agrees with the running kernel", "[verifier][ctx][kernel]") {
    if (!bpf_available()) return;
    const std::vector<bpf_insn>& trivial = trivial_prog();
    std::size_t total = 0, agree = 0, msg_differs = 0;
    std::vector<std::string> mismatches;
    for (const auto& c : kernel_cases()) {
        if (auto r = kernel_load(c, trivial); !r.ok) {
            std::cout << fmt::format("  {:<22} not loadable here ({}), skipped\n", c.name, std::strerror(r.err));
            continue;
        }
        const int64_t n = ctx_size(c.type, c.attach);
        std::vector<int64_t> offs;
        if (c.type == ProgType::Tracepoint) {   // 8 KiB: its start and its end
            for (int64_t o = -8; o <= 264; ++o) offs.push_back(o);
            for (int64_t o = n - 16; o <= n + 8; ++o) offs.push_back(o);
        } else {
            for (int64_t o = -8; o <= n + 8; ++o) offs.push_back(o);
        }
        std::size_t t_total = 0, t_agree = 0, t_ok = 0, t_other = 0;
        for (const int64_t off : offs)
            for (const uint32_t size : {1u, 2u, 4u, 8u})
                for (const bool write : {false, true}) {
                    const auto k = kernel_load(c, access_prog(static_cast<int16_t>(off), size, write));
                    CtxAccessQuery q;
                    q.type = c.type;
                    q.attach = c.attach;
                    q.off = off;
                    q.size = size;
                    q.write = write;
                    const auto m = ctx_access(q);
                    // A refusal for another reason than the access itself (the verifier's
                    // misconfiguration checks in convert_ctx_accesses) counts as a refusal.
                    const bool k_ctx_refusal = k.log.find(invalid(off, size)) != std::string::npos;
                    if (!k.ok && !k_ctx_refusal) ++t_other;
                    // Both refuse: the model's message is the kernel's.
                    if (!k.ok && !m.ok && k.log.find(m.message) == std::string::npos) {
                        ++msg_differs;
                        if (mismatches.size() < 200)
                            mismatches.push_back(fmt::format("{} off={} size={}: message '{}' not in the kernel's log",
                                                             c.name, off, size, m.message));
                    }
                    ++t_total;
                    t_ok += k.ok;
                    if (k.ok == m.ok) {
                        ++t_agree;
                    } else if (mismatches.size() < 200) {
                        // The kernel's reason: its log's last line before "processed ...".
                        std::string why;
                        std::size_t pos = 0;
                        while (pos < k.log.size()) {
                            std::size_t e = k.log.find('\n', pos);
                            if (e == std::string::npos) e = k.log.size();
                            const std::string line = k.log.substr(pos, e - pos);
                            if (line.rfind("processed ", 0) == 0) break;
                            if (!line.empty()) why = line;
                            pos = e + 1;
                        }
                        mismatches.push_back(fmt::format("{} {} off={} size={}: kernel {}, model {}{}", c.name,
                                                         write ? "write" : "read", off, size,
                                                         k.ok ? "accepts" : "refuses", m.ok ? "accepts" : "refuses",
                                                         k.ok ? "" : " [" + why + "]"));
                    }
                }
        std::cout << fmt::format("  {:<22} {:>5}/{:<5} agree ({} accepted by the kernel, {} refused for other reasons)\n",
                                 c.name, t_agree, t_total, t_ok, t_other);
        total += t_total;
        agree += t_agree;
    }
    std::cout << fmt::format("  ctx access vs kernel: {}/{} agree\n", agree, total);
    for (const auto& s : mismatches) std::cout << "  MISMATCH " << s << "\n";
    std::cout << fmt::format("  refusal messages differing from the kernel's: {}\n", msg_differs);
    CHECK(agree == total);
    CHECK(msg_differs == 0);
}
