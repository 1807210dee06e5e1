// bpfsim::btf — BTF as text, the way `bpftool btf dump` prints it.
//
//   dump_c     `bpftool btf dump file F format c`: a compilable C header (vmlinux.h), made
//              with libbpf's BTF-to-C algorithm (btf_dump.c) — every type in id order,
//              topologically sorted, forward declarations where a type is only reached
//              through a pointer, anonymous types inline, bitfields and explicit padding,
//              packed structs, name clashes renamed NAME___N.
//   dump_raw   `bpftool btf dump file F` (format raw): one "[id] KIND 'name' ..." record
//              per type of this part (for split BTF, only the split part's types).
//   dump_json  `bpftool -j btf dump file F`: the same records as {"types":[...]}.
//
// The output is byte-identical to Debian 12's bpftool 7.1 (libbpf 1.1). Each function
// appends to `out`, so a caller can stream or reuse a buffer.
#pragma once

#include "btf/btf.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace bpfsim::btf {

struct DumpOptions {
    // Pointer size in bytes; 0 works it out as libbpf does: from the size of an integer
    // named "long"/"long unsigned int"/... (the base's first for split BTF), else 8.
    // BPF ELF objects are 64-bit: libbpf uses the ELF class there (8).
    uint32_t pointer_size = 0;
    // When set, the text is handed over in pieces of about 64 KiB as it is made (`out` is
    // then only the buffer, and ends empty): a CLI streams vmlinux's 3 MB header (12 MB
    // of raw records) without holding it.
    std::function<void(std::string_view)> sink;
};

// Throws Error{InvalidBtf} when the types cannot be written as C (a cycle of types that
// contain each other); what was written before is in `out` (or, with a sink, partly given
// to it already), as bpftool's output stops there.
void dump_c(const Btf& btf, std::string& out, const DumpOptions& opts = {});
void dump_raw(const Btf& btf, std::string& out, const DumpOptions& opts = {});
void dump_json(const Btf& btf, std::string& out, const DumpOptions& opts = {});

inline std::string dump_c(const Btf& btf, const DumpOptions& opts = {}) {
    std::string s;
    dump_c(btf, s, opts);
    return s;
}
inline std::string dump_raw(const Btf& btf) {
    std::string s;
    dump_raw(btf, s);
    return s;
}
inline std::string dump_json(const Btf& btf) {
    std::string s;
    dump_json(btf, s);
    return s;
}

// The pointer size libbpf would assume for this BTF (see DumpOptions::pointer_size).
uint32_t guess_pointer_size(const Btf& btf);

}  // namespace bpfsim::btf
