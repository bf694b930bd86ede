#!/usr/bin/env bash
# Local PostgreSQL for nova-temporal's instance store (no systemd needed).
#
#   scripts/postgres.sh start    install Debian's postgresql-15 if no server binary
#                                is there, initdb state/postgres if needed, start
#                                the server (if not running), wait until ready,
#                                create role + database nova_temporal; prints
#                                NT_PG_PID=<pid> and NT_PG_STARTED=1 (this call
#                                started it) or 0 (it was already running)
#   scripts/postgres.sh stop     stop the server by PID (postmaster.pid), only if
#                                this script started it (fast shutdown)
#   scripts/postgres.sh url      print postgresql://nova_temporal:<password>@127.0.0.1:<port>/nova_temporal
#   scripts/postgres.sh status   print the PID, exit 1 if not running
#
# The cluster runs as the postgres user from state/postgres, listens on
# 127.0.0.1:$PGPORT and a Unix socket in state/postgres-run; log in
# state/log/postgres.log. The role's random password is kept in state/postgres.env
# (mode 0600); the role has CREATEDB so tests can make throw-away databases.
#
# Env: PGPORT (55432), NT_STATE_DIR (<repo>/state), NT_WAIT_TIMEOUT (60 s until ready).
# Progress goes to stderr; stdout carries only what the command prints.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly PGDATA_DIR="$NT_STATE_DIR/postgres"
readonly SOCKET_DIR="$NT_STATE_DIR/postgres-run"
readonly ENVFILE="$NT_STATE_DIR/postgres.env"
readonly OURS_FILE="$NT_STATE_DIR/postgres.started-pid"
readonly LOGFILE="$NT_LOG_DIR/postgres.log"
readonly HOST=127.0.0.1
readonly ROLE=nova_temporal
readonly DATABASE=nova_temporal
readonly PG_USER=postgres
readonly DEBIAN_PACKAGE=postgresql-15
PORT="${PGPORT:-55432}"
WAIT_TIMEOUT="${NT_WAIT_TIMEOUT:-60}"

say() { printf 'postgres: %s\n' "$*" >&2; }
fail() {
  printf 'postgres: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  cat <<EOF
usage: $0 start|stop|url|status
  start   start PostgreSQL from $PGDATA_DIR on $HOST:\$PGPORT (${PORT}) if it is not
          running; prints NT_PG_PID=... and NT_PG_STARTED=1|0
  stop    stop it, if this script started it
  url     print the database URL (with the password)
  status  print its PID, or exit 1
EOF
}

[[ "$PORT" =~ ^[0-9]+$ ]] || fail "PGPORT must be a number"
[[ "$WAIT_TIMEOUT" =~ ^[0-9]+$ ]] || fail "NT_WAIT_TIMEOUT must be whole seconds"

# Run as the postgres user, with its own environment, from / (no fork: exec).
as_pg() { (cd / && exec setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups --reset-env -- "$@"); }

# bin directory of the newest installed server, nothing if none.
newest_bin() {
  local -a found
  mapfile -t found < <(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V)
  ((${#found[@]} > 0)) && dirname "${found[-1]}"
  return 0
}

ensure_installed() {
  local T0="$EPOCHREALTIME" apt=(apt-get -y -q --no-install-recommends install "$DEBIAN_PACKAGE")
  if [[ -n "$(newest_bin)" ]] && id -u "$PG_USER" >/dev/null 2>&1; then return 0; fi
  nt_require_root
  say "no PostgreSQL server found; installing $DEBIAN_PACKAGE"
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2
  fi
  [[ -n "$(newest_bin)" ]] || fail "installed $DEBIAN_PACKAGE but found no /usr/lib/postgresql/*/bin/postgres"
  # The package creates (and, where services may start, starts) a 'main' cluster
  # on port 5432. It is not ours: this script neither uses nor stops it.
  say "installed $DEBIAN_PACKAGE in $(nt_elapsed "$T0")s"
}

# Binaries matching the cluster's major version (PG_VERSION), else the newest.
pg_bin() {
  local v
  if [[ -r "$PGDATA_DIR/PG_VERSION" ]]; then
    v="$(<"$PGDATA_DIR/PG_VERSION")"
    [[ -x "/usr/lib/postgresql/$v/bin/postgres" ]] || fail "$PGDATA_DIR is a PostgreSQL $v cluster but /usr/lib/postgresql/$v/bin is missing"
    printf '%s\n' "/usr/lib/postgresql/$v/bin"
  else
    newest_bin
  fi
}

ensure_initdb() {
  local T0="$EPOCHREALTIME" bin
  [[ -s "$PGDATA_DIR/PG_VERSION" ]] && return 0
  if [[ -d "$PGDATA_DIR" ]] && [[ -n "$(ls -A "$PGDATA_DIR")" ]]; then
    fail "$PGDATA_DIR exists, is not empty and holds no cluster (no PG_VERSION); not touching it"
  fi
  as_pg test -x "$NT_STATE_DIR" || fail "user $PG_USER cannot reach $NT_STATE_DIR (set NT_STATE_DIR to a directory it can traverse)"
  bin="$(pg_bin)"
  mkdir -p "$PGDATA_DIR"
  chown "$PG_USER:$PG_USER" "$PGDATA_DIR"
  chmod 0700 "$PGDATA_DIR"
  say "initdb $PGDATA_DIR ($("$bin/postgres" --version))"
  as_pg "$bin/initdb" -D "$PGDATA_DIR" -U "$PG_USER" -E UTF8 --locale=C \
    --auth-local=peer --auth-host=scram-sha-256 >>"$LOGFILE" 2>&1 ||
    { tail -n 20 "$LOGFILE" >&2; fail "initdb failed (log: $LOGFILE)"; }
  say "initdb done in $(nt_elapsed "$T0")s"
}

# PID of the postmaster serving our data directory, nothing if none. Checks
# that the PID is a live `postgres` whose working directory is PGDATA_DIR (a
# postmaster chdirs there), so a recycled PID is never taken for ours.
running_pid() {
  local pid cwd
  pid="$(nt_read_pidfile "$PGDATA_DIR/postmaster.pid")"
  [[ -n "$pid" ]] && nt_pid_is "$pid" postgres || return 0
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 0
  [[ "$cwd" == "$(cd "$PGDATA_DIR" && pwd -P)" ]] && printf '%s\n' "$pid"
  return 0
}

# Lines 4 and 5 of postmaster.pid: the running server's port and socket directory.
running_port() { sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; }
running_socket_dir() { sed -n 5p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true; }

port_in_use() { [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]]; }

ready() { "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 1 >/dev/null 2>&1; }

declare -A PGENV=()
load_env() { nt_read_env "$ENVFILE" PGENV; }

write_env() {
  nt_write_file_if_changed "$ENVFILE" "# Written by scripts/postgres.sh: the $ROLE role's password (secret) and port.
NT_PG_USER=$ROLE
NT_PG_DATABASE=$DATABASE
NT_PG_PASSWORD=${PGENV[NT_PG_PASSWORD]}
NT_PG_PORT=$PORT" || true
  chmod 0600 "$ENVFILE"
}

# Role with the password from state/postgres.env, and its database; idempotent.
ensure_role_and_database() {
  load_env
  if [[ ! "${PGENV[NT_PG_PASSWORD]:-}" =~ ^[0-9a-f]{32,}$ ]]; then
    PGENV[NT_PG_PASSWORD]="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
  fi
  write_env
  # The password goes through stdin, never a command line.
  local socket_dir
  socket_dir="$(running_socket_dir)"
  as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "${socket_dir:-$SOCKET_DIR}" -p "$PORT" -U "$PG_USER" -d postgres \
    -v role="$ROLE" -v db="$DATABASE" >/dev/null <<SQL || fail "creating role/database $ROLE failed"
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD '${PGENV[NT_PG_PASSWORD]}';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  say "role and database $ROLE ready"
}

do_start() {
  local pid actual_port T0 started=0
  ensure_installed
  ensure_initdb
  BIN="$(pg_bin)"
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    actual_port="$(running_port)"
    [[ "$actual_port" == "$PORT" ]] || fail "already running pid $pid on port $actual_port, not $PORT; stop it first"
    say "already running pid $pid ($HOST:$PORT)"
    nt_wait_for "$WAIT_TIMEOUT" ready || fail "pid $pid does not accept connections on $HOST:$PORT"
  else
    T0="$EPOCHREALTIME"
    port_in_use "$PORT" && fail "port $PORT is in use by another process: $(ss -Htlnp "sport = :$PORT" 2>/dev/null | head -n 1)"
    ((${#SOCKET_DIR} + 16 < 108)) || fail "socket path $SOCKET_DIR/.s.PGSQL.$PORT is too long; use a shorter NT_STATE_DIR"
    mkdir -p "$SOCKET_DIR" "$NT_LOG_DIR"
    chown "$PG_USER:$PG_USER" "$SOCKET_DIR"
    chmod 0700 "$SOCKET_DIR"
    rm -f "$OURS_FILE"
    printf '=== %s postgres.sh start (port %s)\n' "$(date -Is)" "$PORT" >>"$LOGFILE"
    # Background job of a non-interactive shell: setsid does not fork and setpriv
    # execs, so $! is the postmaster's own PID. The lock fd is not inherited.
    setsid setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups --reset-env -- \
      "$BIN/postgres" -D "$PGDATA_DIR" -k "$SOCKET_DIR" -p "$PORT" -c listen_addresses="$HOST" \
      {LOCK_FD}>&- </dev/null >>"$LOGFILE" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$OURS_FILE"
    _up_or_dead() { ! nt_pid_alive "$pid" || ready; }
    nt_wait_for "$WAIT_TIMEOUT" _up_or_dead || true
    if ! nt_pid_alive "$pid"; then
      rm -f "$OURS_FILE"
      tail -n 20 "$LOGFILE" >&2 || true
      fail "server exited during startup (log: $LOGFILE)"
    fi
    ready || fail "pid $pid not ready after ${WAIT_TIMEOUT}s (still running; '$0 stop' to stop it)"
    [[ "$(running_pid)" == "$pid" ]] || fail "postmaster.pid does not name pid $pid"
    started=1
    say "started pid $pid ($HOST:$PORT) in $(nt_elapsed "$T0")s"
  fi
  ensure_role_and_database
  printf 'NT_PG_PID=%s\nNT_PG_STARTED=%s\n' "$pid" "$started"
}

do_stop() {
  local pid ours T0="$EPOCHREALTIME"
  pid="$(running_pid)"
  ours="$(nt_read_pidfile "$OURS_FILE")"
  if [[ -z "$pid" ]]; then
    say "not running"
    rm -f "$OURS_FILE"
    return 0
  fi
  if [[ "$pid" != "$ours" ]]; then
    say "pid $pid was not started by this script; leaving it running"
    return 0
  fi
  # SIGINT = fast shutdown (SIGTERM would wait for every client to disconnect).
  kill -INT "$pid" 2>/dev/null || true
  if nt_wait_for 30 nt_pid_gone "$pid"; then
    say "stopped pid $pid (fast shutdown) in $(nt_elapsed "$T0")s"
  else
    say "pid $pid still running 30 s after SIGINT; sending SIGQUIT (immediate shutdown)"
    kill -QUIT "$pid" 2>/dev/null || true
    nt_wait_for 10 nt_pid_gone "$pid" || fail "pid $pid survived SIGQUIT"
    say "stopped pid $pid (immediate shutdown) in $(nt_elapsed "$T0")s"
  fi
  rm -f "$OURS_FILE"
}

do_url() {
  local port
  load_env
  [[ -n "${PGENV[NT_PG_PASSWORD]:-}" ]] || fail "no password in $ENVFILE; run '$0 start' first"
  port="$(running_port)"
  [[ -n "$(running_pid)" && -n "$port" ]] || port="${PGENV[NT_PG_PORT]:-$PORT}"
  printf 'postgresql://%s:%s@%s:%s/%s\n' "$ROLE" "${PGENV[NT_PG_PASSWORD]}" "$HOST" "$port" "$DATABASE"
}

do_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    say "running pid $pid ($HOST:$(running_port))"
    printf '%s\n' "$pid"
  else
    say "not running"
    return 1
  fi
}

(($# == 1)) || {
  usage >&2
  exit 2
}
if [[ "$1" == start || "$1" == stop ]]; then
  nt_require_root
  # One start/stop at a time; the server itself gets this fd closed.
  mkdir -p "$NT_STATE_DIR"
  exec {LOCK_FD}>"$NT_STATE_DIR/postgres.lock"
  flock -w 120 "$LOCK_FD" || fail "another start/stop holds $NT_STATE_DIR/postgres.lock"
fi
case "$1" in
  start) do_start ;;
  stop) do_stop ;;
  url) do_url ;;
  status) do_status ;;
  -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
