// BTF: parsing this machine's /sys/kernel/btf/vmlinux and writing it as text, as
// `bpfsim btf dump` does (the C header is what `bpftool btf dump file ... format c` makes).
// The file is read once; each iteration parses from memory / dumps into a reused buffer.
// Skipped, with a message, when the kernel has no BTF. Run: build/bench/bench_btf
#include "btf/dump.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <vector>

namespace {

using namespace bpfsim;

const char* const kVmlinux = "/sys/kernel/btf/vmlinux";

const std::vector<uint8_t>& vmlinux_bytes() {
    static const std::vector<uint8_t> bytes = [] {
        std::vector<uint8_t> b;
        if (std::FILE* f = std::fopen(kVmlinux, "rb")) {
            uint8_t buf[1 << 16];
            std::size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
            std::fclose(f);
        }
        return b;
    }();
    return bytes;
}

const btf::Btf* vmlinux() {
    static const std::optional<btf::Btf> btf = []() -> std::optional<btf::Btf> {
        if (vmlinux_bytes().empty()) return std::nullopt;
        auto r = btf::Btf::parse(vmlinux_bytes(), kVmlinux);
        if (!r) return std::nullopt;
        return std::move(*r);
    }();
    return btf ? &*btf : nullptr;
}

bool skip_without_vmlinux(benchmark::State& state) {
    if (vmlinux()) return false;
    state.SkipWithError(fmt::format("{} is missing or unreadable: the kernel has no BTF", kVmlinux).c_str());
    return true;
}

void BM_ParseVmlinux(benchmark::State& state) {
    if (skip_without_vmlinux(state)) return;
    const auto& bytes = vmlinux_bytes();
    for (auto _ : state) {
        auto r = btf::Btf::parse(bytes, kVmlinux);
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
    state.counters["types"] = vmlinux()->count() - 1;
}
BENCHMARK(BM_ParseVmlinux)->Unit(benchmark::kMillisecond);

template <class Dump>
void dump_bench(benchmark::State& state, Dump dump) {
    if (skip_without_vmlinux(state)) return;
    std::string out;
    for (auto _ : state) {
        out.clear();
        dump(*vmlinux(), out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(out.size()));
    state.counters["output_MB"] = double(out.size()) / 1e6;
}

void BM_DumpC(benchmark::State& state) {
    dump_bench(state, [](const btf::Btf& b, std::string& out) { btf::dump_c(b, out); });
}
BENCHMARK(BM_DumpC)->Unit(benchmark::kMillisecond);

void BM_DumpRaw(benchmark::State& state) {
    dump_bench(state, [](const btf::Btf& b, std::string& out) { btf::dump_raw(b, out); });
}
BENCHMARK(BM_DumpRaw)->Unit(benchmark::kMillisecond);

void BM_DumpJson(benchmark::State& state) {
    dump_bench(state, [](const btf::Btf& b, std::string& out) { btf::dump_json(b, out); });
}
BENCHMARK(BM_DumpJson)->Unit(benchmark::kMillisecond);

// Parse and C dump together from the file's bytes: what `bpfsim btf dump vmlinux --format c`
// spends besides reading the file and writing the result.
void BM_ParseAndDumpC(benchmark::State& state) {
    if (skip_without_vmlinux(state)) return;
    std::string out;
    for (auto _ : state) {
        auto r = btf::Btf::parse(vmlinux_bytes(), kVmlinux);
        out.clear();
        btf::dump_c(*r, out);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_ParseAndDumpC)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
