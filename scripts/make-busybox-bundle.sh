#!/usr/bin/env bash
# Makes an OCI bundle with a busybox rootfs: `runc spec`, with a writable root, no terminal,
# and the given command (default: a counter loop with a child process; the counter is written
# aside and renamed, so a checkpoint never leaves it empty for a reader).
#   scripts/make-busybox-bundle.sh DIR [COMMAND...]
set -euo pipefail
dir=${1:?usage: make-busybox-bundle.sh DIR [COMMAND...]}
shift
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "make-busybox-bundle: a static busybox is needed at $busybox (apt-get install busybox-static)" >&2
  exit 1
fi
mkdir -p "$dir/rootfs"/{bin,proc,sys,dev,tmp,etc,root}
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$dir/rootfs/bin/busybox" --list); do
  [ -e "$dir/rootfs/bin/$applet" ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
echo 'root:x:0:' >"$dir/rootfs/etc/group"
rm -f "$dir/config.json"
(cd "$dir" && runc spec)
if [ $# -eq 0 ]; then
  set -- sh -c 'sleep 1000000 & i=0; while true; do i=$((i+1)); echo $i >/tmp/counter.new; mv /tmp/counter.new /tmp/counter; echo "count $i"; sleep 0.2; done'
fi
node -e '
  const fs = require("fs");
  const file = process.argv[1];
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  spec.process.terminal = false;
  spec.process.args = process.argv.slice(2);
  spec.root.readonly = false;
  spec.hostname = "busybox";
  fs.writeFileSync(file, JSON.stringify(spec, null, 2) + "\n");
' "$dir/config.json" "$@"
