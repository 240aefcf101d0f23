//! Prometheus metrics of the API process, served at `GET /metrics`.
//!
//! Each [`ApiMetrics`] owns its registry (no process-global one), so every
//! test's app counts only its own traffic. The series are listed in the
//! README ("Metrics").

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// How a signed-or-not webhook delivery ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A new order workflow was started (or the running one found).
    Accepted,
    /// The order's workflow had already finished; nothing was started.
    Duplicate,
    /// Another topic, or an order with nothing to ship; acknowledged.
    Ignored,
    /// Signed but unprocessable; stored for replay and acknowledged.
    DeadLettered,
    /// Unknown shop or bad signature.
    Unauthorized,
    /// Signed, but over the shop's rate; Shopify redelivers.
    RateLimited,
    /// A cancellation of an order the warehouse already shipped: nothing
    /// was released, the order was flagged for someone to follow up.
    Flagged,
    /// Temporal or Postgres was down; Shopify will redeliver.
    Unavailable,
}

impl WebhookOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::RateLimited => "rate_limited",
            Self::Flagged => "flagged",
            Self::DeadLettered => "dead_lettered",
            Self::Unauthorized => "unauthorized",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The API's series. Cheap to clone (handles to shared collectors).
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    webhooks: IntCounterVec,
    wms_webhooks: IntCounterVec,
    batch_size: prometheus::Histogram,
    batch_latency: prometheus::Histogram,
    batch_failures: prometheus::IntCounter,
    open_orders: prometheus::IntGaugeVec,
    oldest_unchanged: prometheus::GaugeVec,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiMetrics").finish_non_exhaustive()
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiMetrics {
    /// Registers every series in a fresh registry.
    ///
    /// # Panics
    /// Never in practice: the names are constants and registered once.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "oms_http_requests_total",
                "HTTP requests answered, by method, route template and status code.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "oms_http_request_duration_seconds",
                "Time from request to response head, by method and route template.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "oms_http_requests_in_flight",
            "Requests being handled right now.",
        )
        .expect("valid metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "oms_webhook_deliveries_total",
                "Shopify webhook deliveries, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let wms_webhooks = IntCounterVec::new(
            Opts::new(
                "oms_wms_webhook_deliveries_total",
                "Warehouse webhook deliveries, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let batch_size = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "oms_reserve_batch_size",
                "Reserve requests committed together in one transaction (group commit).",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
            ]),
        )
        .expect("valid metric");
        let batch_latency = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "oms_reserve_batch_duration_seconds",
                "Time one reserve batch's transaction took.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        let batch_failures = prometheus::IntCounter::new(
            "oms_reserve_batch_failures_total",
            "Reserve batches whose transaction failed (every request in it got a 503).",
        )
        .expect("valid metric");
        let open_orders = prometheus::IntGaugeVec::new(
            Opts::new(
                "oms_orders_open",
                "Orders in each status that is not final, counted when scraped.",
            ),
            &["status"],
        )
        .expect("valid metric");
        let oldest_unchanged = prometheus::GaugeVec::new(
            Opts::new(
                "oms_orders_oldest_unchanged_seconds",
                "Per status that is not final: how long the order unchanged longest has waited.",
            ),
            &["status"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(open_orders.clone()),
            Box::new(oldest_unchanged.clone()),
            Box::new(latency.clone()),
            Box::new(in_flight.clone()),
            Box::new(webhooks.clone()),
            Box::new(wms_webhooks.clone()),
            Box::new(batch_size.clone()),
            Box::new(batch_latency.clone()),
            Box::new(batch_failures.clone()),
        ] {
            registry
                .register(collector)
                .expect("each series registered once");
        }
        // Outcomes that have not happened yet still show as 0, so alerts on
        // rate() work from the first scrape.
        for outcome in [
            WebhookOutcome::Accepted,
            WebhookOutcome::Duplicate,
            WebhookOutcome::Ignored,
            WebhookOutcome::DeadLettered,
            WebhookOutcome::Unauthorized,
            WebhookOutcome::RateLimited,
            WebhookOutcome::Flagged,
            WebhookOutcome::Unavailable,
        ] {
            webhooks.with_label_values(&[outcome.label()]);
            wms_webhooks.with_label_values(&[outcome.label()]);
        }
        Self {
            registry,
            requests,
            latency,
            in_flight,
            webhooks,
            wms_webhooks,
            batch_size,
            batch_latency,
            batch_failures,
            open_orders,
            oldest_unchanged,
        }
    }

    /// Sets the order gauges from what the database says now; a status
    /// with no order shows 0.
    pub fn open_orders(&self, open: &[db::OpenOrders]) {
        for status in domain::OrderStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
        {
            let found = open.iter().find(|o| o.status == status);
            self.open_orders
                .with_label_values(&[status.as_str()])
                .set(found.map_or(0, |o| o.count));
            self.oldest_unchanged
                .with_label_values(&[status.as_str()])
                .set(found.map_or(0.0, |o| o.oldest_unchanged_secs));
        }
    }

    /// Counts one webhook delivery.
    pub fn webhook(&self, outcome: WebhookOutcome) {
        self.webhooks.with_label_values(&[outcome.label()]).inc();
    }

    /// Counts one warehouse webhook delivery.
    pub fn wms_webhook(&self, outcome: WebhookOutcome) {
        self.wms_webhooks
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// Records one reserve batch (the database's batch observer).
    pub fn reserve_batch(&self, size: usize, elapsed: Duration, committed: bool) {
        #[allow(clippy::cast_precision_loss)]
        self.batch_size.observe(size as f64);
        self.batch_latency.observe(elapsed.as_secs_f64());
        if !committed {
            self.batch_failures.inc();
        }
    }

    /// The registry in Prometheus' text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Middleware: counts and times every request by its route template (never
/// the raw path: ids would explode the series and may identify customers).
pub async fn track(State(metrics): State<ApiMetrics>, request: Request, next: Next) -> Response {
    // Both clones are cheap (a shared string, a standard method): nothing is
    // allocated per request on the hot path.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let method = method.as_str();
    let started = Instant::now();
    let in_flight = InFlight::enter(&metrics.in_flight);
    let response = next.run(request).await;
    drop(in_flight);
    metrics
        .latency
        .with_label_values(&[method, route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[method, route, response.status().as_str()])
        .inc();
    response
}

/// Holds one unit of the in-flight gauge; dropping it (also when the client
/// goes away and the request future is dropped) gives it back.
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
