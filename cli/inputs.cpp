// Inputs of `bpfsim run` and `bpfsim bench` (cli/inputs.hpp).
#include "cli/inputs.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bpfsim::cli {

namespace fs = std::filesystem;

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

uint64_t parse_number(const std::string& text, const std::string& what) {
    const auto v = harness::parse_integer(text);
    if (!v) throw Error(ErrorCode::Usage, fmt::format("{}: '{}' is not a number", what, text));
    return *v;
}

bool is_elf(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    return f.gcount() == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
}

std::string program_name(const harness::Object& obj, const std::string& named, const std::string& path) {
    if (!named.empty()) return named;
    if (obj.programs().empty()) {
        Location loc;
        loc.file = path;
        throw Error(ErrorCode::NotFound, "object has no programs", loc);
    }
    return obj.programs().front().name;
}

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
        auto obj = harness::Object::open(p);
        if (!obj) throw obj.error();
        auto linked = obj->link(program_name(*obj, prog, input));
        if (!linked) throw linked.error();
        return linked->prog;
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

void add_input_options(po::options_description& d) {
    d.add_options()
        ("packet", po::value<std::string>()->default_value(""), "object programs: packet as hex, a raw file, or pcap:FILE[#N]")
        ("ctx", po::value<std::string>()->default_value(""), "object programs without packets: context bytes (hex or file)")
        ("seed", po::value<uint64_t>()->default_value(0), "seed of bpf_get_prandom_u32")
        ("mem", po::value<std::string>()->default_value(""), "raw programs: input memory as hex (r1 = pointer, r2 = length)")
        ("mem-file", po::value<std::string>()->default_value(""), "raw programs: input memory from a file")
        ("arg", po::value<std::vector<std::string>>()->default_value({}, "")->composing(),
         "tracing programs: the next argument (kprobe: di, si, dx, cx, r8, r9; fentry/raw_tp: args[]; sys_enter_*: args)")
        ("field", po::value<std::vector<std::string>>()->default_value({}, "")->composing(),
         "tracing programs: NAME=VALUE of a context field (a register, common_pid, ret, a tracepoint field by name, "
         "NAME[i], OFFSET:SIZE); text for char arrays, __data_loc strings and string arguments")
        ("map-init", po::value<std::string>()->default_value(""), "fill maps first from a JSON file ({\"MAP\": [{\"key\": .., \"value\": ..}]})")
        ("kconfig", po::value<std::vector<std::string>>()->default_value({}, "")->composing(), "CONFIG_NAME=VALUE for __kconfig externs")
        ("ncpus", po::value<unsigned>()->default_value(1), "CPUs of per-CPU maps")
        ("task", po::value<std::string>()->default_value(""), "PID:COMM: a task in kernel memory (needs --btf) that becomes current")
        ("btf", po::value<std::string>()->default_value(""), "the kernel's BTF (raw, or an ELF's .BTF): CO-RE target and kernel object layout");
}

std::vector<uint8_t> input_memory(const po::variables_map& vm) {
    std::vector<uint8_t> mem = parse_hex_bytes(vm["mem"].as<std::string>(), "--mem");
    if (auto mf = vm["mem-file"].as<std::string>(); !mf.empty()) {
        std::ifstream f(mf, std::ios::binary);
        if (!f) {
            Location loc;
            loc.file = mf;
            throw Error(ErrorCode::Io, "cannot open file", loc);
        }
        mem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    return mem;
}

harness::WorldOptions world_options(const po::variables_map& vm) {
    harness::WorldOptions wo;
    wo.seed = vm["seed"].as<uint64_t>();
    wo.ncpus = std::max(1u, vm["ncpus"].as<unsigned>());
    if (auto b = vm["btf"].as<std::string>(); !b.empty()) {
        auto k = harness::load_kernel_btf(b);
        if (!k) throw k.error();
        wo.kernel_btf = *k;
    }
    for (const auto& kv : vm["kconfig"].as<std::vector<std::string>>()) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw Error(ErrorCode::Usage, fmt::format("--kconfig '{}': write NAME=VALUE", kv));
        wo.kconfig[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return wo;
}

void prepare_world(harness::World& w, const po::variables_map& vm) {
    if (auto t = vm["task"].as<std::string>(); !t.empty()) {   // PID:COMM becomes the current task
        const auto colon = t.find(':');
        harness::TaskSpec ts;
        ts.pid = static_cast<uint32_t>(parse_number(t.substr(0, colon), "--task"));
        if (colon != std::string::npos) ts.comm = t.substr(colon + 1);
        auto task = w.add_task(ts);
        if (!task) throw task.error();
        w.current_task = *task;
    }
    if (auto mi = vm["map-init"].as<std::string>(); !mi.empty()) {
        auto n = harness::load_map_init(w, mi);
        if (!n) throw n.error();
    }
}

std::vector<uint8_t> packet_input(const po::variables_map& vm) {
    if (auto p = vm["packet"].as<std::string>(); !p.empty()) {
        auto r = harness::read_packet(p);
        if (!r) throw r.error();
        return *r;
    }
    return {};
}

harness::ContextSpec context_spec(const po::variables_map& vm) {
    harness::ContextSpec spec;
    if (auto c = vm["ctx"].as<std::string>(); !c.empty()) {
        auto r = harness::read_packet(c);
        if (!r) throw r.error();
        spec.raw = *r;
    }
    for (const auto& a : vm["arg"].as<std::vector<std::string>>()) spec.args.push_back(parse_number(a, "--arg"));
    for (const auto& f : vm["field"].as<std::vector<std::string>>()) {
        const auto eq = f.find('=');
        if (eq == std::string::npos || eq == 0) throw Error(ErrorCode::Usage, fmt::format("--field '{}': write NAME=VALUE", f));
        // A number, or text (char arrays, __data_loc strings, string arguments): NAME="TEXT"
        // or any value that is not a number.
        std::string v = f.substr(eq + 1);
        const auto n = harness::parse_integer(v);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') spec.strings.emplace_back(f.substr(0, eq), v.substr(1, v.size() - 2));
        else if (n) spec.fields.emplace_back(f.substr(0, eq), *n);
        else spec.strings.emplace_back(f.substr(0, eq), std::move(v));
    }
    return spec;
}

}  // namespace bpfsim::cli
