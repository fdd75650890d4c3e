//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::startup::AppState;

/// `GET /health`: the process is up.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "region": state.region.as_str()}))
}

/// `GET /ready`: Cassandra answers within two seconds.
pub async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {
            Json(json!({"status": "ready", "region": state.region.as_str()})).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            not_ready("Cassandra did not answer")
        }
        Err(_) => not_ready("Cassandra did not answer within 2 s"),
    }
}

fn not_ready(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": {"code": "not_ready", "message": message}})),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
