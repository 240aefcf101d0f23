//! The warehouse's webhooks: Standard Webhooks signatures, then shipments,
//! deliveries and exceptions through the order's workflow.

use std::time::{SystemTime, UNIX_EPOCH};

use api::WmsWebhookKey;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    helpers::{TestApp, assert_problem, spawn_app_with, test_settings},
    saga_support::{SagaEnv, saga_env, wms_accepts},
    temporal::with_worker,
};

fn key() -> WmsWebhookKey {
    WmsWebhookKey::parse(&format!(
        "whsec_{}",
        STANDARD.encode(b"a warehouse webhook key")
    ))
    .unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends `body` as the warehouse would, signed at `at` with `key`.
async fn deliver_signed(
    app: &TestApp,
    key: &WmsWebhookKey,
    at: i64,
    topic: &str,
    body: &Value,
) -> reqwest::Response {
    let body = serde_json::to_vec(body).unwrap();
    let id = format!("msg_{}", Uuid::new_v4().simple());
    // The warehouse sends no API key.
    reqwest::Client::new()
        .post(app.url("/webhooks/wms"))
        .header("webhook-id", &id)
        .header("webhook-timestamp", at.to_string())
        .header("webhook-signature", key.sign(&id, at, &body))
        .header("x-webhook-topic", topic)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn deliver(app: &TestApp, topic: &str, body: &Value) -> reqwest::Response {
    deliver_signed(app, &key(), now(), topic, body).await
}

/// The environment with an API that knows the warehouse's key.
async fn env_with_key(pool: PgPool) -> SagaEnv {
    let mut env = saga_env(pool.clone()).await;
    let mut settings = test_settings();
    settings.shops = env.worker.shops.clone();
    settings.temporal = env.worker.temporal.clone();
    settings.saga_policy = crate::saga_support::fast_policy();
    settings.wms_webhook_key = Some(key());
    env.app = spawn_app_with(pool, settings).await;
    env
}

fn shipped(order: Uuid) -> Value {
    json!({"id": 555_001, "reference_id": order.to_string(), "status": "Completed",
           "shipments": [{"id": 1, "status": "Completed",
               "tracking": {"carrier": "USPS", "tracking_number": "9400100000000000000000",
                            "tracking_url": "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000000"}}]})
}

/// The first shop's fulfillments once there are `n` (or a panic after 30 s).
async fn wait_for_fulfillments(env: &SagaEnv, n: usize) -> Vec<(String, Option<String>, bool)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = env.shops[0].fake.fulfillments();
        if found.len() >= n {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "{found:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_shipment_reported_by_the_warehouse_ships_the_order_sells_its_units_and_keeps_the_tracking(
    pool: PgPool,
) {
    let env = env_with_key(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("PARCEL", 4).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_601, &[("PARCEL", 3)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;

        let r = deliver(&env.app, "order.shipped", &shipped(order)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "shipped");
        assert_eq!(env.wait_for_status(order, &["SHIPPED"]).await, "SHIPPED");
        assert_eq!(env.app.levels("PARCEL").await, (1, 0, 3));
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert_eq!(detail["tracking"]["carrier"], "USPS");
        assert_eq!(detail["tracking"]["number"], "9400100000000000000000");

        // Shopify is told, with the tracking, and mails the customer.
        let fulfilled = wait_for_fulfillments(&env, 1).await;
        assert_eq!(
            fulfilled,
            [(
                "gid://shopify/Order/91601".to_string(),
                Some("9400100000000000000000".to_string()),
                true
            )]
        );

        // Redelivered: nothing more is sold, nothing more reported.
        let again = deliver(&env.app, "order.shipped", &shipped(order)).await;
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
        assert_eq!(env.shops[0].fake.fulfillments().len(), 1);

        // A later carrier update changes the tracking, here and in Shopify,
        // whose customer is told again.
        let mut update = shipped(order);
        update["shipments"][0]["tracking"]["tracking_number"] = json!("NEW-NUMBER");
        let r = deliver(&env.app, "order.shipment.tracking.updated", &update).await;
        let answered: Value = r.json().await.unwrap();
        assert_eq!(answered["status"], "tracking_recorded", "{answered}");
        assert_eq!(answered["reportedToShop"], true, "{answered}");
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert_eq!(detail["tracking"]["number"], "NEW-NUMBER");
        env.eventually("Shopify shows the new tracking number", || {
            env.shops[0].fake.fulfillments()
                == [(
                    "gid://shopify/Order/91601".to_string(),
                    Some("NEW-NUMBER".to_string()),
                    true,
                )]
        })
        .await;
        assert_eq!(env.shops[0].fake.tracking_updates(), 1);
        // Redelivered: Shopify already shows it, so nothing is written and
        // the customer is not mailed twice.
        let r = deliver(&env.app, "order.shipment.tracking.updated", &update).await;
        assert_eq!(r.status(), 200);
        let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
        let workflow = format!("order:shopify:{}:91601", crate::saga_support::SHOPS[0]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !orchestrator::query_order(&client, &workflow)
            .await
            .unwrap()
            .steps
            .iter()
            .any(|s| s.contains("already shows this tracking"))
        {
            assert!(std::time::Instant::now() < deadline, "not reported again");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(env.shops[0].fake.tracking_updates(), 1);

        let delivered = json!({"reference_id": order.to_string()});
        let r = deliver(&env.app, "order.delivered", &delivered).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "delivered");
        let again = deliver(&env.app, "order.delivered", &delivered).await;
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
        assert_eq!(env.status(order).await, "DELIVERED");
        assert_eq!(env.app.levels("PARCEL").await, (1, 0, 3));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_delivery_that_overtakes_its_shipment_ships_the_order_first(pool: PgPool) {
    let env = env_with_key(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("EARLY-BIRD", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_602, &[("EARLY-BIRD", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let r = deliver(
            &env.app,
            "order.shipment.delivered",
            &json!({"order": {"reference_id": order.to_string()}}),
        )
        .await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        assert_eq!(
            env.wait_for_status(order, &["DELIVERED"]).await,
            "DELIVERED"
        );
        assert_eq!(env.app.levels("EARLY-BIRD").await, (0, 0, 1));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_exception_puts_the_order_on_hold_until_lifted_and_an_unknown_reference_is_dead_lettered(
    pool: PgPool,
) {
    let env = env_with_key(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("STUCK", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_603, &[("STUCK", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let exception = json!({"reference_id": order.to_string()});
        let r = deliver(&env.app, "order.shipment.exception", &exception).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "on_hold");
        assert_eq!(env.status(order).await, "ON_HOLD");
        assert!(
            env.notification_kinds(order)
                .await
                .contains(&"order_on_hold".to_string())
        );
        // Still held: the units too.
        assert_eq!(env.app.levels("STUCK").await, (0, 1, 0));
        let metrics = env.app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains("oms_orders_open{status=\"ON_HOLD\"} 1"),
            "{metrics}"
        );

        // Redelivered, or put on hold again: nothing changes.
        let r = deliver(&env.app, "order.shipment.on_hold", &exception).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "duplicate");

        // Someone sorted it out and lifts the hold; then the warehouse ships.
        let r = env
            .patch_status(order, "FULFILLMENT_REQUESTED", Some("address confirmed"))
            .await;
        assert!(r.status().is_success(), "{:?}", r.text().await);
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        deliver(&env.app, "order.shipment.on_hold", &exception).await;
        env.wait_for_status(order, &["ON_HOLD"]).await;
        let r = deliver(&env.app, "order.shipped", &shipped(order)).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "shipped");
        assert_eq!(env.wait_for_status(order, &["SHIPPED"]).await, "SHIPPED");
        assert_eq!(env.app.levels("STUCK").await, (0, 0, 1));
        // An exception after shipping is the carrier's: flagged only.
        let r = deliver(&env.app, "order.shipment.exception", &exception).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "flagged");
        assert_eq!(env.status(order).await, "SHIPPED");
    })
    .await;
    let stranger = Uuid::new_v4();
    let r = deliver(&env.app, "order.shipped", &shipped(stranger)).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["status"], "dead_lettered");
    let (shop, topic): (String, String) =
        sqlx::query_as("SELECT shop_domain, topic FROM webhook_dead_letters WHERE id = $1")
            .bind(answer["deadLetterId"].as_i64().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((shop.as_str(), topic.as_str()), ("wms", "order.shipped"));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn unsigned_wrongly_signed_and_stale_warehouse_events_are_refused_and_change_nothing(
    pool: PgPool,
) {
    let env = env_with_key(pool.clone()).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let order = crate::helpers::seed_order(&db, domain::Channel::Api, None, "wms-refused").await;
    let body = shipped(order);
    let other = WmsWebhookKey::parse(&format!(
        "whsec_{}",
        STANDARD.encode(b"somebody else's key!")
    ))
    .unwrap();
    for r in [
        deliver_signed(&env.app, &other, now(), "order.shipped", &body).await,
        deliver_signed(&env.app, &key(), now() - 600, "order.shipped", &body).await,
        deliver_signed(&env.app, &key(), now() + 600, "order.shipped", &body).await,
        reqwest::Client::new()
            .post(env.app.url("/webhooks/wms"))
            .header("x-webhook-topic", "order.shipped")
            .json(&body)
            .send()
            .await
            .unwrap(),
    ] {
        assert_problem(r, 401, "webhook_unauthorized").await;
    }
    assert_eq!(env.status(order).await, "RECEIVED");
    let tracking: Option<Value> = sqlx::query_scalar("SELECT tracking FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(tracking.is_none());
    // Without a configured key every event is refused.
    let unconfigured = crate::helpers::spawn_app(pool.clone()).await;
    assert_problem(
        deliver(&unconfigured, "order.shipped", &body).await,
        401,
        "webhook_unauthorized",
    )
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_shipment_shopify_will_not_take_ships_the_order_all_the_same_and_says_so(pool: PgPool) {
    let env = env_with_key(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("NO-REPORT", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_604, &[("NO-REPORT", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        // The shop is down for longer than the report may keep trying.
        env.shops[0].fake.set_mode(simulator::ShopMode::Down);
        let r = deliver(&env.app, "order.shipped", &shipped(order)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(env.wait_for_status(order, &["SHIPPED"]).await, "SHIPPED");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let kinds = env.notification_kinds(order).await;
            if kinds.iter().any(|k| k == "shipment_not_reported") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{kinds:?}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(env.app.levels("NO-REPORT").await, (0, 0, 1));
        assert!(env.shops[0].fake.fulfillments().is_empty());
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_simulated_warehouse_signs_its_events_so_the_api_accepts_them(pool: PgPool) {
    let secret = format!("whsec_{}", STANDARD.encode(b"a warehouse webhook key"));
    let mut settings = test_settings();
    settings.wms_webhook_key = Some(key());
    let app = spawn_app_with(pool.clone(), settings).await;
    let sink = simulator::EventSink::new(app.url("/webhooks/wms"), &secret).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = format!("http://{}", listener.local_addr().unwrap());
    let router = simulator::Simulator::with_events(sink).router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let order = crate::helpers::seed_order(&db, domain::Channel::Api, None, "sim-event").await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let http = http.clone();
        async move {
            let answer = http.post(url).json(&body).send().await.unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };
    let created = post(
        format!("{sim}/wms/2026-07/order"),
        json!({"reference_id": order.to_string(), "order_number": "#1", "type": "DTC",
               "shipping_method": "Standard", "recipient": {"name": "N"},
               "products": [{"reference_id": "X", "name": "X", "quantity": 1}]}),
    )
    .await;
    let wms_id = created["id"].as_u64().unwrap();
    let sent = post(
        format!("{sim}/control/wms/orders/{wms_id}/ship"),
        json!({"carrier": "DHL", "tracking_number": "JD0001"}),
    )
    .await;
    // Verified (not 401): the order is still RECEIVED, so the API asks the
    // warehouse to come back, and has kept the tracking.
    assert_eq!(sent["omsStatus"], 503, "{sent}");
    assert_eq!(sent["omsAnswer"]["code"], "order_not_ready", "{sent}");
    let tracking: Value = sqlx::query_scalar("SELECT tracking FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tracking["number"], "JD0001");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_shipment_for_an_order_not_known_yet_is_dead_lettered_then_replayed_into_it(
    pool: PgPool,
) {
    let env = env_with_key(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("EARLY-NEWS", 2).await;
    let replayer = api::dead_letters::Replayer::new(
        db::Db::new(pool.clone(), &Default::default()),
        env.worker.temporal.clone(),
        crate::saga_support::fast_policy(),
    );
    let dead_letters = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM webhook_dead_letters")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    with_worker(env.worker.clone(), pool.clone(), async {
        // The warehouse's news arrives before the OMS has the order (say it
        // was restored from a backup taken a moment earlier).
        let order = crate::saga_support::order_id(crate::saga_support::SHOPS[0], 91_605);
        let r = deliver(&env.app, "order.shipped", &shipped(order)).await;
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["status"], "dead_lettered");
        let letter = answer["deadLetterId"].as_i64().unwrap();

        // Too early still: it stays dead-lettered, and no second row is made.
        let outcome = replayer.replay(letter, false).await.unwrap();
        assert!(
            matches!(&outcome, api::dead_letters::ReplayOutcome::StillInvalid { reason } if reason.contains("no order")),
            "{outcome:?}"
        );
        assert_eq!(dead_letters().await, 1);

        env.place(91_605, &[("EARLY-NEWS", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let outcome = replayer.replay(letter, false).await.unwrap();
        match &outcome {
            api::dead_letters::ReplayOutcome::Processed { answer } => {
                assert_eq!(answer["status"], "shipped", "{answer}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(env.wait_for_status(order, &["SHIPPED"]).await, "SHIPPED");
        assert_eq!(env.app.levels("EARLY-NEWS").await, (1, 0, 1));
        // Replayed once; a second replay needs --force and changes nothing.
        assert!(replayer.replay(letter, false).await.is_err());
        let again = replayer.replay(letter, true).await.unwrap();
        assert!(
            matches!(&again, api::dead_letters::ReplayOutcome::Processed { answer } if answer["status"] == "duplicate"),
            "{again:?}"
        );
        assert_eq!(dead_letters().await, 1);
    })
    .await;
}
