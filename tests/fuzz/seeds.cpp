// Writes the seed corpora of the fuzz targets into OUT/TARGET/ (the build directory, never the
// repository): the shared sample objects and the build's own (elf, core), their .BTF and
// .BTF.ext sections (btf, btf_ext), the scenarios of the source tree (scenario), and the
// conformance suite's programs as assembly (asm) and as bytecode (verifier_soundness,
// engines_agree, in the raw-program form those targets read).
//
//   fuzz_seeds OUT SHARED_DIR SOURCE_DIR CORPUS_DIR
#include "harness/harness.hpp"
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using namespace bpfsim;

namespace {

constexpr std::size_t kMaxObject = 256 * 1024;   // the elf and core targets' -max_len

std::vector<uint8_t> read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::map<std::string, std::size_t> written;

void put(const fs::path& out, const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    fs::create_directories(out / target);
    std::string safe = name;
    std::replace_if(safe.begin(), safe.end(), [](char c) { return c == '/' || c == ' '; }, '_');
    std::ofstream(out / target / safe, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ++written[target];
}

void objects(const fs::path& out, const fs::path& dir, const std::string& prefix) {
    if (!fs::exists(dir)) return;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".o") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        const std::vector<uint8_t> bytes = read(f);
        const std::string name = prefix + fs::relative(f, dir).string();
        if (bytes.size() <= kMaxObject) put(out, "elf", name, bytes);
        auto elf = harness::ElfFile::from_bytes(bytes, f.string());
        if (!elf) continue;
        const harness::ElfSection* btf = elf->section(".BTF");
        const harness::ElfSection* ext = elf->section(".BTF.ext");
        if (btf && btf->data.size() <= kMaxObject) put(out, "btf", name, btf->data);
        if (btf && ext && btf->data.size() + ext->data.size() <= kMaxObject) {
            std::vector<uint8_t> both(4);
            const auto n = static_cast<uint32_t>(btf->data.size());
            for (int i = 0; i < 4; ++i) both[i] = static_cast<uint8_t>(n >> (8 * i));
            both.insert(both.end(), btf->data.begin(), btf->data.end());
            both.insert(both.end(), ext->data.begin(), ext->data.end());
            put(out, "btf_ext", name, both);
            if (bytes.size() <= kMaxObject) put(out, "core", name, bytes);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        fmt::print(stderr, "usage: fuzz_seeds OUT SHARED_DIR SOURCE_DIR CORPUS_DIR\n");
        return 2;
    }
    // Written beside OUT, then put in place target by target: another run may be reading them.
    const fs::path final_out = argv[1], shared = argv[2], source = argv[3], corpus = argv[4];
    const fs::path out = final_out.string() + ".new";
    fs::remove_all(out);
    objects(out, shared / "corpus" / "ebpf-samples", "");
    objects(out, corpus, "build_");

    for (const fs::path& dir : {source / "corpus", source / "tests" / "scenarios"})
        for (const auto& e : fs::recursive_directory_iterator(dir))
            if (e.is_regular_file() && e.path().extension() == ".yaml")
                put(out, "scenario", fs::relative(e.path(), source).string(), read(e.path()));

    std::vector<fs::path> data;
    for (const auto& e : fs::directory_iterator(shared / "conformance"))
        if (e.path().extension() == ".data") data.push_back(e.path());
    std::sort(data.begin(), data.end());
    for (const auto& f : data) {
        auto c = harness::parse_conformance(f);
        if (!c) continue;
        const std::string name = f.stem().string();
        if (!c->asm_text.empty()) put(out, "asm", name, std::vector<uint8_t>(c->asm_text.begin(), c->asm_text.end()));
        std::vector<vm::Insn> insns;
        if (!c->asm_text.empty()) {
            if (auto a = vm::assemble(c->asm_text, f.string())) insns = *a;
        }
        if (insns.empty())
            for (uint64_t w : c->raw) insns.push_back(vm::Insn::from_raw(w));
        if (insns.empty()) continue;
        std::vector<uint8_t> code;
        for (const auto& in : insns)
            for (int i = 0; i < 8; ++i) code.push_back(static_cast<uint8_t>(in.raw() >> (8 * i)));
        // engines_agree: mode 0 (raw program), 64 bytes of buffer, a 16-bit budget, the code.
        std::vector<uint8_t> e{0};
        std::vector<uint8_t> mem = c->mem;
        mem.resize(64);
        e.insert(e.end(), mem.begin(), mem.end());
        e.push_back(0xff);
        e.push_back(0x7f);
        e.insert(e.end(), code.begin(), code.end());
        put(out, "engines_agree", name, e);
        // verifier_soundness: mode 0 (raw program), xdp, a 14-byte packet, the code.
        std::vector<uint8_t> v{0, 0, 14};
        v.insert(v.end(), mem.begin(), mem.begin() + 14);
        v.insert(v.end(), code.begin(), code.end());
        put(out, "verifier_soundness", name, v);
    }
    fs::create_directories(final_out);
    for (const auto& [t, n] : written) {
        const fs::path old = final_out / (t + ".old");
        fs::remove_all(old);
        if (fs::exists(final_out / t)) fs::rename(final_out / t, old);
        fs::rename(out / t, final_out / t);
        fs::remove_all(old);
        fmt::print("  {:<20} {} seeds\n", t, n);
    }
    fs::remove_all(out);
    return 0;
}
