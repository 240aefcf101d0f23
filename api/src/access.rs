//! Who may call what: the scope each route needs, and the middleware that
//! checks it before any other work is done.

use axum::{
    extract::{MatchedPath, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::Scope;

use crate::{
    api_keys::KeyStore,
    error::ApiError,
    limits::{LimitKey, Limiter},
};

/// What the middleware needs: only the keys and the limiter, so a request
/// does not clone the handlers' whole state once more to be authorized.
#[derive(Clone)]
pub struct AccessState {
    /// The live API keys.
    pub keys: KeyStore,
    /// Rate limits per verified identity.
    pub limiter: Limiter,
}

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, scrapes, the API's own description.
    Open,
    /// A vendor's signature (a Shopify shop's, the warehouse's), checked by
    /// the webhook's handler over the raw body.
    Signed,
    /// An API key with this scope.
    Key(Scope),
}

/// The access rule of a route, by method and matched path. A route missing
/// here needs `admin`: a new route is closed until someone decides otherwise.
pub fn required_access(method: &Method, route: &str) -> Access {
    use Scope::{Admin, InventoryRead, InventoryWrite, OrdersRead, OrdersWrite};
    match route {
        "/health/live" | "/health/ready" | "/metrics" | "/openapi.json" | "/docs" => Access::Open,
        "/webhooks/shopify" | "/webhooks/wms" => Access::Signed,
        "/product/{id}" | "/products" => Access::Key(InventoryRead),
        "/product/{id}/stock"
        | "/product/{id}/reserve"
        | "/product/{id}/unreserve"
        | "/product/{id}/sold" => Access::Key(InventoryWrite),
        "/orders" if method == Method::POST => Access::Key(OrdersWrite),
        "/orders" | "/orders/{id}" => Access::Key(OrdersRead),
        "/orders/{id}/status" => Access::Key(OrdersWrite),
        _ => Access::Key(Admin),
    }
}

/// The bearer token of a request, if it has one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware of every route: authenticate, charge the caller's own
/// rate limit, check the route's scope. Webhooks are left to their handler,
/// which checks the signature over the raw body before charging the shop.
pub async fn authorize(State(state): State<AccessState>, request: Request, next: Next) -> Response {
    let access = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(Access::Key(Scope::Admin), |route| {
            required_access(request.method(), route.as_str())
        });
    let Access::Key(scope) = access else {
        return next.run(request).await;
    };
    let principal = match bearer(&request) {
        Some(key) => match state.keys.authenticate(key).await {
            Ok(principal) => principal,
            Err(crate::api_keys::KeysUnavailable) => {
                return ApiError::KeysUnavailable.into_response();
            }
        },
        None => None,
    };
    let Some(principal) = principal else {
        // Strangers share one small budget: they cannot spend anyone's quota.
        if let Err(limited) = state.limiter.check(LimitKey::Unauthenticated, None) {
            return limited.into_response();
        }
        return ApiError::Unauthorized.into_response();
    };
    tracing::Span::current().record("api_key", tracing::field::display(&principal.name));
    if let Err(limited) = state
        .limiter
        .check(LimitKey::ApiKey(principal.key_id), principal.rate)
    {
        return limited.into_response();
    }
    if !principal.scopes.allow(scope) {
        return ApiError::Forbidden { scope }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_open_signed_or_scoped_and_unknown_ones_need_admin() {
        let get = Method::GET;
        assert_eq!(required_access(&get, "/health/ready"), Access::Open);
        assert_eq!(
            required_access(&Method::POST, "/webhooks/shopify"),
            Access::Signed
        );
        assert_eq!(
            required_access(&get, "/product/{id}"),
            Access::Key(Scope::InventoryRead)
        );
        assert_eq!(
            required_access(&Method::POST, "/product/{id}/reserve"),
            Access::Key(Scope::InventoryWrite)
        );
        assert_eq!(
            required_access(&Method::POST, "/orders"),
            Access::Key(Scope::OrdersWrite)
        );
        assert_eq!(
            required_access(&get, "/orders"),
            Access::Key(Scope::OrdersRead)
        );
        assert_eq!(
            required_access(&get, "/channels"),
            Access::Key(Scope::Admin)
        );
        assert_eq!(
            required_access(&get, "/something/new"),
            Access::Key(Scope::Admin)
        );
    }
}
