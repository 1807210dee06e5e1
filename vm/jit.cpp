// The x86-64 JIT (issue 7): one pass over the pre-validated program, xbyak as the assembler.
//
// Register mapping (the kernel's idea: BPF arguments in the SysV argument registers):
//   r0 rax  r1 rdi  r2 rsi  r3 rdx  r4 rcx  r5 r8   r6 rbx  r7 r13  r8 r14  r9 r15  r10 rbp
//   r12: the run context (Ctx below); r10, r11: scratch; r9: the budget (checked mode; in
//   memory at ctx.budget around calls out), else scratch or a stack slot (see "Optimisations").
// A helper call is `fn(r1..r5, env)`: r1..r5 are already in place, r9 gets the context and a
// small C++ trampoline sets Env::site and calls fn with the Env. r1..r5 are restored after the
// call (the interpreter keeps them too).
//
// Budget (checked mode): the interpreter's scheme exactly, with the same per-pc tables
// (charge/upto/credit): a taken jump charges charge[pc] and traps at pc when the budget goes
// negative, exits and calls likewise, helper requests and callx charge upto[pc]. So budget
// traps happen at the same pc and RunResult::insns is the same number.
//
// Memory (checked mode): an inline test for the live stack window [stack_lo, stack_top), then
// a call out to Env::mem.allows() (with its own last-hit cache); r10-relative accesses inside
// the current frame need no test at all. Failures trap with the interpreter's message.
//
// bpf2bpf calls push r6-r9, r10, the may_goto allowance, the current program and a return
// address on the native stack (no native call/ret, so the body keeps its 16-byte alignment);
// BPF frames live in a 8 x 512-byte stack area exactly like the interpreter's. Exits at depth
// > 0 pop them. Tail calls compile the target lazily (cached in the root Jit) and jump into its
// code, which shares the context layout, prologue and epilogue. Callbacks (Env::call_function)
// run in an interpreter of the same program, built at the first helper call of a run.
//
// Jumps: rel32 fields patched once the code of every pc is placed (Emitter::jump_pc, Near),
// not xbyak labels, which cost hash-map entries per label.
#include "vm/jit.hpp"
#include "vm/x86enc.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xbyak/xbyak.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <new>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>

// A missing opcode in the emitter's switch fails the build.
#pragma GCC diagnostic error "-Wswitch"

namespace bpfsim::vm {

namespace {

constexpr int64_t kUnlimited = INT64_MAX / 4;

struct Extra {
    std::optional<Trap> trap;
    uint64_t insns = 0;
    bool finished = false;        // r0 set by a request/ld_abs miss; ctx.r0 holds it
    std::exception_ptr exc;
};

// The run context r12 points to. Standard layout: the generated code uses offsetof.
struct Ctx {
    int64_t budget;
    uint64_t stack_lo;
    uint64_t top_minus[4];        // stack_top - 1, -2, -4, -8
    int64_t loops;                // may_goto allowance of the running frame
    uint64_t c_lo[2];             // last region hit by a read [0] / write [1]: its start,
    uint64_t c_last[2][4];        // and its end - 1, -2, -4, -8 (lo = ~0: empty)
    uint64_t c_size[2];           // and its size (0: empty)
    const Jit::Impl* cur;         // the program running (tail calls switch it)
    uint32_t depth;               // bpf2bpf frames pushed
    uint32_t pad;
    uint64_t entry_rsp;
    uint64_t r0;
    uint64_t save[10];            // r1..r10 (those in caller-saved registers) around a helper call
    uint64_t r10;                 // r10 at a helper call (Env::site)
    HelperFn fn;                  // the helper to call
    uint64_t tmp;
    Env* env;
    uint64_t stack_top;
    uint64_t fault_addr;
    uint32_t fault_size;
    uint32_t fault_perm;
    int64_t helper_id;
    uint64_t cb_b;                // the second argument of a call out (Emitter::call_c)
    uint64_t spill;               // rax around division and atomics
    int64_t budget_start;
    const Jit::Impl* root;
    Extra* x;
};

#define CTX(field) static_cast<uint32_t>(offsetof(Ctx, field))

using CFn = uint64_t (*)(Ctx*, uint64_t, uint64_t);
using EnterFn = void (*)(Ctx*, uint64_t, const uint64_t*);

std::size_t env_request_offset() {
    static const std::size_t off = [] {
        Env e;
        return static_cast<std::size_t>(reinterpret_cast<const char*>(&e.request) - reinterpret_cast<const char*>(&e));
    }();
    return off;
}

// Keeps the generator's buffer off executable pages: code is copied into its own mapping.
struct HeapAllocator : Xbyak::Allocator {
    uint8_t* alloc(std::size_t size) override { return static_cast<uint8_t*>(std::malloc(size)); }
    void free(uint8_t* p) override { std::free(p); }
    bool useProtect() const override { return false; }
};

// Code mappings of freed programs, kept for the next compile: the kernel took ~1.6 us a page
// to provide a fresh one (zeroed, on this machine), more than compiling the page's ~300
// instructions took. A kept mapping is read+exec like any other (W^X: made writable only while
// a compile copies code in, then executable again); private and anonymous, so a fork copies it
// like the rest of memory. At most kKeepBytes are kept; beyond that mappings are unmapped.
class CodeMappings {
public:
    static CodeMappings& instance() {
        static CodeMappings* m = new CodeMappings;   // (never destroyed: Jits in static storage free into it)
        return *m;
    }
    // A mapping of at least len bytes (a multiple of the page size), at most twice as long,
    // writable; its length in `got`. nullptr: none kept.
    uint8_t* take(std::size_t len, std::size_t& got) {
        uint8_t* p = nullptr;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = kept_.lower_bound(len);
            if (it == kept_.end() || it->first > 2 * len) return nullptr;
            got = it->first;
            p = it->second;
            kept_.erase(it);
            bytes_ -= got;
        }
        if (mprotect(p, got, PROT_READ | PROT_WRITE) != 0) {
            munmap(p, got);
            return nullptr;
        }
        return p;
    }
    void give(uint8_t* p, std::size_t len) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (bytes_ + len <= kKeepBytes && kept_.size() < kKeepCount) {
                kept_.emplace(len, p);
                bytes_ += len;
                return;
            }
        }
        munmap(p, len);
    }

private:
    static constexpr std::size_t kKeepBytes = 32u << 20, kKeepCount = 256;
    std::mutex mu_;
    std::multimap<std::size_t, uint8_t*> kept_;   // by length
    std::size_t bytes_ = 0;
};

}  // namespace

struct Jit::Impl {
    Program prog;
    HelperTable helpers;
    JitOptions opts;
    // The engine callbacks run in (Env::call_function): an interpreter, built at the first
    // helper call that may need it.
    mutable std::once_flag interp_once;
    mutable std::optional<Interpreter> interp;
    const void* engine() const {
        std::call_once(interp_once, [this] {
            auto i = Interpreter::compile(prog, helpers);   // cannot fail: build() validated prog
            if (i) interp.emplace(std::move(i.value()));
        });
        return interp ? interp->callback_engine() : nullptr;
    }
    std::vector<Op> ops;
    std::vector<int32_t> charge;
    std::vector<uint32_t> upto, credit;
    uint8_t* code = nullptr;
    std::size_t code_len = 0, code_used = 0;
    std::vector<std::size_t> pc_off;    // code offset of each pc (callx enters there)
    uint64_t entry_addr = 0;             // where a run or a tail call enters (before pc 0)
    // Unchecked-mode analysis (see "Optimisations"): registers live after each pc, jump
    // targets, and the stack slots (offsets from r10) kept in registers.
    std::vector<uint16_t> live_out;
    // Bits of the dst register that may be non-zero on entry to each pc (8, 16, 32 or 64: the
    // rest are known zero), for dropping an and with a mask that keeps them all.
    std::vector<uint8_t> dst_width;
    std::vector<uint8_t> target;   // bit 0: a jump lands here; 1: a loop head; 2: the previous pc does not fall through
    std::vector<int16_t> slots;
    // Bytes below r10 a run must zero: the deepest constant r10 offset the program uses, or the
    // whole frame when r10 escapes into other registers, there are frames or helper calls (a
    // tail call continues in the same frame).
    unsigned stack_zero = kStackSize;
    bool has_callx = false;
    const Impl* root = nullptr;
    mutable std::mutex tail_mu;
    mutable std::map<const Interpreter*, std::unique_ptr<Impl>> tails;

    ~Impl() {
        if (code) CodeMappings::instance().give(code, code_len);
    }
    EnterFn enter() const { return reinterpret_cast<EnterFn>(code); }
    const Impl* tail_target(const Interpreter& target) const;
};

std::unique_ptr<Jit::Impl> build(const Program& prog, const HelperTable& helpers, JitOptions opts);

// ───────────────────────────── run-time support ─────────────────────────────

namespace {

void record_trap(Ctx* c, TrapKind kind, std::size_t pc, bool charged, std::string msg, uint64_t addr = 0, uint32_t size = 0) {
    const Jit::Impl* self = c->cur;
    int64_t used = c->budget_start - c->budget;
    if (kind != TrapKind::Budget && !charged && pc < self->upto.size()) used += self->upto[pc];
    c->x->insns = self->opts.checked ? static_cast<uint64_t>(std::max<int64_t>(used, 0)) : 0;
    if (!self->prog.lines.empty()) {
        auto src = self->prog.source_line(pc);
        if (!src.empty()) msg += fmt::format(" ({})", src);
    }
    c->x->trap = Trap{kind, pc, addr, size, std::move(msg)};
    c->env->request = Request::None;
}

void budget_trap(Ctx* c, std::size_t pc) {
    record_trap(c, TrapKind::Budget, pc, true, fmt::format("pc {}: instruction budget of {} exhausted", pc, c->budget_start));
}

// kind | 0x100 when the trapping instruction's region is already charged.
uint64_t cb_trap(Ctx* c, uint64_t pc, uint64_t kind_bits) {
    try {
        const auto kind = static_cast<TrapKind>(kind_bits & 0xff);
        const bool charged = kind_bits & 0x100;
        switch (kind) {
        case TrapKind::MemoryFault:
            record_trap(c, kind, pc, charged,
                        fmt::format("pc {}: invalid memory access: {}", pc,
                                    c->env->mem.explain(c->fault_addr, c->fault_size, static_cast<uint8_t>(c->fault_perm))),
                        c->fault_addr, c->fault_size);
            break;
        case TrapKind::Misaligned:
            record_trap(c, kind, pc, charged, fmt::format("pc {}: misaligned {}-byte atomic access at {:#x}", pc, c->fault_size, c->fault_addr),
                        c->fault_addr, c->fault_size);
            break;
        case TrapKind::Budget: budget_trap(c, pc); break;
        case TrapKind::CallDepth:
            record_trap(c, kind, pc, charged, fmt::format("pc {}: call depth limit of {} frames exceeded", pc, kMaxCallDepth));
            break;
        case TrapKind::BadCall:
            record_trap(c, kind, pc, charged,
                        fmt::format("pc {}: kfunc call (BTF id {}) has no implementation", pc, c->cur->prog.insns[pc].imm));
            break;
        case TrapKind::NoPacket:
            record_trap(c, kind, pc, charged, fmt::format("pc {}: legacy packet load (LD_ABS/LD_IND) but the program has no packet", pc));
            break;
        case TrapKind::Helper:
            record_trap(c, kind, pc, charged, fmt::format("pc {}: helper failed", pc));
            break;
        }
    } catch (...) {
        c->x->exc = std::current_exception();
    }
    return 0;
}

void clear_region_cache(Ctx* c) {
    for (unsigned w = 0; w < 2; ++w) {
        c->c_lo[w] = ~0ull;
        c->c_size[w] = 0;
        for (auto& l : c->c_last[w]) l = 0;
    }
}

uint64_t cb_check(Ctx* c, uint64_t addr, uint64_t size_perm) {
    const uint32_t size = size_perm & 0xff;
    const uint8_t perm = static_cast<uint8_t>(size_perm >> 8);
    if (c->env->mem.allows(addr, size, perm)) {
        // Remember the region for the inline test (plain reads and writes; not the stack,
        // whose window moves with the frames). Helpers may change the map: see the trampoline.
        if (perm == kRead || perm == kWrite) {
            auto r = c->env->mem.find(addr);
            if (r && r->kind != RegionKind::Stack && (r->perm & perm) == perm && r->size >= 8) {
                const unsigned w = perm == kWrite;
                c->c_lo[w] = r->start;
                c->c_size[w] = r->size;
                c->c_last[w][0] = r->end() - 1;
                c->c_last[w][1] = r->end() - 2;
                c->c_last[w][2] = r->end() - 4;
                c->c_last[w][3] = r->end() - 8;
            }
        }
        return 1;
    }
    c->fault_addr = addr;
    c->fault_size = size;
    c->fault_perm = perm;
    return 0;
}

// A frame was pushed (b = 1: zero it) or popped: the live stack window follows r10.
uint64_t cb_frame(Ctx* c, uint64_t r10, uint64_t zero) {
    if (zero) std::memset(reinterpret_cast<void*>(r10 - kStackSize), 0, kStackSize);
    c->stack_lo = r10 - kStackSize;
    c->env->mem.set_stack(r10 - kStackSize, c->stack_top);
    return 0;
}

uint64_t helper_trampoline(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, Ctx* c) {
    Env& env = *c->env;
    env.site = CallbackSite{c->cur->engine(), c->r10, c->stack_top, c->depth + 1, &c->budget, true, nullptr};
    clear_region_cache(c);   // the helper may add or remove regions
    try {
        return c->fn(r1, r2, r3, r4, r5, env);
    } catch (...) {
        c->x->exc = std::current_exception();
        env.request_trap("exception");
        return 0;
    }
}

// After a helper set Env::request. 0: the run is over (result recorded); else the code
// address of a tail call's target (ctx.tmp = its r1).
uint64_t cb_request(Ctx* c, uint64_t pc, uint64_t charged) {
    try {
        Env& env = *c->env;
        const Jit::Impl* self = c->cur;
        const bool checked = self->opts.checked;
        if (!charged) {
            if (checked) c->budget -= self->upto[pc];   // (unchecked: no budget tables)
            c->helper_id = self->prog.insns[pc].imm;
        }
        if (c->x->exc) {
            record_trap(c, TrapKind::Helper, pc, true, "exception");
            return 0;
        }
        if (env.request == Request::Exit) {
            env.request = Request::None;
            if (checked && c->budget < 0) {
                budget_trap(c, pc);
                return 0;
            }
            c->r0 = env.request_value;
            c->x->finished = true;
            return 0;
        }
        if (env.request == Request::TailCall) {
            env.request = Request::None;
            const Jit::Impl* t = c->root->tail_target(*env.tail_target);
            if (!t) {
                record_trap(c, TrapKind::Helper, pc, true, fmt::format("pc {}: tail call target could not be compiled", pc));
                return 0;
            }
            c->cur = t;
            c->loops = kMayGotoLoops;
            c->tmp = env.request_value;
            if (checked && c->budget < 0) {
                budget_trap(c, 0);
                return 0;
            }
            return t->entry_addr;
        }
        env.request = Request::None;
        record_trap(c, TrapKind::Helper, pc, true, fmt::format("pc {}: helper {} failed: {}", pc, c->helper_id, env.request_message));
    } catch (...) {
        c->x->exc = std::current_exception();
        if (!c->x->trap) c->x->trap = Trap{TrapKind::Helper, pc, 0, 0, "exception"};
    }
    return 0;
}

// callx: 1 trap recorded; 0 a helper (ctx.fn set); else the code address of a function.
uint64_t cb_callx(Ctx* c, uint64_t v, uint64_t pc) {
    try {
        const Jit::Impl* self = c->cur;
        const bool checked = self->opts.checked;
        const uint64_t t = v & 0xffffffffull;
        if ((v & ~0xffffffffull) == kFuncPtrTag && t < self->ops.size() && self->ops[t] != Op::LddwHigh) {
            if (c->depth + 1 >= kMaxCallDepth) {
                record_trap(c, TrapKind::CallDepth, pc, true, fmt::format("pc {}: call depth limit of {} frames exceeded", pc, kMaxCallDepth));
                return 1;
            }
            if (checked) c->budget += self->credit[t];
            if (checked && c->budget < 0) {
                budget_trap(c, t);
                return 1;
            }
            return reinterpret_cast<uint64_t>(self->code) + self->pc_off[t];
        }
        const Helper* h = v <= 0x7fffffffull ? self->helpers.find(static_cast<int32_t>(v)) : nullptr;
        if (!h) {
            record_trap(c, TrapKind::BadCall, pc, true,
                        fmt::format("pc {}: callx r{} = {:#x} is neither a helper id nor a function address", pc,
                                    unsigned(self->prog.insns[pc].dst), v));
            return 1;
        }
        c->fn = h->fn;
        c->helper_id = static_cast<int64_t>(v);
        return 0;
    } catch (...) {
        c->x->exc = std::current_exception();
        if (!c->x->trap) c->x->trap = Trap{TrapKind::BadCall, pc, 0, 0, "exception"};
        return 1;
    }
}

// LD_ABS/LD_IND: 0 the value is in ctx.tmp; 1 the run is over (trap, or r0 = 0 on a miss).
uint64_t cb_ldpkt(Ctx* c, uint64_t off, uint64_t bytes_pc) {
    const unsigned bytes = bytes_pc & 0xff;
    const std::size_t pc = bytes_pc >> 8;
    Env& env = *c->env;
    if (!env.skb_data) {
        cb_trap(c, pc, static_cast<uint64_t>(TrapKind::NoPacket));
        return 1;
    }
    const auto o = static_cast<int64_t>(off);
    if (o < 0 || static_cast<uint64_t>(o) + bytes > env.skb_len) {
        if (c->cur->opts.checked) c->budget -= c->cur->upto[pc];   // (unchecked: no budget tables)
        if (c->cur->opts.checked && c->budget < 0) {
            budget_trap(c, pc);
            return 1;
        }
        c->r0 = 0;
        c->x->finished = true;
        return 1;
    }
    const uint8_t* b = env.skb_data + o;
    uint64_t v = 0;
    for (unsigned k = 0; k < bytes; ++k) v = (v << 8) | b[k];
    c->tmp = v;
    return 0;
}

// ───────────────────────────────── the emitter ─────────────────────────────────

using namespace Xbyak;
using namespace Xbyak::util;

enum Cond { EQ, NE, UGT, UGE, ULT, ULE, SGT, SGE, SLT, SLE, SET };

// Forms by op, from the opcode table itself: no call per instruction, and known at compile
// time (the folds are chosen by them).
constexpr Form kForms[] = {
#define BPF_OP(ID, CODE, DISC, DVAL, FORM, MNEM, SYM) Form::FORM,
#include "vm/opcodes.def"
#undef BPF_OP
};
static_assert(std::size(kForms) == kOpCount);

// What the analysis needs of each op, looked up instead of switched on: on a large program the
// switches' mispredictions were most of the analysis time.
struct Facts {
    uint8_t mark = 0;      // a jump target to mark: 1 pc + 1 + off, 2 pc + 1 + imm
    uint8_t succ = 0;      // the same, as a successor in the flow (not calls)
    bool falls = true;     // the next instruction is a successor
    // Registers read and written, for the liveness the folds need. Anything unusual (calls,
    // atomics, legacy packet loads) reads every register: never wrong.
    uint8_t use = kAll;    // kD, kS, kAll, kExit (an exit: exit_use)
    bool def = false;      // writes dst
    uint8_t base = 0;      // a memory access with base kD or kS (a stack access when r10)
    uint8_t esc = kD | kS; // fields where r10 escapes (is used other than as a load/store base)
    bool frames = false;   // bpf2bpf calls, callx, callbacks: r10 means another frame there
    bool callx = false;
    bool helpers = false;  // a helper may tail-call a program that uses more of the frame
    static constexpr uint8_t kD = 1, kS = 2, kAll = 4, kExit = 8;
    // The same as masks, so the analysis loops compute rather than branch (derived in facts()):
    // the mark's and the successor's relative field (all ones: off or imm; has_*: 1 or 0),
    // fall-through, the registers used (d, s: the field's bit; all: every register; exit:
    // exit_use) and the one defined.
    int32_t mark_off = 0, mark_imm = 0, succ_off = 0, succ_imm = 0;
    uint8_t has_mark = 0, has_succ = 0;
    uint16_t falls_mask = 0, use_d = 0, use_s = 0, use_all = 0, use_exit = 0, def_mask = 0;
    // For a scan along straight-line code (Emitter::sink): whether the op may leave the line or
    // read every register, and which fields' registers it reads, writes or uses as a base.
    bool barrier = false;
    uint16_t touch_d = 0, touch_s = 0;
    // frames, callx and helpers as bits, or-ed over a program at once
    uint8_t kinds = 0;
    static constexpr uint8_t kFrames = 1, kCallx = 2, kHelpers = 4;
    uint8_t and_imm = 0;   // 1: an and with an immediate (a mask KnownWidth may find redundant)
};

// Indexed by every Op value, LddwHigh included: an lddw's second slot does nothing, so loops
// over the program need no test for it (liveness flows through it unchanged).
constexpr std::size_t kFactRows = static_cast<std::size_t>(Op::LddwHigh) + 1;
const std::array<Facts, kFactRows>& facts() {
    static const std::array<Facts, kFactRows> t = [] {
        // Filled explicitly: g++ 12.2 leaves an element it returns from this lambda zero, member
        // initialisers not applied, where only one field of it is written after `all{}` (the
        // LddwHigh row: liveness then stopped at every lddw).
        std::array<Facts, kFactRows> all;
        all.fill(Facts{});
        all[static_cast<std::size_t>(Op::LddwHigh)].use = 0;
        all[static_cast<std::size_t>(Op::LddwHigh)].esc = 0;
        for (std::size_t i = 0; i < kOpCount; ++i) {
            const Op op = static_cast<Op>(i);
            Facts& x = all[i];
            constexpr uint8_t D = Facts::kD, S = Facts::kS;
            switch (op_info(op).form) {
            case Form::ALU_K: x.use = (op == Op::MOV64_IMM || op == Op::MOV32_IMM) ? 0 : D; x.def = true; break;
            case Form::ALU_X: x.use = (op == Op::MOV64_REG || op == Op::MOV32_REG) ? S : D | S; x.def = true; break;
            case Form::NEG: case Form::END: x.use = D; x.def = true; break;
            case Form::MOVSX: x.use = S; x.def = true; break;
            case Form::JA: x.mark = x.succ = 1; x.falls = false; x.use = 0; break;
            case Form::JA32: x.mark = x.succ = 2; x.falls = false; x.use = 0; break;
            case Form::MAY_GOTO: x.mark = x.succ = 1; x.use = 0; break;
            case Form::JCOND_K: x.mark = x.succ = 1; x.use = D; break;
            case Form::JCOND_X: x.mark = x.succ = 1; x.use = D | S; break;
            case Form::LDDW: x.use = 0; x.def = true; break;
            case Form::LDX: case Form::LDXS: x.use = S; x.def = true; x.base = S; x.esc = D; break;
            case Form::ST: x.use = D; x.base = D; x.esc = 0; break;
            case Form::STX: x.use = D | S; x.base = D; x.esc = S; break;
            case Form::EXIT: x.falls = false; x.use = Facts::kExit; break;
            case Form::CALL_LOCAL: x.mark = 2; x.frames = true; break;
            case Form::CALLX: x.frames = x.callx = true; break;
            case Form::CALL: case Form::CALL_KFUNC: case Form::LDABS: case Form::LDIND: x.helpers = true; break;
            default: break;
            }
            if (op == Op::LDDW_FUNC) {
                x.mark = 2;
                x.frames = true;
            }
            x.and_imm = op == Op::AND32_IMM || op == Op::AND64_IMM;
        }
        for (Facts& x : all) {
            x.mark_off = x.mark == 1 ? -1 : 0;
            x.mark_imm = x.mark == 2 ? -1 : 0;
            x.has_mark = x.mark != 0;
            x.succ_off = x.succ == 1 ? -1 : 0;
            x.succ_imm = x.succ == 2 ? -1 : 0;
            x.has_succ = x.succ != 0;
            x.falls_mask = x.falls ? 0xffff : 0;
            x.use_d = (x.use & Facts::kD) ? 0xffff : 0;
            x.use_s = (x.use & Facts::kS) ? 0xffff : 0;
            x.use_all = (x.use & Facts::kAll) ? (1u << kNumRegs) - 1 : 0;
            x.use_exit = (x.use & Facts::kExit) ? 0xffff : 0;
            x.def_mask = x.def ? 0xffff : 0;
            x.barrier = x.mark || x.succ || !x.falls || (x.use & (Facts::kAll | Facts::kExit));
            x.touch_d = (x.use & Facts::kD) || x.def || x.base == Facts::kD ? 0xffff : 0;
            x.touch_s = (x.use & Facts::kS) || x.base == Facts::kS ? 0xffff : 0;
            x.kinds = static_cast<uint8_t>((x.frames ? Facts::kFrames : 0) | (x.callx ? Facts::kCallx : 0) | (x.helpers ? Facts::kHelpers : 0));
        }
        return all;
    }();
    return t;
}

struct Emitter : CodeGenerator {
    const Jit::Impl& P;
    const bool checked;
    Reg64 R[kNumRegs];
    const Reg64 S[3] = {r9, r10, r11};   // promoted stack slots (unchecked mode), P.slots order
    std::vector<std::size_t> pc_off;       // code offset of each pc (SIZE_MAX: not placed yet)
    // Jumps to pcs and to the emitter's own labels are rel32 fields patched at the end, once
    // every offset is known: an xbyak label costs hash-map entries, most of the compile time of
    // a branchy program.
    struct Near {
        std::size_t pos = SIZE_MAX;   // bound at this code offset
    };
    struct NearRef {
        std::size_t at;            // offset of the rel32 field
        const std::size_t* pos;    // the offset it jumps to: a pc's pc_off entry or a Near's pos
    };
    std::deque<Near> extra;
    std::vector<NearRef> near_refs;
    struct TrapStub {
        std::size_t pc;
        uint32_t bits;
        Near* label;
    };
    std::vector<TrapStub> traps;
    // Out-of-line code emitted after the body: a lambda kept inline (a std::function allocated
    // for most of these, a malloc and a free per memory check or helper call).
    struct Deferred {
        alignas(8) unsigned char buf[64];
        void (*call)(const void*);
        template <class F>
        explicit Deferred(const F& f) {
            static_assert(sizeof(F) <= sizeof(buf) && alignof(F) <= 8 && std::is_trivially_copyable_v<F> &&
                          std::is_trivially_destructible_v<F>);
            ::new (static_cast<void*>(buf)) F(f);
            call = [](const void* p) { (*std::launder(static_cast<const F*>(p)))(); };
        }
    };
    std::vector<Deferred> deferred;
    std::vector<uint8_t> unchecked_load;            // loads a group check already covers (see group())
    std::vector<uint8_t> done;                      // instructions a fold at an earlier pc took care of (sink())
    Label L_entry;
    Near done_, finish_, return_, common_trap, callc;   // the shared tails (Nears: jumps to them are patched)
    // After a helper call that set Env::request (r10 = its pc): one shared tail per value of
    // cb_request's `charged`, emitted where a call uses it.
    Near request_[2];
    bool request_used_[2] = {false, false};

    Emitter(const Jit::Impl& p, std::size_t size, Allocator* alloc)
        : CodeGenerator(size, nullptr, alloc), P(p), checked(p.opts.checked) {
        const Reg64 base[kNumRegs] = {rax, rdi, rsi, rdx, rcx, r8, rbx, r13, r14, r15, rbp};
        for (unsigned i = 0; i < kNumRegs; ++i) {
            R[i] = base[(i + p.opts.rotate) % kNumRegs];
            hw[i] = static_cast<uint8_t>(R[i].getIdx());
            saved[i] = caller_saved(R[i]);
        }
    }

    // ── Direct encoding (vm/x86enc.hpp) ──
    uint8_t hw[kNumRegs];   // hardware number of each BPF register's home
    bool saved[kNumRegs];   // whether that home is caller-saved (a helper call may clobber it)
    // Encoding in place: here() is where the next bytes go (room for an encoder's widest
    // writes), put(c) keeps what c encoded there. Nothing else may emit in between.
    x86::X86Code here() {
        if (size_ + x86::X86Code::kRoom > maxSize_) throw Xbyak::Error(Xbyak::ERR_CODE_IS_TOO_BIG);   // (compile retries larger)
        return x86::X86Code(top_ + size_);
    }
    void put(const x86::X86Code& c) { size_ += c.n; }
    // mov qword [r12 + disp], reg; mov reg, qword [r12 + disp]; mov dst, src; mov dst, imm (64-bit)
    void to_ctx(uint32_t disp, unsigned reg) {
        x86::X86Code c = here();
        x86::mem(c, false, true, x86::kMovRmR, reg, 12, static_cast<int32_t>(disp));
        put(c);
    }
    void from_ctx(unsigned reg, uint32_t disp) {
        x86::X86Code c = here();
        x86::mem(c, false, true, x86::kMovRRm, reg, 12, static_cast<int32_t>(disp));
        put(c);
    }
    void mov_rr(unsigned dst, unsigned src) {
        x86::X86Code c = here();
        x86::rr(c, true, x86::kMovRmR, src, dst);
        put(c);
    }
    void mov_imm(unsigned dst, uint64_t imm) {
        x86::X86Code c = here();
        x86::mov_ri(c, dst, imm);
        put(c);
    }
    void test_self(unsigned reg) {   // test reg, reg (64-bit)
        x86::X86Code c = here();
        x86::rr(c, true, x86::kTestRmR, reg, reg);
        put(c);
    }

    bool caller_saved(const Reg64& r) const {
        return r == rax || r == rdi || r == rsi || r == rdx || r == rcx || r == r8;
    }
    // Lea, movzx and address folding keep every trap at its pc and every budget charge, so
    // checked mode uses them too; the others change what a faulting access looks like.
    // (callx may enter any pc, the middle of a folded pattern too: no folding in checked mode
    // then; in unchecked mode the verifier allows only function entries.)
    static uint32_t enabled(const Jit::Impl& p) {
        constexpr uint32_t exact = kJitOptLea | kJitOptMovzx | kJitOptAddr | kJitOptAlign | kJitOptKnownBits;
        return !p.opts.checked ? p.opts.optimize : p.has_callx ? 0 : p.opts.optimize & exact;
    }
    const uint32_t on = enabled(P);   // the optimisations this compile uses
    bool opt(uint32_t bit) const { return on & bit; }

    int slot_of(int16_t off) const {
        for (std::size_t k = 0; k < P.slots.size(); ++k)
            if (P.slots[k] == off) return static_cast<int>(k);
        return -1;
    }
    void spill() {
        for (std::size_t k = 0; k < P.slots.size(); ++k) mov(qword[R[10] + P.slots[k]], S[k]);
    }
    void reload() {
        for (std::size_t k = 0; k < P.slots.size(); ++k) mov(S[k], qword[R[10] + P.slots[k]]);
    }

    Near& fresh() { return extra.emplace_back(); }

    // The op at q (Invalid past the end); whether q continues straight-line code (no jump lands
    // there), for the folds.
    Op op_at(std::size_t q) const { return q < P.ops.size() ? P.ops[q] : Op::Invalid; }
    bool inside(std::size_t q) const { return q < P.ops.size() && !P.target[q]; }

    void rel32_to(const std::size_t& pos) {
        near_refs.push_back({getSize(), &pos});
        x86::X86Code c = here();
        c.put32(0);
        put(c);
    }
    void rel32_to(const Near& l) { rel32_to(l.pos); }
    using CodeGenerator::L;
    void L(Near& l) { l.pos = getSize(); }
    // A near jmp (cc = kJmp) or jcc to the code offset pos will hold, patched by patch_near().
    static constexpr uint8_t kJmp = 0xff;
    void jump_to(uint8_t cc, const std::size_t& pos) {
        x86::X86Code c = here();
        c.put_if(0x0f, cc != kJmp);
        c.put(cc == kJmp ? 0xe9 : static_cast<uint8_t>(0x80 | cc));
        c.put32(0);
        near_refs.push_back({getSize() + c.n - 4, &pos});
        put(c);
    }
    using CodeGenerator::jmp;
    void jmp(const Near& l, LabelType = T_NEAR) { jump_to(kJmp, l.pos); }
#define BPFSIM_NEAR_JCC(NAME, CC)                                                 \
    using CodeGenerator::NAME;                                                    \
    void NAME(const Near& l, LabelType = T_NEAR) { jump_to(CC, l.pos); }
    BPFSIM_NEAR_JCC(jb, 0x2)
    BPFSIM_NEAR_JCC(jc, 0x2)
    BPFSIM_NEAR_JCC(jae, 0x3)
    BPFSIM_NEAR_JCC(je, 0x4)
    BPFSIM_NEAR_JCC(jz, 0x4)
    BPFSIM_NEAR_JCC(jne, 0x5)
    BPFSIM_NEAR_JCC(jnz, 0x5)
    BPFSIM_NEAR_JCC(jbe, 0x6)
    BPFSIM_NEAR_JCC(ja, 0x7)
    BPFSIM_NEAR_JCC(js, 0x8)
    BPFSIM_NEAR_JCC(jl, 0xc)
    BPFSIM_NEAR_JCC(jge, 0xd)
    BPFSIM_NEAR_JCC(jle, 0xe)
    BPFSIM_NEAR_JCC(jg, 0xf)
#undef BPFSIM_NEAR_JCC
    void patch_near() {
        for (const NearRef& r : near_refs) {
            if (*r.pos == SIZE_MAX) throw Error(ErrorCode::Internal, "jit: a jump to a place never bound");
            const auto rel = static_cast<uint32_t>(static_cast<int64_t>(*r.pos) - static_cast<int64_t>(r.at + 4));
            std::memcpy(top_ + r.at, &rel, 4);   // (r.at + 4 <= size_: inside the buffer)
        }
    }

    // One stub per (pc, kind), shared by the jumps of that pc (they come one after another).
    Near& trap(std::size_t pc, TrapKind kind, bool charged = false) {
        const uint32_t bits = static_cast<uint32_t>(kind) | (charged ? 0x100u : 0u);
        for (std::size_t i = traps.size(); i-- > 0 && traps[i].pc == pc;)
            if (traps[i].bits == bits) return *traps[i].label;
        Near& l = fresh();
        traps.push_back({pc, bits, &l});
        return l;
    }

    void call_c(CFn fn) {   // r10 = a, ctx.cb_b = b (arg_b); result in r11; BPF registers preserved
        mov_imm(11, reinterpret_cast<uint64_t>(fn));
        x86::X86Code c = here();
        c.put(0xe8);   // call rel32
        put(c);
        rel32_to(callc);
    }
    void arg_b(uint32_t b) {   // mov qword [r12 + cb_b], b
        if (b > 0x7fffffffu) throw Error(ErrorCode::Internal, fmt::format("jit: callback argument {:#x} does not fit 31 bits", b));
        x86::X86Code c = here();
        x86::store_imm(c, 8, 12, static_cast<int32_t>(CTX(cb_b)), static_cast<int32_t>(b));
        put(c);
    }

    // The budget lives in r9 in checked mode: charged with a register subtraction per taken
    // branch (a memory operand would chain every branch through store forwarding).
    void budget_check(std::size_t pc) {
        if (!checked) return;
        test_self(9);
        js(trap(pc, TrapKind::Budget), T_NEAR);
    }
    void budget_to_ctx() {
        if (checked) to_ctx(CTX(budget), 9);
    }
    void budget_from_ctx() {
        if (checked) from_ctx(9, CTX(budget));
    }

    // x86 condition codes (the low nibble of jcc); a condition's negation differs in bit 0.
    static uint8_t x86_cc(Cond c) {
        static constexpr uint8_t cc[] = {0x4 /* e */, 0x5 /* ne */, 0x7 /* a */, 0x3 /* ae */, 0x2 /* b */, 0x6 /* be */,
                                         0xf /* g */, 0xd /* ge */, 0xc /* l */, 0xe /* le */, 0x5 /* nz */};
        return cc[c];
    }
    // A near jmp (cc = kJmp) or jcc to the code of pc.
    void jump_pc(uint8_t cc, std::size_t target) { jump_to(cc, pc_off[target]); }
    // A short jcc forward to a place bound later with bind_short (at most 127 bytes on).
    std::size_t jcc_short(uint8_t cc) {
        x86::X86Code c = here();
        c.put(static_cast<uint8_t>(0x70 | cc));
        c.put(0);
        put(c);
        return getSize() - 1;
    }
    void bind_short(std::size_t at) {
        const std::size_t dist = getSize() - (at + 1);
        if (dist > 127) throw Error(ErrorCode::Internal, "jit: short jump out of range");
        rewrite(at, dist, 1);
    }

    void charge_and_jump(std::size_t pc, std::size_t target) {
        if (checked) {
            x86::X86Code c = here();
            x86::ri(c, true, x86::kExtSub, 9, P.charge[pc]);   // sub r9, charge
            put(c);
            js(trap(pc, TrapKind::Budget), T_NEAR);
        }
        jump_pc(kJmp, target);
    }

    // invert_to: jump to that pc when the condition is false instead (branch folding).
    void cond_jump(std::size_t pc, const Insn& in, Cond c, bool is64, bool reg, std::size_t invert_to = SIZE_MAX) {
        const unsigned d = hw[in.dst];
        x86::X86Code e = here();
        if (c == SET) {
            if (reg) x86::rr(e, is64, x86::kTestRmR, hw[in.src], d);
            else x86::test_ri(e, is64, d, static_cast<uint32_t>(in.imm));
        } else {
            if (reg) x86::rr(e, is64, x86::kCmpRmR, hw[in.src], d);
            else if (in.imm == 0) x86::rr(e, is64, x86::kTestRmR, d, d);   // the same flags, shorter
            else x86::ri(e, is64, x86::kExtCmp, d, in.imm);
        }
        put(e);
        const std::size_t target = pc + 1 + in.off;
        const uint8_t cc = x86_cc(c);
        if (invert_to != SIZE_MAX) {
            jump_pc(cc ^ 1, invert_to);
            return;
        }
        if (!checked) {
            jump_pc(cc, target);
            return;
        }
        const std::size_t skip = jcc_short(cc ^ 1);   // over the charge and the jump: < 20 bytes
        charge_and_jump(pc, target);
        bind_short(skip);
    }

    // The address of a memory access in r10 (or a frame-relative expression), checked.
    RegExp address(std::size_t pc, const Reg64& base, int16_t off, unsigned size, uint8_t perm, bool need_reg = false) {
        if (!checked) {
            if (!need_reg) return base + off;
            lea(r10, ptr[base + off]);
            return RegExp(r10);
        }
        const bool in_frame = base == R[10] && frame_slot(off, size);
        if (in_frame && !need_reg) return base + off;
        if (in_frame) {
            lea(r10, ptr[base + off]);
            return RegExp(r10);
        }
        return checked_address(pc, static_cast<unsigned>(base.getIdx()), off, size, perm);
    }

    // r10 + off .. + size inside the frame: needs no check.
    static bool frame_slot(int16_t off, unsigned size) {
        return off >= -static_cast<int>(kStackSize) && off + static_cast<int>(size) <= 0;
    }

    // address() as a base register's hardware number and a displacement (r10 and 0 when checked).
    std::pair<unsigned, int32_t> operand(std::size_t pc, uint8_t base, int16_t off, unsigned size, uint8_t perm) {
        if (!checked || (base == 10 && frame_slot(off, size))) return {hw[base], off};
        checked_address(pc, hw[base], off, size, perm);
        return {10, 0};
    }

    // The address e computed into r10 and checked against the memory map (checked mode).
    RegExp checked_address(std::size_t pc, const RegExp& e, unsigned size, uint8_t perm) {
        lea(r10, ptr[e]);
        return check_r10(pc, size, perm);
    }
    // The same for [base + disp] (hardware register numbers), encoded directly: every checked
    // access to memory other than the stack comes here.
    RegExp checked_address(std::size_t pc, unsigned base, int32_t disp, unsigned size, uint8_t perm) {
        x86::X86Code c = here();
        x86::mem(c, false, true, x86::kLea, 10, base, disp);   // lea r10, [base + disp]
        put(c);
        return check_r10(pc, size, perm);
    }
    // cmp r10, qword [r12 + disp]
    void cmp_r10_ctx(uint32_t disp) {
        x86::X86Code c = here();
        x86::mem(c, false, true, x86::kCmpRRm, 10, 12, static_cast<int32_t>(disp));
        put(c);
    }
    RegExp check_r10(std::size_t pc, unsigned size, uint8_t perm) {
        // Inline: the region the last plain read (write) hit. Out of line: the live stack
        // window (a base other than r10 pointing into the stack), then MemoryMap::allows.
        const unsigned k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
        Near& slow = fresh();
        Near& ok = fresh();
        Near& stack = fresh();
        if (perm == kRead || perm == kWrite) {
            const uint32_t w = perm == kWrite ? 1 : 0;
            cmp_r10_ctx(CTX(c_lo) + 8 * w);
            jb(stack, T_NEAR);
            cmp_r10_ctx(CTX(c_last) + 32 * w + 8 * k);
            ja(stack, T_NEAR);
        } else {
            jmp(stack, T_NEAR);
        }
        L(ok);
        Near* trap_mem = &trap(pc, TrapKind::MemoryFault);
        deferred.emplace_back([this, &slow, &ok, &stack, trap_mem, size, perm, k] {
            L(stack);
            cmp_r10_ctx(CTX(stack_lo));
            jb(slow, T_NEAR);
            cmp_r10_ctx(CTX(top_minus) + 8 * k);
            jbe(ok, T_NEAR);
            L(slow);
            arg_b(size | (unsigned(perm) << 8));
            call_c(cb_check);
            test_self(11);
            jz(*trap_mem, T_NEAR);
            jmp(ok, T_NEAR);
        });
        return RegExp(r10);
    }

    void align_check(std::size_t pc, unsigned size) {
        if (!checked || size == 1) return;
        Near& bad = fresh();
        test(r10b, size - 1);
        jnz(bad, T_NEAR);
        Near* t = &trap(pc, TrapKind::Misaligned);
        deferred.emplace_back([this, &bad, t, size] {
            L(bad);
            mov(qword[r12 + CTX(fault_addr)], r10);
            mov(dword[r12 + CTX(fault_size)], size);
            jmp(*t, T_NEAR);
        });
    }

    void push_frame(const Near& ret) {
        inc(dword[r12 + CTX(depth)]);
        db(0x4c);   // lea r11, [rip + ret]
        db(0x8d);
        db(0x1d);
        rel32_to(ret);
        for (unsigned i = 6; i <= 10; ++i) push(R[i]);
        push(qword[r12 + CTX(loops)]);
        push(qword[r12 + CTX(cur)]);
        push(r11);
        sub(R[10], kStackSize);
        mov(qword[r12 + CTX(loops)], static_cast<uint32_t>(kMayGotoLoops));
        mov(r10, R[10]);
        arg_b(1);
        call_c(cb_frame);
    }

    // fn static (CALL_HELPER) or already in ctx.fn (callx); charged: callx charged its region.
    void helper_call(std::size_t pc, HelperFn fn, bool charged) {
        // BPF r1..r10 in caller-saved registers are saved (r1..r5 keep their values, as in the
        // interpreter); the arguments go to the SysV registers; r0 receives the result.
        // (Encoded directly: a program calls helpers every few instructions.)
        constexpr unsigned kR9 = 9, kR11 = 11, kR12 = 12, kRax = 0;
        for (unsigned i = 1; i < kNumRegs; ++i)
            if (saved[i]) to_ctx(CTX(save) + 8 * (i - 1), hw[i]);
        static constexpr uint8_t argreg[5] = {7, 6, 2, 1, 8};   // rdi, rsi, rdx, rcx, r8
        for (unsigned k = 0; k < 5; ++k) {
            if (hw[k + 1] == argreg[k]) continue;
            if (saved[k + 1]) from_ctx(argreg[k], CTX(save) + 8 * k);
            else mov_rr(argreg[k], hw[k + 1]);
        }
        to_ctx(CTX(r10), hw[10]);
        if (fn) {
            mov_imm(kR11, reinterpret_cast<uint64_t>(fn));
            to_ctx(CTX(fn), kR11);
        }
        budget_to_ctx();   // callbacks charge it there
        mov_rr(kR9, kR12);
        mov_imm(kR11, reinterpret_cast<uint64_t>(&helper_trampoline));
        {
            x86::X86Code c = here();
            x86::call_r(c, kR11);
            put(c);
        }
        budget_from_ctx();
        if (hw[0] != kRax) mov_rr(kR11, kRax);
        for (unsigned i = 1; i < kNumRegs; ++i)
            if (saved[i]) from_ctx(hw[i], CTX(save) + 8 * (i - 1));
        if (hw[0] != kRax) mov_rr(hw[0], kR11);
        from_ctx(kR11, CTX(env));
        {
            x86::X86Code c = here();
            x86::cmp_m8i(c, kR11, static_cast<int32_t>(env_request_offset()), 0);
            put(c);
        }
        Near& req = fresh();
        jne(req, T_NEAR);
        request_used_[charged] = true;
        deferred.emplace_back([this, &req, pc, charged] {
            L(req);
            x86::X86Code c = here();
            x86::mov_ri32(c, 10, static_cast<uint32_t>(pc));   // mov r10d, pc
            put(c);
            jmp(request_[charged]);
        });
    }

    // The shared tails of helper calls that set Env::request.
    void request_tails() {
        for (unsigned charged = 0; charged < 2; ++charged) {
            if (!request_used_[charged]) continue;
            L(request_[charged]);
            to_ctx(CTX(r0), hw[0]);
            arg_b(charged);
            call_c(cb_request);
            test_self(11);
            jz(done_, T_NEAR);
            from_ctx(hw[1], CTX(tmp));
            from_ctx(hw[0], CTX(r0));
            x86::X86Code c = here();
            x86::jmp_r(c, 11);   // jmp r11
            put(c);
        }
    }

    void shift(int kind, bool is64, const Insn& in, bool reg) {
        static constexpr uint8_t ext[] = {x86::kExtShl, x86::kExtShr, x86::kExtSar};
        const unsigned d = hw[in.dst];
        x86::X86Code c = here();
        if (!reg) {
            const uint8_t s = static_cast<uint8_t>(static_cast<uint32_t>(in.imm) & (is64 ? 63 : 31));
            if (s) x86::shift_ri(c, is64, ext[kind], d, s);
            else if (!is64) x86::rr(c, false, x86::kMovRmR, d, d);
            put(c);
            return;
        }
        // The count goes to cl by swapping rcx with the source (no scratch register: they may
        // hold stack slots); the destination is wherever its value is after the swap.
        constexpr unsigned kRcx = 1;
        const unsigned s = hw[in.src];
        const unsigned t = s == kRcx ? d : d == kRcx ? s : d == s ? kRcx : d;
        if (s != kRcx) x86::xchg64(c, kRcx, s);
        x86::shift_cl(c, is64, ext[kind], t);
        if (!is64) x86::rr(c, false, x86::kMovRmR, t, t);   // a count of 0 leaves the upper half: clear it
        if (s != kRcx) x86::xchg64(c, kRcx, s);
        put(c);
    }

    void divmod(bool is64, bool sign, bool mod, const Insn& in, bool reg) {
        mov(qword[r12 + CTX(spill)], rax);
        mov(r10, rdx);
        if (reg) mov(r11, R[in.src]);
        else if (is64) mov(r11, static_cast<uint64_t>(static_cast<int64_t>(in.imm)));
        else mov(r11d, static_cast<uint32_t>(in.imm));
        if (R[in.dst] != rax) mov(rax, R[in.dst]);
        Near &zero = fresh(), &m1 = fresh(), &join = fresh();
        if (is64) test(r11, r11);
        else test(r11d, r11d);
        jz(zero, T_NEAR);
        if (sign) {
            if (is64) cmp(r11, -1);
            else cmp(r11d, -1);
            je(m1, T_NEAR);
        }
        if (is64) {
            if (sign) {
                cqo();
                idiv(r11);
            } else {
                xor_(edx, edx);
                div(r11);
            }
            mov(r11, mod ? rdx : rax);
        } else {
            if (sign) {
                cdq();
                idiv(r11d);
            } else {
                xor_(edx, edx);
                div(r11d);
            }
            mov(r11d, mod ? edx : eax);
        }
        jmp(join, T_NEAR);
        L(zero);
        if (!mod) xor_(r11d, r11d);
        else if (is64) mov(r11, rax);
        else mov(r11d, eax);
        if (sign) {
            jmp(join, T_NEAR);
            L(m1);
            if (mod) xor_(r11d, r11d);
            else if (is64) {
                mov(r11, rax);
                neg(r11);
            } else {
                mov(r11d, eax);
                neg(r11d);
            }
        }
        L(join);
        mov(rax, qword[r12 + CTX(spill)]);
        mov(rdx, r10);
        mov(R[in.dst], r11);
    }

    enum class Rmw { Add, Or, And, Xor };
    void atomic_rmw(std::size_t pc, const Insn& in, Rmw k, bool is64, bool fetch) {
        const unsigned size = is64 ? 8 : 4;
        address(pc, R[in.dst], in.off, size, kReadWrite, true);
        align_check(pc, size);
        const Reg64& s = R[in.src];
        auto M = is64 ? qword[r10] : dword[r10];
        auto sreg = [&](const Reg64& r) -> Reg { return is64 ? Reg(r) : Reg(r.cvt32()); };
        if (!fetch) {
            lock();
            switch (k) {
            case Rmw::Add: add(M, sreg(s)); break;
            case Rmw::Or: or_(M, sreg(s)); break;
            case Rmw::And: and_(M, sreg(s)); break;
            case Rmw::Xor: xor_(M, sreg(s)); break;
            }
            return;
        }
        if (k == Rmw::Add) {
            mov(r11, s);
            lock();
            xadd(M, sreg(r11));
            if (is64) mov(s, r11);
            else mov(s.cvt32(), r11d);
            return;
        }
        // cmpxchg loop; rax is saved in ctx.spill and the operand read from there if src lives in rax.
        mov(qword[r12 + CTX(spill)], rax);
        const Address saved = is64 ? qword[r12 + CTX(spill)] : dword[r12 + CTX(spill)];
        mov(sreg(rax), M);
        Near& retry = fresh();
        L(retry);
        mov(r11, rax);
        switch (k) {
        case Rmw::Or: s == rax ? or_(sreg(r11), saved) : or_(sreg(r11), sreg(s)); break;
        case Rmw::And: s == rax ? and_(sreg(r11), saved) : and_(sreg(r11), sreg(s)); break;
        case Rmw::Xor: s == rax ? xor_(sreg(r11), saved) : xor_(sreg(r11), sreg(s)); break;
        case Rmw::Add: break;
        }
        lock();
        cmpxchg(M, sreg(r11));
        jne(retry, T_NEAR);
        if (is64) mov(s, rax);
        else mov(s.cvt32(), eax);
        if (s != rax) mov(rax, qword[r12 + CTX(spill)]);
    }

    void load(std::size_t pc, const Insn& in, unsigned size, bool sx) {
        if (size == 8 && in.src == 10 && !P.slots.empty())
            if (const int k = slot_of(in.off); k >= 0) {
                mov(R[in.dst], S[k]);
                return;
            }
        const auto [base, disp] = unchecked_load[pc] ? std::pair<unsigned, int32_t>{hw[in.src], in.off}
                                                      : operand(pc, in.src, in.off, size, kRead);
        const unsigned d = hw[in.dst];
        x86::X86Code c = here();
        switch (size) {
        case 1: x86::mem(c, false, sx, sx ? x86::kMovsx8 : x86::kMovzx8, d, base, disp); break;
        case 2: x86::mem(c, false, sx, sx ? x86::kMovsx16 : x86::kMovzx16, d, base, disp); break;
        case 4: x86::mem(c, false, sx, sx ? x86::kMovsxd : x86::kMovRRm, d, base, disp); break;
        default: x86::mem(c, false, true, x86::kMovRRm, d, base, disp); break;
        }
        put(c);
    }

    void store(std::size_t pc, const Insn& in, unsigned size, bool reg) {
        if (size == 8 && in.dst == 10 && !P.slots.empty())
            if (const int k = slot_of(in.off); k >= 0) {
                if (reg) mov(S[k], R[in.src]);
                else mov(S[k], static_cast<uint64_t>(static_cast<int64_t>(in.imm)));
                return;
            }
        const auto [base, disp] = operand(pc, in.dst, in.off, size, kWrite);
        x86::X86Code c = here();
        if (reg) {
            const unsigned s = hw[in.src];
            switch (size) {
            case 1: x86::mem(c, false, false, x86::kMovRmR8, s, base, disp); break;
            case 2: x86::mem(c, true, false, x86::kMovRmR, s, base, disp); break;
            case 4: x86::mem(c, false, false, x86::kMovRmR, s, base, disp); break;
            default: x86::mem(c, false, true, x86::kMovRmR, s, base, disp); break;
            }
        } else {
            x86::store_imm(c, size, base, disp, in.imm);
        }
        put(c);
    }

    void ld_pkt(std::size_t pc, const Insn& in, unsigned bytes, bool ind) {
        if (ind) {
            mov(r10d, R[in.src].cvt32());
            add(r10d, static_cast<uint32_t>(in.imm));
            movsxd(r10, r10d);
        } else {
            mov(r10, static_cast<uint64_t>(static_cast<int64_t>(in.imm)));
        }
        arg_b(static_cast<uint32_t>(bytes | (pc << 8)));
        call_c(cb_ldpkt);
        test(r11, r11);
        jnz(done_, T_NEAR);
        mov(R[0], qword[r12 + CTX(tmp)]);
    }

    void alu(const Insn& in, int kind, bool is64, bool reg) {   // 0 add 1 sub 2 mul 3 or 4 and 5 xor 6 mov
        const unsigned d = hw[in.dst];
        x86::X86Code c = here();
        if (reg) {
            static constexpr uint16_t op[] = {x86::kAddRmR, x86::kSubRmR, 0, x86::kOrRmR, x86::kAndRmR, x86::kXorRmR, x86::kMovRmR};
            if (kind == 2) x86::rr(c, is64, x86::kImulRRm, d, hw[in.src]);
            else x86::rr(c, is64, op[kind], hw[in.src], d);
        } else if (kind == 2) {
            x86::imul_ri(c, is64, d, d, in.imm);
        } else if (kind == 6) {
            if (is64) x86::mov_ri64(c, d, in.imm);
            else x86::mov_ri32(c, d, static_cast<uint32_t>(in.imm));
        } else {
            static constexpr uint8_t ext[] = {x86::kExtAdd, x86::kExtSub, 0, x86::kExtOr, x86::kExtAnd, x86::kExtXor};
            x86::ri(c, is64, ext[kind], d, in.imm);
        }
        put(c);
    }

    // Whether op leaves r9-r11 alone and calls nothing: promoted slots can stay in registers.
    static bool clean(Op op, const Insn& in) {
        switch (kForms[static_cast<std::size_t>(op)]) {
        case Form::ALU_K:
        case Form::ALU_X: {
            const uint8_t k = in.code & 0xf0;
            return k != 0x30 && k != 0x90;   // div, mod
        }
        case Form::NEG: case Form::MOVSX: case Form::END: case Form::JA: case Form::JA32:
        case Form::JCOND_K: case Form::JCOND_X: case Form::MAY_GOTO: case Form::LDX: case Form::LDXS:
        case Form::ST: case Form::STX:
            return true;
        case Form::LDDW: return op == Op::LDDW;
        default: return false;
        }
    }

    // be16: x = *(u8 *)(rB + o + 1); y = *(u8 *)(rB + o); y <<= 8; [y &= M;] y |= x, with x dead
    // after  ->  movzx y, word [rB + o]; rol y16, 8 [; and y, M & 0xff00 | 0xff]. (clang moves a
    // `& 0x3fff` of the result there; only M's second byte can clear bits of y << 8.) Preceded by
    // rS = rB; rS += rC with rS the loads' base, dead after (or y): the load is from [rB + rC + o].
    // Returns the instructions consumed from pc.
    std::size_t be16(std::size_t pc) {
        if (!opt(kJitOptBe16)) return 0;
        const auto& I = P.prog.insns;
        std::size_t q = pc;
        const bool addr = opt(kJitOptAddr) && op_at(pc) == Op::MOV64_REG && I[pc].dst != I[pc].src && op_at(pc + 1) == Op::ADD64_REG &&
                          I[pc + 1].dst == I[pc].dst && inside(pc + 1) && inside(pc + 2);
        if (addr) q = pc + 2;
        if (!(op_at(q) == Op::LDX_B && op_at(q + 1) == Op::LDX_B && inside(q + 1) && inside(q + 2) && inside(q + 3) &&
              (op_at(q + 2) == Op::LSH32_IMM || op_at(q + 2) == Op::LSH64_IMM)))
            return 0;
        const Insn& a = I[q];
        const Insn& b = I[q + 1];
        const Insn& sh = I[q + 2];
        const bool masked = (op_at(q + 3) == Op::AND32_IMM || op_at(q + 3) == Op::AND64_IMM) && inside(q + 4) && I[q + 3].dst == sh.dst;
        const std::size_t at = q + 3 + (masked ? 1 : 0);
        const Insn& o = I[at];
        // y is the one shifted; either load may come first, and only the second may overwrite
        // the base.
        const Insn& y = sh.dst == a.dst ? a : b;
        const Insn& x = sh.dst == a.dst ? b : a;
        if (!((op_at(at) == Op::OR32_REG || op_at(at) == Op::OR64_REG) && a.src == b.src && a.dst != a.src && sh.imm == 8 &&
              sh.dst == y.dst && o.dst == y.dst && o.src == x.dst && x.dst != y.dst && x.off == y.off + 1 &&
              !(P.live_out[at] & (1u << x.dst))))
            return 0;
        // (encoded directly)
        x86::X86Code c = here();
        if (addr) {
            const uint8_t s_ = I[pc].dst;
            if (a.src != s_ || (y.dst != s_ && (P.live_out[at] & (1u << s_)))) return 0;
            x86::mem_index(c, false, x86::kMovzx16, hw[y.dst], hw[I[pc].src], hw[I[pc + 1].src == s_ ? I[pc].src : I[pc + 1].src], y.off);
        } else {
            x86::mem(c, false, false, x86::kMovzx16, hw[y.dst], hw[a.src], y.off);
        }
        x86::rol16(c, hw[y.dst], 8);
        put(c);
        if (masked) {
            x86::X86Code m = here();
            x86::ri(m, false, x86::kExtAnd, hw[y.dst], (I[q + 3].imm & 0xff00) | 0xff);
            put(m);
        }
        return at - pc + 1;
    }

    // wA &= 2^k - 1 where wA has no bit at k or above (e.g. `& 0xffff` of a 16-bit load or of a
    // value an earlier and already cut, at a join): nothing to do.
    bool redundant_and(std::size_t pc) const {
        if (!opt(kJitOptKnownBits) || P.dst_width.empty()) return false;
        const Op op = P.ops[pc];
        if (op != Op::AND32_IMM && op != Op::AND64_IMM) return false;
        const uint64_t m = op == Op::AND32_IMM ? static_cast<uint32_t>(P.prog.insns[pc].imm)
                                               : static_cast<uint64_t>(static_cast<int64_t>(P.prog.insns[pc].imm));
        if ((m & (m + 1)) != 0) return false;   // not 2^k - 1
        const unsigned k = static_cast<unsigned>(std::popcount(m));
        return P.dst_width[pc] <= k && (op == Op::AND64_IMM || k <= 32);
    }

    // Padding to the next 16-byte boundary, as one instruction where a fall-through runs it:
    // up to 9 bytes a plain multi-byte nop, then prefixes on `cs nopw 0(%rax,%rax,1)` (10 bytes).
    void pad16() {
        const std::size_t p = 16 - getSize() % 16;
        if (p <= 9) {
            nop(p);
            return;
        }
        for (std::size_t i = 10; i < p; ++i) db(0x66);
        for (const uint8_t b : {0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00}) db(b);
    }

    // ── Optimisations (unchecked mode) ──
    // Patterns of clang's BPF output that one or two x86 instructions do. A pattern spans
    // instructions no jump lands inside of. Returns the instructions consumed (0: none).
    // The patterns an op can start, chosen at compile time: emit() tries them in the case of
    // its op (on random code a dispatch of its own on the op mispredicted nearly every time).
    // Returns the instructions consumed (0: none).
    template <Op O>
    std::size_t fold_at(std::size_t pc) {
        constexpr Form f = kForms[static_cast<std::size_t>(O)];
        if constexpr (O == Op::MOV64_REG) {
            if (const std::size_t k = be16(pc)) return k;
            if (const std::size_t k = fold_addr(pc)) return k;
            if (const std::size_t k = fold_lea(pc)) return k;
            return fold_movzx(pc);
        } else if constexpr (O == Op::MOV32_REG) {
            return fold_movzx(pc);
        } else if constexpr (O == Op::LDX_B) {
            return be16(pc);
        } else if constexpr (O == Op::LDX_DW) {
            return fold_rmw(pc);
        } else if constexpr (O == Op::ADD64_REG || O == Op::XOR64_REG || O == Op::OR64_REG || O == Op::AND64_REG ||
                             O == Op::MUL64_REG) {
            return sink(pc) ? 1 : 0;
        } else if constexpr (O == Op::AND32_IMM || O == Op::AND64_IMM) {
            return redundant_and(pc) ? 1 : 0;   // nothing to emit
        } else if constexpr (f == Form::JCOND_K || f == Form::JCOND_X) {
            return fold_branch(pc);
        } else {
            return 0;
        }
    }

    // if (cond) goto +1; goto L  ->  if (!cond) goto L
    std::size_t fold_branch(std::size_t pc) {
        const auto& I = P.prog.insns;
        const Insn& a = I[pc];
        if (opt(kJitOptBranch) && a.off == 1 && inside(pc + 1) && (op_at(pc + 1) == Op::JA || op_at(pc + 1) == Op::JA32)) {
            const Form f = kForms[static_cast<std::size_t>(op_at(pc))];
            if (f == Form::JCOND_K || f == Form::JCOND_X) {
                const Insn& j = I[pc + 1];
                const std::size_t to = pc + 2 + static_cast<std::size_t>(op_at(pc + 1) == Op::JA ? j.off : j.imm);
                static const Cond conds[] = {EQ, NE, UGT, UGE, ULT, ULE, SGT, SGE, SLT, SLE, SET};
                const std::string_view sym = op_info(op_at(pc)).name;
                const std::size_t k = sym.starts_with("JEQ") ? 0 : sym.starts_with("JNE") ? 1 : sym.starts_with("JGT") ? 2 :
                                      sym.starts_with("JGE") ? 3 : sym.starts_with("JLT") ? 4 : sym.starts_with("JLE") ? 5 :
                                      sym.starts_with("JSGT") ? 6 : sym.starts_with("JSGE") ? 7 : sym.starts_with("JSLT") ? 8 :
                                      sym.starts_with("JSLE") ? 9 : sym.starts_with("JSET") ? 10 : 11;
                if (k < 11) {
                    cond_jump(pc, a, conds[k], sym.find("64") != std::string_view::npos, f == Form::JCOND_X, to);
                    return 2;
                }
            }
        }
        return 0;
    }
    // rX = *(u64 *)(r10 + o); rX op= rY | imm; *(u64 *)(r10 + o) = rX, rX dead after
    //   ->  op qword [r10 + o], rY | imm   (counters kept on the stack)
    std::size_t fold_rmw(std::size_t pc) {
        const auto& I = P.prog.insns;
        const Insn& a = I[pc];
        if (!opt(kJitOptRmw) || !P.slots.empty() || pc + 2 >= P.ops.size()) return 0;
        // (the shape tested with one branch: each test alone mispredicts on random code)
        const Insn& w = I[pc + 2];
        const bool shape = static_cast<unsigned>(op_at(pc) == Op::LDX_DW) & (a.src == 10) & (a.dst != 10) & !P.target[pc + 1] & !P.target[pc + 2] &
                           (P.ops[pc + 2] == Op::STX_DW) & (w.dst == 10) & (w.src == a.dst) & (w.off == a.off) &
                           (I[pc + 1].dst == a.dst);
        if (shape && !(P.live_out[pc + 2] & (1u << a.dst))) {
            const Insn& m = I[pc + 1];
            const bool reg = kForms[static_cast<std::size_t>(op_at(pc + 1))] == Form::ALU_X;
            if (!reg || m.src != a.dst) {
                const Address slot = qword[R[10] + a.off];
                switch (op_at(pc + 1)) {
                case Op::ADD64_REG: add(slot, R[m.src]); return 3;
                case Op::SUB64_REG: sub(slot, R[m.src]); return 3;
                case Op::OR64_REG: or_(slot, R[m.src]); return 3;
                case Op::AND64_REG: and_(slot, R[m.src]); return 3;
                case Op::XOR64_REG: xor_(slot, R[m.src]); return 3;
                case Op::ADD64_IMM: add(slot, m.imm); return 3;
                case Op::SUB64_IMM: sub(slot, m.imm); return 3;
                case Op::OR64_IMM: or_(slot, m.imm); return 3;
                case Op::AND64_IMM: and_(slot, m.imm); return 3;
                case Op::XOR64_IMM: xor_(slot, m.imm); return 3;
                default: break;
                }
            }
        }
        return 0;
    }
    // rS = rB; rS += rC; dst = *(size *)(rS + o), rS dead after  ->  load from [rB + rC + o]
    std::size_t fold_addr(std::size_t pc) {
        const auto& I = P.prog.insns;
        const Insn& a = I[pc];
        if (opt(kJitOptAddr) && op_at(pc) == Op::MOV64_REG && a.dst != a.src && op_at(pc + 1) == Op::ADD64_REG && inside(pc + 1) &&
            inside(pc + 2) && I[pc + 1].dst == a.dst) {
            const Op l = op_at(pc + 2);
            const Insn& ld = I[pc + 2];
            const uint8_t s_ = a.dst;
            if ((l == Op::LDX_B || l == Op::LDX_H || l == Op::LDX_W || l == Op::LDX_DW) && ld.src == s_ &&
                (ld.dst == s_ || !(P.live_out[pc + 2] & (1u << s_)))) {
                const Reg64& b = R[a.src];
                const Reg64& c = R[I[pc + 1].src == s_ ? a.src : I[pc + 1].src];
                const Reg64& d = R[ld.dst];
                const unsigned size = code::mem_size(ld.code);
                if (!checked) {   // (encoded directly)
                    static constexpr uint16_t op[] = {x86::kMovzx8, x86::kMovzx16, x86::kMovRRm, x86::kMovRRm};
                    x86::X86Code e = here();
                    x86::mem_index(e, l == Op::LDX_DW, op[l == Op::LDX_B ? 0 : l == Op::LDX_H ? 1 : l == Op::LDX_W ? 2 : 3], hw[ld.dst], hw[a.src],
                                   hw[I[pc + 1].src == s_ ? a.src : I[pc + 1].src], ld.off);
                    put(e);
                    return 3;
                }
                const RegExp m = checked_address(pc + 2, b + c + ld.off, size, kRead);
                switch (l) {
                case Op::LDX_B: movzx(d.cvt32(), byte[m]); break;
                case Op::LDX_H: movzx(d.cvt32(), word[m]); break;
                case Op::LDX_W: mov(d.cvt32(), dword[m]); break;
                default: mov(d, qword[m]); break;
                }
                return 3;
            }
        }
        return 0;
    }
    // rA = rB; rA += rC | imm  ->  lea rA, [rB + rC | imm]
    std::size_t fold_lea(std::size_t pc) {
        const auto& I = P.prog.insns;
        const Insn& a = I[pc];
        if (opt(kJitOptLea) && op_at(pc) == Op::MOV64_REG && a.dst != a.src && inside(pc + 1) && I[pc + 1].dst == a.dst) {
            const Insn& b = I[pc + 1];
            x86::X86Code c = here();
            if (op_at(pc + 1) == Op::ADD64_REG) {
                x86::mem_index(c, true, x86::kLea, hw[a.dst], hw[a.src], hw[b.src == a.dst ? a.src : b.src], 0);
                put(c);
                return 2;
            }
            if (op_at(pc + 1) == Op::ADD64_IMM) {
                x86::mem(c, false, true, x86::kLea, hw[a.dst], hw[a.src], b.imm);
                put(c);
                return 2;
            }
        }
        return 0;
    }
    // wA = wB; wA &= 0xff | 0xffff  ->  movzx
    std::size_t fold_movzx(std::size_t pc) {
        const auto& I = P.prog.insns;
        const Insn& a = I[pc];
        if (opt(kJitOptMovzx) && (op_at(pc) == Op::MOV32_REG || op_at(pc) == Op::MOV64_REG) && inside(pc + 1) &&
            (op_at(pc + 1) == Op::AND32_IMM || op_at(pc + 1) == Op::AND64_IMM) && I[pc + 1].dst == a.dst &&
            (I[pc + 1].imm == 0xff || I[pc + 1].imm == 0xffff)) {
            if (I[pc + 1].imm == 0xff) movzx(R[a.dst].cvt32(), R[a.src].cvt8());
            else movzx(R[a.dst].cvt32(), R[a.src].cvt16());
            return 2;
        }
        return 0;
    }

    // rA op= rB; <straight-line code without rA and rB>; rB = rA, rA dead after (op commutes)
    //   ->  rB op= rA, and nothing at the copy (clang's accumulators: `r7 += r8; ...; r8 = r7`).
    bool sink(std::size_t pc) {
        if (!opt(kJitOptSink)) return false;
        const Op op = P.ops[pc];
        const bool commutes = op == Op::ADD64_REG || op == Op::XOR64_REG || op == Op::OR64_REG || op == Op::AND64_REG ||
                              op == Op::MUL64_REG;
        const Insn& a = P.prog.insns[pc];
        if (!commutes || a.dst == a.src || a.dst == 10 || a.src == 10) return false;
        const auto pair = static_cast<uint16_t>(1u << a.dst | 1u << a.src);
        const auto& fact = facts();
        // A few instructions ahead at most: the copy ends the accumulator's update.
        for (std::size_t q = pc + 1; q < P.ops.size() && q <= pc + 16 && !P.target[q]; ++q) {
            const Op o = P.ops[q];
            const Insn& b = P.prog.insns[q];
            if ((o == Op::MOV64_REG) & (b.dst == a.src) & (b.src == a.dst)) {
                if (P.live_out[q] & (1u << a.dst)) return false;
                done[q] = 1;
                alu(Insn{a.code, a.src, a.dst, a.off, a.imm}, op == Op::ADD64_REG ? 0 : op == Op::XOR64_REG ? 5 : op == Op::OR64_REG ? 3 : op == Op::AND64_REG ? 4 : 2,
                    true, true);
                return true;
            }
            // Anything that may leave the line, call out, or touch either register stops it
            // (an lddw's second slot touches nothing).
            const Facts& x = fact[static_cast<std::size_t>(o)];
            const auto touched = static_cast<uint16_t>(((1u << b.dst) & x.touch_d) | ((1u << b.src) & x.touch_s));
            if (x.barrier | ((touched & pair) != 0)) return false;
        }
        return false;
    }

    // ── Grouped bounds checks (checked mode) ──
    // Loads from one base register within straight-line code (no jump lands inside, the base
    // is not redefined, nothing calls out) share one test of the whole span against the cached
    // region. When it fails, a copy of the same instructions with a test per access runs
    // instead, so a fault still happens at its own pc after everything before it. Returns the
    // last pc of the group emitted at pc, or 0.
    std::size_t group(std::size_t pc) {
        if (!checked || !(P.opts.optimize & kJitOptGroup) || P.has_callx) return 0;
        const auto& I = P.prog.insns;
        auto is_load = [&](std::size_t q) {
            const Form f = kForms[static_cast<std::size_t>(P.ops[q])];
            return f == Form::LDX || f == Form::LDXS;
        };
        if (!is_load(pc) || I[pc].src == 10) return 0;
        const uint8_t base = I[pc].src;
        int lo = I[pc].off, hi = I[pc].off + static_cast<int>(code::mem_size(I[pc].code));
        std::size_t last = pc, members = 1;
        for (std::size_t q = pc; q < P.ops.size(); ++q) {
            if (q > pc && P.target[q]) break;
            const Op op = P.ops[q];
            if (op == Op::LddwHigh) continue;
            const Form f = kForms[static_cast<std::size_t>(op)];
            const bool straight = f == Form::ALU_K || f == Form::ALU_X || f == Form::NEG || f == Form::MOVSX || f == Form::END ||
                                  f == Form::LDX || f == Form::LDXS || f == Form::ST || f == Form::STX || op == Op::LDDW;
            if (!straight) break;
            if (q > pc && is_load(q) && I[q].src == base) {
                const int a = I[q].off, b = I[q].off + static_cast<int>(code::mem_size(I[q].code));
                if (std::max(hi, b) - std::min(lo, a) > 255) break;
                lo = std::min(lo, a);
                hi = std::max(hi, b);
                last = q;
                ++members;
            }
            // The base changes: the group ends here (a load into it still belongs to it).
            const bool writes_base = (f == Form::ALU_K || f == Form::ALU_X || f == Form::NEG || f == Form::MOVSX ||
                                      f == Form::END || f == Form::LDX || f == Form::LDXS || op == Op::LDDW) && I[q].dst == base;
            if (writes_base) break;
        }
        if (members < 2) return 0;
        Near& slow = fresh();
        Near& after = fresh();
        // (addr - lo) + span must not carry and must stay within the region's size.
        lea(r10, ptr[R[base] + lo]);
        mov(r11, r10);
        sub(r11, qword[r12 + CTX(c_lo)]);
        add(r11, static_cast<uint32_t>(hi - lo));
        jc(slow, T_NEAR);
        cmp(r11, qword[r12 + CTX(c_size)]);
        ja(slow, T_NEAR);
        auto body = [this, pc, last, base](bool fast) {
            for (std::size_t q = pc; q <= last; ++q) {
                if (fast && q > pc) pc_off[q] = getSize();
                if (P.ops[q] == Op::LddwHigh) continue;
                const Form f = kForms[static_cast<std::size_t>(P.ops[q])];
                unchecked_load[q] = fast && (f == Form::LDX || f == Form::LDXS) && P.prog.insns[q].src == base;
                emit(q, P.ops[q], false);
                unchecked_load[q] = 0;
            }
        };
        body(true);
        L(after);
        deferred.emplace_back([this, &slow, &after, body] {
            L(slow);
            body(false);
            jmp(after, T_NEAR);
        });
        return last;
    }

    // Emits the instruction at pc, or with fold set the pattern of several starting there;
    // returns the instructions consumed. With probe set only says whether op has an emitter (1)
    // or not (0).
    std::size_t emit(std::size_t pc, Op op, bool probe, bool fold = false);

    void generate() {
        const std::size_t n = P.prog.insns.size();
        pc_off.assign(n, SIZE_MAX);
        unchecked_load.assign(n, 0);
        done.assign(n, 0);
        // Prologue: void enter(Ctx* rdi, code address rsi, const uint64_t args[5] rdx).
        push(rbx);
        push(rbp);
        push(r12);
        push(r13);
        push(r14);
        push(r15);
        sub(rsp, 8);
        mov(r12, rdi);
        mov(qword[r12 + CTX(entry_rsp)], rsp);
        mov(r11, rsi);
        mov(r10, rdx);
        for (unsigned i = 1; i <= 5; ++i) mov(R[i], qword[r10 + 8 * (i - 1)]);
        mov(R[10], qword[r12 + CTX(r10)]);
        for (unsigned i : {0u, 6u, 7u, 8u, 9u}) xor_(R[i].cvt32(), R[i].cvt32());
        budget_from_ctx();
        jmp(r11);

        // A run or a tail call enters here: promoted stack slots come from the stack.
        L(L_entry);
        reload();
        const bool align = opt(kJitOptAlign);
        for (std::size_t pc = 0; pc < n; ++pc) {
            // Loop heads start a 16-byte fetch block (the code is copied to a page start), and so
            // do targets only jumps reach, where the padding never runs.
            // (target bits 1 and 2, see analyse(): one branch, rarely taken)
            if ((P.target[pc] & 6) && align && getSize() % 16) pad16();
            pc_off[pc] = getSize();
            const Op op = P.ops[pc];
            if (op == Op::LddwHigh || done[pc]) continue;
            if (const std::size_t last = group(pc)) {
                pc = last;
                continue;
            }
            // (every op that starts a fold is clean: no wrapping around one)
            const bool wrap = !P.slots.empty() && !clean(op, P.prog.insns[pc]);
            if (wrap) spill();
            const std::size_t k = emit(pc, op, false, on != 0);
            if (wrap && op != Op::EXIT && op != Op::CALL_KFUNC) reload();
            for (std::size_t q = pc + 1; q < pc + k; ++q) pc_off[q] = pc_off[pc];   // inside a fold: where it starts
            pc += k - 1;
        }

        // Shared tails.
        L(finish_);
        budget_to_ctx();
        mov(qword[r12 + CTX(r0)], R[0]);
        L(done_);
        mov(rsp, qword[r12 + CTX(entry_rsp)]);
        add(rsp, 8);
        pop(r15);
        pop(r14);
        pop(r13);
        pop(r12);
        pop(rbp);
        pop(rbx);
        ret();

        L(common_trap);   // esi = pc, edx = kind bits
        budget_to_ctx();
        mov(rdi, r12);
        mov(rsp, qword[r12 + CTX(entry_rsp)]);
        mov(r11, reinterpret_cast<uint64_t>(&cb_trap));
        call(r11);
        jmp(done_, T_NEAR);

        L(callc);   // r11 = fn, r10 = a, ctx.cb_b = b; the budget goes through ctx.budget
        push(rax);
        push(rdi);
        push(rsi);
        push(rdx);
        push(rcx);
        push(r8);
        push(r9);
        push(r10);
        sub(rsp, 8);
        budget_to_ctx();
        mov(rdi, r12);
        mov(rsi, r10);
        mov(rdx, qword[r12 + CTX(cb_b)]);
        call(r11);
        mov(r11, rax);
        add(rsp, 8);
        pop(r10);
        pop(r9);
        budget_from_ctx();
        pop(r8);
        pop(rcx);
        pop(rdx);
        pop(rsi);
        pop(rdi);
        pop(rax);
        ret();

        L(return_);   // exit at depth > 0
        dec(dword[r12 + CTX(depth)]);
        pop(r11);
        pop(qword[r12 + CTX(cur)]);
        pop(qword[r12 + CTX(loops)]);
        for (unsigned i = 10; i >= 6; --i) pop(R[i]);
        push(r11);
        sub(rsp, 8);
        mov(r10, R[10]);
        arg_b(0);
        call_c(cb_frame);
        add(rsp, 8);
        pop(r11);
        jmp(r11);

        for (std::size_t i = 0; i < deferred.size(); ++i) {
            const Deferred d = deferred[i];   // (a copy: running it may add more, moving the vector)
            d.call(d.buf);
        }
        request_tails();
        for (const TrapStub& t : traps) {   // (one per checked jump: encoded directly)
            L(*t.label);
            x86::X86Code c = here();
            x86::mov_ri32(c, 6, static_cast<uint32_t>(t.pc));   // esi
            x86::mov_ri32(c, 2, t.bits);                         // edx
            put(c);
            jmp(common_trap);
        }
        patch_near();
    }
};

std::size_t Emitter::emit(std::size_t pc, Op op, bool probe, bool fold) {
    const Insn in = probe ? Insn{} : P.prog.insns[pc];
    const Reg64& d = R[in.dst & 0xf];
    const Reg64& s = R[in.src & 0xf];
    // A fold's first instruction tries it first (fold_at: nothing for most ops, at compile time).
#define FOLD(OP) if (fold) if (const std::size_t k_ = fold_at<OP>(pc)) return k_;
#define ALU_ROWS(NAME, K)                                                                                   \
    case Op::NAME##64_IMM: if (!probe) { FOLD(Op::NAME##64_IMM) alu(in, K, true, false); } return 1;     \
    case Op::NAME##64_REG: if (!probe) { FOLD(Op::NAME##64_REG) alu(in, K, true, true); } return 1;      \
    case Op::NAME##32_IMM: if (!probe) { FOLD(Op::NAME##32_IMM) alu(in, K, false, false); } return 1;    \
    case Op::NAME##32_REG: if (!probe) { FOLD(Op::NAME##32_REG) alu(in, K, false, true); } return 1;
#define SHIFT_ROWS(NAME, K)                                                      \
    case Op::NAME##64_IMM: if (!probe) shift(K, true, in, false); return 1;   \
    case Op::NAME##64_REG: if (!probe) shift(K, true, in, true); return 1;    \
    case Op::NAME##32_IMM: if (!probe) shift(K, false, in, false); return 1;  \
    case Op::NAME##32_REG: if (!probe) shift(K, false, in, true); return 1;
#define DIV_ROWS(SUF, REG)                                                                  \
    case Op::DIV64_##SUF: if (!probe) divmod(true, false, false, in, REG); return 1;     \
    case Op::MOD64_##SUF: if (!probe) divmod(true, false, true, in, REG); return 1;      \
    case Op::DIV32_##SUF: if (!probe) divmod(false, false, false, in, REG); return 1;    \
    case Op::MOD32_##SUF: if (!probe) divmod(false, false, true, in, REG); return 1;     \
    case Op::SDIV64_##SUF: if (!probe) divmod(true, true, false, in, REG); return 1;     \
    case Op::SMOD64_##SUF: if (!probe) divmod(true, true, true, in, REG); return 1;      \
    case Op::SDIV32_##SUF: if (!probe) divmod(false, true, false, in, REG); return 1;    \
    case Op::SMOD32_##SUF: if (!probe) divmod(false, true, true, in, REG); return 1;
#define JUMP_ROWS(NAME, C)                                                                                   \
    case Op::NAME##64_IMM: if (!probe) { FOLD(Op::NAME##64_IMM) cond_jump(pc, in, C, true, false); } return 1;   \
    case Op::NAME##64_REG: if (!probe) { FOLD(Op::NAME##64_REG) cond_jump(pc, in, C, true, true); } return 1;    \
    case Op::NAME##32_IMM: if (!probe) { FOLD(Op::NAME##32_IMM) cond_jump(pc, in, C, false, false); } return 1;  \
    case Op::NAME##32_REG: if (!probe) { FOLD(Op::NAME##32_REG) cond_jump(pc, in, C, false, true); } return 1;
#define RMW_ROWS(NAME, K)                                                                          \
    case Op::ATOMIC_##NAME##64: if (!probe) atomic_rmw(pc, in, K, true, false); return 1;       \
    case Op::ATOMIC_##NAME##32: if (!probe) atomic_rmw(pc, in, K, false, false); return 1;      \
    case Op::ATOMIC_FETCH_##NAME##64: if (!probe) atomic_rmw(pc, in, K, true, true); return 1;  \
    case Op::ATOMIC_FETCH_##NAME##32: if (!probe) atomic_rmw(pc, in, K, false, true); return 1;
    switch (op) {
    ALU_ROWS(ADD, 0)
    ALU_ROWS(SUB, 1)
    ALU_ROWS(MUL, 2)
    ALU_ROWS(OR, 3)
    ALU_ROWS(AND, 4)
    ALU_ROWS(XOR, 5)
    ALU_ROWS(MOV, 6)
    SHIFT_ROWS(LSH, 0)
    SHIFT_ROWS(RSH, 1)
    SHIFT_ROWS(ARSH, 2)
    DIV_ROWS(IMM, false)
    DIV_ROWS(REG, true)
    JUMP_ROWS(JEQ, EQ)
    JUMP_ROWS(JNE, NE)
    JUMP_ROWS(JGT, UGT)
    JUMP_ROWS(JGE, UGE)
    JUMP_ROWS(JLT, ULT)
    JUMP_ROWS(JLE, ULE)
    JUMP_ROWS(JSGT, SGT)
    JUMP_ROWS(JSGE, SGE)
    JUMP_ROWS(JSLT, SLT)
    JUMP_ROWS(JSLE, SLE)
    JUMP_ROWS(JSET, SET)
    RMW_ROWS(ADD, Rmw::Add)
    RMW_ROWS(OR, Rmw::Or)
    RMW_ROWS(AND, Rmw::And)
    RMW_ROWS(XOR, Rmw::Xor)
#undef ALU_ROWS
#undef SHIFT_ROWS
#undef DIV_ROWS
#undef JUMP_ROWS
#undef RMW_ROWS
    case Op::NEG64: if (!probe) neg(d); return 1;
    case Op::NEG32: if (!probe) neg(d.cvt32()); return 1;
    case Op::MOVSX8_64: if (!probe) movsx(d, s.cvt8()); return 1;
    case Op::MOVSX16_64: if (!probe) movsx(d, s.cvt16()); return 1;
    case Op::MOVSX32_64: if (!probe) movsxd(d, s.cvt32()); return 1;
    case Op::MOVSX8_32: if (!probe) movsx(d.cvt32(), s.cvt8()); return 1;
    case Op::MOVSX16_32: if (!probe) movsx(d.cvt32(), s.cvt16()); return 1;
    case Op::LE16: if (!probe) movzx(d.cvt32(), d.cvt16()); return 1;
    case Op::LE32: if (!probe) mov(d.cvt32(), d.cvt32()); return 1;
    case Op::LE64: return 1;
    case Op::BE16:
    case Op::BSWAP16:
        if (!probe) {
            ror(d.cvt16(), 8);
            movzx(d.cvt32(), d.cvt16());
        }
        return 1;
    case Op::BE32:
    case Op::BSWAP32: if (!probe) bswap(d.cvt32()); return 1;
    case Op::BE64:
    case Op::BSWAP64: if (!probe) bswap(d); return 1;

    case Op::JA: if (!probe) charge_and_jump(pc, pc + 1 + in.off); return 1;
    case Op::JA32: if (!probe) charge_and_jump(pc, pc + 1 + in.imm); return 1;
    case Op::MAY_GOTO:
        if (!probe) {
            Near& count = fresh();
            cmp(qword[r12 + CTX(loops)], 0);
            jg(count, T_NEAR);
            charge_and_jump(pc, pc + 1 + in.off);
            L(count);
            dec(qword[r12 + CTX(loops)]);
        }
        return 1;

    case Op::CALL_HELPER:
        if (!probe) {
            const Helper* h = P.helpers.find(in.imm);
            if (!h) throw Error(ErrorCode::Internal, fmt::format("jit: helper #{} vanished", in.imm));
            helper_call(pc, h->fn, false);
        }
        return 1;
    case Op::CALL_LOCAL:
        if (!probe) {
            const std::size_t t = pc + 1 + in.imm;
            cmp(dword[r12 + CTX(depth)], kMaxCallDepth - 1);
            jae(trap(pc, TrapKind::CallDepth), T_NEAR);
            if (checked) sub(r9, P.charge[pc]);
            Near& ret = fresh();
            push_frame(ret);
            budget_check(t);
            jump_pc(kJmp, t);
            L(ret);
            budget_check(pc + 1);
        }
        return 1;
    case Op::CALLX:
        if (!probe) {
            if (checked) sub(r9, P.upto[pc]);
            mov(r10, d);
            arg_b(static_cast<uint32_t>(pc));
            call_c(cb_callx);
            cmp(r11, 1);
            je(done_, T_NEAR);
            Near &helper = fresh(), &ret = fresh(), &after = fresh();
            test(r11, r11);
            jz(helper, T_NEAR);
            mov(qword[r12 + CTX(tmp)], r11);
            push_frame(ret);
            jmp(qword[r12 + CTX(tmp)]);
            L(helper);
            helper_call(pc, nullptr, true);
            jmp(after, T_NEAR);
            L(ret);
            budget_check(pc + 1);
            L(after);
        }
        return 1;
    case Op::CALL_KFUNC: if (!probe) jmp(trap(pc, TrapKind::BadCall), T_NEAR); return 1;
    case Op::EXIT:
        if (!probe) {
            x86::X86Code c = here();
            if (checked) x86::ri(c, true, x86::kExtSub, 9, P.charge[pc]);   // sub r9, charge
            x86::mi(c, false, x86::kExtCmp, 12, static_cast<int32_t>(CTX(depth)), 0);   // cmp dword [r12 + depth], 0
            put(c);
            jne(return_, T_NEAR);
            budget_check(pc);
            jmp(finish_, T_NEAR);
        }
        return 1;

    case Op::LDDW:
        if (!probe) mov_imm(hw[in.dst], (uint64_t(uint32_t(P.prog.insns[pc + 1].imm)) << 32) | uint32_t(in.imm));
        return 1;
    case Op::LDDW_FUNC:
        if (!probe) mov(d, kFuncPtrTag | static_cast<uint64_t>(pc + 1 + in.imm));
        return 1;
    case Op::LDDW_MAP_FD:
    case Op::LDDW_MAP_VALUE:
    case Op::LDDW_BTF_ID:
    case Op::LDDW_MAP_IDX:
    case Op::LDDW_MAP_IDX_VALUE:
        if (!probe) throw Error(ErrorCode::Unsupported, fmt::format("jit: unresolved lddw at pc {}", pc));
        return 1;   // rejected by validation, as in the interpreter

    case Op::LDABS_B: if (!probe) ld_pkt(pc, in, 1, false); return 1;
    case Op::LDABS_H: if (!probe) ld_pkt(pc, in, 2, false); return 1;
    case Op::LDABS_W: if (!probe) ld_pkt(pc, in, 4, false); return 1;
    case Op::LDIND_B: if (!probe) ld_pkt(pc, in, 1, true); return 1;
    case Op::LDIND_H: if (!probe) ld_pkt(pc, in, 2, true); return 1;
    case Op::LDIND_W: if (!probe) ld_pkt(pc, in, 4, true); return 1;

    case Op::LDX_B: if (!probe) { FOLD(Op::LDX_B) load(pc, in, 1, false); } return 1;
    case Op::LDX_H: if (!probe) load(pc, in, 2, false); return 1;
    case Op::LDX_W: if (!probe) load(pc, in, 4, false); return 1;
    case Op::LDX_DW: if (!probe) { FOLD(Op::LDX_DW) load(pc, in, 8, false); } return 1;
    case Op::LDXS_B: if (!probe) load(pc, in, 1, true); return 1;
    case Op::LDXS_H: if (!probe) load(pc, in, 2, true); return 1;
    case Op::LDXS_W: if (!probe) load(pc, in, 4, true); return 1;
    case Op::ST_B: if (!probe) store(pc, in, 1, false); return 1;
    case Op::ST_H: if (!probe) store(pc, in, 2, false); return 1;
    case Op::ST_W: if (!probe) store(pc, in, 4, false); return 1;
    case Op::ST_DW: if (!probe) store(pc, in, 8, false); return 1;
    case Op::STX_B: if (!probe) store(pc, in, 1, true); return 1;
    case Op::STX_H: if (!probe) store(pc, in, 2, true); return 1;
    case Op::STX_W: if (!probe) store(pc, in, 4, true); return 1;
    case Op::STX_DW: if (!probe) store(pc, in, 8, true); return 1;

    case Op::ATOMIC_XCHG64:
    case Op::ATOMIC_XCHG32:
        if (!probe) {
            const bool is64 = op == Op::ATOMIC_XCHG64;
            address(pc, d, in.off, is64 ? 8 : 4, kReadWrite, true);
            align_check(pc, is64 ? 8 : 4);
            if (is64) xchg(qword[r10], s);
            else xchg(dword[r10], s.cvt32());
        }
        return 1;
    case Op::ATOMIC_CMPXCHG64:
    case Op::ATOMIC_CMPXCHG32:
        if (!probe) {
            const bool is64 = op == Op::ATOMIC_CMPXCHG64;
            address(pc, d, in.off, is64 ? 8 : 4, kReadWrite, true);
            align_check(pc, is64 ? 8 : 4);
            // The comparand and result is r0, which cmpxchg wants in rax.
            const bool moved = R[0] != rax;
            if (moved) {
                mov(r11, rax);
                mov(rax, R[0]);
            }
            const Reg64& v = moved && s == rax ? r11 : s;
            lock();
            if (is64) cmpxchg(qword[r10], v);
            else {
                cmpxchg(dword[r10], v.cvt32());
                mov(eax, eax);
            }
            if (moved) {
                mov(R[0], rax);
                mov(rax, r11);
            }
        }
        return 1;
    case Op::LOAD_ACQ_B:
    case Op::LOAD_ACQ_H:
    case Op::LOAD_ACQ_W:
    case Op::LOAD_ACQ_DW:
        if (!probe) {
            const unsigned size = op == Op::LOAD_ACQ_B ? 1 : op == Op::LOAD_ACQ_H ? 2 : op == Op::LOAD_ACQ_W ? 4 : 8;
            address(pc, s, in.off, size, kRead, true);
            align_check(pc, size);
            switch (size) {
            case 1: movzx(d.cvt32(), byte[r10]); break;
            case 2: movzx(d.cvt32(), word[r10]); break;
            case 4: mov(d.cvt32(), dword[r10]); break;
            default: mov(d, qword[r10]); break;
            }
        }
        return 1;
    case Op::STORE_REL_B:
    case Op::STORE_REL_H:
    case Op::STORE_REL_W:
    case Op::STORE_REL_DW:
        if (!probe) {
            const unsigned size = op == Op::STORE_REL_B ? 1 : op == Op::STORE_REL_H ? 2 : op == Op::STORE_REL_W ? 4 : 8;
            address(pc, d, in.off, size, kWrite, true);
            align_check(pc, size);
            switch (size) {
            case 1: mov(byte[r10], s.cvt8()); break;
            case 2: mov(word[r10], s.cvt16()); break;
            case 4: mov(dword[r10], s.cvt32()); break;
            default: mov(qword[r10], s); break;
            }
        }
        return 1;
    case Op::Count:   // not instructions
    case Op::Invalid:
        return 0;
    }
#undef FOLD
    return 0;
}

}  // namespace

// ───────────────────────────────── compile ─────────────────────────────────

namespace {

// How an op changes the known width of its dst (the known-bits pass in analyse()).
enum class Kb : uint8_t { Keep, Load8, Load16, Load32, Set64, SetCap, MovImm, MovReg, AndImm, AndReg, OrImm, OrReg, LshImm, RshImm, End, Clobber };
const std::array<Kb, kFactRows>& kb_kinds() {
    static const std::array<Kb, kFactRows> t = [] {
        std::array<Kb, kFactRows> k;
        k.fill(Kb::Keep);   // (LddwHigh: passes the state on)
        for (std::size_t i = 0; i < kOpCount; ++i) {
            const Op op = static_cast<Op>(i);
            Kb& x = k[i];
            switch (kForms[i]) {
            case Form::END: x = Kb::End; break;
            case Form::ALU_K: case Form::ALU_X: case Form::NEG: case Form::MOVSX: x = Kb::SetCap; break;
            case Form::LDX: case Form::LDXS: case Form::LDDW: case Form::LOAD_ACQ: x = Kb::Set64; break;
            case Form::CALL: case Form::CALL_KFUNC: case Form::LDABS: case Form::LDIND: case Form::ATOMIC: x = Kb::Clobber; break;
            default: break;
            }
            switch (op) {
            case Op::LDX_B: x = Kb::Load8; break;
            case Op::LDX_H: x = Kb::Load16; break;
            case Op::LDX_W: x = Kb::Load32; break;
            case Op::MOV64_IMM: case Op::MOV32_IMM: x = Kb::MovImm; break;
            case Op::MOV64_REG: case Op::MOV32_REG: x = Kb::MovReg; break;
            case Op::AND64_IMM: case Op::AND32_IMM: x = Kb::AndImm; break;
            case Op::AND64_REG: case Op::AND32_REG: x = Kb::AndReg; break;
            case Op::OR64_IMM: case Op::OR32_IMM: case Op::XOR64_IMM: case Op::XOR32_IMM: x = Kb::OrImm; break;
            case Op::OR64_REG: case Op::OR32_REG: case Op::XOR64_REG: case Op::XOR32_REG: x = Kb::OrReg; break;
            case Op::LSH64_IMM: case Op::LSH32_IMM: x = Kb::LshImm; break;
            case Op::RSH64_IMM: case Op::RSH32_IMM: x = Kb::RshImm; break;
            default: break;
            }
        }
        return k;
    }();
    return t;
}

// The known width of a register where an instruction reads it (Emitter::redundant_and asks at
// each `and dst, 2^k - 1`), found on demand by walking back from that instruction: through
// instructions that leave the register alone, into the one that defines it (and, where that
// one reads registers, their widths there in turn), and at a jump target through every
// predecessor, the widest winning. A cycle, a call, pc 0 or running out of steps answers 64
// bits, so an answer is never narrower than the truth. Widths are classes 0-3: 8, 16, 32, 64.
// (A forward pass over the whole program to a fixed point found the same ands but cost ~10 ns
// an instruction; real programs have an and every ~70.)
class KnownWidth {
public:
    // jumps: (target, pc) of every jump; the program has no bpf2bpf frames (a function's entry
    // has callers this walk would not see).
    KnownWidth(const Jit::Impl& impl, std::span<const std::pair<uint32_t, uint32_t>> jumps)
        : impl_(impl), ops_(impl.ops.data()), insns_(impl.prog.insns.data()), jumps_(jumps),
          total_(static_cast<long>(8 * impl.ops.size()) + 4096) {}

    // The width class of register r as instruction pc reads it.
    unsigned before(std::size_t pc, unsigned r) {
        steps_ = std::min<long>(kStepsPerQuestion, total_);
        const long had = steps_;
        const unsigned c = in(pc, r);
        total_ -= had - std::max<long>(steps_, 0);
        return c;
    }

    static unsigned cls_of(uint64_t bits) { return static_cast<unsigned>((bits > 8) + (bits > 16) + (bits > 32)); }

private:
    static constexpr long kStepsPerQuestion = 256;

    // r's class on entry to pc.
    unsigned in(std::size_t pc, unsigned r) {
        const auto& fact = facts();
        const auto& kind = kb_kinds();
        for (;;) {
            if (--steps_ < 0 || pc == 0) return 3;
            if (impl_.target[pc]) return join(pc, r);
            const std::size_t q = pc - 1;
            const auto op = static_cast<std::size_t>(ops_[q]);
            if (!fact[op].falls) return 0;   // nothing reaches pc
            const Kb k = kind[op];
            if (k == Kb::Clobber) return 3;
            if (k != Kb::Keep && (insns_[q].dst & 0xf) == r) return def(q, k);
            pc = q;
        }
    }

    // r's class after q (a predecessor of what asks).
    unsigned after(std::size_t q, unsigned r) {
        const Kb k = kb_kinds()[static_cast<std::size_t>(ops_[q])];
        if (k == Kb::Clobber) return 3;
        if (k != Kb::Keep && (insns_[q].dst & 0xf) == r) return def(q, k);
        return in(q, r);
    }

    // At a jump target: the widest over the instruction falling in and every jump.
    unsigned join(std::size_t t, unsigned r) {
        for (const auto& [pc, reg] : open_)
            if (pc == t && reg == r) return 3;   // a cycle: not followed round
        if (first_.empty()) predecessors();
        open_.emplace_back(t, r);
        unsigned c = facts()[static_cast<std::size_t>(ops_[t - 1])].falls ? after(t - 1, r) : 0;
        for (uint32_t i = first_[t]; i < first_[t + 1] && c < 3; ++i) c = std::max(c, after(from_[i], r));
        open_.pop_back();
        return c;
    }

    // The class of the register q defines (its dst), k being q's transfer kind.
    unsigned def(std::size_t q, Kb k) {
        const Insn& in_ = insns_[q];
        const unsigned d = in_.dst & 0xf, s = in_.src & 0xf;
        const bool alu32 = code::cls(in_.code) == code::ALU;
        const uint64_t imm = alu32 ? static_cast<uint32_t>(in_.imm) : static_cast<uint64_t>(static_cast<int64_t>(in_.imm));
        const unsigned cap = alu32 ? 2 : 3;   // what the op's own width allows
        const unsigned ic = std::min(cls_of(std::bit_width(imm)), cap);
        switch (k) {
        case Kb::Keep: case Kb::Clobber: return 3;   // (not asked: nothing defined)
        case Kb::Load8: return 0;
        case Kb::Load16: return 1;
        case Kb::Load32: return 2;
        case Kb::Set64: return 3;
        case Kb::SetCap: return cap;
        case Kb::MovImm: return ic;
        case Kb::MovReg: return std::min(in(q, s), cap);
        case Kb::AndImm: return ic == 0 ? 0 : std::min(in(q, d), ic);
        case Kb::AndReg: {
            const unsigned c = std::min(in(q, d), cap);
            return c == 0 ? 0 : std::min(c, in(q, s));
        }
        case Kb::OrImm: return ic == cap ? cap : std::min(std::max(in(q, d), ic), cap);
        case Kb::OrReg: {
            const unsigned c = std::min(in(q, d), cap);
            return c == cap ? cap : std::min(std::max(c, in(q, s)), cap);
        }
        case Kb::LshImm: return std::min(cls_of((8ull << in(q, d)) + static_cast<uint64_t>(in_.imm & (alu32 ? 31 : 63))), cap);
        case Kb::RshImm: return std::min(in(q, d), cap);   // (never wider)
        case Kb::End: return cls_of(static_cast<uint64_t>(std::clamp(in_.imm, 16, 64)));   // le/be/bswap 16, 32, 64
        }
        return 3;
    }

    // The jumps into each target, grouped by target: made at the first join a walk meets.
    // (counts, summed into where each target's list ends, then filled from the ends down: each
    // first_[t] is where t's list starts when done)
    void predecessors() {
        const std::size_t n = impl_.ops.size();
        first_.assign(n + 2, 0);
        for (const auto& [t, pc] : jumps_) ++first_[t];
        for (std::size_t t = 0; t <= n; ++t) first_[t + 1] += first_[t];
        from_.resize(jumps_.size());
        for (const auto& [t, pc] : jumps_) from_[--first_[t]] = pc;
    }

    const Jit::Impl& impl_;
    const Op* ops_;
    const Insn* insns_;
    std::span<const std::pair<uint32_t, uint32_t>> jumps_;
    std::vector<uint32_t> first_, from_;   // from_[first_[t] .. first_[t + 1]): the jumps to t
    std::vector<std::pair<std::size_t, unsigned>> open_;   // joins being walked, (pc, register)
    long steps_ = 0;   // left for this question
    long total_;       // left for the program: 8 per instruction and some
};

// Jump targets, liveness, and which stack slots may live in registers (for the folds: fold_at() and the functions it calls).
void analyse(Jit::Impl& impl) {
    const std::vector<Op>& ops = impl.ops;
    const std::vector<Insn>& I = impl.prog.insns;
    const auto& fact = facts();
    const std::size_t n = ops.size();
    impl.target.assign(n, 0);
    if (n) impl.target[0] = 1;
    bool frames = false, escape = false, helpers = false;
    // Uses of the 8-byte stack slot at offset -8 * (i + 1), or -1: accessed otherwise.
    // (counted only where slots may go to registers)
    std::array<int, kStackSize / 8> slot_uses{};
    const bool count_slots = !impl.opts.checked && (impl.opts.optimize & kJitOptStackRegs);
    int deepest = 0;
    auto count = [&](int off, unsigned size) {
        if (off >= 0 || off + static_cast<int>(size) <= -static_cast<int>(kStackSize)) return;   // outside the frame: traps
        const int first = -((-off + 7) / 8) * 8;   // rounded down
        for (int sl = first; sl < off + static_cast<int>(size) && sl < 0; sl += 8) {
            if (sl < -static_cast<int>(kStackSize)) continue;
            int& u = slot_uses[static_cast<std::size_t>(-sl / 8 - 1)];
            if (size == 8 && off == sl && u >= 0) ++u;
            else u = -1;
        }
    };
    // Liveness, backwards to a fixed point: one round when no jump goes backwards.
    // An exit reads r0 only where it ends the run, or returns to a caller that (verified) reads
    // no r1-r5 after the call, r6-r9 being restored: in unchecked mode, or in a program without
    // frames. Otherwise (checked, bpf2bpf) the caller may read whatever the callee left.
    // The fall-through successor is always pc + 1 (an lddw's second slot passes liveness on), its
    // live-in carried in a register.
    constexpr uint16_t kEvery = (1u << kNumRegs) - 1;
    uint16_t exit_use = 1;   // (kEvery once a checked program turns out to have frames: see below)
    impl.live_out.assign(n, 0);
    std::vector<uint16_t> live_in(n + 1, 0);   // live_in[n]: nothing (the successor of no successor)
    // (through local pointers: a byte store may alias anything, which would reload every field)
    uint16_t* const live_out = impl.live_out.data();
    const Insn* const code = I.data();
    const Op* const op_at = ops.data();
    // One round of liveness at pc, the jump's successor given; returns live_in[pc].
    auto live = [&](std::size_t pc, const Insn& in, const Facts& x, std::size_t jump, uint16_t carry) {
        const auto out = static_cast<uint16_t>((carry & x.falls_mask) | live_in[jump]);
        const auto d = static_cast<uint16_t>(1u << (in.dst & 0xf)), s = static_cast<uint16_t>(1u << (in.src & 0xf));
        const auto use = static_cast<uint16_t>((d & x.use_d) | (s & x.use_s) | x.use_all | (exit_use & x.use_exit));
        const auto lin = static_cast<uint16_t>(use | (out & ~(d & x.def_mask)));
        live_out[pc] = out;
        live_in[pc] = lin;
        return lin;
    };
    // The first round also gathers the rest, in the same pass: jump targets (marked after it:
    // marking here would chain every instruction through a store to one byte), frames, helpers,
    // callx, stack depth, r10 escapes.
    const auto targets = std::make_unique_for_overwrite<std::pair<uint32_t, uint32_t>[]>(n + 1);   // (target, pc)
    std::size_t marks = 0;
    const auto ands = std::make_unique_for_overwrite<uint32_t[]>(n + 1);   // pcs of ands with an immediate, the first `and_count`
    std::size_t and_count = 0;
    uint8_t kinds = 0;    // Facts::kFrames ... of every op
    uint16_t carry = 0;   // live_in[pc + 1]
    for (std::size_t pc = n; pc-- > 0;) {
        const Insn in = code[pc];
        const Facts& x = fact[static_cast<std::size_t>(op_at[pc])];
        // (the mark and the successor, where both, are the same field's target)
        const std::size_t t = rel_target(pc, in, x.mark_off | x.succ_off, x.mark_imm | x.succ_imm, 1, n);
        targets[marks] = {static_cast<uint32_t>(t), static_cast<uint32_t>(pc)};
        marks += x.has_mark;
        ands[and_count] = static_cast<uint32_t>(pc);
        and_count += x.and_imm;
        kinds |= x.kinds;
        const unsigned r10_in = (in.dst == 10 ? Facts::kD : 0) | (in.src == 10 ? Facts::kS : 0);   // fields naming r10
        // A stack access: how deep.
        const int off = in.off, size = static_cast<int>((0x08010204u >> code::size_bits(in.code)) & 0xff);   // mem_size
        const bool stack = ((x.base & r10_in) != 0) & (off < 0) & (off + size > -static_cast<int>(kStackSize));
        deepest = std::min(deepest, std::max(off, -static_cast<int>(kStackSize)) & -static_cast<int>(stack));
        if (count_slots && (x.base & r10_in)) [[unlikely]] count(off, static_cast<unsigned>(size));
        escape |= (x.esc & r10_in) != 0;
        carry = live(pc, in, x, x.has_succ ? t : n, carry);
    }
    frames = kinds & Facts::kFrames;
    helpers = kinds & Facts::kHelpers;
    impl.has_callx = kinds & Facts::kCallx;
    std::vector<std::pair<uint32_t, uint32_t>> back_edges;   // (target, pc) of jumps going backwards
    for (std::size_t i = 0; i < marks; ++i) {
        const auto [t, pc] = targets[i];
        // bit 1: a loop head (a jump from below); bit 2: the previous instruction does not fall
        // into it (pc 0 and an lddw's second slot fall through)
        const bool gap = t > 0 && !fact[static_cast<std::size_t>(ops[t - 1])].falls;
        impl.target[t] |= static_cast<uint8_t>((t <= pc ? 3 : 1) | (gap ? 4 : 0));
        if (t <= pc && fact[static_cast<std::size_t>(ops[pc])].has_succ) back_edges.emplace_back(t, pc);
    }
    // More rounds while a backward jump read a live-in its round then grew (every other read
    // in a round comes after what it reads): the result is a fixed point once none did. And
    // from scratch where exits read every register.
    // A round starts at the highest such jump: nothing above it reads what grew.
    auto unsettled = [&] {
        std::size_t from = 0;   // one past the highest unsettled jump; 0: none
        for (const auto& [t, pc] : back_edges)
            if (live_in[t] & ~live_out[pc]) from = std::max<std::size_t>(from, pc + 1);
        return from;
    };
    std::size_t from = unsettled();
    if (impl.opts.checked && frames) {
        exit_use = kEvery;
        std::fill(live_in.begin(), live_in.end(), 0);
        from = n;
    }
    while (from) {
        carry = from < n ? live_in[from] : 0;
        for (std::size_t pc = from; pc-- > 0;) {
            const Insn& in = code[pc];
            const Facts& x = fact[static_cast<std::size_t>(op_at[pc])];
            carry = live(pc, in, x, rel_target(pc, in, x.succ_off, x.succ_imm, x.has_succ, n), carry);
        }
        from = unsettled();
    }
    // Known widths at the masking ands (see Emitter::redundant_and and KnownWidth). Programs
    // with frames are left out (a function's entry has callers the walk does not follow).
    impl.dst_width.clear();
    if ((impl.opts.optimize & kJitOptKnownBits) && !frames) {
        std::optional<KnownWidth> kw;
        for (std::size_t i = and_count; i-- > 0;) {   // (gathered by the first pass, pcs going down)
            const std::size_t pc = ands[i];
            const Op op = ops[pc];
            const uint64_t m = op == Op::AND32_IMM ? static_cast<uint32_t>(I[pc].imm) : static_cast<uint64_t>(static_cast<int64_t>(I[pc].imm));
            if ((m & (m + 1)) != 0) continue;   // not 2^k - 1
            if (!kw) kw.emplace(impl, std::span(targets.get(), marks));
            const unsigned w = 8u << kw->before(pc, I[pc].dst & 0xf);
            if (w <= static_cast<unsigned>(std::popcount(m))) {
                if (impl.dst_width.empty()) impl.dst_width.assign(n, 64);
                impl.dst_width[pc] = static_cast<uint8_t>(w);
            }
        }
    }
    impl.stack_zero = frames || escape || helpers ? kStackSize : static_cast<unsigned>(-deepest + 7) / 8 * 8;
    // Stack slots in registers: the three most used 8-byte slots only ever accessed whole.
    impl.slots.clear();
    if (!impl.opts.checked && (impl.opts.optimize & kJitOptStackRegs) && !frames && !escape) {
        std::vector<std::pair<int, int>> cand;   // (uses, offset)
        for (std::size_t i = 0; i < slot_uses.size(); ++i)
            if (slot_uses[i] >= 2) cand.emplace_back(slot_uses[i], -8 * static_cast<int>(i + 1));
        std::sort(cand.begin(), cand.end(), [](auto& x, auto& y) { return x.first != y.first ? x.first > y.first : x.second > y.second; });
        for (std::size_t k = 0; k < cand.size() && k < 3; ++k) impl.slots.push_back(static_cast<int16_t>(cand[k].second));
    }
}

}  // namespace

std::unique_ptr<Jit::Impl> build(const Program& prog, const HelperTable& helpers, JitOptions opts) {
    auto valid = validate(prog, helpers, opts.checked);   // the interpreter's validation and errors (budget tables: checked mode's)
    if (!valid) throw valid.error();

    auto impl = std::make_unique<Jit::Impl>();
    impl->prog = prog;
    impl->helpers = helpers;
    impl->opts = opts;
    impl->ops = std::move(valid->decoded.ops);

    // Budget tables, the interpreter's.
    const std::size_t n = prog.insns.size();
    impl->upto = std::move(valid->budget.upto);
    impl->credit = std::move(valid->budget.credit);
    impl->charge = std::move(valid->budget.charge);

    analyse(*impl);

    // Generate into a heap buffer, then copy into a mapping (fresh, or one a freed program left)
    // made read+exec (W^X).
    HeapAllocator alloc;
    std::size_t cap = 16384 + n * 192;
    for (;;) {
        try {
            Emitter e(*impl, cap, &alloc);
            e.generate();
            e.ready();
            const std::size_t used = e.getSize();
            const long page = sysconf(_SC_PAGESIZE);
            const std::size_t len = (used + page - 1) / page * page;
            std::size_t got = len;
            void* mem = CodeMappings::instance().take(len, got);
            if (!mem) {
                // (populated at once: a fault per page of a large program cost more than the copy)
                mem = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
                if (mem == MAP_FAILED) throw Error(ErrorCode::Internal, "jit: mmap failed");
                got = len;
            }
            std::memcpy(mem, e.getCode(), used);
            // (the rest of a kept mapping: int3, not an earlier program's code)
            std::memset(static_cast<uint8_t*>(mem) + used, 0xcc, got - used);
            if (mprotect(mem, got, PROT_READ | PROT_EXEC) != 0) {
                munmap(mem, got);
                throw Error(ErrorCode::Internal, "jit: mprotect failed");
            }
            impl->code = static_cast<uint8_t*>(mem);
            impl->code_len = got;
            impl->code_used = used;
            impl->entry_addr = reinterpret_cast<uint64_t>(impl->code) +
                               static_cast<uint64_t>(e.L_entry.getAddress() - e.getCode());
            impl->pc_off = std::move(e.pc_off);   // (every jump is patched: nothing points into it any more)
            break;
        } catch (const Xbyak::Error& err) {
            if (static_cast<int>(err) == Xbyak::ERR_CODE_IS_TOO_BIG && cap < (std::size_t(1) << 30)) {
                cap *= 2;
                continue;
            }
            throw Error(ErrorCode::Internal, fmt::format("jit: code generation failed: {}", err.what()));
        }
    }
    impl->root = impl.get();
    return impl;
}

const Jit::Impl* Jit::Impl::tail_target(const Interpreter& target) const {
    std::lock_guard<std::mutex> lock(tail_mu);
    auto it = tails.find(&target);
    if (it != tails.end() && it->second->prog.insns == target.program().insns) return it->second.get();
    try {
        auto t = build(target.program(), helpers, opts);
        t->root = this;
        const Impl* p = t.get();
        tails[&target] = std::move(t);
        return p;
    } catch (...) {
        return nullptr;
    }
}

Result<Jit> Jit::compile(const Program& prog, const HelperTable& helpers, JitOptions opts) {
    return catch_error([&]() -> Jit { return Jit(build(prog, helpers, opts)); });
}

RunResult Jit::run(Env& env, const std::array<uint64_t, 5>& args, const RunOptions& opts) const {
    // The per-run cost matters (empty programs, fuzzing): only the context fields the code
    // reads before writing them are set.
    alignas(16) uint8_t stack[kStackSize * kMaxCallDepth];
    const uint64_t top = reinterpret_cast<uint64_t>(opts.stack ? opts.stack : stack) + sizeof(stack);
    // The stack starts zeroed, as in the interpreter, as far as the program can see it.
    if (impl_->stack_zero) std::memset(reinterpret_cast<void*>(top - impl_->stack_zero), 0, impl_->stack_zero);
    env.mem.set_stack(top - kStackSize, top);
    env.request = Request::None;

    Extra x;
    Ctx c;
    c.budget_start = opts.budget == 0 ? kUnlimited : static_cast<int64_t>(std::min<uint64_t>(opts.budget, kUnlimited));
    c.budget = c.budget_start;
    c.stack_lo = top - kStackSize;
    c.top_minus[0] = top - 1;
    c.top_minus[1] = top - 2;
    c.top_minus[2] = top - 4;
    c.top_minus[3] = top - 8;
    c.loops = kMayGotoLoops;
    clear_region_cache(&c);
    c.cur = impl_.get();
    c.depth = 0;
    c.r0 = 0;
    c.fn = nullptr;
    c.tmp = 0;
    c.helper_id = 0;
    c.root = impl_.get();
    c.r10 = top;
    c.stack_top = top;
    c.env = &env;
    c.x = &x;

    // The code reads args itself: copying them here costs a failed store forwarding (the
    // caller's 8-byte stores, the compiler's 16-byte loads) on every run.
    impl_->enter()(&c, impl_->entry_addr, args.data());

    env.mem.set_stack(0, 0);
    if (x.exc) [[unlikely]] std::rethrow_exception(x.exc);
    if (x.trap) [[unlikely]] {
        RunResult r;
        r.trap = std::move(x.trap);
        r.insns = x.insns;
        return r;
    }
    RunResult r;   // (not an aggregate initialisation: that zeroes the whole Trap with rep stos)
    r.r0 = c.r0;
    r.insns = impl_->opts.checked ? static_cast<uint64_t>(c.budget_start - c.budget) : 0;
    return r;
}

bool Jit::has_emitter(Op op) {
    static HeapAllocator alloc;
    static Jit::Impl dummy;
    Emitter e(dummy, 4096, &alloc);
    return e.emit(0, op, true);
}

const Program& Jit::program() const { return impl_->prog; }
std::size_t Jit::code_size() const { return impl_->code_used; }
std::span<const uint8_t> Jit::code() const { return {impl_->code, impl_->code_used}; }

Jit::Jit(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Jit::Jit(Jit&&) noexcept = default;
Jit& Jit::operator=(Jit&&) noexcept = default;
Jit::~Jit() = default;

}  // namespace bpfsim::vm
