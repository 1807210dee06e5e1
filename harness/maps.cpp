// Map implementations: arrays (plain, per-CPU), slot containers (prog_array, cgroup_array,
// array_of_maps, devmap, cpumap, xskmap, sockmap), hashes (plain, per-CPU, LRU, hash_of_maps,
// devmap_hash, sockhash), LPM trie, queue and stack, bloom filter, stack trace, ring buffer,
// perf event array.
//
// The kernel sources (kernel/bpf/arraymap.c, hashtab.c, lpm_trie.c, queue_stack_maps.c,
// bloom_filter.c, ringbuf.c, stackmap.c, devmap.c, cpumap.c, net/xdp/xskmap.c,
// net/core/sock_map.c) are the reference for which checks happen and which errno comes
// back; the data structures here are our own and simpler. Where an order is the kernel's
// choice (hash iteration, slot reuse), ours is deterministic instead: hashes iterate in
// key byte order, LRU eviction is exact.
#include "harness/harness.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <deque>
#include <limits>
#include <utility>

namespace bpfsim::harness {

namespace {

constexpr uint32_t kAccessMask = kBpfFRdonly | kBpfFWronly | kBpfFRdonlyProg | kBpfFWronlyProg;
constexpr uint64_t kKmallocMax = 1ull << 22;      // KMALLOC_MAX_SIZE with 4 KiB pages
constexpr uint64_t kPcpuMinUnit = 32u << 10;      // PCPU_MIN_UNIT_SIZE: bound of per-CPU values
constexpr uint32_t kMaxBpfStack = 512;            // hash keys are built on the stack
constexpr uint32_t kNrCpus = 8192;                // NR_CPUS of distribution kernels: cpumap's bound
constexpr uint32_t kMaxStackDepth = 127;          // kernel.perf_event_max_stack
constexpr uint32_t kCpumapMaxQsize = 16384;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxReserve = 1ull << 40;      // address space one map may reserve
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

uint64_t round8(uint64_t v) { return (v + 7) & ~7ull; }

uint32_t load_u32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// A definition bpf(BPF_MAP_CREATE) refuses; errno_name is the error it gives.
[[noreturn]] void refuse(const MapDef& d, const char* errno_name, const std::string& what) {
    Location loc;
    loc.section = d.section;
    throw Error(ErrorCode::InvalidElf,
                fmt::format("map '{}' ({}): {} (the kernel refuses it with {})", d.name, to_string(d.type), what, errno_name), loc);
}

void check_flags(const MapDef& d, uint32_t allowed) {
    if (d.flags & ~allowed)
        refuse(d, "EINVAL", fmt::format("map_flags {:#x} include {:#x}, which this map type does not take", d.flags, d.flags & ~allowed));
    if ((d.flags & kBpfFRdonly && d.flags & kBpfFWronly) || (d.flags & kBpfFRdonlyProg && d.flags & kBpfFWronlyProg))
        refuse(d, "EINVAL", fmt::format("map_flags {:#x} make the map both read-only and write-only", d.flags));
}

void need(const MapDef& d, bool ok, const char* errno_name, const std::string& what) {
    if (!ok) refuse(d, errno_name, what);
}

void need_key_size(const MapDef& d, uint32_t size) {
    need(d, d.key_size == size, "EINVAL", fmt::format("key size {} is not {}", d.key_size, size));
}

void need_entries(const MapDef& d) { need(d, d.max_entries > 0, "EINVAL", "max_entries is 0"); }

void need_value(const MapDef& d) { need(d, d.value_size > 0, "EINVAL", "value size is 0"); }

// 64-bit finaliser (murmur3's fmix64): every input bit affects every output bit.
uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

// A seeded hash of bytes, the same on every host.
uint64_t hash_bytes(const void* data, std::size_t n, uint64_t seed) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t h = mix64(seed ^ 0x9e3779b97f4a7c15ull ^ n);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = mix64(h ^ w) * 0x9e3779b97f4a7c15ull;
    }
    uint64_t tail = 0;
    for (std::size_t k = 0; i + k < n; ++k) tail |= uint64_t(p[i + k]) << (8 * k);
    return mix64(h ^ tail ^ (uint64_t(n) << 56));
}

// Reserved, lazily backed, zeroed memory.
class Slab {
public:
    Slab() = default;
    Slab(const MapDef& d, uint64_t bytes) : size_(std::max<uint64_t>((bytes + kPage - 1) & ~(kPage - 1), kPage)) {
        if (bytes > kMaxReserve) refuse(d, "ENOMEM", fmt::format("its storage would take {} bytes", bytes));
        void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) refuse(d, "ENOMEM", fmt::format("cannot reserve {} bytes", size_));
        base_ = static_cast<uint8_t*>(p);
    }
    ~Slab() {
        if (base_) munmap(base_, size_);
    }
    Slab(const Slab&) = delete;
    Slab& operator=(const Slab&) = delete;
    Slab(Slab&& o) noexcept : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    Slab& operator=(Slab&& o) noexcept {
        std::swap(base_, o.base_);
        std::swap(size_, o.size_);
        return *this;
    }
    uint8_t* at(uint64_t off) const { return base_ + off; }
    // The memory as an array of T (zero bytes must be T's empty value).
    template <class T>
    T* as() const {
        return reinterpret_cast<T*>(base_);
    }
    vm::Region region(const MapDef& d, uint8_t perm) const {
        return vm::Region{reinterpret_cast<uint64_t>(base_), size_, perm, vm::RegionKind::MapValue, d.name};
    }

private:
    uint8_t* base_ = nullptr;
    uint64_t size_ = 0;
};

// Slot numbers for entries that come and go: never-used slots first, then freed ones (LIFO).
class SlotPool {
public:
    explicit SlotPool(uint32_t max) : max_(max) {}
    uint32_t take() {
        if (!free_.empty()) {
            const uint32_t s = free_.back();
            free_.pop_back();
            return s;
        }
        return next_ < max_ ? next_++ : kNone;
    }
    void give(uint32_t s) { free_.push_back(s); }
    uint32_t high_water() const { return next_; }

private:
    uint32_t max_;
    uint32_t next_ = 0;
    std::vector<uint32_t> free_;
};

// bpf_array_get_next_key: every index, present or not; an unknown key restarts at 0.
int64_t array_next_key(uint32_t max_entries, const void* key, void* next) {
    const uint32_t index = key ? load_u32(key) : kNone;
    uint32_t n = 0;
    if (index < max_entries) {
        if (index == max_entries - 1) return errc::kENOENT;
        n = index + 1;
    }
    std::memcpy(next, &n, 4);
    return 0;
}

bool bad_update_flags(uint64_t flags) { return (flags & ~kBpfFLock) > kBpfExist; }

// Whether m may be stored in a map-in-map whose inner template is t (bpf_map_meta_equal).
bool inner_compatible(const MapDef* t, const Map& m) {
    if (!t) return true;
    const MapDef& d = m.def();
    if (d.type != t->type || d.key_size != t->key_size || d.value_size != t->value_size || d.flags != t->flags) return false;
    return (t->flags & kBpfFInnerMap) || d.max_entries == t->max_entries;
}

// Resolves a map-in-map value (a map index) to the inner map: 0, -EBADF or -EINVAL.
int64_t resolve_inner(const Map& outer, const void* value, Map*& inner) {
    inner = outer.resolve_map ? outer.resolve_map(load_u32(value)) : nullptr;
    if (!inner) return errc::kEBADF;
    return inner_compatible(outer.def().inner.get(), *inner) ? 0 : errc::kEINVAL;
}

// ── arrays ──────────────────────────────────────────────────────────────────
// BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY: every index exists, zero-filled at creation.
class ArrayMap final : public Map {
public:
    ArrayMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
        percpu_ = def_.type == MapType::PercpuArray;
        stride_ = round8(def_.value_size);
        copies_ = percpu_ ? opts_.ncpus : 1;
        slab_ = Slab(def_, uint64_t(def_.max_entries) * stride_ * copies_);
    }
    uint8_t* value(uint32_t i, unsigned cpu) const { return slab_.at((uint64_t(i) * copies_ + cpu % copies_) * stride_); }

    void* lookup(const void* key, unsigned cpu) override {
        const uint32_t i = load_u32(key);
        return i < def_.max_entries ? value(i, cpu) : nullptr;
    }
    int64_t update(const void* key, const void* v, uint64_t flags, unsigned cpu) override {
        if (prog_read_only()) return errc::kEPERM;
        if (bad_update_flags(flags)) return errc::kEINVAL;
        const uint32_t i = load_u32(key);
        if (i >= def_.max_entries) return errc::kE2BIG;   // all preallocated: nothing to insert
        if (flags & kBpfNoexist) return errc::kEEXIST;    // every element exists
        if (percpu_ && (flags & kBpfFLock)) return errc::kEINVAL;   // no spin lock in a per-CPU value
        std::memcpy(value(i, cpu), v, def_.value_size);
        return 0;
    }
    int64_t erase(const void*) override { return errc::kEINVAL; }
    int64_t get_next_key(const void* key, void* next) override { return array_next_key(def_.max_entries, key, next); }
    int64_t user_lookup(const void* key, void* out) override {
        if (user_read_denied()) return errc::kEPERM;
        const uint32_t i = load_u32(key);
        if (i >= def_.max_entries) return errc::kENOENT;
        if (!percpu_) {
            std::memcpy(out, value(i, 0), def_.value_size);
            return 0;
        }
        for (unsigned c = 0; c < copies_; ++c) std::memcpy(static_cast<uint8_t*>(out) + std::size_t(c) * stride_, value(i, c), stride_);
        return 0;
    }
    int64_t user_update(const void* key, const void* in, uint64_t flags) override {
        if (user_write_denied()) return errc::kEPERM;
        if (!percpu_) {
            if (bad_update_flags(flags)) return errc::kEINVAL;
            const uint32_t i = load_u32(key);
            if (i >= def_.max_entries) return errc::kE2BIG;
            if (flags & kBpfNoexist) return errc::kEEXIST;
            std::memcpy(value(i, 0), in, def_.value_size);
            return 0;
        }
        if ((flags & kBpfFLock) || flags > kBpfExist) return errc::kEINVAL;
        const uint32_t i = load_u32(key);
        if (i >= def_.max_entries) return errc::kE2BIG;
        if (flags == kBpfNoexist) return errc::kEEXIST;
        for (unsigned c = 0; c < copies_; ++c)
            std::memcpy(value(i, c), static_cast<const uint8_t*>(in) + std::size_t(c) * stride_, def_.value_size);
        return 0;
    }
    int64_t user_delete(const void*) override { return user_write_denied() ? errc::kEPERM : errc::kEINVAL; }
    std::size_t count() const override { return def_.max_entries; }
    std::vector<vm::Region> regions() const override { return {slab_.region(def_, prog_perm())}; }
    bool has(uint32_t key) const override { return key < def_.max_entries; }

private:
    Slab slab_;
    uint64_t stride_ = 0;
    unsigned copies_ = 1;
    bool percpu_ = false;
};

// ── slot containers ─────────────────────────────────────────────────────────
// Arrays whose slots are empty until userspace fills them: the fd arrays (prog_array,
// cgroup_array, array_of_maps) and the redirect/socket arrays (devmap, cpumap, xskmap,
// sockmap). Each type keeps the kernel's own flag and errno rules.
class SlotMap final : public Map {
public:
    SlotMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
        stride_ = round8(def_.value_size);
        slab_ = Slab(def_, uint64_t(def_.max_entries) * stride_);
        // Reserved like the values: a definition's max_entries costs address space, not memory.
        present_slab_ = Slab(def_, def_.max_entries);
        present_ = present_slab_.as<bool>();
        if (def_.type == MapType::ArrayOfMaps) {
            inner_slab_ = Slab(def_, uint64_t(def_.max_entries) * sizeof(Map*));
            inner_ = inner_slab_.as<Map*>();
        }
    }
    bool fd_array() const {
        return def_.type == MapType::ProgArray || def_.type == MapType::CgroupArray || def_.type == MapType::ArrayOfMaps;
    }
    // Types whose program-side lookup returns a pointer to the slot.
    bool hands_out_values() const {
        return def_.type == MapType::Devmap || def_.type == MapType::Cpumap || def_.type == MapType::Xskmap ||
               def_.type == MapType::Sockmap;
    }
    uint8_t* value(uint32_t i) const { return slab_.at(uint64_t(i) * stride_); }
    void set(uint32_t i, const void* v) {
        std::memcpy(value(i), v, def_.value_size);
        if (!present_[i]) ++used_;
        present_[i] = true;
    }
    void clear(uint32_t i) {
        if (present_[i]) --used_;
        present_[i] = false;
        std::memset(value(i), 0, stride_);
        if (inner_) inner_[i] = nullptr;
    }

    void* lookup(const void* key, unsigned) override {
        const uint32_t i = load_u32(key);
        if (i >= def_.max_entries || !present_[i]) return nullptr;
        if (def_.type == MapType::ArrayOfMaps) return inner_[i];
        return hands_out_values() ? value(i) : nullptr;
    }
    // Programs cannot write these maps (the verifier allows only lookups and redirects),
    // except sockmap's updates, which take a socket bpfsim does not have.
    int64_t update(const void*, const void*, uint64_t, unsigned) override {
        return def_.type == MapType::Sockmap ? errc::kEOPNOTSUPP : errc::kEINVAL;
    }
    int64_t erase(const void* key) override { return def_.type == MapType::Sockmap ? remove(key) : errc::kEINVAL; }
    int64_t get_next_key(const void* key, void* next) override { return array_next_key(def_.max_entries, key, next); }

    int64_t user_lookup(const void* key, void* out) override {
        if (user_read_denied()) return errc::kEPERM;
        const uint32_t i = load_u32(key);
        switch (def_.type) {
        case MapType::CgroupArray: return errc::kENOTSUPP;   // no syscall lookup for cgroup fds
        case MapType::Xskmap: return errc::kEOPNOTSUPP;
        default: break;
        }
        if (def_.type == MapType::Sockmap && def_.value_size != 8) return errc::kENOSPC;   // a cookie needs 8 bytes
        if (i >= def_.max_entries || !present_[i]) return errc::kENOENT;
        std::memcpy(out, value(i), def_.value_size);
        return 0;
    }

    int64_t user_update(const void* key, const void* v, uint64_t flags) override {
        if (user_write_denied()) return errc::kEPERM;
        const uint32_t i = load_u32(key);
        if (fd_array()) {
            if (flags != kBpfAny) return errc::kEINVAL;
            if (i >= def_.max_entries) return errc::kE2BIG;
            if (def_.type == MapType::ArrayOfMaps) {
                Map* inner = nullptr;
                if (int64_t rc = resolve_inner(*this, v, inner); rc < 0) return rc;
                set(i, v);
                inner_[i] = inner;
                return 0;
            }
            set(i, v);
            return 0;
        }
        if (flags > kBpfExist) return errc::kEINVAL;
        if (i >= def_.max_entries) return errc::kE2BIG;
        switch (def_.type) {
        case MapType::Devmap: {
            if (flags == kBpfNoexist) return errc::kEEXIST;
            const uint32_t ifindex = load_u32(v);
            if (ifindex == 0) {
                // ifindex 0 empties the slot; naming a program with it is an error.
                if (def_.value_size == 8 && static_cast<int32_t>(load_u32(static_cast<const uint8_t*>(v) + 4)) > 0)
                    return errc::kEINVAL;
                clear(i);
                return 0;
            }
            set(i, v);
            return 0;
        }
        case MapType::Cpumap: {
            if (flags == kBpfNoexist) return errc::kEEXIST;
            const uint32_t qsize = load_u32(v);
            if (qsize > kCpumapMaxQsize) return errc::kEOVERFLOW;
            if (i >= opts_.ncpus) return errc::kENODEV;   // no such CPU
            if (qsize == 0) {
                clear(i);   // same as deleting
                return 0;
            }
            set(i, v);
            return 0;
        }
        default:   // xskmap, sockmap
            if (flags == kBpfNoexist && present_[i]) return errc::kEEXIST;
            if (flags == kBpfExist && !present_[i]) return errc::kENOENT;
            set(i, v);
            return 0;
        }
    }

    int64_t user_delete(const void* key) override {
        if (user_write_denied()) return errc::kEPERM;
        return remove(key);
    }
    int64_t remove(const void* key) {
        const uint32_t i = load_u32(key);
        if (fd_array()) {
            if (i >= def_.max_entries) return errc::kE2BIG;
            if (!present_[i]) return errc::kENOENT;
            clear(i);
            return 0;
        }
        if (i >= def_.max_entries) return errc::kEINVAL;
        if (def_.type == MapType::Sockmap && !present_[i]) return errc::kEINVAL;
        clear(i);   // devmap, cpumap, xskmap: deleting an empty slot succeeds
        return 0;
    }

    std::size_t count() const override { return used_; }
    std::vector<vm::Region> regions() const override {
        // The kernel makes devmap and cpumap values read-only to programs; socket pointers
        // are not writable either.
        if (!hands_out_values()) return {};
        return {slab_.region(def_, vm::kRead)};
    }
    int64_t prog_at(uint32_t i) const override {
        if (def_.type != MapType::ProgArray || i >= def_.max_entries || !present_[i]) return -1;
        return load_u32(value(i));
    }
    bool has(uint32_t key) const override { return key < def_.max_entries && present_[key]; }
    Map* inner_at(const void* key) const override {
        if (!inner_) return nullptr;
        const uint32_t i = load_u32(key);
        return i < def_.max_entries ? inner_[i] : nullptr;
    }

private:
    Slab slab_;
    uint64_t stride_ = 0;
    Slab present_slab_, inner_slab_;
    bool* present_ = nullptr;
    Map** inner_ = nullptr;   // array_of_maps
    std::size_t used_ = 0;
};

// ── hashes ──────────────────────────────────────────────────────────────────
// hash, percpu_hash, lru_hash, lru_percpu_hash, hash_of_maps, devmap_hash, sockhash.
// Entries iterate in key byte order. LRU maps keep an exact recency list: program lookups
// and every update count as a use (userspace lookups do not, as in the kernel), and a full
// map evicts the least recently used entry.
class HashMap final : public Map {
public:
    HashMap(MapDef d, MapOptions o) : Map(std::move(d), o), pool_(def_.max_entries) {
        percpu_ = def_.type == MapType::PercpuHash || def_.type == MapType::LruPercpuHash;
        lru_ = def_.type == MapType::LruHash || def_.type == MapType::LruPercpuHash;
        stride_ = round8(def_.value_size);
        copies_ = percpu_ ? opts_.ncpus : 1;
        slab_ = Slab(def_, uint64_t(def_.max_entries) * stride_ * copies_);
    }

    struct Entry {
        uint32_t slot;
        Map* inner = nullptr;   // hash_of_maps
    };
    using Table = std::map<std::string, Entry, std::less<>>;

    std::string_view key_of(const void* key) const { return {static_cast<const char*>(key), def_.key_size}; }
    uint8_t* value(uint32_t slot, unsigned cpu) const { return slab_.at((uint64_t(slot) * copies_ + cpu % copies_) * stride_); }

    // ── the recency list, over slots; head_ is the most recent ──
    void unlink(uint32_t s) {
        (prev_[s] == kNone ? head_ : next_[prev_[s]]) = next_[s];
        (next_[s] == kNone ? tail_ : prev_[next_[s]]) = prev_[s];
    }
    void push_front(uint32_t s) {
        prev_[s] = kNone;
        next_[s] = head_;
        (head_ == kNone ? tail_ : prev_[head_]) = s;
        head_ = s;
    }
    void touch(uint32_t s) {
        if (!lru_ || head_ == s) return;
        unlink(s);
        push_front(s);
    }

    void remove(Table::iterator it) {
        const uint32_t s = it->second.slot;
        if (lru_) unlink(s);
        pool_.give(s);
        entries_.erase(it);
    }

    // The entry for key, created when flags allow; entries_.end() with rc set otherwise.
    Table::iterator find_or_insert(const void* key, uint64_t flags, int64_t& rc) {
        auto it = entries_.find(key_of(key));
        if (it != entries_.end()) {
            if ((flags & 3) == kBpfNoexist) {
                rc = errc::kEEXIST;
                return entries_.end();
            }
            touch(it->second.slot);
            return it;
        }
        if ((flags & 3) == kBpfExist) {
            rc = errc::kENOENT;
            return entries_.end();
        }
        uint32_t s = pool_.take();
        if (s == kNone) {
            if (!lru_) {
                rc = errc::kE2BIG;
                return entries_.end();
            }
            remove(by_slot_[tail_]);   // evict the least recently used entry
            s = pool_.take();
        }
        std::memset(value(s, 0), 0, stride_ * copies_);
        it = entries_.emplace(std::string(key_of(key)), Entry{s}).first;
        if (lru_) {
            if (by_slot_.size() <= s) {
                by_slot_.resize(s + 1);
                prev_.resize(s + 1, kNone);
                next_.resize(s + 1, kNone);
            }
            by_slot_[s] = it;
            push_front(s);
        }
        return it;
    }

    void* lookup(const void* key, unsigned cpu) override {
        auto it = entries_.find(key_of(key));
        if (it == entries_.end()) return nullptr;
        touch(it->second.slot);
        if (def_.type == MapType::HashOfMaps) return it->second.inner;
        return value(it->second.slot, cpu);
    }
    int64_t update(const void* key, const void* v, uint64_t flags, unsigned cpu) override {
        if (prog_read_only()) return errc::kEPERM;
        if (def_.type == MapType::Sockhash) return errc::kEOPNOTSUPP;   // takes a socket
        if (def_.type == MapType::HashOfMaps || def_.type == MapType::DevmapHash) return errc::kEINVAL;
        if (bad_update_flags(flags) || (percpu_ && (flags & kBpfFLock))) return errc::kEINVAL;
        int64_t rc = 0;
        auto it = find_or_insert(key, flags, rc);
        if (it == entries_.end()) return rc;
        std::memcpy(value(it->second.slot, cpu), v, def_.value_size);
        return 0;
    }
    int64_t erase(const void* key) override {
        if (prog_read_only()) return errc::kEPERM;
        if (def_.type == MapType::HashOfMaps || def_.type == MapType::DevmapHash) return errc::kEINVAL;
        return remove_key(key);
    }
    int64_t remove_key(const void* key) {
        auto it = entries_.find(key_of(key));
        if (it == entries_.end()) return errc::kENOENT;
        remove(it);
        return 0;
    }
    // The next key in byte order; an unknown key restarts at the first, as the kernel does.
    int64_t get_next_key(const void* key, void* next) override {
        auto it = entries_.begin();
        if (key) {
            auto cur = entries_.find(key_of(key));
            if (cur != entries_.end()) it = std::next(cur);
        }
        if (it == entries_.end()) return errc::kENOENT;
        std::memcpy(next, it->first.data(), def_.key_size);
        return 0;
    }
    int64_t user_lookup(const void* key, void* out) override {
        if (user_read_denied()) return errc::kEPERM;
        if (def_.type == MapType::Sockhash && def_.value_size != 8) return errc::kENOSPC;   // a cookie needs 8 bytes
        auto it = entries_.find(key_of(key));
        if (it == entries_.end()) return errc::kENOENT;
        if (!percpu_) {
            std::memcpy(out, value(it->second.slot, 0), def_.value_size);
            return 0;
        }
        for (unsigned c = 0; c < copies_; ++c)
            std::memcpy(static_cast<uint8_t*>(out) + std::size_t(c) * stride_, value(it->second.slot, c), stride_);
        return 0;
    }
    int64_t user_update(const void* key, const void* in, uint64_t flags) override {
        if (user_write_denied()) return errc::kEPERM;
        if (percpu_ || def_.type == MapType::HashOfMaps || def_.type == MapType::DevmapHash || def_.type == MapType::Sockhash) {
            if (flags > kBpfExist) return errc::kEINVAL;
        } else if (bad_update_flags(flags)) {
            return errc::kEINVAL;
        }
        Map* inner = nullptr;
        if (def_.type == MapType::HashOfMaps) {
            if (int64_t rc = resolve_inner(*this, in, inner); rc < 0) return rc;
        }
        if (def_.type == MapType::DevmapHash) {
            if (flags == kBpfNoexist && entries_.find(key_of(key)) != entries_.end()) return errc::kEEXIST;
            if (load_u32(in) == 0) return errc::kEINVAL;   // no device with ifindex 0
            flags &= ~kBpfExist;                            // devmap_hash ignores BPF_EXIST
        }
        int64_t rc = 0;
        auto it = find_or_insert(key, flags, rc);
        if (it == entries_.end()) return rc;
        it->second.inner = inner;
        if (!percpu_) {
            std::memcpy(value(it->second.slot, 0), in, def_.value_size);
            return 0;
        }
        for (unsigned c = 0; c < copies_; ++c)
            std::memcpy(value(it->second.slot, c), static_cast<const uint8_t*>(in) + std::size_t(c) * stride_, def_.value_size);
        return 0;
    }
    int64_t user_delete(const void* key) override {
        if (user_write_denied()) return errc::kEPERM;
        return remove_key(key);
    }
    std::size_t count() const override { return entries_.size(); }
    std::vector<vm::Region> regions() const override {
        if (def_.type == MapType::HashOfMaps) return {};
        if (def_.type == MapType::DevmapHash || def_.type == MapType::Sockhash) return {slab_.region(def_, vm::kRead)};
        return {slab_.region(def_, prog_perm())};
    }
    bool has(uint32_t key) const override {
        return def_.key_size == 4 && entries_.find(std::string_view(reinterpret_cast<const char*>(&key), 4)) != entries_.end();
    }
    Map* inner_at(const void* key) const override {
        auto it = entries_.find(key_of(key));
        return it == entries_.end() ? nullptr : it->second.inner;
    }

private:
    Slab slab_;
    uint64_t stride_ = 0;
    unsigned copies_ = 1;
    bool percpu_ = false, lru_ = false;
    Table entries_;
    SlotPool pool_;
    std::vector<Table::iterator> by_slot_;   // LRU: slot -> entry
    std::vector<uint32_t> prev_, next_;      // LRU: the recency list
    uint32_t head_ = kNone, tail_ = kNone;
};

// ── LPM trie ────────────────────────────────────────────────────────────────
// Keys are {u32 prefixlen; u8 data[key_size - 4]} with data in network order. Entries are
// indexed by their masked prefix, so a lookup probes each stored prefix length, longest
// first. Iteration goes by masked data, then prefix length.
class LpmMap final : public Map {
public:
    LpmMap(MapDef d, MapOptions o) : Map(std::move(d), o), pool_(def_.max_entries) {
        stride_ = round8(def_.value_size);
        max_prefix_ = (def_.key_size - 4) * 8;
        slab_ = Slab(def_, uint64_t(def_.max_entries) * stride_);
    }

    struct Node {
        uint32_t slot;
        std::string key;   // the key as last written (bits past the prefix included)
    };

    // Masked data, then the prefix length big-endian: the index of a prefix.
    std::string index_of(const uint8_t* data, uint32_t plen) const {
        std::string s(reinterpret_cast<const char*>(data), def_.key_size - 4);
        for (uint32_t byte = plen / 8; byte < s.size(); ++byte) {
            const uint32_t keep = byte == plen / 8 ? plen % 8 : 0;
            s[byte] = static_cast<char>(static_cast<uint8_t>(s[byte]) & static_cast<uint8_t>(0xff00u >> keep));
        }
        for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(plen >> shift));
        return s;
    }
    static const uint8_t* data_of(const void* key) { return static_cast<const uint8_t*>(key) + 4; }
    uint8_t* value(uint32_t slot) const { return slab_.at(uint64_t(slot) * stride_); }

    // A key's prefix length bounds the match; one longer than the data matches nothing.
    void* lookup(const void* key, unsigned) override {
        const uint32_t plen = load_u32(key);
        if (plen > max_prefix_) return nullptr;
        for (const auto& [len, n] : lens_) {
            if (len > plen) continue;
            auto it = nodes_.find(index_of(data_of(key), len));
            if (it != nodes_.end()) return value(it->second.slot);
        }
        return nullptr;
    }
    int64_t put(const void* key, const void* v, uint64_t flags) {
        if (flags > kBpfExist) return errc::kEINVAL;
        const uint32_t plen = load_u32(key);
        if (plen > max_prefix_) return errc::kEINVAL;
        std::string idx = index_of(data_of(key), plen);
        auto it = nodes_.find(idx);
        if (it != nodes_.end()) {
            if (flags == kBpfNoexist) return errc::kEEXIST;
        } else {
            if (flags == kBpfExist) return errc::kENOENT;
            const uint32_t s = pool_.take();
            if (s == kNone) return errc::kENOSPC;
            it = nodes_.emplace(std::move(idx), Node{s, {}}).first;
            ++lens_[plen];
        }
        it->second.key.assign(static_cast<const char*>(key), def_.key_size);
        std::memcpy(value(it->second.slot), v, def_.value_size);
        return 0;
    }
    int64_t remove(const void* key) {
        const uint32_t plen = load_u32(key);
        if (plen > max_prefix_) return errc::kEINVAL;
        auto it = nodes_.find(index_of(data_of(key), plen));
        if (it == nodes_.end()) return errc::kENOENT;
        pool_.give(it->second.slot);
        nodes_.erase(it);
        if (--lens_[plen] == 0) lens_.erase(plen);
        return 0;
    }
    int64_t update(const void* key, const void* v, uint64_t flags, unsigned) override {
        return prog_read_only() ? errc::kEPERM : put(key, v, flags);
    }
    int64_t erase(const void* key) override { return prog_read_only() ? errc::kEPERM : remove(key); }
    int64_t get_next_key(const void* key, void* next) override {
        auto it = nodes_.begin();
        if (key && load_u32(key) <= max_prefix_) {
            auto cur = nodes_.find(index_of(data_of(key), load_u32(key)));
            if (cur != nodes_.end()) it = std::next(cur);
        }
        if (it == nodes_.end()) return errc::kENOENT;
        std::memcpy(next, it->second.key.data(), def_.key_size);
        return 0;
    }
    // bpf(2) lookups are longest-prefix matches too.
    int64_t user_lookup(const void* key, void* out) override {
        if (user_read_denied()) return errc::kEPERM;
        const void* v = lookup(key, 0);
        if (!v) return errc::kENOENT;
        std::memcpy(out, v, def_.value_size);
        return 0;
    }
    int64_t user_update(const void* key, const void* in, uint64_t flags) override {
        return user_write_denied() ? errc::kEPERM : put(key, in, flags);
    }
    int64_t user_delete(const void* key) override { return user_write_denied() ? errc::kEPERM : remove(key); }
    std::size_t count() const override { return nodes_.size(); }
    std::vector<vm::Region> regions() const override { return {slab_.region(def_, prog_perm())}; }

private:
    Slab slab_;
    uint64_t stride_ = 0;
    uint32_t max_prefix_ = 0;
    SlotPool pool_;
    std::map<std::string, Node, std::less<>> nodes_;
    std::map<uint32_t, uint32_t, std::greater<>> lens_;   // prefix length -> entries, longest first
};

// ── queue and stack ─────────────────────────────────────────────────────────
// Values are copied in and out; programs never hold pointers into them.
class QueueStackMap final : public Map {
public:
    QueueStackMap(MapDef d, MapOptions o) : Map(std::move(d), o) {}
    int64_t do_push(const void* v, uint64_t flags) {
        if ((flags & kBpfNoexist) || flags > kBpfExist) return errc::kEINVAL;
        if (items_.size() >= def_.max_entries) {
            if (!(flags & kBpfExist)) return errc::kE2BIG;
            items_.pop_front();   // BPF_EXIST makes room by dropping the oldest, queue or stack
        }
        items_.emplace_back(static_cast<const char*>(v), def_.value_size);
        return 0;
    }
    int64_t take(void* out, bool remove) {
        if (items_.empty()) return errc::kENOENT;
        const bool queue = def_.type == MapType::Queue;
        const std::string& v = queue ? items_.front() : items_.back();
        std::memcpy(out, v.data(), def_.value_size);
        if (remove) {
            if (queue) items_.pop_front();
            else items_.pop_back();
        }
        return 0;
    }
    int64_t push(const void* v, uint64_t flags) override { return prog_read_only() ? errc::kEPERM : do_push(v, flags); }
    int64_t pop(void* out) override { return prog_read_only() ? errc::kEPERM : take(out, true); }
    int64_t peek(void* out) override { return take(out, false); }
    int64_t update(const void*, const void*, uint64_t, unsigned) override { return errc::kEINVAL; }
    int64_t erase(const void*) override { return errc::kEINVAL; }
    int64_t get_next_key(const void*, void*) override { return errc::kEINVAL; }
    // bpf(2): BPF_MAP_UPDATE_ELEM pushes, BPF_MAP_LOOKUP_ELEM peeks.
    int64_t user_update(const void*, const void* v, uint64_t flags) override {
        return user_write_denied() ? errc::kEPERM : do_push(v, flags);
    }
    int64_t user_lookup(const void*, void* out) override { return user_read_denied() ? errc::kEPERM : take(out, false); }
    int64_t user_delete(const void*) override { return errc::kEINVAL; }
    std::size_t count() const override { return items_.size(); }

private:
    std::deque<std::string> items_;   // oldest first
};

// ── bloom filter ────────────────────────────────────────────────────────────
// k = map_extra & 0xf hash functions (0: 5) over a bit array of about
// max_entries * k / ln 2 bits, rounded up to a power of two as the kernel sizes it.
class BloomMap final : public Map {
public:
    BloomMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
        hashes_ = static_cast<unsigned>(def_.map_extra & 0xf);
        if (hashes_ == 0) hashes_ = 5;
        uint64_t bits = uint64_t(def_.max_entries) * hashes_ / 5 * 7;
        bits = std::min<uint64_t>(std::max<uint64_t>(std::bit_ceil(std::max<uint64_t>(bits, 1)), 64), 1ull << 31);
        words_slab_ = Slab(def_, bits / 8);   // up to 256 MiB, backed only where bits are set
        words_ = words_slab_.as<uint64_t>();
        mask_ = bits - 1;
        seed_ = (def_.flags & kBpfFZeroSeed) ? 0 : opts_.seed;
    }
    uint64_t bit(const void* v, unsigned i) const {
        return hash_bytes(v, def_.value_size, seed_ + 0x9e3779b97f4a7c15ull * (i + 1)) & mask_;
    }
    int64_t add(const void* v, uint64_t flags) {
        if (flags != kBpfAny) return errc::kEINVAL;
        for (unsigned i = 0; i < hashes_; ++i) {
            const uint64_t b = bit(v, i);
            words_[b / 64] |= 1ull << (b % 64);
        }
        ++added_;
        return 0;
    }
    int64_t test(const void* v) const {
        for (unsigned i = 0; i < hashes_; ++i) {
            const uint64_t b = bit(v, i);
            if (!(words_[b / 64] >> (b % 64) & 1)) return errc::kENOENT;
        }
        return 0;
    }
    int64_t push(const void* v, uint64_t flags) override { return prog_read_only() ? errc::kEPERM : add(v, flags); }
    int64_t peek(void* v) override { return test(v); }
    int64_t pop(void*) override { return errc::kEOPNOTSUPP; }
    int64_t update(const void*, const void*, uint64_t, unsigned) override { return errc::kEINVAL; }   // push instead
    int64_t erase(const void*) override { return errc::kEOPNOTSUPP; }
    int64_t get_next_key(const void*, void*) override { return errc::kEOPNOTSUPP; }
    int64_t user_update(const void*, const void* v, uint64_t flags) override {
        return user_write_denied() ? errc::kEPERM : add(v, flags);
    }
    int64_t user_lookup(const void*, void* v) override { return user_read_denied() ? errc::kEPERM : test(v); }
    int64_t user_delete(const void*) override { return errc::kEOPNOTSUPP; }
    std::size_t count() const override { return added_; }   // values added, duplicates included

private:
    unsigned hashes_ = 5;
    Slab words_slab_;
    uint64_t* words_ = nullptr;
    uint64_t mask_ = 63;
    uint64_t seed_ = 0;
    std::size_t added_ = 0;
};

// ── validation ──────────────────────────────────────────────────────────────
// The checks of each type's map_alloc_check / map_alloc, with the errno they give.

void check_array(const MapDef& d) {
    const bool percpu = d.type == MapType::PercpuArray;
    need_entries(d);
    need_key_size(d, 4);
    need_value(d);
    check_flags(d, kBpfFNumaNode | kBpfFMmapable | kAccessMask | kBpfFPreserveElems | kBpfFInnerMap);
    if (d.type != MapType::Array && (d.flags & (kBpfFMmapable | kBpfFInnerMap)))
        refuse(d, "EINVAL", "only plain arrays take BPF_F_MMAPABLE and BPF_F_INNER_MAP");
    if (d.type != MapType::PerfEventArray && (d.flags & kBpfFPreserveElems))
        refuse(d, "EINVAL", "only perf event arrays take BPF_F_PRESERVE_ELEMS");
    need(d, d.value_size <= uint32_t(std::numeric_limits<int32_t>::max()), "E2BIG", fmt::format("value size {} is too large", d.value_size));
    if (percpu) need(d, round8(d.value_size) <= kPcpuMinUnit, "E2BIG", fmt::format("per-CPU value size {} is larger than {}", d.value_size, kPcpuMinUnit));
    need(d, d.max_entries <= (1u << 31), "E2BIG", fmt::format("max_entries {} overflows when rounded up to a power of two", d.max_entries));
}

// prog_array, perf_event_array, cgroup_array, array_of_maps: values are file descriptors.
void check_fd_array(const MapDef& d) {
    need(d, d.value_size == 4, "EINVAL", fmt::format("value size {} is not 4 (a file descriptor)", d.value_size));
    if (d.flags & (kBpfFRdonlyProg | kBpfFWronlyProg)) refuse(d, "EINVAL", "BPF_F_RDONLY_PROG/WRONLY_PROG do not apply to fd arrays");
    check_array(d);
}

void check_hash(const MapDef& d) {
    const bool percpu = d.type == MapType::PercpuHash || d.type == MapType::LruPercpuHash;
    const bool lru = d.type == MapType::LruHash || d.type == MapType::LruPercpuHash;
    check_flags(d, kBpfFNoPrealloc | kBpfFNoCommonLru | kBpfFNumaNode | kAccessMask | kBpfFZeroSeed);
    if (lru && (d.flags & kBpfFNoPrealloc)) refuse(d, "ENOTSUPP", "LRU maps are always preallocated (BPF_F_NO_PREALLOC)");
    if (!lru && (d.flags & kBpfFNoCommonLru)) refuse(d, "EINVAL", "BPF_F_NO_COMMON_LRU needs an LRU map");
    need_entries(d);
    need(d, d.key_size > 0, "EINVAL", "key size is 0");
    need_value(d);
    need(d, d.key_size <= kMaxBpfStack, "E2BIG", fmt::format("key size {} is larger than the BPF stack ({})", d.key_size, kMaxBpfStack));
    need(d, d.value_size < kKmallocMax - kMaxBpfStack - 64, "E2BIG", fmt::format("value size {} is too large", d.value_size));
    if (percpu) need(d, round8(d.value_size) <= kPcpuMinUnit, "E2BIG", fmt::format("per-CPU value size {} is larger than {}", d.value_size, kPcpuMinUnit));
}

// devmap, devmap_hash: struct bpf_devmap_val {u32 ifindex; [int prog fd]}.
void check_devmap(const MapDef& d) {
    need_entries(d);
    need_key_size(d, 4);
    need(d, d.value_size == 4 || d.value_size == 8, "EINVAL", fmt::format("value size {} is neither 4 nor 8", d.value_size));
    check_flags(d, kBpfFNumaNode | kBpfFRdonly | kBpfFWronly);
}

void check_sockmap(const MapDef& d) {
    need_entries(d);
    if (d.type == MapType::Sockmap) need_key_size(d, 4);
    else need(d, d.key_size > 0, "EINVAL", "key size is 0");
    need(d, d.value_size == 4 || d.value_size == 8, "EINVAL", fmt::format("value size {} is neither 4 nor 8", d.value_size));
    check_flags(d, kBpfFNumaNode | kBpfFRdonly | kBpfFWronly);
}

// Validates d for its type, returning the definition as the kernel would hold it.
MapDef validate(MapDef d, const MapOptions& opts) {
    switch (d.type) {
    case MapType::Array:
    case MapType::PercpuArray: check_array(d); break;
    case MapType::ProgArray:
    case MapType::CgroupArray:
    case MapType::ArrayOfMaps: check_fd_array(d); break;
    case MapType::PerfEventArray:
        // libbpf sizes it to the CPUs when max_entries is 0; key and value are ints.
        if (d.max_entries == 0) d.max_entries = opts.ncpus;
        if (d.key_size == 0) d.key_size = 4;
        if (d.value_size == 0) d.value_size = 4;
        check_fd_array(d);
        break;
    case MapType::Devmap:
    case MapType::DevmapHash: check_devmap(d); break;
    case MapType::Cpumap:
        need_entries(d);
        need_key_size(d, 4);
        need(d, d.value_size == 4 || d.value_size == 8, "EINVAL", fmt::format("value size {} is neither 4 nor 8", d.value_size));
        check_flags(d, kBpfFNumaNode);
        need(d, d.max_entries <= kNrCpus, "E2BIG", fmt::format("max_entries {} is more than NR_CPUS ({})", d.max_entries, kNrCpus));
        break;
    case MapType::Xskmap:
        need_entries(d);
        need_key_size(d, 4);
        need(d, d.value_size == 4, "EINVAL", fmt::format("value size {} is not 4", d.value_size));
        check_flags(d, kBpfFNumaNode | kBpfFRdonly | kBpfFWronly);
        break;
    case MapType::Sockmap:
    case MapType::Sockhash: check_sockmap(d); break;
    case MapType::Hash:
    case MapType::PercpuHash:
    case MapType::LruHash:
    case MapType::LruPercpuHash: check_hash(d); break;
    case MapType::HashOfMaps:
        need(d, d.value_size == 4, "EINVAL", fmt::format("value size {} is not 4 (a file descriptor)", d.value_size));
        check_hash(d);
        break;
    case MapType::StackTrace: {
        check_flags(d, kBpfFNumaNode | kBpfFRdonly | kBpfFWronly | kBpfFStackBuildId);
        const uint32_t elem = (d.flags & kBpfFStackBuildId) ? 32 : 8;
        need_entries(d);
        need_key_size(d, 4);
        need(d, d.value_size >= elem && d.value_size % elem == 0, "EINVAL",
             fmt::format("value size {} is not a non-zero multiple of {}", d.value_size, elem));
        need(d, d.value_size / elem <= kMaxStackDepth, "EINVAL",
             fmt::format("value size {} holds more than {} frames", d.value_size, kMaxStackDepth));
        need(d, d.max_entries <= (1u << 31), "E2BIG", fmt::format("max_entries {} is too large", d.max_entries));
        break;
    }
    case MapType::LpmTrie:
        need_entries(d);
        need(d, d.flags & kBpfFNoPrealloc, "EINVAL", "LPM tries need BPF_F_NO_PREALLOC");
        check_flags(d, kBpfFNoPrealloc | kBpfFNumaNode | kAccessMask);
        need(d, d.key_size >= 5 && d.key_size <= 4 + 256, "EINVAL",
             fmt::format("key size {} is not 4 bytes of prefix length and 1 to 256 bytes of data", d.key_size));
        need(d, d.value_size >= 1 && d.value_size <= kKmallocMax - 256 - 64, "EINVAL", fmt::format("value size {} is invalid", d.value_size));
        break;
    case MapType::Queue:
    case MapType::Stack:
        need_entries(d);
        need_key_size(d, 0);
        need_value(d);
        check_flags(d, kBpfFNumaNode | kAccessMask);
        need(d, d.value_size <= kKmallocMax, "E2BIG", fmt::format("value size {} is too large", d.value_size));
        break;
    case MapType::BloomFilter:
        need_key_size(d, 0);
        need_value(d);
        need_entries(d);
        check_flags(d, kBpfFNumaNode | kBpfFZeroSeed | kAccessMask);
        need(d, (d.map_extra & ~0xfull) == 0, "EINVAL", fmt::format("map_extra {:#x} has bits past the number of hashes", d.map_extra));
        break;
    case MapType::Ringbuf: {
        check_flags(d, kBpfFNumaNode);
        need(d, d.key_size == 0 && d.value_size == 0, "EINVAL", "key and value size must be 0");
        const uint32_t n = d.max_entries;
        need(d, std::has_single_bit(n) && n % kPage == 0, "EINVAL",
             fmt::format("max_entries {} is not a power of two multiple of the page size ({})", n, kPage));
        break;
    }
    default: {
        Location loc;
        loc.section = d.section;
        throw Error(ErrorCode::Unsupported,
                    fmt::format("map '{}': type {} ({}) is not supported", d.name, to_string(d.type), static_cast<uint32_t>(d.type)), loc);
    }
    }
    return d;
}

}  // namespace

// ── the base ────────────────────────────────────────────────────────────────
Map::Map(MapDef def, MapOptions opts) : def_(std::move(def)), opts_(opts) {}
Map::~Map() = default;

void* Map::lookup(const void*, unsigned) { return nullptr; }
int64_t Map::update(const void*, const void*, uint64_t, unsigned) { return errc::kEINVAL; }
int64_t Map::erase(const void*) { return errc::kEINVAL; }
int64_t Map::push(const void*, uint64_t) { return errc::kEINVAL; }
int64_t Map::pop(void*) { return errc::kEINVAL; }
int64_t Map::peek(void*) { return errc::kEINVAL; }
int64_t Map::get_next_key(const void*, void*) { return errc::kEINVAL; }
int64_t Map::user_lookup(const void*, void*) { return errc::kEINVAL; }
int64_t Map::user_update(const void*, const void*, uint64_t) { return errc::kEINVAL; }
int64_t Map::user_delete(const void*) { return errc::kEINVAL; }
std::vector<vm::Region> Map::regions() const { return {}; }
int64_t Map::prog_at(uint32_t) const { return -1; }
bool Map::has(uint32_t) const { return false; }
Map* Map::inner_at(const void*) const { return nullptr; }

std::size_t Map::user_value_size() const {
    const MapType t = def_.type;
    if (t == MapType::PercpuArray || t == MapType::PercpuHash || t == MapType::LruPercpuHash)
        return round8(def_.value_size) * opts_.ncpus;
    return def_.value_size;
}

bool Map::prog_read_only() const { return def_.frozen || (def_.flags & kBpfFRdonlyProg); }
uint8_t Map::prog_perm() const {
    if (prog_read_only()) return vm::kRead;
    if (def_.flags & kBpfFWronlyProg) return vm::kWrite;
    return vm::kReadWrite;
}
bool Map::user_write_denied() const { return user_frozen_ || (def_.flags & kBpfFRdonly); }
bool Map::user_read_denied() const { return def_.flags & kBpfFWronly; }

// ── ring buffer ─────────────────────────────────────────────────────────────
RingbufMap::RingbufMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
    const uint64_t n = def_.max_entries;
    size_ = n;
    // The data pages twice in a row, as the kernel maps them: a record that wraps stays contiguous.
    const int fd = memfd_create("bpfsim-ringbuf", 0);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(n)) != 0) {
        if (fd >= 0) close(fd);
        refuse(def_, "ENOMEM", "cannot create the ring buffer's memory");
    }
    void* area = mmap(nullptr, 2 * n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    bool ok = area != MAP_FAILED;
    if (ok) {
        auto* a = static_cast<uint8_t*>(area);
        ok = mmap(a, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED &&
             mmap(a + n, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED;
    }
    close(fd);
    if (!ok) {
        if (area != MAP_FAILED) munmap(area, 2 * n);
        refuse(def_, "ENOMEM", "cannot map the ring buffer's memory");
    }
    data_ = static_cast<uint8_t*>(area);
}

RingbufMap::~RingbufMap() {
    if (data_) munmap(data_, 2 * size_);
}

std::vector<vm::Region> RingbufMap::regions() const {
    return {vm::Region{reinterpret_cast<uint64_t>(data_), 2 * size_, vm::kReadWrite, vm::RegionKind::MapValue, def_.name}};
}

void* RingbufMap::reserve(uint64_t size, uint64_t flags) {
    if (flags) return nullptr;
    const uint64_t mask = size_ - 1;
    const uint64_t len = round8(size + kHeader);
    if (size > std::numeric_limits<uint32_t>::max() / 4 || len > size_) {
        ++dropped_;
        return nullptr;
    }
    // Move the pending position past records committed since.
    while (pending_ < prod_) {
        uint32_t hdr_len;
        std::memcpy(&hdr_len, data_ + (pending_ & mask), 4);
        if (hdr_len & kBusy) break;
        pending_ += round8((hdr_len & ~kDiscard) + kHeader);
    }
    // The producer stays less than a whole ring ahead of the consumer and of the oldest
    // record not yet committed.
    const uint64_t new_prod = prod_ + len;
    if (new_prod - cons_ > mask || new_prod - pending_ > mask) {
        ++dropped_;
        return nullptr;
    }
    uint8_t* hdr = data_ + (prod_ & mask);
    const uint32_t hdr_len = static_cast<uint32_t>(size) | kBusy;
    const uint32_t pg_off = static_cast<uint32_t>((prod_ & mask) / kPage) + kDataPageOffset;
    std::memcpy(hdr, &hdr_len, 4);
    std::memcpy(hdr + 4, &pg_off, 4);
    prod_ = new_prod;
    return hdr + kHeader;
}

int64_t RingbufMap::commit(void* sample, bool discard) {
    auto* hdr = static_cast<uint8_t*>(sample) - kHeader;
    if (hdr < data_ || hdr >= data_ + size_ || (hdr - data_) % 8) return errc::kEINVAL;
    uint32_t len;
    std::memcpy(&len, hdr, 4);
    if (!(len & kBusy)) return errc::kEINVAL;   // not reserved, or already committed
    len &= ~kBusy;
    if (discard) len |= kDiscard;
    std::memcpy(hdr, &len, 4);
    return 0;
}

// The wakeup flags only matter to a consumer waiting in epoll; there is none here.
int64_t RingbufMap::submit(void* sample, uint64_t) { return commit(sample, false); }
int64_t RingbufMap::discard(void* sample, uint64_t) { return commit(sample, true); }

int64_t RingbufMap::output(const void* data, uint64_t size, uint64_t flags) {
    if (flags & ~(kNoWakeup | kForceWakeup)) return errc::kEINVAL;
    void* p = reserve(size, 0);
    if (!p) return errc::kEAGAIN;
    if (size) std::memcpy(p, data, size);
    return commit(p, false);
}

uint64_t RingbufMap::query(uint64_t flag) const {
    switch (flag) {
    case kAvailData: return prod_ - cons_;
    case kRingSize: return size_;
    case kConsPos: return cons_;
    case kProdPos: return prod_;
    default: return 0;
    }
}

std::vector<std::vector<uint8_t>> RingbufMap::drain() {
    std::vector<std::vector<uint8_t>> out;
    while (cons_ < prod_) {
        const uint8_t* hdr = data_ + (cons_ & (size_ - 1));
        uint32_t len;
        std::memcpy(&len, hdr, 4);
        if (len & kBusy) break;
        const uint32_t n = len & ~kDiscard;
        if (!(len & kDiscard)) out.emplace_back(hdr + kHeader, hdr + kHeader + n);
        cons_ += round8(n + kHeader);
    }
    return out;
}

// ── perf event array ────────────────────────────────────────────────────────
PerfEventArrayMap::PerfEventArrayMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
    for (uint32_t i = 0; i < def_.max_entries && i < opts_.ncpus; ++i) open_.insert(i);
}

int64_t PerfEventArrayMap::perf_output(uint64_t flags, const void* data, std::size_t size, unsigned cpu) {
    if (flags & ~(kIndexMask | kCtxLenMask)) return errc::kEINVAL;
    uint64_t index = flags & kIndexMask;
    if (index == kCurrentCpu) index = cpu;
    if (index >= def_.max_entries) return errc::kE2BIG;
    if (!open_.contains(static_cast<uint32_t>(index))) return errc::kENOENT;
    if (index != cpu) return errc::kEOPNOTSUPP;   // the slot's event belongs to another CPU
    const auto* p = static_cast<const uint8_t*>(data);
    records_.push_back({cpu, std::vector<uint8_t>(p, p + size)});
    return 0;
}

int64_t PerfEventArrayMap::get_next_key(const void* key, void* next) { return array_next_key(def_.max_entries, key, next); }

int64_t PerfEventArrayMap::user_update(const void* key, const void*, uint64_t flags) {
    if (user_write_denied()) return errc::kEPERM;
    if (flags != kBpfAny) return errc::kEINVAL;
    const uint32_t i = load_u32(key);
    if (i >= def_.max_entries) return errc::kE2BIG;
    open_.insert(i);
    return 0;
}

int64_t PerfEventArrayMap::user_delete(const void* key) {
    if (user_write_denied()) return errc::kEPERM;
    const uint32_t i = load_u32(key);
    if (i >= def_.max_entries) return errc::kE2BIG;
    if (open_.erase(i) == 0) return errc::kENOENT;
    return 0;
}

std::size_t PerfEventArrayMap::count() const { return open_.size(); }

// ── stack trace ─────────────────────────────────────────────────────────────
StackTraceMap::StackTraceMap(MapDef d, MapOptions o) : Map(std::move(d), o) {
    n_buckets_ = std::bit_ceil(def_.max_entries);
}

int64_t StackTraceMap::get_stackid(std::span<const uint64_t> ips, uint64_t flags) {
    if (ips.empty()) return errc::kEFAULT;
    const std::size_t depth = std::min<std::size_t>(ips.size(), def_.value_size / 8);
    ips = ips.first(depth);
    const uint64_t seed = (def_.flags & kBpfFZeroSeed) ? 0 : opts_.seed;
    const uint64_t hash = hash_bytes(ips.data(), ips.size_bytes(), seed);
    const uint32_t id = static_cast<uint32_t>(hash & (n_buckets_ - 1));
    auto it = stacks_.find(id);
    if (it != stacks_.end() && it->second.hash == hash) {
        if (flags & kFastStackCmp) return id;
        if (std::equal(ips.begin(), ips.end(), it->second.ips.begin(), it->second.ips.end())) return id;
    }
    if (it != stacks_.end() && !(flags & kReuseStackid)) return errc::kEEXIST;
    // Every element is preallocated: a new stack, even one replacing another, needs a free one.
    if (used_ >= def_.max_entries) return errc::kENOMEM;
    if (it == stacks_.end()) {
        it = stacks_.emplace(id, Stack{}).first;
        ++used_;
    }
    it->second.hash = hash;
    it->second.ips.assign(ips.begin(), ips.end());
    return id;
}

int64_t StackTraceMap::get_next_key(const void* key, void* next) {
    auto it = stacks_.begin();
    if (key) {
        auto cur = stacks_.find(load_u32(key));
        if (cur != stacks_.end()) it = std::next(cur);
    }
    if (it == stacks_.end()) return errc::kENOENT;
    std::memcpy(next, &it->first, 4);
    return 0;
}

int64_t StackTraceMap::user_lookup(const void* key, void* value) {
    if (user_read_denied()) return errc::kEPERM;
    auto it = stacks_.find(load_u32(key));
    if (it == stacks_.end()) return errc::kENOENT;
    std::memset(value, 0, def_.value_size);
    std::memcpy(value, it->second.ips.data(), it->second.ips.size() * 8);
    return 0;
}

int64_t StackTraceMap::user_delete(const void* key) {
    if (user_write_denied()) return errc::kEPERM;
    if (load_u32(key) >= n_buckets_) return errc::kE2BIG;
    auto it = stacks_.find(load_u32(key));
    if (it == stacks_.end()) return errc::kENOENT;
    stacks_.erase(it);
    --used_;
    return 0;
}

// ── creation ────────────────────────────────────────────────────────────────
Result<std::unique_ptr<Map>> Map::create(const MapDef& def, const MapOptions& opts) {
    return catch_error([&]() -> std::unique_ptr<Map> {
        if (opts.ncpus == 0) throw Error(ErrorCode::Internal, fmt::format("map '{}': MapOptions::ncpus is 0", def.name));
        MapDef d = validate(def, opts);
        switch (d.type) {
        case MapType::Array:
        case MapType::PercpuArray: return std::unique_ptr<Map>(new ArrayMap(std::move(d), opts));
        case MapType::ProgArray:
        case MapType::CgroupArray:
        case MapType::ArrayOfMaps:
        case MapType::Devmap:
        case MapType::Cpumap:
        case MapType::Xskmap:
        case MapType::Sockmap: return std::unique_ptr<Map>(new SlotMap(std::move(d), opts));
        case MapType::PerfEventArray: return std::unique_ptr<Map>(new PerfEventArrayMap(std::move(d), opts));
        case MapType::Hash:
        case MapType::PercpuHash:
        case MapType::LruHash:
        case MapType::LruPercpuHash:
        case MapType::HashOfMaps:
        case MapType::DevmapHash:
        case MapType::Sockhash: return std::unique_ptr<Map>(new HashMap(std::move(d), opts));
        case MapType::StackTrace: return std::unique_ptr<Map>(new StackTraceMap(std::move(d), opts));
        case MapType::LpmTrie: return std::unique_ptr<Map>(new LpmMap(std::move(d), opts));
        case MapType::Queue:
        case MapType::Stack: return std::unique_ptr<Map>(new QueueStackMap(std::move(d), opts));
        case MapType::BloomFilter: return std::unique_ptr<Map>(new BloomMap(std::move(d), opts));
        case MapType::Ringbuf: return std::unique_ptr<Map>(new RingbufMap(std::move(d), opts));
        default: throw Error(ErrorCode::Internal, fmt::format("map '{}': validated type without an implementation", d.name));
        }
    });
}

}  // namespace bpfsim::harness
