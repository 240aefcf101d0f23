//! Payment gating: an unpaid Shopify order is reserved at once, but goes to
//! the warehouse only once paid; a payment that fails, or does not come in
//! time, cancels it and gives its units back.

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    saga_support::{SHOPS, SagaEnv, order_id, order_payload, saga_env, saga_env_with, wms_accepts},
    temporal::with_worker,
};

/// Places order `id` from the first shop with `financial_status`.
async fn place_with_payment(env: &SagaEnv, id: u64, lines: &[(&str, i64)], status: &str) -> Uuid {
    let mut payload = order_payload(id, lines);
    payload["financial_status"] = json!(status);
    let body = serde_json::to_vec(&payload).unwrap();
    let r = env.send_webhook(SHOPS[0], "orders/create", &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    order_id(SHOPS[0], id)
}

/// Shopify reports the order's payment under `topic`.
async fn report_payment(env: &SagaEnv, id: u64, topic: &str, status: &str) -> Value {
    let body = serde_json::to_vec(&json!({"id": id, "financial_status": status})).unwrap();
    let r = env.send_webhook(SHOPS[0], topic, &body).await;
    assert_eq!(r.status(), 200, "{topic}");
    r.json().await.unwrap()
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_unpaid_order_is_reserved_but_goes_to_the_warehouse_only_once_paid(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("INVOICE-ME", 3).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = place_with_payment(&env, 91_701, &[("INVOICE-ME", 2)], "pending").await;
        env.wait_for_status(order, &["AWAITING_PAYMENT"]).await;
        // Held for the customer, and every shop shows it gone.
        assert_eq!(env.app.levels("INVOICE-ME").await, (1, 2, 0));
        assert!(env.wms_orders().await.is_empty());
        // A still-pending update changes nothing.
        let still = report_payment(&env, 91_701, "orders/updated", "pending").await;
        assert_eq!(still["status"], "ignored", "{still}");

        let paid = report_payment(&env, 91_701, "orders/paid", "paid").await;
        assert_eq!(paid["status"], "accepted", "{paid}");
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        assert_eq!(env.wms_orders().await.len(), 1);
        assert_eq!(
            env.status_history(order).await,
            [
                "RECEIVED",
                "RESERVED",
                "AWAITING_PAYMENT",
                "RESERVED",
                "FULFILLMENT_REQUESTED"
            ]
        );
        // Shopify redelivers: the order no longer waits, nothing happens.
        let again = report_payment(&env, 91_701, "orders/paid", "paid").await;
        assert_eq!(again["status"], "ignored", "{again}");
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_voided_payment_cancels_the_order_and_gives_its_units_back(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    env.app.set_stock("VOID-ME", 2).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = place_with_payment(&env, 91_702, &[("VOID-ME", 2)], "authorized").await;
        env.wait_for_status(order, &["AWAITING_PAYMENT"]).await;
        let voided = report_payment(&env, 91_702, "orders/updated", "voided").await;
        assert_eq!(voided["status"], "accepted", "{voided}");
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("VOID-ME").await, (2, 0, 0));
        let again = report_payment(&env, 91_702, "orders/updated", "voided").await;
        assert_eq!(again["status"], "ignored", "{again}");
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert!(
            detail["statusReason"]
                .as_str()
                .is_some_and(|r| r.contains("voided")),
            "{detail}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_whose_payment_does_not_come_in_time_is_cancelled(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| s.saga_policy.unpaid_expiry_secs = 2).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    env.app.set_stock("SLOW-PAYER", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = place_with_payment(&env, 91_703, &[("SLOW-PAYER", 1)], "pending").await;
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("SLOW-PAYER").await, (1, 0, 0));
        assert!(
            env.status_history(order)
                .await
                .contains(&"AWAITING_PAYMENT".to_string())
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_payment_reported_before_its_order_arrives_is_not_waited_for(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("OVERTAKEN", 1).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let early = report_payment(&env, 91_704, "orders/paid", "paid").await;
        assert_eq!(early["status"], "recorded", "{early}");
        let order = place_with_payment(&env, 91_704, &[("OVERTAKEN", 1)], "pending").await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_awaiting_payment_can_be_cancelled_and_the_gate_is_configurable(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| {
        s.payment_gate = domain::PaymentGate::parse("pending").unwrap();
    })
    .await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("CHANGED-MIND", 2).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = place_with_payment(&env, 91_705, &[("CHANGED-MIND", 1)], "pending").await;
        env.wait_for_status(order, &["AWAITING_PAYMENT"]).await;
        let body = serde_json::to_vec(&json!({"id": 91_705, "cancel_reason": "customer"})).unwrap();
        let r = env.send_webhook(SHOPS[0], "orders/cancelled", &body).await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("CHANGED-MIND").await, (2, 0, 0));

        // Only pending payments wait here: an authorized order goes on.
        let card = place_with_payment(&env, 91_706, &[("CHANGED-MIND", 1)], "authorized").await;
        env.wait_for_status(card, &["FULFILLMENT_REQUESTED"]).await;
    })
    .await;
}
