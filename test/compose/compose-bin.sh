#!/usr/bin/env bash
# Prints the path of a Compose v2 binary: an installed CLI plugin, else Debian trixie's
# docker-compose package unpacked into .cache/compose/compose-plugin with a private apt
# sources list (the system's apt state is not touched). The binary also runs standalone
# (`<path> -f docker-compose.yml config`), so the deploy tests need no Docker engine.
# Used by test/compose/run.sh and test/deploy (docker compose config). Messages go to
# stderr; exit 1 when no binary can be had (not Debian/Ubuntu, no apt-get, no network).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=$PWD/.cache/compose
for p in /usr/libexec/docker/cli-plugins/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose \
         /usr/lib/docker/cli-plugins/docker-compose "$cache/compose-plugin/usr/libexec/docker/cli-plugins/docker-compose"; do
  [ -x "$p" ] && { echo "$p"; exit 0; }
done
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || { echo "compose: no Compose v2 and no apt-get to fetch one" >&2; exit 1; }
echo "compose: downloading Debian trixie's docker-compose into $cache/compose-plugin" >&2
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/debs"
signed=""; [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] && signed=" [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
echo "deb$signed ${DEBIAN_MIRROR:-http://deb.debian.org/debian} trixie main" > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives")
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -q update >&2
(cd "$apt_dir/debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" -q download docker-compose/trixie >&2)
rm -rf "$cache/compose-plugin" && dpkg-deb -x "$apt_dir"/debs/docker-compose_*.deb "$cache/compose-plugin"
echo "$cache/compose-plugin/usr/libexec/docker/cli-plugins/docker-compose"
