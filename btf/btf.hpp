// bpfsim::btf — BPF Type Format: raw BTF (vmlinux, module split BTF, an object's .BTF)
// and .BTF.ext (func_info, line_info, CO-RE relocations).
//
// The one public header of the btf module.
//
// Parsing validates everything in one pass and keeps the type section (converted to host
// byte order) and the string section, plus one offset per type id. Nothing is decoded
// ahead of time: a Type is a three-word view, and names are string_views into the string
// section. Any malformed input is reported as Error{InvalidBtf} naming the byte offset,
// the type id and the problem; nothing reads out of bounds, recursion is bounded.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfsim::btf {

// BTF_KIND_* (include/uapi/linux/btf.h).
enum class Kind : uint8_t {
    Void = 0, Int = 1, Ptr = 2, Array = 3, Struct = 4, Union = 5, Enum = 6, Fwd = 7, Typedef = 8,
    Volatile = 9, Const = 10, Restrict = 11, Func = 12, FuncProto = 13, Var = 14, Datasec = 15,
    Float = 16, DeclTag = 17, TypeTag = 18, Enum64 = 19,
};
inline constexpr uint32_t kMaxKind = 19;

// "STRUCT", "FUNC_PROTO": the names bpftool prints; "UNKN" for Void and unknown values.
std::string_view kind_name(Kind k);

// BTF_INT_* encoding bits.
inline constexpr uint32_t kIntSigned = 1, kIntChar = 2, kIntBool = 4;

// BTF_FUNC_* / BTF_VAR_* linkage (the same three values for both).
enum class Linkage : uint32_t { Static = 0, Global = 1, Extern = 2 };

struct IntInfo {
    uint32_t encoding;        // kInt* bits
    uint32_t offset;          // bit offset of the value inside the storage
    uint32_t bits;            // number of value bits
};

struct ArrayInfo {
    uint32_t type;            // element type
    uint32_t index_type;
    uint32_t nelems;
};

struct Member {
    std::string_view name;    // empty for an anonymous struct/union member
    uint32_t type;
    uint32_t bit_offset;      // from the start of the struct
    uint32_t bitfield_size;   // 0 for a plain member (kflag clear, or not a bitfield)
};

struct EnumValue {
    std::string_view name;
    int64_t value;            // ENUM: sign- or zero-extended per the enum's signedness;
                              // ENUM64: the 64 bits (cast to uint64_t when unsigned)
};

struct Param {
    std::string_view name;    // may be empty
    uint32_t type;            // 0 for the last parameter of a variadic function
};

struct VarSecinfo {
    uint32_t type;            // a VAR (or a FUNC, for extern functions in .ksyms)
    uint32_t offset;
    uint32_t size;
};

namespace detail {
struct Part;   // one parsed BTF blob; defined in btf.cpp
}

// A view of one type: valid while the Btf it came from lives (moving the Btf is fine).
// Accessors that only make sense for some kinds, or take an index, check both and throw
// Error{InvalidBtf} naming the type when called on the wrong kind or out of range.
class Type {
public:
    uint32_t id() const { return id_; }
    Kind kind() const { return static_cast<Kind>((raw_[1] >> 24) & 0x1f); }
    uint32_t vlen() const { return raw_[1] & 0xffff; }
    bool kflag() const { return raw_[1] >> 31; }
    bool is_void() const { return id_ == 0; }
    uint32_t name_off() const { return raw_[0]; }   // 0 for an anonymous type
    std::string_view name() const;

    // INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT: the size in bytes.
    uint32_t size() const;
    // PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC (its FUNC_PROTO), VAR,
    // DECL_TAG (the tagged type), FUNC_PROTO (the return type, 0 for void).
    uint32_t type() const;

    IntInfo int_info() const;                     // INT
    uint32_t int_encoding() const { return int_info().encoding; }
    uint32_t int_offset() const { return int_info().offset; }
    uint32_t int_bits() const { return int_info().bits; }
    ArrayInfo array() const;                      // ARRAY
    Member member(uint32_t i) const;              // STRUCT, UNION; bitfields decoded from kflag
    EnumValue enumerator(uint32_t i) const;       // ENUM, ENUM64
    bool enum_signed() const;                     // ENUM, ENUM64 (kflag)
    Param param(uint32_t i) const;                // FUNC_PROTO
    Linkage linkage() const;                      // FUNC, VAR
    VarSecinfo var(uint32_t i) const;             // DATASEC
    int32_t component_idx() const;                // DECL_TAG: -1 for the type itself
    bool fwd_is_union() const;                    // FWD (kflag)

private:
    friend class Btf;
    friend struct detail::Part;
    Type(const detail::Part* part, const uint32_t* raw, uint32_t id) : part_(part), raw_(raw), id_(id) {}
    void need(uint32_t kinds, const char* what) const {
        if (!((kinds >> ((raw_[1] >> 24) & 0x1f)) & 1)) [[unlikely]]
            wrong_kind(what);
    }
    void need_index(uint32_t i, const char* what) const {
        if (i >= vlen()) [[unlikely]]
            bad_index(i, what);
    }
    [[noreturn]] void wrong_kind(const char* what) const;
    [[noreturn]] void bad_index(uint32_t i, const char* what) const;

    const detail::Part* part_;
    const uint32_t* raw_;   // the record: name_off, info, size/type, then its trailer
    uint32_t id_;
};

class Btf {
public:
    // Parses and validates raw BTF in either byte order. With a base, this is split BTF
    // (kernel module BTF): its ids continue after the base's last id, its string offsets
    // after the base's strings, and it may refer to both. The base must outlive the result.
    static Result<Btf> parse(std::span<const uint8_t> data, std::string name, const Btf* base = nullptr);
    static Result<Btf> load_file(const std::filesystem::path& path, const Btf* base = nullptr);

    Btf(Btf&&) noexcept;
    Btf& operator=(Btf&&) noexcept;
    ~Btf();

    const std::string& name() const;
    uint32_t count() const;          // valid ids are 0 (void) .. count()-1, base ids included
    uint32_t start_id() const;       // first id of this part: 1, or the base's count()
    bool is_split() const;
    uint32_t strings_end() const;    // valid string offsets are below this (base included)

    // The type with this id (0 is void); throws Error{InvalidBtf} for an id out of range.
    Type type(uint32_t id) const;
    // The NUL-terminated string at this offset; throws Error{InvalidBtf} when out of range.
    std::string_view str(uint32_t offset) const;

    // The first type (lowest id, base first) with this name and kind. The first call builds
    // a name index, so parsing stays cheap; that first call must not race with another.
    std::optional<uint32_t> find(std::string_view name, Kind kind) const;
    // Every type with this name and kind, in id order.
    std::vector<uint32_t> find_all(std::string_view name, Kind kind) const;

    // Skips TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG; throws on a cycle or a chain
    // longer than 32.
    uint32_t resolve(uint32_t id) const;
    // Size in bytes, through typedefs, modifiers, arrays and VARs (pointers are 8); throws
    // Error{InvalidBtf} for a type without a size (void, FUNC, FUNC_PROTO, FWD, DECL_TAG).
    uint64_t size_of(uint32_t id) const;
    // C-like spelling for messages: "struct task_struct", "unsigned int", "const char *",
    // "int [16]", "int (*)(int, char *)". Never throws; bad ids are spelled "<bad type N>".
    std::string type_name(uint32_t id) const;
    // A struct/union member by name (through typedefs and modifiers), also found inside
    // anonymous struct/union members; bit_offset is then from the start of the outer type.
    std::optional<Member> member_by_name(uint32_t struct_id, std::string_view name) const;

    // This part as raw BTF in host byte order (header, types, strings), as the kernel loads it.
    std::vector<uint8_t> to_bytes() const;
    // Sets a DATASEC's size and its entries' offsets, which clang leaves at 0 in objects
    // (libbpf fills them in from the ELF sections and symbols before loading).
    void fix_datasec(uint32_t id, uint32_t size, const std::vector<uint32_t>& var_offsets);

private:
    explicit Btf(std::unique_ptr<detail::Part> part);
    std::unique_ptr<detail::Part> part_;
};

// ─────────────────────────────── .BTF.ext ───────────────────────────────

// enum bpf_core_relo_kind (include/uapi/linux/bpf.h).
enum class CoreReloKind : uint32_t {
    FieldByteOffset = 0, FieldByteSize = 1, FieldExists = 2, FieldSigned = 3, FieldLshiftU64 = 4,
    FieldRshiftU64 = 5, TypeIdLocal = 6, TypeIdTarget = 7, TypeExists = 8, TypeSize = 9,
    EnumvalExists = 10, EnumvalValue = 11, TypeMatches = 12,
};
std::string_view to_string(CoreReloKind k);   // "field_byte_offset": the enumerator, in snake case

struct FuncInfo {
    std::size_t insn;          // instruction index in the section
    uint32_t type_id;          // a FUNC
};

struct LineRec {
    std::size_t insn;          // instruction index in the section
    std::string file;
    std::string text;          // the source line
    uint32_t line = 0;
    uint32_t column = 0;
};

struct CoreRelo {
    std::size_t insn;          // instruction index in the section
    uint32_t type_id;          // the local type
    std::string access;        // "0:1:2"
    CoreReloKind kind;
};

struct ExtSection {
    std::string name;          // the ELF section the records apply to ("xdp", ".text")
    std::vector<FuncInfo> funcs;
    std::vector<LineRec> lines;
    std::vector<CoreRelo> relos;
};

struct Ext {
    std::vector<ExtSection> sections;
    // The sections of the core_relo block in its order (libbpf relocates in this order,
    // which matters when candidates are narrowed from one relocation to the next).
    std::vector<std::string> core_relo_order;
    const ExtSection* find(std::string_view section) const;
};

// Parses an object's .BTF.ext (either byte order) against its .BTF. Records larger than
// the known layout are accepted (the extra bytes are skipped). Errors name the byte offset.
Result<Ext> parse_ext(std::span<const uint8_t> data, const Btf& btf, std::string_view file);

}  // namespace bpfsim::btf
