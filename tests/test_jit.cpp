// The x86-64 JIT against the interpreter: every conformance test, random programs, traps,
// budgets, helpers, bpf2bpf calls, tail calls and callbacks must come out the same.
#include "harness/harness.hpp"
#include "vm/jit.hpp"
#include "vm/vm.hpp"
#include "vm/x86enc.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <xbyak/xbyak.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

using Args = std::array<uint64_t, 5>;

// Stack addresses differ between the engines' runs (each has its own stack): compare messages
// with hex numbers masked where the stack is involved.
std::string mask_hex(const std::string& s) {
    const std::string h = std::regex_replace(s, std::regex("0x[0-9a-f]+"), "0x?");
    return std::regex_replace(h, std::regex("[0-9]+ bytes (above|below)"), "N bytes $1");
}

struct Both {
    std::optional<Error> ierr, jerr;
    RunResult i, j;
    std::vector<uint8_t> imem, jmem;
};

Both run_both(const std::vector<Insn>& insns, const std::vector<uint8_t>& mem, const HelperTable& helpers, uint64_t budget,
              JitOptions jo = {}, std::function<void(Env&)> setup = {}) {
    Program prog;
    prog.name = "t";
    prog.insns = insns;
    Both b;
    auto interp = Interpreter::compile(prog, helpers);
    auto jit = Jit::compile(prog, helpers, jo);
    if (!interp) b.ierr = interp.error();
    if (!jit) b.jerr = jit.error();
    if (!interp || !jit) return b;
    RunOptions ro;
    ro.budget = budget;
    alignas(16) static uint8_t stack[kStackSize * kMaxCallDepth];   // one r10 for both engines
    ro.stack = stack;
    // One buffer at one address for both engines, and for every call (its address may end up
    // in r0 or in a trap message, so it steers the program: a test that runs a program checked
    // first, then unchecked only when it ended, must see the same address both times), reset
    // to `mem` before each run.
    static std::vector<uint8_t> buffer(1 << 20);
    REQUIRE(mem.size() <= buffer.size());
    const std::span<uint8_t> m(buffer.data(), mem.size());
    for (int engine = 0; engine < 2; ++engine) {
        std::copy(mem.begin(), mem.end(), m.begin());
        Env env;
        if (!m.empty()) env.mem.add(m.data(), m.size(), kReadWrite, RegionKind::Input, "mem");
        if (setup) setup(env);
        const Args args{m.empty() ? 0 : reinterpret_cast<uint64_t>(m.data()), m.size(), 0, 0, 0};
        if (engine == 0) {
            b.i = interp->run(env, args, ro);
            b.imem.assign(m.begin(), m.end());
        } else {
            b.j = jit->run(env, args, ro);
            b.jmem.assign(m.begin(), m.end());
        }
    }
    return b;
}

// Everything the two engines report, compared; returns "" when they agree.
std::string differences(const Both& b, bool exact_messages = false) {
    if (b.ierr || b.jerr) {
        if (b.ierr && b.jerr && b.ierr->describe() == b.jerr->describe()) return "";
        return fmt::format("compile: interp '{}', jit '{}'", b.ierr ? b.ierr->describe() : "ok", b.jerr ? b.jerr->describe() : "ok");
    }
    std::string d;
    if (b.i.trap.has_value() != b.j.trap.has_value())
        return fmt::format("trap: interp '{}', jit '{}'", b.i.trap ? b.i.trap->message : "none", b.j.trap ? b.j.trap->message : "none");
    if (b.i.trap) {
        const auto& a = *b.i.trap;
        const auto& c = *b.j.trap;
        const bool same_msg = exact_messages ? a.message == c.message : mask_hex(a.message) == mask_hex(c.message);
        if (a.kind != c.kind || a.pc != c.pc || !same_msg)
            d += fmt::format("trap: interp {} '{}', jit {} '{}'; ", to_string(a.kind), a.message, to_string(c.kind), c.message);
    } else if (b.i.r0 != b.j.r0) {
        d += fmt::format("r0: interp {:#x}, jit {:#x}; ", b.i.r0, b.j.r0);
    }
    if (b.i.insns != b.j.insns) d += fmt::format("insns: interp {}, jit {}; ", b.i.insns, b.j.insns);
    if (b.imem != b.jmem) d += "memory differs; ";
    return d;
}

std::vector<Insn> asm_of(const std::string& text) {
    auto a = assemble(text);
    if (!a) FAIL(a.error().describe());
    return *a;
}

uint64_t mix_helper(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, Env&) {
    return (r1 * 31) ^ (r2 << 3) ^ (r3 + r4) ^ (r5 * 0x9e3779b97f4a7c15ull);
}
uint64_t exit7(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_exit(7);
    return 0;
}
uint64_t refuse(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_trap("x");
    return 0;
}
uint64_t call_back(uint64_t fn, uint64_t arg, uint64_t, uint64_t, uint64_t, Env& env) {
    return env.call_function(fn, {arg, 0, 0, 0, 0}) * 10;
}
const Interpreter* g_tail_target = nullptr;
uint64_t tail_call(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_tail_call(*g_tail_target, ctx);
    return 0;
}
uint64_t drop_region(uint64_t start, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    return env.mem.remove(start);
}
HelperTable test_helpers() {
    HelperTable t = conformance_helpers();
    t.add({10, "mix", {}, mix_helper});
    t.add({11, "exit7", {}, exit7});
    t.add({12, "refuse", {}, refuse});
    t.add({13, "call_back", {}, call_back});
    t.add({14, "tail_call", {}, tail_call});
    t.add({15, "drop_region", {}, drop_region});
    return t;
}

// ─────────────────────────── the random program generator ───────────────────────────

struct Gen {
    std::mt19937_64 rng;
    explicit Gen(uint64_t seed) : rng(seed) {}
    uint64_t u(uint64_t n) { return rng() % n; }
    bool chance(unsigned pct) { return u(100) < pct; }

    static constexpr uint8_t kData[] = {0, 2, 3, 4, 5, 6, 7, 8};   // r1 = buffer, r9 = loop counter
    uint8_t data_reg() { return kData[u(std::size(kData))]; }
    uint8_t any_reg() { return chance(10) ? 9 : data_reg(); }
    int32_t imm() {
        switch (u(6)) {
        case 0: return 0;
        case 1: return -1;
        case 2: return static_cast<int32_t>(u(64));
        case 3: return INT32_MIN;
        default: return static_cast<int32_t>(rng());
        }
    }

    using Unit = std::vector<Insn>;
    Insn mk(Op op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
        const OpInfo& oi = op_info(op);
        Insn in;
        in.code = oi.code;
        in.dst = dst;
        in.src = src;
        in.off = off;
        in.imm = imm;
        if (oi.disc == Disc::OFF) in.off = static_cast<int16_t>(oi.dval);
        if (oi.disc == Disc::IMM) in.imm = oi.dval;
        if (oi.disc == Disc::SRC) in.src = static_cast<uint8_t>(oi.dval);
        return in;
    }

    Unit alu_unit() {
        static std::vector<Op> alu = [] {
            std::vector<Op> v;
            for (const auto& oi : op_table())
                if (oi.form == Form::ALU_K || oi.form == Form::ALU_X || oi.form == Form::NEG || oi.form == Form::MOVSX ||
                    oi.form == Form::END)
                    v.push_back(oi.op);
            return v;
        }();
        const Op op = alu[u(alu.size())];
        const OpInfo& oi = op_info(op);
        Insn in = mk(op, data_reg(), oi.form == Form::ALU_X || oi.form == Form::MOVSX ? any_reg() : 0, 0,
                     oi.form == Form::ALU_K ? imm() : 0);
        if (oi.form == Form::ALU_K && (std::string_view(oi.mnemonic).starts_with("lsh") || std::string_view(oi.mnemonic).starts_with("rsh") ||
                                       std::string_view(oi.mnemonic).starts_with("arsh")))
            in.imm = static_cast<int32_t>(u(64));   // the validator wants shift immediates in range
        return {in};
    }

    // A load or store in the buffer (64 bytes at r1) or the stack; sometimes out of bounds.
    Unit mem_unit(bool allow_oob) {
        static const Op loads[] = {Op::LDX_B, Op::LDX_H, Op::LDX_W, Op::LDX_DW, Op::LDXS_B, Op::LDXS_H, Op::LDXS_W};
        static const Op stores[] = {Op::STX_B, Op::STX_H, Op::STX_W, Op::STX_DW, Op::ST_B, Op::ST_H, Op::ST_W, Op::ST_DW};
        static const Op atomics[] = {Op::ATOMIC_ADD64, Op::ATOMIC_FETCH_ADD64, Op::ATOMIC_OR64, Op::ATOMIC_FETCH_OR32,
                                     Op::ATOMIC_AND32, Op::ATOMIC_FETCH_AND64, Op::ATOMIC_XOR64, Op::ATOMIC_FETCH_XOR32,
                                     Op::ATOMIC_XCHG64, Op::ATOMIC_XCHG32, Op::ATOMIC_CMPXCHG64, Op::ATOMIC_CMPXCHG32};
        const unsigned kind = static_cast<unsigned>(u(10));
        Op op = kind < 5 ? loads[u(std::size(loads))] : kind < 9 ? stores[u(std::size(stores))] : atomics[u(std::size(atomics))];
        const unsigned size = op_info(op).form == Form::ATOMIC ? (op_info(op).code == 0xdb ? 8 : 4) : code::mem_size(op_info(op).code);
        const bool stack = chance(40);
        int off = stack ? -static_cast<int>(size) * static_cast<int>(1 + u(64 / size)) : static_cast<int>(size * u(64 / size));
        if (op_info(op).form != Form::ATOMIC && chance(30)) off += static_cast<int>(u(size));   // unaligned is fine
        if (allow_oob && chance(3)) off += stack ? -600 : 64;
        const uint8_t base = stack ? 10 : 1;
        const Form f = op_info(op).form;
        if (f == Form::LDX || f == Form::LDXS) return {mk(op, data_reg(), base, static_cast<int16_t>(off), 0)};
        if (f == Form::ST) return {mk(op, base, 0, static_cast<int16_t>(off), imm())};
        return {mk(op, base, data_reg(), static_cast<int16_t>(off), 0)};
    }

    Unit jump_unit(int16_t off) {
        static std::vector<Op> jumps = [] {
            std::vector<Op> v;
            for (const auto& oi : op_table())
                if (oi.form == Form::JCOND_K || oi.form == Form::JCOND_X) v.push_back(oi.op);
            return v;
        }();
        const Op op = jumps[u(jumps.size())];
        const bool reg = op_info(op).form == Form::JCOND_X;
        return {mk(op, any_reg(), reg ? any_reg() : 0, off, reg ? 0 : imm())};
    }

    // Shapes the unchecked JIT folds (vm/jit.cpp "Optimisations"): lea, movzx, be16, address
    // folding, inverted branches, stack counters, known bits, accumulators; random registers, so
    // some are live and some dead afterwards.
    Unit pattern_unit() {
        const uint8_t a = data_reg(), b = data_reg(), c = data_reg();
        switch (u(10)) {
        case 0:
            return {mk(Op::MOV64_REG, a, b, 0, 0), chance(50) ? mk(Op::ADD64_REG, a, chance(20) ? a : c, 0, 0) : mk(Op::ADD64_IMM, a, 0, 0, imm())};
        case 1:
            return {mk(chance(50) ? Op::MOV32_REG : Op::MOV64_REG, a, chance(20) ? a : b, 0, 0),
                    mk(chance(50) ? Op::AND32_IMM : Op::AND64_IMM, a, 0, 0, chance(50) ? 0xff : 0xffff)};
        case 2: {   // be16 from the buffer at r1
            const auto o = static_cast<int16_t>(u(62));
            const bool hi_first = chance(70);
            const Insn lo = mk(Op::LDX_B, a, 1, static_cast<int16_t>(o + 1), 0), hi = mk(Op::LDX_B, b, 1, o, 0);
            return {hi_first ? lo : hi, hi_first ? hi : lo, mk(chance(50) ? Op::LSH32_IMM : Op::LSH64_IMM, b, 0, 0, 8),
                    mk(chance(50) ? Op::OR32_REG : Op::OR64_REG, b, a, 0, 0)};
        }
        case 3: {   // rS = r1; rS += rK; load [rS + off] inside the buffer
            static const Op loads[] = {Op::LDX_B, Op::LDX_H, Op::LDX_W, Op::LDX_DW};
            const Op l = loads[u(4)];
            const unsigned size = code::mem_size(op_info(l).code);
            const auto k = static_cast<int32_t>(u(64 - size + 1));
            const uint8_t s_ = a == 1 ? 2 : a, kr = b == s_ || b == 1 ? (s_ == 3 ? 4 : 3) : b;
            return {mk(Op::MOV64_IMM, kr, 0, 0, k), mk(Op::MOV64_REG, s_, 1, 0, 0), mk(Op::ADD64_REG, s_, kr, 0, 0),
                    mk(l, chance(40) ? s_ : c, s_, 0, 0)};
        }
        case 5: {   // be16 [& mask] from [rS] with rS = r1 + rK computed just before, whose second
                    // load may overwrite rS; masks of every kind (only their second byte matters)
            const uint8_t s_ = a == 1 ? 2 : a, kr = b == s_ || b == 1 ? (s_ == 3 ? 4 : 3) : b;
            uint8_t x = c == 1 || c == s_ || c == kr ? 5 : c, y = x == 6 ? 7 : 6;
            if (y == s_ || y == kr) y = 8;
            if (x == y) x = y == 5 ? 0 : 5;
            const auto k = static_cast<int32_t>(u(32));
            const auto o = static_cast<int16_t>(u(30));
            const bool hi_first = chance(60);
            if (chance(40)) (hi_first ? x : y) = s_;   // the second load overwrites the base
            const Insn lo = mk(Op::LDX_B, x, s_, static_cast<int16_t>(o + 1), 0), hi = mk(Op::LDX_B, y, s_, o, 0);
            Unit r{mk(Op::MOV64_IMM, kr, 0, 0, k), mk(Op::MOV64_REG, s_, 1, 0, 0), mk(Op::ADD64_REG, s_, kr, 0, 0),
                   hi_first ? hi : lo, hi_first ? lo : hi, mk(chance(50) ? Op::LSH32_IMM : Op::LSH64_IMM, y, 0, 0, 8)};
            static const int32_t masks[] = {0x3f00, 0xff00, 0x0f00, 0x3fff, 0x1ff00, 0xff, -256};
            if (chance(60)) r.push_back(mk(chance(50) ? Op::AND32_IMM : Op::AND64_IMM, y, 0, 0, masks[u(std::size(masks))]));
            r.push_back(mk(chance(50) ? Op::OR32_REG : Op::OR64_REG, y, x, 0, 0));
            return r;
        }
        case 6: {   // a stack counter: rX = slot; rX op= rY | imm; slot = rX (or another slot), then
                    // the slot into r0 (rX sometimes live after)
            static const Op ops[] = {Op::ADD64_REG, Op::SUB64_REG, Op::OR64_REG, Op::AND64_REG, Op::XOR64_REG,
                                     Op::ADD64_IMM, Op::SUB64_IMM, Op::OR64_IMM, Op::AND64_IMM, Op::XOR64_IMM, Op::MUL64_REG};
            const auto o = static_cast<int16_t>(-8 * static_cast<int>(1 + u(4)));
            const auto o2 = chance(85) ? o : static_cast<int16_t>(o - 8);
            const Op m = ops[u(std::size(ops))];
            const bool reg = op_info(m).form == Form::ALU_X;
            const uint8_t x = a == 0 ? 2 : a;
            return {mk(Op::LDX_DW, x, 10, o, 0), mk(m, x, reg ? (chance(15) ? x : b) : 0, 0, reg ? 0 : imm()),
                    mk(Op::STX_DW, 10, x, o2, 0), mk(Op::LDX_DW, c == 0 ? 3 : c, 10, o, 0), mk(Op::ADD64_REG, 0, c == 0 ? 3 : c, 0, 0)};
        }
        case 7: {   // a value with known-zero high bits (a load, a shift, an and), and with a mask that
                    // may or may not keep them all, sometimes after a join
            static const Op loads[] = {Op::LDX_B, Op::LDX_H, Op::LDX_W, Op::LDX_DW};
            static const int32_t masks[] = {0xff, 0xffff, 0x7fff, 0xfff, -1, 0x7fffffff, 0x1ffff, 0xfe};
            const Op l = loads[u(4)];
            const unsigned size = code::mem_size(op_info(l).code);
            const auto o = static_cast<int16_t>(u(64 - size + 1));
            Unit r{mk(l, a, 1, o, 0)};
            switch (u(6)) {
            case 0: r.push_back(mk(chance(50) ? Op::LSH32_IMM : Op::LSH64_IMM, a, 0, 0, static_cast<int32_t>(u(20)))); break;
            case 1: r.push_back(mk(chance(50) ? Op::RSH32_IMM : Op::RSH64_IMM, a, 0, 0, static_cast<int32_t>(u(20)))); break;
            case 2: r.push_back(mk(Op::MOV64_REG, b, a, 0, 0)); break;
            case 3: r.push_back(mk(chance(50) ? Op::OR32_REG : Op::OR64_REG, a, b, 0, 0)); break;
            case 4: {   // byte swaps of 16, 32 and 64 bits
                static const Op swaps[] = {Op::LE16, Op::LE32, Op::LE64, Op::BE16, Op::BE32, Op::BE64, Op::BSWAP16, Op::BSWAP32, Op::BSWAP64};
                const Op sw = swaps[u(std::size(swaps))];
                r.push_back(mk(sw, a, 0, 0, op_info(sw).dval));
                break;
            }
            default: break;
            }
            if (chance(50)) {   // a join: a forward jump over one instruction that widens or not
                r.push_back(mk(Op::JEQ64_IMM, c, 0, 1, static_cast<int32_t>(u(3))));
                r.push_back(chance(50) ? mk(Op::MOV64_IMM, a, 0, 0, imm()) : mk(Op::AND32_IMM, a, 0, 0, 0xff));
            }
            r.push_back(mk(chance(50) ? Op::AND32_IMM : Op::AND64_IMM, a, 0, 0, masks[u(std::size(masks))]));
            r.push_back(mk(Op::XOR64_REG, 0, a, 0, 0));
            return r;
        }
        case 8: {   // an accumulator: rA op= rB; instructions that may or may not touch either; rB = rA;
                    // rA dead after or not
            static const Op ops[] = {Op::ADD64_REG, Op::XOR64_REG, Op::OR64_REG, Op::AND64_REG, Op::MUL64_REG,
                                     Op::SUB64_REG, Op::ADD32_REG};
            const uint8_t x = a, y = b == a ? (a == 2 ? 3 : 2) : b;
            const uint8_t z = c != x && c != y ? c : 0;
            // lddw into neither: the scan and the liveness pass over its second slot
            auto lddw = [&](Unit& r) {
                r.push_back(mk(Op::LDDW, z, 0, 0, imm()));
                r.push_back(Insn{});
            };
            Unit r{mk(ops[u(std::size(ops))], x, y, 0, 0)};
            for (auto k = u(4); k > 0; --k) {
                if (chance(15)) {
                    r.push_back(mk(Op::ADD64_IMM, chance(50) ? x : y, 0, 0, imm()));
                } else if (chance(15)) {
                    lddw(r);
                } else {
                    const Unit v = chance(50) ? alu_unit() : mem_unit(false);
                    r.insert(r.end(), v.begin(), v.end());
                }
            }
            r.push_back(mk(Op::MOV64_REG, y, x, 0, 0));
            if (chance(30)) lddw(r);   // between the copy and a read of rA: rA stays live
            r.push_back(chance(40) ? mk(Op::XOR64_REG, 0, x, 0, 0) : mk(Op::MOV64_IMM, x, 0, 0, imm()));
            r.push_back(mk(Op::XOR64_REG, 0, y, 0, 0));
            return r;
        }
        case 4: {   // if (cond) goto +1; goto +2; (two instructions skipped or not)
            Unit j = jump_unit(1);
            j.push_back(mk(Op::JA, 0, 0, 2, 0));
            j.push_back(alu_unit()[0]);
            j.push_back(alu_unit()[0]);
            return j;
        }
        default:
            return alu_unit();
        }
    }

    std::vector<Insn> program(bool allow_oob, bool patterns = false) {
        std::vector<Unit> units;
        // Initial values: r0, r2-r8 random 64-bit constants.
        for (uint8_t r : kData) {
            const uint64_t v = rng();
            Insn lo = mk(Op::LDDW, r, 0, 0, static_cast<int32_t>(v));
            Insn hi;
            hi.imm = static_cast<int32_t>(v >> 32);
            units.push_back({lo, hi});
        }
        const unsigned n = 10 + static_cast<unsigned>(u(40));
        std::vector<std::pair<std::size_t, std::size_t>> fwd;   // unit index of a jump, target unit
        for (unsigned i = 0; i < n; ++i) {
            const unsigned k = static_cast<unsigned>(u(100));
            if (patterns && chance(40)) units.push_back(pattern_unit());
            else if (k < 45) units.push_back(alu_unit());
            else if (k < 70) units.push_back(mem_unit(allow_oob));
            else if (k < 80) {
                fwd.emplace_back(units.size(), 0);
                units.push_back(jump_unit(0));
            } else if (k < 86) {
                // call the mixing helper, or a subprogram
                if (chance(50)) units.push_back({mk(Op::CALL_HELPER, 0, 0, 0, 10)});
                else units.push_back({mk(Op::CALL_LOCAL, 0, 1, 0, 0)});   // target patched below
            } else if (k < 92) {
                // a bounded loop: r9 = count; body; r9 -= 1; if r9 != 0 goto body
                const unsigned count = 1 + static_cast<unsigned>(u(20));
                units.push_back({mk(Op::MOV64_IMM, 9, 0, 0, static_cast<int32_t>(count))});
                std::vector<Unit> body;
                const unsigned m = 1 + static_cast<unsigned>(u(6));
                // (patterns too: a value narrowed before the loop and widened in it reaches the
                // loop's ands through the backward jump)
                for (unsigned b = 0; b < m; ++b)
                    body.push_back(patterns && chance(40) ? pattern_unit() : chance(60) ? alu_unit() : mem_unit(allow_oob));
                std::size_t len = 0;
                for (auto& b : body) {
                    len += b.size();
                    units.push_back(b);
                }
                units.push_back({mk(Op::SUB64_IMM, 9, 0, 0, 1)});
                units.push_back({mk(Op::JNE64_IMM, 9, 0, static_cast<int16_t>(-static_cast<int>(len) - 2), 0)});
            } else {
                units.push_back({mk(Op::MAY_GOTO, 0, 0, 0, 0)});   // off 0: falls through either way
            }
        }
        const std::size_t exit_unit = units.size();
        units.push_back({mk(Op::EXIT, 0, 0, 0, 0)});
        // The subprogram: mixes its arguments into r0.
        const std::size_t sub_unit = units.size();
        units.push_back({mk(Op::MOV64_REG, 0, 1, 0, 0)});
        units.push_back({mk(Op::XOR64_REG, 0, 2, 0, 0)});
        units.push_back({mk(Op::MUL64_IMM, 0, 0, 0, 0x1003)});
        units.push_back({mk(Op::ADD64_REG, 0, 5, 0, 0)});
        units.push_back({mk(Op::MOV64_IMM, 6, 0, 0, 12345)});   // r6 is restored by the return
        units.push_back({mk(Op::EXIT, 0, 0, 0, 0)});

        std::vector<std::size_t> pc_of(units.size() + 1, 0);
        for (std::size_t i = 0; i < units.size(); ++i) pc_of[i + 1] = pc_of[i] + units[i].size();
        for (auto& [j, t] : fwd) {
            t = j + 1 + u(std::min<std::size_t>(6, exit_unit - j));
            units[j][0].off = static_cast<int16_t>(pc_of[t] - pc_of[j] - 1);
        }
        for (std::size_t i = 0; i < units.size(); ++i)
            if (units[i].size() == 1 && units[i][0].code == 0x85 && units[i][0].src == 1)
                units[i][0].imm = static_cast<int32_t>(pc_of[sub_unit] - pc_of[i] - 1);
        std::vector<Insn> out;
        for (auto& unit : units) out.insert(out.end(), unit.begin(), unit.end());
        return out;
    }
};

}  // namespace

TEST_CASE("jit: every opcode of the table has an emitter", "[jit]") {
    std::size_t n = 0;
    for (const auto& oi : op_table()) {
        INFO(oi.name);
        CHECK(Jit::has_emitter(oi.op));
        ++n;
    }
    CHECK(n == kOpCount);
    CHECK_FALSE(Jit::has_emitter(Op::Invalid));
}

TEST_CASE("jit: all conformance tests give the interpreter's results", "[jit]") {
    const std::filesystem::path dir = BPFSIM_SHARED_DIR "/conformance";
    REQUIRE(std::filesystem::exists(dir));
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".data") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::size_t passed = 0, interp_passed = 0, same = 0;
    const HelperTable helpers = conformance_helpers();
    for (const auto& f : files) {
        INFO(f.filename().string());
        auto c = harness::parse_conformance(f);
        REQUIRE(c.ok());
        if (harness::run_conformance(*c).passed) ++interp_passed;
        std::vector<Insn> insns;
        if (!c->asm_text.empty()) {
            auto a = assemble(c->asm_text, c->file);
            if (a) insns = *a;
        }
        if (insns.empty())
            for (uint64_t w : c->raw) insns.push_back(Insn::from_raw(w));
        if (insns.empty()) {   // an assembly error: no engine involved
            ++same;
            ++passed;
            continue;
        }
        const Both b = run_both(insns, c->mem, helpers, 1'000'000);
        const std::string diff = differences(b, true);
        CHECK(diff == "");
        if (diff.empty()) ++same;
        // Pass/fail as run_conformance judges the interpreter, here for the JIT's outcome.
        std::string failure = b.jerr ? b.jerr->describe() : b.j.trap ? b.j.trap->message : "";
        bool ok;
        if (!c->error.empty()) {
            ok = !failure.empty() && (failure.find(c->error) != std::string::npos || std::regex_search(failure, std::regex(c->error)));
        } else {
            ok = failure.empty() && c->result && b.j.r0 == *c->result;
        }
        if (ok) ++passed;
    }
    WARN(fmt::format("conformance through the JIT: {}/{} passed (interpreter {}), {} identical to the interpreter", passed,
                     files.size(), interp_passed, same));
    CHECK(files.size() >= 313);
    CHECK(passed == interp_passed);
    CHECK(same == files.size());
}

TEST_CASE("jit: random programs run identically in the interpreter and the JIT", "[jit]") {
    const HelperTable helpers = test_helpers();
    std::size_t traps = 0, budget_traps = 0;
    const unsigned kPrograms = 4000;
    for (unsigned seed = 1; seed <= kPrograms; ++seed) {
        Gen g(seed);
        const auto prog = g.program(true);
        std::vector<uint8_t> mem(64);
        for (auto& b : mem) b = static_cast<uint8_t>(g.rng());
        const uint64_t budget = g.chance(20) ? 5 + g.u(200) : 1'000'000;
        const Both b = run_both(prog, mem, helpers, budget);
        INFO("seed " << seed << "\n" << disassemble_program(prog));
        REQUIRE(!b.ierr);
        REQUIRE(differences(b) == "");
        if (b.i.trap) {
            ++traps;
            if (b.i.trap->kind == TrapKind::Budget) ++budget_traps;
        }
    }
    WARN(fmt::format("{} random programs: {} trapped ({} on the budget), all identical", kPrograms, traps, budget_traps));
    CHECK(traps > 0);
    CHECK(budget_traps > 0);
    CHECK(traps < kPrograms / 2);
}

TEST_CASE("jit: unchecked mode computes the same results for programs that stay in bounds", "[jit]") {
    const HelperTable helpers = test_helpers();
    unsigned ran = 0;
    for (unsigned seed = 1; seed <= 500; ++seed) {
        Gen g(seed * 7919);
        const auto prog = g.program(false);
        std::vector<uint8_t> mem(64);
        for (auto& b : mem) b = static_cast<uint8_t>(g.rng());
        // Forward jumps can enter a loop past its counter: keep only programs that end.
        if (run_both(prog, mem, helpers, 1'000'000).i.trap) continue;
        ++ran;
        const Both b = run_both(prog, mem, helpers, 0, JitOptions{false});
        INFO("seed " << seed);
        REQUIRE(!b.i.trap);
        REQUIRE(!b.j.trap);
        CHECK(b.i.r0 == b.j.r0);
        CHECK(b.imem == b.jmem);
        CHECK(b.j.insns == 0);
    }
    CHECK(ran > 300);
}

TEST_CASE("jit: unchecked-mode optimisations keep the interpreter's results", "[jit]") {
    // Programs full of the folded shapes, with jumps landing anywhere (so some shapes must not
    // be folded): each optimisation alone and all together against the interpreter.
    const HelperTable helpers = test_helpers();
    const uint32_t masks[] = {kJitOptLea, kJitOptMovzx, kJitOptBe16, kJitOptStackRegs, kJitOptAddr, kJitOptBranch, kJitOptAlign, kJitOptRmw, kJitOptKnownBits, kJitOptSink, kJitOptDefault, ~0u};
    unsigned ran = 0;
    for (unsigned seed = 1; seed <= 1500; ++seed) {
        Gen g(seed * 104729);
        const auto prog = g.program(false, true);
        std::vector<uint8_t> mem(64);
        for (auto& b : mem) b = static_cast<uint8_t>(g.rng());
        const Both ref = run_both(prog, mem, helpers, 1'000'000);
        if (ref.ierr || ref.i.trap) continue;
        ++ran;
        for (const uint32_t m : masks) {
            JitOptions jo{false};
            jo.optimize = m;
            const Both b = run_both(prog, mem, helpers, 0, jo);
            INFO("seed " << seed << " optimisations " << m << "\n" << disassemble_program(prog));
            REQUIRE(!b.j.trap);
            REQUIRE(b.i.r0 == b.j.r0);
            REQUIRE(b.imem == b.jmem);
        }
    }
    CHECK(ran > 700);
}

TEST_CASE("jit: a mask is dropped only where the value is known narrower, loops included", "[jit]") {
    const HelperTable helpers = test_helpers();
    auto code_size = [&](const std::string& text, uint32_t optimize) {
        Program p;
        p.insns = asm_of(text);
        JitOptions jo{false};
        jo.optimize = optimize;
        auto j = Jit::compile(p, helpers, jo);
        REQUIRE(j);
        return j->code().size();
    };
    const uint32_t with = kJitOptDefault | kJitOptKnownBits, without = with & ~kJitOptKnownBits;
    // A byte, through a join whose other side is a byte too: the and goes.
    const std::string narrow = "ldxb %r0, [%r1+0]\njeq %r2, 0, +1\nldxb %r0, [%r1+1]\nand32 %r0, 0xff\nexit";
    CHECK(code_size(narrow, with) < code_size(narrow, without));
    // The other side wider: it stays.
    const std::string wide = "ldxb %r0, [%r1+0]\njeq %r2, 0, +1\nldxh %r0, [%r1+1]\nand32 %r0, 0xff\nexit";
    CHECK(code_size(wide, with) == code_size(wide, without));
    // A byte shifted left by 8 each time round a loop: 8, 16, 24, then 32 bits up, so the 32-bit
    // and (a zero extension) is needed on the last round. Found only by going round the loop
    // until nothing grows (or by giving up to 64 bits where the loop comes back).
    const std::string loop = R"(ldxb %r2, [%r1+0]
mov %r3, 4
lsh %r2, 8
mov %r0, %r2
and32 %r0, 0xffffffff
sub %r3, 1
jne %r3, 0, -5
exit)";
    std::vector<uint8_t> mem = {0x5a, 1, 2, 3};
    for (const uint32_t m : {with, without}) {
        JitOptions jo{false};
        jo.optimize = m;
        const Both b = run_both(asm_of(loop), mem, helpers, 0, jo);
        INFO("optimisations " << m);
        REQUIRE(!b.i.trap);
        REQUIRE(!b.j.trap);
        CHECK(b.i.r0 == 0);   // 0x5a << 32, zero-extended from 32 bits
        CHECK(b.j.r0 == 0);
    }
}

TEST_CASE("jit: a rotated register mapping gives the same results", "[jit]") {
    // Every BPF register moved to another x86 register: code that assumes r0 is rax, r1..r5 are
    // the argument registers or r10 is rbp shows up here. Checked mode: random programs with
    // helpers, calls, atomics, traps and budgets; unchecked mode: the optimised shapes.
    const HelperTable helpers = test_helpers();
    for (unsigned rot = 1; rot < kNumRegs; ++rot) {
        JitOptions checked{true};
        checked.rotate = rot;
        for (unsigned seed = 1; seed <= 300; ++seed) {
            Gen g(seed + 1000 * rot);
            const auto prog = g.program(true, seed % 2 == 0);
            std::vector<uint8_t> mem(64);
            for (auto& b : mem) b = static_cast<uint8_t>(g.rng());
            const uint64_t budget = g.chance(20) ? 5 + g.u(200) : 1'000'000;
            const Both b = run_both(prog, mem, helpers, budget, checked);
            INFO("rotation " << rot << " seed " << seed << "\n" << disassemble_program(prog));
            REQUIRE(!b.ierr);
            REQUIRE(differences(b) == "");
            JitOptions unchecked{false};
            unchecked.rotate = rot;
            unchecked.optimize = ~0u;   // every optimisation, stack slots in registers included
            if (b.i.trap) continue;
            const Both u = run_both(prog, mem, helpers, 0, unchecked);
            REQUIRE(!u.j.trap);
            REQUIRE(u.i.r0 == u.j.r0);
            REQUIRE(u.imem == u.jmem);
        }
    }
    // And the conformance suite under one rotation (helpers, lddw, div/mod, shifts by r4/rcx).
    const std::filesystem::path dir = BPFSIM_SHARED_DIR "/conformance";
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".data") continue;
        auto c = harness::parse_conformance(e.path());
        REQUIRE(c.ok());
        std::vector<Insn> insns;
        if (!c->asm_text.empty())
            if (auto a = assemble(c->asm_text, c->file)) insns = *a;
        if (insns.empty())
            for (uint64_t w : c->raw) insns.push_back(Insn::from_raw(w));
        if (insns.empty()) continue;
        for (unsigned rot : {3u, 7u}) {
            JitOptions jo{true};
            jo.rotate = rot;
            INFO(e.path().filename().string() << " rotation " << rot);
            CHECK(differences(run_both(insns, c->mem, conformance_helpers(), 1'000'000, jo), true) == "");
        }
        ++n;
    }
    CHECK(n >= 300);
}

TEST_CASE("jit: memory faults trap at the interpreter's pc with its message", "[jit]") {
    const HelperTable helpers = test_helpers();
    const std::vector<uint8_t> mem(16, 0xab);
    for (const char* text : {
             "mov %r0, 0\nldxw %r0, [%r1+14]\nexit",            // 2 bytes past the end
             "mov %r0, 0\nstxdw [%r1+16], %r0\nexit",           // just past
             "mov %r0, 0\nstb [%r1-1], 1\nexit",                // just before
             "ldxdw %r0, [%r10+0]\nexit",                       // above the stack
             "ldxb %r0, [%r10-513]\nexit",                      // below the stack
             "mov %r2, 0\nldxb %r0, [%r2+0]\nexit",             // null
             "mov %r0, 1\nlock add [%r1+4], %r0\nexit",         // misaligned atomic
             "mov %r0, 1\nlock add32 [%r1+16], %r0\nexit",      // out-of-bounds atomic
         }) {
        INFO(text);
        const Both b = run_both(asm_of(text), mem, helpers, 1000);
        REQUIRE(b.i.trap);
        REQUIRE(b.j.trap);
        CHECK(b.j.trap->pc == b.i.trap->pc);
        CHECK(b.j.trap->kind == b.i.trap->kind);
        if (b.i.trap->message.find("stack") == std::string::npos) CHECK(b.j.trap->addr == b.i.trap->addr);
        CHECK(b.j.trap->size == b.i.trap->size);
        CHECK(mask_hex(b.j.trap->message) == mask_hex(b.i.trap->message));
        if (b.i.trap->message.find("stack") == std::string::npos) CHECK(b.j.trap->message == b.i.trap->message);
        CHECK(b.j.insns == b.i.insns);
    }
    // The JIT's last-region cache forgets a region a helper removed.
    for (const char* text : {"mov %r6, %r1\nldxb %r0, [%r6+1]\nstb [%r6+2], 1\ncall 15\nldxb %r0, [%r6+1]\nexit",
                             "mov %r6, %r1\nldxb %r0, [%r6+1]\nstb [%r6+2], 1\ncall 15\nstb [%r6+2], 1\nexit"}) {
        INFO(text);
        const Both b = run_both(asm_of(text), mem, helpers, 1000);
        REQUIRE(b.j.trap);
        CHECK(b.j.trap->pc == 4);
        CHECK(differences(b) == "");   // the message names the nearest region: the stack
    }
    // A read-only region refuses a store with the same message.
    std::vector<uint8_t> ro(8, 1);
    auto prog = asm_of("mov %r0, 0\nldxb %r0, [%r1+0]\nstb [%r1+0], 2\nexit");
    Program p;
    p.insns = prog;
    auto interp = Interpreter::compile(p, helpers);
    auto jit = Jit::compile(p, helpers);
    REQUIRE(interp.ok());
    REQUIRE(jit.ok());
    Env e1, e2;
    e1.mem.add(ro.data(), ro.size(), kRead, RegionKind::Input, "ro");
    e2.mem.add(ro.data(), ro.size(), kRead, RegionKind::Input, "ro");
    auto a = interp->run(e1, {reinterpret_cast<uint64_t>(ro.data())});
    auto c = jit->run(e2, {reinterpret_cast<uint64_t>(ro.data())});
    REQUIRE(a.trap);
    REQUIRE(c.trap);
    CHECK(c.trap->pc == 2);
    CHECK(c.trap->message == a.trap->message);
}

TEST_CASE("jit: the budget runs out at the interpreter's pc, and counts instructions the same", "[jit]") {
    const HelperTable helpers = test_helpers();
    const char* loop = "mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 1000, l\nexit";
    for (uint64_t budget : {1ull, 2ull, 3ull, 10ull, 57ull, 1000ull, 2000ull, 2001ull, 2002ull, 0ull}) {
        INFO("budget " << budget);
        const Both b = run_both(asm_of(loop), {}, helpers, budget);
        CHECK(differences(b, true) == "");
    }
    const Both ok = run_both(asm_of(loop), {}, helpers, 0);
    CHECK(ok.j.r0 == 1000);
    CHECK(ok.j.insns == 2002);
    const Both out = run_both(asm_of(loop), {}, helpers, 100);
    REQUIRE(out.j.trap);
    CHECK(out.j.trap->kind == TrapKind::Budget);
    CHECK(out.j.trap->pc == 2);
    CHECK(out.j.trap->message == "pc 2: instruction budget of 100 exhausted");
    // endless loop, budget via ja
    const Both endless = run_both(asm_of("l:\nja l\nexit"), {}, helpers, 12345);
    CHECK(differences(endless, true) == "");
    REQUIRE(endless.j.trap);
    // may_goto leaves a loop after its allowance
    const Both mg = run_both(asm_of("mov %r0, 0\nl:\nmay_goto +2\nadd %r0, 1\nja l\nexit"), {}, helpers, 0);
    CHECK(differences(mg, true) == "");
    CHECK(mg.j.r0 == static_cast<uint64_t>(kMayGotoLoops));
}

TEST_CASE("jit: helpers, requests, bpf2bpf calls, callx, tail calls and callbacks", "[jit]") {
    const HelperTable helpers = test_helpers();
    Env scratch;
    auto same = [&](const std::string& text, uint64_t budget = 1'000'000) {
        INFO(text);
        const Both b = run_both(asm_of(text), std::vector<uint8_t>(16, 3), helpers, budget);
        CHECK(differences(b) == "");   // hex masked: stack addresses differ between the runs
        return b;
    };
    CHECK(same("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 10\nadd %r0, %r1\nexit").j.r0 ==
          mix_helper(1, 2, 3, 4, 5, scratch) + 1);
    CHECK(same("mov %r0, 1\ncall 11\nmov %r0, 99\nexit").j.r0 == 7);
    auto refused = same("mov %r0, 1\ncall 12\nexit");
    REQUIRE(refused.j.trap);
    CHECK(refused.j.trap->message == "pc 1: helper 12 failed: x");
    same("mov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9\nmov %r1, 3\ncall local f\nadd %r0, %r6\nadd %r0, %r7\nadd %r0, %r9\nexit\n"
         "f:\nmov %r6, 100\nmov %r9, 1000\nstdw [%r10-8], 42\nldxdw %r0, [%r10-8]\nadd %r0, %r1\nexit");
    // recursion to the depth limit
    auto deep = same("mov %r1, 0\ncall local f\nexit\nf:\nadd %r1, 1\ncall local f\nexit");
    REQUIRE(deep.j.trap);
    CHECK(deep.j.trap->kind == TrapKind::CallDepth);
    // callx: helper by id, function by address, garbage
    same("mov %r1, 2\nmov %r2, 3\nmov %r6, 10\ncallx %r6\nexit");
    same("lddw %r6, func(f)\nmov %r1, 5\ncallx %r6\nadd %r0, 1\nexit\nf:\nmov %r0, %r1\nmul %r0, 3\nexit");
    same("mov %r6, 123456\ncallx %r6\nexit");
    same("mov %r6, 12\ncallx %r6\nexit");
    // a callback run by a helper (in the interpreter), sharing the budget and the stack chain
    auto cb = same("stdw [%r10-8], 9\nlddw %r1, func(f)\nmov %r2, 4\ncall 13\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\n"
                   "f:\nmov %r0, %r1\nstdw [%r10-8], 1\nadd %r0, 2\nexit");
    CHECK(cb.j.r0 == 69);
    same("lddw %r1, func(f)\nmov %r2, 4\ncall 13\nexit\nf:\nldxb %r0, [%r10+600]\nexit");
    // budget traps around calls
    for (uint64_t budget = 1; budget < 12; ++budget)
        same("mov %r1, 0\ncall local f\nadd %r0, 1\nexit\nf:\nmov %r0, 1\nexit", budget);
    // ld_abs / ld_ind without a packet and with one
    same("ldabsb 3\nexit");
    {
        std::vector<uint8_t> pkt{1, 2, 3, 4, 5, 6, 7, 8};
        const Both b = run_both(asm_of("mov %r6, 2\nldabsh 1\nmov %r7, %r0\nldindw %r6, 1\nadd %r0, %r7\nldabsb 100\nexit"), {},
                                helpers, 1000, {}, [&](Env& e) {
                                    e.skb_data = pkt.data();
                                    e.skb_len = static_cast<uint32_t>(pkt.size());
                                });
        CHECK(differences(b, true) == "");
        CHECK(b.j.r0 == 0);   // the last load misses
    }
}

TEST_CASE("jit: tail calls continue in the target, also from a subprogram", "[jit]") {
    const HelperTable helpers = test_helpers();
    Program tp;
    tp.insns = asm_of("mov %r0, %r1\nadd %r0, 1\nexit");
    auto target = Interpreter::compile(tp, helpers);
    REQUIRE(target.ok());
    g_tail_target = &*target;
    for (const char* text : {"mov %r1, 5\ncall 14\nmov %r0, 99\nexit",
                             "call local f\nadd %r0, 100\nexit\nf:\nmov %r1, 5\ncall 14\nmov %r0, 99\nexit"}) {
        INFO(text);
        for (uint64_t budget : {0ull, 2ull, 3ull, 4ull, 5ull, 7ull, 100ull}) {
            const Both b = run_both(asm_of(text), {}, helpers, budget);
            CHECK(differences(b, true) == "");
        }
    }
    const Both b = run_both(asm_of("call local f\nadd %r0, 100\nexit\nf:\nmov %r1, 5\ncall 14\nmov %r0, 99\nexit"), {}, helpers, 0);
    CHECK(b.j.r0 == 106);
    g_tail_target = nullptr;
}

TEST_CASE("jit: compile errors are the interpreter's, never aborts; code is freed with the Jit", "[jit]") {
    const HelperTable helpers = test_helpers();
    Program p;
    p.insns = asm_of("mov %r0, 1\ncall 99\nexit");
    auto j = Jit::compile(p, helpers);
    auto i = Interpreter::compile(p, helpers);
    REQUIRE_FALSE(j.ok());
    REQUIRE_FALSE(i.ok());
    CHECK(j.error().describe() == i.error().describe());
    p.insns = asm_of("mov %r0, 1");
    CHECK_FALSE(Jit::compile(p, helpers).ok());
    p.insns = asm_of("mov %r0, 1\nexit");
    for (int k = 0; k < 200; ++k) {
        auto jit = Jit::compile(p, helpers);
        REQUIRE(jit.ok());
        CHECK(jit->code_size() > 0);
    }
}

namespace {
// The permissions of the mapping that holds addr ("r-xp"), and how many mappings there are.
std::pair<std::string, std::size_t> mapping_of(const void* addr) {
    std::ifstream maps("/proc/self/maps");
    std::string line, perms;
    std::size_t count = 0;
    const auto a = reinterpret_cast<uintptr_t>(addr);
    while (std::getline(maps, line)) {
        ++count;
        unsigned long lo = 0, hi = 0;
        char p[8] = {};
        if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, p) == 3 && a >= lo && a < hi) perms = p;
    }
    return {perms, count};
}
}  // namespace

TEST_CASE("jit: code pages are never writable and executable at once; freed mappings are kept boundedly", "[jit]") {
    const HelperTable helpers = test_helpers();
    // Programs of many sizes compiled and freed in turn: their mappings go back to the JIT's
    // bounded store of kept mappings, and the next compile takes one (made writable while code
    // is copied in, executable after).
    std::size_t before = 0;
    for (int k = 0; k < 600; ++k) {
        Program p;
        std::string text;
        for (int i = 0; i < (k * 37) % 3000; ++i) text += "add %r0, 1\n";
        p.insns = asm_of(text + "exit");
        auto jit = Jit::compile(p, helpers);
        REQUIRE(jit.ok());
        const auto [perms, count] = mapping_of(jit->code().data());
        INFO("program " << k << ", " << p.insns.size() << " instructions");
        REQUIRE(perms == "r-xp");
        if (k == 0) before = count;
        CHECK(count < before + 300);   // (at most 256 kept, besides what the rest of the process maps)
        Env env;
        CHECK(jit->run(env, {}, {}).r0 == static_cast<uint64_t>((k * 37) % 3000));
    }
}

TEST_CASE("jit: Engine::Auto runs verified programs in the JIT, the rest in the interpreter", "[jit]") {
    auto obj = harness::Object::open(BPFSIM_CORPUS_DIR "/xdp_counter.o");
    REQUIRE(obj.ok());
    harness::WorldOptions wo;
    wo.engine = harness::Engine::Auto;
    auto w = harness::World::create(*obj, wo);
    REQUIRE(w.ok());
    std::vector<uint8_t> packet(64, 0);
    packet[12] = 0x08;   // IPv4
    CHECK_FALSE((*w)->uses_jit("xdp_count"));
    auto a = (*w)->run_packet("xdp_count", packet);
    (*w)->mark_verified("xdp_count");
    CHECK((*w)->uses_jit("xdp_count"));
    auto b = (*w)->run_packet("xdp_count", packet);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->result.r0 == b->result.r0);
    CHECK(a->result.insns == b->result.insns);   // the checked JIT counts as the interpreter does
    wo.engine = harness::Engine::Interpreter;
    auto i = harness::World::create(*obj, wo);
    REQUIRE(i.ok());
    (*i)->mark_verified("xdp_count");
    CHECK_FALSE((*i)->uses_jit("xdp_count"));
}

TEST_CASE("jit: RunOptions::stack gives both engines the same r10", "[jit]") {
    // A program that returns a stack address and one that stores it: without a shared stack
    // the engines' answers differ by where each put its stack.
    Program p;
    p.name = "r10";
    p.insns = asm_of("mov %r0, %r10\nadd %r0, -16\nstxdw [%r1+0], %r10\nexit");
    auto interp = Interpreter::compile(p, HelperTable{});
    auto jit = Jit::compile(p, HelperTable{});
    REQUIRE(interp);
    REQUIRE(jit);
    alignas(16) static uint8_t stack[kStackSize * kMaxCallDepth];
    std::vector<uint8_t> mem(8);
    for (const bool shared : {false, true}) {
        RunOptions ro;
        if (shared) ro.stack = stack;
        uint64_t out[2];
        RunResult r[2];
        for (int e = 0; e < 2; ++e) {
            Env env;
            env.mem.add(mem.data(), mem.size(), kReadWrite, RegionKind::Input, "mem");
            const Args args{reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0};
            r[e] = e == 0 ? interp->run(env, args, ro) : jit->run(env, args, ro);
            std::memcpy(&out[e], mem.data(), 8);
        }
        REQUIRE(r[0].ok());
        REQUIRE(r[1].ok());
        const uint64_t top = reinterpret_cast<uint64_t>(stack) + sizeof(stack);
        if (shared) {
            CHECK(r[0].r0 == top - 16);
            CHECK(r[1].r0 == top - 16);
            CHECK(out[0] == top);
            CHECK(out[1] == top);
        } else {
            CHECK(r[0].r0 != top - 16);   // a fresh stack of each engine's own
            CHECK(r[0].r0 - out[0] == static_cast<uint64_t>(-16));
            CHECK(r[1].r0 - out[1] == static_cast<uint64_t>(-16));
        }
    }
}

// ─────────────────────────────── direct encoder ─────────────────────────────
// vm/x86enc.hpp writes the JIT's most common instructions without xbyak; every form, register
// pair and displacement class must give exactly the bytes xbyak gives (the code the JIT made
// before, so its speed and its tests carry over).
TEST_CASE("direct x86 encodings equal xbyak's, byte for byte", "[jit][x86enc]") {
    using namespace Xbyak;
    using namespace Xbyak::util;
    namespace e = vm::x86;
    const Reg64 r64[16] = {rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15};
    const int32_t disps[] = {0, 1, -1, 127, -128, 128, -129, 0x7fff, -0x8000, 0x12345678};
    const int32_t imms[] = {0, 1, -1, 127, -128, 128, -129, 0x7fffffff, static_cast<int32_t>(0x80000000), 0x1234, -0x12345};
    struct Gen : CodeGenerator {
        Gen() : CodeGenerator(4096) {}
    };
    std::size_t forms = 0;
    // Runs `ours` and `theirs` into fresh buffers and compares the bytes.
    auto same = [&](const std::string& what, auto ours, auto theirs) {
        e::X86Buf c;
        ours(c);
        Gen g;
        theirs(g);
        INFO(what);
        REQUIRE(g.getSize() == c.n);
        CHECK(std::memcmp(g.getCode(), c.b, c.n) == 0);
        ++forms;
    };
    // The group-1 ALU ops, in their register and immediate forms.
    struct Group1 {
        const char* name;
        uint16_t rr;
        uint8_t ext;
        void (CodeGenerator::*rr_fn)(const Operand&, const Operand&);
        void (CodeGenerator::*ri_fn)(const Operand&, uint32_t);
    };
    const Group1 group1[] = {{"add", e::kAddRmR, e::kExtAdd, &CodeGenerator::add, &CodeGenerator::add},
                             {"sub", e::kSubRmR, e::kExtSub, &CodeGenerator::sub, &CodeGenerator::sub},
                             {"or", e::kOrRmR, e::kExtOr, &CodeGenerator::or_, &CodeGenerator::or_},
                             {"and", e::kAndRmR, e::kExtAnd, &CodeGenerator::and_, &CodeGenerator::and_},
                             {"xor", e::kXorRmR, e::kExtXor, &CodeGenerator::xor_, &CodeGenerator::xor_},
                             {"cmp", e::kCmpRmR, e::kExtCmp, &CodeGenerator::cmp, &CodeGenerator::cmp}};
    for (unsigned d = 0; d < 16; ++d) {
        for (unsigned s = 0; s < 16; ++s) {
            for (const bool w : {false, true}) {
                const Reg rd = w ? Reg(r64[d]) : Reg(r64[d].cvt32()), rs = w ? Reg(r64[s]) : Reg(r64[s].cvt32());
                const auto tag = fmt::format("d={} s={} w={}", d, s, w);
                for (const Group1& op : group1)
                    same(op.name + (" " + tag), [&](e::X86Code& c) { e::rr(c, w, op.rr, s, d); }, [&](Gen& g) { (g.*op.rr_fn)(rd, rs); });
                same("test " + tag, [&](e::X86Code& c) { e::rr(c, w, e::kTestRmR, s, d); }, [&](Gen& g) { g.test(rd, rs); });
                same("mov " + tag, [&](e::X86Code& c) { e::rr(c, w, e::kMovRmR, s, d); }, [&](Gen& g) { g.mov(rd, rs); });
                same("imul " + tag, [&](e::X86Code& c) { e::rr(c, w, e::kImulRRm, d, s); }, [&](Gen& g) { g.imul(rd, rs); });
                if (w) same("xchg " + tag, [&](e::X86Code& c) { e::xchg64(c, d, s); }, [&](Gen& g) { g.xchg(r64[d], r64[s]); });
            }
            // Loads and stores at [base + disp] (s the base).
            for (const int32_t disp : disps) {
                const RegExp m = r64[s] + disp;
                const auto tag = fmt::format("d={} base={} disp={}", d, s, disp);
                const Reg64& rd = r64[d];
                same("movzx b " + tag, [&](e::X86Code& c) { e::mem(c, false, false, e::kMovzx8, d, s, disp); }, [&](Gen& g) { g.movzx(rd.cvt32(), g.byte[m]); });
                same("movzx w " + tag, [&](e::X86Code& c) { e::mem(c, false, false, e::kMovzx16, d, s, disp); }, [&](Gen& g) { g.movzx(rd.cvt32(), g.word[m]); });
                same("mov d " + tag, [&](e::X86Code& c) { e::mem(c, false, false, e::kMovRRm, d, s, disp); }, [&](Gen& g) { g.mov(rd.cvt32(), g.dword[m]); });
                same("mov q " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kMovRRm, d, s, disp); }, [&](Gen& g) { g.mov(rd, g.qword[m]); });
                same("movsx b " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kMovsx8, d, s, disp); }, [&](Gen& g) { g.movsx(rd, g.byte[m]); });
                same("movsx w " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kMovsx16, d, s, disp); }, [&](Gen& g) { g.movsx(rd, g.word[m]); });
                same("movsxd " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kMovsxd, d, s, disp); }, [&](Gen& g) { g.movsxd(rd, g.dword[m]); });
                same("store b " + tag, [&](e::X86Code& c) { e::mem(c, false, false, e::kMovRmR8, d, s, disp); }, [&](Gen& g) { g.mov(g.byte[m], rd.cvt8()); });
                same("store w " + tag, [&](e::X86Code& c) { e::mem(c, true, false, e::kMovRmR, d, s, disp); }, [&](Gen& g) { g.mov(g.word[m], rd.cvt16()); });
                same("store d " + tag, [&](e::X86Code& c) { e::mem(c, false, false, e::kMovRmR, d, s, disp); }, [&](Gen& g) { g.mov(g.dword[m], rd.cvt32()); });
                same("store q " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kMovRmR, d, s, disp); }, [&](Gen& g) { g.mov(g.qword[m], rd); });
                same("lea " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kLea, d, s, disp); }, [&](Gen& g) { g.lea(rd, g.ptr[m]); });
                same("cmp q " + tag, [&](e::X86Code& c) { e::mem(c, false, true, e::kCmpRRm, d, s, disp); }, [&](Gen& g) { g.cmp(rd, g.qword[m]); });
            }
            // Loads and lea at [base + index + disp] (s the base; every index but rsp).
            for (unsigned x = 0; x < 16; ++x) {
                if (x == 4) continue;
                for (const int32_t disp : disps) {
                    const RegExp m = r64[s] + r64[x] + disp;
                    const auto tag = fmt::format("d={} base={} index={} disp={}", d, s, x, disp);
                    const Reg64& rd = r64[d];
                    same("movzx b " + tag, [&](e::X86Code& c) { e::mem_index(c, false, e::kMovzx8, d, s, x, disp); }, [&](Gen& g) { g.movzx(rd.cvt32(), g.byte[m]); });
                    same("movzx w " + tag, [&](e::X86Code& c) { e::mem_index(c, false, e::kMovzx16, d, s, x, disp); }, [&](Gen& g) { g.movzx(rd.cvt32(), g.word[m]); });
                    same("mov d " + tag, [&](e::X86Code& c) { e::mem_index(c, false, e::kMovRRm, d, s, x, disp); }, [&](Gen& g) { g.mov(rd.cvt32(), g.dword[m]); });
                    same("mov q " + tag, [&](e::X86Code& c) { e::mem_index(c, true, e::kMovRRm, d, s, x, disp); }, [&](Gen& g) { g.mov(rd, g.qword[m]); });
                    same("lea " + tag, [&](e::X86Code& c) { e::mem_index(c, true, e::kLea, d, s, x, disp); }, [&](Gen& g) { g.lea(rd, g.ptr[m]); });
                }
            }
        }
        // One register and an immediate.
        for (const bool w : {false, true}) {
            const Reg rd = w ? Reg(r64[d]) : Reg(r64[d].cvt32());
            for (const int32_t imm : imms) {
                const auto u = static_cast<uint32_t>(imm);
                const auto tag = fmt::format("d={} w={} imm={}", d, w, imm);
                for (const Group1& op : group1)
                    same(op.name + (" " + tag), [&](e::X86Code& c) { e::ri(c, w, op.ext, d, imm); }, [&](Gen& g) { (g.*op.ri_fn)(rd, u); });
                same("test " + tag, [&](e::X86Code& c) { e::test_ri(c, w, d, u); }, [&](Gen& g) { g.test(rd, u); });
                same("imul " + tag, [&](e::X86Code& c) { e::imul_ri(c, w, d, d, imm); }, [&](Gen& g) { g.imul(rd, rd, imm); });
                if (w) same("mov64 " + tag, [&](e::X86Code& c) { e::mov_ri64(c, d, imm); }, [&](Gen& g) { g.mov(r64[d], static_cast<uint64_t>(static_cast<int64_t>(imm))); });
                else same("mov32 " + tag, [&](e::X86Code& c) { e::mov_ri32(c, d, u); }, [&](Gen& g) { g.mov(rd, u); });
            }
            for (const uint8_t count : {1, 2, 31, 63}) {
                if (!w && count > 31) continue;
                const auto tag = fmt::format("d={} w={} count={}", d, w, count);
                same("shl " + tag, [&](e::X86Code& c) { e::shift_ri(c, w, e::kExtShl, d, count); }, [&](Gen& g) { g.shl(rd, count); });
                same("shr " + tag, [&](e::X86Code& c) { e::shift_ri(c, w, e::kExtShr, d, count); }, [&](Gen& g) { g.shr(rd, count); });
                same("sar " + tag, [&](e::X86Code& c) { e::shift_ri(c, w, e::kExtSar, d, count); }, [&](Gen& g) { g.sar(rd, count); });
            }
            const auto tag = fmt::format("d={} w={}", d, w);
            same("shl cl " + tag, [&](e::X86Code& c) { e::shift_cl(c, w, e::kExtShl, d); }, [&](Gen& g) { g.shl(rd, cl); });
            same("shr cl " + tag, [&](e::X86Code& c) { e::shift_cl(c, w, e::kExtShr, d); }, [&](Gen& g) { g.shr(rd, cl); });
            same("sar cl " + tag, [&](e::X86Code& c) { e::shift_cl(c, w, e::kExtSar, d); }, [&](Gen& g) { g.sar(rd, cl); });
        }
        // 64-bit immediates of each size class, a call through d, a byte compare at [d + disp].
        for (const uint64_t v : {uint64_t{0}, uint64_t{0x7fffffff}, uint64_t{0x80000000}, ~uint64_t{0}, uint64_t{0xffffffff80000000},
                                 uint64_t{0x100000000}, uint64_t{0x5555deadbeef0123}, uint64_t{0x8000000000000000}}) {
            same(fmt::format("mov d={} imm64={:#x}", d, v), [&](e::X86Code& c) { e::mov_ri(c, d, v); }, [&](Gen& g) { g.mov(r64[d], v); });
        }
        same(fmt::format("call d={}", d), [&](e::X86Code& c) { e::call_r(c, d); }, [&](Gen& g) { g.call(r64[d]); });
        same(fmt::format("rol16 d={}", d), [&](e::X86Code& c) { e::rol16(c, d, 8); }, [&](Gen& g) { g.rol(r64[d].cvt16(), 8); });
        same(fmt::format("jmp d={}", d), [&](e::X86Code& c) { e::jmp_r(c, d); }, [&](Gen& g) { g.jmp(r64[d]); });
        for (const int32_t disp : disps)
            for (const int32_t imm : imms) {
                const auto tag = fmt::format("base={} disp={} imm={}", d, disp, imm);
                for (const Group1& op : group1) {
                    same(op.name + (" dword " + tag), [&](e::X86Code& c) { e::mi(c, false, op.ext, d, disp, imm); },
                         [&](Gen& g) { (g.*op.ri_fn)(g.dword[r64[d] + disp], static_cast<uint32_t>(imm)); });
                    same(op.name + (" qword " + tag), [&](e::X86Code& c) { e::mi(c, true, op.ext, d, disp, imm); },
                         [&](Gen& g) { (g.*op.ri_fn)(g.qword[r64[d] + disp], static_cast<uint32_t>(imm)); });
                }
            }
        for (const int32_t disp : disps)
            for (const uint8_t imm : {0, 1, 0xff})
                same(fmt::format("cmp byte base={} disp={} imm={}", d, disp, imm), [&](e::X86Code& c) { e::cmp_m8i(c, d, disp, imm); },
                     [&](Gen& g) { g.cmp(g.byte[r64[d] + disp], imm); });
        // Immediate stores, d the base.
        for (const int32_t disp : disps) {
            const RegExp m = r64[d] + disp;
            for (const int32_t imm : imms) {
                const auto u = static_cast<uint32_t>(imm);
                const auto tag = fmt::format("base={} disp={} imm={}", d, disp, imm);
                same("st b " + tag, [&](e::X86Code& c) { e::store_imm(c, 1, d, disp, imm); }, [&](Gen& g) { g.mov(g.byte[m], u & 0xff); });
                same("st w " + tag, [&](e::X86Code& c) { e::store_imm(c, 2, d, disp, imm); }, [&](Gen& g) { g.mov(g.word[m], u & 0xffff); });
                same("st d " + tag, [&](e::X86Code& c) { e::store_imm(c, 4, d, disp, imm); }, [&](Gen& g) { g.mov(g.dword[m], u); });
                same("st q " + tag, [&](e::X86Code& c) { e::store_imm(c, 8, d, disp, imm); }, [&](Gen& g) { g.mov(g.qword[m], static_cast<uint64_t>(static_cast<int64_t>(imm))); });
            }
        }
    }
    INFO(forms << " forms compared");
    CHECK(forms > 30000);
}
