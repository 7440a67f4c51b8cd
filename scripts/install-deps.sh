#!/usr/bin/env bash
# Installs the Debian 12 packages Ferry needs to build and run every test (the lists below are the whole environment).
# Idempotent and fast when everything is there: it asks dpkg first and only runs apt-get for what is missing
# (naming an installed package in `apt-get install` would upgrade it). Works as root, or via sudo otherwise.
#
# Usage: scripts/install-deps.sh [--check] [--group NAME]... [--list]
#   --check       list what is missing, exit 1 if anything is, install nothing
#   --group NAME  also the packages of an optional group (browser, clickhouse, cross, docs); repeatable.
#                 cross: Debian's aarch64 cross toolchain, qemu-user and the arm64 libraries the SDK links, through
#                 multi-arch ("NAME:arm64"; `dpkg --add-architecture arm64` is run first). Every foreign-architecture
#                 install is simulated first (apt-get install -s) and refused if apt would remove any package: this
#                 keeps e.g. libsqlcipher-dev:arm64 (not multi-arch: it would remove the native one) out; its arm64
#                 files come from scripts/cross-sysroot.sh instead.
#   --list        print the package names (with the groups asked for) and exit
# The group "console" (nodejs, esbuild, and Debian's npm unless an npm is on PATH already, as with a nodejs that brings
# its own: the officer's console, docs/CONSOLE.md) is always installed, and then
# `npm ci` installs the console's npm packages as pinned in collector/console/package-lock.json (skipped when
# node_modules was installed from this very lock file; FERRY_CONSOLE_DIR names another directory, for tests).
#
# A package counts as installed when dpkg reports it "installed" for the native architecture or for "all". A machine
# with foreign architectures enabled (dpkg --add-architecture arm64) may hold a package for several architectures:
# dpkg-query then answers one line per architecture, and only the native (or "all") line counts.
set -euo pipefail

BASE_PACKAGES=(
  g++ cmake ninja-build pkg-config curl zstd openssl ccache
  libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev libbrotli-dev
  libsqlcipher-dev libsodium-dev nlohmann-json3-dev rapidjson-dev libcpp-httplib-dev libboost-dev
  libgtest-dev libbenchmark-dev libcli11-dev
  libpq-dev postgresql-15
  clang-14 libclang-rt-14-dev clang-format
  default-jdk-headless python3 python3-pytest python3-venv python3-setuptools python3-wheel python3-jsonschema
)
declare -A GROUPS_PKGS=(
  [browser]="chromium chromium-driver python3-selenium fonts-wqy-microhei"
  [console]="nodejs esbuild"
  [clickhouse]="clickhouse-server"
  [cross]="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static binfmt-support libstdc++6:arm64 libcurl4-openssl-dev:arm64 libzstd-dev:arm64 libsodium-dev:arm64 zlib1g-dev:arm64 libgtest-dev:arm64"
  [docs]="doxygen"
)

CHECK=0
LIST=0
GROUPS_WANTED=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) CHECK=1 ;;
    --list) LIST=1 ;;
    --group)
      shift
      [[ -n "${GROUPS_PKGS[${1:-}]:-}" ]] || {
        echo "install-deps: unknown group '${1:-}' (known: ${!GROUPS_PKGS[*]})" >&2
        exit 2
      }
      GROUPS_WANTED+=("$1")
      ;;
    -h | --help)
      sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-deps: unknown argument '$1' (try --help)" >&2
      exit 2
      ;;
  esac
  shift
done

PACKAGES=("${BASE_PACKAGES[@]}")
for g in console "${GROUPS_WANTED[@]}"; do
  # shellcheck disable=SC2206  # the group lists are plain words
  PACKAGES+=(${GROUPS_PKGS[$g]})
done
# Debian's nodejs comes without npm (package npm); another nodejs (NodeSource's) brings its own and conflicts with it.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
if [[ $LIST -eq 1 ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

NATIVE_ARCH=$(dpkg --print-architecture)
CONSOLE_DIR=${FERRY_CONSOLE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/collector/console}

# console_npm check|install: the console's npm packages. node_modules/.ferry-lock.sha256 holds the SHA-256 of the
# package-lock.json it was installed from; when it matches, nothing is fetched (offline-friendly).
console_npm() {
  [[ -f "$CONSOLE_DIR/package-lock.json" ]] || return 0
  local want have=""
  want=$(sha256sum "$CONSOLE_DIR/package-lock.json" | cut -d' ' -f1)
  [[ -f "$CONSOLE_DIR/node_modules/.ferry-lock.sha256" ]] && have=$(cat "$CONSOLE_DIR/node_modules/.ferry-lock.sha256")
  if [[ "$want" == "$have" ]]; then
    echo "install-deps: console npm packages current"
    return 0
  fi
  if [[ "$1" == check ]]; then
    echo "install-deps: missing: the console's npm packages (npm ci in $CONSOLE_DIR)"
    return 1
  fi
  echo "install-deps: npm ci in $CONSOLE_DIR"
  (cd "$CONSOLE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline)
  echo "$want" >"$CONSOLE_DIR/node_modules/.ferry-lock.sha256"
}

# installed NAME: dpkg holds NAME installed for the native architecture or for "all"; NAME:ARCH: for ARCH. One line
# per installed architecture comes back ("arm64 installed", "amd64 installed"), so each line is checked on its own.
installed() {
  local arch status name=${1%%:*} want=$NATIVE_ARCH
  [[ "$1" == *:* ]] && want=${1##*:}
  while read -r arch status; do
    if [[ "$status" == "installed" && ("$arch" == "$want" || "$arch" == "all") ]]; then
      return 0
    fi
  done < <(dpkg-query -W -f='${Architecture} ${db:Status-Status}\n' "$name" 2>/dev/null || true)
  return 1
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  if [[ $CHECK -eq 1 ]]; then
    console_npm check
    exit $?
  fi
  console_npm install
  exit 0
fi
echo "install-deps: missing: ${missing[*]}"
if [[ $CHECK -eq 1 ]]; then
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: not root and no sudo; install the packages above by hand:" >&2
    echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

APT=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
# Foreign architectures named in the list (NAME:ARCH) are enabled before the package lists are refreshed.
foreign=()
for p in "${missing[@]}"; do
  if [[ "$p" == *:* ]]; then
    foreign+=("$p")
    a=${p##*:}
    if [[ "$a" != "$NATIVE_ARCH" ]] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
      "${SUDO[@]}" dpkg --add-architecture "$a"
    fi
  fi
done
# A stale or partly unreachable package list is refreshed; a failed refresh is reported but the install is still
# tried (the packages may be in the lists already). Packages are named for the native architecture explicitly, so a
# foreign-architecture copy is never what apt picks.
if ! "${SUDO[@]}" "${APT[@]}" update; then
  echo "install-deps: apt-get update failed; trying the install with the package lists as they are" >&2
fi
# A foreign-architecture install must not remove anything (a package that is not multi-arch, such as
# libsqlcipher-dev, would replace the native one): simulated first, refused if apt plans a removal.
if [[ ${#foreign[@]} -gt 0 ]]; then
  sim=$("${SUDO[@]}" "${APT[@]}" install -s -y --no-install-recommends "${foreign[@]}" 2>&1) || {
    echo "$sim" >&2
    echo "install-deps: apt-get cannot install ${foreign[*]}" >&2
    exit 1
  }
  if grep -q '^Remv ' <<<"$sim"; then
    grep '^Remv ' <<<"$sim" >&2
    echo "install-deps: installing ${foreign[*]} would remove the packages above; refused" >&2
    exit 1
  fi
fi
native=()
for p in "${missing[@]}"; do
  if [[ "$p" == *:* ]]; then
    native+=("$p")
  else
    native+=("$p:$NATIVE_ARCH")
  fi
done
# An arch-qualified name fails for Architecture: all packages on some apt versions; fall back to plain names.
if ! "${SUDO[@]}" "${APT[@]}" install -y --no-install-recommends "${native[@]}"; then
  echo "install-deps: retrying with unqualified package names" >&2
  "${SUDO[@]}" "${APT[@]}" install -y --no-install-recommends "${missing[@]}"
fi

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "install-deps: still missing after apt-get: ${still[*]}" >&2
  echo "  (dpkg-query -W -f='\${Architecture} \${db:Status-Status}\\n' NAME shows what dpkg holds)" >&2
  exit 1
fi
echo "install-deps: installed ${#missing[@]} package(s)"
console_npm install
