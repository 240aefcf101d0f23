#!/usr/bin/env bash
# Starts the local stack: `stack.sh run` in the foreground (Ctrl-C stops all
# it started), `stack.sh up` in the background, `stack.sh down` stops it.
# Pids and logs live in .run/.
source "$(dirname "$0")/common.sh"

PIDS="$RUN_DIR/pids"
mode=${1:-run}

stop_all() {
  [ -d "$PIDS" ] || return 0
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); name=$(basename "$f" .pid)
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping $name ($pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

# start NAME CMD...: runs CMD in the background, logging to .run/NAME.log.
start() {
  local name=$1; shift
  if [ -f "$PIDS/$name.pid" ] && kill -0 "$(cat "$PIDS/$name.pid")" 2>/dev/null; then
    die "$name is already running (pid $(cat "$PIDS/$name.pid")); run 'make down' first"
  fi
  "$@" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  log "$name started (pid $!, log .run/$name.log)"
}

http_ok() { curl -fsS -o /dev/null "$1"; }

case "$mode" in
  down) stop_all; exit 0 ;;
  run|up) ;;
  *) die "usage: stack.sh run|up|down" ;;
esac

ensure_cargo
command -v curl >/dev/null || apt_install curl
"$ROOT/scripts/ensure-postgres.sh"
log "building"
(cd "$ROOT" && cargo build --release --bins -q)
mkdir -p "$PIDS"
[ "$mode" = run ] && trap 'stop_all; exit 0' INT TERM EXIT

# The API creates the database if needed and applies migrations at start-up.
start api "$ROOT/target/release/oms-api"
wait_for 60 http_ok "http://$OMS_API_ADDR/health/ready" || { tail -20 "$RUN_DIR/api.log"; die "api did not become ready"; }

"$ROOT/scripts/demo.sh"

if [ "$mode" = run ]; then
  log "running; Ctrl-C stops everything. Logs: .run/*.log"
  tail -n 0 -F "$RUN_DIR"/*.log &
  wait
else
  log "stack is up in the background; 'make down' stops it"
fi
