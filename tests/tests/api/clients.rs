//! The Shopify and WMS clients against wiremock: each kind of answer maps to
//! the retry class the saga relies on.

use std::time::Duration;

use domain::ShopDomain;
use serde_json::{Value, json};
use uuid::Uuid;
use vendors::{
    http::ClientError,
    shopify::{DEFAULT_API_VERSION, LevelWrite, SetOutcome, ShopSettings, ShopifyClient},
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
            safety_buffer: 0,
        },
        DEFAULT_API_VERSION,
        Duration::from_secs(2),
    )
    .unwrap()
}

fn item(id: u64, sku: &str, available: i64) -> Value {
    json!({"id": format!("gid://shopify/InventoryItem/{id}"), "sku": sku,
           "inventoryLevel": {"quantities": [{"name": "available", "quantity": available}]}})
}

/// A search answer: the variants of `skus` (and a decoy the tokenized
/// search also finds).
fn variants(skus: &[(&str, u64, i64)]) -> ResponseTemplate {
    let mut nodes =
        vec![json!({"sku": "TSHIRT-OTHER", "inventoryItem": item(999, "TSHIRT-OTHER", 77)})];
    nodes.extend(skus.iter().map(
        |(sku, id, available)| json!({"sku": sku, "inventoryItem": item(*id, sku, *available)}),
    ));
    ResponseTemplate::new(200).set_body_json(json!({"data": {"productVariants": {"nodes": nodes}}}))
}

fn set_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
        "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"}, "userErrors": []}}}))
}

fn set_error(code: &str, index: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"data": {"inventorySetQuantities": {
        "inventoryAdjustmentGroup": null,
        "userErrors": [{"code": code, "field": ["input", "quantities", index.to_string(), "changeFromQuantity"], "message": "no"}]}}}))
}

async fn bodies(server: &MockServer, operation: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|b| b["query"].as_str().unwrap().contains(operation))
        .collect()
}

fn write(sku: &str, id: u64, quantity: i64, change_from: i64) -> LevelWrite {
    LevelWrite {
        sku: sku.into(),
        item_id: format!("gid://shopify/InventoryItem/{id}"),
        quantity,
        change_from,
    }
}

#[tokio::test]
async fn shopify_skus_are_searched_once_then_read_by_item_and_written_many_per_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(header("x-shopify-access-token", "shpat-1"))
        .and(body_string_contains("productVariants"))
        .respond_with(variants(&[("TSHIRT", 1, 12), ("MUG", 2, 3)]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("nodes(ids"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data": {"nodes": [item(1, "TSHIRT", 11), item(2, "MUG", 3)]}}),
            ),
        )
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
    let client = shopify_client(&server);
    let skus = vec!["TSHIRT".to_string(), "MUG".to_string()];
    let first = client.levels(&skus).await.unwrap();
    // The decoy the search also found is not TSHIRT.
    assert_eq!(first.found["TSHIRT"].available, 12);
    assert_eq!(first.found["MUG"].item_id, "gid://shopify/InventoryItem/2");
    assert!(first.not_sold.is_empty());
    // Known items are read by id, not searched again.
    let second = client.levels(&skus).await.unwrap();
    assert_eq!(second.found["TSHIRT"].available, 11);

    let key = Uuid::new_v4();
    let outcome = client
        .set_levels(
            &[write("TSHIRT", 1, 9, 11), write("MUG", 2, 0, 3)],
            "gid://oms/ChannelSync/x",
            key,
        )
        .await
        .unwrap();
    assert_eq!(outcome, SetOutcome::Applied);
    let sets = bodies(&server, "inventorySetQuantities").await;
    let quantities = sets[0]["variables"]["input"]["quantities"]
        .as_array()
        .unwrap();
    assert_eq!(quantities.len(), 2, "both levels in one call");
    assert_eq!(
        quantities[0]["inventoryItemId"],
        "gid://shopify/InventoryItem/1"
    );
    assert_eq!(quantities[0]["locationId"], "gid://shopify/Location/9");
    assert_eq!(
        (
            quantities[0]["quantity"].as_i64(),
            quantities[0]["changeFromQuantity"].as_i64()
        ),
        (Some(9), Some(11))
    );
    assert_eq!(sets[0]["variables"]["key"], key.to_string());
    assert!(
        sets[0]["query"]
            .as_str()
            .unwrap()
            .contains("@idempotent(key: $key)")
    );
    let read = bodies(&server, "nodes(ids").await;
    assert_eq!(
        read[0]["variables"]["ids"],
        json!([
            "gid://shopify/InventoryItem/1",
            "gid://shopify/InventoryItem/2"
        ])
    );
}

#[tokio::test]
async fn shopify_stale_and_refused_items_are_named_by_their_index_in_the_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_error("CHANGE_FROM_QUANTITY_STALE", 1))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("inventorySetQuantities"))
        .respond_with(set_error("ITEM_NOT_STOCKED_AT_LOCATION", 0))
        .expect(1)
        .mount(&server)
        .await;
    let client = shopify_client(&server);
    let writes = [write("A", 1, 1, 2), write("B", 2, 5, 6)];
    assert_eq!(
        client
            .set_levels(&writes, "r", Uuid::new_v4())
            .await
            .unwrap(),
        SetOutcome::Stale(vec![1])
    );
    match client
        .set_levels(&writes, "r", Uuid::new_v4())
        .await
        .unwrap()
    {
        SetOutcome::Refused(items) => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].0, 0);
            assert!(
                items[0].1.contains("ITEM_NOT_STOCKED_AT_LOCATION"),
                "{items:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn shopify_a_sku_only_other_variants_match_is_not_sold_and_not_searched_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains("productVariants"))
        .respond_with(variants(&[]))
        .expect(1)
        .mount(&server)
        .await;
    let client = shopify_client(&server);
    for _ in 0..2 {
        let levels = client.levels(&["TSHIRT".to_string()]).await.unwrap();
        assert!(levels.found.is_empty());
        assert_eq!(levels.not_sold, ["TSHIRT"]);
    }
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
            .levels(&["ANY".to_string()])
            .await
            .unwrap_err();
        assert!(expected(&err), "unexpected classification: {err:?}");
    }
}
