// What the fuzz targets share: violations, a BPF object writer, the program generator.
#include "tests/fuzz/fuzz.hpp"
#include "../elf_writer.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace bpfsim::fuzz {

void violation(const std::string& what) { throw Violation(what); }

void check_error(const Error& e, const char* what) {
    if (e.code() == ErrorCode::Internal) violation(fmt::format("{}: internal error: {}", what, e.describe()));
    if (e.describe().empty()) violation(fmt::format("{}: an error without a message", what));
}

std::filesystem::path corpus_dir() {
    if (const char* d = std::getenv("BPFSIM_FUZZ_CORPUS_DIR"); d && *d) return d;
    return BPFSIM_CORPUS_DIR;
}

namespace {

template <class T>
void append(std::vector<uint8_t>& b, const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
}

}  // namespace

std::vector<uint8_t> object_bytes(const ObjectSpec& spec) {
    std::string strtab(1, '\0'), shstrtab(1, '\0');
    auto add_str = [](std::string& tab, std::string_view s) {
        const auto off = static_cast<uint32_t>(tab.size());
        tab.append(s).push_back('\0');
        return off;
    };
    // Sections: 1 the program, 2 license, 3 maps, 4 the program's relocations, 5 .symtab,
    // 6 .strtab, 7 .shstrtab. Symbols: 1 the program, 2.. the maps.
    std::vector<uint8_t> syms(sizeof(Elf64_Sym), 0), rels, mapdefs, code;
    Elf64_Sym prog{};
    prog.st_name = add_str(strtab, "prog");
    prog.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
    prog.st_shndx = 1;
    prog.st_size = spec.insns.size() * 8;
    append(syms, prog);
    for (std::size_t i = 0; i < spec.maps.size(); ++i) {
        const MapSpec& m = spec.maps[i];
        Elf64_Sym s{};
        s.st_name = add_str(strtab, m.name);
        s.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
        s.st_shndx = 3;
        s.st_value = i * 20;
        s.st_size = 20;
        append(syms, s);
        for (uint32_t v : {m.type, m.key_size, m.value_size, m.max_entries, m.flags}) append(mapdefs, v);
    }
    for (const auto& [pc, map] : spec.map_refs) {
        append(rels, uint64_t{pc * 8});
        append(rels, (uint64_t{2 + map} << 32) | 1);   // R_BPF_64_64
    }
    for (const auto& in : spec.insns) append(code, in.raw());
    using Sec = bpfsim::testing::ElfSection;
    std::vector<Sec> secs;
    secs.push_back({0, SHT_NULL, 0, {}});
    secs.push_back({add_str(shstrtab, spec.section), SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code});
    secs.push_back({add_str(shstrtab, "license"), SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, {'G', 'P', 'L', 0}});
    secs.push_back({add_str(shstrtab, "maps"), SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, mapdefs});
    secs.push_back({add_str(shstrtab, ".rel" + spec.section), SHT_REL, 0, rels, 5, 1, 16});
    secs.push_back({add_str(shstrtab, ".symtab"), SHT_SYMTAB, 0, syms, 6, 1, sizeof(Elf64_Sym)});
    secs.push_back({add_str(shstrtab, ".strtab"), SHT_STRTAB, 0, std::vector<uint8_t>(strtab.begin(), strtab.end())});
    const uint32_t shstr_name = add_str(shstrtab, ".shstrtab");
    secs.push_back({shstr_name, SHT_STRTAB, 0, std::vector<uint8_t>(shstrtab.begin(), shstrtab.end())});

    return bpfsim::testing::write_elf(secs);
}

// ───────────────────────────── the program generator ─────────────────────────────

std::span<const GenTarget> gen_targets() {
    using harness::ProgType;
    // Helpers every type may call, then the packet ones. The verifier decides which a type
    // really has; a refused call only makes a rejected program.
    static const std::vector<int32_t> common = {1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15, 16, 113, 112, 131, 132, 133, 130, 25, 35};
    auto with = [&](std::vector<int32_t> extra) {
        std::vector<int32_t> v = common;
        v.insert(v.end(), extra.begin(), extra.end());
        return v;
    };
    static const std::vector<GenTarget> targets = {
        {ProgType::Xdp, "xdp", 0, 4, false, with({44, 65, 54, 23, 51, 28, 189, 190})},
        {ProgType::SchedCls, "tc", 76, 80, false, with({9, 10, 11, 26, 28, 23, 50, 38, 39, 31, 34, 13, 44})},
        {ProgType::SocketFilter, "socket", 76, 80, false, with({26, 68})},
        {ProgType::CgroupSkb, "cgroup_skb/ingress", 76, 80, false, with({26, 68})},
        {ProgType::Kprobe, "kprobe/do_sys_open", -1, -1, false, with({36, 27, 67, 114, 115})},
        // Not tracepoints: the kernel lets them read up to PERF_MAX_TRACE_SIZE (and below the
        // record), which a world's record-sized context does not map.
        {ProgType::RawTracepoint, "raw_tp/sys_enter", -1, -1, false, with({114, 115, 117})},
    };
    return targets;
}

namespace {

using vm::Form;
using vm::Insn;
using vm::Op;
using vm::OpInfo;

Insn make(Op op, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    const OpInfo& oi = vm::op_info(op);
    Insn in;
    in.code = oi.code;
    in.dst = dst & 0xf;
    in.src = src & 0xf;
    in.off = off;
    in.imm = imm;
    if (oi.disc == vm::Disc::OFF) in.off = static_cast<int16_t>(oi.dval);
    if (oi.disc == vm::Disc::IMM) in.imm = oi.dval;
    if (oi.disc == vm::Disc::SRC) in.src = static_cast<uint8_t>(oi.dval);
    return in;
}

// A unit is a few instructions; one of them may be a jump whose target is decided once
// every unit's pc is known.
struct Unit {
    Unit(std::vector<Insn> i = {}) : insns(std::move(i)) {}
    std::vector<Insn> insns;
    enum class To : uint8_t { None, Forward, Back, Exit, Sub } to = To::None;
    std::size_t jump = 0;    // which insn of the unit jumps
    std::size_t dist = 0;    // Forward: units to skip; Back: units back
    std::vector<std::pair<std::size_t, std::size_t>> maps;   // insn of the unit -> map index
};

class Gen {
public:
    Gen(Reader& r, const GenTarget& t) : r_(r), t_(t) {}

    ObjectSpec run() {
        ObjectSpec spec;
        spec.section = t_.section;
        if (!t_.bare) {
            spec.maps = {{"arr", 2, 4, 48, 4, 0}, {"hash", 1, 8, 16, 8, 0}, {"rb", 27, 0, 0, 4096, 0},
                         {"pcpu", 6, 4, 8, 2, 0}, {"progs", 3, 4, 4, 2, 0}};
        }
        std::vector<Unit> units;
        // Prologue: keep the context in r6; zero the rest so the verifier sees initialised registers.
        if (!t_.bare) {
            units.push_back({{make(Op::MOV64_REG, 6, 1, 0, 0)}});
            // Mostly all of them; now and then some left uninitialised.
            const unsigned init = r_.chance(85) ? 0xff : r_.u8();
            for (uint8_t reg : {0, 2, 3, 4, 5, 7, 8, 9})
                if (init & (1u << (reg % 8))) units.push_back({{make(Op::MOV64_IMM, reg, 0, 0, 0)}});
        } else {
            for (uint8_t reg : {0, 2, 3, 4, 5, 6, 7, 8}) {
                const uint64_t v = r_.u64();
                Insn hi;
                hi.imm = static_cast<int32_t>(v >> 32);
                units.push_back({{make(Op::LDDW, reg, 0, 0, static_cast<int32_t>(v)), hi}});
            }
        }
        const unsigned n = 1 + r_.below(48);
        for (unsigned i = 0; i < n && !r_.empty(); ++i) units.push_back(unit());
        const std::size_t exit_unit = units.size();
        units.push_back({{make(Op::MOV64_IMM, 0, 0, 0, static_cast<int32_t>(r_.below(4))), make(Op::EXIT, 0, 0, 0, 0)}});
        // A subprogram for bpf2bpf calls, when there are any (unreachable code is refused):
        // mixes its arguments into r0.
        const std::size_t sub_unit = units.size();
        if (std::any_of(units.begin(), units.end(), [](const Unit& u) { return u.to == Unit::To::Sub; }))
            units.push_back({{make(Op::MOV64_REG, 0, 1, 0, 0), make(Op::XOR64_REG, 0, 2, 0, 0), make(Op::AND64_IMM, 0, 0, 0, 0xff),
                              make(Op::EXIT, 0, 0, 0, 0)}});

        std::vector<std::size_t> pc_of(units.size() + 1, 0);
        for (std::size_t i = 0; i < units.size(); ++i) pc_of[i + 1] = pc_of[i] + units[i].insns.size();
        for (std::size_t i = 0; i < units.size(); ++i) {
            Unit& u = units[i];
            std::size_t target = 0;
            switch (u.to) {
            case Unit::To::None: continue;
            case Unit::To::Forward: target = std::min(i + 1 + u.dist, exit_unit); break;
            case Unit::To::Back: target = i >= u.dist ? i - u.dist : 0; break;
            case Unit::To::Exit: target = exit_unit; break;
            case Unit::To::Sub: target = sub_unit; break;
            }
            const int64_t rel = static_cast<int64_t>(pc_of[target]) - static_cast<int64_t>(pc_of[i] + u.jump) - 1;
            Insn& j = u.insns[u.jump];
            if (j.code == 0x85) j.imm = static_cast<int32_t>(rel);
            else j.off = static_cast<int16_t>(rel);
        }
        for (std::size_t i = 0; i < units.size(); ++i) {
            for (const auto& [k, m] : units[i].maps) spec.map_refs.emplace_back(pc_of[i] + k, m);
            spec.insns.insert(spec.insns.end(), units[i].insns.begin(), units[i].insns.end());
        }
        return spec;
    }

private:
    Reader& r_;
    const GenTarget& t_;

    uint8_t reg() {   // r0-r9, r10 now and then (not for the engines: stack addresses differ)
        const unsigned v = r_.u8();
        return static_cast<uint8_t>(v >= 250 && !t_.bare ? 10 : v % 10);
    }
    uint8_t data_reg() {   // a destination: not r10; bare programs keep the buffer in r1
        static constexpr uint8_t regs[] = {0, 2, 3, 4, 5, 6, 7, 8, 9};
        return t_.bare ? regs[r_.below(std::size(regs))] : static_cast<uint8_t>(r_.u8() % 10);
    }
    int32_t imm() {
        switch (r_.below(6)) {
        case 0: return 0;
        case 1: return -1;
        case 2: return static_cast<int32_t>(r_.below(64));
        case 3: return static_cast<int32_t>(r_.below(4096)) - 2048;
        default: return static_cast<int32_t>(r_.u32());
        }
    }
    Op pick(std::initializer_list<Form> forms) {
        std::vector<Op> v;
        for (const auto& oi : vm::op_table())
            for (Form f : forms)
                if (oi.form == f) v.push_back(oi.op);
        return v[r_.below(static_cast<uint32_t>(v.size()))];
    }
    // A base register and offset for a memory access of `size` bytes: mostly the stack, the
    // context (r6 or r1), a map value (r7), the packet (r8) or a ring buffer record (r9).
    std::pair<uint8_t, int16_t> place(unsigned size) {
        const unsigned k = r_.below(10);
        int off;
        uint8_t base;
        if (k < 4) {
            base = 10;
            off = -static_cast<int>(size) * static_cast<int>(1 + r_.below(512 / size));
        } else if (t_.bare) {
            base = 1;
            off = static_cast<int>(size * r_.below(64 / size));
        } else {
            static constexpr uint8_t bases[] = {6, 7, 8, 9, 1, 0};
            base = bases[r_.below(std::size(bases))];
            off = static_cast<int>(r_.below(96));
        }
        if (r_.chance(5)) off += static_cast<int8_t>(r_.u8());   // out of bounds now and then
        return {base, static_cast<int16_t>(off)};
    }

    Unit alu() {
        const Op op = pick({Form::ALU_K, Form::ALU_X, Form::NEG, Form::MOVSX, Form::END});
        const OpInfo& oi = vm::op_info(op);
        Insn in = make(op, data_reg(), oi.form == Form::ALU_X || oi.form == Form::MOVSX ? reg() : 0, 0,
                       oi.form == Form::ALU_K || r_.chance(3) ? imm() : 0);
        const std::string_view m = oi.mnemonic;
        if (oi.form == Form::ALU_K && (m.starts_with("lsh") || m.starts_with("rsh") || m.starts_with("arsh")))
            in.imm = static_cast<int32_t>(r_.below(m.ends_with("32") ? 32 : 64));
        if (oi.form == Form::ALU_K && (m.starts_with("div") || m.starts_with("mod") || m.starts_with("sdiv") || m.starts_with("smod")) &&
            in.imm == 0)
            in.imm = 3;
        return {{in}};
    }
    Unit mem() {
        const Op op = pick({Form::LDX, Form::LDXS, Form::ST, Form::STX, Form::ATOMIC});
        const OpInfo& oi = vm::op_info(op);
        const unsigned size = oi.form == Form::ATOMIC ? (oi.code == 0xdb ? 8 : 4) : vm::code::mem_size(oi.code);
        auto [base, off] = place(size);
        if (oi.form == Form::ATOMIC && !r_.chance(5)) off = static_cast<int16_t>(off & ~(size - 1));
        switch (oi.form) {
        case Form::LDX: case Form::LDXS: return {{make(op, data_reg(), base, off, 0)}};
        case Form::ST: return {{make(op, base, 0, off, imm())}};
        default: return {{make(op, base, data_reg(), off, 0)}};
        }
    }
    Unit jump() {
        const Op op = pick({Form::JCOND_K, Form::JCOND_X});
        const bool x = vm::op_info(op).form == Form::JCOND_X;
        Unit u{{make(op, reg(), x ? reg() : 0, 0, x ? 0 : imm())}};
        const unsigned k = r_.below(10);
        u.to = k < 6 ? Unit::To::Forward : k < 9 ? Unit::To::Exit : Unit::To::Back;
        u.dist = 1 + r_.below(6);
        return u;
    }
    // `rN = data; rM = data_end; r8 = data; rK = r8 + len; if rK > rM goto exit`: r8 then
    // points at `len` checked bytes of the packet.
    Unit packet() {
        const int len = static_cast<int>(r_.below(80));
        Unit u{{make(Op::LDX_W, 8, 6, static_cast<int16_t>(t_.data_off), 0),
                make(Op::LDX_W, 3, 6, static_cast<int16_t>(t_.data_end_off), 0), make(Op::MOV64_REG, 4, 8, 0, 0),
                make(Op::ADD64_IMM, 4, 0, 0, len), make(r_.chance(80) ? Op::JGT64_REG : Op::JGE64_REG, 4, 3, 0, 0)}};
        if (r_.chance(10)) {   // the wrong way round
            u.insns[4].dst = 3;
            u.insns[4].src = 4;
        }
        u.to = Unit::To::Exit;
        u.jump = 4;
        return u;
    }
    // A map lookup with a key on the stack, r7 = the value, NULL-checked (or not, now and then).
    Unit lookup() {
        const std::size_t map = r_.chance(70) ? 0 : 1 + r_.below(4);
        Insn hi;
        Unit u{{make(Op::ST_DW, 10, 0, -8, static_cast<int32_t>(r_.below(6))), make(Op::LDDW, 1, 0, 0, 0), hi,
                make(Op::MOV64_REG, 2, 10, 0, 0), make(Op::ADD64_IMM, 2, 0, 0, -8), make(Op::CALL_HELPER, 0, 0, 0, 1)}};
        u.maps.emplace_back(1, map);
        if (!r_.chance(8)) {
            u.insns.push_back(make(Op::JEQ64_IMM, 0, 0, 0, 0));
            u.jump = u.insns.size() - 1;
            u.to = Unit::To::Exit;
        }
        u.insns.push_back(make(Op::MOV64_REG, 7, 0, 0, 0));
        return u;
    }
    // bpf_ringbuf_reserve(&rb, size, 0), NULL-checked: r9 = the record.
    Unit reserve() {
        Insn hi;
        Unit u{{make(Op::LDDW, 1, 0, 0, 0), hi, make(Op::MOV64_IMM, 2, 0, 0, static_cast<int32_t>(8 * (1 + r_.below(8)))),
                make(Op::MOV64_IMM, 3, 0, 0, 0), make(Op::CALL_HELPER, 0, 0, 0, 131), make(Op::JEQ64_IMM, 0, 0, 0, 0),
                make(Op::MOV64_REG, 9, 0, 0, 0)}};
        u.maps.emplace_back(0, 2);
        u.jump = 5;
        u.to = Unit::To::Exit;
        return u;
    }
    // A helper call with argument registers set from a few shapes the prototypes expect.
    Unit call() {
        Unit u;
        if (t_.bare) {
            static constexpr int32_t ids[] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 15};
            u.insns.push_back(make(Op::CALL_HELPER, 0, 0, 0, ids[r_.below(std::size(ids))]));
            return u;
        }
        const unsigned nargs = r_.below(6);
        for (unsigned a = 1; a <= nargs; ++a) {
            const uint8_t d = static_cast<uint8_t>(a);
            switch (r_.below(8)) {
            case 0: u.insns.push_back(make(Op::MOV64_REG, d, 6, 0, 0)); break;   // the context
            case 1: {
                Insn hi;
                u.maps.emplace_back(u.insns.size(), r_.below(5));
                u.insns.push_back(make(Op::LDDW, d, 0, 0, 0));
                u.insns.push_back(hi);
                break;
            }
            case 2:
                u.insns.push_back(make(Op::MOV64_REG, d, 10, 0, 0));
                u.insns.push_back(make(Op::ADD64_IMM, d, 0, 0, -8 * static_cast<int32_t>(1 + r_.below(16))));
                break;
            case 3: u.insns.push_back(make(Op::MOV64_REG, d, 7 + r_.below(3), 0, 0)); break;
            default: u.insns.push_back(make(Op::MOV64_IMM, d, 0, 0, static_cast<int32_t>(r_.below(r_.chance(20) ? 1024 : 17)))); break;
            }
        }
        int32_t id = t_.helpers.empty() ? 1 : t_.helpers[r_.below(static_cast<uint32_t>(t_.helpers.size()))];
        if (r_.chance(5)) id = static_cast<int32_t>(r_.below(212));
        u.insns.push_back(make(Op::CALL_HELPER, 0, 0, 0, id));
        return u;
    }
    Unit loop() {
        // r9 = count; body; r9 -= 1; if r9 != 0 goto body
        Unit u{{make(Op::MOV64_IMM, 9, 0, 0, static_cast<int32_t>(1 + r_.below(16)))}};
        const unsigned m = 1 + r_.below(4);
        for (unsigned b = 0; b < m; ++b) {
            Unit body = r_.chance(60) ? alu() : mem();
            u.insns.insert(u.insns.end(), body.insns.begin(), body.insns.end());
        }
        u.insns.push_back(make(Op::SUB64_IMM, 9, 0, 0, 1));
        u.insns.push_back(make(Op::JNE64_IMM, 9, 0, static_cast<int16_t>(-static_cast<int>(u.insns.size())), 0));
        return u;
    }
    Unit raw() {
        Insn in = Insn::from_raw(r_.u64());
        return {{in}};
    }

    Unit unit() {
        const unsigned k = r_.below(100);
        if (k < 30) return alu();
        if (k < 52) return mem();
        if (k < 62) return jump();
        if (k < 70) return t_.data_off >= 0 ? packet() : mem();
        if (k < 76) return t_.bare ? alu() : lookup();
        if (k < 79) return t_.bare ? mem() : reserve();
        if (k < 86) return call();
        if (k < 89) return loop();
        if (k < 92) {
            Unit u{{make(Op::CALL_LOCAL, 0, 1, 0, 0)}};
            u.to = Unit::To::Sub;
            return u;
        }
        if (k < 94) return {{make(Op::MAY_GOTO, 0, 0, 0, 0)}};
        if (k < 96) {   // an early exit, jumped over (code after an unconditional exit is unreachable)
            const Op op = pick({Form::JCOND_K});
            return {{make(op, reg(), 0, 2, imm()), make(Op::MOV64_IMM, 0, 0, 0, static_cast<int32_t>(r_.below(4))), make(Op::EXIT, 0, 0, 0, 0)}};
        }
        return raw();
    }
};

}  // namespace

ObjectSpec generate(Reader& r, const GenTarget& t) { return Gen(r, t).run(); }

}  // namespace bpfsim::fuzz
