// Disassembler: llvm-objdump style and bpf_conformance assembler syntax.
#include "vm/vm.hpp"

#include <fmt/format.h>

namespace bpfsim::vm {

namespace {

std::string signed_off(int64_t v) { return v < 0 ? fmt::format("-{}", -v) : fmt::format("+{}", v); }

// "(r1 + 4)" / "(r1 - 4)"
std::string llvm_addr(unsigned reg, int16_t off) {
    return off < 0 ? fmt::format("(r{} - {})", reg, -int32_t(off)) : fmt::format("(r{} + {})", reg, off);
}
// "r1 + 4" without parentheses, as llvm prints xchg/cmpxchg operands.
std::string llvm_addr_bare(unsigned reg, int16_t off) {
    return off < 0 ? fmt::format("r{} - {}", reg, -int32_t(off)) : fmt::format("r{} + {}", reg, off);
}
// "[%r1+4]" / "[%r1-4]"
std::string conf_addr(unsigned reg, int16_t off) {
    return off < 0 ? fmt::format("[%r{}-{}]", reg, -int32_t(off)) : fmt::format("[%r{}+{}]", reg, off);
}

std::string pseudo_lddw(Op op, int32_t lo, int32_t hi, bool conformance) {
    const std::string_view name = op_info(op).symbol;
    switch (op) {
    case Op::LDDW_MAP_VALUE:
    case Op::LDDW_MAP_IDX_VALUE:
        return fmt::format("{}({}, {})", name, lo, hi);
    case Op::LDDW_BTF_ID:   // the second immediate is a module's BTF fd, usually 0
        return hi ? fmt::format("{}({}, {})", name, lo, hi) : fmt::format("{}({})", name, lo);
    case Op::LDDW_FUNC:
        return fmt::format("{}({})", name, signed_off(lo));
    default:
        (void)conformance;
        return fmt::format("{}({})", name, lo);
    }
}

std::string llvm(std::span<const Insn> insns, std::size_t pc, Op op, const DisasmOptions& opts) {
    const Insn& in = insns[pc];
    const OpInfo& info = op_info(op);
    const bool is64 = code::cls(in.code) == code::ALU64 || code::cls(in.code) == code::JMP;
    const char rp = is64 ? 'r' : 'w';
    const std::string_view sym = info.symbol;
    switch (info.form) {
    case Form::ALU_K: return fmt::format("{}{} {} {}", rp, in.dst, sym, in.imm);
    case Form::ALU_X: return fmt::format("{}{} {} {}{}", rp, in.dst, sym, rp, in.src);
    case Form::NEG: return fmt::format("{0}{1} = -{0}{1}", rp, in.dst);
    case Form::MOVSX: return fmt::format("{}{} = ({}){}{}", rp, in.dst, sym, rp, in.src);
    case Form::END: return fmt::format("r{0} = {1} r{0}", in.dst, sym);
    case Form::JA: return fmt::format("goto {}", signed_off(in.off));
    case Form::JA32: return fmt::format("gotol {}", signed_off(in.imm));
    case Form::JCOND_K: return fmt::format("if {}{} {} {} goto {}", rp, in.dst, sym, in.imm, signed_off(in.off));
    case Form::JCOND_X: return fmt::format("if {}{} {} {}{} goto {}", rp, in.dst, sym, rp, in.src, signed_off(in.off));
    case Form::CALL: {
        auto name = kernel_helper_name(in.imm);
        if (opts.helper_names && !name.empty()) return fmt::format("call bpf_{}", name);
        return fmt::format("call {}", in.imm);
    }
    case Form::CALL_LOCAL: return fmt::format("call pc{}", signed_off(in.imm));
    case Form::CALL_KFUNC:
        return in.off ? fmt::format("call kfunc {} (btf {})", in.imm, in.off) : fmt::format("call kfunc {}", in.imm);
    case Form::CALLX: return fmt::format("callx r{}", in.dst);
    case Form::EXIT: return "exit";
    case Form::MAY_GOTO: return fmt::format("may_goto {}", signed_off(in.off));
    case Form::LDDW: {
        const int32_t hi = insns[pc + 1].imm;
        if (op == Op::LDDW) {
            const uint64_t v = (uint64_t(uint32_t(hi)) << 32) | uint32_t(in.imm);
            return fmt::format("r{} = {} ll", in.dst, static_cast<int64_t>(v));   // llvm prints it signed
        }
        return fmt::format("r{} = {} ll", in.dst, pseudo_lddw(op, in.imm, hi, false));
    }
    case Form::LDABS: return fmt::format("r0 = *({} *)skb[{}]", sym, in.imm);
    case Form::LDIND: return fmt::format("r0 = *({} *)skb[r{} + {}]", sym, in.src, in.imm);
    case Form::LDX:
    case Form::LDXS:
        return fmt::format("r{} = *({} *){}", in.dst, sym, llvm_addr(in.src, in.off));
    case Form::ST: return fmt::format("*({} *){} = {}", sym, llvm_addr(in.dst, in.off), in.imm);
    case Form::STX: return fmt::format("*({} *){} = r{}", sym, llvm_addr(in.dst, in.off), in.src);
    case Form::ATOMIC: {
        const bool dw = code::mem_size(in.code) == 8;
        const char r = dw ? 'r' : 'w';
        const char* ty = dw ? "u64" : "u32";
        if (op == Op::ATOMIC_XCHG64 || op == Op::ATOMIC_XCHG32)
            return fmt::format("{0}{1} = {2}(r{3}, {0}{1})", r, in.src, dw ? "xchg_64" : "xchg32_32",
                               llvm_addr_bare(in.dst, in.off).substr(1));
        if (op == Op::ATOMIC_CMPXCHG64 || op == Op::ATOMIC_CMPXCHG32)
            return fmt::format("{0}0 = {1}(r{2}, {0}0, {0}{3})", r, dw ? "cmpxchg_64" : "cmpxchg32_32",
                               llvm_addr_bare(in.dst, in.off).substr(1), in.src);
        if (in.imm & 1)
            return fmt::format("{0}{1} = {2}(({3} *){4}, {0}{1})", r, in.src, sym, ty, llvm_addr(in.dst, in.off));
        return fmt::format("lock *({} *){} {} {}{}", ty, llvm_addr(in.dst, in.off), sym, r, in.src);
    }
    case Form::LOAD_ACQ: {
        const char r = code::mem_size(in.code) == 8 ? 'r' : 'w';
        return fmt::format("{}{} = load_acquire(({} *){})", r, in.dst, sym, llvm_addr(in.src, in.off));
    }
    case Form::STORE_REL: {
        const char r = code::mem_size(in.code) == 8 ? 'r' : 'w';
        return fmt::format("store_release(({} *){}, {}{})", sym, llvm_addr(in.dst, in.off), r, in.src);
    }
    }
    return "?";
}

std::string conformance(std::span<const Insn> insns, std::size_t pc, Op op) {
    const Insn& in = insns[pc];
    const OpInfo& info = op_info(op);
    const std::string_view m = info.mnemonic;
    switch (info.form) {
    case Form::ALU_K: return fmt::format("{} %r{}, {}", m, in.dst, in.imm);
    case Form::ALU_X:
    case Form::MOVSX: return fmt::format("{} %r{}, %r{}", m, in.dst, in.src);
    case Form::NEG:
    case Form::END: return fmt::format("{} %r{}", m, in.dst);
    case Form::JA:
    case Form::MAY_GOTO: return fmt::format("{} {}", m, signed_off(in.off));
    case Form::JA32: return fmt::format("{} {}", m, signed_off(in.imm));
    case Form::JCOND_K: return fmt::format("{} %r{}, {}, {}", m, in.dst, in.imm, signed_off(in.off));
    case Form::JCOND_X: return fmt::format("{} %r{}, %r{}, {}", m, in.dst, in.src, signed_off(in.off));
    case Form::CALL: return fmt::format("call {}", in.imm);
    case Form::CALL_LOCAL: return fmt::format("call local {}", signed_off(in.imm));
    case Form::CALL_KFUNC:
        return in.off ? fmt::format("call kfunc {}, {}", in.imm, in.off) : fmt::format("call kfunc {}", in.imm);
    case Form::CALLX: return fmt::format("callx %r{}", in.dst);
    case Form::EXIT: return "exit";
    case Form::LDDW: {
        const int32_t hi = insns[pc + 1].imm;
        if (op == Op::LDDW) {
            const uint64_t v = (uint64_t(uint32_t(hi)) << 32) | uint32_t(in.imm);
            return fmt::format("lddw %r{}, {:#x}", in.dst, v);
        }
        return fmt::format("lddw %r{}, {}", in.dst, pseudo_lddw(op, in.imm, hi, true));
    }
    case Form::LDABS: return fmt::format("{} {}", m, in.imm);
    case Form::LDIND: return fmt::format("{} %r{}, {}", m, in.src, in.imm);
    case Form::LDX:
    case Form::LDXS:
    case Form::LOAD_ACQ: return fmt::format("{} %r{}, {}", m, in.dst, conf_addr(in.src, in.off));
    case Form::ST: return fmt::format("{} {}, {}", m, conf_addr(in.dst, in.off), in.imm);
    case Form::STX:
    case Form::ATOMIC:
    case Form::STORE_REL: return fmt::format("{} {}, %r{}", m, conf_addr(in.dst, in.off), in.src);
    }
    return "?";
}

}  // namespace

std::string disassemble(std::span<const Insn> insns, std::size_t pc, const DisasmOptions& opts) {
    if (pc >= insns.size()) return "<end of program>";
    const Insn& in = insns[pc];
    auto op = classify(in);
    const bool truncated_lddw = op && op_info(*op).form == Form::LDDW && pc + 1 >= insns.size();
    if (!op || truncated_lddw) {
        return fmt::format("invalid 0x{:02x} dst=r{} src=r{} off={} imm={:#x}", in.code, unsigned(in.dst),
                           unsigned(in.src), in.off, in.imm);
    }
    return opts.syntax == Syntax::Llvm ? llvm(insns, pc, *op, opts) : conformance(insns, pc, *op);
}

std::string disassemble_program(std::span<const Insn> insns, const DisasmOptions& opts) {
    std::string out;
    for (std::size_t pc = 0; pc < insns.size(); ++pc) {
        out += fmt::format("{:>5}: {}\n", pc, disassemble(insns, pc, opts));
        auto op = classify(insns[pc]);
        if (op && op_info(*op).form == Form::LDDW) ++pc;
    }
    return out;
}

}  // namespace bpfsim::vm
