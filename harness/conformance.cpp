// The bpf_conformance `.data` format and its runner.
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace bpfsim::harness {

namespace {

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

uint64_t parse_u64(const std::string& s, const std::string& file, std::size_t line) {
    std::string t = trim(s);
    int base = 10;
    std::size_t i = 0;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
        base = 16;
        i = 2;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data() + i, t.data() + t.size(), v, base);
    if (t.size() == i || ec != std::errc() || p != t.data() + t.size()) {
        Location loc;
        loc.file = file;
        loc.line = line;
        throw Error(ErrorCode::Parse, fmt::format("invalid number '{}'", t), loc);
    }
    return v;
}

}  // namespace

Result<ConformanceCase> parse_conformance_text(std::string_view text, std::string file) {
    return catch_error([&]() -> ConformanceCase {
        enum class Sec { None, Asm, Raw, Mem, Result, Error, Ignore } sec = Sec::None;
        ConformanceCase c;
        c.file = file;
        std::istringstream in{std::string(text)};
        std::string line;
        std::size_t line_no = 0;
        bool have_asm = false;
        while (std::getline(in, line)) {
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const std::string t = trim(line);
            if (t.starts_with("--")) {
                const std::string name = trim(t.substr(2));
                if (name == "asm") { sec = Sec::Asm; have_asm = true; c.asm_line = line_no + 1; }
                else if (name == "raw") sec = Sec::Raw;
                else if (name == "mem") sec = Sec::Mem;
                else if (name == "result") sec = Sec::Result;
                else if (name == "error" || name == "error pattern") sec = Sec::Error;
                else if (name == "c" || name == "no register offset") sec = Sec::Ignore;
                else if (name == "no jit") { c.no_jit = true; sec = Sec::Ignore; }
                else {
                    Location loc;
                    loc.file = file;
                    loc.line = line_no;
                    throw Error(ErrorCode::Parse, fmt::format("unknown section '-- {}'", name), loc);
                }
                continue;
            }
            switch (sec) {
            case Sec::Asm:
                c.asm_text += line;
                c.asm_text += '\n';
                break;
            case Sec::Raw: {
                const std::string v = trim(line.substr(0, line.find('#')));
                if (!v.empty()) c.raw.push_back(parse_u64(v, file, line_no));
                break;
            }
            case Sec::Mem: {
                std::istringstream bytes(line.substr(0, line.find('#')));
                std::string b;
                while (bytes >> b) {
                    const uint64_t v = parse_u64("0x" + b, file, line_no);
                    if (v > 0xff) {
                        Location loc;
                        loc.file = file;
                        loc.line = line_no;
                        throw Error(ErrorCode::Parse, fmt::format("memory byte '{}' is larger than 0xff", b), loc);
                    }
                    c.mem.push_back(static_cast<uint8_t>(v));
                }
                break;
            }
            case Sec::Result:
                if (!t.empty() && !t.starts_with("#")) c.result = parse_u64(t, file, line_no);
                break;
            case Sec::Error:
                if (!t.empty()) c.error = t;
                break;
            case Sec::None:
            case Sec::Ignore:
                break;
            }
        }
        if (!have_asm && c.raw.empty()) {
            Location loc;
            loc.file = file;
            throw Error(ErrorCode::Parse, "test has neither '-- asm' nor '-- raw'", loc);
        }
        if (!c.result && c.error.empty()) {
            Location loc;
            loc.file = file;
            throw Error(ErrorCode::Parse, "test has neither '-- result' nor '-- error'", loc);
        }
        return c;
    });
}

Result<ConformanceCase> parse_conformance(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        Location loc;
        loc.file = file.string();
        return Error(ErrorCode::Io, fmt::format("cannot open file: {}", std::strerror(errno)), loc);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_conformance_text(ss.str(), file.string());
}

Result<vm::RunResult> run_raw(std::span<const vm::Insn> insns, std::vector<uint8_t>& mem, const vm::RunOptions& opts) {
    return catch_error([&]() -> vm::RunResult {
        vm::Program prog;
        prog.name = "conformance";
        prog.insns.assign(insns.begin(), insns.end());
        auto interp = vm::Interpreter::compile(prog, vm::conformance_helpers());
        if (!interp) throw interp.error();
        vm::Env env;
        if (!mem.empty()) env.mem.add(mem.data(), mem.size(), vm::kReadWrite, vm::RegionKind::Input, "mem");
        const uint64_t r1 = mem.empty() ? 0 : reinterpret_cast<uint64_t>(mem.data());
        return interp->run(env, {r1, mem.size(), 0, 0, 0}, opts);
    });
}

ConformanceOutcome run_conformance(const ConformanceCase& c, const vm::RunOptions& opts) {
    ConformanceOutcome out;
    std::vector<vm::Insn> insns;
    std::string failure;   // an error, as the plugin would print it
    if (!c.asm_text.empty()) {
        auto a = vm::assemble(c.asm_text, c.file);
        if (!a) {
            Error e = a.error();
            // Report the line in the .data file, not in the asm section.
            if (e.where().line) e.where().line = *e.where().line + c.asm_line - 1;
            failure = e.describe();
        } else {
            insns = std::move(a.value());
        }
    }
    if (!c.raw.empty()) {
        std::vector<vm::Insn> raw;
        for (uint64_t w : c.raw) raw.push_back(vm::Insn::from_raw(w));
        if (failure.empty() && !insns.empty() && raw != insns) {
            out.detail = "assembled '-- asm' differs from '-- raw'";
            for (std::size_t i = 0; i < std::max(raw.size(), insns.size()); ++i) {
                const uint64_t a = i < insns.size() ? insns[i].raw() : 0, b = i < raw.size() ? raw[i].raw() : 0;
                if (a != b) {
                    out.detail += fmt::format(": first difference at pc {}: asm 0x{:016x}, raw 0x{:016x}", i, a, b);
                    break;
                }
            }
            return out;
        }
        if (insns.empty()) {
            insns = std::move(raw);
            failure.clear();
        }
    }
    if (failure.empty()) {
        std::vector<uint8_t> mem = c.mem;
        auto r = run_raw(insns, mem, opts);
        if (!r) failure = r.error().describe();
        else if (r->trap) failure = r->trap->message;
        else {
            out.r0 = r->r0;
            out.insns = r->insns;
        }
    }
    if (!c.error.empty()) {
        if (failure.empty()) {
            out.detail = fmt::format("expected error matching '{}', but the program returned {:#x}", c.error, out.r0);
            return out;
        }
        bool match = failure.find(c.error) != std::string::npos;
        if (!match) {
            try {
                match = std::regex_search(failure, std::regex(c.error));
            } catch (const std::regex_error&) {
            }
        }
        out.passed = match;
        if (!match) out.detail = fmt::format("expected error matching '{}', got: {}", c.error, failure);
        return out;
    }
    if (!failure.empty()) {
        out.detail = failure;
        return out;
    }
    out.passed = out.r0 == *c.result;
    if (!out.passed) out.detail = fmt::format("returned {:#x}, expected {:#x}", out.r0, *c.result);
    return out;
}

}  // namespace bpfsim::harness
