//! `oms-api`: serves the HTTP API. `migrate` applies migrations and exits;
//! `openapi` and `postman` print the API description and the Postman collection;
//! `dead-letters list [--all]` and `dead-letters replay <id> [--force]` let an
//! operator inspect and replay webhooks that could not be processed;
//! `orders repair <id>|--all` settles orders whose workflow has ended.

use anyhow::Context;
use api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1);
    // These print documents on stdout: no logging, no settings needed.
    match command.as_deref() {
        Some("openapi") => {
            let spec = <api::openapi::ApiDoc as utoipa::OpenApi>::openapi();
            println!("{}", spec.to_pretty_json()?);
            return Ok(());
        }
        Some("postman") => {
            let spec = serde_json::to_value(<api::openapi::ApiDoc as utoipa::OpenApi>::openapi())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&api::openapi::postman_collection(&spec))?
            );
            return Ok(());
        }
        _ => {}
    }
    runtime::telemetry::init("oms-api");
    let settings = Settings::from_env().context("reading settings")?;
    match command.as_deref() {
        None | Some("serve") => {
            let app = Application::build(settings)
                .await
                .context("starting the API")?;
            app.run_until_stopped(runtime::telemetry::shutdown_signal())
                .await
                .context("serving")?;
            tracing::info!("api stopped");
        }
        Some("migrate") => {
            let pool = db::connect(&settings.database).await?;
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Some("dead-letters") => dead_letters(settings).await?,
        Some("orders") => orders(settings).await?,
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; use `serve` (default), `migrate`, `openapi`, `postman`, `dead-letters` or `orders`"
        ),
    }
    Ok(())
}

/// `dead-letters list [--all]` prints one JSON object per dead letter (never
/// the payload: it holds customer data); `dead-letters replay <id> [--force]`
/// prints what the replay did.
async fn dead_letters(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let pool = db::connect(&settings.database).await?;
    let db = db::Db::new(pool, &settings.reserver);
    let replayer =
        api::dead_letters::Replayer::new(db, settings.temporal.clone(), settings.saga_policy);
    match args.first().map(String::as_str) {
        Some("list") => {
            for d in replayer.list(flag("--all"), 1_000).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": d.id,
                        "shop": d.shop_domain,
                        "topic": d.topic,
                        "webhookId": d.webhook_id,
                        "error": d.error,
                        "payloadBytes": d.payload.len(),
                        "receivedAt": d.received_at,
                        "replayAttempts": d.replay_attempts,
                        "replayedAt": d.replayed_at,
                        "replayedOrderId": d.replayed_order_id,
                    })
                );
            }
        }
        Some("replay") => {
            let id: i64 = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .context("usage: oms-api dead-letters replay <id> [--force]")?;
            let outcome = replayer.replay(id, flag("--force")).await?;
            println!("{}", serde_json::to_string(&outcome)?);
        }
        _ => anyhow::bail!("usage: oms-api dead-letters list [--all] | replay <id> [--force]"),
    }
    Ok(())
}

/// `orders repair <order id>` settles that order if its workflow has ended
/// (the workers do the work, as the scheduled reconciliation would);
/// `orders repair --all` reconciles every candidate now. Prints one JSON
/// object per order it settled.
async fn orders(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let usage = "usage: oms-api orders repair <order id> | repair --all";
    let order_id = match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("repair"), Some("--all")) => None,
        (Some("repair"), Some(id)) => Some(id.parse().context(usage)?),
        _ => anyhow::bail!(usage),
    };
    let client = orchestrator::connect(&settings.temporal).await?;
    let reconcile = orchestrator::ReconcileSettings {
        // An operator asking about an order means now.
        quiet: std::time::Duration::ZERO,
        ..orchestrator::ReconcileSettings::from_env()?
    };
    let repairs =
        orchestrator::run_reconcile(&client, &settings.temporal.task_queue, &reconcile, order_id)
            .await?;
    if repairs.is_empty() {
        eprintln!("nothing to repair: every order looked at has a running workflow or is settled");
    }
    for r in repairs {
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}
