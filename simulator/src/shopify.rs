//! One Shopify store per shop name: the Admin GraphQL endpoint answering the
//! OMS's two operations, and read-only views of the store.

use std::collections::{BTreeMap, HashMap};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Simulator;

/// How a store answers its Admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopMode {
    /// Serves requests.
    #[default]
    Ok,
    /// Every request gets Shopify's cost-based `THROTTLED` error, with an
    /// empty bucket.
    Throttle,
    /// Every request gets HTTP 503.
    Down,
}

impl ShopMode {
    /// Every mode, in the order the control API lists them.
    pub const ALL: [Self; 3] = [Self::Ok, Self::Throttle, Self::Down];

    /// The mode's name in the control API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Throttle => "throttle",
            Self::Down => "down",
        }
    }
}

/// One store's single location.
#[derive(Default)]
pub(crate) struct Shop {
    pub(crate) mode: ShopMode,
    /// SKU → available. A SKU appears once looked up or set.
    pub(crate) available: BTreeMap<String, i64>,
    pub(crate) log: Vec<AppliedSet>,
    /// Idempotency key → the adjustment group it produced, so a replay
    /// answers what the first request did.
    applied_keys: HashMap<String, u64>,
    adjustment_groups: u64,
}

/// A set that changed the store's inventory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppliedSet {
    sku: String,
    quantity: i64,
    change_from: i64,
    idempotency_key: Option<String>,
    location_id: Option<String>,
    time: DateTime<Utc>,
}

/// `POST /shops/{shop}/admin/api/{version}/graphql.json`
pub(crate) async fn graphql(
    State(sim): State<Simulator>,
    Path((shop_name, _version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut state = sim.state.lock().await;
    let shop = state.shops.entry(shop_name.clone()).or_default();
    match shop.mode {
        ShopMode::Ok => {}
        ShopMode::Down => {
            tracing::info!(shop = %shop_name, mode = "down", "shopify graphql: 503");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "errors": "Service unavailable (simulated)" })),
            )
                .into_response();
        }
        ShopMode::Throttle => {
            tracing::info!(shop = %shop_name, mode = "throttle", "shopify graphql: THROTTLED");
            return Json(throttled()).into_response();
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        tracing::info!(shop = %shop_name, mode = "ok", "shopify graphql: body is not JSON");
        return graphql_errors(StatusCode::BAD_REQUEST, "request body is not JSON");
    };
    let query = body["query"].as_str().unwrap_or_default();
    let variables = &body["variables"];
    // Same detection as the test fakes: the OMS sends exactly these two.
    if query.contains("productVariants") {
        shop.look_up(&shop_name, variables)
    } else if query.contains("inventorySetQuantities") {
        shop.set_quantities(&shop_name, query, variables)
    } else {
        tracing::info!(shop = %shop_name, mode = "ok", "shopify graphql: unsupported operation");
        graphql_errors(
            StatusCode::OK,
            "unsupported operation: the simulator answers the productVariants SKU look-up \
             and the inventorySetQuantities mutation",
        )
    }
}

impl Shop {
    /// The `productVariants(query: "sku:\"X\"")` look-up: every SKU is sold,
    /// starting at 0 available.
    fn look_up(&mut self, shop_name: &str, variables: &Value) -> Response {
        let sku = sku_from_search(variables["q"].as_str().unwrap_or_default());
        let available = *self.available.entry(sku.clone()).or_insert(0);
        tracing::info!(shop = %shop_name, %sku, mode = "ok", available, "shopify look-up");
        Json(json!({ "data": { "productVariants": { "nodes": [{
            "sku": sku,
            "inventoryItem": {
                "id": format!("gid://shopify/InventoryItem/{sku}"),
                "inventoryLevel": { "quantities": [{ "name": "available", "quantity": available }] },
            },
        }]}}}))
        .into_response()
    }

    /// `inventorySetQuantities` with compare-and-set on `changeFromQuantity`
    /// and the `@idempotent` key.
    fn set_quantities(&mut self, shop_name: &str, query: &str, variables: &Value) -> Response {
        let q = &variables["input"]["quantities"][0];
        let (Some(item_id), Some(quantity)) =
            (q["inventoryItemId"].as_str(), q["quantity"].as_i64())
        else {
            tracing::info!(shop = %shop_name, mode = "ok", "shopify set: malformed input");
            return graphql_errors(
                StatusCode::OK,
                "variables.input.quantities[0] needs inventoryItemId and an integer quantity",
            );
        };
        let sku = item_id.rsplit('/').next().unwrap_or_default().to_string();
        let key = idempotency_key(query);
        // The key is checked before the compare-and-set: a retry of a set
        // whose answer was lost carries a changeFromQuantity that is stale by
        // now, and must still count as done.
        if let Some(group) = key.as_ref().and_then(|k| self.applied_keys.get(k)) {
            tracing::info!(shop = %shop_name, %sku, mode = "ok", "shopify set: idempotency key replayed, not applied again");
            return set_done(*group);
        }
        let current = self.available.get(&sku).copied().unwrap_or(0);
        let change_from = q["changeFromQuantity"].as_i64();
        if change_from != Some(current) {
            tracing::info!(shop = %shop_name, %sku, mode = "ok", current, ?change_from, "shopify set: CHANGE_FROM_QUANTITY_STALE");
            return Json(json!({ "data": { "inventorySetQuantities": {
                "inventoryAdjustmentGroup": null,
                "userErrors": [{
                    "code": "CHANGE_FROM_QUANTITY_STALE",
                    "field": ["input", "quantities", "0", "changeFromQuantity"],
                    "message": "The specified compare quantity does not match the current quantity.",
                }],
            }}}))
            .into_response();
        }
        self.available.insert(sku.clone(), quantity);
        self.adjustment_groups += 1;
        let group = self.adjustment_groups;
        if let Some(key) = &key {
            self.applied_keys.insert(key.clone(), group);
        }
        self.log.push(AppliedSet {
            sku: sku.clone(),
            quantity,
            change_from: current,
            idempotency_key: key,
            location_id: q["locationId"].as_str().map(str::to_string),
            time: Utc::now(),
        });
        tracing::info!(shop = %shop_name, %sku, mode = "ok", from = current, to = quantity, "shopify set: applied");
        set_done(group)
    }
}

/// `GET /shops/{shop}/inventory`
pub(crate) async fn inventory(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
) -> Json<BTreeMap<String, i64>> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(|s| s.available.clone())
            .unwrap_or_default(),
    )
}

/// `GET /shops/{shop}/log`
pub(crate) async fn log(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
) -> Json<Vec<AppliedSet>> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(|s| s.log.clone())
            .unwrap_or_default(),
    )
}

fn set_done(group: u64) -> Response {
    Json(json!({ "data": { "inventorySetQuantities": {
        "inventoryAdjustmentGroup": { "id": format!("gid://shopify/InventoryAdjustmentGroup/{group}") },
        "userErrors": [],
    }}}))
    .into_response()
}

/// Shopify's answer when the cost bucket is empty: HTTP 200, not 429.
fn throttled() -> Value {
    json!({
        "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED" } }],
        "extensions": { "cost": {
            "requestedQueryCost": 10,
            "actualQueryCost": null,
            "throttleStatus": {
                "maximumAvailable": 1000.0,
                "currentlyAvailable": 0,
                "restoreRate": 50.0,
            },
        }},
    })
}

fn graphql_errors(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": [{ "message": message }] }))).into_response()
}

/// `sku:"X"` (the client escapes `"` inside X) → `X`.
fn sku_from_search(q: &str) -> String {
    let value = q.trim().strip_prefix("sku:").unwrap_or(q).trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    unquoted.replace("\\\"", "\"")
}

/// The literal of `@idempotent(key: "...")` in the operation text.
fn idempotency_key(query: &str) -> Option<String> {
    let after_directive = &query[query.find("@idempotent")?..];
    let after_key = after_directive[after_directive.find("key:")? + "key:".len()..]
        .trim_start()
        .strip_prefix('"')?;
    Some(after_key[..after_key.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sku_is_read_back_from_the_search_the_client_builds() {
        assert_eq!(sku_from_search(r#"sku:"TEE-RED-M""#), "TEE-RED-M");
        assert_eq!(sku_from_search(r#"sku:"A\"B""#), "A\"B");
    }

    #[test]
    fn the_idempotency_key_is_taken_from_the_directive() {
        let query = r#"mutation M($input: X!) {
              inventorySetQuantities(input: $input) @idempotent(key: "0b0e-42") { userErrors { code } }
            }"#;
        assert_eq!(idempotency_key(query).as_deref(), Some("0b0e-42"));
        assert_eq!(idempotency_key("mutation { inventorySetQuantities }"), None);
    }
}
