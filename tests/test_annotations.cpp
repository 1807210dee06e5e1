// Kernel selftest annotations (bpf_misc.h's btf_decl_tag "comment:test_*") read from .BTF.
#include "harness/annotations.hpp"
#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace bpfsim;
using namespace bpfsim::harness;
namespace fs = std::filesystem;

namespace {
const fs::path kAnnotations = BPFSIM_CORPUS_DIR "/feat_annotations.o";

const AnnotatedProgram& find(const std::vector<AnnotatedProgram>& all, std::string_view name) {
    for (const auto& p : all)
        if (p.program == name) return p;
    FAIL("no program " << name);
    throw;
}
}  // namespace

TEST_CASE("annotations: every program with its bpf_misc.h tags, in source order", "[annotations]") {
    auto obj = Object::open(kAnnotations);
    REQUIRE(obj);
    auto all = read_annotations(*obj);
    REQUIRE(all);
    REQUIRE(all->size() == obj->programs().size());

    const auto& pass = find(*all, "xdp_pass");
    CHECK(pass.description == "xdp: a packet passes");
    CHECK(pass.notes.expect == Annotations::Expect::Success);
    CHECK(pass.notes.retval == 2);   // XDP_PASS
    CHECK(pass.annotated());

    const auto& len = find(*all, "socket_len");
    CHECK(len.notes.retval == 50);

    const auto& tc = find(*all, "tc_counts");
    CHECK(tc.description == "tc_counts");   // no __description: the function's name
    CHECK(tc.notes.retval == -1);

    const auto& bad = find(*all, "xdp_past_end");
    CHECK(bad.notes.expect == Annotations::Expect::Failure);
    CHECK(bad.notes.messages == std::vector<std::string>{"invalid access to packet"});
    CHECK(bad.notes.log_level == 2);
    CHECK_FALSE(bad.notes.retval);

    CHECK(find(*all, "helper_target").notes.auxiliary);
    CHECK_FALSE(find(*all, "not_annotated").annotated());
}

TEST_CASE("annotations: __retval values as the selftests write them", "[annotations]") {
    CHECK(parse_retval("0") == 0);
    CHECK(parse_retval("-22") == -22);
    CHECK(parse_retval("0xffff") == 0xffff);
    CHECK(parse_retval("INT_MIN") == -2147483648LL);
    CHECK(parse_retval("-INT_MAX") == -2147483647LL);
    CHECK(parse_retval("UINT_MAX") == 4294967295LL);
    CHECK(parse_retval("POINTER_VALUE") == 0xcafe4a11);
    CHECK(parse_retval("TC_ACT_SHOT") == 2);
    CHECK(parse_retval("(XDP_TX)") == 3);
    CHECK_FALSE(parse_retval("1 << 3"));
    CHECK_FALSE(parse_retval("abc"));
    CHECK_FALSE(parse_retval(""));
}

TEST_CASE("annotations: an object's own expectations run as a scenario", "[annotations][scenario]") {
    auto s = annotations_scenario(kAnnotations);
    REQUIRE(s);
    // Annotated programs that are not __auxiliary, in program order (by section, as libbpf).
    REQUIRE(s->steps.size() == 4);
    CHECK(s->steps[0].name == "xdp: a packet passes");
    CHECK(s->steps[0].run == "xdp_pass");
    CHECK(s->steps[0].expect.ret == "2");
    REQUIRE(s->steps[0].packet);
    CHECK(s->steps[0].packet->size() == 64);
    const auto& reject = s->steps[1];
    CHECK(reject.run == "xdp_past_end");
    REQUIRE(reject.expect.verifier);
    CHECK_FALSE(reject.expect.verifier->accept);
    CHECK(reject.expect.verifier->messages == std::vector<std::string>{"invalid access to packet"});
    CHECK(s->steps[2].run == "socket_len");
    CHECK(s->steps[3].name == "tc_counts");

    const ScenarioOutcome out = run_scenario(*s);
    REQUIRE_FALSE(out.error);
    REQUIRE(out.steps.size() == 4);
    for (std::size_t i : {0, 2, 3}) {
        INFO(out.steps[i].name);
        CHECK(out.steps[i].passed);
        CHECK(out.steps[i].failures.empty());
        CHECK_FALSE(out.steps[i].skipped);
    }
    REQUIRE(out.steps[2].run);
    CHECK(out.steps[2].run->result.r0 == 50);   // socket_len: 64 bytes less the Ethernet header
    // A rejection is a verifier verdict: not run, reported as not checked.
    CHECK(out.steps[1].passed);
    CHECK_FALSE(out.steps[1].run);
    REQUIRE(out.steps[1].skipped);
    CHECK_THAT(*out.steps[1].skipped, Catch::Contains("reject 'xdp_past_end'") && Catch::Contains("invalid access to packet"));

    // A wrong __retval fails like a scenario's `return`.
    s->steps[0].expect.ret = std::string("1");   // (a string literal here trips GCC 12 -Wrestrict)
    const ScenarioOutcome wrong = run_scenario(*s);
    REQUIRE(wrong.steps.size() == 4);
    CHECK_FALSE(wrong.steps[0].passed);
    CHECK_FALSE(wrong.passed());
}

TEST_CASE("annotations: an object without annotations is an error naming it", "[annotations]") {
    auto s = annotations_scenario(BPFSIM_CORPUS_DIR "/xdp_counter.o");
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().describe(), Catch::Contains("xdp_counter.o") && Catch::Contains("no program has test annotations"));
}
