#!/usr/bin/env bash
# Print the path of a headless-capable Chromium on stdout (messages go to stderr).
#
#   scripts/chromium.sh     -> /usr/bin/chromium, installing Debian's `chromium`
#                              package first if it is missing
#
# Only Debian's package is used: no browser build is ever downloaded from
# elsewhere (playwright-core drives it with executablePath). Installing needs
# root; `apt-get update` runs only when the first install attempt fails.
#
# Env: NT_CHROMIUM (a Chromium binary to use instead; must be executable).
set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

readonly DEBIAN_PACKAGE=chromium
readonly DEBIAN_BINARY=/usr/bin/chromium

usage() {
  cat <<EOF
usage: $0
Prints the path of Chromium ($DEBIAN_BINARY), installing Debian's
'$DEBIAN_PACKAGE' package if it is missing. NT_CHROMIUM overrides the path.
EOF
}

case "${1:-}" in
  "") ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

say() { printf 'chromium: %s\n' "$*" >&2; }

usable() { [[ -f "$1" && -x "$1" ]]; }

if [[ -n "${NT_CHROMIUM:-}" ]]; then
  usable "$NT_CHROMIUM" || nt_die "NT_CHROMIUM=$NT_CHROMIUM is not an executable file"
  printf '%s\n' "$NT_CHROMIUM"
  exit 0
fi

if ! usable "$DEBIAN_BINARY"; then
  nt_require_root
  T0="$EPOCHREALTIME"
  apt=(apt-get -y -q --no-install-recommends install "$DEBIAN_PACKAGE")
  say "no $DEBIAN_BINARY; installing Debian's $DEBIAN_PACKAGE"
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2
  fi
  usable "$DEBIAN_BINARY" || nt_die "installed $DEBIAN_PACKAGE but $DEBIAN_BINARY is not there"
  say "installed in $(nt_elapsed "$T0") s"
fi

printf '%s\n' "$DEBIAN_BINARY"
