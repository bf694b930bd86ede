#!/usr/bin/env bash
# Print the path of the schemathesis CLI on stdout (messages go to stderr).
#
# It lives in the project venv (<repo>/.venv, the one scripts/temporal-cli.sh
# makes). If the venv or the CLI is missing, the venv is created
# (`python3 -m venv .venv`) and schemathesis is pip-installed into it from PyPI.
# Nothing is fetched from outside PyPI. Exits 1 with a message if that fails.
#
# Used by test/integration/api-fuzz.test.ts, which runs it against the control
# plane's OpenAPI document on loopback only.
#
# Env: NT_VENV_DIR (<repo>/.venv), NT_PYTHON (python3),
#      NT_SCHEMATHESIS_PIP_SPECS (pip requirement specs, space separated;
#      default pins the version this was tested with).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

VENV_DIR="${NT_VENV_DIR:-$NT_REPO_ROOT/.venv}"
PYTHON="${NT_PYTHON:-python3}"
read -r -a PIP_SPECS <<<"${NT_SCHEMATHESIS_PIP_SPECS:-schemathesis==4.32.5}"

usage() {
  cat <<EOF
usage: $0
Prints the path of the schemathesis CLI, installing it into $VENV_DIR from
PyPI if needed.
EOF
}

case "${1:-}" in
  "") ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

fail() {
  printf 'schemathesis: %s\n' "$*" >&2
  exit 1
}

target="$VENV_DIR/bin/schemathesis"
usable() { [[ -f "$1" && -x "$1" ]]; }

if usable "$target"; then
  printf '%s\n' "$target"
  exit 0
fi

# Install into the venv, one installer at a time (shares temporal-cli.sh's lock).
mkdir -p "$NT_STATE_DIR"
exec {LOCK_FD}>"$NT_STATE_DIR/venv.lock"
flock -w 600 "$LOCK_FD" || fail "timed out waiting for $NT_STATE_DIR/venv.lock"

if ! usable "$target"; then
  T0="$EPOCHREALTIME"
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 ||
      fail "no '$PYTHON' to create $VENV_DIR; install python3 and python3-venv (scripts/host-setup.sh does)"
    printf 'schemathesis: creating %s\n' "$VENV_DIR" >&2
    "$PYTHON" -m venv "$VENV_DIR" >&2 ||
      fail "'$PYTHON -m venv $VENV_DIR' failed (is python3-venv installed?)"
  fi
  printf 'schemathesis: pip install %s into %s\n' "${PIP_SPECS[*]}" "$VENV_DIR" >&2
  "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${PIP_SPECS[@]}" >&2 ||
    fail "pip install ${PIP_SPECS[*]} failed; no schemathesis available (fix PyPI access)"
  usable "$target" ||
    fail "pip installed ${PIP_SPECS[*]} but $target is missing"
  printf 'schemathesis: installed in %ss\n' "$(nt_elapsed "$T0")" >&2
fi
printf '%s\n' "$target"
