#!/usr/bin/env bash
# Temporal's schema on PostgreSQL, run once before the server starts (compose service `temporal-schema`, image
# temporalio/admin-tools): create the two databases when missing, then set up and update both schemas to the
# versions shipped with the tools. Idempotent: a database at the latest version is left as it is.
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD from the environment.
set -euo pipefail

: "${SQL_PLUGIN:=postgres12}"
: "${SQL_PORT:=5432}"
: "${TEMPORAL_DB:=temporal}"
: "${VISIBILITY_DB:=temporal_visibility}"
: "${SCHEMA_ROOT:=/etc/temporal/schema/postgresql/v12}"
export SQL_PLUGIN SQL_PORT

for _ in $(seq 1 60); do
  pg_isready -q -h "${SQL_HOST}" -p "${SQL_PORT}" -U "${SQL_USER}" && break
  echo "waiting for PostgreSQL at ${SQL_HOST}:${SQL_PORT}"
  sleep 2
done

exists() {
  PGPASSWORD="${SQL_PASSWORD}" psql -h "${SQL_HOST}" -p "${SQL_PORT}" -U "${SQL_USER}" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1
}

setup() { # database, schema folder
  if exists "$1"; then
    echo "database $1 exists"
  else
    temporal-sql-tool --db "$1" create
  fi
  temporal-sql-tool --db "$1" setup-schema -v 0.0
  temporal-sql-tool --db "$1" update-schema -d "${SCHEMA_ROOT}/$2/versioned"
}

setup "${TEMPORAL_DB}" temporal
setup "${VISIBILITY_DB}" visibility
echo "temporal schema ready: ${TEMPORAL_DB}, ${VISIBILITY_DB}"
