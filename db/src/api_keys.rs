//! API keys of the REST API's clients, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{connection::Db, error::DbError};

/// A key as stored: never the key itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRecord {
    /// Its id (what `keys revoke` takes; what limits and logs name).
    pub id: Uuid,
    /// Who holds it, for people.
    pub name: String,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// Scope names.
    pub scopes: Vec<String>,
    /// Its own rate limit (requests per second), if not the default.
    pub rate_per_second: Option<f64>,
    /// Its own burst, if not the default.
    pub burst: Option<f64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    /// Its id.
    pub id: Uuid,
    /// Who holds it.
    pub name: &'a str,
    /// SHA-256 of the key.
    pub key_hash: &'a [u8],
    /// Scope names (already parsed by the caller).
    pub scopes: &'a [&'a str],
    /// Its own rate, if any.
    pub rate_per_second: Option<f64>,
    /// Its own burst, if any.
    pub burst: Option<f64>,
}

impl Db {
    /// Stores a new key.
    pub async fn insert_api_key(&self, key: &NewApiKey<'_>) -> Result<ApiKeyRecord, DbError> {
        Ok(sqlx::query_as(
            r#"
            INSERT INTO api_keys (id, name, key_hash, scopes, rate_per_second, burst)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING *
            "#,
        )
        .bind(key.id)
        .bind(key.name)
        .bind(key.key_hash)
        .bind(key.scopes)
        .bind(key.rate_per_second)
        .bind(key.burst)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every key, newest first; revoked ones only with `all`.
    pub async fn api_keys(&self, all: bool) -> Result<Vec<ApiKeyRecord>, DbError> {
        Ok(sqlx::query_as(
            "SELECT * FROM api_keys WHERE $1 OR revoked_at IS NULL ORDER BY created_at DESC, id",
        )
        .bind(all)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes a key; false when there is no such live key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }
}
