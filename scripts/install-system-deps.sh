#!/usr/bin/env bash
# Installs the system parts the runtime needs, idempotently:
#   CRIU 4.x, libcriu-dev (rpc.proto) and python3-pycriu (crit) from Debian trixie under a low pin,
#   runc, iptables (CRIU's network lock), busybox-static (test rootfs), redis-server (the
#   pristine-reset tests' real server), a C compiler with static libc (the benchmark's workload).
# Debian bookworm's CRIU 3.17 fails on current kernels (vDSO bounds), so CRIU comes from trixie.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: must run as root (apt-get needs it)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
min_criu_major=4

criu_ok() {
  command -v criu >/dev/null 2>&1 || return 1
  local v
  v=$(criu --version 2>/dev/null | sed -n 's/^Version: *\([0-9]*\).*/\1/p')
  [ -n "$v" ] && [ "$v" -ge "$min_criu_major" ]
}

have_all() {
  criu_ok && [ -f /usr/include/criu/rpc.proto ] && command -v crit >/dev/null 2>&1 \
    && command -v runc >/dev/null 2>&1 && command -v iptables-restore >/dev/null 2>&1 \
    && [ -x /bin/busybox ] && command -v redis-server >/dev/null 2>&1 && command -v cc >/dev/null 2>&1
}

if have_all; then
  echo "install-system-deps: everything is already installed ($(criu --version | head -1), runc $(runc --version | sed -n 's/^runc version //p'))"
  exit 0
fi

sources=/etc/apt/sources.list.d/trixie.sources
if [ ! -f "$sources" ]; then
  cat >"$sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
pin=/etc/apt/preferences.d/trixie-low-priority
if [ ! -f "$pin" ]; then
  # Nothing comes from trixie unless asked for with -t trixie.
  cat >"$pin" <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends runc iptables busybox-static redis-server gcc libc6-dev ca-certificates >/dev/null
apt-get install -y -qq --no-install-recommends -t trixie criu libcriu-dev python3-pycriu >/dev/null

if ! criu_ok; then
  echo "install-system-deps: CRIU >= ${min_criu_major}.0 is still missing after install" >&2
  exit 1
fi
echo "install-system-deps: installed $(criu --version | head -1), runc $(runc --version | sed -n 's/^runc version //p')"
