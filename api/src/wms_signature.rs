//! The warehouse's webhook signatures: the Standard Webhooks scheme
//! (ShipBob's), checked over the raw bytes before anything is parsed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::extract::header;

/// Oldest (and furthest in the future) a delivery's timestamp may be.
const TOLERANCE: Duration = Duration::from_secs(300);

/// The key of the warehouse's webhook signatures: the bytes of a Standard
/// Webhooks secret (`whsec_<base64>`).
#[derive(Clone)]
pub struct WmsWebhookKey(std::sync::Arc<[u8]>);

impl std::fmt::Debug for WmsWebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WmsWebhookKey(<redacted>)")
    }
}

impl WmsWebhookKey {
    /// Parses `whsec_<base64>`; the error names what is wrong, never the value.
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_ (a Standard Webhooks secret)")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "is not base64 after whsec_")?;
        if key.len() < 16 {
            return Err("must hold at least 16 bytes".into());
        }
        Ok(Self(key.into()))
    }

    /// The `webhook-signature` value for a delivery (what the warehouse
    /// sends; the tests and the simulator sign with it).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac(id, &timestamp.to_string());
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self, id: &str, timestamp: &str) -> Hmac<Sha256> {
        // Any key length is valid for HMAC.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac
    }

    /// Whether the headers sign `body` under this key, within the tolerance
    /// of `now`.
    pub(crate) fn verifies(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> bool {
        let (Some(id), Some(timestamp), Some(signatures)) = (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
        ) else {
            return false;
        };
        let Ok(at) = timestamp.parse::<u64>() else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now.abs_diff(at) > TOLERANCE.as_secs() {
            return false;
        }
        let mut mac = self.mac(id, timestamp);
        mac.update(body);
        signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            // `verify_slice` compares in constant time.
            .any(|sig| mac.clone().verify_slice(&sig).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WmsWebhookKey {
        WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).unwrap()
    }

    fn headers(id: &str, at: u64, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", at.to_string().parse().unwrap());
        h.insert("webhook-signature", signature.parse().unwrap());
        h
    }

    #[test]
    fn a_standard_webhooks_signature_verifies_and_nothing_else_does() {
        let key = key();
        let now = SystemTime::now();
        let at = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let body = br#"{"reference_id":"x"}"#;
        let good = key.sign("msg_1", at as i64, body);
        assert!(key.verifies(&headers("msg_1", at, &good), body, now));
        // Several signatures (a rotation): any one valid is enough.
        let both = format!("v1,AAAA {good}");
        assert!(key.verifies(&headers("msg_1", at, &both), body, now));
        // Another id, body or key, or a stale timestamp: refused.
        assert!(!key.verifies(&headers("msg_2", at, &good), body, now));
        assert!(!key.verifies(&headers("msg_1", at, &good), b"{}", now));
        let other = WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([8u8; 24]))).unwrap();
        assert!(!other.verifies(&headers("msg_1", at, &good), body, now));
        let old = at - 301;
        let stale = key.sign("msg_1", old as i64, body);
        assert!(!key.verifies(&headers("msg_1", old, &stale), body, now));
    }

    #[test]
    fn secrets_must_be_standard_webhooks_secrets() {
        assert!(WmsWebhookKey::parse("plain-secret").is_err());
        assert!(WmsWebhookKey::parse("whsec_not base64!").is_err());
        assert!(WmsWebhookKey::parse(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
    }
}
