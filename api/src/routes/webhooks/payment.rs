//! `orders/paid` and `orders/updated`: the payment of an order that waits
//! for it (reserved, not yet handed to the warehouse) goes to its workflow.
//!
//! Captured: the order goes to the warehouse. Voided or expired: it is
//! cancelled and its units released. Still pending or authorized: nothing.
//! `orders/updated` arrives for every change of every order, so an order
//! that does not wait for its payment costs one read and no write.

use db::PaymentWait;
use domain::{Channel, FinancialStatus, OrderStatus, ShopDomain, order_id_for};
use serde::Deserialize;
use serde_json::json;

use super::{Handled, Processor, answer, parse_or_dead_letter};
use crate::{intake::payment_event, metrics::WebhookOutcome};

/// What the OMS reads of the order payload these topics carry.
#[derive(Debug, Deserialize)]
struct PaymentDto {
    id: u64,
    financial_status: Option<String>,
}

/// Handles a signed `orders/paid` or `orders/updated` delivery.
pub async fn handle(
    state: &Processor,
    body: &[u8],
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<&str>,
) -> Handled {
    let dto: PaymentDto = match parse_or_dead_letter(state, shop, topic, webhook_id, body).await {
        Ok(dto) => dto,
        Err(answer) => return answer,
    };
    let reported = dto
        .financial_status
        .as_deref()
        .and_then(|s| s.parse::<FinancialStatus>().ok());
    // `orders/paid` says it all by its topic; the field may lag behind.
    let status = match (topic, reported) {
        ("orders/paid", Some(s)) if s.is_captured() => s,
        ("orders/paid", _) => FinancialStatus::Paid,
        (_, Some(s)) => s,
        (_, None) => {
            return answer(
                "ignored",
                json!({ "reason": "no known financial_status" }),
                WebhookOutcome::Ignored,
            );
        }
    };
    let Some(event) = payment_event(status) else {
        return answer(
            "ignored",
            json!({ "reason": format!("the payment is still {status}") }),
            WebhookOutcome::Ignored,
        );
    };
    let order_id = order_id_for(Channel::Shopify, Some(shop), &dto.id.to_string());
    // Before its payment decided it, the order is still being allocated or
    // waits for it.
    let waits = |w: &PaymentWait| {
        w.awaits_payment
            && matches!(
                w.status,
                OrderStatus::Received | OrderStatus::Reserved | OrderStatus::AwaitingPayment
            )
    };
    let not_waiting = || {
        answer(
            "ignored",
            json!({ "orderId": order_id, "reason": "the order does not wait for its payment" }),
            WebhookOutcome::Ignored,
        )
    };
    if state
        .db
        .payment_wait(order_id)
        .await?
        .is_some_and(|w| !waits(&w))
    {
        return not_waiting();
    }
    // Recorded before the order is read again: an order arriving now finds
    // it when it starts (see `accept_order`), or is found here.
    state.db.record_payment(order_id, status).await?;
    let Some(wait) = state.db.payment_wait(order_id).await? else {
        tracing::info!(order.id = %order_id, %status, "payment of an order not received yet; kept for it");
        return answer(
            "recorded",
            json!({ "orderId": order_id }),
            WebhookOutcome::Accepted,
        );
    };
    if !waits(&wait) {
        return not_waiting();
    }
    let delivered = state
        .orchestrator
        .report_payment(&wait.workflow_id, event)
        .await?;
    tracing::info!(order.id = %order_id, workflow.id = %wait.workflow_id, %status, delivered, "payment passed to the order");
    if delivered {
        answer(
            "accepted",
            json!({ "orderId": order_id, "financialStatus": status.as_str() }),
            WebhookOutcome::Accepted,
        )
    } else {
        answer(
            "duplicate",
            json!({ "orderId": order_id }),
            WebhookOutcome::Duplicate,
        )
    }
}
