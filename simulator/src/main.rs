//! `oms-simulator`: serves the simulated Shopify stores and WMS on
//! `OMS_SIMULATOR_ADDR` (default `127.0.0.1:8090`) until SIGINT/SIGTERM.

use anyhow::Context;
use simulator::{DEFAULT_ADDR, Simulator};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("oms-simulator");
    let addr = std::env::var("OMS_SIMULATOR_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(addr = ?listener.local_addr().ok(), "simulator listening; GET / lists the endpoints");
    // The warehouse's webhooks go to the OMS when both are set.
    let url = std::env::var("OMS_SIMULATOR_WMS_WEBHOOK_URL").unwrap_or_default();
    let secret = std::env::var("OMS_WMS_WEBHOOK_SECRET").unwrap_or_default();
    let simulator = if url.is_empty() || secret.is_empty() {
        Simulator::new()
    } else {
        let sink = simulator::EventSink::new(url.clone(), &secret)
            .map_err(|e| anyhow::anyhow!("OMS_WMS_WEBHOOK_SECRET: {e}"))?;
        tracing::info!(%url, "warehouse events go to the OMS");
        Simulator::with_events(sink)
    };
    // The shops' webhooks (a cancellation, a payment) go to the OMS when
    // both are set: signed with each shop's secret from the OMS's stores file.
    let shop_url = std::env::var("OMS_SIMULATOR_SHOPIFY_WEBHOOK_URL").unwrap_or_default();
    let stores = std::env::var("OMS_SHOPIFY_STORES_FILE").unwrap_or_default();
    let simulator = if shop_url.is_empty() || stores.is_empty() {
        simulator
    } else {
        let file = std::fs::read(&stores).with_context(|| format!("reading {stores}"))?;
        let stores: serde_json::Value =
            serde_json::from_slice(&file).with_context(|| format!("{stores} is not JSON"))?;
        let sink = simulator::ShopWebhookSink::new(shop_url.clone(), &stores)
            .map_err(|e| anyhow::anyhow!("OMS_SHOPIFY_STORES_FILE: {e}"))?;
        tracing::info!(url = %shop_url, "shop webhooks go to the OMS");
        simulator.with_shop_webhooks(sink)
    };
    axum::serve(listener, simulator.router())
        .with_graceful_shutdown(runtime::telemetry::shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("simulator stopped");
    Ok(())
}
