#!/usr/bin/env bash
# Brings the Debian packages the tests talk to (real servers and tools), so `make test` works on a
# fresh machine. Installs what is missing when it can (root or passwordless sudo, and apt-get);
# otherwise stops before any test runs, naming the one command that would fix it.
set -euo pipefail

# One line per need: "<command that must exist>|<alternative command>  <Debian package>" (or a file
# pattern, for servers whose programs are not on PATH).
NEEDS="
prometheus                                  prometheus
promtool                                    prometheus
prometheus-alertmanager|alertmanager        prometheus-alertmanager
openssl                                     openssl
chromium|chromium-browser                   chromium
/usr/lib/postgresql/*/bin/pg_ctl            postgresql
"

missing=()
while read -r cmds pkg; do
  [ -n "${cmds:-}" ] || continue
  found=0
  IFS='|' read -ra alts <<<"$cmds"
  for c in "${alts[@]}"; do
    if [[ "$c" == /* ]]; then compgen -G "$c" >/dev/null && { found=1; break; }
    elif command -v "$c" >/dev/null 2>&1; then found=1; break; fi
  done
  if [ "$found" = 0 ] && [[ " ${missing[*]-} " != *" $pkg "* ]]; then missing+=("$pkg"); fi
done <<<"$NEEDS"

[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test: these tests need ${missing[*]} (Debian package names), and this machine has no apt-get." >&2
  echo "Install the equivalent packages, then run make test again." >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "make test: missing Debian packages: ${missing[*]}." >&2
    echo "Run as root:  sudo sh -c '$cmd'   then run make test again." >&2
    exit 1
  fi
fi
echo "make test: installing Debian packages the tests use: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
lock=(-o DPkg::Lock::Timeout=600)
"${sudo[@]}" apt-get "${lock[@]}" update -qq
"${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
