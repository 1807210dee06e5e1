// The opcode table, instruction classification and validation.
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <array>

namespace bpfsim::vm {

namespace {

constexpr OpInfo kTable[] = {
#define BPF_OP(ID, CODE, DISC, DVAL, FORM, MNEM, SYM) \
    {Op::ID, CODE, Disc::DISC, DVAL, Form::FORM, MNEM, SYM, #ID},
#include "vm/opcodes.def"
#undef BPF_OP
};
static_assert(std::size(kTable) == kOpCount);

constexpr bool table_in_enum_order() {
    for (std::size_t i = 0; i < std::size(kTable); ++i)
        if (static_cast<std::size_t>(kTable[i].op) != i) return false;
    return true;
}
static_assert(table_in_enum_order());

// For each opcode byte, the rows that carry it (at most a handful).
struct ByCode {
    std::array<std::array<uint16_t, 16>, 256> rows{};
    std::array<uint8_t, 256> count{};
};

constexpr ByCode make_by_code() {
    ByCode b{};
    for (std::size_t i = 0; i < std::size(kTable); ++i) {
        auto c = kTable[i].code;
        b.rows[c][b.count[c]++] = static_cast<uint16_t>(i);
    }
    return b;
}
constexpr ByCode kByCode = make_by_code();

int32_t disc_value(const Insn& insn, Disc d) {
    switch (d) {
    case Disc::NONE: return 0;
    case Disc::OFF: return insn.off;
    case Disc::IMM: return insn.imm;
    case Disc::SRC: return insn.src;
    }
    return 0;
}

}  // namespace

std::span<const OpInfo> op_table() { return kTable; }

const OpInfo& op_info(Op op) { return kTable[static_cast<std::size_t>(op)]; }

std::optional<Op> classify(const Insn& insn) {
    const auto n = kByCode.count[insn.code];
    if (n == 0) return std::nullopt;
    for (unsigned i = 0; i < n; ++i) {
        const OpInfo& row = kTable[kByCode.rows[insn.code][i]];
        if (row.disc == Disc::NONE || disc_value(insn, row.disc) == row.dval) return row.op;
    }
    return std::nullopt;
}

namespace {

[[noreturn]] void fail(const DecodeOptions& o, std::size_t pc, const Insn& insn, const std::string& what) {
    Location loc;
    loc.file = o.file;
    loc.section = o.section;
    loc.pc = pc;
    throw Error(ErrorCode::InvalidInsn,
                fmt::format("invalid instruction (opcode 0x{:02x}, raw 0x{:016x}): {}", insn.code, insn.raw(), what),
                loc);
}

// Explains why no table row matched an opcode byte that exists with another
// discriminator value, e.g. an ALU op with a non-zero offset.
std::string why_unclassified(const Insn& insn) {
    const auto n = kByCode.count[insn.code];
    if (n == 0) return "unknown opcode";
    const OpInfo& first = kTable[kByCode.rows[insn.code][0]];
    std::string allowed;
    for (unsigned i = 0; i < n; ++i) {
        if (!allowed.empty()) allowed += ", ";
        allowed += fmt::format("{:#x}", kTable[kByCode.rows[insn.code][i]].dval);
    }
    switch (first.disc) {
    case Disc::OFF: return fmt::format("offset {} is not valid for this opcode (expected {})", insn.off, allowed);
    case Disc::IMM: return fmt::format("immediate {:#x} is not valid for this opcode (expected {})", insn.imm, allowed);
    case Disc::SRC: return fmt::format("src register field {} is not valid for this opcode (expected {})", unsigned(insn.src), allowed);
    case Disc::NONE: break;
    }
    return "unknown opcode";
}

struct FieldRules {
    bool dst_zero, src_zero, off_zero, imm_zero;
    bool dst_written;   // dst is a destination register (r10 not allowed)
};

constexpr FieldRules rules_for(Form f) {
    //                 dst0   src0   off0   imm0   dst_written
    switch (f) {
    case Form::ALU_K:      return {false, true, true, false, true};     // div/mod/mov: off is their discriminator
    case Form::ALU_X:      return {false, false, true, true, true};
    case Form::NEG:        return {false, true, true, true, true};
    case Form::MOVSX:      return {false, false, false, true, true};
    case Form::END:        return {false, true, true, false, true};
    case Form::JA:         return {true, true, false, true, false};
    case Form::JA32:       return {true, true, true, false, false};
    case Form::JCOND_K:    return {false, true, false, false, false};
    case Form::JCOND_X:    return {false, false, false, true, false};
    case Form::CALL:       return {true, false, true, false, false};
    case Form::CALL_LOCAL: return {true, false, true, false, false};
    case Form::CALL_KFUNC: return {true, false, false, false, false};
    case Form::CALLX:      return {false, true, true, true, false};
    case Form::EXIT:       return {true, true, true, true, false};
    case Form::MAY_GOTO:   return {true, true, false, true, false};
    case Form::LDDW:       return {false, false, true, false, true};
    case Form::LDABS:      return {true, true, true, false, false};
    case Form::LDIND:      return {true, false, true, false, false};
    case Form::LDX:        return {false, false, false, true, true};
    case Form::LDXS:       return {false, false, false, true, true};
    case Form::ST:         return {false, true, false, false, false};
    case Form::STX:        return {false, false, false, true, false};
    case Form::ATOMIC:     return {false, false, false, false, false};
    case Form::LOAD_ACQ:   return {false, false, false, false, true};
    case Form::STORE_REL:  return {false, false, false, false, false};
    }
    return {};
}

constexpr bool is_jump(Form f) {
    return f == Form::JA || f == Form::JA32 || f == Form::JCOND_K || f == Form::JCOND_X || f == Form::MAY_GOTO;
}

// The checks of decode() per op as masks, so a valid instruction costs a few bit operations;
// an instruction that fails any of them goes through check_fields() for its message.
struct FastRule {
    uint64_t zero;         // bits of the raw instruction that must be 0 (reserved dst, src, off, imm)
    uint8_t regs;          // row of kRegBad: bit 0 dst is written (at most r9), bit 1 src is the discriminator (any nibble)
    bool atomic;           // fetching atomics write src (imm & 1): src must not be r10
    int8_t target;         // 0: none, 1: pc + 1 + off, 2: pc + 1 + imm
    bool lddw;
};

constexpr std::array<FastRule, kOpCount> make_fast_rules() {
    std::array<FastRule, kOpCount> t{};
    for (std::size_t i = 0; i < kOpCount; ++i) {
        const OpInfo& info = kTable[i];
        const FieldRules r = rules_for(info.form);
        FastRule& f = t[i];
        f.zero = (r.dst_zero ? 0xf00ull : 0) | (r.src_zero ? 0xf000ull : 0) |
                 (r.off_zero && info.disc != Disc::OFF ? 0xffff0000ull : 0) |
                 (r.imm_zero && info.disc != Disc::IMM ? 0xffffffff00000000ull : 0);
        f.regs = static_cast<uint8_t>((r.dst_written ? 1 : 0) | (info.disc == Disc::SRC ? 2 : 0));
        f.atomic = info.form == Form::ATOMIC;
        f.target = is_jump(info.form) ? (info.form == Form::JA32 ? 2 : 1)
                   : info.form == Form::CALL_LOCAL || info.op == Op::LDDW_FUNC ? 2 : 0;
        f.lddw = info.form == Form::LDDW;
    }
    return t;
}
// Whether a register byte (dst | src << 4) names a register that does not exist, by FastRule::regs.
constexpr std::array<std::array<bool, 256>, 4> make_reg_bad() {
    std::array<std::array<bool, 256>, 4> t{};
    for (unsigned k = 0; k < 4; ++k)
        for (unsigned b = 0; b < 256; ++b) t[k][b] = (b & 0xf) > ((k & 1) ? 9u : 10u) || (b >> 4) > ((k & 2) ? 15u : 10u);
    return t;
}
constexpr auto kRegBad = make_reg_bad();
constexpr auto kFastRules = make_fast_rules();

// Instructions that classify without a search, by (opcode byte, offset != 0): a byte with a
// single row and no discriminator, and a byte told apart by its offset (mov and movsx, div and
// sdiv) with offset 0. 0xffff: search.
constexpr std::array<uint16_t, 512> make_direct() {
    std::array<uint16_t, 512> d{};
    for (auto& x : d) x = 0xffff;
    for (std::size_t c = 0; c < 256; ++c) {
        const unsigned n = kByCode.count[c];
        if (n == 1 && kTable[kByCode.rows[c][0]].disc == Disc::NONE) {
            d[c * 2] = d[c * 2 + 1] = kByCode.rows[c][0];
            continue;
        }
        bool by_off = n > 0;
        for (unsigned i = 0; i < n; ++i) by_off &= kTable[kByCode.rows[c][i]].disc == Disc::OFF;
        for (unsigned i = 0; i < n && by_off; ++i)
            if (kTable[kByCode.rows[c][i]].dval == 0) d[c * 2] = kByCode.rows[c][i];
    }
    return d;
}
constexpr auto kDirect = make_direct();

// Opcode bytes whose rows differ only by src (lddw and call kinds), classified by (code, src):
// the row, or 0xffff (no row, or the byte is not told apart by src).
constexpr std::array<uint16_t, 256 * 16> make_by_src() {
    std::array<uint16_t, 256 * 16> d{};
    for (auto& x : d) x = 0xffff;
    for (std::size_t c = 0; c < 256; ++c) {
        bool all_src = kByCode.count[c] > 0;
        for (unsigned i = 0; i < kByCode.count[c]; ++i) all_src &= kTable[kByCode.rows[c][i]].disc == Disc::SRC;
        if (!all_src) continue;
        for (unsigned i = 0; i < kByCode.count[c]; ++i) {
            const OpInfo& row = kTable[kByCode.rows[c][i]];
            if (row.dval >= 0 && row.dval < 16) d[c * 16 + static_cast<std::size_t>(row.dval)] = kByCode.rows[c][i];
        }
    }
    return d;
}
constexpr auto kBySrc = make_by_src();

// The field checks of one instruction, in the order their messages take precedence.
void check_fields(const DecodeOptions& opts, std::size_t pc, const Insn& in, Op op) {
    const OpInfo& info = op_info(op);
    const FieldRules r = rules_for(info.form);
    if (in.dst > 10) fail(opts, pc, in, fmt::format("dst register r{} does not exist", unsigned(in.dst)));
    if (in.src > 10 && info.disc != Disc::SRC)
        fail(opts, pc, in, fmt::format("src register r{} does not exist", unsigned(in.src)));
    if (r.dst_zero && in.dst != 0) fail(opts, pc, in, fmt::format("reserved dst field is {}, must be 0", unsigned(in.dst)));
    if (r.src_zero && in.src != 0) fail(opts, pc, in, fmt::format("reserved src field is {}, must be 0", unsigned(in.src)));
    if (r.off_zero && in.off != 0 && info.disc != Disc::OFF)
        fail(opts, pc, in, fmt::format("reserved offset field is {}, must be 0", in.off));
    if (r.imm_zero && in.imm != 0 && info.disc != Disc::IMM)
        fail(opts, pc, in, fmt::format("reserved immediate field is {:#x}, must be 0", in.imm));
    if (r.dst_written && in.dst == 10) fail(opts, pc, in, "r10 is read-only (frame pointer)");
    // Fetching atomics and xchg write their src register.
    if (info.form == Form::ATOMIC && (in.imm & 1) && in.src == 10)
        fail(opts, pc, in, "r10 is read-only (frame pointer): this atomic writes its src register");
}

}  // namespace

Result<Decoded> decode(std::span<const Insn> insns, const DecodeOptions& opts) {
    return catch_error([&]() -> Decoded {
        Decoded d;
        d.insns.assign(insns.begin(), insns.end());
        if (insns.empty()) {
            Location loc{opts.file, opts.section, std::nullopt, std::nullopt, {}};
            throw Error(ErrorCode::InvalidInsn, "program has no instructions", loc);
        }
        const std::size_t n = insns.size();
        d.ops.resize(n);
        const auto jumps = std::make_unique_for_overwrite<uint32_t[]>(n);   // pcs with a target (the first `targets`), checked once every lddw half is known
        std::size_t targets = 0;
        for (std::size_t pc = 0; pc < n; ++pc) {
            const Insn& in = insns[pc];
            Op op;
            if (const uint16_t row = kDirect[static_cast<std::size_t>(in.code) << 1 | (in.off != 0)]; row != 0xffff) {
                op = static_cast<Op>(row);
            } else if (const uint16_t by_src = kBySrc[static_cast<std::size_t>(in.code) << 4 | in.src]; by_src != 0xffff) {
                op = static_cast<Op>(by_src);
            } else {
                const auto c = classify(in);
                if (!c) fail(opts, pc, in, why_unclassified(in));
                op = *c;
            }
            const FastRule& f = kFastRules[static_cast<std::size_t>(op)];
            const uint64_t raw = in.raw();
            const bool bad = kRegBad[f.regs][(raw >> 8) & 0xff] | ((raw & f.zero) != 0) | (f.atomic & (in.imm & 1) & (in.src == 10));
            if (bad) [[unlikely]] {
                check_fields(opts, pc, in, op);   // every mask above has its message there
                fail(opts, pc, in, "invalid fields");
            }
            d.ops[pc] = op;
            jumps[targets] = static_cast<uint32_t>(pc);   // kept where it has a target (no branch)
            targets += f.target != 0;

            if (f.lddw) {
                if (pc + 1 >= n) fail(opts, pc, in, "lddw is missing its second half (program ends)");
                const Insn& hi = insns[pc + 1];
                if (hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0)
                    fail(opts, pc + 1, hi, "second half of lddw must have opcode, registers and offset zero");
                // Only plain values, map values (offset) and BTF ids (module fd) use the second immediate.
                if (hi.imm != 0 && (op == Op::LDDW_MAP_FD || op == Op::LDDW_MAP_IDX || op == Op::LDDW_FUNC))
                    fail(opts, pc + 1, hi, fmt::format("second half of lddw {} must have immediate 0, not {:#x}", op_info(op).symbol, hi.imm));
                d.ops[++pc] = Op::LddwHigh;
            }
        }
        // Targets: only now are all lddw second halves known.
        for (const uint32_t pc : std::span(jumps.get(), targets)) {
            const Op op = d.ops[pc];
            const FastRule& f = kFastRules[static_cast<std::size_t>(op)];
            const Insn& in = insns[pc];
            const int64_t target = static_cast<int64_t>(pc) + 1 + (f.target == 2 ? in.imm : in.off);
            if (target >= 0 && target < static_cast<int64_t>(n) && d.ops[static_cast<std::size_t>(target)] != Op::LddwHigh) [[likely]]
                continue;
            const Form form = op_info(op).form;
            const char* what = form == Form::CALL_LOCAL ? "call" : op == Op::LDDW_FUNC ? "function reference" : "jump";
            if (target < 0 || target >= static_cast<int64_t>(n))
                fail(opts, pc, in, fmt::format("{} target {} is outside the program (0..{})", what, target, n - 1));
            fail(opts, pc, in, fmt::format("{} target {} is the second half of an lddw", what, target));
        }
        return d;
    });
}

Result<Decoded> decode_bytes(std::span<const uint8_t> bytes, const DecodeOptions& opts) {
    if (bytes.size() % sizeof(Insn) != 0) {
        Location loc{opts.file, opts.section, std::nullopt, std::nullopt, {}};
        return Error(ErrorCode::InvalidInsn,
                     fmt::format("program size {} is not a multiple of 8 bytes", bytes.size()), loc);
    }
    std::vector<Insn> insns(bytes.size() / sizeof(Insn));
    if (!insns.empty()) std::memcpy(insns.data(), bytes.data(), bytes.size());
    return decode(insns, opts);
}

std::string Program::source_line(std::size_t pc) const {
    // The line_info entry with the largest pc not above this one.
    const LineInfo* best = nullptr;
    for (const auto& l : lines) {
        if (l.pc > pc) break;
        best = &l;
    }
    if (!best) return {};
    std::string s = fmt::format("{}:{}", best->file, best->line);
    if (!best->text.empty()) s += ": " + best->text;
    return s;
}

}  // namespace bpfsim::vm
