// The bpf_conformance assembler and the disassembler: what assembles and decodes is
// disassembled (conformance syntax), and the disassembly (conformance syntax) assembles to the same instructions. Inputs that are
// instruction bytes which decode get the same round trip from the other side.
#include "tests/fuzz/fuzz.hpp"

#include <fmt/format.h>

namespace bpfsim::fuzz {

namespace {

std::string listing(const vm::Decoded& d, vm::Syntax syntax) {
    std::string out;
    vm::DisasmOptions o;
    o.syntax = syntax;
    for (std::size_t pc = 0; pc < d.insns.size(); ++pc) {
        if (d.ops[pc] == vm::Op::LddwHigh) continue;
        out += vm::disassemble(d.insns, pc, o);
        out += '\n';
    }
    return out;
}

void round_trip(const vm::Decoded& d, const char* what) {
    (void)listing(d, vm::Syntax::Llvm);
    (void)vm::disassemble_program(d.insns);
    const std::string text = listing(d, vm::Syntax::Conformance);
    auto again = vm::assemble(text, "disasm.s");
    if (!again) violation(fmt::format("{}: the disassembly does not assemble: {}\n{}", what, again.error().describe(), text));
    if (*again != d.insns) {
        std::size_t pc = 0;
        while (pc < again->size() && pc < d.insns.size() && (*again)[pc] == d.insns[pc]) ++pc;
        violation(fmt::format("{}: the disassembly assembles to other instructions (first difference at pc {}):\n{}", what, pc, text));
    }
}

}  // namespace

void asm_text(Bytes data) {
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    auto insns = vm::assemble(text, "fuzz.s");
    if (insns) {
        // The assembler checks syntax, labels and operand ranges; decode() the rest (jump
        // targets, lddw pairs; an empty program).
        auto d = vm::decode(*insns);
        if (d) round_trip(*d, "assembled");
        else if (d.error().code() != ErrorCode::InvalidInsn) violation("decode: " + d.error().describe());
    } else if (!insns) {
        check_error(insns.error(), "assemble");
        if (insns.error().describe().find("fuzz.s") == std::string::npos)
            violation(fmt::format("an assembler error that names no file: {}", insns.error().describe()));
    }
    if (data.size() % 8 == 0 && !data.empty()) {
        auto d = vm::decode_bytes(data);
        if (d) round_trip(*d, "decoded");
        else check_error(d.error(), "decode_bytes");
    }
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(asm_text)
