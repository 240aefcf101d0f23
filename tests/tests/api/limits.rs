//! Rate limiting and back-pressure at the edge.

use std::time::Duration;

use api::{LimitSettings, Rate};
use serde_json::json;
use sqlx::PgPool;

use crate::{
    helpers::{assert_problem, spawn_app_with, test_settings},
    saga_support::{SHOPS, order_payload, saga_env},
};

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(pool: PgPool) {
    let mut settings = test_settings();
    settings.limits = LimitSettings {
        client: Rate {
            per_second: 0.5,
            burst: 3.0,
        },
        webhook: Rate {
            per_second: 0.0,
            burst: 0.0,
        },
        max_in_flight: 0,
    };
    let app = spawn_app_with(pool, settings).await;
    let get = |client: &'static str| {
        app.client
            .get(app.url("/product/X"))
            .header("x-client-id", client)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            get("noisy").await.unwrap().status(),
            404,
            "within the burst"
        );
    }
    let limited = get("noisy").await.unwrap();
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
    // Another client has its own bucket; health checks are never limited.
    assert_eq!(get("quiet").await.unwrap().status(), 404);
    let health = app
        .client
        .get(app.url("/health/live"))
        .header("x-client-id", "noisy")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn webhooks_have_their_own_limit_per_shop(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    let mut settings = test_settings();
    settings.shops = env.worker.shops.clone();
    settings.temporal = env.worker.temporal.clone();
    settings.limits = LimitSettings {
        client: Rate {
            per_second: 0.0,
            burst: 0.0,
        },
        webhook: Rate {
            per_second: 0.1,
            burst: 1.0,
        },
        max_in_flight: 0,
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
