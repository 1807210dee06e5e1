#!/bin/sh
# ctest kernel-verify-corpus: `bpfsim kernel-verify` against the running kernel.
#  1. A known verdict: corpus/verifier/kernel_reject.c's deref_scalar must be rejected with
#     "R1 invalid mem access 'scalar'" at pc 1 (EACCES), returns_zero accepted; --log-level 2
#     carries the whole log.
#  2. The survey of the public sample corpus: finishes, no crash or internal error, no bpfsim
#     link error, at least 400 programs judged (accepted + rejected); the summary is printed.
# usage: kernel_verify_corpus.sh BPFSIM SAMPLES_DIR CORPUS_BUILD_DIR
# Exit 77 (skipped) when the bpf() syscall is unavailable (not root, seccomp, a container).
set -u
bpfsim=$1
samples=$2
corpus=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$bpfsim" kernel-verify "$corpus/kernel_reject.o" --log-level 2 --json >"$tmp/known.json" 2>"$tmp/known.err"
rc=$?
if [ $rc -eq 77 ]; then
    cat "$tmp/known.err"
    echo "SKIP: the bpf() syscall is unavailable here; kernel-verify needs root"
    exit 77
fi
[ $rc -eq 1 ] || { cat "$tmp/known.err"; fail "kernel-verify kernel_reject.o: exit $rc, expected 1 (a program rejected)"; }
python3 - "$tmp/known.json" <<'PY' || fail "known verdicts of kernel_reject.o"
import json, sys
rows = {r["program"]: r for r in json.load(open(sys.argv[1]))}
d, z = rows["deref_scalar"], rows["returns_zero"]
checks = [
    (d["verdict"] == "rejected", "deref_scalar verdict %r" % d["verdict"]),
    (d["errno_name"] == "EACCES", "deref_scalar errno %r" % d["errno_name"]),
    (d["message"] == "R1 invalid mem access 'scalar'", "deref_scalar message %r" % d["message"]),
    (d["pc"] == 1, "deref_scalar pc %r" % d["pc"]),
    (d["stats"].startswith("processed 2 insns (limit 1000000)"), "deref_scalar stats %r" % d["stats"]),
    ("1: (79) r0 = *(u64 *)(r1 +0)" in d["log"], "deref_scalar level-2 log lacks the failing insn"),
    (z["verdict"] == "accepted" and z["errno"] == 0, "returns_zero verdict %r" % z["verdict"]),
]
bad = [why for ok, why in checks if not ok]
for why in bad:
    print("  " + why)
print("known verdicts: deref_scalar rejected (%s at pc %s), returns_zero accepted" % (d["message"], d["pc"]))
sys.exit(1 if bad else 0)
PY
# The text form names the verdict and message too.
"$bpfsim" kernel-verify "$corpus/kernel_reject.o" --prog deref_scalar >"$tmp/known.txt" 2>&1
grep -q "^deref_scalar (socket, socket_filter): rejected  errno EACCES" "$tmp/known.txt" || { cat "$tmp/known.txt"; fail "text verdict"; }
grep -q "message: R1 invalid mem access 'scalar'" "$tmp/known.txt" || { cat "$tmp/known.txt"; fail "text message"; }

[ -d "$samples" ] || { echo "SKIP: no sample corpus at $samples"; exit 77; }
"$bpfsim" kernel-verify --corpus "$samples" --json "$tmp/survey.json" >"$tmp/survey.txt" 2>&1
rc=$?
cat "$tmp/survey.txt" | grep -v '^wrote '
[ $rc -eq 0 ] || fail "survey: exit $rc (a crash or internal error)"
python3 - "$tmp/survey.json" <<'PY' || fail "survey results"
import json, sys
j = json.load(open(sys.argv[1]))
s, progs = j["summary"], j["programs"]
judged = s["accepted"] + s["rejected"]
checks = [
    (s["objects"] >= 170, "objects %d < 170" % s["objects"]),
    (s["programs"] >= 550, "programs %d < 550" % s["programs"]),
    (judged >= 400, "judged %d < 400" % judged),
    (s["bpfsim_link_errors"] == 0, "%d bpfsim link errors" % s["bpfsim_link_errors"]),
    (s["accepted"] + s["rejected"] + s["not_loadable"] + s["bpfsim_link_errors"] == s["programs"], "classes do not add up"),
    (all(p["verdict"] in ("accepted", "rejected", "not-loadable") for p in progs), "a program without a verdict"),
    (all(p["message"] for p in progs if p["verdict"] == "rejected"), "a rejected program without a message"),
    (all(p["reason"] for p in progs if p["verdict"] == "not-loadable"), "a not-loadable program without a reason"),
    (s["survey_seconds"] < 120, "survey took %.1f s" % s["survey_seconds"]),
]
bad = [why for ok, why in checks if not ok]
for why in bad:
    print("  " + why)
print("survey: %d objects (%d bpfsim cannot open), %d programs: %d accepted, %d rejected, %d not-loadable; "
      "kernel %.2f s of BPF_PROG_LOAD, survey %.2f s"
      % (s["objects"], s["bpfsim_open_errors"], s["programs"], s["accepted"], s["rejected"], s["not_loadable"],
         s["kernel_load_seconds"], s["survey_seconds"]))
sys.exit(1 if bad else 0)
PY
echo "kernel-verify-corpus: passed"
