//! Connecting to Temporal and starting order workflows.

use std::{str::FromStr, time::Duration};

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowStartOptions, errors::WorkflowStartError,
};
use temporalio_common::{
    MemoValues,
    protos::temporal::api::{
        enums::v1::IndexedValueType,
        operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
    },
    search_attributes::SearchAttributes,
};
use workflows::{
    ChannelSyncInput, ChannelSyncWorkflow, OrderView, OrderWorkflow,
    contracts::{OrderInput, StatusChange},
    search,
};

use crate::config::{ConfigError, var_or};

/// Where Temporal is and which task queue the order workflows use.
#[derive(Debug, Clone)]
pub struct TemporalSettings {
    /// Frontend gRPC address, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    /// Namespace.
    pub namespace: String,
    /// Task queue of the order workflows and their activities.
    pub task_queue: String,
}

impl TemporalSettings {
    /// Reads `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `OMS_TASK_QUEUE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            address: var_or("TEMPORAL_ADDRESS", "http://127.0.0.1:7233".to_string())?,
            namespace: var_or("TEMPORAL_NAMESPACE", "default".to_string())?,
            task_queue: var_or("OMS_TASK_QUEUE", "oms-orders".to_string())?,
        })
    }
}

/// Temporal could not be reached or refused a call.
#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    /// No connection (server down, wrong address).
    #[error("temporal is unreachable: {0}")]
    Unreachable(String),
    /// Any other failure of a call.
    #[error("temporal call failed: {0}")]
    Call(String),
}

/// Connects (one GetSystemInfo round trip proves the frontend answers).
pub async fn connect(settings: &TemporalSettings) -> Result<Client, TemporalError> {
    let url =
        Url::from_str(&settings.address).map_err(|e| TemporalError::Unreachable(e.to_string()))?;
    let connection = Connection::connect(ConnectionOptions::new(url).build())
        .await
        .map_err(|e| TemporalError::Unreachable(e.to_string()))?;
    Client::new(
        connection,
        ClientOptions::new(settings.namespace.clone()).build(),
    )
    .map_err(|e| TemporalError::Unreachable(e.to_string()))
}

/// Connects, retrying for up to `patience` (Temporal may still be starting).
pub async fn connect_with_patience(
    settings: &TemporalSettings,
    patience: Duration,
) -> Result<Client, TemporalError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(settings).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::info!(error = %e, "waiting for temporal");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

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

/// Registers the OMS's search attributes (all `Keyword`) in `namespace`
/// where missing. Safe to run from every process at every start: a
/// concurrent registration of the same name counts as success.
pub async fn ensure_search_attributes(
    client: &Client,
    namespace: &str,
) -> Result<(), TemporalError> {
    use temporalio_client::tonic::Request;
    let mut operator = client.connection().operator_service();
    let existing = operator
        .list_search_attributes(Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_string(),
        }))
        .await
        .map_err(|e| TemporalError::Call(format!("listing search attributes: {}", e.message())))?
        .into_inner();
    let missing: std::collections::HashMap<String, i32> = search::ALL
        .iter()
        .filter(|name| {
            !existing.custom_attributes.contains_key(**name)
                && !existing.system_attributes.contains_key(**name)
        })
        .map(|name| (name.to_string(), IndexedValueType::Keyword as i32))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.keys().cloned().collect();
    match operator
        .add_search_attributes(Request::new(AddSearchAttributesRequest {
            search_attributes: missing,
            namespace: namespace.to_string(),
        }))
        .await
    {
        Ok(_) => {
            tracing::info!(?names, "search attributes registered");
            Ok(())
        }
        Err(status) if status.code() == temporalio_client::tonic::Code::AlreadyExists => Ok(()),
        Err(status) => Err(TemporalError::Call(format!(
            "registering search attributes {names:?}: {}",
            status.message()
        ))),
    }
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
        Err(e) => Err(TemporalError::Call(e.to_string())),
    }
}

/// Starts a workflow that pushes the current level of `skus` to every store.
pub async fn start_channel_sync(
    client: &Client,
    task_queue: &str,
    input: ChannelSyncInput,
) -> Result<String, TemporalError> {
    let workflow_id = format!("sync:{}:{}", input.skus.join(","), input.reference);
    let options = WorkflowStartOptions::new(task_queue, workflow_id.clone()).build();
    client
        .start_workflow(ChannelSyncWorkflow::run, input, options)
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))?;
    Ok(workflow_id)
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

/// Delivers a status change to the order's workflow and waits for its result.
pub async fn change_status(
    client: &Client,
    workflow_id: &str,
    change: StatusChange,
) -> Result<OrderView, ChangeError> {
    use temporalio_client::{WorkflowExecuteUpdateOptions, errors::WorkflowUpdateError};
    let handle = client.get_workflow_handle::<OrderWorkflow>(workflow_id.to_string());
    match handle
        .execute_update(
            OrderWorkflow::change_status,
            change,
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
    {
        Ok(view) => Ok(view),
        Err(WorkflowUpdateError::Failed(failure)) => {
            Err(ChangeError::Refused(failure.message.clone()))
        }
        Err(WorkflowUpdateError::NotFound(status)) => Err(ChangeError::Temporal(
            TemporalError::Call(format!("not found: {}", status.message())),
        )),
        Err(e) => {
            let text = e.to_string();
            if text.contains("workflow execution already completed") || text.contains("NotFound") {
                Err(ChangeError::Finished)
            } else {
                Err(ChangeError::Temporal(TemporalError::Call(text)))
            }
        }
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
        .map_err(|e| TemporalError::Call(e.to_string()))?;
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
            .map_err(|e| TemporalError::Call(format!("memo {key}: {e}")))?
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
        .map_err(|e| TemporalError::Call(e.to_string()))
}
