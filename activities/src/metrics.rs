//! Activity outcome and duration series, recorded through the Temporal SDK's
//! meter so they are scraped from the same `/metrics` endpoint as the SDK's
//! own `temporal_*` series (the worker starts that exporter).

use std::{sync::Arc, time::Duration};

use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramDuration, MetricAttributes, MetricKeyValue, MetricParameters,
    NewAttributes,
};
use temporalio_sdk::activities::ActivityError;

/// How one activity attempt ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Returned a result.
    Completed,
    /// Failed; Temporal will retry it.
    Retryable,
    /// Failed for good (bad state, a 4xx): the workflow decides what next.
    NonRetryable,
    /// Cancelled (the workflow or a shutdown asked).
    Cancelled,
}

impl Outcome {
    /// Classifies an activity's result.
    pub fn of<T>(result: &Result<T, ActivityError>) -> Self {
        match result {
            Ok(_) => Self::Completed,
            Err(ActivityError::Application(failure)) if failure.is_non_retryable() => {
                Self::NonRetryable
            }
            Err(ActivityError::Cancelled { .. }) => Self::Cancelled,
            Err(_) => Self::Retryable,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Retryable => "retryable_failure",
            Self::NonRetryable => "non_retryable_failure",
            Self::Cancelled => "cancelled",
        }
    }
}

/// `oms_activity_executions_total{activity,outcome}` and
/// `oms_activity_duration_seconds{activity,outcome}`; inert when the worker
/// runs without a metrics exporter.
#[derive(Clone, Default)]
pub struct ActivityMetrics {
    inner: Option<Instruments>,
}

#[derive(Clone)]
struct Instruments {
    meter: Arc<dyn CoreMeter>,
    executions: Counter,
    duration: HistogramDuration,
}

impl std::fmt::Debug for ActivityMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityMetrics")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl ActivityMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        // The exporter appends `_total` to counters and `_seconds` to
        // duration histograms (see the worker's exporter options).
        let executions = meter.counter(
            MetricParameters::builder()
                .name("oms_activity_executions")
                .description("Activity attempts run by this worker, by activity and outcome.")
                .build(),
        );
        let duration = meter.histogram_duration(
            MetricParameters::builder()
                .name("oms_activity_duration")
                .description("Time one activity attempt took, by activity and outcome.")
                .build(),
        );
        Self {
            inner: Some(Instruments {
                meter,
                executions,
                duration,
            }),
        }
    }

    /// Records one attempt.
    pub fn record(&self, activity: &str, outcome: Outcome, elapsed: Duration) {
        let Some(i) = &self.inner else { return };
        let attributes = i.meter.new_attributes(NewAttributes::from([
            MetricKeyValue::new("activity", activity.to_string()),
            MetricKeyValue::new("outcome", outcome.label()),
        ]));
        i.executions.add(1, &attributes);
        i.duration.record(elapsed, &attributes);
    }
}

/// How a drain's write ended (the `outcome` label of
/// `oms_channel_sync_writes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The batch was set.
    Applied,
    /// The shop moved meanwhile; the stale items were read again.
    Stale,
    /// The shop refused items for good.
    Refused,
}

impl WriteOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Refused => "refused",
        }
    }
}

/// Channel-sync series, labelled by shop (a configured, bounded set):
/// `oms_channel_sync_lag_seconds` (from a change to the write that carried
/// it), `oms_channel_sync_writes_total{outcome}`,
/// `oms_channel_sync_quantities_total` (quantities carried by applied
/// writes), `oms_channel_sync_throttle_waits_total`, and
/// `oms_channel_drift_repaired_total`. Inert without an exporter.
#[derive(Clone, Default)]
pub struct SyncMetrics {
    inner: Option<SyncInstruments>,
}

#[derive(Clone)]
struct SyncInstruments {
    meter: Arc<dyn CoreMeter>,
    lag: HistogramDuration,
    writes: Counter,
    quantities: Counter,
    throttle_waits: Counter,
    drift: Counter,
}

impl std::fmt::Debug for SyncMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncMetrics")
            .field("enabled", &self.inner.is_some())
            .finish()
    }
}

impl SyncMetrics {
    /// Creates the instruments on `meter`.
    pub fn new(meter: Arc<dyn CoreMeter>) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter.counter(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        };
        let writes = counter(
            "oms_channel_sync_writes",
            "inventorySetQuantities calls per shop, by outcome.",
        );
        let quantities = counter(
            "oms_channel_sync_quantities",
            "Quantities set in shops by applied writes.",
        );
        let throttle_waits = counter(
            "oms_channel_sync_throttle_waits",
            "Drains that waited for a shop's cost bucket.",
        );
        let drift = counter(
            "oms_channel_drift_repaired",
            "Products a shop showed wrongly, found by drift repair and queued to be written back.",
        );
        let lag = meter.histogram_duration(
            MetricParameters::builder()
                .name("oms_channel_sync_lag")
                .description("Time from a change of stock to the write that carried it to a shop.")
                .build(),
        );
        Self {
            inner: Some(SyncInstruments {
                meter,
                lag,
                writes,
                quantities,
                throttle_waits,
                drift,
            }),
        }
    }

    fn shop(&self, shop: &str) -> Option<(&SyncInstruments, MetricAttributes)> {
        let i = self.inner.as_ref()?;
        let attributes = i
            .meter
            .new_attributes(NewAttributes::from([MetricKeyValue::new(
                "shop",
                shop.to_string(),
            )]));
        Some((i, attributes))
    }

    /// A write to `shop` ended with `outcome`, carrying `quantities`.
    pub fn write(&self, shop: &str, outcome: WriteOutcome, quantities: u64) {
        let Some(i) = &self.inner else { return };
        let attributes = i.meter.new_attributes(NewAttributes::from([
            MetricKeyValue::new("shop", shop.to_string()),
            MetricKeyValue::new("outcome", outcome.label()),
        ]));
        i.writes.add(1, &attributes);
        if outcome == WriteOutcome::Applied
            && let Some((i, attributes)) = self.shop(shop)
        {
            i.quantities.add(quantities, &attributes);
        }
    }

    /// A change reached `shop` after `lag`.
    pub fn lag(&self, shop: &str, lag: Duration) {
        if let Some((i, attributes)) = self.shop(shop) {
            i.lag.record(lag, &attributes);
        }
    }

    /// A drain of `shop` waited for its cost bucket.
    pub fn throttle_wait(&self, shop: &str) {
        if let Some((i, attributes)) = self.shop(shop) {
            i.throttle_waits.add(1, &attributes);
        }
    }

    /// Drift repair queued `n` products of `shop`.
    pub fn drift_repaired(&self, shop: &str, n: u64) {
        if let Some((i, attributes)) = self.shop(shop) {
            i.drift.add(n, &attributes);
        }
    }
}
