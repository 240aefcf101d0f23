use thiserror::Error;

/// Why a raw value was refused by a domain constructor.
///
/// The messages are written for API clients: they name the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A SKU was empty, too long or contained characters we refuse.
    #[error("invalid SKU: {0}")]
    InvalidSku(String),
    /// A quantity was out of its allowed range or not a whole number.
    #[error("invalid quantity: {0}")]
    InvalidQuantity(String),
    /// A price does not fit (or is not a decimal number).
    #[error("invalid price: {0}")]
    InvalidPrice(String),
    /// A reservation token was not a UUID.
    #[error("invalid reservation token: {0}")]
    InvalidReservationToken(String),
    /// A status name is not one we know.
    #[error("unknown order status `{0}`")]
    UnknownOrderStatus(String),
    /// A channel name is not one we know.
    #[error("unknown channel `{0}`")]
    UnknownChannel(String),
    /// A shop domain is not a DNS name.
    #[error("invalid shop domain `{0}`")]
    InvalidShopDomain(String),
    /// An API key scope is not one we know.
    #[error(
        "unknown scope `{0}`; known: inventory:read, inventory:write, orders:read, orders:write, admin"
    )]
    UnknownScope(String),
    /// A payment status is not one of Shopify's (or cannot be waited for).
    #[error("unknown or unusable financial status `{0}`")]
    UnknownFinancialStatus(String),
    /// A stored state name is not one we know.
    #[error("unknown reservation state `{0}`")]
    UnknownReservationState(String),
}
