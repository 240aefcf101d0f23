//! Client of one Shopify shop's Admin GraphQL API: pushes the available
//! level of our SKUs to the shop's location.

use std::{collections::HashMap, sync::Arc, time::Duration};

use domain::ShopDomain;
use reqwest::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::http::ClientError;

const SERVICE: &str = "shopify";

/// The Admin API version every request is pinned to.
pub const DEFAULT_API_VERSION: &str = "2026-10";

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
    serde_json::from_str(&text).map_err(|e| runtime::config::ConfigError {
        name: name.into(),
        // The text holds secrets: say where it broke, not what it holds.
        value: "<redacted>".into(),
        reason: e.to_string(),
    })
}

/// A shop's Admin GraphQL API.
#[derive(Clone)]
pub struct ShopifyClient {
    http: Client,
    shop: ShopSettings,
    api_version: String,
    /// SKU → (inventory item GID, the available quantity last seen), or
    /// `None` when the shop does not sell the SKU.
    items: Arc<Mutex<HashMap<String, Option<Item>>>>,
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    available: Option<i64>,
}

/// What pushing one level did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The shop's available quantity is now the level.
    Set,
    /// The shop already showed the level.
    AlreadyThere,
    /// The shop does not sell this SKU (no variant with it).
    NotSold,
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
        })
    }

    /// The shop's domain.
    pub fn domain(&self) -> &ShopDomain {
        &self.shop.shop
    }

    /// Sets the shop's available quantity of `sku` to `level`.
    ///
    /// Uses compare-and-set (`changeFromQuantity`) against the quantity last
    /// seen: if the shop moved meanwhile (its own order, a manual edit), the
    /// value is re-read and the set retried, so nothing is overwritten blind.
    /// The idempotency key is derived from the inputs, so a retried activity
    /// does not apply a change twice.
    pub async fn push_level(
        &self,
        sku: &str,
        level: i32,
        reference: Uuid,
    ) -> Result<Pushed, ClientError> {
        for _ in 0..3 {
            let Some(item) = self.item(sku, false).await? else {
                return Ok(Pushed::NotSold);
            };
            let current = match item.available {
                Some(c) => c,
                None => self
                    .item(sku, true)
                    .await?
                    .and_then(|i| i.available)
                    .unwrap_or(0),
            };
            if current == i64::from(level) {
                return Ok(Pushed::AlreadyThere);
            }
            match self
                .set_available(&item.id, level, current, sku, reference)
                .await?
            {
                SetResult::Done => {
                    self.remember(sku, &item.id, i64::from(level)).await;
                    return Ok(Pushed::Set);
                }
                SetResult::Stale => {
                    // Forget what we knew and read the shop's value again.
                    self.item(sku, true).await?;
                }
            }
        }
        Err(ClientError::Transient {
            service: SERVICE,
            message: format!(
                "{}: the quantity of {sku} kept changing under us",
                self.shop.shop
            ),
        })
    }

    async fn remember(&self, sku: &str, id: &str, available: i64) {
        self.items.lock().await.insert(
            sku.to_string(),
            Some(Item {
                id: id.to_string(),
                available: Some(available),
            }),
        );
    }

    /// The shop's item for `sku`, from the cache unless `refresh`.
    async fn item(&self, sku: &str, refresh: bool) -> Result<Option<Item>, ClientError> {
        if !refresh && let Some(known) = self.items.lock().await.get(sku) {
            return Ok(known.clone());
        }
        let data = self
            .graphql(
                r#"query ItemBySku($q: String!, $loc: ID!) {
                  productVariants(first: 5, query: $q) {
                    nodes { sku inventoryItem { id inventoryLevel(locationId: $loc) {
                      quantities(names: ["available"]) { name quantity } } } }
                  }
                }"#,
                json!({ "q": format!("sku:\"{}\"", sku.replace('"', "\\\"")), "loc": self.shop.location_id }),
            )
            .await?;
        let nodes = data
            .pointer("/productVariants/nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // The search is not exact: keep only the variant with this very SKU.
        let item = nodes
            .iter()
            .find(|n| n.get("sku").and_then(Value::as_str) == Some(sku))
            .and_then(|n| {
                let id = n
                    .pointer("/inventoryItem/id")
                    .and_then(Value::as_str)?
                    .to_string();
                let available = n
                    .pointer("/inventoryItem/inventoryLevel/quantities")
                    .and_then(Value::as_array)
                    .and_then(|qs| {
                        qs.iter()
                            .find(|q| q.get("name").and_then(Value::as_str) == Some("available"))
                    })
                    .and_then(|q| q.get("quantity").and_then(Value::as_i64));
                Some(Item { id, available })
            });
        self.items
            .lock()
            .await
            .insert(sku.to_string(), item.clone());
        Ok(item)
    }

    async fn set_available(
        &self,
        item_id: &str,
        level: i32,
        change_from: i64,
        sku: &str,
        reference: Uuid,
    ) -> Result<SetResult, ClientError> {
        let key = Uuid::new_v5(
            &reference,
            format!("{}:{item_id}:{level}:{change_from}", self.shop.shop).as_bytes(),
        );
        // The idempotency key is a directive argument, which the API takes as
        // a literal; it is a UUID, so it needs no escaping.
        let mutation = format!(
            r#"mutation SetAvailable($input: InventorySetQuantitiesInput!) {{
              inventorySetQuantities(input: $input) @idempotent(key: "{key}") {{
                inventoryAdjustmentGroup {{ id }}
                userErrors {{ code field message }}
              }}
            }}"#
        );
        let data = self
            .graphql(
                &mutation,
                json!({ "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": format!("gid://oms/Order/{reference}"),
                    "quantities": [{
                        "inventoryItemId": item_id,
                        "locationId": self.shop.location_id,
                        "quantity": level,
                        "changeFromQuantity": change_from,
                    }],
                }}),
            )
            .await?;
        let errors = data
            .pointer("/inventorySetQuantities/userErrors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if errors.is_empty() {
            return Ok(SetResult::Done);
        }
        let codes: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("code").and_then(Value::as_str))
            .collect();
        if codes.iter().any(|c| c.ends_with("QUANTITY_STALE")) {
            return Ok(SetResult::Stale);
        }
        if codes.contains(&"IDEMPOTENCY_CONCURRENT_REQUEST") {
            return Err(ClientError::Transient {
                service: SERVICE,
                message: "a request with the same idempotency key is in flight".into(),
            });
        }
        let message = errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.get("code").and_then(Value::as_str).unwrap_or("ERROR"),
                    e.get("message").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(ClientError::Permanent {
            service: SERVICE,
            status: 200,
            message: format!("{sku}: {message}"),
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

enum SetResult {
    Done,
    Stale,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_delay_is_the_missing_cost_over_the_restore_rate() {
        let body = json!({"extensions": {"cost": {"requestedQueryCost": 110,
            "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 10, "restoreRate": 100}}}});
        assert_eq!(refill_delay(&body), Some(Duration::from_secs(1)));
        assert_eq!(refill_delay(&json!({})), None);
    }
}
