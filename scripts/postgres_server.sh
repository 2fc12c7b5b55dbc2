#!/usr/bin/env bash
# A throwaway PostgreSQL server for the real-Airflow tier and the benchmark (data under /var/tmp).
#   scripts/postgres_server.sh start   # prints nothing else; idempotent
#   scripts/postgres_server.sh stop
# Debian's postgresql package refuses to run as root, so the server runs as the `postgres` user,
# listening on 127.0.0.1:$PGPORT and a socket in its data folder. Trust authentication on loopback
# only: the server holds test data and lives for one run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${AIRFLOW_TIER_HOME:-$PWD/.airflow}"
# Outside the checkout: the postgres user must reach it, and a clone may sit under a private folder
# such as /root.
DATA="${AIRFLOW_TIER_PGDATA:-/var/tmp/mwaa-migrate-postgres-${PGPORT:-55432}}"
PORT="${PGPORT:-55432}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_postgres() {
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
}

case "${1:-start}" in
  start)
    install_postgres
    mkdir -p "$ROOT"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      mkdir -p "$DATA"
      [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
      chmod 700 "$DATA"
      as_postgres "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
    fi
    ;;
  stop)
    if [ -n "$PG_BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
