// bpfsim::harness — the world programs run in: object files, test formats, environments.
//
// The one public header of the harness module.
#pragma once

#include "btf/btf.hpp"
#include "common/error.hpp"
#include "vm/vm.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bpfsim::harness {

// ───────────────────────── program and map types ──────────────────────────

// What a program receives in r1.
enum class CtxKind : uint8_t {
    None, SkBuff, XdpMd, PtRegs, TracepointRecord, U64Args, PerfEventData, BpfSock, SockOps,
    CgroupDev, SkMsg, SockAddr, Opaque,
};

enum class ProgType : uint32_t {
#define PROG_TYPE(ID, VALUE, NAME, CTX) ID = VALUE,
#include "harness/types.def"
#undef PROG_TYPE
};

enum class MapType : uint32_t {
#define MAP_TYPE(ID, VALUE, NAME) ID = VALUE,
#include "harness/types.def"
#undef MAP_TYPE
};

std::string_view to_string(ProgType t);   // bpftool's name, "sched_cls"; "type N" if unknown
std::string_view to_string(MapType t);
CtxKind ctx_kind(ProgType t);
// The program type a section name selects (libbpf's rules, then older conventions);
// ProgType::Unspec when none matches.
ProgType prog_type_for_section(std::string_view section);

// A map as an object file declares it (BTF-defined, legacy, or global data).
struct MapDef {
    enum class Origin : uint8_t { Btf, Legacy, Data, Rodata, Bss, Kconfig, Inner };
    std::string name;
    MapType type = MapType::Unspec;
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t max_entries = 0;
    uint32_t flags = 0;              // BPF_F_*
    uint64_t map_extra = 0;          // bloom filter: number of hashes in the low 4 bits
    uint32_t numa_node = 0;
    uint32_t pinning = 0;
    uint32_t btf_key_type = 0;       // type ids in the object's BTF, 0 when unknown
    uint32_t btf_value_type = 0;
    Origin origin = Origin::Btf;
    std::string section;             // where it was declared
    std::vector<uint8_t> init;       // initial value of a global-data map (one entry)
    bool frozen = false;             // .rodata: read-only to programs
    std::shared_ptr<const MapDef> inner;                        // map-in-map: the inner map's shape
    std::vector<std::pair<uint32_t, std::string>> init_slots;   // `.values = {...}`: slot -> program or map name
};

}  // namespace bpfsim::harness

// Map implementations (kept in their own file; it needs MapDef above).
#include "harness/maps.hpp"

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

// ───────────────────────────────── packets ────────────────────────────────

// Anonymous memory below 4 GiB, where 32-bit context fields can hold whole pointers.
class LowMemory {
public:
    explicit LowMemory(std::size_t size);
    ~LowMemory();
    LowMemory(const LowMemory&) = delete;
    LowMemory& operator=(const LowMemory&) = delete;
    uint8_t* data() const { return base_; }
    std::size_t size() const { return size_; }
private:
    uint8_t* base_ = nullptr;
    std::size_t size_ = 0;
};

// "de ad be ef", "0xdeadbeef", "de:ad:be:ef"; errors say where.
Result<std::vector<uint8_t>> parse_hex(std::string_view text, std::string_view what);
// Every packet of a classic pcap file (Ethernet link type), both byte orders.
Result<std::vector<std::vector<uint8_t>>> read_pcap(const std::string& path);
// A packet given on the command line: "hex:..", "file:PATH", "pcap:PATH[#N]", a path
// (pcap recognised by its magic, otherwise raw bytes), or bare hex.
Result<std::vector<uint8_t>> read_packet(const std::string& spec);

// ─────────────────────────────── trace output ─────────────────────────────

// Reads a NUL-terminated string / bytes at a program address, through the memory map.
using ReadString = std::function<std::string(uint64_t addr)>;
using ReadBytes = std::function<bool(uint64_t addr, void* out, std::size_t n)>;

// Formats as bpf_trace_printk and bpf_snprintf do: the kernel's accepted conversions
// (%d %i %u %x %X with l/ll, flags "0+- #" and a width, %c %s %p %pK %px %pi4 %pI4 %pi6
// %pI6 %pks %pus, %%); anything else is an Error, as the helper returns -EINVAL.
Result<std::string> format_printk(std::string_view fmt, std::span<const uint64_t> args, const ReadString& read_str,
                                  const ReadBytes& read_bytes);

// One bpf_trace_printk event, and its line as /sys/kernel/tracing/trace_pipe shows it.
struct TraceEvent {
    std::string comm = "<idle>";
    uint32_t pid = 0;
    uint32_t cpu = 0;
    std::string flags = "d..31";
    uint64_t ns = 0;          // the virtual clock when it was written
    std::string message;      // as formatted, including any trailing newline
};
std::string trace_pipe_line(const TraceEvent& e);

// ─────────────────────────────── BPF objects ──────────────────────────────

// One entry program of an object.
struct ProgramDef {
    std::string name;            // function symbol, or the section name for objects without symbols
    std::string section;
    ProgType type = ProgType::Unspec;
    std::string attach;          // what the section names after the type: "syscalls/sys_enter_execve"
    std::size_t section_index = 0;
    std::size_t first = 0;       // first instruction in the section
    std::size_t count = 0;       // instructions
};

// A program with its subprograms appended and every reference made explicit, ready to be
// bound to a world's maps. lddw pseudo sources: 5 (map index) and 6 (map index + value
// offset) for maps and global data, 4 for function addresses; calls are pc-relative.
struct LinkedProgram {
    vm::Program prog;
    ProgType type = ProgType::Unspec;
    std::string attach;
    std::vector<std::size_t> maps;                     // indices into Object::maps() it uses
    std::vector<std::pair<std::size_t, std::string>> functions;   // pc -> function name, entry first
    std::vector<std::pair<std::size_t, std::string>> externs;     // pc -> unresolved extern (kfunc, ksym)
    std::vector<std::pair<std::size_t, uint32_t>> func_info;      // pc -> BTF FUNC id, from .BTF.ext
};

// An `extern ... __kconfig` variable: a slot in the object's `.kconfig` map that the world
// fills from its kernel configuration (WorldOptions::kconfig), as libbpf does at load time.
struct KconfigVar {
    enum class Kind : uint8_t { Bool, Tristate, Char, Int, CharArray };
    std::string name;        // CONFIG_HZ, LINUX_KERNEL_VERSION, ...
    uint32_t offset = 0;     // in the .kconfig map's value
    uint32_t size = 0;
    Kind kind = Kind::Int;
    bool is_signed = false;  // Int
    bool weak = false;       // __weak: a missing value is 0 instead of an error
};

// A BPF ELF object as libbpf sees it: programs, subprograms, maps (BTF-defined, legacy,
// global data), BTF and its line info. Errors name the file and section.
class Object {
public:
    static Result<Object> open(const std::filesystem::path& path);
    static Result<Object> from_elf(ElfFile elf);

    const std::string& path() const { return elf_.path(); }
    const std::vector<ProgramDef>& programs() const { return programs_; }
    const std::vector<MapDef>& maps() const { return maps_; }
    const std::vector<KconfigVar>& kconfig() const { return kconfig_; }   // layout of the `.kconfig` map
    const std::string& license() const { return license_; }
    uint32_t kern_version() const { return kern_version_; }
    const ElfFile& elf() const { return elf_; }

    const btf::Btf* btf() const;
    const btf::Ext* btf_ext() const;
    // The object's BTF as the kernel accepts it: DATASEC sizes and variable offsets filled
    // in from the ELF sections and symbols. Empty when the object has no BTF.
    Result<std::vector<uint8_t>> kernel_btf() const;

    // By function name, then by section name.
    const ProgramDef* find_program(std::string_view name) const;
    Result<LinkedProgram> link(std::string_view name) const;

    struct Impl;
    Object(Object&&) noexcept;
    Object& operator=(Object&&) noexcept;
    ~Object();

private:
    Object();
    ElfFile elf_;
    std::vector<ProgramDef> programs_;
    std::vector<MapDef> maps_;
    std::vector<KconfigVar> kconfig_;
    std::string license_;
    uint32_t kern_version_ = 0;
    std::unique_ptr<Impl> impl_;
};

// ──────────────────────────────── the world ───────────────────────────────

class Map;   // harness/maps.hpp

struct WorldOptions {
    unsigned ncpus = 1;            // CPUs of per-CPU maps
    unsigned cpu = 0;              // bpf_get_smp_processor_id
    uint64_t seed = 0;             // bpf_get_prandom_u32
    uint64_t clock_ns = 1'000'000'000;   // bpf_ktime_get_ns at the start; advances 1 ns per helper call... see World::now
    uint64_t boot_offset_ns = 0;   // ktime_get_boot_ns - ktime_get_ns
    uint32_t pid = 1000, tgid = 1000, uid = 0, gid = 0;
    std::string comm = "bpfsim";
    uint32_t ifindex = 1;          // the interface packets arrive on
    // Kernel configuration for `__kconfig` externs, as in /proc/config.gz: "y", "m", "n",
    // numbers ("100", "0x10") and quoted strings. LINUX_KERNEL_VERSION comes from
    // kernel_version unless given here; without a value for a strong extern, programs that
    // read .kconfig fail to bind, naming it.
    std::map<std::string, std::string> kconfig;
    uint32_t kernel_version = (6u << 16) | (18u << 8);   // KERNEL_VERSION(6, 18, 0)
    uint32_t rx_queue = 0;
};

// What one run of a program produced.
struct ProgramRun {
    vm::RunResult result;
    std::vector<uint8_t> packet;           // the packet afterwards (data .. data_end)
    std::vector<TraceEvent> trace;         // bpf_trace_printk lines of this run
    uint64_t redirect_ifindex = 0;         // bpf_redirect / redirect_map target, if any
    bool redirected = false;
};

// The simulated kernel a program runs in: the object's maps, helper stubs, a virtual
// clock, a seeded PRNG, trace output and program contexts. Not thread-safe: one run at a time.
class World : public vm::Env {
public:
    static Result<std::unique_ptr<World>> create(const Object& obj, WorldOptions opts = {});
    ~World() override;

    const Object& object() const { return *obj_; }
    const WorldOptions& options() const { return opts_; }
    Map* map(std::string_view name) const;
    Map* map_at(std::size_t index) const;
    // The map behind a value a program passed as a map pointer, or nullptr.
    Map* map_from_handle(uint64_t value) const;

    // Resolves the linked program's map and global references against this world.
    Result<vm::Program> bind(const LinkedProgram& lp) const;
    // Links, binds and compiles a program of the object (cached).
    Result<const vm::Interpreter*> compiled(std::string_view prog);

    // Runs a program with a packet (networking types) or a raw context (others).
    Result<ProgramRun> run_packet(std::string_view prog, const std::vector<uint8_t>& packet, const vm::RunOptions& ro = {});
    Result<ProgramRun> run_ctx(std::string_view prog, std::vector<uint8_t> ctx, const vm::RunOptions& ro = {});

    // State the helpers read and write.
    uint64_t now_ns() const { return clock_ns_; }
    void advance(uint64_t ns) { clock_ns_ += ns; }
    uint32_t prandom();
    std::vector<TraceEvent> trace;          // every trace line so far
    std::vector<uint8_t> tunnel_key;        // bpf_skb_set_tunnel_key's last key (per run)
    std::string read_string(uint64_t addr, std::size_t max = 4096);
    bool read_bytes(uint64_t addr, void* out, std::size_t n);

    // Packet state during a run (for the skb/xdp helpers).
    struct PacketState {
        uint8_t* buf = nullptr;      // start of the buffer (headroom included)
        std::size_t cap = 0;
        uint32_t data = 0, data_end = 0, data_meta = 0;   // offsets into buf
        void* ctx = nullptr;         // the xdp_md or __sk_buff
        ProgType type = ProgType::Unspec;
        uint64_t redirect = 0;
        bool redirected = false;
        uint64_t region = 0;         // start of the packet's memory region, 0 when none
    } pkt;
    void sync_packet();              // rewrite ctx data pointers after an adjust and re-map the region

    // A read-only area below 4 GiB where helpers hand keys to callbacks.
    uint8_t* key_scratch(std::size_t n);

    // Tail calls (bpf_tail_call): the program in slot `index` of a prog array.
    const vm::Interpreter* tail_target(Map* prog_array, uint32_t index);
    unsigned tail_calls = 0;

private:
    World();
    const Object* obj_ = nullptr;
    WorldOptions opts_;
    std::vector<std::unique_ptr<Map>> maps_;
    std::vector<std::string> map_errors_;   // why maps_[i] is null
    std::map<std::string, vm::Interpreter, std::less<>> compiled_;
    vm::HelperTable helpers_;
    uint64_t clock_ns_ = 0;
    uint64_t prng_ = 0;
    std::unique_ptr<LowMemory> low_;
};

// Every entry of a map as userspace sees it (percpu values: all CPUs concatenated),
// in get_next_key order. Maps without keys (ringbuf, queue, ...) dump as empty.
std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump_map(Map& m, unsigned ncpus);

// What a tracing program is given, before it is laid out for its type.
struct ContextSpec {
    std::vector<uint8_t> raw;                                  // the context's first bytes (may extend it)
    std::vector<uint64_t> args;                                // arguments, in order
    std::vector<std::pair<std::string, uint64_t>> fields;      // "di", "common_pid", "arg2", "OFFSET:SIZE"
};

// The context bytes the kernel hands a program of this type attached at `attach`:
//   kprobe/uprobe: struct pt_regs (args go to di, si, dx, cx, r8, r9; fields by register name,
//     parm1..parm6, ret);
//   perf_event: struct bpf_perf_event_data (pt_regs, sample_period, addr);
//   raw_tp, tp_btf, fentry/fexit, lsm: u64 args[] (12 slots unless args are given);
//   tracepoint: the record, header (common_pid = the world's pid) included; syscalls/sys_enter_*,
//     sys_exit_* and raw_syscalls/* get their fields (__syscall_nr from the name, arg0..5, ret);
//     others take raw bytes (their layout from BTF comes with CO-RE support).
// Unknown fields and too many arguments are Usage errors that list what exists.
Result<std::vector<uint8_t>> build_context(ProgType type, std::string_view attach, const ContextSpec& spec, const WorldOptions& w);

// The value of an object's `.kconfig` map for a kernel configuration (see WorldOptions::kconfig).
Result<std::vector<uint8_t>> kconfig_image(const Object& obj, const std::map<std::string, std::string>& config,
                                           uint32_t kernel_version);

// Map entries (from dump_map) as JSON in bpftool's `map dump -j` shape: byte arrays of
// "0x.." strings, per-CPU maps as "values": [{"cpu": N, "value": [...]}].
std::string map_dump_json(const MapDef& def, const std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>& entries,
                          unsigned ncpus);
// Fills a world's maps from a JSON file: {"MAP": [{"key": K, "value": V}, ...], ...}, where
// keys and values are byte arrays as bpftool prints them, hex strings, or numbers (written
// little-endian at the map's size); per-CPU maps also take "values" as above; queues, stacks
// and bloom filters take values only. Returns the entries written; errors name the file,
// map and entry.
Result<std::size_t> load_map_init(World& w, const std::filesystem::path& file);

// What a return value means for a program type: "XDP_PASS", "TC_ACT_SHOT", "keep 64 bytes".
std::string describe_return(ProgType t, uint64_t r0);

// ──────────────────────────── the kernel oracle ────────────────────────────

struct KernelRun {
    uint32_t retval = 0;
    std::vector<uint8_t> packet;
};

// The running kernel, for differential tests: the object's maps and globals created with
// bpf(2), programs loaded with the same relocations, runs through BPF_PROG_TEST_RUN.
// Needs root (or CAP_BPF); unavailable_reason() says why not, "" when it works.
class KernelOracle {
public:
    static std::string unavailable_reason();
    static Result<std::unique_ptr<KernelOracle>> create(const Object& obj);
    ~KernelOracle();
    // The program's fd (loading it, and the programs its prog arrays name, once).
    Result<int> load(std::string_view prog);
    const std::string& log() const { return log_; }   // the verifier log of the last load
    Result<KernelRun> test_run(std::string_view prog, const std::vector<uint8_t>& packet);
    // Map contents as the kernel has them (percpu: every possible CPU).
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump(std::size_t map) const;
    const std::vector<std::string>& map_errors() const { return map_errors_; }

private:
    KernelOracle() = default;
    const Object* obj_ = nullptr;
    std::vector<int> map_fds_;
    std::vector<std::string> map_errors_;
    std::map<std::string, int, std::less<>> prog_fds_;
    std::string log_;
    int btf_fd_ = -1;
    std::string btf_error_;
};

// The kernel helpers bpfsim implements, with their prototypes.
vm::HelperTable kernel_helpers();

}  // namespace bpfsim::harness
