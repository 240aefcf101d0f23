use domain::{OrderStatus, ReservationState, Sku};
use thiserror::Error;
use uuid::Uuid;

/// What can go wrong in the database. Each variant is one answer a caller can act on.
#[derive(Debug, Error)]
pub enum DbError {
    /// No product with this SKU exists.
    #[error("product `{0}` does not exist")]
    ProductNotFound(Sku),
    /// Not enough units in IN_STOCK.
    #[error("product `{sku}` is out of stock: {requested} requested, {available} available")]
    OutOfStock {
        /// The product.
        sku: Sku,
        /// Units asked for.
        requested: i32,
        /// Units that were left in IN_STOCK.
        available: i32,
    },
    /// The token is unknown, or belongs to another product.
    #[error("no reservation with this token exists for this product")]
    ReservationNotFound,
    /// The token was already released, sold or expired.
    #[error("the reservation was already used: it is {0}")]
    ReservationConsumed(ReservationState),
    /// No order with this id exists.
    #[error("order {0} does not exist")]
    OrderNotFound(Uuid),
    /// The order's lifecycle does not allow this move.
    #[error("order cannot go from {from} to {to}")]
    IllegalTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// Stored data breaks an invariant of the code (a bug or a manual edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A grouped reserve statement failed; the error was logged once by the
    /// reserver, and every caller in the group gets this.
    #[error("the reservation batch failed; retry")]
    BatchFailed,
    /// The reserver has stopped (the process is shutting down).
    #[error("the reserver is shutting down")]
    ShuttingDown,
    /// Any other database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// The database cannot take the request right now (no free connection,
    /// a reserve batch failed, the process is stopping): a caller should
    /// retry shortly rather than treat it as a fault.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Self::BatchFailed | Self::ShuttingDown | Self::Database(sqlx::Error::PoolTimedOut)
        )
    }

    /// Whether retrying the same call later may succeed (the failure was in
    /// the infrastructure, not in the request or the data). The one place
    /// that decides it: activities turn the rest into non-retryable failures.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::BatchFailed | Self::ShuttingDown | Self::Database(_) => true,
            Self::ProductNotFound(_)
            | Self::OutOfStock { .. }
            | Self::ReservationNotFound
            | Self::ReservationConsumed(_)
            | Self::OrderNotFound(_)
            | Self::IllegalTransition { .. }
            | Self::Corrupt(_)
            | Self::Migrate(_) => false,
        }
    }
}
