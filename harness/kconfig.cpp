// The `.kconfig` map's value: `extern ... __kconfig` variables filled from a kernel
// configuration, with libbpf's conversion rules (y/m/n, numbers, quoted strings).
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace bpfsim::harness {
namespace {

[[noreturn]] void refuse(const Object& obj, const KconfigVar& v, const std::string& why) {
    Location loc;
    loc.file = obj.path();
    loc.section = ".kconfig";
    throw Error(ErrorCode::Unsupported, fmt::format("extern (kcfg) '{}': {}", v.name, why), loc);
}

void put(std::vector<uint8_t>& out, const KconfigVar& v, uint64_t x) {
    std::memcpy(out.data() + v.offset, &x, v.size);   // little-endian: the low bytes
}

void set_value(const Object& obj, const KconfigVar& v, const std::string& text, std::vector<uint8_t>& out) {
    using K = KconfigVar::Kind;
    if (text == "y" || text == "m" || text == "n") {
        const char c = text[0];
        switch (v.kind) {
        case K::Bool:
            if (c == 'm') refuse(obj, v, "value 'm' for a bool");
            put(out, v, c == 'y');
            return;
        case K::Tristate: put(out, v, c == 'y' ? 1 : c == 'm' ? 2 : 0); return;   // TRI_YES, TRI_MODULE, TRI_NO
        case K::Char: put(out, v, static_cast<uint8_t>(c)); return;
        default: refuse(obj, v, fmt::format("value '{}' for a {}", text, v.kind == K::Int ? "number" : "string"));
        }
    }
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
        if (v.kind != K::CharArray) refuse(obj, v, fmt::format("string value {} for a non-string variable", text));
        const std::string s = text.substr(1, text.size() - 2);
        // libbpf copies what fits and always terminates the string.
        const std::size_t n = std::min<std::size_t>(s.size(), v.size - 1);
        std::memcpy(out.data() + v.offset, s.data(), n);
        out[v.offset + n] = 0;
        return;
    }
    if (v.kind != K::Int) refuse(obj, v, fmt::format("value '{}' is not valid for this variable's type", text));
    const auto parsed = parse_integer(text);
    if (!parsed) refuse(obj, v, fmt::format("value '{}' is not a number", text));
    const bool neg = text[0] == '-';
    const uint64_t x = *parsed;
    if (v.size < 8) {
        const unsigned bits = v.size * 8;
        const bool fits = v.is_signed ? (static_cast<int64_t>(x) >= -(int64_t(1) << (bits - 1)) && static_cast<int64_t>(x) < (int64_t(1) << (bits - 1)))
                                      : (!neg && x < (uint64_t(1) << bits));
        if (!fits) refuse(obj, v, fmt::format("value {} does not fit in {} bytes", text, v.size));
    }
    put(out, v, x);
}

}  // namespace

Result<std::vector<uint8_t>> kconfig_image(const Object& obj, const std::map<std::string, std::string>& config, uint32_t kernel_version) {
    return catch_error([&]() -> std::vector<uint8_t> {
        std::size_t size = 0;
        for (const auto& d : obj.maps())
            if (d.origin == MapDef::Origin::Kconfig) size = d.value_size;
        std::vector<uint8_t> out(size, 0);
        for (const KconfigVar& v : obj.kconfig()) {
            if (auto it = config.find(v.name); it != config.end()) {
                set_value(obj, v, it->second, out);
            } else if (v.name == "LINUX_KERNEL_VERSION") {
                if (v.kind != KconfigVar::Kind::Int) refuse(obj, v, "LINUX_KERNEL_VERSION must be an integer");
                put(out, v, kernel_version);
            } else if (v.name == "LINUX_HAS_BPF_COOKIE" || v.name == "LINUX_HAS_SYSCALL_WRAPPER") {
                set_value(obj, v, v.kind == KconfigVar::Kind::Int ? "1" : "y", out);   // true of 6.18
            } else if (!v.weak) {
                refuse(obj, v, "no value in the world's kernel configuration (give one, or declare it __weak)");
            }
        }
        return out;
    });
}

}  // namespace bpfsim::harness
