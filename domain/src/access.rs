//! Who may do what through the REST API: the scopes an API key carries.

use std::{fmt, str::FromStr};

use crate::DomainError;

/// One permission of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read stock levels.
    InventoryRead,
    /// Change stock: set levels, reserve, release, sell.
    InventoryWrite,
    /// Read orders, customer addresses included.
    OrdersRead,
    /// Place orders and move their status.
    OrdersWrite,
    /// Everything, and the operator routes (channel status).
    Admin,
}

impl Scope {
    /// Every scope, in the order they are listed to people.
    pub const ALL: [Self; 5] = [
        Self::InventoryRead,
        Self::InventoryWrite,
        Self::OrdersRead,
        Self::OrdersWrite,
        Self::Admin,
    ];

    /// The name clients and operators use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InventoryRead => "inventory:read",
            Self::InventoryWrite => "inventory:write",
            Self::OrdersRead => "orders:read",
            Self::OrdersWrite => "orders:write",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::InventoryRead => 1,
            Self::InventoryWrite => 2,
            Self::OrdersRead => 4,
            Self::OrdersWrite => 8,
            Self::Admin => 16,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| DomainError::UnknownScope(s.chars().take(40).collect()))
    }
}

/// The scopes of one key. Writing does not imply reading: a checkout that
/// reserves stock need not see customers' orders. `admin` implies all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Parses a list of scope names (e.g. `inventory:write,orders:read`);
    /// at least one is required.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, DomainError> {
        let mut scopes = Self::default();
        for name in names {
            scopes.0 |= name.parse::<Scope>()?.bit();
        }
        if scopes.0 == 0 {
            return Err(DomainError::UnknownScope(String::new()));
        }
        Ok(scopes)
    }

    /// Whether a request needing `scope` is allowed.
    pub fn allow(self, scope: Scope) -> bool {
        self.0 & (scope.bit() | Scope::Admin.bit()) != 0
    }

    /// The scopes held, by name.
    pub fn names(self) -> Vec<&'static str> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .map(Scope::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_every_scope_and_others_only_their_own() {
        let admin = Scopes::parse(["admin"]).unwrap();
        assert!(Scope::ALL.into_iter().all(|s| admin.allow(s)));
        let checkout = Scopes::parse(["inventory:write", "orders:read"]).unwrap();
        assert!(checkout.allow(Scope::InventoryWrite));
        assert!(checkout.allow(Scope::OrdersRead));
        assert!(!checkout.allow(Scope::InventoryRead));
        assert!(!checkout.allow(Scope::OrdersWrite));
        assert!(!checkout.allow(Scope::Admin));
        assert_eq!(checkout.names(), ["inventory:write", "orders:read"]);
    }

    #[test]
    fn unknown_and_empty_scope_lists_are_refused() {
        assert!(Scopes::parse(["inventory:delete"]).is_err());
        assert!(Scopes::parse(Vec::<&str>::new()).is_err());
        assert_eq!(" orders:read ".parse::<Scope>().unwrap(), Scope::OrdersRead);
    }
}
