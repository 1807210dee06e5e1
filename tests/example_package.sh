#!/bin/sh
# Installs this build into a temporary prefix, then configures, builds and tests the user
# project examples/catch2 against it with find_package(bpfsim): the package as users get it.
# usage: example_package.sh CMAKE CTEST BUILD_DIR SOURCE_DIR C_COMPILER CXX_COMPILER BUILD_TYPE
set -eu
if [ $# -ne 7 ]; then
    echo "usage: $0 CMAKE CTEST BUILD_DIR SOURCE_DIR C_COMPILER CXX_COMPILER BUILD_TYPE" >&2
    exit 2
fi
cmake=$1 ctest=$2 build=$3 src=$4 cc=$5 cxx=$6 type=$7
tmp=$(mktemp -d /tmp/bpfsim-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

step() {   # step NAME COMMAND...: runs it, shows its output only when it fails
    name=$1
    shift
    if ! "$@" >"$tmp/$name.log" 2>&1; then
        cat "$tmp/$name.log"
        echo "FAIL: $name: $*"
        exit 1
    fi
}

# The libraries it installs (a no-op when they are up to date, as after `make`).
step build-libraries "$cmake" --build "$build" --target bpfsim_common bpfsim_vm bpfsim_btf bpfsim_harness
# The libraries, headers and package files (the CLI is another component), installed in one
# place and then moved: the package must be relocatable.
step install "$cmake" --install "$build" --prefix "$tmp/staged" --component Development
mv "$tmp/staged" "$tmp/prefix"
if grep -rlF -e "$tmp/staged" -e "$src" -e "$build" "$tmp/prefix/lib/cmake/bpfsim"; then
    echo "FAIL: the package files above name the install, source or build directory"
    exit 1
fi
for f in include/bpfsim/bpfsim.hpp include/bpfsim/harness/harness.hpp lib/cmake/bpfsim/bpfsimConfig.cmake \
         lib/cmake/bpfsim/bpfsimConfigVersion.cmake lib/cmake/bpfsim/bpfsimTargets.cmake lib/libbpfsim_harness.a; do
    [ -f "$tmp/prefix/$f" ] || { echo "FAIL: install: no $f"; exit 1; }
done
# Every header installed is complete: what it includes with quotes is installed too.
missing=$(cd "$tmp/prefix/include/bpfsim" && find . -type f \( -name '*.hpp' -o -name '*.def' \) | while read -r f; do
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
        [ -f "$inc" ] || [ -f "$(dirname "$f")/$inc" ] || echo "$f includes $inc"
    done
done)
if [ -n "$missing" ]; then
    echo "FAIL: installed headers include files that are not installed:"
    echo "$missing"
    exit 1
fi
# Only the prefix: nothing may come from the source or build tree.
step configure "$cmake" -S "$src/examples/catch2" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_CXX_FLAGS=-Werror
if grep '^CXX_INCLUDES' "$tmp/build/CMakeFiles/example_tests.dir/flags.make" | grep -qF -e "$src" -e "$build"; then
    echo "FAIL: the example's include paths reach into the source or build tree:"
    cat "$tmp/build/CMakeFiles/example_tests.dir/flags.make"
    exit 1
fi
step build "$cmake" --build "$tmp/build" -j 2
cd "$tmp/build"
"$ctest" --output-on-failure
