//! What every Shopify app must handle: `app/uninstalled` (the shop is
//! disabled: nothing more is written to it) and the three mandatory privacy
//! webhooks. A customer's data request is recorded for the operator to
//! export (`oms-api privacy export <id>`); a redaction removes names,
//! addresses and phone numbers from the orders it names and empties the
//! dead-lettered payloads about them, at once; every request is kept, with
//! ids only, as the audit trail.

use db::Redacted;
use domain::ShopDomain;
use serde::Deserialize;
use serde_json::json;

use super::{Handled, Processor, answer, parse_or_dead_letter};
use crate::metrics::WebhookOutcome;

/// The topics handled here.
pub const TOPICS: [&str; 4] = [
    "app/uninstalled",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

/// The privacy payloads, reduced to ids (their e-mail and phone are never
/// read, so never kept).
#[derive(Debug, Deserialize)]
struct PrivacyDto {
    customer: Option<CustomerDto>,
    #[serde(default)]
    orders_requested: Vec<u64>,
    #[serde(default)]
    orders_to_redact: Vec<u64>,
    data_request: Option<DataRequestDto>,
}

#[derive(Debug, Deserialize)]
struct CustomerDto {
    id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct DataRequestDto {
    id: Option<u64>,
}

/// Handles a signed delivery of one of [`TOPICS`].
pub async fn handle(
    state: &Processor,
    body: &[u8],
    shop: &ShopDomain,
    topic: &str,
    webhook_id: Option<&str>,
) -> Handled {
    if topic == "app/uninstalled" {
        let first = state.db.uninstall_shop(shop.as_str()).await?;
        tracing::warn!(
            first,
            "app uninstalled from the shop: it is disabled, nothing more is written to it"
        );
        return answer(
            if first { "disabled" } else { "duplicate" },
            json!({ "shop": shop.as_str() }),
            WebhookOutcome::Accepted,
        );
    }
    let dto: PrivacyDto = match parse_or_dead_letter(state, shop, topic, webhook_id, body).await {
        Ok(dto) => dto,
        Err(answer) => return answer,
    };
    let customer = dto.customer.and_then(|c| c.id).map(|id| id.to_string());
    let request_id = dto.data_request.and_then(|r| r.id).map(|id| id.to_string());
    let ids = |v: Vec<u64>| v.into_iter().map(|id| id.to_string()).collect::<Vec<_>>();
    if let (Some(shopify_id), "customers/data_request") = (request_id.as_deref(), topic)
        && let Some(id) = state
            .db
            .privacy_request_recorded(shop.as_str(), shopify_id)
            .await?
    {
        return answer(
            "duplicate",
            json!({ "privacyRequestId": id }),
            WebhookOutcome::Duplicate,
        );
    }
    let (orders, redacted) = match topic {
        "customers/data_request" => (ids(dto.orders_requested), Redacted::default()),
        "customers/redact" => {
            let orders = ids(dto.orders_to_redact);
            let redacted = Redacted {
                orders: state.db.redact_orders(shop.as_str(), Some(&orders)).await?,
                dead_letters: state
                    .db
                    .redact_dead_letters(shop.as_str(), Some((&orders, customer.as_deref())))
                    .await?,
            };
            (orders, redacted)
        }
        // shop/redact: the merchant left 48 hours ago; everything goes.
        _ => {
            let redacted = Redacted {
                orders: state.db.redact_orders(shop.as_str(), None).await?,
                dead_letters: state.db.redact_dead_letters(shop.as_str(), None).await?,
            };
            (Vec::new(), redacted)
        }
    };
    let id = state
        .db
        .record_privacy_request(
            shop.as_str(),
            topic,
            request_id.as_deref(),
            customer.as_deref(),
            &orders,
            redacted,
        )
        .await?;
    if topic == "customers/data_request" {
        // The merchant must answer within 30 days: the operator exports
        // what the OMS holds and hands it over.
        tracing::warn!(
            privacy_request.id = id,
            orders = orders.len(),
            "customer data request recorded: export it with `oms-api privacy export {id}`"
        );
        return answer(
            "recorded",
            json!({ "privacyRequestId": id }),
            WebhookOutcome::Accepted,
        );
    }
    tracing::info!(
        privacy_request.id = id,
        orders = redacted.orders,
        dead_letters = redacted.dead_letters,
        "customer data redacted"
    );
    answer(
        "redacted",
        json!({ "privacyRequestId": id, "redacted": redacted }),
        WebhookOutcome::Accepted,
    )
}
