//! The periodic workflows: drift repair and the reconciliation of stranded
//! orders, each a Temporal schedule (idempotent by id, one per task queue
//! so separate deployments sharing a namespace keep their own), and a way to
//! run either once, now.

use std::time::Duration;

use temporalio_client::{
    Client, WorkflowGetResultOptions, WorkflowStartOptions,
    schedules::{
        CreateScheduleOptions, DeleteScheduleOptions, ScheduleAction, ScheduleError,
        ScheduleOverlapPolicy, ScheduleSpec,
    },
    tonic::Code,
};
use workflows::{
    DriftRepairWorkflow, ReconcileWorkflow,
    contracts::{DriftRepairInput, DriftReport, ReconcileInput, Repair},
};

use crate::connection::TemporalError;

/// Makes schedule `id` start `action()` every `every` (creating it, or
/// updating an existing one to this interval and action); `None` deletes it.
async fn ensure_schedule(
    client: &Client,
    id: String,
    every: Option<Duration>,
    action: impl Fn() -> ScheduleAction,
) -> Result<(), TemporalError> {
    let Some(every) = every else {
        return match client
            .get_schedule_handle(id)
            .delete(DeleteScheduleOptions::default())
            .await
        {
            Err(ScheduleError::Rpc(s)) if s.code() != Code::NotFound => {
                Err(TemporalError::call("delete schedule", s))
            }
            _ => Ok(()),
        };
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
                .map_err(|e| TemporalError::call("update schedule", e))
        }
        Err(e) => Err(TemporalError::call("create schedule", e)),
    }
}

fn drift_input() -> DriftRepairInput {
    DriftRepairInput {
        attempt_timeout_secs: 600,
    }
}

/// Makes the drift-repair schedule run every `every`; `None` deletes it.
pub async fn ensure_drift_repair_schedule(
    client: &Client,
    task_queue: &str,
    every: Option<Duration>,
) -> Result<(), TemporalError> {
    ensure_schedule(client, format!("drift-repair:{task_queue}"), every, || {
        ScheduleAction::start_workflow(
            DriftRepairWorkflow::run,
            drift_input(),
            task_queue,
            format!("drift-repair:{task_queue}"),
        )
    })
    .await
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
            drift_input(),
            WorkflowStartOptions::new(task_queue, workflow_id).build(),
        )
        .await
        .map_err(|e| TemporalError::call("start drift repair", e))?;
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .map_err(|e| TemporalError::call("drift repair result", e))
}

/// How the reconciliation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// How often; `None` for never.
    pub every: Option<Duration>,
    /// Orders changed more recently are left alone.
    pub quiet: Duration,
    /// Most orders looked at per run.
    pub limit: u32,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            every: Some(Duration::from_secs(300)),
            quiet: Duration::from_secs(600),
            limit: 500,
        }
    }
}

impl ReconcileSettings {
    /// Reads `OMS_RECONCILE_INTERVAL_SECS` (0 turns it off) and
    /// `OMS_RECONCILE_QUIET_SECS`.
    pub fn from_env() -> Result<Self, runtime::config::ConfigError> {
        use runtime::config::var_or;
        let d = Self::default();
        let every: u64 = var_or("OMS_RECONCILE_INTERVAL_SECS", 300)?;
        Ok(Self {
            every: (every > 0).then(|| Duration::from_secs(every)),
            quiet: runtime::config::secs_or("OMS_RECONCILE_QUIET_SECS", d.quiet)?,
            limit: d.limit,
        })
    }

    fn input(&self, order_id: Option<uuid::Uuid>) -> ReconcileInput {
        ReconcileInput {
            order_id,
            quiet_secs: self.quiet.as_secs(),
            limit: self.limit,
        }
    }
}

/// Makes the reconciliation schedule run as `settings` say.
pub async fn ensure_reconcile_schedule(
    client: &Client,
    task_queue: &str,
    settings: &ReconcileSettings,
) -> Result<(), TemporalError> {
    ensure_schedule(
        client,
        format!("reconcile:{task_queue}"),
        settings.every,
        || {
            ScheduleAction::start_workflow(
                ReconcileWorkflow::run,
                settings.input(None),
                task_queue,
                format!("reconcile:{task_queue}"),
            )
        },
    )
    .await
}

/// Reconciles now (one order, or every candidate) and waits for what was
/// done: `oms-api orders repair`, and tests.
pub async fn run_reconcile(
    client: &Client,
    task_queue: &str,
    settings: &ReconcileSettings,
    order_id: Option<uuid::Uuid>,
) -> Result<Vec<Repair>, TemporalError> {
    let workflow_id = format!("reconcile:{task_queue}:now:{}", uuid::Uuid::new_v4());
    let handle = client
        .start_workflow(
            ReconcileWorkflow::run,
            settings.input(order_id),
            WorkflowStartOptions::new(task_queue, workflow_id).build(),
        )
        .await
        .map_err(|e| TemporalError::call("start reconciliation", e))?;
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .map_err(|e| TemporalError::call("reconciliation result", e))
}
