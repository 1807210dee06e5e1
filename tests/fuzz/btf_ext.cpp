// .BTF.ext against its .BTF: input is a little-endian u32 length, that many bytes of BTF, then
// the .BTF.ext. The records that parse are then used as the loader uses them: CO-RE
// relocations computed with the object's BTF as its own target, and patched into a program.
#include "tests/fuzz/fuzz.hpp"

#include "btf/core.hpp"

#include <fmt/format.h>

namespace bpfsim::fuzz {

void btf_ext(Bytes data) {
    Reader r(data);
    const uint32_t len = r.u32();
    const Bytes btf_bytes = r.take(len);
    const Bytes ext_bytes = r.rest();
    auto b = btf::Btf::parse(btf_bytes, "fuzz.o");
    if (!b) return check_error(b.error(), "Btf::parse");
    auto ext = btf::parse_ext(ext_bytes, *b, "fuzz.o");
    if (!ext) return check_error(ext.error(), "parse_ext");
    for (const auto& name : ext->core_relo_order)
        if (!ext->find(name)) violation(fmt::format("core_relo_order names section '{}', which find() does not know", name));
    btf::CoreCandCache cache;
    for (const auto& sec : ext->sections) {
        for (const auto& f : sec.funcs)
            if (f.type_id >= b->count()) violation(fmt::format("func_info type {} out of range", f.type_id));
        std::size_t n = 0;
        for (const auto& rel : sec.relos) n = std::max(n, rel.insn + 2);
        if (n > 1 << 16) continue;
        std::vector<vm::Insn> insns(n);
        for (const auto& rel : sec.relos) {
            auto res = btf::core_relocate(*b, *b, rel, &cache, Location{"fuzz.o", sec.name, rel.insn, {}, {}});
            if (!res) {
                check_error(res.error(), "core_relocate");
                continue;
            }
            // An instruction of the shape the relocation patches, holding the expected value.
            vm::Insn& in = insns[rel.insn];
            in = vm::Insn{};
            in.code = 0xb7;   // mov64 imm
            in.imm = static_cast<int32_t>(res->orig_value);
            auto patched = btf::core_patch(insns.data(), insns.size(), rel.insn, rel, *res);
            if (!patched) check_error(patched.error(), "core_patch");
        }
    }
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(btf_ext)
