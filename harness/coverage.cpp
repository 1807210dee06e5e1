// Coverage reports: counts per program from the interpreter, mapped to source lines through
// line_info, merged per source file for lcov.
#include "harness/coverage.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <tuple>

namespace bpfsim::harness {

namespace fs = std::filesystem;

// ───────────────────────────────── programs ─────────────────────────────────

const vm::LineInfo* ProgramCoverage::line_of(std::size_t pc) const {
    auto it = std::upper_bound(lines.begin(), lines.end(), pc, [](std::size_t p, const vm::LineInfo& l) { return p < l.pc; });
    return it == lines.begin() ? nullptr : &*std::prev(it);
}

std::size_t ProgramCoverage::function_of(std::size_t pc) const {
    std::size_t f = 0;
    for (std::size_t i = 0; i < functions.size() && functions[i].first <= pc; ++i) f = i;
    return f;
}

CoverageTotals ProgramCoverage::totals() const {
    CoverageTotals t;
    std::map<std::pair<std::string, uint32_t>, uint64_t> line_hits;
    for (std::size_t pc = 0; pc < kinds.size(); ++pc) {
        if (!is_insn(pc)) continue;
        const uint64_t h = hits(pc);
        ++t.instructions.total;
        if (h) ++t.instructions.covered;
        if (is_branch(pc)) {
            t.branches.total += 2;
            t.branches.covered += (taken(pc) > 0) + (h > taken(pc));
        }
        if (const vm::LineInfo* l = line_of(pc); l && l->line) {
            uint64_t& m = line_hits[{l->file, l->line}];
            m = std::max(m, h);
        }
    }
    for (const auto& [_, h] : line_hits) {
        ++t.lines.total;
        if (h) ++t.lines.covered;
    }
    for (const auto& [pc, _] : functions) {
        ++t.functions.total;
        if (hits(pc)) ++t.functions.covered;
    }
    return t;
}

// ───────────────────────────────── the report ───────────────────────────────

vm::RunOptions CoverageReport::options(vm::RunOptions base) {
    base.coverage = nullptr;
    base.counters = [this](const vm::Program& p) { return &counters(p); };
    return base;
}

vm::Coverage& CoverageReport::counters(const vm::Program& prog) {
    ProgramCoverage& pc = programs_[{prog.file, prog.name}];
    if (pc.kinds.size() < prog.insns.size()) {
        // First seen (or bigger than before): copy what maps its pcs to the source.
        pc.file = prog.file;
        pc.name = prog.name;
        pc.section = prog.section;
        pc.lines = prog.lines;
        std::stable_sort(pc.lines.begin(), pc.lines.end(), [](const vm::LineInfo& a, const vm::LineInfo& b) { return a.pc < b.pc; });
        pc.functions = prog.functions;
        if (pc.functions.empty()) pc.functions.emplace_back(0, prog.name);
        std::sort(pc.functions.begin(), pc.functions.end());
        pc.kinds.assign(prog.insns.size(), 1);
        for (std::size_t i = 0; i < prog.insns.size(); ++i) {
            const auto op = vm::classify(prog.insns[i]);
            if (!op) continue;
            const vm::Form f = vm::op_info(*op).form;
            if (f == vm::Form::LDDW && i + 1 < prog.insns.size()) pc.kinds[++i] = 0;
            else if (f == vm::Form::JCOND_K || f == vm::Form::JCOND_X) pc.kinds[i] = 2;
        }
    }
    return pc.counts;
}

void CoverageReport::merge(const CoverageReport& other) {
    for (const auto& [key, theirs] : other.programs_) {
        auto [it, fresh] = programs_.try_emplace(key, theirs);
        if (fresh) continue;
        ProgramCoverage& mine = it->second;
        if (mine.kinds.size() < theirs.kinds.size()) {   // the longer program's map to the source
            vm::Coverage counts = std::move(mine.counts);
            mine = theirs;
            mine.counts = std::move(counts);   // ours; theirs are added below
        }
        auto add = [](std::vector<uint64_t>& to, const std::vector<uint64_t>& from) {
            if (to.size() < from.size()) to.resize(from.size(), 0);
            for (std::size_t i = 0; i < from.size(); ++i) to[i] += from[i];
        };
        add(mine.counts.hits, theirs.counts.hits);
        add(mine.counts.taken, theirs.counts.taken);
    }
}

namespace {

// One source file's lcov record, merged over programs and objects.
struct FileRecord {
    std::map<uint32_t, uint64_t> lines;   // line -> execution count
    struct Function {
        uint32_t line = 0;
        uint64_t hits = 0;
    };
    std::map<std::string, Function> functions;
    // A conditional jump, the same in every program that links its function: (line, object,
    // function, offset in the function) -> (executions, jumps taken).
    std::map<std::tuple<uint32_t, std::string, std::string, std::size_t>, std::pair<uint64_t, uint64_t>> branches;
};

std::string source_path(const std::string& file, const fs::path& base) {
    fs::path p(file);
    if (p.is_relative()) {
        std::error_code ec;
        fs::path b = base.empty() ? fs::current_path(ec) : base;
        if (b.is_relative()) b = fs::absolute(b, ec);
        p = b / p;
    }
    return p.lexically_normal().string();
}

std::map<std::string, FileRecord> file_records(const std::map<std::pair<std::string, std::string>, ProgramCoverage>& programs,
                                               const fs::path& base) {
    std::map<std::string, FileRecord> files;
    std::map<std::string, std::string> paths;   // line_info file -> absolute path
    auto path_of = [&](const std::string& f) -> const std::string& {
        auto it = paths.find(f);
        if (it == paths.end()) it = paths.emplace(f, source_path(f, base)).first;
        return it->second;
    };
    for (const auto& [_, p] : programs) {
        if (p.lines.empty()) continue;
        // A line's count in one program is that of its most executed instruction.
        std::map<std::pair<const std::string*, uint32_t>, uint64_t> line_hits;
        for (std::size_t pc = 0; pc < p.kinds.size(); ++pc) {
            if (!p.is_insn(pc)) continue;
            const vm::LineInfo* l = p.line_of(pc);
            if (!l || !l->line || l->file.empty()) continue;
            const std::string& path = path_of(l->file);
            uint64_t& m = line_hits[{&path, l->line}];
            m = std::max(m, p.hits(pc));
            if (p.is_branch(pc)) {
                const std::size_t f = p.function_of(pc);
                auto& b = files[path].branches[{l->line, p.file, p.functions[f].second, pc - p.functions[f].first}];
                b.first += p.hits(pc);
                b.second += p.taken(pc);
            }
        }
        for (const auto& [key, h] : line_hits) files[*key.first].lines[key.second] += h;
        // A function's line is that of its first line_info entry.
        for (std::size_t i = 0; i < p.functions.size(); ++i) {
            const std::size_t start = p.functions[i].first;
            const std::size_t end = i + 1 < p.functions.size() ? p.functions[i + 1].first : p.kinds.size();
            auto it = std::find_if(p.lines.begin(), p.lines.end(),
                                   [&](const vm::LineInfo& l) { return l.pc >= start && l.pc < end && l.line && !l.file.empty(); });
            if (it == p.lines.end()) continue;
            auto& fn = files[path_of(it->file)].functions[p.functions[i].second];
            if (!fn.line) fn.line = it->line;
            fn.hits += p.hits(start);
        }
    }
    return files;
}

std::string test_name_of(std::string_view name) {
    std::string s(name);
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    return s;
}

template <class F>
Result<std::size_t> write_text(const fs::path& path, F&& text) {
    return catch_error([&]() -> std::size_t {
        const std::string s = text();
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(ErrorCode::Io, fmt::format("cannot write '{}'", path.string()));
        out.write(s.data(), static_cast<std::streamsize>(s.size()));
        out.close();
        if (!out) throw Error(ErrorCode::Io, fmt::format("cannot write '{}'", path.string()));
        return s.size();
    });
}

}  // namespace

CoverageTotals CoverageReport::totals() const {
    CoverageTotals t;
    for (const auto& [_, p] : programs_) {
        const CoverageTotals pt = p.totals();
        t.instructions.total += pt.instructions.total;
        t.instructions.covered += pt.instructions.covered;
        t.branches.total += pt.branches.total;
        t.branches.covered += pt.branches.covered;
    }
    for (const auto& [_, f] : file_records(programs_, {})) {
        for (const auto& [line, h] : f.lines) {
            ++t.lines.total;
            if (h) ++t.lines.covered;
        }
        for (const auto& [name, fn] : f.functions) {
            ++t.functions.total;
            if (fn.hits) ++t.functions.covered;
        }
    }
    return t;
}

std::string CoverageReport::lcov(std::string_view test_name, const fs::path& base) const {
    std::string out;
    const std::string tn = test_name_of(test_name);
    for (const auto& [path, f] : file_records(programs_, base)) {
        out += fmt::format("TN:{}\nSF:{}\n", tn, path);
        std::vector<std::pair<uint32_t, std::string>> fns;
        for (const auto& [name, fn] : f.functions) fns.emplace_back(fn.line, name);
        std::sort(fns.begin(), fns.end());
        std::size_t fnh = 0;
        for (const auto& [line, name] : fns) out += fmt::format("FN:{},{}\n", line, name);
        for (const auto& [line, name] : fns) {
            const uint64_t h = f.functions.at(name).hits;
            out += fmt::format("FNDA:{},{}\n", h, name);
            fnh += h > 0;
        }
        out += fmt::format("FNF:{}\nFNH:{}\n", fns.size(), fnh);
        std::size_t brf = 0, brh = 0, block = 0;
        uint32_t prev_line = 0;
        for (const auto& [key, b] : f.branches) {
            const uint32_t line = std::get<0>(key);
            block = line == prev_line ? block + 1 : 0;
            prev_line = line;
            const auto [ran, taken] = b;
            for (int branch = 0; branch < 2; ++branch) {
                const uint64_t n = branch == 0 ? taken : ran - taken;
                out += ran ? fmt::format("BRDA:{},{},{},{}\n", line, block, branch, n) : fmt::format("BRDA:{},{},{},-\n", line, block, branch);
                ++brf;
                brh += n > 0;
            }
        }
        out += fmt::format("BRF:{}\nBRH:{}\n", brf, brh);
        std::size_t lh = 0;
        for (const auto& [line, h] : f.lines) {
            out += fmt::format("DA:{},{}\n", line, h);
            lh += h > 0;
        }
        out += fmt::format("LF:{}\nLH:{}\nend_of_record\n", f.lines.size(), lh);
    }
    return out;
}

std::string CoverageReport::json(int indent) const {
    using json = nlohmann::ordered_json;
    auto count = [](const CoverageCount& c) { return json{{"total", c.total}, {"covered", c.covered}}; };
    auto totals_json = [&](const CoverageTotals& t) {
        return json{{"instructions", count(t.instructions)}, {"branches", count(t.branches)}, {"lines", count(t.lines)},
                    {"functions", count(t.functions)}};
    };
    json progs = json::array();
    for (const auto& [_, p] : programs_) {
        json j = {{"object", p.file}, {"program", p.name}, {"section", p.section}};
        j.update(totals_json(p.totals()));
        json fns = json::array();
        for (const auto& [pc, name] : p.functions) fns.push_back({{"name", name}, {"pc", pc}, {"hits", p.hits(pc)}});
        j["function_hits"] = std::move(fns);
        json hits = json::array(), taken = json::array();
        for (std::size_t pc = 0; pc < p.kinds.size(); ++pc) {
            hits.push_back(p.hits(pc));
            taken.push_back(p.taken(pc));
        }
        j["hits"] = std::move(hits);
        j["taken"] = std::move(taken);
        progs.push_back(std::move(j));
    }
    json out = {{"programs", std::move(progs)}, {"total", totals_json(totals())}};
    return out.dump(indent) + "\n";
}

Result<std::size_t> CoverageReport::write_lcov(const fs::path& path, std::string_view test_name, const fs::path& base) const {
    return write_text(path, [&] { return lcov(test_name, base); });
}

Result<std::size_t> CoverageReport::write_json(const fs::path& path, int indent) const {
    return write_text(path, [&] { return json(indent); });
}

}  // namespace bpfsim::harness
