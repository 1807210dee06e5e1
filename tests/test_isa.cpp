// The opcode table, classification, validation, and the text round trip.
#include "harness/harness.hpp"
#include "vm/vm.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <set>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

Insn make(uint8_t code, uint8_t dst = 0, uint8_t src = 0, int16_t off = 0, int32_t imm = 0) {
    Insn i;
    i.code = code;
    i.dst = dst;
    i.src = src;
    i.off = off;
    i.imm = imm;
    return i;
}

// A valid instance of a table row with the given operand values (as far as its form allows),
// followed by what it needs: lddw's second half, targets, and an exit.
std::vector<Insn> instance(const OpInfo& row, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    Insn in = make(row.code);
    switch (row.disc) {
    case Disc::OFF: in.off = static_cast<int16_t>(row.dval); break;
    case Disc::IMM: in.imm = row.dval; break;
    case Disc::SRC: in.src = static_cast<uint8_t>(row.dval); break;
    case Disc::NONE: break;
    }
    const uint8_t wdst = dst == 10 ? 9 : dst;   // a written register cannot be r10
    switch (row.form) {
    case Form::ALU_K: in.dst = wdst; in.imm = imm; break;
    case Form::ALU_X: in.dst = wdst; in.src = src; break;
    case Form::NEG: in.dst = wdst; break;
    case Form::MOVSX: in.dst = wdst; in.src = src; break;
    case Form::END: in.dst = wdst; break;
    case Form::JA: in.off = 1; break;
    case Form::JA32: in.imm = 1; break;
    case Form::JCOND_K: in.dst = dst; in.imm = imm; in.off = 1; break;
    case Form::JCOND_X: in.dst = dst; in.src = src; in.off = 1; break;
    case Form::CALL: in.imm = imm; break;
    case Form::CALL_LOCAL: in.imm = 1; break;
    case Form::CALL_KFUNC: in.imm = imm; in.off = off; break;
    case Form::CALLX: in.dst = dst; break;
    case Form::EXIT: break;
    case Form::MAY_GOTO: in.off = 1; break;
    case Form::LDDW: {
        in.dst = wdst;
        in.imm = row.op == Op::LDDW_FUNC ? 1 : imm;
        Insn hi = make(0, 0, 0, 0, row.op == Op::LDDW || row.op == Op::LDDW_MAP_VALUE || row.op == Op::LDDW_MAP_IDX_VALUE ? 0x55 : 0);
        return {in, hi, make(0x95), make(0x95)};
    }
    case Form::LDABS: in.imm = imm; break;
    case Form::LDIND: in.src = src; in.imm = imm; break;
    case Form::LDX:
    case Form::LDXS:
    case Form::LOAD_ACQ: in.dst = wdst; in.src = src; in.off = off; break;
    case Form::ST: in.dst = dst; in.off = off; in.imm = imm; break;
    case Form::STX:
    case Form::ATOMIC:
    case Form::STORE_REL: in.dst = dst; in.src = src; in.off = off; break;
    }
    return {in, make(0x95), make(0x95)};
}

std::string decode_error(std::vector<Insn> prog) {
    auto d = decode(prog, {"t.o", "xdp"});
    if (d) return "(decoded)";
    return d.error().describe();
}

}  // namespace

TEST_CASE("every table row is distinct and classifies back to itself", "[isa]") {
    std::set<std::string_view> names;
    std::set<std::tuple<uint8_t, Disc, int32_t>> keys;
    REQUIRE(op_table().size() == kOpCount);
    for (const auto& row : op_table()) {
        INFO(row.name);
        CHECK(names.insert(row.name).second);
        CHECK(keys.insert({row.code, row.disc, row.dval}).second);
        CHECK(&op_info(row.op) == &row);
        const auto prog = instance(row, 1, 2, -8, 7);
        auto op = classify(prog[0]);
        REQUIRE(op.has_value());
        CHECK(*op == row.op);
    }
}

TEST_CASE("opcode bytes outside the table are unknown", "[isa]") {
    std::set<uint8_t> used;
    for (const auto& row : op_table()) used.insert(row.code);
    int unknown = 0;
    for (int c = 0; c < 256; ++c) {
        if (used.count(static_cast<uint8_t>(c))) continue;
        ++unknown;
        CHECK_FALSE(classify(make(static_cast<uint8_t>(c))).has_value());
        CHECK_THAT(decode_error({make(static_cast<uint8_t>(c)), make(0x95)}), Catch::Contains("unknown opcode"));
    }
    CHECK(unknown > 100);
}

TEST_CASE("every row decodes in a minimal program", "[isa]") {
    for (const auto& row : op_table()) {
        INFO(row.name);
        const auto prog = instance(row, 3, 4, 16, 5);
        auto d = decode(prog);
        REQUIRE(d.ok());
        CHECK(d->ops[0] == row.op);
        if (row.form == Form::LDDW) CHECK(d->ops[1] == Op::LddwHigh);
    }
}

TEST_CASE("validation errors name the pc and the bad field", "[isa]") {
    const Insn exit = make(0x95);
    CHECK(decode_error({exit, make(0xff)}) == "t.o: section 'xdp': pc 1: invalid instruction (opcode 0xff, raw 0x00000000000000ff): unknown opcode");
    CHECK_THAT(decode_error({make(0xb7, 11), exit}), Catch::Contains("pc 0") && Catch::Contains("dst register r11 does not exist"));
    CHECK_THAT(decode_error({make(0xbf, 1, 12), exit}), Catch::Contains("src register r12 does not exist"));
    CHECK_THAT(decode_error({make(0xb7, 10, 0, 0, 1), exit}), Catch::Contains("r10 is read-only"));
    CHECK_THAT(decode_error({make(0x95, 0, 0, 0, 1)}), Catch::Contains("reserved immediate field is 0x1"));
    CHECK_THAT(decode_error({make(0x07, 1, 3, 0, 1), exit}), Catch::Contains("reserved src field is 3"));
    CHECK_THAT(decode_error({make(0x05, 0, 0, 0, 7), exit}), Catch::Contains("reserved immediate field"));
    CHECK_THAT(decode_error({make(0x3f, 1, 2, 2), exit}), Catch::Contains("offset 2 is not valid for this opcode (expected 0x0, 0x1)"));
    CHECK_THAT(decode_error({make(0xbf, 1, 2, 4), exit}), Catch::Contains("offset 4 is not valid"));
    CHECK_THAT(decode_error({make(0xdc, 1, 0, 0, 24), exit}), Catch::Contains("immediate 0x18 is not valid"));
    CHECK_THAT(decode_error({exit, make(0x18, 1)}), Catch::Contains("pc 1") && Catch::Contains("lddw is missing its second half"));
    CHECK_THAT(decode_error({make(0x18, 1), make(0x07), exit}), Catch::Contains("pc 1") && Catch::Contains("second half of lddw"));
    CHECK_THAT(decode_error({make(0x05, 0, 0, 5), exit}), Catch::Contains("jump target 6 is outside the program (0..1)"));
    CHECK_THAT(decode_error({make(0x05, 0, 0, -2), exit}), Catch::Contains("jump target -1 is outside"));
    CHECK_THAT(decode_error({make(0x05, 0, 0, 1), make(0x18, 1), make(0), exit}), Catch::Contains("second half of an lddw"));
    CHECK_THAT(decode_error({make(0x85, 0, 1, 0, 9), exit}), Catch::Contains("call target 10 is outside"));
    CHECK(decode_error({}) == "t.o: section 'xdp': program has no instructions");
    std::vector<uint8_t> seven(7, 0);
    auto b = decode_bytes(seven, {"p.bin", ""});
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().describe() == "p.bin: program size 7 is not a multiple of 8 bytes");
}

TEST_CASE("decode -> disassemble (conformance syntax) -> assemble gives the same bytes", "[isa]") {
    struct Values {
        uint8_t dst, src;
        int16_t off;
        int32_t imm;
    };
    const Values values[] = {{0, 1, 0, 0}, {9, 10, 32767, INT32_MIN}, {5, 3, -32768, -1}, {1, 0, -8, 0x7fffffff}, {10, 9, 1, 12345}};
    int checked = 0;
    for (const auto& row : op_table()) {
        for (const auto& v : values) {
            INFO(row.name << " dst=" << int(v.dst) << " src=" << int(v.src) << " off=" << v.off << " imm=" << v.imm);
            const auto prog = instance(row, v.dst, v.src, v.off, v.imm);
            REQUIRE(decode(prog).ok());
            std::string text;
            for (std::size_t pc = 0; pc < prog.size(); ++pc) {
                text += disassemble(prog, pc, {Syntax::Conformance, false}) + "\n";
                if (row.form == Form::LDDW && pc == 0) ++pc;
            }
            auto back = assemble(text);
            INFO(text);
            REQUIRE(back.ok());
            CHECK(*back == prog);
            ++checked;
        }
    }
    CHECK(checked == static_cast<int>(kOpCount * 5));
}

TEST_CASE("llvm-objdump style disassembly", "[isa]") {
    const std::vector<std::pair<std::vector<Insn>, std::string>> cases = {
        {{make(0x61, 0, 1, 4)}, "r0 = *(u32 *)(r1 + 4)"},
        {{make(0x7b, 10, 1, -8)}, "*(u64 *)(r10 - 8) = r1"},
        {{make(0x62, 10, 0, -4, 5)}, "*(u32 *)(r10 - 4) = 5"},
        {{make(0x04, 0, 0, 0, 5)}, "w0 += 5"},
        {{make(0xb7, 0, 0, 0, -1)}, "r0 = -1"},
        {{make(0x1f, 2, 3)}, "r2 -= r3"},
        {{make(0xcc, 2, 3)}, "w2 s>>= w3"},
        {{make(0x3f, 1, 2, 1)}, "r1 s/= r2"},
        {{make(0x87, 4)}, "r4 = -r4"},
        {{make(0x6d, 1, 2, 3)}, "if r1 s> r2 goto +3"},
        {{make(0x16, 1, 0, -2, 7)}, "if w1 == 7 goto -2"},
        {{make(0x45, 1, 0, 1, 8)}, "if r1 & 8 goto +1"},
        {{make(0x18, 1, 0, 0, 0x55667788), make(0, 0, 0, 0, 0x11223344)}, "r1 = 1234605616436508552 ll"},
        {{make(0x18, 1, 5, 0, 2), make(0)}, "r1 = map_idx(2) ll"},
        {{make(0xdb, 10, 1, -8, 0)}, "lock *(u64 *)(r10 - 8) += r1"},
        {{make(0xc3, 10, 1, -4, 0x51)}, "w1 = atomic_fetch_and((u32 *)(r10 - 4), w1)"},
        {{make(0xdb, 10, 1, -8, 0xe1)}, "r1 = xchg_64(r10 - 8, r1)"},
        {{make(0xdb, 10, 1, -8, 0xf1)}, "r0 = cmpxchg_64(r10 - 8, r0, r1)"},
        {{make(0xdc, 0, 0, 0, 16)}, "r0 = be16 r0"},
        {{make(0xd7, 0, 0, 0, 64)}, "r0 = bswap64 r0"},
        {{make(0xbf, 0, 1, 8)}, "r0 = (s8)r1"},
        {{make(0x91, 0, 1, 2)}, "r0 = *(s8 *)(r1 + 2)"},
        {{make(0x85, 0, 0, 0, 1)}, "call bpf_map_lookup_elem"},
        {{make(0x85, 0, 1, 0, 3)}, "call pc+3"},
        {{make(0x8d, 2)}, "callx r2"},
        {{make(0x95)}, "exit"},
        {{make(0x06, 0, 0, 0, -2)}, "gotol -2"},
        {{make(0x05, 0, 0, 4)}, "goto +4"},
        {{make(0x30, 0, 0, 0, 12)}, "r0 = *(u8 *)skb[12]"},
        {{make(0x48, 0, 3, 0, 2)}, "r0 = *(u16 *)skb[r3 + 2]"},
        {{make(0xe5, 0, 0, 2)}, "may_goto +2"},
        {{make(0xff)}, "invalid 0xff dst=r0 src=r0 off=0 imm=0x0"},
    };
    for (const auto& [prog, text] : cases) CHECK(disassemble(prog, 0) == text);
    CHECK(disassemble(std::vector<Insn>{make(0x85, 0, 0, 0, 1)}, 0, {Syntax::Llvm, false}) == "call 1");
}

// The same object through llvm-objdump and through bpfsim, instruction by instruction.
TEST_CASE("disassembly agrees with llvm-objdump on the bench kernels", "[isa][llvm]") {
    const std::string obj = BPFSIM_CORPUS_DIR "/bench_kernels.o";
    FILE* probe = std::fopen(obj.c_str(), "rb");
    if (!probe) {
        WARN("no " << obj << "; skipped");
        return;
    }
    std::fclose(probe);
    auto elf = harness::ElfFile::open(obj);
    REQUIRE(elf.ok());
    int compared = 0;
    for (const auto& p : elf->programs()) {
        const std::string cmd = "llvm-objdump -d --no-show-raw-insn --section=" + p.section + " " + obj + " 2>/dev/null";
        FILE* f = popen(cmd.c_str(), "r");
        if (!f) {
            WARN("llvm-objdump not available; skipped");
            return;
        }
        std::map<std::size_t, std::string> theirs;
        char buf[512];
        while (std::fgets(buf, sizeof buf, f)) {
            std::string line = buf;
            auto colon = line.find(':');
            if (colon == std::string::npos || line.find('<') < colon) continue;
            std::size_t pc;
            if (std::sscanf(line.c_str(), " %zu:", &pc) != 1) continue;
            std::string text = line.substr(colon + 1);
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
            // llvm names branch targets: "goto +2 <LBB0_2>"
            if (auto lt = text.rfind(" <"); lt != std::string::npos && text.back() == '>') text = text.substr(0, lt);
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.erase(0, 1);
            theirs[pc] = text;
        }
        pclose(f);
        if (theirs.empty()) {
            WARN("llvm-objdump printed nothing; skipped");
            return;
        }
        auto prog = elf->program(p.name);
        REQUIRE(prog.ok());
        for (const auto& [pc, text] : theirs) {
            INFO(p.name << " pc " << pc);
            CHECK(disassemble(prog->insns, pc, {Syntax::Llvm, false}) == text);
            ++compared;
        }
    }
    CHECK(compared > 100);
}
