// `btf record` (btf/record.hpp): the minimal kernel BTF for objects' CO-RE relocations.
// Relocating every relocation of an object against the minimal BTF must give what the full
// kernel BTF gives; the minimal BTF must be small, keep only the members used, work as the
// kernel BTF of a world and a scenario, and bad input must give clear errors.
#include "btf/core.hpp"
#include "btf/record.hpp"
#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;
const fs::path kShared = BPFSIM_SHARED_DIR;
const fs::path kSource = BPFSIM_SOURCE_DIR;
const fs::path kVmlinux = kCorpus / "vmlinux-6.18.44.btf";

const btf::Btf& full_btf() {
    static const std::shared_ptr<const btf::Btf> b = [] {
        auto r = load_kernel_btf(kVmlinux);
        REQUIRE(r);
        return *r;
    }();
    return *b;
}

// A relocation's outcome in terms that do not depend on type ids (which the minimal BTF
// renumbers): the values, poisoning, sizes, and the target type's spelling.
struct Outcome {
    std::string error;
    bool poison = false, validate = false, fail_memsz_adjust = false;
    uint64_t orig_value = 0, new_value = 0;
    uint32_t orig_size = 0, new_size = 0;
    std::string target;
    bool operator==(const Outcome&) const = default;
};

std::string describe(const Outcome& o) {
    if (!o.error.empty()) return "error: " + o.error;
    return fmt::format("poison={} validate={} orig={} new={} sizes {}->{} memsz_fail={} target='{}'", o.poison, o.validate, o.orig_value,
                       o.new_value, o.orig_size, o.new_size, o.fail_memsz_adjust, o.target);
}

struct Relocated {
    std::string where;   // "section pc N kind"
    btf::CoreReloKind kind;
    Outcome out;
};

// Every CO-RE relocation of the object against `target`, with one candidate cache, in
// .BTF.ext order (as libbpf and record_min_btf compute them).
std::vector<Relocated> relocate_all(const btf::Btf& local, const btf::Ext& ext, const btf::Btf& target) {
    std::vector<Relocated> out;
    btf::CoreCandCache cache;
    for (const auto& name : ext.core_relo_order) {
        const btf::ExtSection* sec = ext.find(name);
        if (!sec) continue;
        for (const btf::CoreRelo& r : sec->relos) {
            Relocated rel{fmt::format("{} pc {} {} {}", name, r.insn, btf::core_kind_str(r.kind), r.access), r.kind, {}};
            auto res = btf::core_relocate(local, target, r, &cache);
            if (!res) {
                rel.out.error = res.error().message();
            } else {
                rel.out.poison = res->poison;
                rel.out.validate = res->validate;
                rel.out.fail_memsz_adjust = res->fail_memsz_adjust;
                rel.out.orig_value = res->orig_value;
                rel.out.new_value = res->new_value;
                rel.out.orig_size = res->orig_size;
                rel.out.new_size = res->new_size;
                if (res->target_type) rel.out.target = target.type_name(res->target_type);
                // A kernel type id: compare the type it names, not the number.
                if (r.kind == btf::CoreReloKind::TypeIdTarget) {
                    rel.out.target += " / " + (res->new_value ? target.type_name(static_cast<uint32_t>(res->new_value)) : std::string("-"));
                    rel.out.new_value = res->new_value != 0;
                }
            }
            out.push_back(std::move(rel));
        }
    }
    return out;
}

// The object's .BTF.ext without the relocations that fail against the full BTF (a failed
// relocation fails the whole record, as it fails libbpf's load).
btf::Ext without_failing(const btf::Btf& local, btf::Ext ext, std::size_t* dropped) {
    btf::CoreCandCache cache;
    for (auto& sec : ext.sections) {
        std::vector<btf::CoreRelo> keep;
        for (const auto& r : sec.relos) {
            if (btf::core_relocate(local, full_btf(), r, &cache))
                keep.push_back(r);
            else
                ++*dropped;
        }
        sec.relos = std::move(keep);
    }
    return ext;
}

btf::Btf parse_min(const std::vector<uint8_t>& bytes) {
    auto b = btf::Btf::parse(bytes, "<min>");
    REQUIRE(b);
    return std::move(*b);
}

fs::path temp_path(const std::string& name) {
    return fs::temp_directory_path() / fmt::format("bpfsim-record-{}-{}", ::getpid(), name);
}

void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

// The bpfsim command next to the corpus directory (build/bpfsim), its exit code and output.
const fs::path kBpfsim = kCorpus.parent_path() / "bpfsim";
std::pair<int, std::string> run_cli(const std::string& args) {
    std::string out;
    FILE* p = ::popen(fmt::format("'{}' {} 2>&1", kBpfsim.string(), args).c_str(), "r");
    REQUIRE(p);
    std::array<char, 4096> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int st = ::pclose(p);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}
}  // namespace

TEST_CASE("a recorded minimal BTF relocates every CO-RE relocation as the full kernel BTF does", "[btf][record]") {
    struct Case {
        fs::path path;
        bool filter;   // drop the relocations that fail against the full BTF first
    };
    const std::vector<Case> cases = {
        {kCorpus / "trace_exec.o", false},
        {kCorpus / "core_bitfields.o", false},
        {kCorpus / "core_enums.o", false},
        {kCorpus / "core_matches.o", false},
        {kCorpus / "core_task.o", true},
        {kShared / "corpus/ebpf-samples/cilium-examples/tcprtt_bpf_bpfel.o", false},
        {kShared / "corpus/ebpf-samples/cilium-examples/tcprtt_sockops_bpf_bpfel.o", false},
    };
    const auto full_size = fs::file_size(kVmlinux);
    std::size_t total = 0;
    for (const auto& c : cases) {
        INFO(c.path.string());
        auto obj = Object::open(c.path);
        REQUIRE(obj);
        REQUIRE(obj->btf());
        REQUIRE(obj->btf_ext());
        std::size_t dropped = 0;
        const btf::Ext ext = c.filter ? without_failing(*obj->btf(), *obj->btf_ext(), &dropped) : *obj->btf_ext();
        if (c.filter) CHECK(dropped > 0);   // core_task.o has a type_size of a struct without a size

        btf::RecordStats st;
        auto bytes = btf::record_min_btf(full_btf(), {{obj->btf(), &ext}}, {}, &st);
        REQUIRE(bytes);
        const btf::Btf min = parse_min(*bytes);
        CHECK(bytes->size() * 100 < full_size);   // well under 1% of the kernel's BTF
        CHECK(st.objects == 1);
        CHECK(st.types == min.count() - 1);
        CHECK(st.matched > 0);

        const auto want = relocate_all(*obj->btf(), ext, full_btf());
        const auto got = relocate_all(*obj->btf(), ext, min);
        REQUIRE(want.size() == got.size());
        CHECK(st.relocations == want.size());
        std::size_t matched = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            INFO(want[i].where << "\n  full: " << describe(want[i].out) << "\n  min:  " << describe(got[i].out));
            CHECK(want[i].out == got[i].out);
            CHECK(want[i].out.error.empty());
            if (!want[i].out.target.empty()) ++matched;
        }
        CHECK(matched > 0);
        total += want.size();
    }
    CHECK(total > 150);
}

TEST_CASE("a minimal BTF keeps only the members the relocations use, with the kernel's offsets", "[btf][record]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    auto bytes = btf::record_min_btf(full_btf(), {{obj->btf(), obj->btf_ext()}});
    REQUIRE(bytes);
    const btf::Btf min = parse_min(*bytes);
    const auto ts = min.find("task_struct", btf::Kind::Struct);
    REQUIRE(ts);
    const btf::Type t = min.type(*ts);
    REQUIRE(t.vlen() == 2);   // task->pid and task->comm only
    std::set<std::string> names;
    for (uint32_t i = 0; i < t.vlen(); ++i) names.insert(std::string(t.member(i).name));
    CHECK(names == std::set<std::string>{"pid", "comm"});

    const auto fts = full_btf().find("task_struct", btf::Kind::Struct);
    REQUIRE(fts);
    CHECK(full_btf().type(*fts).vlen() > 100);
    CHECK(t.size() == full_btf().type(*fts).size());
    for (const char* m : {"pid", "comm"}) {
        INFO(m);
        CHECK(min.member_by_name(*ts, m)->bit_offset == full_btf().member_by_name(*fts, m)->bit_offset);
        CHECK(min.type_name(min.member_by_name(*ts, m)->type) == full_btf().type_name(full_btf().member_by_name(*fts, m)->type));
    }
    // Nothing else of the kernel: pid_t's chain and char [16]'s, no other struct.
    std::size_t structs = 0;
    for (uint32_t id = 1; id < min.count(); ++id) structs += min.type(id).kind() == btf::Kind::Struct;
    CHECK(structs == 1);
    CHECK(min.count() - 1 <= 8);
}

TEST_CASE("objects' minimal BTFs combine; a member's pointer to a type nothing keeps becomes void *", "[btf][record]") {
    auto a = Object::open(kCorpus / "trace_exec.o");
    auto b = Object::open(kCorpus / "core_bitfields.o");
    REQUIRE(a);
    REQUIRE(b);
    btf::RecordStats st;
    auto both = btf::record_min_btf(full_btf(), {{a->btf(), a->btf_ext()}, {b->btf(), b->btf_ext()}}, {}, &st);
    auto one = btf::record_min_btf(full_btf(), {{b->btf(), b->btf_ext()}});
    REQUIRE(both);
    REQUIRE(one);
    CHECK(st.objects == 2);
    CHECK(both->size() > one->size());
    const btf::Btf min = parse_min(*both);
    // Both objects' relocations against the combined file give the full BTF's results.
    for (const Object* o : {&*a, &*b}) {
        const auto want = relocate_all(*o->btf(), *o->btf_ext(), full_btf());
        const auto got = relocate_all(*o->btf(), *o->btf_ext(), min);
        REQUIRE(want.size() == got.size());
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(want[i].out == got[i].out);
    }
    // Every pointer kept points at a kept type or at void.
    for (uint32_t id = 1; id < min.count(); ++id) {
        const btf::Type t = min.type(id);
        if (t.kind() == btf::Kind::Ptr) CHECK(t.type() < min.count());
    }
}

TEST_CASE("a recorded minimal BTF works as the kernel BTF of a world and of a scenario", "[btf][record][demo]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    auto bytes = btf::record_min_btf(full_btf(), {{obj->btf(), obj->btf_ext()}});
    REQUIRE(bytes);
    const fs::path min_path = temp_path("trace_exec.btf");
    write_file(min_path, *bytes);
    struct Cleanup {
        fs::path p;
        ~Cleanup() { fs::remove(p); }
    } cleanup{min_path};
    auto min = load_kernel_btf(min_path);
    REQUIRE(min);
    auto full = load_kernel_btf(kVmlinux);
    REQUIRE(full);

    // The program, linked against each, runs the same.
    auto lines = [&](std::shared_ptr<const btf::Btf> kernel) {
        WorldOptions wo;
        wo.kernel_btf = kernel;
        auto w = World::create(*obj, wo);
        REQUIRE(w);
        btf::CoreTargets t;
        t.main = kernel.get();
        auto lp = obj->link("trace_exec", &t);
        REQUIRE(lp);
        CHECK(lp->core_poisoned.empty());
        std::vector<std::string> out;
        TaskSpec ts;
        ts.pid = 4242;
        ts.comm = "sh";
        auto task = (*w)->add_task(ts);
        REQUIRE(task);
        (*w)->current_task = *task;
        auto r = (*w)->run_ctx("trace_exec", {});
        REQUIRE(r);
        REQUIRE_FALSE(r->result.trap);
        for (const auto& e : r->trace) out.push_back(trace_pipe_line(e));
        return std::make_pair(lp->prog.insns, out);
    };
    const auto [full_insns, full_lines] = lines(*full);
    const auto [min_insns, min_lines] = lines(*min);
    REQUIRE(full_lines.size() == 1);
    CHECK_THAT(full_lines[0], Catch::Contains("exec: 4242 sh\n"));
    CHECK(min_lines == full_lines);
    REQUIRE(min_insns.size() == full_insns.size());
    for (std::size_t i = 0; i < min_insns.size(); ++i) {
        INFO("insn " << i);
        CHECK(min_insns[i].off == full_insns[i].off);
        CHECK(min_insns[i].imm == full_insns[i].imm);
    }

    // The seed scenario against the minimal BTF: its steps pass, with the same lines.
    auto s = load_scenario(kSource / "corpus/demo/trace_exec.yaml", {kCorpus});
    REQUIRE(s);
    s->btf = {kVmlinux, min_path};
    const ScenarioOutcome a = run_scenario(*s, 0), b = run_scenario(*s, 1);
    INFO((b.error ? b.error->describe() : std::string()));
    CHECK(a.passed());
    CHECK(b.passed());
    REQUIRE(a.steps.size() == b.steps.size());
    std::size_t traced = 0;
    for (std::size_t i = 0; i < a.steps.size(); ++i) {
        CHECK(a.steps[i].trace_lines == b.steps[i].trace_lines);
        traced += b.steps[i].trace_lines.size();
    }
    CHECK(traced == 3);
}

TEST_CASE("btf record: bad input gives errors naming the file, section and instruction", "[btf][record]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    const btf::Btf& local = *obj->btf();

    SECTION("an object without .BTF.ext") {
        auto r = btf::record_min_btf(full_btf(), {{&local, nullptr}});
        REQUIRE_FALSE(r);
        CHECK(r.error().code() == ErrorCode::NotFound);
        CHECK_THAT(r.error().describe(), Catch::Contains(local.name()) && Catch::Contains(".BTF.ext"));
    }
    SECTION("a relocation of a type the object's BTF does not have") {
        btf::Ext ext = *obj->btf_ext();
        btf::ExtSection* sec = nullptr;
        for (auto& s : ext.sections)
            if (!s.relos.empty()) sec = &s;
        REQUIRE(sec);
        sec->relos[0].type_id = 999999;
        auto r = btf::record_min_btf(full_btf(), {{&local, &ext}});
        REQUIRE_FALSE(r);
        const std::string d = r.error().describe();
        CHECK_THAT(d, Catch::Contains(local.name()) && Catch::Contains(sec->name) && Catch::Contains("999999"));
        CHECK(r.error().where().pc == sec->relos[0].insn);
    }
    SECTION("an access string through a member that does not exist") {
        btf::Ext ext = *obj->btf_ext();
        for (auto& s : ext.sections)
            for (auto& rel : s.relos) rel.access = "0:9999";
        auto r = btf::record_min_btf(full_btf(), {{&local, &ext}});
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().describe(), Catch::Contains(local.name()) && Catch::Contains("section"));
    }
    SECTION("a relocation libbpf fails (type_size of a struct without a size): no output") {
        auto task = Object::open(kCorpus / "core_task.o");
        REQUIRE(task);
        auto r = btf::record_min_btf(full_btf(), {{task->btf(), task->btf_ext()}});
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().describe(), Catch::Contains("core_task.o") && Catch::Contains("type_size") && Catch::Contains("pc "));
    }
    SECTION("an object without CO-RE relocations adds nothing: an empty, valid BTF") {
        btf::Ext ext = *obj->btf_ext();
        for (auto& s : ext.sections) s.relos.clear();
        auto r = btf::record_min_btf(full_btf(), {{&local, &ext}});
        REQUIRE(r);
        CHECK(r->size() == 25);   // the header and the empty string
        CHECK(parse_min(*r).count() == 1);
    }
}

TEST_CASE("bpfsim btf record on the command line: output, and clear errors", "[btf][record][cli]") {
    if (!fs::exists(kBpfsim)) {
        WARN("SKIP: " << kBpfsim << " is not built");
        return;
    }
    const fs::path out = temp_path("cli.btf");
    const std::string obj = (kCorpus / "trace_exec.o").string();
    {
        const auto [rc, text] = run_cli(fmt::format("btf record --from '{}' --for '{}' -o '{}'", kVmlinux.string(), obj, out.string()));
        CHECK(rc == 0);
        CHECK_THAT(text, Catch::Contains("2 CO-RE relocations (2 matched) of 1 object"));
        auto obj_ = Object::open(obj);
        REQUIRE(obj_);
        auto direct = btf::record_min_btf(full_btf(), {{obj_->btf(), obj_->btf_ext()}});
        REQUIRE(direct);
        std::ifstream f(out, std::ios::binary);
        const std::vector<uint8_t> written((std::istreambuf_iterator<char>(f)), {});
        CHECK(written == *direct);
        fs::remove(out);
    }
    {   // An object with .BTF and no .BTF.ext (old_task_struct.o is made to stand in for a kernel).
        const auto [rc, text] = run_cli(fmt::format("btf record --from '{}' --for '{}' -o '{}'", kVmlinux.string(),
                                                    (kCorpus / "old_task_struct.o").string(), out.string()));
        CHECK(rc != 0);
        CHECK_THAT(text, Catch::Contains("old_task_struct.o") && Catch::Contains("no .BTF.ext section"));
        CHECK_FALSE(fs::exists(out));
        fs::remove(out);
    }
    {   // A truncated object and a corrupt kernel BTF.
        std::ifstream f(obj, std::ios::binary);
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
        const fs::path bad = temp_path("truncated.o");
        write_file(bad, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2)));
        auto [rc, text] = run_cli(fmt::format("btf record --from '{}' --for '{}' -o '{}'", kVmlinux.string(), bad.string(), out.string()));
        CHECK(rc != 0);
        CHECK(rc < 128);   // an error, not a crash
        CHECK_THAT(text, Catch::Contains(bad.string()));
        const fs::path badk = temp_path("corrupt.btf");
        write_file(badk, std::vector<uint8_t>{0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0});
        std::tie(rc, text) = run_cli(fmt::format("btf record --from '{}' --for '{}' -o '{}'", badk.string(), obj, out.string()));
        CHECK(rc != 0);
        CHECK(rc < 128);
        CHECK_THAT(text, Catch::Contains(badk.string()));
        CHECK_FALSE(fs::exists(out));
        fs::remove(bad);
        fs::remove(badk);
    }
    {   // An output that cannot be written.
        const auto [rc, text] = run_cli(fmt::format("btf record --from '{}' --for '{}' -o /nonexistent-dir/x.btf", kVmlinux.string(), obj));
        CHECK(rc != 0);
        CHECK_THAT(text, Catch::Contains("/nonexistent-dir/x.btf") && Catch::Contains("cannot create"));
    }
    {   // Missing options.
        const auto [rc, text] = run_cli(fmt::format("btf record --for '{}' -o '{}'", obj, out.string()));
        CHECK(rc != 0);
        CHECK_THAT(text, Catch::Contains("--from"));
    }
}
