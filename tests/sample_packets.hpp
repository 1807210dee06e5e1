// Sample packets for the differential tests (kernel_diff: bpfsim vs the kernel; engines_diff:
// interpreter vs JIT): a deterministic mix every packet program meets in practice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bpfsim::testing {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, std::size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

inline uint16_t ip_checksum(const uint8_t* p, std::size_t n) {
    uint32_t s = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

// A deterministic mix of packets: IPv4 TCP/UDP/ICMP (with and without VLAN), IPv6,
// ARP, a fragment, a short frame, DNS, different sources.
inline std::vector<Bytes> packets() {
    std::vector<Bytes> out;
    auto eth = [](uint16_t proto, bool vlan) {
        Bytes b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
        if (vlan) {
            b.push_back(0x81);
            b.push_back(0x00);
            b.push_back(0x00);
            b.push_back(0x64);
        }
        b.push_back(static_cast<uint8_t>(proto >> 8));
        b.push_back(static_cast<uint8_t>(proto));
        return b;
    };
    auto ipv4 = [&](uint8_t proto, uint32_t src, uint16_t sport, uint16_t dport, std::size_t payload, bool vlan, uint16_t frag, uint8_t ttl) {
        Bytes b = eth(0x0800, vlan);
        const std::size_t ip = b.size();
        const std::size_t l4len = proto == 6 ? 20 : 8;
        b.resize(ip + 20 + l4len + payload, 0);
        b[ip] = 0x45;
        put16(b, ip + 2, static_cast<uint16_t>(20 + l4len + payload));
        put16(b, ip + 4, 0x1234);
        put16(b, ip + 6, frag);
        b[ip + 8] = ttl;
        b[ip + 9] = proto;
        b[ip + 12] = static_cast<uint8_t>(src >> 24);
        b[ip + 13] = static_cast<uint8_t>(src >> 16);
        b[ip + 14] = static_cast<uint8_t>(src >> 8);
        b[ip + 15] = static_cast<uint8_t>(src);
        b[ip + 16] = 10;
        b[ip + 17] = 0;
        b[ip + 18] = 0;
        b[ip + 19] = 2;
        put16(b, ip + 10, ip_checksum(&b[ip], 20));
        const std::size_t l4 = ip + 20;
        if (proto == 6 || proto == 17) {
            put16(b, l4, sport);
            put16(b, l4 + 2, dport);
        }
        if (proto == 17) {
            put16(b, l4 + 4, static_cast<uint16_t>(8 + payload));
            put16(b, l4 + 6, 0x1111);
        }
        if (proto == 6) {
            b[l4 + 12] = 0x50;
            b[l4 + 13] = 0x12;
        }
        if (proto == 1) b[l4] = 8;
        for (std::size_t i = 0; i < payload; ++i) b[l4 + l4len + i] = static_cast<uint8_t>(i * 7 + 3);
        return b;
    };
    out.push_back(ipv4(6, 0x0a000001, 40000, 80, 32, false, 0x4000, 64));
    out.push_back(ipv4(17, 0x0a000001, 40001, 53, 24, false, 0, 64));
    out.push_back(ipv4(17, 0x0a000002, 5000, 4789, 64, false, 0, 2));
    out.push_back(ipv4(1, 0x0a000003, 0, 0, 16, false, 0, 1));
    out.push_back(ipv4(6, 0x0a000001, 40000, 443, 100, true, 0, 64));
    out.push_back(ipv4(17, 0xc0a80101, 123, 123, 48, false, 0x2001, 64));
    out.push_back(ipv4(6, 0x0a000001, 40000, 80, 0, false, 0, 64));
    out.push_back(ipv4(6, 0x0a000001, 40000, 80, 0, false, 0, 64));
    out.push_back(ipv4(6, 0x0a000001, 40000, 80, 0, false, 0, 64));
    {
        Bytes b = eth(0x86dd, false);
        const std::size_t ip = b.size();
        b.resize(ip + 40 + 8 + 16, 0);
        b[ip] = 0x60;
        put16(b, ip + 4, 24);
        b[ip + 6] = 17;
        b[ip + 7] = 64;
        b[ip + 8] = 0xfe;
        b[ip + 9] = 0x80;
        b[ip + 23] = 1;
        b[ip + 24] = 0xfe;
        b[ip + 25] = 0x80;
        b[ip + 39] = 2;
        put16(b, ip + 40, 1000);
        put16(b, ip + 42, 2000);
        put16(b, ip + 44, 24);
        out.push_back(b);
    }
    {
        Bytes b = eth(0x0806, false);
        b.resize(b.size() + 28, 0x11);
        out.push_back(b);
    }
    out.push_back(Bytes{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45});   // truncated IPv4
    return out;
}

}  // namespace bpfsim::testing
