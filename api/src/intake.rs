//! Accepting an order, from any channel: record it, then start its workflow.

use db::{Db, DbError};
use orchestrator::{Orchestrator, Started, TemporalError, order_record, order_workflow_id};
use workflows::contracts::{OrderInput, PaymentEvent};

/// Records the order (customer data included) in Postgres, then starts its
/// workflow with an input that holds none: Temporal keeps histories, and
/// shows them in its Web UI, beyond our control and retention.
///
/// Recording first also means an accepted order cannot be lost between the
/// two steps: if Temporal is down the caller gets 503 (Shopify redelivers,
/// an API client retries with its key), and even without a retry the
/// reconciliation starts the workflow of a recorded order that has none.
pub async fn accept_order<E: From<DbError> + From<TemporalError>>(
    db: &Db,
    orchestrator: &Orchestrator,
    input: OrderInput,
) -> Result<Started, E> {
    let workflow_id = order_workflow_id(&input);
    db.record_order(&order_record(&input, &workflow_id)).await?;
    let (order_id, awaits_payment) = (input.order_id, input.awaits_payment);
    let started = orchestrator
        .start_order(input.without_customer_data())
        .await?;
    if awaits_payment {
        // The shop may have reported the payment before the order arrived
        // (webhooks come in any order). The payment handler records it
        // first and signals only orders it finds, so read after the start:
        // whichever runs second tells the workflow.
        pass_on_payment::<E>(db, orchestrator, order_id, &workflow_id).await?;
    }
    Ok(started)
}

/// Signals the order's workflow with the payment reported for it, if one
/// was and it decides the wait (captured, or never to be).
async fn pass_on_payment<E: From<DbError> + From<TemporalError>>(
    db: &Db,
    orchestrator: &Orchestrator,
    order_id: uuid::Uuid,
    workflow_id: &str,
) -> Result<(), E> {
    if let Some(event) = db.reported_payment(order_id).await?.and_then(payment_event) {
        orchestrator.report_payment(workflow_id, event).await?;
    }
    Ok(())
}

/// What a reported payment status means to an order waiting for it:
/// nothing while it is still pending or authorized.
pub fn payment_event(status: domain::FinancialStatus) -> Option<PaymentEvent> {
    if status.is_captured() {
        Some(PaymentEvent::Paid)
    } else if status.is_failed() {
        Some(PaymentEvent::Failed {
            reason: format!("Shopify reports it {status}"),
        })
    } else {
        None
    }
}
