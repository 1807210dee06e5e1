// `bpfsim test PATHS...`: runs scenarios (YAML) and reports one case per step × scenario ×
// kernel BTF, as lines, TAP, JUnit XML or JSON; in parallel, sharded, and merged from shards.
#include "cli/test_report.hpp"
#include "harness/coverage.hpp"
#include "harness/annotations.hpp"
#include "harness/scenario.hpp"
#include "verifier/scenario_verifier.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

namespace bpfsim {
namespace po = boost::program_options;
namespace fs = std::filesystem;
using testrun::CaseResult;
using testrun::Status;

namespace {

struct ScenarioFile {
    fs::path path;
    std::string shown;                       // relative to the directory given, or the file name
    std::optional<harness::Scenario> scenario;
    std::optional<Error> error;              // when it could not be loaded
    std::vector<std::size_t> run_steps;      // indexes of the steps that run a program: the cases
};

// One scenario file against one of its kernel BTFs (or none): run as a whole, by one thread.
struct Unit {
    const ScenarioFile* file = nullptr;
    std::size_t btf = 0;
    std::vector<std::size_t> cases;          // positions in file->run_steps selected by --filter
    std::size_t number = 0;                  // position among the units of the whole run
};

std::string btf_shown(const ScenarioFile& f, std::size_t b) {
    return f.scenario && !f.scenario->btf.empty() ? f.scenario->btf.at(b).filename().string() : "";
}

std::string case_step(const ScenarioFile& f, std::size_t i) {
    if (!f.scenario) return "(load)";
    if (f.run_steps.empty()) return "(no steps)";
    return f.scenario->steps.at(f.run_steps.at(i)).name;
}

// The step's own time when StepOutcome records one; otherwise an equal share of the run's.
template <class S>
uint64_t step_ns(const S& so, uint64_t share) {
    if constexpr (requires { so.duration_ns; }) return static_cast<uint64_t>(so.duration_ns);
    else return share;
}

std::vector<CaseResult> run_unit(const Unit& u, const vm::RunOptions& ro) {
    const ScenarioFile& f = *u.file;
    std::vector<CaseResult> all;
    const std::size_t ncases = f.scenario && !f.run_steps.empty() ? f.run_steps.size() : 1;
    for (std::size_t i = 0; i < ncases; ++i) {
        CaseResult c;
        c.file = testrun::valid_utf8(f.shown);
        c.step = testrun::valid_utf8(case_step(f, i));
        c.btf = testrun::valid_utf8(btf_shown(f, u.btf));
        c.unit = u.number;
        c.index = i;
        all.push_back(std::move(c));
    }
    if (!f.scenario) {
        all[0].status = Status::Error;
        all[0].failures.push_back(testrun::valid_utf8("error: " + f.error->describe()));
    } else if (f.run_steps.empty()) {
        all[0].status = Status::Error;
        all[0].failures.push_back("error: the scenario has no step that runs a program");
    } else {
        const auto t0 = std::chrono::steady_clock::now();
        harness::ScenarioOutcome out;
        try {
            // Verifier expectations (expect.verifier, __success/__failure/__msg) are checked
            // against the verifier model.
            out = harness::run_scenario(*f.scenario, u.btf, ro, verifier::scenario_verifier());
        } catch (const std::exception& e) {   // not a bpfsim::Error: report it, keep the other threads going
            out.error = Error(ErrorCode::Internal, e.what());
        }
        const auto ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        const uint64_t share = ns / ncases;
        const std::string error = out.error ? testrun::valid_utf8(out.error->describe()) : "";
        for (std::size_t i = 0; i < ncases; ++i) {
            CaseResult& c = all[i];
            c.duration_ns = share;
            if (i >= out.steps.size()) {   // not reached: the run stopped at an error
                c.status = Status::Error;
                c.failures.push_back(i == out.steps.size() ? "error: " + error
                                                           : fmt::format("not run: an earlier step stopped the scenario (error: {})", error));
                continue;
            }
            const harness::StepOutcome& so = out.steps[i];
            const harness::ScenarioStep& st = f.scenario->steps.at(f.run_steps[i]);
            c.duration_ns = step_ns(so, share);
            c.status = so.skipped ? Status::Skipped : so.passed ? Status::Passed : Status::Failed;
            if (so.skipped) c.failures.push_back(testrun::valid_utf8(*so.skipped));
            if (so.run) c.ret = static_cast<int64_t>(so.run->result.r0);
            for (std::string l : so.trace_lines) {
                while (!l.empty() && l.back() == '\n') l.pop_back();
                c.trace.push_back(testrun::valid_utf8(l));
            }
            // The trace failure, drawn again as a diff of the expected lines and the messages.
            std::optional<std::string> diff;
            if (st.expect.trace_given && so.run) {
                std::vector<std::string> got;
                for (const auto& t : so.run->trace) {
                    std::string m = t.message;
                    if (!m.empty() && m.back() == '\n') m.pop_back();
                    got.push_back(m);
                }
                diff = testrun::trace_diff(st.expect.trace, got);
            }
            for (const auto& why : so.failures) {
                if (diff && why.starts_with("trace:")) {
                    c.failures.push_back(testrun::valid_utf8(*diff));
                    diff.reset();
                } else {
                    c.failures.push_back(testrun::valid_utf8(why));
                }
            }
        }
        if (out.error && out.steps.size() >= ncases) {   // after the last step: the last case carries it
            all.back().status = Status::Error;
            all.back().failures.push_back("error: " + error);
        }
    }
    std::vector<CaseResult> picked;
    for (std::size_t i : u.cases) picked.push_back(std::move(all.at(i)));
    return picked;
}

// "[k/n]" on stderr when it is a terminal, cleared before other output.
class Progress {
public:
    Progress(std::size_t total, bool on) : total_(total), on_(on) {}
    void show(std::size_t done) {
        if (!on_) return;
        fmt::print(stderr, "\r[{}/{}]", done, total_);
        std::fflush(stderr);
        shown_ = true;
    }
    void clear() {
        if (!shown_) return;
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
        shown_ = false;
    }

private:
    std::size_t total_;
    bool on_;
    bool shown_ = false;
};

enum class Console { Lines, Tap, Quiet };   // Quiet: a report goes to stdout instead

class Emitter {
public:
    Emitter(Console mode, bool show_trace) : mode_(mode), show_trace_(show_trace) {}
    void plan(std::size_t n) {
        if (mode_ == Console::Tap) fmt::print("{}", testrun::tap_plan(n));
    }
    void emit(const std::vector<CaseResult>& cases) {
        std::string text;
        for (const auto& c : cases) {
            if (mode_ == Console::Lines) text += testrun::human_case(c, show_trace_);
            else if (mode_ == Console::Tap) text += testrun::tap_case(c, ++number_);
        }
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
    }
    void summary(const testrun::Summary& s) {
        if (mode_ == Console::Lines) fmt::print("{}\n", testrun::summary_line(s));
        else if (mode_ == Console::Tap) fmt::print("# {}\n", testrun::summary_line(s));
        else fmt::print(stderr, "{}\n", testrun::summary_line(s));   // stdout holds the report
        std::fflush(stdout);
    }
    void coverage(const harness::CoverageTotals& t) {
        auto pct = [](const harness::CoverageCount& c) {
            return c.total ? fmt::format("{}/{} ({:.1f}%)", c.covered, c.total, 100.0 * static_cast<double>(c.covered) / static_cast<double>(c.total))
                           : std::string("0/0");
        };
        const std::string line = fmt::format("coverage: lines {}, functions {}, instructions {}, branches {}", pct(t.lines), pct(t.functions),
                                             pct(t.instructions), pct(t.branches));
        if (mode_ == Console::Lines) fmt::print("{}\n", line);
        else if (mode_ == Console::Tap) fmt::print("# {}\n", line);
        else fmt::print(stderr, "{}\n", line);
        std::fflush(stdout);
    }

private:
    Console mode_;
    bool show_trace_;
    std::size_t number_ = 0;
};

void write_report(const std::string& where, const std::string& text) {
    if (where == "-") {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return;
    }
    std::ofstream out(where, std::ios::binary);
    if (!(out << text) || !(out.flush())) {
        Location loc;
        loc.file = where;
        throw Error(ErrorCode::Io, "cannot write the report", loc);
    }
}

std::pair<std::size_t, std::size_t> parse_shard(const std::string& s) {
    const auto slash = s.find('/');
    std::optional<uint64_t> i, n;
    if (slash != std::string::npos) {
        i = harness::parse_integer(s.substr(0, slash));
        n = harness::parse_integer(s.substr(slash + 1));
    }
    if (!i || !n || *n == 0 || *n > (1u << 20) || *i == 0 || *i > *n)
        throw Error(ErrorCode::Usage, fmt::format("--shard '{}': write I/N with 1 <= I <= N", s));
    return {static_cast<std::size_t>(*i), static_cast<std::size_t>(*n)};
}

// Scenario files under the inputs, sorted by path, each once.
std::vector<ScenarioFile> find_scenarios(const std::vector<std::string>& inputs) {
    std::vector<ScenarioFile> files;
    for (const auto& in : inputs) {
        if (fs::is_directory(in)) {
            try {
                for (const auto& e : fs::recursive_directory_iterator(in))
                    if (e.is_regular_file() && (e.path().extension() == ".yaml" || e.path().extension() == ".yml"))
                        files.push_back({e.path(), e.path().lexically_relative(in).generic_string(), {}, {}, {}});
            } catch (const fs::filesystem_error& e) {
                Location loc;
                loc.file = e.path1().empty() ? in : e.path1().string();
                throw Error(ErrorCode::Io, fmt::format("cannot read the directory: {}", e.code().message()), loc);
            }
        } else if (fs::exists(in)) {
            files.push_back({fs::path(in), fs::path(in).filename().string(), {}, {}, {}});
        } else {
            Location loc;
            loc.file = in;
            throw Error(ErrorCode::Io, "no such file or directory", loc);
        }
    }
    std::stable_sort(files.begin(), files.end(), [](const ScenarioFile& a, const ScenarioFile& b) { return a.path < b.path; });
    std::set<fs::path> seen;
    std::vector<ScenarioFile> out;
    for (auto& f : files) {
        std::error_code ec;
        fs::path key = fs::weakly_canonical(f.path, ec);
        if (ec) key = f.path;
        if (seen.insert(key).second) out.push_back(std::move(f));
    }
    return out;
}

// Every program of the objects that ran, with no counts: code no scenario reaches shows as
// lines that did not run. Linked as the world links them (CO-RE against the unit's kernel BTF);
// a program that does not link is left out (it cannot have run either).
void register_programs(harness::CoverageReport& report, const std::vector<Unit>& units) {
    std::set<std::pair<fs::path, fs::path>> done;   // (object, kernel BTF)
    for (const auto& u : units) {
        if (!u.file->scenario) continue;
        const harness::Scenario& sc = *u.file->scenario;
        const fs::path btf = sc.btf.empty() ? fs::path() : sc.btf.at(u.btf);
        if (!done.emplace(sc.object, btf).second) continue;
        auto obj = harness::Object::open(sc.object);
        if (!obj) continue;
        std::shared_ptr<const btf::Btf> kernel;
        if (!btf.empty())
            if (auto k = harness::load_kernel_btf(btf); k) kernel = *k;
        btf::CoreTargets targets;
        targets.main = kernel.get();
        if (kernel) targets.main_name = kernel->name();
        for (const auto& def : obj->programs())
            if (auto lp = obj->link(def.name, &targets); lp) report.add(lp->prog);
    }
}

int finish(const std::vector<CaseResult>& cases, const testrun::RunInfo& info, Emitter& emitter, const po::variables_map& vm,
           const std::optional<std::string>& coverage_json = std::nullopt) {
    const auto s = testrun::summarize(cases);
    emitter.summary(s);
    if (vm.count("junit")) write_report(vm["junit"].as<std::string>(), testrun::junit_xml(cases));
    if (vm.count("json")) write_report(vm["json"].as<std::string>(), testrun::results_json(cases, info, coverage_json));
    return s.failed ? 1 : 0;
}

}  // namespace

int cmd_test(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::vector<std::string>>()->composing(), "scenario files, BPF objects with test annotations, or directories of *.yaml")
        ("include,I", po::value<std::vector<std::string>>()->composing(), "also look for objects and BTF files here")
        ("show-trace", "print each case's trace_pipe lines")
        ("filter", po::value<std::string>()->default_value(""), "only cases whose step name or scenario file contains this")
        ("jobs,j", po::value<unsigned>()->default_value(1), "run this many scenarios at once (0: one per CPU)")
        ("shard", po::value<std::string>(), "I/N: run the I-th of N parts, 1 <= I <= N (round-robin over the sorted scenario × BTF pairs)")
        ("list", "print the case names, run nothing")
        ("tap", "write TAP version 13 instead of lines")
        ("junit", po::value<std::string>(), "write JUnit XML to this file ('-': stdout)")
        ("json", po::value<std::string>(), "write the results as JSON to this file ('-': stdout)")
        ("merge", "the inputs are --json results of shards: report them as one run")
        ("engine", po::value<std::string>()->default_value("auto"),
         "auto (the JIT for programs the verifier model accepts, else the interpreter), interp, or jit (the x86-64 JIT, checked: the same results)")
        ("btf-matrix", po::value<std::string>(), "run every scenario against every kernel BTF in this directory (raw BTF, or ELF "
                                                 "files with .BTF), one result per kernel, instead of the scenarios' own 'btf' lists")
        ("coverage", po::value<std::string>(), "write line coverage of the BPF C source over all runs to this lcov tracefile; "
                                               "--json then includes instruction and branch coverage")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("input", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim test SCENARIO.yaml|OBJ.o|DIR... [-I DIR] [-j N] [--shard I/N] [--btf-matrix DIR] [--tap] [--junit FILE] [--json FILE]\n"
                     "  OBJ.o: a BPF object whose programs carry kernel selftest annotations (__success, __failure,\n"
                     "  __msg, __retval, __description from bpf_misc.h), run as one case per program\n"
                     "       bpfsim test --merge RESULTS.json... [--tap] [--junit FILE] [--json FILE]\n\n"
                  << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (!vm.count("input")) throw Error(ErrorCode::Usage, vm.count("merge") ? "test --merge: give the JSON results of each shard" : "test: give scenario files or directories");
    const auto inputs = vm["input"].as<std::vector<std::string>>();
    const bool json_out = vm.count("json") && vm["json"].as<std::string>() == "-";
    const bool junit_out = vm.count("junit") && vm["junit"].as<std::string>() == "-";
    if (json_out + junit_out + vm.count("tap") > 1) throw Error(ErrorCode::Usage, "only one of --tap, --json - and --junit - can write to stdout");
    const Console console = json_out || junit_out ? Console::Quiet : vm.count("tap") ? Console::Tap : Console::Lines;
    Emitter emitter(console, vm.count("show-trace"));

    if (vm.count("merge")) {
        for (const char* o : {"shard", "list", "include", "coverage", "btf-matrix"})
            if (vm.count(o)) throw Error(ErrorCode::Usage, fmt::format("--{} does not go with --merge", o));
        if (!vm["filter"].as<std::string>().empty()) throw Error(ErrorCode::Usage, "--filter does not go with --merge");
        std::vector<fs::path> files(inputs.begin(), inputs.end());
        std::vector<testrun::ResultsFile> parts;
        for (const auto& f : files) parts.push_back(testrun::read_results_json(f));
        const auto merged = testrun::merge_results(files, parts);
        emitter.plan(merged.cases.size());
        emitter.emit(merged.cases);
        return finish(merged.cases, merged.info, emitter, vm);
    }

    std::vector<fs::path> search;
    if (vm.count("include"))
        for (const auto& s : vm["include"].as<std::vector<std::string>>()) search.emplace_back(s);
    std::vector<ScenarioFile> files = find_scenarios(inputs);
    if (files.empty()) throw Error(ErrorCode::Usage, fmt::format("test: no scenario (*.yaml, *.yml) in {}", fmt::join(inputs, ", ")));
    const std::string engine_name = vm["engine"].as<std::string>();
    if (engine_name != "interp" && engine_name != "jit" && engine_name != "auto")
        throw Error(ErrorCode::Usage, fmt::format("--engine must be 'auto', 'interp' or 'jit', not '{}'", engine_name));
    const harness::Engine engine = engine_name == "jit"    ? harness::Engine::Jit
                                   : engine_name == "auto" ? harness::Engine::Auto
                                                           : harness::Engine::Interpreter;
    // --btf-matrix: the kernels, sorted by name, every regular file of the directory.
    std::vector<fs::path> matrix;
    if (vm.count("btf-matrix")) {
        const fs::path dir = vm["btf-matrix"].as<std::string>();
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file()) matrix.push_back(it->path());
        if (ec) {
            Location loc;
            loc.file = dir.string();
            throw Error(ErrorCode::Io, fmt::format("--btf-matrix: cannot read the directory: {}", ec.message()), loc);
        }
        if (matrix.empty()) {
            Location loc;
            loc.file = dir.string();
            throw Error(ErrorCode::Usage, "--btf-matrix: no kernel BTF files in the directory", loc);
        }
        std::sort(matrix.begin(), matrix.end());
    }
    for (auto& f : files) {
        // A BPF object runs the expectations annotated in its source (bpf_misc.h's __retval, ...).
        auto sc = f.path.extension() == ".o" ? harness::annotations_scenario(f.path) : harness::load_scenario(f.path, search);
        if (!sc) {
            f.error = sc.error();
            continue;
        }
        f.scenario = std::move(sc.value());
        if (!matrix.empty()) f.scenario->btf = matrix;
        f.scenario->world.engine = engine;
        for (std::size_t i = 0; i < f.scenario->steps.size(); ++i)
            if (!f.scenario->steps[i].run.empty()) f.run_steps.push_back(i);
    }

    // Units in file order, then BTF order; --filter picks cases; a load error is always a case.
    const std::string filter = vm["filter"].as<std::string>();
    std::vector<Unit> units;
    for (const auto& f : files) {
        const std::size_t nbtf = f.scenario ? std::max<std::size_t>(1, f.scenario->btf.size()) : 1;
        const std::size_t ncases = f.scenario && !f.run_steps.empty() ? f.run_steps.size() : 1;
        const bool file_matches = f.shown.find(filter) != std::string::npos;
        for (std::size_t b = 0; b < nbtf; ++b) {
            Unit u;
            u.file = &f;
            u.btf = b;
            for (std::size_t i = 0; i < ncases; ++i)
                if (!f.scenario || file_matches || case_step(f, i).find(filter) != std::string::npos) u.cases.push_back(i);
            if (u.cases.empty()) continue;
            u.number = units.size();
            units.push_back(std::move(u));
        }
    }
    testrun::RunInfo info;
    info.filter = filter;
    info.units = units.size();
    if (vm.count("shard")) {
        const auto [i, n] = parse_shard(vm["shard"].as<std::string>());
        info.shard_index = i;
        info.shard_count = n;
        std::vector<Unit> mine;
        for (auto& u : units)
            if (u.number % n == i - 1) mine.push_back(std::move(u));
        units = std::move(mine);
    }
    std::size_t ncases = 0;
    for (const auto& u : units) ncases += u.cases.size();

    if (vm.count("list")) {
        bool broken = false;
        for (const auto& u : units)
            for (std::size_t i : u.cases) {
                CaseResult c;
                c.file = u.file->shown;
                c.step = case_step(*u.file, i);
                c.btf = btf_shown(*u.file, u.btf);
                fmt::print("{}\n", c.name());
            }
        for (const auto& u : units)
            if (u.file->error) {
                fmt::print(stderr, "bpfsim test: {}\n", u.file->error->describe());
                broken = true;
            }
        return broken ? 1 : 0;
    }

    // Workers take units in order; this thread prints each unit's cases once it and all
    // before it are done, so the output does not depend on -j.
    unsigned jobs = vm["jobs"].as<unsigned>();
    if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
    jobs = static_cast<unsigned>(std::min<std::size_t>(jobs, std::max<std::size_t>(1, units.size())));
    std::vector<std::vector<CaseResult>> results(units.size());
    std::vector<char> done(units.size(), 0);
    std::size_t ndone = 0;
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<std::size_t> next{0};
    // Coverage: one report per thread (a report is not thread-safe), merged at the end.
    const bool coverage = vm.count("coverage") > 0;
    std::vector<harness::CoverageReport> reports(jobs);
    auto work = [&](unsigned t) {
        const bpfsim::vm::RunOptions ro = coverage ? reports[t].options() : bpfsim::vm::RunOptions{};
        for (std::size_t k; (k = next.fetch_add(1)) < units.size();) {
            std::vector<CaseResult> r;
            try {
                r = run_unit(units[k], ro);
            } catch (const std::exception& e) {   // never let an exception end the process from a thread
                CaseResult c;
                c.file = units[k].file->shown;
                c.step = "(run)";
                c.btf = btf_shown(*units[k].file, units[k].btf);
                c.unit = units[k].number;
                c.status = Status::Error;
                c.failures.push_back(testrun::valid_utf8(fmt::format("error: {}", e.what())));
                r.push_back(std::move(c));
            }
            std::lock_guard lk(mu);
            results[k] = std::move(r);
            done[k] = 1;
            ++ndone;
            cv.notify_all();
        }
    };
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < jobs; ++t) pool.emplace_back(work, t);

    Progress progress(units.size(), units.size() > 20 && isatty(STDERR_FILENO));
    emitter.plan(ncases);
    std::vector<CaseResult> cases;
    for (std::size_t k = 0; k < units.size(); ++k) {
        {
            std::unique_lock lk(mu);
            progress.show(ndone);
            while (!done[k]) {
                cv.wait(lk);
                progress.show(ndone);
            }
        }
        progress.clear();
        emitter.emit(results[k]);
        for (auto& c : results[k]) cases.push_back(std::move(c));
    }
    progress.clear();
    pool.clear();   // joins
    std::optional<std::string> coverage_json;
    if (coverage) {
        harness::CoverageReport report;
        for (const auto& r : reports) report.merge(r);
        register_programs(report, units);
        const std::string where = vm["coverage"].as<std::string>();
        if (auto n = report.write_lcov(where, "bpfsim"); !n) throw n.error();
        if (std::none_of(report.programs().begin(), report.programs().end(), [](const auto& p) { return !p.second.lines.empty(); }))
            fmt::print(stderr, "bpfsim test: warning: no program has line info (.BTF.ext): {} has no lines; compile with clang -g\n", where);
        emitter.coverage(report.totals());
        if (vm.count("json")) coverage_json = report.json();
    }
    return finish(cases, info, emitter, vm, coverage_json);
}

}  // namespace bpfsim
