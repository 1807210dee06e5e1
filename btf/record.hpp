// bpfsim::btf — the minimal kernel BTF that objects' CO-RE relocations need, as
// `bpftool gen min_core_btf` (7.1, btfgen_* in gen.c) writes it: a project carries a few
// KiB per kernel instead of megabytes, and CO-RE against it gives the full BTF's results.
//
// Every relocation is computed against the target as libbpf does (one candidate cache per
// object, .BTF.ext order); what the first matching candidate's target spec uses is kept:
//  * field relocations: the types along the access path, with only the members used
//    (anonymous members included) and their types, struct/union sizes and member offsets
//    unchanged; a member's pointer to a type that nothing else keeps becomes `void *`;
//  * type_exists / type_size / type_id_target: the type, through typedefs, modifiers,
//    pointers, arrays and function prototypes, structs and unions without members;
//  * type_matches: what the "matches" relation compares: structs and unions with all their
//    members, recursively, except behind a pointer (kept without members);
//  * enum relocations: the whole enum, every enumerator;
//  * type_id_local and relocations no candidate matches: nothing.
// The kept types are written in their target id order, renumbered from 1, with each
// string once in order of first use, in host byte order: bpftool's file, byte for byte.
//
// Beyond bpftool: FWD and TYPE_TAG types are kept (bpftool stops with "unsupported kind"),
// and `all_candidates` keeps what every matching candidate uses, not only the first.
#pragma once

#include "btf/btf.hpp"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace bpfsim::btf {

struct RecordOptions {
    // Keep what every matching candidate of a relocation uses (several kernel types of one
    // name can match), not only the first, which decides the value and is all bpftool keeps.
    bool all_candidates = false;
};

struct RecordStats {
    std::size_t objects = 0;
    std::size_t relocations = 0;    // CO-RE relocations computed
    std::size_t matched = 0;        // of those, with a matching candidate (type_id_local excluded)
    std::size_t types = 0;          // types written (void excluded)
    std::size_t members = 0;        // struct/union members written
};

// The minimal BTF for these objects (their .BTF and .BTF.ext; the .BTF's name() names the
// file in errors) against `target`, a complete (not split) kernel BTF. Errors: an object
// without .BTF.ext (Error{NotFound}, as bpftool refuses it), a relocation libbpf fails
// (Error{InvalidBtf} / Error{Unsupported} from core_relocate, naming file, section, insn),
// a kept type of a kind a minimal BTF cannot hold (FUNC, VAR, DATASEC, DECL_TAG).
// An object whose .BTF.ext has no CO-RE relocations adds nothing; with nothing kept the
// result is an empty but valid BTF (header and the empty string).
Result<std::vector<uint8_t>> record_min_btf(const Btf& target, const std::vector<std::pair<const Btf*, const Ext*>>& objects,
                                            const RecordOptions& options = {}, RecordStats* stats = nullptr);

}  // namespace bpfsim::btf
