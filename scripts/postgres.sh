#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, drills and benchmarks: Debian's binaries, run
# as an unprivileged user (initdb refuses root) from a folder under $PROCTOR_HOME/pg, listening
# on 127.0.0.1 only, with trust authentication on loopback. Never use it for real data: see
# docs/deploying.md for a production database.
#
#   scripts/postgres.sh start    create the cluster if needed, start it, create the database
#   scripts/postgres.sh stop     stop it (fast: open transactions are rolled back)
#   scripts/postgres.sh status   up or down, and the URL
#   scripts/postgres.sh url      print the connection URL (postgres://…)
#   scripts/postgres.sh reset    stop, delete the cluster, start a new one
#
# Environment: PROCTOR_PG_PORT (55432), PROCTOR_PG_ROOT (/var/tmp/proctor-pg/<hash of PROCTOR_HOME>), PROCTOR_PG_USER (the OS user running the server,
# proctor-pg), PROCTOR_PG_DB (proctor).
set -euo pipefail
source "$(dirname "$0")/env.sh"

PG_PORT=${PROCTOR_PG_PORT:-55432}
PG_OS_USER=${PROCTOR_PG_USER:-proctor-pg}
PG_DB=${PROCTOR_PG_DB:-proctor}
# Outside the checkout by default: initdb refuses root, and the non-root owner must reach the
# folder through every parent, which a checkout in a private folder (mktemp -d, /root) denies.
# One cluster per checkout: the folder is named after a hash of PROCTOR_HOME.
PG_ROOT=${PROCTOR_PG_ROOT:-/var/tmp/proctor-pg/$(printf %s "$PROCTOR_HOME" | sha256sum | cut -c1-12)}
PG_DATA=$PG_ROOT/data
PG_LOG=$PG_ROOT/postgres.log

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return
    fi
  done
  die "PostgreSQL is not installed: run 'bash scripts/setup.sh' (it installs Debian's postgresql)"
}

url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB"; }

# Runs a command as the cluster's owner; as that user already, runs it directly.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  if ! id "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
    log "created the system user $PG_OS_USER to run the test cluster"
  fi
}

init_cluster() {
  [ -f "$PG_DATA/PG_VERSION" ] && return
  ensure_user
  mkdir -p "$PG_ROOT"
  [ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER" "$PG_ROOT"
  # The owner must reach the folder through every parent (a checkout under /root is not).
  if ! as_owner test -w "$PG_ROOT"; then
    die "$PG_OS_USER cannot write $PG_ROOT: set PROCTOR_HOME to a folder every user can enter"
  fi
  log "creating a PostgreSQL cluster in $PG_DATA"
  as_owner "$(pg_bin)/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$PG_ROOT/initdb.log" 2>&1 || {
    tail -n 20 "$PG_ROOT/initdb.log" >&2
    die "initdb failed; see $PG_ROOT/initdb.log"
  }
  # Loopback only; enough connections for drills with several processes, each with a pool.
  cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT'
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
log_min_messages = warning
CONF
  cat >"$PG_DATA/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 trust
HBA
}

start() {
  if ready; then
    create_database
    return
  fi
  init_cluster
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
  as_owner "$(pg_bin)/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 start >/dev/null
  create_database
}

create_database() {
  local exists
  exists=$(psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Atc \
    "select 1 from pg_database where datname = '$PG_DB'")
  [ "$exists" = 1 ] && return
  psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -qc "create database \"$PG_DB\"" >/dev/null
  log "created database $PG_DB"
}

stop() {
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  as_owner "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null && log "stopped PostgreSQL"
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) ready && echo "postgres: up ($(url))" || echo "postgres: down" ;;
  url) url ;;
  reset)
    stop
    rm -rf "$PG_DATA"
    start
    ;;
  *) die "usage: $0 start|stop|status|url|reset" ;;
esac
