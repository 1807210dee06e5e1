// The public facade (include/bpfsim/bpfsim.hpp) on the corpus objects. The same header as an
// installed package is tested by tests/example_package.sh (examples/catch2).
#include <bpfsim/bpfsim.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;
const fs::path kSource = BPFSIM_SOURCE_DIR;

// corpus/net/xdp_counter.c's flow key.
struct Flow {
    uint32_t saddr, daddr;
    uint16_t sport, dport;
    uint8_t proto, pad[3];
};

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const bpfsim::Error& e) {
        return e.describe();
    }
    return "no error";
}
}  // namespace

TEST_CASE("facade: verdicts, maps, globals and trace of an XDP program", "[api]") {
    bpfsim::Sim sim(kCorpus / "xdp_counter.o");
    const auto dns = bpfsim::udp4("10.0.0.1", 5000, "10.0.0.2", 53), web = bpfsim::udp4("10.0.0.1", 5000, "10.0.0.2", 80);

    bpfsim::Run r = sim.run_packet("xdp_count", dns);   // .rodata blocked_udp_port = 53
    CHECK(r.r0() == 1);
    CHECK(r.verdict() == "XDP_DROP");
    CHECK(r.messages().empty());   // dropped before it logs
    const bpfsim::Run passed = sim.run_packet("xdp_count", web);
    CHECK(passed.verdict() == "XDP_PASS");
    CHECK(passed.messages() == std::vector<std::string>{"first ipv4 packet: proto 17 len 42"});
    REQUIRE(passed.trace_lines().size() == 1);
    CHECK_THAT(passed.trace_lines()[0], Catch::Contains("bpf_trace_printk: first ipv4 packet: proto 17 len 42\n"));
    sim.set_global<uint16_t>("blocked_udp_port", 80);
    CHECK(sim.run_packet("xdp_count", web).verdict() == "XDP_DROP");
    CHECK(sim.run_packet("xdp_count", bpfsim::tcp4("10.0.0.3", 1234, "10.0.0.2", 80)).verdict() == "XDP_PASS");

    CHECK(sim.global<uint64_t>("packets_seen") == 4);
    CHECK(sim.global<uint32_t>("log_first") == 0);
    CHECK(sim.global<uint16_t>("blocked_udp_port") == 80);
    CHECK(sim.lookup<uint64_t>("proto_count", uint32_t{17}) == 3u);
    CHECK(sim.lookup<uint64_t>("proto_count", uint32_t{6}) == 1u);
    CHECK(sim.lookup<uint64_t>("verdicts", uint32_t{1}) == 2u);   // per-CPU, one CPU
    CHECK(sim.lookup<uint64_t>("verdicts", uint32_t{2}) == 2u);
    CHECK_FALSE(sim.lookup<uint64_t>("flows", Flow{}).has_value());
    const auto flows = sim.entries<Flow, uint64_t>("flows");   // passed packets only
    REQUIRE(flows.size() == 2);
    for (const auto& [f, n] : flows) {
        CHECK(f.saddr == (f.proto == 17 ? 0x0100000au : 0x0300000au));   // network order
        CHECK(n == 1);
    }
    CHECK(sim.messages().size() == 1);   // log_first: only the first packet logs
    sim.clear_trace();
    CHECK(sim.messages().empty());

    sim.update("proto_count", uint32_t{99}, uint64_t{7});
    CHECK(sim.lookup<uint64_t>("proto_count", uint32_t{99}) == 7u);
    CHECK_THAT(sim.map_json("proto_count"), Catch::Contains("\"0x07\""));
    CHECK(sim.erase("flows", flows[0].first));
    CHECK_FALSE(sim.erase("flows", flows[0].first));
}

TEST_CASE("facade: errors name what is wrong", "[api]") {
    bpfsim::Sim sim(kCorpus / "xdp_counter.o");
    CHECK_THAT(error_of([&] { sim.map("nope"); }), Catch::Contains("no map 'nope' (maps: flows, proto_count, verdicts, .rodata, .bss, .data)"));
    CHECK_THAT(error_of([&] { sim.lookup<uint64_t>("proto_count", uint16_t{1}); }),
               Catch::Contains("map 'proto_count': the key type has 2 bytes, the map's key 4"));
    CHECK_THAT(error_of([&] { sim.update("proto_count", uint32_t{1000}, uint64_t{1}); }), Catch::Contains("errno 7"));   // E2BIG
    CHECK_THAT(error_of([&] { sim.global<uint64_t>("blocked_udp_port"); }), Catch::Contains("has 2 bytes, the type 8"));
    CHECK_THAT(error_of([&] { sim.global<int>("nothing"); }), Catch::Contains("no global variable 'nothing'"));
    CHECK_THAT(error_of([&] { sim.run_trace("xdp_count"); }), Catch::Contains("takes a packet: use run_packet"));
    CHECK_THAT(error_of([&] { sim.run_packet("missing", {}); }), Catch::Contains("missing"));
    CHECK_THAT(error_of([&] { sim.ringbuf_records("flows"); }), Catch::Contains("not a ring buffer"));
    CHECK_THAT(error_of([] { bpfsim::Sim("/nonexistent.o"); }), Catch::Contains("/nonexistent.o"));
    CHECK_THAT(error_of([] { bpfsim::udp4("10.0.0", 1, "10.0.0.2", 2); }), Catch::Contains("not an IPv4 address"));
    CHECK_THAT(error_of([] { bpfsim::udp4("10.0.0.256", 1, "10.0.0.2", 2); }), Catch::Contains("not an IPv4 address"));

    bpfsim::RunOptions tiny;
    tiny.budget = 3;
    const bpfsim::Run r = sim.run_packet("xdp_count", bpfsim::udp4("10.0.0.1", 1, "10.0.0.2", 2), tiny);
    CHECK(r.trapped());
    CHECK_THROWS_AS(r.r0(), bpfsim::Trapped);
    CHECK_THROWS_WITH(r.verdict(), Catch::StartsWith("program 'xdp_count' trapped: "));
}

TEST_CASE("facade: per-CPU maps with several CPUs", "[api]") {
    bpfsim::WorldOptions wo;
    wo.ncpus = 2;
    wo.cpu = 1;
    bpfsim::Sim sim(kCorpus / "xdp_counter.o", wo);
    sim.run_packet("xdp_count", bpfsim::udp4("10.0.0.1", 1, "10.0.0.2", 2));
    CHECK(sim.lookup_percpu<uint64_t>("verdicts", uint32_t{2}) == std::vector<uint64_t>{0, 1});
    CHECK_THAT(error_of([&] { sim.lookup<uint64_t>("verdicts", uint32_t{2}); }), Catch::Contains("use lookup_percpu"));
    CHECK_THAT(error_of([&] { sim.lookup_percpu<uint64_t>("proto_count", uint32_t{2}); }), Catch::Contains("is not per-CPU"));
}

TEST_CASE("facade: packets carry valid checksums", "[api]") {
    auto sum = [](const std::vector<uint8_t>& b, std::size_t from, std::size_t n, uint32_t s = 0) {
        for (std::size_t i = from; i < from + n; i += 2) s += static_cast<uint32_t>(b[i] << 8 | (i + 1 < from + n ? b[i + 1] : 0));
        while (s >> 16) s = (s & 0xffff) + (s >> 16);
        return s;
    };
    for (uint8_t proto : {uint8_t{17}, uint8_t{6}, uint8_t{1}}) {
        const auto p = bpfsim::ipv4_packet({.protocol = proto, .vlan = 7, .payload = {1, 2, 3}});
        const std::size_t l3 = 18, l4 = l3 + 20, len = p.size() - l4;
        CHECK(p[12] == 0x81);
        CHECK(p[15] == 7);
        CHECK(sum(p, l3, 20) == 0xffff);
        uint32_t pseudo = proto == 1 ? 0 : sum(p, l3 + 12, 8) + proto + static_cast<uint32_t>(len);
        CHECK(sum(p, l4, len, pseudo) == 0xffff);
    }
}

TEST_CASE("facade: a tracing program with the current task, and a scenario", "[api]") {
    bpfsim::WorldOptions wo;
    wo.kernel_btf = bpfsim::kernel_btf(kCorpus / "vmlinux-6.18.44.btf");
    bpfsim::Sim sim(kCorpus / "trace_exec.o", wo);
    const uint64_t init = sim.add_task({.pid = 1, .comm = "systemd"});
    sim.current(sim.add_task({.pid = 4242, .comm = "sh", .parent = init}));
    const bpfsim::Run r = sim.run_trace("trace_exec", {.args = {sim.user_string("/bin/ls")}});
    CHECK(r.r0() == 0);
    CHECK(r.messages() == std::vector<std::string>{"exec: 4242 sh"});

    const auto out = bpfsim::run_scenario_file(kSource / "corpus/demo/trace_exec.yaml", {kCorpus});
    CHECK(out.size() == 2);   // one run per kernel BTF
    INFO(bpfsim::summary(out));
    CHECK(bpfsim::passed(out));
    CHECK_THAT(bpfsim::summary(out), Catch::Contains("ok   bash runs ls [vmlinux-6.18.44.btf]"));
}

TEST_CASE("facade: tracing contexts with fields and arguments", "[api]") {
    struct Seen {
        uint64_t a, b, c, d;
    };
    bpfsim::WorldOptions wo;
    wo.pid = 4242;
    bpfsim::Sim sim(kCorpus / "trace_contexts.o", wo);

    // kprobe: arguments in di, si, dx; other registers by name.
    CHECK(sim.run_trace("on_unlinkat", {.args = {3, 0x1000, 7}, .fields = {{"ip", 0xffffffff81000000ull}}}).r0() == 0);
    Seen s = sim.global<Seen>("kprobe_seen");
    CHECK(s.a == 3);
    CHECK(s.b == 0x1000);
    CHECK(s.c == 7);
    CHECK(s.d == 0xffffffff81000000ull);

    // A syscall tracepoint: its record's fields by name, the header from the world.
    CHECK(sim.run_trace("on_openat", {.fields = {{"dfd", 7}, {"flags", 0x80000}}}).r0() == 0);
    s = sim.global<Seen>("tp_seen");
    CHECK(s.a == 4242);   // common_pid
    CHECK(s.b == 257);    // __NR_openat
    CHECK(s.c == 7);
    CHECK(s.d == 0x80000);
    const bpfsim::Run exit = sim.run_trace("on_openat_exit", {.fields = {{"ret", static_cast<uint64_t>(-13)}}});
    CHECK(exit.r0() == 1);
    CHECK(exit.verdict() == "1");
    CHECK(static_cast<int64_t>(sim.global<Seen>("exit_seen").b) == -13);

    // raw_tp: u64 args; perf_event: the sample's fields.
    sim.run_trace("on_switch", {.args = {11, 22, 33}});
    s = sim.global<Seen>("raw_tp_seen");
    CHECK((s.a == 11 && s.b == 22 && s.c == 33));
    sim.run_trace("on_sample", {.fields = {{"sample_period", 4000}, {"addr", 0x1234}}});
    s = sim.global<Seen>("perf_seen");
    CHECK(s.a == 4000);
    CHECK(s.b == 0x1234);

    CHECK_THAT(error_of([&] { sim.run_trace("on_openat", {.fields = {{"pathname", 1}}}); }), Catch::Contains("pathname"));
    CHECK_THAT(error_of([&] { sim.user_string("x"); }), Catch::Contains("BTF"));   // no kernel BTF in this world
}

TEST_CASE("facade: ring buffer and perf event records, clock and raw map access", "[api]") {
    bpfsim::Sim sim(kCorpus / "feat_ringbuf_perf.o");
    const auto pkt = bpfsim::udp4("10.0.0.1", 1, "10.0.0.2", 2);
    CHECK(sim.run_packet("rb_xdp", pkt).verdict() == "XDP_PASS");
    auto records = sim.ringbuf_records("rb");   // the 16-byte output and the 1000-byte reservation
    REQUIRE(records.size() == 2);
    CHECK(records[0].size() == 16);
    CHECK(records[1].size() == 1000);
    struct Small {
        uint32_t run, magic;
        uint64_t len;
    };
    sim.run_packet("rb_xdp", pkt);
    const auto small = sim.ringbuf<Small>("rb");   // consumed: only the second run's
    REQUIRE(small.size() == 2);
    CHECK(small[0].run == 1);
    CHECK(small[0].magic == 0x5ba11);
    CHECK(small[0].len == pkt.size());
    CHECK(sim.lookup<int64_t>("res", uint32_t{8}) == 2);   // runs

    // perf_tp: records to the current CPU's slot and to slot 0; the rest fail.
    sim.run_trace("perf_tp");
    const auto perf = sim.perf_records("pe");
    REQUIRE(perf.size() == 2);
    for (const auto& p : perf) {
        CHECK(p.cpu == 0);
        REQUIRE(p.data.size() == 8);
        CHECK((p.data[0] == 0x57 && p.data[1] == 0x7e));   // tag 0x7e57
    }
    CHECK(perf[0].data[4] == 0xff);   // cpu_slot 0xffffffff, then 0
    CHECK(perf[1].data[4] == 0);
    CHECK(sim.lookup<int64_t>("res", uint32_t{16}) == 0);
    CHECK(sim.lookup<int64_t>("res", uint32_t{18}) == -7);   // past max_entries: -E2BIG
    CHECK(sim.perf_records("pe").empty());
    CHECK_THAT(error_of([&] { sim.perf_records("rb"); }), Catch::Contains("not a perf event array"));

    // Raw bytes: little-endian keys and values.
    sim.update_raw("res", {3, 0, 0, 0}, {0x2a, 0, 0, 0, 0, 0, 0, 0});
    CHECK(sim.lookup<int64_t>("res", uint32_t{3}) == 42);
    const auto v = sim.lookup_raw("res", {8, 0, 0, 0});
    REQUIRE(v);
    CHECK(*v == std::vector<uint8_t>{2, 0, 0, 0, 0, 0, 0, 0});
    CHECK_FALSE(sim.lookup_raw("res", {99, 0, 0, 0}).has_value());   // past max_entries: absent
    const auto dump = sim.dump_raw("res");
    REQUIRE(dump.size() == 24);
    CHECK(dump[3].first == std::vector<uint8_t>{3, 0, 0, 0});
    CHECK(dump[3].second[0] == 0x2a);
    CHECK_THAT(error_of([&] { sim.update_raw("res", {1, 0}, {0, 0, 0, 0, 0, 0, 0, 0}); }), Catch::Contains("the key type has 2 bytes"));
    CHECK_THAT(error_of([&] { sim.update_raw("res", {1, 0, 0, 0}, {1}); }), Catch::Contains("the value type has 1 bytes, the map's value 8"));

    // The clock: where WorldOptions start it, moved by advance.
    bpfsim::WorldOptions wo;
    wo.clock_ns = 5'003'000'123;
    bpfsim::Sim ids(kCorpus / "feat_helpers_tracing.o", wo);
    ids.run_trace("ids");
    CHECK(ids.lookup<int64_t>("res", uint32_t{7}) == 5'003'000'123);
    ids.advance(1'000);
    CHECK(ids.now_ns() == 5'003'001'123);
    ids.run_trace("ids");
    CHECK(ids.lookup<int64_t>("res", uint32_t{7}) == 5'003'001'123);
    CHECK(ids.lookup<int64_t>("res", uint32_t{0}) == (int64_t{1000} << 32 | 1000));   // WorldOptions' pid/tgid
}
