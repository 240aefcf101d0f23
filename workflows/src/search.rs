//! Temporal search attributes of order workflows, so operators can find an
//! order in the Web UI (`OmsOrderId = "…"`, `OmsOrderStatus = "FAILED"`).
//!
//! They must be registered in the namespace before a workflow may carry
//! them; `orchestrator::ensure_search_attributes` does that at
//! start-up. A workflow started without them (registration failed) never
//! upserts them either, so a missing registration cannot wedge a workflow.

use temporalio_workflow::common::search_attributes::SearchAttributeKey;

const ORDER_ID_NAME: &str = "OmsOrderId";
const SHOP_NAME: &str = "OmsShop";
const ORDER_STATUS_NAME: &str = "OmsOrderStatus";

/// The order's id (UUID text).
pub const ORDER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword(ORDER_ID_NAME);
/// The Shopify shop the order came from (`api` for orders placed through the
/// orders API).
pub const SHOP: SearchAttributeKey<String> = SearchAttributeKey::keyword(SHOP_NAME);
/// The order's current status, kept up to date by the workflow.
pub const ORDER_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword(ORDER_STATUS_NAME);

/// Every custom attribute the OMS uses (all `Keyword`), for registration.
pub const ALL: [&str; 3] = [ORDER_ID_NAME, SHOP_NAME, ORDER_STATUS_NAME];

/// Memo keys set on every order workflow (not indexed; shown in the UI).
pub mod memo {
    /// The order id.
    pub const ORDER_ID: &str = "orderId";
    /// Sales channel (`shopify`, `api`).
    pub const CHANNEL: &str = "channel";
    /// The shop, for Shopify orders.
    pub const SHOP: &str = "shop";
    /// The channel's own id of the order.
    pub const EXTERNAL_ID: &str = "externalId";
    /// The HTTP request id that started the order: leads from an API log
    /// line to the workflow, and back.
    pub const REQUEST_ID: &str = "requestId";
}
