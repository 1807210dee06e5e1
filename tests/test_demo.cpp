// The seed demo (corpus/demo/trace_exec.c) and CO-RE portability: the same object relocated
// against two kernels' BTF reads task_struct at different offsets and prints the same lines.
#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kCorpus = BPFSIM_CORPUS_DIR;
const fs::path kSource = BPFSIM_SOURCE_DIR;

std::vector<std::string> exec_lines(const Object& obj, std::shared_ptr<const btf::Btf> kernel, std::vector<vm::Insn>* linked) {
    WorldOptions wo;
    wo.kernel_btf = kernel;
    auto w = World::create(obj, wo);
    REQUIRE(w);
    btf::CoreTargets t;
    t.main = kernel.get();
    auto lp = obj.link("trace_exec", &t);
    REQUIRE(lp);
    CHECK(lp->core_relos == 2);   // task->pid, task->comm
    CHECK(lp->core_poisoned.empty());
    if (linked) *linked = lp->prog.insns;
    std::vector<std::string> out;
    for (auto [pid, comm] : {std::pair<uint32_t, const char*>{12345, "bash"}, {7, "kworker/0:1"}, {99, "sixteen-chars-xx"}}) {
        TaskSpec ts;
        ts.pid = pid;
        ts.comm = comm;
        auto task = (*w)->add_task(ts);
        REQUIRE(task);
        (*w)->current_task = *task;
        auto r = (*w)->run_ctx("trace_exec", {});
        REQUIRE(r);
        REQUIRE_FALSE(r->result.trap);
        for (const auto& e : r->trace) out.push_back(trace_pipe_line(e));
    }
    return out;
}
}  // namespace

TEST_CASE("trace_exec prints the current task's pid and comm, relocated against this machine's recorded BTF", "[demo][core]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    auto vmlinux = load_kernel_btf(kCorpus / "vmlinux-6.18.44.btf");
    REQUIRE(vmlinux);
    const auto lines = exec_lines(*obj, *vmlinux, nullptr);
    REQUIRE(lines.size() == 3);
    CHECK_THAT(lines[0], Catch::EndsWith("bpf_trace_printk: exec: 12345 bash\n\n"));   // the message's newline and the event's
    CHECK_THAT(lines[0], Catch::StartsWith("            bash-12345   [000]"));
    CHECK_THAT(lines[1], Catch::Contains("exec: 7 kworker/0:1\n"));
    CHECK_THAT(lines[2], Catch::Contains("exec: 99 sixteen-chars-x\n"));   // comm holds 15 characters
}

TEST_CASE("CO-RE portability: another task_struct layout, other offsets, the same output", "[demo][core]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    auto vmlinux = load_kernel_btf(kCorpus / "vmlinux-6.18.44.btf");
    auto old = load_kernel_btf(kCorpus / "old_task_struct.o");
    REQUIRE(vmlinux);
    REQUIRE(old);
    std::vector<vm::Insn> a, b;
    const auto la = exec_lines(*obj, *vmlinux, &a);
    const auto lb = exec_lines(*obj, *old, &b);
    CHECK(la == lb);
    REQUIRE(a.size() == b.size());
    // The relocated instructions: where pid and comm are in each kernel's task_struct.
    auto offsets = [](const std::vector<vm::Insn>& in) {
        std::vector<int64_t> o;
        for (const auto& i : in)
            if (i.code == 0xb7 && i.dst == 1) o.push_back(i.imm);   // r1 = offsetof(...)
        return o;
    };
    const auto oa = offsets(a), ob = offsets(b);
    REQUIRE(oa.size() == 2);
    REQUIRE(ob.size() == 2);
    CHECK(oa != ob);
    // In the old layout pid is the last field and comm follows 200 bytes of padding.
    const btf::Btf& ob_btf = **old;
    auto ts = ob_btf.find("task_struct", btf::Kind::Struct);
    REQUIRE(ts);
    CHECK(ob[0] == static_cast<int64_t>(ob_btf.member_by_name(*ts, "pid")->bit_offset / 8));
    CHECK(ob[1] == static_cast<int64_t>(ob_btf.member_by_name(*ts, "comm")->bit_offset / 8));
    const btf::Btf& va = **vmlinux;
    auto vts = va.find("task_struct", btf::Kind::Struct);
    REQUIRE(vts);
    CHECK(oa[0] == static_cast<int64_t>(va.member_by_name(*vts, "pid")->bit_offset / 8));
}

TEST_CASE("a program with CO-RE relocations needs a kernel BTF; a failed relocation stops the run naming it", "[demo][core]") {
    auto obj = Object::open(kCorpus / "trace_exec.o");
    REQUIRE(obj);
    auto w = World::create(*obj);
    REQUIRE(w);
    auto c = (*w)->compiled("trace_exec");
    REQUIRE_FALSE(c);
    CHECK_THAT(c.error().describe(), Catch::Contains("CO-RE relocations") && Catch::Contains("--btf"));

    // A kernel whose task_struct has no pid: the load is poisoned, and running it traps at
    // the poisoned instruction with the relocation's description.
    auto other = load_kernel_btf(kCorpus / "trace_contexts.o");   // no task_struct at all
    REQUIRE(other);
    WorldOptions wo;
    wo.kernel_btf = *other;
    auto w2 = World::create(*obj, wo);
    REQUIRE(w2);
    auto r = (*w2)->run_ctx("trace_exec", {});
    REQUIRE(r);
    REQUIRE(r->result.trap);
    CHECK_THAT(r->result.trap->message, Catch::Contains("poisoned") && Catch::Contains("CO-RE relocation #0") && Catch::Contains("task_struct"));
}

TEST_CASE("the seed scenario passes against both kernels", "[demo][scenario]") {
    auto sc = load_scenario(kSource / "corpus/demo/trace_exec.yaml", {kCorpus});
    if (!sc) FAIL(sc.error().describe());
    REQUIRE(sc->btf.size() == 2);
    for (std::size_t b = 0; b < 2; ++b) {
        auto out = run_scenario(*sc, b);
        if (out.error) FAIL(out.error->describe());
        REQUIRE(out.steps.size() == 3);
        for (const auto& st : out.steps) {
            INFO(st.name);
            for (const auto& f : st.failures) INFO(f);
            CHECK(st.passed);
        }
        CHECK(out.steps[0].trace_lines.at(0).find("exec: 12345 bash") != std::string::npos);
    }
}

TEST_CASE("scenario errors name the file and line", "[scenario]") {
    const fs::path tmp = fs::temp_directory_path() / "bpfsim_bad_scenario.yaml";
    auto bad = [&](const std::string& text, const std::string& expect) {
        std::ofstream(tmp) << text;
        auto sc = load_scenario(tmp, {kCorpus});
        REQUIRE_FALSE(sc);
        CHECK_THAT(sc.error().describe(), Catch::Contains(tmp.string()) && Catch::Contains(expect));
    };
    bad("object: trace_exec.o\nsteps:\n  - run: trace_exec\n    expect: {return: XDP_MAYBE}\n", "bpfsim_bad_scenario.yaml:4: return");
    bad("object: trace_exec.o\nsteps:\n  - run: trace_exec\n    expect: {return: XDP_MAYBE}\n", "neither a number nor a known action");
    bad("object: trace_exec.o\nworld:\n  tasks:\n    - {pid: 1, comm: a, parent: nobody}\nsteps:\n  - run: x\n", "no parent task named 'nobody'");
    bad("object: trace_exec.o\nsteps:\n  - run: x\n    frobnicate: 1\n", "unknown key 'frobnicate'");
    bad("object: trace_exec.o\nsteps: [\n", "bpfsim_bad_scenario.yaml:3: ");
    bad("object: trace_exec.o\nsteps:\n  - current: ghost\n", "no task named 'ghost'");
    fs::remove(tmp);
}
