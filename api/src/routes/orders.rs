//! The orders API (seed 002): place an order, read it, list them, move its status.

use std::time::{Duration, Instant};

use activities::{
    store::{OrderCursor, OrderDetail, OrderFilter, OrderSummary},
    temporal::{ChangeError, Started},
};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use domain::{Channel, OrderStatus, Quantity, Sku, order_id_for};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use workflows::contracts::{Address, LineInput, OrderInput, StatusChange};

use crate::{ApiError, error::FieldError, extract::JsonBody, startup::AppState};

/// Longest wait a client may ask for with `Prefer: wait=N`.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most lines in one order.
const MAX_LINES: usize = 250;

/// Body of `POST /orders`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrderDto {
    customer_reference: String,
    lines: Vec<NewLineDto>,
    shipping_address: AddressDto,
}

/// One requested line.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLineDto {
    sku: String,
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000_000)]
    quantity: serde_json::Number,
}

/// Where to ship.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressDto {
    name: String,
    address1: String,
    address2: Option<String>,
    city: String,
    province_code: Option<String>,
    zip: String,
    country_code: String,
    phone: Option<String>,
}

/// A validated order request; its canonical JSON is what the idempotency
/// key is bound to.
#[derive(Debug, Serialize)]
struct ValidOrder {
    customer_reference: String,
    lines: Vec<(String, i32)>,
    address: Address,
}

fn required(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    let len = value.trim().chars().count();
    if len == 0 {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if len > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

impl NewOrderDto {
    /// Checks every field, reporting all problems at once.
    fn validate(self) -> Result<ValidOrder, ApiError> {
        let mut errors = Vec::new();
        required(
            &mut errors,
            "customerReference",
            &self.customer_reference,
            100,
        );
        if self.lines.is_empty() {
            errors.push(FieldError::new("lines", "must contain at least one line"));
        } else if self.lines.len() > MAX_LINES {
            errors.push(FieldError::new(
                "lines",
                format!("must contain at most {MAX_LINES} lines"),
            ));
        }
        let mut lines = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let sku = Sku::parse(line.sku.clone())
                .map_err(|e| FieldError::new(format!("lines[{i}].sku"), e.to_string()));
            let qty = Quantity::try_from(&line.quantity)
                .map_err(|e| FieldError::new(format!("lines[{i}].quantity"), e.to_string()));
            match (sku, qty) {
                (Ok(sku), Ok(qty)) => lines.push((sku.into_inner(), qty.get())),
                (sku, qty) => errors.extend(sku.err().into_iter().chain(qty.err())),
            }
        }
        let a = &self.shipping_address;
        required(&mut errors, "shippingAddress.name", &a.name, 200);
        required(&mut errors, "shippingAddress.address1", &a.address1, 200);
        required(&mut errors, "shippingAddress.city", &a.city, 100);
        required(&mut errors, "shippingAddress.zip", &a.zip, 20);
        if a.country_code.len() != 2 || !a.country_code.chars().all(|c| c.is_ascii_alphabetic()) {
            errors.push(FieldError::new(
                "shippingAddress.countryCode",
                "must be a two-letter ISO 3166-1 code",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let a = self.shipping_address;
        Ok(ValidOrder {
            customer_reference: self.customer_reference.trim().to_string(),
            lines,
            address: Address {
                name: Some(a.name),
                address1: Some(a.address1),
                address2: a.address2,
                city: Some(a.city),
                province_code: a.province_code,
                zip: Some(a.zip),
                country_code: Some(a.country_code.to_ascii_uppercase()),
                phone: a.phone,
            },
        })
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_required",
                "the Idempotency-Key header is required",
            )
        })?
        .to_str()
        .map(str::trim)
        .unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(key.to_string())
}

/// `Prefer: wait=N` (RFC 7240), capped at [`MAX_WAIT`].
fn preferred_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| {
            let p = p.trim();
            let secs = p.strip_prefix("wait=")?.trim().parse::<u64>().ok()?;
            Some(Duration::from_secs(secs).min(MAX_WAIT))
        })
}

/// Answer of an accepted order that is still being processed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedDto {
    order_id: Uuid,
    status: String,
    workflow_id: String,
    status_url: String,
}

#[utoipa::path(post, path = "/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "Names this request; the same key with the same body is the same order"),
           ("Prefer" = Option<String>, Header, description = "`wait=N` (N ≤ 30): answer with the reservation outcome if it is known within N seconds")),
    request_body = NewOrderDto,
    responses((status = 202, description = "Accepted; `Location` is the status URL", body = AcceptedDto),
        (status = 201, description = "Reserved (with `Prefer: wait`)", body = OrderDetail),
        (status = 400, description = "Missing key or invalid fields", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Rejected: `reasons` has one entry per failing line (with `Prefer: wait`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Key reused with another body", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable; retry", body = crate::openapi::Problem, content_type = "application/problem+json")))]
/// Places an order through the same saga as Shopify orders.
pub async fn place(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewOrderDto>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let order = body.validate()?;
    let hash = hex(&Sha256::digest(
        serde_json::to_vec(&order).unwrap_or_default(),
    ));
    let order_id = order_id_for(Channel::Api, None, &key);
    if !state
        .store
        .claim_idempotency_key(&key, &hash, order_id)
        .await?
    {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let input = OrderInput {
        order_id,
        channel: Channel::Api,
        shop: None,
        external_id: key,
        name: Some(order.customer_reference),
        currency: None,
        placed_at: Some(Utc::now().to_rfc3339()),
        lines: order
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, (sku, quantity))| LineInput {
                line_no: i32::try_from(i + 1).unwrap_or(i32::MAX),
                sku,
                quantity,
                unit_price: None,
                external_line_id: None,
                title: None,
            })
            .collect(),
        shipping_address: Some(order.address),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        policy: state.saga_policy.clone(),
    };
    let workflow_id = match state.orchestrator.start_order(input).await? {
        Started::Running { workflow_id } | Started::AlreadyFinished { workflow_id } => workflow_id,
    };
    tracing::info!(order.id = %order_id, workflow.id = %workflow_id, "api order accepted");

    let location = format!("/orders/{order_id}");
    if let Some(wait) = preferred_wait(&headers) {
        let deadline = Instant::now() + wait;
        loop {
            let status = state.store.order_status(order_id).await?;
            match status
                .as_deref()
                .and_then(|s| s.parse::<OrderStatus>().ok())
            {
                Some(OrderStatus::Rejected) => {
                    let detail = state.store.order_detail(order_id).await?;
                    return Err(ApiError::OrderRejected {
                        order_id,
                        reason: detail.summary.status_reason.unwrap_or_default(),
                    });
                }
                Some(s) if s != OrderStatus::Received => {
                    let detail = state.store.order_detail(order_id).await?;
                    let mut r =
                        (StatusCode::CREATED, Json(detail_json(&state, detail))).into_response();
                    set_location(&mut r, &location);
                    r.headers_mut()
                        .insert("preference-applied", HeaderValue::from_static("wait"));
                    return Ok(r);
                }
                _ if Instant::now() >= deadline => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    let status = state
        .store
        .order_status(order_id)
        .await?
        .unwrap_or_else(|| "RECEIVED".into());
    let accepted = AcceptedDto {
        order_id,
        status,
        workflow_id,
        status_url: location.clone(),
    };
    let mut r = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    set_location(&mut r, &location);
    Ok(r)
}

fn set_location(r: &mut Response, location: &str) {
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_order_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request("invalid_order_id", "order ids are UUIDs"))
}

/// The order's JSON, with a link to its workflow in the Temporal UI.
fn detail_json(state: &AppState, detail: OrderDetail) -> Value {
    let link = format!(
        "{}/namespaces/{}/workflows/{}",
        state.temporal_ui_url.trim_end_matches('/'),
        state.temporal_namespace,
        detail.summary.workflow_id
    );
    let mut v = serde_json::to_value(detail).unwrap_or_default();
    v["temporalUrl"] = Value::String(link);
    v
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The order, with `temporalUrl`", body = OrderDetail),
        (status = 400, description = "Not a UUID", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = crate::openapi::Problem, content_type = "application/problem+json")))]
/// One order.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let detail = state.store.order_detail(parse_order_id(&id)?).await?;
    Ok(Json(detail_json(&state, detail)))
}

/// Query of `GET /orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    items: Vec<OrderSummary>,
    next_cursor: Option<String>,
}

fn parse_time(
    errors: &mut Vec<FieldError>,
    field: &str,
    raw: Option<&str>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z",
            ));
            None
        }
    }
}

/// The field error of a `status` that names no status.
fn unknown_status() -> FieldError {
    let all: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
    FieldError::new("status", format!("must be one of {}", all.join(", ")))
}

/// Reads `limit` (1…100, default 50).
pub fn parse_limit(errors: &mut Vec<FieldError>, raw: Option<&str>) -> i64 {
    match raw.map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            50
        }
    }
}

#[utoipa::path(get, path = "/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, description = "Invalid filters", body = crate::openapi::Problem, content_type = "application/problem+json")))]
/// Lists orders with filters and cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OrderPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let mut errors = Vec::new();
    if let Some(s) = &q.status
        && s.parse::<OrderStatus>().is_err()
    {
        errors.push(unknown_status());
    }
    if let Some(c) = &q.channel
        && c != "shopify"
        && c != "api"
    {
        errors.push(FieldError::new("channel", "must be shopify or api"));
    }
    let created_from = parse_time(&mut errors, "createdFrom", q.created_from.as_deref());
    let created_to = parse_time(&mut errors, "createdTo", q.created_to.as_deref());
    let limit = parse_limit(&mut errors, q.limit.as_deref());
    let cursor = match q.cursor.as_deref().map(decode_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            errors.push(FieldError::new(
                "cursor",
                "is not a cursor this API returned",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let filter = OrderFilter {
        status: q.status,
        channel: q.channel,
        created_from,
        created_to,
    };
    let (items, next) = state.store.list_orders(&filter, cursor, limit).await?;
    Ok(Json(OrderPage {
        items,
        next_cursor: next.map(encode_cursor),
    }))
}

fn encode_cursor(c: OrderCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", c.created_at.to_rfc3339(), c.id))
}

fn decode_cursor(raw: &str) -> Option<OrderCursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some(OrderCursor {
        created_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        id: Uuid::parse_str(id).ok()?,
    })
}

/// Body of `PATCH /orders/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusDto {
    /// SHIPPED, DELIVERED or CANCELLED.
    #[schema(value_type = OrderStatus)]
    status: String,
    reason: Option<String>,
}

#[utoipa::path(patch, path = "/orders/{id}/status", tag = "orders", params(("id" = Uuid, Path)),
    request_body = StatusDto,
    responses((status = 200, description = "The order after the change", body = OrderDetail),
        (status = 400, description = "Unknown status", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal now (`currentStatus`, `allowedStatuses`) or refused by the warehouse", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable; retry", body = crate::openapi::Problem, content_type = "application/problem+json")))]
/// Moves an order's status through its workflow.
pub async fn change_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusDto>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_order_id(&id)?;
    let to: OrderStatus = body
        .status
        .parse()
        .map_err(|_| ApiError::Validation(vec![unknown_status()]))?;
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "reason",
            "must be at most 500 characters",
        )]));
    }
    let detail = state.store.order_detail(id).await?;
    let from: OrderStatus = detail.summary.status.parse().map_err(|_| {
        ApiError::Store(activities::store::StoreError::Corrupt(
            "unknown status".into(),
        ))
    })?;
    if !from.requestable_next().contains(&to) {
        return Err(ApiError::IllegalTransition { from, to });
    }
    let change = StatusChange {
        to,
        reason: body.reason,
    };
    match state
        .orchestrator
        .change_status(&detail.summary.workflow_id, change)
        .await
    {
        Ok(_) => {}
        Err(ChangeError::Refused(reason)) => return Err(ApiError::TransitionRefused(reason)),
        Err(ChangeError::Finished) => {
            // The workflow finished between our read and the update.
            let now = state
                .store
                .order_detail(id)
                .await?
                .summary
                .status
                .parse()
                .unwrap_or(from);
            return Err(ApiError::IllegalTransition { from: now, to });
        }
        Err(ChangeError::Temporal(e)) => return Err(e.into()),
    }
    tracing::info!(order.id = %id, %from, %to, "order status changed");
    Ok(Json(detail_json(
        &state,
        state.store.order_detail(id).await?,
    )))
}
