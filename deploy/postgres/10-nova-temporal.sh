#!/usr/bin/env bash
# PostgreSQL first-start script (the postgres image runs /docker-entrypoint-initdb.d/*
# once, when the data directory is empty). One role per user of the server, each
# owning only its databases:
#   temporal: temporal, temporal_visibility (schemas: deploy/temporal/setup.sh schema)
#   nova:     nova_temporal (the control plane's instance store; it migrates itself)
# Passwords come from the environment (docker-compose.yml); none is stored here.
# Changing a password later: ALTER ROLE ... PASSWORD, then update the stack's env.
set -euo pipefail

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is required}"
: "${NOVA_DB_PASSWORD:?NOVA_DB_PASSWORD is required}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" -v nova_password="$NOVA_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE nova LOGIN PASSWORD :'nova_password';
CREATE DATABASE nova_temporal OWNER nova;
REVOKE ALL ON DATABASE temporal, temporal_visibility, nova_temporal FROM PUBLIC;
SQL
