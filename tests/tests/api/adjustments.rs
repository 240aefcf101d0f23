//! Refunds and edits before shipping take units off the order: the
//! warehouse's order is replaced, restocked units are for sale again in
//! every shop; after shipping nothing is released and the order is flagged.

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

/// Shopify's id of line `n` (0-based) of an `order_payload`.
fn line_item(n: u64) -> u64 {
    9_000_000_000_000_000_000 + n
}

async fn send(env: &SagaEnv, topic: &str, body: Value) -> Value {
    let body = serde_json::to_vec(&body).unwrap();
    let r = env.send_webhook(SHOPS[0], topic, &body).await;
    assert_eq!(r.status(), 200, "{topic}: {:?}", r.text().await);
    r.json().await.unwrap()
}

fn refund(id: u64, order: u64, lines: &[(u64, i64, &str)]) -> Value {
    json!({"id": id, "order_id": order, "note": "customer changed their mind",
           "refund_line_items": lines.iter().map(|(line, q, restock)| json!({
               "id": id * 10 + line, "line_item_id": line_item(*line), "quantity": q,
               "restock_type": restock, "line_item": {"id": line_item(*line)}})).collect::<Vec<_>>()})
}

/// Units of `sku` in the warehouse orders received, in order.
fn units_of(orders: &[Value], sku: &str) -> Vec<i64> {
    orders
        .iter()
        .map(|o| {
            o["products"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["reference_id"] == sku)
                .map(|p| p["quantity"].as_i64().unwrap())
                .sum()
        })
        .collect()
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_refund_before_shipping_releases_its_units_and_replaces_the_warehouse_order(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(3).mount(&env.wms).await;
    Mock::given(method("POST"))
        .and(path("/wms/order/555001/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Cancelled"})))
        .expect(3)
        .mount(&env.wms)
        .await;
    env.app.set_stock("REFUND-A", 5).await;
    env.app.set_stock("REFUND-B", 5).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_951, &[("REFUND-A", 2), ("REFUND-B", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        assert_eq!(env.app.levels("REFUND-A").await, (3, 2, 0));

        // One of the two A's is refunded and restocked.
        let done = send(
            &env,
            "refunds/create",
            refund(71, 91_951, &[(0, 1, "cancel")]),
        )
        .await;
        assert_eq!(done["status"], "adjusted", "{done}");
        assert_eq!(env.app.levels("REFUND-A").await, (4, 1, 0));
        let sent = env.wms_orders().await;
        assert_eq!(sent.len(), 2, "the warehouse got a replacement");
        assert_eq!(units_of(&sent, "REFUND-A"), [2, 1]);
        assert_eq!(units_of(&sent, "REFUND-B"), [1, 1]);
        assert_eq!(sent[1]["reference_id"], format!("{order}~1"));
        // Every shop shows the unit for sale again.
        env.wait_until_every_change_is_pushed().await;
        for shop in &env.shops {
            assert_eq!(shop.fake.available("REFUND-A"), Some(4), "{}", shop.domain);
        }

        // Redelivered: nothing changes at the warehouse or in stock.
        let again = send(
            &env,
            "refunds/create",
            refund(71, 91_951, &[(0, 1, "cancel")]),
        )
        .await;
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(env.wms_orders().await.len(), 2);

        // B is refunded without restocking (damaged): written off.
        let damaged = send(
            &env,
            "refunds/create",
            refund(72, 91_951, &[(1, 1, "no_restock")]),
        )
        .await;
        assert_eq!(damaged["status"], "adjusted", "{damaged}");
        assert_eq!(env.app.levels("REFUND-B").await, (4, 0, 0));

        // The last unit refunded: nothing is left to ship.
        let last = send(
            &env,
            "refunds/create",
            refund(73, 91_951, &[(0, 1, "cancel")]),
        )
        .await;
        assert_eq!(last["status"], "adjusted", "{last}");
        assert_eq!(
            env.wait_for_status(order, &["CANCELLED"]).await,
            "CANCELLED"
        );
        assert_eq!(env.app.levels("REFUND-A").await, (5, 0, 0));
        assert_eq!(env.wms_orders().await.len(), 3);
        let detail = env.app.get_json(&format!("/orders/{order}")).await;
        assert_eq!(detail["lines"][0]["quantity"], 0, "{detail}");
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_edit_takes_units_off_or_reserves_more_and_a_new_item_is_flagged(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(0).mount(&env.wms).await;
    env.app.set_stock("EDIT-ME", 6).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let mut payload = order_payload(91_952, &[("EDIT-ME", 3)]);
        payload["financial_status"] = json!("pending");
        send(&env, "orders/create", payload).await;
        let order = order_id(SHOPS[0], 91_952);
        env.wait_for_status(order, &["AWAITING_PAYMENT"]).await;
        let edit = json!({"order_edit": {"id": 555, "order_id": 91_952,
            "line_items": {"additions": [], "removals": [{"id": line_item(0), "delta": 2}]}}});
        let done = send(&env, "orders/edited", edit).await;
        assert_eq!(done["status"], "adjusted", "{done}");
        assert_eq!(env.app.levels("EDIT-ME").await, (5, 1, 0));
        assert_eq!(env.status(order).await, "AWAITING_PAYMENT");
        let again = send(
            &env,
            "orders/edited",
            json!({"order_edit": {"id": 555, "order_id": 91_952,
            "line_items": {"additions": [], "removals": [{"id": line_item(0), "delta": 2}]}}}),
        )
        .await;
        assert_eq!(again["status"], "duplicate", "{again}");
        assert_eq!(env.app.levels("EDIT-ME").await, (5, 1, 0));

        // The customer wants four more after all: reserved, all or none.
        let more = json!({"order_edit": {"id": 557, "order_id": 91_952,
            "line_items": {"additions": [{"id": line_item(0), "delta": 4}], "removals": []}}});
        let done = send(&env, "orders/edited", more).await;
        assert_eq!(done["status"], "adjusted", "{done}");
        assert_eq!(env.app.levels("EDIT-ME").await, (1, 5, 0));
        // Five more than that are not in stock: nothing changes, a person is told.
        let too_many = json!({"order_edit": {"id": 558, "order_id": 91_952,
            "line_items": {"additions": [{"id": line_item(0), "delta": 5}], "removals": []}}});
        let refused = send(&env, "orders/edited", too_many).await;
        assert_eq!(refused["status"], "flagged", "{refused}");
        assert_eq!(env.app.levels("EDIT-ME").await, (1, 5, 0));
        assert!(
            env.notification_kinds(order)
                .await
                .contains(&"adjustment_not_applied".to_string())
        );

        let added = json!({"order_edit": {"id": 556, "order_id": 91_952,
            "line_items": {"additions": [{"id": 4242, "delta": 1}], "removals": []}}});
        let flagged = send(&env, "orders/edited", added).await;
        assert_eq!(flagged["status"], "flagged", "{flagged}");
        assert!(
            env.notification_kinds(order)
                .await
                .contains(&"order_edit_needs_review".to_string())
        );
        assert_eq!(env.app.levels("EDIT-ME").await, (1, 5, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_refund_after_shipping_releases_nothing_and_flags_the_order(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("GONE", 2).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        let order = env.place(91_953, &[("GONE", 1)]).await;
        env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        let r = env.patch_status(order, "SHIPPED", None).await;
        assert!(r.status().is_success());
        let flagged = send(
            &env,
            "refunds/create",
            refund(74, 91_953, &[(0, 1, "return")]),
        )
        .await;
        assert_eq!(flagged["status"], "flagged", "{flagged}");
        assert_eq!(env.app.levels("GONE").await, (1, 0, 1));
        assert!(
            env.notification_kinds(order)
                .await
                .contains(&"refunded_after_shipping".to_string())
        );
    })
    .await;
}
