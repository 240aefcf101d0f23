//! Allocating an order's stock: every line or none.

use std::fmt;

/// One line to check or reserve. The SKU is kept raw (it may be empty or
/// malformed): allocation rejects such a line with a reason rather than
/// losing the order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineQty {
    /// 1-based position in the order.
    pub line_no: i32,
    /// SKU as received.
    pub sku: String,
    /// Units.
    pub quantity: i32,
}

/// Why a line cannot be allocated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LineProblem {
    /// 1-based position of the line in the order.
    pub line_no: i32,
    /// SKU as received (may be empty).
    pub sku: String,
    /// What is wrong, for people.
    pub reason: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sku = if self.sku.is_empty() {
            "no SKU"
        } else {
            &self.sku
        };
        write!(f, "line {} ({sku}): {}", self.line_no, self.reason)
    }
}

/// The result of allocating a whole order: all lines or none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReserveOutcome {
    /// Every line is reserved; the SKUs touched.
    Reserved {
        /// Distinct SKUs, sorted.
        skus: Vec<String>,
    },
    /// Nothing was reserved; one problem per failing line.
    Rejected {
        /// Sorted by line.
        problems: Vec<LineProblem>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_its_line_sku_and_reason() {
        let p = LineProblem {
            line_no: 2,
            sku: String::new(),
            reason: "the line has no SKU".into(),
        };
        assert_eq!(p.to_string(), "line 2 (no SKU): the line has no SKU");
    }
}
