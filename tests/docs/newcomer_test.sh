#!/bin/sh
# The newcomer path of README.md, as pasted: the getting-started program (<!-- test: readme-first-program -->) and
# its compile line (<!-- test: readme-compile -->) are extracted from README.md, the build is installed into a
# temporary prefix with `cmake --install` (what README.md says to do first), and the compile line runs against it
# with pkg-config. The program must run, mask the e-mail before it reaches the disk and refuse the denied purpose.
# Usage: newcomer_test.sh BUILD_DIR LIBDIR
set -eu
build=$1
libdir=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-newcomer-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail install; }
python3 "$here/check_docs.py" --extract "$root"/README.md readme-first-program >"$work/first.c"
python3 "$here/check_docs.py" --extract "$root"/README.md readme-compile >"$work/compile.sh"
grep -q "int main" "$work/first.c" || fail "README.md has no getting-started program"
grep -q "pkg-config" "$work/compile.sh" || fail "README.md has no compile line"

cd "$work"
# No collector here: the program runs locally (FERRY_ENDPOINT unset), as it does for a newcomer at first.
env -u FERRY_ENDPOINT -u FERRY_WRITE_KEY PKG_CONFIG_PATH="$work/prefix/$libdir/pkgconfig" \
  LD_LIBRARY_PATH="$work/prefix/$libdir" sh -e compile.sh >out.txt 2>err.txt || {
  cat out.txt err.txt; fail "the README's compile line or program failed"; }
cat out.txt
grep -q "^track: ok$" out.txt || fail "track did not return FERRY_OK"
grep -q "^marketing event: consent denied" out.txt || fail "the denied purpose was not refused"
grep -q '"dropped_consent":1' out.txt || fail "stats do not count the refused event"
grep -q "^close: ok$" out.txt || fail "close did not return FERRY_OK"
[ -s first-look.db ] || fail "no buffer file first-look.db"
[ -s first-look.db.key ] || fail "no key file first-look.db.key"
if grep -q "li.lei@example.com" first-look.db first-look.db-wal 2>/dev/null; then fail "the raw e-mail is on disk"; fi
if grep -q "Order Completed" first-look.db first-look.db-wal 2>/dev/null; then fail "the buffer is not encrypted"; fi
echo "newcomer path ok"
