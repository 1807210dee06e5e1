// bpf_trace_printk / bpf_snprintf formatting with the kernel's rules, and trace_pipe lines.
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstring>

namespace bpfsim::harness {

namespace {

// printf-style rendering of one integer conversion with optional flags and width, as the
// kernel's number(): '+' and ' ' only sign %d/%i, '-' overrides '0'.
std::string render_int(uint64_t raw, char conv, int lcount, const std::string& flags, int width) {
    // Truncate to the argument's size: %d takes an int, %ld/%lld a 64-bit long.
    const bool wide = lcount > 0;
    const bool is_signed = conv == 'd' || conv == 'i';
    std::string spec = "{:";
    bool left = flags.find('-') != std::string::npos;
    bool zero = flags.find('0') != std::string::npos && !left;
    bool plus = is_signed && flags.find('+') != std::string::npos;
    bool space = is_signed && flags.find(' ') != std::string::npos && !plus;
    if (left) spec += '<';
    else if (!zero) spec += '>';
    if (plus) spec += '+';
    else if (space) spec += ' ';
    if (zero) spec += '0';
    if (width > 0) spec += std::to_string(width);
    switch (conv) {
    case 'd':
    case 'i':
        spec += "}";
        return wide ? fmt::format(fmt::runtime(spec), static_cast<int64_t>(raw))
                    : fmt::format(fmt::runtime(spec), static_cast<int32_t>(static_cast<uint32_t>(raw)));
    case 'u':
        spec += "}";
        return wide ? fmt::format(fmt::runtime(spec), raw) : fmt::format(fmt::runtime(spec), static_cast<uint32_t>(raw));
    case 'x':
    case 'X':
        spec += conv == 'x' ? "x}" : "X}";
        return wide ? fmt::format(fmt::runtime(spec), raw) : fmt::format(fmt::runtime(spec), static_cast<uint32_t>(raw));
    }
    return {};
}

// %p %pK %px as the kernel's pointer_string(): without a width, 16 zero-padded hex digits;
// with one, that width and the flags of a number (so "%20px" is space-padded, "%5px" short).
std::string render_ptr(uint64_t v, const std::string& flags, int width) {
    return width > 0 ? render_int(v, 'x', 2, flags, width) : render_int(v, 'x', 2, flags + '0', 16);
}

// Where isspace/ispunct hold (or at the end), a string conversion may end; the kernel refuses
// "%sx" and "%pksx".
bool ends_conversion(std::string_view rest) {
    if (rest.empty()) return true;
    const unsigned char c = static_cast<unsigned char>(rest[0]);
    return std::isspace(c) || std::ispunct(c);
}

// bpf_bprintf_prepare() copies every argument into a 512-byte buffer (MAX_BPRINTF_BIN_ARGS)
// that bstr_printf() then formats from: integers 4-byte aligned, strings and pre-formatted
// addresses with their NUL, %c one byte. Strings are cut to the room left; a full buffer is -ENOSPC.
constexpr std::size_t kBinArgs = 512;

}  // namespace

Result<std::string> format_printk(std::string_view fmt_str, std::span<const uint64_t> args, const ReadString& read_str,
                                  const ReadBytes& read_bytes) {
    return catch_error([&]() -> std::string {
        std::string out;
        std::size_t argi = 0;
        std::size_t used = 0;   // of the kernel's argument buffer
        auto bad = [&](const std::string& why) -> Error { return Error(ErrorCode::Parse, "format string: " + why); };
        for (std::size_t i = 0; i < fmt_str.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(fmt_str[i]);
            if (!isascii(c) || (!isprint(c) && !isspace(c))) throw bad(fmt::format("non-printable character {:#x} at {}", unsigned(c), i));
            if (c != '%') {
                out += static_cast<char>(c);
                continue;
            }
            if (i + 1 < fmt_str.size() && fmt_str[i + 1] == '%') {
                out += '%';
                ++i;
                continue;
            }
            if (argi >= args.size()) throw bad(fmt::format("more conversions than the {} arguments given", args.size()));
            const uint64_t arg = args[argi++];
            ++i;
            // Flags "0+- " (not '#': the kernel refuses "%#x") and a width; no precision.
            std::string flags;
            while (i < fmt_str.size() && (fmt_str[i] == '0' || fmt_str[i] == '+' || fmt_str[i] == '-' || fmt_str[i] == ' '))
                flags += fmt_str[i++];
            int width = 0;
            while (i < fmt_str.size() && std::isdigit(static_cast<unsigned char>(fmt_str[i]))) width = width * 10 + (fmt_str[i++] - '0');
            if (i >= fmt_str.size()) throw bad("conversion cut short at the end");
            const char conv = fmt_str[i];
            auto pad = [&](std::string s) {
                if (static_cast<int>(s.size()) >= width) return s;
                const std::string fill(static_cast<std::size_t>(width) - s.size(), ' ');
                return flags.find('-') != std::string::npos ? s + fill : fill + s;
            };
            // The argument buffer: an integer-sized slot, or a string cut to the room left.
            auto take_int = [&](std::size_t size) {
                used = (used + 3) & ~std::size_t{3};
                if (kBinArgs - used < size) throw bad("arguments overflow the kernel's 512-byte buffer (-ENOSPC)");
                used += size;
            };
            auto take_str = [&](std::string s) {
                if (used >= kBinArgs) throw bad("arguments overflow the kernel's 512-byte buffer (-ENOSPC)");
                if (s.size() > kBinArgs - used - 1) s.resize(kBinArgs - used - 1);
                used += s.size() + 1;
                return s;
            };
            // After a pointer conversion bstr_printf() skips any letters and digits ("%pI6c", "%pxab").
            auto skip_alnum = [&] {
                while (i + 1 < fmt_str.size() && std::isalnum(static_cast<unsigned char>(fmt_str[i + 1]))) ++i;
            };
            if (conv == 'p') {
                const std::string_view rest = fmt_str.substr(i + 1);
                if (ends_conversion(rest)) {
                    take_int(8);
                    out += render_ptr(arg, flags, width);   // %p: the kernel prints a hash; bpfsim the value
                } else if (rest.starts_with("ks") || rest.starts_with("us")) {
                    i += 2;
                    if (!ends_conversion(fmt_str.substr(i + 1)))
                        throw bad(fmt::format("'%p{}' followed by '{}'", rest.substr(0, 2), fmt_str[i + 1]));
                    out += take_str(read_str(arg));   // the width is ignored
                } else if (rest[0] == 'K' || rest[0] == 'x') {
                    // %pK prints as %p with kptr_restrict 0 (this machine's setting).
                    take_int(8);
                    out += render_ptr(arg, flags, width);
                    ++i;
                    skip_alnum();
                } else if (rest[0] == 's' || rest[0] == 'S') {
                    // A symbol; bpfsim has no kallsyms, so the kernel's form for an unknown address.
                    take_int(8);
                    out += pad(fmt::format("{:#x}", arg));
                    ++i;
                    skip_alnum();
                } else if (rest[0] == 'B') {
                    out += take_str(fmt::format("{:#x}", arg));   // pre-formatted: the width is ignored
                    ++i;
                    skip_alnum();
                } else if (rest.size() >= 2 && (rest[0] == 'i' || rest[0] == 'I') && (rest[1] == '4' || rest[1] == '6')) {
                    // Pre-formatted by the kernel, so the width is ignored; an unreadable address
                    // reads as zeros. %pI4 is 1.2.3.4, %pi4 001.002.003.004, %pI6 eight 4-digit
                    // groups (never compressed: "%pI6c" prints the same), %pi6 32 hex digits.
                    const std::size_t n = rest[1] == '4' ? 4 : 16;
                    if (kBinArgs - used < n) throw bad("arguments overflow the kernel's 512-byte buffer (-ENOSPC)");
                    uint8_t b[16] = {};
                    if (!read_bytes(arg, b, n)) std::memset(b, 0, sizeof(b));
                    std::string s;
                    if (n == 4) {
                        s = rest[0] == 'I' ? fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
                                           : fmt::format("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3]);
                    } else {
                        for (std::size_t k = 0; k < 16; ++k) {
                            if (rest[0] == 'I' && k && k % 2 == 0) s += ':';
                            s += fmt::format("{:02x}", b[k]);
                        }
                    }
                    if (s.size() > kBinArgs - used - 1) s.resize(kBinArgs - used - 1);   // snprintf into the room left
                    used += s.size() + 1;
                    out += s;
                    i += 2;
                    skip_alnum();
                } else {
                    throw bad(fmt::format("unsupported conversion '%p{}'", rest[0]));
                }
                continue;
            }
            if (conv == 's') {
                if (!ends_conversion(fmt_str.substr(i + 1))) throw bad(fmt::format("'%s' followed by '{}'", fmt_str[i + 1]));
                out += pad(take_str(read_str(arg)));
                continue;
            }
            if (conv == 'c') {
                if (used >= kBinArgs) throw bad("arguments overflow the kernel's 512-byte buffer (-ENOSPC)");
                ++used;
                out += pad(std::string(1, static_cast<char>(arg & 0xff)));
                continue;
            }
            int lcount = 0;
            while (i < fmt_str.size() && fmt_str[i] == 'l' && lcount < 2) {
                ++lcount;
                ++i;
            }
            if (i >= fmt_str.size()) throw bad("conversion cut short at the end");
            const char k = fmt_str[i];
            if (k != 'd' && k != 'i' && k != 'u' && k != 'x' && k != 'X')
                throw bad(fmt::format("unsupported conversion '%{}{}'", std::string(static_cast<std::size_t>(lcount), 'l'), k));
            take_int(lcount ? 8 : 4);
            out += render_int(arg, k, lcount, flags, width);
        }
        return out;
    });
}

// The bpf_trace_printk event's print format is "%s" plus the newline every event gets, so a
// message ending in "\n" shows as its line and an empty one; the event keeps the message up
// to its first NUL (a "%c" of 0 ends it).
std::string trace_pipe_line(const TraceEvent& e) {
    const uint64_t usec = e.ns / 1000;
    const std::string_view msg(e.message.data(), std::min(e.message.size(), e.message.find('\0')));
    return fmt::format("{:>16}-{:<7} [{:03}] {} {:5}.{:06}: bpf_trace_printk: {}\n", e.comm, e.pid, e.cpu, e.flags,
                       usec / 1'000'000, usec % 1'000'000, msg);
}

}  // namespace bpfsim::harness
