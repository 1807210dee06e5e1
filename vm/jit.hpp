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
#include <span>

namespace bpfsim::vm {

// Optimisations, each a pattern of clang's BPF output folded into fewer x86 instructions (see
// vm/jit.cpp "Optimisations").
inline constexpr uint32_t kJitOptLea = 1;         // rA = rB; rA += rC|imm  -> lea
inline constexpr uint32_t kJitOptMovzx = 2;       // wA = wB; wA &= 0xff|0xffff  -> movzx
inline constexpr uint32_t kJitOptBe16 = 4;        // two byte loads + shift + or -> one 16-bit load + rol
inline constexpr uint32_t kJitOptStackRegs = 8;   // the most used 8-byte stack slots live in registers (off by
                                                  // default: no gain where rbp-relative spills are renamed)
inline constexpr uint32_t kJitOptAddr = 16;       // rS = rB; rS += rC; load [rS+o], rS dead -> load [rB+rC+o]
inline constexpr uint32_t kJitOptBranch = 32;     // if (c) goto +1; goto L  ->  if (!c) goto L
inline constexpr uint32_t kJitOptGroup = 64;      // checked mode: one bounds test for loads from one base
inline constexpr uint32_t kJitOptAlign = 128;     // loop heads and targets only jumps reach 16-byte aligned
inline constexpr uint32_t kJitOptRmw = 256;       // rX = *(u64 *)(r10 + o); rX += rY; store back, rX dead -> add [rbp + o], rY
inline constexpr uint32_t kJitOptKnownBits = 512; // no `& 0xffff` of a value with no bits above 15 (joins included)
inline constexpr uint32_t kJitOptSink = 1024;     // rA op= rB; ...; rB = rA, rA dead -> rB op= rA (op commutes)
inline constexpr uint32_t kJitOptDefault = kJitOptLea | kJitOptMovzx | kJitOptBe16 | kJitOptAddr | kJitOptBranch |
                                           kJitOptGroup | kJitOptAlign | kJitOptRmw | kJitOptKnownBits | kJitOptSink;

struct JitOptions {
    bool checked = true;
    // Optimisations (bits of kJitOpt*). Checked mode uses only those that keep every trap at
    // the interpreter's pc with its message (lea, movzx, address folding, grouped checks,
    // alignment).
    uint32_t optimize = kJitOptDefault;
    // Tests only: BPF register i lives in the x86 register of BPF register (i + rotate) % 11 of
    // the default mapping, which shakes out code that assumes a fixed mapping.
    unsigned rotate = 0;
};

class Jit {
public:
    // Validates prog as Interpreter::compile does (same errors), then generates code.
    static Result<Jit> compile(const Program& prog, const HelperTable& helpers, JitOptions opts = {});

    // Runs from pc 0 with r1..r5 as given, r10 at the top of a fresh stack. Same contract as
    // Interpreter::run (RunOptions::budget is honoured in checked mode; dispatch and coverage
    // are ignored).
    RunResult run(Env& env, const std::array<uint64_t, 5>& args = {}, const RunOptions& opts = {}) const;

    const Program& program() const;
    std::size_t code_size() const;   // bytes of machine code
    std::span<const uint8_t> code() const;   // the machine code (e.g. for objdump -b binary)

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
