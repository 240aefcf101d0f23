//! Every change of sellable stock reaches every shop, whatever path made it,
//! through the outbox and one sync per shop: batched, compare-and-set,
//! paced, and repaired when a shop drifts.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use simulator::ShopMode;
use sqlx::PgPool;
use wiremock::{Mock, Request, Respond, ResponseTemplate, matchers::method};

use crate::{
    fakes::FakeShop,
    observability::{sample, scrape},
    saga_support::{SHOPS, SagaEnv, order_payload, saga_env, saga_env_with, wms_accepts},
    temporal::{with_worker, with_worker_metrics},
};

impl SagaEnv {
    /// Waits until every shop shows `level` of `sku`.
    async fn shops_show(&self, sku: &str, level: i64) {
        for shop in &self.shops {
            self.eventually(&format!("{} shows {level} of {sku}", shop.domain), || {
                shop.fake.available(sku) == Some(level)
            })
            .await;
        }
    }

    /// IN_STOCK of `sku` in Postgres.
    async fn in_stock(&self, sku: &str) -> i64 {
        self.app.levels(sku).await.0
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn stock_api_reserves_unreserves_and_expiries_reach_every_shop(pool: PgPool) {
    let env = saga_env_with(pool.clone(), |s| {
        s.reserver.reservation_ttl = Some(Duration::from_secs(6));
        s.expiry_sweep_interval = Duration::from_millis(200);
    })
    .await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("TEE", 20).await;
        env.shops_show("TEE", 20).await;
        let mut tokens = Vec::new();
        for _ in 0..5 {
            tokens.push(env.app.reserve_token("TEE").await);
        }
        env.shops_show("TEE", 15).await;
        assert_eq!(env.app.unreserve("TEE", &tokens[0]).await.status(), 200);
        env.shops_show("TEE", 16).await;
        // The other four expire: their units come back, and so does the level.
        env.shops_show("TEE", 20).await;
        assert_eq!(env.app.levels("TEE").await, (20, 0, 0));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_change_reaches_the_shops_even_when_no_nudge_is_sent(pool: PgPool) {
    // This API knows no shops, so it nudges nobody: the shops' syncs find the
    // change on their idle poll.
    let env = saga_env_with(pool.clone(), |s| s.shops.clear()).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.wait_until_every_change_is_pushed().await;
        env.app.set_stock("QUIET", 7).await;
        env.shops_show("QUIET", 7).await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_safety_buffer_holds_units_back_from_its_shop_only(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    env.worker.shops[0].safety_buffer = 2;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("BUF", 10).await;
        env.eventually("shop A holds 2 back", || {
            env.shops[0].fake.available("BUF") == Some(8)
        })
        .await;
        env.eventually("shop B shows all", || {
            env.shops[1].fake.available("BUF") == Some(10)
        })
        .await;
        env.app.set_stock("BUF", 1).await;
        env.eventually("never below zero", || {
            env.shops[0].fake.available("BUF") == Some(0)
        })
        .await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn two_workers_interleaving_never_leave_a_shop_stale(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    wms_accepts().mount(&env.wms).await;
    for sku in ["W1", "W2"] {
        env.app.set_stock(sku, 30).await;
    }
    let second = env.worker.clone();
    with_worker(env.worker.clone(), pool.clone(), async {
        with_worker(second, pool.clone(), async {
            // Orders, reserves, releases and restocks on two SKUs, all at once,
            // handled by whichever worker picks each task up.
            let work = (0..6_u64).map(|i| {
                let env = &env;
                async move {
                    let sku = if i % 2 == 0 { "W1" } else { "W2" };
                    let order = env.place(30_000 + i, &[(sku, 1)]).await;
                    let token = env.app.reserve_token(sku).await;
                    if i % 3 == 0 {
                        env.app.unreserve(sku, &token).await;
                    }
                    if i == 4 {
                        env.app.set_stock(sku, 25).await;
                    }
                    env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
                }
            });
            futures::future::join_all(work).await;
            env.wait_until_every_change_is_pushed().await;
            for sku in ["W1", "W2"] {
                let level = env.in_stock(sku).await;
                env.shops_show(sku, level).await;
            }
        })
        .await;
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_burst_of_orders_costs_each_shop_at_most_one_write_per_interval(pool: PgPool) {
    let mut env = saga_env(pool.clone()).await;
    let interval = Duration::from_millis(1_000);
    env.worker.channel_sync.policy.interval_millis = 1_000;
    wms_accepts().mount(&env.wms).await;
    env.app.set_stock("HOT", 1_000).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.shops_show("HOT", 1_000).await;
        let writes_before: Vec<u64> = env
            .shops
            .iter()
            .map(|s| s.fake.stats().write_calls)
            .collect();
        let started = Instant::now();
        let orders = 60_u64;
        let placed =
            futures::future::join_all((0..orders).map(|i| env.place(40_000 + i, &[("HOT", 1)])))
                .await;
        for order in placed {
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        }
        env.shops_show("HOT", 1_000 - 60).await;
        env.wait_until_every_change_is_pushed().await;
        let elapsed = started.elapsed();
        let bound = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64 + 2;
        for (shop, before) in env.shops.iter().zip(writes_before) {
            let writes = shop.fake.stats().write_calls - before;
            assert!(
                writes <= bound,
                "{}: {writes} writes for {orders} orders in {elapsed:?} (bound {bound})",
                shop.domain
            );
            assert!(
                writes < orders,
                "{}: coalesced: {writes} writes",
                shop.domain
            );
        }
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_shop_that_is_down_converges_when_it_returns_and_does_not_delay_the_other(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("DOWN", 3).await;
        env.shops_show("DOWN", 3).await;
        env.shops[1].fake.set_mode(ShopMode::Down);
        env.app.set_stock("DOWN", 7).await;
        env.eventually("the healthy shop is written at once", || {
            env.shops[0].fake.available("DOWN") == Some(7)
        })
        .await;
        assert_eq!(env.shops[1].fake.available("DOWN"), Some(3));
        // The outage is visible to operators.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let channels = env.app.get_json("/channels").await;
            let b = channels["shops"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["shop"] == SHOPS[1])
                .cloned()
                .unwrap();
            if b["lastError"].is_string() && b["pendingSkus"] == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "outage not shown: {channels}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        env.shops[1].fake.set_mode(ShopMode::Ok);
        env.shops_show("DOWN", 7).await;
        env.wait_until_every_change_is_pushed().await;
        let channels = env.app.get_json("/channels").await;
        for shop in channels["shops"].as_array().unwrap() {
            assert_eq!(shop["pendingSkus"], 0, "{shop}");
            assert!(shop["lastError"].is_null(), "{shop}");
            assert!(shop["lastWriteAt"].is_string(), "{shop}");
        }
    })
    .await;
}

/// A shop whose first write meets a sale made in the shop a moment before:
/// the compare value the OMS read is stale by then.
struct SaleDuringFirstWrite {
    shop: FakeShop,
    sku: &'static str,
    done: Arc<AtomicBool>,
}

impl Respond for SaleDuringFirstWrite {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let is_write = String::from_utf8_lossy(&request.body).contains("inventorySetQuantities");
        if is_write && !self.done.swap(true, Ordering::SeqCst) {
            let now = self.shop.available(self.sku).unwrap_or(0);
            self.shop.set_available(self.sku, now - 1);
        }
        self.shop.respond(request)
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_stale_compare_value_is_read_again_and_the_level_still_lands(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let shop = &env.shops[0];
    shop.server.reset().await;
    Mock::given(method("POST"))
        .respond_with(SaleDuringFirstWrite {
            shop: shop.fake.clone(),
            sku: "STALE",
            done: Arc::default(),
        })
        .mount(&shop.server)
        .await;
    shop.fake.set_available("STALE", 4);
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("STALE", 9).await;
        env.shops_show("STALE", 9).await;
        assert_eq!(
            shop.fake.stats().refused_writes,
            1,
            "the stale write was refused"
        );
    })
    .await;
}

/// A shop that holds its first write until the test lets it through.
struct HeldWrite {
    shop: FakeShop,
    arrived: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Respond for HeldWrite {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let is_write = String::from_utf8_lossy(&request.body).contains("inventorySetQuantities");
        if is_write && let Some(arrived) = self.arrived.lock().unwrap().take() {
            // This mock server runs on a thread of its own: holding it holds
            // only this shop's write, which is the point.
            arrived.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
        self.shop.respond(request)
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_change_committed_while_a_push_is_in_flight_is_pushed_afterwards(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let shop = &env.shops[0];
    let (arrived_tx, arrived_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    shop.server.reset().await;
    Mock::given(method("POST"))
        .respond_with(HeldWrite {
            shop: shop.fake.clone(),
            arrived: Mutex::new(Some(arrived_tx)),
            release: Mutex::new(release_rx),
        })
        .mount(&shop.server)
        .await;
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("RACE", 10).await;
        // The push of 10 is on the wire: the change to 6 commits meanwhile.
        tokio::task::spawn_blocking(move || arrived_rx.recv().unwrap())
            .await
            .unwrap();
        env.app.set_stock("RACE", 6).await;
        release_tx.send(()).unwrap();
        env.eventually("the later change is pushed too", || {
            shop.fake.available("RACE") == Some(6)
        })
        .await;
        env.wait_until_every_change_is_pushed().await;
        assert_eq!(shop.fake.available("RACE"), Some(6));
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_manual_edit_in_a_shop_is_repaired_by_the_drift_run_and_counted(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    let metrics = worker::WorkerMetrics::start("127.0.0.1:0".parse().unwrap()).unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.addr());
    let client = orchestrator::connect(&env.worker.temporal).await.unwrap();
    with_worker_metrics(env.worker.clone(), pool.clone(), Some(metrics), async {
        env.app.set_stock("EDIT", 10).await;
        env.app.set_stock("KEEP", 4).await;
        env.shops_show("EDIT", 10).await;
        env.shops_show("KEEP", 4).await;
        env.wait_until_every_change_is_pushed().await;
        // A merchant types 3 into shop A's admin.
        env.shops[0].fake.set_available("EDIT", 3);
        let reports = orchestrator::run_drift_repair(&client, &env.worker.temporal.task_queue)
            .await
            .unwrap();
        let a = reports.iter().find(|r| r.shop == SHOPS[0]).unwrap();
        let b = reports.iter().find(|r| r.shop == SHOPS[1]).unwrap();
        assert_eq!((a.checked, a.repaired), (2, 1), "{reports:?}");
        assert_eq!((b.checked, b.repaired), (2, 0), "{reports:?}");
        env.eventually("shop A shows the OMS level again", || {
            env.shops[0].fake.available("EDIT") == Some(10)
        })
        .await;
        let channels: Value = env.app.get_json("/channels").await;
        let a = channels["shops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["shop"] == SHOPS[0])
            .unwrap();
        assert_eq!(
            (a["driftChecked"].as_i64(), a["driftRepaired"].as_i64()),
            (Some(2), Some(1))
        );
        let text = scrape(&metrics_url).await;
        assert_eq!(
            sample(
                &text,
                "oms_channel_drift_repaired_total",
                &[("shop", SHOPS[0])]
            ),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(
                &text,
                "oms_channel_sync_writes_total",
                &[("shop", SHOPS[0]), ("outcome", "applied")]
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_shop_that_does_not_sell_a_sku_is_left_alone_without_an_error(pool: PgPool) {
    let env = saga_env(pool.clone()).await;
    env.shops[1].fake.does_not_sell("ONLY-A");
    with_worker(env.worker.clone(), pool.clone(), async {
        env.app.set_stock("ONLY-A", 5).await;
        env.eventually("shop A sells it", || {
            env.shops[0].fake.available("ONLY-A") == Some(5)
        })
        .await;
        env.wait_until_every_change_is_pushed().await;
        assert_eq!(env.shops[1].fake.available("ONLY-A"), None);
        let channels: Value = env.app.get_json("/channels").await;
        for shop in channels["shops"].as_array().unwrap() {
            assert!(shop["lastError"].is_null(), "{shop}");
        }
    })
    .await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_order_burst_through_webhooks_leaves_every_shop_at_postgres_level(pool: PgPool) {
    // The same through the signed-webhook intake, and with an order that the
    // warehouse refuses (its release is queued too).
    let env = saga_env(pool.clone()).await;
    wms_accepts().mount(&env.wms).await;
    env.app.set_stock("MIX", 50).await;
    with_worker(env.worker.clone(), pool.clone(), async {
        for i in 0..10_u64 {
            let shop = SHOPS[usize::from(i % 2 == 1)];
            let body = serde_json::to_vec(&order_payload(50_000 + i, &[("MIX", 2)])).unwrap();
            assert_eq!(
                env.send_webhook(shop, "orders/create", &body)
                    .await
                    .status(),
                200
            );
            let order = crate::saga_support::order_id(shop, 50_000 + i);
            env.wait_for_status(order, &["FULFILLMENT_REQUESTED"]).await;
        }
        env.wait_until_every_change_is_pushed().await;
        let level = env.in_stock("MIX").await;
        assert_eq!(level, 30);
        env.shops_show("MIX", level).await;
    })
    .await;
}
