//! HTTP handlers, one module per resource.

pub mod channels;
pub mod health;
pub mod inventory;
pub mod orders;
pub mod webhooks;
