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
#include <cstring>

namespace bpfsim::vm::x86 {

// Where the bytes of an instruction or a short sequence go: straight into the JIT's buffer
// (building them elsewhere and copying cost a failed store-to-load forward per instruction), or
// an X86Buf. At most 16 bytes (the longest instruction here is 12: REX C7 ModRM SIB disp32
// imm32; the JIT's longest sequence, a shift by a register, 12). The encoders choose between
// lengths without branching: they write a field's widest form and advance by the length it
// takes (on random code a branch per choice mispredicted half the time), so the destination
// needs kRoom bytes; put_if appends conditionally.
struct X86Code {
    static constexpr unsigned kRoom = 24;
    uint8_t* b;
    unsigned n = 0;
    explicit X86Code(uint8_t* at) : b(at) {}
    X86Code(const X86Code&) = delete;
    X86Code& operator=(const X86Code&) = delete;
    void put(uint8_t x) { b[n++] = x; }
    void put_if(uint8_t x, bool keep) {
        b[n] = x;
        n += keep;
    }
    void put16(uint32_t v) {
        put(static_cast<uint8_t>(v));
        put(static_cast<uint8_t>(v >> 8));
    }
    void put32(uint32_t v) {
        std::memcpy(b + n, &v, 4);
        n += 4;
    }
    // v's low byte (short) or all four bytes.
    void put8or32(uint32_t v, bool short_form) {
        std::memcpy(b + n, &v, 4);
        n += short_form ? 1 : 4;
    }
};

// An X86Code with its own storage (tests).
struct X86Buf : X86Code {
    uint8_t store[kRoom]{};
    X86Buf() : X86Code(store) {}
};

// Opcodes. Two-byte ones carry the 0x0f escape in the high byte.
enum : uint16_t {
    kAddRmR = 0x01, kOrRmR = 0x09, kAndRmR = 0x21, kSubRmR = 0x29, kXorRmR = 0x31, kCmpRmR = 0x39,
    kTestRmR = 0x85, kMovRmR = 0x89, kMovRRm = 0x8b, kMovRmR8 = 0x88, kMovsxd = 0x63, kCmpRRm = 0x3b, kLea = 0x8d,
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
    c.put_if(r, (r != 0x40) | force);
}

inline void opcode(X86Code& c, uint16_t op) {
    c.put_if(static_cast<uint8_t>(op >> 8), op > 0xff);
    c.put(static_cast<uint8_t>(op));
}

// ModRM (and SIB, displacement) of [base + disp]: mod 00 without a displacement unless the
// base is rbp/r13 (that encoding means rip-relative), disp8 when it fits; rsp/r12 need a SIB.
inline void mem_operand(X86Code& c, unsigned reg, unsigned base, int32_t disp) {
    const bool none = disp == 0 && (base & 7) != 5, short_form = fits8(disp);
    const unsigned mod = none ? 0 : short_form ? 1 : 2;
    c.put(static_cast<uint8_t>(mod << 6 | (reg & 7) << 3 | (base & 7)));
    c.put_if(0x24, (base & 7) == 4);
    std::memcpy(c.b + c.n, &disp, 4);
    c.n += (0x410u >> (4 * mod)) & 0xf;   // 0, 1 or 4 bytes
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
    const bool short_imm = fits8(imm), acc = rm == 0 && !short_imm;
    c.put(static_cast<uint8_t>(acc ? ext << 3 | 5 : short_imm ? 0x83 : 0x81));
    c.put_if(static_cast<uint8_t>(0xc0 | ext << 3 | (rm & 7)), !acc);
    c.put8or32(static_cast<uint32_t>(imm), short_imm);
}

// imul reg, rm, imm.
inline void imul_ri(X86Code& c, bool w, unsigned reg, unsigned rm, int32_t imm) {
    rex(c, w, reg, rm);
    const bool short_imm = fits8(imm);
    c.put(short_imm ? 0x6b : 0x69);
    c.put(static_cast<uint8_t>(0xc0 | (reg & 7) << 3 | (rm & 7)));
    c.put8or32(static_cast<uint32_t>(imm), short_imm);
}

// test rm, imm32 (sign-extended in 64-bit form; rax's short form).
inline void test_ri(X86Code& c, bool w, unsigned rm, uint32_t imm) {
    rex(c, w, 0, rm);
    c.put(rm == 0 ? 0xa9 : 0xf7);
    c.put_if(static_cast<uint8_t>(0xc0 | (rm & 7)), rm != 0);
    c.put32(imm);
}

// Shift rm by an immediate (1-63).
inline void shift_ri(X86Code& c, bool w, uint8_t ext, unsigned rm, uint8_t count) {
    rex(c, w, 0, rm);
    c.put(count == 1 ? 0xd1 : 0xc1);
    c.put(static_cast<uint8_t>(0xc0 | ext << 3 | (rm & 7)));
    c.put_if(count, count != 1);
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
    const bool pos = imm >= 0;   // mov r32, imm32: the same value, shorter
    rex(c, !pos, 0, rd);
    c.put(static_cast<uint8_t>(pos ? 0xb8 | (rd & 7) : 0xc7));
    c.put_if(static_cast<uint8_t>(0xc0 | (rd & 7)), !pos);
    c.put32(static_cast<uint32_t>(imm));
}

// mov r64, imm as xbyak picks it: mov r32, imm32 where the high half is zero, the
// sign-extended imm32 form where it fits, else movabs with all eight bytes.
inline void mov_ri(X86Code& c, unsigned rd, uint64_t imm) {
    if ((imm >> 32) == 0) return mov_ri32(c, rd, static_cast<uint32_t>(imm));
    if (static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(imm))) == imm) return mov_ri64(c, rd, static_cast<int32_t>(imm));
    rex(c, true, 0, rd);
    c.put(static_cast<uint8_t>(0xb8 | (rd & 7)));
    c.put32(static_cast<uint32_t>(imm));
    c.put32(static_cast<uint32_t>(imm >> 32));
}

// call rm (a register).
inline void call_r(X86Code& c, unsigned rm) {
    rex(c, false, 0, rm);
    c.put(0xff);
    c.put(static_cast<uint8_t>(0xc0 | 2 << 3 | (rm & 7)));
}

// jmp rm (a register).
inline void jmp_r(X86Code& c, unsigned rm) {
    rex(c, false, 0, rm);
    c.put(0xff);
    c.put(static_cast<uint8_t>(0xc0 | 4 << 3 | (rm & 7)));
}

// Group-1 op size ptr [base + disp], imm (dword or qword; imm8 when it fits).
inline void mi(X86Code& c, bool w, uint8_t ext, unsigned base, int32_t disp, int32_t imm) {
    rex(c, w, 0, base);
    const bool short_imm = fits8(imm);
    c.put(short_imm ? 0x83 : 0x81);
    mem_operand(c, ext, base, disp);
    c.put8or32(static_cast<uint32_t>(imm), short_imm);
}

// cmp byte [base + disp], imm8.
inline void cmp_m8i(X86Code& c, unsigned base, int32_t disp, uint8_t imm) {
    rex(c, false, 0, base);
    c.put(0x80);
    mem_operand(c, kExtCmp, base, disp);
    c.put(imm);
}

// A load or store of `size` bytes between reg and [base + disp]: op is the form's opcode
// (kMovRRm, kMovzx8, kMovRmR8 ...); p66 the operand-size prefix of 16-bit stores.
inline void mem(X86Code& c, bool p66, bool w, uint16_t op, unsigned reg, unsigned base, int32_t disp) {
    c.put_if(0x66, p66);
    rex(c, w, reg, base, op == kMovRmR8 && reg >= 4 && reg < 8);
    opcode(c, op);
    mem_operand(c, reg, base, disp);
}

// A load or lea between reg and [base + index + disp] (scale 1), as mem(); index is never rsp
// (no BPF register lives there).
inline void mem_index(X86Code& c, bool w, uint16_t op, unsigned reg, unsigned base, unsigned index, int32_t disp) {
    const auto r = static_cast<uint8_t>(0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1));
    c.put_if(r, r != 0x40);
    opcode(c, op);
    const bool none = disp == 0 && (base & 7) != 5, short_form = fits8(disp);
    const unsigned mod = none ? 0 : short_form ? 1 : 2;
    c.put(static_cast<uint8_t>(mod << 6 | (reg & 7) << 3 | 4));   // SIB follows
    c.put(static_cast<uint8_t>((index & 7) << 3 | (base & 7)));
    std::memcpy(c.b + c.n, &disp, 4);
    c.n += (0x410u >> (4 * mod)) & 0xf;
}

// rol r16, count.
inline void rol16(X86Code& c, unsigned rm, uint8_t count) {
    c.put(0x66);
    rex(c, false, 0, rm);
    c.put(0xc1);
    c.put(static_cast<uint8_t>(0xc0 | (rm & 7)));   // /0: rol
    c.put(count);
}

// mov size ptr [base + disp], imm (64-bit: sign-extended imm32).
inline void store_imm(X86Code& c, unsigned size, unsigned base, int32_t disp, int32_t imm) {
    c.put_if(0x66, size == 2);
    rex(c, size == 8, 0, base);
    c.put(size == 1 ? 0xc6 : 0xc7);
    mem_operand(c, 0, base, disp);
    std::memcpy(c.b + c.n, &imm, 4);
    c.n += size < 4 ? size : 4;
}

}  // namespace bpfsim::vm::x86
