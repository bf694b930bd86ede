#!/usr/bin/env bash
# The local nova-temporal stack (DESIGN.md section 7a).
#
#   scripts/stack.sh up     start what is not running (host daemons, Temporal dev
#                           server, Neutron dev server, control plane, compute
#                           worker), register the demo image, write state/stack.env
#   scripts/stack.sh down   remove the guests, taps, OVS ports and rules of every
#                           instance in the local store, then stop exactly the
#                           processes `up` started, by PID
#
# A part whose PID is gone is started again with the configuration the stack
# first started with (kept in state/stack.config).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly STACK_ENV="$NT_STATE_DIR/stack.env"
readonly STACK_CONFIG="$NT_STATE_DIR/stack.config"
readonly DIST="$NT_REPO_ROOT/dist"
readonly OVERRIDES=(NT_HOST NT_API_LISTEN NT_API_TOKENS NT_NEUTRON_URL NT_NEUTRON_TOKEN NT_TEMPORAL_ADDRESS
  NT_INSTANCES_PATH NT_VIF_PLUGGING_TIMEOUT NT_VIF_PLUGGING_IS_FATAL NT_WAIT_FOR_VIF_PLUGGED NT_FIREWALL_DRIVER)

declare -A CONF=()
declare -A PIDS=()

say() { printf 'stack: %s\n' "$*"; }

# The first `up` fixes the configuration; later ones (restarts) reuse it.
load_config() {
  mkdir -p "$NT_STATE_DIR" "$NT_LOG_DIR"
  if [[ -f "$STACK_CONFIG" ]]; then
    nt_read_env "$STACK_CONFIG" CONF
    return
  fi
  local key
  for key in "${OVERRIDES[@]}"; do
    if [[ -n "${!key:-}" ]]; then CONF[$key]="${!key}"; fi
  done
  : "${CONF[NT_HOST]:=$(hostname)}"
  : "${CONF[NT_API_LISTEN]:=127.0.0.1:8774}"
  : "${CONF[NT_API_TOKENS]:=nt-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
  : "${CONF[NT_INSTANCES_PATH]:=$NT_STATE_DIR/instances}"
  CONF[NT_IMAGES_PATH]="$NT_STATE_DIR/images"
  CONF[NT_DATABASE_PATH]="$NT_STATE_DIR/nova-temporal.sqlite"
  CONF[NT_STATE_DIR]="$NT_STATE_DIR"
  if [[ -z "${CONF[NT_NEUTRON_URL]:-}" ]]; then
    CONF[NT_NEUTRON_DEV]=1
    CONF[NT_NEUTRON_URL]="http://127.0.0.1:9696"
    CONF[NT_NEUTRON_TOKEN]="${CONF[NT_API_TOKENS]%%,*}"
  fi
  if [[ -z "${CONF[NT_TEMPORAL_ADDRESS]:-}" ]]; then
    CONF[NT_TEMPORAL_DEV]=1
    CONF[NT_TEMPORAL_ADDRESS]="127.0.0.1:7233"
  fi
  local out="" k
  for k in $(printf '%s\n' "${!CONF[@]}" | sort); do out+="$k=${CONF[$k]}"$'\n'; done
  printf '%s' "$out" >"$STACK_CONFIG"
}

# Environment for our node processes: the saved configuration, nothing else of NT_*.
node_env() {
  local -a envs=()
  local k
  for k in "${!CONF[@]}"; do envs+=("$k=${CONF[$k]}"); done
  printf '%s\n' "${envs[@]}"
}

# start_node NAME SCRIPT [VAR=value...]: starts `node SCRIPT` detached unless PIDS[NAME] is alive.
start_node() {
  local name="$1" script="$2" pid="${PIDS[$1]:-}"
  shift 2
  if nt_pid_is "$pid" node; then
    say "$name: already running pid $pid"
    return
  fi
  local -a envs
  mapfile -t envs < <(node_env)
  env "${envs[@]}" "$@" NT_SERVICE="$name" setsid node "$script" >>"$NT_LOG_DIR/$name.log" 2>&1 </dev/null &
  pid=$!
  PIDS[$name]=$pid
  say "$name: started pid $pid (log state/log/$name.log)"
}

api_ready() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: ${CONF[NT_API_TOKENS]%%,*}" \
    "http://${CONF[NT_API_LISTEN]}/v2.1/servers/00000000-0000-0000-0000-000000000000")" || return 1
  [[ "$code" == 404 ]]
}

neutron_ready() {
  curl -s -o /dev/null -H "X-Auth-Token: ${CONF[NT_NEUTRON_TOKEN]}" "${CONF[NT_NEUTRON_URL]}/v2.0/networks"
}

write_stack_env() {
  local ui_url=""
  [[ -n "${CONF[NT_TEMPORAL_DEV]:-}" ]] && ui_url="http://127.0.0.1:8233"
  local -A host=()
  nt_read_env "$NT_STATE_DIR/host-started.env" host
  {
    printf '# Written by scripts/stack.sh up; read by make down and outside checks.\n'
    printf 'NT_API_URL=http://%s/v2.1\n' "${CONF[NT_API_LISTEN]}"
    printf 'NT_API_TOKEN=%s\n' "${CONF[NT_API_TOKENS]%%,*}"
    printf 'NT_TEMPORAL_ADDRESS=%s\n' "${CONF[NT_TEMPORAL_ADDRESS]}"
    printf 'NT_TEMPORAL_NAMESPACE=default\n'
    printf 'NT_UI_URL=%s\n' "$ui_url"
    printf 'NT_HOST=%s\n' "${CONF[NT_HOST]}"
    printf 'NT_NEUTRON_URL=%s\n' "${CONF[NT_NEUTRON_URL]}"
    printf 'NT_NEUTRON_TOKEN=%s\n' "${CONF[NT_NEUTRON_TOKEN]:-}"
    printf 'NT_INSTANCES_PATH=%s\n' "${CONF[NT_INSTANCES_PATH]}"
    printf 'NT_DEMO_IMAGE_ID=%s\n' "${DEMO_IMAGE_ID:-}"
    printf 'NT_LIBVIRTD_PID=%s\n' "${host[NT_LIBVIRTD_PID]:-}"
    local name
    for name in temporal neutron api compute; do
      [[ -n "${PIDS[$name]:-}" ]] && printf 'NT_%s_PID=%s\n' "${name^^}" "${PIDS[$name]}"
    done
  } >"$STACK_ENV.tmp"
  mv -f "$STACK_ENV.tmp" "$STACK_ENV"
}

read_pids() {
  local -A old=()
  nt_read_env "$STACK_ENV" old
  local name
  for name in temporal neutron api compute; do
    PIDS[$name]="${old[NT_${name^^}_PID]:-}"
  done
  DEMO_IMAGE_ID="${old[NT_DEMO_IMAGE_ID]:-}"
}

register_demo_image() {
  if [[ -n "$DEMO_IMAGE_ID" && -f "${CONF[NT_IMAGES_PATH]}/$DEMO_IMAGE_ID.json" ]]; then return; fi
  DEMO_IMAGE_ID="demo-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  local file="$NT_STATE_DIR/demo-base.qcow2"
  qemu-img create -q -f qcow2 "$file" 64M
  local -a envs
  mapfile -t envs < <(node_env)
  env "${envs[@]}" node "$DIST/src/cli/computectl.js" image-create --id "$DEMO_IMAGE_ID" --name demo --file "$file" >/dev/null
  say "demo image: registered $DEMO_IMAGE_ID"
}

up() {
  local started="$EPOCHREALTIME"
  load_config
  read_pids
  bash "$NT_REPO_ROOT/scripts/host-setup.sh"
  if [[ -n "${CONF[NT_TEMPORAL_DEV]:-}" ]]; then
    PIDS[temporal]="$(bash "$NT_REPO_ROOT/scripts/temporal-server.sh" start)"
  fi
  if [[ -n "${CONF[NT_NEUTRON_DEV]:-}" && -f "$DIST/dev/neutron/main.js" ]]; then
    local neutron_listen="${CONF[NT_NEUTRON_URL]#http://}"
    start_node neutron "$DIST/dev/neutron/main.js" NT_NEUTRON_LISTEN="${neutron_listen%%/*}" \
      NT_API_URL="http://${CONF[NT_API_LISTEN]}/v2.1" NT_API_TOKEN="${CONF[NT_API_TOKENS]%%,*}" \
      NT_NEUTRON_STATE="$NT_STATE_DIR/neutron.json"
    nt_wait_for 20 neutron_ready || nt_die "neutron dev server did not answer; see state/log/neutron.log"
  fi
  start_node api "$DIST/src/control-plane/main.js"
  start_node compute "$DIST/src/worker.js"
  nt_wait_for 60 api_ready || nt_die "control plane did not answer; see state/log/api.log"
  register_demo_image
  write_stack_env
  say "ready in $(nt_elapsed "$started")s: API http://${CONF[NT_API_LISTEN]}/v2.1, Temporal UI http://127.0.0.1:8233"
}

down() {
  if [[ ! -f "$STACK_CONFIG" ]]; then
    say "nothing to stop (no $STACK_CONFIG)"
    bash "$NT_REPO_ROOT/scripts/host-teardown.sh"
    return
  fi
  load_config
  read_pids
  local -a envs
  mapfile -t envs < <(node_env)
  env "${envs[@]}" node "$DIST/src/cli/host-cleanup.js" || nt_warn "host cleanup failed; continuing to stop processes"
  local name
  for name in compute api neutron; do
    [[ -n "${PIDS[$name]:-}" ]] && nt_stop_pid "${PIDS[$name]}" node "$name" 10
  done
  if [[ -n "${CONF[NT_TEMPORAL_DEV]:-}" ]]; then bash "$NT_REPO_ROOT/scripts/temporal-server.sh" stop; fi
  bash "$NT_REPO_ROOT/scripts/host-teardown.sh"
  rm -f "$STACK_ENV" "$STACK_CONFIG"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
