#!/usr/bin/env bash
# Local RabbitMQ for nova-temporal's versioned notifications (no systemd needed).
#
#   scripts/rabbitmq.sh start    install Debian's rabbitmq-server if it is missing,
#                                start a broker node (if ours is not running), wait
#                                until it has booted, create the user nova_temporal;
#                                prints NT_RABBITMQ_PID=<beam.smp pid> and
#                                NT_RABBITMQ_STARTED=1 (this call started it) or 0
#   scripts/rabbitmq.sh stop     stop the broker by PID, only if this script started
#                                it; then epmd, only if this script started that too
#   scripts/rabbitmq.sh url      print amqp://nova_temporal:<password>@127.0.0.1:<port>/%2F
#   scripts/rabbitmq.sh status   print the broker's PID, exit 1 if not running
#
# The node (RABBITMQ_NODENAME, default nova_temporal@localhost) runs as the
# rabbitmq user with everything under state/: data in state/rabbitmq/mnesia, its
# Erlang cookie in state/rabbitmq/home, logs in state/log/rabbitmq. AMQP listens on
# 127.0.0.1:$NT_RABBITMQ_PORT (5672, or the next free port; the choice is kept in
# state/rabbitmq.env), Erlang distribution on 127.0.0.1 too. /etc/rabbitmq is not
# read. The user's random password is in state/rabbitmq.env (mode 0600); the
# default guest user is removed from our node.
#
# The PID recorded and printed is the Erlang VM's (beam.smp): SIGKILL on it kills
# the broker. epmd (Erlang's port mapper, 4369) is started by this script when none
# runs, bound to 127.0.0.1, and stopped by `stop` only if it has no other nodes.
#
# Env: NT_RABBITMQ_PORT, NT_RABBITMQ_NODENAME, NT_STATE_DIR (<repo>/state),
#      NT_WAIT_TIMEOUT (120 s until booted).
# Progress goes to stderr; stdout carries only what the command prints.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly RMQ_DIR="$NT_STATE_DIR/rabbitmq"
readonly MNESIA_BASE="$RMQ_DIR/mnesia"
readonly HOME_DIR="$RMQ_DIR/home"
readonly PIDFILE="$RMQ_DIR/rabbitmq.pid"
readonly CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
readonly CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
readonly PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
readonly LOG_BASE="$NT_LOG_DIR/rabbitmq"
readonly LOGFILE="$LOG_BASE/server.out"
readonly ENVFILE="$NT_STATE_DIR/rabbitmq.env"
readonly OURS_FILE="$NT_STATE_DIR/rabbitmq.started-pid"
readonly EPMD_OURS_FILE="$NT_STATE_DIR/rabbitmq.epmd-pid"
readonly HOST=127.0.0.1
readonly EPMD_PORT=4369
readonly AMQP_USER=nova_temporal
readonly RMQ_USER=rabbitmq
readonly DEBIAN_PACKAGE=rabbitmq-server
readonly SERVER_BIN=/usr/lib/rabbitmq/bin/rabbitmq-server
readonly CTL_BIN=/usr/lib/rabbitmq/bin/rabbitmqctl
readonly NODENAME="${NT_RABBITMQ_NODENAME:-nova_temporal@localhost}"
WAIT_TIMEOUT="${NT_WAIT_TIMEOUT:-120}"
PORT=""
DIST_PORT=""

say() { printf 'rabbitmq: %s\n' "$*" >&2; }
fail() {
  printf 'rabbitmq: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  cat <<EOF
usage: $0 start|stop|url|status
  start   start the broker node $NODENAME on $HOST (AMQP port from \$NT_RABBITMQ_PORT,
          saved choice, 5672 or the next free one) if it is not running;
          prints NT_RABBITMQ_PID=... and NT_RABBITMQ_STARTED=1|0
  stop    stop it, if this script started it (and epmd, if it started that)
  url     print the AMQP URL (with the password)
  status  print its PID, or exit 1
EOF
}

[[ "$WAIT_TIMEOUT" =~ ^[0-9]+$ ]] || fail "NT_WAIT_TIMEOUT must be whole seconds"
[[ "$NODENAME" =~ ^[A-Za-z0-9_-]+@[A-Za-z0-9.-]+$ ]] || fail "NT_RABBITMQ_NODENAME must look like name@host"
if [[ -n "${NT_RABBITMQ_PORT:-}" ]]; then
  if [[ ! "$NT_RABBITMQ_PORT" =~ ^[0-9]+$ ]] || ((NT_RABBITMQ_PORT < 1 || NT_RABBITMQ_PORT > 45535)); then
    fail "NT_RABBITMQ_PORT must be a port number below 45536 (the distribution port is it + 20000)"
  fi
fi

declare -A ENV=()
load_env() { nt_read_env "$ENVFILE" ENV; }

write_env() {
  umask 077
  nt_write_file_if_changed "$ENVFILE" "# Written by scripts/rabbitmq.sh: the $AMQP_USER user's password (secret) and ports.
NT_RABBITMQ_USER=$AMQP_USER
NT_RABBITMQ_PASSWORD=${ENV[NT_RABBITMQ_PASSWORD]}
NT_RABBITMQ_PORT=${ENV[NT_RABBITMQ_PORT]}
NT_RABBITMQ_DIST_PORT=${ENV[NT_RABBITMQ_DIST_PORT]}" || true
  chmod 0600 "$ENVFILE"
}

port_in_use() { [[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]]; }

# First free port from $1 upwards (at most 100 tries).
free_port_from() {
  local p="$1" end=$(($1 + 100))
  while ((p < end)); do
    if ! port_in_use "$p"; then
      printf '%s\n' "$p"
      return 0
    fi
    p=$((p + 1))
  done
  return 1
}

# AMQP and distribution ports for a new start: the override, else the saved
# choice if still free, else 5672 / port+20000 or the next free ones.
choose_ports() {
  if [[ -n "${NT_RABBITMQ_PORT:-}" ]]; then
    PORT="$NT_RABBITMQ_PORT"
    port_in_use "$PORT" && fail "NT_RABBITMQ_PORT $PORT is in use: $(ss -Htlnp "sport = :$PORT" 2>/dev/null | head -n 1)"
  elif [[ "${ENV[NT_RABBITMQ_PORT]:-}" =~ ^[0-9]+$ ]] && ! port_in_use "${ENV[NT_RABBITMQ_PORT]}"; then
    PORT="${ENV[NT_RABBITMQ_PORT]}"
  else
    PORT="$(free_port_from 5672)" || fail "no free port in 5672-5771"
  fi
  if [[ "${ENV[NT_RABBITMQ_DIST_PORT]:-}" =~ ^[0-9]+$ && "${ENV[NT_RABBITMQ_PORT]:-}" == "$PORT" ]] &&
    ! port_in_use "${ENV[NT_RABBITMQ_DIST_PORT]}"; then
    DIST_PORT="${ENV[NT_RABBITMQ_DIST_PORT]}"
  else
    DIST_PORT="$(free_port_from $((PORT + 20000)))" || fail "no free distribution port from $((PORT + 20000))"
  fi
  ENV[NT_RABBITMQ_PORT]="$PORT"
  ENV[NT_RABBITMQ_DIST_PORT]="$DIST_PORT"
}

ensure_installed() {
  local T0="$EPOCHREALTIME" apt=(apt-get -y -q --no-install-recommends install "$DEBIAN_PACKAGE")
  if [[ -x "$SERVER_BIN" && -x "$CTL_BIN" ]] && id -u "$RMQ_USER" >/dev/null 2>&1; then return 0; fi
  nt_require_root
  say "no RabbitMQ server found; installing $DEBIAN_PACKAGE"
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2
  fi
  [[ -x "$SERVER_BIN" && -x "$CTL_BIN" ]] || fail "installed $DEBIAN_PACKAGE but $SERVER_BIN or $CTL_BIN is missing"
  id -u "$RMQ_USER" >/dev/null 2>&1 || fail "installed $DEBIAN_PACKAGE but there is no $RMQ_USER user"
  # Where policy-rc.d allows it, the package starts its own broker (rabbit@<host>,
  # /etc/rabbitmq, port 5672). It is not ours: this script neither uses nor stops it.
  say "installed $DEBIAN_PACKAGE in $(nt_elapsed "$T0")s"
}

# The environment the node and the CLI tools share: nothing from /etc/rabbitmq,
# everything under state/. The CLI finds the node and its cookie through it.
rmq_env() {
  local port="${ENV[NT_RABBITMQ_PORT]:-5672}" dist="${ENV[NT_RABBITMQ_DIST_PORT]:-25672}"
  printf '%s\n' \
    "HOME=$HOME_DIR" \
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin" \
    "LANG=C.UTF-8" \
    "LC_ALL=C.UTF-8" \
    "RABBITMQ_NODENAME=$NODENAME" \
    "RABBITMQ_USE_LONGNAME=false" \
    "RABBITMQ_CONF_ENV_FILE=$CONF_ENV_FILE" \
    "RABBITMQ_CONFIG_FILE=$CONFIG_FILE" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$PLUGINS_FILE" \
    "RABBITMQ_MNESIA_BASE=$MNESIA_BASE" \
    "RABBITMQ_LOG_BASE=$LOG_BASE" \
    "RABBITMQ_PID_FILE=$PIDFILE" \
    "RABBITMQ_NODE_IP_ADDRESS=$HOST" \
    "RABBITMQ_NODE_PORT=$port" \
    "RABBITMQ_DIST_PORT=$dist" \
    "ERL_EPMD_ADDRESS=$HOST" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
}

# Run a command as the rabbitmq user with only rmq_env (no fork: exec).
as_rmq() {
  local -a envs
  mapfile -t envs < <(rmq_env)
  (cd / && exec setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups --reset-env -- env -i "${envs[@]}" "$@")
}

ctl() { as_rmq "$CTL_BIN" -n "$NODENAME" "$@"; }

# PID of the beam.smp serving our data directory, nothing if none. The node
# writes its OS pid to RABBITMQ_PID_FILE; the PID must be a live beam.smp whose
# environment names our mnesia base, so a recycled PID is never taken for ours.
running_pid() {
  local pid
  pid="$(nt_read_pidfile "$PIDFILE")"
  [[ -n "$pid" ]] && nt_pid_is "$pid" beam.smp || return 0
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -Fxq "RABBITMQ_MNESIA_BASE=$MNESIA_BASE" || return 0
  printf '%s\n' "$pid"
}

# The AMQP port PID listens on (from its environment), nothing if unknown.
running_port() {
  local line
  line="$(tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -m1 '^RABBITMQ_NODE_PORT=')" || return 0
  printf '%s\n' "${line#RABBITMQ_NODE_PORT=}"
}

epmd_bin() {
  local e
  e="$(command -v epmd 2>/dev/null || true)"
  [[ -z "$e" ]] && e="$(printf '%s\n' /usr/lib/erlang/erts-*/bin/epmd | sort -V | tail -n 1)"
  [[ -x "$e" ]] || fail "epmd not found"
  printf '%s\n' "$e"
}

epmd_running() { ERL_EPMD_ADDRESS="$HOST" "$(epmd_bin)" -port "$EPMD_PORT" -names >/dev/null 2>&1; }

# Start epmd bound to 127.0.0.1 in the background (not -daemon, so $! is its
# PID), unless one answers already. Recorded so that `stop` may stop it.
ensure_epmd() {
  local pid epmd
  if epmd_running; then return 0; fi
  epmd="$(epmd_bin)"
  port_in_use "$EPMD_PORT" && fail "port $EPMD_PORT is in use but no epmd answers on it"
  setsid setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups --reset-env -- \
    "$epmd" -address "$HOST" -port "$EPMD_PORT" {LOCK_FD}>&- </dev/null >>"$LOG_BASE/epmd.out" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$EPMD_OURS_FILE"
  nt_wait_for 10 epmd_running || fail "epmd (pid $pid) does not answer on $HOST:$EPMD_PORT"
  say "started epmd pid $pid ($HOST:$EPMD_PORT)"
}

prepare_dirs() {
  as_rmq_probe() { setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups -- test -x "$NT_STATE_DIR"; }
  as_rmq_probe || fail "user $RMQ_USER cannot reach $NT_STATE_DIR (set NT_STATE_DIR to a directory it can traverse)"
  mkdir -p "$RMQ_DIR" "$MNESIA_BASE" "$HOME_DIR" "$LOG_BASE"
  # Read by the node at start; ours, not /etc/rabbitmq's.
  [[ -f "$CONF_ENV_FILE" ]] || printf '# nova-temporal: settings come from scripts/rabbitmq.sh\n' >"$CONF_ENV_FILE"
  [[ -f "$CONFIG_FILE" ]] || printf '# nova-temporal: listeners come from RABBITMQ_NODE_IP_ADDRESS/PORT\n' >"$CONFIG_FILE"
  [[ -f "$PLUGINS_FILE" ]] || printf '[].\n' >"$PLUGINS_FILE"
  chown -R "$RMQ_USER:$RMQ_USER" "$RMQ_DIR" "$LOG_BASE"
  chmod 0700 "$RMQ_DIR" "$HOME_DIR" "$MNESIA_BASE"
}

booted() { ctl -q await_startup --timeout 5 >/dev/null 2>&1; }

# User with the password from state/rabbitmq.env and all rights on vhost /;
# the guest user removed. Idempotent. The password goes through stdin.
ensure_user() {
  local users
  users="$(ctl -q list_users --silent 2>/dev/null | awk '{print $1}')" || fail "rabbitmqctl list_users failed"
  if grep -Fxq "$AMQP_USER" <<<"$users"; then
    printf '%s\n' "${ENV[NT_RABBITMQ_PASSWORD]}" | ctl -q change_password "$AMQP_USER" >/dev/null ||
      fail "setting the password of $AMQP_USER failed"
  else
    printf '%s\n' "${ENV[NT_RABBITMQ_PASSWORD]}" | ctl -q add_user "$AMQP_USER" >/dev/null ||
      fail "creating user $AMQP_USER failed"
  fi
  ctl -q set_permissions -p / "$AMQP_USER" '.*' '.*' '.*' >/dev/null || fail "set_permissions for $AMQP_USER failed"
  if grep -Fxq guest <<<"$users"; then
    ctl -q delete_user guest >/dev/null || nt_warn "could not delete the guest user"
  fi
  say "user $AMQP_USER ready"
}

do_start() {
  local pid launcher T0 started=0 actual_port
  ensure_installed
  load_env
  if [[ ! "${ENV[NT_RABBITMQ_PASSWORD]:-}" =~ ^[0-9a-f]{32,}$ ]]; then
    ENV[NT_RABBITMQ_PASSWORD]="$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
  fi
  prepare_dirs
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    actual_port="$(running_port "$pid")"
    [[ -z "${NT_RABBITMQ_PORT:-}" || "$actual_port" == "$NT_RABBITMQ_PORT" ]] ||
      fail "already running pid $pid on port $actual_port, not $NT_RABBITMQ_PORT; stop it first"
    ENV[NT_RABBITMQ_PORT]="$actual_port"
    say "already running pid $pid ($HOST:$actual_port)"
    nt_wait_for "$WAIT_TIMEOUT" booted || fail "pid $pid has not finished booting"
  else
    T0="$EPOCHREALTIME"
    choose_ports
    ensure_epmd
    rm -f "$OURS_FILE" "$PIDFILE"
    printf '=== %s rabbitmq.sh start (%s, port %s)\n' "$(date -Is)" "$NODENAME" "$PORT" >>"$LOGFILE"
    local -a envs
    mapfile -t envs < <(rmq_env)
    # setsid and setpriv exec; the server script execs erl, which execs the VM.
    # The authoritative PID is the one the node writes to RABBITMQ_PID_FILE.
    setsid setpriv --reuid="$RMQ_USER" --regid="$RMQ_USER" --init-groups --reset-env -- \
      env -i "${envs[@]}" "$SERVER_BIN" {LOCK_FD}>&- </dev/null >>"$LOGFILE" 2>&1 &
    launcher=$!
    _pid_known_or_dead() { [[ -n "$(running_pid)" ]] || ! nt_pid_alive "$launcher"; }
    nt_wait_for "$WAIT_TIMEOUT" _pid_known_or_dead || true
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
      tail -n 30 "$LOGFILE" >&2 || true
      nt_pid_alive "$launcher" && nt_stop_pid "$launcher" "$(nt_pid_comm "$launcher")" "rabbitmq launcher" 10 >&2
      fail "the broker did not come up (log: $LOGFILE, $LOG_BASE)"
    fi
    printf '%s\n' "$pid" >"$OURS_FILE"
    _booted_or_dead() { ! nt_pid_alive "$pid" || booted; }
    nt_wait_for "$WAIT_TIMEOUT" _booted_or_dead || true
    if ! nt_pid_alive "$pid"; then
      rm -f "$OURS_FILE"
      tail -n 30 "$LOGFILE" >&2 || true
      fail "the broker exited during boot (log: $LOGFILE, $LOG_BASE)"
    fi
    booted || fail "pid $pid not booted after ${WAIT_TIMEOUT}s (still running; '$0 stop' to stop it)"
    started=1
    say "started pid $pid ($NODENAME, $HOST:$PORT) in $(nt_elapsed "$T0")s"
  fi
  write_env
  ensure_user
  printf 'NT_RABBITMQ_PID=%s\nNT_RABBITMQ_STARTED=%s\n' "$pid" "$started"
}

stop_our_epmd() {
  local epmd_pid names
  epmd_pid="$(nt_read_pidfile "$EPMD_OURS_FILE")"
  [[ -n "$epmd_pid" ]] || return 0
  if ! nt_pid_is "$epmd_pid" epmd; then
    rm -f "$EPMD_OURS_FILE"
    return 0
  fi
  # Another Erlang node may have registered with it since: then it stays.
  names="$(ERL_EPMD_ADDRESS="$HOST" "$(epmd_bin)" -port "$EPMD_PORT" -names 2>/dev/null | grep '^name ' || true)"
  if [[ -n "$names" ]]; then
    say "epmd pid $epmd_pid still serves other nodes ($(tr '\n' ' ' <<<"$names")); leaving it running"
    return 0
  fi
  nt_stop_pid "$epmd_pid" epmd epmd 5 >&2
  rm -f "$EPMD_OURS_FILE"
}

do_stop() {
  local pid ours T0="$EPOCHREALTIME"
  pid="$(running_pid)"
  ours="$(nt_read_pidfile "$OURS_FILE")"
  if [[ -z "$pid" ]]; then
    say "not running"
    rm -f "$OURS_FILE"
    stop_our_epmd
    return 0
  fi
  if [[ "$pid" != "$ours" ]]; then
    say "pid $pid was not started by this script; leaving it running"
    return 0
  fi
  # SIGTERM: the VM runs init:stop(), RabbitMQ shuts down cleanly.
  nt_stop_pid "$pid" beam.smp rabbitmq 60 >&2 || fail "pid $pid survived SIGKILL"
  say "stopped in $(nt_elapsed "$T0")s"
  rm -f "$OURS_FILE"
  stop_our_epmd
}

do_url() {
  local port pid
  load_env
  [[ -n "${ENV[NT_RABBITMQ_PASSWORD]:-}" ]] || fail "no password in $ENVFILE; run '$0 start' first"
  pid="$(running_pid)"
  port=""
  [[ -n "$pid" ]] && port="$(running_port "$pid")"
  [[ -n "$port" ]] || port="${ENV[NT_RABBITMQ_PORT]:-5672}"
  # %2F: the default virtual host "/".
  printf 'amqp://%s:%s@%s:%s/%%2F\n' "$AMQP_USER" "${ENV[NT_RABBITMQ_PASSWORD]}" "$HOST" "$port"
}

do_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    say "running pid $pid ($NODENAME, $HOST:$(running_port "$pid"))"
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
  # One start/stop at a time; the server and epmd get this fd closed.
  mkdir -p "$NT_STATE_DIR"
  exec {LOCK_FD}>"$NT_STATE_DIR/rabbitmq.lock"
  flock -w 180 "$LOCK_FD" || fail "another start/stop holds $NT_STATE_DIR/rabbitmq.lock"
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
