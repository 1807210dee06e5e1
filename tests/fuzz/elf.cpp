// ELF loader: ElfFile and Object from bytes, every program linked, bound and compiled in a
// world. Malformed objects must give errors, never crash, hang or allocate without bound.
#include "tests/fuzz/fuzz.hpp"

namespace bpfsim::fuzz {

void elf(Bytes data) {
    auto file = harness::ElfFile::from_bytes(std::vector<uint8_t>(data.begin(), data.end()), "fuzz.o");
    if (!file) return check_error(file.error(), "ElfFile::from_bytes");
    for (const auto& p : file->programs()) {
        auto prog = file->program(p.name);
        if (!prog) check_error(prog.error(), "ElfFile::program");
    }
    auto obj = harness::Object::from_elf(std::move(*file));
    if (!obj) return check_error(obj.error(), "Object::from_elf");
    if (auto kb = obj->kernel_btf(); !kb) check_error(kb.error(), "Object::kernel_btf");
    auto world = harness::World::create(*obj);
    if (!world) check_error(world.error(), "World::create");
    for (const auto& p : obj->programs()) {
        auto lp = obj->link(p.name);
        if (!lp) {
            check_error(lp.error(), "Object::link");
            continue;
        }
        for (std::size_t pc = 0; pc < lp->prog.insns.size(); ++pc) (void)lp->prog.source_line(pc);
        if (!world) continue;
        auto bound = (*world)->bind(*lp);
        if (!bound) {
            check_error(bound.error(), "World::bind");
            continue;
        }
        if (auto c = (*world)->compiled(p.name); !c) check_error(c.error(), "World::compiled");
    }
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(elf)
