#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) in their own build directory and runs each for a
# bounded time over a copy of the kept corpus. New crashers land in $BUILD_DIR/artifacts; keep them in corpus/.
# Usage: tests/fuzz/run.sh [seconds]   (env BUILD_DIR, default <repo>/../build-fuzz)
set -eu
SECONDS_MAX=${1:-60}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/../build-fuzz}
cmake -S "$SRC" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DFERRY_SANITIZE=address -DFERRY_BUILD_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_BENCH=OFF \
  -DFERRY_BUILD_EXAMPLES=OFF -DFERRY_BUILD_AGENT=OFF >/dev/null
ninja -C "$BUILD_DIR" -j2 fuzz_batch
WORK="$BUILD_DIR/fuzz-work"
mkdir -p "$WORK/corpus" "$BUILD_DIR/artifacts"
cp "$SRC"/tests/fuzz/corpus/* "$WORK/corpus/"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  "$BUILD_DIR/tests/fuzz/fuzz_batch" -max_total_time="$SECONDS_MAX" -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="$BUILD_DIR/artifacts/" "$WORK/corpus" "$SRC/tests/fuzz/corpus"
