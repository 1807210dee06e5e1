// The verifier model over the whole sample corpus (../shared/corpus/ebpf-samples), as
// `bpfsim verify` runs it: every program of every object bpfsim opens, linked (CO-RE against
// the recorded kernel BTF of corpus/btf) and verified. One iteration is the whole corpus; the
// issue's target is at most 9 s (the kernel spends about 12 s verifying it at log level 1).
// Counters: programs verified, accepted, rejected, objects. Run: build/bench/bench_verifier
#include "harness/harness.hpp"
#include "verifier/verifier.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

namespace {

using namespace bpfsim;
namespace fs = std::filesystem;

struct Corpus {
    std::vector<std::unique_ptr<harness::Object>> objects;
    std::shared_ptr<const btf::Btf> kernel;
};

const Corpus& corpus() {
    static const Corpus c = [] {
        Corpus out;
        if (auto k = harness::load_kernel_btf(fs::path(BPFSIM_CORPUS_DIR) / "vmlinux-6.18.44.btf")) out.kernel = *k;
        std::vector<fs::path> files;
        std::error_code ec;
        for (fs::recursive_directory_iterator it(BPFSIM_SHARED_DIR "/corpus/ebpf-samples", ec), end; !ec && it != end; it.increment(ec))
            if (it->is_regular_file()) files.push_back(it->path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files)
            if (auto o = harness::Object::open(f)) out.objects.push_back(std::make_unique<harness::Object>(std::move(o.value())));
        return out;
    }();
    return c;
}

void BM_VerifyCorpus(benchmark::State& state) {
    const Corpus& c = corpus();
    if (c.objects.empty()) {
        state.SkipWithError("no objects under " BPFSIM_SHARED_DIR "/corpus/ebpf-samples");
        return;
    }
    btf::CoreTargets targets;
    targets.main = c.kernel.get();
    verifier::VerifyOptions vo;
    vo.kernel_btf = c.kernel.get();
    std::size_t programs = 0, accepted = 0, rejected = 0;
    for (auto _ : state) {
        programs = accepted = rejected = 0;
        for (const auto& obj : c.objects)
            for (const auto& p : obj->programs()) {
                auto lp = obj->link(p.name, c.kernel ? &targets : nullptr);
                if (!lp) continue;
                const verifier::Verdict v = verifier::verify(*obj, *lp, vo);
                ++programs;
                (v.accepted ? accepted : rejected)++;
                benchmark::DoNotOptimize(v.insns_processed);
            }
    }
    state.counters["objects"] = static_cast<double>(c.objects.size());
    state.counters["programs"] = static_cast<double>(programs);
    state.counters["accepted"] = static_cast<double>(accepted);
    state.counters["rejected"] = static_cast<double>(rejected);
}
BENCHMARK(BM_VerifyCorpus)->Unit(benchmark::kSecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
