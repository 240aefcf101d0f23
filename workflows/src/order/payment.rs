//! Payment gating: a reserved order waits for its payment before it goes
//! to the warehouse.

use std::{pin::pin, time::Duration};

use domain::OrderStatus;
use temporalio_workflow::{CancellableFuture, WorkflowContext, WorkflowResult, select};

use super::{OrderWorkflow, apply_change, db_opts, notify, set_status, step};
use crate::contracts::{PaymentEvent, StatusChange, Transition, TransitionOrder};

/// Holds the reserved order until the shop reports it paid. Returns whether
/// it was: the hand-over to the warehouse goes on. Otherwise the order is
/// cancelled and its units released — its payment failed, did not come
/// within the policy's time, or a client cancelled it meanwhile.
pub(super) async fn await_payment(
    ctx: &mut WorkflowContext<OrderWorkflow>,
) -> WorkflowResult<bool> {
    let (order_id, policy) = ctx.state(|s| (s.input.order_id, s.input.policy.clone()));
    if ctx.state(|s| s.payment.is_none()) {
        ctx.execute_activity(
            TransitionOrder,
            Transition {
                order_id,
                to: Some(OrderStatus::AwaitingPayment),
                reason: Some("its payment is not captured yet".into()),
                problems: Vec::new(),
                notify: None,
            },
            db_opts(&policy),
        )
        .await?;
        set_status(ctx, OrderStatus::AwaitingPayment);
        step(ctx, "awaiting payment".into());
        let mut expiry = pin!(ctx.timer(Duration::from_secs(policy.unpaid_expiry_secs.max(1))));
        let decided = select! {
            r = ctx.wait_condition(|s: &OrderWorkflow| {
                (s.payment.is_some() && !s.busy) || s.view.status.is_final()
            }) => { r?; true }
            _ = expiry.as_mut() => false,
        };
        if decided {
            expiry.cancel();
        }
        // A cancellation being applied meanwhile finishes first.
        ctx.wait_condition(|s| !s.busy).await?;
        if ctx.state(|s| s.view.status.is_final()) {
            return Ok(false);
        }
    }
    let reason = match ctx.state(|s| s.payment.clone()) {
        Some(PaymentEvent::Paid) => {
            // RESERVED in this workflow at once: a cancellation arriving now
            // waits for the hand-over, as for any order.
            let was = ctx.state(|s| s.view.status);
            set_status(ctx, OrderStatus::Reserved);
            if was == OrderStatus::AwaitingPayment {
                ctx.execute_activity(
                    TransitionOrder,
                    Transition {
                        order_id,
                        to: Some(OrderStatus::Reserved),
                        reason: Some("paid".into()),
                        problems: Vec::new(),
                        notify: None,
                    },
                    db_opts(&policy),
                )
                .await?;
            }
            step(ctx, "paid".into());
            return Ok(true);
        }
        Some(PaymentEvent::Failed { reason }) => format!("its payment failed: {reason}"),
        // Nothing reported, and the run went on: the time ran out.
        None => format!(
            "not paid within {} hour(s)",
            policy.unpaid_expiry_secs.div_ceil(3600)
        ),
    };
    ctx.state_mut(|s| s.busy = true);
    let cancelled = apply_change(
        ctx,
        StatusChange {
            to: OrderStatus::Cancelled,
            reason: Some(reason),
        },
    )
    .await;
    if let Err(e) = cancelled {
        // Left awaiting payment, with a person told: a client may still
        // cancel it through the orders API.
        let reason = format!("the order could not be cancelled: {e}");
        notify(ctx, order_id, &policy, reason, "status_change_failed").await;
    }
    ctx.state_mut(|s| s.busy = false);
    Ok(false)
}
