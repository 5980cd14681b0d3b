#!/bin/sh
# Temporal's schema on PostgreSQL (run by the temporal-schema job in temporalio/admin-tools).
# Every step is idempotent: an existing database is kept, setup-schema -v 0.0 only creates the
# version tables, update-schema applies only the versions not applied yet (a server upgrade).
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
PORT=${DB_PORT:-5432}
SCHEMA=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${PORT}"
attempt=1
until nc -z -w 5 "$POSTGRES_SEEDS" "$PORT"; do
  [ "$attempt" -ge 30 ] && { echo "PostgreSQL did not answer" >&2; exit 1; }
  attempt=$((attempt + 1))
  sleep 2
done

for db in temporal temporal_visibility; do
  case $db in
    temporal) versions=$SCHEMA/temporal/versioned ;;
    *) versions=$SCHEMA/visibility/versioned ;;
  esac
  echo "schema of database ${db}"
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" --db "$db" create
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" --db "$db" update-schema -d "$versions"
done
echo "Temporal schema ready"
