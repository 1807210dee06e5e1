// `bpfsim fuzz OBJ --prog P [--scenario S [--step NAME]] [--time 60s] [--corpus DIR]`: coverage-guided
// fuzzing of a program's inputs with libFuzzer as the engine (LLVMFuzzerRunDriver), fed with the
// BPF program's own edge coverage through libFuzzer's extra counters. The inputs, worlds and
// oracles are harness/fuzz.hpp's; this file drives libFuzzer, reports findings, replays
// reproducers (`bpfsim run --input`) and fuzzes directories of objects (--corpus-of-programs).
//
// libFuzzer's -jobs, -workers and -fork re-run argv[0] with its own flags and corpus
// directories only, so bpfsim's options reach those processes in BPFSIM_FUZZ_CHILD (a JSON
// array), which main() checks before looking for a verb (fuzz_child).
#include "cli/inputs.hpp"
#include "harness/fuzz.hpp"
#include "harness/scenario.hpp"
#include "verifier/scenario_verifier.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <thread>
#include <unordered_map>

extern "C" int LLVMFuzzerRunDriver(int* argc, char*** argv, int (*cb)(const uint8_t* data, size_t size));
extern char** environ;

namespace bpfsim {

namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using harness::FuzzFinding;

constexpr const char* kChildEnv = "BPFSIM_FUZZ_CHILD";

// libFuzzer reads these as extra coverage counters (one byte each, cleared before every input).
constexpr std::size_t kCounters = 1u << 16;
__attribute__((section("__libfuzzer_extra_counters"), used)) uint8_t g_counters[kCounters];

// SHA-1, for the name libFuzzer gives a crash artifact (crash-<sha1>), so the report can name
// the reproducer before libFuzzer writes it.
std::string sha1_hex(const uint8_t* data, std::size_t n) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::vector<uint8_t> m(data, data + n);
    const uint64_t bits = static_cast<uint64_t>(n) * 8;
    m.push_back(0x80);
    while (m.size() % 64 != 56) m.push_back(0);
    for (int i = 7; i >= 0; --i) m.push_back(static_cast<uint8_t>(bits >> (i * 8)));
    auto rol = [](uint32_t x, int s) { return (x << s) | (x >> (32 - s)); };
    for (std::size_t off = 0; off < m.size(); off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(m[off + 4 * i]) << 24 | uint32_t(m[off + 4 * i + 1]) << 16 | uint32_t(m[off + 4 * i + 2]) << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            const uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    return fmt::format("{:08x}{:08x}{:08x}{:08x}{:08x}", h[0], h[1], h[2], h[3], h[4]);
}

// "60s", "5m", "1h", "90" (seconds).
uint64_t parse_duration(const std::string& text, const std::string& what) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    const std::string unit = text.substr(i);
    uint64_t mult = 0;
    if (unit.empty() || unit == "s") mult = 1;
    else if (unit == "m") mult = 60;
    else if (unit == "h") mult = 3600;
    if (i == 0 || !mult || i > 9) throw Error(ErrorCode::Usage, fmt::format("{} '{}': write seconds, or a number with s, m or h (60s, 5m)", what, text));
    return std::stoull(text.substr(0, i)) * mult;
}

bool is_libfuzzer_flag(const std::string& a) { return std::regex_match(a, std::regex("-[A-Za-z_]+=.*")); }

std::string flag_value(const std::vector<std::string>& flags, const std::string& name) {
    std::string v;
    for (const auto& f : flags)
        if (f.starts_with("-" + name + "=")) v = f.substr(name.size() + 2);
    return v;
}
bool has_flag(const std::vector<std::string>& flags, const std::string& name) {
    return std::any_of(flags.begin(), flags.end(), [&](const std::string& f) { return f.starts_with("-" + name + "="); });
}

std::string self_exe() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("bpfsim") : p.string();
}

std::string quote(const std::string& s) {
    if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == std::string::npos) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// The options that decide how inputs decode and run: shared by `fuzz` and `run --input`.
void add_target_options(po::options_description& d) {
    d.add_options()
        ("prog,p", po::value<std::string>()->default_value(""), "program (function or section); default: the scenario step's, or the object's first")
        ("scenario", po::value<std::string>()->default_value(""), "a scenario: its world, the step's input as the seed, the step's `fuzz:` invariants")
        ("step", po::value<std::string>()->default_value(""), "the scenario step to fuzz: its name or number (default: the first that runs the program)")
        ("include,I", po::value<std::vector<std::string>>()->default_value({}, "")->composing(), "directories to look for the scenario's object and files in")
        ("fuzz-map", po::value<std::vector<std::string>>()->default_value({}, "")->composing(),
         "NAME[:N]: N entries (default 1) of map NAME come from the input too (see README)")
        ("no-jit", "do not run the checked JIT beside the interpreter (no divergence oracle)")
        ("no-verify", "fuzz a program even when the verifier model rejects it");
}

// What `fuzz` and `run --input` build from the command line.
struct Setup {
    std::string object_path;
    std::unique_ptr<harness::Object> obj;
    std::optional<harness::Scenario> scenario;
    std::unique_ptr<harness::FuzzTarget> target;
    std::string program;
    std::string type;
    std::vector<std::string> replay_args;   // the options `run --input` needs to decode and run the same way
    std::optional<harness::VerifierVerdict> rejected;   // --no-verify and the verifier model rejects it
};

// Returns 1 (with the verdict printed) when the verifier model rejects the program and
// --no-verify is not given; 0 when the target is ready.
int set_up(Setup& su, const std::string& verb, const std::string& object, const po::variables_map& vm, uint64_t budget) {
    su.object_path = object;
    auto obj = harness::Object::open(object);
    if (!obj) throw obj.error();
    su.obj = std::make_unique<harness::Object>(std::move(obj.value()));
    harness::FuzzOptions fo;
    fo.world = cli::world_options(vm);
    fo.budget = budget;
    fo.differential = !vm.count("no-jit");
    if (!fo.world.kernel_btf && su.obj->core_relo_count() > 0)   // CO-RE needs a target: the running kernel's, as `verify` does
        if (auto k = harness::KernelOracle::running_kernel_btf()) fo.world.kernel_btf = *k;
    std::string prog = vm["prog"].as<std::string>();
    std::vector<fs::path> search;
    for (const auto& d : vm["include"].as<std::vector<std::string>>()) search.emplace_back(d);
    if (auto sp = vm["scenario"].as<std::string>(); !sp.empty()) {
        auto s = harness::load_scenario(sp, search);
        if (!s) throw s.error();
        su.scenario = std::move(s.value());
        const harness::Scenario& sc = *su.scenario;
        const std::string step = vm["step"].as<std::string>();
        std::optional<std::size_t> found;
        const auto number = harness::parse_integer(step);
        for (std::size_t i = 0; i < sc.steps.size() && !found; ++i) {
            const auto& st = sc.steps[i];
            if (st.run.empty()) continue;
            if (!step.empty() ? (st.name == step || (number && *number == i + 1))
                              : (prog.empty() || su.obj->find_program(st.run) == su.obj->find_program(prog)))
                found = i;
        }
        if (!found)
            throw Error(ErrorCode::Usage, step.empty() ? fmt::format("{}: no step runs '{}'", sp, prog)
                                                       : fmt::format("{}: no step named '{}' (or numbered so) that runs a program", sp, step));
        fo.step = *found;
        if (prog.empty()) prog = sc.steps[*found].run;
        fo.scenario = &*su.scenario;
        if (fs::weakly_canonical(sc.object) != fs::weakly_canonical(object))
            fmt::print(stderr, "bpfsim {}: note: the scenario names {}; {} is fuzzed\n", verb, sc.object.string(), object);
        su.replay_args.insert(su.replay_args.end(), {"--scenario", sp, "--step", std::to_string(*found + 1)});
        for (const auto& d : search) su.replay_args.insert(su.replay_args.end(), {"-I", d.string()});
    }
    su.program = cli::program_name(*su.obj, prog, object);
    const harness::ProgramDef* def = su.obj->find_program(su.program);
    if (!def) throw su.obj->link(su.program).error();
    su.program = def->name;
    su.type = std::string(harness::to_string(def->type));
    fo.program = su.program;
    for (const auto& m : vm["fuzz-map"].as<std::vector<std::string>>()) {
        auto spec = harness::parse_fuzz_map_spec(m);
        if (!spec) throw spec.error();
        fo.maps.push_back(*spec);
        su.replay_args.insert(su.replay_args.end(), {"--fuzz-map", m});
    }
    if (!fo.differential) su.replay_args.push_back("--no-jit");
    for (const char* o : {"btf", "seed", "ncpus"}) {
        const auto& v = vm[o];
        if (v.defaulted()) continue;
        su.replay_args.insert(su.replay_args.end(), {std::string("--") + o,
                                                     std::string(o) == "btf" ? v.as<std::string>()
                                                     : std::string(o) == "seed" ? std::to_string(v.as<uint64_t>())
                                                                                : std::to_string(v.as<unsigned>())});
    }
    for (const auto& k : vm["kconfig"].as<std::vector<std::string>>()) su.replay_args.insert(su.replay_args.end(), {"--kconfig", k});
    if (budget != 1'000'000) su.replay_args.insert(su.replay_args.end(), {"--budget", std::to_string(budget)});
    const harness::WorldOptions& wv = fo.scenario ? fo.scenario->world : fo.world;
    harness::WorldOptions verify_world = wv;
    if (!verify_world.kernel_btf) verify_world.kernel_btf = fo.world.kernel_btf;
    auto verdict = verifier::scenario_verifier()(*su.obj, su.program, verify_world);
    if (!verdict) throw verdict.error();
    if (!verdict->accepted) {
        if (!vm.count("no-verify")) {
            fmt::print(stderr, "bpfsim {}: the verifier model rejects '{}' at pc {}: {}\n{}", verb, su.program, verdict->pc, verdict->message,
                       verdict->source_line.empty() ? "" : "  " + verdict->source_line + "\n");
            fmt::print(stderr, "(the kernel would not load it; --no-verify {} it anyway)\n", verb == "run" ? "runs" : "fuzzes");
            return 1;
        }
        su.rejected = *verdict;
        su.replay_args.push_back("--no-verify");
    }
    auto t = harness::FuzzTarget::create(*su.obj, std::move(fo));
    if (!t) throw t.error();
    su.target = std::move(t.value());
    return 0;
}

std::string replay_command(const Setup& su, const std::string& file) {
    std::string cmd = "bpfsim run " + quote(su.object_path) + " --prog " + quote(su.program);
    for (const auto& a : su.replay_args) cmd += " " + quote(a);
    return cmd + " --input " + quote(file);
}

void print_finding(std::FILE* out, const Setup& su, const FuzzFinding& f, std::size_t input_size) {
    fmt::print(out, "==bpfsim fuzz== finding: {}\n", harness::to_string(f.kind));
    fmt::print(out, "  program: {} ({}) in {}\n", su.program, su.type, su.object_path);
    fmt::print(out, "  what:    {}\n", f.message);
    if (f.pc) fmt::print(out, "  pc:      {}\n", *f.pc);
    fmt::print(out, "  source:  {}\n", f.source.empty() ? "(no line info)" : f.source);
    fmt::print(out, "  input:   {} bytes ({})\n", input_size, su.target->layout().packet ? "map records, then the packet" : "map records, then the context");
}

nlohmann::json finding_json(const FuzzFinding& f) {
    nlohmann::json j = {{"kind", harness::to_string(f.kind)}, {"message", f.message}, {"source", f.source}};
    j["pc"] = f.pc ? nlohmann::json(*f.pc) : nlohmann::json(nullptr);
    return j;
}

// ─────────────────────────────── the fuzzer ────────────────────────────────

struct Session {
    Setup su;
    std::string artifact_prefix = "./";
    std::string summary_path;   // --summary-json
    std::string temp_dir;       // seeds and dictionary; removed at exit by the process that made it
    bool child = false;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::unordered_map<const vm::Program*, uint64_t> program_hash;
    uint64_t rebuilds = 0;
    bool reported = false;
};
Session* g_session = nullptr;

double elapsed(const Session& s) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - s.start).count(); }

void write_summary(const Session& s, const FuzzFinding* f, const std::string& reproducer) {
    if (s.summary_path.empty()) return;
    const auto& t = *s.su.target;
    nlohmann::json j = {{"object", s.su.object_path}, {"program", s.su.program}, {"type", s.su.type},
                        {"verdict", s.su.rejected ? "rejected" : "accepted"}, {"runs", t.stats().runs},
                        {"covered", t.covered()}, {"instructions", t.instructions()}, {"seconds", elapsed(s)}};
    j["finding"] = f ? finding_json(*f) : nlohmann::json(nullptr);
    if (f) j["finding"]["reproducer"] = reproducer;
    std::ofstream(s.summary_path) << j.dump() << "\n";
}

// The program's edges as libFuzzer features: each instruction run (by how often), and each
// direction of each conditional jump (taken, not taken), hashed per program.
void fill_counters(Session& s) {
    if (s.su.target->stats().rebuilds != s.rebuilds) {   // new worlds, new programs: addresses may be reused
        s.program_hash.clear();
        s.rebuilds = s.su.target->stats().rebuilds;
    }
    for (const auto& [prog, cov] : s.su.target->coverage()) {
        auto [it, fresh] = s.program_hash.try_emplace(prog, 0);
        if (fresh) it->second = std::hash<std::string>{}(prog->name) * 0x9e3779b97f4a7c15ull;
        const uint64_t base = it->second;
        auto bump = [&](uint64_t key, uint64_t count) {
            uint64_t h = (base ^ key) * 0xff51afd7ed558ccdull;
            h ^= h >> 29;
            uint8_t& c = g_counters[h & (kCounters - 1)];
            c = static_cast<uint8_t>(std::max<uint64_t>(c, std::min<uint64_t>(count, 255)));
        };
        const std::size_t n = std::min(cov->hits.size(), prog->insns.size());
        for (std::size_t pc = 0; pc < n; ++pc) {
            const uint64_t hits = cov->hits[pc];
            if (!hits) continue;
            bump(pc * 4, hits);
            const vm::Insn& in = prog->insns[pc];
            const uint8_t cls = vm::code::cls(in.code), op = in.code & 0xf0;
            if ((cls == vm::code::JMP || cls == vm::code::JMP32) && op != 0x00 && op != 0x80 && op != 0x90) {
                const uint64_t taken = pc < cov->taken.size() ? cov->taken[pc] : 0;
                if (taken) bump(pc * 4 + 1, taken);
                if (hits > taken) bump(pc * 4 + 2, hits - taken);
            }
        }
    }
}

int fuzz_callback(const uint8_t* data, size_t size) {
    Session& s = *g_session;
    harness::FuzzRun r;
    try {
        r = s.su.target->run({data, size});
    } catch (const Error& e) {
        fmt::print(stderr, "bpfsim fuzz: cannot run '{}': {}\n", s.su.program, e.describe());
        std::fflush(stderr);
        std::_Exit(2);
    }
    fill_counters(s);
    if (r.finding) {
        const std::string repro = s.artifact_prefix + "crash-" + sha1_hex(data, size);
        std::fflush(stdout);
        print_finding(stderr, s.su, *r.finding, size);
        fmt::print(stderr, "  after:   {} runs in {:.1f} s\n", s.su.target->stats().runs, elapsed(s));
        fmt::print(stderr, "  reproducer: {} (libFuzzer writes it below)\n", repro);
        fmt::print(stderr, "  replay:  {}\n", replay_command(s.su, repro));
        write_summary(s, &*r.finding, repro);
        s.reported = true;
        if (!s.temp_dir.empty() && !s.child) {   // no exit handlers run after abort()
            std::error_code ec;
            fs::remove_all(s.temp_dir, ec);
        }
        std::fflush(stderr);
        std::abort();   // libFuzzer's deadly-signal handler writes the artifact and exits
    }
    return 0;
}

void at_exit() {
    Session* s = g_session;
    if (!s) return;
    if (!s->reported && s->su.target) {
        const auto& t = *s->su.target;
        if (t.stats().runs) {
            const double pct = t.instructions() ? 100.0 * double(t.covered()) / double(t.instructions()) : 0.0;
            fmt::print(stderr, "bpfsim fuzz: no finding in {} runs ({:.1f} s); {} of {} instructions of '{}' covered ({:.1f}%)\n", t.stats().runs,
                       elapsed(*s), t.covered(), t.instructions(), s->su.program, pct);
        }
        write_summary(*s, nullptr, "");
    }
    if (!s->temp_dir.empty() && !s->child) {
        std::error_code ec;
        fs::remove_all(s->temp_dir, ec);
    }
}

// Seeds and a dictionary of the program's compare constants (little- and big-endian).
void write_temp_files(Session& s, std::vector<std::string>& flags) {
    s.temp_dir = (fs::temp_directory_path() / fmt::format("bpfsim-fuzz-{}", getpid())).string();
    fs::create_directories(fs::path(s.temp_dir) / "seeds");
    std::size_t i = 0;
    for (const auto& seed : s.su.target->seeds()) {
        std::ofstream f(fs::path(s.temp_dir) / "seeds" / fmt::format("seed-{}", i++), std::ios::binary);
        f.write(reinterpret_cast<const char*>(seed.data()), static_cast<std::streamsize>(seed.size()));
    }
    if (has_flag(flags, "dict")) return;
    std::set<std::string> entries;
    for (uint64_t c : s.su.target->constants()) {
        if (c < 2) continue;
        for (unsigned width : {1u, 2u, 4u, 8u}) {
            if (width < 8 && c >> (width * 8)) continue;
            if (width == 1 && c < 0x20) continue;   // small numbers: the mutator finds them anyway
            std::string le, be;
            for (unsigned b = 0; b < width; ++b) {
                le += fmt::format("\\x{:02X}", static_cast<unsigned>((c >> (8 * b)) & 0xff));
                be += fmt::format("\\x{:02X}", static_cast<unsigned>((c >> (8 * (width - 1 - b))) & 0xff));
            }
            entries.insert(le);
            entries.insert(be);
            break;
        }
    }
    if (entries.empty()) return;
    const std::string dict = (fs::path(s.temp_dir) / "dict").string();
    std::ofstream f(dict);
    for (const auto& e : entries) f << "\"" << e << "\"\n";
    flags.push_back("-dict=" + dict);
}

int drive(Session& s, std::vector<std::string> argv) {
    g_session = &s;
    std::atexit(at_exit);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int argc = static_cast<int>(argv.size());
    char** pargv = cargv.data();
    std::fflush(stdout);
    return LLVMFuzzerRunDriver(&argc, &pargv, fuzz_callback);
}

struct FuzzCommand {
    std::vector<std::string> ours;      // bpfsim's options
    std::vector<std::string> flags;     // -name=value: libFuzzer's
};

FuzzCommand split_args(const std::vector<std::string>& args) {
    FuzzCommand c;
    for (const auto& a : args) (is_libfuzzer_flag(a) ? c.flags : c.ours).push_back(a);
    return c;
}

po::options_description fuzz_options() {
    po::options_description d("options");
    d.add_options()
        ("object", po::value<std::string>(), "BPF ELF object")
        ("time", po::value<std::string>()->default_value(""), "stop after this long (60s, 5m): libFuzzer's -max_total_time")
        ("runs", po::value<uint64_t>(), "stop after N inputs: libFuzzer's -runs")
        ("corpus", po::value<std::string>()->default_value(""), "keep the inputs that reach new coverage in DIR (created), and start from them")
        ("budget", po::value<uint64_t>()->default_value(1'000'000), "instruction budget per run (exhausting it is a finding)")
        ("summary-json", po::value<std::string>()->default_value(""), "write the outcome as JSON to FILE (runs, coverage, the finding)")
        ("corpus-of-programs", po::value<std::string>()->default_value(""), "fuzz every program of every object in DIR, one process each, and tabulate")
        ("shard", po::value<std::string>()->default_value(""), "with --corpus-of-programs: the I-th of N parts of the program list (I/N)")
        ("time-per-prog", po::value<std::string>()->default_value(""), "with --corpus-of-programs: fuzz each program this long")
        ("out", po::value<std::string>()->default_value("bpfsim-fuzz-out"), "with --corpus-of-programs: logs and reproducers, one folder per program")
        ("list", "with --corpus-of-programs: print the programs (of the shard) and fuzz none")
        ("seed", po::value<uint64_t>()->default_value(0), "seed of bpf_get_prandom_u32 (libFuzzer's own: -seed=N)")
        ("ncpus", po::value<unsigned>()->default_value(1), "CPUs of per-CPU maps")
        ("kconfig", po::value<std::vector<std::string>>()->default_value({}, "")->composing(), "CONFIG_NAME=VALUE for __kconfig externs")
        ("btf", po::value<std::string>()->default_value(""), "the kernel's BTF: CO-RE target and kernel object layout");
    add_target_options(d);
    d.add_options()("help,h", "show this help");
    return d;
}

const char* kUsage =
    "usage: bpfsim fuzz OBJ [--prog P] [--scenario S [--step NAME]] [--time 60s | --runs N] [--corpus DIR]\n"
    "                  [--fuzz-map MAP[:N]]... [-LIBFUZZER_FLAG=VALUE]...\n"
    "       bpfsim fuzz --corpus-of-programs DIR [--shard I/N] [--runs N | --time-per-prog 10s] [--out DIR]\n\n"
    "Coverage-guided fuzzing of a program's input (packet, context, map entries) with libFuzzer, guided by the\n"
    "program's own branch coverage. Findings (memory fault, helper misuse, instruction budget, scenario `fuzz:`\n"
    "invariant, interpreter/JIT divergence) are reported with the source line and a reproducer that\n"
    "`bpfsim run OBJ --prog P --input FILE` replays. Flags written -name=value go to libFuzzer (-jobs=4, -seed=1,\n"
    "-max_len=N, -dict=FILE, -artifact_prefix=DIR/). Exit status: 0 no finding, 1 a finding, 2 bad usage.\n\n";

po::variables_map parse_ours(const std::vector<std::string>& ours, bool* help) {
    po::positional_options_description pos;
    pos.add("object", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(ours).options(fuzz_options()).positional(pos).run(), vm);
    *help = vm.count("help") > 0;
    if (!*help) po::notify(vm);
    return vm;
}

// Builds the session of one program from bpfsim's options; 1 when the verifier rejects it.
int prepare(Session& s, const po::variables_map& vm, const std::vector<std::string>& flags) {
    if (!vm.count("object")) throw Error(ErrorCode::Usage, "fuzz: give an object file (or --corpus-of-programs DIR)");
    for (const char* o : {"shard", "time-per-prog"})
        if (!vm[o].defaulted()) throw Error(ErrorCode::Usage, fmt::format("fuzz: --{} goes with --corpus-of-programs", o));
    if (int rc = set_up(s.su, "fuzz", vm["object"].as<std::string>(), vm, vm["budget"].as<uint64_t>())) return rc;
    s.summary_path = vm["summary-json"].as<std::string>();
    if (auto p = flag_value(flags, "artifact_prefix"); !p.empty()) s.artifact_prefix = p;
    return 0;
}

int fuzz_one(const po::variables_map& vm, FuzzCommand cmd) {
    static Session s;   // lives until exit: libFuzzer ends the process
    if (int rc = prepare(s, vm, cmd.flags)) return rc;
    std::vector<std::string> argv{self_exe()};
    if (!has_flag(cmd.flags, "error_exitcode")) argv.push_back("-error_exitcode=1");
    if (!has_flag(cmd.flags, "max_len")) argv.push_back(fmt::format("-max_len={}", s.su.target->layout().max_len()));
    if (!has_flag(cmd.flags, "timeout")) argv.push_back("-timeout=30");
    if (auto t = vm["time"].as<std::string>(); !t.empty()) argv.push_back(fmt::format("-max_total_time={}", parse_duration(t, "--time")));
    if (vm.count("runs")) argv.push_back(fmt::format("-runs={}", vm["runs"].as<uint64_t>()));
    write_temp_files(s, cmd.flags);
    argv.insert(argv.end(), cmd.flags.begin(), cmd.flags.end());
    if (auto c = vm["corpus"].as<std::string>(); !c.empty()) {
        std::error_code ec;
        fs::create_directories(c, ec);
        if (!fs::is_directory(c)) throw Error(ErrorCode::Io, fmt::format("--corpus: cannot create the directory '{}'", c));
        argv.push_back(c);
    }
    argv.push_back((fs::path(s.temp_dir) / "seeds").string());
    if (s.su.rejected)
        fmt::print(stderr, "bpfsim fuzz: note: the verifier model rejects '{}' ({}); fuzzing it anyway (--no-verify)\n", s.su.program, s.su.rejected->message);
    fmt::print(stderr, "bpfsim fuzz: {} ({}) in {}: {} instructions; input: {}{}\n", s.su.program, s.su.type, s.su.object_path, s.su.target->instructions(),
               s.su.target->layout().maps.empty() ? "" : fmt::format("{} bytes of map records, then ", s.su.target->layout().map_bytes()),
               s.su.target->layout().packet ? "the packet" : fmt::format("the context ({} bytes)", s.su.target->layout().base_ctx.size()));
    // -jobs/-workers/-fork children: bpfsim's options go by the environment.
    setenv(kChildEnv, nlohmann::json(cmd.ours).dump().c_str(), 1);
    return drive(s, argv);
}

// ─────────────────────────── --corpus-of-programs ──────────────────────────

struct Unit {
    std::string object;     // path
    std::string program;    // "" when the object cannot be opened
    std::string type;
    std::string error;
};

std::vector<Unit> corpus_units(const std::string& dir) {
    if (!fs::is_directory(dir)) {
        Location loc;
        loc.file = dir;
        throw Error(ErrorCode::Io, "--corpus-of-programs: not a directory", loc);
    }
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && cli::is_elf(e.path().string())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    std::vector<Unit> units;
    for (const auto& f : files) {
        auto obj = harness::Object::open(f);
        if (!obj) {
            units.push_back({f, "", "", obj.error().describe()});
            continue;
        }
        if (obj->programs().empty()) units.push_back({f, "", "", "no programs"});
        for (const auto& p : obj->programs()) units.push_back({f, p.name, std::string(harness::to_string(p.type)), ""});
    }
    return units;
}

std::pair<std::size_t, std::size_t> parse_shard(const std::string& s) {
    const std::regex re("([0-9]+)/([0-9]+)");
    std::smatch m;
    if (!std::regex_match(s, m, re)) throw Error(ErrorCode::Usage, fmt::format("--shard '{}': write I/N (1 <= I <= N)", s));
    const std::size_t i = std::stoul(m[1]), n = std::stoul(m[2]);
    if (n == 0 || i == 0 || i > n) throw Error(ErrorCode::Usage, fmt::format("--shard '{}': write I/N with 1 <= I <= N", s));
    return {i, n};
}

struct Row {
    Unit unit;
    std::string verdict;     // accepted, rejected, error
    uint64_t runs = 0;
    std::size_t covered = 0, insns = 0;
    std::optional<nlohmann::json> finding;
    std::string error;
    double seconds = 0;
};

// Runs `bpfsim fuzz` for one program in a child process (LLVMFuzzerRunDriver runs once per
// process), its output in LOG; kills it after `deadline` seconds.
int run_child(const std::vector<std::string>& args, const std::string& log, double deadline) {
    std::vector<char*> argv;
    std::vector<std::string> a = args;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    // The child is a fuzz process of its own, not a libFuzzer job of ours.
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        if (!std::string_view(*e).starts_with(std::string(kChildEnv) + "=")) env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw Error(ErrorCode::Io, fmt::format("cannot start {}: {}", args[0], std::strerror(rc)));
    const auto start = std::chrono::steady_clock::now();
    int status = 0;
    while (true) {
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0) return -1;
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -2;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int fuzz_corpus(const po::variables_map& vm, const FuzzCommand& cmd) {
    const std::string dir = vm["corpus-of-programs"].as<std::string>();
    if (vm.count("object")) throw Error(ErrorCode::Usage, "fuzz: give an object or --corpus-of-programs DIR, not both");
    for (const char* o : {"scenario", "step", "prog"})
        if (!vm[o].as<std::string>().empty()) throw Error(ErrorCode::Usage, fmt::format("fuzz: --{} is for one object, not --corpus-of-programs", o));
    if (!vm["fuzz-map"].as<std::vector<std::string>>().empty()) throw Error(ErrorCode::Usage, "fuzz: --fuzz-map is for one object, not --corpus-of-programs");
    if (!vm["corpus"].as<std::string>().empty()) throw Error(ErrorCode::Usage, "fuzz: --corpus is for one object; --out keeps each program's files");
    std::size_t shard = 1, shards = 1;
    if (auto sh = vm["shard"].as<std::string>(); !sh.empty()) std::tie(shard, shards) = parse_shard(sh);
    uint64_t per_prog = 0;
    if (auto t = vm["time-per-prog"].as<std::string>(); !t.empty()) per_prog = parse_duration(t, "--time-per-prog");
    if (!vm["time"].as<std::string>().empty()) throw Error(ErrorCode::Usage, "fuzz: with --corpus-of-programs, give --time-per-prog (or --runs)");
    const uint64_t runs = vm.count("runs") ? vm["runs"].as<uint64_t>() : per_prog ? 0 : 2000;
    std::vector<Unit> all = corpus_units(dir);
    std::vector<Unit> units;
    for (std::size_t i = 0; i < all.size(); ++i)
        if (i % shards == shard - 1) units.push_back(all[i]);
    const auto rel = [&](const std::string& p) { return fs::path(p).lexically_relative(dir).string(); };
    if (vm.count("list")) {
        for (const auto& u : units) fmt::print("{} {}\n", rel(u.object), u.program.empty() ? "-" : u.program);
        return 0;
    }
    const fs::path out = vm["out"].as<std::string>();
    std::error_code ec;
    fs::create_directories(out, ec);
    if (!fs::is_directory(out)) throw Error(ErrorCode::Io, fmt::format("--out: cannot create the directory '{}'", out.string()));
    const std::string exe = self_exe();
    std::vector<Row> rows;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < units.size(); ++k) {
        const Unit& u = units[k];
        Row row;
        row.unit = u;
        const auto u0 = std::chrono::steady_clock::now();
        if (!u.error.empty()) {
            row.verdict = "error";
            row.error = u.error;
        } else {
            std::string name = fs::path(u.object).stem().string() + "." + u.program;
            for (char& c : name)
                if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
            const fs::path udir = out / fmt::format("{:04}-{}", k + 1 + 0, name);
            fs::create_directories(udir, ec);
            const std::string summary = (udir / "summary.json").string();
            fs::remove(summary, ec);
            std::vector<std::string> args{exe, "fuzz", u.object, "--prog", u.program, "--summary-json", summary, "--no-verify",
                                          "-artifact_prefix=" + (udir / "").string()};
            if (runs) args.push_back(fmt::format("-runs={}", runs));
            if (per_prog) args.push_back(fmt::format("-max_total_time={}", per_prog));
            if (!has_flag(cmd.flags, "seed")) args.push_back("-seed=1");   // the same table for the same corpus
            for (const char* o : {"btf"})
                if (auto v = vm[o].as<std::string>(); !v.empty()) args.insert(args.end(), {std::string("--") + o, v});
            if (vm.count("no-jit")) args.push_back("--no-jit");
            if (!vm["budget"].defaulted()) args.insert(args.end(), {"--budget", std::to_string(vm["budget"].as<uint64_t>())});
            args.insert(args.end(), cmd.flags.begin(), cmd.flags.end());
            const int rc = run_child(args, (udir / "log.txt").string(), per_prog ? double(per_prog) + 60 : 600);
            std::ifstream sf(summary);
            nlohmann::json j;
            if (sf) {
                try {
                    sf >> j;
                } catch (const nlohmann::json::exception&) {
                    j = nullptr;
                }
            }
            if (j.is_object()) {
                row.verdict = j.value("verdict", "?");
                row.runs = j.value("runs", uint64_t{0});
                row.covered = j.value("covered", std::size_t{0});
                row.insns = j.value("instructions", std::size_t{0});
                if (!j["finding"].is_null()) row.finding = j["finding"];
            } else {
                // The child's own words: the last line of its log that says what went wrong, or
                // libFuzzer's, when bpfsim itself crashed (a bug of bpfsim's, with a reproducer).
                std::ifstream lf(udir / "log.txt");
                std::string line, last, artifact;
                bool crashed = false;
                while (std::getline(lf, line)) {
                    if (line.starts_with("bpfsim fuzz") && line.find(" instructions; input: ") == std::string::npos) last = line;
                    if (line.find("ERROR: libFuzzer: deadly signal") != std::string::npos) crashed = true;
                    if (auto at = line.find("Test unit written to "); at != std::string::npos) artifact = line.substr(at + 21);
                }
                if (crashed) {
                    row.verdict = "crash";
                    row.finding = nlohmann::json{{"kind", "bpfsim crashed"}, {"message", "bpfsim itself died of a signal running this program (see log.txt)"},
                                                 {"source", ""}, {"pc", nullptr}, {"reproducer", artifact}};
                } else {
                    row.verdict = "error";
                    row.error = rc == -2 ? "timed out" : !last.empty() ? last : fmt::format("exit status {}", rc);
                }
            }
        }
        row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - u0).count();
        fmt::print(stderr, "[{}/{}] {} {}: {}{}{} ({:.1f} s)\n", k + 1, units.size(), rel(u.object), u.program.empty() ? "-" : u.program, row.verdict,
                   row.verdict == "error" ? ": " + row.error : fmt::format(", {} runs, {:.0f}% covered", row.runs, row.insns ? 100.0 * double(row.covered) / double(row.insns) : 0.0),
                   row.finding ? ", FINDING: " + (*row.finding)["kind"].get<std::string>() : "", row.seconds);
        rows.push_back(std::move(row));
    }
    // The table.
    std::size_t wo = 6, wp = 7, wt = 4;
    for (const auto& r : rows) {
        wo = std::max(wo, rel(r.unit.object).size());
        wp = std::max(wp, r.unit.program.size());
        wt = std::max(wt, r.unit.type.size());
    }
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<8}  {:>7}  {:>8}  {}\n", "object", wo, "program", wp, "type", wt, "verdict", "runs", "covered", "findings");
    std::size_t accepted = 0, rejected = 0, errors = 0, crashes = 0, findings = 0, findings_accepted = 0;
    for (const auto& r : rows) {
        const std::string cov = r.insns ? fmt::format("{:.1f}%", 100.0 * double(r.covered) / double(r.insns)) : "-";
        std::string what = r.finding ? (*r.finding)["kind"].get<std::string>() : r.verdict == "error" ? "error: " + r.error : "-";
        fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<8}  {:>7}  {:>8}  {}\n", rel(r.unit.object), wo, r.unit.program.empty() ? "-" : r.unit.program, wp,
                   r.unit.type.empty() ? "-" : r.unit.type, wt, r.verdict, r.runs, cov, what);
        if (r.verdict == "accepted") ++accepted;
        else if (r.verdict == "rejected") ++rejected;
        else if (r.verdict == "crash") ++crashes;
        else ++errors;
        if (r.finding) {
            ++findings;
            if (r.verdict != "rejected") ++findings_accepted;
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("{} programs: {} accepted, {} rejected by the verifier model, {} errors{}; {} findings ({} in accepted programs); {:.1f} s\n", rows.size(),
               accepted, rejected, errors, crashes ? fmt::format(", {} bpfsim crashes", crashes) : "", findings, findings_accepted, secs);
    for (const auto& r : rows)
        if (r.finding) {
            const auto& f = *r.finding;
            fmt::print("finding in {} {} ({}): {}: {}\n  source: {}\n  reproducer: {}\n", rel(r.unit.object), r.unit.program, r.verdict,
                       f["kind"].get<std::string>(), f["message"].get<std::string>(),
                       f["source"].get<std::string>().empty() ? "(no line info)" : f["source"].get<std::string>(), f.value("reproducer", ""));
        }
    return findings_accepted ? 1 : 0;
}

}  // namespace

int cmd_fuzz(const std::vector<std::string>& args) {
    FuzzCommand cmd = split_args(args);
    bool help = false;
    const po::variables_map vm = parse_ours(cmd.ours, &help);
    if (help) {
        std::cout << kUsage << fuzz_options() << "\n";
        return 0;
    }
    if (!vm["corpus-of-programs"].as<std::string>().empty()) return fuzz_corpus(vm, cmd);
    for (const char* o : {"out"})
        if (!vm[o].defaulted()) throw Error(ErrorCode::Usage, fmt::format("fuzz: --{} goes with --corpus-of-programs", o));
    if (vm.count("list")) throw Error(ErrorCode::Usage, "fuzz: --list goes with --corpus-of-programs");
    return fuzz_one(vm, std::move(cmd));
}

// A libFuzzer job (-jobs, -workers, -fork): argv is libFuzzer's, bpfsim's options are in the environment.
int fuzz_child(int argc, char** argv) {
    try {
        const auto ours = nlohmann::json::parse(std::getenv(kChildEnv)).get<std::vector<std::string>>();
        bool help = false;
        const po::variables_map vm = parse_ours(ours, &help);
        static Session s;
        s.child = true;
        std::vector<std::string> flags;
        for (int i = 1; i < argc; ++i)
            if (argv[i][0] == '-') flags.emplace_back(argv[i]);
        if (int rc = prepare(s, vm, flags)) return rc;
        return drive(s, std::vector<std::string>(argv, argv + argc));
    } catch (const Error& e) {
        std::cerr << "bpfsim fuzz (job): " << e.describe() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "bpfsim fuzz (job): " << e.what() << "\n";
        return 2;
    }
}

void add_replay_options(po::options_description& d) {
    d.add_options()("input", po::value<std::string>(), "object programs: replay an input file `bpfsim fuzz` saved (a reproducer), decoded as it was");
    po::options_description t;
    add_target_options(t);
    for (const auto& o : t.options())
        if (o->long_name() != "prog" && o->long_name() != "no-verify") d.add(o);
}

// `bpfsim run OBJ --prog P --input FILE`: the input decoded and run exactly as the fuzzer did, in
// fresh worlds; the finding (if any) reported as the fuzzer reports it. Exit 1 with a finding.
int fuzz_replay(const po::variables_map& vm, const std::string& object) {
    const std::string file = vm["input"].as<std::string>();
    std::ifstream f(file, std::ios::binary);
    if (!f) {
        Location loc;
        loc.file = file;
        throw Error(ErrorCode::Io, "--input: cannot open file", loc);
    }
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Setup su;
    if (int rc = set_up(su, "run", object, vm, vm["budget"].as<uint64_t>())) return rc;
    const harness::FuzzRun r = su.target->replay(bytes);
    const auto& res = r.run.result;
    if (res.trap) fmt::print("{}: trap: {}\n", su.program, res.trap->message);
    else fmt::print("{}: return {} ({})\n", su.program, static_cast<int64_t>(res.r0), harness::describe_return(su.obj->find_program(su.program)->type, res.r0));
    fmt::print("{} instructions\n", res.insns);
    if (!r.run.trace.empty()) {
        fmt::print("trace_pipe:\n");
        for (const auto& t : r.run.trace) {
            std::string line = harness::trace_pipe_line(t);
            if (!line.empty() && line.back() == '\n') line.pop_back();
            fmt::print("{}\n", line);
        }
    }
    if (!r.finding) {
        fmt::print("no finding\n");
        return 0;
    }
    std::fflush(stdout);
    print_finding(stdout, su, *r.finding, bytes.size());
    return 1;
}

}  // namespace bpfsim
