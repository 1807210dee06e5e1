// Inputs the fuzz targets (tests/fuzz) once crashed on, replayed through the same target
// functions, and the fixed behaviour checked directly.
#include "btf/btf.hpp"
#include "btf/dump.hpp"
#include "harness/scenario.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "verifier/verifier.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>

using namespace bpfsim;

namespace {

const std::filesystem::path kRegressions = BPFSIM_SOURCE_DIR "/tests/fuzz/regressions";

std::vector<uint8_t> read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

vm::Insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    vm::Insn in;
    in.code = code;
    in.dst = dst;
    in.src = src;
    in.off = off;
    in.imm = imm;
    return in;
}

verifier::Verdict verify(std::vector<vm::Insn> body) {
    body.insert(body.begin(), insn(0xb7, 0, 0, 0, 0));   // r0 = 0
    body.push_back(insn(0x95, 0, 0, 0, 0));
    return verifier::verify_insns(body, harness::ProgType::SocketFilter, "", {});
}

}  // namespace

TEST_CASE("fuzz regressions: every saved input passes its target", "[fuzz-regression]") {
    const std::map<std::string, std::function<void(fuzz::Bytes)>> targets = {
        {"elf", fuzz::elf}, {"btf", fuzz::btf}, {"btf_ext", fuzz::btf_ext}, {"core", fuzz::core}, {"scenario", fuzz::scenario},
        {"asm", fuzz::asm_text}, {"verifier_soundness", fuzz::verifier_soundness}, {"engines_agree", fuzz::engines_agree}};
    REQUIRE(std::filesystem::is_directory(kRegressions));
    std::size_t n = 0;
    for (const auto& dir : std::filesystem::directory_iterator(kRegressions)) {
        const std::string target = dir.path().filename().string();
        INFO(target);
        REQUIRE(targets.count(target) == 1);
        for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
            INFO(f.path().filename().string());
            const std::vector<uint8_t> bytes = read(f.path());
            CHECK_NOTHROW(targets.at(target)(bytes));
            ++n;
        }
    }
    CHECK(n >= 3);
}

// verifier_soundness/movsx-reserved-offset: `r1 = r0` with offset 26558 reached the movsx transfer
// function, which shifted by 26557 bits (UBSan). The kernel refuses such fields first.
TEST_CASE("fuzz regressions: the verifier model refuses reserved ALU fields", "[fuzz-regression][verifier]") {
    const verifier::Verdict bad_movsx = verify({insn(0xbf, 1, 0, 26558, 0)});
    CHECK_FALSE(bad_movsx.accepted);
    CHECK(bad_movsx.message == "BPF_MOV uses reserved fields");
    CHECK(bad_movsx.pc == 1);
    CHECK_FALSE(verify({insn(0xbc, 1, 0, 32, 0)}).accepted);    // w1 = (s32)w0: no 32-bit movsx32
    CHECK(verify({insn(0xbf, 1, 0, 32, 0)}).accepted);          // r1 = (s32)r0
    CHECK(verify({insn(0xbf, 1, 0, 8, 0)}).accepted);           // r1 = (s8)r0
    CHECK(verify({insn(0xb7, 1, 2, 0, 5)}).message == "BPF_MOV uses reserved fields");   // mov imm with a src
    CHECK(verify({insn(0x87, 0, 0, 0, 1)}).message == "BPF_NEG uses reserved fields");
    CHECK(verify({insn(0xd4, 0, 0, 0, 24)}).message == "BPF_END uses reserved fields");
    CHECK(verify({insn(0xdf, 0, 0, 0, 16)}).message == "BPF_END uses reserved fields");   // ALU64 to_be
    CHECK(verify({insn(0xd7, 0, 0, 0, 16)}).accepted);          // bswap16
    CHECK(verify({insn(0x07, 0, 0, 1, 1)}).message == "BPF_ALU uses reserved fields");   // add with off 1
    CHECK(verify({insn(0x37, 0, 0, 1, 3)}).accepted);           // sdiv
    CHECK(verify({insn(0x0f, 0, 0, 0, 7)}).message == "BPF_ALU uses reserved fields");   // add reg with an imm
    CHECK(verify({insn(0xe7, 0, 0, 0, 1)}).message == "invalid BPF_ALU opcode e0");
}

// verifier_soundness/kfunc-by-btf-id: `call` with src 2 and imm 5 (a kfunc by BTF id, with no
// extern naming it) was accepted without a look at the id, and the run trapped (bpfsim has no
// kfunc implementations). The id must name a kernel function the program type may call.
TEST_CASE("fuzz regressions: a kfunc called by BTF id must be a kernel function", "[fuzz-regression][verifier]") {
    CHECK(verify({insn(0x85, 0, 2, 0, 5)}).message == "calling kernel function btf_id 5 is not allowed: no kernel BTF to resolve it");
    CHECK(verify({insn(0x85, 0, 2, 0, 0)}).message == "invalid kernel function call not eliminated in verifier pass");
    CHECK(verify({insn(0x85, 0, 2, 1, 5)}).message == "failed to find BTF for kernel function");
    const std::filesystem::path vmlinux = "/sys/kernel/btf/vmlinux";
    if (!std::filesystem::exists(vmlinux)) {
        WARN("no /sys/kernel/btf/vmlinux: kfunc ids not looked up");
        return;
    }
    auto kb = btf::Btf::load_file(vmlinux);
    REQUIRE(kb);
    verifier::VerifyOptions vo;
    vo.kernel_btf = &*kb;
    auto call = [&](uint32_t id) {
        return verifier::verify_insns({insn(0xb7, 0, 0, 0, 0), insn(0x85, 0, 2, 0, static_cast<int32_t>(id)), insn(0x95, 0, 0, 0, 0)},
                                      harness::ProgType::SocketFilter, "", {}, vo);
    };
    uint32_t not_func = 1;
    while (not_func < kb->count() && kb->type(not_func).kind() == btf::Kind::Func) ++not_func;
    REQUIRE(not_func < kb->count());
    CHECK(call(not_func).message == fmt::format("kernel btf_id {} is not a function", not_func));
    CHECK(call(kb->count() + 10).message == fmt::format("kernel btf_id {} is not a function", kb->count() + 10));
    const auto memset_id = kb->find("memset", btf::Kind::Func);
    REQUIRE(memset_id);
    CHECK(call(*memset_id).message == "calling kernel function memset is not allowed");
}

// btf/member-array-2gib: a struct member whose array type is 2^31 + 16 bytes. The C dump took
// its size as 32 bits, went negative, and padded up to the next member: billions of lines.
TEST_CASE("fuzz regressions: a huge member type does not make the C dump run away", "[fuzz-regression][btf]") {
    const std::vector<uint8_t> bytes = read(kRegressions / "btf" / "member-array-2gib");
    auto b = btf::Btf::parse(bytes, "member-array-2gib");
    REQUIRE(b.ok());
    const auto t0 = std::chrono::steady_clock::now();
    std::string out;
    try {
        btf::dump_c(*b, out);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidBtf);
    }
    CHECK(out.size() < 64 * 1024);
    CHECK(out.find("struct task_struct {") != std::string::npos);
    CHECK(out.find("char comm[2147483664];") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

// scenario/object-name-too-long: a scenario naming an object (or a BTF) of 300 characters. The
// search of the -I directories asked std::filesystem whether it existed, which throws on a name
// the file system refuses, and nothing caught it: the process aborted. Such a name is now looked
// for quietly and reported, with the file system's reason, when it is opened.
TEST_CASE("fuzz regressions: a file name the file system refuses is an error naming it", "[fuzz-regression][scenario]") {
    const std::filesystem::path input = kRegressions / "scenario" / "object-name-too-long";
    const std::string long_name(300, 'x');
    auto s = harness::load_scenario(input, {BPFSIM_CORPUS_DIR});
    REQUIRE(s.ok());
    CHECK(s->object == kRegressions / "scenario" / (long_name + ".o"));
    REQUIRE(s->btf.size() == 2);
    CHECK(s->btf[1] == std::filesystem::path(BPFSIM_CORPUS_DIR) / "vmlinux-6.18.44.btf");
    const harness::ScenarioOutcome out = harness::run_scenario(*s, 1, {}, {});
    REQUIRE(out.error);
    CHECK(out.error->code() == ErrorCode::Io);
    CHECK(out.error->describe() == s->object.string() + ": cannot open file: File name too long");

    // A BTF with such a name, beside an object that opens.
    s->object = std::filesystem::path(BPFSIM_CORPUS_DIR) / "feat_scenario_maps.o";
    const harness::ScenarioOutcome bad_btf = harness::run_scenario(*s, 0, {}, {});
    REQUIRE(bad_btf.error);
    CHECK(bad_btf.error->describe() == s->btf[0].string() + ": cannot open the BTF file: File name too long");

    // Whatever else in the standard library throws a filesystem_error becomes an Io error naming
    // the path, wherever catch_error stands between it and the caller.
    auto r = catch_error([&]() -> bool { return std::filesystem::is_directory(kRegressions / long_name); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == ErrorCode::Io);
    CHECK(r.error().describe() == (kRegressions / long_name).string() + ": File name too long");
}
