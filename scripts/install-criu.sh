#!/usr/bin/env bash
# Builds CRIU 4.2.1 from Debian's source tarball and installs it into /opt/runtime, idempotently:
#
#   /opt/runtime/criu-4.2.1/sbin/criu                the binary
#   /opt/runtime/criu-4.2.1/include/criu/rpc.proto   the RPC schema the runtime encodes with
#   /opt/runtime/criu-4.2.1/lib/pycriu/              pycriu, images/ holding *_pb2.py and magic.py
#   /opt/runtime/criu-4.2.1/lib/crit/                crit's Python package
#   /opt/runtime/criu-4.2.1/bin/crit                 crit, run by the host's python3
#   /opt/runtime/criu -> criu-4.2.1                  where the runtime looks by default
#   /usr/local/sbin/criu, /usr/local/bin/crit        symlinks, so that shells and runc find them
#
# CRIU probes the kernel at every start unless it finds the result of an earlier probe in
# <RUNDIR>/criu.kdat, which it keeps only on a tmpfs. It is built with RUNDIR=/run/runtime-criu,
# a directory the runtime makes a tmpfs before it starts a CRIU (src/criu/kerndat-cache.ts), so that
# the probe's ~50 ms is paid once per boot even where /run is not a tmpfs.
#
# Why a build: bookworm's CRIU 3.17 fails on current kernels (vDSO bounds), 4.1.1 cannot dump inet
# sockets on kernels >= 6.16 (criu#2718, fixed in 4.2), and a newer suite's criu binary drags that
# suite's libc6, python3 and systemd in. Here only the source comes from Debian's newer suite (the
# pool of the mirror the host's apt already uses, checked against a SHA-256 fixed below); the build
# dependencies are the host's own release's -dev packages, and nothing binary comes from elsewhere.
#
# The project's patches are applied to the source (scripts/criu-patches/, each says why): the
# lazy-pages daemon's --no-lazy-pages-background, which lets a lazily restored container cost what
# its tasks touch rather than its whole memory, and a restore that runs no iptables binary when
# there is no firewall dump. The prefix records which patches it was built with (a digest of them,
# in its runtime-patches file); an install built with others is rebuilt.
#
# Usage: install-criu.sh [--force]   (--force rebuilds even when the right version is installed)
# CRIU_TARBALL=/path/to/criu_4.2.1.orig.tar.xz uses a local copy instead of downloading it.
set -euo pipefail

criu_version=4.2.1
kerndat_dir=/run/runtime-criu
tarball=criu_${criu_version}.orig.tar.xz
# SHA-256 of criu_4.2.1.orig.tar.xz: the Checksums-Sha256 line of Debian's criu_4.2.1-1.dsc.
tarball_sha256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
pool_dir=pool/main/c/criu
patch_dir=$(cd "$(dirname "$0")" && pwd)/criu-patches
patches_digest=$(cat "$patch_dir"/*.patch | sha256sum | cut -c 1-16)

root=/opt/runtime
dest=$root/criu-$criu_version
current=$root/criu
system_links=("/usr/local/sbin/criu:$current/sbin/criu" "/usr/local/bin/crit:$current/bin/crit")

say() { echo "install-criu: $*"; }
fail() {
  echo "install-criu: ERROR: $*" >&2
  exit 1
}

force=
case "${1:-}" in
  '') ;;
  --force) force=1 ;;
  *) fail "unknown argument $1 (usage: install-criu.sh [--force])" ;;
esac

# --- already installed? (no apt, no network: must stay well under a second) -----------------------

prefix_complete() {
  local dir=$1
  [ -x "$dir/sbin/criu" ] && [ -f "$dir/include/criu/rpc.proto" ] && [ -f "$dir/lib/pycriu/images/magic.py" ] \
    && [ -f "$dir/lib/pycriu/images/core_pb2.py" ] && [ -f "$dir/lib/crit/__main__.py" ] && [ -x "$dir/bin/crit" ] \
    && [ "$("$dir/sbin/criu" --version 2>/dev/null | sed -n 's/^Version: *//p')" = "$criu_version" ] \
    && grep -q -a -F "$kerndat_dir/criu.kdat" "$dir/sbin/criu" \
    && [ "$(cat "$dir/runtime-patches" 2>/dev/null)" = "$patches_digest" ]
}

# A link is fine when it is ours, or when something that is not a symlink is there (not ours to replace).
links_ok() {
  local pair link target
  for pair in "${system_links[@]}"; do
    link=${pair%%:*} target=${pair#*:}
    if [ -L "$link" ]; then [ "$(readlink "$link")" = "$target" ] || return 1
    elif [ ! -e "$link" ]; then return 1
    fi
  done
}

make_links() {
  local pair link target
  for pair in "${system_links[@]}"; do
    link=${pair%%:*} target=${pair#*:}
    if [ -e "$link" ] && [ ! -L "$link" ]; then
      say "WARNING: $link exists and is not a symlink; leaving it (the runtime still finds $target)"
      continue
    fi
    mkdir -p "$(dirname "$link")"
    ln -sfn "$target" "$link"
  done
}

if [ "$(id -u)" != 0 ]; then
  if [ -z "$force" ] && prefix_complete "$current" && links_ok; then
    say "CRIU $criu_version is already installed in $current; nothing to do"
    exit 0
  fi
  fail "must run as root (it installs build dependencies with apt-get and writes $root)"
fi

if [ -z "$force" ] && prefix_complete "$current" && [ "$(readlink "$current")" = "criu-$criu_version" ]; then
  if links_ok; then
    say "CRIU $criu_version is already installed in $current; nothing to do"
  else
    make_links
    say "CRIU $criu_version is already installed in $current; symlinks in /usr/local restored"
  fi
  exit 0
fi

if [ -e "$current" ] && [ ! -L "$current" ]; then
  fail "$current exists and is not a symlink; move it away first"
fi

# --- the host's release and mirror ----------------------------------------------------------------

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
# shellcheck disable=SC1091
version_id=$(. /etc/os-release && echo "${VERSION_ID:-}")
[ -n "$codename" ] || fail "/etc/os-release names no VERSION_CODENAME; this installer is for Debian"

export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)
work=$(mktemp -d /tmp/install-criu.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# Refuses an apt plan that would install or upgrade anything from another Debian release than the
# host's (libc6, python3, systemd, util-linux and base-files above all): the host stays as it is.
apt_install_from_host_release() {
  local plan foreign
  plan=$(apt-get install -s --no-install-recommends "$@" 2>&1) || {
    printf '%s\n' "$plan" >&2
    fail "apt-get cannot install: $*"
  }
  if [ -n "$version_id" ]; then
    foreign=$(printf '%s\n' "$plan" | awk -v v="$version_id" '
      /^Inst / { if ($0 !~ ("[A-Za-z][^ (]*:" v "(\\.[0-9]+)?/")) print }')
    if [ -n "$foreign" ]; then
      printf '%s\n' "$foreign" >&2
      fail "apt would take the packages above from another release than the host's ($codename, Debian $version_id); refusing"
    fi
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

build_deps=(
  build-essential patch pkg-config python3 python3-protobuf
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
  libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev
  iptables # not to build: CRIU's network lock runs iptables-restore
)
say "installing the build dependencies from $codename"
[ -n "${RUNTIME_APT_UPDATED:-}" ] || apt-get update -qq
apt_install_from_host_release "${build_deps[@]}"

# --- the source tarball ---------------------------------------------------------------------------

if [ -n "${CRIU_TARBALL:-}" ]; then
  cp "$CRIU_TARBALL" "$work/$tarball"
else
  # The host's own Debian mirror (the one serving its release's main component), as apt sees it.
  mirror=$(apt-get indextargets --format '$(REPO_URI)' "Release: $codename" 'Component: main' \
    'Identifier: Packages' 'Target-Of: deb' | head -n 1)
  [ -n "$mirror" ] || fail "no '$codename main' entry in the host's apt sources to take the mirror from"
  url="${mirror%/}/$pool_dir/$tarball"
  say "downloading $url"
  mkdir "$work/download"
  if id _apt >/dev/null 2>&1; then chown _apt "$work/download"; fi
  /usr/lib/apt/apt-helper download-file "$url" "$work/download/$tarball" >/dev/null \
    || fail "could not download $url (the pool may no longer serve CRIU $criu_version: set CRIU_TARBALL to a copy of $tarball)"
  mv "$work/download/$tarball" "$work/$tarball"
fi
actual=$(sha256sum "$work/$tarball" | cut -d ' ' -f 1)
if [ "$actual" != "$tarball_sha256" ]; then
  fail "$tarball has SHA-256 $actual, expected $tarball_sha256: refusing to build it"
fi
say "$tarball: SHA-256 $actual verified"

# --- build ----------------------------------------------------------------------------------------

tar -xJf "$work/$tarball" -C "$work"
src=$work/criu-$criu_version
[ -f "$src/Makefile" ] || fail "$tarball did not unpack to criu-$criu_version/"
for patch_file in "$patch_dir"/*.patch; do
  patch -d "$src" -p1 --forward --batch --quiet --fuzz=0 <"$patch_file" || fail "$(basename "$patch_file") does not apply to CRIU $criu_version"
  say "applied $(basename "$patch_file")"
done
say "building CRIU $criu_version (make -j$(nproc) criu lib crit; log: $work/build.log)"
if ! make -C "$src" -j"$(nproc)" PREFIX="$dest" RUNDIR="$kerndat_dir" PYTHON=/usr/bin/python3 criu lib crit >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  cp "$work/build.log" /tmp/install-criu-build.log
  fail "the build failed (whole log: /tmp/install-criu-build.log)"
fi
# Read whole first: with pipefail, `ldd | grep -q` fails when grep's early exit cuts ldd off (SIGPIPE).
linked=$(ldd "$src/criu/criu")
for library in libgnutls libnftables libprotobuf-c; do
  grep -q "$library" <<<"$linked" || fail "the built criu is not linked to $library (a missing -dev package?)"
done

# --- install into a staging directory, then move it in place --------------------------------------

stage=$root/.criu-$criu_version.staging
rm -rf "$stage"
mkdir -p "$stage/sbin" "$stage/bin" "$stage/include/criu" "$stage/lib"
install -m 755 "$src/criu/criu" "$stage/sbin/criu"
echo "$patches_digest" >"$stage/runtime-patches"
install -m 644 "$src/images/rpc.proto" "$stage/include/criu/rpc.proto"
cp -r "$src/lib/pycriu" "$src/crit/crit" "$stage/lib/"
find "$stage/lib" \( -name Makefile -o -name .gitignore -o -name '*.pyc' -o -name __pycache__ \) -prune -exec rm -rf {} +
cat >"$stage/bin/crit" <<'CRIT'
#!/usr/bin/python3
# crit, CRIU's image tool, with the pycriu installed beside it (../lib), on the host's python3.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), 'lib'))
from crit.__main__ import main  # noqa: E402

sys.exit(main())
CRIT
chmod 755 "$stage/bin/crit"
/usr/bin/python3 -m compileall -q "$stage/lib" >/dev/null

# Swapped by renames, so that a criu in use keeps running and the window without one is tiny.
old=
if [ -e "$dest" ]; then
  old=$root/.criu-$criu_version.old.$$
  mv -T "$dest" "$old"
fi
mv -T "$stage" "$dest"
[ -z "$old" ] || rm -rf "$old"
ln -sfn "criu-$criu_version" "$current.new"
mv -T "$current.new" "$current"
make_links

# --- check ----------------------------------------------------------------------------------------

prefix_complete "$current" || fail "$current is incomplete after the install"
"$current/bin/crit" --version >/dev/null 2>&1 || fail "$current/bin/crit does not run (python3-protobuf?)"
[ "$(. /etc/os-release && echo "$VERSION_CODENAME")" = "$codename" ] || fail "/etc/os-release changed during the install"
say "installed CRIU $("$current/sbin/criu" --version | sed -n "s/^Version: *//p") in $dest ($(($(date +%s) - started)) s)"
