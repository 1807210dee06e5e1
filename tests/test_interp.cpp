// The interpreter: kernel semantics, checked memory, the budget, calls, helpers.
// Every program runs under both dispatchers, which must agree exactly.
#include "vm/vm.hpp"

#include <catch2/catch.hpp>

#include <cstring>

using namespace bpfsim;
using namespace bpfsim::vm;

namespace {

struct Run {
    RunResult r;
    std::string compile_error;
};

// Assembles, compiles and runs with both dispatchers; they must agree.
Run run(std::string_view text, Env& env, std::array<uint64_t, 5> args = {}, uint64_t budget = 1'000'000,
        const HelperTable& helpers = conformance_helpers()) {
    auto insns = assemble(text, "t.s");
    if (!insns) FAIL(insns.error().describe());
    Program p;
    p.name = "t";
    p.insns = *insns;
    auto interp = Interpreter::compile(p, helpers);
    if (!interp) return {{}, interp.error().describe()};
    RunResult a = interp->run(env, args, {budget, Dispatch::Threaded});
    RunResult b = interp->run(env, args, {budget, Dispatch::Switch});
    CHECK(a.r0 == b.r0);
    CHECK(a.insns == b.insns);
    CHECK(a.trap.has_value() == b.trap.has_value());
    if (a.trap && b.trap) {
        CHECK(a.trap->kind == b.trap->kind);
        CHECK(a.trap->pc == b.trap->pc);
    }
    return {a, ""};
}

uint64_t r0(std::string_view text) {
    Env env;
    auto x = run(text, env);
    REQUIRE(x.compile_error.empty());
    if (x.r.trap) FAIL(x.r.trap->message);
    return x.r.r0;
}

}  // namespace

TEST_CASE("division and modulo follow the kernel", "[interp]") {
    CHECK(r0("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit") == 0);
    CHECK(r0("mov %r0, 7\nmov %r1, 0\nmod %r0, %r1\nexit") == 7);
    CHECK(r0("lddw %r0, 0x1ffffffff\nmov %r1, 0\nmod32 %r0, %r1\nexit") == 0xffffffff);   // upper half cleared
    CHECK(r0("lddw %r0, 0x100000007\nmov32 %r1, 0\ndiv32 %r0, %r1\nexit") == 0);
    CHECK(r0("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit") == 0x8000000000000000);
    CHECK(r0("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit") == 0);
    CHECK(r0("mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit") == 0x80000000);
    CHECK(r0("mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit") == 0);
    CHECK(r0("mov %r0, -13\nsdiv %r0, 3\nexit") == static_cast<uint64_t>(-4));
    CHECK(r0("mov %r0, -13\nsmod %r0, 3\nexit") == static_cast<uint64_t>(-1));
    CHECK(r0("mov32 %r0, -13\nsmod32 %r0, 3\nexit") == 0xffffffff);
    CHECK(r0("mov %r0, 5\nsdiv %r0, 0\nexit") == 0);
    CHECK(r0("mov %r0, 5\nsmod %r0, 0\nexit") == 5);
}

TEST_CASE("shifts mask the amount; 32-bit results are zero-extended", "[interp]") {
    CHECK(r0("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit") == 2);
    CHECK(r0("mov %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit") == 2);
    CHECK(r0("mov %r0, -16\narsh %r0, 2\nexit") == static_cast<uint64_t>(-4));
    CHECK(r0("mov32 %r0, -16\narsh32 %r0, 2\nexit") == 0xfffffffc);
    CHECK(r0("lddw %r0, 0xffffffff00000001\nadd32 %r0, 1\nexit") == 2);
    CHECK(r0("lddw %r0, 0xffffffff00000001\nmov32 %r0, %r0\nexit") == 1);
    CHECK(r0("mov32 %r0, 0x80000000\nneg32 %r0\nexit") == 0x80000000);
    CHECK(r0("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit") == 0xffffffffffffff80);
    CHECK(r0("mov %r1, 0x80\nmovsx832 %r0, %r1\nexit") == 0xffffff80);
    CHECK(r0("lddw %r0, 0x1122334455667788\nbe16 %r0\nexit") == 0x8877);
    CHECK(r0("lddw %r0, 0x1122334455667788\nle32 %r0\nexit") == 0x55667788);
    CHECK(r0("lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit") == 0x8877665544332211);
}

TEST_CASE("jumps: 32-bit compares use the low halves; immediates are sign-extended", "[interp]") {
    CHECK(r0("lddw %r1, 0x100000005\nmov %r0, 0\njeq32 %r1, 5, +1\nexit\nmov %r0, 1\nexit") == 1);
    CHECK(r0("lddw %r1, 0x100000005\nmov %r0, 0\njeq %r1, 5, +1\nexit\nmov %r0, 1\nexit") == 0);
    CHECK(r0("mov %r1, -1\nmov %r0, 0\njsgt %r1, -2, +1\nexit\nmov %r0, 1\nexit") == 1);
    CHECK(r0("mov %r1, -1\nmov %r0, 0\njgt %r1, -2, +1\nexit\nmov %r0, 1\nexit") == 1);   // 0xff..ff > 0xff..fe
    CHECK(r0("mov %r1, 6\nmov %r0, 0\njset %r1, 2, +1\nexit\nmov %r0, 1\nexit") == 1);
    CHECK(r0("mov %r0, 0\nmay_goto +1\nmov %r0, 1\nexit") == 1);   // falls through while allowance lasts
}

TEST_CASE("memory checks: inside regions only, with the pc and region in the trap", "[interp]") {
    std::vector<uint8_t> buf(8, 0x11);
    Env env;
    env.mem.add(buf.data(), buf.size(), kReadWrite, RegionKind::Input, "input");
    const uint64_t p = reinterpret_cast<uint64_t>(buf.data());
    auto ok = run("ldxdw %r0, [%r1]\nexit", env, {p});
    REQUIRE_FALSE(ok.r.trap);
    CHECK(ok.r.r0 == 0x1111111111111111);

    auto past = run("mov %r0, 0\nldxw %r0, [%r1+5]\nexit", env, {p});
    REQUIRE(past.r.trap);
    CHECK(past.r.trap->kind == TrapKind::MemoryFault);
    CHECK(past.r.trap->pc == 1);
    CHECK(past.r.trap->addr == p + 5);
    CHECK(past.r.trap->size == 4);
    CHECK_THAT(past.r.trap->message, Catch::StartsWith("pc 1: invalid memory access: read of 4 bytes") &&
                                         Catch::Contains("runs 1 bytes past the end of region 'input'"));

    auto null = run("ldxb %r0, [%r1]\nexit", env, {0});
    REQUIRE(null.r.trap);
    CHECK_THAT(null.r.trap->message, Catch::Contains("is outside every region; nearest is"));

    Env ro;
    ro.mem.add(buf.data(), buf.size(), kRead, RegionKind::Global, ".rodata");
    auto w = run("stb [%r1], 1\nexit", ro, {p});
    REQUIRE(w.r.trap);
    CHECK_THAT(w.r.trap->message, Catch::Contains("region '.rodata'") && Catch::Contains("read-only"));

    Env none;
    auto below = run("ldxb %r0, [%r10-513]\nexit", none);
    REQUIRE(below.r.trap);
    CHECK(below.r.trap->kind == TrapKind::MemoryFault);
    auto above = run("stxb [%r10], %r1\nexit", none);
    REQUIRE(above.r.trap);
    CHECK(r0("ldxdw %r0, [%r10-512]\nexit") == 0);   // the stack starts zeroed
    CHECK(r0("stdw [%r10-8], 42\nldxdw %r0, [%r10-8]\nexit") == 42);
}

TEST_CASE("MemoryMap bookkeeping", "[interp]") {
    MemoryMap m;
    std::vector<uint8_t> a(16), b(16);
    m.add(a.data(), a.size(), kReadWrite, RegionKind::Input, "a");
    CHECK_THROWS_AS(m.add(a.data() + 8, 16, kRead, RegionKind::Input, "overlap"), Error);
    CHECK_THROWS_AS(m.add(b.data(), 0, kRead, RegionKind::Input, "empty"), Error);
    const uint64_t pa = reinterpret_cast<uint64_t>(a.data());
    CHECK(m.allows(pa, 16, kRead));
    CHECK(m.allows(pa + 15, 1, kWrite));
    CHECK_FALSE(m.allows(pa + 15, 2, kRead));
    CHECK_FALSE(m.allows(pa - 1, 1, kRead));
    REQUIRE(m.find(pa + 3).has_value());
    CHECK(m.find(pa + 3)->name == "a");
    CHECK_FALSE(m.find(pa + 16).has_value());
    CHECK_THAT(m.explain(pa + 20, 4, kRead), Catch::Contains("nearest is 'a'") && Catch::Contains("4 bytes below"));
    CHECK(m.remove(pa));
    CHECK_FALSE(m.allows(pa, 1, kRead));
}

TEST_CASE("the budget counts instructions exactly and stops loops", "[interp]") {
    Env env;
    CHECK(run("mov %r0, 1\nadd %r0, 2\nexit", env).r.insns == 3);
    // 1 (mov) + 10 x (add, jne) + 1 (exit) = 22
    CHECK(run("mov %r0, 0\nadd %r0, 1\njne %r0, 10, -2\nexit", env).r.insns == 22);
    // forward jump skips 2 instructions: mov, ja, exit = 3
    CHECK(run("mov %r0, 0\nja +2\nmov %r0, 1\nmov %r0, 2\nexit", env).r.insns == 3);
    // call: mov, call, [mov, exit], exit = 5
    CHECK(run("mov %r0, 0\ncall local f\nexit\nf:\nmov %r0, 3\nexit", env).r.insns == 5);
    auto spin = run("ja -1", env, {}, 1000);
    REQUIRE(spin.r.trap);
    CHECK(spin.r.trap->kind == TrapKind::Budget);
    CHECK(spin.r.trap->pc == 0);
    CHECK_THAT(spin.r.trap->message, Catch::Contains("budget of 1000 exhausted"));
    auto loop = run("mov %r0, 0\nadd %r0, 1\njne %r0, 1000000, -2\nexit", env, {}, 0);
    REQUIRE_FALSE(loop.r.trap);
    CHECK(loop.r.insns == 2'000'002);
}

TEST_CASE("bpf2bpf calls: callee-saved registers, frames, depth", "[interp]") {
    Env env;
    CHECK(r0(R"(
mov %r6, 6
mov %r9, 9
call local f
add %r0, %r6
add %r0, %r9
exit
f:
mov %r6, 100
mov %r9, 100
mov %r0, 0
exit)") == 15);
    // the callee's frame is 512 bytes below the caller's
    CHECK(r0("mov %r1, %r10\ncall local f\nexit\nf:\nmov %r0, %r1\nsub %r0, %r10\nexit") == 512);
    // a caller's stack is reachable through a pointer
    CHECK(r0("stdw [%r10-8], 77\nmov %r1, %r10\nadd %r1, -8\ncall local f\nexit\nf:\nldxdw %r0, [%r1]\nexit") == 77);
    auto deep = run("f:\ncall local f\nexit", env);
    REQUIRE(deep.r.trap);
    CHECK(deep.r.trap->kind == TrapKind::CallDepth);
    CHECK_THAT(deep.r.trap->message, Catch::Contains("call depth limit of 8 frames"));
}

TEST_CASE("atomics", "[interp]") {
    CHECK(r0("stdw [%r10-8], 5\nmov %r1, 3\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit") == 8);
    CHECK(r0("stdw [%r10-8], 5\nmov %r1, 3\nlock fetch add [%r10-8], %r1\nmov %r0, %r1\nexit") == 5);
    CHECK(r0("stdw [%r10-8], 6\nmov %r1, 3\nlock fetch and32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit") == 2);
    CHECK(r0("stdw [%r10-8], 6\nmov %r1, 3\nlock fetch or [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit") == 7);
    CHECK(r0("stdw [%r10-8], 6\nmov %r1, 3\nlock xor [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit") == 5);
    CHECK(r0("stdw [%r10-8], 6\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nadd %r0, %r1\nexit") == 15);
    // cmpxchg: r0 gets the old value; the store happens only on a match
    CHECK(r0("stdw [%r10-8], 6\nmov %r0, 6\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit") == 9);
    CHECK(r0("stdw [%r10-8], 6\nmov %r0, 5\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nexit") == 6);
    CHECK(r0("stw [%r10-4], 6\nlddw %r0, 0x100000006\nmov %r1, 9\nlock cmpxchg32 [%r10-4], %r1\nldxw %r0, [%r10-4]\nexit") == 9);
    Env env;
    auto mis = run("mov %r1, 1\nlock add [%r10-15], %r1\nexit", env);
    REQUIRE(mis.r.trap);
    CHECK(mis.r.trap->kind == TrapKind::Misaligned);
}

namespace {
uint64_t add_all(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, Env&) { return a + b + c + d + e; }
uint64_t stop7(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_exit(7);
    return 0;
}
uint64_t fail(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    env.request_trap("bad argument");
    return 0;
}
uint64_t call_back(uint64_t fn, uint64_t arg, uint64_t, uint64_t, uint64_t, Env& env) {
    return env.call_function(fn, {arg, 0, 0, 0, 0}) * 10;
}
}  // namespace

TEST_CASE("helpers: arguments, exit and trap requests, unknown ids, callx, callbacks", "[interp]") {
    HelperTable t;
    t.add({1, "add_all", {}, add_all});
    t.add({2, "stop7", {}, stop7});
    t.add({3, "fail", {}, fail});
    t.add({4, "call_back", {}, call_back});
    Env env;
    CHECK(run("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nexit", env, {}, 1000, t).r.r0 == 15);
    CHECK(run("call 2\nmov %r0, 1\nexit", env, {}, 1000, t).r.r0 == 7);
    auto tr = run("mov %r0, 0\ncall 3\nexit", env, {}, 1000, t);
    REQUIRE(tr.r.trap);
    CHECK(tr.r.trap->kind == TrapKind::Helper);
    CHECK(tr.r.trap->pc == 1);
    CHECK_THAT(tr.r.trap->message, Catch::Contains("bad argument"));
    auto unknown = run("call 999\nexit", env, {}, 1000, t);
    CHECK_THAT(unknown.compile_error, Catch::Contains("pc 0") && Catch::Contains("unknown helper #999"));
    auto named = run("call 6\nexit", env, {}, 1000, t);
    CHECK_THAT(named.compile_error, Catch::Contains("helper bpf_trace_printk#6 is not implemented"));
    CHECK(run("mov %r1, 2\nmov %r2, 1\ncall %r2\nexit", env, {}, 1000, t).r.r0 == 3);   // add_all(2, 1, 0, 0, 0)
    auto bad = run("mov %r2, 12345\ncall %r2\nexit", env, {}, 1000, t);
    REQUIRE(bad.r.trap);
    CHECK(bad.r.trap->kind == TrapKind::BadCall);
    // lddw of a function, called through callx and from a helper
    CHECK(run("lddw %r1, func(f)\nmov %r2, 4\ncallx %r1\nexit\nf:\nmov %r0, %r2\nadd %r0, 1\nexit", env, {}, 1000, t).r.r0 == 5);
    CHECK(run("lddw %r1, func(f)\nmov %r2, 4\ncall 4\nexit\nf:\nmov %r0, %r1\nadd %r0, 1\nexit", env, {}, 1000, t).r.r0 == 50);
}

TEST_CASE("legacy packet loads", "[interp]") {
    std::vector<uint8_t> pkt = {0x11, 0x22, 0x33, 0x44, 0x55};
    Env env;
    env.skb_data = pkt.data();
    env.skb_len = static_cast<uint32_t>(pkt.size());
    CHECK(run("ldabsw 1\nexit", env).r.r0 == 0x22334455);
    CHECK(run("ldabsh 0\nexit", env).r.r0 == 0x1122);
    CHECK(run("mov %r1, 2\nldindb %r1, 2\nexit", env).r.r0 == 0x55);
    auto miss = run("mov %r0, 9\nldabsw 2\nmov %r0, 9\nexit", env);
    REQUIRE_FALSE(miss.r.trap);
    CHECK(miss.r.r0 == 0);   // out of range ends the program with 0
    Env none;
    auto np = run("ldabsb 0\nexit", none);
    REQUIRE(np.r.trap);
    CHECK(np.r.trap->kind == TrapKind::NoPacket);
}

TEST_CASE("unresolved map references are refused at compile time", "[interp]") {
    Env env;
    auto r = run("lddw %r1, map_fd(3)\nexit", env);
    CHECK_THAT(r.compile_error, Catch::Contains("pc 0") && Catch::Contains("pseudo source 'map_fd' is unresolved"));
}

TEST_CASE("runs are deterministic", "[interp]") {
    Env env;
    const char* prog = "mov %r0, 1\nmov %r1, 0\nl:\nmul %r0, 3\nxor %r0, %r1\nadd %r1, 1\njlt %r1, 50, l\nexit";
    auto a = run(prog, env);
    auto b = run(prog, env);
    CHECK(a.r.r0 == b.r.r0);
    CHECK(a.r.insns == b.r.insns);
}
