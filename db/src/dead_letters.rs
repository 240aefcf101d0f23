//! Webhooks that were signed but could not be processed, kept for replay.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{connection::Db, error::DbError};

/// One dead-lettered webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    /// Its id (what `replay` takes).
    pub id: i64,
    /// The shop that sent it.
    pub shop_domain: String,
    /// Its topic.
    pub topic: String,
    /// Shopify's delivery id, if sent.
    pub webhook_id: Option<String>,
    /// Latest reason it could not be processed (names fields, never values).
    pub error: String,
    /// The raw, signature-checked body. Holds customer data: never log it.
    pub payload: Vec<u8>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// When a replay started its order.
    pub replayed_at: Option<DateTime<Utc>>,
    /// The order that replay started.
    pub replayed_order_id: Option<Uuid>,
    /// Replays tried so far.
    pub replay_attempts: i32,
    /// When the payload was emptied after the retention period.
    pub payload_purged_at: Option<DateTime<Utc>>,
    /// The order it concerns, when it named one the OMS did not have.
    pub order_id: Option<Uuid>,
}

impl Db {
    /// Keeps a signed payload that cannot be processed; returns its id.
    pub async fn dead_letter(
        &self,
        shop: &str,
        topic: &str,
        webhook_id: Option<&str>,
        error: &str,
        payload: &[u8],
    ) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO webhook_dead_letters (shop_domain, topic, webhook_id, error, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(shop)
        .bind(topic)
        .bind(webhook_id)
        .bind(error)
        .bind(payload)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Keeps a signed cancellation of `order_id`, an order the OMS does not
    /// have (yet); returns its id.
    pub async fn dead_letter_cancellation(
        &self,
        shop: &str,
        webhook_id: Option<&str>,
        error: &str,
        payload: &[u8],
        order_id: Uuid,
    ) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO webhook_dead_letters (shop_domain, topic, webhook_id, error, payload, order_id) VALUES ($1, 'orders/cancelled', $2, $3, $4, $5) RETURNING id",
        )
        .bind(shop)
        .bind(webhook_id)
        .bind(error)
        .bind(payload)
        .bind(order_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A cancellation of `order_id` kept before the order arrived, if any.
    pub async fn early_cancellation(&self, order_id: Uuid) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM webhook_dead_letters WHERE order_id = $1 AND topic = 'orders/cancelled' ORDER BY id LIMIT 1",
        )
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Empties the payloads of dead letters received more than `retention`
    /// ago; returns how many. Batches of 1,000 keep each statement short.
    pub async fn purge_dead_letter_payloads(
        &self,
        retention: std::time::Duration,
    ) -> Result<u64, DbError> {
        let mut purged = 0;
        loop {
            let n = sqlx::query(
                r#"
                UPDATE webhook_dead_letters SET payload = '', payload_purged_at = now()
                WHERE id IN (SELECT id FROM webhook_dead_letters
                             WHERE payload_purged_at IS NULL
                               AND received_at < now() - make_interval(secs => $1)
                             LIMIT 1000)
                "#,
            )
            .bind(retention.as_secs_f64())
            .execute(&self.pool)
            .await?
            .rows_affected();
            purged += n;
            if n < 1000 {
                return Ok(purged);
            }
        }
    }

    /// Dead letters, oldest first; only those not replayed yet unless `all`.
    pub async fn dead_letters(&self, all: bool, limit: i64) -> Result<Vec<DeadLetter>, DbError> {
        Ok(sqlx::query_as(
            "SELECT * FROM webhook_dead_letters WHERE $1 OR replayed_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(all)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// One dead letter.
    pub async fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>, DbError> {
        Ok(
            sqlx::query_as("SELECT * FROM webhook_dead_letters WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records a replay attempt: with `Ok(order)` it went through (and
    /// concerns that order, if one), with `Err(reason)` why it failed again.
    pub async fn record_replay(
        &self,
        id: i64,
        result: Result<Option<Uuid>, &str>,
    ) -> Result<(), DbError> {
        let (done, order, error) = match result {
            Ok(order) => (true, order, None),
            Err(reason) => (false, None, Some(reason)),
        };
        sqlx::query(
            "UPDATE webhook_dead_letters SET replay_attempts = replay_attempts + 1, \
             replayed_at = CASE WHEN $4 THEN coalesce(replayed_at, now()) ELSE replayed_at END, \
             replayed_order_id = coalesce(replayed_order_id, $2), \
             error = coalesce($3, error) WHERE id = $1",
        )
        .bind(id)
        .bind(order)
        .bind(error)
        .bind(done)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
