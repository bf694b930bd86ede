# shellcheck shell=bash
# Shared helpers for the nova-temporal host scripts. Source it, don't run it:
#   # shellcheck source=lib/common.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Sets NT_REPO_ROOT, NT_STATE_DIR (default <repo>/state) and NT_LOG_DIR.
# Nothing here starts or stops anything.

if [[ -n "${_NT_COMMON_SOURCED:-}" ]]; then
  return 0
fi
_NT_COMMON_SOURCED=1

NT_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
NT_STATE_DIR="${NT_STATE_DIR:-$NT_REPO_ROOT/state}"
NT_LOG_DIR="$NT_STATE_DIR/log"
NT_SCRIPT_NAME="$(basename "${BASH_SOURCE[1]:-$0}" .sh)"
export NT_REPO_ROOT NT_STATE_DIR NT_LOG_DIR

nt_log() { printf '%s\n' "$*"; }
nt_warn() { printf '%s: warning: %s\n' "$NT_SCRIPT_NAME" "$*" >&2; }
nt_die() {
  printf '%s: error: %s\n' "$NT_SCRIPT_NAME" "$*" >&2
  exit 1
}

# Wall-clock seconds (with decimals) since an EPOCHREALTIME value.
nt_elapsed() {
  local start="$1" now="$EPOCHREALTIME"
  local s_us=$((10#${start%.*} * 1000000 + 10#${start#*.}))
  local n_us=$((10#${now%.*} * 1000000 + 10#${now#*.}))
  local d=$((n_us - s_us))
  printf '%d.%02d' $((d / 1000000)) $(((d % 1000000) / 10000))
}

nt_is_pid() { [[ "${1:-}" =~ ^[1-9][0-9]*$ ]]; }

# A PID is alive iff /proc/PID/stat exists and its state field is not Z
# (a zombie has exited; it only waits to be reaped). X (dead) counts as gone too.
nt_pid_alive() {
  local pid="${1:-}" stat state
  nt_is_pid "$pid" || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ -n "$stat" ]] || return 1
  # comm (field 2) may hold spaces and ')'; the state follows the LAST ')'.
  state="${stat##*) }"
  state="${state%% *}"
  [[ "$state" != Z && "$state" != X ]]
}

# Short command name of PID (/proc/PID/comm, at most 15 chars), empty if gone.
nt_pid_comm() {
  local pid="${1:-}"
  nt_is_pid "$pid" || return 0
  cat "/proc/$pid/comm" 2>/dev/null || true
}

# Parent PID of PID, empty if gone.
nt_pid_ppid() {
  local pid="${1:-}" stat rest
  nt_is_pid "$pid" || return 0
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 0
  rest="${stat##*) }"
  read -r _ rest _ <<<"$rest"
  printf '%s\n' "$rest"
}

# Alive and its comm is exactly NAME (guards against a recycled PID).
nt_pid_is() {
  local pid="$1" name="$2"
  nt_pid_alive "$pid" && [[ "$(nt_pid_comm "$pid")" == "$name" ]]
}

# Print the PID named by a pidfile (first token), nothing if absent/garbage.
nt_read_pidfile() {
  local file="$1" pid=""
  [[ -r "$file" ]] || return 0
  read -r pid _ <"$file" 2>/dev/null || true
  if nt_is_pid "$pid"; then printf '%s\n' "$pid"; fi
}

# nt_wait_for TIMEOUT_SECONDS CMD [ARGS...]: poll CMD every 50 ms until it
# succeeds (return 0) or the timeout passes (return 1).
nt_wait_for() {
  local timeout="$1"
  shift
  local deadline_us now_us
  deadline_us=$((${EPOCHREALTIME/./} + timeout * 1000000))
  while true; do
    if "$@"; then return 0; fi
    now_us=${EPOCHREALTIME/./}
    ((now_us < deadline_us)) || return 1
    sleep 0.05
  done
}

nt_pid_gone() { ! nt_pid_alive "$1"; }

# nt_stop_pid PID EXPECTED_COMM LABEL [TERM_TIMEOUT_S]
# SIGTERM, wait up to TERM_TIMEOUT_S (default 5), then SIGKILL and wait 5 s.
# Does nothing (returns 0) if the PID is gone; refuses (returns 0 with a warning)
# if the PID now belongs to a different program. Returns 1 if it survives.
nt_stop_pid() {
  local pid="$1" comm="$2" label="$3" timeout="${4:-5}" actual
  if ! nt_pid_alive "$pid"; then
    nt_log "$label: pid $pid already gone"
    return 0
  fi
  actual="$(nt_pid_comm "$pid")"
  if [[ "$actual" != "$comm" ]]; then
    nt_warn "$label: pid $pid is now '$actual', not '$comm'; leaving it alone"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if nt_wait_for "$timeout" nt_pid_gone "$pid"; then
    nt_log "$label: stopped pid $pid (SIGTERM)"
    return 0
  fi
  nt_warn "$label: pid $pid ignored SIGTERM for ${timeout}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  if nt_wait_for 5 nt_pid_gone "$pid"; then
    nt_log "$label: stopped pid $pid (SIGKILL)"
    return 0
  fi
  nt_warn "$label: pid $pid still alive after SIGKILL"
  return 1
}

# Read KEY=VALUE lines (KEY = NT_[A-Z0-9_]+, VALUE = [A-Za-z0-9._:/-]*) from an
# env file into the named associative array. Never sources/evals the file.
nt_read_env() {
  local file="$1" line key value
  local -n _nt_env_out="$2"
  [[ -r "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^(NT_[A-Z0-9_]+)=([A-Za-z0-9._:/-]*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    _nt_env_out["$key"]="$value"
  done <"$file"
}

# nt_write_file_if_changed FILE CONTENT: atomic replace, only when different.
# Returns 0 if written, 1 if unchanged.
nt_write_file_if_changed() {
  local file="$1" content="$2" tmp
  if [[ -f "$file" ]] && [[ "$(cat "$file")" == "$content" ]]; then
    return 1
  fi
  tmp="$(mktemp "$file.XXXXXX")"
  printf '%s\n' "$content" >"$tmp"
  mv -f "$tmp" "$file"
  return 0
}

nt_require_root() {
  [[ "$(id -u)" == 0 ]] || nt_die "must run as root"
}
