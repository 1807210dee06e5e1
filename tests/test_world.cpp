// Trace formatting, packet input and program-type tables.
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

std::string printk(std::string_view fmt, std::vector<uint64_t> args) {
    // Strings and addresses resolve through these fakes: address 0x1000 holds "bash",
    // 0x2000 holds 10.1.2.3 and fe80::1; anything else is unreadable.
    static const uint8_t ip4[4] = {10, 1, 2, 3};
    static const uint8_t ip6[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    auto r = format_printk(
        fmt, args, [](uint64_t a) { return a == 0x1000 ? std::string("bash") : std::string(); },
        [](uint64_t a, void* out, std::size_t n) {
            if (a == 0x2000 && n == 4) std::memcpy(out, ip4, 4);
            else if (a == 0x2000 && n == 16) std::memcpy(out, ip6, 16);
            else return false;
            return true;
        });
    if (!r) return "ERROR: " + r.error().message();
    return *r;
}

}  // namespace

TEST_CASE("printk integer conversions follow C and the kernel's argument sizes", "[world][printk]") {
    CHECK(printk("exec: %d %s\n", {12345, 0x1000}) == "exec: 12345 bash\n");
    CHECK(printk("%d", {0xffffffffull}) == "-1");                  // %d takes an int
    CHECK(printk("%ld", {0xffffffffull}) == "4294967295");
    CHECK(printk("%lld", {uint64_t(-5)}) == "-5");
    CHECK(printk("%u", {uint64_t(-1)}) == "4294967295");
    CHECK(printk("%llu", {uint64_t(-1)}) == "18446744073709551615");
    CHECK(printk("%x %X", {255, 255}) == "ff FF");
    CHECK(printk("%llx", {0x1122334455667788ull}) == "1122334455667788");
    CHECK(printk("%i", {7}) == "7");
    CHECK(printk("%5d|%-5d|%05d", {42, 42, 42}) == "   42|42   |00042");
    CHECK(printk("|%+d|% d|%+05d|%-+5d|", {42, 42, 3, uint64_t(-3)}) == "|+42| 42|+0003|-3   |");
    CHECK(printk("|%+u|% u|%+x|%+llx|", {42, 42, 255, 255}) == "|42|42|ff|ff|");   // signs only for %d/%i
    CHECK(printk("|%-05d|%05d|%08x|%010d|", {42, uint64_t(-42), 0xbeef, uint64_t(-3)}) == "|42   |-0042|0000beef|-000000003|");
    CHECK(printk("|%5s|%-5s|%05s|%5c|", {0x1000, 0x1000, 0x1000, 'c'}) == "| bash|bash | bash|    c|");
    CHECK(printk("%c%c", {'o', 'k'}) == "ok");
    CHECK(printk("100%%", {}) == "100%");
}

TEST_CASE("printk pointer conversions", "[world][printk]") {
    CHECK(printk("%pI4", {0x2000}) == "10.1.2.3");
    CHECK(printk("%pi4", {0x2000}) == "010.001.002.003");
    CHECK(printk("%pI6", {0x2000}) == "fe80:0000:0000:0000:0000:0000:0000:0001");
    CHECK(printk("%pi6", {0x2000}) == "fe800000000000000000000000000001");
    CHECK(printk("%pI6c|%pI4x|", {0x2000, 0x2000}) == "fe80:0000:0000:0000:0000:0000:0000:0001|10.1.2.3|");   // letters after are skipped
    CHECK(printk("|%20pI4|%-20pi6|", {0x2000, 0x2000}) == "|10.1.2.3|fe800000000000000000000000000001|");       // no width
    CHECK(printk("|%pI4|%pi4|%pI6|", {0, 0, 0}) == "|0.0.0.0|000.000.000.000|0000:0000:0000:0000:0000:0000:0000:0000|");
    CHECK(printk("%p", {0xdead}) == "000000000000dead");
    CHECK(printk("%pK", {0xdead}) == "000000000000dead");   // as %p with kptr_restrict 0
    CHECK(printk("|%20px|%5px|%-20px|", {0xdead, 0xdead, 0xdead}) == "|                dead| dead|dead                |");
    CHECK(printk("|%020px|%-px|%pxab|", {0xdead, 0xdead, 0xdead}) == "|0000000000000000dead|dead            |000000000000dead|");
    CHECK(printk("|%pS|%20ps|%-10pB|", {0xdead, 0xdead, 0xdead}) == "|0xdead|              0xdead|0xdead|");
    CHECK(printk("%pks", {0x1000}) == "bash");
    CHECK(printk("|%5pks|%s|", {0x1000, 0x3000}) == "|bash||");
}

TEST_CASE("printk rejects what bpf_trace_printk rejects", "[world][printk]") {
    CHECK(printk("%f", {1}).starts_with("ERROR: format string: unsupported conversion '%f'"));
    CHECK(printk("%d %d", {1}).starts_with("ERROR: format string: more conversions"));
    CHECK(printk("%lq", {1}).starts_with("ERROR: format string: unsupported conversion '%lq'"));
    CHECK(printk("\x01", {}).starts_with("ERROR: format string: non-printable"));
    CHECK(printk("%", {1}).starts_with("ERROR: format string: conversion cut short"));
    CHECK(printk("%#x", {255}).starts_with("ERROR: format string: unsupported conversion '%#'"));
    CHECK(printk("%.3d", {5}).starts_with("ERROR: format string: unsupported conversion '%.'"));
    CHECK(printk("%pa", {1}).starts_with("ERROR: format string: unsupported conversion '%pa'"));
    CHECK(printk("%pI5", {0x2000}).starts_with("ERROR: format string: unsupported conversion '%pI'"));
    CHECK(printk("%sx", {0x1000}).starts_with("ERROR: format string: '%s' followed by 'x'"));
    CHECK(printk("%pksz", {0x1000}).starts_with("ERROR: format string: '%pks' followed by 'z'"));
    CHECK(printk("%hd %llld %5%", {1, 1, 1}).starts_with("ERROR: format string: unsupported conversion '%h'"));
}

TEST_CASE("printk arguments share the kernel's 512-byte buffer", "[world][printk]") {
    static const std::string big(700, 'a');
    auto fmt_big = [&](std::string_view f, std::vector<uint64_t> args) {
        auto r = format_printk(
            f, args, [&](uint64_t a) { return a == 0x1000 ? big : std::string(); }, [](uint64_t, void*, std::size_t) { return false; });
        return r ? *r : "ERROR: " + r.error().message();
    };
    CHECK(fmt_big("%s|", {0x1000}) == std::string(511, 'a') + "|");          // the string and its NUL fill it
    CHECK(fmt_big("%d %s|", {1, 0x1000}) == "1 " + std::string(507, 'a') + "|");
    CHECK(fmt_big("%c%s|", {'x', 0x1000}) == "x" + std::string(510, 'a') + "|");
    CHECK(fmt_big("%s%d", {0x1000, 1}).starts_with("ERROR: format string: arguments overflow"));   // -ENOSPC
}

TEST_CASE("trace_pipe flags per program type, as Linux 6.18 prints them", "[world][printk]") {
    // Measured on this machine's kernel: bpftool prog run of packet programs, and tracepoint,
    // raw_tp and tp_btf programs attached to sched_process_exec (see trace_flags_for).
    CHECK(trace_flags_for(ProgType::Xdp, "xdp") == "b..11");
    CHECK(trace_flags_for(ProgType::SocketFilter, "socket") == "b..11");
    CHECK(trace_flags_for(ProgType::SchedCls, "tc") == "b..11");
    CHECK(trace_flags_for(ProgType::CgroupSkb, "cgroup_skb/ingress") == "b..11");
    CHECK(trace_flags_for(ProgType::Tracepoint, "tracepoint/syscalls/sys_enter_execve") == "...21");
    CHECK(trace_flags_for(ProgType::RawTracepoint, "raw_tp/sched_process_exec") == "...2.");
    CHECK(trace_flags_for(ProgType::Tracing, "tp_btf/sched_process_exec") == "...2.");
    CHECK(trace_flags_for(ProgType::Kprobe, "kprobe/do_unlinkat") == "d..31");   // not measurable here
}

TEST_CASE("trace_pipe lines look like the kernel's", "[world][printk]") {
    TraceEvent e;
    e.comm = "bash";
    e.pid = 12345;
    e.cpu = 1;
    e.ns = 5'123'456'789;
    e.message = "exec: 12345 bash\n";
    // Every event gets a newline after the message's own: "exec: 12345 bash\n" and an empty line.
    CHECK(trace_pipe_line(e) == "            bash-12345   [001] d..31     5.123456: bpf_trace_printk: exec: 12345 bash\n\n");
    e.message = "no newline";
    CHECK(trace_pipe_line(e) == "            bash-12345   [001] d..31     5.123456: bpf_trace_printk: no newline\n");
    e.message = std::string("z |\0|after", 10);   // a %c of 0 ends the event's string
    CHECK(trace_pipe_line(e) == "            bash-12345   [001] d..31     5.123456: bpf_trace_printk: z |\n");
}

TEST_CASE("hex input", "[world][packet]") {
    CHECK(parse_hex("de ad be ef", "x").value() == std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef});
    CHECK(parse_hex("0xdeadbeef", "x").value() == std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef});
    CHECK(parse_hex("de:ad", "x").value() == std::vector<uint8_t>{0xde, 0xad});
    auto odd = parse_hex("abc", "--packet");
    REQUIRE_FALSE(odd.ok());
    CHECK(odd.error().message() == "--packet: odd number of hex digits");
    auto bad = parse_hex("zz", "--packet");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message() == "--packet: 'z' at position 0 is not a hex digit");
}

TEST_CASE("pcap files: both byte orders, several packets, clear errors", "[world][packet]") {
    const std::string path = "test_world_pcap.pcap";
    auto write = [&](bool swap, std::vector<std::vector<uint8_t>> pkts, std::size_t cut = 0) {
        std::vector<uint8_t> b;
        auto u32 = [&](uint32_t v) {
            if (swap) v = __builtin_bswap32(v);
            for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
        };
        auto u16 = [&](uint16_t v) {
            if (swap) v = __builtin_bswap16(v);
            b.push_back(static_cast<uint8_t>(v));
            b.push_back(static_cast<uint8_t>(v >> 8));
        };
        u32(0xa1b2c3d4);
        u16(2);
        u16(4);
        u32(0);
        u32(0);
        u32(65535);
        u32(1);
        for (const auto& p : pkts) {
            u32(1);
            u32(2);
            u32(static_cast<uint32_t>(p.size()));
            u32(static_cast<uint32_t>(p.size()));
            b.insert(b.end(), p.begin(), p.end());
        }
        b.resize(b.size() - cut);
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    };
    for (bool swap : {false, true}) {
        write(swap, {{1, 2, 3}, {4, 5}});
        auto r = read_pcap(path);
        REQUIRE(r.ok());
        REQUIRE(r->size() == 2);
        CHECK((*r)[1] == std::vector<uint8_t>{4, 5});
        CHECK(read_packet("pcap:" + path + "#1").value() == std::vector<uint8_t>{4, 5});
        CHECK(read_packet(path).value() == std::vector<uint8_t>{1, 2, 3});
    }
    write(false, {{1, 2, 3}}, 1);
    auto cut = read_pcap(path);
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.error().describe() == path + ": packet record 0 claims 3 bytes, 2 remain");
    auto missing = read_packet("pcap:" + path + "#5");
    REQUIRE_FALSE(missing.ok());
    std::remove(path.c_str());
}

TEST_CASE("section names select program types as libbpf and older loaders do", "[world][types]") {
    CHECK(prog_type_for_section("xdp") == ProgType::Xdp);
    CHECK(prog_type_for_section("xdp.frags") == ProgType::Xdp);
    CHECK(prog_type_for_section("xdp_redirect_map") == ProgType::Xdp);   // kernel samples
    CHECK(prog_type_for_section("tc") == ProgType::SchedCls);
    CHECK(prog_type_for_section("tc/ingress") == ProgType::SchedCls);
    CHECK(prog_type_for_section("classifier") == ProgType::SchedCls);
    CHECK(prog_type_for_section("socket") == ProgType::SocketFilter);
    CHECK(prog_type_for_section("socket1") == ProgType::SocketFilter);
    CHECK(prog_type_for_section("tracepoint/syscalls/sys_enter_execve") == ProgType::Tracepoint);
    CHECK(prog_type_for_section("tp/sched/sched_switch") == ProgType::Tracepoint);
    CHECK(prog_type_for_section("raw_tp/sys_enter") == ProgType::RawTracepoint);
    CHECK(prog_type_for_section("tp_btf/sched_switch") == ProgType::Tracing);
    CHECK(prog_type_for_section("fentry/do_unlinkat") == ProgType::Tracing);
    CHECK(prog_type_for_section("kprobe/do_sys_open") == ProgType::Kprobe);
    CHECK(prog_type_for_section("kretprobe/do_sys_open") == ProgType::Kprobe);
    CHECK(prog_type_for_section("uprobe//bin/bash:readline") == ProgType::Kprobe);
    CHECK(prog_type_for_section("cgroup_skb/ingress") == ProgType::CgroupSkb);
    CHECK(prog_type_for_section("cgroup/skb") == ProgType::CgroupSkb);
    CHECK(prog_type_for_section("cgroup/connect4") == ProgType::CgroupSockAddr);
    CHECK(prog_type_for_section("cgroup/sock_create") == ProgType::CgroupSock);
    CHECK(prog_type_for_section("sockops") == ProgType::SockOps);
    CHECK(prog_type_for_section("sk_skb/stream_verdict") == ProgType::SkSkb);
    CHECK(prog_type_for_section("flow_dissector") == ProgType::FlowDissector);
    CHECK(prog_type_for_section("perf_event") == ProgType::PerfEvent);
    CHECK(prog_type_for_section("syscall") == ProgType::Syscall);
    CHECK(prog_type_for_section("from-netdev") == ProgType::SchedCls);   // cilium
    CHECK(prog_type_for_section("2/10") == ProgType::Unspec);            // decided per object
    CHECK(prog_type_for_section("license") == ProgType::Unspec);
    CHECK(to_string(ProgType::SchedCls) == "sched_cls");
    CHECK(to_string(MapType::LruPercpuHash) == "lru_percpu_hash");
    CHECK(ctx_kind(ProgType::Xdp) == CtxKind::XdpMd);
}

TEST_CASE("return values are described per program type", "[world][types]") {
    CHECK(describe_return(ProgType::Xdp, 2) == "XDP_PASS");
    CHECK(describe_return(ProgType::Xdp, 9) == "unknown XDP action 9 (the kernel drops the packet)");
    CHECK(describe_return(ProgType::SchedCls, 2) == "TC_ACT_SHOT");
    CHECK(describe_return(ProgType::SchedCls, 0xffffffff) == "TC_ACT_UNSPEC");
    CHECK(describe_return(ProgType::SocketFilter, 0) == "drop");
    CHECK(describe_return(ProgType::SocketFilter, 64) == "keep 64 bytes");
    CHECK(describe_return(ProgType::CgroupSkb, 1) == "allow");
}
