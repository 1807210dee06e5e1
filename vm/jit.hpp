// bpfsim::vm — an x86-64 JIT (xbyak) with the interpreter's exact semantics.
//
//   Program + HelperTable ──Jit::compile()──▶ Jit ──run(Env&)──▶ RunResult (as Interpreter::run)
//
// Checked mode (the default) bounds-checks every load, store and atomic against Env::mem and
// counts the instruction budget per straight-line region exactly as the interpreter does, so
// traps (kind, pc, message) and RunResult::insns match. Unchecked mode drops both (memory
// checks and budget: RunResult::insns is 0); only for verifier-accepted programs.
//
// Callbacks (Env::call_function from bpf_loop & co.) run in the interpreter, which shares the
// run's stack, frames and budget. Tail calls (Env::request_tail_call) compile the target lazily
// with this Jit's helper table and options and continue in its code, in the same frame.
#pragma once

#include "vm/vm.hpp"

#include <memory>

namespace bpfsim::vm {

struct JitOptions {
    bool checked = true;
};

class Jit {
public:
    // Validates prog as Interpreter::compile does (same errors), then generates code.
    static Result<Jit> compile(const Program& prog, const HelperTable& helpers, JitOptions opts = {});

    // Runs from pc 0 with r1..r5 as given, r10 at the top of a fresh stack. Same contract as
    // Interpreter::run (RunOptions::budget is honoured in checked mode; dispatch and coverage
    // are ignored).
    RunResult run(Env& env, std::array<uint64_t, 5> args = {}, const RunOptions& opts = {}) const;

    const Program& program() const;
    std::size_t code_size() const;   // bytes of machine code

    // Whether the JIT has an emitter for op (every row of vm/opcodes.def; checked at compile
    // time by -Werror=switch in the emitter, and by the [jit] tests).
    static bool has_emitter(Op op);

    Jit(Jit&&) noexcept;
    Jit& operator=(Jit&&) noexcept;
    ~Jit();

    struct Impl;
private:
    explicit Jit(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace bpfsim::vm
