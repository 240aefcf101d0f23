//! The order saga's activities: the only place the workflow's decisions
// The activity macros generate public items without doc comments.
#![allow(missing_docs)]
//! touch Postgres, Shopify and the WMS.

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Instant};

use domain::OrderStatus;
use futures::future::join_all;
use temporalio_macros::activities;
use temporalio_sdk::{
    ApplicationFailure,
    activities::{ActivityContext, ActivityError},
};
use tracing::Instrument;
use uuid::Uuid;
use workflows::contracts::{
    self, FulfillmentAccepted, LineProblem, LineQty, OrderInput, Recorded, ReserveOrderInput,
    ReserveOutcome, StoreSync, SyncInput, SyncReport, Transition, error_types,
};

use crate::{
    http::ClientError,
    metrics::{ActivityMetrics, Outcome},
    shopify::{Pushed, ShopifyClient},
    store::{Store, StoreError},
    wms::WmsClient,
};

/// State shared by the activities: the store and one client per external API.
pub struct SagaActivities {
    store: Store,
    wms: WmsClient,
    shops: Vec<ShopifyClient>,
    metrics: ActivityMetrics,
}

impl SagaActivities {
    /// Bundles what the activities need.
    pub fn new(store: Store, wms: WmsClient, shops: Vec<ShopifyClient>) -> Self {
        Self {
            store,
            wms,
            shops,
            metrics: ActivityMetrics::default(),
        }
    }

    /// Records every attempt's outcome and duration in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: ActivityMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs one attempt inside its span, and counts and times it.
    async fn observed<T>(
        &self,
        ctx: &ActivityContext,
        order_id: Option<Uuid>,
        work: impl Future<Output = Result<T, ActivityError>>,
    ) -> Result<T, ActivityError> {
        let started = Instant::now();
        let result = work.instrument(span(ctx, order_id)).await;
        self.metrics.record(
            &ctx.info().activity_type,
            Outcome::of(&result),
            started.elapsed(),
        );
        result
    }
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

/// Store failures: bad state is permanent, the rest (database down) is retried.
fn store_failure(e: StoreError) -> ActivityError {
    match e {
        StoreError::OrderNotFound(_)
        | StoreError::IllegalTransition { .. }
        | StoreError::Corrupt(_) => {
            tracing::error!(error = %e, "order is not in a state this step can handle");
            ActivityError::application(
                ApplicationFailure::builder(e.to_string())
                    .type_name(error_types::INVALID_STATE.to_string())
                    .non_retryable(true)
                    .build(),
            )
        }
        other => {
            tracing::warn!(error = %other, "database step failed; Temporal will retry");
            ActivityError::application(ApplicationFailure::builder(other.to_string()).build())
        }
    }
}

/// Client failures: 4xx is permanent (`permanent_type`), 429 is retried after
/// the server's delay, the rest is retried with the policy's backoff.
fn client_failure(e: ClientError, permanent_type: &str) -> ActivityError {
    let failure = match &e {
        ClientError::Permanent { .. } => {
            tracing::warn!(error = %e, "permanent failure");
            ApplicationFailure::builder(e.to_string())
                .type_name(permanent_type.to_string())
                .non_retryable(true)
                .build()
        }
        ClientError::RateLimited { retry_after, .. } => {
            tracing::info!(error = %e, "rate limited; retrying after the server's delay");
            ApplicationFailure::builder(e.to_string())
                .type_name("RateLimited".to_string())
                .maybe_next_retry_delay(*retry_after)
                .build()
        }
        ClientError::Transient { .. } => {
            tracing::warn!(error = %e, "transient failure; Temporal will retry");
            ApplicationFailure::builder(e.to_string())
                .type_name("Unavailable".to_string())
                .build()
        }
    };
    ActivityError::application(failure)
}

#[activities]
impl SagaActivities {
    /// Persists the order once.
    #[activity(definition = contracts::RecordOrder)]
    pub async fn record_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: OrderInput,
    ) -> Result<Recorded, ActivityError> {
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let work = async {
            let status = self
                .store
                .record_order(&input, &workflow_id)
                .await
                .map_err(store_failure)?;
            tracing::info!(status = %status, lines = input.lines.len(), "order recorded");
            Ok(Recorded { status })
        };
        self.observed(&ctx, Some(input.order_id), work).await
    }

    /// Compares each SKU's total quantity with what the warehouse can sell.
    #[activity(definition = contracts::CheckWmsStock)]
    pub async fn check_wms_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        lines: Vec<LineQty>,
    ) -> Result<Vec<LineProblem>, ActivityError> {
        let work = async {
            let mut wanted: BTreeMap<&str, (i64, Vec<&LineQty>)> = BTreeMap::new();
            // Lines without a SKU are the reservation step's to reject.
            for line in lines.iter().filter(|l| !l.sku.is_empty()) {
                let e = wanted.entry(line.sku.as_str()).or_default();
                e.0 += i64::from(line.quantity);
                e.1.push(line);
            }
            let mut problems = Vec::new();
            for (sku, (total, lines)) in wanted {
                let reason = match self
                    .wms
                    .sellable(sku)
                    .await
                    .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?
                {
                    None => Some("unknown to the warehouse".to_string()),
                    Some(n) if n < total => {
                        Some(format!("the warehouse can sell {n}, {total} requested"))
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    problems.extend(lines.into_iter().map(|l| LineProblem {
                        line_no: l.line_no,
                        sku: l.sku.clone(),
                        reason: reason.clone(),
                    }));
                }
            }
            problems.sort_by_key(|p| p.line_no);
            Ok(problems)
        };
        self.observed(&ctx, None, work).await
    }

    /// All lines or none, in one transaction.
    #[activity(definition = contracts::ReserveOrder)]
    pub async fn reserve_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReserveOrderInput,
    ) -> Result<ReserveOutcome, ActivityError> {
        let work = async {
            let outcome = self
                .store
                .reserve_order(input.order_id, &input.lines)
                .await
                .map_err(store_failure)?;
            match &outcome {
                ReserveOutcome::Reserved { skus } => {
                    tracing::info!(skus = skus.len(), "order reserved")
                }
                ReserveOutcome::Rejected { problems } => {
                    tracing::info!(problems = problems.len(), "order cannot be reserved")
                }
            }
            Ok(outcome)
        };
        self.observed(&ctx, Some(input.order_id), work).await
    }

    /// Pushes the current IN_STOCK of the SKUs to every store, the origin
    /// included: setting the absolute level everywhere also repairs drift.
    #[activity(definition = contracts::SyncChannels)]
    pub async fn sync_channels(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SyncInput,
    ) -> Result<SyncReport, ActivityError> {
        let work = async {
            // Read at attempt time: a retry pushes the newest level, not a stale one.
            let levels = self
                .store
                .in_stock_of(&input.skus)
                .await
                .map_err(store_failure)?;
            let per_store = join_all(
                self.shops
                    .iter()
                    .map(|shop| push_store(&self.store, shop, &levels, input.order_id)),
            )
            .await;
            let mut report = SyncReport::default();
            let mut retry: Option<ClientError> = None;
            for (sync, transient) in per_store {
                report.stores.push(sync);
                if transient.is_some() && retry.is_none() {
                    retry = transient;
                }
            }
            if let Some(e) = retry {
                return Err(client_failure(e, error_types::SHOPIFY_REJECTED));
            }
            tracing::info!(
                stores = report.stores.len(),
                skus = levels.len(),
                "channels synced"
            );
            Ok(report)
        };
        self.observed(&ctx, Some(input.order_id), work).await
    }

    /// Hands the order to the warehouse and records its acceptance.
    #[activity(definition = contracts::SubmitFulfillment)]
    pub async fn submit_fulfillment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<FulfillmentAccepted, ActivityError> {
        let work = async {
            let order = self
                .store
                .fulfillment_order(order_id)
                .await
                .map_err(store_failure)?;
            if let (OrderStatus::FulfillmentRequested, Some(id)) =
                (order.status, &order.wms_order_id)
            {
                return Ok(FulfillmentAccepted {
                    wms_order_id: id.clone(),
                });
            }
            if order.status != OrderStatus::Reserved {
                return Err(store_failure(StoreError::IllegalTransition {
                    from: order.status,
                    to: OrderStatus::FulfillmentRequested,
                }));
            }
            let wms_order_id = self
                .wms
                .create_order(&order)
                .await
                .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?;
            self.store
                .mark_fulfillment_requested(order_id, &wms_order_id)
                .await
                .map_err(store_failure)?;
            tracing::info!(wms.order_id = %wms_order_id, "fulfillment requested");
            Ok(FulfillmentAccepted { wms_order_id })
        };
        self.observed(&ctx, Some(order_id), work).await
    }

    /// Compensation: gives the order's reserved units back.
    #[activity(definition = contracts::ReleaseOrder)]
    pub async fn release_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<Vec<String>, ActivityError> {
        let work = async {
            let skus = self
                .store
                .release_order(order_id)
                .await
                .map_err(store_failure)?;
            tracing::info!(skus = skus.len(), "reservations released");
            Ok(skus)
        };
        self.observed(&ctx, Some(order_id), work).await
    }

    /// The warehouse shipped: reserved units become SOLD.
    #[activity(definition = contracts::SellOrder)]
    pub async fn sell_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<(), ActivityError> {
        let work = async {
            self.store
                .sell_order(order_id, None)
                .await
                .map_err(store_failure)?;
            tracing::info!("order shipped; reserved units sold");
            Ok(())
        };
        self.observed(&ctx, Some(order_id), work).await
    }

    /// Cancels the warehouse order, if the warehouse has one.
    #[activity(definition = contracts::CancelFulfillment)]
    pub async fn cancel_fulfillment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<(), ActivityError> {
        let work = async {
            let order = self
                .store
                .fulfillment_order(order_id)
                .await
                .map_err(store_failure)?;
            if let Some(wms_order_id) = &order.wms_order_id {
                self.wms
                    .cancel_order(wms_order_id)
                    .await
                    .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?;
                tracing::info!(wms.order_id = %wms_order_id, "warehouse order cancelled");
            }
            Ok(())
        };
        self.observed(&ctx, Some(order_id), work).await
    }

    /// Status move, history and notification.
    #[activity(definition = contracts::TransitionOrder)]
    pub async fn transition_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        t: Transition,
    ) -> Result<(), ActivityError> {
        let work = async {
            self.store
                .transition_order(t.order_id, t.to, t.reason.as_deref(), t.notify.as_deref())
                .await
                .map_err(store_failure)
        };
        self.observed(&ctx, Some(t.order_id), work).await
    }
}

/// Pushes every level to one store. Permanent problems are reported in the
/// result (retrying cannot fix them); the first transient one is returned
/// so the activity is retried.
async fn push_store(
    store: &Store,
    shop: &ShopifyClient,
    levels: &[(String, i32)],
    order_id: Uuid,
) -> (StoreSync, Option<ClientError>) {
    let mut sync = StoreSync {
        shop: shop.shop().to_string(),
        pushed: Vec::new(),
        problems: Vec::new(),
    };
    for (sku, level) in levels {
        match push_until_current(store, shop, sku, *level, order_id).await {
            Ok(Some(pushed)) => sync.pushed.push((sku.clone(), pushed)),
            Ok(None) => {}
            Err(e @ ClientError::Permanent { .. }) => sync.problems.push(e.to_string()),
            Err(e) => return (sync, Some(e)),
        }
    }
    (sync, None)
}

/// Pushes `level`, then checks that it is still Postgres' level, and pushes
/// again while it is not. Two syncs of one SKU can overlap (an order's sync
/// and its cancellation's, or two orders' on two workers): the compare-and-set
/// only protects the store's value, not the freshness of ours, so the older
/// level could land last. Whoever writes last then sees the newer level and
/// writes it, so the store converges on Postgres. Returns the level left in
/// the store, or `None` when the store does not sell the SKU.
async fn push_until_current(
    store: &Store,
    shop: &ShopifyClient,
    sku: &str,
    mut level: i32,
    order_id: Uuid,
) -> Result<Option<i32>, ClientError> {
    for _ in 0..5 {
        match shop.push_level(sku, level, order_id).await? {
            Pushed::NotSold => return Ok(None),
            Pushed::Set | Pushed::AlreadyThere => {}
        }
        let now = store
            .in_stock_of(&[sku.to_string()])
            .await
            .map_err(|e| ClientError::Transient {
                service: "postgres",
                message: e.to_string(),
            })?
            .first()
            .map_or(level, |(_, n)| *n);
        if now == level {
            return Ok(Some(level));
        }
        level = now;
    }
    Err(ClientError::Transient {
        service: "postgres",
        message: format!("the level of {sku} kept changing during channel sync"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn failure(e: ActivityError) -> Box<ApplicationFailure> {
        match e {
            ActivityError::Application(f) => f,
            other => panic!("expected an application failure, got {other:?}"),
        }
    }

    #[test]
    fn permanent_client_errors_become_non_retryable_failures_of_the_given_type() {
        let f = failure(client_failure(
            ClientError::Permanent {
                service: "wms",
                status: 400,
                message: "bad address".into(),
            },
            error_types::WMS_REJECTED,
        ));
        assert!(f.is_non_retryable());
        assert_eq!(f.type_name(), Some(error_types::WMS_REJECTED));
    }

    #[test]
    fn rate_limits_retry_after_the_servers_delay_and_outages_retry_with_backoff() {
        let f = failure(client_failure(
            ClientError::RateLimited {
                service: "shopify",
                retry_after: Some(Duration::from_secs(3)),
            },
            error_types::SHOPIFY_REJECTED,
        ));
        assert!(!f.is_non_retryable());
        assert_eq!(f.next_retry_delay(), Some(Duration::from_secs(3)));
        let f = failure(client_failure(
            ClientError::Transient {
                service: "wms",
                message: "timed out".into(),
            },
            error_types::WMS_REJECTED,
        ));
        assert!(!f.is_non_retryable());
        assert_eq!(f.next_retry_delay(), None);
    }

    #[test]
    fn bad_order_state_is_permanent_and_database_trouble_is_retried() {
        let f = failure(store_failure(StoreError::OrderNotFound(Uuid::nil())));
        assert!(f.is_non_retryable());
        assert_eq!(f.type_name(), Some(error_types::INVALID_STATE));
        assert!(
            !failure(store_failure(StoreError::Database(
                sqlx::Error::PoolTimedOut
            )))
            .is_non_retryable()
        );
    }
}
