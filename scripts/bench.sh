#!/usr/bin/env bash
# Builds release binaries and runs oms-bench against dedicated, freshly
# created databases; the report is spliced into BENCHMARKS.md.
#
#   BENCH_SECONDS=10 BENCH_CONCURRENCY=64   the reserve scenarios
#   BENCH_BURST_ORDERS=1000 BENCH_OUTAGE_SECS=120 BENCH_LATENCY_SAMPLES=40
#                                           the channel-sync scenarios
#   BENCH_BASELINE_REF=<git ref>            also measure that release's
#                                           oms-api on the hot SKU (built
#                                           in .run/bench-baseline)
source "$(dirname "$0")/common.sh"
ensure_cargo
"$ROOT/scripts/ensure-postgres.sh"
"$ROOT/scripts/ensure-temporal.sh"
command -v pgbench >/dev/null || apt_install postgresql-contrib
cd "$ROOT"
log "building release binaries"
cargo build --release -q -p api -p worker -p simulator -p bench
baseline=()
if [ -n "${BENCH_BASELINE_REF:-}" ]; then
  dir="$RUN_DIR/bench-baseline"
  log "building oms-api at $BENCH_BASELINE_REF for comparison"
  rm -rf "$dir" && git worktree prune
  git worktree add -q --detach "$dir" "$BENCH_BASELINE_REF"
  (cd "$dir" && CARGO_TARGET_DIR="$RUN_DIR/bench-baseline-target" cargo build --release -q -p api)
  baseline=(--baseline-api-bin "$RUN_DIR/bench-baseline-target/release/oms-api")
fi
db="postgres://postgres@${OMS_PG_HOST}:${OMS_PG_PORT}"
for name in oms_bench oms_bench_channel; do
  psql "$db/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"
  psql "$db/postgres" -qc "CREATE DATABASE $name"
  DATABASE_URL="$db/$name" target/release/oms-api migrate >/dev/null
done
target/release/oms-bench --api-bin target/release/oms-api --database-url "$db/oms_bench" \
  --concurrency "${BENCH_CONCURRENCY:-64}" --seconds "${BENCH_SECONDS:-10}" --port "${BENCH_PORT:-18080}" \
  "${baseline[@]}" \
  --worker-bin target/release/oms-worker --simulator-bin target/release/oms-simulator \
  --temporal-cli "$TEMPORAL_BIN" --channel-database-url "$db/oms_bench_channel" \
  --burst-orders "${BENCH_BURST_ORDERS:-1000}" --latency-samples "${BENCH_LATENCY_SAMPLES:-40}" \
  --outage-secs "${BENCH_OUTAGE_SECS:-120}" \
  --out BENCHMARKS.md
