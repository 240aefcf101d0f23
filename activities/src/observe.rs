//! What every activity attempt gets: a span naming the activity, its attempt
//! and the workflow (and order, where there is one), and a count and
//! duration in the activity metrics.

use std::{future::Future, time::Instant};

use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::Instrument;
use uuid::Uuid;

use crate::metrics::{ActivityMetrics, Outcome};

/// Runs one attempt inside its span, and counts and times it.
pub(crate) async fn observed<T>(
    metrics: &ActivityMetrics,
    ctx: &ActivityContext,
    order_id: Option<Uuid>,
    work: impl Future<Output = Result<T, ActivityError>>,
) -> Result<T, ActivityError> {
    let started = Instant::now();
    let result = work.instrument(span(ctx, order_id)).await;
    metrics.record(
        &ctx.info().activity_type,
        Outcome::of(&result),
        started.elapsed(),
    );
    result
}

fn span(ctx: &ActivityContext, order_id: Option<Uuid>) -> tracing::Span {
    let info = ctx.info();
    tracing::info_span!(
        "activity",
        activity.name = %info.activity_type,
        activity.attempt = info.attempt,
        order.id = order_id.map(tracing::field::display),
        workflow.id = info.workflow_id.as_deref().unwrap_or_default(),
    )
}
