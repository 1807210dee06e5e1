// Interpreter vs native on the four kernels of corpus/bench/kernels.c.
//
// Each kernel runs natively (the same C source, -O2) and in the interpreter in the same
// process; a closing table gives ns per executed BPF instruction and the ratio
// interpreter/native. Run: build/bench/bench_interp  (or `make bench`).
#include "harness/harness.hpp"
#include "vm/jit.hpp"
#include "vm/vm.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

extern "C" {
uint64_t bench_native_xorshift(const uint64_t* mem, uint64_t len);
uint64_t bench_native_xorshift4(const uint64_t* mem, uint64_t len);
uint64_t bench_native_fnv1a(const uint8_t* mem, uint64_t len);
uint64_t bench_native_parser(const uint8_t* mem, uint64_t len);
}

namespace {

using namespace bpfsim;

// Deterministic input bytes.
uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

std::vector<uint8_t> seed_input() {
    std::vector<uint8_t> m(8);
    const uint64_t s = 0x243f6a8885a308d3ull;
    std::memcpy(m.data(), &s, 8);
    return m;
}

std::vector<uint8_t> fnv_input() {
    std::vector<uint8_t> m(1024);
    uint64_t s = 1;
    for (auto& b : m) b = static_cast<uint8_t>(splitmix(s));
    return m;
}

// 64 packets of 128 bytes: a mix of VLAN tags, IPv4 (some with options, some fragments),
// IPv6, TCP/UDP/ICMP/ICMPv6/other, and some malformed ones.
std::vector<uint8_t> parser_input() {
    std::vector<uint8_t> m(64 * 128);
    uint64_t s = 7;
    for (unsigned n = 0; n < 64; ++n) {
        uint8_t* p = m.data() + n * 128;
        for (unsigned i = 0; i < 128; ++i) p[i] = static_cast<uint8_t>(splitmix(s));
        unsigned off = 12;
        const unsigned kind = static_cast<unsigned>(splitmix(s) % 16);
        const unsigned vlans = kind % 3 == 0 ? 1 : kind % 5 == 0 ? 2 : 0;
        for (unsigned v = 0; v < vlans; ++v) {
            p[off] = v == 0 && vlans == 2 ? 0x88 : 0x81;
            p[off + 1] = v == 0 && vlans == 2 ? 0xa8 : 0x00;
            off += 4;
        }
        const unsigned l4s[] = {6, 17, 1, 6, 17, 58, 47, 6};
        const unsigned l4 = l4s[splitmix(s) % 8];
        if (kind < 9) {   // IPv4
            p[off] = 0x08; p[off + 1] = 0x00; off += 2;
            const unsigned ihl = kind == 4 ? 7 : 5;
            p[off] = static_cast<uint8_t>(0x40 | ihl);
            if (kind == 8) p[off] = 0x35;          // bad header length
            p[off + 6] = kind == 7 ? 0x20 : 0x40;  // fragment or DF
            p[off + 7] = 0;
            p[off + 9] = static_cast<uint8_t>(l4 == 58 ? 1 : l4);
        } else if (kind < 14) {   // IPv6
            p[off] = 0x86; p[off + 1] = 0xdd; off += 2;
            p[off] = kind == 13 ? 0x45 : 0x60;
            p[off + 6] = static_cast<uint8_t>(l4);
        } else {   // ARP and friends
            p[off] = 0x08; p[off + 1] = 0x06;
        }
    }
    return m;
}

struct Kernel {
    const char* name;
    std::vector<uint8_t> (*input)();
    uint64_t (*native)(const void*, uint64_t);
};

const Kernel kKernels[] = {
    {"xorshift", seed_input, [](const void* m, uint64_t l) { return bench_native_xorshift(static_cast<const uint64_t*>(m), l); }},
    {"xorshift4", seed_input, [](const void* m, uint64_t l) { return bench_native_xorshift4(static_cast<const uint64_t*>(m), l); }},
    {"fnv1a", fnv_input, [](const void* m, uint64_t l) { return bench_native_fnv1a(static_cast<const uint8_t*>(m), l); }},
    {"parser", parser_input, [](const void* m, uint64_t l) { return bench_native_parser(static_cast<const uint8_t*>(m), l); }},
};

harness::ElfFile& corpus() {
    static harness::ElfFile f = [] {
        auto r = harness::ElfFile::open(BPFSIM_CORPUS_DIR "/bench_kernels.o");
        if (!r) throw r.error();
        return std::move(r.value());
    }();
    return f;
}

void BM_native(benchmark::State& state, const Kernel* k) {
    auto mem = k->input();
    uint64_t r = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(mem.data());
        r = k->native(mem.data(), mem.size());
        benchmark::DoNotOptimize(r);
    }
    state.counters["r0"] = static_cast<double>(r & 0xffff);
}

// After the timed runs: the last result must be the native code's, then insns and ns/insn.
void report(benchmark::State& state, const vm::RunResult& r, uint64_t insns, const Kernel& k, const std::vector<uint8_t>& mem,
            const char* engine) {
    if (r.trap) {
        state.SkipWithError(r.trap->message.c_str());
        return;
    }
    const uint64_t expect = k.native(mem.data(), mem.size());
    if (r.r0 != expect) {
        state.SkipWithError(fmt::format("{} returned {:#x}, native {:#x}", engine, r.r0, expect).c_str());
        return;
    }
    state.counters["insns"] = static_cast<double>(insns);
    state.counters["ns/insn"] = benchmark::Counter(static_cast<double>(insns) * static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_interp(benchmark::State& state, const Kernel* k, vm::Dispatch dispatch) {
    auto prog = corpus().program(k->name);
    if (!prog) {
        state.SkipWithError(prog.error().describe().c_str());
        return;
    }
    auto interp = vm::Interpreter::compile(*prog, vm::HelperTable{});
    if (!interp) {
        state.SkipWithError(interp.error().describe().c_str());
        return;
    }
    auto mem = k->input();
    vm::Env env;
    env.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
    vm::RunOptions opts;
    opts.budget = 0;
    opts.dispatch = dispatch;
    vm::RunResult r;
    for (auto _ : state) {
        r = interp->run(env, {reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0}, opts);
        benchmark::DoNotOptimize(r.r0);
    }
    report(state, r, r.insns, *k, mem, "interpreter");
}

// The JIT (vm/jit.hpp), checked (bounds checks + budget) or unchecked.
void BM_jit(benchmark::State& state, const Kernel* k, vm::JitOptions jo) {
    auto prog = corpus().program(k->name);
    if (!prog) {
        state.SkipWithError(prog.error().describe().c_str());
        return;
    }
    auto jit = vm::Jit::compile(*prog, vm::HelperTable{}, jo);
    auto interp = vm::Interpreter::compile(*prog, vm::HelperTable{});
    if (!jit || !interp) {
        state.SkipWithError((jit ? interp.error() : jit.error()).describe().c_str());
        return;
    }
    auto mem = k->input();
    vm::Env env;
    env.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
    vm::RunOptions opts;
    opts.budget = 0;
    const std::array<uint64_t, 5> args{reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0};
    vm::RunResult r;
    for (auto _ : state) {
        r = jit->run(env, args, opts);
        benchmark::DoNotOptimize(r.r0);
    }
    report(state, r, interp->run(env, args, opts).insns, *k, mem, "jit");   // unchecked runs do not count
}

// Compile time: an empty program (the fixed cost), the kernels, and a synthetic 50,000-instruction
// program (ALU, stack loads/stores and forward branches) for the cost per instruction.
vm::Program empty_program() {
    vm::Program p;
    p.name = "empty";
    p.insns = {vm::Insn{0xb7, 0, 0, 0, 2}, vm::Insn{0x95, 0, 0, 0, 0}};   // r0 = XDP_PASS; exit
    return p;
}

vm::Program large_program(std::size_t n) {
    vm::Program p;
    p.name = "large";
    uint64_t s = 11;
    for (std::size_t pc = 0; pc + 1 < n; ++pc) {
        const auto r = splitmix(s);
        const auto dst = static_cast<uint8_t>(r % 10), src = static_cast<uint8_t>((r >> 8) % 10);
        switch ((r >> 16) % 6) {
        case 0: p.insns.push_back(vm::Insn{0x0f, dst, src, 0, 0}); break;                                  // r += r
        case 1: p.insns.push_back(vm::Insn{0x07, dst, 0, 0, static_cast<int32_t>(r >> 32)}); break;        // r += imm
        case 2: p.insns.push_back(vm::Insn{0x79, dst, 10, static_cast<int16_t>(-8 * (1 + (r >> 24) % 64)), 0}); break;   // ldxdw
        case 3: p.insns.push_back(vm::Insn{0x7b, 10, src, static_cast<int16_t>(-8 * (1 + (r >> 24) % 64)), 0}); break;   // stxdw
        case 4: p.insns.push_back(vm::Insn{0x2d, dst, src, static_cast<int16_t>(std::min<std::size_t>(n - pc - 2, 1 + (r >> 24) % 16)), 0}); break;
        default: p.insns.push_back(vm::Insn{0xcc, dst, src, 0, 0}); break;                                 // w >>= w (arsh32)
        }
    }
    p.insns.push_back(vm::Insn{0x95, 0, 0, 0, 0});
    return p;
}

void BM_compile(benchmark::State& state, const Kernel* k) {
    vm::Program prog;
    if (k) {
        auto p = corpus().program(k->name);
        if (!p) {
            state.SkipWithError(p.error().describe().c_str());
            return;
        }
        prog = *p;
    } else {
        prog = empty_program();
    }
    for (auto _ : state) {
        auto jit = vm::Jit::compile(prog, vm::HelperTable{}, vm::JitOptions{false});
        benchmark::DoNotOptimize(jit);
    }
    state.counters["insns"] = static_cast<double>(prog.insns.size());
}

// A 50,000-instruction program per iteration through `step` (a compile, or validation alone:
// the share of the compile time that vm::validate, which Interpreter::compile runs too, takes).
template <typename Step>
void BM_large(benchmark::State& state, Step step) {
    const vm::Program prog = large_program(50'000);
    for (auto _ : state) {
        auto r = step(prog);
        if (!r) {
            state.SkipWithError(r.error().describe().c_str());
            return;
        }
        benchmark::DoNotOptimize(r);
    }
    state.counters["insns"] = static_cast<double>(prog.insns.size());
    state.counters["ns/insn"] = benchmark::Counter(static_cast<double>(prog.insns.size()),
                                                   benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// Compile time on real programs: every program of the sample corpus (../shared/corpus/
// ebpf-samples) that links, its map and BTF lddw made plain constants (no maps are bound
// here), compiled once per iteration. ns/insn: the time beyond each compile's fixed cost (an
// empty program's, measured alongside), per instruction, as the figure is stated.
struct Samples {
    std::vector<vm::Program> progs;
    std::size_t insns = 0;
};
const Samples& samples() {
    static const Samples s = [] {
        namespace fs = std::filesystem;
        Samples out;
        std::vector<fs::path> files;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(BPFSIM_SHARED_DIR "/corpus/ebpf-samples", ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file() && it->path().extension() == ".o") files.push_back(it->path());
        std::sort(files.begin(), files.end());
        const auto helpers = harness::kernel_helpers();
        for (const auto& f : files) {
            auto obj = harness::Object::open(f);
            if (!obj) continue;
            for (const auto& pd : obj->programs()) {
                auto lp = obj->link(pd.name);
                if (!lp) continue;
                vm::Program p = lp->prog;
                for (std::size_t k = 0; k + 1 < p.insns.size(); ++k)
                    if (p.insns[k].code == 0x18 && p.insns[k].src != 0) {
                        p.insns[k].src = 0;
                        p.insns[++k].imm = 0;
                    }
                if (!vm::Jit::compile(p, helpers, vm::JitOptions{false})) continue;   // (e.g. kfuncs, unknown helpers)
                out.insns += p.insns.size();
                out.progs.push_back(std::move(p));
            }
        }
        return out;
    }();
    return s;
}

// warm: each program is compiled twice untimed just before the timed compile (the same program
// again, as a benchmark loop over one program measures it: caches and branch history hold it);
// else each program once, after the others (cold).
void BM_compile_samples(benchmark::State& state, bool checked, bool warm) {
    const Samples& s = samples();
    if (s.progs.empty()) {
        state.SkipWithError("no programs under " BPFSIM_SHARED_DIR "/corpus/ebpf-samples");
        return;
    }
    const auto helpers = harness::kernel_helpers();
    const vm::JitOptions opts{checked};
    auto fixed = [&] {   // an empty program's compile, the best of 200
        double best = 1e18;
        for (int i = 0; i < 200; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            auto j = vm::Jit::compile(empty_program(), helpers, opts);
            benchmark::DoNotOptimize(j);
            best = std::min(best, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
        }
        return best;
    };
    const double fixed_before = fixed();
    double total = 0;
    for (auto _ : state) {
        if (warm) {   // (manual time: the timed compiles only)
            double timed = 0;
            for (const auto& p : s.progs) {
                for (int k = 0; k < 2; ++k) {
                    auto j = vm::Jit::compile(p, helpers, opts);
                    benchmark::DoNotOptimize(j);
                }
                const auto t0 = std::chrono::steady_clock::now();
                auto j = vm::Jit::compile(p, helpers, opts);
                benchmark::DoNotOptimize(j);
                timed += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
            }
            total += timed;
            state.SetIterationTime(timed / 1e9);
            continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& p : s.progs) {
            auto j = vm::Jit::compile(p, helpers, opts);
            benchmark::DoNotOptimize(j);
        }
        total += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    }
    const double fixed_ns = std::min(fixed_before, fixed());
    const double per_iteration = total / static_cast<double>(state.iterations());
    state.counters["programs"] = static_cast<double>(s.progs.size());
    state.counters["insns"] = static_cast<double>(s.insns);
    state.counters["fixed_us"] = fixed_ns / 1e3;
    state.counters["ns/insn"] = (per_iteration - fixed_ns * static_cast<double>(s.progs.size())) / static_cast<double>(s.insns);
}

// Run overhead: an empty XDP program (r0 = XDP_PASS) on a 64-byte packet and its xdp_md,
// both already in the memory map, as the kernel's BPF_PROG_TEST_RUN repeat loop measures it.
struct EmptyXdp {
    std::vector<uint8_t> packet = std::vector<uint8_t>(64);
    std::array<uint32_t, 6> ctx{};
    vm::Env env;
    EmptyXdp() {
        env.mem.add(packet.data(), packet.size(), vm::kReadWrite, vm::RegionKind::Packet, "packet");
        env.mem.add(ctx.data(), sizeof(ctx), vm::kRead, vm::RegionKind::Ctx, "xdp_md");
    }
};

void BM_empty_run(benchmark::State& state, bool checked) {
    auto jit = vm::Jit::compile(empty_program(), vm::HelperTable{}, vm::JitOptions{checked});
    if (!jit) {
        state.SkipWithError(jit.error().describe().c_str());
        return;
    }
    EmptyXdp x;
    vm::RunOptions opts;
    for (auto _ : state) {
        auto r = jit->run(x.env, {reinterpret_cast<uint64_t>(x.ctx.data()), 0, 0, 0, 0}, opts);
        benchmark::DoNotOptimize(r.r0);
    }
}

void BM_empty_run_interp(benchmark::State& state) {
    auto interp = vm::Interpreter::compile(empty_program(), vm::HelperTable{});
    if (!interp) {
        state.SkipWithError(interp.error().describe().c_str());
        return;
    }
    EmptyXdp x;
    vm::RunOptions opts;
    for (auto _ : state) {
        auto r = interp->run(x.env, {reinterpret_cast<uint64_t>(x.ctx.data()), 0, 0, 0, 0}, opts);
        benchmark::DoNotOptimize(r.r0);
    }
}

// Prints the usual console output, then a table of ratios from the same run.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& r : runs) {
            if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
            times_[r.benchmark_name()] = r.GetAdjustedRealTime();
            auto it = r.counters.find("insns");
            if (it != r.counters.end()) insns_[r.benchmark_name()] = it->second.value;
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        fmt::print("\n{:<12} {:>12} {:>14} {:>10} {:>14} {:>10}\n", "kernel", "native ms", "threaded ms", "ns/insn",
                   "threaded/native", "switch/native");
        for (const auto& k : kKernels) {
            const auto n = times_.find(fmt::format("native/{}", k.name));
            const auto t = times_.find(fmt::format("interp_threaded/{}", k.name));
            const auto s = times_.find(fmt::format("interp_switch/{}", k.name));
            if (n == times_.end() || t == times_.end()) continue;
            const double insns = insns_[t->first];
            fmt::print("{:<12} {:>12.3f} {:>14.3f} {:>10.3f} {:>14.2f}x {:>9.2f}x\n", k.name, n->second / 1e6,
                       t->second / 1e6, insns ? t->second / insns : 0.0, t->second / n->second,
                       s != times_.end() ? s->second / n->second : 0.0);
        }
        fmt::print("\n{:<12} {:>12} {:>14} {:>10} {:>14} {:>10} {:>14}\n", "kernel", "native ms", "jit ms", "ns/insn",
                   "jit/native", "unchecked ms", "unchecked/native");
        for (const auto& k : kKernels) {
            const auto n = times_.find(fmt::format("native/{}", k.name));
            const auto c = times_.find(fmt::format("jit_checked/{}", k.name));
            const auto u = times_.find(fmt::format("jit_unchecked/{}", k.name));
            if (n == times_.end() || c == times_.end()) continue;
            const double insns = insns_[c->first];
            fmt::print("{:<12} {:>12.3f} {:>14.3f} {:>10.3f} {:>13.2f}x {:>12.3f} {:>15.2f}x\n", k.name, n->second / 1e6,
                       c->second / 1e6, insns ? c->second / insns : 0.0, c->second / n->second,
                       u != times_.end() ? u->second / 1e6 : 0.0, u != times_.end() ? u->second / n->second : 0.0);
        }
    }

private:
    std::map<std::string, double> times_;   // ns (the benchmarks use the default time unit)
    std::map<std::string, double> insns_;
};

}  // namespace

int main(int argc, char** argv) {
    for (const auto& k : kKernels) {
        benchmark::RegisterBenchmark(fmt::format("native/{}", k.name).c_str(), BM_native, &k);
        benchmark::RegisterBenchmark(fmt::format("interp_threaded/{}", k.name).c_str(), BM_interp, &k, vm::Dispatch::Threaded);
        benchmark::RegisterBenchmark(fmt::format("interp_switch/{}", k.name).c_str(), BM_interp, &k, vm::Dispatch::Switch);
        benchmark::RegisterBenchmark(fmt::format("jit_checked/{}", k.name).c_str(), BM_jit, &k, vm::JitOptions{true});
        benchmark::RegisterBenchmark(fmt::format("jit_unchecked/{}", k.name).c_str(), BM_jit, &k, vm::JitOptions{false});
    }
    // What each unchecked-mode optimisation gains on the parser, cumulatively (vm/jit.hpp).
    const std::pair<const char*, uint32_t> steps[] = {{"+lea", vm::kJitOptLea},       {"+movzx", vm::kJitOptMovzx},
                                                      {"+be16", vm::kJitOptBe16},     {"+addr", vm::kJitOptAddr},
                                                      {"+branch", vm::kJitOptBranch}, {"+align", vm::kJitOptAlign},
                                                      {"+rmw", vm::kJitOptRmw},       {"+knownbits", vm::kJitOptKnownBits},
                                                      {"+sink", vm::kJitOptSink}};
    uint32_t mask = 0;
    auto step = [&](const std::string& name, uint32_t m) {
        vm::JitOptions jo{false};
        jo.optimize = m;
        benchmark::RegisterBenchmark(fmt::format("jit_steps/parser/{}", name).c_str(), BM_jit, &kKernels[3], jo);
    };
    step("none", 0);
    for (const auto& [name, bit] : steps) step(name, mask |= bit);
    if ((mask | vm::kJitOptGroup) != vm::kJitOptDefault) throw std::logic_error("jit_steps: the steps do not add up to the default");
    step("default+stackregs", vm::kJitOptDefault | vm::kJitOptStackRegs);
    benchmark::RegisterBenchmark("jit_compile/empty", BM_compile, static_cast<const Kernel*>(nullptr));
    for (const auto& k : kKernels) benchmark::RegisterBenchmark(fmt::format("jit_compile/{}", k.name).c_str(), BM_compile, &k);
    for (const bool checked : {false, true})
        benchmark::RegisterBenchmark(checked ? "jit_compile/synthetic_50k_checked" : "jit_compile/synthetic_50k",
                                     BM_large<std::function<Result<vm::Jit>(const vm::Program&)>>,
                                     [checked](const vm::Program& p) { return vm::Jit::compile(p, vm::HelperTable{}, vm::JitOptions{checked}); });
    for (const bool warm : {false, true})
        for (const bool checked : {false, true}) {
            auto* b = benchmark::RegisterBenchmark(fmt::format("jit_compile/samples{}{}", checked ? "_checked" : "", warm ? "_warm" : "").c_str(),
                                                   BM_compile_samples, checked, warm);
            b->Unit(benchmark::kMillisecond);
            if (warm) b->UseManualTime();
        }
    benchmark::RegisterBenchmark("jit_compile/synthetic_50k_validate_only",
                                 BM_large<std::function<Result<vm::Validated>(const vm::Program&)>>,
                                 [](const vm::Program& p) { return vm::validate(p, vm::HelperTable{}); });
    benchmark::RegisterBenchmark("jit_run/empty_xdp", BM_empty_run, true);
    benchmark::RegisterBenchmark("jit_run/empty_xdp_unchecked", BM_empty_run, false);
    benchmark::RegisterBenchmark("interp_run/empty_xdp", BM_empty_run_interp);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
