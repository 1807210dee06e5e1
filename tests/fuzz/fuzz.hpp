// bpfsim's own fuzz targets (libFuzzer): one function per target, shared by the fuzzers
// (tests/fuzz/*.cpp with BPFSIM_FUZZ_ENTRY, built in build-fuzz with clang) and by the
// regression tests (tests/test_fuzz_regressions.cpp, any compiler), which replay every input
// under tests/fuzz/regressions/TARGET/ through the same function.
//
// A target checks a property; when it does not hold it throws Violation (the fuzzer entry
// turns that into an abort, so libFuzzer records the input). Anything else that escapes,
// a sanitizer report, a hang or an allocation over the limit is a crash as well.
#pragma once

#include "harness/harness.hpp"
#include "vm/vm.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpfsim::fuzz {

using Bytes = std::span<const uint8_t>;

struct Violation : std::runtime_error {
    using std::runtime_error::runtime_error;
};
[[noreturn]] void violation(const std::string& what);

// An error a parser returned for bad input is fine, unless it says bpfsim itself failed.
void check_error(const Error& e, const char* what);

// The targets.
void elf(Bytes data);                  // ElfFile / Object from bytes, linking, a world
void btf(Bytes data);                  // Btf::parse, dumps (C, raw, JSON), to_bytes round trip
void btf_ext(Bytes data);              // u32 BTF length, the BTF, then .BTF.ext
void core(Bytes data);                 // an object's CO-RE relocations against a kernel BTF
void scenario(Bytes data);             // a scenario file, loaded and run
void asm_text(Bytes data);             // assemble, disassemble, assemble again: same instructions
void verifier_soundness(Bytes data);   // accepted programs never fault in the checked interpreter
void engines_agree(Bytes data);        // interpreter and checked JIT: same results

// Files the targets read: the build's corpus directory (compiled BPF objects, the decompressed
// kernel BTF). BPFSIM_FUZZ_CORPUS_DIR in the environment overrides the built-in path.
std::filesystem::path corpus_dir();

// Consumes fuzz input as numbers; reads past the end give zeros.
class Reader {
public:
    explicit Reader(Bytes d) : d_(d) {}
    bool empty() const { return pos_ >= d_.size(); }
    std::size_t left() const { return empty() ? 0 : d_.size() - pos_; }
    uint8_t u8() { return empty() ? 0 : d_[pos_++]; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }
    uint64_t u64() { return u32() | (uint64_t{u32()} << 32); }
    // A number below n (0 when n is 0).
    uint32_t below(uint32_t n) { return n == 0 ? 0 : (n <= 256 ? u8() % n : u16() % n); }
    bool chance(unsigned pct) { return u8() % 100 < pct; }
    Bytes take(std::size_t n) {
        n = std::min(n, left());
        Bytes b = d_.subspan(pos_, n);
        pos_ += n;
        return b;
    }
    Bytes rest() { return take(left()); }

private:
    Bytes d_;
    std::size_t pos_ = 0;
};

// A relocatable BPF ELF object: one program (function "prog") in `section`, a GPL license,
// legacy maps (struct bpf_map_def) and R_BPF_64_64 relocations of lddw instructions to them.
struct MapSpec {
    std::string name;
    uint32_t type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0;
};
struct ObjectSpec {
    std::string section;
    std::vector<vm::Insn> insns;
    std::vector<MapSpec> maps;
    std::vector<std::pair<std::size_t, std::size_t>> map_refs;   // pc of an lddw -> map index
};
std::vector<uint8_t> object_bytes(const ObjectSpec& spec);

// Programs from fuzz input for the verifier and the engines: mostly valid instructions in the
// shapes compilers emit (bounds-checked packet access, map lookups with a NULL check, ring
// buffer reservations, loops, bpf2bpf calls), with the occasional raw instruction.
struct GenTarget {
    harness::ProgType type = harness::ProgType::Xdp;
    std::string section = "xdp";
    // Context offsets of the packet's data and data_end pointers; -1 when the context has none.
    int data_off = -1, data_end_off = -1;
    bool bare = false;          // engines: r1 = a 64-byte buffer, no maps, the engines' test helpers
    std::vector<int32_t> helpers;   // helper ids calls pick from
};
// The program types the verifier target covers (section names the loader recognises).
std::span<const GenTarget> gen_targets();
ObjectSpec generate(Reader& r, const GenTarget& t);

}  // namespace bpfsim::fuzz

// The libFuzzer entry point of one target (only in the fuzzer builds).
#ifdef BPFSIM_FUZZ_ENTRY
#include <cstdio>
#include <cstdlib>
#define BPFSIM_FUZZ_TARGET(fn)                                                        \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {    \
        try {                                                                         \
            ::bpfsim::fuzz::fn(::bpfsim::fuzz::Bytes(data, size));                    \
        } catch (const ::bpfsim::fuzz::Violation& v) {                                \
            std::fprintf(stderr, "\n==bpfsim-fuzz== property violated: %s\n", v.what()); \
            std::abort();                                                             \
        }                                                                             \
        return 0;                                                                     \
    }
#else
#define BPFSIM_FUZZ_TARGET(fn)
#endif
