// Differential test of the two engines over real objects: every program of every object runs in
// a world with the interpreter and in an identical world with the JIT (checked mode) on the same
// inputs — the sample packets for packet programs, a zeroed and a patterned context for the rest.
// After each run r0, the trap (kind, pc, message), the output packet and the trace_pipe lines
// must agree; after all runs, every map's contents, ring buffer and perf records (map words that
// hold an address in both worlds may differ: each world has its own stack and context).
//
// usage: engines_diff [--verbose] [--btf KERNEL_BTF] OBJ_OR_DIR...
// (--btf: the kernel BTF that objects with CO-RE relocations are relocated against)
#include "harness/harness.hpp"
#include "harness/maps.hpp"
#include "object_files.hpp"
#include "sample_packets.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <regex>

namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::harness;
using bpfsim::testing::Bytes;

namespace {

struct Outcome {
    std::size_t programs = 0, runs = 0, agreed = 0, traps = 0, jitted = 0;
    std::vector<std::string> set_aside, differences;
};

// Native stack addresses differ between the two runs (each engine has its own stack).
std::string mask(const std::string& s) {
    const std::string h = std::regex_replace(s, std::regex("0x[0-9a-f]{8,}"), "0x?");
    return std::regex_replace(h, std::regex("[0-9]+ bytes (above|below)"), "N bytes $1");
}

// Whether two map values differ only in 8-byte words that hold addresses in both (a program that
// stores a pointer: the stack and context live at different addresses in the two worlds).
bool only_addresses_differ(const Bytes& a, const Bytes& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); i += 8) {
        const std::size_t n = std::min<std::size_t>(8, a.size() - i);
        if (std::equal(a.begin() + i, a.begin() + i + n, b.begin() + i)) continue;
        if (n != 8) return false;
        uint64_t x = 0, y = 0;
        std::memcpy(&x, &a[i], 8);
        std::memcpy(&y, &b[i], 8);
        if (x < 0x10000 || y < 0x10000) return false;
    }
    return true;
}

std::string describe(const Result<ProgramRun>& r) {
    if (!r) return "error: " + r.error().describe();
    std::string s = r->result.trap ? fmt::format("trap {} at pc {}: {}", vm::to_string(r->result.trap->kind), r->result.trap->pc,
                                                 mask(r->result.trap->message))
                                   : fmt::format("r0 {:#x}", r->result.r0);
    s += fmt::format(", {} insns, packet {} bytes", r->result.insns, r->packet.size());
    return s;
}

std::string compare_runs(const Result<ProgramRun>& a, const Result<ProgramRun>& b) {
    if (describe(a) != describe(b)) return fmt::format("interpreter: {}; jit: {}", describe(a), describe(b));
    if (!a) return "";
    if (a->packet != b->packet) return "output packets differ";
    if (a->trace.size() != b->trace.size()) return fmt::format("{} vs {} trace lines", a->trace.size(), b->trace.size());
    for (std::size_t i = 0; i < a->trace.size(); ++i) {
        const auto x = trace_pipe_line(a->trace[i]), y = trace_pipe_line(b->trace[i]);
        if (x != y) return fmt::format("trace line {}: '{}' vs '{}'", i, x, y);
    }
    if (a->helper_calls != b->helper_calls) return "helper call counts differ";
    if (a->redirected != b->redirected || a->redirect_ifindex != b->redirect_ifindex) return "redirects differ";
    return "";
}

std::string compare_maps(const Object& obj, World& a, World& b, unsigned ncpus) {
    for (std::size_t m = 0; m < obj.maps().size(); ++m) {
        Map* x = a.map_at(m);
        Map* y = b.map_at(m);
        if (!x || !y) continue;
        const std::string& name = obj.maps()[m].name;
        if (auto* rx = dynamic_cast<RingbufMap*>(x)) {
            if (rx->drain() != dynamic_cast<RingbufMap*>(y)->drain()) return fmt::format("ring buffer '{}' records differ", name);
            continue;
        }
        if (auto* px = dynamic_cast<PerfEventArrayMap*>(x)) {
            const auto& ra = px->records();
            const auto& rb = dynamic_cast<PerfEventArrayMap*>(y)->records();
            if (ra.size() != rb.size()) return fmt::format("perf array '{}': {} vs {} records", name, ra.size(), rb.size());
            for (std::size_t i = 0; i < ra.size(); ++i)
                if (ra[i].cpu != rb[i].cpu || ra[i].data != rb[i].data) return fmt::format("perf array '{}': record {} differs", name, i);
            continue;
        }
        const auto da = dump_map(*x, ncpus), db = dump_map(*y, ncpus);
        if (da.size() != db.size()) return fmt::format("map '{}': {} vs {} entries", name, da.size(), db.size());
        for (std::size_t e = 0; e < da.size(); ++e)
            if (da[e].first != db[e].first || !only_addresses_differ(da[e].second, db[e].second))
                return fmt::format("map '{}' differs at entry {}", name, e);
    }
    return "";
}

std::shared_ptr<const btf::Btf> g_kernel_btf;

void compare_program(const fs::path& file, const Object& obj, const ProgramDef& p, Outcome& o, bool verbose) {
    const std::string id = fmt::format("{}:{}", file.filename().string(), p.name);
    WorldOptions wo;
    wo.kernel_btf = g_kernel_btf;
    wo.ncpus = 2;
    wo.engine = Engine::Interpreter;
    auto wi = World::create(obj, wo);
    wo.engine = Engine::Jit;
    auto wj = World::create(obj, wo);
    if (!wi || !wj) {
        o.set_aside.push_back(fmt::format("{}: {}", id, (wi ? wj.error() : wi.error()).describe()));
        return;
    }
    if (auto c = (*wi)->compiled(p.name); !c) {
        o.set_aside.push_back(fmt::format("{}: {}", id, c.error().describe()));
        return;
    }
    ++o.programs;
    std::string diff;
    const CtxKind kind = ctx_kind(p.type);
    std::vector<Bytes> inputs;
    const bool packets = kind == CtxKind::XdpMd || kind == CtxKind::SkBuff;
    if (packets) {
        inputs = bpfsim::testing::packets();
    } else {
        auto ctx = build_context(p.type, p.attach, ContextSpec{}, wo);
        if (!ctx) {
            o.set_aside.push_back(fmt::format("{}: context: {}", id, ctx.error().describe()));
            --o.programs;
            return;
        }
        inputs.push_back(*ctx);
        Bytes patterned = *ctx;   // small values: lengths, ids and flags rather than wild pointers
        for (std::size_t i = 0; i < patterned.size(); ++i) patterned[i] = static_cast<uint8_t>(i % 8 == 0 ? i / 8 + 1 : 0);
        inputs.push_back(patterned);
    }
    for (std::size_t i = 0; i < inputs.size() && diff.empty(); ++i) {
        auto a = packets ? (*wi)->run_packet(p.name, inputs[i]) : (*wi)->run_ctx(p.name, inputs[i]);
        auto b = packets ? (*wj)->run_packet(p.name, inputs[i]) : (*wj)->run_ctx(p.name, inputs[i]);
        ++o.runs;
        if (a && a->result.trap) ++o.traps;
        diff = compare_runs(a, b);
        if (!diff.empty()) diff = fmt::format("input {}: {}", i, diff);
    }
    if (diff.empty()) diff = compare_maps(obj, **wi, **wj, wo.ncpus);
    if (diff.empty()) {
        ++o.agreed;
        if (verbose) fmt::print("agree    {}\n", id);
    } else {
        o.differences.push_back(fmt::format("{}: {}", id, diff));
        if (verbose) fmt::print("DIFFER   {}: {}\n", id, diff);
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool verbose = false;
    std::vector<fs::path> files;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--verbose" || a == "-v") verbose = true;
        else if (a == "--btf" && i + 1 < argc) {
            auto k = load_kernel_btf(argv[++i]);
            if (!k) {
                std::cerr << "engines_diff: " << k.error().describe() << "\n";
                return 2;
            }
            g_kernel_btf = *k;
        } else if (!bpfsim::testing::add_objects(a, files)) {
            std::cerr << "engines_diff: no such file or directory: " << a << "\n";
            return 2;
        }
    }
    std::sort(files.begin(), files.end());
    Outcome o;
    std::size_t objects = 0;
    for (const auto& f : files) {
        auto obj = Object::open(f);
        if (!obj) {
            o.set_aside.push_back(fmt::format("{}: {}", f.filename().string(), obj.error().describe()));
            continue;
        }
        ++objects;
        for (const auto& p : obj->programs()) compare_program(f, *obj, p, o, verbose);
    }
    if (verbose) {
        fmt::print("set aside ({}):\n", o.set_aside.size());
        for (const auto& s : o.set_aside) fmt::print("  {}\n", s);
    }
    if (!o.differences.empty()) {
        fmt::print("differences:\n");
        for (const auto& d : o.differences) fmt::print("  {}\n", d);
    }
    fmt::print("engines differential: {} objects, {} programs, {} runs ({} trapped in both engines), {} identical, {} differ; "
               "{} set aside (objects or programs bpfsim cannot set up)\n",
               objects, o.programs, o.runs, o.traps, o.agreed, o.differences.size(), o.set_aside.size());
    fmt::print("{} passed, {} failed\n", o.agreed, o.differences.size());
    return o.differences.empty() && o.programs > 0 ? 0 : 1;
}
