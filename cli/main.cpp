// bpfsim: command-line front end, bpftool style: `bpfsim <verb> [options]`.
#include "harness/harness.hpp"
#include "vm/vm.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
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
        ("dispatch", po::value<std::string>()->default_value("threaded"), "interpreter dispatch: threaded|switch");
}

std::vector<uint8_t> parse_hex_bytes(const std::string& text, const std::string& what) {
    std::vector<uint8_t> out;
    std::string digits;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X')) { ++i; continue; }
        if (std::isxdigit(static_cast<unsigned char>(c))) digits += c;
        else if (!std::isspace(static_cast<unsigned char>(c)) && c != ',' && c != ':')
            throw Error(ErrorCode::Usage, fmt::format("{}: '{}' is not a hex digit", what, c));
        if (!std::isxdigit(static_cast<unsigned char>(c)) && digits.size() % 2)
            throw Error(ErrorCode::Usage, fmt::format("{}: odd number of hex digits in a byte", what));
    }
    if (digits.size() % 2) throw Error(ErrorCode::Usage, fmt::format("{}: odd number of hex digits", what));
    for (std::size_t i = 0; i < digits.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
    return out;
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

// Reads instructions from an ELF object (with --prog), a .data file, assembly text or raw bytes.
vm::Program load_program(const std::string& input, const std::string& prog, const std::string& format) {
    fs::path p(input);
    std::string fmt_ = format;
    if (fmt_ == "auto") {
        std::ifstream f(p, std::ios::binary);
        if (!f) {
            Location loc;
            loc.file = input;
            throw Error(ErrorCode::Io, "cannot open file", loc);
        }
        char magic[4] = {};
        f.read(magic, 4);
        if (f.gcount() == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0) fmt_ = "elf";
        else if (p.extension() == ".data") fmt_ = "data";
        else if (p.extension() == ".s" || p.extension() == ".asm") fmt_ = "asm";
        else fmt_ = "raw";
    }
    vm::Program out;
    out.file = input;
    if (fmt_ == "elf") {
        auto elf = harness::ElfFile::open(p);
        if (!elf) throw elf.error();
        std::string name = prog;
        if (name.empty()) {
            auto progs = elf->programs();
            if (progs.empty()) {
                Location loc;
                loc.file = input;
                throw Error(ErrorCode::NotFound, "object has no programs", loc);
            }
            name = progs.front().name;
        }
        auto pr = elf->program(name);
        if (!pr) throw pr.error();
        return *pr;
    }
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (fmt_ == "data") {
        auto c = harness::parse_conformance_text(ss.str(), input);
        if (!c) throw c.error();
        if (!c->raw.empty())
            for (uint64_t w : c->raw) out.insns.push_back(vm::Insn::from_raw(w));
        else {
            auto a = vm::assemble(c->asm_text, input);
            if (!a) throw a.error();
            out.insns = *a;
        }
    } else if (fmt_ == "asm") {
        auto a = vm::assemble(ss.str(), input);
        if (!a) throw a.error();
        out.insns = *a;
    } else if (fmt_ == "raw") {
        const std::string s = ss.str();
        if (s.size() % 8) {
            Location loc;
            loc.file = input;
            throw Error(ErrorCode::InvalidInsn, fmt::format("raw program is {} bytes, not a multiple of 8", s.size()), loc);
        }
        out.insns.resize(s.size() / 8);
        std::memcpy(out.insns.data(), s.data(), s.size());
    } else {
        throw Error(ErrorCode::Usage, fmt::format("unknown --format '{}' (auto|elf|data|asm|raw)", fmt_));
    }
    out.name = fs::path(input).stem().string();
    return out;
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

int cmd_run(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object, .data, assembly or raw file")
        ("prog,p", po::value<std::string>()->default_value(""), "program (function or section) in an ELF object")
        ("format", po::value<std::string>()->default_value("auto"), "input format: auto|elf|data|asm|raw")
        ("mem", po::value<std::string>()->default_value(""), "input memory as hex bytes (r1 = pointer, r2 = length)")
        ("mem-file", po::value<std::string>()->default_value(""), "input memory from a file")
        ("repeat", po::value<uint64_t>()->default_value(1), "run N times and report the time per run")
        ("json", "print the result as JSON");
    add_run_options(d);
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("run", "FILE [--prog NAME] [--mem HEX]", d, pos, args);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "run: give a file");
    auto opts = run_options(*vm);
    auto prog = load_program((*vm)["input"].as<std::string>(), (*vm)["prog"].as<std::string>(), (*vm)["format"].as<std::string>());
    std::vector<uint8_t> mem = parse_hex_bytes((*vm)["mem"].as<std::string>(), "--mem");
    if (auto mf = (*vm)["mem-file"].as<std::string>(); !mf.empty()) {
        std::ifstream f(mf, std::ios::binary);
        if (!f) {
            Location loc;
            loc.file = mf;
            throw Error(ErrorCode::Io, "cannot open file", loc);
        }
        mem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    auto interp = vm::Interpreter::compile(prog, vm::conformance_helpers());
    if (!interp) throw interp.error();
    const uint64_t repeat = std::max<uint64_t>(1, (*vm)["repeat"].as<uint64_t>());
    vm::RunResult r;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < repeat; ++i) {
        std::vector<uint8_t> m = mem;
        vm::Env env;
        if (!m.empty()) env.mem.add(m.data(), m.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        r = interp->run(env, {m.empty() ? 0 : reinterpret_cast<uint64_t>(m.data()), m.size(), 0, 0, 0}, opts);
        if (r.trap) break;
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(repeat);
    if (vm->count("json")) {
        fmt::print("{{\"program\": \"{}\", \"r0\": {}, \"insns\": {}, \"ns_per_run\": {:.1f}, \"trap\": {}}}\n", prog.name, r.r0,
                   r.insns, ns, r.trap ? fmt::format("\"{}\"", r.trap->message) : "null");
    } else {
        if (r.trap) fmt::print("{}: trap: {}\n", prog.name, r.trap->message);
        else fmt::print("{}: r0 = {} ({:#x})\n", prog.name, r.r0, r.r0);
        fmt::print("{} instructions", r.insns);
        if (repeat > 1) fmt::print(", {:.1f} ns/run, {:.2f} ns/insn", ns, r.insns ? ns / double(r.insns) : 0.0);
        fmt::print("\n");
    }
    return r.trap ? 2 : 0;
}

int cmd_prog(const std::vector<std::string>& args) {
    if (args.empty() || (args[0] != "list" && args[0] != "help" && args[0] != "--help" && args[0] != "-h"))
        throw Error(ErrorCode::Usage, "prog: the verb is 'prog list OBJ'");
    if (args[0] != "list") {
        std::cout << "usage: bpfsim prog list OBJ\n";
        return 0;
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "ELF object");
    po::positional_options_description pos;
    pos.add("input", 1);
    auto vm = parse("prog list", "OBJ", d, pos, rest);
    if (!vm) return 0;
    if (!vm->count("input")) throw Error(ErrorCode::Usage, "prog list: give an object file");
    auto elf = harness::ElfFile::open((*vm)["input"].as<std::string>());
    if (!elf) throw elf.error();
    for (const auto& p : elf->programs())
        fmt::print("{:<32} section {:<32} {} insns\n", p.name, p.section, p.size / 8);
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
    }
}
