//! API keys: every REST route needs a live key with its scope; health,
//! metrics and the API's description stay open; webhooks keep their own
//! signatures.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{
    assert_problem, client_with_key, issue_key, spawn_app, spawn_app_with, test_settings,
};

/// Every scoped route, with the scope it needs and a body it accepts.
fn scoped_routes() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::GET, "/product/X", "inventory:read"),
        (Method::GET, "/products", "inventory:read"),
        (Method::PATCH, "/product/X/stock", "inventory:write"),
        (Method::POST, "/product/X/reserve", "inventory:write"),
        (Method::POST, "/product/X/unreserve", "inventory:write"),
        (Method::POST, "/product/X/sold", "inventory:write"),
        (Method::POST, "/orders", "orders:write"),
        (Method::GET, "/orders", "orders:read"),
        (
            Method::GET,
            "/orders/00000000-0000-0000-0000-000000000001",
            "orders:read",
        ),
        (
            Method::PATCH,
            "/orders/00000000-0000-0000-0000-000000000001/status",
            "orders:write",
        ),
        (Method::GET, "/channels", "admin"),
    ]
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn every_route_refuses_a_request_without_a_key_or_with_a_wrong_one(pool: PgPool) {
    let app = spawn_app(pool).await;
    let anonymous = reqwest::Client::new();
    let wrong = client_with_key("oms_not-a-key-anyone-was-given");
    for (method, path, _) in scoped_routes() {
        for client in [&anonymous, &wrong] {
            let r = client
                .request(method.clone(), app.url(path))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer realm=\"oms\"",
                "{method} {path}"
            );
            assert_problem(r, 401, "unauthorized").await;
        }
    }
    // Nothing was done on their behalf: no product, no order, no idempotency key.
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_key_without_the_routes_scope_gets_403_naming_it(pool: PgPool) {
    // For each route, a key with every scope but the one it needs (and not admin).
    let mut keys = Vec::new();
    for (_, _, scope) in scoped_routes() {
        let others: Vec<&str> = [
            "inventory:read",
            "inventory:write",
            "orders:read",
            "orders:write",
        ]
        .into_iter()
        .filter(|s| *s != scope)
        .collect();
        keys.push(issue_key(&pool, "narrow", &others).await);
    }
    let app = spawn_app(pool.clone()).await;
    for ((method, path, scope), key) in scoped_routes().into_iter().zip(keys) {
        let r = client_with_key(&key)
            .request(method.clone(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(r, 403, "forbidden").await;
        assert_eq!(problem["requiredScope"], scope, "{method} {path}");
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_key_with_the_scope_is_let_through(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let checkout = client_with_key(&issue_key(&pool, "checkout", &["inventory:write"]).await);
    let r = checkout
        .patch(app.url("/product/A/stock"))
        .json(&json!({"stock": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = checkout
        .post(app.url("/product/A/reserve"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Writing does not imply reading.
    assert_problem(
        checkout.get(app.url("/product/A")).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(app.levels("A").await, (2, 1, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn health_metrics_and_the_api_description_need_no_key(pool: PgPool) {
    let app = spawn_app(pool).await;
    let anonymous = reqwest::Client::new();
    for path in [
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
    ] {
        let r = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_revoked_key_stops_working_within_the_refresh_interval(pool: PgPool) {
    let mut settings = test_settings();
    settings.api_key_refresh = Duration::from_millis(200);
    let app = spawn_app_with(pool.clone(), settings).await;
    let key = issue_key(&pool, "leaked", &["inventory:read"]).await;
    let client = client_with_key(&key);
    assert_eq!(
        client
            .get(app.url("/products"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a new key works at once"
    );
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE name = 'leaked'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    assert!(db.revoke_api_key(id).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client.get(app.url("/products")).send().await.unwrap();
        if r.status() == 401 {
            assert_problem(r, 401, "unauthorized").await;
            break;
        }
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Other keys are unaffected.
    assert_eq!(app.get("/products").await.status(), 200);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn only_a_hash_of_each_key_is_stored(pool: PgPool) {
    let key = issue_key(&pool, "stored", &["admin"]).await;
    let hash: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE name = 'stored'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(hash.len(), 32);
    let dump: String = sqlx::query_scalar("SELECT string_agg(api_keys::text, ' ') FROM api_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    let secret = key.trim_start_matches("oms_");
    assert!(!dump.contains(secret), "the key itself is in the table");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_operator_command_creates_lists_and_revokes_keys(pool: PgPool) {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::helpers::built_binary("oms-api"))
            .args(args)
            .env("DATABASE_URL", crate::helpers::database_url(&pool))
            .env("OMS_ALLOW_DEV_SECRETS", "true")
            .output()
            .expect("run oms-api")
    };
    let created = run(&[
        "keys",
        "create",
        "--name",
        "checkout",
        "--scopes",
        "inventory:write,orders:read",
    ]);
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(created["key"].as_str().unwrap().starts_with("oms_"));
    assert_eq!(created["scopes"], json!(["inventory:write", "orders:read"]));

    let refused = run(&[
        "keys",
        "create",
        "--name",
        "x",
        "--scopes",
        "inventory:delete",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown scope"));

    let listed = run(&["keys", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("\"checkout\""), "{listed}");
    assert!(
        !listed.contains(created["key"].as_str().unwrap()),
        "list never shows a key"
    );

    let id = created["id"].as_str().unwrap();
    assert!(run(&["keys", "revoke", id]).status.success());
    assert!(
        !run(&["keys", "revoke", id]).status.success(),
        "revoked twice"
    );
    assert_eq!(
        String::from_utf8(run(&["keys", "list"]).stdout).unwrap(),
        ""
    );
}

/// Runs `binary` with `env` (and nothing inherited that would loosen the
/// checks); returns its exit success and stderr.
fn start_with(binary: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = std::process::Command::new(crate::helpers::built_binary(binary));
    command
        .args(args)
        .env_remove("OMS_ALLOW_DEV_SECRETS")
        .env_remove("OMS_SHOPIFY_STORES_FILE")
        .env_remove("OMS_WMS_TOKEN")
        // Never reached: the settings are refused first.
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("OMS_API_ADDR", "127.0.0.1:0")
        .env("OMS_WORKER_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "error");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stores(webhook_secret: &str) -> String {
    json!([{"shop": "store-a.myshopify.com", "webhook_secret": webhook_secret,
            "admin_url": "http://127.0.0.1:1", "access_token": "shpat_0123456789abcdef0123",
            "location_id": "gid://shopify/Location/1"}])
    .to_string()
}

#[test]
fn the_api_refuses_to_start_with_an_empty_or_development_webhook_secret() {
    for secret in ["", "dev-webhook-secret-a", "tiny7"] {
        let (ok, stderr) = start_with("oms-api", &[], &[("OMS_SHOPIFY_STORES", &stores(secret))]);
        assert!(!ok, "started with webhook secret {secret:?}");
        assert!(
            stderr.contains("OMS_SHOPIFY_STORES[0].webhook_secret"),
            "names the setting: {stderr}"
        );
        if !secret.is_empty() {
            assert!(!stderr.contains(secret), "echoes the secret: {stderr}");
        }
    }
    // Not even the development flag makes an empty key acceptable.
    let (ok, stderr) = start_with(
        "oms-api",
        &[],
        &[
            ("OMS_SHOPIFY_STORES", &stores("")),
            ("OMS_ALLOW_DEV_SECRETS", "true"),
        ],
    );
    assert!(!ok && stderr.contains("is empty"), "{stderr}");
}

#[test]
fn the_worker_refuses_to_start_without_a_real_warehouse_token() {
    let real_stores = stores("whsec_0123456789abcdef0123456789");
    let (ok, stderr) = start_with("oms-worker", &[], &[("OMS_SHOPIFY_STORES", &real_stores)]);
    assert!(!ok);
    assert!(
        stderr.contains("OMS_WMS_TOKEN") && stderr.contains("is required"),
        "{stderr}"
    );
    let (ok, stderr) = start_with(
        "oms-worker",
        &[],
        &[
            ("OMS_SHOPIFY_STORES", &real_stores),
            ("OMS_WMS_TOKEN", "dev-token"),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("development value"), "{stderr}");
}
