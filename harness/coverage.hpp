// bpfsim::harness coverage — instruction, branch and source-line coverage of programs over
// many runs and objects, written as an lcov tracefile (for genhtml) and a JSON summary.
//
//   CoverageReport report;
//   world->run_packet("xdp_count", packet, report.options());   // any number of runs, worlds, objects
//   report.write_lcov("lcov.info");
//
// Counts come from the interpreter's counting runs (vm::RunOptions::coverage/counters) and are
// kept per program, by object file and program name, so the same program run in several worlds
// (or against several kernel BTFs) adds up. Lines come from the programs' .BTF.ext line_info.
#pragma once

#include "common/error.hpp"
#include "vm/vm.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpfsim::harness {

struct CoverageCount {
    uint64_t total = 0;
    uint64_t covered = 0;
};

// Totals of a program, or of a whole report. A branch is one direction of a conditional jump
// (taken, not taken); a line is a source line (file, line) that has instructions.
struct CoverageTotals {
    CoverageCount instructions;
    CoverageCount branches;
    CoverageCount lines;
    CoverageCount functions;
};

// One program's counts over every run, with what maps them to the source (copied from the
// vm::Program when it is first counted).
struct ProgramCoverage {
    std::string file;       // the object file
    std::string name;       // the program
    std::string section;
    std::vector<uint8_t> kinds;   // per pc: 0 the second slot of an lddw, 1 an instruction, 2 a conditional jump
    std::vector<vm::LineInfo> lines;                              // sorted by pc
    std::vector<std::pair<std::size_t, std::string>> functions;   // first pc -> name, ascending
    vm::Coverage counts;

    bool is_insn(std::size_t pc) const { return pc < kinds.size() && kinds[pc] != 0; }
    bool is_branch(std::size_t pc) const { return pc < kinds.size() && kinds[pc] == 2; }
    uint64_t hits(std::size_t pc) const { return pc < counts.hits.size() ? counts.hits[pc] : 0; }
    uint64_t taken(std::size_t pc) const { return pc < counts.taken.size() ? counts.taken[pc] : 0; }
    // The line_info entry that covers pc (the last one at or before it), or nullptr.
    const vm::LineInfo* line_of(std::size_t pc) const;
    // The function pc belongs to (index into functions).
    std::size_t function_of(std::size_t pc) const;
    CoverageTotals totals() const;
};

class CoverageReport {
public:
    // Run options that count into this report: for World::run_packet / run_ctx, run_scenario
    // or Interpreter::run. The report must outlive those runs.
    vm::RunOptions options(vm::RunOptions base = {});
    // The counters of a program, created (and its line info copied) the first time.
    vm::Coverage& counters(const vm::Program& prog);

    // Registers a program with no counts, so that code that never runs shows in the report
    // (lines with count 0) too. Same as counters(prog), without using them.
    void add(const vm::Program& prog) { (void)counters(prog); }
    // Adds another report's counts (e.g. one per thread) to this one.
    void merge(const CoverageReport& other);

    // By (object file, program name).
    const std::map<std::pair<std::string, std::string>, ProgramCoverage>& programs() const { return programs_; }
    CoverageTotals totals() const;   // lines and functions as the lcov records count them
    void clear() { programs_.clear(); }

    // An lcov tracefile: one record per source file, merging every program and object that has
    // code from it. DA is a line's execution count (its most executed instruction, summed over
    // programs); BRDA has two branches per conditional jump, 0 taken and 1 not taken ("-" when
    // the jump never ran); FN/FNDA are the BPF functions (programs and subprograms) by name.
    // Relative source paths are made absolute against `base` (default: the current directory).
    // Programs without line info are left out.
    std::string lcov(std::string_view test_name = {}, const std::filesystem::path& base = {}) const;
    // A JSON summary: per program its totals, functions, and hits and taken per pc; then the totals.
    std::string json(int indent = 2) const;

    // The same written to a file; the number of bytes written.
    Result<std::size_t> write_lcov(const std::filesystem::path& path, std::string_view test_name = {},
                                   const std::filesystem::path& base = {}) const;
    Result<std::size_t> write_json(const std::filesystem::path& path, int indent = 2) const;

private:
    std::map<std::pair<std::string, std::string>, ProgramCoverage> programs_;
};

}  // namespace bpfsim::harness
