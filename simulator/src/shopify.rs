//! One Shopify shop per shop name: the Admin GraphQL operations the OMS
//! sends, answered as Shopify answers them, and read-only views of the shop.
//!
//! [`ShopModel`] holds one shop and answers one GraphQL request; it does no
//! I/O, so the OMS's tests serve it from wiremock and the simulator serves
//! it over HTTP: there is one stand-in for Shopify, not two.
//!
//! What it models, because the OMS depends on it:
//! - `productVariants(query: "sku:\"A\" OR sku:\"B\"")`: the SKU search,
//!   which is not exact (a search for `A` also finds `A-2`);
//! - `nodes(ids: [...])` over inventory items, at most 250 ids;
//! - `inventorySetQuantities` with many quantities, all applied or none: a
//!   stale `changeFromQuantity` or an unknown item names its index in the
//!   userError's `field`; the `@idempotent` key replays a call's result;
//! - `webhookSubscriptions` and `webhookSubscriptionCreate`: the app's
//!   subscriptions (kept, not delivered: the simulator's control sends
//!   webhooks);
//! - `order(id:) { fulfillments }` and `fulfillmentTrackingInfoUpdate`: the
//!   fulfillments created, and new tracking for one;
//! - `order(id:) { fulfillmentOrders }` and `fulfillmentCreate`: every order
//!   the shop is asked about has one fulfillment order, OPEN until a
//!   fulfillment closes it (a second fulfillment is refused, as Shopify
//!   refuses fulfilling a closed fulfillment order);
//! - the cost-based rate limit: every answer reports
//!   `extensions.cost.throttleStatus`, and a call the bucket cannot pay for
//!   gets `THROTTLED` (HTTP 200) without being applied.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Instant,
};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Simulator;

/// Most items one call may carry, as Shopify caps every input array.
pub const MAX_ITEMS: usize = 250;
/// The cost bucket of a shop on a standard plan.
const BUCKET_SIZE: f64 = 2000.0;
/// Points the bucket regains per second.
const RESTORE_RATE: f64 = 100.0;
/// What one `inventorySetQuantities` call costs.
const MUTATION_COST: f64 = 10.0;

/// How a shop answers its Admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShopMode {
    /// Serves requests.
    #[default]
    Ok,
    /// Every request gets Shopify's cost-based `THROTTLED` error, with an
    /// empty bucket.
    Throttle,
    /// Every request gets HTTP 503.
    Down,
}

impl ShopMode {
    /// Every mode, in the order the control API lists them.
    pub const ALL: [Self; 3] = [Self::Ok, Self::Throttle, Self::Down];

    /// The mode's name in the control API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Throttle => "throttle",
            Self::Down => "down",
        }
    }
}

/// The handler of one GraphQL operation.
type Operation = fn(&mut ShopModel, &str, &Value) -> (StatusCode, Value);

/// One shop's single location.
#[derive(Debug)]
pub struct ShopModel {
    /// How it answers.
    pub mode: ShopMode,
    /// SKU → its inventory item. Every SKU is sold (created at 0 when first
    /// asked for) unless it is in `not_sold`.
    items: BTreeMap<String, Item>,
    not_sold: BTreeSet<String>,
    next_item_id: u64,
    /// Every quantity a write changed, in order.
    log: Vec<AppliedSet>,
    /// Idempotency key → the adjustment group its call produced.
    applied_keys: HashMap<String, u64>,
    adjustment_groups: u64,
    /// Calls answered, by kind.
    stats: Stats,
    bucket: f64,
    bucket_at: Instant,
    /// Fulfillments created, in order.
    fulfillments: Vec<Fulfillment>,
    /// Webhook subscriptions: (GID, topic, uri).
    subscriptions: Vec<(String, String, String)>,
}

/// A fulfillment the OMS created (what Shopify would mail the customer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fulfillment {
    /// Its GID.
    pub id: String,
    /// The order's GID.
    pub order_id: String,
    /// The carrier.
    pub company: Option<String>,
    /// The tracking number.
    pub number: Option<String>,
    /// The tracking page.
    pub url: Option<String>,
    /// Whether the customer was to be notified.
    pub notify_customer: bool,
    /// How often its tracking was changed since.
    pub tracking_updates: u32,
    /// When it was created or last changed.
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    available: i64,
}

/// A quantity a write changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedSet {
    /// The SKU.
    pub sku: String,
    /// The new `available`.
    pub quantity: i64,
    /// What it was.
    pub change_from: i64,
    /// The adjustment group (one per successful call).
    pub group: u64,
    /// The call's idempotency key.
    pub idempotency_key: Option<String>,
    /// The location written.
    pub location_id: Option<String>,
    /// When.
    pub time: DateTime<Utc>,
}

/// Calls a shop answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `inventorySetQuantities` calls that changed the inventory.
    pub write_calls: u64,
    /// Write calls refused (stale compare values, unknown items).
    pub refused_writes: u64,
    /// `productVariants` and `nodes` reads.
    pub read_calls: u64,
    /// Calls answered `THROTTLED`.
    pub throttled: u64,
}

impl Default for ShopModel {
    fn default() -> Self {
        Self {
            mode: ShopMode::Ok,
            items: BTreeMap::new(),
            not_sold: BTreeSet::new(),
            next_item_id: 40_001,
            log: Vec::new(),
            applied_keys: HashMap::new(),
            adjustment_groups: 0,
            stats: Stats::default(),
            bucket: BUCKET_SIZE,
            bucket_at: Instant::now(),
            fulfillments: Vec::new(),
            subscriptions: Vec::new(),
        }
    }
}

impl ShopModel {
    /// What the shop shows for `sku` (`None` if it never heard of it).
    pub fn available(&self, sku: &str) -> Option<i64> {
        self.items.get(sku).map(|i| i.available)
    }

    /// Every SKU the shop has, with what it shows.
    pub fn inventory(&self) -> BTreeMap<String, i64> {
        self.items
            .iter()
            .map(|(sku, item)| (sku.clone(), item.available))
            .collect()
    }

    /// Changes what the shop shows behind the OMS's back (a sale in the
    /// shop, a merchant's manual edit). Not a write the log records.
    pub fn set_available(&mut self, sku: &str, available: i64) {
        self.not_sold.remove(sku);
        self.item(sku).available = available;
    }

    /// The shop stops selling `sku`: searches no longer find it and its
    /// item is gone.
    pub fn stop_selling(&mut self, sku: &str) {
        self.items.remove(sku);
        self.not_sold.insert(sku.to_string());
    }

    /// Every quantity written, in order.
    pub fn log(&self) -> &[AppliedSet] {
        &self.log
    }

    /// Fulfillments created, in order.
    pub fn fulfillments(&self) -> &[Fulfillment] {
        &self.fulfillments
    }

    /// Calls answered so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn item(&mut self, sku: &str) -> &mut Item {
        let next = &mut self.next_item_id;
        self.items.entry(sku.to_string()).or_insert_with(|| {
            *next += 1;
            Item {
                id: *next,
                available: 0,
            }
        })
    }

    /// Answers one Admin GraphQL request: HTTP status and body.
    pub fn graphql(&mut self, body: &[u8]) -> (StatusCode, Value) {
        match self.mode {
            ShopMode::Ok => {}
            ShopMode::Down => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "errors": "Service unavailable (simulated)" }),
                );
            }
            ShopMode::Throttle => {
                self.stats.throttled += 1;
                return (StatusCode::OK, throttled(MUTATION_COST, 0.0));
            }
        }
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return graphql_errors(StatusCode::BAD_REQUEST, "request body is not JSON");
        };
        let query = body["query"].as_str().unwrap_or_default();
        let variables = &body["variables"];
        let (cost, answer): (f64, Operation) = if query.contains("inventorySetQuantities") {
            (MUTATION_COST, Self::set_quantities)
        } else if query.contains("webhookSubscriptionCreate") {
            (MUTATION_COST, Self::subscribe)
        } else if query.contains("webhookSubscriptions(") {
            (2.0, Self::subscriptions)
        } else if query.contains("fulfillmentCreate") {
            (MUTATION_COST, Self::fulfill)
        } else if query.contains("fulfillmentTrackingInfoUpdate") {
            (MUTATION_COST, Self::update_tracking)
        } else if query.contains("fulfillments(") {
            (2.0, Self::order_fulfillments)
        } else if query.contains("fulfillmentOrders") {
            (2.0, Self::fulfillment_orders)
        } else if query.contains("productVariants") {
            let terms = sku_terms(variables["q"].as_str().unwrap_or_default()).len();
            (1.0 + terms as f64, Self::search)
        } else if query.contains("nodes(") {
            let ids = variables["ids"].as_array().map_or(0, Vec::len);
            (1.0 + ids as f64, Self::nodes)
        } else {
            return graphql_errors(
                StatusCode::OK,
                "unsupported operation: the simulator answers productVariants, nodes, \
                     inventorySetQuantities, fulfillmentOrders, fulfillmentCreate, \
                     order fulfillments, fulfillmentTrackingInfoUpdate, \
                     webhookSubscriptions and webhookSubscriptionCreate",
            );
        };
        // The bucket refills with time and pays for the call up front.
        let now = Instant::now();
        self.bucket = (self.bucket
            + now.duration_since(self.bucket_at).as_secs_f64() * RESTORE_RATE)
            .min(BUCKET_SIZE);
        self.bucket_at = now;
        if self.bucket < cost {
            self.stats.throttled += 1;
            return (StatusCode::OK, throttled(cost, self.bucket));
        }
        self.bucket -= cost;
        let (status, mut answer) = answer(self, query, variables);
        if let Some(obj) = answer.as_object_mut() {
            obj.insert("extensions".into(), cost_extension(cost, self.bucket));
        }
        (status, answer)
    }

    /// `order(id:) { fulfillmentOrders { nodes { id status } } }`: one
    /// fulfillment order per order (its GID ends in the order's id).
    fn fulfillment_orders(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        self.stats.read_calls += 1;
        let order = variables["id"].as_str().unwrap_or_default().to_string();
        let Some(number) = order.strip_prefix("gid://shopify/Order/") else {
            return (StatusCode::OK, json!({ "data": { "order": null } }));
        };
        let status = if self.fulfillments.iter().any(|f| f.order_id == order) {
            "CLOSED"
        } else {
            "OPEN"
        };
        (
            StatusCode::OK,
            json!({ "data": { "order": { "fulfillmentOrders": { "nodes": [
                { "id": format!("gid://shopify/FulfillmentOrder/{number}"), "status": status }
            ] } } } }),
        )
    }

    /// `fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder, trackingInfo, notifyCustomer})`.
    fn fulfill(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        let input = &variables["fulfillment"];
        let orders: Vec<String> = input["lineItemsByFulfillmentOrder"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["fulfillmentOrderId"].as_str())
            .filter_map(|id| id.strip_prefix("gid://shopify/FulfillmentOrder/"))
            .map(|n| format!("gid://shopify/Order/{n}"))
            .collect();
        let refused = |message: &str| {
            json!({ "data": { "fulfillmentCreate": { "fulfillment": null, "userErrors": [
                { "field": ["fulfillment"], "message": message }
            ] } } })
        };
        let Some(order) = orders.first().cloned() else {
            return (
                StatusCode::OK,
                refused("lineItemsByFulfillmentOrder is empty"),
            );
        };
        if self.fulfillments.iter().any(|f| f.order_id == order) {
            return (
                StatusCode::OK,
                refused("Fulfillment order is not in a fulfillable state."),
            );
        }
        self.stats.write_calls += 1;
        let id = format!(
            "gid://shopify/Fulfillment/{}",
            70_000 + self.fulfillments.len()
        );
        let tracking = &input["trackingInfo"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        self.fulfillments.push(Fulfillment {
            id: id.clone(),
            order_id: order,
            company: text(&tracking["company"]),
            number: text(&tracking["number"]),
            url: text(&tracking["url"]),
            notify_customer: input["notifyCustomer"].as_bool().unwrap_or(false),
            tracking_updates: 0,
            time: Utc::now(),
        });
        (
            StatusCode::OK,
            json!({ "data": { "fulfillmentCreate": {
                "fulfillment": { "id": id, "status": "SUCCESS" }, "userErrors": []
            } } }),
        )
    }

    /// `webhookSubscriptions(first:)`: one page holds them all.
    fn subscriptions(&mut self, _query: &str, _variables: &Value) -> (StatusCode, Value) {
        self.stats.read_calls += 1;
        let nodes: Vec<Value> = self
            .subscriptions
            .iter()
            .map(|(id, topic, uri)| json!({ "id": id, "topic": topic, "uri": uri }))
            .collect();
        (
            StatusCode::OK,
            json!({ "data": { "webhookSubscriptions": {
                "nodes": nodes, "pageInfo": { "hasNextPage": false, "endCursor": null }
            } } }),
        )
    }

    /// `webhookSubscriptionCreate(topic:, webhookSubscription: {uri, format})`;
    /// Shopify refuses the same topic at the same address twice.
    fn subscribe(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        let topic = variables["topic"].as_str().unwrap_or_default().to_string();
        let uri = variables["sub"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let refused = |field: &str, message: &str| {
            json!({ "data": { "webhookSubscriptionCreate": { "webhookSubscription": null,
                "userErrors": [{ "field": [field], "message": message }] } } })
        };
        if topic.is_empty() || !topic.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            return (StatusCode::OK, refused("topic", "Invalid topic specified"));
        }
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return (StatusCode::OK, refused("uri", "Address is invalid"));
        }
        if self
            .subscriptions
            .iter()
            .any(|(_, t, u)| *t == topic && *u == uri)
        {
            return (
                StatusCode::OK,
                refused("address", "Address for this topic has already been taken"),
            );
        }
        self.stats.write_calls += 1;
        let id = format!(
            "gid://shopify/WebhookSubscription/{}",
            90_000 + self.subscriptions.len()
        );
        self.subscriptions
            .push((id.clone(), topic.clone(), uri.clone()));
        (
            StatusCode::OK,
            json!({ "data": { "webhookSubscriptionCreate": {
                "webhookSubscription": { "id": id, "topic": topic, "uri": uri }, "userErrors": []
            } } }),
        )
    }

    /// `order(id:) { fulfillments { id status } }`: the fulfillments the OMS
    /// created for the order.
    fn order_fulfillments(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        self.stats.read_calls += 1;
        let order = variables["id"].as_str().unwrap_or_default();
        if !order.starts_with("gid://shopify/Order/") {
            return (StatusCode::OK, json!({ "data": { "order": null } }));
        }
        let nodes: Vec<Value> = self
            .fulfillments
            .iter()
            .filter(|f| f.order_id == order)
            .map(|f| {
                json!({ "id": f.id, "status": "SUCCESS", "trackingInfo": [
                    { "company": f.company, "number": f.number, "url": f.url }
                ] })
            })
            .collect();
        (
            StatusCode::OK,
            json!({ "data": { "order": { "fulfillments": nodes } } }),
        )
    }

    /// `fulfillmentTrackingInfoUpdate(fulfillmentId:, trackingInfoInput:, notifyCustomer:)`.
    fn update_tracking(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        let id = variables["id"].as_str().unwrap_or_default();
        let Some(fulfillment) = self.fulfillments.iter_mut().find(|f| f.id == id) else {
            return (
                StatusCode::OK,
                json!({ "data": { "fulfillmentTrackingInfoUpdate": { "fulfillment": null, "userErrors": [
                    { "field": ["fulfillmentId"], "message": "Fulfillment does not exist." }
                ] } } }),
            );
        };
        self.stats.write_calls += 1;
        let tracking = &variables["tracking"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        fulfillment.company = text(&tracking["company"]);
        fulfillment.number = text(&tracking["number"]);
        fulfillment.url = text(&tracking["url"]);
        fulfillment.tracking_updates += 1;
        fulfillment.time = Utc::now();
        (
            StatusCode::OK,
            json!({ "data": { "fulfillmentTrackingInfoUpdate": {
                "fulfillment": { "id": id }, "userErrors": []
            } } }),
        )
    }

    /// `productVariants(first:, query: "sku:\"A\" OR …")`: variants whose
    /// SKU contains a searched term, as Shopify's tokenized search finds more
    /// than the exact SKU.
    fn search(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        self.stats.read_calls += 1;
        let terms = sku_terms(variables["q"].as_str().unwrap_or_default());
        for term in &terms {
            if !self.not_sold.contains(term) {
                self.item(term);
            }
        }
        let first = variables["first"]
            .as_u64()
            .unwrap_or(50)
            .min(MAX_ITEMS as u64);
        let nodes: Vec<Value> = self
            .items
            .iter()
            .filter(|(sku, _)| terms.iter().any(|t| sku.contains(t.as_str())))
            .take(usize::try_from(first).unwrap_or(MAX_ITEMS))
            .map(|(sku, item)| json!({ "sku": sku, "inventoryItem": item_json(sku, item, false) }))
            .collect();
        (
            StatusCode::OK,
            json!({ "data": { "productVariants": { "nodes": nodes } } }),
        )
    }

    /// `nodes(ids: [...])` over inventory items; an unknown id is `null`.
    fn nodes(&mut self, _query: &str, variables: &Value) -> (StatusCode, Value) {
        self.stats.read_calls += 1;
        let ids: Vec<&str> = variables["ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if ids.len() > MAX_ITEMS {
            return graphql_errors(
                StatusCode::OK,
                "The input array size of 251 is greater than the maximum allowed of 250.",
            );
        }
        let nodes: Vec<Value> = ids
            .iter()
            .map(|gid| match self.by_gid(gid) {
                Some((sku, item)) => item_json(sku, item, true),
                None => Value::Null,
            })
            .collect();
        (StatusCode::OK, json!({ "data": { "nodes": nodes } }))
    }

    fn by_gid(&self, gid: &str) -> Option<(&String, &Item)> {
        let id: u64 = gid
            .strip_prefix("gid://shopify/InventoryItem/")?
            .parse()
            .ok()?;
        self.items.iter().find(|(_, item)| item.id == id)
    }

    /// `inventorySetQuantities`: every quantity or none, compare-and-set on
    /// `changeFromQuantity`, replayed by its `@idempotent` key.
    fn set_quantities(&mut self, query: &str, variables: &Value) -> (StatusCode, Value) {
        let quantities = variables["input"]["quantities"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if quantities.len() > MAX_ITEMS {
            return graphql_errors(
                StatusCode::OK,
                &format!(
                    "The input array size of {} is greater than the maximum allowed of 250.",
                    quantities.len()
                ),
            );
        }
        let key = idempotency_key(query, variables);
        // The key is checked before the compare-and-set: a retry of a call
        // whose answer was lost carries compare values that are stale by
        // now, and must still count as done.
        if let Some(group) = key.as_ref().and_then(|k| self.applied_keys.get(k)) {
            return (StatusCode::OK, set_done(*group));
        }
        let mut errors = Vec::new();
        let mut writes = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, q) in quantities.iter().enumerate() {
            let gid = q["inventoryItemId"].as_str().unwrap_or_default();
            let Some((sku, item)) = self.by_gid(gid) else {
                errors.push(user_error(
                    i,
                    "inventoryItemId",
                    "INVALID_INVENTORY_ITEM",
                    "The specified inventory item could not be found.",
                ));
                continue;
            };
            if !seen.insert(item.id) {
                errors.push(user_error(
                    i,
                    "inventoryItemId",
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                    "The combination of inventoryItemId and locationId must be unique.",
                ));
                continue;
            }
            let Some(quantity) = q["quantity"].as_i64() else {
                errors.push(user_error(
                    i,
                    "quantity",
                    "INVALID_QUANTITY_NEGATIVE",
                    "quantity is required",
                ));
                continue;
            };
            if q["changeFromQuantity"].as_i64() != Some(item.available) {
                errors.push(user_error(
                    i,
                    "changeFromQuantity",
                    "CHANGE_FROM_QUANTITY_STALE",
                    "The specified compare quantity does not match the current quantity.",
                ));
                continue;
            }
            writes.push((
                sku.clone(),
                quantity,
                item.available,
                q["locationId"].as_str().map(str::to_string),
            ));
        }
        if !errors.is_empty() {
            self.stats.refused_writes += 1;
            return (
                StatusCode::OK,
                json!({ "data": { "inventorySetQuantities": {
                    "inventoryAdjustmentGroup": null, "userErrors": errors } } }),
            );
        }
        self.stats.write_calls += 1;
        self.adjustment_groups += 1;
        let group = self.adjustment_groups;
        if let Some(key) = &key {
            self.applied_keys.insert(key.clone(), group);
        }
        for (sku, quantity, change_from, location_id) in writes {
            self.item(&sku).available = quantity;
            self.log.push(AppliedSet {
                sku,
                quantity,
                change_from,
                group,
                idempotency_key: key.clone(),
                location_id,
                time: Utc::now(),
            });
        }
        (StatusCode::OK, set_done(group))
    }
}

fn item_json(sku: &str, item: &Item, with_sku: bool) -> Value {
    let mut v = json!({
        "id": format!("gid://shopify/InventoryItem/{}", item.id),
        "inventoryLevel": { "quantities": [{ "name": "available", "quantity": item.available }] },
    });
    if with_sku {
        v["sku"] = json!(sku);
    }
    v
}

fn user_error(index: usize, field: &str, code: &str, message: &str) -> Value {
    json!({
        "code": code,
        "field": ["input", "quantities", index.to_string(), field],
        "message": message,
    })
}

fn set_done(group: u64) -> Value {
    json!({ "data": { "inventorySetQuantities": {
        "inventoryAdjustmentGroup": { "id": format!("gid://shopify/InventoryAdjustmentGroup/{group}") },
        "userErrors": [],
    }}})
}

fn cost_extension(cost: f64, available: f64) -> Value {
    json!({ "cost": {
        "requestedQueryCost": cost,
        "actualQueryCost": cost,
        "throttleStatus": {
            "maximumAvailable": BUCKET_SIZE,
            "currentlyAvailable": available.floor(),
            "restoreRate": RESTORE_RATE,
        },
    }})
}

/// Shopify's answer when the cost bucket cannot pay: HTTP 200, not 429.
fn throttled(cost: f64, available: f64) -> Value {
    json!({
        "errors": [{ "message": "Throttled", "extensions": { "code": "THROTTLED" } }],
        "extensions": { "cost": {
            "requestedQueryCost": cost,
            "actualQueryCost": null,
            "throttleStatus": {
                "maximumAvailable": BUCKET_SIZE,
                "currentlyAvailable": available.floor(),
                "restoreRate": RESTORE_RATE,
            },
        }},
    })
}

fn graphql_errors(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "errors": [{ "message": message }] }))
}

/// The SKUs of `sku:"A" OR sku:"B"` (the client escapes `"` and `\`).
fn sku_terms(q: &str) -> Vec<String> {
    q.split(" OR ")
        .filter_map(|term| {
            let value = term.trim().strip_prefix("sku:")?.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            Some(unquoted.replace("\\\"", "\"").replace("\\\\", "\\"))
        })
        .collect()
}

/// The key of `@idempotent(key: …)`: a `$variable`, or a string literal.
fn idempotency_key(query: &str, variables: &Value) -> Option<String> {
    let after_directive = &query[query.find("@idempotent")?..];
    let after_key = after_directive[after_directive.find("key:")? + "key:".len()..].trim_start();
    if let Some(var) = after_key.strip_prefix('$') {
        let name: String = var
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        return variables[name.as_str()].as_str().map(str::to_string);
    }
    let literal = after_key.strip_prefix('"')?;
    Some(literal[..literal.find('"')?].to_string())
}

/// `POST /shops/{shop}/admin/api/{version}/graphql.json`
pub(crate) async fn graphql(
    State(sim): State<Simulator>,
    Path((shop_name, _version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut state = sim.state.lock().await;
    let shop = state.shops.entry(shop_name.clone()).or_default();
    let (status, answer) = shop.graphql(&body);
    tracing::info!(shop = %shop_name, mode = shop.mode.name(), status = status.as_u16(), "shopify graphql");
    (status, Json(answer)).into_response()
}

/// `GET /shops/{shop}/inventory`
pub(crate) async fn inventory(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
) -> Json<BTreeMap<String, i64>> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(ShopModel::inventory)
            .unwrap_or_default(),
    )
}

/// `GET /shops/{shop}/log`
pub(crate) async fn log(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
) -> Json<Vec<AppliedSet>> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(|s| s.log().to_vec())
            .unwrap_or_default(),
    )
}

/// `GET /shops/{shop}/fulfillments`
pub(crate) async fn fulfillments(
    State(sim): State<Simulator>,
    Path(shop): Path<String>,
) -> Json<Vec<Fulfillment>> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(|s| s.fulfillments().to_vec())
            .unwrap_or_default(),
    )
}

/// `GET /shops/{shop}/stats`
pub(crate) async fn stats(State(sim): State<Simulator>, Path(shop): Path<String>) -> Json<Stats> {
    let state = sim.state.lock().await;
    Json(
        state
            .shops
            .get(&shop)
            .map(ShopModel::stats)
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_read_back_from_the_search_the_client_builds() {
        assert_eq!(sku_terms(r#"sku:"TEE-RED-M""#), ["TEE-RED-M"]);
        assert_eq!(sku_terms(r#"sku:"A\"B" OR sku:"C""#), ["A\"B", "C"]);
    }

    #[test]
    fn the_idempotency_key_is_a_variable_or_a_literal() {
        let query = r#"mutation M($input: X!, $key: String!) {
              inventorySetQuantities(input: $input) @idempotent(key: $key) { userErrors { code } }
            }"#;
        assert_eq!(
            idempotency_key(query, &json!({"key": "k-1"})).as_deref(),
            Some("k-1")
        );
        let literal =
            r#"mutation { inventorySetQuantities(input: {}) @idempotent(key: "0b0e-42") { x } }"#;
        assert_eq!(
            idempotency_key(literal, &json!({})).as_deref(),
            Some("0b0e-42")
        );
        assert_eq!(
            idempotency_key("mutation { inventorySetQuantities }", &json!({})),
            None
        );
    }
}
