//! What the orders API reads and writes, and how a request is checked:
//! every bad field is named, all at once.

use chrono::{DateTime, Utc};
use db::{OrderCursor, OrderFilter, OrderSummary};
use domain::{Address, Channel, OrderStatus, Quantity, Sku, text_problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use workflows::contracts::StatusChange;

use crate::{
    error::ApiError,
    error::FieldError,
    pagination::{decode_order_cursor, parse_limit},
};

/// Most lines in one order.
const MAX_LINES: usize = 250;

/// Body of `POST /orders`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOrderDto {
    customer_reference: String,
    lines: Vec<NewLineDto>,
    shipping_address: AddressDto,
}

/// One requested line.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLineDto {
    sku: String,
    #[schema(value_type = i64, minimum = 1, maximum = 1_000_000_000)]
    quantity: serde_json::Number,
}

/// Where to ship.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressDto {
    name: String,
    address1: String,
    address2: Option<String>,
    city: String,
    province_code: Option<String>,
    zip: String,
    country_code: String,
    phone: Option<String>,
}

/// A validated order request; its canonical JSON is what the idempotency
/// key is bound to.
#[derive(Debug, Serialize)]
pub(super) struct ValidOrder {
    pub(super) customer_reference: String,
    pub(super) lines: Vec<(String, i32)>,
    pub(super) address: Address,
}

fn required(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else {
        optional(errors, field, Some(value), max);
    }
}

fn optional(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>, max: usize) {
    if let Some(problem) = value.and_then(|v| text_problem(v, max)) {
        errors.push(FieldError::new(field, problem));
    }
}

impl NewOrderDto {
    /// Checks every field, reporting all problems at once.
    pub(super) fn validate(self) -> Result<ValidOrder, ApiError> {
        let mut errors = Vec::new();
        required(
            &mut errors,
            "customerReference",
            &self.customer_reference,
            100,
        );
        if self.lines.is_empty() {
            errors.push(FieldError::new("lines", "must contain at least one line"));
        } else if self.lines.len() > MAX_LINES {
            errors.push(FieldError::new(
                "lines",
                format!("must contain at most {MAX_LINES} lines"),
            ));
        }
        let mut lines = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let sku = Sku::parse(line.sku.clone())
                .map_err(|e| FieldError::new(format!("lines[{i}].sku"), e.to_string()));
            let qty = Quantity::try_from(&line.quantity)
                .map_err(|e| FieldError::new(format!("lines[{i}].quantity"), e.to_string()));
            match (sku, qty) {
                (Ok(sku), Ok(qty)) => lines.push((sku.into_inner(), qty.get())),
                (sku, qty) => errors.extend(sku.err().into_iter().chain(qty.err())),
            }
        }
        let a = &self.shipping_address;
        required(&mut errors, "shippingAddress.name", &a.name, 200);
        required(&mut errors, "shippingAddress.address1", &a.address1, 200);
        required(&mut errors, "shippingAddress.city", &a.city, 100);
        required(&mut errors, "shippingAddress.zip", &a.zip, 20);
        optional(
            &mut errors,
            "shippingAddress.address2",
            a.address2.as_deref(),
            200,
        );
        optional(
            &mut errors,
            "shippingAddress.provinceCode",
            a.province_code.as_deref(),
            10,
        );
        optional(&mut errors, "shippingAddress.phone", a.phone.as_deref(), 50);
        if a.country_code.len() != 2 || !a.country_code.chars().all(|c| c.is_ascii_alphabetic()) {
            errors.push(FieldError::new(
                "shippingAddress.countryCode",
                "must be a two-letter ISO 3166-1 code",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let a = self.shipping_address;
        Ok(ValidOrder {
            customer_reference: self.customer_reference.trim().to_string(),
            lines,
            address: Address {
                name: Some(a.name),
                address1: Some(a.address1),
                address2: a.address2,
                city: Some(a.city),
                province_code: a.province_code,
                zip: Some(a.zip),
                country_code: Some(a.country_code.to_ascii_uppercase()),
                phone: a.phone,
            },
        })
    }
}

/// Answer of an accepted order that is still being processed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedDto {
    pub(super) order_id: Uuid,
    pub(super) status: OrderStatus,
    pub(super) workflow_id: String,
    pub(super) status_url: String,
}

/// Query of `GET /orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    /// Only orders with a notification of this kind (e.g.
    /// `cancelled_after_shipping`, `order_on_hold`): what asks for a person.
    notification: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    pub(super) items: Vec<OrderSummary>,
    pub(super) next_cursor: Option<String>,
}

impl ListQuery {
    /// The filters, position and page size asked for, or every field that is wrong.
    pub(super) fn validate(self) -> Result<(OrderFilter, Option<OrderCursor>, i64), ApiError> {
        let mut errors = Vec::new();
        let status = match self.status.as_deref().map(str::parse::<OrderStatus>) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => {
                errors.push(unknown_status());
                None
            }
        };
        let channel = match self.channel.as_deref().map(str::parse::<Channel>) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                errors.push(FieldError::new("channel", "must be shopify or api"));
                None
            }
        };
        let created_from = parse_time(&mut errors, "createdFrom", self.created_from.as_deref());
        let created_to = parse_time(&mut errors, "createdTo", self.created_to.as_deref());
        let notification = self.notification.filter(|kind| {
            let known = !kind.is_empty()
                && kind.len() <= 64
                && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !known {
                errors.push(FieldError::new(
                    "notification",
                    "must be a notification kind: lower-case letters and _",
                ));
            }
            known
        });
        let limit = parse_limit(&mut errors, self.limit.as_deref());
        let cursor = match self.cursor.as_deref().map(decode_order_cursor) {
            None => None,
            Some(Some(c)) => Some(c),
            Some(None) => {
                errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor this API returned",
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let filter = OrderFilter {
            status,
            channel,
            created_from,
            created_to,
            notification,
        };
        Ok((filter, cursor, limit))
    }
}

fn parse_time(
    errors: &mut Vec<FieldError>,
    field: &str,
    raw: Option<&str>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 timestamp, e.g. 2026-11-22T10:00:00Z",
            ));
            None
        }
    }
}

/// The field error of a `status` that names no status.
pub(super) fn unknown_status() -> FieldError {
    let all: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
    FieldError::new("status", format!("must be one of {}", all.join(", ")))
}

/// Body of `PATCH /orders/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusDto {
    /// SHIPPED, DELIVERED or CANCELLED.
    #[schema(value_type = OrderStatus)]
    status: String,
    reason: Option<String>,
}

impl StatusDto {
    /// The requested status and reason, or the fields that are wrong.
    pub(super) fn validate(self) -> Result<StatusChange, ApiError> {
        let to: OrderStatus = self
            .status
            .parse()
            .map_err(|_| ApiError::Validation(vec![unknown_status()]))?;
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > 500)
        {
            return Err(ApiError::Validation(vec![FieldError::new(
                "reason",
                "must be at most 500 characters",
            )]));
        }
        Ok(StatusChange {
            to,
            reason: self.reason,
        })
    }
}
