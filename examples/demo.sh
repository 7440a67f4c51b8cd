#!/usr/bin/env bash
# Ferry demo: from a fresh clone to the quickstart running, in one command (as root on Debian 12).
#   examples/demo.sh [args for ferry_quickstart...]
# Steps (each a function below; add one by writing step_<name> and listing it in main):
#   deps       scripts/install-deps.sh (fast when everything is installed)
#   configure  the "release" CMake preset (build/release)
#   build      only what the demo needs: ferry_quickstart, plus ferry-collector and ferryctl when the tree has them
#   quickstart runs the C quickstart (examples/c/quickstart.c) with its buffer under demo-data/
# Background processes started with start_bg (a collector, say) are stopped when the script exits, however it exits.
# Environment: FERRY_DEMO_DATA (default <repo>/demo-data), FERRY_JOBS (default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build/release"
DATA=${FERRY_DEMO_DATA:-$ROOT/demo-data}
JOBS=${FERRY_JOBS:-2}
cd "$ROOT"

# ---- plumbing -----------------------------------------------------------------------------------------------------

BG_PIDS=()

# start_bg NAME LOGFILE CMD...: runs CMD in the background (output to LOGFILE), stopped at exit.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  BG_PIDS+=("$!")
  echo "started $name (pid $!, log $logfile)"
}

cleanup() {
  local rc=$?
  local pid
  for pid in "${BG_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      # Give it 5 s to finish cleanly, then force.
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
  local name=$1
  shift
  printf '\n== %s ==\n' "$name"
  "step_$name" "$@"
}

# has_target NAME: true when the configured build defines that target.
has_target() {
  ninja -C "$BUILD" -t query "$1" >/dev/null 2>&1
}

# ---- steps --------------------------------------------------------------------------------------------------------

step_deps() {
  scripts/install-deps.sh
}

step_configure() {
  cmake --preset release >/dev/null
  echo "configured $BUILD"
}

step_build() {
  if ! has_target ferry_quickstart; then
    echo "this tree has no ferry_quickstart target (examples/CMakeLists.txt)" >&2
    return 1
  fi
  local targets=(ferry_quickstart)
  local t
  for t in ferry-collector ferryctl; do
    if has_target "$t"; then
      targets+=("$t")
    fi
  done
  echo "building: ${targets[*]}"
  cmake --build "$BUILD" --parallel "$JOBS" --target "${targets[@]}"
}

step_quickstart() {
  mkdir -p "$DATA"
  local exe="$BUILD/examples/ferry_quickstart"
  if [[ ! -x "$exe" ]]; then
    echo "ferry_quickstart not found at $exe" >&2
    return 1
  fi
  FERRY_STORAGE_PATH="$DATA/quickstart.db" "$exe" "$@"
}

main() {
  step deps
  step configure
  step build
  step quickstart "$@"
  printf '\ndemo finished\n'
}

main "$@"
