// BTF as text: bpftool's raw and JSON records, and libbpf's BTF-to-C converter.
//
// The C writer follows the algorithm of libbpf's btf_dump.c (read as a reference; this is
// its own code): for every type id in order, a depth-first pass orders the type and what
// it needs (a strong link when a type must be complete first — embedded, or reached
// through anonymous types — a weak one when a forward declaration will do), queueing the
// named definitions; a second pass writes each queued definition, first writing forward
// declarations and typedefs its members refer to. Declarators are built the C way from a
// stack of the modifier/pointer/array/function chain. Everything that decides the exact
// text — when a forward declaration appears, renaming NAME___N in the order names are first
// used, padding members, the packed attribute — matches Debian 12's bpftool (libbpf 1.1
// with its stable fixes), so `diff` against `bpftool btf dump file F format c` is empty.
#include "btf/dump.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <vector>

namespace bpfsim::btf {

namespace {

// Behaviours that differ between libbpf versions; these are the ones of bpftool 7.1 as
// Debian 12 ships it (checked against its output).
constexpr bool kEnumModeAttributes = false;   // `__attribute__((mode(byte)))` on 1-byte enums (later libbpf)
constexpr bool kTypeTagAttributes = false;    // TYPE_TAG with kflag as `__attribute__((NAME))` (later libbpf)

constexpr int kMaxTabs = 13;        // libbpf's indentation stops at 13 tabs
constexpr std::size_t kChunk = 64 * 1024;   // what goes to a sink at a time
constexpr int kMaxDepth = 4096;     // recursion guard for malformed input

bool is_composite(Kind k) { return k == Kind::Struct || k == Kind::Union; }
bool is_mod(Kind k) { return k == Kind::Volatile || k == Kind::Const || k == Kind::Restrict || k == Kind::TypeTag; }

// Appends text and numbers to a string without formatting machinery.
struct Out {
    std::string& s;
    void put(std::string_view v) { s.append(v); }
    void put(char c) { s.push_back(c); }
    template <class T>
    void num(T v) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        s.append(buf, r.ptr);
    }
    void tabs(int lvl) { s.append(static_cast<std::size_t>(std::min(lvl, kMaxTabs)), '\t'); }
};

// Hands `out` to the sink once it holds a chunk (or at the end, what is left).
void maybe_flush(std::string& out, const DumpOptions& opts, bool last = false) {
    if (opts.sink && (last || out.size() >= kChunk)) {
        opts.sink(out);
        out.clear();
    }
}

[[noreturn]] void fail(const Btf& btf, std::string message) {
    Location loc;
    loc.file = btf.name();
    throw Error(ErrorCode::InvalidBtf, std::move(message), loc);
}

// ─────────────────────────────── C ───────────────────────────────

// Occurrences of each name (libbpf's name -> count hashmaps): open addressing keyed by the
// text, which is compared by pointer first (deduplicated string sections share offsets).
class NameCounts {
public:
    NameCounts() : slots_(1024) {}

    // Counts one more use of `name`; returns the count so far (1 for the first).
    uint32_t bump(std::string_view name) {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = hash(name) & mask;; i = (i + 1) & mask) {
            Slot& s = slots_[i];
            if (!s.count) {
                s = {name.data(), static_cast<uint32_t>(name.size()), 1};
                if (++used_ * 4 > slots_.size() * 3) grow();
                return 1;
            }
            if (s.len == name.size() && (s.text == name.data() || std::memcmp(s.text, name.data(), s.len) == 0))
                return ++s.count;
        }
    }

private:
    struct Slot {
        const char* text = nullptr;
        uint32_t len = 0;
        uint32_t count = 0;   // 0: empty
    };

    static uint64_t hash(std::string_view s) {
        const char* p = s.data();
        std::size_t n = s.size();
        uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
        for (; n >= 8; p += 8, n -= 8) {
            uint64_t w;
            std::memcpy(&w, p, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdull;
            h ^= h >> 32;
        }
        if (n) {
            uint64_t w = 0;
            std::memcpy(&w, p, n);
            h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        return h ^ (h >> 29);
    }

    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        const std::size_t mask = slots_.size() - 1;
        for (const Slot& s : old) {
            if (!s.count) continue;
            std::size_t i = hash({s.text, s.len}) & mask;
            while (slots_[i].count) i = (i + 1) & mask;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    std::size_t used_ = 0;
};

class CWriter {
public:
    CWriter(const Btf& btf, std::string& out, uint32_t ptr_sz, const DumpOptions& opts)
        : btf_(btf), o_{out}, opts_(opts), ptr_sz_(static_cast<int>(ptr_sz)), n_(btf.count()), st_(n_), align_(n_, -1) {
        st_[0].order = kOrdered;
        st_[0].emit = kEmitted;
        for (uint32_t id = 1; id < n_; ++id) mark_referenced(id);
    }

    void run() {
        Out& o = o_;
        o.put("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
              "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
              "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
              "#endif\n\n");
        for (uint32_t id = 1; id < n_; ++id) {
            queue_.clear();
            order(id, false, 0);
            for (std::size_t i = 0; i < queue_.size(); ++i) emit(queue_[i], 0, 0);
            maybe_flush(o.s, opts_);
        }
        o.put("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n");
        maybe_flush(o.s, opts_, true);
    }

private:
    enum : uint8_t { kNotOrdered = 0, kOrdering = 1, kOrdered = 2 };
    enum : uint8_t { kNotEmitted = 0, kEmitting = 1, kEmitted = 2 };
    struct State {
        uint8_t order : 2 = kNotOrdered;
        uint8_t emit : 2 = kNotEmitted;
        uint8_t fwd_emitted : 1 = 0;
        uint8_t name_resolved : 1 = 0;
        uint8_t referenced : 1 = 0;
        uint8_t renamed : 1 = 0;       // resolved to NAME___N (in renamed_)
    };

    // A frame of the shared declarator stack: ids [start, start + cnt), the top last.
    struct Frame {
        std::size_t start;
        std::size_t cnt;
    };

    Type type(uint32_t id) const { return btf_.type(id); }

    void ref(uint32_t id) {
        if (id < n_) st_[id].referenced = 1;
    }

    // Types referred to by another type: an anonymous enum nobody refers to is a
    // top-level declaration of constants, one that is referred to is written inline.
    void mark_referenced(uint32_t id) {
        const Type t = type(id);
        switch (t.kind()) {
        case Kind::Int: case Kind::Enum: case Kind::Enum64: case Kind::Fwd: case Kind::Float: break;
        case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::Ptr: case Kind::Typedef:
        case Kind::Func: case Kind::Var: case Kind::DeclTag: case Kind::TypeTag: ref(t.type()); break;
        case Kind::Array: {
            const ArrayInfo a = t.array();
            ref(a.index_type);
            ref(a.type);
            break;
        }
        case Kind::Struct: case Kind::Union:
            for (uint32_t i = 0; i < t.vlen(); ++i) ref(t.member(i).type);
            break;
        case Kind::FuncProto:
            for (uint32_t i = 0; i < t.vlen(); ++i) ref(t.param(i).type);
            break;
        case Kind::Datasec:
            for (uint32_t i = 0; i < t.vlen(); ++i) ref(t.var(i).type);
            break;
        default: fail(btf_, fmt::format("type [{}] has an unknown kind", id));
        }
    }

    // Orders `id` and what it needs, queueing named definitions. Returns true for a strong
    // link (the type must be complete before its user), false when a forward declaration
    // is enough.
    bool order(uint32_t id, bool through_ptr, int depth) {
        if (depth > kMaxDepth) fail(btf_, fmt::format("type [{}] is nested too deeply to write as C", id));
        State& s = st_[id];
        if (s.order == kOrdered) return true;
        const Type t = type(id);
        const Kind k = t.kind();
        if (s.order == kOrdering) {
            if (is_composite(k) && through_ptr && t.name_off()) return false;
            fail(btf_, fmt::format("unsatisfiable type cycle, id:[{}]", id));
        }
        switch (k) {
        case Kind::Int: case Kind::Float:
            s.order = kOrdered;
            return false;
        case Kind::Ptr: {
            const bool strong = order(t.type(), true, depth + 1);
            st_[id].order = kOrdered;
            return strong;
        }
        case Kind::Array: return order(t.array().type, false, depth + 1);
        case Kind::Struct: case Kind::Union: {
            // Part of a strong link only when embedded (no pointer on the way) or anonymous
            // (defined inline even behind a pointer).
            if (through_ptr && t.name_off()) return false;
            s.order = kOrdering;
            for (uint32_t i = 0; i < t.vlen(); ++i) order(t.member(i).type, false, depth + 1);
            if (t.name_off()) queue_.push_back(id);
            st_[id].order = kOrdered;
            return true;
        }
        case Kind::Enum: case Kind::Enum64: case Kind::Fwd:
            if (t.name_off() || !s.referenced) queue_.push_back(id);
            s.order = kOrdered;
            return true;
        case Kind::Typedef: {
            const bool strong = order(t.type(), through_ptr, depth + 1);
            if (through_ptr && !strong) return false;
            queue_.push_back(id);
            st_[id].order = kOrdered;
            return true;
        }
        case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::TypeTag:
            return order(t.type(), through_ptr, depth + 1);
        case Kind::FuncProto: {
            bool strong = order(t.type(), through_ptr, depth + 1);
            for (uint32_t i = 0; i < t.vlen(); ++i)
                if (order(t.param(i).type, through_ptr, depth + 1)) strong = true;
            return strong;
        }
        case Kind::Func: case Kind::Var: case Kind::Datasec: case Kind::DeclTag:
            s.order = kOrdered;
            return false;
        default: fail(btf_, fmt::format("type [{}] has an unknown kind", id));
        }
    }

    bool blacklisted(const Type& t) const { return t.name_off() && t.name() == "__builtin_va_list"; }

    // Writes the definitions `id` needs, then `id` itself when it is a top-level definition
    // (cont_id 0). cont_id is the named struct/union being defined, if any: references to
    // it from inside need no forward declaration.
    void emit(uint32_t id, uint32_t cont_id, int depth) {
        if (depth > kMaxDepth) fail(btf_, fmt::format("type [{}] is nested too deeply to write as C", id));
        State& s = st_[id];
        if (s.emit == kEmitted) return;
        const bool top_level = cont_id == 0;
        const Type t = type(id);
        const Kind k = t.kind();
        Out& o = o_;

        if (s.emit == kEmitting) {
            if (s.fwd_emitted) return;
            if (is_composite(k)) {
                if (id == cont_id) return;
                if (!t.name_off()) return;   // an anonymous struct/union loop: nothing to write
                struct_fwd(id, t);
                o.put(";\n\n");
                st_[id].fwd_emitted = 1;
            } else if (k == Kind::Typedef) {
                // The typedef is written now as a forward declaration: its users only hold
                // pointers to it.
                if (!blacklisted(t)) {
                    typedef_def(id, t, 0);
                    o.put(";\n\n");
                }
                st_[id].fwd_emitted = 1;
            }
            return;
        }

        switch (k) {
        case Kind::Int:
            missing_aliases(id);
            st_[id].emit = kEmitted;
            break;
        case Kind::Enum: case Kind::Enum64:
            if (top_level) {
                enum_def(id, t, 0);
                o.put(";\n\n");
            }
            st_[id].emit = kEmitted;
            break;
        case Kind::Ptr: case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::TypeTag:
            emit(t.type(), cont_id, depth + 1);
            break;
        case Kind::Array: emit(t.array().type, cont_id, depth + 1); break;
        case Kind::Fwd:
            fwd_def(id, t);
            o.put(";\n\n");
            st_[id].emit = kEmitted;
            break;
        case Kind::Typedef:
            s.emit = kEmitting;
            emit(t.type(), id, depth + 1);
            if (!st_[id].fwd_emitted && !blacklisted(t)) {
                typedef_def(id, t, 0);
                o.put(";\n\n");
            }
            st_[id].emit = kEmitted;
            break;
        case Kind::Struct: case Kind::Union:
            s.emit = kEmitting;
            // A definition (top level, or inline when anonymous) writes every member, so
            // their types need their declarations first.
            if (top_level || !t.name_off()) {
                const uint32_t new_cont = t.name_off() ? id : cont_id;
                for (uint32_t i = 0; i < t.vlen(); ++i) emit(t.member(i).type, new_cont, depth + 1);
            } else if (!st_[id].fwd_emitted && id != cont_id) {
                struct_fwd(id, t);
                o.put(";\n\n");
                st_[id].fwd_emitted = 1;
            }
            if (top_level) {
                struct_def(id, t, 0);
                o.put(";\n\n");
                st_[id].emit = kEmitted;
            } else {
                st_[id].emit = kNotEmitted;
            }
            break;
        case Kind::FuncProto:
            emit(t.type(), cont_id, depth + 1);
            for (uint32_t i = 0; i < t.vlen(); ++i) emit(t.param(i).type, cont_id, depth + 1);
            break;
        default: break;
        }
    }

    // ── names ──

    // The name a type is written with: its own, or NAME___N when N-1 types of the same
    // namespace took the name before (counted in the order names are first used).
    std::string_view resolve_name(uint32_t id, NameCounts& map) {
        State& s = st_[id];
        if (s.name_resolved) return s.renamed ? std::string_view(renamed_.find(id)->second) : type(id).name();
        const Type t = type(id);
        if (!t.name_off()) return {};
        s.name_resolved = 1;
        const std::string_view orig = t.name();
        // forward declarations keep their name: the definition may come later
        if (t.kind() == Kind::Fwd || (t.kind() == Kind::Enum && t.vlen() == 0)) return orig;
        const uint32_t dups = map.bump(orig);
        if (dups <= 1) return orig;
        std::string renamed = fmt::format("{}___{}", orig, dups);
        if (renamed.size() > 255) renamed.resize(255);   // libbpf's 256-byte buffer
        s.renamed = 1;
        return renamed_.emplace(id, std::move(renamed)).first->second;
    }
    // struct/union/enum tags, and typedef names (which share their namespace with enumerators)
    std::string_view type_name(uint32_t id) { return resolve_name(id, type_names_); }
    std::string_view ident_name(uint32_t id) { return resolve_name(id, ident_names_); }

    // ── layout ──

    // libbpf's btf__align_of: natural alignment, 1 for a struct whose layout shows it is
    // packed, 0 for a type without one.
    int align_of(uint32_t id, int depth = 0) {
        if (id < n_ && align_[id] >= 0) return align_[id];
        if (depth > kMaxDepth) fail(btf_, fmt::format("type [{}] is nested too deeply to write as C", id));
        const Type t = type(id);
        int a = 0;
        switch (t.kind()) {
        case Kind::Int: case Kind::Enum: case Kind::Enum64: case Kind::Float:
            a = static_cast<int>(std::min<uint32_t>(static_cast<uint32_t>(ptr_sz_), t.size()));
            break;
        case Kind::Ptr: a = ptr_sz_; break;
        case Kind::Typedef: case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::TypeTag:
            a = align_of(t.type(), depth + 1);
            break;
        case Kind::Array: a = align_of(t.array().type, depth + 1); break;
        case Kind::Struct: case Kind::Union: {
            int max_align = 1;
            a = -2;
            for (uint32_t i = 0; i < t.vlen() && a == -2; ++i) {
                const Member m = t.member(i);
                const int ma = align_of(m.type, depth + 1);
                if (ma <= 0) a = 0;
                else {
                    max_align = std::max(max_align, ma);
                    // a member off its natural alignment: the struct must be packed
                    if (m.bitfield_size == 0 && m.bit_offset % (8u * static_cast<uint32_t>(ma)) != 0) a = 1;
                }
            }
            if (a == -2) a = t.size() % static_cast<uint32_t>(max_align) ? 1 : max_align;
            break;
        }
        default: a = 0; break;
        }
        if (id < n_) align_[id] = static_cast<int8_t>(std::min(a, 127));
        return a;
    }

    // libbpf's btf__resolve_size; negative when the type has no size.
    int64_t resolve_size(uint32_t id) const {
        uint64_t nelems = 1;
        int64_t size = -1;
        for (int i = 0; i < 32 && id != 0; ++i) {
            const Type t = type(id);
            switch (t.kind()) {
            case Kind::Int: case Kind::Struct: case Kind::Union: case Kind::Enum: case Kind::Enum64:
            case Kind::Datasec: case Kind::Float:
                size = t.size();
                goto done;
            case Kind::Ptr: size = ptr_sz_; goto done;
            case Kind::Typedef: case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::Var:
            case Kind::DeclTag: case Kind::TypeTag:
                id = t.type();
                break;
            case Kind::Array: {
                const ArrayInfo a = t.array();
                if (nelems && a.nelems > UINT32_MAX / nelems) return -1;
                nelems *= a.nelems;
                id = a.type;
                break;
            }
            default: return -1;
            }
        }
    done:
        if (size < 0) return -1;
        if (nelems && static_cast<uint64_t>(size) > UINT32_MAX / nelems) return -1;
        return static_cast<int64_t>(nelems * static_cast<uint64_t>(size));
    }

    bool struct_packed(const Type& t) {
        int max_align = 1;
        for (uint32_t i = 0; i < t.vlen(); ++i) {
            const Member m = t.member(i);
            const int a = align_of(m.type);
            if (a && m.bitfield_size == 0 && m.bit_offset % (8u * static_cast<uint32_t>(a)) != 0) return true;
            max_align = std::max(a, max_align);
        }
        return t.size() % static_cast<uint32_t>(max_align) != 0;
    }

    // Explicit padding from bit cur_off to next_off: the widest of long/int/short/char
    // that reaches an aligned offset, an aligning `TYPE: 0;` where the compiler would not
    // get there by itself, then whole units and a smaller remainder.
    void bit_padding(int64_t cur_off, int64_t next_off, int next_align, bool in_bitfield, int lvl) {
        struct Pad {
            std::string_view name;
            int64_t bits;
        };
        const Pad pads[] = {{"long", ptr_sz_ * 8}, {"int", 32}, {"short", 16}, {"char", 8}};
        // (libbpf divides by zero here when a member type has no alignment; this does not)
        auto roundup = [](int64_t x, int64_t y) { return y ? (x + y - 1) / y * y : x; };
        if (cur_off >= next_off) return;
        Out& o = o_;
        auto pad = [&](std::string_view type, int64_t bits) {
            o.put('\n');
            o.tabs(lvl);
            o.put(type);
            o.put(": ");
            o.num(bits);
            o.put(';');
        };
        int64_t new_off = 0, pad_bits = 0;
        std::string_view pad_type;
        for (const Pad& p : pads) {
            pad_bits = p.bits;
            pad_type = p.name;
            new_off = roundup(cur_off, pad_bits);
            if (new_off <= next_off) break;
        }
        if (new_off > cur_off && new_off <= next_off) {
            if (in_bitfield || (new_off == next_off && roundup(cur_off, next_align * 8) != new_off) ||
                (new_off != next_off && next_off - new_off <= new_off - cur_off))
                pad(pad_type, in_bitfield ? new_off - cur_off : 0);
            cur_off = new_off;
        }
        while (cur_off != next_off) {
            const int64_t bits = std::min(next_off - cur_off, pad_bits);
            if (bits == pad_bits) {
                pad(pad_type, pad_bits);
                cur_off += bits;
                continue;
            }
            // the remainder: the smallest type that holds it
            for (int i = 3; i >= 0; --i) {
                pad_type = pads[i].name;
                pad_bits = pads[i].bits;
                if (pad_bits < bits) continue;
                pad(pad_type, bits);
                cur_off += bits;
                break;
            }
        }
    }

    // ── definitions ──

    void struct_fwd(uint32_t id, const Type& t) {
        Out& o = o_;
        o.put(t.kind() == Kind::Struct ? "struct" : "union");
        if (t.name_off()) o.put(' ');
        o.put(type_name(id));
    }

    void struct_def(uint32_t id, const Type& t, int lvl) {
        Out& o = o_;
        const bool is_struct = t.kind() == Kind::Struct;
        const uint32_t vlen = t.vlen();
        const int align = align_of(id);
        const bool packed = is_struct && struct_packed(t);
        o.put(is_struct ? "struct" : "union");
        if (t.name_off()) o.put(' ');
        o.put(type_name(id));
        o.put(" {");
        int64_t off = 0;
        bool prev_bitfield = false;
        for (uint32_t i = 0; i < vlen; ++i) {
            const Member m = t.member(i);
            const int64_t m_off = m.bit_offset;
            const int m_align = packed ? 1 : align_of(m.type);
            const bool in_bitfield = prev_bitfield && m.bitfield_size != 0;
            bit_padding(off, m_off, m_align, in_bitfield, lvl + 1);
            o.put('\n');
            o.tabs(lvl + 1);
            type_decl(m.type, m.name, lvl + 1);
            if (m.bitfield_size) {
                o.put(": ");
                o.num(m.bitfield_size);
                off = m_off + m.bitfield_size;
                prev_bitfield = true;
            } else {
                // In 64 bits: a member type of 2 GiB or more (corrupt BTF: it cannot fit its struct)
                // truncated to 32 would put `off` far below the next member, and the padding up to
                // it would run to billions of lines.
                off = m_off + std::max<int64_t>(0, resolve_size(m.type)) * 8;
                prev_bitfield = false;
            }
            o.put(';');
        }
        if (is_struct) bit_padding(off, int64_t(t.size()) * 8, align, false, lvl + 1);
        if (vlen || t.size()) {   // `struct empty {}` stays on one line
            o.put('\n');
            o.tabs(lvl);
        }
        o.put('}');
        if (packed) o.put(" __attribute__((packed))");
    }

    void missing_aliases(uint32_t id) {
        // GCC's internal __PolyX_t types of Arm SIMD intrinsics, aliased to standard ones.
        static constexpr std::string_view aliases[][2] = {
            {"__Poly8_t", "unsigned char"}, {"__Poly16_t", "unsigned short"},
            {"__Poly64_t", "unsigned long long"}, {"__Poly128_t", "unsigned __int128"},
        };
        const std::string_view name = type_name(id);
        for (const auto& a : aliases) {
            if (name == a[0]) {
                Out& o = o_;
                o.put("typedef ");
                o.put(a[1]);
                o.put(' ');
                o.put(name);
                o.put(";\n\n");
                break;
            }
        }
    }

    void enum_fwd(uint32_t id) {
        o_.put("enum ");
        o_.put(type_name(id));
    }

    void enum_def(uint32_t id, const Type& t, int lvl) {
        Out& o = o_;
        const uint32_t vlen = t.vlen();
        o.put("enum");
        if (t.name_off()) o.put(' ');
        o.put(type_name(id));
        if (!vlen) return;
        o.put(" {");
        const bool is_signed = t.kflag();
        const bool is64 = t.kind() == Kind::Enum64;
        bool upper_bits = false;
        for (uint32_t i = 0; i < vlen; ++i) {
            const EnumValue v = t.enumerator(i);
            // enumerators share their namespace with typedef names
            const uint32_t dups = ident_names_.bump(v.name);
            o.put('\n');
            o.tabs(lvl + 1);
            o.put(v.name);
            if (dups > 1) {
                o.put("___");
                o.num(dups);
            }
            o.put(" = ");
            if (is64) {
                upper_bits |= (static_cast<uint64_t>(v.value) >> 32) != 0;
                if (is_signed) {
                    o.num(v.value);
                    o.put("LL,");
                } else {
                    o.num(static_cast<uint64_t>(v.value));
                    o.put("ULL,");
                }
            } else if (is_signed) {
                o.num(static_cast<int32_t>(v.value));
                o.put(',');
            } else {
                o.num(static_cast<uint32_t>(v.value));
                o.put(',');
            }
        }
        o.put('\n');
        o.tabs(lvl);
        o.put('}');
        if constexpr (kEnumModeAttributes) {
            if (t.size() == 1) o.put(" __attribute__((mode(byte)))");
            else if (t.size() == 8 && ptr_sz_ == 8 && (!is64 || !upper_bits)) o.put(" __attribute__((mode(word)))");
        }
    }

    void fwd_def(uint32_t id, const Type& t) {
        o_.put(t.kflag() ? "union " : "struct ");
        o_.put(type_name(id));
    }

    void typedef_def(uint32_t id, const Type& t, int lvl) {
        const std::string_view name = ident_name(id);
        // Old GCC wrote __gnuc_va_list as a typedef of void.
        if (t.type() == 0 && name == "__gnuc_va_list") {
            o_.put("typedef __builtin_va_list __gnuc_va_list");
            return;
        }
        o_.put("typedef ");
        type_decl(t.type(), name, lvl);
    }

    // ── declarators ──

    // `TYPE NAME` in C syntax: pushes the chain of modifiers, pointers, arrays and function
    // prototypes down to a named or base type, then writes it inside out.
    void type_decl(uint32_t id, std::string_view fname, int lvl) {
        const std::size_t start = stack_.size();
        for (std::size_t guard = 0;; ++guard) {
            if (guard > kMaxDepth) fail(btf_, fmt::format("type [{}] is nested too deeply to write as C", id));
            stack_.push_back(id);
            if (id == 0) break;
            const Type t = type(id);
            bool done = false;
            switch (t.kind()) {
            case Kind::Ptr: case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::FuncProto:
            case Kind::TypeTag:
                id = t.type();
                break;
            case Kind::Array: id = t.array().type; break;
            default: done = true; break;   // a named or base type (anything else is not C)
            }
            if (done) break;
        }
        Frame f{start, stack_.size() - start};
        type_chain(f, fname, lvl);
        stack_.resize(start);
    }

    uint32_t top(const Frame& f) const { return stack_[f.start + f.cnt - 1]; }

    void emit_mods(Frame& f) {
        while (f.cnt) {
            const uint32_t id = top(f);
            const Kind k = id ? type(id).kind() : Kind::Void;
            if (k == Kind::Volatile) o_.put("volatile ");
            else if (k == Kind::Const) o_.put("const ");
            else if (k == Kind::Restrict) o_.put("restrict ");
            else return;
            --f.cnt;
        }
    }

    void drop_mods(Frame& f) {
        while (f.cnt) {
            const uint32_t id = top(f);
            if (!id || !is_mod(type(id).kind())) return;
            --f.cnt;
        }
    }

    void emit_name(std::string_view name, bool last_was_ptr) {
        if (!name.empty() && !last_was_ptr) o_.put(' ');
        o_.put(name);
    }

    void type_chain(Frame& f, std::string_view fname, int lvl) {
        Out& o = o_;
        // whether the previous part was a pointer: `int ***`, not `int * * *`
        bool last_was_ptr = true;
        while (f.cnt) {
            const uint32_t id = stack_[f.start + --f.cnt];
            if (id == 0) {
                emit_mods(f);
                o.put("void");
                last_was_ptr = false;
                continue;
            }
            const Type t = type(id);
            const Kind k = t.kind();
            switch (k) {
            case Kind::Int: case Kind::Float:
                emit_mods(f);
                o.put(t.name());
                break;
            case Kind::Struct: case Kind::Union:
                emit_mods(f);
                if (!t.name_off()) struct_def(id, t, lvl);   // anonymous: inline
                else struct_fwd(id, t);
                break;
            case Kind::Enum: case Kind::Enum64:
                emit_mods(f);
                if (!t.name_off()) enum_def(id, t, lvl);
                else enum_fwd(id);
                break;
            case Kind::Fwd:
                emit_mods(f);
                fwd_def(id, t);
                break;
            case Kind::Typedef:
                emit_mods(f);
                o.put(ident_name(id));
                break;
            case Kind::Ptr: o.put(last_was_ptr ? "*" : " *"); break;
            case Kind::Volatile: o.put(" volatile"); break;
            case Kind::Const: o.put(" const"); break;
            case Kind::Restrict: o.put(" restrict"); break;
            case Kind::TypeTag:
                emit_mods(f);
                if (kTypeTagAttributes && t.kflag()) {
                    o.put(" __attribute__((");
                    o.put(t.name());
                    o.put("))");
                } else {
                    o.put(" __attribute__((btf_type_tag(\"");
                    o.put(t.name());
                    o.put("\")))");
                }
                break;
            case Kind::Array: {
                const ArrayInfo a = t.array();
                // const/volatile on an array (a GCC quirk) mean nothing in C: dropped
                drop_mods(f);
                if (f.cnt == 0) {
                    emit_name(fname, last_was_ptr);
                    o.put('[');
                    o.num(a.nelems);
                    o.put(']');
                    return;
                }
                const uint32_t next = top(f);
                const bool multidim = next && type(next).kind() == Kind::Array;
                if (!fname.empty() && !last_was_ptr) o.put(' ');
                if (!multidim) o.put('(');
                type_chain(f, fname, lvl);
                if (!multidim) o.put(')');
                o.put('[');
                o.num(a.nelems);
                o.put(']');
                return;
            }
            case Kind::FuncProto: {
                const uint32_t vlen = t.vlen();
                // GCC's volatile on noreturn function pointers: dropped too
                drop_mods(f);
                if (f.cnt) {
                    o.put(" (");
                    type_chain(f, fname, lvl);
                    o.put(')');
                } else {
                    emit_name(fname, last_was_ptr);
                }
                o.put('(');
                if (vlen == 0 || (vlen == 1 && t.param(0).type == 0)) {
                    o.put("void)");
                    return;
                }
                for (uint32_t i = 0; i < vlen; ++i) {
                    const Param p = t.param(i);
                    if (i > 0) o.put(", ");
                    if (i == vlen - 1 && p.type == 0) {   // a trailing void is `...`
                        o.put("...");
                        break;
                    }
                    type_decl(p.type, p.name, lvl);
                }
                o.put(')');
                return;
            }
            default: return;   // not part of a C declarator
            }
            last_was_ptr = k == Kind::Ptr;
        }
        emit_name(fname, last_was_ptr);
    }

    const Btf& btf_;
    Out o_;
    const DumpOptions& opts_;
    int ptr_sz_;
    uint32_t n_;
    std::vector<State> st_;
    std::vector<int8_t> align_;                          // align_of per id, -1 until computed
    std::unordered_map<uint32_t, std::string> renamed_;   // the ids renamed NAME___N (few)
    NameCounts type_names_, ident_names_;
    std::vector<uint32_t> queue_;
    std::vector<uint32_t> stack_;
};

// ─────────────────────────────── raw and JSON ───────────────────────────────

std::string_view bpftool_kind(Kind k) {
    static constexpr std::string_view names[] = {"UNKNOWN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM",
                                                 "FWD", "TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "FUNC",
                                                 "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64"};
    const auto i = static_cast<std::size_t>(k);
    return i < std::size(names) ? names[i] : names[0];
}

std::string_view int_encoding(uint32_t e) {
    switch (e) {
    case 0: return "(none)";
    case kIntSigned: return "SIGNED";
    case kIntChar: return "CHAR";
    case kIntBool: return "BOOL";
    default: return "UNKN";
    }
}

std::string_view linkage_name(uint32_t l) {
    switch (l) {
    case 0: return "static";
    case 1: return "global";
    case 2: return "extern";
    default: return "(unknown)";
    }
}

std::string_view shown_name(const Type& t) { return t.name_off() ? t.name() : std::string_view("(anon)"); }

// One record per type in bpftool's text or JSON form. The JSON is written as bpftool's
// json_writer does: compact, strings with C escapes only, a backslash written as `\n`.
class RecordWriter {
public:
    RecordWriter(const Btf& btf, std::string& out, bool json, const DumpOptions& opts) : btf_(btf), o_{out}, opts_(opts), json_(json) {}

    void run() {
        const uint32_t n = btf_.count();
        if (json_) o_.put("{\"types\":[");
        for (uint32_t id = btf_.start_id(); id < n; ++id) {
            if (json_ && id != btf_.start_id()) o_.put(',');
            record(id);
            maybe_flush(o_.s, opts_);
        }
        if (json_) o_.put("]}\n");
        maybe_flush(o_.s, opts_, true);
    }

private:
    void str(std::string_view s) {
        o_.put('"');
        for (char c : s) {
            switch (c) {
            case '\t': o_.put("\\t"); break;
            case '\n': o_.put("\\n"); break;
            case '\r': o_.put("\\r"); break;
            case '\f': o_.put("\\f"); break;
            case '\b': o_.put("\\b"); break;
            case '\\': o_.put("\\n"); break;   // sic: bpftool's json_writer writes a backslash so
            case '"': o_.put("\\\""); break;
            default: o_.put(c);
            }
        }
        o_.put('"');
    }
    // `,"key":` in JSON, ` key=` in text (callers add their own separators in text).
    void key(std::string_view k) {
        o_.put(",\"");
        o_.put(k);
        o_.put("\":");
    }
    void field_u(std::string_view k, uint64_t v) {
        if (json_) key(k);
        else {
            o_.put(' ');
            o_.put(k);
            o_.put('=');
        }
        o_.num(v);
    }
    void field_s(std::string_view k, std::string_view v) {
        if (json_) {
            key(k);
            str(v);
        } else {
            o_.put(' ');
            o_.put(k);
            o_.put('=');
            o_.put(v);
        }
    }
    // The first field of a JSON object inside an array (no leading comma).
    void first_u(std::string_view k, uint64_t v) {
        o_.put('"');
        o_.put(k);
        o_.put("\":");
        o_.num(v);
    }
    void first_s(std::string_view k, std::string_view v) {
        o_.put('"');
        o_.put(k);
        o_.put("\":");
        str(v);
    }
    void array_start(std::string_view k) {
        key(k);
        o_.put('[');
    }

    void record(uint32_t id) {
        const Type t = btf_.type(id);
        const Kind k = t.kind();
        if (json_) {
            o_.put('{');
            first_u("id", id);
            key("kind");
            str(bpftool_kind(k));
            key("name");
            str(shown_name(t));
        } else {
            o_.put('[');
            o_.num(id);
            o_.put("] ");
            o_.put(bpftool_kind(k));
            o_.put(" '");
            o_.put(shown_name(t));
            o_.put('\'');
        }
        switch (k) {
        case Kind::Int: {
            const IntInfo ii = t.int_info();
            field_u("size", t.size());
            field_u("bits_offset", ii.offset);
            field_u("nr_bits", ii.bits);
            field_s("encoding", int_encoding(ii.encoding));
            break;
        }
        case Kind::Ptr: case Kind::Const: case Kind::Volatile: case Kind::Restrict: case Kind::Typedef:
        case Kind::TypeTag:
            field_u("type_id", t.type());
            break;
        case Kind::Array: {
            const ArrayInfo a = t.array();
            field_u("type_id", a.type);
            field_u("index_type_id", a.index_type);
            field_u("nr_elems", a.nelems);
            break;
        }
        case Kind::Struct: case Kind::Union: {
            field_u("size", t.size());
            field_u("vlen", t.vlen());
            if (json_) array_start("members");
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const Member m = t.member(i);
                const std::string_view name = m.name.empty() ? std::string_view("(anon)") : m.name;
                if (json_) {
                    o_.put(i ? ",{" : "{");
                    first_s("name", name);
                    field_u("type_id", m.type);
                    field_u("bits_offset", m.bit_offset);
                    if (m.bitfield_size) field_u("bitfield_size", m.bitfield_size);
                    o_.put('}');
                } else {
                    o_.put("\n\t'");
                    o_.put(name);
                    o_.put("' type_id=");
                    o_.num(m.type);
                    o_.put(" bits_offset=");
                    o_.num(m.bit_offset);
                    if (m.bitfield_size) {
                        o_.put(" bitfield_size=");
                        o_.num(m.bitfield_size);
                    }
                }
            }
            if (json_) o_.put(']');
            break;
        }
        case Kind::Enum: case Kind::Enum64: {
            const bool is_signed = t.kflag();
            const bool is64 = k == Kind::Enum64;
            field_s("encoding", is_signed ? "SIGNED" : "UNSIGNED");
            field_u("size", t.size());
            field_u("vlen", t.vlen());
            if (json_) array_start("values");
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const EnumValue v = t.enumerator(i);
                const std::string_view name = v.name.empty() ? std::string_view("(anon)") : v.name;
                if (json_) {
                    o_.put(i ? ",{" : "{");
                    first_s("name", name);
                    key("val");
                    // bpftool passes btf_enum's __s32 value to its u64 writer: unsigned
                    // values above INT32_MAX come out sign-extended, as here.
                    if (is_signed) o_.num(is64 ? v.value : int64_t(static_cast<int32_t>(v.value)));
                    else o_.num(is64 ? static_cast<uint64_t>(v.value) : static_cast<uint64_t>(int64_t(static_cast<int32_t>(v.value))));
                    o_.put('}');
                } else {
                    o_.put("\n\t'");
                    o_.put(name);
                    o_.put("' val=");
                    if (is64) {
                        if (is_signed) {
                            o_.num(v.value);
                            o_.put("LL");
                        } else {
                            o_.num(static_cast<uint64_t>(v.value));
                            o_.put("ULL");
                        }
                    } else if (is_signed) {
                        o_.num(static_cast<int32_t>(v.value));
                    } else {
                        o_.num(static_cast<uint32_t>(v.value));
                    }
                }
            }
            if (json_) o_.put(']');
            break;
        }
        case Kind::Fwd: field_s("fwd_kind", t.kflag() ? "union" : "struct"); break;
        case Kind::Func:
            field_u("type_id", t.type());
            field_s("linkage", linkage_name(t.vlen()));
            break;
        case Kind::FuncProto: {
            field_u("ret_type_id", t.type());
            field_u("vlen", t.vlen());
            if (json_) array_start("params");
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const Param p = t.param(i);
                const std::string_view name = p.name.empty() ? std::string_view("(anon)") : p.name;
                if (json_) {
                    o_.put(i ? ",{" : "{");
                    first_s("name", name);
                    field_u("type_id", p.type);
                    o_.put('}');
                } else {
                    o_.put("\n\t'");
                    o_.put(name);
                    o_.put("' type_id=");
                    o_.num(p.type);
                }
            }
            if (json_) o_.put(']');
            break;
        }
        case Kind::Var:
            if (json_) {
                field_u("type_id", t.type());
                field_s("linkage", linkage_name(static_cast<uint32_t>(t.linkage())));
            } else {
                o_.put(" type_id=");
                o_.num(t.type());
                o_.put(", linkage=");
                o_.put(linkage_name(static_cast<uint32_t>(t.linkage())));
            }
            break;
        case Kind::Datasec: {
            field_u("size", t.size());
            field_u("vlen", t.vlen());
            if (json_) array_start("vars");
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const VarSecinfo v = t.var(i);
                if (json_) {
                    o_.put(i ? ",{" : "{");
                    first_u("type_id", v.type);
                    field_u("offset", v.offset);
                    field_u("size", v.size);
                    o_.put('}');
                } else {
                    o_.put("\n\ttype_id=");
                    o_.num(v.type);
                    o_.put(" offset=");
                    o_.num(v.offset);
                    o_.put(" size=");
                    o_.num(v.size);
                    if (v.type < btf_.count()) {
                        const Type vt = btf_.type(v.type);
                        o_.put(" (");
                        o_.put(bpftool_kind(vt.kind()));
                        o_.put(" '");
                        o_.put(shown_name(vt));
                        o_.put("')");
                    }
                }
            }
            if (json_) o_.put(']');
            break;
        }
        case Kind::Float: field_u("size", t.size()); break;
        case Kind::DeclTag:
            field_u("type_id", t.type());
            if (json_) key("component_idx");
            else o_.put(" component_idx=");
            o_.num(t.component_idx());
            break;
        default: break;
        }
        o_.put(json_ ? '}' : '\n');
    }

    const Btf& btf_;
    Out o_;
    const DumpOptions& opts_;
    bool json_;
};

}  // namespace

uint32_t guess_pointer_size(const Btf& btf) {
    static constexpr std::string_view longs[] = {
        "long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int",
        "unsigned int long", "long unsigned int", "long int unsigned", "int unsigned long", "int long unsigned",
    };
    const uint32_t n = btf.count();
    for (uint32_t id = 1; id < n; ++id) {
        const Type t = btf.type(id);
        if (t.kind() != Kind::Int || (t.size() != 4 && t.size() != 8)) continue;
        const std::string_view name = t.name();
        if (std::find(std::begin(longs), std::end(longs), name) != std::end(longs)) return t.size();
    }
    return 8;
}

void dump_c(const Btf& btf, std::string& out, const DumpOptions& opts) {
    const uint32_t ptr_sz = opts.pointer_size ? opts.pointer_size : guess_pointer_size(btf);
    out.reserve(out.size() + (opts.sink ? 2 * kChunk : std::size_t(btf.count()) * 24));
    CWriter(btf, out, ptr_sz, opts).run();
}

void dump_raw(const Btf& btf, std::string& out, const DumpOptions& opts) {
    out.reserve(out.size() + (opts.sink ? 2 * kChunk : std::size_t(btf.count() - btf.start_id()) * 96));
    RecordWriter(btf, out, false, opts).run();
}

void dump_json(const Btf& btf, std::string& out, const DumpOptions& opts) {
    out.reserve(out.size() + (opts.sink ? 2 * kChunk : std::size_t(btf.count() - btf.start_id()) * 128));
    RecordWriter(btf, out, true, opts).run();
}

}  // namespace bpfsim::btf
