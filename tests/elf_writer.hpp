// A minimal ELF64 relocatable writer for tests that build BPF objects by hand (the network
// helper tests, the ELF fuzz target's seeds): sections in order, the last one .shstrtab.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace bpfsim::testing {

struct ElfSection {
    uint32_t name, type;   // offset in .shstrtab, SHT_*
    uint64_t flags;
    std::vector<uint8_t> data;
    uint32_t link = 0, info = 0;
    uint64_t entsize = 0;
};

inline std::vector<uint8_t> write_elf(const std::vector<ElfSection>& secs) {
    std::vector<uint8_t> out(sizeof(Elf64_Ehdr), 0);
    std::vector<Elf64_Shdr> headers;
    for (const auto& s : secs) {
        while (out.size() % 8) out.push_back(0);
        Elf64_Shdr h{};
        h.sh_name = s.name;
        h.sh_type = s.type;
        h.sh_flags = s.flags;
        h.sh_offset = s.type == SHT_NULL ? 0 : out.size();
        h.sh_size = s.data.size();
        h.sh_link = s.link;
        h.sh_info = s.info;
        h.sh_addralign = s.type == SHT_NULL ? 0 : 8;
        h.sh_entsize = s.entsize;
        out.insert(out.end(), s.data.begin(), s.data.end());
        headers.push_back(h);
    }
    while (out.size() % 8) out.push_back(0);
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_REL;
    eh.e_machine = EM_BPF;
    eh.e_version = EV_CURRENT;
    eh.e_shoff = out.size();
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = static_cast<uint16_t>(secs.size());
    eh.e_shstrndx = static_cast<uint16_t>(secs.size() - 1);
    std::memcpy(out.data(), &eh, sizeof eh);
    for (const auto& h : headers) {
        const auto* p = reinterpret_cast<const uint8_t*>(&h);
        out.insert(out.end(), p, p + sizeof h);
    }
    return out;
}

}  // namespace bpfsim::testing
