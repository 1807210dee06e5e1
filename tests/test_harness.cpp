// The bpf_conformance format and runner, and the raw ELF reader.
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

std::vector<uint8_t> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE(".data files parse into their sections", "[harness]") {
    auto c = parse_conformance_text("# comment\n-- asm\nmov %r0, 1\nexit\n-- mem\n01 02\nff\n-- result\n0x1\n-- no jit\n", "x.data");
    REQUIRE(c.ok());
    CHECK(c->asm_text == "mov %r0, 1\nexit\n");
    CHECK(c->asm_line == 3);
    CHECK(c->mem == std::vector<uint8_t>{1, 2, 0xff});
    CHECK(c->result == 1u);
    CHECK(c->no_jit);
    auto raw = parse_conformance_text("-- raw\n0xb7\n0x95\n-- error\nsomething failed\n", "r.data");
    REQUIRE(raw.ok());
    CHECK(raw->raw == std::vector<uint64_t>{0xb7, 0x95});
    CHECK(raw->error == "something failed");
}

TEST_CASE(".data errors name the file and line", "[harness]") {
    auto e1 = parse_conformance_text("-- asm\nexit\n-- frob\n", "a.data");
    REQUIRE_FALSE(e1.ok());
    CHECK(e1.error().describe() == "a.data:3: unknown section '-- frob'");
    auto e2 = parse_conformance_text("-- asm\nexit\n-- result\n0xzz\n", "b.data");
    REQUIRE_FALSE(e2.ok());
    CHECK(e2.error().describe() == "b.data:4: invalid number '0xzz'");
    auto e3 = parse_conformance_text("-- asm\nexit\n-- mem\n1ff\n-- result\n0\n", "c.data");
    REQUIRE_FALSE(e3.ok());
    CHECK(e3.error().describe() == "c.data:4: memory byte '1ff' is larger than 0xff");
    auto e4 = parse_conformance_text("-- asm\nexit\n", "d.data");
    REQUIRE_FALSE(e4.ok());
    CHECK(e4.error().describe() == "d.data: test has neither '-- result' nor '-- error'");
}

TEST_CASE("the runner compares results, raw against asm, and expected errors", "[harness]") {
    auto pass = parse_conformance_text("-- asm\nmov %r0, %r2\nexit\n-- mem\n00 00 00 00\n-- result\n4\n", "p.data");
    CHECK(run_conformance(*pass).passed);
    auto wrong = parse_conformance_text("-- asm\nmov %r0, 2\nexit\n-- result\n3\n", "w.data");
    auto o = run_conformance(*wrong);
    CHECK_FALSE(o.passed);
    CHECK(o.detail == "returned 0x2, expected 0x3");
    auto mismatch = parse_conformance_text("-- asm\nmov %r0, 2\nexit\n-- raw\n0x00000003000000b7\n0x95\n-- result\n3\n", "m.data");
    auto m = run_conformance(*mismatch);
    CHECK_FALSE(m.passed);
    CHECK_THAT(m.detail, Catch::StartsWith("assembled '-- asm' differs from '-- raw': first difference at pc 0"));
    auto err = parse_conformance_text("-- asm\nldxw %r0, [%r1+0]\nexit\n-- error\ninvalid memory access\n", "e.data");
    CHECK(run_conformance(*err).passed);
    auto bad_asm = parse_conformance_text("-- asm\nmov %r0, 2\nfrob\n-- result\n3\n", "f.data");
    auto f = run_conformance(*bad_asm);
    CHECK_FALSE(f.passed);
    CHECK(f.detail == "f.data:3: unknown mnemonic 'frob'");
}

TEST_CASE("the bpf_conformance suite passes with both dispatchers", "[harness][conformance]") {
    const fs::path dir = BPFSIM_SHARED_DIR "/conformance";
    if (!fs::is_directory(dir)) {
        WARN("no conformance suite at " << dir << "; skipped");
        return;
    }
    for (auto d : {vm::Dispatch::Threaded, vm::Dispatch::Switch}) {
        int passed = 0, total = 0;
        for (const auto& e : fs::directory_iterator(dir)) {
            if (e.path().extension() != ".data") continue;
            ++total;
            auto c = parse_conformance(e.path());
            REQUIRE(c.ok());
            auto o = run_conformance(*c, {1'000'000, d});
            INFO(e.path().filename().string() << ": " << o.detail);
            CHECK(o.passed);
            passed += o.passed;
        }
        CHECK(total == 313);
        CHECK(passed == 313);
    }
}

TEST_CASE("ElfFile reads the bench kernels", "[harness][elf]") {
    const fs::path obj = BPFSIM_CORPUS_DIR "/bench_kernels.o";
    if (!fs::exists(obj)) {
        WARN("no " << obj << "; skipped");
        return;
    }
    auto elf = ElfFile::open(obj);
    REQUIRE(elf.ok());
    std::set<std::string> names;
    for (const auto& p : elf->programs()) {
        names.insert(p.name);
        CHECK(p.section == "bench/" + p.name);
    }
    CHECK(names == std::set<std::string>{"xorshift", "xorshift4", "fnv1a", "parser"});
    auto prog = elf->program("xorshift");
    REQUIRE(prog.ok());
    auto interp = vm::Interpreter::compile(*prog, {});
    REQUIRE(interp.ok());
    uint64_t seed = 0x243f6a8885a308d3ull;
    vm::Env env;
    env.mem.add(&seed, 8, vm::kRead, vm::RegionKind::Input, "seed");
    auto r = interp->run(env, {reinterpret_cast<uint64_t>(&seed), 8, 0, 0, 0}, {0, vm::Dispatch::Threaded});
    REQUIRE_FALSE(r.trap);
    uint64_t x = seed | 1, sum = 0;
    for (uint32_t i = 0; i < 10'000'000; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x;
    }
    CHECK(r.r0 == sum);

    auto missing = elf->program("nope");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code() == ErrorCode::NotFound);
    CHECK_THAT(missing.error().message(), Catch::Contains("no program 'nope'; the object has: xorshift (bench/xorshift)"));
}

TEST_CASE("ElfFile rejects broken files cleanly", "[harness][elf]") {
    auto none = ElfFile::open("/nonexistent/file.o");
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code() == ErrorCode::Io);
    auto junk = ElfFile::from_bytes(std::vector<uint8_t>(100, 0x41), "junk.o");
    REQUIRE_FALSE(junk.ok());
    CHECK(junk.error().describe() == "junk.o: not an ELF file (bad magic)");
    const fs::path obj = BPFSIM_CORPUS_DIR "/bench_kernels.o";
    if (!fs::exists(obj)) return;
    const auto bytes = slurp(obj);
    for (std::size_t cut : {std::size_t(4), std::size_t(64), std::size_t(100), bytes.size() / 2, bytes.size() - 1}) {
        std::vector<uint8_t> part(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
        auto r = ElfFile::from_bytes(part, "cut.o");
        INFO("cut at " << cut);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == ErrorCode::InvalidElf);
    }
    // Random corruption: any outcome but a crash.
    std::mt19937 rng(1);
    for (int i = 0; i < 300; ++i) {
        auto copy = bytes;
        for (int k = 0; k < 8; ++k) copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
        auto r = ElfFile::from_bytes(copy, "flip.o");
        if (r)
            for (const auto& p : r->programs()) (void)r->program(p.name);
    }
}

TEST_CASE("every sample object opens or fails with a clear error", "[harness][elf][corpus]") {
    const fs::path dir = BPFSIM_SHARED_DIR "/corpus/ebpf-samples";
    if (!fs::is_directory(dir)) {
        WARN("no sample corpus at " << dir << "; skipped");
        return;
    }
    int opened = 0, rejected = 0, programs = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().extension() == ".md") continue;
        auto r = ElfFile::open(e.path());
        if (!r) {
            ++rejected;
            CHECK_FALSE(r.error().message().empty());
            CHECK(r.error().where().file == e.path().string());
            // Valid objects must open.
            CHECK(e.path().string().find("/invalid/") != std::string::npos);
            continue;
        }
        ++opened;
        for (const auto& p : r->programs()) {
            ++programs;
            auto prog = r->program(p.name);
            if (!prog) CHECK_FALSE(prog.error().message().empty());
        }
    }
    INFO(opened << " opened, " << rejected << " rejected, " << programs << " programs");
    CHECK(opened + rejected >= 170);
    CHECK(opened > 150);
}
