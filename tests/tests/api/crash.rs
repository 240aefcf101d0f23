//! A worker process killed mid-saga: another one finishes the order, and no
//! step with an external effect runs twice.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;
use sqlx::PgPool;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    helpers::{built_binary, database_url},
    saga_support::{SagaEnv, saga_env},
};

/// Starts `oms-worker` configured exactly like the in-process one.
fn spawn_worker(env: &SagaEnv) -> Child {
    let shops: Vec<_> = env
        .worker
        .shops
        .iter()
        .map(|s| {
            json!({"shop": s.shop, "webhook_secret": "unused", "admin_url": s.admin_url,
                   "access_token": "shpat-test", "location_id": s.location_id})
        })
        .collect();
    Command::new(built_binary("oms-worker"))
        .env("DATABASE_URL", database_url(&env.pool))
        .env("TEMPORAL_ADDRESS", &env.worker.temporal.address)
        .env("OMS_TASK_QUEUE", &env.worker.temporal.task_queue)
        .env("OMS_WMS_URL", &env.worker.wms.base_url)
        .env("OMS_WMS_TIMEOUT_SECS", "10")
        // Test secrets are short and the WMS token is the development one.
        .env("OMS_ALLOW_DEV_SECRETS", "true")
        .env("OMS_SHOPIFY_STORES", serde_json::to_string(&shops).unwrap())
        // Port 0: never collides with a local stack's worker on 9464.
        .env("OMS_WORKER_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start oms-worker")
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_worker_killed_mid_saga_is_replaced_and_the_order_completes_once(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    // The first WMS stock check hangs, so the kill lands inside an activity.
    Mock::given(method("GET"))
        .and(path("/wms/inventory-level"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"items": [{"sku": "CRASH", "total_sellable_quantity": 100}]}))
                .set_delay(Duration::from_secs(30)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 4242, "status": "Processing"})),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("CRASH", 5).await;

    let mut first = spawn_worker(&env);
    let order = env.place(1301, &[("CRASH", 2)]).await;
    // Generous: a loaded CI machine may be slow to start a debug binary.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !env
        .wms
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| r.url.path() == "/wms/inventory-level")
    {
        assert!(
            Instant::now() < deadline,
            "the first worker never reached the stock check"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().expect("SIGKILL the worker");
    first.wait().expect("reap the worker");

    let mut second = spawn_worker(&env);
    // The stock check is retried once its 5 s attempt timeout expires.
    let status = env
        .wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
        .await;
    second.kill().ok();
    second.wait().ok();

    assert_eq!(status, "FULFILLMENT_REQUESTED");
    assert_eq!(env.app.levels("CRASH").await, (3, 2, 0));
    assert_eq!(env.reserved_units_of_order(order).await, 2);
    assert_eq!(
        env.wms_orders().await.len(),
        1,
        "the WMS received the order exactly once"
    );
}
