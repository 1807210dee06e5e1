#!/usr/bin/env bash
# Installs the Debian 12 packages bpfsim needs. Idempotent, and silent when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake make pkg-config
  clang llvm bpftool              # clang -target bpf for corpus/, llvm-objdump for tests
  libclang-rt-14-dev              # libFuzzer and the sanitizer runtimes (make fuzz-smoke)
  libclang-rt-14-dev              # libFuzzer's runtime, linked into bpfsim for `bpfsim fuzz`
  libelf-dev zlib1g-dev           # ELF objects
  libboost-program-options-dev    # CLI
  libfmt-dev nlohmann-json3-dev libyaml-cpp-dev
  catch2 libbenchmark-dev
  libxbyak-dev                    # the JIT
  xz-utils                        # the recorded kernel BTF in corpus/btf is xz-compressed
  libbpf-dev linux-libc-dev       # bpf_helpers.h and UAPI headers for corpus/ programs
  lcov                            # lcov --summary and genhtml check the coverage tracefiles
  libxml2-utils                   # xmllint checks the JUnit XML of bpfsim test
  python3                         # tests/verifier_agreement.py, btf_split.py and checks in test_runner.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
