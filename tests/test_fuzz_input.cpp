// harness/fuzz.hpp: how fuzz bytes decode into map entries and a packet or context (the one
// function `bpfsim fuzz` and `bpfsim run --input` share), the layouts of real corpus programs,
// and FuzzTarget's oracles on them: the planted budget bug, the divergence check, reuse of the
// worlds between inputs.
#include "harness/fuzz.hpp"
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;

FuzzLayout packet_layout() { return FuzzLayout{}; }

FuzzLayout::MapPart part(MapType type, uint32_t key, uint32_t value, uint32_t max, uint32_t entries) {
    FuzzLayout::MapPart p;
    p.name = "m";
    p.type = type;
    p.key_size = key;
    p.value_size = value;
    p.max_entries = max;
    p.entries = entries;
    p.keyless = type == MapType::Queue || type == MapType::Stack || type == MapType::BloomFilter;
    return p;
}

std::vector<uint8_t> bytes(std::initializer_list<int> b) {
    std::vector<uint8_t> v;
    for (int x : b) v.push_back(static_cast<uint8_t>(x));
    return v;
}

// Eth/IPv4/UDP to port 7777 with a telemetry header: version 2, records flag, `count` records
// claimed, none present (corpus/fuzz/telemetry.c).
std::vector<uint8_t> telemetry_packet(uint32_t count) {
    auto p = build_packet(PacketSpec{.dport = 7777,
                                     .payload = bytes({'T', 'M', 2, 1, int(count >> 24), int(count >> 16 & 0xff), int(count >> 8 & 0xff), int(count & 0xff)})});
    REQUIRE(p);
    return *p;
}
}  // namespace

TEST_CASE("fuzz input: a packet program gets the bytes as the packet", "[fuzz]") {
    const FuzzLayout l = packet_layout();
    SECTION("short inputs are padded to an Ethernet header") {
        const auto in = decode_fuzz_input(l, bytes({1, 2, 3}));
        CHECK(in.entries.empty());
        CHECK(in.data == bytes({1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
        CHECK(decode_fuzz_input(l, {}).data == std::vector<uint8_t>(kFuzzMinPacket, 0));
    }
    SECTION("long inputs are cut to the test-run limit") {
        std::vector<uint8_t> big(kFuzzMaxPacket + 100, 0xab);
        big[kFuzzMaxPacket - 1] = 7;
        const auto in = decode_fuzz_input(l, big);
        REQUIRE(in.data.size() == kFuzzMaxPacket);
        CHECK(in.data.back() == 7);
    }
    SECTION("encode is decode's inverse for a packet") {
        const auto pkt = telemetry_packet(5);
        CHECK(encode_fuzz_input(l, pkt) == pkt);
        CHECK(decode_fuzz_input(l, encode_fuzz_input(l, pkt)).data == pkt);
    }
    CHECK(l.max_len() == 1514);
}

TEST_CASE("fuzz input: map records come first, key then value, zero past the end", "[fuzz]") {
    FuzzLayout l;
    l.maps.push_back(part(MapType::Hash, 2, 3, 16, 2));
    l.maps.push_back(part(MapType::Queue, 4, 2, 8, 1));
    REQUIRE(l.map_bytes() == 2 * 5 + 2);
    SECTION("every record in order, then the packet") {
        auto in = decode_fuzz_input(l, bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xee, 0xff}));
        REQUIRE(in.entries.size() == 3);
        CHECK(in.entries[0].part == 0);
        CHECK(in.entries[0].key == bytes({1, 2}));
        CHECK(in.entries[0].value == bytes({3, 4, 5}));
        CHECK(in.entries[1].key == bytes({6, 7}));
        CHECK(in.entries[1].value == bytes({8, 9, 10}));
        CHECK(in.entries[2].part == 1);
        CHECK(in.entries[2].key.empty());   // a queue takes values only
        CHECK(in.entries[2].value == bytes({11, 12}));
        CHECK(in.data == bytes({0xee, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
    }
    SECTION("a short input leaves the rest of the records zero") {
        auto in = decode_fuzz_input(l, bytes({9, 9, 9}));
        REQUIRE(in.entries.size() == 3);
        CHECK(in.entries[0].key == bytes({9, 9}));
        CHECK(in.entries[0].value == bytes({9, 0, 0}));
        CHECK(in.entries[1].key == bytes({0, 0}));
        CHECK(in.entries[2].value == bytes({0, 0}));
        CHECK(in.data == std::vector<uint8_t>(kFuzzMinPacket, 0));
    }
    SECTION("a seed has zero records before its packet") {
        const auto pkt = telemetry_packet(1);
        const auto seed = encode_fuzz_input(l, pkt);
        CHECK(seed.size() == l.map_bytes() + pkt.size());
        CHECK(std::all_of(seed.begin(), seed.begin() + 12, [](uint8_t b) { return b == 0; }));
        CHECK(decode_fuzz_input(l, seed).data == pkt);
    }
}

TEST_CASE("fuzz input: array keys wrap to max_entries", "[fuzz]") {
    FuzzLayout l;
    l.maps.push_back(part(MapType::Array, 4, 1, 10, 1));
    auto in = decode_fuzz_input(l, bytes({23, 0, 0, 0, 5}));   // 23 % 10
    CHECK(in.entries[0].key == bytes({3, 0, 0, 0}));
    CHECK(in.entries[0].value == bytes({5}));
    in = decode_fuzz_input(l, bytes({0xff, 0xff, 0xff, 0xff, 5}));   // 4294967295 % 10
    CHECK(in.entries[0].key == bytes({5, 0, 0, 0}));
}

TEST_CASE("fuzz input: a context program gets the bytes over its context", "[fuzz]") {
    FuzzLayout l;
    l.packet = false;
    l.base_ctx = bytes({10, 11, 12, 13, 14, 15});
    CHECK(decode_fuzz_input(l, bytes({1, 2})).data == bytes({1, 2, 12, 13, 14, 15}));   // the rest stays
    CHECK(decode_fuzz_input(l, bytes({1, 2, 3, 4, 5, 6, 7, 8})).data == bytes({1, 2, 3, 4, 5, 6}));   // past the end: ignored
    CHECK(decode_fuzz_input(l, {}).data == l.base_ctx);
    CHECK(decode_fuzz_input(l, encode_fuzz_input(l, l.base_ctx)).data == l.base_ctx);
    CHECK(l.max_len() == 6);
}

TEST_CASE("fuzz input: --fuzz-map specs and layouts of real maps", "[fuzz]") {
    CHECK(parse_fuzz_map_spec("flows")->entries == 1);
    CHECK(parse_fuzz_map_spec("flows:8")->entries == 8);
    CHECK(parse_fuzz_map_spec("flows:8")->name == "flows");
    CHECK_FALSE(parse_fuzz_map_spec("flows:0"));
    CHECK_FALSE(parse_fuzz_map_spec("flows:x"));
    CHECK_FALSE(parse_fuzz_map_spec(":3"));

    auto obj = Object::open(kCorpus / "fuzz_telemetry.o");
    REQUIRE(obj);
    const ProgramDef* def = obj->find_program("tm_collect");
    REQUIRE(def);
    auto l = make_fuzz_layout(*obj, *def, {{"kinds", 2}}, {});
    REQUIRE(l);
    CHECK(l->packet);
    REQUIRE(l->maps.size() == 1);
    CHECK(l->maps[0].type == MapType::Array);
    CHECK(l->maps[0].record() == 4 + 8);
    CHECK(l->map_bytes() == 24);
    auto missing = make_fuzz_layout(*obj, *def, {{"nosuch", 1}}, {});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message().find("no map 'nosuch'") != std::string::npos);
    CHECK(missing.error().message().find("kinds") != std::string::npos);   // what there is

    auto rb = Object::open(kCorpus / "feat_ringbuf_perf.o");
    REQUIRE(rb);
    std::string ring;
    for (const auto& m : rb->maps())
        if (m.type == MapType::Ringbuf) ring = m.name;
    REQUIRE_FALSE(ring.empty());
    auto refused = make_fuzz_layout(*rb, rb->programs().front(), {{ring, 1}}, {});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message().find("cannot be fuzzed") != std::string::npos);
}

TEST_CASE("fuzz target: the planted budget bug, found the same way by run and replay", "[fuzz]") {
    auto obj = Object::open(kCorpus / "fuzz_telemetry.o");
    REQUIRE(obj);
    FuzzOptions o;
    o.program = "tm_collect";
    auto t = FuzzTarget::create(*obj, o);
    REQUIRE(t);
    FuzzTarget& target = **t;
    CHECK(target.layout().packet);
    REQUIRE(target.seeds().size() == 1);   // a plain UDP packet: no scenario
    CHECK(target.instructions() > 50);
    // The compare constants: the port and the magic bytes ('T' = 84, 'M' = 77).
    const auto consts = target.constants();
    CHECK(std::count(consts.begin(), consts.end(), 84u) == 1);
    CHECK(std::count(consts.begin(), consts.end(), 77u) == 1);

    auto clean = target.run(target.seeds().front());
    CHECK_FALSE(clean.finding);
    CHECK(clean.run.result.r0 == 0);   // TC_ACT_OK
    REQUIRE_FALSE(target.coverage().empty());
    CHECK(target.coverage().front().second->hits.at(0) == 1);

    // Two records claimed, none present: walked, nothing counted, dropped.
    auto few = target.run(telemetry_packet(2));
    CHECK_FALSE(few.finding);
    CHECK(few.run.result.r0 == 2);   // TC_ACT_SHOT
    // A count past what the budget allows.
    auto bug = target.run(telemetry_packet(500000));
    REQUIRE(bug.finding);
    CHECK(bug.finding->kind == FuzzFinding::Kind::Budget);
    CHECK(bug.finding->source.find("telemetry.c:") != std::string::npos);
    auto again = target.replay(telemetry_packet(500000));
    REQUIRE(again.finding);
    CHECK(again.finding->kind == FuzzFinding::Kind::Budget);
    CHECK(again.finding->source == bug.finding->source);
    CHECK(again.finding->pc == bug.finding->pc);
    // The worlds were put back: the same input gives the same run as in fresh worlds.
    auto reused = target.run(telemetry_packet(2));
    auto fresh = target.replay(telemetry_packet(2));
    CHECK(reused.run.result.r0 == fresh.run.result.r0);
    CHECK(reused.run.result.insns == fresh.run.result.insns);
    CHECK(target.stats().unconfirmed == 0);
    CHECK(target.covered() > 0);
    CHECK(target.covered() <= target.instructions());
}

TEST_CASE("fuzz target: inputs with map records give the same run every time (the worlds are put back)", "[fuzz]") {
    auto obj = Object::open(kCorpus / "xdp_counter.o");
    REQUIRE(obj);
    FuzzOptions o;
    o.program = "xdp_count";
    o.maps = {{"flows", 3}, {"proto_count", 2}};   // a hash map keyed by flow, an array by protocol
    auto t = FuzzTarget::create(*obj, o);
    REQUIRE(t);
    const auto seed = (*t)->seeds().front();
    auto first = (*t)->run(seed);
    for (int i = 0; i < 5; ++i) {   // the same input, the same run: nothing leaks between inputs
        auto r = (*t)->run(seed);
        CHECK_FALSE(r.finding);
        CHECK(r.run.result.r0 == first.run.result.r0);
        CHECK(r.run.result.insns == first.run.result.insns);
    }
}

TEST_CASE("fuzz target: interpreter/JIT divergence is a finding", "[fuzz]") {
    // helpers_tracing's raw_tp program stores bpf_get_prandom_u32() in a map: a JIT world with
    // another PRNG seed stands in for a JIT that computes something else.
    auto obj = Object::open(kCorpus / "feat_helpers_tracing.o");
    REQUIRE(obj);
    FuzzOptions o;
    o.program = "ids";
    auto same = FuzzTarget::create(*obj, o);
    REQUIRE(same);
    CHECK_FALSE((*same)->run((*same)->seeds().front()).finding);
    o.second_world = [](WorldOptions& w) { w.seed = 12345; };
    auto t = FuzzTarget::create(*obj, o);
    REQUIRE(t);
    CHECK_FALSE((*t)->layout().packet);
    auto r = (*t)->run((*t)->seeds().front());
    REQUIRE(r.finding);
    CHECK(r.finding->kind == FuzzFinding::Kind::Divergence);
    CHECK(r.finding->message.find("interpreter") != std::string::npos);
    CHECK(r.finding->message.find("JIT") != std::string::npos);
    o.differential = false;   // --no-jit: no second world, no divergence
    auto solo = FuzzTarget::create(*obj, o);
    REQUIRE(solo);
    CHECK_FALSE((*solo)->run((*solo)->seeds().front()).finding);
}
