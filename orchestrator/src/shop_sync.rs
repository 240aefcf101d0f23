//! Starting and nudging one shop's sync, and the settings every shop's
//! sync runs with.

use std::time::Duration;

use runtime::config::{ConfigError, var_or};
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use workflows::{
    ShopSyncWorkflow,
    contracts::{ShopSyncInput, ShopSyncPolicy},
    shop_sync_workflow_id,
};

use crate::connection::TemporalError;

/// How the shops are kept in sync; the API and the worker read the same
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSyncSettings {
    /// The pace of each shop's sync.
    pub policy: ShopSyncPolicy,
    /// How often every shop is checked for drift; `None` for never.
    pub drift_repair_every: Option<Duration>,
}

impl Default for ChannelSyncSettings {
    fn default() -> Self {
        Self {
            policy: ShopSyncPolicy::default(),
            drift_repair_every: Some(Duration::from_secs(15 * 60)),
        }
    }
}

impl ChannelSyncSettings {
    /// Reads `OMS_CHANNEL_SYNC_INTERVAL_MILLIS`, `OMS_CHANNEL_SYNC_IDLE_POLL_SECS`,
    /// `OMS_CHANNEL_SYNC_BATCH`, `OMS_CHANNEL_SYNC_MAX_RETRY_MILLIS` and
    /// `OMS_DRIFT_REPAIR_INTERVAL_SECS` (0 turns drift repair off).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = ShopSyncPolicy::default();
        let batch: u32 = var_or("OMS_CHANNEL_SYNC_BATCH", d.batch_size)?;
        if !(1..=250).contains(&batch) {
            return Err(ConfigError {
                name: "OMS_CHANNEL_SYNC_BATCH".into(),
                value: batch.to_string(),
                reason: "must be from 1 to 250 (Shopify's limit per call)".into(),
            });
        }
        let drift: u64 = var_or("OMS_DRIFT_REPAIR_INTERVAL_SECS", 15 * 60)?;
        Ok(Self {
            policy: ShopSyncPolicy {
                interval_millis: var_or("OMS_CHANNEL_SYNC_INTERVAL_MILLIS", d.interval_millis)?,
                idle_poll_secs: var_or("OMS_CHANNEL_SYNC_IDLE_POLL_SECS", d.idle_poll_secs)?,
                batch_size: batch,
                max_retry_interval_millis: var_or(
                    "OMS_CHANNEL_SYNC_MAX_RETRY_MILLIS",
                    d.max_retry_interval_millis,
                )?,
                ..d
            },
            drift_repair_every: (drift > 0).then(|| Duration::from_secs(drift)),
        })
    }
}

/// Nudges `shop`'s sync, starting it if it does not run: one call, so a
/// sync that failed or was terminated comes back with the next change.
pub async fn nudge_shop_sync(
    client: &Client,
    task_queue: &str,
    shop: &str,
    policy: &ShopSyncPolicy,
) -> Result<(), TemporalError> {
    let options = WorkflowStartOptions::new(task_queue, shop_sync_workflow_id(task_queue, shop))
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    client
        .signal_with_start_workflow(
            ShopSyncWorkflow::run,
            ShopSyncInput {
                shop: shop.to_string(),
                policy: policy.clone(),
            },
            ShopSyncWorkflow::nudge,
            (),
            options,
        )
        .await
        .map(|_| ())
        .map_err(|e| TemporalError::call("nudge shop sync", e))
}
