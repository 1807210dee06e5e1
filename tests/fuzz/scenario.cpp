// Scenario files: the fuzz input is the YAML, written to a temporary directory; the objects
// and kernel BTFs it names are found in the build's corpus directory (the -I of `bpfsim test`).
// A scenario that loads is run (with the verifier model for `expect.verifier`): errors must
// name the file and line, never crash or hang.
#include "tests/fuzz/fuzz.hpp"

#include "harness/scenario.hpp"
#include "verifier/scenario_verifier.hpp"

#include <fmt/format.h>

#include <fstream>
#include <unistd.h>

namespace bpfsim::fuzz {

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "bpfsim-fuzz-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

void scenario(Bytes data) {
    static const TempDir dir;
    const std::filesystem::path file = dir.path / "fuzz.yaml";
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    }
    auto s = harness::load_scenario(file, {corpus_dir()});
    if (!s) {
        check_error(s.error(), "load_scenario");
        if (s.error().code() == ErrorCode::Parse && s.error().where().file.empty() &&
            s.error().describe().find("fuzz.yaml") == std::string::npos)
            violation(fmt::format("a scenario error that names no file: {}", s.error().describe()));
        return;
    }
    vm::RunOptions ro;
    ro.budget = 100'000;
    const std::size_t runs = std::max<std::size_t>(1, std::min<std::size_t>(s->btf.size(), 2));
    for (std::size_t i = 0; i < runs; ++i) {
        const harness::ScenarioOutcome out = harness::run_scenario(*s, i, ro, verifier::scenario_verifier());
        if (out.error) check_error(*out.error, "run_scenario");
        (void)out.passed();
    }
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(scenario)
