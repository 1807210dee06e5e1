// CO-RE relocation (btf/core.hpp) on hand-made local and target BTF: every relocation
// kind, flavors, anonymous members, arrays and flexible arrays, bitfields, enums, type
// matching, candidates that agree, disagree or get narrowed, module BTF, the access-string
// errors, and patching (values checked, sizes changed, poisoning). The values are those
// libbpf computes; tests/core_diff.cpp checks the same engine against libbpf itself.
#include "btf/core.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstring>
#include <map>

using namespace bpfsim;
using namespace bpfsim::btf;

namespace {

// ───────────────────────────── a small BTF writer ─────────────────────────────

struct M {
    std::string name;
    uint32_t type;
    uint32_t bit_offset;
    uint32_t bits = 0;   // bitfield size (kflag structs)
};

struct Writer {
    std::vector<uint32_t> words;
    std::string strings{'\0'};
    uint32_t next_id = 1;
    uint32_t str_base = 0;
    std::map<std::string, uint32_t> seen;

    Writer() = default;
    // Split BTF on a base: ids and string offsets continue after the base's.
    explicit Writer(const Btf& base) : strings(), next_id(base.count()), str_base(base.strings_end()) {}

    uint32_t str(const std::string& s) {
        if (s.empty()) return 0;
        if (auto it = seen.find(s); it != seen.end()) return it->second;
        const uint32_t off = str_base + static_cast<uint32_t>(strings.size());
        strings += s;
        strings += '\0';
        seen[s] = off;
        return off;
    }
    uint32_t add(const std::string& name, Kind kind, uint32_t vlen, uint32_t size_or_type, bool kflag = false) {
        words.push_back(str(name));
        words.push_back((uint32_t(kflag) << 31) | (uint32_t(kind) << 24) | vlen);
        words.push_back(size_or_type);
        return next_id++;
    }
    uint32_t int_(const std::string& name, uint32_t size, uint32_t encoding, uint32_t bits = 0, uint32_t offset = 0) {
        const uint32_t id = add(name, Kind::Int, 0, size);
        words.push_back((encoding << 24) | (offset << 16) | (bits ? bits : size * 8));
        return id;
    }
    uint32_t ref(Kind kind, uint32_t type, const std::string& name = "") { return add(name, kind, 0, type); }
    uint32_t ptr(uint32_t type) { return ref(Kind::Ptr, type); }
    uint32_t array(uint32_t elem, uint32_t index, uint32_t n) {
        const uint32_t id = add("", Kind::Array, 0, 0);
        words.insert(words.end(), {elem, index, n});
        return id;
    }
    uint32_t composite(Kind kind, const std::string& name, uint32_t size, const std::vector<M>& members, bool kflag = false) {
        const uint32_t id = add(name, kind, static_cast<uint32_t>(members.size()), size, kflag);
        for (const auto& m : members) {
            words.push_back(str(m.name));
            words.push_back(m.type);
            words.push_back(kflag ? (m.bits << 24) | m.bit_offset : m.bit_offset);
        }
        return id;
    }
    uint32_t struct_(const std::string& name, uint32_t size, const std::vector<M>& members, bool kflag = false) {
        return composite(Kind::Struct, name, size, members, kflag);
    }
    uint32_t enum_(const std::string& name, uint32_t size, bool is_signed, const std::vector<std::pair<std::string, int64_t>>& values) {
        const uint32_t id = add(name, Kind::Enum, static_cast<uint32_t>(values.size()), size, is_signed);
        for (const auto& [n, v] : values) {
            words.push_back(str(n));
            words.push_back(static_cast<uint32_t>(v));
        }
        return id;
    }
    uint32_t enum64(const std::string& name, bool is_signed, const std::vector<std::pair<std::string, uint64_t>>& values) {
        const uint32_t id = add(name, Kind::Enum64, static_cast<uint32_t>(values.size()), 8, is_signed);
        for (const auto& [n, v] : values) {
            words.push_back(str(n));
            words.push_back(static_cast<uint32_t>(v));
            words.push_back(static_cast<uint32_t>(v >> 32));
        }
        return id;
    }
    uint32_t fwd(const std::string& name, bool is_union = false) { return add(name, Kind::Fwd, 0, 0, is_union); }
    uint32_t proto(uint32_t ret, const std::vector<uint32_t>& params) {
        const uint32_t id = add("", Kind::FuncProto, static_cast<uint32_t>(params.size()), ret);
        for (uint32_t t : params) words.insert(words.end(), {0u, t});
        return id;
    }

    std::vector<uint8_t> bytes() const {
        const uint32_t tl = static_cast<uint32_t>(words.size() * 4), sl = static_cast<uint32_t>(strings.size());
        std::vector<uint8_t> out(24 + tl + sl, 0);
        const uint16_t magic = 0xeb9f;
        std::memcpy(out.data(), &magic, 2);
        out[2] = 1;
        const uint32_t hdr[5] = {24, 0, tl, tl, sl};
        std::memcpy(out.data() + 4, hdr, 20);
        std::memcpy(out.data() + 24, words.data(), tl);
        std::memcpy(out.data() + 24 + tl, strings.data(), sl);
        return out;
    }
    Btf build(const std::string& name, const Btf* base = nullptr) const {
        auto b = Btf::parse(bytes(), name, base);
        if (!b) FAIL(b.error().describe());
        return std::move(b).value();
    }
};

CoreRelo relo(uint32_t type_id, std::string access, CoreReloKind kind, std::size_t insn = 0) {
    return CoreRelo{insn, type_id, std::move(access), kind};
}

CoreResult relocate(const Btf& local, const Btf& target, const CoreRelo& r, CoreCandCache* cache = nullptr) {
    auto res = core_relocate(local, target, r, cache);
    if (!res) FAIL(res.error().describe());
    return std::move(res).value();
}

std::string failure(const Btf& local, const Btf& target, const CoreRelo& r, CoreCandCache* cache = nullptr) {
    auto res = core_relocate(local, target, r, cache);
    if (res) FAIL("relocation " << r.access << " succeeded: " << res->local_spec);
    return res.error().message();
}

vm::Insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    vm::Insn i;
    i.code = code;
    i.dst = dst & 0xf;
    i.src = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

constexpr uint8_t kLdxW = 0x61, kLdxDW = 0x79, kStW = 0x62, kStxDW = 0x7b, kAdd64K = 0x07, kAdd64X = 0x0f, kMov64K = 0xb7, kLddw = 0x18,
                  kJa = 0x05;

// ─────────────────────────────── the test types ───────────────────────────────

// The program's view (local) and the kernel's (target) of the same types, laid out
// differently. Ids are kept for the tests.
struct Types {
    Writer lw, tw;
    // local
    uint32_t l_int, l_uint, l_u64, l_long, l_char, l_char4, l_task, l_task_ptr, l_sz, l_bf, l_e, l_e2, l_e3, l_big, l_fl, l_nothere,
        l_dup, l_dup2, l_dup3, l_anon, l_holder, l_task_t, l_bad;
    // target
    uint32_t t_int, t_uint, t_long, t_char, t_char16, t_task, t_task_ptr, t_anon_u, t_sz, t_bf, t_e, t_big, t_fl, t_dup,
        t_dup_2, t_dup2, t_dup2_b, t_dup3, t_dup3_b, t_task_t;
};

Types make_types() {
    Types t;
    Writer& l = t.lw;
    t.l_int = l.int_("int", 4, kIntSigned);
    t.l_uint = l.int_("unsigned int", 4, 0);
    t.l_u64 = l.int_("unsigned long long", 8, 0);
    t.l_long = l.int_("long", 8, kIntSigned);
    t.l_char = l.int_("char", 1, kIntSigned);
    t.l_char4 = l.array(t.l_char, t.l_int, 4);
    // struct task { int pid; unsigned flags; char comm[4]; struct task *parent; }
    t.l_task = l.next_id;
    t.l_task_ptr = t.l_task + 1;
    l.struct_("task", 24, {{"pid", t.l_int, 0}, {"flags", t.l_uint, 32}, {"comm", t.l_char4, 64}, {"parent", t.l_task_ptr, 128}});
    l.ptr(t.l_task);
    // A flavor with members of other sizes than the kernel's.
    t.l_sz = l.struct_("sz___local", 16, {{"flags", t.l_u64, 0}, {"prio", t.l_long, 64}});
    // Bitfields: a:3 at 0, b:5 at 3, c:4 at 8, d:4 at 12.
    t.l_bf = l.struct_("bf", 4, {{"a", t.l_uint, 0, 3}, {"b", t.l_uint, 3, 5}, {"c", t.l_uint, 8, 4}, {"d", t.l_uint, 12, 4}}, true);
    // Enums: unsigned as clang 14 writes them, whatever the values.
    t.l_e = l.enum_("e", 4, false, {{"A", -1}, {"B", 2}, {"X", 1}});
    t.l_e2 = l.enum_("e___v2", 4, false, {{"NOPE", 5}, {"B___v2", 9}});
    t.l_e3 = l.enum_("e3", 4, false, {{"FAR", 1}});
    t.l_big = l.enum_("big", 4, false, {{"Y", 1}});
    // struct fl { int n; int data[]; }
    const uint32_t l_flex = l.array(t.l_int, t.l_int, 0);
    t.l_fl = l.struct_("fl", 4, {{"n", t.l_int, 0}, {"data", l_flex, 32}});
    t.l_nothere = l.struct_("nothere", 4, {{"x", t.l_int, 0}});
    t.l_dup = l.struct_("dup", 8, {{"x", t.l_int, 0}, {"y", t.l_int, 32}});
    t.l_dup2 = l.struct_("dup2", 8, {{"z", t.l_int, 0}, {"w", t.l_int, 32}});
    t.l_dup3 = l.struct_("dup3", 8, {{"a", t.l_int, 0}, {"b", t.l_int, 32}});
    t.l_anon = l.struct_("", 4, {{"x", t.l_int, 0}});
    t.l_holder = l.struct_("holder", 4, {{"i", t.l_int, 0}});
    t.l_task_t = l.ref(Kind::Typedef, t.l_task, "task_t");
    // struct task___bad { struct task *pid; char comm[32]; int nope; }
    const uint32_t l_char32 = l.array(t.l_char, t.l_int, 32);
    t.l_bad = l.struct_("task___bad", 48, {{"pid", t.l_task_ptr, 0}, {"comm", l_char32, 64}, {"nope", t.l_int, 320}});

    Writer& w = t.tw;
    t.t_int = w.int_("int", 4, kIntSigned);
    t.t_uint = w.int_("unsigned int", 4, 0);
    t.t_long = w.int_("long int", 8, kIntSigned);
    t.t_char = w.int_("char", 1, 0);
    t.t_char16 = w.array(t.t_char, t.t_int, 16);
    // struct task { long pad; unsigned flags; union { int pid; unsigned upid; }; char comm[16]; struct task *parent; }
    t.t_task = w.next_id;
    t.t_anon_u = t.t_task + 1;
    t.t_task_ptr = t.t_task + 2;
    w.struct_("task", 40, {{"pad", t.t_long, 0}, {"flags", t.t_uint, 64}, {"", t.t_anon_u, 96}, {"comm", t.t_char16, 128}, {"parent", t.t_task_ptr, 256}});
    w.composite(Kind::Union, "", 4, {{"pid", t.t_int, 0}, {"upid", t.t_uint, 0}});
    w.ptr(t.t_task);
    t.t_sz = w.struct_("sz", 12, {{"x", t.t_int, 0}, {"flags", t.t_uint, 32}, {"prio", t.t_int, 64}});
    // a:3 at 37, b:4 at 62 (no load reaches it), c:4 at 30 (needs 8 bytes), d:4 at 64.
    t.t_bf = w.struct_("bf", 16, {{"c", t.t_uint, 30, 4}, {"a", t.t_uint, 37, 3}, {"b", t.t_uint, 62, 4}, {"d", t.t_int, 64, 4}}, true);
    t.t_e = w.enum_("e", 4, true, {{"B", 20}, {"A", -7}, {"X", 0xffffffffll}});
    t.t_big = w.enum64("big", false, {{"Y", 0x123456789ull}});
    const uint32_t t_flex = w.array(t.t_int, t.t_int, 0);
    t.t_fl = w.struct_("fl", 12, {{"x", t.t_long, 0}, {"n", t.t_int, 64}, {"data", t_flex, 96}});
    t.t_dup = w.struct_("dup", 8, {{"x", t.t_int, 0}, {"y", t.t_int, 32}});
    t.t_dup_2 = w.struct_("dup___2", 8, {{"y", t.t_int, 0}, {"x", t.t_int, 32}});
    t.t_dup2 = w.struct_("dup2", 4, {{"z", t.t_int, 0}});
    t.t_dup2_b = w.struct_("dup2___b", 8, {{"z", t.t_int, 0}, {"w", t.t_int, 32}});
    t.t_dup3 = w.struct_("dup3", 4, {{"a", t.t_int, 0}});
    t.t_dup3_b = w.struct_("dup3___b", 4, {{"b", t.t_int, 0}});
    t.t_task_t = w.ref(Kind::Typedef, t.t_task, "task_t");
    return t;
}

struct Fixture {
    Types t = make_types();
    Btf local = t.lw.build("local");
    Btf target = t.tw.build("vmlinux");
};

}  // namespace

// ─────────────────────────────── field relocations ───────────────────────────────

TEST_CASE("CO-RE: field byte offsets follow members by name", "[core]") {
    Fixture f;
    const Types& t = f.t;

    SECTION("a member found through an anonymous union") {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_task, "0:0", CoreReloKind::FieldByteOffset));
        CHECK_FALSE(r.poison);
        CHECK(r.validate);
        CHECK(r.orig_value == 0);
        CHECK(r.new_value == 12);
        CHECK(r.orig_size == 4);
        CHECK(r.new_size == 4);
        CHECK(r.target_type == t.t_task);
        CHECK(r.local_spec == fmt::format("<byte_off> [{}] struct task.pid (0:0 @ offset 0)", t.l_task));
        CHECK(r.target_spec == fmt::format("<byte_off> [{}] struct task.pid (0:2:0 @ offset 12)", t.t_task));
        REQUIRE(r.log.size() == 3);
        CHECK(r.log[0] == fmt::format("CO-RE relocating [{}] struct task: found target candidate [{}] struct task in [vmlinux]", t.l_task, t.t_task));
        CHECK(r.log[2] == "matching candidate #0 " + r.target_spec);
    }
    SECTION("plain members, pointers, arrays and their elements") {
        CHECK(relocate(f.local, f.target, relo(t.l_task, "0:1", CoreReloKind::FieldByteOffset)).new_value == 8);
        CHECK(relocate(f.local, f.target, relo(t.l_task, "0:3", CoreReloKind::FieldByteOffset)).new_value == 32);
        const CoreResult comm3 = relocate(f.local, f.target, relo(t.l_task, "0:2:3", CoreReloKind::FieldByteOffset));
        CHECK(comm3.orig_value == 11);
        CHECK(comm3.new_value == 19);
        CHECK(comm3.orig_size == 1);
        CHECK(comm3.target_spec == fmt::format("<byte_off> [{}] struct task.comm[3] (0:3:3 @ offset 19)", t.t_task));
        // The first index is pointer arithmetic on the root: task[2].flags.
        const CoreResult second = relocate(f.local, f.target, relo(t.l_task, "2:1", CoreReloKind::FieldByteOffset));
        CHECK(second.orig_value == 2 * 24 + 4);
        CHECK(second.new_value == 2 * 40 + 8);
        CHECK(second.local_spec == fmt::format("<byte_off> [{}] struct task[2].flags (2:1 @ offset 52)", t.l_task));
    }
    SECTION("through a typedef of the root") {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_task_t, "0:1", CoreReloKind::FieldByteOffset));
        CHECK(r.new_value == 8);
        CHECK(r.target_type == t.t_task_t);
        CHECK(r.local_spec == fmt::format("<byte_off> [{}] typedef task_t.flags (0:1 @ offset 4)", t.l_task_t));
    }
    SECTION("flexible arrays can be indexed past their (zero) length") {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_fl, "0:1:5", CoreReloKind::FieldByteOffset));
        CHECK(r.orig_value == 4 + 5 * 4);
        CHECK(r.new_value == 12 + 5 * 4);
    }
}

TEST_CASE("CO-RE: sizes, existence, signedness and shifts of fields", "[core]") {
    Fixture f;
    const Types& t = f.t;
    auto value = [&](const char* access, CoreReloKind k) {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_task, access, k));
        REQUIRE_FALSE(r.poison);
        return std::make_pair(r.orig_value, r.new_value);
    };
    using P = std::pair<uint64_t, uint64_t>;
    CHECK(value("0:2", CoreReloKind::FieldByteSize) == P{4, 16});
    CHECK(value("0:2:1", CoreReloKind::FieldByteSize) == P{1, 1});
    CHECK(value("0:0", CoreReloKind::FieldExists) == P{1, 1});
    CHECK(value("0:0", CoreReloKind::FieldSigned) == P{1, 1});
    CHECK(value("0:1", CoreReloKind::FieldSigned) == P{0, 0});
    CHECK(value("0:0", CoreReloKind::FieldLshiftU64) == P{32, 32});
    CHECK(value("0:0", CoreReloKind::FieldRshiftU64) == P{32, 32});
    CHECK(value("0:3", CoreReloKind::FieldLshiftU64) == P{0, 0});
    // Shifts and signedness have no meaning for an array element: libbpf refuses.
    CHECK_THAT(failure(f.local, f.target, relo(t.l_task, "0:2:1", CoreReloKind::FieldSigned)), Catch::Contains("can't be applied to array access"));
}

TEST_CASE("CO-RE: missing fields poison, existence checks give 0", "[core]") {
    Fixture f;
    const Types& t = f.t;
    SECTION("a member the target lacks, of the wrong kind, or an index out of its bounds") {
        for (const char* access : {"0:2", "0:0", "0:1:20"}) {
            INFO(access);
            const CoreResult r = relocate(f.local, f.target, relo(t.l_bad, access, CoreReloKind::FieldByteOffset));
            CHECK(r.poison);
            CHECK(r.target_type == 0);
            CHECK(r.target_spec.empty());
            CHECK_THAT(r.failure, Catch::Contains("no target type matches") && Catch::Contains("none compatible"));
            CHECK(r.log.back() == "no matching targets found");
            const CoreResult e = relocate(f.local, f.target, relo(t.l_bad, access, CoreReloKind::FieldExists));
            CHECK_FALSE(e.poison);
            CHECK(e.orig_value == 1);
            CHECK(e.new_value == 0);
        }
        // The partial target spec of a non-matching candidate is logged as libbpf does.
        const CoreResult r = relocate(f.local, f.target, relo(t.l_bad, "0:1:20", CoreReloKind::FieldByteOffset));
        CHECK(r.log[r.log.size() - 2] == fmt::format("non-matching candidate #0 <byte_off> [{}] struct task.comm (0:3 @ offset 16)", t.t_task));
    }
    SECTION("no type of that name at all") {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_nothere, "0:0", CoreReloKind::FieldByteOffset));
        CHECK(r.poison);
        CHECK_THAT(r.failure, Catch::Contains("no struct named like it"));
        CHECK(relocate(f.local, f.target, relo(t.l_nothere, "0:0", CoreReloKind::FieldExists)).new_value == 0);
    }
}

TEST_CASE("CO-RE: bitfields", "[core]") {
    Fixture f;
    const Types& t = f.t;
    auto get = [&](const char* access, CoreReloKind k) { return relocate(f.local, f.target, relo(t.l_bf, access, k)); };

    // a:3 at bit 37 of a 4-byte unsigned: the load is the 4 bytes at 4.
    const CoreResult off = get("0:0", CoreReloKind::FieldByteOffset);
    CHECK(off.orig_value == 0);
    CHECK(off.new_value == 4);
    CHECK_FALSE(off.validate);   // the compiler may read a bitfield with any load that covers it
    CHECK(off.orig_size == 0);   // no load size for bitfields
    CHECK(get("0:0", CoreReloKind::FieldByteSize).new_value == 4);
    CHECK(get("0:0", CoreReloKind::FieldLshiftU64).orig_value == 61);
    CHECK(get("0:0", CoreReloKind::FieldLshiftU64).new_value == 64 - (37 + 3 - 32));
    const CoreResult rsh = get("0:0", CoreReloKind::FieldRshiftU64);
    CHECK(rsh.validate);
    CHECK(rsh.new_value == 61);
    CHECK(get("0:0", CoreReloKind::FieldSigned).new_value == 0);
    CHECK(get("0:3", CoreReloKind::FieldSigned).new_value == 1);   // d is an int bitfield there
    CHECK(off.local_spec == fmt::format("<byte_off> [{}] struct bf.a (0:0 @ offset 0)", t.l_bf));
    CHECK(off.target_spec == fmt::format("<byte_off> [{}] struct bf.a (0:1 @ offset 4.5)", t.t_bf));

    // c:4 at bit 30 crosses a 4-byte boundary: an 8-byte load at 0.
    CHECK(get("0:2", CoreReloKind::FieldByteOffset).new_value == 0);
    CHECK(get("0:2", CoreReloKind::FieldByteSize).new_value == 8);
    CHECK(get("0:2", CoreReloKind::FieldLshiftU64).new_value == 30);
    CHECK(get("0:2", CoreReloKind::FieldRshiftU64).new_value == 60);

    // b:4 at bit 62 of a 4-byte unsigned: no aligned load up to 8 bytes holds it.
    CHECK_THAT(failure(f.local, f.target, relo(t.l_bf, "0:1", CoreReloKind::FieldByteOffset)), Catch::Contains("can't be satisfied for bitfield"));
}

// ─────────────────────────────── candidates ───────────────────────────────

TEST_CASE("CO-RE: flavors, several candidates, ambiguity and narrowing", "[core]") {
    Fixture f;
    const Types& t = f.t;

    SECTION("a local flavor looks for the plain name; target flavors are candidates too") {
        const CoreResult r = relocate(f.local, f.target, relo(t.l_bad, "0:1:1", CoreReloKind::FieldByteOffset));
        CHECK(r.target_type == t.t_task);
        CHECK(r.new_value == 17);
        const CoreResult d2 = relocate(f.local, f.target, relo(t.l_dup2, "0:0", CoreReloKind::FieldByteOffset));
        CHECK(d2.log[0].find(fmt::format("found target candidate [{}] struct dup2 ", t.t_dup2)) != std::string::npos);
        CHECK(d2.log[1].find(fmt::format("found target candidate [{}] struct dup2___b ", t.t_dup2_b)) != std::string::npos);
        CHECK(d2.target_type == t.t_dup2);   // both agree on offset 0
        CHECK(d2.new_value == 0);
    }
    SECTION("candidates that disagree on the offset fail the relocation") {
        CHECK_THAT(failure(f.local, f.target, relo(t.l_dup, "0:0", CoreReloKind::FieldByteOffset)), Catch::Contains("field offset ambiguity: 32 != 0"));
        // ... and on a type's size.
        CHECK_THAT(failure(f.local, f.target, relo(t.l_dup2, "0", CoreReloKind::TypeSize)),
                   Catch::Contains("relocation decision ambiguity: success 8 != success 4"));
        // Existence agrees whatever the layouts.
        CHECK(relocate(f.local, f.target, relo(t.l_dup, "0", CoreReloKind::TypeExists)).new_value == 1);
    }
    SECTION("a cache narrows the candidates to those that matched, as libbpf's does") {
        CoreCandCache cache;
        const CoreResult a = relocate(f.local, f.target, relo(t.l_dup3, "0:0", CoreReloKind::FieldByteOffset), &cache);
        CHECK(a.target_type == t.t_dup3);
        REQUIRE(cache.find(&f.local, t.l_dup3));
        CHECK(cache.find(&f.local, t.l_dup3)->size() == 1);
        // `b` is only in dup3___b, which the first relocation dropped.
        CHECK(relocate(f.local, f.target, relo(t.l_dup3, "0:1", CoreReloKind::FieldByteOffset), &cache).poison);
        // The candidate search is logged only the first time.
        CHECK(relocate(f.local, f.target, relo(t.l_dup3, "0:0", CoreReloKind::FieldByteOffset), &cache).log[0].starts_with("<byte_off>"));
        // Without a cache every relocation starts afresh.
        const CoreResult b = relocate(f.local, f.target, relo(t.l_dup3, "0:1", CoreReloKind::FieldByteOffset));
        CHECK_FALSE(b.poison);
        CHECK(b.target_type == t.t_dup3_b);
        // When nothing matches, the list is left as it was.
        CoreCandCache c2;
        relocate(f.local, f.target, relo(t.l_nothere, "0:0", CoreReloKind::FieldExists), &c2);
        CHECK(c2.find(&f.local, t.l_nothere)->empty());
        c2.clear();
        CHECK_FALSE(c2.find(&f.local, t.l_nothere));
    }
    SECTION("module BTF is searched only when the main BTF has no candidate") {
        Writer mw(f.target);
        const uint32_t m_holder = mw.struct_("holder", 8, {{"pad", t.t_int, 0}, {"i", t.t_int, 32}});
        mw.struct_("task", 8, {{"flags", t.t_uint, 0}});
        const Btf mod = mw.build("mod", &f.target);
        CoreTargets targets;
        targets.main = &f.target;
        targets.modules = {&mod};
        auto h = core_relocate(f.local, targets, relo(t.l_holder, "0:0", CoreReloKind::FieldByteOffset));
        REQUIRE(h);
        CHECK(h->target_type == m_holder);
        CHECK(h->new_value == 4);
        CHECK_THAT(h->log[0], Catch::EndsWith("in [mod]"));
        auto k = core_relocate(f.local, targets, relo(t.l_task, "0:1", CoreReloKind::FieldByteOffset));
        REQUIRE(k);
        CHECK(k->target_type == t.t_task);
        CHECK(k->new_value == 8);
    }
    SECTION("essential names: the last ___ separates the flavor, and it needs a letter on both sides") {
        Writer lw;
        const uint32_t i = lw.int_("int", 4, kIntSigned);
        const uint32_t two = lw.struct_("task___a___b", 4, {{"pid", i, 0}});
        const uint32_t four = lw.struct_("task____x", 4, {{"pid", i, 0}});
        const uint32_t trailing = lw.struct_("task___", 4, {{"pid", i, 0}});
        const Btf l = lw.build("l");
        CHECK(relocate(l, f.target, relo(two, "0:0", CoreReloKind::FieldExists)).new_value == 0);        // looks for task___a
        CHECK(relocate(l, f.target, relo(four, "0:0", CoreReloKind::FieldExists)).new_value == 0);       // no flavor
        CHECK(relocate(l, f.target, relo(trailing, "0:0", CoreReloKind::FieldExists)).new_value == 0);   // no flavor
    }
}

// ─────────────────────────────── type relocations ───────────────────────────────

TEST_CASE("CO-RE: type existence, size and ids", "[core]") {
    Fixture f;
    const Types& t = f.t;
    auto get = [&](uint32_t id, CoreReloKind k) { return relocate(f.local, f.target, relo(id, "0", k)); };
    CHECK(get(t.l_task, CoreReloKind::TypeExists).new_value == 1);
    CHECK(get(t.l_task, CoreReloKind::TypeSize).orig_value == 24);
    CHECK(get(t.l_task, CoreReloKind::TypeSize).new_value == 40);
    CHECK(get(t.l_task_t, CoreReloKind::TypeSize).new_value == 40);
    const CoreResult id = get(t.l_task, CoreReloKind::TypeIdTarget);
    CHECK(id.orig_value == t.l_task);
    CHECK(id.new_value == t.t_task);
    CHECK_FALSE(id.validate);   // type ids change when objects are linked
    const CoreResult local = get(t.l_task, CoreReloKind::TypeIdLocal);
    CHECK(local.new_value == t.l_task);
    CHECK(local.log.size() == 1);   // no candidate search
    CHECK(get(t.l_e, CoreReloKind::TypeSize).new_value == 4);
    CHECK(get(t.l_big, CoreReloKind::TypeExists).new_value == 1);   // an ENUM finds an ENUM64
    // Missing types: 0, never poisoned.
    for (auto k : {CoreReloKind::TypeExists, CoreReloKind::TypeSize, CoreReloKind::TypeIdTarget, CoreReloKind::TypeMatches}) {
        const CoreResult r = get(t.l_nothere, k);
        CHECK_FALSE(r.poison);
        CHECK(r.new_value == 0);
    }
    // A struct is not a union of the same name.
    Writer lw;
    const uint32_t i = lw.int_("int", 4, kIntSigned);
    const uint32_t u = lw.composite(Kind::Union, "task", 4, {{"pid", i, 0}});
    const Btf l = lw.build("l");
    CHECK(relocate(l, f.target, relo(u, "0", CoreReloKind::TypeExists)).new_value == 0);
    // The anonymous union is not searched for.
    CHECK_THAT(failure(f.local, f.target, relo(t.l_anon, "0", CoreReloKind::TypeExists)), Catch::Contains("anonymous"));
    // Only a type-local id can be asked of an anonymous type.
    CHECK(relocate(f.local, f.target, relo(t.l_anon, "0", CoreReloKind::TypeIdLocal)).new_value == t.l_anon);
}

TEST_CASE("CO-RE: type_matches is stricter than type_exists", "[core]") {
    Writer tw;
    const uint32_t t_int = tw.int_("int", 4, kIntSigned);
    const uint32_t t_uint = tw.int_("unsigned int", 4, 0);
    const uint32_t t_char = tw.int_("char", 1, 0);
    const uint32_t t_name8 = tw.array(t_char, t_int, 8);
    const uint32_t t_other = tw.struct_("other", 4, {{"v", t_int, 0}});
    const uint32_t t_other_ptr = tw.ptr(t_other);
    tw.struct_("tm", 24, {{"a", t_int, 0}, {"b", t_uint, 32}, {"p", t_other_ptr, 64}, {"name", t_name8, 128}});
    tw.enum_("color", 4, false, {{"RED", 0}, {"GREEN", 1}, {"BLUE", 2}});
    const uint32_t t_char_ptr = tw.ptr(t_char);
    const uint32_t t_proto = tw.proto(t_int, {t_int, t_char_ptr});
    tw.ref(Kind::Typedef, tw.ptr(t_proto), "cb_t");
    tw.composite(Kind::Union, "un", 4, {{"a", t_int, 0}});
    const uint32_t t_fwd = tw.fwd("opaque");
    tw.struct_("hasfwd", 8, {{"o", tw.ptr(t_fwd), 0}});
    const Btf target = tw.build("vmlinux");

    Writer lw;
    const uint32_t l_int = lw.int_("int", 4, kIntSigned);
    const uint32_t l_uint = lw.int_("unsigned int", 4, 0);
    const uint32_t l_long = lw.int_("long", 8, kIntSigned);
    const uint32_t l_char = lw.int_("char", 1, 0);
    const uint32_t l_other_x = lw.struct_("other___x", 4, {{"v", l_int, 0}});
    const uint32_t l_other_fwd = lw.fwd("other");
    const uint32_t l_other_ufwd = lw.fwd("other", true);
    std::map<std::string, uint32_t> ids;
    ids["ok"] = lw.struct_("tm___ok", 16, {{"a", l_int, 0}, {"p", lw.ptr(l_other_x), 64}});
    ids["fwd behind a pointer"] = lw.struct_("tm___fwd", 8, {{"p", lw.ptr(l_other_fwd), 0}});
    ids["union fwd behind a pointer"] = lw.struct_("tm___ufwd", 8, {{"p", lw.ptr(l_other_ufwd), 0}});
    ids["int name"] = lw.struct_("tm___sign", 4, {{"a", l_uint, 0}});
    ids["array length"] = lw.struct_("tm___arr", 4, {{"name", lw.array(l_char, l_int, 4), 0}});
    ids["array length ok"] = lw.struct_("tm___arr8", 8, {{"name", lw.array(l_char, l_int, 8), 0}});
    ids["missing member"] = lw.struct_("tm___nope", 4, {{"zzz", l_int, 0}});
    ids["enum subset"] = lw.enum_("color___a", 4, false, {{"GREEN___a", 7}});
    ids["enum name"] = lw.enum_("color___b", 4, false, {{"PURPLE", 1}});
    ids["enum size"] = lw.enum_("color___c", 1, false, {{"RED___c", 0}});
    const uint32_t l_char_ptr = lw.ptr(l_char);
    ids["proto"] = lw.ref(Kind::Typedef, lw.ptr(lw.proto(l_int, {l_int, l_char_ptr})), "cb_t___ok");
    ids["proto param"] = lw.ref(Kind::Typedef, lw.ptr(lw.proto(l_int, {l_long, l_char_ptr})), "cb_t___bad");
    ids["proto arity"] = lw.ref(Kind::Typedef, lw.ptr(lw.proto(l_int, {l_int})), "cb_t___short");
    ids["union"] = lw.composite(Kind::Union, "un___x", 4, {{"a", l_int, 0}});
    const uint32_t l_opaque = lw.struct_("opaque", 4, {{"q", l_int, 0}});
    ids["struct behind a pointer to a fwd"] = lw.struct_("hasfwd___x", 8, {{"o", lw.ptr(l_opaque), 0}});
    const Btf local = lw.build("local");

    const std::map<std::string, uint64_t> expected = {
        {"ok", 1},          {"fwd behind a pointer", 1}, {"union fwd behind a pointer", 0}, {"int name", 0},  {"array length", 0},
        {"array length ok", 1}, {"missing member", 0},   {"enum subset", 1},                {"enum name", 0}, {"enum size", 0},
        {"proto", 1},       {"proto param", 0},          {"proto arity", 0},                {"union", 1},
        {"struct behind a pointer to a fwd", 1}};
    for (const auto& [what, id] : ids) {
        INFO(what);
        const CoreResult m = relocate(local, target, relo(id, "0", CoreReloKind::TypeMatches));
        CHECK(m.new_value == expected.at(what));
        // type_exists is looser: same kind and name are enough here (integers of any size or
        // name are compatible), except for a prototype with another number of parameters.
        const CoreResult e = relocate(local, target, relo(id, "0", CoreReloKind::TypeExists));
        CHECK(e.new_value == (what == "proto arity" ? 0u : 1u));
    }
}

// ─────────────────────────────── enums ───────────────────────────────

TEST_CASE("CO-RE: enum values", "[core]") {
    Fixture f;
    const Types& t = f.t;
    auto get = [&](uint32_t id, const char* access, CoreReloKind k) { return relocate(f.local, f.target, relo(id, access, k)); };

    const CoreResult a = get(t.l_e, "0", CoreReloKind::EnumvalValue);
    CHECK(a.orig_value == ~0ull);                  // -1, sign-extended as libbpf does
    CHECK(a.new_value == uint64_t(int64_t(-7)));
    CHECK(a.local_spec == fmt::format("<enumval_value> [{}] enum e::A = 4294967295", t.l_e));
    CHECK(a.target_spec == fmt::format("<enumval_value> [{}] enum e::A = -7", t.t_e));
    CHECK(get(t.l_e, "1", CoreReloKind::EnumvalValue).new_value == 20);
    // 0xffffffff in a 32-bit enum comes out sign-extended too.
    CHECK(get(t.l_e, "2", CoreReloKind::EnumvalValue).new_value == ~0ull);
    CHECK(get(t.l_e, "1", CoreReloKind::EnumvalExists).new_value == 1);
    // An enumerator flavor looks for its essential name.
    const CoreResult v2 = get(t.l_e2, "1", CoreReloKind::EnumvalValue);
    CHECK(v2.orig_value == 9);
    CHECK(v2.new_value == 20);
    // A missing enumerator: 0 for existence, poison for the value.
    CHECK(get(t.l_e2, "0", CoreReloKind::EnumvalExists).new_value == 0);
    CHECK(get(t.l_e2, "0", CoreReloKind::EnumvalValue).poison);
    CHECK(get(t.l_e3, "0", CoreReloKind::EnumvalExists).new_value == 0);
    // ENUM64 in the target.
    const CoreResult y = get(t.l_big, "0", CoreReloKind::EnumvalValue);
    CHECK(y.new_value == 0x123456789ull);
    CHECK(y.target_spec == fmt::format("<enumval_value> [{}] enum64 big::Y = 4886718345", t.t_big));
}

// ─────────────────────────────── errors ───────────────────────────────

TEST_CASE("CO-RE: malformed relocations are errors", "[core]") {
    Fixture f;
    const Types& t = f.t;
    auto err = [&](uint32_t id, const std::string& access, CoreReloKind k) {
        auto r = core_relocate(f.local, f.target, relo(id, access, k, 7));
        REQUIRE_FALSE(r.ok());
        return r.error();
    };
    for (const char* bad : {"", ":0", "0:", "0::1", "0:x", "x", "0:-1"}) {
        INFO("access '" << bad << "'");
        const Error e = err(t.l_task, bad, CoreReloKind::FieldByteOffset);
        CHECK(e.code() == ErrorCode::InvalidBtf);
        CHECK(e.where().pc == 7u);
    }
    std::string deep = "0";
    for (int i = 0; i < 64; ++i) deep += ":0";
    CHECK_THAT(err(t.l_task, deep, CoreReloKind::FieldByteOffset).message(), Catch::Contains("more than 64"));
    CHECK_THAT(err(t.l_task, "0:9", CoreReloKind::FieldByteOffset).message(), Catch::Contains("member 9"));
    CHECK_THAT(err(t.l_task, "0:2:4", CoreReloKind::FieldByteOffset).message(), Catch::Contains("index 4 of an array of 4"));
    CHECK_THAT(err(t.l_task, "0:0:1", CoreReloKind::FieldByteOffset).message(), Catch::Contains("unexpected kind int"));
    CHECK_THAT(err(t.l_task, "0:1", CoreReloKind::TypeSize).message(), Catch::Contains("must be \"0\""));
    CHECK_THAT(err(t.l_e, "3", CoreReloKind::EnumvalValue).message(), Catch::Contains("enumerator 3 of 3"));
    CHECK_THAT(err(t.l_task, "0", CoreReloKind::EnumvalValue).message(), Catch::Contains("not an enum"));
    CHECK_THAT(err(t.l_anon, "0:0", CoreReloKind::FieldByteOffset).message(), Catch::Contains("anonymous"));
    CHECK(err(9999, "0", CoreReloKind::TypeExists).code() == ErrorCode::InvalidBtf);
    // `where` is copied into errors.
    Location loc;
    loc.file = "x.o";
    loc.section = "xdp";
    auto r = core_relocate(f.local, f.target, relo(t.l_task, ":", CoreReloKind::FieldByteOffset, 3), nullptr, loc);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().where().file == "x.o");
    CHECK(r.error().where().section == "xdp");
    CHECK(r.error().where().pc == 3u);
}

// ─────────────────────────────── patching ───────────────────────────────

TEST_CASE("CO-RE: patching instructions", "[core]") {
    Fixture f;
    const Types& t = f.t;
    const CoreRelo pid = relo(t.l_task, "0:0", CoreReloKind::FieldByteOffset);
    const CoreResult pid_res = relocate(f.local, f.target, pid);

    SECTION("loads, stores and ALU immediates") {
        std::vector<vm::Insn> p = {insn(kLdxW, 1, 2, 0, 0), insn(kAdd64K, 3, 0, 0, 0), insn(kStW, 2, 0, 0, 5)};
        auto a = core_patch(p.data(), p.size(), 0, pid, pid_res);
        REQUIRE(a);
        CHECK_FALSE(a->poisoned);
        CHECK(a->log == std::vector<std::string>{"patched insn #0 (LDX/ST/STX) off 0 -> 12"});
        CHECK(p[0] == insn(kLdxW, 1, 2, 12, 0));
        REQUIRE(core_patch(p.data(), p.size(), 1, pid, pid_res));
        CHECK(p[1] == insn(kAdd64K, 3, 0, 0, 12));
        REQUIRE(core_patch(p.data(), p.size(), 2, pid, pid_res));
        CHECK(p[2] == insn(kStW, 2, 0, 12, 5));
    }
    SECTION("the instruction must hold the local value") {
        std::vector<vm::Insn> p = {insn(kLdxW, 1, 2, 8, 0), insn(kMov64K, 1, 0, 0, -1)};
        auto a = core_patch(p.data(), p.size(), 0, pid, pid_res);
        REQUIRE_FALSE(a);
        CHECK(a.error().code() == ErrorCode::InvalidInsn);
        CHECK_THAT(a.error().message(), Catch::Contains("unexpected insn #0 (LDX/ST/STX) value: got 8, exp 0 -> 12"));
        CHECK(p[0] == insn(kLdxW, 1, 2, 8, 0));   // untouched
        auto b = core_patch(p.data(), p.size(), 1, pid, pid_res);
        REQUIRE_FALSE(b);
        CHECK_THAT(b.error().message(), Catch::Contains("got 4294967295, exp 0 -> 12"));
        // Unless the value is not checked (bitfields, type ids).
        const CoreRelo a_off = relo(t.l_bf, "0:0", CoreReloKind::FieldByteOffset);
        const CoreResult bf = relocate(f.local, f.target, a_off);
        std::vector<vm::Insn> q = {insn(kAdd64K, 1, 0, 0, 99)};
        auto c = core_patch(q.data(), q.size(), 0, a_off, bf);
        REQUIRE(c);
        CHECK(c->log == std::vector<std::string>{"patched insn #0 (ALU/ALU64) imm 99 -> 4"});
    }
    SECTION("a field of another size changes the load size, when that keeps the value") {
        const CoreRelo flags = relo(t.l_sz, "0:0", CoreReloKind::FieldByteOffset);
        const CoreResult fr = relocate(f.local, f.target, flags);
        CHECK(fr.orig_size == 8);
        CHECK(fr.new_size == 4);
        CHECK_FALSE(fr.fail_memsz_adjust);
        std::vector<vm::Insn> p = {insn(kLdxDW, 1, 2, 0, 0), insn(kStxDW, 2, 1, 0, 0), insn(kLdxW, 1, 2, 0, 0)};
        auto a = core_patch(p.data(), p.size(), 0, flags, fr);
        REQUIRE(a);
        CHECK(p[0] == insn(kLdxW, 1, 2, 4, 0));
        CHECK(a->log.back() == "patched insn #0 (LDX/ST/STX) mem_sz 8 -> 4");
        REQUIRE(core_patch(p.data(), p.size(), 1, flags, fr));
        CHECK(p[1] == insn(0x63, 2, 1, 4, 0));   // stxw
        // The instruction's size must be the local field's.
        auto c = core_patch(p.data(), p.size(), 2, flags, fr);
        REQUIRE_FALSE(c);
        CHECK_THAT(c.error().message(), Catch::Contains("unexpected mem size: got 4, exp 8"));

        // A signed field cannot be read at another size: the load is poisoned.
        const CoreRelo prio = relo(t.l_sz, "0:1", CoreReloKind::FieldByteOffset);
        const CoreResult pr = relocate(f.local, f.target, prio);
        CHECK(pr.fail_memsz_adjust);
        std::vector<vm::Insn> q = {insn(kLdxDW, 1, 2, 8, 0), insn(kAdd64K, 1, 0, 0, 8)};
        auto d = core_patch(q.data(), q.size(), 0, prio, pr);
        REQUIRE(d);
        CHECK(d->poisoned);
        CHECK(is_core_poison(q[0]));
        // ... but the size does not matter to an ALU instruction.
        REQUIRE(core_patch(q.data(), q.size(), 1, prio, pr));
        CHECK(q[1].imm == 8);
    }
    SECTION("poisoning: call 0xbad2310, both halves of an lddw") {
        const CoreRelo bad = relo(t.l_bad, "0:2", CoreReloKind::FieldByteOffset);
        const CoreResult br = relocate(f.local, f.target, bad);
        REQUIRE(br.poison);
        std::vector<vm::Insn> p = {insn(kLdxW, 1, 2, 12, 0), insn(kLddw, 1, 0, 0, 12), insn(0, 0, 0, 0, 0), insn(kJa, 0, 0, 1, 0)};
        auto a = core_patch(p.data(), p.size(), 0, bad, br);
        REQUIRE(a);
        CHECK(a->poisoned);
        CHECK(a->log == std::vector<std::string>{"substituting insn #0 w/ invalid insn"});
        CHECK(p[0] == insn(0x85, 0, 0, 0, 0xbad2310));
        REQUIRE(core_patch(p.data(), p.size(), 1, bad, br));
        CHECK(is_core_poison(p[1]));
        CHECK(is_core_poison(p[2]));
        // Any instruction can be poisoned, even one CO-RE could not patch.
        REQUIRE(core_patch(p.data(), p.size(), 3, bad, br));
        CHECK(is_core_poison(p[3]));
    }
    SECTION("lddw gets both halves of a 64-bit value") {
        const CoreRelo y = relo(t.l_big, "0", CoreReloKind::EnumvalValue);
        const CoreResult yr = relocate(f.local, f.target, y);
        std::vector<vm::Insn> p = {insn(kLddw, 1, 0, 0, 1), insn(0, 0, 0, 0, 0)};
        auto a = core_patch(p.data(), p.size(), 0, y, yr);
        REQUIRE(a);
        CHECK(p[0].imm == 0x23456789);
        CHECK(p[1].imm == 1);
        CHECK(a->log == std::vector<std::string>{"patched insn #0 (LDIMM64) imm64 1 -> 4886718345"});
        std::vector<vm::Insn> q = {insn(kLddw, 1, 1, 0, 1), insn(0, 0, 0, 0, 0)};   // a map reference, not a constant
        CHECK_THAT(core_patch(q.data(), q.size(), 0, y, yr).error().message(), Catch::Contains("(LDIMM64) has unexpected form"));
        CHECK_THAT(core_patch(q.data(), 1, 0, y, yr).error().message(), Catch::Contains("unexpected form"));
    }
    SECTION("instructions CO-RE cannot patch") {
        std::vector<vm::Insn> p = {insn(kAdd64X, 1, 2, 0, 0), insn(kJa, 0, 0, 0, 0)};
        CHECK_THAT(core_patch(p.data(), p.size(), 0, pid, pid_res).error().message(), Catch::Contains("takes a register"));
        CHECK_THAT(core_patch(p.data(), p.size(), 1, pid, pid_res).error().message(), Catch::Contains("unrecognized insn #1"));
        CHECK_THAT(core_patch(p.data(), p.size(), 2, pid, pid_res).error().message(), Catch::Contains("outside the program"));
        CoreResult big = pid_res;
        big.new_value = 40000;
        std::vector<vm::Insn> q = {insn(kLdxW, 1, 2, 0, 0)};
        CHECK_THAT(core_patch(q.data(), q.size(), 0, pid, big).error().message(), Catch::Contains("value too big: 40000"));
    }
}
