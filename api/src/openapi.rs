//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the types they use, served at `/openapi.json` (and rendered at `/docs`).

use db::{
    OrderDetail, OrderLine, OrderNotification, OrderReservation, OrderSummary, ShopChannelStatus,
    StatusChangeRecord,
};
use domain::{Channel, LineProblem, OrderStatus, ReservationState, StockLevels};
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::{
    access::{Access, required_access},
    error::{FieldError, Problem},
    routes,
};

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "OMS API",
        description = "Inventory reservations, orders, channel sync status, and Shopify webhook intake. Every inventory, order and channel route needs `Authorization: Bearer <API key>` with the scope the operation lists (`admin` implies all); keys are created by an operator with `oms-api keys create`. Webhooks are authenticated by their Shopify signature; health, metrics and this document are open."
    ),
    modifiers(&Security),
    paths(
        routes::inventory::get_product,
        routes::inventory::set_stock,
        routes::inventory::reserve,
        routes::inventory::unreserve,
        routes::inventory::sold,
        routes::inventory::list_products,
        routes::channels::status,
        routes::orders::place,
        routes::orders::get,
        routes::orders::list,
        routes::orders::change_status,
        routes::webhooks::shopify,
        routes::webhooks::wms::wms,
        routes::health::live,
        routes::health::ready,
        crate::routes::health::metrics,
    ),
    components(schemas(
        Problem,
        FieldError,
        StockLevels,
        OrderStatus,
        Channel,
        ReservationState,
        LineProblem,
        OrderDetail,
        OrderSummary,
        OrderLine,
        OrderReservation,
        StatusChangeRecord,
        OrderNotification,
        ShopChannelStatus
    ))
)]
pub struct ApiDoc;

/// Name of the bearer scheme in the document.
const SCHEME: &str = "apiKey";

/// Declares the API-key scheme and, on every operation, what it requires
/// (from the same table the middleware enforces, so the two cannot differ)
/// and the 401/403/429 answers of the scoped ones.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use axum::http::Method;
        use utoipa::openapi::{
            ContentBuilder, Ref, ResponseBuilder,
            security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("oms_<key>")
                    .description(Some(
                        "An API key from `oms-api keys create`; the operation's list names the scope it needs.",
                    ))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                match required_access(&method, path) {
                    Access::Key(scope) => {
                        operation.security =
                            Some(vec![SecurityRequirement::new(SCHEME, [scope.as_str()])]);
                        let responses = &mut operation.responses.responses;
                        responses.insert(
                            "401".into(),
                            problem("No API key, or not a live one (`unauthorized`)").into(),
                        );
                        responses.insert(
                            "403".into(),
                            problem(&format!("The key lacks the `{scope}` scope (`forbidden`)"))
                                .into(),
                        );
                        responses.entry("429".into()).or_insert_with(|| {
                            problem("Over the key's rate; see `Retry-After` (`rate_limited`)")
                                .into()
                        });
                    }
                    // An empty requirement: no key is needed.
                    Access::Open | Access::Signed => {
                        operation.security = Some(vec![SecurityRequirement::default()]);
                    }
                }
            }
        }
    }
}

/// A Postman (v2.1) collection with one request per operation of `spec`,
/// in document order, using `{{baseUrl}}`.
pub fn postman_collection(spec: &Value) -> Value {
    let mut items = Vec::new();
    if let Some(paths) = spec["paths"].as_object() {
        for (path, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (method, op) in ops {
                let postman_path: Vec<String> = path
                    .trim_start_matches('/')
                    .split('/')
                    .map(
                        |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(var) => format!(":{var}"),
                            None => seg.to_string(),
                        },
                    )
                    .collect();
                let mut request = json!({
                    "method": method.to_uppercase(),
                    "header": [{"key": "Content-Type", "value": "application/json"}],
                    "url": {
                        "raw": format!("{{{{baseUrl}}}}/{}", postman_path.join("/")),
                        "host": ["{{baseUrl}}"],
                        "path": postman_path,
                    },
                    "description": op["summary"].as_str().unwrap_or_default(),
                });
                // Open operations send no key; the rest inherit the collection's.
                let open = op["security"].as_array().is_some_and(|reqs| {
                    reqs.iter()
                        .all(|r| r.as_object().is_some_and(|o| o.is_empty()))
                });
                if open {
                    request["auth"] = json!({"type": "noauth"});
                }
                if op.get("requestBody").is_some() {
                    request["body"] = json!({"mode": "raw", "raw": "{}", "options": {"raw": {"language": "json"}}});
                }
                items.push(json!({"name": format!("{} {path}", method.to_uppercase()), "request": request}));
            }
        }
    }
    json!({
        "info": {
            "name": spec["info"]["title"],
            "description": "Generated from /openapi.json by `make postman`; do not edit by hand.",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{apiKey}}", "type": "string"}]},
        "variable": [
            {"key": "baseUrl", "value": "http://127.0.0.1:8080"},
            {"key": "apiKey", "value": "", "description": "An API key: `make up` writes a development key with every scope to .run/dev-api-key"}
        ],
        "item": items,
    })
}
