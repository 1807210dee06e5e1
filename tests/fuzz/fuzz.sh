#!/usr/bin/env bash
# bpfsim's libFuzzer targets (README: "Fuzzing bpfsim itself").
#
#   fuzz.sh build BUILD_DIR [JOBS]           configure (clang-14, BPFSIM_FUZZ=ON) and build the targets
#   fuzz.sh run BUILD_DIR SECONDS [TARGET]... seeds, regression inputs, then each target for SECONDS
#
# `build` prints a notice and succeeds when clang or its libFuzzer runtime is missing; `run`
# then exits 77 (skipped). When the build itself fails, `run` fails too, saying so (`make test`
# goes on to the other tests). `run` fails when any target crashes, leaks, times out or runs
# out of memory, or a regression input fails; the input is kept in BUILD_DIR/fuzz/artifacts/.
# Corpora accumulate in BUILD_DIR/fuzz/corpus/TARGET; seeds are regenerated into
# BUILD_DIR/fuzz/seeds/TARGET from ../shared and the source tree on each run.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
SHARED="${BPFSIM_SHARED_DIR:-$SRC/../shared}"
ALL_TARGETS=(elf btf btf_ext core scenario asm verifier_soundness engines_agree)

# -max_len and dictionary per target.
max_len() {
    case "$1" in
        elf|core) echo 262144 ;;
        btf|btf_ext) echo 65536 ;;
        scenario|asm) echo 8192 ;;
        *) echo 4096 ;;
    esac
}
dict() {
    case "$1" in
        elf|core) echo "$HERE/dict/elf.dict" ;;
        btf|btf_ext) echo "$HERE/dict/btf.dict" ;;
        scenario) echo "$HERE/dict/scenario.dict" ;;
        asm) echo "$HERE/dict/asm.dict" ;;
    esac
}

have_fuzzer() {
    local cxx="$1" tmp
    command -v "$cxx" >/dev/null 2>&1 || return 1
    tmp="$(mktemp -d)"
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$tmp/t.cpp"
    "$cxx" -fsanitize=fuzzer,address,undefined "$tmp/t.cpp" -o "$tmp/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

cmd_build() {
    local build="$1" jobs="${2:-$(nproc)}"
    local cxx="${FUZZ_CXX:-clang++-14}" cc="${FUZZ_CC:-clang-14}"
    mkdir -p "$build/fuzz"
    local status="$build/fuzz/build-status"
    if ! have_fuzzer "$cxx"; then
        echo "fuzz: $cxx with libFuzzer and the sanitizer runtimes (Debian: clang-14, libclang-rt-14-dev) not found; fuzz targets not built"
        echo "unavailable: $cxx with libFuzzer not found" > "$status"
        return 0
    fi
    echo "failed: the build did not finish" > "$status"
    if cmake -S "$SRC" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBPFSIM_FUZZ=ON \
            -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null &&
        cmake --build "$build" -j "$jobs" --target fuzz_targets; then
        echo ok > "$status"
        return 0
    fi
    echo "failed: the fuzz targets do not build with $cxx (the libraries must compile with clang-14; see $build)" > "$status"
    echo "fuzz: the fuzz targets do not build with $cxx"
    return 1
}

cmd_run() {
    local build="$1" secs="$2"
    shift 2
    local targets=("$@")
    [ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
    build="$(cd "$build" 2>/dev/null && pwd)" || { echo "fuzz: no build directory '$1' (make fuzz-smoke builds it); skipped"; exit 77; }
    local bin="$build/tests/fuzz"
    case "$(cat "$build/fuzz/build-status" 2>/dev/null)" in
        failed*) echo "fuzz: $(cat "$build/fuzz/build-status")"; exit 1 ;;
        unavailable*) echo "fuzz: $(cat "$build/fuzz/build-status"); skipped"; exit 77 ;;
    esac
    for t in "${targets[@]}"; do
        if [ ! -x "$bin/fuzz_$t" ]; then
            echo "fuzz: $bin/fuzz_$t is not built (clang-14 with libFuzzer missing? see make fuzz-smoke); skipped"
            exit 77
        fi
    done
    local work="$build/fuzz"
    mkdir -p "$work/artifacts" "$work/logs"
    # (one run at a time regenerates the seeds; another may run beside it)
    flock "$work/seeds.lock" "$bin/fuzz_seeds" "$work/seeds" "$SHARED" "$SRC" "$build/corpus" > "$work/logs/seeds.log" 2>&1 ||
        { cat "$work/logs/seeds.log"; echo "fuzz: seed generation failed"; exit 1; }
    export BPFSIM_FUZZ_CORPUS_DIR="$build/corpus"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    local failed=0 summary=""
    for t in "${targets[@]}"; do
        local log="$work/logs/$t.log" corpus="$work/corpus/$t"
        mkdir -p "$corpus" "$work/seeds/$t"
        # Every input that once crashed, run once.
        local regress=("$HERE/regressions/$t"/*)
        if [ -e "${regress[0]}" ]; then
            if ! "$bin/fuzz_$t" -runs=1 "${regress[@]}" > "$log.regressions" 2>&1; then
                echo "fuzz: $t: a regression input fails again:"
                tail -n 40 "$log.regressions"
                failed=1
                continue
            fi
        fi
        local args=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len="$(max_len "$t")"
                    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-")
        local d
        d="$(dict "$t")"
        [ -n "$d" ] && args+=(-dict="$d")
        "$bin/fuzz_$t" "${args[@]}" "$corpus" "$work/seeds/$t" > "$log" 2>&1
        local rc=$?
        local execs cov ft units
        execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
        cov="$(grep -ao 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)"
        ft="$(grep -ao 'ft: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)"
        units="$(find "$corpus" -type f | wc -l)"
        if [ $rc -ne 0 ]; then
            echo "fuzz: $t FAILED (exit $rc); log $log:"
            # What the crash printed (the report, an uncaught exception's terminate message, the
            # stack), and the input itself, so that a failure on another machine can be replayed:
            # base64 -d > input && BUILD_DIR/tests/fuzz/fuzz_TARGET input
            grep -aE 'ERROR|property violated|terminate called|what\(\)|SUMMARY|Test unit written|==[0-9]+==|^ +#[0-9]+ ' "$log" | head -n 60
            local art
            art="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
            if [ -n "$art" ] && [ -f "$art" ] && [ "$(stat -c %s "$art")" -le 65536 ]; then
                echo "fuzz: the crashing input, base64:"
                base64 -w 100 "$art"
            fi
            failed=1
            summary+="$(printf '%-20s FAILED after %s executions' "$t" "${execs:-?}")"$'\n'
        else
            summary+="$(printf '%-20s %10s execs  cov %6s  ft %7s  corpus %6s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$units")"$'\n'
        fi
    done
    printf '%s' "$summary"
    if [ $failed -ne 0 ]; then
        echo "fuzz: failures; crashing inputs are in $work/artifacts/"
        exit 1
    fi
    echo "fuzz: ${#targets[@]} targets, ${secs}s each, no crash"
}

case "${1:-}" in
    build) shift; cmd_build "$@" ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 build BUILD_DIR [JOBS] | run BUILD_DIR SECONDS [TARGET]..." >&2; exit 2 ;;
esac
