//! Connecting to Temporal and starting order workflows.

use std::{str::FromStr, time::Duration};

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowStartOptions, errors::WorkflowStartError,
};
use workflows::{
    ChannelSyncInput, ChannelSyncWorkflow, OrderView, OrderWorkflow,
    contracts::{OrderInput, StatusChange},
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

/// Starts the order's workflow at most once: a duplicate start while it runs
/// gets the running one; after it closed, it is refused (the database's
/// uniqueness covers the time after Temporal's retention).
pub async fn start_order(
    client: &Client,
    task_queue: &str,
    input: OrderInput,
) -> Result<Started, TemporalError> {
    let workflow_id = order_workflow_id(&input);
    let options = WorkflowStartOptions::new(task_queue, workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
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

/// Asks a running or finished order workflow for its view.
pub async fn query_order(client: &Client, workflow_id: &str) -> Result<OrderView, TemporalError> {
    client
        .get_workflow_handle::<OrderWorkflow>(workflow_id.to_string())
        .query(OrderWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))
}
