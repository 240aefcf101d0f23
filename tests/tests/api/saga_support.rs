//! A whole OMS for one test: API + in-process worker + dev server, with two
//! Shopify shops and a fake WMS on wiremock.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use db::DatabaseSettings;
use domain::{Channel, ShopDomain, order_id_for};
use hmac::{Hmac, Mac};
use orchestrator::{ChannelSyncSettings, TemporalSettings};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;
use vendors::{
    shopify::{DEFAULT_API_VERSION, ShopSettings},
    wms::WmsSettings,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};
use worker::WorkerSettings;
use workflows::contracts::{SagaPolicy, ShopSyncPolicy};

use crate::{
    fakes::{FakeShop, FakeWmsInventory},
    helpers::{TestApp, spawn_app_with, test_settings},
    temporal::dev_server,
};

pub const SECRET: &str = "whsec-test";
pub const SHOPS: [&str; 2] = ["store-a.myshopify.com", "store-b.myshopify.com"];

pub struct Shop {
    pub domain: String,
    pub server: MockServer,
    pub fake: FakeShop,
}

pub struct SagaEnv {
    pub app: TestApp,
    pub wms: MockServer,
    pub shops: Vec<Shop>,
    pub worker: WorkerSettings,
    pub pool: PgPool,
}

/// Short deadlines and fast retries so failure paths finish in seconds.
pub fn fast_policy() -> SagaPolicy {
    SagaPolicy {
        attempt_timeout_secs: 5,
        initial_retry_millis: 100,
        max_retry_interval_secs: 1,
        stock_check_deadline_secs: 10,
        fulfillment_deadline_secs: 60,
        channel_sync_deadline_secs: 30,
        unpaid_expiry_secs: 3600,
    }
}

/// Shop syncs that write every 100 ms and look every second when idle; drift
/// repair runs only when a test asks.
pub fn fast_channel_sync() -> ChannelSyncSettings {
    ChannelSyncSettings {
        policy: ShopSyncPolicy {
            interval_millis: 100,
            idle_poll_secs: 1,
            max_retry_interval_millis: 300,
            attempt_timeout_secs: 5,
            ..ShopSyncPolicy::default()
        },
        drift_repair_every: None,
    }
}

/// Builds the environment; the WMS order endpoint is left for the test to mock.
pub async fn saga_env(pool: PgPool) -> SagaEnv {
    saga_env_with(pool, |_| {}).await
}

/// [`saga_env`] with the API's settings adjusted by `adjust` (the worker's
/// stay as they are; change `env.worker` before starting it).
pub async fn saga_env_with(pool: PgPool, adjust: impl FnOnce(&mut api::Settings)) -> SagaEnv {
    // `OMS_TEST_LOG=info cargo test …` shows what the API and worker log.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("OMS_TEST_LOG"))
        .with_test_writer()
        .try_init();
    let wms = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/wms/inventory-level"))
        .respond_with(FakeWmsInventory::with_default(1_000))
        .mount(&wms)
        .await;
    // Asked by reference, the warehouse knows no order unless a test says so.
    Mock::given(method("GET"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .with_priority(10)
        .mount(&wms)
        .await;
    let mut shops = Vec::new();
    for domain in SHOPS {
        let server = MockServer::start().await;
        let fake = FakeShop::default();
        Mock::given(method("POST"))
            .and(path(format!(
                "/admin/api/{DEFAULT_API_VERSION}/graphql.json"
            )))
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        shops.push(Shop {
            domain: domain.to_string(),
            server,
            fake,
        });
    }
    let shop_settings: Vec<ShopSettings> = shops
        .iter()
        .map(|s| ShopSettings {
            shop: ShopDomain::parse(&s.domain).unwrap(),
            webhook_secret: SECRET.to_string().into(),
            admin_url: s.server.uri(),
            access_token: "shpat-test".to_string().into(),
            location_id: "gid://shopify/Location/1".into(),
            safety_buffer: 0,
        })
        .collect();
    let temporal = TemporalSettings {
        address: dev_server().to_string(),
        namespace: "default".into(),
        task_queue: format!("test-{}", Uuid::new_v4()),
    };
    let mut settings = test_settings();
    settings.temporal = temporal.clone();
    settings.shops = shop_settings.clone();
    settings.saga_policy = fast_policy();
    settings.channel_sync = fast_channel_sync();
    adjust(&mut settings);
    let app = spawn_app_with(pool.clone(), settings).await;
    let worker = WorkerSettings {
        temporal,
        database: DatabaseSettings::new("postgres://unused"),
        wms: WmsSettings {
            base_url: format!("{}/wms", wms.uri()),
            token: "wms-token".to_string().into(),
            channel_id: None,
            timeout: Duration::from_secs(2),
        },
        shops: shop_settings,
        shopify_api_version: DEFAULT_API_VERSION.into(),
        shopify_timeout: Duration::from_secs(2),
        max_concurrent_activities: 20,
        max_concurrent_workflow_tasks: 20,
        // Tests that scrape it start their own on port 0.
        metrics_addr: None,
        channel_sync: fast_channel_sync(),
        // Tests reconcile when they ask; nothing is quiet long enough here.
        reconcile: orchestrator::ReconcileSettings {
            every: None,
            quiet: Duration::ZERO,
            limit: 500,
        },
    };
    SagaEnv {
        app,
        wms,
        shops,
        worker,
        pool,
    }
}

/// The WMS accepting an order as its id 555001.
pub fn wms_accepts() -> Mock {
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 555_001, "status": "Processing"})),
        )
}

/// A Shopify `orders/create` payload with these `(sku, quantity)` lines.
pub fn order_payload(id: u64, lines: &[(&str, i64)]) -> Value {
    json!({
        "id": id,
        "admin_graphql_api_id": format!("gid://shopify/Order/{id}"),
        "name": format!("#{}", id % 100_000),
        "created_at": "2026-11-22T10:00:00+01:00",
        "currency": "EUR",
        "financial_status": "paid",
        "total_price": "42.00",
        "email": "buyer@example.com",
        "customer": {"id": 1, "first_name": "Ada"},
        "line_items": lines.iter().enumerate().map(|(i, (sku, q))| json!({
            "id": 9_000_000_000_000_000_000_u64 + i as u64,
            "variant_id": 42,
            "sku": sku,
            "quantity": q,
            "price": "19.90",
            "title": format!("Product {sku}"),
            "requires_shipping": true,
        })).collect::<Vec<_>>(),
        "shipping_address": {"name": "Ada Lovelace", "address1": "1 Main St", "city": "Berlin",
                             "zip": "10115", "country_code": "DE", "province_code": null, "phone": null},
    })
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

pub fn order_id(shop: &str, shopify_id: u64) -> Uuid {
    order_id_for(
        Channel::Shopify,
        Some(&ShopDomain::parse(shop).unwrap()),
        &shopify_id.to_string(),
    )
}

impl SagaEnv {
    /// Sends a correctly signed webhook from `shop`.
    pub async fn send_webhook(&self, shop: &str, topic: &str, body: &[u8]) -> reqwest::Response {
        self.send_webhook_signed(shop, topic, body, &sign(SECRET, body))
            .await
    }

    pub async fn send_webhook_signed(
        &self,
        shop: &str,
        topic: &str,
        body: &[u8],
        signature: &str,
    ) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/webhooks/shopify"))
            .header("content-type", "application/json")
            .header("x-shopify-shop-domain", shop)
            .header("x-shopify-topic", topic)
            .header("x-shopify-hmac-sha256", signature)
            .header("x-shopify-webhook-id", Uuid::new_v4().to_string())
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Asks the orders API to move `order` to `status`, with `reason`.
    pub async fn patch_status(
        &self,
        order: Uuid,
        status: &str,
        reason: Option<&str>,
    ) -> reqwest::Response {
        self.app
            .client
            .patch(self.app.url(&format!("/orders/{order}/status")))
            .json(&json!({"status": status, "reason": reason}))
            .send()
            .await
            .unwrap()
    }

    /// Sends an `orders/create` webhook for `lines` from the first store.
    pub async fn place(&self, shopify_id: u64, lines: &[(&str, i64)]) -> Uuid {
        let body = serde_json::to_vec(&order_payload(shopify_id, lines)).unwrap();
        let r = self.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(r.status(), 200, "webhook accepted: {:?}", r.text().await);
        order_id(SHOPS[0], shopify_id)
    }

    /// Waits until the order reaches a status in `wanted`; returns it.
    pub async fn wait_for_status(&self, order: Uuid, wanted: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
                    .bind(order)
                    .fetch_optional(&self.pool)
                    .await
                    .unwrap();
            if let Some(s) = status.as_deref()
                && wanted.contains(&s)
            {
                return s.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "order {order} stuck at {status:?}, wanted {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` holds, polling.
    pub async fn eventually<F: Fn() -> bool>(&self, what: &str, check: F) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no change waits for any shop (the outbox is empty).
    pub async fn wait_until_every_change_is_pushed(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM channel_sync_outbox")
                .fetch_one(&self.pool)
                .await
                .unwrap();
            if pending == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{pending} change(s) never pushed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn reserved_units_of_order(&self, order: Uuid) -> i64 {
        sqlx::query_scalar("SELECT coalesce(sum(quantity), 0)::int8 FROM reservations WHERE order_id = $1 AND state = 'RESERVED'")
            .bind(order)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The order's status in the database now.
    pub async fn status(&self, order: Uuid) -> String {
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The kinds of the order's notifications, oldest first.
    pub async fn notification_kinds(&self, order: Uuid) -> Vec<String> {
        self.notifications(order)
            .await
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    pub async fn notifications(&self, order: Uuid) -> Vec<(String, String)> {
        sqlx::query_as("SELECT kind, message FROM notifications WHERE order_id = $1 ORDER BY id")
            .bind(order)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn status_history(&self, order: Uuid) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT to_status FROM order_status_history WHERE order_id = $1 ORDER BY id",
        )
        .bind(order)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Bodies of the orders the WMS received.
    pub async fn wms_orders(&self) -> Vec<Value> {
        self.wms
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/wms/order")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}
