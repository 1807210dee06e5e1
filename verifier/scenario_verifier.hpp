// The verifier model as a scenario's verifier (harness::VerifierFn): `expect.verifier` and the
// kernel selftests' __success / __failure / __msg annotations are checked against
// verifier::verify, with the program linked (CO-RE included) as the world links it.
#pragma once

#include "harness/scenario.hpp"
#include "verifier/verifier.hpp"

namespace bpfsim::verifier {

inline harness::VerifierFn scenario_verifier(unsigned log_level = 1) {
    return [log_level](const harness::Object& obj, std::string_view prog,
                       const harness::WorldOptions& world) -> Result<harness::VerifierVerdict> {
        return catch_error([&]() -> harness::VerifierVerdict {
            btf::CoreTargets targets;
            targets.main = world.kernel_btf.get();
            if (world.kernel_btf) targets.main_name = world.kernel_btf->name();
            auto lp = obj.link(prog, &targets);
            if (!lp) throw lp.error();
            VerifyOptions o;
            o.log_level = log_level;
            o.kernel_btf = world.kernel_btf.get();
            const Verdict v = verify(obj, *lp, o);
            return {v.accepted, v.message, v.pc, v.source_line, v.log};
        });
    };
}

}  // namespace bpfsim::verifier
