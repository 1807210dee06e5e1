// verifier::helper_access / kfunc_access: the per-program-type helper sets of Linux 6.18, case by
// case and differentially against the running kernel's BPF_PROG_LOAD.
#include "verifier/helper_access.hpp"

#include "kernel_load.hpp"

#include "vm/vm.hpp"

#include <catch2/catch.hpp>

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using bpfsim::harness::ProgType;
using bpfsim::verifier::helper_access;
using bpfsim::verifier::HelperAccessContext;
using bpfsim::verifier::kfunc_access;
using namespace bpfsim::testing;

namespace {

std::string cannot(std::string_view name, int id) {
    return fmt::format("program of this type cannot use helper bpf_{}#{}", name, id);
}

}  // namespace

TEST_CASE("helper access: per-type refusals with the kernel's messages", "[verifier][helpers]") {
    CHECK(helper_access(ProgType::SchedCls, "tc", 13, {}).allowed);   // clone_redirect
    auto c = helper_access(ProgType::SocketFilter, "socket", 13, {});
    CHECK_FALSE(c.allowed);
    CHECK(c.message == cannot("clone_redirect", 13));
    CHECK(helper_access(ProgType::Xdp, "xdp", 44, {}).allowed);   // xdp_adjust_head
    // xdp_adjust_meta: refused by the reference 6.18 kernel for xdp too (measured).
    CHECK(helper_access(ProgType::Xdp, "xdp", 54, {}).message == cannot("xdp_adjust_meta", 54));
    CHECK(helper_access(ProgType::SchedCls, "tc", 54, {}).message == cannot("xdp_adjust_meta", 54));
    CHECK(helper_access(ProgType::CgroupSkb, "cgroup_skb/ingress", 18, {}).message == cannot("skb_vlan_push", 18));
    CHECK(helper_access(ProgType::SkSkb, "sk_skb", 9, {}).allowed);   // skb_store_bytes
    CHECK(helper_access(ProgType::CgroupSkb, "cgroup_skb/egress", 9, {}).message == cannot("skb_store_bytes", 9));
    CHECK(helper_access(ProgType::SockOps, "sockops", 53, {}).allowed);   // sock_map_update
    CHECK(helper_access(ProgType::SkMsg, "sk_msg", 53, {}).message == cannot("sock_map_update", 53));
    // Tracing: override_return and probe_write_user are refused by the reference kernel's config.
    CHECK(helper_access(ProgType::Kprobe, "kprobe/x", 58, {}).message == cannot("override_return", 58));
    CHECK(helper_access(ProgType::Kprobe, "kprobe/x", 36, {}).message == cannot("probe_write_user", 36));
    HelperAccessContext open;
    open.kprobe_override = true;
    open.probe_write_user = true;
    CHECK(helper_access(ProgType::Kprobe, "kprobe/x", 58, open).allowed);
    CHECK(helper_access(ProgType::Kprobe, "kprobe/x", 36, open).allowed);
    CHECK(helper_access(ProgType::Tracepoint, "tp/a/b", 36, open).allowed);
    CHECK(helper_access(ProgType::Tracepoint, "tp/a/b", 58, open).message == cannot("override_return", 58));
    CHECK(helper_access(ProgType::Kprobe, "kprobe/x", 4, {}).allowed);   // probe_read
    CHECK(helper_access(ProgType::SocketFilter, "socket", 4, {}).message == cannot("probe_read", 4));
    // The base set reaches every type.
    for (ProgType t : {ProgType::SocketFilter, ProgType::Xdp, ProgType::Kprobe, ProgType::CgroupSysctl,
                       ProgType::Netfilter, ProgType::SkReuseport})
        CHECK(helper_access(t, "", 1, {}).allowed);
    // Unknown ids.
    const int32_t past = bpfsim::vm::kernel_helper_max_id() + 1;
    CHECK(helper_access(ProgType::SocketFilter, "", past, {}).message == fmt::format("invalid func unknown#{}", past));
    CHECK(helper_access(ProgType::SocketFilter, "", -1, {}).message == "invalid func unknown#-1");
    CHECK(helper_access(ProgType::SocketFilter, "", 0, {}).message == cannot("unspec", 0));
}

TEST_CASE("helper access: expected attach type and GPL", "[verifier][helpers]") {
    // bpf_bind: cgroup/connect4 and connect6 only.
    CHECK(helper_access(ProgType::CgroupSockAddr, "cgroup/connect4", 64, {}).allowed);
    CHECK(helper_access(ProgType::CgroupSockAddr, "connect6", 64, {}).allowed);
    CHECK(helper_access(ProgType::CgroupSockAddr, "cgroup/bind4", 64, {}).message == cannot("bind", 64));
    CHECK(helper_access(ProgType::CgroupSockAddr, "cgroup/connect_unix", 64, {}).message == cannot("bind", 64));
    // get_retval: not for recvmsg/getpeername/getsockname hooks.
    CHECK(helper_access(ProgType::CgroupSockAddr, "cgroup/sendmsg4", 186, {}).allowed);
    CHECK(helper_access(ProgType::CgroupSockAddr, "cgroup/recvmsg6", 186, {}).message == cannot("get_retval", 186));
    CHECK_FALSE(helper_access(ProgType::CgroupSockAddr, "cgroup/getsockname_unix", 187, {}).allowed);
    // cgroup_sockopt: bpf_setsockopt only from setsockopt hooks.
    CHECK(helper_access(ProgType::CgroupSockopt, "cgroup/setsockopt", 49, {}).allowed);
    CHECK(helper_access(ProgType::CgroupSockopt, "cgroup/getsockopt", 49, {}).message == cannot("setsockopt", 49));
    // Tracing: get_func_ret for fexit, seq_printf for iterators.
    CHECK(helper_access(ProgType::Tracing, "fexit/vfs_read", 184, {}).allowed);
    CHECK_FALSE(helper_access(ProgType::Tracing, "fentry/vfs_read", 184, {}).allowed);
    CHECK(helper_access(ProgType::Tracing, "iter/task", 126, {}).allowed);
    CHECK_FALSE(helper_access(ProgType::Tracing, "fentry/vfs_read", 126, {}).allowed);
    // GPL: checked after the type's set.
    HelperAccessContext mit;
    mit.gpl = false;
    CHECK(helper_access(ProgType::SocketFilter, "", 6, mit).message ==
          "cannot call GPL-restricted function from non-GPL compatible program");
    CHECK(helper_access(ProgType::SocketFilter, "", 1, mit).allowed);
    CHECK(helper_access(ProgType::SocketFilter, "", 13, mit).message == cannot("clone_redirect", 13));
    // gpl_only per proto: kprobe's get_func_ip is, kprobe.multi's is not; perf_event's get_stackid is not.
    CHECK_FALSE(helper_access(ProgType::Kprobe, "kprobe/x", 173, mit).allowed);
    CHECK(helper_access(ProgType::Kprobe, "kprobe.multi/x", 173, mit).allowed);
    CHECK(helper_access(ProgType::PerfEvent, "perf_event", 27, mit).allowed);
    CHECK_FALSE(helper_access(ProgType::Kprobe, "kprobe/x", 27, mit).allowed);
    CHECK(helper_access(ProgType::SchedCls, "", 69, mit).message ==
          "cannot call GPL-restricted function from non-GPL compatible program");   // fib_lookup
}

TEST_CASE("kfunc access: plain kernel functions are not kfuncs", "[verifier][helpers]") {
    auto none = kfunc_access(ProgType::Kprobe, "", "memset", nullptr);
    CHECK_FALSE(none.allowed);
    CHECK(none.message == "calling kernel function memset is not allowed");
    const std::filesystem::path vmlinux = "/sys/kernel/btf/vmlinux";
    if (!std::filesystem::exists(vmlinux)) {
        WARN("no /sys/kernel/btf/vmlinux: kfunc BTF lookup not checked");
        return;
    }
    auto btf = bpfsim::btf::Btf::load_file(vmlinux);
    REQUIRE(btf);
    const bpfsim::btf::Btf* b = &*btf;
    auto m = kfunc_access(ProgType::Kprobe, "kprobe/x", "memset", b);
    CHECK_FALSE(m.allowed);
    CHECK(m.in_btf);
    CHECK(m.message == "calling kernel function memset is not allowed");
    CHECK(kfunc_access(ProgType::SocketFilter, "", "bpf_map_lookup_elem", b).message ==
          "calling kernel function bpf_map_lookup_elem is not allowed");
    auto gone = kfunc_access(ProgType::SocketFilter, "", "no_such_function_xyz", b);
    CHECK_FALSE(gone.in_btf);
    CHECK(gone.message == "extern (func ksym) 'no_such_function_xyz': not found in kernel or module BTFs");
    if (b->find_all("bpf_kfunc", bpfsim::btf::Kind::DeclTag).empty()) {
        WARN("the kernel BTF has no bpf_kfunc decl tags: kfunc acceptance not checked");
        return;
    }
    CHECK(kfunc_access(ProgType::Kprobe, "", "bpf_rcu_read_lock", b).allowed);
    CHECK(kfunc_access(ProgType::SchedCls, "", "bpf_obj_new_impl", b).allowed);
    CHECK(kfunc_access(ProgType::SchedCls, "", "bpf_obj_new_impl", b, false).message ==
          "cannot call kernel function from non-GPL compatible program");
}

// ───────────────────────── differential: the running kernel ─────────────────────────

namespace {

// r2..r5 = 0 (r1 keeps the context); call; r0 = 1 (every hook accepts 1); exit.
std::vector<bpf_insn> call_prog(int32_t imm, uint8_t src = 0) {
    std::vector<bpf_insn> p;
    for (uint8_t r = 2; r <= 5; ++r) p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, r, 0, 0, 0));
    p.push_back(insn(BPF_JMP | BPF_CALL, 0, src, 0, imm));
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
    p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    return p;
}

// The kernel's func-proto refusal line, or "" when the load got past that check.
std::string proto_refusal(const Loaded& k) {
    if (k.ok) return {};
    for (const char* key : {"program of this type cannot use helper", "invalid func unknown#", "unknown func",
                            "cannot call GPL-restricted function"}) {
        auto p = k.log.find(key);
        if (p == std::string::npos) continue;
        auto e = k.log.find('\n', p);
        return k.log.substr(p, e == std::string::npos ? std::string::npos : e - p);
    }
    return {};
}

std::vector<KernelCase> kernel_cases() {
    constexpr uint32_t kNetfilter = 45, kUnixConnect = 49, kUnixSendmsg = 50, kUnixRecvmsg = 51,
                       kUnixGetpeername = 52, kUnixGetsockname = 53;
    std::vector<KernelCase> v = {
        {"socket_filter", ProgType::SocketFilter, BPF_PROG_TYPE_SOCKET_FILTER, "socket"},
        {"sched_cls", ProgType::SchedCls, BPF_PROG_TYPE_SCHED_CLS, "tc"},
        {"sched_act", ProgType::SchedAct, BPF_PROG_TYPE_SCHED_ACT, "action"},
        {"xdp", ProgType::Xdp, BPF_PROG_TYPE_XDP, "xdp", BPF_XDP},
        {"xdp/devmap", ProgType::Xdp, BPF_PROG_TYPE_XDP, "xdp/devmap", BPF_XDP_DEVMAP},
        {"xdp/cpumap", ProgType::Xdp, BPF_PROG_TYPE_XDP, "xdp/cpumap", BPF_XDP_CPUMAP},
        {"cgroup_skb/ingress", ProgType::CgroupSkb, BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb/ingress", BPF_CGROUP_INET_INGRESS},
        {"cgroup_skb/egress", ProgType::CgroupSkb, BPF_PROG_TYPE_CGROUP_SKB, "cgroup_skb/egress", BPF_CGROUP_INET_EGRESS},
        {"sk_skb/stream_parser", ProgType::SkSkb, BPF_PROG_TYPE_SK_SKB, "sk_skb/stream_parser", BPF_SK_SKB_STREAM_PARSER},
        {"sk_skb/stream_verdict", ProgType::SkSkb, BPF_PROG_TYPE_SK_SKB, "sk_skb/stream_verdict", BPF_SK_SKB_STREAM_VERDICT},
        {"sk_skb/verdict", ProgType::SkSkb, BPF_PROG_TYPE_SK_SKB, "sk_skb/verdict", BPF_SK_SKB_VERDICT},
        {"sk_msg", ProgType::SkMsg, BPF_PROG_TYPE_SK_MSG, "sk_msg", BPF_SK_MSG_VERDICT},
        {"lwt_in", ProgType::LwtIn, BPF_PROG_TYPE_LWT_IN, "lwt_in"},
        {"lwt_out", ProgType::LwtOut, BPF_PROG_TYPE_LWT_OUT, "lwt_out"},
        {"lwt_xmit", ProgType::LwtXmit, BPF_PROG_TYPE_LWT_XMIT, "lwt_xmit"},
        {"lwt_seg6local", ProgType::LwtSeg6local, BPF_PROG_TYPE_LWT_SEG6LOCAL, "lwt_seg6local"},
        {"flow_dissector", ProgType::FlowDissector, BPF_PROG_TYPE_FLOW_DISSECTOR, "flow_dissector", BPF_FLOW_DISSECTOR},
        {"cgroup/sock_create", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup/sock_create", BPF_CGROUP_INET_SOCK_CREATE},
        {"cgroup/sock_release", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup/sock_release", BPF_CGROUP_INET_SOCK_RELEASE},
        {"cgroup/post_bind4", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup/post_bind4", BPF_CGROUP_INET4_POST_BIND},
        {"cgroup/post_bind6", ProgType::CgroupSock, BPF_PROG_TYPE_CGROUP_SOCK, "cgroup/post_bind6", BPF_CGROUP_INET6_POST_BIND},
        {"sockops", ProgType::SockOps, BPF_PROG_TYPE_SOCK_OPS, "sockops", BPF_CGROUP_SOCK_OPS},
        {"sk_lookup", ProgType::SkLookup, BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup", BPF_SK_LOOKUP},
        {"sk_reuseport", ProgType::SkReuseport, BPF_PROG_TYPE_SK_REUSEPORT, "sk_reuseport", BPF_SK_REUSEPORT_SELECT},
        {"sk_reuseport/migrate", ProgType::SkReuseport, BPF_PROG_TYPE_SK_REUSEPORT, "sk_reuseport/migrate", BPF_SK_REUSEPORT_SELECT_OR_MIGRATE},
        {"cgroup/dev", ProgType::CgroupDevice, BPF_PROG_TYPE_CGROUP_DEVICE, "cgroup/dev", BPF_CGROUP_DEVICE},
        {"cgroup/sysctl", ProgType::CgroupSysctl, BPF_PROG_TYPE_CGROUP_SYSCTL, "cgroup/sysctl", BPF_CGROUP_SYSCTL},
        {"cgroup/getsockopt", ProgType::CgroupSockopt, BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup/getsockopt", BPF_CGROUP_GETSOCKOPT},
        {"cgroup/setsockopt", ProgType::CgroupSockopt, BPF_PROG_TYPE_CGROUP_SOCKOPT, "cgroup/setsockopt", BPF_CGROUP_SETSOCKOPT},
        {"kprobe", ProgType::Kprobe, BPF_PROG_TYPE_KPROBE, "kprobe/x"},
        {"kprobe.multi", ProgType::Kprobe, BPF_PROG_TYPE_KPROBE, "kprobe.multi/x", BPF_TRACE_KPROBE_MULTI},
        {"tracepoint", ProgType::Tracepoint, BPF_PROG_TYPE_TRACEPOINT, "tp/a/b"},
        {"raw_tracepoint", ProgType::RawTracepoint, BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tp/x"},
        {"raw_tracepoint.w", ProgType::RawTracepointWritable, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, "raw_tp.w/x"},
        {"perf_event", ProgType::PerfEvent, BPF_PROG_TYPE_PERF_EVENT, "perf_event"},
        {"lirc_mode2", ProgType::LircMode2, BPF_PROG_TYPE_LIRC_MODE2, "lirc_mode2", BPF_LIRC_MODE2},
        {"syscall", ProgType::Syscall, BPF_PROG_TYPE_SYSCALL, "syscall", 0, BPF_F_SLEEPABLE},
        {"netfilter", ProgType::Netfilter, 32, "netfilter", kNetfilter},
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
        v.push_back({std::string("cgroup/") + n, ProgType::CgroupSockAddr, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                     std::string("cgroup/") + n, e});
    return v;
}

}  // namespace

TEST_CASE("helper access agrees with the running kernel", "[verifier][helpers][kernel]") {
    if (!bpf_available()) return;
    // A few ids past the last one the model knows: the kernel's "invalid func unknown#".
    const int32_t last = bpfsim::vm::kernel_helper_max_id() + 3;
    std::size_t total = 0, agree = 0;
    std::vector<std::string> mismatches;
    for (const auto& c : kernel_cases()) {
        if (auto r = kernel_load(c, trivial_prog()); !r.ok) {
            std::cout << fmt::format("  {:<24} not loadable here ({}), skipped\n", c.name, std::strerror(r.err));
            continue;
        }
        std::size_t t_total = 0, t_agree = 0, t_allowed = 0;
        for (const char* license : {"GPL", "MIT"}) {
            HelperAccessContext ctx;
            ctx.gpl = std::string_view(license) == "GPL";
            ctx.sleepable = (c.flags & BPF_F_SLEEPABLE) != 0;
            for (int32_t id = 1; id <= last; ++id) {
                const std::string k = proto_refusal(kernel_load(c, call_prog(id), license));
                const auto m = helper_access(c.type, c.attach, id, ctx);
                const bool same = k.empty() ? m.allowed : (!m.allowed && m.message == k);
                ++t_total;
                t_agree += same;
                t_allowed += k.empty();
                if (!same)
                    mismatches.push_back(fmt::format("{} {} #{} ({}): kernel '{}', model '{}'", c.name, license, id,
                                                     bpfsim::vm::kernel_helper_name(id),
                                                     k.empty() ? "past the proto check" : k,
                                                     m.allowed ? "allowed" : m.message));
            }
        }
        std::cout << fmt::format("  {:<24} {:>4}/{:<4} agree ({} past the proto check)\n", c.name, t_agree, t_total,
                                 t_allowed);
        total += t_total;
        agree += t_agree;
    }
    std::cout << fmt::format("helper access vs kernel: {}/{} agree\n", agree, total);
    for (std::size_t i = 0; i < mismatches.size() && i < 40; ++i) std::cout << "    " << mismatches[i] << "\n";
    CHECK(mismatches.empty());
}

TEST_CASE("kfunc access agrees with the running kernel on plain functions", "[verifier][helpers][kernel]") {
    if (!bpf_available()) return;
    const std::filesystem::path vmlinux = "/sys/kernel/btf/vmlinux";
    if (!std::filesystem::exists(vmlinux)) {
        WARN("no /sys/kernel/btf/vmlinux: kfunc differential skipped");
        return;
    }
    auto btf = bpfsim::btf::Btf::load_file(vmlinux);
    REQUIRE(btf);
    const bpfsim::btf::Btf* b = &*btf;
    // The candidates: plain kernel functions, and every function tagged bpf_kfunc.
    std::vector<std::string> names = {"memset", "memcpy", "bpf_map_lookup_elem", "vfs_read", "kfree"};
    for (const uint32_t tag : b->find_all("bpf_kfunc", bpfsim::btf::Kind::DeclTag))
        names.emplace_back(b->type(b->type(tag).type()).name());
    std::size_t plain_total = 0, plain_agree = 0, tagged_total = 0, tagged_agree = 0;
    std::vector<std::string> mismatches;
    for (const auto& c : kernel_cases()) {
        if (!kernel_load(c, trivial_prog()).ok) continue;
        std::size_t t_refused = 0, t_tagged = 0;
        for (std::size_t i = 0; i < names.size(); ++i) {
            const auto ids = b->find_all(names[i], bpfsim::btf::Kind::Func);
            if (ids.empty()) continue;
            const auto k = kernel_load(c, call_prog(static_cast<int32_t>(ids.front()), BPF_PSEUDO_KFUNC_CALL));
            const std::string refusal = fmt::format("calling kernel function {} is not allowed", names[i]);
            const bool k_refused = !k.ok && k.log.find(refusal) != std::string::npos;
            const auto m = kfunc_access(c.type, c.attach, names[i], b);
            const bool same = k_refused ? (!m.allowed && m.message == refusal) : m.allowed;
            if (i < 5) {
                ++plain_total;
                plain_agree += same;
                if (!same) mismatches.push_back(fmt::format("{} {}: kernel {}", c.name, names[i], k_refused ? "refuses" : "accepts"));
            } else {
                ++tagged_total;
                ++t_tagged;
                tagged_agree += same;
                t_refused += k_refused;
            }
        }
        std::cout << fmt::format("  {:<24} tagged kfuncs the kernel refuses (not registered for the type): {}/{}\n",
                                 c.name, t_refused, t_tagged);
    }
    std::cout << fmt::format("kfunc access vs kernel: plain functions {}/{} agree; tagged kfuncs {}/{} agree "
                             "(the rest: per-type registration, not modelled)\n",
                             plain_agree, plain_total, tagged_agree, tagged_total);
    for (const auto& s : mismatches) std::cout << "    " << s << "\n";
    CHECK(plain_agree == plain_total);
}
