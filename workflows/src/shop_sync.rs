//! Keeping every shop's stock true: one long-running sync per shop, and a
//! periodic drift repair.
// The workflow macros generate public items without doc comments.
#![allow(missing_docs)]

use std::{pin::pin, time::Duration};

use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, CancellableFuture, ContinueAsNewOptions, RetryPolicy, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult, join_all, select,
};

use crate::contracts::{
    CheckDrift, DrainInput, DrainOutcome, DriftInput, DriftRepairInput, DriftReport, ListShops,
    ShopSyncInput, ShopSyncPolicy, SyncShop,
};

/// Pinned workflow type names.
pub const SHOP_SYNC_WORKFLOW_TYPE: &str = "oms.ShopSyncWorkflow";
pub const DRIFT_REPAIR_WORKFLOW_TYPE: &str = "oms.DriftRepairWorkflow";

/// The id of `shop`'s sync: one per shop and task queue (an OMS
/// deployment), so nudges and starts find it.
pub fn shop_sync_workflow_id(task_queue: &str, shop: &str) -> String {
    format!("shop-sync:{task_queue}:{shop}")
}

/// One shop's sync. It sleeps until nudged (a change was queued for the
/// shop) or until its idle poll, then drains: one write of up to a batch of
/// pending levels. While more is pending it drains again after the
/// interval, so a burst of any size costs the shop at most one write per
/// interval. A shop that is down only holds up its own sync.
#[workflow]
pub struct ShopSyncWorkflow {
    input: ShopSyncInput,
    /// Something was queued since the last drain began.
    nudged: bool,
}

#[workflow_methods]
impl ShopSyncWorkflow {
    /// A new run drains at once: changes may have been queued while no run
    /// was listening (before the first start, or between runs).
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ShopSyncInput) -> Self {
        Self {
            input,
            nudged: true,
        }
    }

    /// Changes were queued for this shop.
    #[signal(name = "nudge")]
    pub fn nudge(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.nudged = true;
    }

    #[run(name = SHOP_SYNC_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let input = ctx.state(|s| s.input.clone());
        let policy = &input.policy;
        let interval = Duration::from_millis(policy.interval_millis.max(1));
        let idle_poll = Duration::from_secs(policy.idle_poll_secs.max(1));
        for _ in 0..policy.drains_per_run.max(1) {
            if !ctx.state(|s| s.nudged) {
                let mut idle = pin!(ctx.timer(idle_poll));
                let woken = select! {
                    r = ctx.wait_condition(|s: &Self| s.nudged) => { r?; true }
                    _ = idle.as_mut() => false,
                };
                if woken {
                    // A timer left running would still fire, and cost a task.
                    idle.cancel();
                }
            }
            ctx.state_mut(|s| s.nudged = false);
            let outcome = ctx
                .execute_activity(
                    SyncShop,
                    DrainInput {
                        shop: input.shop.clone(),
                        batch_size: policy.batch_size,
                    },
                    drain_opts(policy),
                )
                .await
                // Drains retry until they succeed; an error here is one a
                // retry cannot fix, so look again much later.
                .unwrap_or(DrainOutcome {
                    pending: true,
                    wait_millis: 60_000,
                    ..DrainOutcome::default()
                });
            if outcome.pending {
                ctx.state_mut(|s| s.nudged = true);
            }
            // At most one write per interval, and no sooner than the shop's
            // cost bucket allows.
            let wait = Duration::from_millis(outcome.wait_millis);
            if outcome.written > 0 || !wait.is_zero() {
                ctx.timer(wait.max(interval)).await;
            }
            if ctx.continue_as_new_suggested() {
                break;
            }
        }
        // A long history slows every replay; a new run starts with a short one.
        ctx.continue_as_new(input, ContinueAsNewOptions::default())?;
        Ok(())
    }
}

fn drain_opts(policy: &ShopSyncPolicy) -> ActivityOptions {
    let first = Duration::from_millis(policy.interval_millis.max(1));
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(
        policy.attempt_timeout_secs.max(1),
    ))
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(first)
            .backoff_coefficient(2.0)
            .maximum_interval(first.max(Duration::from_millis(policy.max_retry_interval_millis)))
            // A shop that is down is waited out: its levels are pushed the
            // moment it answers again.
            .maximum_attempts(0)
            .build(),
    )
    .build()
}

/// Compares what every shop shows with the OMS's levels and queues every
/// difference to be written back (a merchant's manual edit in a shop, a
/// write that was lost). Started by a Temporal schedule.
#[workflow]
pub struct DriftRepairWorkflow {
    input: DriftRepairInput,
}

#[workflow_methods]
impl DriftRepairWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: DriftRepairInput) -> Self {
        Self { input }
    }

    #[run(name = DRIFT_REPAIR_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Vec<DriftReport>> {
        let timeout = Duration::from_secs(ctx.state(|s| s.input.attempt_timeout_secs).max(60));
        let opts = ActivityOptions::with_start_to_close_timeout(timeout)
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(10))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(120))
                    // The next scheduled run checks again.
                    .maximum_attempts(3)
                    .build(),
            )
            .build();
        let shops = ctx.execute_activity(ListShops, (), opts.clone()).await?;
        // Shops are checked side by side: one slow shop delays no other.
        let checks = shops
            .into_iter()
            .map(|shop| ctx.execute_activity(CheckDrift, DriftInput { shop }, opts.clone()));
        let reports = join_all(checks).await;
        Ok(reports.into_iter().filter_map(Result::ok).collect())
    }
}
