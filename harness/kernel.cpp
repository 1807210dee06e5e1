// The running kernel as an oracle: load an object's program with the same maps and
// globals through bpf(2), and run it with BPF_PROG_TEST_RUN.
#include "harness/harness.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace bpfsim::harness {

namespace {

long sys_bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

// The kernel sizes per-CPU values by the possible CPUs ("0-3"), not the online ones.
unsigned possible_cpus() {
    std::ifstream in("/sys/devices/system/cpu/possible");
    std::string s;
    std::getline(in, s);
    unsigned n = 0;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t end = s.find(',', pos);
        if (end == std::string::npos) end = s.size();
        const std::string part = s.substr(pos, end - pos);
        const auto dash = part.find('-');
        const unsigned lo = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
        const unsigned hi = dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
        n = std::max(n, hi + 1);
        pos = end + 1;
    }
    return n ? n : static_cast<unsigned>(sysconf(_SC_NPROCESSORS_CONF));
}

uint64_t ptr(const void* p) { return reinterpret_cast<uint64_t>(p); }

}  // namespace

KernelOracle::~KernelOracle() {
    if (btf_fd_ >= 0) close(btf_fd_);
    for (int fd : map_fds_)
        if (fd >= 0) close(fd);
    for (auto& [name, fd] : prog_fds_)
        if (fd >= 0) close(fd);
}

std::string KernelOracle::unavailable_reason() {
    bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    const long fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (fd >= 0) {
        close(static_cast<int>(fd));
        return {};
    }
    return fmt::format("the bpf() syscall is unavailable here ({})", std::strerror(errno));
}

Result<std::unique_ptr<KernelOracle>> KernelOracle::create(const Object& obj) {
    return catch_error([&]() -> std::unique_ptr<KernelOracle> {
        std::unique_ptr<KernelOracle> k(new KernelOracle());
        k->obj_ = &obj;
        // The object's BTF, for func_info (callbacks and bpf2bpf calls need it).
        if (auto bytes = obj.kernel_btf(); bytes && !bytes->empty()) {
            std::string blog(1 << 16, '\0');
            bpf_attr b{};
            b.btf = ptr(bytes->data());
            b.btf_size = static_cast<uint32_t>(bytes->size());
            b.btf_log_buf = ptr(blog.data());
            b.btf_log_size = static_cast<uint32_t>(blog.size());
            b.btf_log_level = 1;
            const long fd = sys_bpf(BPF_BTF_LOAD, &b);
            if (fd >= 0) k->btf_fd_ = static_cast<int>(fd);
            else k->btf_error_ = fmt::format("kernel refused the object's BTF: {}: {}", std::strerror(errno), blog.c_str());
        }
        for (const auto& def : obj.maps()) {
            bpf_attr a{};
            a.map_type = static_cast<uint32_t>(def.type);
            a.key_size = def.key_size;
            a.value_size = def.value_size;
            a.max_entries = def.max_entries;
            a.map_flags = def.flags;
            a.map_extra = def.map_extra;
            if (def.type == MapType::PerfEventArray) {   // as libbpf: one slot per CPU, fd-sized values
                if (!a.max_entries) a.max_entries = possible_cpus();
                if (!a.key_size) a.key_size = 4;
                if (!a.value_size) a.value_size = 4;
            }
            std::string name = def.name.substr(0, BPF_OBJ_NAME_LEN - 1);
            for (char& c : name)
                if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
            std::memcpy(a.map_name, name.data(), name.size());
            int inner_fd = -1;
            if (def.inner) {
                bpf_attr ia{};
                ia.map_type = static_cast<uint32_t>(def.inner->type);
                ia.key_size = def.inner->key_size;
                ia.value_size = def.inner->value_size;
                ia.max_entries = def.inner->max_entries;
                ia.map_flags = def.inner->flags;
                inner_fd = static_cast<int>(sys_bpf(BPF_MAP_CREATE, &ia));
                a.inner_map_fd = static_cast<uint32_t>(inner_fd);
            }
            const long fd = sys_bpf(BPF_MAP_CREATE, &a);
            const int err = errno;
            if (inner_fd >= 0) close(inner_fd);
            if (fd < 0) {
                k->map_fds_.push_back(-1);
                k->map_errors_.push_back(fmt::format("cannot create map '{}' ({}): {}", def.name, to_string(def.type), std::strerror(err)));
                continue;
            }
            k->map_fds_.push_back(static_cast<int>(fd));
            k->map_errors_.emplace_back();
            if (!def.init.empty()) {
                uint32_t zero = 0;
                std::vector<uint8_t> value = def.init;
                value.resize(def.value_size);
                bpf_attr u{};
                u.map_fd = static_cast<uint32_t>(fd);
                u.key = ptr(&zero);
                u.value = ptr(value.data());
                if (sys_bpf(BPF_MAP_UPDATE_ELEM, &u) < 0)
                    throw Error(ErrorCode::Io, fmt::format("kernel: cannot initialise '{}': {}", def.name, std::strerror(errno)));
                if (def.frozen) {
                    bpf_attr f{};
                    f.map_fd = static_cast<uint32_t>(fd);
                    sys_bpf(BPF_MAP_FREEZE, &f);
                }
            }
        }
        return k;
    });
}

Result<std::shared_ptr<const btf::Btf>> KernelOracle::running_kernel_btf() {
    static Result<std::shared_ptr<const btf::Btf>> cached = load_kernel_btf("/sys/kernel/btf/vmlinux");
    return cached;
}

Result<int> KernelOracle::load(std::string_view prog) {
    if (auto it = prog_fds_.find(std::string(prog)); it != prog_fds_.end()) return it->second;
    return catch_error([&]() -> int {
        // CO-RE relocations against the running kernel's own BTF, as libbpf would.
        btf::CoreTargets targets;
        if (obj_->core_relo_count()) {
            auto host = running_kernel_btf();
            if (!host) throw host.error();
            targets.main = host->get();
        }
        auto lp = obj_->link(prog, &targets);
        if (!lp) throw lp.error();
        std::vector<vm::Insn> insns = lp->prog.insns;
        for (std::size_t pc = 0; pc + 1 < insns.size(); ++pc) {
            vm::Insn& in = insns[pc];
            if (in.code != 0x18) continue;
            if (in.src == 5 || in.src == 6) {
                const auto idx = static_cast<std::size_t>(in.imm);
                if (idx >= map_fds_.size() || map_fds_[idx] < 0)
                    throw Error(ErrorCode::Unsupported, idx < map_errors_.size() ? map_errors_[idx] : "bad map index");
                in.src = in.src == 5 ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;
                in.imm = map_fds_[idx];
            }
            ++pc;
        }
        const ProgramDef* def = obj_->find_program(prog);
        std::string license = obj_->license().empty() ? "GPL" : obj_->license();
        log_.assign(1 << 20, '\0');
        bpf_attr a{};
        a.prog_type = static_cast<uint32_t>(def->type);
        a.insns = ptr(insns.data());
        a.insn_cnt = static_cast<uint32_t>(insns.size());
        a.license = ptr(license.c_str());
        a.log_buf = ptr(log_.data());
        a.log_size = static_cast<uint32_t>(log_.size());
        a.log_level = 1;
        a.kern_version = obj_->kern_version();
        std::vector<bpf_func_info> finfo;
        if (btf_fd_ >= 0 && !lp->func_info.empty()) {
            for (const auto& [pc, tid] : lp->func_info) finfo.push_back({static_cast<uint32_t>(pc), tid});
            a.prog_btf_fd = static_cast<uint32_t>(btf_fd_);
            a.func_info_rec_size = sizeof(bpf_func_info);
            a.func_info = ptr(finfo.data());
            a.func_info_cnt = static_cast<uint32_t>(finfo.size());
        }
        std::string name = def->name.substr(0, BPF_OBJ_NAME_LEN - 1);
        for (char& c : name)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
        std::memcpy(a.prog_name, name.data(), name.size());
        const long fd = sys_bpf(BPF_PROG_LOAD, &a);
        const int err = errno;
        log_.resize(std::strlen(log_.c_str()));
        if (fd < 0) {
            std::string tail = log_.size() > 2000 ? log_.substr(log_.size() - 2000) : log_;
            throw Error(ErrorCode::Unsupported, fmt::format("kernel rejected '{}': {}\n{}", def->name, std::strerror(err), tail));
        }
        prog_fds_[std::string(prog)] = static_cast<int>(fd);
        // Fill prog arrays that name programs of the object.
        for (std::size_t i = 0; i < obj_->maps().size(); ++i) {
            const MapDef& m = obj_->maps()[i];
            if (m.type != MapType::ProgArray || map_fds_[i] < 0) continue;
            for (const auto& [slot, pname] : m.init_slots) {
                if (pname == prog) continue;
                auto sub = load(pname);
                if (!sub) continue;
                uint32_t key = slot;
                uint32_t value = static_cast<uint32_t>(*sub);
                bpf_attr u{};
                u.map_fd = static_cast<uint32_t>(map_fds_[i]);
                u.key = ptr(&key);
                u.value = ptr(&value);
                sys_bpf(BPF_MAP_UPDATE_ELEM, &u);
            }
        }
        return static_cast<int>(fd);
    });
}

Result<KernelRun> KernelOracle::test_run(std::string_view prog, const std::vector<uint8_t>& packet) {
    return catch_error([&]() -> KernelRun {
        auto fd = load(prog);
        if (!fd) throw fd.error();
        KernelRun out;
        out.packet.resize(packet.size() + 4096);
        bpf_attr a{};
        a.test.prog_fd = static_cast<uint32_t>(*fd);
        a.test.data_in = ptr(packet.data());
        a.test.data_size_in = static_cast<uint32_t>(packet.size());
        a.test.data_out = ptr(out.packet.data());
        a.test.data_size_out = static_cast<uint32_t>(out.packet.size());
        a.test.repeat = 1;
        if (sys_bpf(BPF_PROG_TEST_RUN, &a) < 0)
            throw Error(ErrorCode::Io, fmt::format("BPF_PROG_TEST_RUN of '{}': {}", prog, std::strerror(errno)));
        out.retval = a.test.retval;
        out.packet.resize(a.test.data_size_out);
        return out;
    });
}

std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> KernelOracle::dump(std::size_t map) const {
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> out;
    if (map >= map_fds_.size() || map_fds_[map] < 0) return out;
    const MapDef& d = obj_->maps()[map];
    if (d.key_size == 0 || d.type == MapType::ProgArray || d.type == MapType::PerfEventArray) return out;
    const bool percpu = d.type == MapType::PercpuArray || d.type == MapType::PercpuHash || d.type == MapType::LruPercpuHash;
    const long ncpu = possible_cpus();
    std::vector<uint8_t> key(d.key_size), next(d.key_size),
        value(percpu ? (d.value_size + 7) / 8 * 8 * static_cast<std::size_t>(ncpu) : d.value_size);
    bool first = true;
    for (;;) {
        bpf_attr a{};
        a.map_fd = static_cast<uint32_t>(map_fds_[map]);
        a.key = first ? 0 : ptr(key.data());
        a.next_key = ptr(next.data());
        if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &a) < 0) break;
        first = false;
        key = next;
        bpf_attr l{};
        l.map_fd = static_cast<uint32_t>(map_fds_[map]);
        l.key = ptr(key.data());
        l.value = ptr(value.data());
        if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &l) < 0) continue;
        out.emplace_back(key, value);
    }
    return out;
}

}  // namespace bpfsim::harness
