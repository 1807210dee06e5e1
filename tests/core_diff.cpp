// Differential test of CO-RE relocation against libbpf: for every object with CO-RE
// relocations in the given files and directories, libbpf relocates it against a target
// BTF (tests/core_oracle.c, which prints libbpf's debug log) and so does btf::core_relocate
// + btf::core_patch; the two logs must agree line for line, relocation by relocation:
// the local spec, every candidate (matching or not, with its spec), "no matching targets",
// the patched values ("patched insn #3 (LDX/ST/STX) off 12 -> 16", memory size changes)
// and poisonings; a relocation libbpf fails must fail here too.
//
// Each entry program is relocated on its own (libbpf with every other program's autoload
// off), with one candidate cache for the run as libbpf has, so a failed relocation only
// hides the rest of its program. Objects with type_exists relocations are also compared
// with all of them turned into type_matches (clang 14 cannot emit those).
//
// usage: core_diff --oracle PATH [--target BTF] [--verbose] OBJ_OR_DIR...
// The target is raw BTF (default /sys/kernel/btf/vmlinux) or an ELF object's .BTF.
// Exit 0 when everything agrees, 1 on a difference, 77 (ctest: skipped) when the oracle
// cannot run here (no libbpf oracle, no target BTF, no bpf() permission).
#include "btf/core.hpp"
#include "harness/harness.hpp"

#include <fmt/format.h>

#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

extern char** environ;

namespace fs = std::filesystem;
using namespace bpfsim;

namespace {

bool g_verbose = false;

struct Output {
    int status = -1;   // exit status, -1 when it did not exit normally
    std::string out;
};

// Runs a program and captures its stdout (stderr is passed through).
std::optional<Output> run(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return std::nullopt;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return std::nullopt;
    }
    Output o;
    char buf[65536];
    for (ssize_t n; (n = read(pipefd[0], buf, sizeof buf)) > 0;) o.out.append(buf, static_cast<std::size_t>(n));
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// ───────────────────────── the logs, normalised ─────────────────────────

// One relocation's lines, keyed "prog 'X': relo #N". Errors become the single line
// "FAILED": libbpf's warnings and ours are worded differently.
struct RunLog {
    std::map<std::string, std::vector<std::string>> relos;
    std::vector<std::string> order;
    bool reached = false;   // libbpf got to CO-RE relocation
    bool failed = false;

    std::vector<std::string>& at(const std::string& key) {
        auto it = relos.find(key);
        if (it == relos.end()) {
            order.push_back(key);
            it = relos.emplace(key, std::vector<std::string>{}).first;
        }
        return it->second;
    }
};

// The debug lines of libbpf that core_relocate and core_patch reproduce.
bool kept_line(std::string_view rest) {
    static constexpr std::string_view prefixes[] = {"<", "matching candidate", "non-matching candidate", "no matching targets found",
                                                    "patched insn", "substituting insn"};
    for (auto p : prefixes)
        if (rest.starts_with(p)) return true;
    return rest.starts_with("insn #") && rest.find("accesses field incorrectly") != std::string_view::npos;
}

RunLog parse_oracle(const std::string& out) {
    RunLog log;
    std::vector<std::string> pending;   // "CO-RE relocating ..." lines, before their relocation's
    for (const auto& l : lines(out)) {
        if (!l.starts_with("log ")) continue;
        const std::string line = l.substr(4);
        if (line.starts_with("sec '") && line.find("CO-RE relocations") != std::string::npos) {
            log.reached = true;
            continue;
        }
        if (line.starts_with("CO-RE relocating")) {
            pending.push_back(line);
            continue;
        }
        if (line.starts_with("failed to perform CO-RE relocations")) {
            log.failed = true;
            continue;
        }
        if (!line.starts_with("prog '")) continue;
        const auto relo = line.find("': relo #");
        if (relo == std::string::npos) continue;
        const auto colon = line.find(": ", relo + 9);
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, colon);
        const std::string_view rest = std::string_view(line).substr(colon + 2);
        log.reached = true;
        auto& v = log.at(key);
        for (auto& p : pending) v.push_back(std::move(p));
        pending.clear();
        if (rest.starts_with("failed to relocate") || rest.starts_with("failed to patch insn")) {
            v = {"FAILED"};
            log.failed = true;
        } else if (kept_line(rest)) {
            v.emplace_back(rest);
        }
    }
    return log;
}

// ───────────────────────────── objects ─────────────────────────────

struct Function {
    std::string name;
    std::string section;
    std::size_t first = 0, count = 0;   // instructions in the section
    bool entry = false;                 // an entry program (not in .text)
};

struct Relo {
    std::string object;                 // the file as named in reports
    std::string section;
    std::size_t index = 0;              // in its section
    btf::CoreRelo relo;
    std::string function;
};

struct Stats {
    int objects = 0, unopened = 0, variants = 0, runs = 0, runs_unreached = 0;
    std::map<std::string, int> kinds;   // compared relocations per kind
    int compared = 0, agreeing = 0, poisoned = 0, failed = 0;
    std::vector<std::string> differences, notes;
};

// The .BTF.ext section's file offset and size in a little-endian ELF64 object.
std::optional<std::pair<std::size_t, std::size_t>> btf_ext_location(const std::vector<uint8_t>& d) {
    if (d.size() < sizeof(Elf64_Ehdr) || std::memcmp(d.data(), ELFMAG, SELFMAG) || d[EI_CLASS] != ELFCLASS64 || d[EI_DATA] != ELFDATA2LSB)
        return std::nullopt;
    Elf64_Ehdr eh;
    std::memcpy(&eh, d.data(), sizeof eh);
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff + uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr) > d.size() || eh.e_shstrndx >= eh.e_shnum)
        return std::nullopt;
    auto shdr = [&](std::size_t i) {
        Elf64_Shdr s;
        std::memcpy(&s, d.data() + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof s);
        return s;
    };
    const Elf64_Shdr strs = shdr(eh.e_shstrndx);
    for (std::size_t i = 0; i < eh.e_shnum; ++i) {
        const Elf64_Shdr s = shdr(i);
        if (strs.sh_offset + s.sh_name + 9 > d.size()) continue;
        if (std::memcmp(d.data() + strs.sh_offset + s.sh_name, ".BTF.ext", 9) == 0 && s.sh_offset + s.sh_size <= d.size())
            return std::make_pair(static_cast<std::size_t>(s.sh_offset), static_cast<std::size_t>(s.sh_size));
    }
    return std::nullopt;
}

// Writes a copy of the object with every type_exists relocation turned into type_matches;
// false when it has none (or the layout is not one this understands).
bool write_type_matches_copy(const fs::path& from, const fs::path& to) {
    std::ifstream in(from, std::ios::binary);
    std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto loc = btf_ext_location(d);
    if (!loc || loc->second < 32) return false;
    auto u32 = [&](std::size_t at) {
        uint32_t v = 0;
        if (at + 4 <= d.size()) std::memcpy(&v, d.data() + at, 4);
        return v;
    };
    const std::size_t base = loc->first;
    const uint32_t hdr_len = u32(base + 4);
    if (hdr_len < 32) return false;
    const std::size_t start = base + hdr_len + u32(base + 24), end = start + u32(base + 28);
    if (end > base + loc->second || end <= start + 4) return false;
    const uint32_t rec = u32(start);
    if (rec < 16) return false;
    int changed = 0;
    for (std::size_t at = start + 4; at + 8 <= end;) {
        const uint32_t n = u32(at + 4);
        at += 8;
        for (uint32_t i = 0; i < n && at + rec <= end; ++i, at += rec) {
            if (u32(at + 12) == static_cast<uint32_t>(btf::CoreReloKind::TypeExists)) {
                const uint32_t k = static_cast<uint32_t>(btf::CoreReloKind::TypeMatches);
                std::memcpy(d.data() + at + 12, &k, 4);
                ++changed;
            }
        }
    }
    if (!changed) return false;
    std::ofstream out(to, std::ios::binary);
    out.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
    return static_cast<bool>(out);
}

class Differ {
public:
    Differ(std::string oracle, fs::path target_path, const btf::Btf& target) : oracle_(std::move(oracle)), target_path_(std::move(target_path)), target_(target) {}

    // 0: compared (or nothing to compare), 77: the oracle cannot run here.
    int object(const fs::path& path, const std::string& label) {
        auto elf = harness::ElfFile::open(path);
        if (!elf) return 0;
        const auto* bs = elf->section(".BTF");
        const auto* xs = elf->section(".BTF.ext");
        if (!bs || !xs) return 0;
        auto local = btf::Btf::parse(bs->data, path.string());
        if (!local) return 0;
        auto ext = btf::parse_ext(xs->data, *local, path.string());
        if (!ext) return 0;
        std::size_t n = 0;
        for (const auto& s : ext->sections) n += s.relos.size();
        if (n == 0) return 0;
        ++stats.objects;

        auto listed = run({oracle_, path.string(), target_path_.string(), "--list"});
        if (!listed) {
            std::cerr << "core_diff: cannot run " << oracle_ << "\n";
            return 77;
        }
        if (listed->status != 0) {
            ++stats.unopened;
            stats.notes.push_back(fmt::format("{}: libbpf cannot open it ({} relocations not compared)", label, n));
            return 0;
        }
        std::vector<std::string> progs;
        for (const auto& l : lines(listed->out))
            if (l.starts_with("prog ")) progs.push_back(l.substr(5, l.find(' ', 5) - 5));

        const auto functions = function_table(*elf);
        for (const auto& p : progs) {
            auto o = run({oracle_, path.string(), target_path_.string(), p});
            if (!o) return 77;
            if (o->status == 77) {
                std::cerr << "core_diff: libbpf could not use bpf() here (no permission?)\n";
                return 77;
            }
            RunLog theirs = parse_oracle(o->out);
            ++stats.runs;
            if (!theirs.reached) {
                ++stats.runs_unreached;
                stats.notes.push_back(fmt::format("{}: program '{}': libbpf stopped before CO-RE relocation", label, p));
                continue;
            }
            std::map<std::string, Relo> which;
            RunLog ours = simulate(*elf, *local, *ext, functions, p, label, which);
            compare(label, p, theirs, ours, which);
        }
        return 0;
    }

    Stats stats;

private:
    // Every function of every executable section: entry programs, and .text subprograms.
    static std::vector<Function> function_table(const harness::ElfFile& elf) {
        std::vector<Function> out;
        for (const auto& sym : elf.symbols()) {
            if (sym.type != STT_FUNC || sym.size == 0) continue;
            const harness::ElfSection* s = elf.section(sym.section);
            if (!s || !(s->flags & SHF_EXECINSTR)) continue;
            out.push_back({sym.name, s->name, static_cast<std::size_t>(sym.value / 8), static_cast<std::size_t>(sym.size / 8), s->name != ".text"});
        }
        return out;
    }

    // What libbpf does for one run: the relocations of `prog` and of the .text subprograms,
    // section by section in the order of the core_relo block, one candidate cache, stopping
    // at the first error.
    RunLog simulate(const harness::ElfFile& elf, const btf::Btf& local, const btf::Ext& ext, const std::vector<Function>& functions,
                    const std::string& prog, const std::string& label, std::map<std::string, Relo>& which) {
        RunLog log;
        btf::CoreCandCache cache;
        std::map<std::string, std::vector<vm::Insn>> code;   // patched copies of the sections
        std::vector<std::string> order = ext.core_relo_order;
        for (const auto& s : ext.sections)
            if (!s.relos.empty() && std::find(order.begin(), order.end(), s.name) == order.end()) order.push_back(s.name);
        for (const auto& name : order) {
            const btf::ExtSection* es = ext.find(name);
            const harness::ElfSection* sec = elf.section(name);
            if (!es || !sec) continue;
            auto& insns = code[name];
            if (insns.empty()) {
                insns.resize(sec->data.size() / 8);
                std::memcpy(insns.data(), sec->data.data(), insns.size() * 8);
            }
            for (std::size_t i = 0; i < es->relos.size(); ++i) {
                const btf::CoreRelo& r = es->relos[i];
                const Function* f = nullptr;
                for (const auto& fn : functions)
                    if (fn.section == name && r.insn >= fn.first && r.insn < fn.first + fn.count) f = &fn;
                if (!f) continue;                                // libbpf: an eliminated weak subprogram
                if (f->entry && f->name != prog) continue;       // autoload off
                const std::string key = fmt::format("prog '{}': relo #{}", f->name, i);
                which[key] = {label, name, i, r, f->name};
                auto& v = log.at(key);
                Location where;
                where.file = label;
                where.section = name;
                where.pc = r.insn - f->first;
                auto res = btf::core_relocate(local, target_, r, &cache, where);
                if (!res) {
                    if (g_verbose) std::cout << "  ours: " << key << ": " << res.error().describe() << "\n";
                    v = {"FAILED"};
                    log.failed = true;
                    return log;
                }
                v.insert(v.end(), res->log.begin(), res->log.end());
                auto patch = btf::core_patch(insns.data() + f->first, f->count, r.insn - f->first, r, *res, where);
                if (!patch) {
                    if (g_verbose) std::cout << "  ours: " << key << ": " << patch.error().describe() << "\n";
                    v = {"FAILED"};
                    log.failed = true;
                    return log;
                }
                v.insert(v.end(), patch->log.begin(), patch->log.end());
            }
        }
        return log;
    }

    void compare(const std::string& label, const std::string& prog, const RunLog& theirs, const RunLog& ours,
                 const std::map<std::string, Relo>& which) {
        std::set<std::string> keys;
        for (const auto& [k, _] : theirs.relos) keys.insert(k);
        for (const auto& [k, _] : ours.relos) keys.insert(k);
        static const std::vector<std::string> none;
        for (const auto& k : keys) {
            const auto t = theirs.relos.find(k), o = ours.relos.find(k);
            const auto& tv = t == theirs.relos.end() ? none : t->second;
            const auto& ov = o == ours.relos.end() ? none : o->second;
            const auto w = which.find(k);
            const std::string id = w == which.end() ? fmt::format("{}: run '{}': {}", label, prog, k)
                                                    : fmt::format("{}: section '{}': relo #{}", label, w->second.section, w->second.index);
            if (g_verbose) {
                std::cout << id << " (run '" << prog << "')\n";
                for (const auto& l : tv) std::cout << "  libbpf: " << l << "\n";
                for (const auto& l : ov) std::cout << "  bpfsim: " << l << "\n";
            }
            const bool same = tv == ov;
            auto [it, fresh] = seen_.emplace(id, same);
            if (!fresh) {
                if (!same && it->second) {   // agreed in an earlier run, not in this one
                    it->second = false;
                    --stats.agreeing;
                    record_difference(id, prog, tv, ov);
                }
                continue;
            }
            ++stats.compared;
            if (w != which.end()) ++stats.kinds[std::string(btf::to_string(w->second.relo.kind))];
            const bool failed = !ov.empty() && ov.back() == "FAILED";
            stats.failed += failed;
            stats.poisoned += !failed && std::any_of(ov.begin(), ov.end(), [](const std::string& l) { return l.starts_with("substituting insn"); });
            if (same)
                ++stats.agreeing;
            else
                record_difference(id, prog, tv, ov);
        }
    }

    void record_difference(const std::string& id, const std::string& prog, const std::vector<std::string>& tv, const std::vector<std::string>& ov) {
        std::string d = fmt::format("{} (run '{}')", id, prog);
        for (const auto& l : tv) d += "\n      libbpf: " + l;
        if (tv.empty()) d += "\n      libbpf: (nothing)";
        for (const auto& l : ov) d += "\n      bpfsim: " + l;
        if (ov.empty()) d += "\n      bpfsim: (nothing)";
        stats.differences.push_back(std::move(d));
    }

    std::string oracle_;
    fs::path target_path_;
    const btf::Btf& target_;
    std::map<std::string, bool> seen_;   // relocation -> agreed so far
};

bool is_elf(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char m[4] = {};
    in.read(m, 4);
    return in && std::memcmp(m, ELFMAG, SELFMAG) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string oracle;
    fs::path target = "/sys/kernel/btf/vmlinux";
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--verbose") g_verbose = true;
        else if (a == "--oracle" && i + 1 < argc) oracle = argv[++i];
        else if (a == "--target" && i + 1 < argc) target = argv[++i];
        else if (a.starts_with("--")) {
            std::cerr << "usage: core_diff --oracle PATH [--target BTF] [--verbose] OBJ_OR_DIR...\n";
            return 2;
        } else inputs.emplace_back(a);
    }
    if (oracle.empty() || access(oracle.c_str(), X_OK) != 0) {
        std::cout << "core_diff: no libbpf oracle (" << (oracle.empty() ? "--oracle not given" : oracle) << "); skipped\n";
        return 77;
    }
    if (!fs::exists(target)) {
        std::cout << "core_diff: no target BTF at " << target << "; skipped\n";
        return 77;
    }
    // The target: raw BTF, or the .BTF of an ELF object (as libbpf's btf__parse takes both).
    auto tb = [&]() -> Result<btf::Btf> {
        if (!is_elf(target)) return btf::Btf::load_file(target);
        auto elf = harness::ElfFile::open(target);
        if (!elf) return elf.error();
        const auto* s = elf->section(".BTF");
        if (!s) return Error(ErrorCode::NotFound, "no .BTF section", Location{target.string(), {}, {}, {}, {}});
        return btf::Btf::parse(s->data, target.string());
    }();
    if (!tb) {
        std::cerr << "core_diff: " << tb.error().describe() << "\n";
        return 1;
    }

    std::vector<fs::path> files;
    for (const auto& in : inputs) {
        std::error_code ec;
        if (fs::is_directory(in, ec)) {
            for (const auto& e : fs::recursive_directory_iterator(in, ec))
                if (e.is_regular_file() && is_elf(e.path())) files.push_back(e.path());
        } else if (fs::is_regular_file(in, ec)) {
            files.push_back(in);
        } else {
            std::cout << "core_diff: " << in << " does not exist; ignored\n";
        }
    }
    std::sort(files.begin(), files.end());

    char tmpl[] = "/tmp/core_diff.XXXXXX";
    const char* tmp = mkdtemp(tmpl);
    if (!tmp) {
        std::cerr << "core_diff: mkdtemp: " << std::strerror(errno) << "\n";
        return 1;
    }

    Differ d(oracle, target, *tb);
    int rc = 0;
    for (const auto& f : files) {
        if ((rc = d.object(f, f.string())) == 77) break;
        const fs::path copy = fs::path(tmp) / (f.stem().string() + "+matches.o");
        if (write_type_matches_copy(f, copy)) {
            ++d.stats.variants;
            if ((rc = d.object(copy, f.string() + " (type_exists as type_matches)")) == 77) break;
        }
    }
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (rc == 77) {
        std::cout << "core_diff: the libbpf oracle cannot run here; skipped\n";
        return 77;
    }

    const Stats& s = d.stats;
    std::cout << fmt::format("objects with CO-RE relocations: {} (+{} with type_exists turned into type_matches), {} libbpf could not open\n",
                             s.objects - s.variants, s.variants, s.unopened);
    std::cout << fmt::format("libbpf runs (one per program): {}, {} stopped before CO-RE\n", s.runs, s.runs_unreached);
    std::cout << fmt::format("relocations compared: {}, agreeing: {}, differing: {} ({} poisoned, {} failing the load)\n", s.compared, s.agreeing,
                             s.compared - s.agreeing, s.poisoned, s.failed);
    std::string kinds;
    for (const auto& [k, n] : s.kinds) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", k, n);
    std::cout << "by kind: " << kinds << "\n";
    for (const auto& n : s.notes) std::cout << "note: " << n << "\n";
    for (const auto& diff : s.differences) std::cout << "DIFFERENT: " << diff << "\n";
    if (s.compared == 0) {
        std::cout << "core_diff: nothing was compared; skipped\n";
        return 77;
    }
    return s.differences.empty() ? 0 : 1;
}
