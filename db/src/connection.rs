//! Reaching Postgres: settings, the pool, migrations, and [`Db`], the
//! handle every query goes through.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    PgPool, Postgres,
    migrate::{MigrateDatabase, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{
    error::DbError,
    reserver::{BatchObserver, Reserver, ReserverSettings},
    stock_change::StockChanged,
};

/// What a process hangs on its database handle.
#[derive(Clone, Default)]
pub struct DbHooks {
    /// After every reserve batch (the API feeds its metrics this way).
    pub batch_observer: Option<BatchObserver>,
    /// After every committed change of sellable stock.
    pub stock_changed: Option<StockChanged>,
}

/// The schema migrations, embedded at compile time from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How to reach Postgres.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Connection URL; secret because it may carry a password.
    pub url: SecretString,
    /// Pool size of this process.
    pub max_connections: u32,
    /// How long a request may wait for a free connection before failing.
    pub acquire_timeout: Duration,
}

/// Default database of a local run: the trust-auth server the Makefile ensures.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/oms";

impl DatabaseSettings {
    /// Reads `DATABASE_URL`, `OMS_DB_MAX_CONNECTIONS` and
    /// `OMS_DB_ACQUIRE_TIMEOUT_SECS`.
    pub fn from_env() -> Result<Self, runtime::config::ConfigError> {
        use runtime::config::{secret, secs_or, var_or};
        Ok(Self {
            url: secret("DATABASE_URL", DEFAULT_DATABASE_URL),
            max_connections: var_or("OMS_DB_MAX_CONNECTIONS", 16)?,
            acquire_timeout: secs_or("OMS_DB_ACQUIRE_TIMEOUT_SECS", Duration::from_secs(5))?,
        })
    }

    /// Settings for `url` with the defaults used by the binaries.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects to the database, creating it first if it does not exist yet
/// (a fresh machine has a server but not our database).
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, DbError> {
    let url = settings.url.expose_secret();
    if !Postgres::database_exists(url).await? {
        // Two processes may race to create it; losing that race is fine.
        if let Err(e) = Postgres::create_database(url).await
            && !Postgres::database_exists(url).await?
        {
            return Err(e.into());
        }
    }
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options.application_name("oms"))
        .await?;
    Ok(pool)
}

/// Applies pending migrations. Safe to run from several processes at once:
/// sqlx serializes them with an advisory lock.
///
/// Migrations newer than this binary knows are tolerated: during a rolling
/// deploy (or a rollback) the previous release must keep starting against
/// the schema the new one migrated. That holds because migrations only ever
/// expand the schema (new tables, nullable or defaulted columns), never
/// rename or drop what a previous release uses.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}

/// The database: every read and write of stock and orders goes through here.
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: PgPool,
    pub(crate) reserver: Reserver,
    stock_changed: Option<StockChanged>,
}

impl Db {
    /// Builds the handle and starts its reserve batching tasks on the current
    /// Tokio runtime.
    pub fn new(pool: PgPool, reserver: &ReserverSettings) -> Self {
        Self::with_hooks(pool, reserver, DbHooks::default())
    }

    /// Like [`Db::new`], with `hooks` called as they say.
    pub fn with_hooks(pool: PgPool, reserver: &ReserverSettings, hooks: DbHooks) -> Self {
        let reserver = Reserver::spawn(
            pool.clone(),
            reserver,
            hooks.batch_observer,
            hooks.stock_changed.clone(),
        );
        Self {
            pool,
            reserver,
            stock_changed: hooks.stock_changed,
        }
    }

    /// Tells the hook that sellable stock changed (after the commit).
    pub(crate) fn stock_changed(&self) {
        if let Some(hook) = &self.stock_changed {
            hook();
        }
    }

    /// Whether Postgres answers (readiness checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
