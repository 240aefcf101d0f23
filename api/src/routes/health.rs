use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::state::AppState;

#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200)))]
/// Liveness: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200), (status = 503)))]
/// Readiness: the database answers too; load balancers stop sending work
/// while it does not.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "database": "ok"})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format (series listed in the README)", content_type = "text/plain")))]
/// `GET /metrics`: this process's series, for Prometheus to scrape, and the
/// orders waiting in each open status (read from Postgres at each scrape).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    match state.db.open_orders().await {
        Ok(open) => metrics.open_orders(&open),
        // The rest of the series are still worth scraping.
        Err(e) => tracing::warn!(error = %e, "open orders could not be counted for the metrics"),
    }
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be rendered");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
