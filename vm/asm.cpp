// Assembler for the bpf_conformance text syntax (plus the extensions the disassembler prints).
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <map>
#include <unordered_map>

namespace bpfsim::vm {

namespace {

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

struct LineError {
    std::string what;
};

// Integer literal: decimal or 0x hex, optional sign; accepts the full u64/s64 range.
int64_t parse_int(std::string_view s, const char* what) {
    std::string t = trim(s);
    bool neg = false;
    std::size_t i = 0;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
        neg = t[i] == '-';
        ++i;
    }
    int base = 10;
    if (t.size() - i > 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
        base = 16;
        i += 2;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data() + i, t.data() + t.size(), v, base);
    if (i == t.size() || ec != std::errc() || p != t.data() + t.size())
        throw LineError{fmt::format("invalid {} '{}'", what, t)};
    return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

int32_t parse_imm32(std::string_view s) {
    int64_t v = parse_int(s, "immediate");
    if (v < INT32_MIN || v > int64_t(UINT32_MAX)) throw LineError{fmt::format("immediate '{}' does not fit in 32 bits", trim(s))};
    return static_cast<int32_t>(static_cast<uint32_t>(v));
}

int16_t parse_off16(std::string_view s) {
    int64_t v = parse_int(s, "offset");
    if (v < INT16_MIN || v > INT16_MAX) throw LineError{fmt::format("offset '{}' does not fit in 16 bits (-32768..32767)", trim(s))};
    return static_cast<int16_t>(v);
}

uint8_t parse_reg(std::string_view s) {
    std::string t = trim(s);
    if (t.size() < 3 || t[0] != '%' || t[1] != 'r') throw LineError{fmt::format("expected a register like %r1, got '{}'", t)};
    int v = 0;
    auto [p, ec] = std::from_chars(t.data() + 2, t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < 0 || v > 10)
        throw LineError{fmt::format("invalid register '{}' (r0..r10)", t)};
    return static_cast<uint8_t>(v);
}

bool is_reg(std::string_view s) { return trim(s).starts_with("%r"); }

// "[%r1+4]", "[%r10-8]", "[%r1]"
std::pair<uint8_t, int16_t> parse_mem(std::string_view s) {
    std::string t = trim(s);
    if (t.size() < 4 || t.front() != '[' || t.back() != ']') throw LineError{fmt::format("expected [%rN+off], got '{}'", t)};
    std::string inner = t.substr(1, t.size() - 2);
    auto sign = inner.find_first_of("+-", 1);
    if (sign == std::string::npos) return {parse_reg(inner), 0};
    return {parse_reg(inner.substr(0, sign)), parse_off16(inner.substr(sign))};
}

// Split operands on commas that are not inside () or [].
std::vector<std::string> split_operands(std::string_view s) {
    std::vector<std::string> out;
    int depth = 0;
    std::string cur;
    for (char c : s) {
        if (c == '(' || c == '[') ++depth;
        if (c == ')' || c == ']') --depth;
        if (c == ',' && depth == 0) {
            out.push_back(trim(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!trim(cur).empty() || !out.empty()) out.push_back(trim(cur));
    return out;
}

struct Pending {
    std::size_t index;        // instruction index
    std::string label;
    bool in_imm;              // the target goes in imm (ja32, call local, lddw func) rather than off
    std::size_t line;
};

class Assembler {
public:
    explicit Assembler(std::string_view file) : file_(file) {
        for (const auto& row : op_table()) by_mnemonic_.emplace(std::string(row.mnemonic), &row);
    }

    std::vector<Insn> run(std::string_view text) {
        std::size_t line_no = 0;
        std::size_t pos = 0;
        while (pos <= text.size()) {
            auto nl = text.find('\n', pos);
            if (nl == std::string_view::npos) nl = text.size();
            std::string_view raw = text.substr(pos, nl - pos);
            pos = nl + 1;
            ++line_no;
            try {
                line(raw, line_no);
            } catch (const LineError& e) {
                throw Error(ErrorCode::Parse, e.what, where(line_no));
            }
            if (nl == text.size()) break;
        }
        for (const auto& p : pending_) {
            auto it = labels_.find(p.label);
            if (it == labels_.end()) throw Error(ErrorCode::Parse, fmt::format("undefined label '{}'", p.label), where(p.line));
            const int64_t rel = int64_t(it->second) - int64_t(p.index) - 1;
            if (p.in_imm) out_[p.index].imm = static_cast<int32_t>(rel);
            else {
                if (rel < INT16_MIN || rel > INT16_MAX)
                    throw Error(ErrorCode::Parse, fmt::format("label '{}' is too far for a 16-bit jump offset", p.label), where(p.line));
                out_[p.index].off = static_cast<int16_t>(rel);
            }
        }
        return out_;
    }

private:
    Location where(std::size_t line) const {
        Location l;
        l.file = file_;
        l.line = line;
        return l;
    }

    void line(std::string_view raw, std::size_t line_no) {
        std::string s = trim(raw.substr(0, raw.find('#')));
        // `;` also starts a comment, as in llvm-mc output.
        if (auto c = s.find(';'); c != std::string::npos) s = trim(s.substr(0, c));
        if (s.empty()) return;
        if (s.back() == ':') {
            std::string label = trim(s.substr(0, s.size() - 1));
            if (label.empty()) throw LineError{"empty label"};
            if (labels_.count(label))
                throw LineError{fmt::format("duplicate label '{}'", label)};
            labels_[label] = out_.size();
            return;
        }
        auto sp = s.find_first_of(" \t");
        std::string mnem = s.substr(0, sp);
        std::string rest = sp == std::string::npos ? "" : trim(s.substr(sp));
        // Multi-word mnemonics: "lock [fetch] op", "call local", "call kfunc".
        if (mnem == "lock") {
            auto sp2 = rest.find_first_of(" \t");
            std::string w = rest.substr(0, sp2);
            rest = sp2 == std::string::npos ? "" : trim(rest.substr(sp2));
            if (w == "fetch") {
                auto sp3 = rest.find_first_of(" \t");
                std::string w2 = rest.substr(0, sp3);
                rest = sp3 == std::string::npos ? "" : trim(rest.substr(sp3));
                mnem = "lock fetch " + w2;
            } else {
                mnem = "lock " + w;
            }
        }
        // The first `exit` doubles as the label "exit", as bpf_conformance does.
        if (mnem == "exit" && !labels_.count("exit")) labels_["exit"] = out_.size();
        auto ops = split_operands(rest);
        if (mnem == "call") return call(ops, line_no);
        if (mnem == "swap16" || mnem == "swap32" || mnem == "swap64") mnem = "b" + mnem;
        if (mnem == "ldabsdw" || mnem == "ldinddw") throw LineError{fmt::format("'{}' does not exist: LD_ABS/LD_IND load at most 4 bytes", mnem)};
        auto range = by_mnemonic_.equal_range(mnem);
        if (range.first == range.second) throw LineError{fmt::format("unknown mnemonic '{}'", mnem)};
        // Pick the row whose form matches the operands (e.g. imm vs register source).
        const OpInfo* row = nullptr;
        for (auto it = range.first; it != range.second; ++it) {
            const OpInfo* r = it->second;
            if (r->form == Form::ALU_K || r->form == Form::JCOND_K) {
                std::size_t idx = r->form == Form::ALU_K ? 1 : 1;
                if (ops.size() > idx && !is_reg(ops[idx])) row = r;
            } else if (r->form == Form::ALU_X || r->form == Form::JCOND_X) {
                if (ops.size() > 1 && is_reg(ops[1])) row = r;
            } else if (r->form == Form::LDDW) {
                if (r->op == Op::LDDW) row = r;   // pseudo forms are chosen below
            } else {
                row = r;
            }
            if (row) break;
        }
        if (!row) throw LineError{fmt::format("operands do not fit '{}'", mnem)};
        emit(*row, ops, line_no);
    }

    void need(const std::vector<std::string>& ops, std::size_t n, std::string_view mnem) {
        if (ops.size() != n) throw LineError{fmt::format("'{}' takes {} operand{}, got {}", mnem, n, n == 1 ? "" : "s", ops.size())};
    }

    // A jump target: +N/-N (relative) or a label resolved later.
    void target(const std::string& t, bool in_imm, std::size_t line_no) {
        Insn& in = out_.back();
        if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
            if (in_imm) in.imm = parse_imm32(t);
            else in.off = parse_off16(t);
        } else {
            if (t.empty()) throw LineError{"missing jump target"};
            pending_.push_back({out_.size() - 1, t, in_imm, line_no});
        }
    }

    void call(const std::vector<std::string>& ops0, std::size_t line_no) {
        std::vector<std::string> ops = ops0;
        // "call local label" / "call kfunc 12" / "call helper 5" arrive as one operand with a space.
        std::string mode;
        if (ops.size() >= 1) {
            auto sp = ops[0].find_first_of(" \t");
            if (sp != std::string::npos) {
                mode = ops[0].substr(0, sp);
                ops[0] = trim(ops[0].substr(sp));
            }
        }
        Insn in;
        in.code = 0x85;
        if (mode.empty() && ops.size() == 1 && is_reg(ops[0])) {   // call %r2 == callx
            in.code = 0x8d;
            in.dst = parse_reg(ops[0]);
            out_.push_back(in);
            return;
        }
        if (mode == "local") {
            if (ops.size() != 1) throw LineError{"'call local' takes one target"};
            in.src = 1;
            out_.push_back(in);
            target(ops[0], true, line_no);
            return;
        }
        if (mode == "kfunc" || mode == "runtime") {
            if (ops.size() < 1 || ops.size() > 2) throw LineError{"'call kfunc' takes a BTF id and an optional module index"};
            in.src = 2;
            in.imm = parse_imm32(ops[0]);
            if (ops.size() == 2) in.off = parse_off16(ops[1]);
            out_.push_back(in);
            return;
        }
        if (!mode.empty() && mode != "helper") throw LineError{fmt::format("unknown call mode '{}'", mode)};
        if (ops.size() != 1) throw LineError{"'call' takes one helper id"};
        in.imm = parse_imm32(ops[0]);
        out_.push_back(in);
    }

    void emit(const OpInfo& row, const std::vector<std::string>& ops, std::size_t line_no) {
        Insn in;
        in.code = row.code;
        switch (row.disc) {
        case Disc::OFF: in.off = static_cast<int16_t>(row.dval); break;
        case Disc::IMM: in.imm = row.dval; break;
        case Disc::SRC: in.src = static_cast<uint8_t>(row.dval); break;
        case Disc::NONE: break;
        }
        const auto m = row.mnemonic;
        switch (row.form) {
        case Form::ALU_K:
            need(ops, 2, m);
            in.dst = parse_reg(ops[0]);
            in.imm = parse_imm32(ops[1]);
            break;
        case Form::ALU_X:
        case Form::MOVSX:
            need(ops, 2, m);
            in.dst = parse_reg(ops[0]);
            in.src = parse_reg(ops[1]);
            break;
        case Form::NEG:
        case Form::END:
        case Form::CALLX:
            need(ops, 1, m);
            in.dst = parse_reg(ops[0]);
            break;
        case Form::JA:
        case Form::JA32:
        case Form::MAY_GOTO:
            need(ops, 1, m);
            out_.push_back(in);
            target(ops[0], row.form == Form::JA32, line_no);
            return;
        case Form::JCOND_K:
        case Form::JCOND_X:
            need(ops, 3, m);
            in.dst = parse_reg(ops[0]);
            if (row.form == Form::JCOND_X) in.src = parse_reg(ops[1]);
            else in.imm = parse_imm32(ops[1]);
            out_.push_back(in);
            target(ops[2], false, line_no);
            return;
        case Form::EXIT:
            need(ops, 0, m);
            break;
        case Form::LDDW:
            need(ops, 2, m);
            return lddw(parse_reg(ops[0]), ops[1], line_no);
        case Form::LDABS:
            need(ops, 1, m);
            in.imm = parse_imm32(ops[0]);
            break;
        case Form::LDIND:
            need(ops, 2, m);
            in.src = parse_reg(ops[0]);
            in.imm = parse_imm32(ops[1]);
            break;
        case Form::LDX:
        case Form::LDXS:
        case Form::LOAD_ACQ: {
            need(ops, 2, m);
            in.dst = parse_reg(ops[0]);
            auto [r, o] = parse_mem(ops[1]);
            in.src = r;
            in.off = o;
            break;
        }
        case Form::ST: {
            need(ops, 2, m);
            auto [r, o] = parse_mem(ops[0]);
            in.dst = r;
            in.off = o;
            in.imm = parse_imm32(ops[1]);
            break;
        }
        case Form::STX:
        case Form::ATOMIC:
        case Form::STORE_REL: {
            need(ops, 2, m);
            auto [r, o] = parse_mem(ops[0]);
            in.dst = r;
            in.off = o;
            in.src = parse_reg(ops[1]);
            break;
        }
        case Form::CALL:
        case Form::CALL_LOCAL:
        case Form::CALL_KFUNC:
            throw LineError{"internal: call rows are assembled by call()"};
        }
        out_.push_back(in);
    }

    // lddw %rN, 0x1122334455667788 | map_fd(3) | map_value(3, 16) | btf_id(7) | func(+3|label) | map_idx(0) | map_idx_value(0, 8)
    void lddw(uint8_t dst, const std::string& value, std::size_t line_no) {
        Insn lo, hi;
        lo.code = 0x18;
        lo.dst = dst;
        auto paren = value.find('(');
        if (paren == std::string::npos) {
            const uint64_t v = static_cast<uint64_t>(parse_int(value, "64-bit immediate"));
            lo.imm = static_cast<int32_t>(static_cast<uint32_t>(v));
            hi.imm = static_cast<int32_t>(static_cast<uint32_t>(v >> 32));
            out_.push_back(lo);
            out_.push_back(hi);
            return;
        }
        if (value.back() != ')') throw LineError{fmt::format("malformed lddw operand '{}'", value)};
        std::string kind = trim(value.substr(0, paren));
        auto args = split_operands(value.substr(paren + 1, value.size() - paren - 2));
        const OpInfo* row = nullptr;
        for (const auto& r : op_table())
            if (r.form == Form::LDDW && r.op != Op::LDDW && r.symbol == kind) row = &r;
        if (!row) throw LineError{fmt::format("unknown lddw pseudo source '{}'", kind)};
        lo.src = static_cast<uint8_t>(row->dval);
        const bool two = row->op == Op::LDDW_MAP_VALUE || row->op == Op::LDDW_MAP_IDX_VALUE;
        const bool optional_two = row->op == Op::LDDW_BTF_ID;   // btf_id(id[, module fd])
        if (args.size() != (two ? 2u : 1u) && !(optional_two && args.size() == 2))
            throw LineError{fmt::format("'{}' takes {} argument(s)", kind, two ? 2 : 1)};
        if (args.size() == 2) hi.imm = parse_imm32(args[1]);
        out_.push_back(lo);
        out_.push_back(hi);
        if (row->op == Op::LDDW_FUNC) {
            const std::string& t = args[0];
            if (!t.empty() && (t[0] == '+' || t[0] == '-')) out_[out_.size() - 2].imm = parse_imm32(t);
            else pending_.push_back({out_.size() - 2, t, true, line_no});
        } else {
            out_[out_.size() - 2].imm = parse_imm32(args[0]);
        }
    }

    std::string file_;
    std::unordered_multimap<std::string, const OpInfo*> by_mnemonic_;
    std::map<std::string, std::size_t> labels_;
    std::vector<Pending> pending_;
    std::vector<Insn> out_;
};

}  // namespace

Result<std::vector<Insn>> assemble(std::string_view text, std::string_view filename) {
    return catch_error([&] { return Assembler(filename).run(text); });
}

}  // namespace bpfsim::vm
