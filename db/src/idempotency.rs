//! Idempotency keys of `POST /orders`: one key names one request body forever.

use uuid::Uuid;

use crate::{connection::Db, error::DbError};

impl Db {
    /// Claims an idempotency key for a request body (by hash) and an order.
    /// Returns `Ok(true)` if the key is new or was claimed with the same body,
    /// `Ok(false)` if it was claimed with another body.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        request_hash: &str,
        order_id: Uuid,
    ) -> Result<bool, DbError> {
        // Two statements on purpose. When another request is claiming the
        // same key at this moment, the INSERT waits for its transaction and
        // then does nothing; only a statement that starts after that (a new
        // snapshot) can see the row it committed.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(request_hash)
        .bind(order_id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok(true);
        }
        let stored: String =
            sqlx::query_scalar("SELECT request_hash FROM idempotency_keys WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                // Keys are never deleted: one that conflicted exists.
                .ok_or_else(|| DbError::Corrupt(format!("idempotency key {key:?} vanished")))?;
        Ok(stored == request_hash)
    }
}
