//! Orders whose workflow ended too early (terminated by an operator, failed
//! on a bug): the reconciliation finds them and settles each, and leaves
//! orders whose workflow runs alone.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowTerminateOptions};
use uuid::Uuid;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path, query_param},
};
use workflows::OrderWorkflow;

use crate::{
    helpers::{built_binary, database_url},
    saga_support::{SHOPS, SagaEnv, order_id, saga_env, wms_accepts},
    temporal::with_worker,
};

async fn client(env: &SagaEnv) -> Client {
    orchestrator::connect(&env.worker.temporal)
        .await
        .expect("the dev server answers")
}

async fn workflow_id(env: &SagaEnv, order: Uuid) -> String {
    sqlx::query_scalar("SELECT workflow_id FROM orders WHERE id = $1")
        .bind(order)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// What an operator does in the Temporal UI, or a bug does on its own.
async fn terminate(env: &SagaEnv, order: Uuid) {
    client(env)
        .await
        .get_workflow_handle::<OrderWorkflow>(workflow_id(env, order).await)
        .terminate(
            WorkflowTerminateOptions::builder()
                .reason("terminated by a test".to_string())
                .build(),
        )
        .await
        .expect("the order workflow was running");
}

async fn reconcile(env: &SagaEnv, order: Option<Uuid>) -> Vec<workflows::contracts::Repair> {
    orchestrator::run_reconcile(
        &client(env).await,
        &env.worker.temporal.task_queue,
        &env.worker.reconcile,
        order,
    )
    .await
    .expect("the reconciliation ran")
}

async fn patch_status(env: &SagaEnv, order: Uuid, status: &str) -> reqwest::Response {
    env.app
        .client
        .patch(env.app.url(&format!("/orders/{order}/status")))
        .json(&json!({"status": status}))
        .send()
        .await
        .unwrap()
}

/// The warehouse is down, so the order sits RESERVED while its saga retries
/// the hand-over; then its workflow is terminated. Nobody would ever release
/// those units: the reconciliation asks the warehouse (which never got the
/// order), releases them, fails the order, tells an operator and puts the
/// units back on every shop.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_reserved_order_whose_workflow_was_terminated_is_released_failed_and_resynced(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&env.wms)
        .await;
    env.app.set_stock("ORPHAN", 6).await;
    let order = order_id(SHOPS[0], 93_001);
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(93_001, &[("ORPHAN", 2)]).await;
        env.wait_for_status(order, &["RESERVED"]).await;
        env.wait_until_every_change_is_pushed().await;
        assert_eq!(env.shops[0].fake.available("ORPHAN"), Some(4));
        terminate(&env, order).await;

        let repairs = reconcile(&env, None).await;

        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(repairs[0].order_id, order);
        assert_eq!(repairs[0].status, domain::OrderStatus::Failed);
        assert_eq!(env.app.levels("ORPHAN").await, (6, 0, 0));
        assert_eq!(
            env.status_history(order).await,
            ["RECEIVED", "RESERVED", "FAILED"]
        );
        let notes = env.notifications(order).await;
        assert!(
            notes
                .iter()
                .any(|(k, m)| k == "order_repaired" && m.contains("Terminated")),
            "{notes:?}"
        );
        env.wait_until_every_change_is_pushed().await;
        for shop in &env.shops {
            assert_eq!(shop.fake.available("ORPHAN"), Some(6), "{}", shop.domain);
        }
        // Settled orders are not settled again.
        assert!(reconcile(&env, None).await.is_empty());
    })
    .await;
}

/// The order is at the warehouse when its workflow is terminated: the units
/// stay reserved, a new workflow takes the order over, and shipping it later
/// works as if nothing had happened.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_at_the_warehouse_whose_workflow_ended_is_taken_over_and_can_still_ship(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("ADOPTED", 5).await;
    let order = order_id(SHOPS[0], 93_002);
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(93_002, &[("ADOPTED", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let before = workflow_id(&env, order).await;
        terminate(&env, order).await;

        let repairs = reconcile(&env, Some(order)).await;

        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(repairs[0].status, domain::OrderStatus::FulfillmentRequested);
        let after = workflow_id(&env, order).await;
        assert!(after.starts_with(&format!("{before}:resumed:")), "{after}");
        assert_eq!(env.app.levels("ADOPTED").await, (4, 1, 0), "still reserved");
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        let last = detail["history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["toStatus"], "FULFILLMENT_REQUESTED", "{last}");
        assert!(
            last["reason"].as_str().unwrap().contains("taken over"),
            "{last}"
        );

        let shipped = patch_status(&env, order, "SHIPPED").await;
        assert_eq!(shipped.status(), 200, "{:?}", shipped.text().await);
        assert_eq!(env.app.levels("ADOPTED").await, (4, 0, 1));
        assert_eq!(patch_status(&env, order, "DELIVERED").await.status(), 200);
        // The new workflow ends with the order, like the first would have.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while orchestrator::workflow_state(&client(&env).await, &after)
            .await
            .unwrap()
            .is_none()
        {
            assert!(std::time::Instant::now() < deadline, "{after} never ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(reconcile(&env, None).await.is_empty());
    })
    .await;
}

/// A reserved order whose workflow was terminated, but the warehouse did
/// take it and will not cancel it any more: it is adopted, not released.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_reserved_order_the_warehouse_has_is_adopted_rather_than_released(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let order = order_id(SHOPS[0], 93_003);
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&env.wms)
        .await;
    env.app.set_stock("PICKED", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(93_003, &[("PICKED", 1)]).await;
        env.wait_for_status(order, &["RESERVED"]).await;
        terminate(&env, order).await;
        Mock::given(method("GET"))
            .and(path("/wms/order"))
            .and(query_param("ReferenceIds", order.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 8101}])))
            .with_priority(1)
            .mount(&env.wms)
            .await;
        Mock::given(method("POST"))
            .and(path("/wms/order/8101/cancel"))
            .respond_with(
                ResponseTemplate::new(422).set_body_json(json!({"error": "already picked"})),
            )
            .expect(1)
            .mount(&env.wms)
            .await;

        let repairs = reconcile(&env, None).await;

        assert_eq!(repairs.len(), 1, "{repairs:?}");
        assert_eq!(repairs[0].status, domain::OrderStatus::FulfillmentRequested);
        assert_eq!(env.app.levels("PICKED").await, (2, 1, 0));
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert_eq!(detail["wmsOrderId"], "8101");
        assert_eq!(detail["status"], "FULFILLMENT_REQUESTED");
    })
    .await;
}

/// Orders whose workflow still runs are none of the reconciliation's
/// business, however long they have waited.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn orders_whose_workflow_runs_are_left_alone(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().mount(&env.wms).await;
    env.app.set_stock("ALIVE", 5).await;
    let order = order_id(SHOPS[0], 93_004);
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(93_004, &[("ALIVE", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let before = workflow_id(&env, order).await;

        assert!(reconcile(&env, None).await.is_empty());

        assert_eq!(workflow_id(&env, order).await, before);
        assert_eq!(env.app.levels("ALIVE").await, (4, 1, 0));
        assert!(
            env.notifications(order)
                .await
                .iter()
                .all(|(k, _)| k != "order_repaired")
        );
    })
    .await;
}

/// The operator's command: `oms-api orders repair <id>` settles one order
/// at once (no quiet period) through the running workers, and prints what
/// it did.
#[sqlx::test(migrator = "db::MIGRATOR")]
async fn the_operator_command_repairs_one_order_and_says_what_it_did(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&env.wms)
        .await;
    env.app.set_stock("BYHAND", 2).await;
    let order = order_id(SHOPS[0], 93_005);
    with_worker(env.worker.clone(), pool.clone(), async {
        env.place(93_005, &[("BYHAND", 2)]).await;
        env.wait_for_status(order, &["RESERVED"]).await;
        terminate(&env, order).await;

        let mut command = std::process::Command::new(built_binary("oms-api"));
        command
            .args(["orders", "repair", &order.to_string()])
            .env("DATABASE_URL", database_url(&env.pool))
            .env("TEMPORAL_ADDRESS", &env.worker.temporal.address)
            .env("OMS_TASK_QUEUE", &env.worker.temporal.task_queue)
            // A quiet period the order has not had: the command ignores it.
            .env("OMS_RECONCILE_QUIET_SECS", "3600")
            .env("OMS_ALLOW_DEV_SECRETS", "true")
            .env("RUST_LOG", "warn");
        // Off this task: the in-process worker that does the repair runs on it.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("oms-api runs");

        assert!(out.status.success(), "{out:?}");
        let printed: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(printed.len(), 1, "{printed:?}");
        assert_eq!(printed[0]["order_id"], order.to_string());
        assert_eq!(printed[0]["status"], "FAILED");
        assert_eq!(env.app.levels("BYHAND").await, (2, 0, 0));
    })
    .await;
}
