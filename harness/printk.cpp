// bpf_trace_printk / bpf_snprintf formatting with the kernel's rules, and trace_pipe lines.
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <cctype>

namespace bpfsim::harness {

namespace {

// printf-style rendering of one integer conversion with optional flags and width.
std::string render_int(uint64_t raw, char conv, int lcount, const std::string& flags, int width) {
    // Truncate to the argument's size: %d takes an int, %ld/%lld a 64-bit long.
    const bool wide = lcount > 0;
    std::string spec = "{:";
    bool left = flags.find('-') != std::string::npos;
    bool zero = flags.find('0') != std::string::npos && !left;
    bool plus = flags.find('+') != std::string::npos;
    bool space = flags.find(' ') != std::string::npos && !plus;
    if (left) spec += '<';
    else if (!zero) spec += '>';
    if (plus) spec += '+';
    else if (space) spec += ' ';
    if ((conv == 'x' || conv == 'X') && flags.find('#') != std::string::npos) spec += '#';
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

}  // namespace

Result<std::string> format_printk(std::string_view fmt_str, std::span<const uint64_t> args, const ReadString& read_str,
                                  const ReadBytes& read_bytes) {
    return catch_error([&]() -> std::string {
        std::string out;
        std::size_t argi = 0;
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
            std::string flags;
            while (i < fmt_str.size() && (fmt_str[i] == '0' || fmt_str[i] == '+' || fmt_str[i] == '-' || fmt_str[i] == ' ' || fmt_str[i] == '#'))
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
            if (conv == 'p') {
                const std::string_view rest = fmt_str.substr(i + 1);
                if (rest.starts_with("i4") || rest.starts_with("I4")) {
                    uint8_t b[4];
                    if (!read_bytes(arg, b, 4)) out += pad("(invalid)");   // unreadable address
                    else out += pad(fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]));
                    i += 2;
                } else if (rest.starts_with("i6") || rest.starts_with("I6")) {
                    uint8_t b[16];
                    const bool compact = rest[0] == 'I';
                    if (!read_bytes(arg, b, 16)) out += pad("(invalid)");
                    else {
                        std::string s;
                        for (int k = 0; k < 8; ++k) {
                            if (k) s += ':';
                            s += compact ? fmt::format("{:x}", (b[2 * k] << 8) | b[2 * k + 1])
                                         : fmt::format("{:02x}{:02x}", b[2 * k], b[2 * k + 1]);
                        }
                        out += pad(s);
                    }
                    i += 2;
                } else if (rest.starts_with("ks") || rest.starts_with("us")) {
                    out += pad(read_str(arg));
                    i += 2;
                } else if (rest.starts_with("K") || rest.starts_with("x") || rest.starts_with("B") ||
                           rest.starts_with("S") || rest.starts_with("s")) {
                    // %pK hides pointers from unprivileged readers; the others print the address.
                    out += pad(rest[0] == 'K' ? std::string("0000000000000000") : fmt::format("{:016x}", arg));
                    ++i;
                } else {
                    out += pad(fmt::format("{:016x}", arg));   // %p: the hashed pointer; we print the value
                }
                continue;
            }
            if (conv == 's') {
                out += pad(read_str(arg));
                continue;
            }
            if (conv == 'c') {
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
            out += render_int(arg, k, lcount, flags, width);
        }
        return out;
    });
}

std::string trace_pipe_line(const TraceEvent& e) {
    const uint64_t usec = e.ns / 1000;
    return fmt::format("{:>16}-{:<7} [{:03}] {} {:5}.{:06}: bpf_trace_printk: {}", e.comm, e.pid, e.cpu, e.flags,
                       usec / 1'000'000, usec % 1'000'000, e.message);
}

}  // namespace bpfsim::harness
