// Object: programs, subprograms, maps and relocations of a BPF ELF object, and linking.
#include "btf/btf.hpp"
#include "harness/harness.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

namespace bpfsim::harness {

namespace {

// Relocation types of BPF objects (elf.h has some of them as macros).
constexpr uint32_t kRelNone = 0, kRel64_64 = 1, kRelAbs32 = 3, kRelNodyld32 = 4, kRel64_32 = 10;

[[noreturn]] void fail(const std::string& file, const std::string& section, const std::string& what,
                       ErrorCode code = ErrorCode::InvalidElf) {
    Location loc;
    loc.file = file;
    loc.section = section;
    throw Error(code, what, loc);
}

bool is_data_section(const ElfSection& s) {
    if (!(s.flags & SHF_ALLOC) || (s.flags & SHF_EXECINSTR)) return false;
    if (s.type != SHT_PROGBITS && s.type != SHT_NOBITS) return false;
    auto has = [&](std::string_view base) {
        return s.name == base || (s.name.size() > base.size() && s.name.starts_with(base) && s.name[base.size()] == '.');
    };
    return has(".data") || has(".rodata") || has(".bss");
}

bool is_legacy_maps_section(const ElfSection& s) { return s.name == "maps" || s.name.starts_with("maps/"); }

uint32_t read_u32(const std::vector<uint8_t>& d, std::size_t off) {
    uint32_t v = 0;
    if (off + 4 <= d.size()) std::memcpy(&v, d.data() + off, 4);
    return v;
}

struct BtfMapDef {
    std::string name;
    uint32_t offset = 0, size = 0;
    uint32_t type = 0, key_size = 0, value_size = 0, max_entries = 0, flags = 0, numa_node = 0, pinning = 0;
    uint64_t map_extra = 0;
    uint32_t key_type = 0, value_type = 0;
    std::optional<uint32_t> values_offset;     // byte offset of `.values` inside the definition
    std::shared_ptr<BtfMapDef> inner;
};

// One BTF map definition: an (anonymous) struct whose members encode the attributes as
// pointers to arrays (`__uint(max_entries, 16)` is `int (*max_entries)[16]`) or pointers
// to types (`__type(key, u32)`), as libbpf's bpf_helpers.h macros lay them out.
BtfMapDef parse_btf_map(const btf::Btf& b, uint32_t struct_id, const std::string& name, const std::string& file, int depth) {
    auto bad = [&](const std::string& what) -> Error {
        Location loc;
        loc.file = file;
        loc.section = ".maps";
        return Error(ErrorCode::InvalidElf, fmt::format("map '{}': {}", name, what), loc);
    };
    BtfMapDef d;
    d.name = name;
    const btf::Type st = b.type(b.resolve(struct_id));
    if (st.kind() != btf::Kind::Struct) throw bad(fmt::format("definition is a {}, not a struct", btf::kind_name(st.kind())));
    for (uint32_t i = 0; i < st.vlen(); ++i) {
        const btf::Member m = st.member(i);
        const btf::Type mt = b.type(b.resolve(m.type));
        auto number = [&]() -> uint32_t {
            if (mt.kind() != btf::Kind::Ptr) throw bad(fmt::format("field '{}' is not a pointer to an array", m.name));
            const btf::Type arr = b.type(b.resolve(mt.type()));
            if (arr.kind() != btf::Kind::Array) throw bad(fmt::format("field '{}' does not point at an array", m.name));
            return arr.array().nelems;
        };
        auto pointee = [&]() -> uint32_t {
            if (mt.kind() != btf::Kind::Ptr) throw bad(fmt::format("field '{}' is not a pointer to a type", m.name));
            return mt.type();
        };
        if (m.name == "type") d.type = number();
        else if (m.name == "max_entries") d.max_entries = number();
        else if (m.name == "map_flags") d.flags = number();
        else if (m.name == "numa_node") d.numa_node = number();
        else if (m.name == "pinning") d.pinning = number();
        else if (m.name == "map_extra") d.map_extra = number();
        else if (m.name == "key_size") d.key_size = number();
        else if (m.name == "value_size") d.value_size = number();
        else if (m.name == "key") {
            d.key_type = pointee();
            d.key_size = static_cast<uint32_t>(b.size_of(d.key_type));
        } else if (m.name == "value") {
            d.value_type = pointee();
            d.value_size = static_cast<uint32_t>(b.size_of(d.value_type));
        } else if (m.name == "values") {
            // An array of pointers: to inner map definitions (map-in-map) or to functions (prog arrays).
            if (mt.kind() != btf::Kind::Array) throw bad("field 'values' is not an array");
            const btf::Type elem = b.type(b.resolve(mt.array().type));
            if (elem.kind() != btf::Kind::Ptr) throw bad("field 'values' is not an array of pointers");
            d.values_offset = m.bit_offset / 8;
            const btf::Type target = b.type(b.resolve(elem.type()));
            if (target.kind() == btf::Kind::Struct) {
                if (depth > 0) throw bad("inner maps cannot have inner maps");
                d.inner = std::make_shared<BtfMapDef>(parse_btf_map(b, elem.type(), name + ".inner", file, depth + 1));
            }
            if (d.key_size == 0) d.key_size = 4;
            if (d.value_size == 0) d.value_size = 4;
        } else {
            throw bad(fmt::format("unknown field '{}'", m.name));
        }
    }
    return d;
}

MapDef to_map_def(const BtfMapDef& d, MapDef::Origin origin) {
    MapDef m;
    m.name = d.name;
    m.origin = origin;
    m.section = ".maps";
    m.type = static_cast<MapType>(d.type);
    m.key_size = d.key_size;
    m.value_size = d.value_size;
    m.max_entries = d.max_entries;
    m.flags = d.flags;
    m.map_extra = d.map_extra;
    m.numa_node = d.numa_node;
    m.pinning = d.pinning;
    m.btf_key_type = d.key_type;
    m.btf_value_type = d.value_type;
    return m;
}

std::vector<BtfMapDef> parse_btf_maps(const btf::Btf& b, const std::string& file) {
    std::vector<BtfMapDef> out;
    auto sec = b.find(".maps", btf::Kind::Datasec);
    if (!sec) {
        Location loc;
        loc.file = file;
        loc.section = ".maps";
        throw Error(ErrorCode::InvalidElf, "the BTF has no DATASEC '.maps' describing the map definitions", loc);
    }
    const btf::Type ds = b.type(*sec);
    for (uint32_t i = 0; i < ds.vlen(); ++i) {
        const btf::VarSecinfo v = ds.var(i);
        const btf::Type var = b.type(v.type);
        if (var.kind() != btf::Kind::Var) continue;
        BtfMapDef d = parse_btf_map(b, var.type(), std::string(var.name()), file, 0);
        d.offset = v.offset;
        d.size = v.size;
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace

struct Rel {
    uint64_t offset;   // byte offset in the target section
    uint32_t sym;      // symbol index
    uint32_t type;
};

struct ExecSection {
    std::size_t index = 0;
    std::string name;
    std::vector<vm::Insn> insns;
    std::map<uint64_t, Rel> rels;   // by byte offset
    // Functions: [first, first+count) instruction ranges, sorted by first.
    struct Func {
        std::string name;
        std::size_t first, count;
        bool global;
    };
    std::vector<Func> funcs;
    const Func* func_at(std::size_t insn) const {
        for (const auto& f : funcs)
            if (insn >= f.first && insn < f.first + f.count) return &f;
        return nullptr;
    }
};

struct Object::Impl {
    std::map<std::size_t, ExecSection> exec;                  // by ELF section index
    std::map<std::pair<std::size_t, uint64_t>, std::size_t> map_by_symbol;   // (section, value) -> map
    std::map<std::size_t, std::size_t> map_by_data_section;   // section -> global data map
    std::map<std::string, std::size_t> map_by_name;
    std::optional<std::size_t> kconfig_map;                   // index of the .kconfig map
    std::optional<btf::Btf> btf;
    std::optional<btf::Ext> ext;
};

Object::Object() : impl_(std::make_unique<Impl>()) {}
Object::Object(Object&&) noexcept = default;
Object& Object::operator=(Object&&) noexcept = default;
Object::~Object() = default;

Result<Object> Object::open(const std::filesystem::path& path) {
    auto elf = ElfFile::open(path);
    if (!elf) return elf.error();
    return from_elf(std::move(elf.value()));
}

Result<Object> Object::from_elf(ElfFile elf_in) {
    return catch_error([&]() -> Object {
        Object o;
        o.elf_ = std::move(elf_in);
        const ElfFile& elf = o.elf_;
        const std::string& file = elf.path();
        Impl& im = *o.impl_;

        // License and kernel version.
        if (const auto* lic = elf.section("license")) {
            o.license_.assign(lic->data.begin(), std::find(lic->data.begin(), lic->data.end(), uint8_t(0)));
        }
        if (const auto* ver = elf.section("version"); ver && ver->data.size() == 4) o.kern_version_ = read_u32(ver->data, 0);

        // BTF first: BTF-defined maps and line info need it. A broken .BTF is reported
        // rather than ignored, naming the section.
        if (const auto* s = elf.section(".BTF"); s && !s->data.empty()) {
            auto b = btf::Btf::parse(s->data, file + ":.BTF");
            if (!b) {
                Error e = b.error();
                e.where().file = file;
                e.where().section = ".BTF";
                throw e;
            }
            im.btf = std::move(b.value());
            if (const auto* x = elf.section(".BTF.ext"); x && !x->data.empty()) {
                auto ext = btf::parse_ext(x->data, *im.btf, file);
                if (!ext) {
                    Error e = ext.error();
                    e.where().file = file;
                    e.where().section = ".BTF.ext";
                    throw e;
                }
                im.ext = std::move(ext.value());
            }
        }

        // Executable sections and their functions.
        for (const auto& s : elf.sections()) {
            if (s.type != SHT_PROGBITS || !(s.flags & SHF_EXECINSTR)) continue;
            if (s.data.size() % 8) fail(file, s.name, fmt::format("size {} is not a whole number of instructions", s.data.size()));
            ExecSection es;
            es.index = s.index;
            es.name = s.name;
            es.insns.resize(s.data.size() / 8);
            if (!s.data.empty()) std::memcpy(static_cast<void*>(es.insns.data()), s.data.data(), s.data.size());
            for (const auto& sym : elf.symbols()) {
                if (sym.section != s.index || sym.type != STT_FUNC) continue;
                if (sym.value % 8 || sym.value >= s.data.size() || sym.size % 8 || sym.size > s.data.size() - sym.value)
                    fail(file, s.name, fmt::format("function '{}' [{:#x}, +{:#x}) does not fit the section", sym.name, sym.value, sym.size));
                es.funcs.push_back({sym.name, sym.value / 8, sym.size ? sym.size / 8 : 0, sym.bind == STB_GLOBAL});
            }
            std::sort(es.funcs.begin(), es.funcs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
            // Size-less symbols extend to the next function or the section end.
            for (std::size_t i = 0; i < es.funcs.size(); ++i) {
                if (es.funcs[i].count) continue;
                const std::size_t end = i + 1 < es.funcs.size() ? es.funcs[i + 1].first : es.insns.size();
                es.funcs[i].count = end - es.funcs[i].first;
            }
            im.exec.emplace(s.index, std::move(es));
        }
        // Relocations.
        for (const auto& s : elf.sections()) {
            if (s.type != SHT_REL) continue;
            auto it = im.exec.find(s.info);
            if (it == im.exec.end()) continue;   // relocations of debug info, .BTF, ...
            if (s.entsize != 16 || s.data.size() % 16) fail(file, s.name, "relocation entries are not 16 bytes");
            for (std::size_t off = 0; off < s.data.size(); off += 16) {
                uint64_t r_offset, r_info;
                std::memcpy(&r_offset, s.data.data() + off, 8);
                std::memcpy(&r_info, s.data.data() + off + 8, 8);
                const Rel r{r_offset, static_cast<uint32_t>(r_info >> 32), static_cast<uint32_t>(r_info)};
                if (r.type == kRelNone) continue;
                if (r.offset % 8 || r.offset / 8 >= it->second.insns.size())
                    fail(file, s.name, fmt::format("relocation at {:#x} is outside section '{}'", r.offset, it->second.name));
                if (r.sym >= elf.symbols().size())
                    fail(file, s.name, fmt::format("relocation at {:#x} names symbol {} of {}", r.offset, r.sym, elf.symbols().size()));
                it->second.rels[r.offset] = r;
            }
        }

        // Entry programs: every function of a non-.text executable section (or the whole
        // section when it has no symbols). .text holds subprograms, unless it is all there is.
        bool only_text = std::all_of(im.exec.begin(), im.exec.end(), [](const auto& e) { return e.second.name == ".text"; });
        for (const auto& [idx, es] : im.exec) {
            if (es.insns.empty()) continue;
            const bool text = es.name == ".text";
            if (text && !only_text) continue;
            const ProgType type = prog_type_for_section(es.name);
            std::string attach;
            if (auto slash = es.name.find('/'); slash != std::string::npos) attach = es.name.substr(slash + 1);
            if (es.funcs.empty()) {
                o.programs_.push_back({es.name, es.name, type, attach, idx, 0, es.insns.size()});
                continue;
            }
            for (const auto& f : es.funcs) {
                if (text && !f.global) continue;
                o.programs_.push_back({f.name, es.name, type, attach, idx, f.first, f.count});
            }
        }
        // cilium's numbered tail-call sections ("2/10") take the object's main program type.
        ProgType main_type = ProgType::Unspec;
        for (const auto& p : o.programs_)
            if (p.type != ProgType::Unspec) {
                main_type = p.type;
                break;
            }
        for (auto& p : o.programs_)
            if (p.type == ProgType::Unspec && !p.section.empty() && std::isdigit(static_cast<unsigned char>(p.section[0])))
                p.type = main_type;

        // Legacy map definitions: struct bpf_map_def (20 or 28 bytes) or iproute2's
        // struct bpf_elf_map (36 bytes), the size decided by section size / symbol count.
        for (const auto& s : elf.sections()) {
            if (!is_legacy_maps_section(s)) continue;
            std::vector<const ElfSymbol*> syms;
            for (const auto& sym : elf.symbols())
                if (sym.section == s.index && (sym.type == STT_OBJECT || sym.type == STT_NOTYPE) && !sym.name.empty())
                    syms.push_back(&sym);
            if (syms.empty()) {
                if (s.size == 0) continue;
                fail(file, s.name, "map section has no map symbols");
            }
            std::sort(syms.begin(), syms.end(), [](auto* a, auto* b) { return a->value < b->value; });
            const std::size_t def_sz = s.data.size() / syms.size();
            if (def_sz < 20 || s.data.size() % syms.size())
                fail(file, s.name, fmt::format("{} bytes do not divide into {} map definitions of at least 20 bytes",
                                               s.data.size(), syms.size()));
            for (const auto* sym : syms) {
                if (sym->value % def_sz || sym->value + def_sz > s.data.size())
                    fail(file, s.name, fmt::format("map '{}' at {:#x} is not on a {}-byte definition boundary", sym->name, sym->value, def_sz));
                const std::size_t at = sym->value;
                MapDef m;
                m.name = sym->name;
                m.origin = MapDef::Origin::Legacy;
                m.section = s.name;
                m.type = static_cast<MapType>(read_u32(s.data, at));
                m.key_size = read_u32(s.data, at + 4);
                m.value_size = read_u32(s.data, at + 8);
                m.max_entries = read_u32(s.data, at + 12);
                m.flags = read_u32(s.data, at + 16);
                if (def_sz >= 36) m.pinning = read_u32(s.data, at + 24);          // bpf_elf_map: id, pinning, inner_id, inner_idx
                else if (def_sz >= 28) m.numa_node = read_u32(s.data, at + 24);  // bpf_map_def: inner_map_idx, numa_node
                im.map_by_symbol[{s.index, sym->value}] = o.maps_.size();
                o.maps_.push_back(std::move(m));
            }
        }

        // BTF-defined maps in .maps.
        if (const auto* s = elf.section(".maps")) {
            if (!im.btf) fail(file, ".maps", "BTF-defined maps need a .BTF section, and the object has none");
            auto defs = parse_btf_maps(*im.btf, file);
            for (auto& d : defs) {
                // clang leaves DATASEC offsets at 0; the symbols say where each map is (as libbpf fixes up).
                const ElfSymbol* sym = nullptr;
                for (const auto& es : elf.symbols())
                    if (es.section == s->index && es.name == d.name) sym = &es;
                if (!sym) fail(file, ".maps", fmt::format("map '{}' has no symbol in .maps", d.name));
                d.offset = static_cast<uint32_t>(sym->value);
                d.size = static_cast<uint32_t>(sym->size);
                MapDef m = to_map_def(d, MapDef::Origin::Btf);
                if (d.inner) {
                    auto inner = std::make_shared<MapDef>(to_map_def(*d.inner, MapDef::Origin::Inner));
                    inner->name = d.name + ".inner";
                    m.inner = std::move(inner);
                }
                // `.values = {...}` initialisers are relocations against the .maps section.
                for (const auto& s2 : elf.sections()) {
                    if (s2.type != SHT_REL || s2.info != s->index) continue;
                    for (std::size_t off = 0; off + 16 <= s2.data.size(); off += 16) {
                        uint64_t r_offset, r_info;
                        std::memcpy(&r_offset, s2.data.data() + off, 8);
                        std::memcpy(&r_info, s2.data.data() + off + 8, 8);
                        const uint32_t symi = static_cast<uint32_t>(r_info >> 32);
                        if (symi >= elf.symbols().size() || !d.values_offset) continue;
                        if (r_offset < d.offset + *d.values_offset || r_offset >= d.offset + d.size) continue;
                        const uint64_t slot = (r_offset - d.offset - *d.values_offset) / 8;
                        m.init_slots.emplace_back(static_cast<uint32_t>(slot), elf.symbols()[symi].name);
                    }
                }
                im.map_by_symbol[{s->index, d.offset}] = o.maps_.size();
                o.maps_.push_back(std::move(m));
            }
        }

        // Global data: one single-entry array map per section, as libbpf does.
        for (const auto& s : elf.sections()) {
            if (!is_data_section(s) || s.size == 0) continue;
            if (s.size > UINT32_MAX) fail(file, s.name, "global data section larger than 4 GiB");
            MapDef m;
            m.name = s.name;
            m.type = MapType::Array;
            m.key_size = 4;
            m.value_size = static_cast<uint32_t>(s.size);
            m.max_entries = 1;
            m.section = s.name;
            const bool ro = s.name.starts_with(".rodata");
            m.origin = s.type == SHT_NOBITS ? MapDef::Origin::Bss : ro ? MapDef::Origin::Rodata : MapDef::Origin::Data;
            m.frozen = ro;
            if (s.type != SHT_NOBITS) m.init = s.data;   // .bss: no image, its storage starts zeroed
            im.map_by_data_section[s.index] = o.maps_.size();
            o.maps_.push_back(std::move(m));
        }
        // `extern ... __kconfig` variables: one frozen single-entry array map, laid out as libbpf
        // does (by alignment, largest first, then by name); the world writes the values.
        if (im.btf) {
            if (auto sec = im.btf->find(".kconfig", btf::Kind::Datasec)) {
                const btf::Btf& b = *im.btf;
                const btf::Type ds = b.type(*sec);
                struct Pending { KconfigVar v; uint32_t align; };
                std::vector<Pending> vars;
                for (uint32_t i = 0; i < ds.vlen(); ++i) {
                    const btf::Type var = b.type(ds.var(i).type);
                    if (var.kind() != btf::Kind::Var) fail(file, ".kconfig", fmt::format("entry {} of the .kconfig DATASEC is not a variable", i));
                    KconfigVar v;
                    v.name = std::string(var.name());
                    v.weak = std::any_of(elf.symbols().begin(), elf.symbols().end(),
                                         [&](const ElfSymbol& sym) { return sym.name == v.name && sym.bind == STB_WEAK; });
                    const uint32_t tid = b.resolve(var.type());
                    const btf::Type t = b.type(tid);
                    auto bad = [&](const char* why) {
                        fail(file, ".kconfig", fmt::format("extern '{}' has type '{}', {}", v.name, b.type_name(var.type()), why));
                    };
                    uint32_t align = 1;
                    if (t.kind() == btf::Kind::Int) {
                        const uint32_t enc = t.int_encoding();
                        v.size = t.size();
                        if (enc & 4) {   // BTF_INT_BOOL
                            if (v.size != 1) bad("a bool that is not one byte");
                            v.kind = KconfigVar::Kind::Bool;
                        } else if (v.size == 1) {
                            v.kind = KconfigVar::Kind::Char;
                        } else {
                            if (v.size > 8 || (v.size & (v.size - 1))) bad("an integer of a size libbpf does not accept");
                            v.kind = KconfigVar::Kind::Int;
                            v.is_signed = enc & 1;
                        }
                        align = v.size;
                    } else if (t.kind() == btf::Kind::Enum && t.name() == "libbpf_tristate") {
                        v.kind = KconfigVar::Kind::Tristate;
                        v.size = 4;
                        align = 4;
                    } else if (t.kind() == btf::Kind::Array) {
                        const btf::Type elem = b.type(b.resolve(t.array().type));
                        if (elem.kind() != btf::Kind::Int || elem.size() != 1) bad("an array of something other than char");
                        v.kind = KconfigVar::Kind::CharArray;
                        v.size = t.array().nelems;
                    } else {
                        bad("which is not a bool, char, integer, tristate or char array");
                    }
                    if (v.size == 0) bad("of size 0");
                    vars.push_back({std::move(v), align});
                }
                std::stable_sort(vars.begin(), vars.end(), [](const Pending& a, const Pending& c) {
                    return a.align != c.align ? a.align > c.align : a.v.name < c.v.name;
                });
                uint64_t off = 0;
                for (auto& pv : vars) {
                    off = (off + pv.align - 1) / pv.align * pv.align;
                    if (off > UINT32_MAX) fail(file, ".kconfig", "the variables take more than 4 GiB");
                    pv.v.offset = static_cast<uint32_t>(off);
                    off += pv.v.size;
                    o.kconfig_.push_back(std::move(pv.v));
                }
                if (!o.kconfig_.empty()) {
                    MapDef m;
                    m.name = ".kconfig";
                    m.type = MapType::Array;
                    m.key_size = 4;
                    if ((off + 7) / 8 * 8 > UINT32_MAX) fail(file, ".kconfig", "the variables take more than 4 GiB");
                    m.value_size = static_cast<uint32_t>((off + 7) / 8 * 8);
                    m.max_entries = 1;
                    m.section = ".kconfig";
                    m.origin = MapDef::Origin::Kconfig;
                    m.frozen = true;
                    im.kconfig_map = o.maps_.size();
                    o.maps_.push_back(std::move(m));
                }
            }
        }

        for (std::size_t i = 0; i < o.maps_.size(); ++i) im.map_by_name[o.maps_[i].name] = i;
        return o;
    });
}

const btf::Btf* Object::btf() const { return impl_->btf ? &*impl_->btf : nullptr; }
const btf::Ext* Object::btf_ext() const { return impl_->ext ? &*impl_->ext : nullptr; }

Result<std::vector<uint8_t>> Object::kernel_btf() const {
    return catch_error([&]() -> std::vector<uint8_t> {
        const ElfSection* s = elf_.section(".BTF");
        if (!s || s->data.empty()) return {};
        auto b = btf::Btf::parse(s->data, path() + ":.BTF");
        if (!b) throw b.error();
        for (uint32_t id = 1; id < b->count(); ++id) {
            const btf::Type t = b->type(id);
            if (t.kind() != btf::Kind::Datasec) continue;
            const ElfSection* sec = elf_.section(t.name());
            if (!sec) continue;   // e.g. .kconfig, which has no ELF section
            std::vector<uint32_t> offsets;
            for (uint32_t v = 0; v < t.vlen(); ++v) {
                const std::string_view var = b->type(t.var(v).type).name();
                uint32_t off = t.var(v).offset;
                for (const auto& sym : elf_.symbols())
                    if (sym.section == sec->index && sym.name == var) off = static_cast<uint32_t>(sym.value);
                offsets.push_back(off);
            }
            b->fix_datasec(id, static_cast<uint32_t>(sec->size), offsets);
        }
        return b->to_bytes();
    });
}

const ProgramDef* Object::find_program(std::string_view name) const {
    for (const auto& p : programs_)
        if (p.name == name) return &p;
    for (const auto& p : programs_)
        if (p.section == name) return &p;
    return nullptr;
}

std::size_t Object::core_relo_count() const {
    std::size_t n = 0;
    if (impl_->ext)
        for (const auto& s : impl_->ext->sections) n += s.relos.size();
    return n;
}

Result<LinkedProgram> Object::link(std::string_view name, const btf::CoreTargets* core) const {
    return catch_error([&]() -> LinkedProgram {
        const std::string& file = path();
        const ProgramDef* def = find_program(name);
        if (!def) {
            std::string names;
            for (const auto& p : programs_) names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", p.name, p.section);
            Location loc;
            loc.file = file;
            throw Error(ErrorCode::NotFound, fmt::format("no program '{}'; the object has: {}", name, names.empty() ? "none" : names), loc);
        }
        const Impl& im = *impl_;
        LinkedProgram out;
        out.type = def->type;
        out.attach = def->attach;
        out.prog.name = def->name;
        out.prog.section = def->section;
        out.prog.file = file;
        std::vector<std::pair<std::size_t, std::size_t>> origin;   // per pc: (section, insn)
        std::map<std::pair<std::size_t, std::size_t>, std::size_t> placed;   // (section, func first) -> pc
        auto& insns = out.prog.insns;

        auto append = [&](const ExecSection& es, std::size_t first, std::size_t count, const std::string& fname) {
            placed[{es.index, first}] = insns.size();
            out.functions.emplace_back(insns.size(), fname);
            for (std::size_t k = 0; k < count; ++k) {
                insns.push_back(es.insns[first + k]);
                origin.emplace_back(es.index, first + k);
            }
        };
        // The pc of instruction t of section sec, appending its function if needed.
        auto place = [&](std::size_t sec, std::size_t t, std::size_t from_pc) -> std::size_t {
            auto eit = im.exec.find(sec);
            const ExecSection& es = eit->second;
            if (t >= es.insns.size())
                fail(file, es.name, fmt::format("pc {}: call or function reference to instruction {} past the end of '{}'",
                                                from_pc, t, es.name));
            const auto* f = es.func_at(t);
            const std::size_t first = f ? f->first : 0;
            const std::size_t count = f ? f->count : es.insns.size();
            auto it = placed.find({sec, first});
            if (it == placed.end()) {
                append(es, first, count, f ? f->name : es.name);
                it = placed.find({sec, first});
            }
            return it->second + (t - first);
        };

        const ExecSection& home = im.exec.at(def->section_index);
        append(home, def->first, def->count, def->name);

        std::vector<bool> map_used(maps_.size(), false);
        for (std::size_t pc = 0; pc < insns.size(); ++pc) {
            const auto [sec, sidx] = origin[pc];
            const ExecSection& es = im.exec.at(sec);
            vm::Insn& in = insns[pc];
            const Rel* rel = nullptr;
            if (auto r = es.rels.find(sidx * 8); r != es.rels.end()) rel = &r->second;
            // An init-capture: clang 14 cannot capture a structured binding.
            auto where = [&, sidx = sidx](const std::string& what) {
                fail(file, es.name, fmt::format("instruction {} (pc {} of '{}'): {}", sidx, pc, def->name, what));
            };
            const bool is_call = in.code == 0x85;
            const bool is_lddw = in.code == 0x18;
            if (!rel) {
                if (is_call && in.src == vm::kPseudoCallLocal) {
                    const int64_t t = static_cast<int64_t>(sidx) + 1 + in.imm;
                    if (t < 0 || t >= static_cast<int64_t>(es.insns.size()))
                        where(fmt::format("call target {} is outside the section", t));
                    {
                    // place() may grow insns: write through the index, not the old reference.
                    const int32_t rel = static_cast<int32_t>(static_cast<int64_t>(place(sec, static_cast<std::size_t>(t), pc)) - static_cast<int64_t>(pc) - 1);
                    insns[pc].imm = rel;
                }
                } else if (is_lddw && in.src == 4 && pc + 1 < insns.size()) {
                    const int64_t t = static_cast<int64_t>(sidx) + 1 + in.imm;
                    if (t < 0 || t >= static_cast<int64_t>(es.insns.size()))
                        where(fmt::format("function reference {} is outside the section", t));
                    {
                    // place() may grow insns: write through the index, not the old reference.
                    const int32_t rel = static_cast<int32_t>(static_cast<int64_t>(place(sec, static_cast<std::size_t>(t), pc)) - static_cast<int64_t>(pc) - 1);
                    insns[pc].imm = rel;
                }
                }
                if (is_lddw) ++pc;
                continue;
            }
            const ElfSymbol& sym = elf_.symbols()[rel->sym];
            if (is_call) {
                if (rel->type != kRel64_32 && rel->type != kRelNodyld32 && rel->type != kRelAbs32)
                    where(fmt::format("call with relocation type {}", rel->type));
                if (sym.section == SHN_UNDEF) {   // an extern function: a kfunc
                    in.src = 2;
                    in.imm = 0;
                    out.externs.emplace_back(pc, sym.name);
                    continue;
                }
                if (!im.exec.count(sym.section)) where(fmt::format("call to '{}', which is not in an executable section", sym.name));
                const int64_t t = static_cast<int64_t>(sym.value / 8) + in.imm + 1;
                if (t < 0) where(fmt::format("call to '{}' lands before its section", sym.name));
                in.src = vm::kPseudoCallLocal;
                {
                    // place() may grow insns: write through the index, not the old reference.
                    const int32_t rel = static_cast<int32_t>(static_cast<int64_t>(place(sym.section, static_cast<std::size_t>(t), pc)) - static_cast<int64_t>(pc) - 1);
                    insns[pc].imm = rel;
                }
                continue;
            }
            if (!is_lddw) where(fmt::format("relocation against '{}' on an instruction that is neither lddw nor call", sym.name));
            if (pc + 1 >= insns.size()) where("lddw is missing its second half");
            if (rel->type != kRel64_64) where(fmt::format("lddw with relocation type {}", rel->type));
            vm::Insn& hi = insns[pc + 1];
            if (sym.section == SHN_UNDEF && im.kconfig_map) {
                auto kv = std::find_if(kconfig_.begin(), kconfig_.end(), [&](const KconfigVar& v) { return v.name == sym.name; });
                if (kv != kconfig_.end()) {
                    const int64_t off = static_cast<int64_t>(kv->offset) + in.imm;   // in.imm: the addend
                    if (off < 0 || off >= static_cast<int64_t>(maps_[*im.kconfig_map].value_size))
                        where(fmt::format("reference to '{}'+{} is outside the .kconfig map", sym.name, in.imm));
                    in.src = 6;   // a value in the .kconfig map
                    in.imm = static_cast<int32_t>(*im.kconfig_map);
                    hi.imm = static_cast<int32_t>(off);
                    map_used[*im.kconfig_map] = true;
                    ++pc;
                    continue;
                }
            }
            if (sym.section == SHN_UNDEF) {   // extern variable: a kernel symbol (ksym)
                in.src = 3;   // BTF id of a kernel symbol, resolved by the world or refused at run time
                out.externs.emplace_back(pc, sym.name);
                ++pc;
                continue;
            }
            if (auto m = im.map_by_symbol.find({sym.section, sym.value}); m != im.map_by_symbol.end()) {
                in.src = 5;   // map by index
                in.imm = static_cast<int32_t>(m->second);
                hi.imm = 0;
                map_used[m->second] = true;
            } else if (auto d = im.map_by_data_section.find(sym.section); d != im.map_by_data_section.end()) {
                const int64_t off = static_cast<int64_t>(in.imm) + (sym.type == STT_SECTION ? 0 : static_cast<int64_t>(sym.value));
                if (off < 0 || off >= static_cast<int64_t>(maps_[d->second].value_size) + 1)
                    where(fmt::format("reference to '{}'+{} is outside section '{}'", sym.name, off, maps_[d->second].name));
                in.src = 6;   // map value by index + offset
                hi.imm = static_cast<int32_t>(off);
                in.imm = static_cast<int32_t>(d->second);
                map_used[d->second] = true;
            } else if (im.exec.count(sym.section)) {
                const uint64_t byte = sym.value + static_cast<uint64_t>(static_cast<int64_t>(in.imm));
                if (byte % 8) where(fmt::format("function reference '{}' is not instruction-aligned", sym.name));
                in.src = 4;
                {
                    // place() may grow insns: write through the index, not the old reference.
                    const int32_t rel = static_cast<int32_t>(static_cast<int64_t>(place(sym.section, byte / 8, pc)) - static_cast<int64_t>(pc) - 1);
                    insns[pc].imm = rel;
                }
            } else {
                const ElfSection* target = elf_.section(sym.section);
                where(fmt::format("lddw refers to '{}' in section '{}', which is neither a map nor data", sym.name,
                                  target ? target->name : fmt::format("#{}", sym.section)));
            }
            ++pc;
        }
        for (std::size_t i = 0; i < map_used.size(); ++i)
            if (map_used[i]) out.maps.push_back(i);

        // Source lines and function info from .BTF.ext, carried to the linked pcs.
        if (im.ext) {
            std::map<std::pair<std::size_t, std::size_t>, std::size_t> pc_of;
            for (std::size_t pc = 0; pc < insns.size(); ++pc) pc_of.emplace(origin[pc], pc);
            for (const auto& [idx, es] : im.exec)
                if (const auto* xs = im.ext->find(es.name))
                    for (const auto& f : xs->funcs)
                        if (auto it = pc_of.find({idx, f.insn}); it != pc_of.end()) out.func_info.emplace_back(it->second, f.type_id);
            std::sort(out.func_info.begin(), out.func_info.end());
            std::map<std::size_t, std::vector<const btf::LineRec*>> by_section;
            for (const auto& [idx, es] : im.exec)
                if (const auto* xs = im.ext->find(es.name))
                    for (const auto& l : xs->lines) by_section[idx].push_back(&l);
            for (std::size_t pc = 0; pc < insns.size(); ++pc) {
                const auto [sec, sidx] = origin[pc];
                auto it = by_section.find(sec);
                if (it == by_section.end()) continue;
                for (const auto* l : it->second)
                    if (l->insn == sidx) out.prog.lines.push_back({pc, l->file, l->line, l->column, l->text});
            }

            // CO-RE: relocations in .BTF.ext order, one candidate cache for the program (libbpf
            // keeps one per object; they differ only when an earlier relocation of another
            // program narrowed an ambiguous candidate list).
            std::map<std::string, std::size_t, std::less<>> sec_index;
            for (const auto& [idx, es] : im.exec) sec_index.emplace(es.name, idx);
            btf::CoreCandCache cache;
            for (const auto& secname : im.ext->core_relo_order) {
                const auto* xs = im.ext->find(secname);
                auto si = sec_index.find(secname);
                if (!xs || si == sec_index.end()) continue;
                for (std::size_t i = 0; i < xs->relos.size(); ++i) {
                    const btf::CoreRelo& r = xs->relos[i];
                    auto it = pc_of.find({si->second, r.insn});
                    if (it == pc_of.end()) continue;   // another program's instruction
                    const std::size_t pc = it->second;
                    Location where;
                    where.file = file;
                    where.section = secname;
                    where.pc = pc;
                    for (const auto& l : out.prog.lines)
                        if (l.pc <= pc) where.source = fmt::format("{}:{}: {}", l.file, l.line, l.text);
                    if (!core || !core->main)
                        throw Error(ErrorCode::Usage,
                                    fmt::format("program '{}' has CO-RE relocations (instruction {} of '{}' is the first); give the kernel BTF to "
                                                "relocate them against (--btf FILE, or WorldOptions::kernel_btf)", def->name, r.insn, secname),
                                    where);
                    auto res = btf::core_relocate(*im.btf, *core, r, &cache, where);
                    if (!res) throw res.error();
                    auto patch = btf::core_patch(insns.data(), insns.size(), pc, r, *res, where);
                    if (!patch) throw patch.error();
                    ++out.core_relos;
                    if (patch->poisoned)
                        out.core_poisoned.emplace_back(pc, fmt::format("CO-RE relocation #{} of '{}' ({} {}) failed against {}: {}", i, secname,
                                                                       btf::core_kind_str(r.kind), res->local_spec, core->main_name,
                                                                       res->failure.empty() ? "no matching type in the kernel BTF" : res->failure));
                }
            }
        }
        return out;
    });
}

}  // namespace bpfsim::harness
