//! An order's payment, as Shopify reports it, and which payments the OMS
//! waits for before an order goes to the warehouse.

use std::{fmt, str::FromStr};

use crate::error::DomainError;

/// Shopify's `financial_status` of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinancialStatus {
    /// Not paid yet (bank transfer, cash on delivery, a manual method).
    Pending,
    /// Authorized by the card issuer, not captured.
    Authorized,
    /// Part of it captured.
    PartiallyPaid,
    /// Captured.
    Paid,
    /// Captured, then partly refunded.
    PartiallyRefunded,
    /// Captured, then refunded.
    Refunded,
    /// The authorization was voided: it will never be paid.
    Voided,
    /// The authorization expired uncaptured: it will never be paid.
    Expired,
}

impl FinancialStatus {
    /// Every status, as Shopify names them.
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Authorized,
        Self::PartiallyPaid,
        Self::Paid,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::Voided,
        Self::Expired,
    ];

    /// Shopify's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::PartiallyPaid => "partially_paid",
            Self::Paid => "paid",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    /// The payment will never come: an order waiting for it is cancelled.
    pub fn is_failed(self) -> bool {
        matches!(self, Self::Voided | Self::Expired)
    }

    /// Money was captured: an order waiting for it may go on.
    pub fn is_captured(self) -> bool {
        matches!(
            self,
            Self::PartiallyPaid | Self::Paid | Self::PartiallyRefunded | Self::Refunded
        )
    }
}

impl fmt::Display for FinancialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FinancialStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s.trim())
            .ok_or_else(|| DomainError::UnknownFinancialStatus(s.chars().take(40).collect()))
    }
}

/// The payment statuses whose orders are reserved at once but handed to
/// the warehouse only once paid: stock is not sold twice, and nothing ships
/// that may never be paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentGate(Vec<FinancialStatus>);

impl PaymentGate {
    /// A comma-separated list of Shopify's names (`pending,authorized`);
    /// `none` (or nothing): no order waits.
    pub fn parse(list: &str) -> Result<Self, DomainError> {
        let mut statuses = Vec::new();
        let list = if list.trim() == "none" { "" } else { list };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let status: FinancialStatus = name.parse()?;
            if status.is_captured() || status.is_failed() {
                // Gating a paid order would hold it forever; a failed one is
                // cancelled, not held.
                return Err(DomainError::UnknownFinancialStatus(format!(
                    "{name} (only unpaid statuses can wait: pending, authorized)"
                )));
            }
            statuses.push(status);
        }
        Ok(Self(statuses))
    }

    /// Whether an order that arrives with `status` waits for its payment.
    /// An order without a status (or with one Shopify added since) does not.
    pub fn holds(&self, status: Option<FinancialStatus>) -> bool {
        status.is_some_and(|s| self.0.contains(&s))
    }
}

impl FromStr for PaymentGate {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Default for PaymentGate {
    /// Pending and authorized payments wait.
    fn default() -> Self {
        Self(vec![FinancialStatus::Pending, FinancialStatus::Authorized])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_holds_only_the_statuses_it_lists() {
        let gate = PaymentGate::parse("pending").unwrap();
        assert!(gate.holds(Some(FinancialStatus::Pending)));
        assert!(!gate.holds(Some(FinancialStatus::Authorized)));
        assert!(!gate.holds(None));
        let default = PaymentGate::default();
        assert!(default.holds(Some(FinancialStatus::Authorized)));
        assert!(!default.holds(Some(FinancialStatus::Paid)));
        assert!(
            !PaymentGate::parse("none")
                .unwrap()
                .holds(Some(FinancialStatus::Pending))
        );
    }

    #[test]
    fn a_gate_refuses_unknown_and_paid_statuses() {
        assert!(PaymentGate::parse("pending,nope").is_err());
        assert!(PaymentGate::parse("paid").is_err());
        assert!(PaymentGate::parse("voided").is_err());
        for s in FinancialStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
    }
}
