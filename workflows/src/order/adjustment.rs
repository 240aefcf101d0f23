//! Refunds and edits before shipping: units come off (or are added to) the
//! order, and the warehouse's order is replaced.

use domain::OrderStatus;

use super::{
    OrderWorkflow, UpdateError, apply_change, db_opts, failure_text, notify, remote_opts, step,
};
use crate::contracts::{
    AdjustOrder, Adjustment, CancelFulfillment, FulfillmentAccepted, OrderAdjustment, StatusChange,
    SubmitFulfillment,
};
use temporalio_workflow::WorkflowContext;

/// Statuses in which units can come off an order: reserved and not shipped,
/// not being handed over.
pub(super) fn adjustable(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::AwaitingPayment | OrderStatus::FulfillmentRequested | OrderStatus::OnHold
    )
}

pub(super) async fn adjust(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    adjustment: OrderAdjustment,
) -> Result<(), UpdateError> {
    let (order_id, policy, status) =
        ctx.state(|s| (s.input.order_id, s.input.policy.clone(), s.view.status));
    let at_warehouse = status != OrderStatus::AwaitingPayment;
    if at_warehouse {
        // The warehouse's orders cannot be edited: cancelled first, so a
        // refusal (already picked) leaves everything as it was.
        if let Err(e) = ctx
            .execute_activity(
                CancelFulfillment,
                order_id,
                remote_opts(&policy, policy.fulfillment_deadline_secs),
            )
            .await
        {
            let reason = format!(
                "{} was not applied: the warehouse did not cancel its order ({})",
                adjustment.reason,
                failure_text(&e)
            );
            notify(
                ctx,
                order_id,
                &policy,
                reason.clone(),
                "adjustment_not_applied",
            )
            .await;
            return Err(reason.into());
        }
    }
    let key = adjustment.key.clone();
    let adjusted = ctx
        .execute_activity(
            AdjustOrder,
            Adjustment {
                order_id,
                adjustment,
                at_warehouse,
            },
            db_opts(&policy),
        )
        .await
        .map_err(|e| failure_text(&e))?;
    ctx.state_mut(|s| s.adjustments.push(key));
    step(ctx, format!("adjusted: {}", adjusted.summary));
    if adjusted.refused.is_some() {
        // The units an edit added are not in stock: the order stays as it
        // was (and goes back to the warehouse as it was).
        let reason = adjusted.summary.clone();
        notify(ctx, order_id, &policy, reason, "adjustment_not_applied").await;
    } else if adjusted.remaining_units == 0 {
        // Every unit came off: nothing is left to ship.
        return apply_change(
            ctx,
            StatusChange {
                to: OrderStatus::Cancelled,
                reason: Some(format!("nothing left to ship ({})", adjusted.summary)),
            },
        )
        .await;
    }
    if at_warehouse {
        let replaced = ctx
            .execute_activity(
                SubmitFulfillment,
                order_id,
                remote_opts(&policy, policy.fulfillment_deadline_secs),
            )
            .await;
        match replaced {
            Ok(FulfillmentAccepted { wms_order_id }) => {
                step(
                    ctx,
                    format!("warehouse order replaced: wms order {wms_order_id}"),
                );
                ctx.state_mut(|s| s.view.wms_order_id = Some(wms_order_id));
            }
            Err(e) => {
                // Its old order is cancelled and the new one refused: what
                // is left of the order cannot ship. Released, cancelled, and
                // a person is told.
                let reason = format!(
                    "the warehouse refused the adjusted order: {}",
                    failure_text(&e)
                );
                notify(ctx, order_id, &policy, reason.clone(), "adjustment_failed").await;
                return apply_change(
                    ctx,
                    StatusChange {
                        to: OrderStatus::Cancelled,
                        reason: Some(reason),
                    },
                )
                .await;
            }
        }
    }
    match adjusted.refused {
        Some(_) => Err(adjusted.summary.into()),
        None => Ok(()),
    }
}
