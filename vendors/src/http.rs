//! What the external clients share: one error type and how HTTP answers map
//! onto it (4xx → permanent, 429 → retry after the server's delay,
//! 5xx/timeouts → retry).

use std::time::Duration;

use reqwest::{Response, StatusCode, header::HeaderMap};

/// A failed call to Shopify or the WMS, classified for the retry policy.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request will never succeed as it is (4xx other than 429, GraphQL
    /// errors, userErrors): do not retry.
    #[error("{service} refused the request ({status}): {message}")]
    Permanent {
        /// Which API.
        service: &'static str,
        /// HTTP status (200 for GraphQL-level errors).
        status: u16,
        /// What the service said (truncated).
        message: String,
    },
    /// The service asked us to slow down; retry after `retry_after` if given.
    #[error("{service} rate-limited the request (retry after {retry_after:?})")]
    RateLimited {
        /// Which API.
        service: &'static str,
        /// The server's requested delay.
        retry_after: Option<Duration>,
    },
    /// A server error, timeout or connection failure: retry with backoff.
    #[error("{service} is unavailable: {message}")]
    Transient {
        /// Which API.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// Classifies a transport error (no HTTP answer at all).
    pub(crate) fn transport(service: &'static str, e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        Self::Transient {
            service,
            message: kind.to_string(),
        }
    }

    /// Classifies a non-success HTTP answer, reading at most a little of its body.
    pub(crate) async fn from_status(service: &'static str, response: Response) -> Self {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        let message: String = body.chars().take(300).collect();
        if status == StatusCode::TOO_MANY_REQUESTS {
            Self::RateLimited {
                service,
                retry_after,
            }
        } else if status.is_client_error() {
            Self::Permanent {
                service,
                status: status.as_u16(),
                message,
            }
        } else {
            Self::Transient {
                service,
                message: format!("HTTP {status}: {message}"),
            }
        }
    }
}

/// The delay a server asked for: `Retry-After` in seconds (standard), or
/// ShipBob's `x-retry-after`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-retry-after"].iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)))
    })
}
