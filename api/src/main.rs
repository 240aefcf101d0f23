//! `oms-api`: serves the HTTP API. `migrate` applies migrations and exits;
//! `openapi` and `postman` print the API description and the Postman collection;
//! `dead-letters list [--all]` and `dead-letters replay <id> [--force]` let an
//! operator inspect and replay webhooks that could not be processed;
//! `orders repair <id>|--all` settles orders whose workflow has ended;
//! `keys create|list|revoke` manages the REST API's keys;
//! `shopify-webhooks register --url <url> | list` subscribes the configured
//! shops to the topics the OMS handles (and re-enables a reinstalled shop);
//! `privacy list | export <id>` shows Shopify's privacy requests and exports
//! what the OMS holds for a customer's data request.

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
        Some("keys") => keys(settings).await?,
        Some("shopify-webhooks") => shopify_webhooks(settings).await?,
        Some("privacy") => privacy(settings).await?,
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; use `serve` (default), `migrate`, `openapi`, `postman`, `dead-letters`, `orders`, `keys`, `shopify-webhooks` or `privacy`"
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
        api::dead_letters::Replayer::new(db, settings.temporal.clone(), settings.saga_policy)
            .with_payment_gate(settings.payment_gate);
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
                        "payloadPurgedAt": d.payload_purged_at,
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

/// `shopify-webhooks register --url <url> [--shop <domain>]` subscribes each
/// configured shop (or one) to every topic the OMS handles, delivered to
/// `<url>` (the public address of `POST /webhooks/shopify`), and prints one
/// JSON object per subscription; `shopify-webhooks list` prints what each
/// shop has.
async fn shopify_webhooks(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let usage = "usage: oms-api shopify-webhooks register --url <https://…/webhooks/shopify> [--shop <domain>] | list [--shop <domain>]";
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let version = runtime::config::var_or(
        "OMS_SHOPIFY_API_VERSION",
        vendors::shopify::DEFAULT_API_VERSION.to_string(),
    )?;
    let only = value("--shop")
        .map(domain::ShopDomain::parse)
        .transpose()
        .context("--shop")?;
    let shops = settings
        .shops
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| &s.shop == o))
        .map(|s| {
            vendors::shopify::ShopifyClient::new(
                s.clone(),
                &version,
                std::time::Duration::from_secs(30),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(
        !shops.is_empty(),
        "no such shop is configured (OMS_SHOPIFY_SHOPS)"
    );
    match args.first().map(String::as_str) {
        Some("register") => {
            let url = value("--url").context(usage)?;
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "--url must be an absolute http(s) URL"
            );
            if !url.starts_with("https://") {
                eprintln!("warning: Shopify delivers webhooks only to https URLs");
            }
            let pool = db::connect(&settings.database).await?;
            let db = db::Db::new(pool, &settings.reserver);
            for shop in &shops {
                for r in api::shopify_webhooks::register(&db, shop, url).await? {
                    println!("{}", serde_json::to_string(&r)?);
                }
            }
            eprintln!(
                "the privacy topics (customers/data_request, customers/redact, shop/redact) are set in the app's configuration, not here; point them at the same URL"
            );
        }
        Some("list") => {
            for shop in &shops {
                for sub in shop.webhook_subscriptions().await? {
                    println!(
                        "{}",
                        serde_json::json!({"shop": shop.domain().as_str(), "subscription": sub})
                    );
                }
            }
        }
        _ => anyhow::bail!(usage),
    }
    Ok(())
}

/// `privacy list` prints the privacy requests received (ids only);
/// `privacy export <id>` prints, for a customer's data request, everything
/// the OMS holds about the orders it names, for the merchant to hand over.
async fn privacy(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let usage = "usage: oms-api privacy list | export <id>";
    let pool = db::connect(&settings.database).await?;
    let db = db::Db::new(pool, &settings.reserver);
    match args.first().map(String::as_str) {
        Some("list") => {
            for r in db.privacy_requests(1_000).await? {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Some("export") => {
            let id: i64 = args.get(1).context(usage)?.parse().context(usage)?;
            let request = db
                .privacy_request(id)
                .await?
                .with_context(|| format!("no privacy request {id}"))?;
            let orders = db
                .export_orders(&request.shop_domain, &request.shopify_order_ids)
                .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "request": request,
                    "orders": orders,
                }))?
            );
        }
        _ => anyhow::bail!(usage),
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

/// `keys create --name N --scopes a,b [--rps R --burst B]` prints the new key
/// once (only its hash is stored) as JSON, or with `--plain` the key alone
/// for scripts; `keys list [--all]` prints one JSON object per key (never a
/// key); `keys revoke <id>` revokes one (running processes drop it within
/// `OMS_API_KEY_REFRESH_SECS`).
async fn keys(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let usage = "usage: oms-api keys create --name <name> --scopes <scope,...> [--rps <n> --burst <n>] [--plain] | list [--all] | revoke <id>";
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    let pool = db::connect(&settings.database).await?;
    db::migrate(&pool).await?;
    let db = db::Db::new(pool, &settings.reserver);
    match args.first().map(String::as_str) {
        Some("create") => {
            let name = value("--name").context(usage)?;
            let scopes: Vec<&str> = value("--scopes").context(usage)?.split(',').collect();
            let rate = match (value("--rps"), value("--burst")) {
                (None, None) => None,
                (Some(rps), Some(burst)) => Some(api::Rate {
                    per_second: rps.parse().context("--rps must be a number")?,
                    burst: burst.parse().context("--burst must be a number")?,
                }),
                _ => anyhow::bail!("--rps and --burst go together"),
            };
            let issued = api::api_keys::issue_key(&db, name, &scopes, rate).await?;
            if flag("--plain") {
                println!("{}", issued.key);
            } else {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": issued.id,
                        "name": issued.name,
                        "scopes": issued.scopes,
                        "key": issued.key,
                    })
                );
                eprintln!("store the key now: it is not kept and cannot be shown again");
            }
        }
        Some("list") => {
            for k in db.api_keys(flag("--all")).await? {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": k.id,
                        "name": k.name,
                        "scopes": k.scopes,
                        "ratePerSecond": k.rate_per_second,
                        "burst": k.burst,
                        "createdAt": k.created_at,
                        "revokedAt": k.revoked_at,
                    })
                );
            }
        }
        Some("revoke") => {
            let id: uuid::Uuid = args.get(1).context(usage)?.parse().context(usage)?;
            if !db.revoke_api_key(id).await? {
                anyhow::bail!("no live key with id {id}");
            }
            eprintln!("key {id} revoked");
        }
        _ => anyhow::bail!(usage),
    }
    Ok(())
}
