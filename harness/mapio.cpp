// Map contents to and from JSON: bpftool's `map dump -j` shape, and --map-init files.
#include "harness/harness.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bpfsim::harness {
namespace {

using json = nlohmann::json;
using Bytes = std::vector<uint8_t>;

bool is_percpu(MapType t) { return t == MapType::PercpuArray || t == MapType::PercpuHash || t == MapType::LruPercpuHash; }

json byte_array(const uint8_t* p, std::size_t n) {
    json a = json::array();
    for (std::size_t i = 0; i < n; ++i) a.push_back(fmt::format("{:#04x}", p[i]));
    return a;
}

// A key or value: ["0x01", ...] (bpftool), "01 00 00 00" (hex), or a number (little-endian).
Bytes parse_bytes(const json& j, std::size_t size, const std::string& what) {
    Bytes out;
    if (j.is_array()) {
        for (const auto& e : j) {
            if (e.is_number_unsigned() && e.get<uint64_t>() < 256) {
                out.push_back(static_cast<uint8_t>(e.get<uint64_t>()));
                continue;
            }
            if (!e.is_string()) throw Error(ErrorCode::Parse, fmt::format("{}: array elements must be bytes (\"0x1f\" or 31)", what));
            auto b = parse_hex(e.get<std::string>(), what);
            if (!b) throw b.error();
            if (b->size() != 1) throw Error(ErrorCode::Parse, fmt::format("{}: '{}' is not one byte", what, e.get<std::string>()));
            out.push_back((*b)[0]);
        }
    } else if (j.is_string()) {
        auto b = parse_hex(j.get<std::string>(), what);
        if (!b) throw b.error();
        out = std::move(b.value());
    } else if (j.is_number_integer()) {
        const uint64_t v = j.is_number_unsigned() ? j.get<uint64_t>() : static_cast<uint64_t>(j.get<int64_t>());
        if (size < 8 && size && (j.is_number_unsigned() ? v >> (size * 8) != 0 : false))
            throw Error(ErrorCode::Parse, fmt::format("{}: {} does not fit in {} bytes", what, v, size));
        out.assign(size, 0);
        std::memcpy(out.data(), &v, std::min<std::size_t>(size, 8));
    } else {
        throw Error(ErrorCode::Parse, fmt::format("{}: give bytes as [\"0x01\", ...], a hex string or a number", what));
    }
    if (out.size() != size) throw Error(ErrorCode::Parse, fmt::format("{}: {} bytes, but the map's size is {}", what, out.size(), size));
    return out;
}

}  // namespace

std::string map_dump_json(const MapDef& def, const std::vector<std::pair<Bytes, Bytes>>& entries, unsigned ncpus) {
    json out = json::array();
    const bool percpu = is_percpu(def.type);
    const std::size_t stride = (def.value_size + 7) / 8 * 8;
    for (const auto& [k, v] : entries) {
        json e;
        e["key"] = byte_array(k.data(), k.size());
        if (percpu) {
            json vals = json::array();
            for (unsigned c = 0; c < ncpus && (c + 1) * stride <= v.size(); ++c)
                vals.push_back({{"cpu", c}, {"value", byte_array(v.data() + c * stride, def.value_size)}});
            e["values"] = std::move(vals);
        } else {
            e["value"] = byte_array(v.data(), v.size());
        }
        out.push_back(std::move(e));
    }
    return out.dump();
}

Result<std::size_t> load_map_init(World& w, const std::filesystem::path& file) {
    return catch_error([&]() -> std::size_t {
        Location loc;
        loc.file = file.string();
        std::ifstream in(file);
        if (!in) throw Error(ErrorCode::Io, fmt::format("cannot open the map-init file: {}", std::strerror(errno)), loc);
        json doc;
        try {
            doc = json::parse(in);
        } catch (const json::parse_error& e) {
            throw Error(ErrorCode::Parse, fmt::format("not valid JSON: {}", e.what()), loc);
        }
        if (!doc.is_object()) throw Error(ErrorCode::Parse, "expected an object: {\"MAP\": [{\"key\": ..., \"value\": ...}, ...]}", loc);
        std::size_t n = 0;
        const unsigned ncpus = w.options().ncpus;
        for (const auto& [name, list] : doc.items()) {
            Map* m = w.map(name);
            if (!m) {
                std::string known;
                for (const auto& d : w.object().maps()) known += (known.empty() ? "" : ", ") + d.name;
                throw Error(ErrorCode::NotFound, fmt::format("no map '{}' in {} (maps: {})", name, w.object().path(), known), loc);
            }
            const MapDef& def = m->def();
            if (!list.is_array()) throw Error(ErrorCode::Parse, fmt::format("map '{}': expected a list of entries", name), loc);
            const bool keyless = def.type == MapType::Queue || def.type == MapType::Stack || def.type == MapType::BloomFilter;
            for (std::size_t i = 0; i < list.size(); ++i) {
                const json& e = list[i];
                const std::string what = fmt::format("{}: map '{}' entry {}", file.string(), name, i);
                if (!e.is_object()) throw Error(ErrorCode::Parse, what + ": expected {\"key\": ..., \"value\": ...}");
                Bytes key;
                if (!keyless) {
                    if (!e.contains("key")) throw Error(ErrorCode::Parse, what + ": no \"key\"");
                    key = parse_bytes(e["key"], def.key_size, what + " key");
                }
                Bytes value(m->user_value_size(), 0);
                if (e.contains("values")) {
                    if (!is_percpu(def.type)) throw Error(ErrorCode::Parse, what + ": \"values\" (per CPU) on a map that is not per-CPU");
                    const std::size_t stride = (def.value_size + 7) / 8 * 8;
                    for (const auto& cv : e["values"]) {
                        if (!cv.is_object() || !cv.contains("cpu") || !cv.contains("value") || !cv["cpu"].is_number_unsigned())
                            throw Error(ErrorCode::Parse, what + ": per-CPU values are {\"cpu\": N, \"value\": ...}");
                        const auto cpu = cv["cpu"].get<uint64_t>();
                        if (cpu >= ncpus) throw Error(ErrorCode::Parse, fmt::format("{}: cpu {} but the world has {} CPU(s)", what, cpu, ncpus));
                        Bytes v = parse_bytes(cv["value"], def.value_size, what + " value");
                        std::memcpy(value.data() + cpu * stride, v.data(), v.size());
                    }
                } else if (e.contains("value")) {
                    Bytes v = parse_bytes(e["value"], def.value_size, what + " value");
                    if (is_percpu(def.type)) {   // the same value on every CPU
                        const std::size_t stride = (def.value_size + 7) / 8 * 8;
                        for (unsigned c = 0; c < ncpus; ++c) std::memcpy(value.data() + c * stride, v.data(), v.size());
                    } else {
                        std::memcpy(value.data(), v.data(), std::min(v.size(), value.size()));
                    }
                } else {
                    throw Error(ErrorCode::Parse, what + ": no \"value\"");
                }
                const int64_t rc = keyless ? m->push(value.data(), 0) : m->user_update(key.data(), value.data(), 0);
                if (rc < 0) throw Error(ErrorCode::Usage, fmt::format("{}: the map refused the entry (error {})", what, rc));
                ++n;
            }
        }
        return n;
    });
}

}  // namespace bpfsim::harness
