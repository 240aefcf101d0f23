//! The parts of Shopify's `orders/create` payload the OMS needs.
//!
//! Kept: identity (`id`, `name`), when it was placed, currency, payment
//! status, the line items (SKU, quantity, price, ids) and the shipping
//! address the warehouse needs. Dropped by not being declared: customer
//! profile, e-mail, billing address, discounts, taxes, marketing and
//! storefront fields — the OMS has no use for them, and not holding customer
//! data is the safest way to protect it. Ids are 64-bit integers (beyond
//! 2^53, so never read through a float); money stays a decimal string.

use chrono::DateTime;
use domain::Address;
use domain::{
    Channel, FinancialStatus, PaymentGate, Price, ShopDomain, order_id_for, text_problem,
};
use serde::Deserialize;
use workflows::contracts::{LineInput, OrderInput, SagaPolicy};

/// The webhook body, reduced to what is used.
#[derive(Debug, Deserialize)]
pub struct ShopifyOrderDto {
    id: u64,
    name: Option<String>,
    created_at: Option<String>,
    currency: Option<String>,
    financial_status: Option<String>,
    #[serde(default)]
    line_items: Vec<LineItemDto>,
    shipping_address: Option<AddressDto>,
}

#[derive(Debug, Deserialize)]
struct LineItemDto {
    id: Option<u64>,
    // Custom line items have no variant; SKUs can be null or "".
    sku: Option<String>,
    quantity: i64,
    price: Option<String>,
    title: Option<String>,
    requires_shipping: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct AddressDto {
    name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
}

/// Parses a signed `orders/create` body into the saga's input (also what a
/// dead-letter replay runs).
pub fn map_order(
    body: &[u8],
    shop: &ShopDomain,
    request_id: Option<String>,
    policy: SagaPolicy,
    gate: &PaymentGate,
) -> Result<OrderInput, MappingError> {
    crate::payload::parse::<ShopifyOrderDto>("orders/create", body)
        .map_err(MappingError::Invalid)
        .and_then(|dto| dto.into_order(shop, request_id, policy, gate))
}

/// Refuses text Postgres or the warehouse cannot take, naming the field
/// (never the value: it may be customer data).
fn text(field: &str, value: Option<&str>, max: usize) -> Result<(), MappingError> {
    match value.and_then(|v| text_problem(v, max)) {
        Some(problem) => Err(MappingError::Invalid(format!("{field} {problem}"))),
        None => Ok(()),
    }
}

/// What mapping a parsed payload can conclude besides an order.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Structurally valid but unusable (e.g. a quantity of 0): dead-letter it.
    #[error("{0}")]
    Invalid(String),
    /// Nothing for the warehouse (gift cards, digital goods only): acknowledge and skip.
    #[error("no line item requires shipping")]
    NothingToShip,
}

impl ShopifyOrderDto {
    /// Maps the payload into the saga's input.
    pub fn into_order(
        self,
        shop: &ShopDomain,
        request_id: Option<String>,
        policy: SagaPolicy,
        gate: &PaymentGate,
    ) -> Result<OrderInput, MappingError> {
        if self.line_items.is_empty() {
            return Err(MappingError::Invalid("the order has no line items".into()));
        }
        let placed_at = match self.created_at {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| {
                        MappingError::Invalid(format!("created_at {t:?} is not RFC 3339: {e}"))
                    })?
                    .to_rfc3339(),
            ),
            None => None,
        };
        text("name", self.name.as_deref(), 100)?;
        text("currency", self.currency.as_deref(), 3)?;
        let mut lines = Vec::new();
        for (i, item) in self.line_items.into_iter().enumerate() {
            let line_no = i32::try_from(i + 1).unwrap_or(i32::MAX);
            if item.requires_shipping == Some(false) {
                continue;
            }
            let quantity = i32::try_from(item.quantity)
                .ok()
                .filter(|q| (1..=1_000_000_000).contains(q))
                .ok_or_else(|| {
                    MappingError::Invalid(format!(
                        "line {line_no}: quantity {} is out of range",
                        item.quantity
                    ))
                })?;
            // A SKU that breaks the SKU rules is kept for the saga to reject
            // with its reason; one Postgres cannot even store is refused here.
            let field = |name: &str| format!("line_items[{}].{name}", line_no - 1);
            text(&field("sku"), item.sku.as_deref(), 255)?;
            text(&field("title"), item.title.as_deref(), 500)?;
            let unit_price = item
                .price
                .map(|p| {
                    Price::parse(&p)
                        .map_err(|e| MappingError::Invalid(format!("{}: {e}", field("price"))))
                })
                .transpose()?;
            lines.push(LineInput {
                line_no,
                sku: item.sku.unwrap_or_default(),
                quantity,
                unit_price: unit_price.map(|p| p.as_str().to_string()),
                external_line_id: item.id.map(|id| id.to_string()),
                title: item.title,
            });
        }
        if lines.is_empty() {
            return Err(MappingError::NothingToShip);
        }
        if let Some(a) = &self.shipping_address {
            for (name, value, max) in [
                ("name", &a.name, 255),
                ("address1", &a.address1, 255),
                ("address2", &a.address2, 255),
                ("city", &a.city, 255),
                ("province_code", &a.province_code, 10),
                ("zip", &a.zip, 20),
                ("country_code", &a.country_code, 2),
                ("phone", &a.phone, 50),
            ] {
                text(&format!("shipping_address.{name}"), value.as_deref(), max)?;
            }
        }
        let external_id = self.id.to_string();
        // A status Shopify added since is not waited for: holding an order
        // for a payment event that may never come is the worse mistake.
        let financial_status = self
            .financial_status
            .as_deref()
            .and_then(|s| s.parse::<FinancialStatus>().ok());
        Ok(OrderInput {
            order_id: order_id_for(Channel::Shopify, Some(shop), &external_id),
            channel: Channel::Shopify,
            shop: Some(shop.to_string()),
            external_id,
            name: self.name,
            currency: self.currency,
            placed_at,
            lines,
            shipping_address: self.shipping_address.map(|a| Address {
                name: a.name,
                address1: a.address1,
                address2: a.address2,
                city: a.city,
                province_code: a.province_code,
                zip: a.zip,
                country_code: a.country_code,
                phone: a.phone,
            }),
            request_id,
            policy,
            resume: None,
            awaits_payment: gate.holds(financial_status),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> ShopDomain {
        ShopDomain::parse("store-a.myshopify.com").unwrap()
    }

    #[test]
    fn keeps_big_ids_exact_and_empty_skus_for_the_saga_to_reject() {
        let dto: ShopifyOrderDto = serde_json::from_str(
            r##"{"id": 820982911946154508, "name": "#1001", "created_at": "2026-11-22T10:00:00-05:00",
                "currency": "EUR", "customer": {"email": "x@example.com"},
                "line_items": [{"id": 866550311766439020, "sku": "TSHIRT", "quantity": 2, "price": "19.90"},
                               {"id": 1, "sku": null, "quantity": 1, "price": "5.00"},
                               {"id": 2, "sku": "CARD", "quantity": 1, "requires_shipping": false}]}"##,
        )
        .unwrap();
        let order = dto
            .into_order(
                &shop(),
                None,
                SagaPolicy::default(),
                &PaymentGate::default(),
            )
            .unwrap();
        assert_eq!(order.external_id, "820982911946154508");
        assert_eq!(order.lines.len(), 2);
        assert_eq!(
            order.lines[0].external_line_id.as_deref(),
            Some("866550311766439020")
        );
        assert_eq!(order.lines[1].sku, "");
        assert_eq!(
            order.placed_at.as_deref(),
            Some("2026-11-22T10:00:00-05:00")
        );
    }

    #[test]
    fn dead_letters_text_postgres_cannot_store_and_prices_that_do_not_fit() {
        for (payload, field) in [
            (
                r#"{"id": 1, "line_items": [{"sku": "A\u0000B", "quantity": 1}]}"#,
                "line_items[0].sku",
            ),
            (
                r#"{"id": 1, "line_items": [{"sku": "A", "quantity": 1, "price": "99999999999999.99"}]}"#,
                "line_items[0].price",
            ),
            (
                r#"{"id": 1, "line_items": [{"sku": "A", "quantity": 1}], "shipping_address": {"name": "Ada\u0000"}}"#,
                "shipping_address.name",
            ),
        ] {
            let dto: ShopifyOrderDto = serde_json::from_str(payload).unwrap();
            match dto.into_order(
                &shop(),
                None,
                SagaPolicy::default(),
                &PaymentGate::default(),
            ) {
                Err(MappingError::Invalid(reason)) => assert!(reason.contains(field), "{reason}"),
                other => panic!("{payload}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_zero_quantities_and_orders_without_lines() {
        let zero: ShopifyOrderDto =
            serde_json::from_str(r#"{"id": 1, "line_items": [{"sku": "A", "quantity": 0}]}"#)
                .unwrap();
        assert!(matches!(
            zero.into_order(
                &shop(),
                None,
                SagaPolicy::default(),
                &PaymentGate::default()
            ),
            Err(MappingError::Invalid(_))
        ));
        let empty: ShopifyOrderDto =
            serde_json::from_str(r#"{"id": 1, "line_items": []}"#).unwrap();
        assert!(matches!(
            empty.into_order(
                &shop(),
                None,
                SagaPolicy::default(),
                &PaymentGate::default()
            ),
            Err(MappingError::Invalid(_))
        ));
        let digital: ShopifyOrderDto = serde_json::from_str(
            r#"{"id": 1, "line_items": [{"sku": "G", "quantity": 1, "requires_shipping": false}]}"#,
        )
        .unwrap();
        assert!(matches!(
            digital.into_order(
                &shop(),
                None,
                SagaPolicy::default(),
                &PaymentGate::default()
            ),
            Err(MappingError::NothingToShip)
        ));
    }
}
