// The interpreter: a pre-decoded program run by one handler body (interp_body.inc)
// under two dispatchers, computed goto (threaded) and a switch.
//
// Pre-decoding resolves what the hot loop should not redo: the handler of each slot,
// lddw's 64-bit value, helper function pointers and function-pointer constants.
//
// Instruction budget without a per-instruction counter: the program is cut into
// straight-line regions that end at unconditional transfers (ja, exit, calls). A taken
// jump from pc to t charges (pc - start(pc) + 1) - (t - start(t)); an exit charges
// pc - start(pc) + 1. Summed over a run this is exactly the number of instructions
// executed, and every loop charges a positive amount per turn, so the budget is
// checked only on taken jumps, calls and exits.
//
// Coverage (RunOptions::coverage/programs) runs a third instantiation of execute(): the
// switch dispatcher counting at `dispatch:` and in TAKE. The other two are unchanged.
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

// Every handler carries both a `case` and a label; each dispatcher uses one of them.
#pragma GCC diagnostic ignored "-Wunused-label"

namespace bpfsim::vm {

namespace {

struct Slot {
    union {
        const void* label;   // threaded dispatch: handler address
        uint64_t op;         // switch dispatch: the Op
        uint64_t imm64;      // second slot of an lddw: the full 64-bit value
    };
    union {
        struct {
            uint8_t dst;
            uint8_t src;
            int16_t off;
            int32_t imm;
        };
        HelperFn fn;         // CALL_HELPER: the implementation
    };
};
static_assert(sizeof(Slot) == 16);

struct Frame {
    const void* impl;    // the program the return address belongs to (tail calls switch programs)
    const Slot* ret;
    uint64_t r6, r7, r8, r9, r10;
    int64_t loops;
};

bool ends_region(Form f) {
    return f == Form::JA || f == Form::JA32 || f == Form::EXIT || f == Form::CALL_LOCAL || f == Form::CALLX;
}

// What the budget tables need of each op (LddwHigh included: it counts nothing), as masks, so
// the pass computes instead of branching per instruction.
struct BudgetRow {
    int32_t off_mask = 0, imm_mask = 0;   // the field holding a jump's relative target (all ones)
    uint32_t inc = 1;                     // counted (lddw once, at its first slot)
    uint32_t has_target = 0;              // 1: a jump or a local call
    uint32_t exit_mask = 0;               // all ones: an exit, charged its region so far
    uint32_t keep = ~0u;                  // 0: ends the region (the count restarts)
};

const std::array<BudgetRow, kOpCount + 1>& budget_rows() {
    static const std::array<BudgetRow, kOpCount + 1> t = [] {
        std::array<BudgetRow, kOpCount + 1> rows;
        rows.fill(BudgetRow{});   // (not `rows{}`: see facts() in vm/jit.cpp)
        for (std::size_t i = 0; i < kOpCount; ++i) {
            const Form f = op_info(static_cast<Op>(i)).form;
            BudgetRow& r = rows[i];
            const bool by_off = f == Form::JA || f == Form::JCOND_K || f == Form::JCOND_X || f == Form::MAY_GOTO;
            const bool by_imm = f == Form::JA32 || f == Form::CALL_LOCAL;
            r.off_mask = by_off ? -1 : 0;
            r.imm_mask = by_imm ? -1 : 0;
            r.has_target = by_off || by_imm;
            r.exit_mask = f == Form::EXIT ? ~0u : 0;
            r.keep = ends_region(f) ? 0 : ~0u;
        }
        rows[static_cast<std::size_t>(Op::LddwHigh)].inc = 0;
        return rows;
    }();
    return t;
}

}  // namespace

BudgetTables budget_tables(const Decoded& d) {
    const std::size_t n = d.insns.size();
    BudgetTables t;
    t.upto.resize(n);
    t.credit.resize(n);
    t.charge.resize(n);
    // One pass: a region's instructions so far; charges of backward jumps (their target's
    // credit is known) at once, forward ones after.
    const auto forward = std::make_unique_for_overwrite<std::pair<uint32_t, uint32_t>[]>(n);   // (pc, target), the first `forwards`
    std::size_t forwards = 0;
    const auto& rows = budget_rows();
    uint32_t* const upto = t.upto.data();
    uint32_t* const credit = t.credit.data();
    int32_t* const charge = t.charge.data();
    uint32_t count = 0;
    for (std::size_t pc = 0; pc < n; ++pc) {
        const Insn& in = d.insns[pc];
        const BudgetRow& r = rows[static_cast<std::size_t>(d.ops[pc])];
        credit[pc] = count;
        count += r.inc;
        upto[pc] = count;
        // The target (0 where there is none: a valid index whose credit is then masked off).
        const std::size_t target = rel_target(pc, in, r.off_mask, r.imm_mask, r.has_target, 0);
        const uint32_t back = r.has_target & static_cast<uint32_t>(target <= pc);
        const uint32_t before = credit[std::min(target, n - 1)];   // (read even where unused: in bounds)
        charge[pc] = static_cast<int32_t>((count & r.exit_mask) | ((count - before) & (0u - back)));
        forward[forwards] = {static_cast<uint32_t>(pc), static_cast<uint32_t>(target)};
        forwards += r.has_target & (back ^ 1);
        count &= r.keep;
    }
    for (std::size_t i = 0; i < forwards; ++i) {
        const auto [pc, target] = forward[i];
        if (target < n) t.charge[pc] = static_cast<int32_t>(t.upto[pc]) - static_cast<int32_t>(t.credit[target]);
    }
    return t;
}

const char* to_string(TrapKind kind) {
    switch (kind) {
    case TrapKind::MemoryFault: return "memory-fault";
    case TrapKind::Misaligned: return "misaligned";
    case TrapKind::Budget: return "budget";
    case TrapKind::CallDepth: return "call-depth";
    case TrapKind::BadCall: return "bad-call";
    case TrapKind::Helper: return "helper";
    case TrapKind::NoPacket: return "no-packet";
    }
    return "?";
}

struct Interpreter::Impl {
    Program prog;
    HelperTable helpers;
    std::vector<Op> ops;
    std::vector<Slot> threaded;        // labels filled from execute<true>
    std::vector<Slot> switched;        // Op values
    std::vector<int32_t> charge;       // budget charge of a taken branch / exit / call, per pc
    std::vector<uint32_t> upto;        // instructions from the start of pc's region through pc (lddw counts once)
    std::vector<uint32_t> credit;      // instructions of pc's region before pc: credited when a jump lands on pc

    // Where a nested run (a callback from a helper) starts: a new frame below `r10`.
    struct Nested {
        std::size_t pc;
        uint64_t r10;
        uint64_t stack_top;
        unsigned depth;      // frames already in use
        int64_t* budget;
    };

    // Where a counting run adds up: one per top-level run, shared with its callbacks.
    struct Counters {
        const Impl* entry;        // the program run
        const RunOptions* opts;
        std::vector<std::pair<const Impl*, Coverage*>> seen;   // programs entered so far
        std::vector<std::unique_ptr<Coverage>> uncounted;      // for programs nobody counts
        // The counters of impl's program, grown to its size the first time it is entered in
        // the run, so pointers into them stay valid while outer frames hold them.
        Coverage& of(const Impl* impl) {
            for (const auto& [i, c] : seen)
                if (i == impl) return *c;
            Coverage* c = impl == entry && opts->coverage ? opts->coverage : opts->counters ? opts->counters(impl->prog) : nullptr;
            if (!c) c = uncounted.emplace_back(std::make_unique<Coverage>()).get();
            const std::size_t n = impl->prog.insns.size();
            if (c->hits.size() < n) c->hits.resize(n, 0);
            if (c->taken.size() < n) c->taken.resize(n, 0);
            seen.emplace_back(impl, c);
            return *c;
        }
    };

    template <bool Threaded, bool Count = false>
    static RunResult execute(const Impl* self, Env& env, const std::array<uint64_t, 5>& args, const RunOptions& opts,
                             const void* const** labels_out, const Nested* nested = nullptr, Counters* counters = nullptr);
};

template <bool Threaded, bool Count>
RunResult Interpreter::Impl::execute(const Impl* self, Env& env, const std::array<uint64_t, 5>& args,
                                     const RunOptions& opts, const void* const** labels_out, const Nested* nested,
                                     Counters* counters) {
    static_assert(!(Threaded && Count), "counting runs use the switch dispatcher");
    if constexpr (Threaded) {
        static const void* const labels[] = {
#define BPF_OP(ID, CODE, DISC, DVAL, FORM, MNEM, SYM) &&L_##ID,
#include "vm/opcodes.def"
#undef BPF_OP
        };
        static_assert(std::size(labels) == kOpCount);
        if (labels_out) {
            *labels_out = labels;
            return {};
        }
    }

    const Slot* base = Threaded ? self->threaded.data() : self->switched.data();
    std::size_t n_slots = self->threaded.size();
    const int32_t* charge = self->charge.data();
    auto credit_of = [&](const Slot* target) -> int64_t { return self->credit[static_cast<std::size_t>(target - base)]; };

    // A top-level run owns a fresh stack; a nested run (callback) continues the caller's.
    alignas(16) uint8_t stack[kStackSize * kMaxCallDepth];
    const uint64_t stack_top = nested        ? nested->stack_top
                               : opts.stack ? reinterpret_cast<uint64_t>(opts.stack) + sizeof(stack)
                                            : reinterpret_cast<uint64_t>(stack) + sizeof(stack);
    const unsigned depth_base = nested ? nested->depth : 0;

    uint64_t reg[kNumRegs] = {};
    for (unsigned i = 0; i < 5; ++i) reg[1 + i] = args[i];
    reg[10] = nested ? nested->r10 - kStackSize : stack_top;
    std::memset(reinterpret_cast<void*>(reg[10] - kStackSize), 0, kStackSize);
    env.mem.set_stack(reg[10] - kStackSize, stack_top);
    env.request = Request::None;

    Frame frames[kMaxCallDepth];
    unsigned depth = 0;
    int64_t frame_loops = kMayGotoLoops;
    // "Unlimited" leaves headroom: forward jumps credit the budget, which must not overflow.
    constexpr int64_t kUnlimited = INT64_MAX / 4;
    const int64_t budget_start = nested ? *nested->budget : opts.budget == 0 ? kUnlimited : static_cast<int64_t>(std::min<uint64_t>(opts.budget, kUnlimited));
    int64_t budget = budget_start;

    const Slot* ip = base + (nested ? nested->pc : 0);
    const Slot* call_target = nullptr;
    uint64_t fault_addr = 0;
    uint32_t fault_size = 0;
    uint8_t fault_perm = 0;
    bool charged = false;        // the trapping instruction's region is already in the budget
    int64_t helper_id = 0;
    std::string trap_msg;
    RunResult result;
    [[maybe_unused]] uint64_t* hits = nullptr;    // counting runs: the running program's counters
    [[maybe_unused]] uint64_t* taken = nullptr;

#define DST reg[ip->dst]
#define SRC reg[ip->src]
#define IMM64 static_cast<uint64_t>(static_cast<int64_t>(ip->imm))
#define IMM32 static_cast<uint32_t>(ip->imm)
#define CASE(ID) case Op::ID: L_##ID:
#define DISPATCH()                                                  \
    do {                                                            \
        if constexpr (Threaded) goto *ip->label;                    \
        else goto dispatch;                                         \
    } while (0)
#define NEXT()      \
    do {            \
        ++ip;       \
        DISPATCH(); \
    } while (0)
#define TAKE(delta)                                   \
    do {                                              \
        budget -= charge[ip - base];                  \
        if (budget < 0) [[unlikely]] goto trap_budget; \
        if constexpr (Count) ++taken[ip - base];      \
        ip += 1 + (delta);                            \
        DISPATCH();                                   \
    } while (0)
// After `self` changed (tail call, return across one): count in its program's counters.
#define COUNT_IN_SELF()                                    \
    do {                                                   \
        if constexpr (Count) {                             \
            Coverage& cov_ = counters->of(self);           \
            hits = cov_.hits.data();                       \
            taken = cov_.taken.data();                     \
        }                                                  \
    } while (0)
#define CHARGE_HERE() (budget -= self->upto[static_cast<std::size_t>(ip - base)], charged = true)
#define SET_SITE() (env.site = CallbackSite{self, reg[10], stack_top, depth_base + depth + 1, &budget, Threaded, counters})
#define CHECK(addr, size, perm)                                 \
    do {                                                        \
        if (!env.mem.allows(addr, size, perm)) [[unlikely]] {   \
            fault_addr = addr;                                  \
            fault_size = size;                                  \
            fault_perm = perm;                                  \
            goto trap_mem;                                      \
        }                                                       \
    } while (0)

    COUNT_IN_SELF();
    if (nested && depth_base + 1 > kMaxCallDepth) [[unlikely]] goto trap_call_depth;
    DISPATCH();

dispatch:
    if constexpr (Count) ++hits[ip - base];
    switch (static_cast<Op>(ip->op)) {
#include "vm/interp_body.inc"
    case Op::Count:
    case Op::Invalid:
        goto trap_internal;
    }
    goto trap_internal;

do_local_call:
    if (depth_base + depth + 1 >= kMaxCallDepth) [[unlikely]] goto trap_call_depth;
    budget -= charge[ip - base];
    goto do_push_frame;
do_local_call_charged:   // from callx: charged through pc and credited for the target already
    if (depth_base + depth + 1 >= kMaxCallDepth) [[unlikely]] {
        budget -= credit_of(call_target);
        goto trap_call_depth;
    }
do_push_frame:
    charged = false;   // the callee's regions are charged as they end
    frames[depth] = {self, ip + 1, reg[6], reg[7], reg[8], reg[9], reg[10], frame_loops};
    ++depth;
    reg[10] -= kStackSize;
    std::memset(reinterpret_cast<void*>(reg[10] - kStackSize), 0, kStackSize);
    env.mem.set_stack(reg[10] - kStackSize, stack_top);
    frame_loops = kMayGotoLoops;
    ip = call_target;
    if (budget < 0) [[unlikely]] goto trap_budget;
    DISPATCH();

helper_request:
    CHARGE_HERE();
    helper_id = self->prog.insns[static_cast<std::size_t>(ip - base)].imm;
helper_request_charged:
    if (env.request == Request::Exit) {
        reg[0] = env.request_value;
        env.request = Request::None;
        goto finished;
    }
    if (env.request == Request::TailCall) {
        // The target replaces the running function: same frame, r1 = ctx, pc 0.
        self = env.tail_target->impl_.get();
        env.request = Request::None;
        base = Threaded ? self->threaded.data() : self->switched.data();
        n_slots = self->threaded.size();
        charge = self->charge.data();
        COUNT_IN_SELF();
        reg[1] = env.request_value;
        frame_loops = kMayGotoLoops;
        charged = false;   // the target's regions are charged as they end
        ip = base;
        if (budget < 0) [[unlikely]] goto trap_budget;
        DISPATCH();
    }
    env.request = Request::None;
    result.trap = Trap{TrapKind::Helper, static_cast<std::size_t>(ip - base), 0, 0,
                       fmt::format("pc {}: helper {} failed: {}", ip - base, helper_id, env.request_message)};
    goto done;

finished:
finished_charged:
    if (budget < 0) [[unlikely]] goto trap_budget;   // the budget is a hard limit, also for the last region
    result.r0 = reg[0];
    result.insns = static_cast<uint64_t>(budget_start - budget);
    goto done_ok;

trap_mem: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::MemoryFault, pc, fault_addr, fault_size,
                       fmt::format("pc {}: invalid memory access: {}", pc, env.mem.explain(fault_addr, fault_size, fault_perm))};
    goto done;
}
trap_misaligned: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::Misaligned, pc, fault_addr, fault_size,
                       fmt::format("pc {}: misaligned {}-byte atomic access at {:#x}", pc, fault_size, fault_addr)};
    goto done;
}
trap_budget: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::Budget, pc, 0, 0,
                       fmt::format("pc {}: instruction budget of {} exhausted", pc, budget_start)};
    goto done;
}
trap_call_depth: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::CallDepth, pc, 0, 0,
                       fmt::format("pc {}: call depth limit of {} frames exceeded", pc, kMaxCallDepth)};
    goto done;
}
trap_bad_call: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::BadCall, pc, 0, 0, fmt::format("pc {}: {}", pc, trap_msg)};
    goto done;
}
trap_no_packet: {
    const auto pc = static_cast<std::size_t>(ip - base);
    result.trap = Trap{TrapKind::NoPacket, pc, 0, 0,
                       fmt::format("pc {}: legacy packet load (LD_ABS/LD_IND) but the program has no packet", pc)};
    goto done;
}
trap_internal: {
    const auto pc = static_cast<std::size_t>(ip - base);
    throw Error(ErrorCode::Internal, fmt::format("interpreter reached an unresolved instruction at pc {}", pc));
}

done: {
    // Instructions up to and including the trapping one.
    const auto pc = static_cast<std::size_t>(ip - base);
    int64_t used = budget_start - budget;
    if (result.trap->kind != TrapKind::Budget && !charged && pc < n_slots) used += self->upto[pc];
    result.insns = static_cast<uint64_t>(std::max<int64_t>(used, 0));
    if (!self->prog.lines.empty()) {
        auto src = self->prog.source_line(pc);
        if (!src.empty()) result.trap->message += fmt::format(" ({})", src);
    }
}
done_ok:
    if (nested) {
        *nested->budget = budget;
        env.mem.set_stack(nested->r10 - kStackSize, stack_top);
    } else {
        env.mem.set_stack(0, 0);
    }
    return result;

#undef DST
#undef SRC
#undef IMM64
#undef IMM32
#undef CASE
#undef DISPATCH
#undef NEXT
#undef TAKE
#undef COUNT_IN_SELF
#undef CHARGE_HERE
#undef CHECK
#undef SET_SITE
}

Result<Validated> validate(const Program& prog, const HelperTable& helpers, bool budget) {
    return catch_error([&]() -> Validated {
        DecodeOptions dopts{prog.file, prog.name.empty() ? prog.section : prog.name};
        auto decoded = decode(prog.insns, dopts);
        if (!decoded) throw decoded.error();
        Validated v{std::move(decoded.value()), {}};
        const std::vector<Op>& ops = v.decoded.ops;
        const std::size_t n = prog.insns.size();
        auto where = [&](std::size_t pc) {
            Location loc{prog.file, dopts.section, pc, std::nullopt, prog.source_line(pc)};
            return loc;
        };
        // Regions and budget charges; an lddw counts as one instruction.
        if (budget) v.budget = budget_tables(v.decoded);
        // Execution must not run off the end: the last instruction has to be exit or a jump.
        {
            std::size_t last = n - 1;
            if (ops[last] == Op::LddwHigh) last = n - 2;
            const Form f = op_info(ops[last]).form;
            if (ops[last] == Op::LddwHigh || (f != Form::EXIT && f != Form::JA && f != Form::JA32))
                throw Error(ErrorCode::InvalidInsn, "the last instruction is not an exit or a jump: execution could run past the end",
                            where(last));
        }
        // Everything an engine would have to resolve at run time is resolved now.
        static const std::array<bool, kOpCount + 1> resolve = [] {   // ops checked below (LddwHigh: none)
            std::array<bool, kOpCount + 1> r;
            r.fill(false);
            for (const Op op : {Op::LDDW_MAP_FD, Op::LDDW_MAP_VALUE, Op::LDDW_BTF_ID, Op::LDDW_MAP_IDX, Op::LDDW_MAP_IDX_VALUE,
                                Op::CALL_HELPER})
                r[static_cast<std::size_t>(op)] = true;
            return r;
        }();
        for (std::size_t pc = 0; pc < n; ++pc) {
            const Op op = ops[pc];
            if (!resolve[static_cast<std::size_t>(op)]) continue;   // (one predictable branch, not a switch)
            switch (op) {
            case Op::LDDW_MAP_FD:
            case Op::LDDW_MAP_VALUE:
            case Op::LDDW_BTF_ID:
            case Op::LDDW_MAP_IDX:
            case Op::LDDW_MAP_IDX_VALUE:
                throw Error(ErrorCode::Unsupported,
                            fmt::format("lddw with pseudo source '{}' is unresolved; load the program from its "
                                        "object file so maps, globals and kernel symbols are linked",
                                        op_info(op).symbol),
                            where(pc));
            case Op::CALL_HELPER:
                if (!helpers.find(prog.insns[pc].imm)) {
                    const int32_t id = prog.insns[pc].imm;
                    auto name = kernel_helper_name(id);
                    throw Error(ErrorCode::Unsupported,
                                name.empty() ? fmt::format("call to unknown helper #{}", id)
                                             : fmt::format("helper bpf_{}#{} is not implemented", name, id),
                                where(pc));
                }
                break;
            default:
                break;
            }
        }
        return v;
    });
}

Result<Interpreter> Interpreter::compile(const Program& prog, const HelperTable& helpers) {
    return catch_error([&]() -> Interpreter {
        auto valid = validate(prog, helpers);
        if (!valid) throw valid.error();
        auto impl = std::make_unique<Impl>();
        impl->prog = prog;
        impl->helpers = helpers;
        impl->ops = std::move(valid->decoded.ops);
        const std::size_t n = prog.insns.size();
        impl->upto = std::move(valid->budget.upto);
        impl->credit = std::move(valid->budget.credit);
        impl->charge = std::move(valid->budget.charge);

        // Slots.
        impl->switched.resize(n);
        for (std::size_t pc = 0; pc < n; ++pc) {
            Slot& s = impl->switched[pc];
            const Insn& in = prog.insns[pc];
            const Op op = impl->ops[pc];
            if (op == Op::LddwHigh) continue;   // holds the value its lddw stored
            s.op = static_cast<uint64_t>(op);
            s.dst = in.dst;
            s.src = in.src;
            s.off = in.off;
            s.imm = in.imm;
            switch (op) {
            case Op::LDDW:
                impl->switched[pc + 1].imm64 = (uint64_t(uint32_t(prog.insns[pc + 1].imm)) << 32) | uint32_t(in.imm);
                break;
            case Op::LDDW_FUNC:
                // A function's address is a tagged pc; callx and helpers taking callbacks decode it.
                s.op = static_cast<uint64_t>(Op::LDDW);
                impl->ops[pc] = Op::LDDW;
                impl->switched[pc + 1].imm64 = kFuncPtrTag | static_cast<uint64_t>(pc + 1 + in.imm);
                break;
            case Op::CALL_HELPER:
                s.fn = helpers.find(in.imm)->fn;   // validate() found it
                break;
            default:
                break;
            }
        }
        // The threaded copy differs only in the dispatch word.
        const void* const* labels = nullptr;
        Env dummy;
        Impl::execute<true>(nullptr, dummy, {}, {}, &labels);
        impl->threaded = impl->switched;
        for (std::size_t pc = 0; pc < n; ++pc) {
            const Op op = impl->ops[pc];
            if (op == Op::LddwHigh) continue;
            impl->threaded[pc].label = labels[static_cast<std::size_t>(op)];
        }
        return Interpreter(std::move(impl));
    });
}

uint64_t Env::call_function(uint64_t func, std::array<uint64_t, 5> args) {
    using Impl = Interpreter::Impl;
    const auto* impl = static_cast<const Impl*>(site.engine);
    const uint64_t pc = func & 0xffffffffull;
    if (!impl || (func & ~0xffffffffull) != kFuncPtrTag || pc >= impl->threaded.size() || impl->ops[pc] == Op::LddwHigh) {
        request_trap(fmt::format("callback {:#x} is not a function of the program", func));
        return 0;
    }
    const CallbackSite saved = site;
    const Impl::Nested nested{pc, site.r10, site.stack_top, site.depth, site.budget};
    RunOptions ro;
    auto* counters = static_cast<Impl::Counters*>(site.counters);
    RunResult r = counters        ? Impl::execute<false, true>(impl, *this, args, ro, nullptr, &nested, counters)
                  : site.threaded ? Impl::execute<true>(impl, *this, args, ro, nullptr, &nested)
                                  : Impl::execute<false>(impl, *this, args, ro, nullptr, &nested);
    site = saved;
    if (r.trap) {
        request_trap(fmt::format("in callback at pc {}: {}", pc, r.trap->message));
        return 0;
    }
    return r.r0;
}

RunResult Interpreter::run(Env& env, const std::array<uint64_t, 5>& args, const RunOptions& opts) const {
    if (opts.coverage || opts.counters) [[unlikely]] {
        Impl::Counters counters{impl_.get(), &opts, {}, {}};
        return Impl::execute<false, true>(impl_.get(), env, args, opts, nullptr, nullptr, &counters);
    }
    if (opts.dispatch == Dispatch::Threaded) return Impl::execute<true>(impl_.get(), env, args, opts, nullptr);
    return Impl::execute<false>(impl_.get(), env, args, opts, nullptr);
}

const Program& Interpreter::program() const { return impl_->prog; }

Interpreter::Interpreter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Interpreter::Interpreter(Interpreter&&) noexcept = default;
Interpreter& Interpreter::operator=(Interpreter&&) noexcept = default;
Interpreter::~Interpreter() = default;

}  // namespace bpfsim::vm
