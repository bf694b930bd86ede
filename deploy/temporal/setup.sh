#!/bin/sh
# One-shot Temporal set-up jobs for docker-compose.yml, run in the
# temporalio/admin-tools image (temporal-sql-tool and the temporal CLI).
# Both are idempotent: they run on every `docker compose up`.
#
#   setup.sh schema     create/upgrade the PostgreSQL schemas (before the server starts)
#   setup.sh namespace  create the namespace and our search attributes (after it is up)
#
# schema:    SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool),
#            SCHEMA_DIR (default /etc/temporal/schema/postgresql/v12)
# namespace: TEMPORAL_ADDRESS, NAMESPACE (default), NAMESPACE_RETENTION (30d)
set -eu

# The workflow's search attributes (src/workflows/definitions.ts, all Keyword).
# test/integration/deploy.test.ts fails if this list and the code drift apart.
SEARCH_ATTRIBUTES="InstanceUuid ComputeHost PowerOnStep"

say() { printf 'temporal-setup: %s\n' "$*"; }

# retry N CMD...: run CMD until it succeeds, at most N times, 2 s apart.
retry() {
  n="$1" i=1
  shift
  until "$@"; do
    [ "$i" -lt "$n" ] || return 1
    i=$((i + 1))
    sleep 2
  done
}

setup_schema() {
  : "${SQL_HOST:?SQL_HOST is required}"
  : "${SQL_USER:?SQL_USER is required}"
  : "${SQL_PASSWORD:?SQL_PASSWORD is required}"
  schema_dir="${SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
  # The databases exist already (deploy/postgres/10-nova-temporal.sh). setup-schema
  # -v 0.0 only adds the version tables when missing; update-schema applies the
  # versions newer than the recorded one, so a re-run or an upgrade is the same step.
  for pair in temporal:temporal visibility:temporal_visibility; do
    dir="${pair%%:*}" db="${pair#*:}"
    say "schema $db: setup"
    temporal-sql-tool --plugin postgres12 --db "$db" setup-schema -v 0.0
    say "schema $db: update from $schema_dir/$dir/versioned"
    temporal-sql-tool --plugin postgres12 --db "$db" update-schema -d "$schema_dir/$dir/versioned"
  done
  say "schemas up to date"
}

setup_namespace() {
  address="${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is required}"
  ns="${NAMESPACE:-default}"
  retention="${NAMESPACE_RETENTION:-30d}"
  serving() { temporal operator cluster health --address "$address" 2>/dev/null | grep -q SERVING; }
  retry 60 serving || { say "server at $address not SERVING after 120 s"; exit 1; }
  if temporal operator namespace describe --address "$address" --namespace "$ns" >/dev/null 2>&1; then
    say "namespace $ns: exists"
  else
    temporal operator namespace create --address "$address" --namespace "$ns" --retention "$retention"
    say "namespace $ns: created (retention $retention)"
  fi
  # A new namespace reaches every frontend's cache within seconds: until then
  # calls on it answer "not found".
  list() { existing="$(temporal operator search-attribute list --address "$address" --namespace "$ns" -o json)"; }
  retry 30 list || { say "cannot list the search attributes of $ns"; exit 1; }
  for name in $SEARCH_ATTRIBUTES; do
    case "$existing" in
      *"\"$name\""*) say "search attribute $name: exists" ;;
      *)
        temporal operator search-attribute create --address "$address" --namespace "$ns" \
          --name "$name" --type Keyword
        say "search attribute $name: created (Keyword)"
        ;;
    esac
  done
}

case "${1:-}" in
  schema) setup_schema ;;
  namespace) setup_namespace ;;
  *)
    echo "usage: $0 schema|namespace" >&2
    exit 2
    ;;
esac
