//! `refunds/create` and `orders/edited`: units taken off an order before it
//! ships go through its workflow (the warehouse's order is replaced, the
//! units released and the shops re-synced). After shipping, units come
//! back only when the warehouse receives a return: the order is flagged
//! for a person instead. An edit that raises a line's quantity reserves the
//! added units (all or none: short stock leaves the order as it was and
//! flags it); new line items are not reserved (the edit's payload does not
//! say what they are): the order is flagged too.

use std::time::Duration;

use domain::{
    Channel, LineAddition, LineRemoval, OrderAdjustment, OrderStatus, ShopDomain, order_id_for,
};
use orchestrator::{ChangeError, ChangeOutcome};
use serde::Deserialize;
use serde_json::json;

use super::{Handled, Processor, answer, dead_letter, flag};
use crate::{error::ApiError, metrics::WebhookOutcome};

/// Within Shopify's 5 s, like a cancellation.
const WAIT: Duration = Duration::from_millis(3_500);

#[derive(Debug, Deserialize)]
struct RefundDto {
    id: u64,
    order_id: u64,
    #[serde(default)]
    refund_line_items: Vec<RefundLineDto>,
}

#[derive(Debug, Deserialize)]
struct RefundLineDto {
    line_item_id: u64,
    quantity: i64,
    restock_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EditedDto {
    order_edit: OrderEditDto,
}

#[derive(Debug, Deserialize)]
struct OrderEditDto {
    id: u64,
    order_id: u64,
    line_items: Option<EditedLinesDto>,
}

#[derive(Debug, Default, Deserialize)]
struct EditedLinesDto {
    #[serde(default)]
    additions: Vec<DeltaDto>,
    #[serde(default)]
    removals: Vec<DeltaDto>,
}

#[derive(Debug, Deserialize)]
struct DeltaDto {
    id: u64,
    delta: i64,
}

/// What a refund or an edit asks of an order, by Shopify's line ids.
struct Requested {
    key: String,
    reason: String,
    shopify_order_id: u64,
    /// (line item id, units, restock)
    removals: Vec<(u64, i64, bool)>,
    /// (line item id, units) an edit added.
    additions: Vec<(u64, i64)>,
}

fn parse(topic: &str, body: &[u8]) -> Result<Requested, String> {
    if topic == "refunds/create" {
        let dto: RefundDto = crate::payload::parse(topic, body)?;
        return Ok(Requested {
            key: format!("refund:{}", dto.id),
            reason: format!("refund {}", dto.id),
            shopify_order_id: dto.order_id,
            removals: dto
                .refund_line_items
                .into_iter()
                // `no_restock`: the merchant says the units are not fit to
                // sell; every other type puts them back on sale.
                .map(|l| {
                    let restock = l.restock_type.as_deref() != Some("no_restock");
                    (l.line_item_id, l.quantity, restock)
                })
                .collect(),
            additions: Vec::new(),
        });
    }
    let dto: EditedDto = crate::payload::parse(topic, body)?;
    let lines = dto.order_edit.line_items.unwrap_or_default();
    Ok(Requested {
        key: format!("edit:{}", dto.order_edit.id),
        reason: format!("order edit {}", dto.order_edit.id),
        shopify_order_id: dto.order_edit.order_id,
        removals: lines
            .removals
            .into_iter()
            .map(|d| (d.id, d.delta.abs(), true))
            .collect(),
        additions: lines
            .additions
            .into_iter()
            .map(|d| (d.id, d.delta.abs()))
            .collect(),
    })
}

/// Handles a signed `refunds/create` or `orders/edited` delivery.
pub async fn handle(
    state: &Processor,
    body: &[u8],
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<&str>,
) -> Handled {
    let requested = match parse(topic, body) {
        Ok(r) => r,
        Err(reason) => {
            return dead_letter(state, shop.as_str(), topic, webhook_id, &reason, body).await;
        }
    };
    let order_id = order_id_for(
        Channel::Shopify,
        Some(shop),
        &requested.shopify_order_id.to_string(),
    );
    let Some((status, workflow_id)) = state.db.order_workflow(order_id).await? else {
        let reason = format!(
            "no order with Shopify id {} from this shop",
            requested.shopify_order_id
        );
        return dead_letter(state, shop.as_str(), topic, webhook_id, &reason, body).await;
    };
    let order = json!({ "orderId": order_id, "orderStatus": status });
    if requested.removals.is_empty() && requested.additions.is_empty() {
        // A refund of shipping or of money only: no units change.
        return answer("ignored", order, WebhookOutcome::Ignored);
    }
    if state
        .db
        .adjustment_applied(order_id, &requested.key)
        .await?
    {
        return answer("duplicate", order, WebhookOutcome::Duplicate);
    }
    match status {
        OrderStatus::Shipped | OrderStatus::Delivered => {
            let message = format!(
                "{} after the warehouse shipped the order: no units were released; they come back when the warehouse receives a return",
                requested.reason
            );
            let kind = if topic == "refunds/create" {
                "refunded_after_shipping"
            } else {
                "edited_after_shipping"
            };
            if state.db.has_notification(order_id, kind).await? {
                return answer("flagged", order, WebhookOutcome::Flagged);
            }
            return flag(state, order_id, kind, &message, order).await;
        }
        OrderStatus::Cancelled | OrderStatus::Rejected | OrderStatus::Failed => {
            return answer("ignored", order, WebhookOutcome::Ignored);
        }
        OrderStatus::Received | OrderStatus::Reserved | OrderStatus::Compensating => {
            return Err(ApiError::OrderNotReady { order_id });
        }
        OrderStatus::AwaitingPayment | OrderStatus::FulfillmentRequested | OrderStatus::OnHold => {}
    }
    let lines = state.db.channel_lines(order_id).await?;
    let line_no = |line_item: &u64| {
        let id = line_item.to_string();
        lines
            .iter()
            .find(|l| l.external_line_id.as_deref() == Some(id.as_str()))
            .map(|l| l.line_no)
    };
    let units = |n: &i64| i32::try_from(*n).unwrap_or(i32::MAX).max(0);
    let removals: Vec<LineRemoval> = requested
        .removals
        .iter()
        .filter_map(|(line_item, n, restock)| {
            Some(LineRemoval {
                line_no: line_no(line_item)?,
                units: units(n),
                restock: *restock,
            })
        })
        .collect();
    let additions: Vec<LineAddition> = requested
        .additions
        .iter()
        .filter_map(|(line_item, n)| {
            Some(LineAddition {
                line_no: line_no(line_item)?,
                units: units(n),
            })
        })
        .collect();
    // Line items the order does not have: new products an edit added.
    let new_items: Vec<u64> = requested
        .additions
        .iter()
        .filter(|(line_item, _)| line_no(line_item).is_none())
        .map(|(line_item, _)| *line_item)
        .collect();
    let mut answered = if removals.is_empty() && additions.is_empty() {
        answer("ignored", order.clone(), WebhookOutcome::Ignored)
    } else {
        let adjustment = OrderAdjustment {
            key: requested.key.clone(),
            reason: requested.reason.clone(),
            removals,
            additions,
        };
        let asked = tokio::time::timeout(
            WAIT,
            state
                .orchestrator
                .adjust_order(&workflow_id, adjustment, WAIT / 2),
        )
        .await;
        match asked {
            Ok(Ok(ChangeOutcome::Applied(_))) => {
                answer("adjusted", order.clone(), WebhookOutcome::Accepted)
            }
            Ok(Ok(ChangeOutcome::InProgress)) | Err(_) => {
                answer("adjusting", order.clone(), WebhookOutcome::Accepted)
            }
            Ok(Err(ChangeError::Temporal(e))) => return Err(e.into()),
            // Another change is being applied, or the order moved: Shopify
            // redelivers and meets the order as it then is.
            // Refused for good (added units not in stock, or the warehouse
            // already picked the order): a notification asks a person.
            Ok(Err(ChangeError::Refused(_)))
                if state
                    .db
                    .adjustment_applied(order_id, &requested.key)
                    .await?
                    || state
                        .db
                        .has_notification(order_id, "adjustment_not_applied")
                        .await? =>
            {
                answer("flagged", order.clone(), WebhookOutcome::Flagged)
            }
            Ok(Err(ChangeError::Refused(_) | ChangeError::Finished)) => {
                return Err(ApiError::OrderNotReady { order_id });
            }
        }
    };
    if !new_items.is_empty() {
        let message = format!(
            "{} added new line items ({}) that were not reserved or sent to the warehouse: place them as a new order",
            requested.reason,
            new_items
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        answered = flag(state, order_id, "order_edit_needs_review", &message, order).await;
    }
    answered
}
