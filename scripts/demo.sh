#!/usr/bin/env bash
# The main job on a fresh machine: installs what is needed, builds, runs a busybox container
# with a counter, checkpoints it, restores it, and shows that it continued where it was.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: run it as root (checkpoint/restore needs root): sudo bash scripts/demo.sh" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing CRIU 4.2.1 (built into /opt/runtime/criu), runc, iptables, busybox-static (idempotent)"
bash scripts/install-system-deps.sh

step "installing npm dependencies and building"
npm ci --no-audit --no-fund --loglevel=error

work=$(mktemp -d /tmp/runtime-demo.XXXXXX)
export RUNTIME_ROOT="$work/state" RUNTIME_CHECKPOINT_ROOT="$work/checkpoints"
# The runtime command npm built: its native front answers state (and reset) of a running container.
runtime() { dist/bin/runtime "$@"; }
cleanup() { runtime delete -f demo >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

step "making a busybox bundle (runc spec) whose init counts, with a child process"
bash scripts/make-busybox-bundle.sh "$work/bundle"

step "runtime run -d --bundle $work/bundle demo"
runtime run -d --bundle "$work/bundle" demo
sleep 2
pid=$(runtime state demo | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
echo "running: init pid $pid, parent: $(tr '\0' ' ' </proc/$(awk '/^PPid/{print $2}' /proc/$pid/status)/cmdline)"
echo "counter: $(cat "$work/bundle/rootfs/tmp/counter")"

step "runtime checkpoint demo"
runtime checkpoint demo
at_checkpoint=$(cat "$work/bundle/rootfs/tmp/counter")
echo "state: $(runtime state demo | sed -n 's/.*"status": "\(.*\)".*/\1/p'); counter frozen at $at_checkpoint"
sleep 1
echo "one second later the counter is still $(cat "$work/bundle/rootfs/tmp/counter")"

step "runtime restore -d demo"
runtime restore -d demo
sleep 1
pid=$(runtime state demo | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
now=$(cat "$work/bundle/rootfs/tmp/counter")
echo "restored: init pid $pid, parent: $(tr '\0' ' ' </proc/$(awk '/^PPid/{print $2}' /proc/$pid/status)/cmdline)"
echo "counter: $now (it continued from $at_checkpoint)"
echo "last lines of the container's output:"
tail -n 3 "$work/state/demo/container.log"

runtime list
if [ "$now" -gt "$at_checkpoint" ] && [ "$now" -lt $((at_checkpoint + 50)) ]; then
  step "the restored container continued where it was checkpointed"
else
  echo "demo: the counter did not continue from $at_checkpoint (now $now)" >&2
  exit 1
fi
