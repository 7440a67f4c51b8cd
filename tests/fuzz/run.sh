#!/bin/sh
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) in their own build directory and runs each for a
# bounded time over a copy of its kept corpus. The targets run side by side, FUZZ_JOBS at a time (default 2: one
# libFuzzer process keeps one core busy), so a second target does not make the stage longer on a 2-core machine.
# New crashers land in $BUILD_DIR/artifacts/<target>/; keep them in the target's corpus.
# Usage: tests/fuzz/run.sh [seconds]   (env BUILD_DIR, default <repo>/../build-fuzz; FUZZ_TARGETS="fuzz_a fuzz_b" to
# pick some; FUZZ_JOBS)
# Targets: every add_executable(fuzz_...) in tests/fuzz/CMakeLists.txt. Corpus: tests/fuzz/corpus/<target>/ when that
# folder exists, else the files directly in tests/fuzz/corpus/.
set -eu
SECONDS_MAX=${1:-60}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/../build-fuzz}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-$(sed -n 's/^add_executable(\(fuzz_[A-Za-z0-9_]*\).*/\1/p' "$SRC/tests/fuzz/CMakeLists.txt")}
cmake -S "$SRC" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DFERRY_SANITIZE=address -DFERRY_BUILD_FUZZ=ON -DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_BENCH=OFF \
  -DFERRY_BUILD_EXAMPLES=OFF -DFERRY_BUILD_AGENT=ON >/dev/null
# shellcheck disable=SC2086  # a list of target names
ninja -C "$BUILD_DIR" -j2 $TARGETS

# run_one TARGET: fuzzes TARGET for SECONDS_MAX over a scratch copy of its corpus (output in $BUILD_DIR/TARGET.log).
run_one() {
  t=$1
  seeds="$SRC/tests/fuzz/corpus/$t"
  [ -d "$seeds" ] || seeds="$SRC/tests/fuzz/corpus"
  work="$BUILD_DIR/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$BUILD_DIR/artifacts/$t"
  find "$seeds" -maxdepth 1 -type f -exec cp {} "$work/corpus/" \;
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD_DIR/tests/fuzz/$t" -max_total_time="$SECONDS_MAX" -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$BUILD_DIR/artifacts/$t/" "$work/corpus" >"$BUILD_DIR/$t.log" 2>&1
}

failed=""
pids=""
running=0
for t in $TARGETS; do
  run_one "$t" &
  pids="$pids $!:$t"
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    for p in $pids; do
      wait "${p%%:*}" || failed="$failed ${p#*:}"
    done
    pids=""
    running=0
  fi
done
for p in $pids; do
  wait "${p%%:*}" || failed="$failed ${p#*:}"
done
for t in $TARGETS; do
  echo "---- $t ($BUILD_DIR/$t.log) ----"
  cat "$BUILD_DIR/$t.log"
done
if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed (crashers in $BUILD_DIR/artifacts/)" >&2
  exit 1
fi
echo "fuzz: $(echo $TARGETS | wc -w) target(s), ${SECONDS_MAX} s each, no crash"
