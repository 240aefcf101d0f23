//! `POST /webhooks/shopify`: verify, then parse, then start the order saga
//! (`orders/create`) or carry the order's life through its workflow
//! (cancellations, payments, refunds and edits); also what a Shopify app
//! owes the shop (uninstalls, privacy requests).

mod adjustment;
mod cancelled;
mod payment;
mod privacy;
pub mod wms;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use domain::ShopDomain;
use hmac::{Hmac, Mac};
use orchestrator::Started;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use tracing::Instrument;

use crate::{
    error::ApiError,
    extract::header,
    limits::LimitKey,
    metrics::WebhookOutcome,
    shopify_dto::{MappingError, map_order},
    state::AppState,
};

#[utoipa::path(post, path = "/webhooks/shopify", tag = "webhooks",
    params(("X-Shopify-Shop-Domain" = String, Header), ("X-Shopify-Hmac-Sha256" = String, Header, description = "base64 HMAC-SHA256 of the raw body"),
           ("X-Shopify-Topic" = String, Header, description = "`orders/create` starts the order; `orders/cancelled` cancels it; `orders/paid` and `orders/updated` (voided, expired) release or cancel an order awaiting payment; `refunds/create` and `orders/edited` take units off an order before shipping; `app/uninstalled` disables the shop; `customers/data_request`, `customers/redact` and `shop/redact` are Shopify's privacy requests; others are acknowledged")),
    request_body(content = Object, description = "Shopify's orders/create payload"),
    responses((status = 200, description = "`status`: accepted, duplicate, ignored or dead_lettered; for `orders/cancelled` also cancelled, cancelling (the workflow goes on) or flagged (already shipped: nothing released, the order gets a `cancelled_after_shipping` notification); `recorded` (a payment before its order, a data request); adjusted, adjusting or flagged for refunds and edits; disabled (`app/uninstalled`); redacted (privacy); refused (a shop the app was uninstalled from)"),
        (status = 401, description = "Unknown shop or bad signature", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the shop's rate (signed deliveries), or over the shared budget of unverified requests; Shopify redelivers", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Temporal unavailable, or (`order_not_ready`) a cancellation of an order still being allocated; Shopify retries", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Handles a Shopify webhook.
///
/// Order of work matters: the signature is checked over the raw bytes before
/// anything is parsed or stored, so an unsigned request costs one HMAC and
/// leaves no trace. A signed payload is never answered with an error Shopify
/// would retry forever: what cannot be processed is dead-lettered and
/// acknowledged. Only a Temporal outage answers 503, so Shopify redelivers.
pub async fn shopify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let metrics = state.metrics.clone();
    let Some(shop) = verified_shop(&state, &headers, &body) else {
        metrics.webhook(WebhookOutcome::Unauthorized);
        // Unverified traffic is charged to its own budget, never to the shop
        // it names: a forged flood cannot get a shop's deliveries refused.
        state.limiter.check(LimitKey::Unauthenticated, None)?;
        return Err(ApiError::WebhookUnauthorized);
    };
    if let Err(limited) = state.limiter.check(LimitKey::Shop(shop.to_string()), None) {
        metrics.webhook(WebhookOutcome::RateLimited);
        return Err(limited);
    }
    let handled = verified(Processor::of(&state), headers, body, shop).await;
    metrics.webhook(match &handled {
        Ok((_, outcome)) => *outcome,
        Err(_) => WebhookOutcome::Unavailable,
    });
    handled.map(|(response, _)| response)
}

/// An answer to a webhook, and how it counts in the metrics.
pub type Handled = Result<((StatusCode, Json<Value>), WebhookOutcome), ApiError>;

/// What processing a verified webhook needs: the same for a live delivery
/// and for the replay of a dead-lettered one.
#[derive(Clone)]
pub struct Processor {
    /// The database.
    pub db: db::Db,
    /// Starts and signals order workflows.
    pub orchestrator: orchestrator::Orchestrator,
    /// Given to each new saga.
    pub saga_policy: workflows::contracts::SagaPolicy,
    /// Which unpaid orders wait for their payment.
    pub payment_gate: std::sync::Arc<domain::PaymentGate>,
    /// Set while dead letter `id` is replayed: a payload that still cannot
    /// be processed is answered `still_invalid`, not dead-lettered again.
    pub replaying: Option<i64>,
}

impl Processor {
    /// The live deliveries' processor.
    pub fn of(state: &AppState) -> Self {
        Self {
            db: state.db.clone(),
            orchestrator: state.orchestrator.clone(),
            saga_policy: state.saga_policy.clone(),
            payment_gate: state.payment_gate.clone(),
            replaying: None,
        }
    }
}

/// Keeps a signed payload that cannot be processed, and acknowledges it: its
/// sender would otherwise redeliver it until it gives up on us. `reason`
/// names fields, never their customer values.
async fn dead_letter(
    state: &Processor,
    sender: &str,
    topic: &str,
    webhook_id: Option<&str>,
    reason: &str,
    body: &[u8],
) -> Handled {
    if state.replaying.is_some() {
        return answer(
            "still_invalid",
            json!({ "reason": reason }),
            WebhookOutcome::DeadLettered,
        );
    }
    let id = state
        .db
        .dead_letter(sender, topic, webhook_id, reason, body)
        .await?;
    tracing::error!(dead_letter.id = id, reason, "webhook dead-lettered");
    answer(
        "dead_lettered",
        json!({ "deadLetterId": id }),
        WebhookOutcome::DeadLettered,
    )
}

/// A delivery's payload as `T`, or (`Err`) the answer that dead-lettered
/// it; the reason names the shape it does not match.
async fn parse_or_dead_letter<T: serde::de::DeserializeOwned>(
    state: &Processor,
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<&str>,
    body: &[u8],
) -> Result<T, Handled> {
    match crate::payload::parse(topic, body) {
        Ok(dto) => Ok(dto),
        Err(reason) => {
            Err(dead_letter(state, shop.as_str(), topic, webhook_id, &reason, body).await)
        }
    }
}

/// Leaves a `kind` notification on the order for a person (its status
/// stays) and answers `flagged` with `order`.
async fn flag(
    state: &Processor,
    order_id: uuid::Uuid,
    kind: &str,
    message: &str,
    order: Value,
) -> Handled {
    state
        .db
        .transition_order(order_id, None, Some(message), &[], Some(kind))
        .await?;
    tracing::warn!(order.id = %order_id, kind, "order flagged for a person");
    answer("flagged", order, WebhookOutcome::Flagged)
}

/// A 200 with `status` and the members of `extra`.
fn answer(status: &str, extra: Value, outcome: WebhookOutcome) -> Handled {
    let mut body = json!({ "status": status });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    Ok(((StatusCode::OK, Json(body)), outcome))
}

/// A webhook whose signature verified.
async fn verified(state: Processor, headers: HeaderMap, body: Bytes, shop: ShopDomain) -> Handled {
    let topic = header(&headers, "x-shopify-topic")
        .unwrap_or_default()
        .to_string();
    let webhook_id = header(&headers, "x-shopify-webhook-id").map(str::to_string);
    let span = tracing::info_span!("webhook", shop = %shop, topic = %topic, webhook.id = webhook_id.as_deref().unwrap_or_default());
    // Instrumented rather than entered: a span guard must not live across awaits.
    let request_id = header(&headers, "x-request-id").map(str::to_string);
    process(&state, &body, &shop, &topic, webhook_id, request_id)
        .instrument(span)
        .await
}

/// The shop that signed this body, if one did. One HMAC over the raw bytes,
/// compared in constant time; nothing is parsed or stored before.
fn verified_shop(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<ShopDomain> {
    let shop = header(headers, "x-shopify-shop-domain").and_then(|s| ShopDomain::parse(s).ok());
    let Some(settings) = shop
        .as_ref()
        .and_then(|shop| state.shops.iter().find(|s| &s.shop == shop))
    else {
        tracing::warn!("webhook from an unknown shop refused");
        return None;
    };
    let signature = header(headers, "x-shopify-hmac-sha256").and_then(|s| STANDARD.decode(s).ok());
    let mut mac =
        Hmac::<Sha256>::new_from_slice(settings.webhook_secret.expose_secret().as_bytes()).ok()?;
    mac.update(body);
    if signature.is_none_or(|sig| mac.verify_slice(&sig).is_err()) {
        tracing::warn!(shop = %settings.shop, "webhook with a bad signature refused");
        return None;
    }
    shop
}

/// Everything after a valid signature (also what a replay runs).
pub async fn process(
    state: &Processor,
    body: &[u8],
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<String>,
    request_id: Option<String>,
) -> Handled {
    if privacy::TOPICS.contains(&topic) {
        return privacy::handle(state, body, shop, topic, webhook_id.as_deref()).await;
    }
    if let Some(at) = state.db.shop_uninstalled_at(shop.as_str()).await? {
        // Shopify stops sending once its subscriptions are gone; what still
        // comes (in flight, or a reinstall nobody re-enabled) is refused
        // loudly rather than half-processed for a shop we no longer write.
        tracing::warn!(uninstalled_at = %at, "webhook from a shop the app was uninstalled from refused; re-enable it with `oms-api shopify-webhooks register`");
        return answer(
            "refused",
            json!({"reason": format!("the app was uninstalled from this shop at {at}; an operator re-enables it by registering its webhooks again")}),
            WebhookOutcome::Ignored,
        );
    }
    if topic == "orders/cancelled" {
        return cancelled::handle(state, body, shop, topic, webhook_id.as_deref()).await;
    }
    if topic == "refunds/create" || topic == "orders/edited" {
        return adjustment::handle(state, body, shop, topic, webhook_id.as_deref()).await;
    }
    if topic == "orders/paid" || topic == "orders/updated" {
        return payment::handle(state, body, shop, topic, webhook_id.as_deref()).await;
    }
    if topic != "orders/create" {
        tracing::info!("webhook topic not handled; acknowledged");
        return Ok((
            (
                StatusCode::OK,
                Json(json!({"status": "ignored", "topic": topic})),
            ),
            WebhookOutcome::Ignored,
        ));
    }

    let input = match map_order(
        body,
        shop,
        request_id,
        state.saga_policy.clone(),
        &state.payment_gate,
    ) {
        Ok(input) => input,
        Err(MappingError::NothingToShip) => {
            tracing::info!("order has nothing to ship; acknowledged");
            return Ok((
                (
                    StatusCode::OK,
                    Json(json!({"status": "ignored", "reason": "no line item requires shipping"})),
                ),
                WebhookOutcome::Ignored,
            ));
        }
        Err(MappingError::Invalid(reason)) => {
            let webhook_id = webhook_id.as_deref();
            return dead_letter(state, shop.as_str(), topic, webhook_id, &reason, body).await;
        }
    };

    let order_id = input.order_id;
    if let Some(cancellation) = state.db.early_cancellation(order_id).await? {
        // Shopify delivered the order's cancellation first: the customer
        // cancelled it, so nothing is reserved and nothing is shipped.
        tracing::warn!(order.id = %order_id, dead_letter.id = cancellation, "order cancelled in Shopify before it arrived; not started");
        return answer(
            "ignored",
            json!({"orderId": order_id, "reason": "cancelled in Shopify before the order arrived", "deadLetterId": cancellation}),
            WebhookOutcome::Ignored,
        );
    }
    let started =
        crate::intake::accept_order::<ApiError>(&state.db, &state.orchestrator, input).await?;
    let (outcome, status, workflow_id) = match started {
        Started::Running { workflow_id } => (WebhookOutcome::Accepted, "accepted", workflow_id),
        Started::AlreadyFinished { workflow_id } => {
            (WebhookOutcome::Duplicate, "duplicate", workflow_id)
        }
    };
    tracing::info!(order.id = %order_id, workflow.id = %workflow_id, status, "order workflow started");
    Ok((
        (
            StatusCode::OK,
            Json(json!({"status": status, "orderId": order_id, "workflowId": workflow_id})),
        ),
        outcome,
    ))
}
