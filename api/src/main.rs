//! `oms-api`: serves the HTTP API, or with `migrate` applies migrations and exits.

use anyhow::Context;
use api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    activities::telemetry::init("oms-api");
    let settings = Settings::from_env().context("reading settings")?;
    match std::env::args().nth(1).as_deref() {
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
