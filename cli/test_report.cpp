// `bpfsim test` reports: human lines, TAP 13, JUnit XML, JSON, and the merge of shards.
#include "cli/test_report.hpp"

#include "common/error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <tuple>

namespace bpfsim::testrun {
namespace fs = std::filesystem;
namespace {

// Lines of a message; "" gives one empty line.
std::vector<std::string_view> lines_of(std::string_view s) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto nl = s.find('\n');
        out.push_back(s.substr(0, nl));
        if (nl == std::string_view::npos) return out;
        s.remove_prefix(nl + 1);
    }
}

std::string indent(std::string_view text, std::string_view by) {
    std::string out;
    for (auto l : lines_of(text)) out += fmt::format("{}{}\n", by, l);
    return out;
}

// Control characters other than tab and newline as "\xNN": XML 1.0 and YAML cannot hold them.
std::string printable(std::string_view s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += ch;
    }
    return out;
}

// A YAML double-quoted scalar.
std::string yaml_quoted(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') out += {'\\', ch};
        else if (ch == '\n') out += "\\n";
        else if (ch == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += ch;
    }
    return out + "\"";
}

std::string seconds(uint64_t ns) { return fmt::format("{:.6f}", static_cast<double>(ns) / 1e9); }

[[noreturn]] void bad_results(const fs::path& file, const std::string& what) {
    Location loc;
    loc.file = file.string();
    throw Error(ErrorCode::Parse, what, loc);
}

}  // namespace

const char* to_string(Status s) {
    switch (s) {
    case Status::Passed: return "passed";
    case Status::Failed: return "failed";
    case Status::Error: return "error";
    case Status::Skipped: return "skipped";
    }
    return "?";
}

std::string CaseResult::name() const { return btf.empty() ? fmt::format("{}: {}", file, step) : fmt::format("{}: {} [{}]", file, step, btf); }

Summary summarize(const std::vector<CaseResult>& cases) {
    Summary s;
    for (const auto& c : cases) {
        if (c.status == Status::Skipped) {
            ++s.skipped;
            continue;
        }
        (c.passed() ? s.passed : s.failed)++;
        s.errors += c.status == Status::Error;
    }
    return s;
}

std::string summary_line(const Summary& s) {
    return fmt::format("{} passed, {} failed{}", s.passed, s.failed, s.skipped ? fmt::format(", {} skipped", s.skipped) : "");
}

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        bool ok = len != 0 && i + len <= s.size();
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (std::size_t k = 1; ok && k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            ok = (cc & 0xc0) == 0x80;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
        if (ok) ok = !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) && !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
                     !(cp >= 0xd800 && cp <= 0xdfff);
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += fmt::format("\\x{:02x}", c);
            ++i;
        }
    }
    return out;
}

bool trace_line_matches(const std::string& pattern, const std::string& line) {
    if (pattern.size() >= 2 && pattern.front() == '/' && pattern.back() == '/') {
        try {
            return std::regex_search(line, std::regex(pattern.substr(1, pattern.size() - 2)));
        } catch (const std::regex_error&) {
            return false;
        }
    }
    return pattern == line;
}

std::optional<std::string> trace_diff(const std::vector<std::string>& expected, const std::vector<std::string>& actual) {
    const std::size_t n = expected.size(), m = actual.size();
    std::string body;
    bool differ = false;
    if (n * m > (1u << 22)) {   // too long to align: all of one, then all of the other
        differ = expected != actual;
        for (const auto& e : expected) body += "-" + e + "\n";
        for (const auto& a : actual) body += "+" + a + "\n";
    } else {
        // The longest common subsequence, lcs[i][j] for expected[i..] and actual[j..].
        std::vector<std::optional<std::regex>> re(n);
        for (std::size_t i = 0; i < n; ++i) {
            const auto& p = expected[i];
            if (p.size() >= 2 && p.front() == '/' && p.back() == '/') {
                try {
                    re[i].emplace(p.substr(1, p.size() - 2));
                } catch (const std::regex_error&) {
                    re[i].emplace("$.^");   // matches nothing
                }
            }
        }
        auto match = [&](std::size_t i, std::size_t j) { return re[i] ? std::regex_search(actual[j], *re[i]) : expected[i] == actual[j]; };
        std::vector<uint8_t> eq(n * m);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < m; ++j) eq[i * m + j] = match(i, j);
        std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
        auto at = [&](std::size_t i, std::size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
        for (std::size_t i = n; i-- > 0;)
            for (std::size_t j = m; j-- > 0;) at(i, j) = eq[i * m + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
        std::size_t i = 0, j = 0;
        while (i < n || j < m) {
            if (i < n && j < m && eq[i * m + j] && at(i, j) == at(i + 1, j + 1) + 1) {
                body += " " + actual[j] + "\n";
                ++i, ++j;
            } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
                body += "-" + expected[i++] + "\n";
                differ = true;
            } else {
                body += "+" + actual[j++] + "\n";
                differ = true;
            }
        }
    }
    if (!differ) return std::nullopt;
    if (!body.empty()) body.pop_back();
    return fmt::format("trace: expected and actual differ\n--- expected\n+++ actual{}\n{}", actual.empty() ? " (no trace lines)" : "", body);
}

std::string human_case(const CaseResult& c, bool show_trace) {
    std::string out = fmt::format("{} {}\n", c.passed() ? "ok  " : c.status == Status::Skipped ? "skip" : "FAIL", c.name());
    for (const auto& f : c.failures) out += indent(f, "    ");
    if ((show_trace || !c.passed()) && !c.trace.empty()) {
        out += "    trace_pipe:\n";
        for (const auto& l : c.trace) out += indent(l, "      ");
    }
    return out;
}

std::string tap_plan(std::size_t n) { return fmt::format("TAP version 13\n1..{}\n", n); }

std::string tap_case(const CaseResult& c, std::size_t number) {
    // A '#' would start a TAP directive in the description.
    std::string name = printable(c.name());
    std::replace(name.begin(), name.end(), '\n', ' ');
    std::string desc;
    for (const char ch : name) desc += ch == '#' ? std::string("\\#") : std::string(1, ch);
    if (c.passed()) return fmt::format("ok {} - {}\n", number, desc);
    if (c.status == Status::Skipped) {
        std::string why = c.failures.empty() ? "" : printable(c.failures.front());
        std::replace(why.begin(), why.end(), '\n', ' ');
        return fmt::format("ok {} - {} # SKIP {}\n", number, desc, why);
    }
    std::string out = fmt::format("not ok {} - {}\n  ---\n", number, desc);
    std::string message;
    for (const auto& f : c.failures) message += (message.empty() ? "" : "\n") + printable(f);
    if (message.empty()) message = "failed";
    // A literal block keeps the diff readable; its first line must not start with a space.
    if (message.front() != ' ' && message.front() != '\t' && message.back() != ' ' && message.back() != '\n')
        out += "  message: |-\n" + indent(message, "    ");
    else
        out += "  message: " + yaml_quoted(message) + "\n";
    out += fmt::format("  severity: {}\n", c.status == Status::Error ? "error" : "fail");
    out += fmt::format("  data:\n    file: {}\n    step: {}\n", yaml_quoted(c.file), yaml_quoted(c.step));
    if (!c.btf.empty()) out += fmt::format("    btf: {}\n", yaml_quoted(c.btf));
    if (c.ret) out += fmt::format("    return: {}\n", *c.ret);
    if (!c.trace.empty()) {
        out += "    trace:\n";
        for (const auto& l : c.trace) out += "      - " + yaml_quoted(l) + "\n";
    }
    return out + "  ...\n";
}

std::string xml_escape(std::string_view s, bool attribute) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char ch = s[i];
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += attribute ? "&quot;" : "\""; break;
        case '\'': out += attribute ? "&apos;" : "'"; break;
        case '\n': out += attribute ? "&#10;" : "\n"; break;
        case '\t': out += attribute ? "&#9;" : "\t"; break;
        case '\r': out += "&#13;"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += fmt::format("\\x{:02x}", c);   // not representable in XML 1.0
            } else if (c == 0xef && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xbf &&
                       (static_cast<unsigned char>(s[i + 2]) & 0xfe) == 0xbe) {
                out += fmt::format("\\u{:04x}", 0xfffe + (static_cast<unsigned char>(s[i + 2]) & 1));   // U+FFFE, U+FFFF
                i += 2;
            } else {
                out += ch;
            }
        }
    }
    return out;
}

std::string junit_xml(const std::vector<CaseResult>& cases) {
    const Summary all = summarize(cases);
    uint64_t total_ns = 0;
    for (const auto& c : cases) total_ns += c.duration_ns;
    std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out += fmt::format("<testsuites name=\"bpfsim test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">\n", cases.size(),
                       all.failed - all.errors, all.errors, all.skipped, seconds(total_ns));
    for (std::size_t b = 0; b < cases.size();) {
        std::size_t e = b;
        uint64_t ns = 0;
        while (e < cases.size() && cases[e].file == cases[b].file && cases[e].btf == cases[b].btf && cases[e].unit == cases[b].unit) ns += cases[e++].duration_ns;
        const std::vector<CaseResult> suite(cases.begin() + static_cast<std::ptrdiff_t>(b), cases.begin() + static_cast<std::ptrdiff_t>(e));
        const Summary s = summarize(suite);
        const std::string name = cases[b].btf.empty() ? cases[b].file : fmt::format("{} [{}]", cases[b].file, cases[b].btf);
        out += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">\n", xml_escape(name, true),
                           suite.size(), s.failed - s.errors, s.errors, s.skipped, seconds(ns));
        out += "    <properties>\n";
        out += fmt::format("      <property name=\"file\" value=\"{}\"/>\n", xml_escape(cases[b].file, true));
        if (!cases[b].btf.empty()) out += fmt::format("      <property name=\"btf\" value=\"{}\"/>\n", xml_escape(cases[b].btf, true));
        out += "    </properties>\n";
        for (const auto& c : suite) {
            out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"", xml_escape(c.file, true), xml_escape(c.step, true), seconds(c.duration_ns));
            if (c.passed() && c.trace.empty()) {
                out += "/>\n";
                continue;
            }
            out += ">\n";
            if (c.status == Status::Skipped) {
                out += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(c.failures.empty() ? "" : c.failures.front(), true));
            } else if (!c.passed()) {
                const char* tag = c.status == Status::Error ? "error" : "failure";
                std::string message, text;
                for (const auto& f : c.failures) {
                    message += (message.empty() ? "" : "; ") + std::string(lines_of(f).front());
                    text += (text.empty() ? "" : "\n") + f;
                }
                out += fmt::format("      <{} message=\"{}\" type=\"{}\">{}</{}>\n", tag, xml_escape(message, true), tag, xml_escape(text, false), tag);
            }
            if (!c.trace.empty()) {
                std::string text;
                for (const auto& l : c.trace) text += l + "\n";
                out += fmt::format("      <system-out>{}</system-out>\n", xml_escape(text, false));
            }
            out += "    </testcase>\n";
        }
        out += "  </testsuite>\n";
        b = e;
    }
    return out + "</testsuites>\n";
}

std::string results_json(const std::vector<CaseResult>& cases, const RunInfo& info, const std::optional<std::string>& coverage_json) {
    using json = nlohmann::ordered_json;
    const Summary s = summarize(cases);
    json root;
    root["tool"] = "bpfsim test";
    root["version"] = 1;
    root["shard"] = info.shard_index ? json{{"index", *info.shard_index}, {"count", *info.shard_count}} : json(nullptr);
    root["filter"] = info.filter;
    root["units"] = info.units;
    root["summary"] = {{"total", cases.size()}, {"passed", s.passed}, {"failed", s.failed}, {"errors", s.errors}, {"skipped", s.skipped}};
    json arr = json::array();
    for (const auto& c : cases) {
        json j;
        j["name"] = c.name();
        j["file"] = c.file;
        j["step"] = c.step;
        j["btf"] = c.btf;
        j["status"] = to_string(c.status);
        j["duration_ns"] = c.duration_ns;
        j["failures"] = c.failures;
        j["trace"] = c.trace;
        j["return"] = c.ret ? json(*c.ret) : json(nullptr);
        j["unit"] = c.unit;
        j["index"] = c.index;
        arr.push_back(std::move(j));
    }
    root["cases"] = std::move(arr);
    if (coverage_json) root["coverage"] = json::parse(*coverage_json);
    return root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

ResultsFile read_results_json(const fs::path& file) {
    using json = nlohmann::json;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        Location loc;
        loc.file = file.string();
        throw Error(ErrorCode::Io, "cannot open the results file", loc);
    }
    json root;
    try {
        root = json::parse(in);
    } catch (const json::exception& e) {
        bad_results(file, fmt::format("not valid JSON: {}", e.what()));
    }
    if (!root.is_object() || root.value("tool", json()) != "bpfsim test" || !root.contains("cases") || !root["cases"].is_array())
        bad_results(file, "not the results of 'bpfsim test --json'");
    ResultsFile r;
    try {
        if (const auto& sh = root.at("shard"); !sh.is_null()) {
            r.info.shard_index = sh.at("index").get<std::size_t>();
            r.info.shard_count = sh.at("count").get<std::size_t>();
            if (*r.info.shard_count == 0 || *r.info.shard_index == 0 || *r.info.shard_index > *r.info.shard_count)
                bad_results(file, fmt::format("shard {}/{}: the index must be from 1 to the count", *r.info.shard_index, *r.info.shard_count));
        }
        r.info.filter = root.at("filter").get<std::string>();
        r.info.units = root.at("units").get<std::size_t>();
        for (const auto& j : root["cases"]) {
            CaseResult c;
            c.file = j.at("file").get<std::string>();
            c.step = j.at("step").get<std::string>();
            c.btf = j.at("btf").get<std::string>();
            const auto st = j.at("status").get<std::string>();
            if (st == "passed") c.status = Status::Passed;
            else if (st == "failed") c.status = Status::Failed;
            else if (st == "error") c.status = Status::Error;
            else if (st == "skipped") c.status = Status::Skipped;
            else bad_results(file, fmt::format("case '{}': unknown status '{}'", c.name(), st));
            c.duration_ns = j.at("duration_ns").get<uint64_t>();
            c.failures = j.at("failures").get<std::vector<std::string>>();
            c.trace = j.at("trace").get<std::vector<std::string>>();
            if (!j.at("return").is_null()) c.ret = j.at("return").get<int64_t>();
            c.unit = j.at("unit").get<std::size_t>();
            c.index = j.at("index").get<std::size_t>();
            r.cases.push_back(std::move(c));
        }
    } catch (const json::exception& e) {
        bad_results(file, fmt::format("not the results of 'bpfsim test --json': {}", e.what()));
    }
    return r;
}

ResultsFile merge_results(const std::vector<fs::path>& files, const std::vector<ResultsFile>& results) {
    ResultsFile out;
    if (results.empty()) return out;
    const bool shards = results.front().info.shard_count.has_value();
    std::map<std::size_t, std::size_t> seen;   // shard index -> which file
    for (std::size_t f = 0; f < results.size(); ++f) {
        const RunInfo& ri = results[f].info;
        auto fail = [&](const std::string& what) { bad_results(files[f], what); };
        if (ri.shard_count.has_value() != shards)
            fail(fmt::format("{} a shard, and {} {}", ri.shard_count ? "is" : "is not", files.front().string(), shards ? "is" : "is not"));
        if (!shards) continue;
        const RunInfo& first = results.front().info;
        if (*ri.shard_count != *first.shard_count)
            fail(fmt::format("shard {}/{} does not belong with {} (shard {}/{})", *ri.shard_index, *ri.shard_count, files.front().string(),
                             *first.shard_index, *first.shard_count));
        if (ri.filter != first.filter || ri.units != first.units)
            fail(fmt::format("shard {}/{} comes from another run than {} (filter or scenarios differ)", *ri.shard_index, *ri.shard_count, files.front().string()));
        if (auto [it, fresh] = seen.emplace(*ri.shard_index, f); !fresh)
            fail(fmt::format("shard {}/{} is also {}", *ri.shard_index, *ri.shard_count, files[it->second].string()));
    }
    if (shards) {
        const std::size_t n = *results.front().info.shard_count;
        for (std::size_t i = 1; i <= n; ++i)
            if (!seen.count(i))
                throw Error(ErrorCode::Usage, fmt::format("--merge: shard {}/{} is missing (give the results of every shard)", i, n));
        out.info = results.front().info;
        out.info.shard_index.reset();
        out.info.shard_count.reset();
    } else {
        out.info.filter = results.front().info.filter;
    }
    // Run order: shards interleave by unit; whole runs follow each other.
    std::vector<std::tuple<std::size_t, std::size_t, std::size_t, const CaseResult*>> order;
    std::set<std::pair<std::size_t, std::size_t>> keys;
    std::size_t base = 0;
    for (std::size_t f = 0; f < results.size(); ++f) {
        for (const auto& c : results[f].cases) {
            if (shards && !keys.emplace(c.unit, c.index).second)
                bad_results(files[f], fmt::format("case '{}' is in another shard too", c.name()));
            order.emplace_back(shards ? 0 : f, c.unit, c.index, &c);
        }
        if (!shards) base += results[f].info.units;
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) < std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
    });
    // Whole runs: units renumbered to follow each other.
    std::vector<std::size_t> offset(results.size(), 0);
    for (std::size_t f = 1; f < results.size() && !shards; ++f) offset[f] = offset[f - 1] + results[f - 1].info.units;
    for (const auto& [f, u, i, c] : order) {
        CaseResult r = *c;
        r.unit += offset[f];
        out.cases.push_back(std::move(r));
    }
    if (!shards) out.info.units = base;
    return out;
}

}  // namespace bpfsim::testrun
