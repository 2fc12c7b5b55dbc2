#!/usr/bin/env bash
# A throwaway PostgreSQL server for the real-Airflow tier and the benchmarks, one per checkout.
#   scripts/postgres_server.sh start   # prints nothing else; idempotent
#   scripts/postgres_server.sh stop    # stops it and removes its data
# Debian's postgresql package refuses to run as root, so the server runs as the `postgres` user,
# listening on 127.0.0.1 and a socket in its data folder. Trust authentication on loopback only:
# the server holds test data and lives for one run.
#
# Nothing is shared between checkouts: each start picks a free port (PGPORT to choose one) and a
# fresh data folder, and writes both to .airflow/postgres.env (SERVER_PORT, SERVER_DATA), which
# the tier reads. A fixed port
# and folder let a run meet another clone's server, or the lock file of a server that no longer
# exists, and fail to start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${AIRFLOW_TIER_HOME:-$PWD/.airflow}"
STATE="$ROOT/postgres.env"
CHOSEN_PORT="${PGPORT:-}"
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

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The recorded server answers on its port and serves the recorded folder (not another checkout's).
recorded_server_up() {
  [ -f "$STATE" ] || return 1
  SERVER_DATA="" SERVER_PORT="" SERVER_DATA_OWNED=0
  # shellcheck disable=SC1090
  . "$STATE"
  [ -n "$SERVER_DATA" ] && [ -n "$SERVER_PORT" ] || return 1
  local served
  served="$("$PG_BIN/psql" -h 127.0.0.1 -p "$SERVER_PORT" -U postgres -d postgres -XAtqc \
    'SHOW data_directory' 2>/dev/null)" || return 1
  [ "$served" = "$SERVER_DATA" ]
}

# Stops the recorded server if this machine still runs it, and removes the folder this script made.
forget_recorded_server() {
  [ -f "$STATE" ] || return 0
  SERVER_DATA="" SERVER_PORT="" SERVER_DATA_OWNED=0
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -n "$SERVER_DATA" ] && [ -f "$SERVER_DATA/PG_VERSION" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$SERVER_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$SERVER_DATA" ] && [ "$SERVER_DATA_OWNED" = 1 ]; then rm -rf "$SERVER_DATA"; fi
  rm -f "$STATE"
}

start_new_server() {
  local data="${AIRFLOW_TIER_PGDATA:-}" owned=0 port="$CHOSEN_PORT"
  if [ -z "$data" ]; then
    # Outside the checkout: the postgres user must reach it, and a clone may sit under a private
    # folder such as /root.
    data="$(mktemp -d /var/tmp/mwaa-migrate-postgres.XXXXXX)"
    owned=1
  fi
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  local attempt
  for attempt in 1 2 3; do
    [ -n "$CHOSEN_PORT" ] || port="$(free_port)"
    printf 'SERVER_DATA=%q\nSERVER_PORT=%q\nSERVER_DATA_OWNED=%s\n' "$data" "$port" "$owned" > "$STATE"
    if as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null; then
      return 0
    fi
    # Another process may have taken the port between choosing and binding it: choose again.
    [ -z "$CHOSEN_PORT" ] || break
    echo "PostgreSQL did not start on port $port (attempt $attempt)" >&2
  done
  echo "PostgreSQL did not start; the end of $data/server.log:" >&2
  tail -n 20 "$data/server.log" >&2 || true
  return 1
}

case "${1:-start}" in
  start)
    install_postgres
    mkdir -p "$ROOT"
    if ! (recorded_server_up); then
      forget_recorded_server
      start_new_server
    fi
    ;;
  stop)
    if [ -n "$PG_BIN" ]; then forget_recorded_server; fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
