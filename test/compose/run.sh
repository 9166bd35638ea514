#!/usr/bin/env bash
# The Compose deployment run for real on this machine, with no image registry:
#   - its own dockerd (no iptables, no default bridge, overlay2 else vfs storage; exec root
#     and socket in a temporary dir, data root kept in .cache/compose), stopped with its
#     containers and mounts on exit, also when a step fails;
#   - base images made from this machine (test/compose/host-base.sh: node, npm, busybox,
#     tini, nats-server 2.10.27) and docker import-ed: seconds, where debootstrap took minutes;
#     PostgreSQL's image from Debian's server on that base (test/compose/host-postgres.sh);
#   - the app image built from the Dockerfile on that base (docker build --network host,
#     so npm ci reaches the registry; its cache mount seeded from this machine's npm cache);
#   - docker compose up: the 3-node JetStream cluster, the simulator, PostgreSQL and every
#     service (the projector too);
#   - test/compose/scenarios.ts: senders scaled, the SENDS leader killed, a node
#     partitioned, senders stopped and killed; one summary line per scenario.
# Each phase prints its duration ("compose: phase: ..."). Needs root on Debian/Ubuntu;
# installs docker.io and postgresql with apt when missing,
# and Compose v2 (Debian trixie's docker-compose) into .cache/ when missing.
# Usage: test/compose/run.sh        (exit code 0 only if every scenario passed)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
cache=$repo/.cache/compose
started=$(date +%s)
say() { echo "compose: $*"; }
elapsed() { echo "$(( $(date +%s) - started ))s"; }
# One line per phase with its own duration (CI's log shows where a cold run's time goes).
phase_start=$started
phase() { local now; now=$(date +%s); say "phase: $1 $(( now - phase_start ))s (total $(elapsed))"; phase_start=$now; }

[ "$(id -u)" = 0 ] || { echo "compose: needs root (it starts its own dockerd)" >&2; exit 1; }
[ -f /etc/debian_version ] || { echo "compose: needs Debian or Ubuntu (apt-get, dpkg-deb)" >&2; exit 1; }
mkdir -p "$cache"

# --- tools --------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
# The local PostgreSQL image is made from Debian's server (the suite's SQL tests use it too).
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# The daemon's own CLI (docker.io) when present: its API version matches dockerd.
docker_bin=$(command -v /usr/bin/docker || command -v docker)
docker() { "$docker_bin" "$@"; }

# Compose v2: an installed CLI plugin, else Debian trixie's package unpacked into the cache.
compose_bin=$(test/compose/compose-bin.sh)
project=notifyci
compose() { "$compose_bin" -p "$project" -f "$repo/docker-compose.yml" -f "$repo/test/compose/ci.override.yml" "$@"; }
say "$(docker --version), $("$compose_bin" version)"
phase "tools (docker.io, Compose v2)"

# --- dockerd ------------------------------------------------------------------------
# Exec root and socket in a temporary dir. The data root (images, build cache) is kept in
# .cache/compose/docker between runs, so a second run rebuilds only what changed;
# containers, volumes and networks are removed on exit. COMPOSE_FRESH=1 starts empty.
tmp=$(mktemp -d /tmp/notify-compose.XXXXXX)
data_root=$cache/docker
if [ "${COMPOSE_FRESH:-0}" = 1 ]; then rm -rf "$data_root"-*; fi
export DOCKER_HOST=unix://$tmp/docker.sock
dockerd_pid=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
    left=$(docker ps -aq 2>/dev/null)
    [ -n "$left" ] && docker rm -f $left >/dev/null 2>&1
    docker volume prune -f >/dev/null 2>&1
    docker image prune -f >/dev/null 2>&1
    kill -TERM "$dockerd_pid"
    for _ in $(seq 1 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$dockerd_pid" 2>/dev/null
  fi
  # Container shims and the managed containerd of this daemon live under $tmp.
  for pid in $(pgrep -f "$tmp" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  grep -F -e " $tmp" -e " $data_root" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$tmp"
  say "dockerd stopped, $tmp removed (total $(elapsed))"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# overlay2 where the kernel and the file system allow it (each layer stores only its
# changes); vfs otherwise (every layer and container a full copy: gigabytes, and minutes).
start_dockerd() {
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver="$1" \
    --data-root "$data_root-$1" --exec-root "$tmp/exec" --pidfile "$tmp/dockerd.pid" \
    -H "$DOCKER_HOST" >"$tmp/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}
driver=${COMPOSE_STORAGE_DRIVER:-overlay2}
say "starting dockerd in $tmp (storage driver $driver)"
if ! start_dockerd "$driver"; then
  [ "$driver" = vfs ] && { tail -20 "$tmp/dockerd.log" >&2; exit 1; }
  say "dockerd did not start with $driver: $(tail -1 "$tmp/dockerd.log"); falling back to vfs"
  kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; rm -rf "$tmp/exec"
  driver=vfs
  start_dockerd vfs || { tail -20 "$tmp/dockerd.log" >&2; exit 1; }
fi
phase "dockerd ($driver)"

# --- base images --------------------------------------------------------------------
# Made from this machine (test/compose/host-base.sh: its node and npm, GNU find, busybox,
# tini, the finder's nats-server 2.10.27) in seconds; a debootstrap of trixie took ~15 min.
nats_bin=$(node libs/nats-server/dist/cli.js)
rootfs=$tmp/rootfs
test/compose/host-base.sh "$rootfs" "$nats_bin" "$cache/debs"
# Imported again only when its content changed: a new base image id voids the build cache.
stamp=$( (cd "$rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l -printf '%p %l\n' | sort) | sha256sum | cut -c1-16)
if [ "$(docker image inspect -f '{{index .Config.Labels "notify.base"}}' notify-base:host 2>/dev/null)" != "$stamp" ]; then
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL notify.base=$stamp" \
    - notify-base:host >/dev/null
fi
rm -rf "$rootfs"
# The NATS image: the same base with nats-server as the entrypoint, like the official image.
printf 'FROM notify-base:host\nENTRYPOINT ["/usr/sbin/nats-server"]\n' | docker build -q -t notify-nats:host - >/dev/null
# PostgreSQL for the send log: Debian's server on the same base (test/compose/host-postgres.sh).
test/compose/host-postgres.sh "$tmp/postgres" notify-base:host
DOCKER_BUILDKIT=1 docker build -q --network host -t notify-postgres:host "$tmp/postgres" >"$tmp/postgres.log" 2>&1 \
  || { tail -20 "$tmp/postgres.log" >&2; exit 1; }
rm -rf "$tmp/postgres"
phase "base images (from this machine, docker import; nats, postgres)"
export NATS_IMAGE=notify-nats:host NODE_IMAGE=notify-base:host POSTGRES_IMAGE=notify-postgres:host APP_IMAGE=notify-orchestrator:ci
# The npm cache of this machine (filled by the suite's `npm ci`) seeds the build's cache
# mount (/root/.npm, the Dockerfile's `RUN --mount=type=cache`): npm ci in the image then
# takes the tarballs from it instead of the registry.
npm_cache=$(npm config get cache 2>/dev/null || true)
if [ -d "$npm_cache/_cacache" ]; then
  printf 'FROM notify-base:host\nRUN --mount=type=cache,target=/root/.npm --mount=type=bind,target=/seed cp -a /seed/. /root/.npm/_cacache/\n' \
    | DOCKER_BUILDKIT=1 docker build -q --network host -f - "$npm_cache/_cacache" >"$tmp/seed.log" 2>&1 \
    || { say "npm cache not seeded (the build downloads instead): $(tail -1 "$tmp/seed.log")"; }
  phase "npm cache seeded into the build cache mount"
fi
DOCKER_BUILDKIT=1 docker build --network host --build-arg NODE_IMAGE="$NODE_IMAGE" -t "$APP_IMAGE" . >"$tmp/build.log" 2>&1 \
  || { tail -40 "$tmp/build.log" >&2; exit 1; }
phase "app image (Dockerfile, docker build --network host)"

# --- the cluster and the scenarios ----------------------------------------------------
if ! compose up -d --no-build --wait --scale sender=1 >"$tmp/up.log" 2>&1; then
  tail -5 "$tmp/up.log"
  compose ps -a
  for c in $(docker ps -aq); do echo "--- $(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"; docker logs --tail 15 "$c" 2>&1; done
  exit 1
fi
phase "compose up (3 NATS nodes, simulator, services healthy)"
export COMPOSE_CMD_JSON
COMPOSE_CMD_JSON=$(node -e 'console.log(JSON.stringify(process.argv.slice(1)))' "$compose_bin" -p "$project" -f "$repo/docker-compose.yml" -f "$repo/test/compose/ci.override.yml")
export DOCKER_BIN=$docker_bin COMPOSE_PROJECT=$project
node --conditions=development --import="$repo/node_modules/@tapjs/typescript/dist/esm/import.mjs" test/compose/scenarios.ts
phase "scenarios"
compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
phase "compose down"
left=$(docker ps -aq | wc -l)
say "containers left after compose down: $left"
[ "$left" = 0 ]
say "done in $(elapsed)"
