#!/usr/bin/env bash
# The whole suite: formatting, clippy, then every crate's tests against a real
# Postgres and a private Temporal dev server.
source "$(dirname "$0")/common.sh"
ensure_cargo
"$ROOT/scripts/ensure-postgres.sh"
# The saga tests start a private Temporal dev server from this CLI.
"$ROOT/scripts/ensure-temporal.sh"
# #[sqlx::test] creates one fresh database per test on this server.
export DATABASE_URL="${OMS_TEST_DATABASE_URL:-postgres://postgres@${OMS_PG_HOST}:${OMS_PG_PORT}/postgres}"
cd "$ROOT"
log "docker-compose.yml"
# No Docker engine is needed to check the file; use whichever client exists,
# installing Debian's docker-compose where none does (best effort).
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  ( apt_install docker-compose ) || log "could not install docker-compose"
fi
if docker compose version >/dev/null 2>&1; then docker compose config -q
elif command -v docker-compose >/dev/null; then docker-compose config -q
elif python3 -c 'import yaml; yaml.safe_load(open("docker-compose.yml"))' 2>/dev/null; then
  log "no compose client: checked the YAML only (install docker-compose for a full check)"
else
  log "no compose client and no PyYAML: compose file not validated here"
fi
# Prometheus' configuration and alert rules must at least parse.
if python3 -c 'import yaml' 2>/dev/null; then
  python3 -c 'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' \
    config/prometheus.yml config/alerts.yml
fi
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
log "cargo build --bins"
# The crash test runs the real oms-worker binary as a separate process.
cargo build --workspace --bins
export OMS_WORKER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/oms-worker"
log "cargo test"
cargo test --workspace --no-fail-fast "$@"
