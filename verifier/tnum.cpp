// The tnum transfer functions, one per kernel/bpf/tnum.c function (Linux 6.18).
#include "verifier/tnum.hpp"

#include <bit>
#include <cstdio>

namespace bpfsim::verifier {

Tnum Tnum::range(uint64_t min, uint64_t max) {
    const uint64_t chi = min ^ max;
    const unsigned bits = 64 - std::countl_zero(chi);   // fls64
    if (bits > 63) return unknown();                    // 1 << 64 is undefined
    const uint64_t delta = (uint64_t{1} << bits) - 1;
    return {min & ~delta, delta};
}

Tnum Tnum::arshift(unsigned min_shift, unsigned insn_bitness) const {
    if (insn_bitness == 32)
        return {uint32_t(int32_t(uint32_t(value)) >> min_shift), uint32_t(int32_t(uint32_t(mask)) >> min_shift)};
    return {uint64_t(int64_t(value) >> min_shift), uint64_t(int64_t(mask) >> min_shift)};
}

bool Tnum::is_aligned(uint64_t size) const {
    if (!size) return true;
    return !((value | mask) & (size - 1));
}

bool Tnum::in(Tnum b) const {
    if (b.mask & ~mask) return false;
    return value == (b.value & ~mask);
}

bool Tnum::overlaps(Tnum b) const {
    const uint64_t known = ~mask & ~b.mask;
    return (value & known) == (b.value & known);
}

Tnum Tnum::cast(unsigned size) const {
    if (size >= 8) return *this;
    const uint64_t keep = (uint64_t{1} << (size * 8)) - 1;
    return {value & keep, mask & keep};
}

Tnum Tnum::with_subreg(Tnum sub) const { return tnum_or(clear_subreg(), sub.subreg()); }
Tnum Tnum::const_subreg(uint32_t v) const { return with_subreg(constant(v)); }

std::string Tnum::str() const {
    char buf[48];
    // The kernel's %#llx prints 0 as 0x0 (unlike glibc), so spell the prefix out.
    std::snprintf(buf, sizeof buf, "(0x%llx; 0x%llx)", (unsigned long long)value, (unsigned long long)mask);
    return buf;
}

Tnum tnum_add(Tnum a, Tnum b) {
    const uint64_t sm = a.mask + b.mask;
    const uint64_t sv = a.value + b.value;
    const uint64_t sigma = sm + sv;
    const uint64_t chi = sigma ^ sv;
    const uint64_t mu = chi | a.mask | b.mask;
    return {sv & ~mu, mu};
}

Tnum tnum_sub(Tnum a, Tnum b) {
    const uint64_t dv = a.value - b.value;
    const uint64_t alpha = dv + a.mask;
    const uint64_t beta = dv - b.mask;
    const uint64_t chi = alpha ^ beta;
    const uint64_t mu = chi | a.mask | b.mask;
    return {dv & ~mu, mu};
}

Tnum tnum_neg(Tnum a) { return tnum_sub(Tnum::constant(0), a); }

Tnum tnum_and(Tnum a, Tnum b) {
    const uint64_t alpha = a.value | a.mask;
    const uint64_t beta = b.value | b.mask;
    const uint64_t v = a.value & b.value;
    return {v, alpha & beta & ~v};
}

Tnum tnum_or(Tnum a, Tnum b) {
    const uint64_t v = a.value | b.value;
    const uint64_t mu = a.mask | b.mask;
    return {v, mu & ~v};
}

Tnum tnum_xor(Tnum a, Tnum b) {
    const uint64_t v = a.value ^ b.value;
    const uint64_t mu = a.mask | b.mask;
    return {v & ~mu, mu};
}

Tnum tnum_mul(Tnum a, Tnum b) {
    Tnum acc = Tnum::constant(0);
    while (a.value || a.mask) {
        if (a.value & 1)                 // this trit of a is a certain 1
            acc = tnum_add(acc, b);
        else if (a.mask & 1)             // uncertain: either acc (bit 0) or acc + b (bit 1)
            acc = tnum_union(acc, tnum_add(acc, b));
        a = a.rshift(1);
        b = b.lshift(1);
    }
    return acc;
}

Tnum tnum_intersect(Tnum a, Tnum b) {
    const uint64_t v = a.value | b.value;
    const uint64_t mu = a.mask & b.mask;
    return {v & ~mu, mu};
}

Tnum tnum_union(Tnum a, Tnum b) {
    const uint64_t v = a.value & b.value;
    const uint64_t mu = (a.value ^ b.value) | a.mask | b.mask;   // bits where a and b disagree too
    return {v & ~mu, mu};
}

}  // namespace bpfsim::verifier
