#!/usr/bin/env bash
# Tests the configure logic of FERRY_BUNDLED_DEPS (cmake/FerryBundledDeps.cmake) without building anything and
# without the network: the real archives are not on this machine, so what is checked is that a configure with
# missing or wrong archives stops with a message naming each one (its expected SHA-256 and where to get it), that a
# malformed hash is refused, and that archives matching their hashes get through to a generated build (an SDK-only
# configure: FERRY_TRANSPORT=none, no servers, no tests).
# Usage: bundled_deps_test.sh <source dir> <cmake>
set -euo pipefail

SRC=$1
CMAKE=${2:-cmake}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

configure() {
  # configure NAME ARGS...: configure into $WORK/NAME, output in $WORK/NAME.log, exit status in RC.
  local name=$1
  shift
  set +e
  "$CMAKE" -S "$SRC" -B "$WORK/$name" -G Ninja -DFERRY_BUNDLED_DEPS=ON -DFERRY_TRANSPORT=none \
    -DFERRY_BUILD_AGENT=OFF -DFERRY_BUILD_COLLECTOR=OFF -DFERRY_BUILD_TESTS=OFF -DFERRY_BUILD_BENCH=OFF \
    -DFERRY_BUILD_EXAMPLES=OFF -DFERRY_BUILD_BINDINGS=OFF "$@" >"$WORK/$name.log" 2>&1
  RC=$?
  set -e
}
check() {
  local what=$1 log=$2
  shift 2
  if "$@"; then
    echo "ok   - $what"
  else
    echo "FAIL - $what"
    echo "------ configure output:"
    cat "$log"
    FAILS=$((FAILS + 1))
  fi
}
has() { grep -q -- "$2" "$WORK/$1.log"; }

# 1. An empty archive folder: the configure fails and names every archive, with its hash and upstream.
mkdir -p "$WORK/empty"
configure missing -DFERRY_DEPS_ARCHIVE_DIR="$WORK/empty"
check "missing archives fail the configure" "$WORK/missing.log" test "$RC" -ne 0
for a in "ZSTD: archive missing: $WORK/empty/zstd-1.5.6.tar.gz" "SODIUM: archive missing" \
         "SQLCIPHER: archive missing" "OPENSSL: archive missing" \
         "expected SHA-256 8c29e06cf42aacc1eafc4077ae2ec6c6fcb96a626157e0593d5e82a34fd403c1" \
         "get it from https://github.com/facebook/zstd/releases/download/v1.5.6/zstd-1.5.6.tar.gz"; do
  check "missing archives: says '$a'" "$WORK/missing.log" has missing "$a"
done

# 2. An archive whose content does not match its hash: named, with both hashes.
mkdir -p "$WORK/wrong"
echo "not zstd" >"$WORK/wrong/zstd-1.5.6.tar.gz"
configure wrong -DFERRY_DEPS_ARCHIVE_DIR="$WORK/wrong"
wrong_sha=$(sha256sum "$WORK/wrong/zstd-1.5.6.tar.gz" | cut -d' ' -f1)
check "a wrong archive fails the configure" "$WORK/wrong.log" test "$RC" -ne 0
check "a wrong archive is named with its hash" "$WORK/wrong.log" has wrong "zstd-1.5.6.tar.gz has SHA-256 $wrong_sha"

# 3. A malformed hash is refused.
configure badhash -DFERRY_DEPS_ARCHIVE_DIR="$WORK/empty" -DFERRY_DEP_ZSTD_SHA256=abc123
check "a malformed hash fails the configure" "$WORK/badhash.log" test "$RC" -ne 0
check "a malformed hash is named" "$WORK/badhash.log" has badhash "FERRY_DEP_ZSTD_SHA256 is not a SHA-256"

# 4. Archives that match the hashes given for them (overridden URL and hash): the configure goes through and
#    generates the build (the external projects are defined; nothing is built here).
mkdir -p "$WORK/given"
args=()
for n in ZSTD SODIUM SQLCIPHER OPENSSL; do
  echo "stand-in for $n" >"$WORK/given/$n.tar.gz"
  args+=("-DFERRY_DEP_${n}_URL=$WORK/given/$n.tar.gz"
         "-DFERRY_DEP_${n}_SHA256=$(sha256sum "$WORK/given/$n.tar.gz" | cut -d' ' -f1)")
done
configure given "${args[@]}"
check "matching archives configure and generate" "$WORK/given.log" test "$RC" -eq 0
check "the external projects are in the build" "$WORK/given.log" grep -q "ferry_dep_sqlcipher_build" \
  "$WORK/given/build.ninja"

if [[ $FAILS -ne 0 ]]; then
  echo "bundled_deps_test: $FAILS check(s) failed"
  exit 1
fi
echo "bundled_deps_test: all checks passed"
