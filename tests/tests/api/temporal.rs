//! One Temporal dev server per test binary, and a worker per test.

use std::{
    future::Future,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use worker::{WorkerMetrics, WorkerSettings};

/// The dev server's frontend address.
pub fn dev_server() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        let cli = std::env::var("OMS_TEMPORAL_CLI").map(PathBuf::from).unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/temporal/bin/temporal")
        });
        assert!(
            cli.exists(),
            "Temporal CLI not found at {}: `make test` installs it (scripts/ensure-temporal.sh)",
            cli.display()
        );
        let port = free_port();
        // A watchdog shell stops the server when this test process ends,
        // however it ends (statics are never dropped).
        let script = format!(
            "\"$0\" server start-dev --headless --ip 127.0.0.1 --port {port} --log-level error & srv=$!; \
             while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill $srv",
            pid = std::process::id()
        );
        // Never waited for: the watchdog outlives every test by design.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&cli)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Temporal dev server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the Temporal dev server did not open port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        format!("http://127.0.0.1:{port}")
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `body` while an in-process worker serves `settings.temporal.task_queue`,
/// then stops the worker. (The SDK's worker is not `Send`, so it runs on this
/// task, beside the body, rather than spawned.)
pub async fn with_worker<T>(
    settings: WorkerSettings,
    pool: PgPool,
    body: impl Future<Output = T>,
) -> T {
    with_worker_metrics(settings, pool, None, body).await
}

/// [`with_worker`], the worker serving its metrics on `metrics`.
pub async fn with_worker_metrics<T>(
    settings: WorkerSettings,
    pool: PgPool,
    metrics: Option<WorkerMetrics>,
    body: impl Future<Output = T>,
) -> T {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = worker::run_with_metrics(settings, pool, metrics, async {
        let _ = stopped.await;
    });
    let body = async {
        let out = body.await;
        let _ = stop.send(());
        out
    };
    let (ran, out) = tokio::join!(worker, body);
    ran.expect("the worker ran and stopped cleanly");
    out
}
