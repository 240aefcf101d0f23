//! Reading typed settings from the environment.
//!
//! Binaries call these once at start-up to build their settings structs;
//! tests build the structs directly, so there is no global configuration.

use std::{str::FromStr, time::Duration};

use thiserror::Error;

/// A setting that was present but could not be parsed.
#[derive(Debug, Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: String,
    /// What it held (never a secret: secrets are read with [`secret`]).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// The variable `name` parsed as `T`, or `default` when unset or empty.
pub fn var_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.into(),
            value: v.clone(),
            reason: e.to_string(),
        }),
        _ => Ok(default),
    }
}

/// The variable `name` as whole seconds, or `default`.
pub fn secs_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    var_or(name, default.as_secs()).map(Duration::from_secs)
}

/// A secret variable, or `default`; the value is never echoed in errors.
pub fn secret(name: &str, default: &str) -> secrecy::SecretString {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.into(),
        _ => default.to_string().into(),
    }
}
