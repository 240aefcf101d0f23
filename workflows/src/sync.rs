//! Pushing a product's level to the channels after its stock was set.
// The workflow macros generate public items without doc comments.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    WorkflowContext, WorkflowContextView, WorkflowResult, common::error::ApplicationFailure,
};
use uuid::Uuid;

use crate::{
    contracts::{SagaPolicy, SyncChannels, SyncInput, SyncReport},
    order::{failure_text, remote_opts},
};

/// Pinned workflow type name.
pub const CHANNEL_SYNC_WORKFLOW_TYPE: &str = "oms.ChannelSyncWorkflow";

/// Input of [`ChannelSyncWorkflow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSyncInput {
    /// Products whose IN_STOCK changed.
    pub skus: Vec<String>,
    /// Names this sync (Shopify idempotency keys and reference URIs derive from it).
    pub reference: Uuid,
    /// Timeouts and retry pacing.
    pub policy: SagaPolicy,
}

/// Sets the current IN_STOCK of some SKUs on every shop, with the same
/// retries as an order's sync. A shop's permanent refusal fails the
/// workflow, so it stands out in the Temporal UI.
#[workflow]
pub struct ChannelSyncWorkflow {
    input: ChannelSyncInput,
}

#[workflow_methods]
impl ChannelSyncWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ChannelSyncInput) -> Self {
        Self { input }
    }

    #[run(name = CHANNEL_SYNC_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SyncReport> {
        let input = ctx.state(|s| s.input.clone());
        let report = ctx
            .execute_activity(
                SyncChannels,
                SyncInput {
                    reference: input.reference,
                    skus: input.skus,
                },
                remote_opts(&input.policy, input.policy.channel_sync_deadline_secs),
            )
            .await
            .map_err(|e| sync_failed(failure_text(&e)))?;
        let problems: Vec<String> = report
            .shops
            .iter()
            .flat_map(|s| s.problems.iter().map(move |p| format!("{}: {p}", s.shop)))
            .collect();
        if !problems.is_empty() {
            return Err(sync_failed(problems.join("; ")).into());
        }
        Ok(report)
    }
}

fn sync_failed(reason: String) -> ApplicationFailure {
    ApplicationFailure::builder(format!("channel sync incomplete: {reason}"))
        .type_name("ChannelSyncIncomplete".to_string())
        .non_retryable(true)
        .build()
}
