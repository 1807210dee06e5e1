// Scenarios from YAML: the world, the steps, the expectations, and running them.
#include "harness/scenario.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
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
    bool boolean(const YAML::Node& n, const char* what) const {
        const std::string v = str(n, what);
        if (v == "true" || v == "yes" || v == "on") return true;
        if (v == "false" || v == "no" || v == "off") return false;
        fail(n, fmt::format("{}: expected true or false, not '{}'", what, v));
    }
    // A key, value or record, kept as given until the object's BTF encodes it.
    ScenarioValue value(const YAML::Node& n, const char* what) const {
        ScenarioValue v;
        v.line = line(n);
        if (n.IsScalar()) {
            v.text = n.Scalar();
            v.quoted = n.Tag() == "!";
        } else if (n.IsSequence()) {
            v.kind = ScenarioValue::Kind::List;
            for (const auto& e : n) v.items.push_back(value(e, what));
        } else if (n.IsMap()) {
            v.kind = ScenarioValue::Kind::Mapping;
            for (const auto& kv : n) v.fields.emplace_back(str(kv.first, what), value(kv.second, what));
        } else {
            fail(n, fmt::format("{}: expected a value", what));
        }
        return v;
    }
    // {key: K, value: V} / {key: K, values: [V, ...]} (values only for keyless maps).
    ScenarioEntry entry(const YAML::Node& n, const char* what, bool check_keys = true) const {
        if (check_keys) only(n, {"key", "value", "values"}, what);
        ScenarioEntry e;
        e.line = line(n);
        if (n["key"]) e.key = value(n["key"], "key");
        if (n["value"]) e.value = value(n["value"], "value");
        if (auto vs = n["values"]) {
            if (!vs.IsSequence()) fail(vs, fmt::format("{}: 'values' is a list of per-CPU values", what));
            if (n["value"]) fail(vs, fmt::format("{}: give 'value' (every CPU) or 'values' (per CPU), not both", what));
            for (const auto& v : vs) e.values.push_back(value(v, "values"));
        }
        if (!e.value && e.values.empty()) fail(n, fmt::format("{}: no 'value'", what));
        return e;
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
    // (a name the file system refuses, too long say, is not found here and reported when opened)
    std::error_code ec;
    if (fs::exists(base / p, ec)) return base / p;
    for (const auto& s : search)
        if (fs::exists(s / p, ec)) return s / p;
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

namespace {

// "@name" points to a world object or task (YAML wants it quoted: "@name"); "@@text" is the
// text "@text".
bool is_ref(const std::string& v) { return v.size() > 1 && v[0] == '@' && v[1] != '@'; }
std::string unescape_at(const std::string& v) { return v.starts_with("@@") ? v.substr(1) : v; }

// Fields by path (a task's, an object's, a step's context): numbers, text (char arrays, char
// pointers; quote a number meant as text) and "@name" pointers to other objects and tasks.
void read_object_fields(Reader& r, const YAML::Node& f, std::vector<std::pair<std::string, uint64_t>>& fields,
                        std::vector<std::pair<std::string, std::string>>& strings, std::vector<ScenarioRef>& refs) {
    if (!f.IsMap()) r.fail(f, "fields: expected path: value pairs");
    for (const auto& kv : f) {
        const std::string v = r.str(kv.second, "field value");
        const auto n = parse_integer(v);
        const bool quoted = kv.second.Tag() == "!";
        if (!quoted && n) fields.emplace_back(kv.first.Scalar(), *n);
        else if (is_ref(v)) refs.push_back({r.line(kv.second), kv.first.Scalar(), v.substr(1)});
        else strings.emplace_back(kv.first.Scalar(), unescape_at(v));
    }
}

// A step's packet: hex bytes, {pcap: FILE, index: N}, {file: FILE} (raw bytes), or header
// fields built by build_packet ({src, dst, proto, sport, dport, ttl, flags, vlan, src_mac,
// dst_mac, payload, payload_text}).
std::vector<uint8_t> read_step_packet(Reader& r, const YAML::Node& p, const fs::path& base, const std::vector<fs::path>& search) {
    if (!p.IsMap()) {
        auto b = parse_hex(r.str(p, "packet"), "packet");
        if (!b) r.fail(p, b.error().message());
        return *b;
    }
    if (auto pc = p["pcap"]) {
        r.only(p, {"pcap", "index"}, "packet");
        const fs::path path = resolve(base, r.str(pc, "pcap"), search);
        auto all = read_pcap(path.string());
        if (!all) r.fail(pc, all.error().describe());
        const uint64_t index = p["index"] ? r.num(p["index"], "index") : 0;
        if (index >= all->size()) r.fail(p["index"] ? p["index"] : pc, fmt::format("packet: {} has {} packets; index {} does not exist", path.string(), all->size(), index));
        return (*all)[index];
    }
    if (auto f = p["file"]) {
        r.only(p, {"file"}, "packet");
        const fs::path path = resolve(base, r.str(f, "file"), search);
        std::ifstream in(path, std::ios::binary);
        if (!in) r.fail(f, fmt::format("packet: cannot read {}", path.string()));
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    r.only(p, {"src", "dst", "proto", "sport", "dport", "ttl", "flags", "vlan", "src_mac", "dst_mac", "payload", "payload_text"}, "packet");
    PacketSpec spec;
    if (p["src"]) spec.src = r.str(p["src"], "src");
    if (p["dst"]) spec.dst = r.str(p["dst"], "dst");
    if (auto pr = p["proto"]) {
        static const std::map<std::string, uint8_t, std::less<>> names = {{"udp", 17}, {"tcp", 6}, {"icmp", 1}, {"icmp6", 58}, {"icmpv6", 58}, {"none", 59}};
        const std::string text = r.str(pr, "proto");
        if (auto it = names.find(text); it != names.end()) spec.protocol = it->second;
        else if (auto n = parse_integer(text); n && *n < 256) spec.protocol = static_cast<uint8_t>(*n);
        else r.fail(pr, fmt::format("packet: proto '{}': write udp, tcp, icmp, icmp6, none or a number below 256", text));
    }
    auto small = [&](const char* key, uint64_t max) -> std::optional<uint64_t> {
        auto n = p[key];
        if (!n) return std::nullopt;
        const uint64_t v = r.num(n, key);
        if (v > max) r.fail(n, fmt::format("packet: {} {} is larger than {}", key, v, max));
        return v;
    };
    if (auto v = small("sport", 0xffff)) spec.sport = static_cast<uint16_t>(*v);
    if (auto v = small("dport", 0xffff)) spec.dport = static_cast<uint16_t>(*v);
    if (auto v = small("ttl", 0xff)) spec.ttl = static_cast<uint8_t>(*v);
    if (auto v = small("vlan", 0xfff)) spec.vlan = static_cast<uint16_t>(*v);
    if (auto fl = p["flags"]) {
        // TCP flags: a number, or letters as tcpdump prints them (S, A, F, R, P, U).
        const std::string text = r.str(fl, "flags");
        if (auto n = parse_integer(text); n && *n < 256) {
            spec.tcp_flags = static_cast<uint8_t>(*n);
        } else {
            spec.tcp_flags = 0;
            for (char c : text) {
                const std::string_view letters = "FSRPAU";
                const auto bit = letters.find(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
                if (bit == std::string_view::npos) r.fail(fl, fmt::format("packet: flags '{}': a number or letters of FSRPAU", text));
                spec.tcp_flags |= static_cast<uint8_t>(1u << bit);
            }
        }
    }
    for (const auto& [key, mac] : {std::pair{"src_mac", &spec.src_mac}, std::pair{"dst_mac", &spec.dst_mac}}) {
        auto n = p[key];
        if (!n) continue;
        auto b = parse_hex(r.str(n, key), key);
        if (!b || b->size() != 6) r.fail(n, fmt::format("packet: {}: six bytes, as 02:00:00:00:00:01", key));
        std::copy(b->begin(), b->end(), mac->begin());
    }
    if (auto pl = p["payload"]) {
        auto b = parse_hex(r.str(pl, "payload"), "payload");
        if (!b) r.fail(pl, b.error().message());
        spec.payload = *b;
    }
    if (auto pt = p["payload_text"]) {
        if (p["payload"]) r.fail(pt, "packet: give payload or payload_text, not both");
        const std::string t = r.str(pt, "payload_text");
        spec.payload.assign(t.begin(), t.end());
    }
    auto built = build_packet(spec);
    if (!built) r.fail(p, built.error().message());
    return *built;
}

// A helper by its kernel name, with or without "bpf_"; -1 when there is none.
int32_t helper_by_name(std::string_view name) {
    const std::string_view bare = name.starts_with("bpf_") ? name.substr(4) : name;
    for (int32_t id = 0; !bare.empty() && id <= vm::kernel_helper_max_id(); ++id)
        if (vm::kernel_helper_name(id) == bare) return id;
    return -1;
}

// HELPER: calls pairs (expect.helpers, fuzz.max_helpers).
std::vector<ScenarioHelperExpect> read_helper_counts(const Reader& r, const YAML::Node& hs, const char* what) {
    if (!hs.IsMap()) r.fail(hs, fmt::format("{}: expected HELPER: calls pairs", what));
    std::vector<ScenarioHelperExpect> out;
    for (const auto& kv : hs) {
        ScenarioHelperExpect he;
        he.line = r.line(kv.first);
        he.name = r.str(kv.first, "helper");
        he.id = helper_by_name(he.name);
        if (he.id < 0) r.fail(kv.first, fmt::format("{}: no helper named '{}'", what, he.name));
        he.calls = r.num(kv.second, "helper calls");
        out.push_back(std::move(he));
    }
    return out;
}

// A line or a list of lines; /regex/ lines must compile.
std::vector<std::string> read_lines(const Reader& r, const YAML::Node& n, const char* what) {
    std::vector<std::string> out;
    if (n.IsScalar()) out.push_back(n.Scalar());
    else if (n.IsSequence())
        for (const auto& l : n) out.push_back(r.str(l, what));
    else r.fail(n, fmt::format("{}: expected a line or a list of lines", what));
    for (const auto& l : out)
        if (l.size() >= 2 && l.front() == '/' && l.back() == '/') {
            try {
                std::regex(l.substr(1, l.size() - 2));
            } catch (const std::regex_error& ex) {
                r.fail(n, fmt::format("{}: bad regular expression {}: {}", what, l, ex.what()));
            }
        }
    return out;
}

// fuzz: {return: [..], forbid_trace: [..], max_insns: N, max_helpers: {H: N}, maps: {M: {max_entries: N, absent: [..]}}}
ScenarioFuzz read_fuzz(const Reader& r, const YAML::Node& fz, const ScenarioStep& step) {
    if (step.run.empty()) r.fail(fz, "fuzz: only a step that runs a program can be fuzzed");
    r.only(fz, {"return", "forbid_trace", "max_insns", "max_helpers", "maps"}, "fuzz");
    ScenarioFuzz f;
    f.line = r.line(fz);
    if (auto rv = fz["return"]) {
        if (rv.IsScalar()) f.returns.push_back(rv.Scalar());
        else if (rv.IsSequence())
            for (const auto& v : rv) f.returns.push_back(r.str(v, "fuzz.return"));
        else r.fail(rv, "fuzz.return: expected a return value or a list of them");
        for (const auto& v : f.returns)
            if (!parse_return_value(v)) r.fail(rv, fmt::format("fuzz.return: '{}' is neither a number nor a known action", v));
    }
    if (auto t = fz["forbid_trace"]) f.forbid_trace = read_lines(r, t, "fuzz.forbid_trace");
    if (fz["max_insns"]) f.max_insns = r.num(fz["max_insns"], "fuzz.max_insns");
    if (auto hs = fz["max_helpers"]) f.max_helpers = read_helper_counts(r, hs, "fuzz.max_helpers");
    if (auto ms = fz["maps"]) {
        if (!ms.IsMap()) r.fail(ms, "fuzz.maps: expected MAP: {max_entries: N, absent: [keys]}");
        for (const auto& kv : ms) {
            ScenarioFuzzMap fm;
            fm.line = r.line(kv.first);
            fm.map = r.str(kv.first, "map name");
            r.only(kv.second, {"max_entries", "absent"}, "fuzz.maps entry");
            if (kv.second["max_entries"]) fm.max_entries = r.num(kv.second["max_entries"], "max_entries");
            if (auto a = kv.second["absent"]) {
                if (!a.IsSequence()) r.fail(a, "absent: expected a list of keys");
                for (const auto& k : a) fm.absent.push_back(r.value(k, "absent key"));
            }
            f.maps.push_back(std::move(fm));
        }
    }
    return f;
}

}  // namespace

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
            r.only(w, {"seed", "clock_ns", "cpu", "ncpus", "pid", "comm", "uid", "gid", "kconfig", "tasks", "objects", "current", "map_init", "maps"}, "world");
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
            if (auto ms = w["maps"]) {
                if (!ms.IsMap()) r.fail(ms, "maps: expected MAP: [{key: K, value: V}, ...]");
                s.maps_line = r.line(ms);
                for (const auto& kv : ms) {
                    if (!kv.second.IsSequence()) r.fail(kv.second, fmt::format("maps: '{}': expected a list of {{key: K, value: V}}", kv.first.Scalar()));
                    std::vector<ScenarioEntry> entries;
                    for (const auto& e : kv.second) entries.push_back(r.entry(e, "map entry"));
                    s.maps.emplace_back(r.str(kv.first, "map name"), std::move(entries));
                }
            }
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
                    if (auto f = t["fields"]) read_object_fields(r, f, task.spec.fields, task.spec.strings, task.refs);
                    for (const auto& other : s.tasks)
                        if (other.name == task.name) r.fail(t, fmt::format("task '{}' is defined twice", task.name));
                    s.tasks.push_back(std::move(task));
                }
                for (const auto& t : s.tasks)
                    if (!t.parent.empty() && std::none_of(s.tasks.begin(), s.tasks.end(), [&](const ScenarioTask& o) { return o.name == t.parent; }))
                        r.fail(ts, fmt::format("task '{}': no parent task named '{}'", t.name, t.parent));
            }
            if (auto os = w["objects"]) {
                if (!os.IsSequence()) r.fail(os, "objects: expected a list of {name: N, type: T, fields: {...}}");
                for (const auto& o : os) {
                    r.only(o, {"name", "type", "fields"}, "object");
                    ScenarioObject ob;
                    ob.line = r.line(o);
                    if (!o["name"]) r.fail(o, "object: no 'name'");
                    if (!o["type"]) r.fail(o, "object: no 'type' (a struct of the kernel BTF: file, sock, ...)");
                    ob.name = r.str(o["name"], "name");
                    ob.type = r.str(o["type"], "type");
                    if (auto f = o["fields"]) read_object_fields(r, f, ob.fields, ob.strings, ob.refs);
                    for (const auto& other : s.objects)
                        if (other.name == ob.name) r.fail(o, fmt::format("object '{}' is defined twice", ob.name));
                    for (const auto& t : s.tasks)
                        if (t.name == ob.name) r.fail(o, fmt::format("'{}' names a task already", ob.name));
                    s.objects.push_back(std::move(ob));
                }
            }
            if (w["current"]) s.current = r.str(w["current"], "current");
        }
        // Every "@name" must name an object or a task.
        auto known_target = [&](const std::string& n) {
            return std::any_of(s.objects.begin(), s.objects.end(), [&](const ScenarioObject& o) { return o.name == n; }) ||
                   std::any_of(s.tasks.begin(), s.tasks.end(), [&](const ScenarioTask& t) { return t.name == n; });
        };
        auto check_refs = [&](const std::vector<ScenarioRef>& refs) {
            for (const auto& ref : refs)
                if (!known_target(ref.target))
                {
                    Location loc;
                    loc.file = r.file.string();
                    loc.line = ref.line;
                    throw Error(ErrorCode::Parse, fmt::format("'@{}': no object or task of that name in world.objects or world.tasks", ref.target), loc);
                }
        };
        if (!s.objects.empty() && s.btf.empty()) r.fail(doc["world"]["objects"], "objects: kernel objects are laid out from a kernel BTF; give 'btf'");
        for (const auto& o : s.objects) check_refs(o.refs);
        for (const auto& t : s.tasks) check_refs(t.refs);
        auto task_known = [&](const YAML::Node& n, const std::string& name) {
            if (std::none_of(s.tasks.begin(), s.tasks.end(), [&](const ScenarioTask& t) { return t.name == name; }))
                r.fail(n, fmt::format("no task named '{}' in world.tasks", name));
        };
        if (!s.current.empty()) task_known(doc["world"]["current"], s.current);

        const YAML::Node steps = doc["steps"];
        if (!steps || !steps.IsSequence() || steps.size() == 0) r.fail(doc, "scenario: 'steps' must be a non-empty list");
        for (const auto& st : steps) {
            r.only(st, {"name", "run", "current", "advance_ns", "update", "delete", "args", "fields", "ctx", "packet", "expect", "fuzz"}, "step");
            ScenarioStep step;
            step.line = r.line(st);
            if (st["run"]) step.run = r.str(st["run"], "run");
            if (st["current"]) {
                step.current = r.str(st["current"], "current");
                task_known(st["current"], step.current);
            }
            if (st["advance_ns"]) step.advance_ns = r.num(st["advance_ns"], "advance_ns");
            for (const char* verb : {"update", "delete"}) {
                const YAML::Node u = st[verb];
                if (!u) continue;
                const bool erase = verb[0] == 'd';
                std::vector<YAML::Node> list;
                if (u.IsSequence())
                    for (const auto& x : u) list.push_back(x);
                else
                    list.push_back(u);
                for (const auto& n : list) {
                    if (erase) r.only(n, {"map", "key"}, "delete");
                    else r.only(n, {"map", "key", "value", "values"}, "update");
                    ScenarioMapChange c;
                    c.line = r.line(n);
                    c.erase = erase;
                    if (!n["map"]) r.fail(n, fmt::format("{}: no 'map'", verb));
                    c.map = r.str(n["map"], "map");
                    if (erase) {
                        if (!n["key"]) r.fail(n, "delete: no 'key'");
                        c.entry.line = c.line;
                        c.entry.key = r.value(n["key"], "key");
                    } else {
                        c.entry = r.entry(n, "update", false);
                    }
                    step.changes.push_back(std::move(c));
                }
            }
            if (step.run.empty() && step.current.empty() && !step.advance_ns && step.changes.empty())
                r.fail(st, "step: give 'run', 'current', 'advance_ns', 'update' or 'delete'");
            step.name = st["name"] ? r.str(st["name"], "name") : step.run.empty() ? "world change" : step.run;
            if (auto a = st["args"]) {
                if (!a.IsSequence()) r.fail(a, "args: expected a list");
                for (const auto& v : a) {
                    if (v.IsScalar() && is_ref(v.Scalar())) {   // a kernel object's address
                        step.ctx_refs.push_back({r.line(v), "#" + std::to_string(step.ctx.args.size()), v.Scalar().substr(1)});
                        step.ctx.args.push_back(0);
                    } else {
                        step.ctx.args.push_back(r.num(v, "args"));
                    }
                }
            }
            // Context fields: numbers, text (char arrays, __data_loc strings, string arguments;
            // quote a number to give it as text: "123") and "@name" object addresses.
            if (auto f = st["fields"]) read_object_fields(r, f, step.ctx.fields, step.ctx.strings, step.ctx_refs);
            if (auto c = st["ctx"]) {
                auto b = parse_hex(r.str(c, "ctx"), "ctx");
                if (!b) r.fail(c, b.error().message());
                step.ctx.raw = *b;
            }
            if (auto p = st["packet"]) step.packet = read_step_packet(r, p, base, search);
            if (auto e = st["expect"]) {
                if (step.run.empty()) r.fail(e, "expect: only a step that runs a program has expectations");
                r.only(e, {"verifier", "return", "trace", "packet", "maps", "records", "helpers"}, "expect");
                if (auto v = e["verifier"]) {
                    // verifier: accept | reject, or {verdict: reject, messages: [...]}
                    ScenarioVerifierExpect ve;
                    ve.line = r.line(v);
                    // (A YAML::Node assigned to refers to the same node, so no reassignment here.)
                    if (v.IsMap()) {
                        r.only(v, {"verdict", "messages"}, "expect.verifier");
                        if (!v["verdict"]) r.fail(v, "expect.verifier: no 'verdict' (accept or reject)");
                        if (auto ms = v["messages"]) {
                            if (ms.IsScalar()) ve.messages.push_back(ms.Scalar());
                            else if (ms.IsSequence())
                                for (const auto& m : ms) ve.messages.push_back(r.str(m, "verifier message"));
                            else r.fail(ms, "expect.verifier.messages: expected a line or a list of lines");
                        }
                    }
                    const YAML::Node verdict = v.IsMap() ? v["verdict"] : v;
                    const std::string word = r.str(verdict, "verifier verdict");
                    if (word != "accept" && word != "reject") r.fail(verdict, fmt::format("expect.verifier: '{}': write accept or reject", word));
                    ve.accept = word == "accept";
                    if (ve.accept && !ve.messages.empty()) r.fail(v, "expect.verifier: messages are for a rejected program");
                    if (!ve.accept && (e["return"] || e["trace"] || e["packet"] || e["maps"] || e["records"] || e["helpers"]))
                        r.fail(v, "expect.verifier: a rejected program does not run, so it has no other expectations");
                    step.expect.verifier = std::move(ve);
                }
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
                if (auto ms = e["maps"]) {
                    if (!ms.IsMap()) r.fail(ms, "expect.maps: expected MAP: {entries: [...], partial: true|false, absent: [...]}");
                    for (const auto& kv : ms) {
                        ScenarioMapExpect me;
                        me.line = r.line(kv.first);
                        me.map = r.str(kv.first, "map name");
                        const YAML::Node& m = kv.second;
                        auto entries = [&](const YAML::Node& list) {
                            if (!list.IsSequence()) r.fail(list, "entries: expected a list of {key: K, value: V}");
                            for (const auto& en : list) {
                                ScenarioEntry x = r.entry(en, "map entry");
                                if (!x.key) r.fail(en, "map entry: no 'key'");
                                me.entries.push_back(std::move(x));
                            }
                        };
                        if (m.IsMap()) {
                            r.only(m, {"entries", "partial", "absent"}, "expect.maps entry");
                            if (m["partial"]) me.partial = r.boolean(m["partial"], "partial");
                            if (auto a = m["absent"]) {
                                if (!a.IsSequence()) r.fail(a, "absent: expected a list of keys");
                                for (const auto& k : a) me.absent.push_back(r.value(k, "absent key"));
                            }
                            if (m["entries"]) entries(m["entries"]);
                        } else if (m.IsSequence()) {
                            entries(m);
                        } else {
                            r.fail(m, fmt::format("expect.maps: '{}': expected {{entries: [...], partial: ...}} or a list of entries", me.map));
                        }
                        step.expect.maps.push_back(std::move(me));
                    }
                }
                if (auto rs = e["records"]) {
                    if (!rs.IsMap()) r.fail(rs, "expect.records: expected MAP: [record, ...] or MAP: {type: struct NAME, entries: [...]}");
                    for (const auto& kv : rs) {
                        ScenarioRecordsExpect re;
                        re.line = r.line(kv.first);
                        re.map = r.str(kv.first, "map name");
                        const YAML::Node& m = kv.second;
                        if (m.IsMap()) {
                            r.only(m, {"type", "entries", "partial"}, "expect.records entry");
                            if (m["type"]) re.type = r.str(m["type"], "type");
                            if (m["partial"]) re.partial = r.boolean(m["partial"], "partial");
                            if (!m["entries"]) r.fail(m, fmt::format("expect.records: '{}': no 'entries'", re.map));
                        }
                        const YAML::Node list = m.IsMap() ? m["entries"] : m;
                        if (!list.IsSequence()) r.fail(list, fmt::format("expect.records: '{}': expected a list of records", re.map));
                        for (const auto& rec : list) {
                            ScenarioValue v = r.value(rec, "record");
                            if (v.kind == ScenarioValue::Kind::Mapping && re.type.empty())
                                r.fail(rec, fmt::format("record: a mapping needs the records' type ({}: {{type: struct NAME, entries: [...]}})", re.map));
                            re.records.push_back(std::move(v));
                        }
                        step.expect.records.push_back(std::move(re));
                    }
                }
                if (auto hs = e["helpers"]) {
                    step.expect.helpers = read_helper_counts(r, hs, "helpers");
                }
            }
            if (auto fz = st["fuzz"]) step.fuzz = read_fuzz(r, fz, step);
            check_refs(step.ctx_refs);
            s.steps.push_back(std::move(step));
        }
        return s;
    });
}

namespace {

// ───────────────────────── values through BTF ─────────────────────────

[[noreturn]] void fail_at(const fs::path& file, std::size_t line, const std::string& what) {
    Location loc;
    loc.file = file.string();
    loc.line = line;
    throw Error(ErrorCode::Parse, what, loc);
}

bool is_percpu(MapType t) { return t == MapType::PercpuArray || t == MapType::PercpuHash || t == MapType::LruPercpuHash; }
bool is_keyless(MapType t) { return t == MapType::Queue || t == MapType::Stack || t == MapType::BloomFilter; }
bool is_array(MapType t) { return t == MapType::Array || t == MapType::PercpuArray; }

std::string hex(const uint8_t* p, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += fmt::format("{}{:02x}", i ? " " : "", p[i]);
    return s;
}

uint64_t read_le(const uint8_t* p, std::size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, std::min<std::size_t>(n, 8));
    return v;
}

// Bytes and the mask of the bytes (bits, for bitfields) the scenario gave: a mapping leaves
// the members it does not list out of the mask (zero when written, ignored when compared).
struct Encoded {
    std::vector<uint8_t> bytes, mask;
    bool matches(const uint8_t* p, std::size_t n) const {
        if (n < bytes.size()) return false;
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if ((p[i] ^ bytes[i]) & mask[i]) return false;
        return true;
    }
};

class Codec {
public:
    Codec(fs::path file, const btf::Btf* btf) : file_(std::move(file)), btf_(btf) {}
    const btf::Btf* btf() const { return btf_; }

    Encoded encode(const ScenarioValue& v, uint32_t type, std::size_t size, const std::string& what) const {
        Encoded e;
        e.bytes.assign(size, 0);
        e.mask.assign(size, 0);
        put(v, type_ok(type) ? type : 0, e, 0, size, what);
        return e;
    }

    // The value as text, through its BTF type: {a: 1, name: "x", kind: KIND_OPEN, hist: [0, 1]}.
    // With a shape (the value the scenario gave) only what it lists is shown.
    std::string show(const uint8_t* p, std::size_t n, uint32_t type, const ScenarioValue* shape) const {
        return text(p, n, type_ok(type) ? type : 0, shape);
    }

    // A type by name: "struct event", "union u", "enum kind", or a typedef / struct name.
    std::optional<uint32_t> find_type(std::string_view name) const {
        if (!btf_) return std::nullopt;
        using btf::Kind;
        auto strip = [&](std::string_view prefix) {
            if (!name.starts_with(prefix)) return false;
            name.remove_prefix(prefix.size());
            while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
            return true;
        };
        if (strip("struct ")) return btf_->find(name, Kind::Struct);
        if (strip("union ")) return btf_->find(name, Kind::Union);
        if (strip("enum ")) {
            if (auto id = btf_->find(name, Kind::Enum)) return id;
            return btf_->find(name, Kind::Enum64);
        }
        for (Kind k : {Kind::Typedef, Kind::Struct, Kind::Union, Kind::Int, Kind::Enum})
            if (auto id = btf_->find(name, k)) return id;
        return std::nullopt;
    }

    [[noreturn]] void fail(std::size_t line, const std::string& what) const { fail_at(file_, line, what); }

    // A map's value type: its BTF value type, or for global data (.data, .rodata, .bss) the
    // section's DATASEC, whose variables a mapping names.
    uint32_t value_type(const MapDef& d) const {
        if (d.btf_value_type || !btf_) return d.btf_value_type;
        if (d.origin == MapDef::Origin::Data || d.origin == MapDef::Origin::Rodata || d.origin == MapDef::Origin::Bss)
            if (auto id = btf_->find(d.section, btf::Kind::Datasec)) return *id;
        return 0;
    }

private:
    fs::path file_;
    const btf::Btf* btf_;

    bool type_ok(uint32_t type) const { return btf_ && type && type < btf_->count(); }

    static bool is_number(const ScenarioValue& v) { return !v.quoted && parse_integer(v.text).has_value(); }

    bool char_elem(uint32_t elem) const {
        const auto t = btf_->type(btf_->resolve(elem));
        // clang gives `char` as a signed 1-byte INT without BTF_INT_CHAR; bpftool's BTF has the bit.
        return t.kind() == btf::Kind::Int && t.size() == 1 && ((t.int_encoding() & btf::kIntChar) || t.name() == "char");
    }

    void set_bytes(Encoded& e, std::size_t off, const uint8_t* src, std::size_t n) const {
        std::memcpy(e.bytes.data() + off, src, n);
        std::memset(e.mask.data() + off, 0xff, n);
    }

    void put_number(const ScenarioValue& v, Encoded& e, std::size_t off, std::size_t size, const std::string& what) const {
        const uint64_t x = *parse_integer(v.text);
        if (size < 8) {
            const unsigned bits = static_cast<unsigned>(size * 8);
            const bool neg = v.text.starts_with("-");
            const bool fits = neg ? static_cast<int64_t>(x) >= -(int64_t(1) << (bits - 1)) : (x >> bits) == 0;
            if (!fits) fail(v.line, fmt::format("{}: {} does not fit in {} byte{}", what, v.text, size, size == 1 ? "" : "s"));
        }
        uint8_t buf[8];
        std::memcpy(buf, &x, 8);
        std::memset(e.mask.data() + off, 0xff, size);
        std::memcpy(e.bytes.data() + off, buf, std::min<std::size_t>(size, 8));
        if (neg_extend(v) && size > 8) std::memset(e.bytes.data() + off + 8, 0xff, size - 8);
    }
    static bool neg_extend(const ScenarioValue& v) { return v.text.starts_with("-"); }

    std::string members_of(uint32_t r) const {
        std::string out;
        const auto t = btf_->type(r);
        if (t.kind() == btf::Kind::Datasec) {
            for (uint32_t i = 0; i < t.vlen(); ++i) out += (out.empty() ? "" : ", ") + std::string(btf_->type(t.var(i).type).name());
            return out;
        }
        for (uint32_t i = 0; i < t.vlen(); ++i) {
            const auto m = t.member(i);
            if (m.name.empty()) {
                const uint32_t inner = btf_->resolve(m.type);
                const auto k = btf_->type(inner).kind();
                if (k == btf::Kind::Struct || k == btf::Kind::Union) out += (out.empty() ? "" : ", ") + members_of(inner);
            } else {
                out += (out.empty() ? "" : ", ") + std::string(m.name);
            }
        }
        return out;
    }

    std::string type_desc(uint32_t type, std::size_t size) const {
        return type ? fmt::format("{} ({} bytes)", btf_->type_name(type), size) : fmt::format("{} bytes", size);
    }

    void put(const ScenarioValue& v, uint32_t type, Encoded& e, std::size_t off, std::size_t size, const std::string& what) const {
        using btf::Kind;
        const uint32_t r = type ? btf_->resolve(type) : 0;
        const Kind k = r ? btf_->type(r).kind() : Kind::Void;
        switch (v.kind) {
        case ScenarioValue::Kind::Scalar: {
            if ((k == Kind::Enum || k == Kind::Enum64) && !is_number(v)) {
                const auto t = btf_->type(r);
                std::string names;
                for (uint32_t i = 0; i < t.vlen(); ++i) {
                    const auto ev = t.enumerator(i);
                    if (ev.name == v.text) {
                        ScenarioValue n;
                        n.text = std::to_string(ev.value);
                        n.line = v.line;
                        put_number(n, e, off, size, what);
                        return;
                    }
                    names += (names.empty() ? "" : ", ") + std::string(ev.name);
                }
                fail(v.line, fmt::format("{}: '{}' is not an enumerator of {} ({})", what, v.text, btf_->type_name(type), names));
            }
            if (k == Kind::Array && char_elem(btf_->type(r).array().type) && !is_number(v)) {
                const std::size_t n = std::min<std::size_t>(btf_->type(r).array().nelems, size);
                if (v.text.size() > n) fail(v.line, fmt::format("{}: \"{}\" is {} characters, but {} holds {}", what, v.text, v.text.size(), btf_->type_name(type), n));
                set_bytes(e, off, reinterpret_cast<const uint8_t*>(v.text.data()), v.text.size());
                if (v.text.size() < n) e.mask[off + v.text.size()] = 0xff;   // the terminating NUL
                return;
            }
            if (k == Kind::Float && !v.quoted) {
                char* end = nullptr;
                const double d = std::strtod(v.text.c_str(), &end);
                if (!v.text.empty() && !*end && (size == 4 || size == 8)) {
                    if (size == 4) {
                        const float f = static_cast<float>(d);
                        set_bytes(e, off, reinterpret_cast<const uint8_t*>(&f), 4);
                    } else {
                        set_bytes(e, off, reinterpret_cast<const uint8_t*>(&d), 8);
                    }
                    return;
                }
            }
            if (is_number(v)) {
                put_number(v, e, off, size, what);
                return;
            }
            if (v.text == "true" || v.text == "false") {
                if (!v.quoted && (k == Kind::Int || k == Kind::Void)) {
                    ScenarioValue n;
                    n.text = v.text == "true" ? "1" : "0";
                    n.line = v.line;
                    put_number(n, e, off, size, what);
                    return;
                }
            }
            auto b = parse_hex(v.text, what);
            if (b && b->size() == size) {
                set_bytes(e, off, b->data(), b->size());
                return;
            }
            if (b) fail(v.line, fmt::format("{}: '{}' is {} bytes, but {} is {}", what, v.text, b->size(), r ? btf_->type_name(type) : "the value", size == 1 ? "1 byte" : fmt::format("{} bytes", size)));
            fail(v.line, fmt::format("{}: '{}' is neither a number nor hex bytes{}", what, v.text,
                                     r ? fmt::format(" for {}", btf_->type_name(type)) : std::string()));
        }
        case ScenarioValue::Kind::List: {
            if (k == Kind::Array) {
                const auto a = btf_->type(r).array();
                const std::size_t esz = btf_->size_of(a.type);
                if (v.items.size() > a.nelems) fail(v.line, fmt::format("{}: {} elements, but {} has {}", what, v.items.size(), btf_->type_name(type), a.nelems));
                for (std::size_t i = 0; i < v.items.size(); ++i) {
                    if (off + (i + 1) * esz > e.bytes.size()) fail(v.line, fmt::format("{}[{}]: past the end of the value", what, i));
                    put(v.items[i], a.type, e, off + i * esz, esz, fmt::format("{}[{}]", what, i));
                }
                return;
            }
            if (v.items.size() != size)
                fail(v.line, fmt::format("{}: {} bytes given, but {} is {}", what, v.items.size(), r ? btf_->type_name(type) : "the value", size == 1 ? "1 byte" : fmt::format("{} bytes", size)));
            for (std::size_t i = 0; i < v.items.size(); ++i) {
                const ScenarioValue& b = v.items[i];
                const auto x = b.kind == ScenarioValue::Kind::Scalar ? parse_integer(b.text) : std::nullopt;
                if (!x || *x > 255) fail(b.line, fmt::format("{}: byte {} is not a number from 0 to 255", what, i));
                e.bytes[off + i] = static_cast<uint8_t>(*x);
                e.mask[off + i] = 0xff;
            }
            return;
        }
        case ScenarioValue::Kind::Mapping: {
            if (k == Kind::Struct || k == Kind::Union) {
                for (const auto& [name, fv] : v.fields) {
                    const auto m = btf_->member_by_name(r, name);
                    if (!m) fail(fv.line, fmt::format("{}: {} has no member '{}' (members: {})", what, btf_->type_name(type), name, members_of(r)));
                    const std::string mwhat = what + "." + name;
                    if (m->bitfield_size) {
                        if (!is_number(fv)) fail(fv.line, fmt::format("{}: a bitfield takes a number", mwhat));
                        const uint64_t x = *parse_integer(fv.text);
                        if (m->bitfield_size < 64 && (x >> m->bitfield_size) != 0 && !fv.text.starts_with("-"))
                            fail(fv.line, fmt::format("{}: {} does not fit in {} bits", mwhat, fv.text, m->bitfield_size));
                        for (uint32_t i = 0; i < m->bitfield_size; ++i) {
                            const std::size_t pos = m->bit_offset + i, byte = off + pos / 8;
                            if (byte >= e.bytes.size()) fail(fv.line, fmt::format("{}: past the end of the value", mwhat));
                            const uint8_t bit = static_cast<uint8_t>(1u << (pos % 8));
                            e.mask[byte] |= bit;
                            if ((x >> i) & 1) e.bytes[byte] |= bit;
                            else e.bytes[byte] &= static_cast<uint8_t>(~bit);
                        }
                        continue;
                    }
                    const std::size_t moff = off + m->bit_offset / 8, msize = btf_->size_of(m->type);
                    if (moff + msize > e.bytes.size()) fail(fv.line, fmt::format("{}: past the end of the value", mwhat));
                    put(fv, m->type, e, moff, msize, mwhat);
                }
                return;
            }
            if (k == Kind::Datasec) {
                const auto t = btf_->type(r);
                for (const auto& [name, fv] : v.fields) {
                    bool found = false;
                    for (uint32_t i = 0; i < t.vlen() && !found; ++i) {
                        const auto vs = t.var(i);
                        const auto var = btf_->type(vs.type);
                        if (var.name() != name) continue;
                        if (off + vs.offset + vs.size > e.bytes.size()) fail(fv.line, fmt::format("{}.{}: past the end of the value", what, name));
                        put(fv, var.type(), e, off + vs.offset, vs.size, what + "." + name);
                        found = true;
                    }
                    if (!found) fail(fv.line, fmt::format("{}: {} has no variable '{}' (variables: {})", what, btf_->type_name(type), name, members_of(r)));
                }
                return;
            }
            fail(v.line, fmt::format("{}: fields need a struct type, but {} (give a number, hex bytes or a byte list)", what,
                                     r ? fmt::format("the type is {}", btf_->type_name(type)) : std::string("it has no BTF type")));
        }
        }
    }

    std::string text(const uint8_t* p, std::size_t n, uint32_t type, const ScenarioValue* shape) const {
        using btf::Kind;
        if (!type) return (n == 1 || n == 2 || n == 4 || n == 8) ? std::to_string(read_le(p, n)) : hex(p, n);
        const uint32_t r = btf_->resolve(type);
        const auto t = btf_->type(r);
        const std::size_t size = std::min<std::size_t>(t.kind() == Kind::Datasec ? t.size() : btf_->size_of(r), n);
        switch (t.kind()) {
        case Kind::Int: {
            uint64_t v = read_le(p, size);
            if ((t.int_encoding() & btf::kIntSigned) && size < 8 && size > 0 && (v >> (size * 8 - 1)) & 1) v |= ~uint64_t(0) << (size * 8);
            if (t.int_encoding() & btf::kIntSigned) return std::to_string(static_cast<int64_t>(v));
            if (t.int_encoding() & btf::kIntBool) return v ? "true" : "false";
            return std::to_string(v);
        }
        case Kind::Enum:
        case Kind::Enum64: {
            uint64_t v = read_le(p, size);
            if (t.enum_signed() && size < 8 && size > 0 && (v >> (size * 8 - 1)) & 1) v |= ~uint64_t(0) << (size * 8);
            for (uint32_t i = 0; i < t.vlen(); ++i)
                if (static_cast<uint64_t>(t.enumerator(i).value) == v) return std::string(t.enumerator(i).name);
            return t.enum_signed() ? std::to_string(static_cast<int64_t>(v)) : std::to_string(v);
        }
        case Kind::Ptr:
            return fmt::format("{:#x}", read_le(p, size));
        case Kind::Float:
            if (size == 4) {
                float f;
                std::memcpy(&f, p, 4);
                return fmt::format("{}", f);
            }
            if (size == 8) {
                double d;
                std::memcpy(&d, p, 8);
                return fmt::format("{}", d);
            }
            return hex(p, size);
        case Kind::Array: {
            const auto a = t.array();
            const std::size_t esz = btf_->size_of(a.type);
            if (char_elem(a.type) && !(shape && shape->kind == ScenarioValue::Kind::List)) {
                std::string s = "\"";
                for (std::size_t i = 0; i < size && p[i]; ++i) {
                    const char c = static_cast<char>(p[i]);
                    if (c == '"' || c == '\\') s += fmt::format("\\{}", c);
                    else if (p[i] >= 0x20 && p[i] < 0x7f) s += c;
                    else s += fmt::format("\\x{:02x}", p[i]);
                }
                return s + "\"";
            }
            const bool listed = shape && shape->kind == ScenarioValue::Kind::List;
            const std::size_t count = listed ? std::min<std::size_t>(shape->items.size(), a.nelems) : a.nelems;
            std::string s = "[";
            for (std::size_t i = 0; i < count && esz && (i + 1) * esz <= size; ++i)
                s += (i ? ", " : "") + text(p + i * esz, esz, a.type, listed ? &shape->items[i] : nullptr);
            return s + "]";
        }
        case Kind::Struct:
        case Kind::Union: {
            std::vector<std::string> parts;
            if (shape && shape->kind == ScenarioValue::Kind::Mapping) {
                for (const auto& [name, fv] : shape->fields)
                    if (const auto m = btf_->member_by_name(r, name)) parts.push_back(name + ": " + member_text(p, size, *m, &fv));
            } else {
                all_members(p, size, r, 0, parts);
            }
            std::string s = "{";
            for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
            return s + "}";
        }
        case Kind::Datasec: {
            std::string s = "{";
            bool first = true;
            for (uint32_t i = 0; i < t.vlen(); ++i) {
                const auto vs = t.var(i);
                const auto var = btf_->type(vs.type);
                const ScenarioValue* fshape = nullptr;
                if (shape && shape->kind == ScenarioValue::Kind::Mapping) {
                    for (const auto& [name, fv] : shape->fields)
                        if (name == var.name()) fshape = &fv;
                    if (!fshape) continue;
                }
                if (vs.offset + vs.size > size) continue;
                s += fmt::format("{}{}: {}", first ? "" : ", ", var.name(), text(p + vs.offset, vs.size, var.type(), fshape));
                first = false;
            }
            return s + "}";
        }
        default:
            return hex(p, size);
        }
    }

    std::string member_text(const uint8_t* p, std::size_t n, const btf::Member& m, const ScenarioValue* shape) const {
        if (m.bitfield_size) {
            uint64_t v = 0;
            for (uint32_t i = 0; i < m.bitfield_size && i < 64; ++i) {
                const std::size_t pos = m.bit_offset + i;
                if (pos / 8 < n && ((p[pos / 8] >> (pos % 8)) & 1)) v |= uint64_t(1) << i;
            }
            return std::to_string(v);
        }
        const std::size_t off = m.bit_offset / 8, size = btf_->size_of(m.type);
        if (off + size > n) return "?";
        return text(p + off, size, m.type, shape);
    }

    void all_members(const uint8_t* p, std::size_t n, uint32_t r, uint32_t base_bits, std::vector<std::string>& parts) const {
        const auto t = btf_->type(r);
        for (uint32_t i = 0; i < t.vlen(); ++i) {
            btf::Member m = t.member(i);
            m.bit_offset += base_bits;
            if (m.name.empty()) {
                const uint32_t inner = btf_->resolve(m.type);
                const auto k = btf_->type(inner).kind();
                if (k == btf::Kind::Struct || k == btf::Kind::Union) {
                    all_members(p, n, inner, m.bit_offset, parts);
                    continue;
                }
            }
            parts.push_back(std::string(m.name) + ": " + member_text(p, n, m, nullptr));
        }
    }
};

std::string map_names(const Object& obj) {
    std::string known;
    for (const auto& d : obj.maps()) known += (known.empty() ? "" : ", ") + d.name;
    return known;
}

Map& find_map(World& w, const Codec& c, std::size_t line, const std::string& name) {
    Map* m = w.map(name);
    if (!m) c.fail(line, fmt::format("no map '{}' in {} (maps: {})", name, w.object().path(), map_names(w.object())));
    return *m;
}

// Writes an entry (world.maps, update:) as bpf(BPF_MAP_UPDATE_ELEM) would.
void write_entry(World& w, const Codec& c, const std::string& name, const ScenarioEntry& en, const char* what) {
    Map& m = find_map(w, c, en.line, name);
    const MapDef& d = m.def();
    const bool keyless = is_keyless(d.type);
    if (keyless && en.key) c.fail(en.line, fmt::format("{}: map '{}' is a {}, which takes values only", what, name, to_string(d.type)));
    if (!keyless && !en.key) c.fail(en.line, fmt::format("{}: map '{}': no 'key'", what, name));
    const uint32_t vtype = c.value_type(d);
    std::vector<uint8_t> key;
    if (en.key) key = c.encode(*en.key, d.btf_key_type, d.key_size, fmt::format("map {} key", name)).bytes;
    std::vector<uint8_t> value(m.user_value_size(), 0);
    const std::string vwhat = fmt::format("map {} value", name);
    if (is_percpu(d.type)) {
        const std::size_t stride = (d.value_size + 7) / 8 * 8;
        const unsigned ncpus = w.options().ncpus;
        if (en.values.size() > ncpus) c.fail(en.line, fmt::format("{}: {} per-CPU values, but the world has {} CPU(s)", what, en.values.size(), ncpus));
        for (unsigned cpu = 0; cpu < ncpus; ++cpu) {
            const ScenarioValue* v = en.value ? &*en.value : cpu < en.values.size() ? &en.values[cpu] : nullptr;
            if (!v) continue;
            auto b = c.encode(*v, vtype, d.value_size, vwhat).bytes;
            std::memcpy(value.data() + cpu * stride, b.data(), b.size());
        }
    } else {
        if (!en.values.empty()) c.fail(en.line, fmt::format("{}: 'values' (per CPU) on map '{}', which is not per-CPU", what, name));
        auto b = c.encode(*en.value, vtype, d.value_size, vwhat).bytes;
        std::memcpy(value.data(), b.data(), std::min(b.size(), value.size()));
    }
    const int64_t rc = keyless ? m.push(value.data(), 0) : m.user_update(key.data(), value.data(), 0);
    if (rc < 0) c.fail(en.line, fmt::format("{}: map '{}' refused the entry (error {})", what, name, rc));
}

void delete_entry(World& w, const Codec& c, const ScenarioMapChange& ch) {
    Map& m = find_map(w, c, ch.line, ch.map);
    const MapDef& d = m.def();
    const auto key = c.encode(*ch.entry.key, d.btf_key_type, d.key_size, fmt::format("map {} key", ch.map)).bytes;
    const int64_t rc = m.user_delete(key.data());
    if (rc == errc::kENOENT)
        c.fail(ch.line, fmt::format("delete: map '{}' has no entry with key {}", ch.map, c.show(key.data(), key.size(), d.btf_key_type, &*ch.entry.key)));
    if (rc < 0) c.fail(ch.line, fmt::format("delete: map '{}' refused (error {})", ch.map, rc));
}

void check_map(World& w, const Codec& c, const ScenarioMapExpect& me, StepOutcome& so) {
    Map& m = find_map(w, c, me.line, me.map);
    const MapDef& d = m.def();
    if (d.type == MapType::Ringbuf || d.type == MapType::PerfEventArray)
        c.fail(me.line, fmt::format("expect.maps: '{}' is a {}; check its output with 'records'", me.map, to_string(d.type)));
    if (d.key_size == 0) c.fail(me.line, fmt::format("expect.maps: '{}' is a {}, which has no keys", me.map, to_string(d.type)));
    const uint32_t vtype = c.value_type(d);
    const unsigned ncpus = w.options().ncpus;
    const bool percpu = is_percpu(d.type);
    const std::size_t stride = percpu ? (d.value_size + 7) / 8 * 8 : d.value_size;
    const auto actual = dump_map(m, ncpus);
    std::vector<bool> listed(actual.size(), false);
    auto find = [&](const std::vector<uint8_t>& key) -> std::ptrdiff_t {
        for (std::size_t i = 0; i < actual.size(); ++i)
            if (actual[i].first == key) return static_cast<std::ptrdiff_t>(i);
        return -1;
    };
    auto value_text = [&](const std::vector<uint8_t>& v, const ScenarioValue* shape) {
        if (!percpu) return c.show(v.data(), v.size(), vtype, shape);
        std::string s = "[";
        for (unsigned cpu = 0; cpu < ncpus && (cpu + 1) * stride <= v.size(); ++cpu)
            s += (cpu ? ", " : "") + c.show(v.data() + cpu * stride, d.value_size, vtype, shape);
        return s + "]";
    };
    auto fail = [&](std::string msg) {
        so.passed = false;
        so.failures.push_back(std::move(msg));
    };
    for (const auto& en : me.entries) {
        const auto key = c.encode(*en.key, d.btf_key_type, d.key_size, fmt::format("map {} key", me.map)).bytes;
        const std::string ktext = c.show(key.data(), key.size(), d.btf_key_type, &*en.key);
        const std::string vwhat = fmt::format("map {} value", me.map);
        // The expected value per CPU (one for a map that is not per-CPU).
        std::vector<std::pair<unsigned, const ScenarioValue*>> want;
        if (!percpu && !en.values.empty()) c.fail(en.line, fmt::format("map entry: 'values' (per CPU) on map '{}', which is not per-CPU", me.map));
        if (en.values.size() > ncpus) c.fail(en.line, fmt::format("map entry: {} per-CPU values, but the world has {} CPU(s)", en.values.size(), ncpus));
        for (unsigned cpu = 0; cpu < (percpu ? ncpus : 1u); ++cpu) {
            if (en.value) want.emplace_back(cpu, &*en.value);
            else if (cpu < en.values.size()) want.emplace_back(cpu, &en.values[cpu]);
        }
        const std::ptrdiff_t i = find(key);
        if (i < 0) {
            const Encoded e = c.encode(*want.front().second, vtype, d.value_size, vwhat);
            fail(fmt::format("map {} key {}: expected {}, got no entry", me.map, ktext, c.show(e.bytes.data(), e.bytes.size(), vtype, want.front().second)));
            continue;
        }
        listed[static_cast<std::size_t>(i)] = true;
        const auto& got = actual[static_cast<std::size_t>(i)].second;
        for (const auto& [cpu, v] : want) {
            const Encoded e = c.encode(*v, vtype, d.value_size, vwhat);
            const uint8_t* g = got.data() + cpu * stride;
            if (e.matches(g, d.value_size)) continue;
            fail(fmt::format("map {} key {}{}: expected {}, got {}", me.map, ktext, percpu ? fmt::format(" cpu {}", cpu) : "",
                             c.show(e.bytes.data(), e.bytes.size(), vtype, v), c.show(g, d.value_size, vtype, v)));
        }
    }
    for (const auto& k : me.absent) {
        const auto key = c.encode(k, d.btf_key_type, d.key_size, fmt::format("map {} key", me.map)).bytes;
        const std::ptrdiff_t i = find(key);
        if (i >= 0)
            fail(fmt::format("map {} key {}: expected no entry, got {}", me.map, c.show(key.data(), key.size(), d.btf_key_type, &k),
                             value_text(actual[static_cast<std::size_t>(i)].second, nullptr)));
    }
    if (me.partial) return;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        if (listed[i]) continue;
        const auto& [key, v] = actual[i];
        if (is_array(d.type) && std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; })) continue;   // arrays: unlisted entries are zero
        fail(fmt::format("map {}: unexpected entry key {}: {}", me.map, c.show(key.data(), key.size(), d.btf_key_type, nullptr), value_text(v, nullptr)));
    }
}

void check_records(const Codec& obj_codec, const Codec& kernel_codec, World& w, const ScenarioRecordsExpect& re, StepOutcome& so) {
    const Map& m = find_map(w, obj_codec, re.line, re.map);
    if (m.def().type != MapType::Ringbuf && m.def().type != MapType::PerfEventArray)
        obj_codec.fail(re.line, fmt::format("expect.records: map '{}' is a {}, not a ringbuf or perf_event_array", re.map, to_string(m.def().type)));
    const Codec* c = &obj_codec;
    uint32_t type = 0;
    if (!re.type.empty()) {
        auto id = obj_codec.find_type(re.type);
        if (!id && (id = kernel_codec.find_type(re.type))) c = &kernel_codec;
        if (!id)
            obj_codec.fail(re.line, fmt::format("expect.records: no type '{}' in the BTF of {}{}", re.type, w.object().path(),
                                                kernel_codec.btf() ? " or the kernel" : ""));
        type = *id;
    }
    static const std::vector<std::vector<uint8_t>> none;
    auto it = so.records.find(re.map);
    const auto& got = it == so.records.end() ? none : it->second;
    auto fail = [&](std::string msg) {
        so.passed = false;
        so.failures.push_back(std::move(msg));
    };
    const std::size_t size = type ? c->btf()->size_of(type) : 0;
    for (std::size_t i = 0; i < re.records.size() && i < got.size(); ++i) {
        const ScenarioValue& v = re.records[i];
        const std::string what = fmt::format("record {}[{}]", re.map, i);
        const auto& g = got[i];
        if (type) {
            const Encoded e = c->encode(v, type, size, what);
            if (g.size() < size)
                fail(fmt::format("records {}[{}]: expected {}, got {} bytes (shorter than {})", re.map, i, c->show(e.bytes.data(), size, type, &v), g.size(), re.type));
            else if (!e.matches(g.data(), g.size()))
                fail(fmt::format("records {}[{}]: expected {}, got {}", re.map, i, c->show(e.bytes.data(), size, type, &v), c->show(g.data(), size, type, &v)));
        } else {
            // Untyped: hex or bytes, the whole record.
            std::vector<uint8_t> want;
            if (v.kind == ScenarioValue::Kind::List) {
                want = c->encode(v, 0, v.items.size(), what).bytes;
            } else {
                auto b = parse_hex(v.text, what);
                if (!b) c->fail(v.line, b.error().message());
                want = std::move(b.value());
            }
            if (want != g) fail(fmt::format("records {}[{}]: expected {}, got {}", re.map, i, hex(want.data(), want.size()), hex(g.data(), g.size())));
        }
    }
    if (re.partial ? got.size() < re.records.size() : got.size() != re.records.size())
        fail(fmt::format("records {}: expected {}{} record{}, got {}", re.map, re.partial ? "at least " : "", re.records.size(),
                         re.records.size() == 1 ? "" : "s", got.size()));
}

// A scenario's world before its first step: maps, kernel objects, tasks, the current task.
struct Setup {
    std::unique_ptr<World> world;
    std::unique_ptr<btf::Btf> fixed;   // the object's BTF with DATASEC sizes and offsets filled in (global data by name)
    std::unique_ptr<Codec> codec, kernel_codec;
    std::map<std::string, uint64_t> addrs;   // objects and tasks by name
    std::map<std::string, uint64_t> tasks;
};

std::unique_ptr<Setup> set_up(const Scenario& s, const Object& obj, std::size_t btf_index) {
    auto su = std::make_unique<Setup>();
    WorldOptions wo = s.world;
    if (!s.btf.empty()) {
        auto k = load_kernel_btf(s.btf.at(btf_index));
        if (!k) throw k.error();
        wo.kernel_btf = *k;
    }
    auto world = World::create(obj, wo);
    if (!world) throw world.error();
    su->world = std::move(world.value());
    World& w = *su->world;
    if (!s.map_init.empty())
        if (auto n = load_map_init(w, s.map_init); !n) throw n.error();
    // The object's BTF with DATASEC sizes and offsets filled in (global data by name).
    if (obj.btf())
        if (auto bytes = obj.kernel_btf())
            if (auto b = btf::Btf::parse(*bytes, obj.btf()->name())) su->fixed = std::make_unique<btf::Btf>(std::move(b.value()));
    su->codec = std::make_unique<Codec>(s.file, su->fixed ? su->fixed.get() : obj.btf());
    su->kernel_codec = std::make_unique<Codec>(s.file, wo.kernel_btf.get());
    const Codec& codec = *su->codec;
    for (const auto& [name, entries] : s.maps)
        for (const auto& en : entries) write_entry(w, codec, name, en, "world.maps");
    // Kernel objects first (zeroed), so that tasks and objects can point to each other.
    auto& addrs = su->addrs;   // objects and tasks by name
    auto at_line = [&](std::size_t line, auto&& f) {
        try {
            f();
        } catch (Error& e) {
            if (e.where().file.empty()) e.where().file = s.file.string();
            if (!e.where().line) e.where().line = line;
            throw;
        }
    };
    std::vector<std::pair<const ScenarioObject*, uint32_t>> objects;
    for (const auto& o : s.objects)
        at_line(o.line, [&] {
            if (!w.has_kernel()) throw Error(ErrorCode::Usage, fmt::format("object '{}' needs a kernel BTF (btf:)", o.name));
            KernelMemory& k = w.kernel();
            const uint32_t type = k.type_id(o.type);
            addrs[o.name] = k.create(type);
            objects.emplace_back(&o, type);
        });
    auto& tasks = su->tasks;
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
    for (const auto& [name, addr] : tasks) addrs[name] = addr;
    for (const auto& [o, type] : objects)
        at_line(o->line, [&, &o = o, type = type] {   // init-captures: clang 14 cannot capture bindings
            KernelMemory& k = w.kernel();
            const uint64_t addr = addrs.at(o->name);
            for (const auto& [path, v] : o->fields) k.set(addr, type, path, v);
            for (const auto& [path, v] : o->strings) k.set_string(addr, type, path, v);
            for (const auto& ref : o->refs) k.set(addr, type, ref.path, addrs.at(ref.target));
        });
    for (const auto& t : s.tasks)
        for (const auto& ref : t.refs)
            at_line(ref.line, [&] {
                KernelMemory& k = w.kernel();
                k.set(tasks.at(t.name), k.type_id("task_struct"), ref.path, addrs.at(ref.target));
            });
    if (!s.current.empty()) w.current_task = tasks.at(s.current);
    return su;
}

}  // namespace

bool ScenarioOutcome::passed() const {
    return !error && std::all_of(steps.begin(), steps.end(), [](const StepOutcome& s) { return s.passed; });
}

ScenarioOutcome run_scenario(const Scenario& s, std::size_t btf_index, const vm::RunOptions& ro, const VerifierFn& verifier,
                             const StepHook& before_run) {
    ScenarioOutcome out;
    auto r = catch_error([&]() -> bool {
        auto obj = Object::open(s.object);
        if (!obj) throw obj.error();
        if (!s.btf.empty()) out.btf = s.btf.at(btf_index);
        auto su = set_up(s, *obj, btf_index);
        World& w = *su->world;
        const Codec& codec = *su->codec;
        const Codec& kernel_codec = *su->kernel_codec;
        auto& addrs = su->addrs;
        auto& tasks = su->tasks;
        std::set<std::string> asked;
        for (const auto& st : s.steps) {
            if (!st.current.empty()) w.current_task = tasks.at(st.current);
            if (st.advance_ns) w.advance(*st.advance_ns);
            for (const auto& ch : st.changes) {
                if (ch.erase) delete_entry(w, codec, ch);
                else write_entry(w, codec, ch.map, ch.entry, "update");
            }
            if (st.run.empty()) continue;
            StepOutcome so;
            so.name = st.name;
            if (st.expect.verifier && verifier) {
                // The verdict of the verifier model, compared with the expectation.
                const ScenarioVerifierExpect& ve = *st.expect.verifier;
                auto v = verifier(*obj, st.run, w.options());
                if (!v) {
                    Error e = v.error();
                    if (e.where().file.empty()) e.where().file = s.file.string();
                    if (!e.where().line) e.where().line = ve.line;
                    throw e;
                }
                const std::string at = v->source_line.empty() ? fmt::format("pc {}", v->pc) : fmt::format("pc {} ({})", v->pc, v->source_line);
                if (ve.accept && !v->accepted) {
                    so.passed = false;
                    so.failures.push_back(fmt::format("verifier: expected the program to be accepted, but it is rejected at {}: {}", at, v->message));
                } else if (!ve.accept && v->accepted) {
                    so.passed = false;
                    so.failures.push_back(fmt::format("verifier: expected a rejection{}, but the program is accepted",
                                                      ve.messages.empty() ? "" : " with \"" + ve.messages.front() + "\""));
                } else if (!ve.accept) {
                    // Each message in the log, in order (as the kernel selftests' __msg match).
                    const std::string text = v->log.empty() ? v->message : v->log;
                    std::size_t from = 0;
                    for (const auto& m : ve.messages) {
                        const auto found = text.find(m, from);
                        if (found == std::string::npos) {
                            so.passed = false;
                            so.failures.push_back(fmt::format("verifier: rejected at {} with \"{}\", but the log has no \"{}\"{}", at, v->message, m,
                                                              from ? " after the messages before it" : ""));
                            break;
                        }
                        from = found + m.size();
                    }
                }
                if (!ve.accept || !so.passed) {   // a rejected program does not run
                    out.steps.push_back(std::move(so));
                    continue;
                }
            } else if (st.expect.verifier && !st.expect.verifier->accept) {
                // The kernel would not load it, so it is not run. Predicting the rejection (and
                // its message) is the verifier model's job, which bpfsim does not have yet.
                const std::size_t line = st.expect.verifier->line;
                so.skipped = fmt::format("{}{}: expects the verifier to reject '{}'{}; bpfsim has no verifier model yet, so this is not checked",
                                         s.file.string(), line ? fmt::format(":{}", line) : "", st.run,
                                         st.expect.verifier->messages.empty() ? "" : " with \"" + st.expect.verifier->messages.front() + "\"");
                out.steps.push_back(std::move(so));
                continue;
            }
            const ProgramDef* def = obj->find_program(st.run);
            if (!def) {
                auto l = obj->link(st.run);
                Error e = l.error();
                e.where().file = s.file.string();
                e.where().line = st.line;
                throw e;
            }
            // Engine::Auto: programs the verifier model accepts run in the JIT (asked once each).
            if (w.options().engine == Engine::Auto && verifier && !asked.count(def->name)) {
                asked.insert(def->name);
                if (auto v = verifier(*obj, def->name, w.options()); v && v->accepted) w.mark_verified(def->name);
            }
            const CtxKind kind = ctx_kind(def->type);
            bool stopped = false;   // by before_run
            Result<ProgramRun> run = [&]() -> Result<ProgramRun> {
                if (kind == CtxKind::XdpMd || kind == CtxKind::SkBuff) {
                    if (!st.packet) throw Error(ErrorCode::Usage, fmt::format("{}:{}: program '{}' needs a 'packet'", s.file.string(), st.line, def->name));
                    if (before_run && !before_run(w, st, *st.packet)) {
                        stopped = true;
                        return ProgramRun{};
                    }
                    return w.run_packet(def->name, *st.packet, ro);
                }
                ContextSpec spec = st.ctx;
                for (const auto& ref : st.ctx_refs) {   // "@name": the object's address
                    if (ref.path.starts_with("#")) spec.args.at(std::stoul(ref.path.substr(1))) = addrs.at(ref.target);
                    else spec.fields.emplace_back(ref.path, addrs.at(ref.target));
                }
                auto ctx = build_context(def->type, def->attach, spec, w.options(), w.has_kernel() ? &w.kernel() : nullptr);
                if (!ctx) {
                    Error e = ctx.error();
                    e.where().file = s.file.string();
                    e.where().line = st.line;
                    throw e;
                }
                if (before_run && !before_run(w, st, *ctx)) {
                    stopped = true;
                    return ProgramRun{};
                }
                return w.run_ctx(def->name, *ctx, ro);
            }();
            if (stopped) return true;
            if (!run) throw run.error();
            for (const auto& t : run->trace) {
                std::string line = trace_pipe_line(t);
                if (!line.empty() && line.back() == '\n') line.pop_back();
                so.trace_lines.push_back(line);
            }
            const ProgramRun& pr = *run;
            // What the run wrote to ring buffers and perf event arrays; ring buffers are consumed.
            for (std::size_t i = 0; i < obj->maps().size(); ++i) {
                Map* m = w.map_at(i);
                if (auto* rb = dynamic_cast<RingbufMap*>(m)) {
                    auto recs = rb->drain();
                    if (!recs.empty()) so.records[obj->maps()[i].name] = std::move(recs);
                } else if (auto* pe = dynamic_cast<PerfEventArrayMap*>(m)) {
                    for (const auto& rec : pe->records()) so.records[obj->maps()[i].name].push_back(rec.data);
                    pe->clear_records();
                }
            }
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
            for (const auto& me : st.expect.maps) check_map(w, codec, me, so);
            for (const auto& re : st.expect.records) check_records(codec, kernel_codec, w, re, so);
            for (const auto& he : st.expect.helpers) {
                const auto it = pr.helper_calls.find(he.id);
                const uint64_t got = it == pr.helper_calls.end() ? 0 : it->second;
                if (got != he.calls) {
                    so.passed = false;
                    so.failures.push_back(fmt::format("helpers: expected {} bpf_{} call{}, got {}", he.calls, vm::kernel_helper_name(he.id),
                                                      he.calls == 1 ? "" : "s", got));
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

Result<ScenarioWorld> scenario_world(const Scenario& s, const Object& obj, std::size_t btf_index, std::size_t step,
                                     const vm::RunOptions& ro) {
    return catch_error([&]() -> ScenarioWorld {
        if (step >= s.steps.size())
            throw Error(ErrorCode::Usage, fmt::format("{}: no step {} (the scenario has {})", s.file.string(), step + 1, s.steps.size()));
        auto su = set_up(s, obj, btf_index);
        World& w = *su->world;
        ScenarioWorld out;
        for (std::size_t i = 0; i <= step; ++i) {
            const ScenarioStep& st = s.steps[i];
            if (!st.current.empty()) w.current_task = su->tasks.at(st.current);
            if (st.advance_ns) w.advance(*st.advance_ns);
            for (const auto& ch : st.changes) {
                if (ch.erase) delete_entry(w, *su->codec, ch);
                else write_entry(w, *su->codec, ch.map, ch.entry, "update");
            }
            if (st.run.empty()) continue;
            ContextSpec spec = st.ctx;
            for (const auto& ref : st.ctx_refs) {   // "@name": the object's address
                if (ref.path.starts_with("#")) spec.args.at(std::stoul(ref.path.substr(1))) = su->addrs.at(ref.target);
                else spec.fields.emplace_back(ref.path, su->addrs.at(ref.target));
            }
            if (i == step) {
                out.ctx = std::move(spec);
                break;
            }
            if (st.expect.verifier && !st.expect.verifier->accept) continue;   // not loaded, so not run
            const ProgramDef* def = obj.find_program(st.run);
            if (!def) {
                Error e = obj.link(st.run).error();
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
                auto ctx = build_context(def->type, def->attach, spec, w.options(), w.has_kernel() ? &w.kernel() : nullptr);
                if (!ctx) {
                    Error e = ctx.error();
                    e.where().file = s.file.string();
                    e.where().line = st.line;
                    throw e;
                }
                return w.run_ctx(def->name, *ctx, ro);
            }();
            if (!run) throw run.error();
            for (std::size_t m = 0; m < obj.maps().size(); ++m) {   // consumed, as run_scenario does
                if (auto* rb = dynamic_cast<RingbufMap*>(w.map_at(m))) rb->drain();
                else if (auto* pe = dynamic_cast<PerfEventArrayMap*>(w.map_at(m))) pe->clear_records();
            }
        }
        out.world = std::move(su->world);
        return out;
    });
}

struct FuzzOracle::Impl {
    ScenarioFuzz fuzz;
    std::vector<int64_t> returns;
    std::vector<std::optional<std::regex>> forbid;   // per forbid_trace line: its regex, or exact
    struct MapCheck {
        std::string map;
        std::optional<uint64_t> max_entries;
        std::vector<std::pair<std::vector<uint8_t>, std::string>> absent;   // key bytes, as shown
    };
    std::vector<MapCheck> maps;
};

FuzzOracle::FuzzOracle(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FuzzOracle::FuzzOracle(FuzzOracle&&) noexcept = default;
FuzzOracle& FuzzOracle::operator=(FuzzOracle&&) noexcept = default;
FuzzOracle::~FuzzOracle() = default;

Result<FuzzOracle> FuzzOracle::create(const Scenario& s, const ScenarioFuzz& fuzz, const Object& obj) {
    return catch_error([&]() -> FuzzOracle {
        auto impl = std::make_unique<Impl>();
        impl->fuzz = fuzz;
        for (const auto& r : fuzz.returns) impl->returns.push_back(*parse_return_value(r));
        for (const auto& l : fuzz.forbid_trace)
            impl->forbid.push_back(l.size() >= 2 && l.front() == '/' && l.back() == '/' ? std::optional<std::regex>(std::regex(l.substr(1, l.size() - 2)))
                                                                                      : std::nullopt);
        std::unique_ptr<btf::Btf> fixed;
        if (obj.btf())
            if (auto bytes = obj.kernel_btf())
                if (auto b = btf::Btf::parse(*bytes, obj.btf()->name())) fixed = std::make_unique<btf::Btf>(std::move(b.value()));
        const Codec codec(s.file, fixed ? fixed.get() : obj.btf());
        for (const auto& fm : fuzz.maps) {
            auto def = std::find_if(obj.maps().begin(), obj.maps().end(), [&](const MapDef& d) { return d.name == fm.map; });
            if (def == obj.maps().end()) codec.fail(fm.line, fmt::format("fuzz.maps: no map '{}' in {} (maps: {})", fm.map, obj.path(), map_names(obj)));
            Impl::MapCheck mc{fm.map, fm.max_entries, {}};
            for (const auto& k : fm.absent) {
                auto key = codec.encode(k, def->btf_key_type, def->key_size, fmt::format("map {} key", fm.map)).bytes;
                mc.absent.emplace_back(key, codec.show(key.data(), key.size(), def->btf_key_type, &k));
            }
            impl->maps.push_back(std::move(mc));
        }
        return FuzzOracle(std::move(impl));
    });
}

std::vector<std::string> FuzzOracle::check(World& w, ProgType type, const ProgramRun& run) const {
    std::vector<std::string> out;
    const Impl& o = *impl_;
    const uint64_t r0 = run.result.r0;
    if (!o.returns.empty() && !run.result.trap) {
        const bool wide = type != ProgType::Xdp && type != ProgType::SchedCls && type != ProgType::SchedAct;
        const bool ok = std::any_of(o.returns.begin(), o.returns.end(), [&](int64_t want) {
            return wide ? static_cast<int64_t>(r0) == want : static_cast<int32_t>(r0) == static_cast<int32_t>(want);
        });
        if (!ok) {
            std::string allowed;
            for (const auto& r : o.fuzz.returns) allowed += (allowed.empty() ? "" : ", ") + r;
            out.push_back(fmt::format("return: {} ({}) is not one of fuzz.return [{}]", static_cast<int64_t>(r0), describe_return(type, r0), allowed));
        }
    }
    for (const auto& t : run.trace) {
        std::string m = t.message;
        if (!m.empty() && m.back() == '\n') m.pop_back();
        for (std::size_t i = 0; i < o.forbid.size(); ++i)
            if (o.forbid[i] ? std::regex_search(m, *o.forbid[i]) : m == o.fuzz.forbid_trace[i])
                out.push_back(fmt::format("trace: \"{}\" is forbidden by fuzz.forbid_trace {}", m, o.fuzz.forbid_trace[i]));
    }
    if (o.fuzz.max_insns && run.result.insns > *o.fuzz.max_insns)
        out.push_back(fmt::format("instructions: {} ran, more than fuzz.max_insns {}", run.result.insns, *o.fuzz.max_insns));
    for (const auto& he : o.fuzz.max_helpers) {
        const auto it = run.helper_calls.find(he.id);
        const uint64_t got = it == run.helper_calls.end() ? 0 : it->second;
        if (got > he.calls)
            out.push_back(fmt::format("helpers: {} bpf_{} calls, more than fuzz.max_helpers {}", got, vm::kernel_helper_name(he.id), he.calls));
    }
    for (const auto& mc : o.maps) {
        Map* m = w.map(mc.map);
        if (!m) continue;
        if (mc.max_entries && m->count() > *mc.max_entries)
            out.push_back(fmt::format("map {}: {} entries, more than fuzz.maps max_entries {}", mc.map, m->count(), *mc.max_entries));
        std::vector<uint8_t> value(m->user_value_size());
        for (const auto& [key, text] : mc.absent)
            if (m->user_lookup(key.data(), value.data()) == 0)
                out.push_back(fmt::format("map {}: has key {}, which fuzz.maps absent forbids", mc.map, text));
    }
    return out;
}

}  // namespace bpfsim::harness
