//! Client of one Shopify shop's Admin GraphQL API: reads and sets the
//! `available` quantity of our SKUs at the shop's location, many SKUs per
//! call.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use domain::ShopDomain;
use reqwest::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::ClientError;

const SERVICE: &str = "shopify";

/// The Admin API version every request is pinned to.
pub const DEFAULT_API_VERSION: &str = "2026-10";

/// Most items one call may carry: Shopify caps every input array (and
/// `nodes(ids:)`) at 250.
pub const MAX_ITEMS_PER_CALL: usize = 250;

/// SKUs per search query: the search syntax has no documented length
/// limit, so SKU look-ups go in modest chunks.
const SKUS_PER_SEARCH: usize = 50;

/// How long "this shop does not sell that SKU" is believed: a product added
/// to the shop later is found again without a restart.
const NOT_SOLD_TTL: Duration = Duration::from_secs(600);

/// One configured shop: how to verify its webhooks and how to reach its Admin API.
#[derive(Debug, Clone, Deserialize)]
pub struct ShopSettings {
    /// The `*.myshopify.com` domain (`X-Shopify-Shop-Domain` of its webhooks).
    pub shop: ShopDomain,
    /// The app's client secret: the key of the webhook HMAC.
    pub webhook_secret: SecretString,
    /// Base URL of the Admin API, e.g. `https://store-a.myshopify.com`.
    pub admin_url: String,
    /// Admin API access token.
    pub access_token: SecretString,
    /// GID of the location whose `available` quantity we set.
    pub location_id: String,
    /// Units held back from this shop: it shows `IN_STOCK − safety_buffer`
    /// (never below 0). A shop sells before the OMS hears of the order, so
    /// a buffer absorbs the orders in flight while a level travels.
    #[serde(default)]
    pub safety_buffer: u32,
}

impl ShopSettings {
    /// What the shop should show for `in_stock` units.
    pub fn target(&self, in_stock: i32) -> i64 {
        (i64::from(in_stock) - i64::from(self.safety_buffer)).max(0)
    }
}

/// Reads the shops from `OMS_SHOPIFY_STORES` (a JSON array of
/// [`ShopSettings`]) or from the file named by `OMS_SHOPIFY_STORES_FILE`
/// (Shopify calls a merchant's shop a "store"; the variables keep its word).
/// No shops is valid: webhooks are then refused and nothing is synced.
pub fn shops_from_env() -> Result<Vec<ShopSettings>, runtime::config::ConfigError> {
    let (name, text) = match (
        std::env::var("OMS_SHOPIFY_STORES"),
        std::env::var("OMS_SHOPIFY_STORES_FILE"),
    ) {
        (Ok(json), _) if !json.trim().is_empty() => ("OMS_SHOPIFY_STORES", json),
        (_, Ok(path)) if !path.trim().is_empty() => {
            let text =
                std::fs::read_to_string(&path).map_err(|e| runtime::config::ConfigError {
                    name: "OMS_SHOPIFY_STORES_FILE".into(),
                    value: path.clone(),
                    reason: e.to_string(),
                })?;
            ("OMS_SHOPIFY_STORES_FILE", text)
        }
        _ => return Ok(Vec::new()),
    };
    let shops: Vec<ShopSettings> =
        serde_json::from_str(&text).map_err(|e| runtime::config::ConfigError {
            name: name.into(),
            // The text holds secrets: say where it broke, not what it holds.
            value: "<redacted>".into(),
            reason: e.to_string(),
        })?;
    let allow_dev = runtime::config::dev_secrets_allowed()?;
    for (i, shop) in shops.iter().enumerate() {
        for (field, value) in [
            ("webhook_secret", &shop.webhook_secret),
            ("access_token", &shop.access_token),
        ] {
            runtime::config::check_secret(
                &format!("{name}[{i}].{field} ({})", shop.shop),
                value.expose_secret(),
                allow_dev,
            )?;
        }
    }
    Ok(shops)
}

/// A shop's Admin GraphQL API.
#[derive(Clone)]
pub struct ShopifyClient {
    http: Client,
    shop: ShopSettings,
    api_version: String,
    /// SKU → inventory item, and SKUs the shop was found not to sell. Only
    /// identities are cached, never quantities: every write compares with a
    /// quantity read for it.
    items: Arc<Mutex<ItemCache>>,
    /// The cost bucket as the last answer reported it.
    bucket: Arc<Mutex<Option<Bucket>>>,
}

#[derive(Default)]
struct ItemCache {
    ids: HashMap<String, String>,
    not_sold: HashMap<String, Instant>,
}

/// Shopify's cost-based rate limit, from `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    available: f64,
    restore_rate: f64,
    at: Instant,
}

/// One SKU's quantity in the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopLevel {
    /// The inventory item's GID.
    pub item_id: String,
    /// `available` at the configured location (0 when not stocked there).
    pub available: i64,
}

/// A shipment's tracking, as Shopify's `trackingInfo` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentTracking {
    /// The carrier (Shopify's `company`).
    pub company: Option<String>,
    /// The tracking number.
    pub number: Option<String>,
    /// The tracking page.
    pub url: Option<String>,
}

/// What reporting a shipment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentReport {
    /// A fulfillment was created (its GID).
    Created {
        /// The fulfillment's GID.
        fulfillment_id: String,
    },
    /// Nothing was left open: an earlier report went through.
    AlreadyFulfilled,
}

/// What updating a shipment's tracking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingUpdate {
    /// The fulfillment (its GID) carries the new tracking; the customer
    /// was notified.
    Updated {
        /// The fulfillment's GID.
        fulfillment_id: String,
    },
    /// The order has no fulfillment yet: the shipment's report will carry
    /// the latest tracking.
    NoFulfillment,
    /// The fulfillment already shows this tracking (a repeated report).
    Unchanged {
        /// The fulfillment's GID.
        fulfillment_id: String,
    },
}

/// A webhook subscription of the app in a shop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSubscription {
    /// Its GID.
    pub id: String,
    /// The topic, as Shopify's enum names it (`ORDERS_CREATE`).
    pub topic: String,
    /// Where Shopify delivers it.
    pub uri: String,
}

/// What the shop shows for a set of SKUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levels {
    /// SKU → its item and quantity.
    pub found: HashMap<String, ShopLevel>,
    /// SKUs the shop does not sell (no variant has them).
    pub not_sold: Vec<String>,
}

/// One quantity to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelWrite {
    /// The SKU (for errors and logs).
    pub sku: String,
    /// Its inventory item.
    pub item_id: String,
    /// The new `available`.
    pub quantity: i64,
    /// The quantity read just before: the write applies only if the shop
    /// still shows it (compare-and-set).
    pub change_from: i64,
}

/// How a batch write ended. Shopify applies a batch entirely or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// Every quantity was set.
    Applied,
    /// Nothing was set: these items (indexes into the batch) no longer
    /// showed their `change_from`; re-read them and try again.
    Stale(Vec<usize>),
    /// Nothing was set: these items can never be set as they are (not
    /// stocked at the location, a bundle, …), with the shop's reason.
    Refused(Vec<(usize, String)>),
}

impl ShopifyClient {
    /// Builds the client of `shop`.
    pub fn new(
        shop: ShopSettings,
        api_version: &str,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = Client::builder().timeout(timeout).build()?;
        Ok(Self {
            http,
            shop,
            api_version: api_version.to_string(),
            items: Arc::default(),
            bucket: Arc::default(),
        })
    }

    /// The shop's domain.
    pub fn domain(&self) -> &ShopDomain {
        &self.shop.shop
    }

    /// The shop's settings.
    pub fn settings(&self) -> &ShopSettings {
        &self.shop
    }

    /// Tells the shop that order `order_id` (Shopify's numeric id) shipped:
    /// one fulfillment of every open fulfillment order, with `tracking`, the
    /// customer notified. Safe to repeat: an order with nothing left open
    /// (an earlier attempt went through) is reported as already fulfilled.
    pub async fn report_shipment(
        &self,
        order_id: &str,
        tracking: &ShipmentTracking,
    ) -> Result<ShipmentReport, ClientError> {
        const OPEN_ORDERS: &str = "query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 20) { nodes { id status } } } }";
        const CREATE: &str = "mutation($fulfillment: FulfillmentInput!) { fulfillmentCreate(fulfillment: $fulfillment) { fulfillment { id status } userErrors { field message } } }";
        let order = self.order(OPEN_ORDERS, order_id).await?;
        // Fulfillable now; ON_HOLD and SCHEDULED need someone in the admin.
        let open: Vec<Value> = order
            .pointer("/fulfillmentOrders/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|fo| {
                matches!(
                    fo.get("status").and_then(Value::as_str),
                    Some("OPEN" | "IN_PROGRESS")
                )
            })
            .filter_map(|fo| fo.get("id").cloned())
            .map(|id| json!({ "fulfillmentOrderId": id }))
            .collect();
        if open.is_empty() {
            return Ok(ShipmentReport::AlreadyFulfilled);
        }
        let data = self
            .graphql(
                CREATE,
                json!({ "fulfillment": {
                    "lineItemsByFulfillmentOrder": open,
                    "notifyCustomer": true,
                    "trackingInfo": {
                        "company": tracking.company,
                        "number": tracking.number,
                        "url": tracking.url,
                    },
                }}),
            )
            .await?;
        let created = data.get("fulfillmentCreate").cloned().unwrap_or_default();
        refused_by_user_errors(&created, "fulfillmentCreate")?;
        let id = created
            .pointer("/fulfillment/id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(ShipmentReport::Created { fulfillment_id: id })
    }

    /// Runs `query` (taking `$id`) on order `order_id` (Shopify's numeric
    /// id); its `order`, or a permanent failure when the shop has none.
    async fn order(&self, query: &str, order_id: &str) -> Result<Value, ClientError> {
        let mut data = self
            .graphql(
                query,
                json!({ "id": format!("gid://shopify/Order/{order_id}") }),
            )
            .await?;
        data.get_mut("order")
            .map(Value::take)
            .filter(|o| !o.is_null())
            .ok_or_else(|| ClientError::Permanent {
                service: SERVICE,
                status: 200,
                message: format!("the shop has no order {order_id}"),
            })
    }

    /// Gives the shipment of order `order_id` (Shopify's numeric id) new
    /// tracking: its latest successful fulfillment is updated and the
    /// customer told. Safe to repeat (the same tracking is set again).
    pub async fn update_tracking(
        &self,
        order_id: &str,
        tracking: &ShipmentTracking,
    ) -> Result<TrackingUpdate, ClientError> {
        const FULFILLMENTS: &str = "query($id: ID!) { order(id: $id) { fulfillments(first: 20) { id status trackingInfo { company number url } } } }";
        const UPDATE: &str = "mutation($id: ID!, $tracking: FulfillmentTrackingInput!) { fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: true) { fulfillment { id } userErrors { field message } } }";
        let order = self.order(FULFILLMENTS, order_id).await?;
        // The latest one that was not cancelled is the parcel on its way.
        let Some(latest) = order
            .get("fulfillments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .rfind(|f| f.get("status").and_then(Value::as_str) == Some("SUCCESS"))
        else {
            return Ok(TrackingUpdate::NoFulfillment);
        };
        let fulfillment_id = latest
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // A repeated report changes nothing and mails nobody twice.
        let shown = latest.pointer("/trackingInfo/0");
        let same = |key: &str, ours: &Option<String>| {
            shown.and_then(|t| t.get(key)).and_then(Value::as_str) == ours.as_deref()
        };
        if same("number", &tracking.number) && same("company", &tracking.company) {
            return Ok(TrackingUpdate::Unchanged { fulfillment_id });
        }
        let data = self
            .graphql(
                UPDATE,
                json!({ "id": fulfillment_id, "tracking": {
                    "company": tracking.company,
                    "number": tracking.number,
                    "url": tracking.url,
                }}),
            )
            .await?;
        let updated = data
            .get("fulfillmentTrackingInfoUpdate")
            .cloned()
            .unwrap_or_default();
        refused_by_user_errors(&updated, "fulfillmentTrackingInfoUpdate")?;
        Ok(TrackingUpdate::Updated { fulfillment_id })
    }

    /// The app's webhook subscriptions in this shop.
    pub async fn webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>, ClientError> {
        const LIST: &str = "query($after: String) { webhookSubscriptions(first: 100, after: $after) { nodes { id topic uri } pageInfo { hasNextPage endCursor } } }";
        let mut found = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = self.graphql(LIST, json!({ "after": after })).await?;
            let page = data
                .get("webhookSubscriptions")
                .cloned()
                .unwrap_or_default();
            for node in page
                .get("nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = |k: &str| node.get(k).and_then(Value::as_str).unwrap_or_default();
                found.push(WebhookSubscription {
                    id: text("id").to_string(),
                    topic: text("topic").to_string(),
                    uri: text("uri").to_string(),
                });
            }
            match page.pointer("/pageInfo/endCursor") {
                Some(cursor)
                    if page.pointer("/pageInfo/hasNextPage") == Some(&Value::Bool(true)) =>
                {
                    after = cursor.clone();
                }
                _ => return Ok(found),
            }
        }
    }

    /// Subscribes the app to `topic` (Shopify's enum name), delivered to `uri`.
    pub async fn create_webhook_subscription(
        &self,
        topic: &str,
        uri: &str,
    ) -> Result<WebhookSubscription, ClientError> {
        const CREATE: &str = "mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) { webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) { webhookSubscription { id topic uri } userErrors { field message } } }";
        let data = self
            .graphql(
                CREATE,
                json!({ "topic": topic, "sub": { "uri": uri, "format": "JSON" } }),
            )
            .await?;
        let created = data
            .get("webhookSubscriptionCreate")
            .cloned()
            .unwrap_or_default();
        refused_by_user_errors(&created, "webhookSubscriptionCreate")?;
        let sub = created
            .get("webhookSubscription")
            .cloned()
            .unwrap_or_default();
        let text = |k: &str| {
            sub.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(WebhookSubscription {
            id: text("id"),
            topic: text("topic"),
            uri: text("uri"),
        })
    }

    /// What the shop shows now for `skus` (at most [`MAX_ITEMS_PER_CALL`]):
    /// one `nodes` read for the SKUs whose items are known, and SKU searches
    /// for the others (whose answers carry the quantity too).
    pub async fn levels(&self, skus: &[String]) -> Result<Levels, ClientError> {
        let mut levels = Levels::default();
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        {
            let mut cache = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            cache
                .not_sold
                .retain(|_, since| now.duration_since(*since) < NOT_SOLD_TTL);
            for sku in skus {
                if let Some(id) = cache.ids.get(sku) {
                    known.push((sku.clone(), id.clone()));
                } else if cache.not_sold.contains_key(sku) {
                    levels.not_sold.push(sku.clone());
                } else {
                    unknown.push(sku.clone());
                }
            }
        }
        if !known.is_empty() {
            let ids: Vec<&str> = known.iter().map(|(_, id)| id.as_str()).collect();
            let data = self
                .graphql(
                    r#"query Levels($ids: [ID!]!, $loc: ID!) {
                      nodes(ids: $ids) { ... on InventoryItem { id sku
                        inventoryLevel(locationId: $loc) { quantities(names: ["available"]) { name quantity } } } }
                    }"#,
                    json!({ "ids": ids, "loc": self.shop.location_id }),
                )
                .await?;
            let nodes = data.get("nodes").and_then(Value::as_array);
            for (i, (sku, id)) in known.into_iter().enumerate() {
                let node = nodes.and_then(|n| n.get(i)).filter(|n| {
                    n.get("id").and_then(Value::as_str) == Some(id.as_str())
                        && n.get("sku").and_then(Value::as_str) == Some(sku.as_str())
                });
                match node {
                    Some(node) => {
                        levels.found.insert(
                            sku,
                            ShopLevel {
                                item_id: id,
                                available: available(node),
                            },
                        );
                    }
                    // The item is gone or holds another SKU now: look it up again.
                    None => {
                        self.forget(&sku);
                        unknown.push(sku);
                    }
                }
            }
        }
        for chunk in unknown.chunks(SKUS_PER_SEARCH) {
            let found = self.search(chunk).await?;
            let mut cache = self.items.lock().unwrap_or_else(PoisonError::into_inner);
            for sku in chunk {
                match found.get(sku) {
                    Some(level) => {
                        cache.ids.insert(sku.clone(), level.item_id.clone());
                        levels.found.insert(sku.clone(), level.clone());
                    }
                    None => {
                        cache.not_sold.insert(sku.clone(), Instant::now());
                        levels.not_sold.push(sku.clone());
                    }
                }
            }
        }
        Ok(levels)
    }

    /// Variants with exactly these SKUs, by SKU. The search is tokenized, not
    /// exact, so only exact matches count.
    async fn search(&self, skus: &[String]) -> Result<HashMap<String, ShopLevel>, ClientError> {
        let query = skus
            .iter()
            .map(|s| format!("sku:\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let data = self
            .graphql(
                r#"query Lookup($q: String!, $loc: ID!, $first: Int!) {
                  productVariants(first: $first, query: $q) {
                    nodes { sku inventoryItem { id inventoryLevel(locationId: $loc) {
                      quantities(names: ["available"]) { name quantity } } } }
                  }
                }"#,
                json!({ "q": query, "loc": self.shop.location_id, "first": MAX_ITEMS_PER_CALL }),
            )
            .await?;
        let mut found = HashMap::new();
        for node in data
            .pointer("/productVariants/nodes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(sku), Some(item)) = (
                node.get("sku").and_then(Value::as_str),
                node.get("inventoryItem"),
            ) else {
                continue;
            };
            let Some(item_id) = item.get("id").and_then(Value::as_str) else {
                continue;
            };
            if skus.iter().any(|s| s == sku) {
                found.entry(sku.to_string()).or_insert(ShopLevel {
                    item_id: item_id.to_string(),
                    available: available(item),
                });
            }
        }
        Ok(found)
    }

    /// Forgets what is known about `sku` (a write found its item invalid).
    pub fn forget(&self, sku: &str) {
        let mut cache = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        cache.ids.remove(sku);
        cache.not_sold.remove(sku);
    }

    /// Sets every quantity of `writes` (at most [`MAX_ITEMS_PER_CALL`]) in one
    /// `inventorySetQuantities` call, each compared with its `change_from`.
    ///
    /// `key` makes the call idempotent: a retry with the same key and the
    /// same writes is applied once. Writes that changed need a new key.
    pub async fn set_levels(
        &self,
        writes: &[LevelWrite],
        reference: &str,
        key: Uuid,
    ) -> Result<SetOutcome, ClientError> {
        let quantities: Vec<Value> = writes
            .iter()
            .map(|w| {
                json!({
                    "inventoryItemId": w.item_id,
                    "locationId": self.shop.location_id,
                    "quantity": w.quantity,
                    "changeFromQuantity": w.change_from,
                })
            })
            .collect();
        let data = self
            .graphql(
                r#"mutation SetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
                  inventorySetQuantities(input: $input) @idempotent(key: $key) {
                    inventoryAdjustmentGroup { id }
                    userErrors { code field message }
                  }
                }"#,
                json!({
                    "key": key.to_string(),
                    "input": {
                        "name": "available",
                        "reason": "correction",
                        "referenceDocumentUri": reference,
                        "quantities": quantities,
                    },
                }),
            )
            .await?;
        let errors = data
            .pointer("/inventorySetQuantities/userErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if errors.is_empty() {
            return Ok(SetOutcome::Applied);
        }
        let code = |e: &Value| {
            e.get("code")
                .and_then(Value::as_str)
                .unwrap_or("ERROR")
                .to_string()
        };
        if errors
            .iter()
            .any(|e| code(e) == "IDEMPOTENCY_CONCURRENT_REQUEST")
        {
            return Err(ClientError::Transient {
                service: SERVICE,
                message: "a request with the same idempotency key is in flight".into(),
            });
        }
        let stale: Vec<usize> = errors
            .iter()
            .filter(|e| code(e).ends_with("QUANTITY_STALE"))
            .filter_map(item_index)
            .collect();
        if !stale.is_empty() {
            return Ok(SetOutcome::Stale(stale));
        }
        let refused: Vec<(usize, String)> = errors
            .iter()
            .filter_map(|e| {
                let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                item_index(e).map(|i| (i, format!("{}: {message}", code(e))))
            })
            .collect();
        if refused.is_empty() {
            // Not about an item: the request itself is wrong.
            let message = errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        code(e),
                        e.get("message").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ClientError::Permanent {
                service: SERVICE,
                status: 200,
                message,
            });
        }
        Ok(SetOutcome::Refused(refused))
    }

    /// How long to wait before a call of `cost` points, so that it finds the
    /// cost bucket full enough (from the last answer's throttle status).
    pub fn pacing(&self, cost: f64) -> Option<Duration> {
        let bucket = (*self.bucket.lock().unwrap_or_else(PoisonError::into_inner))?;
        let now_available =
            bucket.available + bucket.at.elapsed().as_secs_f64() * bucket.restore_rate;
        (now_available < cost && bucket.restore_rate > 0.0).then(|| {
            Duration::from_secs_f64(((cost - now_available) / bucket.restore_rate).min(60.0))
        })
    }

    /// One GraphQL call; returns `data`. Throttling (HTTP 429, or Shopify's
    /// cost-based `THROTTLED` error answered with 200) becomes `RateLimited`
    /// with the delay the bucket needs to refill.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ClientError> {
        let url = format!(
            "{}/admin/api/{}/graphql.json",
            self.shop.admin_url.trim_end_matches('/'),
            self.api_version
        );
        let response = self
            .http
            .post(url)
            .header(
                "X-Shopify-Access-Token",
                self.shop.access_token.expose_secret(),
            )
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|e| ClientError::transport(SERVICE, &e))?;
        if !response.status().is_success() {
            return Err(ClientError::from_status(SERVICE, response).await);
        }
        let body: Value = response.json().await.map_err(|e| ClientError::Transient {
            service: SERVICE,
            message: format!("unreadable GraphQL answer: {e}"),
        })?;
        if let Some(bucket) = bucket_of(&body) {
            *self.bucket.lock().unwrap_or_else(PoisonError::into_inner) = Some(bucket);
        }
        if let Some(errors) = body
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            let throttled = errors.iter().any(|e| {
                e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED")
            });
            if throttled {
                return Err(ClientError::RateLimited {
                    service: SERVICE,
                    retry_after: refill_delay(&body),
                });
            }
            let message = errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ClientError::Permanent {
                service: SERVICE,
                status: 200,
                message,
            });
        }
        body.get("data")
            .cloned()
            .ok_or_else(|| ClientError::Transient {
                service: SERVICE,
                message: "GraphQL answer without data".into(),
            })
    }
}

/// `available` from an item's `inventoryLevel.quantities` (0 when the item
/// is not stocked at the location).
fn available(item: &Value) -> i64 {
    item.pointer("/inventoryLevel/quantities")
        .and_then(Value::as_array)
        .and_then(|qs| {
            qs.iter()
                .find(|q| q.get("name").and_then(Value::as_str) == Some("available"))
        })
        .and_then(|q| q.get("quantity").and_then(Value::as_i64))
        .unwrap_or(0)
}

/// The batch index a userError's `field` points at: the element after
/// `"quantities"` (`["input", "quantities", "3", "changeFromQuantity"]`).
fn item_index(error: &Value) -> Option<usize> {
    let field = error.get("field")?.as_array()?;
    let at = field
        .iter()
        .position(|f| f.as_str() == Some("quantities"))?;
    field.get(at + 1)?.as_str()?.parse().ok()
}

/// The throttle status an answer reports.
fn bucket_of(body: &Value) -> Option<Bucket> {
    let status = body.pointer("/extensions/cost/throttleStatus")?;
    Some(Bucket {
        available: status.get("currentlyAvailable").and_then(Value::as_f64)?,
        restore_rate: status.get("restoreRate").and_then(Value::as_f64)?,
        at: Instant::now(),
    })
}

/// Seconds until the cost bucket holds the requested cost again, from
/// `extensions.cost`.
fn refill_delay(body: &Value) -> Option<Duration> {
    let cost = body.pointer("/extensions/cost")?;
    let requested = cost
        .get("requestedQueryCost")
        .and_then(Value::as_f64)
        .unwrap_or(10.0);
    let status = cost.get("throttleStatus")?;
    let available = status.get("currentlyAvailable").and_then(Value::as_f64)?;
    let rate = status
        .get("restoreRate")
        .and_then(Value::as_f64)
        .filter(|r| *r > 0.0)?;
    Some(Duration::from_secs_f64(
        ((requested - available).max(0.0) / rate).clamp(0.5, 60.0),
    ))
}

/// A mutation's `userErrors` as a permanent failure: the shop refused the
/// input, and sending it again changes nothing.
fn refused_by_user_errors(payload: &Value, mutation: &str) -> Result<(), ClientError> {
    let Some(errors) = payload
        .get("userErrors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    else {
        return Ok(());
    };
    let message = errors
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ClientError::Permanent {
        service: SERVICE,
        status: 200,
        message: format!("{mutation} refused: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_error_names_its_item_by_the_index_after_quantities() {
        let e = json!({"code": "CHANGE_FROM_QUANTITY_STALE",
                       "field": ["input", "quantities", "3", "changeFromQuantity"]});
        assert_eq!(item_index(&e), Some(3));
        assert_eq!(item_index(&json!({"field": ["input"]})), None);
        assert_eq!(item_index(&json!({"field": null})), None);
    }

    #[test]
    fn the_safety_buffer_is_held_back_but_never_below_zero() {
        let shop: ShopSettings = serde_json::from_value(json!({
            "shop": "a.myshopify.com", "webhook_secret": "s", "admin_url": "http://x",
            "access_token": "t", "location_id": "gid://shopify/Location/1", "safety_buffer": 2
        }))
        .unwrap();
        assert_eq!(shop.target(10), 8);
        assert_eq!(shop.target(1), 0);
    }

    #[test]
    fn refill_delay_is_the_missing_cost_over_the_restore_rate() {
        let body = json!({"extensions": {"cost": {"requestedQueryCost": 110,
            "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 10, "restoreRate": 100}}}});
        assert_eq!(refill_delay(&body), Some(Duration::from_secs(1)));
        assert_eq!(refill_delay(&json!({})), None);
    }
}
