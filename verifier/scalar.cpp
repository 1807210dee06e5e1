// Scalar bounds tracking as kernel/bpf/verifier.c does it (Linux 6.18). Each function names the
// kernel function it follows; comments say why a rule is sound or why it is written that way.
#include "verifier/scalar.hpp"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace bpfsim::verifier {

namespace {

constexpr int64_t S64_MIN = std::numeric_limits<int64_t>::min();
constexpr int64_t S64_MAX = std::numeric_limits<int64_t>::max();
constexpr uint64_t U64_MAX = std::numeric_limits<uint64_t>::max();
constexpr int32_t S32_MIN = std::numeric_limits<int32_t>::min();
constexpr int32_t S32_MAX = std::numeric_limits<int32_t>::max();
constexpr uint32_t U32_MAX = std::numeric_limits<uint32_t>::max();

// check_{add,sub,mul}_overflow: store the wrapped result, report whether it wrapped.
template <class T> bool add_ovf(T a, T b, T* r) { return __builtin_add_overflow(a, b, r); }
template <class T> bool sub_ovf(T a, T b, T* r) { return __builtin_sub_overflow(a, b, r); }
template <class T> bool mul_ovf(T a, T b, T* r) { return __builtin_mul_overflow(a, b, r); }

void update_reg32_bounds(Scalar& r) {   // __update_reg32_bounds
    const Tnum t = r.var_off.subreg();
    r.s32_min = std::max(r.s32_min, int32_t(uint32_t(t.value | (t.mask & uint32_t(S32_MIN)))));
    r.s32_max = std::min(r.s32_max, int32_t(uint32_t(t.value | (t.mask & uint32_t(S32_MAX)))));
    r.u32_min = std::max(r.u32_min, uint32_t(t.value));
    r.u32_max = std::min(r.u32_max, uint32_t(t.value | t.mask));
}

void update_reg64_bounds(Scalar& r) {   // __update_reg64_bounds
    const Tnum t = r.var_off;
    r.smin = std::max(r.smin, int64_t(t.value | (t.mask & uint64_t(S64_MIN))));
    r.smax = std::min(r.smax, int64_t(t.value | (t.mask & uint64_t(S64_MAX))));
    r.umin = std::max(r.umin, t.value);
    r.umax = std::min(r.umax, t.value | t.mask);
}

void reg32_deduce_bounds(Scalar& r) {   // __reg32_deduce_bounds
    // Upper 32 bits fixed across the u64 range: its low halves bound the subregister.
    if ((r.umin >> 32) == (r.umax >> 32)) {
        r.u32_min = std::max(r.u32_min, uint32_t(r.umin));
        r.u32_max = std::min(r.u32_max, uint32_t(r.umax));
        if (int32_t(r.umin) <= int32_t(r.umax)) {
            r.s32_min = std::max(r.s32_min, int32_t(r.umin));
            r.s32_max = std::min(r.s32_max, int32_t(r.umax));
        }
    }
    if ((r.smin >> 32) == (r.smax >> 32)) {
        if (uint32_t(r.smin) <= uint32_t(r.smax)) {
            r.u32_min = std::max(r.u32_min, uint32_t(r.smin));
            r.u32_max = std::min(r.u32_max, uint32_t(r.smax));
        }
        if (int32_t(r.smin) <= int32_t(r.smax)) {
            r.s32_min = std::max(r.s32_min, int32_t(r.smin));
            r.s32_max = std::min(r.s32_max, int32_t(r.smax));
        }
    }
    // Upper halves are two consecutive numbers and the low halves go from negative to
    // non-negative: the low halves still form one s32 range.
    if (uint32_t(r.umin >> 32) + 1 == uint32_t(r.umax >> 32) && int32_t(r.umin) < 0 && int32_t(r.umax) >= 0) {
        r.s32_min = std::max(r.s32_min, int32_t(r.umin));
        r.s32_max = std::min(r.s32_max, int32_t(r.umax));
    }
    if (uint32_t(uint64_t(r.smin) >> 32) + 1 == uint32_t(uint64_t(r.smax) >> 32) && int32_t(r.smin) < 0 &&
        int32_t(r.smax) >= 0) {
        r.s32_min = std::max(r.s32_min, int32_t(r.smin));
        r.s32_max = std::min(r.s32_max, int32_t(r.smax));
    }
    // A u32 range that does not cross the s32 sign boundary is also an s32 range, and back.
    if (int32_t(r.u32_min) <= int32_t(r.u32_max)) {
        r.s32_min = std::max(r.s32_min, int32_t(r.u32_min));
        r.s32_max = std::min(r.s32_max, int32_t(r.u32_max));
    }
    if (uint32_t(r.s32_min) <= uint32_t(r.s32_max)) {
        r.u32_min = std::max(uint32_t(r.s32_min), r.u32_min);
        r.u32_max = std::min(uint32_t(r.s32_max), r.u32_max);
    }
}

void reg64_deduce_bounds(Scalar& r) {   // __reg64_deduce_bounds
    if (int64_t(r.umin) <= int64_t(r.umax)) {
        r.smin = std::max(r.smin, int64_t(r.umin));
        r.smax = std::min(r.smax, int64_t(r.umax));
    }
    if (uint64_t(r.smin) <= uint64_t(r.smax)) {
        r.umin = std::max(uint64_t(r.smin), r.umin);
        r.umax = std::min(uint64_t(r.smax), r.umax);
    } else {
        // The s64 range crosses the sign boundary, i.e. covers both ends of u64 space; if the
        // u64 range meets only one end, both ranges shrink to that end (since 6.17).
        if (r.umax < uint64_t(r.smin)) {
            r.smin = int64_t(r.umin);
            r.umax = std::min(r.umax, uint64_t(r.smax));
        } else if (uint64_t(r.smax) < r.umin) {
            r.smax = int64_t(r.umax);
            r.umin = std::max(r.umin, uint64_t(r.smin));
        }
    }
}

void reg_deduce_mixed_bounds(Scalar& r) {   // __reg_deduce_mixed_bounds
    // Put the u32 bounds under the upper halves of the 64-bit bounds; always well-formed.
    const uint64_t hi = ~uint64_t{0xffffffff};
    const uint64_t new_umin = (r.umin & hi) | r.u32_min;
    const uint64_t new_umax = (r.umax & hi) | r.u32_max;
    r.umin = std::max(r.umin, new_umin);
    r.umax = std::min(r.umax, new_umax);
    const int64_t new_smin = int64_t((uint64_t(r.smin) & hi) | r.u32_min);
    const int64_t new_smax = int64_t((uint64_t(r.smax) & hi) | r.u32_max);
    r.smin = std::max(r.smin, new_smin);
    r.smax = std::min(r.smax, new_smax);
    // After a sign-extending load the value is the sign extension of its subregister; with a
    // non-negative s32 range the 64-bit value equals it.
    if (r.s32_min >= 0 && r.smin >= S32_MIN && r.smax <= S32_MAX) {
        r.smin = r.s32_min;
        r.smax = r.s32_max;
        r.umin = uint64_t(r.s32_min);
        r.umax = uint64_t(r.s32_max);
        r.var_off = tnum_intersect(r.var_off, Tnum::range(uint64_t(r.smin), uint64_t(r.smax)));
    }
}

void assign_32_into_64(Scalar& r) {   // __reg_assign_32_into_64
    r.umin = r.u32_min;
    r.umax = r.u32_max;
    if (r.s32_min >= 0 && r.s32_max >= 0) {   // __reg32_bound_s64 on both
        r.smin = r.s32_min;
        r.smax = r.s32_max;
    } else {
        r.smin = 0;
        r.smax = U32_MAX;
    }
}

// ── scalar{32,}_min_max_<op> ────────────────────────────────────────────────

void scalar32_add(Scalar& d, const Scalar& s) {
    if (add_ovf(d.s32_min, s.s32_min, &d.s32_min) || add_ovf(d.s32_max, s.s32_max, &d.s32_max)) {
        d.s32_min = S32_MIN;
        d.s32_max = S32_MAX;
    }
    // All sums wrap or none do: the wrapped bounds are still ordered.
    const bool min_ovf = add_ovf(d.u32_min, s.u32_min, &d.u32_min);
    const bool max_ovf = add_ovf(d.u32_max, s.u32_max, &d.u32_max);
    if (!min_ovf && max_ovf) {
        d.u32_min = 0;
        d.u32_max = U32_MAX;
    }
}

void scalar64_add(Scalar& d, const Scalar& s) {
    if (add_ovf(d.smin, s.smin, &d.smin) || add_ovf(d.smax, s.smax, &d.smax)) {
        d.smin = S64_MIN;
        d.smax = S64_MAX;
    }
    const bool min_ovf = add_ovf(d.umin, s.umin, &d.umin);
    const bool max_ovf = add_ovf(d.umax, s.umax, &d.umax);
    if (!min_ovf && max_ovf) {
        d.umin = 0;
        d.umax = U64_MAX;
    }
}

void scalar32_sub(Scalar& d, const Scalar& s) {
    if (sub_ovf(d.s32_min, s.s32_max, &d.s32_min) || sub_ovf(d.s32_max, s.s32_min, &d.s32_max)) {
        d.s32_min = S32_MIN;
        d.s32_max = S32_MAX;
    }
    const bool min_unf = sub_ovf(d.u32_min, s.u32_max, &d.u32_min);
    const bool max_unf = sub_ovf(d.u32_max, s.u32_min, &d.u32_max);
    if (min_unf && !max_unf) {
        d.u32_min = 0;
        d.u32_max = U32_MAX;
    }
}

void scalar64_sub(Scalar& d, const Scalar& s) {
    if (sub_ovf(d.smin, s.smax, &d.smin) || sub_ovf(d.smax, s.smin, &d.smax)) {
        d.smin = S64_MIN;
        d.smax = S64_MAX;
    }
    const bool min_unf = sub_ovf(d.umin, s.umax, &d.umin);
    const bool max_unf = sub_ovf(d.umax, s.umin, &d.umax);
    if (min_unf && !max_unf) {
        d.umin = 0;
        d.umax = U64_MAX;
    }
}

void scalar32_mul(Scalar& d, const Scalar& s) {
    if (mul_ovf(d.u32_max, s.u32_max, &d.u32_max) || mul_ovf(d.u32_min, s.u32_min, &d.u32_min)) {
        d.u32_min = 0;
        d.u32_max = U32_MAX;
    }
    int32_t p[4];
    if (mul_ovf(d.s32_min, s.s32_min, &p[0]) || mul_ovf(d.s32_min, s.s32_max, &p[1]) ||
        mul_ovf(d.s32_max, s.s32_min, &p[2]) || mul_ovf(d.s32_max, s.s32_max, &p[3])) {
        d.s32_min = S32_MIN;
        d.s32_max = S32_MAX;
    } else {
        d.s32_min = *std::min_element(p, p + 4);
        d.s32_max = *std::max_element(p, p + 4);
    }
}

void scalar64_mul(Scalar& d, const Scalar& s) {
    if (mul_ovf(d.umax, s.umax, &d.umax) || mul_ovf(d.umin, s.umin, &d.umin)) {
        d.umin = 0;
        d.umax = U64_MAX;
    }
    int64_t p[4];
    if (mul_ovf(d.smin, s.smin, &p[0]) || mul_ovf(d.smin, s.smax, &p[1]) || mul_ovf(d.smax, s.smin, &p[2]) ||
        mul_ovf(d.smax, s.smax, &p[3])) {
        d.smin = S64_MIN;
        d.smax = S64_MAX;
    } else {
        d.smin = *std::min_element(p, p + 4);
        d.smax = *std::max_element(p, p + 4);
    }
}

// For and/or/xor: the unsigned range becomes a signed one when it does not cross the sign.
void s32_from_u32(Scalar& d) {
    if (int32_t(d.u32_min) <= int32_t(d.u32_max)) {
        d.s32_min = int32_t(d.u32_min);
        d.s32_max = int32_t(d.u32_max);
    } else {
        d.s32_min = S32_MIN;
        d.s32_max = S32_MAX;
    }
}
void s64_from_u64(Scalar& d) {
    if (int64_t(d.umin) <= int64_t(d.umax)) {
        d.smin = int64_t(d.umin);
        d.smax = int64_t(d.umax);
    } else {
        d.smin = S64_MIN;
        d.smax = S64_MAX;
    }
}

void scalar32_and(Scalar& d, const Scalar& s) {
    const Tnum t = d.var_off.subreg();
    if (s.var_off.subreg_is_const() && t.is_const()) {
        d.mark32_known(t.value);
        return;
    }
    d.u32_min = uint32_t(t.value);   // the minimum is bitwise: the known ones
    d.u32_max = std::min(d.u32_max, s.u32_max);
    s32_from_u32(d);
}

void scalar64_and(Scalar& d, const Scalar& s) {
    if (s.var_off.is_const() && d.var_off.is_const()) {
        d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = std::min(d.umax, s.umax);
    s64_from_u64(d);
    d.update_bounds();
}

void scalar32_or(Scalar& d, const Scalar& s) {
    const Tnum t = d.var_off.subreg();
    if (s.var_off.subreg_is_const() && t.is_const()) {
        d.mark32_known(t.value);
        return;
    }
    d.u32_min = std::max(d.u32_min, s.u32_min);
    d.u32_max = uint32_t(t.value | t.mask);   // the maximum is bitwise: all possible ones
    s32_from_u32(d);
}

void scalar64_or(Scalar& d, const Scalar& s) {
    if (s.var_off.is_const() && d.var_off.is_const()) {
        d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = std::max(d.umin, s.umin);
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    d.update_bounds();
}

void scalar32_xor(Scalar& d, const Scalar& s) {
    const Tnum t = d.var_off.subreg();
    if (s.var_off.subreg_is_const() && t.is_const()) {
        d.mark32_known(t.value);
        return;
    }
    d.u32_min = uint32_t(t.value);
    d.u32_max = uint32_t(t.value | t.mask);
    s32_from_u32(d);
}

void scalar64_xor(Scalar& d, const Scalar& s) {
    if (s.var_off.is_const() && d.var_off.is_const()) {
        d = Scalar::known(d.var_off.value);
        return;
    }
    d.umin = d.var_off.value;
    d.umax = d.var_off.value | d.var_off.mask;
    s64_from_u64(d);
    d.update_bounds();
}

void scalar32_lsh_bounds(Scalar& d, uint64_t umin_val, uint64_t umax_val) {   // __scalar32_min_max_lsh
    d.s32_min = S32_MIN;   // sign information is lost (except what var_off keeps)
    d.s32_max = S32_MAX;
    if (umax_val > 31 || d.u32_max > (uint64_t{1} << (31 - umax_val))) {
        d.u32_min = 0;
        d.u32_max = U32_MAX;
    } else {
        d.u32_min <<= umin_val;
        d.u32_max <<= umax_val;
    }
}

void scalar32_lsh(Scalar& d, const Scalar& s) {
    const uint32_t umax_val = s.u32_max, umin_val = s.u32_min;
    const Tnum sub = d.var_off.subreg();
    scalar32_lsh_bounds(d, umin_val, umax_val);
    d.var_off = sub.lshift(umin_val).subreg();
    d.mark64_unbounded();   // picked up from the tnum after zero-extension
    update_reg32_bounds(d);
}

void scalar64_lsh_bounds(Scalar& d, uint64_t umin_val, uint64_t umax_val) {   // __scalar64_min_max_lsh
    // <<32 of a non-negative s32 range (the compiler's `<<32 s>>32` sign extension) keeps it.
    if (umin_val == 32 && umax_val == 32 && d.s32_max >= 0)
        d.smax = int64_t(uint64_t(int64_t(d.s32_max)) << 32);
    else
        d.smax = S64_MAX;
    if (umin_val == 32 && umax_val == 32 && d.s32_min >= 0)
        d.smin = int64_t(uint64_t(int64_t(d.s32_min)) << 32);
    else
        d.smin = S64_MIN;
    if (d.umax > (uint64_t{1} << (63 - umax_val))) {
        d.umin = 0;
        d.umax = U64_MAX;
    } else {
        d.umin <<= umin_val;
        d.umax <<= umax_val;
    }
}

void scalar64_lsh(Scalar& d, const Scalar& s) {
    const uint64_t umax_val = s.umax, umin_val = s.umin;
    scalar64_lsh_bounds(d, umin_val, umax_val);   // uses the unshifted 32-bit bounds: first
    scalar32_lsh_bounds(d, umin_val, umax_val);
    d.var_off = d.var_off.lshift(unsigned(umin_val));
    d.update_bounds();
}

void scalar32_rsh(Scalar& d, const Scalar& s) {
    const Tnum sub = d.var_off.subreg();
    const uint32_t umax_val = s.u32_max, umin_val = s.u32_min;
    d.s32_min = S32_MIN;
    d.s32_max = S32_MAX;
    d.var_off = sub.rshift(umin_val);
    d.u32_min = d.u32_min >> umax_val;
    d.u32_max = d.u32_max >> umin_val;
    d.mark64_unbounded();
    update_reg32_bounds(d);
}

void scalar64_rsh(Scalar& d, const Scalar& s) {
    const uint64_t umax_val = s.umax, umin_val = s.umin;
    d.smin = S64_MIN;
    d.smax = S64_MAX;
    d.var_off = d.var_off.rshift(unsigned(umin_val));
    d.umin >>= umax_val;
    d.umax >>= umin_val;
    d.mark32_unbounded();   // bits shifted in from the upper half: recomputed from the tnum
    d.update_bounds();
}

void scalar32_arsh(Scalar& d, const Scalar& s) {
    const uint32_t umin_val = s.u32_min;   // src is a constant here
    d.s32_min = d.s32_min >> umin_val;
    d.s32_max = d.s32_max >> umin_val;
    d.var_off = d.var_off.subreg().arshift(umin_val, 32);
    d.u32_min = 0;
    d.u32_max = U32_MAX;
    d.mark64_unbounded();
    update_reg32_bounds(d);
}

void scalar64_arsh(Scalar& d, const Scalar& s) {
    const uint64_t umin_val = s.umin;
    d.smin >>= umin_val;
    d.smax >>= umin_val;
    d.var_off = d.var_off.arshift(unsigned(umin_val), 64);
    d.umin = 0;
    d.umax = U64_MAX;
    d.mark32_unbounded();
    d.update_bounds();
}

}  // namespace

// ── Scalar ───────────────────────────────────────────────────────────────────

Scalar Scalar::known(uint64_t v) {
    Scalar r;
    r.var_off = Tnum::constant(v);
    r.smin = r.smax = int64_t(v);
    r.umin = r.umax = v;
    r.s32_min = r.s32_max = int32_t(uint32_t(v));
    r.u32_min = r.u32_max = uint32_t(v);
    return r;
}

Scalar Scalar::from_u64_range(uint64_t lo, uint64_t hi) {
    Scalar r;
    r.umin = lo;
    r.umax = hi;
    r.sync();
    return r;
}

Scalar Scalar::from_s64_range(int64_t lo, int64_t hi) {
    Scalar r;
    r.smin = lo;
    r.smax = hi;
    r.sync();
    return r;
}

bool Scalar::contains(uint64_t v) const {
    const int64_t sv = int64_t(v);
    const uint32_t v32 = uint32_t(v);
    const int32_t sv32 = int32_t(v32);
    return var_off.contains(v) && umin <= v && v <= umax && smin <= sv && sv <= smax && u32_min <= v32 &&
           v32 <= u32_max && s32_min <= sv32 && sv32 <= s32_max;
}

bool Scalar::bounds_sane() const {
    if (umin > umax || smin > smax || u32_min > u32_max || s32_min > s32_max) return false;
    if (var_off.is_const()) {
        const uint64_t u = var_off.value;
        if (umin != u || umax != u || smin != int64_t(u) || smax != int64_t(u)) return false;
    }
    if (var_off.subreg_is_const()) {
        const uint32_t u = uint32_t(var_off.value);
        if (u32_min != u || u32_max != u || s32_min != int32_t(u) || s32_max != int32_t(u)) return false;
    }
    return true;
}

void Scalar::mark64_unbounded() {
    smin = S64_MIN;
    smax = S64_MAX;
    umin = 0;
    umax = U64_MAX;
}

void Scalar::mark32_unbounded() {
    s32_min = S32_MIN;
    s32_max = S32_MAX;
    u32_min = 0;
    u32_max = U32_MAX;
}

void Scalar::mark_unbounded() {
    mark64_unbounded();
    mark32_unbounded();
}

void Scalar::mark32_known(uint64_t v) {
    var_off = var_off.const_subreg(uint32_t(v));
    s32_min = s32_max = int32_t(uint32_t(v));
    u32_min = u32_max = uint32_t(v);
}

void Scalar::update_bounds() {
    update_reg32_bounds(*this);
    update_reg64_bounds(*this);
}

void Scalar::deduce_bounds() {
    reg32_deduce_bounds(*this);
    reg64_deduce_bounds(*this);
    reg_deduce_mixed_bounds(*this);
}

void Scalar::bound_offset() {
    const Tnum var64 = tnum_intersect(var_off, Tnum::range(umin, umax));
    const Tnum var32 = tnum_intersect(var64.subreg(), Tnum::range(u32_min, u32_max));
    var_off = tnum_or(var64.clear_subreg(), var32);
}

void Scalar::sync() {
    update_bounds();   // learn from var_off
    deduce_bounds();   // three rounds, as 6.17+ does, to reach the usual fixed point
    deduce_bounds();
    deduce_bounds();
    bound_offset();    // learn bits from the bounds
    update_bounds();   // and bounds from those bits
}

void Scalar::zext_32_to_64() {
    var_off = var_off.subreg();
    assign_32_into_64(*this);
}

void Scalar::coerce_to_size(int size) {
    if (size >= 8) return;   // a full-width load keeps everything
    var_off = var_off.cast(unsigned(size));
    const uint64_t mask = (uint64_t{1} << (size * 8)) - 1;
    if ((umin & ~mask) == (umax & ~mask)) {
        umin &= mask;
        umax &= mask;
    } else {
        umin = 0;
        umax = mask;
    }
    smin = int64_t(umin);
    smax = int64_t(umax);
    // Narrower than 32 bits: the 32-bit bounds are truncated too; relearn them from 64.
    if (size < 4) mark32_unbounded();
    sync();
}

void Scalar::coerce_to_size_sx(int size) {
    if (var_off.is_const()) {
        const uint64_t c = var_off.value;
        const int64_t v = size == 1 ? int64_t(int8_t(c)) : size == 2 ? int64_t(int16_t(c)) : int64_t(int32_t(c));
        var_off = Tnum::constant(uint64_t(v));
        smin = smax = v;
        umin = umax = uint64_t(v);
        s32_min = s32_max = int32_t(v);
        u32_min = u32_max = uint32_t(v);
        return;
    }
    const unsigned bits = unsigned(size) * 8;
    const uint64_t top_smax = (uint64_t(smax) >> bits) << bits;
    const uint64_t top_smin = (uint64_t(smin) >> bits) << bits;
    if (top_smax == top_smin) {
        // Same upper bits: the low parts form one range; usable if it keeps one sign.
        int64_t a, b;
        if (size == 1) {
            a = int8_t(smax);
            b = int8_t(smin);
        } else if (size == 2) {
            a = int16_t(smax);
            b = int16_t(smin);
        } else {
            a = int32_t(smax);
            b = int32_t(smin);
        }
        const int64_t hi = std::max(a, b), lo = std::min(a, b);
        if ((hi >= 0) == (lo >= 0)) {
            smin = lo;
            smax = hi;
            s32_min = int32_t(lo);
            s32_max = int32_t(hi);
            umin = uint64_t(lo);
            umax = uint64_t(hi);
            u32_min = uint32_t(lo);
            u32_max = uint32_t(hi);
            var_off = Tnum::range(uint64_t(lo), uint64_t(hi));
            return;
        }
    }
    // set_sext64_default_val
    const int64_t lo = size == 1 ? INT8_MIN : size == 2 ? INT16_MIN : S32_MIN;
    const int64_t hi = size == 1 ? INT8_MAX : size == 2 ? INT16_MAX : S32_MAX;
    smin = lo;
    s32_min = int32_t(lo);
    smax = hi;
    s32_max = int32_t(hi);
    umin = 0;
    u32_min = 0;
    umax = U64_MAX;
    u32_max = U32_MAX;
    var_off = Tnum::unknown();
}

void Scalar::coerce_subreg_to_size_sx(int size) {
    if (var_off.is_const()) {
        const uint32_t c = uint32_t(var_off.value);
        const int64_t v = size == 1 ? int64_t(int8_t(c)) : int64_t(int16_t(c));
        var_off = Tnum::constant(uint64_t(v));   // 64-bit sign-extended; zext follows
        s32_min = s32_max = int32_t(v);
        u32_min = u32_max = uint32_t(v);
        return;
    }
    const unsigned bits = unsigned(size) * 8;
    const uint32_t top_smax = (uint32_t(s32_max) >> bits) << bits;
    const uint32_t top_smin = (uint32_t(s32_min) >> bits) << bits;
    if (top_smax == top_smin) {
        int32_t a, b;
        if (size == 1) {
            a = int8_t(s32_max);
            b = int8_t(s32_min);
        } else {
            a = int16_t(s32_max);
            b = int16_t(s32_min);
        }
        const int32_t hi = std::max(a, b), lo = std::min(a, b);
        if ((lo >= 0) == (hi >= 0)) {
            s32_min = lo;
            s32_max = hi;
            u32_min = uint32_t(lo);
            u32_max = uint32_t(hi);
            var_off = Tnum::range(uint64_t(int64_t(lo)), uint64_t(int64_t(hi))).subreg();
            return;
        }
    }
    // set_sext32_default_val
    s32_min = size == 1 ? INT8_MIN : INT16_MIN;
    s32_max = size == 1 ? INT8_MAX : INT16_MAX;
    u32_min = 0;
    u32_max = U32_MAX;
    var_off = Tnum::unknown().subreg();
}

// verbose_snum / verbose_unum: small magnitudes in decimal, everything else in hex.
static bool is_unum_decimal(uint64_t n) { return n <= 0xffff; }
static bool is_snum_decimal(int64_t n) { return n >= INT16_MIN && n <= INT16_MAX; }
static std::string snum(int64_t n) {
    char b[32];
    if (is_snum_decimal(n)) std::snprintf(b, sizeof b, "%" PRId64, n);
    else std::snprintf(b, sizeof b, "0x%" PRIx64, uint64_t(n));
    return b;
}
static std::string unum(uint64_t n) {
    char b[32];
    if (is_unum_decimal(n)) std::snprintf(b, sizeof b, "%" PRIu64, n);
    else std::snprintf(b, sizeof b, "0x%" PRIx64, n);
    return b;
}

std::string Scalar::str(bool precise) const {
    std::string out = precise ? "P" : "";
    if (var_off.is_const()) return out + snum(int64_t(var_off.value));
    out += "scalar(";
    const char* sep = "";
    if (id) {
        out += "id=" + std::to_string(id);
        sep = ",";
    }
    // print_scalar_ranges: pairs two apart (smin/umin/smin32/umin32, smax/...) with equal
    // values share one "=", but a negative signed value never merges with a non-negative one.
    struct MinMax {
        const char* name;
        uint64_t val;
        bool omit;
    } m[] = {
        {"smin", uint64_t(smin), smin == S64_MIN},
        {"smax", uint64_t(smax), smax == S64_MAX},
        {"umin", umin, umin == 0},
        {"umax", umax, umax == U64_MAX},
        {"smin32", is_snum_decimal(s32_min) ? uint64_t(int64_t(s32_min)) : uint64_t(uint32_t(s32_min)), s32_min == S32_MIN},
        {"smax32", is_snum_decimal(s32_max) ? uint64_t(int64_t(s32_max)) : uint64_t(uint32_t(s32_max)), s32_max == S32_MAX},
        {"umin32", u32_min, u32_min == 0},
        {"umax32", u32_max, u32_max == U32_MAX},
    };
    constexpr int n = sizeof m / sizeof m[0];
    for (int i = 0; i < n; i++) {
        if (m[i].omit) continue;
        const bool neg1 = m[i].name[0] == 's' && int64_t(m[i].val) < 0;
        out += sep;
        out += m[i].name;
        out += '=';
        sep = ",";
        for (int j = i + 2; j < n; j += 2) {
            if (m[j].omit || m[j].val != m[i].val) continue;
            const bool neg2 = m[j].name[0] == 's' && int64_t(m[j].val) < 0;
            if (neg2 != neg1) continue;
            m[j].omit = true;
            out += m[j].name;
            out += '=';
        }
        out += m[i].name[0] == 's' ? snum(int64_t(m[i].val)) : unum(m[i].val);
    }
    if (!var_off.is_unknown()) {
        out += sep;
        out += "var_off=" + var_off.str();
    }
    return out + ")";
}

// ── ALU ──────────────────────────────────────────────────────────────────────

bool is_safe_to_compute_dst_range(AluOp op, bool alu64, const Scalar& src) {
    const unsigned bitness = alu64 ? 64 : 32;
    bool src_is_const;
    if (!alu64)
        src_is_const = src.var_off.subreg_is_const() && src.s32_min == src.s32_max && src.u32_min == src.u32_max;
    else
        src_is_const = src.var_off.is_const() && src.smin == src.smax && src.umin == src.umax;
    switch (op) {
    case AluOp::Add: case AluOp::Sub: case AluOp::Neg: case AluOp::And:
    case AluOp::Xor: case AluOp::Or: case AluOp::Mul:
        return true;
    case AluOp::Lsh: case AluOp::Rsh: case AluOp::Arsh:
        // Only by a constant below the width; note the kernel checks the 64-bit umax even
        // for ALU32.
        return src_is_const && src.umax < bitness;
    default:
        return false;
    }
}

void alu(Scalar& dst, const Scalar& src, AluOp op, bool alu64) {
    if (op == AluOp::Mov) {
        Scalar s = src;
        mov_reg(dst, s, alu64);
        return;
    }
    if (op == AluOp::End) {
        end(dst);
        return;
    }
    dst.id = 0;   // linked-register deltas (BPF_ADD_CONST) are the caller's business
    if (!is_safe_to_compute_dst_range(op, alu64, src)) {
        dst = Scalar::unknown();   // __mark_reg_unknown, no zero-extension
        return;
    }
    switch (op) {
    case AluOp::Add:
        scalar32_add(dst, src);
        scalar64_add(dst, src);
        dst.var_off = tnum_add(dst.var_off, src.var_off);
        break;
    case AluOp::Sub:
        scalar32_sub(dst, src);
        scalar64_sub(dst, src);
        dst.var_off = tnum_sub(dst.var_off, src.var_off);
        break;
    case AluOp::Neg: {   // 0 - dst
        const Scalar old = dst;
        dst = Scalar::known(0);
        scalar32_sub(dst, old);
        scalar64_sub(dst, old);
        dst.var_off = tnum_neg(old.var_off);
        break;
    }
    case AluOp::Mul:
        dst.var_off = tnum_mul(dst.var_off, src.var_off);
        scalar32_mul(dst, src);
        scalar64_mul(dst, src);
        break;
    case AluOp::And:
        dst.var_off = tnum_and(dst.var_off, src.var_off);
        scalar32_and(dst, src);
        scalar64_and(dst, src);
        break;
    case AluOp::Or:
        dst.var_off = tnum_or(dst.var_off, src.var_off);
        scalar32_or(dst, src);
        scalar64_or(dst, src);
        break;
    case AluOp::Xor:
        dst.var_off = tnum_xor(dst.var_off, src.var_off);
        scalar32_xor(dst, src);
        scalar64_xor(dst, src);
        break;
    case AluOp::Lsh:
        if (alu64) scalar64_lsh(dst, src); else scalar32_lsh(dst, src);
        break;
    case AluOp::Rsh:
        if (alu64) scalar64_rsh(dst, src); else scalar32_rsh(dst, src);
        break;
    case AluOp::Arsh:
        if (alu64) scalar64_arsh(dst, src); else scalar32_arsh(dst, src);
        break;
    default:
        break;
    }
    if (!alu64) dst.zext_32_to_64();
    dst.sync();
}

void alu_imm(Scalar& dst, int32_t imm, AluOp op, bool alu64) {
    if (op == AluOp::Mov) {
        mov_imm(dst, imm, alu64);
        return;
    }
    alu(dst, Scalar::known(uint64_t(int64_t(imm))), op, alu64);
}

void neg(Scalar& dst, bool alu64) {
    const Scalar src = dst;
    alu(dst, src, AluOp::Neg, alu64);
}

void end(Scalar& dst) { dst = Scalar::unknown(); }

void mov_reg(Scalar& dst, Scalar& src, bool alu64, int sx_bits, uint32_t* next_id) {
    const bool need_id = !src.id && !src.var_off.is_const();
    if (sx_bits == 0 && alu64) {   // r1 = r2
        if (need_id && next_id) src.id = ++*next_id;
        dst = src;
        return;
    }
    if (sx_bits == 0) {   // w1 = w2: links only if src already fits in 32 bits (get_reg_width)
        const bool src_u32 = 64 - std::countl_zero(src.umax) <= 32;
        if (src_u32 && need_id && next_id) src.id = ++*next_id;
        dst = src;
        if (!src_u32) dst.id = 0;
    } else {   // movsx: links only if the sign extension cannot change the value
        const bool no_sext = src.umax < (uint64_t{1} << (sx_bits - 1));
        if (no_sext && need_id && next_id) src.id = ++*next_id;
        dst = src;
        if (!no_sext) dst.id = 0;
        if (alu64) {
            dst.coerce_to_size_sx(sx_bits / 8);
            return;
        }
        dst.coerce_subreg_to_size_sx(sx_bits / 8);
    }
    dst.zext_32_to_64();
    dst.sync();
}

void mov_imm(Scalar& dst, int32_t imm, bool alu64) {
    dst = Scalar::known(alu64 ? uint64_t(int64_t(imm)) : uint64_t(uint32_t(imm)));
}

// ── branches ─────────────────────────────────────────────────────────────────

JmpOp rev_opcode(JmpOp op) {
    switch (op) {
    case JmpOp::Jeq: return JmpOp::Jne;
    case JmpOp::Jne: return JmpOp::Jeq;
    case JmpOp::Jset: return JmpOp::JSetFalse;
    case JmpOp::JSetFalse: return JmpOp::Jset;
    case JmpOp::Jge: return JmpOp::Jlt;
    case JmpOp::Jgt: return JmpOp::Jle;
    case JmpOp::Jle: return JmpOp::Jgt;
    case JmpOp::Jlt: return JmpOp::Jge;
    case JmpOp::Jsge: return JmpOp::Jslt;
    case JmpOp::Jsgt: return JmpOp::Jsle;
    case JmpOp::Jsle: return JmpOp::Jsgt;
    case JmpOp::Jslt: return JmpOp::Jsge;
    }
    return op;
}

JmpOp flip_opcode(JmpOp op) {
    switch (op) {
    case JmpOp::Jge: return JmpOp::Jle;
    case JmpOp::Jgt: return JmpOp::Jlt;
    case JmpOp::Jle: return JmpOp::Jge;
    case JmpOp::Jlt: return JmpOp::Jgt;
    case JmpOp::Jsge: return JmpOp::Jsle;
    case JmpOp::Jsgt: return JmpOp::Jslt;
    case JmpOp::Jsle: return JmpOp::Jsge;
    case JmpOp::Jslt: return JmpOp::Jsgt;
    default: return op;   // symmetric
    }
}

const char* jmp_op_name(JmpOp op) {
    switch (op) {
    case JmpOp::Jeq: return "==";
    case JmpOp::Jne: return "!=";
    case JmpOp::Jgt: return ">";
    case JmpOp::Jge: return ">=";
    case JmpOp::Jlt: return "<";
    case JmpOp::Jle: return "<=";
    case JmpOp::Jsgt: return "s>";
    case JmpOp::Jsge: return "s>=";
    case JmpOp::Jslt: return "s<";
    case JmpOp::Jsle: return "s<=";
    case JmpOp::Jset: return "&";
    case JmpOp::JSetFalse: return "!&";
    }
    return "?";
}

int is_branch_taken(const Scalar& a, const Scalar& b, JmpOp op, bool jmp32, bool same_reg) {
    const Scalar* r1 = &a;
    const Scalar* r2 = &b;
    Tnum t1 = jmp32 ? a.var_off.subreg() : a.var_off;
    Tnum t2 = jmp32 ? b.var_off.subreg() : b.var_off;
    const uint64_t umin1 = jmp32 ? uint64_t(a.u32_min) : a.umin, umax1 = jmp32 ? uint64_t(a.u32_max) : a.umax;
    const int64_t smin1 = jmp32 ? int64_t(a.s32_min) : a.smin, smax1 = jmp32 ? int64_t(a.s32_max) : a.smax;
    const uint64_t umin2 = jmp32 ? uint64_t(b.u32_min) : b.umin, umax2 = jmp32 ? uint64_t(b.u32_max) : b.umax;
    const int64_t smin2 = jmp32 ? int64_t(b.s32_min) : b.smin, smax2 = jmp32 ? int64_t(b.s32_max) : b.smax;

    if (same_reg) {   // `if rX op rX`
        switch (op) {
        case JmpOp::Jge: case JmpOp::Jle: case JmpOp::Jsge: case JmpOp::Jsle: case JmpOp::Jeq:
            return 1;
        case JmpOp::Jgt: case JmpOp::Jlt: case JmpOp::Jsgt: case JmpOp::Jslt: case JmpOp::Jne:
            return 0;
        case JmpOp::Jset:
            if (t1.is_const()) return t1.value != 0;
            return (smin1 <= 0 && smax1 >= 0) ? -1 : 1;
        default:
            return -1;
        }
    }

    switch (op) {
    case JmpOp::Jeq:
    case JmpOp::Jne: {
        const int eq = op == JmpOp::Jeq ? 1 : 0;
        if (t1.is_const() && t2.is_const()) return (t1.value == t2.value) == bool(eq) ? 1 : 0;
        if (!t1.overlaps(t2)) return 1 - eq;   // a known bit differs
        if (umin1 > umax2 || umax1 < umin2) return 1 - eq;
        if (smin1 > smax2 || smax1 < smin2) return 1 - eq;
        if (!jmp32) {   // 64-bit ranges overlap; the subregister ranges may not
            if (a.u32_min > b.u32_max || a.u32_max < b.u32_min) return 1 - eq;
            if (a.s32_min > b.s32_max || a.s32_max < b.s32_min) return 1 - eq;
        }
        break;
    }
    case JmpOp::Jset:
        if (!r2->is_const(jmp32)) {
            std::swap(r1, r2);
            std::swap(t1, t2);
        }
        if (!r2->is_const(jmp32)) return -1;
        if ((~t1.mask & t1.value) & t2.value) return 1;
        if (!((t1.mask | t1.value) & t2.value)) return 0;
        break;
    case JmpOp::Jgt:
        if (umin1 > umax2) return 1;
        if (umax1 <= umin2) return 0;
        break;
    case JmpOp::Jsgt:
        if (smin1 > smax2) return 1;
        if (smax1 <= smin2) return 0;
        break;
    case JmpOp::Jlt:
        if (umax1 < umin2) return 1;
        if (umin1 >= umax2) return 0;
        break;
    case JmpOp::Jslt:
        if (smax1 < smin2) return 1;
        if (smin1 >= smax2) return 0;
        break;
    case JmpOp::Jge:
        if (umin1 >= umax2) return 1;
        if (umax1 < umin2) return 0;
        break;
    case JmpOp::Jsge:
        if (smin1 >= smax2) return 1;
        if (smax1 < smin2) return 0;
        break;
    case JmpOp::Jle:
        if (umax1 <= umin2) return 1;
        if (umin1 > umax2) return 0;
        break;
    case JmpOp::Jsle:
        if (smax1 <= smin2) return 1;
        if (smin1 > smax2) return 0;
        break;
    case JmpOp::JSetFalse:
        break;
    }
    return -1;
}

void refine_cond_op(Scalar& ra, Scalar& rb, JmpOp op, bool jmp32) {
    Scalar* r1 = &ra;
    Scalar* r2 = &rb;
    switch (op) {   // GE/GT/SGE/SGT reuse the LE/LT logic with operands swapped
    case JmpOp::Jge: case JmpOp::Jgt: case JmpOp::Jsge: case JmpOp::Jsgt:
        op = flip_opcode(op);
        std::swap(r1, r2);
        break;
    default:
        break;
    }
    switch (op) {
    case JmpOp::Jeq:
        if (jmp32) {
            r1->u32_min = std::max(r1->u32_min, r2->u32_min);
            r1->u32_max = std::min(r1->u32_max, r2->u32_max);
            r1->s32_min = std::max(r1->s32_min, r2->s32_min);
            r1->s32_max = std::min(r1->s32_max, r2->s32_max);
            r2->u32_min = r1->u32_min;
            r2->u32_max = r1->u32_max;
            r2->s32_min = r1->s32_min;
            r2->s32_max = r1->s32_max;
            const Tnum t = tnum_intersect(r1->var_off.subreg(), r2->var_off.subreg());
            r1->var_off = r1->var_off.with_subreg(t);
            r2->var_off = r2->var_off.with_subreg(t);
        } else {
            r1->umin = std::max(r1->umin, r2->umin);
            r1->umax = std::min(r1->umax, r2->umax);
            r1->smin = std::max(r1->smin, r2->smin);
            r1->smax = std::min(r1->smax, r2->smax);
            r2->umin = r1->umin;
            r2->umax = r1->umax;
            r2->smin = r1->smin;
            r2->smax = r1->smax;
            r1->var_off = tnum_intersect(r1->var_off, r2->var_off);
            r2->var_off = r1->var_off;
        }
        break;
    case JmpOp::Jne: {
        if (!r2->is_const(jmp32)) std::swap(r1, r2);
        if (!r2->is_const(jmp32)) break;
        // Only a constant at the very edge of a range can be cut off.
        const uint64_t val = r2->const_value(jmp32);
        if (jmp32) {
            if (r1->u32_min == uint32_t(val)) r1->u32_min++;
            if (r1->u32_max == uint32_t(val)) r1->u32_max--;
            // The kernel's C wraps (-fno-strict-overflow): a one-value range becomes empty,
            // which the bounds sanity check then catches.
            if (r1->s32_min == int32_t(uint32_t(val))) r1->s32_min = int32_t(uint32_t(r1->s32_min) + 1);
            if (r1->s32_max == int32_t(uint32_t(val))) r1->s32_max = int32_t(uint32_t(r1->s32_max) - 1);
        } else {
            if (r1->umin == val) r1->umin++;
            if (r1->umax == val) r1->umax--;
            if (r1->smin == int64_t(val)) r1->smin = int64_t(uint64_t(r1->smin) + 1);
            if (r1->smax == int64_t(val)) r1->smax = int64_t(uint64_t(r1->smax) - 1);
        }
        break;
    }
    case JmpOp::Jset: {
        if (!r2->is_const(jmp32)) std::swap(r1, r2);
        if (!r2->is_const(jmp32)) break;
        const uint64_t val = r2->const_value(jmp32);
        // `r & val` true pins a bit only when val has a single bit.
        if (val == 0 || (val & (val - 1))) break;
        if (jmp32) {
            const Tnum t = tnum_or(r1->var_off.subreg(), Tnum::constant(val));
            r1->var_off = r1->var_off.with_subreg(t);
        } else {
            r1->var_off = tnum_or(r1->var_off, Tnum::constant(val));
        }
        break;
    }
    case JmpOp::JSetFalse: {
        if (!r2->is_const(jmp32)) std::swap(r1, r2);
        if (!r2->is_const(jmp32)) break;
        const uint64_t val = r2->const_value(jmp32);
        // Forget the ranges before narrowing the tnum: on a dead branch they could conflict.
        r1->mark_unbounded();
        if (jmp32) {
            const Tnum t = tnum_and(r1->var_off.subreg(), Tnum::constant(~val));
            r1->var_off = r1->var_off.with_subreg(t);
        } else {
            r1->var_off = tnum_and(r1->var_off, Tnum::constant(~val));
        }
        break;
    }
    case JmpOp::Jle:
        if (jmp32) {
            r1->u32_max = std::min(r1->u32_max, r2->u32_max);
            r2->u32_min = std::max(r1->u32_min, r2->u32_min);
        } else {
            r1->umax = std::min(r1->umax, r2->umax);
            r2->umin = std::max(r1->umin, r2->umin);
        }
        break;
    case JmpOp::Jlt:
        if (jmp32) {
            r1->u32_max = std::min(r1->u32_max, r2->u32_max - 1);
            r2->u32_min = std::max(r1->u32_min + 1, r2->u32_min);
        } else {
            r1->umax = std::min(r1->umax, r2->umax - 1);
            r2->umin = std::max(r1->umin + 1, r2->umin);
        }
        break;
    case JmpOp::Jsle:
        if (jmp32) {
            r1->s32_max = std::min(r1->s32_max, r2->s32_max);
            r2->s32_min = std::max(r1->s32_min, r2->s32_min);
        } else {
            r1->smax = std::min(r1->smax, r2->smax);
            r2->smin = std::max(r1->smin, r2->smin);
        }
        break;
    case JmpOp::Jslt:
        if (jmp32) {
            r1->s32_max = std::min(r1->s32_max, int32_t(uint32_t(r2->s32_max) - 1));
            r2->s32_min = std::max(int32_t(uint32_t(r1->s32_min) + 1), r2->s32_min);
        } else {
            r1->smax = std::min(r1->smax, int64_t(uint64_t(r2->smax) - 1));
            r2->smin = std::max(int64_t(uint64_t(r1->smin) + 1), r2->smin);
        }
        break;
    default:
        break;
    }
}

BranchRefinement branch_refine(const Scalar& a, const Scalar& b, JmpOp op, bool jmp32, bool same_reg) {
    BranchRefinement r{a, b, a, b, true};
    if (same_reg) return r;   // nothing to learn from comparing a register with itself
    refine_cond_op(r.false_a, r.false_b, rev_opcode(op), jmp32);
    r.false_a.sync();
    r.false_b.sync();
    refine_cond_op(r.true_a, r.true_b, op, jmp32);
    r.true_a.sync();
    r.true_b.sync();
    // reg_bounds_sanity_check: a violation is a verifier bug report; outside selftests the
    // register is then forgotten (ranges only, the tnum stays).
    for (Scalar* s : {&r.true_a, &r.true_b, &r.false_a, &r.false_b}) {
        if (!s->bounds_sane()) {
            r.sane = false;
            s->mark_unbounded();
        }
    }
    return r;
}

}  // namespace bpfsim::verifier
