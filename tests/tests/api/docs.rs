//! The API describes itself: OpenAPI 3.1 at /openapi.json, a page at /docs,
//! and a committed Postman collection that must match the document.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_openapi_document_describes_every_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec: Value = app.get_json("/openapi.json").await;
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let operations: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "GET /product/{id}",
        "PATCH /product/{id}/stock",
        "POST /product/{id}/reserve",
        "POST /product/{id}/unreserve",
        "POST /product/{id}/sold",
        "GET /products",
        "GET /channels",
        "POST /orders",
        "GET /orders",
        "GET /orders/{id}",
        "PATCH /orders/{id}/status",
        "POST /webhooks/shopify",
        "POST /webhooks/wms",
        "GET /health/live",
        "GET /health/ready",
        "GET /metrics",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(operations, expected);
    // The key scheme, and each operation's scope (or none) as enforced.
    assert_eq!(
        spec["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );
    let security = |path: &str, method: &str| spec["paths"][path][method]["security"].clone();
    assert_eq!(
        security("/product/{id}/reserve", "post"),
        json!([{"apiKey": ["inventory:write"]}])
    );
    assert_eq!(
        security("/orders/{id}", "get"),
        json!([{"apiKey": ["orders:read"]}])
    );
    assert_eq!(security("/channels", "get"), json!([{"apiKey": ["admin"]}]));
    assert_eq!(security("/health/ready", "get"), json!([{}]));
    assert_eq!(security("/webhooks/wms", "post"), json!([{}]));
    assert!(spec["paths"]["/orders"]["post"]["responses"]["403"].is_object());
    // Every documented error is a problem document.
    let problem = &spec["components"]["schemas"]["Problem"]["required"];
    for field in ["type", "title", "status", "code", "detail"] {
        assert!(
            problem.as_array().unwrap().iter().any(|f| f == field),
            "Problem requires {field}: {problem}"
        );
    }
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("OMS API"));
}

#[test]
fn the_committed_postman_collection_matches_the_openapi_document() {
    let spec = serde_json::to_value(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    let generated = api::openapi::postman_collection(&spec);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../postman/oms.postman_collection.json"
    );
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        committed == generated,
        "postman/oms.postman_collection.json is stale: run `make postman` and commit it"
    );
}
