// bpfsim — the public header: test BPF programs from C++ without root or a VM.
//
// It includes the module headers (installed under <prefix>/include/bpfsim/; the full API is
// bpfsim::harness, ::vm and ::btf) and adds a thin facade for the common case:
//
//   #include <bpfsim/bpfsim.hpp>
//
//   bpfsim::Sim sim("xdp_filter.bpf.o");                       // object + world; throws bpfsim::Error
//   sim.update("blocked_ports", uint16_t{53}, uint8_t{1});     // a map entry, as bpf(2) writes it
//   bpfsim::Run r = sim.run_packet("xdp_filter", bpfsim::udp4("10.0.0.1", 4000, "10.0.0.2", 53));
//   CHECK(r.verdict() == "XDP_DROP");                          // r.r0() == 1
//   CHECK(r.messages() == std::vector<std::string>{"drop 10.0.0.1 -> 53"});
//   CHECK(sim.lookup<uint64_t>("verdicts", uint32_t{1}) == 1u);
//
//   bpfsim::WorldOptions wo;                                   // tracing programs and tasks
//   wo.kernel_btf = bpfsim::kernel_btf("vmlinux.btf");         // or /sys/kernel/btf/vmlinux
//   bpfsim::Sim t("exec.bpf.o", wo);
//   t.current(t.add_task({.pid = 4242, .comm = "bash"}));
//   t.run_trace("trace_exec", {.args = {0x7ffd0000}});
//   auto events = t.ringbuf<event>("events");                  // records, in order
//
// Link bpfsim::bpfsim (find_package(bpfsim)). The facade reports failures by throwing
// bpfsim::Error (bad input, unknown names, wrong sizes) or bpfsim::Trapped (Run::r0() of a run
// that trapped); the harness API underneath returns Result<T> instead. One Sim runs one
// program at a time: it is not thread-safe, as the World it owns is not.
#pragma once

#include "harness/harness.hpp"
#include "harness/scenario.hpp"
#include "verifier/scenario_verifier.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace bpfsim {

// The harness types the facade takes and returns.
using harness::ContextSpec;
using harness::Map;
using harness::Object;
using harness::PerfEventArrayMap;
using harness::ProgramRun;
using harness::ProgType;
using harness::RingbufMap;
using harness::Scenario;
using harness::ScenarioOutcome;
using harness::TaskSpec;
using harness::TraceEvent;
using harness::World;
using harness::WorldOptions;
using vm::RunOptions;

// Keys, values, globals and records are copied as bytes: plain structs, integers, arrays.
template <class T>
concept Bytewise = std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>;

// The value of r, or its Error thrown.
template <class T>
T unwrap(Result<T> r) {
    return std::move(r).value();
}

// A kernel BTF for WorldOptions::kernel_btf: a raw BTF file (/sys/kernel/btf/vmlinux, a
// recording) or an ELF object's .BTF section.
inline std::shared_ptr<const btf::Btf> kernel_btf(const std::filesystem::path& path) {
    return unwrap(harness::load_kernel_btf(path));
}

// A run that trapped (out-of-bounds access, budget exhausted, ...), thrown by Run::r0().
class Trapped : public std::runtime_error {
public:
    Trapped(std::string program, vm::Trap trap)
        : std::runtime_error("program '" + program + "' trapped: " + trap.message), program_(std::move(program)), trap_(std::move(trap)) {}
    const std::string& program() const { return program_; }
    const vm::Trap& trap() const { return trap_; }

private:
    std::string program_;
    vm::Trap trap_;
};

// One run of a program: ProgramRun (result, packet afterwards, trace, redirect) and helpers.
struct Run : ProgramRun {
    std::string program;
    ProgType type = ProgType::Unspec;

    bool trapped() const { return result.trap.has_value(); }
    // The return value; throws Trapped when the run trapped.
    uint64_t r0() const {
        if (result.trap) throw Trapped(program, *result.trap);
        return result.r0;
    }
    // What r0 means for the program's type: "XDP_DROP", "TC_ACT_OK", "keep 64 bytes", "0".
    // Throws Trapped when the run trapped.
    std::string verdict() const { return harness::describe_return(type, r0()); }
    // This run's bpf_trace_printk messages, without their trailing newline.
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        for (const auto& e : trace) {
            std::string m = e.message;
            if (!m.empty() && m.back() == '\n') m.pop_back();
            out.push_back(std::move(m));
        }
        return out;
    }
    // This run's lines as /sys/kernel/tracing/trace_pipe shows them.
    std::vector<std::string> trace_lines() const {
        std::vector<std::string> out;
        for (const auto& e : trace) out.push_back(harness::trace_pipe_line(e));
        return out;
    }
};

// An object and the world it runs in, owned together (a World refers to its Object).
class Sim {
public:
    explicit Sim(const std::filesystem::path& object, WorldOptions opts = {})
        : obj_(std::make_unique<Object>(unwrap(Object::open(object)))), world_(unwrap(World::create(*obj_, std::move(opts)))) {}

    Object& object() { return *obj_; }
    const Object& object() const { return *obj_; }
    World& world() { return *world_; }
    const World& world() const { return *world_; }

    // ── running ──
    // A networking program (xdp, tc, socket filter, cgroup skb) on a packet from the
    // Ethernet header on.
    Run run_packet(std::string_view prog, const std::vector<uint8_t>& packet, const RunOptions& ro = {}) {
        const harness::ProgramDef& def = program(prog);
        return finish(def, world_->run_packet(def.name, packet, ro));
    }
    // Any other program, with the context the kernel builds for its type and attach point
    // (harness::build_context): {.args = {...}}, {.fields = {{"di", 1}}}, {.strings = {...}}.
    Run run_trace(std::string_view prog, const ContextSpec& spec = {}, const RunOptions& ro = {}) {
        const harness::ProgramDef& def = program(prog);
        const harness::CtxKind kind = harness::ctx_kind(def.type);
        if (kind == harness::CtxKind::XdpMd || kind == harness::CtxKind::SkBuff)
            throw Error(ErrorCode::Usage, "program '" + def.name + "' takes a packet: use run_packet", where());
        auto ctx = unwrap(harness::build_context(def.type, def.attach, spec, world_->options(),
                                                 world_->has_kernel() ? &world_->kernel() : nullptr));
        return finish(def, world_->run_ctx(def.name, std::move(ctx), ro));
    }
    // A program with context bytes given as they are.
    Run run_ctx(std::string_view prog, std::vector<uint8_t> ctx, const RunOptions& ro = {}) {
        const harness::ProgramDef& def = program(prog);
        return finish(def, world_->run_ctx(def.name, std::move(ctx), ro));
    }

    // ── maps, as userspace sees them through bpf(2) ──
    // By name; throws NotFound listing the object's maps.
    Map& map(std::string_view name) const {
        if (Map* m = world_->map(name)) return *m;
        std::string names;
        for (const auto& d : obj_->maps()) names += (names.empty() ? "" : ", ") + d.name;
        const bool declared = std::any_of(obj_->maps().begin(), obj_->maps().end(), [&](const auto& d) { return d.name == name; });
        throw Error(ErrorCode::NotFound,
                    declared ? "map '" + std::string(name) + "' could not be created in this world"
                             : "no map '" + std::string(name) + "' (maps: " + (names.empty() ? "none" : names) + ")",
                    where());
    }
    // Typed entries: K and V must have the map's key and value sizes. Per-CPU maps of a
    // world with several CPUs take lookup_percpu; update and lookup give CPU 0's value there.
    template <Bytewise K, Bytewise V>
    void update(std::string_view name, const K& key, const V& value, uint64_t flags = harness::kBpfAny) {
        Map& m = typed(name, sizeof(K), sizeof(V));
        std::vector<uint8_t> buf(m.user_value_size(), 0);
        std::memcpy(buf.data(), &value, sizeof(V));
        check(m, "update", m.user_update(&key, buf.data(), flags));
    }
    template <Bytewise V, Bytewise K>
    std::optional<V> lookup(std::string_view name, const K& key) const {
        Map& m = typed(name, sizeof(K), sizeof(V));
        std::vector<uint8_t> buf(m.user_value_size(), 0);
        const int64_t rc = m.user_lookup(&key, buf.data());
        if (rc == harness::errc::kENOENT) return std::nullopt;
        check(m, "lookup", rc);
        V v;
        std::memcpy(&v, buf.data(), sizeof(V));
        return v;
    }
    // Every CPU's value (WorldOptions::ncpus of them); empty when the key is absent.
    template <Bytewise V, Bytewise K>
    std::vector<V> lookup_percpu(std::string_view name, const K& key) const {
        Map& m = typed(name, sizeof(K), sizeof(V), true);
        std::vector<uint8_t> buf(m.user_value_size(), 0);
        const int64_t rc = m.user_lookup(&key, buf.data());
        if (rc == harness::errc::kENOENT) return {};
        check(m, "lookup", rc);
        const std::size_t stride = (m.def().value_size + 7) / 8 * 8;
        std::vector<V> out(m.options().ncpus);
        for (std::size_t c = 0; c < out.size(); ++c) std::memcpy(&out[c], buf.data() + c * stride, sizeof(V));
        return out;
    }
    // Whether the key was there.
    template <Bytewise K>
    bool erase(std::string_view name, const K& key) {
        Map& m = map(name);
        check_size(m, "key", sizeof(K), m.def().key_size);
        const int64_t rc = m.user_delete(&key);
        if (rc == harness::errc::kENOENT) return false;
        check(m, "delete", rc);
        return true;
    }
    // Every entry, in get_next_key order.
    template <Bytewise K, Bytewise V>
    std::vector<std::pair<K, V>> entries(std::string_view name) const {
        Map& m = typed(name, sizeof(K), sizeof(V));
        std::vector<std::pair<K, V>> out;
        for (const auto& [k, v] : harness::dump_map(m, m.options().ncpus)) {
            std::pair<K, V> e;
            std::memcpy(&e.first, k.data(), sizeof(K));
            std::memcpy(&e.second, v.data(), sizeof(V));
            out.push_back(e);
        }
        return out;
    }
    // Raw bytes: the key has the map's key size; the value the map's value size, or for
    // per-CPU maps every CPU's value, each padded to 8 bytes (as bpf(2) takes them).
    void update_raw(std::string_view name, const std::vector<uint8_t>& key, const std::vector<uint8_t>& value,
                    uint64_t flags = harness::kBpfAny) {
        Map& m = map(name);
        check_size(m, "key", key.size(), m.def().key_size);
        check_size(m, "value", value.size(), m.user_value_size());
        check(m, "update", m.user_update(key.data(), value.data(), flags));
    }
    std::optional<std::vector<uint8_t>> lookup_raw(std::string_view name, const std::vector<uint8_t>& key) const {
        Map& m = map(name);
        check_size(m, "key", key.size(), m.def().key_size);
        std::vector<uint8_t> value(m.user_value_size(), 0);
        const int64_t rc = m.user_lookup(key.data(), value.data());
        if (rc == harness::errc::kENOENT) return std::nullopt;
        check(m, "lookup", rc);
        return value;
    }
    // Every entry as bytes, in get_next_key order (per-CPU values: every CPU's, as above).
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump_raw(std::string_view name) const {
        Map& m = map(name);
        return harness::dump_map(m, m.options().ncpus);
    }
    // A map as `bpftool map dump -j` prints it.
    std::string map_json(std::string_view name) const {
        Map& m = map(name);
        return harness::map_dump_json(m.def(), harness::dump_map(m, m.options().ncpus), m.options().ncpus);
    }
    // Entries from a JSON file (harness::load_map_init: `map dump --json` output); how many.
    std::size_t load_maps(const std::filesystem::path& json) { return unwrap(harness::load_map_init(*world_, json)); }

    // ── global variables (.data, .rodata, .bss), by symbol name ──
    // T must have the variable's size. .rodata may be set before the runs that read it, as a
    // libbpf skeleton sets it before load.
    template <Bytewise T>
    T global(std::string_view name) const {
        const Global g = find_global(name, sizeof(T));
        T v;
        std::memcpy(&v, g.image.data() + g.offset, sizeof(T));
        return v;
    }
    template <Bytewise T>
    void set_global(std::string_view name, const T& value) {
        Global g = find_global(name, sizeof(T));
        std::memcpy(g.image.data() + g.offset, &value, sizeof(T));
        const uint32_t zero = 0;
        check(*g.map, "update", g.map->user_update(&zero, g.image.data(), harness::kBpfAny));
    }

    // ── output ──
    // Every trace message so far, without trailing newlines (Run::messages has one run's).
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        for (const auto& e : world_->trace) out.push_back(e.message.ends_with('\n') ? e.message.substr(0, e.message.size() - 1) : e.message);
        return out;
    }
    void clear_trace() { world_->trace.clear(); }
    // Ring buffer records submitted since the last call (consumed), in order.
    std::vector<std::vector<uint8_t>> ringbuf_records(std::string_view name) {
        auto* rb = dynamic_cast<RingbufMap*>(&map(name));
        if (!rb) throw Error(ErrorCode::Usage, "map '" + std::string(name) + "' is not a ring buffer", where());
        return rb->drain();
    }
    // The same as T (the program's event struct); a record shorter than T is an Error.
    template <Bytewise T>
    std::vector<T> ringbuf(std::string_view name) {
        std::vector<T> out;
        for (const auto& r : ringbuf_records(name)) {
            if (r.size() < sizeof(T))
                throw Error(ErrorCode::Usage, "ring buffer '" + std::string(name) + "': a record of " + std::to_string(r.size()) +
                                                  " bytes is shorter than the type (" + std::to_string(sizeof(T)) + ")", where());
            T v;
            std::memcpy(&v, r.data(), sizeof(T));
            out.push_back(v);
        }
        return out;
    }
    // Perf event array output since the last call (consumed), with the CPU of each record.
    std::vector<PerfEventArrayMap::Record> perf_records(std::string_view name) {
        auto* pe = dynamic_cast<PerfEventArrayMap*>(&map(name));
        if (!pe) throw Error(ErrorCode::Usage, "map '" + std::string(name) + "' is not a perf event array", where());
        auto out = pe->records();
        pe->clear_records();
        return out;
    }

    // ── the simulated kernel (needs WorldOptions::kernel_btf) ──
    // A task_struct (and cred); its address. Parents: TaskSpec::parent = an earlier task.
    uint64_t add_task(const TaskSpec& t) { return unwrap(world_->add_task(t)); }
    // The task bpf_get_current_task / _pid_tgid / _comm / _uid_gid see; 0: WorldOptions'.
    void current(uint64_t task) { world_->current_task = task; }
    // A NUL-terminated string in the current process's user memory (bpf_probe_read_user).
    uint64_t user_string(std::string_view s) { return world_->kernel().string(s, harness::KernelMemory::Space::User); }
    // The virtual clock (bpf_ktime_get_ns); it starts at WorldOptions::clock_ns.
    void advance(uint64_t ns) { world_->advance(ns); }
    uint64_t now_ns() const { return world_->now_ns(); }

private:
    std::unique_ptr<Object> obj_;
    std::unique_ptr<World> world_;

    Location where() const {
        Location l;
        l.file = obj_->path();
        return l;
    }
    const harness::ProgramDef& program(std::string_view name) const {
        if (const harness::ProgramDef* d = obj_->find_program(name)) return *d;
        throw obj_->link(name).error();   // its message lists the programs
    }
    Run finish(const harness::ProgramDef& def, Result<ProgramRun> r) const {
        Run out;
        static_cast<ProgramRun&>(out) = unwrap(std::move(r));
        out.program = def.name;
        out.type = def.type;
        return out;
    }
    static bool percpu(const Map& m) {
        using harness::MapType;
        const MapType t = m.def().type;
        return t == MapType::PercpuArray || t == MapType::PercpuHash || t == MapType::LruPercpuHash || t == MapType::PercpuCgroupStorage;
    }
    void check_size(const Map& m, const char* what, std::size_t have, std::size_t want) const {
        if (have != want)
            throw Error(ErrorCode::Usage, "map '" + m.def().name + "': the " + what + " type has " + std::to_string(have) +
                                              " bytes, the map's " + what + " " + std::to_string(want), where());
    }
    Map& typed(std::string_view name, std::size_t key, std::size_t value, bool want_percpu = false) const {
        Map& m = map(name);
        check_size(m, "key", key, m.def().key_size);
        check_size(m, "value", value, m.def().value_size);
        if (want_percpu && !percpu(m))
            throw Error(ErrorCode::Usage, "map '" + m.def().name + "' is not per-CPU: use lookup", where());
        if (!want_percpu && percpu(m) && m.options().ncpus > 1)
            throw Error(ErrorCode::Usage, "map '" + m.def().name + "' is per-CPU with several CPUs: use lookup_percpu", where());
        return m;
    }
    void check(const Map& m, const char* op, int64_t rc) const {
        if (rc < 0) throw Error(ErrorCode::Usage, "map '" + m.def().name + "': " + op + " failed with errno " + std::to_string(-rc), where());
    }
    struct Global {
        Map* map;
        uint64_t offset;
        std::vector<uint8_t> image;   // the section's whole value
    };
    Global find_global(std::string_view name, std::size_t size) const {
        const auto& elf = obj_->elf();
        for (const auto& s : elf.symbols()) {
            const harness::ElfSection* sec = s.name == name ? elf.section(s.section) : nullptr;
            if (!sec) continue;
            for (std::size_t i = 0; i < obj_->maps().size(); ++i) {
                const harness::MapDef& d = obj_->maps()[i];
                using O = harness::MapDef::Origin;
                if ((d.origin != O::Data && d.origin != O::Rodata && d.origin != O::Bss) || d.section != sec->name) continue;
                Map* m = world_->map_at(i);
                if (!m) break;
                if (s.size != size || s.value + size > d.value_size)
                    throw Error(ErrorCode::Usage, "global '" + std::string(name) + "' has " + std::to_string(s.size) +
                                                      " bytes, the type " + std::to_string(size), where());
                Global g{m, s.value, std::vector<uint8_t>(m->user_value_size())};
                const uint32_t zero = 0;
                check(*m, "lookup", m->user_lookup(&zero, g.image.data()));
                return g;
            }
        }
        throw Error(ErrorCode::NotFound, "no global variable '" + std::string(name) + "' in .data, .rodata or .bss", where());
    }
};

// ── packets ──

// An Ethernet + IPv4 (or IPv6) packet with a UDP, TCP or ICMP header, checksums filled in
// (harness::build_packet; scenarios build theirs the same way).
using Ipv4Packet = harness::PacketSpec;
using PacketSpec = harness::PacketSpec;

inline std::vector<uint8_t> ipv4_packet(const PacketSpec& p) { return unwrap(harness::build_packet(p)); }
inline std::vector<uint8_t> packet(const PacketSpec& p) { return unwrap(harness::build_packet(p)); }
inline std::vector<uint8_t> udp4(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                                 std::vector<uint8_t> payload = {}) {
    return ipv4_packet({.src = src, .dst = dst, .protocol = 17, .sport = sport, .dport = dport, .payload = std::move(payload)});
}
inline std::vector<uint8_t> tcp4(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport, uint8_t flags = 0x02,
                                 std::vector<uint8_t> payload = {}) {
    return ipv4_packet({.src = src, .dst = dst, .protocol = 6, .sport = sport, .dport = dport, .tcp_flags = flags, .payload = std::move(payload)});
}

// ── scenarios (YAML; see harness/scenario.hpp and the README) ──

// Loads a scenario and runs it once per kernel BTF it names (once when it names none).
// Relative paths in it are looked up beside it, then in `search`. Load errors are thrown.
// Verifier expectations are checked against the verifier model, as `bpfsim test` does.
inline std::vector<ScenarioOutcome> run_scenario_file(const std::filesystem::path& file, const std::vector<std::filesystem::path>& search = {},
                                                      const RunOptions& ro = {}) {
    const Scenario s = unwrap(harness::load_scenario(file, search));
    std::vector<ScenarioOutcome> out;
    const harness::VerifierFn model = verifier::scenario_verifier();
    for (std::size_t b = 0; b < std::max<std::size_t>(1, s.btf.size()); ++b) out.push_back(harness::run_scenario(s, b, ro, model));
    return out;
}
inline bool passed(const std::vector<ScenarioOutcome>& outcomes) {
    return std::all_of(outcomes.begin(), outcomes.end(), [](const ScenarioOutcome& o) { return o.passed(); });
}
// "ok   step [btf]" / "FAIL step [btf]" lines with the failures and trace of failed steps.
inline std::string summary(const std::vector<ScenarioOutcome>& outcomes) {
    std::string s;
    for (const auto& o : outcomes) {
        const std::string kernel = o.btf.empty() ? "" : " [" + o.btf.filename().string() + "]";
        for (const auto& st : o.steps) {
            s += (st.passed ? "ok   " : "FAIL ") + st.name + kernel + "\n";
            if (st.passed) continue;
            for (const auto& f : st.failures) s += "    " + f + "\n";
            for (const auto& l : st.trace_lines) s += "    | " + l + "\n";
        }
        if (o.error) s += "FAIL" + kernel + ": " + o.error->describe() + "\n";
    }
    return s;
}

}  // namespace bpfsim
