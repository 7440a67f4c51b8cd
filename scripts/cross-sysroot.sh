#!/usr/bin/env bash
# Puts SQLCipher's files for a foreign architecture (runtime library, headers, pkg-config file) into a directory,
# without installing them: Debian's libsqlcipher-dev is not multi-arch, and `apt-get install libsqlcipher-dev:arm64`
# would REMOVE the native one that the rest of the build needs. The packages are fetched with `apt-get download`
# and unpacked with `dpkg -x` (no maintainer scripts, nothing registered with dpkg).
#
# Usage: scripts/cross-sysroot.sh DIR [ARCH]     (ARCH: a Debian architecture, default arm64)
# Gives: DIR/usr/include/sqlcipher/, DIR/usr/lib/<triple>/libsqlcipher.so*, and DIR/pkgconfig/sqlcipher.pc whose
# prefix is DIR/usr (cmake/toolchains/aarch64-linux-gnu.cmake reads it with -DFERRY_CROSS_SYSROOT=DIR).
# Idempotent: a finished DIR (DIR/.complete) is left as it is. Needs the architecture enabled in dpkg and its
# package lists (scripts/install-deps.sh --group cross does both).
set -euo pipefail

dir=${1:?usage: scripts/cross-sysroot.sh DIR [ARCH]}
arch=${2:-arm64}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
triple=$(dpkg-architecture -a "$arch" -qDEB_HOST_MULTIARCH 2>/dev/null)
if [[ -f "$dir/.complete" ]]; then
  echo "cross-sysroot: $dir is complete"
  exit 0
fi

packages=("libsqlcipher0:$arch" "libsqlcipher-dev:$arch")
rm -rf "$dir/debs"
mkdir -p "$dir/debs"
# apt-get download writes into the current directory; as root it warns that it cannot drop privileges (harmless).
if ! (cd "$dir/debs" && apt-get download "${packages[@]}" 2>"$dir/debs/download.log"); then
  echo "cross-sysroot: apt-get download failed; refreshing the package lists once" >&2
  env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
  (cd "$dir/debs" && apt-get download "${packages[@]}")
fi
for deb in "$dir"/debs/*.deb; do
  dpkg -x "$deb" "$dir"
done
pc="$dir/usr/lib/$triple/pkgconfig/sqlcipher.pc"
[[ -f "$pc" ]] || { echo "cross-sysroot: $pc missing after unpacking" >&2; exit 1; }
[[ -e "$dir/usr/lib/$triple/libsqlcipher.so" ]] || { echo "cross-sysroot: libsqlcipher.so missing" >&2; exit 1; }
mkdir -p "$dir/pkgconfig"
sed -e "s|^prefix=.*|prefix=$dir/usr|" "$pc" >"$dir/pkgconfig/sqlcipher.pc"
touch "$dir/.complete"
echo "cross-sysroot: SQLCipher ($arch) in $dir"
