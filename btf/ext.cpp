// .BTF.ext: per-section func_info, line_info and CO-RE relocation records of an object.
//
// Layout: a header {magic 0xeB9F, version 1, flags, hdr_len, func_info_off/len,
// line_info_off/len, and, when hdr_len reaches 32, core_relo_off/len}, offsets counted
// from the end of the header. Each block starts with its record size, then repeats
// {section name offset in .BTF strings, record count, records}. In an object, insn_off
// is a byte offset into the section; we turn it into an instruction index.
#include "btf/btf.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace bpfsim::btf {

namespace {

constexpr uint16_t kMagic = 0xeb9f;
constexpr uint32_t kHeaderMin = 24;    // up to and including line_info_len
constexpr uint32_t kHeaderCore = 32;   // with core_relo_off/len
constexpr uint32_t kFuncInfoSize = 8, kLineInfoSize = 16, kCoreReloSize = 16;
constexpr uint32_t kMaxReloKind = static_cast<uint32_t>(CoreReloKind::TypeMatches);

class ExtParser {
public:
    ExtParser(std::span<const uint8_t> data, const Btf& btf, std::string_view file) : d_(data), btf_(btf), file_(file) {}

    Ext run() {
        if (d_.size() < 8) fail(0, fmt::format("{} bytes is shorter than the .BTF.ext header", d_.size()));
        uint16_t magic;
        std::memcpy(&magic, d_.data(), 2);
        swap_ = magic == __builtin_bswap16(kMagic);
        if (magic != kMagic && !swap_) fail(0, fmt::format("bad magic {:02x} {:02x} (expected 0xeb9f in either byte order)", d_[0], d_[1]));
        if (d_[2] != 1) fail(2, fmt::format("version {} is not 1", d_[2]));
        if (d_[3] != 0) fail(3, fmt::format("flags {:#x} are not 0", d_[3]));
        hdr_len_ = u32(4);
        if (hdr_len_ < kHeaderMin || hdr_len_ > d_.size())
            fail(4, fmt::format("header length {} is outside {}..{} (the data size)", hdr_len_, kHeaderMin, d_.size()));

        const Block fi = block(8, "func_info"), li = block(16, "line_info");
        const Block cr = hdr_len_ >= kHeaderCore ? block(24, "core_relo") : Block{0, 0};

        walk(fi, "func_info", kFuncInfoSize, [&](ExtSection& s, std::size_t at) {
            const uint32_t tid = u32(at + 4);
            if (tid == 0 || tid >= btf_.count() || btf_.type(tid).kind() != Kind::Func)
                fail(at, fmt::format("{}type {} is not a FUNC", where_, tid));
            s.funcs.push_back({insn(at), tid});
        });
        walk(li, "line_info", kLineInfoSize, [&](ExtSection& s, std::size_t at) {
            const uint32_t line_col = u32(at + 12);
            s.lines.push_back({insn(at), std::string(string(at + 4, "file name")), std::string(string(at + 8, "source line")),
                               line_col >> 10, line_col & 0x3ff});
        });
        walk(cr, "core_relo", kCoreReloSize, [&](ExtSection& s, std::size_t at) {
            const uint32_t tid = u32(at + 4), kind = u32(at + 12);
            if (tid >= btf_.count()) fail(at, fmt::format("{}type {} does not exist (the last is {})", where_, tid, btf_.count() - 1));
            const std::string_view access = string(at + 8, "access string");
            if (access.empty()) fail(at, fmt::format("{}the access string is empty", where_));
            if (kind > kMaxReloKind) fail(at, fmt::format("{}relocation kind {} is unknown", where_, kind));
            s.relos.push_back({insn(at), tid, std::string(access), static_cast<CoreReloKind>(kind)});
        });
        return std::move(ext_);
    }

private:
    struct Block {
        std::size_t start, len;
    };

    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        Location loc;
        loc.file = std::string(file_);
        loc.section = ".BTF.ext";
        throw Error(ErrorCode::InvalidBtf, fmt::format("at byte {:#x}: {}", at, what), loc);
    }

    uint32_t u32(std::size_t at) const {
        uint32_t v;
        std::memcpy(&v, d_.data() + at, 4);
        return swap_ ? __builtin_bswap32(v) : v;
    }

    Block block(std::size_t field, const char* what) const {
        const uint32_t off = u32(field), len = u32(field + 4);
        if (uint64_t(hdr_len_) + off + len > d_.size())
            fail(field, fmt::format("{} block [{}, +{}) runs past the end ({} bytes after the header)", what, off, len, d_.size() - hdr_len_));
        if ((hdr_len_ + off) % 4) fail(field, fmt::format("{} block at {} is not 4-byte aligned", what, hdr_len_ + off));
        return {hdr_len_ + std::size_t(off), len};
    }

    // A string of the .BTF string table named by the word at `at`.
    std::string_view string(std::size_t at, const char* what) const {
        const uint32_t off = u32(at);
        if (off >= btf_.strings_end()) fail(at, fmt::format("{}{} offset {} is outside the BTF strings ({} bytes)", where_, what, off, btf_.strings_end()));
        return btf_.str(off);
    }

    // The instruction index of the record at `at` (insn_off is in bytes).
    std::size_t insn(std::size_t at) const {
        const uint32_t off = u32(at);
        if (off % 8) fail(at, fmt::format("{}instruction offset {} is not a multiple of 8", where_, off));
        return off / 8;
    }

    ExtSection& section(std::string_view name) {
        for (auto& s : ext_.sections)
            if (s.name == name) return s;
        ext_.sections.push_back({std::string(name), {}, {}, {}});
        return ext_.sections.back();
    }

    template <class F>
    void walk(const Block& b, const char* what, uint32_t min_rec, F&& per_record) {
        if (b.len == 0) return;
        if (b.len < 4) fail(b.start, fmt::format("{} block of {} bytes has no record size", what, b.len));
        const uint32_t rec = u32(b.start);
        if (rec < min_rec || rec % 4) fail(b.start, fmt::format("{} record size {} is invalid (a multiple of 4, at least {})", what, rec, min_rec));
        const std::size_t end = b.start + b.len;
        std::size_t at = b.start + 4;
        while (at < end) {
            where_.clear();
            if (end - at < 8) fail(at, fmt::format("{}: a section header needs 8 bytes, {} remain in the block", what, end - at));
            const std::string_view name = string(at, fmt::format("{} section name", what).c_str());
            if (name.empty()) fail(at, fmt::format("{} section name is empty", what));
            const uint32_t n = u32(at + 4);
            if (n == 0) fail(at, fmt::format("{} for section '{}' has no records", what, name));
            if (uint64_t(n) * rec > end - at - 8)
                fail(at, fmt::format("{} for section '{}' claims {} records of {} bytes, {} bytes remain in the block", what, name, n, rec,
                                     end - at - 8));
            ExtSection& s = section(name);
            if (std::string_view(what) == "core_relo" && std::find(ext_.core_relo_order.begin(), ext_.core_relo_order.end(), name) == ext_.core_relo_order.end())
                ext_.core_relo_order.emplace_back(name);
            at += 8;
            for (uint32_t i = 0; i < n; ++i, at += rec) {
                where_ = fmt::format("{} for section '{}', record {}: ", what, name, i);
                per_record(s, at);
            }
        }
        where_.clear();
    }

    std::span<const uint8_t> d_;
    const Btf& btf_;
    std::string_view file_;
    bool swap_ = false;
    uint32_t hdr_len_ = 0;
    std::string where_;   // "line_info for section 'xdp', record 3: ", prefixed to record errors
    Ext ext_;
};

}  // namespace

std::string_view to_string(CoreReloKind k) {
    static constexpr std::string_view names[] = {"field_byte_offset", "field_byte_size", "field_exists",  "field_signed",
                                                 "field_lshift_u64",  "field_rshift_u64", "type_id_local", "type_id_target",
                                                 "type_exists",       "type_size",        "enumval_exists", "enumval_value",
                                                 "type_matches"};
    const auto i = static_cast<std::size_t>(k);
    return i < std::size(names) ? names[i] : "unknown";
}

const ExtSection* Ext::find(std::string_view section) const {
    for (const auto& s : sections)
        if (s.name == section) return &s;
    return nullptr;
}

Result<Ext> parse_ext(std::span<const uint8_t> data, const Btf& btf, std::string_view file) {
    return catch_error([&]() -> Ext { return ExtParser(data, btf, file).run(); });
}

}  // namespace bpfsim::btf
