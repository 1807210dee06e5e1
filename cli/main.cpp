// bpfsim: command-line front end, bpftool style: `bpfsim <verb> [options]`.
#include "cli/inputs.hpp"
#include "harness/harness.hpp"
#include "verifier/scenario_verifier.hpp"
#include "vm/vm.hpp"

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::cli;
namespace bpfsim { int cmd_btf(const std::vector<std::string>& args); }   // cli/cmd_btf.cpp
namespace bpfsim { int cmd_test(const std::vector<std::string>& args); }  // cli/cmd_test.cpp
namespace bpfsim { int cmd_kernel_verify(const std::vector<std::string>& args); }  // cli/cmd_kernel_verify.cpp
namespace bpfsim { int cmd_verify(const std::vector<std::string>& args); }  // cli/cmd_verify.cpp
namespace bpfsim { int cmd_bench(const std::vector<std::string>& args); }  // cli/cmd_bench.cpp
namespace bpfsim {   // cli/cmd_fuzz.cpp
int cmd_fuzz(const std::vector<std::string>& args);
int fuzz_child(int argc, char** argv);
void add_replay_options(boost::program_options::options_description& d);
int fuzz_replay(const boost::program_options::variables_map& vm, const std::string& object);
}

namespace {

struct Verb {
    std::string summary;
    std::function<int(const std::vector<std::string>&)> run;
};

// Parses args for one verb; prints help and returns nullopt on --help.
std::optional<po::variables_map> parse(const std::string& verb, const std::string& usage, po::options_description opts,
                                       const po::positional_options_description& pos,
                                       const std::vector<std::string>& args) {
    opts.add_options()("help,h", "show this help");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim " << verb << " " << usage << "\n\n" << opts << "\n";
        return std::nullopt;
    }
    po::notify(vm);
    return vm;
}

vm::RunOptions run_options(const po::variables_map& vm) {
    vm::RunOptions o;
    o.budget = vm["budget"].as<uint64_t>();
    const auto d = vm["dispatch"].as<std::string>();
    if (d == "threaded") o.dispatch = vm::Dispatch::Threaded;
    else if (d == "switch") o.dispatch = vm::Dispatch::Switch;
    else throw Error(ErrorCode::Usage, fmt::format("--dispatch must be 'threaded' or 'switch', not '{}'", d));
    return o;
}

void add_run_options(po::options_description& d) {
    d.add_options()
        ("budget", po::value<uint64_t>()->default_value(1'000'000), "instruction budget (0: unlimited)")
        ("dispatch", po::value<std::string>()->default_value("threaded"), "interpreter dispatch: threaded|switch")
        ("engine", po::value<std::string>()->default_value("auto"),
         "auto (the JIT when the verifier model accepted the program, else the interpreter), interp, or jit (the x86-64 JIT, checked: the same results)");
}

harness::Engine engine_option(const po::variables_map& vm) {
    const auto e = vm["engine"].as<std::string>();
    if (e == "interp") return harness::Engine::Interpreter;
    if (e == "jit") return harness::Engine::Jit;
    if (e == "auto") return harness::Engine::Auto;
    throw Error(ErrorCode::Usage, fmt::format("--engine must be 'auto', 'interp' or 'jit', not '{}'", e));
}

std::vector<fs::path> data_files(const std::vector<std::string>& inputs) {
    std::vector<fs::path> files;
    for (const auto& in : inputs) {
        fs::path p(in);
        if (fs::is_directory(p)) {
            for (const auto& e : fs::directory_iterator(p))
                if (e.path().extension() == ".data") files.push_back(e.path());
        } else if (fs::exists(p)) {
            files.push_back(p);
        } else {
            Location loc;
            loc.file = in;
            throw Error(ErrorCode::Io, "no such file or directory", loc);
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

// ── verbs ───────────────────────────────────────────────────────────────────

int cmd_conformance(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("paths", po::value<std::vector<std::string>>()->multitoken(), "directories of .data files, or files")
        ("verbose,v", "print every test, not only failures");
    add_run_options(d);
    po::positional_options_description pos;
    pos.add("paths", -1);
    auto vm = parse("conformance", "DIR|FILE...", d, pos, args);
    if (!vm) return 0;
    if (!vm->count("paths")) throw Error(ErrorCode::Usage, "conformance: give a directory of .data files");
    auto opts = run_options(*vm);
    const auto files = data_files((*vm)["paths"].as<std::vector<std::string>>());
    std::size_t passed = 0, failed = 0;
    for (const auto& f : files) {
        auto c = harness::parse_conformance(f);
        harness::ConformanceOutcome o;
        if (!c) o.detail = c.error().describe();
        else o = harness::run_conformance(*c, opts);
        if (o.passed) {
            ++passed;
            if (vm->count("verbose")) fmt::print("PASS {}\n", f.filename().string());
        } else {
            ++failed;
            fmt::print("FAIL {}: {}\n", f.filename().string(), o.detail);
        }
    }
    fmt::print("{} passed, {} failed\n", passed, failed);
    return failed ? 1 : 0;
}

// The bpf_conformance plugin protocol: program bytes as hex on stdin, input memory as
// hex in argv[1], r0 in hex on stdout; on error, the text on stderr and a non-zero exit.
int cmd_conformance_plugin(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("memory", po::value<std::string>()->default_value(""), "input memory as hex bytes")
        ("plugin-options", po::value<std::string>()->default_value(""), "options from the runner (ignored)");
    add_run_options(d);
    po::positional_options_description pos;
    pos.add("memory", 1).add("plugin-options", 1);
    auto vm = parse("conformance-plugin", "[MEMORY_HEX] [OPTIONS] < PROGRAM_HEX", d, pos, args);
    if (!vm) return 0;
    auto opts = run_options(*vm);
    std::string program_hex((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto bytes = parse_hex_bytes(program_hex, "program");
    auto mem = parse_hex_bytes((*vm)["memory"].as<std::string>(), "memory");
    if (bytes.size() % 8) throw Error(ErrorCode::InvalidInsn, fmt::format("program is {} bytes, not a multiple of 8", bytes.size()));
    std::vector<vm::Insn> insns(bytes.size() / 8);
    std::memcpy(insns.data(), bytes.data(), bytes.size());
    auto r = harness::run_raw(insns, mem, opts);
    if (!r) {
        std::cerr << r.error().describe() << "\n";
        return 1;
    }
    if (r->trap) {
        std::cerr << r->trap->message << "\n";
        return 1;
    }
    fmt::print("{:x}\n", r->r0);
    return 0;
}

int cmd_disasm(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object, .data, assembly or raw file")
        ("prog,p", po::value<std::string>()->default_value(""), "program (function or section) in an ELF object")
        ("format", po::value<std::string>()->default_value("auto"), "input format: auto|elf|data|asm|raw")
        ("syntax", po::value<std::string>()->default_value("llvm"), "output syntax: llvm|conformance")
        ("no-helper-names", "print helper calls by number");
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("disasm", "FILE [--prog NAME]", d, pos, args);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "disasm: give a file");
    auto prog = load_program((*vm)["input"].as<std::string>(), (*vm)["prog"].as<std::string>(), (*vm)["format"].as<std::string>());
    vm::DisasmOptions o;
    const auto syn = (*vm)["syntax"].as<std::string>();
    if (syn == "conformance") o.syntax = vm::Syntax::Conformance;
    else if (syn != "llvm") throw Error(ErrorCode::Usage, "--syntax must be llvm or conformance");
    o.helper_names = !vm->count("no-helper-names");
    std::cout << vm::disassemble_program(prog.insns, o);
    auto dec = vm::decode(prog.insns, {prog.file, prog.section});
    if (!dec) {
        std::cerr << "warning: " << dec.error().describe() << "\n";
        return 1;
    }
    return 0;
}

int cmd_asm(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "assembly file (bpf_conformance syntax), - for stdin")
        ("output,o", po::value<std::string>()->default_value(""), "write raw little-endian bytes here (default: hex to stdout)");
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("asm", "FILE [-o OUT]", d, pos, args);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "asm: give a file");
    const auto in = (*vm)["input"].as<std::string>();
    std::stringstream ss;
    if (in == "-") ss << std::cin.rdbuf();
    else {
        std::ifstream f(in);
        if (!f) {
            Location loc;
            loc.file = in;
            throw Error(ErrorCode::Io, "cannot open file", loc);
        }
        ss << f.rdbuf();
    }
    auto a = vm::assemble(ss.str(), in);
    if (!a) throw a.error();
    auto dec = vm::decode(*a, {in, ""});
    if (!dec) throw dec.error();
    const auto out = (*vm)["output"].as<std::string>();
    if (out.empty()) {
        for (const auto& i : *a) fmt::print("0x{:016x}\n", i.raw());
    } else {
        std::ofstream f(out, std::ios::binary);
        f.write(reinterpret_cast<const char*>(a->data()), static_cast<std::streamsize>(a->size() * 8));
        if (!f) throw Error(ErrorCode::Io, fmt::format("cannot write '{}'", out));
    }
    return 0;
}

std::string hex_bytes(const std::vector<uint8_t>& b, std::size_t per_line = 16, const std::string& indent = "  ") {
    std::string out;
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (i % per_line == 0) out += (i ? "\n" : "") + indent;
        else out += ' ';
        out += fmt::format("{:02x}", b[i]);
    }
    return out;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) o += fmt::format("\\u{:04x}", int(c));
            else o += c;
        }
    }
    return o;
}

using Snapshot = std::vector<std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>>;

Snapshot snapshot(harness::World& w) {
    Snapshot s;
    for (std::size_t i = 0; i < w.object().maps().size(); ++i) {
        harness::Map* m = w.map_at(i);
        s.push_back(m ? harness::dump_map(*m, w.options().ncpus) : decltype(s)::value_type{});
    }
    return s;
}

// Runs a program of an ELF object in a World: packet types get --packet, others --ctx.
int run_object(const po::variables_map& vm, const vm::RunOptions& opts) {
    const auto path = vm["file"].as<std::string>();
    auto obj = harness::Object::open(path);
    if (!obj) throw obj.error();
    const std::string name = program_name(*obj, vm["prog"].as<std::string>(), path);
    const harness::ProgramDef* def = obj->find_program(name);
    if (!def) {
        auto l = obj->link(name);
        throw l.error();
    }
    harness::WorldOptions wo = world_options(vm);
    wo.engine = engine_option(vm);
    if (!vm.count("no-verify")) {
        // The kernel would refuse to load a program its verifier rejects: so does run, by the
        // verifier model's verdict (bpfsim verify), unless told not to.
        auto verdict = verifier::scenario_verifier()(*obj, name, wo);
        if (!verdict) throw verdict.error();
        if (!verdict->accepted) {
            fmt::print(stderr, "bpfsim run: the verifier model rejects '{}' at pc {}: {}\n{}", name, verdict->pc, verdict->message,
                       verdict->source_line.empty() ? "" : "  " + verdict->source_line + "\n");
            fmt::print(stderr, "(the kernel would not load it; `bpfsim verify {} --prog {} --log-level 2` shows why, --no-verify runs it anyway)\n",
                       path, name);
            return 1;
        }
    }
    auto world = harness::World::create(*obj, wo);
    if (!world) throw world.error();
    harness::World& w = **world;
    if (!vm.count("no-verify")) w.mark_verified(name);   // accepted above: Engine::Auto runs the JIT
    prepare_world(w, vm);
    const bool packet_type = harness::ctx_kind(def->type) == harness::CtxKind::XdpMd || harness::ctx_kind(def->type) == harness::CtxKind::SkBuff;
    const std::vector<uint8_t> packet = packet_input(vm);
    std::vector<uint8_t> ctx;
    // Input memory instead of a context (r1 = pointer, r2 = length), as for bare programs.
    std::vector<uint8_t> mem = input_memory(vm);   // the program may write it
    if (!mem.empty()) {
        if (packet_type) throw Error(ErrorCode::Usage, fmt::format("program '{}' takes a packet (--packet), not --mem", def->name));
        auto interp = w.compiled(def->name);
        if (!interp) throw interp.error();
        w.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        const uint64_t repeat = std::max<uint64_t>(1, vm["repeat"].as<uint64_t>());
        vm::RunResult r;
        const auto t0 = std::chrono::steady_clock::now();
        for (uint64_t i = 0; i < repeat && !r.trap; ++i) {
            auto rr = w.run_args(def->name, {reinterpret_cast<uint64_t>(mem.data()), mem.size(), 0, 0, 0}, opts);
            if (!rr) throw rr.error();
            r = std::move(*rr);
        }
        const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(repeat);
        if (r.trap) fmt::print("{}: trap: {}\n", def->name, r.trap->message);
        else fmt::print("{}: r0 = {} ({:#x})\n", def->name, r.r0, r.r0);
        fmt::print("{} instructions", r.insns);
        if (repeat > 1) fmt::print(", {:.1f} ns/run, {:.2f} ns/insn", ns, r.insns ? ns / double(r.insns) : 0.0);
        fmt::print("\n");
        return r.trap ? 2 : 0;
    }
    if (packet_type && packet.empty())
        throw Error(ErrorCode::Usage, fmt::format("program '{}' ({}) needs --packet HEX|FILE|pcap:FILE", def->name, harness::to_string(def->type)));
    if (!packet_type) {
        const harness::ContextSpec spec = context_spec(vm);
        auto built = harness::build_context(def->type, def->attach, spec, w.options(), w.has_kernel() ? &w.kernel() : nullptr);
        if (!built) throw built.error();
        ctx = std::move(built.value());
    } else if (!vm["arg"].as<std::vector<std::string>>().empty() || !vm["field"].as<std::vector<std::string>>().empty()) {
        throw Error(ErrorCode::Usage, fmt::format("program '{}' takes a packet; --arg and --field are for tracing contexts", def->name));
    }
    const uint64_t repeat = std::max<uint64_t>(1, vm["repeat"].as<uint64_t>());
    const Snapshot before = snapshot(w);
    harness::ProgramRun run;
    // Records written to ring buffers and perf event arrays, in map order, each map's in order.
    struct Record {
        std::string map;
        int cpu;   // perf: the CPU it was written on; ringbuf: -1
        std::vector<uint8_t> data;
    };
    std::vector<Record> records;
    auto collect = [&] {
        for (std::size_t i = 0; i < obj->maps().size(); ++i) {
            harness::Map* m = w.map_at(i);
            if (auto* rb = dynamic_cast<harness::RingbufMap*>(m))
                for (auto& r : rb->drain()) records.push_back({obj->maps()[i].name, -1, std::move(r)});
            if (auto* pe = dynamic_cast<harness::PerfEventArrayMap*>(m)) {
                for (const auto& r : pe->records()) records.push_back({obj->maps()[i].name, static_cast<int>(r.cpu), r.data});
                pe->clear_records();
            }
        }
    };
    if (auto c = w.compiled(def->name); !c) throw c.error();   // compile outside the timing
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < repeat; ++i) {
        auto r = packet_type ? w.run_packet(def->name, packet, opts) : w.run_ctx(def->name, ctx, opts);
        if (!r) throw r.error();
        run = std::move(r.value());
        records.clear();   // only the last run's records are shown
        collect();
        if (run.result.trap) break;
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(repeat);
    const Snapshot after = snapshot(w);
    const std::string meaning = harness::describe_return(def->type, run.result.r0);
    // Per changed map: entries added or changed, and keys deleted.
    struct MapChange {
        std::string name;
        std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> set;
        std::vector<std::vector<uint8_t>> deleted;
    };
    std::vector<MapChange> changes;
    for (std::size_t i = 0; i < after.size(); ++i) {
        if (after[i] == before[i]) continue;
        MapChange c{obj->maps()[i].name, {}, {}};
        for (const auto& [k, v] : after[i]) {
            auto old = std::find_if(before[i].begin(), before[i].end(), [&k = k](const auto& e) { return e.first == k; });
            if (old == before[i].end() || old->second != v) c.set.emplace_back(k, v);
        }
        for (const auto& [k, v] : before[i])
            if (std::none_of(after[i].begin(), after[i].end(), [&k = k](const auto& e) { return e.first == k; })) c.deleted.push_back(k);
        changes.push_back(std::move(c));
    }
    if (vm.count("json")) {
        nlohmann::ordered_json j;
        j["program"] = def->name;
        j["type"] = std::string(harness::to_string(def->type));
        j["r0"] = run.result.r0;
        j["meaning"] = meaning;
        j["insns"] = run.result.insns;
        j["ns_per_run"] = std::round(ns * 10) / 10;
        j["trap"] = run.result.trap ? nlohmann::ordered_json(run.result.trap->message) : nlohmann::ordered_json(nullptr);
        if (packet_type) j["packet"] = hex_bytes(run.packet, 1u << 30, "");
        if (run.redirected) j["redirect"] = run.redirect_ifindex;
        j["trace"] = nlohmann::ordered_json::array();
        for (const auto& t : run.trace) j["trace"].push_back(t.message);
        j["records"] = nlohmann::ordered_json::array();
        for (const auto& r : records) {
            nlohmann::ordered_json e{{"map", r.map}, {"data", hex_bytes(r.data, 1u << 30, "")}};
            if (r.cpu >= 0) e["cpu"] = r.cpu;
            j["records"].push_back(std::move(e));
        }
        j["maps_changed"] = nlohmann::ordered_json::array();
        for (const auto& c : changes) {
            nlohmann::ordered_json e{{"map", c.name}, {"set", nlohmann::ordered_json::array()}, {"deleted", nlohmann::ordered_json::array()}};
            for (const auto& [k, v] : c.set) e["set"].push_back({{"key", hex_bytes(k, 1u << 30, "")}, {"value", hex_bytes(v, 1u << 30, "")}});
            for (const auto& k : c.deleted) e["deleted"].push_back(hex_bytes(k, 1u << 30, ""));
            j["maps_changed"].push_back(std::move(e));
        }
        fmt::print("{}\n", j.dump());
    } else {
        if (run.result.trap) fmt::print("{}: trap: {}\n", def->name, run.result.trap->message);
        else fmt::print("{}: return {} ({})\n", def->name, static_cast<int64_t>(run.result.r0), meaning);
        fmt::print("{} instructions", run.result.insns);
        if (repeat > 1) fmt::print(", {:.1f} ns/run", ns);
        fmt::print("\n");
        if (run.redirected) fmt::print("redirect: {}\n", run.redirect_ifindex);
        if (packet_type && run.packet != packet) fmt::print("packet after ({} bytes):\n{}\n", run.packet.size(), hex_bytes(run.packet));
        if (!run.trace.empty()) {
            fmt::print("trace_pipe:\n");
            for (const auto& t : run.trace) {
                std::string line = harness::trace_pipe_line(t);
                if (!line.empty() && line.back() == '\n') line.pop_back();
                fmt::print("{}\n", line);
            }
        }
        for (const auto& r : records) {
            if (r.cpu >= 0) fmt::print("record in {} (cpu {}, {} bytes):\n{}\n", r.map, r.cpu, r.data.size(), hex_bytes(r.data));
            else fmt::print("record in {} ({} bytes):\n{}\n", r.map, r.data.size(), hex_bytes(r.data));
        }
        for (const auto& c : changes) {
            fmt::print("map {} changed:\n", c.name);
            for (const auto& [k, v] : c.set) fmt::print("  key: {}  value: {}\n", hex_bytes(k, 1u << 30, ""), hex_bytes(v, 1u << 30, ""));
            for (const auto& k : c.deleted) fmt::print("  key: {}  deleted\n", hex_bytes(k, 1u << 30, ""));
        }
    }
    return run.result.trap ? 2 : 0;
}

int cmd_run(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("file", po::value<std::string>(), "ELF object, .data, assembly or raw file")
        ("prog,p", po::value<std::string>()->default_value(""), "program (function or section) in an ELF object")
        ("format", po::value<std::string>()->default_value("auto"), "input format: auto|elf|data|asm|raw")
        ("repeat", po::value<uint64_t>()->default_value(1), "run N times and report the time per run")
        ("json", "print the result as JSON")
        ("no-verify", "run an object's program even when the verifier model rejects it");
    add_input_options(d);
    add_run_options(d);
    add_replay_options(d);   // --input REPRODUCER and what decodes it (cli/cmd_fuzz.cpp)
    po::positional_options_description pos;
    pos.add("file", 1);
    auto vm = parse("run", "FILE [--prog NAME] [--packet HEX|FILE] [--mem HEX] [--input REPRODUCER]", d, pos, args);
    if (!vm) return 0;
    if (!vm->count("file")) throw Error(ErrorCode::Usage, "run: give a file");
    auto opts = run_options(*vm);
    const auto input = (*vm)["file"].as<std::string>();
    const auto format = (*vm)["format"].as<std::string>();
    if (vm->count("input")) {
        if (!is_elf(input)) throw Error(ErrorCode::Usage, fmt::format("run --input replays a `bpfsim fuzz` input for a program of an ELF object; '{}' is none", input));
        return fuzz_replay(*vm, input);
    }
    if (format == "elf" || (format == "auto" && is_elf(input))) return run_object(*vm, opts);
    auto prog = load_program(input, (*vm)["prog"].as<std::string>(), format);
    std::vector<uint8_t> mem = input_memory(*vm);
    auto interp = vm::Interpreter::compile(prog, vm::conformance_helpers());
    if (!interp) throw interp.error();
    std::optional<vm::Jit> jit;
    if (engine_option(*vm) == harness::Engine::Jit) {
        auto j = vm::Jit::compile(prog, vm::conformance_helpers());
        if (!j) throw j.error();
        jit.emplace(std::move(j.value()));
    }
    const uint64_t repeat = std::max<uint64_t>(1, (*vm)["repeat"].as<uint64_t>());
    vm::RunResult r;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < repeat; ++i) {
        std::vector<uint8_t> m = mem;
        vm::Env env;
        if (!m.empty()) env.mem.add(m.data(), m.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        const std::array<uint64_t, 5> args{m.empty() ? 0 : reinterpret_cast<uint64_t>(m.data()), m.size(), 0, 0, 0};
        r = jit ? jit->run(env, args, opts) : interp->run(env, args, opts);
        if (r.trap) break;
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(repeat);
    if (vm->count("json")) {
        fmt::print("{{\"program\": \"{}\", \"r0\": {}, \"insns\": {}, \"ns_per_run\": {:.1f}, \"trap\": {}}}\n", json_escape(prog.name), r.r0,
                   r.insns, ns, r.trap ? fmt::format("\"{}\"", json_escape(r.trap->message)) : "null");
    } else {
        if (r.trap) fmt::print("{}: trap: {}\n", prog.name, r.trap->message);
        else fmt::print("{}: r0 = {} ({:#x})\n", prog.name, r.r0, r.r0);
        fmt::print("{} instructions", r.insns);
        if (repeat > 1) fmt::print(", {:.1f} ns/run, {:.2f} ns/insn", ns, r.insns ? ns / double(r.insns) : 0.0);
        fmt::print("\n");
    }
    return r.trap ? 2 : 0;
}

// `prog list OBJ` / `map list OBJ` / `map dump OBJ [--map NAME]`, bpftool style.
int cmd_prog(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: bpfsim prog list OBJ\n";
        return args.empty() ? 2 : 0;
    }
    if (args[0] != "list") throw Error(ErrorCode::Usage, fmt::format("prog: unknown sub-verb '{}' (try 'prog list OBJ')", args[0]));
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object");
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("prog list", "OBJ", d, pos, rest);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "prog list: give an object file");
    auto obj = harness::Object::open((*vm)["input"].as<std::string>());
    if (!obj) throw obj.error();
    for (const auto& p : obj->programs())
        fmt::print("{:<32} {:<18} section {:<36} {} insns\n", p.name, harness::to_string(p.type), p.section, p.count);
    return 0;
}

int cmd_map(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: bpfsim map list OBJ | bpfsim map dump OBJ [--map NAME]\n";
        return args.empty() ? 2 : 0;
    }
    const std::string sub = args[0];
    if (sub != "list" && sub != "dump") throw Error(ErrorCode::Usage, fmt::format("map: unknown sub-verb '{}' (list or dump)", sub));
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object")
        ("map,m", po::value<std::string>()->default_value(""), "dump only this map")
        ("json,j", "dump: JSON, {\"MAP\": [{\"key\": [...], \"value\": [...]}]} as bpftool prints entries");
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("map " + sub, "OBJ", d, pos, rest);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "map: give an object file");
    auto obj = harness::Object::open((*vm)["input"].as<std::string>());
    if (!obj) throw obj.error();
    if (sub == "list") {
        for (const auto& m : obj->maps())
            fmt::print("{:<32} {:<16} key {:>4}B  value {:>6}B  max_entries {:>8}  flags {:#x}{}\n", m.name, harness::to_string(m.type),
                       m.key_size, m.value_size, m.max_entries, m.flags, m.frozen ? "  frozen" : "");
        return 0;
    }
    auto world = harness::World::create(*obj);
    if (!world) throw world.error();
    const std::string only = (*vm)["map"].as<std::string>();
    bool found = only.empty();
    if (vm->count("json")) {   // {"MAP": [bpftool's entries]}: what run --map-init reads
        std::string out = "{";
        for (std::size_t i = 0; i < obj->maps().size(); ++i) {
            const auto& def = obj->maps()[i];
            harness::Map* m = (*world)->map_at(i);
            if ((!only.empty() && def.name != only) || !m) continue;
            found = true;
            out += fmt::format("{}\"{}\": {}", out.size() > 1 ? ", " : "", json_escape(def.name),
                               harness::map_dump_json(def, harness::dump_map(*m, (*world)->options().ncpus), (*world)->options().ncpus));
        }
        if (!found) throw Error(ErrorCode::NotFound, fmt::format("no map '{}'", only));
        fmt::print("{}}}\n", out);
        return 0;
    }
    for (std::size_t i = 0; i < obj->maps().size(); ++i) {
        const auto& def = obj->maps()[i];
        if (!only.empty() && def.name != only) continue;
        found = true;
        harness::Map* m = (*world)->map_at(i);
        fmt::print("map {} ({}):\n", def.name, harness::to_string(def.type));
        if (!m) {
            fmt::print("  (not created)\n");
            continue;
        }
        auto entries = harness::dump_map(*m, (*world)->options().ncpus);
        for (const auto& [k, v] : entries)
            fmt::print("key: {}  value: {}\n", hex_bytes(k, 1u << 30, ""), hex_bytes(v, 1u << 30, ""));
        fmt::print("Found {} element{}\n", entries.size(), entries.size() == 1 ? "" : "s");
    }
    if (!found) throw Error(ErrorCode::NotFound, fmt::format("no map '{}'", only));
    return 0;
}

const std::map<std::string, Verb>& verbs() {
    static const std::map<std::string, Verb> v = {
        {"conformance", {"run bpf_conformance .data tests", cmd_conformance}},
        {"conformance-plugin", {"bpf_conformance plugin protocol (program hex on stdin)", cmd_conformance_plugin}},
        {"disasm", {"disassemble a program", cmd_disasm}},
        {"asm", {"assemble bpf_conformance syntax", cmd_asm}},
        {"run", {"run a program in the interpreter", cmd_run}},
        {"prog", {"prog list OBJ: list an object's programs", cmd_prog}},
        {"map", {"map list|dump OBJ: an object's maps and their initial contents", cmd_map}},
        {"test", {"run scenarios (YAML): one line per step, then 'N passed, M failed'", cmd_test}},
        {"kernel-verify", {"the running kernel's verifier verdict and log for an object's programs (root); --corpus DIR: survey", cmd_kernel_verify}},
        {"verify", {"the verifier model's verdict (Linux 6.18 rules) for an object's programs, without root", cmd_verify}},
        {"fuzz", {"coverage-guided fuzzing of a program's input (libFuzzer): findings with the source line and a reproducer", cmd_fuzz}},
        {"bench", {"time a program in the interpreter and the JIT: ns/run, insns/run, helper share; --profile per source line", cmd_bench}},
        {"btf", {"btf dump FILE: BTF as bpftool prints it (raw, --json, --format c); btf record: minimal BTF for CO-RE", cmd_btf}},
    };
    return v;
}

void usage() {
    std::cout << "usage: bpfsim <verb> [options]   (bpfsim <verb> --help for each)\n\nverbs:\n";
    for (const auto& [name, v] : verbs()) std::cout << fmt::format("  {:<20} {}\n", name, v.summary);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (std::string(argv[1]) == "--version") {
        std::cout << "bpfsim 0.1.0\n";
        return 0;
    }
    // A libFuzzer job started by `bpfsim fuzz -jobs=N` (its argv is libFuzzer's flags).
    if (std::getenv("BPFSIM_FUZZ_CHILD") && !verbs().count(argv[1])) return bpfsim::fuzz_child(argc, argv);
    const std::string verb = argv[1];
    auto it = verbs().find(verb);
    if (it == verbs().end()) {
        std::cerr << "bpfsim: unknown verb '" << verb << "'\n";
        usage();
        return 2;
    }
    std::vector<std::string> args(argv + 2, argv + argc);
    try {
        return it->second.run(args);
    } catch (const Error& e) {
        std::cerr << "bpfsim " << verb << ": " << e.describe() << "\n";
        return e.code() == ErrorCode::Usage ? 2 : 1;
    } catch (const po::error& e) {
        std::cerr << "bpfsim " << verb << ": " << e.what() << " (see bpfsim " << verb << " --help)\n";
        return 2;
    } catch (const std::system_error& e) {
        // (a file system call refused: a name too long, a directory not readable)
        std::cerr << "bpfsim " << verb << ": " << io_error(e).describe() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "bpfsim " << verb << ": internal error (a bug in bpfsim, please report it): " << e.what() << "\n";
        return 1;
    }
}
