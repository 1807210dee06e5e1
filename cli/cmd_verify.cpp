// `bpfsim verify OBJ [--prog P]... [--btf KERNEL_BTF] [--log-level 1|2] [--json]`: the verifier
// model's verdict (verifier/verifier.hpp) on an object's programs, without root: per program
// accepted/rejected, the kernel's message, the failing pc and source line, processed insns.
// Exit status 1 when any program is rejected, 2 on bad usage or an object bpfsim cannot open.
#include "harness/harness.hpp"
#include "verifier/verifier.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace bpfsim {

int cmd_verify(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()
        ("object", po::value<std::string>(), "BPF ELF object")
        ("prog", po::value<std::vector<std::string>>(), "only this program (repeatable)")
        ("btf", po::value<std::string>(), "kernel BTF (e.g. /sys/kernel/btf/vmlinux): typed tracing arguments and CO-RE")
        ("log-level", po::value<unsigned>()->default_value(1), "0, 1 (the error path) or 2 (every instruction with its state)")
        ("log", "print the verifier log of each program")
        ("json", "JSON output")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("object", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim verify OBJ [--prog P]... [--btf KERNEL_BTF] [--log-level 0|1|2] [--log] [--json]\n\n" << opts
                  << "\nThe verifier model's verdict (Linux 6.18 rules) for each program; exit 1 when any is rejected.\n";
        return 0;
    }
    po::notify(vm);
    if (!vm.count("object")) throw Error(ErrorCode::Usage, "verify: an object file is required");
    const std::string path = vm["object"].as<std::string>();
    auto obj = harness::Object::open(path).value();
    std::shared_ptr<const btf::Btf> kbtf;
    if (vm.count("btf")) {
        kbtf = std::make_shared<const btf::Btf>(btf::Btf::load_file(vm["btf"].as<std::string>()).value());
    }
    verifier::VerifyOptions vo;
    vo.log_level = vm["log-level"].as<unsigned>();
    if (vo.log_level > 2) throw Error(ErrorCode::Usage, "--log-level must be 0, 1 or 2");
    vo.kernel_btf = kbtf.get();
    const bool json = vm.count("json") > 0;
    const bool show_log = vm.count("log") > 0 || vo.log_level == 2;
    std::vector<std::string> names;
    if (vm.count("prog")) names = vm["prog"].as<std::vector<std::string>>();
    else for (const auto& p : obj.programs()) names.push_back(p.name);
    nlohmann::json out = nlohmann::json::array();
    int rc = 0;
    for (const auto& name : names) {
        if (!obj.find_program(name)) throw Error(ErrorCode::NotFound, fmt::format("{}: no program '{}'", path, name));
        const auto t0 = std::chrono::steady_clock::now();
        btf::CoreTargets targets;
        const btf::CoreTargets* tp = nullptr;
        if (kbtf) {
            targets.main = kbtf.get();
            tp = &targets;
        }
        auto lp = obj.link(name, tp);
        if (!lp && !tp && obj.core_relo_count() > 0) {
            // CO-RE relocations need a target: without --btf, try the running kernel's.
            auto running = harness::KernelOracle::running_kernel_btf();
            if (running) {
                kbtf = *running;
                vo.kernel_btf = kbtf.get();
                targets.main = kbtf.get();
                lp = obj.link(name, &targets);
            }
        }
        if (!lp) {
            rc = std::max(rc, 1);
            if (json) out.push_back({{"program", name}, {"verdict", "error"}, {"error", lp.error().describe()}});
            else fmt::print("{}: error: {}\n", name, lp.error().describe());
            continue;
        }
        const verifier::Verdict v = verifier::verify(obj, *lp, vo);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!v.accepted) rc = 1;
        if (json) {
            nlohmann::json j = {{"program", name}, {"section", lp->prog.section}, {"type", std::string(harness::to_string(lp->type))},
                                {"verdict", v.accepted ? "accepted" : "rejected"}, {"insns_processed", v.insns_processed},
                                {"max_states_per_insn", v.max_states_per_insn}, {"total_states", v.total_states},
                                {"peak_states", v.peak_states}, {"seconds", secs}};
            if (!v.accepted) {
                j["message"] = v.message;
                j["pc"] = v.pc;
                if (!v.source_line.empty()) j["source_line"] = v.source_line;
            }
            if (show_log) j["log"] = v.log;
            out.push_back(std::move(j));
        } else {
            if (v.accepted) {
                fmt::print("{}: accepted ({} insns processed, {} states)\n", name, v.insns_processed, v.total_states);
            } else {
                fmt::print("{}: rejected at pc {}: {}\n", name, v.pc, v.message);
                if (!v.source_line.empty()) fmt::print("  {}\n", v.source_line);
                fmt::print("  ({} insns processed)\n", v.insns_processed);
            }
            if (show_log) fmt::print("{}", v.log);
        }
    }
    if (json) std::cout << out.dump(2) << "\n";
    return rc;
}

}  // namespace bpfsim
