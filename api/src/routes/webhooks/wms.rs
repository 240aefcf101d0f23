//! `POST /webhooks/wms`: the warehouse reports shipments, deliveries and
//! exceptions (ShipBob's events, signed with the Standard Webhooks scheme).
//!
//! The signature is checked over the raw bytes first (HMAC-SHA256 of
//! `id.timestamp.body` under the shared secret, base64, `v1,` prefixed,
//! several allowed for rotation, timestamps within five minutes against
//! replays); only then is anything parsed. Status moves go through the
//! order's workflow, like a status change through the orders API, so the
//! workflow sells the units on SHIPPED and stays the one writer of status.
//! The warehouse retries for a day with backoff and does not keep order:
//! an event is answered by what the order already is (a repeat changes
//! nothing; a delivery whose shipment was not reported ships it first).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use db::Tracking;
use domain::OrderStatus;
use hmac::{Hmac, Mac};
use orchestrator::{ChangeError, ChangeOutcome};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;
use workflows::contracts::StatusChange;

use super::{Handled, answer};
use crate::{
    error::ApiError, extract::header, limits::LimitKey, metrics::WebhookOutcome, state::AppState,
};

/// Oldest (and furthest in the future) a delivery's timestamp may be.
const TOLERANCE: Duration = Duration::from_secs(300);

/// How long a status move is waited for before the event is acknowledged
/// (the workflow carries it on either way).
const OUTCOME_WAIT: Duration = Duration::from_secs(5);

/// The key of the warehouse's webhook signatures: the bytes of a Standard
/// Webhooks secret (`whsec_<base64>`).
#[derive(Clone)]
pub struct WmsWebhookKey(Vec<u8>);

impl std::fmt::Debug for WmsWebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WmsWebhookKey(<redacted>)")
    }
}

impl WmsWebhookKey {
    /// Parses `whsec_<base64>`; the error names what is wrong, never the value.
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_ (a Standard Webhooks secret)")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "is not base64 after whsec_")?;
        if key.len() < 16 {
            return Err("must hold at least 16 bytes".into());
        }
        Ok(Self(key))
    }

    /// The `webhook-signature` value for a delivery (what the warehouse
    /// sends; the tests and the simulator sign with it).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac(id, &timestamp.to_string());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self, id: &str, timestamp: &str) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac
    }

    /// Whether the headers sign `body` under this key, within the tolerance
    /// of `now`.
    fn verifies(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> bool {
        let (Some(id), Some(timestamp), Some(signatures)) = (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
        ) else {
            return false;
        };
        let Ok(at) = timestamp.parse::<u64>() else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now.abs_diff(at) > TOLERANCE.as_secs() {
            return false;
        }
        let mut mac = self.mac(id, timestamp);
        mac.update(body);
        signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            // `verify_slice` compares in constant time.
            .any(|sig| mac.clone().verify_slice(&sig).is_ok())
    }
}

/// What the OMS reads of an event: our order id (the reference we gave the
/// warehouse) and the tracking, wherever the event carries them.
#[derive(Debug, Deserialize)]
struct EventDto {
    reference_id: Option<String>,
    order: Option<OrderRefDto>,
    tracking: Option<TrackingDto>,
    #[serde(default)]
    shipments: Vec<ShipmentDto>,
}

#[derive(Debug, Deserialize)]
struct OrderRefDto {
    reference_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ShipmentDto {
    tracking: Option<TrackingDto>,
}

#[derive(Debug, Deserialize)]
struct TrackingDto {
    carrier: Option<String>,
    #[serde(alias = "tracking_id")]
    tracking_number: Option<String>,
    tracking_url: Option<String>,
}

impl EventDto {
    fn reference(&self) -> Option<&str> {
        self.reference_id
            .as_deref()
            .or_else(|| self.order.as_ref()?.reference_id.as_deref())
    }

    fn tracking(&self) -> Option<Tracking> {
        let t = self
            .tracking
            .as_ref()
            .or_else(|| self.shipments.iter().find_map(|s| s.tracking.as_ref()))?;
        // Stored and shown as given, but never unbounded or with controls.
        let clean = |v: &Option<String>, max: usize| {
            v.as_deref()
                .filter(|v| domain::text_problem(v, max).is_none())
                .map(str::to_string)
        };
        Some(Tracking {
            carrier: clean(&t.carrier, 100),
            number: clean(&t.tracking_number, 200),
            url: clean(&t.tracking_url, 2_000),
        })
    }
}

#[utoipa::path(post, path = "/webhooks/wms", tag = "webhooks",
    params(("webhook-id" = String, Header), ("webhook-timestamp" = String, Header, description = "Unix seconds; within 5 minutes of now"),
           ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, space-separated when several"),
           ("x-webhook-topic" = String, Header, description = "`order.shipped`, `order.shipment.tracking.updated`, `order.delivered`, `order.shipment.delivered`, `order.shipment.exception`, `order.shipment.on_hold`; others are acknowledged")),
    request_body(content = Object, description = "The warehouse's event; `reference_id` is the OMS order id"),
    responses((status = 200, description = "`status`: shipped, delivered, tracking_recorded, flagged, duplicate, ignored or dead_lettered"),
        (status = 401, description = "Missing, wrong or stale signature, or WMS webhooks not configured", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the warehouse's rate, or over the shared budget of unverified requests", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable, or (`order_not_ready`) the order is still being handed to the warehouse; the warehouse retries", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Handles a warehouse webhook.
pub async fn wms(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let metrics = state.metrics.clone();
    let verified = state
        .wms_webhook_key
        .as_ref()
        .is_some_and(|key| key.verifies(&headers, &body, SystemTime::now()));
    if !verified {
        metrics.wms_webhook(WebhookOutcome::Unauthorized);
        tracing::warn!("warehouse webhook with a missing, wrong or stale signature refused");
        state.limiter.check(LimitKey::Unauthenticated, None)?;
        return Err(ApiError::WebhookUnauthorized);
    }
    if let Err(limited) = state.limiter.check(LimitKey::Warehouse, None) {
        metrics.wms_webhook(WebhookOutcome::RateLimited);
        return Err(limited);
    }
    let topic = header(&headers, "x-webhook-topic")
        .unwrap_or_default()
        .to_string();
    let handled = process(&state, &body, &topic).await;
    metrics.wms_webhook(match &handled {
        Ok((_, outcome)) => *outcome,
        Err(_) => WebhookOutcome::Unavailable,
    });
    handled.map(|(response, _)| response)
}

async fn process(state: &AppState, body: &[u8], topic: &str) -> Handled {
    const HANDLED: [&str; 6] = [
        "order.shipped",
        "order.shipment.tracking.updated",
        "order.delivered",
        "order.shipment.delivered",
        "order.shipment.exception",
        "order.shipment.on_hold",
    ];
    if !HANDLED.contains(&topic) {
        tracing::info!(topic, "warehouse webhook topic not handled; acknowledged");
        return answer(
            "ignored",
            json!({ "topic": topic }),
            WebhookOutcome::Ignored,
        );
    }
    let event = match serde_json::from_slice::<EventDto>(body) {
        Ok(event) => event,
        Err(e) => {
            return dead_letter(state, topic, &format!("payload does not parse: {e}"), body).await;
        }
    };
    let Some(order_id) = event.reference().and_then(|r| Uuid::parse_str(r).ok()) else {
        return dead_letter(
            state,
            topic,
            "reference_id is missing or not an OMS order id",
            body,
        )
        .await;
    };
    let Some(status) = state.db.order_status(order_id).await? else {
        return dead_letter(state, topic, &format!("no order {order_id}"), body).await;
    };
    tracing::info!(order.id = %order_id, %status, topic, "warehouse event");
    if let Some(tracking) = event.tracking()
        && topic != "order.shipment.exception"
        && topic != "order.shipment.on_hold"
    {
        state.db.record_tracking(order_id, &tracking).await?;
    }
    let order = json!({ "orderId": order_id });
    match topic {
        "order.shipment.tracking.updated" => {
            answer("tracking_recorded", order, WebhookOutcome::Accepted)
        }
        "order.shipped" => move_to(state, order_id, status, OrderStatus::Shipped, topic).await,
        "order.delivered" | "order.shipment.delivered" => {
            if status == OrderStatus::FulfillmentRequested {
                // Events arrive out of order: the shipment was not reported
                // (yet), but a delivered parcel was shipped.
                if let Err(e) = change(state, order_id, OrderStatus::Shipped, topic).await? {
                    return Ok(e);
                }
            }
            let now = state.db.order_status(order_id).await?.unwrap_or(status);
            move_to(state, order_id, now, OrderStatus::Delivered, topic).await
        }
        // exception or on hold: the order stays as it is; someone must act.
        _ => {
            let kind = topic.replace("order.shipment.", "warehouse_");
            let message = format!("the warehouse reported {topic} for this order");
            state
                .db
                .transition_order(order_id, None, Some(&message), &[], Some(&kind))
                .await?;
            tracing::warn!(%kind, "the warehouse flagged an order");
            answer("flagged", order, WebhookOutcome::Flagged)
        }
    }
}

/// Moves the order to `target` unless it is there (or past it) already.
async fn move_to(
    state: &AppState,
    order_id: Uuid,
    status: OrderStatus,
    target: OrderStatus,
    topic: &str,
) -> Handled {
    let order = json!({ "orderId": order_id, "orderStatus": status });
    let reached = match target {
        OrderStatus::Shipped => matches!(status, OrderStatus::Shipped | OrderStatus::Delivered),
        _ => status == target,
    };
    if reached {
        return answer("duplicate", order, WebhookOutcome::Duplicate);
    }
    match change(state, order_id, target, topic).await? {
        Ok(()) => answer(
            if target == OrderStatus::Shipped {
                "shipped"
            } else {
                "delivered"
            },
            json!({ "orderId": order_id }),
            WebhookOutcome::Accepted,
        ),
        Err(answered) => Ok(answered),
    }
}

/// Asks the order's workflow for `to`. `Ok(Err(answer))` when the order's
/// status answers the event instead (it is final, or not at the warehouse).
async fn change(
    state: &AppState,
    order_id: Uuid,
    to: OrderStatus,
    topic: &str,
) -> Result<Result<(), ((StatusCode, Json<Value>), WebhookOutcome)>, ApiError> {
    let detail = state.db.order_detail(order_id).await?;
    let from = detail.summary.status;
    if !from.requestable_next().contains(&to) {
        return match from {
            OrderStatus::Received | OrderStatus::Reserved | OrderStatus::Compensating => {
                Err(ApiError::OrderNotReady { order_id })
            }
            // The warehouse ships what the OMS cancelled or failed: flag it.
            _ => {
                let message = format!("the warehouse reported {topic} for an order that is {from}");
                state
                    .db
                    .transition_order(
                        order_id,
                        None,
                        Some(&message),
                        &[],
                        Some("warehouse_status_conflict"),
                    )
                    .await?;
                tracing::warn!(order.id = %order_id, %from, topic, "warehouse event conflicts with the order's status; flagged");
                Ok(Err(answer(
                    "flagged",
                    json!({ "orderId": order_id, "orderStatus": from }),
                    WebhookOutcome::Flagged,
                )?))
            }
        };
    }
    let change = StatusChange {
        to,
        reason: Some(format!("reported by the warehouse ({topic})")),
    };
    match state
        .orchestrator
        .change_status(&detail.summary.workflow_id, change, OUTCOME_WAIT)
        .await
    {
        Ok(ChangeOutcome::Applied(_) | ChangeOutcome::InProgress) => Ok(Ok(())),
        // Another change is being applied, or the order moved meanwhile:
        // the warehouse retries and meets the order as it then is.
        Err(ChangeError::Refused(_) | ChangeError::Finished) => {
            Err(ApiError::OrderNotReady { order_id })
        }
        Err(ChangeError::Temporal(e)) => Err(e.into()),
    }
}

async fn dead_letter(state: &AppState, topic: &str, reason: &str, body: &[u8]) -> Handled {
    let id = state
        .db
        .dead_letter("wms", topic, None, reason, body)
        .await?;
    tracing::error!(
        dead_letter.id = id,
        reason,
        "warehouse webhook dead-lettered"
    );
    answer(
        "dead_lettered",
        json!({ "deadLetterId": id }),
        WebhookOutcome::DeadLettered,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WmsWebhookKey {
        WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).unwrap()
    }

    fn headers(id: &str, at: u64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", at.to_string().parse().unwrap());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn a_standard_webhooks_signature_verifies_and_nothing_else_does() {
        let key = key();
        let now = SystemTime::now();
        let at = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let body = br#"{"reference_id":"x"}"#;
        let good = key.sign("msg_1", at as i64, body);
        assert!(key.verifies(&headers("msg_1", at, &good), body, now));
        // Several signatures (a rotation): any one valid is enough.
        let both = format!("v1,AAAA {good}");
        assert!(key.verifies(&headers("msg_1", at, &both), body, now));
        // Another id, body or key, or a stale timestamp: refused.
        assert!(!key.verifies(&headers("msg_2", at, &good), body, now));
        assert!(!key.verifies(&headers("msg_1", at, &good), b"{}", now));
        let other = WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([8u8; 24]))).unwrap();
        assert!(!other.verifies(&headers("msg_1", at, &good), body, now));
        let old = at - 301;
        let stale = key.sign("msg_1", old as i64, body);
        assert!(!key.verifies(&headers("msg_1", old, &stale), body, now));
    }

    #[test]
    fn secrets_must_be_standard_webhooks_secrets() {
        assert!(WmsWebhookKey::parse("plain-secret").is_err());
        assert!(WmsWebhookKey::parse("whsec_not base64!").is_err());
        assert!(WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
    }
}
