#!/usr/bin/env bash
# Ferry's one-command test run (what CI runs through .ci/run). On a fresh Debian 12 clone, as root:
#   tests/run.sh
# Stages, in order (pick some with FERRY_STAGES="release asan"):
#   docs     tests/docs/check_docs.py: links between the Markdown files resolve (files and #anchors), documents
#            named in the code exist, no tracked file names a path of one machine or a folder beside the checkout,
#            every command or program block of README.md and docs/ is run by a test (<!-- test: ID -->; the release
#            stage runs those tests: docs.*) or marked <!-- illustrative -->; then the checker's own test (it must
#            catch a planted dead link, path and unmarked block). Seconds, no build.
#   release  build/release  RelWithDebInfo (-O2, line-table debug info), -DFERRY_WERROR=ON; builds everything
#                           (benchmarks and bindings too); every ctest test (finding no test is a failure)
#   demo     build/demo-data  examples/demo.sh end to end, as README.md's first command runs it (collector on loopback
#                           with TLS, the C quickstart with consent and masking, a subject shown, exported and erased,
#                           the audit log verified, the insight asked, the console's URL printed) on the release
#                           build; passes when the demo exits 0 and prints its closing line. About a minute.
#   asan     build/asan     ASan+UBSan at -Og (LeakSanitizer on: it works in this sandbox); builds only the programs
#                           its tests run (target ferry_test_programs: no benchmarks, bindings, daemons no test
#                           starts there, nor test binaries labelled "slow", which are not even registered); every
#                           ctest test except the "slow" ones (real-process integration and fault tests: they run in
#                           the release stage) and those that run an uninstrumented host process over the
#                           instrumented libferry (python.*, java.*, install.*, examples.python_*/java_*: "ASan
#                           runtime does not come first" / unresolved __asan symbols); they run in the release stage.
#                           Label a test "nosan" to keep it out of the sanitizer stages for the same reason.
#   tsan     build/tsan     ThreadSanitizer at -O1; builds and runs only the tests labelled "concurrency"
#   cross    build/cross    the SDK alone (no collector, agent, bindings or benchmarks) cross-built for aarch64 Linux
#                           with Debian's cross toolchain (cmake/toolchains/aarch64-linux-gnu.cmake) twice:
#                           FERRY_TRANSPORT=curl (build/cross/curl) and FERRY_TRANSPORT=none (build/cross/none);
#                           each runs its C ABI tests, the ferry.hpp tests (also built -fno-exceptions) and the C and
#                           C++ quickstarts under qemu-user (qemu-aarch64-static); the none build also checks that
#                           libferry needs no libcurl and that uploads go through the app's transport. Installs what
#                           it needs itself (scripts/install-deps.sh --group cross: the cross compilers, qemu-user,
#                           the arm64 -dev libraries through multi-arch) and unpacks SQLCipher's arm64 files into
#                           build/cross/sysroot (scripts/cross-sysroot.sh: never apt-get install
#                           libsqlcipher-dev:arm64, which would remove the native one). Python and Java tests are
#                           not built there (they need the host's interpreter and JVM).
#   fuzz     build/fuzz     tests/fuzz/run.sh (clang libFuzzer), FERRY_FUZZ_SECONDS per target (default 30), the
#                           targets side by side (one core each)
# The configure/build/test settings live in CMakePresets.json (presets release, asan, tsan); this script runs them.
# Benchmarks are not run here (figures need a quiet machine): run them by hand with tests/bench/run.sh.
# Every build uses ninja -j2 (FERRY_JOBS to change). A failing build or test fails its stage and the script; later
# stages still run (FERRY_FAIL_FAST=1 stops at the first failure). A summary with times is printed at the end.
#
# Measured on the 2-core machine from cold build directories, each stage with the shared CPU lock held (nothing else
# building; load average 1-2 from the stage itself), with an empty ccache (what a fresh CI machine has):
#   stage     before (commit cad6f48)          after                              what changed
#   docs      -                                3 s                                new
#   release   339 s (build 262 + tests 76)     244 s (build 170 + tests 73)       -g1, one test PCH
#   asan      729 s (build 684 + tests 44)     292 s (build 247 + tests 44)       only the programs its tests run,
#                                                                                 -O1 -g1, test PCH
#   tsan      111 s (build 79 + tests 31)      88 s (build 59 + tests 28)         -g1, test PCH
#   fuzz      77 s (build 16 + 61 s fuzzing)   76 s                               -g1; targets run side by side
# The whole .ci/run on a clean clone with an empty ccache, lock held (load 1.4 at start and end): 694 s (11.6 min):
# dependencies + docs 1 s, release 240 s (build 169 + tests 70), asan 286 s (243 + 42), tsan 90 s (60 + 28), fuzz
# 77 s. Before: 1361 s for the last CI run before this work, 1256 s for the sum of the stages above (cad6f48).
# The summary prints each stage's time; `build took` / `tests took` lines give the split.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

STAGES=${FERRY_STAGES:-docs release demo cross asan tsan fuzz}
JOBS=${FERRY_JOBS:-2}
FUZZ_SECONDS=${FERRY_FUZZ_SECONDS:-30}
FAIL_FAST=${FERRY_FAIL_FAST:-0}

log() { printf '\n==== %s ====\n' "$*"; }

# configure + build + ctest for one preset; extra args go to ctest.
preset_stage() {
  local preset=$1
  shift
  log "$preset: configure"
  cmake --preset "$preset"
  log "$preset: build (ninja -j$JOBS)"
  local t0=$SECONDS
  cmake --build --preset "$preset" --parallel "$JOBS"
  echo "$preset: build took $((SECONDS - t0)) s"
  log "$preset: test"
  t0=$SECONDS
  ctest --preset "$preset" --parallel "$JOBS" "$@" 2>&1 | tee "$ROOT/build/$preset/ctest.log"
  echo "$preset: tests took $((SECONDS - t0)) s"
}

stage_docs() {
  log "docs: references and machine paths"
  python3 tests/docs/check_docs.py
  python3 tests/docs/check_docs_test.py
}
stage_release() { preset_stage release; }
stage_asan() { preset_stage asan; }
stage_tsan() { preset_stage tsan; }
stage_cross() {
  log "cross: dependencies (aarch64 cross toolchain, qemu-user, arm64 libraries, SQLCipher sysroot)"
  scripts/install-deps.sh --group cross
  local sysroot="$ROOT/build/cross/sysroot"
  scripts/cross-sysroot.sh "$sysroot" arm64
  local t0=$SECONDS transport
  for transport in curl none; do
    log "cross: configure and build (aarch64, FERRY_TRANSPORT=$transport, ninja -j$JOBS)"
    cmake -S "$ROOT" -B "build/cross/$transport" -G Ninja \
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/aarch64-linux-gnu.cmake" -DFERRY_CROSS_SYSROOT="$sysroot" \
      -DCMAKE_BUILD_TYPE=Release -DFERRY_WERROR=ON -DFERRY_TRANSPORT="$transport" \
      -DFERRY_BUILD_COLLECTOR=OFF -DFERRY_BUILD_AGENT=OFF -DFERRY_BUILD_BINDINGS=OFF -DFERRY_BUILD_BENCH=OFF \
      -DFERRY_BUILD_EXAMPLES=ON -DFERRY_BUILD_TESTS=ON -DFERRY_ONLY_TESTS=c_api -DFERRY_TEST_PCH=OFF >/dev/null
    # Only what the tests run: libferry (.so and the merged .a), the C ABI and ferry.hpp test programs, the
    # quickstarts (gtest_discover_tests lists the GoogleTest cases by running them under qemu).
    cmake --build "build/cross/$transport" --parallel "$JOBS" --target ferry_test_programs ferry_static
  done
  echo "cross: build took $((SECONDS - t0)) s"
  t0=$SECONDS
  local passed=0 total=0 rc=0 counts f n
  for transport in curl none; do
    log "cross: test (aarch64 under qemu-user, FERRY_TRANSPORT=$transport)"
    ctest --test-dir "build/cross/$transport" --parallel "$JOBS" --output-on-failure 2>&1 |
      tee "build/cross/$transport/ctest.log" || rc=1
    counts=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "build/cross/$transport/ctest.log" | tail -1 || true)
    if [[ -z "$counts" ]]; then
      rc=1
      continue
    fi
    f=${counts%% test*}
    n=${counts##* }
    passed=$((passed + n - f))
    total=$((total + n))
  done
  echo "cross: tests took $((SECONDS - t0)) s"
  # One closing line for the summary (both builds' tests together).
  echo "cross: $((total - passed)) tests failed out of $total" | tee "build/cross/ctest.log"
  return "$rc"
}
stage_demo() {
  log "demo: examples/demo.sh (README.md's first command) on build/release"
  local data="$ROOT/build/demo-data" out="$ROOT/build/demo.log"
  FERRY_DEMO_DATA="$data" FERRY_JOBS="$JOBS" examples/demo.sh </dev/null 2>&1 | tee "$out"
  grep -q '^demo finished' "$out" || {
    echo "demo: the closing line 'demo finished' is missing" >&2
    return 1
  }
}
stage_fuzz() {
  if [[ ! -f tests/fuzz/run.sh ]]; then
    echo "fuzz: tests/fuzz/run.sh absent, nothing to run"
    return 0
  fi
  log "fuzz: tests/fuzz/run.sh, ${FUZZ_SECONDS} s per target"
  BUILD_DIR="$ROOT/build/fuzz" bash tests/fuzz/run.sh "$FUZZ_SECONDS"
}

log "dependencies"
# --group browser: chromium, chromium-driver and python3-selenium for the console's browser test (release stage).
scripts/install-deps.sh --group browser

declare -A RESULT=()
declare -A TIME=()
declare -A COUNTS=()
TOTAL_PASSED=0
TOTAL_FAILED=0
ORDER=()
failed=0
for stage in $STAGES; do
  if ! declare -F "stage_$stage" >/dev/null; then
    echo "unknown stage '$stage' (known: docs release demo cross asan tsan fuzz)" >&2
    RESULT[$stage]=unknown
    TIME[$stage]=0
    ORDER+=("$stage")
    failed=1
    continue
  fi
  t0=$SECONDS
  rm -f "build/$stage/ctest.log"
  # A subshell with errexit on: any failing command ends the stage (a function called from `if` would not).
  set +e
  (
    set -euo pipefail
    "stage_$stage"
  )
  rc=$?
  set -e
  TIME[$stage]=$((SECONDS - t0))
  ORDER+=("$stage")
  # ctest's closing line: "98% tests passed, 1 tests failed out of 45".
  counts=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "build/$stage/ctest.log" 2>/dev/null | tail -1 || true)
  if [[ -n "$counts" ]]; then
    f=${counts%% test*}
    n=${counts##* }
    TOTAL_FAILED=$((TOTAL_FAILED + f))
    TOTAL_PASSED=$((TOTAL_PASSED + n - f))
    COUNTS[$stage]="$((n - f))/$n tests"
  fi
  if [[ $rc -eq 0 ]]; then
    RESULT[$stage]=passed
  else
    RESULT[$stage]="FAILED (exit $rc)"
    failed=1
    if [[ "$FAIL_FAST" == "1" ]]; then
      break
    fi
  fi
done

log "summary"
for stage in "${ORDER[@]}"; do
  printf '  %-8s %-18s %5d s  %s\n' "$stage" "${RESULT[$stage]}" "${TIME[$stage]}" "${COUNTS[$stage]:-}"
done
printf '  total    %24d s\n' "$SECONDS"
if [[ $failed -ne 0 ]]; then
  echo "tests/run.sh: FAILED"
else
  echo "tests/run.sh: all stages passed"
fi
# Which tests failed, and what each printed where it failed (CI shows the end of this output, after the fuzzers' logs).
failure_digest() {
  local log name
  for log in $(find "build/$1" -maxdepth 2 -name ctest.log 2>/dev/null); do
    grep -q '^The following tests FAILED:' "$log" || continue
    printf '\n==== %s: failed tests (%s) ====\n' "$1" "$log"
    sed -n '/^The following tests FAILED:/,/^Errors while running/p' "$log" | grep -E '^\s+[0-9]+ - ' | head -20
    local last
    last="$(dirname "$log")/Testing/Temporary/LastTest.log"
    [[ -f "$last" ]] || continue
    sed -n '/^The following tests FAILED:/,/^Errors while running/p' "$log" | grep -E '^\s+[0-9]+ - ' | head -5 |
      sed -E 's/^\s+[0-9]+ - (.*) \([^)]*\)$/\1/' | while read -r name; do
      printf -- '---- %s\n' "$name"
      awk -v n="$name" '$0 ~ "^[0-9]+/[0-9]+ Test: " && $3 == n {on=1} on {print} on && index($0, "\"" n "\" end time") {exit}' \
        "$last" | grep -E -A6 'Failure|FAILED|error|Error|Sanitizer|Timeout|Exception' | head -40
    done
  done
}
if [[ $failed -ne 0 ]]; then
  for stage in "${ORDER[@]}"; do
    [[ "${RESULT[$stage]}" == passed ]] || failure_digest "$stage"
  done
fi
# The plain closing line CI reads: ctest results summed over the stages that ran tests.
echo "ctest: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$failed"
