//! Clients of the systems the OMS does not own: each Shopify shop's Admin
//! GraphQL API and the warehouse's REST API.
//!
//! The one place that builds vendor HTTP requests. Each client is built from
//! typed settings, takes its own request types (so it knows nothing of
//! Postgres rows or workflow contracts) and classifies every failure once
//! ([`http::ClientError`]): 4xx permanent, 429 after the server's delay,
//! 5xx and timeouts transient.

pub mod http;
pub mod shopify;
pub mod wms;
