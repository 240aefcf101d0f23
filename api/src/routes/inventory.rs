//! The stock reservation API; the product id is the SKU.

use axum::{Json, extract::State};
use domain::{ReservationToken, StockLevels, StockQuantity};
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    extract::{JsonBody, ProductId},
    state::AppState,
};

/// Body of `PATCH /product/{id}/stock`. The number is kept raw so a
/// fraction or an out-of-range value gets its own message.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetStockDto {
    /// Units available to sell: a whole number from 0 to 1,000,000,000.
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    stock: serde_json::Number,
}

/// Body of `unreserve` and `sold`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenDto {
    /// The token `reserve` returned.
    #[schema(format = Uuid)]
    reservation_token: String,
}

/// Answer of `reserve`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationDto {
    /// Proof of the reservation; needed to sell or release the unit.
    #[schema(value_type = String, format = Uuid)]
    reservation_token: ReservationToken,
}

#[utoipa::path(patch, path = "/product/{id}/stock", tag = "inventory", params(("id" = String, Path, description = "The product id (SKU)")),
    request_body = SetStockDto,
    responses((status = 200, description = "The new levels; the new level is queued for every shop", body = StockLevels),
        (status = 400, description = "Malformed id or body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Sets IN_STOCK, creating the product if needed, and answers the new
/// levels. The new level is queued for every shop in the same transaction;
/// the shops' syncs push it (see `GET /channels`).
pub async fn set_stock(
    State(state): State<AppState>,
    ProductId(sku): ProductId,
    JsonBody(body): JsonBody<SetStockDto>,
) -> Result<Json<StockLevels>, ApiError> {
    let stock = StockQuantity::try_from(&body.stock)
        .map_err(|e| ApiError::bad_request("invalid_stock", e.to_string()))?;
    let levels = state.db.set_stock(&sku, stock).await?;
    tracing::info!(sku = %sku, in_stock = levels.in_stock, "stock set");
    Ok(Json(levels))
}

#[utoipa::path(get, path = "/product/{id}", tag = "inventory", params(("id" = String, Path, description = "The product id (SKU)")),
    responses((status = 200, body = StockLevels),
        (status = 404, description = "No such product", body = crate::error::Problem, content_type = "application/problem+json")))]
/// The product's three levels, or 404.
pub async fn get_product(
    State(state): State<AppState>,
    ProductId(sku): ProductId,
) -> Result<Json<StockLevels>, ApiError> {
    Ok(Json(state.db.levels(&sku).await?))
}

#[utoipa::path(post, path = "/product/{id}/reserve", tag = "inventory", params(("id" = String, Path, description = "The product id (SKU)")),
    responses((status = 200, body = ReservationDto),
        (status = 404, description = "No such product", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Out of stock", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Reserves one unit. 409 when IN_STOCK is 0: the request is well-formed
/// and may succeed later, it conflicts with the product's current state.
pub async fn reserve(
    State(state): State<AppState>,
    ProductId(sku): ProductId,
) -> Result<Json<ReservationDto>, ApiError> {
    let reservation_token = state.db.reserve_one(sku).await?;
    Ok(Json(ReservationDto { reservation_token }))
}

#[utoipa::path(post, path = "/product/{id}/unreserve", tag = "inventory", params(("id" = String, Path, description = "The product id (SKU)")),
    request_body = TokenDto,
    responses((status = 200, description = "The new levels", body = StockLevels),
        (status = 400, description = "Malformed id or body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown product or token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Token already used", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Gives a reserved unit back to IN_STOCK.
pub async fn unreserve(
    State(state): State<AppState>,
    ProductId(sku): ProductId,
    JsonBody(body): JsonBody<TokenDto>,
) -> Result<Json<StockLevels>, ApiError> {
    let token = ReservationToken::parse(&body.reservation_token).map_err(ApiError::invalid)?;
    Ok(Json(state.db.unreserve(&sku, token).await?))
}

#[utoipa::path(post, path = "/product/{id}/sold", tag = "inventory", params(("id" = String, Path, description = "The product id (SKU)")),
    request_body = TokenDto,
    responses((status = 200, description = "The new levels", body = StockLevels),
        (status = 400, description = "Malformed id or body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown product or token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Token already used", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Moves a reserved unit to SOLD.
pub async fn sold(
    State(state): State<AppState>,
    ProductId(sku): ProductId,
    JsonBody(body): JsonBody<TokenDto>,
) -> Result<Json<StockLevels>, ApiError> {
    let token = ReservationToken::parse(&body.reservation_token).map_err(ApiError::invalid)?;
    Ok(Json(state.db.sell(&sku, token).await?))
}

/// Query of `GET /products`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductsQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// One product in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductDto {
    sku: String,
    #[serde(flatten)]
    levels: StockLevels,
}

/// A page of products in SKU order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    items: Vec<ProductDto>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/products", tag = "inventory", params(ProductsQuery),
    responses((status = 200, body = ProductPage),
        (status = 400, description = "Bad query", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Lists products and their levels, in SKU order, with cursor pagination
/// (the cursor is the last SKU of the previous page).
pub async fn list_products(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<ProductsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProductPage>, ApiError> {
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let mut errors = Vec::new();
    let limit = crate::pagination::parse_limit(&mut errors, q.limit.as_deref());
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (items, next) = state.db.list_products(q.cursor.as_deref(), limit).await?;
    Ok(Json(ProductPage {
        items: items
            .into_iter()
            .map(|(sku, levels)| ProductDto { sku, levels })
            .collect(),
        next_cursor: next,
    }))
}
