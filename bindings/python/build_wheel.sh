#!/bin/sh
# build_wheel.sh <libferry.so> <LICENSE> <out dir> [python3]
#
# Builds the platform wheel of the Python binding, offline: the package, py.typed, the licence and a copy of the
# given libferry (as ferry/libferry.so) are staged in a temporary source tree, then `pip wheel --no-build-isolation
# --no-index` runs in a virtual environment made with --system-site-packages, so that the build backend
# (setuptools, wheel) comes from the system (Debian: python3-setuptools python3-wheel python3-venv) and nothing
# is downloaded. The wheel (ferry-VERSION-py3-none-<platform>.whl) is written to <out dir>.
#
# The wheel carries libferry only: libferry's own dependencies (SQLCipher, libcurl, libsodium, zstd, zlib, the C++
# runtime) come from the system it is installed on, as on the machine that built it.
set -eu
lib=$1
license=$2
out=$3
python=${4:-python3}
here=$(cd "$(dirname "$0")" && pwd)

[ -f "$lib" ] || { echo "build_wheel: $lib is not a file" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry_wheel_build.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src/ferry" "$out"
cp "$here/pyproject.toml" "$here/setup.py" "$src/"
cp "$here"/ferry/*.py "$here/ferry/py.typed" "$src/ferry/"
cp "$license" "$src/LICENSE"
cp "$lib" "$src/ferry/libferry.so" # the real file (a wheel keeps no symlinks)
chmod 0755 "$src/ferry/libferry.so"

"$python" -m venv --system-site-packages "$work/venv"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$work/venv/bin/python" -m pip wheel --no-build-isolation --no-deps \
  --no-index -w "$out" "$src" >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; exit 1; }
ls "$out"/ferry-*.whl
