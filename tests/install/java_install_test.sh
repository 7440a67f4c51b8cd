#!/bin/sh
# java_install_test.sh <build dir> <libdir> <java> <javac> <Quickstart.java>
#
# `cmake --install` into a fresh prefix, then the Java binding is used from the prefix alone: share/java/ferry.jar
# and <libdir>/libferry_jni.so (beside libferry.so, found through its $ORIGIN run path) exist; the Java quickstart
# compiles against the installed jar and runs with java.library.path = the installed libdir, from a directory
# outside the build tree and with no build-tree path in LD_LIBRARY_PATH.
set -eu
build=$1
libdir=$2
java=$3
javac=$4
quickstart=$5

work=$(mktemp -d /tmp/ferry_java_install.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "java_install_test: FAIL: $*" >&2; exit 1; }

cmake --build "$build" --target ferry_install_deps >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "build"; }
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }

jar=$prefix/share/java/ferry.jar
jni=$prefix/$libdir/libferry_jni.so
[ -s "$jar" ] || fail "missing share/java/ferry.jar"
[ -s "$jni" ] || fail "missing $libdir/libferry_jni.so"
"$(dirname "$javac")/jar" tf "$jar" | grep -qx "io/ferry/Transport.class" || fail "the jar has no io/ferry/Transport.class"
# The JNI library finds the installed libferry by its run path, not the build tree's.
env -u LD_LIBRARY_PATH ldd "$jni" | grep -q "$prefix/$libdir/libferry.so" ||
  fail "libferry_jni.so does not load the installed libferry.so: $(ldd "$jni")"

mkdir -p "$work/app"
cp "$quickstart" "$work/app/"
cd "$work/app"
"$javac" -Xlint:all -Werror --release 11 -cp "$jar" -d classes Quickstart.java || fail "javac against the installed jar"
out=$(env -u LD_LIBRARY_PATH -u FERRY_ENDPOINT "$java" -Xcheck:jni -Djava.library.path="$prefix/$libdir" \
  -cp "$jar:classes" Quickstart 2>&1) || { echo "$out"; fail "the quickstart did not run from the prefix"; }
echo "$out" | tail -5
echo "java_install_test: all passed"
