// bpfsim::verifier — which helpers (and kfuncs) a program type may call: the kernel's per-type
// `get_func_proto` callbacks (bpf_verifier_ops) as of Linux 6.18, with root semantics
// (bpf_capable + perfmon_capable), as one table the verifier model asks at each BPF_CALL.
//
// The sets mirror the kernel's composition (net/core/filter.c, kernel/trace/bpf_trace.c,
// kernel/bpf/helpers.c, kernel/bpf/cgroup.c, kernel/bpf/bpf_lsm.c):
//   bpf_base_func_proto          every type (maps, ringbuf, timers, dynptr, probe_read_{user,kernel},
//                                get_current_*, snprintf, ... : the privileged set)
//   bpf_sk_base_func_proto       base + skc_to_*_sock + ktime_get_coarse_ns (most networking types)
//   bpf_tracing_func_proto       base + probe_read, probe_read_str (+ probe_write_user, override_return
//                                where the kernel configuration allows; see HelperAccessContext)
//   per type                     sk_filter, tc_cls_act, xdp, cg_skb, lwt_in/out/xmit/seg6local,
//                                sk_skb, sk_msg, flow_dissector, sock_filter (cgroup_sock),
//                                sock_addr, sock_ops, sk_lookup, sk_reuseport, cgroup_dev/sysctl/sockopt,
//                                kprobe, tracepoint, raw_tracepoint(_writable), perf_event, tracing,
//                                lsm, syscall, netfilter, struct_ops (base only), ext (allowed: the
//                                kernel checks it against the replaced program's type).
//
// Where the kernel looks at expected_attach_type, it is derived from `attach_or_section`, the
// libbpf section name or its attach part (the last '/'-separated word is matched):
//   cgroup_sock_addr  "connect4"/"connect6" → bpf_bind; "recvmsg*", "getpeername*", "getsockname*"
//                     (inet and unix) → no bpf_get_retval/bpf_set_retval
//   cgroup_sockopt    "setsockopt" → bpf_setsockopt/bpf_getsockopt (not for "getsockopt")
//   tracing           "fexit/..", "fmod_ret/.." → bpf_get_func_ret; "iter/.." → seq_* helpers;
//                     "tp_btf/..", "raw_tp/.." (BPF_TRACE_RAW_TP) → no get_func_arg*
//   lsm               "lsm_cgroup/.." → bpf_get_retval/bpf_set_retval
// Everything else (xdp devmap/cpumap, cgroup_skb ingress/egress, sk_skb parser/verdict) has one set.
#pragma once

#include "btf/btf.hpp"
#include "harness/harness.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace bpfsim::verifier {

struct HelperAccessContext {
    bool gpl = true;            // the program's license is GPL-compatible
    bool sleepable = false;     // BPF_F_SLEEPABLE (lsm: bpf_ima_*; tracing/lsm: copy_from_user_task...)
    // Kernel configuration, defaults as the reference kernel (6.18 x86_64, lockdown LSM on,
    // CONFIG_BPF_KPROBE_OVERRIDE off, CONFIG_IPV6_SEG6_BPF off):
    bool probe_write_user = false;   // !security_locked_down(LOCKDOWN_BPF_WRITE_USER)
    bool kprobe_override = false;    // CONFIG_BPF_KPROBE_OVERRIDE → bpf_override_return for kprobe
    bool seg6 = false;               // CONFIG_IPV6_SEG6_BPF → lwt_seg6local / lwt_in seg6 helpers
};

struct HelperAccess {
    bool allowed = false;
    // When refused, the kernel's verifier log line (no trailing newline):
    //   "invalid func unknown#%d"                          id < 0 or past the kernel's last id
    //   "program of this type cannot use helper bpf_%s#%d"  get_func_proto returned NULL
    //   "cannot call GPL-restricted function from non-GPL compatible program"
    std::string message;
};

// Whether a program of `type` may call helper `helper_id` (checked in the kernel's order:
// range, then get_func_proto, then gpl_only). Never throws.
HelperAccess helper_access(harness::ProgType type, std::string_view attach_or_section, int32_t helper_id,
                           const HelperAccessContext& ctx = {});

// Whether the proto the type gets for the helper is gpl_only (mostly per id; a few types get
// their own proto: perf_event's get_stackid, kprobe.multi's get_func_ip are not gpl_only).
bool helper_gpl_only(harness::ProgType type, std::string_view attach_or_section, int32_t helper_id);

struct KfuncAccess {
    bool allowed = false;
    bool in_btf = false;        // a FUNC of that name exists in the kernel BTF
    // When refused: "calling kernel function %s is not allowed" (a plain kernel function, e.g.
    // memset, bpf_map_lookup_elem: in BTF but not a kfunc), or, for a name the BTF lacks,
    // libbpf's "extern (func ksym) '%s': not found in kernel or module BTFs" (the load never
    // reaches the kernel), or "cannot call kernel function from non-GPL compatible program".
    std::string message;
};

// A call to a kernel function by name (BPF_PSEUDO_KFUNC_CALL, resolved against the kernel BTF).
// A function is taken as a kfunc when the BTF carries DECL_TAG "bpf_kfunc" on it (the
// __bpf_kfunc annotation, emitted by pahole ≥ 1.25); the kernel's per-program-type
// registration sets (register_btf_kfunc_id_set) are NOT modelled, so a tagged kfunc is allowed
// for every type (the kernel refuses, e.g., bpf_xdp_metadata_rx_hash outside XDP with the same
// "not allowed" message). Without a BTF every call is refused with the "not allowed" message.
KfuncAccess kfunc_access(harness::ProgType type, std::string_view attach_or_section, std::string_view kfunc_name,
                         const btf::Btf* kernel_btf, bool gpl = true);

}  // namespace bpfsim::verifier
