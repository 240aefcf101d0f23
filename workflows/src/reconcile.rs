//! Finding and settling orders whose workflow has ended too early.
// The workflow macros generate public items without doc comments.
#![allow(missing_docs)]

use std::time::Duration;

use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityOptions, RetryPolicy, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::contracts::{FindStranded, ReconcileInput, Repair, RepairOrder};

/// Pinned workflow type name.
pub const RECONCILE_WORKFLOW_TYPE: &str = "oms.ReconcileWorkflow";

/// An order's workflow is its one owner; when that workflow ends while the
/// order still holds units or is not final (an operator terminated it, it
/// failed on a bug, it timed out), nobody would ever release, ship or cancel
/// it. Started by a Temporal schedule, and by `oms-api orders repair` for
/// one order, this finds such orders and settles each: an order the
/// warehouse never took is released and FAILED (after the warehouse is
/// asked, like a failed submit); an order at the warehouse gets a new
/// workflow that owns it from where it stands.
#[workflow]
pub struct ReconcileWorkflow {
    input: ReconcileInput,
}

#[workflow_methods]
impl ReconcileWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ReconcileInput) -> Self {
        Self { input }
    }

    #[run(name = RECONCILE_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Vec<Repair>> {
        let input = ctx.state(|s| s.input.clone());
        let opts = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(1))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(60))
                    // The next scheduled run tries again.
                    .maximum_attempts(5)
                    .build(),
            )
            .build();
        let stranded = ctx
            .execute_activity(FindStranded, input, opts.clone())
            .await?;
        let mut repairs = Vec::new();
        for order in stranded {
            repairs.push(
                ctx.execute_activity(RepairOrder, order, opts.clone())
                    .await?,
            );
        }
        Ok(repairs)
    }
}
