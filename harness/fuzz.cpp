// Fuzzing a program's inputs: the byte layout, the worlds runs happen in, and the oracles.
#include "harness/fuzz.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace bpfsim::harness {

namespace {

bool keyless(MapType t) { return t == MapType::Queue || t == MapType::Stack || t == MapType::BloomFilter; }
bool is_array(MapType t) { return t == MapType::Array || t == MapType::PercpuArray; }
bool is_percpu(MapType t) { return t == MapType::PercpuArray || t == MapType::PercpuHash || t == MapType::LruPercpuHash; }
// Maps whose entries user space writes as plain bytes, and that run() can put back entry by entry.
bool restorable(MapType t) {
    return t == MapType::Hash || t == MapType::LruHash || t == MapType::PercpuHash || t == MapType::LruPercpuHash ||
           t == MapType::LpmTrie || t == MapType::Array || t == MapType::PercpuArray;
}
bool fuzzable(MapType t) { return restorable(t) || keyless(t); }

// Helpers that change which entries a map holds (their value memory is compared directly).
constexpr int32_t kMapUpdate = 2, kMapDelete = 3, kMapPush = 87, kMapPop = 88;

bool is_packet_program(const ProgramDef& def) {
    const CtxKind k = ctx_kind(def.type);
    return k == CtxKind::XdpMd || k == CtxKind::SkBuff;
}

// The innermost "pc N: " of a trap message: traps in bpf_loop & co. callbacks are reported at
// the helper call as "pc 76: helper 181 failed: in callback at pc 83: pc 109: ...".
std::pair<std::size_t, std::string_view> innermost(std::size_t pc, std::string_view msg) {
    const std::string_view marker = "in callback at pc ";
    for (auto at = msg.find(marker); at != std::string_view::npos; at = msg.find(marker)) {
        msg.remove_prefix(at + marker.size());
        const auto colon = msg.find(": pc ");
        if (colon == std::string_view::npos) break;
        msg.remove_prefix(colon + 5);
        std::size_t v = 0, i = 0;
        while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9') v = v * 10 + static_cast<std::size_t>(msg[i++] - '0');
        if (i == 0) break;
        pc = v;
    }
    return {pc, msg};
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string hex(const std::vector<uint8_t>& b, std::size_t max = 64) {
    std::string s;
    for (std::size_t i = 0; i < b.size() && i < max; ++i) s += fmt::format("{:02x}", b[i]);
    if (b.size() > max) s += fmt::format("... ({} bytes)", b.size());
    return s;
}

}  // namespace

Result<FuzzMapSpec> parse_fuzz_map_spec(std::string_view text) {
    return catch_error([&]() -> FuzzMapSpec {
        FuzzMapSpec m;
        const auto colon = text.rfind(':');
        m.name = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            const auto n = parse_integer(text.substr(colon + 1));
            if (!n || *n == 0 || *n > 4096)
                throw Error(ErrorCode::Usage, fmt::format("--fuzz-map '{}': write NAME or NAME:N with 1 <= N <= 4096 entries", text));
            m.entries = static_cast<uint32_t>(*n);
        }
        if (m.name.empty()) throw Error(ErrorCode::Usage, fmt::format("--fuzz-map '{}': no map name", text));
        return m;
    });
}

const char* to_string(FuzzFinding::Kind kind) {
    switch (kind) {
    case FuzzFinding::Kind::MemoryFault: return "memory fault";
    case FuzzFinding::Kind::HelperMisuse: return "helper misuse";
    case FuzzFinding::Kind::Budget: return "instruction budget exhausted";
    case FuzzFinding::Kind::Trap: return "trap";
    case FuzzFinding::Kind::Assertion: return "scenario assertion failed";
    case FuzzFinding::Kind::Divergence: return "interpreter/JIT divergence";
    }
    return "?";
}

std::size_t FuzzLayout::map_bytes() const {
    std::size_t n = 0;
    for (const auto& m : maps) n += m.record() * m.entries;
    return n;
}

std::size_t FuzzLayout::max_len() const { return map_bytes() + (packet ? 1514 : base_ctx.size()); }

FuzzInput decode_fuzz_input(const FuzzLayout& layout, std::span<const uint8_t> bytes) {
    FuzzInput in;
    std::size_t at = 0;
    auto take = [&](std::size_t n) {
        std::vector<uint8_t> out(n, 0);
        const std::size_t have = at < bytes.size() ? std::min(n, bytes.size() - at) : 0;
        if (have) std::memcpy(out.data(), bytes.data() + at, have);
        at += n;
        return out;
    };
    for (std::size_t p = 0; p < layout.maps.size(); ++p) {
        const auto& m = layout.maps[p];
        for (uint32_t e = 0; e < m.entries; ++e) {
            FuzzMapEntry en;
            en.part = p;
            if (!m.keyless) en.key = take(m.key_size);
            en.value = take(m.value_size);
            if (is_array(m.type) && m.max_entries && en.key.size() >= 4) {
                uint32_t idx = 0;
                std::memcpy(&idx, en.key.data(), 4);
                idx %= m.max_entries;
                std::memcpy(en.key.data(), &idx, 4);
            }
            in.entries.push_back(std::move(en));
        }
    }
    const std::span<const uint8_t> data = at < bytes.size() ? bytes.subspan(at) : std::span<const uint8_t>{};
    if (layout.packet) {
        in.data.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(std::min(data.size(), kFuzzMaxPacket)));
        if (in.data.size() < kFuzzMinPacket) in.data.resize(kFuzzMinPacket, 0);
    } else {
        in.data = layout.base_ctx;
        if (const std::size_t n = std::min(data.size(), in.data.size())) std::memcpy(in.data.data(), data.data(), n);
    }
    return in;
}

std::vector<uint8_t> encode_fuzz_input(const FuzzLayout& layout, std::span<const uint8_t> data) {
    std::vector<uint8_t> out(layout.map_bytes(), 0);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

Result<FuzzLayout> make_fuzz_layout(const Object& obj, const ProgramDef& def, const std::vector<FuzzMapSpec>& maps,
                                    std::vector<uint8_t> base_ctx) {
    return catch_error([&]() -> FuzzLayout {
        FuzzLayout l;
        l.packet = is_packet_program(def);
        if (!l.packet) {
            if (base_ctx.empty()) throw Error(ErrorCode::Internal, fmt::format("program '{}': no context to fuzz", def.name));
            l.base_ctx = std::move(base_ctx);
        }
        for (const auto& spec : maps) {
            auto it = std::find_if(obj.maps().begin(), obj.maps().end(), [&](const MapDef& d) { return d.name == spec.name; });
            if (it == obj.maps().end()) {
                std::string known;
                for (const auto& d : obj.maps()) known += (known.empty() ? "" : ", ") + d.name;
                throw Error(ErrorCode::Usage, fmt::format("--fuzz-map: no map '{}' in {} (maps: {})", spec.name, obj.path(), known.empty() ? "none" : known));
            }
            if (!fuzzable(it->type) || it->frozen)
                throw Error(ErrorCode::Usage, fmt::format("--fuzz-map: map '{}' is a {}{}, whose entries cannot be fuzzed (hash, LRU, LPM trie, array, "
                                                          "per-CPU, queue, stack and bloom filter maps can)",
                                                          spec.name, to_string(it->type), it->frozen ? " (read-only)" : ""));
            FuzzLayout::MapPart p;
            p.name = spec.name;
            p.index = static_cast<std::size_t>(it - obj.maps().begin());
            p.type = it->type;
            p.key_size = it->key_size;
            p.value_size = it->value_size;
            p.max_entries = it->max_entries;
            p.entries = spec.entries;
            p.keyless = keyless(it->type);
            l.maps.push_back(std::move(p));
        }
        return l;
    });
}

// ─────────────────────────────── the target ───────────────────────────────

namespace {

// A world and what puts it back as it was after setup.
struct Saved {
    std::unique_ptr<World> world;
    uint64_t clock = 0;
    struct Mem {
        uint8_t* at;
        std::vector<uint8_t> bytes;
    };
    std::vector<Mem> memory;   // writable map memory (values, global data)
    std::vector<std::pair<std::size_t, std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>>> entries;   // map index, entries
};

constexpr std::size_t kMaxSavedMemory = 2u << 20;
constexpr std::size_t kUnknownCtx = 1024;   // bytes of a context whose layout bpfsim does not know   // per world; larger maps are not compared or put back

struct Outcome {
    ProgramRun run;
    std::vector<std::pair<std::string, std::vector<uint8_t>>> records;   // ring buffer / perf output, by map
    bool mutated = false;              // entries were added, deleted, pushed or popped
};

}  // namespace

struct FuzzTarget::Impl {
    const Object* obj = nullptr;
    FuzzOptions opts;
    const ProgramDef* def = nullptr;
    std::optional<Scenario> scen_a, scen_b;   // the scenario, with each world's engine
    std::optional<FuzzOracle> oracle;
    FuzzLayout layout;
    std::vector<std::vector<uint8_t>> seeds;
    Saved a, b;                        // the reused worlds: interpreter (counted), JIT
    bool built = false;
    vm::Coverage cov;
    std::map<std::string, vm::Coverage, std::less<>> other_cov;   // tail-call targets, by name
    std::vector<std::pair<const vm::Program*, const vm::Coverage*>> last;
    std::vector<uint8_t> ever;
    std::size_t n_insns = 0, n_covered = 0;
    FuzzStats stats;

    WorldOptions options_for(bool jit) const {
        WorldOptions wo = opts.world;
        wo.engine = jit ? Engine::Jit : Engine::Interpreter;
        if (jit && opts.second_world) opts.second_world(wo);
        return wo;
    }

    vm::RunOptions run_options() const {
        vm::RunOptions ro;
        ro.budget = opts.budget;
        return ro;
    }

    // A world as the fuzzed run finds it (the scenario's steps before it done), and the
    // scenario step's context spec.
    Saved make(bool jit, ContextSpec* ctx) {
        Saved s;
        if (opts.scenario) {
            auto sw = scenario_world(jit ? *scen_b : *scen_a, *obj, opts.btf_index, opts.step, run_options());
            if (!sw) throw sw.error();
            s.world = std::move(sw->world);
            if (ctx) *ctx = std::move(sw->ctx);
        } else {
            auto w = World::create(*obj, options_for(jit));
            if (!w) throw w.error();
            s.world = std::move(w.value());
        }
        World& w = *s.world;
        if (auto c = w.compiled(def->name); !c) throw c.error();
        s.clock = w.now_ns();
        std::size_t total = 0;
        for (std::size_t i = 0; i < obj->maps().size(); ++i) {
            Map* m = w.map_at(i);
            if (!m || m->def().type == MapType::Ringbuf) continue;
            for (const auto& r : m->regions()) {
                if (!(r.perm & vm::kWrite) || total + r.size > kMaxSavedMemory) continue;
                total += r.size;
                auto* p = reinterpret_cast<uint8_t*>(r.start);
                s.memory.push_back({p, std::vector<uint8_t>(p, p + r.size)});
            }
            if (restorable(m->def().type)) s.entries.emplace_back(i, dump_map(*m, w.options().ncpus));
        }
        return s;
    }

    void build() {
        ++stats.rebuilds;
        a = make(false, nullptr);
        if (opts.differential) b = make(true, nullptr);
        built = true;
        other_cov.clear();
    }

    // Puts a world back as make() left it; false when it cannot be (queues, stacks, bloom filters).
    bool restore(Saved& s, bool mutated) {
        World& w = *s.world;
        w.advance(s.clock - w.now_ns());   // wraps around to the saved time
        w.trace.clear();
        for (auto& m : s.memory)
            if (!m.bytes.empty() && std::memcmp(m.at, m.bytes.data(), m.bytes.size()) != 0) std::memcpy(m.at, m.bytes.data(), m.bytes.size());
        if (!mutated) return true;
        for (const auto& [i, saved] : s.entries) {
            Map* m = w.map_at(i);
            auto now = dump_map(*m, w.options().ncpus);
            if (now == saved) continue;
            for (const auto& cur : now)   // (no structured bindings: clang 14 cannot capture them)
                if (std::none_of(saved.begin(), saved.end(), [&](const auto& e) { return e.first == cur.first; })) m->user_delete(cur.first.data());
            for (const auto& want : saved) {
                auto it = std::find_if(now.begin(), now.end(), [&](const auto& e) { return e.first == want.first; });
                if (it == now.end() || it->second != want.second) m->user_update(want.first.data(), want.second.data(), 0);
            }
        }
        // Queues, stacks and bloom filters have no keys to put back by: make the worlds afresh.
        return std::none_of(obj->maps().begin(), obj->maps().end(), [](const MapDef& d) { return keyless(d.type); });
    }

    // Runs the decoded input in one world.
    Outcome execute(World& w, const FuzzInput& in, bool counted) {
        Outcome o;
        for (const auto& en : in.entries) {
            const auto& part = layout.maps[en.part];
            Map* m = w.map_at(part.index);
            if (!m) throw Error(ErrorCode::Unsupported, fmt::format("map '{}' could not be created", part.name));
            std::vector<uint8_t> value(m->user_value_size(), 0);
            if (is_percpu(part.type)) {   // the same value on every CPU
                const std::size_t stride = (part.value_size + 7) / 8 * 8;
                for (std::size_t off = 0; off + part.value_size <= value.size(); off += stride) std::memcpy(value.data() + off, en.value.data(), part.value_size);
            } else {
                if (const std::size_t n = std::min(value.size(), en.value.size())) std::memcpy(value.data(), en.value.data(), n);
            }
            if (part.keyless) m->push(value.data(), 0);   // a full queue refuses it, as bpf(2) would
            else m->user_update(en.key.data(), value.data(), 0);
            o.mutated = true;
        }
        vm::RunOptions ro = run_options();
        if (counted) {
            cov.reset((*w.compiled(def->name))->program().insns.size());
            for (auto& [name, c] : other_cov) std::fill(c.hits.begin(), c.hits.end(), 0), std::fill(c.taken.begin(), c.taken.end(), 0);
            ro.coverage = &cov;
            ro.counters = [this](const vm::Program& p) -> vm::Coverage* {
                if (p.name == def->name) return &cov;
                return &other_cov[p.name];
            };
        }
        auto r = layout.packet ? w.run_packet(def->name, in.data, ro) : w.run_ctx(def->name, in.data, ro);
        if (!r) throw r.error();
        o.run = std::move(r.value());
        for (std::size_t i = 0; i < obj->maps().size(); ++i) {
            Map* m = w.map_at(i);
            if (auto* rb = dynamic_cast<RingbufMap*>(m)) {
                for (auto& rec : rb->drain()) o.records.emplace_back(obj->maps()[i].name, std::move(rec));
            } else if (auto* pe = dynamic_cast<PerfEventArrayMap*>(m)) {
                for (const auto& rec : pe->records()) o.records.emplace_back(obj->maps()[i].name, rec.data);
                pe->clear_records();
            }
        }
        for (int32_t id : {kMapUpdate, kMapDelete, kMapPush, kMapPop})
            if (o.run.helper_calls.count(id)) o.mutated = true;
        return o;
    }

    std::string source_of(World& w, std::size_t pc, std::string_view message) const {
        if (w.tail_calls == 0) {
            auto c = w.compiled(def->name);
            return c ? (*c)->program().source_line(pc) : std::string();
        }
        // Another program's pc: the interpreter put its source line in the message.
        const auto open = message.find(" (");
        const auto close = message.find(')', open == std::string_view::npos ? 0 : open);
        if (open == std::string_view::npos || close == std::string_view::npos) return {};
        return std::string(message.substr(open + 2, close - open - 2));
    }

    std::optional<FuzzFinding> classify_trap(World& w, const vm::Trap& t) const {
        FuzzFinding f;
        const auto [pc, inner] = innermost(t.pc, t.message);
        f.pc = pc;
        f.message = t.message;
        // fentry/fexit, tp_btf and LSM programs read kernel pointers from their arguments directly;
        // the kernel reads 0 where such a load faults. A fuzzed argument that is no pointer is not a bug.
        if ((def->type == ProgType::Tracing || def->type == ProgType::Lsm) && t.kind == vm::TrapKind::MemoryFault &&
            (contains(t.message, "outside every region") || contains(t.message, "no memory is mapped"))) {
            auto c = w.compiled(def->name);
            if (c && t.pc < (*c)->program().insns.size() && vm::code::cls((*c)->program().insns[t.pc].code) == vm::code::LDX) return std::nullopt;
        }
        switch (t.kind) {
        case vm::TrapKind::MemoryFault:
        case vm::TrapKind::Misaligned: f.kind = FuzzFinding::Kind::MemoryFault; break;
        case vm::TrapKind::Budget: f.kind = FuzzFinding::Kind::Budget; break;
        case vm::TrapKind::Helper:
            // A trap inside a callback reaches us as the helper's failure.
            if (contains(inner, "instruction budget of")) f.kind = FuzzFinding::Kind::Budget;
            else if (contains(inner, "invalid memory access") || contains(inner, "misaligned")) f.kind = FuzzFinding::Kind::MemoryFault;
            else if (contains(inner, "call depth")) f.kind = FuzzFinding::Kind::Trap;
            else f.kind = FuzzFinding::Kind::HelperMisuse;
            break;
        case vm::TrapKind::BadCall: f.kind = FuzzFinding::Kind::HelperMisuse; break;
        default: f.kind = FuzzFinding::Kind::Trap; break;
        }
        f.source = source_of(w, pc, inner);
        return f;
    }

    // The exit the main function returned by, when one is unambiguous (for assertion findings).
    std::optional<std::size_t> exit_pc(World& w) const {
        auto c = w.compiled(def->name);
        if (!c) return std::nullopt;
        const vm::Program& p = (*c)->program();
        std::size_t end = p.insns.size();
        for (const auto& [first, name] : p.functions)
            if (first > 0) end = std::min(end, first);
        std::optional<std::size_t> found;
        for (std::size_t pc = 0; pc < end && pc < cov.hits.size(); ++pc)
            if (p.insns[pc].code == 0x95 && cov.hits[pc]) {
                if (found) return std::nullopt;
                found = pc;
            }
        return found;
    }

    // What differs between the interpreter's and the JIT's run, "" when nothing does.
    std::string compare(const Outcome& x, const Outcome& y) const {
        const vm::RunResult& i = x.run.result;
        const vm::RunResult& j = y.run.result;
        auto what = [](const vm::RunResult& r) {
            return r.trap ? fmt::format("trap ({}) at pc {}: {}", vm::to_string(r.trap->kind), r.trap->pc, r.trap->message)
                          : fmt::format("return {}", static_cast<int64_t>(r.r0));
        };
        if (i.trap.has_value() != j.trap.has_value() || (i.trap && (i.trap->kind != j.trap->kind || i.trap->pc != j.trap->pc)) ||
            (!i.trap && i.r0 != j.r0))
            return fmt::format("interpreter: {}; JIT: {}", what(i), what(j));
        if (i.insns != j.insns) return fmt::format("instructions run: interpreter {}, JIT {}", i.insns, j.insns);
        if (x.run.packet != y.run.packet) return fmt::format("packet afterwards: interpreter {}, JIT {}", hex(x.run.packet), hex(y.run.packet));
        if (x.run.redirected != y.run.redirected || x.run.redirect_ifindex != y.run.redirect_ifindex)
            return fmt::format("redirect: interpreter {}, JIT {}", x.run.redirect_ifindex, y.run.redirect_ifindex);
        const std::size_t lines = std::max(x.run.trace.size(), y.run.trace.size());
        for (std::size_t k = 0; k < lines; ++k) {
            const std::string a = k < x.run.trace.size() ? x.run.trace[k].message : "(none)";
            const std::string b = k < y.run.trace.size() ? y.run.trace[k].message : "(none)";
            if (a != b) return fmt::format("trace line {}: interpreter \"{}\", JIT \"{}\"", k + 1, a, b);
        }
        if (x.run.helper_calls != y.run.helper_calls) {
            auto calls = [](const std::map<int32_t, uint64_t>& m) {
                std::string s;
                for (const auto& [id, n] : m) s += fmt::format("{}{} x{}", s.empty() ? "" : ", ", vm::kernel_helper_name(id), n);
                return s.empty() ? std::string("none") : s;
            };
            return fmt::format("helper calls: interpreter {}; JIT {}", calls(x.run.helper_calls), calls(y.run.helper_calls));
        }
        if (x.records != y.records) return fmt::format("ring buffer / perf records: interpreter {}, JIT {}", x.records.size(), y.records.size());
        return {};
    }

    // Whether v points into a world: a region, the stack, or the arena of contexts and packets.
    static bool is_address(World& w, uint64_t v) {
        if (w.mem.find(v)) return true;
        const uint64_t hi = w.mem.stack_hi();
        if (v < hi && v + uint64_t(vm::kStackSize) * vm::kMaxCallDepth >= hi) return true;
        const auto low = reinterpret_cast<uint64_t>(w.key_scratch(1)) - 4096;   // the arena starts a page below the scratch area
        return v >= low && v < low + (1u << 20);
    }

    // Entries with the addresses of their world zeroed (8-byte words), sorted: comparable across worlds.
    static std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> normalized(
        World& w, std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries) {
        auto strip = [&](std::vector<uint8_t>& b) {
            for (std::size_t off = 0; off + 8 <= b.size(); off += 8) {
                uint64_t v = 0;
                std::memcpy(&v, b.data() + off, 8);
                if (v && is_address(w, v)) std::memset(b.data() + off, 0, 8);
            }
        };
        for (auto& [k, v] : entries) strip(k), strip(v);
        std::sort(entries.begin(), entries.end());
        return entries;
    }

    // Map contents after the run, between the two worlds.
    std::string compare_maps(Saved& x, Saved& y, bool mutated) const {
        for (std::size_t k = 0; k < x.memory.size() && k < y.memory.size(); ++k) {
            const auto& mx = x.memory[k];
            const auto& my = y.memory[k];
            if (mx.bytes.size() != my.bytes.size()) continue;
            if (std::memcmp(mx.at, my.at, mx.bytes.size()) == 0) continue;
            // Word by word: a pointer the program stored (stack, context, map value) is an
            // address of its own world, so two worlds store different numbers for the same thing.
            for (std::size_t off = 0; off < mx.bytes.size(); off += 8) {
                const std::size_t n = std::min<std::size_t>(8, mx.bytes.size() - off);
                if (std::memcmp(mx.at + off, my.at + off, n) == 0) continue;
                uint64_t vx = 0, vy = 0;
                std::memcpy(&vx, mx.at + off, n);
                std::memcpy(&vy, my.at + off, n);
                if (n == 8 && is_address(*x.world, vx) && is_address(*y.world, vy)) continue;
                std::size_t at = off;
                while (mx.at[at] == my.at[at]) ++at;
                const auto region = x.world->mem.find(reinterpret_cast<uint64_t>(mx.at));
                return fmt::format("map memory '{}' at offset {}: interpreter {:#04x}, JIT {:#04x}", region ? region->name : "?", at, mx.at[at],
                                   my.at[at]);
            }
        }
        if (!mutated) return {};
        for (std::size_t i = 0; i < obj->maps().size(); ++i) {
            Map* mx = x.world->map_at(i);
            Map* my = y.world->map_at(i);
            if (!mx || !my || !restorable(mx->def().type)) continue;
            if (normalized(*x.world, dump_map(*mx, x.world->options().ncpus)) != normalized(*y.world, dump_map(*my, y.world->options().ncpus)))
                return fmt::format("map '{}' entries differ between the interpreter and the JIT", obj->maps()[i].name);
        }
        return {};
    }

    // Runs one input in worlds a and b; `reused`: put them back afterwards.
    FuzzRun once(Saved& x, Saved* y, std::span<const uint8_t> bytes, bool reused) {
        const FuzzInput in = decode_fuzz_input(layout, bytes);
        Outcome ox = execute(*x.world, in, true);
        FuzzRun out;
        last.clear();
        if (auto c = x.world->compiled(def->name); c) last.emplace_back(&(*c)->program(), &cov);
        for (const auto& [name, c] : other_cov)
            if (auto p = x.world->compiled(name); p) last.emplace_back(&(*p)->program(), &c);
        for (std::size_t pc = 0; pc < cov.hits.size() && pc < ever.size(); ++pc)
            if (cov.hits[pc] && !ever[pc]) ever[pc] = 1, ++n_covered;
        if (y) {
            Outcome oy = execute(*y->world, in, false);
            std::string diff = compare(ox, oy);
            if (diff.empty()) diff = compare_maps(x, *y, ox.mutated || oy.mutated);
            if (!diff.empty()) {
                FuzzFinding f;
                f.kind = FuzzFinding::Kind::Divergence;
                f.message = diff;
                const vm::RunResult& i = ox.run.result;
                if (i.trap || oy.run.result.trap) {
                    const vm::Trap& t = i.trap ? *i.trap : *oy.run.result.trap;
                    f.pc = innermost(t.pc, t.message).first;
                    f.source = source_of(*x.world, *f.pc, t.message);
                }
                out.finding = std::move(f);
            }
            if (reused && !restore(*y, ox.mutated || oy.mutated)) built = false;
        }
        if (!out.finding && ox.run.result.trap) out.finding = classify_trap(*x.world, *ox.run.result.trap);
        if (!out.finding && oracle) {
            const auto broken = oracle->check(*x.world, def->type, ox.run);
            if (!broken.empty()) {
                FuzzFinding f;
                f.kind = FuzzFinding::Kind::Assertion;
                for (const auto& b : broken) f.message += (f.message.empty() ? "" : "; ") + b;
                if (auto pc = exit_pc(*x.world)) {
                    f.pc = pc;
                    f.source = source_of(*x.world, *pc, "");
                }
                out.finding = std::move(f);
            }
        }
        if (reused && !restore(x, ox.mutated)) built = false;
        out.run = std::move(ox.run);
        return out;
    }
};

FuzzTarget::FuzzTarget(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FuzzTarget::~FuzzTarget() = default;

Result<std::unique_ptr<FuzzTarget>> FuzzTarget::create(const Object& obj, FuzzOptions opts) {
    return catch_error([&]() -> std::unique_ptr<FuzzTarget> {
        auto impl = std::make_unique<Impl>();
        Impl& t = *impl;
        t.obj = &obj;
        t.opts = std::move(opts);
        t.def = obj.find_program(t.opts.program);
        if (!t.def) throw obj.link(t.opts.program).error();
        ContextSpec step_ctx;
        if (t.opts.scenario) {
            const Scenario& s = *t.opts.scenario;
            if (t.opts.step >= s.steps.size() || s.steps[t.opts.step].run.empty())
                throw Error(ErrorCode::Usage, fmt::format("{}: step {} runs no program", s.file.string(), t.opts.step + 1));
            if (obj.find_program(s.steps[t.opts.step].run) != t.def)
                throw Error(ErrorCode::Usage, fmt::format("{}: step {} runs '{}', not '{}'", s.file.string(), t.opts.step + 1,
                                                          s.steps[t.opts.step].run, t.def->name));
            t.scen_a = s;
            t.scen_a->world.engine = Engine::Interpreter;
            t.scen_b = s;
            t.scen_b->world.engine = Engine::Jit;
            if (t.opts.second_world) t.opts.second_world(t.scen_b->world);
            if (const auto& f = s.steps[t.opts.step].fuzz) {
                auto o = FuzzOracle::create(s, *f, obj);
                if (!o) throw o.error();
                t.oracle.emplace(std::move(o.value()));
            }
        }
        // The worlds first: they say whether the program can run at all.
        t.a = t.make(false, &step_ctx);
        if (t.opts.differential) t.b = t.make(true, nullptr);
        t.built = true;
        World& w = *t.a.world;
        std::vector<uint8_t> base;
        if (!is_packet_program(*t.def)) {
            auto c = build_context(t.def->type, t.def->attach, step_ctx, w.options(), w.has_kernel() ? &w.kernel() : nullptr);
            if (!c) throw c.error();
            base = std::move(c.value());
            // A context bpfsim has no layout for (socket, sock_ops, sk_msg, sysctl, ... contexts; a
            // tracepoint record without the kernel BTF's description: the header alone) is given room:
            // what a verified program reads of it lies inside the real one, which is larger.
            const CtxKind kind = ctx_kind(t.def->type);
            const bool known = kind == CtxKind::PtRegs || kind == CtxKind::PerfEventData || kind == CtxKind::U64Args ||
                               (kind == CtxKind::TracepointRecord && base.size() > 8);
            if (!known) base.resize(std::max<std::size_t>(base.size(), kUnknownCtx), 0);
        }
        auto l = make_fuzz_layout(obj, *t.def, t.opts.maps, base);
        if (!l) throw l.error();
        t.layout = std::move(l.value());
        t.n_insns = 0;
        const vm::Program& p = (*w.compiled(t.def->name))->program();
        for (std::size_t pc = 0; pc < p.insns.size(); ++pc) {
            ++t.n_insns;
            if (p.insns[pc].code == 0x18) ++pc;   // lddw: one instruction, two slots
        }
        t.ever.assign(p.insns.size(), 0);
        // Seeds: every packet the scenario gives this program, or a plain one.
        if (t.layout.packet) {
            if (t.opts.scenario)
                for (const auto& st : t.opts.scenario->steps)
                    if (!st.run.empty() && obj.find_program(st.run) == t.def && st.packet) t.seeds.push_back(encode_fuzz_input(t.layout, *st.packet));
            if (t.seeds.empty()) {
                auto pkt = build_packet(PacketSpec{});
                if (!pkt) throw pkt.error();
                t.seeds.push_back(encode_fuzz_input(t.layout, *pkt));
            }
        } else {
            t.seeds.push_back(encode_fuzz_input(t.layout, t.layout.base_ctx));
        }
        return std::unique_ptr<FuzzTarget>(new FuzzTarget(std::move(impl)));
    });
}

FuzzRun FuzzTarget::run(std::span<const uint8_t> bytes) {
    Impl& t = *impl_;
    if (!t.built) t.build();
    ++t.stats.runs;
    FuzzRun r = t.once(t.a, t.opts.differential ? &t.b : nullptr, bytes, true);
    if (!r.finding) return r;
    // Confirmed in fresh worlds, or dropped (a state the reused worlds were not put back from).
    FuzzRun fresh = replay(bytes);
    if (!fresh.finding) {
        ++t.stats.unconfirmed;
        t.built = false;
    }
    if (fresh.finding) return fresh;
    r.finding.reset();
    return r;
}

FuzzRun FuzzTarget::replay(std::span<const uint8_t> bytes) {
    Impl& t = *impl_;
    Saved x = t.make(false, nullptr);
    std::optional<Saved> y;
    if (t.opts.differential) y = t.make(true, nullptr);
    // The counters and the covered set are the fuzzer's: keep them apart from a replay.
    vm::Coverage keep_cov = t.cov;
    auto keep_other = t.other_cov;
    auto keep_ever = t.ever;
    const std::size_t keep_covered = t.n_covered;
    auto keep_last = t.last;
    FuzzRun r = t.once(x, y ? &*y : nullptr, bytes, false);
    t.cov = std::move(keep_cov);
    t.other_cov = std::move(keep_other);
    t.ever = std::move(keep_ever);
    t.n_covered = keep_covered;
    t.last = std::move(keep_last);
    return r;
}

const FuzzLayout& FuzzTarget::layout() const { return impl_->layout; }
const ProgramDef& FuzzTarget::def() const { return *impl_->def; }
const vm::Program& FuzzTarget::program() const {
    if (!impl_->built) impl_->build();
    return (*impl_->a.world->compiled(impl_->def->name))->program();
}
std::vector<std::vector<uint8_t>> FuzzTarget::seeds() const { return impl_->seeds; }
const std::vector<std::pair<const vm::Program*, const vm::Coverage*>>& FuzzTarget::coverage() const { return impl_->last; }
std::size_t FuzzTarget::covered() const { return impl_->n_covered; }
std::size_t FuzzTarget::instructions() const { return impl_->n_insns; }
const FuzzStats& FuzzTarget::stats() const { return impl_->stats; }

std::vector<uint64_t> FuzzTarget::constants() const {
    std::set<uint64_t> out;
    const vm::Program& p = program();
    for (std::size_t pc = 0; pc < p.insns.size(); ++pc) {
        const vm::Insn& in = p.insns[pc];
        const uint8_t cls = vm::code::cls(in.code), op = in.code & 0xf0;
        if ((cls == vm::code::JMP || cls == vm::code::JMP32) && !(in.code & 0x08) && op != 0x00 && op != 0x80 && op != 0x90)
            out.insert(cls == vm::code::JMP32 ? static_cast<uint32_t>(in.imm) : static_cast<uint64_t>(static_cast<int64_t>(in.imm)));
        if (in.code == 0x18 && pc + 1 < p.insns.size()) {
            const uint64_t v = static_cast<uint32_t>(in.imm) | static_cast<uint64_t>(static_cast<uint32_t>(p.insns[pc + 1].imm)) << 32;
            if (v < (1ull << 40)) out.insert(v);   // not a map or function address the world bound
            ++pc;
        }
    }
    return {out.begin(), out.end()};
}

}  // namespace bpfsim::harness
