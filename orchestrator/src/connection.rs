//! Connecting to Temporal, and what every process does once connected.

use std::{str::FromStr, time::Duration};

use runtime::config::{ConfigError, var_or};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
};
use workflows::search;

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

/// The cause of a Temporal failure, as the client library reported it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Temporal could not be reached or refused a call.
#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    /// No connection (server down, wrong address).
    #[error("temporal is unreachable at {address}: {source}")]
    Unreachable {
        /// The frontend address tried.
        address: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A call failed.
    #[error("temporal call `{operation}` failed: {source}")]
    Call {
        /// What was asked, e.g. `start order workflow`.
        operation: &'static str,
        /// Why.
        #[source]
        source: Cause,
    },
}

impl TemporalError {
    /// A failed `operation`.
    pub fn call(operation: &'static str, source: impl Into<Cause>) -> Self {
        Self::Call {
            operation,
            source: source.into(),
        }
    }
}

/// Connects (one GetSystemInfo round trip proves the frontend answers).
pub async fn connect(settings: &TemporalSettings) -> Result<Client, TemporalError> {
    let unreachable = |source: Cause| TemporalError::Unreachable {
        address: settings.address.clone(),
        source,
    };
    let url = Url::from_str(&settings.address).map_err(|e| unreachable(e.into()))?;
    let connection = Connection::connect(ConnectionOptions::new(url).build())
        .await
        .map_err(|e| unreachable(e.into()))?;
    Client::new(
        connection,
        ClientOptions::new(settings.namespace.clone()).build(),
    )
    .map_err(|e| unreachable(e.into()))
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
        .map_err(|e| TemporalError::call("list search attributes", e))?
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
        Err(status) => Err(TemporalError::call("register search attributes", status)),
    }
}
