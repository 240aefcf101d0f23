//! The order saga end to end: signed webhook → API → Temporal → worker →
//! Postgres, Shopify shops and a fake WMS.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path, query_param},
};

use crate::{
    helpers::assert_problem,
    saga_support::{SHOPS, order_id, order_payload, saga_env, saga_env_with, wms_accepts},
    temporal::with_worker,
};

async fn order_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn webhook_returns_401_when_hmac_is_invalid_and_records_nothing(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let body = serde_json::to_vec(&order_payload(1, &[("TSHIRT", 1)])).unwrap();
    let wrong = crate::saga_support::sign("another-secret", &body);
    for (shop, signature) in [
        (SHOPS[0], wrong.as_str()),
        (SHOPS[0], "not base64!"),
        (SHOPS[0], ""),
        (
            "unknown-shop.myshopify.com",
            crate::saga_support::sign(crate::saga_support::SECRET, &body).leak() as &str,
        ),
    ] {
        let r = env
            .send_webhook_signed(shop, "orders/create", &body, signature)
            .await;
        assert_problem(r, 401, "webhook_unauthorized").await;
    }
    // A body altered after signing fails too.
    let signature = crate::saga_support::sign(crate::saga_support::SECRET, &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_problem(
        env.send_webhook_signed(SHOPS[0], "orders/create", &tampered, &signature)
            .await,
        401,
        "webhook_unauthorized",
    )
    .await;
    assert_eq!(order_count(&pool).await, 0);
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_dead_letters")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(dead, 0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_of_one_product_is_reserved_synced_and_sent_to_the_wms(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("TSHIRT", 10).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(4_294_967_297, &[("TSHIRT", 1)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.app.levels("TSHIRT").await, (9, 1, 0));
        assert_eq!(env.reserved_units_of_order(order).await, 1);
        assert_eq!(
            env.status_history(order).await,
            ["RECEIVED", "RESERVED", "FULFILLMENT_REQUESTED"]
        );
        let sent = env.wms_orders().await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["reference_id"], order.to_string());
        assert_eq!(
            sent[0]["products"],
            json!([{"reference_id": "TSHIRT", "name": "Product TSHIRT", "quantity": 1}])
        );
        assert_eq!(sent[0]["recipient"]["address"]["city"], "Berlin");
        let wms_id: Option<String> =
            sqlx::query_scalar("SELECT wms_order_id FROM orders WHERE id = $1")
                .bind(order)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(wms_id.as_deref(), Some("555001"));
        // Every shop, the origin included, shows the new available level.
        for shop in &env.shops {
            env.eventually("shop synced", || shop.fake.available("TSHIRT") == Some(9))
                .await;
        }
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_for_an_unknown_product_is_rejected_and_nothing_is_reserved(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(77, &[("GHOST", 1)]).await;
        assert_eq!(
            env.wait_for_status(order, &["REJECTED", "FULFILLMENT_REQUESTED"])
                .await,
            "REJECTED"
        );
        assert_eq!(env.reserved_units_of_order(order).await, 0);
        let notes = env.notifications(order).await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].0, "order_rejected");
        assert!(
            notes[0].1.contains("GHOST") && notes[0].1.contains("unknown"),
            "{notes:?}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_unprocessable_signed_payload_is_dead_lettered_and_acknowledged(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    for body in [
        br#"{"id": "not-a-number", "line_items": []}"#.to_vec(),
        br#"{"id": 5, "line_items": [{"sku": "A", "quantity": 0}]}"#.to_vec(),
        b"not json at all".to_vec(),
    ] {
        let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "dead_lettered", "{v}");
    }
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT shop_domain, topic, payload FROM webhook_dead_letters ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2],
        (
            SHOPS[0].to_string(),
            "orders/create".to_string(),
            b"not json at all".to_vec()
        )
    );
    assert_eq!(order_count(&pool).await, 0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn text_postgres_cannot_store_and_prices_that_do_not_fit_are_dead_lettered_by_field(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    let nul_sku = order_payload(91_401, &[("A\u{0}B", 1)]);
    let mut huge_price = order_payload(91_402, &[("TSHIRT", 1)]);
    huge_price["line_items"][0]["price"] = json!("99999999999999.99");
    let mut nul_name = order_payload(91_403, &[("TSHIRT", 1)]);
    nul_name["shipping_address"]["name"] = json!("Ada\u{0}");
    // A value of the wrong type: the parser would quote it.
    let mut named_quantity = order_payload(91_406, &[("TSHIRT", 1)]);
    named_quantity["line_items"][0]["quantity"] = json!("Ada Lovelace");
    for (payload, field) in [
        (nul_sku, "line_items[0].sku"),
        (huge_price, "line_items[0].price"),
        (nul_name, "shipping_address.name"),
        (named_quantity, "line_items[0].quantity"),
    ] {
        let body = serde_json::to_vec(&payload).unwrap();
        let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(r.status(), 200, "Shopify must not retry it");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "dead_lettered", "{v}");
        let reason: String =
            sqlx::query_scalar("SELECT error FROM webhook_dead_letters WHERE id = $1")
                .bind(v["deadLetterId"].as_i64().unwrap())
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(reason.contains(field), "{reason}");
        assert!(
            !reason.contains("Ada"),
            "no customer data in the reason: {reason}"
        );
    }
    assert_eq!(order_count(&pool).await, 0, "nothing reached a workflow");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn other_topics_are_acknowledged_and_ignored(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let r = env.send_webhook(SHOPS[0], "products/update", b"{}").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ignored");
    assert_eq!(order_count(&pool).await, 0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn webhook_answers_503_when_temporal_is_unreachable(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    let mut settings = crate::helpers::test_settings();
    settings.temporal.address = format!("http://127.0.0.1:{}", crate::temporal::free_port());
    settings.shops = env.worker.shops.clone();
    env.app = crate::helpers::spawn_app_with(pool.clone(), settings).await;
    let body = serde_json::to_vec(&order_payload(9, &[("TSHIRT", 1)])).unwrap();
    let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
    let problem = assert_problem(r, 503, "orchestrator_unavailable").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("unreachable"),
        "{problem}"
    );
    // Recorded before the start was tried: if Shopify's redeliveries run
    // out, the reconciliation still finds the order and starts it.
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
        .bind(order_id(SHOPS[0], 9))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "RECEIVED");
}

/// Places one order of `lines` (stock 20 each) and checks every line is
/// reserved and sent to the WMS in one request.
async fn order_of_many_products_reserves_every_line(pool: PgPool, lines: &[(&str, i64)]) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    for (sku, _) in lines {
        env.app.set_stock(sku, 20).await;
    }
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(1000 + lines.len() as u64, lines).await;
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        let total: i64 = lines.iter().map(|(_, q)| q).sum();
        assert_eq!(env.reserved_units_of_order(order).await, total);
        for (sku, q) in lines {
            assert_eq!(env.app.levels(sku).await, (20 - q, *q, 0), "{sku}");
            for shop in &env.shops {
                env.eventually("shop synced", || shop.fake.available(sku) == Some(20 - q))
                    .await;
            }
        }
        let sent = env.wms_orders().await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["products"].as_array().unwrap().len(), lines.len());
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_of_three_products_reserves_every_line(pool: PgPool) {
    order_of_many_products_reserves_every_line(pool, &[("P-1", 1), ("P-2", 2), ("P-3", 3)]).await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_of_five_products_reserves_every_line(pool: PgPool) {
    order_of_many_products_reserves_every_line(
        pool,
        &[("Q-1", 1), ("Q-2", 1), ("Q-3", 2), ("Q-4", 5), ("Q-5", 20)],
    )
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_redelivered_webhook_allocates_once_whether_sequential_or_concurrent(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(2).mount(&env.wms).await;
    env.app.set_stock("DUP", 10).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        // Sequential: the redelivery arrives after the saga finished.
        let body = serde_json::to_vec(&order_payload(501, &[("DUP", 2)])).unwrap();
        let first = env.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(first.json::<Value>().await.unwrap()["status"], "accepted");
        let order = order_id(SHOPS[0], 501);
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let again = env.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(again.status(), 200);
        // The workflow stays open until the order is delivered or cancelled,
        // so the redelivery is matched to the running one.
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["status"], "accepted");
        assert_eq!(again["orderId"], order.to_string());

        // Concurrent: five deliveries of another order at once.
        let body = serde_json::to_vec(&order_payload(502, &[("DUP", 3)])).unwrap();
        let answers = futures::future::join_all(
            (0..5).map(|_| env.send_webhook(SHOPS[0], "orders/create", &body)),
        )
        .await;
        assert!(answers.iter().all(|r| r.status() == 200));
        let order2 = order_id(SHOPS[0], 502);
        env.wait_for_status(order2, &["FULFILLMENT_REQUESTED"])
            .await;

        assert_eq!(env.app.levels("DUP").await, (5, 5, 0));
        assert_eq!(env.reserved_units_of_order(order).await, 2);
        assert_eq!(env.reserved_units_of_order(order2).await, 3);
        assert_eq!(order_count(&pool).await, 2);
        let refs: Vec<Value> = env
            .wms_orders()
            .await
            .into_iter()
            .map(|o| o["reference_id"].clone())
            .collect();
        assert_eq!(refs, [json!(order.to_string()), json!(order2.to_string())]);
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn two_products_one_unknown_reserve_nothing(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    env.app.set_stock("REAL", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(601, &[("REAL", 1), ("FAKE", 1)]).await;
        assert_eq!(
            env.wait_for_status(order, &["REJECTED", "FULFILLMENT_REQUESTED"])
                .await,
            "REJECTED"
        );
        assert_eq!(env.app.levels("REAL").await, (5, 0, 0));
        assert_eq!(env.reserved_units_of_order(order).await, 0);
        let reason: String = sqlx::query_scalar("SELECT status_reason FROM orders WHERE id = $1")
            .bind(order)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(
            reason.contains("line 2 (FAKE)") && !reason.contains("REAL"),
            "{reason}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn two_products_one_short_reserve_nothing_and_every_problem_is_named(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    env.app.set_stock("PLENTY", 50).await;
    env.app.set_stock("SCARCE", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env
            .place(701, &[("PLENTY", 2), ("SCARCE", 2), ("", 1)])
            .await;
        assert_eq!(
            env.wait_for_status(order, &["REJECTED", "FULFILLMENT_REQUESTED"])
                .await,
            "REJECTED"
        );
        assert_eq!(env.app.levels("PLENTY").await, (50, 0, 0));
        assert_eq!(env.app.levels("SCARCE").await, (1, 0, 0));
        let notes = env.notifications(order).await;
        let message = &notes[0].1;
        assert!(
            message.contains("line 2 (SCARCE): insufficient stock: 2 requested, 1 available"),
            "{message}"
        );
        assert!(message.contains("line 3 (no SKU)"), "{message}");
        // The shops only ever saw the levels set through the stock API: the
        // rejection pushed nothing new.
        for shop in &env.shops {
            for (sku, level) in shop.fake.sets() {
                let expected = if sku == "PLENTY" { 50 } else { 1 };
                assert_eq!(level, expected, "{sku} pushed at {level}");
            }
        }
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_permanent_wms_rejection_releases_the_stock_and_resyncs_the_channels(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"recipient.address.country": ["unsupported country"]})),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("SHIRT", 4).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(801, &[("SHIRT", 3)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FAILED", "FULFILLMENT_REQUESTED"])
                .await,
            "FAILED"
        );
        assert_eq!(env.app.levels("SHIRT").await, (4, 0, 0));
        assert_eq!(env.reserved_units_of_order(order).await, 0);
        let released: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reservations WHERE order_id = $1 AND state = 'RELEASED'",
        )
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(released, 1);
        assert_eq!(
            env.status_history(order).await,
            ["RECEIVED", "RESERVED", "COMPENSATING", "FAILED"]
        );
        let notes = env.notifications(order).await;
        assert!(
            notes
                .iter()
                .any(|(k, m)| k == "order_failed" && m.contains("unsupported country")),
            "{notes:?}"
        );
        // The release queued the restored level for every shop.
        for shop in &env.shops {
            env.eventually("shop re-synced to the restored level", || {
                shop.fake.available("SHIRT") == Some(4)
            })
            .await;
        }
        env.wait_until_every_change_is_pushed().await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_order_completes_once_the_wms_is_back(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&env.wms)
        .await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("BACK", 2).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(901, &[("BACK", 1)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.wms_orders().await.len(), 3);
        assert_eq!(env.app.levels("BACK").await, (1, 1, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn channel_sync_repairs_drift_on_every_shop_and_skips_shops_without_the_sku(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("DRIFT", 10).await;
    // Shop A still shows an old level; shop B does not sell the product.
    env.shops[0].fake.set_available("DRIFT", 42);
    env.shops[1].fake.does_not_sell("DRIFT");
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(1101, &[("DRIFT", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        env.eventually("shop A corrected", || {
            env.shops[0].fake.available("DRIFT") == Some(9)
        })
        .await;
        assert!(env.shops[1].fake.sets().is_empty());
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_workflow_answers_a_status_query(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("Q", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(1201, &[("Q", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
        let workflow_id = format!("order:shopify:{}:1201", SHOPS[0]);
        let view = orchestrator::query_order(&client, &workflow_id)
            .await
            .unwrap();
        assert_eq!(view.order_id, order);
        assert_eq!(view.status, domain::OrderStatus::FulfillmentRequested);
        assert_eq!(view.wms_order_id.as_deref(), Some("555001"));
        assert!(
            view.steps.iter().any(|s| s.starts_with("reserved")),
            "{:?}",
            view.steps
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn setting_stock_pushes_the_new_level_to_every_shop(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    env.shops[0].fake.set_available("RESTOCK", 3);
    with_worker(env.worker.clone(), pool.clone(), async {
        let r = env.app.set_stock("RESTOCK", 40).await;
        assert_eq!(r.status(), 200);
        for shop in &env.shops {
            env.eventually("shop shows the new level", || {
                shop.fake.available("RESTOCK") == Some(40)
            })
            .await;
        }
    })
    .await;
}

/// The warehouse created the order, but its answer never arrived; then it
/// was down until the deadline. The saga must find the order it created and
/// cancel it before it releases the units: never a FAILED order that the
/// warehouse ships anyway.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_lost_answer_then_an_outage_ends_with_the_warehouse_order_cancelled(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| {
        s.saga_policy.fulfillment_deadline_secs = 4;
        s.saga_policy.attempt_timeout_secs = 3;
    })
    .await;
    let order = order_id(SHOPS[0], 91_301);
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 4242}))
                .set_delay(Duration::from_secs(3)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&env.wms)
        .await;
    Mock::given(method("GET"))
        .and(path("/wms/order"))
        .and(query_param("ReferenceIds", order.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 4242}])))
        .with_priority(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path("/wms/order/4242/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Cancelled"})))
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("LOST", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(91_301, &[("LOST", 2)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FAILED", "FULFILLMENT_REQUESTED"])
                .await,
            "FAILED"
        );
        assert_eq!(env.app.levels("LOST").await, (5, 0, 0));
        assert_eq!(
            env.status_history(order).await,
            ["RECEIVED", "RESERVED", "COMPENSATING", "FAILED"]
        );
    })
    .await;
}

/// A submit attempt outlives the deadline and the warehouse accepts it a
/// moment after the saga gave up: the late acceptance cannot mark the order
/// any more, the saga finds the order at the warehouse and cancels it, and
/// the order ends FAILED with its units back: not wedged.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_acceptance_after_the_deadline_never_wedges_the_order(pool: PgPool) {
    let mut env = saga_env_with(pool.clone(), |s| {
        s.saga_policy.fulfillment_deadline_secs = 2;
        s.saga_policy.attempt_timeout_secs = 6;
    })
    .await;
    env.worker.wms.timeout = Duration::from_secs(10);
    let order = order_id(SHOPS[0], 91_302);
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 7007}))
                .set_delay(Duration::from_secs(4)),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("GET"))
        .and(path("/wms/order"))
        .and(query_param("ReferenceIds", order.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 7007}])))
        .with_priority(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path("/wms/order/7007/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Cancelled"})))
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("LATE", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(91_302, &[("LATE", 1)]).await;
        assert_eq!(env.wait_for_status(order, &["FAILED"]).await, "FAILED");
        assert_eq!(env.app.levels("LATE").await, (3, 0, 0));
        let history = env.status_history(order).await;
        assert!(
            !history.iter().any(|s| s == "FULFILLMENT_REQUESTED"),
            "{history:?}"
        );
    })
    .await;
}

/// The warehouse has the order and will not cancel it (already picked):
/// nothing is released, and the order goes on at the warehouse.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_the_warehouse_keeps_goes_on_instead_of_failing(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| {
        s.saga_policy.fulfillment_deadline_secs = 3;
        s.saga_policy.attempt_timeout_secs = 2;
    })
    .await;
    let order = order_id(SHOPS[0], 91_303);
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&env.wms)
        .await;
    Mock::given(method("GET"))
        .and(path("/wms/order"))
        .and(query_param("ReferenceIds", order.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 8008}])))
        .with_priority(1)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path("/wms/order/8008/cancel"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"error": "order already picked"})),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("KEPT", 4).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(91_303, &[("KEPT", 1)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.app.levels("KEPT").await, (3, 1, 0), "still reserved");
        let notes = env.notifications(order).await;
        assert!(
            notes
                .iter()
                .any(|(k, _)| k == "fulfillment_kept_by_warehouse"),
            "{notes:?}"
        );
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert_eq!(detail["wmsOrderId"], "8008");
    })
    .await;
}
