// btf dump: hand-made BTF written as C, raw records and JSON. Every expected text here is
// what bpftool 7.1 (Debian 12) prints for the same bytes: set BPFSIM_BTF_CASES=DIR to save
// each case's BTF there and check with `bpftool btf dump file DIR/NAME.btf format c`.
#include "btf/dump.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

using namespace bpfsim;
using namespace bpfsim::btf;

namespace {

// Writes raw BTF in host order.
struct Blob {
    std::vector<uint32_t> words;
    std::string strings{'\0'};
    std::map<std::string, uint32_t> seen;
    uint32_t next_id = 1;
    uint32_t str_base = 0;   // split BTF: the base's string size

    Blob() = default;
    Blob(uint32_t first_id, uint32_t base_strings) : strings(), next_id(first_id), str_base(base_strings) {}

    uint32_t str(const std::string& s) {
        if (s.empty()) return 0;
        if (auto it = seen.find(s); it != seen.end()) return it->second;
        const uint32_t off = str_base + static_cast<uint32_t>(strings.size());
        strings += s;
        strings += '\0';
        return seen[s] = off;
    }
    uint32_t add(const std::string& name, Kind kind, uint32_t vlen, uint32_t size_or_type, bool kflag = false,
                 std::initializer_list<uint32_t> trailer = {}) {
        words.push_back(str(name));
        words.push_back((uint32_t(kflag) << 31) | (uint32_t(kind) << 24) | vlen);
        words.push_back(size_or_type);
        words.insert(words.end(), trailer);
        return next_id++;
    }
    uint32_t integer(const std::string& name, uint32_t size, uint32_t encoding = 0) {
        return add(name, Kind::Int, 0, size, false, {(encoding << 24) | (size * 8)});
    }
    uint32_t ref(Kind kind, uint32_t type, const std::string& name = "", bool kflag = false) { return add(name, kind, 0, type, kflag); }
    uint32_t array(uint32_t type, uint32_t n, uint32_t index_type = 1) { return add("", Kind::Array, 0, 0, false, {type, index_type, n}); }
    struct M {
        std::string name;
        uint32_t type;
        uint32_t bit_offset;
        uint32_t bits = 0;
    };
    uint32_t composite(Kind kind, const std::string& name, uint32_t size, const std::vector<M>& members, bool kflag = false) {
        const uint32_t id = add(name, kind, static_cast<uint32_t>(members.size()), size, kflag);
        for (const auto& m : members) {
            words.push_back(str(m.name));
            words.push_back(m.type);
            words.push_back(kflag ? (m.bits << 24) | m.bit_offset : m.bit_offset);
        }
        return id;
    }
    uint32_t enumeration(const std::string& name, uint32_t size, const std::vector<std::pair<std::string, int64_t>>& values,
                         bool is_signed = false, bool is64 = false) {
        const uint32_t id = add(name, is64 ? Kind::Enum64 : Kind::Enum, static_cast<uint32_t>(values.size()), size, is_signed);
        for (const auto& [n, v] : values) {
            words.push_back(str(n));
            words.push_back(static_cast<uint32_t>(v));
            if (is64) words.push_back(static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32));
        }
        return id;
    }
    uint32_t proto(uint32_t ret, const std::vector<std::pair<std::string, uint32_t>>& params) {
        const uint32_t id = add("", Kind::FuncProto, static_cast<uint32_t>(params.size()), ret);
        for (const auto& [n, t] : params) {
            words.push_back(str(n));
            words.push_back(t);
        }
        return id;
    }
    std::vector<uint8_t> bytes() const {
        const uint32_t type_len = static_cast<uint32_t>(words.size() * 4);
        const uint32_t hdr[6] = {0x0001eb9f, 24, 0, type_len, type_len, static_cast<uint32_t>(strings.size())};
        std::vector<uint8_t> out(sizeof hdr + type_len + strings.size());
        std::memcpy(out.data(), hdr, sizeof hdr);
        std::memcpy(out.data() + sizeof hdr, words.data(), type_len);
        std::memcpy(out.data() + sizeof hdr + type_len, strings.data(), strings.size());
        return out;
    }
    Btf parse(const std::string& name, const Btf* base = nullptr) const {
        const auto b = bytes();
        if (const char* dir = std::getenv("BPFSIM_BTF_CASES")) {
            std::filesystem::create_directories(dir);
            std::ofstream(std::filesystem::path(dir) / (name + ".btf"), std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
        }
        auto r = Btf::parse(b, name, base);
        if (!r) FAIL(r.error().describe());
        return std::move(*r);
    }
};

const std::string kHeader =
    "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n";
const std::string kFooter =
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n";

// The C dump without bpftool's fixed header and footer (checked here).
std::string c_body(const Btf& btf) {
    const std::string out = dump_c(btf);
    REQUIRE(out.size() >= kHeader.size() + kFooter.size());
    REQUIRE(out.substr(0, kHeader.size()) == kHeader);
    REQUIRE(out.substr(out.size() - kFooter.size()) == kFooter);
    return out.substr(kHeader.size(), out.size() - kHeader.size() - kFooter.size());
}

}  // namespace

TEST_CASE("btf dump c: bitfields and explicit padding", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    const uint32_t u = b.integer("unsigned int", 4);
    const uint32_t l = b.integer("long int", 8, kIntSigned);
    const uint32_t c = b.integer("char", 1, kIntSigned);
    b.composite(Kind::Struct, "bits", 24,
                {{"a", i, 0, 3}, {"b", u, 3, 5}, {"c", l, 8, 40}, {"d", c, 48}, {"e", i, 64, 7}, {"f", u, 96, 1}}, true);
    b.composite(Kind::Struct, "gaps", 32, {{"a", c, 0}, {"b", i, 64}, {"c", c, 192}});
    b.composite(Kind::Struct, "bitgap", 16, {{"x", u, 0, 4}, {"y", u, 64, 2}}, true);
    const auto btf = b.parse("bitfields");
    CHECK(c_body(btf) ==
          "struct bits {\n"
          "\tint a: 3;\n"
          "\tunsigned int b: 5;\n"
          "\tlong int c: 40;\n"
          "\tchar d;\n"
          "\tint e: 7;\n"
          "\tint: 25;\n"
          "\tunsigned int f: 1;\n"
          "\tlong: 64;\n"
          "};\n\n"
          "struct gaps {\n"
          "\tchar a;\n"
          "\tlong: 0;\n"
          "\tint b;\n"
          "\tlong: 64;\n"
          "\tchar c;\n"
          "\tlong: 0;\n"
          "};\n\n"
          "struct bitgap {\n"
          "\tunsigned int x: 4;\n"
          "\tlong: 60;\n"
          "\tunsigned int y: 2;\n"
          "\tlong: 0;\n"
          "};\n\n");
}

TEST_CASE("btf dump c: packed structs", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    const uint32_t l = b.integer("long int", 8, kIntSigned);
    const uint32_t c = b.integer("char", 1, kIntSigned);
    b.composite(Kind::Struct, "p1", 7, {{"a", c, 0}, {"b", i, 8}, {"c", c, 40}, {"d", c, 48}});
    b.composite(Kind::Struct, "p2", 9, {{"a", l, 0}, {"b", c, 64}});
    b.composite(Kind::Struct, "natural", 16, {{"a", l, 0}, {"b", c, 64}});
    const uint32_t inner = b.composite(Kind::Struct, "", 5, {{"x", c, 0}, {"y", i, 8}});
    b.composite(Kind::Struct, "outer", 16, {{"a", c, 0}, {"p", inner, 8}, {"z", l, 64}});
    const auto btf = b.parse("packed");
    CHECK(c_body(btf) ==
          "struct p1 {\n\tchar a;\n\tint b;\n\tchar c;\n\tchar d;\n} __attribute__((packed));\n\n"
          "struct p2 {\n\tlong int a;\n\tchar b;\n} __attribute__((packed));\n\n"
          "struct natural {\n\tlong int a;\n\tchar b;\n};\n\n"
          "struct outer {\n"
          "\tchar a;\n"
          "\tstruct {\n\t\tchar x;\n\t\tint y;\n\t} __attribute__((packed)) p;\n"
          "\tlong int z;\n"
          "};\n\n");
}

TEST_CASE("btf dump c: anonymous members, enums and typedefs inline", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    const uint32_t c = b.integer("char", 1, kIntSigned);
    const uint32_t un = b.composite(Kind::Union, "", 4, {{"i", i, 0}, {"c", c, 0}});
    const uint32_t e = b.enumeration("", 4, {{"RED", 0}, {"GREEN", 1}});
    const uint32_t st = b.composite(Kind::Struct, "", 8, {{"", un, 0}, {"color", e, 32}});
    const uint32_t td = b.ref(Kind::Typedef, st, "pair_t");
    b.composite(Kind::Struct, "user", 12, {{"p", td, 0}, {"", un, 64}});
    b.enumeration("", 4, {{"TOP_LEVEL", 7}});
    const auto btf = b.parse("anonymous");
    CHECK(c_body(btf) ==
          "typedef struct {\n"
          "\tunion {\n\t\tint i;\n\t\tchar c;\n\t};\n"
          "\tenum {\n\t\tRED = 0,\n\t\tGREEN = 1,\n\t} color;\n"
          "} pair_t;\n\n"
          "struct user {\n"
          "\tpair_t p;\n"
          "\tunion {\n\t\tint i;\n\t\tchar c;\n\t};\n"
          "};\n\n"
          "enum {\n\tTOP_LEVEL = 7,\n};\n\n");
}

TEST_CASE("btf dump c: function prototypes and pointers to functions", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    const uint32_t c = b.integer("char", 1, kIntSigned);
    const uint32_t cc = b.ref(Kind::Const, c);
    const uint32_t pcc = b.ref(Kind::Ptr, cc);
    const uint32_t vararg = b.proto(i, {{"fmt", pcc}, {"", 0}});
    b.ref(Kind::Typedef, b.ref(Kind::Ptr, vararg), "printf_t");
    const uint32_t inner = b.proto(0, {{"", pcc}});
    const uint32_t outer = b.proto(b.ref(Kind::Ptr, inner), {{"", i}});
    b.ref(Kind::Typedef, b.ref(Kind::Ptr, outer), "factory_t");
    const uint32_t noargs = b.proto(i, {});
    const uint32_t arr = b.array(b.ref(Kind::Ptr, noargs), 4);
    b.composite(Kind::Struct, "ops", 48, {{"cbs", arr, 0}, {"done", b.ref(Kind::Ptr, b.proto(0, {{"", 0}})), 256},
                                         {"pp", b.ref(Kind::Ptr, b.ref(Kind::Ptr, c)), 320}});
    const auto btf = b.parse("funcs");
    CHECK(c_body(btf) ==
          "typedef int (*printf_t)(const char *fmt, ...);\n\n"
          "typedef void (* (*factory_t)(int))(const char *);\n\n"
          "struct ops {\n"
          "\tint (*cbs[4])(void);\n"
          "\tvoid (*done)(void);\n"
          "\tchar **pp;\n"
          "};\n\n");
}

TEST_CASE("btf dump c: forward declarations and ordering", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    // struct A { struct B *b; int x; }; struct B { struct A a; }; struct list { struct list *next; };
    const uint32_t a = b.composite(Kind::Struct, "A", 16, {{"b", 4, 0}, {"x", i, 64}});   // 2; 4 is the PTR below
    const uint32_t sb = b.composite(Kind::Struct, "B", 16, {{"a", a, 0}});                // 3
    b.ref(Kind::Ptr, sb);                                                                  // 4
    const uint32_t list = b.composite(Kind::Struct, "list", 8, {{"next", 6, 0}});         // 5
    b.ref(Kind::Ptr, list);                                                                // 6
    const uint32_t fwd = b.add("opaque", Kind::Fwd, 0, 0);
    b.composite(Kind::Struct, "holder", 8, {{"o", b.ref(Kind::Ptr, fwd), 0}});
    const auto btf = b.parse("forward");
    CHECK(c_body(btf) ==
          "struct B;\n\n"
          "struct A {\n\tstruct B *b;\n\tint x;\n};\n\n"
          "struct B {\n\tstruct A a;\n};\n\n"
          "struct list {\n\tstruct list *next;\n};\n\n"
          "struct opaque;\n\n"
          "struct holder {\n\tstruct opaque *o;\n};\n\n");
}

TEST_CASE("btf dump c: modifiers, arrays, names clashes, enum64, type tags", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    const uint32_t c = b.integer("char", 1, kIntSigned);
    const uint32_t cvi = b.ref(Kind::Const, b.ref(Kind::Volatile, i));
    const uint32_t rp = b.ref(Kind::Restrict, b.ref(Kind::Ptr, c));
    const uint32_t cp = b.ref(Kind::Const, b.ref(Kind::Ptr, b.ref(Kind::Const, c)));
    const uint32_t multi = b.array(b.array(i, 3), 2);
    const uint32_t ptr_arr = b.array(b.ref(Kind::Ptr, c), 5);
    const uint32_t arr_ptr = b.ref(Kind::Ptr, b.array(i, 6));
    const uint32_t tag = b.ref(Kind::Ptr, b.add("user", Kind::TypeTag, 0, i));
    b.composite(Kind::Struct, "mods", 120, {{"cv", cvi, 0}, {"r", rp, 64}, {"cp", cp, 128}, {"m", multi, 192},
                                           {"pa", ptr_arr, 384}, {"ap", arr_ptr, 704}, {"t", tag, 768}, {"fam", b.array(c, 0), 832}});
    b.composite(Kind::Struct, "dup", 4, {{"x", i, 0}});
    b.composite(Kind::Struct, "dup", 4, {{"y", i, 0}});
    b.enumeration("e", 4, {{"dup", -1}, {"MIN", INT32_MIN}}, true);
    b.ref(Kind::Typedef, i, "dup");
    b.enumeration("big", 8, {{"NEG", -2}, {"HUGE", INT64_MIN}}, true, true);
    b.enumeration("ubig", 8, {{"ALL", -1}, {"BIT40", int64_t(1) << 40}}, false, true);
    const auto btf = b.parse("misc");
    CHECK(c_body(btf) ==
          "struct mods {\n"
          "\tvolatile const int cv;\n"
          "\tchar * restrict r;\n"
          "\tconst char * const cp;\n"
          "\tint m[2][3];\n"
          "\tchar *pa[5];\n"
          "\tint (*ap)[6];\n"
          "\tint __attribute__((btf_type_tag(\"user\"))) *t;\n"
          "\tchar fam[0];\n"
          "\tlong: 64;\n"
          "\tlong: 64;\n"
          "};\n\n"
          "struct dup {\n\tint x;\n};\n\n"
          "struct dup___2 {\n\tint y;\n};\n\n"
          "enum e {\n\tdup = -1,\n\tMIN = -2147483648,\n};\n\n"
          "typedef int dup___2;\n\n"
          "enum big {\n\tNEG = -2LL,\n\tHUGE = -9223372036854775808LL,\n};\n\n"
          "enum ubig {\n\tALL = 18446744073709551615ULL,\n\tBIT40 = 1099511627776ULL,\n};\n\n");
}

TEST_CASE("btf dump c: a cycle of embedded structs is an error", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    b.composite(Kind::Struct, "ok", 4, {{"x", i, 0}});
    b.composite(Kind::Struct, "A", 4, {{"b", 4, 0}});   // 3
    b.composite(Kind::Struct, "B", 4, {{"a", 3, 0}});   // 4
    const auto btf = b.parse("cycle");
    std::string out;
    try {
        dump_c(btf, out);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidBtf);
        CHECK(e.describe() == "cycle: unsatisfiable type cycle, id:[3]");
    }
    CHECK(out == kHeader + "struct ok {\n\tint x;\n};\n\n");   // what came before, as bpftool prints
}

TEST_CASE("btf dump raw and json", "[btf][dump]") {
    Blob b;
    const uint32_t i = b.integer("int", 4, kIntSigned);
    b.composite(Kind::Struct, "s", 8, {{"a", i, 0, 3}, {"", i, 32}}, true);
    b.enumeration("e", 4, {{"X", -1}}, false);
    b.add("f", Kind::Fwd, 0, 0, true);
    const uint32_t pr = b.proto(i, {{"a", i}, {"", 0}});
    b.add("fn", Kind::Func, 1, pr);
    const uint32_t v = b.add("v", Kind::Var, 0, i, false, {1});
    b.add(".data", Kind::Datasec, 1, 4, false, {v, 0, 4});
    b.add("tag", Kind::DeclTag, 0, v, false, {0xffffffff});
    b.add("double", Kind::Float, 0, 8);
    const auto btf = b.parse("raw");
    CHECK(dump_raw(btf) ==
          "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n"
          "[2] STRUCT 's' size=8 vlen=2\n"
          "\t'a' type_id=1 bits_offset=0 bitfield_size=3\n"
          "\t'(anon)' type_id=1 bits_offset=32\n"
          "[3] ENUM 'e' encoding=UNSIGNED size=4 vlen=1\n"
          "\t'X' val=4294967295\n"
          "[4] FWD 'f' fwd_kind=union\n"
          "[5] FUNC_PROTO '(anon)' ret_type_id=1 vlen=2\n"
          "\t'a' type_id=1\n"
          "\t'(anon)' type_id=0\n"
          "[6] FUNC 'fn' type_id=5 linkage=global\n"
          "[7] VAR 'v' type_id=1, linkage=global\n"
          "[8] DATASEC '.data' size=4 vlen=1\n"
          "\ttype_id=7 offset=0 size=4 (VAR 'v')\n"
          "[9] DECL_TAG 'tag' type_id=7 component_idx=-1\n"
          "[10] FLOAT 'double' size=8\n");
    CHECK(dump_json(btf) ==
          "{\"types\":[{\"id\":1,\"kind\":\"INT\",\"name\":\"int\",\"size\":4,\"bits_offset\":0,\"nr_bits\":32,\"encoding\":\"SIGNED\"},"
          "{\"id\":2,\"kind\":\"STRUCT\",\"name\":\"s\",\"size\":8,\"vlen\":2,\"members\":[{\"name\":\"a\",\"type_id\":1,\"bits_offset\":0,\"bitfield_size\":3},"
          "{\"name\":\"(anon)\",\"type_id\":1,\"bits_offset\":32}]},"
          "{\"id\":3,\"kind\":\"ENUM\",\"name\":\"e\",\"encoding\":\"UNSIGNED\",\"size\":4,\"vlen\":1,\"values\":[{\"name\":\"X\",\"val\":18446744073709551615}]},"
          "{\"id\":4,\"kind\":\"FWD\",\"name\":\"f\",\"fwd_kind\":\"union\"},"
          "{\"id\":5,\"kind\":\"FUNC_PROTO\",\"name\":\"(anon)\",\"ret_type_id\":1,\"vlen\":2,\"params\":[{\"name\":\"a\",\"type_id\":1},{\"name\":\"(anon)\",\"type_id\":0}]},"
          "{\"id\":6,\"kind\":\"FUNC\",\"name\":\"fn\",\"type_id\":5,\"linkage\":\"global\"},"
          "{\"id\":7,\"kind\":\"VAR\",\"name\":\"v\",\"type_id\":1,\"linkage\":\"global\"},"
          "{\"id\":8,\"kind\":\"DATASEC\",\"name\":\".data\",\"size\":4,\"vlen\":1,\"vars\":[{\"type_id\":7,\"offset\":0,\"size\":4}]},"
          "{\"id\":9,\"kind\":\"DECL_TAG\",\"name\":\"tag\",\"type_id\":7,\"component_idx\":-1},"
          "{\"id\":10,\"kind\":\"FLOAT\",\"name\":\"double\",\"size\":8}]}\n");
}

TEST_CASE("btf dump: split BTF", "[btf][dump]") {
    Blob base;
    const uint32_t i = base.integer("int", 4, kIntSigned);
    base.composite(Kind::Struct, "base_s", 4, {{"x", i, 0}});
    const auto base_btf = base.parse("base");
    Blob split(base_btf.count(), static_cast<uint32_t>(base.strings.size()));
    const uint32_t p = split.ref(Kind::Ptr, 2);
    split.composite(Kind::Struct, "mod_s", 8, {{"s", p, 0}});
    const auto btf = split.parse("split", &base_btf);
    CHECK(dump_raw(btf) ==
          "[3] PTR '(anon)' type_id=2\n"
          "[4] STRUCT 'mod_s' size=8 vlen=1\n"
          "\t's' type_id=3 bits_offset=0\n");
    // The C dump covers the base types too, as bpftool's does.
    CHECK(c_body(btf) == "struct base_s {\n\tint x;\n};\n\nstruct mod_s {\n\tstruct base_s *s;\n};\n\n");
}

TEST_CASE("btf dump: pointer size", "[btf][dump]") {
    Blob b;
    const uint32_t c = b.integer("char", 1, kIntSigned);
    b.integer("long int", 4, kIntSigned);
    b.composite(Kind::Struct, "s", 16, {{"a", c, 0}, {"p", b.ref(Kind::Ptr, c), 32}, {"z", c, 120}});
    const auto btf = b.parse("ptr32");
    CHECK(guess_pointer_size(btf) == 4);
    CHECK(c_body(btf) == "struct s {\n\tchar a;\n\tchar *p;\n\tlong: 32;\n\tint: 24;\n\tchar z;\n};\n\n");
    // With 8-byte pointers (as for an ELF64 object) the pointer at byte 4 is misaligned:
    // the struct can only be packed.
    DumpOptions eight;
    eight.pointer_size = 8;
    CHECK(dump_c(btf, eight).find("struct s {\n\tchar a;\n\tint: 0;\n\tchar *p;\n\tint: 24;\n\tchar z;\n} __attribute__((packed));\n") !=
          std::string::npos);
}
