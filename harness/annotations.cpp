// Kernel selftest annotations (bpf_misc.h) read from an object's .BTF DECL_TAGs.
#include "harness/annotations.hpp"

#include "btf/btf.hpp"
#include "harness/harness.hpp"
#include "harness/scenario.hpp"

#include <fmt/format.h>

#include <climits>
#include <map>

namespace bpfsim::harness {

namespace {
constexpr std::string_view kPrefix = "comment:test_";

// "expect_msg=text" -> {"expect_msg", "text"}; "expect_success" -> {"expect_success", ""}.
std::pair<std::string_view, std::string_view> split_tag(std::string_view tag) {
    const auto eq = tag.find('=');
    if (eq == std::string_view::npos) return {tag, {}};
    return {tag.substr(0, eq), tag.substr(eq + 1)};
}
}  // namespace

bool AnnotatedProgram::annotated() const {
    const Annotations& n = notes;
    return n.expect != Annotations::Expect::Unspecified || !n.messages.empty() || n.retval || n.auxiliary || n.log_level ||
           !n.flags.empty() || n.expect_unpriv != Annotations::Expect::Unspecified || !n.messages_unpriv.empty() ||
           n.retval_unpriv || !n.other.empty() || description != program;
}

std::optional<int64_t> parse_retval(const std::string& text) {
    static const std::map<std::string_view, int64_t> names = {
        {"INT_MIN", INT_MIN}, {"INT_MAX", INT_MAX}, {"UINT_MAX", static_cast<int64_t>(UINT_MAX)},
        {"POINTER_VALUE", 0xcafe4a11},   // bpf_misc.h
        {"TEST_DATA_LEN", 64},
    };
    std::string t;
    for (char c : text)
        if (c != ' ' && c != '\t') t.push_back(c);
    while (t.size() >= 2 && t.front() == '(' && t.back() == ')') t = t.substr(1, t.size() - 2);
    if (auto it = names.find(t); it != names.end()) return it->second;
    if (!t.empty() && t[0] == '-') {
        if (auto it = names.find(std::string_view(t).substr(1)); it != names.end()) return -it->second;
    }
    return parse_return_value(t);
}

Result<std::vector<AnnotatedProgram>> read_annotations(const Object& obj) {
    return catch_error([&]() -> std::vector<AnnotatedProgram> {
        std::vector<AnnotatedProgram> out;
        std::map<std::string, std::size_t, std::less<>> by_name;
        for (const ProgramDef& p : obj.programs()) {
            by_name.emplace(p.name, out.size());
            out.push_back({p.name, p.name, {}});
        }
        const btf::Btf* b = obj.btf();
        if (!b) return out;
        for (uint32_t id = 1; id < b->count(); ++id) {
            const btf::Type t = b->type(id);
            if (t.kind() != btf::Kind::DeclTag || t.component_idx() != -1) continue;
            const std::string_view tag = t.name();
            if (!tag.starts_with(kPrefix)) continue;
            const btf::Type target = b->type(t.type());
            if (target.kind() != btf::Kind::Func) continue;
            const auto it = by_name.find(target.name());
            if (it == by_name.end()) continue;   // a subprogram or a function that is not a program
            AnnotatedProgram& ap = out[it->second];
            Annotations& n = ap.notes;
            const auto [key, value] = split_tag(tag.substr(kPrefix.size()));
            auto bad = [&](std::string_view what) {
                Location loc;
                loc.file = obj.path();
                throw Error(ErrorCode::Parse, fmt::format("program '{}': annotation '{}': {}", ap.program, tag, what), loc);
            };
            if (key == "expect_success") n.expect = Annotations::Expect::Success;
            else if (key == "expect_failure") n.expect = Annotations::Expect::Failure;
            else if (key == "expect_msg") n.messages.emplace_back(value);
            else if (key == "expect_success_unpriv") n.expect_unpriv = Annotations::Expect::Success;
            else if (key == "expect_failure_unpriv") n.expect_unpriv = Annotations::Expect::Failure;
            else if (key == "expect_msg_unpriv") n.messages_unpriv.emplace_back(value);
            else if (key == "description") ap.description = std::string(value);
            else if (key == "auxiliary" || key == "auxiliary_unpriv") n.auxiliary = true;
            else if (key == "prog_flags") n.flags.emplace_back(value);
            else if (key == "retval" || key == "retval_unpriv") {
                const auto v = parse_retval(std::string(value));
                if (!v) bad("the return value is neither a number nor a known name");
                (key == "retval" ? n.retval : n.retval_unpriv) = *v;
            } else if (key == "log_level") {
                const auto v = parse_integer(value);
                if (!v || *v > 7) bad("the log level is not a number from 0 to 7");
                n.log_level = static_cast<int>(*v);
            } else {
                n.other.emplace_back(tag);
            }
        }
        // clang emits a function's DECL_TAGs in the attributes' source order, so the ids
        // walked in ascending order keep the __msg lines in the order they are written.
        return out;
    });
}

Result<Scenario> annotations_scenario(const std::filesystem::path& object) {
    return catch_error([&]() -> Scenario {
        auto obj = Object::open(object);
        if (!obj) throw obj.error();
        auto notes = read_annotations(*obj);
        if (!notes) throw notes.error();
        Scenario s;
        s.file = object;
        s.object = object;
        for (const AnnotatedProgram& ap : *notes) {
            if (!ap.annotated() || ap.notes.auxiliary) continue;
            ScenarioStep st;
            st.name = ap.description;
            st.run = ap.program;
            ScenarioVerifierExpect ve;
            ve.accept = ap.notes.expect != Annotations::Expect::Failure;
            if (!ve.accept) ve.messages = ap.notes.messages;
            st.expect.verifier = std::move(ve);
            if (st.expect.verifier->accept) {
                if (ap.notes.retval) st.expect.ret = std::to_string(*ap.notes.retval);
                const ProgramDef* def = obj->find_program(ap.program);
                const CtxKind kind = def ? ctx_kind(def->type) : CtxKind::None;
                if (kind == CtxKind::XdpMd || kind == CtxKind::SkBuff) st.packet = std::vector<uint8_t>(64, 0);
            }
            s.steps.push_back(std::move(st));
        }
        if (s.steps.empty()) {
            Location loc;
            loc.file = object.string();
            throw Error(ErrorCode::NotFound,
                        "no program has test annotations (__success, __failure, __retval, __description: bpf_misc.h's btf_decl_tag attributes)", loc);
        }
        return s;
    });
}

}  // namespace bpfsim::harness
