#!/usr/bin/env bash
# A throw-away PostgreSQL server on loopback for the SQL tests.
#
#   scripts/postgres.sh start    initdb into .pgdata/ (once) and start; prints the test URL
#   scripts/postgres.sh stop     stop the server started here
#   scripts/postgres.sh status   exit 0 when it runs
#   scripts/postgres.sh url      print the URL (export it as CLINSYNTH_TEST_POSTGRES_URL)
#
# The server listens on 127.0.0.1:${CLINSYNTH_PG_PORT:-54329} only, with a Unix socket in /tmp,
# trust authentication for local connections and database "clinsynth_test". initdb refuses to
# run as root: as root the cluster belongs to the "postgres" system user. Binaries are found on
# PATH, with pg_config, or under /usr/lib/postgresql/*/bin.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${CLINSYNTH_PGDATA:-$ROOT/.pgdata}"
PORT="${CLINSYNTH_PG_PORT:-54329}"
DB="clinsynth_test"
LOG="$DATA/server.log"

has_all() {
  local dir="$1" tool
  for tool in pg_ctl initdb psql createdb; do [ -x "$dir/$tool" ] || return 1; done
}

find_bin() {
  local dir
  if command -v pg_ctl >/dev/null 2>&1; then
    dir="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
    if has_all "$dir"; then echo "$dir"; return; fi
  fi
  if command -v pg_config >/dev/null 2>&1 && has_all "$(pg_config --bindir)"; then
    pg_config --bindir; return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if has_all "$dir"; then echo "$dir"; return; fi
  done
  return 1
}

if [ "$(id -u)" = "0" ]; then
  OWNER="postgres"
  as_owner() { runuser -u "$OWNER" -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

url() { echo "postgresql://${OWNER}@127.0.0.1:${PORT}/${DB}"; }

running() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

ensure_db() {
  if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$OWNER" -d postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$OWNER" "$DB"
  fi
}

start() {
  if running; then ensure_db; url; return 0; fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [ "$OWNER" = "$(id -un)" ] || chown "$OWNER" "$DATA"
    chmod 700 "$DATA"
    local out
    out="$(mktemp)"
    as_owner "$BIN/initdb" -D "$DATA" -U "$OWNER" --auth=trust --encoding=UTF8 \
      --no-locale >"$out" 2>&1 || { cat "$out" >&2; rm -f "$out"; exit 1; }
    rm -f "$out"
  fi
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-k /tmp -h 127.0.0.1 -p $PORT -c fsync=off -c full_page_writes=off" start >/dev/null \
    || { cat "$LOG" >&2; exit 1; }
  ensure_db
  url
}

stop() {
  if running; then as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
}

BIN="$(find_bin)" || { echo "PostgreSQL binaries (pg_ctl, initdb) not found." >&2; exit 3; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running ;;
  url) url ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
