#!/usr/bin/env python3
"""Agreement of bpfsim's verifier model with the running kernel's verifier.

usage: verifier_agreement.py BPFSIM CORPUS_DIR MIN_AGREEMENT_PERCENT [--report FILE] [--max-mib N]

--max-mib: the memory bound per object (default 1024; 0: not checked, for sanitizer builds,
whose shadow memory and quarantine inflate the resident set).

The kernel's verdicts come from `bpfsim kernel-verify --corpus` (root, bpf() syscall; exit 77
when unavailable). The model's from `bpfsim verify OBJ --json`, one object at a time, timed.
Programs the kernel cannot load for reasons outside the verifier (not-loadable) are set aside
and counted. Agreement is on the verdict (accepted / rejected); for rejections both make, the
first line of the message is compared too. Fails when agreement is below the threshold, when
the model crashes on an object, uses more than --max-mib on one, or when a program is judged
by one side only.
"""
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter


def fold(msg):
    """The first line of a message with numbers folded, for tallies."""
    line = (msg or "").split("\n")[0]
    return re.sub(r"-?\d+", "N", line)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    bpfsim, corpus, threshold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    report = sys.argv[sys.argv.index("--report") + 1] if "--report" in sys.argv else None
    max_mib = int(sys.argv[sys.argv.index("--max-mib") + 1]) if "--max-mib" in sys.argv else 1024

    with tempfile.TemporaryDirectory() as tmp:
        kjson = os.path.join(tmp, "kernel.json")
        k = subprocess.run([bpfsim, "kernel-verify", "--corpus", corpus, "--json-out", kjson, "--log-level", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if k.returncode == 77:
            print("verifier-agreement: skipped: " + k.stdout.strip().splitlines()[-1] if k.stdout.strip() else "no bpf()")
            return 77
        if k.returncode != 0 or not os.path.exists(kjson):
            print(k.stdout)
            print("verifier-agreement: kernel-verify failed")
            return 1
        kernel = json.load(open(kjson))

    kern = {}
    for p in kernel["programs"]:
        kern[(p["object"], p["program"])] = p
    objects = sorted({p["object"] for p in kernel["programs"]})

    model = {}
    crashes = []
    model_seconds = 0.0
    slowest = []
    peak_rss = [0, ""]
    for obj in objects:
        path = os.path.join(corpus, obj)
        t0 = time.monotonic()
        r = subprocess.run([bpfsim, "verify", path, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.monotonic() - t0
        model_seconds += dt
        slowest.append((dt, obj))
        # The largest resident set of any child so far (KiB): per object, the model's peak.
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if rss > peak_rss[0]:
            peak_rss[0], peak_rss[1] = rss, obj
        if r.returncode not in (0, 1):
            crashes.append((obj, r.returncode, r.stderr.strip()[-300:]))
            continue
        try:
            verdicts = json.loads(r.stdout)
        except json.JSONDecodeError:
            crashes.append((obj, r.returncode, "not JSON: " + r.stdout[:200]))
            continue
        for v in verdicts:
            model[(obj, v["program"])] = v

    judged = agree = same_msg = both_rejected = 0
    set_aside = 0
    missing = []
    disagreements = Counter()
    examples = {}
    for key, kp in sorted(kern.items()):
        if kp["verdict"] == "not-loadable":
            set_aside += 1
            continue
        mp = model.get(key)
        if mp is None:
            missing.append(key)
            continue
        judged += 1
        if mp["verdict"] == kp["verdict"]:
            agree += 1
            if kp["verdict"] == "rejected":
                both_rejected += 1
                if fold(mp.get("message")) == fold(kp.get("message")):
                    same_msg += 1
        else:
            what = "kernel {} / model {}: {}".format(kp["verdict"], mp["verdict"],
                                                     fold(kp.get("message")) if kp["verdict"] == "rejected" else fold(mp.get("message")))
            disagreements[what] += 1
            examples.setdefault(what, "{}:{}".format(*key))

    pct = 100.0 * agree / judged if judged else 0.0
    lines = [
        "verifier agreement with the kernel (Linux {}): {} of {} judged programs agree ({:.1f}%)".format(
            os.uname().release, agree, judged, pct),
        "  both rejected: {}, of which the same first message line: {}".format(both_rejected, same_msg),
        "  set aside (not loadable by the kernel for reasons outside the verifier): {}".format(set_aside),
        "  model time over {} objects: {:.2f} s (one process per object); kernel: {:.2f} s of verification".format(
            len(objects), model_seconds, kernel["summary"].get("kernel_verification_seconds", 0.0)),
        "  peak memory of the model: {:.0f} MiB ({})".format(peak_rss[0] / 1024, peak_rss[1]),
        "  slowest objects in the model: " + ", ".join("{} {:.2f} s".format(o, t) for t, o in sorted(slowest, reverse=True)[:3]),
    ]
    if disagreements:
        lines.append("  disagreements by kind:")
        for what, n in disagreements.most_common(25):
            lines.append("    {:4d}  {}   (e.g. {})".format(n, what, examples[what]))
    for obj, rc, err in crashes:
        lines.append("  MODEL FAILED on {} (exit {}): {}".format(obj, rc, err))
    for key in missing[:10]:
        lines.append("  no model verdict for {}:{}".format(*key))
    text = "\n".join(lines)
    print(text)
    if report:
        with open(report, "w") as f:
            f.write(text + "\n")
    if crashes or missing:
        print("verifier-agreement: FAIL: the model failed on {} objects, missed {} programs".format(len(crashes), len(missing)))
        return 1
    if max_mib and peak_rss[0] > max_mib * 1024:
        print("verifier-agreement: FAIL: the model used more than {} MiB on {}".format(max_mib, peak_rss[1]))
        return 1
    if pct < threshold:
        print("verifier-agreement: FAIL: {:.1f}% is below the threshold of {:.1f}%".format(pct, threshold))
        return 1
    print("verifier-agreement: ok ({:.1f}% >= {:.1f}%)".format(pct, threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
