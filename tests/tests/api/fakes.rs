//! Stand-ins for the external systems, served by wiremock: a Shopify shop's
//! Admin GraphQL endpoint and the WMS inventory read.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::json;
use simulator::{ShopMode, ShopModel, Stats};
use wiremock::{Request, Respond, ResponseTemplate};

/// A Shopify shop served by wiremock: the simulator's model of one shop
/// (the same one `make run` serves), so the tests and the local stack meet
/// the same Shopify behaviour, and wiremock still records every request.
#[derive(Clone, Default)]
pub struct FakeShop {
    model: Arc<Mutex<ShopModel>>,
}

impl FakeShop {
    /// Changes what the shop shows behind the OMS's back (drift).
    pub fn set_available(&self, sku: &str, quantity: i64) {
        self.model.lock().unwrap().set_available(sku, quantity);
    }

    pub fn available(&self, sku: &str) -> Option<i64> {
        self.model.lock().unwrap().available(sku)
    }

    /// Every quantity written, in order: (SKU, quantity).
    pub fn sets(&self) -> Vec<(String, i64)> {
        self.model
            .lock()
            .unwrap()
            .log()
            .iter()
            .map(|s| (s.sku.clone(), s.quantity))
            .collect()
    }

    pub fn does_not_sell(&self, sku: &str) {
        self.model.lock().unwrap().stop_selling(sku);
    }

    /// Fulfillments the OMS created: (order GID, tracking number, notify).
    pub fn fulfillments(&self) -> Vec<(String, Option<String>, bool)> {
        self.model
            .lock()
            .unwrap()
            .fulfillments()
            .iter()
            .map(|f| (f.order_id.clone(), f.number.clone(), f.notify_customer))
            .collect()
    }

    /// How often the OMS changed the tracking of a fulfillment since.
    pub fn tracking_updates(&self) -> u32 {
        self.model
            .lock()
            .unwrap()
            .fulfillments()
            .iter()
            .map(|f| f.tracking_updates)
            .sum()
    }

    pub fn stats(&self) -> Stats {
        self.model.lock().unwrap().stats()
    }

    pub fn set_mode(&self, mode: ShopMode) {
        self.model.lock().unwrap().mode = mode;
    }
}

impl Respond for FakeShop {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (status, body) = self.model.lock().unwrap().graphql(&request.body);
        ResponseTemplate::new(status.as_u16()).set_body_json(body)
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
