// Raw BTF: one validating pass over the type section, then views.
//
// Layout (include/uapi/linux/btf.h): a header {magic 0xeB9F, version 1, flags, hdr_len,
// type_off, type_len, str_off, str_len}, the offsets counted from the end of the header;
// a type section of 4-byte words, one record per type id from 1 up (a 3-word head
// {name_off, info, size-or-type} and a kind-dependent trailer sized by vlen); and a
// string section of NUL-terminated strings starting with the empty one.
//
// Validation follows the kernel's rules for loading BTF (kernel/bpf/btf.c, read as a
// reference): names where they are required, identifiers where the kernel wants them,
// sizes, encodings, vlen/kflag use per kind, member order, referenced ids.
//
// Speed: vmlinux has ~130k types and ~170k members/params/enumerators, to be parsed in a
// few milliseconds. The strings are copied in one SIMD pass that also marks which string
// starts are valid identifiers, so checking a name is one bit test. The type pass touches
// each word once and collects referenced ids as a running maximum, checked against the
// final count (forward references are legal). A byte per type remembers kinds for the
// FUNC -> FUNC_PROTO check; the few checks that need the kind of a later type (forward
// FUNCs, DATASEC entries, DECL_TAG targets) run afterwards over just those types.
#include "btf/btf.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace bpfsim::btf {

namespace {

constexpr uint16_t kMagic = 0xeb9f;
constexpr uint32_t kHeaderSize = 24;
constexpr uint32_t kInfoReserved = 0x60ff0000;   // info bits 16-23 and 29-30
constexpr int kMaxDepth = 32;                     // chains of typedefs, modifiers, arrays
constexpr std::size_t kMaxNameLen = 512;          // KSYM_NAME_LEN, the kernel's limit
constexpr std::size_t kMaxSpelling = 1024;        // type_name() gives up on longer declarators

constexpr uint32_t bit(Kind k) { return 1u << static_cast<unsigned>(k); }
constexpr uint32_t kSized = bit(Kind::Int) | bit(Kind::Struct) | bit(Kind::Union) | bit(Kind::Enum) |
                            bit(Kind::Enum64) | bit(Kind::Datasec) | bit(Kind::Float);
constexpr uint32_t kReferring = bit(Kind::Ptr) | bit(Kind::Typedef) | bit(Kind::Volatile) | bit(Kind::Const) |
                                bit(Kind::Restrict) | bit(Kind::TypeTag) | bit(Kind::Func) | bit(Kind::Var) |
                                bit(Kind::DeclTag) | bit(Kind::FuncProto);
constexpr uint32_t kModifiers = bit(Kind::Typedef) | bit(Kind::Volatile) | bit(Kind::Const) |
                                bit(Kind::Restrict) | bit(Kind::TypeTag);
constexpr uint32_t kComposite = bit(Kind::Struct) | bit(Kind::Union);
constexpr uint32_t kEnums = bit(Kind::Enum) | bit(Kind::Enum64);

bool is_modifier(uint32_t info) { return (kModifiers >> ((info >> 24) & 0x1f)) & 1; }

// Character classes of the kernel's identifier rule: [A-Za-z_.][A-Za-z0-9_.]*.
struct CharTables {
    std::array<bool, 256> first{}, rest{}, print{};
    constexpr CharTables() {
        for (int c = 0; c < 256; ++c) {
            const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            first[c] = alpha || c == '_' || c == '.';
            rest[c] = first[c] || (c >= '0' && c <= '9');
            print[c] = c >= 0x20 && c < 0x7f;
        }
    }
};
constexpr CharTables kChars;

// Strings are stored with kStringPad zero bytes after the section, so a check may read
// 16 bytes at a time from any position up to the terminating NUL.
constexpr std::size_t kStringPad = 16;

#if defined(__SSE2__)
// 16 characters per step: vmlinux has ~60k distinct function names to check.
bool valid_identifier(const char* s) {
    if (s[0] >= '0' && s[0] <= '9') return false;
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1);
    const __m128i before_0 = _mm_set1_epi8('0' - 1), after_9 = _mm_set1_epi8('9' + 1);
    const __m128i underscore = _mm_set1_epi8('_'), dot = _mm_set1_epi8('.'), case_bit = _mm_set1_epi8(0x20);
    for (std::size_t i = 0; i <= kMaxNameLen; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i lower = _mm_or_si128(v, case_bit);   // only A-Z land in a-z
        const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, before_a), _mm_cmpgt_epi8(after_z, lower));
        const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, before_0), _mm_cmpgt_epi8(after_9, v));
        const __m128i punct = _mm_or_si128(_mm_cmpeq_epi8(v, underscore), _mm_cmpeq_epi8(v, dot));
        const unsigned ok = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), punct)));
        const unsigned nul = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())));
        if (nul) {
            const unsigned before = (nul & (0u - nul)) - 1;   // the characters before the NUL
            const std::size_t len = i + static_cast<std::size_t>(__builtin_ctz(nul));
            return len > 0 && len <= kMaxNameLen && (ok & before) == before;
        }
        if (ok != 0xffff) return false;
    }
    return false;
}
#else
bool valid_identifier(const char* s) {
    if (!kChars.first[static_cast<uint8_t>(s[0])]) return false;
    std::size_t i = 1;
    while (s[i] && i < kMaxNameLen) {
        if (!kChars.rest[static_cast<uint8_t>(s[i])]) return false;
        ++i;
    }
    return s[i] == 0;
}
#endif

// Copies the string section and marks, in `idents` (one bit per byte), each string start
// holding a valid identifier. One sequential pass: looking names up later is then one bit
// test instead of a scattered read of the string. dst has kStringPad bytes of room after len.
void copy_strings(const uint8_t* src, char* dst, std::size_t len, uint64_t* idents) {
#if defined(__SSE2__)
    const __m128i before_a = _mm_set1_epi8('a' - 1), after_z = _mm_set1_epi8('z' + 1);
    const __m128i before_0 = _mm_set1_epi8('0' - 1), after_9 = _mm_set1_epi8('9' + 1);
    const __m128i underscore = _mm_set1_epi8('_'), dot = _mm_set1_epi8('.'), case_bit = _mm_set1_epi8(0x20);
    std::size_t start = 0;     // where the current string starts
    bool tainted = false;      // the current string has a bad character in an earlier chunk
    auto chunk = [&](__m128i v, std::size_t i, unsigned valid) __attribute__((always_inline)) {
        const __m128i lower = _mm_or_si128(v, case_bit);
        const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, before_a), _mm_cmpgt_epi8(after_z, lower));
        const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, before_0), _mm_cmpgt_epi8(after_9, v));
        const __m128i punct = _mm_or_si128(_mm_cmpeq_epi8(v, underscore), _mm_cmpeq_epi8(v, dot));
        const unsigned ok = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), punct)));
        unsigned nul = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()))) & valid;
        const unsigned bad = ~(ok | nul) & valid;
        while (nul) {
            const unsigned z = static_cast<unsigned>(__builtin_ctz(nul));
            const std::size_t end = i + z;
            const unsigned lo = start > i ? static_cast<unsigned>(start - i) : 0;
            const unsigned span = ((1u << z) - 1) & ~((1u << lo) - 1);
            if (!tainted && !(bad & span) && end > start && end - start <= kMaxNameLen && !(dst[start] >= '0' && dst[start] <= '9'))
                idents[start / 64] |= uint64_t(1) << (start % 64);
            start = end + 1;
            tainted = false;
            nul &= nul - 1;
        }
        if (start < i + 16 && (bad >> (start > i ? start - i : 0))) tainted = true;
    };
    std::size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), v);
        chunk(v, i, 0xffff);
    }
    if (i < len) {
        alignas(16) uint8_t tail[16] = {};
        std::memcpy(tail, src + i, len - i);
        std::memcpy(dst + i, tail, len - i);
        chunk(_mm_load_si128(reinterpret_cast<const __m128i*>(tail)), i, (1u << (len - i)) - 1);
    }
#else
    std::memcpy(dst, src, len);
    for (std::size_t i = 0; i < len; i += std::strlen(dst + i) + 1)
        if (valid_identifier(dst + i)) idents[i / 64] |= uint64_t(1) << (i % 64);
#endif
    std::memset(dst + len, 0, kStringPad);
}

// DATASEC names: any printable characters, not empty.
bool valid_section_name(const char* s) {
    if (!s[0]) return false;
    std::size_t i = 0;
    while (s[i] && i < kMaxNameLen) {
        if (!kChars.print[static_cast<uint8_t>(s[i])]) return false;
        ++i;
    }
    return s[i] == 0;
}

// Words after the 3-word head that a record of this kind carries.
inline uint64_t trailer_words(uint32_t kind, uint32_t vlen) {
    switch (static_cast<Kind>(kind)) {
    case Kind::Int:
    case Kind::Var:
    case Kind::DeclTag: return 1;
    case Kind::Array: return 3;
    case Kind::Struct:
    case Kind::Union:
    case Kind::Datasec:
    case Kind::Enum64: return 3ull * vlen;
    case Kind::Enum:
    case Kind::FuncProto: return 2ull * vlen;
    default: return 0;
    }
}

uint32_t bswap(uint32_t v) { return __builtin_bswap32(v); }

uint32_t load32(const uint8_t* p, bool swap) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap ? bswap(v) : v;
}

[[noreturn]] void throw_btf(const std::string& file, std::string message) {
    Location loc;
    loc.file = file;
    throw Error(ErrorCode::InvalidBtf, std::move(message), loc);
}

}  // namespace

// ─────────────────────────────── storage ───────────────────────────────

namespace detail {

struct Part {
    std::string name;
    const Part* base = nullptr;
    uint32_t start_id = 1;          // id of the first type of this part
    uint32_t str_start = 0;         // string offset of this part's first byte
    std::unique_ptr<uint32_t[]> words;   // type section, host order
    std::size_t nwords = 0;
    std::unique_ptr<char[]> strings;
    uint32_t str_len = 0;
    // Word offset of each type of this part (room for the most types the section can hold).
    struct {
        std::unique_ptr<uint32_t[]> at;
        std::size_t n = 0;
        std::size_t size() const { return n; }
        uint32_t operator[](std::size_t i) const { return at[i]; }
    } offsets;
    std::size_t types_at = 0;       // byte offset of the type section in the parsed data, for messages

    // Open-addressed name index of this part (ids; 0 is empty), built on first use: once,
    // so that threads may share a const Btf (bpfsim test -j, kernel BTFs shared by worlds).
    mutable std::vector<uint32_t> index;
    mutable std::once_flag index_once;

    uint32_t count() const { return start_id + static_cast<uint32_t>(offsets.size()); }
    uint32_t strings_end() const { return str_start + str_len; }

    // The record of an id, nullptr when out of range; *owner is the part holding it.
    const uint32_t* record(uint32_t id, const Part** owner) const {
        static constexpr uint32_t kVoid[3] = {0, 0, 0};
        const Part* p = this;
        while (id < p->start_id && p->base) p = p->base;
        *owner = p;
        if (id == 0) return kVoid;
        if (id < p->start_id || id - p->start_id >= p->offsets.size()) return nullptr;
        return &p->words[p->offsets[id - p->start_id]];
    }
    Type type(uint32_t id) const {
        const Part* owner;
        const uint32_t* r = record(id, &owner);
        if (!r) throw_btf(name, fmt::format("type id {} does not exist (the last is {})", id, count() - 1));
        return Type(owner, r, id);
    }
    // The string at a valid offset (callers check the range).
    const char* cstr(uint32_t off) const {
        const Part* p = this;
        while (off < p->str_start && p->base) p = p->base;
        return &p->strings[off - p->str_start];
    }
    std::string_view str(uint32_t off) const {
        if (off >= strings_end()) throw_btf(name, fmt::format("string offset {} is outside the strings ({} bytes)", off, strings_end()));
        return cstr(off);
    }
    void build_index() const;
};

void Part::build_index() const {
    std::size_t named = 0;
    for (std::size_t i = 0; i < offsets.size(); ++i) named += words[offsets[i]] != 0;
    std::size_t cap = 16;
    while (cap < 2 * named) cap *= 2;
    std::vector<uint32_t> table(cap, 0);
    const std::size_t mask = cap - 1;
    const std::hash<std::string_view> hash;
    for (std::size_t i = 0; i < offsets.size(); ++i) {
        const uint32_t name_off = words[offsets[i]];
        if (!name_off) continue;
        std::size_t h = hash(cstr(name_off)) & mask;
        while (table[h]) h = (h + 1) & mask;
        table[h] = start_id + static_cast<uint32_t>(i);
    }
    index = std::move(table);
}

}  // namespace detail

using detail::Part;

// ─────────────────────────────── Type ───────────────────────────────

std::string_view kind_name(Kind k) {
    static constexpr std::string_view names[] = {"UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM",
                                                 "FWD", "TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "FUNC",
                                                 "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64"};
    const auto i = static_cast<std::size_t>(k);
    return i < std::size(names) ? names[i] : "UNKN";
}

std::string_view Type::name() const { return part_->cstr(raw_[0]); }

void Type::wrong_kind(const char* what) const {
    throw_btf(part_->name, fmt::format("type [{}] is a {}; {} does not apply to it", id_, kind_name(kind()), what));
}

void Type::bad_index(uint32_t i, const char* what) const {
    throw_btf(part_->name, fmt::format("type [{}] ({}) has {} entries; {} asked for entry {}", id_, kind_name(kind()), vlen(), what, i));
}

uint32_t Type::size() const {
    need(kSized, "size()");
    return raw_[2];
}

uint32_t Type::type() const {
    need(kReferring, "type()");
    return raw_[2];
}

IntInfo Type::int_info() const {
    need(bit(Kind::Int), "int_info()");
    return {(raw_[3] >> 24) & 0x0f, (raw_[3] >> 16) & 0xff, raw_[3] & 0xff};
}

ArrayInfo Type::array() const {
    need(bit(Kind::Array), "array()");
    return {raw_[3], raw_[4], raw_[5]};
}

Member Type::member(uint32_t i) const {
    need(kComposite, "member()");
    need_index(i, "member()");
    const uint32_t* m = raw_ + 3 + 3 * i;
    if (kflag()) return {part_->cstr(m[0]), m[1], m[2] & 0xffffff, m[2] >> 24};
    return {part_->cstr(m[0]), m[1], m[2], 0};
}

bool Type::enum_signed() const {
    need(kEnums, "enum_signed()");
    return kflag();
}

EnumValue Type::enumerator(uint32_t i) const {
    need(kEnums, "enumerator()");
    need_index(i, "enumerator()");
    if (kind() == Kind::Enum64) {
        const uint32_t* e = raw_ + 3 + 3 * i;
        return {part_->cstr(e[0]), static_cast<int64_t>((uint64_t(e[2]) << 32) | e[1])};
    }
    const uint32_t* e = raw_ + 3 + 2 * i;
    return {part_->cstr(e[0]), kflag() ? int64_t(static_cast<int32_t>(e[1])) : int64_t(e[1])};
}

Param Type::param(uint32_t i) const {
    need(bit(Kind::FuncProto), "param()");
    need_index(i, "param()");
    const uint32_t* p = raw_ + 3 + 2 * i;
    return {part_->cstr(p[0]), p[1]};
}

Linkage Type::linkage() const {
    need(bit(Kind::Func) | bit(Kind::Var), "linkage()");
    return static_cast<Linkage>(kind() == Kind::Func ? vlen() : raw_[3]);
}

VarSecinfo Type::var(uint32_t i) const {
    need(bit(Kind::Datasec), "var()");
    need_index(i, "var()");
    const uint32_t* v = raw_ + 3 + 3 * i;
    return {v[0], v[1], v[2]};
}

int32_t Type::component_idx() const {
    need(bit(Kind::DeclTag), "component_idx()");
    return static_cast<int32_t>(raw_[3]);
}

bool Type::fwd_is_union() const {
    need(bit(Kind::Fwd), "fwd_is_union()");
    return kflag();
}

// ─────────────────────────────── parsing ───────────────────────────────

namespace {

// One validating pass over a part's type section.
class Validator {
public:
    // idents: from copy_strings, one bit per byte of this part's strings.
    Validator(Part& p, const Part* base, std::vector<uint64_t> idents)
        : p_(p), base_(base), str_total_(p.strings_end()), idents_(std::move(idents)) {}

    void run() {
        const uint32_t* const words = p_.words.get();
        const std::size_t n = p_.nwords;
        p_.offsets.at = std::make_unique_for_overwrite<uint32_t[]>(n / 3 + 1);
        uint32_t* const offsets = p_.offsets.at.get();
        kinds_ = std::make_unique_for_overwrite<uint8_t[]>(n / 3 + 1);
        std::size_t w = 0;
        uint32_t id = p_.start_id;
        while (w < n) {
            cur_id_ = id;
            cur_w_ = w;
            if (n - w < 3) fail(fmt::format("the record head needs 12 bytes, {} remain in the type section", 4 * (n - w)));
            const uint32_t* t = words + w;
            const uint32_t name_off = t[0], info = t[1];
            const uint32_t kind = (info >> 24) & 0x1f, vlen = info & 0xffff;
            if (kind == 0 || kind > kMaxKind) fail(fmt::format("unknown kind {}", kind));
            if (info & kInfoReserved) fail(fmt::format("reserved bits set in info {:#010x}", info));
            if (name_off >= str_total_) fail(fmt::format("name offset {} is outside the strings ({} bytes)", name_off, str_total_));
            const uint64_t extra = trailer_words(kind, vlen);
            if (extra > n - w - 3)
                fail(fmt::format("{} with {} entries needs {} bytes, {} remain in the type section", kind_name(Kind(kind)), vlen,
                                 12 + 4 * extra, 4 * (n - w)));
            check(static_cast<Kind>(kind), t, vlen, (info >> 31) != 0);
            kinds_[p_.offsets.n] = static_cast<uint8_t>(kind);
            offsets[p_.offsets.n++] = static_cast<uint32_t>(w);
            w += 3 + extra;
            ++id;
        }
        const uint32_t count = p_.count();
        if (max_ref_ >= count) {
            at(max_ref_id_);
            fail(fmt::format("refers to type {}, but the last type id is {}", max_ref_, count - 1));
        }
        for (uint32_t d : deferred_) late_check(d);
    }

private:
    // ── error reporting ──
    void at(uint32_t id) {
        cur_id_ = id;
        cur_w_ = p_.offsets[id - p_.start_id];
    }
    [[noreturn]] void fail(const std::string& what) const {
        const uint32_t* t = p_.words.get() + cur_w_;
        std::string head = fmt::format("type [{}]", cur_id_);
        if (cur_w_ + 3 <= p_.nwords) {
            const uint32_t kind = (t[1] >> 24) & 0x1f;
            if (kind >= 1 && kind <= kMaxKind) {
                head += fmt::format(" {}", kind_name(Kind(kind)));
                if (t[0] && t[0] < str_total_) {
                    std::string_view nm = p_.cstr(t[0]);
                    if (nm.size() > 64) nm = nm.substr(0, 64);
                    head += fmt::format(" '{}'", nm);
                }
            }
        }
        throw_btf(p_.name, fmt::format("{} at byte {:#x}: {}", head, p_.types_at + 4 * cur_w_, what));
    }

    // ── names ──
    void name_in_range(uint32_t off, const char* what, uint32_t i) {
        if (off >= str_total_) [[unlikely]]
            fail(fmt::format("{} {} name offset {} is outside the strings ({} bytes)", what, i, off, str_total_));
    }
    bool identifier(uint32_t off) {
        if (off < p_.str_start) return valid_identifier(p_.cstr(off));   // a base string
        const uint32_t rel = off - p_.str_start;
        if ((idents_[rel / 64] >> (rel % 64)) & 1) return true;
        return valid_identifier(&p_.strings[rel]);   // inside a string, or not an identifier
    }
    void need_identifier(uint32_t off, const char* what) {
        if (!off) fail(fmt::format("{} must have a name", what));
        if (!identifier(off)) fail(fmt::format("{} name '{}' is not a valid identifier", what, clip(off)));
    }
    void optional_identifier(uint32_t off, const char* what) {
        if (off && !identifier(off)) fail(fmt::format("{} name '{}' is not a valid identifier", what, clip(off)));
    }
    void no_name(uint32_t off) {
        if (off) fail(fmt::format("must not have a name, has '{}'", clip(off)));
    }
    std::string clip(uint32_t off) const {
        std::string_view s = p_.cstr(off);
        std::string out;
        for (char c : s.substr(0, 64)) out += kChars.print[static_cast<uint8_t>(c)] ? std::string(1, c) : fmt::format("\\x{:02x}", uint8_t(c));
        if (s.size() > 64) out += "...";
        return out;
    }

    // ── references ──
    void ref(uint32_t type) {
        if (type > max_ref_) {
            max_ref_ = type;
            max_ref_id_ = cur_id_;
        }
    }
    // The kind of an id defined before the current one, in this part or the base. A byte
    // per type keeps this lookup in cache (vmlinux has ~56k FUNCs to check).
    uint32_t kind_of_earlier(uint32_t id) const {
        if (id == 0) return 0;
        if (id >= p_.start_id) return kinds_[id - p_.start_id];
        const Part* owner;
        return (base_->record(id, &owner)[1] >> 24) & 0x1f;
    }
    uint32_t info_of(uint32_t id) const {
        const Part* owner;
        const uint32_t* r = p_.record(id, &owner);
        return r ? r[1] : 0;
    }

    // ── per kind ──
    void no_vlen(uint32_t vlen) {
        if (vlen) fail(fmt::format("vlen must be 0, is {}", vlen));
    }
    void no_kflag(bool kflag) {
        if (kflag) fail("kflag must be 0");
    }

    void check(Kind kind, const uint32_t* t, uint32_t vlen, bool kflag) {
        const uint32_t name_off = t[0], st = t[2];
        const uint32_t* x = t + 3;
        switch (kind) {
        case Kind::Int: {
            no_vlen(vlen);
            no_kflag(kflag);
            const uint32_t data = x[0], enc = (data >> 24) & 0x0f, off = (data >> 16) & 0xff, bits = data & 0xff;
            if (data & 0xf0000000) fail(fmt::format("reserved bits set in the INT data {:#010x}", data));
            if (st == 0 || st > 16 || (st & (st - 1))) fail(fmt::format("INT size {} is not 1, 2, 4, 8 or 16", st));
            if (enc != 0 && enc != kIntSigned && enc != kIntChar && enc != kIntBool) fail(fmt::format("INT encoding {:#x} is invalid", enc));
            if (bits > 128 || off + bits > 128 || (off + bits + 7) / 8 > st)
                fail(fmt::format("INT of {} bytes cannot hold {} bits at bit offset {}", st, bits, off));
            break;
        }
        case Kind::Ptr:
        case Kind::Volatile:
        case Kind::Const:
        case Kind::Restrict:
            no_vlen(vlen);
            no_kflag(kflag);
            no_name(name_off);
            ref(st);
            break;
        case Kind::Typedef:
            no_vlen(vlen);
            no_kflag(kflag);
            need_identifier(name_off, "TYPEDEF");
            ref(st);
            break;
        case Kind::TypeTag:   // kflag marks an attribute rather than a btf_type_tag
            no_vlen(vlen);
            if (!*p_.cstr(name_off)) fail("TYPE_TAG must have a name");
            ref(st);
            break;
        case Kind::Array:
            no_vlen(vlen);
            no_kflag(kflag);
            no_name(name_off);
            if (st) fail(fmt::format("ARRAY size field must be 0, is {}", st));
            if (x[0] == 0) fail("ARRAY of void");
            if (x[1] == 0) fail("ARRAY index type is void");
            ref(x[0]);
            ref(x[1]);
            break;
        case Kind::Struct:
        case Kind::Union: check_composite(kind == Kind::Union, t, vlen, kflag); break;
        case Kind::Enum:
        case Kind::Enum64: {
            optional_identifier(name_off, kind_name(kind).data());
            if (st == 0 || st > 8 || (st & (st - 1))) fail(fmt::format("{} size {} is not 1, 2, 4 or 8", kind_name(kind), st));
            const uint32_t step = kind == Kind::Enum ? 2 : 3;
            for (uint32_t i = 0; i < vlen; ++i) {
                const uint32_t n = x[step * i];
                name_in_range(n, "enumerator", i);
                if (!n || !identifier(n)) fail(fmt::format("enumerator {} name '{}' is not a valid identifier", i, clip(n)));
            }
            break;
        }
        case Kind::Fwd:
            no_vlen(vlen);
            need_identifier(name_off, "FWD");
            break;
        case Kind::Func:
            no_kflag(kflag);
            need_identifier(name_off, "FUNC");
            if (vlen > uint32_t(Linkage::Extern)) fail(fmt::format("FUNC linkage {} is invalid", vlen));
            if (st == 0) fail("FUNC has no FUNC_PROTO (type 0)");
            if (st < cur_id_) {
                if (kind_of_earlier(st) != uint32_t(Kind::FuncProto))
                    fail(fmt::format("FUNC refers to type {}, which is not a FUNC_PROTO", st));
            } else {
                ref(st);
                deferred_.push_back(cur_id_);
            }
            break;
        case Kind::FuncProto:
            no_kflag(kflag);
            no_name(name_off);
            ref(st);
            for (uint32_t i = 0; i < vlen; ++i) {
                const uint32_t n = x[2 * i], type = x[2 * i + 1];
                name_in_range(n, "parameter", i);
                if (n && !identifier(n)) fail(fmt::format("parameter {} name '{}' is not a valid identifier", i, clip(n)));
                if (type == 0 && (i + 1 != vlen || n)) fail(fmt::format("parameter {} is void (only a last, unnamed one may be, for varargs)", i));
                ref(type);
            }
            break;
        case Kind::Var:
            no_vlen(vlen);
            no_kflag(kflag);
            need_identifier(name_off, "VAR");
            if (x[0] > uint32_t(Linkage::Extern)) fail(fmt::format("VAR linkage {} is invalid", x[0]));
            if (st == 0) fail("VAR of type void");
            ref(st);
            break;
        case Kind::Datasec: {
            no_kflag(kflag);
            if (!valid_section_name(p_.cstr(name_off))) fail(fmt::format("DATASEC name '{}' is not a valid section name", clip(name_off)));
            uint64_t last_end = 0;
            for (uint32_t i = 0; i < vlen; ++i) {
                const uint32_t type = x[3 * i], off = x[3 * i + 1], size = x[3 * i + 2];
                if (type == 0) fail(fmt::format("DATASEC entry {} is void", i));
                ref(type);
                // Objects leave the section size and offsets at 0 until the loader fills
                // them in; once a size is set, entries must fit, in order.
                if (st) {
                    if (uint64_t(off) + size > st)
                        fail(fmt::format("DATASEC entry {} at [{}, +{}) runs past the section's {} bytes", i, off, size, st));
                    if (off < last_end) fail(fmt::format("DATASEC entry {} at offset {} overlaps the one before it", i, off));
                    last_end = uint64_t(off) + size;
                }
            }
            deferred_.push_back(cur_id_);
            break;
        }
        case Kind::Float:
            no_vlen(vlen);
            no_kflag(kflag);
            if (st != 2 && st != 4 && st != 8 && st != 12 && st != 16) fail(fmt::format("FLOAT size {} is not 2, 4, 8, 12 or 16", st));
            break;
        case Kind::DeclTag:   // kflag marks an attribute rather than a btf_decl_tag
            no_vlen(vlen);
            if (!*p_.cstr(name_off)) fail("DECL_TAG must have a name");
            if (st == 0) fail("DECL_TAG on type void");
            if (static_cast<int32_t>(x[0]) < -1) fail(fmt::format("DECL_TAG component index {} is below -1", static_cast<int32_t>(x[0])));
            ref(st);
            deferred_.push_back(cur_id_);
            break;
        case Kind::Void: break;   // rejected before
        }
    }

    void check_composite(bool is_union, const uint32_t* t, uint32_t vlen, bool kflag) {
        optional_identifier(t[0], is_union ? "UNION" : "STRUCT");
        const uint64_t size_bits = uint64_t(t[2]) * 8;
        const uint32_t* m = t + 3;
        uint32_t last = 0;
        for (uint32_t i = 0; i < vlen; ++i, m += 3) {
            name_in_range(m[0], "member", i);
            if (m[0] && !identifier(m[0])) fail(fmt::format("member {} name '{}' is not a valid identifier", i, clip(m[0])));
            if (m[1] == 0) fail(fmt::format("member {} is of type void", i));
            ref(m[1]);
            const uint32_t off = kflag ? m[2] & 0xffffff : m[2];
            const uint32_t bits = kflag ? m[2] >> 24 : 0;
            if (is_union && off) fail(fmt::format("member {} of a union is at bit offset {}, not 0", i, off));
            if (off < last) fail(fmt::format("member {} at bit offset {} comes before the member before it (bit {})", i, off, last));
            if (uint64_t(off) + bits > size_bits)
                fail(fmt::format("member {} at bit offset {}{} lies past the end of the {} bytes", i, off,
                                 bits ? fmt::format(" ({} bits)", bits) : std::string(), t[2]));
            last = off;
        }
    }

    // Checks that needed the kind of a type defined after the one checked.
    void late_check(uint32_t id) {
        at(id);
        const uint32_t* t = p_.words.get() + cur_w_;
        switch (static_cast<Kind>((t[1] >> 24) & 0x1f)) {
        case Kind::Func:
            if (((info_of(t[2]) >> 24) & 0x1f) != uint32_t(Kind::FuncProto)) fail(fmt::format("FUNC refers to type {}, which is not a FUNC_PROTO", t[2]));
            break;
        case Kind::Datasec:
            for (uint32_t i = 0; i < (t[1] & 0xffff); ++i) {
                const uint32_t k = (info_of(t[3 + 3 * i]) >> 24) & 0x1f;
                // clang puts extern functions (__ksym) in .ksyms as FUNC entries.
                if (k != uint32_t(Kind::Var) && k != uint32_t(Kind::Func))
                    fail(fmt::format("DATASEC entry {} refers to type {}, a {}, not a VAR", i, t[3 + 3 * i], kind_name(Kind(k))));
            }
            break;
        case Kind::DeclTag: {
            const int32_t idx = static_cast<int32_t>(t[3]);
            const uint32_t info = info_of(t[2]);
            const Kind k = static_cast<Kind>((info >> 24) & 0x1f);
            if (idx == -1) {
                if (k != Kind::Struct && k != Kind::Union && k != Kind::Var && k != Kind::Func && k != Kind::Typedef)
                    fail(fmt::format("DECL_TAG on type {}, a {}, which cannot carry one", t[2], kind_name(k)));
            } else if (k == Kind::Struct || k == Kind::Union) {
                if (uint32_t(idx) >= (info & 0xffff)) fail(fmt::format("DECL_TAG names member {} of type {}, which has {}", idx, t[2], info & 0xffff));
            } else if (k == Kind::Func) {
                const Part* owner;
                const uint32_t proto = p_.record(t[2], &owner)[2];
                const uint32_t pinfo = info_of(proto);
                if (((pinfo >> 24) & 0x1f) != uint32_t(Kind::FuncProto) || uint32_t(idx) >= (pinfo & 0xffff))
                    fail(fmt::format("DECL_TAG names parameter {} of FUNC {}, which does not have it", idx, t[2]));
            } else {
                fail(fmt::format("DECL_TAG names component {} of type {}, a {}, which has none", idx, t[2], kind_name(k)));
            }
            break;
        }
        default: break;
        }
    }

    Part& p_;
    const Part* base_;
    const uint32_t str_total_;
    const std::vector<uint64_t> idents_;
    std::vector<uint32_t> deferred_;
    std::unique_ptr<uint8_t[]> kinds_;   // kind of each type of this part checked so far
    uint32_t cur_id_ = 0;
    std::size_t cur_w_ = 0;
    uint32_t max_ref_ = 0, max_ref_id_ = 0;
};

}  // namespace

Btf::Btf(std::unique_ptr<Part> part) : part_(std::move(part)) {}
Btf::Btf(Btf&&) noexcept = default;
Btf& Btf::operator=(Btf&&) noexcept = default;
Btf::~Btf() = default;

Result<Btf> Btf::parse(std::span<const uint8_t> data, std::string name, const Btf* base) {
    return catch_error([&]() -> Btf {
        auto header_error = [&](std::size_t at, const std::string& what) { throw_btf(name, fmt::format("header at byte {:#x}: {}", at, what)); };
        if (data.size() < kHeaderSize) header_error(0, fmt::format("{} bytes is shorter than the {}-byte BTF header", data.size(), kHeaderSize));
        uint16_t magic;
        std::memcpy(&magic, data.data(), 2);
        const bool swap = magic == __builtin_bswap16(kMagic);
        if (magic != kMagic && !swap) header_error(0, fmt::format("bad magic {:02x} {:02x} (expected 0xeb9f in either byte order)", data[0], data[1]));
        if (data[2] != 1) header_error(2, fmt::format("version {} is not 1", data[2]));
        if (data[3] != 0) header_error(3, fmt::format("flags {:#x} are not 0", data[3]));
        const uint32_t hdr_len = load32(&data[4], swap);
        if (hdr_len < kHeaderSize || hdr_len > data.size())
            header_error(4, fmt::format("header length {} is outside {}..{} (the data size)", hdr_len, kHeaderSize, data.size()));
        for (std::size_t i = kHeaderSize; i < hdr_len; ++i)
            if (data[i]) header_error(i, "the header's bytes past the known fields are not 0");
        const uint32_t type_off = load32(&data[8], swap), type_len = load32(&data[12], swap);
        const uint32_t str_off = load32(&data[16], swap), str_len = load32(&data[20], swap);
        const uint64_t body = data.size() - hdr_len;
        if (uint64_t(type_off) + type_len > body)
            header_error(8, fmt::format("type section [{}, +{}) runs past the end of the data ({} bytes after the header)", type_off, type_len, body));
        if (uint64_t(str_off) + str_len > body)
            header_error(16, fmt::format("string section [{}, +{}) runs past the end of the data ({} bytes after the header)", str_off, str_len, body));
        if (type_off % 4 || type_len % 4) header_error(8, fmt::format("type section [{}, +{}) is not 4-byte aligned", type_off, type_len));
        if (type_len && str_len && type_off < uint64_t(str_off) + str_len && str_off < uint64_t(type_off) + type_len)
            header_error(8, fmt::format("type section [{}, +{}) and string section [{}, +{}) overlap", type_off, type_len, str_off, str_len));

        auto p = std::make_unique<Part>();
        p->name = name;
        p->types_at = hdr_len + type_off;
        if (base) {
            p->base = base->part_.get();
            p->start_id = base->count();
            p->str_start = base->strings_end();
            if (uint64_t(p->str_start) + str_len > UINT32_MAX) header_error(20, "base and split strings exceed 4 GiB");
        }

        // Strings: the base section starts with the empty string; every section ends in a NUL,
        // so any offset inside it starts a terminated string.
        const uint8_t* strs = data.data() + hdr_len + str_off;
        const std::size_t str_at = hdr_len + str_off;
        if (!base && str_len == 0) header_error(16, "string section is empty (it must hold at least the empty string)");
        if (!base && strs[0] != 0) throw_btf(name, fmt::format("string section at byte {:#x}: does not start with the empty string", str_at));
        if (str_len && strs[str_len - 1] != 0)
            throw_btf(name, fmt::format("string section at byte {:#x}: the last string is not NUL-terminated", str_at + str_len - 1));
        p->strings = std::make_unique_for_overwrite<char[]>(str_len + kStringPad);
        std::vector<uint64_t> idents(str_len / 64 + 1, 0);
        copy_strings(strs, p->strings.get(), str_len, idents.data());
        p->str_len = str_len;

        // Types, converted to host order once.
        p->nwords = type_len / 4;
        p->words = std::make_unique_for_overwrite<uint32_t[]>(p->nwords ? p->nwords : 1);
        const uint8_t* types = data.data() + p->types_at;
        if (type_len) std::memcpy(p->words.get(), types, type_len);
        if (swap)
            for (std::size_t i = 0; i < p->nwords; ++i) p->words[i] = bswap(p->words[i]);

        Validator(*p, p->base, std::move(idents)).run();
        return Btf(std::move(p));
    });
}

Result<Btf> Btf::load_file(const std::filesystem::path& path, const Btf* base) {
    Location loc;
    loc.file = path.string();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return Error(ErrorCode::Io, fmt::format("cannot open: {}", std::strerror(errno)), loc);
    std::vector<uint8_t> bytes;
    std::error_code ec;
    const auto hint = std::filesystem::file_size(path, ec);
    bytes.resize(!ec && hint > 0 ? hint + 1 : 1 << 16);
    std::size_t got = 0;
    for (;;) {
        got += std::fread(bytes.data() + got, 1, bytes.size() - got, f);
        if (got < bytes.size()) break;
        bytes.resize(bytes.size() * 2);
    }
    const bool failed = std::ferror(f);
    std::fclose(f);
    if (failed) return Error(ErrorCode::Io, "read error", loc);
    bytes.resize(got);
    return parse(bytes, path.string(), base);
}

// ─────────────────────────────── queries ───────────────────────────────

const std::string& Btf::name() const { return part_->name; }
uint32_t Btf::count() const { return part_->count(); }
uint32_t Btf::start_id() const { return part_->start_id; }
bool Btf::is_split() const { return part_->base != nullptr; }
uint32_t Btf::strings_end() const { return part_->strings_end(); }
Type Btf::type(uint32_t id) const { return part_->type(id); }
std::string_view Btf::str(uint32_t offset) const { return part_->str(offset); }

std::vector<uint32_t> Btf::find_all(std::string_view name, Kind kind) const {
    std::vector<const Part*> chain;
    for (const Part* p = part_.get(); p; p = p->base) chain.push_back(p);
    std::vector<uint32_t> out;
    if (name.empty()) return out;
    const std::hash<std::string_view> hash;
    const std::size_t h0 = hash(name);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {   // base first: lower ids
        const Part& p = **it;
        std::call_once(p.index_once, [&p] { p.build_index(); });
        const std::size_t mask = p.index.size() - 1;
        // Equal names share a probe sequence and were inserted in id order.
        for (std::size_t h = h0 & mask; p.index[h]; h = (h + 1) & mask) {
            const uint32_t id = p.index[h];
            const uint32_t* r = &p.words[p.offsets[id - p.start_id]];
            if (static_cast<Kind>((r[1] >> 24) & 0x1f) == kind && p.cstr(r[0]) == name) out.push_back(id);
        }
    }
    return out;
}

std::optional<uint32_t> Btf::find(std::string_view name, Kind kind) const {
    std::vector<const Part*> chain;
    for (const Part* p = part_.get(); p; p = p->base) chain.push_back(p);
    if (name.empty()) return std::nullopt;
    const std::size_t h0 = std::hash<std::string_view>()(name);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        const Part& p = **it;
        std::call_once(p.index_once, [&p] { p.build_index(); });
        const std::size_t mask = p.index.size() - 1;
        for (std::size_t h = h0 & mask; p.index[h]; h = (h + 1) & mask) {
            const uint32_t id = p.index[h];
            const uint32_t* r = &p.words[p.offsets[id - p.start_id]];
            if (static_cast<Kind>((r[1] >> 24) & 0x1f) == kind && p.cstr(r[0]) == name) return id;
        }
    }
    return std::nullopt;
}

uint32_t Btf::resolve(uint32_t id) const {
    const uint32_t start = id;
    for (int depth = 0; depth <= kMaxDepth; ++depth) {
        const Type t = type(id);
        if (!is_modifier(t.raw_[1])) return id;
        id = t.raw_[2];
    }
    // Too deep: say whether it loops, and show the chain.
    std::vector<uint32_t> seen;
    std::string chain;
    bool cycle = false;
    for (uint32_t cur = start; seen.size() <= std::size_t(kMaxDepth); cur = type(cur).raw_[2]) {
        if (std::find(seen.begin(), seen.end(), cur) != seen.end()) {
            cycle = true;
            break;
        }
        if (seen.size() < 8) chain += fmt::format("{}[{}]", seen.empty() ? "" : " -> ", cur);
        seen.push_back(cur);
    }
    throw_btf(part_->name, cycle ? fmt::format("type [{}] does not resolve: typedefs/modifiers form a cycle ({} -> ...)", start, chain)
                                 : fmt::format("type [{}] does not resolve: more than {} typedefs/modifiers in a row", start, kMaxDepth));
}

uint64_t Btf::size_of(uint32_t id) const {
    const uint32_t start = id;
    uint64_t mult = 1;
    auto scaled = [&](uint64_t size) {
        uint64_t out;
        if (__builtin_mul_overflow(mult, size, &out)) throw_btf(part_->name, fmt::format("the size of type [{}] overflows 64 bits", start));
        return out;
    };
    for (int depth = 0; depth <= kMaxDepth; ++depth) {
        const Type t = type(resolve(id));
        switch (t.kind()) {
        case Kind::Int:
        case Kind::Struct:
        case Kind::Union:
        case Kind::Enum:
        case Kind::Enum64:
        case Kind::Float:
        case Kind::Datasec: return scaled(t.raw_[2]);
        case Kind::Ptr: return scaled(8);
        case Kind::Var: id = t.raw_[2]; break;
        case Kind::Array:
            mult = scaled(t.raw_[5]);
            id = t.raw_[3];
            break;
        default:
            throw_btf(part_->name, fmt::format("type [{}] ({}) has no size{}", start, type_name(start),
                                               t.id() == start ? "" : fmt::format(": it is made of type [{}], a {}", t.id(), kind_name(t.kind()))));
        }
    }
    throw_btf(part_->name, fmt::format("type [{}] nests arrays and variables more than {} deep", start, kMaxDepth));
}

namespace {

// Spells a type as a C declaration around `inner` (the declarator built so far).
// Depth is bounded, and so is the total work: function prototypes fan out.
class Speller {
public:
    explicit Speller(const Part& p) : p_(p) {}

    std::string spell(uint32_t id, std::string inner, int depth = 0) {
        if (depth > kMaxDepth || --budget_ < 0 || inner.size() > kMaxSpelling) return join("...", inner.substr(0, kMaxSpelling));
        const Part* owner;
        const uint32_t* r = p_.record(id, &owner);
        if (!r) return join(fmt::format("<bad type {}>", id), inner);
        const Kind kind = static_cast<Kind>((r[1] >> 24) & 0x1f);
        const std::string_view name = owner->cstr(r[0]);
        auto tagged = [&](const char* keyword) { return join(fmt::format("{} {}", keyword, name.empty() ? "(anon)" : name), inner); };
        switch (kind) {
        case Kind::Void: return join("void", inner);
        case Kind::Int:
        case Kind::Float:
        case Kind::Typedef: return join(std::string(name), inner);
        case Kind::Struct: return tagged("struct");
        case Kind::Union: return tagged("union");
        case Kind::Enum:
        case Kind::Enum64: return tagged("enum");
        case Kind::Fwd: return tagged(r[1] >> 31 ? "union" : "struct");
        case Kind::Const:
        case Kind::Volatile:
        case Kind::Restrict: {
            const char* q = kind == Kind::Const ? "const" : kind == Kind::Volatile ? "volatile" : "restrict";
            // A qualified pointer is "T *const"; anything else is "const T".
            if (kind_behind_tags(r[2], depth) == Kind::Ptr) return spell(r[2], join(q, inner), depth + 1);
            return std::string(q) + " " + spell(r[2], std::move(inner), depth + 1);
        }
        case Kind::TypeTag: return spell(r[2], std::move(inner), depth + 1);
        case Kind::Ptr: {
            const Kind target = kind_behind_tags(r[2], depth);
            std::string decl = "*" + inner;
            if (target == Kind::Array || target == Kind::FuncProto) decl = "(" + decl + ")";
            return spell(r[2], std::move(decl), depth + 1);
        }
        case Kind::Array: return spell(r[3], fmt::format("{}[{}]", inner, r[5]), depth + 1);
        case Kind::FuncProto: {
            const uint32_t vlen = r[1] & 0xffff;
            std::string params;
            for (uint32_t i = 0; i < vlen; ++i) {
                if (i) params += ", ";
                if (budget_ <= 0 || params.size() > kMaxSpelling) {
                    params += "...";
                    break;
                }
                params += r[4 + 2 * i] == 0 ? std::string("...") : spell(r[4 + 2 * i], "", depth + 1);
            }
            if (vlen == 0) params = "void";
            return spell(r[2], fmt::format("{}({})", inner, params), depth + 1);
        }
        case Kind::Func: return spell(r[2], join(std::string(name), inner), depth + 1);
        case Kind::Var: return spell(r[2], join(std::string(name), inner), depth + 1);
        case Kind::Datasec: return join(fmt::format("datasec {}", name), inner);
        case Kind::DeclTag: return fmt::format("decl_tag {} on {}", name, spell(r[2], "", depth + 1));
        }
        return join("<?>", inner);
    }

private:
    static std::string join(std::string head, const std::string& inner) {
        if (!inner.empty()) {
            head += ' ';
            head += inner;
        }
        return head;
    }
    Kind kind_behind_tags(uint32_t id, int depth) {
        for (; depth <= kMaxDepth; ++depth) {
            const Part* owner;
            const uint32_t* r = p_.record(id, &owner);
            if (!r) return Kind::Void;
            const Kind k = static_cast<Kind>((r[1] >> 24) & 0x1f);
            if (k != Kind::TypeTag) return k;
            id = r[2];
        }
        return Kind::Void;
    }

    const Part& p_;
    int budget_ = 512;
};

}  // namespace

std::string Btf::type_name(uint32_t id) const { return Speller(*part_).spell(id, ""); }

std::optional<Member> Btf::member_by_name(uint32_t struct_id, std::string_view name) const {
    // Anonymous members nest; corrupt BTF could nest them in a loop or fan them out, so
    // both the depth and the number of members looked at are bounded.
    int budget = 1 << 16;
    auto search = [&](auto& self, uint32_t id, int depth) -> std::optional<Member> {
        if (depth > kMaxDepth) throw_btf(part_->name, fmt::format("type [{}]: anonymous members nest more than {} deep", struct_id, kMaxDepth));
        const Type t = type(resolve(id));
        if (t.kind() != Kind::Struct && t.kind() != Kind::Union) return std::nullopt;
        for (uint32_t i = 0; i < t.vlen(); ++i) {
            if (--budget < 0) throw_btf(part_->name, fmt::format("type [{}]: too many anonymous members to search", struct_id));
            const Member m = t.member(i);
            if (m.name == name) return m;
            if (m.name.empty()) {
                if (auto inner = self(self, m.type, depth + 1)) {
                    inner->bit_offset += m.bit_offset;
                    return inner;
                }
            }
        }
        return std::nullopt;
    };
    if (name.empty()) return std::nullopt;
    return search(search, struct_id, 0);
}

// ─────────────────────────────── output ───────────────────────────────

std::vector<uint8_t> Btf::to_bytes() const {
    const Part& p = *part_;
    const uint32_t type_len = static_cast<uint32_t>(p.nwords * 4), str_len = p.str_len;
    std::vector<uint8_t> out(kHeaderSize + type_len + str_len);
    const uint16_t magic = kMagic;
    std::memcpy(out.data(), &magic, 2);
    out[2] = 1;   // version
    out[3] = 0;   // flags
    const uint32_t fields[5] = {kHeaderSize, 0, type_len, type_len, str_len};
    std::memcpy(out.data() + 4, fields, sizeof fields);
    if (type_len) std::memcpy(out.data() + kHeaderSize, p.words.get(), type_len);
    if (str_len) std::memcpy(out.data() + kHeaderSize + type_len, p.strings.get(), str_len);
    return out;
}

void Btf::fix_datasec(uint32_t id, uint32_t size, const std::vector<uint32_t>& var_offsets) {
    Part& p = *part_;
    if (id < p.start_id || id - p.start_id >= p.offsets.size())
        throw Error(ErrorCode::Internal, fmt::format("fix_datasec: type {} is not in this part of {}", id, p.name));
    uint32_t* w = &p.words[p.offsets[id - p.start_id]];
    if (static_cast<Kind>((w[1] >> 24) & 0x1f) != Kind::Datasec || var_offsets.size() != (w[1] & 0xffff))
        throw Error(ErrorCode::Internal, fmt::format("fix_datasec: type {} is not a DATASEC with {} entries", id, var_offsets.size()));
    w[2] = size;
    for (std::size_t i = 0; i < var_offsets.size(); ++i) w[4 + 3 * i] = var_offsets[i];
}

}  // namespace bpfsim::btf
