// The running kernel as an oracle: load an object's program with the same maps and
// globals through bpf(2), and run it with BPF_PROG_TEST_RUN.
#include "harness/harness.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <regex>

namespace bpfsim::harness {

namespace {

long sys_bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

// The kernel sizes per-CPU values by the possible CPUs ("0-3"), not the online ones.
unsigned possible_cpus() {
    std::ifstream in("/sys/devices/system/cpu/possible");
    std::string s;
    std::getline(in, s);
    unsigned n = 0;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t end = s.find(',', pos);
        if (end == std::string::npos) end = s.size();
        const std::string part = s.substr(pos, end - pos);
        const auto dash = part.find('-');
        const unsigned lo = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
        const unsigned hi = dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
        n = std::max(n, hi + 1);
        pos = end + 1;
    }
    return n ? n : static_cast<unsigned>(sysconf(_SC_NPROCESSORS_CONF));
}

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Attach types newer than this machine's uapi header, by their kernel values.
constexpr uint32_t kNetfilter = 45, kTraceUprobeMulti = 48, kCgroupUnixConnect = 49, kCgroupUnixSendmsg = 50,
                   kCgroupUnixRecvmsg = 51, kCgroupUnixGetpeername = 52, kCgroupUnixGetsockname = 53;
constexpr uint32_t kSleepable = 1u << 4, kXdpHasFrags = 1u << 5;   // BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS

// What libbpf's section table sets at load for a program of this section: the expected attach
// type, flags, and the kernel BTF object the program attaches to (name and kind).
struct AttachSpec {
    uint32_t expected = 0;
    uint32_t flags = 0;
    std::string btf_name;
    btf::Kind btf_kind = btf::Kind::Func;
};

AttachSpec attach_spec(const ProgramDef& def) {
    AttachSpec a;
    const std::string& sec = def.section;
    const auto slash = sec.find('/');
    std::string head = sec.substr(0, slash);
    const std::string tail = slash == std::string::npos ? std::string() : sec.substr(slash + 1);
    if (head.size() > 2 && head.ends_with(".s") && head != "uprobe.s" && head != "uretprobe.s") {
        a.flags |= kSleepable;
        head.resize(head.size() - 2);
    } else if (head == "uprobe.s" || head == "uretprobe.s") {
        a.flags |= kSleepable;
    }
    static const std::map<std::string, uint32_t, std::less<>> exact = {
        {"sockops", BPF_CGROUP_SOCK_OPS}, {"sk_msg", BPF_SK_MSG_VERDICT}, {"cgroup/dev", BPF_CGROUP_DEVICE},
        {"cgroup/sysctl", BPF_CGROUP_SYSCTL}, {"flow_dissector", BPF_FLOW_DISSECTOR}, {"lirc_mode2", BPF_LIRC_MODE2},
        {"sk_lookup", BPF_SK_LOOKUP}, {"netfilter", kNetfilter},
        {"sk_skb/stream_parser", BPF_SK_SKB_STREAM_PARSER}, {"sk_skb/stream_verdict", BPF_SK_SKB_STREAM_VERDICT},
        {"sk_skb/verdict", BPF_SK_SKB_VERDICT}, {"cgroup_skb/ingress", BPF_CGROUP_INET_INGRESS},
        {"cgroup_skb/egress", BPF_CGROUP_INET_EGRESS}, {"cgroup/skb", BPF_CGROUP_INET_INGRESS},
        {"cgroup/sock", BPF_CGROUP_INET_SOCK_CREATE}, {"cgroup/sock_create", BPF_CGROUP_INET_SOCK_CREATE},
        {"cgroup/sock_release", BPF_CGROUP_INET_SOCK_RELEASE}, {"cgroup/post_bind4", BPF_CGROUP_INET4_POST_BIND},
        {"cgroup/post_bind6", BPF_CGROUP_INET6_POST_BIND}, {"cgroup/bind4", BPF_CGROUP_INET4_BIND},
        {"cgroup/bind6", BPF_CGROUP_INET6_BIND}, {"cgroup/connect4", BPF_CGROUP_INET4_CONNECT},
        {"cgroup/connect6", BPF_CGROUP_INET6_CONNECT}, {"cgroup/sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
        {"cgroup/sendmsg6", BPF_CGROUP_UDP6_SENDMSG}, {"cgroup/recvmsg4", BPF_CGROUP_UDP4_RECVMSG},
        {"cgroup/recvmsg6", BPF_CGROUP_UDP6_RECVMSG}, {"cgroup/getpeername4", BPF_CGROUP_INET4_GETPEERNAME},
        {"cgroup/getpeername6", BPF_CGROUP_INET6_GETPEERNAME}, {"cgroup/getsockname4", BPF_CGROUP_INET4_GETSOCKNAME},
        {"cgroup/getsockname6", BPF_CGROUP_INET6_GETSOCKNAME}, {"cgroup/connect_unix", kCgroupUnixConnect},
        {"cgroup/sendmsg_unix", kCgroupUnixSendmsg}, {"cgroup/recvmsg_unix", kCgroupUnixRecvmsg},
        {"cgroup/getpeername_unix", kCgroupUnixGetpeername}, {"cgroup/getsockname_unix", kCgroupUnixGetsockname},
        {"cgroup/getsockopt", BPF_CGROUP_GETSOCKOPT}, {"cgroup/setsockopt", BPF_CGROUP_SETSOCKOPT},
        {"sk_reuseport", BPF_SK_REUSEPORT_SELECT}, {"sk_reuseport/migrate", BPF_SK_REUSEPORT_SELECT_OR_MIGRATE},
    };
    if (auto it = exact.find(sec); it != exact.end()) {
        a.expected = it->second;
        return a;
    }
    if (head == "xdp" || head == "xdp.frags") {
        if (head == "xdp.frags") a.flags |= kXdpHasFrags;
        a.expected = tail == "devmap" ? BPF_XDP_DEVMAP : tail == "cpumap" ? BPF_XDP_CPUMAP : BPF_XDP;
    } else if (head == "tp_btf") {
        a.expected = BPF_TRACE_RAW_TP;
        a.btf_name = "btf_trace_" + tail;
        a.btf_kind = btf::Kind::Typedef;
    } else if (head == "fentry" || head == "fexit" || head == "fmod_ret") {
        a.expected = head == "fentry" ? BPF_TRACE_FENTRY : head == "fexit" ? BPF_TRACE_FEXIT : BPF_MODIFY_RETURN;
        a.btf_name = tail;
    } else if (head == "iter") {
        a.expected = BPF_TRACE_ITER;
        a.btf_name = "bpf_iter_" + tail;
    } else if (head == "lsm" || head == "lsm_cgroup") {
        a.expected = head == "lsm" ? BPF_LSM_MAC : BPF_LSM_CGROUP;
        a.btf_name = "bpf_lsm_" + tail;
    } else if (head == "kprobe.multi" || head == "kretprobe.multi") {
        a.expected = BPF_TRACE_KPROBE_MULTI;
    } else if (head == "uprobe.multi" || head == "uretprobe.multi") {
        a.expected = kTraceUprobeMulti;
    }
    return a;
}

// "EACCES (Permission denied)".
std::string strerrorname(int e) {
    const char* n = strerrorname_np(e);
    return fmt::format("{} ({})", n ? n : std::to_string(e), std::strerror(e));
}

bool starts_with_digits_colon(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
    return i > 0 && i < line.size() && line[i] == ':';
}

// Verifier messages that mean the kernel refused the program for reasons outside the
// verifier's judgement of its code: attach targets, BTF, maps, missing kernel features.
const char* not_loadable_pattern(std::string_view message) {
    static const char* const kPatterns[] = {
        "attach_btf_id", "attach to", "Tracing programs must provide btf_id", "Cannot replace", "is not a function",
        "not pointing to valid bpf_map", "invalid func info", "func_info", "line_info", "BTF is required",
        "failed to find kernel BTF", "Extension programs should be JITed", "struct ops", "Syscall programs can only be sleepable",
        "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable",
        "unsupported map type", "kernel btf_id", "calling kernel function is not supported",
    };
    for (const char* p : kPatterns)
        if (message.find(p) != std::string_view::npos) return p;
    return nullptr;
}

}  // namespace

std::string_view to_string(KernelVerdict::Kind k) {
    switch (k) {
    case KernelVerdict::Kind::Accepted: return "accepted";
    case KernelVerdict::Kind::Rejected: return "rejected";
    case KernelVerdict::Kind::NotLoadable: return "not-loadable";
    }
    return "?";
}

void parse_verifier_log(KernelVerdict& v) {
    std::vector<std::string_view> lines;
    std::string_view log = v.log;
    while (!log.empty()) {
        const auto nl = log.find('\n');
        std::string_view line = log.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) break;
        log.remove_prefix(nl + 1);
    }
    // Statistics at the end: "verification time", "stack depth", "processed N insns ...".
    std::size_t end = lines.size();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string_view l = lines[i];
        if (l.starts_with("processed ") && l.find(" insns (limit ") != std::string_view::npos) {
            v.stats = std::string(l);
            v.processed = std::strtoull(std::string(l.substr(10)).c_str(), nullptr, 10);
            end = std::min(end, i);
        } else if (l.find("verification time ") != std::string_view::npos && l.ends_with(" usec")) {
            // Some messages lack their newline: "expected prog array map for tail callverification time 5 usec".
            const auto at = l.find("verification time ");
            v.verification_usec = std::strtoull(std::string(l.substr(at + 18)).c_str(), nullptr, 10);
            if (at > 0) {
                lines[i] = l.substr(0, at);
                end = std::min(end, i + 1);
            } else {
                end = std::min(end, i);
            }
        } else if (l.starts_with("verification time ")) {
            v.verification_usec = std::strtoull(std::string(l.substr(18)).c_str(), nullptr, 10);
            end = std::min(end, i);
        } else if (l.starts_with("stack depth ")) {
            end = std::min(end, i);
        }
    }
    while (end > 0 && lines[end - 1].find_first_not_of(" \t") == std::string_view::npos) --end;
    // The message block: the lines after the last instruction / state line of the failing path.
    std::size_t begin = end;
    while (begin > 0) {
        const std::string_view l = lines[begin - 1];
        if (starts_with_digits_colon(l) || l.starts_with("from ") || l.starts_with("; ") || l.starts_with("mark_precise") ||
            l.starts_with("Live regs") || l.starts_with("Global function") || l.starts_with("Validating ") ||
            l.starts_with("Func#") || l.starts_with("func#"))
            break;
        --begin;
    }
    if (end - begin > 4) begin = end - 4;
    std::string msg;
    for (std::size_t i = begin; i < end; ++i) {
        if (lines[i].find_first_not_of(" \t") == std::string_view::npos) continue;
        if (!msg.empty()) msg += '\n';
        msg += lines[i];
    }
    if (msg.empty() && end > 0) msg = std::string(lines[end - 1]);
    v.message = std::move(msg);
    // The failing pc: the last instruction the log shows ("12: (61) r1 = *(u32 *)(r2 +0)"),
    // else one the message names ("back-edge from insn 10 to 5", "unreachable insn 3").
    for (std::size_t i = begin; i-- > 0;) {
        const std::string_view l = lines[i];
        if (starts_with_digits_colon(l) && l.find(": (") != std::string_view::npos) {
            v.pc = std::strtoull(std::string(l).c_str(), nullptr, 10);
            break;
        }
    }
    if (!v.pc) {
        static const std::regex insn_re(R"(insn (?:#)?(\d+))");
        std::smatch m;
        if (std::regex_search(v.message, m, insn_re)) v.pc = std::stoull(m[1].str());
    }
}

KernelOracle::~KernelOracle() {
    if (btf_fd_ >= 0) close(btf_fd_);
    for (int fd : map_fds_)
        if (fd >= 0) close(fd);
    for (auto& [name, fd] : prog_fds_)
        if (fd >= 0) close(fd);
}

std::string KernelOracle::unavailable_reason() {
    bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    const long fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (fd >= 0) {
        close(static_cast<int>(fd));
        return {};
    }
    return fmt::format("the bpf() syscall is unavailable here ({})", std::strerror(errno));
}

Result<std::unique_ptr<KernelOracle>> KernelOracle::create(const Object& obj) {
    return catch_error([&]() -> std::unique_ptr<KernelOracle> {
        std::unique_ptr<KernelOracle> k(new KernelOracle());
        k->obj_ = &obj;
        // The object's BTF, for func_info (callbacks and bpf2bpf calls need it).
        if (auto bytes = obj.kernel_btf(); bytes && !bytes->empty()) {
            std::string blog(1 << 16, '\0');
            bpf_attr b{};
            b.btf = ptr(bytes->data());
            b.btf_size = static_cast<uint32_t>(bytes->size());
            b.btf_log_buf = ptr(blog.data());
            b.btf_log_size = static_cast<uint32_t>(blog.size());
            b.btf_log_level = 1;
            const long fd = sys_bpf(BPF_BTF_LOAD, &b);
            if (fd >= 0) k->btf_fd_ = static_cast<int>(fd);
            else k->btf_error_ = fmt::format("kernel refused the object's BTF: {}: {}", std::strerror(errno), blog.c_str());
        }
        for (const auto& def : obj.maps()) {
            bpf_attr a{};
            a.map_type = static_cast<uint32_t>(def.type);
            a.key_size = def.key_size;
            a.value_size = def.value_size;
            a.max_entries = def.max_entries;
            a.map_flags = def.flags;
            if (def.frozen) a.map_flags |= BPF_F_RDONLY_PROG;   // .rodata, .kconfig: as libbpf creates them
            a.map_extra = def.map_extra;
            if (def.type == MapType::PerfEventArray) {   // as libbpf: one slot per CPU, fd-sized values
                if (!a.max_entries) a.max_entries = possible_cpus();
                a.key_size = 4;
                a.value_size = 4;
            }
            // As loaders do: ring buffers take no key or value size (a declared value type is
            // only BTF); map-in-map values are fds; arrays declared with max_entries 0 are sized
            // by their loader at run time, one slot per CPU (falco's scratch maps).
            if (def.type == MapType::Ringbuf || def.type == MapType::UserRingbuf) a.key_size = a.value_size = 0;
            if (def.type == MapType::ArrayOfMaps || def.type == MapType::HashOfMaps) a.value_size = 4;
            if (!a.max_entries && (def.type == MapType::Array || def.type == MapType::PercpuArray)) a.max_entries = possible_cpus();
            std::string name = def.name.substr(0, BPF_OBJ_NAME_LEN - 1);
            for (char& c : name)
                if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
            std::memcpy(a.map_name, name.data(), name.size());
            int inner_fd = -1;
            // The inner map's shape: declared, else the map the outer one's initial slots name.
            std::shared_ptr<const MapDef> inner = def.inner;
            if (!inner && (def.type == MapType::ArrayOfMaps || def.type == MapType::HashOfMaps))
                for (const auto& [slot, iname] : def.init_slots)
                    for (const auto& m : obj.maps())
                        if (!inner && m.name == iname) inner = std::make_shared<MapDef>(m);
            if (inner) {
                bpf_attr ia{};
                ia.map_type = static_cast<uint32_t>(inner->type);
                ia.key_size = inner->key_size;
                ia.value_size = inner->value_size;
                ia.max_entries = inner->max_entries ? inner->max_entries : 1;
                ia.map_flags = inner->flags;
                if (inner->type == MapType::Ringbuf || inner->type == MapType::UserRingbuf) ia.key_size = ia.value_size = 0;
                inner_fd = static_cast<int>(sys_bpf(BPF_MAP_CREATE, &ia));
                a.inner_map_fd = static_cast<uint32_t>(inner_fd);
            }
            // The map's BTF, as libbpf passes it (spin locks, timers and kptrs need it; global
            // data gets its DATASEC); without it when the kernel refuses it, as libbpf retries.
            uint32_t key_tid = def.btf_key_type, value_tid = def.btf_value_type;
            if (!value_tid && obj.btf() && (def.origin == MapDef::Origin::Data || def.origin == MapDef::Origin::Rodata ||
                                            def.origin == MapDef::Origin::Bss || def.origin == MapDef::Origin::Kconfig)) {
                if (auto ds = obj.btf()->find(def.section, btf::Kind::Datasec)) value_tid = *ds;
                key_tid = 0;
            }
            long fd = -1;
            if (k->btf_fd_ >= 0 && value_tid) {
                bpf_attr b = a;
                b.btf_fd = static_cast<uint32_t>(k->btf_fd_);
                b.btf_key_type_id = key_tid;
                b.btf_value_type_id = value_tid;
                fd = sys_bpf(BPF_MAP_CREATE, &b);
            }
            if (fd < 0) fd = sys_bpf(BPF_MAP_CREATE, &a);
            const int err = errno;
            if (inner_fd >= 0) close(inner_fd);
            if (fd < 0) {
                k->map_fds_.push_back(-1);
                k->map_errors_.push_back(fmt::format("cannot create map '{}' ({}): {}", def.name, to_string(def.type), std::strerror(err)));
                continue;
            }
            k->map_fds_.push_back(static_cast<int>(fd));
            k->map_errors_.emplace_back();
            if (!def.init.empty()) {
                uint32_t zero = 0;
                std::vector<uint8_t> value = def.init;
                value.resize(def.value_size);
                bpf_attr u{};
                u.map_fd = static_cast<uint32_t>(fd);
                u.key = ptr(&zero);
                u.value = ptr(value.data());
                if (sys_bpf(BPF_MAP_UPDATE_ELEM, &u) < 0)
                    throw Error(ErrorCode::Io, fmt::format("kernel: cannot initialise '{}': {}", def.name, std::strerror(errno)));
            }
            if (def.frozen) {   // (a map without an image keeps the kernel's zeroed value)
                bpf_attr f{};
                f.map_fd = static_cast<uint32_t>(fd);
                sys_bpf(BPF_MAP_FREEZE, &f);
            }
        }
        return k;
    });
}

Result<std::shared_ptr<const btf::Btf>> KernelOracle::running_kernel_btf() {
    static Result<std::shared_ptr<const btf::Btf>> cached = load_kernel_btf("/sys/kernel/btf/vmlinux");
    return cached;
}

KernelVerdict KernelOracle::load_once(std::string_view prog, unsigned log_level, int* out_fd, ProgType type) {
    KernelVerdict v;
    // CO-RE relocations against the running kernel's own BTF, as libbpf would.
    btf::CoreTargets targets;
    if (obj_->core_relo_count()) {
        auto host = running_kernel_btf();
        if (!host) throw host.error();
        targets.main = host->get();
    }
    auto lp = obj_->link(prog, &targets);
    if (!lp) throw lp.error();
    const ProgramDef* def = obj_->find_program(prog);
    std::vector<vm::Insn> insns = lp->prog.insns;
    v.insns = insns.size();
    for (std::size_t pc = 0; pc + 1 < insns.size(); ++pc) {
        vm::Insn& in = insns[pc];
        if (in.code != 0x18) continue;
        if (in.src == 5 || in.src == 6) {
            const auto idx = static_cast<std::size_t>(in.imm);
            if (idx >= map_fds_.size() || map_fds_[idx] < 0) {
                v.reason = idx < map_errors_.size() ? map_errors_[idx] : fmt::format("instruction {} names map {}, which the object does not have", pc, idx);
                return v;
            }
            in.src = in.src == 5 ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;
            in.imm = map_fds_[idx];
        }
        ++pc;
    }
    v.type = def->type;
    if (v.type == ProgType::Unspec) {
        v.type = type == ProgType::Unspec ? ProgType::SocketFilter : type;
        v.type_assumed = true;
    }
    // Externs, as libbpf resolves them: a kfunc call gets the function's id in the running
    // kernel's BTF; anything else (an undefined `memset`, a ksym variable) stops the load.
    for (const auto& [pc, ext] : lp->externs) {
        vm::Insn& in = insns[pc];
        if (in.code == 0x85 && in.src == 2) {
            auto host = running_kernel_btf();
            std::optional<uint32_t> id;
            if (host) id = (*host)->find(ext, btf::Kind::Func);
            if (id) {
                in.imm = static_cast<int32_t>(*id);
                in.off = 0;
                continue;
            }
            v.reason = fmt::format("unresolved extern function '{}' at pc {}: not a kernel function in the running kernel's BTF", ext, pc);
        } else {
            v.reason = fmt::format("extern variable '{}' at pc {}: ksyms are not resolved by the oracle", ext, pc);
        }
        return v;
    }
    const AttachSpec spec = attach_spec(*def);
    v.expected_attach_type = spec.expected;
    v.prog_flags = spec.flags;
    if (!spec.btf_name.empty()) {
        auto host = running_kernel_btf();
        if (!host) {
            v.reason = fmt::format("no kernel BTF for attach target '{}': {}", spec.btf_name, host.error().message());
            return v;
        }
        auto id = (*host)->find(spec.btf_name, spec.btf_kind);
        if (!id) {
            v.reason = fmt::format("attach target '{}' ({}) is not in the running kernel's BTF", spec.btf_name, btf::kind_name(spec.btf_kind));
            return v;
        }
        v.attach_btf_id = *id;
    }
    std::string license = obj_->license().empty() ? "GPL" : obj_->license();
    std::string name = def->name.substr(0, BPF_OBJ_NAME_LEN - 1);
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    std::vector<bpf_func_info> finfo;
    if (btf_fd_ >= 0)
        for (const auto& [pc, tid] : lp->func_info) finfo.push_back({static_cast<uint32_t>(pc), tid});
    // Level 1 keeps only the failing path in the log (the kernel rewinds it per path); level 2
    // every state. BPF_LOG_STATS (4) adds the kernel's own verification time.
    std::size_t log_size = log_level >= 2 ? (16u << 20) : (1u << 20);
    constexpr std::size_t kMaxLog = (1u << 30) - 1;   // the kernel's limit (UINT_MAX >> 2)
    for (;;) {
        log_.assign(log_size, '\0');
        bpf_attr a{};
        a.prog_type = static_cast<uint32_t>(v.type);
        a.insns = ptr(insns.data());
        a.insn_cnt = static_cast<uint32_t>(insns.size());
        a.license = ptr(license.c_str());
        a.log_buf = ptr(log_.data());
        a.log_size = static_cast<uint32_t>(log_.size());
        a.log_level = (log_level >= 2 ? 2u : log_level) | 4u;   // 0: statistics and the message only
        a.kern_version = obj_->kern_version();
        a.prog_flags = spec.flags;
        a.expected_attach_type = spec.expected;
        a.attach_btf_id = v.attach_btf_id;
        if (!finfo.empty()) {
            a.prog_btf_fd = static_cast<uint32_t>(btf_fd_);
            a.func_info_rec_size = sizeof(bpf_func_info);
            a.func_info = ptr(finfo.data());
            a.func_info_cnt = static_cast<uint32_t>(finfo.size());
        }
        std::memcpy(a.prog_name, name.data(), name.size());
        const auto t0 = std::chrono::steady_clock::now();
        const long fd = sys_bpf(BPF_PROG_LOAD, &a);
        const int err = errno;
        v.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log_.resize(std::strlen(log_.c_str()));
        if (fd < 0 && err == ENOSPC && log_size < kMaxLog) {   // the log did not fit: again, with more room
            log_size = std::min(kMaxLog, log_size * 4);
            continue;
        }
        v.log = log_;
        parse_verifier_log(v);
        if (fd >= 0) {
            v.kind = KernelVerdict::Kind::Accepted;
            v.message.clear();   // an accepted program's log ends in its last path, not a message
            v.pc.reset();
            if (out_fd) *out_fd = static_cast<int>(fd);
            else close(static_cast<int>(fd));
            return v;
        }
        v.err = err;
        if (v.message.empty()) {
            v.reason = fmt::format("refused before verification: {}{}", strerrorname(err), err == EINVAL && !btf_error_.empty() ? " (" + btf_error_.substr(0, btf_error_.find('\n')) + ")" : "");
            v.kind = KernelVerdict::Kind::NotLoadable;
        } else if (not_loadable_pattern(v.message)) {
            v.reason = fmt::format("{}: {}", strerrorname(err), v.message.substr(0, v.message.find('\n')));
            v.kind = KernelVerdict::Kind::NotLoadable;
        } else {
            v.kind = KernelVerdict::Kind::Rejected;   // the verifier judged the code
        }
        return v;
    }
}

Result<KernelVerdict> KernelOracle::verify(std::string_view prog, unsigned log_level, ProgType type) {
    return catch_error([&]() -> KernelVerdict {
        if (!obj_->find_program(prog)) throw Error(ErrorCode::Usage, fmt::format("{}: no program '{}'", obj_->path(), prog));
        return load_once(prog, log_level, nullptr, type);
    });
}

Result<int> KernelOracle::load(std::string_view prog) {
    if (auto it = prog_fds_.find(std::string(prog)); it != prog_fds_.end()) return it->second;
    return catch_error([&]() -> int {
        const ProgramDef* def = obj_->find_program(prog);
        if (!def) throw Error(ErrorCode::Usage, fmt::format("{}: no program '{}'", obj_->path(), prog));
        int fd = -1;
        const KernelVerdict v = load_once(prog, 1, &fd);
        if (v.kind != KernelVerdict::Kind::Accepted) {
            if (!v.reason.empty() && v.log.empty()) throw Error(ErrorCode::Unsupported, v.reason);
            std::string tail = log_.size() > 2000 ? log_.substr(log_.size() - 2000) : log_;
            throw Error(ErrorCode::Unsupported, fmt::format("kernel rejected '{}': {}\n{}", def->name, std::strerror(v.err), tail));
        }
        prog_fds_[std::string(prog)] = fd;
        // Fill prog arrays that name programs of the object.
        for (std::size_t i = 0; i < obj_->maps().size(); ++i) {
            const MapDef& m = obj_->maps()[i];
            if (m.type != MapType::ProgArray || map_fds_[i] < 0) continue;
            for (const auto& [slot, pname] : m.init_slots) {
                if (pname == prog) continue;
                auto sub = load(pname);
                if (!sub) continue;
                uint32_t key = slot;
                uint32_t value = static_cast<uint32_t>(*sub);
                bpf_attr u{};
                u.map_fd = static_cast<uint32_t>(map_fds_[i]);
                u.key = ptr(&key);
                u.value = ptr(&value);
                sys_bpf(BPF_MAP_UPDATE_ELEM, &u);
            }
        }
        return fd;
    });
}

Result<KernelRun> KernelOracle::test_run(std::string_view prog, const std::vector<uint8_t>& packet) {
    return catch_error([&]() -> KernelRun {
        auto fd = load(prog);
        if (!fd) throw fd.error();
        KernelRun out;
        out.packet.resize(packet.size() + 4096);
        bpf_attr a{};
        a.test.prog_fd = static_cast<uint32_t>(*fd);
        a.test.data_in = ptr(packet.data());
        a.test.data_size_in = static_cast<uint32_t>(packet.size());
        a.test.data_out = ptr(out.packet.data());
        a.test.data_size_out = static_cast<uint32_t>(out.packet.size());
        a.test.repeat = 1;
        if (sys_bpf(BPF_PROG_TEST_RUN, &a) < 0)
            throw Error(ErrorCode::Io, fmt::format("BPF_PROG_TEST_RUN of '{}': {}", prog, std::strerror(errno)));
        out.retval = a.test.retval;
        out.packet.resize(a.test.data_size_out);
        return out;
    });
}

std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> KernelOracle::dump(std::size_t map) const {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> out;
    if (map >= map_fds_.size() || map_fds_[map] < 0) return out;
    const MapDef& d = obj_->maps()[map];
    if (d.key_size == 0 || d.type == MapType::ProgArray || d.type == MapType::PerfEventArray) return out;
    const bool percpu = d.type == MapType::PercpuArray || d.type == MapType::PercpuHash || d.type == MapType::LruPercpuHash;
    const long ncpu = possible_cpus();
    std::vector<uint8_t> key(d.key_size), next(d.key_size),
        value(percpu ? (d.value_size + 7) / 8 * 8 * static_cast<std::size_t>(ncpu) : d.value_size);
    bool first = true;
    for (;;) {
        bpf_attr a{};
        a.map_fd = static_cast<uint32_t>(map_fds_[map]);
        a.key = first ? 0 : ptr(key.data());
        a.next_key = ptr(next.data());
        if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a) < 0) break;
        first = false;
        key = next;
        bpf_attr l{};
        l.map_fd = static_cast<uint32_t>(map_fds_[map]);
        l.key = ptr(key.data());
        l.value = ptr(value.data());
        if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &l) < 0) continue;
        out.emplace_back(key, value);
    }
    return out;
}

}  // namespace bpfsim::harness
