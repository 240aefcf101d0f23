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

/// Whether development secrets are accepted: `OMS_ALLOW_DEV_SECRETS=true`,
/// which the local stack, the compose file and the tests set, and a
/// deployment never should.
pub fn dev_secrets_allowed() -> Result<bool, ConfigError> {
    var_or("OMS_ALLOW_DEV_SECRETS", false)
}

/// Shortest secret accepted outside development. Shopify's client secrets
/// and access tokens, and ShipBob's tokens, are all far longer.
const MIN_SECRET_LEN: usize = 16;

/// The secrets this repository ships for local runs: public, so never
/// accepted outside development.
const DEVELOPMENT_SECRETS: &[&str] = &[
    "dev-token",
    "dev-webhook-secret-a",
    "dev-webhook-secret-b",
    "shpat_dev_a",
    "shpat_dev_b",
    "whsec_b21zLWxvY2FsLXdhcmVob3VzZS13ZWJob29rcw==",
];

/// Checks a secret named `name`: empty is refused always (an empty HMAC key
/// makes every signature forgeable); short or shipped development values
/// only when `allow_dev`. The error names the setting, never the value.
pub fn check_secret(name: &str, value: &str, allow_dev: bool) -> Result<(), ConfigError> {
    let refuse = |reason: &str| ConfigError {
        name: name.into(),
        value: "<redacted>".into(),
        reason: reason.into(),
    };
    if value.trim().is_empty() {
        return Err(refuse("is empty"));
    }
    if allow_dev {
        return Ok(());
    }
    if DEVELOPMENT_SECRETS.contains(&value) {
        return Err(refuse(
            "is a development value from this repository; set a real secret (or OMS_ALLOW_DEV_SECRETS=true on a development machine)",
        ));
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(refuse(&format!(
            "is shorter than {MIN_SECRET_LEN} characters; set a real secret (or OMS_ALLOW_DEV_SECRETS=true on a development machine)"
        )));
    }
    Ok(())
}

/// A secret variable that must be set to a real value, falling back to
/// `dev_default` only in development.
pub fn required_secret(
    name: &str,
    dev_default: &str,
) -> Result<secrecy::SecretString, ConfigError> {
    let allow_dev = dev_secrets_allowed()?;
    let value = match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ if allow_dev => dev_default.to_string(),
        _ => {
            return Err(ConfigError {
                name: name.into(),
                value: String::new(),
                reason: "is required (OMS_ALLOW_DEV_SECRETS=true uses a development value)".into(),
            });
        }
    };
    check_secret(name, &value, allow_dev)?;
    Ok(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_short_and_shipped_secrets_are_refused_outside_development() {
        assert!(check_secret("S", "", true).is_err());
        assert!(check_secret("S", "  ", false).is_err());
        assert!(check_secret("S", "dev-token", false).is_err());
        assert!(check_secret("S", "short", false).is_err());
        assert!(check_secret("S", "dev-token", true).is_ok());
        assert!(check_secret("S", "a3f9c2e1d0b8a7f6e5d4c3b2", false).is_ok());
        let err = check_secret("OMS_WMS_TOKEN", "dev-token", false).unwrap_err();
        assert!(!err.to_string().contains("dev-token"), "{err}");
    }
}
