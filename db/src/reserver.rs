//! Group commit for single-unit reserves.
//!
//! A flash sale puts every request on one product row. Reserving per request
//! means one transaction per unit, all serialized on that row's lock, so
//! throughput is bounded by lock hand-offs and commits (a few thousand per
//! second here). Instead, requests queue in-process and a shard task turns
//! whatever is waiting into one statement: it locks each touched product once,
//! grants `min(in_stock, waiting)` units in arrival order, inserts one
//! reservation row per granted caller and commits once. Under load the batches
//! grow by themselves; at low load a batch is a single request, so nothing
//! waits for a timer.
//!
//! SKUs are spread over shards by hash, so different products proceed in
//! parallel while one product's requests always meet in the same queue.

use std::{
    collections::{HashMap, hash_map::DefaultHasher},
    hash::{Hash, Hasher},
    sync::{Arc, LazyLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use domain::{ReservationToken, Sku};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    error::DbError,
    stock_change::{MARK_CHANGED, StockChanged, begin_stock_change},
};

/// Tuning of the reserve batching.
#[derive(Debug, Clone)]
pub struct ReserverSettings {
    /// Number of independent batching queues (each uses one connection while
    /// a batch runs).
    pub shards: usize,
    /// Most requests grouped into one statement.
    pub max_batch: usize,
    /// Requests that may queue per shard before callers wait to enqueue.
    pub queue_capacity: usize,
    /// Lifetime of an API reservation; `None` keeps it until used.
    pub reservation_ttl: Option<Duration>,
}

impl Default for ReserverSettings {
    fn default() -> Self {
        Self {
            shards: 4,
            max_batch: 512,
            queue_capacity: 8192,
            reservation_ttl: Some(Duration::from_secs(15 * 60)),
        }
    }
}

impl ReserverSettings {
    /// Reads `OMS_RESERVE_SHARDS`, `OMS_RESERVE_MAX_BATCH`,
    /// `OMS_RESERVE_QUEUE_CAPACITY` and `OMS_RESERVATION_TTL_SECS` (0 = reservations never expire).
    pub fn from_env() -> Result<Self, runtime::config::ConfigError> {
        use runtime::config::var_or;
        let d = Self::default();
        let ttl = d.reservation_ttl.map_or(0, |t| t.as_secs());
        let ttl: u64 = var_or("OMS_RESERVATION_TTL_SECS", ttl)?;
        Ok(Self {
            shards: var_or("OMS_RESERVE_SHARDS", d.shards)?,
            max_batch: var_or("OMS_RESERVE_MAX_BATCH", d.max_batch)?,
            queue_capacity: var_or("OMS_RESERVE_QUEUE_CAPACITY", d.queue_capacity)?,
            reservation_ttl: (ttl > 0).then(|| Duration::from_secs(ttl)),
        })
    }
}

struct Pending {
    sku: Sku,
    reply: oneshot::Sender<Result<ReservationToken, DbError>>,
}

/// What one reserve batch did, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct BatchReport {
    /// Requests in the transaction.
    pub size: usize,
    /// How long the transaction took.
    pub elapsed: Duration,
    /// Whether it committed (else every request in it failed).
    pub committed: bool,
}

/// Called after every batch, on the shard's task: must be quick.
pub type BatchObserver = Arc<dyn Fn(&BatchReport) + Send + Sync>;

/// Handle to the shard tasks; cheap to clone.
#[derive(Clone)]
pub(super) struct Reserver {
    shards: Vec<mpsc::Sender<Pending>>,
}

impl Reserver {
    /// Spawns the shard tasks on the current Tokio runtime.
    pub(super) fn spawn(
        pool: PgPool,
        settings: &ReserverSettings,
        observer: Option<BatchObserver>,
        stock_changed: Option<StockChanged>,
    ) -> Self {
        let shards = (0..settings.shards.max(1))
            .map(|shard| {
                let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
                tokio::spawn(run_shard(
                    shard,
                    pool.clone(),
                    rx,
                    settings.max_batch.max(1),
                    settings.reservation_ttl,
                    observer.clone(),
                    stock_changed.clone(),
                ));
                tx
            })
            .collect();
        Self { shards }
    }

    /// Reserves one unit of `sku`, grouped with whatever else is waiting.
    pub(super) async fn reserve_one(&self, sku: Sku) -> Result<ReservationToken, DbError> {
        let mut h = DefaultHasher::new();
        sku.hash(&mut h);
        // Truncation is fine: only the spread matters.
        #[allow(clippy::cast_possible_truncation)]
        let shard = &self.shards[(h.finish() as usize) % self.shards.len()];
        let (reply, rx) = oneshot::channel();
        shard
            .send(Pending { sku, reply })
            .await
            .map_err(|_| DbError::ShuttingDown)?;
        rx.await.map_err(|_| DbError::ShuttingDown)?
    }
}

async fn run_shard(
    shard: usize,
    pool: PgPool,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    ttl: Option<Duration>,
    observer: Option<BatchObserver>,
    stock_changed: Option<StockChanged>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        // A caller that went away (client disconnected) must not get stock:
        // nobody would ever learn its token.
        batch.retain(|p: &Pending| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let span = tracing::debug_span!("reserve_batch", shard, batch.size = batch.len());
        let expires_at = ttl
            .and_then(|t| chrono::Duration::from_std(t).ok())
            .map(|t| Utc::now() + t);
        let started = std::time::Instant::now();
        // Instrumented rather than entered: a guard must not live across awaits.
        let granted = grant(&pool, &batch, expires_at)
            .instrument(span.clone())
            .await;
        if let Some(observe) = &observer {
            observe(&BatchReport {
                size: batch.len(),
                elapsed: started.elapsed(),
                committed: granted.is_ok(),
            });
        }
        match granted {
            Ok((outcome, any_granted)) => {
                if any_granted && let Some(hook) = &stock_changed {
                    hook();
                }
                span.in_scope(|| {
                    tracing::debug!(
                        elapsed_us =
                            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                        "reserve batch committed"
                    );
                });
                for (p, result) in batch.drain(..).zip(outcome) {
                    // The caller may have gone meanwhile; its token then
                    // expires with the TTL.
                    let _ = p.reply.send(result);
                }
            }
            Err(e) => {
                span.in_scope(|| tracing::error!(error = %e, "reserve batch failed"));
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(DbError::BatchFailed));
                }
            }
        }
    }
}

/// One transaction for the whole batch; returns one result per request, in
/// order, and whether any unit was granted.
///
/// The product rows are locked first (in SKU order, so batches touching
/// several products cannot deadlock each other), which also reads their
/// latest IN_STOCK; the first `min(in_stock, waiting)` requests of each SKU
/// in arrival order are granted, and one statement applies all grants. The
/// CHECK constraints stay the last line of defence.
async fn grant(
    pool: &PgPool,
    batch: &[Pending],
    expires_at: Option<DateTime<Utc>>,
) -> Result<(Vec<Result<ReservationToken, DbError>>, bool), sqlx::Error> {
    let mut waiting: HashMap<&str, i32> = HashMap::new();
    for p in batch {
        *waiting.entry(p.sku.as_str()).or_default() += 1;
    }
    let mut skus: Vec<&str> = waiting.keys().copied().collect();
    skus.sort_unstable();

    let mut tx = begin_stock_change(pool).await?;
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT sku, in_stock FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(&skus)
    .fetch_all(&mut *tx)
    .await?;
    // SKU -> (IN_STOCK before, units granted).
    let stock: HashMap<String, (i32, i32)> = rows
        .into_iter()
        .map(|(sku, in_stock)| {
            let granted = in_stock.min(waiting.get(sku.as_str()).copied().unwrap_or(0));
            (sku, (in_stock, granted))
        })
        .collect();

    let mut results = Vec::with_capacity(batch.len());
    let mut seen: HashMap<&str, i32> = HashMap::new();
    let (mut tokens, mut token_skus) = (Vec::new(), Vec::new());
    for p in batch {
        let ord = seen.entry(p.sku.as_str()).or_default();
        *ord += 1;
        results.push(match stock.get(p.sku.as_str()) {
            None => Err(DbError::ProductNotFound(p.sku.clone())),
            Some((_, granted)) if *ord <= *granted => {
                let token = Uuid::new_v4();
                tokens.push(token);
                token_skus.push(p.sku.as_str());
                Ok(ReservationToken::from(token))
            }
            Some((in_stock, granted)) => Err(DbError::OutOfStock {
                sku: p.sku.clone(),
                requested: 1,
                available: in_stock - granted,
            }),
        });
    }
    let any_granted = !tokens.is_empty();
    if any_granted {
        let (grant_skus, grants): (Vec<&str>, Vec<i32>) = stock
            .iter()
            .filter(|(_, (_, g))| *g > 0)
            .map(|(sku, (_, g))| (sku.as_str(), *g))
            .unzip();
        // Granting and queueing the new levels for the shops are one
        // statement, so the batch still costs one round trip.
        sqlx::query(&GRANT)
            .bind(&grant_skus)
            .bind(&grants)
            .bind(&tokens)
            .bind(&token_skus)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((results, any_granted))
}

/// Moves the granted units, queues the new levels for every enabled shop,
/// and inserts one reservation row per granted caller.
static GRANT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        WITH upd AS (
            UPDATE products p
            SET in_stock = p.in_stock - g.n,
                reserved = p.reserved + g.n,
                updated_at = now()
            FROM unnest($1::text[], $2::int4[]) AS g (sku, n)
            WHERE p.sku = g.sku
        ),
        queued AS ({mark})
        INSERT INTO reservations (token, sku, quantity, expires_at)
        SELECT t, s, 1, $5 FROM unnest($3::uuid[], $4::text[]) AS r (t, s)
        "#,
        mark = *MARK_CHANGED
    )
});
