// Tiny raw programs loaded into the running kernel with BPF_PROG_LOAD, for the verifier model's
// differential tests (tests/test_verifier_ctx.cpp, tests/test_verifier_helpers.cpp): the
// kernel's verdict and log for one program type and expected attach type.
#pragma once

#include "harness/harness.hpp"

#include <catch2/catch.hpp>

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bpfsim::testing {

struct KernelCase {
    std::string name;       // what the report calls it
    harness::ProgType type;
    uint32_t kernel_type;
    std::string attach;     // what the model under test is given (attach part or section)
    uint32_t expected = 0;  // expected_attach_type
    uint32_t flags = 0;
};

inline long sys_bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

inline bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst;
    i.src_reg = src;
    i.off = off;
    i.imm = imm;
    return i;
}

struct Loaded {
    bool ok = false;
    int err = 0;
    std::string log;
};

// Loads the program (closing it again) and returns the verdict, errno and level-1 log.
inline Loaded kernel_load(const KernelCase& c, const std::vector<bpf_insn>& prog, const char* license = "GPL") {
    static std::vector<char> log(1 << 16);
    log[0] = 0;
    bpf_attr a{};
    a.prog_type = c.kernel_type;
    a.insns = reinterpret_cast<uint64_t>(prog.data());
    a.insn_cnt = static_cast<uint32_t>(prog.size());
    a.license = reinterpret_cast<uint64_t>(license);
    a.log_buf = reinterpret_cast<uint64_t>(log.data());
    a.log_size = static_cast<uint32_t>(log.size());
    a.log_level = 1;
    a.expected_attach_type = c.expected;
    a.prog_flags = c.flags;
    Loaded r;
    long fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd >= 0) {
        close(static_cast<int>(fd));
        r.ok = true;
        return r;
    }
    r.err = errno;
    r.log = log.data();
    return r;
}

// r0 = 1; exit: what every program type loads.
inline const std::vector<bpf_insn>& trivial_prog() {
    static const std::vector<bpf_insn> p = {insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1), insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)};
    return p;
}

// Whether bpf(BPF_PROG_LOAD) works here; warns (the differential is skipped) when it does not.
inline bool bpf_available() {
    const KernelCase probe{"probe", harness::ProgType::SocketFilter, BPF_PROG_TYPE_SOCKET_FILTER, ""};
    const Loaded r = kernel_load(probe, trivial_prog());
    if (!r.ok) WARN("bpf(BPF_PROG_LOAD) unavailable (" << std::strerror(r.err) << "): kernel differential skipped");
    return r.ok;
}

}  // namespace bpfsim::testing
