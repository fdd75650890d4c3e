//! The game API (camelCase, [`api::ErrorBody`] errors): start, exit, read, server-side state,
//! replay, the user's active game, and the seats of shared games (join, results).

use api::{
    ExitRequest, ExitView, GameStatus, GameView, JoinRequest, JoinView, ReplayView, ResultsView,
    StartRequest, StateView, TickView,
};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{ApiJson, GamePath, IdempotencyKeyHeader, UserPath};
use crate::auth;
use crate::domain::NewGame;
use crate::edge_auth::IsFromEdge;
use crate::error::AppError;
use crate::state::AppState;

/// `POST /game/start`: 201 with the new game, or 200 with the user's active game (or the game
/// an `Idempotency-Key` already produced).
pub async fn start(
    State(state): State<AppState>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(request): ApiJson<StartRequest>,
) -> Result<(StatusCode, Json<GameView>), AppError> {
    let started = state
        .service
        .start(&NewGame::from(request), key.as_ref())
        .await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = started.game.view();
    view.owner_token = auth::token_for(&state.auth, &started);
    Ok((status, Json(view)))
}

/// `POST /game/exit`: the player's exit (repeats answer the first exit's time). Needs the
/// game's owner token (`Authorization: Bearer`): 401 without one, 403 with one that does not
/// allow it, checked before the game is even read.
pub async fn exit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ExitRequest>,
) -> Result<Json<ExitView>, AppError> {
    let owner = auth::owner_of(&state.auth, &state.metrics, &headers, request.game_id)?;
    if owner != request.user_id {
        return Err(AppError::Forbidden(
            "the owner token is not this user's".into(),
        ));
    }
    // `backendRegion` is the edge's routing hint: validated by the type, unused here.
    let exited = state
        .service
        .exit(request.game_id, Some(&request.user_id))
        .await?;
    Ok(Json(ExitView {
        ok: true,
        game_id: exited.game_id,
        user_id: exited.user_id,
        exited_at: exited.exited_at_ms,
        status: GameStatus::Exited,
        result: exited.result,
    }))
}

/// `POST /game/{id}/join`: a seat in a shared game for the body's user: 201 with the seat and
/// its owner token, or 200 with the seat the user already holds (the token only with the
/// `Idempotency-Key` that took it). Refusals: 409 `game_full`, `already_playing`,
/// `not_joinable` (also a tournament's table: joined only through its round's join); 410
/// `join_closed`, `game_ended`.
pub async fn join(
    State(state): State<AppState>,
    GamePath(id): GamePath,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(request): ApiJson<JoinRequest>,
) -> Result<(StatusCode, Json<JoinView>), AppError> {
    // `backendRegion` is the edge's routing hint: validated by the type, unused here.
    let joined = state
        .service
        .join_direct(&*state.tournaments, id, &request.user_id, key.as_ref())
        .await?;
    let status = if joined.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let owner_token = auth::token_for_seat(&state.auth, &joined);
    Ok((
        status,
        Json(JoinView {
            seat: joined.seat.view(),
            game: joined.game.view(),
            owner_token,
        }),
    ))
}

/// `GET /game/{id}/results`: every seat of the game and its result (final once `status` is
/// `exited`).
pub async fn results(
    State(state): State<AppState>,
    GamePath(id): GamePath,
) -> Result<Json<ResultsView>, AppError> {
    Ok(Json(state.service.results(id).await?))
}

/// `GET /game/{id}`.
pub async fn get(
    State(state): State<AppState>,
    GamePath(id): GamePath,
) -> Result<Json<GameView>, AppError> {
    Ok(Json(state.service.game(id).await?.view()))
}

/// `GET /game/{id}/state?at=MS`: the state computed by the shared engine (`at` defaults to
/// now).
pub async fn state_at(
    State(state): State<AppState>,
    GamePath(id): GamePath,
    RawQuery(query): RawQuery,
) -> Result<Json<StateView>, AppError> {
    let at = api::query::at(query.as_deref().unwrap_or_default())?;
    let (_, at, engine_state) = state.service.state(id, at).await?;
    Ok(Json(StateView::new(id, at, engine_state)))
}

/// `GET /game/{id}/replay?from=STEP&to=STEP`: the timeline, step by step.
pub async fn replay(
    State(state): State<AppState>,
    GamePath(id): GamePath,
    RawQuery(query): RawQuery,
) -> Result<Json<ReplayView>, AppError> {
    let query = query.as_deref().unwrap_or_default();
    let from = api::query::step(query, "from")?.unwrap_or(0);
    let to = api::query::step(query, "to")?;
    let replay = state.service.replay(id, from, to).await?;
    Ok(Json(ReplayView {
        game_id: replay.game.id,
        from: replay.from,
        to: replay.to,
        ticks: replay.ticks.into_iter().map(TickView::from).collect(),
    }))
}

/// The request header with which the edge asks `GET /game/{id}/rounds` for the reveal
/// schedule (value `1`); heeded only on a request whose edge signature verified.
pub const SCHEDULE_REQUEST_HEADER: &str = "x-seedsync-schedule";
/// Answer header (edge only): how many rounds are public now.
pub const PUBLIC_ROUNDS_HEADER: &str = "x-seedsync-public-rounds";
/// Answer header (edge only): the next reveal instant, Unix ms (absent once nothing more
/// will be revealed round by round: the game ended, or its chain did).
pub const NEXT_REVEAL_AT_HEADER: &str = "x-seedsync-next-reveal-at";
/// Answer header (edge only): the round whose key comes out at that instant.
pub const NEXT_ROUND_HEADER: &str = "x-seedsync-next-round";

/// `GET /game/{id}/rounds?from=R`: a sealed game's public round keys from round `R` (default
/// 1). A full page, or any page of an ended game, is cacheable forever; anything else must be
/// asked again (`no-cache`), and a 425 is never stored.
///
/// A request from the edge (its signature verified: [`IsFromEdge`]) that sends
/// `x-seedsync-schedule: 1` also gets the reveal schedule ([`crate::service::Schedule`]) in
/// the `x-seedsync-*` headers above, on any answer about a sealed game (a 425 included), and
/// that answer is `no-store`: the edge's room sets its alarm for the next reveal with it.
/// Nobody else ever gets these headers: the next reveal instant says when the next break is.
pub async fn rounds(
    State(state): State<AppState>,
    IsFromEdge(from_edge): IsFromEdge,
    headers: HeaderMap,
    GamePath(id): GamePath,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let from = api::query::step(query.as_deref().unwrap_or_default(), "from")?;
    let asked = headers
        .get(SCHEDULE_REQUEST_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    let (answer, schedule) = state.service.rounds(id, from, from_edge && asked).await;
    let mut response = match answer {
        Ok(rounds) => {
            let cache = if rounds.immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            ([(header::CACHE_CONTROL, cache)], Json(rounds.view)).into_response()
        }
        Err(e) => e.into_response(),
    };
    if let Some(schedule) = schedule {
        let h = response.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(PUBLIC_ROUNDS_HEADER, HeaderValue::from(schedule.public));
        if let Some((round, at)) = schedule.next_reveal {
            h.insert(NEXT_ROUND_HEADER, HeaderValue::from(round));
            h.insert(NEXT_REVEAL_AT_HEADER, HeaderValue::from(at));
        }
    }
    Ok(response)
}

/// `GET /users/{userId}/game`: the user's active game.
pub async fn user_game(
    State(state): State<AppState>,
    UserPath(user): UserPath,
) -> Result<Json<GameView>, AppError> {
    Ok(Json(state.service.user_game(&user).await?.view()))
}
