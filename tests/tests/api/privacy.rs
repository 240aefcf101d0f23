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
    // A payment reported for an order that never arrived (nothing to ship).
    let stray = uuid::Uuid::new_v4();
    db.record_payment(stray, domain::FinancialStatus::Paid)
        .await
        .unwrap();
    sqlx::query("UPDATE order_payments SET reported_at = now() - interval '31 days'")
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.reported_payment(stray).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the old payment was not forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `payload` as `orders/create` of order `id` shipping to `name`, placed by customer `customer`.
fn order_of(id: u64, customer: u64, name: &str, lines: &[(&str, i64)]) -> serde_json::Value {
    let mut payload = order_payload(id, lines);
    payload["customer"]["id"] = json!(customer);
    payload["shipping_address"]["name"] = json!(name);
    payload
}

/// Tables that could hold customer data, as text, for a search.
async fn everything_stored(pool: &PgPool) -> String {
    let mut text = String::new();
    for table in [
        "orders",
        "order_lines",
        "order_status_history",
        "notifications",
        "webhook_dead_letters",
        "privacy_requests",
        "order_payments",
    ] {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(pool)
                .await
                .unwrap();
        text.push_str(&rows.join("\n"));
    }
    // Payloads are bytes: searched as text too.
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM webhook_dead_letters")
        .fetch_all(pool)
        .await
        .unwrap();
    for p in payloads {
        text.push_str(&String::from_utf8_lossy(&p));
    }
    text
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_customer_redaction_leaves_no_name_or_address_of_theirs_behind(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(2).mount(&env.wms).await;
    env.app.set_stock("REDACT-ME", 10).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let send = |topic: &'static str, body: serde_json::Value| {
            let env = &env;
            async move {
                let body = serde_json::to_vec(&body).unwrap();
                let r = env.send_webhook(SHOPS[0], topic, &body).await;
                assert_eq!(r.status(), 200, "{topic}");
                r.json::<serde_json::Value>().await.unwrap()
            }
        };
        send(
            "orders/create",
            order_of(91_413, 1, "Ada Lovelace", &[("REDACT-ME", 1)]),
        )
        .await;
        send(
            "orders/create",
            order_of(91_414, 2, "Grace Hopper", &[("REDACT-ME", 1)]),
        )
        .await;
        // One of Ada's orders could not be processed: its payload is kept.
        let broken = send(
            "orders/create",
            order_of(91_415, 1, "Ada Lovelace", &[("REDACT-ME", 0)]),
        )
        .await;
        assert_eq!(broken["status"], "dead_lettered");
        let ada = order_id(SHOPS[0], 91_413);
        let grace = order_id(SHOPS[0], 91_414);
        env.wait_for_status(ada, &["FULFILLMENT_REQUESTED"]).await;
        env.wait_for_status(grace, &["FULFILLMENT_REQUESTED"]).await;
        assert!(everything_stored(&pool).await.contains("Lovelace"));

        // Grace asks what the shop holds about her: recorded for export.
        let asked = send(
            "customers/data_request",
            json!({"shop_id": 1, "shop_domain": SHOPS[0], "orders_requested": [91_414],
                   "customer": {"id": 2, "email": "grace@example.com", "phone": "555-0100"},
                   "data_request": {"id": 9_999}}),
        )
        .await;
        assert_eq!(asked["status"], "recorded", "{asked}");
        let again = send(
            "customers/data_request",
            json!({"shop_id": 1, "shop_domain": SHOPS[0], "orders_requested": [91_414],
                   "customer": {"id": 2}, "data_request": {"id": 9_999}}),
        )
        .await;
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(again["privacyRequestId"], asked["privacyRequestId"]);
        let export = std::process::Command::new(crate::helpers::built_binary("oms-api"))
            .args(["privacy", "export", &asked["privacyRequestId"].to_string()])
            .env("DATABASE_URL", crate::helpers::database_url(&pool))
            .env("OMS_ALLOW_DEV_SECRETS", "true")
            .output()
            .unwrap();
        assert!(export.status.success(), "{export:?}");
        let export: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
        assert_eq!(export["request"]["shopifyRequestId"], "9999");
        assert_eq!(
            export["orders"][0]["shippingAddress"]["name"],
            "Grace Hopper"
        );

        // Ada asks to be forgotten.
        let redact = json!({"shop_id": 1, "shop_domain": SHOPS[0],
                            "customer": {"id": 1, "email": "ada@example.com", "phone": "555-0199"},
                            "orders_to_redact": [91_413, 91_415]});
        let done = send("customers/redact", redact.clone()).await;
        assert_eq!(done["status"], "redacted", "{done}");
        assert_eq!(done["redacted"], json!({"orders": 1, "deadLetters": 1}));
        let stored = everything_stored(&pool).await;
        assert!(!stored.contains("Lovelace"), "Ada is still stored");
        assert!(!stored.contains("ada@example.com"));
        assert!(stored.contains("Grace Hopper"), "Grace was not asked about");
        let detail = env.app.get_json(&format!("/orders/{ada}")).await;
        assert!(!detail.to_string().contains("Lovelace"), "{detail}");
        // Her order goes on at the warehouse all the same.
        assert_eq!(env.status(ada).await, "FULFILLMENT_REQUESTED");
        // Redelivered: nothing left to remove.
        let again = send("customers/redact", redact).await;
        assert_eq!(again["redacted"], json!({"orders": 0, "deadLetters": 0}));

        // The merchant left: every name and address of the shop goes.
        let gone = send(
            "shop/redact",
            json!({"shop_id": 1, "shop_domain": SHOPS[0]}),
        )
        .await;
        assert_eq!(gone["status"], "redacted", "{gone}");
        assert!(!everything_stored(&pool).await.contains("Grace Hopper"));
        let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM privacy_requests")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(requests, 4);
    })
    .await;
}
