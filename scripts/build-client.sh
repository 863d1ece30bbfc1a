#!/usr/bin/env bash
# Builds dist/bin/runtime, the `runtime` command: the native front (src/runtime/cli/native/client.c)
# that answers `reset` and `state` by asking the container's monitor, and hands every other
# command to the Node CLI (bin/runtime.js). Without a C compiler it writes a shell script that
# always hands over: the same commands, each paying Node's start.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/bin/runtime
mkdir -p dist/bin
state_root=$(node -p 'require("./config/defaults.json").stateRoot')
cc=${CC:-cc}
if command -v "$cc" >/dev/null 2>&1; then
  "$cc" -O2 -std=c11 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 \
    -DDEFAULT_STATE_ROOT="\"$state_root\"" -DNODE_BINARY="\"$(command -v node)\"" \
    -o "$out.tmp" src/runtime/cli/native/client.c
else
  echo "build-client: no C compiler ($cc): dist/bin/runtime runs the Node CLI for every command" >&2
  cat > "$out.tmp" <<'SCRIPT'
#!/bin/sh
# Built without a C compiler: every command goes to the Node CLI.
exec node "$(dirname "$(readlink -f "$0")")/../../bin/runtime.js" "$@"
SCRIPT
  chmod 755 "$out.tmp"
fi
mv -f "$out.tmp" "$out"
