//! Stand-ins for the external systems, served by wiremock: a Shopify store's
//! Admin GraphQL inventory endpoint and the WMS inventory read.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// A store's inventory at one location, answering the two GraphQL
/// operations the OMS sends (look-up by SKU, `inventorySetQuantities` with
/// compare-and-set).
#[derive(Clone, Default)]
pub struct FakeShopifyStore {
    state: Arc<Mutex<StoreState>>,
}

#[derive(Default)]
struct StoreState {
    available: HashMap<String, i64>,
    /// SKUs the store does not sell.
    not_sold: HashSet<String>,
    /// Every successful set, in order: (SKU, quantity).
    sets: Vec<(String, i64)>,
}

impl FakeShopifyStore {
    /// Sets the store's own idea of the available quantity (e.g. drift).
    pub fn set_available(&self, sku: &str, quantity: i64) {
        self.state
            .lock()
            .unwrap()
            .available
            .insert(sku.into(), quantity);
    }

    pub fn available(&self, sku: &str) -> Option<i64> {
        self.state.lock().unwrap().available.get(sku).copied()
    }

    pub fn sets(&self) -> Vec<(String, i64)> {
        self.state.lock().unwrap().sets.clone()
    }

    pub fn does_not_sell(&self, sku: &str) {
        self.state.lock().unwrap().not_sold.insert(sku.into());
    }
}

impl Respond for FakeShopifyStore {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let query = body["query"].as_str().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        if query.contains("productVariants") {
            let q = body["variables"]["q"].as_str().unwrap_or_default();
            let sku = q.trim_start_matches("sku:").trim_matches('"').to_string();
            if state.not_sold.contains(&sku) {
                return ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"productVariants": {"nodes": []}}}));
            }
            let quantity = *state.available.entry(sku.clone()).or_insert(0);
            return ResponseTemplate::new(200).set_body_json(json!({"data": {"productVariants": {"nodes": [{
                "sku": sku,
                "inventoryItem": {"id": format!("gid://shopify/InventoryItem/{sku}"),
                    "inventoryLevel": {"quantities": [{"name": "available", "quantity": quantity}]}}
            }]}}}));
        }
        if query.contains("inventorySetQuantities") {
            let q = &body["variables"]["input"]["quantities"][0];
            let sku = q["inventoryItemId"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let current = state.available.get(&sku).copied().unwrap_or(0);
            if q["changeFromQuantity"].as_i64() != Some(current) {
                return ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
                    "inventoryAdjustmentGroup": null,
                    "userErrors": [{"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input"], "message": "stale"}]}}}));
            }
            let quantity = q["quantity"].as_i64().unwrap_or_default();
            state.available.insert(sku.clone(), quantity);
            state.sets.push((sku, quantity));
            return ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
                "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"}, "userErrors": []}}}));
        }
        ResponseTemplate::new(400)
            .set_body_json(json!({"errors": [{"message": "unexpected operation"}]}))
    }
}

/// The WMS inventory read: every SKU sellable in `default` units unless set.
#[derive(Clone)]
pub struct FakeWmsInventory {
    sellable: Arc<Mutex<HashMap<String, i64>>>,
    default: i64,
}

impl FakeWmsInventory {
    pub fn with_default(default: i64) -> Self {
        Self {
            sellable: Arc::default(),
            default,
        }
    }
}

impl Respond for FakeWmsInventory {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let sku = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "SearchBy")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let n = self
            .sellable
            .lock()
            .unwrap()
            .get(&sku)
            .copied()
            .unwrap_or(self.default);
        ResponseTemplate::new(200).set_body_json(json!({"items": [
            {"sku": format!("{sku}-BUNDLE"), "total_sellable_quantity": 0},
            {"sku": sku, "total_sellable_quantity": n, "total_fulfillable_quantity": n}
        ]}))
    }
}
