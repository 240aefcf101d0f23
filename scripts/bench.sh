#!/usr/bin/env bash
# Builds release binaries and runs oms-bench against a dedicated, freshly
# created database; the report is spliced into BENCHMARKS.md.
source "$(dirname "$0")/common.sh"
ensure_cargo
"$ROOT/scripts/ensure-postgres.sh"
command -v pgbench >/dev/null || apt_install postgresql-contrib
cd "$ROOT"
log "building release binaries"
cargo build --release -q -p api -p bench
db="postgres://postgres@${OMS_PG_HOST}:${OMS_PG_PORT}"
psql "$db/postgres" -qc "DROP DATABASE IF EXISTS oms_bench WITH (FORCE)"
psql "$db/postgres" -qc "CREATE DATABASE oms_bench"
DATABASE_URL="$db/oms_bench" target/release/oms-api migrate >/dev/null
target/release/oms-bench --api-bin target/release/oms-api --database-url "$db/oms_bench" \
  --concurrency "${BENCH_CONCURRENCY:-64}" --seconds "${BENCH_SECONDS:-10}" --port "${BENCH_PORT:-18080}" \
  --out BENCHMARKS.md
