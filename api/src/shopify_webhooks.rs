//! The webhook subscriptions the OMS needs in each shop, registered by an
//! operator (`oms-api shopify-webhooks register --url …`) after the app is
//! installed, and again after a reinstall (which re-enables a shop the app
//! had been uninstalled from).
//!
//! The three privacy topics are not among them: Shopify takes those only
//! from the app's configuration (its `compliance_topics`), never through
//! the Admin API; they arrive at the same URL.

use db::{Db, DbError};
use serde::Serialize;
use vendors::{
    http::ClientError,
    shopify::{ShopifyClient, WebhookSubscription},
};

/// The topics the OMS handles, as the Admin API names them.
pub const TOPICS: [&str; 7] = [
    "ORDERS_CREATE",
    "ORDERS_CANCELLED",
    "ORDERS_PAID",
    "ORDERS_UPDATED",
    "ORDERS_EDITED",
    "REFUNDS_CREATE",
    "APP_UNINSTALLED",
];

/// What registering one topic in one shop did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The shop.
    pub shop: String,
    /// The subscription.
    pub subscription: WebhookSubscription,
    /// `created`, or `present` (it was there already).
    pub outcome: &'static str,
}

/// Why registering failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The shop refused or could not be reached.
    #[error(transparent)]
    Shopify(#[from] ClientError),
    /// The database could not record the shop installed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Subscribes `shop` to every topic in [`TOPICS`] at `uri` (those already
/// there are left alone), then marks the shop installed: a shop the app had
/// been uninstalled from is enabled again and gets a full sync.
pub async fn register(
    db: &Db,
    shop: &ShopifyClient,
    uri: &str,
) -> Result<Vec<Registration>, RegistrationError> {
    let present = shop.webhook_subscriptions().await?;
    let mut done = Vec::new();
    for topic in TOPICS {
        let domain = shop.domain().as_str().to_string();
        if let Some(existing) = present.iter().find(|s| s.topic == topic && s.uri == uri) {
            done.push(Registration {
                shop: domain,
                subscription: existing.clone(),
                outcome: "present",
            });
            continue;
        }
        let created = shop.create_webhook_subscription(topic, uri).await?;
        tracing::info!(shop = %domain, topic, "webhook subscription created");
        done.push(Registration {
            shop: domain,
            subscription: created,
            outcome: "created",
        });
    }
    if db.reinstall_shop(shop.domain().as_str()).await? {
        tracing::warn!(shop = %shop.domain(), "shop enabled again after an uninstall; every product is queued for it");
    }
    Ok(done)
}
