#!/usr/bin/env bash
# A tour of the running stack: the inventory API, then a signed Shopify
# order webhook that runs the whole saga, then a warehouse rejection that
# is compensated. Needs the stack from `make run` / `make up`.
source "$(dirname "$0")/common.sh"
B="http://$OMS_API_ADDR"
SIM="http://$OMS_SIMULATOR_ADDR"
SHOP=store-a.myshopify.com
SECRET=dev-webhook-secret-a
SKU=POPULAR-TSHIRT
# The development key `make up` / `make run` created (every scope).
API_KEY_FILE="$RUN_DIR/dev-api-key"
[ -s "$API_KEY_FILE" ] || die "no $API_KEY_FILE: start the stack with 'make up' or 'make run'"
AUTH="Authorization: Bearer $(cat "$API_KEY_FILE")"
step() { printf '\n\033[1;32m### %s\033[0m\n' "$*" >&2; }
show() { printf '\033[1m$ %s\033[0m\n' "$*" >&2; eval "$@"; echo; }

step "Inventory API: set stock, reserve, sell; a token works once"
show "curl -s -H \"\$AUTH\" -X PATCH $B/product/$SKU/stock -d '{\"stock\": 100}'"
TOKEN=$(curl -s -H "$AUTH" -X POST "$B/product/$SKU/reserve" | sed -E 's/.*"reservationToken":"([^"]+)".*/\1/')
show "curl -s -H \"\$AUTH\" -X POST $B/product/$SKU/sold -d '{\"reservationToken\": \"$TOKEN\"}'"
show "curl -s -H \"\$AUTH\" -X POST $B/product/$SKU/sold -d '{\"reservationToken\": \"$TOKEN\"}'"
show "curl -s -H \"\$AUTH\" -X PATCH $B/product/$SKU/stock -d '{\"stock\": -5}'"

step "Without an API key nothing is done (and the answer says what is missing)"
show "curl -s -X PATCH $B/product/$SKU/stock -d '{\"stock\": 0}'"

# send_order SHOPIFY_ID QTY [FINANCIAL_STATUS]: posts a signed orders/create
# webhook from store A (paid unless told otherwise).
send_order() {
  local body
  body=$(printf '{"id": %s, "name": "#%s", "created_at": "%s", "currency": "EUR", "financial_status": "%s",
    "line_items": [{"id": %s1, "sku": "%s", "quantity": %s, "price": "19.90", "title": "Popular T-Shirt", "requires_shipping": true}],
    "shipping_address": {"name": "Ada Lovelace", "address1": "1 Main St", "city": "Berlin", "zip": "10115", "country_code": "DE"}}' \
    "$1" "${1: -4}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${3:-paid}" "$1" "$SKU" "$2")
  local sig
  sig=$(printf '%s' "$body" | python3 -c 'import sys,hmac,hashlib,base64; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).digest()).decode())' "$SECRET")
  curl -s -X POST "$B/webhooks/shopify" -H 'content-type: application/json' \
    -H "x-shopify-shop-domain: $SHOP" -H 'x-shopify-topic: orders/create' \
    -H "x-shopify-hmac-sha256: $sig" -H "x-shopify-webhook-id: demo-$1" --data-binary "$body"
}

# wait_order SHOPIFY_ID: waits for a final status and prints the order row.
wait_order() {
  local q="SELECT status FROM orders WHERE shop_domain = '$SHOP' AND external_id = '$1'"
  for _ in $(seq 1 120); do
    case "$(psql "$DATABASE_URL" -tAc "$q" 2>/dev/null)" in
      FULFILLMENT_REQUESTED|REJECTED|FAILED|CANCELLED) break ;;
    esac
    sleep 0.5
  done
  psql "$DATABASE_URL" -c "SELECT name, status, status_reason, wms_order_id FROM orders WHERE shop_domain = '$SHOP' AND external_id = '$1'" >&2
  psql "$DATABASE_URL" -c "SELECT h.from_status, h.to_status, h.reason FROM order_status_history h JOIN orders o ON o.id = h.order_id WHERE o.shop_domain = '$SHOP' AND o.external_id = '$1' ORDER BY h.id" >&2
}

# wait_status SHOPIFY_ID STATUS: waits (up to 30 s) until the order is in STATUS.
wait_status() {
  local q="SELECT status FROM orders WHERE shop_domain = '$SHOP' AND external_id = '$1'"
  for _ in $(seq 1 60); do
    [ "$(psql "$DATABASE_URL" -tAc "$q")" = "$2" ] && break
    sleep 0.5
  done
}

# wait_shops SKU: waits (up to 10 s) until both shops show the OMS's IN_STOCK of SKU.
wait_shops() {
  local want
  want=$(curl -s -H "$AUTH" "$B/product/$1" | sed -E 's/.*"IN_STOCK":([0-9]+).*/\1/')
  for _ in $(seq 1 50); do
    a=$(curl -s "$SIM/shops/store-a.myshopify.com/inventory" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1'))")
    b=$(curl -s "$SIM/shops/store-b.myshopify.com/inventory" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1'))")
    [ "$a" = "$want" ] && [ "$b" = "$want" ] && return 0
    sleep 0.2
  done
  log "shops not at $want yet (a=$a b=$b); see $B/channels"
}

ID=$(date +%s%N | cut -c1-16)
step "A signed Shopify orders/create webhook for 2 × $SKU (order $ID)"
show "send_order $ID 2"
wait_order "$ID"
show "curl -s -H \"\$AUTH\" $B/product/$SKU"
step "Channel sync: both shops now show the new available level"
wait_shops "$SKU"
show "curl -s $SIM/shops/store-a.myshopify.com/inventory"
show "curl -s $SIM/shops/store-b.myshopify.com/inventory"

step "Every change of stock reaches the shops, not only orders: five reserves through the stock API"
for _ in 1 2 3 4 5; do curl -s -H "$AUTH" -o /dev/null -X POST "$B/product/$SKU/reserve"; done
show "curl -s -H \"\$AUTH\" $B/product/$SKU"
wait_shops "$SKU"
show "curl -s $SIM/shops/store-b.myshopify.com/inventory"
show "curl -s -H \"\$AUTH\" $B/channels"
show "curl -s $SIM/shops/store-b.myshopify.com/stats"
log "workflow in the Temporal UI: http://localhost:$TEMPORAL_UI_PORT/namespaces/default/workflows/order:shopify:$SHOP:$ID"

ID2=$((ID + 1))
step "The warehouse rejects the next order for good: the saga compensates"
show "curl -s -X PUT $SIM/control/wms/mode -H 'content-type: application/json' -d '{\"mode\": \"reject\"}'"
show "send_order $ID2 3"
wait_order "$ID2"
show "curl -s -H \"\$AUTH\" $B/product/$SKU"
show "curl -s -X PUT $SIM/control/wms/mode -H 'content-type: application/json' -d '{\"mode\": \"ok\"}'"
log "compensated workflow: http://localhost:$TEMPORAL_UI_PORT/namespaces/default/workflows/order:shopify:$SHOP:$ID2"

ID3=$((ID + 2))
step "A customer cancels an order in Shopify: the workflow cancels it at the warehouse and releases its units"
show "send_order $ID3 1"
wait_order "$ID3"
show "curl -s -X POST $SIM/control/shops/$SHOP/orders/$ID3/cancel -H 'content-type: application/json' -d '{\"reason\": \"customer\"}'"
wait_status "$ID3" CANCELLED
wait_order "$ID3"
show "curl -s -H \"\$AUTH\" $B/product/$SKU"

ID4=$((ID + 3))
step "The warehouse ships an order: SHIPPED in the OMS, and a fulfillment with tracking in Shopify"
show "send_order $ID4 1"
wait_order "$ID4"
WMS_ID=$(psql "$DATABASE_URL" -tAc "SELECT wms_order_id FROM orders WHERE shop_domain = '$SHOP' AND external_id = '$ID4'")
show "curl -s -X POST $SIM/control/wms/orders/$WMS_ID/ship -H 'content-type: application/json' -d '{\"carrier\": \"USPS\", \"tracking_number\": \"9400100000000000$ID4\"}' | head -c 400; echo ' …'"
wait_status "$ID4" SHIPPED
for _ in $(seq 1 40); do
  curl -s "$SIM/shops/$SHOP/fulfillments" | grep -q "$ID4" && break
  sleep 0.5
done
show "curl -s $SIM/shops/$SHOP/fulfillments"

ID5=$((ID + 4))
step "An unpaid order (bank transfer): reserved at once, sent to the warehouse only once Shopify reports it paid"
show "send_order $ID5 1 pending"
wait_status "$ID5" AWAITING_PAYMENT
show "psql \"\$DATABASE_URL\" -tAc \"SELECT status FROM orders WHERE shop_domain = '$SHOP' AND external_id = '$ID5'\""
show "curl -s -X POST $SIM/control/shops/$SHOP/orders/$ID5/paid"
wait_order "$ID5"

KEY="demo-$ID"
step "The orders API: place an order and wait for its reservation, then ship it"
show "curl -s -H \"\$AUTH\" -X POST $B/orders -H 'content-type: application/json' -H 'Idempotency-Key: $KEY' -H 'Prefer: wait=10' -d '{\"customerReference\": \"CUST-42\", \"lines\": [{\"sku\": \"$SKU\", \"quantity\": 1}], \"shippingAddress\": {\"name\": \"Grace Hopper\", \"address1\": \"2 Harbor Rd\", \"city\": \"Hamburg\", \"zip\": \"20095\", \"countryCode\": \"DE\"}}' | head -c 300; echo ' …'"
ORDER=$(curl -s -H "$AUTH" "$B/orders?channel=api&limit=1" | sed -E 's/.*"id":"([0-9a-f-]{36})".*/\1/')
for _ in $(seq 1 60); do
  curl -s -H "$AUTH" "$B/orders/$ORDER" | grep -q '"status":"FULFILLMENT_REQUESTED"' && break
  sleep 0.5
done
show "curl -s -H \"\$AUTH\" -X PATCH $B/orders/$ORDER/status -H 'content-type: application/json' -d '{\"status\": \"DELIVERED\"}'"
show "curl -s -H \"\$AUTH\" -X PATCH $B/orders/$ORDER/status -H 'content-type: application/json' -d '{\"status\": \"SHIPPED\"}' | head -c 300; echo ' …'"
show "curl -s -H \"\$AUTH\" $B/product/$SKU"
log "order $ORDER: GET $B/orders/$ORDER shows its lines, reservations and history"

step "Operators: Prometheus metrics of the API and the worker, and finding orders in Temporal"
show "curl -s $B/metrics | grep -E '^oms_(webhook_deliveries_total|reserve_batch_size_(count|sum))'"
show "curl -s http://$OMS_WORKER_METRICS_ADDR/metrics | grep -E '^oms_activity_executions_total' | sort"
show "curl -s http://$OMS_WORKER_METRICS_ADDR/metrics | grep -cE '^temporal_' | sed 's/$/ temporal_* SDK samples/'"
log "Temporal UI search: OmsOrderStatus = 'FAILED' lists the compensated order; OmsOrderId = '<id>' finds one"

