// ElfFile: the raw view of a BPF ELF object, through libelf.
#include "harness/harness.hpp"

#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bpfsim::harness {

namespace {

#ifndef EM_BPF
#define EM_BPF 247
#endif

struct ElfHandle {
    Elf* elf = nullptr;
    ~ElfHandle() {
        if (elf) elf_end(elf);
    }
};

[[noreturn]] void elf_fail(const std::string& file, const std::string& section, const std::string& what) {
    Location loc;
    loc.file = file;
    loc.section = section;
    throw Error(ErrorCode::InvalidElf, what, loc);
}

std::string libelf_msg() {
    const char* m = elf_errmsg(-1);
    return m ? m : "unknown libelf error";
}

}  // namespace

Result<ElfFile> ElfFile::open(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        Location loc;
        loc.file = path.string();
        return Error(ErrorCode::Io, fmt::format("cannot open file: {}", std::strerror(errno)), loc);
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return from_bytes(std::move(bytes), path.string());
}

Result<ElfFile> ElfFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
    return catch_error([&]() -> ElfFile {
        if (elf_version(EV_CURRENT) == EV_NONE) elf_fail(name, "", "libelf initialisation failed");
        if (bytes.size() < EI_NIDENT || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0)
            elf_fail(name, "", "not an ELF file (bad magic)");
        ElfHandle h;
        h.elf = elf_memory(reinterpret_cast<char*>(bytes.data()), bytes.size());
        if (!h.elf || elf_kind(h.elf) != ELF_K_ELF) elf_fail(name, "", "cannot parse ELF: " + libelf_msg());
        GElf_Ehdr eh;
        if (!gelf_getehdr(h.elf, &eh)) elf_fail(name, "", "cannot read ELF header: " + libelf_msg());
        if (eh.e_ident[EI_CLASS] != ELFCLASS64) elf_fail(name, "", "not a 64-bit ELF object");
        // Old clang releases wrote EM_NONE into BPF objects; libbpf accepts both.
        if (eh.e_machine != EM_BPF && eh.e_machine != EM_NONE)
            elf_fail(name, "", fmt::format("not a BPF object (e_machine {})", eh.e_machine));
        if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
            elf_fail(name, "", "big-endian BPF objects are not supported on this little-endian host");
        // libelf quietly shows no sections when the table is cut off; say so instead.
        if (eh.e_shnum == 0 && eh.e_shoff == 0) elf_fail(name, "", "object has no section header table");
        if (eh.e_shentsize != sizeof(Elf64_Shdr)) elf_fail(name, "", fmt::format("section header size is {}, not 64", eh.e_shentsize));
        if (eh.e_shoff > bytes.size() || uint64_t(eh.e_shnum) * eh.e_shentsize > bytes.size() - eh.e_shoff)
            elf_fail(name, "", fmt::format("section header table [{:#x}, +{} entries) lies outside the file ({} bytes): truncated?",
                                           eh.e_shoff, eh.e_shnum, bytes.size()));
        std::size_t shstrndx = 0;
        if (elf_getshdrstrndx(h.elf, &shstrndx) != 0) elf_fail(name, "", "no section name table: " + libelf_msg());

        ElfFile f;
        f.path_ = name;
        Elf_Scn* scn = nullptr;
        std::vector<std::pair<Elf_Scn*, GElf_Shdr>> symtabs;
        while ((scn = elf_nextscn(h.elf, scn)) != nullptr) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh)) elf_fail(name, "", "cannot read section header: " + libelf_msg());
            ElfSection s;
            s.index = elf_ndxscn(scn);
            const char* nm = elf_strptr(h.elf, shstrndx, sh.sh_name);
            s.name = nm ? nm : fmt::format("<section {}>", s.index);
            s.type = sh.sh_type;
            s.flags = sh.sh_flags;
            s.size = sh.sh_size;
            s.link = sh.sh_link;
            s.info = sh.sh_info;
            s.entsize = sh.sh_entsize;
            if (sh.sh_type != SHT_NOBITS && sh.sh_size > 0) {
                if (sh.sh_offset > bytes.size() || sh.sh_size > bytes.size() - sh.sh_offset)
                    elf_fail(name, s.name, fmt::format("section data [{:#x}, +{:#x}) lies outside the file ({} bytes)",
                                                       sh.sh_offset, sh.sh_size, bytes.size()));
                Elf_Data* d = elf_rawdata(scn, nullptr);
                if (!d || d->d_size != sh.sh_size || (!d->d_buf && d->d_size))
                    elf_fail(name, s.name, "cannot read section data: " + libelf_msg());
                const auto* p = static_cast<const uint8_t*>(d->d_buf);
                s.data.assign(p, p + d->d_size);
            }
            if (sh.sh_type == SHT_SYMTAB) symtabs.emplace_back(scn, sh);
            f.sections_.push_back(std::move(s));
        }
        if (symtabs.size() > 1) elf_fail(name, ".symtab", "more than one symbol table");
        for (auto& [sscn, sh] : symtabs) {
            if (sh.sh_entsize != sizeof(Elf64_Sym)) elf_fail(name, ".symtab", "symbol entry size is not 24");
            Elf_Data* d = elf_getdata(sscn, nullptr);
            if (!d) elf_fail(name, ".symtab", "cannot read symbols: " + libelf_msg());
            const std::size_t count = sh.sh_size / sh.sh_entsize;
            for (std::size_t i = 0; i < count; ++i) {
                GElf_Sym sym;
                if (!gelf_getsym(d, static_cast<int>(i), &sym)) elf_fail(name, ".symtab", fmt::format("cannot read symbol {}", i));
                ElfSymbol s;
                const char* nm = elf_strptr(h.elf, sh.sh_link, sym.st_name);
                s.name = nm ? nm : "";
                s.section = sym.st_shndx;
                s.value = sym.st_value;
                s.size = sym.st_size;
                s.type = GELF_ST_TYPE(sym.st_info);
                s.bind = GELF_ST_BIND(sym.st_info);
                f.symbols_.push_back(std::move(s));
            }
        }
        return f;
    });
}

const ElfSection* ElfFile::section(std::string_view name) const {
    for (const auto& s : sections_)
        if (s.name == name) return &s;
    return nullptr;
}

const ElfSection* ElfFile::section(std::size_t index) const {
    for (const auto& s : sections_)
        if (s.index == index) return &s;
    return nullptr;
}

std::vector<ElfFile::ProgramRef> ElfFile::programs() const {
    std::vector<ProgramRef> out;
    for (const auto& s : sections_) {
        if (s.type != SHT_PROGBITS || !(s.flags & SHF_EXECINSTR) || s.size == 0) continue;
        std::vector<ProgramRef> here;
        for (const auto& sym : symbols_) {
            if (sym.section != s.index || sym.type != STT_FUNC || sym.bind != STB_GLOBAL) continue;
            if (sym.value > s.size) continue;
            const uint64_t size = sym.size && sym.size <= s.size - sym.value ? sym.size : s.size - sym.value;
            here.push_back({sym.name, s.name, s.index, sym.value, size});
        }
        if (here.empty()) here.push_back({s.name, s.name, s.index, 0, s.size});
        out.insert(out.end(), here.begin(), here.end());
    }
    return out;
}

Result<vm::Program> ElfFile::program(std::string_view name) const {
    return catch_error([&]() -> vm::Program {
        const auto all = programs();
        const ProgramRef* ref = nullptr;
        for (const auto& p : all)
            if (p.name == name) ref = &p;
        if (!ref)
            for (const auto& p : all)
                if (p.section == name) {
                    ref = &p;
                    break;
                }
        if (!ref) {
            std::string names;
            for (const auto& p : all) names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", p.name, p.section);
            Location loc;
            loc.file = path_;
            throw Error(ErrorCode::NotFound,
                        fmt::format("no program '{}'; the object has: {}", name, names.empty() ? "none" : names), loc);
        }
        const ElfSection* secp = nullptr;
        for (const auto& s : sections_)
            if (s.index == ref->section_index) secp = &s;
        const ElfSection& sec = *secp;   // programs() only lists existing sections
        if (ref->offset % 8 || ref->size % 8)
            elf_fail(path_, sec.name, fmt::format("program '{}' is not a whole number of instructions", ref->name));
        // Relocations against this section mean maps, globals or calls that need linking.
        for (const auto& s : sections_) {
            if (s.type != SHT_REL || s.name != ".rel" + sec.name || s.data.empty()) continue;
            Location loc;
            loc.file = path_;
            loc.section = sec.name;
            throw Error(ErrorCode::Unsupported,
                        fmt::format("program '{}' has relocations ({}) that need the object loader", ref->name, s.name),
                        loc);
        }
        vm::Program prog;
        prog.name = ref->name;
        prog.section = sec.name;
        prog.file = path_;
        prog.insns.resize(ref->size / 8);
        std::memcpy(prog.insns.data(), sec.data.data() + ref->offset, ref->size);
        return prog;
    });
}

}  // namespace bpfsim::harness
