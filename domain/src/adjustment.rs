//! Taking units off an order before it ships (a refund, an edit).

use std::fmt;

/// Units taken off one line of an order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineRemoval {
    /// 1-based position of the line in the order.
    pub line_no: i32,
    /// Units taken off (at most what the line still has).
    pub units: i32,
    /// Whether the units are for sale again. They never left the
    /// warehouse, but a merchant who refunds without restocking says they
    /// are not fit to sell (damaged, say): they are written off instead.
    pub restock: bool,
}

impl fmt::Display for LineRemoval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: -{} ({})",
            self.line_no,
            self.units,
            if self.restock {
                "restocked"
            } else {
                "written off"
            }
        )
    }
}

/// An adjustment of an order, once: `key` is the refund's or edit's own id,
/// so a redelivery or a retry applies nothing twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderAdjustment {
    /// Identifies the adjustment (`refund:<id>`, `edit:<id>`).
    pub key: String,
    /// Why, for the order's history.
    pub reason: String,
    /// What comes off which line.
    pub removals: Vec<LineRemoval>,
    /// What is added to which line (an edit raising a quantity).
    #[serde(default)]
    pub additions: Vec<LineAddition>,
}

/// Units added to one line of an order (an edit raising its quantity):
/// reserved like the order's first units, all or none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineAddition {
    /// 1-based position of the line in the order.
    pub line_no: i32,
    /// Units added.
    pub units: i32,
}

/// What an adjustment did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Adjusted {
    /// Whether this call applied it (false: an earlier one had).
    pub applied: bool,
    /// Units the order still holds, over every line.
    pub remaining_units: i64,
    /// What was done, for people.
    pub summary: String,
    /// Why nothing was changed, when the added units are not in stock:
    /// the order stays as it was.
    #[serde(default)]
    pub refused: Option<String>,
}
