//! API keys: issuing them, and knowing the live ones.
//!
//! A key is `oms_` followed by 256 random bits (base64url). Postgres keeps
//! only its SHA-256, so a database dump authenticates nothing; the key is
//! shown once, when an operator creates it. Every process keeps the live
//! keys in memory and reloads them every `refresh_every`, so authenticating
//! costs one hash and a map look-up, never a query per request. A key the
//! cache does not know triggers at most one reload per second (new keys work
//! within a second; a flood of made-up keys costs one query a second, not
//! one each).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use db::{Db, DbError, NewApiKey};
use domain::Scopes;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::limits::Rate;

/// Prefix of every key: recognisable in a secret scanner and in a config.
const KEY_PREFIX: &str = "oms_";

/// Longest `Authorization` value hashed at all.
const MAX_KEY_LEN: usize = 200;

/// Least time between two reloads caused by unknown keys.
const MISS_RELOAD_EVERY: Duration = Duration::from_secs(1);

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's id.
    pub key_id: Uuid,
    /// The key's name.
    pub name: Arc<str>,
    /// What it may do.
    pub scopes: Scopes,
    /// Its own rate limit, if it has one.
    pub rate: Option<Rate>,
}

/// A key as it was issued: the only time its text exists outside the client.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// Its id.
    pub id: Uuid,
    /// The key itself (`oms_…`).
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its scopes, by name.
    pub scopes: Vec<&'static str>,
}

/// Why a key could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The name is empty or longer than 100 characters.
    #[error("the key's name must be 1 to 100 characters")]
    InvalidName,
    /// A scope name is unknown, or none was given.
    #[error(transparent)]
    InvalidScopes(#[from] domain::DomainError),
    /// The rate or burst is out of range.
    #[error("{0}")]
    InvalidRate(String),
    /// Storing it failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Creates a key with `scopes` (names, e.g. `inventory:write`) and, if
/// given, a rate limit of its own.
pub async fn issue_key(
    db: &Db,
    name: &str,
    scopes: &[&str],
    rate: Option<Rate>,
) -> Result<IssuedKey, KeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(KeyError::InvalidName);
    }
    let parsed = Scopes::parse(scopes.iter().copied())?;
    if let Some(rate) = rate {
        Rate::new(rate.per_second, rate.burst).map_err(KeyError::InvalidRate)?;
    }
    let mut random = [0u8; 32];
    random[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    random[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let id = Uuid::new_v4();
    let names = parsed.names();
    db.insert_api_key(&NewApiKey {
        id,
        name,
        key_hash: &hash(&key),
        scopes: &names,
        rate_per_second: rate.map(|r| r.per_second),
        burst: rate.map(|r| r.burst),
    })
    .await?;
    Ok(IssuedKey {
        id,
        key,
        name: name.to_string(),
        scopes: names,
    })
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The live keys, cached; cheap to clone.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    refresh_every: Duration,
    snapshot: RwLock<Snapshot>,
    // Held while reloading, so concurrent misses cause one query.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<[u8; 32], Arc<Principal>>,
    loaded_at: Option<Instant>,
    tried_at: Option<Instant>,
}

impl KeyStore {
    /// A store over `db`, reloaded every `refresh_every` (how long a revoked
    /// key may still work in a running process).
    pub fn new(db: Db, refresh_every: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                refresh_every,
                snapshot: RwLock::default(),
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The caller presenting `key`, if it is a live key. Fails only when
    /// the keys were never loaded and Postgres does not answer now.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Arc<Principal>>, KeysUnavailable> {
        if !key.starts_with(KEY_PREFIX) || key.len() > MAX_KEY_LEN {
            return Ok(None);
        }
        let hash = hash(key);
        {
            let s = self.read();
            let now = Instant::now();
            let found = s.keys.get(&hash).cloned();
            let fresh = s
                .loaded_at
                .is_some_and(|t| now.duration_since(t) < self.inner.refresh_every);
            let tried_recently = s
                .tried_at
                .is_some_and(|t| now.duration_since(t) < MISS_RELOAD_EVERY);
            if (found.is_some() && fresh) || (tried_recently && s.loaded_at.is_some()) {
                return Ok(found);
            }
        }
        self.reload().await;
        let s = self.read();
        if s.loaded_at.is_none() {
            return Err(KeysUnavailable);
        }
        Ok(s.keys.get(&hash).cloned())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reloads the keys, at most once a second whoever asks.
    async fn reload(&self) {
        let _reloading = self.inner.reloading.lock().await;
        if self
            .read()
            .tried_at
            .is_some_and(|t| t.elapsed() < MISS_RELOAD_EVERY)
        {
            return;
        }
        let loaded = self.inner.db.api_keys(false).await;
        let mut s = self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.tried_at = Some(Instant::now());
        let records = match loaded {
            Ok(records) => records,
            Err(e) => {
                // The keys known so far stay valid through a database blip.
                tracing::warn!(error = %e, "loading API keys failed; keeping the known ones");
                return;
            }
        };
        s.keys = records
            .into_iter()
            .filter_map(|r| {
                let hash: [u8; 32] = r.key_hash.as_slice().try_into().ok()?;
                let scopes = match Scopes::parse(r.scopes.iter().map(String::as_str)) {
                    Ok(scopes) => scopes,
                    Err(e) => {
                        // Written by a newer release, perhaps: the key gets nothing here.
                        tracing::warn!(api_key.id = %r.id, error = %e, "API key with unknown scopes ignored");
                        return None;
                    }
                };
                let rate = r
                    .rate_per_second
                    .zip(r.burst)
                    .and_then(|(per_second, burst)| Rate::new(per_second, burst).ok());
                let principal = Principal {
                    key_id: r.id,
                    name: r.name.into(),
                    scopes,
                    rate,
                };
                Some((hash, Arc::new(principal)))
            })
            .collect();
        s.loaded_at = s.tried_at;
    }
}

/// The keys could not be loaded at all: nobody can be authenticated now.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("API keys cannot be checked: the database does not answer")]
pub struct KeysUnavailable;
