#!/bin/sh
# make-aar-test.sh <make-aar.sh> <ferry.jar> <libferry_jni.so> <libferry.so> <scratch dir>
#
# make-aar.sh with host-built libraries standing in for cross-built ones (a real Android build needs the NDK: see
# docs/BINDINGS.md): it must refuse them as they are (wrong machine for arm64-v8a; glibc and a versioned libferry
# SONAME for x86_64), and with --host-stand-in produce exactly the Android library layout: AndroidManifest.xml
# (package io.ferry, minSdk), classes.jar with the binding's classes, proguard.txt keeping io.ferry, R.txt, and
# jni/x86_64/{libferry_jni.so,libferry.so} identical to the inputs.
set -eu
script=$1 jar=$2 jni=$3 lib=$4 scratch=$5
work=$(mktemp -d "$scratch/aar_test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "make-aar-test: FAIL: $*" >&2; exit 1; }

if sh "$script" --out "$work/a.aar" --jar "$jar" --abi arm64-v8a "$jni" "$lib" 2>"$work/err1"; then
  fail "host libraries accepted as arm64-v8a"
fi
grep -q "the ABI needs AArch64" "$work/err1" || { cat "$work/err1"; fail "no machine mismatch message"; }
if sh "$script" --out "$work/a.aar" --jar "$jar" --abi x86_64 "$jni" "$lib" 2>"$work/err2"; then
  fail "glibc libraries accepted without --host-stand-in"
fi
grep -q "needs glibc" "$work/err2" || { cat "$work/err2"; fail "no glibc message"; }
[ ! -e "$work/a.aar" ] || fail "an .aar was written after a refusal"

sh "$script" --out "$work/ferry.aar" --jar "$jar" --version 1.2.3 --min-sdk 26 --host-stand-in \
  --abi x86_64 "$jni" "$lib" 2>"$work/warn" || { cat "$work/warn"; fail "make-aar.sh failed"; }
grep -q "warning: x86_64: libferry.so needs glibc" "$work/warn" || { cat "$work/warn"; fail "no stand-in warning"; }

python3 - "$work/ferry.aar" "$jni" "$lib" <<'PY' || fail "layout"
import sys, zipfile, io
import xml.etree.ElementTree as ET
aar, jni, lib = sys.argv[1:4]
z = zipfile.ZipFile(aar)
names = sorted(n for n in z.namelist() if not n.endswith("/"))
want = ["AndroidManifest.xml", "R.txt", "classes.jar", "jni/x86_64/libferry.so", "jni/x86_64/libferry_jni.so",
        "proguard.txt"]
assert names == want, f"entries {names}, want {want}"
root = ET.fromstring(z.read("AndroidManifest.xml"))
A = "{http://schemas.android.com/apk/res/android}"
assert root.tag == "manifest" and root.get("package") == "io.ferry", root.attrib
assert root.get(A + "versionName") == "1.2.3", root.attrib
sdk = root.find("uses-sdk")
assert sdk is not None and sdk.get(A + "minSdkVersion") == "26", "minSdk"
perms = [p.get(A + "name") for p in root.findall("uses-permission")]
assert perms == ["android.permission.INTERNET"], perms
classes = zipfile.ZipFile(io.BytesIO(z.read("classes.jar"))).namelist()
for c in ("io/ferry/Ferry.class", "io/ferry/Transport.class", "io/ferry/Transport$Response.class",
          "io/ferry/LogHandler.class"):
    assert c in classes, f"classes.jar lacks {c}"
assert "-keep class io.ferry.** { *; }" in z.read("proguard.txt").decode(), "keep rule"
assert z.read("jni/x86_64/libferry_jni.so") == open(jni, "rb").read(), "libferry_jni.so differs"
assert z.read("jni/x86_64/libferry.so") == open(lib, "rb").read(), "libferry.so differs"
print("aar layout ok:", ", ".join(names))
PY
echo "make-aar-test: all passed"
