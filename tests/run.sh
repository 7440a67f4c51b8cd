#!/usr/bin/env bash
# Ferry's one-command test run (what CI runs through .ci/run). On a fresh Debian 12 clone, as root:
#   tests/run.sh
# Stages, in order (pick some with FERRY_STAGES="release asan"):
#   release  build/release  RelWithDebInfo, -DFERRY_WERROR=ON; every ctest test (finding no test is a failure)
#   asan     build/asan     ASan+UBSan (LeakSanitizer on: it works in this sandbox), no benchmarks; every ctest
#                           test except those that run an uninstrumented host process over the instrumented
#                           libferry (python.*, java.*, install.*, examples.python_*/java_*: "ASan runtime does not
#                           come first" / unresolved __asan symbols); they run in the release stage. Label a test
#                           "nosan" to keep it out of the sanitizer stages for the same reason.
#   tsan     build/tsan     ThreadSanitizer; only the tests labelled "concurrency"
#   fuzz     build/fuzz     tests/fuzz/run.sh (clang libFuzzer), FERRY_FUZZ_SECONDS per target (default 45; two
#                           targets, so the stage stays near 2 minutes)
# The configure/build/test settings live in CMakePresets.json (presets release, asan, tsan); this script runs them.
# Benchmarks are not run here (figures need a quiet machine): run them by hand with tests/bench/run.sh.
# Every build uses ninja -j2 (FERRY_JOBS to change). A failing build or test fails its stage and the script; later
# stages still run (FERRY_FAIL_FAST=1 stops at the first failure). A summary with times is printed at the end.
# Measured on the 2-core machine with other builds running at the same time (load 5-10), cold build dirs:
# release build 280 s + tests 134 s; asan build 774 s (+ tests ~4 min). A quiet machine takes roughly half.
# The summary prints each stage's time; `build took` / `tests took` lines give the split.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

STAGES=${FERRY_STAGES:-release asan tsan fuzz}
JOBS=${FERRY_JOBS:-2}
FUZZ_SECONDS=${FERRY_FUZZ_SECONDS:-45}
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

stage_release() { preset_stage release; }
stage_asan() { preset_stage asan; }
stage_tsan() { preset_stage tsan; }
stage_fuzz() {
  if [[ ! -f tests/fuzz/run.sh ]]; then
    echo "fuzz: tests/fuzz/run.sh absent, nothing to run"
    return 0
  fi
  log "fuzz: tests/fuzz/run.sh, ${FUZZ_SECONDS} s per target"
  BUILD_DIR="$ROOT/build/fuzz" bash tests/fuzz/run.sh "$FUZZ_SECONDS"
}

log "dependencies"
scripts/install-deps.sh

declare -A RESULT=()
declare -A TIME=()
declare -A COUNTS=()
TOTAL_PASSED=0
TOTAL_FAILED=0
ORDER=()
failed=0
for stage in $STAGES; do
  if ! declare -F "stage_$stage" >/dev/null; then
    echo "unknown stage '$stage' (known: release asan tsan fuzz)" >&2
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
# The plain closing line CI reads: ctest results summed over the stages that ran tests.
echo "ctest: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$failed"
