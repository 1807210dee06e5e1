// BTF parser and dumps: a blob that parses dumps as C, raw and JSON without crashing, every
// type can be named, resolved and sized (or refused with InvalidBtf), and to_bytes() parses
// back to the same types. A blob that parses is also tried as split BTF on top of itself.
#include "tests/fuzz/fuzz.hpp"

#include "btf/dump.hpp"

#include <fmt/format.h>

namespace bpfsim::fuzz {

namespace {

void exercise(const btf::Btf& b, const char* what) {
    auto guard = [&](const char* step, auto&& f) {
        try {
            f();
        } catch (const Error& e) {
            if (e.code() != ErrorCode::InvalidBtf) violation(fmt::format("{} {}: {}", what, step, e.describe()));
        }
    };
    // The C header pads structs member by member: its length grows with the sizes the types
    // declare (as bpftool's does), so only blobs whose structs are of a sane size are dumped.
    bool huge = false;
    for (uint32_t id = b.start_id(); id < b.count() && !huge; ++id) {
        const btf::Type t = b.type(id);
        huge = (t.kind() == btf::Kind::Struct || t.kind() == btf::Kind::Union) && t.size() > (1u << 20);
    }
    std::string out;
    if (!huge) guard("dump_c", [&] { btf::dump_c(b, out); });
    out.clear();
    guard("dump_raw", [&] { btf::dump_raw(b, out); });
    const std::string raw = out;
    out.clear();
    guard("dump_json", [&] { btf::dump_json(b, out); });
    for (uint32_t id = b.start_id(); id < b.count(); ++id) {
        (void)b.type_name(id);
        guard("resolve", [&] { (void)b.resolve(id); });
        guard("size_of", [&] { (void)b.size_of(id); });
        guard("type", [&] {
            const btf::Type t = b.type(id);
            if (t.kind() == btf::Kind::Struct || t.kind() == btf::Kind::Union) {
                for (uint32_t i = 0; i < t.vlen(); ++i) {
                    const btf::Member m = t.member(i);
                    if (!m.name.empty()) (void)b.member_by_name(id, m.name);
                }
            }
            if (!t.name().empty()) {
                const auto found = b.find(t.name(), t.kind());
                if (!found || *found > id) violation(fmt::format("{}: find('{}') does not find type {}", what, t.name(), id));
            }
        });
    }
    // Written out and read back: the same records.
    const std::vector<uint8_t> bytes = b.to_bytes();
    auto again = btf::Btf::parse(bytes, "again", nullptr);
    if (b.is_split()) return;   // its base is not at hand here; the split part alone may not parse
    if (!again) violation(fmt::format("{}: to_bytes() does not parse: {}", what, again.error().describe()));
    std::string raw2;
    guard("dump_raw again", [&] { btf::dump_raw(*again, raw2); });
    if (raw != raw2) violation(fmt::format("{}: to_bytes() round trip changes the raw dump", what));
}

}  // namespace

void btf(Bytes data) {
    auto b = btf::Btf::parse(data, "fuzz.btf");
    if (!b) return check_error(b.error(), "Btf::parse");
    exercise(*b, "btf");
    auto split = btf::Btf::parse(data, "split.btf", &*b);
    if (!split) return check_error(split.error(), "Btf::parse split");
    exercise(*split, "split btf");
}

}  // namespace bpfsim::fuzz

BPFSIM_FUZZ_TARGET(btf)
