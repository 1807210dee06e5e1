// bpfsim::harness — the world programs run in: object files, test formats, environments.
//
// The one public header of the harness module.
#pragma once

#include "btf/btf.hpp"
#include "btf/core.hpp"
#include "common/error.hpp"
#include "vm/jit.hpp"
#include "vm/vm.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
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
    std::vector<uint8_t> init;       // initial value of a global-data map (one entry); empty: zeros
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
// An integer as users write it: decimal, 0x hex or 0 octal, or negative (two's complement);
// nullopt when the whole text is not one number in range.
std::optional<uint64_t> parse_integer(std::string_view text);
// Every packet of a classic pcap file (Ethernet link type), both byte orders.
Result<std::vector<std::vector<uint8_t>>> read_pcap(const std::string& path);
// A packet given on the command line: "hex:..", "file:PATH", "pcap:PATH[#N]", a path
// (pcap recognised by its magic, otherwise raw bytes), or bare hex.
Result<std::vector<uint8_t>> read_packet(const std::string& spec);

// A packet from header fields: Ethernet (an 802.1Q tag with `vlan`), IPv4 or IPv6 (by the
// form of the addresses), then UDP (17), TCP (6), ICMP echo request (1; 58 for IPv6) or no
// transport header (any other protocol), then the payload; lengths and checksums filled in.
struct PacketSpec {
    std::string src = "10.0.0.1", dst = "10.0.0.2";   // dotted quads, or IPv6 ("fd00::1")
    uint8_t protocol = 17;                            // IPPROTO_UDP
    uint16_t sport = 40000, dport = 80;
    uint8_t ttl = 64;                                 // IPv6: the hop limit
    uint8_t tcp_flags = 0x02;                         // SYN
    std::optional<uint16_t> vlan{};
    std::array<uint8_t, 6> src_mac{0x02, 0, 0, 0, 0, 0x01}, dst_mac{0x02, 0, 0, 0, 0, 0x02};
    std::vector<uint8_t> payload{};
};
// Errors (Usage) name a malformed address or a packet too large.
Result<std::vector<uint8_t>> build_packet(const PacketSpec& spec);

// ─────────────────────────────── trace output ─────────────────────────────

// Reads a NUL-terminated string / bytes at a program address, through the memory map.
using ReadString = std::function<std::string(uint64_t addr)>;
using ReadBytes = std::function<bool(uint64_t addr, void* out, std::size_t n)>;

// Formats as bpf_trace_printk and bpf_snprintf do: the kernel's accepted conversions
// (%d %i %u %x %X with l/ll, flags "0+- " and a width, %c %s %p %pK %px %ps %pS %pB %pi4
// %pI4 %pi6 %pI6 %pks %pus, %%); anything else is an Error, as the helper returns -EINVAL.
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
// The flags column the kernel's trace_pipe shows for bpf_trace_printk from a program of this
// type (section for tracing programs), as measured on Linux 6.18: BPF_PROG_TEST_RUN of packet
// programs "b..11" (softirqs off, preempt and migrate-disable depth 1), perf-event tracepoints
// "...21", raw tracepoints and tp_btf "...2."; kprobes, perf_event and fentry programs (which
// could not be attached where this was measured) keep "d..31".
std::string_view trace_flags_for(ProgType type, std::string_view section);
// The line ends with the newline the kernel adds to every event, after the message's own.
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
    std::size_t core_relos = 0;                                   // CO-RE relocations applied
    // Instructions poisoned by a failed CO-RE relocation (`call 0xbad2310`, as libbpf does),
    // with what failed: running one stops the program with this message.
    std::vector<std::pair<std::size_t, std::string>> core_poisoned;
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
    // Links a program. Its CO-RE relocations are resolved against `core` (the kernel's BTF),
    // as libbpf does at load; a program that has some and no target is an error.
    Result<LinkedProgram> link(std::string_view name, const btf::CoreTargets* core = nullptr) const;
    // How many CO-RE relocations the object's .BTF.ext holds.
    std::size_t core_relo_count() const;

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

// How a world runs programs: the interpreter, or the x86-64 JIT in checked mode (memory checks
// and the instruction budget as the interpreter's, the same results). Coverage runs always use
// the interpreter.
// Auto: the checked JIT for programs marked verified (World::mark_verified: the verifier model
// accepts them), the interpreter for the rest. Coverage runs always use the interpreter.
enum class Engine : uint8_t { Interpreter, Jit, Auto };

struct WorldOptions {
    Engine engine = Engine::Interpreter;
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
    // The kernel's BTF (recorded): the layout of simulated kernel objects, and the target of
    // CO-RE relocations. Without it programs see no kernel memory.
    std::shared_ptr<const btf::Btf> kernel_btf;
    uint32_t rx_queue = 0;
};

// Simulated kernel memory, with a second space for the current process's user memory:
// objects laid out from a kernel's BTF (task_struct, mm_struct, file, sock, ...), fields set
// by path, strings. Programs read it (bpf_probe_read_kernel, BPF_CORE_READ, BTF pointers);
// bpf_probe_read_user reads the user space only. Addresses stay valid while it lives.
class KernelMemory {
public:
    enum class Space : uint8_t { Kernel = 0, User = 1 };
    explicit KernelMemory(std::shared_ptr<const btf::Btf> btf, std::size_t capacity = 64u << 20);
    ~KernelMemory();
    KernelMemory(const KernelMemory&) = delete;
    KernelMemory& operator=(const KernelMemory&) = delete;

    const btf::Btf& btf() const { return *btf_; }
    // A struct/union (or typedef, int) of the BTF by name: "task_struct", "struct file".
    // Throws Error{Usage} naming the BTF when there is none.
    uint32_t type_id(std::string_view name) const;
    // A zeroed object (or array of count objects) of a BTF type; its address.
    uint64_t create(uint32_t type, std::size_t count = 1);
    uint64_t create(std::string_view type_name) { return create(type_id(type_name)); }
    // A NUL-terminated copy / raw bytes in kernel or user memory; the address.
    uint64_t string(std::string_view s, Space where = Space::Kernel);
    uint64_t bytes(std::span<const uint8_t> b, Space where = Space::Kernel);

    // Where a path leads from an object of `type` at addr: "pid", "comm", "mm.arg_start",
    // "cred->uid.val", "sig_ptr[0]". Pointers on the way are followed; when NULL they are
    // filled with a new zeroed object of the pointee type if create_missing, else an error.
    struct Field {
        uint64_t addr;
        uint32_t type;            // the field's BTF type
        uint32_t bit_offset = 0;  // bitfields: bits from addr, and width
        uint32_t bit_size = 0;
    };
    Field field(uint64_t addr, uint32_t type, std::string_view path, bool create_missing);
    // Writes a number, enum or pointer (bitfields included); errors name the path.
    void set(uint64_t addr, uint32_t type, std::string_view path, uint64_t value);
    // char arrays get a truncated, NUL-terminated copy; char pointers a new string in `where`.
    void set_string(uint64_t addr, uint32_t type, std::string_view path, std::string_view s, Space where = Space::Kernel);
    uint64_t get(uint64_t addr, uint32_t type, std::string_view path) const;
    std::string get_string(uint64_t addr, uint32_t type, std::string_view path) const;

    // Whether [addr, addr+n) is allocated memory (of one space, when given).
    bool contains(uint64_t addr, std::size_t n, std::optional<Space> where = std::nullopt) const;
    // The allocated parts, read-only to programs: one region per space in use.
    std::vector<vm::Region> regions() const;

private:
    uint64_t allocate(std::size_t size, std::size_t align, Space where);
    struct Arena {
        uint8_t* base = nullptr;
        std::size_t used = 0;
    };
    std::shared_ptr<const btf::Btf> btf_;
    std::size_t cap_;
    Arena space_[2];
    struct Object {
        uint64_t addr;
        uint32_t type;
    };
    std::vector<Object> objects_;
};

// A kernel BTF for WorldOptions::kernel_btf: a raw BTF file (a copy of /sys/kernel/btf/vmlinux,
// or one `bpfsim btf record` wrote) or an ELF file's .BTF section.
Result<std::shared_ptr<const btf::Btf>> load_kernel_btf(const std::filesystem::path& path);

// A process for World::add_task: a task_struct with its cred, laid out from the kernel BTF.
struct TaskSpec {
    uint32_t pid = 1000;
    uint32_t tgid = 0;            // 0: the same as pid
    std::string comm = "bpfsim";
    uint64_t parent = 0;          // the parent's task_struct, 0 for none
    uint32_t uid = 0, gid = 0;
    std::vector<std::pair<std::string, uint64_t>> fields{};       // more fields by path
    std::vector<std::pair<std::string, std::string>> strings{};   // string fields by path
};

// What one run of a program produced.
struct ProgramRun {
    vm::RunResult result;
    std::vector<uint8_t> packet;           // the packet afterwards (data .. data_end)
    std::vector<TraceEvent> trace;         // bpf_trace_printk lines of this run
    uint64_t redirect_ifindex = 0;         // bpf_redirect / redirect_map target, if any
    bool redirected = false;
    std::map<int32_t, uint64_t> helper_calls;   // helper id -> calls in this run (tail calls and callbacks included)
};

// ──────────────────────────── the simulated network ────────────────────────
// What bpf_fib_lookup, bpf_clone_redirect and the like find: devices by ifindex, a FIB of
// routes and a neighbour table, as `ip link`, `ip route` and `ip neigh` show them. Addresses
// are in network byte order; IPv4 ones use the first 4 bytes.

// A network device of the simulated host.
struct NetDevice {
    uint32_t ifindex = 0;
    std::array<uint8_t, 6> mac{};   // bpf_fib_lookup's smac for packets leaving by it
    uint32_t mtu = 1500;
    bool forwarding = false;        // net.ipv{4,6}.conf.DEV.forwarding: fib lookups from it route
};

// One route (`ip route add [table T] TYPE PREFIX [via GW] dev DEV [metric M] [mtu N] [src S]`).
// A lookup takes the longest matching prefix, then the lowest metric; lookups without
// BPF_FIB_LOOKUP_DIRECT search tables 255 (local), 254 (main) and 253 (default) in turn,
// as the default policy rules do.
struct Route {
    enum class Type : uint8_t { Unicast, Local, Blackhole, Unreachable, Prohibit };
    int family = 2;                     // AF_INET, or AF_INET6 (10)
    std::array<uint8_t, 16> dst{};      // the prefix
    uint8_t prefix_len = 0;             // 0: a default route
    Type type = Type::Unicast;
    std::array<uint8_t, 16> gateway{};  // the next hop; all zero: on-link (the destination itself)
    uint32_t ifindex = 0;               // the device it leaves by (a NetDevice)
    uint32_t metric = 0;                // bpf_fib_lookup's rt_metric
    uint32_t table = 254;               // RT_TABLE_MAIN
    uint32_t mtu = 0;                   // the route's MTU; 0: the device's
    std::array<uint8_t, 16> prefsrc{};  // BPF_FIB_LOOKUP_SRC's answer; all zero: none
};

// A reachable neighbour (`ip neigh add ADDR lladdr MAC dev DEV`): the MAC address
// bpf_fib_lookup returns as dmac for a next hop.
struct Neighbour {
    int family = 2;
    std::array<uint8_t, 16> addr{};
    uint32_t ifindex = 0;
    std::array<uint8_t, 6> mac{};
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
    // The verifier model accepts prog: with Engine::Auto it runs in the (checked) JIT.
    void mark_verified(std::string_view prog) { verified_.emplace(prog); }
    // Whether a run of prog (without coverage) uses the JIT.
    bool uses_jit(std::string_view prog) const {
        return opts_.engine == Engine::Jit || (opts_.engine == Engine::Auto && verified_.count(prog));
    }

    // Runs a program with a packet (networking types) or a raw context (others).
    Result<ProgramRun> run_packet(std::string_view prog, const std::vector<uint8_t>& packet, const vm::RunOptions& ro = {});
    Result<ProgramRun> run_ctx(std::string_view prog, std::vector<uint8_t> ctx, const vm::RunOptions& ro = {});
    // Runs a program with raw r1..r5 (e.g. pointer and length of input memory in mem), with
    // the world's engine.
    Result<vm::RunResult> run_args(std::string_view prog, std::array<uint64_t, 5> args, const vm::RunOptions& ro = {});

    // Simulated kernel memory (needs WorldOptions::kernel_btf; throws Error{Usage} without).
    KernelMemory& kernel();
    bool has_kernel() const { return kmem_ != nullptr; }
    // Creates a task (task_struct, cred) in kernel memory; its address.
    Result<uint64_t> add_task(const TaskSpec& t);
    // The running task: bpf_get_current_task[_btf] return it, and get_current_pid_tgid,
    // _comm and _uid_gid read it. 0: the WorldOptions pid/tgid/comm/uid/gid are used.
    uint64_t current_task = 0;

    // State the helpers read and write.
    uint64_t now_ns() const { return clock_ns_; }
    void advance(uint64_t ns) { clock_ns_ += ns; }
    uint32_t prandom();
    std::vector<TraceEvent> trace;          // every trace line so far
    // The tunnel metadata of this run's packet: what bpf_skb_set_tunnel_key attached (the
    // kernel's metadata dst) and bpf_skb_set_tunnel_opt added; bpf_skb_get_tunnel_key/_opt
    // read it back. A test-run packet arrives without any, so every run starts with none;
    // afterwards it shows what the program attached.
    struct TunnelInfo {
        bool set = false;                       // a key is attached
        bool ipv6 = false;                      // BPF_F_TUNINFO_IPV6
        uint64_t id = 0;
        uint8_t tos = 0, ttl = 0;
        std::array<uint32_t, 4> remote{}, local{};   // as struct bpf_tunnel_key gave them
        uint32_t label = 0;                     // IPv6 flow label (20 bits)
        uint16_t flags = 0;                     // TUNNEL_* bits, as tunnel_flags shows them (host order)
        std::vector<uint8_t> options;           // bpf_skb_set_tunnel_opt's bytes
    } tunnel;
    // The simulated network (see NetDevice), set up between runs. A new world has one device,
    // the loopback device BPF_PROG_TEST_RUN gives packets (WorldOptions::ifindex, MTU 65536,
    // no MAC, not forwarding), and no routes or neighbours: bpf_fib_lookup then answers as
    // the kernel's test runs do on a host that does not forward.
    std::vector<NetDevice> devices;
    std::vector<Route> routes;
    std::vector<Neighbour> neighbours;
    const NetDevice* device(uint32_t ifindex) const;
    // The call chains bpf_get_stackid sees, innermost frame first; empty (the default): -EFAULT.
    std::vector<uint64_t> kernel_stack, user_stack;
    // The flags column of this run's trace_pipe lines, as the kernel prints them for the
    // program's type (set by run_packet / run_ctx; see trace_flags_for).
    std::string trace_flags = "d..31";
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
        uint32_t mac_len = 0;        // skb: MAC header length (skb_mac_header_len)
        uint32_t network = 0;        // skb: the network header's offset from data
        bool encap = false;          // skb: bpf_skb_adjust_room encapsulated it
    } pkt;
    void sync_packet();              // rewrite ctx data pointers after an adjust and re-map the region

    // A read-only area below 4 GiB where helpers hand keys to callbacks.
    uint8_t* key_scratch(std::size_t n);

    // Tail calls (bpf_tail_call): the program in slot `index` of a prog array.
    const vm::Interpreter* tail_target(Map* prog_array, uint32_t index);
    unsigned tail_calls = 0;

    // Calls per helper id since the current (or last) run started; ProgramRun::helper_calls
    // has them per run. Helpers are counted through a trampoline that adds one here and calls
    // the implementation: the interpreter's non-helper path is unchanged.
    const std::vector<uint64_t>& helper_calls() const { return helper_calls_; }

private:
    friend struct HelperCounting;
    std::vector<uint64_t> helper_calls_;
    std::vector<vm::HelperFn> helper_fns_;    // the implementations behind the trampolines
    std::map<int32_t, uint64_t> take_helper_calls() const;
    World();
    const Object* obj_ = nullptr;
    WorldOptions opts_;
    std::vector<std::unique_ptr<Map>> maps_;
    std::vector<std::string> map_errors_;   // why maps_[i] is null
    std::map<std::string, vm::Interpreter, std::less<>> compiled_;
    std::map<std::string, vm::Jit, std::less<>> jits_;   // WorldOptions::engine == Jit
    std::set<std::string, std::less<>> verified_;          // Engine::Auto runs these in the JIT
    // Runs a compiled program with the world's engine.
    vm::RunResult execute(std::string_view prog, const vm::Interpreter& interp, std::array<uint64_t, 5> args, const vm::RunOptions& ro);
    std::map<std::string, std::vector<std::pair<std::size_t, std::string>>, std::less<>> poisoned_;   // CO-RE failures per program
    static constexpr int32_t kCorePoisonHelper = 1023;   // bpfsim's own helper id for poisoned instructions
    void explain_poison(std::string_view prog, vm::RunResult& r) const;
    vm::HelperTable helpers_;
    uint64_t clock_ns_ = 0;
    uint64_t prng_ = 0;
    std::unique_ptr<LowMemory> low_;
    std::unique_ptr<KernelMemory> kmem_;
    std::vector<uint64_t> kmem_regions_;   // starts of the kernel memory regions in mem
    void sync_kernel_regions();
};

// Every entry of a map as userspace sees it (percpu values: all CPUs concatenated),
// in get_next_key order. Maps without keys (ringbuf, queue, ...) dump as empty.
std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump_map(Map& m, unsigned ncpus);

// What a tracing program is given, before it is laid out for its type.
struct ContextSpec {
    // Each member has an initializer, so designated initializers may name any subset.
    std::vector<uint8_t> raw{};                                // the context's first bytes (may extend it)
    std::vector<uint64_t> args{};                              // arguments, in order
    std::vector<std::pair<std::string, uint64_t>> fields{};    // "di", "common_pid", "arg2", "OFFSET:SIZE", "saddr[1]"
    // Text fields: char arrays ("comm"), __data_loc strings ("filename" of sched_process_exec),
    // and the user string a syscall argument points to ("filename" of sys_enter_openat).
    std::vector<std::pair<std::string, std::string>> strings{};
};

// The context bytes the kernel hands a program of this type attached at `attach`:
//   kprobe/uprobe: struct pt_regs (args go to di, si, dx, cx, r8, r9; fields by register name,
//     parm1..parm6, ret);
//   perf_event: struct bpf_perf_event_data (pt_regs, sample_period, addr);
//   raw_tp, tp_btf, fentry/fexit, lsm: u64 args[] (12 slots unless args are given);
//   tracepoint: the record, header (common_pid = the world's pid) included:
//     syscalls/sys_enter_NAME: __syscall_nr from NAME, the arguments by their names ("filename",
//       "flags") and as arg0..arg5; a string for a `char *` argument is put in user memory;
//     syscalls/sys_exit_NAME: __syscall_nr, ret; raw_syscalls/sys_enter, sys_exit: id, args, ret;
//     any other event: struct trace_event_raw_EVENT (or its class's struct) from the kernel BTF,
//       its members by name, `NAME[i]` for array elements, strings for char arrays and
//       __data_loc/__rel_loc members (stored after the fixed part, as the kernel does).
//     Without a kernel BTF, or for an event it does not describe, only the header: give raw
//     bytes or OFFSET:SIZE fields.
// `mem` (the world's kernel memory, when it has a kernel BTF) holds user strings of syscall
// arguments. Unknown fields and too many arguments are Usage errors that list what exists.
Result<std::vector<uint8_t>> build_context(ProgType type, std::string_view attach, const ContextSpec& spec, const WorldOptions& w,
                                           KernelMemory* mem = nullptr);

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
// The kernel's verdict on one program (KernelOracle::verify), as `bpfsim kernel-verify` prints it.
struct KernelVerdict {
    enum class Kind : uint8_t { Accepted, Rejected, NotLoadable };
    Kind kind = Kind::NotLoadable;
    int err = 0;                      // errno of BPF_PROG_LOAD; 0 when accepted
    std::string reason;               // not-loadable: why (map creation, attach target, early EINVAL, ...)
    std::string message;              // the verifier's message: the log's last meaningful line(s)
    std::optional<std::size_t> pc;    // the failing instruction, when the log names one
    std::string stats;                // "processed N insns (limit 1000000) max_states_per_insn ..."
    uint64_t processed = 0;           // N of that line
    std::optional<uint64_t> verification_usec;   // as the kernel measured it (BPF_LOG_STATS)
    double load_seconds = 0;          // wall time of the BPF_PROG_LOAD that gave this verdict
    std::size_t insns = 0;            // instructions loaded
    ProgType type = ProgType::Unspec; // the type it was loaded as
    bool type_assumed = false;        // the section names no type: loaded as socket_filter
    uint32_t expected_attach_type = 0;
    uint32_t attach_btf_id = 0;       // in the running kernel's BTF
    uint32_t prog_flags = 0;          // BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS
    std::string log;                  // the whole verifier log
};
std::string_view to_string(KernelVerdict::Kind k);   // "accepted", "rejected", "not-loadable"
// Splits a verifier log into verdict message, failing pc and statistics (fills those fields).
void parse_verifier_log(KernelVerdict& v);

class KernelOracle {
public:
    static std::string unavailable_reason();
    static Result<std::unique_ptr<KernelOracle>> create(const Object& obj);
    // The running kernel's BTF (/sys/kernel/btf/vmlinux), loaded once: the CO-RE target.
    static Result<std::shared_ptr<const btf::Btf>> running_kernel_btf();
    ~KernelOracle();
    // The program's fd (loading it, and the programs its prog arrays name, once).
    Result<int> load(std::string_view prog);
    const std::string& log() const { return log_; }   // the verifier log of the last load
    // Loads the program afresh (as libbpf would: expected attach type, attach BTF id, flags from
    // the section) with log_level (1 or 2; 0: no instruction trace, so no failing pc, but the
    // message; BPF_LOG_STATS is always added), growing the log buffer on
    // ENOSPC, and closes it again. The kernel's outcome is the verdict; an Error is bpfsim's own
    // failure (the program cannot be linked).
    // A program whose section names no type (ProgType::Unspec) is loaded as `type`, by default
    // socket_filter (as the PREVAIL verifier treats such sections).
    Result<KernelVerdict> verify(std::string_view prog, unsigned log_level = 1, ProgType type = ProgType::Unspec);
    Result<KernelRun> test_run(std::string_view prog, const std::vector<uint8_t>& packet);
    // Map contents as the kernel has them (percpu: every possible CPU).
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump(std::size_t map) const;
    const std::vector<std::string>& map_errors() const { return map_errors_; }

private:
    KernelOracle() = default;
    // One BPF_PROG_LOAD of a linked program; the fd (kept open) in *fd when accepted.
    KernelVerdict load_once(std::string_view prog, unsigned log_level, int* fd, ProgType type = ProgType::Unspec);
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
