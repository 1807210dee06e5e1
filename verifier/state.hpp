// Register and stack states of the verifier model (verifier/verifier.cpp): the parts of the
// kernel's bpf_reg_state, bpf_stack_state, bpf_func_state and bpf_verifier_state it keeps.
#pragma once

#include "verifier/scalar.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace bpfsim::verifier {

// enum bpf_reg_type, base types (PTR_MAYBE_NULL is Reg::maybe_null).
enum class RegType : uint8_t {
    NotInit, Scalar, Ctx, Stack, ConstMap, MapValue, MapKey, Packet, PacketMeta, PacketEnd,
    FlowKeys, Mem, BtfId, Func, SockCommon, Sock, TcpSock,
};

struct Reg {
    RegType type = RegType::NotInit;
    bool maybe_null = false;
    bool rdonly = false;     // MEM_RDONLY (a PTR_TO_MEM of a read-only object)
    int32_t off = 0;         // fixed offset of a pointer
    uint32_t id = 0;         // pointer id (null checks, packet ranges)
    uint32_t ref_obj_id = 0; // acquired reference
    int32_t map = -1;        // CONST_PTR_TO_MAP / MAP_VALUE / MAP_KEY: index into the maps
    int32_t range = 0;       // packet: verified bytes; mem: size
    uint32_t btf_id = 0;
    uint32_t frameno = 0;    // PTR_TO_STACK: the frame; PTR_TO_FUNC: the target pc
    Scalar s = Scalar::known(0);   // SCALAR_VALUE: the value; pointers: the variable offset

    bool is_ptr() const { return type != RegType::NotInit && type != RegType::Scalar; }
    bool operator==(const Reg&) const = default;
};

// Byte states of a stack slot (enum bpf_stack_slot_type).
enum SlotType : uint8_t { kInvalid = 0, kMisc = 1, kZero = 2, kSpill = 3 };

struct StackSlot {
    std::array<uint8_t, 8> type{};   // indexed as the kernel's slot_type[]: (-addr - 1) % 8
    Reg spilled;
    bool operator==(const StackSlot&) const = default;
};

struct FuncState {
    std::array<Reg, 11> regs{};
    std::vector<StackSlot> stack;    // spi 0 = fp-8 .. fp-1
    std::size_t callsite = 0;        // the call instruction in the caller (frames > 0)
    std::size_t subprog = 0;         // the first pc of the function
    bool callback = false;           // entered from a helper (bpf_loop, ...)
    bool operator==(const FuncState&) const = default;
};

struct RefState {
    uint32_t id = 0;
    std::size_t insn = 0;
    bool operator==(const RefState&) const = default;
};

struct VState {
    std::vector<FuncState> frames;
    std::vector<RefState> refs;
    bool operator==(const VState&) const = default;
};

}  // namespace bpfsim::verifier
