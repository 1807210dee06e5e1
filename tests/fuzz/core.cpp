// CO-RE: a fuzzed object's relocations against a recorded kernel BTF (this machine's
// vmlinux, corpus/btf/vmlinux-6.18.44.btf.xz) or a made-up older layout
// (corpus/btf/old_task_struct.c), as the loader applies them when linking, and the minimal
// BTF `btf record` writes for the object, which must parse and give the same relocations.
#include "tests/fuzz/fuzz.hpp"

#include "btf/record.hpp"

#include <fmt/format.h>

namespace bpfsim::fuzz {

namespace {

const btf::Btf& kernel_btf(bool old) {
    static const auto load = [](const char* name) {
        auto b = harness::load_kernel_btf(corpus_dir() / name);
        if (!b) {
            fmt::print(stderr, "core: cannot load the kernel BTF: {}\n", b.error().describe());
            std::abort();
        }
        return *b;
    };
    static const std::shared_ptr<const btf::Btf> vmlinux = load("vmlinux-6.18.44.btf");
    static const std::shared_ptr<const btf::Btf> older = load("old_task_struct.o");
    return old ? *older : *vmlinux;
}

}  // namespace

void core(Bytes data) {
    const btf::Btf& target = kernel_btf(data.size() % 2 == 1);
    auto file = harness::ElfFile::from_bytes(std::vector<uint8_t>(data.begin(), data.end()), "fuzz.o");
    if (!file) return check_error(file.error(), "ElfFile::from_bytes");
    auto obj = harness::Object::from_elf(std::move(*file));
    if (!obj) return check_error(obj.error(), "Object::from_elf");
    btf::CoreTargets targets;
    targets.main = &target;
    targets.main_name = target.name();
    std::vector<std::pair<std::string, std::vector<vm::Insn>>> linked;
    for (const auto& p : obj->programs()) {
        auto lp = obj->link(p.name, &targets);
        if (!lp) {
            check_error(lp.error(), "Object::link");
            continue;
        }
        for (const auto& [pc, why] : lp->core_poisoned)
            if (pc >= lp->prog.insns.size() || why.empty()) violation(fmt::format("poisoned pc {} of {} insns without a reason", pc, lp->prog.insns.size()));
        linked.emplace_back(p.name, lp->prog.insns);
    }
    if (!obj->btf() || !obj->btf_ext()) return;
    auto min = btf::record_min_btf(target, {{obj->btf(), obj->btf_ext()}});
    if (!min) return check_error(min.error(), "record_min_btf");
    auto small = btf::Btf::parse(*min, "recorded.btf");
    if (!small) violation(fmt::format("the recorded BTF does not parse: {}", small.error().describe()));
    // Relocating against the recorded BTF gives the same instructions.
    btf::CoreTargets small_targets;
    small_targets.main = &*small;
    small_targets.main_name = target.name();
    for (const auto& [name, insns] : linked) {
        auto lp = obj->link(name, &small_targets);
        if (!lp) violation(fmt::format("'{}' links against the kernel BTF but not against its recorded BTF: {}", name, lp.error().describe()));
        if (lp->prog.insns != insns) violation(fmt::format("'{}' relocates differently against the recorded BTF", name));
    }
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(core)
