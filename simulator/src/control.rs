//! The control API: failure modes, inventory, and a dump of the state.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{ShopMode, Simulator, WmsMode, error, wms::DEFAULT_SELLABLE};

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

/// The mode named in `body`, or why not (listing the allowed names).
fn parse_mode<M: Copy>(body: &[u8], all: &[M], name: fn(M) -> &'static str) -> Result<M, String> {
    let allowed = all.iter().map(|m| name(*m)).collect::<Vec<_>>().join(", ");
    let requested = serde_json::from_slice::<ModeBody>(body)
        .map_err(|_| format!("expected a body {{\"mode\": ...}}; allowed modes: {allowed}"))?;
    all.iter()
        .copied()
        .find(|m| name(*m) == requested.mode)
        .ok_or_else(|| {
            format!(
                "unknown mode {:?}; allowed modes: {allowed}",
                requested.mode
            )
        })
}

/// An integer field of a JSON body, or why not.
fn integer_field(body: &[u8], field: &str) -> Result<i64, String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v[field].as_i64())
        .ok_or_else(|| format!("expected a body {{\"{field}\": <integer>}}"))
}

/// `PUT /control/wms/mode`
pub(crate) async fn wms_mode(State(sim): State<Simulator>, body: Bytes) -> Response {
    let mode = match parse_mode(&body, &WmsMode::ALL, WmsMode::name) {
        Ok(m) => m,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    sim.state.lock().await.wms.mode = mode;
    tracing::info!(mode = mode.name(), "control: wms mode set");
    Json(json!({ "mode": mode })).into_response()
}

/// `PUT /control/shops/{shop}/mode`
pub(crate) async fn shop_mode(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
    body: Bytes,
) -> Response {
    let mode = match parse_mode(&body, &ShopMode::ALL, ShopMode::name) {
        Ok(m) => m,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    sim.state
        .lock()
        .await
        .shops
        .entry(shop.clone())
        .or_default()
        .mode = mode;
    tracing::info!(%shop, mode = mode.name(), "control: shop mode set");
    Json(json!({ "shop": shop, "mode": mode })).into_response()
}

/// `PUT /control/wms/inventory/{sku}` with `{"sellable": n}`
pub(crate) async fn wms_inventory(
    State(sim): State<Simulator>,
    Path(sku): Path<String>,
    body: Bytes,
) -> Response {
    let sellable = match integer_field(&body, "sellable") {
        Ok(n) => n,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    sim.state
        .lock()
        .await
        .wms
        .sellable
        .insert(sku.clone(), sellable);
    tracing::info!(%sku, sellable, "control: wms sellable set");
    Json(json!({ "sku": sku, "sellable": sellable })).into_response()
}

/// `PUT /control/shops/{shop}/inventory/{sku}` with `{"available": n}`: a
/// change made in the store behind the OMS's back (a sale, a manual edit),
/// which the OMS meets as a stale `changeFromQuantity`. Not logged as a set.
pub(crate) async fn shop_inventory(
    State(sim): State<Simulator>,
    Path((shop, sku)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let available = match integer_field(&body, "available") {
        Ok(n) => n,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    sim.state
        .lock()
        .await
        .shops
        .entry(shop.clone())
        .or_default()
        .set_available(&sku, available);
    tracing::info!(%shop, %sku, available, "control: shop available set");
    Json(json!({ "shop": shop, "sku": sku, "available": available })).into_response()
}

/// `GET /control/state`
pub(crate) async fn state(State(sim): State<Simulator>) -> Json<Value> {
    let state = sim.state.lock().await;
    let shops: Map<String, Value> = state
        .shops
        .iter()
        .map(|(name, shop)| {
            (
                name.clone(),
                json!({ "mode": shop.mode, "inventory": shop.inventory(), "log": shop.log(),
                        "stats": shop.stats() }),
            )
        })
        .collect();
    Json(json!({
        "shops": shops,
        "wms": {
            "mode": state.wms.mode,
            "default_sellable": DEFAULT_SELLABLE,
            "sellable": state.wms.sellable,
            "orders": state.wms.orders,
        },
    }))
}
