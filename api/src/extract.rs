//! Extractors whose rejections speak the API's error model.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::BytesRejection},
    http::{header, request::Parts},
};
use domain::Sku;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Unlike `axum::Json` it accepts a request without a content
/// type (curl's `-d` sends a form type we would otherwise have to refuse
/// only to annoy people) but refuses a declared non-JSON type, and every
/// failure is a problem document naming what was wrong.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or_default().trim().to_string();
            let json = essence == "application/json" || essence.ends_with("+json");
            if !json && essence != "application/x-www-form-urlencoded" {
                return Err(ApiError::UnsupportedMediaType(essence));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => {
                return Err(ApiError::bad_request(
                    "empty_body",
                    "request body is empty; a JSON object is required",
                ));
            }
            // serde would happily read a struct from an array (`[5]`); every
            // body of this API is an object, so anything else is refused.
            Some(b'[') => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "request body must be a JSON object",
                ));
            }
            Some(_) => {}
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::bad_request("invalid_body", e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                    "malformed_json",
                    format!("request body is not valid JSON: {e}"),
                ),
            }
        })
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    // The limit error is nested a few layers deep; its status is the signal.
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request("unreadable_body", rejection.body_text())
    }
}

/// A header's trimmed value, if present, valid text and not blank.
pub fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The `{id}` path segment of `/product/{id}/…`, parsed as a SKU.
pub struct ProductId(pub Sku);

impl<S: Send + Sync> FromRequestParts<S> for ProductId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
        Sku::parse(raw).map(Self).map_err(ApiError::invalid)
    }
}
