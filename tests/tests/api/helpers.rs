use std::time::Duration;

use api::{Application, Settings};
use db::{DatabaseSettings, ReserverSettings};
use orchestrator::TemporalSettings;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use workflows::contracts::SagaPolicy;

/// A running API on a random port over the test's own database.
pub struct TestApp {
    pub address: String,
    /// Sends a key with every scope (`admin`) with every request.
    pub client: reqwest::Client,
    pub pool: PgPool,
}

/// Settings for a test: port 0, small timeouts, the defaults otherwise.
pub fn test_settings() -> Settings {
    Settings {
        listen_addr: "127.0.0.1:0".parse().expect("address"),
        // Unused: the test hands in its own pool.
        database: DatabaseSettings::new("postgres://unused"),
        reserver: ReserverSettings::default(),
        expiry_sweep_interval: Duration::from_secs(3600),
        body_limit_bytes: 16 * 1024,
        // Inventory tests never reach Temporal; saga tests point this at the dev server.
        temporal: TemporalSettings {
            address: "http://127.0.0.1:1".into(),
            namespace: "default".into(),
            task_queue: "unused".into(),
        },
        shops: Vec::new(),
        saga_policy: SagaPolicy::default(),
        payment_gate: domain::PaymentGate::default(),
        temporal_ui_url: "http://localhost:8233".into(),
        // Concurrency tests send hundreds of requests from one address.
        limits: api::LimitSettings::unlimited(),
        channel_sync: Default::default(),
        // Tests that want the 202 of a slow change shorten this.
        status_change_wait: Duration::from_secs(60),
        api_key_refresh: Duration::from_secs(5),
        dead_letter_retention: Duration::from_secs(30 * 86_400),
        wms_webhook_key: None,
    }
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, test_settings()).await
}

pub async fn spawn_app_with(pool: PgPool, settings: Settings) -> TestApp {
    let api_key = issue_key(&pool, "tests", &["admin"]).await;
    let app = Application::build_with_pool(settings, pool.clone())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        client: client_with_key(&api_key),
        pool,
    }
}

/// Creates an API key with `scopes` in the test's database.
pub async fn issue_key(pool: &PgPool, name: &str, scopes: &[&str]) -> String {
    let db = db::Db::new(pool.clone(), &ReserverSettings::default());
    api::api_keys::issue_key(&db, name, scopes, None)
        .await
        .expect("issue an API key")
        .key
}

/// A client that sends `key` as its bearer token.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// `GET path`, read as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    pub async fn set_stock(&self, sku: &str, stock: i64) -> reqwest::Response {
        self.client
            .patch(self.url(&format!("/product/{sku}/stock")))
            .json(&json!({ "stock": stock }))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_product(&self, sku: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/product/{sku}")))
            .send()
            .await
            .expect("request")
    }

    /// The levels of an existing product as `(IN_STOCK, RESERVED, SOLD)`.
    pub async fn levels(&self, sku: &str) -> (i64, i64, i64) {
        let r = self.get_product(sku).await;
        assert_eq!(r.status(), 200, "GET /product/{sku}");
        let v: Value = r.json().await.expect("json");
        (
            v["IN_STOCK"].as_i64().expect("IN_STOCK"),
            v["RESERVED"].as_i64().expect("RESERVED"),
            v["SOLD"].as_i64().expect("SOLD"),
        )
    }

    pub async fn reserve(&self, sku: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/product/{sku}/reserve")))
            .send()
            .await
            .expect("request")
    }

    /// Reserves and returns the token, asserting success.
    pub async fn reserve_token(&self, sku: &str) -> String {
        let r = self.reserve(sku).await;
        assert_eq!(r.status(), 200, "reserve {sku}");
        let v: Value = r.json().await.expect("json");
        v["reservationToken"].as_str().expect("token").to_string()
    }

    pub async fn unreserve(&self, sku: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/product/{sku}/unreserve")))
            .json(&json!({ "reservationToken": token }))
            .send()
            .await
            .expect("request")
    }

    pub async fn sold(&self, sku: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/product/{sku}/sold")))
            .json(&json!({ "reservationToken": token }))
            .send()
            .await
            .expect("request")
    }

    /// Reservation rows of `sku` in `state`, counted in the database.
    pub async fn reservations_in_state(&self, sku: &str, state: &str) -> i64 {
        sqlx::query_scalar("SELECT coalesce(sum(quantity), 0)::int8 FROM reservations WHERE sku = $1 AND state = $2")
            .bind(sku)
            .bind(state)
            .fetch_one(&self.pool)
            .await
            .expect("count reservations")
    }
}

/// Asserts a problem+json answer with `status` and `code`; returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(ct, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail in {body}"
    );
    // The shape every error shares (RFC 9457 plus `code`, and `errors` only
    // as a list of named fields).
    assert_eq!(
        body["type"],
        format!("urn:oms:problem:{code}"),
        "type in {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title in {body}"
    );
    if let Some(errors) = body.get("errors") {
        let errors = errors.as_array().expect("errors is a list");
        assert!(
            !errors.is_empty(),
            "errors, when present, names fields: {body}"
        );
        for e in errors {
            assert!(
                e["field"].as_str().is_some() && e["message"].as_str().is_some(),
                "field error {e}"
            );
        }
    }
    body
}

/// Records an order of one line (SKU X, 1 unit at 1.50) straight into the
/// database: for tests about reads and refusals, which need no saga.
pub async fn seed_order(
    db: &db::Db,
    channel: domain::Channel,
    shop: Option<&str>,
    external_id: &str,
) -> Uuid {
    let order_id = Uuid::new_v4();
    let name = format!("#{external_id}");
    let workflow_id = format!("wf-{external_id}");
    db.record_order(&db::NewOrder {
        order_id,
        channel,
        shop,
        external_id,
        name: Some(&name),
        currency: None,
        placed_at: None,
        lines: vec![db::NewOrderLine {
            line_no: 1,
            sku: "X",
            quantity: 1,
            unit_price: Some("1.50"),
            external_line_id: None,
            title: None,
        }],
        shipping_address: None,
        request_id: None,
        workflow_id: &workflow_id,
        awaits_payment: false,
    })
    .await
    .unwrap();
    order_id
}

/// A binary of this workspace, built before the tests run (`make test` runs
/// `cargo build --bins`); found beside `OMS_WORKER_BIN` when that is set.
pub fn built_binary(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("OMS_WORKER_BIN")
        .ok()
        .and_then(|w| {
            std::path::PathBuf::from(w)
                .parent()
                .map(std::path::Path::to_path_buf)
        })
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug")
        });
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: `make test` builds it (cargo build --bins)",
        bin.display()
    );
    bin
}

/// The URL of the test's own database, for a binary in another process.
pub fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let server = &base[..base.rfind('/').expect("a database path")];
    format!(
        "{server}/{}",
        pool.connect_options()
            .get_database()
            .expect("a database name")
    )
}
