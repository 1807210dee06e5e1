// Profiles for `bpfsim bench` (harness/profile.hpp): statistics, the interpreter's cost per
// instruction class, timed helpers, and the per-line / per-instruction estimate.
#include "harness/profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace bpfsim::harness {

Stats stats(std::vector<double> v) {
    Stats s;
    s.n = v.size();
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    auto median_of = [](const std::vector<double>& sorted) {
        const std::size_t n = sorted.size();
        return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    };
    s.median = median_of(v);
    s.min = v.front();
    s.max = v.back();
    double sum = 0;
    for (double x : v) sum += x;
    s.mean = sum / double(v.size());
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.stddev = v.size() > 1 ? std::sqrt(sq / double(v.size() - 1)) : 0;   // sample stddev, as Google Benchmark
    std::vector<double> dev;
    for (double x : v) dev.push_back(std::fabs(x - s.median));
    std::sort(dev.begin(), dev.end());
    s.mad = median_of(dev);
    return s;
}

const char* to_string(CostClass c) {
    switch (c) {
    case CostClass::Alu: return "alu";
    case CostClass::Mul: return "mul";
    case CostClass::Div: return "div";
    case CostClass::Lddw: return "lddw";
    case CostClass::Load: return "load";
    case CostClass::LoadStack: return "load-stack";
    case CostClass::Store: return "store";
    case CostClass::StoreStack: return "store-stack";
    case CostClass::Atomic: return "atomic";
    case CostClass::JumpTaken: return "jump-taken";
    case CostClass::JumpFallthrough: return "jump-fallthrough";
    case CostClass::Ja: return "ja";
    case CostClass::CallHelper: return "call-helper";
    case CostClass::CallLocal: return "call-local";
    case CostClass::Exit: return "exit";
    case CostClass::Count: break;
    }
    return "?";
}

CostClass cost_class(const vm::Insn& insn, vm::Op op) {
    if (op == vm::Op::LddwHigh || op == vm::Op::Invalid) return CostClass::Alu;
    switch (vm::op_info(op).form) {
    case vm::Form::ALU_K:
    case vm::Form::ALU_X: {
        const uint8_t alu = insn.code & 0xf0;
        if (alu == 0x20) return CostClass::Mul;
        if (alu == 0x30 || alu == 0x90) return CostClass::Div;
        return CostClass::Alu;
    }
    case vm::Form::NEG:
    case vm::Form::MOVSX:
    case vm::Form::END: return CostClass::Alu;
    case vm::Form::JA:
    case vm::Form::JA32:
    case vm::Form::MAY_GOTO: return CostClass::Ja;
    case vm::Form::JCOND_K:
    case vm::Form::JCOND_X: return CostClass::JumpTaken;
    case vm::Form::CALL:
    case vm::Form::CALLX:
    case vm::Form::CALL_KFUNC: return CostClass::CallHelper;
    case vm::Form::CALL_LOCAL: return CostClass::CallLocal;
    case vm::Form::EXIT: return CostClass::Exit;
    case vm::Form::LDDW: return CostClass::Lddw;
    case vm::Form::LDABS:
    case vm::Form::LDIND: return CostClass::Load;
    case vm::Form::LDX:
    case vm::Form::LDXS:
    case vm::Form::LOAD_ACQ: return insn.src == 10 ? CostClass::LoadStack : CostClass::Load;
    case vm::Form::ST:
    case vm::Form::STX:
    case vm::Form::STORE_REL: return insn.dst == 10 ? CostClass::StoreStack : CostClass::Store;
    case vm::Form::ATOMIC: return CostClass::Atomic;
    }
    return CostClass::Alu;
}

namespace {

using Clock = std::chrono::steady_clock;

// A loop of kIters turns over kBody instructions of one class; r1 points at 64 bytes of input.
constexpr int kIters = 2048;
constexpr int kBody = 16;

std::string loop_program(const std::vector<std::string>& pattern) {
    std::string body;
    for (int i = 0; !pattern.empty() && i < kBody; ++i) body += pattern[static_cast<std::size_t>(i) % pattern.size()] + "\n";
    return fmt::format("mov %r6, {}\nmov %r7, 1\nmov %r8, 1\nmov %r9, 0\nstxdw [%r10-8], %r7\nstxdw [%r10-16], %r7\n"
                       "loop:\n{}sub %r6, 1\njne %r6, 0, loop\nmov %r0, %r7\nexit\n"
                       "fn:\nmov %r0, 0\nexit\n",
                       kIters, body);
}

uint64_t noop_helper(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env&) { return 0; }

}  // namespace

Result<CostTable> calibrate_costs(vm::Dispatch dispatch) {
    return catch_error([&]() -> CostTable {
        vm::HelperTable helpers;
        helpers.add(vm::Helper{2, "bench_noop", {}, noop_helper});
        alignas(8) uint8_t mem[64] = {};
        vm::Env env;
        env.mem.add(mem, sizeof(mem), vm::kReadWrite, vm::RegionKind::Input, "calibration input");
        const std::array<uint64_t, 5> args{reinterpret_cast<uint64_t>(mem), sizeof(mem), 0, 0, 0};
        vm::RunOptions ro;
        ro.budget = 0;
        ro.dispatch = dispatch;
        // ns per run of a program: the fastest of several timings of `runs` runs.
        auto time_run = [&](const std::string& text, int runs) -> double {
            auto insns = vm::assemble(text, "<calibration>");
            if (!insns) throw insns.error();
            vm::Program p;
            p.name = "calibration";
            p.insns = *insns;
            auto interp = vm::Interpreter::compile(p, helpers);
            if (!interp) throw interp.error();
            double best = 1e300;
            for (int sample = 0; sample < 7; ++sample) {
                const auto t0 = Clock::now();
                for (int i = 0; i < runs; ++i) {
                    const vm::RunResult r = interp->run(env, args, ro);
                    if (r.trap) throw Error(ErrorCode::Internal, "calibration program trapped: " + r.trap->message);
                }
                best = std::min(best, std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / runs);
            }
            return best;
        };
        const double base = time_run(loop_program({}), 4);
        auto per_insn = [&](const std::vector<std::string>& pattern) {
            return (time_run(loop_program(pattern), 4) - base) / (double(kIters) * kBody);
        };
        CostTable t;
        t.dispatch = dispatch;
        auto set = [&](CostClass c, double ns) { t.ns[static_cast<std::size_t>(c)] = ns; };
        set(CostClass::Alu, per_insn({"add %r7, %r8", "xor %r7, 0x55", "lsh %r8, 1", "rsh %r8, 1", "add32 %r9, 3", "mov %r9, %r7",
                                      "sub %r7, 5", "and %r8, -1"}));
        set(CostClass::Mul, per_insn({"mul %r7, %r8", "mul %r9, 3"}));
        set(CostClass::Div, per_insn({"div %r7, %r8", "mod %r9, 7"}));
        set(CostClass::Lddw, per_insn({"lddw %r9, 0x123456789abcdef0"}));
        set(CostClass::Load, per_insn({"ldxdw %r9, [%r1+0]", "ldxw %r9, [%r1+8]", "ldxb %r9, [%r1+17]", "ldxh %r9, [%r1+22]"}));
        set(CostClass::LoadStack, per_insn({"ldxdw %r9, [%r10-8]", "ldxdw %r9, [%r10-16]"}));
        set(CostClass::Store, per_insn({"stxdw [%r1+0], %r7", "stxw [%r1+8], %r7", "stb [%r1+17], 1"}));
        set(CostClass::StoreStack, per_insn({"stxdw [%r10-8], %r7", "stdw [%r10-16], 3"}));
        set(CostClass::Atomic, per_insn({"lock add [%r10-8], %r8"}));
        set(CostClass::JumpTaken, per_insn({"jne %r8, 99, +0"}));
        set(CostClass::JumpFallthrough, per_insn({"jeq %r8, 99, +0"}));
        set(CostClass::Ja, per_insn({"ja +0"}));
        set(CostClass::CallHelper, per_insn({"call 2"}));
        // A bpf2bpf call runs call, mov, exit: half of what is left is the call, half the exit.
        const double pair = per_insn({"call local fn"}) - t.ns_of(CostClass::Alu);
        set(CostClass::CallLocal, pair / 2);
        set(CostClass::Exit, pair / 2);
        const double floor = std::max(t.ns_of(CostClass::Alu), 0.01) / 10;
        for (double& ns : t.ns) ns = std::max(ns, floor);
        t.entry_ns = std::max(0.0, time_run("mov %r0, 0\nexit\n", 4096) - t.ns_of(CostClass::Alu) - t.ns_of(CostClass::Exit));
        return t;
    });
}

// ───────────────────────────── timed helpers ───────────────────────────────

namespace {

struct TimerState {
    std::array<vm::HelperFn, HelperTimes::kTimed> fns{};
    std::array<uint64_t, HelperTimes::kTimed> calls{};
    std::array<double, HelperTimes::kTimed> ns{};
    double total = 0;
    int depth = 0;
    double overhead = 0;
};
TimerState g_timer;

template <int32_t Id>
uint64_t timed_call(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, vm::Env& env) {
    ++g_timer.depth;
    const auto t0 = Clock::now();
    const uint64_t r = g_timer.fns[Id](r1, r2, r3, r4, r5, env);
    const auto t1 = Clock::now();
    --g_timer.depth;
    const double ns = std::max(0.0, std::chrono::duration<double, std::nano>(t1 - t0).count() - g_timer.overhead);
    ++g_timer.calls[Id];
    g_timer.ns[Id] += ns;
    if (g_timer.depth == 0) g_timer.total += ns;
    return r;
}

template <int32_t... Ids>
constexpr std::array<vm::HelperFn, sizeof...(Ids)> trampolines(std::integer_sequence<int32_t, Ids...>) {
    return {&timed_call<Ids>...};
}

double measure_clock_pair() {
    std::vector<double> d;
    for (int i = 0; i < 201; ++i) {
        const auto a = Clock::now();
        const auto b = Clock::now();
        d.push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
    return stats(std::move(d)).median;
}

}  // namespace

vm::HelperTable HelperTimes::wrap(const vm::HelperTable& table) {
    static constexpr auto timed = trampolines(std::make_integer_sequence<int32_t, kTimed>{});
    vm::HelperTable out = table;
    g_timer.fns.fill(nullptr);
    for (int32_t id = 0; id < kTimed; ++id) {
        const vm::Helper* h = table.find(id);
        if (!h) continue;
        vm::Helper t = *h;
        g_timer.fns[static_cast<std::size_t>(id)] = h->fn;
        t.fn = timed[static_cast<std::size_t>(id)];
        out.add(std::move(t));
    }
    g_timer.overhead = measure_clock_pair();
    reset();
    return out;
}

void HelperTimes::reset() {
    g_timer.calls.fill(0);
    g_timer.ns.fill(0);
    g_timer.total = 0;
    g_timer.depth = 0;
}

std::map<int32_t, HelperTimes::Entry> HelperTimes::take() {
    std::map<int32_t, Entry> out;
    for (int32_t id = 0; id < kTimed; ++id)
        if (g_timer.calls[static_cast<std::size_t>(id)])
            out[id] = Entry{g_timer.calls[static_cast<std::size_t>(id)], g_timer.ns[static_cast<std::size_t>(id)]};
    return out;
}

double HelperTimes::total_ns() { return g_timer.total; }
double HelperTimes::clock_overhead_ns() { return g_timer.overhead; }

// ──────────────────────────────── profile ───────────────────────────────────

namespace {

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

Profile build_profile(const CoverageReport& counts, const ProfilePrograms& programs, uint64_t runs, const CostTable& costs,
                      double measured_ns, const std::map<int32_t, double>& helper_ns_per_call) {
    Profile p;
    p.runs = std::max<uint64_t>(runs, 1);
    p.measured_ns = measured_ns;
    const double per_run = 1.0 / double(p.runs);
    double model_total = 0;
    for (const auto& [key, cov] : counts.programs()) {
        const auto it = programs.find(key);
        if (it == programs.end()) continue;
        const vm::Program& prog = it->second;
        if (!cov.lines.empty()) p.has_lines = true;
        auto decoded = vm::decode(prog.insns);
        const vm::DisasmOptions dis;
        for (std::size_t pc = 0; pc < prog.insns.size(); ++pc) {
            if (!cov.is_insn(pc) || !cov.hits(pc)) continue;
            const vm::Insn& in = prog.insns[pc];
            vm::Op op = vm::Op::Invalid;
            if (decoded) op = decoded->ops[pc];
            else if (auto c = vm::classify(in)) op = *c;
            ProfileInsn row;
            row.program = key.second;
            row.pc = pc;
            const double hits = double(cov.hits(pc));
            const double taken = double(cov.taken(pc));
            row.count = hits * per_run;
            const CostClass cls = cost_class(in, op);
            if (cls == CostClass::JumpTaken) {
                row.taken = taken * per_run;
                row.model_ns = ((hits - taken) * costs.ns_of(CostClass::JumpFallthrough) + taken * costs.ns_of(CostClass::JumpTaken)) * per_run;
            } else {
                row.model_ns = hits * costs.ns_of(cls) * per_run;
            }
            if (op != vm::Op::Invalid && vm::op_info(op).form == vm::Form::CALL) {
                const auto h = helper_ns_per_call.find(in.imm);
                if (h != helper_ns_per_call.end()) row.helper_ns = hits * h->second * per_run;
            }
            if (const vm::LineInfo* l = cov.line_of(pc); l && l->line) {
                row.file = l->file;
                row.line = l->line;
            }
            row.text = vm::disassemble(prog.insns, pc, dis);
            model_total += row.model_ns;
            p.helper_ns += row.helper_ns;
            p.insns.push_back(std::move(row));
        }
    }
    p.model_ns = model_total + costs.entry_ns + p.helper_ns;
    // The instructions and the entry share what the helpers leave of the measured time.
    const double own = model_total + costs.entry_ns;
    const double left = std::max(0.0, measured_ns - p.helper_ns);
    p.scale = own > 0 ? left / own : 0;
    p.entry_ns = costs.entry_ns * p.scale;
    std::map<std::pair<std::string, uint32_t>, ProfileLine> lines;
    for (auto& row : p.insns) {
        row.est_ns = row.model_ns * p.scale + row.helper_ns;
        ProfileLine& l = lines[{row.file, row.line}];
        l.file = row.file;
        l.line = row.line;
        l.count = std::max(l.count, row.count);
        l.insns += row.count;
        l.est_ns += row.est_ns;
    }
    // The source text of each line, from the line_info entries.
    for (const auto& [key, cov] : counts.programs())
        for (const auto& li : cov.lines)
            if (auto it = lines.find({li.file, li.line}); it != lines.end() && it->second.source.empty()) it->second.source = trim(li.text);
    for (auto& [_, l] : lines) p.lines.push_back(std::move(l));
    std::stable_sort(p.lines.begin(), p.lines.end(), [](const ProfileLine& a, const ProfileLine& b) { return a.est_ns > b.est_ns; });
    std::stable_sort(p.insns.begin(), p.insns.end(), [](const ProfileInsn& a, const ProfileInsn& b) { return a.est_ns > b.est_ns; });
    return p;
}

}  // namespace bpfsim::harness
