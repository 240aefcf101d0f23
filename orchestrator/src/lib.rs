//! The Temporal client side of the OMS: connecting, registering search
//! attributes, starting order workflows exactly once, delivering status
//! changes as updates, and reading a workflow's view and memo.
//!
//! The API, the operator commands and the worker all reach Temporal through
//! here; the workflows themselves (crate `workflows`) never do I/O.

mod connection;
mod orchestrator;
mod orders;

pub use connection::{
    Cause, TemporalError, TemporalSettings, connect, connect_with_patience,
    ensure_search_attributes,
};
pub use orchestrator::Orchestrator;
pub use orders::{
    ChangeError, Started, change_status, order_memo, order_workflow_id, query_order, start_order,
};
