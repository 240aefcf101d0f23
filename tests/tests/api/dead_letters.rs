//! Replaying dead-lettered webhooks (`oms-api dead-letters replay <id>`).

use api::dead_letters::{ReplayError, ReplayOutcome, Replayer};
use sqlx::PgPool;

use crate::{
    saga_support::{SHOPS, SagaEnv, order_id, order_payload, saga_env, wms_accepts},
    temporal::with_worker,
};

fn replayer(env: &SagaEnv) -> Replayer {
    Replayer::new(
        db::Db::new(env.pool.clone(), &Default::default()),
        env.worker.temporal.clone(),
        crate::saga_support::fast_policy(),
    )
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_dead_letter_replays_into_its_order_once(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    env.app.set_stock("TSHIRT", 5).await;
    // A valid payload an earlier release could not map, as the webhook
    // handler stores it.
    let body = serde_json::to_vec(&order_payload(31_337, &[("TSHIRT", 2)])).unwrap();
    let store = db::Db::new(pool.clone(), &Default::default());
    let id = store
        .dead_letter(
            SHOPS[0],
            "orders/create",
            Some("w-1"),
            "unknown field",
            &body,
        )
        .await
        .unwrap();
    let replayer = replayer(&env);
    assert_eq!(replayer.list(false, 10).await.unwrap().len(), 1);

    with_worker(env.worker.clone(), pool.clone(), async {
        let order = order_id(SHOPS[0], 31_337);
        let outcome = replayer.replay(id, false).await.unwrap();
        assert!(
            matches!(&outcome, ReplayOutcome::Started { order_id, .. } if *order_id == order),
            "{outcome:?}"
        );
        assert_eq!(
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED", "FAILED", "REJECTED"])
                .await,
            "FULFILLMENT_REQUESTED"
        );
        assert_eq!(env.app.levels("TSHIRT").await, (3, 2, 0));

        // Done: no longer pending, and a second replay needs --force.
        assert!(replayer.list(false, 10).await.unwrap().is_empty());
        let all = replayer.list(true, 10).await.unwrap();
        assert_eq!(all[0].replayed_order_id, Some(order));
        assert_eq!(all[0].replay_attempts, 1);
        assert!(matches!(
            replayer.replay(id, false).await,
            Err(ReplayError::AlreadyReplayed { order_id, .. }) if order_id == order
        ));
        // Forced, it finds the same order's workflow and allocates nothing more.
        let again = replayer.replay(id, true).await.unwrap();
        assert!(
            matches!(&again, ReplayOutcome::Started { order_id, .. } if *order_id == order),
            "{again:?}"
        );
        assert_eq!(env.app.levels("TSHIRT").await, (3, 2, 0));
        assert_eq!(env.wms_orders().await.len(), 1);
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_still_invalid_dead_letter_stays_pending_with_its_latest_reason(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let body = br#"{"id": 5, "line_items": [{"sku": "A", "quantity": 0}]}"#;
    let r = env.send_webhook(SHOPS[0], "orders/create", body).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "dead_lettered");
    let id = v["deadLetterId"].as_i64().unwrap();
    let replayer = replayer(&env);

    let outcome = replayer.replay(id, false).await.unwrap();
    let ReplayOutcome::StillInvalid { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("quantity"), "{reason}");
    let pending = replayer.list(false, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].replay_attempts, 1);
    assert_eq!(pending[0].replayed_at, None);
    assert_eq!(pending[0].error, reason);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);

    assert!(matches!(
        replayer.replay(id + 1_000, false).await,
        Err(ReplayError::NotFound(n)) if n == id + 1_000
    ));
}
