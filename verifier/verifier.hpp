// bpfsim::verifier::verify — a model of the Linux 6.18 verifier (kernel/bpf/verifier.c) over a
// linked program: the kernel's verdict, its message, the failing pc and source line, and
// statistics, without root and without the bpf() syscall.
//
// An abstract interpreter in the kernel's shape: check_cfg (jump ranges, unreachable code,
// last instruction), then a depth-first walk of every path (do_check) over register states
// (NOT_INIT, scalars in the Scalar domain, ctx/stack/map/packet/mem/BTF-id/func/socket
// pointers with the kernel's off/var_off/id/range/ref_obj_id), per-frame stacks of byte slots
// (INVALID, MISC, ZERO, SPILL of a full register), memory-access checks per pointer type
// (the context through ctx_access()), helper calls against their prototypes, bpf-to-bpf calls
// and bpf_loop-style callbacks, the per-type helper sets and kfunc checks (helper_access.hpp),
// return-code and reference-leak checks at exit, and state pruning at prune points
// (states_equal with range containment over the statically live registers and the stack slots
// read later; scalars whose value never matters are imprecise and equal to anything — a
// conservative precision tracking, see Checker::Need), with the 1,000,000-instruction limit.
//
// The model assumes a privileged loader (root, as `bpfsim kernel-verify`): uninitialised
// stack may be read, pointers may be compared and subtracted. VerifyOptions::privileged =
// false selects the unprivileged rules for reads of uninitialised stack and pointer comparison.
#pragma once

#include "harness/harness.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace bpfsim::verifier {

struct VerifyOptions {
    unsigned log_level = 1;                  // 1: the failing path and the error; 2: every instruction with its state
    const btf::Btf* kernel_btf = nullptr;    // typed tracing arguments (ctx_access), may be null
    bool privileged = true;                  // root (CAP_BPF + CAP_PERFMON)
    std::size_t insn_limit = 1'000'000;      // BPF_COMPLEXITY_LIMIT_INSNS
};

struct Verdict {
    bool accepted = false;
    std::string message;        // the kernel's text for the error (possibly several lines), "" when accepted
    std::size_t pc = 0;         // the failing instruction
    std::string source_line;    // "file.c:42: ..." for pc, when the object has line info
    std::size_t insns_processed = 0;
    std::size_t max_states_per_insn = 0, total_states = 0, peak_states = 0;
    std::string log;            // as the kernel prints it at the requested level
};

// Never throws for a bad program (the verdict says why); an Error only for bpfsim's own
// failures (none expected).
Verdict verify(const harness::Object& obj, const harness::LinkedProgram& lp, const VerifyOptions& opts = {});

// The same for bare instructions (tests): maps given directly, no object.
Verdict verify_insns(const std::vector<vm::Insn>& insns, harness::ProgType type, std::string_view attach,
                     const std::vector<harness::MapDef>& maps, const VerifyOptions& opts = {});

}  // namespace bpfsim::verifier
