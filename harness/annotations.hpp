// Kernel selftest annotations inside BPF C source: the tags of the kernel's bpf_misc.h,
// btf_decl_tag("comment:test_...") attributes on a program's function, which .BTF keeps as
// DECL_TAG types. `bpfsim test prog.bpf.o` turns them into a scenario (one step per program).
//
//   __success                 comment:test_expect_success
//   __failure                 comment:test_expect_failure
//   __msg("...")              comment:test_expect_msg=...       (verifier log lines, in order)
//   __retval(N)               comment:test_retval=N             (also INT_MIN, POINTER_VALUE, ...)
//   __description("...")      comment:test_description=...
//   __auxiliary               comment:test_auxiliary            (loaded, not run: tail call targets)
//   __log_level(N), __flag(F) comment:test_log_level=N, comment:test_prog_flags=F
//   the *_unpriv variants     comment:test_expect_success_unpriv, ...
#pragma once

#include "common/error.hpp"
#include "harness/scenario.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bpfsim::harness {

struct Annotations {
    enum class Expect { Unspecified, Success, Failure };
    Expect expect = Expect::Unspecified;
    std::vector<std::string> messages;    // __msg, in source order
    std::optional<int64_t> retval;        // __retval
    bool auxiliary = false;
    std::optional<int> log_level;
    std::vector<std::string> flags;       // __flag(BPF_F_...)
    // The unprivileged variants, kept as given (bpfsim runs everything privileged).
    Expect expect_unpriv = Expect::Unspecified;
    std::vector<std::string> messages_unpriv;
    std::optional<int64_t> retval_unpriv;
    std::vector<std::string> other;       // comment:test_* tags not understood, verbatim
};

struct AnnotatedProgram {
    std::string program;       // the function (ProgramDef::name)
    std::string description;   // __description, or the function name
    Annotations notes;
    bool annotated() const;    // has any test_* tag
};

// The annotations of every program of the object, in program order; programs without any
// tag are included (annotated() false). Errors: a malformed value (__retval(abc)) names the
// object, the program and the tag.
Result<std::vector<AnnotatedProgram>> read_annotations(const Object& obj);

// The object's own expectations as a scenario (its file is the object): one step per
// annotated program that is not __auxiliary, named by its __description, in program order.
// A step expects the verifier's verdict (__failure: reject, with the __msg lines; otherwise
// accept) and, with __retval, the return value. Packet programs get TEST_DATA_LEN (64) zero
// bytes, as the kernel's test loader passes; other programs their default context. Error
// (NotFound) when no program is annotated.
Result<Scenario> annotations_scenario(const std::filesystem::path& object);

// A __retval value: a number (decimal, 0x hex, negative), or one of the names the kernel's
// selftests use: INT_MIN, INT_MAX, UINT_MAX, POINTER_VALUE, TEST_DATA_LEN, XDP_*, TC_ACT_*,
// SK_DROP/SK_PASS; nullopt otherwise.
std::optional<int64_t> parse_retval(const std::string& text);

}  // namespace bpfsim::harness
