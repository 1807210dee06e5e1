// The bpf_conformance `.data` format and runner, and the raw ELF reader: what they accept,
// how they report errors, and that no input file, however broken, crashes them.
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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

// A scratch directory for this test run, removed at the end of the test case.
struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("bpfsim-test-harness-" + std::to_string(::getpid()));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path write(const std::string& name, const std::vector<uint8_t>& bytes) const {
        const fs::path p = path / name;
        std::ofstream out(p, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        return p;
    }
    fs::path write(const std::string& name, std::string_view text) const {
        return write(name, std::vector<uint8_t>(text.begin(), text.end()));
    }
};

ConformanceCase parsed(std::string_view text, std::string file = "t.data") {
    auto c = parse_conformance_text(text, std::move(file));
    if (!c) FAIL("does not parse: " << c.error().describe());
    return *c;
}

const fs::path kBenchKernels = BPFSIM_CORPUS_DIR "/bench_kernels.o";
constexpr uint64_t kKernelBudget = 1'000'000'000;

// corpus/bench/kernels.c, xorshift, in C++.
uint64_t xorshift_kernel(const uint8_t* mem, uint64_t len) {
    uint64_t x = 88172645463325252ull;
    if (len >= 8) std::memcpy(&x, mem, 8);
    x |= 1;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < 10'000'000u; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x;
    }
    return sum;
}

// corpus/bench/kernels.c, fnv1a, in C++.
uint64_t fnv1a_kernel(const uint8_t* mem, uint64_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    if (len < 1024) return 0;
    for (uint32_t r = 0; r < 64; r++)
        for (uint32_t i = 0; i < 1024; i++) {
            h ^= mem[i];
            h *= 0x100000001b3ull;
        }
    return h;
}

// Runs an ELF program on input memory (r1 = pointer, r2 = length) with both dispatchers.
// (A large budget rather than 0: see the budget-0 bug test in test_interp.cpp.)
uint64_t run_kernel(const vm::Program& prog, std::vector<uint8_t>& mem) {
    auto interp = vm::Interpreter::compile(prog, {});
    if (!interp) FAIL("does not compile: " << interp.error().describe());
    vm::Env env;
    if (!mem.empty()) env.mem.add(mem.data(), mem.size(), vm::kRead, vm::RegionKind::Input, "input");
    const uint64_t p = mem.empty() ? 0 : reinterpret_cast<uint64_t>(mem.data());
    const auto a = interp->run(env, {p, mem.size(), 0, 0, 0}, {kKernelBudget, vm::Dispatch::Threaded});
    const auto b = interp->run(env, {p, mem.size(), 0, 0, 0}, {kKernelBudget, vm::Dispatch::Switch});
    if (a.trap) FAIL("trapped: " << a.trap->message);
    REQUIRE_FALSE(b.trap);
    CHECK(a.r0 == b.r0);
    CHECK(a.insns == b.insns);
    return a.r0;
}

// Opens an ELF object and everything in it; any outcome but an exception or a crash is fine.
// Returns whether it opened.
bool open_everything(const Result<ElfFile>& r, int& programs, int& loaded) {
    if (!r) {
        CHECK_FALSE(r.error().message().empty());
        return false;
    }
    for (const auto& p : r.value().programs()) {
        ++programs;
        auto prog = r.value().program(p.name);
        if (prog) ++loaded;
        else CHECK_FALSE(prog.error().message().empty());
    }
    return true;
}

}  // namespace

// ─────────────────────────────── .data format ─────────────────────────────

TEST_CASE(".data files parse into their sections", "[harness]") {
    SECTION("asm, mem, result and no jit") {
        auto c = parsed("# comment\n-- asm\nmov %r0, 1\nexit\n-- mem\n01 02 # two bytes\nff\n-- result\n0x1\n-- no jit\n",
                        "x.data");
        CHECK(c.file == "x.data");
        CHECK(c.asm_text == "mov %r0, 1\nexit\n");
        CHECK(c.asm_line == 3);
        CHECK(c.mem == std::vector<uint8_t>{1, 2, 0xff});
        CHECK(c.result == 1u);
        CHECK(c.error.empty());
        CHECK(c.no_jit);
        CHECK(c.raw.empty());
    }
    SECTION("raw words with comments, and an expected error") {
        auto c = parsed("-- raw\n0xb7 # mov\n\n0x95\n-- error\n\n  something failed  \n", "r.data");
        CHECK(c.raw == std::vector<uint64_t>{0xb7, 0x95});
        CHECK(c.asm_text.empty());
        CHECK(c.error == "something failed");
        CHECK_FALSE(c.result.has_value());
        CHECK_FALSE(c.no_jit);
        CHECK(parsed("-- raw\n0x95\n-- error pattern\npc [0-9]+\n").error == "pc [0-9]+");
    }
    SECTION("decimal results, full 64-bit results, CRLF line ends") {
        CHECK(parsed("-- asm\nexit\n-- result\n42\n").result == 42u);
        CHECK(parsed("-- asm\nexit\n-- result\n0xffffffffffffffff\n").result == 0xffffffffffffffffu);
        auto crlf = parsed("-- asm\r\nmov %r0, 2\r\nexit\r\n-- result\r\n0x2\r\n");
        CHECK(crlf.asm_text == "mov %r0, 2\nexit\n");
        CHECK(crlf.result == 2u);
    }
    SECTION("the C source and register-offset sections are skipped") {
        auto c = parsed("-- c\nint f() { return 3; }\n-- asm\nmov %r0, 3\nexit\n-- no register offset\nfoo bar\n"
                        "-- result\n3\n");
        CHECK(c.asm_text == "mov %r0, 3\nexit\n");
        CHECK(c.asm_line == 4);
        CHECK(c.result == 3u);
    }
    SECTION("from a file") {
        TempDir tmp;
        const auto p = tmp.write("f.data", "-- asm\nmov %r0, 5\nexit\n-- result\n5\n");
        auto c = parse_conformance(p);
        REQUIRE(c.ok());
        CHECK(c->file == p.string());
        CHECK(c->result == 5u);
        auto missing = parse_conformance(tmp.path / "missing.data");
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.error().code() == ErrorCode::Io);
        CHECK(missing.error().where().file == (tmp.path / "missing.data").string());
    }
}

TEST_CASE(".data errors name the file and line", "[harness]") {
    SECTION("an unknown section") {
        auto e = parse_conformance_text("-- asm\nexit\n-- foo\n", "a.data");
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().code() == ErrorCode::Parse);
        CHECK(e.error().where().file == "a.data");
        CHECK(e.error().where().line == 3u);
        CHECK(e.error().describe() == "a.data:3: unknown section '-- foo'");
    }
    SECTION("a bad result number") {
        auto e = parse_conformance_text("-- asm\nexit\n-- result\n0xzz\n", "b.data");
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().code() == ErrorCode::Parse);
        CHECK(e.error().describe() == "b.data:4: invalid number '0xzz'");
        CHECK(parse_conformance_text("-- asm\nexit\n-- result\n12abc\n", "b.data").error().describe() ==
              "b.data:4: invalid number '12abc'");
        CHECK(parse_conformance_text("-- asm\nexit\n-- result\n0x\n", "b.data").error().where().line == 4u);
        CHECK(parse_conformance_text("-- asm\nexit\n-- result\n0x10000000000000000\n", "b.data").error().where().line ==
              4u);   // does not fit in 64 bits
    }
    SECTION("a bad memory byte") {
        auto big = parse_conformance_text("-- asm\nexit\n-- mem\n00 01\n1ff\n-- result\n0\n", "c.data");
        REQUIRE_FALSE(big.ok());
        CHECK(big.error().code() == ErrorCode::Parse);
        CHECK(big.error().describe() == "c.data:5: memory byte '1ff' is larger than 0xff");
        auto junk = parse_conformance_text("-- asm\nexit\n-- mem\n00 zz\n-- result\n0\n", "c.data");
        REQUIRE_FALSE(junk.ok());
        CHECK(junk.error().where().line == 4u);
        CHECK_THAT(junk.error().message(), Catch::Contains("zz"));
    }
    SECTION("a bad raw word") {
        auto e = parse_conformance_text("-- raw\n0x95\n0xg5\n-- result\n0\n", "r.data");
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().describe() == "r.data:3: invalid number '0xg5'");
    }
    SECTION("missing result and error, missing program") {
        auto e = parse_conformance_text("-- asm\nexit\n", "d.data");
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().code() == ErrorCode::Parse);
        CHECK(e.error().describe() == "d.data: test has neither '-- result' nor '-- error'");
        auto np = parse_conformance_text("-- result\n1\n", "e.data");
        REQUIRE_FALSE(np.ok());
        CHECK(np.error().describe() == "e.data: test has neither '-- asm' nor '-- raw'");
    }
}

// ──────────────────────────────── the runner ──────────────────────────────

TEST_CASE("run_conformance: results, asm against raw, expected errors", "[harness]") {
    SECTION("a passing case: r1 points at the memory, r2 is its length") {
        auto o = run_conformance(parsed("-- asm\nldxb %r0, [%r1+3]\nadd %r0, %r2\nexit\n-- mem\n00 00 00 07\n-- result\n0xb\n"));
        CHECK(o.passed);
        CHECK(o.detail.empty());
        CHECK(o.r0 == 0xb);
        CHECK(o.insns == 3);
    }
    SECTION("a failing case says what it got and what it expected") {
        auto o = run_conformance(parsed("-- asm\nmov %r0, 2\nexit\n-- result\n3\n", "w.data"));
        CHECK_FALSE(o.passed);
        CHECK(o.r0 == 2);
        CHECK(o.detail == "returned 0x2, expected 0x3");
    }
    SECTION("raw alone, and raw that matches asm") {
        CHECK(run_conformance(parsed("-- raw\n0x00000003000000b7\n0x0000000000000095\n-- result\n3\n")).passed);
        CHECK(run_conformance(parsed("-- asm\nmov %r0, 3\nexit\n-- raw\n0x00000003000000b7\n0x95\n-- result\n3\n")).passed);
    }
    SECTION("asm and raw that differ are reported, with the first difference") {
        auto o = run_conformance(parsed("-- asm\nmov %r0, 2\nexit\n-- raw\n0x00000003000000b7\n0x95\n-- result\n3\n"));
        CHECK_FALSE(o.passed);
        CHECK(o.detail == "assembled '-- asm' differs from '-- raw': first difference at pc 0: "
                          "asm 0x00000002000000b7, raw 0x00000003000000b7");
        auto longer = run_conformance(parsed("-- asm\nmov %r0, 3\nexit\n-- raw\n0x00000003000000b7\n0x95\n0x95\n-- result\n3\n"));
        CHECK_FALSE(longer.passed);
        CHECK_THAT(longer.detail, Catch::Contains("first difference at pc 2"));
    }
    SECTION("an expected error matches the trap message as text or as a regular expression") {
        CHECK(run_conformance(parsed("-- asm\nldxw %r0, [%r1+0]\nexit\n-- error\ninvalid memory access\n")).passed);
        CHECK(run_conformance(parsed("-- asm\nmov %r0, 0\nldxw %r0, [%r1+0]\nexit\n-- error pattern\n^pc [0-9]+: invalid")).passed);
        CHECK(run_conformance(parsed("-- asm\nja -1\n-- error\nbudget of [0-9]+ exhausted\n"), {1000, vm::Dispatch::Switch})
                  .passed);
        auto wrong = run_conformance(parsed("-- asm\nldxw %r0, [%r1+0]\nexit\n-- error\ndivision by zero\n"));
        CHECK_FALSE(wrong.passed);
        CHECK_THAT(wrong.detail, Catch::StartsWith("expected error matching 'division by zero', got: pc 0: invalid memory access"));
        auto none = run_conformance(parsed("-- asm\nmov %r0, 1\nexit\n-- error\nanything\n"));
        CHECK_FALSE(none.passed);
        CHECK(none.detail == "expected error matching 'anything', but the program returned 0x1");
    }
    SECTION("programs that do not assemble, compile or finish fail with the reason") {
        auto bad_asm = run_conformance(parsed("-- asm\nmov %r0, 2\nfrob\n-- result\n3\n", "f.data"));
        CHECK_FALSE(bad_asm.passed);
        CHECK(bad_asm.detail == "f.data:3: unknown mnemonic 'frob'");   // the line in the .data file
        auto helper = run_conformance(parsed("-- asm\ncall 12345\nexit\n-- result\n0\n"));
        CHECK_FALSE(helper.passed);
        CHECK_THAT(helper.detail, Catch::Contains("pc 0") && Catch::Contains("unknown helper #12345"));
        auto kernel = run_conformance(parsed("-- asm\ncall 6\nexit\n-- result\n0\n"));
        CHECK_FALSE(kernel.passed);
        CHECK_THAT(kernel.detail, Catch::Contains("helper bpf_trace_printk#6 is not implemented"));
        auto trap = run_conformance(parsed("-- asm\nldxw %r0, [%r1+0]\nexit\n-- result\n0\n"));
        CHECK_FALSE(trap.passed);
        CHECK_THAT(trap.detail, Catch::StartsWith("pc 0: invalid memory access"));
        auto spin = run_conformance(parsed("-- asm\nja -1\n-- result\n0\n"), {500, vm::Dispatch::Threaded});
        CHECK_FALSE(spin.passed);
        CHECK(spin.detail == "pc 0: instruction budget of 500 exhausted");
    }
    SECTION("the conformance helpers are available") {
        CHECK(run_conformance(parsed("-- asm\nmov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 0\nexit\n"
                                     "-- result\n0x0102030405\n"))
                  .passed);
        CHECK(run_conformance(parsed("-- asm\nmov %r1, 1024\ncall 3\nexit\n-- result\n32\n")).passed);
    }
}

TEST_CASE("run_raw: runs instructions on input memory", "[harness]") {
    std::vector<uint8_t> mem = {1, 2, 3, 4};
    auto insns = vm::assemble("stb [%r1+3], 9\nldxw %r0, [%r1]\nexit");
    REQUIRE(insns.ok());
    auto r = run_raw(*insns, mem);
    REQUIRE(r.ok());
    CHECK(r->ok());
    CHECK(r->r0 == 0x09030201);
    CHECK(mem == std::vector<uint8_t>{1, 2, 3, 9});
    std::vector<uint8_t> none;
    auto len = vm::assemble("mov %r0, %r2\nadd %r0, %r1\nexit");
    REQUIRE(len.ok());
    CHECK(run_raw(*len, none)->r0 == 0);   // no memory: r1 = 0, r2 = 0
    const std::vector<vm::Insn> invalid = {vm::Insn::from_raw(0xff)};
    auto e = run_raw(invalid, mem);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code() == ErrorCode::InvalidInsn);
}

TEST_CASE("the bpf_conformance suite passes with both dispatchers", "[harness][conformance]") {
    const fs::path dir = BPFSIM_SHARED_DIR "/conformance";
    if (!fs::is_directory(dir)) {
        WARN("no conformance suite at " << dir << "; skipped");
        return;
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".data") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() == 313);
    for (auto d : {vm::Dispatch::Threaded, vm::Dispatch::Switch}) {
        int passed = 0;
        for (const auto& f : files) {
            auto c = parse_conformance(f);
            INFO(f.filename().string());
            REQUIRE(c.ok());
            auto o = run_conformance(*c, {1'000'000, d});
            INFO((d == vm::Dispatch::Threaded ? "threaded" : "switch") << ": " << o.detail);
            CHECK(o.passed);
            passed += o.passed;
        }
        REQUIRE(passed == 313);
    }
}

// ──────────────────────────────── ElfFile ─────────────────────────────────

TEST_CASE("ElfFile lists and loads the bench kernels", "[harness][elf]") {
    if (!fs::exists(kBenchKernels)) {
        WARN("no " << kBenchKernels << "; skipped");
        return;
    }
    auto elf = ElfFile::open(kBenchKernels);
    REQUIRE(elf.ok());
    CHECK(elf->path() == kBenchKernels.string());

    SECTION("one program per bench/* section") {
        std::set<std::string> names;
        for (const auto& p : elf->programs()) {
            names.insert(p.name);
            CHECK(p.section == "bench/" + p.name);
            CHECK(p.offset == 0);
            CHECK(p.size % 8 == 0);
            const ElfSection* s = elf->section(p.section);
            REQUIRE(s != nullptr);
            CHECK(s->index == p.section_index);
            CHECK(elf->section(p.section_index) == s);
            CHECK(s->type == SHT_PROGBITS);
            CHECK((s->flags & SHF_EXECINSTR) != 0);
            CHECK(p.size == s->size);
        }
        CHECK(names == std::set<std::string>{"xorshift", "xorshift4", "fnv1a", "parser"});
        CHECK(elf->section(".symtab") != nullptr);
        CHECK(elf->section("no such section") == nullptr);
    }
    SECTION("xorshift computes what the C source says") {
        auto prog = elf->program("xorshift");
        REQUIRE(prog.ok());
        CHECK(prog->name == "xorshift");
        CHECK(prog->section == "bench/xorshift");
        CHECK(prog->file == kBenchKernels.string());
        const uint64_t seed = 0x243f6a8885a308d3ull;
        std::vector<uint8_t> mem(8);
        std::memcpy(mem.data(), &seed, 8);
        const uint64_t seeded = run_kernel(*prog, mem);
        CHECK(seeded == xorshift_kernel(mem.data(), mem.size()));
        std::vector<uint8_t> none;   // shorter than 8 bytes: the built-in seed
        const uint64_t unseeded = run_kernel(*prog, none);
        CHECK(unseeded == xorshift_kernel(nullptr, 0));
    }
    SECTION("fnv1a, found by its section name") {
        auto prog = elf->program("bench/fnv1a");
        REQUIRE(prog.ok());
        CHECK(prog->name == "fnv1a");
        std::vector<uint8_t> mem(1024);
        for (std::size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint8_t>(i * 7 + 3);
        const uint64_t hash = run_kernel(*prog, mem);
        CHECK(hash == fnv1a_kernel(mem.data(), mem.size()));
    }
    SECTION("an unknown program name lists the programs there are") {
        auto missing = elf->program("nope");
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.error().code() == ErrorCode::NotFound);
        CHECK(missing.error().where().file == kBenchKernels.string());
        CHECK_THAT(missing.error().message(),
                   Catch::StartsWith("no program 'nope'; the object has: ") && Catch::Contains("xorshift (bench/xorshift)") &&
                       Catch::Contains("xorshift4 (bench/xorshift4)") && Catch::Contains("fnv1a (bench/fnv1a)") &&
                       Catch::Contains("parser (bench/parser)"));
    }
}

TEST_CASE("ElfFile refuses programs that need relocations", "[harness][elf]") {
    const fs::path obj = BPFSIM_CORPUS_DIR "/xdp_counter.o";
    if (!fs::exists(obj)) {
        WARN("no " << obj << "; skipped");
        return;
    }
    auto elf = ElfFile::open(obj);
    REQUIRE(elf.ok());
    auto prog = elf->program("xdp_count");
    REQUIRE_FALSE(prog.ok());
    CHECK(prog.error().code() == ErrorCode::Unsupported);
    CHECK(prog.error().where().section == "xdp");
    CHECK_THAT(prog.error().message(), Catch::Contains("relocations (.relxdp)"));
}

TEST_CASE("ElfFile rejects broken files with a clean Error", "[harness][elf]") {
    TempDir tmp;
    SECTION("a missing file") {
        auto r = ElfFile::open(tmp.path / "missing.o");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == ErrorCode::Io);
        CHECK(r.error().where().file == (tmp.path / "missing.o").string());
    }
    SECTION("random bytes") {
        std::mt19937 rng(7);
        std::vector<uint8_t> bytes(4096);
        for (auto& b : bytes) b = static_cast<uint8_t>(rng());
        bytes[0] = 0;
        const auto p = tmp.write("random.o", bytes);
        auto r = ElfFile::open(p);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == ErrorCode::InvalidElf);
        CHECK(r.error().describe() == p.string() + ": not an ELF file (bad magic)");
        // random bytes behind a valid magic get past the first check, and still fail cleanly
        std::memcpy(bytes.data(), "\x7f" "ELF", 4);
        auto behind = ElfFile::from_bytes(bytes, "magic.o");
        REQUIRE_FALSE(behind.ok());
        CHECK(behind.error().code() == ErrorCode::InvalidElf);
        CHECK(behind.error().where().file == "magic.o");
    }
    SECTION("empty and tiny files") {
        CHECK(ElfFile::open(tmp.write("empty.o", std::vector<uint8_t>{})).error().code() == ErrorCode::InvalidElf);
        CHECK(ElfFile::from_bytes({0x7f, 'E', 'L', 'F'}, "four.o").error().code() == ErrorCode::InvalidElf);
    }
    if (!fs::exists(kBenchKernels)) {
        WARN("no " << kBenchKernels << "; truncation checks skipped");
        return;
    }
    const auto bytes = slurp(kBenchKernels);
    REQUIRE(bytes.size() > 1000);
    auto prefix = [&](std::size_t n) { return std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)); };
    SECTION("truncated copies: the first 100 bytes, the first half") {
        for (std::size_t cut : {std::size_t(100), bytes.size() / 2}) {
            INFO("first " << cut << " bytes");
            const auto p = tmp.write("cut.o", prefix(cut));
            auto r = ElfFile::open(p);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code() == ErrorCode::InvalidElf);
            CHECK(r.error().where().file == p.string());
            CHECK_FALSE(r.error().message().empty());
        }
        auto half = ElfFile::from_bytes(prefix(bytes.size() / 2), "half.o");
        CHECK_THAT(half.error().message(), Catch::Contains("truncated?"));
    }
    SECTION("every truncation is an error, never a crash") {
        for (std::size_t cut = 0; cut < bytes.size(); cut += 61) {
            INFO("first " << cut << " bytes");
            auto r = ElfFile::from_bytes(prefix(cut), "cut.o");
            CHECK_FALSE(r.ok());
        }
        CHECK_FALSE(ElfFile::from_bytes(prefix(bytes.size() - 1), "cut.o").ok());
        CHECK(ElfFile::from_bytes(bytes, "whole.o").ok());
    }
    SECTION("random corruption: any outcome but a crash or an exception") {
        std::mt19937 rng(1);
        int opened = 0, programs = 0, loaded = 0;
        for (int i = 0; i < 300; ++i) {
            auto copy = bytes;
            for (int k = 0; k < 8; ++k) copy[rng() % copy.size()] = static_cast<uint8_t>(rng());
            CHECK_NOTHROW(opened += open_everything(ElfFile::from_bytes(copy, "flip.o"), programs, loaded));
        }
        INFO(opened << " of 300 corrupted copies opened; " << loaded << " of " << programs << " programs loaded");
        CHECK(opened > 0);
    }
}

TEST_CASE("every sample object opens or fails with a clean Error", "[harness][elf][corpus]") {
    const fs::path dir = BPFSIM_SHARED_DIR "/corpus/ebpf-samples";
    if (!fs::is_directory(dir)) {
        WARN("no sample corpus at " << dir << "; skipped");
        return;
    }
    int files = 0, opened = 0, rejected = 0, rejected_invalid = 0, programs = 0, loaded = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().extension() == ".md") continue;   // the collection's READMEs
        ++files;
        const std::string path = e.path().string();
        const bool known_invalid = path.find("/invalid/") != std::string::npos;
        INFO(path);
        bool ok = false;
        CHECK_NOTHROW([&] {
            auto r = ElfFile::open(e.path());
            if (!r) {
                CHECK(r.error().where().file == path);
                CHECK((r.error().code() == ErrorCode::InvalidElf || r.error().code() == ErrorCode::Io));
            }
            ok = open_everything(r, programs, loaded);
        }());
        if (ok) {
            ++opened;
        } else {
            ++rejected;
            rejected_invalid += known_invalid;
            // Objects outside invalid/ are real ones from compilers: they must open.
            CHECK(known_invalid);
        }
    }
    WARN("ebpf-samples: " << files << " files, " << opened << " opened, " << rejected << " rejected (" << rejected_invalid
                          << " of them under invalid/); " << loaded << " of " << programs
                          << " programs loaded without relocations");
    CHECK(opened + rejected == files);
    CHECK(files >= 170);
    CHECK(opened > 150);
}
