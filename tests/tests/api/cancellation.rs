//! Shopify `orders/cancelled`: the cancellation goes through the order's
//! workflow; a redelivery changes nothing; after shipping nothing is
//! released and the order is flagged.

use serde_json::{Value, json};
use sqlx::PgPool;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    saga_support::{SHOPS, SagaEnv, order_id, order_payload, saga_env, wms_accepts},
    temporal::with_worker,
};

/// Shopify's `orders/cancelled` body: the order again, with the reason.
async fn cancel_in_shopify(env: &SagaEnv, shopify_id: u64) -> reqwest::Response {
    let mut body = order_payload(shopify_id, &[("UNUSED", 1)]);
    body["cancel_reason"] = json!("customer");
    body["cancelled_at"] = json!("2026-11-29T12:00:00+01:00");
    env.send_webhook(
        SHOPS[0],
        "orders/cancelled",
        &serde_json::to_vec(&body).unwrap(),
    )
    .await
}

fn wms_cancels() -> Mock {
    Mock::given(method("POST"))
        .and(path("/wms/order/555001/cancel"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 555_001, "status": "Cancelled"})),
        )
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_cancelled_in_shopify_is_cancelled_at_the_warehouse_and_its_units_released_once(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    wms_cancels().expect(1).mount(&env.wms).await;
    env.app.set_stock("GONE", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_501, &[("GONE", 2)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        let r = cancel_in_shopify(&env, 91_501).await;
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        assert!(
            answer["status"] == "cancelled" || answer["status"] == "cancelling",
            "{answer}"
        );
        assert_eq!(env.wait_for_status(order, &["CANCELLED"]).await, "CANCELLED");
        assert_eq!(env.app.levels("GONE").await, (5, 0, 0));
        let reason: String = sqlx::query_scalar(
            "SELECT reason FROM order_status_history WHERE order_id = $1 AND to_status = 'CANCELLED'",
        )
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(reason.contains("cancelled in Shopify (reason: customer)"), "{reason}");

        // Shopify redelivers: nothing more happens (the warehouse mock
        // expects exactly one cancel).
        let again = cancel_in_shopify(&env, 91_501).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
        assert_eq!(env.app.levels("GONE").await, (5, 0, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_after_shipping_releases_nothing_and_flags_the_order(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    wms_cancels().expect(0).mount(&env.wms).await;
    env.app.set_stock("SHIPPED-AWAY", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_502, &[("SHIPPED-AWAY", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let shipped = env.patch_status(order, "SHIPPED", None).await;
        assert_eq!(shipped.status(), 200);
        for _ in 0..2 {
            let r = cancel_in_shopify(&env, 91_502).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.json::<Value>().await.unwrap()["status"], "flagged");
        }
        assert_eq!(env.app.levels("SHIPPED-AWAY").await, (2, 0, 1));
        assert_eq!(env.status(order).await, "SHIPPED");
        let flags = env
            .notification_kinds(order)
            .await
            .into_iter()
            .filter(|k| k == "cancelled_after_shipping")
            .count();
        assert_eq!(flags, 1, "flagged once, however often Shopify redelivers");

        // The list shows it, and finds the orders that need a person.
        let flagged = env
            .app
            .get_json("/orders?notification=cancelled_after_shipping")
            .await;
        let items = flagged["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{flagged}");
        assert_eq!(items[0]["id"], order.to_string());
        assert_eq!(
            items[0]["notificationKinds"],
            json!(["cancelled_after_shipping"])
        );
        let none = env.app.get_json("/orders?notification=order_on_hold").await;
        assert_eq!(none["items"], json!([]));
        let bad = env.app.get("/orders?notification=DROP%20TABLE").await;
        let problem = crate::helpers::assert_problem(bad, 400, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "notification", "{problem}");
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_that_overtakes_its_order_is_dead_lettered_and_the_order_not_started(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    let r = cancel_in_shopify(&env, 91_503).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["status"], "dead_lettered");
    let (topic, error): (String, String) =
        sqlx::query_as("SELECT topic, error FROM webhook_dead_letters WHERE id = $1")
            .bind(answer["deadLetterId"].as_i64().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(topic, "orders/cancelled");
    assert!(error.contains("no order with Shopify id 91503"), "{error}");
    let orders = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(orders().await, 0);
    // The order itself arrives after its cancellation: it is not started.
    let body = serde_json::to_vec(&order_payload(91_503, &[("LATE", 1)])).unwrap();
    let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["status"], "ignored", "{answer}");
    assert_eq!(answer["orderId"], order_id(SHOPS[0], 91_503).to_string());
    assert_eq!(orders().await, 0, "nothing recorded, reserved or started");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_of_an_order_still_being_allocated_is_answered_503_for_redelivery(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    env.app.set_stock("EARLY", 1).await;
    // No worker runs: the order is recorded and its workflow waits, RECEIVED.
    let body = serde_json::to_vec(&order_payload(91_504, &[("EARLY", 1)])).unwrap();
    assert_eq!(
        env.send_webhook(SHOPS[0], "orders/create", &body)
            .await
            .status(),
        200
    );
    let r = cancel_in_shopify(&env, 91_504).await;
    let problem = crate::helpers::assert_problem(r, 503, "order_not_ready").await;
    assert!(problem["detail"].as_str().unwrap().contains("retry"));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_racing_the_warehouse_hand_over_is_applied_once_it_settles(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    // The warehouse takes its time to accept (within the client's 2 s
    // timeout): the cancellation arrives while the order is RESERVED and
    // the hand-over is on the wire.
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": 555_001, "status": "Processing"}))
                .set_delay(std::time::Duration::from_millis(1_500)),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    wms_cancels().expect(1).mount(&env.wms).await;
    env.app.set_stock("RACE", 2).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_505, &[("RACE", 2)]).await;
        assert_eq!(env.wait_for_status(order, &["RESERVED"]).await, "RESERVED");
        // Postgres says RESERVED a moment before the workflow has seen the
        // reservation (until then a cancellation is answered 503 and
        // Shopify redelivers): this test wants the workflow in RESERVED.
        let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
        let workflow = format!("order:shopify:{}:91505", SHOPS[0]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while orchestrator::query_order(&client, &workflow)
            .await
            .unwrap()
            .status
            != domain::OrderStatus::Reserved
        {
            assert!(std::time::Instant::now() < deadline, "never RESERVED");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let r = cancel_in_shopify(&env, 91_505).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("RACE").await, (2, 0, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_dead_lettered_cancellation_replays_into_its_order_once_that_is_replayed(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(r"^/wms/order/\d+/cancel$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Cancelled"})))
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("REPLAYED", 3).await;
    // An order an earlier release could not map, then its cancellation,
    // which finds no order.
    let store = db::Db::new(pool.clone(), &Default::default());
    let body = serde_json::to_vec(&order_payload(91_506, &[("REPLAYED", 2)])).unwrap();
    let order_letter = store
        .dead_letter(SHOPS[0], "orders/create", None, "unknown field", &body)
        .await
        .unwrap();
    let r = cancel_in_shopify(&env, 91_506).await;
    let cancel_letter = r.json::<Value>().await.unwrap()["deadLetterId"]
        .as_i64()
        .unwrap();
    let replayer = api::dead_letters::Replayer::new(
        store,
        env.worker.temporal.clone(),
        crate::saga_support::fast_policy(),
    );
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = order_id(SHOPS[0], 91_506);
        replayer.replay(order_letter, false).await.unwrap();
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        assert_eq!(env.app.levels("REPLAYED").await, (1, 2, 0));

        let outcome = replayer.replay(cancel_letter, false).await.unwrap();
        assert!(
            matches!(&outcome, api::dead_letters::ReplayOutcome::Processed { answer }
                if answer["status"] == "cancelled" || answer["status"] == "cancelling"),
            "{outcome:?}"
        );
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("REPLAYED").await, (3, 0, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_simulated_shop_signs_its_cancellation_so_the_api_cancels_the_order(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    wms_cancels().expect(1).mount(&env.wms).await;
    env.app.set_stock("SIM-CANCEL", 1).await;
    let stores = json!([{"shop": SHOPS[0], "webhook_secret": crate::saga_support::SECRET}]);
    let sink = simulator::ShopWebhookSink::new(env.app.url("/webhooks/shopify"), &stores).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = format!("http://{}", listener.local_addr().unwrap());
    let router = simulator::Simulator::new()
        .with_shop_webhooks(sink)
        .router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_507, &[("SIM-CANCEL", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let sent: Value = reqwest::Client::new()
            .post(format!(
                "{sim}/control/shops/{}/orders/91507/cancel",
                SHOPS[0]
            ))
            .json(&json!({"reason": "inventory"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sent["omsStatus"], 200, "{sent}");
        assert_eq!(sent["sent"]["topic"], "orders/cancelled");
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("SIM-CANCEL").await, (1, 0, 0));
    })
    .await;
}
