#!/usr/bin/env bash
# A private PostgreSQL for the store tests: initdb + pg_ctl as user postgres under WORKDIR, trust
# auth, listening on 127.0.0.1:PORT only, fsync off. Modelled on ../shared/recipes/pg-up.sh.
#
# usage: scripts/pg-test-server.sh [WORKDIR]          start (or reuse) it; the last stdout line is the URL
#        scripts/pg-test-server.sh --down [WORKDIR]   stop it, by PID, if this script started it
#
# WORKDIR defaults to $STRATA_PG_WORKDIR or /var/tmp/strata-pg-test; PORT is $STRATA_PG_PORT or 55432.
#
# Idempotent. If a PostgreSQL that accepts `postgres` with trust auth already listens on the port
# (ours from an earlier run, or one started by someone else, e.g. the recipe), it is reused. Only a
# server this script started (its PID is recorded in WORKDIR/server.pid) is ever stopped by --down.
set -euo pipefail

DOWN=0
if [ "${1:-}" = "--down" ]; then DOWN=1; shift; fi
WD=${1:-${STRATA_PG_WORKDIR:-/var/tmp/strata-pg-test}}
PORT=${STRATA_PG_PORT:-55432}
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
D=$WD/pgdata
MARK=$WD/server.pid

log() { echo "pg-test-server: $*" >&2; }

# Is PID a live postmaster of our data dir? (guards against a recycled PID)
is_our_postmaster() {
  local pid=$1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$D"
}

if [ $DOWN = 1 ]; then
  [ -f "$MARK" ] || { log "nothing to stop (no $MARK)"; exit 0; }
  pid=$(cat "$MARK")
  if is_our_postmaster "$pid"; then
    kill -INT "$pid"                        # SIGINT = PostgreSQL's "fast" shutdown
    deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then log "postgres $pid did not stop within 60 s"; exit 1; fi
      sleep 0.1
    done
    log "stopped postgres $pid ($D)"
  else
    log "postgres $pid is not running; removing stale $MARK"
  fi
  rm -f "$MARK"
  exit 0
fi

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$BIN" ]; then
  log "installing postgresql from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >&2
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

usable() {  # a server on the port that lets `postgres` in without a password
  "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -w -tAc 'select 1' >/dev/null 2>&1
}

if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; then
  usable || { log "something on 127.0.0.1:$PORT is not a usable PostgreSQL (need user postgres, trust auth)"; exit 1; }
  if [ -f "$MARK" ] && is_our_postmaster "$(cat "$MARK")"; then
    log "reusing our postgres $(cat "$MARK") on 127.0.0.1:$PORT"
  else
    rm -f "$MARK"
    log "reusing a postgres already listening on 127.0.0.1:$PORT (not ours: --down leaves it running)"
  fi
  echo "$URL"
  exit 0
fi

mkdir -p "$WD"
WD=$(cd "$WD" && pwd); D=$WD/pgdata; MARK=$WD/server.pid
chmod o+x "$WD"                       # the postgres user must be able to enter WORKDIR
PG=(runuser -u postgres --)
cd /                                  # postgres cannot read root's cwd

if [ ! -f "$D/PG_VERSION" ]; then
  rm -rf "$D"; mkdir -p "$D"; chown postgres:postgres "$D"
  "${PG[@]}" "$BIN/initdb" -D "$D" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$WD/initdb.log" 2>&1 \
    || { tail "$WD/initdb.log" >&2; exit 1; }
fi
touch "$WD/pg.log"; chown postgres "$WD/pg.log"
"${PG[@]}" "$BIN/pg_ctl" -D "$D" -l "$WD/pg.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $D -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { tail "$WD/pg.log" >&2; exit 1; }
pid=$(head -1 "$D/postmaster.pid")
echo "$pid" >"$MARK"
usable || { log "postgres $pid started but does not answer"; exit 1; }
# Every PostgreSQL test makes its own database (strata_store::testing::fresh_postgres_url) and
# nothing can be using them before the server starts: drop what earlier runs left, or the data
# dir grows by every run's databases (tens of GB after a few days of CI).
stale=$("$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -w -tAc \
  "select datname from pg_database where datname like 'strata\_test\_%'")
n=0
for db in $stale; do
  "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -w -c "DROP DATABASE \"$db\"" \
    >/dev/null && n=$((n + 1))
done
log "started postgres $pid on 127.0.0.1:$PORT ($D); dropped $n test databases left by earlier runs"
echo "$URL"
