// bpfsim::harness profile — where a program's time goes, for `bpfsim bench`.
//
//   counting runs (CoverageReport) ──┐
//   measured interpreter ns/run ─────┼─ build_profile() ─▶ Profile: per source line and per
//   CostTable (calibrate_costs) ─────┤                       instruction, estimated ns/run
//   helper ns/call (HelperTimes) ────┘
//
// The interpreter has no per-instruction clock, so time is apportioned: each instruction's
// execution count times the cost of its class (ALU, load, taken jump, ...) measured once by
// timing small synthetic loops of that class, scaled so that the instructions add up to the
// measured run time less the helpers' time, which is measured (each helper wrapped in a timer)
// and charged to the call sites as it is.
#pragma once

#include "common/error.hpp"
#include "harness/coverage.hpp"
#include "vm/vm.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bpfsim::harness {

// ───────────────────────────── repetitions ─────────────────────────────────

// Median, spread and moments of a sample (ns per run over repetitions).
struct Stats {
    std::size_t n = 0;
    double median = 0, mean = 0, stddev = 0, min = 0, max = 0;
    double mad = 0;   // median absolute deviation from the median
};
Stats stats(std::vector<double> samples);

// ─────────────────────── the interpreter's cost model ───────────────────────

enum class CostClass : uint8_t {
    Alu,             // 64/32-bit ALU, moves, byte swaps, sign extensions
    Mul,
    Div,             // div, sdiv, mod, smod
    Lddw,            // 64-bit immediate (both slots)
    Load,            // ldx from any region but the stack (packet, context, maps, input)
    LoadStack,       // ldx through r10
    Store,           // st/stx to any region but the stack
    StoreStack,      // st/stx through r10
    Atomic,
    JumpTaken,       // a conditional jump that jumps
    JumpFallthrough, // a conditional jump that falls through
    Ja,              // goto, may_goto
    CallHelper,      // the call itself; the helper's own time is measured apart
    CallLocal,       // bpf2bpf call (half of a call + exit pair)
    Exit,            // return from a bpf2bpf call (the other half)
    Count,
};
inline constexpr std::size_t kCostClasses = static_cast<std::size_t>(CostClass::Count);
const char* to_string(CostClass c);

// The class of the instruction (a conditional jump: JumpTaken; profiles split jumps by their
// taken counts). Loads and stores through r10 are stack accesses.
CostClass cost_class(const vm::Insn& insn, vm::Op op);

// Nanoseconds per executed instruction of each class, and per run for entering and leaving the
// interpreter (stack set-up, exit), under one dispatcher.
struct CostTable {
    vm::Dispatch dispatch = vm::Dispatch::Threaded;
    std::array<double, kCostClasses> ns{};
    double entry_ns = 0;
    double ns_of(CostClass c) const { return ns[static_cast<std::size_t>(c)]; }
};

// Times a loop of 16 instructions of each class (and an empty one, subtracted) in the
// interpreter with this dispatcher, keeping the fastest of several timings; about 50 ms.
// A class that measures at or below zero (timer noise) gets a tenth of the ALU cost.
Result<CostTable> calibrate_costs(vm::Dispatch dispatch);

// ──────────────────────────── helper time ──────────────────────────────────

// Helpers wrapped in a steady-clock timer: a trampoline per helper id (below kTimed) reads the
// clock around the call and adds to per-id counters, less the measured cost of reading the clock
// twice. A helper that calls back into the program (bpf_loop) counts the callback's time as its
// own; total_ns() counts only the outermost calls, so nothing is counted twice. The counters
// are process-wide: time one table's runs at a time.
class HelperTimes {
public:
    static constexpr int32_t kTimed = 256;
    struct Entry {
        uint64_t calls = 0;
        double ns = 0;
    };
    // The same table with every helper below kTimed going through its timer; resets the counters.
    static vm::HelperTable wrap(const vm::HelperTable& table);
    static void reset();
    // Calls and ns per helper id since reset(), timer overhead taken off (never below 0).
    static std::map<int32_t, Entry> take();
    static double total_ns();             // outermost calls only
    static double clock_overhead_ns();    // one steady_clock::now() pair, as subtracted
};

// ──────────────────────────────── profile ───────────────────────────────────

struct ProfileInsn {
    std::string program;          // the program it belongs to (tail calls: another one)
    std::size_t pc = 0;
    double count = 0;             // executions per run
    double taken = 0;             // conditional jumps: times taken per run
    double model_ns = 0;          // the cost model's ns/run, before scaling
    double est_ns = 0;            // estimated ns/run (scaled, plus helper time)
    double helper_ns = 0;         // of est_ns: the helper's measured time (calls)
    std::string file;             // source position from line_info, "" when none
    uint32_t line = 0;
    std::string text;             // disassembly
};

struct ProfileLine {
    std::string file;             // "" for instructions without line_info
    uint32_t line = 0;
    std::string source;           // the source text line_info carries
    double count = 0;             // times the line ran per run: its most executed instruction (lcov's DA)
    double insns = 0;             // its instructions executed per run
    double est_ns = 0;
};

struct Profile {
    uint64_t runs = 0;            // counting runs the counts are over
    double measured_ns = 0;       // the interpreter's ns/run the estimates add up to
    double model_ns = 0;          // what the cost model predicts (entry and helpers included)
    double scale = 1;             // measured / predicted, applied to the instructions' share
    double helper_ns = 0;         // measured helper time per run
    double entry_ns = 0;          // entering and leaving the interpreter, per run (scaled)
    bool has_lines = false;       // some program had line_info
    std::vector<ProfileLine> lines;   // hottest first
    std::vector<ProfileInsn> insns;   // hottest first
};

// The programs the counting runs entered, by (file, name) as CoverageReport keys them: their
// instructions, for classes and disassembly.
using ProfilePrograms = std::map<std::pair<std::string, std::string>, vm::Program>;

// Apportions measured_ns (the interpreter's time per run) over the counted instructions.
// helper_ns_per_call: measured ns per call by helper id (missing: 0).
Profile build_profile(const CoverageReport& counts, const ProfilePrograms& programs, uint64_t runs, const CostTable& costs,
                      double measured_ns, const std::map<int32_t, double>& helper_ns_per_call);

}  // namespace bpfsim::harness
