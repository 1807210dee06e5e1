// Direct x86-64 encodings of the forms most BPF instructions become: ALU on two registers or a
// register and an immediate, loads and stores at [base + disp], compares. The JIT writes these
// straight into its buffer; xbyak's general encoder (operand objects, a room check per byte)
// took a third of the compile time of a large program. Everything else still goes through xbyak.
//
// Registers are hardware numbers (rax 0 ... r15 15). Each function appends one instruction to
// an X86Code; tests/test_jit.cpp compares every form, register pair and displacement class
// with what xbyak encodes.
#pragma once

#include <cstdint>

namespace bpfsim::vm::x86 {

// The bytes of an instruction or a short sequence, at most 16 (the longest instruction here is
// 12: REX C7 ModRM SIB disp32 imm32; the JIT's longest sequence, a shift by a register, 12).
struct X86Code {
    uint8_t b[16];
    unsigned n = 0;
    void put(uint8_t x) { b[n++] = x; }
    void put16(uint32_t v) {
        put(static_cast<uint8_t>(v));
        put(static_cast<uint8_t>(v >> 8));
    }
    void put32(uint32_t v) {
        put16(v);
        put16(v >> 16);
    }
};

// Opcodes. Two-byte ones carry the 0x0f escape in the high byte.
enum : uint16_t {
    kAddRmR = 0x01, kOrRmR = 0x09, kAndRmR = 0x21, kSubRmR = 0x29, kXorRmR = 0x31, kCmpRmR = 0x39,
    kTestRmR = 0x85, kMovRmR = 0x89, kMovRRm = 0x8b, kMovRmR8 = 0x88, kMovsxd = 0x63,
    kImulRRm = 0x0faf, kMovzx8 = 0x0fb6, kMovzx16 = 0x0fb7, kMovsx8 = 0x0fbe, kMovsx16 = 0x0fbf,
};
// Group-1 extensions (the /digit of 0x81 and 0x83).
enum : uint8_t { kExtAdd = 0, kExtOr = 1, kExtAnd = 4, kExtSub = 5, kExtXor = 6, kExtCmp = 7 };
// Group-2 (shifts by an immediate, 0xc1 /digit).
enum : uint8_t { kExtShl = 4, kExtShr = 5, kExtSar = 7 };

inline bool fits8(int32_t v) { return v == static_cast<int8_t>(v); }

// REX with W, R (reg's bit 3), B (rm's bit 3); left out when it would be 0x40 unless `force`
// (a byte operand in spl, bpl, sil or dil needs it).
inline void rex(X86Code& c, bool w, unsigned reg, unsigned rm, bool force = false) {
    const auto r = static_cast<uint8_t>(0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((rm >> 3) & 1));
    if (r != 0x40 || force) c.put(r);
}

inline void opcode(X86Code& c, uint16_t op) {
    if (op > 0xff) c.put(static_cast<uint8_t>(op >> 8));
    c.put(static_cast<uint8_t>(op));
}

// ModRM (and SIB, displacement) of [base + disp]: mod 00 without a displacement unless the
// base is rbp/r13 (that encoding means rip-relative), disp8 when it fits; rsp/r12 need a SIB.
inline void mem_operand(X86Code& c, unsigned reg, unsigned base, int32_t disp) {
    const unsigned mod = disp == 0 && (base & 7) != 5 ? 0 : fits8(disp) ? 1 : 2;
    c.put(static_cast<uint8_t>(mod << 6 | (reg & 7) << 3 | (base & 7)));
    if ((base & 7) == 4) c.put(0x24);
    if (mod == 1) c.put(static_cast<uint8_t>(disp));
    else if (mod == 2) c.put32(static_cast<uint32_t>(disp));
}

// op rm, reg (or op reg, rm for kImulRRm, kMovRRm and the movzx/movsx forms): both registers.
inline void rr(X86Code& c, bool w, uint16_t op, unsigned reg, unsigned rm) {
    rex(c, w, reg, rm);
    opcode(c, op);
    c.put(static_cast<uint8_t>(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

// Group-1 op rm, imm (sign-extended: imm8 when it fits; rax's own short form for an imm32).
inline void ri(X86Code& c, bool w, uint8_t ext, unsigned rm, int32_t imm) {
    rex(c, w, 0, rm);
    if (rm == 0 && !fits8(imm)) {
        c.put(static_cast<uint8_t>(ext << 3 | 5));
        c.put32(static_cast<uint32_t>(imm));
        return;
    }
    c.put(fits8(imm) ? 0x83 : 0x81);
    c.put(static_cast<uint8_t>(0xc0 | ext << 3 | (rm & 7)));
    if (fits8(imm)) c.put(static_cast<uint8_t>(imm));
    else c.put32(static_cast<uint32_t>(imm));
}

// imul reg, rm, imm.
inline void imul_ri(X86Code& c, bool w, unsigned reg, unsigned rm, int32_t imm) {
    rex(c, w, reg, rm);
    c.put(fits8(imm) ? 0x6b : 0x69);
    c.put(static_cast<uint8_t>(0xc0 | (reg & 7) << 3 | (rm & 7)));
    if (fits8(imm)) c.put(static_cast<uint8_t>(imm));
    else c.put32(static_cast<uint32_t>(imm));
}

// test rm, imm32 (sign-extended in 64-bit form; rax's short form).
inline void test_ri(X86Code& c, bool w, unsigned rm, uint32_t imm) {
    rex(c, w, 0, rm);
    if (rm == 0) {
        c.put(0xa9);
    } else {
        c.put(0xf7);
        c.put(static_cast<uint8_t>(0xc0 | (rm & 7)));
    }
    c.put32(imm);
}

// Shift rm by an immediate (1-63).
inline void shift_ri(X86Code& c, bool w, uint8_t ext, unsigned rm, uint8_t count) {
    rex(c, w, 0, rm);
    c.put(count == 1 ? 0xd1 : 0xc1);
    c.put(static_cast<uint8_t>(0xc0 | ext << 3 | (rm & 7)));
    if (count != 1) c.put(count);
}

// Shift rm by cl.
inline void shift_cl(X86Code& c, bool w, uint8_t ext, unsigned rm) {
    rex(c, w, 0, rm);
    c.put(0xd3);
    c.put(static_cast<uint8_t>(0xc0 | ext << 3 | (rm & 7)));
}

// xchg reg, rm (64-bit; one byte shorter when either is rax).
inline void xchg64(X86Code& c, unsigned reg, unsigned rm) {
    if (reg == 0 || rm == 0) {
        const unsigned other = reg == 0 ? rm : reg;
        rex(c, true, 0, other);
        c.put(static_cast<uint8_t>(0x90 | (other & 7)));
        return;
    }
    rr(c, true, 0x87, reg, rm);
}

// mov r32, imm32 (zero-extends); mov r64, simm32.
inline void mov_ri32(X86Code& c, unsigned rd, uint32_t imm) {
    rex(c, false, 0, rd);
    c.put(static_cast<uint8_t>(0xb8 | (rd & 7)));
    c.put32(imm);
}
inline void mov_ri64(X86Code& c, unsigned rd, int32_t imm) {
    if (imm >= 0) return mov_ri32(c, rd, static_cast<uint32_t>(imm));   // the same value, shorter
    rex(c, true, 0, rd);
    c.put(0xc7);
    c.put(static_cast<uint8_t>(0xc0 | (rd & 7)));
    c.put32(static_cast<uint32_t>(imm));
}

// A load or store of `size` bytes between reg and [base + disp]: op is the form's opcode
// (kMovRRm, kMovzx8, kMovRmR8 ...); p66 the operand-size prefix of 16-bit stores.
inline void mem(X86Code& c, bool p66, bool w, uint16_t op, unsigned reg, unsigned base, int32_t disp) {
    if (p66) c.put(0x66);
    rex(c, w, reg, base, op == kMovRmR8 && reg >= 4 && reg < 8);
    opcode(c, op);
    mem_operand(c, reg, base, disp);
}

// mov size ptr [base + disp], imm (64-bit: sign-extended imm32).
inline void store_imm(X86Code& c, unsigned size, unsigned base, int32_t disp, int32_t imm) {
    if (size == 2) c.put(0x66);
    rex(c, size == 8, 0, base);
    c.put(size == 1 ? 0xc6 : 0xc7);
    mem_operand(c, 0, base, disp);
    if (size == 1) c.put(static_cast<uint8_t>(imm));
    else if (size == 2) c.put16(static_cast<uint32_t>(imm));
    else c.put32(static_cast<uint32_t>(imm));
}

}  // namespace bpfsim::vm::x86
