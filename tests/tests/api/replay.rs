//! Order workflows stay open for days, so every deploy meets histories that
//! older workflow code wrote. These tests replay such histories against the
//! code as it is now: a change that would make a running order fail with a
//! nondeterminism error fails here first.
//!
//! The committed fixtures in `tests/fixtures/histories/<generation>/` were
//! recorded from real runs of the workflow code of their generation
//! (`OMS_RECORD_HISTORIES=<generation> cargo test -p tests --test api replay`
//! writes the current code's runs into that folder). When workflow code
//! changes, keep every older generation and record a new one beside them.

use std::{path::PathBuf, time::Duration};

use serde_json::{Value, json};
use sqlx::PgPool;
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_string_contains, method, path, path_regex},
};
use workflows::{
    DriftRepairWorkflow, OrderWorkflow, ReconcileWorkflow, ShopSyncWorkflow,
    contracts::{DriftRepairInput, OrderInput, ReconcileInput},
    shop_sync_workflow_id,
};

use crate::{
    saga_support::{SagaEnv, saga_env, wms_accepts},
    temporal::with_worker,
};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories")
}

fn replayer() -> WorkflowReplayer {
    WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<OrderWorkflow>()
            .unwrap()
            .register_workflow::<ShopSyncWorkflow>()
            .unwrap()
            .register_workflow::<DriftRepairWorkflow>()
            .unwrap()
            .register_workflow::<ReconcileWorkflow>()
            .unwrap()
            .build(),
    )
    .unwrap()
}

/// The committed histories of every generation, as `generation/name`.
fn committed() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for generation in std::fs::read_dir(fixtures_dir()).unwrap() {
        let generation = generation.unwrap().path();
        for file in std::fs::read_dir(&generation).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = format!(
                    "{}/{}",
                    generation.file_name().unwrap().to_string_lossy(),
                    path.file_name().unwrap().to_string_lossy()
                );
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn committed_order_histories_replay_against_todays_workflow_code() {
    let files = committed();
    assert!(
        files.len() >= 5,
        "expected the recorded histories in {}",
        fixtures_dir().display()
    );
    let replayer = replayer();
    for (name, bytes) in files {
        let history = WorkflowHistory::from_json(&bytes).unwrap();
        if let Err(e) = replayer.replay_workflow(history).await {
            panic!("{name} no longer replays: {e:?}");
        }
    }
}

/// Workflow code that starts with a timer where the real one runs an
/// activity: the replayer must call that nondeterministic.
#[workflow]
pub struct TimerFirstOrderWorkflow {
    _input: OrderInput,
}

#[workflow_methods]
impl TimerFirstOrderWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: OrderInput) -> Self {
        Self { _input: input }
    }

    #[run(name = "oms.OrderWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        ctx.timer(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_workflow_change_that_breaks_replay_is_caught() {
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<TimerFirstOrderWorkflow>()
            .unwrap()
            .build(),
    )
    .unwrap();
    let (name, bytes) = committed()
        .into_iter()
        .find(|(n, _)| n.contains("order-shipped"))
        .expect("the shipment fixture");
    let result = replayer
        .replay_workflow(WorkflowHistory::from_json(&bytes).unwrap())
        .await;
    assert!(
        matches!(
            result,
            Err(WorkflowReplayError::Replay(
                WorkflowReplayFailure::Nondeterminism { .. }
            ))
        ),
        "{name}: {result:?}"
    );
}

fn api_order(sku: &str, quantity: i64) -> Value {
    json!({
        "customerReference": "REPLAY",
        "lines": [{"sku": sku, "quantity": quantity}],
        "shippingAddress": {"name": "Grace Hopper", "address1": "2 Harbor Rd", "city": "Hamburg",
                            "zip": "20095", "countryCode": "DE"}
    })
}

/// Places an API order and waits until the warehouse has it; its workflow id.
async fn api_order_at_the_warehouse(env: &SagaEnv, key: &str, sku: &str) -> (String, String) {
    let placed: Value = env
        .app
        .client
        .post(env.app.url("/orders"))
        .header("idempotency-key", key)
        .json(&api_order(sku, 1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = placed["orderId"].as_str().unwrap().to_string();
    env.wait_for_status(id.parse().unwrap(), &["FULFILLMENT_REQUESTED"])
        .await;
    (id, placed["workflowId"].as_str().unwrap().to_string())
}

async fn patch_status(env: &SagaEnv, id: &str, status: &str) {
    let r = env
        .app
        .client
        .patch(env.app.url(&format!("/orders/{id}/status")))
        .json(&json!({"status": status, "reason": "replay fixture"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{status}: {:?}", r.text().await);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn representative_order_runs_replay_against_the_code_that_ran_them(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    // The warehouse refuses orders of DOOMED for good, takes every other one,
    // and cancels what it is asked to.
    Mock::given(method("POST"))
        .and(path("/wms/order"))
        .and(body_string_contains("DOOMED"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"recipient.address": ["could not be validated"]})),
        )
        .with_priority(1)
        .mount(&env.wms)
        .await;
    wms_accepts().mount(&env.wms).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/wms/order/\d+/cancel$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Cancelled"})))
        .mount(&env.wms)
        .await;
    for sku in ["SHIPME", "DOOMED", "CANCELME"] {
        env.app.set_stock(sku, 10).await;
    }
    let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
    with_worker(env.worker.clone(), pool.clone(), async {
        let mut runs: Vec<(&str, String)> = Vec::new();

        // Shipped and delivered: the saga, both status updates, completion.
        let (id, wf) = api_order_at_the_warehouse(&env, "replay-shipped", "SHIPME").await;
        patch_status(&env, &id, "SHIPPED").await;
        patch_status(&env, &id, "DELIVERED").await;
        runs.push(("order-shipped-delivered", wf));

        // A Shopify order shipped: the shipment reported to its shop.
        let shopify = env.place(9_103, &[("SHIPME", 1)]).await;
        env.wait_for_status(shopify, &["FULFILLMENT_REQUESTED"])
            .await;
        patch_status(&env, &shopify.to_string(), "SHIPPED").await;
        let shipped_wf = format!("order:shopify:{}:9103", crate::saga_support::SHOPS[0]);
        runs.push(("shopify-order-shipped-reported", shipped_wf.clone()));

        // The warehouse changed that shipment's tracking: Shopify is told.
        orchestrator::report_tracking(&client, &shipped_wf)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !orchestrator::query_order(&client, &shipped_wf)
            .await
            .unwrap()
            .steps
            .iter()
            .any(|s| s.starts_with("tracking updated"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "tracking not reported"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // An unpaid Shopify order: reserved, waits for its payment, then
        // goes to the warehouse.
        let mut unpaid = crate::saga_support::order_payload(9_104, &[("SHIPME", 1)]);
        unpaid["financial_status"] = json!("pending");
        let body = serde_json::to_vec(&unpaid).unwrap();
        env.send_webhook(crate::saga_support::SHOPS[0], "orders/create", &body)
            .await;
        let unpaid_id = crate::saga_support::order_id(crate::saga_support::SHOPS[0], 9_104);
        env.wait_for_status(unpaid_id, &["AWAITING_PAYMENT"]).await;
        let paid = serde_json::to_vec(&json!({"id": 9_104, "financial_status": "paid"})).unwrap();
        env.send_webhook(crate::saga_support::SHOPS[0], "orders/paid", &paid)
            .await;
        env.wait_for_status(unpaid_id, &["FULFILLMENT_REQUESTED"])
            .await;
        runs.push((
            "shopify-order-paid-later",
            format!("order:shopify:{}:9104", crate::saga_support::SHOPS[0]),
        ));

        // Part of a Shopify order refunded before shipping: the warehouse's
        // order is replaced.
        let refunded = env.place(9_105, &[("SHIPME", 2)]).await;
        env.wait_for_status(refunded, &["FULFILLMENT_REQUESTED"])
            .await;
        let refund = serde_json::to_vec(&json!({"id": 1, "order_id": 9_105, "refund_line_items": [
            {"line_item_id": 9_000_000_000_000_000_000_u64, "quantity": 1, "restock_type": "cancel"}]}))
        .unwrap();
        let r = env
            .send_webhook(crate::saga_support::SHOPS[0], "refunds/create", &refund)
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "adjusted");
        runs.push((
            "shopify-order-refunded-in-part",
            format!("order:shopify:{}:9105", crate::saga_support::SHOPS[0]),
        ));

        // Held by the warehouse, the hold lifted, then shipped.
        let (id, wf) = api_order_at_the_warehouse(&env, "replay-held", "SHIPME").await;
        patch_status(&env, &id, "ON_HOLD").await;
        patch_status(&env, &id, "FULFILLMENT_REQUESTED").await;
        patch_status(&env, &id, "SHIPPED").await;
        runs.push(("order-held-then-shipped", wf));

        // Cancelled after the warehouse had it.
        let (id, wf) = api_order_at_the_warehouse(&env, "replay-cancelled", "CANCELME").await;
        patch_status(&env, &id, "CANCELLED").await;
        runs.push(("order-cancelled", wf));

        // Rejected: an unknown product (a Shopify order).
        let rejected = env.place(9_101, &[("SHIPME", 1), ("NO-SUCH", 1)]).await;
        env.wait_for_status(rejected, &["REJECTED"]).await;
        runs.push((
            "order-rejected",
            format!("order:shopify:{}:9101", crate::saga_support::SHOPS[0]),
        ));

        // Compensated: the warehouse refuses it for good.
        let failed = env.place(9_102, &[("DOOMED", 2)]).await;
        env.wait_for_status(failed, &["FAILED"]).await;
        runs.push((
            "order-compensated",
            format!("order:shopify:{}:9102", crate::saga_support::SHOPS[0]),
        ));

        // Still running: reserved and at the warehouse, waiting for news.
        let (_, wf) = api_order_at_the_warehouse(&env, "replay-open", "SHIPME").await;
        runs.push(("order-open-at-warehouse", wf));

        // A shop's sync after all of that (still running), and a drift repair.
        env.wait_until_every_change_is_pushed().await;
        runs.push((
            "shop-sync-running",
            shop_sync_workflow_id(
                &env.worker.temporal.task_queue,
                crate::saga_support::SHOPS[0],
            ),
        ));
        env.shops[0].fake.set_available("SHIPME", 99);
        let drift_id = format!("replay-drift-{}", uuid::Uuid::new_v4());
        let reports = client
            .start_workflow(
                DriftRepairWorkflow::run,
                DriftRepairInput {
                    attempt_timeout_secs: 60,
                },
                temporalio_client::WorkflowStartOptions::new(
                    env.worker.temporal.task_queue.clone(),
                    drift_id.clone(),
                )
                .build(),
            )
            .await
            .unwrap()
            .get_result(Default::default())
            .await
            .unwrap();
        assert!(reports.iter().any(|r| r.repaired == 1), "{reports:?}");
        runs.push(("drift-repair", drift_id));

        // An order at the warehouse whose workflow was terminated: the
        // reconciliation hands it to a new workflow, which ships it.
        let (id, wf) = api_order_at_the_warehouse(&env, "replay-resumed", "SHIPME").await;
        client
            .get_workflow_handle::<OrderWorkflow>(wf.clone())
            .terminate(temporalio_client::WorkflowTerminateOptions::default())
            .await
            .unwrap();
        let reconcile_id = format!("replay-reconcile-{}", uuid::Uuid::new_v4());
        let repairs = client
            .start_workflow(
                ReconcileWorkflow::run,
                ReconcileInput {
                    order_id: Some(id.parse().unwrap()),
                    quiet_secs: 0,
                    limit: 10,
                },
                temporalio_client::WorkflowStartOptions::new(
                    env.worker.temporal.task_queue.clone(),
                    reconcile_id.clone(),
                )
                .build(),
            )
            .await
            .unwrap()
            .get_result(Default::default())
            .await
            .unwrap();
        assert_eq!(repairs.len(), 1, "{repairs:?}");
        runs.push(("reconcile-took-over", reconcile_id));
        patch_status(&env, &id, "SHIPPED").await;
        let resumed: String =
            sqlx::query_scalar("SELECT workflow_id FROM orders WHERE id = $1::uuid")
                .bind(&id)
                .fetch_one(&env.pool)
                .await
                .unwrap();
        runs.push(("order-resumed-shipped", resumed));

        let generation = std::env::var("OMS_RECORD_HISTORIES").ok();
        let replayer = replayer();
        for (name, workflow_id) in runs {
            let handle = client.get_workflow_handle::<OrderWorkflow>(workflow_id.clone());
            // A closed workflow's last events may reach history a moment
            // after the status we waited for.
            let json = fetch_settled_history(&handle).await;
            let history = WorkflowHistory::from_json(&json).unwrap();
            if let Err(e) = replayer.replay_workflow(history).await {
                panic!("{name} ({workflow_id}) does not replay: {e:?}");
            }
            if let Some(generation) = &generation {
                let dir = fixtures_dir().join(generation);
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(format!("{name}.json")), &json).unwrap();
            }
        }
    })
    .await;
}

/// The history once it stops growing (the workflow closed, or waits), as
/// the SDK's JSON.
async fn fetch_settled_history(
    handle: &temporalio_client::WorkflowHandle<temporalio_client::Client, OrderWorkflow>,
) -> Vec<u8> {
    let fetch = || handle.fetch_history(WorkflowFetchHistoryOptions::default());
    let mut seen = 0;
    for _ in 0..50 {
        let events = fetch().into_events().await.unwrap().len();
        if events == seen {
            break;
        }
        seen = events;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    fetch().to_json().await.unwrap()
}
