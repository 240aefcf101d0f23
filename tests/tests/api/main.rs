//! The one integration test binary: every test runs the real API against a
//! fresh Postgres database of its own (`#[sqlx::test]`); saga tests also run
//! a worker against one Temporal dev server shared by the binary.

// A failed unwrap is a failed test, with its location: exactly what we want here.
#![allow(clippy::unwrap_used)]

mod access;
mod adjustments;
mod cancellation;
mod channel_sync;
mod clients;
mod compose;
mod concurrency;
mod crash;
mod dead_letters;
mod docs;
mod fakes;
mod helpers;
mod inventory;
mod limits;
mod migrations;
mod observability;
mod orders;
mod payments;
mod privacy;
mod reconcile;
mod replay;
mod saga;
mod saga_support;
mod shop_installation;
mod temporal;
mod wms_webhooks;
