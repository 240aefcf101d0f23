use std::{net::SocketAddr, time::Duration};

use activities::{
    config::{ConfigError, secs_or, var_or},
    store::{DatabaseSettings, ReserverSettings},
};

/// Everything the API process needs, built once at start-up (or by a test).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen; port 0 picks a free one.
    pub listen_addr: SocketAddr,
    /// Postgres.
    pub database: DatabaseSettings,
    /// Reserve batching.
    pub reserver: ReserverSettings,
    /// How often expired reservations are swept back to IN_STOCK.
    pub expiry_sweep_interval: Duration,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
}

impl Settings {
    /// Reads the settings from the environment (see the README for the list).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: var_or("OMS_API_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database: DatabaseSettings::from_env()?,
            reserver: ReserverSettings::from_env()?,
            expiry_sweep_interval: secs_or("OMS_EXPIRY_SWEEP_SECS", Duration::from_secs(30))?,
            body_limit_bytes: var_or("OMS_BODY_LIMIT_BYTES", 256 * 1024)?,
        })
    }
}
