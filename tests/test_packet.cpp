// Packets built from header fields (harness::build_packet): layout, lengths and checksums
// that verify, for IPv4 and IPv6, UDP, TCP and ICMP; and scenario steps that use them.
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

using namespace bpfsim;
using namespace bpfsim::harness;

namespace {
uint16_t be16(const std::vector<uint8_t>& b, std::size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

// The one's-complement sum of a range with an initial sum: a valid checksum makes it 0xffff.
uint32_t ones_sum(const uint8_t* p, std::size_t n, uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

// Whether the transport checksum of a built packet verifies (pseudo-header included).
bool l4_checksum_ok(const std::vector<uint8_t>& b, std::size_t l3, bool v6, uint8_t proto) {
    const std::size_t l4 = l3 + (v6 ? 40 : 20), len = b.size() - l4;
    uint32_t sum = 0;
    if (v6 || proto != 1) {
        sum = ones_sum(b.data() + l3 + (v6 ? 8 : 12), v6 ? 32 : 8);
        sum += proto + static_cast<uint32_t>(len);
    }
    return ones_sum(b.data() + l4, len, sum) == 0xffff;
}
}  // namespace

TEST_CASE("build_packet: IPv4 UDP, TCP and ICMP with valid checksums", "[packet]") {
    for (uint8_t proto : {17, 6, 1}) {
        PacketSpec s;
        s.src = "192.168.1.10";
        s.dst = "10.0.0.53";
        s.protocol = proto;
        s.sport = 5353;
        s.dport = 53;
        s.payload = {1, 2, 3};   // odd length: the checksum pads it
        auto b = build_packet(s);
        REQUIRE(b);
        INFO("protocol " << int(proto));
        const std::size_t l4len = proto == 6 ? 20 : 8;
        REQUIRE(b->size() == 14 + 20 + l4len + 3);
        CHECK(be16(*b, 12) == 0x0800);
        CHECK((*b)[14] == 0x45);
        CHECK(be16(*b, 16) == 20 + l4len + 3);   // total length
        CHECK((*b)[23] == proto);
        CHECK(ones_sum(b->data() + 14, 20) == 0xffff);   // header checksum
        CHECK((*b)[26] == 192);
        CHECK((*b)[33] == 53);
        CHECK(l4_checksum_ok(*b, 14, false, proto));
        if (proto != 1) {
            CHECK(be16(*b, 34) == 5353);
            CHECK(be16(*b, 36) == 53);
        } else {
            CHECK((*b)[34] == 8);   // echo request
        }
    }
}

TEST_CASE("build_packet: IPv6 with a VLAN tag, UDP, TCP and ICMPv6", "[packet]") {
    for (uint8_t proto : {17, 6, 58}) {
        PacketSpec s;
        s.src = "fd00::1";
        s.dst = "2001:db8::53";
        s.protocol = proto;
        s.vlan = 42;
        s.ttl = 7;
        s.tcp_flags = 0x12;   // SYN+ACK
        auto b = build_packet(s);
        REQUIRE(b);
        INFO("protocol " << int(proto));
        CHECK(be16(*b, 12) == 0x8100);
        CHECK(be16(*b, 14) == 42);
        CHECK(be16(*b, 16) == 0x86dd);
        const std::size_t l3 = 18, l4len = proto == 6 ? 20 : 8;
        CHECK((*b)[l3] >> 4 == 6);
        CHECK(be16(*b, l3 + 4) == l4len);   // payload length
        CHECK((*b)[l3 + 6] == proto);
        CHECK((*b)[l3 + 7] == 7);
        CHECK((*b)[l3 + 8] == 0xfd);
        CHECK((*b)[l3 + 39] == 0x53);
        CHECK(l4_checksum_ok(*b, l3, true, proto));
        if (proto == 6) CHECK((*b)[l3 + 40 + 13] == 0x12);
        if (proto == 58) CHECK((*b)[l3 + 40] == 128);
    }
}

TEST_CASE("build_packet: bad addresses and sizes are errors", "[packet]") {
    PacketSpec s;
    s.src = "10.0.0.256";
    auto e = build_packet(s);
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error().message(), Catch::Contains("'10.0.0.256' is not an IPv4 address"));
    s.src = "fd00::1";   // mixed families
    CHECK_FALSE(build_packet(s));
    s.src = "10.0.0.1";
    s.payload.assign(70000, 0);
    CHECK_FALSE(build_packet(s));
    s.payload.clear();
    s.vlan = 4096;
    CHECK_FALSE(build_packet(s));
}

#include "harness/scenario.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace {
namespace fs = std::filesystem;

void put_le32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

// A classic pcap file (little-endian, Ethernet) of these packets.
std::string pcap_of(const std::vector<std::vector<uint8_t>>& packets) {
    std::string s;
    put_le32(s, 0xa1b2c3d4);
    put_le32(s, 0x00040002);   // version 2.4
    put_le32(s, 0);
    put_le32(s, 0);
    put_le32(s, 65535);
    put_le32(s, 1);            // LINKTYPE_ETHERNET
    for (const auto& p : packets) {
        put_le32(s, 0);
        put_le32(s, 0);
        put_le32(s, static_cast<uint32_t>(p.size()));
        put_le32(s, static_cast<uint32_t>(p.size()));
        s.append(p.begin(), p.end());
    }
    return s;
}
}  // namespace

TEST_CASE("scenario packets from header fields, pcap files and raw files", "[packet][scenario]") {
    const fs::path dir = fs::temp_directory_path() / ("bpfsim-test-packet-" + std::to_string(getpid()));
    fs::create_directories(dir);
    PacketSpec udp53;
    udp53.protocol = 17;
    udp53.dport = 53;
    PacketSpec icmp;
    icmp.protocol = 1;
    std::ofstream(dir / "two.pcap", std::ios::binary) << pcap_of({*build_packet(icmp), *build_packet(udp53)});
    std::ofstream(dir / "runt.bin", std::ios::binary) << std::string("\xff\xff\xff\xff\xff\xff\x02\x00", 8);
    std::ofstream(dir / "s.yaml") << R"(object: xdp_counter.o
steps:
  - name: tcp from fields
    run: xdp_count
    packet: {src: 10.0.0.1, dst: 10.0.0.2, proto: tcp, sport: 1234, dport: 80, flags: SA, payload_text: "hi"}
    expect:
      return: XDP_PASS
      trace: ["first ipv4 packet: proto 6 len 56"]
  - name: the second packet of a pcap file, UDP to the blocked port
    run: xdp_count
    packet: {pcap: two.pcap, index: 1}
    expect:
      return: XDP_DROP
  - name: the first packet of a pcap file
    run: xdp_count
    packet: {pcap: two.pcap}
    expect:
      return: XDP_PASS
  - name: IPv6 behind a VLAN tag
    run: xdp_count
    packet: {src: "fd00::1", dst: "fd00::2", vlan: 7, proto: udp}
    expect:
      return: XDP_PASS
  - name: raw bytes from a file
    run: xdp_count
    packet: {file: runt.bin}
    expect:
      return: XDP_DROP
)";
    auto s = load_scenario(dir / "s.yaml", {BPFSIM_CORPUS_DIR});
    if (!s) FAIL(s.error().describe());
    REQUIRE(s->steps.size() == 5);
    CHECK(s->steps[0].packet->size() == 56);
    CHECK(s->steps[3].packet->size() == 18 + 40 + 8);
    const auto out = run_scenario(*s);
    REQUIRE_FALSE(out.error);
    for (const auto& st : out.steps) {
        INFO(st.name);
        for (const auto& f : st.failures) INFO(f);
        CHECK(st.passed);
    }

    struct Bad {
        std::string packet;
        std::string message;
    };
    const std::vector<Bad> bad = {
        {"{pcap: two.pcap, index: 2}", "has 2 packets; index 2 does not exist"},
        {"{pcap: nope.pcap}", "nope.pcap"},
        {"{src: 10.0.0.300}", "'10.0.0.300' is not an IPv4 address"},
        {"{proto: sctp}", "proto 'sctp': write udp, tcp, icmp, icmp6, none or a number below 256"},
        {"{dport: 70000}", "dport 70000 is larger than 65535"},
        {"{flags: SX}", "flags 'SX': a number or letters of FSRPAU"},
        {"{src_mac: 0102}", "src_mac: six bytes"},
        {"{color: red}", "unknown key 'color'"},
        {"{file: missing.bin}", "cannot read"},
    };
    for (const auto& b : bad) {
        std::ofstream(dir / "bad.yaml") << "object: xdp_counter.o\nsteps:\n  - run: xdp_count\n    packet: " << b.packet << "\n";
        auto e = load_scenario(dir / "bad.yaml", {BPFSIM_CORPUS_DIR});
        INFO(b.packet);
        REQUIRE_FALSE(e);
        CHECK_THAT(e.error().describe(), Catch::Contains((dir / "bad.yaml").string() + ":4") && Catch::Contains(b.message));
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}
