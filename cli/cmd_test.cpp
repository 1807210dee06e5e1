// `bpfsim test PATHS...`: runs scenarios (YAML) and reports one line per step run.
#include "harness/scenario.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

namespace bpfsim {
namespace po = boost::program_options;
namespace fs = std::filesystem;

int cmd_test(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("input", po::value<std::vector<std::string>>()->composing(), "scenario files or directories of *.yaml")
        ("include,I", po::value<std::vector<std::string>>()->composing(), "also look for objects and BTF files here")
        ("show-trace", "print each run's trace_pipe lines")
        ("filter", po::value<std::string>()->default_value(""), "only steps whose name contains this")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("input", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim test SCENARIO.yaml|DIR... [-I DIR] [--show-trace]\n\n" << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (!vm.count("input")) throw Error(ErrorCode::Usage, "test: give scenario files or directories");
    std::vector<fs::path> search;
    if (vm.count("include"))
        for (const auto& s : vm["include"].as<std::vector<std::string>>()) search.emplace_back(s);
    std::vector<fs::path> files;
    for (const auto& in : vm["input"].as<std::vector<std::string>>()) {
        if (fs::is_directory(in)) {
            for (const auto& e : fs::recursive_directory_iterator(in))
                if (e.path().extension() == ".yaml" || e.path().extension() == ".yml") files.push_back(e.path());
        } else if (fs::exists(in)) {
            files.emplace_back(in);
        } else {
            Location loc;
            loc.file = in;
            throw Error(ErrorCode::Io, "no such file or directory", loc);
        }
    }
    std::sort(files.begin(), files.end());
    const bool show_trace = vm.count("show-trace");
    const std::string filter = vm["filter"].as<std::string>();
    std::size_t passed = 0, failed = 0;
    for (const auto& f : files) {
        auto sc = harness::load_scenario(f, search);
        if (!sc) {
            fmt::print("FAIL {}: {}\n", f.string(), sc.error().describe());
            ++failed;
            continue;
        }
        const std::size_t runs = std::max<std::size_t>(1, sc->btf.size());
        for (std::size_t b = 0; b < runs; ++b) {
            auto out = harness::run_scenario(*sc, b);
            const std::string kernel = out.btf.empty() ? "" : fmt::format(" [{}]", out.btf.filename().string());
            for (const auto& st : out.steps) {
                if (!filter.empty() && st.name.find(filter) == std::string::npos) continue;
                fmt::print("{} {}: {}{}\n", st.passed ? "ok  " : "FAIL", f.filename().string(), st.name, kernel);
                if (show_trace || !st.passed)
                    for (const auto& l : st.trace_lines) fmt::print("{}\n", l);
                for (const auto& why : st.failures) fmt::print("    {}\n", why);
                (st.passed ? passed : failed)++;
            }
            if (out.error) {
                fmt::print("FAIL {}{}: {}\n", f.string(), kernel, out.error->describe());
                ++failed;
            }
        }
    }
    fmt::print("{} passed, {} failed\n", passed, failed);
    return failed ? 1 : 0;
}

}  // namespace bpfsim
