//! Tournaments ([`api::tournament`]):
//! - `POST /admin/tournaments`: the operator creates one (bearer `ADMIN_TOKEN`, as
//!   `/admin/settings`: 401 without a token, 403 with a wrong one);
//! - `GET /tournaments/{id}`: the schedule; `GET /tournaments/{id}/standings`: the ranking
//!   (both cacheable for [`MAX_AGE_SECONDS`]);
//! - `POST /tournaments/{id}/rounds/{round}/join`: a seat at a table of the round, answered as
//!   a shared game's join (201 seated, 200 the seat already held).

use api::tournament::{
    CreateTournamentRequest, MAX_AGE_SECONDS, StandingsView, TournamentView, parse_id, parse_round,
};
use api::{ApiError, JoinRequest, JoinView};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::admin::{Peer, authorize};
use super::{ApiJson, IdempotencyKeyHeader};
use crate::auth;
use crate::error::AppError;
use crate::state::AppState;

fn cached() -> [(header::HeaderName, String); 1] {
    [(
        header::CACHE_CONTROL,
        format!("public, max-age={MAX_AGE_SECONDS}"),
    )]
}

/// The path's parameters, or 400 naming what is wrong with them (not valid UTF-8, say).
fn params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, AppError> {
    path.map(|Path(values)| values).map_err(|rejection| {
        ApiError::bad_request(format!("bad path: {}", rejection.body_text())).into()
    })
}

/// `POST /admin/tournaments`: 201 with the schedule.
pub async fn create(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<ApiJson<CreateTournamentRequest>, AppError>,
) -> Response {
    if let Err(refused) = authorize(&state, &headers) {
        tracing::warn!(peer = ?peer, outcome = refused.outcome(), "tournament creation refused");
        return refused.into_response();
    }
    let request = match body {
        Ok(ApiJson(request)) => request,
        Err(error) => return error.into_response(),
    };
    match state
        .service
        .create_tournament(&*state.tournaments, &request)
        .await
    {
        Ok(t) => (StatusCode::CREATED, Json(t.view(kernel::clock::now_ms()))).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /tournaments/{id}`.
pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<([(header::HeaderName, String); 1], Json<TournamentView>), AppError> {
    let id = parse_id(&params(id)?)?;
    let t = state.service.tournament(&*state.tournaments, id).await?;
    Ok((cached(), Json(t.view(kernel::clock::now_ms()))))
}

/// `GET /tournaments/{id}/standings`.
pub async fn standings(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<([(header::HeaderName, String); 1], Json<StandingsView>), AppError> {
    let id = parse_id(&params(id)?)?;
    let view = state.service.standings(&*state.tournaments, id).await?;
    Ok((cached(), Json(view)))
}

/// `POST /tournaments/{id}/rounds/{round}/join`: as `POST /game/{id}/join`, plus 404 for an
/// unknown tournament or round, 425 `too_early` before the round's joins open and 410
/// `join_closed` from its start.
pub async fn join(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(request): ApiJson<JoinRequest>,
) -> Result<(StatusCode, Json<JoinView>), AppError> {
    let (id, round) = params(path)?;
    let id = parse_id(&id)?;
    let round = parse_round(&round)?;
    let joined = state
        .service
        .join_round(
            &*state.tournaments,
            id,
            round,
            &request.user_id,
            key.as_ref(),
        )
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
