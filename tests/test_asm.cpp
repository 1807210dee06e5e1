// The bpf_conformance assembler.
#include "vm/vm.hpp"

#include <catch2/catch.hpp>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

std::vector<uint64_t> words(std::string_view text) {
    auto r = assemble(text, "t.s");
    if (!r) FAIL(r.error().describe());
    std::vector<uint64_t> out;
    for (const auto& i : *r) out.push_back(i.raw());
    return out;
}

std::string error_of(std::string_view text) {
    auto r = assemble(text, "t.s");
    if (r) return "(assembled)";
    return r.error().describe();
}

}  // namespace

TEST_CASE("instructions assemble to the RFC 9669 encoding", "[asm]") {
    CHECK(words("mov32 %r0, 1") == std::vector<uint64_t>{0x00000001000000b4});
    CHECK(words("mov %r0, -1") == std::vector<uint64_t>{0xffffffff000000b7});
    CHECK(words("add %r1, %r2") == std::vector<uint64_t>{0x000000000000210f});
    CHECK(words("add32 %r1, 0x10") == std::vector<uint64_t>{0x0000001000000104});
    CHECK(words("ldxw %r0, [%r1+4]") == std::vector<uint64_t>{0x0000000000041061});
    CHECK(words("ldxdw %r0, [%r10-8]") == std::vector<uint64_t>{0x00000000fff8a079});
    CHECK(words("stxb [%r1], %r2") == std::vector<uint64_t>{0x0000000000002173});
    CHECK(words("stw [%r10-4], 0x12345678") == std::vector<uint64_t>{0x12345678fffc0a62});
    CHECK(words("lddw %r0, 0x1122334455667788") == std::vector<uint64_t>{0x5566778800000018, 0x1122334400000000});
    CHECK(words("lock fetch add32 [%r10-4], %r1") == std::vector<uint64_t>{0x00000001fffc1ac3});
    CHECK(words("lock cmpxchg [%r10-8], %r1") == std::vector<uint64_t>{0x000000f1fff81adb});
    CHECK(words("be16 %r3") == std::vector<uint64_t>{0x00000010000003dc});
    CHECK(words("swap32 %r3") == std::vector<uint64_t>{0x00000020000003d7});
    CHECK(words("sdiv %r1, 3") == std::vector<uint64_t>{0x0000000300010137});
    CHECK(words("movsx1664 %r1, %r2") == std::vector<uint64_t>{0x00000000001021bf});
    CHECK(words("call 5") == std::vector<uint64_t>{0x0000000500000085});
    CHECK(words("call %r2") == std::vector<uint64_t>{0x000000000000028d});
    CHECK(words("exit") == std::vector<uint64_t>{0x0000000000000095});
}

TEST_CASE("labels, relative targets and the implicit exit label", "[asm]") {
    // forward and backward labels
    auto w = words("start:\nmov %r0, 0\njeq %r0, 0, done\nja start\ndone:\nexit\n");
    REQUIRE(w.size() == 4);
    CHECK(Insn::from_raw(w[1]).off == 1);
    CHECK(Insn::from_raw(w[2]).off == -3);
    // +N / -N
    CHECK(Insn::from_raw(words("ja +3\nexit")[0]).off == 3);
    CHECK(Insn::from_raw(words("jne %r1, %r2, -1\nexit")[0]).off == -1);
    // the first exit is a label named "exit"
    CHECK(Insn::from_raw(words("ja exit\nmov %r0, 1\nexit")[0]).off == 1);
    // call local and ja32 put the target in imm
    auto c = words("call local f\nexit\nf:\nmov %r0, 1\nexit");
    CHECK(Insn::from_raw(c[0]).src == 1);
    CHECK(Insn::from_raw(c[0]).imm == 1);
    CHECK(Insn::from_raw(words("ja32 l\nexit\nl:\nexit")[0]).imm == 1);
    // lddw of a function
    auto f = words("lddw %r1, func(cb)\nexit\ncb:\nexit");
    CHECK(Insn::from_raw(f[0]).src == 4);
    CHECK(Insn::from_raw(f[0]).imm == 2);
    // comments
    CHECK(words("# a comment\nmov %r0, 2 # trailing\n\nexit ; also a comment").size() == 2);
}

TEST_CASE("assembler errors name the file and line", "[asm]") {
    CHECK(error_of("mov %r0, 1\nfrob %r1") == "t.s:2: unknown mnemonic 'frob'");
    CHECK(error_of("add %r0") == "t.s:1: operands do not fit 'add'");
    CHECK(error_of("neg %r0, %r1") == "t.s:1: 'neg' takes 1 operand, got 2");
    CHECK(error_of("mov %r11, 1") == "t.s:1: invalid register '%r11' (r0..r10)");
    CHECK(error_of("mov %x1, 1") == "t.s:1: expected a register like %r1, got '%x1'");
    CHECK(error_of("exit\nja nowhere") == "t.s:2: undefined label 'nowhere'");
    CHECK(error_of("a:\na:\nexit") == "t.s:2: duplicate label 'a'");
    CHECK(error_of("mov %r0, 0x1ffffffff") == "t.s:1: immediate '0x1ffffffff' does not fit in 32 bits");
    CHECK(error_of("ldxw %r0, %r1+4") == "t.s:1: expected [%rN+off], got '%r1+4'");
    CHECK(error_of("ldxw %r0, [%r1+70000]") == "t.s:1: offset '+70000' does not fit in 16 bits");
    CHECK(error_of("mov %r0, 12abc") == "t.s:1: invalid immediate '12abc'");
    CHECK(error_of("lddw %r1, map_thing(3)") == "t.s:1: unknown lddw pseudo source 'map_thing'");
    CHECK(error_of("call wrong 5") == "t.s:1: unknown call mode 'wrong'");
    CHECK(error_of("ldabsdw 4") == "t.s:1: 'ldabsdw' does not exist: LD_ABS/LD_IND load at most 4 bytes");
}
