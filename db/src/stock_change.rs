//! Changing sellable stock: the transaction every such change runs in, and
//! the statement that queues the changed products for every shop in that
//! same transaction, so no path can change stock without the shops hearing
//! of it (the outbox itself is `channel_sync`).

use std::sync::{Arc, LazyLock};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::DbError;

/// Called after a transaction that changed a product's sellable level (and
/// queued it for the shops) committed: the process's cue to nudge the shop
/// syncs. Must be quick; it runs on the committing task.
pub type StockChanged = Arc<dyn Fn() + Send + Sync>;

/// The key of the lock that orders changes of stock against the
/// registration of shops.
pub(crate) const SHOPS_LOCK: i64 = 0x6f6d_735f_7368_6f70;

/// Begins a transaction that changes sellable stock. It first takes the
/// shops lock, shared: stock changes run side by side, but not beside a
/// shop's registration. Without it a product created while a new shop is
/// registered could be missed by both: the change would not see the new
/// shop, and the registration's full sync would not see the new product.
/// Taken before any product row is locked, so it cannot deadlock with the
/// registration, which reads products only once it holds the lock.
pub(crate) async fn begin_stock_change(
    pool: &PgPool,
) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(SHOPS_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Marks `skus` (distinct) changed for every enabled shop, inside the
/// caller's transaction. Sorted, so concurrent markers lock rows in one order.
pub(crate) async fn mark_changed(conn: &mut PgConnection, skus: &[&str]) -> Result<(), DbError> {
    if skus.is_empty() {
        return Ok(());
    }
    let mut skus = skus.to_vec();
    skus.sort_unstable();
    skus.dedup();
    sqlx::query(&MARK_CHANGED).bind(&skus).execute(conn).await?;
    Ok(())
}

/// The marking statement over the SKUs of `$1`.
pub(crate) static MARK_CHANGED: LazyLock<String> =
    LazyLock::new(|| mark_changed_sql("unnest($1::text[])"));

/// The marking statement over `skus`: any FROM item with one text column.
/// Statements that change levels splice it in as a CTE, so queueing costs
/// no extra round trip.
pub(crate) fn mark_changed_sql(skus: &str) -> String {
    format!(
        r#"
        INSERT INTO channel_sync_outbox (shop, sku)
        SELECT s.shop, k.sku FROM shops s, {skus} AS k (sku)
        WHERE s.enabled
        ORDER BY s.shop, k.sku
        ON CONFLICT (shop, sku) DO UPDATE
            SET version = nextval('channel_sync_version'), changed_at = now()
        "#
    )
}
