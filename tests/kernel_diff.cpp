// Differential test against the running kernel: every program of a test-runnable type
// (socket_filter, xdp, sched_cls, cgroup_skb, flow_dissector) in the given objects runs
// in bpfsim and through BPF_PROG_TEST_RUN on the same generated packets; return values,
// output packets and map contents must agree.
//
// usage: kernel_diff [--verbose] [--allow-differences] OBJ_OR_DIR...
// Exit 77 (ctest: skipped) when the bpf() syscall is unavailable.
#include "harness/harness.hpp"
#include "object_files.hpp"
#include "sample_packets.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

#include <sched.h>

namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

using bpfsim::testing::Bytes;
using bpfsim::testing::packets;

bool testable(ProgType t) {
    return t == ProgType::SocketFilter || t == ProgType::Xdp || t == ProgType::SchedCls || t == ProgType::CgroupSkb ||
           t == ProgType::FlowDissector;
}

// Percpu values compare as per-word sums over CPUs: the kernel ran on some CPU we do not know.
Bytes fold_percpu(const Bytes& v, std::size_t value_size) {
    const std::size_t stride = (value_size + 7) / 8 * 8;
    if (stride == 0) return v;
    Bytes out(value_size, 0);
    for (std::size_t w = 0; w + 8 <= value_size || (w < value_size && w == 0); w += 8) {
        uint64_t sum = 0;
        for (std::size_t c = 0; c + stride <= v.size(); c += stride) {
            uint64_t x = 0;
            std::memcpy(&x, v.data() + c + w, std::min<std::size_t>(8, value_size - w));
            sum += x;
        }
        std::memcpy(out.data() + w, &sum, std::min<std::size_t>(8, value_size - w));
        if (value_size < 8) break;
    }
    return out;
}

struct Outcome {
    std::size_t compared = 0, agreed = 0, disagreed = 0, kernel_rejected = 0, bpfsim_unsupported = 0, inputs_refused = 0, nondeterministic = 0;
    std::vector<std::string> differences;
    std::vector<std::string> set_aside;
};

// BPF_PROG_TEST_RUN runs a program on the calling CPU. Pinned to one CPU, the test makes
// bpf_get_smp_processor_id (and the per-CPU map slots it picks) reproducible, and the
// simulated world runs on the same CPU. Unpinned, that helper's result is left out.
std::optional<unsigned> g_cpu;

std::optional<unsigned> pin_to_one_cpu() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return std::nullopt;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &allowed)) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) return std::nullopt;
        return c;
    }
    return std::nullopt;
}

void compare_program(const fs::path& file, const Object& obj, const ProgramDef& p, Outcome& o, bool verbose) {
    const std::string id = fmt::format("{}:{}", file.filename().string(), p.name);
    auto k = KernelOracle::create(obj);
    if (!k) {
        ++o.kernel_rejected;
        o.set_aside.push_back(fmt::format("{}: kernel: {}", id, k.error().describe()));
        return;
    }
    if (auto fd = (*k)->load(p.name); !fd) {
        ++o.kernel_rejected;
        std::string msg = fd.error().message();
        o.set_aside.push_back(fmt::format("{}: kernel: {}", id, msg.substr(0, msg.find('\n'))));
        return;
    }
    // Helpers whose results the kernel draws from its own state (randomness, clocks, the CPU it
    // ran on) cannot agree with a deterministic simulation; a difference in a program that calls
    // one is reported apart from the real disagreements.
    WorldOptions wo;
    btf::CoreTargets core;
    if (obj.core_relo_count()) {   // CO-RE against the same kernel the oracle runs
        if (auto host = KernelOracle::running_kernel_btf()) {
            wo.kernel_btf = *host;
            core.main = host->get();
        }
    }
    std::string nondet;
    if (auto lp = obj.link(p.name, &core)) {
        static const std::set<int32_t> kNondeterministic = {5, 7, 34, 46, 118, 125, 160, 208};
        for (const auto& in : lp->prog.insns)
            if (in.code == 0x85 && in.src == 0 && (kNondeterministic.count(in.imm) || (in.imm == 8 && !g_cpu)))
                nondet = std::string(vm::kernel_helper_name(in.imm));
    }
    wo.cpu = g_cpu.value_or(0);
    wo.ncpus = wo.cpu + 1;
    auto w = World::create(obj, wo);
    if (!w) {
        ++o.bpfsim_unsupported;
        o.set_aside.push_back(fmt::format("{}: bpfsim: {}", id, w.error().describe()));
        return;
    }
    if (auto c = (*w)->compiled(p.name); !c) {
        ++o.bpfsim_unsupported;
        o.set_aside.push_back(fmt::format("{}: bpfsim: {}", id, c.error().describe()));
        return;
    }
    ++o.compared;
    std::vector<std::string> diffs;
    const auto pk = packets();
    for (std::size_t i = 0; i < pk.size(); ++i) {
        auto kr = (*k)->test_run(p.name, pk[i]);
        if (!kr) {
            // The kernel refuses some inputs for some types (e.g. a cut-short IPv4 header for skb
            // programs); bpfsim does not run them either, so the maps stay comparable.
            ++o.inputs_refused;
            continue;
        }
        auto br = (*w)->run_packet(p.name, pk[i]);
        if (!br) {
            diffs.push_back(fmt::format("packet {}: bpfsim failed: {}", i, br.error().describe()));
            break;
        }
        if (br->result.trap) {
            diffs.push_back(fmt::format("packet {}: bpfsim trapped: {}", i, br->result.trap->message));
            break;
        }
        const uint32_t ours = static_cast<uint32_t>(br->result.r0);
        if (ours != kr->retval) diffs.push_back(fmt::format("packet {}: return {} (bpfsim) vs {} (kernel)", i, ours, kr->retval));
        if (br->packet != kr->packet)
            diffs.push_back(fmt::format("packet {}: output packets differ ({} vs {} bytes)", i, br->packet.size(), kr->packet.size()));
    }
    for (std::size_t m = 0; m < obj.maps().size() && diffs.empty(); ++m) {
        const MapDef& d = obj.maps()[m];
        if (d.type == MapType::Ringbuf || d.type == MapType::PerfEventArray || d.type == MapType::ProgArray ||
            d.type == MapType::BloomFilter || d.type == MapType::Queue || d.type == MapType::Stack)
            continue;
        Map* ours = (*w)->map_at(m);
        if (!ours) continue;
        auto a = dump_map(*ours, wo.ncpus);
        auto b = (*k)->dump(m);
        const bool percpu = d.type == MapType::PercpuArray || d.type == MapType::PercpuHash || d.type == MapType::LruPercpuHash;
        if (percpu) {
            for (auto& e : a) e.second = fold_percpu(e.second, d.value_size);
            for (auto& e : b) e.second = fold_percpu(e.second, d.value_size);
        }
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b) {
            auto hex = [](const Bytes& v) {
                std::string o;
                for (auto x : v) o += fmt::format("{:02x}", x);
                return o;
            };
            std::string first;
            for (std::size_t e = 0; e < std::max(a.size(), b.size()); ++e) {
                if (e < a.size() && e < b.size() && a[e] == b[e]) continue;
                first = fmt::format("; first difference: {} {} (bpfsim) vs {} {} (kernel)", e < a.size() ? hex(a[e].first) : "-",
                                    e < a.size() ? hex(a[e].second) : "-", e < b.size() ? hex(b[e].first) : "-", e < b.size() ? hex(b[e].second) : "-");
                break;
            }
            diffs.push_back(fmt::format("map '{}' differs: {} entries (bpfsim) vs {} (kernel){}", d.name, a.size(), b.size(), first));
        }
    }
    if (!diffs.empty() && !nondet.empty()) {
        ++o.nondeterministic;
        o.set_aside.push_back(fmt::format("{}: differs ({}), and calls bpf_{}, whose kernel result is not reproducible", id, diffs.front(), nondet));
        return;
    }
    if (diffs.empty()) {
        ++o.agreed;
        if (verbose) fmt::print("agree    {}\n", id);
    } else {
        ++o.disagreed;
        for (const auto& d : diffs) o.differences.push_back(fmt::format("{}: {}", id, d));
        if (verbose) fmt::print("DIFFER   {}: {}\n", id, diffs.front());
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool verbose = false, allow = false;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--verbose" || a == "-v") verbose = true;
        else if (a == "--allow-differences") allow = true;
        else if (!bpfsim::testing::add_objects(a, files))
            std::cerr << "kernel_diff: no such file or directory: " << a << "\n";
    }
    std::sort(files.begin(), files.end());
    g_cpu = pin_to_one_cpu();
    if (auto why = KernelOracle::unavailable_reason(); !why.empty()) {
        std::cout << "SKIP: " << why << "; the kernel differential test needs root on a kernel with BPF\n";
        return 77;
    }
    Outcome o;
    for (const auto& f : files) {
        auto obj = Object::open(f);
        if (!obj) {
            if (verbose) fmt::print("skip     {}: {}\n", f.string(), obj.error().describe());
            continue;
        }
        for (const auto& p : obj->programs())
            if (testable(p.type)) compare_program(f, *obj, p, o, verbose);
    }
    if (verbose || !o.set_aside.empty()) {
        fmt::print("set aside ({}):\n", o.set_aside.size());
        for (const auto& s : o.set_aside) fmt::print("  {}\n", s);
    }
    if (!o.differences.empty()) {
        fmt::print("differences:\n");
        for (const auto& d : o.differences) fmt::print("  {}\n", d);
    }
    fmt::print("kernel differential: {} programs compared over {} packets each, {} agree, {} differ; set aside: {} rejected or not loadable by the kernel, {} unsupported by bpfsim, {} that differ but call nondeterministic helpers; {} runs skipped because BPF_PROG_TEST_RUN refused the input\n",
               o.compared, packets().size(), o.agreed, o.disagreed, o.kernel_rejected, o.bpfsim_unsupported, o.nondeterministic, o.inputs_refused);
    fmt::print("{} passed, {} failed\n", o.agreed, o.disagreed);
    return o.disagreed && !allow ? 1 : 0;
}
