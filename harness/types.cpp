// Names and lookups for the tables in harness/types.def.
#include "harness/harness.hpp"

#include <fmt/format.h>

namespace bpfsim::harness {

namespace {

enum class Match : uint8_t { Exact, Slash, Prefix };

struct SectionRow {
    std::string_view pattern;
    Match match;
    ProgType type;
};

constexpr SectionRow kSections[] = {
#define SECTION(PATTERN, MATCH, TYPE) {PATTERN, Match::MATCH, ProgType::TYPE},
#include "harness/types.def"
#undef SECTION
};

bool matches(const SectionRow& row, std::string_view s) {
    switch (row.match) {
    case Match::Exact: return s == row.pattern;
    case Match::Slash: return s == row.pattern || (s.starts_with(row.pattern) && s.size() > row.pattern.size() && s[row.pattern.size()] == '/');
    case Match::Prefix: return s.starts_with(row.pattern);
    }
    return false;
}

}  // namespace

std::string_view to_string(ProgType t) {
    switch (t) {
#define PROG_TYPE(ID, VALUE, NAME, CTX) case ProgType::ID: return NAME;
#include "harness/types.def"
#undef PROG_TYPE
    }
    return "unknown";
}

std::string_view to_string(MapType t) {
    switch (t) {
#define MAP_TYPE(ID, VALUE, NAME) case MapType::ID: return NAME;
#include "harness/types.def"
#undef MAP_TYPE
    }
    return "unknown";
}

CtxKind ctx_kind(ProgType t) {
    switch (t) {
#define PROG_TYPE(ID, VALUE, NAME, CTX) case ProgType::ID: return CtxKind::CTX;
#include "harness/types.def"
#undef PROG_TYPE
    }
    return CtxKind::None;
}

ProgType prog_type_for_section(std::string_view section) {
    for (const auto& row : kSections)
        if (matches(row, section)) return row.type;
    return ProgType::Unspec;
}

}  // namespace bpfsim::harness
