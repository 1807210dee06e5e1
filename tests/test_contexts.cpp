// Tracing contexts (pt_regs, u64 args, tracepoint records, perf_event data), __kconfig
// externs, and map contents as JSON (map dump --json / run --map-init).
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {

const fs::path kContexts = BPFSIM_CORPUS_DIR "/trace_contexts.o";

// The program's record in .bss: four u64 named by the global variable.
struct Seen {
    uint64_t a, b, c, d;
};

std::vector<uint8_t> bss_var(World& w, const Object& obj, std::string_view var) {
    // The variable's offset in .bss is its ELF symbol's value.
    std::optional<uint64_t> off;
    for (const auto& sym : obj.elf().symbols())
        if (sym.name == var) off = sym.value;
    REQUIRE(off);
    std::vector<uint8_t> value(obj.maps()[0].value_size);
    Map* bss = w.map(".bss");
    REQUIRE(bss);
    const uint32_t zero = 0;
    REQUIRE(bss->user_lookup(&zero, value.data()) == 0);
    return {value.begin() + *off, value.end()};
}

Seen seen(World& w, const Object& obj, std::string_view var) {
    const auto bytes = bss_var(w, obj, var);
    REQUIRE(bytes.size() >= sizeof(Seen));
    Seen s;
    std::memcpy(&s, bytes.data(), sizeof s);
    return s;
}

std::vector<uint8_t> context(const Object& obj, std::string_view prog, const ContextSpec& spec, const WorldOptions& wo = {}) {
    const ProgramDef* def = obj.find_program(prog);
    REQUIRE(def);
    auto c = build_context(def->type, def->attach, spec, wo);
    if (!c) FAIL(c.error().describe());
    return *c;
}

}  // namespace

TEST_CASE("kprobe programs read pt_regs: arguments in di, si, dx and registers by name", "[contexts]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    ContextSpec spec;
    spec.args = {static_cast<uint64_t>(-100), 0x1000, 7};
    spec.fields = {{"ip", 0xffffffff81000000ull}};
    const auto ctx = context(*obj, "on_unlinkat", spec);
    CHECK(ctx.size() == 168);   // sizeof(struct pt_regs) on x86-64
    auto r = (*w)->run_ctx("on_unlinkat", ctx);
    REQUIRE(r);
    REQUIRE_FALSE(r->result.trap);
    const Seen s = seen(**w, *obj, "kprobe_seen");
    CHECK(static_cast<int64_t>(s.a) == -100);   // int dfd, sign-extended
    CHECK(s.b == 0x1000);
    CHECK(s.c == 7);
    CHECK(s.d == 0xffffffff81000000ull);

    // kretprobe: PT_REGS_RC is ax; "ret", "rax" and "ax" name it.
    for (const char* name : {"ret", "rax", "ax"}) {
        ContextSpec rs;
        rs.fields = {{name, static_cast<uint64_t>(-2)}};
        REQUIRE((*w)->run_ctx("on_unlinkat_ret", context(*obj, "on_unlinkat_ret", rs)));
        CHECK(static_cast<int64_t>(seen(**w, *obj, "kretprobe_seen").a) == -2);
    }
}

TEST_CASE("tracing contexts are read-only at run time", "[contexts]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    auto r = (*w)->run_ctx("write_regs", context(*obj, "write_regs", {}));
    REQUIRE(r);
    REQUIRE(r->result.trap);
    CHECK_THAT(r->result.trap->message, Catch::Contains("ctx"));
    auto ok = (*w)->run_ctx("on_unlinkat", context(*obj, "on_unlinkat", {}));
    REQUIRE(ok);
    CHECK_FALSE(ok->result.trap);
}

TEST_CASE("syscall tracepoints get their record: header, __syscall_nr from the name, arguments", "[contexts]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    WorldOptions wo;
    wo.pid = 4242;
    auto w = World::create(*obj, wo);
    REQUIRE(w);
    ContextSpec spec;
    spec.args = {static_cast<uint64_t>(-100), 0x2000, 0x241};
    auto ctx = context(*obj, "on_openat", spec, wo);
    CHECK(ctx.size() == 48);   // header, __syscall_nr and openat's four arguments
    REQUIRE((*w)->run_ctx("on_openat", ctx));
    Seen s = seen(**w, *obj, "tp_seen");
    CHECK(s.a == 4242);   // common_pid: the world's pid
    CHECK(s.b == 257);    // __NR_openat on x86-64
    CHECK(static_cast<int64_t>(s.c) == -100);
    CHECK(s.d == 0x241);

    ContextSpec exit_spec;
    exit_spec.fields = {{"ret", static_cast<uint64_t>(-13)}};
    auto r = (*w)->run_ctx("on_openat_exit", context(*obj, "on_openat_exit", exit_spec, wo));
    REQUIRE(r);
    CHECK(r->result.r0 == 1);
    s = seen(**w, *obj, "exit_seen");
    CHECK(s.a == 257);
    CHECK(static_cast<int64_t>(s.b) == -13);

    // Arguments by their names, and as arg0..arg3.
    ContextSpec named;
    named.fields = {{"dfd", 7}, {"flags", 0x80000}, {"arg3", 0644}};
    ctx = context(*obj, "on_openat", named, wo);
    REQUIRE((*w)->run_ctx("on_openat", ctx));
    s = seen(**w, *obj, "tp_seen");
    CHECK(s.c == 7);
    CHECK(s.d == 0x80000);
    uint64_t mode = 0;
    std::memcpy(&mode, ctx.data() + 40, 8);
    CHECK(mode == 0644);

    // Fields that are not in the record are refused with the list of those that are.
    ContextSpec bad;
    bad.fields = {{"pathname", 1}};
    const ProgramDef* def = obj->find_program("on_openat");
    auto e = build_context(def->type, def->attach, bad, wo);
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error().message(), Catch::Contains("no field 'pathname'") && Catch::Contains("__syscall_nr") &&
                                        Catch::Contains("filename"));
    // Openat has four arguments: a fifth is refused.
    ContextSpec many;
    many.args.assign(5, 1);
    auto too_many = build_context(def->type, def->attach, many, wo);
    REQUIRE_FALSE(too_many);
    CHECK_THAT(too_many.error().message(), Catch::Contains("4"));
    // A string for a pointer argument needs simulated user memory (a world with a kernel BTF).
    ContextSpec text;
    text.strings = {{"filename", "/etc/passwd"}};
    auto no_mem = build_context(def->type, def->attach, text, wo);
    REQUIRE_FALSE(no_mem);
    CHECK_THAT(no_mem.error().message(), Catch::Contains("kernel BTF"));
    // A number for a field is not text, nor text for a number.
    ContextSpec word;
    word.strings = {{"flags", "O_RDONLY"}};
    auto not_text = build_context(def->type, def->attach, word, wo);
    REQUIRE_FALSE(not_text);
    CHECK_THAT(not_text.error().message(), Catch::Contains("flags") && Catch::Contains("number"));
}

namespace {
std::shared_ptr<const btf::Btf> corpus_vmlinux() {
    static auto vmlinux = load_kernel_btf(fs::path(BPFSIM_CORPUS_DIR) / "vmlinux-6.18.44.btf");
    REQUIRE(vmlinux);
    return *vmlinux;
}

std::vector<uint8_t> context_in(World& w, std::string_view prog, const ContextSpec& spec) {
    const ProgramDef* def = w.object().find_program(prog);
    REQUIRE(def);
    auto c = build_context(def->type, def->attach, spec, w.options(), w.has_kernel() ? &w.kernel() : nullptr);
    if (!c) FAIL(c.error().describe());
    return *c;
}

std::string c_string(const std::vector<uint8_t>& bytes, std::size_t off, std::size_t max) {
    std::string s;
    for (std::size_t i = off; i < off + max && i < bytes.size() && bytes[i]; ++i) s.push_back(static_cast<char>(bytes[i]));
    return s;
}
}  // namespace

TEST_CASE("tracepoint records come from the kernel BTF: __data_loc strings, char arrays, event classes", "[contexts][tracepoint]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    WorldOptions wo;
    wo.pid = 900;
    wo.kernel_btf = corpus_vmlinux();
    auto w = World::create(*obj, wo);
    REQUIRE(w);

    SECTION("sched_process_exec: struct trace_event_raw_sched_process_exec, filename after the fixed part") {
        ContextSpec spec;
        spec.fields = {{"pid", 4242}, {"old_pid", 4241}};
        spec.strings = {{"filename", "/usr/bin/ls"}};
        const auto ctx = context_in(**w, "on_exec", spec);
        // The fixed part is 20 bytes (header 8, __data_loc 4, pid 4, old_pid 4); the string
        // and its NUL follow at __data, offset 20, as the kernel stores dynamic fields.
        uint32_t loc = 0;
        std::memcpy(&loc, ctx.data() + 8, 4);
        const uint32_t off = loc & 0xffff, len = loc >> 16;
        CHECK(off == 20);
        CHECK(len == 12);   // "/usr/bin/ls" and its NUL
        REQUIRE(ctx.size() >= off + len);
        CHECK(c_string(ctx, off, len) == "/usr/bin/ls");
        int32_t common_pid = 0;
        std::memcpy(&common_pid, ctx.data() + 4, 4);
        CHECK(common_pid == 900);

        REQUIRE((*w)->run_ctx("on_exec", ctx));
        const auto seen_bytes = bss_var(**w, *obj, "exec_seen");
        uint64_t v[3];
        std::memcpy(v, seen_bytes.data(), sizeof v);
        CHECK(v[0] == 4242);
        CHECK(v[1] == 4241);
        CHECK(v[2] == loc);
        CHECK(c_string(seen_bytes, 24, 32) == "/usr/bin/ls");
    }

    SECTION("sched_process_exit: struct trace_event_raw_sched_process_exit, comm as text") {
        ContextSpec spec;
        spec.fields = {{"pid", 31337}, {"prio", 120}, {"group_dead", 1}};
        spec.strings = {{"comm", "a-very-long-command-name"}};
        const auto ctx = context_in(**w, "on_exit", spec);
        CHECK(ctx.size() >= 33);
        REQUIRE((*w)->run_ctx("on_exit", ctx));
        const auto seen_bytes = bss_var(**w, *obj, "exit_task_seen");
        uint64_t v[3];
        std::memcpy(v, seen_bytes.data(), sizeof v);
        CHECK(v[0] == 31337);
        CHECK(v[1] == 120);
        CHECK(v[2] == 1);
        // A char[16] holds 15 characters and the NUL.
        CHECK(c_string(seen_bytes, 24, 16) == "a-very-long-com");
    }

    SECTION("unknown fields name the record's struct and list its fields") {
        ContextSpec spec;
        spec.fields = {{"ppid", 1}};
        const ProgramDef* def = obj->find_program("on_exit");
        auto e = build_context(def->type, def->attach, spec, (*w)->options(), &(*w)->kernel());
        REQUIRE_FALSE(e);
        CHECK_THAT(e.error().message(), Catch::Contains("no field 'ppid'") && Catch::Contains("comm[16], pid, prio, group_dead") &&
                                            Catch::Contains("struct trace_event_raw_sched_process_exit"));
        ContextSpec number_as_text;
        number_as_text.strings = {{"pid", "init"}};
        CHECK_FALSE(build_context(def->type, def->attach, number_as_text, (*w)->options(), &(*w)->kernel()));
    }

    SECTION("an event of a class (sched_wakeup of sched_wakeup_template) is laid out by its class's struct") {
        ContextSpec spec;
        spec.fields = {{"pid", 77}, {"prio", 100}, {"target_cpu", 1}};
        spec.strings = {{"comm", "kworker/0:1"}};
        auto c = build_context(ProgType::Tracepoint, "sched/sched_wakeup", spec, (*w)->options(), &(*w)->kernel());
        REQUIRE(c);
        // comm[16] at 8, pid at 24, prio at 28, target_cpu at 32 (this kernel's layout).
        CHECK(c_string(*c, 8, 16) == "kworker/0:1");
        int32_t v[3];
        std::memcpy(v, c->data() + 24, sizeof v);
        CHECK(v[0] == 77);
        CHECK(v[1] == 100);
        CHECK(v[2] == 1);
        ContextSpec bad;
        bad.fields = {{"success", 1}};
        auto e = build_context(ProgType::Tracepoint, "sched/sched_wakeup", bad, (*w)->options(), &(*w)->kernel());
        REQUIRE_FALSE(e);
        CHECK_THAT(e.error().message(), Catch::Contains("trace_event_raw_sched_wakeup_template"));
    }

    SECTION("sys_enter_openat: a string for filename is put in user memory, probe_read_user_str reads it") {
        ContextSpec spec;
        spec.fields = {{"dfd", static_cast<uint64_t>(-100)}, {"flags", 0x241}};
        spec.strings = {{"filename", "/tmp/bpfsim-test"}};
        const auto ctx = context_in(**w, "on_openat_name", spec);
        uint64_t ptr = 0;
        std::memcpy(&ptr, ctx.data() + 24, 8);
        CHECK(ptr != 0);
        REQUIRE((*w)->run_ctx("on_openat_name", ctx));
        const auto seen_bytes = bss_var(**w, *obj, "openat_seen");
        uint64_t v[3];
        std::memcpy(v, seen_bytes.data(), sizeof v);
        CHECK(static_cast<int64_t>(v[0]) == -100);
        CHECK(v[1] == 0x241);
        CHECK(static_cast<int64_t>(v[2]) == 17);   // the length with its NUL
        CHECK(c_string(seen_bytes, 24, 64) == "/tmp/bpfsim-test");
    }
}

TEST_CASE("raw_tp and fentry programs get u64 argument arrays", "[contexts]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    ContextSpec spec;
    spec.args = {1, 2, 3};
    auto ctx = context(*obj, "on_switch", spec);
    CHECK(ctx.size() == 24);
    REQUIRE((*w)->run_ctx("on_switch", ctx));
    const Seen s = seen(**w, *obj, "raw_tp_seen");
    CHECK((s.a == 1 && s.b == 2 && s.c == 3));

    // Reading past the arguments given is a fault, as the kernel's verifier would refuse it.
    ContextSpec one;
    one.args = {9};
    auto r = (*w)->run_ctx("on_switch", context(*obj, "on_switch", one));
    REQUIRE(r);
    CHECK(r->result.trap);

    ContextSpec fs_;
    fs_.fields = {{"arg0", 5}, {"arg1", 6}};
    auto fr = (*w)->run_ctx("fentry_unlinkat", context(*obj, "fentry_unlinkat", fs_));
    REQUIRE(fr);
    REQUIRE_FALSE(fr->result.trap);
    const Seen f = seen(**w, *obj, "fentry_seen");
    CHECK((f.a == 5 && f.b == 6));
}

TEST_CASE("perf_event programs get bpf_perf_event_data", "[contexts]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    ContextSpec spec;
    spec.fields = {{"sample_period", 4000}, {"addr", 0x1234}, {"rip", 0x42}};
    auto ctx = context(*obj, "on_sample", spec);
    CHECK(ctx.size() == 184);
    REQUIRE((*w)->run_ctx("on_sample", ctx));
    const Seen s = seen(**w, *obj, "perf_seen");
    CHECK(s.a == 4000);
    CHECK(s.b == 0x1234);
    CHECK(s.c == 0x42);
    // OFFSET:SIZE writes anywhere in the context.
    ContextSpec raw;
    raw.fields = {{"168:8", 77}};
    REQUIRE((*w)->run_ctx("on_sample", context(*obj, "on_sample", raw)));
    CHECK(seen(**w, *obj, "perf_seen").a == 77);
    ContextSpec bad;
    bad.fields = {{"168:3", 1}};
    const ProgramDef* def = obj->find_program("on_sample");
    CHECK_FALSE(build_context(def->type, def->attach, bad, {}));
}

TEST_CASE("__kconfig externs are laid out in a .kconfig map and filled from the world's config", "[contexts][kconfig]") {
    auto obj = Object::open(kContexts);
    REQUIRE(obj);
    const auto& vars = obj->kconfig();
    REQUIRE(vars.size() == 6);
    auto find = [&](std::string_view n) {
        auto it = std::find_if(vars.begin(), vars.end(), [&](const KconfigVar& v) { return v.name == n; });
        REQUIRE(it != vars.end());
        return *it;
    };
    CHECK(find("CONFIG_BPF_JIT").kind == KconfigVar::Kind::Bool);
    CHECK(find("CONFIG_TUN").kind == KconfigVar::Kind::Tristate);
    CHECK(find("CONFIG_DEFAULT_HOSTNAME").kind == KconfigVar::Kind::CharArray);
    CHECK(find("CONFIG_HZ").kind == KconfigVar::Kind::Int);
    CHECK(find("CONFIG_HZ").is_signed);
    CHECK(find("CONFIG_MISSING_BUT_WEAK").weak);
    CHECK_FALSE(find("CONFIG_HZ").weak);
    for (const auto& v : vars)   // naturally aligned, inside the map's value
        if (v.kind == KconfigVar::Kind::Int || v.kind == KconfigVar::Kind::Tristate) CHECK(v.offset % v.size == 0);

    WorldOptions wo;
    wo.kconfig = {{"CONFIG_HZ", "250"}, {"CONFIG_BPF_JIT", "y"}, {"CONFIG_TUN", "m"}, {"CONFIG_DEFAULT_HOSTNAME", "\"(none)\""}};
    wo.kernel_version = (5u << 16) | (15u << 8) | 3;
    auto w = World::create(*obj, wo);
    REQUIRE(w);
    auto r = (*w)->run_ctx("read_kconfig", {});
    REQUIRE(r);
    REQUIRE_FALSE(r->result.trap);
    const Seen s = seen(**w, *obj, "kconfig_seen");
    CHECK(s.a == 250);
    CHECK(s.b == 1);
    CHECK(s.c == 2);   // TRI_MODULE
    CHECK(s.d == ((5u << 16) | (15u << 8) | 3));
    const auto raw = bss_var(**w, *obj, "kconfig_seen");
    uint64_t weak = 1;
    std::memcpy(&weak, raw.data() + 32, 8);
    CHECK(weak == 0);   // __weak and not configured
    CHECK(std::string(reinterpret_cast<const char*>(raw.data()) + 40) == "(none)");

    // The .kconfig map is read-only to programs, like .rodata.
    CHECK(obj->maps().back().frozen);

    // A strong extern without a value: programs that read .kconfig cannot be bound; others run.
    WorldOptions missing;
    auto w2 = World::create(*obj, missing);
    REQUIRE(w2);
    auto c = (*w2)->compiled("read_kconfig");
    REQUIRE_FALSE(c);
    CHECK_THAT(c.error().describe(), Catch::Contains("CONFIG_HZ") && Catch::Contains("no value"));
    CHECK((*w2)->compiled("on_switch"));

    // Values of the wrong kind are refused with the variable's name.
    WorldOptions wrong = wo;
    wrong.kconfig["CONFIG_BPF_JIT"] = std::string{"m"};   // a bool cannot be a module (a std::string: GCC 12 -Wrestrict false positive on "m")
    auto w3 = World::create(*obj, wrong);
    REQUIRE(w3);
    auto c3 = (*w3)->compiled("read_kconfig");
    REQUIRE_FALSE(c3);
    CHECK_THAT(c3.error().describe(), Catch::Contains("CONFIG_BPF_JIT"));
    wrong = wo;
    wrong.kconfig["CONFIG_HZ"] = std::string{"lots"};
    auto w4 = World::create(*obj, wrong);
    REQUIRE(w4);
    CHECK_FALSE((*w4)->compiled("read_kconfig"));
}

TEST_CASE("map contents round-trip through bpftool-shaped JSON", "[contexts][mapio]") {
    const fs::path obj_path = BPFSIM_CORPUS_DIR "/xdp_counter.o";
    auto obj = Object::open(obj_path);
    REQUIRE(obj);
    WorldOptions wo;
    wo.ncpus = 2;
    auto w = World::create(*obj, wo);
    REQUIRE(w);
    const fs::path tmp = fs::temp_directory_path() / "bpfsim_map_init_test.json";
    // Fill the first map that has keys with two entries, given three ways.
    std::size_t idx = obj->maps().size();
    for (std::size_t i = 0; i < obj->maps().size(); ++i)
        if (obj->maps()[i].key_size == 4 && obj->maps()[i].max_entries >= 2 && obj->maps()[i].origin == MapDef::Origin::Btf) idx = i;
    REQUIRE(idx < obj->maps().size());
    const MapDef& d = obj->maps()[idx];
    {
        std::ofstream f(tmp);
        f << "{\"" << d.name << "\": [{\"key\": 1, \"value\": 5}, {\"key\": [\"0x00\", \"0x00\", \"0x00\", \"0x00\"], \"value\": \"";
        for (uint32_t i = 0; i < d.value_size; ++i) f << (i ? " " : "") << (i == 0 ? "07" : "00");
        f << "\"}]}";
    }
    auto n = load_map_init(**w, tmp);
    if (!n) FAIL(n.error().describe());
    CHECK(*n == 2);
    Map* m = (*w)->map_at(idx);
    auto entries = dump_map(*m, wo.ncpus);
    const std::string j = map_dump_json(d, entries, wo.ncpus);
    CHECK_THAT(j, Catch::Contains("\"key\":[\"0x01\",\"0x00\",\"0x00\",\"0x00\"]"));
    CHECK_THAT(j, Catch::Contains("\"0x05\""));
    CHECK_THAT(j, Catch::Contains("\"0x07\""));

    // The dump itself loads into a fresh world and gives the same contents.
    {
        std::ofstream f(tmp);
        f << "{\"" << d.name << "\": " << j << "}";
    }
    auto w2 = World::create(*obj, wo);
    REQUIRE(w2);
    REQUIRE(load_map_init(**w2, tmp));
    CHECK(dump_map(*(*w2)->map_at(idx), wo.ncpus) == entries);

    // Errors name the file, map and entry.
    auto bad = [&](const std::string& text, const std::string& expect) {
        std::ofstream(tmp) << text;
        auto r = load_map_init(**w, tmp);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().describe(), Catch::Contains(expect));
    };
    bad("{\"nosuch\": []}", "no map 'nosuch'");
    bad("{\"" + d.name + "\": [{\"key\": \"01 00\", \"value\": 1}]}", "entry 0 key: 2 bytes");
    bad("{\"" + d.name + "\": [{\"key\": 1}]}", "no \"value\"");
    bad("{\"" + d.name + "\": [{\"key\": 4294967296, \"value\": 1}]}", "does not fit");
    bad("[1, 2", "not valid JSON");
    fs::remove(tmp);
}
