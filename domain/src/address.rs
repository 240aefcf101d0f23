/// A shipping address, kept only to hand the order to the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Address {
    /// Recipient.
    pub name: Option<String>,
    /// Street and number.
    pub address1: Option<String>,
    /// Second address line.
    pub address2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or province code.
    pub province_code: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: Option<String>,
    /// Phone number for the carrier.
    pub phone: Option<String>,
}
