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

use std::time::{Duration, SystemTime};

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use db::Tracking;
use domain::OrderStatus;
use orchestrator::{ChangeError, ChangeOutcome};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use workflows::contracts::StatusChange;

use super::{Handled, Processor, answer, flag};
use crate::{error::ApiError, extract::header, limits::LimitKey, metrics::WebhookOutcome};

/// How long a status move is waited for before the event is acknowledged
/// (the workflow carries it on either way).
const OUTCOME_WAIT: Duration = Duration::from_secs(5);

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
    responses((status = 200, description = "`status`: shipped, delivered, on_hold (an exception or hold before shipping: the order is ON_HOLD), tracking_recorded, flagged, duplicate, ignored or dead_lettered"),
        (status = 401, description = "Missing, wrong or stale signature, or WMS webhooks not configured", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the warehouse's rate, or over the shared budget of unverified requests", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable, or (`order_not_ready`) the order is still being handed to the warehouse; the warehouse retries", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Handles a warehouse webhook.
pub async fn wms(
    State(state): State<crate::state::AppState>,
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
    let handled = process(&Processor::of(&state), &body, &topic).await;
    metrics.wms_webhook(match &handled {
        Ok((_, outcome)) => *outcome,
        Err(_) => WebhookOutcome::Unavailable,
    });
    handled.map(|(response, _)| response)
}

/// Everything after a valid signature (also what a replay runs).
pub async fn process(state: &Processor, body: &[u8], topic: &str) -> Handled {
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
    let event = match crate::payload::parse::<EventDto>(topic, body) {
        Ok(event) => event,
        Err(reason) => return dead_letter(state, topic, &reason, body).await,
    };
    // A replaced warehouse order carries `<order id>~<revision>`.
    let Some(order_id) = event
        .reference()
        .and_then(|r| Uuid::parse_str(r.split('~').next().unwrap_or(r)).ok())
    else {
        return dead_letter(
            state,
            topic,
            "reference_id is missing or not an OMS order id",
            body,
        )
        .await;
    };
    let Some((status, workflow_id)) = state.db.order_workflow(order_id).await? else {
        return dead_letter(state, topic, &format!("no order {order_id}"), body).await;
    };
    let order = Order {
        id: order_id,
        workflow_id: &workflow_id,
    };
    tracing::info!(order.id = %order_id, %status, topic, "warehouse event");
    if let Some(tracking) = event.tracking()
        && topic != "order.shipment.exception"
        && topic != "order.shipment.on_hold"
    {
        state.db.record_tracking(order_id, &tracking).await?;
    }
    match topic {
        "order.shipment.tracking.updated" => {
            // Shopify shows what the warehouse says now: a shipped order's
            // fulfillment gets the new tracking through its workflow. Before
            // shipping, the shipment's report will carry it; after the
            // workflow has ended (delivered), it is only recorded.
            let reported = if matches!(status, OrderStatus::Shipped) {
                match state.orchestrator.report_tracking(&workflow_id).await {
                    Ok(()) => true,
                    Err(ChangeError::Refused(_) | ChangeError::Finished) => false,
                    Err(ChangeError::Temporal(e)) => return Err(e.into()),
                }
            } else {
                false
            };
            answer(
                "tracking_recorded",
                json!({ "orderId": order_id, "reportedToShop": reported }),
                WebhookOutcome::Accepted,
            )
        }
        "order.shipped" => move_to(state, order, status, OrderStatus::Shipped, topic).await,
        "order.delivered" | "order.shipment.delivered" => {
            if matches!(
                status,
                OrderStatus::FulfillmentRequested | OrderStatus::OnHold
            ) {
                // Events arrive out of order: the shipment was not reported
                // (yet), but a delivered parcel was shipped.
                if let Err(e) = change(state, order, status, OrderStatus::Shipped, topic).await? {
                    return Ok(e);
                }
            }
            let now = state.db.order_status(order_id).await?.unwrap_or(status);
            move_to(state, order, now, OrderStatus::Delivered, topic).await
        }
        // An exception or a hold before shipping stops the order (ON_HOLD,
        // a person is told); after shipping it is a carrier's problem the
        // order only records.
        _ => match status {
            OrderStatus::FulfillmentRequested => {
                move_to(state, order, status, OrderStatus::OnHold, topic).await
            }
            OrderStatus::OnHold => answer(
                "duplicate",
                json!({ "orderId": order_id, "orderStatus": status }),
                WebhookOutcome::Duplicate,
            ),
            OrderStatus::Received
            | OrderStatus::Reserved
            | OrderStatus::AwaitingPayment
            | OrderStatus::Compensating => Err(ApiError::OrderNotReady { order_id }),
            _ => {
                let kind = topic.replace("order.shipment.", "warehouse_");
                let message =
                    format!("the warehouse reported {topic} for an order that is {status}");
                flag(
                    state,
                    order_id,
                    &kind,
                    &message,
                    json!({ "orderId": order_id, "orderStatus": status }),
                )
                .await
            }
        },
    }
}

/// The order an event concerns.
#[derive(Clone, Copy)]
struct Order<'a> {
    id: Uuid,
    workflow_id: &'a str,
}

/// Moves the order to `target` unless it is there (or past it) already.
async fn move_to(
    state: &Processor,
    order: Order<'_>,
    status: OrderStatus,
    target: OrderStatus,
    topic: &str,
) -> Handled {
    let order_id = order.id;
    let answered = json!({ "orderId": order_id, "orderStatus": status });
    let reached = match target {
        OrderStatus::Shipped => matches!(status, OrderStatus::Shipped | OrderStatus::Delivered),
        _ => status == target,
    };
    if reached {
        return answer("duplicate", answered, WebhookOutcome::Duplicate);
    }
    match change(state, order, status, target, topic).await? {
        Ok(()) => answer(
            match target {
                OrderStatus::Shipped => "shipped",
                OrderStatus::OnHold => "on_hold",
                _ => "delivered",
            },
            json!({ "orderId": order_id }),
            WebhookOutcome::Accepted,
        ),
        Err(answered) => Ok(answered),
    }
}

/// Asks the order's workflow to move it from `from` to `to`.
/// `Ok(Err(answer))` when the order's status answers the event instead (it
/// is final, or not at the warehouse).
async fn change(
    state: &Processor,
    order: Order<'_>,
    from: OrderStatus,
    to: OrderStatus,
    topic: &str,
) -> Result<Result<(), ((StatusCode, Json<Value>), WebhookOutcome)>, ApiError> {
    let order_id = order.id;
    if !from.requestable_next().contains(&to) {
        return match from {
            OrderStatus::Received
            | OrderStatus::Reserved
            | OrderStatus::AwaitingPayment
            | OrderStatus::Compensating => Err(ApiError::OrderNotReady { order_id }),
            // The warehouse ships what the OMS cancelled or failed: flag it.
            _ => {
                let message = format!("the warehouse reported {topic} for an order that is {from}");
                let answered = json!({ "orderId": order_id, "orderStatus": from });
                Ok(Err(flag(
                    state,
                    order_id,
                    "warehouse_status_conflict",
                    &message,
                    answered,
                )
                .await?))
            }
        };
    }
    let change = StatusChange {
        to,
        reason: Some(format!("reported by the warehouse ({topic})")),
    };
    match state
        .orchestrator
        .change_status(order.workflow_id, change, OUTCOME_WAIT)
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

/// The warehouse's dead letters are filed under the sender `wms`.
async fn dead_letter(state: &Processor, topic: &str, reason: &str, body: &[u8]) -> Handled {
    super::dead_letter(state, "wms", topic, None, reason, body).await
}
