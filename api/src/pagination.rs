//! Pages of lists: how many items, and where the next page starts.
//!
//! Cursors are opaque to clients (keyset positions, base64url-encoded), so
//! a page is stable however many items are inserted meanwhile.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use db::OrderCursor;
use uuid::Uuid;

use crate::error::FieldError;

/// Reads `limit` (1…100, default 50).
pub fn parse_limit(errors: &mut Vec<FieldError>, raw: Option<&str>) -> i64 {
    match raw.map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            50
        }
    }
}

/// The cursor of the page after `c`.
pub fn encode_order_cursor(c: OrderCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", c.created_at.to_rfc3339(), c.id))
}

/// A cursor this API returned, or `None`.
pub fn decode_order_cursor(raw: &str) -> Option<OrderCursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some(OrderCursor {
        created_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        id: Uuid::parse_str(id).ok()?,
    })
}
