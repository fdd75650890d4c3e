//! The session-service API of the original design documents (`/v1/sessions`, snake_case),
//! served over the same store, so clients written against that document keep working.
//!
//! Differences, documented in docs/openapi.yaml: `seed` is the engine's u32 seed as a decimal
//! string (the document's clients parse it to an integer); `id` is `sess_<gameId>`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::game::{game_state_json, idempotency_key, load_game, start_and_count};
use super::{MAX_BODY_BYTES, parse_json, query_integer};
use crate::domain::{Game, GameId, GameStatus, NewGame, UserId};
use crate::error::AppError;
use crate::service::{self, now_ms};
use crate::startup::AppState;

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn session_json(game: &Game) -> Value {
    let mut json = json!({
        "id": format!("sess_{}", game.id),
        "user_id": game.user_id.as_str(),
        "seed": game.seed.to_string(),
        "start_at": rfc3339(game.start_at_ms),
        "tick_ms": game.tick_ms,
        "break_every": game.break_every,
        "algorithm": game.algorithm.as_str(),
        "region": game.region.as_str(),
        "metadata": game.metadata.clone().map(Value::Object).unwrap_or(Value::Null),
        "status": match game.status { GameStatus::Active => "running", GameStatus::Exited => "stopped" },
        "created_at": rfc3339(game.created_at_ms),
    });
    if let Some(at) = game.exited_at_ms {
        json["stopped_at"] = rfc3339(at).into();
    }
    json
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateBody {
    user_id: Option<String>,
    tick_ms: Option<u64>,
    break_every: Option<u64>,
    algorithm: Option<String>,
    metadata: Option<Value>,
}

/// `POST /v1/sessions`.
pub async fn create(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let key = idempotency_key(request.headers())?;
    // The document's clients may post no body at all; that means every default.
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge(MAX_BODY_BYTES))?;
    let body: CreateBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        parse_json(&bytes)?
    };
    // The document's sessions have no user; each gets its own so none collide.
    let user = match &body.user_id {
        Some(user) => UserId::parse("user_id", user)?,
        None => UserId::parse(
            "user_id",
            &format!("v1-anon-{}", GameId::random().0.simple()),
        )?,
    };
    let request = NewGame::parse(
        user,
        body.algorithm.as_deref(),
        body.tick_ms,
        body.break_every,
        body.metadata,
        ["algorithm", "tick_ms", "break_every", "metadata"],
    )?;
    let (status, started) = start_and_count(&state, &request, key.as_ref()).await?;
    Ok((status, Json(session_json(&started.game))).into_response())
}

/// `GET /v1/sessions/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(session_json(&load_game(&state, &id).await?)))
}

/// `GET /v1/sessions/{id}/state?at=MS`.
pub async fn state_at(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let at =
        query_integer::<i64>(&params, "at", "a Unix time in milliseconds")?.unwrap_or_else(now_ms);
    let game = load_game(&state, &id).await?;
    let camel = game_state_json(&game, at).await?;
    let mut json = json!({
        "id": format!("sess_{}", game.id),
        "phase": camel["phase"],
        "step": camel.get("step").cloned().unwrap_or(Value::Null),
        "value": camel.get("value").cloned().unwrap_or(Value::Null),
        "round": camel.get("round").cloned().unwrap_or(Value::Null),
        "broken": camel.get("broken").cloned().unwrap_or(Value::Null),
        "computed_at": rfc3339(at),
    });
    if let Some(ms) = camel.get("msUntilStart") {
        json["ms_until_start"] = ms.clone();
    }
    Ok(Json(json))
}

/// `POST /v1/sessions/{id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = GameId::parse(&id)?;
    let exited = service::exit_game(&state.store, id, None).await?;
    if exited.first {
        state.metrics.sessions_exited.inc();
    }
    Ok(Json(json!({
        "id": format!("sess_{id}"),
        "status": "stopped",
        "stopped_at": rfc3339(exited.exited_at_ms),
    })))
}

/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
