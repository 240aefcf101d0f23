use std::fmt;

use crate::error::DomainError;

/// A stock-keeping unit: the product id of the inventory API.
///
/// Accepted: 1 to [`Sku::MAX_LEN`] characters, no control characters, no `/`
/// (it is a path segment of the API) and no leading or trailing whitespace
/// (Shopify admins paste SKUs with stray spaces; silently trimming would map
/// two distinct strings to one product).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    /// Longest SKU accepted, in characters.
    pub const MAX_LEN: usize = 64;

    /// Parses a SKU.
    pub fn parse(raw: impl Into<String>) -> Result<Self, DomainError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(DomainError::InvalidSku("SKU must not be empty".into()));
        }
        let len = raw.chars().count();
        if len > Self::MAX_LEN {
            return Err(DomainError::InvalidSku(format!(
                "SKU is {len} characters long; at most {} are allowed",
                Self::MAX_LEN
            )));
        }
        if raw.trim() != raw {
            return Err(DomainError::InvalidSku(
                "SKU must not start or end with whitespace".into(),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| c.is_control() || *c == '/') {
            return Err(DomainError::InvalidSku(format!(
                "SKU must not contain {bad:?}"
            )));
        }
        Ok(Self(raw))
    }

    /// The SKU as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the SKU, returning the owned string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Sku {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sku {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl TryFrom<&str> for Sku {
    type Error = DomainError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl serde::Serialize for Sku {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Sku {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_skus() {
        for ok in [
            "TSHIRT-POP-M",
            "a",
            "Popular T-Shirt",
            "ÄÖÜ-1",
            &"x".repeat(64),
        ] {
            assert_eq!(Sku::parse(ok).map(|s| s.into_inner()), Ok(ok.to_string()));
        }
    }

    #[test]
    fn rejects_empty_long_padded_slashed_and_control_skus() {
        for bad in ["", " A", "A ", "a/b", "a\nb", "a\u{0}b", &"x".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
