// Scenario expectations and world set-up: map contents through BTF (world.maps, update,
// delete, expect.maps), ring buffer and perf records, helper call counts, and errors that
// name the scenario's file and line.
#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;

// A scenario file in a fresh temporary directory, removed afterwards.
struct ScenarioFile {
    fs::path dir, path;
    explicit ScenarioFile(const std::string& text) {
        static int n = 0;
        dir = fs::temp_directory_path() / fmt::format("bpfsim-test-scenario-{}-{}", getpid(), n++);
        fs::create_directories(dir);
        path = dir / "s.yaml";
        std::ofstream(path) << text;
    }
    ~ScenarioFile() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    // file:line as errors name them.
    std::string at(int line) const { return fmt::format("{}:{}", path.string(), line); }
};

struct Ran {
    std::optional<Error> error;        // load or set-up error
    std::vector<std::string> failures; // every step's
    std::size_t steps = 0;
    bool passed = false;
};

Ran run(const ScenarioFile& f) {
    Ran out;
    auto s = load_scenario(f.path, {kCorpus});
    if (!s) {
        out.error = s.error();
        return out;
    }
    auto o = run_scenario(*s);
    out.error = o.error;
    for (const auto& st : o.steps)
        for (const auto& x : st.failures) out.failures.push_back(x);
    out.steps = o.steps.size();
    out.passed = o.passed();
    return out;
}

std::string error_text(const Ran& r) { return r.error ? r.error->describe() : "(no error)"; }

// The scenario object's world: one counters entry, pcpu[1] = 9, the current process "bash".
const std::string kHead = R"(object: feat_scenario_maps.o
world:
  pid: 4242
  comm: bash
  maps:
    counters:
      - key: {saddr: 0x0a000001, port: 53}
        value: {packets: 2, bytes: 100, name: "dns", last: KIND_EXIT, peer: {octets: [10, 0, 0, 2], port: 5353}, hist: [7, 8]}
    pcpu:
      - {key: 1, value: 9}
steps:
)";   // 11 lines: steps start at line 12

}  // namespace

TEST_CASE("scenario: world maps through BTF, whole and partial map expectations, records and helper counts pass", "[scenario]") {
    ScenarioFile f(kHead + R"(  - name: existing entry
    run: count
    args: [0x0a000001, 53, 60]
    expect:
      return: 3
      maps:
        counters:
          entries:
            - key: {saddr: 0x0a000001, port: 53}
              value: {packets: 3, bytes: 160, name: "dns", last: KIND_EXEC, peer: {octets: [10, 0, 0, 2], port: 5353}, hist: [7, 53]}
        pcpu: [{key: 0, value: 1}, {key: 1, value: 9}]
      records:
        events: {type: struct event, entries: [{pid: 4242, comm: "bash", kind: KIND_EXEC}]}
        pe: {type: struct event, entries: [{pid: 4242}]}
      helpers: {bpf_map_lookup_elem: 2, map_update_elem: 0, bpf_ringbuf_output: 1, perf_event_output: 1, bpf_get_current_comm: 1}
  - name: a new entry
    run: count
    args: [0x0a000002, 80, 10]
    expect:
      return: 1
      maps:
        counters:
          partial: true
          entries: [{key: {saddr: 0x0a000002, port: 80}, value: {packets: 1, name: "new", last: KIND_OPEN}}]
          absent: [{saddr: 0x0a000003, port: 80}]
      records:
        events: ["92 10 00 00 62 61 73 68 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00"]
      helpers: {bpf_map_update_elem: 1}
)");
    const Ran r = run(f);
    INFO(error_text(r));
    REQUIRE_FALSE(r.error);
    for (const auto& x : r.failures) UNSCOPED_INFO(x);
    CHECK(r.failures.empty());
    CHECK(r.steps == 2);
    CHECK(r.passed);
}

TEST_CASE("scenario: map expectation failures name the key and show expected and actual through BTF", "[scenario]") {
    ScenarioFile f(kHead + R"(  - run: count
    args: [0x0a000001, 53, 60]
    expect:
      maps:
        counters:
          entries:
            - {key: {saddr: 0x0a000001, port: 53}, value: {packets: 5, last: KIND_OPEN, name: "dn"}}
            - {key: {saddr: 1, port: 2}, value: {packets: 1}}
          absent: [{port: 7}, {saddr: 0x0a000001, port: 53}]
        pcpu: {entries: [{key: 0, values: [5]}]}
)");
    const Ran r = run(f);
    INFO(error_text(r));
    REQUIRE_FALSE(r.error);
    CHECK_FALSE(r.passed);
    const std::vector<std::string> want = {
        R"(map counters key {saddr: 167772161, port: 53}: expected {packets: 5, last: KIND_OPEN, name: "dn"}, got {packets: 3, last: KIND_EXEC, name: "dns"})",
        "map counters key {saddr: 1, port: 2}: expected {packets: 1}, got no entry",
        R"(map counters key {saddr: 167772161, port: 53}: expected no entry, got {packets: 3, bytes: 160, name: "dns", last: KIND_EXEC, peer: {octets: [10, 0, 0, 2], port: 5353}, hist: [7, 53]})",
        "map pcpu key 0 cpu 0: expected 5, got 1",
        "map pcpu: unexpected entry key 1: [9]",
    };
    CHECK(r.failures == want);
}

TEST_CASE("scenario: a whole map expectation fails on an entry it does not list", "[scenario]") {
    ScenarioFile f(kHead + R"(  - run: count
    args: [0x0a000002, 80, 10]
    expect:
      maps:
        counters: [{key: {saddr: 0x0a000002, port: 80}, value: {packets: 1}}]
)");
    const Ran r = run(f);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0] ==
          R"(map counters: unexpected entry key {saddr: 167772161, port: 53, pad: 0}: {packets: 2, bytes: 100, name: "dns", last: KIND_EXIT, peer: {octets: [10, 0, 0, 2], port: 5353}, hist: [7, 8]})");
}

TEST_CASE("scenario: update and delete steps change the world between runs", "[scenario]") {
    ScenarioFile f(kHead + R"(  - update: {map: counters, key: {saddr: 0x0a000001, port: 53}, value: {packets: 10}}
  - name: counts on from the updated value
    run: count
    args: [0x0a000001, 53, 1]
    expect:
      return: 11
      maps: {counters: [{key: {saddr: 0x0a000001, port: 53}, value: {packets: 11, bytes: 1, last: KIND_EXEC}}]}
  - delete: {map: counters, key: {saddr: 0x0a000001, port: 53}}
    update: [{map: pcpu, key: 0, value: 40}]
  - name: starts again after the delete
    run: count
    args: [0x0a000001, 53, 1]
    expect:
      return: 1
      maps:
        counters: [{key: {saddr: 0x0a000001, port: 53}, value: {packets: 1, name: "new"}}]
        pcpu: [{key: 0, value: 41}, {key: 1, value: 9}]
)");
    const Ran r = run(f);
    INFO(error_text(r));
    REQUIRE_FALSE(r.error);
    for (const auto& x : r.failures) UNSCOPED_INFO(x);
    CHECK(r.failures.empty());
    CHECK(r.steps == 2);
}

TEST_CASE("scenario: record expectations fail with the record, and on a count mismatch", "[scenario]") {
    ScenarioFile f(kHead + R"(  - run: count
    args: [1, 2, 3]
    expect:
      records:
        events: {type: struct event, entries: [{comm: "sh", kind: KIND_EXEC}, {pid: 1}]}
        pe: {type: struct event, partial: true, entries: [{pid: 4242}]}
  - run: count
    args: [1, 2, 3]
    expect:
      records:
        events: ["00 01"]
        pe: {type: struct event, partial: true, entries: [{pid: 1}, {pid: 2}]}
)");
    const Ran r = run(f);
    REQUIRE_FALSE(r.error);
    const std::vector<std::string> want = {
        R"(records events[0]: expected {comm: "sh", kind: KIND_EXEC}, got {comm: "bash", kind: KIND_EXEC})",
        "records events: expected 2 records, got 1",
        "records events[0]: expected 00 01, got 92 10 00 00 62 61 73 68 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00",
        "records pe[0]: expected {pid: 1}, got {pid: 4242}",
        "records pe: expected at least 2 records, got 1",
    };
    CHECK(r.failures == want);
}

TEST_CASE("scenario: helper call counts", "[scenario]") {
    ScenarioFile f(kHead + R"(  - run: count
    args: [1, 2, 3]
    expect:
      helpers: {bpf_map_update_elem: 1, map_lookup_elem: 2, bpf_ktime_get_ns: 0}
  - run: count
    args: [1, 2, 3]
    expect:
      helpers: {bpf_map_update_elem: 1, ringbuf_output: 2}
)");
    const Ran r = run(f);
    REQUIRE_FALSE(r.error);
    const std::vector<std::string> want = {
        "helpers: expected 1 bpf_map_update_elem call, got 0",
        "helpers: expected 2 bpf_ringbuf_output calls, got 1",
    };
    CHECK(r.failures == want);
}

TEST_CASE("scenario: xdp_counter's struct flow keys, per-CPU values and global data", "[scenario]") {
    // Ethernet, IPv4 10.0.0.1 -> 10.0.0.2 UDP, 1234 -> 80.
    const std::string packet =
        "02 00 00 00 00 02 02 00 00 00 00 01 08 00 45 00 00 1c 00 00 00 00 40 11 00 00 0a 00 00 01 0a 00 00 02 04 d2 00 50 00 08 00 00";
    ScenarioFile f(fmt::format(R"(object: xdp_counter.o
world:
  maps:
    flows:
      - {{key: {{saddr: 0x0100000a, daddr: 0x0200000a, sport: 0xd204, dport: 0x5000, proto: 17}}, value: 41}}
steps:
  - run: xdp_count
    packet: {0}
    expect:
      return: XDP_PASS
      maps:
        flows: [{{key: {{saddr: 0x0100000a, daddr: 0x0200000a, sport: 0xd204, dport: 0x5000, proto: 17}}, value: 42}}]
        proto_count: [{{key: 17, value: 1}}]
        verdicts: [{{key: 2, values: [1]}}]
        .bss: [{{key: 0, value: {{packets_seen: 1}}}}]
        .data: {{partial: true, entries: [{{key: 0, value: {{log_first: 0}}}}]}}
      helpers: {{map_lookup_elem: 3, trace_printk: 1}}
  - run: xdp_count
    packet: {0}
    expect:
      maps:
        flows: [{{key: {{saddr: 0x0100000a, daddr: 0x0200000a, sport: 0xd204, dport: 0x5000, proto: 17}}, value: 42}}]
        .bss: [{{key: 0, value: {{packets_seen: 1}}}}]
)",
                               packet));
    const Ran r = run(f);
    INFO(error_text(r));
    REQUIRE_FALSE(r.error);
    const std::vector<std::string> want = {
        "map flows key {saddr: 16777226, daddr: 33554442, sport: 53764, dport: 20480, proto: 17}: expected 42, got 43",
        "map .bss key 0: expected {packets_seen: 1}, got {packets_seen: 2}",
    };
    CHECK(r.failures == want);
}

TEST_CASE("scenario: malformed keys and values give errors naming the file and line", "[scenario]") {
    struct Case {
        std::string steps;
        int line;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"  - run: count\n    expect:\n      mapz: {}\n", 14, "expect: unknown key 'mapz' (known: verifier, return, trace, packet, maps, records, helpers)"},
        {"  - run: count\n    expect:\n      helpers: {bpf_nope: 1}\n", 14, "helpers: no helper named 'bpf_nope'"},
        {"  - run: count\n    expect:\n      helpers: {map_lookup_elem: two}\n", 14, "helper calls: 'two' is not a number"},
        {"  - run: count\n    expect:\n      records:\n        events: [{pid: 1}]\n", 15,
         "record: a mapping needs the records' type (events: {type: struct NAME, entries: [...]})"},
        {"  - run: count\n    expect:\n      maps: {counters: {entries: [], partial: maybe}}\n", 14, "partial: expected true or false, not 'maybe'"},
        {"  - update: {map: counters, key: 1}\n", 12, "update: no 'value'"},
        {"  - delete: {map: counters}\n", 12, "delete: no 'key'"},
        {"  - update: {map: counters, key: 1, value: 2, flags: 3}\n", 12, "update: unknown key 'flags' (known: map, key, value, values)"},
        {"  - name: nothing\n", 12, "step: give 'run', 'current', 'advance_ns', 'update' or 'delete'"},
        // Found when the object's BTF encodes them, still with their line.
        {"  - update: {map: counters, key: {saddr: 1, sport: 2}, value: 1}\n", 12,
         "map counters key: struct key has no member 'sport' (members: saddr, port, pad)"},
        {"  - update:\n      map: counters\n      key: {saddr: 1}\n      value:\n        last: KIND_NONE\n", 16,
         "map counters value.last: 'KIND_NONE' is not an enumerator of enum kind (KIND_OPEN, KIND_EXEC, KIND_EXIT)"},
        {"  - update: {map: counters, key: {saddr: 1}, value: {name: \"much too long\"}}\n", 12,
         "map counters value.name: \"much too long\" is 13 characters, but char [8] holds 8"},
        {"  - update: {map: counters, key: {saddr: 0x100000000}, value: {}}\n", 12, "map counters key.saddr: 0x100000000 does not fit in 4 bytes"},
        {"  - update: {map: pcpu, key: [1, 2], value: 1}\n", 12, "map pcpu key: 2 bytes given, but __u32 is 4 bytes"},
        {"  - update: {map: nope, key: 1, value: 1}\n", 12, "no map 'nope' in " + (kCorpus / "feat_scenario_maps.o").string() +
                                                              " (maps: counters, pcpu, events, pe, .bss)"},
        {"  - delete: {map: counters, key: {saddr: 9}}\n", 12, "delete: map 'counters' has no entry with key {saddr: 9}"},
        {"  - run: count\n    expect:\n      records:\n        events: {type: struct nope, entries: []}\n", 15,
         "expect.records: no type 'struct nope' in the BTF of " + (kCorpus / "feat_scenario_maps.o").string()},
        {"  - run: count\n    expect:\n      maps:\n        events: []\n", 15, "expect.maps: 'events' is a ringbuf; check its output with 'records'"},
        {"  - run: count\n    expect:\n      verifier: maybe\n", 14, "expect.verifier: 'maybe': write accept or reject"},
        {"  - run: count\n    expect:\n      verifier: {verdict: accept, messages: [x]}\n", 14, "expect.verifier: messages are for a rejected program"},
        {"  - run: count\n    expect:\n      verifier: reject\n      return: 0\n", 14,
         "expect.verifier: a rejected program does not run, so it has no other expectations"},
        {"  - run: count\n    expect:\n      verifier: {messages: [x]}\n", 14, "expect.verifier: no 'verdict' (accept or reject)"},
    };
    for (const auto& c : cases) {
        ScenarioFile f(kHead + c.steps);
        const Ran r = run(f);
        INFO(c.steps);
        REQUIRE(r.error);
        CHECK(r.error->describe() == f.at(c.line) + ": " + c.message);
    }
}

TEST_CASE("scenario: bad world.maps entries name their line", "[scenario]") {
    ScenarioFile f(R"(object: feat_scenario_maps.o
world:
  maps:
    pcpu:
      - {key: 0, value: 1}
      - {key: 1, values: [1, 2]}
steps:
  - run: count
)");
    const Ran r = run(f);
    REQUIRE(r.error);
    CHECK(r.error->describe() == f.at(6) + ": world.maps: 2 per-CPU values, but the world has 1 CPU(s)");

    ScenarioFile g(R"(object: feat_scenario_maps.o
world:
  maps:
    counters: {key: 1}
steps:
  - run: count
)");
    const Ran r2 = run(g);
    REQUIRE(r2.error);
    CHECK(r2.error->describe() == g.at(4) + ": maps: 'counters': expected a list of {key: K, value: V}");
}

TEST_CASE("scenario: a verifier rejection is not run and is reported as not checked", "[scenario]") {
    ScenarioFile f(kHead + "  - run: count\n    expect:\n      verifier: {verdict: reject, messages: [\"R0 !read_ok\"]}\n"
                           "  - run: count\n    expect:\n      verifier: accept\n");
    auto s = load_scenario(f.path, {kCorpus});
    REQUIRE(s);
    REQUIRE(s->steps.size() == 2);
    REQUIRE(s->steps[0].expect.verifier);
    CHECK_FALSE(s->steps[0].expect.verifier->accept);
    CHECK(s->steps[0].expect.verifier->messages == std::vector<std::string>{"R0 !read_ok"});
    CHECK(s->steps[1].expect.verifier->accept);
    const auto out = run_scenario(*s);
    REQUIRE_FALSE(out.error);
    REQUIRE(out.steps.size() == 2);
    REQUIRE(out.steps[0].skipped);
    CHECK(*out.steps[0].skipped == f.at(14) + ": expects the verifier to reject 'count' with \"R0 !read_ok\"; bpfsim has no verifier model yet, so this is not checked");
    CHECK_FALSE(out.steps[0].run);
    CHECK_FALSE(out.steps[1].skipped);
    CHECK(out.steps[1].run);
    CHECK(out.passed());
}

TEST_CASE("scenario: kernel objects in the world, pointed to by fields and program arguments", "[scenario]") {
    ScenarioFile f(R"(object: trace_contexts.o
btf: vmlinux-6.18.44.btf
world:
  objects:
    - name: ino
      type: inode
      fields: {i_ino: 4242}
    - name: passwd
      type: struct file
      fields: {f_flags: 0x8002, f_inode: "@ino", "f_path.dentry->d_name.name": "passwd"}
  tasks:
    - {name: cat, pid: 77, comm: cat}
  current: cat
steps:
  - run: on_vfs_read
    args: ["@passwd"]
    expect:
      trace: ["read passwd ino 4242 flags 8002"]
)");
    const Ran r = run(f);
    if (r.error) FAIL(r.error->describe());
    for (const auto& x : r.failures) INFO(x);
    CHECK(r.passed);
    CHECK(r.steps == 1);

    // An unknown "@name", an unknown type and a bad path are errors naming the line.
    ScenarioFile bad_ref(R"(object: trace_contexts.o
btf: vmlinux-6.18.44.btf
world:
  objects:
    - {name: a, type: file, fields: {f_inode: "@nope"}}
steps:
  - run: on_vfs_read
)");
    Ran e = run(bad_ref);
    REQUIRE(e.error);
    CHECK(e.error->describe() == bad_ref.at(5) + ": '@nope': no object or task of that name in world.objects or world.tasks");
    ScenarioFile bad_type(R"(object: trace_contexts.o
btf: vmlinux-6.18.44.btf
world:
  objects:
    - {name: a, type: no_such_struct}
steps:
  - run: on_vfs_read
)");
    e = run(bad_type);
    REQUIRE(e.error);
    CHECK_THAT(e.error->describe(), Catch::StartsWith(bad_type.at(5)) && Catch::Contains("no_such_struct"));
    ScenarioFile bad_path(R"(object: trace_contexts.o
btf: vmlinux-6.18.44.btf
world:
  objects:
    - {name: a, type: file, fields: {f_nope: 1}}
steps:
  - run: on_vfs_read
)");
    e = run(bad_path);
    REQUIRE(e.error);
    CHECK_THAT(e.error->describe(), Catch::StartsWith(bad_path.at(5)) && Catch::Contains("f_nope"));
    ScenarioFile no_btf(R"(object: trace_contexts.o
world:
  objects:
    - {name: a, type: file}
steps:
  - run: on_vfs_read
)");
    e = run(no_btf);
    REQUIRE(e.error);
    CHECK_THAT(e.error->describe(), Catch::Contains("give 'btf'"));
}

TEST_CASE("scenario: verifier expectations against a verifier's verdict", "[scenario]") {
    ScenarioFile f(kHead + "  - name: reject\n    run: count\n    expect:\n      verifier: {verdict: reject, messages: [\"R1 type=\", \"expected=map_ptr\"]}\n"
                           "  - name: accept\n    run: count\n    expect:\n      verifier: accept\n");
    auto s = load_scenario(f.path, {kCorpus});
    REQUIRE(s);
    VerifierVerdict said;
    std::vector<std::string> asked;
    const VerifierFn fake = [&](const Object&, std::string_view prog, const WorldOptions&) -> Result<VerifierVerdict> {
        asked.emplace_back(prog);
        return said;
    };
    SECTION("a rejection with its messages in order passes and does not run; an expected acceptance fails") {
        said = {false, "R1 type=scalar expected=map_ptr", 3, "x.c:7: f(x);", "0: ...\nR1 type=scalar expected=map_ptr\n"};
        const auto out = run_scenario(*s, 0, {}, fake);
        REQUIRE_FALSE(out.error);
        REQUIRE(out.steps.size() == 2);
        CHECK(out.steps[0].passed);
        CHECK_FALSE(out.steps[0].run);
        CHECK_FALSE(out.steps[0].skipped);
        CHECK_FALSE(out.steps[1].passed);
        REQUIRE(out.steps[1].failures.size() == 1);
        CHECK(out.steps[1].failures[0] ==
              "verifier: expected the program to be accepted, but it is rejected at pc 3 (x.c:7: f(x);): R1 type=scalar expected=map_ptr");
        CHECK(asked == std::vector<std::string>{"count", "count"});
    }
    SECTION("messages out of order, or an acceptance, fail the rejection; an acceptance runs the program") {
        said = {false, "expected=map_ptr R1 type=", 3, "", ""};
        auto out = run_scenario(*s, 0, {}, fake);
        REQUIRE(out.steps.size() == 2);
        REQUIRE_FALSE(out.steps[0].passed);
        CHECK(out.steps[0].failures[0] == "verifier: rejected at pc 3 with \"expected=map_ptr R1 type=\", but the log has no \"expected=map_ptr\" after the messages before it");
        said = {true, "", 0, "", ""};
        out = run_scenario(*s, 0, {}, fake);
        REQUIRE(out.steps.size() == 2);
        CHECK_FALSE(out.steps[0].passed);
        CHECK(out.steps[0].failures[0] == "verifier: expected a rejection with \"R1 type=\", but the program is accepted");
        CHECK(out.steps[1].passed);
        CHECK(out.steps[1].run);
    }
}
