// bpfsim::vm — the BPF instruction set, its text forms, memory, helpers and the interpreter.
//
// The one public header of the vm module. Everything in vm/*.cpp is private to it.
//
//   raw bytes ──decode()──▶ Decoded (validated, one Op per slot)
//   text ──assemble()──▶ raw instructions ──disassemble()──▶ text
//   Program + HelperTable ──Interpreter::compile()──▶ Interpreter ──run(Env&)──▶ RunResult
#pragma once

#include "common/error.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfsim::vm {

// ───────────────────────────── instruction set ─────────────────────────────

// One raw 8-byte instruction, laid out as the kernel's struct bpf_insn (little-endian host).
struct Insn {
    uint8_t code = 0;
    uint8_t dst : 4 = 0;
    uint8_t src : 4 = 0;
    int16_t off = 0;
    int32_t imm = 0;

    bool operator==(const Insn& o) const {
        return code == o.code && dst == o.dst && src == o.src && off == o.off && imm == o.imm;
    }
    uint64_t raw() const { return std::bit_cast<uint64_t>(*this); }
    static Insn from_raw(uint64_t v) { return std::bit_cast<Insn>(v); }
};
static_assert(sizeof(Insn) == 8);

// A jump's target without a branch on its kind: pc + 1 + the field the masks select (all ones:
// off or imm), or `none` where `has` is 0. The analyses that walk every instruction use it.
inline std::size_t rel_target(std::size_t pc, const Insn& in, int32_t off_mask, int32_t imm_mask, uint32_t has, std::size_t none) {
    const int64_t rel = static_cast<int64_t>(in.off & off_mask) + static_cast<int64_t>(in.imm & imm_mask);
    const std::size_t t = static_cast<std::size_t>(static_cast<int64_t>(pc) + 1 + rel);
    const std::size_t keep = 0 - static_cast<std::size_t>(has);
    return (t & keep) | (none & ~keep);
}

// Every instruction of the table in vm/opcodes.def.
enum class Op : uint16_t {
#define BPF_OP(ID, CODE, DISC, DVAL, FORM, MNEM, SYM) ID,
#include "vm/opcodes.def"
#undef BPF_OP
    Count,
    LddwHigh = Count,   // second slot of an lddw; never executed
    Invalid,
};
inline constexpr std::size_t kOpCount = static_cast<std::size_t>(Op::Count);

// Which field tells rows with the same opcode byte apart.
enum class Disc : uint8_t { NONE, OFF, IMM, SRC };

// Operand shape of an instruction.
enum class Form : uint8_t {
    ALU_K, ALU_X, NEG, MOVSX, END,
    JA, JA32, JCOND_K, JCOND_X, CALL, CALL_LOCAL, CALL_KFUNC, CALLX, EXIT, MAY_GOTO,
    LDDW, LDABS, LDIND, LDX, LDXS, ST, STX, ATOMIC, LOAD_ACQ, STORE_REL,
};

struct OpInfo {
    Op op;
    uint8_t code;
    Disc disc;
    int32_t dval;
    Form form;
    std::string_view mnemonic;   // bpf_conformance syntax
    std::string_view symbol;     // llvm-objdump operator or keyword
    std::string_view name;       // the enumerator, "ADD64_IMM"
};

std::span<const OpInfo> op_table();
const OpInfo& op_info(Op op);

// Opcode byte fields (RFC 9669 §3).
namespace code {
inline constexpr uint8_t LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
inline constexpr uint8_t cls(uint8_t c) { return c & 0x07; }
inline constexpr uint8_t size_bits(uint8_t c) { return c & 0x18; }
inline constexpr unsigned mem_size(uint8_t c) {   // bytes moved by a load/store opcode
    switch (size_bits(c)) { case 0x00: return 4; case 0x08: return 2; case 0x10: return 1; default: return 8; }
}
}  // namespace code

// The table row that matches this instruction's opcode and discriminating field,
// or nullopt. Does not check the other fields: validate() does.
std::optional<Op> classify(const Insn& insn);

// Number of registers: r0-r9 general, r10 frame pointer (read-only).
inline constexpr unsigned kNumRegs = 11;
inline constexpr int32_t kPseudoCallLocal = 1;

// A decoded, structurally valid program: one Op per slot (lddw's second slot is LddwHigh).
struct Decoded {
    std::vector<Insn> insns;
    std::vector<Op> ops;
};

struct DecodeOptions {
    std::string file;       // for error locations
    std::string section;
};

// The instruction budget of a decoded program, shared by the interpreter and the JIT. Regions
// of straight-line code end at jumps, calls and exits; a run is charged a region's instructions
// when it leaves it (an lddw counts once), so both engines stop at the same pc.
struct BudgetTables {
    std::vector<int32_t> charge;    // charge of a taken branch / exit / call at pc
    std::vector<uint32_t> upto;     // instructions from the start of pc's region through pc
    std::vector<uint32_t> credit;   // instructions of pc's region before pc: credited when a jump lands on pc
};
BudgetTables budget_tables(const Decoded& d);

// Validates every field of every instruction (RFC 9669 plus the Linux 6.18 extensions),
// jump and call targets, and lddw pairs. Errors name the pc, opcode and the bad field.
Result<Decoded> decode(std::span<const Insn> insns, const DecodeOptions& opts = {});
// The same from raw little-endian bytes; a length not a multiple of 8 is an error.
Result<Decoded> decode_bytes(std::span<const uint8_t> bytes, const DecodeOptions& opts = {});

// ─────────────────────────────── text forms ───────────────────────────────

enum class Syntax {
    Llvm,          // llvm-objdump: r0 = *(u32 *)(r1 + 4)
    Conformance,   // bpf_conformance assembler: ldxw %r0, [%r1+4]
};

struct DisasmOptions {
    Syntax syntax = Syntax::Llvm;
    bool helper_names = true;   // Llvm syntax: "call bpf_map_lookup_elem" instead of "call 0x1"
};

// One instruction at pc (lddw reads pc+1 as well). Never throws: an invalid
// instruction prints as "invalid 0x.. ...".
std::string disassemble(std::span<const Insn> insns, std::size_t pc, const DisasmOptions& opts = {});
// The whole program, one instruction a line with its pc, "   3: r0 = 1".
std::string disassemble_program(std::span<const Insn> insns, const DisasmOptions& opts = {});

// Assembles bpf_conformance text: one instruction a line, `label:` lines, `#` comments,
// jump targets as labels or +N/-N, `call local label`, `lock [fetch] op [..], reg`.
// Errors name the file and line.
Result<std::vector<Insn>> assemble(std::string_view text, std::string_view filename = "<asm>");

// ───────────────────────────────── memory ─────────────────────────────────

enum Perm : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

enum class RegionKind : uint8_t { Stack, Ctx, Packet, PacketMeta, MapValue, Global, Kernel, User, Input, Other };
const char* to_string(RegionKind kind);

struct Region {
    uint64_t start = 0;
    uint64_t size = 0;
    uint8_t perm = kReadWrite;
    RegionKind kind = RegionKind::Other;
    std::string name;
    uint64_t end() const { return start + size; }
};

// The regions a program may touch. Host addresses: a BPF pointer is a host pointer.
// The stack is kept apart from the other regions because the interpreter moves its
// lower bound on every bpf2bpf call and return; it is also the first one checked.
class MemoryMap {
public:
    // Adds a region; throws Error if it overlaps another one or is empty.
    void add(Region region);
    void add(const void* start, uint64_t size, uint8_t perm, RegionKind kind, std::string name);
    // Removes the region that starts at start; returns whether there was one.
    bool remove(uint64_t start);
    void clear();

    // The live stack window [lo, hi).
    void set_stack(uint64_t lo, uint64_t hi) { stack_lo_ = lo; stack_size_ = hi - lo; }
    uint64_t stack_lo() const { return stack_lo_; }
    uint64_t stack_hi() const { return stack_lo_ + stack_size_; }

    // Whether [addr, addr+size) lies inside one region that grants perm.
    bool allows(uint64_t addr, uint64_t size, uint8_t perm) {
        if (addr - stack_lo_ <= stack_size_ - size && stack_size_ >= size) return true;
        if (addr - hit_start_ <= hit_size_ - size && hit_size_ >= size && (hit_perm_ & perm) == perm) return true;
        return allows_slow(addr, size, perm);
    }

    // The region containing addr, or nullptr (the stack shows as a region too).
    std::optional<Region> find(uint64_t addr) const;
    // Human description of why an access fails: "... is 8 bytes past the end of stack [..]".
    std::string explain(uint64_t addr, uint64_t size, uint8_t perm) const;
    const std::vector<Region>& regions() const { return regions_; }

private:
    bool allows_slow(uint64_t addr, uint64_t size, uint8_t perm);
    std::vector<Region> regions_;   // sorted by start, disjoint
    uint64_t stack_lo_ = 0, stack_size_ = 0;
    uint64_t hit_start_ = 0, hit_size_ = 0;
    uint8_t hit_perm_ = 0;
};

// ───────────────────────────────── helpers ────────────────────────────────

// Argument and return kinds of helper prototypes, after the kernel's bpf_arg_type /
// bpf_return_type (include/linux/bpf.h), as documented in the UAPI helper descriptions.
enum class ArgKind : uint8_t {
    None,                 // argument unused
    Anything,             // any initialised value
    ConstMapPtr,          // a map pointer from lddw
    MapKey,               // pointer to a key of the map in arg 1
    MapValue,             // pointer to a value of the map in arg 1
    UninitMapValue,
    Mem,                  // pointer to readable memory, size in the next argument
    MemOrNull,
    UninitMem,            // pointer to writable memory, size in the next argument
    ConstSize,
    ConstSizeOrZero,
    Ctx,
    CtxOrNull,
    Stack,                // pointer to the stack
    StackOrNull,
    SockCommon,
    Socket,
    BtfId,                // pointer to a kernel object of a BTF type
    BtfIdSock,
    AllocMem,             // pointer returned by ringbuf_reserve
    ConstStr,             // pointer to a read-only NUL-terminated string
    Func,                 // callback function
    Long,                 // pointer to a writable u64
    Int,                  // pointer to a writable u32
    SpinLock,
    Timer,
    Dynptr,
    PerCpuBtfId,
    ConstAllocSizeOrZero,
};

enum class RetKind : uint8_t {
    Integer,
    Void,
    MapValueOrNull,
    SocketOrNull,
    TcpSockOrNull,
    SockCommonOrNull,
    AllocMemOrNull,
    BtfIdOrNull,
    MemOrBtfIdOrNull,
    MemOrBtfId,
    BtfId,
};

struct HelperProto {
    RetKind ret = RetKind::Integer;
    std::array<ArgKind, 5> args{};
};

class Env;
using HelperFn = uint64_t (*)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, Env& env);

struct Helper {
    int32_t id = 0;
    std::string name;
    HelperProto proto;
    HelperFn fn = nullptr;
};

// The kernel's name for helper id ("map_lookup_elem"), or "" if unknown.
std::string_view kernel_helper_name(int32_t id);
// The largest helper id this build knows by name.
int32_t kernel_helper_max_id();

// A vector its owner's copies share, copied only when one of them changes it while shared: the
// helper and line tables, which every Interpreter and Jit keeps a copy of.
template <class T>
class SharedVector {
public:
    explicit SharedVector(std::vector<T> v = {}) : p_(v.empty() ? nullptr : std::make_shared<std::vector<T>>(std::move(v))) {}
    const std::vector<T>& get() const {
        static const std::vector<T> none;
        return p_ ? *p_ : none;
    }
    std::vector<T>& edit() {   // (a copy first where another owner shares it)
        if (!p_) p_ = std::make_shared<std::vector<T>>();
        else if (p_.use_count() > 1) p_ = std::make_shared<std::vector<T>>(*p_);
        return *p_;
    }
    void reset() { p_.reset(); }

private:
    std::shared_ptr<std::vector<T>> p_;
};

// id → helper. The interpreter and the JIT both call through it. Copies share the helpers (a
// kernel table's ~200 entries, many names on the heap, cost more than compiling a small
// program did).
class HelperTable {
public:
    void add(Helper helper);   // replaces an existing id
    const Helper* find(int32_t id) const {
        const std::vector<Helper>& v = by_id_.get();
        return id >= 0 && static_cast<std::size_t>(id) < v.size() && v[id].fn ? &v[id] : nullptr;
    }
    std::size_t size() const;
private:
    SharedVector<Helper> by_id_;
};

// The helpers bpf_conformance's tests assume (ubpf's test set): 0 gather_bytes,
// 1 memfrob, 2 no_op, 3 sqrti, 4 strcmp_ext, 5 unwind (stops the program when it returns 0).
HelperTable conformance_helpers();

// ──────────────────────────── the environment ─────────────────────────────

// What a helper may ask of the engine that called it.
enum class Request : uint8_t {
    None,
    Exit,       // end the program now with r0 = request_value (bpf_conformance unwind, LD_ABS miss)
    Trap,       // stop with a trap: request_message says why
    TailCall,   // continue in tail_target with r1 = request_value, in place of the current function
};

class Interpreter;

// Where the running engine is, so a helper can call back into the program
// (bpf_loop, bpf_for_each_map_elem). Set by the engine before each helper call.
struct CallbackSite {
    const void* engine = nullptr;   // the running program
    uint64_t r10 = 0;               // frame pointer of the calling frame
    uint64_t stack_top = 0;
    unsigned depth = 0;             // frames in use, the caller included
    int64_t* budget = nullptr;      // the run's remaining budget, shared with callbacks
    bool threaded = true;
    void* counters = nullptr;       // a counting run's coverage counters, shared with callbacks
};

// The world a program runs in. The harness derives from it to add maps, clocks,
// kernel objects; the vm only needs the memory map and the request channel.
class Env {
public:
    virtual ~Env() = default;

    MemoryMap mem;

    // Packet that legacy LD_ABS / LD_IND instructions read (the skb's linear data).
    const uint8_t* skb_data = nullptr;
    uint32_t skb_len = 0;

    // Set by a helper to stop the program; the engine clears it.
    Request request = Request::None;
    uint64_t request_value = 0;
    std::string request_message;
    const Interpreter* tail_target = nullptr;

    void request_exit(uint64_t r0) { request = Request::Exit; request_value = r0; }
    void request_trap(std::string why) { request = Request::Trap; request_message = std::move(why); }
    void request_tail_call(const Interpreter& target, uint64_t ctx) {
        request = Request::TailCall;
        tail_target = &target;
        request_value = ctx;
    }

    CallbackSite site;
    // Calls the program's function `func` (a value loaded by `lddw rX, func(...)`) with
    // r1..r5 = args, as a new frame below the helper's caller. Returns its r0; on a trap
    // the trap is recorded as a request and 0 is returned, and the helper should return.
    uint64_t call_function(uint64_t func, std::array<uint64_t, 5> args);
};

// ──────────────────────────────── programs ────────────────────────────────

// Source position of an instruction, from .BTF.ext line_info.
struct LineInfo {
    std::size_t pc = 0;
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
    std::string text;
};

// Program::lines: the line table, shared by copies of a Program (every Interpreter and Jit
// compiled from a program keeps a copy, and the table's strings were most of the copying).
// Read like a vector; push_back first copies a table another Program still shares.
class LineTable {
public:
    using value_type = LineInfo;
    using const_iterator = std::vector<LineInfo>::const_iterator;
    LineTable() = default;
    LineTable(std::vector<LineInfo> v) : v_(std::move(v)) {}   // NOLINT: converts, as assigning a vector did
    const_iterator begin() const { return v_.get().begin(); }
    const_iterator end() const { return v_.get().end(); }
    std::size_t size() const { return v_.get().size(); }
    bool empty() const { return size() == 0; }
    const LineInfo& operator[](std::size_t i) const { return v_.get()[i]; }
    operator const std::vector<LineInfo>&() const { return v_.get(); }   // NOLINT
    void push_back(LineInfo l) { v_.edit().push_back(std::move(l)); }
    void clear() { v_.reset(); }

private:
    SharedVector<LineInfo> v_;
};

// A program ready to run: raw instructions with every lddw pseudo source other than
// plain immediates and functions already resolved by the loader.
struct Program {
    std::string name;
    std::string section;
    std::string file;
    std::vector<Insn> insns;
    LineTable lines;   // sorted by pc; may be empty
    std::vector<std::pair<std::size_t, std::string>> functions;   // first pc -> name, entry first; may be empty

    // "file.c:42: return x;" for pc, or "" when there is no line_info.
    std::string source_line(std::size_t pc) const;
};

// ────────────────────────────── the interpreter ───────────────────────────

enum class TrapKind : uint8_t {
    MemoryFault,      // load/store outside every region or without permission
    Misaligned,       // atomic access not naturally aligned
    Budget,           // instruction budget exhausted
    CallDepth,        // more than kMaxCallDepth nested bpf2bpf calls
    BadCall,          // callx to something that is not a helper or function
    Helper,           // a helper reported a fault
    NoPacket,         // LD_ABS/LD_IND without a packet
};
const char* to_string(TrapKind kind);

struct Trap {
    TrapKind kind;
    std::size_t pc = 0;
    uint64_t addr = 0;
    uint32_t size = 0;
    std::string message;   // complete sentence with pc, address and nearest region
};

struct RunResult {
    uint64_t r0 = 0;
    uint64_t insns = 0;                // instructions executed
    std::optional<Trap> trap;
    bool ok() const { return !trap.has_value(); }
};

enum class Dispatch { Threaded, Switch };

// Execution counts of one program by pc, for coverage and profiles (see RunOptions).
struct Coverage {
    std::vector<uint64_t> hits;    // times the instruction at pc ran (an lddw counts at its first slot)
    std::vector<uint64_t> taken;   // times the jump at pc jumped (conditional jumps, may_goto; ja always)
    void reset(std::size_t n) {
        hits.assign(n, 0);
        taken.assign(n, 0);
    }
};

struct RunOptions {
    uint64_t budget = 1'000'000;       // instructions; 0 means no limit
    Dispatch dispatch = Dispatch::Threaded;
    // Coverage counters. A run adds to them (the caller zeroes them) and grows vectors shorter
    // than the program. With either set the run takes a counting copy of the switch
    // dispatcher (`dispatch` is ignored); with neither the hot loop is the uncounted one.
    // bpf2bpf calls and callbacks (bpf_loop, ...) count in their program's counters.
    Coverage* coverage = nullptr;      // the program run
    // The counters of another program, asked once per run for each program it enters by a
    // tail call (and for the program run when `coverage` is null). Null, or returning null:
    // that program is not counted.
    std::function<Coverage*(const Program&)> counters = nullptr;
    // Memory to use as the BPF stack (kStackSize * kMaxCallDepth bytes, 16-byte aligned)
    // instead of a fresh array on the native stack: runs given the same memory see the same
    // r10, so tests can compare engines on programs that compute with stack addresses.
    uint8_t* stack = nullptr;
};

inline constexpr unsigned kStackSize = 512;      // bytes per frame
inline constexpr unsigned kMaxCallDepth = 8;     // frames, the caller included
inline constexpr int64_t kMayGotoLoops = 8 * 1024 * 1024;
// Value an lddw of a function (pseudo source 4) loads: a tag and the target pc.
inline constexpr uint64_t kFuncPtrTag = 0xbf5f'0000'0000'0000ull;

// Everything Interpreter::compile checks, with its errors: decode(), a last instruction that
// cannot fall off the end, no unresolved lddw, only helpers the table has. The JIT validates
// with it and builds an interpreter only when a callback needs one. The budget tables are made
// where `budget` asks for them (an engine that counts instructions); else they are empty.
struct Validated {
    Decoded decoded;
    BudgetTables budget;
};
Result<Validated> validate(const Program& prog, const HelperTable& helpers, bool budget = true);

class Interpreter {
public:
    // Pre-decodes prog: validates it, resolves jump targets and helpers, fuses lddw.
    // Fails with an Error naming the pc for invalid instructions, unknown helpers and
    // unresolved map references.
    static Result<Interpreter> compile(const Program& prog, const HelperTable& helpers);

    // Runs from pc 0 with r1..r5 as given, r10 at the top of a fresh stack.
    RunResult run(Env& env, const std::array<uint64_t, 5>& args = {}, const RunOptions& opts = {}) const;

    const Program& program() const;
    // The handle a helper's callback site names (CallbackSite::engine), so another engine (the
    // JIT) can let Env::call_function run callbacks in this interpreter.
    const void* callback_engine() const { return impl_.get(); }
    Interpreter(Interpreter&&) noexcept;
    Interpreter& operator=(Interpreter&&) noexcept;
    ~Interpreter();

    struct Impl;
private:
    explicit Interpreter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace bpfsim::vm
