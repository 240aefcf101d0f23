//! `orders/cancelled`: a cancellation in Shopify goes through the order's
//! workflow, like a cancellation through the orders API.
//!
//! The workflow decides: before the warehouse has the order it waits for the
//! hand-over to settle, then cancels at the warehouse and releases the
//! units (CANCELLED); a redelivery finds the order CANCELLED and changes
//! nothing. Shopify waits at most 5 s for an answer, so the handler waits a
//! little for the outcome and otherwise acknowledges: the workflow carries
//! the change on, and records on the order if it cannot apply it.

use std::time::Duration;

use axum::http::StatusCode;
use domain::{Channel, OrderStatus, ShopDomain, order_id_for};
use orchestrator::{ChangeError, ChangeOutcome};
use serde::Deserialize;
use serde_json::{Value, json};
use workflows::contracts::StatusChange;

use super::{Handled, Processor, answer, dead_letter, flag, parse_or_dead_letter};
use crate::{error::ApiError, metrics::WebhookOutcome};

/// How long the handler waits for the workflow to take the change, and then
/// for its outcome: together well within Shopify's 5 s.
const ACCEPT_WAIT: Duration = Duration::from_millis(3_500);
const OUTCOME_WAIT: Duration = Duration::from_secs(2);

/// What a cancelled order's payload must carry; the rest is the order
/// again, which the OMS already has.
#[derive(Debug, Deserialize)]
struct CancelledDto {
    id: u64,
    cancel_reason: Option<String>,
}

/// The notification an order gets when Shopify cancels it after the
/// warehouse shipped it: the units are gone, someone must follow up.
pub const CANCELLED_AFTER_SHIPPING: &str = "cancelled_after_shipping";

/// Handles a signed `orders/cancelled` delivery.
pub async fn handle(
    state: &Processor,
    body: &[u8],
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<&str>,
) -> Handled {
    let dto: CancelledDto = match parse_or_dead_letter(state, shop, topic, webhook_id, body).await {
        Ok(dto) => dto,
        Err(answer) => return answer,
    };
    // Shopify's reasons are a short enum (customer, fraud, inventory,
    // declined, staff, other): anything else is not echoed into history.
    let why = dto
        .cancel_reason
        .filter(|r| r.len() <= 40 && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or_else(|| "other".into());
    let order_id = order_id_for(Channel::Shopify, Some(shop), &dto.id.to_string());
    let Some((status, workflow_id)) = state.db.order_workflow(order_id).await? else {
        // A cancellation that overtook its order, or of an order the OMS
        // never accepted (it was dead-lettered): an operator decides.
        let reason = format!("no order with Shopify id {} from this shop", dto.id);
        if state.replaying.is_some() {
            return dead_letter(state, shop.as_str(), topic, webhook_id, &reason, body).await;
        }
        let id = state
            .db
            .dead_letter_cancellation(shop.as_str(), webhook_id, &reason, body, order_id)
            .await?;
        tracing::warn!(
            dead_letter.id = id,
            "cancellation of an unknown order dead-lettered"
        );
        return answer(
            "dead_lettered",
            json!({ "deadLetterId": id }),
            WebhookOutcome::DeadLettered,
        );
    };
    tracing::info!(order.id = %order_id, %status, reason = %why, "order cancelled in Shopify");
    if let Some(settled) = settled(state, order_id, status, &why).await? {
        return Ok(settled);
    }
    let change = StatusChange {
        to: OrderStatus::Cancelled,
        reason: Some(format!("cancelled in Shopify (reason: {why})")),
    };
    let asked = tokio::time::timeout(
        ACCEPT_WAIT,
        state
            .orchestrator
            .change_status(&workflow_id, change, OUTCOME_WAIT),
    )
    .await;
    let order = json!({ "orderId": order_id });
    match asked {
        Ok(Ok(ChangeOutcome::Applied(_))) => answer("cancelled", order, WebhookOutcome::Accepted),
        Ok(Ok(ChangeOutcome::InProgress)) => answer("cancelling", order, WebhookOutcome::Accepted),
        Ok(Err(ChangeError::Temporal(e))) => Err(e.into()),
        // Refused or finished meanwhile: what the order is now decides.
        Ok(Err(ChangeError::Refused(_) | ChangeError::Finished)) | Err(_) => {
            let now = state.db.order_status(order_id).await?.unwrap_or(status);
            match settled(state, order_id, now, &why).await? {
                Some(settled) => Ok(settled),
                // Still being allocated or handed over (the workflow takes
                // one change at a time): Shopify redelivers shortly, and
                // the order will have settled by then.
                None => Err(ApiError::OrderNotReady { order_id }),
            }
        }
    }
}

/// The answer for an order whose status already decides the cancellation,
/// or `None` when its workflow has to apply it.
async fn settled(
    state: &Processor,
    order_id: uuid::Uuid,
    status: OrderStatus,
    why: &str,
) -> Result<Option<((StatusCode, axum::Json<Value>), WebhookOutcome)>, ApiError> {
    let order = json!({ "orderId": order_id, "orderStatus": status });
    Ok(Some(match status {
        OrderStatus::Cancelled => answer("duplicate", order, WebhookOutcome::Duplicate)?,
        // Nothing is held and nothing was sent to the warehouse.
        OrderStatus::Rejected | OrderStatus::Failed => {
            answer("ignored", order, WebhookOutcome::Ignored)?
        }
        // Flagged once, however often Shopify redelivers.
        OrderStatus::Shipped | OrderStatus::Delivered
            if state
                .db
                .has_notification(order_id, CANCELLED_AFTER_SHIPPING)
                .await? =>
        {
            answer("flagged", order, WebhookOutcome::Flagged)?
        }
        OrderStatus::Shipped | OrderStatus::Delivered => {
            let message = format!(
                "cancelled in Shopify (reason: {why}) after the warehouse shipped it: nothing was released; arrange a return or refund"
            );
            flag(state, order_id, CANCELLED_AFTER_SHIPPING, &message, order).await?
        }
        OrderStatus::Received
        | OrderStatus::Reserved
        | OrderStatus::AwaitingPayment
        | OrderStatus::Compensating
        | OrderStatus::FulfillmentRequested
        | OrderStatus::OnHold => return Ok(None),
    }))
}
