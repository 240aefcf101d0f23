use std::fmt;

use crate::error::DomainError;

/// Upper bound of any stock level or line quantity.
///
/// Far above any real warehouse, far below `i32::MAX`, so sums of a few levels
/// never overflow the `INTEGER` columns that store them.
const MAX: i64 = 1_000_000_000;

/// A stock level to set: a whole number in `0..=1_000_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StockQuantity(i32);

/// A positive number of units on an order line or a reservation: `1..=1_000_000_000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i32);

fn in_range(value: i64, min: i64, what: &str) -> Result<i32, DomainError> {
    if value < min {
        return Err(DomainError::InvalidQuantity(format!(
            "{what} must be at least {min}, got {value}"
        )));
    }
    if value > MAX {
        return Err(DomainError::InvalidQuantity(format!(
            "{what} must be at most {MAX}, got {value}"
        )));
    }
    // In range by the checks above.
    i32::try_from(value)
        .map_err(|_| DomainError::InvalidQuantity(format!("{what} is out of range")))
}

/// Reads a JSON number that must be a whole number, naming `what` in errors.
fn whole(number: &serde_json::Number, what: &str) -> Result<i64, DomainError> {
    if let Some(v) = number.as_i64() {
        return Ok(v);
    }
    if number.is_u64() {
        return Err(DomainError::InvalidQuantity(format!(
            "{what} must be at most {MAX}, got {number}"
        )));
    }
    Err(DomainError::InvalidQuantity(format!(
        "{what} must be a whole number, got {number}"
    )))
}

impl StockQuantity {
    /// Parses a stock level.
    pub fn new(value: i64) -> Result<Self, DomainError> {
        in_range(value, 0, "stock").map(Self)
    }

    /// The level as the database stores it.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl Quantity {
    /// One unit.
    pub const ONE: Self = Self(1);

    /// Parses a positive quantity.
    pub fn new(value: i64) -> Result<Self, DomainError> {
        in_range(value, 1, "quantity").map(Self)
    }

    /// The quantity as the database stores it.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Fractions and numbers beyond `i64` get an error of their own rather than
/// a generic type mismatch.
impl TryFrom<&serde_json::Number> for StockQuantity {
    type Error = DomainError;
    fn try_from(number: &serde_json::Number) -> Result<Self, Self::Error> {
        Self::new(whole(number, "stock")?)
    }
}

impl TryFrom<&serde_json::Number> for Quantity {
    type Error = DomainError;
    fn try_from(number: &serde_json::Number) -> Result<Self, Self::Error> {
        Self::new(whole(number, "quantity")?)
    }
}

impl fmt::Display for StockQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = i64::deserialize(d)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_accepts_zero_and_the_maximum() {
        assert_eq!(StockQuantity::new(0).map(StockQuantity::get), Ok(0));
        assert_eq!(
            StockQuantity::new(MAX).map(StockQuantity::get),
            Ok(1_000_000_000)
        );
    }

    #[test]
    fn stock_rejects_negative_and_absurd_values() {
        assert!(StockQuantity::new(-1).is_err());
        assert!(StockQuantity::new(MAX + 1).is_err());
    }

    #[test]
    fn stock_from_json_number_names_fractions_and_huge_numbers() {
        let frac =
            StockQuantity::try_from(&serde_json::Number::from_f64(1.5).unwrap()).unwrap_err();
        assert!(frac.to_string().contains("whole number"), "{frac}");
        let huge = StockQuantity::try_from(&serde_json::Number::from(u64::MAX)).unwrap_err();
        assert!(huge.to_string().contains("at most"), "{huge}");
    }

    #[test]
    fn quantity_must_be_positive() {
        assert!(Quantity::new(0).is_err());
        assert_eq!(Quantity::new(3).map(Quantity::get), Ok(3));
    }
}
