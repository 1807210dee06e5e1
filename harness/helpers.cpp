// Kernel helpers: the kernel's prototypes (from the UAPI helper documentation) and
// deterministic implementations against the World.
//
// Every pointer a program passes is checked against the memory map; a bad one makes
// the helper return -EFAULT (probe_read zero-fills its destination), as the kernel does,
// or, where the kernel's verifier would have refused the program, stops the run with a
// trap that names the helper.
#include "harness/harness.hpp"

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <fmt/format.h>

#include <algorithm>

namespace bpfsim::harness {

namespace {

using vm::ArgKind;
using vm::RetKind;
using u64 = uint64_t;

World& W(vm::Env& e) { return static_cast<World&>(e); }

// The kernel keeps its struct xdp_frame (40 bytes on 64-bit) at the top of an XDP buffer's
// headroom; neither the packet nor its metadata may move into it.
constexpr uint32_t kXdpFrameSize = 40;

constexpr int64_t kENOMEM_ = -12, kEACCES = -13, kENOENT = -2, kE2BIG = -7, kEFAULT = -14, kEINVAL = -22, kENOTSUPP = -524, kEOPNOTSUPP = -95;

u64 ret(int64_t v) { return static_cast<u64>(v); }

// A map argument the verifier would have guaranteed; anything else stops the run.
Map* map_arg(World& w, u64 v, const char* helper) {
    Map* m = w.map_from_handle(v);
    if (!m) w.request_trap(fmt::format("{}: r1 = {:#x} is not a map of this program", helper, v));
    return m;
}

// A pointer to n readable (or writable) bytes, or a trap naming the helper and argument.
bool mem_arg(World& w, u64 addr, u64 n, uint8_t perm, const char* helper, int arg) {
    if (n == 0 || w.mem.allows(addr, n, perm)) return true;
    w.request_trap(fmt::format("{}: argument {} ({} bytes at {:#x}): {}", helper, arg, n, addr, w.mem.explain(addr, n, perm)));
    return false;
}

// ── maps ────────────────────────────────────────────────────────────────────
u64 map_lookup_elem(u64 m, u64 key, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_lookup_elem");
    if (!map || !mem_arg(w, key, map->def().key_size, vm::kRead, "bpf_map_lookup_elem", 2)) return 0;
    return reinterpret_cast<u64>(map->lookup(reinterpret_cast<const void*>(key), w.options().cpu));
}

u64 map_update_elem(u64 m, u64 key, u64 value, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_update_elem");
    if (!map || !mem_arg(w, key, map->def().key_size, vm::kRead, "bpf_map_update_elem", 2) ||
        !mem_arg(w, value, map->def().value_size, vm::kRead, "bpf_map_update_elem", 3))
        return 0;
    return ret(map->update(reinterpret_cast<const void*>(key), reinterpret_cast<const void*>(value), flags, w.options().cpu));
}

u64 map_delete_elem(u64 m, u64 key, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_delete_elem");
    if (!map || !mem_arg(w, key, map->def().key_size, vm::kRead, "bpf_map_delete_elem", 2)) return 0;
    return ret(map->erase(reinterpret_cast<const void*>(key)));
}

u64 map_push_elem(u64 m, u64 value, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_push_elem");
    if (!map || !mem_arg(w, value, map->def().value_size, vm::kRead, "bpf_map_push_elem", 2)) return 0;
    return ret(map->push(reinterpret_cast<const void*>(value), flags));
}

u64 map_pop_elem(u64 m, u64 value, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_pop_elem");
    if (!map || !mem_arg(w, value, map->def().value_size, vm::kWrite, "bpf_map_pop_elem", 2)) return 0;
    return ret(map->pop(reinterpret_cast<void*>(value)));
}

u64 map_peek_elem(u64 m, u64 value, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_map_peek_elem");
    if (!map || !mem_arg(w, value, map->def().value_size, vm::kWrite, "bpf_map_peek_elem", 2)) return 0;
    return ret(map->peek(reinterpret_cast<void*>(value)));
}

u64 tail_call(u64 ctx, u64 m, u64 index, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_tail_call");
    if (!map) return 0;
    if (map->def().type != MapType::ProgArray) {
        w.request_trap(fmt::format("bpf_tail_call: map '{}' is a {}, not a prog_array", map->def().name, to_string(map->def().type)));
        return 0;
    }
    // A failed tail call falls through to the next instruction.
    if (w.tail_calls >= 33) return ret(kENOENT);   // MAX_TAIL_CALL_CNT
    const vm::Interpreter* target = w.tail_target(map, static_cast<uint32_t>(index));
    if (!target) return ret(kENOENT);
    ++w.tail_calls;
    w.request_tail_call(*target, ctx);
    return 0;
}

// ── probes and strings ──────────────────────────────────────────────────────
// Which memory a probe read may see: kernel memory (bpf_probe_read_kernel), the current
// process's user memory (bpf_probe_read_user), or either (the legacy bpf_probe_read, which
// on x86-64 picks by address). Anything else reads as a fault: -EFAULT, destination zeroed.
enum class Probe { Kernel, User, Either };

template <Probe P>
bool probe_allowed(World& w, u64 addr, u64 size) {
    if (!w.mem.allows(addr, size, vm::kRead)) return false;
    if constexpr (P == Probe::Either) return true;
    auto r = w.mem.find(addr);
    const bool user = r && r->kind == vm::RegionKind::User;
    return P == Probe::User ? user : !user;
}

template <Probe P>
u64 probe_read(u64 dst, u64 size, u64 src, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, dst, size, vm::kWrite, "bpf_probe_read", 1)) return 0;
    if (size && !probe_allowed<P>(w, src, size)) {
        std::memset(reinterpret_cast<void*>(dst), 0, size);
        return ret(kEFAULT);
    }
    if (size) std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), size);
    return 0;
}

template <Probe P>
u64 probe_read_str(u64 dst, u64 size, u64 src, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, dst, size, vm::kWrite, "bpf_probe_read_str", 1)) return 0;
    if (size == 0) return 0;
    auto* out = reinterpret_cast<char*>(dst);
    for (u64 i = 0; i < size; ++i) {
        if (!probe_allowed<P>(w, src + i, 1)) {
            std::memset(out, 0, size);
            return ret(kEFAULT);
        }
        const char c = *reinterpret_cast<const char*>(src + i);
        if (i == size - 1) {
            out[i] = 0;
            return size;
        }
        out[i] = c;
        if (!c) return i + 1;
    }
    return size;
}

// ── time, randomness, identity ──────────────────────────────────────────────
u64 ktime_get_ns(u64, u64, u64, u64, u64, vm::Env& e) { return W(e).now_ns(); }
u64 ktime_get_boot_ns(u64, u64, u64, u64, u64, vm::Env& e) { return W(e).now_ns() + W(e).options().boot_offset_ns; }
u64 ktime_get_coarse_ns(u64, u64, u64, u64, u64, vm::Env& e) { return W(e).now_ns() / 4'000'000 * 4'000'000; }   // a 250 Hz tick
u64 jiffies64(u64, u64, u64, u64, u64, vm::Env& e) { return 4'294'667'296ull + W(e).now_ns() / 4'000'000; }   // INITIAL_JIFFIES at HZ=250
u64 get_prandom_u32(u64, u64, u64, u64, u64, vm::Env& e) { return W(e).prandom(); }
u64 get_smp_processor_id(u64, u64, u64, u64, u64, vm::Env& e) { return W(e).options().cpu; }
u64 get_numa_node_id(u64, u64, u64, u64, u64, vm::Env&) { return 0; }
// The current task, when the world has one in kernel memory, else WorldOptions' identity.
// A field the recorded BTF lacks (a minimal BTF) reads as the fallback.
u64 task_field(World& w, std::string_view path, u64 fallback) {
    try {
        KernelMemory& k = w.kernel();
        return k.get(w.current_task, k.type_id("task_struct"), path);
    } catch (const Error&) {
        return fallback;
    }
}
// The current task's comm, or WorldOptions' when there is none (or the BTF lacks comm).
std::string task_comm(World& w) {
    if (w.current_task) {
        try {
            KernelMemory& k = w.kernel();
            return k.get_string(w.current_task, k.type_id("task_struct"), "comm");
        } catch (const Error&) {
        }
    }
    return w.options().comm;
}
u64 get_current_pid_tgid(u64, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (w.current_task) {
        const u64 pid = task_field(w, "pid", w.options().pid);
        return (task_field(w, "tgid", pid) << 32) | pid;
    }
    return (static_cast<u64>(w.options().tgid) << 32) | w.options().pid;
}
u64 get_current_uid_gid(u64, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (w.current_task) return (task_field(w, "cred->gid.val", w.options().gid) << 32) | task_field(w, "cred->uid.val", w.options().uid);
    return (static_cast<u64>(w.options().gid) << 32) | w.options().uid;
}
// Without a current task in kernel memory, `current` is a kernel-looking address that no
// region covers, so reads through it fail with -EFAULT as reads of unmapped memory do.
u64 get_current_task(u64, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (w.current_task) return w.current_task;
    return 0xffff888000000000ull + (static_cast<u64>(w.options().pid) << 14);
}

u64 get_current_comm(u64 buf, u64 size, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, buf, size, vm::kWrite, "bpf_get_current_comm", 1)) return 0;
    if (size == 0) return ret(kEINVAL);
    auto* out = reinterpret_cast<char*>(buf);
    std::memset(out, 0, size);
    const std::string comm = task_comm(w);
    std::memcpy(out, comm.data(), std::min<u64>(comm.size(), std::min<u64>(size - 1, 15)));
    return 0;
}

// ── trace output ────────────────────────────────────────────────────────────
u64 emit_trace(World& w, u64 fmt_ptr, u64 fmt_size, std::span<const u64> args, const char* helper) {
    if (!mem_arg(w, fmt_ptr, fmt_size, vm::kRead, helper, 1)) return 0;
    const auto* f = reinterpret_cast<const char*>(fmt_ptr);
    if (fmt_size == 0 || f[fmt_size - 1] != 0) return ret(kEINVAL);
    auto text = format_printk(std::string_view(f, std::strlen(f)), args, [&](u64 a) { return w.read_string(a, 4096); },
                              [&](u64 a, void* o, std::size_t n) { return w.read_bytes(a, o, n); });
    if (!text) return ret(kEINVAL);
    TraceEvent ev;
    // trace_pipe names the running task.
    ev.comm = task_comm(w);
    ev.pid = w.current_task ? static_cast<uint32_t>(task_field(w, "pid", w.options().pid)) : w.options().pid;
    ev.cpu = w.options().cpu;
    ev.flags = w.trace_flags;
    ev.ns = w.now_ns();
    ev.message = *text;
    w.trace.push_back(ev);
    return text->size();
}

u64 trace_printk(u64 fmt_ptr, u64 fmt_size, u64 a1, u64 a2, u64 a3, vm::Env& e) {
    const u64 args[3] = {a1, a2, a3};
    return emit_trace(W(e), fmt_ptr, fmt_size, args, "bpf_trace_printk");
}

u64 trace_vprintk(u64 fmt_ptr, u64 fmt_size, u64 data, u64 data_len, u64, vm::Env& e) {
    World& w = W(e);
    if (data_len % 8 || data_len > 8 * 12 || (data_len && !data)) return ret(kEINVAL);
    if (!mem_arg(w, data, data_len, vm::kRead, "bpf_trace_vprintk", 3)) return 0;
    std::vector<u64> args(data_len / 8);
    if (data_len) std::memcpy(args.data(), reinterpret_cast<const void*>(data), data_len);
    return emit_trace(w, fmt_ptr, fmt_size, args, "bpf_trace_vprintk");
}

u64 snprintf_helper(u64 str, u64 str_size, u64 fmt_ptr, u64 data, u64 data_len, vm::Env& e) {
    World& w = W(e);
    if (data_len % 8 || data_len > 8 * 12 || (data_len && !data)) return ret(kEINVAL);
    if (!mem_arg(w, str, str_size, vm::kWrite, "bpf_snprintf", 1) || !mem_arg(w, data, data_len, vm::kRead, "bpf_snprintf", 4))
        return 0;
    const std::string f = w.read_string(fmt_ptr, 4096);
    std::vector<u64> args(data_len / 8);
    if (data_len) std::memcpy(args.data(), reinterpret_cast<const void*>(data), data_len);
    auto text = format_printk(f, args, [&](u64 a) { return w.read_string(a, 4096); },
                              [&](u64 a, void* o, std::size_t n) { return w.read_bytes(a, o, n); });
    if (!text) return ret(kEINVAL);
    if (str_size) {
        const std::size_t n = std::min<std::size_t>(text->size(), str_size - 1);
        std::memcpy(reinterpret_cast<void*>(str), text->data(), n);
        reinterpret_cast<char*>(str)[n] = 0;
    }
    return text->size() + 1;
}

// ── packets ─────────────────────────────────────────────────────────────────
bool has_packet(World& w, const char* helper) {
    if (w.pkt.buf) return true;
    w.request_trap(fmt::format("{}: the program has no packet", helper));
    return false;
}

u64 skb_load_bytes(u64, u64 offset, u64 to, u64 len, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_load_bytes") || !mem_arg(w, to, len, vm::kWrite, "bpf_skb_load_bytes", 3)) return 0;
    const u64 avail = w.pkt.data_end - w.pkt.data;
    if (offset > 0xffff || len == 0 || offset + len > avail) {
        if (len) std::memset(reinterpret_cast<void*>(to), 0, len);
        return ret(kEFAULT);
    }
    std::memcpy(reinterpret_cast<void*>(to), w.pkt.buf + w.pkt.data + offset, len);
    return 0;
}

u64 skb_store_bytes(u64, u64 offset, u64 from, u64 len, u64 flags, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_store_bytes") || !mem_arg(w, from, len, vm::kRead, "bpf_skb_store_bytes", 3)) return 0;
    if (flags & ~u64(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) return ret(kEINVAL);
    const u64 avail = w.pkt.data_end - w.pkt.data;
    if (offset > 0xffff || offset + len > avail) return ret(kEFAULT);
    std::memmove(w.pkt.buf + w.pkt.data + offset, reinterpret_cast<const void*>(from), len);
    return 0;
}

// One's-complement arithmetic for the checksum helpers.
uint32_t csum_add(uint32_t a, uint32_t b) {
    const uint64_t s = uint64_t(a) + b;
    return static_cast<uint32_t>((s & 0xffffffff) + (s >> 32));
}
uint16_t csum_fold(uint32_t c) {
    c = (c & 0xffff) + (c >> 16);
    c = (c & 0xffff) + (c >> 16);
    return static_cast<uint16_t>(~c);
}

// csum_partial: the one's-complement sum of n bytes (32-bit little-endian words, then a
// 16-bit word and a last byte), added to seed.
uint32_t csum_partial(const uint8_t* p, u64 n, uint32_t seed) {
    uint64_t s = seed;
    u64 i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        std::memcpy(&v, p + i, 4);
        s += v;
    }
    if (i + 2 <= n) {
        s += uint32_t(p[i]) | uint32_t(p[i + 1]) << 8;
        i += 2;
    }
    if (i < n) s += p[i];
    while (s >> 32) s = (s & 0xffffffff) + (s >> 32);
    return static_cast<uint32_t>(s);
}

// Since Linux 6.13: the sizes need not be multiples of 4 and have no limit, and the
// result is folded to 16 bits (before, x86 gave the unfolded 32-bit sum).
u64 csum_diff(u64 from, u64 from_size, u64 to, u64 to_size, u64 seed, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, from, from_size, vm::kRead, "bpf_csum_diff", 1) || !mem_arg(w, to, to_size, vm::kRead, "bpf_csum_diff", 3))
        return 0;
    const auto* f = reinterpret_cast<const uint8_t*>(from);
    const auto* t = reinterpret_cast<const uint8_t*>(to);
    const auto s = static_cast<uint32_t>(seed);
    uint32_t sum;
    if (from_size && to_size) sum = csum_add(csum_partial(t, to_size, s), ~csum_partial(f, from_size, 0));
    else if (to_size) sum = csum_partial(t, to_size, s);
    else if (from_size) sum = ~csum_partial(f, from_size, ~s);
    else sum = s;
    sum = (sum & 0xffff) + (sum >> 16);
    return (sum & 0xffff) + (sum >> 16);
}

// Replaces `from` with `to` in the 16-bit checksum at offset (RFC 1624 incremental update).
int64_t csum_replace(World& w, u64 offset, u64 from, u64 to, u64 size, bool pseudo_ok) {
    (void)pseudo_ok;
    if (offset > 0xffff || (offset & 1)) return kEFAULT;   // the checksum field is 16-bit aligned
    const u64 avail = w.pkt.data_end - w.pkt.data;
    if (offset + 2 > avail) return kEFAULT;
    uint8_t* p = w.pkt.buf + w.pkt.data + offset;
    uint16_t check;
    std::memcpy(&check, p, 2);
    uint32_t sum = static_cast<uint16_t>(~check);
    if (size == 0) {   // `to` is a precomputed checksum difference
        sum = csum_add(sum, static_cast<uint32_t>(to));
    } else if (size == 2) {
        sum = csum_add(sum, static_cast<uint16_t>(~from) & 0xffff);
        sum = csum_add(sum, static_cast<uint16_t>(to));
    } else if (size == 4) {
        sum = csum_add(sum, ~static_cast<uint32_t>(from));
        sum = csum_add(sum, static_cast<uint32_t>(to));
    } else {
        return kEINVAL;
    }
    const uint16_t folded = csum_fold(sum);
    std::memcpy(p, &folded, 2);
    return 0;
}

u64 l3_csum_replace(u64, u64 offset, u64 from, u64 to, u64 flags, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_l3_csum_replace")) return 0;
    if (flags & ~u64(BPF_F_HDR_FIELD_MASK)) return ret(kEINVAL);
    return ret(csum_replace(w, offset, from, to, flags & BPF_F_HDR_FIELD_MASK, false));
}

u64 l4_csum_replace(u64, u64 offset, u64 from, u64 to, u64 flags, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_l4_csum_replace")) return 0;
    if (flags & ~u64(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6))
        return ret(kEINVAL);
    const u64 avail = w.pkt.data_end - w.pkt.data;
    if (offset > 0xffff || (offset & 1) || offset + 2 > avail) return ret(kEFAULT);
    if (flags & BPF_F_MARK_MANGLED_0) {   // UDP: a zero checksum means "none"; keep it so
        uint16_t check;
        std::memcpy(&check, w.pkt.buf + w.pkt.data + offset, 2);
        if (check == 0) return 0;
    }
    const int64_t rc = csum_replace(w, offset, from, to, flags & BPF_F_HDR_FIELD_MASK, true);
    if (rc == 0 && (flags & BPF_F_MARK_MANGLED_0)) {
        uint16_t check;
        std::memcpy(&check, w.pkt.buf + w.pkt.data + offset, 2);
        if (check == 0) {
            check = 0xffff;
            std::memcpy(w.pkt.buf + w.pkt.data + offset, &check, 2);
        }
    }
    return ret(rc);
}

u64 xdp_adjust_head(u64, u64 delta, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_xdp_adjust_head")) return 0;
    const int64_t d = static_cast<int32_t>(static_cast<uint32_t>(delta));
    const int64_t data = static_cast<int64_t>(w.pkt.data) + d;
    const uint32_t meta_len = w.pkt.data - w.pkt.data_meta;
    // At least an Ethernet header must remain, and the metadata cannot move into the xdp_frame.
    if (data - static_cast<int64_t>(meta_len) < kXdpFrameSize || data > static_cast<int64_t>(w.pkt.data_end) - 14)
        return ret(kEINVAL);
    // The metadata moves with the packet's start, as the kernel moves it.
    if (meta_len) std::memmove(w.pkt.buf + data - meta_len, w.pkt.buf + w.pkt.data_meta, meta_len);
    w.pkt.data = static_cast<uint32_t>(data);
    w.pkt.data_meta = w.pkt.data - meta_len;
    w.sync_packet();
    return 0;
}

u64 xdp_adjust_meta(u64, u64 delta, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_xdp_adjust_meta")) return 0;
    const int64_t d = static_cast<int32_t>(static_cast<uint32_t>(delta));
    const int64_t meta = static_cast<int64_t>(w.pkt.data_meta) + d;
    const int64_t meta_len = static_cast<int64_t>(w.pkt.data) - meta;
    if (meta < kXdpFrameSize || meta_len < 0) return ret(kEINVAL);
    // Whole 32-bit words, and no more than skb_shared_info's u8 meta_len holds.
    if (meta_len > 255 || (meta_len & 3)) return ret(kEACCES);
    w.pkt.data_meta = static_cast<uint32_t>(meta);
    w.sync_packet();
    return 0;
}

u64 xdp_adjust_tail(u64, u64 delta, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_xdp_adjust_tail")) return 0;
    const int64_t d = static_cast<int32_t>(static_cast<uint32_t>(delta));
    const int64_t end = static_cast<int64_t>(w.pkt.data_end) + d;
    if (end < static_cast<int64_t>(w.pkt.data) + 14 || end > static_cast<int64_t>(w.pkt.cap)) return ret(kEINVAL);
    if (d > 0) std::memset(w.pkt.buf + w.pkt.data_end, 0, static_cast<std::size_t>(d));
    w.pkt.data_end = static_cast<uint32_t>(end);
    w.sync_packet();
    return 0;
}

u64 redirect(u64 ifindex, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    // XDP takes no flags; skb programs take BPF_F_INGRESS.
    if (w.pkt.type == ProgType::Xdp ? flags != 0 : (flags & ~u64(BPF_F_INGRESS)) != 0)
        return w.pkt.type == ProgType::Xdp ? XDP_ABORTED : TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return w.pkt.type == ProgType::Xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
}

u64 redirect_map(u64 m, u64 key, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_redirect_map");
    if (!map) return 0;
    const uint32_t k = static_cast<uint32_t>(key);
    // The low two bits are the action on a miss; devmaps also take BPF_F_BROADCAST and
    // BPF_F_EXCLUDE_INGRESS. Anything else aborts.
    const bool devmap = map->def().type == MapType::Devmap || map->def().type == MapType::DevmapHash;
    if (flags & ~(u64(0x3) | (devmap ? u64(BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) : 0))) return XDP_ABORTED;
    // On a miss the low bits of flags are the return value (XDP_ABORTED by default).
    if (!map->lookup(&k, w.options().cpu) && !map->has(k)) return flags & 0x3;
    w.pkt.redirect = k;
    w.pkt.redirected = true;
    return XDP_REDIRECT;
}

u64 get_hash_recalc(u64 ctx, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_get_hash_recalc")) return 0;
    // A deterministic flow hash of the packet bytes (the kernel's is jhash over the flow keys).
    uint32_t h = 2166136261u;
    for (uint32_t i = w.pkt.data; i < w.pkt.data_end; ++i) h = (h ^ w.pkt.buf[i]) * 16777619u;
    if (w.pkt.type != ProgType::Xdp && ctx) static_cast<__sk_buff*>(w.pkt.ctx)->hash = h;
    return h;
}

// Moves the bytes at [at, data_end) by delta (insert zeroed room when positive, remove when
// negative); the packet grows into the buffer's tailroom.
int64_t move_tail(World& w, uint32_t at, int64_t delta) {
    auto& p = w.pkt;
    if (delta > 0 && p.data_end + static_cast<uint64_t>(delta) > p.cap) return kENOMEM_;
    if (delta < 0 && at + static_cast<uint64_t>(-delta) > p.data_end) return kEINVAL;
    // Room past the end of a short packet (bpf_skb_adjust_room at the network header of a frame
    // cut inside it): the kernel moves the headers from the (zeroed) tailroom, so the packet
    // just grows by zeros.
    if (at > p.data_end) at = p.data_end;
    const uint32_t tail = p.data_end - at;
    if (delta > 0) {
        std::memmove(p.buf + at + delta, p.buf + at, tail);
        std::memset(p.buf + at, 0, static_cast<std::size_t>(delta));
    } else {
        std::memmove(p.buf + at, p.buf + at - delta, static_cast<std::size_t>(tail + delta));
    }
    p.data_end = static_cast<uint32_t>(p.data_end + delta);
    w.sync_packet();
    return 0;
}

// BPF_SKB_MAX_LEN: the longest skb the skb helpers make, SKB_MAX_ALLOC on x86-64 (16 KiB less
// the 320 bytes of skb_shared_info).
constexpr uint32_t kSkbMaxLen = 16064;

// skb->protocol (a __be16 in the context), in host order.
uint16_t skb_proto(World& w) { return __builtin_bswap16(static_cast<uint16_t>(static_cast<__sk_buff*>(w.pkt.ctx)->protocol)); }
void set_skb_proto(World& w, uint16_t proto) { static_cast<__sk_buff*>(w.pkt.ctx)->protocol = __builtin_bswap16(proto); }

u64 skb_change_tail(u64, u64 new_len, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_change_tail")) return 0;
    // The network header must stay (the test run's skb has no transport header set).
    if (flags || static_cast<uint32_t>(new_len) > kSkbMaxLen || static_cast<uint32_t>(new_len) < w.pkt.network) return ret(kEINVAL);
    if (w.pkt.encap) return ret(kENOTSUPP);
    new_len = static_cast<uint32_t>(new_len);
    const int64_t delta = static_cast<int64_t>(new_len) - static_cast<int64_t>(w.pkt.data_end - w.pkt.data);
    if (delta > 0 && w.pkt.data_end + static_cast<uint64_t>(delta) > w.pkt.cap) return ret(kENOMEM_);
    if (delta > 0) std::memset(w.pkt.buf + w.pkt.data_end, 0, static_cast<std::size_t>(delta));
    w.pkt.data_end = static_cast<uint32_t>(w.pkt.data_end + delta);
    w.sync_packet();
    return 0;
}

u64 skb_change_head(u64, u64 head_room, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_change_head")) return 0;
    const uint32_t room = static_cast<uint32_t>(head_room);
    if (flags || static_cast<int32_t>(room) < 0 || uint64_t(w.pkt.data_end - w.pkt.data) + room > kSkbMaxLen) return ret(kEINVAL);
    // Short of headroom, the kernel reallocates the head (skb_cow); here the packet moves into the tailroom.
    if (room > w.pkt.data_meta) {
        const uint32_t need = room - w.pkt.data_meta;
        if (w.pkt.data_end + uint64_t(need) > w.pkt.cap) return ret(kENOMEM_);
        std::memmove(w.pkt.buf + w.pkt.data_meta + need, w.pkt.buf + w.pkt.data_meta, w.pkt.data_end - w.pkt.data_meta);
        w.pkt.data_meta += need;
        w.pkt.data += need;
        w.pkt.data_end += need;
    }
    w.pkt.data -= room;
    w.pkt.data_meta = w.pkt.data;
    std::memset(w.pkt.buf + w.pkt.data, 0, room);
    // The MAC header starts at the new data; the network header stays where it was.
    w.pkt.network += room;
    w.pkt.mac_len = w.pkt.network;
    w.sync_packet();
    return 0;
}

u64 skb_pull_data(u64, u64 len, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_pull_data")) return 0;
    // The simulated skb is linear already; only a length past the end fails.
    return len > w.pkt.data_end - w.pkt.data ? ret(kENOMEM_) : 0;
}

// BPF_F_ADJ_ROOM_* (the installed UAPI header may predate the decap flags).
constexpr u64 kAdjFixedGso = 1 << 0, kAdjEncapL3V4 = 1 << 1, kAdjEncapL3V6 = 1 << 2, kAdjEncapL4Gre = 1 << 3,
              kAdjEncapL4Udp = 1 << 4, kAdjNoCsumReset = 1 << 5, kAdjEncapL2Eth = 1 << 6, kAdjDecapL3V4 = 1 << 7,
              kAdjDecapL3V6 = 1 << 8, kAdjEncapL2Len = 0xffull << 56;
constexpr int64_t kEALREADY = -114;

u64 skb_adjust_room(u64, u64 len_diff, u64 mode, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_adjust_room")) return 0;
    const int32_t diff = static_cast<int32_t>(len_diff);
    const bool shrink = diff < 0;
    const uint32_t n = shrink ? 0u - static_cast<uint32_t>(diff) : static_cast<uint32_t>(diff);
    const u64 encap_l3 = kAdjEncapL3V4 | kAdjEncapL3V6, decap_l3 = kAdjDecapL3V4 | kAdjDecapL3V6;
    if (flags & ~(kAdjFixedGso | encap_l3 | kAdjEncapL4Gre | kAdjEncapL4Udp | kAdjEncapL2Eth | kAdjEncapL2Len | decap_l3 | kAdjNoCsumReset))
        return ret(kEINVAL);
    if (n > 0xfff) return ret(kEFAULT);
    // The kernel goes by skb->protocol, not by the bytes: VLAN-tagged and ARP frames are refused.
    const uint16_t proto = skb_proto(w);
    if (proto != 0x0800 && proto != 0x86dd) return ret(kENOTSUPP);
    const uint32_t base = proto == 0x0800 ? 20 : 40;   // sizeof(struct iphdr), sizeof(struct ipv6hdr)
    // The room goes after the MAC header, or after a network header of the base size: IPv4
    // options are not skipped (a program that set ihl first still gets room at 20 bytes).
    uint32_t off = w.pkt.mac_len;
    if (static_cast<uint32_t>(mode) == BPF_ADJ_ROOM_NET) off += base;
    else if (static_cast<uint32_t>(mode) != BPF_ADJ_ROOM_MAC) return ret(kENOTSUPP);
    uint32_t len_min = base;
    if (flags & decap_l3) {
        if (!shrink || (flags & decap_l3) == decap_l3) return ret(kEINVAL);
        len_min = (flags & kAdjDecapL3V4) ? 20 : 40;
    }
    const uint32_t len = w.pkt.data_end - w.pkt.data, len_cur = len - w.pkt.network;
    if (shrink ? n >= len_cur || len_cur - n < len_min : len + uint64_t(n) > kSkbMaxLen) return ret(kENOTSUPP);
    if (shrink) {
        if (flags & ~(kAdjFixedGso | decap_l3 | kAdjNoCsumReset)) return ret(kEINVAL);
        if (off + uint64_t(n) > len) return ret(kENOMEM_);
        if (const int64_t rc = move_tail(w, w.pkt.data + off, -static_cast<int64_t>(n))) return ret(rc);
        if (proto == 0x0800 && (flags & kAdjDecapL3V6)) set_skb_proto(w, 0x86dd);
        if (proto == 0x86dd && (flags & kAdjDecapL3V4)) set_skb_proto(w, 0x0800);
        return 0;
    }
    const bool encap = flags & encap_l3;
    if (encap) {
        const uint32_t inner_mac_len = static_cast<uint32_t>(flags >> 56);
        if ((flags & encap_l3) == encap_l3 || ((flags & kAdjEncapL4Gre) && (flags & kAdjEncapL4Udp)) ||
            ((flags & kAdjEncapL2Eth) && inner_mac_len < 14))
            return ret(kEINVAL);
        if (w.pkt.encap) return ret(kEALREADY);
        if (inner_mac_len > n) return ret(kEINVAL);
    }
    if (const int64_t rc = move_tail(w, w.pkt.data + off, n)) return ret(rc);
    if (encap) {
        w.pkt.encap = true;
        if (proto == 0x0800 && (flags & kAdjEncapL3V6)) set_skb_proto(w, 0x86dd);
        if (proto == 0x86dd && (flags & kAdjEncapL3V4)) set_skb_proto(w, 0x0800);
    }
    return 0;
}

u64 skb_change_proto(u64, u64 proto, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_change_proto")) return 0;
    if (flags) return ret(kEINVAL);
    auto* skb = static_cast<__sk_buff*>(w.pkt.ctx);
    const uint16_t from = static_cast<uint16_t>(__builtin_bswap16(static_cast<uint16_t>(skb->protocol)));
    const uint16_t to = static_cast<uint16_t>(__builtin_bswap16(static_cast<uint16_t>(proto)));
    int64_t delta;
    if (from == 0x0800 && to == 0x86dd) delta = 20;
    else if (from == 0x86dd && to == 0x0800) delta = -20;
    else return ret(kENOTSUPP);
    const int64_t rc = move_tail(w, w.pkt.data + w.pkt.mac_len, delta);
    if (rc == 0) skb->protocol = static_cast<uint32_t>(static_cast<uint16_t>(proto));
    return ret(rc);
}

u64 skb_change_type(u64, u64 type, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_change_type")) return 0;
    auto* skb = static_cast<__sk_buff*>(w.pkt.ctx);
    if (skb->pkt_type > 3 || type > 3) return ret(kEINVAL);   // PACKET_OTHERHOST
    skb->pkt_type = static_cast<uint32_t>(type);
    return 0;
}

u64 set_hash_invalid(u64, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (w.pkt.ctx && w.pkt.type != ProgType::Xdp) static_cast<__sk_buff*>(w.pkt.ctx)->hash = 0;
    return 0;
}

u64 set_hash(u64, u64 hash, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (w.pkt.ctx && w.pkt.type != ProgType::Xdp) static_cast<__sk_buff*>(w.pkt.ctx)->hash = static_cast<uint32_t>(hash);
    return 0;
}

// The simulated skb's checksum state is CHECKSUM_NONE, as BPF_PROG_TEST_RUN builds it.
u64 csum_update(u64, u64, u64, u64, u64, vm::Env&) { return ret(kENOTSUPP); }
u64 csum_level(u64, u64 level, u64, u64, u64, vm::Env&) { return level == 3 /* BPF_CSUM_LEVEL_QUERY */ ? ret(kEACCES) : level > 3 ? ret(kEINVAL) : 0; }

// ── tunnel metadata ─────────────────────────────────────────────────────────
// set_tunnel_key flags, get_tunnel_key flags (BPF_F_*; the UAPI header may predate some).
constexpr u64 kTunInfoIpv6 = 1 << 0, kZeroCsumTx = 1 << 1, kDontFragment = 1 << 2, kSeqNumber = 1 << 3, kNoTunnelKey = 1 << 4,
              kTunInfoFlags = 1 << 4;
// TUNNEL_* bits as tunnel_flags shows them: checksum, key, sequence numbers, don't fragment,
// no dst cache, and the options-present bits (GENEVE, VXLAN, ERSPAN, GTP) set_tunnel_opt sets.
constexpr uint16_t kTunCsum = 0x1, kTunKey = 0x4, kTunSeq = 0x8, kTunDontFragment = 0x100, kTunNoCache = 0x2000,
                   kTunOptions = 0x0800 | 0x1000 | 0x4000 | 0x8000;
constexpr int64_t kEPROTO = -71;

// Sizes struct bpf_tunnel_key had before it grew (up to remote_ipv6[1], tunnel_ext,
// tunnel_label, local_ipv6); the helpers still take them.
bool old_tunnel_key_size(u64 size) { return size == 8 || size == 22 || size == 24 || size == 28; }

u64 skb_get_tunnel_key(u64, u64 key, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, key, size, vm::kWrite, "bpf_skb_get_tunnel_key", 2)) return 0;
    auto* out = reinterpret_cast<uint8_t*>(key);
    const auto fail = [&](int64_t err) {
        std::memset(out, 0, size);
        return ret(err);
    };
    const World::TunnelInfo& t = w.tunnel;
    if (!t.set || (flags & ~(kTunInfoIpv6 | kTunInfoFlags))) return fail(kEINVAL);   // no tunnel metadata
    if (t.ipv6 != bool(flags & kTunInfoIpv6)) return fail(kEPROTO);
    if (size != sizeof(bpf_tunnel_key) && (!old_tunnel_key_size(size) || (size == 8 && t.ipv6))) return fail(kEINVAL);
    bpf_tunnel_key k{};
    k.tunnel_id = static_cast<uint32_t>(t.id);
    k.tunnel_tos = t.tos;
    k.tunnel_ttl = t.ttl;
    if (flags & kTunInfoFlags) k.tunnel_flags = __builtin_bswap16(t.flags);
    // The key reads as a received packet's: the end set as remote is the local one here.
    if (t.ipv6) {
        std::memcpy(k.remote_ipv6, t.local.data(), 16);
        std::memcpy(k.local_ipv6, t.remote.data(), 16);
        k.tunnel_label = t.label;
    } else {
        k.remote_ipv4 = t.local[0];
        k.local_ipv4 = t.remote[0];
    }
    std::memcpy(out, &k, size);
    return 0;
}

u64 skb_set_tunnel_key(u64, u64 key, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, key, size, vm::kRead, "bpf_skb_set_tunnel_key", 2)) return 0;
    if (flags & ~(kTunInfoIpv6 | kZeroCsumTx | kDontFragment | kSeqNumber | kNoTunnelKey)) return ret(kEINVAL);
    if (size != sizeof(bpf_tunnel_key) && !old_tunnel_key_size(size)) return ret(kEINVAL);
    bpf_tunnel_key k{};
    std::memcpy(&k, reinterpret_cast<const void*>(key), std::min<u64>(size, sizeof k));
    if ((!(flags & kTunInfoIpv6) && k.tunnel_label) || k.tunnel_ext) return ret(kEINVAL);
    // A new key replaces the old one, options included.
    World::TunnelInfo& t = w.tunnel;
    t = World::TunnelInfo{};
    t.set = true;
    t.ipv6 = flags & kTunInfoIpv6;
    t.id = k.tunnel_id;
    t.tos = k.tunnel_tos;
    t.ttl = k.tunnel_ttl;
    t.flags = static_cast<uint16_t>(kTunNoCache | ((flags & kDontFragment) ? kTunDontFragment : 0) | ((flags & kZeroCsumTx) ? 0 : kTunCsum) |
                                    ((flags & kSeqNumber) ? kTunSeq : 0) | ((flags & kNoTunnelKey) ? 0 : kTunKey));
    if (t.ipv6) {
        std::memcpy(t.remote.data(), k.remote_ipv6, 16);
        std::memcpy(t.local.data(), k.local_ipv6, 16);
        t.label = k.tunnel_label & 0xfffff;   // IPV6_FLOWLABEL_MASK
    } else {
        t.remote[0] = k.remote_ipv4;
        t.local[0] = k.local_ipv4;
    }
    return 0;
}

u64 skb_set_tunnel_opt(u64, u64 from, u64 size, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, from, size, vm::kRead, "bpf_skb_set_tunnel_opt", 2)) return 0;
    // Options go with a key this program set, in whole 32-bit words; options_len is a u8.
    if (!w.tunnel.set || (size & 3)) return ret(kEINVAL);
    if (size > 255) return ret(kENOMEM_);
    const auto* p = reinterpret_cast<const uint8_t*>(from);
    w.tunnel.options.assign(p, p + size);
    if (size) w.tunnel.flags |= kTunOptions;
    return 0;
}

u64 skb_get_tunnel_opt(u64, u64 to, u64 size, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, to, size, vm::kWrite, "bpf_skb_get_tunnel_opt", 2)) return 0;
    auto* out = reinterpret_cast<uint8_t*>(to);
    const World::TunnelInfo& t = w.tunnel;
    const int64_t err = !t.set || !(t.flags & kTunOptions) ? kENOENT : size < t.options.size() ? kENOMEM_ : 0;
    if (err) {
        std::memset(out, 0, size);
        return ret(err);
    }
    std::memcpy(out, t.options.data(), t.options.size());
    std::memset(out + t.options.size(), 0, size - t.options.size());
    return t.options.size();
}

// ── the simulated network ───────────────────────────────────────────────────
constexpr int kAfInet = 2, kAfInet6 = 10;
constexpr int64_t kENODEV = -19, kERANGE = -34, kEAFNOSUPPORT = -97;

// Whether addr is in prefix/len.
bool in_prefix(const uint8_t* addr, const std::array<uint8_t, 16>& prefix, unsigned len) {
    if (std::memcmp(addr, prefix.data(), len / 8) != 0) return false;
    if (len % 8 == 0) return true;
    const auto mask = static_cast<uint8_t>(0xff00u >> (len % 8));
    return (addr[len / 8] & mask) == (prefix[len / 8] & mask);
}

bool all_zero(const uint8_t* p, std::size_t n) { return std::all_of(p, p + n, [](uint8_t b) { return b == 0; }); }

// rt6_need_strict: multicast, link-local and loopback IPv6 addresses are never forwarded.
bool ipv6_never_forwarded(const uint8_t* a) {
    static constexpr uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || std::memcmp(a, loopback, 16) == 0;
}

bool fib_table_exists(const World& w, int family, uint32_t table) {
    return table == 254 || table == 255 ||
           std::any_of(w.routes.begin(), w.routes.end(), [&](const Route& r) { return r.family == family && r.table == table; });
}

// The route one table gives dst: the longest prefix, then the lowest metric. With oif, a
// route that leaves by a device must leave by that one; reject routes match regardless.
const Route* fib_table_lookup(const World& w, uint32_t table, int family, const uint8_t* dst, uint32_t oif) {
    const Route* best = nullptr;
    for (const Route& r : w.routes) {
        if (r.table != table || r.family != family || r.prefix_len > (family == kAfInet ? 32 : 128) || !in_prefix(dst, r.dst, r.prefix_len))
            continue;
        const bool by_device = r.type == Route::Type::Unicast || r.type == Route::Type::Local;
        if (by_device && (!w.device(r.ifindex) || (oif && r.ifindex != oif))) continue;
        if (!best || r.prefix_len > best->prefix_len || (r.prefix_len == best->prefix_len && r.metric < best->metric)) best = &r;
    }
    return best;
}

// bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup: a BPF_FIB_LKUP_RET_* code or -errno, with params
// filled in as far as the kernel gets.
int64_t fib_lookup_family(World& w, bpf_fib_lookup& p, uint32_t flags, bool check_mtu) {
    const bool v6 = p.family == kAfInet6;
    const std::size_t alen = v6 ? 16 : 4;
    auto* dst = v6 ? reinterpret_cast<uint8_t*>(p.ipv6_dst) : reinterpret_cast<uint8_t*>(&p.ipv4_dst);
    auto* src = v6 ? reinterpret_cast<uint8_t*>(p.ipv6_src) : reinterpret_cast<uint8_t*>(&p.ipv4_src);
    if (v6 && (ipv6_never_forwarded(dst) || ipv6_never_forwarded(src))) return BPF_FIB_LKUP_RET_NOT_FWDED;
    const NetDevice* in = w.device(p.ifindex);
    if (!in) return kENODEV;
    if (!in->forwarding) return BPF_FIB_LKUP_RET_FWD_DISABLED;
    const uint32_t oif = (flags & BPF_FIB_LOOKUP_OUTPUT) ? p.ifindex : 0;
    const Route* r = nullptr;
    if (flags & BPF_FIB_LOOKUP_DIRECT) {
        uint32_t table = 254;   // RT_TABLE_MAIN
        if (flags & BPF_FIB_LOOKUP_TBID) {
            table = p.tbid;
            p.tbid = 0;
        }
        if (!fib_table_exists(w, p.family, table)) return BPF_FIB_LKUP_RET_NOT_FWDED;
        r = fib_table_lookup(w, table, p.family, dst, oif);
    } else {
        for (const uint32_t table : {255u, 254u, 253u})   // the default rules: local, main, default
            if ((r = fib_table_lookup(w, table, p.family, dst, oif))) break;
    }
    if (!r) return BPF_FIB_LKUP_RET_NOT_FWDED;
    switch (r->type) {
    case Route::Type::Unicast: break;
    case Route::Type::Blackhole: return BPF_FIB_LKUP_RET_BLACKHOLE;
    case Route::Type::Unreachable: return BPF_FIB_LKUP_RET_UNREACHABLE;
    case Route::Type::Prohibit: return BPF_FIB_LKUP_RET_PROHIBIT;
    default: return BPF_FIB_LKUP_RET_NOT_FWDED;   // local: delivered here, not forwarded
    }
    const NetDevice* out = w.device(r->ifindex);
    uint32_t mtu = 0;
    if (check_mtu) {
        mtu = r->mtu ? r->mtu : out->mtu;
        if (p.tot_len > mtu) {
            p.mtu_result = static_cast<uint16_t>(mtu);
            return BPF_FIB_LKUP_RET_FRAG_NEEDED;
        }
    }
    p.rt_metric = r->metric;
    p.ifindex = r->ifindex;
    if (flags & BPF_FIB_LOOKUP_SRC) {
        // Without a preferred source the kernel picks an address of the device; the simulated
        // devices have none (IPv4 then answers 0, IPv6 fails).
        if (v6 && all_zero(r->prefsrc.data(), 16)) return BPF_FIB_LKUP_RET_NO_SRC_ADDR;
        std::memcpy(src, r->prefsrc.data(), alen);
    }
    if (!all_zero(r->gateway.data(), alen)) std::memcpy(dst, r->gateway.data(), alen);
    if (!(flags & BPF_FIB_LOOKUP_SKIP_NEIGH)) {
        auto n = std::find_if(w.neighbours.begin(), w.neighbours.end(), [&](const Neighbour& nb) {
            return nb.family == p.family && nb.ifindex == r->ifindex && std::memcmp(nb.addr.data(), dst, alen) == 0;
        });
        if (n == w.neighbours.end()) return BPF_FIB_LKUP_RET_NO_NEIGH;
        std::memcpy(p.dmac, n->mac.data(), 6);
        std::memcpy(p.smac, out->mac.data(), 6);
    }
    p.h_vlan_TCI = 0;
    p.h_vlan_proto = 0;
    if (mtu) p.mtu_result = static_cast<uint16_t>(mtu);
    return BPF_FIB_LKUP_RET_SUCCESS;
}

u64 fib_lookup(u64, u64 params, u64 plen, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (static_cast<int32_t>(plen) < static_cast<int32_t>(sizeof(bpf_fib_lookup))) return ret(kEINVAL);
    if (!mem_arg(w, params, plen, vm::kReadWrite, "bpf_fib_lookup", 2)) return 0;
    const auto fl = static_cast<uint32_t>(flags);
    if (fl & ~0x3fu) return ret(kEINVAL);   // DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK
    // The struct may sit at any address (a packet, the stack): work on an aligned copy.
    bpf_fib_lookup p;
    std::memcpy(&p, reinterpret_cast<const void*>(params), sizeof p);
    struct WriteBack {
        bpf_fib_lookup& p;
        u64 to;
        ~WriteBack() { std::memcpy(reinterpret_cast<void*>(to), &p, sizeof p); }
    } write_back{p, params};
    // XDP always checks tot_len against the MTU; skb programs do when tot_len is given, and
    // otherwise check the packet against the device it would leave by.
    const bool xdp = w.pkt.type == ProgType::Xdp;
    const bool check_mtu = xdp || p.tot_len;
    if (p.family != kAfInet && p.family != kAfInet6) return ret(kEAFNOSUPPORT);
    int64_t rc = fib_lookup_family(w, p, fl, check_mtu);
    if (!xdp && rc == BPF_FIB_LKUP_RET_SUCCESS && !check_mtu) {
        const NetDevice* dev = w.device(p.ifindex);
        // is_skb_forwardable: the MTU plus the Ethernet and VLAN headers.
        if (w.pkt.buf && w.pkt.data_end - w.pkt.data > uint64_t(dev->mtu) + 14 + 4) rc = BPF_FIB_LKUP_RET_FRAG_NEEDED;
        p.mtu_result = static_cast<uint16_t>(dev->mtu);
    }
    return ret(rc);
}

u64 redirect_neigh(u64 ifindex, u64, u64 plen, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    // A next hop, when given, is a whole struct bpf_redir_neigh.
    if (flags || (static_cast<uint32_t>(plen) && static_cast<uint32_t>(plen) < 20)) return TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return TC_ACT_REDIRECT;
}

// The clone leaves by the device (or enters it, BPF_F_INGRESS); the program goes on with the
// original. A test run's transmit on its loopback device succeeds, so the result is 0.
u64 clone_redirect(u64, u64 ifindex, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_clone_redirect")) return 0;
    if (flags & ~u64(BPF_F_INGRESS)) return ret(kEINVAL);
    if (!w.device(static_cast<uint32_t>(ifindex))) return ret(kEINVAL);
    // Every simulated device takes a MAC header, so the skb must carry one, and some data.
    if (w.pkt.mac_len == 0 || w.pkt.data_end == w.pkt.data) return ret(kERANGE);
    return 0;
}

// tc's bpf_sk_assign. A test run's skb is not at tc ingress, so even a socket the kernel
// found is refused with -EOPNOTSUPP (measured); bpfsim's socket lookups find none.
u64 sk_assign(u64, u64 sk, u64 flags, u64, u64, vm::Env&) {
    if (!sk || flags) return ret(kEINVAL);
    return ret(kEOPNOTSUPP);
}

u64 redirect_peer(u64 ifindex, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (flags) return TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return TC_ACT_REDIRECT;
}

u64 no_socket(u64, u64, u64, u64, u64, vm::Env&) { return 0; }   // socket lookups find nothing here
u64 sk_release(u64, u64, u64, u64, u64, vm::Env&) { return 0; }   // drops the reference a lookup took
u64 socket_cookie(u64, u64, u64, u64, u64, vm::Env&) { return 0; }
u64 netns_cookie(u64, u64, u64, u64, u64, vm::Env&) { return 1; }   // the initial network namespace

// ── ring buffer and perf output ─────────────────────────────────────────────
RingbufMap* ringbuf_arg(World& w, u64 m, const char* helper) {
    Map* map = map_arg(w, m, helper);
    if (!map) return nullptr;
    auto* rb = dynamic_cast<RingbufMap*>(map);
    if (!rb) w.request_trap(fmt::format("{}: map '{}' is a {}, not a ringbuf", helper, map->def().name, to_string(map->def().type)));
    return rb;
}

u64 ringbuf_output(u64 m, u64 data, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    RingbufMap* rb = ringbuf_arg(w, m, "bpf_ringbuf_output");
    if (!rb || !mem_arg(w, data, size, vm::kRead, "bpf_ringbuf_output", 2)) return 0;
    return ret(rb->output(reinterpret_cast<const void*>(data), size, flags));
}

u64 ringbuf_reserve(u64 m, u64 size, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    RingbufMap* rb = ringbuf_arg(w, m, "bpf_ringbuf_reserve");
    if (!rb) return 0;
    return reinterpret_cast<u64>(rb->reserve(size, flags));
}

// submit/discard find the ring from the sample, as the kernel does from the record header.
RingbufMap* ring_of_sample(World& w, u64 sample, const char* helper) {
    for (std::size_t i = 0; i < w.object().maps().size(); ++i)
        if (auto* rb = dynamic_cast<RingbufMap*>(w.map_at(i)))
            for (const auto& r : rb->regions())
                if (sample >= r.start + RingbufMap::kHeader && sample < r.end()) return rb;
    w.request_trap(fmt::format("{}: {:#x} is not a ring buffer sample", helper, sample));
    return nullptr;
}

u64 ringbuf_submit(u64 sample, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (RingbufMap* rb = ring_of_sample(w, sample, "bpf_ringbuf_submit")) rb->submit(reinterpret_cast<void*>(sample), flags);
    return 0;
}

u64 ringbuf_discard(u64 sample, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (RingbufMap* rb = ring_of_sample(w, sample, "bpf_ringbuf_discard")) rb->discard(reinterpret_cast<void*>(sample), flags);
    return 0;
}

u64 ringbuf_query(u64 m, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    RingbufMap* rb = ringbuf_arg(w, m, "bpf_ringbuf_query");
    return rb ? rb->query(flags) : 0;
}

u64 perf_event_output(u64, u64 m, u64 flags, u64 data, u64 size, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_perf_event_output");
    if (!map || !mem_arg(w, data, size, vm::kRead, "bpf_perf_event_output", 4)) return 0;
    auto* pe = dynamic_cast<PerfEventArrayMap*>(map);
    if (!pe) {
        w.request_trap(fmt::format("bpf_perf_event_output: map '{}' is not a perf_event_array", map->def().name));
        return 0;
    }
    // Packet programs may append the packet's first bytes (BPF_F_CTXLEN_MASK); others may not.
    const u64 ctx_len = (flags & PerfEventArrayMap::kCtxLenMask) >> 32;
    if (!ctx_len) return ret(pe->output(flags, reinterpret_cast<const void*>(data), size, w.options().cpu));
    if (!w.pkt.buf || (flags & ~(PerfEventArrayMap::kIndexMask | PerfEventArrayMap::kCtxLenMask))) return ret(kEINVAL);
    if (ctx_len > w.pkt.data_end - w.pkt.data) return ret(kEFAULT);
    std::vector<uint8_t> sample(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const uint8_t*>(data) + size);
    sample.insert(sample.end(), w.pkt.buf + w.pkt.data, w.pkt.buf + w.pkt.data + ctx_len);
    return ret(pe->output(flags, sample.data(), sample.size(), w.options().cpu));
}

// ── callbacks ───────────────────────────────────────────────────────────────
u64 loop(u64 nr, u64 fn, u64 ctx, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (flags) return ret(kEINVAL);
    // With flags 0 the verifier inlines the loop, and the inlined code sets -E2BIG with a
    // 32-bit move: the program sees 0xfffffff9, not a negative 64-bit value.
    if (nr > (1u << 23)) return static_cast<uint32_t>(kE2BIG);
    for (u64 i = 0; i < nr; ++i) {
        const u64 r = w.call_function(fn, {i, ctx, 0, 0, 0});
        if (w.request != vm::Request::None) return 0;
        if (r == 1) return i + 1;
        if (r != 0) {
            w.request_trap(fmt::format("bpf_loop: callback returned {}, not 0 or 1", r));
            return 0;
        }
    }
    return nr;
}

u64 for_each_map_elem(u64 m, u64 fn, u64 ctx, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_for_each_map_elem");
    if (!map) return 0;
    if (flags) return ret(kEINVAL);
    std::vector<uint8_t> key(map->def().key_size), next(map->def().key_size);
    u64 n = 0;
    bool first = true;
    // The callback gets the key in a read-only scratch area (the kernel passes a pointer
    // into the map) and the value as a pointer into the map's storage.
    while (map->get_next_key(first ? nullptr : key.data(), next.data()) == 0) {
        first = false;
        key = next;
        void* v = map->lookup(key.data(), w.options().cpu);
        if (!v) continue;
        ++n;
        uint8_t* k = w.key_scratch(key.size());
        if (!k) {
            w.request_trap("bpf_for_each_map_elem: key larger than the scratch area");
            return 0;
        }
        std::memcpy(k, key.data(), key.size());
        const u64 r = w.call_function(fn, {m, reinterpret_cast<u64>(k), reinterpret_cast<u64>(v), ctx, 0});
        if (w.request != vm::Request::None) return 0;
        if (r == 1) break;
    }
    return n;
}

u64 get_stack(u64, u64 buf, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, buf, size, vm::kWrite, "bpf_get_stack", 2)) return 0;
    if (size) std::memset(reinterpret_cast<void*>(buf), 0, size);
    // Frames skipped, user stack, build ids (which only user stacks have), and a buffer of
    // whole entries: 8-byte addresses or 32-byte struct bpf_stack_build_id.
    if (flags & ~u64(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) return ret(kEINVAL);
    const bool build_id = flags & BPF_F_USER_BUILD_ID;
    if (build_id && !(flags & BPF_F_USER_STACK)) return ret(kEINVAL);
    const u64 elem = build_id ? sizeof(bpf_stack_build_id) : 8;
    if (size % elem) return ret(kEINVAL);
    // The call chain (World::kernel_stack or user_stack) to at most 127 frames
    // (kernel.perf_event_max_stack) counting the skipped ones; fewer than skipped: -EFAULT.
    const std::vector<uint64_t>& stack = (flags & BPF_F_USER_STACK) ? w.user_stack : w.kernel_stack;
    const std::size_t skip = flags & BPF_F_SKIP_FIELD_MASK;
    const std::size_t depth = std::min<std::size_t>(stack.size(), std::min<u64>(127, size / elem + skip));
    if (depth < skip) return ret(kEFAULT);
    auto* out = reinterpret_cast<uint8_t*>(buf);
    for (std::size_t i = skip; i < depth; ++i, out += elem) {
        if (build_id) {   // no build ids known: BPF_STACK_BUILD_ID_IP and the address
            bpf_stack_build_id id{};
            id.status = BPF_STACK_BUILD_ID_IP;
            id.ip = stack[i];
            std::memcpy(out, &id, sizeof(id));
        } else {
            std::memcpy(out, &stack[i], 8);
        }
    }
    return (depth - skip) * elem;   // bytes written; the rest of buf is zero
}

u64 spin_lock(u64 lock, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, lock, 4, vm::kReadWrite, "bpf_spin_lock", 1)) return 0;
    auto* l = reinterpret_cast<uint32_t*>(lock);
    if (*l) {
        w.request_trap("bpf_spin_lock: lock already held (a second lock would deadlock in the kernel)");
        return 0;
    }
    *l = 1;
    return 0;
}

u64 spin_unlock(u64 lock, u64, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, lock, 4, vm::kReadWrite, "bpf_spin_unlock", 1)) return 0;
    *reinterpret_cast<uint32_t*>(lock) = 0;
    return 0;
}

u64 override_return(u64, u64, u64, u64, u64, vm::Env&) { return 0; }

// The stack is World::kernel_stack or user_stack (BPF_F_USER_STACK), less the skipped frames;
// the kernel fetches at most the map's depth (value_size / 8) and 127 frames.
u64 get_stackid(u64, u64 m, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_get_stackid");
    if (!map) return 0;
    auto* st = dynamic_cast<StackTraceMap*>(map);
    if (!st) {
        w.request_trap(fmt::format("bpf_get_stackid: map '{}' is a {}, not a stack_trace map", map->def().name, to_string(map->def().type)));
        return 0;
    }
    if (flags & ~u64(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP | BPF_F_REUSE_STACKID)) return ret(kEINVAL);
    const std::vector<uint64_t>& stack = (flags & BPF_F_USER_STACK) ? w.user_stack : w.kernel_stack;
    const std::size_t skip = flags & BPF_F_SKIP_FIELD_MASK;
    const std::size_t n = std::min<std::size_t>(stack.size(), std::min<std::size_t>(127, st->def().value_size / 8 + skip));
    if (n <= skip) return ret(kEFAULT);
    return ret(st->get_stackid(std::span<const uint64_t>(stack).subspan(skip, n - skip), flags));
}

}  // namespace

vm::HelperTable kernel_helpers() {
    vm::HelperTable t;
    using A = ArgKind;
    using R = RetKind;
    auto add = [&](int32_t id, R r, std::array<A, 5> args, vm::HelperFn fn) {
        t.add({id, std::string("bpf_") + std::string(vm::kernel_helper_name(id)), {r, args}, fn});
    };
    const A N = A::None;
    add(BPF_FUNC_map_lookup_elem, R::MapValueOrNull, {A::ConstMapPtr, A::MapKey, N, N, N}, map_lookup_elem);
    add(BPF_FUNC_map_update_elem, R::Integer, {A::ConstMapPtr, A::MapKey, A::MapValue, A::Anything, N}, map_update_elem);
    add(BPF_FUNC_map_delete_elem, R::Integer, {A::ConstMapPtr, A::MapKey, N, N, N}, map_delete_elem);
    add(BPF_FUNC_map_push_elem, R::Integer, {A::ConstMapPtr, A::MapValue, A::Anything, N, N}, map_push_elem);
    add(BPF_FUNC_map_pop_elem, R::Integer, {A::ConstMapPtr, A::UninitMapValue, N, N, N}, map_pop_elem);
    add(BPF_FUNC_map_peek_elem, R::Integer, {A::ConstMapPtr, A::UninitMapValue, N, N, N}, map_peek_elem);
    add(BPF_FUNC_tail_call, R::Void, {A::Ctx, A::ConstMapPtr, A::Anything, N, N}, tail_call);
    add(BPF_FUNC_probe_read, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read<Probe::Either>);
    add(BPF_FUNC_probe_read_kernel, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read<Probe::Kernel>);
    add(BPF_FUNC_probe_read_user, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read<Probe::User>);
    add(BPF_FUNC_probe_read_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str<Probe::Either>);
    add(BPF_FUNC_probe_read_kernel_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str<Probe::Kernel>);
    add(BPF_FUNC_probe_read_user_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str<Probe::User>);
    add(BPF_FUNC_ktime_get_ns, R::Integer, {}, ktime_get_ns);
    add(BPF_FUNC_ktime_get_boot_ns, R::Integer, {}, ktime_get_boot_ns);
    add(BPF_FUNC_ktime_get_coarse_ns, R::Integer, {}, ktime_get_coarse_ns);
    add(BPF_FUNC_jiffies64, R::Integer, {}, jiffies64);
    add(BPF_FUNC_get_prandom_u32, R::Integer, {}, get_prandom_u32);
    add(BPF_FUNC_get_smp_processor_id, R::Integer, {}, get_smp_processor_id);
    add(BPF_FUNC_get_numa_node_id, R::Integer, {}, get_numa_node_id);
    add(BPF_FUNC_get_current_pid_tgid, R::Integer, {}, get_current_pid_tgid);
    add(BPF_FUNC_get_current_uid_gid, R::Integer, {}, get_current_uid_gid);
    add(BPF_FUNC_get_current_task, R::Integer, {}, get_current_task);
    add(BPF_FUNC_get_current_task_btf, R::BtfId, {}, get_current_task);
    add(BPF_FUNC_get_current_comm, R::Integer, {A::UninitMem, A::ConstSize, N, N, N}, get_current_comm);
    add(BPF_FUNC_trace_printk, R::Integer, {A::Mem, A::ConstSize, N, N, N}, trace_printk);
    add(BPF_FUNC_trace_vprintk, R::Integer, {A::Mem, A::ConstSize, A::MemOrNull, A::ConstSizeOrZero, N}, trace_vprintk);
    add(BPF_FUNC_snprintf, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::ConstStr, A::MemOrNull, A::ConstSizeOrZero}, snprintf_helper);
    add(BPF_FUNC_skb_load_bytes, R::Integer, {A::Ctx, A::Anything, A::UninitMem, A::ConstSize, N}, skb_load_bytes);
    add(BPF_FUNC_skb_store_bytes, R::Integer, {A::Ctx, A::Anything, A::Mem, A::ConstSize, A::Anything}, skb_store_bytes);
    add(BPF_FUNC_csum_diff, R::Integer, {A::MemOrNull, A::ConstSizeOrZero, A::MemOrNull, A::ConstSizeOrZero, A::Anything}, csum_diff);
    add(BPF_FUNC_l3_csum_replace, R::Integer, {A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything}, l3_csum_replace);
    add(BPF_FUNC_l4_csum_replace, R::Integer, {A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything}, l4_csum_replace);
    add(BPF_FUNC_xdp_adjust_head, R::Integer, {A::Ctx, A::Anything, N, N, N}, xdp_adjust_head);
    add(BPF_FUNC_xdp_adjust_meta, R::Integer, {A::Ctx, A::Anything, N, N, N}, xdp_adjust_meta);
    add(BPF_FUNC_xdp_adjust_tail, R::Integer, {A::Ctx, A::Anything, N, N, N}, xdp_adjust_tail);
    add(BPF_FUNC_redirect, R::Integer, {A::Anything, A::Anything, N, N, N}, redirect);
    add(BPF_FUNC_redirect_map, R::Integer, {A::ConstMapPtr, A::Anything, A::Anything, N, N}, redirect_map);
    add(BPF_FUNC_get_hash_recalc, R::Integer, {A::Ctx, N, N, N, N}, get_hash_recalc);
    add(BPF_FUNC_loop, R::Integer, {A::Anything, A::Func, A::StackOrNull, A::Anything, N}, loop);
    add(BPF_FUNC_for_each_map_elem, R::Integer, {A::ConstMapPtr, A::Func, A::StackOrNull, A::Anything, N}, for_each_map_elem);
    add(BPF_FUNC_get_stack, R::Integer, {A::Ctx, A::UninitMem, A::ConstSizeOrZero, A::Anything, N}, get_stack);
    add(BPF_FUNC_spin_lock, R::Void, {A::SpinLock, N, N, N, N}, spin_lock);
    add(BPF_FUNC_spin_unlock, R::Void, {A::SpinLock, N, N, N, N}, spin_unlock);
    add(BPF_FUNC_ringbuf_output, R::Integer, {A::ConstMapPtr, A::Mem, A::ConstSizeOrZero, A::Anything, N}, ringbuf_output);
    add(BPF_FUNC_ringbuf_reserve, R::AllocMemOrNull, {A::ConstMapPtr, A::ConstAllocSizeOrZero, A::Anything, N, N}, ringbuf_reserve);
    add(BPF_FUNC_ringbuf_submit, R::Void, {A::AllocMem, A::Anything, N, N, N}, ringbuf_submit);
    add(BPF_FUNC_ringbuf_discard, R::Void, {A::AllocMem, A::Anything, N, N, N}, ringbuf_discard);
    add(BPF_FUNC_ringbuf_query, R::Integer, {A::ConstMapPtr, A::Anything, N, N, N}, ringbuf_query);
    add(BPF_FUNC_perf_event_output, R::Integer, {A::Ctx, A::ConstMapPtr, A::Anything, A::Mem, A::ConstSizeOrZero}, perf_event_output);
    add(BPF_FUNC_skb_change_tail, R::Integer, {A::Ctx, A::Anything, A::Anything, N, N}, skb_change_tail);
    add(BPF_FUNC_skb_change_head, R::Integer, {A::Ctx, A::Anything, A::Anything, N, N}, skb_change_head);
    add(BPF_FUNC_skb_pull_data, R::Integer, {A::Ctx, A::Anything, N, N, N}, skb_pull_data);
    add(BPF_FUNC_skb_adjust_room, R::Integer, {A::Ctx, A::Anything, A::Anything, A::Anything, N}, skb_adjust_room);
    add(BPF_FUNC_skb_change_proto, R::Integer, {A::Ctx, A::Anything, A::Anything, N, N}, skb_change_proto);
    add(BPF_FUNC_skb_change_type, R::Integer, {A::Ctx, A::Anything, N, N, N}, skb_change_type);
    add(BPF_FUNC_set_hash_invalid, R::Void, {A::Ctx, N, N, N, N}, set_hash_invalid);
    add(BPF_FUNC_set_hash, R::Integer, {A::Ctx, A::Anything, N, N, N}, set_hash);
    add(BPF_FUNC_csum_update, R::Integer, {A::Ctx, A::Anything, N, N, N}, csum_update);
    add(BPF_FUNC_csum_level, R::Integer, {A::Ctx, A::Anything, N, N, N}, csum_level);
    add(BPF_FUNC_skb_get_tunnel_key, R::Integer, {A::Ctx, A::UninitMem, A::ConstSize, A::Anything, N}, skb_get_tunnel_key);
    add(BPF_FUNC_skb_set_tunnel_key, R::Integer, {A::Ctx, A::Mem, A::ConstSize, A::Anything, N}, skb_set_tunnel_key);
    add(BPF_FUNC_fib_lookup, R::Integer, {A::Ctx, A::Mem, A::ConstSize, A::Anything, N}, fib_lookup);
    add(BPF_FUNC_redirect_neigh, R::Integer, {A::Anything, A::MemOrNull, A::ConstSizeOrZero, A::Anything, N}, redirect_neigh);
    add(BPF_FUNC_redirect_peer, R::Integer, {A::Anything, A::Anything, N, N, N}, redirect_peer);
    add(BPF_FUNC_clone_redirect, R::Integer, {A::Ctx, A::Anything, A::Anything, N, N}, clone_redirect);
    add(BPF_FUNC_skb_get_tunnel_opt, R::Integer, {A::Ctx, A::UninitMem, A::ConstSize, N, N}, skb_get_tunnel_opt);
    add(BPF_FUNC_skb_set_tunnel_opt, R::Integer, {A::Ctx, A::Mem, A::ConstSize, N, N}, skb_set_tunnel_opt);
    add(BPF_FUNC_sk_assign, R::Integer, {A::Ctx, A::SockCommon, A::Anything, N, N}, sk_assign);
    add(BPF_FUNC_get_stackid, R::Integer, {A::Ctx, A::ConstMapPtr, A::Anything, N, N}, get_stackid);
    add(BPF_FUNC_sk_lookup_tcp, R::SocketOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_sk_lookup_udp, R::SocketOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_skc_lookup_tcp, R::SockCommonOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_sk_release, R::Integer, {A::SockCommon, N, N, N, N}, sk_release);
    add(BPF_FUNC_get_socket_cookie, R::Integer, {A::Ctx, N, N, N, N}, socket_cookie);
    add(BPF_FUNC_get_netns_cookie, R::Integer, {A::CtxOrNull, N, N, N, N}, netns_cookie);
    add(BPF_FUNC_override_return, R::Integer, {A::Ctx, A::Anything, N, N, N}, override_return);
    return t;
}

}  // namespace bpfsim::harness
