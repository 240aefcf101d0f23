//! What every handler shares.

use std::sync::Arc;

use db::Db;
use orchestrator::Orchestrator;
use vendors::shopify::ShopSettings;
use workflows::contracts::SagaPolicy;

use crate::{api_keys::KeyStore, limits::Limiter, metrics::ApiMetrics};

/// Shared state of the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Starts and updates order workflows.
    pub orchestrator: Orchestrator,
    /// Shops whose webhooks are accepted.
    pub shops: Arc<Vec<ShopSettings>>,
    /// Given to each new saga.
    pub saga_policy: SagaPolicy,
    /// Which unpaid orders wait for their payment.
    pub payment_gate: Arc<domain::PaymentGate>,
    /// Base URL of the Temporal Web UI, for links to workflows.
    pub temporal_ui_url: Arc<str>,
    /// Temporal namespace, for those links.
    pub temporal_namespace: Arc<str>,
    /// The process's Prometheus series.
    pub metrics: ApiMetrics,
    /// The key of the warehouse's webhook signatures (none: refused).
    pub wms_webhook_key: Option<crate::wms_signature::WmsWebhookKey>,
    /// The live API keys.
    pub keys: KeyStore,
    /// Rate limits per verified identity.
    pub limiter: Limiter,
    /// How long a status change is waited for before answering 202.
    pub status_change_wait: std::time::Duration,
}

impl axum::extract::FromRef<AppState> for ApiMetrics {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}
