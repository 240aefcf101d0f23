//! What a Shopify app owes the shops and their customers: uninstalls stop
//! every write to the shop, and privacy requests are recorded, answered
//! (a customer's data exported) and carried out (customer data removed).

use chrono::{DateTime, Utc};
use domain::Address;
use serde::Serialize;
use uuid::Uuid;

use crate::{connection::Db, error::DbError, stock_change::SHOPS_LOCK};

/// A privacy request as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PrivacyRequest {
    /// Its id (what `oms-api privacy export` takes).
    pub id: i64,
    /// The shop that sent it.
    pub shop_domain: String,
    /// `customers/data_request`, `customers/redact` or `shop/redact`.
    pub topic: String,
    /// Shopify's id of the data request.
    pub shopify_request_id: Option<String>,
    /// Shopify's id of the customer.
    pub customer_id: Option<String>,
    /// Shopify order ids it names.
    pub shopify_order_ids: Vec<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Orders whose customer data it removed.
    pub redacted_orders: i32,
    /// Dead-lettered payloads it emptied.
    pub redacted_dead_letters: i32,
}

/// What a redaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redacted {
    /// Orders whose shipping address (names, address, phone) was removed.
    pub orders: u64,
    /// Dead-lettered payloads emptied.
    pub dead_letters: u64,
}

/// One order of a customer's data export: everything the OMS holds of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ExportedOrder {
    /// The OMS's order id.
    pub id: Uuid,
    /// Shopify's order id.
    pub external_id: String,
    /// Shopify's order name (`#1001`).
    pub name: Option<String>,
    /// Its status.
    pub status: String,
    /// When the customer placed it.
    pub placed_at: Option<DateTime<Utc>>,
    /// Where it ships (none once redacted).
    #[sqlx(json(nullable))]
    pub shipping_address: Option<Address>,
    /// The shipment's tracking.
    pub tracking: Option<sqlx::types::JsonValue>,
    /// When its customer data was removed, if it was.
    pub redacted_at: Option<DateTime<Utc>>,
}

impl Db {
    /// The app was uninstalled from `shop`: it is disabled (nothing is
    /// queued for it, its pending levels are dropped) until re-enabled.
    /// Returns whether it was installed until now.
    pub async fn uninstall_shop(&self, shop: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        // Exclusive, like a registration: no stock change queues for the
        // shop between the flag and the deletion of its queue.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SHOPS_LOCK)
            .execute(&mut *tx)
            .await?;
        let first = sqlx::query(
            r#"
            INSERT INTO shops (shop, enabled, uninstalled_at) VALUES ($1, false, now())
            ON CONFLICT (shop) DO UPDATE SET enabled = false, uninstalled_at = now()
            WHERE shops.uninstalled_at IS NULL
            "#,
        )
        .bind(shop)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        sqlx::query("DELETE FROM channel_sync_outbox WHERE shop = $1")
            .bind(shop)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(first)
    }

    /// The app is installed in `shop` again: it is enabled, and every
    /// product is queued for it (it missed every change meanwhile). Returns
    /// whether it had been uninstalled.
    pub async fn reinstall_shop(&self, shop: &str) -> Result<bool, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SHOPS_LOCK)
            .execute(&mut *tx)
            .await?;
        let was = sqlx::query(
            "UPDATE shops SET enabled = true, uninstalled_at = NULL WHERE shop = $1 AND uninstalled_at IS NOT NULL",
        )
        .bind(shop)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if was {
            sqlx::query(
                r#"
                INSERT INTO channel_sync_outbox (shop, sku)
                SELECT $1, sku FROM products ORDER BY sku
                ON CONFLICT (shop, sku) DO UPDATE
                    SET version = nextval('channel_sync_version'), changed_at = now()
                "#,
            )
            .bind(shop)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(was)
    }

    /// When the app was uninstalled from `shop`, if it is.
    pub async fn shop_uninstalled_at(&self, shop: &str) -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(sqlx::query_scalar::<_, Option<DateTime<Utc>>>(
            "SELECT uninstalled_at FROM shops WHERE shop = $1",
        )
        .bind(shop)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Records a privacy request (and what it removed); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_privacy_request(
        &self,
        shop: &str,
        topic: &str,
        shopify_request_id: Option<&str>,
        customer_id: Option<&str>,
        shopify_order_ids: &[String],
        redacted: Redacted,
    ) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            r#"
            INSERT INTO privacy_requests (shop_domain, topic, shopify_request_id, customer_id,
                                          shopify_order_ids, redacted_orders, redacted_dead_letters)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
            "#,
        )
        .bind(shop)
        .bind(topic)
        .bind(shopify_request_id)
        .bind(customer_id)
        .bind(shopify_order_ids)
        .bind(i32::try_from(redacted.orders).unwrap_or(i32::MAX))
        .bind(i32::try_from(redacted.dead_letters).unwrap_or(i32::MAX))
        .fetch_one(&self.pool)
        .await?)
    }

    /// The request Shopify numbered `shopify_request_id` for `shop`, if it
    /// was recorded (a redelivery).
    pub async fn privacy_request_recorded(
        &self,
        shop: &str,
        shopify_request_id: &str,
    ) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM privacy_requests WHERE shop_domain = $1 AND shopify_request_id = $2 ORDER BY id LIMIT 1",
        )
        .bind(shop)
        .bind(shopify_request_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Privacy requests, newest first.
    pub async fn privacy_requests(&self, limit: i64) -> Result<Vec<PrivacyRequest>, DbError> {
        Ok(
            sqlx::query_as("SELECT * FROM privacy_requests ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// One privacy request.
    pub async fn privacy_request(&self, id: i64) -> Result<Option<PrivacyRequest>, DbError> {
        Ok(
            sqlx::query_as("SELECT * FROM privacy_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// What the OMS holds of `shop`'s orders with these Shopify ids.
    pub async fn export_orders(
        &self,
        shop: &str,
        shopify_order_ids: &[String],
    ) -> Result<Vec<ExportedOrder>, DbError> {
        Ok(sqlx::query_as(
            r#"
            SELECT id, external_id, name, status, placed_at, shipping_address, tracking, redacted_at
            FROM orders WHERE channel = 'shopify' AND shop_domain = $1 AND external_id = ANY($2)
            ORDER BY created_at
            "#,
        )
        .bind(shop)
        .bind(shopify_order_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes the customer data of `shop`'s orders with these Shopify ids
    /// (every order of the shop with `None`): names, address and phone.
    pub async fn redact_orders(
        &self,
        shop: &str,
        shopify_order_ids: Option<&[String]>,
    ) -> Result<u64, DbError> {
        Ok(sqlx::query(
            r#"
            UPDATE orders SET shipping_address = NULL, redacted_at = now(), updated_at = now()
            WHERE channel = 'shopify' AND shop_domain = $1
              AND ($2::text[] IS NULL OR external_id = ANY($2))
              AND (shipping_address IS NOT NULL OR redacted_at IS NULL)
            "#,
        )
        .bind(shop)
        .bind(shopify_order_ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Empties the payloads of `shop`'s dead letters that concern one of
    /// these Shopify orders or this customer (every one of the shop with
    /// `None`). Only the payload goes; the row keeps what was refused and why.
    pub async fn redact_dead_letters(
        &self,
        shop: &str,
        subject: Option<(&[String], Option<&str>)>,
    ) -> Result<u64, DbError> {
        let ids: Vec<i64> = match subject {
            None => sqlx::query_scalar(
                "SELECT id FROM webhook_dead_letters WHERE shop_domain = $1 AND payload_purged_at IS NULL",
            )
            .bind(shop)
            .fetch_all(&self.pool)
            .await?,
            Some((orders, customer)) => {
                // Payloads are raw bytes of several shapes: an order (its
                // `id` and `customer.id`) or an event naming an order
                // (`order_id`); one that does not parse names nobody.
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT id, payload FROM webhook_dead_letters WHERE shop_domain = $1 AND payload_purged_at IS NULL",
                )
                .bind(shop)
                .fetch_all(&self.pool)
                .await?;
                let text = |v: Option<&serde_json::Value>| match v {
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                rows.into_iter()
                    .filter(|(_, payload)| {
                        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(payload) else {
                            return false;
                        };
                        let names_order = [doc.get("id"), doc.get("order_id")]
                            .into_iter()
                            .filter_map(text)
                            .any(|id| orders.contains(&id));
                        let names_customer = customer.is_some_and(|c| {
                            text(doc.get("customer").and_then(|cu| cu.get("id"))).as_deref()
                                == Some(c)
                        });
                        names_order || names_customer
                    })
                    .map(|(id, _)| id)
                    .collect()
            }
        };
        Ok(sqlx::query(
            "UPDATE webhook_dead_letters SET payload = '', payload_purged_at = now() WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
