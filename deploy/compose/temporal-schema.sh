#!/bin/sh
# Creates Temporal's two databases on PostgreSQL and brings their schemas to the version the
# admin-tools image ships. Safe to run on every start: `create` leaves an existing database
# alone, `setup-schema -v 0.0` leaves a newer schema alone, and `update-schema` applies only
# what is missing. Run by the temporal-schema job (temporalio/admin-tools) before the server.
set -eu
: "${POSTGRES_SEEDS:?set POSTGRES_SEEDS (the PostgreSQL host)}"
: "${POSTGRES_USER:?set POSTGRES_USER}"
: "${SQL_PASSWORD:?set SQL_PASSWORD (read by temporal-sql-tool)}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
    db="${pair%%:*}"
    dir="${pair#*:}"
    echo "temporal-schema: $db"
    sql --db "$db" create
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$schemas/$dir/versioned"
done
echo "temporal-schema: done"
