//! The session-service dialect of the design documents (`/v1/sessions`, snake_case), served
//! over the same games as `/game/*`, so clients written against that document keep working.
//!
//! Its own conventions, kept here and nowhere else: errors are [`api::v1::V1ErrorBody`]
//! (`{"error": "<short message>", "message": "<detail>"}`, see [`V1Error`]); every kind of bad
//! input is a 400 (an oversized body stays 413); a session id that is malformed is as unknown as
//! one that does not exist (404); any content type is accepted; sessions default to the
//! `interval-v0` algorithm; a session without `user_id` gets an anonymous player of its own.
//! `seed` is the engine's u32 seed as a decimal string and `id` is `sess_<gameId>`.

use api::v1::{
    CreateSessionRequest, SessionId, SessionStateView, SessionStatus, SessionView, StopView,
    Timestamp,
};
use api::{Algorithm, ApiError};
use axum::Json;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use super::{BodyBytes, IdempotencyKeyHeader};
use crate::auth;
use crate::domain::{Game, NewGame, anonymous_user, check_start_at};
use crate::error::{AppError, V1Error};
use crate::state::AppState;
use kernel::clock::now_ms;

/// The algorithm of a session that does not name one: `interval-v0`, the session service's
/// own engine.
pub fn default_algorithm() -> Algorithm {
    Algorithm::IntervalV0
}

/// The `{id}` of `/v1/sessions/{id}...`: `sess_<uuid>` (or a bare UUID). Anything else cannot
/// name a session, so it answers what an unknown id does: 404 `session not found`.
#[derive(Debug, Clone, Copy)]
pub struct SessionPath(pub SessionId);

impl<S: Send + Sync> FromRequestParts<S> for SessionPath {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<SessionPath, V1Error> {
        let Ok(Path(text)) = Path::<String>::from_request_parts(parts, &()).await else {
            return Err(V1Error::session_not_found());
        };
        SessionId::parse(&text)
            .map(SessionPath)
            .map_err(|_| V1Error::session_not_found())
    }
}

/// A service error on a session route: an unknown game is an unknown session.
fn session_error(error: AppError) -> V1Error {
    match error {
        AppError::NotFound(_) => V1Error::session_not_found(),
        other => other.into(),
    }
}

/// A `sealed-v1` game is no session: its breaks come from keys this dialect cannot carry, so
/// its routes answer 404 (as for any id that is not a session) and point at the game API.
fn refuse_sealed(game: &Game) -> Result<(), V1Error> {
    if game.algorithm.is_sealed() {
        return Err(V1Error::new(
            StatusCode::NOT_FOUND,
            "session not found",
            format!(
                "game {} is a sealed-v1 game: read it at /game/{}",
                game.id, game.id
            ),
        ));
    }
    Ok(())
}

/// The session view of a game.
fn session_view(game: &Game) -> Result<SessionView, V1Error> {
    refuse_sealed(game)?;
    // Games start at most 7 days ahead and are created now: their instants always have an
    // RFC 3339 form.
    SessionView::of(&game.view()).ok_or_else(|| {
        AppError::Internal(format!("game {} has an instant outside RFC 3339", game.id)).into()
    })
}

/// `POST /v1/sessions`: 201 with a new session, or 200 with the one an `Idempotency-Key` (or
/// the user's active game) already produced.
pub async fn create(
    State(state): State<AppState>,
    key: Result<IdempotencyKeyHeader, AppError>,
    body: Result<BodyBytes, AppError>,
) -> Result<(StatusCode, Json<SessionView>), V1Error> {
    let IdempotencyKeyHeader(key) =
        key.map_err(|e| V1Error::invalid("invalid Idempotency-Key", e))?;
    let invalid_body = |e: AppError| V1Error::invalid("invalid request body", e);
    let BodyBytes(bytes) = body.map_err(invalid_body)?;
    let request: CreateSessionRequest =
        api::json::parse_body(&bytes).map_err(|e| invalid_body(e.into()))?;
    let start_at_ms = request
        .start_at
        .map(|at| check_start_at(at.ms(), now_ms()))
        .transpose()
        .map_err(|e| invalid_body(e.into()))?;
    let new = NewGame {
        user_id: request
            .user_id
            .unwrap_or_else(|| anonymous_user(key.as_ref())),
        // The session dialect's own default, not the game API's DEFAULT_ALGORITHM.
        algorithm: Some(request.algorithm.unwrap_or_else(default_algorithm).into()),
        tick_ms: Some(request.tick_ms),
        break_every: request.break_every,
        metadata: request.metadata,
        start_at_ms,
        shared: None,
    };
    let started = state.service.start(&new, key.as_ref()).await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = session_view(&started.game)?;
    view.owner_token = auth::token_for(&state.auth, &started);
    Ok((status, Json(view)))
}

/// `GET /v1/sessions/{id}`.
pub async fn get(
    State(state): State<AppState>,
    SessionPath(id): SessionPath,
) -> Result<Json<SessionView>, V1Error> {
    let game = state
        .service
        .game(id.game_id())
        .await
        .map_err(session_error)?;
    Ok(Json(session_view(&game)?))
}

/// `GET /v1/sessions/{id}/state?at=MS`: the engine's state (zeros and `false` during the
/// countdown, as that document's clients expect); `at` defaults to now.
pub async fn state_at(
    State(state): State<AppState>,
    SessionPath(id): SessionPath,
    RawQuery(query): RawQuery,
) -> Result<Json<SessionStateView>, V1Error> {
    let invalid_at = |e: AppError| V1Error::invalid("invalid at", e);
    let at = api::query::at(query.as_deref().unwrap_or_default())
        .map_err(|e| invalid_at(e.into()))?
        .unwrap_or_else(now_ms);
    refuse_sealed(
        &state
            .service
            .game(id.game_id())
            .await
            .map_err(session_error)?,
    )?;
    let computed_at = Timestamp::from_ms(at)
        .ok_or_else(|| invalid_at(ApiError::invalid("at", "has no RFC 3339 form").into()))?;
    let (_, _, engine_state) = state
        .service
        .state(id.game_id(), Some(at))
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => V1Error::session_not_found(),
            other => invalid_at(other),
        })?;
    Ok(Json(SessionStateView::new(
        id,
        computed_at,
        engine_state.into(),
    )))
}

/// `POST /v1/sessions/{id}/stop`: stops a running session; a stopped one answers 400
/// `session already stopped`.
pub async fn stop(
    State(state): State<AppState>,
    SessionPath(id): SessionPath,
    headers: HeaderMap,
) -> Result<Json<StopView>, V1Error> {
    // With V1_STOP_REQUIRES_TOKEN (the default) a stop is the owner's, as an exit is; see
    // crate::auth::AuthSettings::v1_stop_requires_token for why it is configurable.
    let owner = if state.runtime.v1_stop_requires_token() {
        Some(auth::owner_of(
            &state.auth,
            &state.metrics,
            &headers,
            id.game_id(),
        )?)
    } else {
        None
    };
    let exited = state
        .service
        .exit(id.game_id(), owner.as_ref())
        .await
        .map_err(session_error)?;
    if !exited.first {
        return Err(V1Error::already_stopped());
    }
    let stopped_at = Timestamp::from_ms(exited.exited_at_ms).ok_or_else(|| {
        V1Error::from(AppError::Internal(format!(
            "exit time {} outside RFC 3339",
            exited.exited_at_ms
        )))
    })?;
    Ok(Json(StopView {
        ok: true,
        id,
        status: SessionStatus::Stopped,
        stopped_at,
    }))
}

/// `GET /healthz`: the document's liveness probe.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The dialect's answer to a method a `/v1` route does not serve: 405 `method not allowed`
/// (axum adds the matching `Allow` header).
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn(Method) -> std::future::Ready<V1Error> + Clone + Send + Sync + 'static {
    move |method: Method| {
        std::future::ready(ApiError::method_not_allowed(method.as_str(), allow).into())
    }
}
