//! Rate limiting and back-pressure at the HTTP edge.
//!
//! Limits are charged to an identity only once it is verified: an API key
//! after it authenticated, a shop after its webhook's signature checked out.
//! Everything unverified (no key, a wrong key, a bad signature) shares one
//! small budget of its own, so a flood that names a shop or guesses keys
//! cannot spend anyone's quota. A caller over its rate gets 429 with
//! `Retry-After`. Independently, a bound on requests in flight turns a spike
//! the process cannot absorb into fast 503s instead of timeouts. Orders
//! themselves queue in Temporal, so accepting one is cheap and its
//! processing is paced by the workers.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::ApiError;

/// A bucket's refill rate and size. A rate of 0 disables limiting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens a bucket holds (the burst a client may send at once).
    pub burst: f64,
}

impl Rate {
    /// No limit.
    pub const OFF: Self = Self {
        per_second: 0.0,
        burst: 0.0,
    };

    /// A rate, checked: a positive rate needs a burst of at least one
    /// request; 0 turns the limit off.
    pub fn new(per_second: f64, burst: f64) -> Result<Self, String> {
        if !per_second.is_finite() || per_second < 0.0 {
            return Err(format!(
                "rate must be 0 (off) or a positive number of requests per second, got {per_second}"
            ));
        }
        if per_second > 0.0 && (!burst.is_finite() || burst < 1.0) {
            return Err(format!(
                "burst must be at least 1 request when the rate is on, got {burst}"
            ));
        }
        Ok(Self { per_second, burst })
    }

    fn is_on(self) -> bool {
        self.per_second > 0.0
    }
}

/// Limits of the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Per API key, unless the key has a rate of its own.
    pub client: Rate,
    /// Per Shopify shop, for webhooks whose signature verified.
    pub webhook: Rate,
    /// Shared by every request that is not verified.
    pub unauthenticated: Rate,
    /// Requests processed at once by this process; 0 = unbounded.
    pub max_in_flight: usize,
}

impl LimitSettings {
    /// No limits at all (benchmarks, most tests).
    pub fn unlimited() -> Self {
        Self {
            client: Rate::OFF,
            webhook: Rate::OFF,
            unauthenticated: Rate::OFF,
            max_in_flight: 0,
        }
    }
}

/// Whose bucket a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// An authenticated API key.
    ApiKey(Uuid),
    /// A shop whose webhook signature verified.
    Shop(String),
    /// The warehouse, once its webhook's signature verified.
    Warehouse,
    /// Everyone not verified.
    Unauthenticated,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per verified identity; cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    settings: Arc<LimitSettings>,
    buckets: Arc<Mutex<HashMap<LimitKey, Bucket>>>,
    in_flight: Option<Arc<Semaphore>>,
    max_buckets: usize,
}

/// Buckets kept at most. Identities are keys and shops from our own
/// configuration, so this is far above what a deployment has; it bounds
/// memory even so (the least recently used bucket makes room).
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    /// Builds the limiter.
    pub fn new(settings: LimitSettings) -> Self {
        Self::with_capacity(settings, MAX_BUCKETS)
    }

    /// Builds the limiter, keeping at most `max_buckets` buckets.
    pub fn with_capacity(settings: LimitSettings, max_buckets: usize) -> Self {
        let in_flight =
            (settings.max_in_flight > 0).then(|| Arc::new(Semaphore::new(settings.max_in_flight)));
        Self {
            settings: Arc::new(settings),
            buckets: Arc::default(),
            in_flight,
            max_buckets: max_buckets.max(1),
        }
    }

    /// Charges one request to `key` (at its own rate if it has one, else the
    /// default for its kind); a 429 with the wait when its bucket is empty.
    pub fn check(&self, key: LimitKey, own_rate: Option<Rate>) -> Result<(), ApiError> {
        let rate = own_rate.unwrap_or(match key {
            LimitKey::ApiKey(_) => self.settings.client,
            LimitKey::Shop(_) | LimitKey::Warehouse => self.settings.webhook,
            LimitKey::Unauthenticated => self.settings.unauthenticated,
        });
        // Disabled limits cost nothing on the hot path: no lock is taken.
        if !rate.is_on() {
            return Ok(());
        }
        self.take(key, rate).map_err(|wait| ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Buckets held now.
    pub fn buckets(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LimitKey, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there.
    fn take(&self, key: LimitKey, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() >= self.max_buckets && !buckets.contains_key(&key) {
            // A bucket idle long enough to be full again carries no state.
            let full_after = Duration::from_secs_f64(rate.burst / rate.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < full_after);
            if buckets.len() >= self.max_buckets
                && let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let burst = rate.burst.max(1.0);
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / rate.per_second,
            ))
        }
    }
}

/// The outer middleware: bound what runs at once. Probes and scrapes are
/// never shed, so the process stays visible when it is busiest.
pub async fn bound_in_flight(
    State(limiter): State<Limiter>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    let _permit = match &limiter.in_flight {
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return ApiError::Overloaded.into_response(),
        },
        None => None,
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_buckets: usize) -> Limiter {
        Limiter::with_capacity(
            LimitSettings {
                client: Rate::new(1.0, 2.0).unwrap(),
                ..LimitSettings::unlimited()
            },
            max_buckets,
        )
    }

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let l = limiter(10);
        let key = LimitKey::ApiKey(Uuid::new_v4());
        assert!(l.check(key.clone(), None).is_ok());
        assert!(l.check(key.clone(), None).is_ok());
        assert!(matches!(
            l.check(key.clone(), None),
            Err(ApiError::RateLimited {
                retry_after_secs: 1
            })
        ));
        // A key with a rate of its own is charged at that rate.
        let generous = Rate::new(100.0, 100.0).unwrap();
        let batch = LimitKey::ApiKey(Uuid::new_v4());
        for _ in 0..100 {
            assert!(l.check(batch.clone(), Some(generous)).is_ok());
        }
        assert!(l.check(batch, Some(generous)).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_many_busy_keys() {
        let l = limiter(100);
        for _ in 0..10_000 {
            let _ = l.check(LimitKey::ApiKey(Uuid::new_v4()), None);
        }
        assert!(l.buckets() <= 100, "{} buckets", l.buckets());
    }

    #[test]
    fn negative_or_empty_settings_are_refused() {
        assert!(Rate::new(-1.0, 10.0).is_err());
        assert!(Rate::new(5.0, -3.0).is_err());
        assert!(Rate::new(5.0, 0.5).is_err());
        assert!(Rate::new(f64::NAN, 1.0).is_err());
        assert_eq!(Rate::new(0.0, 0.0).unwrap(), Rate::OFF);
    }
}
