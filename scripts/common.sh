# Shared by the scripts: defaults, paths, and small helpers. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.run"       # pids, logs, local data (git-ignored)
TOOLS_DIR="$ROOT/.tools"   # project-local tools such as the Temporal CLI (git-ignored)
mkdir -p "$RUN_DIR"

export OMS_PG_HOST="${OMS_PG_HOST:-127.0.0.1}"
export OMS_PG_PORT="${OMS_PG_PORT:-5432}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@${OMS_PG_HOST}:${OMS_PG_PORT}/oms}"
export OMS_API_ADDR="${OMS_API_ADDR:-127.0.0.1:8080}"
# The local stack: Temporal dev server (UI on 8233), simulator for Shopify and the WMS.
export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-http://127.0.0.1:${TEMPORAL_PORT}}"
export OMS_SIMULATOR_ADDR="${OMS_SIMULATOR_ADDR:-127.0.0.1:8090}"
export OMS_WORKER_METRICS_ADDR="${OMS_WORKER_METRICS_ADDR:-127.0.0.1:9464}"
export OMS_WMS_URL="${OMS_WMS_URL:-http://${OMS_SIMULATOR_ADDR}/wms/2026-07}"
# The stores file and the WMS token below are this repository's public
# development values; the binaries refuse them unless this is set.
export OMS_ALLOW_DEV_SECRETS="${OMS_ALLOW_DEV_SECRETS:-true}"
# The warehouse's webhooks: the simulator signs, the API verifies.
export OMS_WMS_WEBHOOK_SECRET="${OMS_WMS_WEBHOOK_SECRET:-whsec_b21zLWxvY2FsLXdhcmVob3VzZS13ZWJob29rcw==}"
export OMS_SIMULATOR_WMS_WEBHOOK_URL="${OMS_SIMULATOR_WMS_WEBHOOK_URL:-http://${OMS_API_ADDR}/webhooks/wms}"
export OMS_SHOPIFY_STORES_FILE="${OMS_SHOPIFY_STORES_FILE:-$ROOT/config/dev-stores.json}"
# The simulated shops' webhooks (cancellations, payments) go to the API.
export OMS_SIMULATOR_SHOPIFY_WEBHOOK_URL="${OMS_SIMULATOR_SHOPIFY_WEBHOOK_URL:-http://${OMS_API_ADDR}/webhooks/shopify}"
TEMPORAL_BIN="$TOOLS_DIR/temporal/bin/temporal"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs "$@" as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $* (install it by hand, or run as root)"; fi
}

# Installs Debian packages if any of them is missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_cargo() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs), then retry"
}

# Waits until "$@" succeeds, up to $1 seconds.
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.2
  done
}
