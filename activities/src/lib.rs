//! The Temporal activities of the OMS: the only place the workflows'
//! decisions touch Postgres, Shopify and the warehouse.
//!
//! Each activity takes its contract's input (crate `workflows`), calls the
//! database (crate `db`) or a vendor's client (crate `vendors`), and maps
//! what went wrong onto Temporal's retry classes in one place
//! ([`failure`]). Every activity is safe to run twice: Temporal re-runs an
//! activity whose completion it did not see, even if its work committed.

mod failure;
pub mod metrics;
mod observe;
mod order;
mod shop_sync;

pub use order::OrderActivities;
pub use shop_sync::ShopSyncActivities;
