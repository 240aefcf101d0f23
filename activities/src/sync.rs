//! Pushing levels to the shops (`oms.sync_channels`), for the order saga
//! and `workflows::ChannelSyncWorkflow`.
// The activity macros generate public items without doc comments.
#![allow(missing_docs)]

use std::sync::Arc;

use db::Db;
use futures::future::join_all;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;
use vendors::{
    http::ClientError,
    shopify::{Pushed, ShopifyClient},
};
use workflows::contracts::{self, ShopSync, SyncInput, SyncReport, error_types};

use crate::{
    failure::{client_failure, db_failure},
    metrics::ActivityMetrics,
    observe::observed,
};

/// What channel sync needs: the database and one client per shop.
pub struct ChannelSyncActivities {
    db: Db,
    shops: Vec<ShopifyClient>,
    metrics: ActivityMetrics,
}

impl ChannelSyncActivities {
    /// Bundles what the activities need.
    pub fn new(db: Db, shops: Vec<ShopifyClient>) -> Self {
        Self {
            db,
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
}

#[activities]
impl ChannelSyncActivities {
    /// Pushes the current IN_STOCK of the SKUs to every shop, the origin
    /// included: setting the absolute level everywhere also repairs drift.
    #[activity(definition = contracts::SyncChannels)]
    pub async fn sync_channels(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SyncInput,
    ) -> Result<SyncReport, ActivityError> {
        let work = async {
            // Read at attempt time: a retry pushes the newest level, not a stale one.
            let levels = self.db.in_stock_of(&input.skus).await.map_err(db_failure)?;
            let per_shop = join_all(
                self.shops
                    .iter()
                    .map(|shop| push_shop(&self.db, shop, &levels, input.reference)),
            )
            .await;
            let mut report = SyncReport::default();
            let mut retry: Option<ClientError> = None;
            for (sync, transient) in per_shop {
                report.shops.push(sync);
                if transient.is_some() && retry.is_none() {
                    retry = transient;
                }
            }
            if let Some(e) = retry {
                return Err(client_failure(e, error_types::SHOPIFY_REJECTED));
            }
            tracing::info!(
                shops = report.shops.len(),
                skus = levels.len(),
                "channels synced"
            );
            Ok(report)
        };
        observed(&self.metrics, &ctx, Some(input.reference), work).await
    }
}

/// Pushes every level to one shop. Permanent problems are reported in the
/// result (retrying cannot fix them); the first transient one is returned
/// so the activity is retried.
async fn push_shop(
    db: &Db,
    shop: &ShopifyClient,
    levels: &[(String, i32)],
    reference: Uuid,
) -> (ShopSync, Option<ClientError>) {
    let mut sync = ShopSync {
        shop: shop.domain().to_string(),
        pushed: Vec::new(),
        problems: Vec::new(),
    };
    for (sku, level) in levels {
        match push_until_current(db, shop, sku, *level, reference).await {
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
/// only protects the shop's value, not the freshness of ours, so the older
/// level could land last. Whoever writes last then sees the newer level and
/// writes it, so the shop converges on Postgres. Returns the level left in
/// the shop, or `None` when the shop does not sell the SKU.
async fn push_until_current(
    db: &Db,
    shop: &ShopifyClient,
    sku: &str,
    mut level: i32,
    reference: Uuid,
) -> Result<Option<i32>, ClientError> {
    for _ in 0..5 {
        match shop.push_level(sku, level, reference).await? {
            Pushed::NotSold => return Ok(None),
            Pushed::Set | Pushed::AlreadyThere => {}
        }
        let now = db
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
