// World: the simulated kernel around a program — maps, globals, contexts, packets.
#include "harness/harness.hpp"

#include <linux/bpf.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

namespace bpfsim::harness {

namespace {

constexpr std::size_t kLowArena = 1 << 20;          // contexts and packet buffers
constexpr std::size_t kCtxOffset = 0;               // the context at the start of the arena
constexpr std::size_t kCtxMax = 4096;
constexpr std::size_t kScratchOffset = 4096;        // keys handed to callbacks
constexpr std::size_t kScratchSize = 4096;
constexpr std::size_t kPacketOffset = 8192;         // the packet buffer after it
constexpr uint32_t kXdpHeadroom = 256;              // XDP_PACKET_HEADROOM
constexpr uint32_t kTailroom = 320;                 // room the kernel keeps for skb_shared_info
constexpr uint32_t kEthHeader = 14;
constexpr uint32_t kSkbGrowth = 16384;

// Types whose test_run gives the program the packet from the Ethernet header; the others
// (socket filters, cgroup skb) see it from the network header, as BPF_PROG_TEST_RUN does.
bool sees_l2(ProgType t) {
    return t == ProgType::SchedCls || t == ProgType::SchedAct || t == ProgType::LwtXmit || t == ProgType::Xdp ||
           t == ProgType::FlowDissector || t == ProgType::SkSkb;
}

}  // namespace

// Counting trampolines: one per helper id below kCounted, each adding one to the world's
// counter and calling the implementation (HelperFn is a plain function pointer, so the id
// is a template argument).
struct HelperCounting {
    static constexpr int32_t kCounted = 256;
    template <int32_t Id>
    static uint64_t call(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5, vm::Env& e) {
        World& w = static_cast<World&>(e);
        ++w.helper_calls_[Id];
        return w.helper_fns_[Id](r1, r2, r3, r4, r5, e);
    }
    template <int32_t... Ids>
    static constexpr std::array<vm::HelperFn, sizeof...(Ids)> table(std::integer_sequence<int32_t, Ids...>) {
        return {&call<Ids>...};
    }
    static void install(World& w, vm::HelperTable& t) {
        static constexpr auto trampolines = table(std::make_integer_sequence<int32_t, kCounted>{});
        w.helper_calls_.assign(kCounted, 0);
        w.helper_fns_.assign(kCounted, nullptr);
        for (int32_t id = 0; id < kCounted; ++id) {
            const vm::Helper* h = t.find(id);
            if (!h) continue;
            vm::Helper counted = *h;
            w.helper_fns_[static_cast<std::size_t>(id)] = h->fn;
            counted.fn = trampolines[static_cast<std::size_t>(id)];
            t.add(std::move(counted));
        }
    }
};

std::map<int32_t, uint64_t> World::take_helper_calls() const {
    std::map<int32_t, uint64_t> out;
    for (std::size_t id = 0; id < helper_calls_.size(); ++id)
        if (helper_calls_[id]) out.emplace(static_cast<int32_t>(id), helper_calls_[id]);
    return out;
}

World::World() = default;
World::~World() = default;

Result<std::unique_ptr<World>> World::create(const Object& obj, WorldOptions opts) {
    return catch_error([&]() -> std::unique_ptr<World> {
        std::unique_ptr<World> w(new World());
        w->obj_ = &obj;
        w->opts_ = opts;
        w->clock_ns_ = opts.clock_ns;
        w->prng_ = opts.seed;
        w->low_ = std::make_unique<LowMemory>(kLowArena);
        w->helpers_ = kernel_helpers();
        {
            vm::Helper poison;
            poison.id = kCorePoisonHelper;
            poison.name = "bpfsim_core_poison";
            poison.fn = [](uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, vm::Env& e) -> uint64_t {
                e.request_trap("executed an instruction poisoned by a failed CO-RE relocation (libbpf's `call 0xbad2310`)");
                return 0;
            };
            w->helpers_.add(std::move(poison));
        }
        HelperCounting::install(*w, w->helpers_);
        w->devices.push_back(NetDevice{opts.ifindex, {}, 65536, false});   // the test run's loopback device
        if (opts.kernel_btf) w->kmem_ = std::make_unique<KernelMemory>(opts.kernel_btf);
        MapOptions mo;
        mo.ncpus = opts.ncpus;
        mo.seed = opts.seed;
        for (const auto& def : obj.maps()) {
            auto m = Map::create(def, mo);
            if (!m) {
                // A map we cannot build only matters to programs that use it: bind() says so.
                w->map_errors_.push_back(m.error().describe());
                w->maps_.push_back(nullptr);
                continue;
            }
            w->map_errors_.emplace_back();
            w->maps_.push_back(std::move(m.value()));
        }
        // Map-in-map values are map indices of this object.
        for (auto& m : w->maps_)
            if (m) m->resolve_map = [wp = w.get()](uint32_t i) { return wp->map_at(i); };
        // Initial contents: global data, then `.values` initialisers of prog arrays and map-in-maps.
        for (std::size_t i = 0; i < obj.maps().size(); ++i) {
            const MapDef& def = obj.maps()[i];
            Map* m = w->maps_[i].get();
            if (!m) continue;
            if (def.origin == MapDef::Origin::Kconfig) {
                auto image = kconfig_image(obj, opts.kconfig, opts.kernel_version);
                if (!image) {   // only the programs that read .kconfig fail, when bound
                    w->map_errors_[i] = image.error().describe();
                    w->maps_[i].reset();
                    continue;
                }
                const uint32_t zero = 0;
                if (int64_t rc = m->user_update(&zero, image->data(), 0); rc < 0)
                    throw Error(ErrorCode::Internal, fmt::format("cannot initialise '{}': error {}", def.name, rc));
            } else if (!def.init.empty()) {
                const uint32_t zero = 0;
                std::vector<uint8_t> value = def.init;
                value.resize(def.value_size);
                if (int64_t rc = m->user_update(&zero, value.data(), 0); rc < 0)
                    throw Error(ErrorCode::Internal, fmt::format("cannot initialise '{}': error {}", def.name, rc));
            }
            for (const auto& [slot, name] : def.init_slots) {
                uint32_t value = 0;
                if (def.type == MapType::ProgArray) {
                    auto it = std::find_if(obj.programs().begin(), obj.programs().end(), [&name = name](const ProgramDef& p) { return p.name == name; });
                    if (it == obj.programs().end()) continue;
                    value = static_cast<uint32_t>(it - obj.programs().begin());
                } else {
                    auto it = std::find_if(obj.maps().begin(), obj.maps().end(), [&name = name](const MapDef& d) { return d.name == name; });
                    if (it == obj.maps().end()) continue;
                    value = static_cast<uint32_t>(it - obj.maps().begin());
                }
                m->user_update(&slot, &value, 0);
            }
        }
        w->mem.add(w->low_->data() + kScratchOffset, kScratchSize, vm::kRead, vm::RegionKind::MapValue, "callback key");
        for (const auto& m : w->maps_) {
            if (!m) continue;
            for (auto r : m->regions()) {
                if (m->def().frozen) r.perm = vm::kRead;
                w->mem.add(std::move(r));
            }
        }
        return w;
    });
}

Map* World::map(std::string_view name) const {
    for (std::size_t i = 0; i < maps_.size(); ++i)
        if (maps_[i] && obj_->maps()[i].name == name) return maps_[i].get();
    return nullptr;
}

Map* World::map_at(std::size_t index) const { return index < maps_.size() ? maps_[index].get() : nullptr; }

Map* World::map_from_handle(uint64_t value) const {
    for (const auto& m : maps_)
        if (m && reinterpret_cast<uint64_t>(m.get()) == value) return m.get();
    return nullptr;
}

Result<vm::Program> World::bind(const LinkedProgram& lp) const {
    return catch_error([&]() -> vm::Program {
        vm::Program p = lp.prog;
        p.functions = lp.functions;
        auto where = [&](std::size_t pc) {
            Location loc;
            loc.file = p.file;
            loc.section = p.section;
            loc.pc = pc;
            loc.source = p.source_line(pc);
            return loc;
        };
        for (std::size_t pc = 0; pc + 1 < p.insns.size(); ++pc) {
            vm::Insn& in = p.insns[pc];
            if (in.code != 0x18) continue;
            vm::Insn& hi = p.insns[pc + 1];
            const uint8_t src = in.src;
            if (src == 0 || src == 4) {
                ++pc;
                continue;
            }
            uint64_t value = 0;
            if (src == 5 || src == 6) {
                const auto idx = static_cast<std::size_t>(static_cast<uint32_t>(in.imm));
                if (idx >= maps_.size()) throw Error(ErrorCode::InvalidInsn, fmt::format("map index {} out of range", idx), where(pc));
                Map* m = maps_[idx].get();
                if (!m) throw Error(ErrorCode::Unsupported, fmt::format("uses map '{}', which cannot be created: {}", obj_->maps()[idx].name, map_errors_[idx]), where(pc));
                if (src == 5) {
                    value = reinterpret_cast<uint64_t>(m);
                } else {
                    const uint32_t zero = 0;
                    void* v = m->lookup(&zero, opts_.cpu);
                    if (!v) throw Error(ErrorCode::Unsupported, fmt::format("map '{}' has no value to point into", obj_->maps()[idx].name), where(pc));
                    value = reinterpret_cast<uint64_t>(v) + static_cast<uint32_t>(hi.imm);
                }
            } else {
                std::string name;
                for (const auto& [epc, n] : lp.externs)
                    if (epc == pc) name = n;
                throw Error(ErrorCode::Unsupported,
                            fmt::format("extern '{}' (lddw pseudo source {}) is not resolved in this world", name, src), where(pc));
            }
            in.src = 0;
            in.imm = static_cast<int32_t>(static_cast<uint32_t>(value));
            hi.imm = static_cast<int32_t>(static_cast<uint32_t>(value >> 32));
            ++pc;
        }
        for (const auto& [pc, name] : lp.externs)
            if (p.insns[pc].code == 0x85)
                throw Error(ErrorCode::Unsupported, fmt::format("calls kernel function '{}' (kfunc), which bpfsim does not provide", name), where(pc));
        return p;
    });
}

Result<const vm::Interpreter*> World::compiled(std::string_view prog) {
    if (auto it = compiled_.find(prog); it != compiled_.end()) return &it->second;
    return catch_error([&]() -> const vm::Interpreter* {
        btf::CoreTargets targets;
        targets.main = opts_.kernel_btf.get();
        if (opts_.kernel_btf) targets.main_name = opts_.kernel_btf->name();
        auto lp = obj_->link(prog, &targets);
        if (!lp) throw lp.error();
        auto bound = bind(*lp);
        if (!bound) throw bound.error();
        // Poisoned instructions call a helper of bpfsim's own that stops the program; the
        // trap is then explained with the relocation that failed (see explain_poison).
        for (auto& in : bound->insns)
            if (btf::is_core_poison(in)) in.imm = kCorePoisonHelper;
        if (!lp->core_poisoned.empty()) poisoned_[std::string(prog)] = lp->core_poisoned;
        auto interp = vm::Interpreter::compile(*bound, helpers_);
        if (!interp) throw interp.error();
        auto [it, _] = compiled_.emplace(std::string(prog), std::move(interp.value()));
        return &it->second;
    });
}

Result<vm::RunResult> World::run_args(std::string_view prog, std::array<uint64_t, 5> args, const vm::RunOptions& ro) {
    auto interp = compiled(prog);
    if (!interp) return interp.error();
    return catch_error([&] { return execute(prog, **interp, args, ro); });
}

vm::RunResult World::execute(std::string_view prog, const vm::Interpreter& interp, std::array<uint64_t, 5> args, const vm::RunOptions& ro) {
    if (!uses_jit(prog) || ro.coverage || ro.counters) return interp.run(*this, args, ro);
    auto it = jits_.find(prog);
    if (it == jits_.end()) {
        auto jit = vm::Jit::compile(interp.program(), helpers_);
        if (!jit) throw jit.error();
        it = jits_.emplace(std::string(prog), std::move(jit.value())).first;
    }
    return it->second.run(*this, args, ro);
}

const vm::Interpreter* World::tail_target(Map* prog_array, uint32_t index) {
    const int64_t id = prog_array->prog_at(index);
    if (id < 0 || static_cast<std::size_t>(id) >= obj_->programs().size()) return nullptr;
    auto c = compiled(obj_->programs()[static_cast<std::size_t>(id)].name);
    return c ? *c : nullptr;
}

const NetDevice* World::device(uint32_t ifindex) const {
    for (const auto& d : devices)
        if (d.ifindex == ifindex) return &d;
    return nullptr;
}

uint8_t* World::key_scratch(std::size_t n) { return n <= kScratchSize ? low_->data() + kScratchOffset : nullptr; }

uint32_t World::prandom() {
    // splitmix64: deterministic for a seed, good enough statistically.
    uint64_t z = (prng_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<uint32_t>((z ^ (z >> 31)) >> 32);
}

std::string World::read_string(uint64_t addr, std::size_t max) {
    std::string s;
    for (std::size_t i = 0; i < max; ++i) {
        if (!mem.allows(addr + i, 1, vm::kRead)) break;
        const char c = *reinterpret_cast<const char*>(addr + i);
        if (!c) break;
        s += c;
    }
    return s;
}

bool World::read_bytes(uint64_t addr, void* out, std::size_t n) {
    if (n && !mem.allows(addr, n, vm::kRead)) return false;
    if (n) std::memcpy(out, reinterpret_cast<const void*>(addr), n);
    return true;
}

void World::sync_packet() {
    uint8_t* base = pkt.buf;
    const auto addr = [&](uint32_t off) { return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(base + off)); };
    if (pkt.type == ProgType::Xdp) {
        auto* md = static_cast<xdp_md*>(pkt.ctx);
        md->data = addr(pkt.data);
        md->data_end = addr(pkt.data_end);
        md->data_meta = addr(pkt.data_meta);
    } else if (pkt.ctx) {
        auto* skb = static_cast<__sk_buff*>(pkt.ctx);
        skb->data = addr(pkt.data);
        skb->data_end = addr(pkt.data_end);
        skb->data_meta = addr(pkt.data_meta);
        skb->len = pkt.data_end - pkt.data;
        skb_data = base + pkt.data;
        skb_len = skb->len;
    }
    if (pkt.region) mem.remove(pkt.region);
    pkt.region = 0;
    if (pkt.data_end > pkt.data_meta) {
        mem.add(base + pkt.data_meta, pkt.data_end - pkt.data_meta, vm::kReadWrite, vm::RegionKind::Packet, "packet");
        pkt.region = reinterpret_cast<uint64_t>(base + pkt.data_meta);
    }
}

void World::explain_poison(std::string_view prog, vm::RunResult& r) const {
    if (!r.trap || r.trap->kind != vm::TrapKind::Helper) return;
    auto it = poisoned_.find(prog);
    if (it == poisoned_.end()) return;
    for (const auto& [pc, why] : it->second)
        if (pc == r.trap->pc) r.trap->message += ": " + why;
}

KernelMemory& World::kernel() {
    if (!kmem_) throw Error(ErrorCode::Usage, "this world has no kernel BTF, so no simulated kernel memory (set WorldOptions::kernel_btf)");
    return *kmem_;
}

void World::sync_kernel_regions() {
    if (!kmem_) return;
    for (uint64_t start : kmem_regions_) mem.remove(start);
    kmem_regions_.clear();
    for (const auto& r : kmem_->regions()) {
        mem.add(r);
        kmem_regions_.push_back(r.start);
    }
}

Result<uint64_t> World::add_task(const TaskSpec& spec) {
    return catch_error([&]() -> uint64_t {
        KernelMemory& k = kernel();
        const btf::Btf& b = k.btf();
        const uint32_t task_t = k.type_id("task_struct");
        const uint64_t task = k.create(task_t);
        // Fields a recorded (possibly minimal) BTF may lack are skipped; pid and comm are not.
        auto has = [&](uint32_t type, std::string_view member) { return b.member_by_name(b.resolve(type), member).has_value(); };
        k.set(task, task_t, "pid", spec.pid);
        if (has(task_t, "tgid")) k.set(task, task_t, "tgid", spec.tgid ? spec.tgid : spec.pid);
        k.set_string(task, task_t, "comm", spec.comm);
        for (const char* link : {"real_parent", "parent"})
            if (spec.parent && has(task_t, link)) k.set(task, task_t, link, spec.parent);
        if (has(task_t, "group_leader") && (spec.tgid == 0 || spec.tgid == spec.pid)) k.set(task, task_t, "group_leader", task);
        if (auto cred_found = b.find("cred", btf::Kind::Struct); cred_found && has(task_t, "cred")) {
            const uint32_t cred_t = *cred_found;
            const uint64_t cred = k.create(cred_t);
            for (const char* f : {"uid", "euid", "suid", "fsuid"})
                if (has(cred_t, f)) k.set(cred, cred_t, std::string(f) + ".val", spec.uid);
            for (const char* f : {"gid", "egid", "sgid", "fsgid"})
                if (has(cred_t, f)) k.set(cred, cred_t, std::string(f) + ".val", spec.gid);
            k.set(task, task_t, "cred", cred);
            if (has(task_t, "real_cred")) k.set(task, task_t, "real_cred", cred);
        }
        for (const auto& [path, v] : spec.fields) k.set(task, task_t, path, v);
        for (const auto& [path, v] : spec.strings) k.set_string(task, task_t, path, v);
        return task;
    });
}

Result<ProgramRun> World::run_packet(std::string_view prog, const std::vector<uint8_t>& packet, const vm::RunOptions& ro) {
    return catch_error([&]() -> ProgramRun {
        const ProgramDef* def = obj_->find_program(prog);
        if (!def) {
            auto lp = obj_->link(prog);   // for its error message
            throw lp.error();
        }
        auto c = compiled(prog);
        if (!c) throw c.error();
        sync_kernel_regions();
        const CtxKind kind = ctx_kind(def->type);
        if (kind != CtxKind::XdpMd && kind != CtxKind::SkBuff)
            throw Error(ErrorCode::Usage, fmt::format("program '{}' is of type {}, which takes no packet; give a context instead",
                                                      def->name, to_string(def->type)));
        const bool l2 = sees_l2(def->type);
        if (!l2 && packet.size() < kEthHeader)
            throw Error(ErrorCode::Usage, fmt::format("a {} program needs a packet with an Ethernet header", to_string(def->type)));
        const uint32_t headroom = kXdpHeadroom;
        // XDP frames have a fixed tailroom; skbs can grow (skb_change_tail, adjust_room).
        const std::size_t cap = headroom + packet.size() + (kind == CtxKind::XdpMd ? kTailroom : kSkbGrowth);
        if (kPacketOffset + cap > low_->size())
            throw Error(ErrorCode::Usage, fmt::format("packet of {} bytes is too large (at most {})", packet.size(),
                                                      low_->size() - kPacketOffset - headroom - kTailroom));
        uint8_t* ctx = low_->data() + kCtxOffset;
        std::memset(ctx, 0, kCtxMax);
        pkt = PacketState{};
        trace_flags = trace_flags_for(def->type, def->section);
        pkt.buf = low_->data() + kPacketOffset;
        pkt.cap = cap;
        std::memset(pkt.buf, 0, cap);
        std::memcpy(pkt.buf + headroom, packet.data(), packet.size());
        pkt.data = headroom + (l2 ? 0 : kEthHeader);
        pkt.data_meta = pkt.data;
        pkt.data_end = headroom + static_cast<uint32_t>(packet.size());
        pkt.ctx = ctx;
        pkt.type = def->type;
        pkt.mac_len = kEthHeader;              // the test run's skb: an Ethernet header, then the network header
        pkt.network = l2 ? kEthHeader : 0;
        std::size_t ctx_size;
        if (kind == CtxKind::XdpMd) {
            auto* md = reinterpret_cast<xdp_md*>(ctx);
            md->ingress_ifindex = opts_.ifindex;
            md->rx_queue_index = opts_.rx_queue;
            ctx_size = sizeof(xdp_md);
            skb_data = nullptr;
        } else {
            auto* skb = reinterpret_cast<__sk_buff*>(ctx);
            uint16_t proto = 0;
            if (packet.size() >= kEthHeader) std::memcpy(&proto, packet.data() + 12, 2);
            skb->protocol = proto;
            skb->ifindex = opts_.ifindex;
            skb->ingress_ifindex = opts_.ifindex;
            skb->wire_len = static_cast<uint32_t>(packet.size());
            skb->gso_segs = 1;
            ctx_size = sizeof(__sk_buff);
        }
        sync_packet();
        mem.add(ctx, ctx_size, vm::kReadWrite, vm::RegionKind::Ctx, "ctx");
        const std::size_t trace_before = trace.size();
        tail_calls = 0;
        tunnel = TunnelInfo{};
        std::fill(helper_calls_.begin(), helper_calls_.end(), 0);

        ProgramRun out;
        out.result = execute(prog, **c, {reinterpret_cast<uint64_t>(ctx), 0, 0, 0, 0}, ro);
        out.helper_calls = take_helper_calls();
        explain_poison(prog, out.result);
        // Programs that see the packet from L3 give it back with a zeroed Ethernet header,
        // as BPF_PROG_TEST_RUN does when it pushes the header back.
        // XDP gives back the metadata in front of the packet, as XDP test runs do.
        const uint32_t from = def->type == ProgType::Xdp ? pkt.data_meta : pkt.data - (l2 ? 0 : kEthHeader);
        out.packet.assign(pkt.buf + from, pkt.buf + pkt.data_end);
        if (!l2) std::memset(out.packet.data(), 0, kEthHeader);
        out.trace.assign(trace.begin() + static_cast<std::ptrdiff_t>(trace_before), trace.end());
        out.redirected = pkt.redirected;
        out.redirect_ifindex = pkt.redirect;
        mem.remove(reinterpret_cast<uint64_t>(ctx));
        if (pkt.region) mem.remove(pkt.region);
        skb_data = nullptr;
        skb_len = 0;
        pkt = PacketState{};
        return out;
    });
}

Result<ProgramRun> World::run_ctx(std::string_view prog, std::vector<uint8_t> ctx_bytes, const vm::RunOptions& ro) {
    return catch_error([&]() -> ProgramRun {
        auto c = compiled(prog);
        if (!c) throw c.error();
        sync_kernel_regions();
        if (ctx_bytes.size() > kCtxMax) throw Error(ErrorCode::Usage, fmt::format("context of {} bytes is larger than {}", ctx_bytes.size(), kCtxMax));
        if (ctx_bytes.empty()) ctx_bytes.resize(64);
        uint8_t* ctx = low_->data() + kCtxOffset;
        std::memset(ctx, 0, kCtxMax);
        std::memcpy(ctx, ctx_bytes.data(), ctx_bytes.size());
        // Tracing contexts are read-only to programs (the verifier refuses writes to them).
        const ProgramDef* def = obj_->find_program(prog);
        const CtxKind kind = def ? ctx_kind(def->type) : CtxKind::None;
        trace_flags = def ? trace_flags_for(def->type, def->section) : "d..31";
        const bool read_only = kind == CtxKind::PtRegs || kind == CtxKind::TracepointRecord || kind == CtxKind::U64Args || kind == CtxKind::PerfEventData;
        mem.add(ctx, ctx_bytes.size(), read_only ? vm::kRead : vm::kReadWrite, vm::RegionKind::Ctx, "ctx");
        const std::size_t trace_before = trace.size();
        tail_calls = 0;
        std::fill(helper_calls_.begin(), helper_calls_.end(), 0);
        ProgramRun out;
        out.result = execute(prog, **c, {reinterpret_cast<uint64_t>(ctx), 0, 0, 0, 0}, ro);
        out.helper_calls = take_helper_calls();
        explain_poison(prog, out.result);
        out.trace.assign(trace.begin() + static_cast<std::ptrdiff_t>(trace_before), trace.end());
        mem.remove(reinterpret_cast<uint64_t>(ctx));
        return out;
    });
}

std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> dump_map(Map& m, unsigned ncpus) {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> out;
    const MapDef& d = m.def();
    if (d.key_size == 0) return out;
    const bool percpu = d.type == MapType::PercpuArray || d.type == MapType::PercpuHash || d.type == MapType::LruPercpuHash;
    const std::size_t vsize = percpu ? ((d.value_size + 7) / 8 * 8) * ncpus : d.value_size;
    std::vector<uint8_t> key(d.key_size), next(d.key_size), value(vsize);
    bool first = true;
    for (std::size_t guard = 0; guard <= std::size_t(d.max_entries) + 1; ++guard) {
        if (m.get_next_key(first ? nullptr : key.data(), next.data()) != 0) break;
        first = false;
        key = next;
        if (m.user_lookup(key.data(), value.data()) != 0) continue;
        out.emplace_back(key, value);
    }
    return out;
}

std::string_view trace_flags_for(ProgType type, std::string_view section) {
    if (ctx_kind(type) == CtxKind::XdpMd || ctx_kind(type) == CtxKind::SkBuff) return "b..11";
    if (type == ProgType::Tracepoint) return "...21";
    if (type == ProgType::RawTracepoint || type == ProgType::RawTracepointWritable) return "...2.";
    if (type == ProgType::Tracing && section.starts_with("tp_btf")) return "...2.";
    return "d..31";
}

std::string describe_return(ProgType t, uint64_t r0) {
    const int64_t v = static_cast<int64_t>(r0);
    switch (t) {
    case ProgType::Xdp: {
        static const char* names[] = {"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"};
        return r0 < 5 ? names[r0] : fmt::format("unknown XDP action {} (the kernel drops the packet)", v);
    }
    case ProgType::SchedCls:
    case ProgType::SchedAct: {
        static const char* names[] = {"TC_ACT_OK", "TC_ACT_RECLASSIFY", "TC_ACT_SHOT", "TC_ACT_PIPE", "TC_ACT_STOLEN",
                                      "TC_ACT_QUEUED", "TC_ACT_REPEAT", "TC_ACT_REDIRECT", "TC_ACT_TRAP"};
        const int32_t a = static_cast<int32_t>(r0);
        if (a == -1) return "TC_ACT_UNSPEC";
        return a >= 0 && a < 9 ? names[a] : fmt::format("unknown tc action {}", a);
    }
    case ProgType::SocketFilter:
        return static_cast<uint32_t>(r0) == 0 ? "drop" : fmt::format("keep {} bytes", static_cast<uint32_t>(r0));
    case ProgType::CgroupSkb:
    case ProgType::CgroupSock:
    case ProgType::CgroupSockAddr:
    case ProgType::CgroupDevice:
    case ProgType::CgroupSysctl:
    case ProgType::CgroupSockopt:
        return (r0 & 1) ? "allow" : "deny";
    default:
        return fmt::format("{}", v);
    }
}

}  // namespace bpfsim::harness
