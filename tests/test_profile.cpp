// harness/profile.hpp: statistics over repetitions, instruction cost classes, the calibrated
// cost table, timed helpers, and profiles whose line counts are the coverage report's (lcov DA)
// and whose estimates add up to the measured time.
#include "harness/coverage.hpp"
#include "harness/harness.hpp"
#include "harness/profile.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;

// DA records (line -> count) of one lcov tracefile's records, by source file.
std::map<std::string, std::map<uint32_t, uint64_t>> lcov_lines(const std::string& text) {
    std::map<std::string, std::map<uint32_t, uint64_t>> out;
    std::string file;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        if (l.starts_with("SF:")) file = l.substr(3);
        if (!l.starts_with("DA:")) continue;
        const auto comma = l.find(',');
        out[file][static_cast<uint32_t>(std::stoul(l.substr(3, comma - 3)))] = std::stoull(l.substr(comma + 1));
    }
    return out;
}

vm::Program program_of(const std::string& asm_text) {
    vm::Program p;
    p.name = "t";
    p.file = "t.s";
    p.insns = vm::assemble(asm_text).value();
    return p;
}

// Unit costs: every instruction 1 ns, entering the interpreter nothing.
CostTable unit_costs() {
    CostTable c;
    c.ns.fill(1.0);
    return c;
}
}  // namespace

TEST_CASE("profile: statistics of repetitions", "[profile]") {
    const Stats s = stats({5, 1, 3, 2, 100});
    CHECK(s.n == 5);
    CHECK(s.median == 3);
    CHECK(s.min == 1);
    CHECK(s.max == 100);
    CHECK(s.mean == Approx(22.2));
    CHECK(s.mad == 2);   // deviations 2, 2, 0, 1, 97
    CHECK(s.stddev == Approx(43.5167).epsilon(1e-4));   // sample standard deviation: sqrt(7574.8 / 4)
    CHECK(stats({4, 2}).median == 3);
    CHECK(stats({}).n == 0);
}

TEST_CASE("profile: cost classes", "[profile]") {
    const auto cls = [](const char* text) {
        const auto p = program_of(text);
        const auto d = vm::decode(p.insns).value();
        return cost_class(p.insns[0], d.ops[0]);
    };
    CHECK(cls("ldxdw %r1, [%r10-8]\nexit") == CostClass::LoadStack);
    CHECK(cls("ldxb %r1, [%r2+3]\nexit") == CostClass::Load);
    CHECK(cls("stxw [%r10-4], %r1\nexit") == CostClass::StoreStack);
    CHECK(cls("stb [%r1+0], 7\nexit") == CostClass::Store);
    CHECK(cls("mul32 %r1, 3\nexit") == CostClass::Mul);
    CHECK(cls("mod %r1, %r2\nexit") == CostClass::Div);
    CHECK(cls("add %r1, %r2\nexit") == CostClass::Alu);
    CHECK(cls("be16 %r1\nexit") == CostClass::Alu);
    CHECK(cls("jeq %r1, 0, +0\nexit") == CostClass::JumpTaken);
    CHECK(cls("ja +0\nexit") == CostClass::Ja);
    CHECK(cls("call 1\nexit") == CostClass::CallHelper);
    CHECK(cls("lddw %r1, 0x100000000\nexit") == CostClass::Lddw);
    CHECK(cls("lock add [%r10-8], %r1\nexit") == CostClass::Atomic);
    CHECK(std::string(to_string(CostClass::JumpFallthrough)) == "jump-fallthrough");
}

TEST_CASE("profile: the calibrated costs are positive", "[profile]") {
    for (auto d : {vm::Dispatch::Threaded, vm::Dispatch::Switch}) {
        const CostTable t = calibrate_costs(d).value();
        CHECK(t.dispatch == d);
        for (std::size_t i = 0; i < kCostClasses; ++i) {
            INFO(to_string(static_cast<CostClass>(i)));
            CHECK(t.ns[i] > 0);
            CHECK(t.ns[i] < 1000);   // a loop of these runs in microseconds, not milliseconds
        }
        CHECK(t.entry_ns >= 0);
    }
}

TEST_CASE("profile: timed helpers count calls and time", "[profile]") {
    vm::HelperTable table;
    table.add({7, "spin", {}, [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env&) -> uint64_t {
                   const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
                   while (std::chrono::steady_clock::now() < until) {
                   }
                   return 5;
               }});
    const vm::HelperTable timed = HelperTimes::wrap(table);
    REQUIRE(timed.find(7));
    CHECK(timed.find(7)->fn != table.find(7)->fn);
    CHECK(timed.find(7)->name == "spin");
    auto in = vm::Interpreter::compile(program_of("call 7\ncall 7\ncall 7\nexit"), timed).value();
    vm::Env env;
    HelperTimes::reset();
    const vm::RunResult r = in.run(env);
    CHECK(r.r0 == 5);   // the helper's result passes through
    const auto t = HelperTimes::take();
    REQUIRE(t.count(7));
    CHECK(t.at(7).calls == 3);
    CHECK(t.at(7).ns >= 3 * 15'000.0);   // 20 us each, less the clock's own cost
    CHECK(HelperTimes::total_ns() == Approx(t.at(7).ns));
    HelperTimes::reset();
    CHECK(HelperTimes::take().empty());
}

TEST_CASE("profile: the parser kernel's line counts are the coverage report's", "[profile]") {
    auto obj = Object::open(kCorpus / "bench_kernels.o").value();
    auto lp = obj.link("parser").value();
    REQUIRE_FALSE(lp.prog.lines.empty());
    auto in = vm::Interpreter::compile(lp.prog, vm::HelperTable{}).value();
    // 64 IPv4/TCP frames of 128 bytes, every other one behind a VLAN tag.
    std::vector<uint8_t> mem(64 * 128, 0);
    for (std::size_t n = 0; n < 64; ++n) {
        uint8_t* p = mem.data() + n * 128;
        std::size_t off = 12;
        if (n % 2) {
            p[off] = 0x81;
            off += 4;
        }
        p[off] = 0x08;
        p[off + 2] = 0x45;
        p[off + 8] = 0x40;
        p[off + 11] = 6;
    }
    vm::Env env;
    env.mem.add(mem.data(), mem.size(), vm::kRead, vm::RegionKind::Input, "mem");
    CoverageReport report;
    ProfilePrograms programs;
    vm::RunOptions ro = report.options();
    ro.counters = [&](const vm::Program& p) {
        programs.try_emplace({p.file, p.name}, p);
        return &report.counters(p);
    };
    uint64_t insns = 0;
    for (int i = 0; i < 2; ++i) insns += in.run(env, {reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0}, ro).insns;
    REQUIRE(programs.size() == 1);

    const double measured = 1000.0 * double(insns / 2);
    const Profile p = build_profile(report, programs, 2, unit_costs(), measured, {});
    CHECK(p.runs == 2);
    CHECK(p.has_lines);
    CHECK(p.scale == Approx(1000.0));   // unit costs, no entry cost: measured / instructions per run
    CHECK(p.model_ns == Approx(double(insns / 2)));
    // Every line's count is lcov's DA (over both runs), its insns the sum of its instructions.
    const auto da = lcov_lines(report.lcov());
    double est = p.entry_ns, sum_insns = 0;
    for (const auto& l : p.lines) {
        est += l.est_ns;
        sum_insns += l.insns;
        if (l.file.empty()) continue;
        INFO(l.file << ":" << l.line);
        REQUIRE(da.count(l.file));
        REQUIRE(da.at(l.file).count(l.line));
        CHECK(l.count * 2 == double(da.at(l.file).at(l.line)));
        CHECK(l.est_ns == Approx(1000.0 * l.insns));
    }
    CHECK(est == Approx(measured));
    CHECK(sum_insns == Approx(double(insns) / 2));
    // Hottest first, lines and instructions.
    for (std::size_t i = 1; i < p.lines.size(); ++i) CHECK(p.lines[i - 1].est_ns >= p.lines[i].est_ns);
    for (std::size_t i = 1; i < p.insns.size(); ++i) CHECK(p.insns[i - 1].est_ns >= p.insns[i].est_ns);
    // Conditional jumps carry their taken counts; instructions their disassembly.
    const auto jump = std::find_if(p.insns.begin(), p.insns.end(), [](const ProfileInsn& r) { return r.text.starts_with("if "); });
    REQUIRE(jump != p.insns.end());
    CHECK(jump->taken * 2 == double(report.programs().begin()->second.taken(jump->pc)));
    CHECK(jump->count * 2 == double(report.programs().begin()->second.hits(jump->pc)));
}

TEST_CASE("profile: helpers get their measured time, the instructions share the rest", "[profile]") {
    auto prog = program_of("mov %r1, 1\ncall 3\ncall 3\nmov %r0, 0\nexit");
    vm::HelperTable table;
    table.add({3, "three", {}, [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env&) -> uint64_t { return 0; }});
    auto in = vm::Interpreter::compile(prog, table).value();
    CoverageReport report;
    ProfilePrograms programs{{{prog.file, prog.name}, prog}};
    vm::Env env;
    in.run(env, {}, report.options());
    CostTable costs = unit_costs();
    costs.entry_ns = 5;
    // 5 instructions at 1 ns, entry 5 ns, two calls at 100 ns: predicted 210; measured 410.
    const Profile p = build_profile(report, programs, 1, costs, 410, {{3, 100.0}});
    CHECK(p.model_ns == Approx(210));
    CHECK(p.helper_ns == Approx(200));
    CHECK(p.scale == Approx(21.0));   // (410 - 200) / (5 + 5)
    CHECK(p.entry_ns == Approx(105));
    REQUIRE(p.insns.size() == 5);
    CHECK(p.insns[0].est_ns == Approx(121));   // a call: 21 scaled + 100 of helper
    CHECK(p.insns[0].helper_ns == Approx(100));
    CHECK(p.insns[1].est_ns == Approx(121));
    CHECK(p.insns[2].est_ns == Approx(21));
    CHECK(p.insns[0].text.starts_with("call "));
    CHECK_FALSE(p.has_lines);
    REQUIRE(p.lines.size() == 1);   // everything under "no source line"
    CHECK(p.lines[0].file.empty());
    CHECK(p.lines[0].insns == 5);
    // Measured below the helpers' own time: the instructions get nothing, never less.
    const Profile q = build_profile(report, programs, 1, costs, 150, {{3, 100.0}});
    CHECK(q.scale == 0);
    CHECK(q.insns[0].est_ns == Approx(100));
}
