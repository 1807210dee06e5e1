// The bpf_conformance assembler: vm::assemble() text -> RFC 9669 instructions.
#include "vm/vm.hpp"

#include <catch2/catch.hpp>

#include <climits>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

// The instructions of text as raw little-endian words; FAILs with the error otherwise.
std::vector<uint64_t> words(std::string_view text) {
    auto r = assemble(text, "t.s");
    if (!r) FAIL(r.error().describe());
    std::vector<uint64_t> out;
    for (const auto& i : *r) out.push_back(i.raw());
    return out;
}

Insn only(std::string_view text) {
    auto w = words(text);
    REQUIRE(w.size() >= 1);
    return Insn::from_raw(w[0]);
}

struct Encoding {
    const char* text;
    std::vector<uint64_t> words;
};

}  // namespace

TEST_CASE("each instruction form assembles to its RFC 9669 encoding", "[asm]") {
    // word = imm << 32 | off << 16 | src << 12 | dst << 8 | opcode
    const std::vector<Encoding> cases = {
        {"mov32 %r0, 1", {0x00000001000000b4}},
        {"mov %r0, -1", {0xffffffff000000b7}},
        {"add %r1, %r2", {0x000000000000210f}},
        {"add32 %r1, 0x10", {0x0000001000000104}},
        {"sub %r3, -0x10", {0xfffffff000000317}},
        {"arsh32 %r9, %r10", {0x000000000000a9cc}},
        {"sdiv %r1, 3", {0x0000000300010137}},
        {"smod32 %r1, %r2", {0x000000000001219c}},
        {"neg %r4", {0x0000000000000487}},
        {"neg32 %r4", {0x0000000000000484}},
        {"movsx1664 %r1, %r2", {0x00000000001021bf}},
        {"movsx832 %r1, %r2", {0x00000000000821bc}},
        {"be16 %r3", {0x00000010000003dc}},
        {"le64 %r3", {0x00000040000003d4}},
        {"bswap32 %r3", {0x00000020000003d7}},
        {"swap32 %r3", {0x00000020000003d7}},   // alias
        {"ja +2", {0x0000000000020005}},
        {"ja32 +70000", {0x0001117000000006}},
        {"jeq %r1, 0x7fffffff, +1", {0x7fffffff00010115}},
        {"jslt32 %r1, %r2, -1", {0x00000000ffff21ce}},
        {"jset %r10, 8, +0", {0x0000000800000a45}},
        {"may_goto +2", {0x00000000000200e5}},
        {"call 5", {0x0000000500000085}},
        {"call helper 5", {0x0000000500000085}},
        {"call local +3", {0x0000000300001085}},
        {"call kfunc 12", {0x0000000c00002085}},
        {"call kfunc 12, 2", {0x0000000c00022085}},
        {"call %r2", {0x000000000000028d}},   // callx
        {"callx %r2", {0x000000000000028d}},
        {"exit", {0x0000000000000095}},
        {"lddw %r0, 0x1122334455667788", {0x5566778800000018, 0x1122334400000000}},
        {"lddw %r9, -1", {0xffffffff00000918, 0xffffffff00000000}},
        {"lddw %r1, 7", {0x0000000700000118, 0x0000000000000000}},
        {"lddw %r1, map_fd(3)", {0x0000000300001118, 0}},
        {"lddw %r1, map_value(3, 16)", {0x0000000300002118, 0x0000001000000000}},
        {"lddw %r1, btf_id(7)", {0x0000000700003118, 0}},
        {"lddw %r1, map_idx(0)", {0x0000000000005118, 0}},
        {"lddw %r1, map_idx_value(1, 8)", {0x0000000100006118, 0x0000000800000000}},
        {"ldabsh 12", {0x0000000c00000028}},
        {"ldindb %r3, 2", {0x0000000200003050}},
        {"ldxw %r0, [%r1+4]", {0x0000000000041061}},
        {"ldxdw %r0, [%r10-8]", {0x00000000fff8a079}},
        {"ldxsb %r0, [%r1+2]", {0x0000000000021091}},
        {"stxb [%r1], %r2", {0x0000000000002173}},
        {"stw [%r10-4], 0x12345678", {0x12345678fffc0a62}},
        {"stdw [%r1-32768], -1", {0xffffffff8000017a}},
        {"sth [%r1+32767], 0", {0x000000007fff016a}},
        {"lock add [%r1+8], %r2", {0x00000000000821db}},
        {"lock fetch add32 [%r10-4], %r1", {0x00000001fffc1ac3}},
        {"lock fetch xor [%r1+0], %r2", {0x000000a1000021db}},
        {"lock xchg32 [%r2+0], %r3", {0x000000e1000032c3}},
        {"lock cmpxchg [%r10-8], %r1", {0x000000f1fff81adb}},
        {"ldacqw %r0, [%r1+0]", {0x00000100000010c3}},
        {"strelb [%r1+0], %r2", {0x00000110000021d3}},
    };
    for (const auto& c : cases) {
        INFO(c.text);
        CHECK(words(c.text) == c.words);
    }
}

TEST_CASE("immediates: decimal, hex, negative, and 32-bit values spelled unsigned", "[asm]") {
    CHECK(only("mov %r0, 0").imm == 0);
    CHECK(only("mov %r0, 2147483647").imm == INT32_MAX);
    CHECK(only("mov %r0, -2147483648").imm == INT32_MIN);
    CHECK(only("mov %r0, 0x7FFFFFFF").imm == INT32_MAX);
    CHECK(only("mov %r0, -0x80000000").imm == INT32_MIN);
    CHECK(only("mov %r0, 0xffffffff").imm == -1);   // the bit pattern, as bpf_conformance writes it
    CHECK(only("mov %r0, 4294967295").imm == -1);
    CHECK(only("mov %r0, +12").imm == 12);
    CHECK(only("jeq %r1, -5, +0").imm == -5);
    CHECK(only("ldxw %r0, [%r1+0x10]").off == 16);
    CHECK(only("ldxw %r0, [%r1-0x10]").off == -16);
}

TEST_CASE("jump targets: labels forward and back, +N/-N, and the implicit exit label", "[asm]") {
    const auto w = words(
        "start:\n"
        "  mov %r0, 0\n"
        "  jeq %r0, 0, done   # forward: done is pc 3\n"
        "  ja start           # backward\n"
        "done:\n"
        "  exit\n");
    REQUIRE(w.size() == 4);
    CHECK(Insn::from_raw(w[1]).off == 1);
    CHECK(Insn::from_raw(w[2]).off == -3);

    CHECK(only("ja +3\nexit").off == 3);
    CHECK(only("ja -1\nexit").off == -1);
    CHECK(only("jne %r1, %r2, -1\nexit").off == -1);
    CHECK(only("jeq %r1, 0, +0\nexit").off == 0);

    // Labels count instruction slots: an lddw takes two.
    CHECK(only("ja l\nlddw %r1, 5\nl:\nexit").off == 2);
    // Several labels may name one instruction; a label may come first.
    const auto twice = words("a:\nb:\nja a\nja b\nexit");
    CHECK(Insn::from_raw(twice[0]).off == -1);
    CHECK(Insn::from_raw(twice[1]).off == -2);

    // The first exit instruction is also a label named "exit", as in bpf_conformance.
    CHECK(only("ja exit\nmov %r0, 1\nexit").off == 1);
    CHECK(only("jeq %r1, 0, exit\nexit\nexit").off == 0);   // the first exit, not the last
    CHECK(Insn::from_raw(words("mov %r0, 0\nexit\nja exit")[2]).off == -2);

    // ja32 and local calls put the target in imm.
    CHECK(only("ja32 l\nexit\nl:\nexit").imm == 1);
    CHECK(only("ja32 l\nexit\nl:\nexit").off == 0);
    const auto back32 = words("l:\nexit\nja32 l");
    CHECK(Insn::from_raw(back32[1]).imm == -2);
}

TEST_CASE("calls: helpers by id, local functions by label, callx by register", "[asm]") {
    const auto c = words(
        "call local f\n"
        "exit\n"
        "f:\n"
        "mov %r0, 1\n"
        "call local f   # recursion: back to pc 2\n"
        "exit\n");
    REQUIRE(c.size() == 5);
    CHECK(Insn::from_raw(c[0]).code == 0x85);
    CHECK(Insn::from_raw(c[0]).src == 1);
    CHECK(Insn::from_raw(c[0]).imm == 1);
    CHECK(Insn::from_raw(c[3]).imm == -2);

    const Insn helper = only("call 5");
    CHECK(helper.src == 0);
    CHECK(helper.imm == 5);

    const Insn callx = only("call %r2");
    CHECK(callx.code == 0x8d);
    CHECK(callx.dst == 2);
    CHECK(callx.imm == 0);

    // A function reference is a label too, in the lddw immediate.
    const auto f = words("lddw %r1, func(cb)\nexit\ncb:\nexit");
    CHECK(Insn::from_raw(f[0]).src == 4);
    CHECK(Insn::from_raw(f[0]).imm == 2);
    CHECK(Insn::from_raw(words("lddw %r1, func(+5)")[0]).imm == 5);
}

TEST_CASE("comments, blank lines and whitespace are ignored", "[asm]") {
    const std::vector<uint64_t> mov_exit = {0x00000002000000b7, 0x0000000000000095};
    CHECK(words("# a comment\nmov %r0, 2 # trailing\n\n   \n# mov %r0, 3\nexit") == mov_exit);
    CHECK(words("\tmov\t%r0,\t2\r\n  exit  \r\n") == mov_exit);
    CHECK(words("mov %r0,2\nexit ; llvm-mc style comment") == mov_exit);
    CHECK(words("done: # label with a comment\nja done").size() == 1);
    CHECK(words("").empty());
    CHECK(words("# nothing\n\n").empty());
}

namespace {

struct AsmError {
    std::string text;
    std::size_t line;
    std::string message;   // a fragment of Error::message()
};

}  // namespace

TEST_CASE("assembler errors name the file and line", "[asm]") {
    std::string far = "ja far\n";
    for (int i = 0; i < 40000; ++i) far += "exit\n";
    far += "far:\nexit\n";

    const std::vector<AsmError> cases = {
        {"mov %r0, 1\nfrob %r1", 2, "unknown mnemonic 'frob'"},
        {"lock frob [%r1+0], %r2", 1, "unknown mnemonic 'lock frob'"},
        {"add %r0", 1, "operands do not fit 'add'"},
        {"exit\nneg %r0, %r1", 2, "'neg' takes 1 operand, got 2"},
        {"exit 1", 1, "'exit' takes 0 operands, got 1"},
        {"ldxw %r0", 1, "'ldxw' takes 2 operands, got 1"},
        {"jeq %r1, 1", 1, "'jeq' takes 3 operands, got 2"},
        {"ja", 1, "'ja' takes 1 operand, got 0"},
        {"mov %r11, 1", 1, "invalid register '%r11' (r0..r10)"},
        {"add %r1, %r16", 1, "invalid register '%r16' (r0..r10)"},
        {"mov %x1, 1", 1, "expected a register like %r1, got '%x1'"},
        {"neg r1", 1, "expected a register like %r1, got 'r1'"},
        {"exit\nja nowhere", 2, "undefined label 'nowhere'"},
        {"exit\n\ncall local nowhere", 3, "undefined label 'nowhere'"},
        {"lddw %r1, func(nowhere)\nexit", 1, "undefined label 'nowhere'"},
        {"a:\na:\nexit", 2, "duplicate label 'a'"},
        {":", 1, "empty label"},
        {far, 1, "label 'far' is too far for a 16-bit jump offset"},
        {"mov %r0, 0x100000000", 1, "immediate '0x100000000' does not fit in 32 bits"},
        {"mov %r0, 0x1ffffffff", 1, "immediate '0x1ffffffff' does not fit in 32 bits"},
        {"mov %r0, -2147483649", 1, "immediate '-2147483649' does not fit in 32 bits"},
        {"jeq %r1, 4294967296, +1", 1, "immediate '4294967296' does not fit in 32 bits"},
        {"mov %r0, 12abc", 1, "invalid immediate '12abc'"},
        {"mov %r0, 0x", 1, "invalid immediate '0x'"},
        {"lddw %r0, 0x10000000000000000", 1, "invalid 64-bit immediate"},
        {"ldxw %r0, %r1+4", 1, "expected [%rN+off], got '%r1+4'"},
        {"ldxw %r0, [%r1+4", 1, "expected [%rN+off], got '[%r1+4'"},
        {"stxw [r1+4], %r2", 1, "expected a register like %r1, got 'r1'"},
        {"ldxw %r0, [%r1+70000]", 1, "offset '+70000' does not fit in 16 bits"},
        {"ldxw %r0, [%r1+x]", 1, "invalid offset '+x'"},
        {"lddw %r1, map_thing(3)", 1, "unknown lddw pseudo source 'map_thing'"},
        {"lddw %r1, map_value(3)", 1, "'map_value' takes 2 argument(s)"},
        {"call wrong 5", 1, "unknown call mode 'wrong'"},
        {"call 1, 2", 1, "'call' takes one helper id"},
        {"ldabsdw 4", 1, "'ldabsdw' does not exist"},
    };
    for (const auto& c : cases) {
        INFO(c.text.substr(0, 60));
        auto r = assemble(c.text, "t.s");
        REQUIRE_FALSE(r.ok());
        const Error& e = r.error();
        INFO(e.describe());
        CHECK(e.code() == ErrorCode::Parse);
        CHECK(e.where().file == "t.s");
        CHECK(e.where().line == c.line);
        CHECK_THAT(e.message(), Catch::Contains(c.message));
    }
    auto r = assemble("exit\nfrob", "prog.s");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().describe() == "prog.s:2: unknown mnemonic 'frob'");
}

TEST_CASE("explicitly signed offsets that do not fit in 16 bits are errors", "[asm][bug][!mayfail]") {
    // parse_off16() in vm/asm.cpp accepts -32768..65535 and wraps the upper half, so a
    // forward jump "+40000" becomes a backward jump of -25536 and "[%r1+32768]" addresses
    // r1 - 32768, while a label 40000 instructions away is rejected as "too far".
    for (const char* text : {"ja +40000", "jeq %r1, 0, +32768", "ldxw %r0, [%r1+32768]", "stxw [%r1+65535], %r2"}) {
        INFO(text);
        auto r = assemble(text, "t.s");
        INFO((r.ok() ? "assembled with off = " + std::to_string((*r)[0].off) : r.error().describe()));
        CHECK_FALSE(r.ok());
    }
}
