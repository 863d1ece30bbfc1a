#!/usr/bin/env bash
# Installs the system parts the runtime needs, idempotently, all from the host's own Debian release:
#   runc, iptables (CRIU's network lock), nftables (nft: the runtime lifts a network lock CRIU left), busybox-static (test rootfs), redis-server (the
#   pristine-reset and database tests' real server), postgresql-15 (the database tests' server
#   binaries; no cluster is created on the host), a C compiler with static libc (the benchmark's
#   workload), umoci and skopeo (the image tests and benchmark make OCI layouts and docker
#   archives with them, offline), then CRIU 4.2.1, built from Debian's source into /opt/runtime/criu by
#   scripts/install-criu.sh.
# Bookworm's CRIU 3.17 fails on current kernels (vDSO bounds), and a newer suite's criu binary would
# pull that suite's libc6, python3 and systemd: the host keeps its release.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: must run as root (apt-get needs it)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pg_bin=/usr/lib/postgresql/15/bin

have_packages() {
  command -v runc >/dev/null 2>&1 && command -v iptables-restore >/dev/null 2>&1 \
    && [ -x /bin/busybox ] && command -v redis-server >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 \
    && [ -x "$pg_bin/postgres" ] && [ -x "$pg_bin/initdb" ] \
    && [ -f /etc/ssl/certs/ca-certificates.crt ] && command -v umoci >/dev/null 2>&1 && command -v skopeo >/dev/null 2>&1 \
    && command -v nft >/dev/null 2>&1
}

# The tests run PostgreSQL inside containers, from data directories of their own: the host needs
# the server binaries only. postgresql-common creates a "main" cluster on port 5432, started at
# boot, when a server package is first installed, unless its createcluster.conf says
# create_main_cluster = false, which the server package's postinst reads: so postgresql-common
# (which writes that file from Debian's template) goes in first, then the setting, then the server.
# A cluster that already exists is left as it is.
no_main_cluster() {
  local conf=/etc/postgresql-common/createcluster.conf
  if grep -Eq '^[#[:space:]]*create_main_cluster' "$conf"; then
    sed -Ei 's/^[#[:space:]]*create_main_cluster.*/create_main_cluster = false/' "$conf"
  else
    echo 'create_main_cluster = false' >>"$conf"
  fi
}

if ! have_packages; then
  apt-get update -qq
  if [ ! -x "$pg_bin/postgres" ]; then
    apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
    no_main_cluster
  fi
  apt-get install -y -qq --no-install-recommends \
    runc iptables nftables busybox-static redis-server postgresql-15 gcc libc6-dev ca-certificates umoci skopeo >/dev/null
  export RUNTIME_APT_UPDATED=1
fi

bash "$(dirname "$0")/install-criu.sh"

echo "install-system-deps: ready ($(/opt/runtime/criu/sbin/criu --version | head -n 1), runc $(runc --version | sed -n 's/^runc version //p'))"
