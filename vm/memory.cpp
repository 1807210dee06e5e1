// MemoryMap: the regions a program may touch.
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace bpfsim::vm {

const char* to_string(RegionKind kind) {
    switch (kind) {
    case RegionKind::Stack: return "stack";
    case RegionKind::Ctx: return "ctx";
    case RegionKind::Packet: return "packet";
    case RegionKind::PacketMeta: return "packet_meta";
    case RegionKind::MapValue: return "map_value";
    case RegionKind::Global: return "global";
    case RegionKind::Kernel: return "kernel";
    case RegionKind::User: return "user";
    case RegionKind::Input: return "input";
    case RegionKind::Other: return "other";
    }
    return "?";
}

void MemoryMap::add(Region region) {
    if (region.size == 0) throw Error(ErrorCode::Internal, fmt::format("memory region '{}' is empty", region.name));
    if (region.start + region.size < region.start)
        throw Error(ErrorCode::Internal, fmt::format("memory region '{}' wraps around the address space", region.name));
    auto it = std::lower_bound(regions_.begin(), regions_.end(), region.start,
                               [](const Region& r, uint64_t s) { return r.start < s; });
    if (it != regions_.end() && it->start < region.end())
        throw Error(ErrorCode::Internal, fmt::format("memory region '{}' overlaps '{}'", region.name, it->name));
    if (it != regions_.begin() && std::prev(it)->end() > region.start)
        throw Error(ErrorCode::Internal, fmt::format("memory region '{}' overlaps '{}'", region.name, std::prev(it)->name));
    regions_.insert(it, std::move(region));
    hit_size_ = 0;
}

void MemoryMap::add(const void* start, uint64_t size, uint8_t perm, RegionKind kind, std::string name) {
    add(Region{reinterpret_cast<uint64_t>(start), size, perm, kind, std::move(name)});
}

bool MemoryMap::remove(uint64_t start) {
    auto it = std::find_if(regions_.begin(), regions_.end(), [&](const Region& r) { return r.start == start; });
    if (it == regions_.end()) return false;
    regions_.erase(it);
    hit_size_ = 0;
    return true;
}

void MemoryMap::clear() {
    regions_.clear();
    hit_size_ = 0;
}

bool MemoryMap::allows_slow(uint64_t addr, uint64_t size, uint8_t perm) {
    // The last region that starts at or below addr is the only candidate.
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                               [](uint64_t a, const Region& r) { return a < r.start; });
    if (it == regions_.begin()) return false;
    const Region& r = *std::prev(it);
    if (addr - r.start > r.size || r.size - (addr - r.start) < size) return false;
    if ((r.perm & perm) != perm) return false;
    hit_start_ = r.start;
    hit_size_ = r.size;
    hit_perm_ = r.perm;
    return true;
}

std::optional<Region> MemoryMap::find(uint64_t addr) const {
    if (stack_size_ && addr - stack_lo_ < stack_size_)
        return Region{stack_lo_, stack_size_, kReadWrite, RegionKind::Stack, "stack"};
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                               [](uint64_t a, const Region& r) { return a < r.start; });
    if (it == regions_.begin()) return std::nullopt;
    const Region& r = *std::prev(it);
    if (addr - r.start < r.size) return r;
    return std::nullopt;
}

std::string MemoryMap::explain(uint64_t addr, uint64_t size, uint8_t perm) const {
    const char* verb = perm & kWrite ? "write" : "read";
    std::vector<Region> all = regions_;
    if (stack_size_) all.push_back(Region{stack_lo_, stack_size_, kReadWrite, RegionKind::Stack, "stack"});
    if (auto r = find(addr)) {
        if ((r->perm & perm) != perm)
            return fmt::format("{} of {} bytes at {:#x}: region '{}' [{:#x}, {:#x}) is {}", verb, size, addr, r->name,
                               r->start, r->end(), r->perm & kWrite ? "write-only" : "read-only");
        return fmt::format("{} of {} bytes at {:#x} runs {} bytes past the end of region '{}' [{:#x}, {:#x})", verb,
                           size, addr, addr + size - r->end(), r->name, r->start, r->end());
    }
    if (all.empty()) return fmt::format("{} of {} bytes at {:#x}: no memory is mapped", verb, size, addr);
    // The nearest region, by distance from the access to the region's edge.
    const Region* best = nullptr;
    uint64_t best_d = UINT64_MAX;
    for (const auto& r : all) {
        uint64_t d = addr < r.start ? r.start - addr : addr - r.end() + 1;
        if (d < best_d) {
            best_d = d;
            best = &r;
        }
    }
    if (addr < best->start)
        return fmt::format("{} of {} bytes at {:#x} is outside every region; nearest is '{}' [{:#x}, {:#x}), {} bytes above",
                           verb, size, addr, best->name, best->start, best->end(), best->start - addr);
    return fmt::format("{} of {} bytes at {:#x} is outside every region; nearest is '{}' [{:#x}, {:#x}), {} bytes below",
                       verb, size, addr, best->name, best->start, best->end(), addr - best->end());
}

}  // namespace bpfsim::vm
