// BTF and .BTF.ext: hand-made blobs for every kind, both byte orders, split BTF, corrupt
// input, a fuzz loop; then this machine's vmlinux and module BTF, and real objects.
#include "btf/btf.hpp"
#include "harness/harness.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace fs = std::filesystem;
using namespace bpfsim;
using namespace bpfsim::btf;

namespace {

// ───────────────────────────── a small BTF writer ─────────────────────────────

struct M {
    std::string name;
    uint32_t type;
    uint32_t bit_offset;
    uint32_t bits = 0;   // bitfield size, for kflag structs
};

// Writes raw BTF in host order. For split BTF, give the base's count and strings size.
struct Writer {
    std::vector<uint32_t> words;
    std::string strings{'\0'};
    uint32_t next_id = 1;
    uint32_t str_base = 0;
    std::map<std::string, uint32_t> seen;

    Writer() = default;
    Writer(uint32_t first_id, uint32_t base_strings) : strings(), next_id(first_id), str_base(base_strings) {}

    uint32_t str(const std::string& s) {
        if (s.empty() && str_base == 0) return 0;
        if (auto it = seen.find(s); it != seen.end()) return it->second;
        const uint32_t off = str_base + static_cast<uint32_t>(strings.size());
        strings += s;
        strings += '\0';
        seen[s] = off;
        return off;
    }
    uint32_t head(uint32_t name_off, Kind kind, uint32_t vlen, uint32_t size_or_type, bool kflag = false) {
        words.push_back(name_off);
        words.push_back((uint32_t(kflag) << 31) | (uint32_t(kind) << 24) | vlen);
        words.push_back(size_or_type);
        return next_id++;
    }
    uint32_t add(const std::string& name, Kind kind, uint32_t vlen, uint32_t size_or_type, bool kflag = false) {
        return head(name.empty() ? 0 : str(name), kind, vlen, size_or_type, kflag);
    }
    void word(uint32_t w) { words.push_back(w); }

    uint32_t int_(const std::string& name, uint32_t size, uint32_t encoding, uint32_t bits, uint32_t offset = 0) {
        const uint32_t id = add(name, Kind::Int, 0, size);
        word((encoding << 24) | (offset << 16) | bits);
        return id;
    }
    uint32_t ref(Kind kind, uint32_t type, const std::string& name = "") { return add(name, kind, 0, type); }
    uint32_t array(uint32_t elem, uint32_t index, uint32_t n) {
        const uint32_t id = add("", Kind::Array, 0, 0);
        word(elem);
        word(index);
        word(n);
        return id;
    }
    uint32_t composite(Kind kind, const std::string& name, uint32_t size, const std::vector<M>& members, bool kflag = false) {
        const uint32_t id = add(name, kind, static_cast<uint32_t>(members.size()), size, kflag);
        for (const auto& m : members) {
            word(m.name.empty() ? 0 : str(m.name));
            word(m.type);
            word(kflag ? (m.bits << 24) | m.bit_offset : m.bit_offset);
        }
        return id;
    }
    uint32_t enum_(const std::string& name, uint32_t size, bool is_signed, const std::vector<std::pair<std::string, int64_t>>& values) {
        const uint32_t id = add(name, Kind::Enum, static_cast<uint32_t>(values.size()), size, is_signed);
        for (const auto& [n, v] : values) {
            word(str(n));
            word(static_cast<uint32_t>(v));
        }
        return id;
    }
    uint32_t enum64(const std::string& name, bool is_signed, const std::vector<std::pair<std::string, uint64_t>>& values) {
        const uint32_t id = add(name, Kind::Enum64, static_cast<uint32_t>(values.size()), 8, is_signed);
        for (const auto& [n, v] : values) {
            word(str(n));
            word(static_cast<uint32_t>(v));
            word(static_cast<uint32_t>(v >> 32));
        }
        return id;
    }
    uint32_t proto(uint32_t ret, const std::vector<std::pair<std::string, uint32_t>>& params) {
        const uint32_t id = add("", Kind::FuncProto, static_cast<uint32_t>(params.size()), ret);
        for (const auto& [n, t] : params) {
            word(n.empty() ? 0 : str(n));
            word(t);
        }
        return id;
    }
    uint32_t var(const std::string& name, uint32_t type, Linkage linkage) {
        const uint32_t id = add(name, Kind::Var, 0, type);
        word(uint32_t(linkage));
        return id;
    }
    uint32_t datasec(const std::string& name, uint32_t size, const std::vector<VarSecinfo>& vars) {
        const uint32_t id = add(name, Kind::Datasec, static_cast<uint32_t>(vars.size()), size);
        for (const auto& v : vars) {
            word(v.type);
            word(v.offset);
            word(v.size);
        }
        return id;
    }
    uint32_t decl_tag(const std::string& name, uint32_t type, int32_t component) {
        const uint32_t id = add(name, Kind::DeclTag, 0, type);
        word(static_cast<uint32_t>(component));
        return id;
    }

    // Header, then types, then strings; or strings first, and a longer zero-padded header.
    std::vector<uint8_t> bytes(bool strings_first = false, uint32_t hdr_len = 24) const {
        const uint32_t tl = static_cast<uint32_t>(words.size() * 4);
        const uint32_t sl = static_cast<uint32_t>(strings.size());
        const uint32_t sl_padded = (sl + 3) & ~3u;
        const uint32_t type_off = strings_first ? sl_padded : 0, str_off = strings_first ? 0 : tl;
        std::vector<uint8_t> out(hdr_len + tl + sl_padded, 0);
        const uint16_t magic = 0xeb9f;
        std::memcpy(out.data(), &magic, 2);
        out[2] = 1;
        const uint32_t hdr[5] = {hdr_len, type_off, tl, str_off, sl};
        std::memcpy(out.data() + 4, hdr, 20);
        if (tl) std::memcpy(out.data() + hdr_len + type_off, words.data(), tl);
        std::memcpy(out.data() + hdr_len + str_off, strings.data(), sl);
        if (!strings_first) out.resize(hdr_len + tl + sl);
        return out;
    }
};

// Byte-swaps raw BTF: the header's 16-bit magic and 32-bit fields, every type word.
std::vector<uint8_t> byteswap_btf(std::vector<uint8_t> b) {
    auto sw32 = [&](std::size_t o) {
        std::swap(b[o], b[o + 3]);
        std::swap(b[o + 1], b[o + 2]);
    };
    uint32_t hdr_len, type_off, type_len;
    std::memcpy(&hdr_len, &b[4], 4);
    std::memcpy(&type_off, &b[8], 4);
    std::memcpy(&type_len, &b[12], 4);
    std::swap(b[0], b[1]);
    for (std::size_t o = 4; o < 24; o += 4) sw32(o);
    for (std::size_t o = hdr_len + type_off; o < hdr_len + type_off + type_len; o += 4) sw32(o);
    return b;
}

// The sample: every kind, and the shapes the accessors must decode.
struct Sample {
    Writer w;
    uint32_t int_, chr, uint, arr, task, anon, task_ptr, task_t, const_task_t, vol_int, restrict_ptr, e, u, big, fwd_s, fwd_u,
        char_ptr, proto, f, v, data, dbl, tag_member, tag_func, user, user_ptr, arr_ptr, fn_ptr, const_char_ptr, g, g_proto;
    uint32_t count;
};

Sample make_sample() {
    Sample s;
    Writer& w = s.w;
    s.int_ = w.int_("int", 4, kIntSigned, 32);
    s.chr = w.int_("char", 1, kIntChar, 8);
    s.uint = w.int_("unsigned int", 4, 0, 32);
    s.arr = w.array(s.chr, s.uint, 16);
    const uint32_t task = w.next_id, anon = task + 1, task_ptr = task + 2;
    s.task = w.composite(Kind::Struct, "task", 32, {{"pid", s.int_, 0}, {"comm", s.arr, 32}, {"flags", s.uint, 160, 3}, {"", anon, 192}}, true);
    s.anon = w.composite(Kind::Union, "", 8, {{"a", s.int_, 0}, {"b", task_ptr, 0}});
    s.task_ptr = w.ref(Kind::Ptr, task);
    s.task_t = w.ref(Kind::Typedef, task, "task_t");
    s.const_task_t = w.ref(Kind::Const, s.task_t);
    s.vol_int = w.ref(Kind::Volatile, s.int_);
    s.restrict_ptr = w.ref(Kind::Restrict, s.task_ptr);
    s.e = w.enum_("e", 4, true, {{"A", -1}, {"B", 2}});
    s.u = w.enum_("u", 4, false, {{"X", 0xffffffffll}});
    s.big = w.enum64("big", false, {{"Y", 0x100000000ull}, {"Z", ~0ull}});
    s.fwd_s = w.add("fwd_s", Kind::Fwd, 0, 0);
    s.fwd_u = w.add("fwd_u", Kind::Fwd, 0, 0, true);
    s.char_ptr = w.ref(Kind::Ptr, s.chr);
    s.proto = w.proto(s.int_, {{"a", s.int_}, {"", s.char_ptr}, {"", 0}});
    s.f = w.add("f", Kind::Func, uint32_t(Linkage::Global), s.proto);
    s.v = w.var("v", s.int_, Linkage::Global);
    s.data = w.datasec(".data", 8, {{s.v, 4, 4}});
    s.dbl = w.add("double", Kind::Float, 0, 8);
    s.tag_member = w.decl_tag("tag1", s.task, 0);
    s.tag_func = w.decl_tag("tag2", s.f, -1);
    s.user = w.ref(Kind::TypeTag, s.int_, "user");
    s.user_ptr = w.ref(Kind::Ptr, s.user);
    s.arr_ptr = w.ref(Kind::Ptr, s.arr);
    s.fn_ptr = w.ref(Kind::Ptr, s.proto);
    s.const_char_ptr = w.ref(Kind::Const, s.char_ptr);
    // A FUNC whose FUNC_PROTO comes after it: forward references are legal.
    s.g = w.add("g", Kind::Func, uint32_t(Linkage::Static), w.next_id + 1);
    s.g_proto = w.proto(0, {});
    s.count = w.next_id;
    // Strings the .BTF.ext tests refer to.
    w.str("xdp");
    w.str("prog.c");
    w.str("    return x;");
    w.str("0:1");
    return s;
}

void check_sample(const Btf& b, const Sample& s) {
    CHECK(b.count() == s.count);
    CHECK(b.start_id() == 1);
    CHECK_FALSE(b.is_split());

    CHECK(b.type(0).is_void());
    CHECK(b.type(0).kind() == Kind::Void);
    CHECK(b.type(0).name().empty());

    const Type i = b.type(s.int_);
    CHECK(i.kind() == Kind::Int);
    CHECK(i.name() == "int");
    CHECK(i.size() == 4);
    CHECK(i.int_encoding() == kIntSigned);
    CHECK(i.int_bits() == 32);
    CHECK(i.int_offset() == 0);
    CHECK(b.type(s.chr).int_encoding() == kIntChar);

    const ArrayInfo a = b.type(s.arr).array();
    CHECK(a.type == s.chr);
    CHECK(a.index_type == s.uint);
    CHECK(a.nelems == 16);

    const Type task = b.type(s.task);
    CHECK(task.kind() == Kind::Struct);
    CHECK(task.name() == "task");
    CHECK(task.kflag());
    CHECK(task.size() == 32);
    REQUIRE(task.vlen() == 4);
    CHECK(task.member(0).name == "pid");
    CHECK(task.member(0).type == s.int_);
    CHECK(task.member(1).name == "comm");
    CHECK(task.member(1).bit_offset == 32);
    CHECK(task.member(1).bitfield_size == 0);
    CHECK(task.member(2).name == "flags");
    CHECK(task.member(2).bit_offset == 160);
    CHECK(task.member(2).bitfield_size == 3);
    CHECK(task.member(3).name.empty());
    CHECK(task.member(3).bit_offset == 192);

    const Type anon = b.type(s.anon);
    CHECK(anon.kind() == Kind::Union);
    CHECK(anon.name().empty());
    CHECK(anon.member(1).type == s.task_ptr);
    CHECK(anon.member(1).bit_offset == 0);

    CHECK(b.type(s.task_ptr).kind() == Kind::Ptr);
    CHECK(b.type(s.task_ptr).type() == s.task);
    CHECK(b.type(s.task_t).kind() == Kind::Typedef);
    CHECK(b.type(s.task_t).name() == "task_t");
    CHECK(b.type(s.const_task_t).kind() == Kind::Const);
    CHECK(b.type(s.vol_int).kind() == Kind::Volatile);
    CHECK(b.type(s.restrict_ptr).kind() == Kind::Restrict);

    const Type e = b.type(s.e);
    CHECK(e.enum_signed());
    CHECK(e.enumerator(0).name == "A");
    CHECK(e.enumerator(0).value == -1);
    CHECK(e.enumerator(1).value == 2);
    CHECK_FALSE(b.type(s.u).enum_signed());
    CHECK(b.type(s.u).enumerator(0).value == 0xffffffffll);
    const Type big = b.type(s.big);
    CHECK(big.kind() == Kind::Enum64);
    CHECK(big.size() == 8);
    CHECK(big.enumerator(0).value == 0x100000000ll);
    CHECK(static_cast<uint64_t>(big.enumerator(1).value) == ~0ull);

    CHECK(b.type(s.fwd_s).kind() == Kind::Fwd);
    CHECK_FALSE(b.type(s.fwd_s).fwd_is_union());
    CHECK(b.type(s.fwd_u).fwd_is_union());

    const Type proto = b.type(s.proto);
    CHECK(proto.kind() == Kind::FuncProto);
    CHECK(proto.type() == s.int_);
    REQUIRE(proto.vlen() == 3);
    CHECK(proto.param(0).name == "a");
    CHECK(proto.param(0).type == s.int_);
    CHECK(proto.param(1).name.empty());
    CHECK(proto.param(2).type == 0);   // varargs
    CHECK(b.type(s.f).kind() == Kind::Func);
    CHECK(b.type(s.f).type() == s.proto);
    CHECK(b.type(s.f).linkage() == Linkage::Global);
    CHECK(b.type(s.g).linkage() == Linkage::Static);
    CHECK(b.type(s.g).type() == s.g_proto);

    CHECK(b.type(s.v).linkage() == Linkage::Global);
    CHECK(b.type(s.v).type() == s.int_);
    const Type data = b.type(s.data);
    CHECK(data.kind() == Kind::Datasec);
    CHECK(data.name() == ".data");
    CHECK(data.var(0).type == s.v);
    CHECK(data.var(0).offset == 4);
    CHECK(data.var(0).size == 4);

    CHECK(b.type(s.dbl).kind() == Kind::Float);
    CHECK(b.type(s.dbl).size() == 8);
    CHECK(b.type(s.tag_member).kind() == Kind::DeclTag);
    CHECK(b.type(s.tag_member).component_idx() == 0);
    CHECK(b.type(s.tag_func).component_idx() == -1);
    CHECK(b.type(s.user).kind() == Kind::TypeTag);
    CHECK(b.type(s.user).name() == "user");

    // Accessors check the kind and the index.
    CHECK_THROWS_AS(b.type(s.int_).member(0), Error);
    CHECK_THROWS_WITH(b.type(s.task).member(4), Catch::Contains("has 4 entries"));
    CHECK_THROWS_WITH(b.type(s.task_ptr).size(), Catch::Contains("is a PTR"));
    CHECK_THROWS_AS(b.type(s.int_).type(), Error);
    CHECK_THROWS_AS(b.type(s.task).array(), Error);
    CHECK_THROWS_AS(b.type(0).int_info(), Error);
    CHECK_THROWS_WITH(b.type(s.count), Catch::Contains("does not exist"));
    CHECK_THROWS_AS(b.type(~0u), Error);

    // Queries.
    CHECK(b.find("task", Kind::Struct) == s.task);
    CHECK_FALSE(b.find("task", Kind::Union));
    CHECK(b.find("int", Kind::Int) == s.int_);
    CHECK(b.find("task_t", Kind::Typedef) == s.task_t);
    CHECK(b.find(".data", Kind::Datasec) == s.data);
    CHECK_FALSE(b.find("nothing", Kind::Struct));
    CHECK_FALSE(b.find("", Kind::Ptr));
    CHECK(b.find_all("f", Kind::Func) == std::vector<uint32_t>{s.f});

    CHECK(b.resolve(s.const_task_t) == s.task);
    CHECK(b.resolve(s.vol_int) == s.int_);
    CHECK(b.resolve(s.user) == s.int_);
    CHECK(b.resolve(s.task_ptr) == s.task_ptr);
    CHECK(b.resolve(0) == 0);

    CHECK(b.size_of(s.int_) == 4);
    CHECK(b.size_of(s.arr) == 16);
    CHECK(b.size_of(s.task) == 32);
    CHECK(b.size_of(s.const_task_t) == 32);
    CHECK(b.size_of(s.task_ptr) == 8);
    CHECK(b.size_of(s.e) == 4);
    CHECK(b.size_of(s.big) == 8);
    CHECK(b.size_of(s.v) == 4);
    CHECK(b.size_of(s.data) == 8);
    CHECK(b.size_of(s.dbl) == 8);
    for (uint32_t sizeless : {0u, s.fwd_s, s.proto, s.f, s.tag_member})
        CHECK_THROWS_WITH(b.size_of(sizeless), Catch::Contains("has no size"));

    CHECK(b.type_name(0) == "void");
    CHECK(b.type_name(s.int_) == "int");
    CHECK(b.type_name(s.uint) == "unsigned int");
    CHECK(b.type_name(s.arr) == "char [16]");
    CHECK(b.type_name(s.task) == "struct task");
    CHECK(b.type_name(s.anon) == "union (anon)");
    CHECK(b.type_name(s.task_ptr) == "struct task *");
    CHECK(b.type_name(s.task_t) == "task_t");
    CHECK(b.type_name(s.const_task_t) == "const task_t");
    CHECK(b.type_name(s.vol_int) == "volatile int");
    CHECK(b.type_name(s.restrict_ptr) == "struct task *restrict");
    CHECK(b.type_name(s.e) == "enum e");
    CHECK(b.type_name(s.big) == "enum big");
    CHECK(b.type_name(s.fwd_s) == "struct fwd_s");
    CHECK(b.type_name(s.fwd_u) == "union fwd_u");
    CHECK(b.type_name(s.char_ptr) == "char *");
    CHECK(b.type_name(s.proto) == "int (int, char *, ...)");
    CHECK(b.type_name(s.f) == "int f(int, char *, ...)");
    CHECK(b.type_name(s.g) == "void g(void)");
    CHECK(b.type_name(s.v) == "int v");
    CHECK(b.type_name(s.data) == "datasec .data");
    CHECK(b.type_name(s.dbl) == "double");
    CHECK(b.type_name(s.user_ptr) == "int *");
    CHECK(b.type_name(s.arr_ptr) == "char (*)[16]");
    CHECK(b.type_name(s.fn_ptr) == "int (*)(int, char *, ...)");
    CHECK(b.type_name(s.const_char_ptr) == "char *const");
    CHECK(b.type_name(s.tag_member) == "decl_tag tag1 on struct task");
    CHECK(b.type_name(12345) == "<bad type 12345>");

    auto pid = b.member_by_name(s.task, "pid");
    REQUIRE(pid);
    CHECK(pid->bit_offset == 0);
    auto comm = b.member_by_name(s.const_task_t, "comm");   // through const and typedef
    REQUIRE(comm);
    CHECK(comm->bit_offset == 32);
    CHECK(b.type_name(comm->type) == "char [16]");
    auto flags = b.member_by_name(s.task, "flags");
    REQUIRE(flags);
    CHECK(flags->bitfield_size == 3);
    auto inner = b.member_by_name(s.task, "b");   // inside the anonymous union at bit 192
    REQUIRE(inner);
    CHECK(inner->bit_offset == 192);
    CHECK(inner->type == s.task_ptr);
    CHECK_FALSE(b.member_by_name(s.task, "nope"));
    CHECK_FALSE(b.member_by_name(s.int_, "pid"));
}

// Parses, expecting InvalidBtf; returns the description ("file: message").
std::string btf_error(const std::vector<uint8_t>& bytes, const Btf* base = nullptr) {
    auto r = Btf::parse(bytes, "t.btf", base);
    if (r) return "(parsed)";
    CHECK(r.error().code() == ErrorCode::InvalidBtf);
    CHECK(r.error().where().file == "t.btf");
    return r.error().describe();
}

template <class F>
std::string btf_error_with(F&& edit) {
    Sample s = make_sample();
    edit(s.w, s);
    return btf_error(s.w.bytes());
}

// ───────────────────────────── a small .BTF.ext writer ─────────────────────────────

struct ExtWriter {
    struct Section {
        uint32_t name_off;
        std::vector<std::vector<uint32_t>> records;
    };
    std::vector<Section> funcs, lines, relos;
    uint32_t func_rec = 8, line_rec = 16, relo_rec = 16;
    uint32_t hdr_len = 32;

    static void block(std::vector<uint32_t>& out, const std::vector<Section>& secs, uint32_t rec) {
        if (secs.empty()) return;
        out.push_back(rec);
        for (const auto& s : secs) {
            out.push_back(s.name_off);
            out.push_back(static_cast<uint32_t>(s.records.size()));
            for (auto r : s.records) {
                r.resize(rec / 4, 0xdddddddd);   // larger records: the extra words are junk to skip
                out.insert(out.end(), r.begin(), r.end());
            }
        }
    }
    std::vector<uint8_t> bytes() const {
        std::vector<uint32_t> f, l, c;
        block(f, funcs, func_rec);
        block(l, lines, line_rec);
        block(c, relos, relo_rec);
        std::vector<uint32_t> body;
        const uint32_t f_off = 0, l_off = static_cast<uint32_t>(f.size() * 4), c_off = l_off + static_cast<uint32_t>(l.size() * 4);
        body.insert(body.end(), f.begin(), f.end());
        body.insert(body.end(), l.begin(), l.end());
        body.insert(body.end(), c.begin(), c.end());
        std::vector<uint8_t> out(hdr_len + body.size() * 4, 0);
        const uint16_t magic = 0xeb9f;
        std::memcpy(out.data(), &magic, 2);
        out[2] = 1;
        const uint32_t hdr[7] = {hdr_len, f_off, uint32_t(f.size() * 4), l_off, uint32_t(l.size() * 4), c_off, uint32_t(c.size() * 4)};
        std::memcpy(out.data() + 4, hdr, std::min<std::size_t>(sizeof hdr, hdr_len - 4));
        std::memcpy(out.data() + hdr_len, body.data(), body.size() * 4);
        return out;
    }
};

std::vector<uint8_t> byteswap_ext(std::vector<uint8_t> b) {
    auto sw32 = [&](std::size_t o) {
        std::swap(b[o], b[o + 3]);
        std::swap(b[o + 1], b[o + 2]);
    };
    uint32_t hdr_len;
    std::memcpy(&hdr_len, &b[4], 4);
    std::swap(b[0], b[1]);
    for (std::size_t o = 4; o + 4 <= hdr_len; o += 4) sw32(o);
    for (std::size_t o = hdr_len; o + 4 <= b.size(); o += 4) sw32(o);   // every block is 32-bit words
    return b;
}

ExtWriter sample_ext(Sample& s) {
    Writer& w = s.w;
    ExtWriter x;
    x.funcs.push_back({w.str("xdp"), {{0, s.f}, {40, s.g}}});
    x.lines.push_back({w.str("xdp"), {{0, w.str("prog.c"), w.str("    return x;"), (12u << 10) | 5}, {16, w.str("prog.c"), 0, 13u << 10}}});
    x.lines.push_back({w.str("g"), {{8, w.str("prog.c"), 0, 40u << 10}}});
    x.relos.push_back({w.str("xdp"), {{24, s.task, w.str("0:1"), uint32_t(CoreReloKind::FieldByteOffset)},
                                      {32, s.task, w.str("0"), uint32_t(CoreReloKind::TypeMatches)}}});
    return x;
}

std::string ext_error(const std::vector<uint8_t>& bytes, const Btf& b) {
    auto r = parse_ext(bytes, b, "t.o");
    if (r) return "(parsed)";
    CHECK(r.error().code() == ErrorCode::InvalidBtf);
    CHECK(r.error().where().section == ".BTF.ext");
    return r.error().describe();
}

// Touches everything a parsed Btf offers; used on fuzzed and real input. Errors are fine,
// crashes and hangs are not.
void exercise(const Btf& b) {
    for (uint32_t id = 0; id < b.count(); ++id) {
        const Type t = b.type(id);
        (void)t.name();
        (void)b.type_name(id);
        try {
            (void)b.size_of(id);
        } catch (const Error&) {
        }
        try {
            (void)b.resolve(id);
        } catch (const Error&) {
        }
        try {
            switch (t.kind()) {
            case Kind::Struct:
            case Kind::Union:
                for (uint32_t i = 0; i < t.vlen(); ++i) (void)t.member(i);
                (void)b.member_by_name(id, "x");
                break;
            case Kind::Enum:
            case Kind::Enum64:
                for (uint32_t i = 0; i < t.vlen(); ++i) (void)t.enumerator(i);
                break;
            case Kind::FuncProto:
                for (uint32_t i = 0; i < t.vlen(); ++i) (void)t.param(i);
                break;
            case Kind::Datasec:
                for (uint32_t i = 0; i < t.vlen(); ++i) (void)t.var(i);
                break;
            case Kind::Int: (void)t.int_info(); break;
            case Kind::Array: (void)t.array(); break;
            default: break;
            }
        } catch (const Error&) {
        }
        if (!t.name().empty()) (void)b.find(t.name(), t.kind());
    }
}

std::vector<uint8_t> read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

// ───────────────────────────────── tests ─────────────────────────────────

TEST_CASE("BTF: every kind and its accessors", "[btf]") {
    const Sample s = make_sample();
    SECTION("host byte order") {
        auto b = Btf::parse(s.w.bytes(), "sample");
        REQUIRE(b.ok());
        check_sample(*b, s);
    }
    SECTION("the other byte order gives the same types") {
        auto b = Btf::parse(byteswap_btf(s.w.bytes()), "sample");
        REQUIRE(b.ok());
        check_sample(*b, s);
    }
    SECTION("strings before types, and a longer header") {
        auto b = Btf::parse(s.w.bytes(true, 32), "sample");
        REQUIRE(b.ok());
        check_sample(*b, s);
    }
    SECTION("to_bytes round trip, after a move") {
        auto first = Btf::parse(byteswap_btf(s.w.bytes()), "sample");
        REQUIRE(first.ok());
        const Type task = first->type(s.task);
        Btf moved = std::move(first.value());
        CHECK(task.name() == "task");   // views survive moving the Btf
        auto again = Btf::parse(moved.to_bytes(), "again");
        REQUIRE(again.ok());
        check_sample(*again, s);
        CHECK(again->to_bytes() == s.w.bytes());
    }
    SECTION("fix_datasec") {
        auto b = Btf::parse(s.w.bytes(), "sample");
        REQUIRE(b.ok());
        b->fix_datasec(s.data, 64, {16});
        CHECK(b->type(s.data).size() == 64);
        CHECK(b->type(s.data).var(0).offset == 16);
        CHECK_THROWS_AS(b->fix_datasec(s.int_, 4, {}), Error);
        CHECK_THROWS_AS(b->fix_datasec(s.data, 4, {1, 2}), Error);
    }
    SECTION("kind names") {
        CHECK(kind_name(Kind::FuncProto) == "FUNC_PROTO");
        CHECK(kind_name(Kind::Enum64) == "ENUM64");
        CHECK(kind_name(Kind::Void) == "UNKN");
        CHECK(kind_name(static_cast<Kind>(31)) == "UNKN");
    }
}

TEST_CASE("BTF: split BTF on a base", "[btf]") {
    Sample s = make_sample();
    auto base_r = Btf::parse(s.w.bytes(), "base");
    REQUIRE(base_r.ok());
    Btf base = std::move(base_r.value());

    Writer m(base.count(), base.strings_end());
    const uint32_t mod_s = m.next_id, mod_ptr = mod_s + 1;
    m.composite(Kind::Struct, "mod_s", 16, {{"owner", mod_ptr, 0}, {"x", s.int_, 64}, {"task", s.task_ptr, 128}});
    m.ref(Kind::Ptr, s.task);
    // A name from the base's strings: "task" is at the same offset in both.
    const uint32_t task_name = static_cast<uint32_t>(std::string_view(s.w.strings.data(), s.w.strings.size()).find(std::string_view("task\0", 5)));
    const uint32_t alias = m.head(task_name, Kind::Typedef, 0, mod_s);
    const uint32_t proto = m.proto(s.int_, {{"t", mod_ptr}});
    const uint32_t fn = m.add("mod_fn", Kind::Func, 1, proto);
    const uint32_t var = m.var("mod_var", s.int_, Linkage::Static);
    const uint32_t sec = m.datasec(".data..mod", 4, {{var, 0, 4}});
    const auto bytes = m.bytes();

    for (bool swap : {false, true}) {
        INFO("byte-swapped: " << swap);
        auto r = Btf::parse(swap ? byteswap_btf(bytes) : bytes, "mod", &base);
        REQUIRE(r.ok());
        const Btf& b = *r;
        CHECK(b.is_split());
        CHECK(b.start_id() == base.count());
        CHECK(b.count() == base.count() + 7);
        CHECK(b.type(s.task).name() == "task");   // base ids through the split Btf
        CHECK(b.type(mod_s).name() == "mod_s");
        CHECK(b.type(mod_s).member(2).type == s.task_ptr);
        CHECK(b.type(alias).name() == "task");
        CHECK(b.type_name(mod_s + 1) == "struct task *");
        CHECK(b.type_name(mod_ptr) == "struct task *");
        CHECK(b.type_name(fn) == "int mod_fn(struct task *)");
        CHECK(b.size_of(mod_s) == 16);
        CHECK(b.resolve(alias) == mod_s);
        CHECK(b.find("task", Kind::Struct) == s.task);   // the base's, first
        CHECK(b.find("task", Kind::Typedef) == alias);
        CHECK(b.find("mod_s", Kind::Struct) == mod_s);
        CHECK(b.find(".data..mod", Kind::Datasec) == sec);
        CHECK(b.str(task_name) == "task");
        CHECK(b.member_by_name(mod_s, "x")->bit_offset == 64);
        exercise(b);
    }

    // The base may move: the split keeps working.
    auto split = Btf::parse(bytes, "mod", &base);
    REQUIRE(split.ok());
    Btf base2 = std::move(base);
    CHECK(split->type_name(mod_s + 1) == "struct task *");
    CHECK(split->find("mod_var", Kind::Var) == var);

    // Split data is checked against the base: ids and strings past both are errors.
    Writer bad(base2.count(), base2.strings_end());
    bad.ref(Kind::Ptr, base2.count() + 5);
    CHECK_THAT(btf_error(bad.bytes(), &base2), Catch::Contains("refers to type") && Catch::Contains("but the last type id is"));
    Writer bad_name(base2.count(), base2.strings_end());
    bad_name.head(base2.strings_end() + 100, Kind::Typedef, 0, 1);
    CHECK_THAT(btf_error(bad_name.bytes(), &base2), Catch::Contains("name offset"));
    // A base string that is not an identifier cannot name a typedef in the split part.
    Writer bad_ident(base2.count(), base2.strings_end());
    bad_ident.head(static_cast<uint32_t>(std::string_view(s.w.strings.data(), s.w.strings.size()).find("unsigned int")), Kind::Typedef, 0, 1);
    CHECK_THAT(btf_error(bad_ident.bytes(), &base2), Catch::Contains("'unsigned int' is not a valid identifier"));
}

TEST_CASE("BTF: corrupt data is rejected with the offset, the type and the reason", "[btf]") {
    const auto good = make_sample().w.bytes();

    SECTION("header") {
        CHECK(btf_error({good.begin(), good.begin() + 10}) == "t.btf: header at byte 0x0: 10 bytes is shorter than the 24-byte BTF header");
        auto magic = good;
        magic[0] = 0x12;
        CHECK_THAT(btf_error(magic), Catch::Contains("bad magic"));
        auto version = good;
        version[2] = 2;
        CHECK_THAT(btf_error(version), Catch::Contains("version 2 is not 1"));
        auto flags = good;
        flags[3] = 1;
        CHECK_THAT(btf_error(flags), Catch::Contains("flags 0x1 are not 0"));
        auto hdr = good;
        hdr[4] = 200;
        hdr[5] = 200;
        CHECK_THAT(btf_error(hdr), Catch::Contains("header length 51400"));
        auto cut = good;
        cut.resize(good.size() - 10);
        CHECK_THAT(btf_error(cut), Catch::Contains("string section [") && Catch::Contains("runs past the end"));
        auto types_off = good;
        types_off[12] += 2;   // type_len not a multiple of 4
        CHECK_THAT(btf_error(types_off), Catch::Contains("not 4-byte aligned"));
        auto overlap = good;
        overlap[16] = 4;   // strings start inside the types
        overlap[17] = overlap[18] = overlap[19] = 0;
        CHECK_THAT(btf_error(overlap), Catch::Contains("overlap"));
        auto padded = make_sample().w.bytes(false, 28);
        padded[25] = 1;
        CHECK_THAT(btf_error(padded), Catch::Contains("header at byte 0x19"));
    }
    SECTION("strings") {
        auto unterminated = good;
        unterminated.back() = 'x';
        CHECK_THAT(btf_error(unterminated), Catch::Contains("not NUL-terminated"));
        Writer w;
        w.strings = "x";
        w.strings += '\0';
        CHECK_THAT(btf_error(w.bytes()), Catch::Contains("does not start with the empty string"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample&) { w.words[0] = 100000; }),
                   Catch::Contains("t.btf: type [1] INT at byte 0x18: name offset 100000 is outside the strings"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample& s) {
                       // task starts at word 18 (after int, char, unsigned int: 4 words each;
                       // the array: 6); its member 1 name is at 18 + 3 + 3.
                       REQUIRE(((w.words[18 + 1] >> 24) & 0x1f) == uint32_t(Kind::Struct));
                       (void)s;
                       w.words[18 + 3 + 3] = 0xffff;
                   }),
                   Catch::Contains("member 1 name offset 65535 is outside the strings"));
    }
    SECTION("records") {
        CHECK(btf_error_with([](Writer& w, Sample&) { w.words[1] = 25u << 24; }) == "t.btf: type [1] at byte 0x18: unknown kind 25");
        CHECK_THAT(btf_error_with([](Writer& w, Sample&) { w.words[1] = 0; }), Catch::Contains("type [1] at byte 0x18: unknown kind 0"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample&) { w.words[1] |= 1u << 20; }), Catch::Contains("reserved bits set in info"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample&) { w.add("s", Kind::Struct, 40, 4); }),
                   Catch::Contains("STRUCT 's'") && Catch::Contains("with 40 entries needs 492 bytes, 12 remain"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample&) { w.word(0); }), Catch::Contains("the record head needs 12 bytes, 4 remain"));
        CHECK_THAT(btf_error_with([](Writer& w, Sample& s) { w.ref(Kind::Ptr, s.count + 500); }),
                   Catch::Contains(fmt::format("type [{}] PTR", make_sample().count)) &&
                       Catch::Contains(fmt::format("refers to type {}, but the last type id is {}", make_sample().count + 500, make_sample().count)));
    }
    SECTION("kind rules") {
        auto with = [](auto edit) { return btf_error_with([&](Writer& w, Sample& s) { edit(w, s); }); };
        CHECK_THAT(with([](Writer& w, Sample&) { w.int_("i40", 4, 0, 40); }), Catch::Contains("INT of 4 bytes cannot hold 40 bits"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.int_("i3", 3, 0, 8); }), Catch::Contains("INT size 3"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.int_("i", 4, 3, 8); }), Catch::Contains("INT encoding 0x3 is invalid"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.ref(Kind::Ptr, 1, "named"); }), Catch::Contains("must not have a name, has 'named'"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.ref(Kind::Typedef, 1, "1abc"); }), Catch::Contains("TYPEDEF name '1abc' is not a valid identifier"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.ref(Kind::Typedef, 1, ""); }), Catch::Contains("TYPEDEF must have a name"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("", Kind::Fwd, 0, 0); }), Catch::Contains("FWD must have a name"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("p", Kind::Ptr, 2, 1); }), Catch::Contains("vlen must be 0, is 2"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("", Kind::Ptr, 0, 1, true); }), Catch::Contains("kflag must be 0"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.composite(Kind::Struct, "s", 8, {{"a b", 1, 0}}); }),
                   Catch::Contains("member 0 name 'a b' is not a valid identifier"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.composite(Kind::Struct, "s", 8, {{"a", 0, 0}}); }), Catch::Contains("member 0 is of type void"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.composite(Kind::Struct, "s", 8, {{"a", 1, 32}, {"b", 1, 0}}); }),
                   Catch::Contains("member 1 at bit offset 0 comes before"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.composite(Kind::Struct, "s", 4, {{"a", 1, 40}}); }),
                   Catch::Contains("member 0 at bit offset 40 lies past the end of the 4 bytes"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.composite(Kind::Union, "u", 8, {{"a", 1, 0}, {"b", 1, 32}}); }),
                   Catch::Contains("member 1 of a union is at bit offset 32, not 0"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.enum_("e3", 3, false, {}); }), Catch::Contains("ENUM size 3"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.enum_("e", 4, false, {{"", 1}}); }), Catch::Contains("enumerator 0 name '' is not a valid identifier"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.array(0, 1, 4); }), Catch::Contains("ARRAY of void"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.add("h", Kind::Func, 0, s.int_); }),
                   Catch::Contains(fmt::format("FUNC refers to type {}, which is not a FUNC_PROTO", make_sample().int_)));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("h", Kind::Func, 0, w.next_id + 1); w.int_("later", 4, 0, 32); }),
                   Catch::Contains("which is not a FUNC_PROTO"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.add("h", Kind::Func, 3, s.proto); }), Catch::Contains("FUNC linkage 3 is invalid"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.var("x", 1, static_cast<Linkage>(7)); }), Catch::Contains("VAR linkage 7 is invalid"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.proto(1, {{"", 0}, {"b", 1}}); }), Catch::Contains("parameter 0 is void"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.datasec(".bss", 0, {{s.int_, 0, 4}}); }),
                   Catch::Contains(fmt::format("DATASEC entry 0 refers to type {}, a INT, not a VAR", make_sample().int_)));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.datasec(".bss", 4, {{s.v, 2, 4}}); }), Catch::Contains("runs past the section's 4 bytes"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.datasec("", 4, {{s.v, 0, 4}}); }), Catch::Contains("not a valid section name"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.decl_tag("t", s.task, 9); }), Catch::Contains("DECL_TAG names member 9"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.decl_tag("t", s.f, 3); }), Catch::Contains("DECL_TAG names parameter 3"));
        CHECK_THAT(with([](Writer& w, Sample& s) { w.decl_tag("t", s.int_, -1); }), Catch::Contains("cannot carry one"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("f", Kind::Float, 0, 5); }), Catch::Contains("FLOAT size 5"));
        CHECK_THAT(with([](Writer& w, Sample&) { w.add("", Kind::TypeTag, 0, 1); }), Catch::Contains("TYPE_TAG must have a name"));
    }
}

TEST_CASE("BTF: cycles and blow-ups are bounded", "[btf]") {
    SECTION("a typedef cycle is an error in resolve(), not at parse time") {
        Writer w;
        w.ref(Kind::Typedef, 2, "a");
        w.ref(Kind::Const, 1);
        auto b = Btf::parse(w.bytes(), "cyc");
        REQUIRE(b.ok());
        CHECK_THROWS_WITH(b->resolve(1), Catch::Contains("cycle ([1] -> [2] -> ...)"));
        try {
            (void)b->resolve(2);
            FAIL("no error");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidBtf);
        }
        CHECK_THROWS_AS(b->size_of(1), Error);
        CHECK(b->type_name(2) == "const a");   // spelling stops at the typedef's name
        exercise(*b);
    }
    SECTION("a long chain that is not a cycle") {
        Writer w;
        w.int_("int", 4, kIntSigned, 32);
        for (int i = 0; i < 40; ++i) w.ref(Kind::Const, w.next_id - 1);
        auto b = Btf::parse(w.bytes(), "chain");
        REQUIRE(b.ok());
        CHECK(b->resolve(20) == 1);
        CHECK_THROWS_WITH(b->resolve(41), Catch::Contains("more than 32"));
    }
    SECTION("pointer cycles and array sizes") {
        Writer w;
        w.ref(Kind::Ptr, 2);
        w.ref(Kind::Ptr, 1);
        const uint32_t i = w.int_("int", 4, kIntSigned, 32);
        const uint32_t a1 = w.array(i, i, 0xffffffff);
        const uint32_t a2 = w.array(a1, i, 0xffffffff);
        const uint32_t a3 = w.array(a2, i, 0xffffffff);
        auto b = Btf::parse(w.bytes(), "ptrs");
        REQUIRE(b.ok());
        CHECK(b->size_of(1) == 8);
        CHECK_THAT(b->type_name(1), Catch::Contains("..."));
        CHECK(b->size_of(a1) == 4ull * 0xffffffff);
        CHECK_THROWS_WITH(b->size_of(a3), Catch::Contains("overflows"));
    }
    SECTION("anonymous members that fan out") {
        Writer w;
        const uint32_t i = w.int_("int", 4, kIntSigned, 32);
        uint32_t inner = w.composite(Kind::Struct, "leaf", 4, {{"x", i, 0}});
        for (int level = 0; level < 6; ++level) {
            std::vector<M> members(100, M{"", inner, 0});
            inner = w.composite(Kind::Union, "", 4, members);
        }
        auto b = Btf::parse(w.bytes(), "fan");
        REQUIRE(b.ok());
        CHECK(b->member_by_name(inner, "x"));   // found on the first path
        CHECK_THROWS_WITH(b->member_by_name(inner, "y"), Catch::Contains("too many anonymous members"));
    }
    SECTION("a prototype whose parameters are pointers to itself") {
        Writer w;
        std::vector<std::pair<std::string, uint32_t>> params(1000, {"", 2});
        w.proto(2, params);
        w.ref(Kind::Ptr, 1);
        auto b = Btf::parse(w.bytes(), "proto");
        REQUIRE(b.ok());
        const std::string n = b->type_name(1);
        CHECK(n.size() < 100000);
        CHECK_THAT(n, Catch::Contains("..."));
    }
}

TEST_CASE("BTF: random corruption never crashes the parser", "[btf]") {
    const auto good = make_sample().w.bytes();
    const auto swapped = byteswap_btf(good);
    std::mt19937 rng(20240601);
    int parsed = 0, rejected = 0;
    for (int i = 0; i < 4000; ++i) {
        auto b = i % 2 ? swapped : good;
        if (i % 3 == 0) b.resize(rng() % b.size());
        const int flips = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < flips && !b.empty(); ++k) {
            const std::size_t at = rng() % b.size();
            if (rng() % 4 == 0) b[at] = static_cast<uint8_t>(rng());
            else b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        }
        auto r = Btf::parse(b, "fuzz");
        if (!r) {
            REQUIRE(r.error().code() == ErrorCode::InvalidBtf);
            ++rejected;
            continue;
        }
        ++parsed;
        exercise(*r);
        REQUIRE(Btf::parse(r->to_bytes(), "again").ok());
    }
    INFO(parsed << " parsed, " << rejected << " rejected");
    CHECK(parsed > 50);
    CHECK(rejected > 1000);
}

TEST_CASE(".BTF.ext: func_info, line_info, CO-RE relocations", "[btf]") {
    Sample s = make_sample();
    ExtWriter x = sample_ext(s);
    auto b = Btf::parse(s.w.bytes(), "sample");
    REQUIRE(b.ok());

    auto check_ext = [&](const Ext& e) {
        REQUIRE(e.sections.size() == 2);
        const ExtSection* xdp = e.find("xdp");
        REQUIRE(xdp);
        REQUIRE(xdp->funcs.size() == 2);
        CHECK(xdp->funcs[0].insn == 0);
        CHECK(xdp->funcs[0].type_id == s.f);
        CHECK(xdp->funcs[1].insn == 5);
        REQUIRE(xdp->lines.size() == 2);
        CHECK(xdp->lines[0].insn == 0);
        CHECK(xdp->lines[0].file == "prog.c");
        CHECK(xdp->lines[0].text == "    return x;");
        CHECK(xdp->lines[0].line == 12);
        CHECK(xdp->lines[0].column == 5);
        CHECK(xdp->lines[1].insn == 2);
        CHECK(xdp->lines[1].text.empty());
        CHECK(xdp->lines[1].line == 13);
        REQUIRE(xdp->relos.size() == 2);
        CHECK(xdp->relos[0].insn == 3);
        CHECK(xdp->relos[0].type_id == s.task);
        CHECK(xdp->relos[0].access == "0:1");
        CHECK(xdp->relos[0].kind == CoreReloKind::FieldByteOffset);
        CHECK(xdp->relos[1].kind == CoreReloKind::TypeMatches);
        CHECK(e.core_relo_order == std::vector<std::string>{"xdp"});
        const ExtSection* g = e.find("g");
        REQUIRE(g);
        CHECK(g->funcs.empty());
        REQUIRE(g->lines.size() == 1);
        CHECK(g->lines[0].line == 40);
        CHECK_FALSE(e.find("nope"));
    };
    SECTION("both byte orders") {
        auto e = parse_ext(x.bytes(), *b, "t.o");
        REQUIRE(e.ok());
        check_ext(*e);
        auto be = parse_ext(byteswap_ext(x.bytes()), *b, "t.o");
        REQUIRE(be.ok());
        check_ext(*be);
    }
    SECTION("records larger than the known layout") {
        x.func_rec = 12;
        x.line_rec = 24;
        x.relo_rec = 20;
        auto e = parse_ext(x.bytes(), *b, "t.o");
        REQUIRE(e.ok());
        check_ext(*e);
    }
    SECTION("an older header without CO-RE relocations") {
        x.hdr_len = 24;
        x.relos.clear();
        auto e = parse_ext(x.bytes(), *b, "t.o");
        REQUIRE(e.ok());
        CHECK(e->find("xdp")->relos.empty());
        CHECK(e->find("xdp")->lines.size() == 2);
    }
    SECTION("relocation kind names") {
        CHECK(to_string(CoreReloKind::FieldByteOffset) == "field_byte_offset");
        CHECK(to_string(CoreReloKind::TypeMatches) == "type_matches");
        CHECK(uint32_t(CoreReloKind::EnumvalValue) == 11);
    }
    SECTION("corrupt .BTF.ext") {
        const auto good = x.bytes();
        CHECK(ext_error({good.begin(), good.begin() + 4}, *b) == "t.o: section '.BTF.ext': at byte 0x0: 4 bytes is shorter than the .BTF.ext header");
        auto magic = good;
        magic[1] = 0;
        CHECK_THAT(ext_error(magic, *b), Catch::Contains("bad magic"));
        auto version = good;
        version[2] = 9;
        CHECK_THAT(ext_error(version, *b), Catch::Contains("version 9 is not 1"));
        auto hdr = good;
        hdr[4] = 20;
        CHECK_THAT(ext_error(hdr, *b), Catch::Contains("header length 20"));
        auto cut = good;
        cut.resize(good.size() - 8);
        CHECK_THAT(ext_error(cut, *b), Catch::Contains("core_relo block [") && Catch::Contains("runs past the end"));

        auto edit = [&](auto f) {
            Sample s2 = make_sample();
            ExtWriter x2 = sample_ext(s2);
            f(x2, s2);
            auto b2 = Btf::parse(s2.w.bytes(), "sample");
            REQUIRE(b2.ok());
            return ext_error(x2.bytes(), *b2);
        };
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.funcs[0].records[1][0] = 41; }),
                   Catch::Contains("func_info for section 'xdp', record 1: instruction offset 41 is not a multiple of 8"));
        CHECK_THAT(edit([](ExtWriter& e, Sample& s) { e.funcs[0].records[0][1] = s.int_; }), Catch::Contains("is not a FUNC"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.funcs[0].records[0][1] = 9999; }), Catch::Contains("type 9999 is not a FUNC"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.lines[0].records[0][1] = 1u << 30; }),
                   Catch::Contains("line_info for section 'xdp', record 0: file name offset 1073741824 is outside the BTF strings"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.lines[0].name_off = 1u << 30; }), Catch::Contains("line_info section name offset"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.line_rec = 12; }), Catch::Contains("line_info record size 12 is invalid"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.relo_rec = 18; }), Catch::Contains("core_relo record size 18 is invalid"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.relos[0].records[1][3] = 13; }), Catch::Contains("relocation kind 13 is unknown"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.relos[0].records[0][1] = 5000; }), Catch::Contains("type 5000 does not exist"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.relos[0].records[0][2] = 0; }), Catch::Contains("the access string is empty"));
        CHECK_THAT(edit([](ExtWriter& e, Sample&) { e.funcs[0].records.clear(); }), Catch::Contains("func_info for section 'xdp' has no records"));

        // A record count that runs past the block.
        auto count = good;
        const uint32_t f_first_count_at = 32 + 8;
        count[f_first_count_at] = 200;
        CHECK_THAT(ext_error(count, *b), Catch::Contains("claims 200 records of 8 bytes"));
    }
    SECTION("random corruption") {
        const auto good = x.bytes();
        std::mt19937 rng(99);
        int ok = 0;
        for (int i = 0; i < 3000; ++i) {
            auto e = i % 2 ? byteswap_ext(good) : good;
            if (i % 4 == 0) e.resize(rng() % e.size());
            for (int k = 0; k < 3 && !e.empty(); ++k) e[rng() % e.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            auto r = parse_ext(e, *b, "fuzz");
            if (r) ++ok;
            else REQUIRE(r.error().code() == ErrorCode::InvalidBtf);
        }
        CHECK(ok > 0);
    }
}

TEST_CASE("BTF: this machine's vmlinux, and module BTF split on it", "[btf][vmlinux]") {
    const fs::path vmlinux = "/sys/kernel/btf/vmlinux";
    std::error_code ec;
    std::ifstream probe(vmlinux, std::ios::binary);
    if (!probe) {
        WARN("no readable " << vmlinux << "; skipped");
        return;
    }
    auto loaded = Btf::load_file(vmlinux);
    REQUIRE(loaded.ok());
    const Btf& b = *loaded;
    CHECK(b.count() > 10000);

    auto task = b.find("task_struct", Kind::Struct);
    REQUIRE(task);
    CHECK(b.type_name(*task) == "struct task_struct");
    auto pid = b.member_by_name(*task, "pid");
    REQUIRE(pid);
    CHECK(b.type_name(pid->type) == "pid_t");
    CHECK(b.size_of(pid->type) == 4);
    CHECK(pid->bit_offset % 8 == 0);
    auto comm = b.member_by_name(*task, "comm");
    REQUIRE(comm);
    CHECK(b.type_name(comm->type) == "char [16]");
    CHECK(b.size_of(comm->type) == 16);
    auto int_id = b.find("int", Kind::Int);
    REQUIRE(int_id);
    CHECK(b.size_of(*int_id) == 4);
    CHECK(b.type(*int_id).int_encoding() == kIntSigned);
    auto list_head = b.find("list_head", Kind::Struct);
    REQUIRE(list_head);
    CHECK(b.size_of(*list_head) == 16);
    CHECK(b.type_name(b.member_by_name(*list_head, "next")->type) == "struct list_head *");
    exercise(b);

    // Parse time, for information: performance goals live in bench/.
    const auto bytes = read_file(vmlinux);
    double best = 1e9;
    for (int i = 0; i < 20; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        auto again = Btf::parse(bytes, "vmlinux");
        best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        REQUIRE(again.ok());
    }
    const auto t0 = std::chrono::steady_clock::now();
    (void)Btf::parse(bytes, "vmlinux")->find("task_struct", Kind::Struct);
    const double with_index = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    WARN("vmlinux BTF: " << bytes.size() << " bytes, " << b.count() << " types, parsed in " << best
                         << " ms (best of 20); parse + first find() " << with_index << " ms");

    // Module BTF: split on vmlinux.
    int modules = 0;
    for (const auto& e : fs::directory_iterator("/sys/kernel/btf", ec)) {
        if (e.path().filename() == "vmlinux") continue;
        INFO(e.path());
        auto m = Btf::load_file(e.path(), &b);
        if (!m) FAIL(m.error().describe());
        CHECK(m->is_split());
        CHECK(m->start_id() == b.count());
        exercise(*m);
        ++modules;
    }
    if (modules == 0) WARN("no module BTF in /sys/kernel/btf; split BTF is covered by the hand-made test only");
    else WARN(modules << " module BTF files parsed as split BTF");
}

TEST_CASE(".BTF and .BTF.ext of real objects", "[btf][objects]") {
    const fs::path bench = fs::path(BPFSIM_CORPUS_DIR) / "bench_kernels.o";
    if (fs::exists(bench)) {
        auto elf = harness::ElfFile::open(bench);
        REQUIRE(elf.ok());
        const auto* btf_sec = elf->section(".BTF");
        const auto* ext_sec = elf->section(".BTF.ext");
        REQUIRE(btf_sec);
        REQUIRE(ext_sec);
        auto b = Btf::parse(btf_sec->data, "bench_kernels.o:.BTF");
        REQUIRE(b.ok());
        exercise(*b);
        auto ext = parse_ext(ext_sec->data, *b, "bench_kernels.o");
        if (!ext) FAIL(ext.error().describe());
        const ExtSection* xs = ext->find("bench/xorshift");
        REQUIRE(xs);
        REQUIRE_FALSE(xs->funcs.empty());
        CHECK(xs->funcs[0].insn == 0);
        CHECK(b->type(xs->funcs[0].type_id).name() == "xorshift");
        REQUIRE_FALSE(xs->lines.empty());
        for (const auto& l : xs->lines) {
            CHECK_THAT(l.file, Catch::EndsWith("kernels.c"));
            CHECK(l.line > 0);
        }
        CHECK(std::is_sorted(xs->lines.begin(), xs->lines.end(), [](const LineRec& a, const LineRec& c) { return a.insn < c.insn; }));
    } else {
        WARN("no " << bench << "; skipped");
    }

    const fs::path dir = fs::path(BPFSIM_SHARED_DIR) / "corpus" / "ebpf-samples";
    if (!fs::is_directory(dir)) {
        WARN("no " << dir << "; skipped");
        return;
    }
    int btf_ok = 0, ext_ok = 0, invalid_rejected = 0, invalid_seen = 0;
    std::string rejections;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
        auto elf = harness::ElfFile::open(path);
        if (!elf) continue;   // not an ELF object, or one libelf refuses
        const auto* s = elf->section(".BTF");
        if (!s) continue;
        const bool invalid = path.string().find("/invalid/") != std::string::npos;
        INFO(path);
        auto b = Btf::parse(s->data, path.string());
        if (invalid) ++invalid_seen;
        if (!b) {
            INFO(b.error().describe());
            REQUIRE(b.error().code() == ErrorCode::InvalidBtf);
            REQUIRE(invalid);
            ++invalid_rejected;
            rejections += "\n  " + b.error().describe();
            continue;
        }
        ++btf_ok;
        exercise(*b);
        const auto* x = elf->section(".BTF.ext");
        if (!x) continue;
        auto ext = parse_ext(x->data, *b, path.string());
        if (!ext) {
            INFO(ext.error().describe());
            REQUIRE(ext.error().code() == ErrorCode::InvalidBtf);
            REQUIRE(invalid);
            ++invalid_rejected;
            rejections += "\n  " + ext.error().describe();
            continue;
        }
        ++ext_ok;
        for (const auto& sec : ext->sections) {
            for (const auto& f : sec.funcs) CHECK(b->type(f.type_id).kind() == Kind::Func);
            for (const auto& r : sec.relos) CHECK_FALSE(b->type_name(r.type_id).empty());
        }
    }
    WARN("ebpf-samples: " << btf_ok << " objects' .BTF parsed, " << ext_ok << " .BTF.ext parsed; " << invalid_seen
                          << " under invalid/ have .BTF, " << invalid_rejected << " rejected:" << rejections);
    CHECK(btf_ok >= 80);
    CHECK(ext_ok >= 80);
}
