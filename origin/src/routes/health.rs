//! Liveness, readiness and metrics.

use std::time::Duration;

use api::{ApiError, ErrorCode};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /health`: the process is up.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "ok", "region": state.service.region().as_str()}))
}

/// `GET /ready`: Cassandra answers within two seconds; else 503 `not_ready`.
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let not_ready = |message: &str| AppError::from(ApiError::new(ErrorCode::NotReady, message));
    match tokio::time::timeout(Duration::from_secs(2), state.service.ready()).await {
        Ok(Ok(())) => Ok(Json(
            json!({"status": "ready", "region": state.service.region().as_str()}),
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            Err(not_ready("Cassandra did not answer"))
        }
        Err(_) => Err(not_ready("Cassandra did not answer within 2 s")),
    }
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
