//! Adapters of the order-management system.
//!
//! [`store`] is the one place that talks to Postgres; the API and the
//! Temporal activities both go through it, so the rules that keep stock
//! correct (atomic conditional updates, single-use tokens) live once.

pub mod config;
pub mod http;
pub mod metrics;
pub mod saga;
pub mod shopify;
pub mod store;
pub mod telemetry;
pub mod temporal;
pub mod wms;
