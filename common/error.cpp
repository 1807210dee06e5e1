#include "common/error.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace bpfsim {

const char* to_string(ErrorCode code) {
    switch (code) {
    case ErrorCode::Io: return "io";
    case ErrorCode::Parse: return "parse";
    case ErrorCode::InvalidInsn: return "invalid-instruction";
    case ErrorCode::InvalidElf: return "invalid-elf";
    case ErrorCode::InvalidBtf: return "invalid-btf";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::NotFound: return "not-found";
    case ErrorCode::Usage: return "usage";
    case ErrorCode::Internal: return "internal";
    }
    return "unknown";
}

std::string Location::str() const {
    std::string out = file;
    auto add = [&](const std::string& part) {
        if (!out.empty()) out += ": ";
        out += part;
    };
    if (line) {
        if (out.empty()) out = fmt::format("line {}", *line);
        else out += fmt::format(":{}", *line);
    }
    if (!section.empty()) add(fmt::format("section '{}'", section));
    if (pc) add(fmt::format("pc {}", *pc));
    if (!source.empty()) add(fmt::format("({})", source));
    return out;
}

Error io_error(const std::system_error& e) {
    Location loc;
    if (const auto* fe = dynamic_cast<const std::filesystem::filesystem_error*>(&e)) {
        loc.file = fe->path1().string();
        if (!fe->path2().empty()) return Error(ErrorCode::Io, fmt::format("{} (and '{}')", e.code().message(), fe->path2().string()), loc);
    }
    return Error(ErrorCode::Io, e.code().message(), loc);
}

std::string Error::describe() const {
    if (where_.empty()) return message_;
    return where_.str() + ": " + message_;
}

}  // namespace bpfsim
