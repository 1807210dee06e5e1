// `bpfsim bench OBJ --prog P [--scenario S [--step NAME]]`: how fast a program runs, in the
// interpreter and the JIT side by side: ns per run (median and spread over repetitions),
// instructions per run, the helpers' share of the time; `--profile` apportions the
// interpreter's time over source lines and instructions (harness/profile.hpp); `--json` writes
// Google Benchmark's JSON, so its tools/compare.py compares two runs.
//
// The program runs in the world `bpfsim run` (or the scenario) builds for it. That world's own
// run path (World::run_packet / run_ctx) runs it once, counted, and the context and packet it
// sets up are captured as the run starts; the engines then run the bound program directly
// against that world, with everything the first run changed put back before every run, so
// the harness's per-run set-up (a 16 KiB packet buffer cleared, regions mapped) is not timed.
#include "cli/inputs.hpp"
#include "harness/coverage.hpp"
#include "harness/profile.hpp"
#include "harness/scenario.hpp"
#include "verifier/scenario_verifier.hpp"
#include "vm/jit.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace bpfsim {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

double thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

struct Settings {
    bool interp = true, jit = true;
    vm::Dispatch dispatch = vm::Dispatch::Threaded;
    uint64_t budget = 0;
    unsigned repetitions = 10;
    double min_time = 0.05;   // seconds
    bool cpu_clock = false;   // --time cpu
    bool checked = false;     // --checked: the JIT checked even for accepted programs
    bool profile = false;
    unsigned profile_runs = 1;
    std::size_t top = 15;
    bool json = false;
};

// ─────────────────────── what each run starts from ─────────────────────────

// What a run may change in a world and how it is put back before the next: the bytes and
// entries of maps the first run changed, ring buffer and perf output (consumed), trace lines,
// and the context and packet the world's own run path built (captured as that run starts).
class WorldReset {
public:
    explicit WorldReset(harness::World& w) : w_(w) {
        for (std::size_t i = 0; i < w.object().maps().size(); ++i) {
            harness::Map* m = w.map_at(i);
            if (!m) continue;
            const harness::MapDef& d = w.object().maps()[i];
            MapState s{m, d.name, {}, {}, {}};
            switch (d.type) {
            case harness::MapType::Ringbuf:
            case harness::MapType::PerfEventArray: consumers_.push_back(m); continue;
            case harness::MapType::Queue:
            case harness::MapType::Stack:
            case harness::MapType::BloomFilter: keyless_.push_back(d.name); continue;
            case harness::MapType::ProgArray:
            case harness::MapType::ArrayOfMaps:
            case harness::MapType::HashOfMaps:
            case harness::MapType::StackTrace: continue;   // programs do not write them (stack ids: not reset)
            default: break;
            }
            if (d.frozen) continue;
            if (d.type == harness::MapType::Array || d.type == harness::MapType::PercpuArray) {
                s.regions = m->regions();
                for (const auto& r : s.regions) s.bytes.emplace_back(reinterpret_cast<const uint8_t*>(r.start), reinterpret_cast<const uint8_t*>(r.end()));
            } else {
                s.entries = harness::dump_map(*m, w.options().ncpus);
            }
            maps_.push_back(std::move(s));
        }
        trace_size_ = w.trace.size();
    }

    // Run options whose counters callback captures the world's set-up for the run (regions it
    // mapped, their bytes, the packet state) when the run starts, before any instruction.
    vm::RunOptions capturing(vm::RunOptions ro) {
        before_ = w_.mem.regions();
        ro.coverage = nullptr;
        ro.counters = [this](const vm::Program&) -> vm::Coverage* {
            if (!captured_) capture();
            return nullptr;
        };
        return ro;
    }
    bool captured() const { return captured_; }

    // After the reference run: what it changed in the maps, put back; the consumers drained.
    void learn() {
        for (auto& s : maps_) {
            if (!s.regions.empty()) {
                for (std::size_t r = 0; r < s.regions.size(); ++r) {
                    auto* now = reinterpret_cast<uint8_t*>(s.regions[r].start);
                    const Bytes& was = s.bytes[r];
                    // Differing 8-byte chunks, merged into ranges.
                    for (std::size_t off = 0; off < was.size();) {
                        const std::size_t n = std::min<std::size_t>(8, was.size() - off);
                        if (std::memcmp(now + off, was.data() + off, n) == 0) {
                            off += n;
                            continue;
                        }
                        std::size_t end = off + n;
                        while (end < was.size()) {
                            const std::size_t m = std::min<std::size_t>(8, was.size() - end);
                            if (std::memcmp(now + end, was.data() + end, m) == 0) break;
                            end += m;
                        }
                        fixes_.push_back({now + off, Bytes(was.begin() + long(off), was.begin() + long(end))});
                        changed_.insert(s.name);
                        off = end;
                    }
                }
            } else {
                const auto after = harness::dump_map(*s.map, w_.options().ncpus);
                std::map<Bytes, Bytes> old(s.entries.begin(), s.entries.end()), now(after.begin(), after.end());
                for (const auto& [k, v] : old)
                    if (auto it = now.find(k); it == now.end() || it->second != v) {
                        keys_.push_back({s.map, k, v});
                        changed_.insert(s.name);
                    }
                for (const auto& [k, v] : now)
                    if (!old.count(k)) {
                        keys_.push_back({s.map, k, std::nullopt});
                        changed_.insert(s.name);
                    }
            }
        }
        put_back();
    }

    // Maps the captured context and packet again, as the world had them when the run started.
    void install() {
        if (!captured_) return;
        for (std::size_t i = 0; i < added_.size(); ++i) {
            std::memcpy(reinterpret_cast<void*>(added_[i].start), added_bytes_[i].data(), added_bytes_[i].size());
            if (added_[i].kind != vm::RegionKind::Packet) w_.mem.add(added_[i]);
        }
        if (pkt_.buf) {
            std::memcpy(pkt_.buf, pkt_bytes_.data(), pkt_bytes_.size());
            w_.pkt = pkt_;
            w_.pkt.region = 0;
            w_.sync_packet();   // maps the packet and sets skb_data
        } else {
            w_.skb_data = skb_data_;
            w_.skb_len = skb_len_;
        }
        installed_ = true;
    }
    void remove() {
        if (!installed_) return;
        for (const auto& r : added_)
            if (r.kind != vm::RegionKind::Packet) w_.mem.remove(r.start);
        if (w_.pkt.region) w_.mem.remove(w_.pkt.region);
        w_.pkt = harness::World::PacketState{};
        w_.skb_data = nullptr;
        w_.skb_len = 0;
        installed_ = false;
    }
    uint64_t ctx() const { return ctx_; }

    // Before every run.
    void operator()() {
        for (std::size_t i = 0; i < added_.size(); ++i)
            if (added_[i].kind != vm::RegionKind::Packet)
                std::memcpy(reinterpret_cast<void*>(added_[i].start), added_bytes_[i].data(), added_bytes_[i].size());
        if (pkt_.buf) {
            const bool moved = w_.pkt.data != pkt_.data || w_.pkt.data_end != pkt_.data_end || w_.pkt.data_meta != pkt_.data_meta;
            const uint64_t region = w_.pkt.region;
            w_.pkt = pkt_;
            w_.pkt.region = region;
            if (moved) {   // adjust_head/tail and friends: the whole buffer and its mapping
                std::memcpy(pkt_.buf, pkt_bytes_.data(), pkt_bytes_.size());
                w_.sync_packet();
            } else {
                std::memcpy(pkt_.buf + pkt_.data_meta, pkt_bytes_.data() + pkt_.data_meta, pkt_.data_end - pkt_.data_meta);
            }
        }
        w_.tunnel = harness::World::TunnelInfo{};
        w_.tail_calls = 0;
        put_back();
    }

    std::vector<std::string> what() const {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < added_.size(); ++i)
            out.push_back(added_[i].kind == vm::RegionKind::Packet ? fmt::format("the packet ({} bytes)", pkt_.data_end - pkt_.data)
                                                                  : fmt::format("the context ({} bytes)", added_bytes_[i].size()));
        for (const auto& m : changed_) out.push_back(fmt::format("map {} (the entries the first run changed)", m));
        for (harness::Map* m : consumers_) out.push_back(fmt::format("{} {} (consumed)", harness::to_string(m->def().type), m->def().name));
        out.push_back("trace lines");
        return out;
    }
    std::vector<std::string> not_reset() const {
        std::vector<std::string> out{"the PRNG (bpf_get_prandom_u32)"};
        for (const auto& k : keyless_) out.push_back(fmt::format("{} (queue, stack or bloom filter)", k));
        return out;
    }

private:
    struct MapState {
        harness::Map* map;
        std::string name;
        std::vector<vm::Region> regions;   // arrays: their value memory...
        std::vector<Bytes> bytes;          // ...and its bytes
        std::vector<std::pair<Bytes, Bytes>> entries;   // other keyed maps
    };
    struct Fix {
        uint8_t* at;
        Bytes bytes;
    };
    struct KeyFix {
        harness::Map* map;
        Bytes key;
        std::optional<Bytes> value;   // none: the run added it
    };

    void capture() {
        captured_ = true;
        for (const auto& r : w_.mem.regions()) {
            // The context and the packet; kernel memory regions stay mapped between runs.
            if (r.kind != vm::RegionKind::Ctx && r.kind != vm::RegionKind::Packet) continue;
            if (std::any_of(before_.begin(), before_.end(), [&](const vm::Region& b) { return b.start == r.start; })) continue;
            added_.push_back(r);
            added_bytes_.emplace_back(reinterpret_cast<const uint8_t*>(r.start), reinterpret_cast<const uint8_t*>(r.end()));
            if (r.kind == vm::RegionKind::Ctx) ctx_ = r.start;
        }
        pkt_ = w_.pkt;
        if (pkt_.buf) pkt_bytes_.assign(pkt_.buf, pkt_.buf + pkt_.cap);
        skb_data_ = w_.skb_data;
        skb_len_ = w_.skb_len;
    }
    void put_back() {
        for (const auto& f : fixes_) std::memcpy(f.at, f.bytes.data(), f.bytes.size());
        for (const auto& k : keys_) {
            if (k.value) k.map->user_update(k.key.data(), k.value->data(), 0);
            else k.map->user_delete(k.key.data());
        }
        for (harness::Map* m : consumers_) {
            if (auto* rb = dynamic_cast<harness::RingbufMap*>(m)) rb->drain();
            else if (auto* pe = dynamic_cast<harness::PerfEventArrayMap*>(m)) pe->clear_records();
        }
        if (w_.trace.size() > trace_size_) w_.trace.erase(w_.trace.begin() + long(trace_size_), w_.trace.end());
    }

    harness::World& w_;
    std::vector<MapState> maps_;
    std::vector<harness::Map*> consumers_;
    std::vector<std::string> keyless_;
    std::set<std::string> changed_;
    std::vector<Fix> fixes_;
    std::vector<KeyFix> keys_;
    std::size_t trace_size_ = 0;
    std::vector<vm::Region> before_, added_;
    std::vector<Bytes> added_bytes_;
    harness::World::PacketState pkt_{};
    Bytes pkt_bytes_;
    const uint8_t* skb_data_ = nullptr;
    uint32_t skb_len_ = 0;
    uint64_t ctx_ = 0;
    bool captured_ = false, installed_ = false;
};

// What is measured: a program bound to its world, the environment and arguments each run
// gets, and what puts the state back before each run.
struct Target {
    std::string family;               // Google Benchmark's name: OBJ/PROG
    std::string object, program, section, input;
    vm::Program prog;
    vm::HelperTable helpers;
    vm::Env* env = nullptr;
    std::array<uint64_t, 5> args{};
    std::function<void()> reset;
    std::vector<std::string> reset_what, not_reset;
    bool accepted = false;            // the verifier model accepts it for this input
    std::string jit_reason;           // why the JIT runs checked
    uint64_t r0 = 0, insns = 0;       // the reference run's
    std::map<int32_t, uint64_t> helper_calls;   // the reference run's
    std::string world_note;           // scenario: which step, which BTF
};

// Helpers a program calls that the table lacks (bpfsim's CO-RE poison helper, ...): a trap
// with a message, so that the program still compiles and a run that reaches one says why.
void add_missing_helpers(const vm::Program& prog, vm::HelperTable& t) {
    for (const auto& in : prog.insns) {
        if (in.code != 0x85 || in.src != 0 || t.find(in.imm)) continue;
        vm::Helper h;
        h.id = in.imm;
        h.name = fmt::format("helper_{}", in.imm);
        h.fn = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env& e) -> uint64_t {
            e.request_trap("this helper is not available to bpfsim bench (a CO-RE poisoned call?)");
            return 0;
        };
        t.add(std::move(h));
    }
}

std::string hex_r0(uint64_t r0) { return fmt::format("{:#x}", r0); }

// ───────────────────────────── measurement ─────────────────────────────────

struct HelperRow {
    std::string name;
    double calls_per_run = 0;
    double ns_per_call = 0;
};

struct EngineResult {
    std::string engine;               // interp, jit
    std::string mode;                 // threaded, switch, checked, unchecked
    uint64_t runs_per_rep = 0;
    std::vector<double> real_ns, cpu_ns;   // per run, one per repetition
    harness::Stats real, cpu;
    double reset_ns = 0;              // putting the state back, taken off per run (--time's clock)
    double helper_ns = 0;             // per run, instrumented pass (real time)
    std::map<int32_t, HelperRow> helpers;
};

using RunFn = std::function<vm::RunResult()>;

struct Batch {
    double real = 0, cpu = 0;   // ns for the whole batch
};

Batch time_batch(uint64_t n, const std::function<void()>& reset, const RunFn* run) {
    uint64_t sink = 0;
    const double c0 = thread_cpu_ns();
    const auto t0 = Clock::now();
    for (uint64_t i = 0; i < n; ++i) {
        if (reset) reset();
        if (run) {
            const vm::RunResult r = (*run)();
            if (r.trap) throw Error(ErrorCode::Unsupported, fmt::format("a timed run trapped: {}", r.trap->message));
            sink += r.r0;
        }
    }
    const auto t1 = Clock::now();
    const double c1 = thread_cpu_ns();
    asm volatile("" : : "r"(sink) : "memory");
    return {std::chrono::duration<double, std::nano>(t1 - t0).count(), c1 - c0};
}

void measure(EngineResult& e, const Target& t, const Settings& s, const RunFn& run) {
    const double min_ns = s.min_time * 1e9;
    // Warm-up: batches growing until one lasts min_time; that size is used for every repetition.
    uint64_t n = 1;
    for (;;) {
        const Batch b = time_batch(n, t.reset, &run);
        if (b.real >= min_ns) break;
        const double grow = b.real > 0 ? std::min(10.0, std::max(1.2, 1.4 * min_ns / b.real)) : 10.0;
        n = std::max<uint64_t>(n + 1, static_cast<uint64_t>(double(n) * grow));
    }
    e.runs_per_rep = n;
    std::vector<Batch> reps;
    for (unsigned r = 0; r < s.repetitions; ++r) reps.push_back(time_batch(n, t.reset, &run));
    // The cost of putting the state back, timed alone with the same batch size, is taken off.
    double reset_real = 0, reset_cpu = 0;
    if (t.reset) {
        std::vector<double> rr, rc;
        for (unsigned r = 0; r < std::max(3u, s.repetitions); ++r) {
            const Batch b = time_batch(n, t.reset, nullptr);
            rr.push_back(b.real);
            rc.push_back(b.cpu);
        }
        reset_real = harness::stats(rr).median / double(n);
        reset_cpu = harness::stats(rc).median / double(n);
    }
    e.reset_ns = s.cpu_clock ? reset_cpu : reset_real;
    for (const Batch& b : reps) {
        e.real_ns.push_back(b.real / double(n) - reset_real);
        e.cpu_ns.push_back(b.cpu / double(n) - reset_cpu);
    }
    e.real = harness::stats(e.real_ns);
    e.cpu = harness::stats(e.cpu_ns);
    const harness::Stats& shown = s.cpu_clock ? e.cpu : e.real;
    if (!(shown.median > 0))
        throw Error(ErrorCode::Unsupported,
                    fmt::format("{}: the measured time per run is not positive ({:.1f} ns after taking off {:.1f} ns of state reset); "
                                "the clock cannot resolve this program's runs, try a larger --min-time",
                                e.engine, shown.median, e.reset_ns));
}

// The helpers' time in runs through a timed copy of the helper table, per run and per call:
// the median over a few batches of `runs` runs.
void time_helpers(EngineResult& e, const Target& t, uint64_t runs, unsigned batches, const RunFn& run) {
    std::vector<double> totals;
    std::map<int32_t, std::vector<double>> per_call;
    for (unsigned b = 0; b < batches; ++b) {
        harness::HelperTimes::reset();
        time_batch(runs, t.reset, &run);
        totals.push_back(harness::HelperTimes::total_ns() / double(runs));
        for (const auto& [id, entry] : harness::HelperTimes::take()) {
            HelperRow& row = e.helpers[id];
            const vm::Helper* h = t.helpers.find(id);
            row.name = h ? h->name : fmt::format("helper {}", id);
            row.calls_per_run = double(entry.calls) / double(runs);
            per_call[id].push_back(entry.ns / double(entry.calls));
        }
    }
    e.helper_ns = harness::stats(totals).median;
    for (auto& [id, row] : e.helpers) row.ns_per_call = harness::stats(per_call[id]).median;
}

// Runs, checks and measures one engine.
EngineResult bench_engine(const std::string& engine, const Target& t, const Settings& s, std::vector<std::string>& notes) {
    EngineResult e;
    e.engine = engine;
    vm::RunOptions ro;
    ro.budget = s.budget;
    ro.dispatch = s.dispatch;
    const vm::HelperTable timed = harness::HelperTimes::wrap(t.helpers);
    std::optional<vm::Interpreter> interp, interp_timed;
    std::optional<vm::Jit> jit, jit_timed;
    const bool checked = s.checked || !t.accepted;
    if (engine == "interp") {
        e.mode = s.dispatch == vm::Dispatch::Threaded ? "threaded" : "switch";
        auto a = vm::Interpreter::compile(t.prog, t.helpers);
        auto b = vm::Interpreter::compile(t.prog, timed);
        if (!a) throw a.error();
        if (!b) throw b.error();
        interp.emplace(std::move(a.value()));
        interp_timed.emplace(std::move(b.value()));
    } else {
        e.mode = checked ? "checked" : "unchecked";
        vm::JitOptions jo;
        jo.checked = checked;
        auto a = vm::Jit::compile(t.prog, t.helpers, jo);
        auto b = vm::Jit::compile(t.prog, timed, jo);
        if (!a || !b) {
            const Error& err = a ? b.error() : a.error();
            throw Error(ErrorCode::Unsupported, fmt::format("the JIT cannot compile '{}': {}", t.program, err.describe()));
        }
        jit.emplace(std::move(a.value()));
        jit_timed.emplace(std::move(b.value()));
    }
    const RunFn run = [&]() { return interp ? interp->run(*t.env, t.args, ro) : jit->run(*t.env, t.args, ro); };
    const RunFn run_timed = [&]() { return interp_timed ? interp_timed->run(*t.env, t.args, ro) : jit_timed->run(*t.env, t.args, ro); };
    // One run first: the same result as the reference run, the same instruction count (checked
    // code counts as the interpreter does; unchecked code does not count at all).
    if (t.reset) t.reset();
    harness::HelperTimes::reset();
    const vm::RunResult probe = run_timed();
    if (probe.trap) throw Error(ErrorCode::Unsupported, fmt::format("{}: the program traps: {}", engine, probe.trap->message));
    if (probe.r0 != t.r0)
        notes.push_back(fmt::format("{} returned {} where the reference run returned {}: its path depends on state that is not reset", engine,
                                    hex_r0(probe.r0), hex_r0(t.r0)));
    if ((engine == "interp" || checked) && probe.insns != t.insns)
        notes.push_back(fmt::format("{} ran {} instructions where the reference run ran {}", engine, probe.insns, t.insns));
    const bool calls_helpers = !harness::HelperTimes::take().empty();
    measure(e, t, s, run);
    if (calls_helpers) time_helpers(e, t, e.runs_per_rep, std::min(5u, s.repetitions), run_timed);
    return e;
}

// Counting runs of the interpreter, apportioned by the calibrated cost model.
harness::Profile profile(const Target& t, const Settings& s, const EngineResult& interp) {
    auto costs = harness::calibrate_costs(s.dispatch);
    if (!costs) throw costs.error();
    auto in = vm::Interpreter::compile(t.prog, t.helpers);
    if (!in) throw in.error();
    harness::CoverageReport report;
    harness::ProfilePrograms programs;
    vm::RunOptions base;
    base.budget = s.budget;
    vm::RunOptions ro = report.options(base);
    ro.counters = [&report, &programs](const vm::Program& p) {
        programs.try_emplace({p.file, p.name}, p);
        return &report.counters(p);
    };
    for (unsigned i = 0; i < s.profile_runs; ++i) {
        if (t.reset) t.reset();
        const vm::RunResult r = in->run(*t.env, t.args, ro);
        if (r.trap) throw Error(ErrorCode::Unsupported, "a counting run trapped: " + r.trap->message);
    }
    // Helpers are timed on the steady clock; against CPU time they count at the run's CPU/real ratio.
    const double ratio = s.cpu_clock && interp.real.median > 0 ? interp.cpu.median / interp.real.median : 1;
    std::map<int32_t, double> helper_ns;
    for (const auto& [id, h] : interp.helpers) helper_ns[id] = h.ns_per_call * ratio;
    return harness::build_profile(report, programs, s.profile_runs, *costs, s.cpu_clock ? interp.cpu.median : interp.real.median, helper_ns);
}

struct Outcome {
    Target target;
    std::vector<EngineResult> engines;
    std::optional<harness::Profile> prof;
    std::vector<std::string> notes;
};

void run_all(Outcome& o, const Settings& s) {
    if (s.interp) o.engines.push_back(bench_engine("interp", o.target, s, o.notes));
    if (s.jit) o.engines.push_back(bench_engine("jit", o.target, s, o.notes));
    if (s.profile) {
        const EngineResult* in = o.engines.front().engine == "interp" ? &o.engines.front() : nullptr;
        EngineResult only;
        if (!in) {   // --engine jit --profile: the interpreter is timed for the profile anyway
            only = bench_engine("interp", o.target, s, o.notes);
            in = &only;
            o.notes.push_back(fmt::format("the profile apportions the interpreter's {:.1f} ns/run", s.cpu_clock ? only.cpu.median : only.real.median));
        }
        o.prof = profile(o.target, s, *in);
    }
}

// ─────────────────────────── building the target ───────────────────────────

vm::HelperTable world_helpers(const vm::Program& prog) {
    vm::HelperTable t = harness::kernel_helpers();
    add_missing_helpers(prog, t);
    return t;
}

// The verifier model's verdict decides between unchecked and checked JIT code.
void judge(Target& t, const harness::Object& obj, const std::string& name, const harness::WorldOptions& wo) {
    auto v = verifier::scenario_verifier()(obj, name, wo);
    if (!v) {
        t.jit_reason = "the verifier model could not judge it: " + v.error().describe();
        return;
    }
    t.accepted = v->accepted;
    if (!v->accepted)
        t.jit_reason = fmt::format("the verifier model rejects '{}' at pc {}: {}; unchecked code is only for programs it accepts", name, v->pc,
                                   v->message);
}

// A program of an object with a packet or a context, run once through the world's own path.
// `reference` runs it there with the given options.
void world_target(Outcome& o, harness::World& w, const std::string& name,
                  const std::function<Result<harness::ProgramRun>(const vm::RunOptions&)>& reference, const Settings& s,
                  std::unique_ptr<WorldReset>& state) {
    Target& t = o.target;
    auto c = w.compiled(name);
    if (!c) throw c.error();
    t.prog = (*c)->program();
    t.helpers = world_helpers(t.prog);
    t.env = &w;
    state = std::make_unique<WorldReset>(w);
    vm::RunOptions ro;
    ro.budget = s.budget;
    auto run = reference(state->capturing(ro));
    if (!run) throw run.error();
    if (run->result.trap) throw Error(ErrorCode::Unsupported, fmt::format("'{}' traps: {}", name, run->result.trap->message));
    if (!state->captured()) throw Error(ErrorCode::Internal, "the world's run did not start the program");
    t.r0 = run->result.r0;
    t.insns = run->result.insns;
    t.helper_calls = run->helper_calls;
    state->learn();
    state->install();
    t.args = {state->ctx(), 0, 0, 0, 0};
    WorldReset* st = state.get();
    t.reset = [st] { (*st)(); };
    t.reset_what = state->what();
    t.not_reset = state->not_reset();
}

// A program of an object with input memory in r1/r2 (--mem, --mem-file).
void memory_target(Outcome& o, harness::World& w, const std::string& name, Bytes& mem, Bytes& saved, const Settings& s,
                   std::unique_ptr<WorldReset>& state) {
    Target& t = o.target;
    auto c = w.compiled(name);
    if (!c) throw c.error();
    t.prog = (*c)->program();
    t.helpers = world_helpers(t.prog);
    t.env = &w;
    w.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
    t.args = {reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0};
    saved = mem;
    state = std::make_unique<WorldReset>(w);
    vm::RunOptions ro;
    ro.budget = s.budget;
    auto rr = w.run_args(name, t.args, ro);
    if (!rr) throw rr.error();
    const vm::RunResult& r = *rr;
    if (r.trap) throw Error(ErrorCode::Unsupported, fmt::format("'{}' traps: {}", name, r.trap->message));
    t.r0 = r.r0;
    t.insns = r.insns;
    state->learn();
    WorldReset* st = state.get();
    t.reset = [st, &mem, &saved] {
        std::memcpy(mem.data(), saved.data(), mem.size());
        (*st)();
    };
    t.reset_what = state->what();
    t.reset_what.insert(t.reset_what.begin(), fmt::format("the input memory ({} bytes)", mem.size()));
    t.not_reset = state->not_reset();
    t.jit_reason = "the verifier model checks a program against its context, not against input memory in r1/r2";
}

std::string describe_input_memory(const po::variables_map& vm, std::size_t n) {
    const auto file = vm["mem-file"].as<std::string>();
    return fmt::format("{} bytes of input memory, (pointer, length) in r1/r2{}", n, file.empty() ? "" : " (--mem-file " + file + ")");
}

// ─────────────────────────────── output ────────────────────────────────────

std::string shown_path(const std::string& file) {
    std::error_code ec;
    const fs::path cwd = fs::current_path(ec);
    if (!ec && !cwd.empty()) {
        const std::string prefix = cwd.string() + "/";
        if (file.starts_with(prefix)) return file.substr(prefix.size());
    }
    return file;
}

std::string location(const std::string& file, uint32_t line) {
    return file.empty() ? "(no source line)" : fmt::format("{}:{}", shown_path(file), line);
}

std::string count_text(double v) {
    return std::fabs(v - std::round(v)) < 1e-9 ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v);
}

const harness::Stats& shown(const EngineResult& e, const Settings& s) { return s.cpu_clock ? e.cpu : e.real; }

// Helpers are timed by the steady clock: their share is of the real time per run.
double helper_share(const EngineResult& e) { return e.real.median > 0 ? std::min(1.0, e.helper_ns / e.real.median) : 0; }

void print_text(const Outcome& o, const Settings& s) {
    const Target& t = o.target;
    fmt::print("{}: {}{}\n", t.object, t.program, t.section.empty() ? "" : fmt::format(" (section {})", t.section));
    if (!t.world_note.empty()) fmt::print("{}\n", t.world_note);
    fmt::print("input: {}\n", t.input);
    fmt::print("result: r0 = {} ({}), {} instructions per run\n", hex_r0(t.r0), static_cast<int64_t>(t.r0), t.insns);
    if (!t.reset_what.empty()) {
        std::string all;
        for (const auto& w : t.reset_what) all += (all.empty() ? "" : ", ") + w;
        fmt::print("put back before every run: {}\n", all);
    }
    if (!t.not_reset.empty()) {
        std::string all;
        for (const auto& w : t.not_reset) all += (all.empty() ? "" : ", ") + w;
        fmt::print("not reset: {}\n", all);
    }
    for (const auto& e : o.engines)
        if (e.engine == "jit")
            fmt::print("jit: {}{}\n", e.mode, e.mode == "checked" ? ": " + (s.checked && t.accepted ? std::string("--checked") : t.jit_reason)
                                                                  : ": the verifier model accepts the program");
    for (const auto& n : o.notes) fmt::print("note: {}\n", n);
    fmt::print("\n{:<7} {:<10} {:>13} {:>27} {:>7} {:>13} {:>11} {:>8} {:>8}\n", "engine", "mode", "ns/run", "min..max", "MAD",
               s.cpu_clock ? "real ns/run" : "cpu ns/run", "insns/run", "ns/insn", "helpers");
    for (const auto& e : o.engines) {
        const harness::Stats& st = shown(e, s);
        const harness::Stats& other = s.cpu_clock ? e.real : e.cpu;
        fmt::print("{:<7} {:<10} {:>13.1f} {:>27} {:>6.1f}% {:>13.1f} {:>11} {:>8.3f} {:>7.1f}%\n", e.engine, e.mode, st.median,
                   fmt::format("{:.1f}..{:.1f}", st.min, st.max), st.median > 0 ? 100 * st.mad / st.median : 0, other.median, t.insns,
                   t.insns ? st.median / double(t.insns) : 0.0, 100 * helper_share(e));
    }
    if (o.engines.size() == 2 && shown(o.engines[1], s).median > 0)
        fmt::print("\nthe jit runs {:.2f}x as fast as the interpreter\n", shown(o.engines[0], s).median / shown(o.engines[1], s).median);
    std::string reps;
    for (const auto& e : o.engines) reps += fmt::format("{}{}: {} runs", reps.empty() ? "" : ", ", e.engine, e.runs_per_rep);
    double reset = 0;
    for (const auto& e : o.engines) reset = std::max(reset, e.reset_ns);
    fmt::print("{} ns/run: median of {} repetitions ({}; each at least {} s), {}{}\n", s.cpu_clock ? "thread CPU" : "real", s.repetitions, reps,
               s.min_time, "MAD: median absolute deviation",
               t.reset ? fmt::format("; putting the state back ({:.1f} ns/run) is timed apart and taken off", reset) : "");

    std::map<int32_t, std::string> helpers;   // id -> name
    for (const auto& e : o.engines)
        for (const auto& [id, h] : e.helpers) helpers[id] = h.name;
    if (!helpers.empty()) {
        fmt::print("\n{:<36}", "helpers (timed in a separate pass)");
        for (const auto& e : o.engines) fmt::print(" {:>16} {:>14}", e.engine + " calls/run", e.engine + " ns/call");
        fmt::print("\n");
        for (const auto& [id, name] : helpers) {
            fmt::print("{:<36}", name);
            for (const auto& e : o.engines) {
                auto it = e.helpers.find(id);
                if (it == e.helpers.end()) fmt::print(" {:>16} {:>14}", "-", "-");
                else fmt::print(" {:>16} {:>14.1f}", count_text(it->second.calls_per_run), it->second.ns_per_call);
            }
            fmt::print("\n");
        }
        std::string share;
        for (const auto& e : o.engines)
            share += fmt::format("{}{} {:.1f} ns/run ({:.1f}%)", share.empty() ? "" : ", ", e.engine, e.helper_ns, 100 * helper_share(e));
        fmt::print("time in helpers: {} (the clock's own {:.1f} ns per call taken off)\n", share, harness::HelperTimes::clock_overhead_ns());
    }

    if (!o.prof) return;
    const harness::Profile& p = *o.prof;
    const auto top = [&](std::size_t n) { return s.top == 0 ? n : std::min(n, s.top); };
    const double total = p.measured_ns > 0 ? p.measured_ns : 1;
    fmt::print("\nprofile: the interpreter ({}), {:.1f} ns/run apportioned over {} counted run{}: instruction counts from the "
               "coverage counters, times their class's cost (calibrated at start-up), scaled x{:.3f} to the measured time; "
               "helpers at their measured time\n",
               s.dispatch == vm::Dispatch::Threaded ? "threaded" : "switch", p.measured_ns, p.runs, p.runs == 1 ? "" : "s", p.scale);
    if (p.has_lines) {
        std::size_t w = std::string_view("source line (hottest first)").size();
        for (std::size_t i = 0; i < top(p.lines.size()); ++i) w = std::max(w, location(p.lines[i].file, p.lines[i].line).size());
        fmt::print("\n{:<{}} {:>10} {:>10} {:>13} {:>7}  {}\n", "source line (hottest first)", w, "count", "insns", "est. ns/run", "%", "source");
        for (std::size_t i = 0; i < top(p.lines.size()); ++i) {
            const auto& l = p.lines[i];
            fmt::print("{:<{}} {:>10} {:>10} {:>13.1f} {:>6.1f}%  {}\n", location(l.file, l.line), w, count_text(l.count), count_text(l.insns),
                       l.est_ns, 100 * l.est_ns / total, l.source);
        }
        if (top(p.lines.size()) < p.lines.size()) fmt::print("({} more lines; --top 0 shows all)\n", p.lines.size() - top(p.lines.size()));
    } else {
        fmt::print("\nno line_info (.BTF.ext) in this program: the profile is per instruction only\n");
    }
    fmt::print("run entry and exit: {:.1f} ns/run ({:.1f}%)\n", p.entry_ns, 100 * p.entry_ns / total);
    std::size_t w = std::string_view("source line").size();
    for (std::size_t i = 0; i < top(p.insns.size()); ++i)
        if (!p.insns[i].file.empty()) w = std::max(w, location(p.insns[i].file, p.insns[i].line).size());
    fmt::print("\n{:>10} {:>10} {:>10} {:>13} {:>7}  {:<{}}  {}\n", "pc", "count", "taken", "est. ns/run", "%", "source line", w,
               "instruction (hottest first)");
    for (std::size_t i = 0; i < top(p.insns.size()); ++i) {
        const auto& r = p.insns[i];
        const std::string pc = r.program == t.prog.name ? fmt::format("{}", r.pc) : fmt::format("{}+{}", r.program, r.pc);
        fmt::print("{:>10} {:>10} {:>10} {:>13.1f} {:>6.1f}%  {:<{}}  {}\n", pc, count_text(r.count), r.taken > 0 ? count_text(r.taken) : "",
                   r.est_ns, 100 * r.est_ns / total, r.file.empty() ? "-" : location(r.file, r.line), w, r.text);
    }
    if (top(p.insns.size()) < p.insns.size())
        fmt::print("({} more instructions; --top 0 shows all)\n", p.insns.size() - top(p.insns.size()));
}

std::string read_first(const std::string& path) {
    std::ifstream f(path);
    std::string s;
    std::getline(f, s);
    return s;
}

// The machine, as Google Benchmark's JSON context describes it.
nlohmann::ordered_json machine_context() {
    nlohmann::ordered_json c;
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
    std::string date = buf;
    if (date.size() > 2) date.insert(date.size() - 2, ":");   // +0000 -> +00:00, as Google Benchmark writes it
    c["date"] = date;
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    c["host_name"] = host;
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/self/exe", ec);
    c["executable"] = ec ? std::string("bpfsim") : exe.string();
    c["num_cpus"] = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
    double mhz = 0;
    {
        std::ifstream f("/proc/cpuinfo");
        std::string line;
        while (std::getline(f, line))
            if (line.starts_with("cpu MHz")) {
                mhz = std::atof(line.substr(line.find(':') + 1).c_str());
                break;
            }
        if (mhz == 0) {
            const std::string khz = read_first("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
            if (!khz.empty()) mhz = std::atof(khz.c_str()) / 1000;
        }
    }
    c["mhz_per_cpu"] = static_cast<int64_t>(std::llround(mhz));
    const std::string governor = read_first("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    c["cpu_scaling_enabled"] = !governor.empty() && governor != "performance";
    nlohmann::ordered_json caches = nlohmann::ordered_json::array();
    for (int i = 0;; ++i) {
        const std::string dir = fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/", i);
        if (!fs::exists(dir, ec)) break;
        const std::string size = read_first(dir + "size");
        int64_t bytes = std::atoll(size.c_str());
        if (!size.empty() && (size.back() == 'K' || size.back() == 'k')) bytes *= 1024;
        if (!size.empty() && size.back() == 'M') bytes *= 1024 * 1024;
        // shared_cpu_list: "0", "0-1", "0,2": the CPUs that share it.
        int sharing = 0;
        std::stringstream list(read_first(dir + "shared_cpu_list"));
        std::string part;
        while (std::getline(list, part, ',')) {
            const auto dash = part.find('-');
            sharing += dash == std::string::npos ? 1 : std::atoi(part.substr(dash + 1).c_str()) - std::atoi(part.c_str()) + 1;
        }
        caches.push_back({{"type", read_first(dir + "type")}, {"level", std::atoi(read_first(dir + "level").c_str())}, {"size", bytes},
                          {"num_sharing", std::max(1, sharing)}});
    }
    c["caches"] = caches;
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) == 3) c["load_avg"] = {load[0], load[1], load[2]};
#ifdef NDEBUG
    c["library_build_type"] = "release";
#else
    c["library_build_type"] = "debug";
#endif
    return c;
}

nlohmann::ordered_json to_json(const Outcome& o, const Settings& s) {
    const Target& t = o.target;
    nlohmann::ordered_json j;
    j["context"] = machine_context();
    auto& list = j["benchmarks"] = nlohmann::ordered_json::array();
    for (std::size_t f = 0; f < o.engines.size(); ++f) {
        const EngineResult& e = o.engines[f];
        const std::string name = t.family + "/" + e.engine;
        const double insns = double(t.insns);
        const double share = helper_share(e);
        auto entry = [&](const std::string& n, const char* type) {
            nlohmann::ordered_json b;
            b["name"] = n;
            b["family_index"] = f;
            b["per_family_instance_index"] = 0;
            b["run_name"] = name;
            b["run_type"] = type;
            b["repetitions"] = s.repetitions;
            return b;
        };
        std::vector<double> per_insn;
        for (std::size_t r = 0; r < e.real_ns.size(); ++r) {
            const double ns = s.cpu_clock ? e.cpu_ns[r] : e.real_ns[r];
            per_insn.push_back(insns > 0 ? ns / insns : 0);
            nlohmann::ordered_json b = entry(name, "iteration");
            b["repetition_index"] = r;
            b["threads"] = 1;
            b["iterations"] = e.runs_per_rep;
            b["real_time"] = e.real_ns[r];
            b["cpu_time"] = e.cpu_ns[r];
            b["time_unit"] = "ns";
            b["insns"] = insns;
            b["ns_per_insn"] = per_insn.back();
            b["helper_share"] = share;
            list.push_back(std::move(b));
        }
        const harness::Stats pi = harness::stats(per_insn);
        auto aggregate = [&](const char* agg, const char* unit, double real, double cpu, double a_insns, double a_per_insn, double a_share) {
            nlohmann::ordered_json b = entry(name + "_" + agg, "aggregate");
            b["threads"] = 1;
            b["aggregate_name"] = agg;
            b["aggregate_unit"] = unit;
            b["iterations"] = e.real_ns.size();
            b["real_time"] = real;
            b["cpu_time"] = cpu;
            b["time_unit"] = "ns";
            b["insns"] = a_insns;
            b["ns_per_insn"] = a_per_insn;
            b["helper_share"] = a_share;
            list.push_back(std::move(b));
        };
        aggregate("mean", "time", e.real.mean, e.cpu.mean, insns, pi.mean, share);
        aggregate("median", "time", e.real.median, e.cpu.median, insns, pi.median, share);
        aggregate("stddev", "time", e.real.stddev, e.cpu.stddev, 0, pi.stddev, 0);
        aggregate("cv", "percentage", e.real.mean > 0 ? e.real.stddev / e.real.mean : 0, e.cpu.mean > 0 ? e.cpu.stddev / e.cpu.mean : 0, 0,
                  pi.mean > 0 ? pi.stddev / pi.mean : 0, 0);
    }
    // What Google Benchmark has no place for: the program, its input, the helpers, the profile.
    nlohmann::ordered_json b;
    b["object"] = t.object;
    b["program"] = t.program;
    b["section"] = t.section;
    b["input"] = t.input;
    if (!t.world_note.empty()) b["scenario"] = t.world_note;
    b["r0"] = t.r0;
    b["insns_per_run"] = t.insns;
    b["clock"] = s.cpu_clock ? "cpu" : "real";
    b["reset"] = t.reset_what;
    b["not_reset"] = t.not_reset;
    b["notes"] = o.notes;
    b["engines"] = nlohmann::ordered_json::array();
    for (const auto& e : o.engines) {
        const harness::Stats& st = shown(e, s);
        nlohmann::ordered_json x{{"engine", e.engine}, {"mode", e.mode}, {"ns_per_run", st.median}, {"min", st.min}, {"max", st.max},
                                 {"mad", st.mad}, {"stddev", st.stddev}, {"runs_per_repetition", e.runs_per_rep}, {"reset_ns", e.reset_ns},
                                 {"helper_ns_per_run", e.helper_ns}, {"helper_share", helper_share(e)}};
        if (e.engine == "jit" && e.mode == "checked") x["checked_because"] = s.checked && t.accepted ? "--checked" : t.jit_reason;
        x["helpers"] = nlohmann::ordered_json::array();
        for (const auto& [id, h] : e.helpers)
            x["helpers"].push_back({{"id", id}, {"name", h.name}, {"calls_per_run", h.calls_per_run}, {"ns_per_call", h.ns_per_call}});
        b["engines"].push_back(std::move(x));
    }
    if (o.prof) {
        const harness::Profile& p = *o.prof;
        nlohmann::ordered_json pj{{"runs", p.runs}, {"measured_ns", p.measured_ns}, {"model_ns", p.model_ns}, {"scale", p.scale},
                                  {"helper_ns", p.helper_ns}, {"entry_ns", p.entry_ns}};
        pj["lines"] = nlohmann::ordered_json::array();
        for (const auto& l : p.lines)
            pj["lines"].push_back({{"file", l.file}, {"line", l.line}, {"count", l.count}, {"insns", l.insns}, {"est_ns", l.est_ns}, {"source", l.source}});
        pj["insns"] = nlohmann::ordered_json::array();
        for (const auto& r : p.insns)
            pj["insns"].push_back({{"program", r.program}, {"pc", r.pc}, {"count", r.count}, {"taken", r.taken}, {"est_ns", r.est_ns},
                                   {"helper_ns", r.helper_ns}, {"file", r.file}, {"line", r.line}, {"insn", r.text}});
        b["profile"] = std::move(pj);
    }
    j["bpfsim"] = std::move(b);
    return j;
}

const char* kEpilog = R"(
Each engine runs the program once (checked against the reference run through the world's own
path), is warmed up with batches of runs growing until one lasts --min-time, then times
--repetitions batches of that many runs; ns/run is their median, with min..max and the median
absolute deviation. insns/run is the interpreter's count (the JIT follows the same path).
Helpers are timed in a separate pass (each wrapped in a steady-clock timer).

Every run starts from the same state. Put back before each run: the context and packet as the
world built them (packet bytes, offsets moved by adjust_head/tail, the context), the input
memory (--mem), map entries and array bytes the first run changed, ring buffer and perf
output (consumed), trace lines, tunnel metadata. Not reset: the PRNG (bpf_get_prandom_u32
returns new numbers), queues, stacks and bloom filters, LRU order. Putting the state back is
timed alone and taken off.

The JIT runs unchecked (no bounds checks, no budget) only when the verifier model accepts the
program for its context; otherwise, and for input memory in r1/r2, checked.

--profile counts the interpreter's instructions (coverage counters) over --profile-runs runs
and apportions its measured ns/run over them by a cost per instruction class calibrated at
start-up; helpers get their measured time. Source lines come from .BTF.ext line_info.
)";

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object (or a .data, assembly or raw program)")
        ("prog,p", po::value<std::string>()->default_value(""), "program (function or section); with --scenario: the first step that runs it")
        ("scenario", po::value<std::string>()->default_value(""), "benchmark a step of this scenario, in the world the steps before it leave")
        ("step", po::value<std::string>()->default_value(""), "--scenario: the step (by name) to benchmark (default: the first that runs a program)")
        ("include,I", po::value<std::vector<std::string>>()->default_value({}, "")->composing(), "--scenario: directories to find its object in")
        ("format", po::value<std::string>()->default_value("auto"), "input format: auto|elf|data|asm|raw")
        ("engine", po::value<std::string>()->default_value("both"), "interp, jit, or both (side by side)")
        ("dispatch", po::value<std::string>()->default_value("threaded"), "interpreter dispatch: threaded|switch")
        ("checked", "run the JIT checked even when the verifier model accepts the program")
        ("budget", po::value<uint64_t>()->default_value(1'000'000'000), "instruction budget per run (0: none)")
        ("repetitions", po::value<unsigned>()->default_value(10), "timed repetitions")
        ("min-time", po::value<double>()->default_value(0.05, "0.05"), "seconds each repetition lasts at least")
        ("time", po::value<std::string>()->default_value("real"), "the clock of ns/run, spread and profile: real (steady clock) or cpu (thread CPU time)")
        ("profile", "per source line and per instruction profile of the interpreter")
        ("profile-runs", po::value<unsigned>()->default_value(1), "--profile: counting runs")
        ("top", po::value<std::size_t>()->default_value(15), "--profile: rows of each table (0: all)")
        ("json", "Google Benchmark's JSON (tools/compare.py reads it), with a \"bpfsim\" section");
    cli::add_input_options(d);
    d.add_options()("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("input", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim bench OBJ --prog P [--packet HEX|--ctx ..|--mem-file FILE] [--engine interp|jit] [--profile] [--json]\n"
                     "       bpfsim bench --scenario S.yaml [--step NAME] [-I DIR] [OBJ] ...\n\n"
                  << d << kEpilog;
        return 0;
    }
    po::notify(vm);

    Settings s;
    const auto engine = vm["engine"].as<std::string>();
    if (engine == "interp") s.jit = false;
    else if (engine == "jit") s.interp = false;
    else if (engine != "both") throw Error(ErrorCode::Usage, fmt::format("--engine must be interp, jit or both, not '{}'", engine));
    const auto dispatch = vm["dispatch"].as<std::string>();
    if (dispatch == "switch") s.dispatch = vm::Dispatch::Switch;
    else if (dispatch != "threaded") throw Error(ErrorCode::Usage, fmt::format("--dispatch must be threaded or switch, not '{}'", dispatch));
    s.budget = vm["budget"].as<uint64_t>();
    s.repetitions = vm["repetitions"].as<unsigned>();
    if (s.repetitions == 0 || s.repetitions > 1000) throw Error(ErrorCode::Usage, fmt::format("--repetitions must be 1 to 1000, not {}", s.repetitions));
    s.min_time = vm["min-time"].as<double>();
    if (!(s.min_time > 0) || s.min_time > 60) throw Error(ErrorCode::Usage, fmt::format("--min-time must be above 0 and at most 60 seconds, not {}", s.min_time));
    const auto clock = vm["time"].as<std::string>();
    if (clock == "cpu") s.cpu_clock = true;
    else if (clock != "real") throw Error(ErrorCode::Usage, fmt::format("--time must be real or cpu, not '{}'", clock));
    s.checked = vm.count("checked") > 0;
    s.profile = vm.count("profile") > 0;
    s.profile_runs = vm["profile-runs"].as<unsigned>();
    if (s.profile_runs == 0) throw Error(ErrorCode::Usage, "--profile-runs must be at least 1");
    s.top = vm["top"].as<std::size_t>();
    s.json = vm.count("json") > 0;

    const std::string scenario = vm["scenario"].as<std::string>();
    const std::string input = vm.count("input") ? vm["input"].as<std::string>() : "";
    if (input.empty() && scenario.empty()) throw Error(ErrorCode::Usage, "bench: give an object file (or --scenario)");
    if (!vm["step"].as<std::string>().empty() && scenario.empty()) throw Error(ErrorCode::Usage, "--step needs --scenario");
    const std::string named = vm["prog"].as<std::string>();

    Outcome o;
    Target& t = o.target;
    // Everything the runs touch lives here until the output is written.
    std::unique_ptr<harness::World> world;
    std::unique_ptr<WorldReset> state;
    Bytes mem, saved;
    std::optional<vm::Env> bare;

    if (!scenario.empty()) {
        // The scenario gives the world and the step its input.
        for (const char* opt : {"packet", "ctx", "mem", "mem-file", "arg", "field", "map-init", "kconfig", "task", "btf", "seed", "ncpus"})
            if (!vm[opt].defaulted()) throw Error(ErrorCode::Usage, fmt::format("--{} does not go with --scenario: the scenario sets up the world and the step's input", opt));
        std::vector<fs::path> search;
        for (const auto& dir : vm["include"].as<std::vector<std::string>>()) search.emplace_back(dir);
        auto sc = harness::load_scenario(scenario, search);
        if (!sc) throw sc.error();
        if (!input.empty()) sc->object = input;
        auto obj = harness::Object::open(sc->object);
        if (!obj) throw obj.error();
        // The step: by name, else the first that runs --prog, else the first that runs anything.
        const std::string step_name = vm["step"].as<std::string>();
        const harness::ScenarioStep* chosen = nullptr;
        std::string names;
        for (const auto& st : sc->steps) {
            if (st.run.empty()) continue;
            names += (names.empty() ? "'" : ", '") + st.name + "'";
            const harness::ProgramDef* def = obj->find_program(st.run);
            const bool runs_named = named.empty() || st.run == named || (def && def->name == named);
            if (!chosen && (step_name.empty() ? runs_named : st.name == step_name)) chosen = &st;
        }
        Location where;
        where.file = scenario;
        if (!chosen && !step_name.empty()) throw Error(ErrorCode::NotFound, fmt::format("no step '{}'; the steps that run programs: {}", step_name, names), where);
        if (!chosen && !named.empty()) throw Error(ErrorCode::NotFound, fmt::format("no step runs program '{}'", named), where);
        if (!chosen) throw Error(ErrorCode::NotFound, "no step runs a program", where);
        if (!named.empty() && !step_name.empty()) {
            const harness::ProgramDef* def = obj->find_program(chosen->run);
            if (chosen->run != named && (!def || def->name != named))
                throw Error(ErrorCode::Usage, fmt::format("step '{}' runs '{}', not '{}'", step_name, chosen->run, named));
        }
        bool reached = false;
        auto hook = [&](harness::World& w, const harness::ScenarioStep& st, const Bytes& in) {
            if (&st != chosen) return true;
            reached = true;
            const harness::ProgramDef* def = w.object().find_program(st.run);
            if (!def) throw Error(ErrorCode::NotFound, fmt::format("no program '{}'", st.run));
            t.object = fs::path(sc->object).filename().string();
            t.program = def->name;
            t.section = def->section;
            t.family = t.object + "/" + t.program;
            t.world_note = fmt::format("scenario: {}, step '{}' (line {}), in the world the steps before it leave{}", scenario, st.name, st.line,
                                       sc->btf.empty() ? "" : ", kernel BTF " + sc->btf.front().string());
            const bool packet = harness::ctx_kind(def->type) == harness::CtxKind::XdpMd || harness::ctx_kind(def->type) == harness::CtxKind::SkBuff;
            t.input = packet ? fmt::format("the step's packet ({} bytes)", in.size()) : fmt::format("the step's context ({} bytes)", in.size());
            const std::string name = def->name;
            world_target(o, w, name, [&](const vm::RunOptions& ro) { return packet ? w.run_packet(name, in, ro) : w.run_ctx(name, in, ro); }, s,
                         state);
            judge(t, w.object(), name, w.options());
            run_all(o, s);
            state->remove();
            return false;
        };
        const harness::ScenarioOutcome out = harness::run_scenario(*sc, 0, {}, nullptr, hook);
        if (out.error) throw *out.error;
        if (!reached)
            throw Error(ErrorCode::Unsupported, fmt::format("step '{}' does not run: the scenario expects the verifier to reject it", chosen->name), where);
    } else if (cli::is_elf(input) || vm["format"].as<std::string>() == "elf") {
        auto obj = harness::Object::open(input);
        if (!obj) throw obj.error();
        const std::string name = cli::program_name(*obj, named, input);
        const harness::ProgramDef* def = obj->find_program(name);
        if (!def) throw obj->link(name).error();
        t.object = fs::path(input).filename().string();
        t.program = def->name;
        t.section = def->section;
        t.family = t.object + "/" + t.program;
        harness::WorldOptions wo = cli::world_options(vm);
        auto w = harness::World::create(*obj, wo);
        if (!w) throw w.error();
        world = std::move(w.value());
        cli::prepare_world(*world, vm);
        const harness::CtxKind kind = harness::ctx_kind(def->type);
        const bool packet_type = kind == harness::CtxKind::XdpMd || kind == harness::CtxKind::SkBuff;
        mem = cli::input_memory(vm);
        if (!mem.empty()) {
            if (packet_type) throw Error(ErrorCode::Usage, fmt::format("program '{}' takes a packet (--packet), not --mem", def->name));
            t.input = describe_input_memory(vm, mem.size());
            memory_target(o, *world, def->name, mem, saved, s, state);
        } else if (packet_type) {
            const Bytes packet = cli::packet_input(vm);
            if (packet.empty())
                throw Error(ErrorCode::Usage, fmt::format("program '{}' ({}) needs --packet HEX|FILE|pcap:FILE", def->name, harness::to_string(def->type)));
            t.input = fmt::format("a packet of {} bytes", packet.size());
            world_target(o, *world, def->name, [&](const vm::RunOptions& ro) { return world->run_packet(def->name, packet, ro); }, s, state);
            judge(t, *obj, def->name, world->options());
        } else {
            auto ctx = harness::build_context(def->type, def->attach, cli::context_spec(vm), world->options(),
                                              world->has_kernel() ? &world->kernel() : nullptr);
            if (!ctx) throw ctx.error();
            t.input = fmt::format("a {} context of {} bytes", harness::to_string(def->type), ctx->size());
            world_target(o, *world, def->name, [&](const vm::RunOptions& ro) { return world->run_ctx(def->name, *ctx, ro); }, s, state);
            judge(t, *obj, def->name, world->options());
        }
        run_all(o, s);
        state->remove();
    } else {
        // A bare program (.data, assembly, raw): the conformance helpers, input memory in r1/r2.
        t.prog = cli::load_program(input, named, vm["format"].as<std::string>());
        t.object = fs::path(input).filename().string();
        t.program = t.prog.name;
        t.family = t.object + "/" + t.program;
        t.helpers = vm::conformance_helpers();
        mem = cli::input_memory(vm);
        saved = mem;
        bare.emplace();
        if (!mem.empty()) bare->mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        t.env = &*bare;
        t.args = {mem.empty() ? 0 : reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0};
        t.input = mem.empty() ? "no input memory" : describe_input_memory(vm, mem.size());
        if (!mem.empty()) {
            t.reset = [&] { std::memcpy(mem.data(), saved.data(), mem.size()); };
            t.reset_what = {fmt::format("the input memory ({} bytes)", mem.size())};
        }
        t.jit_reason = "the verifier model judges object programs only";
        auto in = vm::Interpreter::compile(t.prog, t.helpers);
        if (!in) throw in.error();
        vm::RunOptions ro;
        ro.budget = s.budget;
        const vm::RunResult r = in->run(*t.env, t.args, ro);
        if (r.trap) throw Error(ErrorCode::Unsupported, fmt::format("'{}' traps: {}", t.program, r.trap->message));
        t.r0 = r.r0;
        t.insns = r.insns;
        run_all(o, s);
    }

    if (s.json) std::cout << to_json(o, s).dump(2) << "\n";
    else print_text(o, s);
    return 0;
}

}  // namespace bpfsim
