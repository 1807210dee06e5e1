// The interpreter, specified as the Linux kernel (RFC 9669) defines BPF: arithmetic corner
// cases, checked memory, the instruction budget, bpf2bpf calls, atomics, helpers and the
// legacy packet loads. Every program runs under both dispatchers, which must agree exactly.
#include "vm/vm.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

using Args = std::array<uint64_t, 5>;
constexpr uint64_t kBudget = 1'000'000;
// Run options with a budget and a dispatcher (no coverage).
RunOptions opts(uint64_t budget, Dispatch d) {
    RunOptions o;
    o.budget = budget;
    o.dispatch = d;
    return o;
}

// What running a program produced, or why compile() refused it.
struct Outcome {
    RunResult r;
    std::optional<Error> compile_error;
};

Result<Interpreter> compile_text(std::string_view text, const HelperTable& helpers = conformance_helpers()) {
    auto insns = assemble(text, "t.s");
    if (!insns) FAIL("does not assemble: " << insns.error().describe() << "\n" << text);
    Program p;
    p.name = "t";
    p.insns = *insns;
    return Interpreter::compile(p, helpers);
}

// Assembles, compiles and runs the program with both dispatchers; they must agree on
// r0, the instruction count and the trap.
Outcome run(std::string_view text, Env& env, Args args = {}, uint64_t budget = kBudget,
            const HelperTable& helpers = conformance_helpers()) {
    auto interp = compile_text(text, helpers);
    if (!interp) return {{}, interp.error()};
    const RunResult a = interp->run(env, args, opts(budget, Dispatch::Threaded));
    const RunResult b = interp->run(env, args, opts(budget, Dispatch::Switch));
    INFO("threaded and switch dispatch must agree on:\n" << text);
    CHECK(a.r0 == b.r0);
    CHECK(a.insns == b.insns);
    REQUIRE(a.trap.has_value() == b.trap.has_value());
    if (a.trap) {
        CHECK(a.trap->kind == b.trap->kind);
        CHECK(a.trap->pc == b.trap->pc);
        CHECK(a.trap->size == b.trap->size);
        // Stack addresses differ between the two runs; other messages must match word for word.
        if (a.trap->kind != TrapKind::MemoryFault && a.trap->kind != TrapKind::Misaligned)
            CHECK(a.trap->message == b.trap->message);
    }
    return {a, std::nullopt};
}

// r0 of a program that must run without a trap.
uint64_t r0_of(std::string_view text, Args args = {}) {
    Env env;
    auto o = run(text, env, args);
    if (o.compile_error) FAIL("does not compile: " << o.compile_error->describe());
    if (o.r.trap) FAIL("trapped: " << o.r.trap->message << "\n" << text);
    return o.r.r0;
}

// Instructions a program executes; it must not trap.
uint64_t insns_of(std::string_view text, uint64_t budget = kBudget) {
    Env env;
    auto o = run(text, env, {}, budget);
    if (o.compile_error) FAIL("does not compile: " << o.compile_error->describe());
    if (o.r.trap) FAIL("trapped: " << o.r.trap->message);
    return o.r.insns;
}

// The trap a program must stop with.
Trap trap_of(std::string_view text, Env& env, Args args = {}, uint64_t budget = kBudget,
             const HelperTable& helpers = conformance_helpers()) {
    auto o = run(text, env, args, budget, helpers);
    if (o.compile_error) FAIL("does not compile: " << o.compile_error->describe());
    if (!o.r.trap) FAIL("expected a trap, but the program returned " << o.r.r0 << "\n" << text);
    return *o.r.trap;
}

Trap trap_of(std::string_view text) {
    Env env;
    return trap_of(text, env);
}

// Whether the conditional jump `cond` (without its target) is taken after `setup`.
bool taken(const std::string& setup, const std::string& cond) {
    return r0_of(setup + "\nmov %r0, 0\n" + cond + ", +1\nexit\nmov %r0, 1\nexit") == 1;
}

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

// Runs body in a child process, so that a crash of the code under test fails one test
// instead of killing the run. Returns body's result (0..255; 98 if it threw), or -signal if
// the child died.
int in_child(const std::function<int()>& body) {
    std::cout.flush();
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) FAIL("fork failed");
    if (pid == 0) {
        // The test framework's crash handlers would report in the child too: die quietly.
        for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP}) std::signal(sig, SIG_DFL);
        int rc = 0;
        try {
            rc = body();
        } catch (...) {
            rc = 98;
        }
        _exit(rc);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return WEXITSTATUS(status);
}
// A child's exit status for a run: kNoTrap, or 100 + the TrapKind.
constexpr int kNoTrap = 99;

HelperTable test_helpers();               // the helpers' section below
std::string call_chain(int calls);        // the bpf2bpf section below
int status_of(const RunResult& r) { return r.trap ? 100 + static_cast<int>(r.trap->kind) : kNoTrap; }

}  // namespace

// ─────────────────────────────── arithmetic ───────────────────────────────

TEST_CASE("division by zero gives 0; modulo by zero leaves the destination", "[interp]") {
    SECTION("64-bit, register and immediate divisors") {
        CHECK(r0_of("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit") == 0);
        CHECK(r0_of("mov %r0, 7\ndiv %r0, 0\nexit") == 0);
        CHECK(r0_of("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit") == 7);
        CHECK(r0_of("mov %r0, 7\nmod %r0, 0\nexit") == 7);
        CHECK(r0_of("lddw %r0, 0x1122334455667788\nmod %r0, 0\nexit") == 0x1122334455667788);
    }
    SECTION("32-bit: the quotient is 0, the kept remainder has its upper half cleared") {
        CHECK(r0_of("lddw %r0, 0x100000007\nmov32 %r1, 0\ndiv32 %r0, %r1\nexit") == 0);
        CHECK(r0_of("lddw %r0, 0x100000007\ndiv32 %r0, 0\nexit") == 0);
        CHECK(r0_of("lddw %r0, 0x1ffffffff\nmov %r1, 0\nmod32 %r0, %r1\nexit") == 0xffffffff);
        CHECK(r0_of("lddw %r0, 0x100000007\nmod32 %r0, 0\nexit") == 7);
        // only the low half of the divisor counts: 0x1_0000_0000 is zero as a 32-bit divisor
        CHECK(r0_of("mov %r0, 9\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit") == 0);
        CHECK(r0_of("mov %r0, 9\nlddw %r1, 0x100000000\nmod32 %r0, %r1\nexit") == 9);
    }
    SECTION("signed division by zero behaves the same") {
        CHECK(r0_of("mov %r0, -5\nsdiv %r0, 0\nexit") == 0);
        CHECK(r0_of("mov %r0, -5\nmov %r1, 0\nsmod %r0, %r1\nexit") == static_cast<uint64_t>(-5));
        CHECK(r0_of("mov %r0, -5\nsdiv32 %r0, 0\nexit") == 0);
        CHECK(r0_of("mov %r0, -5\nmov %r1, 0\nsmod32 %r0, %r1\nexit") == 0xfffffffb);
    }
}

TEST_CASE("signed division: INT_MIN / -1 wraps, INT_MIN % -1 is 0, results truncate toward zero", "[interp]") {
    SECTION("64-bit") {
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit") == 0x8000000000000000);
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit") == 0x8000000000000000);
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit") == 0);
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit") == 0);
        CHECK(r0_of("mov %r0, -13\nsdiv %r0, 3\nexit") == static_cast<uint64_t>(-4));
        CHECK(r0_of("mov %r0, -13\nsmod %r0, 3\nexit") == static_cast<uint64_t>(-1));
        CHECK(r0_of("mov %r0, 13\nsdiv %r0, -3\nexit") == static_cast<uint64_t>(-4));
        CHECK(r0_of("mov %r0, 13\nsmod %r0, -3\nexit") == 1);   // the remainder takes the dividend's sign
        CHECK(r0_of("mov %r0, -13\nmov %r1, -3\nsdiv %r0, %r1\nexit") == 4);
    }
    SECTION("32-bit: on the low halves, zero-extended") {
        CHECK(r0_of("mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit") == 0x80000000);
        CHECK(r0_of("mov32 %r0, 0x80000000\nmov %r1, -1\nsdiv32 %r0, %r1\nexit") == 0x80000000);
        CHECK(r0_of("mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit") == 0);
        CHECK(r0_of("mov32 %r0, -13\nsdiv32 %r0, 3\nexit") == 0xfffffffc);
        CHECK(r0_of("mov32 %r0, -13\nsmod32 %r0, 3\nexit") == 0xffffffff);
        // the upper half of the dividend is ignored: 0x1_ffff_fff3 is -13 as a 32-bit value
        CHECK(r0_of("lddw %r0, 0x1fffffff3\nsdiv32 %r0, 3\nexit") == 0xfffffffc);
    }
    SECTION("unsigned division sign-extends a 64-bit immediate") {
        CHECK(r0_of("mov %r0, 5\ndiv %r0, -1\nexit") == 0);   // 5 / 0xffff_ffff_ffff_ffff
        CHECK(r0_of("mov %r0, 5\nmod %r0, -1\nexit") == 5);
        CHECK(r0_of("mov %r0, -1\ndiv %r0, -1\nexit") == 1);
        CHECK(r0_of("mov32 %r0, -1\ndiv32 %r0, -1\nexit") == 1);   // 0xffff_ffff / 0xffff_ffff
    }
}

TEST_CASE("shift amounts are masked; arsh keeps the sign; rsh does not", "[interp]") {
    CHECK(r0_of("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit") == 2);     // 65 & 63 == 1
    CHECK(r0_of("mov %r0, 1\nmov %r1, 64\nlsh %r0, %r1\nexit") == 1);     // 64 & 63 == 0
    CHECK(r0_of("mov %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit") == 2);   // 33 & 31 == 1
    CHECK(r0_of("mov %r0, 4\nmov %r1, 65\nrsh %r0, %r1\nexit") == 2);
    CHECK(r0_of("mov %r0, 4\nmov %r1, 33\nrsh32 %r0, %r1\nexit") == 2);
    CHECK(r0_of("mov %r0, -16\nmov %r1, 66\narsh %r0, %r1\nexit") == static_cast<uint64_t>(-4));
    CHECK(r0_of("mov %r0, 1\nlsh %r0, 63\nexit") == 0x8000000000000000);
    CHECK(r0_of("mov %r0, -16\narsh %r0, 2\nexit") == static_cast<uint64_t>(-4));
    CHECK(r0_of("mov %r0, -16\nrsh %r0, 60\nexit") == 0xf);
    CHECK(r0_of("mov32 %r0, -16\narsh32 %r0, 2\nexit") == 0xfffffffc);
    CHECK(r0_of("mov32 %r0, 0x80000000\narsh32 %r0, 31\nexit") == 0xffffffff);
    // arsh32 looks at bit 31, not bit 63
    CHECK(r0_of("lddw %r0, 0x8000000040000000\narsh32 %r0, 4\nexit") == 0x04000000);
    CHECK(r0_of("lddw %r0, 0x0000000080000000\narsh32 %r0, 4\nexit") == 0xf8000000);
    CHECK(r0_of("lddw %r0, 0xff00000000000010\nrsh32 %r0, 4\nexit") == 1);
}

TEST_CASE("32-bit ALU results are zero-extended into the 64-bit register", "[interp]") {
    const std::string hi = "lddw %r0, 0xffffffff00000001\nlddw %r1, 0xffffffff00000003\n";
    CHECK(r0_of(hi + "add32 %r0, 1\nexit") == 2);
    CHECK(r0_of(hi + "add32 %r0, %r1\nexit") == 4);
    CHECK(r0_of(hi + "sub32 %r0, 2\nexit") == 0xffffffff);
    CHECK(r0_of(hi + "mul32 %r0, %r1\nexit") == 3);
    CHECK(r0_of(hi + "or32 %r0, 2\nexit") == 3);
    CHECK(r0_of(hi + "and32 %r0, -1\nexit") == 1);
    CHECK(r0_of(hi + "xor32 %r0, %r1\nexit") == 2);
    CHECK(r0_of(hi + "lsh32 %r0, 4\nexit") == 0x10);
    CHECK(r0_of(hi + "mov32 %r0, %r0\nexit") == 1);
    CHECK(r0_of(hi + "mov32 %r0, -1\nexit") == 0xffffffff);   // mov32 does not sign-extend
    CHECK(r0_of(hi + "neg32 %r0\nexit") == 0xffffffff);
    CHECK(r0_of("mov %r0, -1\nexit") == 0xffffffffffffffff);   // mov (64) does
    SECTION("neg of INT_MIN is INT_MIN") {
        CHECK(r0_of("mov32 %r0, 0x80000000\nneg32 %r0\nexit") == 0x80000000);
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nneg %r0\nexit") == 0x8000000000000000);
        CHECK(r0_of("mov %r0, 5\nneg %r0\nexit") == static_cast<uint64_t>(-5));
    }
    SECTION("64-bit arithmetic wraps") {
        CHECK(r0_of("mov %r0, -1\nadd %r0, 1\nexit") == 0);
        CHECK(r0_of("lddw %r0, 0x8000000000000000\nmul %r0, 2\nexit") == 0);
    }
}

TEST_CASE("movsx sign-extends the low 8, 16 or 32 bits of the source", "[interp]") {
    CHECK(r0_of("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit") == 0xffffffffffffff80);
    CHECK(r0_of("mov %r1, 0x7f\nmovsx864 %r0, %r1\nexit") == 0x7f);
    CHECK(r0_of("mov %r1, 0x8000\nmovsx1664 %r0, %r1\nexit") == 0xffffffffffff8000);
    CHECK(r0_of("mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit") == 0xffffffff80000000);
    CHECK(r0_of("mov %r1, 0x80\nmovsx832 %r0, %r1\nexit") == 0xffffff80);   // 32-bit: zero-extended after
    CHECK(r0_of("mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit") == 0xffff8000);
    CHECK(r0_of("lddw %r1, 0xffffffffffff017f\nmovsx864 %r0, %r1\nexit") == 0x7f);   // only the low byte counts
}

TEST_CASE("byte swaps: be converts on a little-endian host, le truncates, bswap always swaps", "[interp]") {
    const std::string v = "lddw %r0, 0x1122334455667788\n";
    CHECK(r0_of(v + "be16 %r0\nexit") == 0x8877);
    CHECK(r0_of(v + "be32 %r0\nexit") == 0x88776655);
    CHECK(r0_of(v + "be64 %r0\nexit") == 0x8877665544332211);
    CHECK(r0_of(v + "le16 %r0\nexit") == 0x7788);
    CHECK(r0_of(v + "le32 %r0\nexit") == 0x55667788);
    CHECK(r0_of(v + "le64 %r0\nexit") == 0x1122334455667788);
    CHECK(r0_of(v + "bswap16 %r0\nexit") == 0x8877);
    CHECK(r0_of(v + "bswap32 %r0\nexit") == 0x88776655);
    CHECK(r0_of(v + "bswap64 %r0\nexit") == 0x8877665544332211);
}

// ───────────────────────────────── jumps ──────────────────────────────────

TEST_CASE("jmp32 compares only the low halves", "[interp]") {
    const std::string r1 = "lddw %r1, 0x100000005";
    CHECK(taken(r1, "jeq32 %r1, 5"));
    CHECK_FALSE(taken(r1, "jeq %r1, 5"));
    CHECK_FALSE(taken(r1, "jne32 %r1, 5"));
    CHECK(taken(r1, "jne %r1, 5"));
    CHECK_FALSE(taken(r1, "jgt32 %r1, 5"));
    CHECK(taken(r1, "jgt %r1, 5"));
    CHECK(taken(r1 + "\nmov %r2, 5", "jeq32 %r1, %r2"));
    CHECK(taken(r1 + "\nlddw %r2, 0xffffffff00000006", "jlt32 %r1, %r2"));
    // signed 32-bit: bit 31 is the sign, whatever the upper half holds
    CHECK(taken("lddw %r1, 0x00000000ffffffff", "jslt32 %r1, 0"));
    CHECK_FALSE(taken("lddw %r1, 0x00000000ffffffff", "jslt %r1, 0"));
    CHECK(taken("lddw %r1, 0xffffffff00000001", "jsgt32 %r1, 0"));
    CHECK_FALSE(taken("lddw %r1, 0xffffffff00000001", "jsgt %r1, 0"));
}

TEST_CASE("immediates are sign-extended; signed and unsigned compares differ", "[interp]") {
    CHECK(taken("mov %r1, -1", "jeq %r1, -1"));         // -1 is 0xffff_ffff_ffff_ffff on both sides
    CHECK(taken("mov32 %r1, -1", "jeq32 %r1, -1"));
    CHECK_FALSE(taken("mov32 %r1, -1", "jeq %r1, -1")); // 0x0000_0000_ffff_ffff
    CHECK(taken("mov %r1, -1", "jgt %r1, -2"));         // 0xff..ff > 0xff..fe
    CHECK(taken("mov %r1, -1", "jsgt %r1, -2"));        // -1 > -2
    CHECK_FALSE(taken("mov %r1, 1", "jgt %r1, -1"));    // 1 < 0xff..ff unsigned
    CHECK(taken("mov %r1, 1", "jsgt %r1, -1"));         // 1 > -1 signed
    CHECK(taken("mov %r1, 1", "jlt %r1, -1"));
    CHECK_FALSE(taken("mov %r1, 1", "jslt %r1, -1"));
    CHECK(taken("mov %r1, -5", "jsle %r1, -5"));
    CHECK(taken("mov %r1, -5", "jsge %r1, -5"));
    CHECK_FALSE(taken("mov %r1, -5", "jsge %r1, -4"));
    CHECK(taken("mov %r1, 7", "jge %r1, 7"));
    CHECK(taken("mov %r1, 7", "jle %r1, 7"));
    CHECK(taken("mov %r1, -1\nmov %r2, 1", "jsle %r1, %r2"));
    CHECK_FALSE(taken("mov %r1, -1\nmov %r2, 1", "jle %r1, %r2"));
}

TEST_CASE("jset tests for common bits", "[interp]") {
    CHECK(taken("mov %r1, 6", "jset %r1, 2"));
    CHECK_FALSE(taken("mov %r1, 6", "jset %r1, 1"));
    CHECK(taken("mov %r1, 6\nmov %r2, 4", "jset %r1, %r2"));
    CHECK(taken("lddw %r1, 0x100000000", "jset %r1, -1"));
    CHECK_FALSE(taken("lddw %r1, 0x100000000", "jset32 %r1, -1"));   // the set bit is in the upper half
    CHECK(taken("mov %r1, 0x10", "jset32 %r1, 0x30"));
}

TEST_CASE("unconditional jumps: ja by offset, ja32 by immediate", "[interp]") {
    CHECK(r0_of("mov %r0, 1\nja +1\nmov %r0, 2\nexit") == 1);
    CHECK(r0_of("mov %r0, 1\nja32 +1\nmov %r0, 2\nexit") == 1);
    CHECK(r0_of("mov %r0, 0\nja l\nl2:\nmov %r0, 3\nexit\nl:\nja l2") == 3);
}

TEST_CASE("may_goto falls through while the loop allowance lasts, then jumps", "[interp]") {
    CHECK(r0_of("mov %r0, 0\nmay_goto +1\nmov %r0, 1\nexit") == 1);
    // A loop held only by may_goto ends after kMayGotoLoops turns: each turn is may_goto + ja,
    // then one taken may_goto and the exit.
    Env env;
    auto o = run("mov %r0, 0\nl:\nmay_goto +2\nadd %r0, 1\nja l\nexit", env, {}, 0);
    REQUIRE_FALSE(o.r.trap);
    CHECK(o.r.r0 == static_cast<uint64_t>(kMayGotoLoops));
    CHECK(o.r.insns == 1 + 3 * static_cast<uint64_t>(kMayGotoLoops) + 2);
}

// ───────────────────────────────── memory ─────────────────────────────────

TEST_CASE("loads and stores inside an input region succeed", "[interp]") {
    std::vector<uint8_t> buf = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    Env env;
    env.mem.add(buf.data(), buf.size(), kReadWrite, RegionKind::Input, "input");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());
    SECTION("loads of every size, zero- and sign-extended") {
        CHECK(run("ldxdw %r0, [%r1]\nexit", env, {p}).r.r0 == 0x8877665544332211);
        CHECK(run("ldxw %r0, [%r1+4]\nexit", env, {p}).r.r0 == 0x88776655);   // the last 4 bytes, exactly
        CHECK(run("ldxh %r0, [%r1+6]\nexit", env, {p}).r.r0 == 0x8877);
        CHECK(run("ldxb %r0, [%r1+7]\nexit", env, {p}).r.r0 == 0x88);
        CHECK(run("ldxsb %r0, [%r1+7]\nexit", env, {p}).r.r0 == 0xffffffffffffff88);
        CHECK(run("ldxsh %r0, [%r1+6]\nexit", env, {p}).r.r0 == 0xffffffffffff8877);
        CHECK(run("ldxsw %r0, [%r1+4]\nexit", env, {p}).r.r0 == 0xffffffff88776655);
        CHECK(run("ldxsw %r0, [%r1]\nexit", env, {p}).r.r0 == 0x44332211);
        CHECK(run("add %r1, 8\nldxb %r0, [%r1-8]\nexit", env, {p}).r.r0 == 0x11);   // negative offsets
    }
    SECTION("stores write exactly their size") {
        auto o = run("stb [%r1+1], 0xaa\nsth [%r1+2], 0xbbcc\nmov %r2, 0xdd\nstxb [%r1+7], %r2\nexit", env, {p});
        REQUIRE_FALSE(o.r.trap);
        CHECK(buf == std::vector<uint8_t>{0x11, 0xaa, 0xcc, 0xbb, 0x55, 0x66, 0x77, 0xdd});
        o = run("stdw [%r1], -2\nexit", env, {p});   // the immediate is sign-extended to 64 bits
        REQUIRE_FALSE(o.r.trap);
        CHECK(buf == std::vector<uint8_t>{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
        o = run("lddw %r2, 0x0102030405060708\nstxw [%r1+4], %r2\nexit", env, {p});
        REQUIRE_FALSE(o.r.trap);
        CHECK(buf == std::vector<uint8_t>{0xfe, 0xff, 0xff, 0xff, 0x08, 0x07, 0x06, 0x05});
    }
}

TEST_CASE("an access past the end of a region traps with the pc, address and region", "[interp]") {
    std::vector<uint8_t> buf(8, 0x11);
    Env env;
    env.mem.add(buf.data(), buf.size(), kReadWrite, RegionKind::Input, "input");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());

    SECTION("a load that runs one byte past the end") {
        const Trap t = trap_of("mov %r0, 0\nldxw %r0, [%r1+5]\nexit", env, {p});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 1);
        CHECK(t.addr == p + 5);
        CHECK(t.size == 4);
        CHECK_THAT(t.message, Catch::StartsWith("pc 1: invalid memory access: read of 4 bytes at " + hex(p + 5)) &&
                                  Catch::Contains("runs 1 bytes past the end of region 'input'"));
    }
    SECTION("a load that starts one byte past the end") {
        const Trap t = trap_of("mov %r0, 0\nmov %r0, 1\nldxb %r0, [%r1+8]\nexit", env, {p});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 2);
        CHECK(t.addr == p + 8);
        CHECK(t.size == 1);
        CHECK_THAT(t.message, Catch::StartsWith("pc 2: invalid memory access") &&
                                  Catch::Contains("nearest is 'input'"));
    }
    SECTION("a load one byte before the start") {
        const Trap t = trap_of("ldxb %r0, [%r1-1]\nexit", env, {p});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.addr == p - 1);
        CHECK_THAT(t.message, Catch::Contains("nearest is 'input'") && Catch::Contains("1 bytes above"));
    }
    SECTION("a store past the end") {
        const Trap t = trap_of("stdw [%r1+1], 0\nexit", env, {p});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 0);
        CHECK(t.size == 8);
        CHECK_THAT(t.message, Catch::Contains("write of 8 bytes") && Catch::Contains("region 'input'"));
        CHECK(buf == std::vector<uint8_t>(8, 0x11));   // nothing was written
    }
    SECTION("a null pointer") {
        const Trap t = trap_of("ldxb %r0, [%r1]\nexit", env, {0});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.addr == 0);
        CHECK_THAT(t.message, Catch::Contains("is outside every region; nearest is"));
    }
    SECTION("an access that straddles two adjacent regions") {
        std::vector<uint8_t> two(16);
        Env e2;
        e2.mem.add(two.data(), 8, kReadWrite, RegionKind::Input, "low");
        e2.mem.add(two.data() + 8, 8, kReadWrite, RegionKind::Input, "high");
        const uint64_t q = reinterpret_cast<uint64_t>(two.data());
        CHECK(run("ldxdw %r0, [%r1]\nldxdw %r0, [%r1+8]\nexit", e2, {q}).r.ok());
        const Trap t = trap_of("ldxw %r0, [%r1+6]\nexit", e2, {q});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK_THAT(t.message, Catch::Contains("region 'low'"));
    }
}

TEST_CASE("a read-only region can be read but not written", "[interp]") {
    std::vector<uint8_t> buf(8, 0x22);
    Env env;
    env.mem.add(buf.data(), buf.size(), kRead, RegionKind::Global, ".rodata");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());
    CHECK(run("ldxb %r0, [%r1+7]\nexit", env, {p}).r.r0 == 0x22);
    for (const char* store : {"stb [%r1], 1", "stxdw [%r1], %r1", "lock add [%r1], %r1"}) {
        INFO(store);
        const Trap t = trap_of(std::string("mov %r0, 0\n") + store + "\nexit", env, {p});
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 1);
        CHECK(t.addr == p);
        CHECK_THAT(t.message, Catch::StartsWith("pc 1: ") && Catch::Contains("region '.rodata'") &&
                                  Catch::Contains("read-only"));
    }
    CHECK(buf == std::vector<uint8_t>(8, 0x22));
}

TEST_CASE("the stack: 512 zeroed bytes below r10, nothing else", "[interp]") {
    CHECK(r0_of("stdw [%r10-8], 42\nldxdw %r0, [%r10-8]\nexit") == 42);
    CHECK(r0_of("stb [%r10-512], 9\nldxb %r0, [%r10-512]\nexit") == 9);   // the lowest byte

    SECTION("below r10-512 traps") {
        const Trap t = trap_of("mov %r0, 0\nldxb %r0, [%r10-513]\nexit");
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 1);
        CHECK(t.size == 1);
        CHECK_THAT(t.message, Catch::Contains("nearest is 'stack'"));
        CHECK(trap_of("ldxdw %r0, [%r10-516]\nexit").kind == TrapKind::MemoryFault);   // straddles the bottom
    }
    SECTION("r10 itself is above the stack: writing r10+0 traps") {
        const Trap t = trap_of("stxb [%r10], %r1\nexit");
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 0);
        CHECK_THAT(t.message, Catch::Contains("write of 1 bytes") && Catch::Contains("'stack'"));
        const Trap t2 = trap_of("ldxdw %r0, [%r10-4]\nexit");   // straddles the top
        CHECK(t2.kind == TrapKind::MemoryFault);
        CHECK_THAT(t2.message, Catch::Contains("runs 4 bytes past the end of region 'stack'"));
    }
    SECTION("the stack is zero at the start of every run, even after a run that dirtied it") {
        const char* fill = "lddw %r2, 0xffffffffffffffff\nmov %r1, %r10\nsub %r1, 512\nl:\nstxdw [%r1], %r2\n"
                           "add %r1, 8\njne %r1, %r10, l\nmov %r0, 0\nexit";
        const char* sum = "mov %r0, 0\nmov %r1, %r10\nsub %r1, 512\nl:\nldxdw %r2, [%r1]\nor %r0, %r2\n"
                          "add %r1, 8\njne %r1, %r10, l\nexit";
        Env env;
        auto dirty = compile_text(fill);
        auto check = compile_text(sum);
        REQUIRE(dirty.ok());
        REQUIRE(check.ok());
        for (auto d : {Dispatch::Threaded, Dispatch::Switch}) {
            REQUIRE(dirty->run(env, {}, opts(kBudget, d)).ok());
            const RunResult r = check->run(env, {}, opts(kBudget, d));
            REQUIRE(r.ok());
            CHECK(r.r0 == 0);
        }
    }
    SECTION("the stack is not mapped outside a run") {
        Env env;
        REQUIRE(run("stdw [%r10-8], 1\nexit", env).r.ok());
        CHECK(env.mem.stack_hi() - env.mem.stack_lo() == 0);
        CHECK_FALSE(env.mem.find(env.mem.stack_lo()).has_value());
    }
}

TEST_CASE("MemoryMap: adding, overlap, bounds, lookup and explanations", "[interp]") {
    std::vector<uint8_t> mem(64);
    const uint64_t base = reinterpret_cast<uint64_t>(mem.data());
    MemoryMap m;
    m.add(mem.data(), 16, kReadWrite, RegionKind::Input, "a");       // [0, 16)
    m.add(mem.data() + 16, 16, kRead, RegionKind::Global, "b");      // [16, 32), adjacent: allowed
    m.add(mem.data() + 40, 8, kReadWrite, RegionKind::MapValue, "c");   // [40, 48)
    REQUIRE(m.regions().size() == 3);

    SECTION("overlapping and empty regions are rejected with an Error") {
        CHECK_THROWS_AS(m.add(mem.data() + 8, 16, kRead, RegionKind::Other, "ab"), Error);        // across a/b
        CHECK_THROWS_AS(m.add(mem.data() + 4, 4, kRead, RegionKind::Other, "inside"), Error);     // inside a
        CHECK_THROWS_AS(m.add(mem.data() + 32, 32, kRead, RegionKind::Other, "around"), Error);   // around c
        CHECK_THROWS_AS(m.add(mem.data() + 36, 8, kRead, RegionKind::Other, "tail"), Error);      // into c
        CHECK_THROWS_AS(m.add(mem.data() + 47, 1, kRead, RegionKind::Other, "last"), Error);      // c's last byte
        CHECK_THROWS_WITH(m.add(mem.data() + 8, 16, kRead, RegionKind::Other, "ab"), Catch::StartsWith("memory region 'ab' overlaps"));
        CHECK_THROWS_AS(m.add(mem.data() + 56, 0, kRead, RegionKind::Other, "empty"), Error);
        CHECK_THROWS_AS(m.add(Region{UINT64_MAX - 3, 8, kRead, RegionKind::Other, "wraps"}), Error);
        CHECK(m.regions().size() == 3);   // nothing was added
        m.add(mem.data() + 32, 8, kRead, RegionKind::Other, "gap");   // exactly fills [32, 40)
        CHECK(m.regions().size() == 4);
    }
    SECTION("allows(): the whole access inside one region with the permission") {
        CHECK(m.allows(base, 16, kRead));           // exact fit
        CHECK(m.allows(base, 16, kReadWrite));
        CHECK(m.allows(base + 15, 1, kWrite));      // last byte
        CHECK_FALSE(m.allows(base + 1, 16, kRead)); // one past the end
        CHECK_FALSE(m.allows(base, 17, kRead));
        CHECK_FALSE(m.allows(base - 1, 1, kRead));  // one before the start
        CHECK_FALSE(m.allows(base + 15, 2, kRead)); // straddles a and b
        CHECK(m.allows(base + 16, 16, kRead));
        CHECK_FALSE(m.allows(base + 16, 1, kWrite));   // b is read-only
        CHECK_FALSE(m.allows(base + 16, 1, kReadWrite));
        CHECK_FALSE(m.allows(base + 32, 1, kRead));    // the gap
        CHECK(m.allows(base + 40, 8, kWrite));
        CHECK_FALSE(m.allows(base + 48, 1, kRead));
        CHECK_FALSE(m.allows(UINT64_MAX, 2, kRead));   // wraps around
    }
    SECTION("find() returns the region containing an address") {
        REQUIRE(m.find(base).has_value());
        CHECK(m.find(base)->name == "a");
        CHECK(m.find(base + 15)->name == "a");
        CHECK(m.find(base + 16)->name == "b");
        CHECK(m.find(base + 16)->perm == kRead);
        CHECK(m.find(base + 16)->kind == RegionKind::Global);
        CHECK_FALSE(m.find(base + 32).has_value());
        CHECK(m.find(base + 47)->name == "c");
        CHECK_FALSE(m.find(base + 48).has_value());
        CHECK_FALSE(m.find(base - 1).has_value());
    }
    SECTION("explain() says why an access fails and names the nearest region") {
        CHECK_THAT(m.explain(base + 14, 4, kRead),
                   Catch::StartsWith("read of 4 bytes at " + hex(base + 14)) &&
                       Catch::Contains("runs 2 bytes past the end of region 'a'"));
        CHECK_THAT(m.explain(base + 20, 1, kWrite), Catch::Contains("region 'b'") && Catch::Contains("is read-only"));
        CHECK_THAT(m.explain(base + 52, 4, kRead), Catch::Contains("outside every region; nearest is 'c'") &&
                                                       Catch::Contains("4 bytes below"));
        CHECK_THAT(m.explain(base - 3, 1, kRead), Catch::Contains("nearest is 'a'") && Catch::Contains("3 bytes above"));
        CHECK_THAT(m.explain(base + 38, 1, kRead), Catch::Contains("nearest is 'c'"));   // 2 below c, 6 above b
        MemoryMap empty;
        CHECK_THAT(empty.explain(0x1000, 8, kRead), Catch::Contains("no memory is mapped"));
    }
    SECTION("remove() forgets a region, also one allows() just matched") {
        CHECK(m.allows(base + 40, 8, kRead));
        CHECK(m.remove(base + 40));
        CHECK_FALSE(m.allows(base + 40, 8, kRead));
        CHECK_FALSE(m.find(base + 40).has_value());
        CHECK_FALSE(m.remove(base + 40));
        CHECK_FALSE(m.remove(base + 1));   // not a region start
        m.clear();
        CHECK(m.regions().empty());
        CHECK_FALSE(m.allows(base, 1, kRead));
    }
    SECTION("the stack window shows as a region") {
        std::vector<uint8_t> stack(32);
        const uint64_t lo = reinterpret_cast<uint64_t>(stack.data());
        m.set_stack(lo, lo + 32);
        CHECK(m.stack_lo() == lo);
        CHECK(m.stack_hi() == lo + 32);
        CHECK(m.allows(lo, 32, kReadWrite));
        CHECK_FALSE(m.allows(lo + 1, 32, kRead));
        REQUIRE(m.find(lo + 5).has_value());
        CHECK(m.find(lo + 5)->kind == RegionKind::Stack);
        CHECK(m.find(lo + 5)->name == "stack");
        CHECK_THAT(m.explain(lo + 30, 4, kRead), Catch::Contains("past the end of region 'stack'"));
    }
}

// ───────────────────────────────── budget ─────────────────────────────────

TEST_CASE("the budget counts executed instructions exactly", "[interp]") {
    CHECK(insns_of("mov %r0, 1\nadd %r0, 2\nexit") == 3);
    CHECK(insns_of("exit") == 1);
    // mov + 10 x (add, jne) + exit
    CHECK(insns_of("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 10, l\nexit") == 22);
    // mov, 10 x (mov/add, jge, add, ja), the last jge taken, exit
    CHECK(insns_of("mov %r0, 0\nl:\njge %r0, 10, out\nadd %r0, 1\nja l\nout:\nexit") == 1 + 10 * 3 + 1 + 1);
    // forward jumps skip what they jump over
    CHECK(insns_of("mov %r0, 0\nja +2\nmov %r0, 1\nmov %r0, 2\nexit") == 3);
    CHECK(insns_of("mov %r0, 0\njeq %r0, 0, +2\nmov %r0, 1\nmov %r0, 2\nexit") == 3);
    CHECK(insns_of("mov %r0, 1\njeq %r0, 0, +2\nmov %r0, 1\nmov %r0, 2\nexit") == 5);
    // a jump into the middle of a straight run
    CHECK(insns_of("mov %r0, 0\nja l\nmov %r0, 1\nmov %r0, 2\nl:\nmov %r0, 3\nmov %r0, 4\nexit") == 5);
    // a call: mov, call, [mov, exit], exit
    CHECK(insns_of("mov %r0, 0\ncall local f\nexit\nf:\nmov %r0, 3\nexit") == 5);
    // a call from inside a loop: 3 x (call, [add, exit], add, jne) + mov, mov, exit
    CHECK(insns_of("mov %r0, 0\nmov %r6, 0\nl:\ncall local f\nadd %r6, 1\njne %r6, 3, l\nexit\nf:\nadd %r0, 1\nexit") ==
          2 + 3 * 5 + 1);
    // helper calls count as one instruction
    CHECK(insns_of("mov %r1, 0\ncall 2\ncall 2\nexit") == 4);
    // callx of a helper (id 0, gather_bytes) is one instruction too
    CHECK(insns_of("mov %r0, 0\nmov %r1, 0\ncallx %r1\nexit") == 4);
}

TEST_CASE("the budget stops endless loops; 0 means unlimited", "[interp]") {
    Env env;
    SECTION("ja -1") {
        const Trap t = trap_of("ja -1", env, {}, 1000);
        CHECK(t.kind == TrapKind::Budget);
        CHECK(t.pc == 0);
        CHECK(t.message == "pc 0: instruction budget of 1000 exhausted");
    }
    SECTION("a back edge") {
        const Trap t = trap_of("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit", env, {}, 1000);
        CHECK(t.kind == TrapKind::Budget);
        CHECK(t.pc == 2);
        auto o = run("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit", env, {}, 1000);
        CHECK(o.r.insns > 1000);
        CHECK(o.r.insns <= 1003);
    }
    SECTION("endless recursion through a loop of calls stops too") {
        const Trap t = trap_of("l:\ncall local f\nja l\nf:\nexit", env, {}, 1000);
        CHECK(t.kind == TrapKind::Budget);
    }
    SECTION("a budget exactly the size of the run suffices") {
        CHECK(run("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 10, l\nexit", env, {}, 22).r.ok());
        CHECK(trap_of("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 10, l\nexit", env, {}, 10).kind == TrapKind::Budget);
    }
    SECTION("budget 0: two million instructions") {
        auto o = run("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 1000000, l\nexit", env, {}, 0);
        REQUIRE_FALSE(o.r.trap);
        CHECK(o.r.r0 == 1'000'000);
        CHECK(o.r.insns == 2'000'002);
    }
}

TEST_CASE("the budget is a hard limit: a run that ends normally executed at most `budget` instructions",
          "[interp]") {
    // Regression: the last region before the top-level exit used to go unchecked, and checks
    // on taken jumps lagged by the target's offset in its region.
    Env env;
    SECTION("straight-line code: 4 instructions under a budget of 2") {
        auto o = run("mov %r0, 1\nmov %r0, 2\nmov %r0, 3\nexit", env, {}, 2);
        INFO("r0 " << o.r.r0 << ", " << o.r.insns << " instructions");
        REQUIRE(o.r.trap.has_value());
        CHECK(o.r.trap->kind == TrapKind::Budget);
    }
    SECTION("the same code behind a call does trap") {
        const Trap t = trap_of("call local f\nexit\nf:\nmov %r0, 1\nmov %r0, 2\nmov %r0, 3\nexit", env, {}, 2);
        CHECK(t.kind == TrapKind::Budget);
    }
    SECTION("a loop of 22 instructions under budgets of 18 to 21") {
        for (uint64_t budget = 18; budget <= 21; ++budget) {
            auto o = run("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 10, l\nexit", env, {}, budget);
            INFO("budget " << budget << ": " << o.r.insns << " instructions, "
                           << (o.r.trap ? o.r.trap->message : std::string("no trap")));
            CHECK((o.r.trap ? o.r.trap->kind == TrapKind::Budget : o.r.insns <= budget));
        }
    }
}

TEST_CASE("budget 0 is unlimited, also for a run that starts with a forward jump", "[interp]") {
    // Regression: a forward jump inside a straight-line region has a negative charge; with the
    // unlimited budget at INT64_MAX it overflowed and the run stopped at once with "instruction
    // budget of 9223372036854775807 exhausted" (bench_kernels.o xorshift on an empty input).
    Env env;
    auto o = run("mov %r0, 0\njeq %r0, 0, +2\nmov %r0, 1\nmov %r0, 2\nexit", env, {}, 0);
    INFO((o.r.trap ? o.r.trap->message : std::string("no trap")));
    CHECK(o.r.ok());
    CHECK(o.r.r0 == 0);
    CHECK(o.r.insns == 3);
    auto skip = run("mov %r0, 1\njne %r0, 0, +1\nmov %r0, 2\nexit", env, {}, 0);
    CHECK(skip.r.ok());
    CHECK(skip.r.r0 == 1);
}

TEST_CASE("lddw is one instruction, as in the kernel and RFC 9669", "[interp]") {
    // One wide instruction in two slots (regression: it used to be counted per slot).
    CHECK(insns_of("lddw %r0, 0x1122334455667788\nexit") == 2);
    CHECK(insns_of("lddw %r0, 1\nlddw %r1, 2\nadd %r0, %r1\nexit") == 4);
    CHECK(insns_of("mov %r0, 0\nl:\nlddw %r1, 1\nadd %r0, %r1\njne %r0, 10, l\nexit") == 1 + 10 * 3 + 1);
    CHECK(insns_of("mov %r0, 0\nja l\nlddw %r1, 1\nl:\nlddw %r1, 2\nexit") == 4);   // a jump over an lddw
    Env env;
    CHECK(run("lddw %r0, 1\nlddw %r0, 2\nexit", env, {}, 2).r.trap.has_value());    // 3 instructions
    CHECK(run("lddw %r0, 1\nlddw %r0, 2\nexit", env, {}, 3).r.ok());
}

TEST_CASE("a trap's instruction count includes the trapping instruction", "[interp]") {
    std::vector<uint8_t> buf(8);
    Env env;
    env.mem.add(buf.data(), buf.size(), kRead, RegionKind::Input, "input");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());
    auto count = [&](std::string_view text) {
        auto o = run(text, env, {p});
        REQUIRE(o.r.trap.has_value());
        return o.r.insns;
    };
    CHECK(count("mov %r0, 0\nldxb %r0, [%r1+9]\nexit") == 2);                          // MemoryFault
    CHECK(count("mov %r0, 0\nja +1\nexit\nmov %r0, 0\nldxb %r0, [%r1+9]\nexit") == 4);  // after a jump
    CHECK(count("mov %r0, 0\nstb [%r1], 1\nexit") == 2);                                 // read-only
    CHECK(count("mov %r1, 1\nlock add [%r10-12], %r1\nexit") == 2);                     // Misaligned
    CHECK(count("mov %r0, 0\nldabsb 0\nexit") == 2);                                    // NoPacket
}

TEST_CASE("a trap's instruction count includes the trapping instruction once: calls and helpers", "[interp]") {
    // Regression: these paths charge the budget before they trap, and the trap used to add
    // the region's instructions a second time (in comments: what was reported).
    const HelperTable t = test_helpers();
    Env env;
    auto count = [&](std::string_view text) {
        auto o = run(text, env, {}, kBudget, t);
        REQUIRE(o.r.trap.has_value());
        return o.r.insns;
    };
    CHECK(count("mov %r0, 0\nmov %r2, 12345\ncallx %r2\nexit") == 3);   // BadCall: reports 6
    CHECK(count("mov %r0, 0\ncall 3\nexit") == 2);                      // Helper trap: reports 4
    CHECK(count("mov %r0, 0\nmov %r2, 3\ncallx %r2\nexit") == 3);       // Helper trap via callx: reports 6
    CHECK(count(call_chain(8)) == 8);                                    // CallDepth: the 8th call traps
    CHECK(count("mov %r0, 0\nmov %r0, 0\nf:\ncall local f\nexit") == 10);   // 2 + 8 calls: reports 11
}

TEST_CASE("a trap after a callx counts the instructions since the callx", "[interp]") {
    // Regression: the flag that tells a trap its region is already charged stayed set after a
    // callx returned, so later traps left out their own region (in comments: what was reported).
    const HelperTable t = test_helpers();
    std::vector<uint8_t> buf(8);
    Env env;
    env.mem.add(buf.data(), buf.size(), kRead, RegionKind::Input, "input");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());
    auto count = [&](std::string_view text) {
        auto o = run(text, env, {p}, kBudget, t);
        REQUIRE(o.r.trap.has_value());
        return o.r.insns;
    };
    // mov, callx (record), mov, ldxb: reports 3
    CHECK(count("mov %r6, %r1\nmov %r2, 1\ncallx %r2\nmov %r0, 1\nldxb %r0, [%r6+9]\nexit") == 5);
    // lddw, callx, [mov, ldxb]: reports 2
    CHECK(count("lddw %r2, func(f)\ncallx %r2\nexit\nf:\nmov %r0, 1\nldxb %r0, [%r1+9]\nexit") == 4);
    // mov, callx, mov, ldabsb: reports 2
    CHECK(count("mov %r2, 1\ncallx %r2\nmov %r0, 1\nldabsb 0\nexit") == 4);
    // mov, callx, mov, mov, lock add: reports 2
    CHECK(count("mov %r2, 1\ncallx %r2\nmov %r0, 1\nmov %r1, 1\nlock add [%r10-12], %r1\nexit") == 5);
    // the same without the callx is right
    CHECK(count("mov %r6, %r1\nmov %r2, 1\ncall 1\nmov %r0, 1\nldxb %r0, [%r6+9]\nexit") == 5);
}

namespace {
const Interpreter* tail_target = nullptr;
// Helper 9: tail-calls tail_target with r1 = ctx.
uint64_t tail_call(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_tail_call(*tail_target, ctx);
    return 0;
}
HelperTable with_tail_call() {
    HelperTable t = conformance_helpers();
    t.add({9, "tail_call", {}, tail_call});
    return t;
}
}  // namespace

TEST_CASE("a tail call replaces the running function; the count goes on", "[interp]") {
    auto target = compile_text("mov %r0, %r1\nadd %r0, 1\nexit");
    REQUIRE(target.ok());
    tail_target = &*target;
    Env env;
    auto o = run("mov %r1, 5\ncall 9\nmov %r0, 99\nexit", env, {}, kBudget, with_tail_call());
    REQUIRE(o.r.ok());
    CHECK(o.r.r0 == 6);
    CHECK(o.r.insns == 5);   // mov, call; mov, add, exit
    // from a subprogram: the target takes the subprogram's place and returns to its caller
    auto sub = run("call local f\nadd %r0, 100\nexit\nf:\nmov %r1, 5\ncall 9\nmov %r0, 99\nexit", env, {}, kBudget,
                   with_tail_call());
    REQUIRE(sub.r.ok());
    CHECK(sub.r.r0 == 106);
    CHECK(sub.r.insns == 8);   // call, mov, call; mov, add, exit; add, exit
    tail_target = nullptr;
}

TEST_CASE("a trap after a tail call counts the target's instructions", "[interp][bug][!mayfail]") {
    // vm/interp.cpp, helper_request: CHARGE_HERE() sets `charged = true`, and the TailCall
    // branch continues in the target without clearing it, so a MemoryFault (Misaligned,
    // NoPacket) in the target's first region is left out of RunResult::insns.
    auto target = compile_text("mov %r0, 0\nldxb %r0, [%r1+0]\nexit");
    REQUIRE(target.ok());
    tail_target = &*target;
    Env env;
    auto o = run("mov %r1, 5\ncall 9\nexit", env, {}, kBudget, with_tail_call());
    REQUIRE(o.r.trap.has_value());
    CHECK(o.r.trap->kind == TrapKind::MemoryFault);
    CHECK(o.r.trap->pc == 1);   // in the target
    CHECK(o.r.insns == 4);      // mov, call; mov, ldxb
    tail_target = nullptr;
}

// ──────────────────────────────── bpf2bpf ─────────────────────────────────

TEST_CASE("bpf2bpf calls: arguments, r0, callee-saved r6-r9, frames", "[interp]") {
    SECTION("r6-r9 are preserved across a call that overwrites them") {
        CHECK(r0_of(R"(
mov %r6, 6
mov %r7, 70
mov %r8, 800
mov %r9, 9000
call local f
add %r0, %r6
add %r0, %r7
add %r0, %r8
add %r0, %r9
exit
f:
mov %r6, 1
mov %r7, 1
mov %r8, 1
mov %r9, 1
mov %r0, 10000
exit)") == 19876);
    }
    SECTION("r1-r5 are the arguments, r0 the result") {
        CHECK(r0_of("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall local f\nexit\n"
                    "f:\nmov %r0, %r1\nmul %r0, 10\nadd %r0, %r5\nexit") == 15);
    }
    SECTION("the callee's frame is 512 bytes below the caller's, and fresh") {
        CHECK(r0_of("mov %r1, %r10\ncall local f\nexit\nf:\nmov %r0, %r1\nsub %r0, %r10\nexit") == 512);
        CHECK(r0_of("call local f\nmov %r1, %r10\ncall local f\nsub %r0, %r1\nexit\nf:\nmov %r0, %r10\nexit") ==
              static_cast<uint64_t>(-512));
        // the caller's slot survives; the callee sees zeroes at the same offset
        CHECK(r0_of("stdw [%r10-8], 77\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\n"
                    "f:\nldxdw %r0, [%r10-8]\nstdw [%r10-8], 5\nexit") == 77);
    }
    SECTION("a callee's frame is zeroed on every call") {
        CHECK(r0_of(R"(
call local dirty
call local check
exit
dirty:
lddw %r2, -1
mov %r1, %r10
sub %r1, 512
l:
stxdw [%r1], %r2
add %r1, 8
jne %r1, %r10, l
exit
check:
mov %r0, 0
mov %r1, %r10
sub %r1, 512
m:
ldxdw %r2, [%r1]
or %r0, %r2
add %r1, 8
jne %r1, %r10, m
exit)") == 0);
    }
    SECTION("the caller's stack is reachable through a pointer, the area below the callee's frame is not") {
        CHECK(r0_of("stdw [%r10-8], 77\nmov %r1, %r10\nadd %r1, -8\ncall local f\nexit\nf:\nldxdw %r0, [%r1]\nexit") == 77);
        CHECK(r0_of("mov %r1, %r10\nadd %r1, -8\ncall local f\nldxdw %r0, [%r10-8]\nexit\nf:\nstdw [%r1], 55\nexit") == 55);
        const Trap t = trap_of("call local f\nexit\nf:\nldxb %r0, [%r10-513]\nexit");
        CHECK(t.kind == TrapKind::MemoryFault);
        CHECK(t.pc == 2);
    }
}

namespace {
// main calls f1, f1 calls f2, ..., f`calls` returns `calls`: calls + 1 frames.
std::string call_chain(int calls) {
    std::string s = "call local f1\nexit\n";
    // Appends piece by piece: `"f" + std::to_string(i)` trips GCC 12's -Wrestrict at -O3.
    for (int i = 1; i < calls; ++i) s.append("f").append(std::to_string(i)).append(":\ncall local f").append(std::to_string(i + 1)).append("\nexit\n");
    s.append("f").append(std::to_string(calls)).append(":\nmov %r0, ").append(std::to_string(calls)).append("\nexit\n");
    return s;
}
}  // namespace

TEST_CASE("at most 8 frames: deeper calls trap with CallDepth", "[interp]") {
    CHECK(r0_of(call_chain(7)) == 7);   // main + 7 callees = 8 frames
    Env env;
    const Trap t = trap_of(call_chain(8), env);
    CHECK(t.kind == TrapKind::CallDepth);
    CHECK(t.pc == 14);   // the call in f7, the 8th frame
    CHECK(t.message == "pc 14: call depth limit of 8 frames exceeded");

    const Trap rec = trap_of("f:\ncall local f\nexit");
    CHECK(rec.kind == TrapKind::CallDepth);
    CHECK(rec.pc == 0);
    // after returning, the depth is available again
    CHECK(r0_of("call local a\ncall local a\ncall local a\nexit\na:\ncall local b\nexit\nb:\ncall local c\nexit\n"
                "c:\ncall local d\nexit\nd:\ncall local e\nexit\ne:\ncall local f\nexit\nf:\ncall local g\nexit\n"
                "g:\nadd %r0, 1\nexit") == 3);
}

// ──────────────────────────────── atomics ─────────────────────────────────

namespace {
struct AtomicResult {
    uint64_t mem;   // the 8 bytes at [r10-8] afterwards
    uint64_t src;   // r1 afterwards
};

// [r10-8] = mem, r1 = src, then `lock <op> [%r10-8], %r1`.
AtomicResult atomic(const std::string& op, uint64_t mem, uint64_t src) {
    const std::string setup = "lddw %r2, " + hex(mem) + "\nstxdw [%r10-8], %r2\nlddw %r1, " + hex(src) + "\nlock " +
                              op + " [%r10-8], %r1\n";
    return {r0_of(setup + "ldxdw %r0, [%r10-8]\nexit"), r0_of(setup + "mov %r0, %r1\nexit")};
}
}  // namespace

TEST_CASE("atomic read-modify-write: every op, 64 and 32 bits, with and without fetch", "[interp]") {
    const uint64_t mem = 0xf0f0f0f0'12345678, src = 0xa5a5a5a5'0f0f00ff;
    const uint64_t hi = mem & 0xffffffff'00000000, lo = mem & 0xffffffff, src32 = src & 0xffffffff;
    struct Case {
        const char* name;
        uint64_t (*f)(uint64_t, uint64_t);
    };
    const Case cases[] = {
        {"add", [](uint64_t a, uint64_t b) { return a + b; }},
        {"or", [](uint64_t a, uint64_t b) { return a | b; }},
        {"and", [](uint64_t a, uint64_t b) { return a & b; }},
        {"xor", [](uint64_t a, uint64_t b) { return a ^ b; }},
    };
    for (const auto& c : cases) {
        const std::string op = c.name;
        INFO("lock [fetch] " << op << "[32]");
        // 64 bits: the whole word
        auto r = atomic(op, mem, src);
        CHECK(r.mem == c.f(mem, src));
        CHECK(r.src == src);   // without fetch the source is untouched
        r = atomic("fetch " + op, mem, src);
        CHECK(r.mem == c.f(mem, src));
        CHECK(r.src == mem);   // fetch: the old value
        // 32 bits: only the low word in memory; the fetched old value is zero-extended
        r = atomic(op + "32", mem, src);
        CHECK(r.mem == (hi | (c.f(lo, src32) & 0xffffffff)));
        CHECK(r.src == src);
        r = atomic("fetch " + op + "32", mem, src);
        CHECK(r.mem == (hi | (c.f(lo, src32) & 0xffffffff)));
        CHECK(r.src == lo);
    }
    SECTION("xchg swaps memory and register") {
        auto r = atomic("xchg", mem, src);
        CHECK(r.mem == src);
        CHECK(r.src == mem);
        r = atomic("xchg32", mem, src);
        CHECK(r.mem == (hi | src32));
        CHECK(r.src == lo);
    }
}

TEST_CASE("atomic cmpxchg: r0 gets the old value; memory changes only on a match", "[interp]") {
    const std::string setup = "lddw %r2, 0x1111111122222222\nstxdw [%r10-8], %r2\nlddw %r1, 0x3333333344444444\n";
    SECTION("64-bit, match") {
        const std::string p = setup + "lddw %r0, 0x1111111122222222\nlock cmpxchg [%r10-8], %r1\n";
        CHECK(r0_of(p + "exit") == 0x1111111122222222);
        CHECK(r0_of(p + "ldxdw %r0, [%r10-8]\nexit") == 0x3333333344444444);
        CHECK(r0_of(p + "mov %r0, %r1\nexit") == 0x3333333344444444);   // r1 untouched
    }
    SECTION("64-bit, mismatch") {
        const std::string p = setup + "lddw %r0, 0x1111111122222223\nlock cmpxchg [%r10-8], %r1\n";
        CHECK(r0_of(p + "exit") == 0x1111111122222222);
        CHECK(r0_of(p + "ldxdw %r0, [%r10-8]\nexit") == 0x1111111122222222);
    }
    SECTION("32-bit, match: compares the low halves, r0 zero-extended") {
        const std::string p = setup + "lddw %r0, 0xffffffff22222222\nlock cmpxchg32 [%r10-8], %r1\n";
        CHECK(r0_of(p + "exit") == 0x22222222);
        CHECK(r0_of(p + "ldxdw %r0, [%r10-8]\nexit") == 0x1111111144444444);
    }
    SECTION("32-bit, mismatch") {
        const std::string p = setup + "mov %r0, 0\nlock cmpxchg32 [%r10-8], %r1\n";
        CHECK(r0_of(p + "exit") == 0x22222222);
        CHECK(r0_of(p + "ldxdw %r0, [%r10-8]\nexit") == 0x1111111122222222);
    }
}

TEST_CASE("atomics must be naturally aligned", "[interp]") {
    Env env;
    const Trap t64 = trap_of("mov %r1, 1\nlock add [%r10-12], %r1\nexit", env);
    CHECK(t64.kind == TrapKind::Misaligned);
    CHECK(t64.pc == 1);
    CHECK(t64.size == 8);
    CHECK_THAT(t64.message, Catch::StartsWith("pc 1: misaligned 8-byte atomic access at 0x"));
    const Trap t32 = trap_of("mov %r1, 1\nlock fetch xor32 [%r10-6], %r1\nexit", env);
    CHECK(t32.kind == TrapKind::Misaligned);
    CHECK(t32.size == 4);
    CHECK(trap_of("mov %r0, 0\nmov %r1, 1\nlock cmpxchg [%r10-4], %r1\nexit", env).kind == TrapKind::MemoryFault);
    CHECK(r0_of("mov %r1, 1\nlock add32 [%r10-12], %r1\nldxw %r0, [%r10-12]\nexit") == 1);   // 4-aligned is enough
}

TEST_CASE("load-acquire and store-release move values like plain loads and stores", "[interp]") {
    CHECK(r0_of("lddw %r1, 0x1122334455667788\nstreldw [%r10-8], %r1\nldacqdw %r0, [%r10-8]\nexit") ==
          0x1122334455667788);
    CHECK(r0_of("lddw %r1, 0x1122334455667788\nstxdw [%r10-8], %r1\nldacqh %r0, [%r10-8]\nexit") == 0x7788);
    CHECK(trap_of("ldacqw %r0, [%r10-6]\nexit").kind == TrapKind::Misaligned);
}

// ──────────────────────────────── helpers ─────────────────────────────────

namespace {
struct Seen {
    std::array<uint64_t, 5> args{};
    const Env* env = nullptr;
    int calls = 0;
} seen;

uint64_t record(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, Env& env) {
    seen.args = {a, b, c, d, e};
    seen.env = &env;
    ++seen.calls;
    return a + b + c + d + e;
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

HelperTable test_helpers() {
    HelperTable t;
    t.add({1, "record", {}, record});
    t.add({2, "exit7", {}, exit7});
    t.add({3, "refuse", {}, refuse});
    t.add({4, "call_back", {}, call_back});
    return t;
}
}  // namespace

TEST_CASE("helpers receive r1-r5 and the Env, and return in r0", "[interp]") {
    const HelperTable t = test_helpers();
    CHECK(t.size() == 4);
    CHECK(t.find(1) != nullptr);
    CHECK(t.find(5) == nullptr);
    CHECK(t.find(-1) == nullptr);
    Env env;
    seen = {};
    auto o = run("mov %r1, 1\nmov %r2, 20\nmov %r3, 300\nmov %r4, 4000\nmov %r5, 50000\ncall 1\nexit", env, {}, 100, t);
    REQUIRE(o.r.ok());
    CHECK(o.r.r0 == 54321);
    CHECK(seen.args == std::array<uint64_t, 5>{1, 20, 300, 4000, 50000});
    CHECK(seen.env == &env);
    CHECK(seen.calls == 2);   // once per dispatcher
}

TEST_CASE("a copy of a helper table is its own: adding to one leaves the other", "[interp]") {
    auto one = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env&) -> uint64_t { return 1; };
    auto two = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env&) -> uint64_t { return 2; };
    HelperTable a;
    CHECK(a.find(1) == nullptr);
    CHECK(a.size() == 0);
    a.add(Helper{1, "one", {}, one});
    HelperTable b = a;   // shares a's helpers until one of them changes
    b.add(Helper{1, "two", {}, two});
    b.add(Helper{7, "seven", {}, two});
    REQUIRE(a.find(1));
    CHECK(a.find(1)->name == "one");
    CHECK(a.find(1)->fn == +one);
    CHECK(a.find(7) == nullptr);
    CHECK(a.size() == 1);
    CHECK(b.find(1)->name == "two");
    CHECK(b.size() == 2);
    const HelperTable c = b;
    b.add(Helper{3, "three", {}, one});
    CHECK(c.size() == 2);
    CHECK(c.find(3) == nullptr);
    CHECK(b.size() == 3);
}

TEST_CASE("a helper can end the program or trap it", "[interp]") {
    const HelperTable t = test_helpers();
    Env env;
    SECTION("request_exit(7) ends the program with r0 = 7") {
        auto o = run("mov %r0, 1\ncall 2\nmov %r0, 1\nexit", env, {}, 100, t);
        REQUIRE(o.r.ok());
        CHECK(o.r.r0 == 7);
        CHECK(o.r.insns == 2);
        // also from inside a bpf2bpf call: the whole program ends
        auto nested = run("call local f\nmov %r0, 1\nexit\nf:\ncall 2\nmov %r0, 2\nexit", env, {}, 100, t);
        REQUIRE(nested.r.ok());
        CHECK(nested.r.r0 == 7);
        CHECK(nested.r.insns == 2);
    }
    SECTION("request_trap(\"x\") stops with a Helper trap") {
        const Trap tr = trap_of("mov %r0, 0\ncall 3\nexit", env, {}, 100, t);
        CHECK(tr.kind == TrapKind::Helper);
        CHECK(tr.pc == 1);
        CHECK(tr.message == "pc 1: helper 3 failed: x");
    }
    SECTION("the conformance helper unwind exits when its argument is 0") {
        CHECK(r0_of("mov %r1, 0\ncall 5\nmov %r0, 3\nexit") == 0);
        CHECK(r0_of("mov %r1, 9\ncall 5\nexit") == 9);
    }
}

TEST_CASE("calls to helpers that are not in the table are refused by compile()", "[interp]") {
    const HelperTable t = test_helpers();
    auto unknown = compile_text("mov %r0, 0\ncall 999\nexit", t);
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().code() == ErrorCode::Unsupported);
    CHECK(unknown.error().where().pc == 1u);
    CHECK_THAT(unknown.error().describe(), Catch::Contains("pc 1") && Catch::Contains("unknown helper #999"));
    // a kernel helper the table lacks is named
    auto named = compile_text("call 6\nexit", t);
    REQUIRE_FALSE(named.ok());
    CHECK_THAT(named.error().describe(), Catch::Contains("pc 0") &&
                                             Catch::Contains("helper bpf_trace_printk#6 is not implemented"));
    CHECK_FALSE(compile_text("call 1\nexit", HelperTable{}).ok());
}

TEST_CASE("callx calls a helper by id or a function by address; anything else traps", "[interp]") {
    const HelperTable t = test_helpers();
    Env env;
    seen = {};
    auto h = run("mov %r1, 2\nmov %r2, 1\nmov %r3, 0\ncallx %r2\nexit", env, {}, 100, t);
    REQUIRE(h.r.ok());
    CHECK(h.r.r0 == 3);   // record(2, 1, 0, 0, 0)
    CHECK(seen.calls == 2);

    SECTION("garbage in the register") {
        for (const char* v : {"12345", "-1", "5"}) {   // 5 is not in this table
            INFO("callx of " << v);
            const Trap tr = trap_of(std::string("mov %r0, 0\nmov %r2, ") + v + "\ncallx %r2\nexit", env, {}, 100, t);
            CHECK(tr.kind == TrapKind::BadCall);
            CHECK(tr.pc == 2);
            CHECK_THAT(tr.message, Catch::StartsWith("pc 2: callx r2 = ") &&
                                       Catch::Contains("is neither a helper id nor a function address"));
        }
    }
    SECTION("a function address from lddw func(label)") {
        CHECK(run("lddw %r1, func(f)\nmov %r2, 4\ncallx %r1\nexit\nf:\nmov %r0, %r2\nadd %r0, 1\nexit", env, {}, 100, t)
                  .r.r0 == 5);
        // a called function is a real frame: r6-r9 restored, own stack
        CHECK(run("mov %r6, 1\nlddw %r1, func(f)\ncallx %r1\nadd %r0, %r6\nexit\nf:\nmov %r6, 9\nmov %r0, %r10\n"
                  "stdw [%r10-8], 3\nldxdw %r0, [%r10-8]\nexit",
                  env, {}, 100, t)
                  .r.r0 == 4);
    }
    SECTION("a helper calls back into the program") {
        CHECK(run("lddw %r1, func(f)\nmov %r2, 4\ncall 4\nexit\nf:\nmov %r0, %r1\nadd %r0, 1\nexit", env, {}, 100, t)
                  .r.r0 == 50);
    }
}

TEST_CASE("a helper called through callx that traps is named in the trap", "[interp]") {
    // Regression: the message took the helper id from the instruction's immediate, 0 for callx.
    const HelperTable t = test_helpers();
    Env env;
    const Trap tr = trap_of("mov %r0, 0\nmov %r2, 3\ncallx %r2\nexit", env, {}, 100, t);
    CHECK(tr.kind == TrapKind::Helper);
    CHECK(tr.pc == 2);
    CHECK(tr.message == "pc 2: helper 3 failed: x");
}

TEST_CASE("callx of a forged function address inside an lddw traps instead of crashing", "[interp]") {
    // Regression: a value with the function tag whose pc is the second slot of an lddw used to
    // pass CALLX's check; the threaded dispatcher then jumped to the lddw's value as a label
    // (SIGSEGV) and the switch dispatcher ran it as some other opcode. Runs in a child process.
    const std::string forged = "lddw %r1, " + hex(kFuncPtrTag | 1) + "\ncallx %r1\nexit";
    auto interp = compile_text(forged);
    REQUIRE(interp.ok());
    const int expected = 100 + static_cast<int>(TrapKind::BadCall);
    for (auto d : {Dispatch::Switch, Dispatch::Threaded}) {
        INFO((d == Dispatch::Threaded ? "threaded" : "switch") << " dispatch; child status " << expected
                                                               << " means a BadCall trap, negative a signal");
        const int status = in_child([&] {
            Env env;
            return status_of(interp->run(env, {}, opts(1000, d)));
        });
        CHECK(status == expected);
    }
}

TEST_CASE("compile() refuses a program that can run past its last instruction", "[interp]") {
    // As the kernel does ("last insn is not an exit or jmp"). Regression: such programs used to
    // compile, and run() executed whatever lay after the slot array (threaded: SIGSEGV).
    // Straight off the end; a conditional jump not taken; a function without exit; may_goto;
    // a call whose return lands past the end.
    for (const char* text : {"mov %r0, 1", "mov %r0, 0\nl:\njeq %r0, 1, l", "call local f\nexit\nf:\nmov %r0, 1",
                             "l:\nmay_goto l", "ja f\nf:\ncall local f", "lddw %r0, 1"}) {
        INFO(text);
        auto interp = compile_text(text);
        CHECK_FALSE(interp.ok());
        if (!interp.ok()) {
            CHECK(interp.error().code() == ErrorCode::InvalidInsn);
            CHECK_THAT(interp.error().message(), Catch::Contains("last instruction is not an exit or a jump"));
        } else {
            const int status = in_child([&] {
                Env env;
                return status_of(interp->run(env, {}, opts(1000, Dispatch::Threaded)));
            });
            INFO("compiled; running it in a child process ended with status " << status
                                                                               << " (negative: a signal)");
            CHECK(status >= kNoTrap);   // it at least returned a RunResult
        }
    }
}

// ─────────────────────────── legacy packet loads ──────────────────────────

TEST_CASE("LD_ABS and LD_IND read the packet big-endian; a miss ends the program with 0", "[interp]") {
    std::vector<uint8_t> pkt = {0x11, 0x22, 0x33, 0x44, 0x55};
    Env env;
    env.skb_data = pkt.data();
    env.skb_len = static_cast<uint32_t>(pkt.size());
    CHECK(run("ldabsb 0\nexit", env).r.r0 == 0x11);
    CHECK(run("ldabsh 0\nexit", env).r.r0 == 0x1122);
    CHECK(run("ldabsw 1\nexit", env).r.r0 == 0x22334455);   // the last four bytes, exactly
    CHECK(run("ldabsb 4\nexit", env).r.r0 == 0x55);
    CHECK(run("mov %r1, 2\nldindb %r1, 2\nexit", env).r.r0 == 0x55);
    CHECK(run("mov %r1, 1\nldindh %r1, 2\nexit", env).r.r0 == 0x4455);
    CHECK(run("mov %r7, 0\nldindw %r7, 0\nexit", env).r.r0 == 0x11223344);

    SECTION("out of range: the program ends at once with r0 = 0") {
        for (const char* load : {"ldabsw 2", "ldabsh 4", "ldabsb 5", "ldabsb -1", "mov %r1, 4\nldindh %r1, 0",
                                 "mov %r1, 1\nldindb %r1, 0x7fffffff"}) {
            INFO(load);
            auto o = run(std::string("mov %r0, 9\n") + load + "\nmov %r0, 9\nexit", env);
            REQUIRE(o.r.ok());
            CHECK(o.r.r0 == 0);
        }
        auto o = run("mov %r0, 9\nldabsw 2\nmov %r0, 9\nexit", env);
        CHECK(o.r.insns == 2);
        // also from a subprogram: the whole program ends
        auto nested = run("call local f\nmov %r0, 9\nexit\nf:\nldabsw 100\nmov %r0, 8\nexit", env);
        REQUIRE(nested.r.ok());
        CHECK(nested.r.r0 == 0);
    }
    SECTION("an empty packet") {
        Env empty;
        empty.skb_data = pkt.data();
        empty.skb_len = 0;
        auto o = run("mov %r0, 9\nldabsb 0\nexit", empty);
        REQUIRE(o.r.ok());
        CHECK(o.r.r0 == 0);
    }
    SECTION("without a packet: NoPacket") {
        Env none;
        const Trap t = trap_of("mov %r0, 0\nldabsb 0\nexit", none);
        CHECK(t.kind == TrapKind::NoPacket);
        CHECK(t.pc == 1);
        CHECK_THAT(t.message, Catch::StartsWith("pc 1: legacy packet load"));
        CHECK(trap_of("mov %r1, 0\nldindw %r1, 0\nexit", none).kind == TrapKind::NoPacket);
    }
}

// ──────────────────────────────── compile ─────────────────────────────────

TEST_CASE("compile() refuses unresolved map and BTF references", "[interp]") {
    for (const char* ref : {"map_fd(3)", "map_value(3, 16)", "map_idx(0)", "map_idx_value(0, 8)", "btf_id(7)"}) {
        INFO(ref);
        auto r = compile_text(std::string("mov %r0, 0\nlddw %r1, ") + ref + "\nexit");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == ErrorCode::Unsupported);
        CHECK(r.error().where().pc == 1u);
        CHECK_THAT(r.error().describe(), Catch::Contains("pc 1") && Catch::Contains("is unresolved"));
    }
    auto fd = compile_text("lddw %r1, map_fd(3)\nexit");
    REQUIRE_FALSE(fd.ok());
    CHECK_THAT(fd.error().message(), Catch::Contains("pseudo source 'map_fd' is unresolved"));
}

TEST_CASE("compile() validates the program and keeps it", "[interp]") {
    Program p;
    p.name = "empty";
    CHECK_FALSE(Interpreter::compile(p, conformance_helpers()).ok());
    p.insns = {Insn{0xff, 0, 0, 0, 0}};
    auto bad = Interpreter::compile(p, conformance_helpers());
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code() == ErrorCode::InvalidInsn);
    auto good = compile_text("mov %r0, 1\nexit");
    REQUIRE(good.ok());
    CHECK(good->program().name == "t");
    CHECK(good->program().insns.size() == 2);
}

// ────────────────────────────── determinism ───────────────────────────────

TEST_CASE("runs are deterministic", "[interp]") {
    const char* prog = R"(
mov %r0, 1
mov %r1, 0
l:
mul %r0, 3
xor %r0, %r1
stxdw [%r10-8], %r0
ldxw %r2, [%r10-6]
add %r0, %r2
call local f
add %r1, 1
jlt %r1, 50, l
exit
f:
lddw %r3, 0x9e3779b97f4a7c15
xor %r0, %r3
exit)";
    Env env;
    auto a = run(prog, env);
    auto b = run(prog, env);
    Env other;
    auto c = run(prog, other);
    REQUIRE(a.r.ok());
    CHECK(a.r.r0 == b.r.r0);
    CHECK(a.r.insns == b.r.insns);
    CHECK(a.r.r0 == c.r.r0);
    CHECK(a.r.insns == c.r.insns);
    // the same trap, twice
    const Trap t1 = trap_of("mov %r0, 0\nl:\nadd %r0, 1\nja l", env, {}, 500);
    const Trap t2 = trap_of("mov %r0, 0\nl:\nadd %r0, 1\nja l", env, {}, 500);
    CHECK(t1.kind == t2.kind);
    CHECK(t1.pc == t2.pc);
    CHECK(t1.message == t2.message);
}

// ──────────────────────────────── coverage ────────────────────────────────

namespace {
// Helper 5, bpf_loop's shape: calls fn(i, ctx) for i = 0..n-1 until it returns 1; the turns run.
uint64_t loop_helper(uint64_t n, uint64_t fn, uint64_t ctx, uint64_t, uint64_t, Env& env) {
    uint64_t i = 0;
    while (i < n) {
        const uint64_t r = env.call_function(fn, {i, ctx, 0, 0, 0});
        ++i;
        if (env.request != Request::None || r == 1) break;
    }
    return i;
}
HelperTable with_loop() {
    HelperTable t = conformance_helpers();
    t.add({5, "loop", {}, loop_helper});
    return t;
}

uint64_t sum(const std::vector<uint64_t>& v) {
    uint64_t s = 0;
    for (uint64_t x : v) s += x;
    return s;
}

// Runs `text` with coverage into cov, after checking that the uncounted dispatchers give the
// same r0, instruction count and trap.
RunResult run_counted(std::string_view text, Coverage& cov, const HelperTable& helpers = conformance_helpers(),
                      Args args = {}, uint64_t budget = kBudget) {
    auto interp = compile_text(text, helpers);
    REQUIRE(interp.ok());
    Env env;
    RunOptions ro = opts(budget, Dispatch::Threaded);
    const RunResult plain = interp->run(env, args, ro);
    ro.coverage = &cov;
    const RunResult counted = interp->run(env, args, ro);
    INFO(text);
    CHECK(plain.r0 == counted.r0);
    CHECK(plain.insns == counted.insns);
    REQUIRE(plain.trap.has_value() == counted.trap.has_value());
    if (plain.trap) {
        CHECK(plain.trap->kind == counted.trap->kind);
        CHECK(plain.trap->pc == counted.trap->pc);
        // Messages about memory name stack addresses, which differ between the two runs.
        if (plain.trap->kind != TrapKind::MemoryFault && plain.trap->kind != TrapKind::Helper)
            CHECK(plain.trap->message == counted.trap->message);
    }
    CHECK(cov.hits.size() == interp->program().insns.size());
    CHECK(cov.taken.size() == interp->program().insns.size());
    return counted;
}

using Counts = std::vector<uint64_t>;
}  // namespace

TEST_CASE("coverage: straight code counts each instruction once a run, lddw at its first slot", "[interp][coverage]") {
    Coverage cov;
    const char* prog = "mov %r0, 1\nadd %r0, 2\nlddw %r1, 0x100000000\nadd %r0, %r1\nexit";
    auto r = run_counted(prog, cov);
    REQUIRE(r.ok());
    CHECK(r.r0 == 0x100000003);
    CHECK(cov.hits == Counts{1, 1, 1, 0, 1, 1});
    CHECK(cov.taken == Counts{0, 0, 0, 0, 0, 0});
    CHECK(sum(cov.hits) == r.insns);
    // counters add up over runs
    run_counted(prog, cov);
    CHECK(cov.hits == Counts{2, 2, 2, 0, 2, 2});
    // reset() sizes and zeroes
    cov.reset(3);
    CHECK(cov.hits == Counts{0, 0, 0});
    run_counted(prog, cov);
    CHECK(cov.hits == Counts{1, 1, 1, 0, 1, 1});
}

TEST_CASE("coverage: a loop's body and its branch, taken and not taken", "[interp][coverage]") {
    Coverage cov;
    auto r = run_counted(R"(
mov %r0, 0
mov %r1, 0
l:
add %r0, %r1
add %r1, 1
jlt %r1, 5, l
jeq %r0, 100, +2
ja +0
exit
mov %r0, 1
exit)", cov);
    REQUIRE(r.ok());
    CHECK(r.r0 == 10);
    CHECK(cov.hits == Counts{1, 1, 5, 5, 5, 1, 1, 1, 0, 0});
    CHECK(cov.taken == Counts{0, 0, 0, 0, 4, 0, 1, 0, 0, 0});   // the back edge 4 of 5 times; ja always
    CHECK(sum(cov.hits) == r.insns);
}

TEST_CASE("coverage: bpf2bpf calls count in the callee's pcs", "[interp][coverage]") {
    Coverage cov;
    auto r = run_counted(R"(
mov %r6, 0
mov %r7, 0
l:
mov %r1, %r6
call local f
add %r7, %r0
add %r6, 1
jlt %r6, 3, l
mov %r0, %r7
exit
f:
jset %r1, 1, +2
mov %r0, 0
exit
mov %r0, 1
exit)", cov);
    REQUIRE(r.ok());
    CHECK(r.r0 == 1);
    CHECK(cov.hits == Counts{1, 1, 3, 3, 3, 3, 3, 1, 1, 3, 2, 2, 1, 1});
    CHECK(cov.taken == Counts{0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0});
    CHECK(sum(cov.hits) == r.insns);
}

TEST_CASE("coverage: callbacks run by a helper (bpf_loop) count in the program", "[interp][coverage]") {
    Coverage cov;
    const char* prog = R"(
mov %r1, 4
lddw %r2, func(cb)
mov %r3, 0
call 5
exit
cb:
jgt %r1, 1, +2
mov %r0, 0
exit
mov %r0, 0
exit)";
    auto r = run_counted(prog, cov, with_loop());
    REQUIRE(r.ok());
    CHECK(r.r0 == 4);
    CHECK(cov.hits == Counts{1, 1, 0, 1, 1, 1, 4, 2, 2, 2, 2});
    CHECK(cov.taken == Counts{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0});
    CHECK(sum(cov.hits) == r.insns);
    // a callback that ends the loop early (returns 1 at i = 1)
    Coverage early;
    r = run_counted("mov %r1, 9\nlddw %r2, func(cb)\nmov %r3, 0\ncall 5\nexit\ncb:\nmov %r0, %r1\nexit", early, with_loop());
    REQUIRE(r.ok());
    CHECK(r.r0 == 2);
    CHECK(early.hits == Counts{1, 1, 0, 1, 1, 1, 2, 2});
    CHECK(sum(early.hits) == r.insns);
}

TEST_CASE("coverage: tail calls count in the target's own counters", "[interp][coverage]") {
    auto target = compile_text("mov %r0, %r1\njeq %r0, 5, +1\nadd %r0, 1\nexit");
    REQUIRE(target.ok());
    tail_target = &*target;
    auto entry = compile_text("call local f\nadd %r0, 100\nexit\nf:\nmov %r1, 5\ncall 9\nmov %r0, 99\nexit", with_tail_call());
    REQUIRE(entry.ok());
    Env env;
    const RunResult plain = entry->run(env);
    REQUIRE(plain.ok());
    std::map<const Program*, Coverage> programs;
    std::vector<const Program*> asked;
    auto counters = [&](const Program& p) {
        asked.push_back(&p);
        return &programs[&p];
    };
    SECTION("the entry in `coverage`, the target through `counters`") {
        Coverage cov;
        RunOptions ro;
        ro.coverage = &cov;
        ro.counters = counters;
        const RunResult r = entry->run(env, {}, ro);
        REQUIRE(r.ok());
        CHECK(r.r0 == plain.r0);
        CHECK(r.r0 == 105);
        CHECK(r.insns == plain.insns);
        CHECK(cov.hits == Counts{1, 1, 1, 1, 1, 0, 0});   // the return lands back in the entry after the tail call
        CHECK(asked == std::vector<const Program*>{&target->program()});
        const Coverage& t = programs[&target->program()];
        CHECK(t.hits == Counts{1, 1, 0, 1});
        CHECK(t.taken == Counts{0, 1, 0, 0});
        CHECK(sum(cov.hits) + sum(t.hits) == r.insns);
    }
    SECTION("only `counters`: the entry is asked for too, each program once a run") {
        RunOptions ro;
        ro.counters = counters;
        for (int i = 0; i < 2; ++i) {
            const RunResult r = entry->run(env, {}, ro);
            REQUIRE(r.ok());
            CHECK(r.r0 == 105);
        }
        CHECK(asked == std::vector<const Program*>{&entry->program(), &target->program(), &entry->program(), &target->program()});
        CHECK(programs[&entry->program()].hits == Counts{2, 2, 2, 2, 2, 0, 0});
        CHECK(programs[&target->program()].hits == Counts{2, 2, 0, 2});
    }
    SECTION("only `coverage`: the target is not counted, the entry is") {
        Coverage cov;
        RunOptions ro;
        ro.coverage = &cov;
        const RunResult r = entry->run(env, {}, ro);
        REQUIRE(r.ok());
        CHECK(r.r0 == 105);
        CHECK(cov.hits == Counts{1, 1, 1, 1, 1, 0, 0});
    }
    SECTION("`counters` returning null: that program is not counted") {
        Coverage cov;
        RunOptions ro;
        ro.coverage = &cov;
        ro.counters = [](const Program&) -> Coverage* { return nullptr; };
        const RunResult r = entry->run(env, {}, ro);
        REQUIRE(r.ok());
        CHECK(r.r0 == 105);
        CHECK(cov.hits == Counts{1, 1, 1, 1, 1, 0, 0});
    }
    tail_target = nullptr;
}

TEST_CASE("coverage: results and traps are the same with and without counting", "[interp][coverage]") {
    const char* deterministic = R"(
mov %r0, 1
mov %r1, 0
l:
mul %r0, 3
xor %r0, %r1
stxdw [%r10-8], %r0
ldxw %r2, [%r10-6]
add %r0, %r2
call local f
add %r1, 1
jlt %r1, 50, l
exit
f:
lddw %r3, 0x9e3779b97f4a7c15
xor %r0, %r3
exit)";
    Coverage cov;
    auto r = run_counted(deterministic, cov);
    REQUIRE(r.ok());
    CHECK(sum(cov.hits) == r.insns);
    CHECK(cov.hits[7] == 50);     // call local f
    CHECK(cov.hits[11] == 50);    // f's lddw
    CHECK(cov.taken[9] == 49);
    SECTION("budget trap") {
        Coverage c;
        auto t = run_counted("mov %r0, 0\nl:\nadd %r0, 1\nja l", c, conformance_helpers(), {}, 500);
        REQUIRE(t.trap.has_value());
        CHECK(t.trap->kind == TrapKind::Budget);
        CHECK(c.hits[0] == 1);
        CHECK(c.hits[1] + c.hits[2] >= 498);
    }
    SECTION("memory fault: the faulting instruction is counted, what follows is not") {
        Coverage c;
        auto t = run_counted("mov %r0, 0\nldxb %r0, [%r1+0]\nexit", c);
        REQUIRE(t.trap.has_value());
        CHECK(t.trap->kind == TrapKind::MemoryFault);
        CHECK(c.hits == Counts{1, 1, 0});
    }
    SECTION("a helper that ends the program") {
        HelperTable h = conformance_helpers();
        Coverage c;
        auto t = run_counted("mov %r1, 0\ncall 5\nmov %r0, 3\nexit", c, h);   // unwind(0) stops with r0 = 0
        REQUIRE(t.ok());
        CHECK(t.r0 == 0);
        CHECK(c.hits == Counts{1, 1, 0, 0});
    }
    SECTION("a trap inside a callback") {
        Coverage c;
        auto t = run_counted("mov %r1, 3\nlddw %r2, func(cb)\nmov %r3, 0\ncall 5\nexit\ncb:\nldxb %r0, [%r2+0]\nexit", c,
                             with_loop());
        REQUIRE(t.trap.has_value());
        CHECK(c.hits == Counts{1, 1, 0, 1, 1, 0, 1, 0});
    }
}
