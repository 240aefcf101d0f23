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
    error::{FieldError, Problem},
    routes,
};

/// The API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "OMS API",
        description = "Inventory reservations, orders, channel sync status, and Shopify webhook intake."
    ),
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
        "variable": [{"key": "baseUrl", "value": "http://127.0.0.1:8080"}],
        "item": items,
    })
}
