//! Accepting an order, from any channel: record it, then start its workflow.

use db::{Db, DbError};
use orchestrator::{Orchestrator, Started, TemporalError, order_record, order_workflow_id};
use workflows::contracts::OrderInput;

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
    Ok(orchestrator
        .start_order(input.without_customer_data())
        .await?)
}
