//! The one integration test binary: every test runs the real API against a
//! fresh Postgres database of its own (`#[sqlx::test]`).

// A failed unwrap is a failed test, with its location: exactly what we want here.
#![allow(clippy::unwrap_used)]

mod concurrency;
mod helpers;
mod inventory;
