# bpfsim: `make demo` and `make test` are the whole set-up on a fresh Debian 12 machine.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME  ?= 60
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build demo test test-asan bench clean fuzz-build fuzz-smoke

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

# The fuzz targets are built first so ctest's fuzz-smoke test (label fuzz) can run them briefly;
# if they do not build, that test fails and says why, and the other tests still run.
test: build
	-@tests/fuzz/fuzz.sh build $(FUZZ_BUILD) $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# libFuzzer targets (tests/fuzz) with clang-14, ASan and UBSan; fuzz-smoke runs each for
# FUZZ_TIME seconds (corpora accumulate in $(FUZZ_BUILD)/fuzz/corpus).
fuzz-build: deps
	@tests/fuzz/fuzz.sh build $(FUZZ_BUILD) $(JOBS)

fuzz-smoke: fuzz-build
	@tests/fuzz/fuzz.sh run $(FUZZ_BUILD) $(FUZZ_TIME)

# (fuzz-smoke runs here too: the fuzz targets are rebuilt first, never run stale)
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DBPFSIM_SANITIZE=ON -DBPFSIM_BENCH=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	-@tests/fuzz/fuzz.sh build $(FUZZ_BUILD) $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

bench: build
	@$(BUILD)/bench/bench_interp

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
