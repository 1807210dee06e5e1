// `bpfsim test` results and reports: one case per step × scenario × kernel BTF, written as
// human lines, TAP 13, JUnit XML or JSON; JSON results of shards are read back by --merge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bpfsim::testrun {

// Error: the scenario could not be loaded or run. Skipped: an expectation bpfsim cannot
// check yet (a verifier verdict); failures[0] says why.
enum class Status { Passed, Failed, Error, Skipped };

const char* to_string(Status s);

struct CaseResult {
    std::string file;                  // the scenario, relative to the directory given (or its file name)
    std::string step;                  // the step's name
    std::string btf;                   // the kernel BTF's file name; empty when the scenario has none
    std::size_t unit = 0;              // position of (file, btf) in the run's sorted list
    std::size_t index = 0;             // position of the step among the unit's cases
    Status status = Status::Passed;
    uint64_t duration_ns = 0;
    std::vector<std::string> failures; // one message each; a trace mismatch as a diff
    std::vector<std::string> trace;    // trace_pipe lines, without their newline
    std::optional<int64_t> ret;        // r0 of the run

    bool passed() const { return status == Status::Passed; }
    std::string name() const;          // "file.yaml: step [btf]"
};

struct Summary {
    std::size_t passed = 0, failed = 0, errors = 0, skipped = 0;   // errors are counted in failed too
};
Summary summarize(const std::vector<CaseResult>& cases);
std::string summary_line(const Summary& s);   // "N passed, M failed" (and ", K skipped" when some were)

// Where the results came from; written to JSON so that --merge can check the shards.
struct RunInfo {
    std::optional<std::size_t> shard_index, shard_count;   // --shard I/N: 1 <= I <= N
    std::string filter;
    std::size_t units = 0;             // (file, btf) pairs of the whole run, all shards
};

struct ResultsFile {
    RunInfo info;
    std::vector<CaseResult> cases;
};

// Invalid UTF-8 bytes become "\xNN", so that every report can carry any trace line.
std::string valid_utf8(std::string_view s);

// A trace pattern: "/regex/" searches the line, anything else must equal it.
bool trace_line_matches(const std::string& pattern, const std::string& line);

// A unified-style diff ("-expected", "+actual", " both") of the expected trace against the
// actual messages; nullopt when every line matches.
std::optional<std::string> trace_diff(const std::vector<std::string>& expected, const std::vector<std::string>& actual);

// "ok   NAME" or "FAIL NAME", then the failures indented and, when failing or show_trace,
// the trace lines.
std::string human_case(const CaseResult& c, bool show_trace);

std::string tap_plan(std::size_t n);   // "TAP version 13\n1..N\n"
// "ok N - NAME", or "not ok N - NAME" and a YAML diagnostic block.
std::string tap_case(const CaseResult& c, std::size_t number);

std::string xml_escape(std::string_view s, bool attribute);
// One <testsuite> per (file, btf), one <testcase> per case, in the order given.
std::string junit_xml(const std::vector<CaseResult>& cases);

// With coverage_json (CoverageReport::json()), the results carry it as "coverage".
std::string results_json(const std::vector<CaseResult>& cases, const RunInfo& info,
                         const std::optional<std::string>& coverage_json = std::nullopt);
ResultsFile read_results_json(const std::filesystem::path& file);   // throws Error naming the file

// The cases of several result files in run order: the shards of one run (all of them, each
// once) or whole runs, one after another. Throws Error on a missing or repeated shard.
ResultsFile merge_results(const std::vector<std::filesystem::path>& files, const std::vector<ResultsFile>& results);

}  // namespace bpfsim::testrun
