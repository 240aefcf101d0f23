//! Activity outcome and duration series, recorded through the Temporal SDK's
//! meter so they are scraped from the same `/metrics` endpoint as the SDK's
//! own `temporal_*` series (the worker starts that exporter).

use std::{sync::Arc, time::Duration};

use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramDuration, MetricKeyValue, MetricParameters, NewAttributes,
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
