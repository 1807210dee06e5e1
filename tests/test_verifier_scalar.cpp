// The scalar abstract domain of the verifier model (verifier/tnum.hpp, verifier/scalar.hpp):
// hand cases whose expected values follow from the Linux 6.18 rules (log strings as the
// kernel prints them), then randomized soundness checks against concrete RFC 9669 semantics.
#include "verifier/scalar.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <sstream>

using namespace bpfsim::verifier;

namespace {

Scalar unknown_and(uint64_t mask) {
    Scalar r = Scalar::unknown();
    alu_imm(r, int32_t(mask), AluOp::And, true);
    return r;
}

}  // namespace

// ───────────────────────────── hand cases ─────────────────────────────

TEST_CASE("tnum: constructors, range and the log format", "[verifier][scalar]") {
    CHECK(Tnum::range(0, 255) == Tnum{0, 0xff});
    CHECK(Tnum::range(5, 5) == Tnum::constant(5));
    CHECK(Tnum::range(16, 31) == Tnum{16, 0xf});
    CHECK(Tnum::range(0, ~uint64_t{0}).is_unknown());
    CHECK(Tnum::range(1, uint64_t{1} << 63) == Tnum::unknown());   // fls64 = 64
    CHECK(Tnum{0, 0xff}.str() == "(0x0; 0xff)");
    CHECK(Tnum::constant(0x10).str() == "(0x10; 0x0)");
    CHECK(Tnum::unknown().str() == "(0x0; 0xffffffffffffffff)");
}

TEST_CASE("tnum: arithmetic and bitwise transfer functions", "[verifier][scalar]") {
    const Tnum byte{0, 0xff};
    CHECK(tnum_add(Tnum::constant(3), Tnum::constant(4)) == Tnum::constant(7));
    CHECK(tnum_add(byte, Tnum::constant(1)) == Tnum{0, 0x1ff});
    CHECK(tnum_sub(Tnum::constant(10), Tnum::constant(3)) == Tnum::constant(7));
    CHECK(tnum_neg(Tnum::constant(1)) == Tnum::constant(~uint64_t{0}));
    CHECK(tnum_and(byte, Tnum::constant(0x0f)) == Tnum{0, 0x0f});
    CHECK(tnum_or(byte, Tnum::constant(0x100)) == Tnum{0x100, 0xff});
    CHECK(tnum_xor(Tnum{0x1, 0x2}, Tnum::constant(0x3)) == Tnum{0x0, 0x2});   // bit 0 known 1^1, bit 1 unknown
    CHECK(tnum_mul(Tnum::constant(6), Tnum::constant(7)) == Tnum::constant(42));
    // x in {0,1} times 3: union of 0 and 3 is (0x0; 0x3)
    CHECK(tnum_mul(Tnum{0, 1}, Tnum::constant(3)) == Tnum{0, 3});
    // multiplying by a power of two is a shift
    CHECK(tnum_mul(byte, Tnum::constant(4)) == Tnum{0, 0x3fc});
    CHECK(tnum_intersect(byte, Tnum{0x10, 0xf}) == Tnum{0x10, 0xf});
    CHECK(tnum_union(Tnum::constant(0b1010), Tnum::constant(0b0101)) == Tnum{0, 0xf});
    CHECK(tnum_union(Tnum::constant(4), Tnum::constant(6)) == Tnum{4, 2});
    CHECK(Tnum{0x80000000, 0}.arshift(4, 32) == Tnum{0xf8000000, 0});
    CHECK(Tnum{uint64_t{1} << 63, 0}.arshift(60, 64) == Tnum{~uint64_t{7}, 0});
    CHECK(Tnum{0x1234567800000000, 0xff}.subreg() == Tnum{0, 0xff});
    CHECK(Tnum{0x1234567800000001, 0xff00}.clear_subreg() == Tnum{0x1234567800000000, 0});
    CHECK(Tnum{0xffffffff00000000, 0}.with_subreg(Tnum{5, 2}) == Tnum{0xffffffff00000005, 2});
    CHECK(Tnum::unknown().const_subreg(7) == Tnum{7, 0xffffffff00000000});
    CHECK(Tnum{0x1200, 0xff}.cast(1) == Tnum{0, 0xff});
    CHECK(byte.in(Tnum::constant(0x7f)));
    CHECK_FALSE(byte.in(Tnum::constant(0x100)));
    CHECK(byte.in(Tnum{0x10, 0x0f}));
    CHECK_FALSE(Tnum{0x10, 0x0f}.in(byte));
    CHECK(Tnum{0x10, 0x0f}.equals_const(0x10) == false);
    CHECK(Tnum::constant(0x10).equals_const(0x10));
    CHECK(Tnum{0x10, 0x30}.is_aligned(16));
    CHECK_FALSE(Tnum{0x10, 0x31}.is_aligned(16));
    CHECK_FALSE(Tnum{0x1, 0x0}.overlaps(Tnum{0x2, 0x0}));
    CHECK(Tnum{0x1, 0x2}.overlaps(Tnum{0x3, 0x0}));
}

TEST_CASE("scalar: log strings follow print_scalar_ranges", "[verifier][scalar]") {
    CHECK(Scalar::unknown().str() == "scalar()");
    CHECK(Scalar::known(1).str() == "1");
    CHECK(Scalar::known(1).str(true) == "P1");
    CHECK(Scalar::known(~uint64_t{0}).str() == "-1");
    CHECK(Scalar::known(0x100000000).str() == "0x100000000");
    // r0 &= 0xff on an unknown r0
    CHECK(unknown_and(0xff).str() == "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))");
    // w0 = w0 on an unknown r0 (zero-extension)
    Scalar w = Scalar::unknown(), src = Scalar::unknown();
    mov_reg(w, src, false);
    CHECK(w.str() == "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))");
    // id and P prefix
    Scalar linked = unknown_and(0xff);
    linked.id = 3;
    CHECK(linked.str(true) == "Pscalar(id=3,smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))");
    // a negative range: signed bounds never merge with the unsigned ones
    Scalar n = Scalar::from_s64_range(-8, -1);
    CHECK(n.str() ==
          "scalar(smin=smin32=-8,smax=smax32=-1,umin=0xfffffffffffffff8,umin32=0xfffffff8,"
          "var_off=(0xfffffffffffffff8; 0x7))");
}

TEST_CASE("scalar: branch refinement of an unknown against a constant", "[verifier][scalar]") {
    const Scalar r = Scalar::unknown(), k10 = Scalar::known(10);
    CHECK(is_branch_taken(r, k10, JmpOp::Jgt, false) == -1);
    const BranchRefinement b = branch_refine(r, k10, JmpOp::Jgt, false);
    CHECK(b.sane);
    CHECK(b.false_a.str() == "scalar(smin=smin32=0,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))");
    CHECK(b.true_a.umin == 11);
    CHECK(b.true_a.str() == "scalar(umin=11)");
    CHECK(b.false_b == k10);
    // now decided on the refined state
    CHECK(is_branch_taken(b.false_a, k10, JmpOp::Jgt, false) == 0);
    CHECK(is_branch_taken(b.false_a, k10, JmpOp::Jle, false) == 1);
    CHECK(is_branch_taken(b.false_a, Scalar::known(11), JmpOp::Jeq, false) == 0);
    CHECK(is_branch_taken(b.false_a, Scalar::known(16), JmpOp::Jset, false) == 0);
    CHECK(is_branch_taken(b.true_a, Scalar::known(0), JmpOp::Jne, false) == 1);

    // signed: if r s< 0 on unknown
    const BranchRefinement s = branch_refine(r, Scalar::known(0), JmpOp::Jslt, false);
    CHECK(s.true_a.smax == -1);
    CHECK(s.true_a.umin == uint64_t{1} << 63);
    CHECK(s.false_a.str() == "scalar(smin=0,umax=0x7fffffffffffffff,var_off=(0x0; 0x7fffffffffffffff))");

    // 32-bit: if w r > 5 learns only the subregister
    const BranchRefinement j32 = branch_refine(r, Scalar::known(5), JmpOp::Jgt, true);
    CHECK(j32.false_a.u32_max == 5);
    CHECK(j32.false_a.umax == 0xffffffff00000005);
    CHECK(j32.false_a.var_off == Tnum{0, 0xffffffff00000007});

    // JNE at the edge of a range
    Scalar byte = unknown_and(0xff);
    const BranchRefinement ne = branch_refine(byte, Scalar::known(0), JmpOp::Jne, false);
    CHECK(ne.true_a.umin == 1);
    CHECK(ne.false_a == Scalar::known(0));

    // JSET with a single bit sets that bit; the fall-through clears it
    const BranchRefinement js = branch_refine(byte, Scalar::known(0x10), JmpOp::Jset, false);
    CHECK(js.true_a.var_off == Tnum{0x10, 0xef});
    CHECK(js.false_a.var_off == Tnum{0, 0xef});
    CHECK(js.false_a.umax == 0xef);

    // comparing a register with itself decides ordering ops outright
    CHECK(is_branch_taken(byte, byte, JmpOp::Jle, false, true) == 1);
    CHECK(is_branch_taken(byte, byte, JmpOp::Jne, false, true) == 0);
    CHECK(is_branch_taken(byte, byte, JmpOp::Jset, false, true) == -1);
}

TEST_CASE("scalar: ALU transfer hand cases", "[verifier][scalar]") {
    SECTION("add and sub keep exact ranges without overflow") {
        Scalar r = unknown_and(0xff);
        alu_imm(r, 10, AluOp::Add, true);
        CHECK(r.umin == 10);
        CHECK(r.umax == 265);
        CHECK(r.smin == 10);
        CHECK(r.var_off == Tnum{0, 0x1ff});
        alu_imm(r, 20, AluOp::Sub, true);
        CHECK(r.smin == -10);
        CHECK(r.smax == 245);
        CHECK(r.umin == 0);   // some results wrap below zero
        CHECK(r.umax == ~uint64_t{0});
    }
    SECTION("unsigned add where every sum wraps keeps the wrapped range") {
        Scalar r = Scalar::from_u64_range(~uint64_t{0} - 5, ~uint64_t{0});
        alu_imm(r, 10, AluOp::Add, true);
        CHECK(r.umin == 4);
        CHECK(r.umax == 9);
    }
    SECTION("alu32 add zero-extends") {
        Scalar r = Scalar::known(0xffffffff);
        alu_imm(r, 1, AluOp::Add, false);
        CHECK(r == Scalar::known(0));
        Scalar u = Scalar::unknown();
        alu_imm(u, 1, AluOp::Add, false);
        CHECK(u.umax == 0xffffffff);
        CHECK(u.str() == "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))");
    }
    SECTION("mul of small ranges") {
        Scalar r = unknown_and(0xf);
        alu_imm(r, 3, AluOp::Mul, true);
        CHECK(r.umax == 45);
        CHECK(r.smax == 45);
        CHECK(r.smin == 0);
    }
    SECTION("div and mod forget the register in 6.18") {
        Scalar r = unknown_and(0xff);
        alu_imm(r, 2, AluOp::Div, true);
        CHECK(r == Scalar::unknown());
        Scalar m = unknown_and(0xff);
        alu_imm(m, 7, AluOp::Mod, false);
        CHECK(m == Scalar::unknown());
    }
    SECTION("shifts by a constant") {
        Scalar r = unknown_and(0xff);
        alu_imm(r, 4, AluOp::Lsh, true);
        CHECK(r.var_off == Tnum{0, 0xff0});
        CHECK(r.umax == 0xff0);
        alu_imm(r, 8, AluOp::Rsh, true);
        CHECK(r.var_off == Tnum{0, 0xf});
        CHECK(r.umax == 15);
        // <<32 then s>>32 sign-extends a subregister; a non-negative one stays bounded
        Scalar s = unknown_and(0x7f);
        alu_imm(s, 32, AluOp::Lsh, true);
        CHECK(s.smax == int64_t{0x7f} << 32);
        alu_imm(s, 32, AluOp::Arsh, true);
        CHECK(s.str() == "scalar(smin=smin32=0,smax=umax=smax32=umax32=127,var_off=(0x0; 0x7f))");
        // a shift by an unknown amount forgets everything
        Scalar t = unknown_and(0xff);
        alu(t, unknown_and(3), AluOp::Lsh, true);
        CHECK(t == Scalar::unknown());
        // ... and so does a shift by >= the width
        Scalar w = unknown_and(0xff);
        alu_imm(w, 32, AluOp::Lsh, false);
        CHECK(w == Scalar::unknown());
    }
    SECTION("and/or/xor") {
        Scalar r = Scalar::unknown();
        alu_imm(r, 0xf0, AluOp::And, true);
        alu_imm(r, 0x1, AluOp::Or, true);
        CHECK(r.var_off == Tnum{0x1, 0xf0});
        CHECK(r.umin == 1);
        CHECK(r.umax == 0xf1);
        alu_imm(r, 0xff, AluOp::Xor, true);
        CHECK(r.var_off == Tnum{0x0e, 0xf0});
        CHECK(r.umax == 0xfe);
        // negative immediates are sign-extended in 64-bit ops
        Scalar a = Scalar::unknown();
        alu_imm(a, -8, AluOp::And, true);
        CHECK(a.var_off == Tnum{0, ~uint64_t{7}});
    }
    SECTION("neg") {
        Scalar r = unknown_and(0xf);
        alu_imm(r, 1, AluOp::Add, true);   // [1, 16]
        neg(r, true);
        CHECK(r.smin == -16);
        CHECK(r.smax == -1);
        Scalar c = Scalar::known(5);
        neg(c, false);
        CHECK(c == Scalar::known(0xfffffffb));
    }
    SECTION("mov and movsx") {
        Scalar d, s = Scalar::known(0x80);
        mov_reg(d, s, true, 8);
        CHECK(d == Scalar::known(~uint64_t{0x7f}));
        mov_reg(d, s, false, 8);
        CHECK(d == Scalar::known(0xffffff80));
        mov_imm(d, -1, false);
        CHECK(d == Scalar::known(0xffffffff));
        mov_imm(d, -1, true);
        CHECK(d == Scalar::known(~uint64_t{0}));
        // sign-extending an unknown byte
        Scalar u = Scalar::unknown(), dst;
        mov_reg(dst, u, true, 8);
        CHECK(dst.str() == "scalar(smin=smin32=-128,smax=smax32=127)");
        // movsx of a range that stays non-negative keeps it and links the registers
        uint32_t ids = 0;
        Scalar small = unknown_and(0x7f);
        mov_reg(dst, small, true, 8, &ids);
        CHECK(small.id == 1);
        CHECK(dst.id == 1);
        CHECK(dst.umax == 0x7f);
        Scalar big = unknown_and(0xff), d2;
        mov_reg(d2, big, true, 8, &ids);
        CHECK(big.id == 0);
        CHECK(d2.id == 0);
    }
    SECTION("end forgets the register") {
        Scalar r = Scalar::known(5);
        end(r);
        CHECK(r == Scalar::unknown());
    }
}

TEST_CASE("scalar: narrow and sign-extending loads", "[verifier][scalar]") {
    Scalar r = Scalar::from_u64_range(0x100, 0x1ff);
    r.coerce_to_size(1);
    CHECK(r.str() == "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))");
    Scalar c = Scalar::from_u64_range(0x1005, 0x1007);
    c.coerce_to_size(1);
    CHECK(c.umin == 5);
    CHECK(c.umax == 7);
    Scalar sx = Scalar::unknown();
    sx.coerce_to_size_sx(2);
    CHECK(sx.str() == "scalar(smin=smin32=-32768,smax=smax32=32767)");
    Scalar neg = Scalar::from_s64_range(0x80, 0x8f);   // s8: -128 .. -113
    neg.coerce_to_size_sx(1);
    CHECK(neg.smin == -128);
    CHECK(neg.smax == -113);
    CHECK(neg.var_off == Tnum::range(uint64_t(-128), uint64_t(-113)));
}

// ───────────────────────────── soundness ─────────────────────────────

namespace {

struct Gen {
    std::mt19937_64 rng;
    explicit Gen(uint64_t seed) : rng(seed) {}

    uint64_t u() { return rng(); }
    uint64_t below(uint64_t n) { return n ? rng() % n : 0; }
    bool coin(unsigned pct) { return below(100) < pct; }

    // Values near the places where the rules have edges.
    uint64_t value() {
        static constexpr uint64_t bases[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
                                             0xffffffff, 0x100000000, 0x7fffffffffffffff, 0x8000000000000000,
                                             0xffffffffffffffff, 0xffffffff80000000};
        switch (below(5)) {
        case 0: return u();
        case 1: return below(64);
        case 2: return bases[below(std::size(bases))] + below(9) - 4;
        case 3: return u() >> below(64);
        default: return uint64_t(int64_t(u()) >> below(64));
        }
    }

    // A random abstract value with a known member x.
    Scalar scalar(uint64_t& x) {
        x = value();
        Scalar s;
        switch (below(7)) {
        case 0: return Scalar::known(x);
        case 1: {
            uint64_t mask = coin(50) ? (uint64_t{1} << below(64)) - 1 : u() & u();
            s.var_off = {x & ~mask, mask};
            break;
        }
        case 2: {
            uint64_t lo = x - std::min(x, below(1) ? u() : value() >> below(64));
            uint64_t hi = x + std::min(~x, value() >> below(64));
            s.umin = lo, s.umax = hi;
            break;
        }
        case 3: {
            int64_t sx = int64_t(x);
            uint64_t d1 = value() >> (1 + below(63)), d2 = value() >> (1 + below(63));
            s.smin = sx - int64_t(std::min<uint64_t>(d1, uint64_t(sx) - uint64_t(INT64_MIN)));
            s.smax = sx + int64_t(std::min<uint64_t>(d2, uint64_t(INT64_MAX) - uint64_t(sx)));
            break;
        }
        case 4: {
            uint32_t x32 = uint32_t(x);
            uint32_t d1 = uint32_t(value() >> below(64)), d2 = uint32_t(value() >> below(64));
            s.u32_min = x32 - std::min(x32, d1);
            s.u32_max = x32 + std::min(~x32, d2);
            int32_t s32 = int32_t(x32);
            uint32_t e1 = uint32_t(value() >> (1 + below(63))), e2 = uint32_t(value() >> (1 + below(63)));
            e1 = std::min<uint32_t>(e1 & 0x7fffffff, uint32_t(int64_t(s32) - INT32_MIN));
            e2 = std::min<uint32_t>(e2 & 0x7fffffff, uint32_t(INT32_MAX - int64_t(s32)));
            s.s32_min = int32_t(int64_t(s32) - e1);
            s.s32_max = int32_t(int64_t(s32) + e2);
            break;
        }
        case 5: {   // a byte/halfword/word read, then widened
            int size = 1 << below(3);
            uint64_t mask = (uint64_t{1} << (size * 8)) - 1;
            x &= mask;
            s.var_off = {0, mask};
            break;
        }
        default: {   // tnum plus range
            uint64_t mask = (uint64_t{1} << below(64)) - 1;
            s.var_off = {x & ~mask, mask};
            s.umin = x - std::min(x, below(1000));
            s.umax = x + std::min(~x, below(1000));
            break;
        }
        }
        s.sync();
        // Sometimes derive a shape through an operation, carrying x along.
        if (coin(25)) {
            int32_t imm = int32_t(value());
            switch (below(4)) {
            case 0: alu_imm(s, imm, AluOp::Add, true); x += uint64_t(int64_t(imm)); break;
            case 1: alu_imm(s, imm, AluOp::And, true); x &= uint64_t(int64_t(imm)); break;
            case 2: alu_imm(s, imm, AluOp::Or, false); x = uint32_t(x) | uint32_t(imm); break;
            default: alu_imm(s, imm, AluOp::Mul, true); x *= uint64_t(int64_t(imm)); break;
            }
        }
        return s;
    }

    // Some member of s other than the seed when one is easy to find.
    uint64_t member(const Scalar& s, uint64_t x) {
        for (int i = 0; i < 6; i++) {
            uint64_t c;
            switch (below(6)) {
            case 0: c = s.umin + below(4); break;
            case 1: c = s.umax - below(4); break;
            case 2: c = uint64_t(s.smin) + below(4); break;
            case 3: c = uint64_t(s.smax) - below(4); break;
            case 4: c = (s.umin & ~uint64_t{0xffffffff}) | (s.u32_min + below(3)); break;
            default: c = s.var_off.value | (u() & s.var_off.mask); break;
            }
            if (s.contains(c)) return c;
            c = s.var_off.value | (c & s.var_off.mask);   // project into the tnum and retry
            if (s.contains(c)) return c;
        }
        return x;
    }
};

// RFC 9669 semantics.
uint64_t concrete_alu(AluOp op, bool alu64, bool is_signed, uint64_t d, uint64_t s) {
    if (alu64) {
        int64_t sd = int64_t(d), ss = int64_t(s);
        switch (op) {
        case AluOp::Add: return d + s;
        case AluOp::Sub: return d - s;
        case AluOp::Mul: return d * s;
        case AluOp::Div:
            if (!is_signed) return s ? d / s : 0;
            if (!s) return 0;
            if (ss == -1) return uint64_t(0) - d;
            return uint64_t(sd / ss);
        case AluOp::Mod:
            if (!is_signed) return s ? d % s : d;
            if (!s) return d;
            if (ss == -1) return 0;
            return uint64_t(sd % ss);
        case AluOp::Or: return d | s;
        case AluOp::And: return d & s;
        case AluOp::Xor: return d ^ s;
        case AluOp::Lsh: return d << (s & 63);
        case AluOp::Rsh: return d >> (s & 63);
        case AluOp::Arsh: return uint64_t(sd >> (s & 63));
        case AluOp::Neg: return uint64_t(0) - d;
        default: return d;
        }
    }
    uint32_t d32 = uint32_t(d), s32 = uint32_t(s);
    int32_t sd = int32_t(d32), ss = int32_t(s32);
    uint32_t r;
    switch (op) {
    case AluOp::Add: r = d32 + s32; break;
    case AluOp::Sub: r = d32 - s32; break;
    case AluOp::Mul: r = d32 * s32; break;
    case AluOp::Div:
        if (!is_signed) r = s32 ? d32 / s32 : 0;
        else if (!s32) r = 0;
        else if (ss == -1) r = 0u - d32;
        else r = uint32_t(sd / ss);
        break;
    case AluOp::Mod:
        if (!is_signed) r = s32 ? d32 % s32 : d32;
        else if (!s32) r = d32;
        else if (ss == -1) r = 0;
        else r = uint32_t(sd % ss);
        break;
    case AluOp::Or: r = d32 | s32; break;
    case AluOp::And: r = d32 & s32; break;
    case AluOp::Xor: r = d32 ^ s32; break;
    case AluOp::Lsh: r = d32 << (s32 & 31); break;
    case AluOp::Rsh: r = d32 >> (s32 & 31); break;
    case AluOp::Arsh: r = uint32_t(sd >> (s32 & 31)); break;
    case AluOp::Neg: r = 0u - d32; break;
    default: r = d32; break;
    }
    return r;
}

bool concrete_cond(JmpOp op, bool jmp32, uint64_t a, uint64_t b) {
    if (jmp32) {
        a = uint32_t(a);
        b = uint32_t(b);
    }
    const int64_t sa = jmp32 ? int64_t(int32_t(uint32_t(a))) : int64_t(a);
    const int64_t sb = jmp32 ? int64_t(int32_t(uint32_t(b))) : int64_t(b);
    switch (op) {
    case JmpOp::Jeq: return a == b;
    case JmpOp::Jne: return a != b;
    case JmpOp::Jgt: return a > b;
    case JmpOp::Jge: return a >= b;
    case JmpOp::Jlt: return a < b;
    case JmpOp::Jle: return a <= b;
    case JmpOp::Jsgt: return sa > sb;
    case JmpOp::Jsge: return sa >= sb;
    case JmpOp::Jslt: return sa < sb;
    case JmpOp::Jsle: return sa <= sb;
    case JmpOp::Jset: return (a & b) != 0;
    case JmpOp::JSetFalse: return (a & b) == 0;
    }
    return false;
}

std::string describe(const Scalar& s) {
    std::ostringstream o;
    o << s.str() << " [u " << std::hex << s.umin << ".." << s.umax << " s " << s.smin << ".." << s.smax << " u32 "
      << s.u32_min << ".." << s.u32_max << " s32 " << s.s32_min << ".." << s.s32_max << " " << s.var_off.str() << "]";
    return o.str();
}

constexpr int kAbstractPairs = 12000;
constexpr int kMembers = 18;   // 12000 * 18 = 216k concrete checks per case

}  // namespace

TEST_CASE("soundness: sync keeps every member", "[verifier][scalar]") {
    Gen g(1);
    long checks = 0;
    for (int i = 0; i < 60000; i++) {
        uint64_t x;
        Scalar s = g.scalar(x);
        REQUIRE(s.contains(x));
        REQUIRE(s.bounds_sane());
        for (int k = 0; k < 4; k++) {
            uint64_t m = g.member(s, x);
            Scalar t = s;
            t.sync();
            ++checks;
            if (!t.contains(m)) FAIL_CHECK("sync lost " << m << " of " << describe(s));
        }
    }
    CHECK(checks == 240000);
}

TEST_CASE("soundness: ALU transfer functions contain every concrete result", "[verifier][scalar]") {
    struct Case {
        AluOp op;
        bool is_signed;
    };
    const Case cases[] = {{AluOp::Add, false}, {AluOp::Sub, false}, {AluOp::Mul, false}, {AluOp::Div, false},
                          {AluOp::Div, true},  {AluOp::Mod, false}, {AluOp::Mod, true},  {AluOp::And, false},
                          {AluOp::Or, false},  {AluOp::Xor, false}, {AluOp::Lsh, false}, {AluOp::Rsh, false},
                          {AluOp::Arsh, false}, {AluOp::Neg, false}};
    for (const Case& c : cases) {
        for (bool alu64 : {true, false}) {
            Gen g(uint64_t(c.op) * 7 + alu64 + c.is_signed * 1000);
            long checks = 0, computed = 0;
            for (int i = 0; i < kAbstractPairs; i++) {
                uint64_t x, y;
                Scalar d = g.scalar(x);
                Scalar s;
                if (c.op == AluOp::Lsh || c.op == AluOp::Rsh || c.op == AluOp::Arsh) {
                    if (g.coin(85)) {   // the computed path needs a constant in range
                        y = g.below(alu64 ? 64 : 32);
                        s = Scalar::known(y);
                    } else {
                        s = g.scalar(y);
                    }
                } else if (g.coin(30)) {
                    y = uint64_t(int64_t(int32_t(g.value())));   // BPF_K
                    s = Scalar::known(y);
                } else {
                    s = g.scalar(y);
                }
                Scalar r = d;
                alu(r, s, c.op, alu64);
                if (is_safe_to_compute_dst_range(c.op, alu64, s)) ++computed;
                for (int k = 0; k < kMembers; k++) {
                    const uint64_t dv = k ? g.member(d, x) : x;
                    const uint64_t sv = k ? g.member(s, y) : y;
                    const uint64_t out = concrete_alu(c.op, alu64, c.is_signed, dv, sv);
                    ++checks;
                    if (!r.contains(out))
                        FAIL_CHECK("op 0x" << std::hex << int(c.op) << (alu64 ? " alu64" : " alu32") << ": " << dv
                                           << " op " << sv << " = " << out << " not in " << describe(r) << " from "
                                           << describe(d) << " and " << describe(s));
                }
                if (r.is_const() || r.var_off.subreg_is_const()) CHECK(r.bounds_sane());
            }
            CHECK(checks >= 200000);
            if (c.op != AluOp::Div && c.op != AluOp::Mod) CHECK(computed > kAbstractPairs / 2);
        }
    }
}

TEST_CASE("soundness: moves, movsx and narrowing loads", "[verifier][scalar]") {
    Gen g(77);
    long checks = 0;
    for (int i = 0; i < 40000; i++) {
        uint64_t x;
        const Scalar s = g.scalar(x);
        for (int variant = 0; variant < 6; variant++) {
            Scalar r, src = s;
            switch (variant) {
            case 0: mov_reg(r, src, false); break;
            case 1: mov_reg(r, src, true, 8); break;
            case 2: mov_reg(r, src, true, 16); break;
            case 3: mov_reg(r, src, true, 32); break;
            case 4: mov_reg(r, src, false, 8); break;
            default: mov_reg(r, src, false, 16); break;
            }
            for (int k = 0; k < 3; k++) {
                const uint64_t v = k ? g.member(s, x) : x;
                uint64_t out;
                switch (variant) {
                case 0: out = uint32_t(v); break;
                case 1: out = uint64_t(int64_t(int8_t(v))); break;
                case 2: out = uint64_t(int64_t(int16_t(v))); break;
                case 3: out = uint64_t(int64_t(int32_t(v))); break;
                case 4: out = uint32_t(int32_t(int8_t(v))); break;
                default: out = uint32_t(int32_t(int16_t(v))); break;
                }
                ++checks;
                if (!r.contains(out))
                    FAIL_CHECK("mov variant " << variant << ": " << std::hex << v << " -> " << out << " not in "
                                              << describe(r) << " from " << describe(s));
            }
        }
        for (int size : {1, 2, 4}) {
            Scalar z = s, sx = s;
            z.coerce_to_size(size);
            sx.coerce_to_size_sx(size);
            const uint64_t mask = (uint64_t{1} << (size * 8)) - 1;
            for (int k = 0; k < 2; k++) {
                const uint64_t v = k ? g.member(s, x) : x;
                const uint64_t zv = v & mask;
                const uint64_t sv = size == 1 ? uint64_t(int64_t(int8_t(v)))
                                  : size == 2 ? uint64_t(int64_t(int16_t(v)))
                                              : uint64_t(int64_t(int32_t(v)));
                checks += 2;
                if (!z.contains(zv)) FAIL_CHECK("coerce " << size << ": " << v << " not in " << describe(z));
                if (!sx.contains(sv)) FAIL_CHECK("coerce_sx " << size << ": " << v << " not in " << describe(sx));
            }
        }
    }
    CHECK(checks >= 200000);
}

TEST_CASE("soundness: is_branch_taken and branch refinement", "[verifier][scalar]") {
    const JmpOp ops[] = {JmpOp::Jeq, JmpOp::Jne, JmpOp::Jgt, JmpOp::Jge, JmpOp::Jlt, JmpOp::Jle,
                         JmpOp::Jsgt, JmpOp::Jsge, JmpOp::Jslt, JmpOp::Jsle, JmpOp::Jset};
    for (JmpOp op : ops) {
        for (bool jmp32 : {false, true}) {
            Gen g(uint64_t(op) * 13 + jmp32);
            long checks = 0, decided = 0, refined = 0;
            for (int i = 0; i < kAbstractPairs; i++) {
                uint64_t x, y;
                const Scalar a = g.scalar(x);
                Scalar b;
                switch (g.below(4)) {
                case 0:   // a K operand
                    y = uint64_t(int64_t(int32_t(g.value())));
                    b = Scalar::known(y);
                    break;
                case 1:   // a constant at one of a's edges
                    y = g.coin(50) ? a.umin + g.below(2) : uint64_t(a.smax) - g.below(2);
                    if (jmp32) y = g.coin(50) ? a.u32_max : uint32_t(a.s32_min);
                    b = Scalar::known(y);
                    break;
                case 2:   // a single bit, for JSET
                    y = uint64_t{1} << g.below(jmp32 ? 32 : 64);
                    b = Scalar::known(y);
                    break;
                default:
                    b = g.scalar(y);
                    break;
                }
                // `if rX op rX`: decided from the op alone (and the sign for JSET)
                const int self = is_branch_taken(a, a, op, jmp32, true);
                if (self >= 0) {
                    const uint64_t av = g.member(a, x);
                    ++checks;
                    if (concrete_cond(op, jmp32, av, av) != bool(self))
                        FAIL_CHECK(jmp_op_name(op) << " same register claimed " << self << " for " << av);
                }
                const int taken = is_branch_taken(a, b, op, jmp32);
                const BranchRefinement r = branch_refine(a, b, op, jmp32);
                if (taken >= 0) ++decided;
                else ++refined;
                for (int k = 0; k < kMembers; k++) {
                    const uint64_t av = k ? g.member(a, x) : x;
                    const uint64_t bv = k ? g.member(b, y) : y;
                    const bool cond = concrete_cond(op, jmp32, av, bv);
                    ++checks;
                    if (taken >= 0) {
                        if (cond != bool(taken))
                            FAIL_CHECK(jmp_op_name(op) << (jmp32 ? " jmp32" : "") << " claimed " << taken << " but "
                                                       << std::hex << av << ", " << bv << " disagrees; "
                                                       << describe(a) << " vs " << describe(b));
                        continue;
                    }
                    const Scalar& ra = cond ? r.true_a : r.false_a;
                    const Scalar& rb = cond ? r.true_b : r.false_b;
                    if (!ra.contains(av) || !rb.contains(bv))
                        FAIL_CHECK(jmp_op_name(op) << (jmp32 ? " jmp32" : "") << (cond ? " true" : " false")
                                                   << " edge lost " << std::hex << av << ", " << bv << ": "
                                                   << describe(a) << " vs " << describe(b) << " -> " << describe(ra)
                                                   << " / " << describe(rb));
                }
            }
            CHECK(checks >= 200000);
            CHECK(decided > 0);
            CHECK(refined > 0);
        }
    }
}

TEST_CASE("soundness: tnum operations against concrete members", "[verifier][scalar]") {
    Gen g(99);
    long checks = 0;
    auto rand_tnum = [&](uint64_t& x) {
        x = g.value();
        uint64_t mask = g.coin(50) ? (uint64_t{1} << g.below(64)) - 1 : g.u() & g.u() & g.u();
        return Tnum{x & ~mask, mask};
    };
    for (int i = 0; i < 50000; i++) {
        uint64_t x, y;
        const Tnum a = rand_tnum(x), b = rand_tnum(y);
        const Tnum add = tnum_add(a, b), sub = tnum_sub(a, b), mul = tnum_mul(a, b), an = tnum_and(a, b),
                   o = tnum_or(a, b), xo = tnum_xor(a, b), un = tnum_union(a, b), ng = tnum_neg(a);
        for (int k = 0; k < 4; k++) {
            const uint64_t av = k ? a.value | (g.u() & a.mask) : x;
            const uint64_t bv = k ? b.value | (g.u() & b.mask) : y;
            checks += 8;
            CHECK((add.contains(av + bv) && sub.contains(av - bv) && mul.contains(av * bv) &&
                   an.contains(av & bv) && o.contains(av | bv) && xo.contains(av ^ bv) && un.contains(av) &&
                   un.contains(bv) && ng.contains(0 - av)));
            if (av == bv || a.overlaps(b)) continue;
            CHECK(av != bv);   // no overlap: no common member
        }
        const uint64_t lo = std::min(x, y), hi = std::max(x, y);
        const Tnum r = Tnum::range(lo, hi);
        CHECK((r.contains(lo) && r.contains(hi) && r.contains(lo + (hi - lo) / 2)));
        checks += 3;
    }
    CHECK(checks >= 200000);
}
