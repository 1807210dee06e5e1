// Benchmark kernels, written once and built twice: with clang -O2 -target bpf
// (corpus/, run by bpfsim) and natively (bench/, the baseline).
//
// Each kernel takes the input memory the harness passes in r1/r2, as bpf_conformance
// does: (pointer, length). Inputs are seeded from that memory so that no compiler can
// fold a kernel into a constant.
#ifdef __bpf__
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stdint.h>
#endif

#ifdef __bpf__
#define KERNEL(name) __attribute__((section("bench/" #name), used)) uint64_t name
#else
#define KERNEL(name) uint64_t bench_native_##name
#endif

#define XORSHIFT_ITERS 10000000u
#define FNV_REPEAT 64u
#define PACKETS 64u
#define PACKET_SIZE 128u
#define PARSE_REPEAT 64u

// (1) xorshift64, 10M iterations, with a running sum. mem: 8-byte seed.
KERNEL(xorshift)(const uint64_t *mem, uint64_t len)
{
    uint64_t x = (len >= 8 ? mem[0] : 88172645463325252ull) | 1;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < XORSHIFT_ITERS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x;
    }
    return sum;
}

// (2) four independent xorshift64 lanes, 10M/4 iterations each. mem: 8-byte seed.
KERNEL(xorshift4)(const uint64_t *mem, uint64_t len)
{
    uint64_t s = (len >= 8 ? mem[0] : 88172645463325252ull) | 1;
    uint64_t a = s, b = s * 3, c = s * 5, d = s * 7;
    for (uint32_t i = 0; i < XORSHIFT_ITERS / 4; i++) {
        a ^= a << 13; a ^= a >> 7; a ^= a << 17;
        b ^= b << 13; b ^= b >> 7; b ^= b << 17;
        c ^= c << 13; c ^= c >> 7; c ^= c << 17;
        d ^= d << 13; d ^= d >> 7; d ^= d << 17;
    }
    return a ^ b ^ c ^ d;
}

// (3) FNV-1a 64 over a 1 KiB buffer, repeated. mem: the 1024-byte buffer.
KERNEL(fnv1a)(const uint8_t *mem, uint64_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    if (len < 1024)
        return 0;
    for (uint32_t r = 0; r < FNV_REPEAT; r++) {
        for (uint32_t i = 0; i < 1024; i++) {
            h ^= mem[i];
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

// (4) a branchy parser over 64 mixed 128-byte packets: Ethernet, optional VLAN tags,
// IPv4 (with options) or IPv6, then TCP, UDP or ICMP. Returns a digest of what it saw.
// mem: 64 packets of 128 bytes.
KERNEL(parser)(const uint8_t *mem, uint64_t len)
{
    uint64_t tcp = 0, udp = 0, icmp = 0, other = 0, bad = 0, ports = 0, flags = 0;
    if (len < PACKETS * PACKET_SIZE)
        return 0;
    for (uint32_t r = 0; r < PARSE_REPEAT; r++) {
        for (uint32_t n = 0; n < PACKETS; n++) {
            const uint8_t *p = mem + n * PACKET_SIZE;
            uint32_t off = 12;
            uint16_t proto = be16(p + off);
            off += 2;
            for (int v = 0; v < 2 && (proto == 0x8100 || proto == 0x88a8); v++) {
                proto = be16(p + off + 2);
                off += 4;
            }
            uint8_t l4 = 0;
            if (proto == 0x0800) {
                uint8_t vihl = p[off];
                if ((vihl >> 4) != 4 || (vihl & 0xf) < 5) { bad++; continue; }
                uint32_t ihl = (uint32_t)(vihl & 0xf) * 4;
                if (off + ihl + 8 > PACKET_SIZE) { bad++; continue; }
                l4 = p[off + 9];
                if (be16(p + off + 6) & 0x3fff) { other++; continue; }   /* fragment */
                off += ihl;
            } else if (proto == 0x86dd) {
                if ((p[off] >> 4) != 6) { bad++; continue; }
                l4 = p[off + 6];
                off += 40;
            } else {
                other++;
                continue;
            }
            if (l4 == 6) {
                tcp++;
                ports += be16(p + off) ^ be16(p + off + 2);
                flags += p[off + 13] & 0x3f;
            } else if (l4 == 17) {
                udp++;
                ports += be16(p + off + 2);
            } else if (l4 == 1 || l4 == 58) {
                icmp++;
                flags += p[off];
            } else {
                other++;
            }
        }
    }
    return (tcp << 48) ^ (udp << 32) ^ (icmp << 16) ^ other ^ (bad << 56) ^ (ports << 8) ^ flags;
}
