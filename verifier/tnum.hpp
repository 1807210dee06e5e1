// bpfsim::verifier::Tnum — the kernel verifier's "tracked number" (kernel/bpf/tnum.c, Linux 6.18).
//
// A tnum describes a set of 64-bit values bit by bit: a bit set in `mask` is unknown, otherwise
// the bit equals the same bit of `value` (invariant: value & mask == 0). Every operation here
// is a sound over-approximation of the concrete operation on all members, and each one mirrors
// the kernel function named beside it, so register states print and compare as the kernel's do.
#pragma once

#include <cstdint>
#include <string>

namespace bpfsim::verifier {

struct Tnum {
    uint64_t value = 0;
    uint64_t mask = 0;

    bool operator==(const Tnum&) const = default;

    static constexpr Tnum constant(uint64_t v) { return {v, 0}; }                    // tnum_const
    static constexpr Tnum unknown() { return {0, ~uint64_t{0}}; }                    // tnum_unknown
    static Tnum range(uint64_t min, uint64_t max);                                   // tnum_range

    Tnum lshift(unsigned shift) const { return {value << shift, mask << shift}; }    // tnum_lshift
    Tnum rshift(unsigned shift) const { return {value >> shift, mask >> shift}; }    // tnum_rshift
    Tnum arshift(unsigned min_shift, unsigned insn_bitness) const;                   // tnum_arshift

    bool is_const() const { return mask == 0; }                                      // tnum_is_const
    bool is_unknown() const { return mask == ~uint64_t{0}; }                         // tnum_is_unknown
    bool equals_const(uint64_t b) const { return is_const() && value == b; }         // tnum_equals_const
    bool is_aligned(uint64_t size) const;                                            // tnum_is_aligned
    // True if every member of `b` is a member of this tnum (tnum_in(this, b)).
    bool in(Tnum b) const;                                                           // tnum_in
    bool contains(uint64_t v) const { return ((v ^ value) & ~mask) == 0; }           // membership
    bool overlaps(Tnum b) const;                                                     // tnum_overlap

    Tnum cast(unsigned size) const;                // tnum_cast: keep the low `size` bytes
    Tnum subreg() const { return cast(4); }        // tnum_subreg: low 32 bits
    Tnum clear_subreg() const { return rshift(32).lshift(32); }   // tnum_clear_subreg: high 32 bits
    Tnum with_subreg(Tnum sub) const;              // tnum_with_subreg: high 32 of this, low 32 of sub
    Tnum const_subreg(uint32_t v) const;           // tnum_const_subreg
    bool subreg_is_const() const { return subreg().is_const(); }   // tnum_subreg_is_const

    // "(0x0; 0xff)", as tnum_strn() formats var_off in the verifier log.
    std::string str() const;
};

Tnum tnum_add(Tnum a, Tnum b);
Tnum tnum_sub(Tnum a, Tnum b);
Tnum tnum_neg(Tnum a);                 // tnum_sub(0, a)
Tnum tnum_and(Tnum a, Tnum b);
Tnum tnum_or(Tnum a, Tnum b);
Tnum tnum_xor(Tnum a, Tnum b);
// Long multiplication over the trits of `a`; an unknown trit adds the union of both partial
// sums (the 6.18 algorithm, "improve the general precision of tnum_mul").
Tnum tnum_mul(Tnum a, Tnum b);
// Members of both (a and b must overlap for the result to be meaningful).
Tnum tnum_intersect(Tnum a, Tnum b);
// A superset of the members of either.
Tnum tnum_union(Tnum a, Tnum b);

}  // namespace bpfsim::verifier
