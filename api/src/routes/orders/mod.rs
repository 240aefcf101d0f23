//! The orders API: place an order, read it, list them, move its status.

mod dto;

use std::time::{Duration, Instant};

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use db::OrderDetail;
use domain::{Channel, OrderStatus, order_id_for};
use orchestrator::{ChangeError, ChangeOutcome, Started};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use workflows::contracts::{LineInput, OrderInput};

pub use dto::{AcceptedDto, ListQuery, NewOrderDto, OrderPage, StatusDto};

use crate::{error::ApiError, extract::JsonBody, pagination::encode_order_cursor, state::AppState};

/// Longest wait a client may ask for with `Prefer: wait=N`.
const MAX_WAIT: Duration = Duration::from_secs(30);

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

#[utoipa::path(post, path = "/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "Names this request; the same key with the same body is the same order"),
           ("Prefer" = Option<String>, Header, description = "`wait=N` (N ≤ 30): answer with the reservation outcome if it is known within N seconds")),
    request_body = NewOrderDto,
    responses((status = 202, description = "Accepted; `Location` is the status URL", body = AcceptedDto),
        (status = 201, description = "Reserved (with `Prefer: wait`)", body = OrderDetail),
        (status = 400, description = "Missing key or invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Rejected: `reasons` has one entry per failing line (with `Prefer: wait`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Key reused with another body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable; retry", body = crate::error::Problem, content_type = "application/problem+json")))]
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
        .db
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
        resume: None,
        // An API client hands over orders it has been paid for (or ships
        // on account): it has no payment event to wait for.
        awaits_payment: false,
    };
    let workflow_id =
        match crate::intake::accept_order::<ApiError>(&state.db, &state.orchestrator, input).await?
        {
            Started::Running { workflow_id } | Started::AlreadyFinished { workflow_id } => {
                workflow_id
            }
        };
    tracing::info!(order.id = %order_id, workflow.id = %workflow_id, "api order accepted");

    let location = format!("/orders/{order_id}");
    if let Some(wait) = preferred_wait(&headers) {
        let deadline = Instant::now() + wait;
        loop {
            match state.db.order_status(order_id).await? {
                Some(OrderStatus::Rejected) => {
                    let detail = state.db.order_detail(order_id).await?;
                    return Err(ApiError::OrderRejected {
                        order_id,
                        problems: detail.problems,
                    });
                }
                Some(s) if s != OrderStatus::Received => {
                    let detail = state.db.order_detail(order_id).await?;
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
        .db
        .order_status(order_id)
        .await?
        .unwrap_or(OrderStatus::Received);
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
        (status = 400, description = "Not a UUID", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = crate::error::Problem, content_type = "application/problem+json")))]
/// One order.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let detail = state.db.order_detail(parse_order_id(&id)?).await?;
    Ok(Json(detail_json(&state, detail)))
}

#[utoipa::path(get, path = "/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, description = "Invalid filters", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Lists orders with filters and cursor pagination.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OrderPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let (filter, cursor, limit) = q.validate()?;
    let (items, next) = state.db.list_orders(&filter, cursor, limit).await?;
    Ok(Json(OrderPage {
        items,
        next_cursor: next.map(encode_order_cursor),
    }))
}

#[utoipa::path(patch, path = "/orders/{id}/status", tag = "orders", params(("id" = Uuid, Path)),
    request_body = StatusDto,
    responses((status = 200, description = "The order after the change", body = OrderDetail),
        (status = 202, description = "Accepted and still being applied (the warehouse is slow to cancel): the order as it stands, `requestedStatus`, and `Location` to poll. If it cannot be applied after all, the order keeps its status and gets a `status_change_failed` notification", body = OrderDetail),
        (status = 400, description = "Unknown status", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Illegal now (`currentStatus`, `allowedStatuses`) or refused by the warehouse", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable; retry", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Moves an order's status through its workflow.
pub async fn change_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusDto>,
) -> Result<Response, ApiError> {
    let id = parse_order_id(&id)?;
    let change = body.validate()?;
    let to = change.to;
    let detail = state.db.order_detail(id).await?;
    let from = detail.summary.status;
    if !from.requestable_next().contains(&to) {
        return Err(ApiError::IllegalTransition { from, to });
    }
    match state
        .orchestrator
        .change_status(
            &detail.summary.workflow_id,
            change,
            state.status_change_wait,
        )
        .await
    {
        Ok(ChangeOutcome::Applied(_)) => {}
        Ok(ChangeOutcome::InProgress) => {
            tracing::info!(order.id = %id, %from, %to, "order status change accepted, still being applied");
            let mut body = detail_json(&state, state.db.order_detail(id).await?);
            body["requestedStatus"] = Value::String(to.to_string());
            let location = format!("/orders/{id}");
            return Ok((
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(body),
            )
                .into_response());
        }
        Err(ChangeError::Refused(reason)) => return Err(ApiError::TransitionRefused(reason)),
        Err(ChangeError::Finished) => {
            // The workflow finished between our read and the update.
            let now = state.db.order_status(id).await?.unwrap_or(from);
            return Err(ApiError::IllegalTransition { from: now, to });
        }
        Err(ChangeError::Temporal(e)) => return Err(e.into()),
    }
    tracing::info!(order.id = %id, %from, %to, "order status changed");
    Ok(Json(detail_json(&state, state.db.order_detail(id).await?)).into_response())
}
