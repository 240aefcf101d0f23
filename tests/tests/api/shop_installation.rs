//! The app's life in a shop: registering the webhooks it needs, and an
//! uninstall that stops every write to the shop until it is reinstalled.

use serde_json::{Value, json};
use sqlx::PgPool;
use vendors::shopify::{DEFAULT_API_VERSION, ShopifyClient};

use crate::{
    saga_support::{SHOPS, order_id, order_payload, saga_env, wms_accepts},
    temporal::with_worker,
};

const CALLBACK: &str = "https://oms.example.com/webhooks/shopify";

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_uninstalled_shop_is_not_written_and_its_orders_are_refused_until_reregistered(
    pool: PgPool,
) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().expect(1).mount(&env.wms).await;
    let db = db::Db::new(pool.clone(), &Default::default());
    let second = ShopifyClient::new(
        env.worker.shops[1].clone(),
        DEFAULT_API_VERSION,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("LEAVING", 5).await;
        for shop in &env.shops {
            env.eventually("both shops show 5", || {
                shop.fake.available("LEAVING") == Some(5)
            })
            .await;
        }

        let r = env
            .send_webhook(SHOPS[1], "app/uninstalled", br#"{"id": 1, "name": "B"}"#)
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "disabled");
        let again = env
            .send_webhook(SHOPS[1], "app/uninstalled", br#"{"id": 1, "name": "B"}"#)
            .await;
        assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
        let channels = env.app.get_json("/channels").await;
        let b = channels
            .as_array()
            .or_else(|| channels["shops"].as_array())
            .unwrap()
            .iter()
            .find(|c| c["shop"] == SHOPS[1])
            .cloned()
            .unwrap();
        assert_eq!(b["enabled"], false, "{b}");
        assert!(b["uninstalledAt"].is_string(), "{b}");

        // Stock moves: only the shop that still has the app hears of it.
        env.app.set_stock("LEAVING", 9).await;
        env.eventually("the first shop shows 9", || {
            env.shops[0].fake.available("LEAVING") == Some(9)
        })
        .await;
        env.wait_until_every_change_is_pushed().await;
        assert_eq!(env.shops[1].fake.available("LEAVING"), Some(5));

        // Its order webhooks are refused, and nothing is recorded.
        let body = serde_json::to_vec(&order_payload(91_801, &[("LEAVING", 1)])).unwrap();
        let r = env.send_webhook(SHOPS[1], "orders/create", &body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "refused");
        let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = $1")
            .bind(order_id(SHOPS[1], 91_801))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(recorded, 0);

        // Reinstalled: the operator registers the webhooks; the shop is
        // enabled again and brought up to date.
        let registered = api::shopify_webhooks::register(&db, &second, CALLBACK)
            .await
            .unwrap();
        assert_eq!(registered.len(), api::shopify_webhooks::TOPICS.len());
        assert!(registered.iter().all(|r| r.outcome == "created"));
        env.eventually("the second shop shows 9 again", || {
            env.shops[1].fake.available("LEAVING") == Some(9)
        })
        .await;
        let r = env.send_webhook(SHOPS[1], "orders/create", &body).await;
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "accepted");
        env.wait_for_status(order_id(SHOPS[1], 91_801), &["FULFILLMENT_REQUESTED"])
            .await;

        // Registering again changes nothing.
        let again = api::shopify_webhooks::register(&db, &second, CALLBACK)
            .await
            .unwrap();
        assert!(again.iter().all(|r| r.outcome == "present"), "{again:?}");
        let listed = second.webhook_subscriptions().await.unwrap();
        assert_eq!(listed.len(), api::shopify_webhooks::TOPICS.len());
        assert!(listed.iter().all(|s| s.uri == CALLBACK));
        assert_eq!(json!(listed[0].topic), json!("ORDERS_CREATE"));
    })
    .await;
}
