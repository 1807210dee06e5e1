// bpfsim::harness — the world programs run in: object files, test formats, environments.
//
// The one public header of the harness module.
#pragma once

#include "common/error.hpp"
#include "vm/vm.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bpfsim::harness {

// ───────────────────────────── bpf_conformance ────────────────────────────

// One `.data` test of the bpf_conformance suite.
struct ConformanceCase {
    std::string file;
    std::string asm_text;                  // `-- asm`
    std::size_t asm_line = 0;              // line of the first asm line in the file
    std::vector<uint64_t> raw;             // `-- raw`: 64-bit instruction words
    std::vector<uint8_t> mem;              // `-- mem`: input bytes, r1 = pointer, r2 = length
    std::optional<uint64_t> result;        // `-- result`
    std::string error;                     // `-- error`: expected error text (a regular expression)
    bool no_jit = false;                   // `-- no jit`
};

// Parses a .data file; errors name the file and line.
Result<ConformanceCase> parse_conformance(const std::filesystem::path& file);
Result<ConformanceCase> parse_conformance_text(std::string_view text, std::string file = "<data>");

struct ConformanceOutcome {
    bool passed = false;
    std::string detail;     // why it failed, or "" when it passed
    uint64_t r0 = 0;
    uint64_t insns = 0;
};

// Assembles (and, when both are given, checks asm against raw), runs, compares.
ConformanceOutcome run_conformance(const ConformanceCase& c, const vm::RunOptions& opts = {});

// Runs a program given as instruction bytes against input memory, as the bpf_conformance
// plugin protocol does: r1 = memory, r2 = its length. Errors (invalid program, trap) as Error.
Result<vm::RunResult> run_raw(std::span<const vm::Insn> insns, std::vector<uint8_t>& mem,
                              const vm::RunOptions& opts = {});

// ─────────────────────────────── ELF objects ──────────────────────────────

struct ElfSection {
    std::size_t index = 0;
    std::string name;
    uint32_t type = 0;
    uint64_t flags = 0;
    std::vector<uint8_t> data;     // empty for NOBITS
    uint64_t size = 0;
    uint32_t link = 0;             // sh_link
    uint32_t info = 0;             // sh_info: for SHT_REL, the section the relocations apply to
    uint64_t entsize = 0;
};

struct ElfSymbol {
    std::string name;
    std::size_t section = 0;
    uint64_t value = 0;
    uint64_t size = 0;
    uint8_t type = 0;    // STT_*
    uint8_t bind = 0;    // STB_*
};

// A BPF ELF object read through libelf with every offset bounds-checked.
// This is the raw view; programs are listed per executable section and function symbol.
class ElfFile {
public:
    static Result<ElfFile> open(const std::filesystem::path& path);
    static Result<ElfFile> from_bytes(std::vector<uint8_t> bytes, std::string name);

    const std::string& path() const { return path_; }
    const std::vector<ElfSection>& sections() const { return sections_; }
    const std::vector<ElfSymbol>& symbols() const { return symbols_; }
    const ElfSection* section(std::string_view name) const;
    const ElfSection* section(std::size_t index) const;   // by ELF section index

    struct ProgramRef {
        std::string name;        // function symbol, or the section name when there is none
        std::string section;
        std::size_t section_index = 0;
        uint64_t offset = 0;     // byte offset in the section
        uint64_t size = 0;
    };
    // Every global function in an executable section (one per section if there are none).
    std::vector<ProgramRef> programs() const;

    // The instructions of one program, found by function or section name.
    // Programs that need relocations (maps, globals, calls into .text) are refused
    // with a clear error until the object loader links them.
    Result<vm::Program> program(std::string_view name) const;

private:
    std::string path_;
    std::vector<ElfSection> sections_;
    std::vector<ElfSymbol> symbols_;
};

}  // namespace bpfsim::harness
