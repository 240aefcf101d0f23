//! The Shopify and WMS clients against wiremock: each kind of answer maps to
//! the retry class the saga relies on.

use std::time::Duration;

use domain::ShopDomain;
use serde_json::{Value, json};
use uuid::Uuid;
use vendors::{
    http::ClientError,
    shopify::{DEFAULT_API_VERSION, Pushed, ShopSettings, ShopifyClient},
    wms::{NewWmsOrder, Recipient, WmsClient, WmsProduct, WmsSettings},
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

/// Checks that an error was classified as expected.
type Expect = fn(&ClientError) -> bool;

fn wms_client(server: &MockServer, timeout: Duration) -> WmsClient {
    WmsClient::new(WmsSettings {
        base_url: format!("{}/wms", server.uri()),
        token: "wms-token".to_string().into(),
        channel_id: Some("42".into()),
        timeout,
    })
    .unwrap()
}

fn order() -> NewWmsOrder {
    NewWmsOrder::dtc(
        Uuid::new_v4().to_string(),
        "#1001".into(),
        Recipient::default(),
        vec![WmsProduct {
            reference_id: "TSHIRT".into(),
            name: "Popular T-Shirt".into(),
            quantity: 2,
        }],
    )
}

#[tokio::test]
async fn wms_create_order_sends_the_reference_and_returns_the_wms_id() {
    let server = MockServer::start().await;
    let o = order();
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .and(header("authorization", "Bearer wms-token"))
        .and(header("shipbob_channel_id", "42"))
        .and(body_string_contains(o.reference_id.clone()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 777, "status": "Processing"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        wms_client(&server, Duration::from_secs(2))
            .create_order(&o)
            .await
            .unwrap(),
        "777"
    );
}

#[tokio::test]
async fn wms_duplicate_reference_counts_as_success_with_the_existing_id() {
    let server = MockServer::start().await;
    let o = order();
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"": ["Cannot insert order with existing ReferenceId"]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wms/order"))
        .and(query_param("ReferenceIds", o.reference_id.clone()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": 31337, "reference_id": o.reference_id}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        wms_client(&server, Duration::from_secs(2))
            .create_order(&o)
            .await
            .unwrap(),
        "31337"
    );
}

#[tokio::test]
async fn wms_answers_map_to_permanent_rate_limited_and_transient_failures() {
    let cases: Vec<(ResponseTemplate, Expect)> = vec![
        (
            ResponseTemplate::new(400).set_body_json(json!({"recipient.address": ["invalid"]})),
            |e| matches!(e, ClientError::Permanent { status: 400, message, .. } if message.contains("invalid")),
        ),
        (
            ResponseTemplate::new(422).set_body_json(json!({"products": ["unknown SKU"]})),
            |e| matches!(e, ClientError::Permanent { status: 422, .. }),
        ),
        (
            ResponseTemplate::new(429).insert_header("x-retry-after", "7"),
            |e| matches!(e, ClientError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        ),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "2"),
            |e| matches!(e, ClientError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(2)),
        ),
        (ResponseTemplate::new(503), |e| {
            matches!(e, ClientError::Transient { .. })
        }),
        (ResponseTemplate::new(500), |e| {
            matches!(e, ClientError::Transient { .. })
        }),
    ];
    for (answer, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/wms/order"))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        let err = wms_client(&server, Duration::from_secs(2))
            .create_order(&order())
            .await
            .unwrap_err();
        assert!(expected(&err), "unexpected classification: {err:?}");
    }
}

#[tokio::test]
async fn wms_timeouts_and_refused_connections_are_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = wms_client(&server, Duration::from_millis(300))
        .create_order(&order())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Transient { message, .. } if message.contains("timed out")),
        "{err:?}"
    );

    let closed = WmsClient::new(WmsSettings {
        base_url: format!("http://127.0.0.1:{}/wms", crate::temporal::free_port()),
        token: "t".to_string().into(),
        channel_id: None,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    assert!(matches!(
        closed.sellable("X").await,
        Err(ClientError::Transient { .. })
    ));
}

#[tokio::test]
async fn wms_sellable_reads_the_exact_sku_only() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wms/inventory-level"))
        .and(query_param("SearchBy", "TSHIRT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            {"sku": "TSHIRT-XL", "total_sellable_quantity": 99},
            {"sku": "TSHIRT", "total_sellable_quantity": 4}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/wms/inventory-level"))
        .and(query_param("SearchBy", "NEW"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [{"sku": "NEWER", "total_sellable_quantity": 1}]})),
        )
        .mount(&server)
        .await;
    let client = wms_client(&server, Duration::from_secs(2));
    assert_eq!(client.sellable("TSHIRT").await.unwrap(), Some(4));
    assert_eq!(client.sellable("NEW").await.unwrap(), None);
}

const GRAPHQL: &str = "/admin/api/2026-10/graphql.json";

fn shopify_client(server: &MockServer) -> ShopifyClient {
    ShopifyClient::new(
        ShopSettings {
            shop: ShopDomain::parse("store-a.myshopify.com").unwrap(),
            webhook_secret: "s".to_string().into(),
            admin_url: server.uri(),
            access_token: "shpat-1".to_string().into(),
            location_id: "gid://shopify/Location/9".into(),
        },
        DEFAULT_API_VERSION,
        Duration::from_secs(2),
    )
    .unwrap()
}

fn variant(sku: &str, available: i64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"productVariants": {"nodes": [
        {"sku": format!("{sku}-OTHER"), "inventoryItem": {"id": "gid://shopify/InventoryItem/999", "inventoryLevel": null}},
        {"sku": sku, "inventoryItem": {"id": "gid://shopify/InventoryItem/1",
            "inventoryLevel": {"quantities": [{"name": "available", "quantity": available}]}}}
    ]}}}))
}

fn set_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
        "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"}, "userErrors": []}}}))
}

fn set_error(code: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
        "inventoryAdjustmentGroup": null, "userErrors": [{"code": code, "field": ["input"], "message": "no"}]}}}))
}

#[tokio::test]
async fn shopify_push_sets_the_level_with_compare_and_set_and_an_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(header("x-shopify-access-token", "shpat-1"))
        .and(body_string_contains("productVariants"))
        .respond_with(variant("TSHIRT", 12))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_ok())
        .expect(2)
        .mount(&server)
        .await;
    let client = shopify_client(&server);
    let reference = Uuid::new_v4();
    assert_eq!(
        client.push_level("TSHIRT", 9, reference).await.unwrap(),
        Pushed::Set
    );
    // The item and its level are cached: the next push needs no look-up.
    assert_eq!(
        client.push_level("TSHIRT", 8, reference).await.unwrap(),
        Pushed::Set
    );
    assert_eq!(
        client.push_level("TSHIRT", 8, reference).await.unwrap(),
        Pushed::AlreadyThere
    );

    let sets: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|b| {
            b["query"]
                .as_str()
                .unwrap()
                .contains("inventorySetQuantities")
        })
        .collect();
    let q = &sets[0]["variables"]["input"]["quantities"][0];
    assert_eq!(q["inventoryItemId"], "gid://shopify/InventoryItem/1");
    assert_eq!(q["locationId"], "gid://shopify/Location/9");
    assert_eq!(
        (q["quantity"].as_i64(), q["changeFromQuantity"].as_i64()),
        (Some(9), Some(12))
    );
    assert_eq!(
        sets[1]["variables"]["input"]["quantities"][0]["changeFromQuantity"],
        9
    );
    assert!(
        sets[0]["query"]
            .as_str()
            .unwrap()
            .contains("@idempotent(key: \"")
    );
    assert_ne!(
        sets[0]["query"], sets[1]["query"],
        "distinct changes carry distinct keys"
    );
}

#[tokio::test]
async fn shopify_stale_compare_value_is_reread_and_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("productVariants"))
        .respond_with(variant("MUG", 5))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_error("CHANGE_FROM_QUANTITY_STALE"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_ok())
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        shopify_client(&server)
            .push_level("MUG", 3, Uuid::new_v4())
            .await
            .unwrap(),
        Pushed::Set
    );
}

#[tokio::test]
async fn shopify_user_errors_are_permanent_and_unknown_skus_are_not_sold() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("productVariants"))
        .and(body_string_contains("GONE"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"productVariants": {"nodes": [
            {"sku": "GONE-2", "inventoryItem": {"id": "gid://shopify/InventoryItem/5", "inventoryLevel": null}}]}}})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("productVariants"))
        .respond_with(variant("CAP", 1))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_error("ITEM_NOT_STOCKED_AT_LOCATION"))
        .expect(1)
        .mount(&server)
        .await;
    let client = shopify_client(&server);
    assert_eq!(
        client.push_level("GONE", 1, Uuid::new_v4()).await.unwrap(),
        Pushed::NotSold
    );
    let err = client
        .push_level("CAP", 4, Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Permanent { message, .. } if message.contains("ITEM_NOT_STOCKED_AT_LOCATION")),
        "{err:?}"
    );
}

#[tokio::test]
async fn shopify_throttling_and_server_errors_are_retryable_with_the_right_delay() {
    let throttled = ResponseTemplate::new(200).set_body_json(json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {"requestedQueryCost": 102, "throttleStatus":
            {"maximumAvailable": 1000.0, "currentlyAvailable": 2, "restoreRate": 50.0}}}}));
    let cases: Vec<(ResponseTemplate, Expect)> = vec![
        (
            throttled,
            |e| matches!(e, ClientError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(2)),
        ),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "1.5"),
            |e| matches!(e, ClientError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_millis(1500)),
        ),
        (ResponseTemplate::new(502), |e| {
            matches!(e, ClientError::Transient { .. })
        }),
        (
            ResponseTemplate::new(401).set_body_string("[API] Invalid API key or access token"),
            |e| matches!(e, ClientError::Permanent { status: 401, .. }),
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"errors": [{"message": "Field 'x' doesn't exist"}]})),
            |e| matches!(e, ClientError::Permanent { message, .. } if message.contains("doesn't exist")),
        ),
    ];
    for (answer, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(GRAPHQL))
            .respond_with(answer)
            .expect(1)
            .mount(&server)
            .await;
        let err = shopify_client(&server)
            .push_level("ANY", 1, Uuid::new_v4())
            .await
            .unwrap_err();
        assert!(expected(&err), "unexpected classification: {err:?}");
    }
}
