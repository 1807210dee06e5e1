// Contexts of tracing programs: pt_regs, u64 argument arrays, tracepoint records and
// bpf_perf_event_data, laid out as on x86-64 Linux.
#include "harness/harness.hpp"

#include <asm/unistd_64.h>
#include <fmt/format.h>

#include <array>
#include <cstring>

namespace bpfsim::harness {
namespace {

// struct pt_regs (arch/x86/include/uapi/asm/ptrace.h without __KERNEL__ names), 21 x u64.
constexpr std::array<std::string_view, 21> kRegs = {"r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax",
                                                    "cx",  "dx",  "si",  "di",  "orig_ax", "ip", "cs", "flags", "sp", "ss"};
constexpr std::size_t kPtRegsSize = kRegs.size() * 8;
// The System V argument registers: PT_REGS_PARM1..6.
constexpr std::array<std::string_view, 6> kArgRegs = {"di", "si", "dx", "cx", "r8", "r9"};
constexpr std::size_t kMaxFuncArgs = 12;   // MAX_BPF_FUNC_ARGS: the u64 array of fentry/raw_tp

std::optional<std::size_t> reg_offset(std::string_view name) {
    if (name.starts_with("r") && name.size() == 3 && (name[1] == 'a' || name[1] == 'b' || name[1] == 'c' || name[1] == 'd' ||
                                                      name[1] == 's')) name.remove_prefix(1);   // rax -> ax, rdi -> di
    else if (name == "rbp" || name == "rsp" || name == "rip") name.remove_prefix(1);
    if (name == "ret" || name == "rc") name = "ax";   // PT_REGS_RC
    for (std::size_t i = 0; i < kRegs.size(); ++i)
        if (kRegs[i] == name) return i * 8;
    if (name.starts_with("parm") && name.size() == 5 && name[4] >= '1' && name[4] <= '6') return reg_offset(kArgRegs[name[4] - '1']);
    return std::nullopt;
}

// x86-64 syscall numbers, for the __syscall_nr field of syscalls/sys_{enter,exit}_NAME.
#define BPFSIM_SYSCALLS(X)                                                                                                     \
    X(read) X(write) X(open) X(close) X(stat) X(fstat) X(lstat) X(poll) X(lseek) X(mmap) X(mprotect) X(munmap) X(brk)          \
    X(ioctl) X(pread64) X(pwrite64) X(readv) X(writev) X(access) X(pipe) X(select) X(dup) X(dup2) X(nanosleep) X(getpid)       \
    X(socket) X(connect) X(accept) X(sendto) X(recvfrom) X(sendmsg) X(recvmsg) X(shutdown) X(bind) X(listen) X(clone) X(fork)  \
    X(vfork) X(execve) X(exit) X(wait4) X(kill) X(uname) X(fcntl) X(fsync) X(truncate) X(getdents64) X(getcwd) X(chdir)       \
    X(rename) X(mkdir) X(rmdir) X(unlink) X(symlink) X(readlink) X(chmod) X(chown) X(umask) X(getuid) X(getgid) X(setuid)      \
    X(setgid) X(geteuid) X(getppid) X(setsid) X(ptrace) X(mount) X(umount2) X(reboot) X(init_module) X(delete_module)          \
    X(gettid) X(tkill) X(futex) X(exit_group) X(openat) X(mkdirat) X(unlinkat) X(renameat) X(renameat2) X(accept4) X(dup3)    \
    X(pipe2) X(finit_module) X(bpf) X(execveat) X(clone3) X(openat2) X(memfd_create) X(setns) X(unshare) X(prctl) X(chroot)  \
    X(capset) X(kexec_load) X(io_uring_setup) X(io_uring_enter) X(pidfd_open) X(process_vm_readv) X(process_vm_writev)

int64_t syscall_number(std::string_view name) {
#define BPFSIM_SYSCALL_ROW(n) if (name == #n) return __NR_##n;
    BPFSIM_SYSCALLS(BPFSIM_SYSCALL_ROW)
#undef BPFSIM_SYSCALL_ROW
    return -1;
}

struct Layout {
    std::vector<uint8_t> bytes;
    std::vector<std::pair<std::string, std::pair<std::size_t, std::size_t>>> fields;   // name -> (offset, size)
    std::size_t args_at = 0, max_args = 0;   // where positional arguments go, 8 bytes each

    void set(std::size_t off, std::size_t size, uint64_t v) { std::memcpy(bytes.data() + off, &v, size); }
    const std::pair<std::size_t, std::size_t>* field(std::string_view n) const {
        for (const auto& [name, f] : fields)
            if (name == n) return &f;
        return nullptr;
    }
};

[[noreturn]] void usage(std::string_view what) { throw Error(ErrorCode::Usage, std::string(what)); }

Layout tracepoint_layout(std::string_view attach, const WorldOptions& w) {
    Layout l;
    // struct trace_entry: the header every record starts with.
    l.fields = {{"common_type", {0, 2}}, {"common_flags", {2, 1}}, {"common_preempt_count", {3, 1}}, {"common_pid", {4, 4}}};
    std::size_t size = 8;
    const std::size_t slash = attach.find('/');
    const std::string_view cat = attach.substr(0, slash), ev = slash == std::string_view::npos ? "" : attach.substr(slash + 1);
    int64_t nr = -1;
    if (cat == "syscalls" && ev.starts_with("sys_enter_")) {
        nr = syscall_number(ev.substr(10));
        l.fields.push_back({"__syscall_nr", {8, 4}});
        for (int i = 0; i < 6; ++i) l.fields.push_back({fmt::format("arg{}", i), {16 + 8 * std::size_t(i), 8}});
        l.args_at = 16, l.max_args = 6, size = 64;
    } else if (cat == "syscalls" && ev.starts_with("sys_exit_")) {
        nr = syscall_number(ev.substr(9));
        l.fields.push_back({"__syscall_nr", {8, 4}});
        l.fields.push_back({"ret", {16, 8}});
        size = 24;
    } else if (cat == "raw_syscalls" && ev == "sys_enter") {
        l.fields.push_back({"id", {8, 8}});
        for (int i = 0; i < 6; ++i) l.fields.push_back({fmt::format("arg{}", i), {16 + 8 * std::size_t(i), 8}});
        l.args_at = 16, l.max_args = 6, size = 64;
    } else if (cat == "raw_syscalls" && ev == "sys_exit") {
        l.fields.push_back({"id", {8, 8}});
        l.fields.push_back({"ret", {16, 8}});
        size = 24;
    }
    l.bytes.assign(size, 0);
    l.set(4, 4, w.pid);
    if (nr >= 0) l.set(8, 4, static_cast<uint64_t>(nr));
    return l;
}

}  // namespace

Result<std::vector<uint8_t>> build_context(ProgType type, std::string_view attach, const ContextSpec& spec, const WorldOptions& w) {
    return catch_error([&]() -> std::vector<uint8_t> {
        Layout l;
        const CtxKind kind = ctx_kind(type);
        switch (kind) {
        case CtxKind::PtRegs:
        case CtxKind::PerfEventData:
            l.bytes.assign(kind == CtxKind::PtRegs ? kPtRegsSize : kPtRegsSize + 16, 0);
            for (std::size_t i = 0; i < kRegs.size(); ++i) l.fields.push_back({std::string(kRegs[i]), {i * 8, 8}});
            if (kind == CtxKind::PerfEventData) {   // struct bpf_perf_event_data
                l.fields.push_back({"sample_period", {kPtRegsSize, 8}});
                l.fields.push_back({"addr", {kPtRegsSize + 8, 8}});
            }
            break;
        case CtxKind::U64Args:
            l.max_args = kMaxFuncArgs;
            l.bytes.assign(8 * std::max<std::size_t>(spec.args.empty() ? kMaxFuncArgs : spec.args.size(), 1), 0);
            for (std::size_t i = 0; i < l.bytes.size() / 8; ++i) l.fields.push_back({fmt::format("arg{}", i), {i * 8, 8}});
            break;
        case CtxKind::TracepointRecord: l = tracepoint_layout(attach, w); break;
        default: break;
        }
        // Raw bytes first (they may extend the context), then arguments, then named fields.
        if (!spec.raw.empty()) {
            if (spec.raw.size() > l.bytes.size()) l.bytes.resize(spec.raw.size(), 0);
            std::memcpy(l.bytes.data(), spec.raw.data(), spec.raw.size());
        }
        if (!spec.args.empty()) {
            if (kind == CtxKind::PtRegs || kind == CtxKind::PerfEventData) {
                if (spec.args.size() > kArgRegs.size()) usage(fmt::format("{} takes at most {} arguments in registers, not {}", to_string(type), kArgRegs.size(), spec.args.size()));
                for (std::size_t i = 0; i < spec.args.size(); ++i) l.set(*reg_offset(kArgRegs[i]), 8, spec.args[i]);
            } else if (l.max_args) {
                if (spec.args.size() > l.max_args) usage(fmt::format("'{}' takes at most {} arguments, not {}", attach, l.max_args, spec.args.size()));
                for (std::size_t i = 0; i < spec.args.size(); ++i) l.set(l.args_at + 8 * i, 8, spec.args[i]);
            } else {
                usage(fmt::format("a {} program{} has no positional arguments; give fields or raw bytes", to_string(type),
                                  attach.empty() ? "" : fmt::format(" at '{}'", attach)));
            }
        }
        for (const auto& [name, value] : spec.fields) {
            std::size_t off = 0, size = 0;
            if (auto colon = name.find(':'); colon != std::string::npos && !name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
                // "OFFSET:SIZE" places a value anywhere.
                char* end = nullptr;
                off = std::strtoull(name.c_str(), &end, 0);
                size = std::strtoull(name.c_str() + colon + 1, &end, 0);
                if (*end || (size != 1 && size != 2 && size != 4 && size != 8))
                    usage(fmt::format("context field '{}': write OFFSET:SIZE with a size of 1, 2, 4 or 8", name));
                if (off + size > l.bytes.size()) l.bytes.resize(off + size, 0);
            } else if (const auto* f = l.field(name)) {
                off = f->first, size = f->second;
            } else if (auto r = (kind == CtxKind::PtRegs || kind == CtxKind::PerfEventData) ? reg_offset(name) : std::nullopt) {
                off = *r, size = 8;
            } else {
                std::string known;
                for (const auto& kv : l.fields) known += (known.empty() ? "" : ", ") + kv.first;
                usage(fmt::format("the context of a {} program{} has no field '{}'{}", to_string(type),
                                  attach.empty() ? "" : fmt::format(" at '{}'", attach), name,
                                  known.empty() ? "; use OFFSET:SIZE=VALUE" : "; it has " + known + " (or OFFSET:SIZE)"));
            }
            if (off + size > l.bytes.size()) usage(fmt::format("context field '{}' is past the end of the context", name));
            l.set(off, size, value);
        }
        if (l.bytes.empty()) l.bytes.assign(64, 0);
        return std::move(l.bytes);
    });
}

}  // namespace bpfsim::harness
