// harness::CoverageReport on real corpus objects with .BTF.ext line info: the lcov records
// (SF, FN/FNDA, BRDA, DA, LF/LH, BRF/BRH) for lines that ran and lines that did not, the
// totals, merging reports (one per thread in `bpfsim test -j N`), and the JSON summary.
#include "harness/coverage.hpp"
#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;
const fs::path kSource = BPFSIM_SOURCE_DIR;

// One SF record of an lcov tracefile.
struct LcovFile {
    std::map<uint32_t, uint64_t> da;                       // line -> count
    std::vector<std::string> brda;                         // "line,block,branch,taken"
    std::map<std::string, uint32_t> fn;                    // name -> line
    std::map<std::string, uint64_t> fnda;                  // name -> count
    std::map<std::string, uint64_t> totals;                // LF, LH, BRF, BRH, FNF, FNH
    bool ended = false;
};

std::map<std::string, LcovFile> parse_lcov(const std::string& text) {
    std::map<std::string, LcovFile> out;
    LcovFile* cur = nullptr;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        const auto colon = l.find(':');
        const std::string key = l.substr(0, colon), val = colon == std::string::npos ? "" : l.substr(colon + 1);
        if (key == "TN") continue;
        if (key == "SF") {
            cur = &out[val];
            continue;
        }
        REQUIRE(cur != nullptr);   // every record is inside an SF
        if (key == "end_of_record") {
            cur->ended = true;
            cur = nullptr;
        } else if (key == "DA") {
            const auto comma = val.find(',');
            cur->da[static_cast<uint32_t>(std::stoul(val.substr(0, comma)))] = std::stoull(val.substr(comma + 1));
        } else if (key == "BRDA") {
            cur->brda.push_back(val);
        } else if (key == "FN") {
            const auto comma = val.find(',');
            cur->fn[val.substr(comma + 1)] = static_cast<uint32_t>(std::stoul(val.substr(0, comma)));
        } else if (key == "FNDA") {
            const auto comma = val.find(',');
            cur->fnda[val.substr(comma + 1)] = std::stoull(val.substr(0, comma));
        } else {
            cur->totals[key] = std::stoull(val);
        }
    }
    return out;
}

// The number of the first line of `file` that contains `text`.
uint32_t line_of(const fs::path& file, const std::string& text) {
    std::ifstream in(file);
    uint32_t n = 0;
    for (std::string l; std::getline(in, l);) {
        ++n;
        if (l.find(text) != std::string::npos) return n;
    }
    FAIL("no line with '" << text << "' in " << file);
    return 0;
}

std::vector<uint8_t> hex(const std::string& s) {
    auto b = parse_hex(s, "packet");
    REQUIRE(b);
    return *b;
}

const std::string kRunt = "ffffffffffff0200";
const std::string kTcp = "ffffffffffff 020000000001 0800 45000028 00004000 40060000 0a000001 0a000002 04d20050 00000000 00000000 5002ffff 00000000";
const std::string kIpv6 = "ffffffffffff 020000000001 86dd 60000000 00003b40 20010db8000000000000000000000001 20010db8000000000000000000000002";

}  // namespace

TEST_CASE("coverage: lcov of xdp_counter, lines that ran and lines that did not", "[coverage]") {
    const fs::path src = kSource / "corpus/net/xdp_counter.c";
    auto obj = Object::open(kCorpus / "xdp_counter.o");
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    CoverageReport report;
    const vm::RunOptions ro = report.options();

    // A runt frame: dropped at the first bounds check.
    auto r = (*w)->run_packet("xdp_count", hex(kRunt), ro);
    REQUIRE(r);
    REQUIRE(r->result.r0 == 1);   // XDP_DROP

    const uint32_t seen = line_of(src, "packets_seen++;");
    const uint32_t bounds = line_of(src, "if ((void *)(eth + 1) > data_end)");
    const uint32_t printk = line_of(src, "bpf_printk(\"first ipv4 packet");
    const uint32_t ipv6 = line_of(src, "count(ip6->nexthdr);");
    const uint32_t vlan = line_of(src, "proto = vh->proto;");

    auto files = parse_lcov(report.lcov("t", kSource));
    REQUIRE(files.size() == 1);
    REQUIRE(files.count(src.lexically_normal().string()) == 1);   // the source the object was built from, absolute
    LcovFile f = files.begin()->second;
    CHECK(f.ended);
    CHECK(f.da.at(seen) == 1);
    CHECK(f.da.at(bounds) == 1);
    CHECK(f.da.at(printk) == 0);
    CHECK(f.da.at(ipv6) == 0);
    CHECK(f.da.at(vlan) == 0);
    // LF/LH are the DA records; BRF/BRH the BRDA ones ("-": the jump never ran).
    std::size_t lh = 0, brh = 0, never = 0;
    for (const auto& [line, n] : f.da) lh += n > 0;
    for (const auto& b : f.brda) {
        const std::string taken = b.substr(b.rfind(',') + 1);
        if (taken == "-") ++never;
        else brh += std::stoull(taken) > 0;
    }
    CHECK(f.totals.at("LF") == f.da.size());
    CHECK(f.totals.at("LH") == lh);
    CHECK(f.totals.at("BRF") == f.brda.size());
    CHECK(f.totals.at("BRH") == brh);
    CHECK(f.brda.size() % 2 == 0);   // both directions of each jump
    CHECK(never > 0);
    CHECK(lh < f.da.size());
    CHECK(f.fn.count("xdp_count") == 1);
    CHECK(f.fnda.at("xdp_count") == 1);
    CHECK(f.totals.at("FNF") == 1);
    CHECK(f.totals.at("FNH") == 1);
    // The bounds check of the runt frame: taken once (to the drop), never fell through.
    const std::string bounds_prefix = std::to_string(bounds) + ",";
    uint64_t bounds_branches = 0;
    for (const auto& b : f.brda)
        if (b.starts_with(bounds_prefix)) bounds_branches += b.back() == '1';
    CHECK(bounds_branches == 1);

    const CoverageTotals t1 = report.totals();
    CHECK(t1.lines.total == f.da.size());
    CHECK(t1.lines.covered == lh);
    CHECK(t1.functions.total == 1);
    CHECK(t1.functions.covered == 1);
    CHECK(t1.branches.total == f.brda.size());
    CHECK(t1.branches.covered == brh);
    CHECK(t1.instructions.covered > 0);
    CHECK(t1.instructions.covered < t1.instructions.total);

    // IPv4 TCP (logged) and IPv6: their lines run, counts add up over runs.
    REQUIRE((*w)->run_packet("xdp_count", hex(kTcp), ro));
    REQUIRE((*w)->run_packet("xdp_count", hex(kIpv6), ro));
    f = parse_lcov(report.lcov("t", kSource)).begin()->second;
    CHECK(f.da.at(seen) == 3);
    CHECK(f.da.at(printk) == 1);
    CHECK(f.da.at(ipv6) == 1);
    CHECK(f.da.at(vlan) == 0);
    CHECK(f.fnda.at("xdp_count") == 3);
    const CoverageTotals t2 = report.totals();
    CHECK(t2.lines.covered > t1.lines.covered);
    CHECK(t2.lines.covered < t2.lines.total);   // VLAN lines still never ran
    CHECK(t2.instructions.covered > t1.instructions.covered);
    CHECK(t2.branches.covered > t1.branches.covered);
    CHECK(t2.instructions.total == t1.instructions.total);

    // The JSON summary: the same totals, and hits per pc.
    const auto j = nlohmann::json::parse(report.json());
    CHECK(j["total"]["lines"]["covered"] == t2.lines.covered);
    CHECK(j["total"]["lines"]["total"] == t2.lines.total);
    CHECK(j["total"]["instructions"]["covered"] == t2.instructions.covered);
    CHECK(j["total"]["branches"]["total"] == t2.branches.total);
    REQUIRE(j["programs"].size() == 1);
    CHECK(j["programs"][0]["program"] == "xdp_count");
    CHECK(j["programs"][0]["hits"][0] == 3);   // the entry ran once a run

    // The tracefile written to disk is the same text.
    const fs::path out = fs::temp_directory_path() / "bpfsim_test_coverage.info";
    auto n = report.write_lcov(out, "t", kSource);
    REQUIRE(n);
    std::ifstream in(out, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    CHECK(ss.str() == report.lcov("t", kSource));
    CHECK(*n == ss.str().size());
    fs::remove(out);
    CHECK_FALSE(report.write_lcov("/nonexistent-dir/x.info"));
}

TEST_CASE("coverage: a registered program that never ran has its lines at 0", "[coverage]") {
    auto obj = Object::open(kCorpus / "xdp_counter.o");
    REQUIRE(obj);
    auto lp = obj->link("xdp_count");
    REQUIRE(lp);
    CoverageReport report;
    report.add(lp->prog);
    auto f = parse_lcov(report.lcov()).begin()->second;
    CHECK(f.da.size() > 20);
    CHECK(f.totals.at("LH") == 0);
    CHECK(f.totals.at("FNH") == 0);
    CHECK(f.fnda.at("xdp_count") == 0);
    for (const auto& b : f.brda) CHECK(b.back() == '-');
    const std::size_t lines = f.da.size();
    // Running it in a world counts into the same program (same object file and name).
    auto w = World::create(*obj);
    REQUIRE(w);
    REQUIRE((*w)->run_packet("xdp_count", hex(kRunt), report.options()));
    CHECK(report.programs().size() == 1);
    f = parse_lcov(report.lcov()).begin()->second;
    CHECK(f.da.size() == lines);
    CHECK(f.totals.at("LH") > 0);
}

TEST_CASE("coverage: reports merged (one per thread) equal one report of every run", "[coverage]") {
    auto obj = Object::open(kCorpus / "xdp_counter.o");
    REQUIRE(obj);
    CoverageReport one, a, b;
    for (const auto& [pkt, into] : {std::pair{kRunt, &a}, std::pair{kTcp, &b}, std::pair{kIpv6, &b}}) {
        auto w1 = World::create(*obj);
        auto w2 = World::create(*obj);
        REQUIRE(w1);
        REQUIRE(w2);
        REQUIRE((*w1)->run_packet("xdp_count", hex(pkt), one.options()));
        REQUIRE((*w2)->run_packet("xdp_count", hex(pkt), into->options()));
    }
    CHECK(a.lcov() != one.lcov());
    CoverageReport merged;
    merged.merge(a);
    merged.merge(b);
    CHECK(merged.lcov() == one.lcov());
    CHECK(merged.json() == one.json());
}

TEST_CASE("coverage: the demo scenario against two kernel BTFs adds up in one record", "[coverage]") {
    auto sc = load_scenario(kSource / "corpus/demo/trace_exec.yaml", {kCorpus});
    REQUIRE(sc);
    REQUIRE(sc->btf.size() == 2);
    CoverageReport report;
    for (std::size_t b = 0; b < sc->btf.size(); ++b) {
        const ScenarioOutcome out = run_scenario(*sc, b, report.options());
        REQUIRE(out.passed());
    }
    const fs::path src = kSource / "corpus/demo/trace_exec.c";
    auto files = parse_lcov(report.lcov());
    REQUIRE(files.count(src.lexically_normal().string()) == 1);
    const LcovFile& f = files.at(src.lexically_normal().string());
    // Three steps run the program, once per BTF: every line ran six times.
    CHECK(f.da.at(line_of(src, "bpf_printk(\"exec: %d %s\\n\", pid, comm);")) == 6);
    CHECK(f.da.at(line_of(src, "return 0;")) == 6);
    CHECK(f.totals.at("LH") == f.totals.at("LF"));
    CHECK(f.fnda.at("trace_exec") == 6);
    CHECK(f.brda.empty());
    const CoverageTotals t = report.totals();
    CHECK(t.instructions.covered == t.instructions.total);
    CHECK(t.branches.total == 0);
}
