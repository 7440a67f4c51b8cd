#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) in their own build directory and runs each for a
# bounded time over a copy of its kept corpus: fuzz_batch (the collector's ingest path, corpus/) and fuzz_pii (the
# PII masker, corpus_pii/). New crashers land in $BUILD_DIR/artifacts/<target>-*; keep them in the target's corpus.
# Usage: tests/fuzz/run.sh [seconds per target]   (env BUILD_DIR, default <repo>/../build-fuzz)
set -eu
SECONDS_MAX=${1:-45}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/../build-fuzz}
cmake -S "$SRC" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DFERRY_SANITIZE=address -DFERRY_BUILD_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_BENCH=OFF \
  -DFERRY_BUILD_EXAMPLES=OFF -DFERRY_BUILD_AGENT=OFF >/dev/null
ninja -C "$BUILD_DIR" -j2 fuzz_batch fuzz_pii
mkdir -p "$BUILD_DIR/artifacts"
# run_target NAME CORPUS_DIR MAX_LEN
run_target() {
  work="$BUILD_DIR/fuzz-work/$1"
  mkdir -p "$work"
  cp "$SRC/tests/fuzz/$2"/* "$work/"
  echo "fuzz: $1 for $SECONDS_MAX s"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD_DIR/tests/fuzz/$1" -max_total_time="$SECONDS_MAX" -rss_limit_mb=2048 -max_len="$3" \
    -artifact_prefix="$BUILD_DIR/artifacts/$1-" "$work" "$SRC/tests/fuzz/$2"
}
run_target fuzz_batch corpus 65536
run_target fuzz_pii corpus_pii 4096
