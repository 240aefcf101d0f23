//! The OMS's Postgres: the one place that runs SQL.
//!
//! Stock levels and reservations, orders and their history, idempotency
//! keys, dead-lettered webhooks, and the migrations that shape them. The API
//! and the Temporal activities both go through [`Db`], so the rules that keep
//! stock correct (row locks in SKU order, single-use tokens, CHECK
//! constraints as the last line of defence) live once.

mod adjustments;
mod api_keys;
mod channel_sync;
mod connection;
mod dead_letters;
mod error;
mod idempotency;
mod orders;
mod payments;
mod privacy;
mod reads;
mod reconcile;
mod reserver;
mod stock;
mod stock_change;

pub use adjustments::ChannelLine;
pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use channel_sync::{PendingLevel, ShopChannelStatus};
pub use connection::{
    DEFAULT_DATABASE_URL, DatabaseSettings, Db, DbHooks, MIGRATOR, connect, migrate,
};
pub use dead_letters::DeadLetter;
pub use error::DbError;
pub use orders::{FulfillmentLine, FulfillmentOrder, NewOrder, NewOrderLine};
pub use payments::PaymentWait;
pub use privacy::{ExportedOrder, PrivacyRequest, Redacted};
pub use reads::{
    OpenOrders, OptionalText, OrderCursor, OrderDetail, OrderFilter, OrderLine, OrderNotification,
    OrderReservation, OrderSummary, StatusChangeRecord, Tracking,
};
pub use reconcile::ReconcileCandidate;
pub use reserver::{BatchObserver, BatchReport, ReserverSettings};
/// A pool of connections to the OMS database.
pub use sqlx::PgPool;
pub use stock_change::StockChanged;
