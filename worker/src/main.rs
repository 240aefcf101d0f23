//! `oms-worker`: runs the order workflows and activities until SIGINT/SIGTERM.
//! `oms-worker migrate` applies migrations and exits.

use anyhow::Context;
use worker::WorkerSettings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("oms-worker");
    let settings = WorkerSettings::from_env().context("reading settings")?;
    match std::env::args().nth(1).as_deref() {
        None | Some("run") => {
            worker::run(settings, runtime::telemetry::shutdown_signal())
                .await
                .context("worker")?;
            tracing::info!("worker stopped");
        }
        Some("migrate") => {
            let pool = db::connect(&settings.database).await?;
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; use `run` (default) or `migrate`"),
    }
    Ok(())
}
