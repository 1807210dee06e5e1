// The minimal BTF for a set of objects' CO-RE relocations (see record.hpp for what is kept).
//
// bpftool's gen.c (btfgen_record_obj, btfgen_record_*_relo, btfgen_mark_type,
// btfgen_mark_type_match, btfgen_get_btf) was read as the reference; the output follows
// libbpf's btf__add_struct/btf__add_field/btf__add_type: a struct's kflag is set only when a
// kept member is a bitfield, strings are added in the order the types are written.
#include "btf/record.hpp"

#include "btf/core.hpp"

#include <fmt/format.h>

#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace bpfsim::btf {

namespace {

constexpr uint16_t kMagic = 0xeb9f;
constexpr uint32_t kHeaderSize = 24;

class Recorder {
public:
    explicit Recorder(const Btf& target) : t_(target), state_(target.count(), 0) {}

    // One relocation's target spec. Throws Error (without a location) for a kind that
    // cannot be kept.
    void record(CoreReloKind kind, const CoreTargetSpec& spec) {
        switch (kind) {
        case CoreReloKind::FieldByteOffset:
        case CoreReloKind::FieldByteSize:
        case CoreReloKind::FieldExists:
        case CoreReloKind::FieldSigned:
        case CoreReloKind::FieldLshiftU64:
        case CoreReloKind::FieldRshiftU64: record_field(spec); break;
        case CoreReloKind::TypeIdLocal: break;
        case CoreReloKind::TypeIdTarget:
        case CoreReloKind::TypeExists:
        case CoreReloKind::TypeSize: mark_type(spec.root_type_id, true); break;
        case CoreReloKind::TypeMatches: mark_match(spec.root_type_id); break;
        case CoreReloKind::EnumvalExists:
        case CoreReloKind::EnumvalValue: mark_type(spec.root_type_id, false); break;
        }
    }

    std::vector<uint8_t> write(RecordStats& stats);

private:
    // state_ bits: the type is kept; marked without / with following pointers; marked
    // for type_matches not behind / behind a pointer.
    enum : uint8_t { Kept = 1, Plain = 2, Follow = 4, Match = 8, MatchPtr = 16 };

    [[noreturn]] void cannot_keep(uint32_t id) const {
        const Type t = t_.type(id);
        throw Error(ErrorCode::Unsupported, fmt::format("kernel type [{}] {} '{}' is needed, and a minimal BTF cannot keep a {}", id,
                                                        kind_name(t.kind()), t.name(), kind_name(t.kind())));
    }

    void keep_member(uint32_t id, uint32_t idx) {
        auto& v = members_[id];
        if (v.empty()) v.resize(t_.type(id).vlen(), false);
        v[idx] = true;
    }

    // btfgen_mark_type(): the type and what it refers to; pointers are followed only with
    // `follow` (a pointer to a type nothing else keeps is written as `void *`).
    void mark_type(uint32_t root, bool follow) {
        std::vector<std::pair<uint32_t, bool>> work{{root, follow}};
        while (!work.empty()) {
            const auto [id, f] = work.back();
            work.pop_back();
            if (id == 0 || (state_[id] & Follow) || (!f && (state_[id] & Plain))) continue;
            state_[id] |= Kept | (f ? Follow : Plain);
            const Type t = t_.type(id);
            switch (t.kind()) {
            case Kind::Int:
            case Kind::Float:
            case Kind::Enum:
            case Kind::Enum64:
            case Kind::Struct:
            case Kind::Union:
            case Kind::Fwd: break;
            case Kind::Ptr:
                if (f) work.emplace_back(t.type(), f);
                break;
            case Kind::Typedef:
            case Kind::Volatile:
            case Kind::Const:
            case Kind::Restrict:
            case Kind::TypeTag: work.emplace_back(t.type(), f); break;
            case Kind::Array:
                work.emplace_back(t.array().index_type, f);
                work.emplace_back(t.array().type, f);
                break;
            case Kind::FuncProto:
                for (uint32_t i = t.vlen(); i-- > 0;) work.emplace_back(t.param(i).type, f);
                work.emplace_back(t.type(), f);
                break;
            default: cannot_keep(id);
            }
        }
    }

    // btfgen_mark_type_match(): structs and unions with every member, except behind a pointer.
    void mark_match(uint32_t root) {
        std::vector<std::pair<uint32_t, bool>> work{{root, false}};
        while (!work.empty()) {
            const auto [id, behind_ptr] = work.back();
            work.pop_back();
            if (id == 0 || (state_[id] & Match) || (behind_ptr && (state_[id] & MatchPtr))) continue;
            state_[id] |= Kept | (behind_ptr ? MatchPtr : Match);
            const Type t = t_.type(id);
            switch (t.kind()) {
            case Kind::Int:
            case Kind::Float:
            case Kind::Enum:
            case Kind::Enum64:
            case Kind::Fwd: break;
            case Kind::Struct:
            case Kind::Union:
                if (behind_ptr) break;
                for (uint32_t i = t.vlen(); i-- > 0;) {
                    keep_member(id, i);
                    work.emplace_back(t.member(i).type, false);
                }
                break;
            case Kind::Typedef:
            case Kind::Volatile:
            case Kind::Const:
            case Kind::Restrict:
            case Kind::TypeTag: work.emplace_back(t.type(), behind_ptr); break;
            case Kind::Ptr: work.emplace_back(t.type(), true); break;
            case Kind::Array:
                work.emplace_back(t.array().index_type, false);
                work.emplace_back(t.array().type, false);
                break;
            case Kind::FuncProto:
                for (uint32_t i = t.vlen(); i-- > 0;) work.emplace_back(t.param(i).type, false);
                work.emplace_back(t.type(), false);
                break;
            default: cannot_keep(id);
            }
        }
    }

    // btfgen_record_field_relo(): the root, then each member on the access path and its type.
    void record_field(const CoreTargetSpec& spec) {
        uint32_t id = spec.root_type_id;
        mark_type(id, false);
        for (std::size_t i = 1; i < spec.raw.size(); ++i) {
            id = t_.resolve(id);
            const Type t = t_.type(id);
            const uint32_t idx = static_cast<uint32_t>(spec.raw[i]);
            if (t.kind() == Kind::Struct || t.kind() == Kind::Union) {
                const Member m = t.member(idx);   // checks the index
                keep_member(id, idx);
                id = m.type;
                mark_type(id, false);
            } else if (t.kind() == Kind::Array) {
                id = t.array().type;
            } else {
                throw Error(ErrorCode::Internal, fmt::format("access path {} of [{}] reaches [{}], a {}", i, spec.root_type_id, id,
                                                             kind_name(t.kind())));
            }
        }
    }

    const Btf& t_;
    std::vector<uint8_t> state_;
    std::unordered_map<uint32_t, std::vector<bool>> members_;
};

// Raw BTF being written: type words and a string section with each string once.
class Writer {
public:
    Writer() : strings_(1, '\0') {}

    uint32_t str(std::string_view s) {
        if (s.empty()) return 0;
        const auto [it, added] = offsets_.try_emplace(s, static_cast<uint32_t>(strings_.size()));
        if (added) {
            strings_.append(s);
            strings_.push_back('\0');
        }
        return it->second;
    }
    void word(uint32_t w) { words_.push_back(w); }
    void head(uint32_t name_off, Kind kind, uint32_t vlen, bool kflag, uint32_t size_or_type) {
        word(name_off);
        word((uint32_t(kflag) << 31) | (uint32_t(kind) << 24) | vlen);
        word(size_or_type);
    }
    // A struct's info word, once its members are known.
    uint32_t& at(std::size_t i) { return words_[i]; }
    std::size_t size() const { return words_.size(); }

    std::vector<uint8_t> bytes() const {
        const uint32_t type_len = static_cast<uint32_t>(words_.size() * 4), str_len = static_cast<uint32_t>(strings_.size());
        std::vector<uint8_t> out(kHeaderSize + type_len + str_len);
        std::memcpy(out.data(), &kMagic, 2);
        out[2] = 1;   // version
        out[3] = 0;   // flags
        const uint32_t fields[5] = {kHeaderSize, 0, type_len, type_len, str_len};
        std::memcpy(out.data() + 4, fields, sizeof fields);
        if (type_len) std::memcpy(out.data() + kHeaderSize, words_.data(), type_len);
        std::memcpy(out.data() + kHeaderSize + type_len, strings_.data(), str_len);
        return out;
    }

private:
    std::vector<uint32_t> words_;
    std::string strings_;
    std::unordered_map<std::string_view, uint32_t> offsets_;   // views into the target's strings
};

// btfgen_get_btf(): the kept types in id order, renumbered, only the kept members.
std::vector<uint8_t> Recorder::write(RecordStats& stats) {
    std::vector<uint32_t> new_id(t_.count(), 0);
    uint32_t next = 1;
    for (uint32_t id = 1; id < t_.count(); ++id)
        if (state_[id] & Kept) new_id[id] = next++;
    auto map = [&](uint32_t id) { return id < new_id.size() ? new_id[id] : 0; };

    Writer w;
    for (uint32_t id = 1; id < t_.count(); ++id) {
        if (!(state_[id] & Kept)) continue;
        ++stats.types;
        const Type t = t_.type(id);
        const Kind k = t.kind();
        const uint32_t name = w.str(t.name());
        switch (k) {
        case Kind::Struct:
        case Kind::Union: {
            const std::size_t info_at = w.size() + 1;
            w.head(name, k, 0, false, t.size());
            const auto it = members_.find(id);
            uint32_t vlen = 0;
            bool kflag = false;
            if (it != members_.end())
                for (uint32_t i = 0; i < it->second.size(); ++i) {
                    if (!it->second[i]) continue;
                    const Member m = t.member(i);
                    // btf__add_field(): a bitfield, or a member off a byte boundary, sets the
                    // kflag; the latter without a bitfield size (a kflag-less struct's
                    // bitfield) cannot be written, and bpftool fails on it too.
                    const bool bitfield = m.bitfield_size > 0 || m.bit_offset % 8 != 0;
                    if (bitfield && (m.bitfield_size == 0 || m.bitfield_size > 255 || m.bit_offset > 0xffffff))
                        throw Error(ErrorCode::Unsupported,
                                    fmt::format("kernel type [{}] {} '{}': member '{}' at bit {} is a bitfield a minimal BTF cannot write "
                                                "(no kflag bitfield size)",
                                                id, kind_name(k), t.name(), m.name, m.bit_offset));
                    w.word(w.str(m.name));
                    w.word(map(m.type));
                    w.word(m.bit_offset | (m.bitfield_size << 24));
                    kflag |= bitfield;
                    ++vlen;
                }
            stats.members += vlen;
            w.at(info_at) = (uint32_t(kflag) << 31) | (uint32_t(k) << 24) | vlen;
            break;
        }
        case Kind::Int: {
            w.head(name, k, 0, t.kflag(), t.size());
            const IntInfo i = t.int_info();
            w.word((i.encoding << 24) | (i.offset << 16) | i.bits);
            break;
        }
        case Kind::Float: w.head(name, k, 0, t.kflag(), t.size()); break;
        case Kind::Fwd: w.head(name, k, 0, t.kflag(), 0); break;
        case Kind::Ptr:
        case Kind::Typedef:
        case Kind::Volatile:
        case Kind::Const:
        case Kind::Restrict:
        case Kind::TypeTag: w.head(name, k, 0, t.kflag(), map(t.type())); break;
        case Kind::Array: {
            w.head(name, k, 0, t.kflag(), 0);
            const ArrayInfo a = t.array();
            w.word(map(a.type));
            w.word(map(a.index_type));
            w.word(a.nelems);
            break;
        }
        case Kind::Enum:
        case Kind::Enum64:
            w.head(name, k, t.vlen(), t.kflag(), t.size());
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const EnumValue e = t.enumerator(i);
                w.word(w.str(e.name));
                const uint64_t v = static_cast<uint64_t>(e.value);
                w.word(static_cast<uint32_t>(v));
                if (k == Kind::Enum64) w.word(static_cast<uint32_t>(v >> 32));
            }
            break;
        case Kind::FuncProto:
            w.head(name, k, t.vlen(), t.kflag(), map(t.type()));
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const Param p = t.param(i);
                w.word(w.str(p.name));
                w.word(map(p.type));
            }
            break;
        default: throw Error(ErrorCode::Internal, fmt::format("kept type [{}] of kind {}", id, kind_name(k)));
        }
    }
    return w.bytes();
}

}  // namespace

Result<std::vector<uint8_t>> record_min_btf(const Btf& target, const std::vector<std::pair<const Btf*, const Ext*>>& objects,
                                            const RecordOptions& options, RecordStats* stats) {
    RecordStats own;
    RecordStats& st = stats ? *stats : own;
    st = {};
    Location where;
    try {
        where.file = target.name();
        if (target.is_split()) return Error(ErrorCode::Unsupported, "the target is split BTF (a module's); give a complete kernel BTF", where);
        Recorder rec(target);
        CoreTargets targets;
        targets.main = &target;
        for (const auto& [btf, ext] : objects) {
            where = {};
            if (!btf) return Error(ErrorCode::InvalidBtf, "an object without BTF");
            where.file = btf->name();
            if (!ext) return Error(ErrorCode::NotFound, "no .BTF.ext section, so no CO-RE relocations to record", where);
            ++st.objects;
            CoreCandCache cache;   // one per object, as libbpf and bpftool have
            for (const auto& secname : ext->core_relo_order) {
                const ExtSection* sec = ext->find(secname);
                if (!sec) continue;
                where.section = secname;
                for (const CoreRelo& r : sec->relos) {
                    where.pc = r.insn;
                    auto res = core_relocate(*btf, targets, r, &cache, where);
                    if (!res) return res.error();
                    ++st.relocations;
                    if (res->matches.empty()) continue;
                    ++st.matched;
                    for (const CoreTargetSpec& m : res->matches) {
                        rec.record(r.kind, m);
                        if (!options.all_candidates) break;
                    }
                }
            }
            where.section.clear();
            where.pc.reset();
        }
        where = {};
        std::vector<uint8_t> out = rec.write(st);
        // What was written must read back (and be valid for the kernel's checks we model).
        if (auto check = Btf::parse(out, "<recorded BTF>"); !check)
            return Error(ErrorCode::Internal, fmt::format("the recorded BTF does not parse: {}", check.error().message()));
        return out;
    } catch (Error& e) {
        if (e.where().empty()) e.where() = where;
        return e;
    }
}

}  // namespace bpfsim::btf
