// Packets: input from hex, raw files and pcap files, and buffers a program can address
// through 32-bit context fields.
//
// xdp_md and __sk_buff expose data/data_end as __u32. The kernel rewrites those loads to
// fetch 64-bit pointers; we instead place packets and contexts below 4 GiB, so the
// 32-bit value a program loads is the whole pointer.
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>

#include <fstream>

namespace bpfsim::harness {

LowMemory::LowMemory(std::size_t size) : size_(size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (p == MAP_FAILED || reinterpret_cast<uintptr_t>(p) + size > (uint64_t(1) << 32)) {
        if (p != MAP_FAILED) munmap(p, size);
        // MAP_32BIT is x86-64 only; ask for a low hint instead.
        for (uintptr_t hint = 0x10000000; hint < 0xf0000000 && (p == MAP_FAILED || p == nullptr); hint += 0x10000000) {
            p = mmap(reinterpret_cast<void*>(hint), size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p != MAP_FAILED && reinterpret_cast<uintptr_t>(p) + size > (uint64_t(1) << 32)) {
                munmap(p, size);
                p = MAP_FAILED;
            }
        }
    }
    if (p == MAP_FAILED || p == nullptr)
        throw Error(ErrorCode::Internal, "cannot map memory below 4 GiB for packets and contexts");
    base_ = static_cast<uint8_t*>(p);
}

LowMemory::~LowMemory() {
    if (base_) munmap(base_, size_);
}

namespace {

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        Location loc;
        loc.file = path;
        throw Error(ErrorCode::Io, fmt::format("cannot open file: {}", std::strerror(errno)), loc);
    }
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

Result<std::vector<uint8_t>> parse_hex(std::string_view text, std::string_view what) {
    return catch_error([&]() -> std::vector<uint8_t> {
        std::vector<uint8_t> out;
        int nibble = -1;
        for (std::size_t i = 0; i < text.size(); ++i) {
            const char c = text[i];
            if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X') && nibble < 0) {
                ++i;
                continue;
            }
            int v;
            if (c >= '0' && c <= '9') v = c - '0';
            else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
            else if (std::isspace(static_cast<unsigned char>(c)) || c == ':' || c == ',' || c == '-') {
                if (nibble >= 0) throw Error(ErrorCode::Parse, fmt::format("{}: odd number of hex digits before position {}", what, i));
                continue;
            } else {
                throw Error(ErrorCode::Parse, fmt::format("{}: '{}' at position {} is not a hex digit", what, c, i));
            }
            if (nibble < 0) nibble = v;
            else {
                out.push_back(static_cast<uint8_t>(nibble << 4 | v));
                nibble = -1;
            }
        }
        if (nibble >= 0) throw Error(ErrorCode::Parse, fmt::format("{}: odd number of hex digits", what));
        return out;
    });
}

Result<std::vector<std::vector<uint8_t>>> read_pcap(const std::string& path) {
    return catch_error([&]() -> std::vector<std::vector<uint8_t>> {
        const auto d = read_file(path);
        Location loc;
        loc.file = path;
        if (d.size() < 24) throw Error(ErrorCode::Parse, "pcap file shorter than its 24-byte header", loc);
        uint32_t magic;
        std::memcpy(&magic, d.data(), 4);
        bool swap;
        if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) swap = false;
        else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) swap = true;
        else if (magic == 0x0a0d0d0a) throw Error(ErrorCode::Unsupported, "pcapng files are not supported; convert with `editcap -F pcap`", loc);
        else throw Error(ErrorCode::Parse, fmt::format("not a pcap file (magic {:#010x})", magic), loc);
        auto u32 = [&](std::size_t off) {
            uint32_t v;
            std::memcpy(&v, d.data() + off, 4);
            return swap ? __builtin_bswap32(v) : v;
        };
        const uint32_t linktype = u32(20) & 0x0fffffff;
        if (linktype != 1) throw Error(ErrorCode::Unsupported, fmt::format("pcap link type {} (only Ethernet, 1, is supported)", linktype), loc);
        std::vector<std::vector<uint8_t>> packets;
        std::size_t off = 24;
        while (off < d.size()) {
            if (d.size() - off < 16) throw Error(ErrorCode::Parse, fmt::format("packet record {} is cut short at offset {}", packets.size(), off), loc);
            const uint32_t caplen = u32(off + 8);
            off += 16;
            if (caplen > d.size() - off)
                throw Error(ErrorCode::Parse, fmt::format("packet record {} claims {} bytes, {} remain", packets.size(), caplen, d.size() - off), loc);
            packets.emplace_back(d.begin() + static_cast<std::ptrdiff_t>(off), d.begin() + static_cast<std::ptrdiff_t>(off + caplen));
            off += caplen;
        }
        return packets;
    });
}

Result<std::vector<uint8_t>> read_packet(const std::string& spec) {
    return catch_error([&]() -> std::vector<uint8_t> {
        // "hex:..." / "file:path" / "pcap:path[#N]" / a path (pcap by magic, else raw) / bare hex.
        auto load_pcap = [&](std::string path) {
            std::size_t index = 0;
            if (auto hash = path.rfind('#'); hash != std::string::npos) {
                index = std::stoul(path.substr(hash + 1));
                path = path.substr(0, hash);
            }
            auto pk = read_pcap(path);
            if (!pk) throw pk.error();
            if (index >= pk->size()) {
                Location loc;
                loc.file = path;
                throw Error(ErrorCode::NotFound, fmt::format("pcap has {} packets; #{} does not exist", pk->size(), index), loc);
            }
            return (*pk)[index];
        };
        if (spec.starts_with("hex:")) {
            auto r = parse_hex(spec.substr(4), "--packet");
            if (!r) throw r.error();
            return *r;
        }
        if (spec.starts_with("pcap:")) return load_pcap(spec.substr(5));
        if (spec.starts_with("file:")) return read_file(spec.substr(5));
        std::ifstream probe(spec.substr(0, spec.rfind('#')), std::ios::binary);
        if (probe) {
            uint32_t magic = 0;
            probe.read(reinterpret_cast<char*>(&magic), 4);
            if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d || magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) return load_pcap(spec);
            return read_file(spec);
        }
        auto r = parse_hex(spec, "--packet");
        if (!r) throw Error(ErrorCode::Usage, fmt::format("--packet '{}' is neither a file nor hex bytes: {}", spec, r.error().message()));
        return *r;
    });
}

namespace {

void put16(std::vector<uint8_t>& b, std::size_t at, uint16_t v) {
    b[at] = static_cast<uint8_t>(v >> 8);
    b[at + 1] = static_cast<uint8_t>(v);
}

// The one's-complement sum of 16-bit big-endian words (RFC 1071), not yet inverted.
uint32_t sum16(const uint8_t* p, std::size_t n, uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    return sum;
}
uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

}  // namespace

Result<std::vector<uint8_t>> build_packet(const PacketSpec& p) {
    return catch_error([&]() -> std::vector<uint8_t> {
        uint8_t src[16], dst[16];
        const bool v6 = p.src.find(':') != std::string::npos || p.dst.find(':') != std::string::npos;
        const int family = v6 ? AF_INET6 : AF_INET;
        for (const auto& [text, out] : {std::pair{&p.src, src}, std::pair{&p.dst, dst}})
            if (inet_pton(family, text->c_str(), out) != 1)
                throw Error(ErrorCode::Usage, fmt::format("packet: '{}' is not an {} address (and both addresses must be of one family)", *text,
                                                          v6 ? "IPv6" : "IPv4"));
        const uint8_t icmp = v6 ? 58 : 1;
        const std::size_t l4len = p.protocol == 17 ? 8 : p.protocol == 6 ? 20 : p.protocol == icmp ? 8 : 0;
        const std::size_t l3 = p.vlan ? 18 : 14, iphl = v6 ? 40 : 20, l4 = l3 + iphl;
        const std::size_t payload_len = l4len + p.payload.size();   // after the IP header
        if (payload_len + (v6 ? 0 : iphl) > 0xffff)
            throw Error(ErrorCode::Usage, fmt::format("packet: {} bytes after the IP header do not fit its length field", payload_len));
        if (p.vlan && *p.vlan > 0xfff) throw Error(ErrorCode::Usage, fmt::format("packet: VLAN id {} is not below 4096", *p.vlan));
        std::vector<uint8_t> b(l4 + l4len);
        std::copy(p.dst_mac.begin(), p.dst_mac.end(), b.begin());
        std::copy(p.src_mac.begin(), p.src_mac.end(), b.begin() + 6);
        if (p.vlan) {
            put16(b, 12, 0x8100);
            put16(b, 14, *p.vlan);
        }
        put16(b, l3 - 2, v6 ? 0x86dd : 0x0800);
        if (v6) {
            b[l3] = 0x60;
            put16(b, l3 + 4, static_cast<uint16_t>(payload_len));
            b[l3 + 6] = p.protocol;
            b[l3 + 7] = p.ttl;
            std::copy(src, src + 16, b.begin() + static_cast<std::ptrdiff_t>(l3 + 8));
            std::copy(dst, dst + 16, b.begin() + static_cast<std::ptrdiff_t>(l3 + 24));
        } else {
            b[l3] = 0x45;
            put16(b, l3 + 2, static_cast<uint16_t>(iphl + payload_len));
            put16(b, l3 + 6, 0x4000);   // don't fragment
            b[l3 + 8] = p.ttl;
            b[l3 + 9] = p.protocol;
            std::copy(src, src + 4, b.begin() + static_cast<std::ptrdiff_t>(l3 + 12));
            std::copy(dst, dst + 4, b.begin() + static_cast<std::ptrdiff_t>(l3 + 16));
            put16(b, l3 + 10, fold(sum16(b.data() + l3, 20)));
        }
        if (p.protocol == 17 || p.protocol == 6) {
            put16(b, l4, p.sport);
            put16(b, l4 + 2, p.dport);
        }
        if (p.protocol == 17) put16(b, l4 + 4, static_cast<uint16_t>(payload_len));
        if (p.protocol == 6) {
            b[l4 + 12] = 5 << 4;
            b[l4 + 13] = p.tcp_flags;
            put16(b, l4 + 14, 65535);   // window
        }
        if (p.protocol == icmp) b[l4] = v6 ? 128 : 8;   // echo request
        b.insert(b.end(), p.payload.begin(), p.payload.end());
        if (l4len) {
            // UDP, TCP and ICMPv6 checksums cover a pseudo-header of the addresses, the
            // protocol and the length; ICMP (v4) covers only itself.
            uint32_t sum = 0;
            if (v6 || p.protocol != 1) {
                const std::size_t alen = v6 ? 16 : 4;
                sum = sum16(src, alen, sum16(dst, alen));
                sum += p.protocol + static_cast<uint32_t>(payload_len & 0xffff) + static_cast<uint32_t>(payload_len >> 16);
            }
            uint16_t c = fold(sum16(b.data() + l4, payload_len, sum));
            if (p.protocol == 17 && c == 0) c = 0xffff;   // 0 means "no checksum" for UDP
            put16(b, l4 + (p.protocol == 17 ? 6 : p.protocol == 6 ? 16 : 2), c);
        }
        return b;
    });
}

std::optional<uint64_t> parse_integer(std::string_view text) {
    const std::string s(text);
    errno = 0;
    char* end = nullptr;
    const uint64_t v = !s.empty() && s[0] == '-' ? static_cast<uint64_t>(std::strtoll(s.c_str(), &end, 0)) : std::strtoull(s.c_str(), &end, 0);
    if (s.empty() || *end || errno) return std::nullopt;
    return v;
}

}  // namespace bpfsim::harness
