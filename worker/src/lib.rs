//! The Temporal worker of the OMS, as a library so tests can run it in-process.
//!
//! Several workers may poll the same task queue: Temporal hands each task to
//! one of them, which is how the worker scales horizontally.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use activities::{
    OrderActivities, ShopSyncActivities,
    metrics::{ActivityMetrics, SyncMetrics},
};
use db::{DatabaseSettings, Db, DbHooks, PgPool, ReserverSettings};
use orchestrator::{
    ChannelSyncSettings, Orchestrator, ReconcileSettings, ShopSyncNudger, TemporalSettings,
};
use runtime::config::{ConfigError, secs_or, var_or};
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions, metrics::CoreMeter,
    start_prometheus_metric_exporter,
};
use temporalio_sdk::{
    Runtime, Worker, WorkerOptions,
    runtime::{
        RuntimeOptions,
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
    },
};
use vendors::{
    shopify::{DEFAULT_API_VERSION, ShopSettings, ShopifyClient, shops_from_env},
    wms::{WmsClient, WmsSettings},
};
use workflows::{DriftRepairWorkflow, OrderWorkflow, ReconcileWorkflow, ShopSyncWorkflow};

/// The cause of a set-up failure, as the library reported it.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the worker needs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Temporal connection and task queue.
    pub temporal: TemporalSettings,
    /// Postgres.
    pub database: DatabaseSettings,
    /// The warehouse.
    pub wms: WmsSettings,
    /// The Shopify shops to keep in sync.
    pub shops: Vec<ShopSettings>,
    /// Admin API version.
    pub shopify_api_version: String,
    /// Per-request timeout of Shopify calls.
    pub shopify_timeout: Duration,
    /// Most activities this worker runs at once (back-pressure on Postgres
    /// and the external APIs).
    pub max_concurrent_activities: usize,
    /// Most workflow tasks this worker runs at once.
    pub max_concurrent_workflow_tasks: usize,
    /// Where `GET /metrics` is served; `None` runs without metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// The pace of the shops' syncs and of drift repair.
    pub channel_sync: ChannelSyncSettings,
    /// How often stranded orders are looked for.
    pub reconcile: ReconcileSettings,
}

impl WorkerSettings {
    /// Reads the settings from the environment (see the README).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            temporal: TemporalSettings::from_env()?,
            database: DatabaseSettings::from_env()?,
            wms: WmsSettings::from_env()?,
            shops: shops_from_env()?,
            shopify_api_version: var_or(
                "OMS_SHOPIFY_API_VERSION",
                DEFAULT_API_VERSION.to_string(),
            )?,
            shopify_timeout: secs_or("OMS_SHOPIFY_TIMEOUT_SECS", Duration::from_secs(10))?,
            max_concurrent_activities: var_or("OMS_WORKER_MAX_ACTIVITIES", 50)?,
            max_concurrent_workflow_tasks: var_or("OMS_WORKER_MAX_WORKFLOW_TASKS", 50)?,
            metrics_addr: metrics_addr_from_env()?,
            channel_sync: ChannelSyncSettings::from_env()?,
            reconcile: ReconcileSettings::from_env()?,
        })
    }
}

/// `OMS_WORKER_METRICS_ADDR`: an address (default `127.0.0.1:9464`), or
/// `off` for none.
fn metrics_addr_from_env() -> Result<Option<SocketAddr>, ConfigError> {
    let off = std::env::var("OMS_WORKER_METRICS_ADDR")
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"));
    if off {
        return Ok(None);
    }
    var_or(
        "OMS_WORKER_METRICS_ADDR",
        SocketAddr::from(([127, 0, 0, 1], 9464)),
    )
    .map(Some)
}

/// The worker's Prometheus endpoint: the SDK's exporter (its `temporal_*`
/// series: task latencies, slots, polls, sticky cache) with our activity
/// series registered on the same meter.
pub struct WorkerMetrics {
    meter: Arc<dyn CoreMeter>,
    addr: SocketAddr,
    server: tokio::task::AbortHandle,
}

impl WorkerMetrics {
    /// Binds `addr` and serves `GET /metrics` there until dropped.
    pub fn start(addr: SocketAddr) -> Result<Self, WorkerError> {
        let options = PrometheusExporterOptions::builder()
            .socket_addr(addr)
            // Prometheus conventions: `_total` counters, seconds, unit suffixes.
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .unit_suffix(true)
            .build();
        let started =
            start_prometheus_metric_exporter(options).map_err(|e| WorkerError::Metrics {
                addr,
                source: e.into(),
            })?;
        Ok(Self {
            meter: started.meter,
            addr: started.bound_addr,
            server: started.abort_handle,
        })
    }

    /// The bound address (useful when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for WorkerMetrics {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Database connection or migration.
    #[error("database: {0}")]
    Db(#[from] db::DbError),
    /// Temporal connection.
    #[error(transparent)]
    Temporal(#[from] orchestrator::TemporalError),
    /// Building an HTTP client.
    #[error("http client: {0}")]
    Http(#[source] Cause),
    /// The SDK refused the set-up or stopped with an error.
    #[error("temporal worker: {0}")]
    Sdk(#[source] Cause),
    /// The metrics endpoint could not be started.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: Cause,
    },
}

/// Connects everything and runs the worker until `shutdown` resolves; then
/// stops polling, lets running activities finish, and returns.
///
/// Must be awaited on the calling task (the SDK's worker is not `Send`).
pub async fn run(
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let pool = db::connect(&settings.database).await?;
    db::migrate(&pool).await?;
    run_with_pool(settings, pool, shutdown).await
}

/// [`run`] over an existing, migrated pool (`settings.database` is unused).
pub async fn run_with_pool(
    settings: WorkerSettings,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let metrics = settings
        .metrics_addr
        .map(WorkerMetrics::start)
        .transpose()?;
    if let Some(m) = &metrics {
        tracing::info!(addr = %m.addr(), "worker metrics served at /metrics");
    }
    run_with_metrics(settings, pool, metrics, shutdown).await
}

/// [`run_with_pool`] with an already started metrics endpoint (or none);
/// `settings.metrics_addr` is unused.
pub async fn run_with_metrics(
    settings: WorkerSettings,
    pool: PgPool,
    metrics: Option<WorkerMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    // Every change of stock an activity commits nudges the shops' syncs.
    let shop_names: Vec<String> = settings.shops.iter().map(|s| s.shop.to_string()).collect();
    let nudger = ShopSyncNudger::spawn(
        Orchestrator::new(settings.temporal.clone()),
        shop_names,
        settings.channel_sync.policy.clone(),
    );
    let hook = nudger.clone();
    // The worker reserves whole orders, not single units: no batching queues.
    let db = Db::with_hooks(
        pool,
        &ReserverSettings {
            shards: 1,
            ..ReserverSettings::default()
        },
        DbHooks {
            batch_observer: None,
            stock_changed: Some(Arc::new(move || hook.stock_changed())),
        },
    );
    // New shops get a full first sync; shops no longer configured stop.
    let domains: Vec<_> = settings.shops.iter().map(|s| s.shop.clone()).collect();
    let fresh = db.register_shops(&domains).await?;
    if !fresh.is_empty() {
        tracing::info!(shops = ?fresh, "new shops: every product is queued for them");
    }
    let wms = WmsClient::new(settings.wms.clone()).map_err(|e| WorkerError::Http(e.into()))?;
    let shops = settings
        .shops
        .iter()
        .map(|s| {
            ShopifyClient::new(
                s.clone(),
                &settings.shopify_api_version,
                settings.shopify_timeout,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WorkerError::Http(e.into()))?;
    let client =
        orchestrator::connect_with_patience(&settings.temporal, Duration::from_secs(60)).await?;
    // Registered here too, so operators can search from the first order on;
    // the API checks again before it starts orders.
    if let Err(e) =
        orchestrator::ensure_search_attributes(&client, &settings.temporal.namespace).await
    {
        tracing::warn!(error = %e, "search attributes not registered");
    }
    orchestrator::ensure_drift_repair_schedule(
        &client,
        &settings.temporal.task_queue,
        settings.channel_sync.drift_repair_every,
    )
    .await?;
    orchestrator::ensure_reconcile_schedule(
        &client,
        &settings.temporal.task_queue,
        &settings.reconcile,
    )
    .await?;

    let telemetry = match &metrics {
        Some(m) => TelemetryOptions::builder().metrics(m.meter.clone()).build(),
        None => TelemetryOptions::default(),
    };
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| WorkerError::Sdk(e.into()))?;
    let runtime =
        Runtime::from_current_tokio(runtime_options).map_err(|e| WorkerError::Sdk(e.into()))?;
    let activity_metrics = metrics
        .as_ref()
        .map(|m| ActivityMetrics::new(m.meter.clone()))
        .unwrap_or_default();
    let sync_metrics = metrics
        .as_ref()
        .map(|m| SyncMetrics::new(m.meter.clone()))
        .unwrap_or_default();
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_workflow_tasks.max(2),
        ))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_activities.max(1),
        ))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(
            settings.max_concurrent_activities.max(1),
        ))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let options = WorkerOptions::new(settings.temporal.task_queue.clone())
        .tuner(tuner)
        .graceful_shutdown_period(Duration::from_secs(20))
        .register_workflow::<OrderWorkflow>()
        .map_err(|e| WorkerError::Sdk(e.into()))?
        .register_workflow::<ShopSyncWorkflow>()
        .map_err(|e| WorkerError::Sdk(e.into()))?
        .register_workflow::<DriftRepairWorkflow>()
        .map_err(|e| WorkerError::Sdk(e.into()))?
        .register_workflow::<ReconcileWorkflow>()
        .map_err(|e| WorkerError::Sdk(e.into()))?
        .register_activities(
            OrderActivities::new(db.clone(), wms)
                .with_shops(shops.clone())
                .with_metrics(activity_metrics.clone()),
        )
        .register_activities(
            ShopSyncActivities::new(db, shops).with_metrics(activity_metrics, sync_metrics),
        )
        .build();
    let mut worker =
        Worker::new(&runtime, client, options).map_err(|e| WorkerError::Sdk(e.into()))?;
    // Every shop's sync runs from now on (started, or found running).
    nudger.stock_changed();
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("worker shutting down: finishing running tasks");
        stop();
    });
    tracing::info!(task_queue = %settings.temporal.task_queue, shops = settings.shops.len(), "worker polling");
    worker.run().await.map_err(|e| WorkerError::Sdk(e.into()))
}
