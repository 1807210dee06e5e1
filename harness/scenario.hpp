// bpfsim::harness — scenarios: a world, steps that run programs or change the world, and
// what must come out. Read from YAML; errors name the file and line.
#pragma once

#include "harness/harness.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace bpfsim::harness {

// A field that points to another kernel object of the world: `path: "@name"`.
struct ScenarioRef {
    std::size_t line = 0;
    std::string path;            // the field (or, in a step's args, the argument's index)
    std::string target;          // an object's or a task's name
};

struct ScenarioTask {
    std::string name;            // how steps refer to it; defaults to comm
    TaskSpec spec;
    std::string parent;          // another task's name
    std::vector<ScenarioRef> refs;   // pointer fields to objects or tasks
};

// `world.objects`: any struct of the kernel BTF (file, sock, inode, ...), zeroed, with fields
// set by path as tasks' are; tasks, other objects and step arguments point to it by "@name".
struct ScenarioObject {
    std::size_t line = 0;
    std::string name;
    std::string type;                                             // "file", "struct sock", a typedef
    std::vector<std::pair<std::string, uint64_t>> fields;
    std::vector<std::pair<std::string, std::string>> strings;     // char arrays and char pointers
    std::vector<ScenarioRef> refs;
};

// A key, map value or record as the scenario gives it, kept until the object's BTF encodes it
// (see README "Scenarios"): a number, text (a hex string, a char array, an enumerator), a
// list (bytes, or an array's elements) or a mapping (struct/union members, DATASEC variables).
struct ScenarioValue {
    // User-provided: clang 14 cannot define the implicit one of a type that holds
    // pair<string, itself> (libstdc++'s pair asks whether the type is default constructible).
    ScenarioValue() {}
    enum class Kind : uint8_t { Scalar, List, Mapping };
    Kind kind = Kind::Scalar;
    std::string text;                                            // Scalar
    bool quoted = false;                                         // a quoted scalar is text, never a number
    std::vector<ScenarioValue> items;                            // List
    std::vector<std::pair<std::string, ScenarioValue>> fields;   // Mapping, in the file's order
    std::size_t line = 0;
};

// One map entry: {key: K, value: V} or {key: K, values: [V per CPU]}; keyless maps (queue,
// stack, bloom filter) take a value only.
struct ScenarioEntry {
    std::size_t line = 0;
    std::optional<ScenarioValue> key;
    std::optional<ScenarioValue> value;
    std::vector<ScenarioValue> values;   // per-CPU maps: one per CPU
};

// A step's `update:` / `delete:` of a map entry, done before the step's run.
struct ScenarioMapChange {
    std::size_t line = 0;
    std::string map;
    bool erase = false;
    ScenarioEntry entry;
};

// `expect.maps.NAME`: the map's entries after the run.
struct ScenarioMapExpect {
    std::size_t line = 0;
    std::string map;
    std::vector<ScenarioEntry> entries;  // must be present with these values (mappings: listed fields only)
    std::vector<ScenarioValue> absent;   // keys that must not be present
    bool partial = false;                // false: no other entries (arrays: every other entry zero)
};

// `expect.records.NAME`: what a ring buffer or perf event array received during the run.
struct ScenarioRecordsExpect {
    std::size_t line = 0;
    std::string map;
    std::string type;                    // "struct event": decodes records (object .BTF, then the kernel's)
    std::vector<ScenarioValue> records;  // in order; mappings need `type`, otherwise hex or bytes
    bool partial = false;                // false: exactly these; true: the first records are these
};

struct ScenarioHelperExpect {
    std::size_t line = 0;
    std::string name;                    // as given
    int32_t id = 0;
    uint64_t calls = 0;
};

// `expect.verifier`: the kernel verifier's verdict on the program, and lines its log must
// contain, in order (the kernel selftests' __success / __failure / __msg).
struct ScenarioVerifierExpect {
    std::size_t line = 0;
    bool accept = true;
    std::vector<std::string> messages;
};

struct ScenarioExpect {
    std::optional<ScenarioVerifierExpect> verifier;
    std::optional<std::string> ret;      // a number or a symbolic action ("XDP_DROP")
    std::vector<std::string> trace;      // exact messages, or /regex/; without the trailing newline
    bool trace_given = false;
    std::optional<std::string> packet;   // hex of the packet afterwards
    std::vector<ScenarioMapExpect> maps;
    std::vector<ScenarioRecordsExpect> records;
    std::vector<ScenarioHelperExpect> helpers;   // calls per helper in this run
};

// `fuzz:`: what must hold for every input `bpfsim fuzz --scenario` gives this step's program
// (harness/fuzz.hpp). A run that breaks one is an assertion finding. `expect:` is checked for
// the step's own input only.
struct ScenarioFuzzMap {
    std::size_t line = 0;
    std::string map;
    std::optional<uint64_t> max_entries;  // entries present after a run, at most
    std::vector<ScenarioValue> absent;    // keys that must never be there
};

struct ScenarioFuzz {
    std::size_t line = 0;
    std::vector<std::string> returns;    // allowed return values (numbers or names); empty: any
    std::vector<std::string> forbid_trace;   // no trace message may be (or /match/) one of these
    std::optional<uint64_t> max_insns;   // instructions per run, at most
    std::vector<ScenarioHelperExpect> max_helpers;   // calls per run, at most (`calls` is the limit)
    std::vector<ScenarioFuzzMap> maps;
};

struct ScenarioStep {
    std::size_t line = 0;                // in the scenario file
    std::string name;
    // A run of a program, or a change of the world (one of these).
    std::string run;                     // program name or section
    std::string current;                 // task to make current for this step and after
    std::optional<uint64_t> advance_ns;  // clock change
    std::vector<ScenarioMapChange> changes;   // map updates and deletes
    ContextSpec ctx;
    std::vector<ScenarioRef> ctx_refs;   // args ("0", "1", ...) and fields given as "@name"
    std::optional<std::vector<uint8_t>> packet;
    ScenarioExpect expect;
    std::optional<ScenarioFuzz> fuzz;
};

struct Scenario {
    std::filesystem::path file;
    std::filesystem::path object;        // resolved path of the BPF object
    std::vector<std::filesystem::path> btf;   // kernel BTFs; the scenario runs once per BTF
    WorldOptions world;
    std::vector<ScenarioTask> tasks;
    std::vector<ScenarioObject> objects;
    std::string current;
    std::filesystem::path map_init;      // optional JSON (see load_map_init)
    // world.maps: initial entries per map, written after map_init.
    std::vector<std::pair<std::string, std::vector<ScenarioEntry>>> maps;
    std::size_t maps_line = 0;
    std::vector<ScenarioStep> steps;
};

// Reads a scenario. Relative paths (object, btf, map_init) are taken from the scenario's
// directory, then from each of `search` (e.g. the build's corpus directory).
Result<Scenario> load_scenario(const std::filesystem::path& file, const std::vector<std::filesystem::path>& search = {});

struct StepOutcome {
    std::string name;
    bool passed = true;
    // Why the step was not checked (passed stays true): a verdict bpfsim cannot give yet.
    std::optional<std::string> skipped;
    std::vector<std::string> failures;   // "return: expected XDP_DROP (1), got 2 (XDP_PASS)"
    std::vector<std::string> trace_lines;   // as trace_pipe prints them
    // Records each ring buffer / perf event array received during the run (ring buffers are
    // consumed after every run, as a polling consumer would).
    std::map<std::string, std::vector<std::vector<uint8_t>>> records;
    std::optional<ProgramRun> run;
};

struct ScenarioOutcome {
    std::filesystem::path btf;           // the kernel BTF it ran against, if any
    std::vector<StepOutcome> steps;
    std::optional<Error> error;          // set up or run failure (not an assertion)
    bool passed() const;
};

// What a verifier says of a program: `expect.verifier` compares with it. The harness does not
// depend on the verifier model (bpfsim_verifier links the harness); callers plug it in, as
// `bpfsim test` does with verifier::verify (see verifier/scenario_verifier.hpp).
struct VerifierVerdict {
    bool accepted = false;
    std::string message;       // the error (kernel text), "" when accepted
    std::size_t pc = 0;
    std::string source_line;
    std::string log;           // the verifier log, searched for `messages`
};
using VerifierFn = std::function<Result<VerifierVerdict>(const Object& obj, std::string_view program, const WorldOptions& world)>;

// Called just before a step's program runs, with the world as the steps before it left it and
// the packet (packet programs) or context bytes the step gives it; returning false ends the
// scenario there, without that run (`bpfsim bench --scenario` takes the world over this way).
using StepHook = std::function<bool(World& world, const ScenarioStep& step, const std::vector<uint8_t>& input)>;

// Runs a scenario against one of its BTFs (index into Scenario::btf; ignored when it has none).
// Without a verifier, steps expecting a rejection are skipped (StepOutcome::skipped) and
// expected acceptance is not checked.
ScenarioOutcome run_scenario(const Scenario& s, std::size_t btf_index = 0, const vm::RunOptions& ro = {},
                             const VerifierFn& verifier = nullptr, const StepHook& before_run = nullptr);

// The world of a scenario as step `step` finds it: set up as run_scenario does, every step
// before it done (programs run with `ro`, expectations not checked) and the step's own world
// changes (current, advance_ns, update, delete) applied. `ctx` is the step's context spec with
// "@name" references resolved. For running the step's program on other inputs (fuzzing).
// `obj` must be the scenario's object and outlive the world.
struct ScenarioWorld {
    std::unique_ptr<World> world;
    ContextSpec ctx;
};
Result<ScenarioWorld> scenario_world(const Scenario& s, const Object& obj, std::size_t btf_index, std::size_t step,
                                     const vm::RunOptions& ro = {});

// A step's `fuzz:` block made ready for checking many runs: keys encoded once through the
// object's BTF. check() gives one line per broken invariant (none: every one holds).
class FuzzOracle {
public:
    static Result<FuzzOracle> create(const Scenario& s, const ScenarioFuzz& fuzz, const Object& obj);
    std::vector<std::string> check(World& w, ProgType type, const ProgramRun& run) const;
    FuzzOracle(FuzzOracle&&) noexcept;
    FuzzOracle& operator=(FuzzOracle&&) noexcept;
    ~FuzzOracle();
    struct Impl;
private:
    explicit FuzzOracle(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The number a return value name stands for ("XDP_DROP" -> 1, "TC_ACT_SHOT" -> 2, "-1" -> -1).
std::optional<int64_t> parse_return_value(std::string_view text);

}  // namespace bpfsim::harness
