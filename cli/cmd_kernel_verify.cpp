// `bpfsim kernel-verify OBJ... [--prog P]... [--log-level 1|2] [--log] [--json]`: the running
// kernel's verifier verdict on an object's programs, loaded as libbpf would load them.
// `bpfsim kernel-verify --corpus DIR [--json OUT.json]`: the same over every object under DIR,
// with a summary (verdict classes, rejection messages, reasons programs were not loadable,
// objects bpfsim cannot open) and the total kernel verification time.
//
// This is the oracle side of the verifier model (issue 6): root and the bpf() syscall needed.
#include "harness/harness.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <vector>

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace bpfsim {

namespace {

using harness::KernelVerdict;

constexpr int kExitUnavailable = 77;   // the bpf() syscall is unavailable (ctest's SKIP_RETURN_CODE)

const char* const kUsage = "OBJ... [--prog P]... [--log-level 0|1|2] [--log] [--json] [--type T]\n"
                           "       bpfsim kernel-verify --corpus DIR [--json OUT.json] [--top N] [--log-level 0|1]";

const char* const kHelpTail = R"(
Loads each program into the running kernel as libbpf would (maps created with their BTF,
.rodata/.kconfig frozen with BPF_F_RDONLY_PROG, CO-RE relocated against
/sys/kernel/btf/vmlinux, expected_attach_type, attach_btf_id and flags from the section
name) and reports the kernel's verdict:
  accepted      the program loaded
  rejected      the verifier refused it: its message, the failing instruction, statistics
  not-loadable  refused for reasons outside the verifier: a map the kernel cannot create,
                an attach target missing from the kernel's BTF, EINVAL/E2BIG/EPERM before
                verification, BTF or func_info errors, unsupported program types
Every program is closed again after loading.

Exit status: 0 every program accepted (survey: the survey completed); 1 some program
rejected or not loadable, or bpfsim could not open or link it (survey: a crash or internal
error); 2 usage; 77 the bpf() syscall is unavailable (not root, seccomp, a container),
with the reason on stderr.
)";

std::string errno_name(int e) {
    if (!e) return "";
    const char* n = strerrorname_np(e);
    return n ? n : std::to_string(e);
}

struct Row {
    std::string object;      // as given / relative to the corpus
    std::string program;
    std::string section;
    std::string type;
    bool bpfsim_error = false;   // bpfsim could not link the program
    std::string error;
    KernelVerdict v;
};

nlohmann::json to_json(const Row& r, bool with_log) {
    nlohmann::json j;
    j["object"] = r.object;
    j["program"] = r.program;
    j["section"] = r.section;
    j["type"] = r.type;
    if (r.bpfsim_error) {
        j["verdict"] = "bpfsim-error";
        j["error"] = r.error;
        return j;
    }
    const KernelVerdict& v = r.v;
    j["verdict"] = harness::to_string(v.kind);
    j["errno"] = v.err;
    j["errno_name"] = errno_name(v.err);
    j["reason"] = v.reason;
    j["message"] = v.message;
    j["pc"] = v.pc ? nlohmann::json(*v.pc) : nlohmann::json();
    j["stats"] = v.stats;
    j["processed"] = v.processed;
    j["verification_usec"] = v.verification_usec ? nlohmann::json(*v.verification_usec) : nlohmann::json();
    j["load_ms"] = v.load_seconds * 1e3;
    j["insns"] = v.insns;
    j["expected_attach_type"] = v.expected_attach_type;
    j["attach_btf_id"] = v.attach_btf_id;
    j["prog_flags"] = v.prog_flags;
    if (with_log) j["log"] = v.log;
    return j;
}

void print_row(const Row& r, bool with_log) {
    std::cout << fmt::format("{} ({}, {}): ", r.program, r.section, r.type);
    if (r.bpfsim_error) {
        std::cout << "bpfsim-error\n  " << r.error << "\n";
        return;
    }
    const KernelVerdict& v = r.v;
    std::cout << harness::to_string(v.kind);
    if (v.err) std::cout << fmt::format("  errno {} ({})", errno_name(v.err), std::strerror(v.err));
    std::cout << "\n";
    if (!v.reason.empty()) std::cout << "  reason: " << v.reason << "\n";
    if (v.kind == KernelVerdict::Kind::Rejected && !v.message.empty()) {
        std::string m = v.message;
        for (std::size_t p = 0; (p = m.find('\n', p)) != std::string::npos; p += 11) m.replace(p, 1, "\n           ");
        std::cout << "  message: " << m << "\n";
    }
    if (v.pc) std::cout << "  pc: " << *v.pc << "\n";
    if (!v.stats.empty()) std::cout << "  " << v.stats << "\n";
    std::cout << fmt::format("  insns {}, BPF_PROG_LOAD {:.3f} ms", v.insns, v.load_seconds * 1e3);
    if (v.verification_usec) std::cout << fmt::format(", kernel verification time {} usec", *v.verification_usec);
    std::cout << "\n";
    if (with_log && !v.log.empty()) {
        std::cout << "  log:\n";
        std::string_view log = v.log;
        while (!log.empty()) {
            const auto nl = log.find('\n');
            std::cout << "    " << log.substr(0, nl) << "\n";
            if (nl == std::string_view::npos) break;
            log.remove_prefix(nl + 1);
        }
    }
}

// Verifies the programs of one object (all, or those named); rows appended. An object bpfsim
// cannot open, or whose maps the oracle cannot set up, is an Error.
void verify_object(const fs::path& file, const std::string& label, const std::vector<std::string>& only, unsigned level,
                   std::vector<Row>& rows, harness::ProgType type = harness::ProgType::Unspec) {
    auto obj = harness::Object::open(file);
    if (!obj) throw obj.error();
    for (const auto& name : only)
        if (!obj->find_program(name)) {
            std::string have;
            for (const auto& p : obj->programs()) have += (have.empty() ? "" : ", ") + p.name;
            throw Error(ErrorCode::Usage, fmt::format("{}: no program '{}' (it has: {})", file.string(), name, have));
        }
    auto k = harness::KernelOracle::create(*obj);
    if (!k) throw k.error();
    for (const auto& p : obj->programs()) {
        if (!only.empty() && std::find(only.begin(), only.end(), p.name) == only.end() &&
            std::find(only.begin(), only.end(), p.section) == only.end())
            continue;
        Row r;
        r.object = label;
        r.program = p.name;
        r.section = p.section;
        r.type = std::string(harness::to_string(p.type));
        auto v = (*k)->verify(p.name, level, type);
        if (!v) {
            r.bpfsim_error = true;
            r.error = v.error().describe();
        } else {
            r.v = std::move(*v);
            r.type = std::string(harness::to_string(r.v.type)) + (r.v.type_assumed ? " (assumed)" : "");
        }
        rows.push_back(std::move(r));
    }
}

// A message or reason with its particulars (numbers, quoted names) folded, to group by.
std::string category(std::string_view text) {
    std::string first(text.substr(0, text.find('\n')));
    static const std::regex quoted("'[^']*'");
    static const std::regex number("(0x[0-9a-fA-F]+|[0-9]+)");
    // Keep the register type names the verifier quotes ('scalar', 'map_value_or_null'); fold map names.
    if (first.find("map '") != std::string::npos || first.find("attach target '") != std::string::npos)
        first = std::regex_replace(first, quoted, "'…'");
    return std::regex_replace(first, number, "N");
}

bool is_elf(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    return in.gcount() == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
}

void print_counts(const std::string& title, const std::map<std::string, std::size_t>& counts, std::size_t top) {
    std::vector<std::pair<std::string, std::size_t>> v(counts.begin(), counts.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::cout << title << "\n";
    std::size_t shown = 0, rest = 0;
    for (const auto& [k, n] : v) {
        if (shown++ < top) std::cout << fmt::format("  {:>5}  {}\n", n, k);
        else rest += n;
    }
    if (rest) std::cout << fmt::format("  {:>5}  (other, {} categories)\n", rest, v.size() - top);
}

int survey(const fs::path& dir, const std::string& json_out, std::size_t top, unsigned level) {
    if (!fs::is_directory(dir)) {
        Location loc;
        loc.file = dir.string();
        throw Error(ErrorCode::Io, "not a directory", loc);
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && is_elf(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Row> rows;
    std::vector<std::pair<std::string, std::string>> open_errors;   // object -> why bpfsim cannot open it
    std::size_t objects_ok = 0;
    for (const auto& f : files) {
        const std::string label = fs::relative(f, dir).string();
        try {
            verify_object(f, label, {}, level, rows);
            ++objects_ok;
        } catch (const Error& e) {
            open_errors.emplace_back(label, e.describe());
        }
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::size_t accepted = 0, rejected = 0, not_loadable = 0, link_errors = 0;
    double kernel_seconds = 0;
    uint64_t kernel_usec = 0;
    std::map<std::string, std::size_t> by_message, by_reason, by_link_error;
    std::vector<std::pair<double, std::string>> slowest;
    for (const auto& r : rows) {
        if (r.bpfsim_error) {
            ++link_errors;
            ++by_link_error[category(r.error)];
            continue;
        }
        kernel_seconds += r.v.load_seconds;
        if (r.v.verification_usec) kernel_usec += *r.v.verification_usec;
        slowest.emplace_back(r.v.load_seconds, r.object + ":" + r.program);
        switch (r.v.kind) {
        case KernelVerdict::Kind::Accepted: ++accepted; break;
        case KernelVerdict::Kind::Rejected: ++rejected; ++by_message[category(r.v.message)]; break;
        case KernelVerdict::Kind::NotLoadable: ++not_loadable; ++by_reason[category(r.v.reason)]; break;
        }
    }
    std::sort(slowest.rbegin(), slowest.rend());
    std::cout << fmt::format("kernel-verify survey of {}\n", dir.string());
    std::cout << fmt::format("  objects             {:>5}   ({} opened, {} bpfsim cannot open)\n", files.size(), objects_ok, open_errors.size());
    std::cout << fmt::format("  programs            {:>5}\n", rows.size());
    std::cout << fmt::format("  accepted            {:>5}\n", accepted);
    std::cout << fmt::format("  rejected            {:>5}\n", rejected);
    std::cout << fmt::format("  judged (acc+rej)    {:>5}\n", accepted + rejected);
    std::cout << fmt::format("  not-loadable        {:>5}\n", not_loadable);
    std::cout << fmt::format("  bpfsim link errors  {:>5}\n", link_errors);
    std::cout << fmt::format("  kernel time: {:.3f} s of BPF_PROG_LOAD wall time ({:.3f} s as the kernel measured verification); survey {:.3f} s\n",
                             kernel_seconds, kernel_usec / 1e6, wall);
    if (!slowest.empty()) {
        std::cout << "  slowest loads:";
        for (std::size_t i = 0; i < std::min<std::size_t>(3, slowest.size()); ++i)
            std::cout << fmt::format(" {} {:.3f} s;", slowest[i].second, slowest[i].first);
        std::cout << "\n";
    }
    print_counts("rejected, by message:", by_message, top);
    print_counts("not-loadable, by reason:", by_reason, top);
    if (!by_link_error.empty()) print_counts("bpfsim link errors:", by_link_error, top);
    if (!open_errors.empty()) {
        std::cout << "objects bpfsim cannot open (skipped):\n";
        for (const auto& [o, why] : open_errors) std::cout << "  " << o << ": " << why.substr(0, why.find('\n')) << "\n";
    }
    if (!json_out.empty()) {
        nlohmann::json j;
        j["corpus"] = dir.string();
        j["summary"] = {{"objects", files.size()},
                        {"objects_opened", objects_ok},
                        {"bpfsim_open_errors", open_errors.size()},
                        {"programs", rows.size()},
                        {"accepted", accepted},
                        {"rejected", rejected},
                        {"not_loadable", not_loadable},
                        {"bpfsim_link_errors", link_errors},
                        {"kernel_load_seconds", kernel_seconds},
                        {"kernel_verification_seconds", kernel_usec / 1e6},
                        {"survey_seconds", wall},
                        {"rejected_by_message", by_message},
                        {"not_loadable_by_reason", by_reason}};
        nlohmann::json skipped = nlohmann::json::array();
        for (const auto& [o, why] : open_errors) skipped.push_back({{"object", o}, {"error", why}});
        j["open_errors"] = skipped;
        nlohmann::json progs = nlohmann::json::array();
        for (const auto& r : rows) progs.push_back(to_json(r, false));
        j["programs"] = progs;
        if (json_out == "-") {
            std::cout << j.dump(2) << "\n";
        } else {
            std::ofstream out(json_out);
            if (!out) {
                Location loc;
                loc.file = json_out;
                throw Error(ErrorCode::Io, "cannot write", loc);
            }
            out << j.dump(2) << "\n";
            if (!out) {
                Location loc;
                loc.file = json_out;
                throw Error(ErrorCode::Io, "write failed", loc);
            }
            std::cout << "wrote " << json_out << "\n";
        }
    }
    return 0;
}

}  // namespace

int cmd_kernel_verify(const std::vector<std::string>& raw_args) {
    // `--json OUT.json` (a value that names a .json file) is the survey's output file.
    std::vector<std::string> args;
    for (std::size_t i = 0; i < raw_args.size(); ++i) {
        if (raw_args[i] == "--json" && i + 1 < raw_args.size() && raw_args[i + 1].ends_with(".json")) {
            args.push_back("--json-out");
            args.push_back(raw_args[++i]);
        } else if (raw_args[i].starts_with("--json=")) {
            args.push_back("--json-out");
            args.push_back(raw_args[i].substr(7));
        } else {
            args.push_back(raw_args[i]);
        }
    }
    po::options_description d("options");
    d.add_options()("objects", po::value<std::vector<std::string>>()->multitoken(), "BPF object files")
        ("prog,p", po::value<std::vector<std::string>>(), "only this program (function or section name); repeatable")
        ("log-level", po::value<unsigned>()->default_value(1), "verifier log level: 1 (the failing path), 2 (every state; the log is printed), 0 (message and statistics only: the kernel verifies fastest, no failing pc)")
        ("log", "print the whole verifier log (implied by --log-level 2)")
        ("json", "machine-readable output: an array of verdicts (survey: the whole report on stdout)")
        ("json-out", po::value<std::string>(), "write the JSON report to this file (also: --json FILE.json)")
        ("type", po::value<std::string>(), "program type for sections that name none (default: socket_filter, as PREVAIL)")
        ("corpus", po::value<std::string>(), "survey every ELF object under DIR (recursively)")
        ("top", po::value<std::size_t>()->default_value(15), "survey: categories listed per table")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("objects", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim kernel-verify " << kUsage << "\n\n" << d << kHelpTail;
        return 0;
    }
    po::notify(vm);
    const unsigned level = vm["log-level"].as<unsigned>();
    if (level > 2) throw Error(ErrorCode::Usage, fmt::format("--log-level must be 0, 1 or 2, not {}", level));
    const bool corpus = vm.count("corpus");
    if (!corpus && !vm.count("objects")) throw Error(ErrorCode::Usage, "give an object file (or --corpus DIR)");
    if (corpus && vm.count("objects")) throw Error(ErrorCode::Usage, "--corpus takes a directory; give no object files with it");
    if (const std::string why = harness::KernelOracle::unavailable_reason(); !why.empty()) {
        std::cerr << "bpfsim kernel-verify: " << why << "; it needs root (CAP_BPF) and a kernel that allows bpf(2). Skipped (exit "
                  << kExitUnavailable << ").\n";
        return kExitUnavailable;
    }
    std::string json_out = vm.count("json-out") ? vm["json-out"].as<std::string>() : "";
    if (corpus) {
        if (json_out.empty() && vm.count("json")) json_out = "-";
        return survey(vm["corpus"].as<std::string>(), json_out, vm["top"].as<std::size_t>(), std::min(level, 1u));
    }
    const auto only = vm.count("prog") ? vm["prog"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const bool with_log = level >= 2 || vm.count("log");
    harness::ProgType type = harness::ProgType::Unspec;
    if (vm.count("type")) {
        const std::string t = vm["type"].as<std::string>();
        bool found = false;
        for (uint32_t i = 1; i < 64 && !found; ++i)
            if (harness::to_string(static_cast<harness::ProgType>(i)) == t) {
                type = static_cast<harness::ProgType>(i);
                found = true;
            }
        if (!found) throw Error(ErrorCode::Usage, fmt::format("--type: unknown program type '{}' (bpftool's names: xdp, sched_cls, ...)", t));
    }
    std::vector<Row> rows;
    bool open_failed = false;
    for (const auto& o : vm["objects"].as<std::vector<std::string>>()) {
        try {
            verify_object(o, o, only, level, rows, type);
        } catch (const Error& e) {
            if (e.code() == ErrorCode::Usage) throw;
            std::cerr << "bpfsim kernel-verify: " << e.describe() << "\n";
            open_failed = true;
        }
    }
    bool all_accepted = !open_failed;
    for (const auto& r : rows) all_accepted = all_accepted && !r.bpfsim_error && r.v.kind == KernelVerdict::Kind::Accepted;
    if (vm.count("json") || !json_out.empty()) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& r : rows) j.push_back(to_json(r, with_log));
        if (json_out.empty() || json_out == "-") {
            std::cout << j.dump(2) << "\n";
        } else {
            std::ofstream out(json_out);
            out << j.dump(2) << "\n";
            if (!out) {
                Location loc;
                loc.file = json_out;
                throw Error(ErrorCode::Io, "cannot write", loc);
            }
        }
    } else {
        for (const auto& r : rows) print_row(r, with_log);
    }
    return all_accepted ? 0 : 1;
}

}  // namespace bpfsim
