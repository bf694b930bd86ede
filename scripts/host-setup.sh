#!/usr/bin/env bash
# Prepare this host (Debian 12, root, no systemd) for nova-temporal:
#   * Debian packages (only the missing ones, apt-get update at most once)
#   * libvirt: libvirt-qemu user, /etc/libvirt/qemu.conf, virtlogd, libvirtd
#     (libvirtd runs in the foreground under `tini -s` so that its children
#     are reaped even though PID 1 is not an init)
#   * Open vSwitch in userspace (ovs-ctl) and the integration bridge
#     ($NT_INTEGRATION_BRIDGE, default br-int) with datapath_type=netdev
#
# Idempotent: a second run finds everything up, says "already running" and
# changes nothing. What THIS script started is recorded (by PID) in
# state/host-started.env so that scripts/host-teardown.sh stops exactly that.
#
# Env: NT_INTEGRATION_BRIDGE (br-int), NT_STATE_DIR (<repo>/state),
#      NT_WAIT_TIMEOUT (30, seconds to wait for each daemon).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly PACKAGES=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils openvswitch-switch nftables libvirt-dev
  pkg-config tini iproute2 ethtool python3-venv
)
readonly QEMU_CONF=/etc/libvirt/qemu.conf
readonly QEMU_CONF_MARKER='# nova-temporal: managed by scripts/host-setup.sh'
readonly LIBVIRTD_PIDFILE=/run/libvirtd.pid
readonly VIRTLOGD_PIDFILE=/run/virtlogd.pid
readonly OVS_RUNDIR=/var/run/openvswitch
readonly OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
readonly VIRSH_URI=qemu:///system
readonly STATE_FILE="$NT_STATE_DIR/host-started.env"
readonly WAIT_TIMEOUT="${NT_WAIT_TIMEOUT:-30}"
BRIDGE="${NT_INTEGRATION_BRIDGE:-br-int}"

usage() {
  cat <<EOF
usage: $0
Installs missing packages, starts virtlogd, libvirtd and Open vSwitch if they
are not running, creates the OVS bridge '$BRIDGE' (netdev datapath).
Records what it started in $STATE_FILE.
EOF
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

nt_require_root
[[ "$BRIDGE" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || nt_die "bad bridge name '$BRIDGE'"
[[ "$WAIT_TIMEOUT" =~ ^[0-9]+$ ]] || nt_die "NT_WAIT_TIMEOUT must be whole seconds"
export DEBIAN_FRONTEND=noninteractive

T0="$EPOCHREALTIME"
mkdir -p "$NT_LOG_DIR"

# One host-setup/teardown at a time. Every daemon we start gets this fd
# closed ({LOCK_FD}>&-) so that it does not hold the lock for its lifetime.
exec {LOCK_FD}>"$NT_STATE_DIR/host.lock"
flock -w 300 "$LOCK_FD" || nt_die "another host-setup/teardown holds $NT_STATE_DIR/host.lock"

declare -A PREV=()
nt_read_env "$STATE_FILE" PREV

# started_flag NAME PID STARTED_NOW: 1 if we started it now, or a previous run
# of this script started this very PID (so teardown still owns it).
started_flag() {
  local name="$1" pid="$2" now="$3"
  if [[ "$now" == 1 ]]; then
    echo 1
  elif [[ -n "$pid" && "${PREV[NT_${name}_STARTED]:-0}" == 1 && "${PREV[NT_${name}_PID]:-}" == "$pid" ]]; then
    echo 1
  else
    echo 0
  fi
}

show_log_tail() {
  local file="$1"
  if [[ -s "$file" ]]; then
    echo "--- last lines of $file ---" >&2
    tail -n 20 "$file" >&2 || true
  fi
}

# ---------------------------------------------------------------- packages
install_packages() {
  local pkg status missing=()
  for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    nt_log "packages: all ${#PACKAGES[@]} installed"
    return 0
  fi
  nt_log "packages: installing ${missing[*]}"
  local apt_opts=(-q -y -o DPkg::Lock::Timeout=600)
  apt-get "${apt_opts[@]}" update >>"$NT_LOG_DIR/apt.log" 2>&1 ||
    { show_log_tail "$NT_LOG_DIR/apt.log"; nt_die "apt-get update failed"; }
  apt-get "${apt_opts[@]}" install "${missing[@]}" >>"$NT_LOG_DIR/apt.log" 2>&1 ||
    { show_log_tail "$NT_LOG_DIR/apt.log"; nt_die "apt-get install failed"; }
  nt_log "packages: installed ${missing[*]}"
}

# ----------------------------------------------------------------- libvirt
# Settings of a libvirt .conf on stdin, comments/blank lines/spaces dropped.
conf_settings() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d'; }

QEMU_CONF_CHANGED=0
configure_libvirt() {
  if ! id libvirt-qemu >/dev/null 2>&1; then
    useradd --system --no-create-home libvirt-qemu
    nt_log "libvirt: created user libvirt-qemu"
  fi
  mkdir -p /etc/libvirt /var/log/libvirt/qemu
  if [[ -f "$QEMU_CONF" ]] && grep -qxF "$QEMU_CONF_MARKER" "$QEMU_CONF"; then
    return 0
  fi
  local tmp old_settings="" new_settings note=""
  if [[ -f "$QEMU_CONF" ]]; then
    note=" (previous one kept as $QEMU_CONF.nt-orig)"
    [[ -e "$QEMU_CONF.nt-orig" ]] || cp -p "$QEMU_CONF" "$QEMU_CONF.nt-orig"
    old_settings="$(conf_settings <"$QEMU_CONF")"
  fi
  tmp="$(mktemp "$QEMU_CONF.XXXXXX")"
  cat >"$tmp" <<EOF
$QEMU_CONF_MARKER
# Container/VM host without systemd: run QEMU as root, no relabelling, no
# cgroups, no mount namespaces, no security driver.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
EOF
  chmod 0644 "$tmp"
  new_settings="$(conf_settings <"$tmp")"
  mv -f "$tmp" "$QEMU_CONF"
  if [[ "$old_settings" == "$new_settings" ]]; then
    nt_log "libvirt: $QEMU_CONF already had these settings; added our marker"
  else
    QEMU_CONF_CHANGED=1
    nt_log "libvirt: wrote $QEMU_CONF$note"
  fi
}

VIRTLOGD_PID="" VIRTLOGD_NOW=0
start_virtlogd() {
  local pid
  pid="$(nt_read_pidfile "$VIRTLOGD_PIDFILE")"
  if nt_pid_is "$pid" virtlogd; then
    VIRTLOGD_PID="$pid"
    nt_log "virtlogd: already running pid $pid"
    return 0
  fi
  virtlogd -d {LOCK_FD}>&- </dev/null >>"$NT_LOG_DIR/virtlogd.log" 2>&1 ||
    { show_log_tail "$NT_LOG_DIR/virtlogd.log"; nt_die "virtlogd -d failed"; }
  _virtlogd_up() { VIRTLOGD_PID="$(nt_read_pidfile "$VIRTLOGD_PIDFILE")"; nt_pid_is "$VIRTLOGD_PID" virtlogd; }
  nt_wait_for "$WAIT_TIMEOUT" _virtlogd_up || nt_die "virtlogd did not write a live pid to $VIRTLOGD_PIDFILE"
  VIRTLOGD_NOW=1
  nt_log "virtlogd: started pid $VIRTLOGD_PID"
}

virsh_answers() { virsh -c "$VIRSH_URI" version >/dev/null 2>&1; }

LIBVIRTD_PID="" LIBVIRTD_NOW=0 LIBVIRTD_TINI_PID=""
start_libvirtd() {
  local pid log="$NT_LOG_DIR/libvirtd.log" tini_pid ppid
  pid="$(nt_read_pidfile "$LIBVIRTD_PIDFILE")"
  if nt_pid_is "$pid" libvirtd; then
    LIBVIRTD_PID="$pid"
    if [[ "$(started_flag LIBVIRTD "$pid" 0)" == 1 ]]; then
      LIBVIRTD_TINI_PID="${PREV[NT_LIBVIRTD_TINI_PID]:-}"
    fi
    nt_log "libvirtd: already running pid $pid"
    if ((QEMU_CONF_CHANGED)); then
      nt_warn "libvirtd was already running: restart it to apply the new $QEMU_CONF"
    fi
    nt_wait_for "$WAIT_TIMEOUT" virsh_answers || nt_die "libvirtd pid $pid does not answer on $VIRSH_URI"
    return 0
  fi
  {
    printf '=== %s host-setup: starting libvirtd under tini\n' "$(date -Is)"
  } >>"$log"
  # Background job of a non-interactive shell: not a group leader, so setsid
  # does not fork and $! is tini's PID.
  setsid tini -s -- libvirtd {LOCK_FD}>&- </dev/null >>"$log" 2>&1 &
  tini_pid=$!
  _libvirtd_up() {
    nt_pid_alive "$tini_pid" || return 0 # died: stop waiting, checked below
    LIBVIRTD_PID="$(nt_read_pidfile "$LIBVIRTD_PIDFILE")"
    nt_pid_is "$LIBVIRTD_PID" libvirtd && virsh_answers
  }
  nt_wait_for "$WAIT_TIMEOUT" _libvirtd_up || true
  if ! nt_pid_alive "$tini_pid" || ! nt_pid_is "$LIBVIRTD_PID" libvirtd || ! virsh_answers; then
    show_log_tail "$log"
    nt_die "libvirtd did not come up (tini pid $tini_pid)"
  fi
  # Prefer what the kernel says: libvirtd's parent should be our tini.
  ppid="$(nt_pid_ppid "$LIBVIRTD_PID")"
  if [[ -n "$ppid" && "$(nt_pid_comm "$ppid")" == tini ]]; then
    LIBVIRTD_TINI_PID="$ppid"
  else
    LIBVIRTD_TINI_PID="$tini_pid"
  fi
  LIBVIRTD_NOW=1
  nt_log "libvirtd: started pid $LIBVIRTD_PID (tini pid $LIBVIRTD_TINI_PID)"
}

# ------------------------------------------------------------ Open vSwitch
ovs_pid() { nt_read_pidfile "$OVS_RUNDIR/$1.pid"; }
ovs_running() {
  local pid
  pid="$(ovs_pid "$1")"
  nt_pid_is "$pid" "$1"
}
# The --monitor parent of an OVS daemon, if any (not PID 1, not a stranger).
ovs_monitor_pid() {
  local pid="$1" ppid comm
  [[ -n "$pid" ]] || return 0
  ppid="$(nt_pid_ppid "$pid")"
  [[ -n "$ppid" && "$ppid" != 1 ]] || return 0
  comm="$(nt_pid_comm "$ppid")"
  case "$comm" in
    monitor | ovsdb-server | ovs-vswitchd) echo "$ppid" ;;
  esac
}

OVSDB_PID="" OVSDB_NOW=0 VSWITCHD_PID="" VSWITCHD_NOW=0
start_ovs() {
  local db_before=0 vs_before=0 log="$NT_LOG_DIR/ovs-ctl.log"
  ovs_running ovsdb-server && db_before=1
  ovs_running ovs-vswitchd && vs_before=1
  if ((db_before && vs_before)) && ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    OVSDB_PID="$(ovs_pid ovsdb-server)"
    VSWITCHD_PID="$(ovs_pid ovs-vswitchd)"
    nt_log "ovsdb-server: already running pid $OVSDB_PID"
    nt_log "ovs-vswitchd: already running pid $VSWITCHD_PID"
    return 0
  fi
  printf '=== %s host-setup: ovs-ctl start\n' "$(date -Is)" >>"$log"
  "$OVS_CTL" start --system-id=random {LOCK_FD}>&- </dev/null >>"$log" 2>&1 ||
    { show_log_tail "$log"; nt_die "ovs-ctl start failed"; }
  nt_wait_for "$WAIT_TIMEOUT" ovs-vsctl --timeout=5 show >/dev/null 2>&1 ||
    nt_die "ovsdb-server does not answer after ovs-ctl start"
  ovs_running ovsdb-server || nt_die "ovsdb-server is not running after ovs-ctl start"
  ovs_running ovs-vswitchd || { show_log_tail /var/log/openvswitch/ovs-vswitchd.log; nt_die "ovs-vswitchd is not running after ovs-ctl start"; }
  OVSDB_PID="$(ovs_pid ovsdb-server)"
  VSWITCHD_PID="$(ovs_pid ovs-vswitchd)"
  if ((db_before)); then
    nt_log "ovsdb-server: already running pid $OVSDB_PID"
  else
    OVSDB_NOW=1
    nt_log "ovsdb-server: started pid $OVSDB_PID"
  fi
  if ((vs_before)); then
    nt_log "ovs-vswitchd: already running pid $VSWITCHD_PID"
  else
    VSWITCHD_NOW=1
    nt_log "ovs-vswitchd: started pid $VSWITCHD_PID"
  fi
}

link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

setup_bridge() {
  local dtype err flags
  if ovs-vsctl --timeout=5 br-exists "$BRIDGE"; then
    dtype="$(ovs-vsctl --timeout=5 get Bridge "$BRIDGE" datapath_type)"
    dtype="${dtype//\"/}"
    if [[ "$dtype" == netdev ]]; then
      nt_log "bridge $BRIDGE: already present (datapath_type=netdev)"
    else
      ovs-vsctl --timeout=5 set Bridge "$BRIDGE" datapath_type=netdev
      nt_log "bridge $BRIDGE: datapath_type '${dtype}' -> netdev"
    fi
  else
    ovs-vsctl --timeout=5 --may-exist add-br "$BRIDGE" -- set Bridge "$BRIDGE" datapath_type=netdev
    nt_log "bridge $BRIDGE: created (datapath_type=netdev)"
  fi
  err="$(ovs-vsctl --timeout=5 get Interface "$BRIDGE" error)"
  if [[ -n "$err" && "$err" != "[]" ]]; then
    show_log_tail /var/log/openvswitch/ovs-vswitchd.log
    nt_die "bridge $BRIDGE: interface error: $err"
  fi
  nt_wait_for "$WAIT_TIMEOUT" link_exists "$BRIDGE" || nt_die "bridge $BRIDGE: no kernel link appeared"
  flags="$(ip -o link show dev "$BRIDGE")"
  if [[ "$flags" =~ \<([^>]*)\> && ",${BASH_REMATCH[1]}," == *,UP,* ]]; then
    nt_log "bridge $BRIDGE: link already up"
  else
    ip link set dev "$BRIDGE" up
    nt_log "bridge $BRIDGE: link set up"
  fi
}

# -------------------------------------------------------------- state file
record_state() {
  local content libvirtd_started virtlogd_started db_started vs_started ovs_started
  libvirtd_started="$(started_flag LIBVIRTD "$LIBVIRTD_PID" "$LIBVIRTD_NOW")"
  virtlogd_started="$(started_flag VIRTLOGD "$VIRTLOGD_PID" "$VIRTLOGD_NOW")"
  db_started="$(started_flag OVSDB_SERVER "$OVSDB_PID" "$OVSDB_NOW")"
  vs_started="$(started_flag OVS_VSWITCHD "$VSWITCHD_PID" "$VSWITCHD_NOW")"
  ovs_started=0
  if [[ "$db_started" == 1 || "$vs_started" == 1 ]]; then ovs_started=1; fi
  [[ "$libvirtd_started" == 1 ]] || LIBVIRTD_TINI_PID=""
  content="# Written by scripts/host-setup.sh, read by scripts/host-teardown.sh.
# *_STARTED=1: started by host-setup (teardown stops it by PID); 0: found running.
NT_LIBVIRTD_PID=$LIBVIRTD_PID
NT_LIBVIRTD_STARTED=$libvirtd_started
NT_LIBVIRTD_TINI_PID=$LIBVIRTD_TINI_PID
NT_VIRTLOGD_PID=$VIRTLOGD_PID
NT_VIRTLOGD_STARTED=$virtlogd_started
NT_OVSDB_SERVER_PID=$OVSDB_PID
NT_OVSDB_SERVER_MONITOR_PID=$(ovs_monitor_pid "$OVSDB_PID")
NT_OVSDB_SERVER_STARTED=$db_started
NT_OVS_VSWITCHD_PID=$VSWITCHD_PID
NT_OVS_VSWITCHD_MONITOR_PID=$(ovs_monitor_pid "$VSWITCHD_PID")
NT_OVS_VSWITCHD_STARTED=$vs_started
NT_OVS_STARTED=$ovs_started
NT_INTEGRATION_BRIDGE=$BRIDGE"
  if nt_write_file_if_changed "$STATE_FILE" "$content"; then
    nt_log "state: wrote $STATE_FILE"
  else
    nt_log "state: $STATE_FILE unchanged"
  fi
}

install_packages
configure_libvirt
start_virtlogd
start_libvirtd
start_ovs
setup_bridge
record_state
nt_log "host-setup: done in $(nt_elapsed "$T0")s"
