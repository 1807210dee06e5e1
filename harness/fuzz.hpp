// bpfsim::harness fuzzing — a program's inputs as one byte string, and the oracles that judge
// each run of it. The engine that makes the byte strings (libFuzzer) is cli/cmd_fuzz.cpp's.
//
//   bytes ──decode_fuzz_input(layout)──▶ FuzzInput {map entries, packet or context}
//   FuzzTarget::run(bytes) ──▶ FuzzRun {the interpreter's run, its coverage, a finding?}
//
// Oracles, per input: the checked interpreter's trap (memory fault, helper misuse, instruction
// budget, ...); the checked JIT run on the same input in a second world, compared with the
// interpreter (return value, trap, instructions, packet, trace, helper calls, records, maps);
// and a scenario step's `fuzz:` invariants (harness/scenario.hpp).
//
// Speed: run() keeps its worlds between inputs and puts them back as they were (map memory,
// map entries, clock, trace); the PRNG of bpf_get_prandom_u32 goes on. A finding is only
// reported once replay() — fresh worlds, exactly what `bpfsim run --input` does — shows it too.
#pragma once

#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfsim::harness {

// `--fuzz-map NAME[:N]`: N entries of map NAME come from the input (default 1).
struct FuzzMapSpec {
    std::string name;
    uint32_t entries = 1;
};
Result<FuzzMapSpec> parse_fuzz_map_spec(std::string_view text);

inline constexpr std::size_t kFuzzMinPacket = 14;     // an Ethernet header, as BPF_PROG_TEST_RUN wants
inline constexpr std::size_t kFuzzMaxPacket = 3520;   // the kernel's XDP test-run limit: a page less headroom and tailroom

// How input bytes map onto what a program reads. The input is
//   [map part: for each fuzzed map in order, `entries` records of key then value bytes]
//   [data: the rest]
// A record's key is key_size bytes (none for queue, stack and bloom filter maps), its value
// value_size bytes; bytes past the end of the input are zero. Array keys are taken modulo
// max_entries. Packet programs get the data as the packet (cut to kFuzzMaxPacket, zero-padded
// to kFuzzMinPacket); context programs get base_ctx with its first bytes replaced by the data
// (bytes past the context are ignored).
struct FuzzLayout {
    bool packet = true;
    std::vector<uint8_t> base_ctx;     // context programs: the context the data overlays
    struct MapPart {
        std::string name;
        std::size_t index = 0;         // in Object::maps()
        MapType type = MapType::Unspec;
        uint32_t key_size = 0, value_size = 0, max_entries = 0;
        uint32_t entries = 1;
        bool keyless = false;
        std::size_t record() const { return (keyless ? 0 : key_size) + value_size; }
    };
    std::vector<MapPart> maps;
    std::size_t map_bytes() const;
    // A -max_len that reaches everything: the map part and a full Ethernet frame (1514) or context.
    std::size_t max_len() const;
};

struct FuzzMapEntry {
    std::size_t part = 0;              // index into FuzzLayout::maps
    std::vector<uint8_t> key, value;
};

struct FuzzInput {
    std::vector<FuzzMapEntry> entries;
    std::vector<uint8_t> data;         // the packet, or the whole context
};

// Deterministic, total: every byte string decodes.
FuzzInput decode_fuzz_input(const FuzzLayout& layout, std::span<const uint8_t> bytes);
// The input that decodes to this packet or context with all-zero map records (a seed).
std::vector<uint8_t> encode_fuzz_input(const FuzzLayout& layout, std::span<const uint8_t> data);
// The layout for a program; map types whose entries cannot be written from user space
// (ring buffers, prog arrays, ...) are refused with a Usage error naming the map.
Result<FuzzLayout> make_fuzz_layout(const Object& obj, const ProgramDef& def, const std::vector<FuzzMapSpec>& maps,
                                    std::vector<uint8_t> base_ctx);

struct FuzzFinding {
    enum class Kind : uint8_t { MemoryFault, HelperMisuse, Budget, Trap, Assertion, Divergence };
    Kind kind = Kind::Trap;
    std::string message;
    std::optional<std::size_t> pc;
    std::string source;                // "file.c:42: text", "" without line info
};
const char* to_string(FuzzFinding::Kind kind);   // "memory fault", "budget exhausted", ...

struct FuzzOptions {
    std::string program;               // name or section
    WorldOptions world;                // without a scenario
    const Scenario* scenario = nullptr;   // with one: its world as step `step` finds it
    std::size_t step = 0;
    std::size_t btf_index = 0;
    std::vector<FuzzMapSpec> maps;
    uint64_t budget = 1'000'000;       // instructions per run
    bool differential = true;          // run the checked JIT too and compare
    // Changes the second (JIT) world's options: for testing the comparison itself.
    std::function<void(WorldOptions&)> second_world;
};

struct FuzzRun {
    ProgramRun run;                    // the interpreter's
    std::optional<FuzzFinding> finding;
};

struct FuzzStats {
    uint64_t runs = 0;
    uint64_t rebuilds = 0;             // worlds made afresh (state that could not be put back)
    uint64_t unconfirmed = 0;          // findings of the reused worlds that fresh ones did not show
};

class FuzzTarget {
public:
    // `obj` must outlive the target.
    static Result<std::unique_ptr<FuzzTarget>> create(const Object& obj, FuzzOptions opts);
    ~FuzzTarget();

    // One input in the reused worlds; a finding is confirmed by replay() before it is returned.
    // Errors (bpfsim cannot run the program) are thrown as Error.
    FuzzRun run(std::span<const uint8_t> bytes);
    // One input in fresh worlds: the reference behaviour, what `bpfsim run --input` shows.
    FuzzRun replay(std::span<const uint8_t> bytes);

    const FuzzLayout& layout() const;
    const ProgramDef& def() const;
    const vm::Program& program() const;   // the main program, as bound in the interpreter's world
    // Inputs to start from: the scenario's packets for this program (or its step's context),
    // else a UDP packet / the default context; encoded with zero map records.
    std::vector<std::vector<uint8_t>> seeds() const;
    // Immediates the program compares against and 64-bit constants it loads (for a dictionary).
    std::vector<uint64_t> constants() const;
    // The counters of the last run: every program it ran (the main one first) with its counts.
    const std::vector<std::pair<const vm::Program*, const vm::Coverage*>>& coverage() const;
    // Instructions of the main program ever run over every run(), and its instruction count.
    std::size_t covered() const;
    std::size_t instructions() const;
    const FuzzStats& stats() const;

    struct Impl;
private:
    explicit FuzzTarget(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace bpfsim::harness
