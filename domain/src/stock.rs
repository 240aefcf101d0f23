/// The three stock levels of one product: units available to sell,
/// units held by open reservations, and units sold.
///
/// Serialized with the exact field names the inventory API promises.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub struct StockLevels {
    /// Units that can still be reserved.
    #[serde(rename = "IN_STOCK")]
    pub in_stock: i32,
    /// Units held by reservations that are neither released nor sold.
    #[serde(rename = "RESERVED")]
    pub reserved: i32,
    /// Units sold.
    #[serde(rename = "SOLD")]
    pub sold: i32,
}

impl StockLevels {
    /// Every unit the product has ever been given, in whatever state.
    /// Reserve, unreserve and sold move units between levels and keep it constant.
    pub fn total(&self) -> i64 {
        i64::from(self.in_stock) + i64::from(self.reserved) + i64::from(self.sold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_field_names_the_inventory_api_promises() {
        let l = StockLevels {
            in_stock: 123,
            reserved: 4,
            sold: 12,
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"IN_STOCK":123,"RESERVED":4,"SOLD":12}"#
        );
        assert_eq!(l.total(), 139);
    }
}
