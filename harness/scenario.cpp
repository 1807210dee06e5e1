// Scenarios from YAML: the world, the steps, the expectations, and running them.
#include "harness/scenario.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <map>

namespace bpfsim::harness {
namespace fs = std::filesystem;
namespace {

struct Reader {
    fs::path file;

    [[noreturn]] void fail(const YAML::Node& n, const std::string& what) const {
        Location loc;
        loc.file = file.string();
        if (n.IsDefined() && n.Mark().line >= 0) loc.line = static_cast<std::size_t>(n.Mark().line) + 1;
        throw Error(ErrorCode::Parse, what, loc);
    }
    std::size_t line(const YAML::Node& n) const { return n.Mark().line >= 0 ? static_cast<std::size_t>(n.Mark().line) + 1 : 0; }

    std::string str(const YAML::Node& n, const char* what) const {
        if (!n.IsScalar()) fail(n, fmt::format("{}: expected a value", what));
        return n.Scalar();
    }
    uint64_t num(const YAML::Node& n, const char* what) const {
        const std::string s = str(n, what);
        const auto v = parse_integer(s);
        if (!v) fail(n, fmt::format("{}: '{}' is not a number", what, s));
        return *v;
    }
    void only(const YAML::Node& map, std::initializer_list<const char*> keys, const char* what) const {
        if (!map.IsMap()) fail(map, fmt::format("{}: expected a mapping", what));
        for (const auto& kv : map) {
            const std::string k = kv.first.Scalar();
            if (std::none_of(keys.begin(), keys.end(), [&](const char* x) { return k == x; })) {
                std::string known;
                for (const char* x : keys) known += (known.empty() ? "" : ", ") + std::string(x);
                fail(kv.first, fmt::format("{}: unknown key '{}' (known: {})", what, k, known));
            }
        }
    }
};

fs::path resolve(const fs::path& base, const std::string& rel, const std::vector<fs::path>& search) {
    const fs::path p(rel);
    if (p.is_absolute()) return p;
    if (fs::exists(base / p)) return base / p;
    for (const auto& s : search)
        if (fs::exists(s / p)) return s / p;
    return base / p;   // reported missing when opened
}

}  // namespace

std::optional<int64_t> parse_return_value(std::string_view text) {
    static const std::map<std::string_view, int64_t> names = {
        {"XDP_ABORTED", 0}, {"XDP_DROP", 1}, {"XDP_PASS", 2}, {"XDP_TX", 3}, {"XDP_REDIRECT", 4},
        {"TC_ACT_UNSPEC", -1}, {"TC_ACT_OK", 0}, {"TC_ACT_RECLASSIFY", 1}, {"TC_ACT_SHOT", 2}, {"TC_ACT_PIPE", 3},
        {"TC_ACT_STOLEN", 4}, {"TC_ACT_QUEUED", 5}, {"TC_ACT_REPEAT", 6}, {"TC_ACT_REDIRECT", 7}, {"TC_ACT_TRAP", 8},
        {"SK_DROP", 0}, {"SK_PASS", 1},
    };
    if (auto it = names.find(text); it != names.end()) return it->second;
    const std::string s(text);
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 0);
    if (s.empty() || *end || errno) return std::nullopt;
    return v;
}

Result<Scenario> load_scenario(const fs::path& file, const std::vector<fs::path>& search) {
    return catch_error([&]() -> Scenario {
        Reader r{file};
        Scenario s;
        s.file = file;
        YAML::Node doc;
        try {
            doc = YAML::LoadFile(file.string());
        } catch (const YAML::BadFile&) {
            Location loc;
            loc.file = file.string();
            throw Error(ErrorCode::Io, "cannot open the scenario", loc);
        } catch (const YAML::ParserException& e) {
            Location loc;
            loc.file = file.string();
            loc.line = static_cast<std::size_t>(e.mark.line) + 1;
            throw Error(ErrorCode::Parse, e.msg, loc);
        }
        r.only(doc, {"object", "btf", "world", "steps"}, "scenario");
        const fs::path base = file.parent_path();
        if (!doc["object"]) r.fail(doc, "scenario: no 'object' (the BPF object to test)");
        s.object = resolve(base, r.str(doc["object"], "object"), search);
        if (auto b = doc["btf"]) {
            if (b.IsSequence())
                for (const auto& e : b) s.btf.push_back(resolve(base, r.str(e, "btf"), search));
            else
                s.btf.push_back(resolve(base, r.str(b, "btf"), search));
        }
        if (auto w = doc["world"]) {
            r.only(w, {"seed", "clock_ns", "cpu", "ncpus", "pid", "comm", "uid", "gid", "kconfig", "tasks", "current", "map_init"}, "world");
            if (w["seed"]) s.world.seed = r.num(w["seed"], "seed");
            if (w["clock_ns"]) s.world.clock_ns = r.num(w["clock_ns"], "clock_ns");
            if (w["cpu"]) s.world.cpu = static_cast<unsigned>(r.num(w["cpu"], "cpu"));
            if (w["ncpus"]) s.world.ncpus = static_cast<unsigned>(r.num(w["ncpus"], "ncpus"));
            if (w["pid"]) s.world.pid = s.world.tgid = static_cast<uint32_t>(r.num(w["pid"], "pid"));
            if (w["comm"]) s.world.comm = r.str(w["comm"], "comm");
            if (w["uid"]) s.world.uid = static_cast<uint32_t>(r.num(w["uid"], "uid"));
            if (w["gid"]) s.world.gid = static_cast<uint32_t>(r.num(w["gid"], "gid"));
            if (auto k = w["kconfig"]) {
                if (!k.IsMap()) r.fail(k, "kconfig: expected CONFIG_NAME: value pairs");
                for (const auto& kv : k) s.world.kconfig[kv.first.Scalar()] = r.str(kv.second, "kconfig value");
            }
            if (auto m = w["map_init"]) s.map_init = resolve(base, r.str(m, "map_init"), search);
            if (auto ts = w["tasks"]) {
                if (!ts.IsSequence()) r.fail(ts, "tasks: expected a list");
                for (const auto& t : ts) {
                    r.only(t, {"name", "pid", "tgid", "comm", "parent", "uid", "gid", "fields"}, "task");
                    ScenarioTask task;
                    if (!t["pid"]) r.fail(t, "task: no 'pid'");
                    task.spec.pid = static_cast<uint32_t>(r.num(t["pid"], "pid"));
                    if (t["tgid"]) task.spec.tgid = static_cast<uint32_t>(r.num(t["tgid"], "tgid"));
                    if (t["comm"]) task.spec.comm = r.str(t["comm"], "comm");
                    if (t["uid"]) task.spec.uid = static_cast<uint32_t>(r.num(t["uid"], "uid"));
                    if (t["gid"]) task.spec.gid = static_cast<uint32_t>(r.num(t["gid"], "gid"));
                    if (t["parent"]) task.parent = r.str(t["parent"], "parent");
                    task.name = t["name"] ? r.str(t["name"], "name") : task.spec.comm;
                    if (auto f = t["fields"]) {
                        if (!f.IsMap()) r.fail(f, "fields: expected path: value pairs");
                        for (const auto& kv : f) {
                            const std::string v = r.str(kv.second, "field value");
                            const auto n = parse_integer(v);
                            const bool quoted = kv.second.Tag() == "!";
                            if (!quoted && n) task.spec.fields.emplace_back(kv.first.Scalar(), *n);
                            else task.spec.strings.emplace_back(kv.first.Scalar(), v);
                        }
                    }
                    for (const auto& other : s.tasks)
                        if (other.name == task.name) r.fail(t, fmt::format("task '{}' is defined twice", task.name));
                    s.tasks.push_back(std::move(task));
                }
                for (const auto& t : s.tasks)
                    if (!t.parent.empty() && std::none_of(s.tasks.begin(), s.tasks.end(), [&](const ScenarioTask& o) { return o.name == t.parent; }))
                        r.fail(ts, fmt::format("task '{}': no parent task named '{}'", t.name, t.parent));
            }
            if (w["current"]) s.current = r.str(w["current"], "current");
        }
        auto task_known = [&](const YAML::Node& n, const std::string& name) {
            if (std::none_of(s.tasks.begin(), s.tasks.end(), [&](const ScenarioTask& t) { return t.name == name; }))
                r.fail(n, fmt::format("no task named '{}' in world.tasks", name));
        };
        if (!s.current.empty()) task_known(doc["world"]["current"], s.current);

        const YAML::Node steps = doc["steps"];
        if (!steps || !steps.IsSequence() || steps.size() == 0) r.fail(doc, "scenario: 'steps' must be a non-empty list");
        for (const auto& st : steps) {
            r.only(st, {"name", "run", "current", "advance_ns", "args", "fields", "ctx", "packet", "expect"}, "step");
            ScenarioStep step;
            step.line = r.line(st);
            if (st["run"]) step.run = r.str(st["run"], "run");
            if (st["current"]) {
                step.current = r.str(st["current"], "current");
                task_known(st["current"], step.current);
            }
            if (st["advance_ns"]) step.advance_ns = r.num(st["advance_ns"], "advance_ns");
            if (step.run.empty() && step.current.empty() && !step.advance_ns) r.fail(st, "step: give 'run', 'current' or 'advance_ns'");
            step.name = st["name"] ? r.str(st["name"], "name") : step.run.empty() ? "world change" : step.run;
            if (auto a = st["args"]) {
                if (!a.IsSequence()) r.fail(a, "args: expected a list");
                for (const auto& v : a) step.ctx.args.push_back(r.num(v, "args"));
            }
            if (auto f = st["fields"]) {
                if (!f.IsMap()) r.fail(f, "fields: expected name: value pairs");
                for (const auto& kv : f) step.ctx.fields.emplace_back(kv.first.Scalar(), r.num(kv.second, "field"));
            }
            if (auto c = st["ctx"]) {
                auto b = parse_hex(r.str(c, "ctx"), "ctx");
                if (!b) r.fail(c, b.error().message());
                step.ctx.raw = *b;
            }
            if (auto p = st["packet"]) {
                auto b = parse_hex(r.str(p, "packet"), "packet");
                if (!b) r.fail(p, b.error().message());
                step.packet = *b;
            }
            if (auto e = st["expect"]) {
                if (step.run.empty()) r.fail(e, "expect: only a step that runs a program has expectations");
                r.only(e, {"return", "trace", "packet"}, "expect");
                if (e["return"]) {
                    step.expect.ret = r.str(e["return"], "return");
                    if (!parse_return_value(*step.expect.ret)) r.fail(e["return"], fmt::format("return: '{}' is neither a number nor a known action", *step.expect.ret));
                }
                if (auto t = e["trace"]) {
                    step.expect.trace_given = true;
                    if (t.IsScalar()) step.expect.trace.push_back(t.Scalar());
                    else if (t.IsSequence())
                        for (const auto& l : t) step.expect.trace.push_back(r.str(l, "trace line"));
                    else r.fail(t, "trace: expected a line or a list of lines");
                    for (const auto& l : step.expect.trace)
                        if (l.size() >= 2 && l.front() == '/' && l.back() == '/') {
                            try {
                                std::regex(l.substr(1, l.size() - 2));
                            } catch (const std::regex_error& ex) {
                                r.fail(t, fmt::format("trace: bad regular expression {}: {}", l, ex.what()));
                            }
                        }
                }
                if (auto p = e["packet"]) {
                    auto b = parse_hex(r.str(p, "packet"), "expect.packet");
                    if (!b) r.fail(p, b.error().message());
                    step.expect.packet = r.str(p, "packet");
                }
            }
            s.steps.push_back(std::move(step));
        }
        return s;
    });
}

bool ScenarioOutcome::passed() const {
    return !error && std::all_of(steps.begin(), steps.end(), [](const StepOutcome& s) { return s.passed; });
}

ScenarioOutcome run_scenario(const Scenario& s, std::size_t btf_index, const vm::RunOptions& ro) {
    ScenarioOutcome out;
    auto r = catch_error([&]() -> bool {
        auto obj = Object::open(s.object);
        if (!obj) throw obj.error();
        WorldOptions wo = s.world;
        if (!s.btf.empty()) {
            out.btf = s.btf.at(btf_index);
            auto k = load_kernel_btf(out.btf);
            if (!k) throw k.error();
            wo.kernel_btf = *k;
        }
        auto world = World::create(*obj, wo);
        if (!world) throw world.error();
        World& w = **world;
        if (!s.map_init.empty())
            if (auto n = load_map_init(w, s.map_init); !n) throw n.error();
        std::map<std::string, uint64_t> tasks;
        for (const auto& t : s.tasks) {   // parents first: they are created in file order, then linked
            auto addr = w.add_task(t.spec);
            if (!addr) {
                Error e = addr.error();
                e.where().file = s.file.string();
                throw e;
            }
            tasks[t.name] = *addr;
        }
        for (const auto& t : s.tasks)
            if (!t.parent.empty()) {
                KernelMemory& k = w.kernel();
                const uint32_t tt = k.type_id("task_struct");
                for (const char* link : {"real_parent", "parent"})
                    if (k.btf().member_by_name(k.btf().resolve(tt), link)) k.set(tasks[t.name], tt, link, tasks[t.parent]);
            }
        if (!s.current.empty()) w.current_task = tasks.at(s.current);
        for (const auto& st : s.steps) {
            if (!st.current.empty()) w.current_task = tasks.at(st.current);
            if (st.advance_ns) w.advance(*st.advance_ns);
            if (st.run.empty()) continue;
            StepOutcome so;
            so.name = st.name;
            const ProgramDef* def = obj->find_program(st.run);
            if (!def) {
                auto l = obj->link(st.run);
                Error e = l.error();
                e.where().file = s.file.string();
                e.where().line = st.line;
                throw e;
            }
            const CtxKind kind = ctx_kind(def->type);
            Result<ProgramRun> run = [&]() -> Result<ProgramRun> {
                if (kind == CtxKind::XdpMd || kind == CtxKind::SkBuff) {
                    if (!st.packet) throw Error(ErrorCode::Usage, fmt::format("{}:{}: program '{}' needs a 'packet'", s.file.string(), st.line, def->name));
                    return w.run_packet(def->name, *st.packet, ro);
                }
                auto ctx = build_context(def->type, def->attach, st.ctx, w.options());
                if (!ctx) {
                    Error e = ctx.error();
                    e.where().file = s.file.string();
                    e.where().line = st.line;
                    throw e;
                }
                return w.run_ctx(def->name, *ctx, ro);
            }();
            if (!run) throw run.error();
            for (const auto& t : run->trace) {
                std::string line = trace_pipe_line(t);
                if (!line.empty() && line.back() == '\n') line.pop_back();
                so.trace_lines.push_back(line);
            }
            const ProgramRun& pr = *run;
            if (pr.result.trap) {
                so.passed = false;
                so.failures.push_back("trap: " + pr.result.trap->message);
            }
            if (st.expect.ret) {
                const int64_t want = *parse_return_value(*st.expect.ret);
                const bool wide = def->type != ProgType::Xdp && def->type != ProgType::SchedCls && def->type != ProgType::SchedAct;
                const bool ok = wide ? static_cast<int64_t>(pr.result.r0) == want : static_cast<int32_t>(pr.result.r0) == static_cast<int32_t>(want);
                if (!ok) {
                    so.passed = false;
                    so.failures.push_back(fmt::format("return: expected {}, got {} ({})", *st.expect.ret, static_cast<int64_t>(pr.result.r0),
                                                      describe_return(def->type, pr.result.r0)));
                }
            }
            if (st.expect.trace_given) {
                std::vector<std::string> got;
                for (const auto& t : pr.trace) {
                    std::string m = t.message;
                    if (!m.empty() && m.back() == '\n') m.pop_back();
                    got.push_back(m);
                }
                bool ok = got.size() == st.expect.trace.size();
                for (std::size_t i = 0; ok && i < got.size(); ++i) {
                    const std::string& want = st.expect.trace[i];
                    if (want.size() >= 2 && want.front() == '/' && want.back() == '/')
                        ok = std::regex_search(got[i], std::regex(want.substr(1, want.size() - 2)));
                    else
                        ok = got[i] == want;
                }
                if (!ok) {
                    so.passed = false;
                    std::string diff = "trace:";
                    for (const auto& l : st.expect.trace) diff += "\n    - expected: " + l;
                    for (const auto& l : got) diff += "\n    + got:      " + l;
                    if (got.empty()) diff += "\n    + got:      (no trace lines)";
                    so.failures.push_back(diff);
                }
            }
            if (st.expect.packet) {
                auto want = parse_hex(*st.expect.packet, "expect.packet");
                if (want && *want != pr.packet) {
                    so.passed = false;
                    std::string g;
                    for (auto b : pr.packet) g += fmt::format("{:02x}", b);
                    so.failures.push_back(fmt::format("packet: expected {}, got {}", *st.expect.packet, g));
                }
            }
            so.run = std::move(run.value());
            out.steps.push_back(std::move(so));
        }
        return true;
    });
    if (!r) out.error = r.error();
    return out;
}

}  // namespace bpfsim::harness
