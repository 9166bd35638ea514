#!/usr/bin/env bash
# Makes the build context of the Compose run's local PostgreSQL image from this machine's
# Debian PostgreSQL (the suite's SQL tests install it), on top of the local base image:
# the server's binaries, extension libraries and share dir, the shared libraries they
# link, the time zones, and a small entrypoint that honours the official image's
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB and PGDATA, so docker-compose.yml runs
# unchanged on it. Production keeps the public image (POSTGRES_IMAGE's default).
# Usage: test/compose/host-postgres.sh OUT_DIR BASE_IMAGE
set -euo pipefail
out=$1 base=$2
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")
pg_dir=$(dirname "$pg_bin") major=$(basename "$(dirname "$pg_bin")")
rm -rf "$out" && mkdir -p "$out/root/usr/lib/x86_64-linux-gnu" "$out/root/usr/share/postgresql" "$out/root/usr/local/bin"

mkdir -p "$out/root$(dirname "$pg_dir")" && cp -a "$pg_dir" "$out/root$pg_dir"
# The JIT provider links LLVM (over 100 MB) and is optional: without it jit stays off.
rm -rf "$out/root$pg_dir"/lib/llvmjit* "$out/root$pg_dir/lib/bitcode"
cp -a "/usr/share/postgresql/$major" "$out/root/usr/share/postgresql/"
[ -d /usr/share/zoneinfo ] && mkdir -p "$out/root/usr/share" && cp -a /usr/share/zoneinfo "$out/root/usr/share/"
# Every library the binaries and extensions link, under /usr/lib (the base image's /lib is a link to it).
for f in "$out/root$pg_dir"/bin/* "$out/root$pg_dir"/lib/*.so; do
  ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  cp -L "$lib" "$out/root/usr/lib/x86_64-linux-gnu/$(basename "$lib")"
done

cat > "$out/root/usr/local/bin/pg-entrypoint" <<'EOF'
#!/bin/sh
# The official image's contract, minimally: a first start runs initdb with POSTGRES_USER's
# password (scram-sha-256 from any address) and creates POSTGRES_DB; then the server runs.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile -A scram-sha-256 --no-locale -E UTF8 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\";" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
EOF
chmod 0755 "$out/root/usr/local/bin/pg-entrypoint"

cat > "$out/Dockerfile" <<EOF
FROM $base
COPY root/ /
# initdb needs its user in /etc/passwd; a new named volume takes the ownership of its
# mount point: the server's user.
RUN echo 'postgres:x:999:999::/var/lib/postgresql:/bin/sh' >> /etc/passwd && echo 'postgres:x:999:' >> /etc/group \\
 && mkdir -p /var/lib/postgresql/data && chown -R 999:999 /var/lib/postgresql
ENV PATH=$pg_dir/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
USER 999:999
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/pg-entrypoint"]
EOF
