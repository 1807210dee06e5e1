// BPF maps with the kernel's semantics. Included from harness/harness.hpp (after MapDef);
// do not include directly.
//
// Memory. Values live in memory the program reads and writes directly, so every pointer a
// map hands to a program lies inside regions(). Storage is reserved up front, as the
// kernel preallocates, with mmap(MAP_NORESERVE): a million-entry map costs only the pages
// that are touched. Slots are round_up(value_size, 8) bytes; per-CPU maps keep ncpus
// consecutive slots per entry. Maps whose program-side lookups return something other
// than a value (prog_array, perf_event_array, cgroup_array, map-in-map, stack_trace) and
// keyless maps (queue, stack, bloom filter) have no regions; the ring buffer's region is
// its data area mapped twice. Redirect and socket containers (devmap, devmap_hash, cpumap,
// xskmap, sockmap, sockhash) hand out read-only slots, as the kernel makes them.
//
// Two sides. The program side (lookup, update, erase, push, pop, peek) is what the map
// helpers do; the user side (get_next_key, user_lookup, user_update, user_delete) is what
// the bpf(2) syscall does, with per-CPU values as ncpus consecutive round_up(value_size, 8)
// blocks. Errors are the kernel's negative errno values (errc below). Program-side writes
// to a map that is read-only to programs (def().frozen, BPF_F_RDONLY_PROG) return -EPERM;
// the kernel's verifier would have refused them.
//
// Threads. A Map is used by one thread at a time; nothing here locks.
#pragma once

#include "common/error.hpp"
#include "vm/vm.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace bpfsim::harness {

// Errno values as the kernel returns them to programs and to bpf(2) callers (negative).
namespace errc {
inline constexpr int64_t kEPERM = -1, kENOENT = -2, kE2BIG = -7, kEBADF = -9, kEAGAIN = -11, kENOMEM = -12,
                         kEFAULT = -14, kEBUSY = -16, kEEXIST = -17, kENODEV = -19, kEINVAL = -22, kENOSPC = -28,
                         kEOVERFLOW = -75, kEOPNOTSUPP = -95, kENOTSUPP = -524;
}

// Update flags (bpf_map_update_elem, bpf_map_push_elem).
inline constexpr uint64_t kBpfAny = 0, kBpfNoexist = 1, kBpfExist = 2, kBpfFLock = 4;

// Map creation flags (MapDef::flags).
inline constexpr uint32_t kBpfFNoPrealloc = 1u << 0, kBpfFNoCommonLru = 1u << 1, kBpfFNumaNode = 1u << 2,
                          kBpfFRdonly = 1u << 3, kBpfFWronly = 1u << 4, kBpfFStackBuildId = 1u << 5,
                          kBpfFZeroSeed = 1u << 6, kBpfFRdonlyProg = 1u << 7, kBpfFWronlyProg = 1u << 8,
                          kBpfFMmapable = 1u << 10, kBpfFPreserveElems = 1u << 11, kBpfFInnerMap = 1u << 12;

struct MapOptions {
    unsigned ncpus = 1;     // copies of per-CPU values; CPUs a cpumap or perf_event_array knows
    uint64_t seed = 0;      // hashing of bloom filters and stack ids (BPF_F_ZERO_SEED: 0)
};

class Map {
public:
    // Validates def as the kernel's map allocation does (sizes, flags, max_entries) and
    // builds the map. Invalid definitions are ErrorCode::InvalidElf, types bpfsim does not
    // provide ErrorCode::Unsupported; both name the map.
    static Result<std::unique_ptr<Map>> create(const MapDef& def, const MapOptions& opts = {});
    virtual ~Map();
    Map(const Map&) = delete;
    Map& operator=(const Map&) = delete;

    const MapDef& def() const { return def_; }
    const MapOptions& options() const { return opts_; }

    // ── what helpers do ──
    // A pointer to the value (cpu's copy for per-CPU maps; cpu is taken modulo ncpus), or
    // nullptr. Map-in-map: the inner Map* itself. LRU maps count it as a use.
    virtual void* lookup(const void* key, unsigned cpu);
    virtual int64_t update(const void* key, const void* value, uint64_t flags, unsigned cpu);
    virtual int64_t erase(const void* key);
    // Queue and stack: push, pop, peek. Bloom filter: push adds, peek tests (0 or -ENOENT).
    virtual int64_t push(const void* value, uint64_t flags);
    virtual int64_t pop(void* out);
    virtual int64_t peek(void* out);

    // ── what userspace does through bpf(2) ──
    virtual int64_t get_next_key(const void* key_or_null, void* next);
    virtual int64_t user_lookup(const void* key, void* value);
    virtual int64_t user_update(const void* key, const void* value, uint64_t flags);
    virtual int64_t user_delete(const void* key);
    virtual std::size_t count() const = 0;   // entries present (arrays: max_entries)
    // Bytes of the value buffer user_lookup / user_update take.
    std::size_t user_value_size() const;
    // BPF_MAP_FREEZE: user_update, user_delete and pushes from userspace then return -EPERM.
    void freeze() { user_frozen_ = true; }
    bool user_frozen() const { return user_frozen_; }

    // Memory the program may touch through pointers this map hands out.
    virtual std::vector<vm::Region> regions() const;

    // prog_array: the program id stored at index, or -1.
    virtual int64_t prog_at(uint32_t index) const;
    // devmap, devmap_hash, cpumap, xskmap, sockmap, ... : whether key holds an entry
    // (a redirect target, a socket, a cgroup).
    virtual bool has(uint32_t key) const;
    // array_of_maps, hash_of_maps: the inner map at key, or nullptr.
    virtual Map* inner_at(const void* key) const;

    // Map-in-map values. bpf(2) takes an inner map's fd; here user_update takes a 4-byte map
    // index that this function turns into the Map (nullptr when there is none: -EBADF). The
    // owner sets it before the first user_update; the Map* is resolved then and stored, and
    // user_lookup gives the index back (where the kernel gives the map id).
    std::function<Map*(uint32_t)> resolve_map;

protected:
    Map(MapDef def, MapOptions opts);
    // Program-side writes refused: frozen, or BPF_F_RDONLY_PROG.
    bool prog_read_only() const;
    // The permission of this map's regions for programs.
    uint8_t prog_perm() const;
    // bpf(2) writes refused (-EPERM): frozen, or BPF_F_RDONLY; reads refused: BPF_F_WRONLY.
    bool user_write_denied() const;
    bool user_read_denied() const;
    MapDef def_;
    MapOptions opts_;
    bool user_frozen_ = false;
};

// BPF_MAP_TYPE_RINGBUF: records with the kernel's 8-byte header {u32 len; u32 pg_off} in a
// data area mapped twice back to back, so a record that wraps stays contiguous. len carries
// kBusy until the record is submitted or discarded (kDiscard); pg_off is the header's page
// offset from the start of the kernel's struct bpf_ringbuf, whose data begins 3 pages in.
class RingbufMap : public Map {
public:
    static constexpr uint32_t kBusy = 1u << 31, kDiscard = 1u << 30, kHeader = 8, kDataPageOffset = 3;
    static constexpr uint64_t kNoWakeup = 1, kForceWakeup = 2;                            // BPF_RB_*
    static constexpr uint64_t kAvailData = 0, kRingSize = 1, kConsPos = 2, kProdPos = 3;   // bpf_ringbuf_query
    ~RingbufMap() override;

    // bpf_ringbuf_reserve: a pointer inside regions(), or nullptr (bad flags, too large, or
    // not enough space: the last two count as a drop).
    void* reserve(uint64_t size, uint64_t flags);
    // bpf_ringbuf_submit / _discard: 0, or -EINVAL for a pointer that is not a reserved record.
    int64_t submit(void* sample, uint64_t flags);
    int64_t discard(void* sample, uint64_t flags);
    // bpf_ringbuf_output: 0, -EINVAL (flags) or -EAGAIN (no space, counted as a drop).
    int64_t output(const void* data, uint64_t size, uint64_t flags);
    // bpf_ringbuf_query: kAvailData, kRingSize, kConsPos, kProdPos; 0 for anything else.
    uint64_t query(uint64_t flag) const;

    // The consumer: submitted records in order, discarded ones skipped; stops at a record
    // still reserved. Advances the consumer position.
    std::vector<std::vector<uint8_t>> drain();
    uint64_t dropped() const { return dropped_; }
    uint8_t* data() const { return data_; }   // the first mapping of the data area
    uint64_t size() const { return size_; }

    void* lookup(const void*, unsigned) override { return nullptr; }
    int64_t update(const void*, const void*, uint64_t, unsigned) override { return errc::kENOTSUPP; }
    int64_t erase(const void*) override { return errc::kENOTSUPP; }
    int64_t get_next_key(const void*, void*) override { return errc::kENOTSUPP; }
    int64_t user_lookup(const void*, void*) override { return errc::kENOTSUPP; }
    int64_t user_update(const void*, const void*, uint64_t) override { return errc::kENOTSUPP; }
    int64_t user_delete(const void*) override { return errc::kENOTSUPP; }
    std::size_t count() const override { return 0; }
    std::vector<vm::Region> regions() const override;

private:
    friend class Map;
    RingbufMap(MapDef def, MapOptions opts);
    int64_t commit(void* sample, bool discard);
    uint8_t* data_ = nullptr;     // 2 x size_ bytes: the same pages twice
    uint64_t size_ = 0;
    uint64_t prod_ = 0, cons_ = 0, pending_ = 0;   // pending_: oldest record not yet committed
    uint64_t dropped_ = 0;
};

// BPF_MAP_TYPE_PERF_EVENT_ARRAY. Slot i stands for a perf event opened on CPU i, as libbpf's
// perf_buffer sets it up: slots 0..ncpus-1 start open, user_delete closes one, user_update
// opens it again. Output goes to records() in order.
class PerfEventArrayMap : public Map {
public:
    struct Record {
        uint32_t cpu;
        std::vector<uint8_t> data;
    };
    static constexpr uint64_t kCurrentCpu = 0xffffffffull;                // BPF_F_CURRENT_CPU
    static constexpr uint64_t kIndexMask = 0xffffffffull, kCtxLenMask = 0xfffffull << 32;

    // bpf_perf_event_output from a program running on cpu: the index in the low 32 bits of
    // flags (kCurrentCpu: cpu). 0; -EINVAL for unknown flags; -E2BIG for an index past
    // max_entries; -ENOENT for a closed slot; -EOPNOTSUPP when the slot's CPU is not cpu.
    // kCtxLenMask bits are accepted (the skb/xdp helpers append context bytes to data).
    int64_t perf_output(uint64_t flags_index, const void* data, std::size_t size, unsigned cpu);
    int64_t output(uint64_t flags, const void* data, uint64_t size, unsigned cpu) {
        return perf_output(flags, data, static_cast<std::size_t>(size), cpu);
    }
    const std::vector<Record>& records() const { return records_; }
    void clear_records() { records_.clear(); }

    int64_t get_next_key(const void* key, void* next) override;
    int64_t user_lookup(const void*, void*) override { return errc::kENOTSUPP; }
    int64_t user_update(const void* key, const void* value, uint64_t flags) override;
    int64_t user_delete(const void* key) override;
    std::size_t count() const override;
    bool has(uint32_t key) const override { return open_.contains(key); }

private:
    friend class Map;
    PerfEventArrayMap(MapDef def, MapOptions opts);
    std::set<uint32_t> open_;   // slots with an event (a definition's max_entries may be 2^32 - 1)
    std::vector<Record> records_;
};

// BPF_MAP_TYPE_STACK_TRACE: stack ids to instruction pointers. Programs cannot look it up
// (bpf_get_stackid is its only helper); userspace reads a stack zero-filled to value_size.
class StackTraceMap : public Map {
public:
    static constexpr uint64_t kFastStackCmp = 1u << 9, kReuseStackid = 1u << 10;   // BPF_F_*
    // What bpf_get_stackid does once it has the stack (skipped frames already dropped):
    // the id of ips (at most value_size / 8 of them are kept), or -EFAULT for an empty stack,
    // -EEXIST when the id's bucket holds another stack and kReuseStackid is not set,
    // -ENOMEM when every one of max_entries stacks is in use.
    int64_t get_stackid(std::span<const uint64_t> ips, uint64_t flags);

    void* lookup(const void*, unsigned) override { return nullptr; }
    int64_t get_next_key(const void* key, void* next) override;
    int64_t user_lookup(const void* key, void* value) override;
    int64_t user_update(const void*, const void*, uint64_t) override { return errc::kEINVAL; }
    int64_t user_delete(const void* key) override;
    int64_t erase(const void*) override { return errc::kEINVAL; }
    std::size_t count() const override { return used_; }
    uint32_t buckets() const { return n_buckets_; }

private:
    friend class Map;
    StackTraceMap(MapDef def, MapOptions opts);
    struct Stack {
        uint64_t hash = 0;
        std::vector<uint64_t> ips;
    };
    std::map<uint32_t, Stack> stacks_;   // id -> stack; ids < n_buckets_
    uint32_t n_buckets_ = 1;             // max_entries rounded up to a power of two
    std::size_t used_ = 0;
};

}  // namespace bpfsim::harness
