#!/bin/sh
# wheel_test.sh <build_wheel.sh> <libferry.so> <LICENSE> <tests dir> <python3 with pytest> <dir> [dir...]
#
# The platform wheel end to end: build it offline (build_wheel.sh), check what it carries (libferry, py.typed, the
# licence in its metadata, a platform tag), install it into a fresh virtual environment (--system-site-packages only
# for pytest), then run the binding's tests there from a scratch directory, with FERRY_LIBRARY, PYTHONPATH and
# LD_LIBRARY_PATH unset: the package and the library must come from the venv. Every <dir> given (the source and
# build trees) must appear neither in sys.path nor among the mapped libraries.
set -eu
build_wheel=$1 lib=$2 license=$3 tests=$4 python=$5
shift 5
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry_wheel_test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel_test: FAIL: $*" >&2; exit 1; }

echo "== build the wheel"
sh "$build_wheel" "$lib" "$license" "$work/dist" "$python" || fail "build_wheel.sh"
whl=$(ls "$work"/dist/ferry-*.whl)

echo "== what the wheel carries: $(basename "$whl")"
"$python" - "$whl" <<'PY' || fail "wheel contents"
import sys, zipfile, sysconfig
whl = sys.argv[1]
name = whl.rsplit("/", 1)[-1]
plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
assert name == f"ferry-0.1.0-py3-none-{plat}.whl", f"{name}: want a py3-none-{plat} platform wheel"
z = zipfile.ZipFile(whl)
names = set(z.namelist())
for f in ("ferry/__init__.py", "ferry/py.typed", "ferry/libferry.so", "ferry-0.1.0.dist-info/LICENSE"):
    assert f in names, f"{f} missing from {sorted(names)}"
meta = z.read("ferry-0.1.0.dist-info/METADATA").decode()
assert "License: Apache-2.0" in meta.splitlines(), meta
assert "Classifier: License :: OSI Approved :: Apache Software License" in meta, meta
wheel = z.read("ferry-0.1.0.dist-info/WHEEL").decode()
assert "Root-Is-Purelib: false" in wheel, wheel
assert z.read("ferry/libferry.so")[:4] == b"\x7fELF", "libferry.so is not an ELF file"
assert "Apache License" in z.read("ferry-0.1.0.dist-info/LICENSE").decode(), "licence text"
print("ok:", len(names), "files")
PY

echo "== install into a fresh venv"
"$python" -m venv --system-site-packages "$work/venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$work/venv/bin/python" -m pip install --no-index --no-deps "$whl" \
  >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; fail "pip install"; }

echo "== the installed package stands alone"
mkdir -p "$work/run"
cp -r "$tests" "$work/run/tests"
cd "$work/run"
run() { env -u FERRY_LIBRARY -u PYTHONPATH -u LD_LIBRARY_PATH -u PYTHONHOME PYTHONDONTWRITEBYTECODE=1 "$@"; }
run "$work/venv/bin/python" - "$work/venv" "$@" <<'PY' || fail "the installed package reaches outside the venv"
import os, sys
venv, forbidden = os.path.realpath(sys.argv[1]), [os.path.realpath(d) for d in sys.argv[2:]]
import ferry
pkg = os.path.realpath(os.path.dirname(ferry.__file__))
assert pkg.startswith(venv + os.sep), f"ferry imported from {pkg}, not from the venv"
assert ferry.library_path() == os.path.join(pkg, "libferry.so"), ferry.library_path()
print("libferry", ferry.library_version(), "from", ferry.library_path())
for p in sys.path:
    rp = os.path.realpath(p) if p else os.getcwd()
    for d in forbidden:
        assert not (rp == d or rp.startswith(d + os.sep)), f"sys.path entry {p} is inside {d}"
with open("/proc/self/maps") as maps:
    mapped = {line.split()[-1] for line in maps if "/" in line}
for m in mapped:
    for d in forbidden:
        assert not m.startswith(d + os.sep), f"{m} is mapped from {d}"
    if os.path.basename(m).startswith("libferry"):
        assert m.startswith(pkg + os.sep), f"a libferry from outside the package is mapped: {m}"
print("nothing loaded from", ", ".join(forbidden))
PY

echo "== the binding's tests against the installed wheel"
run FERRY_TEST_BUNDLED=1 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests || fail "pytest in the venv"
echo "wheel_test: all passed"
