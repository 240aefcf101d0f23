//! The API's one error type and its one response shape.
//!
//! Every failure leaves as `application/problem+json` (RFC 9457) with a
//! stable machine-readable `code` next to the human `detail`, so clients
//! branch on `code` and people read `detail`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use db::DbError;
use domain::{DomainError, LineProblem, OrderStatus};
use serde::Serialize;

/// One offending field of a request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `lines[2].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value breaks a rule; `code` names which.
    #[error("{detail}")]
    BadRequest {
        /// Stable error code, e.g. `invalid_stock`.
        code: &'static str,
        /// What was wrong, for people.
        detail: String,
    },
    /// Fields of the body or query break rules; every one is named.
    #[error("invalid request: {}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// The Idempotency-Key was already used with another body.
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    /// The order could not be allocated (nothing was reserved).
    #[error("order {order_id} was rejected: {}", reasons(.problems).join("; "))]
    OrderRejected {
        /// The order.
        order_id: uuid::Uuid,
        /// One per failing line.
        problems: Vec<LineProblem>,
    },
    /// The order's status does not allow the requested move.
    #[error("an order in {from} cannot become {to}; allowed: {}", allowed(*.from))]
    IllegalTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// The workflow refused or could not apply the change.
    #[error("{0}")]
    TransitionRefused(String),
    /// The client exceeded its rate.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after_secs: u64,
    },
    /// Too many requests in flight in this process.
    #[error("the service is at capacity; retry shortly")]
    Overloaded,
    /// The body exceeds the configured limit.
    #[error("request body exceeds the size limit (OMS_BODY_LIMIT_BYTES)")]
    PayloadTooLarge,
    /// The body is declared as something other than JSON.
    #[error("content type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    /// No route matches the path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// No API key, or one that is not live.
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    /// The key lacks the route's scope.
    #[error("this API key lacks the `{scope}` scope this route requires")]
    Forbidden {
        /// The scope the route needs.
        scope: domain::Scope,
    },
    /// Keys cannot be checked right now (never loaded, Postgres down).
    #[error("API keys cannot be checked: the database does not answer")]
    KeysUnavailable,
    /// A webhook from an unknown shop or with a bad signature.
    #[error("unknown shop or invalid webhook signature")]
    WebhookUnauthorized,
    /// The order is still being allocated or handed to the warehouse and
    /// its workflow takes the change only once that settles: retry.
    #[error("order {order_id} is still being allocated; retry shortly")]
    OrderNotReady {
        /// The order.
        order_id: uuid::Uuid,
    },
    /// Temporal is unreachable: the caller should retry.
    #[error(transparent)]
    Temporal(#[from] orchestrator::TemporalError),
    /// The database refused or failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// A 400 for a domain value that failed to parse.
    pub fn invalid(err: DomainError) -> Self {
        let code = match err {
            DomainError::InvalidSku(_) => "invalid_sku",
            DomainError::InvalidQuantity(_) => "invalid_quantity",
            DomainError::InvalidReservationToken(_) => "invalid_reservation_token",
            DomainError::UnknownReservationState(_) | DomainError::UnknownOrderStatus(_) => {
                "invalid_status"
            }
            DomainError::UnknownChannel(_) => "invalid_channel",
            DomainError::InvalidPrice(_) => "invalid_price",
            DomainError::InvalidShopDomain(_) => "invalid_shop_domain",
            DomainError::UnknownScope(_) => "invalid_scope",
            DomainError::UnknownFinancialStatus(_) => "invalid_financial_status",
        };
        Self::bad_request(code, err.to_string())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::Validation(_) => (S::BAD_REQUEST, "validation_failed", "Validation failed"),
            Self::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
            Self::Overloaded => (S::SERVICE_UNAVAILABLE, "overloaded", "Service at capacity"),
            Self::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            Self::OrderRejected { .. } => (S::CONFLICT, "order_rejected", "Order rejected"),
            Self::IllegalTransition { .. } => {
                (S::CONFLICT, "illegal_transition", "Illegal transition")
            }
            Self::TransitionRefused(_) => (S::CONFLICT, "transition_refused", "Transition refused"),
            Self::BadRequest { code, .. } => (S::BAD_REQUEST, code, "Bad request"),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::RouteNotFound(_) => (S::NOT_FOUND, "route_not_found", "Not found"),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::WebhookUnauthorized => (S::UNAUTHORIZED, "webhook_unauthorized", "Unauthorized"),
            Self::Unauthorized => (S::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden { .. } => (S::FORBIDDEN, "forbidden", "Forbidden"),
            Self::KeysUnavailable => (
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Temporarily unavailable",
            ),
            Self::OrderNotReady { .. } => {
                (S::SERVICE_UNAVAILABLE, "order_not_ready", "Order not ready")
            }
            Self::Temporal(_) => (
                S::SERVICE_UNAVAILABLE,
                "orchestrator_unavailable",
                "Temporarily unavailable",
            ),
            Self::Db(e) if e.is_busy() => (
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Temporarily unavailable",
            ),
            Self::Db(e) => match e {
                DbError::ProductNotFound(_) => {
                    (S::NOT_FOUND, "product_not_found", "Product not found")
                }
                DbError::OutOfStock { .. } => (S::CONFLICT, "out_of_stock", "Out of stock"),
                DbError::ReservationNotFound => (
                    S::NOT_FOUND,
                    "reservation_not_found",
                    "Reservation not found",
                ),
                DbError::StockTotalTooLarge { .. } => (
                    S::CONFLICT,
                    "stock_total_too_large",
                    "Stock total too large",
                ),
                DbError::ReservationHeldByOrder(_) => (
                    S::CONFLICT,
                    "reservation_held_by_order",
                    "Reservation held by an order",
                ),
                DbError::ReservationConsumed(_) => (
                    S::CONFLICT,
                    "reservation_already_used",
                    "Reservation already used",
                ),

                DbError::OrderNotFound(_) => (S::NOT_FOUND, "order_not_found", "Order not found"),
                DbError::IllegalTransition { .. } => {
                    (S::CONFLICT, "illegal_transition", "Illegal transition")
                }
                DbError::BatchFailed
                | DbError::ShuttingDown
                | DbError::Database(_)
                | DbError::Migrate(_)
                | DbError::Corrupt(_) => {
                    (S::INTERNAL_SERVER_ERROR, "internal_error", "Internal error")
                }
            },
        }
    }
}

/// Names of the statuses a client may request from `from`.
fn requestable(from: OrderStatus) -> Vec<&'static str> {
    from.requestable_next().iter().map(|s| s.as_str()).collect()
}

/// One readable reason per failing line.
fn reasons(problems: &[LineProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn allowed(from: OrderStatus) -> String {
    let next = requestable(from);
    if next.is_empty() {
        "none".into()
    } else {
        next.join(", ")
    }
}

/// The shape of every error: RFC 9457 problem details plus a stable `code`
/// to branch on, and `errors` naming the offending fields where there are
/// any. Some problems add members of their own (`currentStatus` and
/// `allowedStatuses` of an illegal transition, `reasons` of a rejection).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:oms:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine-readable code to branch on.
    pub code: &'static str,
    /// What went wrong, for people.
    pub detail: String,
    /// The offending fields, when the request had invalid ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    /// Members of particular problems.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Logged here, once; the client gets no internals.
            tracing::error!(error = %self, "request failed");
            "an internal error occurred; it has been logged".to_string()
        } else {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %self, "request shed");
            }
            self.to_string()
        };
        let mut extra = serde_json::Map::new();
        match &self {
            Self::IllegalTransition { from, .. } => {
                extra.insert("currentStatus".into(), from.as_str().into());
                extra.insert("allowedStatuses".into(), requestable(*from).into());
            }
            Self::Forbidden { scope } => {
                extra.insert("requiredScope".into(), scope.as_str().into());
            }
            Self::OrderRejected { order_id, problems } => {
                extra.insert("orderId".into(), order_id.to_string().into());
                extra.insert("reasons".into(), reasons(problems).into());
            }
            _ => {}
        }
        let errors = match &self {
            Self::Validation(fields) => fields.clone(),
            _ => Vec::new(),
        };
        let body = Problem {
            kind: format!("urn:oms:problem:{code}"),
            title,
            status: status.as_u16(),
            code,
            detail,
            errors,
            extra,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::RateLimited { retry_after_secs } = &self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        if matches!(self, Self::Unauthorized) {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"oms\""),
            );
        }
        response
    }
}
