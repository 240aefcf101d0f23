//! `oms-api`: serves the HTTP API. `migrate` applies migrations and exits;
//! `openapi` and `postman` print the API description and the Postman collection.

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
    activities::telemetry::init("oms-api");
    let settings = Settings::from_env().context("reading settings")?;
    match command.as_deref() {
        None | Some("serve") => {
            let app = Application::build(settings)
                .await
                .context("starting the API")?;
            app.run_until_stopped(activities::telemetry::shutdown_signal())
                .await
                .context("serving")?;
            tracing::info!("api stopped");
        }
        Some("migrate") => {
            let pool = activities::store::connect(&settings.database).await?;
            activities::store::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Some(other) => {
            anyhow::bail!("unknown command {other:?}; use `serve` (default) or `migrate`")
        }
    }
    Ok(())
}
