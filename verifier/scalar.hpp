// bpfsim::verifier::Scalar — the numeric part of the kernel's struct bpf_reg_state for a
// SCALAR_VALUE register, with the transfer and refinement rules of kernel/bpf/verifier.c as of
// Linux 6.18. This is the numeric core the verifier model builds on; pointers, liveness,
// precision tracking and linked-register ids beyond the plain `id` field are the caller's.
//
// A Scalar stands for the set of 64-bit values v with
//   var_off.contains(v), smin <= (s64)v <= smax, umin <= v <= umax,
//   s32_min <= (s32)v <= s32_max, u32_min <= (u32)v <= u32_max.
//
// Parts, and the kernel functions they model:
//   construction      unknown() __mark_reg_unknown, known() __mark_reg_known,
//                     mark_unbounded/mark64_unbounded/mark32_unbounded, mark32_known
//   bounds sync       update_bounds() __update_reg_bounds (32 then 64),
//                     deduce_bounds() __reg_deduce_bounds = __reg32_deduce_bounds +
//                     __reg64_deduce_bounds + __reg_deduce_mixed_bounds,
//                     bound_offset() __reg_bound_offset, sync() reg_bounds_sync,
//                     bounds_sane() reg_bounds_sanity_check's invariant test
//   width changes     zext_32_to_64() zext_32_to_64, coerce_to_size() coerce_reg_to_size,
//                     coerce_to_size_sx() coerce_reg_to_size_sx,
//                     coerce_subreg_to_size_sx() coerce_subreg_to_size_sx
//   ALU               alu() adjust_scalar_min_max_vals (+ scalar{32,}_min_max_<op>),
//                     alu_imm() the BPF_K form (src = __mark_reg_known(imm), imm sign-extended),
//                     mov_reg()/mov_imm() check_alu_op's BPF_MOV (incl. movsx 8/16/32),
//                     neg() BPF_NEG, end() BPF_END (the register becomes unknown in 6.18)
//   branches          is_branch_taken() is_scalar_branch_taken (1 taken, 0 not, -1 unknown),
//                     refine_cond_op() regs_refine_cond_op, branch_refine() reg_set_min_max
//   log               str() print_reg_state/print_scalar_ranges for a scalar at log level 2
#pragma once

#include "verifier/tnum.hpp"

#include <cstdint>
#include <limits>
#include <string>

namespace bpfsim::verifier {

// BPF_OP() values of the ALU class (RFC 9669 §4.1).
enum class AluOp : uint8_t {
    Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70,
    Neg = 0x80, Mod = 0x90, Xor = 0xa0, Mov = 0xb0, Arsh = 0xc0, End = 0xd0,
};

// BPF_OP() values of the JMP class (RFC 9669 §4.3). JSetFalse is the kernel's internal
// `BPF_JSET | BPF_X`, the fall-through of JSET (rev_opcode).
enum class JmpOp : uint8_t {
    Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40, Jne = 0x50, Jsgt = 0x60, Jsge = 0x70,
    Jlt = 0xa0, Jle = 0xb0, Jslt = 0xc0, Jsle = 0xd0, JSetFalse = 0x48,
};

JmpOp rev_opcode(JmpOp op);    // the condition of the fall-through edge
JmpOp flip_opcode(JmpOp op);   // the same condition with operands swapped
const char* jmp_op_name(JmpOp op);

struct Scalar {
    Tnum var_off = Tnum::unknown();
    int64_t smin = std::numeric_limits<int64_t>::min();
    int64_t smax = std::numeric_limits<int64_t>::max();
    uint64_t umin = 0;
    uint64_t umax = std::numeric_limits<uint64_t>::max();
    int32_t s32_min = std::numeric_limits<int32_t>::min();
    int32_t s32_max = std::numeric_limits<int32_t>::max();
    uint32_t u32_min = 0;
    uint32_t u32_max = std::numeric_limits<uint32_t>::max();
    uint32_t id = 0;   // scalar id for linked registers; 0 = none

    bool operator==(const Scalar&) const = default;

    static Scalar unknown() { return {}; }   // __mark_reg_unknown
    static Scalar known(uint64_t v);         // __mark_reg_known
    // Any combination of bounds/tnum; call sync() to make it canonical.
    static Scalar from_u64_range(uint64_t lo, uint64_t hi);
    static Scalar from_s64_range(int64_t lo, int64_t hi);

    bool is_const() const { return var_off.is_const(); }                          // tnum_is_const
    bool is_const(bool subreg32) const { return subreg32 ? var_off.subreg_is_const() : var_off.is_const(); }  // is_reg_const
    uint64_t const_value(bool subreg32) const { return subreg32 ? var_off.subreg().value : var_off.value; }  // reg_const_value
    bool contains(uint64_t v) const;   // v satisfies the tnum and all 8 bounds
    bool bounds_sane() const;          // reg_bounds_sanity_check: no empty range, consts agree

    void mark_unbounded();             // __mark_reg_unbounded
    void mark64_unbounded();           // __mark_reg64_unbounded
    void mark32_unbounded();           // __mark_reg32_unbounded
    void mark32_known(uint64_t v);     // __mark_reg32_known

    void update_bounds();              // __update_reg_bounds
    void deduce_bounds();              // __reg_deduce_bounds
    void bound_offset();               // __reg_bound_offset
    void sync();                       // reg_bounds_sync

    void zext_32_to_64();              // zext_32_to_64 (ALU32 results)
    void coerce_to_size(int size);     // coerce_reg_to_size: zero-extending load of 1/2/4 bytes
    void coerce_to_size_sx(int size);  // coerce_reg_to_size_sx: sign-extending load / movsx 64
    void coerce_subreg_to_size_sx(int size);   // coerce_subreg_to_size_sx: movsx 32 (w = (s8/s16)w)

    // "scalar(smin=0,smax=umax=255,var_off=(0x0; 0xff))", or "1" for a constant; a leading
    // "P" when precise. The "R1_w=" prefix is the state printer's business.
    std::string str(bool precise = false) const;
};

// ── ALU ──────────────────────────────────────────────────────────────────────
// is_safe_to_compute_dst_reg_range: for others the result is simply unknown.
bool is_safe_to_compute_dst_range(AluOp op, bool alu64, const Scalar& src);
// dst = dst <op> src for Add..Arsh, Div/Mod (signed or not: both unknown in 6.18) and Neg
// (src ignored), as adjust_scalar_min_max_vals: ALU32 computes 32-bit bounds then zero-extends.
void alu(Scalar& dst, const Scalar& src, AluOp op, bool alu64);
void alu_imm(Scalar& dst, int32_t imm, AluOp op, bool alu64);
void neg(Scalar& dst, bool alu64);
void end(Scalar& dst);   // le/be/bswap: 6.18 forgets the register (mark_reg_unknown)
// MOV rX = rY (alu64) or wX = wY; sx_bits 8/16/32 selects movsx. `next_id`, when given, hands out
// a fresh id to an unlinked non-constant src as the kernel does (++env->id_gen) so dst links to it.
void mov_reg(Scalar& dst, Scalar& src, bool alu64, int sx_bits = 0, uint32_t* next_id = nullptr);
void mov_imm(Scalar& dst, int32_t imm, bool alu64);

// ── branches ─────────────────────────────────────────────────────────────────
// 1: always taken, 0: never, -1: unknown. `same_reg` when both operands are one register.
int is_branch_taken(const Scalar& a, const Scalar& b, JmpOp op, bool jmp32, bool same_reg = false);
// Narrow both operands assuming `a op b` holds (no sync; reg_set_min_max does that).
void refine_cond_op(Scalar& a, Scalar& b, JmpOp op, bool jmp32);

struct BranchRefinement {
    Scalar true_a, true_b, false_a, false_b;
    bool sane = true;   // every state passed reg_bounds_sanity_check
};
// reg_set_min_max: both edges' operand states after refine + reg_bounds_sync. A constant
// operand of a K-form jump is Scalar::known((int64_t)imm).
BranchRefinement branch_refine(const Scalar& a, const Scalar& b, JmpOp op, bool jmp32, bool same_reg = false);

}  // namespace bpfsim::verifier
