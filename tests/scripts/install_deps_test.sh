#!/usr/bin/env bash
# Tests scripts/install-deps.sh against fake dpkg, dpkg-query, apt-get, id and sudo on PATH: what it counts as
# installed (multi-architecture answers, Architecture: all, config-files), what it asks apt-get for, and how it
# behaves as non-root with and without sudo, with a failing `apt-get update` and with a failing arch-qualified install.
# Usage: install_deps_test.sh [path/to/install-deps.sh]
set -euo pipefail

SCRIPT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/install-deps.sh}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

# ---- the fake system ------------------------------------------------------------------------------------------------
# $WORK/db/<name>: the lines dpkg-query prints for that package ("ARCH STATUS" per line); absent = not known.
# $WORK/calls: every apt-get/sudo call, one line each. $WORK/uid: what `id -u` says. $WORK/apt_update_rc: update's rc.
# $WORK/apt_qualified_rc: the rc of an install whose names carry ":arch". An install marks its packages installed.
make_fakes() {
  rm -rf "$WORK/bin" "$WORK/db" "$WORK/calls" "$WORK/foreign_archs" "$WORK/apt_sim_remove"
  mkdir -p "$WORK/bin" "$WORK/db"
  : >"$WORK/calls"
  echo 0 >"$WORK/uid"
  echo 0 >"$WORK/apt_update_rc"
  echo 0 >"$WORK/apt_qualified_rc"
  cat >"$WORK/bin/dpkg" <<EOF
#!/usr/bin/env bash
[[ "\$1" == "--print-architecture" ]] && { echo amd64; exit 0; }
[[ "\$1" == "--print-foreign-architectures" ]] && { cat "$WORK/foreign_archs" 2>/dev/null; exit 0; }
[[ "\$1" == "--add-architecture" ]] && { echo "dpkg \$*" >>"$WORK/calls"; echo "\$2" >>"$WORK/foreign_archs"; exit 0; }
exit 1
EOF
  cat >"$WORK/bin/dpkg-query" <<EOF
#!/usr/bin/env bash
# dpkg-query -W -f=FORMAT NAME
name=\${@: -1}
[[ -f "$WORK/db/\$name" ]] || { echo "dpkg-query: no packages found matching \$name" >&2; exit 1; }
cat "$WORK/db/\$name"
EOF
  cat >"$WORK/bin/apt-get" <<EOF
#!/usr/bin/env bash
echo "apt-get \$*" >>"$WORK/calls"
for a in "\$@"; do
  case "\$a" in
    update) exit \$(cat "$WORK/apt_update_rc") ;;
  esac
done
# A simulation (-s) installs nothing; it plans a removal when $WORK/apt_sim_remove exists.
for a in "\$@"; do
  if [[ "\$a" == "-s" ]]; then
    echo "Inst something"
    [[ -f "$WORK/apt_sim_remove" ]] && echo "Remv libsqlcipher-dev [3.4.1-2+b1]"
    exit 0
  fi
done
qualified=0
for a in "\$@"; do [[ "\$a" == *:amd64 ]] && qualified=1; done
if [[ \$qualified -eq 1 && \$(cat "$WORK/apt_qualified_rc") -ne 0 ]]; then exit \$(cat "$WORK/apt_qualified_rc"); fi
for a in "\$@"; do
  case "\$a" in -*|install|*=*) continue ;; esac
  n=\${a%%:*}
  arch=amd64
  [[ "\$a" == *:* ]] && arch=\${a##*:}
  echo "\$arch installed" >>"$WORK/db/\$n"
done
exit 0
EOF
  cat >"$WORK/bin/id" <<EOF
#!/usr/bin/env bash
[[ "\$1" == "-u" ]] && { cat "$WORK/uid"; exit 0; }
exit 1
EOF
  # npm: logs its calls; `npm ci` makes node_modules. The console directory holds only a lock file.
  cat >"$WORK/bin/npm" <<EOF
#!/usr/bin/env bash
echo "npm \$* (in \$PWD)" >>"$WORK/npm_calls"
mkdir -p node_modules
EOF
  rm -rf "$WORK/console"
  : >"$WORK/npm_calls"
  mkdir -p "$WORK/console"
  echo '{"lockfileVersion": 3}' >"$WORK/console/package-lock.json"
  chmod +x "$WORK/bin/"*
}
with_sudo() {
  cat >"$WORK/bin/sudo" <<EOF
#!/usr/bin/env bash
echo "sudo \$1" >>"$WORK/calls"
exec "\$@"
EOF
  chmod +x "$WORK/bin/sudo"
}
# Every package of the script's list installed for amd64, then the overrides given as NAME=LINES.
seed_all_installed() {
  local p
  for p in $(PATH="$WORK/bin:$PATH" bash "$SCRIPT" --list); do
    echo "amd64 installed" >"$WORK/db/$p"
  done
}
run_script() {
  # Only the fakes and the basic tools (env, cat, mktemp...) are on PATH; sudo only when with_sudo made it.
  set +e
  FERRY_CONSOLE_DIR="$WORK/console" PATH="$WORK/bin:/usr/bin:/bin" bash "$SCRIPT" "$@" >"$WORK/out" 2>&1
  RC=$?
  set -e
}
check() {
  local what=$1
  shift
  if "$@"; then
    echo "ok   - $what"
  else
    echo "FAIL - $what"
    echo "------ script output:"
    cat "$WORK/out"
    echo "------ calls:"
    cat "$WORK/calls"
    FAILS=$((FAILS + 1))
  fi
}
calls_have() { grep -q -- "$1" "$WORK/calls"; }
calls_lack() { ! grep -q -- "$1" "$WORK/calls"; }
out_has() { grep -q -- "$1" "$WORK/out"; }

# ---- cases ----------------------------------------------------------------------------------------------------------

# 0. The console's npm packages: npm ci once, then never again for the same lock file; --check reports them.
make_fakes
seed_all_installed
run_script --check
check "check: stale console npm packages are missing" test "$RC" -eq 1
check "check: names the console's npm packages" out_has "the console's npm packages"
check "check: npm not run" test ! -s "$WORK/npm_calls"
run_script
check "npm ci runs in the console directory" grep -q "npm ci --ignore-scripts .*(in $WORK/console)" "$WORK/npm_calls"
: >"$WORK/npm_calls"
run_script
check "a current node_modules is not installed again" test ! -s "$WORK/npm_calls"
run_script --check
check "check: current npm packages pass" test "$RC" -eq 0
run_script --list
check "the default list holds the console group" grep -qx esbuild "$WORK/out"

# 1. Installed for amd64 and arm64 (dpkg-query prints two lines): installed, nothing to do.
make_fakes
seed_all_installed
printf 'arm64 installed\namd64 installed\n' >"$WORK/db/libcurl4-openssl-dev"
printf 'amd64 installed\narm64 installed\n' >"$WORK/db/libzstd-dev"
run_script
check "multi-arch status answer counts as installed" test "$RC" -eq 0
check "multi-arch: apt-get not called" test ! -s "$WORK/calls"

# 2. Only the foreign architecture installed: missing, and apt-get asked for the native one.
make_fakes
seed_all_installed
printf 'arm64 installed\n' >"$WORK/db/libsodium-dev"
run_script
check "foreign-only package is installed for the native arch" test "$RC" -eq 0
check "foreign-only: apt-get install names libsodium-dev:amd64" calls_have "install .*libsodium-dev:amd64"
check "foreign-only: only the missing package is named" calls_lack "libzstd-dev"

# 3. Architecture: all counts; config-files (removed, configuration kept) does not.
make_fakes
seed_all_installed
printf 'all installed\n' >"$WORK/db/nlohmann-json3-dev"
printf 'amd64 config-files\n' >"$WORK/db/libcli11-dev"
run_script
check "arch all is installed, config-files is not" calls_have "install .*libcli11-dev:amd64"
check "arch all package not reinstalled" calls_lack "nlohmann-json3-dev"

# 4. --check installs nothing and exits 1 when something is missing.
make_fakes
seed_all_installed
rm "$WORK/db/cmake"
run_script --check
check "--check exits 1 with a missing package" test "$RC" -eq 1
check "--check names it" out_has "missing: cmake"
check "--check calls no apt-get" test ! -s "$WORK/calls"

# 5. A failing apt-get update does not stop the install.
make_fakes
seed_all_installed
rm "$WORK/db/zstd"
echo 100 >"$WORK/apt_update_rc"
run_script
check "failed update: install still tried and succeeds" test "$RC" -eq 0
check "failed update: reported" out_has "apt-get update failed"

# 6. An apt that refuses arch-qualified names falls back to plain names.
make_fakes
seed_all_installed
rm "$WORK/db/python3-pytest"
echo 100 >"$WORK/apt_qualified_rc"
run_script
check "qualified install refused: retried unqualified" calls_have "install -y --no-install-recommends python3-pytest$"
check "qualified install refused: succeeds" test "$RC" -eq 0

# 7. Non-root without sudo: exit 1 with the command to run by hand; with sudo: apt-get runs through sudo.
make_fakes
seed_all_installed
rm "$WORK/db/ninja-build"
echo 1000 >"$WORK/uid"
run_script
check "non-root without sudo fails" test "$RC" -eq 1
check "non-root without sudo prints the command" out_has "apt-get install --no-install-recommends ninja-build"
with_sudo
run_script
check "non-root with sudo succeeds" test "$RC" -eq 0
check "non-root with sudo uses sudo" calls_have "^sudo env"

# 8. Still missing after apt-get (e.g. a held package): exit 1 and say which.
make_fakes
seed_all_installed
rm "$WORK/db/openssl"
cat >"$WORK/bin/apt-get" <<EOF
#!/usr/bin/env bash
echo "apt-get \$*" >>"$WORK/calls"
exit 0
EOF
chmod +x "$WORK/bin/apt-get"
run_script
check "still missing after apt-get fails" test "$RC" -eq 1
check "still missing is named" out_has "still missing after apt-get: openssl"

# 9. Optional groups: --group browser adds its packages; an unknown group is a usage error.
make_fakes
seed_all_installed
run_script --group browser
check "group packages are checked and installed" calls_have "install .*chromium:amd64"
run_script --group nosuch
check "unknown group is exit 2" test "$RC" -eq 2

# 10. The cross group: NAME:arm64 entries are checked for arm64, the architecture is enabled first, the foreign
# packages are named as they are (not :amd64), after a simulation; a simulation that plans a removal is refused.
make_fakes
seed_all_installed
run_script --group cross
check "cross group succeeds" test "$RC" -eq 0
check "cross group enables arm64" calls_have "^dpkg --add-architecture arm64"
check "cross group simulates the foreign install" calls_have "install -s .*libzstd-dev:arm64"
check "cross group installs libzstd-dev:arm64 as named" calls_have "install -y .*libzstd-dev:arm64"
check "cross group never names an arm64 package :amd64" calls_lack "arm64:amd64"
check "cross group never asks for libsqlcipher-dev:arm64" calls_lack "libsqlcipher-dev:arm64"
make_fakes
seed_all_installed
printf 'amd64 installed\narm64 installed\n' >"$WORK/db/libzstd-dev"
run_script --group cross
check "an arm64 package installed for arm64 counts" calls_lack "install -y .*libzstd-dev:arm64"
make_fakes
seed_all_installed
touch "$WORK/apt_sim_remove"
run_script --group cross
check "a foreign install that would remove a package is refused" test "$RC" -eq 1
check "the refusal names the removal" out_has "would remove"
check "nothing installed after a refused simulation" calls_lack "install -y .*:arm64"

if [[ $FAILS -ne 0 ]]; then
  echo "install_deps_test: $FAILS check(s) failed"
  exit 1
fi
echo "install_deps_test: all checks passed"
