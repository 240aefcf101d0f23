//! The warehouse's webhooks: on request (`POST /control/wms/orders/{id}/…`)
//! the simulated WMS tells the OMS that an order shipped, was delivered or
//! hit an exception, signed as ShipBob signs them (Standard Webhooks:
//! base64 HMAC-SHA256 of `id.timestamp.body`, `v1,` prefixed).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Simulator, error};

/// Where the simulated warehouse sends its events, and the key it signs with.
#[derive(Clone)]
pub struct EventSink {
    url: String,
    key: Vec<u8>,
    http: reqwest::Client,
}

impl EventSink {
    /// Events to `url`, signed with a Standard Webhooks secret
    /// (`whsec_<base64>`).
    pub fn new(url: impl Into<String>, secret: &str) -> Result<Self, String> {
        let key = secret
            .trim()
            .strip_prefix("whsec_")
            .and_then(|k| STANDARD.decode(k).ok())
            .ok_or("the secret must be whsec_<base64>")?;
        let http = http_client()?;
        Ok(Self {
            url: url.into(),
            key,
            http,
        })
    }

    /// Sends `body` as event `topic`; the OMS's answer (status and body).
    async fn send(&self, id: &str, topic: &str, body: &Value) -> Result<(u16, Value), String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&bytes);
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let request = self
            .http
            .post(&self.url)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signature)
            .header("x-webhook-topic", topic);
        deliver(request, bytes).await
    }
}

/// The client the simulated systems send their webhooks with.
fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

/// Sends a signed webhook's JSON body; the OMS's status and answer.
async fn deliver(request: reqwest::RequestBuilder, body: Vec<u8>) -> Result<(u16, Value), String> {
    let answer = request
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("the OMS did not answer: {e}"))?;
    let status = answer.status().as_u16();
    let body = answer.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// `POST /control/wms/orders/{id}/{event}` with `event` one of `ship`
/// (body `{"tracking_number", "carrier"}`, both optional), `deliver` and
/// `exception`: the warehouse sends the matching event to the OMS. Answers
/// with the event sent and the OMS's answer.
pub(crate) async fn send_event(
    State(sim): State<Simulator>,
    Path((id, event)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let Some(sink) = sim.events.clone() else {
        return error(
            StatusCode::CONFLICT,
            "no event sink: start the simulator with OMS_SIMULATOR_WMS_WEBHOOK_URL and OMS_WMS_WEBHOOK_SECRET",
        );
    };
    let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (reference_id, sequence) = {
        let mut state = sim.state.lock().await;
        state.event_sequence += 1;
        let sequence = state.event_sequence;
        match state.wms.reference_of(id) {
            Some(reference) => (reference, sequence),
            None => return error(StatusCode::NOT_FOUND, format!("no WMS order {id}")),
        }
    };
    let number = asked["tracking_number"]
        .as_str()
        .map_or_else(|| format!("9400{id:018}"), str::to_string);
    let carrier = asked["carrier"].as_str().unwrap_or("USPS").to_string();
    let tracking = json!({
        "carrier": carrier,
        "tracking_number": number,
        "tracking_url": format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
    });
    let (topic, status) = match event.as_str() {
        "ship" => ("order.shipped", "Completed"),
        "deliver" => ("order.delivered", "Delivered"),
        "exception" => ("order.shipment.exception", "Exception"),
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown event {other:?}; use ship, deliver or exception"),
            );
        }
    };
    let payload = json!({
        "id": id,
        "reference_id": reference_id,
        "status": status,
        "shipments": [{ "id": id * 10, "status": status, "tracking": tracking }],
    });
    let message_id = format!("msg_sim_{sequence}");
    match sink.send(&message_id, topic, &payload).await {
        Ok((status, answer)) => {
            tracing::info!(
                wms_order = id,
                topic,
                oms_status = status,
                "warehouse event sent"
            );
            Json(
                json!({ "sent": { "topic": topic, "webhookId": message_id, "body": payload },
                         "omsStatus": status, "omsAnswer": answer }),
            )
            .into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}

/// Where the simulated shops send their webhooks, and each shop's secret.
#[derive(Clone)]
pub struct ShopWebhookSink {
    url: String,
    secrets: std::collections::BTreeMap<String, String>,
    http: reqwest::Client,
}

impl ShopWebhookSink {
    /// Webhooks to `url` (the OMS's `POST /webhooks/shopify`), signed as
    /// Shopify signs them with each shop's secret from `stores` (the OMS's
    /// stores file: `[{"shop", "webhook_secret", …}]`).
    pub fn new(url: impl Into<String>, stores: &Value) -> Result<Self, String> {
        let secrets = stores
            .as_array()
            .ok_or("the stores file is not a JSON array")?
            .iter()
            .filter_map(|s| {
                Some((
                    s["shop"].as_str()?.to_string(),
                    s["webhook_secret"].as_str()?.to_string(),
                ))
            })
            .collect();
        let http = http_client()?;
        Ok(Self {
            url: url.into(),
            secrets,
            http,
        })
    }

    /// Sends `body` as `shop`'s webhook `topic`; the OMS's answer.
    async fn send(
        &self,
        shop: &str,
        id: &str,
        topic: &str,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let secret = self
            .secrets
            .get(shop)
            .ok_or_else(|| format!("no webhook secret for shop {shop} in the stores file"))?;
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(&bytes);
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let request = self
            .http
            .post(&self.url)
            .header("x-shopify-shop-domain", shop)
            .header("x-shopify-topic", topic)
            .header("x-shopify-hmac-sha256", signature)
            .header("x-shopify-webhook-id", id);
        deliver(request, bytes).await
    }
}

/// `POST /control/shops/{shop}/orders/{id}/{event}` with `event` one of
/// `cancel` (body `{"reason"}`, optional: Shopify's cancel reason,
/// `customer` by default) and `paid`: the shop sends `orders/cancelled` or
/// `orders/paid` for its order `id` to the OMS. Answers with the webhook
/// sent and the OMS's answer.
pub(crate) async fn send_shop_event(
    State(sim): State<Simulator>,
    Path((shop, id, event)): Path<(String, u64, String)>,
    body: Bytes,
) -> Response {
    let Some(sink) = sim.shop_webhooks.clone() else {
        return error(
            StatusCode::CONFLICT,
            "no shop webhook sink: start the simulator with OMS_SIMULATOR_SHOPIFY_WEBHOOK_URL and OMS_SHOPIFY_STORES_FILE",
        );
    };
    let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let now = chrono::Utc::now().to_rfc3339();
    let (topic, payload) = match event.as_str() {
        "cancel" => (
            "orders/cancelled",
            json!({ "id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
                    "cancel_reason": asked["reason"].as_str().unwrap_or("customer"),
                    "cancelled_at": now, "financial_status": "voided" }),
        ),
        "paid" => (
            "orders/paid",
            json!({ "id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
                    "financial_status": "paid", "updated_at": now }),
        ),
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!("unknown event {other:?}; use cancel or paid"),
            );
        }
    };
    let sequence = {
        let mut state = sim.state.lock().await;
        state.event_sequence += 1;
        state.event_sequence
    };
    let webhook_id = format!("sim-{shop}-{sequence}");
    match sink.send(&shop, &webhook_id, topic, &payload).await {
        Ok((status, answer)) => {
            tracing::info!(%shop, order = id, topic, oms_status = status, "shop webhook sent");
            Json(
                json!({ "sent": { "topic": topic, "webhookId": webhook_id, "body": payload },
                         "omsStatus": status, "omsAnswer": answer }),
            )
            .into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}
