#!/usr/bin/env bash
# Runs the bpf_conformance suite through `bpfsim conformance`; skips (77) without the suite.
set -u
bpfsim=$1 dir=$2 dispatch=$3
if [ ! -d "$dir" ]; then
  echo "SKIP: conformance suite not found at $dir (it lives in ../shared/conformance)"
  exit 77
fi
exec "$bpfsim" conformance "$dir" --dispatch "$dispatch"
