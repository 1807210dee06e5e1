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
u64 probe_read(u64 dst, u64 size, u64 src, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, dst, size, vm::kWrite, "bpf_probe_read", 1)) return 0;
    if (size && !w.mem.allows(src, size, vm::kRead)) {
        std::memset(reinterpret_cast<void*>(dst), 0, size);
        return ret(kEFAULT);
    }
    if (size) std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), size);
    return 0;
}

u64 probe_read_str(u64 dst, u64 size, u64 src, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, dst, size, vm::kWrite, "bpf_probe_read_str", 1)) return 0;
    if (size == 0) return 0;
    auto* out = reinterpret_cast<char*>(dst);
    for (u64 i = 0; i < size; ++i) {
        if (!w.mem.allows(src + i, 1, vm::kRead)) {
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
u64 get_current_pid_tgid(u64, u64, u64, u64, u64, vm::Env& e) {
    return (static_cast<u64>(W(e).options().tgid) << 32) | W(e).options().pid;
}
u64 get_current_uid_gid(u64, u64, u64, u64, u64, vm::Env& e) {
    return (static_cast<u64>(W(e).options().gid) << 32) | W(e).options().uid;
}
u64 get_current_comm(u64 buf, u64 size, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, buf, size, vm::kWrite, "bpf_get_current_comm", 1)) return 0;
    if (size == 0) return ret(kEINVAL);
    auto* out = reinterpret_cast<char*>(buf);
    std::memset(out, 0, size);
    const std::string& comm = w.options().comm;
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
    ev.comm = w.options().comm;
    ev.pid = w.options().pid;
    ev.cpu = w.options().cpu;
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

u64 csum_diff(u64 from, u64 from_size, u64 to, u64 to_size, u64 seed, vm::Env& e) {
    World& w = W(e);
    if ((from_size | to_size) & 3 || from_size > 512 || to_size > 512) return ret(kEINVAL);
    if (!mem_arg(w, from, from_size, vm::kRead, "bpf_csum_diff", 1) || !mem_arg(w, to, to_size, vm::kRead, "bpf_csum_diff", 3))
        return 0;
    uint32_t sum = static_cast<uint32_t>(seed);
    for (u64 i = 0; i < from_size; i += 4) {
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<const void*>(from + i), 4);
        sum = csum_add(sum, ~v);
    }
    for (u64 i = 0; i < to_size; i += 4) {
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<const void*>(to + i), 4);
        sum = csum_add(sum, v);
    }
    return sum;
}

// Replaces `from` with `to` in the 16-bit checksum at offset (RFC 1624 incremental update).
int64_t csum_replace(World& w, u64 offset, u64 from, u64 to, u64 size, bool pseudo_ok) {
    (void)pseudo_ok;
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
    if (flags & ~u64(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK)) return ret(kEINVAL);
    const u64 avail = w.pkt.data_end - w.pkt.data;
    if (offset + 2 > avail) return ret(kEFAULT);
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
    // At least an Ethernet header must remain, and the headroom cannot go negative.
    if (data - static_cast<int64_t>(meta_len) < 0 || data > static_cast<int64_t>(w.pkt.data_end) - 14) return ret(kEINVAL);
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
    if (meta < 0 || meta_len < 0) return ret(kEINVAL);
    if (meta_len > 32 || (meta_len & 3)) return ret(kEACCES);
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
    if (flags & ~u64(BPF_F_INGRESS)) return w.pkt.type == ProgType::Xdp ? XDP_ABORTED : TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return w.pkt.type == ProgType::Xdp ? XDP_REDIRECT : TC_ACT_REDIRECT;
}

u64 redirect_map(u64 m, u64 key, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    Map* map = map_arg(w, m, "bpf_redirect_map");
    if (!map) return 0;
    const uint32_t k = static_cast<uint32_t>(key);
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

u64 skb_change_tail(u64, u64 new_len, u64 flags, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_change_tail")) return 0;
    if (flags || new_len > 0xffff || new_len < 14) return ret(kEINVAL);
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
    if (flags || head_room > 0xffff) return ret(kEINVAL);
    if (head_room > w.pkt.data_meta) return ret(kENOMEM_);
    w.pkt.data -= static_cast<uint32_t>(head_room);
    w.pkt.data_meta = w.pkt.data;
    std::memset(w.pkt.buf + w.pkt.data, 0, head_room);
    w.sync_packet();
    return 0;
}

u64 skb_pull_data(u64, u64 len, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_pull_data")) return 0;
    // The simulated skb is linear already; only a length past the end fails.
    return len > w.pkt.data_end - w.pkt.data ? ret(kENOMEM_) : 0;
}

// Offset of the layer-3 payload for BPF_ADJ_ROOM_NET, or -1.
int64_t l4_offset(World& w) {
    const uint8_t* d = w.pkt.buf + w.pkt.data;
    const uint32_t len = w.pkt.data_end - w.pkt.data;
    if (len < 15) return -1;
    const uint16_t proto = static_cast<uint16_t>((d[12] << 8) | d[13]);
    if (proto == 0x0800) return 14 + (d[14] & 0xf) * 4;
    if (proto == 0x86dd) return 14 + 40;
    return -1;
}

u64 skb_adjust_room(u64, u64 len_diff, u64 mode, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!has_packet(w, "bpf_skb_adjust_room")) return 0;
    const int64_t d = static_cast<int32_t>(static_cast<uint32_t>(len_diff));
    if (mode > 1 || (flags & ~0x7ffull) || d < -0xfff || d > 0xfff) return ret(kEINVAL);
    const int64_t at = mode == 1 ? 14 : l4_offset(w);   // BPF_ADJ_ROOM_MAC : BPF_ADJ_ROOM_NET
    if (at < 0 || w.pkt.data + static_cast<uint64_t>(at) > w.pkt.data_end) return ret(kEINVAL);
    return ret(move_tail(w, w.pkt.data + static_cast<uint32_t>(at), d));
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
    const int64_t rc = move_tail(w, w.pkt.data + 14, delta);
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

u64 skb_get_tunnel_key(u64, u64 key, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, key, size, vm::kWrite, "bpf_skb_get_tunnel_key", 2)) return 0;
    std::memset(reinterpret_cast<void*>(key), 0, size);
    if (flags & ~(u64(BPF_F_TUNINFO_IPV6) | u64(BPF_F_TUNINFO_FLAGS))) return ret(kEINVAL);
    if (w.tunnel_key.empty()) return ret(kENOENT);   // no tunnel metadata on this packet
    std::memcpy(reinterpret_cast<void*>(key), w.tunnel_key.data(), std::min<std::size_t>(size, w.tunnel_key.size()));
    return 0;
}

u64 skb_set_tunnel_key(u64, u64 key, u64 size, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, key, size, vm::kRead, "bpf_skb_set_tunnel_key", 2)) return 0;
    // BPF_F_TUNINFO_IPV6 | BPF_F_ZERO_CSUM_TX | BPF_F_DONT_FRAGMENT | BPF_F_SEQ_NUMBER | BPF_F_NO_TUNNEL_KEY
    if (flags & ~u64(0x1f))
        return ret(kEINVAL);
    const auto* p = reinterpret_cast<const uint8_t*>(key);
    w.tunnel_key.assign(p, p + size);
    return 0;
}

u64 fib_lookup(u64, u64 params, u64 plen, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (plen < sizeof(bpf_fib_lookup)) return ret(kEINVAL);
    if (!mem_arg(w, params, plen, vm::kReadWrite, "bpf_fib_lookup", 2)) return 0;
    if (flags & ~u64(0x3f)) return ret(kEINVAL);   // DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK
    // The simulated world has no routes (yet): nothing is forwarded.
    return BPF_FIB_LKUP_RET_NOT_FWDED;
}

u64 redirect_neigh(u64 ifindex, u64 params, u64 plen, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (flags || (params && plen < 20)) return TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return TC_ACT_REDIRECT;
}

u64 redirect_peer(u64 ifindex, u64 flags, u64, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (flags) return TC_ACT_SHOT;
    w.pkt.redirect = static_cast<uint32_t>(ifindex);
    w.pkt.redirected = true;
    return TC_ACT_REDIRECT;
}

u64 no_socket(u64, u64, u64, u64, u64, vm::Env&) { return 0; }   // socket lookups find nothing here
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
    return ret(pe->output(flags, reinterpret_cast<const void*>(data), size, w.options().cpu));
}

// ── callbacks ───────────────────────────────────────────────────────────────
u64 loop(u64 nr, u64 fn, u64 ctx, u64 flags, u64, vm::Env& e) {
    World& w = W(e);
    if (flags) return ret(kEINVAL);
    if (nr > (1u << 23)) return ret(kE2BIG);
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

u64 get_stack(u64, u64 buf, u64 size, u64, u64, vm::Env& e) {
    World& w = W(e);
    if (!mem_arg(w, buf, size, vm::kWrite, "bpf_get_stack", 2)) return 0;
    if (size) std::memset(reinterpret_cast<void*>(buf), 0, size);
    return 0;   // an empty stack
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
    add(BPF_FUNC_probe_read, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read);
    add(BPF_FUNC_probe_read_kernel, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read);
    add(BPF_FUNC_probe_read_user, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read);
    add(BPF_FUNC_probe_read_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str);
    add(BPF_FUNC_probe_read_kernel_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str);
    add(BPF_FUNC_probe_read_user_str, R::Integer, {A::UninitMem, A::ConstSizeOrZero, A::Anything, N, N}, probe_read_str);
    add(BPF_FUNC_ktime_get_ns, R::Integer, {}, ktime_get_ns);
    add(BPF_FUNC_ktime_get_boot_ns, R::Integer, {}, ktime_get_boot_ns);
    add(BPF_FUNC_ktime_get_coarse_ns, R::Integer, {}, ktime_get_coarse_ns);
    add(BPF_FUNC_jiffies64, R::Integer, {}, jiffies64);
    add(BPF_FUNC_get_prandom_u32, R::Integer, {}, get_prandom_u32);
    add(BPF_FUNC_get_smp_processor_id, R::Integer, {}, get_smp_processor_id);
    add(BPF_FUNC_get_numa_node_id, R::Integer, {}, get_numa_node_id);
    add(BPF_FUNC_get_current_pid_tgid, R::Integer, {}, get_current_pid_tgid);
    add(BPF_FUNC_get_current_uid_gid, R::Integer, {}, get_current_uid_gid);
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
    add(BPF_FUNC_sk_lookup_tcp, R::SocketOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_sk_lookup_udp, R::SocketOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_skc_lookup_tcp, R::SockCommonOrNull, {A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything}, no_socket);
    add(BPF_FUNC_get_socket_cookie, R::Integer, {A::Ctx, N, N, N, N}, socket_cookie);
    add(BPF_FUNC_get_netns_cookie, R::Integer, {A::CtxOrNull, N, N, N, N}, netns_cookie);
    add(BPF_FUNC_override_return, R::Integer, {A::Ctx, A::Anything, N, N, N}, override_return);
    return t;
}

}  // namespace bpfsim::harness
