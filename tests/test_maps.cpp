// BPF maps: each type's semantics and errno values, as the kernel gives them.
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

MapDef def(MapType type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags = 0, std::string name = "m") {
    MapDef d;
    d.name = std::move(name);
    d.type = type;
    d.key_size = key;
    d.value_size = value;
    d.max_entries = max;
    d.flags = flags;
    return d;
}

std::unique_ptr<Map> make(const MapDef& d, MapOptions o = {}) {
    auto r = Map::create(d, o);
    if (!r) FAIL(r.error().describe());
    return std::move(r).value();
}

// The error creating d gives, or nothing.
std::optional<Error> create_error(const MapDef& d, MapOptions o = {}) {
    auto r = Map::create(d, o);
    if (r) return std::nullopt;
    return r.error();
}

// Whether [p, p+n) lies inside one of m's regions granting perm.
bool inside(const Map& m, const void* p, std::size_t n, uint8_t perm = vm::kRead) {
    const auto a = reinterpret_cast<uint64_t>(p);
    for (const auto& r : m.regions())
        if (a >= r.start && a + n <= r.end() && (r.perm & perm) == perm) return true;
    return false;
}

uint64_t u64(const void* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

uint32_t u32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Every key get_next_key visits from the start.
template <class K>
std::vector<K> all_keys(Map& m) {
    std::vector<K> out;
    K k{}, next{};
    bool first = true;
    for (int guard = 0; guard < 100000; ++guard) {
        if (m.get_next_key(first ? nullptr : &k, &next) != 0) break;
        first = false;
        k = next;
        out.push_back(k);
    }
    return out;
}

struct Lpm4 {
    uint32_t prefixlen;
    uint8_t addr[4];
};

Lpm4 lpm4(uint32_t plen, uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Lpm4{plen, {a, b, c, d}}; }

}  // namespace

// ───────────────────────────────── creation ─────────────────────────────────

TEST_CASE("map creation refuses what the kernel refuses, naming the map", "[maps]") {
    struct Bad {
        MapDef d;
        const char* says;
    };
    MapDef bloom_extra = def(MapType::BloomFilter, 0, 4, 8, 0, "b");
    bloom_extra.map_extra = 0x15;
    const std::vector<Bad> bad = {
        {def(MapType::Array, 8, 8, 4, 0, "arr"), "key size 8 is not 4"},
        {def(MapType::Array, 4, 0, 4, 0, "arr"), "value size is 0"},
        {def(MapType::Array, 4, 8, 0, 0, "arr"), "max_entries is 0"},
        {def(MapType::Array, 4, 8, 4, kBpfFNoPrealloc, "arr"), "map_flags 0x1"},
        {def(MapType::Array, 4, 8, 4, kBpfFRdonlyProg | kBpfFWronlyProg, "arr"), "both read-only and write-only"},
        {def(MapType::PercpuArray, 4, 40000, 4, 0, "pa"), "E2BIG"},
        {def(MapType::PercpuArray, 4, 8, 4, kBpfFMmapable, "pa"), "BPF_F_MMAPABLE"},
        {def(MapType::Hash, 0, 8, 4, 0, "h"), "key size is 0"},
        {def(MapType::Hash, 600, 8, 4, 0, "h"), "E2BIG"},
        {def(MapType::Hash, 4, 8, 4, kBpfFNoCommonLru, "h"), "LRU"},
        {def(MapType::LruHash, 4, 8, 4, kBpfFNoPrealloc, "lru"), "ENOTSUPP"},
        {def(MapType::ProgArray, 4, 8, 4, 0, "progs"), "value size 8 is not 4"},
        {def(MapType::ArrayOfMaps, 4, 8, 4, 0, "aom"), "value size 8 is not 4"},
        {def(MapType::HashOfMaps, 4, 8, 4, 0, "hom"), "value size 8 is not 4"},
        {def(MapType::LpmTrie, 8, 4, 16, 0, "lpm"), "BPF_F_NO_PREALLOC"},
        {def(MapType::LpmTrie, 4, 4, 16, kBpfFNoPrealloc, "lpm"), "key size 4"},
        {def(MapType::LpmTrie, 261, 4, 16, kBpfFNoPrealloc, "lpm"), "key size 261"},
        {def(MapType::Ringbuf, 0, 0, 1000, 0, "rb"), "power of two"},
        {def(MapType::Ringbuf, 0, 0, 3 * 4096, 0, "rb"), "power of two"},
        {def(MapType::Ringbuf, 0, 0, 2048, 0, "rb"), "power of two"},
        {def(MapType::Ringbuf, 4, 0, 4096, 0, "rb"), "key and value size must be 0"},
        {def(MapType::Queue, 4, 4, 8, 0, "q"), "key size 4 is not 0"},
        {def(MapType::Stack, 0, 0, 8, 0, "s"), "value size is 0"},
        {def(MapType::BloomFilter, 4, 4, 8, 0, "b"), "key size 4 is not 0"},
        {bloom_extra, "map_extra 0x15"},
        {def(MapType::StackTrace, 4, 12, 8, 0, "st"), "multiple of 8"},
        {def(MapType::StackTrace, 4, 8 * 128, 8, 0, "st"), "more than 127 frames"},
        {def(MapType::Devmap, 4, 12, 8, 0, "dev"), "neither 4 nor 8"},
        {def(MapType::Cpumap, 4, 4, 10000, 0, "cpus"), "NR_CPUS"},
        {def(MapType::Xskmap, 4, 8, 8, 0, "xsks"), "value size 8 is not 4"},
        {def(MapType::Sockmap, 4, 2, 8, 0, "socks"), "neither 4 nor 8"},
    };
    for (const auto& b : bad) {
        INFO(b.d.name << " (" << to_string(b.d.type) << ") should fail with " << b.says);
        auto e = create_error(b.d);
        REQUIRE(e);
        CHECK(e->code() == ErrorCode::InvalidElf);
        CHECK_THAT(e->message(), Catch::Contains("map '" + b.d.name + "'"));
        CHECK_THAT(e->message(), Catch::Contains(b.says));
    }
}

TEST_CASE("map types bpfsim does not provide are Unsupported, naming map and type", "[maps]") {
    for (MapType t : {MapType::CgroupStorage, MapType::StructOps, MapType::Arena, MapType::TaskStorage}) {
        auto e = create_error(def(t, 4, 8, 1, 0, "special"));
        REQUIRE(e);
        CHECK(e->code() == ErrorCode::Unsupported);
        CHECK_THAT(e->message(), Catch::Contains("map 'special'"));
        CHECK_THAT(e->message(), Catch::Contains(std::string(to_string(t))));
    }
}

TEST_CASE("valid definitions of every provided type create", "[maps]") {
    MapDef bloom = def(MapType::BloomFilter, 0, 4, 64);
    const std::vector<MapDef> ok = {
        def(MapType::Array, 4, 1, 1),          def(MapType::PercpuArray, 4, 8, 4),      def(MapType::Hash, 16, 24, 8),
        def(MapType::PercpuHash, 4, 8, 8),     def(MapType::LruHash, 4, 8, 8),          def(MapType::LruPercpuHash, 4, 8, 8),
        def(MapType::ProgArray, 4, 4, 8),      def(MapType::PerfEventArray, 4, 4, 0),   def(MapType::Ringbuf, 0, 0, 1 << 16),
        def(MapType::ArrayOfMaps, 4, 4, 2),    def(MapType::HashOfMaps, 8, 4, 2),       def(MapType::Queue, 0, 4, 8),
        def(MapType::Stack, 0, 4, 8),          def(MapType::LpmTrie, 20, 4, 8, kBpfFNoPrealloc), bloom,
        def(MapType::Devmap, 4, 8, 8),         def(MapType::DevmapHash, 4, 4, 8),       def(MapType::Cpumap, 4, 8, 8),
        def(MapType::Xskmap, 4, 4, 8),         def(MapType::Sockmap, 4, 8, 8),          def(MapType::Sockhash, 12, 4, 8),
        def(MapType::StackTrace, 4, 127 * 8, 8), def(MapType::CgroupArray, 4, 4, 2),
    };
    for (const auto& d : ok) {
        INFO(to_string(d.type));
        auto r = Map::create(d, MapOptions{4, 1});
        REQUIRE(r.ok());
        CHECK((*r)->def().type == d.type);
    }
}

TEST_CASE("huge maps reserve their storage lazily", "[maps]") {
    // cilium's 1M-entry maps: the reservation is virtual, only touched pages cost memory.
    auto arr = make(def(MapType::Array, 4, 64, 1u << 20));
    auto hash = make(def(MapType::PercpuHash, 16, 128, 1u << 20), MapOptions{8, 0});
    const uint32_t last = (1u << 20) - 1;
    auto* v = static_cast<uint8_t*>(arr->lookup(&last, 0));
    REQUIRE(v);
    CHECK(inside(*arr, v, 64, vm::kReadWrite));
    CHECK(u64(v) == 0);
    std::array<uint8_t, 16> key{};
    std::array<uint8_t, 128> val{};
    for (uint32_t i = 0; i < 1000; ++i) {
        std::memcpy(key.data(), &i, 4);
        val[0] = static_cast<uint8_t>(i);
        REQUIRE(hash->update(key.data(), val.data(), kBpfNoexist, i % 8) == 0);
    }
    CHECK(hash->count() == 1000);
    const uint32_t k7 = 7;
    std::memcpy(key.data(), &k7, 4);
    auto* p = static_cast<uint8_t*>(hash->lookup(key.data(), 7));
    REQUIRE(p);
    CHECK(p[0] == 7);
    CHECK(inside(*hash, p, 128, vm::kReadWrite));
}

// Resident memory of this process, in bytes.
uint64_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST_CASE("a definition's max_entries costs address space, not memory, in every slot type", "[maps]") {
    // An object (or a fuzzer) may ask for 2^31 entries; the kernel would try, and fail,
    // to allocate. bpfsim must neither touch gigabytes nor hang counting them.
    const uint32_t huge = 1u << 31, last = huge - 1;   // the most an array type takes
    const uint64_t before = resident_bytes();
    auto prog_array = make(def(MapType::ProgArray, 4, 4, huge));
    MapDef aom = def(MapType::ArrayOfMaps, 4, 4, huge, 0, "outer");
    aom.inner = std::make_shared<MapDef>(def(MapType::Hash, 4, 8, 16, 0, "tmpl"));
    auto outer = make(aom);
    auto devmap = make(def(MapType::Devmap, 4, 4, huge));
    auto perf = make(def(MapType::PerfEventArray, 4, 4, huge), MapOptions{2, 0});
    auto bloom = make(def(MapType::BloomFilter, 0, 8, huge), MapOptions{1, 7});
    CHECK(resident_bytes() < before + (64u << 20));

    // Every slot is usable, the last one too.
    const uint32_t prog = 3;
    REQUIRE(prog_array->user_update(&last, &prog, kBpfAny) == 0);
    CHECK(prog_array->prog_at(last) == 3);
    CHECK(prog_array->count() == 1);
    CHECK(outer->inner_at(&last) == nullptr);
    CHECK(outer->lookup(&last, 0) == nullptr);
    const uint32_t ifindex = 2;
    REQUIRE(devmap->user_update(&last, &ifindex, kBpfAny) == 0);
    CHECK(devmap->has(last));
    CHECK_FALSE(devmap->has(last - 1));
    CHECK(perf->count() == 2);   // the CPUs' slots
    REQUIRE(perf->user_update(&last, &ifindex, kBpfAny) == 0);
    CHECK(perf->has(last));
    CHECK(perf->count() == 3);
    REQUIRE(perf->user_delete(&last) == 0);
    CHECK(perf->user_delete(&last) == errc::kENOENT);
    uint64_t v = 99;
    REQUIRE(bloom->push(&v, kBpfAny) == 0);
    CHECK(bloom->peek(&v) == 0);
    CHECK(resident_bytes() < before + (64u << 20));
}

// ─────────────────────────────────── arrays ─────────────────────────────────

TEST_CASE("array: preallocated, zeroed, 8-byte slots inside the map's region", "[maps][array]") {
    auto m = make(def(MapType::Array, 4, 12, 4, 0, "counters"));
    REQUIRE(m->regions().size() == 1);
    CHECK(m->regions()[0].kind == vm::RegionKind::MapValue);
    CHECK(m->regions()[0].name == "counters");
    CHECK(m->regions()[0].perm == vm::kReadWrite);
    CHECK(m->count() == 4);
    std::vector<uint8_t*> slots;
    for (uint32_t i = 0; i < 4; ++i) {
        auto* v = static_cast<uint8_t*>(m->lookup(&i, 0));
        REQUIRE(v);
        CHECK(reinterpret_cast<uintptr_t>(v) % 8 == 0);
        CHECK(inside(*m, v, 12, vm::kReadWrite));
        CHECK(std::all_of(v, v + 12, [](uint8_t b) { return b == 0; }));
        slots.push_back(v);
    }
    CHECK(slots[1] - slots[0] == 16);   // round_up(12, 8)
    const uint32_t four = 4, big = 0xffffffff;
    CHECK(m->lookup(&four, 0) == nullptr);
    CHECK(m->lookup(&big, 0) == nullptr);

    // Programs write through the pointer; userspace sees it.
    std::memcpy(slots[2], "hello world!", 12);
    std::array<char, 12> out{};
    const uint32_t two = 2;
    REQUIRE(m->user_lookup(&two, out.data()) == 0);
    CHECK(std::string(out.data(), 12) == "hello world!");
    CHECK(m->user_lookup(&four, out.data()) == errc::kENOENT);
}

TEST_CASE("array: update flags and errno values", "[maps][array]") {
    auto m = make(def(MapType::Array, 4, 8, 4));
    const uint64_t v = 42;
    const uint32_t one = 1, four = 4;
    CHECK(m->update(&one, &v, kBpfAny, 0) == 0);
    CHECK(u64(m->lookup(&one, 0)) == 42);
    CHECK(m->update(&one, &v, kBpfExist, 0) == 0);
    CHECK(m->update(&one, &v, kBpfNoexist, 0) == errc::kEEXIST);   // every element exists
    CHECK(m->update(&one, &v, 3, 0) == errc::kEINVAL);
    CHECK(m->update(&one, &v, 8, 0) == errc::kEINVAL);
    CHECK(m->update(&four, &v, kBpfAny, 0) == errc::kE2BIG);
    CHECK(m->update(&one, &v, kBpfFLock, 0) == 0);
    CHECK(m->erase(&one) == errc::kEINVAL);
    CHECK(m->user_delete(&one) == errc::kEINVAL);
    CHECK(m->user_update(&four, &v, kBpfAny) == errc::kE2BIG);
    CHECK(m->user_update(&one, &v, kBpfNoexist) == errc::kEEXIST);
    CHECK(m->push(&v, 0) == errc::kEINVAL);
}

TEST_CASE("array: get_next_key visits every index and restarts on an unknown key", "[maps][array]") {
    auto m = make(def(MapType::Array, 4, 8, 3));
    CHECK(all_keys<uint32_t>(*m) == std::vector<uint32_t>{0, 1, 2});
    uint32_t next = 99;
    const uint32_t two = 2, far = 17;
    CHECK(m->get_next_key(&two, &next) == errc::kENOENT);
    CHECK(m->get_next_key(&far, &next) == 0);
    CHECK(next == 0);
}

TEST_CASE("array: frozen maps are read-only to programs, freeze() stops userspace", "[maps][array]") {
    MapDef d = def(MapType::Array, 4, 16, 1, 0, ".rodata");
    d.frozen = true;
    auto m = make(d);
    REQUIRE(m->regions().size() == 1);
    CHECK(m->regions()[0].perm == vm::kRead);
    const uint32_t zero = 0;
    const std::array<uint8_t, 16> v{1, 2, 3};
    CHECK(inside(*m, m->lookup(&zero, 0), 16, vm::kRead));
    CHECK_FALSE(inside(*m, m->lookup(&zero, 0), 16, vm::kWrite));
    CHECK(m->update(&zero, v.data(), 0, 0) == errc::kEPERM);
    CHECK(m->user_update(&zero, v.data(), 0) == 0);   // the loader fills it before freezing
    m->freeze();
    CHECK(m->user_update(&zero, v.data(), 0) == errc::kEPERM);
    std::array<uint8_t, 16> out{};
    CHECK(m->user_lookup(&zero, out.data()) == 0);
    CHECK(out == v);

    auto ro = make(def(MapType::Array, 4, 8, 1, kBpfFRdonlyProg));
    CHECK(ro->regions()[0].perm == vm::kRead);
    auto wo = make(def(MapType::Array, 4, 8, 1, kBpfFWronlyProg));
    CHECK(wo->regions()[0].perm == vm::kWrite);
    auto user_ro = make(def(MapType::Array, 4, 8, 1, kBpfFRdonly));
    const uint64_t x = 1;
    CHECK(user_ro->user_update(&zero, &x, 0) == errc::kEPERM);
    CHECK(user_ro->update(&zero, &x, 0, 0) == 0);
}

TEST_CASE("percpu array: one copy per CPU, bpf(2) values are ncpus 8-byte blocks", "[maps][array][percpu]") {
    auto m = make(def(MapType::PercpuArray, 4, 4, 2), MapOptions{3, 0});
    CHECK(m->user_value_size() == 24);
    const uint32_t one = 1;
    std::set<void*> ptrs;
    for (unsigned cpu = 0; cpu < 3; ++cpu) {
        void* p = m->lookup(&one, cpu);
        REQUIRE(p);
        CHECK(inside(*m, p, 4, vm::kReadWrite));
        ptrs.insert(p);
    }
    CHECK(ptrs.size() == 3);
    const uint32_t v = 0xaabbccdd;
    REQUIRE(m->update(&one, &v, 0, 1) == 0);   // from CPU 1
    CHECK(u32(m->lookup(&one, 1)) == v);
    CHECK(u32(m->lookup(&one, 0)) == 0);
    CHECK(m->update(&one, &v, kBpfNoexist, 0) == errc::kEEXIST);
    CHECK(m->update(&one, &v, kBpfFLock, 0) == errc::kEINVAL);

    std::array<uint8_t, 24> all{};
    std::memset(all.data(), 0x55, all.size());
    REQUIRE(m->user_lookup(&one, all.data()) == 0);
    CHECK(u64(all.data()) == 0);
    CHECK(u64(all.data() + 8) == 0xaabbccdd);   // CPU 1's block, padding included
    CHECK(u64(all.data() + 16) == 0);

    std::array<uint32_t, 6> in{1, 0, 2, 0, 3, 0};   // three 8-byte blocks
    REQUIRE(m->user_update(&one, in.data(), 0) == 0);
    for (unsigned cpu = 0; cpu < 3; ++cpu) CHECK(u32(m->lookup(&one, cpu)) == cpu + 1);
    CHECK(m->user_update(&one, in.data(), kBpfNoexist) == errc::kEEXIST);
    CHECK(m->user_update(&one, in.data(), kBpfFLock) == errc::kEINVAL);
}

// ─────────────────────────────────── hashes ─────────────────────────────────

TEST_CASE("hash: BPF_ANY, BPF_NOEXIST, BPF_EXIST, full maps and deletes", "[maps][hash]") {
    auto m = make(def(MapType::Hash, 8, 8, 3, 0, "flows"));
    auto key = [](uint64_t k) { return k; };
    const uint64_t a = key(1), b = key(2), c = key(3), d = key(4);
    uint64_t v = 10;
    CHECK(m->lookup(&a, 0) == nullptr);
    CHECK(m->update(&a, &v, kBpfExist, 0) == errc::kENOENT);
    CHECK(m->update(&a, &v, kBpfNoexist, 0) == 0);
    CHECK(m->update(&a, &v, kBpfNoexist, 0) == errc::kEEXIST);
    v = 11;
    CHECK(m->update(&a, &v, kBpfExist, 0) == 0);
    auto* p = m->lookup(&a, 0);
    REQUIRE(p);
    CHECK(u64(p) == 11);
    CHECK(inside(*m, p, 8, vm::kReadWrite));
    CHECK(m->update(&b, &v, kBpfAny, 0) == 0);
    CHECK(m->update(&c, &v, kBpfAny, 0) == 0);
    CHECK(m->count() == 3);
    CHECK(m->update(&d, &v, kBpfAny, 0) == errc::kE2BIG);   // full
    CHECK(m->update(&c, &v, kBpfAny, 0) == 0);              // replacing still works
    CHECK(m->update(&a, &v, 3, 0) == errc::kEINVAL);
    CHECK(m->erase(&d) == errc::kENOENT);
    CHECK(m->erase(&b) == 0);
    CHECK(m->lookup(&b, 0) == nullptr);
    CHECK(m->count() == 2);
    v = 44;
    CHECK(m->update(&d, &v, kBpfNoexist, 0) == 0);   // the freed slot is reused
    auto* pd = m->lookup(&d, 0);
    REQUIRE(pd);
    CHECK(u64(pd) == 44);
    CHECK(inside(*m, pd, 8, vm::kReadWrite));
    uint64_t out = 0;
    CHECK(m->user_lookup(&d, &out) == 0);
    CHECK(out == 44);
    CHECK(m->user_delete(&d) == 0);
    CHECK(m->user_delete(&d) == errc::kENOENT);
    CHECK(m->user_lookup(&d, &out) == errc::kENOENT);
}

TEST_CASE("percpu hash: a new entry starts zeroed even in a reused slot", "[maps][hash][percpu]") {
    auto m = make(def(MapType::PercpuHash, 4, 8, 1), MapOptions{2, 0});
    const uint32_t k1 = 1, k2 = 2;
    const uint64_t a = 0x1111, b = 0x2222;
    REQUIRE(m->update(&k1, &a, 0, 0) == 0);
    REQUIRE(m->update(&k1, &b, 0, 1) == 0);
    CHECK(u64(m->lookup(&k1, 0)) == 0x1111);
    CHECK(u64(m->lookup(&k1, 1)) == 0x2222);
    REQUIRE(m->erase(&k1) == 0);
    REQUIRE(m->update(&k2, &a, 0, 0) == 0);   // the only slot again
    CHECK(u64(m->lookup(&k2, 0)) == 0x1111);
    CHECK(u64(m->lookup(&k2, 1)) == 0);
}

TEST_CASE("hash: get_next_key visits every key once, unknown keys restart", "[maps][hash]") {
    auto m = make(def(MapType::Hash, 4, 4, 16));
    for (uint32_t k : {9u, 3u, 27u, 1u, 14u}) REQUIRE(m->update(&k, &k, 0, 0) == 0);
    auto keys = all_keys<uint32_t>(*m);
    CHECK(keys.size() == 5);
    CHECK(std::set<uint32_t>(keys.begin(), keys.end()) == std::set<uint32_t>{1, 3, 9, 14, 27});
    uint32_t next = 0;
    const uint32_t missing = 100;
    REQUIRE(m->get_next_key(&missing, &next) == 0);
    CHECK(next == keys[0]);
    CHECK(m->get_next_key(&keys.back(), &next) == errc::kENOENT);
    auto empty = make(def(MapType::Hash, 4, 4, 16));
    CHECK(empty->get_next_key(nullptr, &next) == errc::kENOENT);
}

TEST_CASE("percpu hash: programs write their CPU's copy, bpf(2) all of them", "[maps][hash][percpu]") {
    auto m = make(def(MapType::PercpuHash, 4, 8, 4), MapOptions{4, 0});
    const uint32_t k = 5;
    const uint64_t v = 0x1234;
    REQUIRE(m->update(&k, &v, kBpfNoexist, 2) == 0);
    for (unsigned cpu = 0; cpu < 4; ++cpu) {
        auto* p = m->lookup(&k, cpu);
        REQUIRE(p);
        CHECK(inside(*m, p, 8, vm::kReadWrite));
        CHECK(u64(p) == (cpu == 2 ? 0x1234u : 0u));
    }
    CHECK(m->update(&k, &v, kBpfFLock, 0) == errc::kEINVAL);
    std::array<uint64_t, 4> all{};
    REQUIRE(m->user_lookup(&k, all.data()) == 0);
    CHECK(all == std::array<uint64_t, 4>{0, 0, 0x1234, 0});
    const std::array<uint64_t, 4> in{5, 6, 7, 8};
    const uint32_t k2 = 6;
    CHECK(m->user_update(&k2, in.data(), kBpfExist) == errc::kENOENT);
    REQUIRE(m->user_update(&k2, in.data(), kBpfNoexist) == 0);
    for (unsigned cpu = 0; cpu < 4; ++cpu) CHECK(u64(m->lookup(&k2, cpu)) == 5 + cpu);
    CHECK(m->user_update(&k2, in.data(), kBpfFLock) == errc::kEINVAL);
}

TEST_CASE("LRU hash: a full map evicts the least recently used entry", "[maps][hash][lru]") {
    auto m = make(def(MapType::LruHash, 4, 8, 3));
    const uint64_t v = 1;
    auto has = [&](uint32_t k) {
        uint64_t out;
        return m->user_lookup(&k, &out) == 0;   // does not count as a use
    };
    for (uint32_t k : {1u, 2u, 3u}) REQUIRE(m->update(&k, &v, kBpfNoexist, 0) == 0);
    // Recency, most recent first: 3 2 1. A lookup from a program is a use.
    const uint32_t k1 = 1, k3 = 3, k4 = 4, k5 = 5, k6 = 6;
    REQUIRE(m->lookup(&k1, 0));   // 1 3 2
    REQUIRE(m->update(&k4, &v, kBpfAny, 0) == 0);   // evicts 2: 4 1 3
    CHECK_FALSE(has(2));
    CHECK(has(1));
    CHECK(has(3));
    CHECK(has(4));
    CHECK(m->count() == 3);
    REQUIRE(m->update(&k3, &v, kBpfExist, 0) == 0);   // an update is a use: 3 4 1
    REQUIRE(m->update(&k5, &v, kBpfNoexist, 0) == 0);   // evicts 1: 5 3 4
    CHECK_FALSE(has(1));
    CHECK(has(4));
    // Userspace lookups above did not refresh 4: it goes next.
    REQUIRE(m->user_update(&k6, &v, kBpfAny) == 0);   // evicts 4: 6 5 3
    CHECK_FALSE(has(4));
    CHECK(has(3));
    CHECK(has(5));
    CHECK(has(6));
    // Deleting frees a slot: no eviction on the next insert.
    REQUIRE(m->erase(&k5) == 0);
    REQUIRE(m->update(&k1, &v, kBpfAny, 0) == 0);
    CHECK(has(3));
    CHECK(has(6));
    CHECK(has(1));
    CHECK(m->count() == 3);
    CHECK(m->update(&k1, &v, kBpfNoexist, 0) == errc::kEEXIST);
}

TEST_CASE("LRU percpu hash: eviction and per-CPU values together", "[maps][hash][lru][percpu]") {
    auto m = make(def(MapType::LruPercpuHash, 4, 4, 2), MapOptions{2, 0});
    const uint32_t a = 1, b = 2, c = 3, v = 9;
    REQUIRE(m->update(&a, &v, 0, 1) == 0);
    REQUIRE(m->update(&b, &v, 0, 0) == 0);
    REQUIRE(m->lookup(&a, 0));
    REQUIRE(m->update(&c, &v, 0, 1) == 0);   // evicts b
    CHECK(m->lookup(&b, 0) == nullptr);
    CHECK(u32(m->lookup(&a, 1)) == 9);
    CHECK(u32(m->lookup(&c, 1)) == 9);
    CHECK(u32(m->lookup(&c, 0)) == 0);
    CHECK(inside(*m, m->lookup(&c, 1), 4, vm::kReadWrite));
    std::array<uint32_t, 4> all{};
    REQUIRE(m->user_lookup(&c, all.data()) == 0);
    CHECK(all == std::array<uint32_t, 4>{0, 0, 9, 0});
}

// ─────────────────────────────── slot containers ────────────────────────────

TEST_CASE("prog array: slots hold program ids, programs cannot look it up", "[maps][prog_array]") {
    auto m = make(def(MapType::ProgArray, 4, 4, 4, 0, "jmp_table"));
    CHECK(m->regions().empty());
    const uint32_t one = 1, four = 4, id = 7;
    CHECK(m->prog_at(1) == -1);
    REQUIRE(m->user_update(&one, &id, kBpfAny) == 0);
    CHECK(m->prog_at(1) == 7);
    CHECK(m->prog_at(0) == -1);
    CHECK(m->prog_at(4) == -1);
    CHECK(m->lookup(&one, 0) == nullptr);
    CHECK(m->has(1));
    CHECK(m->count() == 1);
    uint32_t out = 0;
    CHECK(m->user_lookup(&one, &out) == 0);
    CHECK(out == 7);
    const uint32_t zero = 0;
    CHECK(m->user_lookup(&zero, &out) == errc::kENOENT);
    CHECK(m->user_update(&one, &id, kBpfNoexist) == errc::kEINVAL);   // fd arrays take only BPF_ANY
    CHECK(m->user_update(&four, &id, kBpfAny) == errc::kE2BIG);
    CHECK(m->update(&one, &id, kBpfAny, 0) == errc::kEINVAL);
    CHECK(all_keys<uint32_t>(*m) == std::vector<uint32_t>{0, 1, 2, 3});
    CHECK(m->user_delete(&zero) == errc::kENOENT);
    CHECK(m->user_delete(&four) == errc::kE2BIG);
    CHECK(m->user_delete(&one) == 0);
    CHECK(m->prog_at(1) == -1);
    CHECK(m->count() == 0);
}

TEST_CASE("devmap and devmap_hash: redirect targets with read-only values", "[maps][devmap]") {
    auto m = make(def(MapType::Devmap, 4, 8, 4, 0, "ports"));
    struct Val {
        uint32_t ifindex;
        int32_t prog_fd;
    };
    const uint32_t two = 2, four = 4;
    CHECK_FALSE(m->has(2));
    CHECK(m->lookup(&two, 0) == nullptr);
    Val v{7, 0};
    REQUIRE(m->user_update(&two, &v, kBpfAny) == 0);
    CHECK(m->has(2));
    auto* p = m->lookup(&two, 0);
    REQUIRE(p);
    CHECK(u32(p) == 7);
    CHECK(inside(*m, p, 8, vm::kRead));
    CHECK_FALSE(inside(*m, p, 8, vm::kWrite));
    CHECK(m->user_update(&two, &v, kBpfNoexist) == errc::kEEXIST);
    CHECK(m->user_update(&four, &v, kBpfAny) == errc::kE2BIG);
    CHECK(m->user_update(&two, &v, 4) == errc::kEINVAL);
    Val bad{0, 3};
    CHECK(m->user_update(&two, &bad, kBpfAny) == errc::kEINVAL);   // a program without a device
    Val none{0, 0};
    REQUIRE(m->user_update(&two, &none, kBpfAny) == 0);   // ifindex 0 empties the slot
    CHECK_FALSE(m->has(2));
    Val out{};
    CHECK(m->user_lookup(&two, &out) == errc::kENOENT);
    REQUIRE(m->user_update(&two, &v, kBpfExist) == 0);
    REQUIRE(m->user_lookup(&two, &out) == 0);
    CHECK(out.ifindex == 7);
    CHECK(m->user_delete(&two) == 0);
    CHECK(m->user_delete(&two) == 0);   // deleting an empty devmap slot succeeds
    CHECK(m->user_delete(&four) == errc::kEINVAL);
    CHECK(m->update(&two, &v, 0, 0) == errc::kEINVAL);

    auto h = make(def(MapType::DevmapHash, 4, 4, 2, 0, "ports_h"));
    const uint32_t k10 = 10, k11 = 11, k12 = 12, ifi = 3, zero_if = 0;
    REQUIRE(h->user_update(&k10, &ifi, kBpfExist) == 0);   // devmap_hash ignores BPF_EXIST
    CHECK(h->has(10));
    CHECK_FALSE(h->has(11));
    CHECK(h->user_update(&k10, &ifi, kBpfNoexist) == errc::kEEXIST);
    CHECK(h->user_update(&k10, &zero_if, kBpfNoexist) == errc::kEEXIST);
    CHECK(h->user_update(&k11, &zero_if, kBpfAny) == errc::kEINVAL);
    REQUIRE(h->user_update(&k11, &ifi, kBpfAny) == 0);
    CHECK(h->user_update(&k12, &ifi, kBpfAny) == errc::kE2BIG);
    auto* hp = h->lookup(&k11, 0);
    REQUIRE(hp);
    CHECK(inside(*h, hp, 4, vm::kRead));
    CHECK_FALSE(inside(*h, hp, 4, vm::kWrite));
    CHECK(h->user_delete(&k12) == errc::kENOENT);
}

TEST_CASE("cpumap, xskmap, sockmap, sockhash, cgroup_array: containers with the kernel's errno", "[maps][containers]") {
    const uint32_t zero = 0, one = 1, three = 3, eight = 8;
    SECTION("cpumap") {
        auto m = make(def(MapType::Cpumap, 4, 4, 8), MapOptions{2, 0});
        const uint32_t q = 192, huge = 20000, none = 0;
        REQUIRE(m->user_update(&one, &q, 0) == 0);
        CHECK(m->has(1));
        CHECK(inside(*m, m->lookup(&one, 0), 4, vm::kRead));
        CHECK(m->user_update(&three, &q, 0) == errc::kENODEV);   // only 2 CPUs
        CHECK(m->user_update(&eight, &q, 0) == errc::kE2BIG);
        CHECK(m->user_update(&one, &huge, 0) == errc::kEOVERFLOW);
        CHECK(m->user_update(&one, &q, kBpfNoexist) == errc::kEEXIST);
        REQUIRE(m->user_update(&one, &none, 0) == 0);   // qsize 0 deletes
        CHECK_FALSE(m->has(1));
        CHECK(m->user_delete(&eight) == errc::kEINVAL);
    }
    SECTION("xskmap") {
        auto m = make(def(MapType::Xskmap, 4, 4, 4));
        const uint32_t fd = 5;
        CHECK(m->user_update(&one, &fd, kBpfExist) == errc::kENOENT);
        REQUIRE(m->user_update(&one, &fd, kBpfNoexist) == 0);
        CHECK(m->user_update(&one, &fd, kBpfNoexist) == errc::kEEXIST);
        CHECK(m->has(1));
        CHECK(m->lookup(&one, 0) != nullptr);   // the xdpsock pattern: lookup, then redirect
        CHECK(m->lookup(&zero, 0) == nullptr);
        uint32_t out;
        CHECK(m->user_lookup(&one, &out) == errc::kEOPNOTSUPP);
        CHECK(m->user_delete(&zero) == 0);
    }
    SECTION("sockmap") {
        auto m = make(def(MapType::Sockmap, 4, 4, 4));
        const uint32_t fd = 5;
        CHECK(m->update(&one, &fd, 0, 0) == errc::kEOPNOTSUPP);
        REQUIRE(m->user_update(&one, &fd, 0) == 0);
        CHECK(m->has(1));
        uint32_t out;
        CHECK(m->user_lookup(&one, &out) == errc::kENOSPC);   // the cookie needs 8 bytes
        CHECK(m->user_lookup(&zero, &out) == errc::kENOSPC);
        CHECK(m->user_delete(&zero) == errc::kEINVAL);
        CHECK(m->erase(&one) == 0);
        CHECK_FALSE(m->has(1));
        auto m8 = make(def(MapType::Sockmap, 4, 8, 4));
        const uint64_t cookie = 0x1122334455;
        REQUIRE(m8->user_update(&one, &cookie, 0) == 0);
        uint64_t c = 0;
        REQUIRE(m8->user_lookup(&one, &c) == 0);
        CHECK(c == cookie);
    }
    SECTION("sockhash") {
        auto m = make(def(MapType::Sockhash, 8, 8, 2));
        const uint64_t k = 77, fd = 5;
        CHECK(m->update(&k, &fd, 0, 0) == errc::kEOPNOTSUPP);
        REQUIRE(m->user_update(&k, &fd, 0) == 0);
        CHECK(m->count() == 1);
        CHECK(m->erase(&k) == 0);
        CHECK(m->erase(&k) == errc::kENOENT);
    }
    SECTION("cgroup_array") {
        auto m = make(def(MapType::CgroupArray, 4, 4, 2));
        const uint32_t fd = 9;
        REQUIRE(m->user_update(&one, &fd, 0) == 0);
        CHECK(m->has(1));
        CHECK(m->lookup(&one, 0) == nullptr);
        uint32_t out;
        CHECK(m->user_lookup(&one, &out) == errc::kENOTSUPP);
        CHECK(m->regions().empty());
    }
}

// ───────────────────────────────── map in map ───────────────────────────────

TEST_CASE("array_of_maps and hash_of_maps: values resolve to inner maps", "[maps][map_in_map]") {
    auto inner_a = make(def(MapType::Hash, 4, 8, 16, 0, "inner_a"));
    auto inner_b = make(def(MapType::Hash, 4, 8, 16, 0, "inner_b"));
    auto other = make(def(MapType::Array, 4, 8, 16, 0, "other"));
    std::vector<Map*> world = {inner_a.get(), inner_b.get(), other.get()};
    auto resolve = [&](uint32_t i) -> Map* { return i < world.size() ? world[i] : nullptr; };

    MapDef outer_def = def(MapType::ArrayOfMaps, 4, 4, 4, 0, "outer");
    outer_def.inner = std::make_shared<MapDef>(def(MapType::Hash, 4, 8, 16, 0, "tmpl"));
    auto outer = make(outer_def);
    const uint32_t slot = 2, idx_b = 1, idx_other = 2, idx_missing = 9;
    CHECK(outer->user_update(&slot, &idx_b, 0) == errc::kEBADF);   // no resolver yet
    outer->resolve_map = resolve;
    CHECK(outer->user_update(&slot, &idx_missing, 0) == errc::kEBADF);
    CHECK(outer->user_update(&slot, &idx_other, 0) == errc::kEINVAL);   // not like the template
    CHECK(outer->user_update(&slot, &idx_b, kBpfNoexist) == errc::kEINVAL);
    REQUIRE(outer->user_update(&slot, &idx_b, 0) == 0);
    CHECK(outer->inner_at(&slot) == inner_b.get());
    CHECK(outer->lookup(&slot, 0) == static_cast<void*>(inner_b.get()));
    const uint32_t zero = 0;
    CHECK(outer->lookup(&zero, 0) == nullptr);
    CHECK(outer->inner_at(&zero) == nullptr);
    uint32_t out = 0;
    REQUIRE(outer->user_lookup(&slot, &out) == 0);
    CHECK(out == 1);
    CHECK(outer->update(&slot, &idx_b, 0, 0) == errc::kEINVAL);
    CHECK(outer->regions().empty());
    REQUIRE(outer->user_delete(&slot) == 0);
    CHECK(outer->inner_at(&slot) == nullptr);

    // BPF_F_INNER_MAP lets inner maps differ in max_entries.
    MapDef loose_def = def(MapType::HashOfMaps, 8, 4, 2, 0, "by_name");
    loose_def.inner = std::make_shared<MapDef>(def(MapType::Array, 4, 8, 1, kBpfFInnerMap, "tmpl"));
    auto loose = make(loose_def);
    loose->resolve_map = resolve;
    auto inner_c = make(def(MapType::Array, 4, 8, 99, kBpfFInnerMap, "inner_c"));
    world.push_back(inner_c.get());
    const uint64_t ka = 0x61, kb = 0x62, kc = 0x63;
    const uint32_t idx_a = 0, idx_c = 3;
    CHECK(loose->user_update(&ka, &idx_a, 0) == errc::kEINVAL);   // a hash, not an array
    REQUIRE(loose->user_update(&ka, &idx_c, kBpfNoexist) == 0);
    CHECK(loose->user_update(&ka, &idx_c, kBpfNoexist) == errc::kEEXIST);
    CHECK(loose->user_update(&kb, &idx_c, kBpfExist) == errc::kENOENT);
    REQUIRE(loose->user_update(&kb, &idx_c, 0) == 0);
    CHECK(loose->user_update(&kc, &idx_c, 0) == errc::kE2BIG);
    CHECK(loose->lookup(&ka, 0) == static_cast<void*>(inner_c.get()));
    CHECK(loose->inner_at(&kb) == inner_c.get());
    CHECK(loose->inner_at(&kc) == nullptr);
    REQUIRE(loose->user_lookup(&ka, &out) == 0);
    CHECK(out == 3);
    CHECK(loose->erase(&ka) == errc::kEINVAL);   // programs only look map-in-maps up
    CHECK(loose->user_delete(&ka) == 0);
    CHECK(loose->regions().empty());
}

// ───────────────────────────────── queue, stack ─────────────────────────────

TEST_CASE("queue is FIFO, stack is LIFO; BPF_EXIST drops the oldest when full", "[maps][queue]") {
    auto q = make(def(MapType::Queue, 0, 4, 3));
    auto s = make(def(MapType::Stack, 0, 4, 3));
    for (Map* m : {q.get(), s.get()}) {
        for (uint32_t v : {1u, 2u, 3u}) REQUIRE(m->push(&v, kBpfAny) == 0);
        const uint32_t four = 4;
        CHECK(m->push(&four, kBpfAny) == errc::kE2BIG);
        CHECK(m->push(&four, kBpfNoexist) == errc::kEINVAL);
        CHECK(m->push(&four, 3) == errc::kEINVAL);
        CHECK(m->count() == 3);
        REQUIRE(m->push(&four, kBpfExist) == 0);   // 1 goes
        CHECK(m->count() == 3);
        CHECK(m->regions().empty());
        CHECK(m->lookup(nullptr, 0) == nullptr);
        CHECK(m->update(nullptr, &four, 0, 0) == errc::kEINVAL);
        CHECK(m->erase(nullptr) == errc::kEINVAL);
        uint32_t k;
        CHECK(m->get_next_key(nullptr, &k) == errc::kEINVAL);
        CHECK(m->user_delete(nullptr) == errc::kEINVAL);
    }
    auto drain = [](Map& m) {
        std::vector<uint32_t> out;
        uint32_t v, peeked;
        while (m.peek(&peeked) == 0) {
            REQUIRE(m.pop(&v) == 0);
            CHECK(v == peeked);
            out.push_back(v);
        }
        CHECK(m.pop(&v) == errc::kENOENT);
        CHECK(m.peek(&v) == errc::kENOENT);
        return out;
    };
    CHECK(drain(*q) == std::vector<uint32_t>{2, 3, 4});
    CHECK(drain(*s) == std::vector<uint32_t>{4, 3, 2});
    // bpf(2): update pushes, lookup peeks.
    const uint32_t nine = 9, ten = 10;
    REQUIRE(q->user_update(nullptr, &nine, 0) == 0);
    REQUIRE(q->user_update(nullptr, &ten, 0) == 0);
    uint32_t v = 0;
    REQUIRE(q->user_lookup(nullptr, &v) == 0);
    CHECK(v == 9);
    CHECK(q->count() == 2);
}

// ────────────────────────────────── LPM trie ────────────────────────────────

TEST_CASE("LPM trie: longest prefix match, exact updates and deletes", "[maps][lpm]") {
    auto m = make(def(MapType::LpmTrie, 8, 4, 4, kBpfFNoPrealloc, "routes"));
    auto put = [&](Lpm4 k, uint32_t v, uint64_t flags = 0) { return m->update(&k, &v, flags, 0); };
    auto get = [&](Lpm4 k) -> int64_t {
        void* p = m->lookup(&k, 0);
        if (!p) return -1;
        CHECK(inside(*m, p, 4, vm::kReadWrite));
        return u32(p);
    };
    REQUIRE(put(lpm4(8, 10, 0, 0, 0), 1) == 0);
    REQUIRE(put(lpm4(16, 10, 1, 0, 0), 2) == 0);
    CHECK(get(lpm4(32, 10, 1, 2, 3)) == 2);
    CHECK(get(lpm4(32, 10, 2, 0, 1)) == 1);
    CHECK(get(lpm4(32, 11, 0, 0, 1)) == -1);
    CHECK(get(lpm4(8, 10, 1, 2, 3)) == 1);     // the key's own prefix length bounds the match
    CHECK(get(lpm4(33, 10, 1, 2, 3)) == -1);   // longer than the data: no match
    REQUIRE(put(lpm4(0, 0, 0, 0, 0), 99) == 0);   // default route
    CHECK(get(lpm4(32, 11, 0, 0, 1)) == 99);
    // Bits past the prefix do not matter: this is 10.0.0.0/8 again.
    CHECK(put(lpm4(8, 10, 9, 9, 9), 5, kBpfNoexist) == errc::kEEXIST);
    REQUIRE(put(lpm4(8, 10, 9, 9, 9), 5, kBpfExist) == 0);
    CHECK(get(lpm4(32, 10, 2, 0, 1)) == 5);
    CHECK(put(lpm4(24, 10, 1, 2, 0), 3, kBpfExist) == errc::kENOENT);
    CHECK(put(lpm4(33, 10, 1, 2, 0), 3) == errc::kEINVAL);
    CHECK(put(lpm4(24, 10, 1, 2, 0), 3, 4) == errc::kEINVAL);
    REQUIRE(put(lpm4(24, 10, 1, 2, 0), 3) == 0);
    CHECK(m->count() == 4);
    CHECK(put(lpm4(25, 10, 1, 2, 0), 3) == errc::kENOSPC);   // full
    CHECK(get(lpm4(32, 10, 1, 2, 200)) == 3);

    // Deletes need the exact prefix.
    Lpm4 k = lpm4(12, 10, 0, 0, 0);
    CHECK(m->erase(&k) == errc::kENOENT);
    k = lpm4(40, 10, 0, 0, 0);
    CHECK(m->erase(&k) == errc::kEINVAL);
    k = lpm4(16, 10, 1, 0, 0);
    REQUIRE(m->erase(&k) == 0);
    CHECK(get(lpm4(32, 10, 1, 9, 9)) == 5);    // falls back to /8
    CHECK(get(lpm4(32, 10, 1, 2, 9)) == 3);

    // bpf(2) lookups match the longest prefix too.
    uint32_t out = 0;
    Lpm4 probe = lpm4(32, 10, 7, 7, 7);
    REQUIRE(m->user_lookup(&probe, &out) == 0);
    CHECK(out == 5);
    probe = lpm4(32, 10, 1, 2, 7);
    REQUIRE(m->user_lookup(&probe, &out) == 0);
    CHECK(out == 3);
}

TEST_CASE("LPM trie: get_next_key visits every key exactly once", "[maps][lpm]") {
    auto m = make(def(MapType::LpmTrie, 8, 4, 16, kBpfFNoPrealloc));
    const std::vector<Lpm4> keys = {lpm4(8, 10, 0, 0, 0), lpm4(16, 10, 1, 0, 0), lpm4(16, 10, 0, 0, 0), lpm4(32, 192, 168, 1, 1),
                                    lpm4(0, 0, 0, 0, 0),  lpm4(24, 10, 1, 2, 0), lpm4(9, 10, 128, 0, 0)};
    for (uint32_t i = 0; i < keys.size(); ++i) REQUIRE(m->update(&keys[i], &i, 0, 0) == 0);
    std::vector<Lpm4> seen;
    Lpm4 cur{}, next{};
    bool first = true;
    while (m->get_next_key(first ? nullptr : &cur, &next) == 0) {
        first = false;
        cur = next;
        seen.push_back(cur);
        REQUIRE(seen.size() <= keys.size());
    }
    auto id = [](const Lpm4& k) { return std::make_pair(k.prefixlen, u32(k.addr)); };
    std::set<std::pair<uint32_t, uint32_t>> want, got;
    for (const auto& k : keys) want.insert(id(k));
    for (const auto& k : seen) got.insert(id(k));
    CHECK(seen.size() == keys.size());
    CHECK(got == want);
    Lpm4 unknown = lpm4(20, 1, 2, 3, 0);
    REQUIRE(m->get_next_key(&unknown, &next) == 0);   // unknown: start again
    CHECK(id(next) == id(seen[0]));
}

TEST_CASE("LPM trie: IPv6-sized keys", "[maps][lpm]") {
    auto m = make(def(MapType::LpmTrie, 20, 8, 8, kBpfFNoPrealloc));
    struct Key {
        uint32_t prefixlen;
        uint8_t addr[16];
    };
    Key net{48, {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34}};
    Key host{128, {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
    const uint64_t a = 1, b = 2;
    REQUIRE(m->update(&net, &a, 0, 0) == 0);
    Key probe = host;
    probe.addr[15] = 2;
    CHECK(u64(m->lookup(&probe, 0)) == 1);
    REQUIRE(m->update(&host, &b, 0, 0) == 0);
    CHECK(u64(m->lookup(&host, 0)) == 2);
    CHECK(u64(m->lookup(&probe, 0)) == 1);
    probe.addr[5] = 0x35;
    CHECK(m->lookup(&probe, 0) == nullptr);
    Key too_long = host;
    too_long.prefixlen = 129;
    CHECK(m->update(&too_long, &a, 0, 0) == errc::kEINVAL);
}

// ──────────────────────────────── bloom filter ──────────────────────────────

TEST_CASE("bloom filter: no false negatives, few false positives, deterministic", "[maps][bloom]") {
    MapDef d = def(MapType::BloomFilter, 0, 8, 256);
    auto m = make(d, MapOptions{1, 42});
    auto same = make(d, MapOptions{1, 42});
    for (uint64_t i = 0; i < 256; ++i) {
        const uint64_t v = i * 7919 + 1;
        REQUIRE(m->push(&v, kBpfAny) == 0);
        REQUIRE(same->push(&v, kBpfAny) == 0);
    }
    CHECK(m->count() == 256);
    for (uint64_t i = 0; i < 256; ++i) {
        uint64_t v = i * 7919 + 1;
        CHECK(m->peek(&v) == 0);
        CHECK(m->user_lookup(nullptr, &v) == 0);
    }
    int false_positives = 0;
    for (uint64_t i = 0; i < 10000; ++i) {
        uint64_t v = 0x100000000ull + i;
        const int64_t r = m->peek(&v);
        CHECK((r == 0 || r == errc::kENOENT));
        if (r == 0) ++false_positives;
        CHECK(same->peek(&v) == r);   // the same seed gives the same filter
    }
    CHECK(false_positives < 500);   // about 1% at these sizes
    uint64_t v = 1;
    CHECK(m->push(&v, kBpfExist) == errc::kEINVAL);
    CHECK(m->pop(&v) == errc::kEOPNOTSUPP);
    CHECK(m->update(nullptr, &v, 0, 0) == errc::kEINVAL);
    CHECK(m->lookup(nullptr, 0) == nullptr);
    CHECK(m->erase(nullptr) == errc::kEOPNOTSUPP);
    CHECK(m->user_delete(nullptr) == errc::kEOPNOTSUPP);
    CHECK(m->get_next_key(nullptr, &v) == errc::kEOPNOTSUPP);
    CHECK(m->regions().empty());

    // One hash function (map_extra = 1), filled from userspace.
    MapDef one = def(MapType::BloomFilter, 0, 4, 16);
    one.map_extra = 1;
    auto f = make(one);
    for (uint32_t i = 0; i < 16; ++i) REQUIRE(f->user_update(nullptr, &i, 0) == 0);
    for (uint32_t i = 0; i < 16; ++i) CHECK(f->peek(&i) == 0);
    CHECK(f->user_update(nullptr, &v, kBpfNoexist) == errc::kEINVAL);
}

// ──────────────────────────────── ring buffer ───────────────────────────────

TEST_CASE("ringbuf: records carry the kernel's header and drain in order", "[maps][ringbuf]") {
    auto base = make(def(MapType::Ringbuf, 0, 0, 4096, 0, "events"));
    auto* rb = dynamic_cast<RingbufMap*>(base.get());
    REQUIRE(rb);
    REQUIRE(rb->regions().size() == 1);
    CHECK(rb->regions()[0].size == 2 * 4096);
    CHECK(rb->query(RingbufMap::kRingSize) == 4096);

    auto* a = static_cast<uint8_t*>(rb->reserve(5, 0));
    REQUIRE(a);
    CHECK(inside(*rb, a, 5, vm::kReadWrite));
    CHECK(a == rb->data() + 8);
    CHECK(u32(a - 8) == (5u | RingbufMap::kBusy));
    CHECK(u32(a - 4) == 3);   // pg_off: the data area starts 3 pages into struct bpf_ringbuf
    CHECK(rb->query(RingbufMap::kProdPos) == 16);
    CHECK(rb->query(RingbufMap::kAvailData) == 16);
    std::memcpy(a, "abcde", 5);

    auto* b = static_cast<uint8_t*>(rb->reserve(8, 0));
    REQUIRE(b);
    CHECK(b == a + 16);
    std::memcpy(b, "discard!", 8);
    const uint32_t payload = 0xc0ffee;
    REQUIRE(rb->output(&payload, 4, RingbufMap::kNoWakeup) == 0);
    // a is still reserved: the consumer waits for it.
    CHECK(rb->drain().empty());
    REQUIRE(rb->discard(b, 0) == 0);
    CHECK(u32(b - 8) == (8u | RingbufMap::kDiscard));
    REQUIRE(rb->submit(a, 0) == 0);
    CHECK(u32(a - 8) == 5u);
    CHECK(rb->submit(a, 0) == errc::kEINVAL);   // already committed
    CHECK(rb->submit(a + 1, 0) == errc::kEINVAL);
    uint8_t outside[16];
    CHECK(rb->submit(outside + 8, 0) == errc::kEINVAL);

    auto records = rb->drain();
    REQUIRE(records.size() == 2);
    CHECK(std::string(records[0].begin(), records[0].end()) == "abcde");
    REQUIRE(records[1].size() == 4);
    CHECK(u32(records[1].data()) == 0xc0ffee);
    CHECK(rb->query(RingbufMap::kConsPos) == 16 + 16 + 16);
    CHECK(rb->query(RingbufMap::kAvailData) == 0);
    CHECK(rb->query(99) == 0);
    CHECK(rb->dropped() == 0);

    // Ring buffers have no keys.
    CHECK(rb->lookup(nullptr, 0) == nullptr);
    CHECK(rb->update(nullptr, nullptr, 0, 0) == errc::kENOTSUPP);
    CHECK(rb->get_next_key(nullptr, nullptr) == errc::kENOTSUPP);
    CHECK(rb->output(&payload, 4, 4) == errc::kEINVAL);
    CHECK(rb->reserve(8, 1) == nullptr);
    CHECK(rb->dropped() == 0);   // bad flags are not a drop
}

TEST_CASE("ringbuf: a full ring drops records and counts them", "[maps][ringbuf]") {
    auto base = make(def(MapType::Ringbuf, 0, 0, 4096));
    auto* rb = dynamic_cast<RingbufMap*>(base.get());
    REQUIRE(rb);
    // A record of a whole ring never fits: the producer stays less than a ring ahead.
    CHECK(rb->reserve(4088, 0) == nullptr);
    CHECK(rb->dropped() == 1);
    void* big = rb->reserve(4080, 0);   // 4088 bytes with its header: the largest that fits
    REQUIRE(big);
    CHECK(rb->reserve(1, 0) == nullptr);
    CHECK(rb->dropped() == 2);
    const uint64_t x = 1;
    CHECK(rb->output(&x, 8, 0) == errc::kEAGAIN);
    CHECK(rb->dropped() == 3);
    REQUIRE(rb->submit(big, 0) == 0);
    CHECK(rb->drain().size() == 1);
    CHECK(rb->output(&x, 8, 0) == 0);   // room again
    CHECK(rb->reserve(1u << 30, 0) == nullptr);
    CHECK(rb->dropped() == 4);
}

TEST_CASE("ringbuf: records wrap around the end and stay contiguous", "[maps][ringbuf]") {
    auto base = make(def(MapType::Ringbuf, 0, 0, 4096));
    auto* rb = dynamic_cast<RingbufMap*>(base.get());
    REQUIRE(rb);
    // Move the positions near the end of the ring.
    std::vector<uint8_t> filler(4000, 0xaa);
    REQUIRE(rb->output(filler.data(), filler.size(), 0) == 0);
    REQUIRE(rb->drain().size() == 1);
    CHECK(rb->query(RingbufMap::kConsPos) == 4008);
    // 200 bytes from offset 4008: the record crosses the end of the data area.
    std::vector<uint8_t> rec(200);
    for (std::size_t i = 0; i < rec.size(); ++i) rec[i] = static_cast<uint8_t>(i);
    auto* p = static_cast<uint8_t*>(rb->reserve(rec.size(), 0));
    REQUIRE(p);
    CHECK(p == rb->data() + 4008 + 8);
    CHECK(inside(*rb, p, rec.size(), vm::kReadWrite));   // the second mapping covers the tail
    std::memcpy(p, rec.data(), rec.size());
    // The bytes past the end landed at the start of the ring: the same pages.
    CHECK(rb->data()[p + 100 - (rb->data() + 4096)] == rec[100]);
    REQUIRE(rb->submit(p, RingbufMap::kForceWakeup) == 0);
    const uint32_t after = 0x5a5a5a5a;
    REQUIRE(rb->output(&after, 4, 0) == 0);
    auto* next_hdr = rb->data() + ((4008 + 208) & 4095);
    CHECK(u32(next_hdr) == 4);
    CHECK(u32(next_hdr + 4) == 3);   // page 0 of the data again
    auto out = rb->drain();
    REQUIRE(out.size() == 2);
    CHECK(out[0] == rec);
    CHECK(u32(out[1].data()) == after);
    CHECK(rb->query(RingbufMap::kProdPos) == 4008 + 208 + 16);
    // Header page offsets past the first page.
    std::vector<uint8_t> more(1000, 1);
    for (int i = 0; i < 3; ++i) REQUIRE(rb->output(more.data(), more.size(), 0) == 0);
    auto* later = static_cast<uint8_t*>(rb->reserve(8, 0));
    REQUIRE(later);
    const auto off = static_cast<uint64_t>(later - 8 - rb->data());
    CHECK(u32(later - 4) == off / 4096 + 3);
    CHECK(rb->discard(later, 0) == 0);
    CHECK(rb->drain().size() == 3);
}

// ──────────────────────────────── perf events ───────────────────────────────

TEST_CASE("perf event array: output to the current CPU's slot", "[maps][perf]") {
    auto base = make(def(MapType::PerfEventArray, 4, 4, 0, 0, "events"), MapOptions{4, 0});
    auto* pe = dynamic_cast<PerfEventArrayMap*>(base.get());
    REQUIRE(pe);
    CHECK(pe->def().max_entries == 4);   // sized to the CPUs, as libbpf does
    CHECK(pe->count() == 4);
    const char msg[] = "hi";
    REQUIRE(pe->perf_output(PerfEventArrayMap::kCurrentCpu, msg, 2, 2) == 0);
    REQUIRE(pe->perf_output(1, msg, 3, 1) == 0);
    CHECK(pe->perf_output(0, msg, 2, 1) == errc::kEOPNOTSUPP);   // slot 0's event is on CPU 0
    CHECK(pe->perf_output(4, msg, 2, 1) == errc::kE2BIG);
    CHECK(pe->perf_output(1ull << 60, msg, 2, 1) == errc::kEINVAL);
    REQUIRE(pe->perf_output(PerfEventArrayMap::kCurrentCpu | (8ull << 32), msg, 2, 3) == 0);   // context length bits
    REQUIRE(pe->records().size() == 3);
    CHECK(pe->records()[0].cpu == 2);
    CHECK(pe->records()[0].data == std::vector<uint8_t>{'h', 'i'});
    CHECK(pe->records()[1].cpu == 1);
    CHECK(pe->records()[1].data.size() == 3);
    CHECK(pe->records()[2].cpu == 3);
    // Closing a slot: output there fails with -ENOENT until userspace opens it again.
    const uint32_t two = 2, nine = 9, fd = 33;
    REQUIRE(pe->user_delete(&two) == 0);
    CHECK(pe->user_delete(&two) == errc::kENOENT);
    CHECK(pe->output(PerfEventArrayMap::kCurrentCpu, msg, 2, 2) == errc::kENOENT);
    CHECK(pe->user_update(&two, &fd, kBpfNoexist) == errc::kEINVAL);
    CHECK(pe->user_update(&nine, &fd, 0) == errc::kE2BIG);
    REQUIRE(pe->user_update(&two, &fd, 0) == 0);
    CHECK(pe->output(PerfEventArrayMap::kCurrentCpu, msg, 2, 2) == 0);
    CHECK(pe->records().size() == 4);
    CHECK(pe->lookup(&two, 0) == nullptr);
    uint32_t out;
    CHECK(pe->user_lookup(&two, &out) == errc::kENOTSUPP);
    pe->clear_records();
    CHECK(pe->records().empty());
    CHECK(pe->regions().empty());
}

// ──────────────────────────────── stack traces ──────────────────────────────

TEST_CASE("stack trace: ids for stacks, zero-filled values, bucket collisions", "[maps][stack_trace]") {
    auto base = make(def(MapType::StackTrace, 4, 4 * 8, 4, 0, "stacks"));
    auto* st = dynamic_cast<StackTraceMap*>(base.get());
    REQUIRE(st);
    CHECK(st->buckets() == 4);
    const std::vector<uint64_t> s1 = {0xffff1000, 0xffff2000}, s2 = {0xffff3000, 0xffff4000, 0xffff5000, 0xffff6000, 0xffff7000};
    const int64_t id1 = st->get_stackid(s1, 0);
    REQUIRE(id1 >= 0);
    CHECK(id1 < 4);
    CHECK(st->get_stackid(s1, 0) == id1);   // the same stack, the same id
    CHECK(st->get_stackid({}, 0) == errc::kEFAULT);
    const uint32_t key1 = static_cast<uint32_t>(id1);
    std::array<uint64_t, 4> out{};
    out.fill(0xdead);
    REQUIRE(st->user_lookup(&key1, out.data()) == 0);
    CHECK(out == std::array<uint64_t, 4>{0xffff1000, 0xffff2000, 0, 0});
    CHECK(st->lookup(&key1, 0) == nullptr);   // programs only call bpf_get_stackid
    CHECK(st->user_update(&key1, out.data(), 0) == errc::kEINVAL);
    CHECK(st->count() == 1);
    CHECK(all_keys<uint32_t>(*st) == std::vector<uint32_t>{key1});
    REQUIRE(st->user_delete(&key1) == 0);
    CHECK(st->user_delete(&key1) == errc::kENOENT);
    const uint32_t past = 4;
    CHECK(st->user_delete(&past) == errc::kE2BIG);
    CHECK(st->count() == 0);
    // A stack deeper than value_size / 8 is cut.
    const int64_t id2 = st->get_stackid(s2, 0);
    REQUIRE(id2 >= 0);
    const uint32_t key2 = static_cast<uint32_t>(id2);
    REQUIRE(st->user_lookup(&key2, out.data()) == 0);
    CHECK(out == std::array<uint64_t, 4>{0xffff3000, 0xffff4000, 0xffff5000, 0xffff6000});
    CHECK(st->count() == 1);

    // One bucket: every stack shares id 0.
    auto tiny_base = make(def(MapType::StackTrace, 4, 8 * 8, 1));
    auto* tiny = dynamic_cast<StackTraceMap*>(tiny_base.get());
    REQUIRE(tiny);
    CHECK(tiny->get_stackid(s1, 0) == 0);
    CHECK(tiny->get_stackid(s2, 0) == errc::kEEXIST);
    CHECK(tiny->get_stackid(s2, StackTraceMap::kReuseStackid) == errc::kENOMEM);   // its only element is in use
    const uint32_t zero = 0;
    REQUIRE(tiny->user_delete(&zero) == 0);
    CHECK(tiny->get_stackid(s2, 0) == 0);
    CHECK(tiny->get_stackid(s1, StackTraceMap::kFastStackCmp) == errc::kEEXIST);
}
