// Tests of bpf/xdp_filter.bpf.c and bpf/exec_tracker.bpf.c, run in bpfsim's simulated kernel.
#include <bpfsim/bpfsim.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

const std::string kBpf = EXAMPLE_BPF_DIR;   // where CMake put the compiled objects
constexpr uint64_t kXdpDrop = 1, kXdpPass = 2;

// The programs' structs, as the C side declares them.
struct SourceStats {
    uint64_t packets, bytes;
};
struct ExecInfo {
    uint32_t ppid, uid;
    uint64_t count;
    char comm[16];
};
struct Event {
    uint32_t pid, ppid;
    char comm[16];
    char filename[64];
};

// An IPv4 address as the program stores it (network order) in a little-endian u32 key.
uint32_t addr_key(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t{a} | uint32_t{b} << 8 | uint32_t{c} << 16 | uint32_t{d} << 24;
}

// A world for the XDP filter with UDP port 53 blocked.
bpfsim::Sim xdp_filter() {
    bpfsim::Sim sim(kBpf + "/xdp_filter.bpf.o");
    sim.update("blocked_ports", uint16_t{53}, uint8_t{1});
    return sim;
}

}  // namespace

TEST_CASE("xdp_filter drops UDP to a blocked port and passes other traffic", "[xdp]") {
    bpfsim::Sim sim = xdp_filter();
    const bpfsim::Run dns = sim.run_packet("xdp_filter", bpfsim::udp4("10.0.0.1", 40000, "10.0.0.2", 53));
    CHECK(dns.r0() == kXdpDrop);
    CHECK(dns.verdict() == "XDP_DROP");

    const bpfsim::Run web = sim.run_packet("xdp_filter", bpfsim::udp4("10.0.0.1", 40000, "10.0.0.2", 8080));
    CHECK(web.verdict() == "XDP_PASS");
    CHECK(web.packet == bpfsim::udp4("10.0.0.1", 40000, "10.0.0.2", 8080));   // not rewritten

    // Only UDP is filtered; unblocking the port lets DNS through.
    CHECK(sim.run_packet("xdp_filter", bpfsim::tcp4("10.0.0.1", 40000, "10.0.0.2", 53)).r0() == kXdpPass);
    CHECK(sim.erase("blocked_ports", uint16_t{53}));
    CHECK(sim.run_packet("xdp_filter", bpfsim::udp4("10.0.0.1", 40000, "10.0.0.2", 53)).r0() == kXdpPass);
}

TEST_CASE("xdp_filter counts verdicts and traffic per source in its maps", "[xdp][maps]") {
    bpfsim::Sim sim = xdp_filter();
    sim.run_packet("xdp_filter", bpfsim::udp4("10.0.0.1", 1000, "10.0.0.2", 53));    // 42 bytes, dropped
    sim.run_packet("xdp_filter", bpfsim::tcp4("10.0.0.1", 1000, "10.0.0.2", 443));   // 54 bytes
    sim.run_packet("xdp_filter", bpfsim::udp4("192.168.1.7", 1000, "10.0.0.2", 123, {1, 2, 3, 4}));   // 46 bytes

    CHECK(sim.lookup<uint64_t>("verdicts", uint32_t{kXdpDrop}) == 1u);
    CHECK(sim.lookup<uint64_t>("verdicts", uint32_t{kXdpPass}) == 2u);
    CHECK(sim.global<uint64_t>("packets_seen") == 3);

    const auto a = sim.lookup<SourceStats>("sources", addr_key(10, 0, 0, 1));
    REQUIRE(a);
    CHECK(a->packets == 2);
    CHECK(a->bytes == 42 + 54);
    const auto b = sim.lookup<SourceStats>("sources", addr_key(192, 168, 1, 7));
    REQUIRE(b);
    CHECK(b->packets == 1);
    CHECK(b->bytes == 46);
    CHECK_FALSE(sim.lookup<SourceStats>("sources", addr_key(10, 0, 0, 2)));
    CHECK(sim.entries<uint32_t, SourceStats>("sources").size() == 2);
}

TEST_CASE("xdp_filter writes a trace line for each drop", "[xdp][trace]") {
    bpfsim::Sim sim = xdp_filter();
    const bpfsim::Run dropped = sim.run_packet("xdp_filter", bpfsim::udp4("10.9.8.7", 5353, "10.0.0.2", 53));
    CHECK(dropped.messages() == std::vector<std::string>{"drop 10.9.8.7 -> 53"});
    REQUIRE(dropped.trace_lines().size() == 1);
    CHECK_THAT(dropped.trace_lines()[0], Catch::EndsWith("bpf_trace_printk: drop 10.9.8.7 -> 53\n"));

    CHECK(sim.run_packet("xdp_filter", bpfsim::udp4("10.9.8.7", 5353, "10.0.0.2", 80)).messages().empty());
    CHECK(sim.messages().size() == 1);   // every run's lines so far
}

TEST_CASE("exec_tracker records the current task on execve", "[tracepoint][tasks]") {
    bpfsim::WorldOptions wo;
    wo.kernel_btf = bpfsim::kernel_btf(kBpf + "/kernel_types.o");   // the layout of task_struct
    bpfsim::Sim sim(kBpf + "/exec_tracker.bpf.o", wo);

    const uint64_t init = sim.add_task({.pid = 1, .comm = "systemd"});
    const uint64_t bash = sim.add_task({.pid = 4242, .comm = "bash", .parent = init, .uid = 1000, .gid = 1000});
    sim.current(bash);
    // sys_enter_execve's first argument: the file name, in the process's user memory.
    const bpfsim::Run first = sim.run_trace("exec_tracker", {.args = {sim.user_string("/bin/ls")}});
    CHECK(first.r0() == 0);
    CHECK(first.messages() == std::vector<std::string>{"exec 4242 (parent 1) #1"});
    sim.run_trace("exec_tracker", {.args = {sim.user_string("/usr/bin/make")}});

    const auto info = sim.lookup<ExecInfo>("execs", uint32_t{4242});
    REQUIRE(info);
    CHECK(info->ppid == 1);
    CHECK(info->uid == 1000);
    CHECK(info->count == 2);
    CHECK(std::string(info->comm) == "bash");

    const auto events = sim.ringbuf<Event>("events");
    REQUIRE(events.size() == 2);
    CHECK(events[0].pid == 4242);
    CHECK(events[0].ppid == 1);
    CHECK(std::string(events[0].comm) == "bash");
    CHECK(std::string(events[0].filename) == "/bin/ls");
    CHECK(std::string(events[1].filename) == "/usr/bin/make");
    CHECK(sim.ringbuf<Event>("events").empty());   // consumed

    // A child of bash becomes current: its parent is read through task->real_parent.
    sim.current(sim.add_task({.pid = 5000, .comm = "make", .parent = bash, .uid = 1000}));
    CHECK(sim.run_trace("exec_tracker", {.args = {sim.user_string("/usr/bin/cc")}}).messages() ==
          std::vector<std::string>{"exec 5000 (parent 4242) #1"});
    CHECK(sim.lookup<ExecInfo>("execs", uint32_t{5000})->ppid == 4242);
}

TEST_CASE("the YAML scenario of the XDP filter passes", "[scenario]") {
    const auto outcomes = bpfsim::run_scenario_file(EXAMPLE_SCENARIO_DIR "/xdp_filter.yaml", {kBpf});
    INFO(bpfsim::summary(outcomes));
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].steps.size() == 3);
    CHECK(bpfsim::passed(outcomes));
}

TEST_CASE("mistakes are reported as bpfsim::Error", "[errors]") {
    bpfsim::Sim sim = xdp_filter();
    CHECK_THROWS_WITH(sim.lookup<uint64_t>("verdicts", uint16_t{0}), Catch::Contains("the key type has 2 bytes, the map's key 4"));
    CHECK_THROWS_AS(sim.run_packet("no_such_program", {}), bpfsim::Error);
    CHECK_THROWS_WITH(sim.map("no_such_map"), Catch::Contains("no map 'no_such_map' (maps: sources, blocked_ports, verdicts, .bss, .rodata)"));
}
