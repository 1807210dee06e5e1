// Contexts of tracing programs: pt_regs, u64 argument arrays, tracepoint records and
// bpf_perf_event_data, laid out as on x86-64 Linux.
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <algorithm>
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

// Facts of Linux 6.18 tracepoints BTF does not hold (scripts/gen_tracepoints.py).
struct SyscallInfo {
    std::string_view name;
    int nr;
    std::string_view args;   // "dfd filename* flags mode": '*' marks a user string
};
constexpr SyscallInfo kSyscalls[] = {
#define TP_CLASS(cat, ev, cls)
#define TP_SYSCALL(name, nr, args) {#name, nr, args},
#include "harness/tracepoints.def"
#undef TP_SYSCALL
#undef TP_CLASS
};
struct EventClass {
    std::string_view category, event, cls;
};
constexpr EventClass kClasses[] = {
#define TP_CLASS(cat, ev, cls) {#cat, #ev, #cls},
#define TP_SYSCALL(name, nr, args)
#include "harness/tracepoints.def"
#undef TP_SYSCALL
#undef TP_CLASS
};

const SyscallInfo* find_syscall(std::string_view name) {
    for (const auto& s : kSyscalls)
        if (s.name == name) return &s;
    return nullptr;
}

// How a text field is stored.
enum class TextKind : uint8_t {
    CharArray,   // char comm[16]: copied in, cut to the array's size with a NUL
    DataLoc,     // u32 __data_loc_NAME: (length << 16) | offset of the text from the record start
    RelLoc,      // u32 __rel_loc_NAME: the same with the offset from the end of the u32
    UserPtr,     // a syscall argument: a pointer to a copy in user memory
};
struct TextField {
    std::string name;
    std::size_t off, size;
    TextKind kind;
};

struct Layout {
    std::vector<uint8_t> bytes;
    std::vector<std::pair<std::string, std::pair<std::size_t, std::size_t>>> fields;   // name -> (offset, size)
    std::vector<TextField> texts;
    std::size_t args_at = 0, max_args = 0;   // where positional arguments go, 8 bytes each
    std::string described_by;                // "struct trace_event_raw_sched_switch", for messages

    void set(std::size_t off, std::size_t size, uint64_t v) { std::memcpy(bytes.data() + off, &v, size); }
    const std::pair<std::size_t, std::size_t>* field(std::string_view n) const {
        for (const auto& [name, f] : fields)
            if (name == n) return &f;
        return nullptr;
    }
};

[[noreturn]] void usage(std::string_view what) { throw Error(ErrorCode::Usage, std::string(what)); }

// The members of a trace_event_raw_* struct as fields: integers and pointers by name, array
// elements as NAME[i], char arrays and __data_loc/__rel_loc members as text.
void btf_record_fields(Layout& l, const btf::Btf& b, uint32_t struct_id) {
    const btf::Type st = b.type(struct_id);
    for (uint32_t i = 0; i < st.vlen(); ++i) {
        const btf::Member m = st.member(i);
        if (m.name.empty() || m.name == "ent" || m.name == "__data" || m.bitfield_size || m.bit_offset % 8) continue;
        const std::size_t off = m.bit_offset / 8;
        const uint32_t t = b.resolve(m.type);
        const btf::Type mt = b.type(t);
        std::string_view name = m.name;
        if (name.starts_with("__data_loc_")) {
            l.texts.push_back({std::string(name.substr(11)), off, 4, TextKind::DataLoc});
        } else if (name.starts_with("__rel_loc_")) {
            l.texts.push_back({std::string(name.substr(10)), off, 4, TextKind::RelLoc});
        }
        if (mt.kind() == btf::Kind::Array) {
            const btf::ArrayInfo a = mt.array();
            const btf::Type elem = b.type(b.resolve(a.type));
            const uint64_t esize = b.size_of(a.type);
            if (elem.kind() == btf::Kind::Int && esize == 1 && (elem.int_encoding() & btf::kIntChar || elem.name() == "char"))
                l.texts.push_back({std::string(name), off, a.nelems, TextKind::CharArray});
            if (esize == 1 || esize == 2 || esize == 4 || esize == 8)
                for (uint32_t k = 0; k < a.nelems && k < 64; ++k)
                    l.fields.push_back({fmt::format("{}[{}]", name, k), {off + k * esize, esize}});
            continue;
        }
        const uint64_t size = b.size_of(m.type);
        if (size == 1 || size == 2 || size == 4 || size == 8) l.fields.push_back({std::string(name), {off, size}});
    }
}

Layout tracepoint_layout(std::string_view attach, const WorldOptions& w) {
    Layout l;
    // struct trace_entry: the header every record starts with.
    l.fields = {{"common_type", {0, 2}}, {"common_flags", {2, 1}}, {"common_preempt_count", {3, 1}}, {"common_pid", {4, 4}}};
    std::size_t size = 8;
    const std::size_t slash = attach.find('/');
    const std::string_view cat = attach.substr(0, slash), ev = slash == std::string_view::npos ? "" : attach.substr(slash + 1);
    int64_t nr = -1;
    if (cat == "syscalls" && ev.starts_with("sys_enter_")) {
        // struct syscall_trace_enter: header, int __syscall_nr, unsigned long args[6].
        l.fields.push_back({"__syscall_nr", {8, 4}});
        std::size_t nargs = 6;
        if (const SyscallInfo* sc = find_syscall(ev.substr(10))) {
            nr = sc->nr;
            nargs = 0;
            for (std::string_view rest = sc->args; !rest.empty();) {
                const std::size_t sp = rest.find(' ');
                std::string_view a = rest.substr(0, sp);
                rest = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
                const std::size_t off = 16 + 8 * nargs++;
                if (a.ends_with('*')) {
                    a.remove_suffix(1);
                    l.texts.push_back({std::string(a), off, 8, TextKind::UserPtr});
                }
                l.fields.push_back({std::string(a), {off, 8}});
            }
        }
        for (std::size_t i = 0; i < 6; ++i) l.fields.push_back({fmt::format("arg{}", i), {16 + 8 * i, 8}});
        l.args_at = 16, l.max_args = nargs;
        size = 16 + 8 * std::max<std::size_t>(nargs, 1);
        l.described_by = "syscalls/" + std::string(ev) + " (struct syscall_trace_enter)";
    } else if (cat == "syscalls" && ev.starts_with("sys_exit_")) {
        if (const SyscallInfo* sc = find_syscall(ev.substr(9))) nr = sc->nr;
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
    } else if (w.kernel_btf && !ev.empty()) {
        // The record is struct trace_event_raw_EVENT, or the struct of the event's class.
        const btf::Btf& b = *w.kernel_btf;
        std::string cls(ev);
        for (const auto& c : kClasses)
            if (c.category == cat && c.event == ev) cls = c.cls;
        const std::string type = "trace_event_raw_" + cls;
        if (auto id = b.find(type, btf::Kind::Struct)) {
            btf_record_fields(l, b, *id);
            size = std::max<std::size_t>(size, b.type(*id).size());
            l.described_by = "struct " + type + " of " + b.name();
        } else {
            l.described_by = fmt::format("no struct {} in {}", type, b.name());
        }
    }
    l.bytes.assign(size, 0);
    l.set(4, 4, w.pid);
    if (nr >= 0) l.set(8, 4, static_cast<uint64_t>(nr));
    return l;
}

// Stores a text field's value.
void set_text(Layout& l, const TextField& f, std::string_view value, KernelMemory* mem) {
    switch (f.kind) {
    case TextKind::CharArray: {
        const std::size_t n = std::min(value.size(), f.size ? f.size - 1 : 0);
        std::memset(l.bytes.data() + f.off, 0, f.size);
        std::memcpy(l.bytes.data() + f.off, value.data(), n);
        break;
    }
    case TextKind::DataLoc:
    case TextKind::RelLoc: {
        // Appended after what the record holds so far, NUL included, as the kernel's
        // __assign_str does; the u32 says where.
        const std::size_t at = l.bytes.size(), len = value.size() + 1;
        if (len > 0xffff) usage(fmt::format("context field '{}': a string of {} bytes does not fit a __data_loc", f.name, len));
        l.bytes.resize(at + len, 0);
        std::memcpy(l.bytes.data() + at, value.data(), value.size());
        const std::size_t from = f.kind == TextKind::DataLoc ? at : at - (f.off + 4);
        l.set(f.off, 4, (uint64_t(len) << 16) | from);
        break;
    }
    case TextKind::UserPtr:
        if (!mem) usage(fmt::format("context field '{}' points to a user string, which needs simulated memory: give the world a kernel BTF", f.name));
        l.set(f.off, 8, mem->string(value, KernelMemory::Space::User));
        break;
    }
}

// The fields of a layout for error messages: arrays once as NAME[N] (their elements are
// NAME[0] ... NAME[N-1]), text fields that are not also numbers marked "(text)".
std::string field_list(const Layout& l) {
    std::vector<std::pair<std::string, std::size_t>> names;   // name, elements (0: not an array)
    for (const auto& kv : l.fields) {
        const std::string& n = kv.first;
        const auto bracket = n.find('[');
        if (bracket == std::string::npos || n.back() != ']') {
            names.emplace_back(n, 0);
            continue;
        }
        const std::string base = n.substr(0, bracket);
        if (!names.empty() && names.back().first == base && names.back().second) ++names.back().second;
        else names.emplace_back(base, 1);
    }
    std::string out;
    for (const auto& [n, count] : names) out += (out.empty() ? "" : ", ") + (count ? fmt::format("{}[{}]", n, count) : n);
    for (const auto& t : l.texts)
        if (std::none_of(names.begin(), names.end(), [&](const auto& e) { return e.first == t.name; }))
            out += (out.empty() ? "" : ", ") + t.name + " (text)";
    return out;
}

}  // namespace

Result<std::vector<uint8_t>> build_context(ProgType type, std::string_view attach, const ContextSpec& spec, const WorldOptions& w,
                                           KernelMemory* mem) {
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
                const std::string known = field_list(l);
                usage(fmt::format("the context of a {} program{} has no field '{}'{}{}", to_string(type),
                                  attach.empty() ? "" : fmt::format(" at '{}'", attach), name,
                                  known.empty() ? "; use OFFSET:SIZE=VALUE" : "; it has " + known + " (or OFFSET:SIZE)",
                                  l.described_by.empty() ? "" : " [" + l.described_by + "]"));
            }
            if (off + size > l.bytes.size()) usage(fmt::format("context field '{}' is past the end of the context", name));
            l.set(off, size, value);
        }
        for (const auto& [name, value] : spec.strings) {
            const auto it = std::find_if(l.texts.begin(), l.texts.end(), [&name = name](const TextField& t) { return t.name == name; });
            if (it == l.texts.end() && (l.field(name) || (ctx_kind(type) == CtxKind::PtRegs && reg_offset(name))))
                usage(fmt::format("context field '{}' takes a number, not '{}'", name, value));
            if (it == l.texts.end()) {
                std::string known;
                for (const auto& t : l.texts) known += (known.empty() ? "" : ", ") + t.name;
                usage(fmt::format("the context of a {} program{} has no text field '{}'{}", to_string(type),
                                  attach.empty() ? "" : fmt::format(" at '{}'", attach), name,
                                  known.empty() ? "" : "; its text fields are " + known));
            }
            set_text(l, *it, value, mem);
        }
        if (l.bytes.empty()) l.bytes.assign(64, 0);
        return std::move(l.bytes);
    });
}

}  // namespace bpfsim::harness
