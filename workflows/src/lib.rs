//! Temporal workflows of the OMS and the contracts of the activities they call.
//!
//! Workflow code must be deterministic and do no I/O: it only decides, and
//! activities (crate `activities`) act. This crate therefore depends on no
//! I/O crate (no sqlx, no reqwest, no Temporal client), so Cargo itself
//! refuses a workflow that tries. The activity *contracts* (pinned names and
//! serde types) live here too, so the worker implements exactly what the
//! workflow calls and the compiler checks that they match.

pub mod contracts;
mod order;
mod reconcile;
pub mod search;
mod shop_sync;

pub use order::{ORDER_WORKFLOW_TYPE, OrderView, OrderWorkflow, OrderWorkflowRun};
pub use reconcile::{RECONCILE_WORKFLOW_TYPE, ReconcileWorkflow};
pub use shop_sync::{
    DRIFT_REPAIR_WORKFLOW_TYPE, DriftRepairWorkflow, SHOP_SYNC_WORKFLOW_TYPE, ShopSyncWorkflow,
    shop_sync_workflow_id,
};
