#!/usr/bin/env bash
# Stop exactly what scripts/host-setup.sh started, by the PIDs it recorded in
# state/host-started.env (never by process name). Daemons that were already
# running before host-setup (recorded with *_STARTED=0) are left alone, and so
# is any recorded PID that now belongs to another program.
#
# Order: libvirtd (SIGTERM, 5 s, SIGKILL) and its tini wrapper, virtlogd,
# then Open vSwitch (`ovs-ctl stop` only when we started both daemons and the
# pidfiles still name our PIDs; otherwise our PIDs one by one).
# The OVS bridge stays in the OVS database; it comes back with the daemons.
#
# Safe to run twice and safe when the state file is missing.
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly STATE_FILE="$NT_STATE_DIR/host-started.env"
readonly OVS_RUNDIR=/var/run/openvswitch
readonly OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl

case "${1:-}" in
  -h | --help)
    echo "usage: $0   (stops what scripts/host-setup.sh recorded in $STATE_FILE)"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: $0" >&2
    exit 2
    ;;
esac

nt_require_root
T0="$EPOCHREALTIME"

if [[ ! -e "$STATE_FILE" ]]; then
  nt_log "host-teardown: nothing recorded ($STATE_FILE missing), nothing to stop"
  exit 0
fi

mkdir -p "$NT_STATE_DIR"
exec {LOCK_FD}>"$NT_STATE_DIR/host.lock"
flock -w 300 "$LOCK_FD" || nt_die "another host-setup/teardown holds $NT_STATE_DIR/host.lock"

declare -A S=()
nt_read_env "$STATE_FILE" S
FAILED=0

started() { [[ "${S[NT_${1}_STARTED]:-0}" == 1 ]]; }

stop_or_fail() { nt_stop_pid "$@" || FAILED=1; }

# ----------------------------------------------------------------- libvirtd
if started LIBVIRTD && [[ -n "${S[NT_LIBVIRTD_PID]:-}" ]]; then
  stop_or_fail "${S[NT_LIBVIRTD_PID]}" libvirtd libvirtd 5
  tini_pid="${S[NT_LIBVIRTD_TINI_PID]:-}"
  if [[ -n "$tini_pid" ]]; then
    # tini -s exits as soon as its child does; give it a moment, then insist.
    if nt_pid_is "$tini_pid" tini && ! nt_wait_for 2 nt_pid_gone "$tini_pid"; then
      stop_or_fail "$tini_pid" tini "libvirtd's tini" 3
    else
      nt_log "libvirtd's tini: pid $tini_pid gone"
    fi
  fi
else
  nt_log "libvirtd: not started by host-setup (pid ${S[NT_LIBVIRTD_PID]:-none}), leaving it"
fi

# ----------------------------------------------------------------- virtlogd
if started VIRTLOGD && [[ -n "${S[NT_VIRTLOGD_PID]:-}" ]]; then
  stop_or_fail "${S[NT_VIRTLOGD_PID]}" virtlogd virtlogd 5
else
  nt_log "virtlogd: not started by host-setup (pid ${S[NT_VIRTLOGD_PID]:-none}), leaving it"
fi

# ------------------------------------------------------------- Open vSwitch
db_pid="${S[NT_OVSDB_SERVER_PID]:-}"
vs_pid="${S[NT_OVS_VSWITCHD_PID]:-}"
pidfile_names() { [[ "$(nt_read_pidfile "$OVS_RUNDIR/$1.pid")" == "$2" ]]; }

if started OVSDB_SERVER && started OVS_VSWITCHD &&
  nt_pid_is "$db_pid" ovsdb-server && pidfile_names ovsdb-server "$db_pid" &&
  { ! nt_pid_alive "$vs_pid" || pidfile_names ovs-vswitchd "$vs_pid"; }; then
  # Both are ours and the pidfiles still name them: the clean way.
  if "$OVS_CTL" stop {LOCK_FD}>&- </dev/null >>"$NT_LOG_DIR/ovs-ctl.log" 2>&1; then
    nt_log "ovs: ovs-ctl stop done"
  else
    nt_warn "ovs-ctl stop failed (see $NT_LOG_DIR/ovs-ctl.log); stopping by PID"
  fi
fi
# Whatever is still alive of ours (or if ovs-ctl was not used): by PID.
for d in OVS_VSWITCHD:ovs-vswitchd OVSDB_SERVER:ovsdb-server; do
  key="${d%%:*}" name="${d#*:}"
  pid="${S[NT_${key}_PID]:-}"
  if ! started "$key" || [[ -z "$pid" ]]; then
    nt_log "$name: not started by host-setup (pid ${pid:-none}), leaving it"
    continue
  fi
  if nt_pid_alive "$pid"; then
    stop_or_fail "$pid" "$name" "$name" 5
  else
    nt_log "$name: pid $pid gone"
  fi
  # The --monitor parent exits with its child on SIGTERM; make sure.
  mon="${S[NT_${key}_MONITOR_PID]:-}"
  if [[ -n "$mon" ]] && nt_pid_alive "$mon" && ! nt_wait_for 2 nt_pid_gone "$mon"; then
    mcomm="$(nt_pid_comm "$mon")"
    case "$mcomm" in
      monitor | "$name") stop_or_fail "$mon" "$mcomm" "$name monitor" 3 ;;
      *) nt_warn "$name monitor: pid $mon is now '$mcomm'; leaving it alone" ;;
    esac
  fi
done

if ((FAILED)); then
  nt_die "some recorded daemons survived; keeping $STATE_FILE"
fi
rm -f "$STATE_FILE"
nt_log "host-teardown: done in $(nt_elapsed "$T0")s"
