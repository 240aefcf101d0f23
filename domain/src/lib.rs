//! Domain types of the order-management system.
//!
//! Everything here is pure: values are parsed once at the edge (HTTP, webhook,
//! database row) into types whose constructors enforce the rules, so code
//! deeper in the system never has to re-check a SKU or a quantity.

mod access;
mod address;
mod adjustment;
mod allocation;
mod error;
mod order;
mod payment;
mod quantity;
mod reservation;
mod sku;
mod stock;
mod text;

pub use access::{Scope, Scopes};
pub use address::Address;
pub use adjustment::{Adjusted, LineAddition, LineRemoval, OrderAdjustment};
pub use allocation::{LineProblem, LineQty, ReserveOutcome};
pub use error::DomainError;
pub use order::{Channel, OrderStatus, ShopDomain, order_id_for};
pub use payment::{FinancialStatus, PaymentGate};
pub use quantity::{Quantity, StockQuantity};
pub use reservation::{ReservationState, ReservationToken};
pub use sku::Sku;
pub use stock::StockLevels;
pub use text::{Price, text_problem};
