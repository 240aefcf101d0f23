//! Customer data stays in Postgres: Temporal's histories (and so its Web
//! UI) never hold it, and dead-lettered payloads are emptied after their
//! retention.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use temporalio_client::WorkflowFetchHistoryOptions;
use workflows::OrderWorkflow;

use crate::{
    helpers::{spawn_app_with, test_settings},
    saga_support::{SHOPS, SagaEnv, order_id, order_payload, saga_env, wms_accepts},
    temporal::with_worker,
};

/// Every event of the order's workflow, as JSON text, with every payload's
/// data decoded (the history's JSON keeps payloads in base64).
async fn history_text(env: &SagaEnv, order: uuid::Uuid) -> String {
    let workflow_id: String = sqlx::query_scalar("SELECT workflow_id FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
    let json = client
        .get_workflow_handle::<OrderWorkflow>(workflow_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .unwrap();
    let mut text = String::from_utf8(json.clone()).unwrap();
    decode_payloads(&serde_json::from_slice(&json).unwrap(), &mut text);
    text
}

fn decode_payloads(value: &serde_json::Value, out: &mut String) {
    use base64::{Engine, engine::general_purpose::STANDARD};
    match value {
        serde_json::Value::Object(map) => {
            if let Some(data) = map.get("data").and_then(|d| d.as_str())
                && let Ok(bytes) = STANDARD.decode(data)
            {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            map.values().for_each(|v| decode_payloads(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| decode_payloads(v, out)),
        _ => {}
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_workflows_history_holds_no_customer_data_yet_the_warehouse_gets_the_address(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(2).mount(&env.wms).await;
    env.app.set_stock("PRIVATE", 10).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let shopify = env.place(91_401, &[("PRIVATE", 1)]).await;
        let r = env
            .app
            .client
            .post(env.app.url("/orders"))
            .header("idempotency-key", "privacy-1")
            .json(&json!({
                "customerReference": "grace.hopper@example.com",
                "lines": [{"sku": "PRIVATE", "quantity": 1}],
                "shippingAddress": {"name": "Grace Hopper", "address1": "7 Navy Yard",
                                    "city": "Arlington", "zip": "22202", "countryCode": "US",
                                    "phone": "+1 555 0100"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let api: serde_json::Value = r.json().await.unwrap();
        let api: uuid::Uuid = api["orderId"].as_str().unwrap().parse().unwrap();
        for order in [shopify, api] {
            assert_eq!(
                env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
                    .await,
                "FULFILLMENT_REQUESTED"
            );
        }
        let histories = format!(
            "{}{}",
            history_text(&env, shopify).await,
            history_text(&env, api).await
        );
        assert!(histories.contains("PRIVATE"), "the histories were read");
        for customer_data in [
            "Ada Lovelace",
            "1 Main St",
            "10115",
            "Grace Hopper",
            "7 Navy Yard",
            "555 0100",
            "grace.hopper",
            "buyer@example.com",
        ] {
            assert!(
                !histories.contains(customer_data),
                "{customer_data:?} is in a workflow history"
            );
        }
        // The activities read the address from Postgres for the warehouse.
        let sent: Vec<String> = env
            .wms
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/wms/order")
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        assert!(
            sent.iter()
                .any(|b| b.contains("Ada Lovelace") && b.contains("1 Main St"))
        );
        assert!(
            sent.iter()
                .any(|b| b.contains("Grace Hopper") && b.contains("7 Navy Yard"))
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_recorded_while_temporal_was_down_is_started_by_the_reconciliation(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("LATE", 5).await;
    // An API that cannot reach Temporal (the test settings point nowhere).
    let mut settings = test_settings();
    settings.shops = env.worker.shops.clone();
    let cut_off = spawn_app_with(pool.clone(), settings).await;
    let body = serde_json::to_vec(&order_payload(91_402, &[("LATE", 2)])).unwrap();
    let r = cut_off
        .client
        .post(cut_off.url("/webhooks/shopify"))
        .header("x-shopify-shop-domain", SHOPS[0])
        .header("x-shopify-topic", "orders/create")
        .header(
            "x-shopify-hmac-sha256",
            crate::saga_support::sign(crate::saga_support::SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "Shopify is told to redeliver");
    let order = order_id(SHOPS[0], 91_402);
    // Shopify gives up; the order was recorded all the same.
    assert_eq!(env.status(order).await, "RECEIVED");
    with_worker(env.worker.clone(), pool.clone(), async {
        let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
        let repairs = orchestrator::run_reconcile(
            &client,
            &env.worker.temporal.task_queue,
            &env.worker.reconcile,
            Some(order),
        )
        .await
        .unwrap();
        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.app.levels("LATE").await, (3, 2, 0));
    })
    .await;
    let notified: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE order_id = $1 AND kind = 'order_repaired'",
    )
    .bind(order)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(notified, 1);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn dead_letter_payloads_are_emptied_after_their_retention(pool: PgPool) {
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let old = db
        .dead_letter(
            SHOPS[0],
            "orders/create",
            None,
            "line_items: missing",
            b"{\"email\":\"old@example.com\"}",
        )
        .await
        .unwrap();
    let recent = db
        .dead_letter(
            SHOPS[0],
            "orders/create",
            None,
            "line_items: missing",
            b"{\"email\":\"new@example.com\"}",
        )
        .await
        .unwrap();
    sqlx::query(
        "UPDATE webhook_dead_letters SET received_at = now() - interval '31 days' WHERE id = $1",
    )
    .bind(old)
    .execute(&pool)
    .await
    .unwrap();
    // The API purges at start-up (then hourly).
    let _app = spawn_app_with(pool.clone(), test_settings()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let purged: bool = sqlx::query_scalar(
            "SELECT payload_purged_at IS NOT NULL FROM webhook_dead_letters WHERE id = $1",
        )
        .bind(old)
        .fetch_one(&pool)
        .await
        .unwrap();
        if purged {
            break;
        }
        assert!(Instant::now() < deadline, "the old payload was not purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = db.dead_letter_by_id(old).await.unwrap().unwrap();
    assert!(old.payload.is_empty(), "the customer data is gone");
    assert_eq!(
        old.error, "line_items: missing",
        "the record of what happened stays"
    );
    let recent = db.dead_letter_by_id(recent).await.unwrap().unwrap();
    assert!(recent.payload_purged_at.is_none());
    assert!(!recent.payload.is_empty());
}
