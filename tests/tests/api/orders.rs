//! The orders API: placement with idempotency keys, reads, lists, and the
//! status lifecycle driven through the order's workflow.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use crate::{
    helpers::{TestApp, assert_problem, seed_order, spawn_app},
    saga_support::{SagaEnv, saga_env, saga_env_with},
    temporal::with_worker,
};

fn order_body(lines: &[(&str, i64)]) -> Value {
    json!({
        "customerReference": "CUST-42",
        "lines": lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
        "shippingAddress": {"name": "Grace Hopper", "address1": "2 Harbor Rd", "city": "Hamburg",
                            "zip": "20095", "countryCode": "de"}
    })
}

async fn post_order(
    app: &TestApp,
    key: Option<&str>,
    prefer: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut r = app.client.post(app.url("/orders")).json(body);
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    if let Some(p) = prefer {
        r = r.header("prefer", p);
    }
    r.send().await.unwrap()
}

async fn patch_status(app: &TestApp, id: &str, status: &str) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/orders/{id}/status")))
        .json(&json!({"status": status}))
        .send()
        .await
        .unwrap()
}

/// The WMS cancelling its order 9001 (what `mount_wms` gives orders).
fn wms_cancels() -> Mock {
    Mock::given(method("POST"))
        .and(path_regex(r"^/wms/order/9001/cancel$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": 9001, "status": "Cancelled"})),
        )
}

/// Places an order through the API and waits until the WMS has it.
async fn place_until_fulfillment_requested(
    env: &SagaEnv,
    key: &str,
    lines: &[(&str, i64)],
) -> String {
    let placed: Value = post_order(&env.app, Some(key), None, &order_body(lines))
        .await
        .json()
        .await
        .unwrap();
    let id = placed["orderId"].as_str().unwrap().to_string();
    env.wait_for_status(id.parse().unwrap(), &["FULFILLMENT_REQUESTED"])
        .await;
    id
}

async fn mount_wms(env: &SagaEnv) {
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": 9001, "status": "Processing"})),
        )
        .mount(&env.wms)
        .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn placing_an_order_needs_an_idempotency_key_and_names_every_bad_field(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    assert_problem(
        post_order(&app, None, None, &order_body(&[("A", 1)])).await,
        400,
        "idempotency_key_required",
    )
    .await;
    let bad = json!({
        "customerReference": "",
        "lines": [{"sku": "", "quantity": 0}, {"sku": "OK", "quantity": 2.5}],
        "shippingAddress": {"name": "X", "address1": "", "city": "Y", "zip": "1", "countryCode": "Germany"}
    });
    let problem = assert_problem(
        post_order(&app, Some("k-1"), None, &bad).await,
        400,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "customerReference",
            "lines[0].sku",
            "lines[0].quantity",
            "lines[1].quantity",
            "shippingAddress.address1",
            "shippingAddress.countryCode"
        ]
    );
    let unknown_field =
        json!({"customerReference": "C", "lines": [], "shippingAddress": {}, "coupon": "FREE"});
    assert_problem(
        post_order(&app, Some("k-2"), None, &unknown_field).await,
        400,
        "invalid_body",
    )
    .await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing is recorded for a refused request");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_idempotency_key_names_one_order_and_a_different_body_is_refused(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    env.app.set_stock("IDEM", 10).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let body = order_body(&[("IDEM", 2)]);
        let first = post_order(&env.app, Some("key-A"), None, &body).await;
        assert_eq!(first.status(), 202);
        let location = first.headers()["location"].to_str().unwrap().to_string();
        let first: Value = first.json().await.unwrap();
        assert_eq!(
            location,
            format!("/orders/{}", first["orderId"].as_str().unwrap())
        );
        assert!(
            first["workflowId"]
                .as_str()
                .unwrap()
                .starts_with("order:api:")
        );

        // Same key, same body: the same order, sequentially and concurrently.
        let again: Value = post_order(&env.app, Some("key-A"), None, &body)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["orderId"], first["orderId"]);
        let burst = futures::future::join_all(
            (0..5).map(|_| post_order(&env.app, Some("key-A"), None, &body)),
        )
        .await;
        for r in burst {
            assert_eq!(r.status(), 202);
            assert_eq!(
                r.json::<Value>().await.unwrap()["orderId"],
                first["orderId"]
            );
        }
        // Same key, another body: refused.
        let other = post_order(&env.app, Some("key-A"), None, &order_body(&[("IDEM", 3)])).await;
        assert_problem(other, 422, "idempotency_key_reused").await;

        let id: Uuid = first["orderId"].as_str().unwrap().parse().unwrap();
        env.wait_for_status(id, &["FULFILLMENT_REQUESTED"]).await;
        assert_eq!(env.app.levels("IDEM").await, (8, 2, 0));
        let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(orders, 1);
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn control_characters_and_over_long_text_are_refused_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let mut body = order_body(&[("X", 1)]);
    body["customerReference"] = json!("A\u{0}B");
    body["shippingAddress"]["phone"] = json!("0".repeat(51));
    body["shippingAddress"]["address2"] = json!("line\nbreak");
    let problem = assert_problem(
        post_order(&app, Some("hygiene-1"), None, &body).await,
        400,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "customerReference",
            "shippingAddress.address2",
            "shippingAddress.phone"
        ]
    );
    // Refused at the edge: nothing claimed, nothing recorded.
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(keys, 0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_stock_level_that_would_overflow_the_counters_is_refused_with_the_room_left(
    pool: PgPool,
) {
    let app = spawn_app(pool.clone()).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    // Two orders of a billion units each hold two billion units RESERVED.
    for i in 0..2 {
        assert_eq!(app.set_stock("BIG", 1_000_000_000).await.status(), 200);
        let order = seed_order(&db, domain::Channel::Api, None, &format!("big-{i}")).await;
        let reserved = db
            .reserve_order(
                order,
                &[domain::LineQty {
                    line_no: 1,
                    sku: "BIG".into(),
                    quantity: 1_000_000_000,
                }],
            )
            .await
            .unwrap();
        assert!(matches!(reserved, domain::ReserveOutcome::Reserved { .. }));
    }
    assert_eq!(app.levels("BIG").await, (0, 2_000_000_000, 0));
    let p = assert_problem(
        app.set_stock("BIG", 1_000_000_000).await,
        409,
        "stock_total_too_large",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("147483647"), "{p}");
    // Up to the room that is left is fine, and releasing never overflows.
    assert_eq!(app.set_stock("BIG", 147_483_647).await.status(), 200);
    let orders: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM orders ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    for order in orders {
        db.release_order(order).await.unwrap();
    }
    assert_eq!(app.levels("BIG").await, (2_147_483_647, 0, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_first_use_of_a_key_that_races_a_concurrent_one_gets_an_answer_not_a_500(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    // Another request is claiming the key right now: its insert is not yet
    // committed.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ('race-key', 'another body', $1)",
    )
    .bind(Uuid::new_v4())
    .execute(&mut *holder)
    .await
    .unwrap();
    let request = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/orders"));
        async move {
            client
                .post(url)
                .header("idempotency-key", "race-key")
                .json(&order_body(&[("RACE", 1)]))
                .send()
                .await
                .unwrap()
        }
    });
    // Our request's claim now waits for the holder's transaction.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO idempotency_keys%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the claim never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    holder.commit().await.unwrap();
    // It sees the committed claim: another body, so 422 — never a 500.
    assert_problem(request.await.unwrap(), 422, "idempotency_key_reused").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_orders_reservation_cannot_be_released_or_sold_through_the_stock_api(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    app.set_stock("X", 5).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let order = seed_order(&db, domain::Channel::Api, None, "owned").await;
    let reserved = db
        .reserve_order(
            order,
            &[domain::LineQty {
                line_no: 1,
                sku: "X".into(),
                quantity: 1,
            }],
        )
        .await
        .unwrap();
    assert!(matches!(reserved, domain::ReserveOutcome::Reserved { .. }));
    let token: Uuid = sqlx::query_scalar("SELECT token FROM reservations WHERE order_id = $1")
        .bind(order)
        .fetch_one(&pool)
        .await
        .unwrap();
    for r in [
        app.unreserve("X", &token.to_string()).await,
        app.sold("X", &token.to_string()).await,
    ] {
        let p = assert_problem(r, 409, "reservation_held_by_order").await;
        assert!(
            p["detail"].as_str().unwrap().contains(&order.to_string()),
            "{p}"
        );
    }
    assert_eq!(app.levels("X").await, (4, 1, 0), "nothing changed");
    // The order shows its reservations, but no token to misuse.
    let detail = app.get_json(&format!("/orders/{order}")).await;
    assert_eq!(detail["reservations"][0]["state"], "RESERVED");
    assert!(detail["reservations"][0].get("token").is_none(), "{detail}");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_client_that_asks_to_wait_gets_the_reservation_outcome(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    env.app.set_stock("WAIT", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let ok = post_order(
            &env.app,
            Some("wait-1"),
            Some("wait=20"),
            &order_body(&[("WAIT", 1)]),
        )
        .await;
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["preference-applied"], "wait");
        let body: Value = ok.json().await.unwrap();
        assert!(
            ["RESERVED", "FULFILLMENT_REQUESTED"].contains(&body["status"].as_str().unwrap()),
            "{body}"
        );
        assert_eq!(body["lines"][0]["sku"], "WAIT");

        let short = post_order(
            &env.app,
            Some("wait-2"),
            Some("wait=20"),
            &order_body(&[("WAIT", 1), ("NOPE", 1)]),
        )
        .await;
        let problem = assert_problem(short, 409, "order_rejected").await;
        let reasons = problem["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 2, "{problem}");
        assert!(
            reasons[0].as_str().unwrap().contains("insufficient stock"),
            "{problem}"
        );
        assert!(
            reasons[1].as_str().unwrap().contains("unknown"),
            "{problem}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_runs_from_placement_to_delivered_through_the_api(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    env.app.set_stock("LIFE", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let id = place_until_fulfillment_requested(&env, "life-1", &[("LIFE", 2)]).await;

        // Not yet shipped: DELIVERED is illegal, and the answer says what is allowed.
        let p = assert_problem(
            patch_status(&env.app, &id, "DELIVERED").await,
            409,
            "illegal_transition",
        )
        .await;
        assert_eq!(p["currentStatus"], "FULFILLMENT_REQUESTED");
        assert_eq!(
            p["allowedStatuses"],
            json!(["SHIPPED", "CANCELLED", "ON_HOLD"])
        );
        assert_problem(
            patch_status(&env.app, &id, "LOST").await,
            400,
            "validation_failed",
        )
        .await;

        let shipped = env
            .app
            .client
            .patch(env.app.url(&format!("/orders/{id}/status")))
            .json(&json!({"status": "SHIPPED", "reason": "picked up by DHL"}))
            .send()
            .await
            .unwrap();
        assert_eq!(shipped.status(), 200);
        let shipped: Value = shipped.json().await.unwrap();
        assert_eq!(shipped["status"], "SHIPPED");
        assert_eq!(shipped["reservations"][0]["state"], "SOLD");
        // The client's reason is the history's.
        assert_eq!(shipped["history"][3]["toStatus"], "SHIPPED");
        assert_eq!(shipped["history"][3]["reason"], "picked up by DHL");
        assert_eq!(env.app.levels("LIFE").await, (3, 0, 2));

        let p = assert_problem(
            patch_status(&env.app, &id, "CANCELLED").await,
            409,
            "illegal_transition",
        )
        .await;
        assert_eq!(p["allowedStatuses"], json!(["DELIVERED"]));
        let delivered: Value = patch_status(&env.app, &id, "DELIVERED")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(delivered["status"], "DELIVERED");
        let history: Vec<&str> = delivered["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["toStatus"].as_str().unwrap())
            .collect();
        assert_eq!(
            history,
            [
                "RECEIVED",
                "RESERVED",
                "FULFILLMENT_REQUESTED",
                "SHIPPED",
                "DELIVERED"
            ]
        );
        let p = assert_problem(
            patch_status(&env.app, &id, "SHIPPED").await,
            409,
            "illegal_transition",
        )
        .await;
        assert_eq!(p["allowedStatuses"], json!([]));
        assert!(
            delivered["temporalUrl"]
                .as_str()
                .unwrap()
                .contains("/workflows/order:api:"),
            "{delivered}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn cancelling_before_shipping_cancels_the_warehouse_order_releases_and_resyncs(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    wms_cancels().expect(1).mount(&env.wms).await;
    env.app.set_stock("CANCEL", 6).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let id = place_until_fulfillment_requested(&env, "cancel-1", &[("CANCEL", 4)]).await;
        for shop in &env.shops {
            env.eventually("shop at 2", || shop.fake.available("CANCEL") == Some(2))
                .await;
        }
        let cancelled = patch_status(&env.app, &id, "CANCELLED").await;
        assert_eq!(cancelled.status(), 200);
        let cancelled: Value = cancelled.json().await.unwrap();
        assert_eq!(cancelled["status"], "CANCELLED");
        assert_eq!(cancelled["reservations"][0]["state"], "RELEASED");
        assert_eq!(env.app.levels("CANCEL").await, (6, 0, 0));
        for shop in &env.shops {
            env.eventually("shop re-synced to 6", || {
                shop.fake.available("CANCEL") == Some(6)
            })
            .await;
        }
        let notes = env.notifications(id.parse().unwrap()).await;
        assert!(
            notes.iter().any(|(k, _)| k == "order_cancelled"),
            "{notes:?}"
        );
        assert_problem(
            patch_status(&env.app, &id, "SHIPPED").await,
            409,
            "illegal_transition",
        )
        .await;
    })
    .await;
}

/// A shop that answers correctly, but slowly.
struct SlowShop(crate::fakes::FakeShop, std::time::Duration);

impl wiremock::Respond for SlowShop {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        wiremock::Respond::respond(&self.0, request).set_delay(self.1)
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_can_be_cancelled_as_soon_as_the_warehouse_has_it_while_a_slow_shop_still_syncs(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    wms_cancels().expect(1).mount(&env.wms).await;
    // Store B takes 1.5 s per call (under the client's 2 s timeout), so the
    // order's channel sync is still running when the WMS has accepted it.
    let slow = &env.shops[1];
    Mock::given(method("POST"))
        .respond_with(SlowShop(
            slow.fake.clone(),
            std::time::Duration::from_millis(1_500),
        ))
        .with_priority(1)
        .mount(&slow.server)
        .await;
    env.app.set_stock("SLOWSYNC", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        // GET /orders/{id} says FULFILLMENT_REQUESTED from here on...
        let id = place_until_fulfillment_requested(&env, "slow-1", &[("SLOWSYNC", 2)]).await;
        // ...so a client may cancel now, sync or no sync.
        let cancelled = patch_status(&env.app, &id, "CANCELLED").await;
        assert_eq!(cancelled.status(), 200, "{:?}", cancelled.text().await);
        assert_eq!(env.app.levels("SLOWSYNC").await, (5, 0, 0));
        env.eventually("slow shop re-synced to 5", || {
            slow.fake.available("SLOWSYNC") == Some(5)
        })
        .await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_warehouse_that_refuses_to_cancel_leaves_the_order_as_it_was(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    mount_wms(&env).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/wms/order/\d+/cancel$"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"": ["Order already picked"]})),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("PICKED", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let id = place_until_fulfillment_requested(&env, "picked-1", &[("PICKED", 1)]).await;
        let p = assert_problem(
            patch_status(&env.app, &id, "CANCELLED").await,
            409,
            "transition_refused",
        )
        .await;
        assert!(
            p["detail"].as_str().unwrap().contains("already picked"),
            "{p}"
        );
        assert_eq!(env.app.levels("PICKED").await, (2, 1, 0));
        wait_for_notification(&env, &id, "status_change_failed").await;
        // It can still ship.
        assert_eq!(patch_status(&env.app, &id, "SHIPPED").await.status(), 200);
    })
    .await;
}

/// The warehouse answers 503 to this many cancel calls, then as `then`.
async fn wms_cancel_fails_then(env: &SagaEnv, failures: u64, then: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/wms/order/9001/cancel$"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(failures)
        .with_priority(1)
        .expect(failures)
        .mount(&env.wms)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/wms/order/9001/cancel$"))
        .respond_with(then)
        .with_priority(2)
        .expect(1)
        .mount(&env.wms)
        .await;
}

/// Waits until the order's detail has a notification of `kind`.
async fn wait_for_notification(env: &SagaEnv, id: &str, kind: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let detail = env.app.get_json(&format!("/orders/{id}")).await;
        if let Some(n) = detail["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == kind)
        {
            return n.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {kind} notification: {detail}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A cancellation holds no HTTP request for as long as the warehouse takes:
/// once the workflow has accepted it the client gets 202 and where to look,
/// further changes are refused while it runs, and it completes on its own.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_the_warehouse_is_slow_to_confirm_answers_202_and_completes_later(
    pool: PgPool,
) {
    let env = saga_env_with(pool.clone(), |s| {
        s.status_change_wait = std::time::Duration::from_millis(500);
    })
    .await;
    mount_wms(&env).await;
    // Backing off from 100 ms, six refusals take seconds.
    wms_cancel_fails_then(
        &env,
        6,
        ResponseTemplate::new(200).set_body_json(json!({"id": 9001, "status": "Cancelled"})),
    )
    .await;
    env.app.set_stock("SLOWCANCEL", 4).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let id =
            place_until_fulfillment_requested(&env, "slow-cancel-1", &[("SLOWCANCEL", 1)]).await;

        let accepted = patch_status(&env.app, &id, "CANCELLED").await;

        assert_eq!(accepted.status(), 202);
        assert_eq!(
            accepted.headers()["location"].to_str().unwrap(),
            format!("/orders/{id}")
        );
        let body: Value = accepted.json().await.unwrap();
        assert_eq!(body["status"], "FULFILLMENT_REQUESTED");
        assert_eq!(body["requestedStatus"], "CANCELLED");
        let p = assert_problem(
            patch_status(&env.app, &id, "SHIPPED").await,
            409,
            "transition_refused",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("in progress"), "{p}");
        env.wait_for_status(id.parse().unwrap(), &["CANCELLED"])
            .await;
        assert_eq!(env.app.levels("SLOWCANCEL").await, (4, 0, 0));
    })
    .await;
}

/// A cancellation answered 202 that the warehouse then refuses for good:
/// the order keeps its status, says why in its notifications, and takes
/// the next change.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_cancellation_refused_after_its_202_is_recorded_on_the_order(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| {
        s.status_change_wait = std::time::Duration::from_millis(500);
    })
    .await;
    mount_wms(&env).await;
    wms_cancel_fails_then(
        &env,
        6,
        ResponseTemplate::new(422).set_body_json(json!({"": ["Order already picked"]})),
    )
    .await;
    env.app.set_stock("LATEPICK", 4).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let id = place_until_fulfillment_requested(&env, "late-pick-1", &[("LATEPICK", 1)]).await;

        assert_eq!(patch_status(&env.app, &id, "CANCELLED").await.status(), 202);

        let note = wait_for_notification(&env, &id, "status_change_failed").await;
        let message = note["message"].as_str().unwrap();
        assert!(message.contains("CANCELLED"), "{message}");
        assert!(message.contains("already picked"), "{message}");
        assert_eq!(
            env.app.get_json(&format!("/orders/{id}")).await["status"],
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.app.levels("LATEPICK").await, (3, 1, 0));
        let shipped = patch_status(&env.app, &id, "SHIPPED").await;
        assert_eq!(shipped.status(), 200, "{:?}", shipped.text().await);
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn orders_are_listed_newest_first_with_filters_and_cursor_pagination(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    // Seed the read model directly: this test is about reads, not the saga.
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let mut ids = Vec::new();
    for i in 0..7 {
        let channel = if i % 2 == 0 {
            domain::Channel::Api
        } else {
            domain::Channel::Shopify
        };
        let shop = (i % 2 == 1).then_some("store-a.myshopify.com");
        ids.push(seed_order(&db, channel, shop, &format!("ext-{i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.url("/orders?limit=3");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every order once: {seen:?}");
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 7);

    let api: Value = app.get_json("/orders?channel=api&status=RECEIVED").await;
    assert_eq!(api["items"].as_array().unwrap().len(), 4);
    assert!(
        api["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["channel"] == "api" && o["shop"].is_null())
    );
    let future: Value = app
        .get_json("/orders?createdFrom=2999-01-01T00:00:00Z")
        .await;
    assert!(future["items"].as_array().unwrap().is_empty());

    let bad = app
        .get("/orders?status=NOPE&limit=0&createdTo=yesterday&cursor=zzz")
        .await;
    let p = assert_problem(bad, 400, "validation_failed").await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["status", "createdTo", "limit", "cursor"]);

    let one: Value = app.get_json(&format!("/orders/{}", ids[0])).await;
    assert_eq!(one["lines"][0]["unitPrice"], "1.5000");
    assert_eq!(one["history"][0]["toStatus"], "RECEIVED");
    assert_problem(
        app.get(&format!("/orders/{}", Uuid::new_v4())).await,
        404,
        "order_not_found",
    )
    .await;
    assert_problem(app.get("/orders/not-a-uuid").await, 400, "invalid_order_id").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn products_are_listed_in_sku_order_with_their_levels(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (i, sku) in ["C", "A", "E", "B", "D"].iter().enumerate() {
        app.set_stock(sku, i as i64).await;
    }
    let first: Value = app.get_json("/products?limit=2").await;
    assert_eq!(
        first["items"],
        json!([{"sku": "A", "IN_STOCK": 1, "RESERVED": 0, "SOLD": 0}, {"sku": "B", "IN_STOCK": 3, "RESERVED": 0, "SOLD": 0}])
    );
    let next = first["nextCursor"].as_str().unwrap();
    let second: Value = app
        .get_json(&format!("/products?limit=3&cursor={next}"))
        .await;
    let skus: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["C", "D", "E"]);
    assert_problem(
        app.get("/products?limit=1000").await,
        400,
        "validation_failed",
    )
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn saga_owned_and_final_statuses_refuse_every_requested_move(pool: PgPool) {
    // The API refuses these from the stored status, before any workflow is asked.
    let app = spawn_app(pool.clone()).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let cases = [
        (domain::OrderStatus::Received, None),
        (
            domain::OrderStatus::Rejected,
            Some(domain::OrderStatus::Rejected),
        ),
        (domain::OrderStatus::Failed, None),
    ];
    for (i, (expected, to)) in cases.into_iter().enumerate() {
        let order_id = seed_order(&db, domain::Channel::Api, None, &format!("final-{i}")).await;
        if let Some(to) = to {
            db.transition_order(order_id, Some(to), Some("test"), &[], None)
                .await
                .unwrap();
        }
        if expected == domain::OrderStatus::Failed {
            // FAILED is reached from RESERVED.
            sqlx::query("UPDATE orders SET status = 'RESERVED' WHERE id = $1")
                .bind(order_id)
                .execute(&pool)
                .await
                .unwrap();
            db.transition_order(order_id, Some(expected), Some("test"), &[], None)
                .await
                .unwrap();
        }
        for requested in [
            "SHIPPED",
            "DELIVERED",
            "CANCELLED",
            "RESERVED",
            "FULFILLMENT_REQUESTED",
        ] {
            let p = assert_problem(
                patch_status(&app, &order_id.to_string(), requested).await,
                409,
                "illegal_transition",
            )
            .await;
            assert_eq!(p["currentStatus"], expected.as_str(), "{p}");
            assert_eq!(p["allowedStatuses"], json!([]), "{p}");
        }
    }
    assert_problem(
        patch_status(&app, &Uuid::new_v4().to_string(), "SHIPPED").await,
        404,
        "order_not_found",
    )
    .await;
}
