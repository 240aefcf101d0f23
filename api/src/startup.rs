//! Building the API: its router, and the process that serves it.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::HeaderName,
    routing::{get, patch, post},
};
use db::{BatchReport, Db, DbError, DbHooks, PgPool};
use orchestrator::{Orchestrator, ShopSyncNudger};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa_scalar::Servable as _;

use crate::{
    api_keys::KeyStore, error::ApiError, limits::Limiter, metrics, metrics::ApiMetrics, routes,
    settings::Settings, state::AppState,
};

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database connection or migration failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes and middleware over `state`.
pub fn router(state: AppState, body_limit_bytes: usize) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        // Path only: query strings may carry customer data.
        // `api_key` (the key's name) is filled in once the key authenticates.
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id, api_key = tracing::field::Empty)
    })
    // Failures are logged once, where the error is turned into a response.
    .on_failure(());
    Router::new()
        .route("/product/{id}", get(routes::inventory::get_product))
        .route("/product/{id}/stock", patch(routes::inventory::set_stock))
        .route("/product/{id}/reserve", post(routes::inventory::reserve))
        .route(
            "/product/{id}/unreserve",
            post(routes::inventory::unreserve),
        )
        .route("/product/{id}/sold", post(routes::inventory::sold))
        .route("/webhooks/shopify", post(routes::webhooks::shopify))
        .route("/webhooks/wms", post(routes::webhooks::wms::wms))
        .route(
            "/orders",
            post(routes::orders::place).get(routes::orders::list),
        )
        .route("/orders/{id}", get(routes::orders::get))
        .route("/orders/{id}/status", patch(routes::orders::change_status))
        .route("/products", get(routes::inventory::list_products))
        .route("/channels", get(routes::channels::status))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi()) }),
        )
        .merge(utoipa_scalar::Scalar::with_url(
            "/docs",
            <crate::openapi::ApiDoc as utoipa::OpenApi>::openapi(),
        ))
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready))
        .route("/metrics", get(routes::health::metrics))
        // Every route above, through one table of who may call what.
        .route_layer(axum::middleware::from_fn_with_state(
            crate::access::AccessState {
                keys: state.keys.clone(),
                limiter: state.limiter.clone(),
            },
            crate::access::authorize,
        ))
        .fallback(
            |req: Request| async move { ApiError::RouteNotFound(req.uri().path().to_string()) },
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.limiter.clone(),
            crate::limits::bound_in_flight,
        ))
        // Outside the limiter, so throttled and shed requests are counted.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .with_state(state)
}

/// A bound, not yet serving, API server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    db: Db,
    sweep_interval: Duration,
    dead_letter_retention: Duration,
}

impl Application {
    /// Connects to Postgres (creating the database if needed), migrates, and
    /// binds the listen address.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = db::connect(&settings.database).await?;
        db::migrate(&pool).await?;
        Self::build_with_pool(settings, pool).await
    }

    /// Like [`Application::build`] on an existing, migrated pool (tests get
    /// a fresh database per test this way).
    pub async fn build_with_pool(settings: Settings, pool: PgPool) -> Result<Self, StartupError> {
        let metrics = ApiMetrics::new();
        let observed = metrics.clone();
        let orchestrator = Orchestrator::new(settings.temporal.clone());
        // Stock changed through this process: the shops' syncs are nudged,
        // coalesced, off the request path. Without shops there is no one to tell.
        let stock_changed = (!settings.shops.is_empty()).then(|| {
            let nudger = ShopSyncNudger::spawn(
                orchestrator.clone(),
                settings.shops.iter().map(|s| s.shop.to_string()).collect(),
                settings.channel_sync.policy.clone(),
            );
            Arc::new(move || nudger.stock_changed()) as db::StockChanged
        });
        let db = Db::with_hooks(
            pool,
            &settings.reserver,
            DbHooks {
                batch_observer: Some(Arc::new(move |batch: &BatchReport| {
                    observed.reserve_batch(batch.size, batch.elapsed, batch.committed);
                })),
                stock_changed,
            },
        );
        let state = AppState {
            keys: KeyStore::new(db.clone(), settings.api_key_refresh),
            wms_webhook_key: settings.wms_webhook_key.clone(),
            limiter: Limiter::new(settings.limits.clone()),
            db: db.clone(),
            orchestrator,
            shops: Arc::new(settings.shops.clone()),
            saga_policy: settings.saga_policy.clone(),
            payment_gate: Arc::new(settings.payment_gate.clone()),
            status_change_wait: settings.status_change_wait,
            temporal_ui_url: settings.temporal_ui_url.clone().into(),
            temporal_namespace: settings.temporal.namespace.clone().into(),
            metrics,
        };
        let router = router(state, settings.body_limit_bytes);
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: settings.listen_addr,
                source,
            })?;
        Ok(Self {
            listener,
            router,
            db,
            sweep_interval: settings.expiry_sweep_interval,
            dead_letter_retention: settings.dead_letter_retention,
        })
    }

    /// The bound port (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_expired(self.db.clone(), self.sweep_interval));
        let purger = tokio::spawn(purge_dead_letters(
            self.db.clone(),
            self.dead_letter_retention,
        ));
        tracing::info!(addr = ?self.listener.local_addr().ok(), "api listening");
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        purger.abort();
        result
    }
}

/// Periodically frees reservations past their `expires_at`.
async fn sweep_expired(db: Db, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Batches of 1,000 keep each transaction short; loop while full.
        loop {
            match db.expire_reservations(1_000).await {
                Ok(0) => break,
                Ok(n) => {
                    tracing::info!(expired = n, "expired reservations released");
                    if n < 1_000 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expiry sweep failed; will retry");
                    break;
                }
            }
        }
    }
}

/// Empties dead-lettered payloads past their retention, and forgets the
/// payments reported that long ago: at start-up, then hourly (retention is
/// counted in days; every API process may run it, both are idempotent).
async fn purge_dead_letters(db: Db, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match db.purge_dead_letter_payloads(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "dead-letter payloads past retention emptied"),
            Err(e) => tracing::warn!(error = %e, "purging dead-letter payloads failed; will retry"),
        }
        match db.purge_reported_payments(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "reported payments past retention forgotten"),
            Err(e) => tracing::warn!(error = %e, "purging reported payments failed; will retry"),
        }
    }
}
