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
    /// The reservation belongs to an order: only the order's workflow may
    /// end it (cancel or ship the order instead).
    #[error(
        "this reservation belongs to order {0}; it is released or sold through the order (PATCH /orders/{0}/status)"
    )]
    ReservationHeldByOrder(Uuid),
    /// The token was already released, sold or expired.
    #[error("the reservation was already used: it is {0}")]
    ReservationConsumed(ReservationState),
    /// Setting this level would make the product's units (IN_STOCK +
    /// RESERVED + SOLD) exceed what its counters hold.
    #[error(
        "product `{sku}` holds {held} reserved and sold units; IN_STOCK may be at most {max}",
        max = i64::from(i32::MAX) - held
    )]
    StockTotalTooLarge {
        /// The product.
        sku: Sku,
        /// Its RESERVED + SOLD.
        held: i64,
    },
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
            Self::BatchFailed | Self::ShuttingDown => true,
            Self::Database(e) => is_transient(e),
            Self::ProductNotFound(_)
            | Self::OutOfStock { .. }
            | Self::ReservationNotFound
            | Self::ReservationHeldByOrder(_)
            | Self::ReservationConsumed(_)
            | Self::StockTotalTooLarge { .. }
            | Self::OrderNotFound(_)
            | Self::IllegalTransition { .. }
            | Self::Corrupt(_)
            | Self::Migrate(_) => false,
        }
    }
}

/// Whether a failed statement may succeed when tried again: the connection
/// or the server's resources failed, or the transaction lost a race
/// (serialization failure, deadlock). Data and constraint errors, and
/// mistakes in the SQL, fail the same way every time.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_none_or(|code| {
            let code = code.as_ref();
            // 08: connection exception; 53: insufficient resources; 57P0x:
            // the server is shutting down or starting; 58: system (I/O)
            // error; 40001 / 40P01: serialization failure, deadlock;
            // 55P03: lock not available; 57014: statement timeout.
            ["08", "53", "58", "57P"]
                .iter()
                .any(|p| code.starts_with(p))
                || ["40001", "40P01", "55P03", "57014"].contains(&code)
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_transient_and_a_data_error_is_not() {
        assert!(DbError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(DbError::BatchFailed.is_transient());
        assert!(!DbError::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(!DbError::Corrupt("x".into()).is_transient());
    }
}
