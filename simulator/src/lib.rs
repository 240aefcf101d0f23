//! Local stand-in for two Shopify shops and a ShipBob-style WMS.
//!
//! It serves the exact requests the OMS clients (`vendors::shopify`,
//! `vendors::wms`) send, keeps everything in memory, and can be switched
//! into failure modes over HTTP, so someone running the OMS locally can watch
//! retries, rate limiting and saga compensation happen.
//!
//! Any shop name in the path is a store of its own, created on first use; the
//! OMS's store config points at it with `admin_url = http://HOST:PORT/shops/{shop}`
//! and the WMS base URL is `http://HOST:PORT/wms/{version}`.

mod control;
mod events;
mod shopify;
mod wms;

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::json;
use tokio::sync::Mutex;

pub use events::{EventSink, ShopWebhookSink};
pub use shopify::{AppliedSet, Fulfillment, ShopMode, ShopModel, Stats};
pub use wms::{DEFAULT_SELLABLE, WmsMode};

/// Where the binary listens unless `OMS_SIMULATOR_ADDR` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8090";

/// The simulated systems' state; clones share it.
#[derive(Clone, Default)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
    /// Where the warehouse's webhooks go, if anywhere.
    events: Option<EventSink>,
    /// Where the shops' webhooks go, if anywhere.
    shop_webhooks: Option<ShopWebhookSink>,
}

#[derive(Default)]
struct State {
    /// By shop name as it appears in the path.
    shops: BTreeMap<String, ShopModel>,
    wms: wms::Wms,
    /// Warehouse events sent so far (their webhook ids).
    event_sequence: u64,
}

impl Simulator {
    /// A simulator with no shops yet, every mode `ok` and no WMS orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// A simulator whose warehouse sends its events to `sink`.
    pub fn with_events(sink: EventSink) -> Self {
        Self {
            events: Some(sink),
            ..Self::default()
        }
    }

    /// This simulator, whose shops send their webhooks to `sink`.
    pub fn with_shop_webhooks(mut self, sink: ShopWebhookSink) -> Self {
        self.shop_webhooks = Some(sink);
        self
    }

    /// All endpoints (Shopify, WMS, control, help) over this state.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(help))
            .route(
                "/shops/{shop}/admin/api/{version}/graphql.json",
                post(shopify::graphql),
            )
            .route("/shops/{shop}/inventory", get(shopify::inventory))
            .route("/shops/{shop}/log", get(shopify::log))
            .route("/shops/{shop}/stats", get(shopify::stats))
            .route("/shops/{shop}/fulfillments", get(shopify::fulfillments))
            .route("/wms/orders", get(wms::all_orders))
            .route("/wms/{version}/inventory-level", get(wms::inventory_level))
            .route(
                "/wms/{version}/order",
                post(wms::create_order).get(wms::find_orders),
            )
            .route("/wms/{version}/order/{id}/cancel", post(wms::cancel_order))
            .route("/control/state", get(control::state))
            .route("/control/wms/mode", put(control::wms_mode))
            .route("/control/wms/orders/{id}/{event}", post(events::send_event))
            .route("/control/wms/inventory/{sku}", put(control::wms_inventory))
            .route("/control/shops/{shop}/mode", put(control::shop_mode))
            .route(
                "/control/shops/{shop}/orders/{id}/{event}",
                post(events::send_shop_event),
            )
            .route(
                "/control/shops/{shop}/inventory/{sku}",
                put(control::shop_inventory),
            )
            .fallback(|req: Request| async move {
                error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no route for {} {}; GET / lists the endpoints",
                        req.method(),
                        req.uri().path()
                    ),
                )
            })
            .with_state(self.clone())
    }
}

const HELP: &str = "\
oms-simulator: two Shopify shops and a ShipBob-style WMS, in memory.

Shopify (any shop name; OMS admin_url = http://HOST:PORT/shops/{shop}):
  POST /shops/{shop}/admin/api/{version}/graphql.json   productVariants (SKU search), nodes (items),
                                                        inventorySetQuantities (up to 250 per call)
  GET  /shops/{shop}/inventory                          sku -> available
  GET  /shops/{shop}/log                                every quantity written (sku, group = call)
  GET  /shops/{shop}/fulfillments                       fulfillments the OMS created (tracking, notifyCustomer)
  GET  /shops/{shop}/stats                              write, read and throttled calls

WMS (OMS base URL = http://HOST:PORT/wms/{version}):
  GET  /wms/{version}/inventory-level?SearchBy=SKU      sellable units (default 1000)
  POST /wms/{version}/order                             create (422 on a reused reference_id)
  GET  /wms/{version}/order?ReferenceIds=R[,R2]         orders by reference
  POST /wms/{version}/order/{id}/cancel                 cancel an order
  GET  /wms/orders                                      every order received

Control:
  PUT  /control/shops/{shop}/mode          {\"mode\": \"ok\" | \"throttle\" | \"down\"}
  PUT  /control/shops/{shop}/inventory/{sku}  {\"available\": n}   (simulates drift)
  POST /control/shops/{shop}/orders/{id}/cancel  {\"reason\": \"customer\"}  the shop sends orders/cancelled
  POST /control/shops/{shop}/orders/{id}/paid    the shop sends orders/paid
  PUT  /control/wms/mode                   {\"mode\": \"ok\" | \"down\" | \"reject\" | \"slow\"}
  PUT  /control/wms/inventory/{sku}        {\"sellable\": n}
  POST /control/wms/orders/{id}/ship      {\"tracking_number\", \"carrier\"} (optional): the WMS sends a
                                           signed order.shipped to the OMS; also /deliver, /exception
  GET  /control/state                      modes, inventories, orders
";

async fn help() -> &'static str {
    HELP
}

/// A JSON error of the simulator itself (not of a simulated API).
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}
