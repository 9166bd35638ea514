#!/usr/bin/env bash
# Makes the root filesystem of the Compose run's local base image from this Debian machine,
# in seconds and with no image registry (a debootstrap of trixie took ~15 min on the 2-core
# CI machine). What the Dockerfile's stages and the services need, and nothing else:
#   - this machine's node and npm (the README's Node 20) with the shared libraries ldd names;
#   - dash as /bin/sh, and GNU find (the Dockerfile's manifests stage uses -delete, which
#     busybox's find lacks);
#   - busybox-static from this machine's apt sources (apt-get download + dpkg-deb -x): rm,
#     env and the other small tools, and wget for the NATS health check;
#   - tini (docker.io depends on it, so it is here whenever dockerd is; else downloaded);
#   - nats-server 2.10.27 from the project's finder (.cache/nats-server);
#   - the CA bundle (it may hold a TLS-inspecting proxy's CA the npm registry needs).
# Usage: test/compose/host-base.sh OUT_DIR NATS_SERVER_BIN DEB_CACHE_DIR
# The production images stay the public ones (Dockerfile / docker-compose.yml defaults).
set -euo pipefail
out=$1 nats_bin=$2 debs=$3
rm -rf "$out"
mkdir -p "$out"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64} "$out"/{etc/ssl/certs,tmp,root,home/node} "$debs"
# Debian's merged /usr: /bin, /sbin, /lib and /lib64 are links into /usr.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$out/$d"; done
chmod 1777 "$out/tmp"
chown 1000:1000 "$out/home/node"

# A binary and every shared library ldd resolves for it, each at the path the loader asks for.
with_libs() {
  local src=$1 dest=$2 lib
  install -D -m 0755 "$(readlink -f "$src")" "$out$dest"
  for lib in $(ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    [ -e "$out$lib" ] || { mkdir -p "$out$(dirname "$lib")"; cp -L "$lib" "$out$lib"; }
  done
}
# One package's .deb from this machine's apt sources, unpacked into DIR (cached by name).
unpack_deb() {
  local pkg=$1 dir=$2
  if ! ls "$debs/${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$debs" && { apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download "$pkg"; }; })
  fi
  dpkg-deb -x "$(ls "$debs/${pkg}"_*.deb | head -1)" "$dir"
}

with_libs "$(command -v node)" /usr/bin/node
npm_src=$(npm root -g)/npm
mkdir -p "$out/usr/lib/node_modules" && cp -a "$npm_src" "$out/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$out/usr/bin/npm"
with_libs "$(command -v find)" /usr/bin/find
# dash as /bin/sh: busybox's own sh prefers its applets, so `find -delete` would run busybox's.
with_libs "$(readlink -f /bin/sh)" /usr/bin/dash
ln -s dash "$out/usr/bin/sh"
with_libs "$nats_bin" /usr/sbin/nats-server

tmp=$(mktemp -d)
unpack_deb busybox-static "$tmp/busybox"
install -m 0755 "$tmp/busybox/bin/busybox" "$out/usr/bin/busybox"
for applet in $("$out/usr/bin/busybox" --list); do
  [ -e "$out/usr/bin/$applet" ] || ln -s busybox "$out/usr/bin/$applet"
done
if command -v tini >/dev/null 2>&1; then
  with_libs "$(command -v tini)" /usr/bin/tini
else
  unpack_deb tini "$tmp/tini" && install -m 0755 "$tmp/tini/usr/bin/tini-static" "$out/usr/bin/tini"
fi
rm -rf "$tmp"

cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' > "$out/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' > "$out/etc/group"
printf 'hosts: files dns\n' > "$out/etc/nsswitch.conf"
