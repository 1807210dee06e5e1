// What `bpfsim run` and `bpfsim bench` read from the command line: programs (objects, .data,
// assembly, raw bytes), input memory, the world an object's program runs in and its context.
// One set of options and parsers, so both verbs take the same inputs the same way.
#pragma once

#include "harness/harness.hpp"
#include "vm/vm.hpp"

#include <boost/program_options.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bpfsim::cli {

namespace po = boost::program_options;

// "de ad be ef", "0xdeadbeef", "de:ad:be:ef"; errors (Usage) name `what`.
std::vector<uint8_t> parse_hex_bytes(const std::string& text, const std::string& what);
// A number from the command line: decimal, 0x hex, or negative (two's complement).
uint64_t parse_number(const std::string& text, const std::string& what);
bool is_elf(const std::string& path);
// The program to run: the one named, or the object's first.
std::string program_name(const harness::Object& obj, const std::string& named, const std::string& path);
// Reads instructions from an ELF object (with --prog), a .data file, assembly text or raw bytes
// (format: auto|elf|data|asm|raw).
vm::Program load_program(const std::string& input, const std::string& prog, const std::string& format);

// --packet --ctx --seed --mem --mem-file --arg --field --map-init --kconfig --ncpus --task --btf
void add_input_options(po::options_description& d);
// --mem HEX or --mem-file FILE: input memory for r1/r2.
std::vector<uint8_t> input_memory(const po::variables_map& vm);
// --seed --ncpus --btf --kconfig (the engine is left to the verb).
harness::WorldOptions world_options(const po::variables_map& vm);
// --task (a task that becomes current) and --map-init, in a world just created.
void prepare_world(harness::World& w, const po::variables_map& vm);
// --packet: the packet bytes (empty when not given).
std::vector<uint8_t> packet_input(const po::variables_map& vm);
// --ctx, --arg and --field: what a tracing program's context is built from.
harness::ContextSpec context_spec(const po::variables_map& vm);

}  // namespace bpfsim::cli
