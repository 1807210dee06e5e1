// The per-program-type helper sets of Linux 6.18 (get_func_proto), composed as the kernel
// composes them. See helper_access.hpp.
#include "verifier/helper_access.hpp"

#include "vm/vm.hpp"

#include <fmt/format.h>

#include <bitset>
#include <initializer_list>
#include <string>
#include <unordered_map>

namespace bpfsim::verifier {

namespace {

using harness::ProgType;
using Set = std::bitset<256>;

int32_t helper_id_of(std::string_view name) {
    static const auto index = [] {
        std::unordered_map<std::string_view, int32_t> m;
        for (int32_t i = 0; i <= vm::kernel_helper_max_id(); ++i) m.emplace(vm::kernel_helper_name(i), i);
        return m;
    }();
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
}

Set set_of(std::initializer_list<std::string_view> names) {
    Set s;
    for (auto n : names)
        if (int32_t id = helper_id_of(n); id >= 0 && id < 256) s.set(static_cast<std::size_t>(id));
    return s;
}

// bpf_base_func_proto (kernel/bpf/helpers.c), privileged: bpf_capable and perfmon_capable.
const Set& base() {
    static const Set s = set_of({
        "map_lookup_elem", "map_update_elem", "map_delete_elem", "map_push_elem", "map_pop_elem",
        "map_peek_elem", "map_lookup_percpu_elem", "get_prandom_u32", "get_smp_processor_id",
        "get_numa_node_id", "tail_call", "ktime_get_ns", "ktime_get_boot_ns", "ktime_get_tai_ns",
        "ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard", "ringbuf_query",
        "strncmp", "strtol", "strtoul", "get_current_pid_tgid", "get_current_uid_gid",
        "get_current_comm", "get_current_cgroup_id", "get_current_ancestor_cgroup_id",
        "get_ns_current_pid_tgid", "get_cgroup_classid", "current_task_under_cgroup",
        "task_storage_get", "task_storage_delete", "cgrp_storage_get", "cgrp_storage_delete",
        "jiffies64", "copy_from_user", "copy_from_user_task",
        // bpf_capable
        "spin_lock", "spin_unlock", "trace_printk", "trace_vprintk", "snprintf", "for_each_map_elem",
        "loop", "user_ringbuf_drain", "ringbuf_reserve_dynptr", "ringbuf_submit_dynptr",
        "ringbuf_discard_dynptr", "dynptr_from_mem", "dynptr_read", "dynptr_write", "dynptr_data",
        "timer_init", "timer_set_callback", "timer_start", "timer_cancel", "kptr_xchg",
        "per_cpu_ptr", "this_cpu_ptr",
        // perfmon_capable
        "get_current_task", "get_current_task_btf", "probe_read_user", "probe_read_kernel",
        "probe_read_user_str", "probe_read_kernel_str", "snprintf_btf", "task_pt_regs",
        "get_task_stack", "get_branch_snapshot", "find_vma", "send_signal", "send_signal_thread",
        "perf_event_read", "perf_event_read_value",
    });
    return s;
}

// bpf_sk_base_func_proto (net/core/filter.c).
const Set& sk_base() {
    static const Set s = base() | set_of({"skc_to_tcp6_sock", "skc_to_tcp_sock", "skc_to_tcp_timewait_sock",
                                          "skc_to_tcp_request_sock", "skc_to_udp6_sock", "skc_to_unix_sock",
                                          "skc_to_mptcp_sock", "ktime_get_coarse_ns"});
    return s;
}

// bpf_tracing_func_proto (kernel/trace/bpf_trace.c): base plus the legacy probe reads.
Set tracing_base(const HelperAccessContext& ctx) {
    Set s = base() | set_of({"probe_read", "probe_read_str"});
    if (ctx.probe_write_user) s |= set_of({"probe_write_user"});
    return s;
}

std::string_view last_word(std::string_view s) {
    auto p = s.rfind('/');
    return p == std::string_view::npos ? s : s.substr(p + 1);
}
bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool has(std::string_view s, std::string_view p) { return s.find(p) != std::string_view::npos; }

// tracing_prog_func_proto's own additions (fentry/fexit/fmod_ret/tp_btf/iter and syscall).
Set tracing_prog(const HelperAccessContext& ctx) {
    // raw_tp_prog_func_proto
    Set s = tracing_base(ctx) | set_of({"perf_event_output", "get_stackid", "get_stack"});
    s |= set_of({"skb_output", "xdp_output", "skc_to_tcp6_sock", "skc_to_tcp_sock", "skc_to_tcp_timewait_sock",
                 "skc_to_tcp_request_sock", "skc_to_udp6_sock", "skc_to_unix_sock", "skc_to_mptcp_sock",
                 "sk_storage_get", "sk_storage_delete", "sock_from_file", "get_socket_cookie",
                 "xdp_get_buff_len", "d_path", "get_func_ip"});
    return s;
}

// cgroup_common_func_proto + cgroup_current_func_proto (kernel/bpf/cgroup.c).
Set cgroup_common(bool retval) {
    Set s = set_of({"get_local_storage"});
    if (retval) s |= set_of({"get_retval", "set_retval"});
    return s;
}

Set type_set(ProgType type, std::string_view attach, const HelperAccessContext& ctx) {
    const std::string_view w = last_word(attach);
    switch (type) {
    case ProgType::SocketFilter:   // sk_filter_func_proto
        return sk_base() | set_of({"skb_load_bytes", "skb_load_bytes_relative", "get_socket_cookie",
                                   "get_socket_uid", "get_netns_cookie", "perf_event_output"});
    case ProgType::SchedCls:
    case ProgType::SchedAct:   // tc_cls_act_func_proto
        return sk_base() |
               set_of({"skb_store_bytes", "skb_load_bytes", "skb_load_bytes_relative", "skb_pull_data",
                       "csum_diff", "csum_update", "csum_level", "l3_csum_replace", "l4_csum_replace",
                       "clone_redirect", "get_cgroup_classid", "skb_vlan_push", "skb_vlan_pop",
                       "skb_change_proto", "skb_change_type", "skb_adjust_room", "skb_change_tail",
                       "skb_change_head", "skb_get_tunnel_key", "skb_set_tunnel_key", "skb_get_tunnel_opt",
                       "skb_set_tunnel_opt", "redirect", "redirect_neigh", "redirect_peer", "get_route_realm",
                       "get_hash_recalc", "set_hash_invalid", "set_hash", "perf_event_output",
                       "get_smp_processor_id", "skb_under_cgroup", "get_socket_cookie", "get_socket_uid",
                       "fib_lookup", "check_mtu", "sk_fullsock", "sk_storage_get", "sk_storage_delete",
                       "skb_get_xfrm_state", "skb_cgroup_classid", "skb_cgroup_id", "skb_ancestor_cgroup_id",
                       "sk_lookup_tcp", "sk_lookup_udp", "sk_release", "tcp_sock", "get_listener_sock",
                       "skc_lookup_tcp", "tcp_check_syncookie", "skb_ecn_set_ce", "tcp_gen_syncookie",
                       "sk_assign", "skb_set_tstamp", "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6",
                       "tcp_raw_check_syncookie_ipv4", "tcp_raw_check_syncookie_ipv6", "get_netns_cookie"});
    case ProgType::Xdp:   // xdp_func_proto (the same for devmap/cpumap programs). bpf_xdp_adjust_meta
                          // is refused by the reference kernel (measured), so it is not in the set.
        return sk_base() |
               set_of({"perf_event_output", "get_smp_processor_id", "csum_diff", "xdp_adjust_head",
                       "xdp_adjust_tail", "xdp_get_buff_len", "xdp_load_bytes",
                       "xdp_store_bytes", "fib_lookup", "check_mtu", "redirect", "redirect_map",
                       "sk_lookup_udp", "sk_lookup_tcp", "sk_release", "skc_lookup_tcp",
                       "tcp_check_syncookie", "tcp_gen_syncookie", "tcp_raw_gen_syncookie_ipv4",
                       "tcp_raw_gen_syncookie_ipv6", "tcp_raw_check_syncookie_ipv4",
                       "tcp_raw_check_syncookie_ipv6"});
    case ProgType::CgroupSkb:   // cg_skb_func_proto
        return sk_base() | cgroup_common(false) |
               set_of({"skb_load_bytes", "skb_load_bytes_relative", "get_socket_cookie", "get_socket_uid",
                       "perf_event_output", "sk_fullsock", "sk_storage_get", "sk_storage_delete",
                       "skb_cgroup_id", "skb_ancestor_cgroup_id", "sk_cgroup_id", "sk_ancestor_cgroup_id",
                       "sk_lookup_tcp", "sk_lookup_udp", "sk_release", "skc_lookup_tcp", "tcp_sock",
                       "get_listener_sock", "skb_ecn_set_ce", "get_netns_cookie"});
    case ProgType::LwtIn:
    case ProgType::LwtOut:
    case ProgType::LwtXmit:
    case ProgType::LwtSeg6local: {   // lwt_out_func_proto and its extensions
        Set s = sk_base() | set_of({"skb_load_bytes", "skb_pull_data", "csum_diff", "get_cgroup_classid",
                                    "get_route_realm", "get_hash_recalc", "perf_event_output",
                                    "get_smp_processor_id", "skb_under_cgroup"});
        if (type == ProgType::LwtIn) {
            s |= set_of({"lwt_push_encap"});
        } else if (type == ProgType::LwtXmit) {
            s |= set_of({"skb_get_tunnel_key", "skb_set_tunnel_key", "skb_get_tunnel_opt", "skb_set_tunnel_opt",
                         "redirect", "clone_redirect", "skb_change_tail", "skb_change_head", "skb_store_bytes",
                         "csum_update", "csum_level", "l3_csum_replace", "l4_csum_replace", "set_hash_invalid",
                         "lwt_push_encap"});
        } else if (type == ProgType::LwtSeg6local && ctx.seg6) {
            s |= set_of({"lwt_seg6_store_bytes", "lwt_seg6_action", "lwt_seg6_adjust_srh"});
        }
        return s;
    }
    case ProgType::SkSkb:   // sk_skb_func_proto
        return sk_base() | set_of({"skb_store_bytes", "skb_load_bytes", "skb_pull_data", "skb_change_tail",
                                   "skb_change_head", "skb_adjust_room", "get_socket_cookie", "get_socket_uid",
                                   "sk_redirect_map", "sk_redirect_hash", "perf_event_output", "sk_lookup_tcp",
                                   "sk_lookup_udp", "sk_release", "skc_lookup_tcp"});
    case ProgType::SkMsg:   // sk_msg_func_proto
        return sk_base() | set_of({"msg_redirect_map", "msg_redirect_hash", "msg_apply_bytes", "msg_cork_bytes",
                                   "msg_pull_data", "msg_push_data", "msg_pop_data", "perf_event_output",
                                   "get_current_uid_gid", "get_current_pid_tgid", "sk_storage_get",
                                   "sk_storage_delete", "get_netns_cookie", "get_current_cgroup_id",
                                   "get_current_ancestor_cgroup_id", "get_cgroup_classid"});
    case ProgType::FlowDissector:   // flow_dissector_func_proto
        return sk_base() | set_of({"skb_load_bytes"});
    case ProgType::SkLookup:   // sk_lookup_func_proto
        return sk_base() | set_of({"perf_event_output", "sk_assign", "sk_release"});
    case ProgType::SkReuseport:   // sk_reuseport_func_proto
        return base() | set_of({"sk_select_reuseport", "skb_load_bytes", "skb_load_bytes_relative",
                                "get_socket_cookie", "ktime_get_coarse_ns"});
    case ProgType::CgroupSock:   // sock_filter_func_proto
        return base() | cgroup_common(true) |
               set_of({"get_current_uid_gid", "get_local_storage", "get_socket_cookie", "get_netns_cookie",
                       "perf_event_output", "get_current_pid_tgid", "get_current_comm", "get_current_cgroup_id",
                       "get_current_ancestor_cgroup_id", "get_cgroup_classid", "sk_storage_get",
                       "ktime_get_coarse_ns"});
    case ProgType::CgroupSockAddr: {   // sock_addr_func_proto
        // get_retval/set_retval: not where the hook ignores the return value (cgroup.c).
        const bool no_retval = has(w, "recvmsg") || has(w, "getpeername") || has(w, "getsockname");
        Set s = sk_base() | cgroup_common(!no_retval) |
                set_of({"get_socket_cookie", "get_netns_cookie", "perf_event_output", "sk_lookup_tcp",
                        "sk_lookup_udp", "sk_release", "skc_lookup_tcp", "sk_storage_get", "sk_storage_delete",
                        "setsockopt", "getsockopt"});
        if (w == "connect4" || w == "connect6") s |= set_of({"bind"});
        return s;
    }
    case ProgType::SockOps:   // sock_ops_func_proto
        return sk_base() | cgroup_common(false) |
               set_of({"setsockopt", "getsockopt", "sock_ops_cb_flags_set", "sock_map_update", "sock_hash_update",
                       "get_socket_cookie", "perf_event_output", "sk_storage_get", "sk_storage_delete",
                       "get_netns_cookie", "load_hdr_opt", "store_hdr_opt", "reserve_hdr_opt", "tcp_sock"});
    case ProgType::CgroupDevice:   // cgroup_dev_func_proto
        return base() | cgroup_common(true) | set_of({"perf_event_output"});
    case ProgType::CgroupSysctl:   // sysctl_func_proto
        return base() | cgroup_common(true) |
               set_of({"sysctl_get_name", "sysctl_get_current_value", "sysctl_get_new_value",
                       "sysctl_set_new_value", "ktime_get_coarse_ns", "perf_event_output"});
    case ProgType::CgroupSockopt: {   // cg_sockopt_func_proto
        Set s = base() | cgroup_common(true) |
                set_of({"perf_event_output", "sk_storage_get", "sk_storage_delete", "get_netns_cookie", "tcp_sock"});
        if (w == "setsockopt") s |= set_of({"setsockopt", "getsockopt"});
        return s;
    }
    case ProgType::Kprobe: {   // kprobe_prog_func_proto
        Set s = tracing_base(ctx) |
                set_of({"perf_event_output", "get_stackid", "get_stack", "get_func_ip", "get_attach_cookie"});
        if (ctx.kprobe_override) s |= set_of({"override_return"});
        return s;
    }
    case ProgType::Tracepoint:   // tp_prog_func_proto
    case ProgType::RawTracepoint:
    case ProgType::RawTracepointWritable:   // raw_tp_prog_func_proto (+ get_func_ip from bpf_tracing's tp variant)
        return tracing_base(ctx) |
               set_of({"perf_event_output", "get_stackid", "get_stack", "get_func_ip", "get_attach_cookie"});
    case ProgType::PerfEvent:   // pe_prog_func_proto
        return tracing_base(ctx) | set_of({"perf_event_output", "get_stackid", "get_stack", "perf_prog_read_value",
                                           "read_branch_records", "get_func_ip", "get_attach_cookie"});
    case ProgType::Tracing: {   // tracing_prog_func_proto, by expected_attach_type
        Set s = tracing_prog(ctx);
        const bool raw_tp = starts(attach, "tp_btf") || starts(attach, "raw_tp");
        const bool iter = starts(attach, "iter");
        if (!raw_tp && !iter) s |= set_of({"get_func_arg", "get_func_arg_cnt"});
        if (starts(attach, "fexit") || starts(attach, "fmod_ret")) s |= set_of({"get_func_ret"});
        if (!iter) s |= set_of({"get_attach_cookie"});
        if (iter) s |= set_of({"seq_printf", "seq_write", "seq_printf_btf"});
        return s;
    }
    case ProgType::Lsm: {   // bpf_lsm_func_proto, then tracing_prog_func_proto
        Set s = tracing_prog(ctx) |
                set_of({"inode_storage_get", "inode_storage_delete", "sk_storage_get", "sk_storage_delete",
                        "bprm_opts_set", "get_attach_cookie", "get_func_arg", "get_func_arg_cnt",
                        "get_func_ret"});
        if (ctx.sleepable) s |= set_of({"ima_inode_hash", "ima_file_hash"});
        if (starts(attach, "lsm_cgroup")) s |= set_of({"get_retval", "set_retval", "get_local_storage"});
        return s;
    }
    case ProgType::Syscall:   // syscall_prog_func_proto
        return tracing_prog(ctx) | set_of({"sys_bpf", "btf_find_by_name_kind", "sys_close", "kallsyms_lookup_name"});
    case ProgType::Netfilter:   // netfilter_prog_func_proto
    case ProgType::StructOps:   // bpf_struct_ops' get_func_proto: the base set (per-ops extras not modelled)
        return base();
    case ProgType::LircMode2:   // lirc_mode2_func_proto
        return base() | set_of({"rc_repeat", "rc_keydown", "rc_pointer_rel", "ktime_get_ns", "perf_event_output"});
    case ProgType::Ext: {   // checked against the target program's type: allow all known ids
        Set s;
        for (int32_t i = 1; i <= vm::kernel_helper_max_id() && i < 256; ++i) s.set(static_cast<std::size_t>(i));
        return s;
    }
    default:
        return {};
    }
}

}  // namespace

bool helper_gpl_only(ProgType type, std::string_view attach, int32_t helper_id) {
    // Type-specific protos that differ from the common one.
    if (type == ProgType::Kprobe && (has(attach, "kprobe.multi") || has(attach, "kretprobe.multi") ||
                                     has(attach, "uprobe.multi") || has(attach, "uretprobe.multi")) &&
        helper_id == helper_id_of("get_func_ip"))
        return false;   // bpf_get_func_ip_proto_kprobe_multi / _uprobe_multi
    if (type == ProgType::PerfEvent && helper_id == helper_id_of("get_stackid"))
        return false;   // bpf_get_stackid_proto_pe

    static const Set s = set_of({
        "probe_read", "trace_printk", "perf_event_read", "perf_event_output", "get_stackid", "get_current_task",
        "probe_write_user", "probe_read_str", "perf_event_read_value", "perf_prog_read_value",
        "override_return", "get_stack", "fib_lookup", "tcp_check_syncookie", "tcp_gen_syncookie",
        "skb_output", "probe_read_user", "probe_read_kernel", "probe_read_user_str", "probe_read_kernel_str",
        "read_branch_records", "xdp_output", "seq_printf", "seq_write", "seq_printf_btf",
        "get_current_task_btf", "check_mtu", "snprintf", "timer_init", "timer_set_callback", "timer_start",
        "timer_cancel", "get_func_ip", "task_pt_regs", "get_branch_snapshot", "trace_vprintk",
        "get_func_arg", "get_func_ret", "get_func_arg_cnt", "copy_from_user_task",
        "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6", "tcp_raw_check_syncookie_ipv4",
        "tcp_raw_check_syncookie_ipv6",
    });
    return helper_id >= 0 && helper_id < 256 && s.test(static_cast<std::size_t>(helper_id));
}

HelperAccess helper_access(ProgType type, std::string_view attach_or_section, int32_t id,
                           const HelperAccessContext& ctx) {
    HelperAccess r;
    if (id < 0 || id > vm::kernel_helper_max_id()) {
        r.message = fmt::format("invalid func unknown#{}", id);
        return r;
    }
    const Set s = type_set(type, attach_or_section, ctx);
    if (id >= 256 || !s.test(static_cast<std::size_t>(id))) {
        r.message = fmt::format("program of this type cannot use helper bpf_{}#{}",
                                id == 0 ? std::string_view("unspec") : vm::kernel_helper_name(id), id);
        return r;
    }
    if (!ctx.gpl && helper_gpl_only(type, attach_or_section, id)) {
        r.message = "cannot call GPL-restricted function from non-GPL compatible program";
        return r;
    }
    r.allowed = true;
    return r;
}

KfuncAccess kfunc_access(ProgType type, std::string_view attach_or_section, std::string_view name,
                         const btf::Btf* kernel_btf, bool gpl) {
    (void)type;
    (void)attach_or_section;
    KfuncAccess r;
    const std::string not_allowed = fmt::format("calling kernel function {} is not allowed", name);
    if (!kernel_btf) {
        r.message = not_allowed;
        return r;
    }
    try {
        const auto funcs = kernel_btf->find_all(name, btf::Kind::Func);
        if (funcs.empty()) {
            r.message = fmt::format("extern (func ksym) '{}': not found in kernel or module BTFs", name);
            return r;
        }
        r.in_btf = true;
        if (!gpl) {
            r.message = "cannot call kernel function from non-GPL compatible program";
            return r;
        }
        for (const uint32_t tag : kernel_btf->find_all("bpf_kfunc", btf::Kind::DeclTag)) {
            const uint32_t target = kernel_btf->type(tag).type();
            for (const uint32_t f : funcs)
                if (f == target) {
                    r.allowed = true;
                    return r;
                }
        }
    } catch (...) {
        // a malformed BTF: treat as not a kfunc
    }
    r.message = not_allowed;
    return r;
}

}  // namespace bpfsim::verifier
