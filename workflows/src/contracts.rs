//! Inputs, outputs and pinned names of the order saga's activities.
//!
//! Names are part of the wire format between running workflows and workers:
//! never rename one that has been deployed.
#![allow(missing_docs)]

use domain::OrderStatus;
pub use domain::{
    Address, Adjusted, LineProblem, LineQty, LineRemoval, OrderAdjustment, ReserveOutcome,
};
use serde::{Deserialize, Serialize};
use temporalio_workflow::common::ActivityDefinition;
use uuid::Uuid;

/// Pinned activity type names.
pub mod names {
    pub const RECORD_ORDER: &str = "oms.record_order";
    pub const CHECK_WMS_STOCK: &str = "oms.check_wms_stock";
    pub const RESERVE_ORDER: &str = "oms.reserve_order";
    pub const SYNC_CHANNELS: &str = "oms.sync_channels";
    pub const SUBMIT_FULFILLMENT: &str = "oms.submit_fulfillment";
    pub const RELEASE_ORDER: &str = "oms.release_order";
    pub const TRANSITION_ORDER: &str = "oms.transition_order";
    pub const SELL_ORDER: &str = "oms.sell_order";
    pub const REPORT_SHIPMENT: &str = "oms.report_shipment";
    pub const UPDATE_SHIPMENT_TRACKING: &str = "oms.update_shipment_tracking";
    pub const ADJUST_ORDER: &str = "oms.adjust_order";
    pub const CANCEL_FULFILLMENT: &str = "oms.cancel_fulfillment";
    pub const SYNC_SHOP: &str = "oms.sync_shop";
    pub const CHECK_DRIFT: &str = "oms.check_drift";
    pub const LIST_SHOPS: &str = "oms.list_shops";
    pub const CLAIM_COMPENSATION: &str = "oms.claim_compensation";
    pub const SETTLE_WITH_WAREHOUSE: &str = "oms.settle_with_warehouse";
    pub const ADOPT_FULFILLMENT: &str = "oms.adopt_fulfillment";
    pub const FIND_STRANDED: &str = "oms.find_stranded_orders";
    pub const REPAIR_ORDER: &str = "oms.repair_order";
}

/// `ApplicationFailure` type names raised by activities.
pub mod error_types {
    /// The warehouse refused the order for good (a 4xx other than 429).
    pub const WMS_REJECTED: &str = "WmsRejected";
    /// A Shopify shop refused a request for good (bad token, unknown item).
    pub const SHOPIFY_REJECTED: &str = "ShopifyRejected";
    /// The data needed is not where it must be (e.g. the order row vanished).
    pub const INVALID_STATE: &str = "InvalidState";
    /// The database refused the data for good (a value out of range, a
    /// broken constraint): retrying cannot help.
    pub const INVALID_DATA: &str = "InvalidData";
}

/// One order line as received. The SKU is kept raw (it may be empty): the
/// saga rejects such a line with a reason rather than losing the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    /// 1-based position in the order.
    pub line_no: i32,
    pub sku: String,
    pub quantity: i32,
    /// Unit price as the channel sent it (a decimal string).
    pub unit_price: Option<String>,
    /// The channel's own id of the line (Shopify ids exceed 2^53: kept as text).
    pub external_line_id: Option<String>,
    pub title: Option<String>,
}

/// Timeouts and retry pacing of one saga run. Part of the workflow input, so
/// a run keeps the policy it started with and tests can shorten it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaPolicy {
    /// Longest single attempt of any activity.
    pub attempt_timeout_secs: u64,
    /// First retry delay; doubles up to `max_retry_interval_secs`.
    pub initial_retry_millis: u64,
    pub max_retry_interval_secs: u64,
    /// How long the WMS stock check may keep failing before the saga goes on
    /// without it (Postgres decides allocation; the check is advisory).
    pub stock_check_deadline_secs: u64,
    /// How long the WMS may stay unreachable before the order fails and is compensated.
    pub fulfillment_deadline_secs: u64,
    /// How long channel sync keeps retrying before it gives up with a notification.
    pub channel_sync_deadline_secs: u64,
    /// How long an order awaiting its payment keeps its units before it is
    /// cancelled and they are for sale again (absent in older inputs).
    #[serde(default = "default_unpaid_expiry_secs")]
    pub unpaid_expiry_secs: u64,
}

fn default_unpaid_expiry_secs() -> u64 {
    // Slow payment methods (bank transfers, cash on delivery set-ups) take
    // days; three is what Shopify gives a pending payment by default.
    3 * 24 * 3600
}

impl Default for SagaPolicy {
    fn default() -> Self {
        Self {
            attempt_timeout_secs: 30,
            initial_retry_millis: 1_000,
            max_retry_interval_secs: 300,
            stock_check_deadline_secs: 120,
            fulfillment_deadline_secs: 24 * 3600,
            channel_sync_deadline_secs: 3600,
            unpaid_expiry_secs: default_unpaid_expiry_secs(),
        }
    }
}

/// Input of [`crate::OrderWorkflow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInput {
    pub order_id: Uuid,
    pub channel: domain::Channel,
    /// The Shopify shop the order came from, if any.
    pub shop: Option<String>,
    /// The channel's id of the order (Shopify order id as text, or the API idempotency key).
    pub external_id: String,
    pub name: Option<String>,
    pub currency: Option<String>,
    /// When the customer placed the order (RFC 3339, validated at the edge).
    pub placed_at: Option<String>,
    pub lines: Vec<LineInput>,
    pub shipping_address: Option<Address>,
    /// Request id of the HTTP request that started the order, for log correlation.
    pub request_id: Option<String>,
    pub policy: SagaPolicy,
    /// Set when the order's previous workflow ended while the order was at
    /// the warehouse: this run takes over in that status, skipping the saga.
    #[serde(default)]
    pub resume: Option<OrderStatus>,
    /// Reserve, but hand the order to the warehouse only once the shop
    /// reports it paid (its payment was pending or only authorized).
    #[serde(default)]
    pub awaits_payment: bool,
}

impl OrderInput {
    /// This input as a workflow may carry it: without the shipping address
    /// and the order's name (a customer reference, for API orders). Both
    /// are recorded in Postgres before the workflow starts, and activities
    /// read them from there, so Temporal's history and Web UI hold no
    /// customer data.
    pub fn without_customer_data(mut self) -> Self {
        self.shipping_address = None;
        self.name = None;
        self
    }
}

/// What `record_order` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The order's status in the database after recording. `RECEIVED` for a
    /// new order (or one recorded by an earlier attempt of this run); any
    /// other status means an earlier run already processed it.
    pub status: OrderStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveOrderInput {
    pub order_id: Uuid,
    pub lines: Vec<LineQty>,
}

/// SKUs whose level the shops must be told: the input of the per-order
/// sync that orders started before the outbox still run (see `SyncChannels`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncInput {
    /// What caused the sync (an order id, or a fresh id for a stock change):
    /// Shopify idempotency keys and reference URIs derive from it. Named
    /// `order_id` on the wire, which running workflows already send.
    #[serde(rename = "order_id")]
    pub reference: Uuid,
    pub skus: Vec<String>,
}

/// Per-shop outcome of a channel sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopSync {
    pub shop: String,
    /// SKU and level pushed, for each SKU the shop sells.
    pub pushed: Vec<(String, i32)>,
    /// Permanent problems with this shop (they are not retried).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncReport {
    /// One entry per configured shop (`stores` on the wire, which running
    /// workflows already read).
    #[serde(rename = "stores")]
    pub shops: Vec<ShopSync>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentAccepted {
    pub wms_order_id: String,
}

/// Move an order to `to` (if set), record why, and optionally notify an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub order_id: Uuid,
    /// `None` records only the notification.
    pub to: Option<OrderStatus>,
    pub reason: Option<String>,
    /// The per-line problems of a rejection (absent in older histories).
    #[serde(default)]
    pub problems: Vec<LineProblem>,
    /// Also record a notification of this kind (e.g. `order_rejected`).
    pub notify: Option<String>,
}

/// Declares an activity: a unit type naming it, with its input and output.
/// The workflow passes the type to `execute_activity`; the worker implements
/// it with `#[activity(definition = …)]`, which checks the types match.
macro_rules! activity {
    ($(#[$doc:meta])* $ty:ident = $name:expr, $input:ty => $output:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;

        impl ActivityDefinition for $ty {
            type Input = $input;
            type Output = $output;
            fn name(&self) -> &str {
                $name
            }
        }
    };
}

activity!(
    /// Persists the order (idempotent on the order id).
    RecordOrder = names::RECORD_ORDER, OrderInput => Recorded
);
activity!(
    /// Asks the WMS whether its sellable stock covers every line.
    CheckWmsStock = names::CHECK_WMS_STOCK, Vec<LineQty> => Vec<LineProblem>
);
activity!(
    /// Reserves every line in one Postgres transaction, or none.
    ReserveOrder = names::RESERVE_ORDER, ReserveOrderInput => ReserveOutcome
);
activity!(
    /// Orders started before the outbox push their SKUs' levels themselves;
    /// today this queues those SKUs for every shop, and the shops' syncs push.
    SyncChannels = names::SYNC_CHANNELS, SyncInput => SyncReport
);
activity!(
    /// Pushes up to a batch of one shop's pending levels in one write.
    SyncShop = names::SYNC_SHOP, DrainInput => DrainOutcome
);
activity!(
    /// Compares what one shop shows with the OMS and queues what differs.
    CheckDrift = names::CHECK_DRIFT, DriftInput => DriftReport
);
activity!(
    /// The shops being kept in sync.
    ListShops = names::LIST_SHOPS, () => Vec<String>
);
activity!(
    /// The submit failed for good: RESERVED → COMPENSATING, unless the
    /// warehouse's acceptance was recorded first.
    ClaimCompensation = names::CLAIM_COMPENSATION, Compensation => Claim
);
activity!(
    /// Asks the warehouse whether it has the order after all, and cancels it
    /// there if it does.
    SettleWithWarehouse = names::SETTLE_WITH_WAREHOUSE, Uuid => WarehouseCheck
);
activity!(
    /// The warehouse has the order and keeps it: COMPENSATING → FULFILLMENT_REQUESTED.
    AdoptFulfillment = names::ADOPT_FULFILLMENT, Adoption => ()
);
activity!(
    /// Orders whose workflow has ended while they still hold units or are
    /// not final.
    FindStranded = names::FIND_STRANDED, ReconcileInput => Vec<StrandedOrder>
);
activity!(
    /// Settles one stranded order.
    RepairOrder = names::REPAIR_ORDER, StrandedOrder => Repair
);
activity!(
    /// Hands the order to the WMS (idempotent on the order id) and records it.
    SubmitFulfillment = names::SUBMIT_FULFILLMENT, Uuid => FulfillmentAccepted
);
activity!(
    /// Releases the order's open reservations; returns the SKUs touched.
    ReleaseOrder = names::RELEASE_ORDER, Uuid => Vec<String>
);
activity!(
    /// Moves the order's status (and history, and notification).
    TransitionOrder = names::TRANSITION_ORDER, Transition => ()
);
activity!(
    /// The warehouse shipped: the order's reserved units become SOLD.
    SellOrder = names::SELL_ORDER, Sale => ()
);
activity!(
    /// Tells the order's Shopify shop it shipped: a fulfillment with the
    /// warehouse's tracking, the customer notified. Returns what was done.
    ReportShipment = names::REPORT_SHIPMENT, Uuid => String
);
activity!(
    /// Takes units off the order's lines and reservations (a refund or an
    /// edit before shipping), once per adjustment.
    AdjustOrder = names::ADJUST_ORDER, Adjustment => Adjusted
);
activity!(
    /// Gives the order's Shopify fulfillment the warehouse's latest
    /// tracking, the customer notified. Returns what was done.
    UpdateShipmentTracking = names::UPDATE_SHIPMENT_TRACKING, Uuid => String
);
activity!(
    /// Asks the warehouse to cancel the order (nothing to do if it never got it).
    CancelFulfillment = names::CANCEL_FULFILLMENT, Uuid => ()
);

/// How one shop's sync paces itself. Part of its workflow input, so a run
/// keeps the pace it started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopSyncPolicy {
    /// At most one write per interval, carrying every pending SKU up to
    /// `batch_size`.
    pub interval_millis: u64,
    /// With nothing pending and no nudge, look again after this long (the
    /// safety net for a nudge that was lost).
    pub idle_poll_secs: u64,
    /// Most SKUs per write (Shopify takes at most 250).
    pub batch_size: u32,
    /// Longest single drain attempt.
    pub attempt_timeout_secs: u64,
    /// Longest wait between attempts while the shop fails (it is down):
    /// also how late a shop that comes back may be written. One interval by
    /// default, so a returning shop is current within one interval; a probe
    /// of a down shop is one failed request.
    pub max_retry_interval_millis: u64,
    /// Drains per run before the workflow continues as new.
    pub drains_per_run: u32,
}

impl Default for ShopSyncPolicy {
    fn default() -> Self {
        Self {
            interval_millis: 1_000,
            idle_poll_secs: 10,
            batch_size: 250,
            attempt_timeout_secs: 30,
            max_retry_interval_millis: 1_000,
            drains_per_run: 500,
        }
    }
}

/// Input of `ShopSyncWorkflow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopSyncInput {
    /// The shop's domain.
    pub shop: String,
    pub policy: ShopSyncPolicy,
}

/// One drain of a shop's pending levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainInput {
    pub shop: String,
    /// Most SKUs to push.
    pub batch_size: u32,
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainOutcome {
    /// Quantities written (0 when the shop already showed every level).
    pub written: u32,
    /// Whether changes wait for the next drain.
    pub pending: bool,
    /// Wait at least this long before the next drain (the shop's cost
    /// bucket is low, or the shop refused the writes for good).
    pub wait_millis: u64,
    /// Why nothing could be written, when a retry will not help by itself
    /// (a revoked token, say); it is also recorded for `GET /channels`.
    pub problem: Option<String>,
}

/// One shop to check for drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftInput {
    pub shop: String,
}

/// What a drift check found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DriftReport {
    pub shop: String,
    /// Products compared.
    pub checked: u32,
    /// Products the shop showed wrongly, now queued to be written back.
    pub repaired: u32,
}

/// Input of `DriftRepairWorkflow`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DriftRepairInput {
    /// Longest single check of one shop.
    pub attempt_timeout_secs: u64,
}

/// An order whose submit failed for good, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    pub order_id: Uuid,
    pub reason: String,
}

/// Who decided the order's fate: the compensation, or the warehouse's
/// acceptance recorded a moment before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claim {
    /// The order is COMPENSATING: no late submit can mark it accepted now.
    Claimed,
    /// A submit attempt recorded the warehouse's acceptance first.
    Accepted { wms_order_id: String },
}

/// What the warehouse had of an order the saga gave up submitting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarehouseCheck {
    /// It never got the order.
    Absent,
    /// It had the order and cancelled it.
    Cancelled { wms_order_id: String },
    /// It has the order and will not cancel it (picked, shipped): the order
    /// goes on, and its units stay reserved.
    Kept {
        wms_order_id: String,
        reason: String,
    },
}

/// The warehouse keeps an order the saga had given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    pub order_id: Uuid,
    pub wms_order_id: String,
    pub reason: String,
}

/// What the reconciliation looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconcileInput {
    /// One order (an operator's repair), or every candidate.
    pub order_id: Option<Uuid>,
    /// Orders changed more recently are left alone (their workflow is
    /// probably just busy).
    pub quiet_secs: u64,
    /// Most orders per run.
    pub limit: u32,
}

/// An order whose workflow has ended, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrandedOrder {
    pub order_id: Uuid,
    pub status: OrderStatus,
    pub workflow_id: String,
    /// How its workflow ended (`Terminated`, `Failed`, `TimedOut`, `not found`, …).
    pub workflow_state: String,
}

/// What the reconciliation did to one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    pub order_id: Uuid,
    /// Its status afterwards.
    pub status: OrderStatus,
    /// What was done, for people.
    pub action: String,
}

/// The order whose reserved units become SOLD, and why (for its history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sale {
    pub order_id: Uuid,
    pub reason: Option<String>,
}

/// Workflows that ran before the reason was passed scheduled the sale with
/// the bare order id; such a task must still run.
impl<'de> Deserialize<'de> for Sale {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Id(Uuid),
            Sale {
                order_id: Uuid,
                reason: Option<String>,
            },
        }
        Ok(match Wire::deserialize(d)? {
            Wire::Id(order_id) => Self {
                order_id,
                reason: None,
            },
            Wire::Sale { order_id, reason } => Self { order_id, reason },
        })
    }
}

/// What the shop reported of an order's payment (the `payment` signal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentEvent {
    /// Captured: the order may go to the warehouse.
    Paid,
    /// It will never be paid (voided, expired): the order is cancelled.
    Failed { reason: String },
}

/// An adjustment of one order (the `adjust_order` activity's input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    pub order_id: Uuid,
    pub adjustment: OrderAdjustment,
    /// The warehouse had the order (and was told to cancel it): the next
    /// submit sends its replacement.
    pub at_warehouse: bool,
}

/// A client's request to move an order (the `change_status` update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub to: OrderStatus,
    /// Why, for the history (optional).
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_reads_both_the_bare_order_id_and_the_full_form() {
        let id = Uuid::from_u128(7);
        let old: Sale = serde_json::from_value(serde_json::json!(id)).unwrap();
        assert_eq!(
            old,
            Sale {
                order_id: id,
                reason: None
            }
        );
        let new = Sale {
            order_id: id,
            reason: Some("picked up by DHL".into()),
        };
        let back: Sale = serde_json::from_value(serde_json::to_value(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }
}
