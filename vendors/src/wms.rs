//! Client of the warehouse: a ShipBob-style REST API.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::http::ClientError;

const SERVICE: &str = "wms";

/// How to reach the WMS.
#[derive(Debug, Clone)]
pub struct WmsSettings {
    /// Base URL including the API version, e.g. `https://api.shipbob.com/2026-07`.
    pub base_url: String,
    /// Bearer token.
    pub token: SecretString,
    /// ShipBob's `shipbob_channel_id` header, if the account needs one.
    pub channel_id: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl WmsSettings {
    /// Reads `OMS_WMS_URL`, `OMS_WMS_TOKEN`, `OMS_WMS_CHANNEL_ID` and
    /// `OMS_WMS_TIMEOUT_SECS`.
    pub fn from_env() -> Result<Self, runtime::config::ConfigError> {
        use runtime::config::{required_secret, secs_or, var_or};
        Ok(Self {
            base_url: var_or(
                "OMS_WMS_URL",
                "http://127.0.0.1:8090/wms/2026-07".to_string(),
            )?,
            token: required_secret("OMS_WMS_TOKEN", "dev-token")?,
            channel_id: std::env::var("OMS_WMS_CHANNEL_ID")
                .ok()
                .filter(|v| !v.is_empty()),
            timeout: secs_or("OMS_WMS_TIMEOUT_SECS", Duration::from_secs(10))?,
        })
    }
}

/// The WMS API.
#[derive(Clone)]
pub struct WmsClient {
    http: Client,
    settings: WmsSettings,
}

/// An order for the warehouse, exactly as `POST /order` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewWmsOrder {
    /// Our order id: a retried create is recognised by it.
    pub reference_id: String,
    /// Human order number shown to the warehouse team.
    pub order_number: String,
    /// `DTC` (direct to consumer).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The carrier service level.
    pub shipping_method: &'static str,
    /// Who receives it.
    pub recipient: Recipient,
    /// What to ship.
    pub products: Vec<WmsProduct>,
}

/// The receiver of a [`NewWmsOrder`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Recipient {
    /// Name on the parcel.
    pub name: String,
    /// Phone for the carrier.
    pub phone_number: Option<String>,
    /// Where to.
    pub address: RecipientAddress,
}

/// The address of a [`Recipient`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RecipientAddress {
    /// Street and number.
    pub address1: Option<String>,
    /// Second line.
    pub address2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or province code.
    pub state: Option<String>,
    /// Postal code.
    pub zip_code: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
}

/// One product line of a [`NewWmsOrder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WmsProduct {
    /// The SKU (the WMS's product reference).
    pub reference_id: String,
    /// Product name.
    pub name: String,
    /// Units.
    pub quantity: i32,
}

impl NewWmsOrder {
    /// A direct-to-consumer order with the standard shipping method.
    pub fn dtc(
        reference_id: String,
        order_number: String,
        recipient: Recipient,
        products: Vec<WmsProduct>,
    ) -> Self {
        Self {
            reference_id,
            order_number,
            kind: "DTC",
            shipping_method: "Standard",
            recipient,
            products,
        }
    }
}

#[derive(Debug, Deserialize)]
struct InventoryPage {
    #[serde(default)]
    items: Vec<InventoryItem>,
}

#[derive(Debug, Deserialize)]
struct InventoryItem {
    sku: Option<String>,
    total_sellable_quantity: Option<i64>,
    total_fulfillable_quantity: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct CreatedOrder {
    id: serde_json::Value,
}

impl WmsClient {
    /// Builds the client.
    pub fn new(settings: WmsSettings) -> Result<Self, reqwest::Error> {
        let http = Client::builder().timeout(settings.timeout).build()?;
        Ok(Self { http, settings })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.base_url.trim_end_matches('/'))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.settings.token.expose_secret());
        if let Some(channel) = &self.settings.channel_id {
            r = r.header("shipbob_channel_id", channel);
        }
        r
    }

    /// Units of `sku` the warehouse can sell now; `None` if it does not know the SKU.
    pub async fn sellable(&self, sku: &str) -> Result<Option<i64>, ClientError> {
        let response = self
            .request(reqwest::Method::GET, "inventory-level")
            .query(&[("SearchBy", sku)])
            .send()
            .await
            .map_err(|e| ClientError::transport(SERVICE, &e))?;
        if !response.status().is_success() {
            return Err(ClientError::from_status(SERVICE, response).await);
        }
        let page: InventoryPage = response.json().await.map_err(|e| ClientError::Transient {
            service: SERVICE,
            message: format!("unreadable inventory answer: {e}"),
        })?;
        // The search matches substrings: only the exact SKU counts.
        Ok(page
            .items
            .into_iter()
            .find(|i| i.sku.as_deref() == Some(sku))
            .map(|i| {
                i.total_sellable_quantity
                    .or(i.total_fulfillable_quantity)
                    .unwrap_or(0)
            }))
    }

    /// Creates the warehouse order; returns the WMS's order id. Our order id
    /// is the `reference_id`, so a retry that finds the order already there
    /// counts as success and fetches the existing id: the warehouse never
    /// ships twice.
    pub async fn create_order(&self, order: &NewWmsOrder) -> Result<String, ClientError> {
        let reference = &order.reference_id;
        let response = self
            .request(reqwest::Method::POST, "order")
            .json(order)
            .send()
            .await
            .map_err(|e| ClientError::transport(SERVICE, &e))?;
        let status = response.status();
        if status.is_success() {
            let created: CreatedOrder =
                response.json().await.map_err(|e| ClientError::Transient {
                    service: SERVICE,
                    message: format!("unreadable order answer: {e}"),
                })?;
            return Ok(id_text(&created.id));
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CONFLICT {
            let text = response.text().await.unwrap_or_default();
            if text.to_ascii_lowercase().contains("reference") {
                return self.existing_order_id(reference).await;
            }
            return Err(ClientError::Permanent {
                service: SERVICE,
                status: status.as_u16(),
                message: text.chars().take(300).collect(),
            });
        }
        Err(ClientError::from_status(SERVICE, response).await)
    }

    /// Cancels the warehouse order. An order the warehouse already cancelled
    /// or no longer knows counts as cancelled; one it refuses to cancel
    /// (already picked or shipped) is a permanent failure.
    pub async fn cancel_order(&self, wms_order_id: &str) -> Result<(), ClientError> {
        let response = self
            .request(
                reqwest::Method::POST,
                &format!("order/{wms_order_id}/cancel"),
            )
            .send()
            .await
            .map_err(|e| ClientError::transport(SERVICE, &e))?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(ClientError::from_status(SERVICE, response).await)
    }

    /// The id of the warehouse's order with our `reference`, if it has one.
    pub async fn find_order(&self, reference: &str) -> Result<Option<String>, ClientError> {
        let response = self
            .request(reqwest::Method::GET, "order")
            .query(&[("ReferenceIds", reference)])
            .send()
            .await
            .map_err(|e| ClientError::transport(SERVICE, &e))?;
        if !response.status().is_success() {
            return Err(ClientError::from_status(SERVICE, response).await);
        }
        let orders: Vec<CreatedOrder> =
            response.json().await.map_err(|e| ClientError::Transient {
                service: SERVICE,
                message: format!("unreadable order list: {e}"),
            })?;
        Ok(orders.first().map(|o| id_text(&o.id)))
    }

    async fn existing_order_id(&self, reference: &str) -> Result<String, ClientError> {
        // The WMS said the reference exists; if the lookup cannot see it yet,
        // asking again later is right.
        self.find_order(reference)
            .await?
            .ok_or_else(|| ClientError::Transient {
                service: SERVICE,
                message: format!(
                    "order with reference {reference} reported as existing but not found"
                ),
            })
    }
}

fn id_text(id: &serde_json::Value) -> String {
    match id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
