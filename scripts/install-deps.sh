#!/usr/bin/env bash
# Installs the Debian 12 packages Ferry needs to build and run every test (docs: /work/shared/design/ENVIRONMENT.md).
# Idempotent and fast when everything is there: it asks dpkg first and only runs apt-get for what is missing
# (naming an installed package in `apt-get install` would upgrade it). Works as root, or via sudo otherwise.
# Usage: scripts/install-deps.sh [--check]   (--check: list what is missing, exit 1 if anything is, install nothing)
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config curl zstd openssl
  libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev libbrotli-dev
  libsqlcipher-dev libsodium-dev nlohmann-json3-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  libpq-dev postgresql-15
  clang-14 libclang-rt-14-dev clang-format
  default-jdk-headless python3 python3-pytest
)

installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: missing: ${missing[*]}"
if [[ "${1:-}" == "--check" ]]; then
  exit 1
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: not root and no sudo; install the packages above by hand" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "install-deps: still missing after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${#missing[@]} package(s)"
