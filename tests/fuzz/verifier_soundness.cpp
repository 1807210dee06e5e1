// Verifier soundness: a generated program (fuzz bytes through a structured decoder, see
// generate()) in a BPF object with maps, judged by the verifier model; when accepted, it runs
// in the checked interpreter in a world with a context and packet of its type. An accepted
// program must never trap: a memory fault, a misaligned atomic, a bad call, too deep a call
// chain or a helper refusing its arguments is something the model let through that the
// kernel's verifier would not. Running out of instruction budget is fine.
#include "tests/fuzz/fuzz.hpp"

#include "verifier/ctx_access.hpp"
#include "verifier/verifier.hpp"

#include <fmt/format.h>

#include <cstring>

namespace bpfsim::fuzz {

void verifier_soundness(Bytes data) {
    // A mode byte (0 mod 8: the rest is raw instructions, as the conformance seeds are;
    // otherwise generated), the program type, the packet (or the start of the context).
    Reader r(data);
    const bool raw = r.u8() % 8 == 0;
    const auto targets = gen_targets();
    const GenTarget& t = targets[r.below(static_cast<uint32_t>(targets.size()))];
    const Bytes input = r.take(r.u8());
    ObjectSpec spec;
    if (raw) {
        Reader none({});
        spec = generate(none, t);   // the section and the maps
        spec.insns.clear();
        spec.map_refs.clear();
        const Bytes code = r.rest();
        for (std::size_t i = 0; i + 8 <= code.size(); i += 8) {
            uint64_t w = 0;
            std::memcpy(&w, code.data() + i, 8);
            spec.insns.push_back(vm::Insn::from_raw(w));
        }
        if (spec.insns.empty()) return;
    } else {
        spec = generate(r, t);
    }

    auto elf = harness::ElfFile::from_bytes(object_bytes(spec), "soundness.o");
    if (!elf) violation("the generated object does not open: " + elf.error().describe());
    auto obj = harness::Object::from_elf(std::move(*elf));
    if (!obj) violation("the generated object does not load: " + obj.error().describe());
    auto lp = obj->link("prog");
    if (!lp) return check_error(lp.error(), "Object::link");   // e.g. an invalid raw instruction

    verifier::VerifyOptions vo;
    vo.log_level = 0;
    // A lower limit only rejects more. (Loops the model cannot prune compare each new state
    // with up to 2048 kept ones: near the kernel's 1M limit that takes minutes under ASan.)
    vo.insn_limit = 20'000;
    const verifier::Verdict v = verifier::verify(*obj, *lp, vo);
    if (!v.accepted) return;

    harness::WorldOptions wo;
    wo.seed = 1;
    auto world = harness::World::create(*obj, wo);
    if (!world) violation("World::create: " + world.error().describe());
    vm::RunOptions ro;
    ro.budget = 200'000;
    Result<harness::ProgramRun> run = Error(ErrorCode::Internal, "not run");
    if (t.data_off >= 0) {
        std::vector<uint8_t> packet(input.begin(), input.end());
        if (packet.size() < 14) packet.resize(14);
        run = (*world)->run_packet("prog", packet, ro);
    } else {
        std::vector<uint8_t> ctx(verifier::ctx_size(t.type, ""), 0);
        std::copy_n(input.begin(), std::min(input.size(), ctx.size()), ctx.begin());
        run = (*world)->run_ctx("prog", ctx, ro);
    }
    if (!run) {
        // A helper the model knows but the world does not implement, and the like.
        if (run.error().code() == ErrorCode::Internal) violation("run: " + run.error().describe());
        return;
    }
    const auto& trap = run->result.trap;
    if (!trap || trap->kind == vm::TrapKind::Budget) return;
    violation(fmt::format("the verifier model accepted a {} program that traps ({}): {}\n{}", harness::to_string(t.type),
                          vm::to_string(trap->kind), trap->message, vm::disassemble_program(lp->prog.insns)));
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(verifier_soundness)
