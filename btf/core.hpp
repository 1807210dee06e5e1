// bpfsim::btf — CO-RE: relocating an object's field offsets, sizes, existence checks,
// type ids and enum values from the BTF it was compiled against (the local BTF) to the
// BTF of the kernel it runs on (the target BTF), with the results libbpf gives.
//
// The rules are libbpf's (relo_core.c and bpf_core_resolve_relo in libbpf.c, 1.1):
//
//  * candidates: every target type of the local type's kind (an ENUM also matches an
//    ENUM64) whose "essential" name is the same. The essential name drops a flavor suffix
//    `___something`, so `struct task_struct___old` looks for `struct task_struct`. The
//    main target (vmlinux) is searched first; module BTF only when it has no candidate;
//  * a candidate matches when the access string ("0:1:2", member and array indices in the
//    local type) can be followed by member *name* through it (anonymous members searched
//    recursively), each field type compatible with the local one, array indices in
//    bounds; type-based relocations match by type compatibility (or, for type_matches,
//    the stricter "matches" relation), enum values by enumerator name;
//  * all matching candidates must agree on the bit offset and on the new value, or the
//    relocation fails (ambiguity). Candidates that did not match are dropped from the
//    local type's candidate list for later relocations (CoreCandCache), as libbpf does;
//  * no matching candidate: existence relocations give 0, type_id_target/type_size 0,
//    field relocations and enumval_value poison the instruction.
//
// Patching follows bpf_core_patch_insn: ALU/ALU64 with an immediate get a new imm, LDX/ST/
// STX a new offset (and a new memory size when the field's size changed and that is safe),
// lddw a new 64-bit immediate. The value found in the instruction is checked first against
// the one computed from the local BTF. A poisoned instruction becomes `call 0xbad2310`
// (both slots of an lddw), which the kernel's verifier rejects when it is reachable.
#pragma once

#include "btf/btf.hpp"
#include "vm/vm.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpfsim::btf {

// The helper number a poisoned instruction calls: `call 0xbad2310` ("bad relo").
inline constexpr int32_t kCorePoisonImm = 0xbad2310;
// Is this the instruction libbpf (and core_patch) puts in place of a failed relocation?
inline bool is_core_poison(const vm::Insn& insn) {
    return insn.code == 0x85 && insn.src == 0 && insn.dst == 0 && insn.off == 0 && insn.imm == kCorePoisonImm;
}

// libbpf's short name of a relocation kind in its log lines: "byte_off", "byte_sz",
// "field_exists", "signed", "lshift_u64", "rshift_u64", "local_type_id", "target_type_id",
// "type_exists", "type_matches", "type_size", "enumval_exists", "enumval_value".
std::string_view core_kind_str(CoreReloKind k);

// Where target types are looked for: the main BTF (vmlinux, or a file standing in for it),
// then, only when the main BTF has no candidate of that name, the module BTFs (split on
// the main one; only their own types are searched).
struct CoreTargets {
    const Btf* main = nullptr;
    std::vector<const Btf*> modules;
    std::string main_name = "vmlinux";   // for log lines: "found target candidate ... in [vmlinux]"
};

// The candidate lists of the local types relocated so far, narrowed as relocations match,
// exactly as libbpf's per-object cache. Use one cache for all the relocations of one object
// (in .BTF.ext order) to get libbpf's results when a name has several candidates; with no
// cache every relocation starts from the full candidate list.
class CoreCandCache {
public:
    struct Cand {
        const Btf* btf;
        uint32_t id;
    };
    void clear() { lists_.clear(); }
    // The current list for a local type, or nullptr if it has not been searched yet.
    const std::vector<Cand>* find(const Btf* local, uint32_t local_id) const;

private:
    friend struct CoreAccess;
    std::map<std::pair<const Btf*, uint32_t>, std::vector<Cand>> lists_;
};

// One matching candidate's access path in the target BTF, as libbpf's target spec: the
// candidate, and the access string's indices through it ("0:3:1"), anonymous members
// included (field relocations; the enumerator's index for enum values; none for types).
struct CoreTargetSpec {
    const Btf* btf = nullptr;
    uint32_t root_type_id = 0;
    std::vector<int32_t> raw;
};

struct CoreResult {
    bool poison = false;          // no target: the instruction is to be poisoned
    bool validate = true;         // the instruction must hold orig_value before patching
    uint64_t orig_value = 0;      // the value computed from the local BTF
    uint64_t new_value = 0;       // the value for the target
    // Field byte offsets: the sizes of the field in the local and target types (0 for
    // bitfields); when they differ, a load/store gets the new size (new_size) if that is
    // safe (pointers, unsigned integers), otherwise it is poisoned (fail_memsz_adjust).
    uint32_t orig_size = 0;
    uint32_t new_size = 0;
    bool fail_memsz_adjust = false;
    uint32_t target_type = 0;     // the matching candidate (first one), 0 when none
    // Every matching candidate in candidate order (the first decided); empty when none
    // matched and for type_id_local. `bpfsim btf record` keeps what these use.
    std::vector<CoreTargetSpec> matches;
    // libbpf's spec notation, "<byte_off> [21] struct sock.__sk_common.skc_family (0:0:2 @ offset 12)",
    // for the local type and for the target candidate that decided (empty when none).
    std::string local_spec;
    std::string target_spec;
    std::string failure;          // why the instruction is poisoned, for messages
    // What libbpf logs for the relocation, without its "prog 'x': relo #n: " prefix:
    // the candidate search (first use of a local type), the local spec, each candidate.
    std::vector<std::string> log;
};

// Computes one relocation. Errors (Error{InvalidBtf} for a bad access string or type,
// Error{Unsupported} for what libbpf refuses: ambiguous candidates, anonymous local types,
// bitfields no load can read, ...) are the cases where libbpf fails the whole load; `where`
// (file, section, pc) is copied into them, with pc = r.insn when it has none.
Result<CoreResult> core_relocate(const Btf& local, const CoreTargets& targets, const CoreRelo& r,
                                 CoreCandCache* cache = nullptr, const Location& where = {});
Result<CoreResult> core_relocate(const Btf& local, const Btf& target, const CoreRelo& r,
                                 CoreCandCache* cache = nullptr, const Location& where = {});

struct CorePatch {
    bool poisoned = false;
    // libbpf's debug lines for it: "patched insn #7 (LDX/ST/STX) off 12 -> 16",
    // "patched insn #7 (LDX/ST/STX) mem_sz 8 -> 4", "substituting insn #7 w/ invalid insn".
    std::vector<std::string> log;
};

// Applies a relocation result to insns[pc] (and insns[pc + 1] for lddw), as libbpf does.
// Errors (Error{InvalidInsn}): the instruction does not hold the expected value ("unexpected
// insn #5 (LDX/ST/STX) value: got 8, exp 12 -> 16"), has a form CO-RE cannot patch, or the
// new offset does not fit; the instruction is then left as it was.
Result<CorePatch> core_patch(vm::Insn* insns, std::size_t count, std::size_t pc, const CoreRelo& r,
                             const CoreResult& res, const Location& where = {});

}  // namespace bpfsim::btf
