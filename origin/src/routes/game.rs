//! The game API: start, exit, join, server-side state and replay.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared_engine::{Counter, State as EngineState, Tick};

use super::{ApiJson, query_integer};
use crate::domain::{Game, GameId, GameStatus, IdempotencyKey, Invalid, NewGame, UserId};
use crate::error::AppError;
use crate::service::{self, now_ms};
use crate::startup::AppState;

/// Most steps one replay request returns.
pub const MAX_REPLAY_STEPS: u64 = 10_000;
/// Furthest step the server computes: O(step) work, ~20 ms at this bound on AVX2. That is 27 h
/// of 1 ms ticks or 115 days of 100 ms ticks; clients compute their own state anyway.
pub const MAX_COMPUTED_STEP: u64 = 100_000_000;
/// Beyond this many steps the computation moves off the async workers.
const INLINE_STEPS: u64 = 1_000_000;

fn check_step(step: u64, field: &'static str) -> Result<(), AppError> {
    if step > MAX_COMPUTED_STEP {
        return Err(Invalid::new(
            field,
            format!("step {step} is beyond the {MAX_COMPUTED_STEP} steps the server computes"),
        )
        .into());
    }
    Ok(())
}

/// Runs an engine computation of about `steps` steps, off the async workers when it is long.
async fn compute<T: Send + 'static>(
    steps: u64,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    if steps <= INLINE_STEPS {
        Ok(work())
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| AppError::Timeout)
    }
}

/// A game as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GameView {
    game_id: String,
    user_id: String,
    region: String,
    seed: u32,
    start_at: i64,
    tick_ms: u32,
    break_every: u32,
    algorithm: &'static str,
    status: GameStatus,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exited_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

impl From<Game> for GameView {
    fn from(game: Game) -> GameView {
        GameView {
            game_id: game.id.to_string(),
            user_id: game.user_id.as_str().to_owned(),
            region: game.region.as_str().to_owned(),
            seed: game.seed,
            start_at: game.start_at_ms,
            tick_ms: game.tick_ms,
            break_every: game.break_every,
            algorithm: game.algorithm.as_str(),
            status: game.status,
            created_at: game.created_at_ms,
            exited_at: game.exited_at_ms,
            metadata: game.metadata,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartBody {
    user_id: String,
    algorithm: Option<String>,
    tick_ms: Option<u64>,
    break_every: Option<u64>,
    metadata: Option<Value>,
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, AppError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| Invalid::new("Idempotency-Key", "must be visible ASCII"))?;
            Ok(Some(IdempotencyKey::parse(text)?))
        }
    }
}

/// Starts (or finds) the game and counts a creation; 201 if this request created it, else 200.
pub(crate) async fn start_and_count(
    state: &AppState,
    request: &NewGame,
    key: Option<&IdempotencyKey>,
) -> Result<(StatusCode, service::Started), AppError> {
    let started =
        service::start_game(&state.store, &state.region, &state.games, request, key).await?;
    if started.created {
        state.metrics.sessions_started.inc();
        Ok((StatusCode::CREATED, started))
    } else {
        Ok((StatusCode::OK, started))
    }
}

/// `POST /game/start`.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let request = NewGame::parse(
        UserId::parse("userId", &body.user_id)?,
        body.algorithm.as_deref(),
        body.tick_ms,
        body.break_every,
        body.metadata,
        ["algorithm", "tickMs", "breakEvery", "metadata"],
    )?;
    let (status, started) = start_and_count(&state, &request, key.as_ref()).await?;
    Ok((status, Json(GameView::from(started.game))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitBody {
    game_id: String,
    user_id: String,
}

/// `POST /game/exit`.
pub async fn exit(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ExitBody>,
) -> Result<Response, AppError> {
    let id = GameId::parse(&body.game_id)?;
    let user = UserId::parse("userId", &body.user_id)?;
    let exited = service::exit_game(&state.store, id, Some(&user)).await?;
    if exited.first {
        state.metrics.sessions_exited.inc();
    }
    Ok(Json(serde_json::json!({
        "gameId": exited.game_id.to_string(),
        "userId": exited.user_id.as_str(),
        "exitedAt": exited.exited_at_ms,
        "status": "exited",
    }))
    .into_response())
}

pub(crate) async fn load_game(state: &AppState, raw_id: &str) -> Result<Game, AppError> {
    let id = GameId::parse(raw_id)?;
    state
        .store
        .game(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no game with id {id}")))
}

/// `GET /game/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GameView>, AppError> {
    Ok(Json(load_game(&state, &id).await?.into()))
}

fn tick_json(tick: &Tick) -> Value {
    serde_json::json!({"step": tick.step, "value": tick.value, "round": tick.round, "broken": tick.broken})
}

/// The engine's state as the API shows it (camelCase).
pub(crate) fn state_json(state: EngineState) -> Value {
    match state {
        EngineState::Countdown { ms_until_start } => {
            serde_json::json!({"phase": "countdown", "msUntilStart": ms_until_start})
        }
        EngineState::Running(tick) => {
            let mut json = tick_json(&tick);
            json["phase"] = "running".into();
            json
        }
        EngineState::Ended(tick) => {
            let mut json = tick
                .as_ref()
                .map(tick_json)
                .unwrap_or_else(|| serde_json::json!({}));
            json["phase"] = "ended".into();
            json
        }
    }
}

/// `GET /game/{id}/state?at=MS`: the state computed by the shared engine.
pub async fn state_at(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let at =
        query_integer::<i64>(&params, "at", "a Unix time in milliseconds")?.unwrap_or_else(now_ms);
    let game = load_game(&state, &id).await?;
    Ok(Json(game_state_json(&game, at).await?))
}

/// The engine's state of `game` at `at`, as the API shows it.
pub(crate) async fn game_state_json(game: &Game, at: i64) -> Result<Value, AppError> {
    let params = game.params();
    let end = game.exited_at_ms.map_or(at, |end| end.min(at));
    let steps = match shared_engine::step_at(params.start_at_ms(), params.tick_ms(), end) {
        shared_engine::StepAt::Before(_) => 0,
        shared_engine::StepAt::At(step) => step,
    };
    check_step(steps, "at")?;
    let mut json = state_json(compute(steps, move || shared_engine::state_at(&params, at)).await?);
    json["gameId"] = game.id.to_string().into();
    json["at"] = at.into();
    Ok(json)
}

/// `GET /game/{id}/replay?from=STEP&to=STEP`: the timeline, step by step.
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let from = query_integer::<u64>(&params, "from", "a step number (>= 0)")?.unwrap_or(0);
    let to = query_integer::<u64>(&params, "to", "a step number (>= 0)")?
        .unwrap_or(from.saturating_add(99));
    if to < from {
        return Err(Invalid::new("to", "must not be less than from").into());
    }
    if to - from >= MAX_REPLAY_STEPS {
        return Err(Invalid::new(
            "to",
            format!("at most {MAX_REPLAY_STEPS} steps per request"),
        )
        .into());
    }
    check_step(to, "to")?;
    let game = load_game(&state, &id).await?;
    let params = game.params();
    // An exited game has no steps after the one it froze at.
    let last = match game.exited_at_ms {
        None => Some(u64::MAX),
        Some(end) => match shared_engine::step_at(
            params.start_at_ms(),
            params.tick_ms(),
            end.saturating_sub(1),
        ) {
            shared_engine::StepAt::At(step) => Some(step),
            shared_engine::StepAt::Before(_) => None,
        },
    };
    let ticks = match last {
        Some(last) if from <= last => {
            let to = to.min(last);
            compute(to, move || {
                let mut counter = Counter::at_step(params, from);
                (from..=to)
                    .map(|step| tick_json(&counter.advance_to(step)))
                    .collect::<Vec<_>>()
            })
            .await?
        }
        _ => Vec::new(),
    };
    Ok(Json(serde_json::json!({
        "gameId": game.id.to_string(),
        "from": from,
        "to": to,
        "ticks": ticks,
    })))
}

/// `GET /users/{userId}/game`: the user's active game.
pub async fn user_game(
    State(state): State<AppState>,
    Path(user): Path<String>,
) -> Result<Json<GameView>, AppError> {
    let user = UserId::parse("userId", &user)?;
    let no_game = || AppError::NotFound(format!("user {} has no active game", user.as_str()));
    let id = state
        .store
        .active_game_id(&user)
        .await?
        .ok_or_else(no_game)?;
    match state.store.game(id).await? {
        Some(game) if game.status == GameStatus::Active => Ok(Json(game.into())),
        _ => Err(no_game()),
    }
}
