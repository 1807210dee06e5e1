// The verifier model: check_cfg, then do_check over every path with state pruning.
// See verifier/verifier.hpp for what is modelled.
#include "verifier/verifier.hpp"

#include "verifier/ctx_access.hpp"
#include "verifier/helper_access.hpp"
#include "verifier/state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace bpfsim::verifier {

namespace {

using harness::MapDef;
using harness::ProgType;
using vm::ArgKind;
using vm::Insn;
using vm::RetKind;

constexpr int64_t kMaxVarOff = 1 << 29;      // BPF_MAX_VAR_OFF
constexpr uint64_t kMaxVarSiz = 1 << 29;     // BPF_MAX_VAR_SIZ
constexpr int kMaxStack = 512;
constexpr std::size_t kMaxFrames = 8;
constexpr std::size_t kMaxStatesPerPc = 64;          // explored states kept per instruction
constexpr std::size_t kMaxInProgressPerPc = 2048;    // with the states of a loop still being walked

// A hash of a state as the exact comparison sees it (scalar ids left out).
uint64_t exact_hash(const VState& st) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; h ^= h >> 29; };
    auto reg = [&](const Reg& r) {
        mix(static_cast<uint64_t>(r.type) | (uint64_t{r.maybe_null} << 8) | (uint64_t{r.rdonly} << 9));
        if (r.type == RegType::NotInit) return;
        mix(static_cast<uint32_t>(r.off) | (uint64_t{static_cast<uint32_t>(r.range)} << 32));
        mix(static_cast<uint32_t>(r.map) | (uint64_t{r.frameno} << 32));
        mix(r.s.umin); mix(r.s.umax); mix(static_cast<uint64_t>(r.s.smin)); mix(static_cast<uint64_t>(r.s.smax));
        mix(r.s.var_off.value); mix(r.s.var_off.mask);
    };
    for (const auto& f : st.frames) {
        mix(f.callsite);
        for (const auto& r : f.regs) reg(r);
        for (std::size_t spi = 0; spi < f.stack.size(); ++spi) {
            const StackSlot& sl = f.stack[spi];
            uint64_t t = 0;
            for (auto b : sl.type) t = (t << 8) | b;
            if (t == 0) continue;   // an all-INVALID slot equals a missing one
            mix(spi);
            mix(t);
            if (sl.type[7] == kSpill) reg(sl.spilled);
        }
    }
    mix(st.refs.size());
    return h;
}

struct VerifyError {
    std::size_t pc;
    std::string msg;
};

const char* alu_string(uint8_t op) {
    static const char* const names[16] = {"+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian", "?", "?"};
    return names[(op >> 4) & 15];
}

std::string type_str(const Reg& r, const std::vector<MapDef>* = nullptr) {
    std::string s;
    switch (r.type) {
    case RegType::NotInit: return "?";
    case RegType::Scalar: return "scalar";
    case RegType::Ctx: s = "ctx"; break;
    case RegType::Stack: s = "fp"; break;
    case RegType::ConstMap: s = "map_ptr"; break;
    case RegType::MapValue: s = "map_value"; break;
    case RegType::MapKey: s = "map_key"; break;
    case RegType::Packet: s = "pkt"; break;
    case RegType::PacketMeta: s = "pkt_meta"; break;
    case RegType::PacketEnd: s = "pkt_end"; break;
    case RegType::FlowKeys: s = "flow_keys"; break;
    case RegType::Mem: s = r.ref_obj_id ? "ringbuf_mem" : "mem"; break;
    case RegType::BtfId: s = "ptr_"; break;
    case RegType::Func: s = "func"; break;
    case RegType::SockCommon: s = "sock_common"; break;
    case RegType::Sock: s = "sock"; break;
    case RegType::TcpSock: s = "tcp_sock"; break;
    }
    if (r.rdonly) s = "rdonly_" + s;
    if (r.maybe_null) s += r.type == RegType::BtfId ? "or_null_" : "_or_null";
    return s;
}

Reg scalar_reg(const Scalar& s) {
    Reg r;
    r.type = RegType::Scalar;
    r.s = s;
    return r;
}
Reg unknown_reg() { return scalar_reg(Scalar::unknown()); }
Reg ptr_reg(RegType t) {
    Reg r;
    r.type = t;
    r.s = Scalar::known(0);
    return r;
}

// Registers read before written along some path from each pc (r0..r9), for pruning.
struct Liveness {
    std::vector<uint16_t> live_in;
};

class Checker {
public:
    Checker(const std::vector<Insn>& insns, const vm::Program* prog, ProgType type, std::string_view attach,
            const std::vector<MapDef>& maps, const VerifyOptions& opts)
        // a program of unknown type is loaded as a socket filter (as `bpfsim kernel-verify` does)
        : insns_(insns), prog_(prog), type_(type == ProgType::Unspec ? ProgType::SocketFilter : type), attach_(attach), maps_(maps), opts_(opts), helpers_(harness::kernel_helpers()) {
        const std::size_t n = maps_.size();
        inner_.assign(n, -1);
        for (std::size_t i = 0; i < n; ++i)
            if (maps_[i].inner) {
                inner_[i] = static_cast<int>(maps_.size());
                maps_.push_back(*maps_[i].inner);
            }
        inner_.resize(maps_.size(), -1);
    }
    std::vector<int> inner_;
    // The program's section (helper sets per expected attach type), license, kfunc names by pc.
    std::string section_;
    bool gpl_ = true;
    std::map<std::size_t, std::string> kfunc_names_;

    Verdict run();

private:
    // ── inputs ──
    const std::vector<Insn>& insns_;
    const vm::Program* prog_;
    ProgType type_;
    std::string attach_;
    std::vector<MapDef> maps_;   // the object's maps, then inner maps of map-in-maps
    VerifyOptions opts_;
    vm::HelperTable helpers_;

    // ── analysis ──
    std::vector<bool> prune_point_;
    std::vector<std::size_t> subprog_starts_;
    std::vector<uint16_t> live_in_;
    std::vector<int> stack_depth_;    // per pc of a function start: bytes used

    // ── precision (a conservative stand-in for the kernel's mark_chain_precision) ──
    // A scalar register matters at a prune point only when its value may reach a use the
    // verdict depends on: pointer arithmetic, helper arguments, branches decided by value,
    // exit codes, stores whose slot type depends on the value. Those uses are recorded as
    // they are met (demand_), then propagated backwards over the control-flow graph through
    // register moves, ALU operands, spills and fills of fp-relative slots (need_in_). The
    // propagation only grows, and a state is only pruned against once every path from it
    // has ended, so every use its continuation met is in the sets by then. Scalars outside
    // the set compare equal to anything (regsafe: !rold->precise).
    struct Need {
        uint16_t regs = 0;    // r0..r9
        uint64_t slots = 0;   // fp-8 .. fp-512 of the function's own frame
        bool any = false;     // every slot (a fill through a stack pointer other than r10, a call)
        uint64_t rd = 0;      // slots read later (the kernel's REG_LIVE_READ on the stack)
        bool rd_any = false;  // every slot may be read (through a pointer, by a helper or a callee)
        bool operator==(const Need&) const = default;
    };
    std::vector<Need> need_in_;
    std::vector<uint16_t> demand_, link_;
    std::vector<uint8_t> via_ptr_load_, via_ptr_store_, call_reads_stack_;
    std::vector<uint64_t> via_ptr_slots_, call_slots_;   // slots of the own frame a load through a pointer read
    std::vector<std::vector<std::size_t>> succs_, preds_;
    Need transfer(std::size_t pc, const Need& out) const;
    void propagate(std::size_t pc);
    void demand(std::size_t pc, unsigned r) {
        if (r >= 10 || (demand_[pc] & (1u << r))) return;
        demand_[pc] |= static_cast<uint16_t>(1u << r);
        propagate(pc);
    }
    void add_link(std::size_t pc, uint16_t m) {
        if ((link_[pc] | m) == link_[pc]) return;
        link_[pc] |= m;
        propagate(pc);
    }
    // facts met on a path: 0 a load, 1 a store through a stack pointer other than r10 (at an
    // unknown offset), 2 a call whose callee or callback may read this frame's stack
    void mark_via_ptr(std::size_t pc, int store) {
        auto& v = store == 2 ? call_reads_stack_ : store ? via_ptr_store_ : via_ptr_load_;
        if (v[pc]) return;
        v[pc] = 1;
        propagate(pc);
    }

    struct Node {
        VState st;
        int branches = 0;
        int parent = -1;
        uint64_t hash = 0;   // of what the exact comparison looks at (loop detection)
    };
    std::deque<Node> nodes_;
    std::vector<std::vector<int>> at_pc_;

    struct Path {
        VState st;
        std::size_t pc = 0;
        std::size_t from = 0;
        int last = -1;
        std::size_t log_pos = 0;
        bool fresh = true;
    };
    std::vector<Path> stack_;

    uint32_t id_gen_ = 0;
    std::size_t processed_ = 0;
    std::size_t total_states_ = 0, peak_states_ = 0, cur_states_ = 0, max_per_insn_ = 0;
    std::string log_;

    // current path
    VState* st_ = nullptr;
    std::size_t pc_ = 0;

    FuncState& cur() { return st_->frames.back(); }
    Reg& reg(unsigned r) { return cur().regs[r]; }

    [[noreturn]] void fail(std::string msg) { throw VerifyError{pc_, std::move(msg)}; }

    void check_cfg();
    void compute_liveness();
    void explore(Path p);
    bool step(Path& p);   // false: the path ended
    void end_path(Path& p);
    bool visit_state(Path& p);

    void check_reg_read(unsigned r) {
        if (r >= 11) fail(fmt::format("R{} is invalid", r));
        if (reg(r).type == RegType::NotInit) fail(fmt::format("R{} !read_ok", r));
    }
    void check_reg_write(unsigned r) {
        if (r >= 11) fail(fmt::format("R{} is invalid", r));
        if (r == 10) fail("frame pointer is read only");
    }

    void do_alu(const Insn& in);
    void check_alu_fields(const Insn& in);
    void ptr_arith(unsigned dst, const Reg& ptr, const Reg& off, uint8_t op, bool alu64, bool off_is_dst);
    void do_jmp(const Insn& in, Path& p, std::size_t& next);
    void do_ld(const Insn& in);
    void do_mem(const Insn& in);
    void do_call(const Insn& in, Path& p, std::size_t& next);
    bool do_exit(Path& p, std::size_t& next);

    // memory
    Reg mem_access(unsigned regno, int32_t off, unsigned size, bool write, const Reg* value, bool sx, bool atomic, bool st_imm = false, int32_t imm = 0);
    Reg stack_access(unsigned regno, const Reg& ptr, int32_t off, unsigned size, bool write, const Reg* value, bool st_imm, int32_t imm, bool helper);
    void region_access(unsigned regno, const Reg& ptr, int32_t off, int64_t size, int64_t mem_size, const char* what, bool zero_ok);
    void packet_access(unsigned regno, const Reg& ptr, int32_t off, int64_t size, bool zero_ok);
    void helper_mem(unsigned regno, uint64_t size, bool write, bool zero_ok);
    FuncState& frame_of(const Reg& r) { return st_->frames.at(r.frameno); }

    void mark_null(uint32_t id, bool is_null);
    void sync_linked(const Reg& r);
    void release_ref(uint32_t ref);

    bool regsafe(const Reg& o, const Reg& c, bool exact) const;
    bool states_equal(const VState& o, const VState& c, std::size_t pc, bool exact) const;
    std::string reg_str(const Reg& r) const;
    std::string state_str(const VState& s) const;
    void log_insn(std::size_t pc);
};

// ───────────────────────────── check_cfg ─────────────────────────────

bool is_cond_jmp(const Insn& in) {
    const uint8_t cls = vm::code::cls(in.code);
    if (cls != vm::code::JMP && cls != vm::code::JMP32) return false;
    const uint8_t op = in.code & 0xf0;
    return op != 0x00 && op != 0x80 && op != 0x90 && op != 0xe0;   // ja, call, exit, may_goto handled apart
}
bool is_ja(const Insn& in) { return (in.code == 0x05) || (in.code == 0x06); }
bool is_exit(const Insn& in) { return in.code == 0x95; }
bool is_call(const Insn& in) { return in.code == 0x85; }
bool is_lddw(const Insn& in) { return in.code == 0x18; }
bool is_may_goto(const Insn& in) { return in.code == 0xe5; }

std::size_t jump_target(const Insn& in, std::size_t pc) {
    const int64_t d = in.code == 0x06 ? in.imm : in.off;
    return static_cast<std::size_t>(static_cast<int64_t>(pc) + d + 1);
}

void Checker::check_cfg() {
    const std::size_t n = insns_.size();
    prune_point_.assign(n + 1, false);
    std::set<std::size_t> starts{0};
    for (std::size_t pc = 0; pc < n; ++pc) {
        const Insn& in = insns_[pc];
        pc_ = pc;
        if (is_lddw(in)) {
            if (pc + 1 >= n) fail("invalid bpf_ld_imm64 insn");
            if (in.src == 4) {
                const int64_t t = static_cast<int64_t>(pc) + in.imm + 1;
                if (t < 0 || t >= static_cast<int64_t>(n)) fail(fmt::format("jump out of range from insn {} to {}", pc, t));
                starts.insert(static_cast<std::size_t>(t));
            }
            ++pc;
            continue;
        }
        if (is_call(in) && in.src == 1) {
            const int64_t t = static_cast<int64_t>(pc) + in.imm + 1;
            if (t < 0 || t >= static_cast<int64_t>(n)) fail(fmt::format("jump out of range from insn {} to {}", pc, t));
            starts.insert(static_cast<std::size_t>(t));
        }
    }
    subprog_starts_.assign(starts.begin(), starts.end());
    // check_subprogs: jumps stay within their function; each function ends in exit or ja.
    for (std::size_t i = 0; i < subprog_starts_.size(); ++i) {
        const std::size_t lo = subprog_starts_[i], hi = i + 1 < subprog_starts_.size() ? subprog_starts_[i + 1] : n;
        for (std::size_t pc = lo; pc < hi; ++pc) {
            const Insn& in = insns_[pc];
            pc_ = pc;
            if (is_lddw(in)) { ++pc; continue; }
            if (is_ja(in) || is_cond_jmp(in) || is_may_goto(in)) {
                const int64_t t = static_cast<int64_t>(pc) + (in.code == 0x06 ? in.imm : in.off) + 1;
                if (t < static_cast<int64_t>(lo) || t >= static_cast<int64_t>(hi))
                    fail(fmt::format("jump out of range from insn {} to {}", pc, t));
            }
        }
        pc_ = hi - 1;
        const Insn& last = insns_[hi - 1];
        if (!is_exit(last) && !is_ja(last)) fail("last insn is not an exit or jmp");
    }
    // Reachability (DFS over the control-flow graph of every function).
    std::vector<bool> seen(n, false);
    std::vector<std::size_t> work(subprog_starts_.begin(), subprog_starts_.end());
    for (auto s : subprog_starts_) seen[s] = true;
    while (!work.empty()) {
        const std::size_t pc = work.back();
        work.pop_back();
        const Insn& in = insns_[pc];
        std::vector<std::size_t> succ;
        if (is_exit(in)) {
        } else if (is_ja(in)) {
            succ.push_back(jump_target(in, pc));
            prune_point_[jump_target(in, pc)] = true;
        } else if (is_cond_jmp(in) || is_may_goto(in)) {
            succ.push_back(pc + 1);
            succ.push_back(jump_target(in, pc));
            prune_point_[pc + 1] = true;
            prune_point_[jump_target(in, pc)] = true;
        } else if (is_lddw(in)) {
            seen[pc + 1] = true;
            succ.push_back(pc + 2);
        } else {
            if (is_call(in)) prune_point_[pc + 1] = true;
            succ.push_back(pc + 1);
        }
        for (auto s : succ) {
            if (s >= n) { pc_ = pc; fail(fmt::format("jump out of range from insn {} to {}", pc, s)); }
            if (!seen[s]) { seen[s] = true; work.push_back(s); }
        }
    }
    for (std::size_t pc = 0; pc < n; ++pc)
        if (!seen[pc]) { pc_ = pc; fail(fmt::format("unreachable insn {}", pc)); }
}

// Registers each instruction reads and writes (r0..r9), for the static liveness.
void Checker::compute_liveness() {
    const std::size_t n = insns_.size();
    std::vector<uint16_t> use(n, 0), def(n, 0);
    std::vector<std::vector<std::size_t>> succ(n);
    auto bit = [](unsigned r) -> uint16_t { return r < 10 ? static_cast<uint16_t>(1u << r) : 0; };
    for (std::size_t pc = 0; pc < n; ++pc) {
        const Insn& in = insns_[pc];
        const uint8_t cls = vm::code::cls(in.code);
        if (pc > 0 && is_lddw(insns_[pc - 1])) continue;
        if (is_lddw(in)) { def[pc] = bit(in.dst); succ[pc] = {pc + 2}; continue; }
        switch (cls) {
        case vm::code::ALU: case vm::code::ALU64: {
            const uint8_t op = in.code & 0xf0;
            if (op != 0xb0) use[pc] |= bit(in.dst);
            if (in.code & 0x08) use[pc] |= bit(in.src);
            def[pc] |= bit(in.dst);
            succ[pc] = {pc + 1};
            break;
        }
        case vm::code::LDX: use[pc] = bit(in.src); def[pc] = bit(in.dst); succ[pc] = {pc + 1}; break;
        case vm::code::ST: use[pc] = bit(in.dst); succ[pc] = {pc + 1}; break;
        case vm::code::STX: use[pc] = bit(in.dst) | bit(in.src); if ((in.code & 0xe0) == 0xc0) def[pc] = bit(in.src) | bit(0), use[pc] |= bit(0); succ[pc] = {pc + 1}; break;
        case vm::code::LD: use[pc] = bit(6) | ((in.code & 0xe0) == 0x40 ? bit(in.src) : 0); def[pc] = 0x3f; succ[pc] = {pc + 1}; break;
        default:
            if (is_exit(in)) { use[pc] = bit(0); }
            else if (is_call(in)) { use[pc] = 0x3e; def[pc] = 0x3f; succ[pc] = {pc + 1}; }
            else if (in.code == 0x8d) { use[pc] = 0x3e | bit(in.dst); def[pc] = 0x3f; succ[pc] = {pc + 1}; }
            else if (is_ja(in)) { succ[pc] = {jump_target(in, pc)}; }
            else { use[pc] = bit(in.dst) | ((in.code & 0x08) ? bit(in.src) : 0); succ[pc] = {pc + 1, jump_target(in, pc)}; }
        }
    }
    live_in_.assign(n + 2, 0);
    succs_ = succ;
    preds_.assign(n, {});
    for (std::size_t i = 0; i < n; ++i)
        for (auto t : succ[i]) if (t < n) preds_[t].push_back(i);
    need_in_.assign(n + 1, Need{});
    demand_.assign(n + 1, 0);
    link_.assign(n + 1, 0);
    via_ptr_load_.assign(n + 1, 0);
    via_ptr_store_.assign(n + 1, 0);
    call_reads_stack_.assign(n + 1, 0);
    via_ptr_slots_.assign(n + 1, 0);
    call_slots_.assign(n + 1, 0);
    for (std::size_t i = n; i-- > 0;) if (is_exit(insns_[i])) propagate(i);
    bool changed = true;
    for (int iter = 0; changed && iter < 10000; ++iter) {
        changed = false;
        for (std::size_t i = n; i-- > 0;) {
            uint16_t out = 0;
            for (auto s : succ[i]) if (s < n) out |= live_in_[s];
            const uint16_t in = use[i] | (out & ~def[i]);
            if (in != live_in_[i]) { live_in_[i] = in; changed = true; }
        }
    }
}

uint64_t slot_bits(int64_t off, unsigned size) {
    uint64_t m = 0;
    for (int64_t a = off; a < off + static_cast<int64_t>(size); ++a)
        if (a < 0 && a >= -512) m |= uint64_t{1} << ((-a - 1) / 8);
    return m;
}

Checker::Need Checker::transfer(std::size_t pc, const Need& out) const {
    const Insn& in = insns_[pc];
    auto bit = [](unsigned r) -> uint16_t { return r < 10 ? static_cast<uint16_t>(1u << r) : 0; };
    Need n = out;
    const uint8_t cls = vm::code::cls(in.code);
    switch (cls) {
    case vm::code::ALU: case vm::code::ALU64: {
        const uint8_t op = in.code & 0xf0;
        const bool x = in.code & 0x08;
        if (op == 0xb0) {
            if (n.regs & bit(in.dst)) { n.regs &= static_cast<uint16_t>(~bit(in.dst)); if (x) n.regs |= bit(in.src); }
        } else if (op != 0x80 && op != 0xd0 && x && (n.regs & bit(in.dst))) {
            n.regs |= bit(in.src);
        }
        break;
    }
    case vm::code::LDX: {
        const unsigned size = vm::code::mem_size(in.code);
        if (n.regs & bit(in.dst)) {
            n.regs &= static_cast<uint16_t>(~bit(in.dst));
            if (in.src == 10) n.slots |= slot_bits(in.off, size);
            else if (via_ptr_load_[pc]) n.any = true;
            else n.slots |= via_ptr_slots_[pc];
        }
        if (in.src == 10) n.rd |= slot_bits(in.off, size);
        else if (via_ptr_load_[pc]) n.rd_any = true;
        else n.rd |= via_ptr_slots_[pc];
        break;
    }
    case vm::code::ST: {
        const unsigned size = vm::code::mem_size(in.code);
        if (in.dst == 10 && size == 8 && (in.off % 8) == 0 && !n.any) n.slots &= ~slot_bits(in.off, size);
        if (in.dst == 10 && size == 8 && (in.off % 8) == 0) n.rd &= ~slot_bits(in.off, size);
        break;
    }
    case vm::code::STX: {
        const unsigned size = vm::code::mem_size(in.code);
        if ((in.code & 0xe0) == 0xc0) {   // atomics: the operand, and what a fetch reads
            n.regs |= bit(in.src) | bit(0);
            if (in.dst == 10) n.slots |= slot_bits(in.off, size), n.rd |= slot_bits(in.off, size);
            else if (via_ptr_store_[pc] || via_ptr_load_[pc]) n.any = true, n.rd_any = true;   // on the stack through a pointer
        } else if (in.dst == 10) {
            const uint64_t sb = slot_bits(in.off, size);
            if (n.any || (n.slots & sb)) n.regs |= bit(in.src);
            if (size == 8 && (in.off % 8) == 0 && !n.any) n.slots &= ~sb;
            if (size == 8 && (in.off % 8) == 0) n.rd &= ~sb;
        } else if (via_ptr_store_[pc]) {
            n.regs |= bit(in.src);
        }
        break;
    }
    case vm::code::LD:
        if (is_lddw(in)) n.regs &= static_cast<uint16_t>(~bit(in.dst));
        else n.regs &= static_cast<uint16_t>(~0x3fu);
        break;
    default:
        if (is_exit(in)) {
            n = Need{};
            n.regs = 1;
        } else if (is_call(in) && in.src == 1) {
            // the arguments; the caller's slots only when a pointer to them is passed
            n.regs = static_cast<uint16_t>((n.regs & 0x3c0) | 0x3e);
            if (call_reads_stack_[pc]) n.any = true, n.rd_any = true;
        } else if (is_call(in) || in.code == 0x8d) {
            n.regs &= static_cast<uint16_t>(~0x3fu);
            if (call_reads_stack_[pc]) n.rd_any = true;
            n.rd |= call_slots_[pc];
        } else if (!is_ja(in)) {
            if (n.regs & link_[pc]) n.regs |= link_[pc];
        }
    }
    n.regs |= demand_[pc];
    n.regs &= 0x3ff;
    return n;
}

void Checker::propagate(std::size_t start) {
    std::vector<std::size_t> work{start};
    while (!work.empty()) {
        const std::size_t q = work.back();
        work.pop_back();
        Need out;
        for (auto t : succs_[q])
            if (t < need_in_.size()) {
                out.regs |= need_in_[t].regs;
                out.slots |= need_in_[t].slots;
                out.any |= need_in_[t].any;
                out.rd |= need_in_[t].rd;
                out.rd_any |= need_in_[t].rd_any;
            }
        Need nin = transfer(q, out);
        Need& cur = need_in_[q];
        nin.regs |= cur.regs;
        nin.slots |= cur.slots;
        nin.any |= cur.any;
        nin.rd |= cur.rd;
        nin.rd_any |= cur.rd_any;
        if (nin == cur) continue;
        cur = nin;
        for (auto pr : preds_[q]) work.push_back(pr);
    }
}

// ───────────────────────────── printing ─────────────────────────────

std::string Checker::reg_str(const Reg& r) const {
    if (r.type == RegType::Scalar) return r.s.str();
    std::string s = type_str(r);
    std::vector<std::string> parts;
    if (r.id) parts.push_back(fmt::format("id={}", r.id));
    if (r.ref_obj_id) parts.push_back(fmt::format("ref_obj_id={}", r.ref_obj_id));
    if ((r.type == RegType::MapValue || r.type == RegType::ConstMap || r.type == RegType::MapKey) && r.map >= 0 &&
        static_cast<std::size_t>(r.map) < maps_.size()) {
        const auto& m = maps_[r.map];
        parts.push_back(fmt::format("map={},ks={},vs={}", m.name.substr(0, 15), m.key_size, m.value_size));
    }
    if (r.type == RegType::Stack) return fmt::format("fp{}", r.off);
    if (r.off) parts.push_back(fmt::format("off={}", r.off));
    if (r.type == RegType::Packet || r.type == RegType::PacketMeta) parts.push_back(fmt::format("r={}", r.range));
    if (r.type == RegType::Mem) parts.push_back(fmt::format("sz={}", r.range));
    if (!r.s.is_const() || r.s.var_off.value) {
        std::string v = r.s.str();
        if (v.starts_with("scalar(")) v = v.substr(7, v.size() - 8);
        parts.push_back(v);
    }
    std::string joined;
    for (const auto& p : parts) joined += (joined.empty() ? "" : ",") + p;
    return s + "(" + joined + ")";
}

std::string Checker::state_str(const VState& s) const {
    std::string out;
    for (std::size_t f = 0; f < s.frames.size(); ++f) {
        const auto& fr = s.frames[f];
        if (f) out += fmt::format(" frame{}:", f);
        for (unsigned r = 0; r < 11; ++r)
            if (fr.regs[r].type != RegType::NotInit) out += fmt::format(" R{}={}", r, r == 10 ? "fp0" : reg_str(fr.regs[r]));
        for (std::size_t spi = 0; spi < fr.stack.size(); ++spi) {
            const auto& sl = fr.stack[spi];
            std::string t;
            bool any = false;
            for (int i = 7; i >= 0; --i) { t += "?mzs"[sl.type[i]]; any |= sl.type[i] != kInvalid; }
            if (!any) continue;
            if (sl.type[7] == kSpill) out += fmt::format(" fp-{}={}", (spi + 1) * 8, reg_str(sl.spilled));
            else out += fmt::format(" fp-{}={}", (spi + 1) * 8, t);
        }
    }
    return out;
}

void Checker::log_insn(std::size_t pc) {
    if (opts_.log_level == 0) return;
    if (prog_) {
        // "; source line" when it changes, as verbose_linfo
        for (const auto& l : prog_->lines)
            if (l.pc == pc) { log_ += fmt::format("; {} @ {}:{}\n", l.text, l.file, l.line); break; }
    }
    std::string d = vm::disassemble(insns_, pc);
    log_ += fmt::format("{}: ({:02x}) {}", pc, insns_[pc].code, d);
}

// ───────────────────────────── pruning ─────────────────────────────

bool range_within(const Scalar& o, const Scalar& c) {
    return o.umin <= c.umin && o.umax >= c.umax && o.smin <= c.smin && o.smax >= c.smax && o.u32_min <= c.u32_min &&
           o.u32_max >= c.u32_max && o.s32_min <= c.s32_min && o.s32_max >= c.s32_max;
}

bool Checker::regsafe(const Reg& o, const Reg& c, bool exact) const {
    if (exact) {
        Reg a = o, b = c;
        a.s.id = b.s.id = 0;
        return a == b;
    }
    if (o.type == RegType::NotInit) return true;
    if (o.type != c.type || o.maybe_null != c.maybe_null) return false;
    if (o.type == RegType::Scalar) return range_within(o.s, c.s) && o.s.var_off.in(c.s.var_off);
    if (o.off != c.off || o.map != c.map || o.frameno != c.frameno || o.btf_id != c.btf_id || o.rdonly != c.rdonly) return false;
    if ((o.id == 0) != (c.id == 0) || (o.ref_obj_id == 0) != (c.ref_obj_id == 0)) return false;
    if (o.type == RegType::Packet || o.type == RegType::PacketMeta) {
        if (o.range > c.range) return false;
    } else if (o.range != c.range) {
        return false;
    }
    return range_within(o.s, c.s) && o.s.var_off.in(c.s.var_off);
}

bool Checker::states_equal(const VState& o, const VState& c, std::size_t pc, bool exact) const {
    if (o.frames.size() != c.frames.size() || o.refs.size() != c.refs.size()) return false;
    std::vector<std::pair<uint32_t, uint32_t>> idmap;
    for (std::size_t f = 0; f < o.frames.size(); ++f) {
        const auto& of = o.frames[f];
        const auto& cf = c.frames[f];
        if (of.callsite != cf.callsite || of.subprog != cf.subprog) return false;
        const bool inner = f + 1 == o.frames.size();
        const uint16_t live = inner ? live_in_[pc] : live_in_[o.frames[f + 1].callsite + 1] | 0x3c0;
        const uint16_t precise = inner ? need_in_[pc].regs : 0x3ff;
        for (unsigned r = 0; r < 10; ++r) {
            if (!exact && !(live & (1u << r))) continue;
            const Reg& orr = of.regs[r];
            const Reg& crr = cf.regs[r];
            if (!exact && orr.type == RegType::Scalar && crr.type == RegType::Scalar) {
                if (!(precise & (1u << r))) continue;   // an imprecise scalar: any value will do
                if (inner && orr.s.id) {
                    // check_scalar_ids: registers linked in the old state stay linked in the current
                    const uint32_t cid = crr.s.id ? crr.s.id : 0x80000000u + r + 16 * static_cast<uint32_t>(f);
                    for (const auto& [oi, ci] : idmap) {
                        if (oi == orr.s.id && ci != cid) return false;
                        if (ci == cid && oi != orr.s.id) return false;
                    }
                    idmap.emplace_back(orr.s.id, cid);
                }
            }
            if (!regsafe(orr, crr, exact)) return false;
        }
        const std::size_t ns = std::max(of.stack.size(), cf.stack.size());
        static const StackSlot empty{};
        for (std::size_t spi = 0; spi < ns; ++spi) {
            const StackSlot& os = spi < of.stack.size() ? of.stack[spi] : empty;
            const StackSlot& cs = spi < cf.stack.size() ? cf.stack[spi] : empty;
            if (exact) {
                if (!(os.type == cs.type)) return false;
                if (os.type[7] == kSpill && !regsafe(os.spilled, cs.spilled, true)) return false;
                continue;
            }
            if (inner) {
                const Need& nd = need_in_[pc];
                const uint64_t b = spi < 64 ? uint64_t{1} << spi : 0;
                if (!nd.rd_any && !(nd.rd & b)) continue;   // never read again: anything will do
                // stack_slot_as_scalar: a 64-bit scalar spill, all-MISC (unknown) or all-ZERO (0)
                auto as_scalar = [](const StackSlot& sl) -> std::optional<Scalar> {
                    if (std::all_of(sl.type.begin(), sl.type.end(), [](uint8_t t) { return t == kSpill; }))
                        return sl.spilled.type == RegType::Scalar ? std::optional<Scalar>(sl.spilled.s) : std::nullopt;
                    if (std::all_of(sl.type.begin(), sl.type.end(), [](uint8_t t) { return t == kMisc; })) return Scalar::unknown();
                    if (std::all_of(sl.type.begin(), sl.type.end(), [](uint8_t t) { return t == kZero; })) return Scalar::known(0);
                    return std::nullopt;
                };
                const auto so = as_scalar(os), sc = as_scalar(cs);
                if (so && sc) {
                    if (!nd.any && !(nd.slots & b)) continue;   // an imprecise scalar
                    if (!regsafe(scalar_reg(*so), scalar_reg(*sc), false)) return false;
                    continue;
                }
            }
            for (int i = 0; i < 8; ++i) {
                const uint8_t ot = os.type[i], ct = cs.type[i];
                if (ot == kInvalid) continue;
                if (ot == kMisc && (opts_.privileged || ct != kInvalid)) continue;
                if (ot != ct) return false;
            }
            if (os.type[7] == kSpill && cs.type[7] == kSpill && os.spilled.type == RegType::Scalar && cs.spilled.type == RegType::Scalar &&
                inner && !need_in_[pc].any && (spi >= 64 || !(need_in_[pc].slots & (uint64_t{1} << spi))))
                continue;   // a spilled scalar no fill makes matter
            if (os.type[7] == kSpill && !regsafe(os.spilled, cs.spilled, false)) return false;
        }
    }
    return true;
}

// is_state_visited: prune when an explored state covers this one; detect infinite loops.
bool Checker::visit_state(Path& p) {
    auto& list = at_pc_[p.pc];
    const uint64_t h = exact_hash(p.st);
    for (int idx : list) {
        Node& n = nodes_[idx];
        if (n.branches > 0) {
            if (n.hash == h && states_equal(n.st, p.st, p.pc, true)) fail(fmt::format("infinite loop detected at insn {}", p.pc));
            continue;
        }
        if (states_equal(n.st, p.st, p.pc, false)) return true;
    }
    // add a new state
    if (list.size() >= kMaxInProgressPerPc) return false;   // keep walking without a new state
    if (list.size() >= kMaxStatesPerPc) {
        // evict an explored state; states still in progress (loop iterations on this path) are kept,
        // so that their other branches find them once explored
        auto it = std::find_if(list.begin(), list.end(), [&](int i) { return nodes_[i].branches == 0; });
        if (it != list.end()) {
            list.erase(it);
            --cur_states_;
        }
    }
    nodes_.push_back(Node{p.st, 1, p.last, h});
    const int idx = static_cast<int>(nodes_.size() - 1);
    list.push_back(idx);
    p.last = idx;
    ++total_states_;
    ++cur_states_;
    peak_states_ = std::max(peak_states_, cur_states_);
    max_per_insn_ = std::max(max_per_insn_, list.size());
    return false;
}

void Checker::end_path(Path& p) {
    int n = p.last;
    while (n >= 0) {
        if (--nodes_[n].branches > 0) break;
        n = nodes_[n].parent;
    }
}

// ───────────────────────────── the walk ─────────────────────────────

Verdict Checker::run() {
    Verdict v;
    try {
        if (insns_.empty()) { pc_ = 0; fail("last insn is not an exit or jmp"); }
        check_cfg();
        compute_liveness();
        at_pc_.assign(insns_.size(), {});
        stack_depth_.assign(insns_.size(), 0);
        Path init;
        FuncState f;
        f.regs[1] = ptr_reg(RegType::Ctx);
        f.regs[10] = ptr_reg(RegType::Stack);
        init.st.frames.push_back(f);
        stack_.push_back(std::move(init));
        while (!stack_.empty()) {
            Path p = std::move(stack_.back());
            stack_.pop_back();
            explore(std::move(p));
        }
        // check_max_stack_depth over the call graph (static, as the kernel's).
        std::map<std::size_t, std::vector<std::size_t>> calls;
        auto func_of = [&](std::size_t pc) {
            auto it = std::upper_bound(subprog_starts_.begin(), subprog_starts_.end(), pc);
            return *(it - 1);
        };
        for (std::size_t pc = 0; pc < insns_.size(); ++pc)
            if (is_call(insns_[pc]) && insns_[pc].src == 1) calls[func_of(pc)].push_back(static_cast<std::size_t>(static_cast<int64_t>(pc) + insns_[pc].imm + 1));
        std::function<void(std::size_t, int, int, std::size_t)> walk = [&](std::size_t fn, int depth, int frames, std::size_t site) {
            const int d = depth + ((stack_depth_[fn] + 15) / 16) * 16;
            if (frames > static_cast<int>(kMaxFrames)) return;
            if (d > kMaxStack) { pc_ = site; fail(fmt::format("combined stack size of {} calls is {}. Too large", frames, d)); }
            for (auto c : calls[fn]) walk(c, d, frames + 1, site);
        };
        walk(0, 0, 1, 0);
        v.accepted = true;
        if (opts_.log_level) {
            log_ += fmt::format("processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} mark_read 0\n",
                                processed_, opts_.insn_limit, max_per_insn_, total_states_, peak_states_);
        }
    } catch (const VerifyError& e) {
        v.accepted = false;
        v.message = e.msg;
        v.pc = e.pc;
        if (prog_) v.source_line = prog_->source_line(e.pc);
        if (opts_.log_level) {
            if (!log_.empty() && log_.back() != '\n') log_ += '\n';
            log_ += e.msg + "\n";
            log_ += fmt::format("processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} mark_read 0\n",
                                processed_, opts_.insn_limit, max_per_insn_, total_states_, peak_states_);
        }
    }
    v.insns_processed = processed_;
    v.max_states_per_insn = max_per_insn_;
    v.total_states = total_states_;
    v.peak_states = peak_states_;
    v.log = std::move(log_);
    return v;
}

void Checker::explore(Path p) {
    if (opts_.log_level == 1) log_.resize(std::min(log_.size(), p.log_pos));
    if (!p.fresh && opts_.log_level) log_ += fmt::format("from {} to {}:{}\n", p.from, p.pc, state_str(p.st));
    p.fresh = false;
    while (step(p)) {}
    end_path(p);
}

bool Checker::step(Path& p) {
    st_ = &p.st;
    pc_ = p.pc;
    if (++processed_ > opts_.insn_limit) fail(fmt::format("BPF program is too large. Processed {} insn", processed_));
    if (p.pc >= insns_.size()) fail(fmt::format("invalid insn idx {} insn_cnt {}", p.pc, insns_.size()));
    if (prune_point_[p.pc] && visit_state(p)) {
        if (opts_.log_level >= 2) log_ += fmt::format("{}: safe\n", p.pc);
        return false;
    }
    st_ = &p.st;
    const Insn& in = insns_[p.pc];
    log_insn(p.pc);
    std::size_t next = p.pc + 1;
    const uint8_t cls = vm::code::cls(in.code);
    bool cont = true;
    switch (cls) {
    case vm::code::ALU:
    case vm::code::ALU64: do_alu(in); break;
    case vm::code::LD: do_ld(in); if (is_lddw(in)) next = p.pc + 2; break;
    case vm::code::LDX:
    case vm::code::ST:
    case vm::code::STX: do_mem(in); break;
    default:
        if (is_exit(in)) cont = do_exit(p, next);
        else if (is_call(in) || in.code == 0x8d) do_call(in, p, next);
        else do_jmp(in, p, next);
    }
    st_ = &p.st;
    if (opts_.log_level >= 2) {
        log_ += fmt::format("\t;{}\n", state_str(p.st));
    } else if (opts_.log_level) {
        log_ += "\n";
    }
    p.pc = next;
    return cont;
}

// ───────────────────────────── ALU ─────────────────────────────

void Checker::do_alu(const Insn& in) {
    const bool alu64 = vm::code::cls(in.code) == vm::code::ALU64;
    const uint8_t op = in.code & 0xf0;
    const bool x = in.code & 0x08;
    const unsigned d = in.dst;
    check_alu_fields(in);
    if (op == 0xd0 || op == 0x80) {   // END, NEG
        check_reg_read(d);
        check_reg_write(d);
        if (reg(d).is_ptr()) fail(fmt::format("R{} pointer arithmetic prohibited", d));
        if (op == 0x80) neg(reg(d).s, alu64);
        else end(reg(d).s);
        return;
    }
    if (op == 0xb0) {   // MOV
        if (x) check_reg_read(in.src);
        check_reg_write(d);
        if (!x) {
            Reg r = unknown_reg();
            mov_imm(r.s, in.imm, alu64);
            reg(d) = r;
            return;
        }
        Reg& src = reg(in.src);
        const int sx = in.off;
        if (src.type == RegType::Scalar) {
            Reg r = scalar_reg(Scalar::unknown());
            mov_reg(r.s, src.s, alu64, sx, &id_gen_);
            reg(d) = r;
        } else if (alu64 && sx == 0) {
            reg(d) = src;
        } else {
            if (!opts_.privileged) fail(fmt::format("R{} partial copy of pointer", in.src));
            Reg r = unknown_reg();
            if (!alu64) r.s.zext_32_to_64(), r.s = Scalar::from_u64_range(0, 0xffffffffu), r.s.sync();
            reg(d) = r;
        }
        return;
    }
    check_reg_read(d);
    if (x) check_reg_read(in.src);
    check_reg_write(d);
    if (!x && (op == 0x30 || op == 0x90) && in.imm == 0) fail("div by zero");
    if (!x && (op == 0x60 || op == 0x70 || op == 0xc0) && (in.imm < 0 || in.imm >= (alu64 ? 64 : 32)))
        fail(fmt::format("invalid shift {}", in.imm));
    Reg src = x ? reg(in.src) : scalar_reg(Scalar::known(static_cast<uint64_t>(static_cast<int64_t>(in.imm))));
    Reg& dst = reg(d);
    if (dst.is_ptr() || src.is_ptr()) {
        // the scalar operand's bounds decide the pointer's offset and the sanity checks
        if (dst.is_ptr() && x && src.type == RegType::Scalar) demand(pc_, in.src);
        if (src.is_ptr() && dst.type == RegType::Scalar) demand(pc_, d);
        if (dst.is_ptr() && src.is_ptr()) {
            if (op == 0x10 && opts_.privileged) { dst = unknown_reg(); return; }
            fail(fmt::format("R{} pointer {} pointer prohibited", d, alu_string(op)));
        }
        if (dst.is_ptr()) ptr_arith(d, Reg(dst), src, op, alu64, false);
        else ptr_arith(d, src, Reg(dst), op, alu64, true);
        return;
    }
    if (x) alu(dst.s, src.s, static_cast<AluOp>(op), alu64);
    else alu_imm(dst.s, in.imm, static_cast<AluOp>(op), alu64);
}

// check_alu_op()'s checks of the fields an ALU instruction does not use, before anything else
// (the model's transfer functions assume them: a movsx with another offset is not a movsx).
void Checker::check_alu_fields(const Insn& in) {
    const bool alu64 = vm::code::cls(in.code) == vm::code::ALU64;
    const uint8_t op = in.code & 0xf0;
    const bool x = in.code & 0x08;
    if (op == 0x80) {   // NEG
        if (x || in.src != 0 || in.off != 0 || in.imm != 0) fail("BPF_NEG uses reserved fields");
    } else if (op == 0xd0) {   // END (BPF_TO_BE is the X bit; ALU64 has only the unconditional bswap)
        if (in.src != 0 || in.off != 0 || (in.imm != 16 && in.imm != 32 && in.imm != 64) || (alu64 && x))
            fail("BPF_END uses reserved fields");
    } else if (op == 0xb0) {   // MOV
        if (x) {
            const bool sx_ok = in.off == 0 || in.off == 8 || in.off == 16 || (alu64 && in.off == 32);
            if (!sx_ok || in.imm != 0) fail("BPF_MOV uses reserved fields");
        } else if (in.src != 0 || in.off != 0) {
            fail("BPF_MOV uses reserved fields");
        }
    } else if (op > 0xd0) {
        fail(fmt::format("invalid BPF_ALU opcode {:x}", op));
    } else {
        // off 1: the signed sdiv/smod, for DIV and MOD only
        const bool off_ok = in.off == 0 || (in.off == 1 && (op == 0x30 || op == 0x90));
        if (!off_ok || (x ? in.imm != 0 : in.src != 0)) fail("BPF_ALU uses reserved fields");
    }
}

bool sane_offset(const Reg& r, const std::string& ts, std::string& msg) {
    const bool known = r.s.is_const();
    const int64_t val = static_cast<int64_t>(r.s.var_off.value);
    if (known && (val >= kMaxVarOff || val <= -kMaxVarOff)) { msg = fmt::format("math between {} pointer and {} is not allowed", ts, val); return false; }
    if (r.off >= kMaxVarOff || r.off <= -kMaxVarOff) { msg = fmt::format("{} pointer offset {} is not allowed", ts, r.off); return false; }
    if (r.s.smin == std::numeric_limits<int64_t>::min()) { msg = fmt::format("math between {} pointer and register with unbounded min value is not allowed", ts); return false; }
    if (r.s.smin >= kMaxVarOff || r.s.smin <= -kMaxVarOff) { msg = fmt::format("value {} makes {} pointer be out of bounds", r.s.smin, ts); return false; }
    return true;
}

// adjust_ptr_min_max_vals
void Checker::ptr_arith(unsigned d, const Reg& ptr, const Reg& offr, uint8_t op, bool alu64, bool off_is_dst) {
    if (!alu64) {
        if (op == 0x10 && opts_.privileged) { reg(d) = unknown_reg(); return; }
        fail(fmt::format("R{} 32-bit pointer arithmetic prohibited", d));
    }
    if (ptr.maybe_null) fail(fmt::format("R{} pointer arithmetic on {} prohibited, null-check it first", d, type_str(ptr)));
    const bool known = offr.s.is_const();
    const int64_t val = offr.s.smin;
    switch (ptr.type) {
    case RegType::Ctx: case RegType::MapValue: case RegType::MapKey: case RegType::Stack: case RegType::PacketMeta:
    case RegType::Packet: case RegType::BtfId: case RegType::Mem: case RegType::Func: break;
    case RegType::FlowKeys: if (known) break; [[fallthrough]];
    case RegType::ConstMap: if (known && val == 0 && op == 0x00) break; [[fallthrough]];
    default: fail(fmt::format("R{} pointer arithmetic on {} prohibited", d, type_str(ptr)));
    }
    std::string msg;
    const std::string ts = type_str(ptr);
    if (!sane_offset(offr, ts, msg) || !sane_offset(ptr, ts, msg)) fail(msg);
    Reg r = ptr;
    const bool pkt = ptr.type == RegType::Packet || ptr.type == RegType::PacketMeta;
    switch (op) {
    case 0x00:
        if (known && static_cast<int64_t>(static_cast<int32_t>(ptr.off + val)) == ptr.off + val) {
            r.off = static_cast<int32_t>(ptr.off + val);
        } else {
            alu(r.s, offr.s, AluOp::Add, true);
            if (pkt) { r.id = ++id_gen_; r.range = 0; }
        }
        break;
    case 0x10:
        if (off_is_dst) fail(fmt::format("R{} tried to subtract pointer from scalar", d));
        if (ptr.type == RegType::Stack) fail(fmt::format("R{} subtraction from stack pointer prohibited", d));
        if (known && static_cast<int64_t>(static_cast<int32_t>(ptr.off - val)) == ptr.off - val && val != std::numeric_limits<int64_t>::min()) {
            r.off = static_cast<int32_t>(ptr.off - val);
        } else {
            alu(r.s, offr.s, AluOp::Sub, true);
            if (pkt) { r.id = ++id_gen_; r.range = 0; }
        }
        break;
    case 0x40: case 0x50: case 0xa0:
        fail(fmt::format("R{} bitwise operator {} on pointer prohibited", d, alu_string(op)));
    default:
        fail(fmt::format("R{} pointer arithmetic with {} operator prohibited", d, alu_string(op)));
    }
    r.s.id = 0;
    if (!sane_offset(r, ts, msg)) fail(msg);
    reg(d) = r;
}

// ───────────────────────────── loads of immediates, LD_ABS ─────────────────────────────

void Checker::do_ld(const Insn& in) {
    if (is_lddw(in)) {
        check_reg_write(in.dst);
        const Insn& hi = insns_[pc_ + 1];
        Reg r;
        switch (in.src) {
        case 0: r = scalar_reg(Scalar::known((static_cast<uint64_t>(static_cast<uint32_t>(hi.imm)) << 32) | static_cast<uint32_t>(in.imm))); break;
        case 5: case 1:
            if (in.imm < 0 || static_cast<std::size_t>(in.imm) >= maps_.size()) fail(fmt::format("fd {} is not pointing to valid bpf_map", in.imm));
            r = ptr_reg(RegType::ConstMap);
            r.map = in.imm;
            break;
        case 6: case 2: {
            if (in.imm < 0 || static_cast<std::size_t>(in.imm) >= maps_.size()) fail(fmt::format("fd {} is not pointing to valid bpf_map", in.imm));
            const auto& m = maps_[in.imm];
            if (static_cast<uint32_t>(hi.imm) >= std::max<uint32_t>(m.value_size, 1) && m.value_size != 0)
                fail(fmt::format("invalid access to map value pointer, value_size={} off={}", m.value_size, static_cast<uint32_t>(hi.imm)));
            r = ptr_reg(RegType::MapValue);
            r.map = in.imm;
            r.off = hi.imm;
            break;
        }
        case 4:
            r = ptr_reg(RegType::Func);
            r.frameno = static_cast<uint32_t>(static_cast<int64_t>(pc_) + in.imm + 1);
            break;
        default:
            r = ptr_reg(RegType::Mem);   // ksym: a read-only kernel variable
            r.rdonly = true;
            r.range = 8;
        }
        reg(in.dst) = r;
        return;
    }
    // LD_ABS / LD_IND: the context in R6, the result in R0, R1-R5 clobbered.
    const uint8_t mode = in.code & 0xe0;
    check_reg_read(6);
    if (reg(6).type != RegType::Ctx) fail("at the time of BPF_LD_ABS|IND R6 != pointer to skb");
    if (mode == 0x40) {
        check_reg_read(in.src);
        if (reg(in.src).is_ptr()) fail(fmt::format("R{} leaks addr into packet", in.src));   // unprivileged wording aside
    }
    for (unsigned r = 1; r <= 5; ++r) reg(r) = Reg{};
    Reg r0 = unknown_reg();
    r0.s.coerce_to_size(static_cast<int>(vm::code::mem_size(in.code)));
    reg(0) = r0;
}

// ───────────────────────────── memory ─────────────────────────────

void Checker::do_mem(const Insn& in) {
    const uint8_t cls = vm::code::cls(in.code);
    const uint8_t mode = in.code & 0xe0;
    const unsigned size = vm::code::mem_size(in.code);
    if (cls == vm::code::LDX) {
        check_reg_read(in.src);
        check_reg_write(in.dst);
        const bool sx = mode == 0x80;
        Reg r = mem_access(in.src, in.off, size, false, nullptr, sx, false);
        reg(in.dst) = r;
        return;
    }
    if (cls == vm::code::ST) {
        check_reg_read(in.dst);
        if (reg(in.dst).type == RegType::Ctx) fail(fmt::format("BPF_ST stores into R{} {} is not allowed", in.dst, type_str(reg(in.dst))));
        mem_access(in.dst, in.off, size, true, nullptr, false, false, true, in.imm);
        return;
    }
    // STX
    if (mode == 0xc0) {   // atomic
        check_reg_read(in.src);
        check_reg_read(in.dst);
        const int32_t aop = in.imm;
        if (size != 4 && size != 8) fail(fmt::format("invalid atomic operand size"));
        if (aop == 0xf1) check_reg_read(0);
        if (reg(in.src).is_ptr() && aop != 0xe1 && aop != 0xf1) fail(fmt::format("R{} leaks addr into mem", in.src));
        const Reg& dst = reg(in.dst);
        if (dst.type == RegType::Ctx || dst.type == RegType::Packet || dst.type == RegType::PacketMeta || dst.type == RegType::FlowKeys ||
            dst.type == RegType::SockCommon || dst.type == RegType::Sock)
            fail(fmt::format("BPF_ATOMIC stores into R{} {} is not allowed", in.dst, type_str(dst)));
        Reg old = mem_access(in.dst, in.off, size, false, nullptr, false, true);
        Reg unknown = unknown_reg();
        mem_access(in.dst, in.off, size, true, &unknown, false, true);
        if (aop == 0xf1) reg(0) = unknown_reg();
        else if (aop & 0x01) { check_reg_write(in.src); reg(in.src) = old.type == RegType::Scalar ? unknown_reg() : old; }
        return;
    }
    check_reg_read(in.src);
    check_reg_read(in.dst);
    Reg value = reg(in.src);
    mem_access(in.dst, in.off, size, true, &value, false, false);
}

void Checker::region_access(unsigned regno, const Reg& ptr, int32_t off, int64_t size, int64_t mem_size, const char* what, bool zero_ok) {
    // check_mem_region_access + __check_mem_access
    auto check = [&](int64_t o) {
        const bool size_ok = size > 0 || (size == 0 && zero_ok);
        return o >= 0 && size_ok && o + size <= mem_size;
    };
    auto first = [&](int64_t o) {
        if (std::strcmp(what, "map") == 0) return fmt::format("invalid access to map value, value_size={} off={} size={}", mem_size, o, size);
        if (std::strcmp(what, "key") == 0) return fmt::format("invalid access to map key, key_size={} off={} size={}", mem_size, o, size);
        return fmt::format("invalid access to memory, mem_size={} off={} size={}", mem_size, o, size);
    };
    const int64_t smin = ptr.s.smin;
    if (smin < 0 && (smin == std::numeric_limits<int64_t>::min() || off + smin != static_cast<int32_t>(off + smin) || smin + off < 0))
        fail(fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", regno));
    if (!check(smin + off)) fail(first(smin + off) + fmt::format("\nR{} min value is outside of the allowed memory range", regno));
    if (ptr.s.umax >= static_cast<uint64_t>(kMaxVarOff))
        fail(fmt::format("R{} unbounded memory access, make sure to bounds check any such access", regno));
    const int64_t hi = static_cast<int64_t>(ptr.s.umax) + off;
    if (!check(hi)) fail(first(hi) + fmt::format("\nR{} max value is outside of the allowed memory range", regno));
}

void Checker::packet_access(unsigned regno, const Reg& ptr, int32_t off, int64_t size, bool zero_ok) {
    if (ptr.s.smin < 0) fail(fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", regno));
    const bool size_ok = size > 0 || (size == 0 && zero_ok);
    if (!(off >= 0 && size_ok && off + size <= ptr.range))
        fail(fmt::format("invalid access to packet, off={} size={}, R{}(id={},off={},r={})\nR{} offset is outside of the packet", off, size,
                         regno, ptr.id, off, ptr.range, regno));
}

Reg Checker::stack_access(unsigned regno, const Reg& ptr, int32_t off, unsigned size, bool write, const Reg* value, bool st_imm,
                          int32_t imm, bool helper) {
    FuncState& fr = frame_of(ptr);
    if (helper) {
        // the slots of this frame a helper may read (stack liveness before the call)
        if (ptr.s.is_const() && ptr.frameno + 1 == st_->frames.size()) {
            const uint64_t b = slot_bits(static_cast<int64_t>(ptr.s.var_off.value) + off, size);
            if ((call_slots_[pc_] | b) != call_slots_[pc_]) {
                call_slots_[pc_] |= b;
                propagate(pc_);
            }
        } else if (ptr.frameno + 1 == st_->frames.size()) {
            mark_via_ptr(pc_, 2);
        }
    }
    if (!helper && regno != 10) {
        // a load through another pointer to this frame at a known offset: those slots only
        if (!write && ptr.s.is_const() && ptr.frameno + 1 == st_->frames.size()) {
            const uint64_t b = slot_bits(static_cast<int64_t>(ptr.s.var_off.value) + off, size);
            if ((via_ptr_slots_[pc_] | b) != via_ptr_slots_[pc_]) {
                via_ptr_slots_[pc_] |= b;
                propagate(pc_);
            }
        } else {
            mark_via_ptr(pc_, write);
        }
    }
    const char* extra = helper ? " indirect access to" : write ? " write to" : " read from";
    int64_t min_off, max_off;
    const bool cnst = ptr.s.is_const();
    if (cnst) {
        min_off = static_cast<int64_t>(ptr.s.var_off.value) + off;
        max_off = min_off + size;
    } else {
        if (ptr.s.smax >= kMaxVarOff || ptr.s.smin <= -kMaxVarOff) fail(fmt::format("invalid unbounded variable-offset{} stack R{}", extra, regno));
        min_off = ptr.s.smin + off;
        max_off = ptr.s.smax + off + size;
    }
    if (cnst && !helper && (min_off % static_cast<int64_t>(size)) != 0)
        fail(fmt::format("misaligned stack access off {}+{}+{} size {}", ptr.s.var_off.str(), ptr.off, off - ptr.off, size));
    if (min_off < -kMaxStack || min_off > -1 || max_off > 0) {
        if (cnst) fail(fmt::format("invalid{} stack R{} off={} size={}", extra, regno, off, size));
        fail(fmt::format("invalid variable-offset{} stack R{} var_off={} off={} size={}", extra, regno, ptr.s.var_off.str(), off, size));
    }
    // stack depth of the function
    int& depth = stack_depth_[fr.subprog];
    depth = std::max(depth, static_cast<int>(-min_off));
    const std::size_t need = static_cast<std::size_t>((-min_off + 7) / 8);
    if (fr.stack.size() < need) fr.stack.resize(need);
    auto idx = [](int64_t addr) { return static_cast<std::size_t>((-addr - 1) % 8); };
    auto spi_of = [](int64_t addr) { return static_cast<std::size_t>((-addr - 1) / 8); };
    if (!cnst) {
        if (write) {
            for (int64_t a = min_off; a < max_off; ++a) {
                auto& sl = fr.stack[spi_of(a)];
                if (sl.type[7] == kSpill) for (auto& t : sl.type) if (t != kInvalid) t = kMisc;
                sl.type[idx(a)] = kMisc;
            }
            return Reg{};
        }
        return unknown_reg();
    }
    const int64_t a0 = min_off;
    // strict alignment of stack accesses (check_ptr_alignment)
    if (!helper && (a0 % static_cast<int64_t>(size)) != 0)
        fail(fmt::format("misaligned stack access off {}+{}+{} size {}", ptr.s.var_off.str(), ptr.off, off - ptr.off, size));
    if (helper) {
        if (write) {
            for (int64_t a = a0; a < max_off; ++a) {
                auto& sl = fr.stack[spi_of(a)];
                if (sl.type[7] == kSpill) for (auto& t : sl.type) if (t != kInvalid) t = kMisc;
                sl.type[idx(a)] = kMisc;
            }
        } else if (!opts_.privileged) {
            for (int64_t a = a0; a < max_off; ++a) {
                const auto& sl = fr.stack[spi_of(a)];
                if (sl.type[idx(a)] == kInvalid)
                    fail(fmt::format("invalid indirect read from stack R{} off {}+{} size {}", regno, off, a - a0, max_off - a0));
            }
        }
        return Reg{};
    }
    StackSlot& sl = fr.stack[spi_of(a0)];
    const bool aligned = (a0 % 8) == 0;
    if (write) {
        const bool is_zero = st_imm ? imm == 0 : (value && value->type == RegType::Scalar && value->s.is_const() && value->s.var_off.value == 0);
        if (value && value->is_ptr()) {
            if (size != 8) fail("invalid size of register spill");
            if (!aligned) fail("invalid size of register spill");
            sl.spilled = *value;
            sl.type.fill(kSpill);
            return Reg{};
        }
        const bool scalar_value = value && value->type == RegType::Scalar;
        // privileged: an aligned scalar register is spilled whatever its value (as the kernel's
        // save_register_state); otherwise a zero decides STACK_ZERO, so the value matters
        if (scalar_value && !(aligned && opts_.privileged) && vm::code::cls(insns_[pc_].code) == vm::code::STX) demand(pc_, insns_[pc_].src);
        if (aligned && ((scalar_value && (!is_zero || opts_.privileged)) || (st_imm && !is_zero))) {
            Reg v = value ? *value : scalar_reg(Scalar::known(static_cast<uint64_t>(static_cast<int64_t>(imm))));
            if (st_imm && size < 8) v.s.coerce_to_size(static_cast<int>(size));
            sl.spilled = v;
            for (int i = 7; i > 7 - static_cast<int>(size); --i) sl.type[i] = kSpill;
            for (int i = 7 - static_cast<int>(size); i >= 0; --i)
                if (sl.type[i] == kSpill) sl.type[i] = kMisc;
            return Reg{};
        }
        if (sl.type[7] == kSpill) {
            for (auto& t : sl.type) if (t != kInvalid) t = kMisc;
            sl.spilled = Reg{};
        }
        for (unsigned i = 0; i < size; ++i) sl.type[idx(a0 + i)] = is_zero ? kZero : kMisc;
        return Reg{};
    }
    // read
    if (sl.type[7] == kSpill) {
        int spill_size = 0;
        for (int i = 7; i >= 0 && sl.type[i] == kSpill; --i) ++spill_size;
        if (size == 8 && spill_size == 8 && aligned) return sl.spilled;
        if (sl.spilled.type != RegType::Scalar) fail("invalid size of register fill");
        if (aligned && static_cast<int>(size) == spill_size) return sl.spilled;
        if (sl.spilled.s.is_const() && a0 - (a0 & ~int64_t{7}) + static_cast<int64_t>(size) <= spill_size) {
            const uint64_t v = sl.spilled.s.var_off.value >> (8 * (a0 & 7));
            const uint64_t m = size == 8 ? ~uint64_t{0} : ((uint64_t{1} << (8 * size)) - 1);
            return scalar_reg(Scalar::known(v & m));
        }
        Reg r = unknown_reg();
        r.s.coerce_to_size(static_cast<int>(size));
        return r;
    }
    unsigned zeros = 0;
    for (unsigned i = 0; i < size; ++i) {
        const uint8_t t = sl.type[idx(a0 + i)];
        if (t == kZero) ++zeros;
        else if (t == kInvalid && !opts_.privileged) fail(fmt::format("invalid read from stack off {}+{} size {}", off, i, size));
    }
    if (zeros == size) return scalar_reg(Scalar::known(0));
    Reg r = unknown_reg();
    r.s.coerce_to_size(static_cast<int>(size));
    return r;
}

Reg Checker::mem_access(unsigned regno, int32_t off, unsigned size, bool write, const Reg* value, bool sx, bool atomic, bool st_imm,
                        int32_t imm) {
    const Reg ptr = reg(regno);
    auto result_scalar = [&]() {
        Reg r = unknown_reg();
        if (sx) r.s.coerce_to_size_sx(static_cast<int>(size));
        else r.s.coerce_to_size(static_cast<int>(size));
        return r;
    };
    if (ptr.type == RegType::Scalar || ptr.maybe_null || ptr.type == RegType::PacketEnd || ptr.type == RegType::ConstMap ||
        ptr.type == RegType::Func)
        fail(fmt::format("R{} invalid mem access '{}'", regno, type_str(ptr)));
    const int32_t total = off + ptr.off;
    switch (ptr.type) {
    case RegType::Ctx: {
        if (ptr.off) fail(fmt::format("dereference of modified ctx ptr R{} off={} disallowed", regno, ptr.off));
        if (!ptr.s.is_const() || ptr.s.var_off.value) fail(fmt::format("variable ctx access var_off={} disallowed", ptr.s.var_off.str()));
        CtxAccessQuery q;
        q.type = type_;
        q.attach = attach_;
        q.off = total;
        q.size = size;
        q.write = write;
        q.atomic = atomic;
        q.kernel_btf = opts_.kernel_btf;
        const CtxAccess a = ctx_access(q);
        if (!a.ok) fail(a.message.empty() ? fmt::format("invalid bpf_context access off={} size={}", total, size) : a.message);
        if (write) {
            if (value && value->is_ptr()) fail(fmt::format("R{} leaks addr into ctx", insns_[pc_].src));
            return Reg{};
        }
        Reg r;
        switch (a.load) {
        case CtxLoad::Scalar: return result_scalar();
        case CtxLoad::PacketData: r = ptr_reg(RegType::Packet); break;
        case CtxLoad::PacketMeta: r = ptr_reg(RegType::PacketMeta); break;
        case CtxLoad::PacketEnd: r = ptr_reg(RegType::PacketEnd); break;
        case CtxLoad::FlowKeys: r = ptr_reg(RegType::FlowKeys); break;
        case CtxLoad::SockCommonOrNull: r = ptr_reg(RegType::SockCommon); r.maybe_null = true; r.id = ++id_gen_; break;
        case CtxLoad::SockOrNull: r = ptr_reg(RegType::Sock); r.maybe_null = true; r.id = ++id_gen_; break;
        case CtxLoad::Sock: r = ptr_reg(RegType::Sock); break;
        case CtxLoad::BtfId: r = ptr_reg(RegType::BtfId); r.btf_id = a.btf_id; break;
        case CtxLoad::BtfIdOrNull: r = ptr_reg(RegType::BtfId); r.btf_id = a.btf_id; r.maybe_null = true; r.id = ++id_gen_; break;
        case CtxLoad::Ctx: r = ptr_reg(RegType::Ctx); break;
        }
        return r;
    }
    case RegType::Stack: {
        Reg r = stack_access(regno, ptr, total, size, write, value, st_imm, imm, false);
        if (!write && r.type == RegType::Scalar && sx) r.s.coerce_to_size_sx(static_cast<int>(size));
        return r;
    }
    case RegType::MapValue: {
        const MapDef& m = maps_.at(ptr.map);
        const bool rdonly = m.frozen || (m.flags & 0x80);
        if (write && rdonly) fail(fmt::format("write into map forbidden, value_size={} off={} size={}", m.value_size, total, size));
        region_access(regno, ptr, total, size, m.value_size, "map", false);
        if (write) {
            if (value && value->is_ptr() && !opts_.privileged) fail(fmt::format("R{} leaks addr into map", insns_[pc_].src));
            return Reg{};
        }
        if (rdonly && ptr.s.is_const() && !sx && (size == 1 || size == 2 || size == 4 || size == 8)) {
            const int64_t o = total + static_cast<int64_t>(ptr.s.var_off.value);
            uint64_t v = 0;
            for (unsigned i = 0; i < size; ++i) {
                const std::size_t at = static_cast<std::size_t>(o) + i;
                const uint8_t b = at < m.init.size() ? m.init[at] : 0;
                v |= static_cast<uint64_t>(b) << (8 * i);
            }
            return scalar_reg(Scalar::known(v));
        }
        return result_scalar();
    }
    case RegType::MapKey: {
        const MapDef& m = maps_.at(ptr.map);
        if (write) fail(fmt::format("write to change key R{} not allowed", regno));
        region_access(regno, ptr, total, size, m.key_size, "key", false);
        return result_scalar();
    }
    case RegType::Mem: {
        if (write && ptr.rdonly) fail(fmt::format("R{} cannot write into {}", regno, type_str(ptr)));
        region_access(regno, ptr, total, size, ptr.range, "mem", false);
        return write ? Reg{} : result_scalar();
    }
    case RegType::Packet:
    case RegType::PacketMeta: {
        if (write) {
            switch (type_) {
            case ProgType::SocketFilter: case ProgType::CgroupSkb: case ProgType::LwtIn: case ProgType::LwtOut:
            case ProgType::FlowDissector: fail("cannot write into packet");
            default: break;
            }
            if (value && value->is_ptr()) fail(fmt::format("R{} leaks addr into packet", insns_[pc_].src));
        }
        packet_access(regno, ptr, total, size, false);
        return write ? Reg{} : result_scalar();
    }
    case RegType::FlowKeys:
        if (total < 0 || total + static_cast<int64_t>(size) > 56 || !ptr.s.is_const())
            fail(fmt::format("invalid access to flow keys off={} size={}", total, size));
        return write ? Reg{} : result_scalar();
    case RegType::BtfId:
        if (write) fail("only read is supported");
        if (total < 0) fail(fmt::format("R{} is ptr_ invalid negative access: off={}", regno, total));
        return result_scalar();
    case RegType::SockCommon:
    case RegType::Sock:
    case RegType::TcpSock:
        if (write) fail(fmt::format("R{} cannot write into {}", regno, type_str(ptr)));
        if (total < 0 || !ptr.s.is_const()) fail(fmt::format("R{} invalid {} access off={} size={}", regno, type_str(ptr), total, size));
        return result_scalar();
    default:
        fail(fmt::format("R{} invalid mem access '{}'", regno, type_str(ptr)));
    }
}

// A helper's access to [reg + 0, reg + size) of memory arg `regno` (check_helper_mem_access).
void Checker::helper_mem(unsigned regno, uint64_t size, bool write, bool zero_ok) {
    const Reg ptr = reg(regno);
    const int64_t sz = static_cast<int64_t>(size);
    switch (ptr.type) {
    case RegType::Packet:
    case RegType::PacketMeta: packet_access(regno, ptr, ptr.off, sz, zero_ok); return;
    case RegType::MapValue: {
        const MapDef& m = maps_.at(ptr.map);
        if (write && (m.frozen || (m.flags & 0x80))) fail(fmt::format("write into map forbidden, value_size={} off={} size={}", m.value_size, ptr.off, size));
        region_access(regno, ptr, ptr.off, sz, m.value_size, "map", zero_ok);
        return;
    }
    case RegType::MapKey: region_access(regno, ptr, ptr.off, sz, maps_.at(ptr.map).key_size, "key", zero_ok); return;
    case RegType::Mem: region_access(regno, ptr, ptr.off, sz, ptr.range, "mem", zero_ok); return;
    case RegType::Stack:
        if (sz == 0 && zero_ok) return;
        stack_access(regno, ptr, ptr.off, static_cast<unsigned>(sz), write, nullptr, false, 0, true);
        return;
    case RegType::Ctx: case RegType::BtfId: case RegType::FlowKeys: return;
    default:
        if (sz == 0 && zero_ok && ptr.type == RegType::Scalar && ptr.s.is_const() && ptr.s.var_off.value == 0) return;
        fail(fmt::format("R{} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_", regno, type_str(ptr)));
    }
}

// ───────────────────────────── branches ─────────────────────────────

void Checker::mark_null(uint32_t id, bool is_null) {
    auto fix = [&](Reg& r) {
        if (!r.maybe_null || r.id != id) return;
        if (is_null) {
            r = scalar_reg(Scalar::known(0));
        } else {
            r.maybe_null = false;
            if (r.type != RegType::Packet) r.id = 0;
        }
    };
    for (auto& f : st_->frames) {
        for (auto& r : f.regs) fix(r);
        for (auto& sl : f.stack) if (sl.type[7] == kSpill) fix(sl.spilled);
    }
    if (is_null) {   // a NULL acquired pointer needs no release
        std::erase_if(st_->refs, [&](const RefState& rs) { return rs.id == id; });
    }
}

void Checker::sync_linked(const Reg& src) {
    if (src.type != RegType::Scalar || src.s.id == 0) return;
    for (auto& f : st_->frames) {
        for (auto& r : f.regs) if (r.type == RegType::Scalar && r.s.id == src.s.id) r.s = src.s;
        for (auto& sl : f.stack) if (sl.type[7] == kSpill && sl.spilled.type == RegType::Scalar && sl.spilled.s.id == src.s.id) sl.spilled.s = src.s;
    }
}

void Checker::do_jmp(const Insn& in, Path& p, std::size_t& next) {
    if (is_ja(in)) { next = jump_target(in, p.pc); return; }
    const std::size_t target = jump_target(in, p.pc);
    if (is_may_goto(in)) {
        Path other{p.st, target, p.pc, p.last, log_.size(), false};
        if (p.last >= 0) ++nodes_[p.last].branches;
        stack_.push_back(std::move(other));
        return;
    }
    const bool jmp32 = vm::code::cls(in.code) == vm::code::JMP32;
    const bool x = in.code & 0x08;
    const JmpOp op = static_cast<JmpOp>(in.code & 0xf0);
    check_reg_read(in.dst);
    if (x) check_reg_read(in.src);
    Reg a = reg(in.dst);
    Reg b = x ? reg(in.src) : scalar_reg(Scalar::known(static_cast<uint64_t>(static_cast<int64_t>(in.imm))));
    if (!opts_.privileged && (a.is_ptr() || b.is_ptr()) && !(b.type == RegType::Scalar && b.s.is_const() && b.s.var_off.value == 0))
        fail(fmt::format("R{} pointer comparison prohibited", a.is_ptr() ? in.dst : in.src));
    const bool same = x && in.src == in.dst;
    int taken = -1;
    if (a.type == RegType::Scalar && b.type == RegType::Scalar) {
        taken = is_branch_taken(a.s, b.s, op, jmp32, same);
    } else if (a.is_ptr() != b.is_ptr() && (op == JmpOp::Jeq || op == JmpOp::Jne)) {
        const Reg& pr = a.is_ptr() ? a : b;
        const Reg& sc = a.is_ptr() ? b : a;
        const bool not_null = !pr.maybe_null && (pr.type == RegType::MapValue || pr.type == RegType::MapKey || pr.type == RegType::Sock ||
                                                 pr.type == RegType::SockCommon || pr.type == RegType::TcpSock || pr.type == RegType::Mem);
        if (not_null && sc.s.is_const() && sc.s.var_off.value == 0 && !jmp32) taken = op == JmpOp::Jne ? 1 : 0;
    }
    {
        auto bit = [](unsigned r) -> uint16_t { return r < 10 ? static_cast<uint16_t>(1u << r) : 0; };
        // a branch decided by value, or a scalar compared with a pointer (null checks): the
        // scalars matter; scalars linked by id are refined together
        if (taken != -1 || a.is_ptr() != b.is_ptr()) {
            if (a.type == RegType::Scalar) demand(pc_, in.dst);
            if (x && b.type == RegType::Scalar) demand(pc_, in.src);
        }
        if (a.type == RegType::Scalar && b.type == RegType::Scalar && (a.s.id || (x && b.s.id))) {
            uint16_t m = static_cast<uint16_t>(bit(in.dst) | (x ? bit(in.src) : 0));
            for (unsigned r = 0; r < 10; ++r) {
                const Reg& q = reg(r);
                if (q.type == RegType::Scalar && q.s.id && (q.s.id == a.s.id || (x && q.s.id == b.s.id))) m |= bit(r);
            }
            add_link(pc_, m);
        }
    }
    if (taken == 1) { next = target; return; }
    if (taken == 0) return;
    // both: the taken edge is pushed, the fall-through continues
    VState other_st = p.st;
    auto refine = [&](VState& st, bool branch_taken) {
        VState* saved = st_;
        st_ = &st;
        Reg& ra = reg(in.dst);
        if (a.type == RegType::Scalar && b.type == RegType::Scalar) {
            BranchRefinement br = branch_refine(a.s, b.s, op, jmp32, same);
            ra.s = branch_taken ? br.true_a : br.false_a;
            if (x && !same) { reg(in.src).s = branch_taken ? br.true_b : br.false_b; sync_linked(reg(in.src)); }
            sync_linked(ra);
        } else if ((op == JmpOp::Jeq || op == JmpOp::Jne) && !jmp32) {
            const bool eq_edge = (op == JmpOp::Jeq) == branch_taken;
            if (a.maybe_null && b.type == RegType::Scalar && b.s.is_const() && b.s.var_off.value == 0) mark_null(a.id, eq_edge);
            else if (b.maybe_null && a.type == RegType::Scalar && a.s.is_const() && a.s.var_off.value == 0) mark_null(b.id, eq_edge);
        } else if (x && a.is_ptr() && b.is_ptr() && !jmp32) {
            // find_good_pkt_pointers: pkt' <op> pkt_end / pkt_meta' <op> pkt
            auto good = [&](const Reg& r, bool right_open) {
                if (r.off < 0 || (r.off == 0 && right_open)) return;
                if (r.s.umax > 0xffff || r.s.umax + static_cast<uint64_t>(r.off) > 0xffff) return;
                const int32_t nr = r.off + (right_open ? 1 : 0);
                for (auto& f : st_->frames) {
                    for (auto& q : f.regs) if (q.type == r.type && q.id == r.id) q.range = std::max(q.range, nr);
                    for (auto& sl : f.stack) if (sl.type[7] == kSpill && sl.spilled.type == r.type && sl.spilled.id == r.id) sl.spilled.range = std::max(sl.spilled.range, nr);
                }
            };
            const bool a_data = (a.type == RegType::Packet && b.type == RegType::PacketEnd) || (a.type == RegType::PacketMeta && b.type == RegType::Packet);
            const bool b_data = (b.type == RegType::Packet && a.type == RegType::PacketEnd) || (b.type == RegType::PacketMeta && a.type == RegType::Packet);
            // the fact on this edge, as "data' <= end" (closed) or "data' < end" (open)
            JmpOp e = branch_taken ? op : rev_opcode(op);
            if (a_data) {
                if (e == JmpOp::Jle) good(a, false);
                else if (e == JmpOp::Jlt) good(a, true);
            } else if (b_data) {
                if (e == JmpOp::Jge) good(b, false);
                else if (e == JmpOp::Jgt) good(b, true);
            }
        }
        st_ = saved;
    };
    refine(other_st, true);
    refine(p.st, false);
    Path other{std::move(other_st), target, p.pc, p.last, log_.size(), false};
    if (p.last >= 0) ++nodes_[p.last].branches;
    stack_.push_back(std::move(other));
}

// ───────────────────────────── calls ─────────────────────────────

void Checker::release_ref(uint32_t ref) {
    for (auto& f : st_->frames) {
        for (auto& r : f.regs) if (r.ref_obj_id == ref) r = unknown_reg(), r.type = RegType::NotInit;
        for (auto& sl : f.stack)
            if (sl.type[7] == kSpill && sl.spilled.ref_obj_id == ref) { sl.spilled = Reg{}; for (auto& t : sl.type) t = kMisc; }
    }
    std::erase_if(st_->refs, [&](const RefState& r) { return r.id == ref; });
}

void Checker::do_call(const Insn& in, Path& p, std::size_t& next) {
    if (in.code == 0x8d) fail("unknown opcode 8d");
    if (in.src == 1) {   // bpf-to-bpf
        if (st_->frames.size() >= kMaxFrames) fail(fmt::format("the call stack of {} frames is too deep !", st_->frames.size() + 1));
        const std::size_t target = static_cast<std::size_t>(static_cast<int64_t>(p.pc) + in.imm + 1);
        for (unsigned r = 1; r <= 5; ++r)
            if (reg(r).type == RegType::Stack) { mark_via_ptr(pc_, 2); break; }
        FuncState callee;
        for (unsigned r = 1; r <= 5; ++r) callee.regs[r] = cur().regs[r];
        callee.regs[10] = ptr_reg(RegType::Stack);
        callee.regs[10].frameno = static_cast<uint32_t>(st_->frames.size());
        callee.callsite = p.pc;
        callee.subprog = target;
        for (unsigned r = 1; r <= 5; ++r) if (callee.regs[r].type == RegType::Scalar) callee.regs[r].s.id = 0;
        st_->frames.push_back(std::move(callee));
        next = target;
        return;
    }
    if (in.src == 2) {   // kfunc: allowed per the kernel BTF, then modelled as an unknown scalar result
        const auto it = kfunc_names_.find(p.pc);
        std::string name;
        if (it != kfunc_names_.end()) {
            name = it->second;
        } else {
            // Called by BTF id (no extern to name it): the id must be a function of the kernel's BTF.
            const auto id = static_cast<uint32_t>(in.imm);
            if (!gpl_) fail("cannot call kernel function from non-GPL compatible program");
            if (id == 0 && in.off == 0) fail("invalid kernel function call not eliminated in verifier pass");
            if (in.off != 0) fail("failed to find BTF for kernel function");   // module BTFs (fd_array): none here
            const btf::Btf* kb = opts_.kernel_btf;
            if (!kb) fail(fmt::format("calling kernel function btf_id {} is not allowed: no kernel BTF to resolve it", id));
            try {
                if (id < kb->count() && kb->type(id).kind() == btf::Kind::Func) name = std::string(kb->type(id).name());
            } catch (...) {   // a malformed BTF: not a function
            }
            if (name.empty()) fail(fmt::format("kernel btf_id {} is not a function", id));
        }
        const KfuncAccess ka = kfunc_access(type_, section_.empty() ? std::string_view(attach_) : std::string_view(section_), name,
                                            opts_.kernel_btf, gpl_);
        if (!ka.allowed) fail(ka.message);
        for (unsigned r = 0; r <= 5; ++r) reg(r) = Reg{};
        reg(0) = unknown_reg();
        return;
    }
    const int32_t id = in.imm;
    {
        HelperAccessContext hc;
        hc.gpl = gpl_;
        const std::string_view sec = section_.empty() ? std::string_view(attach_) : std::string_view(section_);
        hc.sleepable = sec.find(".s/") != std::string_view::npos || sec.ends_with(".s");
        const HelperAccess ha = helper_access(type_, sec, id, hc);
        if (!ha.allowed) fail(ha.message);
    }
    const vm::Helper* h = helpers_.find(id);
    if (!h) {
        if (vm::kernel_helper_name(id).empty() || id <= 0) fail(fmt::format("invalid func unknown#{}", id));
        // helpers without a prototype in the table: the context argument is still checked
        if (id == 53 || id == 70) {   // sock_map_update, sock_hash_update (sock_ops): R1 is ARG_PTR_TO_CTX
            check_reg_read(1);
            if (reg(1).type != RegType::Ctx) fail(fmt::format("R1 type={} expected=ctx", type_str(reg(1))));
            if (reg(1).off) fail(fmt::format("dereference of modified ctx ptr R1 off={} disallowed", reg(1).off));
        }
        for (unsigned r = 1; r <= 5; ++r) reg(r) = Reg{};
        reg(0) = unknown_reg();
        return;
    }
    const auto& proto = h->proto;
    // the stack a helper reads is recorded by stack_access (helper); a callback may read more
    for (unsigned i = 0; i < 5; ++i)
        if (proto.args[i] == ArgKind::Func)
            for (unsigned r = 1; r <= 5; ++r)
                if (reg(r).type == RegType::Stack) { mark_via_ptr(pc_, 2); break; }
    int map_idx = -1;
    std::optional<std::size_t> callback;
    uint32_t release = 0;
    int64_t alloc_size = -1;
    for (unsigned i = 0; i < 5; ++i) {
        const ArgKind k = proto.args[i];
        const unsigned r = i + 1;
        if (k == ArgKind::None) break;
        check_reg_read(r);
        const Reg& a = reg(r);
        if (k != ArgKind::Anything && a.type == RegType::Scalar) demand(pc_, r);
        auto expect = [&](bool ok, const char* what) {
            if (!ok) fail(fmt::format("R{} type={} expected={}", r, type_str(a), what));
        };
        const bool is_null_const = a.type == RegType::Scalar && a.s.is_const() && a.s.var_off.value == 0;
        switch (k) {
        case ArgKind::Anything: break;
        case ArgKind::ConstMapPtr: expect(a.type == RegType::ConstMap, "map_ptr"); map_idx = a.map; break;
        case ArgKind::MapKey:
        case ArgKind::MapValue:
        case ArgKind::UninitMapValue: {
            expect(a.type == RegType::Stack || a.type == RegType::Packet || a.type == RegType::PacketMeta || a.type == RegType::MapValue ||
                       a.type == RegType::MapKey || a.type == RegType::Mem,
                   "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_");
            if (a.maybe_null) expect(false, "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_");
            if (map_idx < 0) fail("invalid map_ptr to access map->key");
            const MapDef& m = maps_.at(map_idx);
            helper_mem(r, k == ArgKind::MapKey ? m.key_size : m.value_size, k == ArgKind::UninitMapValue, false);
            break;
        }
        case ArgKind::Mem:
        case ArgKind::MemOrNull:
        case ArgKind::UninitMem: {
            if (k == ArgKind::MemOrNull && is_null_const) break;
            if (a.maybe_null) expect(false, "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_");
            const ArgKind nk = i + 1 < 5 ? proto.args[i + 1] : ArgKind::None;
            if (nk == ArgKind::ConstSize || nk == ArgKind::ConstSizeOrZero) {
                const unsigned sr = r + 1;
                check_reg_read(sr);
                const Reg& s = reg(sr);
                const bool zero_ok = nk == ArgKind::ConstSizeOrZero;
                if (s.type != RegType::Scalar) fail(fmt::format("R{} type={} expected=scalar", sr, type_str(s)));
                if (s.s.smin < 0) fail(fmt::format("R{} min value is negative, either use unsigned or 'var &= const'", sr));
                if (s.s.umin == 0 && !zero_ok) fail(fmt::format("R{} invalid zero-sized read: u64=[{},{}]", sr, s.s.umin, s.s.umax));
                if (s.s.umax >= kMaxVarSiz) fail(fmt::format("R{} unbounded memory access, use 'var &= const' or 'if (var < const)'", sr));
                helper_mem(r, s.s.umax, k == ArgKind::UninitMem, zero_ok);
                ++i;
            } else {
                helper_mem(r, 0, false, true);
            }
            break;
        }
        case ArgKind::ConstSize:
        case ArgKind::ConstSizeOrZero:
        case ArgKind::ConstAllocSizeOrZero:
            expect(a.type == RegType::Scalar, "scalar");
            if (k == ArgKind::ConstAllocSizeOrZero) {
                if (!a.s.is_const()) fail(fmt::format("R{} is not a known constant'", r));
                alloc_size = static_cast<int64_t>(a.s.var_off.value);
            }
            break;
        case ArgKind::Ctx:
            expect(a.type == RegType::Ctx, "ctx");
            if (a.off) fail(fmt::format("dereference of modified ctx ptr R{} off={} disallowed", r, a.off));
            break;
        case ArgKind::CtxOrNull: expect(a.type == RegType::Ctx || is_null_const, "ctx"); break;
        case ArgKind::Stack: expect(a.type == RegType::Stack, "fp"); break;
        case ArgKind::StackOrNull: expect(a.type == RegType::Stack || is_null_const || a.type == RegType::MapValue || a.type == RegType::Ctx, "fp"); break;
        case ArgKind::SockCommon:
        case ArgKind::Socket:
        case ArgKind::BtfIdSock:
            expect(!a.maybe_null && (a.type == RegType::Sock || a.type == RegType::SockCommon || a.type == RegType::TcpSock || a.type == RegType::BtfId),
                   k == ArgKind::Socket ? "sock" : "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_");
            if (id == 86 /* sk_release */) release = a.ref_obj_id;
            break;
        case ArgKind::AllocMem:
            expect(a.type == RegType::Mem && !a.maybe_null && a.ref_obj_id != 0, "ringbuf_mem");
            if (a.off || !a.s.is_const() || a.s.var_off.value) fail(fmt::format("R{} must have zero offset when passed to release func", r));
            release = a.ref_obj_id;
            break;
        case ArgKind::Func:
            expect(a.type == RegType::Func, "func");
            callback = a.frameno;
            break;
        case ArgKind::ConstStr:
            expect(a.type == RegType::MapValue && !a.maybe_null, "map_value");
            break;
        case ArgKind::Long:
        case ArgKind::Int:
            if (a.maybe_null || !a.is_ptr()) expect(false, "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_");
            helper_mem(r, k == ArgKind::Long ? 8 : 4, true, false);
            break;
        case ArgKind::BtfId:
        case ArgKind::PerCpuBtfId:
            expect(a.is_ptr() && !a.maybe_null, "ptr_");
            break;
        default:
            if (!a.is_ptr()) expect(false, "ptr");
            break;
        }
    }
    // tail calls need a prog array
    if (id == 12 && map_idx >= 0 && maps_.at(map_idx).type != harness::MapType::ProgArray)
        fail(fmt::format("cannot pass map_type {} into func bpf_tail_call#12", static_cast<unsigned>(maps_.at(map_idx).type)));
    if (release) {
        bool found = std::any_of(st_->refs.begin(), st_->refs.end(), [&](const RefState& r) { return r.id == release; });
        if (!found) fail(fmt::format("release kernel function {} expects refcounted PTR_TO_BTF_ID", h->name));
        release_ref(release);
    } else if ((id == 86 || id == 132 || id == 133)) {
        fail(fmt::format("R1 must be referenced when passed to release function"));
    }
    const std::array<Reg, 11> args_in = cur().regs;
    for (unsigned r = 1; r <= 5; ++r) reg(r) = Reg{};
    Reg r0;
    switch (proto.ret) {
    case RetKind::Integer: r0 = unknown_reg(); break;
    case RetKind::Void: r0 = Reg{}; break;
    case RetKind::MapValueOrNull:
        if (map_idx < 0) fail("kernel subsystem misconfigured verifier");
        r0 = ptr_reg(RegType::MapValue);
        r0.map = map_idx;
        if (inner_.at(map_idx) >= 0) {   // map-in-map: the inner map
            r0.type = RegType::ConstMap;
            r0.map = inner_[map_idx];
        }
        r0.maybe_null = true;
        r0.id = ++id_gen_;
        break;
    case RetKind::SocketOrNull: r0 = ptr_reg(RegType::Sock); r0.maybe_null = true; r0.id = ++id_gen_; break;
    case RetKind::TcpSockOrNull: r0 = ptr_reg(RegType::TcpSock); r0.maybe_null = true; r0.id = ++id_gen_; break;
    case RetKind::SockCommonOrNull: r0 = ptr_reg(RegType::SockCommon); r0.maybe_null = true; r0.id = ++id_gen_; break;
    case RetKind::AllocMemOrNull:
        r0 = ptr_reg(RegType::Mem);
        r0.maybe_null = true;
        r0.id = ++id_gen_;
        r0.range = static_cast<int32_t>(std::max<int64_t>(alloc_size, 0));
        break;
    case RetKind::BtfIdOrNull:
    case RetKind::MemOrBtfIdOrNull: r0 = ptr_reg(RegType::BtfId); r0.maybe_null = true; r0.id = ++id_gen_; break;
    case RetKind::MemOrBtfId:
    case RetKind::BtfId: r0 = ptr_reg(RegType::BtfId); break;
    }
    // helpers that acquire a reference (sk_lookup_*, skc_lookup_tcp, ringbuf_reserve)
    if (id == 84 || id == 85 || id == 99 || id == 131) {
        r0.id = ++id_gen_;   // acquire_reference: a new id after the maybe-null one
        r0.ref_obj_id = r0.id;
        st_->refs.push_back({r0.id, p.pc});
    }
    reg(0) = r0;
    if (callback) {
        // Verify the callback once as a call from this instruction: R1 index/key, R2 the context.
        if (st_->frames.size() >= kMaxFrames) fail(fmt::format("the call stack of {} frames is too deep !", st_->frames.size() + 1));
        const Reg ctx_arg = p.st.frames.back().regs[0];   // placeholder, replaced below
        (void)ctx_arg;
        FuncState callee;
        callee.regs[1] = unknown_reg();
        if (id == 181) callee.regs[1].s = Scalar::from_u64_range(0, 0xffffffffu), callee.regs[1].s.sync();
        callee.regs[2] = args_in[3].type == RegType::NotInit ? unknown_reg() : args_in[3];
        if (id == 164 && map_idx >= 0) {   // for_each_map_elem: (map, key, value, ctx)
            callee.regs[1] = ptr_reg(RegType::ConstMap);
            callee.regs[1].map = map_idx;
            callee.regs[2] = ptr_reg(RegType::MapKey);
            callee.regs[2].map = map_idx;
            callee.regs[3] = ptr_reg(RegType::MapValue);
            callee.regs[3].map = map_idx;
            callee.regs[4] = args_in[3];
        }
        callee.regs[10] = ptr_reg(RegType::Stack);
        callee.regs[10].frameno = static_cast<uint32_t>(st_->frames.size());
        callee.callsite = p.pc;
        callee.subprog = *callback;
        callee.callback = true;
        st_->frames.push_back(std::move(callee));
        next = *callback;
    }
}

bool Checker::do_exit(Path& /*p*/, std::size_t& next) {
    check_reg_read(0);
    if (st_->frames.size() > 1) {
        FuncState callee = std::move(st_->frames.back());
        st_->frames.pop_back();
        const Reg r0 = callee.regs[0];
        if (callee.callback) {
            if (r0.type != RegType::Scalar) fail(fmt::format("At callback return the register R0 is not a known value ({})", type_str(r0)));
            if (r0.s.smin < 0 || r0.s.smax > 1) {
                std::string m = "At callback return the register R0 has";
                bool unknown = true;
                if (r0.s.smin > std::numeric_limits<int64_t>::min()) { m += fmt::format(" smin={}", r0.s.smin); unknown = false; }
                if (r0.s.smax < std::numeric_limits<int64_t>::max()) { m += fmt::format(" smax={}", r0.s.smax); unknown = false; }
                if (unknown) m += " unknown scalar value";
                fail(m + " should have been in [0, 1]");
            }
            cur().regs[0] = unknown_reg();
        } else {
            if (r0.type == RegType::Stack && r0.frameno >= st_->frames.size()) fail("cannot return stack pointer to the caller");
            cur().regs[0] = r0;
        }
        for (unsigned r = 1; r <= 5; ++r) cur().regs[r] = Reg{};
        next = callee.callsite + 1;
        return true;
    }
    if (!st_->refs.empty()) {
        const auto& r = st_->refs.front();
        fail(fmt::format("Unreleased reference id={} alloc_insn={}", r.id, r.insn));
    }
    // check_return_code
    int lo = 0, hi = 1;
    bool check = false;
    switch (type_) {
    case ProgType::CgroupSkb:
        check = true;
        if (attach_ == "egress") hi = 3;
        break;
    case ProgType::CgroupSock: case ProgType::CgroupDevice: case ProgType::CgroupSysctl: case ProgType::CgroupSockopt:
    case ProgType::SkLookup: case ProgType::Netfilter: check = true; break;
    case ProgType::CgroupSockAddr:
        check = true;
        if (attach_.find("recvmsg") != std::string::npos) lo = hi = 1;
        break;
    case ProgType::Tracing:
        if (attach_.starts_with("iter")) check = true;
        break;
    default: break;
    }
    if (!check) return false;
    const Reg& r0 = reg(0);
    if (r0.type != RegType::Scalar) fail(fmt::format("At program exit the register R0 is not a known value ({})", type_str(r0)));
    if (r0.s.smin < lo || r0.s.smax > hi) {
        std::string m = "At program exit the register R0 has";
        bool unknown = true;
        if (r0.s.smin > std::numeric_limits<int64_t>::min()) { m += fmt::format(" smin={}", r0.s.smin); unknown = false; }
        if (r0.s.smax < std::numeric_limits<int64_t>::max()) { m += fmt::format(" smax={}", r0.s.smax); unknown = false; }
        if (unknown) m += " unknown scalar value";
        fail(m + fmt::format(" should have been in [{}, {}]", lo, hi));
    }
    return false;
}

}  // namespace

Verdict verify_insns(const std::vector<vm::Insn>& insns, harness::ProgType type, std::string_view attach,
                     const std::vector<harness::MapDef>& maps, const VerifyOptions& opts) {
    Checker c(insns, nullptr, type, attach, maps, opts);
    return c.run();
}

Verdict verify(const harness::Object& obj, const harness::LinkedProgram& lp, const VerifyOptions& opts) {
    Checker c(lp.prog.insns, &lp.prog, lp.type, lp.attach, obj.maps(), opts);
    if (!lp.functions.empty())
        for (const auto& pd : obj.programs())
            if (pd.name == lp.functions.front().second) { c.section_ = pd.section; break; }
    {
        // license_is_gpl_compatible; an object without a license is loaded as "GPL" (the loader's default)
        const std::string& l = obj.license();
        c.gpl_ = l.empty() || l == "GPL" || l == "GPL v2" || l == "GPL and additional rights" || l == "Dual BSD/GPL" ||
                 l == "Dual MIT/GPL" || l == "Dual MPL/GPL";
    }
    for (const auto& [pc, name] : lp.externs) c.kfunc_names_[pc] = name;
    return c.run();
}

}  // namespace bpfsim::verifier
