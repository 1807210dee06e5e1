// Simulated kernel (and user) memory: objects laid out from a kernel's BTF.
#include "harness/harness.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cstring>
#include <fstream>

namespace bpfsim::harness {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(ErrorCode::Usage, what); }

bool is_char(const btf::Btf& b, uint32_t id) {
    const btf::Type t = b.type(b.resolve(id));
    return t.kind() == btf::Kind::Int && t.size() == 1;
}

}  // namespace

KernelMemory::KernelMemory(std::shared_ptr<const btf::Btf> btf, std::size_t capacity) : btf_(std::move(btf)), cap_(capacity) {
    for (int i = 0; i < 2; ++i) {
        void* p = ::mmap(nullptr, cap_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw Error(ErrorCode::Internal, fmt::format("cannot reserve {} bytes of simulated memory", cap_));
        space_[i].base = static_cast<uint8_t*>(p);
    }
}

KernelMemory::~KernelMemory() {
    for (auto& s : space_)
        if (s.base) ::munmap(s.base, cap_);
}

uint64_t KernelMemory::allocate(std::size_t size, std::size_t align, Space where) {
    Arena& a = space_[static_cast<int>(where)];
    align = std::max<std::size_t>(align, 8);
    const std::size_t start = (a.used + align - 1) / align * align;
    // A 16-byte gap after each allocation: reading past an object's end is not silently
    // another object's first bytes.
    if (size > cap_ || start + size + 16 > cap_)
        throw Error(ErrorCode::Usage, fmt::format("simulated {} memory is full ({} bytes)", where == Space::Kernel ? "kernel" : "user", cap_));
    a.used = start + std::max<std::size_t>(size, 1) + 16;
    return reinterpret_cast<uint64_t>(a.base + start);
}

uint32_t KernelMemory::type_id(std::string_view name) const {
    if (!btf_) fail(fmt::format("no kernel BTF to lay out '{}'", name));
    std::string_view n = name;
    btf::Kind kind = btf::Kind::Struct;
    if (n.starts_with("struct ")) n.remove_prefix(7);
    else if (n.starts_with("union ")) n.remove_prefix(6), kind = btf::Kind::Union;
    if (auto id = btf_->find(n, kind)) return *id;
    if (!name.starts_with("struct ") && !name.starts_with("union ")) {
        if (auto id = btf_->find(n, btf::Kind::Union)) return *id;
        if (auto id = btf_->find(n, btf::Kind::Typedef)) return *id;
        if (auto id = btf_->find(n, btf::Kind::Int)) return *id;
    }
    fail(fmt::format("the kernel BTF ({}) has no type '{}'", btf_->name(), name));
}

uint64_t KernelMemory::create(uint32_t type, std::size_t count) {
    const uint64_t size = btf_->size_of(type);
    uint64_t align = 8;
    if (size < 8 && size && (size & (size - 1)) == 0) align = size;
    const uint64_t addr = allocate(size * count, align, Space::Kernel);
    objects_.push_back({addr, type});
    return addr;
}

uint64_t KernelMemory::string(std::string_view s, Space where) {
    const uint64_t addr = allocate(s.size() + 1, 1, where);
    std::memcpy(reinterpret_cast<void*>(addr), s.data(), s.size());
    reinterpret_cast<char*>(addr)[s.size()] = 0;
    return addr;
}

uint64_t KernelMemory::bytes(std::span<const uint8_t> b, Space where) {
    const uint64_t addr = allocate(b.size(), 8, where);
    if (!b.empty()) std::memcpy(reinterpret_cast<void*>(addr), b.data(), b.size());
    return addr;
}

KernelMemory::Field KernelMemory::field(uint64_t addr, uint32_t type, std::string_view path, bool create_missing) {
    const btf::Btf& b = *btf_;
    Field f{addr, type, 0, 0};
    const std::string whole(path);
    std::size_t i = 0;
    bool first = true;
    while (i < path.size()) {
        // Separators: '.' and "->" both step into the member, following a pointer if the
        // current value is one (paths read as "mm.arg_start" or "mm->arg_start").
        if (!first) {
            if (path.substr(i, 2) == "->") i += 2;
            else if (path[i] == '.') i += 1;
            else if (path[i] != '[') fail(fmt::format("path '{}': expected '.', '->' or '[' at column {}", whole, i + 1));
        }
        first = false;
        uint32_t cur = b.resolve(f.type);
        btf::Type t = b.type(cur);
        if (t.kind() == btf::Kind::Ptr && i < path.size()) {
            // Step through the pointer: the pointee object, created when asked.
            uint64_t p = 0;
            std::memcpy(&p, reinterpret_cast<const void*>(f.addr), 8);
            const uint32_t pointee = t.type();
            if (!p) {
                if (!create_missing) fail(fmt::format("path '{}': '{}' is a NULL pointer", whole, whole.substr(0, i)));
                if (b.resolve(pointee) == 0) fail(fmt::format("path '{}': cannot follow a void pointer", whole));
                p = create(pointee);
                std::memcpy(reinterpret_cast<void*>(f.addr), &p, 8);
            }
            f.addr = p;
            f.type = pointee;
            cur = b.resolve(pointee);
            t = b.type(cur);
        }
        if (path[i] == '[') {
            const std::size_t close = path.find(']', i);
            if (close == std::string_view::npos) fail(fmt::format("path '{}': '[' without ']'", whole));
            const std::string idx(path.substr(i + 1, close - i - 1));
            char* end = nullptr;
            const unsigned long n = std::strtoul(idx.c_str(), &end, 10);
            if (idx.empty() || *end) fail(fmt::format("path '{}': bad index '{}'", whole, idx));
            if (t.kind() != btf::Kind::Array) fail(fmt::format("path '{}': '{}' is not an array", whole, whole.substr(0, i)));
            if (n >= t.array().nelems) fail(fmt::format("path '{}': index {} is past the array's {} elements", whole, n, t.array().nelems));
            f.type = t.array().type;
            f.addr += n * b.size_of(f.type);
            f.bit_offset = f.bit_size = 0;
            i = close + 1;
            continue;
        }
        std::size_t end = i;
        while (end < path.size() && path[end] != '.' && path[end] != '[' && path.substr(end, 2) != "->") ++end;
        const std::string_view name = path.substr(i, end - i);
        if (name.empty()) fail(fmt::format("path '{}': empty member name at column {}", whole, i + 1));
        if (t.kind() != btf::Kind::Struct && t.kind() != btf::Kind::Union)
            fail(fmt::format("path '{}': '{}' is {}, which has no member '{}'", whole, whole.substr(0, i ? i - 1 : 0), b.type_name(f.type), name));
        auto m = b.member_by_name(cur, name);
        if (!m) fail(fmt::format("path '{}': {} has no member '{}'", whole, b.type_name(cur), name));
        f.type = m->type;
        f.addr += m->bit_offset / 8;
        if (m->bitfield_size) {
            f.bit_offset = m->bit_offset % 8;
            f.bit_size = m->bitfield_size;
        } else {
            if (m->bit_offset % 8) fail(fmt::format("path '{}': member '{}' is not byte-aligned", whole, name));
            f.bit_offset = f.bit_size = 0;
        }
        i = end;
    }
    return f;
}

void KernelMemory::set(uint64_t addr, uint32_t type, std::string_view path, uint64_t value) {
    const Field f = field(addr, type, path, true);
    const btf::Btf& b = *btf_;
    if (f.bit_size) {
        // Bitfields: read-modify-write the bytes that hold the bits (little-endian).
        const std::size_t nbytes = (f.bit_offset + f.bit_size + 7) / 8;
        uint64_t word = 0;
        unsigned char buf[16] = {};
        std::memcpy(buf, reinterpret_cast<const void*>(f.addr), nbytes);
        std::memcpy(&word, buf, std::min<std::size_t>(nbytes, 8));
        const uint64_t mask = (f.bit_size == 64 ? ~0ull : ((1ull << f.bit_size) - 1)) << f.bit_offset;
        word = (word & ~mask) | ((value << f.bit_offset) & mask);
        std::memcpy(buf, &word, std::min<std::size_t>(nbytes, 8));
        std::memcpy(reinterpret_cast<void*>(f.addr), buf, nbytes);
        return;
    }
    const btf::Type t = b.type(b.resolve(f.type));
    switch (t.kind()) {
    case btf::Kind::Int:
    case btf::Kind::Enum:
    case btf::Kind::Enum64:
    case btf::Kind::Ptr: {
        const uint64_t size = b.size_of(f.type);
        if (size > 8) fail(fmt::format("path '{}': {} is {} bytes; set it member by member", path, b.type_name(f.type), size));
        if (size < 8 && value >> (size * 8) && (value >> (size * 8)) != (~0ull >> (size * 8)))
            fail(fmt::format("path '{}': {} does not fit in {} ({} bytes)", path, value, b.type_name(f.type), size));
        std::memcpy(reinterpret_cast<void*>(f.addr), &value, size);
        return;
    }
    default: fail(fmt::format("path '{}': {} is not a number or a pointer", path, b.type_name(f.type)));
    }
}

void KernelMemory::set_string(uint64_t addr, uint32_t type, std::string_view path, std::string_view s, Space where) {
    const Field f = field(addr, type, path, true);
    const btf::Btf& b = *btf_;
    const btf::Type t = b.type(b.resolve(f.type));
    if (t.kind() == btf::Kind::Array && is_char(b, t.array().type)) {
        // char comm[16]: copied and truncated to leave a NUL, as the kernel's strscpy does.
        const uint32_t n = t.array().nelems;
        if (n == 0) fail(fmt::format("path '{}': a zero-length array", path));
        std::memset(reinterpret_cast<void*>(f.addr), 0, n);
        std::memcpy(reinterpret_cast<void*>(f.addr), s.data(), std::min<std::size_t>(s.size(), n - 1));
        return;
    }
    if (t.kind() == btf::Kind::Ptr && is_char(b, t.type())) {
        const uint64_t p = string(s, where);
        std::memcpy(reinterpret_cast<void*>(f.addr), &p, 8);
        return;
    }
    fail(fmt::format("path '{}': {} is not a char array or a char pointer", path, b.type_name(f.type)));
}

uint64_t KernelMemory::get(uint64_t addr, uint32_t type, std::string_view path) const {
    const Field f = const_cast<KernelMemory*>(this)->field(addr, type, path, false);
    const btf::Btf& b = *btf_;
    if (f.bit_size) {
        const std::size_t nbytes = (f.bit_offset + f.bit_size + 7) / 8;
        unsigned char buf[16] = {};
        std::memcpy(buf, reinterpret_cast<const void*>(f.addr), nbytes);
        uint64_t word = 0;
        std::memcpy(&word, buf, std::min<std::size_t>(nbytes, 8));
        return (word >> f.bit_offset) & (f.bit_size == 64 ? ~0ull : ((1ull << f.bit_size) - 1));
    }
    const uint64_t size = b.size_of(f.type);
    if (size > 8) fail(fmt::format("path '{}': {} is {} bytes, not a number", path, b.type_name(f.type), size));
    uint64_t v = 0;
    std::memcpy(&v, reinterpret_cast<const void*>(f.addr), size);
    return v;
}

std::string KernelMemory::get_string(uint64_t addr, uint32_t type, std::string_view path) const {
    const Field f = const_cast<KernelMemory*>(this)->field(addr, type, path, false);
    const btf::Btf& b = *btf_;
    const btf::Type t = b.type(b.resolve(f.type));
    const char* p = nullptr;
    std::size_t max = 4096;
    if (t.kind() == btf::Kind::Array) {
        p = reinterpret_cast<const char*>(f.addr);
        max = t.array().nelems;
    } else if (t.kind() == btf::Kind::Ptr) {
        uint64_t v = 0;
        std::memcpy(&v, reinterpret_cast<const void*>(f.addr), 8);
        if (!v || !contains(v, 1)) return {};
        p = reinterpret_cast<const char*>(v);
    } else {
        fail(fmt::format("path '{}': {} is not a string", path, b.type_name(f.type)));
    }
    return std::string(p, strnlen(p, max));
}

bool KernelMemory::contains(uint64_t addr, std::size_t n, std::optional<Space> where) const {
    for (int i = 0; i < 2; ++i) {
        if (where && static_cast<int>(*where) != i) continue;
        const uint64_t b = reinterpret_cast<uint64_t>(space_[i].base);
        if (addr >= b && addr + n >= addr && addr + n <= b + space_[i].used) return true;
    }
    return false;
}

std::vector<vm::Region> KernelMemory::regions() const {
    std::vector<vm::Region> out;
    for (int i = 0; i < 2; ++i) {
        if (!space_[i].used) continue;
        vm::Region r;
        r.start = reinterpret_cast<uint64_t>(space_[i].base);
        r.size = space_[i].used;
        r.perm = vm::kRead;   // programs read kernel memory; writes go through helpers
        r.kind = i == 0 ? vm::RegionKind::Kernel : vm::RegionKind::User;
        r.name = i == 0 ? "kernel" : "user";
        out.push_back(r);
    }
    return out;
}

Result<std::shared_ptr<const btf::Btf>> load_kernel_btf(const std::filesystem::path& path) {
    return catch_error([&]() -> std::shared_ptr<const btf::Btf> {
        std::ifstream f(path, std::ios::binary);
        Location loc;
        loc.file = path.string();
        if (!f) throw Error(ErrorCode::Io, fmt::format("cannot open the BTF file: {}", std::strerror(errno)), loc);
        char magic[4] = {};
        if (!f.read(magic, 4)) {
            if (f.eof()) throw Error(ErrorCode::InvalidBtf, fmt::format("not a BTF file: {} bytes long", f.gcount()), loc);
            throw Error(ErrorCode::Io, fmt::format("cannot read the BTF file: {}", std::strerror(errno)), loc);
        }
        if (std::memcmp(magic, "\x7f" "ELF", 4) == 0) {   // an object with a .BTF section
            auto elf = ElfFile::open(path);
            if (!elf) throw elf.error();
            const ElfSection* s = elf->section(".BTF");
            if (!s || s->data.empty())
                throw Error(ErrorCode::InvalidBtf, "ELF file has no .BTF section to use as the kernel's BTF", loc);
            auto b = btf::Btf::parse(s->data, path.string());
            if (!b) throw b.error();
            return std::make_shared<const btf::Btf>(std::move(b.value()));
        }
        auto b = btf::Btf::load_file(path);
        if (!b) throw b.error();
        return std::make_shared<const btf::Btf>(std::move(b.value()));
    });
}

}  // namespace bpfsim::harness
