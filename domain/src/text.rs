//! Text and numbers that arrive from outside (a client, a shop) and end up
//! in the database and in front of the warehouse team: what is refused, so
//! that a bad value is named at the edge instead of failing deep inside.

use std::fmt;

use crate::DomainError;

/// Why `value` cannot be kept as free text of at most `max_chars`
/// characters: control characters (NUL above all, which Postgres refuses)
/// and over-long values are refused. `None` when it can.
pub fn text_problem(value: &str, max_chars: usize) -> Option<String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Some(format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    let n = value.chars().count();
    (n > max_chars).then(|| format!("must be at most {max_chars} characters, got {n}"))
}

/// A unit price as a decimal string that fits the price column
/// (`NUMERIC(14, 4)`): up to 10 digits before the point, up to 4 after, no
/// sign, no exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price(String);

impl Price {
    /// Most digits before the decimal point.
    pub const MAX_INTEGER_DIGITS: usize = 10;
    /// Most digits after it.
    pub const MAX_FRACTION_DIGITS: usize = 4;

    /// Parses a decimal price such as `19.90`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        let ok = !int.is_empty()
            && digits(int)
            && digits(frac)
            && (!raw.contains('.') || !frac.is_empty())
            && int.len() <= Self::MAX_INTEGER_DIGITS
            && frac.len() <= Self::MAX_FRACTION_DIGITS;
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(DomainError::InvalidPrice(format!(
                "{:?} is not a price of at most {} digits before the point and {} after",
                raw.chars().take(40).collect::<String>(),
                Self::MAX_INTEGER_DIGITS,
                Self::MAX_FRACTION_DIGITS
            )))
        }
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_control_characters_or_too_long_is_refused() {
        assert_eq!(text_problem("Grace Hopper", 20), None);
        assert!(text_problem("A\u{0}B", 20).unwrap().contains("U+0000"));
        assert!(text_problem("line\nbreak", 20).is_some());
        assert!(
            text_problem(&"x".repeat(21), 20)
                .unwrap()
                .contains("at most 20")
        );
        assert_eq!(text_problem("Ünïcødé", 7), None);
    }

    #[test]
    fn prices_must_fit_the_column() {
        for ok in ["0", "19.90", "9999999999.9999", "5.5"] {
            assert!(Price::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "99999999999999.99",
            "1.23456",
            "-1.00",
            "1e3",
            "NaN",
            "inf",
            "1.",
            ".5",
            "1,50",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad}");
        }
    }
}
