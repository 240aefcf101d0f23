//! The API process's settings.

use std::{net::SocketAddr, time::Duration};

use db::{DatabaseSettings, ReserverSettings};
use domain::PaymentGate;
use orchestrator::{ChannelSyncSettings, TemporalSettings};
use runtime::config::{ConfigError, secs_or, var_or};
use vendors::shopify::{ShopSettings, shops_from_env};
use workflows::contracts::SagaPolicy;

use crate::{limits::LimitSettings, limits::Rate};

/// Everything the API process needs, built once at start-up (or by a test).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen; port 0 picks a free one.
    pub listen_addr: SocketAddr,
    /// Postgres.
    pub database: DatabaseSettings,
    /// Reserve batching.
    pub reserver: ReserverSettings,
    /// How often expired reservations are swept back to IN_STOCK.
    pub expiry_sweep_interval: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Temporal connection and task queue.
    pub temporal: TemporalSettings,
    /// Shopify shops whose webhooks are accepted.
    pub shops: Vec<ShopSettings>,
    /// Timeouts and retry pacing given to each new order saga.
    pub saga_policy: SagaPolicy,
    /// Which unpaid Shopify orders are reserved but go to the warehouse
    /// only once paid.
    pub payment_gate: PaymentGate,
    /// Base URL of the Temporal Web UI (for links in order responses).
    pub temporal_ui_url: String,
    /// Rate limits and the in-flight bound.
    pub limits: LimitSettings,
    /// The key of the warehouse's webhook signatures; without one
    /// `POST /webhooks/wms` refuses everything.
    pub wms_webhook_key: Option<crate::wms_signature::WmsWebhookKey>,
    /// How long dead-lettered payloads (customer data) are kept.
    pub dead_letter_retention: Duration,
    /// How often each process reloads the API keys: how long a revoked key
    /// may still work.
    pub api_key_refresh: Duration,
    /// The pace of the shops' syncs (the API nudges them).
    pub channel_sync: ChannelSyncSettings,
    /// How long `PATCH /orders/{id}/status` waits for the change to be
    /// applied before it answers 202 (the change goes on).
    pub status_change_wait: Duration,
}

impl Settings {
    /// Reads the settings from the environment (see the README for the list).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: var_or("OMS_API_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database: DatabaseSettings::from_env()?,
            reserver: ReserverSettings::from_env()?,
            expiry_sweep_interval: secs_or("OMS_EXPIRY_SWEEP_SECS", Duration::from_secs(30))?,
            body_limit_bytes: var_or("OMS_BODY_LIMIT_BYTES", 256 * 1024)?,
            temporal: TemporalSettings::from_env()?,
            shops: shops_from_env()?,
            saga_policy: saga_policy_from_env()?,
            payment_gate: var_or("OMS_PAYMENT_GATED_STATUSES", PaymentGate::default())?,
            temporal_ui_url: var_or("OMS_TEMPORAL_UI_URL", "http://localhost:8233".to_string())?,
            limits: LimitSettings {
                client: rate("OMS_RATE_LIMIT", 200.0, 400.0)?,
                webhook: rate("OMS_WEBHOOK_RATE_LIMIT", 100.0, 200.0)?,
                unauthenticated: rate("OMS_UNAUTHENTICATED_RATE_LIMIT", 20.0, 40.0)?,
                max_in_flight: var_or("OMS_MAX_IN_FLIGHT", 512)?,
            },
            wms_webhook_key: wms_webhook_key()?,
            dead_letter_retention: Duration::from_secs(
                86_400 * var_or::<u64>("OMS_DEAD_LETTER_RETENTION_DAYS", 30)?,
            ),
            api_key_refresh: secs_or("OMS_API_KEY_REFRESH_SECS", Duration::from_secs(5))?,
            channel_sync: ChannelSyncSettings::from_env()?,
            status_change_wait: secs_or("OMS_STATUS_CHANGE_WAIT_SECS", Duration::from_secs(10))?,
        })
    }
}

/// `OMS_WMS_WEBHOOK_SECRET`, a Standard Webhooks secret (`whsec_…`).
fn wms_webhook_key() -> Result<Option<crate::wms_signature::WmsWebhookKey>, ConfigError> {
    const NAME: &str = "OMS_WMS_WEBHOOK_SECRET";
    let Ok(secret) = std::env::var(NAME) else {
        return Ok(None);
    };
    if secret.is_empty() {
        return Ok(None);
    }
    runtime::config::check_secret(NAME, &secret, runtime::config::dev_secrets_allowed()?)?;
    crate::wms_signature::WmsWebhookKey::parse(&secret)
        .map(Some)
        .map_err(|reason| ConfigError {
            name: NAME.into(),
            value: "<redacted>".into(),
            reason,
        })
}

/// `<prefix>_RPS` and `<prefix>_BURST`, checked together.
fn rate(prefix: &str, per_second: f64, burst: f64) -> Result<Rate, ConfigError> {
    let rps_name = format!("{prefix}_RPS");
    let burst_name = format!("{prefix}_BURST");
    let per_second = var_or(&rps_name, per_second)?;
    let burst = var_or(&burst_name, burst)?;
    Rate::new(per_second, burst).map_err(|reason| ConfigError {
        name: format!("{rps_name}/{burst_name}"),
        value: format!("{per_second}/{burst}"),
        reason,
    })
}

/// `OMS_SAGA_*` variables over [`SagaPolicy::default`].
fn saga_policy_from_env() -> Result<SagaPolicy, ConfigError> {
    let d = SagaPolicy::default();
    Ok(SagaPolicy {
        attempt_timeout_secs: var_or("OMS_SAGA_ATTEMPT_TIMEOUT_SECS", d.attempt_timeout_secs)?,
        initial_retry_millis: var_or("OMS_SAGA_INITIAL_RETRY_MILLIS", d.initial_retry_millis)?,
        max_retry_interval_secs: var_or(
            "OMS_SAGA_MAX_RETRY_INTERVAL_SECS",
            d.max_retry_interval_secs,
        )?,
        stock_check_deadline_secs: var_or(
            "OMS_SAGA_STOCK_CHECK_DEADLINE_SECS",
            d.stock_check_deadline_secs,
        )?,
        fulfillment_deadline_secs: var_or(
            "OMS_SAGA_FULFILLMENT_DEADLINE_SECS",
            d.fulfillment_deadline_secs,
        )?,
        channel_sync_deadline_secs: var_or(
            "OMS_SAGA_CHANNEL_SYNC_DEADLINE_SECS",
            d.channel_sync_deadline_secs,
        )?,
        unpaid_expiry_secs: var_or("OMS_SAGA_UNPAID_EXPIRY_SECS", d.unpaid_expiry_secs)?,
    })
}
