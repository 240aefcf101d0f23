//! Temporal workflows of the OMS.
//!
//! Workflow code must be deterministic and do no I/O: it only decides, and
//! activities (crate `activities`) act. This crate therefore depends on no
//! I/O crate (no sqlx, no reqwest, no tokio net), so Cargo itself refuses a
//! workflow that tries. The order saga lands here with the Temporal worker.
