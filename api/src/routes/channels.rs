//! `GET /channels`: how far each shop's sync has got.

use axum::{Json, extract::State};
use db::ShopChannelStatus;

use crate::{error::ApiError, state::AppState};

/// Every shop's sync.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ChannelsDto {
    shops: Vec<ShopChannelStatus>,
}

#[utoipa::path(get, path = "/channels", tag = "channels",
    responses((status = 200, description = "Per shop: last successful write, pending changes and their lag, the last error, the last drift check", body = ChannelsDto)))]
/// What each shop's sync last did and how far behind it is.
pub async fn status(State(state): State<AppState>) -> Result<Json<ChannelsDto>, ApiError> {
    Ok(Json(ChannelsDto {
        shops: state.db.channel_status().await?,
    }))
}
