//! Channel sync under load, on the whole stack: a Temporal dev server, the
//! simulator's two shops and WMS, one `oms-worker` and one `oms-api`, all
//! started here. Measures what a burst of orders costs each shop in writes,
//! how long a change takes to reach both shops, and what a shop outage does.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;

/// Where the binaries are and what to run.
pub struct ChannelArgs {
    pub api_bin: PathBuf,
    pub worker_bin: PathBuf,
    pub simulator_bin: PathBuf,
    pub temporal_cli: PathBuf,
    pub database_url: String,
    pub burst_orders: usize,
    pub latency_samples: usize,
    pub outage_secs: u64,
}

/// The drain interval the stack runs with (the default).
pub const INTERVAL: Duration = Duration::from_secs(1);

const SHOPS: [(&str, &str); 2] = [
    ("store-a.myshopify.com", "bench-secret-a"),
    ("store-b.myshopify.com", "bench-secret-b"),
];

/// What the scenarios measured.
pub struct ChannelReport {
    pub burst_orders: usize,
    /// From the first order sent to the last one at the warehouse.
    pub burst: Duration,
    /// From the first order sent until both shops showed Postgres' level.
    pub converged: Duration,
    /// Write calls per shop during the burst.
    pub writes: Vec<(String, u64)>,
    pub final_level: i64,
    pub shop_levels: Vec<(String, i64)>,
    pub latency_ms: Histogram<u64>,
    pub outage: Duration,
    /// The healthy shop's latency while the other was down.
    pub outage_latency_ms: Histogram<u64>,
    /// From the shop coming back to it showing the current level.
    pub recovery: Duration,
}

/// Children stopped on drop, last started first.
struct Stack(Vec<Child>);

impl Drop for Stack {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until_ready(url: &str, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before it was ready ({status})");
        }
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Env {
    api: String,
    sim: String,
    pool: PgPool,
    http: reqwest::Client,
}

impl Env {
    async fn set_stock(&self, sku: &str, stock: i64) -> anyhow::Result<()> {
        let r = self
            .http
            .patch(format!("{}/product/{sku}/stock", self.api))
            .json(&json!({ "stock": stock }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("setting stock of {sku}: {}", r.status());
        }
        Ok(())
    }

    async fn shop_level(&self, shop: &str, sku: &str) -> anyhow::Result<Option<i64>> {
        let inventory: Value = self
            .http
            .get(format!("{}/shops/{shop}/inventory", self.sim))
            .send()
            .await?
            .json()
            .await?;
        Ok(inventory[sku].as_i64())
    }

    async fn write_calls(&self, shop: &str) -> anyhow::Result<u64> {
        let stats: Value = self
            .http
            .get(format!("{}/shops/{shop}/stats", self.sim))
            .send()
            .await?
            .json()
            .await?;
        stats["writeCalls"].as_u64().context("writeCalls")
    }

    async fn in_stock(&self, sku: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar::<_, i32>("SELECT in_stock FROM products WHERE sku = $1")
                .bind(sku)
                .fetch_one(&self.pool)
                .await?
                .into(),
        )
    }

    /// Waits until every shop in `shops` shows `level` of `sku`.
    async fn shops_show(
        &self,
        shops: &[&str],
        sku: &str,
        level: i64,
        patience: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let mut all = true;
            for shop in shops {
                all &= self.shop_level(shop, sku).await? == Some(level);
            }
            if all {
                return Ok(started.elapsed());
            }
            if started.elapsed() > patience {
                bail!("{shops:?} did not show {level} of {sku} within {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn send_order(&self, shop: (&str, &str), id: u64, sku: &str) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&json!({
            "id": id, "name": format!("#B{id}"), "created_at": "2026-11-29T10:00:00Z",
            "currency": "EUR", "financial_status": "paid",
            "line_items": [{"id": id * 10 + 1, "sku": sku, "quantity": 1, "price": "19.90",
                            "title": "Bench tee", "requires_shipping": true}],
            "shipping_address": {"name": "Bench", "address1": "1 Main St", "city": "Berlin",
                                 "zip": "10115", "country_code": "DE"},
        }))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(shop.1.as_bytes())?;
        mac.update(&body);
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let r = self
            .http
            .post(format!("{}/webhooks/shopify", self.api))
            .header("content-type", "application/json")
            .header("x-shopify-shop-domain", shop.0)
            .header("x-shopify-topic", "orders/create")
            .header("x-shopify-hmac-sha256", signature)
            .body(body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("webhook {id}: {}", r.status());
        }
        Ok(())
    }
}

/// Starts the stack, runs the scenarios, stops the stack.
pub async fn run(args: &ChannelArgs) -> anyhow::Result<ChannelReport> {
    let (temporal_port, sim_port, api_port) = (free_port()?, free_port()?, free_port()?);
    let mut stack = Stack(Vec::new());
    eprintln!("channel sync: starting Temporal, the simulator, a worker and the API …");
    stack.0.push(
        Command::new(&args.temporal_cli)
            .args([
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--log-level",
                "error",
            ])
            .args(["--port", &temporal_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", args.temporal_cli.display()))?,
    );
    let sim = format!("http://127.0.0.1:{sim_port}");
    stack.0.push(
        Command::new(&args.simulator_bin)
            .env("OMS_SIMULATOR_ADDR", format!("127.0.0.1:{sim_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let sim_child = stack.0.last_mut().context("simulator")?;
    wait_until_ready(&format!("{sim}/control/state"), sim_child, "oms-simulator").await?;
    let shops: Vec<Value> = SHOPS
        .iter()
        .map(|(shop, secret)| {
            json!({"shop": shop, "webhook_secret": secret, "access_token": "shpat_bench",
                   "admin_url": format!("{sim}/shops/{shop}"), "location_id": "gid://shopify/Location/1"})
        })
        .collect();
    let common = [
        ("DATABASE_URL", args.database_url.clone()),
        (
            "TEMPORAL_ADDRESS",
            format!("http://127.0.0.1:{temporal_port}"),
        ),
        ("OMS_TASK_QUEUE", "oms-bench".into()),
        ("OMS_SHOPIFY_STORES", serde_json::to_string(&shops)?),
        (
            "OMS_CHANNEL_SYNC_INTERVAL_MILLIS",
            INTERVAL.as_millis().to_string(),
        ),
        ("OMS_DRIFT_REPAIR_INTERVAL_SECS", "0".into()),
        // The bench's shop secrets and the WMS token are throwaway values.
        ("OMS_ALLOW_DEV_SECRETS", "true".into()),
        ("RUST_LOG", "warn".into()),
    ];
    stack.0.push(
        Command::new(&args.worker_bin)
            .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
            .env("OMS_WMS_URL", format!("{sim}/wms/2026-07"))
            .env("OMS_WORKER_METRICS_ADDR", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let api = format!("http://127.0.0.1:{api_port}");
    stack.0.push(
        Command::new(&args.api_bin)
            .envs(common.iter().map(|(k, v)| (*k, v.as_str())))
            .env("OMS_API_ADDR", format!("127.0.0.1:{api_port}"))
            .env("OMS_RATE_LIMIT_RPS", "0")
            .env("OMS_WEBHOOK_RATE_LIMIT_RPS", "0")
            .env("OMS_MAX_IN_FLIGHT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let api_child = stack.0.last_mut().context("api")?;
    wait_until_ready(&format!("{api}/health/ready"), api_child, "oms-api").await?;
    let env = Env {
        api,
        sim,
        pool: PgPool::connect(&args.database_url).await?,
        http: crate::with_key(
            reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .timeout(Duration::from_secs(30)),
            &crate::issue_api_key(&args.api_bin, &args.database_url)?,
        )?,
    };
    let shop_names: Vec<&str> = SHOPS.iter().map(|(s, _)| *s).collect();

    // --- A burst of one-unit orders on one SKU, through signed webhooks.
    const BURST_STOCK: i64 = 100_000;
    env.set_stock("BURST-HOT", BURST_STOCK).await?;
    env.shops_show(
        &shop_names,
        "BURST-HOT",
        BURST_STOCK,
        Duration::from_secs(60),
    )
    .await?;
    let mut writes_before = Vec::new();
    for shop in &shop_names {
        writes_before.push(env.write_calls(shop).await?);
    }
    eprintln!("channel sync: {} orders on one SKU …", args.burst_orders);
    let started = Instant::now();
    let ids: Vec<u64> = (0..args.burst_orders as u64)
        .map(|i| 7_000_000 + i)
        .collect();
    for chunk in ids.chunks(32) {
        let sends = chunk
            .iter()
            .map(|id| env.send_order(SHOPS[usize::from(id % 2 == 1)], *id, "BURST-HOT"));
        for sent in futures::future::join_all(sends).await {
            sent?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE status = 'FULFILLMENT_REQUESTED' AND name LIKE '#B%'",
        )
        .fetch_one(&env.pool)
        .await?;
        if usize::try_from(done)? >= args.burst_orders {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {done} of {} orders reached the warehouse",
                args.burst_orders
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let burst = started.elapsed();
    let final_level = env.in_stock("BURST-HOT").await?;
    env.shops_show(
        &shop_names,
        "BURST-HOT",
        final_level,
        Duration::from_secs(120),
    )
    .await?;
    let converged = started.elapsed();
    let mut writes = Vec::new();
    let mut shop_levels = Vec::new();
    for (shop, before) in shop_names.iter().zip(writes_before) {
        writes.push((shop.to_string(), env.write_calls(shop).await? - before));
        shop_levels.push((
            shop.to_string(),
            env.shop_level(shop, "BURST-HOT").await?.unwrap_or(-1),
        ));
    }

    // --- Steady state: one change at a time, timed until both shops show it.
    eprintln!(
        "channel sync: latency of {} single changes …",
        args.latency_samples
    );
    let mut latency_ms = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..args.latency_samples {
        let level = 100 + i64::try_from(i)?;
        env.set_stock("LATENCY", level).await?;
        let took = env
            .shops_show(&shop_names, "LATENCY", level, Duration::from_secs(60))
            .await?;
        latency_ms.record(u64::try_from(took.as_millis())?.max(1))?;
        tokio::time::sleep(Duration::from_millis(rng.u64(200..1500))).await;
    }

    // --- Shop B down: shop A keeps its pace; B catches up when it returns.
    eprintln!("channel sync: shop B down for {} s …", args.outage_secs);
    let control = |mode: &str| {
        env.http
            .put(format!("{}/control/shops/{}/mode", env.sim, SHOPS[1].0))
            .json(&json!({ "mode": mode }))
            .send()
    };
    control("down").await?.error_for_status()?;
    let mut outage_latency_ms = Histogram::<u64>::new_with_bounds(1, 600_000, 3)?;
    let outage_started = Instant::now();
    let mut level = 1_000;
    while outage_started.elapsed() < Duration::from_secs(args.outage_secs) {
        level += 1;
        env.set_stock("OUTAGE", level).await?;
        let took = env
            .shops_show(&shop_names[..1], "OUTAGE", level, Duration::from_secs(60))
            .await?;
        outage_latency_ms.record(u64::try_from(took.as_millis())?.max(1))?;
        tokio::time::sleep(Duration::from_millis(rng.u64(500..2000))).await;
    }
    let outage = outage_started.elapsed();
    control("ok").await?.error_for_status()?;
    let recovery = env
        .shops_show(&shop_names[1..], "OUTAGE", level, Duration::from_secs(120))
        .await?;
    drop(stack);
    Ok(ChannelReport {
        burst_orders: args.burst_orders,
        burst,
        converged,
        writes,
        final_level,
        shop_levels,
        latency_ms,
        outage,
        outage_latency_ms,
        recovery,
    })
}
