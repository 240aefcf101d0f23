//! Starting and nudging the shops' syncs, and the drift-repair schedule.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use runtime::config::{ConfigError, var_or};
use temporalio_client::{
    Client, WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStartOptions,
    schedules::{
        CreateScheduleOptions, DeleteScheduleOptions, ScheduleAction, ScheduleError,
        ScheduleOverlapPolicy, ScheduleSpec,
    },
    tonic::Code,
};
use tokio::sync::Notify;
use workflows::{
    DriftRepairWorkflow, ShopSyncWorkflow,
    contracts::{DriftRepairInput, DriftReport, ShopSyncInput, ShopSyncPolicy},
    shop_sync_workflow_id,
};

use crate::{connection::TemporalError, orchestrator::Orchestrator};

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

/// Longest a nudge may take: a later change nudges again, and the idle poll
/// covers a lost one, so a slow Temporal must not hold the nudger up.
const NUDGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns "stock changed" into at most one nudge per shop per interval, on a
/// task of its own: the process that changed the stock makes no Temporal
/// call on its request path, and a burst of changes costs one nudge. A
/// nudge that is lost (Temporal down) is covered by the syncs' idle poll.
#[derive(Clone)]
pub struct ShopSyncNudger {
    wake: Arc<Notify>,
    changed: Arc<AtomicBool>,
}

impl ShopSyncNudger {
    /// Starts the nudging task for `shops` on the current Tokio runtime.
    pub fn spawn(orchestrator: Orchestrator, shops: Vec<String>, policy: ShopSyncPolicy) -> Self {
        let nudger = Self {
            wake: Arc::new(Notify::new()),
            changed: Arc::new(AtomicBool::new(false)),
        };
        let (wake, changed) = (nudger.wake.clone(), nudger.changed.clone());
        let interval = Duration::from_millis(policy.interval_millis.max(1));
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                while changed.swap(false, Ordering::AcqRel) {
                    for shop in &shops {
                        let started = std::time::Instant::now();
                        let nudged = tokio::time::timeout(
                            NUDGE_TIMEOUT,
                            orchestrator.nudge_shop_sync(shop, &policy),
                        )
                        .await;
                        match nudged {
                            Ok(Ok(())) => {
                                tracing::info!(shop, elapsed = ?started.elapsed(), "shop sync nudged");
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(shop, error = %e, "shop sync not nudged; its idle poll will find the change");
                            }
                            Err(_) => {
                                tracing::warn!(
                                    shop,
                                    "shop sync nudge timed out; its idle poll will find the change"
                                );
                            }
                        }
                    }
                    tokio::time::sleep(interval).await;
                }
            }
        });
        nudger
    }

    /// Stock changed: the shops' syncs should look. Cheap and never blocks.
    pub fn stock_changed(&self) {
        self.changed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The drift-repair schedule's id: one per task queue, so separate OMS
/// deployments sharing a namespace keep their own.
fn drift_schedule_id(task_queue: &str) -> String {
    format!("drift-repair:{task_queue}")
}

/// Makes the drift-repair schedule run every `every` (creating it, or
/// updating an existing one to this interval); `None` deletes it.
pub async fn ensure_drift_repair_schedule(
    client: &Client,
    task_queue: &str,
    every: Option<Duration>,
) -> Result<(), TemporalError> {
    let id = drift_schedule_id(task_queue);
    let Some(every) = every else {
        return match client
            .get_schedule_handle(id)
            .delete(DeleteScheduleOptions::default())
            .await
        {
            Err(ScheduleError::Rpc(s)) if s.code() != Code::NotFound => {
                Err(TemporalError::call("delete drift repair schedule", s))
            }
            _ => Ok(()),
        };
    };
    let action = || {
        ScheduleAction::start_workflow(
            DriftRepairWorkflow::run,
            DriftRepairInput {
                attempt_timeout_secs: 600,
            },
            task_queue,
            format!("drift-repair:{task_queue}"),
        )
    };
    let options = CreateScheduleOptions::builder()
        .action(action())
        .spec(ScheduleSpec::from_interval(every))
        // A run still going when the next is due: skip the next one.
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .build();
    match client.create_schedule(id.clone(), options).await {
        Ok(_) => Ok(()),
        Err(ScheduleError::Rpc(s)) if s.code() == Code::AlreadyExists => {
            let action = action();
            client
                .get_schedule_handle(id)
                .update(
                    move |u| {
                        u.set_spec(ScheduleSpec::from_interval(every))
                            .set_action(action);
                    },
                    Default::default(),
                )
                .await
                .map_err(|e| TemporalError::call("update drift repair schedule", e))
        }
        Err(e) => Err(TemporalError::call("create drift repair schedule", e)),
    }
}

/// Runs one drift repair now and waits for its reports (operators, tests).
pub async fn run_drift_repair(
    client: &Client,
    task_queue: &str,
) -> Result<Vec<DriftReport>, TemporalError> {
    let workflow_id = format!("drift-repair:{task_queue}:now:{}", uuid::Uuid::new_v4());
    let handle = client
        .start_workflow(
            DriftRepairWorkflow::run,
            DriftRepairInput {
                attempt_timeout_secs: 600,
            },
            WorkflowStartOptions::new(task_queue, workflow_id).build(),
        )
        .await
        .map_err(|e| TemporalError::call("start drift repair", e))?;
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .map_err(|e| TemporalError::call("drift repair result", e))
}
