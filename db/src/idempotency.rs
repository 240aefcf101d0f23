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
        let stored: String = sqlx::query_scalar(
            r#"
            WITH ins AS (
                INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3)
                ON CONFLICT (key) DO NOTHING
                RETURNING request_hash
            )
            SELECT request_hash FROM ins
            UNION ALL
            SELECT request_hash FROM idempotency_keys WHERE key = $1
            LIMIT 1
            "#,
        )
        .bind(key)
        .bind(request_hash)
        .bind(order_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(stored == request_hash)
    }
}
