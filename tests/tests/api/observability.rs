//! What operators watch: `/metrics` on the API and the worker, and order
//! workflows findable in Temporal by order id, shop and status.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use temporalio_client::WorkflowCountOptions;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};
use worker::WorkerMetrics;

use crate::{
    helpers::{seed_order, spawn_app},
    saga_support::{SHOPS, order_payload, saga_env, wms_accepts},
    temporal::with_worker_metrics,
};

/// The value of the series `name` whose labels include all of `labels`;
/// `None` when no such series is exposed.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse().unwrap())
}

pub async fn scrape(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    r.text().await.unwrap()
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn api_metrics_count_requests_by_route_template_and_status(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("MUG-1", 3).await;
    for _ in 0..2 {
        assert_eq!(app.get("/product/MUG-1").await.status(), 200);
    }
    assert_eq!(app.get("/product/NO-SUCH-SKU").await.status(), 404);
    assert_eq!(app.get("/no/such/route").await.status(), 404);

    let text = scrape(&app.url("/metrics")).await;
    let requests = |route: &str, status: &str| {
        sample(
            &text,
            "oms_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/product/{id}", "200"), Some(2.0));
    assert_eq!(requests("/product/{id}", "404"), Some(1.0));
    assert_eq!(requests("unmatched", "404"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "oms_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/product/{id}")]
        ),
        Some(3.0)
    );
    // Labels carry route templates only: ids and paths never become series.
    assert!(!text.contains("MUG-1") && !text.contains("/no/such/route"));
    // The scrape itself is answered before it is counted.
    assert_eq!(requests("/metrics", "200"), None);
    assert_eq!(sample(&text, "oms_http_requests_in_flight", &[]), Some(1.0));
}

/// An order long in COMPENSATING or RECEIVED needs someone: the API's
/// metrics count the orders in every open status and say how long the
/// longest-waiting one has waited, which the shipped alert rules watch.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn api_metrics_show_how_many_orders_wait_in_each_open_status_and_for_how_long(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let db = db::Db::new(pool.clone(), &db::ReserverSettings::default());
    for (key, status, minutes_ago) in [
        ("stuck", "COMPENSATING", 20),
        ("fresh", "COMPENSATING", 0),
        ("new", "RECEIVED", 1),
        ("done", "DELIVERED", 60),
    ] {
        let order = seed_order(&db, domain::Channel::Api, None, key).await;
        sqlx::query(
            "UPDATE orders SET status = $2, updated_at = now() - make_interval(mins => $3) WHERE id = $1",
        )
        .bind(order)
        .bind(status)
        .bind(minutes_ago)
        .execute(&pool)
        .await
        .unwrap();
    }

    let text = scrape(&app.url("/metrics")).await;

    let open = |status: &str| sample(&text, "oms_orders_open", &[("status", status)]);
    let oldest = |status: &str| {
        sample(
            &text,
            "oms_orders_oldest_unchanged_seconds",
            &[("status", status)],
        )
    };
    assert_eq!(open("COMPENSATING"), Some(2.0));
    assert_eq!(open("RECEIVED"), Some(1.0));
    assert_eq!(open("SHIPPED"), Some(0.0));
    assert_eq!(open("DELIVERED"), None, "final statuses are not open");
    let compensating = oldest("COMPENSATING").unwrap();
    assert!((1_200.0..1_300.0).contains(&compensating), "{compensating}");
    assert_eq!(oldest("SHIPPED"), Some(0.0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn api_metrics_record_every_reserve_in_a_batch(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("HOT", 40).await;
    let reserves = (0..25).map(|_| app.reserve("HOT"));
    for r in futures::future::join_all(reserves).await {
        assert_eq!(r.status(), 200);
    }
    let text = scrape(&app.url("/metrics")).await;
    // Every granted request was in exactly one committed batch.
    assert_eq!(sample(&text, "oms_reserve_batch_size_sum", &[]), Some(25.0));
    let batches = sample(&text, "oms_reserve_batch_size_count", &[]).unwrap();
    assert!((1.0..=25.0).contains(&batches), "{batches} batches");
    assert_eq!(
        sample(&text, "oms_reserve_batch_duration_seconds_count", &[]),
        Some(batches)
    );
    assert_eq!(
        sample(&text, "oms_reserve_batch_failures_total", &[]),
        Some(0.0)
    );
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn api_metrics_count_webhook_deliveries_by_outcome(pool: PgPool) {
    let env = saga_env(pool).await;
    let body = serde_json::to_vec(&order_payload(7, &[("TSHIRT", 1)])).unwrap();
    let r = env
        .send_webhook_signed(SHOPS[0], "orders/create", &body, "bad")
        .await;
    assert_eq!(r.status(), 401);
    let r = env.send_webhook(SHOPS[0], "products/update", b"{}").await;
    assert_eq!(r.status(), 200);
    let r = env
        .send_webhook(SHOPS[0], "orders/create", b"not json")
        .await;
    assert_eq!(r.status(), 200);

    let text = scrape(&env.app.url("/metrics")).await;
    let outcome =
        |o: &str| sample(&text, "oms_webhook_deliveries_total", &[("outcome", o)]).unwrap();
    assert_eq!(outcome("unauthorized"), 1.0);
    assert_eq!(outcome("ignored"), 1.0);
    assert_eq!(outcome("dead_lettered"), 1.0);
    // Outcomes that did not happen are exposed as 0, not missing.
    assert_eq!(outcome("accepted"), 0.0);
    assert_eq!(outcome("unavailable"), 0.0);
    assert_eq!(outcome("rate_limited"), 0.0);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn worker_metrics_report_activity_outcomes_beside_the_sdk_series(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    // The warehouse refuses the order for good: the saga compensates.
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"error": "address rejected"})),
        )
        .expect(1)
        .mount(&env.wms)
        .await;
    env.app.set_stock("TSHIRT", 5).await;
    let metrics = WorkerMetrics::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}/metrics", metrics.addr());
    let text = with_worker_metrics(env.worker.clone(), pool.clone(), Some(metrics), async {
        let order = env.place(811, &[("TSHIRT", 2)]).await;
        assert_eq!(
            env.wait_for_status(order, &["FAILED", "FULFILLMENT_REQUESTED"])
                .await,
            "FAILED"
        );
        // The workflow completes a moment after its last activity recorded
        // FAILED: scrape until the SDK has counted it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = scrape(&url).await;
            if text
                .lines()
                .any(|l| l.starts_with("temporal_workflow_completed_total"))
                || Instant::now() >= deadline
            {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    let runs = |activity: &str, outcome: &str| {
        sample(
            &text,
            "oms_activity_executions_total",
            &[("activity", activity), ("outcome", outcome)],
        )
    };
    assert_eq!(runs("oms.reserve_order", "completed"), Some(1.0));
    assert_eq!(runs("oms.release_order", "completed"), Some(1.0));
    assert_eq!(
        runs("oms.submit_fulfillment", "non_retryable_failure"),
        Some(1.0)
    );
    assert_eq!(runs("oms.submit_fulfillment", "completed"), None);
    assert_eq!(
        sample(
            &text,
            "oms_activity_duration_seconds_count",
            &[("activity", "oms.reserve_order"), ("outcome", "completed")]
        ),
        Some(1.0)
    );
    // The SDK's own series come from the same endpoint.
    assert!(
        text.lines()
            .any(|l| l.starts_with("temporal_workflow_completed_total")),
        "no SDK series in:\n{text}"
    );
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn order_workflows_are_findable_in_temporal_by_order_id_shop_and_status(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("TSHIRT", 5).await;
    let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
    crate::temporal::with_worker(env.worker.clone(), pool.clone(), async {
        let body = serde_json::to_vec(&order_payload(9_912, &[("TSHIRT", 1)])).unwrap();
        let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
        assert_eq!(r.status(), 200);
        let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let accepted: serde_json::Value = r.json().await.unwrap();
        let order = accepted["orderId"].as_str().unwrap().to_string();
        let workflow_id = accepted["workflowId"].as_str().unwrap().to_string();
        env.wait_for_status(order.parse().unwrap(), &["FULFILLMENT_REQUESTED"])
            .await;

        // What an operator types into the UI's search box.
        let query = format!(
            "OmsOrderId = '{order}' AND OmsShop = '{}' AND OmsOrderStatus = 'FULFILLMENT_REQUESTED'",
            SHOPS[0]
        );
        // Visibility is eventually consistent: poll, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = client
                .count_workflows(query.clone(), WorkflowCountOptions::default())
                .await
                .unwrap()
                .count();
            if count == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no workflow matched {query}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The memo leads from an API log line (its request id) to the workflow.
        let memo = orchestrator::order_memo(&client, &workflow_id).await.unwrap();
        assert_eq!(memo["requestId"], request_id);
        assert_eq!(memo["orderId"], order);
        assert_eq!(memo["shop"], SHOPS[0]);
        assert_eq!(memo["externalId"], "9912");
    })
    .await;
}
