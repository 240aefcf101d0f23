//! Order workflows seen from outside: starting them once, changing their
//! status, reading their view and memo.

use std::time::Duration;

use db::{NewOrder, NewOrderLine};
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowQueryOptions,
    WorkflowStartOptions, errors::WorkflowStartError,
};
use temporalio_common::{MemoValues, search_attributes::SearchAttributes};
use workflows::{
    OrderView, OrderWorkflow,
    contracts::{OrderAdjustment, OrderInput, PaymentEvent, StatusChange},
    search,
};

use crate::connection::TemporalError;

/// The workflow id of an order: readable, and derived from the order's
/// identity so a redelivery maps to the same workflow.
pub fn order_workflow_id(input: &OrderInput) -> String {
    match &input.shop {
        Some(shop) => format!(
            "order:{}:{shop}:{}",
            input.channel.as_str(),
            input.external_id
        ),
        None => format!("order:{}:{}", input.channel.as_str(), input.order_id),
    }
}

/// The order as the database records it (customer data included: this
/// is where it lives, not in the workflow's input).
pub fn order_record<'a>(input: &'a OrderInput, workflow_id: &'a str) -> NewOrder<'a> {
    NewOrder {
        order_id: input.order_id,
        channel: input.channel,
        shop: input.shop.as_deref(),
        external_id: &input.external_id,
        name: input.name.as_deref(),
        currency: input.currency.as_deref(),
        placed_at: input.placed_at.as_deref(),
        lines: input
            .lines
            .iter()
            .map(|l| NewOrderLine {
                line_no: l.line_no,
                sku: &l.sku,
                quantity: l.quantity,
                unit_price: l.unit_price.as_deref(),
                external_line_id: l.external_line_id.as_deref(),
                title: l.title.as_deref(),
            })
            .collect(),
        shipping_address: input.shipping_address.as_ref(),
        request_id: input.request_id.as_deref(),
        workflow_id,
        awaits_payment: input.awaits_payment,
    }
}

/// How a start request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new run, or the already running one for this order.
    Running {
        /// Its workflow id.
        workflow_id: String,
    },
    /// The order's workflow already finished; nothing new was started.
    AlreadyFinished {
        /// Its workflow id.
        workflow_id: String,
    },
}

/// What makes an order's workflow findable: a memo (order id, channel, shop,
/// external id, request id) always, and indexed search attributes when the
/// namespace has them registered (`indexed`).
fn findable(options: &mut WorkflowStartOptions, input: &OrderInput, indexed: bool) {
    let mut memo = MemoValues::new();
    memo.insert(search::memo::ORDER_ID, input.order_id.to_string());
    memo.insert(search::memo::CHANNEL, input.channel.as_str().to_string());
    memo.insert(search::memo::EXTERNAL_ID, input.external_id.clone());
    if let Some(shop) = &input.shop {
        memo.insert(search::memo::SHOP, shop.clone());
    }
    if let Some(request_id) = &input.request_id {
        memo.insert(search::memo::REQUEST_ID, request_id.clone());
    }
    options.memo = Some(memo);
    if indexed {
        options.search_attributes = Some(SearchAttributes::new([
            search::ORDER_ID.value_set(input.order_id.to_string()),
            search::SHOP.value_set(input.shop.clone().unwrap_or_else(|| "api".to_string())),
            search::ORDER_STATUS.value_set(domain::OrderStatus::Received.to_string()),
        ]));
    }
}

/// Starts the order's workflow at most once: a duplicate start while it runs
/// gets the running one; after it closed, it is refused (the database's
/// uniqueness covers the time after Temporal's retention).
///
/// `indexed`: whether the namespace has the OMS search attributes (see
/// [`ensure_search_attributes`]).
pub async fn start_order(
    client: &Client,
    task_queue: &str,
    input: OrderInput,
    indexed: bool,
) -> Result<Started, TemporalError> {
    let workflow_id = order_workflow_id(&input);
    let mut options = WorkflowStartOptions::new(task_queue, workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    findable(&mut options, &input, indexed);
    match client
        .start_workflow(OrderWorkflow::run, input, options)
        .await
    {
        Ok(_) => Ok(Started::Running { workflow_id }),
        Err(WorkflowStartError::AlreadyStarted { .. }) => {
            Ok(Started::AlreadyFinished { workflow_id })
        }
        Err(e) => Err(TemporalError::call("start order workflow", e)),
    }
}

/// Starts a new workflow for an order whose previous workflow ended while
/// the warehouse had the order (`input.resume` says in which status), under
/// `workflow_id`. With the search attributes if the namespace takes them,
/// else with the memo only.
pub async fn start_resumed_order(
    client: &Client,
    task_queue: &str,
    input: OrderInput,
    workflow_id: &str,
) -> Result<(), TemporalError> {
    let mut last = None;
    for indexed in [true, false] {
        let mut options = WorkflowStartOptions::new(task_queue, workflow_id.to_string())
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        findable(&mut options, &input, indexed);
        match client
            .start_workflow(OrderWorkflow::run, input.clone(), options)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(TemporalError::call(
        "start resumed order workflow",
        last.map_or_else(|| "no attempt".into(), |e| Box::new(e) as crate::Cause),
    ))
}

/// How the workflow `workflow_id` stands: `None` while it runs, else how it
/// ended (`Completed`, `Terminated`, …, or `not found` once Temporal no
/// longer knows it).
pub async fn workflow_state(
    client: &Client,
    workflow_id: &str,
) -> Result<Option<String>, TemporalError> {
    use temporalio_client::{WorkflowExecutionStatus, errors::WorkflowInteractionError};
    match client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
    {
        Ok(d) => Ok(match d.status() {
            WorkflowExecutionStatus::Running => None,
            other => Some(format!("{other:?}")),
        }),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(Some("not found".into())),
        Err(e) => Err(TemporalError::call("describe order workflow", e)),
    }
}

/// Why a status change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The workflow refused it (illegal now, or another change in progress),
    /// or applying it failed (e.g. the warehouse would not cancel).
    #[error("{0}")]
    Refused(String),
    /// The order's workflow is closed (it finished in a final status).
    #[error("the order's workflow has finished")]
    Finished,
    /// Temporal could not be reached.
    #[error(transparent)]
    Temporal(#[from] TemporalError),
}

/// How a status change ended, as far as the caller waited.
#[derive(Debug, Clone)]
pub enum ChangeOutcome {
    /// Applied; the order's view afterwards.
    Applied(OrderView),
    /// Accepted by the workflow (durably: it will be applied, or fail with
    /// a reason in the order's history), but still going after `wait`, e.g.
    /// while the warehouse is slow to cancel.
    InProgress,
}

/// Delivers a status change to the order's workflow and waits up to `wait`
/// for its result. The workflow accepts or refuses the change at once (its
/// validator); applying it can take as long as the warehouse does, which an
/// HTTP client should not have to wait for.
pub async fn change_status(
    client: &Client,
    workflow_id: &str,
    change: StatusChange,
    wait: Duration,
) -> Result<ChangeOutcome, ChangeError> {
    update_order(
        client,
        workflow_id,
        OrderWorkflow::change_status,
        change,
        wait,
    )
    .await
}

/// Delivers a refund's or an edit's adjustment to the order's workflow and
/// waits up to `wait` for its result (see [`change_status`]).
pub async fn adjust_order(
    client: &Client,
    workflow_id: &str,
    adjustment: OrderAdjustment,
    wait: Duration,
) -> Result<ChangeOutcome, ChangeError> {
    update_order(
        client,
        workflow_id,
        OrderWorkflow::adjust_lines,
        adjustment,
        wait,
    )
    .await
}

/// Sends `update` to the order's workflow: accepted or refused at once by
/// its validator, then waited for up to `wait`.
async fn update_order<U>(
    client: &Client,
    workflow_id: &str,
    update: U,
    input: U::Input,
    wait: Duration,
) -> Result<ChangeOutcome, ChangeError>
where
    U: temporalio_common::UpdateDefinition<
            Workflow = workflows::OrderWorkflowRun,
            Output = OrderView,
        >,
    U::Input: Send,
{
    use temporalio_client::{RpcOptions, WorkflowStartUpdateOptions};
    let handle = client.get_workflow_handle::<OrderWorkflow>(workflow_id.to_string());
    let update = handle
        .start_update(update, input, WorkflowStartUpdateOptions::default())
        .await
        .map_err(change_error)?;
    match tokio::time::timeout(wait, update.get_result(RpcOptions::default())).await {
        Ok(result) => result.map(ChangeOutcome::Applied).map_err(change_error),
        Err(_) => Ok(ChangeOutcome::InProgress),
    }
}

/// Asks a shipped order's workflow to give its Shopify fulfillment the
/// tracking recorded last. Returns once the workflow took the request (it
/// reports on its own time; a failure becomes a notification on the order).
pub async fn report_tracking(client: &Client, workflow_id: &str) -> Result<(), ChangeError> {
    use temporalio_client::WorkflowStartUpdateOptions;
    client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .start_update(
            OrderWorkflow::report_tracking,
            (),
            WorkflowStartUpdateOptions::default(),
        )
        .await
        .map(|_| ())
        .map_err(change_error)
}

fn change_error(e: temporalio_client::errors::WorkflowUpdateError) -> ChangeError {
    use temporalio_client::errors::WorkflowUpdateError;
    match e {
        WorkflowUpdateError::Failed(failure) => ChangeError::Refused(failure.message.clone()),
        WorkflowUpdateError::NotFound(status) => {
            ChangeError::Temporal(TemporalError::call("update order workflow", status))
        }
        e => {
            // The server says so only in the message of a generic RPC error.
            let text = e.to_string();
            if text.contains("workflow execution already completed") || text.contains("NotFound") {
                ChangeError::Finished
            } else {
                ChangeError::Temporal(TemporalError::call("update order workflow", e))
            }
        }
    }
}

/// Tells the order's workflow what the shop reported of its payment.
/// `Ok(false)`: its workflow has finished, so nothing waits for it.
pub async fn report_payment(
    client: &Client,
    workflow_id: &str,
    event: PaymentEvent,
) -> Result<bool, TemporalError> {
    use temporalio_client::{WorkflowSignalOptions, errors::WorkflowInteractionError};
    match client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .signal(
            OrderWorkflow::payment,
            event,
            WorkflowSignalOptions::default(),
        )
        .await
    {
        Ok(()) => Ok(true),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
        Err(e) => Err(TemporalError::call("signal order workflow", e)),
    }
}

/// The memo of an order's workflow (keys in `workflows::search::memo`), for
/// operators' tools: which request started it, which order it is.
pub async fn order_memo(
    client: &Client,
    workflow_id: &str,
) -> Result<std::collections::BTreeMap<String, String>, TemporalError> {
    let description = client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .map_err(|e| TemporalError::call("describe order workflow", e))?;
    let memo = description.memo();
    let mut out = std::collections::BTreeMap::new();
    for key in [
        search::memo::ORDER_ID,
        search::memo::CHANNEL,
        search::memo::SHOP,
        search::memo::EXTERNAL_ID,
        search::memo::REQUEST_ID,
    ] {
        if let Some(value) = memo
            .get::<String>(key)
            .map_err(|e| TemporalError::call("read order workflow memo", e))?
        {
            out.insert(key.to_string(), value);
        }
    }
    Ok(out)
}

/// Asks a running or finished order workflow for its view.
pub async fn query_order(client: &Client, workflow_id: &str) -> Result<OrderView, TemporalError> {
    client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .query(OrderWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|e| TemporalError::call("query order workflow", e))
}
