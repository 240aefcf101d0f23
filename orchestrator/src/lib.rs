//! The Temporal client side of the OMS: connecting, registering search
//! attributes, starting order workflows exactly once, delivering status
//! changes as updates, reading a workflow's view and memo, and starting,
//! nudging and scheduling the shops' syncs.
//!
//! The API, the operator commands and the worker all reach Temporal through
//! here; the workflows themselves (crate `workflows`) never do I/O.

mod connection;
mod nudger;
mod orchestrator;
mod orders;
mod schedules;
mod shop_sync;

pub use connection::{
    Cause, TemporalError, TemporalSettings, connect, connect_with_patience,
    ensure_search_attributes,
};
pub use nudger::ShopSyncNudger;
pub use orchestrator::Orchestrator;
pub use orders::{
    ChangeError, ChangeOutcome, Started, change_status, order_memo, order_record,
    order_workflow_id, query_order, report_payment, report_tracking, start_order,
    start_resumed_order, workflow_state,
};
pub use schedules::{
    ReconcileSettings, ensure_drift_repair_schedule, ensure_reconcile_schedule, run_drift_repair,
    run_reconcile,
};
pub use shop_sync::{ChannelSyncSettings, nudge_shop_sync};
