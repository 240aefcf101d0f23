#!/usr/bin/env bash
# A short tour of the running API: stock, reserve, sell, release, and errors.
source "$(dirname "$0")/common.sh"
B="http://$OMS_API_ADDR"
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$@"; echo; }

SKU=POPULAR-TSHIRT
show "curl -s -X PATCH $B/product/$SKU/stock -d '{\"stock\": 100}'"
show "curl -s $B/product/$SKU"
TOKEN=$(curl -s -X POST "$B/product/$SKU/reserve" | sed -E 's/.*"reservationToken":"([^"]+)".*/\1/')
log "reserved one unit, token $TOKEN"
show "curl -s -X POST $B/product/$SKU/sold -d '{\"reservationToken\": \"$TOKEN\"}'"
show "curl -s -X POST $B/product/$SKU/sold -d '{\"reservationToken\": \"$TOKEN\"}'   # a token works once"
show "curl -s -X PATCH $B/product/$SKU/stock -d '{\"stock\": -5}'   # bad input is named"
log "API on $B; try the calls above with other values"
