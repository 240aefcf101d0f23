//! The simulator over real HTTP: the Shopify and WMS semantics the OMS relies
//! on, the failure modes, and the real OMS clients talking to it.

// A failed unwrap is a failed test, with its location: exactly what we want here.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use simulator::Simulator;
use tokio::net::TcpListener;
use uuid::Uuid;
use vendors::{
    http::ClientError,
    shopify::{DEFAULT_API_VERSION, LevelWrite, SetOutcome, ShopSettings, ShopifyClient},
    wms::{NewWmsOrder, Recipient, RecipientAddress, WmsClient, WmsProduct, WmsSettings},
};

const SHOP: &str = "store-a.myshopify.com";
const OTHER_SHOP: &str = "store-b.myshopify.com";

struct Sim {
    base: String,
    http: Client,
}

impl Sim {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Simulator::new().router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base: format!("http://{addr}"),
            http: Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn graphql(&self, shop: &str, query: &str, variables: Value) -> (StatusCode, Value) {
        self.post(
            &format!("/shops/{shop}/admin/api/{DEFAULT_API_VERSION}/graphql.json"),
            &json!({ "query": query, "variables": variables }),
        )
        .await
    }

    /// The SKU search as the client sends it; returns (item id, available).
    async fn look_up(&self, shop: &str, sku: &str) -> (String, i64) {
        let (status, body) = self
            .graphql(
                shop,
                r#"query Lookup($q: String!, $loc: ID!, $first: Int!) {
                  productVariants(first: $first, query: $q) {
                    nodes { sku inventoryItem { id inventoryLevel(locationId: $loc) {
                      quantities(names: ["available"]) { name quantity } } } }
                  }
                }"#,
                json!({ "q": format!("sku:\"{sku}\""), "loc": "gid://shopify/Location/1", "first": 250 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let nodes = body["data"]["productVariants"]["nodes"].as_array().unwrap();
        let node = nodes.iter().find(|n| n["sku"] == sku).unwrap();
        let quantity = &node["inventoryItem"]["inventoryLevel"]["quantities"][0];
        assert_eq!(quantity["name"], "available");
        assert!(body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"].is_number());
        (
            node["inventoryItem"]["id"].as_str().unwrap().to_string(),
            quantity["quantity"].as_i64().unwrap(),
        )
    }

    /// The mutation as the client sends it, for `(item, quantity, from)`
    /// writes; returns the whole answer.
    async fn set_many(&self, shop: &str, writes: &[(&str, i64, i64)], key: &str) -> Value {
        let (status, body) = self
            .graphql(
                shop,
                r#"mutation SetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
                  inventorySetQuantities(input: $input) @idempotent(key: $key) {
                    inventoryAdjustmentGroup { id }
                    userErrors { code field message }
                  }
                }"#,
                json!({ "key": key, "input": {
                    "name": "available",
                    "reason": "correction",
                    "quantities": writes.iter().map(|(item, quantity, from)| json!({
                        "inventoryItemId": item,
                        "locationId": "gid://shopify/Location/1",
                        "quantity": quantity,
                        "changeFromQuantity": from,
                    })).collect::<Vec<_>>(),
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn set(&self, shop: &str, item: &str, quantity: i64, from: i64, key: &str) -> Value {
        self.set_many(shop, &[(item, quantity, from)], key).await
    }

    async fn available(&self, shop: &str, sku: &str) -> Value {
        self.get(&format!("/shops/{shop}/inventory")).await.1[sku].clone()
    }

    async fn log(&self, shop: &str) -> Vec<Value> {
        self.get(&format!("/shops/{shop}/log"))
            .await
            .1
            .as_array()
            .unwrap()
            .clone()
    }

    fn shopify_client(&self, shop: &str) -> ShopifyClient {
        let settings: ShopSettings = serde_json::from_value(json!({
            "shop": shop,
            "webhook_secret": "unused",
            "admin_url": self.url(&format!("/shops/{shop}")),
            "access_token": "unused",
            "location_id": "gid://shopify/Location/1",
        }))
        .unwrap();
        ShopifyClient::new(settings, DEFAULT_API_VERSION, Duration::from_secs(10)).unwrap()
    }

    fn wms_client(&self) -> WmsClient {
        WmsClient::new(WmsSettings {
            base_url: self.url("/wms/2026-07"),
            token: "unused".to_string().into(),
            channel_id: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap()
    }
}

fn user_error_codes(answer: &Value) -> Vec<String> {
    answer["data"]["inventorySetQuantities"]["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_string())
        .collect()
}

fn order(reference: Uuid) -> Value {
    json!({
        "reference_id": reference.to_string(),
        "order_number": "#1001",
        "type": "DTC",
        "shipping_method": "Standard",
        "recipient": { "name": "Ada", "address": { "address1": "1 Main St", "city": "X", "country": "US" } },
        "products": [{ "reference_id": "TEE-M", "name": "Tee", "quantity": 2 }],
    })
}

#[tokio::test]
async fn look_up_then_set_with_the_current_quantity_applies_and_logs() {
    let sim = Sim::start().await;
    let (item, available) = sim.look_up(SHOP, "TEE-M").await;
    assert!(item.starts_with("gid://shopify/InventoryItem/"), "{item}");
    assert_eq!(available, 0, "unknown SKUs start at 0");

    let answer = sim.set(SHOP, &item, 7, 0, "key-1").await;
    assert!(user_error_codes(&answer).is_empty(), "{answer}");
    assert!(answer["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["id"].is_string());

    assert_eq!(sim.look_up(SHOP, "TEE-M").await.1, 7);
    assert_eq!(sim.available(SHOP, "TEE-M").await, 7);
    let log = sim.log(SHOP).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["sku"], "TEE-M");
    assert_eq!(log[0]["quantity"], 7);
    assert_eq!(log[0]["changeFrom"], 0);
    assert_eq!(log[0]["idempotencyKey"], "key-1");
    assert!(log[0]["time"].is_string());
    // Shops are separate.
    assert_eq!(sim.available(OTHER_SHOP, "TEE-M").await, Value::Null);
    assert!(sim.log(OTHER_SHOP).await.is_empty());
}

#[tokio::test]
async fn a_stale_change_from_quantity_is_refused_and_changes_nothing() {
    let sim = Sim::start().await;
    let (item, _) = sim.look_up(SHOP, "TEE-M").await;
    let answer = sim.set(SHOP, &item, 7, 5, "key-1").await;
    assert_eq!(user_error_codes(&answer), ["CHANGE_FROM_QUANTITY_STALE"]);
    assert!(answer["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"].is_null());
    assert_eq!(sim.look_up(SHOP, "TEE-M").await.1, 0);
    assert!(sim.log(SHOP).await.is_empty());

    // A refused key was not applied, so it may be used once the quantity is right.
    let answer = sim.set(SHOP, &item, 7, 0, "key-1").await;
    assert!(user_error_codes(&answer).is_empty(), "{answer}");
    assert_eq!(sim.available(SHOP, "TEE-M").await, 7);
}

#[tokio::test]
async fn a_repeated_idempotency_key_is_applied_once() {
    let sim = Sim::start().await;
    let (item, _) = sim.look_up(SHOP, "TEE-M").await;
    let first = sim.set(SHOP, &item, 5, 0, "same-key").await;
    assert!(user_error_codes(&first).is_empty(), "{first}");
    // The replay's changeFromQuantity is stale by now; the key makes it a success.
    let replay = sim.set(SHOP, &item, 5, 0, "same-key").await;
    assert_eq!(
        replay["data"], first["data"],
        "a replay answers what the first request did"
    );
    assert_eq!(sim.log(SHOP).await.len(), 1);
    assert_eq!(sim.available(SHOP, "TEE-M").await, 5);

    // Without the key the same input is a stale compare-and-set.
    let fresh = sim.set(SHOP, &item, 5, 0, "other-key").await;
    assert_eq!(user_error_codes(&fresh), ["CHANGE_FROM_QUANTITY_STALE"]);
}

#[tokio::test]
async fn throttle_and_down_modes_refuse_graphql_until_ok_again() {
    let sim = Sim::start().await;
    let (item, _) = sim.look_up(SHOP, "TEE-M").await;
    let (status, _) = sim
        .put(
            &format!("/control/shops/{SHOP}/mode"),
            &json!({"mode": "throttle"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = sim
        .graphql(SHOP, "mutation { inventorySetQuantities }", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"].as_f64(),
        Some(0.0)
    );
    assert_eq!(
        body["extensions"]["cost"]["requestedQueryCost"].as_f64(),
        Some(10.0)
    );
    // The other shop is not throttled.
    assert_eq!(sim.look_up(OTHER_SHOP, "TEE-M").await.1, 0);

    sim.put(
        &format!("/control/shops/{SHOP}/mode"),
        &json!({"mode": "down"}),
    )
    .await;
    let (status, _) = sim
        .graphql(
            SHOP,
            "query { productVariants }",
            json!({"q": "sku:\"TEE-M\""}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(sim.log(SHOP).await.is_empty());

    sim.put(
        &format!("/control/shops/{SHOP}/mode"),
        &json!({"mode": "ok"}),
    )
    .await;
    let answer = sim.set(SHOP, &item, 3, 0, "k").await;
    assert!(user_error_codes(&answer).is_empty(), "{answer}");
}

#[tokio::test]
async fn other_graphql_operations_get_graphql_errors() {
    let sim = Sim::start().await;
    let (status, body) = sim
        .graphql(SHOP, "query { shop { name } }", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn a_duplicate_reference_is_refused_and_found_by_reference() {
    let sim = Sim::start().await;
    let reference = Uuid::new_v4();
    let (status, created) = sim.post("/wms/2026-07/order", &order(reference)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["reference_id"], reference.to_string());
    assert_eq!(created["status"], "Processing");
    assert!(created["created_date"].is_string());

    let (status, body) = sim.post("/wms/2026-07/order", &order(reference)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"": ["Cannot insert order with existing ReferenceId"]})
    );

    let (status, other) = sim.post("/wms/2026-07/order", &order(Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(other["id"].as_u64().unwrap() > id, "ids increase");

    let (status, found) = sim
        .get(&format!("/wms/2026-07/order?ReferenceIds={reference}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"].as_u64(), Some(id));

    let (_, all) = sim.get("/wms/orders").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn wms_down_and_reject_modes() {
    let sim = Sim::start().await;
    let (status, _) = sim.put("/control/wms/mode", &json!({"mode": "down"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sim.post("/wms/v1/order", &order(Uuid::new_v4())).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        sim.get("/wms/v1/inventory-level?SearchBy=TEE-M").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        sim.get("/wms/v1/order?ReferenceIds=x").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    sim.put("/control/wms/mode", &json!({"mode": "reject"}))
        .await;
    let (status, body) = sim.post("/wms/v1/order", &order(Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"recipient.address": ["Address could not be validated"]})
    );
    // Reads still work when only orders are rejected.
    assert_eq!(
        sim.get("/wms/v1/inventory-level?SearchBy=TEE-M").await.0,
        StatusCode::OK
    );
    assert!(
        sim.get("/wms/orders")
            .await
            .1
            .as_array()
            .unwrap()
            .is_empty()
    );

    sim.put("/control/wms/mode", &json!({"mode": "ok"})).await;
    assert_eq!(
        sim.post("/wms/v1/order", &order(Uuid::new_v4())).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn slow_mode_records_the_order_even_when_the_client_gives_up() {
    let sim = Sim::start().await;
    sim.put("/control/wms/mode", &json!({"mode": "slow"})).await;
    let impatient = Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let reference = Uuid::new_v4();
    let sent = impatient
        .post(sim.url("/wms/v1/order"))
        .json(&order(reference))
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    let (_, all) = sim.get("/wms/orders").await;
    assert_eq!(all[0]["reference_id"], reference.to_string());
}

#[tokio::test]
async fn wms_inventory_defaults_to_1000_and_can_be_set() {
    let sim = Sim::start().await;
    let (status, body) = sim.get("/wms/v1/inventory-level?SearchBy=TEE-M").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"items": [{"sku": "TEE-M", "total_sellable_quantity": 1000,
            "total_fulfillable_quantity": 1000, "total_on_hand_quantity": 1000}]})
    );
    let (status, _) = sim
        .put("/control/wms/inventory/TEE-M", &json!({"sellable": 4}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = sim.get("/wms/v1/inventory-level?SearchBy=TEE-M").await;
    assert_eq!(body["items"][0]["total_sellable_quantity"], 4);
    let (_, body) = sim.get("/wms/v1/inventory-level?SearchBy=TEE-L").await;
    assert_eq!(body["items"][0]["total_sellable_quantity"], 1000);
}

#[tokio::test]
async fn unknown_modes_are_refused_with_the_allowed_ones() {
    let sim = Sim::start().await;
    let (status, body) = sim
        .put(
            &format!("/control/shops/{SHOP}/mode"),
            &json!({"mode": "reject"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("ok, throttle, down"),
        "names the allowed modes: {message}"
    );

    let (status, body) = sim
        .put("/control/wms/mode", &json!({"mode": "sideways"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("ok, down, reject, slow"), "{message}");

    let (status, _) = sim.put("/control/wms/mode", &json!({"nope": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, state) = sim.get("/control/state").await;
    assert_eq!(state["wms"]["mode"], "ok");
    assert_eq!(state["shops"][SHOP]["mode"], Value::Null, "nothing was set");
}

#[tokio::test]
async fn the_state_shows_modes_inventories_and_orders() {
    let sim = Sim::start().await;
    let (item, _) = sim.look_up(SHOP, "TEE-M").await;
    sim.set(SHOP, &item, 2, 0, "k").await;
    sim.put(
        &format!("/control/shops/{OTHER_SHOP}/mode"),
        &json!({"mode": "throttle"}),
    )
    .await;
    let reference = Uuid::new_v4();
    sim.post("/wms/v1/order", &order(reference)).await;
    sim.put("/control/wms/mode", &json!({"mode": "slow"})).await;

    let (status, state) = sim.get("/control/state").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state["shops"][SHOP]["mode"], "ok");
    assert_eq!(state["shops"][SHOP]["inventory"]["TEE-M"], 2);
    assert_eq!(state["shops"][OTHER_SHOP]["mode"], "throttle");
    assert_eq!(state["wms"]["mode"], "slow");
    assert_eq!(
        state["wms"]["orders"][0]["reference_id"],
        reference.to_string()
    );

    let help = sim
        .http
        .get(sim.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(help.contains("/control/wms/mode"), "{help}");
}

#[tokio::test]
async fn a_batch_is_applied_entirely_or_not_at_all_and_names_its_stale_item() {
    let sim = Sim::start().await;
    let (a, _) = sim.look_up(SHOP, "TEE-S").await;
    let (b, _) = sim.look_up(SHOP, "TEE-L").await;
    // The second item's compare value is wrong: nothing is applied.
    let answer = sim.set_many(SHOP, &[(&a, 5, 0), (&b, 6, 3)], "k-1").await;
    let errors = &answer["data"]["inventorySetQuantities"]["userErrors"];
    assert_eq!(errors[0]["code"], "CHANGE_FROM_QUANTITY_STALE");
    assert_eq!(
        errors[0]["field"],
        json!(["input", "quantities", "1", "changeFromQuantity"])
    );
    assert_eq!(sim.available(SHOP, "TEE-S").await, 0);
    let answer = sim.set_many(SHOP, &[(&a, 5, 0), (&b, 6, 0)], "k-2").await;
    assert!(user_error_codes(&answer).is_empty(), "{answer}");
    let log = sim.log(SHOP).await;
    assert_eq!(log.len(), 2, "one entry per quantity");
    assert_eq!(log[0]["group"], log[1]["group"], "from one call");
    let (_, stats) = sim.get(&format!("/shops/{SHOP}/stats")).await;
    assert_eq!(stats["writeCalls"], 1);
    assert_eq!(stats["refusedWrites"], 1);
}

#[tokio::test]
async fn the_oms_shopify_client_reads_and_writes_batches_through_drift_and_throttling() {
    let sim = Sim::start().await;
    let client = sim.shopify_client(SHOP);
    let skus = vec!["TEE-M".to_string(), "TEE-X".to_string()];
    let levels = client.levels(&skus).await.unwrap();
    let write = |sku: &str, quantity, change_from| LevelWrite {
        sku: sku.into(),
        item_id: levels.found[sku].item_id.clone(),
        quantity,
        change_from,
    };
    let writes = [write("TEE-M", 9, 0), write("TEE-X", 2, 0)];
    assert_eq!(
        client
            .set_levels(&writes, "gid://oms/Test/1", Uuid::new_v4())
            .await
            .unwrap(),
        SetOutcome::Applied
    );
    assert_eq!(sim.available(SHOP, "TEE-M").await, 9);
    assert_eq!(sim.available(SHOP, "TEE-X").await, 2);

    // Someone sells one in the shop: a write from 9 is stale, and says which.
    sim.put(
        &format!("/control/shops/{SHOP}/inventory/TEE-M"),
        &json!({"available": 8}),
    )
    .await;
    let outcome = client
        .set_levels(
            &[write("TEE-X", 1, 2), write("TEE-M", 4, 9)],
            "r",
            Uuid::new_v4(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, SetOutcome::Stale(vec![1]));
    // Read again (by item now), and the write lands.
    let fresh = client.levels(&skus).await.unwrap();
    assert_eq!(fresh.found["TEE-M"].available, 8);
    assert_eq!(
        client
            .set_levels(
                &[write("TEE-X", 1, 2), write("TEE-M", 4, 8)],
                "r",
                Uuid::new_v4()
            )
            .await
            .unwrap(),
        SetOutcome::Applied
    );
    assert_eq!(sim.available(SHOP, "TEE-M").await, 4);

    sim.put(
        &format!("/control/shops/{SHOP}/mode"),
        &json!({"mode": "throttle"}),
    )
    .await;
    let err = sim.shopify_client(SHOP).levels(&skus).await.unwrap_err();
    assert!(
        matches!(err, ClientError::RateLimited { retry_after: Some(d), .. } if d > Duration::ZERO),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_oms_wms_client_reads_stock_and_creates_orders_once() {
    let sim = Sim::start().await;
    let client = sim.wms_client();
    assert_eq!(client.sellable("TEE-M").await.unwrap(), Some(1000));

    let order = NewWmsOrder::dtc(
        Uuid::new_v4().to_string(),
        "#1001".into(),
        Recipient {
            name: "Ada".into(),
            phone_number: None,
            address: RecipientAddress {
                address1: Some("1 Main St".into()),
                city: Some("Springfield".into()),
                country: Some("US".into()),
                ..Default::default()
            },
        },
        vec![WmsProduct {
            reference_id: "TEE-M".into(),
            name: "Tee".into(),
            quantity: 2,
        }],
    );
    let id = client.create_order(&order).await.unwrap();
    // A retried activity meets the duplicate reference and gets the same id.
    assert_eq!(client.create_order(&order).await.unwrap(), id);
    let (_, all) = sim.get("/wms/orders").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"].to_string(), id);
    assert_eq!(all[0]["products"][0]["reference_id"], "TEE-M");

    sim.put("/control/wms/mode", &json!({"mode": "reject"}))
        .await;
    let mut other = order.clone();
    other.reference_id = Uuid::new_v4().to_string();
    let err = client.create_order(&other).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Permanent { status: 400, .. }),
        "{err:?}"
    );
}
