#!/usr/bin/env bash
# The local stack: Postgres, Temporal dev server + Web UI, the simulator
# (two Shopify stores and the WMS), oms-worker and oms-api.
#   stack.sh run   foreground; Ctrl-C stops everything it started
#   stack.sh up    background
#   stack.sh down  stop what `up` started
# Pids and logs live in .run/; Temporal keeps its data in .run/temporal.db.
source "$(dirname "$0")/common.sh"

PIDS="$RUN_DIR/pids"
mode=${1:-run}

stop_all() {
  [ -d "$PIDS" ] || return 0
  # Reverse start order: intake first, Temporal last.
  for name in api worker simulator temporal; do
    f="$PIDS/$name.pid"
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping $name ($pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
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
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "$mode" in
  down) stop_all; exit 0 ;;
  run|up) ;;
  *) die "usage: stack.sh run|up|down" ;;
esac

ensure_cargo
command -v curl >/dev/null || apt_install curl
"$ROOT/scripts/ensure-postgres.sh"
"$ROOT/scripts/ensure-temporal.sh"
log "building release binaries (the first build takes a few minutes)"
(cd "$ROOT" && cargo build --release -q -p api -p worker -p simulator)
mkdir -p "$PIDS"
[ "$mode" = run ] && trap 'stop_all; exit 0' INT TERM EXIT

start temporal "$TEMPORAL_BIN" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
  --ui-port "$TEMPORAL_UI_PORT" --db-filename "$RUN_DIR/temporal.db" --log-level warn
wait_for 60 port_open "$TEMPORAL_PORT" || { tail -20 "$RUN_DIR/temporal.log"; die "Temporal did not start"; }
start simulator "$ROOT/target/release/oms-simulator"
wait_for 30 http_ok "http://$OMS_SIMULATOR_ADDR/control/state" || die "simulator did not start"
# Both create the database if needed and apply migrations at start-up.
start worker "$ROOT/target/release/oms-worker"
start api "$ROOT/target/release/oms-api"
wait_for 60 http_ok "http://$OMS_API_ADDR/health/ready" || { tail -20 "$RUN_DIR/api.log"; die "api did not become ready"; }

# A development API key with every scope, kept across runs while it is live
# (so a Postman environment or a shell variable keeps working).
KEY_FILE="$RUN_DIR/dev-api-key"
if ! { [ -s "$KEY_FILE" ] && curl -fsS -o /dev/null -H "Authorization: Bearer $(cat "$KEY_FILE")" "http://$OMS_API_ADDR/products?limit=1"; }; then
  "$ROOT/target/release/oms-api" keys create --name "dev ($(whoami)@$(hostname))" --scopes admin --plain >"$KEY_FILE.new"
  mv "$KEY_FILE.new" "$KEY_FILE" && chmod 600 "$KEY_FILE"
  log "created a development API key (every scope) in .run/dev-api-key"
fi
# A Postman environment for the committed collection, key included.
printf '{"name": "OMS local", "values": [{"key": "baseUrl", "value": "http://%s", "enabled": true}, {"key": "apiKey", "value": "%s", "type": "secret", "enabled": true}]}\n' \
  "$OMS_API_ADDR" "$(cat "$KEY_FILE")" >"$RUN_DIR/oms-local.postman_environment.json"

"$ROOT/scripts/demo.sh"

cat >&2 <<MSG

  API            http://$OMS_API_ADDR        (logs: .run/api.log)
  API key        $(cat "$KEY_FILE")   (in .run/dev-api-key; send it as 'Authorization: Bearer <key>')
  Postman        import postman/oms.postman_collection.json and .run/oms-local.postman_environment.json
  Temporal UI    http://localhost:$TEMPORAL_UI_PORT  (workflows of namespace 'default')
  Simulator      http://$OMS_SIMULATOR_ADDR        (GET / lists its endpoints; PUT /control/... makes it fail)
  Worker         logs: .run/worker.log; metrics http://$OMS_WORKER_METRICS_ADDR/metrics
  API metrics    http://$OMS_API_ADDR/metrics

MSG
if [ "$mode" = run ]; then
  log "running; Ctrl-C stops everything"
  tail -n 0 -F "$RUN_DIR"/api.log "$RUN_DIR"/worker.log &
  wait
else
  log "stack is up in the background; 'make down' stops it"
fi
