#!/usr/bin/env bash
# Local Temporal dev server for nova-temporal.
#
#   scripts/temporal-server.sh start    start (if not running), wait until
#                                       SERVING, register search attributes;
#                                       prints the server PID on stdout
#   scripts/temporal-server.sh stop     SIGTERM by PID, SIGKILL after 10 s
#   scripts/temporal-server.sh status   prints the PID, exit 1 if not running
#
# The server is `temporal server start-dev` (binds 127.0.0.1) with its SQLite
# database in state/temporal.db, log in state/log/temporal.log and PID in
# state/temporal.pid. Keyword search attributes registered in the namespace:
# InstanceUuid, ComputeHost, PowerOnStep.
#
# Env: PORT (7233), UI_PORT (8233), NT_TEMPORAL_NAMESPACE (default),
#      NT_STATE_DIR (<repo>/state), NT_WAIT_TIMEOUT (60 s for SERVING).
# Progress goes to stderr; only the PID goes to stdout.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly PIDFILE="$NT_STATE_DIR/temporal.pid"
readonly DBFILE="$NT_STATE_DIR/temporal.db"
readonly LOGFILE="$NT_LOG_DIR/temporal.log"
readonly HOST=127.0.0.1
readonly SEARCH_ATTRIBUTES=(InstanceUuid ComputeHost PowerOnStep)
PORT="${PORT:-7233}"
UI_PORT="${UI_PORT:-8233}"
NAMESPACE="${NT_TEMPORAL_NAMESPACE:-default}"
WAIT_TIMEOUT="${NT_WAIT_TIMEOUT:-60}"

say() { printf 'temporal-server: %s\n' "$*" >&2; }
fail() {
  printf 'temporal-server: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  cat <<EOF
usage: $0 start|stop|status
  start   start the dev server on $HOST:\$PORT (${PORT}), UI \$UI_PORT (${UI_PORT}),
          if $PIDFILE does not name a running one; print its PID
  stop    stop the server named by $PIDFILE
  status  print its PID, or exit 1
EOF
}

[[ "$PORT" =~ ^[0-9]+$ && "$UI_PORT" =~ ^[0-9]+$ ]] || fail "PORT and UI_PORT must be numbers"
[[ "$WAIT_TIMEOUT" =~ ^[0-9]+$ ]] || fail "NT_WAIT_TIMEOUT must be whole seconds"

# PID of our running server, or nothing (a stale/recycled pidfile counts as none).
running_pid() {
  local pid
  pid="$(nt_read_pidfile "$PIDFILE")"
  if nt_pid_is "$pid" temporal; then printf '%s\n' "$pid"; fi
}

# The value of --port in PID's command line (the port it really serves on).
pid_port() {
  local -a argv
  local i
  mapfile -d '' -t argv <"/proc/$1/cmdline" 2>/dev/null || return 0
  for ((i = 0; i < ${#argv[@]}; i++)); do
    case "${argv[i]}" in
      --port) printf '%s\n' "${argv[i + 1]:-}"; return 0 ;;
      --port=*) printf '%s\n' "${argv[i]#--port=}"; return 0 ;;
    esac
  done
}

port_in_use() { [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]]; }

healthy() {
  local out
  out="$("$TEMPORAL" operator cluster health --address "$HOST:$PORT" 2>/dev/null)" || return 1
  [[ "$out" == *SERVING* && "$out" != *NOT_SERVING* ]]
}

ensure_search_attributes() {
  local name existing out missing=()
  existing="$("$TEMPORAL" operator search-attribute list --address "$HOST:$PORT" \
    --namespace "$NAMESPACE" -o json 2>&1)" || fail "listing search attributes failed: $existing"
  for name in "${SEARCH_ATTRIBUTES[@]}"; do
    if [[ "$existing" == *"\"$name\""* ]]; then
      say "search attribute $name: already registered"
    else
      missing+=("$name")
    fi
  done
  for name in "${missing[@]}"; do
    if out="$("$TEMPORAL" operator search-attribute create --name "$name" --type Keyword \
      --address "$HOST:$PORT" --namespace "$NAMESPACE" 2>&1)"; then
      say "search attribute $name: registered (Keyword)"
    elif [[ "$out" == *"already exists"* ]]; then
      say "search attribute $name: already registered"
    else
      fail "registering search attribute $name failed: $out"
    fi
  done
}

do_start() {
  local pid actual_port T0="$EPOCHREALTIME"
  TEMPORAL="$("$NT_REPO_ROOT/scripts/temporal-cli.sh")" || fail "no temporal CLI"
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    actual_port="$(pid_port "$pid")"
    if [[ -n "$actual_port" && "$actual_port" != "$PORT" ]]; then
      fail "already running pid $pid on port $actual_port, not $PORT; stop it first"
    fi
    say "already running pid $pid ($HOST:$PORT)"
    nt_wait_for "$WAIT_TIMEOUT" healthy || fail "pid $pid does not report SERVING on $HOST:$PORT"
  else
    rm -f "$PIDFILE"
    local p
    for p in "$PORT" "$UI_PORT"; do
      if port_in_use "$p"; then
        fail "port $p is already in use by another process (not ours: $PIDFILE names none): $(ss -Htlnp "sport = :$p" 2>/dev/null | head -n 1)"
      fi
    done
    mkdir -p "$NT_LOG_DIR"
    printf '=== %s temporal-server.sh start (port %s, ui %s)\n' "$(date -Is)" "$PORT" "$UI_PORT" >>"$LOGFILE"
    # Background job of a non-interactive shell: not a group leader, so setsid
    # does not fork and $! is the server's own PID.
    setsid "$TEMPORAL" server start-dev --db-filename "$DBFILE" --port "$PORT" \
      --ui-port "$UI_PORT" --log-level warn {LOCK_FD}>&- </dev/null >>"$LOGFILE" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
    _up_or_dead() { ! nt_pid_alive "$pid" || healthy; }
    nt_wait_for "$WAIT_TIMEOUT" _up_or_dead || true
    if ! nt_pid_alive "$pid"; then
      rm -f "$PIDFILE"
      tail -n 20 "$LOGFILE" >&2 || true
      fail "server exited during startup (log: $LOGFILE)"
    fi
    if ! healthy; then
      tail -n 20 "$LOGFILE" >&2 || true
      fail "pid $pid not SERVING after ${WAIT_TIMEOUT}s (still running; '$0 stop' to stop it)"
    fi
    say "started pid $pid ($HOST:$PORT, UI http://$HOST:$UI_PORT) in $(nt_elapsed "$T0")s"
  fi
  ensure_search_attributes
  printf '%s\n' "$pid"
}

do_stop() {
  local pid T0="$EPOCHREALTIME"
  pid="$(nt_read_pidfile "$PIDFILE")"
  if [[ -z "$pid" ]] || ! nt_pid_alive "$pid"; then
    say "not running${pid:+ (stale pid $pid)}"
    rm -f "$PIDFILE"
    return 0
  fi
  if [[ "$(nt_pid_comm "$pid")" != temporal ]]; then
    say "pid $pid in $PIDFILE is now '$(nt_pid_comm "$pid")', not ours; removing the stale pidfile"
    rm -f "$PIDFILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if nt_wait_for 10 nt_pid_gone "$pid"; then
    say "stopped pid $pid (SIGTERM) in $(nt_elapsed "$T0")s"
  else
    say "pid $pid still running 10 s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    nt_wait_for 5 nt_pid_gone "$pid" || fail "pid $pid survived SIGKILL"
    say "stopped pid $pid (SIGKILL) in $(nt_elapsed "$T0")s"
  fi
  rm -f "$PIDFILE"
}

do_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    say "running pid $pid"
    printf '%s\n' "$pid"
  else
    say "not running"
    return 1
  fi
}

(($# == 1)) || { usage >&2; exit 2; }
if [[ "$1" == start || "$1" == stop ]]; then
  # One start/stop at a time; the server itself gets this fd closed.
  mkdir -p "$NT_STATE_DIR"
  exec {LOCK_FD}>"$NT_STATE_DIR/temporal.lock"
  flock -w 120 "$LOCK_FD" || fail "another start/stop holds $NT_STATE_DIR/temporal.lock"
fi
case "$1" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
