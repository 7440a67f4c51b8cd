#!/bin/sh
# make-aar.sh — packs the Java binding and cross-built native libraries as an Android library (.aar).
#
#   make-aar.sh --out ferry.aar --jar ferry.jar [--version 0.1.0] [--min-sdk 24] [--host-stand-in]
#               --abi arm64-v8a path/to/libferry_jni.so path/to/libferry.so
#               [--abi armeabi-v7a ... ...] [--abi x86_64 ... ...]
#
# The .aar holds AndroidManifest.xml (package io.ferry), classes.jar (the binding's classes), proguard.txt (keep
# rules the app's R8 applies: the JNI code calls io.ferry methods and fields by name), an empty R.txt, and
# jni/<abi>/libferry_jni.so + jni/<abi>/libferry.so for every --abi given.
#
# The libraries must come from the Android NDK (docs/BINDINGS.md, "Android"); each is checked:
#   - its ELF machine matches the ABI (AArch64 for arm64-v8a, ARM for armeabi-v7a, X86-64 for x86_64, 80386 for x86);
#   - libferry_jni.so needs "libferry.so" by exactly that name (Android installs only lib*.so files, so a versioned
#     SONAME such as libferry.so.0 cannot be found on a device);
#   - neither needs glibc (libc.so.6): Android's libc is bionic (libc.so).
# --host-stand-in turns the last two into warnings, for testing the layout with host-built libraries; such an .aar
# does not run on a device.
set -eu

usage() { sed -n '2,8p' "$0" >&2; exit 2; }
die() { echo "make-aar: error: $*" >&2; exit 1; }
warn() { echo "make-aar: warning: $*" >&2; }

out= jarfile= version=0.1.0 minsdk=24 standin=0
abis=
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry_aar.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/aar/jni"

machine_of_abi() {
  case $1 in
    arm64-v8a) echo AArch64 ;;
    armeabi-v7a) echo ARM ;;
    x86_64) echo X86-64 ;;
    x86) echo 80386 ;;
    riscv64) echo RISC-V ;;
    *) return 1 ;;
  esac
}

check_lib() { # abi path name
  [ -f "$2" ] || die "$1: $2 is not a file"
  machine=$(readelf -h "$2" 2>/dev/null | sed -n 's/^ *Machine: *//p') || true
  [ -n "$machine" ] || die "$1: $2 is not an ELF library"
  want=$(machine_of_abi "$1")
  case $machine in
    *"$want"*) ;;
    *) die "$1: $2 is built for '$machine', the ABI needs $want" ;;
  esac
  needed=$(readelf -d "$2" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  if echo "$needed" | grep -qx 'libc\.so\.6'; then
    msg="$1: $3 needs glibc (libc.so.6): not built with the Android NDK"
    if [ "$standin" = 1 ]; then warn "$msg"; else die "$msg"; fi
  fi
  if [ "$3" = libferry_jni.so ] && ! echo "$needed" | grep -qx 'libferry\.so'; then
    msg="$1: libferry_jni.so needs '$(echo "$needed" | grep libferry || echo none)', not 'libferry.so' (a versioned SONAME is not found on Android)"
    if [ "$standin" = 1 ]; then warn "$msg"; else die "$msg"; fi
  fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --jar) jarfile=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --min-sdk) minsdk=$2; shift 2 ;;
    --host-stand-in) standin=1; shift ;;
    --abi)
      [ $# -ge 4 ] || usage
      machine_of_abi "$2" >/dev/null || die "unknown ABI '$2' (arm64-v8a, armeabi-v7a, x86_64, x86, riscv64)"
      case " $abis " in *" $2 "*) die "ABI $2 given twice" ;; esac
      check_lib "$2" "$3" libferry_jni.so
      check_lib "$2" "$4" libferry.so
      mkdir -p "$work/aar/jni/$2"
      cp "$3" "$work/aar/jni/$2/libferry_jni.so"
      cp "$4" "$work/aar/jni/$2/libferry.so"
      abis="$abis $2"
      shift 4 ;;
    -h|--help) usage ;;
    *) echo "make-aar: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -n "$out" ] && [ -n "$jarfile" ] || usage
[ -n "$abis" ] || die "no --abi given"
[ -f "$jarfile" ] || die "$jarfile is not a file"
case $version in *[!0-9.]*|"") die "bad --version '$version'" ;; esac
case $minsdk in *[!0-9]*|"") die "bad --min-sdk '$minsdk'" ;; esac

jar=${JAR:-}
if [ -z "$jar" ]; then
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/jar" ]; then jar=$JAVA_HOME/bin/jar; else jar=jar; fi
fi
"$jar" tf "$jarfile" | grep -qx 'io/ferry/Ferry.class' || die "$jarfile holds no io/ferry/Ferry.class"

cp "$jarfile" "$work/aar/classes.jar"
: >"$work/aar/R.txt"
cat >"$work/aar/AndroidManifest.xml" <<MANIFEST
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="io.ferry"
    android:versionName="$version">
    <uses-sdk android:minSdkVersion="$minsdk" />
    <uses-permission android:name="android.permission.INTERNET" />
</manifest>
MANIFEST
cat >"$work/aar/proguard.txt" <<'RULES'
# libferry_jni calls these by name (JNI): keep them from R8's shrinking and renaming.
-keep class io.ferry.** { *; }
-keep interface io.ferry.** { *; }
-keepclasseswithmembernames class io.ferry.** { native <methods>; }
RULES

rm -f "$out"
(cd "$work/aar" && "$jar" cfM "$work/out.aar" .) || die "could not zip the .aar"
mv "$work/out.aar" "$out"
echo "make-aar: wrote $out (ABIs:$abis; minSdk $minsdk)"
