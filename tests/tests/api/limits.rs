//! Rate limiting and back-pressure at the edge.

use std::time::Duration;

use api::{LimitSettings, Rate};
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{assert_problem, client_with_key, issue_key, spawn_app_with, test_settings},
    saga_support::{SECRET, SHOPS, order_payload, saga_env, sign},
};

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_are_unaffected(pool: PgPool) {
    let mut settings = test_settings();
    settings.limits = LimitSettings {
        client: Rate::new(0.5, 3.0).unwrap(),
        ..LimitSettings::unlimited()
    };
    let app = spawn_app_with(pool.clone(), settings).await;
    let noisy = client_with_key(&issue_key(&pool, "noisy", &["inventory:read"]).await);
    let quiet = client_with_key(&issue_key(&pool, "quiet", &["inventory:read"]).await);
    for _ in 0..3 {
        let r = noisy.get(app.url("/product/X")).send().await.unwrap();
        assert_eq!(r.status(), 404, "within the burst");
    }
    let limited = noisy.get(app.url("/product/X")).send().await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&retry_after),
        "retry after {retry_after} s"
    );
    assert_problem(limited, 429, "rate_limited").await;
    // A client cannot pick another bucket by saying who it is.
    let dodging = noisy
        .get(app.url("/product/X"))
        .header("x-client-id", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(dodging.status(), 429);
    // Another key has its own bucket; health checks are never limited.
    let r = quiet.get(app.url("/product/X")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let health = noisy.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_key_with_a_rate_of_its_own_is_held_to_it(pool: PgPool) {
    let mut settings = test_settings();
    settings.limits = LimitSettings {
        client: Rate::new(100.0, 100.0).unwrap(),
        ..LimitSettings::unlimited()
    };
    let app = spawn_app_with(pool.clone(), settings).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    let batch = api::api_keys::issue_key(
        &db,
        "nightly-batch",
        &["inventory:read"],
        Some(Rate::new(0.1, 2.0).unwrap()),
    )
    .await
    .unwrap();
    let batch = client_with_key(&batch.key);
    let statuses = statuses_of(&batch, &app.url("/product/X"), 3).await;
    assert_eq!(statuses, [404, 404, 429]);
}

async fn statuses_of(client: &reqwest::Client, url: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(client.get(url).send().await.unwrap().status().as_u16());
    }
    statuses
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn strangers_share_one_small_budget_that_spends_no_ones_quota(pool: PgPool) {
    let mut settings = test_settings();
    settings.limits = LimitSettings {
        client: Rate::new(0.1, 1.0).unwrap(),
        unauthenticated: Rate::new(0.1, 5.0).unwrap(),
        ..LimitSettings::unlimited()
    };
    let app = spawn_app_with(pool.clone(), settings).await;
    let anonymous = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..200 {
        // Every request guesses another key: none gets a bucket of its own.
        let r = anonymous
            .get(app.url("/product/X"))
            .bearer_auth(format!("oms_guess-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 195);
    // The one real key still has its whole (one-request) burst.
    assert_eq!(app.get("/product/X").await.status(), 404);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn webhooks_have_their_own_limit_per_shop(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    let mut settings = test_settings();
    settings.shops = env.worker.shops.clone();
    settings.temporal = env.worker.temporal.clone();
    settings.limits = LimitSettings {
        webhook: Rate::new(0.1, 1.0).unwrap(),
        ..LimitSettings::unlimited()
    };
    env.app = spawn_app_with(pool, settings).await;
    let body = serde_json::to_vec(&order_payload(1, &[("X", 1)])).unwrap();
    assert_eq!(
        env.send_webhook(SHOPS[0], "orders/updated", &body)
            .await
            .status(),
        200
    );
    assert_problem(
        env.send_webhook(SHOPS[0], "orders/updated", &body).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        env.send_webhook(SHOPS[1], "orders/updated", &body)
            .await
            .status(),
        200,
        "other shop"
    );
    // The client API is not limited by the webhooks' bucket.
    assert_eq!(env.app.get_product("X").await.status(), 404);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn requests_beyond_the_in_flight_bound_are_shed_with_503(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    let mut settings = test_settings();
    settings.temporal = env.worker.temporal.clone();
    settings.limits = LimitSettings {
        max_in_flight: 1,
        ..LimitSettings::unlimited()
    };
    env.app = spawn_app_with(pool, settings).await;
    env.app.set_stock("SLOW", 1).await;
    // No worker runs: a waiting placement holds the only slot for its full wait.
    let body = json!({"customerReference": "C", "lines": [{"sku": "SLOW", "quantity": 1}],
        "shippingAddress": {"name": "N", "address1": "A", "city": "C", "zip": "1", "countryCode": "DE"}});
    let holder = env
        .app
        .client
        .post(env.app.url("/orders"))
        .header("idempotency-key", "hold")
        .header("prefer", "wait=3")
        .json(&body)
        .send();
    let probe = async {
        // Poll until the holder occupies the slot, then expect a shed request.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = env.app.get_product("SLOW").await;
            if r.status() == 503 {
                return assert_problem(r, 503, "overloaded").await;
            }
            assert!(std::time::Instant::now() < deadline, "no request was shed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (held, shed) = tokio::join!(holder, probe);
    assert_eq!(
        held.unwrap().status(),
        202,
        "the wait ran out without a worker"
    );
    assert_eq!(shed["code"], "overloaded");
    assert_eq!(
        env.app.get_product("SLOW").await.status(),
        200,
        "capacity is back"
    );
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_unsigned_flood_naming_a_shop_leaves_its_signed_deliveries_accepted(pool: PgPool) {
    let mut settings = test_settings();
    settings.shops = SHOPS
        .iter()
        .map(|shop| {
            serde_json::from_value(json!({
                "shop": shop, "webhook_secret": SECRET, "admin_url": "http://127.0.0.1:1",
                "access_token": "t", "location_id": "gid://shopify/Location/1"
            }))
            .unwrap()
        })
        .collect();
    settings.limits = LimitSettings {
        webhook: Rate::new(20.0, 40.0).unwrap(),
        unauthenticated: Rate::new(1.0, 5.0).unwrap(),
        ..LimitSettings::unlimited()
    };
    let app = spawn_app_with(pool, settings).await;
    // Shopify sends no API key; neither does the flood.
    let shopify = reqwest::Client::new();
    let body = serde_json::to_vec(&order_payload(1, &[("X", 1)])).unwrap();
    let deliver = |signature: String| {
        shopify
            .post(app.url("/webhooks/shopify"))
            .header("x-shopify-shop-domain", SHOPS[0])
            .header("x-shopify-topic", "orders/updated")
            .header("x-shopify-hmac-sha256", signature)
            .body(body.clone())
            .send()
    };
    let mut flood = Vec::new();
    let mut genuine = Vec::new();
    for i in 0..3_000 {
        flood.push(deliver("Zm9yZ2Vk".into()).await.unwrap().status().as_u16());
        if i % 150 == 0 {
            genuine.push(
                deliver(sign(SECRET, &body))
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
    }
    assert_eq!(genuine, vec![200; 20], "every signed delivery accepted");
    assert!(flood.iter().all(|s| *s == 401 || *s == 429));
    assert!(
        flood.iter().filter(|s| **s == 401).count() < 20,
        "the flood is throttled by its own budget"
    );
}
