//! The OMS HTTP API.
//!
//! [`Application`] wires settings, the database and the router together and
//! is what both the binary and the integration tests start.

pub mod access;
pub mod api_keys;
pub mod dead_letters;
pub mod error;
mod extract;
pub mod intake;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod pagination;
pub mod payload;
mod routes;
mod settings;
pub mod shopify_dto;
pub mod shopify_webhooks;
mod startup;
mod state;
mod wms_signature;

pub use error::ApiError;
pub use limits::{LimitKey, LimitSettings, Limiter, Rate};
pub use metrics::ApiMetrics;
pub use settings::Settings;
pub use startup::{Application, StartupError, router};
pub use state::AppState;
pub use wms_signature::WmsWebhookKey;
