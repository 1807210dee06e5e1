// The verifier model (verifier/verifier.hpp): data-driven cases under tests/verifier/*.yaml
// (one rule each: verdict and exact kernel message), and corpus objects the kernel accepts.
#include "harness/harness.hpp"
#include "verifier/verifier.hpp"

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

using namespace bpfsim;
namespace fs = std::filesystem;

namespace {

harness::ProgType type_named(const std::string& name) {
    for (uint32_t v = 0; v < 64; ++v)
        if (harness::to_string(static_cast<harness::ProgType>(v)) == name) return static_cast<harness::ProgType>(v);
    FAIL("unknown program type " << name);
    return harness::ProgType::Unspec;
}

harness::MapType map_type_named(const std::string& name) {
    for (uint32_t v = 0; v < 64; ++v)
        if (harness::to_string(static_cast<harness::MapType>(v)) == name) return static_cast<harness::MapType>(v);
    FAIL("unknown map type " << name);
    return harness::MapType::Unspec;
}

}  // namespace

TEST_CASE("verifier model: one rule per program (tests/verifier/*.yaml)", "[verifier]") {
    const fs::path dir = fs::path(BPFSIM_SOURCE_DIR) / "tests" / "verifier";
    std::size_t cases = 0;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(!files.empty());
    for (const auto& file : files) {
        const YAML::Node doc = YAML::LoadFile(file.string());
        for (const auto& c : doc) {
            const std::string name = c["name"].as<std::string>();
            INFO(file.filename().string() << ": " << name);
            auto insns = vm::assemble(c["asm"].as<std::string>(), name);
            if (!insns) FAIL(insns.error().describe());
            std::vector<harness::MapDef> maps;
            if (c["maps"]) {
                for (const auto& m : c["maps"]) {
                    harness::MapDef d;
                    d.name = m["name"].as<std::string>();
                    d.type = map_type_named(m["type"].as<std::string>());
                    d.key_size = m["key_size"].as<uint32_t>(4);
                    d.value_size = m["value_size"].as<uint32_t>(8);
                    d.max_entries = m["max_entries"].as<uint32_t>(1);
                    d.frozen = m["frozen"].as<bool>(false);
                    if (m["init"]) for (const auto& b : m["init"]) d.init.push_back(static_cast<uint8_t>(b.as<unsigned>()));
                    maps.push_back(std::move(d));
                }
            }
            verifier::VerifyOptions o;
            o.privileged = c["privileged"].as<bool>(true);
            const auto type = type_named(c["type"].as<std::string>("socket_filter"));
            const verifier::Verdict v = verifier::verify_insns(*insns, type, c["attach"].as<std::string>(""), maps, o);
            INFO("message: " << v.message << " (pc " << v.pc << ")");
            CHECK(v.accepted == c["accepted"].as<bool>());
            if (c["message"]) CHECK(v.message == c["message"].as<std::string>());
            if (c["pc"]) CHECK(v.pc == c["pc"].as<std::size_t>());
            if (c["max_processed"]) CHECK(v.insns_processed <= c["max_processed"].as<std::size_t>());
            if (v.accepted) CHECK(v.log.find("processed ") != std::string::npos);
            ++cases;
        }
    }
    CHECK(cases >= 40);
}

TEST_CASE("verifier model: log level 2 shows every instruction with its state", "[verifier]") {
    auto insns = vm::assemble("mov %r0, 0\nexit");
    REQUIRE(insns);
    verifier::VerifyOptions o;
    o.log_level = 2;
    const auto v = verifier::verify_insns(*insns, harness::ProgType::SocketFilter, "", {}, o);
    CHECK(v.accepted);
    CHECK(v.log.find("0: (b7) r0 = 0") != std::string::npos);
    CHECK(v.log.find("R0=0") != std::string::npos);
    CHECK(v.insns_processed == 2);
}

TEST_CASE("verifier model: corpus objects the kernel accepts are accepted", "[verifier][corpus]") {
    const fs::path dir = BPFSIM_CORPUS_DIR;
    std::size_t checked = 0;
    for (const char* name : {"xdp_counter.o", "xdp_firewall.o", "tc_ratelimit.o", "tc_rewrite.o", "sock_filter.o", "socket_ldabs.o", "feat_maps_basic.o", "feat_ringbuf_perf.o", "feat_tail_calls.o", "trace_exec.o", "proc_tracker.o"}) {
        const fs::path p = dir / name;
        if (!fs::exists(p)) continue;
        auto obj = harness::Object::open(p);
        REQUIRE(obj);
        for (const auto& prog : obj->programs()) {
            auto lp = obj->link(prog.name);
            if (!lp) continue;   // needs a CO-RE target
            INFO(name << " " << prog.name);
            const auto v = verifier::verify(*obj, *lp, {});
            INFO(v.message << " at pc " << v.pc);
            CHECK(v.accepted);
            ++checked;
        }
    }
    CHECK(checked > 0);
}
