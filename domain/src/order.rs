//! Orders: their lifecycle and identity.

use std::{fmt, str::FromStr};

use uuid::Uuid;

use crate::error::DomainError;

/// Where an order came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A Shopify store's `orders/create` webhook.
    Shopify,
    /// A client of the orders API.
    Api,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 2] = [Self::Shopify, Self::Api];

    /// The name stored in the database and used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shopify => "shopify",
            Self::Api => "api",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| DomainError::UnknownChannel(s.to_string()))
    }
}

impl TryFrom<String> for Channel {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// The lifecycle of an order. The workflow is its one owner; Postgres keeps a
/// copy and the history of transitions for reads.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Recorded; stock not yet allocated.
    Received,
    /// Every line's stock is reserved.
    Reserved,
    /// Reserved, but the payment is not captured yet (pending or only
    /// authorized): the order goes to the warehouse once it is paid, and
    /// is cancelled (its units released) if the payment is voided or does
    /// not come in time.
    AwaitingPayment,
    /// The warehouse did not take the order; the saga is finding out
    /// whether it has it after all (an answer lost on the way) and undoing
    /// the reservation. It ends FAILED, or FULFILLMENT_REQUESTED when the
    /// warehouse has the order and keeps it.
    Compensating,
    /// The warehouse accepted the fulfillment request.
    FulfillmentRequested,
    /// The warehouse stopped working on it (a shipment exception, an
    /// address to check, a hold): someone must act. Still cancellable; it
    /// goes on when the warehouse ships or the hold is lifted.
    OnHold,
    /// The warehouse shipped it; reserved units became SOLD.
    Shipped,
    /// Delivered to the customer.
    Delivered,
    /// Cancelled before shipping; reserved units were released.
    Cancelled,
    /// Could not be allocated (unknown SKU, not enough stock); nothing reserved.
    Rejected,
    /// Allocated, then failed for good (the warehouse refused it); compensated.
    Failed,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 11] = [
        Self::Received,
        Self::Reserved,
        Self::AwaitingPayment,
        Self::Compensating,
        Self::FulfillmentRequested,
        Self::OnHold,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::Rejected,
        Self::Failed,
    ];

    /// The name stored in the database and used by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "RECEIVED",
            Self::Reserved => "RESERVED",
            Self::AwaitingPayment => "AWAITING_PAYMENT",
            Self::Compensating => "COMPENSATING",
            Self::FulfillmentRequested => "FULFILLMENT_REQUESTED",
            Self::OnHold => "ON_HOLD",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
            Self::Rejected => "REJECTED",
            Self::Failed => "FAILED",
        }
    }

    /// The statuses this one may move to.
    pub fn next(self) -> &'static [Self] {
        use OrderStatus as S;
        match self {
            // FAILED: its workflow ended before it was allocated (repaired).
            S::Received => &[S::Reserved, S::Rejected, S::Cancelled, S::Failed],
            S::Reserved => &[
                S::FulfillmentRequested,
                S::AwaitingPayment,
                S::Compensating,
                S::Failed,
                S::Cancelled,
            ],
            // RESERVED again once paid: the hand-over to the warehouse then
            // runs as for any order. FAILED: its workflow ended (repaired).
            S::AwaitingPayment => &[S::Reserved, S::Cancelled, S::Failed],
            S::Compensating => &[S::Failed, S::FulfillmentRequested],
            S::FulfillmentRequested => &[S::Shipped, S::Cancelled, S::OnHold],
            S::OnHold => &[S::FulfillmentRequested, S::Shipped, S::Cancelled],
            S::Shipped => &[S::Delivered],
            S::Delivered | S::Cancelled | S::Rejected | S::Failed => &[],
        }
    }

    /// The moves a client may request through the orders API. RECEIVED and
    /// RESERVED belong to the saga, which is still allocating and handing the
    /// order to the warehouse; from FULFILLMENT_REQUESTED on, the warehouse's
    /// progress (or a cancellation before shipping) is reported by clients.
    /// An order awaiting payment may only be cancelled (its payment moves it
    /// on); a hold is lifted by moving the order back to FULFILLMENT_REQUESTED.
    pub fn requestable_next(self) -> &'static [Self] {
        use OrderStatus as S;
        match self {
            S::AwaitingPayment => &[S::Cancelled],
            S::FulfillmentRequested => &[S::Shipped, S::Cancelled, S::OnHold],
            S::OnHold => &[S::FulfillmentRequested, S::Shipped, S::Cancelled],
            S::Shipped => &[S::Delivered],
            _ => &[],
        }
    }

    /// Whether `self → to` is a legal transition.
    pub fn can_become(self, to: Self) -> bool {
        self.next().contains(&to)
    }

    /// No transition leaves this status.
    pub fn is_final(self) -> bool {
        self.next().is_empty()
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::UnknownOrderStatus(s.to_string()))
    }
}

impl TryFrom<String> for OrderStatus {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// A Shopify shop's `*.myshopify.com` domain, lower-cased.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ShopDomain(String);

impl ShopDomain {
    /// Parses a shop domain: a DNS name of letters, digits, `-` and `.`.
    /// Any such name is accepted (local simulators use other suffixes), but
    /// it is compared case-insensitively, as Shopify treats it.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let d = raw.trim().to_ascii_lowercase();
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if d.is_empty() || d.len() > 255 || !d.split('.').all(valid_label) {
            return Err(DomainError::InvalidShopDomain(
                raw.chars().take(80).collect(),
            ));
        }
        Ok(Self(d))
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ShopDomain {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ShopDomain> for String {
    fn from(value: ShopDomain) -> Self {
        value.0
    }
}

impl fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Namespace of the order ids derived below (a fixed random UUID).
const ORDER_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b7e_3d4a_4c59_9e2f_8a1b_c0d3_e4f5);

/// The OMS order id of an order known by `external_id` on `channel` (and
/// `shop` for Shopify): a name-based UUID, so every redelivery of the same
/// order maps to the same id and the same workflow.
pub fn order_id_for(channel: Channel, shop: Option<&ShopDomain>, external_id: &str) -> Uuid {
    let shop = shop.map_or("", ShopDomain::as_str);
    Uuid::new_v5(
        &ORDER_NAMESPACE,
        format!("{}:{shop}:{external_id}", channel.as_str()).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_final_ones_have_no_exit() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
            assert_eq!(s.is_final(), s.next().is_empty());
        }
        assert!(OrderStatus::Reserved.can_become(OrderStatus::FulfillmentRequested));
        assert!(!OrderStatus::Shipped.can_become(OrderStatus::Cancelled));
        assert!(!OrderStatus::Rejected.can_become(OrderStatus::Reserved));
        for s in OrderStatus::ALL {
            for to in s.requestable_next() {
                assert!(
                    s.can_become(*to),
                    "{s} -> {to} is requestable but not legal"
                );
            }
        }
        assert!(OrderStatus::Reserved.requestable_next().is_empty());
    }

    #[test]
    fn shop_domains_are_lowercased_and_checked() {
        assert_eq!(
            ShopDomain::parse("Store-A.myshopify.com").unwrap().as_str(),
            "store-a.myshopify.com"
        );
        for bad in ["", "a..b", "-a.com", "a_b.com", "a b", "x/y"] {
            assert!(ShopDomain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_ids_are_stable_and_distinct_per_shop() {
        let a = ShopDomain::parse("a.myshopify.com").unwrap();
        let b = ShopDomain::parse("b.myshopify.com").unwrap();
        assert_eq!(
            order_id_for(Channel::Shopify, Some(&a), "1"),
            order_id_for(Channel::Shopify, Some(&a), "1")
        );
        assert_ne!(
            order_id_for(Channel::Shopify, Some(&a), "1"),
            order_id_for(Channel::Shopify, Some(&b), "1")
        );
        assert_ne!(
            order_id_for(Channel::Shopify, Some(&a), "1"),
            order_id_for(Channel::Api, None, "1")
        );
    }
}
