// CO-RE relocations, computed and applied as libbpf 1.1 does (see core.hpp for the rules).
//
// libbpf was read as the reference: bpf_core_parse_spec, bpf_core_spec_match,
// bpf_core_fields_are_compat, bpf_core_types_are_compat, bpf_core_types_match,
// bpf_core_calc_relo, bpf_core_calc_relo_insn and bpf_core_patch_insn in relo_core.c,
// bpf_core_find_cands/bpf_core_add_cands/bpf_core_resolve_relo in libbpf.c. The structure
// here follows it closely on purpose: its results (and its log lines, which
// tests/core_diff.cpp compares) depend on details such as the order candidates and
// members are visited in, the 32-bit arithmetic of offsets and shifts, and which partial
// state a failed match leaves behind.
#include "btf/core.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <climits>

namespace bpfsim::btf {

// Gives core.cpp access to the cache's lists.
struct CoreAccess {
    static auto& lists(CoreCandCache& c) { return c.lists_; }
};

const std::vector<CoreCandCache::Cand>* CoreCandCache::find(const Btf* local, uint32_t local_id) const {
    const auto it = lists_.find({local, local_id});
    return it == lists_.end() ? nullptr : &it->second;
}

std::string_view core_kind_str(CoreReloKind k) {
    switch (k) {
    case CoreReloKind::FieldByteOffset: return "byte_off";
    case CoreReloKind::FieldByteSize: return "byte_sz";
    case CoreReloKind::FieldExists: return "field_exists";
    case CoreReloKind::FieldSigned: return "signed";
    case CoreReloKind::FieldLshiftU64: return "lshift_u64";
    case CoreReloKind::FieldRshiftU64: return "rshift_u64";
    case CoreReloKind::TypeIdLocal: return "local_type_id";
    case CoreReloKind::TypeIdTarget: return "target_type_id";
    case CoreReloKind::TypeExists: return "type_exists";
    case CoreReloKind::TypeMatches: return "type_matches";
    case CoreReloKind::TypeSize: return "type_size";
    case CoreReloKind::EnumvalExists: return "enumval_exists";
    case CoreReloKind::EnumvalValue: return "enumval_value";
    }
    return "unknown";
}

namespace {

constexpr std::size_t kSpecMaxLen = 64;   // BPF_CORE_SPEC_MAX_LEN
constexpr int kMaxResolveDepth = 32;
constexpr int kMaxCompatDepth = 32;

bool field_based(CoreReloKind k) { return static_cast<uint32_t>(k) <= static_cast<uint32_t>(CoreReloKind::FieldRshiftU64); }
bool type_based(CoreReloKind k) {
    return k == CoreReloKind::TypeIdLocal || k == CoreReloKind::TypeIdTarget || k == CoreReloKind::TypeExists ||
           k == CoreReloKind::TypeMatches || k == CoreReloKind::TypeSize;
}
bool enumval_based(CoreReloKind k) { return k == CoreReloKind::EnumvalExists || k == CoreReloKind::EnumvalValue; }

bool is_enum(Kind k) { return k == Kind::Enum || k == Kind::Enum64; }
bool is_composite(Kind k) { return k == Kind::Struct || k == Kind::Union; }
bool is_mod_or_typedef(Kind k) {
    return k == Kind::Typedef || k == Kind::Volatile || k == Kind::Const || k == Kind::Restrict || k == Kind::TypeTag;
}

// libbpf's btf_kind_str().
std::string_view kind_str(Kind k) {
    static constexpr std::string_view names[] = {"void",   "int",      "ptr",      "array",    "struct",     "union",
                                                 "enum",   "fwd",      "typedef",  "volatile", "const",      "restrict",
                                                 "func",   "func_proto", "var",    "datasec",  "float",      "decl_tag",
                                                 "type_tag", "enum64"};
    const auto i = static_cast<std::size_t>(k);
    return i < std::size(names) ? names[i] : "unknown";
}

// Same kind, or both enums (ENUM and ENUM64 relocate against each other).
bool kind_core_compat(const Type& a, const Type& b) {
    return a.kind() == b.kind() || (is_enum(a.kind()) && is_enum(b.kind()));
}

// The length of the name without its flavor: "task_struct___old" -> 11. A flavor
// separator is "___" with a non-underscore on both sides; the last one counts.
std::size_t essential_name_len(std::string_view n) {
    for (std::ptrdiff_t i = static_cast<std::ptrdiff_t>(n.size()) - 5; i >= 0; --i) {
        const std::size_t u = static_cast<std::size_t>(i);
        if (n[u] != '_' && n[u + 1] == '_' && n[u + 2] == '_' && n[u + 3] == '_' && n[u + 4] != '_') return u + 1;
    }
    return n.size();
}

bool essential_names_equal(std::string_view a, std::string_view b) {
    const std::size_t la = essential_name_len(a), lb = essential_name_len(b);
    return la == lb && a.substr(0, la) == b.substr(0, lb);
}

// skip_mods_and_typedefs(): the type behind modifiers and typedefs, and its id.
Type skip(const Btf& btf, uint32_t id, uint32_t* res_id = nullptr) {
    Type t = btf.type(id);
    for (int depth = 0; is_mod_or_typedef(t.kind()); ++depth) {
        if (depth > kMaxResolveDepth) throw Error(ErrorCode::InvalidBtf, fmt::format("type [{}] does not resolve: too many modifiers", id));
        id = t.type();
        t = btf.type(id);
    }
    if (res_id) *res_id = id;
    return t;
}

// btf__resolve_size(): bytes, or a negative errno (-EINVAL: no size, -E2BIG: too big).
int64_t resolve_size(const Btf& btf, uint32_t id) {
    uint32_t nelems = 1;
    int64_t size = -1;
    Type t = btf.type(id);
    for (int i = 0; i < kMaxResolveDepth && !t.is_void(); ++i) {
        switch (t.kind()) {
        case Kind::Int:
        case Kind::Struct:
        case Kind::Union:
        case Kind::Enum:
        case Kind::Enum64:
        case Kind::Datasec:
        case Kind::Float: size = t.size(); goto done;
        case Kind::Ptr: size = 8; goto done;
        case Kind::Typedef:
        case Kind::Volatile:
        case Kind::Const:
        case Kind::Restrict:
        case Kind::Var:
        case Kind::DeclTag:
        case Kind::TypeTag: id = t.type(); break;
        case Kind::Array: {
            const ArrayInfo a = t.array();
            if (nelems && a.nelems > UINT32_MAX / nelems) return -E2BIG;
            nelems *= a.nelems;
            id = a.type;
            break;
        }
        default: return -EINVAL;
        }
        t = btf.type(id);
    }
done:
    if (size < 0) return -EINVAL;
    if (nelems && size > int64_t(UINT32_MAX / nelems)) return -E2BIG;
    return int64_t(nelems) * size;
}

// The 32-bit value of an ENUM enumerator (ENUM64 values are 64-bit as they are).
uint64_t enum_raw_value(const Type& t, uint32_t i) {
    const EnumValue e = t.enumerator(i);
    if (t.kind() == Kind::Enum64) return static_cast<uint64_t>(e.value);
    return static_cast<uint64_t>(e.value) & 0xffffffffu;
}

// One high-level step of an access: a named member, or an array index (no name).
struct Accessor {
    uint32_t type_id = 0;   // the struct/union (members), the element type (arrays), the enum
    uint32_t idx = 0;
    std::string_view name;
    bool named = false;
};

// bpf_core_spec: the parsed access string of a relocation against one BTF.
struct Spec {
    const Btf* btf = nullptr;
    uint32_t root_type_id = 0;
    CoreReloKind kind{};
    std::vector<Accessor> spec;     // high-level: named fields and array indices
    std::vector<int32_t> raw;       // low-level: every index of the access string
    uint32_t bit_offset = 0;        // u32 as in libbpf: wraps the same way

    void reset(const Btf* b, uint32_t root, CoreReloKind k) {
        btf = b;
        root_type_id = root;
        kind = k;
        spec.clear();
        raw.clear();
        bit_offset = 0;
    }
};

// bpf_core_format_spec(), limited to 255 characters as libbpf's buffer is.
std::string format_spec(const Spec& s) {
    const Btf& btf = *s.btf;
    const Type root = btf.type(s.root_type_id);
    std::string out = fmt::format("<{}> [{}] {} {}", core_kind_str(s.kind), s.root_type_id, kind_str(root.kind()),
                                  root.name().empty() ? std::string_view("<anon>") : root.name());
    if (type_based(s.kind)) return out.substr(0, 255);
    if (enumval_based(s.kind)) {
        const Type t = skip(btf, s.root_type_id);
        const uint32_t i = s.raw.empty() ? 0 : static_cast<uint32_t>(s.raw[0]);
        if (is_enum(t.kind()) && i < t.vlen()) {
            const EnumValue e = t.enumerator(i);
            const uint64_t v = enum_raw_value(t, i);
            if (t.kind() == Kind::Enum)
                out += t.kflag() ? fmt::format("::{} = {}", e.name, int32_t(uint32_t(v))) : fmt::format("::{} = {}", e.name, uint32_t(v));
            else
                out += t.kflag() ? fmt::format("::{} = {}", e.name, int64_t(v)) : fmt::format("::{} = {}", e.name, v);
        }
        return out.substr(0, 255);
    }
    for (std::size_t i = 0; i < s.spec.size(); ++i) {
        if (s.spec[i].named)
            out += fmt::format(".{}", s.spec[i].name);
        else if (i > 0 || s.spec[i].idx > 0)
            out += fmt::format("[{}]", s.spec[i].idx);
    }
    out += " (";
    for (std::size_t i = 0; i < s.raw.size(); ++i) out += fmt::format("{}{}", i == 0 ? "" : ":", s.raw[i]);
    if (s.bit_offset % 8)
        out += fmt::format(" @ offset {}.{})", s.bit_offset / 8, s.bit_offset % 8);
    else
        out += fmt::format(" @ offset {})", s.bit_offset / 8);
    return out.substr(0, 255);
}

// A libbpf error: the errno it returns and the reason.
struct Fail {
    int err;
    ErrorCode code;
    std::string what;
};

class Relocator {
public:
    Relocator(const Btf& local, const CoreTargets& targets, const CoreRelo& r, CoreCandCache* cache)
        : local_(local), targets_(targets), r_(r), cache_(cache ? cache : &own_cache_) {}

    CoreResult run() {
        const Type local_type = local_.type(r_.type_id);
        const std::string_view local_name = local_type.name();
        std::vector<CoreCandCache::Cand>* cands = nullptr;
        if (r_.kind != CoreReloKind::TypeIdLocal) {
            auto& lists = CoreAccess::lists(*cache_);
            auto it = lists.find({&local_, r_.type_id});
            if (it == lists.end()) {
                if (local_name.empty())
                    fail(-EINVAL, ErrorCode::Unsupported,
                         fmt::format("target candidate search failed for [{}] {} <anon>: CO-RE does not relocate anonymous types",
                                     r_.type_id, kind_str(local_type.kind())));
                it = lists.emplace(std::make_pair(&local_, r_.type_id), find_cands(local_type)).first;
            }
            cands = &it->second;
        }
        calc_relo_insn(local_type, cands);
        return std::move(res_);
    }

private:
    [[noreturn]] void fail(int err, ErrorCode code, std::string what) { throw Fail{err, code, std::move(what)}; }

    // bpf_core_find_cands(): same kind (or both enums), same essential name.
    std::vector<CoreCandCache::Cand> find_cands(const Type& local_t) {
        std::vector<CoreCandCache::Cand> out;
        const std::string_view local_name = local_t.name();
        const std::size_t local_len = essential_name_len(local_name);
        const std::string_view essential = local_name.substr(0, local_len);
        auto add = [&](const Btf& targ, uint32_t first, std::string_view targ_name) {
            const uint32_t n = targ.count();
            for (uint32_t i = first; i < n; ++i) {
                const Type t = targ.type(i);
                if (!kind_core_compat(t, local_t)) continue;
                const std::string_view name = t.name();
                if (name.empty() || name.size() < local_len || name.substr(0, local_len) != essential) continue;
                if (essential_name_len(name) != local_len) continue;
                res_.log.push_back(fmt::format("CO-RE relocating [{}] {} {}: found target candidate [{}] {} {} in [{}]", local_t.id(),
                                               kind_str(local_t.kind()), local_name, i, kind_str(t.kind()), name, targ_name));
                out.push_back({&targ, i});
            }
        };
        if (targets_.main) add(*targets_.main, 1, targets_.main_name);
        if (!out.empty()) return out;
        for (const Btf* m : targets_.modules)
            if (m) add(*m, m->start_id(), m->name());
        return out;
    }

    // ───────────────────────────── specs ─────────────────────────────

    // bpf_core_parse_spec(): the local spec. Throws Fail for anything libbpf rejects.
    void parse_spec(Spec& spec) {
        const std::string& str = r_.access;
        auto bad = [&](const std::string& why, int err = -EINVAL) {
            const Type t = local_.type(r_.type_id);
            fail(err, ErrorCode::InvalidBtf,
                 fmt::format("parsing [{}] {} {} + {} failed: {}", r_.type_id, kind_str(t.kind()),
                             t.name().empty() ? std::string_view("<anon>") : t.name(), str, why));
        };
        if (str.empty() || str[0] == ':') bad("the access string is empty or starts with ':'");
        spec.reset(&local_, r_.type_id, r_.kind);
        if (type_based(r_.kind)) {
            if (str != "0") bad("a type-based relocation's access string must be \"0\"");
            return;
        }
        // "0:1:2:3" -> [0, 1, 2, 3], each number optionally after one ':' (sscanf's %d).
        std::size_t p = 0;
        while (p < str.size()) {
            if (str[p] == ':') ++p;
            while (p < str.size() && (str[p] == ' ' || (str[p] >= '\t' && str[p] <= '\r'))) ++p;
            const std::size_t start = p;
            if (p < str.size() && str[p] == '+') ++p;
            int64_t v = 0;
            const std::size_t digits = p;
            while (p < str.size() && str[p] >= '0' && str[p] <= '9') {
                v = v * 10 + (str[p] - '0');
                if (v > INT32_MAX) bad(fmt::format("index '{}' is out of range", str.substr(start)));
                ++p;
            }
            if (p == digits) bad(fmt::format("'{}' is not an index", str.substr(start)));
            if (spec.raw.size() == kSpecMaxLen) bad(fmt::format("more than {} indices", kSpecMaxLen), -E2BIG);
            spec.raw.push_back(static_cast<int32_t>(v));
        }
        if (spec.raw.empty()) bad("no index");

        uint32_t id;
        Type t = skip(local_, r_.type_id, &id);
        uint32_t access_idx = static_cast<uint32_t>(spec.raw[0]);
        spec.spec.push_back({id, access_idx, {}, false});

        if (enumval_based(r_.kind)) {
            if (!is_enum(t.kind())) bad(fmt::format("type [{}] is a {}, not an enum", id, kind_str(t.kind())));
            if (spec.raw.size() > 1) bad("an enum value relocation has one index");
            if (access_idx >= t.vlen()) bad(fmt::format("enumerator {} of {}", access_idx, t.vlen()));
            spec.spec[0].name = t.enumerator(access_idx).name;
            spec.spec[0].named = true;
            return;
        }
        if (!field_based(r_.kind)) bad("unknown relocation kind");

        int64_t sz = resolve_size(local_, id);
        if (sz < 0) bad(fmt::format("type [{}] ({}) has no size", id, local_.type_name(id)), static_cast<int>(sz));
        spec.bit_offset = static_cast<uint32_t>(int64_t(access_idx) * sz * 8);

        for (std::size_t i = 1; i < spec.raw.size(); ++i) {
            t = skip(local_, id, &id);
            access_idx = static_cast<uint32_t>(spec.raw[i]);
            if (is_composite(t.kind())) {
                if (access_idx >= t.vlen()) bad(fmt::format("member {} of [{}], which has {}", access_idx, id, t.vlen()));
                const Member m = t.member(access_idx);
                spec.bit_offset += m.bit_offset;
                if (!m.name.empty()) spec.spec.push_back({id, access_idx, m.name, true});
                id = m.type;
            } else if (t.kind() == Kind::Array) {
                const ArrayInfo a = t.array();
                skip(local_, a.type, &id);
                const bool flex = is_flex_arr(local_, spec.spec.back(), a);
                if (!flex && access_idx >= a.nelems) bad(fmt::format("index {} of an array of {}", access_idx, a.nelems));
                spec.spec.push_back({id, access_idx, {}, false});
                sz = resolve_size(local_, id);
                if (sz < 0) bad(fmt::format("type [{}] ({}) has no size", id, local_.type_name(id)), static_cast<int>(sz));
                spec.bit_offset += static_cast<uint32_t>(int64_t(access_idx) * sz * 8);
            } else {
                bad(fmt::format("index {} ({}) reaches type [{}] of unexpected kind {}", i, access_idx, id, kind_str(t.kind())));
            }
        }
    }

    // A zero-length array as the last member of a struct can be indexed past its end.
    static bool is_flex_arr(const Btf& btf, const Accessor& acc, const ArrayInfo& arr) {
        if (!acc.named || arr.nelems > 0) return false;
        const Type t = btf.type(acc.type_id);
        return acc.idx == t.vlen() - 1;
    }

    // bpf_core_fields_are_compat(): 1, 0, or a negative errno.
    static int fields_are_compat(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid) {
        for (int depth = 0; depth < kMaxCompatDepth * 4; ++depth) {
            const Type lt = skip(lb, lid, &lid), tt = skip(tb, tid, &tid);
            if (is_composite(lt.kind()) && is_composite(tt.kind())) return 1;
            if (!kind_core_compat(lt, tt)) return 0;
            switch (lt.kind()) {
            case Kind::Ptr:
            case Kind::Float: return 1;
            case Kind::Fwd:
            case Kind::Enum64:
            case Kind::Enum: {
                const std::size_t ll = essential_name_len(lt.name()), tl = essential_name_len(tt.name());
                return ll == 0 || tl == 0 || (ll == tl && lt.name().substr(0, ll) == tt.name().substr(0, tl));
            }
            case Kind::Int: return lt.int_offset() == 0 && tt.int_offset() == 0;
            case Kind::Array:
                lid = lt.array().type;
                tid = tt.array().type;
                continue;
            default: return 0;
            }
        }
        return -EINVAL;
    }

    // bpf_core_match_member(): finds the local member's name in the target composite,
    // through anonymous members, extending the target spec as it goes.
    int match_member(const Accessor& local_acc, const Btf& tb, uint32_t targ_id, Spec& spec, uint32_t* next_targ_id, int depth = 0) {
        if (depth > kMaxCompatDepth * 4) return -EINVAL;
        const Type targ_type = skip(tb, targ_id, &targ_id);
        if (!is_composite(targ_type.kind())) return 0;
        const Member local_member = local_.type(local_acc.type_id).member(local_acc.idx);
        const uint32_t n = targ_type.vlen();
        for (uint32_t i = 0; i < n; ++i) {
            const Member m = targ_type.member(i);
            if (spec.raw.size() == kSpecMaxLen) return -E2BIG;
            spec.bit_offset += m.bit_offset;
            spec.raw.push_back(static_cast<int32_t>(i));
            if (m.name.empty()) {
                const int found = match_member(local_acc, tb, m.type, spec, next_targ_id, depth + 1);
                if (found) return found;
            } else if (m.name == local_member.name) {
                spec.spec.push_back({targ_id, i, m.name, true});
                *next_targ_id = m.type;
                const int found = fields_are_compat(local_, local_member.type, tb, m.type);
                if (!found) spec.spec.pop_back();
                return found;
            }
            spec.bit_offset -= m.bit_offset;
            spec.raw.pop_back();
        }
        return 0;
    }

    // bpf_core_spec_match(): 1 when the candidate matches (targ filled in), 0 when not,
    // a negative errno on error.
    int spec_match(const Spec& local_spec, const Btf& tb, uint32_t targ_id, Spec& targ) {
        targ.reset(&tb, targ_id, local_spec.kind);
        if (type_based(local_spec.kind)) {
            if (local_spec.kind == CoreReloKind::TypeMatches) return types_match(*local_spec.btf, local_spec.root_type_id, tb, targ_id, false, 32);
            return types_are_compat(*local_spec.btf, local_spec.root_type_id, tb, targ_id, 32);
        }
        if (enumval_based(local_spec.kind)) {
            const Accessor& local_acc = local_spec.spec[0];
            const Type t = skip(tb, targ_id, &targ_id);
            if (!is_enum(t.kind())) return 0;
            const std::size_t local_len = essential_name_len(local_acc.name);
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const std::string_view name = t.enumerator(i).name;
                if (essential_name_len(name) != local_len) continue;
                if (name.substr(0, local_len) == local_acc.name.substr(0, local_len)) {
                    targ.spec.push_back({targ_id, i, name, true});
                    targ.raw.push_back(static_cast<int32_t>(i));
                    return 1;
                }
            }
            return 0;
        }
        if (!field_based(local_spec.kind)) return -EINVAL;

        for (std::size_t i = 0; i < local_spec.spec.size(); ++i) {
            const Accessor& local_acc = local_spec.spec[i];
            const Type targ_type = skip(tb, targ_id, &targ_id);
            if (local_acc.named) {
                const int matched = match_member(local_acc, tb, targ_id, targ, &targ_id);
                if (matched <= 0) return matched;
            } else {
                // The first accessor indexes the root type itself; later ones an array.
                if (i > 0) {
                    if (targ_type.kind() != Kind::Array) return 0;
                    const ArrayInfo a = targ_type.array();
                    const bool flex = is_flex_arr(tb, targ.spec[i - 1], a);
                    if (!flex && local_acc.idx >= a.nelems) return 0;
                    skip(tb, a.type, &targ_id);
                }
                if (targ.raw.size() == kSpecMaxLen) return -E2BIG;
                targ.spec.push_back({targ_id, local_acc.idx, {}, false});
                targ.raw.push_back(static_cast<int32_t>(local_acc.idx));
                const int64_t sz = resolve_size(tb, targ_id);
                if (sz < 0) return static_cast<int>(sz);
                targ.bit_offset += static_cast<uint32_t>(int64_t(local_acc.idx) * sz * 8);
            }
        }
        return 1;
    }

    // __bpf_core_types_are_compat(): for type_exists, type_size, type_id_target.
    int types_are_compat(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, int level) {
        if (!kind_core_compat(lb.type(lid), tb.type(tid))) return 0;
        for (int depth = kMaxCompatDepth; depth-- > 0;) {
            const Type lt = skip(lb, lid, &lid), tt = skip(tb, tid, &tid);
            if (!kind_core_compat(lt, tt)) return 0;
            switch (lt.kind()) {
            case Kind::Void:
            case Kind::Struct:
            case Kind::Union:
            case Kind::Enum:
            case Kind::Fwd:
            case Kind::Enum64: return 1;
            case Kind::Int: return lt.int_offset() == 0 && tt.int_offset() == 0;
            case Kind::Ptr:
                lid = lt.type();
                tid = tt.type();
                continue;
            case Kind::Array:
                lid = lt.array().type;
                tid = tt.array().type;
                continue;
            case Kind::FuncProto: {
                if (lt.vlen() != tt.vlen()) return 0;
                for (uint32_t i = 0; i < lt.vlen(); ++i) {
                    if (level <= 0) return -EINVAL;
                    uint32_t lp, tp;
                    skip(lb, lt.param(i).type, &lp);
                    skip(tb, tt.param(i).type, &tp);
                    const int err = types_are_compat(lb, lp, tb, tp, level - 1);
                    if (err <= 0) return err;
                }
                skip(lb, lt.type(), &lid);
                skip(tb, tt.type(), &tid);
                continue;
            }
            default:
                res_.log.push_back(fmt::format("unexpected kind {} relocated, local [{}], target [{}]", kind_str(lt.kind()), lid, tid));
                return 0;
            }
        }
        return -EINVAL;
    }

    // bpf_core_names_match(): an anonymous target matches only an anonymous local.
    static bool names_match(std::string_view local_n, std::string_view targ_n) {
        if (targ_n.empty()) return local_n.empty();
        return essential_names_equal(local_n, targ_n);
    }

    static int enums_match(const Type& lt, const Type& tt) {
        if (lt.size() != tt.size()) return 0;
        if (lt.vlen() > tt.vlen()) return 0;
        for (uint32_t i = 0; i < lt.vlen(); ++i) {
            bool matched = false;
            const std::string_view ln = lt.enumerator(i).name;
            for (uint32_t j = 0; j < tt.vlen() && !matched; ++j) matched = names_match(ln, tt.enumerator(j).name);
            if (!matched) return 0;
        }
        return 1;
    }

    int composites_match(const Btf& lb, const Type& lt, const Btf& tb, const Type& tt, bool behind_ptr, int level) {
        if (lt.vlen() > tt.vlen()) return 0;
        for (uint32_t i = 0; i < lt.vlen(); ++i) {
            const Member lm = lt.member(i);
            bool matched = false;
            for (uint32_t j = 0; j < tt.vlen(); ++j) {
                const Member tm = tt.member(j);
                if (!names_match(lm.name, tm.name)) continue;
                const int err = types_match(lb, lm.type, tb, tm.type, behind_ptr, level - 1);
                if (err < 0) return err;
                if (err > 0) {
                    matched = true;
                    break;
                }
            }
            if (!matched) return 0;
        }
        return 1;
    }

    // __bpf_core_types_match(): for type_matches.
    int types_match(const Btf& lb, uint32_t lid, const Btf& tb, uint32_t tid, bool behind_ptr, int level) {
        if (level <= 0) return -EINVAL;
        for (int depth = kMaxCompatDepth; depth-- > 0;) {
            const Type lt = skip(lb, lid, &lid), tt = skip(tb, tid, &tid);
            if (!names_match(lt.name(), tt.name())) return 0;
            const Kind lk = lt.kind(), tk = tt.kind();
            switch (lk) {
            case Kind::Void: return lk == tk;
            case Kind::Fwd: {
                const bool lf = lt.kflag();
                if (behind_ptr) {
                    if (lk == tk) return lf == tt.kflag();
                    return (tk == Kind::Struct && !lf) || (tk == Kind::Union && lf);
                }
                if (lk != tk) return 0;
                return lf == tt.kflag();
            }
            case Kind::Enum:
            case Kind::Enum64:
                if (!is_enum(tk)) return 0;
                return enums_match(lt, tt);
            case Kind::Struct:
            case Kind::Union:
                if (behind_ptr) {
                    if (lk == tk) return 1;
                    if (tk != Kind::Fwd) return 0;
                    return (lk == Kind::Union) == tt.kflag();
                }
                if (lk != tk) return 0;
                return composites_match(lb, lt, tb, tt, behind_ptr, level);
            case Kind::Int:
                if (lk != tk) return 0;
                return lt.size() == tt.size() && (lt.int_encoding() & kIntSigned) == (tt.int_encoding() & kIntSigned);
            case Kind::Ptr:
                if (lk != tk) return 0;
                behind_ptr = true;
                lid = lt.type();
                tid = tt.type();
                continue;
            case Kind::Array: {
                if (lk != tk) return 0;
                const ArrayInfo la = lt.array(), ta = tt.array();
                if (la.nelems != ta.nelems) return 0;
                lid = la.type;
                tid = ta.type;
                continue;
            }
            case Kind::FuncProto: {
                if (lk != tk) return 0;
                if (lt.vlen() != tt.vlen()) return 0;
                for (uint32_t i = 0; i < lt.vlen(); ++i) {
                    const int err = types_match(lb, lt.param(i).type, tb, tt.param(i).type, behind_ptr, level - 1);
                    if (err <= 0) return err;
                }
                lid = lt.type();
                tid = tt.type();
                continue;
            }
            default:
                res_.log.push_back(fmt::format("unexpected kind {} relocated, local [{}], target [{}]", kind_str(lk), lid, tid));
                return 0;
            }
        }
        return -EINVAL;
    }

    // ───────────────────────────── values ─────────────────────────────

    struct Calc {
        bool poison = false;
        bool validate = true;
        bool fail_memsz_adjust = false;
        uint64_t orig_val = 0, new_val = 0;
        uint32_t orig_sz = 0, new_sz = 0;
        uint32_t orig_type_id = 0, new_type_id = 0;
    };

    // bpf_core_calc_field_relo(). spec == nullptr: no target. Returns -EUCLEAN to ask for
    // poisoning; throws Fail for errors.
    int calc_field(const Spec* spec, uint64_t* val, uint32_t* field_sz, uint32_t* type_id, bool* validate) {
        *field_sz = 0;
        if (r_.kind == CoreReloKind::FieldExists) {
            *val = spec ? 1 : 0;
            return 0;
        }
        if (!spec) return -EUCLEAN;
        const Btf& btf = *spec->btf;
        const Accessor& acc = spec->spec.back();
        if (!acc.named) {   // the access ends in an array element
            if (r_.kind == CoreReloKind::FieldByteOffset) {
                *val = spec->bit_offset / 8;
                const int64_t sz = resolve_size(btf, acc.type_id);
                if (sz < 0) fail(-EINVAL, ErrorCode::InvalidBtf, fmt::format("type [{}] ({}) has no size", acc.type_id, btf.type_name(acc.type_id)));
                *field_sz = static_cast<uint32_t>(sz);
                *type_id = acc.type_id;
            } else if (r_.kind == CoreReloKind::FieldByteSize) {
                const int64_t sz = resolve_size(btf, acc.type_id);
                if (sz < 0) fail(-EINVAL, ErrorCode::InvalidBtf, fmt::format("type [{}] ({}) has no size", acc.type_id, btf.type_name(acc.type_id)));
                *val = static_cast<uint64_t>(sz);
            } else {
                fail(-EINVAL, ErrorCode::Unsupported,
                     fmt::format("relo {} at insn #{} can't be applied to array access", static_cast<uint32_t>(r_.kind), r_.insn));
            }
            if (validate) *validate = true;
            return 0;
        }

        const Type t = btf.type(acc.type_id);
        const Member m = t.member(acc.idx);
        uint32_t field_type_id;
        const Type mt = skip(btf, m.type, &field_type_id);
        const uint32_t bit_off = spec->bit_offset;
        uint32_t bit_sz = m.bitfield_size;
        uint32_t byte_off, byte_sz;
        const bool bitfield = bit_sz > 0;
        if (bitfield) {
            byte_sz = (mt.kind() == Kind::Int || is_enum(mt.kind())) ? mt.size() : 0;
            if (byte_sz == 0) fail(-EINVAL, ErrorCode::InvalidBtf, fmt::format("bitfield of type [{}] ({}) has no size", field_type_id, kind_str(mt.kind())));
            byte_off = bit_off / 8 / byte_sz * byte_sz;
            // The smallest load that holds the whole bitfield.
            while (bit_off + bit_sz - byte_off * 8 > byte_sz * 8) {
                if (byte_sz >= 8)
                    fail(-E2BIG, ErrorCode::Unsupported,
                         fmt::format("relo {} at insn #{} can't be satisfied for bitfield", static_cast<uint32_t>(r_.kind), r_.insn));
                byte_sz *= 2;
                byte_off = bit_off / 8 / byte_sz * byte_sz;
            }
        } else {
            const int64_t sz = resolve_size(btf, field_type_id);
            if (sz < 0) fail(-EINVAL, ErrorCode::InvalidBtf, fmt::format("field type [{}] ({}) has no size", field_type_id, btf.type_name(field_type_id)));
            byte_sz = static_cast<uint32_t>(sz);
            byte_off = spec->bit_offset / 8;
            bit_sz = byte_sz * 8;
        }
        // A bitfield's offset and size are the compiler's choice: only signedness and the
        // right shift are checked against the instruction.
        if (validate) *validate = !bitfield;

        switch (r_.kind) {
        case CoreReloKind::FieldByteOffset:
            *val = byte_off;
            if (!bitfield) {
                *field_sz = byte_sz;
                *type_id = field_type_id;
            }
            break;
        case CoreReloKind::FieldByteSize: *val = byte_sz; break;
        case CoreReloKind::FieldSigned:
            *val = (is_enum(mt.kind()) && mt.kflag()) || (mt.kind() == Kind::Int && (mt.int_encoding() & kIntSigned));
            if (validate) *validate = true;
            break;
        case CoreReloKind::FieldLshiftU64: *val = uint32_t(64u - (bit_off + bit_sz - byte_off * 8)); break;
        case CoreReloKind::FieldRshiftU64:
            *val = uint32_t(64u - bit_sz);
            if (validate) *validate = true;
            break;
        default: return -EOPNOTSUPP;
        }
        return 0;
    }

    // bpf_core_calc_type_relo().
    int calc_type(const Spec* spec, uint64_t* val, bool* validate) {
        if (validate) *validate = true;
        if (!spec) {
            *val = 0;
            return 0;
        }
        switch (r_.kind) {
        case CoreReloKind::TypeIdTarget:
            *val = spec->root_type_id;
            if (validate) *validate = false;   // type ids change when objects are linked
            break;
        case CoreReloKind::TypeExists:
        case CoreReloKind::TypeMatches: *val = 1; break;
        case CoreReloKind::TypeSize: {
            const int64_t sz = resolve_size(*spec->btf, spec->root_type_id);
            if (sz < 0) fail(-EINVAL, ErrorCode::InvalidBtf,
                     fmt::format("type [{}] ({}) has no size", spec->root_type_id, spec->btf->type_name(spec->root_type_id)));
            *val = static_cast<uint64_t>(sz);
            break;
        }
        default: return -EOPNOTSUPP;
        }
        return 0;
    }

    // bpf_core_calc_enumval_relo(). An ENUM value is sign-extended, as libbpf's s32 is.
    int calc_enumval(const Spec* spec, uint64_t* val) {
        switch (r_.kind) {
        case CoreReloKind::EnumvalExists: *val = spec ? 1 : 0; break;
        case CoreReloKind::EnumvalValue: {
            if (!spec) return -EUCLEAN;
            const Type t = spec->btf->type(spec->spec[0].type_id);
            const uint64_t v = enum_raw_value(t, spec->spec[0].idx);
            *val = t.kind() == Kind::Enum ? static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v)))) : v;
            break;
        }
        default: return -EOPNOTSUPP;
        }
        return 0;
    }

    // bpf_core_calc_relo(): original and new values for one candidate (or none).
    Calc calc_relo(const Spec& local_spec, const Spec* targ_spec) {
        Calc c;
        int err = -EOPNOTSUPP;
        if (field_based(r_.kind)) {
            err = calc_field(&local_spec, &c.orig_val, &c.orig_sz, &c.orig_type_id, &c.validate);
            if (!err) err = calc_field(targ_spec, &c.new_val, &c.new_sz, &c.new_type_id, nullptr);
            if (!err && c.orig_sz != c.new_sz) {
                // Only loads of pointers and unsigned integers keep their value at another size.
                const Type ot = local_spec.btf->type(c.orig_type_id), nt = targ_spec->btf->type(c.new_type_id);
                const bool ptrs = ot.kind() == Kind::Ptr && nt.kind() == Kind::Ptr;
                const bool uints = ot.kind() == Kind::Int && nt.kind() == Kind::Int && ot.int_encoding() != kIntSigned &&
                                   nt.int_encoding() != kIntSigned;
                c.fail_memsz_adjust = !ptrs && !uints;
            }
        } else if (type_based(r_.kind)) {
            err = calc_type(&local_spec, &c.orig_val, &c.validate);
            if (!err) err = calc_type(targ_spec, &c.new_val, nullptr);
        } else if (enumval_based(r_.kind)) {
            err = calc_enumval(&local_spec, &c.orig_val);
            if (!err) err = calc_enumval(targ_spec, &c.new_val);
        }
        if (err == -EUCLEAN) {
            c.poison = true;
        } else if (err == -EOPNOTSUPP) {
            fail(err, ErrorCode::Unsupported,
                 fmt::format("unrecognized CO-RE relocation {} ({}) at insn #{}", core_kind_str(r_.kind), static_cast<uint32_t>(r_.kind), r_.insn));
        }
        return c;
    }

    void take(const Calc& c) {
        res_.poison = c.poison;
        res_.validate = c.validate;
        res_.orig_value = c.orig_val;
        res_.new_value = c.new_val;
        res_.orig_size = c.orig_sz;
        res_.new_size = c.new_sz;
        res_.fail_memsz_adjust = c.fail_memsz_adjust;
    }

    // bpf_core_calc_relo_insn().
    void calc_relo_insn(const Type& local_type, std::vector<CoreCandCache::Cand>* cands) {
        Spec local_spec, cand_spec, targ_spec;
        parse_spec(local_spec);
        res_.local_spec = format_spec(local_spec);
        res_.log.push_back(res_.local_spec);

        if (r_.kind == CoreReloKind::TypeIdLocal) {
            res_.validate = false;
            res_.orig_value = res_.new_value = local_spec.root_type_id;
            return;
        }
        if (local_type.name().empty())
            fail(-EOPNOTSUPP, ErrorCode::Unsupported, fmt::format("<{}> ({}) relocation doesn't support anonymous types", core_kind_str(r_.kind),
                                                                  static_cast<uint32_t>(r_.kind)));

        Calc best;
        std::size_t j = 0;
        for (std::size_t i = 0; i < cands->size(); ++i) {
            const CoreCandCache::Cand cand = (*cands)[i];
            const int err = spec_match(local_spec, *cand.btf, cand.id, cand_spec);
            if (err < 0)
                fail(err, err == -E2BIG ? ErrorCode::Unsupported : ErrorCode::InvalidBtf,
                     fmt::format("error matching candidate #{} {}: {}", i, format_spec(cand_spec),
                                 err == -E2BIG ? "the access is nested too deep" : "invalid type"));
            res_.log.push_back(fmt::format("{} candidate #{} {}", err == 0 ? "non-matching" : "matching", i, format_spec(cand_spec)));
            if (err == 0) continue;

            const Calc c = calc_relo(local_spec, &cand_spec);
            if (j == 0) {
                best = c;
                targ_spec = cand_spec;
                res_.target_type = cand.id;
                res_.target_spec = format_spec(cand_spec);
            } else if (cand_spec.bit_offset != targ_spec.bit_offset) {
                fail(-EINVAL, ErrorCode::Unsupported,
                     fmt::format("field offset ambiguity: {} != {} (candidates [{}] and [{}])", cand_spec.bit_offset, targ_spec.bit_offset,
                                 cand.id, res_.target_type));
            } else if (c.poison != best.poison || c.new_val != best.new_val) {
                fail(-EINVAL, ErrorCode::Unsupported,
                     fmt::format("relocation decision ambiguity: {} {} != {} {} (candidates [{}] and [{}])", c.poison ? "failure" : "success",
                                 c.new_val, best.poison ? "failure" : "success", best.new_val, cand.id, res_.target_type));
            }
            res_.matches.push_back({cand.btf, cand_spec.root_type_id, cand_spec.raw});
            (*cands)[j++] = cand;
        }
        // Candidates that did not match are dropped for later relocations of this type,
        // unless none matched (an existence check may expect that).
        if (j > 0) {
            cands->resize(j);
            take(best);
            return;
        }
        res_.log.push_back("no matching targets found");
        take(calc_relo(local_spec, nullptr));
        if (res_.poison)
            res_.failure = fmt::format("no target type matches {}{}", res_.local_spec,
                                       cands->empty() ? fmt::format(" (no {} named like it in the target BTF)", kind_str(local_type.kind()))
                                                      : fmt::format(" ({} candidate{} of that name, none compatible)", cands->size(),
                                                                    cands->size() == 1 ? "" : "s"));
    }

    const Btf& local_;
    const CoreTargets& targets_;
    const CoreRelo& r_;
    CoreCandCache own_cache_;
    CoreCandCache* cache_;
    CoreResult res_;
};

Location at(const Location& where, std::size_t pc) {
    Location loc = where;
    if (!loc.pc) loc.pc = pc;
    return loc;
}

}  // namespace

Result<CoreResult> core_relocate(const Btf& local, const CoreTargets& targets, const CoreRelo& r, CoreCandCache* cache, const Location& where) {
    try {
        if (r.type_id >= local.count())
            return Error(ErrorCode::InvalidBtf, fmt::format("CO-RE relocation names type [{}], the local BTF has {}", r.type_id, local.count()),
                         at(where, r.insn));
        return Relocator(local, targets, r, cache).run();
    } catch (const Fail& f) {
        return Error(f.code, fmt::format("CO-RE {} relocation: {}", core_kind_str(r.kind), f.what), at(where, r.insn));
    } catch (Error& e) {
        if (e.where().empty()) e.where() = at(where, r.insn);
        return e;
    }
}

Result<CoreResult> core_relocate(const Btf& local, const Btf& target, const CoreRelo& r, CoreCandCache* cache, const Location& where) {
    CoreTargets t;
    t.main = &target;
    return core_relocate(local, t, r, cache, where);
}

namespace {

void poison_insn(vm::Insn& insn, std::size_t idx, CorePatch& out) {
    out.log.push_back(fmt::format("substituting insn #{} w/ invalid insn", idx));
    insn.code = 0x85;   // BPF_JMP | BPF_CALL
    insn.dst = 0;
    insn.src = 0;
    insn.off = 0;
    insn.imm = kCorePoisonImm;
}

int size_bytes(uint8_t code) {
    switch (code & 0x18) {
    case 0x18: return 8;
    case 0x00: return 4;
    case 0x08: return 2;
    default: return 1;
    }
}

int size_bits(uint32_t bytes) {
    switch (bytes) {
    case 8: return 0x18;
    case 4: return 0x00;
    case 2: return 0x08;
    case 1: return 0x10;
    default: return -1;
    }
}

}  // namespace

Result<CorePatch> core_patch(vm::Insn* insns, std::size_t count, std::size_t pc, const CoreRelo& r, const CoreResult& res, const Location& where) {
    auto err = [&](std::string what) { return Error(ErrorCode::InvalidInsn, fmt::format("CO-RE {} relocation: {}", core_kind_str(r.kind), what), at(where, pc)); };
    if (pc >= count) return err(fmt::format("insn #{} is outside the program ({} instructions)", pc, count));
    vm::Insn& insn = insns[pc];
    const bool ldimm64 = insn.code == 0x18;
    CorePatch out;

    auto poison = [&]() -> Result<CorePatch> {
        if (ldimm64) {
            if (pc + 1 >= count) return err(fmt::format("insn #{} is an lddw without its second half", pc));
            poison_insn(insns[pc + 1], pc + 1, out);
        }
        poison_insn(insn, pc, out);
        out.poisoned = true;
        return out;
    };
    if (res.poison) return poison();

    const uint64_t orig_val = res.orig_value, new_val = res.new_value;
    switch (insn.code & 0x07) {
    case 0x04:   // ALU
    case 0x07: {  // ALU64
        if (insn.code & 0x08) return err(fmt::format("insn #{} (ALU/ALU64) takes a register, not an immediate, so it cannot be relocated", pc));
        const uint64_t imm = static_cast<uint64_t>(static_cast<int64_t>(insn.imm));
        if (res.validate && imm != orig_val)
            return err(fmt::format("unexpected insn #{} (ALU/ALU64) value: got {}, exp {} -> {}", pc, static_cast<uint32_t>(insn.imm), orig_val, new_val));
        insn.imm = static_cast<int32_t>(static_cast<uint32_t>(new_val));
        out.log.push_back(fmt::format("patched insn #{} (ALU/ALU64) imm {} -> {}", pc, imm, new_val));
        return out;
    }
    case 0x01:   // LDX
    case 0x02:   // ST
    case 0x03: {  // STX
        const uint64_t off = static_cast<uint64_t>(static_cast<int64_t>(insn.off));
        if (res.validate && off != orig_val)
            return err(fmt::format("unexpected insn #{} (LDX/ST/STX) value: got {}, exp {} -> {}", pc, static_cast<uint32_t>(insn.off), orig_val, new_val));
        if (new_val > SHRT_MAX) return err(fmt::format("insn #{} (LDX/ST/STX) value too big: {}", pc, new_val));
        if (res.fail_memsz_adjust) {
            out.log.push_back(fmt::format("insn #{} (LDX/ST/STX) accesses field incorrectly. Make sure you are accessing pointers, unsigned "
                                          "integers, or fields of matching type and size.",
                                          pc));
            return poison();
        }
        vm::Insn patched = insn;
        patched.off = static_cast<int16_t>(new_val);
        out.log.push_back(fmt::format("patched insn #{} (LDX/ST/STX) off {} -> {}", pc, off, new_val));
        if (res.new_size != res.orig_size) {
            const int have = size_bytes(insn.code);
            if (have != static_cast<int>(res.orig_size))
                return err(fmt::format("insn #{} (LDX/ST/STX) unexpected mem size: got {}, exp {}", pc, have, res.orig_size));
            const int bits = size_bits(res.new_size);
            if (bits < 0) return err(fmt::format("insn #{} (LDX/ST/STX) invalid new mem size: {}", pc, res.new_size));
            patched.code = static_cast<uint8_t>((insn.code & 0xe0) | bits | (insn.code & 0x07));
            out.log.push_back(fmt::format("patched insn #{} (LDX/ST/STX) mem_sz {} -> {}", pc, res.orig_size, res.new_size));
        }
        insn = patched;
        return out;
    }
    case 0x00: {  // LD
        if (!ldimm64 || insn.src != 0 || insn.off != 0 || pc + 1 >= count || insns[pc + 1].code != 0 || insns[pc + 1].dst != 0 ||
            insns[pc + 1].src != 0 || insns[pc + 1].off != 0)
            return err(fmt::format("insn #{} (LDIMM64) has unexpected form", pc));
        const uint64_t imm = static_cast<uint32_t>(insn.imm) | (static_cast<uint64_t>(static_cast<uint32_t>(insns[pc + 1].imm)) << 32);
        if (res.validate && imm != orig_val)
            return err(fmt::format("unexpected insn #{} (LDIMM64) value: got {}, exp {} -> {}", pc, imm, orig_val, new_val));
        insn.imm = static_cast<int32_t>(static_cast<uint32_t>(new_val));
        insns[pc + 1].imm = static_cast<int32_t>(static_cast<uint32_t>(new_val >> 32));
        out.log.push_back(fmt::format("patched insn #{} (LDIMM64) imm64 {} -> {}", pc, imm, new_val));
        return out;
    }
    default:
        return err(fmt::format("trying to relocate unrecognized insn #{}, code:{:#x}, src:{:#x}, dst:{:#x}, off:{:#x}, imm:{:#x}", pc, insn.code,
                               unsigned(insn.src), unsigned(insn.dst), static_cast<uint16_t>(insn.off), static_cast<uint32_t>(insn.imm)));
    }
}

}  // namespace bpfsim::btf
