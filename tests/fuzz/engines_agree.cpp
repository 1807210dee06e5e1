// Interpreter and JIT (checked mode) on the same generated programs, without the verifier:
// r1 = a 64-byte buffer (at one address for both runs), r2 = its length, the engines' test
// helpers, one stack memory for both. They must agree on r0, the trap (kind, pc, message),
// the instructions executed and the buffer afterwards; a compile error must be the same error.
#include "tests/fuzz/fuzz.hpp"

#include "vm/jit.hpp"

#include <fmt/format.h>

#include <cstring>

namespace bpfsim::fuzz {

namespace {

uint64_t mix(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, vm::Env&) {
    return (r1 * 31) ^ (r2 << 3) ^ (r3 + r4) ^ (r5 * 0x9e3779b97f4a7c15ull);
}
uint64_t exit7(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env& env) {
    env.request_exit(7);
    return 0;
}
uint64_t refuse(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env& env) {
    env.request_trap("refused");
    return 0;
}
uint64_t drop_region(uint64_t start, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env& env) { return env.mem.remove(start); }

const vm::HelperTable& helpers() {
    static const vm::HelperTable t = [] {
        vm::HelperTable h = vm::conformance_helpers();
        h.add({10, "mix", {}, mix});
        h.add({11, "exit7", {}, exit7});
        h.add({12, "refuse", {}, refuse});
        h.add({15, "drop_region", {}, drop_region});
        return h;
    }();
    return t;
}

}  // namespace

void engines_agree(Bytes data) {
    // A mode byte (0 mod 8: the rest is raw instructions, as the conformance seeds are;
    // otherwise generated), the buffer's 64 bytes, the budget, the program.
    Reader r(data);
    const bool raw = r.u8() % 8 == 0;
    std::vector<uint8_t> init(64);
    const Bytes given = r.take(64);
    std::copy(given.begin(), given.end(), init.begin());
    const uint64_t budget = 1 + uint64_t{r.u16()};
    GenTarget t;
    t.bare = true;
    t.section = "bare";
    std::vector<vm::Insn> insns;
    if (raw) {
        const Bytes code = r.rest();
        for (std::size_t i = 0; i + 8 <= code.size(); i += 8) {
            uint64_t w = 0;
            std::memcpy(&w, code.data() + i, 8);
            insns.push_back(vm::Insn::from_raw(w));
        }
    } else {
        insns = generate(r, t).insns;
    }
    vm::Program prog;
    prog.name = "fuzz";
    prog.insns = insns;
    auto interp = vm::Interpreter::compile(prog, helpers());
    auto jit = vm::Jit::compile(prog, helpers(), vm::JitOptions{true});
    if (!interp || !jit) {
        if (interp.ok() != jit.ok() || interp.error().describe() != jit.error().describe())
            violation(fmt::format("compile: interpreter '{}', JIT '{}'", interp ? "ok" : interp.error().describe(),
                                  jit ? "ok" : jit.error().describe()));
        return check_error(interp.error(), "Interpreter::compile");
    }
    vm::RunOptions ro;
    ro.budget = budget;
    // One stack for both runs: r10 is the same, so programs that compute with it compare too.
    alignas(16) static uint8_t stack[vm::kStackSize * vm::kMaxCallDepth];
    ro.stack = stack;
    std::vector<uint8_t> mem(init.size());
    vm::RunResult res[2];
    std::vector<uint8_t> after[2];
    for (int e = 0; e < 2; ++e) {
        std::copy(init.begin(), init.end(), mem.begin());
        vm::Env env;
        env.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        const std::array<uint64_t, 5> args{reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0};
        res[e] = e == 0 ? interp->run(env, args, ro) : jit->run(env, args, ro);
        after[e] = mem;
    }
    const vm::RunResult& i = res[0];
    const vm::RunResult& j = res[1];
    std::string d;
    if (i.trap.has_value() != j.trap.has_value()) {
        d = fmt::format("trap: interpreter '{}', JIT '{}'", i.trap ? i.trap->message : "none", j.trap ? j.trap->message : "none");
    } else if (i.trap) {
        if (i.trap->kind != j.trap->kind || i.trap->pc != j.trap->pc || i.trap->message != j.trap->message)
            d += fmt::format("trap: interpreter {} '{}', JIT {} '{}'; ", vm::to_string(i.trap->kind), i.trap->message,
                             vm::to_string(j.trap->kind), j.trap->message);
    } else if (i.r0 != j.r0) {
        d += fmt::format("r0: interpreter {:#x}, JIT {:#x}; ", i.r0, j.r0);
    }
    if (i.insns != j.insns) d += fmt::format("insns: interpreter {}, JIT {}; ", i.insns, j.insns);
    if (after[0] != after[1]) d += "the buffer differs; ";
    if (!d.empty()) violation(fmt::format("engines disagree (budget {}): {}\n{}", budget, d, vm::disassemble_program(prog.insns)));
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(engines_agree)
