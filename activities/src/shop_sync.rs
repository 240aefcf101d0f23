//! The shops' syncs (the workflows are `workflows::ShopSyncWorkflow` and
//! `DriftRepairWorkflow`, in a file of the same name): draining a shop's
//! pending levels in batched compare-and-set writes, and checking a shop
//! for drift.
// The activity macros generate public items without doc comments.
#![allow(missing_docs)]

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, SystemTime},
};

use db::{Db, PendingLevel};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;
use vendors::{
    http::ClientError,
    shopify::{LevelWrite, MAX_ITEMS_PER_CALL, SetOutcome, ShopifyClient},
};
use workflows::contracts::{
    self, DrainInput, DrainOutcome, DriftInput, DriftReport, ShopSync, SyncInput, SyncReport,
    error_types,
};

use crate::{
    failure::{client_failure, db_failure},
    metrics::{ActivityMetrics, SyncMetrics, WriteOutcome},
    observe::observed,
};

/// Namespace of the write idempotency keys (a fixed random UUID).
const WRITE_KEYS: Uuid = Uuid::from_u128(0x2c7e_51f0_98ad_4f3b_b1d6_0e6a_53c4_7f18);

/// Attempts at one batch within a drain, when items keep going stale.
const WRITE_ATTEMPTS: usize = 3;

/// How long a drain waits after a shop refused it for good (a revoked
/// token): the drift repair and the next change try again too.
const REFUSED_WAIT: Duration = Duration::from_secs(60);

/// What the shops' syncs need: the database and one client per shop.
pub struct ShopSyncActivities {
    db: Db,
    shops: HashMap<String, ShopifyClient>,
    metrics: ActivityMetrics,
    sync_metrics: SyncMetrics,
}

impl ShopSyncActivities {
    /// Bundles what the activities need.
    pub fn new(db: Db, shops: Vec<ShopifyClient>) -> Self {
        Self {
            db,
            shops: shops
                .into_iter()
                .map(|c| (c.domain().to_string(), c))
                .collect(),
            metrics: ActivityMetrics::default(),
            sync_metrics: SyncMetrics::default(),
        }
    }

    /// Records attempts and channel-sync series on these metrics.
    #[must_use]
    pub fn with_metrics(mut self, metrics: ActivityMetrics, sync_metrics: SyncMetrics) -> Self {
        self.metrics = metrics;
        self.sync_metrics = sync_metrics;
        self
    }

    fn client(&self, shop: &str) -> Result<&ShopifyClient, String> {
        self.shops
            .get(shop)
            .ok_or_else(|| format!("shop {shop} is not configured on this worker"))
    }

    /// One drain of `shop`: reads its pending levels and what it shows, and
    /// writes every difference in one compare-and-set call.
    async fn drain(&self, shop: &str, batch_size: u32) -> Result<DrainOutcome, ActivityError> {
        let client = match self.client(shop) {
            Ok(c) => c,
            Err(problem) => return Ok(self.refused(shop, problem).await),
        };
        let limit = i64::from(batch_size.clamp(1, MAX_ITEMS_PER_CALL as u32));
        let pending = self
            .db
            .pending_levels(shop, limit)
            .await
            .map_err(db_failure)?;
        if pending.is_empty() {
            return Ok(DrainOutcome::default());
        }
        let written = match self.write(client, &pending).await {
            Ok(written) => written,
            Err(ClientError::RateLimited { retry_after, .. }) => {
                self.sync_metrics.throttle_wait(shop);
                tracing::info!(
                    shop,
                    ?retry_after,
                    "shop throttled; waiting for its cost bucket"
                );
                return Ok(DrainOutcome {
                    pending: true,
                    wait_millis: millis(retry_after.unwrap_or(Duration::from_secs(1))),
                    ..DrainOutcome::default()
                });
            }
            Err(e @ ClientError::Permanent { .. }) => {
                return Ok(self.refused(shop, e.to_string()).await);
            }
            Err(e) => {
                // Visible in GET /channels while the retries go on.
                if let Err(db) = self.db.record_shop_error(shop, &e.to_string()).await {
                    tracing::warn!(error = %db, "could not record the shop's error");
                }
                return Err(client_failure(e, error_types::SHOPIFY_REJECTED));
            }
        };
        let pushed: Vec<(String, i64)> =
            pending.iter().map(|p| (p.sku.clone(), p.version)).collect();
        self.db
            .mark_pushed(shop, &pushed)
            .await
            .map_err(db_failure)?;
        let now = SystemTime::now();
        for p in &pending {
            let lag = now
                .duration_since(SystemTime::from(p.first_changed_at))
                .unwrap_or_default();
            self.sync_metrics.lag(shop, lag);
        }
        self.db
            .record_shop_sync(shop, written > 0)
            .await
            .map_err(db_failure)?;
        let more = self.db.has_pending(shop).await.map_err(db_failure)?;
        // Pace the next drain by what the shop's cost bucket can pay: a read
        // of a full batch and a write.
        let wait = client.pacing(1.0 + f64::from(batch_size) + 10.0);
        if wait.is_some() {
            self.sync_metrics.throttle_wait(shop);
        }
        tracing::info!(shop, pending = pending.len(), written, more, "shop drained");
        Ok(DrainOutcome {
            written,
            pending: more,
            wait_millis: wait.map_or(0, millis),
            problem: None,
        })
    }

    /// Writes every pending level the shop does not show yet; returns how
    /// many quantities were written.
    async fn write(
        &self,
        client: &ShopifyClient,
        pending: &[PendingLevel],
    ) -> Result<u32, ClientError> {
        let shop = client.domain().as_str();
        let skus: Vec<String> = pending.iter().map(|p| p.sku.clone()).collect();
        let levels = client.levels(&skus).await?;
        for sku in &levels.not_sold {
            tracing::info!(
                shop,
                sku,
                "the shop does not sell this SKU; nothing to write"
            );
        }
        let mut writes: Vec<LevelWrite> = pending
            .iter()
            .filter_map(|p| {
                let level = levels.found.get(&p.sku)?;
                let target = client.settings().target(p.in_stock);
                (level.available != target).then(|| LevelWrite {
                    sku: p.sku.clone(),
                    item_id: level.item_id.clone(),
                    quantity: target,
                    change_from: level.available,
                })
            })
            .collect();
        for _ in 0..WRITE_ATTEMPTS {
            if writes.is_empty() {
                return Ok(0);
            }
            let key = write_key(shop, &writes);
            let reference = format!("gid://oms/ChannelSync/{key}");
            match client.set_levels(&writes, &reference, key).await? {
                SetOutcome::Applied => {
                    self.sync_metrics
                        .write(shop, WriteOutcome::Applied, writes.len() as u64);
                    return Ok(u32::try_from(writes.len()).unwrap_or(u32::MAX));
                }
                SetOutcome::Stale(stale) => {
                    // The shop sold or was edited meanwhile: read those items
                    // again and compare with what they show now.
                    self.sync_metrics.write(shop, WriteOutcome::Stale, 0);
                    let stale_skus: Vec<String> = stale
                        .iter()
                        .filter_map(|i| writes.get(*i).map(|w| w.sku.clone()))
                        .collect();
                    tracing::info!(shop, skus = ?stale_skus, "compare values were stale; reading them again");
                    let fresh = client.levels(&stale_skus).await?;
                    writes.retain_mut(|w| {
                        if !stale_skus.contains(&w.sku) {
                            return true;
                        }
                        match fresh.found.get(&w.sku) {
                            Some(level) => {
                                w.change_from = level.available;
                                w.item_id.clone_from(&level.item_id);
                                level.available != w.quantity
                            }
                            None => false,
                        }
                    });
                }
                SetOutcome::Refused(refused) => {
                    // A retry cannot fix these items; the others still go.
                    self.sync_metrics.write(shop, WriteOutcome::Refused, 0);
                    let bad: BTreeSet<usize> = refused.iter().map(|(i, _)| *i).collect();
                    for (i, reason) in &refused {
                        if let Some(w) = writes.get(*i) {
                            tracing::warn!(shop, sku = %w.sku, reason = %reason, "the shop refused this level");
                            client.forget(&w.sku);
                        }
                    }
                    let reasons: Vec<String> = refused
                        .iter()
                        .filter_map(|(i, r)| writes.get(*i).map(|w| format!("{}: {r}", w.sku)))
                        .collect();
                    if let Err(e) = self.db.record_shop_error(shop, &reasons.join("; ")).await {
                        tracing::warn!(error = %e, "could not record the shop's error");
                    }
                    writes = writes
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| !bad.contains(i))
                        .map(|(_, w)| w)
                        .collect();
                }
            }
        }
        Err(ClientError::Transient {
            service: "shopify",
            message: format!("{shop}: quantities kept changing during the write"),
        })
    }

    /// The shop refused the drain for good (a revoked token, a shop no
    /// longer configured here): recorded, and tried again much later.
    async fn refused(&self, shop: &str, problem: String) -> DrainOutcome {
        tracing::error!(shop, problem = %problem, "shop sync refused; retrying later");
        if let Err(e) = self.db.record_shop_error(shop, &problem).await {
            tracing::warn!(error = %e, "could not record the shop's error");
        }
        DrainOutcome {
            written: 0,
            pending: true,
            wait_millis: millis(REFUSED_WAIT),
            problem: Some(problem),
        }
    }

    /// Compares every product's level with what `shop` shows; queues the
    /// differences for the shop's sync.
    async fn check(&self, shop: &str) -> Result<DriftReport, ActivityError> {
        let mut report = DriftReport {
            shop: shop.to_string(),
            ..DriftReport::default()
        };
        let client = match self.client(shop) {
            Ok(c) => c,
            Err(problem) => {
                tracing::warn!(shop, problem = %problem, "drift check skipped");
                return Ok(report);
            }
        };
        // Pending changes are on their way; they are not drift.
        let pending: BTreeSet<String> = self
            .db
            .pending_levels(shop, i64::MAX)
            .await
            .map_err(db_failure)?
            .into_iter()
            .map(|p| p.sku)
            .collect();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = self
                .db
                .list_products(after.as_deref(), MAX_ITEMS_PER_CALL as i64)
                .await
                .map_err(db_failure)?;
            let page: Vec<_> = page
                .into_iter()
                .filter(|(sku, _)| !pending.contains(sku))
                .collect();
            let skus: Vec<String> = page.iter().map(|(sku, _)| sku.clone()).collect();
            let levels = client
                .levels(&skus)
                .await
                .map_err(|e| client_failure(e, error_types::SHOPIFY_REJECTED))?;
            let mut drifted = Vec::new();
            for (sku, stock) in &page {
                let Some(level) = levels.found.get(sku) else {
                    continue;
                };
                report.checked += 1;
                let target = client.settings().target(stock.in_stock);
                if level.available != target {
                    tracing::warn!(
                        shop,
                        sku = %sku,
                        shop_shows = level.available,
                        oms_level = target,
                        "drift: the shop shows another level; queued to be written back"
                    );
                    drifted.push(sku.clone());
                }
            }
            if !drifted.is_empty() {
                self.db
                    .mark_changed_for(shop, &drifted)
                    .await
                    .map_err(db_failure)?;
                report.repaired += u32::try_from(drifted.len()).unwrap_or(u32::MAX);
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        self.sync_metrics
            .drift_repaired(shop, u64::from(report.repaired));
        self.db
            .record_drift_run(
                shop,
                i32::try_from(report.checked).unwrap_or(i32::MAX),
                i32::try_from(report.repaired).unwrap_or(i32::MAX),
            )
            .await
            .map_err(db_failure)?;
        tracing::info!(
            shop,
            checked = report.checked,
            repaired = report.repaired,
            "drift checked"
        );
        Ok(report)
    }
}

/// The idempotency key of one write: derived from the shop and the writes,
/// so a retry of the same write is applied once, and a changed write (after
/// a stale read) is a new one.
fn write_key(shop: &str, writes: &[LevelWrite]) -> Uuid {
    let mut parts: Vec<String> = writes
        .iter()
        .map(|w| format!("{}={}<{}", w.item_id, w.quantity, w.change_from))
        .collect();
    parts.sort_unstable();
    Uuid::new_v5(
        &WRITE_KEYS,
        format!("{shop}|{}", parts.join(",")).as_bytes(),
    )
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[activities]
impl ShopSyncActivities {
    /// Pushes up to a batch of the shop's pending levels in one write.
    #[activity(definition = contracts::SyncShop)]
    pub async fn sync_shop(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DrainInput,
    ) -> Result<DrainOutcome, ActivityError> {
        let span = tracing::info_span!("shop_sync", shop = %input.shop);
        let work = tracing::Instrument::instrument(self.drain(&input.shop, input.batch_size), span);
        observed(&self.metrics, &ctx, None, work).await
    }

    /// Compares what the shop shows with the OMS and queues what differs.
    #[activity(definition = contracts::CheckDrift)]
    pub async fn check_drift(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DriftInput,
    ) -> Result<DriftReport, ActivityError> {
        observed(&self.metrics, &ctx, None, self.check(&input.shop)).await
    }

    /// The shops being kept in sync.
    #[activity(definition = contracts::ListShops)]
    pub async fn list_shops(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: (),
    ) -> Result<Vec<String>, ActivityError> {
        let work = async { self.db.enabled_shops().await.map_err(db_failure) };
        observed(&self.metrics, &ctx, None, work).await
    }

    /// Orders started before the outbox ask for their SKUs to be pushed:
    /// they are queued for every shop like any other change.
    #[activity(definition = contracts::SyncChannels)]
    pub async fn sync_channels(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SyncInput,
    ) -> Result<SyncReport, ActivityError> {
        let work = async {
            self.db
                .queue_for_shops(&input.skus)
                .await
                .map_err(db_failure)?;
            Ok(SyncReport {
                shops: self
                    .shops
                    .keys()
                    .map(|shop| ShopSync {
                        shop: shop.clone(),
                        pushed: Vec::new(),
                        problems: Vec::new(),
                    })
                    .collect(),
            })
        };
        observed(&self.metrics, &ctx, Some(input.reference), work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(item: &str, quantity: i64, change_from: i64) -> LevelWrite {
        LevelWrite {
            sku: item.into(),
            item_id: item.into(),
            quantity,
            change_from,
        }
    }

    #[test]
    fn a_write_key_names_the_shop_and_the_writes_in_any_order() {
        let a = write_key("a.myshopify.com", &[w("1", 5, 4), w("2", 0, 1)]);
        assert_eq!(
            a,
            write_key("a.myshopify.com", &[w("2", 0, 1), w("1", 5, 4)])
        );
        assert_ne!(
            a,
            write_key("b.myshopify.com", &[w("1", 5, 4), w("2", 0, 1)])
        );
        assert_ne!(
            a,
            write_key("a.myshopify.com", &[w("1", 5, 3), w("2", 0, 1)])
        );
    }
}
