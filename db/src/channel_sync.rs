//! The channel-sync outbox: which products' sellable level each shop has
//! not been told yet, and what each shop's sync last did.
//!
//! Every statement that changes a product's IN_STOCK marks the product here
//! in the same transaction (`stock_change`), so no path can change stock
//! without the shops hearing of it. Each shop's sync reads its rows
//! ([`Db::pending_levels`]), pushes them, and deletes each row only up to the
//! version it read ([`Db::mark_pushed`]).

use chrono::{DateTime, Utc};
use domain::ShopDomain;

use crate::{
    connection::Db,
    error::DbError,
    stock_change::{SHOPS_LOCK, begin_stock_change, mark_changed},
};

/// A product whose level a shop has not been told yet.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingLevel {
    /// The product.
    pub sku: String,
    /// The change this row stands for; pushing deletes it up to here.
    pub version: i64,
    /// IN_STOCK, read in the same snapshot as `version`.
    pub in_stock: i32,
    /// When the oldest unpushed change was made.
    pub first_changed_at: DateTime<Utc>,
}

/// What a shop's sync did and how far behind it is (`GET /channels`).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopChannelStatus {
    /// The shop.
    pub shop: String,
    /// Configured on the workers and installed (a disabled shop is no
    /// longer written).
    pub enabled: bool,
    /// When the app was uninstalled from the shop, while it is.
    pub uninstalled_at: Option<DateTime<Utc>>,
    /// Last successful inventory write.
    pub last_write_at: Option<DateTime<Utc>>,
    /// Products whose level the shop has not been told yet.
    pub pending_skus: i64,
    /// When the oldest of those changes was made.
    pub oldest_pending_change_at: Option<DateTime<Utc>>,
    /// Seconds since then (0 when nothing is pending).
    pub lag_seconds: f64,
    /// The last failure of the shop's sync, while it lasts.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When drift was last checked.
    pub drift_checked_at: Option<DateTime<Utc>>,
    /// Products compared in that run.
    pub drift_checked: Option<i32>,
    /// Products the shop showed wrongly and that were queued for repair.
    pub drift_repaired: Option<i32>,
}

impl Db {
    /// Makes `shops` the shops that are kept in sync. A shop that is new, or
    /// enabled again, gets every product queued: its first sync is a full
    /// one. Shops missing from the list are disabled and their queue
    /// dropped. Returns the shops that were new or enabled again.
    pub async fn register_shops(&self, shops: &[ShopDomain]) -> Result<Vec<String>, DbError> {
        let names: Vec<&str> = shops.iter().map(ShopDomain::as_str).collect();
        let mut tx = self.pool.begin().await?;
        // Exclusive: no stock changes meanwhile (see `begin_stock_change`),
        // and one registration at a time, so two workers starting together
        // do not both take a shop for new.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SHOPS_LOCK)
            .execute(&mut *tx)
            .await?;
        let already: Vec<String> =
            sqlx::query_scalar("SELECT shop FROM shops WHERE enabled AND shop = ANY($1)")
                .bind(&names)
                .fetch_all(&mut *tx)
                .await?;
        // A shop the app was uninstalled from stays disabled until an
        // operator re-enables it (see `reinstall_shop`).
        sqlx::query(
            "INSERT INTO shops (shop) SELECT unnest($1::text[]) \
             ON CONFLICT (shop) DO UPDATE SET enabled = shops.uninstalled_at IS NULL",
        )
        .bind(&names)
        .execute(&mut *tx)
        .await?;
        let uninstalled: Vec<String> = sqlx::query_scalar(
            "SELECT shop FROM shops WHERE uninstalled_at IS NOT NULL AND shop = ANY($1)",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        let disabled: Vec<String> = sqlx::query_scalar(
            "UPDATE shops SET enabled = false WHERE enabled AND shop <> ALL($1) RETURNING shop",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM channel_sync_outbox WHERE shop = ANY($1)")
            .bind(&disabled)
            .execute(&mut *tx)
            .await?;
        let fresh: Vec<String> = names
            .iter()
            .filter(|n| !already.iter().any(|a| a == *n))
            .filter(|n| !uninstalled.iter().any(|u| u == *n))
            .map(|n| (*n).to_string())
            .collect();
        sqlx::query(
            r#"
            INSERT INTO channel_sync_outbox (shop, sku)
            SELECT f.shop, p.sku FROM unnest($1::text[]) AS f (shop), products p
            ORDER BY f.shop, p.sku
            ON CONFLICT (shop, sku) DO UPDATE
                SET version = nextval('channel_sync_version'), changed_at = now()
            "#,
        )
        .bind(&fresh)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if !disabled.is_empty() {
            tracing::info!(
                ?disabled,
                "shops no longer configured: their sync is stopped"
            );
        }
        Ok(fresh)
    }

    /// The shops being kept in sync.
    pub async fn enabled_shops(&self) -> Result<Vec<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT shop FROM shops WHERE enabled ORDER BY shop")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Up to `limit` products whose level `shop` has not been told yet,
    /// oldest change first, with their IN_STOCK now.
    pub async fn pending_levels(
        &self,
        shop: &str,
        limit: i64,
    ) -> Result<Vec<PendingLevel>, DbError> {
        Ok(sqlx::query_as(
            r#"
            SELECT o.sku, o.version, p.in_stock, o.first_changed_at
            FROM channel_sync_outbox o JOIN products p ON p.sku = o.sku
            WHERE o.shop = $1
            ORDER BY o.first_changed_at, o.sku
            LIMIT $2
            "#,
        )
        .bind(shop)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether anything waits for `shop`.
    pub async fn has_pending(&self, shop: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM channel_sync_outbox WHERE shop = $1)")
                .bind(shop)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// `shop` was told the levels read at these versions: their rows go,
    /// unless the product changed again since (a newer version), in which
    /// case the row stays for the next push.
    pub async fn mark_pushed(&self, shop: &str, pushed: &[(String, i64)]) -> Result<u64, DbError> {
        let (skus, versions): (Vec<&str>, Vec<i64>) =
            pushed.iter().map(|(s, v)| (s.as_str(), *v)).unzip();
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            r#"
            DELETE FROM channel_sync_outbox o
            USING unnest($2::text[], $3::int8[]) AS d (sku, version)
            WHERE o.shop = $1 AND o.sku = d.sku AND o.version <= d.version
            "#,
        )
        .bind(shop)
        .bind(&skus)
        .bind(&versions)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // What stays changed during the push: its lag counts from then.
        sqlx::query(
            "UPDATE channel_sync_outbox SET first_changed_at = changed_at \
             WHERE shop = $1 AND sku = ANY($2)",
        )
        .bind(shop)
        .bind(&skus)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Queues `skus` for every enabled shop, outside a change of stock (the
    /// per-order sync of orders started before the outbox lands here).
    pub async fn queue_for_shops(&self, skus: &[String]) -> Result<(), DbError> {
        let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
        let mut tx = begin_stock_change(&self.pool).await?;
        mark_changed(&mut tx, &refs).await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(())
    }

    /// Queues `skus` for `shop` alone (drift repair found it showing a wrong level).
    pub async fn mark_changed_for(&self, shop: &str, skus: &[String]) -> Result<(), DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        sqlx::query(
            r#"
            INSERT INTO channel_sync_outbox (shop, sku)
            SELECT $1, p.sku FROM products p WHERE p.sku = ANY($2)
            ORDER BY p.sku
            ON CONFLICT (shop, sku) DO UPDATE
                SET version = nextval('channel_sync_version'), changed_at = now()
            "#,
        )
        .bind(shop)
        .bind(skus)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(())
    }

    /// `shop`'s sync succeeded; `wrote` when it changed the shop's inventory.
    pub async fn record_shop_sync(&self, shop: &str, wrote: bool) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE shops SET last_error = NULL, last_error_at = NULL, \
             last_write_at = CASE WHEN $2 THEN now() ELSE last_write_at END WHERE shop = $1",
        )
        .bind(shop)
        .bind(wrote)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `shop`'s sync failed with `error` (names no customer data).
    pub async fn record_shop_error(&self, shop: &str, error: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE shops SET last_error = $2, last_error_at = now() WHERE shop = $1")
            .bind(shop)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A drift check of `shop` compared `checked` products and queued
    /// `repaired` of them.
    pub async fn record_drift_run(
        &self,
        shop: &str,
        checked: i32,
        repaired: i32,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE shops SET drift_checked_at = now(), drift_checked = $2, drift_repaired = $3 \
             WHERE shop = $1",
        )
        .bind(shop)
        .bind(checked)
        .bind(repaired)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every shop's sync status, enabled shops first.
    pub async fn channel_status(&self) -> Result<Vec<ShopChannelStatus>, DbError> {
        Ok(sqlx::query_as(
            r#"
            SELECT s.shop, s.enabled, s.uninstalled_at, s.last_write_at,
                   coalesce(o.pending, 0) AS pending_skus,
                   o.oldest AS oldest_pending_change_at,
                   coalesce(extract(epoch FROM now() - o.oldest), 0)::float8 AS lag_seconds,
                   s.last_error, s.last_error_at,
                   s.drift_checked_at, s.drift_checked, s.drift_repaired
            FROM shops s
            LEFT JOIN (
                SELECT shop, count(*) AS pending, min(first_changed_at) AS oldest
                FROM channel_sync_outbox GROUP BY shop
            ) o ON o.shop = s.shop
            ORDER BY s.enabled DESC, s.shop
            "#,
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
