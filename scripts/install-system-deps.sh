#!/usr/bin/env bash
# Installs the system parts the runtime needs, idempotently, all from the host's own Debian release:
#   runc, iptables (CRIU's network lock), busybox-static (test rootfs), redis-server (the
#   pristine-reset tests' real server), a C compiler with static libc (the benchmark's workload),
#   then CRIU 4.2.1, built from Debian's source into /opt/runtime/criu by scripts/install-criu.sh.
# Bookworm's CRIU 3.17 fails on current kernels (vDSO bounds), and a newer suite's criu binary would
# pull that suite's libc6, python3 and systemd: the host keeps its release.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: must run as root (apt-get needs it)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

have_packages() {
  command -v runc >/dev/null 2>&1 && command -v iptables-restore >/dev/null 2>&1 \
    && [ -x /bin/busybox ] && command -v redis-server >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 \
    && [ -f /etc/ssl/certs/ca-certificates.crt ]
}

if ! have_packages; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends runc iptables busybox-static redis-server gcc libc6-dev ca-certificates >/dev/null
  export RUNTIME_APT_UPDATED=1
fi

bash "$(dirname "$0")/install-criu.sh"

echo "install-system-deps: ready ($(/opt/runtime/criu/sbin/criu --version | head -n 1), runc $(runc --version | sed -n 's/^runc version //p'))"
