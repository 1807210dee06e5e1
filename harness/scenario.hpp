// bpfsim::harness — scenarios: a world, steps that run programs or change the world, and
// what must come out. Read from YAML; errors name the file and line.
#pragma once

#include "harness/harness.hpp"

#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace bpfsim::harness {

struct ScenarioTask {
    std::string name;            // how steps refer to it; defaults to comm
    TaskSpec spec;
    std::string parent;          // another task's name
};

struct ScenarioExpect {
    std::optional<std::string> ret;      // a number or a symbolic action ("XDP_DROP")
    std::vector<std::string> trace;      // exact messages, or /regex/; without the trailing newline
    bool trace_given = false;
    std::optional<std::string> packet;   // hex of the packet afterwards
};

struct ScenarioStep {
    std::size_t line = 0;                // in the scenario file
    std::string name;
    // A run of a program, or a change of the world (one of these).
    std::string run;                     // program name or section
    std::string current;                 // task to make current for this step and after
    std::optional<uint64_t> advance_ns;  // clock change
    ContextSpec ctx;
    std::optional<std::vector<uint8_t>> packet;
    ScenarioExpect expect;
};

struct Scenario {
    std::filesystem::path file;
    std::filesystem::path object;        // resolved path of the BPF object
    std::vector<std::filesystem::path> btf;   // kernel BTFs; the scenario runs once per BTF
    WorldOptions world;
    std::vector<ScenarioTask> tasks;
    std::string current;
    std::filesystem::path map_init;      // optional JSON (see load_map_init)
    std::vector<ScenarioStep> steps;
};

// Reads a scenario. Relative paths (object, btf, map_init) are taken from the scenario's
// directory, then from each of `search` (e.g. the build's corpus directory).
Result<Scenario> load_scenario(const std::filesystem::path& file, const std::vector<std::filesystem::path>& search = {});

struct StepOutcome {
    std::string name;
    bool passed = true;
    std::vector<std::string> failures;   // "return: expected XDP_DROP (1), got 2 (XDP_PASS)"
    std::vector<std::string> trace_lines;   // as trace_pipe prints them
    std::optional<ProgramRun> run;
};

struct ScenarioOutcome {
    std::filesystem::path btf;           // the kernel BTF it ran against, if any
    std::vector<StepOutcome> steps;
    std::optional<Error> error;          // set up or run failure (not an assertion)
    bool passed() const;
};

// Runs a scenario against one of its BTFs (index into Scenario::btf; ignored when it has none).
ScenarioOutcome run_scenario(const Scenario& s, std::size_t btf_index = 0, const vm::RunOptions& ro = {});

// The number a return value name stands for ("XDP_DROP" -> 1, "TC_ACT_SHOT" -> 2, "-1" -> -1).
std::optional<int64_t> parse_return_value(std::string_view text);

}  // namespace bpfsim::harness
