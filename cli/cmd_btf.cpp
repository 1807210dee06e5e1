// `bpfsim btf dump FILE [--format c|raw] [--json] [--base FILE]`: bpftool's `btf dump file`.
// `bpfsim btf record --from KERNEL_BTF --for OBJ... -o OUT`: bpftool's `gen min_core_btf`.
//
// FILE is raw BTF (/sys/kernel/btf/vmlinux, a module's /sys/kernel/btf/NAME) or an ELF file
// with a .BTF section (a BPF object, a kernel module, a vmlinux image). Split BTF needs its
// base: --base FILE (bpftool's -B), or, as bpftool does, /sys/kernel/btf/vmlinux for the
// other files of /sys/kernel/btf/. The output is byte-identical to bpftool's.
#include "btf/dump.hpp"
#include "btf/record.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace po = boost::program_options;

namespace bpfsim {

namespace {

[[noreturn]] void file_error(ErrorCode code, const std::string& file, std::string message) {
    Location loc;
    loc.file = file;
    throw Error(code, std::move(message), loc);
}

// A file's bytes: mapped (copy-on-write) when it can be, else read. Mapping is much cheaper
// than reading into fresh memory for vmlinux's 5 MB, and /sys/kernel/btf files map too.
class Input {
public:
    explicit Input(const std::string& path) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) file_error(ErrorCode::Io, path, fmt::format("cannot open: {}", std::strerror(errno)));
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
            if (m != MAP_FAILED) {
                map_ = static_cast<uint8_t*>(m);
                size_ = static_cast<std::size_t>(st.st_size);
                ::close(fd);
                return;
            }
        }
        // Not mappable (a pipe, an old sysfs): read it, the size being only a hint.
        owned_.resize(st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1 : 1 << 16);
        std::size_t got = 0;
        for (;;) {
            const ssize_t n = ::read(fd, owned_.data() + got, owned_.size() - got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int err = errno;
                ::close(fd);
                file_error(ErrorCode::Io, path, fmt::format("read error: {}", std::strerror(err)));
            }
            if (n == 0) break;
            got += static_cast<std::size_t>(n);
            if (got == owned_.size()) owned_.resize(owned_.size() * 2);
        }
        ::close(fd);
        owned_.resize(got);
        size_ = got;
    }
    Input(const Input&) = delete;
    Input& operator=(const Input&) = delete;
    ~Input() {
        if (map_) ::munmap(map_, size_);
    }
    uint8_t* data() { return map_ ? map_ : owned_.data(); }
    std::size_t size() const { return size_; }

private:
    uint8_t* map_ = nullptr;
    std::vector<uint8_t> owned_;
    std::size_t size_ = 0;
};

// A section of an ELF file, any machine or class, or nullopt when there is none. Sets the
// pointer size from the ELF class, as libbpf does.
std::optional<std::span<const uint8_t>> elf_section(const std::string& path, Input& file, const char* want, uint32_t& pointer_size) {
    if (elf_version(EV_CURRENT) == EV_NONE) file_error(ErrorCode::Internal, path, "libelf initialisation failed");
    Elf* elf = elf_memory(reinterpret_cast<char*>(file.data()), file.size());
    if (!elf) file_error(ErrorCode::InvalidElf, path, fmt::format("cannot parse ELF: {}", elf_errmsg(-1)));
    struct Closer {
        Elf* e;
        ~Closer() { elf_end(e); }
    } closer{elf};
    if (elf_kind(elf) != ELF_K_ELF) file_error(ErrorCode::InvalidElf, path, "not an ELF object");
    std::size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) file_error(ErrorCode::InvalidElf, path, fmt::format("no section name table: {}", elf_errmsg(-1)));
    pointer_size = gelf_getclass(elf) == ELFCLASS32 ? 4 : 8;
    // libelf shows a truncated section header table as no sections at all: say so instead.
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh)) file_error(ErrorCode::InvalidElf, path, fmt::format("cannot read the ELF header: {}", elf_errmsg(-1)));
    const uint64_t shtab_end = eh.e_shoff + uint64_t(eh.e_shnum) * eh.e_shentsize;
    if (eh.e_shnum && (eh.e_shoff > file.size() || shtab_end > file.size()))
        file_error(ErrorCode::InvalidElf, path,
                   fmt::format("section header table [{:#x}, +{} entries) lies outside the file ({} bytes): truncated?", eh.e_shoff, eh.e_shnum, file.size()));
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh)) file_error(ErrorCode::InvalidElf, path, fmt::format("cannot read a section header: {}", elf_errmsg(-1)));
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        if (!name || std::strcmp(name, want) != 0) continue;
        if (sh.sh_type == SHT_NOBITS) file_error(ErrorCode::InvalidElf, path, fmt::format("section {} has no data", want));
        if (sh.sh_offset > file.size() || sh.sh_size > file.size() - sh.sh_offset)
            file_error(ErrorCode::InvalidElf, path,
                       fmt::format("section {} [{:#x}, +{}) lies outside the file ({} bytes)", want, sh.sh_offset, sh.sh_size, file.size()));
        return std::span<const uint8_t>{file.data() + sh.sh_offset, static_cast<std::size_t>(sh.sh_size)};
    }
    return std::nullopt;
}

// The .BTF section of an ELF file (libbpf's btf__parse_elf).
std::span<const uint8_t> btf_from_elf(const std::string& path, Input& file, uint32_t& pointer_size) {
    if (auto s = elf_section(path, file, ".BTF", pointer_size)) return *s;
    file_error(ErrorCode::NotFound, path, "no .BTF section (built without -g?)");
}

// Raw BTF, or the .BTF of an ELF file. pointer_size: from the ELF class, 0 for raw BTF
// (libbpf then guesses it from the types).
btf::Btf load_btf(const std::string& path, const btf::Btf* base, uint32_t& pointer_size) {
    Input file(path);
    const uint8_t* p = file.data();
    std::span<const uint8_t> bytes;
    pointer_size = 0;
    if (file.size() >= 2 && ((p[0] == 0x9f && p[1] == 0xeb) || (p[0] == 0xeb && p[1] == 0x9f)))
        bytes = {p, file.size()};
    else if (file.size() >= 4 && std::memcmp(p, "\x7f" "ELF", 4) == 0)
        bytes = btf_from_elf(path, file, pointer_size);
    else
        file_error(ErrorCode::InvalidBtf, path, "neither raw BTF (magic 0xeb9f) nor an ELF file");
    auto b = btf::Btf::parse(bytes, path, base);   // copies what it keeps
    if (!b) {
        Error e = b.error();
        // Split BTF read alone: its strings do not start with "" and its ids with 1.
        const std::string& m = e.message();
        if (!base && (m.find("does not start with the empty string") != std::string::npos || m.find("does not exist") != std::string::npos))
            throw Error(e.code(), m + " (split BTF, such as a module's, needs its base: --base FILE)", e.where());
        throw e;
    }
    return std::move(*b);
}

void write_out(std::string_view s) {
    if (s.empty()) return;
    if (std::fwrite(s.data(), 1, s.size(), stdout) != s.size())
        throw Error(ErrorCode::Io, fmt::format("cannot write the output: {}", std::strerror(errno)));
}

const char* const kUsage = "dump FILE [--format c|raw] [--json] [--base FILE]";
const char* const kRecordUsage = "record --from KERNEL_BTF --for OBJ... -o OUT [--all-candidates]";

// A BPF object's .BTF and .BTF.ext (none when it has no such section), as bpftool's
// btf__parse reads them for min_core_btf.
struct ObjectBtf {
    btf::Btf btf;
    std::optional<btf::Ext> ext;
};

ObjectBtf load_object_btf(const std::string& path) {
    Input file(path);
    if (file.size() < 4 || std::memcmp(file.data(), "\x7f" "ELF", 4) != 0)
        file_error(ErrorCode::InvalidElf, path, "not an ELF file (a BPF object is expected)");
    uint32_t pointer_size = 0;
    const auto btf_bytes = elf_section(path, file, ".BTF", pointer_size);
    if (!btf_bytes) file_error(ErrorCode::NotFound, path, "no .BTF section (built without -g?)");
    auto b = btf::Btf::parse(*btf_bytes, path);
    if (!b) throw b.error();
    ObjectBtf out{std::move(*b), std::nullopt};
    if (const auto ext_bytes = elf_section(path, file, ".BTF.ext", pointer_size)) {
        auto e = btf::parse_ext(*ext_bytes, out.btf, path);
        if (!e) throw e.error();
        out.ext = std::move(*e);
    }
    return out;
}

// `btf record`: bpftool's `gen min_core_btf KERNEL_BTF OUT OBJ...`.
int cmd_btf_record(const std::vector<std::string>& args) {
    po::options_description d("options");
    d.add_options()("from", po::value<std::string>(), "the kernel BTF: raw (/sys/kernel/btf/vmlinux) or an ELF file's .BTF")
        ("for", po::value<std::vector<std::string>>()->multitoken(), "the BPF objects whose CO-RE relocations are recorded")
        ("output,o", po::value<std::string>(), "where to write the minimal BTF (raw BTF)")
        ("all-candidates", "keep what every matching kernel type uses, not only the first (bpftool's choice)")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("for", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim btf " << kRecordUsage << "\n\n"
                  << "  Writes the part of KERNEL_BTF that the objects' CO-RE relocations use, as bpftool's\n"
                  << "  `gen min_core_btf` does: relocating against OUT gives the same results as against\n"
                  << "  KERNEL_BTF, in a few KiB (for `run --btf`, scenarios, or libbpf's btf_custom_path).\n\n"
                  << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (!vm.count("from")) throw Error(ErrorCode::Usage, "btf record: give the kernel BTF to record from (--from FILE)");
    if (!vm.count("for")) throw Error(ErrorCode::Usage, "btf record: give the BPF objects to record for (--for OBJ...)");
    if (!vm.count("output")) throw Error(ErrorCode::Usage, "btf record: give the output file (-o OUT)");
    const std::string from = vm["from"].as<std::string>(), output = vm["output"].as<std::string>();
    const auto& paths = vm["for"].as<std::vector<std::string>>();

    uint32_t pointer_size = 0;
    const btf::Btf target = load_btf(from, nullptr, pointer_size);
    std::vector<ObjectBtf> objects;
    objects.reserve(paths.size());
    for (const auto& p : paths) objects.push_back(load_object_btf(p));
    std::vector<std::pair<const btf::Btf*, const btf::Ext*>> inputs;
    for (const auto& o : objects) inputs.emplace_back(&o.btf, o.ext ? &*o.ext : nullptr);

    btf::RecordOptions opts;
    opts.all_candidates = vm.count("all-candidates") > 0;
    btf::RecordStats stats;
    auto out = btf::record_min_btf(target, inputs, opts, &stats);
    if (!out) throw out.error();

    std::FILE* f = std::fopen(output.c_str(), "wb");
    if (!f) file_error(ErrorCode::Io, output, fmt::format("cannot create: {}", std::strerror(errno)));
    const bool written = std::fwrite(out->data(), 1, out->size(), f) == out->size();
    const int err = errno;
    if (std::fclose(f) != 0 || !written) {
        std::remove(output.c_str());
        file_error(ErrorCode::Io, output, fmt::format("cannot write: {}", std::strerror(written ? errno : err)));
    }
    const std::size_t from_size = target.to_bytes().size();
    fmt::print("{}: {} types, {} members, {} bytes ({:.1f} KiB; {} has {:.1f} MiB) for {} CO-RE relocations ({} matched) of {} object{}\n",
               output, stats.types, stats.members, out->size(), double(out->size()) / 1024, from, double(from_size) / (1024 * 1024),
               stats.relocations, stats.matched, stats.objects, stats.objects == 1 ? "" : "s");
    return 0;
}

}  // namespace

int cmd_btf(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: bpfsim btf " << kUsage << "\n"
                  << "       bpfsim btf " << kRecordUsage << "\n\n"
                  << "  dump: prints FILE's BTF as bpftool's `btf dump file FILE` does: raw records (the default),\n"
                  << "  their JSON form (--json, bpftool -j), or a C header (--format c, vmlinux.h).\n"
                  << "  FILE is raw BTF (/sys/kernel/btf/*) or an ELF file with a .BTF section.\n"
                  << "  bpftool's words work too: bpfsim btf dump file FILE format c\n\n"
                  << "  record: writes the minimal BTF the objects' CO-RE relocations need from KERNEL_BTF,\n"
                  << "  as bpftool's `gen min_core_btf KERNEL_BTF OUT OBJ...` does (the same bytes).\n";
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "record") return cmd_btf_record({args.begin() + 1, args.end()});
    if (args[0] != "dump") throw Error(ErrorCode::Usage, fmt::format("btf: unknown sub-verb '{}' (dump, record)", args[0]));
    // bpftool's own words work too: `btf dump file FILE format c`.
    std::vector<std::string> rest;
    bool seen_input = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        const bool has_value = a == "--format" || a == "-f" || a == "--base" || a == "-B";
        if (a.starts_with("-")) {
            rest.push_back(a);
            if (has_value && i + 1 < args.size()) rest.push_back(args[++i]);
        } else if (!seen_input && a == "file" && i + 1 < args.size() && !args[i + 1].starts_with("-")) {
            continue;
        } else if (!seen_input) {
            rest.push_back(a);
            seen_input = true;
        } else if (a == "format" && i + 1 < args.size()) {
            rest.push_back("--format");
            rest.push_back(args[++i]);
        } else {
            rest.push_back(a);
        }
    }

    po::options_description d("options");
    d.add_options()("input", po::value<std::string>(), "raw BTF or ELF file")
        ("format,f", po::value<std::string>()->default_value("raw"), "raw (bpftool's records) or c (a C header)")
        ("json,j", "raw records as JSON, as bpftool -j")
        ("base,B", po::value<std::string>(), "base BTF of split BTF (module BTF on top of vmlinux)")
        ("help,h", "show this help");
    po::positional_options_description pos;
    pos.add("input", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(rest).options(d).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << "usage: bpfsim btf " << kUsage << "\n\n" << d << "\n";
        return 0;
    }
    po::notify(vm);
    if (!vm.count("input")) throw Error(ErrorCode::Usage, "btf dump: give a BTF or ELF file");
    const std::string input = vm["input"].as<std::string>();
    const std::string format = vm["format"].as<std::string>();
    if (format != "raw" && format != "c")
        throw Error(ErrorCode::Usage, fmt::format("btf dump: unrecognized format '{}' (raw or c)", format));
    const bool json = vm.count("json") > 0;
    if (json && format == "c") throw Error(ErrorCode::Usage, "btf dump: JSON output for C-syntax dump is not supported");

    // Module BTF in sysfs is split BTF on top of vmlinux: bpftool loads that base itself.
    std::string base_path;
    if (vm.count("base")) base_path = vm["base"].as<std::string>();
    else if (input.starts_with("/sys/kernel/btf/") && input != "/sys/kernel/btf/vmlinux") base_path = "/sys/kernel/btf/vmlinux";
    std::optional<btf::Btf> base;
    uint32_t base_ptr = 0, ptr = 0;
    if (!base_path.empty()) base.emplace(load_btf(base_path, nullptr, base_ptr));
    const btf::Btf b = load_btf(input, base ? &*base : nullptr, ptr);

    // The text goes out in chunks as it is made (vmlinux: 3 MB of C, 12 MB of records).
    std::string out;
    btf::DumpOptions opts;
    opts.pointer_size = ptr ? ptr : base_ptr;
    opts.sink = write_out;
    try {
        if (format == "c") btf::dump_c(b, out, opts);
        else if (json) btf::dump_json(b, out, opts);
        else btf::dump_raw(b, out, opts);
    } catch (const Error&) {
        write_out(out);   // the C text before a type cycle, as bpftool prints it before it stops
        std::fflush(stdout);
        throw;
    }
    if (std::fflush(stdout) != 0) throw Error(ErrorCode::Io, fmt::format("cannot write the output: {}", std::strerror(errno)));
    return 0;
}

}  // namespace bpfsim
