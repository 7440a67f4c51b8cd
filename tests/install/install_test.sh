#!/bin/sh
# install_test.sh <build dir> <source dir of the consumer> <libdir> <programs...>
#
# Installs the build into a fresh prefix with `cmake --install`, checks the layout, then builds and runs an
# out-of-tree consumer against it in every supported way:
#   1. CMake: find_package(Ferry) -> Ferry::ferry (shared), Ferry::ferry_static, and the C++ wrapper;
#   2. pkg-config: cc $(pkg-config --cflags --libs ferry), and a static link through --static (Libs.private and
#      Requires.private must be enough);
#   3. find_package(Ferry 99.0) must fail (version file).
set -eu
build=$1
consumer_src=$2
libdir=$3
shift 3
programs="$*"

work=$(mktemp -d /tmp/ferry_install_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
scratch=$work/scratch
mkdir -p "$scratch"

fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "build what is installed"
cmake --build "$build" --target ferry_install_deps >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "build"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }

step "layout"
version=$(sed -n 's/^Version: //p' "$build/ferry.pc")
major=${version%%.*}
for f in include/ferry/ferry.h include/ferry/ferry.hpp \
         "$libdir/libferry.so.$version" "$libdir/libferry.so.$major" "$libdir/libferry.so" "$libdir/libferry.a" \
         "$libdir/cmake/Ferry/FerryConfig.cmake" "$libdir/cmake/Ferry/FerryConfigVersion.cmake" \
         "$libdir/cmake/Ferry/FerryTargets.cmake" "$libdir/pkgconfig/ferry.pc"; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
[ -L "$prefix/$libdir/libferry.so" ] || fail "libferry.so is not the namelink symlink"
# The licence and the changes travel with the package, and the package files declare the licence.
[ -s "$prefix/share/doc/ferry/LICENSE" ] || fail "missing share/doc/ferry/LICENSE"
[ -s "$prefix/share/doc/ferry/CHANGELOG."md ] || fail "missing the changelog in share/doc/ferry"
grep -q "^License: Apache-2.0$" "$prefix/$libdir/pkgconfig/ferry.pc" || fail "ferry.pc does not declare the licence"
for p in $programs; do
  [ -x "$prefix/bin/$p" ] || fail "missing program bin/$p"
done
# Nothing of the build tree leaks into the installed package files.
if grep -l "$build" "$prefix/$libdir/cmake/Ferry/"*.cmake "$prefix/$libdir/pkgconfig/ferry.pc" 2>/dev/null; then
  fail "installed package files refer to the build tree"
fi
echo "layout ok (version $version; programs: ${programs:-none})"

step "CMake consumer: find_package(Ferry)"
cmake -S "$consumer_src" -B "$work/consumer-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/consumer-cfg.log" 2>&1 || { cat "$work/consumer-cfg.log"; fail "consumer configure"; }
cmake --build "$work/consumer-build" >"$work/consumer-build.log" 2>&1 || { cat "$work/consumer-build.log"; fail "consumer build"; }
for exe in consumer_shared consumer_static consumer_cpp; do
  "$work/consumer-build/$exe" "$scratch" || fail "$exe did not run"
done
# The shared consumers load the installed library; the static one has no libferry dependency at all.
ldd "$work/consumer-build/consumer_shared" | grep -q "$prefix/$libdir/libferry.so" ||
  fail "consumer_shared does not load libferry.so from the prefix: $(ldd "$work/consumer-build/consumer_shared")"
if ldd "$work/consumer-build/consumer_static" | grep -q libferry; then fail "consumer_static needs libferry.so"; fi
if ldd "$work/consumer-build/consumer_static" | grep -q 'libsqlite3\.'; then fail "consumer_static needs libsqlite3"; fi

step "CMake consumer: a version the package does not provide is refused"
if cmake -S "$consumer_src" -B "$work/consumer-bad" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
     -DFERRY_WANT_VERSION=99.0 >"$work/consumer-bad.log" 2>&1; then
  fail "find_package(Ferry 99.0) succeeded"
fi
grep -q "FerryConfigVersion\|version" "$work/consumer-bad.log" || { cat "$work/consumer-bad.log"; fail "unexpected error"; }

step "pkg-config consumer"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
# ferry.pc stands alone: no Requires/Requires.private (so no dependency's .pc file is needed, whatever pkg-config
# implementation reads it), and with only the prefix on the search path both a shared and a static query work.
if grep -q '^Requires' "$prefix/$libdir/pkgconfig/ferry.pc"; then fail "ferry.pc names other .pc files (Requires)"; fi
alone_libs=$(PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig" pkg-config --libs ferry) ||
  fail "pkg-config --libs ferry needs other .pc files"
alone_static=$(PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig" pkg-config --static --libs ferry) ||
  fail "pkg-config --static --libs ferry needs other .pc files"
case "$alone_static" in *-lsqlcipher*) ;; *) fail "pkg-config --static --libs ferry lacks -lsqlcipher: $alone_static" ;; esac
# A shared consumer built with only ferry.pc on the search path.
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror -o "$work/pc_alone" "$consumer_src/consumer.c" \
  $(PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig" pkg-config --cflags ferry) $alone_libs -Wl,-rpath,"$prefix/$libdir" ||
  fail "cc with only ferry.pc (shared)"
"$work/pc_alone" "$scratch" || fail "pc_alone did not run"
[ "$(pkg-config --modversion ferry)" = "$version" ] || fail "pkg-config --modversion ferry"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror -o "$work/pc_shared" "$consumer_src/consumer.c" $(pkg-config --cflags --libs ferry) \
  -Wl,-rpath,"$prefix/$libdir" || fail "cc with pkg-config (shared)"
"$work/pc_shared" "$scratch" || fail "pc_shared did not run"
ldd "$work/pc_shared" | grep -q "$prefix/$libdir/libferry.so" || fail "pc_shared does not load the installed library"
# Static: a directory holding only libferry.a comes first, so -lferry resolves to the archive.
mkdir -p "$work/static-only"
ln -s "$prefix/$libdir/libferry.a" "$work/static-only/libferry.a"
# shellcheck disable=SC2046
cc -std=c99 -o "$work/pc_static" "$consumer_src/consumer.c" $(pkg-config --cflags ferry) -L"$work/static-only" \
  $(pkg-config --static --libs ferry) || fail "cc with pkg-config --static"
"$work/pc_static" "$scratch" || fail "pc_static did not run"
if ldd "$work/pc_static" | grep -q libferry; then fail "pc_static needs libferry.so"; fi

echo "install_test: all passed"
