//! The ShipBob-style WMS: inventory read, order creation keyed by
//! `reference_id`, order look-up by reference.

use std::{collections::BTreeMap, collections::HashMap, time::Duration};

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Simulator;

/// Sellable units of a SKU nobody set.
pub const DEFAULT_SELLABLE: i64 = 1000;

/// Ids are large, like a real WMS's, so they are not mistaken for ours.
const FIRST_ORDER_ID: u64 = 100_001;

/// How long `slow` mode holds the answer to an order creation.
const SLOW_DELAY: Duration = Duration::from_secs(3);

/// How the WMS answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WmsMode {
    /// Serves requests.
    #[default]
    Ok,
    /// Every WMS call gets HTTP 503.
    Down,
    /// Order creation gets 400 (address not validated); reads still work.
    Reject,
    /// Order creation is recorded at once but answered after 3 s.
    Slow,
}

impl WmsMode {
    /// Every mode, in the order the control API lists them.
    pub const ALL: [Self; 4] = [Self::Ok, Self::Down, Self::Reject, Self::Slow];

    /// The mode's name in the control API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Down => "down",
            Self::Reject => "reject",
            Self::Slow => "slow",
        }
    }
}

impl Wms {
    /// The `reference_id` of order `id` (the OMS's order id).
    pub(crate) fn reference_of(&self, id: u64) -> Option<String> {
        self.orders
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.reference_id.clone())
    }
}

#[derive(Default)]
pub(crate) struct Wms {
    pub(crate) mode: WmsMode,
    /// SKUs whose sellable quantity was set; the others have [`DEFAULT_SELLABLE`].
    pub(crate) sellable: BTreeMap<String, i64>,
    pub(crate) orders: Vec<Order>,
}

/// An order as received, with what the WMS added.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Order {
    id: u64,
    reference_id: String,
    order_number: Value,
    status: &'static str,
    created_date: DateTime<Utc>,
    #[serde(rename = "type")]
    order_type: Value,
    shipping_method: Value,
    recipient: Value,
    products: Value,
}

/// `GET /wms/{version}/inventory-level?SearchBy=SKU`. Without `SearchBy`,
/// lists the SKUs whose quantity was set.
pub(crate) async fn inventory_level(
    State(sim): State<Simulator>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let state = sim.state.lock().await;
    let wms = &state.wms;
    let sku = params.get("SearchBy");
    tracing::info!(
        sku = sku.map(String::as_str),
        mode = wms.mode.name(),
        "wms inventory-level"
    );
    if wms.mode == WmsMode::Down {
        return unavailable();
    }
    let items: Vec<Value> = match sku {
        Some(sku) => vec![item(
            sku,
            wms.sellable.get(sku).copied().unwrap_or(DEFAULT_SELLABLE),
        )],
        None => wms.sellable.iter().map(|(s, n)| item(s, *n)).collect(),
    };
    Json(json!({ "items": items })).into_response()
}

fn item(sku: &str, n: i64) -> Value {
    json!({
        "sku": sku,
        "total_sellable_quantity": n,
        "total_fulfillable_quantity": n,
        "total_on_hand_quantity": n,
    })
}

/// `POST /wms/{version}/order`
pub(crate) async fn create_order(State(sim): State<Simulator>, body: Bytes) -> Response {
    let (response, mode) = {
        let mut state = sim.state.lock().await;
        let mode = state.wms.mode;
        (state.wms.create(&body, mode), mode)
    };
    if mode == WmsMode::Slow {
        // The order is already recorded: a client that gives up waiting and
        // retries meets the duplicate-reference path, as with a real WMS
        // that committed but answered late.
        tokio::time::sleep(SLOW_DELAY).await;
    }
    response
}

impl Wms {
    fn create(&mut self, body: &[u8], mode: WmsMode) -> Response {
        match mode {
            WmsMode::Down => {
                tracing::info!(mode = mode.name(), "wms create order: 503");
                return unavailable();
            }
            WmsMode::Reject => {
                tracing::info!(mode = mode.name(), "wms create order: address rejected");
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "recipient.address": ["Address could not be validated"] })),
                )
                    .into_response();
            }
            WmsMode::Ok | WmsMode::Slow => {}
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            tracing::info!(mode = mode.name(), "wms create order: body is not JSON");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "": ["The request body is not valid JSON."] })),
            )
                .into_response();
        };
        let Some(reference_id) = body["reference_id"].as_str().filter(|r| !r.is_empty()) else {
            tracing::info!(mode = mode.name(), "wms create order: no reference_id");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "reference_id": ["The ReferenceId field is required."] })),
            )
                .into_response();
        };
        if self.orders.iter().any(|o| o.reference_id == reference_id) {
            tracing::info!(
                mode = mode.name(),
                reference_id,
                "wms create order: duplicate reference_id"
            );
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "": ["Cannot insert order with existing ReferenceId"] })),
            )
                .into_response();
        }
        let skus: Vec<&str> = body["products"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["reference_id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let order = Order {
            id: FIRST_ORDER_ID + self.orders.len() as u64,
            reference_id: reference_id.to_string(),
            order_number: body["order_number"].clone(),
            status: "Processing",
            created_date: Utc::now(),
            order_type: body["type"].clone(),
            shipping_method: body["shipping_method"].clone(),
            recipient: body["recipient"].clone(),
            products: body["products"].clone(),
        };
        tracing::info!(
            mode = mode.name(),
            reference_id,
            id = order.id,
            ?skus,
            "wms create order: created"
        );
        let created = (StatusCode::CREATED, Json(&order)).into_response();
        self.orders.push(order);
        created
    }
}

/// `GET /wms/{version}/order?ReferenceIds=R[,R2...]`; without the
/// parameter, every order.
pub(crate) async fn find_orders(
    State(sim): State<Simulator>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let state = sim.state.lock().await;
    let wms = &state.wms;
    let references: Option<Vec<&str>> = params
        .get("ReferenceIds")
        .map(|r| r.split(',').map(str::trim).collect());
    tracing::info!(mode = wms.mode.name(), ?references, "wms find orders");
    if wms.mode == WmsMode::Down {
        return unavailable();
    }
    let found: Vec<&Order> = wms
        .orders
        .iter()
        .filter(|o| {
            references
                .as_ref()
                .is_none_or(|rs| rs.contains(&o.reference_id.as_str()))
        })
        .collect();
    Json(found).into_response()
}

/// `POST /wms/{version}/order/{id}/cancel`: marks the order cancelled.
pub(crate) async fn cancel_order(
    State(sim): State<Simulator>,
    axum::extract::Path((_version, id)): axum::extract::Path<(String, u64)>,
) -> Response {
    let mut state = sim.state.lock().await;
    tracing::info!(mode = state.wms.mode.name(), id, "wms cancel order");
    if state.wms.mode == WmsMode::Down {
        return unavailable();
    }
    match state.wms.orders.iter_mut().find(|o| o.id == id) {
        Some(order) => {
            order.status = "Cancelled";
            Json(json!({ "id": id, "status": "Cancelled" })).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": format!("order {id} not found") })),
        )
            .into_response(),
    }
}

/// `GET /wms/orders`: the observer's view, answered whatever the mode.
pub(crate) async fn all_orders(State(sim): State<Simulator>) -> Json<Vec<Order>> {
    Json(sim.state.lock().await.wms.orders.clone())
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "message": "Service unavailable (simulated)" })),
    )
        .into_response()
}
