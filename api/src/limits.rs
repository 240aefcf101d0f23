//! Rate limiting and back-pressure at the HTTP edge.
//!
//! Each client gets a token bucket (identified by `X-Client-Id`, else its IP
//! address; webhooks by shop). A client over its rate gets 429 with
//! `Retry-After`, so one noisy client cannot starve the others. Independently,
//! a bound on requests in flight turns a spike the process cannot absorb into
//! fast 503s instead of timeouts. Orders themselves queue in Temporal, so
//! accepting an order is cheap and its processing is paced by the workers.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderValue,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;

use crate::{error::ApiError, extract::header};

/// A bucket's refill rate and size. A rate of 0 disables limiting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens a bucket holds (the burst a client may send at once).
    pub burst: f64,
}

/// Limits of the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    /// Per client of the API.
    pub client: Rate,
    /// Per Shopify shop on the webhook route.
    pub webhook: Rate,
    /// Requests processed at once by this process; 0 = unbounded.
    pub max_in_flight: usize,
}

impl LimitSettings {
    /// No limits at all (benchmarks, most tests).
    pub fn unlimited() -> Self {
        let off = Rate {
            per_second: 0.0,
            burst: 0.0,
        };
        Self {
            client: off,
            webhook: off,
            max_in_flight: 0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per key; cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    settings: Arc<LimitSettings>,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
    in_flight: Option<Arc<Semaphore>>,
}

/// Buckets kept before idle ones are dropped (bounds memory under many clients).
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    /// Builds the limiter.
    pub fn new(settings: LimitSettings) -> Self {
        let in_flight =
            (settings.max_in_flight > 0).then(|| Arc::new(Semaphore::new(settings.max_in_flight)));
        Self {
            settings: Arc::new(settings),
            buckets: Arc::default(),
            in_flight,
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there.
    fn take(&self, key: String, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            // A bucket idle long enough to be full again carries no state.
            let full_after = Duration::from_secs_f64(rate.burst / rate.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < full_after);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst.max(1.0),
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(rate.burst.max(1.0));
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

/// The middleware: rate limit, then bound what runs at once.
pub async fn limit(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // Probes and scrapes must see the process even when clients are throttled.
    if path.starts_with("/health/") || path == "/metrics" {
        return next.run(request).await;
    }
    let webhook = path == "/webhooks/shopify";
    let rate = if webhook {
        limiter.settings.webhook
    } else {
        limiter.settings.client
    };
    // Disabled limits cost nothing on the hot path: no key is built.
    if rate.per_second > 0.0 {
        let key = if webhook {
            let shop = header(request.headers(), "x-shopify-shop-domain")
                .unwrap_or("unknown")
                .to_ascii_lowercase();
            format!("shop:{shop}")
        } else {
            let client = header(request.headers(), "x-client-id")
                .map(str::to_string)
                .unwrap_or_else(|| {
                    request
                        .extensions()
                        .get::<ConnectInfo<SocketAddr>>()
                        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
                });
            format!("client:{client}")
        };
        if let Err(wait) = limiter.take(key, rate) {
            let secs = wait.as_secs_f64().ceil().max(1.0);
            let mut response = ApiError::RateLimited {
                retry_after_secs: secs as u64,
            }
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{secs}")) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            return response;
        }
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
