// The corpus of our own programs that exercises every map type and helper the issue lists
// (corpus/features/*.c, built as feat_*.o). Each test opens an object, runs it in a World
// and checks concrete results: return values, helper return codes the program stored in its
// `res` array, map contents, ring buffer and perf records, trace lines and output packets.
// The networking programs also run against the kernel (tests/kernel_diff.cpp), so the codes
// asserted here for them are the kernel's too.
//
// Coverage: map type or helper -> TEST_CASE (by the start of its name)
//
//   array, percpu_array, hash, percpu_hash     -> "array, per-CPU array, hash and per-CPU hash"
//   BPF_ANY / BPF_NOEXIST / BPF_EXIST, errno   -> same; "queue, stack, bloom filter and LPM trie";
//                                                 "LRU hashes evict"; "redirect containers"; "socket containers"
//   lru_hash (eviction), lru_percpu_hash       -> "LRU hashes evict", "LRU per-CPU hash"
//   prog_array, tail_call (33-call limit)      -> "tail calls"
//   perf_event_array, perf_event_output        -> "perf event output"
//   ringbuf, ringbuf_output/reserve/submit/
//     discard/query, overflow drops            -> "ring buffer"
//   array_of_maps, hash_of_maps                -> "map-in-map"
//   stack, queue, map_push/pop/peek_elem       -> "queue, stack, bloom filter and LPM trie"
//   lpm_trie, bloom_filter                     -> same
//   devmap, cpumap, xskmap, redirect_map       -> "XDP redirects", "redirect containers"
//   sockmap, sockhash                          -> "socket containers"
//   map_lookup/update/delete_elem              -> "array, per-CPU array, ...", "map-in-map", "LRU hashes evict"
//   probe_read_kernel/_user (+ _str), probe_read -> "probe reads"
//   get_current_pid_tgid/uid_gid/comm/task     -> "identity, clocks, randomness and CPU"
//   ktime_get_ns/boot_ns/coarse_ns             -> same
//   get_prandom_u32, get_smp_processor_id      -> same
//   trace_printk, bpf_printk (%d %i %u %x %ld %lld %llu %llx %p %pI4 %pI6 %s %c; trace_vprintk)
//                                              -> "bpf_printk conversions and trace lines",
//                                                 "bpf_printk %pI6, %pi6 and %pi4",
//                                                 "trace_pipe lines end with the newline"
//   snprintf                                   -> "bpf_snprintf"
//   redirect (XDP), redirect (tc)              -> "XDP redirects", "tc redirect"
//   xdp_adjust_head/tail/meta                  -> "XDP head, metadata and tail adjustments"
//   skb_load_bytes/store_bytes, l3/l4_csum_replace,
//     csum_diff                                -> "tc checksum helpers"
//   skb_change_head/tail                       -> "tc resizing"
//   skb_change_proto/type                      -> "tc protocol and packet type"
//   loop, for_each_map_elem                    -> "bpf_loop and bpf_for_each_map_elem"
//   spin_lock/unlock                           -> "spin lock"
//   get_stack, override_return                 -> "stack and override_return"
//   fib_lookup                                 -> not here: being implemented in another change
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <iterator>

namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr int64_t kENOENT = -2, kE2BIG = -7, kEBADF = -9, kEAGAIN = -11, kEACCES = -13, kEFAULT = -14,
                  kEEXIST = -17, kENODEV = -19, kEINVAL = -22, kENOSPC = -28, kEOVERFLOW = -75, kEOPNOTSUPP = -95,
                  kENOTSUPP = -524;
constexpr uint64_t kXdpDrop = 1, kXdpPass = 2, kXdpTx = 3, kXdpRedirect = 4;
constexpr uint64_t kTcOk = 0, kTcShot = 2, kTcRedirect = 7;

// An object and a world running it (the world points at the object, which stays put).
struct Feature {
    std::unique_ptr<Object> obj;
    std::unique_ptr<World> world;
    World& w() { return *world; }
};

// kernel_memory: the world gets simulated kernel and user memory, laid out from the
// object's own BTF (enough for strings and bytes).
Feature open_feature(const std::string& name, WorldOptions opts = {}, bool kernel_memory = false) {
    auto o = Object::open(fs::path(BPFSIM_CORPUS_DIR) / (name + ".o"));
    if (!o) FAIL(o.error().describe());
    Feature f{std::make_unique<Object>(std::move(o.value())), nullptr};
    if (kernel_memory) {
        REQUIRE(f.obj->btf());
        opts.kernel_btf = std::shared_ptr<const btf::Btf>(f.obj->btf(), [](const btf::Btf*) {});   // f.obj outlives the world
    }
    auto w = World::create(*f.obj, opts);
    if (!w) FAIL(w.error().describe());
    f.world = std::move(w.value());
    return f;
}

Map& map_of(World& w, std::string_view name) {
    Map* m = w.map(name);
    if (!m) FAIL("no map " << name);
    return *m;
}

uint32_t map_index(const Object& o, std::string_view name) {
    for (std::size_t i = 0; i < o.maps().size(); ++i)
        if (o.maps()[i].name == name) return static_cast<uint32_t>(i);
    FAIL("no map " << name);
    return 0;
}

// A helper's return code or value the program stored in its `res` array.
int64_t res(World& w, uint32_t slot) {
    int64_t v = 0;
    REQUIRE(map_of(w, "res").user_lookup(&slot, &v) == 0);
    return v;
}

uint64_t u64_at(Map& m, uint32_t key) {
    uint64_t v = 0;
    REQUIRE(m.user_lookup(&key, &v) == 0);
    return v;
}

// Per-CPU values as userspace reads them: one u64 per CPU.
std::vector<uint64_t> percpu_u64(Map& m, uint32_t key) {
    std::vector<uint64_t> v(m.user_value_size() / 8);
    REQUIRE(m.user_lookup(&key, v.data()) == 0);
    return v;
}

ProgramRun run_packet(World& w, std::string_view prog, const Bytes& packet) {
    auto r = w.run_packet(prog, packet);
    if (!r) FAIL(r.error().describe());
    if (r->result.trap) FAIL("trap: " << r->result.trap->message);
    return std::move(r.value());
}

ProgramRun run_ctx(World& w, std::string_view prog, Bytes ctx) {
    auto r = w.run_ctx(prog, std::move(ctx));
    if (!r) FAIL(r.error().describe());
    if (r->result.trap) FAIL("trap: " << r->result.trap->message);
    return std::move(r.value());
}

// raw_tp context: u64 args[].
Bytes args_ctx(std::initializer_list<uint64_t> args) {
    Bytes b(64, 0);
    std::size_t i = 0;
    for (uint64_t a : args) std::memcpy(b.data() + 8 * i++, &a, 8);
    return b;
}

std::string str_at(const Bytes& b, std::size_t off, std::size_t max) {
    std::string s;
    for (std::size_t i = off; i < off + max && i < b.size() && b[i]; ++i) s += static_cast<char>(b[i]);
    return s;
}

// ── packets ──
// Bytes are joined and grown out of line: inlined, GCC 12 warns falsely (-Warray-bounds)
// about vectors that start from a known small size.

[[gnu::noinline]] Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

[[gnu::noinline]] Bytes grown(Bytes a, std::size_t size, uint8_t fill = 0) {
    a.resize(size, fill);
    return a;
}

Bytes slice(const Bytes& b, std::size_t from, std::size_t to) { return Bytes(b.begin() + from, b.begin() + to); }

void put16(Bytes& b, std::size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, std::size_t off) { return static_cast<uint16_t>((b[off] << 8) | b[off + 1]); }

uint32_t sum16(const uint8_t* p, std::size_t n, uint32_t s = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
    if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
    return s;
}
uint16_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

constexpr std::size_t kIp = 14, kL4 = 34;

// The TCP/UDP checksum over the pseudo-header and segment: 0 when the stored one is right.
uint16_t l4_check(const Bytes& p) {
    const std::size_t len = get16(p, kIp + 2) - 20;
    uint32_t s = sum16(&p[kIp + 12], 8);
    s += p[kIp + 9];
    s += static_cast<uint32_t>(len);
    return fold(sum16(&p[kL4], len, s));
}

uint16_t ip_check(const Bytes& p) { return fold(sum16(&p[kIp], 20)); }

[[gnu::noinline]] Bytes eth(uint16_t proto) {
    Bytes b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0, 0};
    put16(b, 12, proto);
    return b;
}

// Ethernet + IPv4 + TCP (6) / UDP (17) / ICMP (1) with correct checksums.
Bytes ipv4(uint8_t proto, uint32_t src, uint32_t dst, uint16_t dport = 80, uint8_t ttl = 64, bool udp_no_csum = false) {
    Bytes b = eth(0x0800);
    const std::size_t l4len = (proto == 6 ? 20 : 8) + 12;   // header + 12 bytes of payload
    b.resize(kL4 + l4len, 0);
    b[kIp] = 0x45;
    put16(b, kIp + 2, static_cast<uint16_t>(20 + l4len));
    put16(b, kIp + 4, 0x1234);
    b[kIp + 8] = ttl;
    b[kIp + 9] = proto;
    for (int i = 0; i < 4; ++i) {
        b[kIp + 12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
        b[kIp + 16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
    }
    put16(b, kIp + 10, fold(sum16(&b[kIp], 20)));
    for (std::size_t i = 0; i < 12; ++i) b[b.size() - 12 + i] = static_cast<uint8_t>(0x30 + i);
    if (proto == 6 || proto == 17) {
        put16(b, kL4, 40000);
        put16(b, kL4 + 2, dport);
    }
    if (proto == 6) {
        b[kL4 + 12] = 0x50;
        b[kL4 + 13] = 0x18;
        put16(b, kL4 + 16, l4_check(b));
    } else if (proto == 17) {
        put16(b, kL4 + 4, static_cast<uint16_t>(l4len));
        if (!udp_no_csum) put16(b, kL4 + 6, l4_check(b));
    } else {
        b[kL4] = 8;   // ICMP echo request
    }
    return b;
}

Bytes ipv6_udp() {
    Bytes b = eth(0x86dd);
    b.resize(14 + 40 + 8 + 8, 0);
    b[14] = 0x60;
    put16(b, 18, 16);
    b[20] = 17;
    b[21] = 64;
    b[22] = 0xfe;
    b[23] = 0x80;
    b[37] = 1;
    b[38] = 0xfe;
    b[39] = 0x80;
    b[53] = 2;
    put16(b, 54, 1000);
    put16(b, 56, 2000);
    put16(b, 58, 16);
    return b;
}

Bytes arp() {
    return grown(eth(0x0806), 14 + 28, 0x11);
}

}  // namespace

// ───────────────────────────────── maps ──────────────────────────────────

TEST_CASE("array, per-CPU array, hash and per-CPU hash: flags, full maps, errno", "[features][maps]") {
    WorldOptions opts;
    opts.ncpus = 2;
    opts.cpu = 1;
    Feature f = open_feature("feat_maps_basic", opts);
    World& w = f.w();
    // Userspace writes both CPUs' copies of pcpu_arr[3]; the program reads its own.
    const uint32_t three = 3;
    const uint64_t both[2] = {111, 222};
    REQUIRE(map_of(w, "pcpu_arr").user_update(&three, both, 0) == 0);
    for (int i = 0; i < 2; ++i) CHECK(run_packet(w, "maps_basic", ipv4(6, 0x0a000001, 0x0a000002)).result.r0 == kXdpPass);

    // array
    CHECK(res(w, 0) == 0);
    CHECK(res(w, 1) == kEEXIST);   // BPF_NOEXIST: every element of an array exists
    CHECK(res(w, 2) == 0);         // BPF_EXIST
    CHECK(res(w, 3) == kE2BIG);    // index past max_entries
    CHECK(res(w, 4) == 1);         // ... which no lookup finds
    CHECK(res(w, 5) == kEINVAL);   // arrays cannot delete
    CHECK(res(w, 6) == kEINVAL);   // flags 3
    CHECK(res(w, 7) == 101);
    CHECK(u64_at(map_of(w, "arr"), 1) == 101);
    CHECK(u64_at(map_of(w, "arr"), 2) == 2);   // incremented through the lookup's pointer, once per run

    // hash
    CHECK(res(w, 8) == 0);
    CHECK(res(w, 9) == kEEXIST);
    CHECK(res(w, 10) == kENOENT);   // BPF_EXIST on a missing key
    CHECK(res(w, 11) == kE2BIG);    // a fifth key in a 4-entry map
    CHECK(res(w, 12) == 0);         // replacing a key fits in a full map
    CHECK(res(w, 13) == kENOENT);
    CHECK(res(w, 14) == 0);
    CHECK(res(w, 15) == 0);
    CHECK(res(w, 16) == kEINVAL);
    CHECK(res(w, 17) == 15);
    CHECK(res(w, 18) == 1);
    Map& hash = map_of(w, "hash");
    const auto entries = dump_map(hash, 2);
    REQUIRE(entries.size() == 4);
    std::vector<std::pair<uint32_t, uint64_t>> kv;
    for (const auto& [k, v] : entries) {
        uint32_t key;
        uint64_t value;
        std::memcpy(&key, k.data(), 4);
        std::memcpy(&value, v.data(), 8);
        kv.emplace_back(key, value);
    }
    CHECK(kv == std::vector<std::pair<uint32_t, uint64_t>>{{1, 15}, {2, 22}, {3, 33}, {5, 55}});
    const uint32_t four = 4, six = 6;
    uint64_t value = 0;
    CHECK(hash.user_lookup(&four, &value) == kENOENT);
    CHECK(hash.user_update(&six, &value, 0) == kE2BIG);   // full from userspace too
    const uint32_t one = 1;
    CHECK(hash.user_update(&one, &value, 1) == kEEXIST);
    CHECK(map_of(w, "arr").user_delete(&one) == kEINVAL);

    // per-CPU array: the program ran on CPU 1 only
    CHECK(res(w, 19) == kE2BIG);
    CHECK(res(w, 20) == kEEXIST);
    CHECK(res(w, 21) == 222);
    CHECK(res(w, 22) == kEINVAL);
    CHECK(percpu_u64(map_of(w, "pcpu_arr"), 0) == std::vector<uint64_t>{0, 2});

    // per-CPU hash: a new element is the running CPU's value, zero on the others
    CHECK(res(w, 23) == 0);
    CHECK(res(w, 24) == 71);
    CHECK(res(w, 25) == kENOENT);
    CHECK(res(w, 26) == kENOENT);
    CHECK(percpu_u64(map_of(w, "pcpu_hash"), 7) == std::vector<uint64_t>{0, 71});

    // The same object on CPU 0 sees CPU 0's copy.
    WorldOptions cpu0 = opts;
    cpu0.cpu = 0;
    Feature g = open_feature("feat_maps_basic", cpu0);
    REQUIRE(map_of(g.w(), "pcpu_arr").user_update(&three, both, 0) == 0);
    run_packet(g.w(), "maps_basic", ipv4(6, 0x0a000001, 0x0a000002));
    CHECK(res(g.w(), 21) == 111);
    CHECK(percpu_u64(map_of(g.w(), "pcpu_arr"), 0) == std::vector<uint64_t>{1, 0});
}

namespace {

// One LRU operation through the lru_op / lru_pcpu_op programs: res[0] (and res[1] for a lookup).
int64_t lru(World& w, const char* prog, uint64_t op, uint32_t key, uint64_t value = 0, uint64_t flags = 0) {
    run_ctx(w, prog, args_ctx({op, key, value, flags}));
    return res(w, 0);
}
constexpr uint64_t kUpdate = 0, kLookup = 1, kDelete = 2;

std::vector<uint32_t> keys_of(Map& m, unsigned ncpus) {
    std::vector<uint32_t> keys;
    for (const auto& [k, v] : dump_map(m, ncpus)) {
        uint32_t key;
        std::memcpy(&key, k.data(), 4);
        keys.push_back(key);
    }
    return keys;
}

}  // namespace

TEST_CASE("LRU hashes evict the least recently used entry; lookups and updates count as uses", "[features][maps][lru]") {
    // bpfsim's LRU is exact (the kernel's is approximate), which is why this program is a raw
    // tracepoint the kernel differential test does not run.
    Feature f = open_feature("feat_maps_lru");
    World& w = f.w();
    Map& m = map_of(w, "lru");
    for (uint32_t k = 1; k <= 4; ++k) CHECK(lru(w, "lru_op", kUpdate, k, k * 100) == 0);
    CHECK(lru(w, "lru_op", kLookup, 1) == 0);   // 1 is now the most recent
    CHECK(res(w, 1) == 100);
    CHECK(lru(w, "lru_op", kUpdate, 5, 500) == 0);   // full: evicts 2, the least recent
    CHECK(keys_of(m, 1) == std::vector<uint32_t>{1, 3, 4, 5});
    uint64_t v = 0;
    const uint32_t two = 2, four = 4;
    CHECK(m.user_lookup(&two, &v) == kENOENT);
    CHECK(lru(w, "lru_op", kUpdate, 3, 333, 2 /* BPF_EXIST */) == 0);   // an update is a use
    CHECK(m.user_lookup(&four, &v) == 0);                              // userspace lookups are not
    CHECK(lru(w, "lru_op", kUpdate, 6, 600) == 0);                     // evicts 4
    CHECK(keys_of(m, 1) == std::vector<uint32_t>{1, 3, 5, 6});
    CHECK(lru(w, "lru_op", kUpdate, 1, 1, 1 /* BPF_NOEXIST */) == kEEXIST);
    CHECK(lru(w, "lru_op", kUpdate, 9, 9, 2 /* BPF_EXIST */) == kENOENT);
    CHECK(keys_of(m, 1) == std::vector<uint32_t>{1, 3, 5, 6});         // failed updates evict nothing
    CHECK(lru(w, "lru_op", kUpdate, 9, 9, 3) == kEINVAL);
    CHECK(u64_at(m, 3) == 333);
    CHECK(lru(w, "lru_op", kDelete, 3) == 0);
    CHECK(lru(w, "lru_op", kDelete, 3) == kENOENT);
    CHECK(lru(w, "lru_op", kLookup, 3) == kENOENT);
    CHECK(res(w, 1) == -1);
    CHECK(m.count() == 3);
}

TEST_CASE("LRU per-CPU hash: per-CPU values and eviction", "[features][maps][lru]") {
    WorldOptions opts;
    opts.ncpus = 2;
    opts.cpu = 1;
    Feature f = open_feature("feat_maps_lru", opts);
    World& w = f.w();
    Map& m = map_of(w, "lru_pcpu");
    CHECK(lru(w, "lru_pcpu_op", kUpdate, 1, 11) == 0);
    CHECK(lru(w, "lru_pcpu_op", kUpdate, 2, 22) == 0);
    CHECK(lru(w, "lru_pcpu_op", kLookup, 1) == 0);
    CHECK(res(w, 1) == 11);
    CHECK(lru(w, "lru_pcpu_op", kUpdate, 3, 33) == 0);   // max_entries 2: evicts 2
    CHECK(keys_of(m, 2) == std::vector<uint32_t>{1, 3});
    CHECK(percpu_u64(m, 1) == std::vector<uint64_t>{0, 11});
    CHECK(percpu_u64(m, 3) == std::vector<uint64_t>{0, 33});
}

TEST_CASE("map-in-map: array of maps and hash of maps filled from userspace", "[features][maps]") {
    Feature f = open_feature("feat_maps_in_maps");
    World& w = f.w();
    const Bytes pkt = ipv4(17, 0x0a000001, 0x0a000002, 53);
    // Empty outer maps: every lookup misses (as in the kernel test, which fills nothing).
    run_packet(w, "maps_in_maps", pkt);
    for (uint32_t i = 0; i < 4; ++i) CHECK(res(w, i) == -1);

    Map& outer = map_of(w, "outer_arr");
    const uint32_t s0 = 0, s1 = 1, s2 = 2;
    const uint32_t a = map_index(*f.obj, "inner_a"), b = map_index(*f.obj, "inner_b");
    const uint32_t h = map_index(*f.obj, "inner_h"), wrong = map_index(*f.obj, "wrong_shape"), nomap = 999;
    CHECK(outer.user_update(&s0, &wrong, 0) == kEINVAL);   // not the inner map's shape
    CHECK(outer.user_update(&s0, &h, 0) == kEINVAL);
    CHECK(outer.user_update(&s0, &nomap, 0) == kEBADF);    // no such map
    CHECK(outer.user_update(&s0, &a, 1) == kEINVAL);       // fd arrays take BPF_ANY only
    CHECK(outer.user_update(&s2, &a, 0) == kE2BIG);
    REQUIRE(outer.user_update(&s0, &a, 0) == 0);
    REQUIRE(outer.user_update(&s1, &b, 0) == 0);
    uint32_t back = 0;
    CHECK(outer.user_lookup(&s0, &back) == 0);
    CHECK(back == a);
    const uint32_t seven = 7;
    REQUIRE(map_of(w, "outer_hash").user_update(&seven, &h, 0) == 0);
    CHECK(map_of(w, "outer_hash").user_update(&seven, &a, 0) == kEINVAL);   // an array is not the hash template

    run_packet(w, "maps_in_maps", pkt);
    CHECK(res(w, 0) == 1);
    CHECK(res(w, 1) == 1);
    CHECK(res(w, 2) == 0);     // inner hash key 1 created
    CHECK(res(w, 3) == 101);
    run_packet(w, "maps_in_maps", pkt);
    CHECK(res(w, 0) == 2);
    CHECK(res(w, 2) == kEEXIST);
    CHECK(res(w, 3) == 102);
    CHECK(u64_at(map_of(w, "inner_a"), 0) == 2);
    CHECK(u64_at(map_of(w, "inner_b"), 0) == 2);
    CHECK(u64_at(map_of(w, "inner_h"), 1) == 102);

    REQUIRE(outer.user_delete(&s1) == 0);
    CHECK(outer.user_delete(&s1) == kENOENT);
    run_packet(w, "maps_in_maps", pkt);
    CHECK(res(w, 0) == 3);
    CHECK(res(w, 1) == -1);
    CHECK(u64_at(map_of(w, "inner_b"), 0) == 2);
}

TEST_CASE("queue, stack, bloom filter and LPM trie: push/pop/peek, prefixes, errno", "[features][maps]") {
    Feature f = open_feature("feat_maps_queue_stack_bloom_lpm");
    World& w = f.w();
    CHECK(run_packet(w, "containers", ipv4(6, 0x0a000001, 0x0a000002)).result.r0 == kXdpPass);
    // queue
    CHECK(res(w, 0) == kE2BIG);    // full
    CHECK(res(w, 1) == 0);         // BPF_EXIST drops the oldest
    CHECK(res(w, 2) == kEINVAL);   // BPF_NOEXIST
    CHECK(res(w, 3) == 0);
    CHECK(res(w, 4) == 20);        // 10 was dropped
    CHECK(res(w, 5) == 0);
    CHECK(res(w, 6) == 20);
    CHECK(res(w, 7) == 30);
    Map& fifo = map_of(w, "fifo");
    uint32_t v = 0;
    CHECK(fifo.pop(&v) == 0);
    CHECK(v == 40);
    CHECK(fifo.pop(&v) == 0);
    CHECK(v == 50);
    CHECK(fifo.pop(&v) == kENOENT);
    // stack
    CHECK(res(w, 8) == kENOENT);   // empty
    CHECK(res(w, 9) == kENOENT);
    CHECK(res(w, 10) == kE2BIG);
    CHECK(res(w, 11) == 0);
    CHECK(res(w, 12) == 0);
    CHECK(res(w, 13) == 5);        // the top
    CHECK(res(w, 14) == 4);
    Map& lifo = map_of(w, "lifo");
    CHECK(lifo.count() == 2);
    CHECK(lifo.peek(&v) == 0);
    CHECK(v == 3);
    // bloom filter
    CHECK(res(w, 15) == 0);
    CHECK(res(w, 16) == kEINVAL);
    CHECK(res(w, 17) == 0);
    CHECK(res(w, 18) == kENOENT);
    Map& seen = map_of(w, "seen");
    uint32_t src = 0x0100000a;   // 10.0.0.1 as the packet carries it
    CHECK(seen.peek(&src) == 0);
    uint32_t other = 0x0300000a;
    CHECK(seen.peek(&other) == kENOENT);
    // LPM trie
    for (uint32_t i = 19; i <= 22; ++i) CHECK(res(w, i) == 0);
    CHECK(res(w, 23) == kEEXIST);
    CHECK(res(w, 24) == kENOENT);
    CHECK(res(w, 25) == kEINVAL);   // prefix longer than the key's data
    CHECK(res(w, 26) == kEINVAL);   // flags
    CHECK(res(w, 27) == 32);        // 10.0.0.2: its /32
    CHECK(res(w, 28) == 24);        // 10.0.0.1: 10.0.0/24
    CHECK(res(w, 29) == 8);         // 10.0.1.7: 10/8
    CHECK(res(w, 30) == -1);        // 11.0.0.1: no route
    CHECK(res(w, 31) == kENOENT);
    CHECK(res(w, 32) == kENOSPC);   // full
    CHECK(res(w, 33) == 0);         // replacing needs no room
    CHECK(res(w, 34) == 0);
    CHECK(res(w, 35) == kENOENT);
    Map& routes = map_of(w, "routes");
    CHECK(routes.count() == 7);
    struct {
        uint32_t plen, addr;
    } key{32, 0x0900000a};   // 10.0.0.9
    uint32_t route = 0;
    CHECK(routes.user_lookup(&key, &route) == 0);   // userspace lookups match prefixes too
    CHECK(route == 24);

    // The same codes on the next run, from 192.168.1.1: 192.168/16.
    run_packet(w, "containers", ipv4(17, 0xc0a80101, 0x0a000002, 53));
    CHECK(res(w, 28) == 16);
    CHECK(res(w, 32) == kENOSPC);
    uint32_t src2 = 0x0101a8c0;
    CHECK(seen.peek(&src2) == 0);
}

TEST_CASE("tail calls: misses fall through, a chain stops after 33 calls", "[features][maps][tail_call]") {
    Feature f = open_feature("feat_tail_calls");
    World& w = f.w();
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);
    auto r = run_packet(w, "tail_entry", pkt);
    CHECK(res(w, 0) == 1);   // empty slot
    CHECK(res(w, 1) == 1);   // past max_entries
    CHECK(res(w, 2) == 33);  // ping/pong ran 33 times
    CHECK(w.tail_calls == 33);
    CHECK(r.result.r0 == kXdpTx);   // the 33rd is ping, whose call to pong then failed
    // Run directly, ping is one more program: 34 executions, the last one pong.
    r = run_packet(w, "ping", pkt);
    CHECK(r.result.r0 == kXdpDrop);
    CHECK(res(w, 2) == 33 + 34);
    // Without pong, ping's tail call misses at once.
    Map& jmp = map_of(w, "jmp");
    const uint32_t one = 1;
    REQUIRE(jmp.user_delete(&one) == 0);
    r = run_packet(w, "tail_entry", pkt);
    CHECK(r.result.r0 == kXdpTx);
    CHECK(res(w, 2) == 1);
    CHECK(res(w, 3) == 2);
    CHECK(w.tail_calls == 1);
    const uint32_t pong = 2;   // program index
    CHECK(jmp.user_update(&one, &pong, 1) == kEINVAL);   // prog arrays take BPF_ANY only
}

TEST_CASE("ring buffer: output, reserve/submit/discard, query, overflow drops", "[features][maps][ringbuf]") {
    Feature f = open_feature("feat_ringbuf_perf");
    World& w = f.w();
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);   // 66 bytes
    // Per run: a 16-byte record (24 with its header), a 1000-byte one (1008), a discarded
    // 200-byte one (208). The 4096-byte ring takes what fits until the consumer reads.
    const int64_t avail[10] = {1240, 2480, 3720, 3952, 3976, 4000, 4024, 4048, 4072, 4072};
    for (int run = 0; run < 10; ++run) {
        INFO("run " << run);
        run_packet(w, "rb_xdp", pkt);
        CHECK(res(w, 0) == (run < 9 ? 0 : kEAGAIN));
        CHECK(res(w, 1) == (run < 3 ? 1 : 0));
        CHECK(res(w, 2) == (run < 4 ? 1 : 0));
        CHECK(res(w, 3) == 0);          // larger than the ring
        CHECK(res(w, 4) == kEINVAL);    // output flags
        CHECK(res(w, 5) == avail[run]);
        CHECK(res(w, 6) == 4096);
        CHECK(res(w, 7) == 0);          // reserve takes no flags
    }
    auto* rb = dynamic_cast<RingbufMap*>(&map_of(w, "rb"));
    REQUIRE(rb);
    CHECK(rb->dropped() == 7 + 6 + 10 + 1);   // 1000-byte, 200-byte, oversize, last output
    auto records = rb->drain();
    REQUIRE(records.size() == 12);            // discarded records are skipped
    std::vector<std::pair<uint32_t, std::size_t>> seen;
    for (const auto& r : records) {
        REQUIRE(r.size() >= 8);
        uint32_t run;
        std::memcpy(&run, r.data(), 4);
        seen.emplace_back(run, r.size());
    }
    CHECK(seen == std::vector<std::pair<uint32_t, std::size_t>>{{0, 16}, {0, 1000}, {1, 16}, {1, 1000}, {2, 16}, {2, 1000},
                                                                {3, 16}, {4, 16}, {5, 16}, {6, 16}, {7, 16}, {8, 16}});
    uint32_t magic;
    uint64_t len;
    std::memcpy(&magic, records[0].data() + 4, 4);
    std::memcpy(&len, records[0].data() + 8, 8);
    CHECK(magic == 0x5ba11);
    CHECK(len == pkt.size());
    CHECK(records[1][4] == 0xa0);
    CHECK(records[1][11] == 0xa7);
    CHECK(rb->query(RingbufMap::kAvailData) == 0);
    // Consumed: there is room again.
    run_packet(w, "rb_xdp", pkt);
    CHECK(res(w, 1) == 1);
    CHECK(res(w, 2) == 1);
    CHECK(res(w, 5) == 1240);
    CHECK(res(w, 8) == 11);
}

TEST_CASE("perf event output: CPU slots, closed slots, context bytes", "[features][maps][perf]") {
    WorldOptions opts;
    opts.ncpus = 2;
    opts.cpu = 1;
    Feature f = open_feature("feat_ringbuf_perf", opts);
    World& w = f.w();
    auto* pe = dynamic_cast<PerfEventArrayMap*>(&map_of(w, "pe"));
    REQUIRE(pe);
    run_ctx(w, "perf_tp", Bytes(64, 0));
    CHECK(res(w, 16) == 0);             // BPF_F_CURRENT_CPU: slot 1
    CHECK(res(w, 17) == kEOPNOTSUPP);   // slot 0 belongs to CPU 0
    CHECK(res(w, 18) == kE2BIG);        // past max_entries
    CHECK(res(w, 19) == kENOENT);       // slots 2 and 3 have no event (2 CPUs)
    CHECK(res(w, 20) == kEINVAL);       // tracing programs cannot append context bytes
    CHECK(res(w, 21) == 0);
    REQUIRE(pe->records().size() == 2);
    const auto rec = [](uint32_t tag, uint32_t slot) {
        Bytes b(8);
        std::memcpy(b.data(), &tag, 4);
        std::memcpy(b.data() + 4, &slot, 4);
        return b;
    };
    CHECK(pe->records()[0].cpu == 1);
    CHECK(pe->records()[0].data == rec(0x7e57, 0xffffffff));
    CHECK(pe->records()[1].data == rec(0x7e57, 1));
    // Closing slot 1 and opening slot 3 from userspace.
    const uint32_t one = 1, three = 3, fd = 42;
    REQUIRE(pe->user_delete(&one) == 0);
    CHECK(pe->user_delete(&one) == kENOENT);
    REQUIRE(pe->user_update(&three, &fd, 0) == 0);
    pe->clear_records();
    run_ctx(w, "perf_tp", Bytes(64, 0));
    CHECK(res(w, 16) == kENOENT);
    CHECK(res(w, 19) == kEOPNOTSUPP);
    CHECK(res(w, 21) == kENOENT);
    CHECK(pe->records().empty());
    // XDP: a 4-byte header followed by the packet's first 14 bytes (BPF_F_CTXLEN_MASK).
    REQUIRE(pe->user_update(&one, &fd, 0) == 0);
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);
    run_packet(w, "perf_xdp", pkt);
    REQUIRE(pe->records().size() == 1);
    CHECK(pe->records()[0].data == cat({0x0d, 0xf0, 0xed, 0xfe}, slice(pkt, 0, 14)));
}

// ──────────────────────────────── helpers ────────────────────────────────

TEST_CASE("XDP head, metadata and tail adjustments and their limits", "[features][helpers][xdp]") {
    Feature f = open_feature("feat_helpers_net");
    World& w = f.w();
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);
    auto r = run_packet(w, "xdp_adjust", pkt);
    CHECK(r.result.r0 == kXdpPass);
    const int64_t want[] = {0, 0, kEINVAL, kEINVAL, 0, kEACCES, 0, 0, kEINVAL, kEINVAL, 0, kEINVAL, 0, 0, 0, 0, kEINVAL};
    for (uint32_t i = 0; i < std::size(want); ++i) {
        INFO("res[" << i << "]");
        CHECK(res(w, i) == want[i]);
    }
    CHECK(res(w, 17) == static_cast<int64_t>(pkt.size()) + 20);   // +8 -4 +4 head, -4 +16 tail
    CHECK(res(w, 18) == 8);                                        // metadata
    // Output: the metadata, the 4 bytes the last head move exposed (metadata bytes left behind
    // by the move), a4..a7, the packet less its last 4 bytes, 16 zero bytes.
    const Bytes front = {0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 0x88, 0x77, 0x66, 0x55, 0xa4, 0xa5, 0xa6, 0xa7};
    const Bytes body = slice(pkt, 0, pkt.size() - 4);
    CHECK(r.packet == grown(cat(front, body), front.size() + body.size() + 16));
}

TEST_CASE("XDP redirects: bpf_redirect, and redirect_map into a devmap, cpumap and xskmap", "[features][helpers][xdp]") {
    WorldOptions opts;
    opts.ncpus = 2;
    Feature f = open_feature("feat_helpers_net", opts);
    World& w = f.w();
    const Bytes tcp = ipv4(6, 0x0a000001, 0x0a000002), udp = ipv4(17, 0x0a000001, 0x0a000002, 53),
                icmp = ipv4(1, 0x0a000001, 0x0a000002);
    // Empty maps: every redirect_map misses and returns the action in its flags.
    auto r = run_packet(w, "xdp_redirects", tcp);
    CHECK(r.result.r0 == kXdpPass);
    CHECK_FALSE(r.redirected);
    CHECK(res(w, 24) == kXdpPass);
    CHECK(res(w, 25) == kXdpDrop);
    CHECK(res(w, 26) == kXdpTx);
    CHECK(res(w, 27) == 0);    // XDP_ABORTED: flags past the action bits
    CHECK(res(w, 28) == kXdpTx);
    CHECK(res(w, 29) == -1);   // devmap slot 1 is empty
    CHECK(res(w, 30) == 0);    // XDP_ABORTED: bpf_redirect in XDP takes no flags

    const uint32_t zero = 0, one = 1, ifindex = 9, qsize = 192, xsk_fd = 5;
    REQUIRE(map_of(w, "tx_ports").user_update(&one, &ifindex, 0) == 0);
    REQUIRE(map_of(w, "cpus").user_update(&zero, &qsize, 0) == 0);
    REQUIRE(map_of(w, "xsks").user_update(&zero, &xsk_fd, 0) == 0);
    r = run_packet(w, "xdp_redirects", tcp);
    CHECK(r.result.r0 == kXdpRedirect);
    CHECK(r.redirected);
    CHECK(r.redirect_ifindex == 1);   // the devmap key
    CHECK(res(w, 24) == kXdpRedirect);
    CHECK(res(w, 25) == kXdpRedirect);
    CHECK(res(w, 26) == kXdpRedirect);
    CHECK(res(w, 27) == 0);
    CHECK(res(w, 28) == kXdpTx);
    CHECK(res(w, 29) == 9);           // the devmap value a program reads
    r = run_packet(w, "xdp_redirects", udp);
    CHECK(r.result.r0 == kXdpRedirect);
    CHECK(r.redirect_ifindex == 0);   // cpumap slot 0
    r = run_packet(w, "xdp_redirects", icmp);
    CHECK(r.result.r0 == kXdpRedirect);
    r = run_packet(w, "xdp_redirects", ipv6_udp());
    CHECK(r.result.r0 == kXdpRedirect);
    CHECK(r.redirect_ifindex == 7);   // bpf_redirect
    r = run_packet(w, "xdp_redirects", arp());
    CHECK(r.result.r0 == kXdpPass);
    // Emptying the xskmap slot: ICMP falls back to XDP_TX.
    REQUIRE(map_of(w, "xsks").user_delete(&zero) == 0);
    CHECK(run_packet(w, "xdp_redirects", icmp).result.r0 == kXdpTx);
}

TEST_CASE("redirect containers from userspace: devmap, cpumap, xskmap", "[features][maps][xdp]") {
    WorldOptions opts;
    opts.ncpus = 2;
    Feature f = open_feature("feat_helpers_net", opts);
    World& w = f.w();
    Map& dev = map_of(w, "tx_ports");
    Map& cpus = map_of(w, "cpus");
    Map& xsks = map_of(w, "xsks");
    const uint32_t zero = 0, one = 1, two = 2, four = 4, ifindex = 3, none = 0, big = 20000, qsize = 64;
    CHECK(dev.user_update(&one, &ifindex, 1) == kEEXIST);   // devmap slots always exist
    CHECK(dev.user_update(&four, &ifindex, 0) == kE2BIG);
    REQUIRE(dev.user_update(&one, &ifindex, 0) == 0);
    CHECK(dev.count() == 1);
    REQUIRE(dev.user_update(&one, &none, 0) == 0);          // ifindex 0 empties the slot
    CHECK(dev.count() == 0);
    CHECK(cpus.user_update(&zero, &big, 0) == kEOVERFLOW);   // queue size limit
    CHECK(cpus.user_update(&one, &qsize, 0) == 0);
    CHECK(cpus.user_update(&two, &qsize, 0) == kE2BIG);
    CHECK(cpus.user_update(&zero, &qsize, 1) == kEEXIST);
    WorldOptions one_cpu;
    Feature g = open_feature("feat_helpers_net", one_cpu);
    CHECK(map_of(g.w(), "cpus").user_update(&one, &qsize, 0) == kENODEV);   // no CPU 1
    REQUIRE(xsks.user_update(&one, &qsize, 0) == 0);
    uint32_t out = 0;
    CHECK(xsks.user_lookup(&one, &out) == kEOPNOTSUPP);   // AF_XDP sockets cannot be read back
    CHECK(xsks.user_update(&one, &qsize, 1) == kEEXIST);
    CHECK(xsks.user_update(&zero, &qsize, 2) == kENOENT);
}

TEST_CASE("socket containers: sockmap and sockhash filled and read from userspace", "[features][maps]") {
    Feature f = open_feature("feat_helpers_net");
    World& w = f.w();
    Map& socks = map_of(w, "socks");
    Map& by_port = map_of(w, "sock_by_port");
    CHECK(socks.def().type == MapType::Sockmap);
    CHECK(by_port.def().type == MapType::Sockhash);
    const uint32_t zero = 0, one = 1, four = 4, port = 8080, other = 8081;
    const uint64_t cookie = 0x1234, cookie2 = 0x5678;
    REQUIRE(socks.user_update(&zero, &cookie, 0) == 0);
    CHECK(socks.user_update(&zero, &cookie2, 1) == kEEXIST);
    CHECK(socks.user_update(&one, &cookie2, 2) == kENOENT);
    CHECK(socks.user_update(&four, &cookie2, 0) == kE2BIG);
    uint64_t got = 0;
    CHECK(socks.user_lookup(&zero, &got) == 0);
    CHECK(got == cookie);
    CHECK(socks.user_lookup(&one, &got) == kENOENT);
    CHECK(socks.user_delete(&one) == kEINVAL);   // an empty sockmap slot
    CHECK(socks.count() == 1);
    CHECK(socks.update(&one, &cookie, 0, 0) == kEOPNOTSUPP);   // programs need a socket to store
    REQUIRE(socks.user_delete(&zero) == 0);
    CHECK(socks.count() == 0);

    REQUIRE(by_port.user_update(&port, &cookie, 0) == 0);
    CHECK(by_port.user_update(&port, &cookie2, 1) == kEEXIST);
    CHECK(by_port.user_update(&other, &cookie2, 2) == kENOENT);
    CHECK(by_port.user_lookup(&port, &got) == 0);
    CHECK(got == cookie);
    CHECK(by_port.user_delete(&other) == kENOENT);
    CHECK(by_port.count() == 1);
    uint32_t next = 0;
    CHECK(by_port.get_next_key(nullptr, &next) == 0);
    CHECK(next == port);
}

TEST_CASE("tc checksum helpers: load/store bytes, l3/l4_csum_replace, csum_diff", "[features][helpers][tc]") {
    Feature f = open_feature("feat_helpers_skb");
    World& w = f.w();
    for (uint8_t proto : {uint8_t(17), uint8_t(6)}) {
        INFO("protocol " << int(proto));
        const Bytes in = ipv4(proto, 0x0a000001, 0x0a000002, 53);
        REQUIRE(ip_check(in) == 0);
        REQUIRE(l4_check(in) == 0);
        auto r = run_packet(w, "tc_csum", in);
        CHECK(r.result.r0 == kTcOk);
        CHECK(res(w, 0) == 0);
        CHECK(res(w, 1) == kEFAULT);   // past the end
        CHECK(res(w, 2) == 0);         // ... and the buffer zeroed
        CHECK(res(w, 3) == kEFAULT);
        CHECK(res(w, 4) == 0x1109);    // 10.0.0.1 -> 10.9.9.9, folded to 16 bits
        CHECK(res(w, 5) == 0);
        CHECK(res(w, 6) == 0);
        CHECK(res(w, 7) == 0);
        CHECK(res(w, 8) == kEINVAL);   // store flags
        CHECK(res(w, 9) == 0);
        CHECK(res(w, 10) == 0);
        CHECK(res(w, 11) == kEINVAL);  // field size 3
        CHECK(res(w, 12) == kEFAULT);  // odd offset
        CHECK(res(w, 13) == kEFAULT);
        CHECK(res(w, 14) == 0x1209);   // a 3-byte `from` (no 4-byte rule since 6.13)
        CHECK(res(w, 15) == 0xffff);   // 516 bytes of zeros (no 512-byte limit since 6.13)
        CHECK(res(w, 33) == 0);        // BPF_F_IPV6 is a known l4_csum_replace flag
        const Bytes& out = r.packet;
        REQUIRE(out.size() == in.size());
        CHECK(Bytes(out.begin() + 26, out.begin() + 30) == Bytes{10, 9, 9, 9});
        CHECK(out[22] == 63);   // TTL
        CHECK(ip_check(out) == 0);
        CHECK(l4_check(out) == 0);
        CHECK(get16(out, 24) != get16(in, 24));
    }
    // A UDP datagram without a checksum keeps none (BPF_F_MARK_MANGLED_0).
    const Bytes bare = ipv4(17, 0x0a000001, 0x0a000002, 53, 64, true);
    auto r = run_packet(w, "tc_csum", bare);
    CHECK(get16(r.packet, kL4 + 6) == 0);
    CHECK(ip_check(r.packet) == 0);
    // Not IPv4: untouched.
    r = run_packet(w, "tc_csum", arp());
    CHECK(r.packet == arp());
}

TEST_CASE("tc resizing: skb_change_tail and skb_change_head", "[features][helpers][tc]") {
    Feature f = open_feature("feat_helpers_skb");
    World& w = f.w();
    const Bytes in = ipv4(6, 0x0a000001, 0x0a000002);
    const int64_t n = static_cast<int64_t>(in.size());
    auto r = run_packet(w, "tc_resize", in);
    CHECK(res(w, 16) == 0);
    CHECK(res(w, 17) == n + 16);
    CHECK(res(w, 18) == kEINVAL);   // shorter than the MAC header
    CHECK(res(w, 19) == kEINVAL);   // flags
    CHECK(res(w, 20) == 0);
    CHECK(res(w, 21) == kEINVAL);
    CHECK(res(w, 22) == n + 24);
    CHECK(res(w, 23) == 0);
    CHECK(r.packet == grown(cat({0xca, 0xfe, 0, 0, 0, 0, 0, 0}, in), 8 + in.size() + 16));
}

TEST_CASE("tc protocol and packet type: skb_change_proto and skb_change_type", "[features][helpers][tc]") {
    Feature f = open_feature("feat_helpers_skb");
    World& w = f.w();
    const Bytes v4 = ipv4(17, 0x0a000001, 0x0a000002, 53);
    auto r = run_packet(w, "tc_proto", v4);
    CHECK(res(w, 24) == 0);
    CHECK(res(w, 25) == kEINVAL);   // flags
    CHECK(res(w, 26) == 0x86dd);
    CHECK(res(w, 27) == static_cast<int64_t>(v4.size()) + 20);
    CHECK(res(w, 28) == 0);
    CHECK(res(w, 29) == 0);         // PACKET_HOST
    CHECK(res(w, 30) == kEINVAL);   // no packet type 8
    // The MAC header stays; 20 zero bytes follow it.
    CHECK(r.packet == cat(grown(slice(v4, 0, 14), 34), slice(v4, 14, v4.size())));

    const Bytes v6 = ipv6_udp();
    r = run_packet(w, "tc_proto", v6);
    CHECK(res(w, 24) == 0);
    CHECK(res(w, 26) == 0x0800);
    CHECK(res(w, 27) == static_cast<int64_t>(v6.size()) - 20);
    CHECK(r.packet == cat(slice(v6, 0, 14), slice(v6, 34, v6.size())));

    run_packet(w, "tc_proto", arp());
    CHECK(res(w, 24) == kENOTSUPP);
    CHECK(res(w, 26) == 0x0806);
}

TEST_CASE("tc redirect: bpf_redirect with and without BPF_F_INGRESS, bad flags", "[features][helpers][tc]") {
    Feature f = open_feature("feat_helpers_skb");
    World& w = f.w();
    auto r = run_packet(w, "tc_redirect", ipv4(6, 0x0a000001, 0x0a000002));
    CHECK(r.result.r0 == kTcOk);
    CHECK(res(w, 32) == static_cast<int64_t>(kTcRedirect));
    CHECK(r.redirect_ifindex == 4);
    r = run_packet(w, "tc_redirect", ipv6_udp());
    CHECK(r.result.r0 == kTcRedirect);
    CHECK(r.redirected);
    CHECK(r.redirect_ifindex == 3);
    r = run_packet(w, "tc_redirect", arp());
    CHECK(r.result.r0 == kTcShot);
    CHECK_FALSE(r.redirected);
}

TEST_CASE("bpf_loop and bpf_for_each_map_elem: counts, early stops, errors", "[features][helpers]") {
    Feature f = open_feature("feat_helpers_misc");
    World& w = f.w();
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);
    run_packet(w, "misc_xdp", pkt);
    CHECK(res(w, 0) == 10);
    CHECK(res(w, 1) == 45);
    CHECK(res(w, 2) == 4004);   // stopped after 4 iterations
    // -E2BIG as the kernel's inlined loop returns it (a 32-bit value), times 10, plus -EINVAL.
    CHECK(res(w, 3) == static_cast<int64_t>(uint64_t(0xfffffff9) * 10 - 22));
    CHECK(res(w, 4) == 4);      // every index of the array
    CHECK(res(w, 5) == 4);      // each value incremented to 1
    CHECK(res(w, 6) == 2002);   // stopped at key 1
    CHECK(res(w, 7) == 3);
    CHECK(res(w, 8) == 74);     // 1*11 + 2*12 + 3*13
    CHECK(res(w, 9) == kEINVAL);
    Map& counters = map_of(w, "counters");
    CHECK(u64_at(counters, 0) == 2);
    CHECK(u64_at(counters, 3) == 1);
    run_packet(w, "misc_xdp", pkt);
    CHECK(res(w, 5) == 3 + 3 + 2 + 2);
    CHECK(u64_at(counters, 1) == 4);
    CHECK(u64_at(counters, 2) == 2);
}

TEST_CASE("bpf_snprintf: conversions, truncation, too few arguments", "[features][helpers][printk]") {
    Feature f = open_feature("feat_helpers_misc");
    World& w = f.w();
    run_ctx(w, "fmt_text", Bytes(64, 0));
    const std::string full = "-42|3000000000|beef|bpfsim|127.0.0.1|Z|ffffffffffffffff";
    CHECK(res(w, 10) == static_cast<int64_t>(full.size()) + 1);
    CHECK(res(w, 11) == 16);        // "bpfsim and more" + NUL, though only 8 bytes were written
    CHECK(res(w, 12) == kEINVAL);
    Map& text = map_of(w, "text");
    Bytes line(64);
    const uint32_t zero = 0, one = 1;
    REQUIRE(text.user_lookup(&zero, line.data()) == 0);
    CHECK(str_at(line, 0, 64) == full);
    REQUIRE(text.user_lookup(&one, line.data()) == 0);
    CHECK(str_at(line, 0, 64) == "bpfsim ");
    CHECK(line[7] == 0);
}

TEST_CASE("spin lock: a counter under bpf_spin_lock; a lock already held traps", "[features][helpers]") {
    Feature f = open_feature("feat_helpers_misc");
    World& w = f.w();
    const Bytes pkt = ipv4(6, 0x0a000001, 0x0a000002);
    for (int i = 0; i < 2; ++i) CHECK(run_packet(w, "lock_counter", pkt).result.r0 == 0);   // BPF_OK
    struct Locked {
        uint32_t lock, packets;
        uint64_t bytes;
    } t{};
    Map& totals = map_of(w, "totals");
    const uint32_t zero = 0;
    REQUIRE(totals.user_lookup(&zero, &t) == 0);
    CHECK(t.lock == 0);   // released
    CHECK(t.packets == 2);
    CHECK(t.bytes == 2 * pkt.size());
    t.lock = 1;
    REQUIRE(totals.user_update(&zero, &t, 0) == 0);
    auto r = w.run_packet("lock_counter", pkt);
    REQUIRE(r.ok());
    REQUIRE(r->result.trap);
    CHECK_THAT(r->result.trap->message, Catch::Contains("bpf_spin_lock: lock already held"));
}

TEST_CASE("identity, clocks, randomness and CPU", "[features][helpers][tracing]") {
    WorldOptions opts;
    opts.pid = 4321;
    opts.tgid = 4300;
    opts.uid = 1001;
    opts.gid = 1002;
    opts.comm = "feature-test-comm";   // longer than the kernel's 15 characters
    opts.clock_ns = 5'003'000'123;
    opts.boot_offset_ns = 777;
    opts.seed = 42;
    opts.ncpus = 2;
    opts.cpu = 1;
    Feature f = open_feature("feat_helpers_tracing", opts);
    World& w = f.w();
    run_ctx(w, "ids", args_ctx({}));
    CHECK(res(w, 0) == (int64_t(4300) << 32 | 4321));
    CHECK(res(w, 1) == (int64_t(1002) << 32 | 1001));
    CHECK(res(w, 2) == 0);
    CHECK(res(w, 3) == 0);
    Bytes comm(24);
    const uint32_t zero = 0;
    REQUIRE(map_of(w, "comms").user_lookup(&zero, comm.data()) == 0);
    CHECK(str_at(comm, 0, 16) == "feature-test-co");
    CHECK(comm[15] == 0);
    CHECK(str_at(comm, 16, 8) == "feature");   // cut to 7 characters and a NUL
    CHECK(res(w, 4) == 1);         // a task pointer
    CHECK(res(w, 5) == kEFAULT);   // which no simulated kernel memory backs yet
    CHECK(res(w, 6) == 0);         // zero-filled
    CHECK(res(w, 7) == 5'003'000'123);
    CHECK(res(w, 8) == 5'003'000'900);
    CHECK(res(w, 9) == 5'000'000'000);   // the last 4 ms tick
    // The world's seeded PRNG: another world with the same seed gives the same numbers.
    Feature g = open_feature("feat_helpers_tracing", opts);
    const int64_t r1 = g.w().prandom(), r2 = g.w().prandom();
    CHECK(res(w, 10) == r1);
    CHECK(res(w, 11) == r2);
    CHECK(r1 != r2);
    CHECK(res(w, 12) == 1);
    WorldOptions other = opts;
    other.seed = 43;
    Feature h = open_feature("feat_helpers_tracing", other);
    run_ctx(h.w(), "ids", args_ctx({}));
    CHECK(res(h.w(), 10) != r1);
}

TEST_CASE("probe reads: kernel and user memory, string variants, faults zero-fill", "[features][helpers][tracing]") {
    Feature f = open_feature("feat_helpers_tracing", {}, true);
    World& w = f.w();
    KernelMemory& k = w.kernel();
    const std::string hello = "hello from user";
    const uint64_t user_str = k.string(hello, KernelMemory::Space::User);
    const uint8_t raw[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint64_t user_bytes = k.bytes(raw, KernelMemory::Space::User);
    // struct pt_regs: rcx at 88, rdx at 96, rsi at 104, rdi at 112 (168 bytes).
    Bytes ctx(168, 0);
    const uint64_t rsi = 0x1234567890abcdefull, rdi = 0x1000;   // rdi: unmapped
    std::memcpy(&ctx[88], &user_bytes, 8);
    std::memcpy(&ctx[96], &user_str, 8);
    std::memcpy(&ctx[104], &rsi, 8);
    std::memcpy(&ctx[112], &rdi, 8);
    run_ctx(w, "reads", ctx);
    CHECK(res(w, 16) == 0);
    CHECK(res(w, 17) == static_cast<int64_t>(rsi));
    CHECK(res(w, 18) == kEFAULT);
    CHECK(res(w, 19) == 0);    // the destination was zero-filled
    CHECK(res(w, 20) == 14);   // "hello, kernel" and its NUL
    CHECK(res(w, 21) == 8);    // cut to the buffer
    CHECK(res(w, 22) == kEFAULT);
    CHECK(res(w, 23) == static_cast<int64_t>(hello.size()) + 1);
    CHECK(res(w, 24) == 0);
    CHECK(res(w, 25) == 0x0807060504030201);
    CHECK(res(w, 26) == 0);
    CHECK(res(w, 27) == 0x90abcdef);
    CHECK(res(w, 28) == 0);         // size 0 reads nothing, even from a bad address
    CHECK(res(w, 29) == kEFAULT);   // kernel memory through bpf_probe_read_user
    CHECK(res(w, 30) == kEFAULT);   // user memory through bpf_probe_read_kernel_str
    Bytes s(80);
    const uint32_t zero = 0;
    REQUIRE(map_of(w, "strs").user_lookup(&zero, s.data()) == 0);
    CHECK(str_at(s, 0, 32) == "hello, kernel");
    CHECK(str_at(s, 32, 8) == "hello f");
    CHECK(s[39] == 0);
    CHECK(slice(s, 40, 48) == Bytes(8, 0));   // the 'x' fill zeroed by the fault
    CHECK(str_at(s, 48, 32) == hello);
}

TEST_CASE("stack and override_return", "[features][helpers][tracing]") {
    Feature f = open_feature("feat_helpers_tracing");
    World& w = f.w();
    // No call chains: skipping a frame of an empty stack faults.
    run_ctx(w, "kp_misc", Bytes(168, 0));
    CHECK(res(w, 32) == kEFAULT);
    CHECK(res(w, 33) == kEFAULT);
    CHECK(res(w, 38) == kEFAULT);
    const std::vector<uint64_t> kernel = {0xffffffff81000010, 0xffffffff81000020, 0xffffffff81000030, 0xffffffff81000040,
                                          0xffffffff81000050};
    w.kernel_stack = kernel;
    w.user_stack = {0x401000, 0x401100, 0x401200};
    run_ctx(w, "kp_misc", Bytes(168, 0));
    CHECK(res(w, 32) == 32);       // four frames after the skipped one: the buffer's worth
    std::vector<uint64_t> frames(4);
    const uint32_t zero = 0;
    REQUIRE(map_of(w, "frames").user_lookup(&zero, frames.data()) == 0);
    CHECK(frames == std::vector<uint64_t>(kernel.begin() + 1, kernel.end()));
    CHECK(res(w, 33) == 8);        // one user frame left after skipping two
    CHECK(res(w, 34) == kEINVAL);  // 20 bytes: not whole 8-byte frames
    CHECK(res(w, 35) == 0);        // zeroed on the error
    CHECK(res(w, 36) == kEINVAL);  // unknown flag
    CHECK(res(w, 37) == kEINVAL);  // build ids are for user stacks
    CHECK(res(w, 38) == kEFAULT);  // 9 skipped of 5
    CHECK(res(w, 39) == 0);        // bpf_override_return
}

TEST_CASE("bpf_printk conversions and trace lines", "[features][helpers][printk]") {
    WorldOptions opts;
    opts.comm = "tracer";
    opts.pid = 77;
    opts.cpu = 0;
    Feature f = open_feature("feat_helpers_tracing", opts);
    World& w = f.w();
    auto r = run_ctx(w, "tp_printk", Bytes(64, 0));
    REQUIRE(r.trace.size() == 9);
    std::vector<std::string> msgs;
    for (const auto& e : r.trace) msgs.push_back(e.message);
    CHECK(msgs[0] == "d=-5 i=42 u=3000000000");
    CHECK(msgs[1] == "x=beef ld=-7 lld=-8");
    CHECK(msgs[2] == "llu=18446744073709551615 llx=1122334455667788");
    CHECK(msgs[3] == "p=000000000000dead c=ok");   // the kernel hashes %p; bpfsim prints it
    CHECK(msgs[4].starts_with("ip4=192.168.0.1 ip6=2001:"));
    CHECK(msgs[5] == "s=tracer");
    CHECK(msgs[6] == "five 1 2 3 4 5");   // more than 3 arguments: bpf_trace_vprintk
    CHECK(msgs[7] == "raw 99\n");
    CHECK(msgs[8].starts_with("i6="));
    for (uint32_t i = 0; i < 8; ++i) {
        INFO("printk " << i);
        CHECK(res(w, 40 + i) == static_cast<int64_t>(msgs[i].size()));
    }
    CHECK(res(w, 48) == kEINVAL);   // %f
    CHECK(res(w, 49) == static_cast<int64_t>(msgs[8].size()));
    CHECK_THAT(trace_pipe_line(r.trace[5]),
               Catch::StartsWith("          tracer-77      [000] ...21     1.000000: bpf_trace_printk: s=tracer"));   // a tracepoint's flags
}

// Differences from the kernel that harness/printk.cpp used to have, checked against Linux 6.18.
TEST_CASE("bpf_printk %pI6, %pi6 and %pi4 print as the kernel does", "[features][helpers][printk]") {
    // Linux 6.18's trace_pipe for the same calls: %pI6 is eight 4-digit groups, %pi6 32 hex
    // digits, %pi4 3-digit parts.
    Feature f = open_feature("feat_helpers_tracing");
    auto r = run_ctx(f.w(), "tp_printk", Bytes(64, 0));
    REQUIRE(r.trace.size() == 9);
    CHECK(r.trace[4].message == "ip4=192.168.0.1 ip6=2001:0db8:0000:0000:0000:0000:0000:1234");
    CHECK(r.trace[8].message == "i6=20010db8000000000000000000001234 i4=192.168.000.001");
}

TEST_CASE("trace_pipe lines end with the newline the kernel adds to every event", "[features][helpers][printk]") {
    // The kernel prints "s=tracer" as one line, and "raw 99\n" as that line and an empty one.
    Feature f = open_feature("feat_helpers_tracing");
    auto r = run_ctx(f.w(), "tp_printk", Bytes(64, 0));
    REQUIRE(r.trace.size() == 9);
    CHECK(trace_pipe_line(r.trace[5]).ends_with("s=tracer\n"));
    CHECK(trace_pipe_line(r.trace[7]).ends_with("raw 99\n\n"));
}
