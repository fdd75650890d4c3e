//! The Worker side of the live rooms: the client routes that lead to a game's `LiveRoom`
//! ([`super::live_room`]), and telling a room that its game exited.
//!
//! - `GET /edge/game/{id}/live`: the Worker checks the id and the upgrade, reads the game as
//!   `GET /edge/game/{id}` does ([`games::read_game`]: an unknown game is its 404, before any
//!   socket) and hands the request with the game to the game's room.
//! - `GET /edge/game/{id}/live/stats`: the room's counters, for a game the game read finds
//!   (an unknown id is its 404, and no room is created for it).
//! - `POST /edge/internal/game/{id}/exited`: the origin's exit notice (shared secret), of the
//!   game or of one seat of a shared game.
//! - `POST /edge/internal/game/{id}/joined`: the origin's notice of a shared game's committed
//!   join (same secret), which the room pushes as `seated`.
//! - [`notify_exited`]: whoever commits an exit at the edge tells the room with it.

use api::room::{ExitSource, ExitedNotice, NOTIFY_SECRET_HEADER, SeatJoin};
use api::{ApiError, ErrorCode, GameId};
use worker::wasm_bindgen::JsValue;
use worker::{Env, Method, Request, RequestInit, Response, js_sys};

use super::cache;
use super::context::{Trace, header, load_config};
use super::games::{self, game_id};
use super::live_room::{GAME_HEADER, SOURCE_HEADER, internal};
use super::reply::Reply;
use crate::cache_policy;
use crate::room as rules;
use crate::routes::Route;

/// The Durable Object binding (wrangler.toml `[[durable_objects.bindings]]`).
const BINDING: &str = "LIVE_ROOMS";

/// The stub of `id`'s room.
fn room(env: &Env, id: &GameId) -> worker::Result<worker::Stub> {
    env.durable_object(BINDING)?
        .id_from_name(&id.to_string())?
        .get_stub()
}

/// Hands `req` to `id`'s room.
async fn forward(env: &Env, id: &GameId, req: Request) -> Result<Response, ApiError> {
    room(env, id)
        .map_err(|e| internal("reach the room", e))?
        .fetch_with_request(req)
        .await
        .map_err(|e| internal("reach the room", e))
}

/// Serves a room route (`route.is_room()`), as the Worker.
pub(super) async fn serve(
    req: &mut Request,
    env: &Env,
    trace: &Trace,
    route: Route,
) -> Result<Response, ApiError> {
    match route {
        Route::Room(raw) => {
            let id = game_id(&raw)?;
            let upgrade = header(req, "upgrade").unwrap_or_default();
            if !upgrade.eq_ignore_ascii_case("websocket") {
                return Err(ApiError::bad_request(
                    "expected a WebSocket upgrade (Upgrade: websocket)",
                ));
            }
            // The game as `GET /edge/game/{id}` reads it (edge cache, else an origin): an
            // unknown game is its 404 here, before any socket. The room keeps the first copy it
            // is given (in storage) and ignores later ones.
            let cfg = super::live::effective(&load_config(env)?);
            let game = games::read_game(req, &cfg, trace, &raw).await?;
            if game.status() != 200 {
                return game.into_response(trace).map_err(|e| internal("answer", e));
            }
            let headers = req.headers().clone();
            let text = std::str::from_utf8(game.body()).unwrap_or_default();
            let _ = headers.set(
                GAME_HEADER,
                &String::from(js_sys::encode_uri_component(text)),
            );
            let mut init = RequestInit::new();
            init.with_headers(headers);
            let forwarded =
                Request::new_with_init(&format!("https://live-room/edge/game/{id}/live"), &init)
                    .map_err(|e| internal("reach the room", e))?;
            forward(env, &id, forwarded).await
        }
        Route::RoomStats(raw) => {
            let id = game_id(&raw)?;
            // Only a game that exists has a room to describe: the game read (cache, else an
            // origin; the read budget was spent) answers an unknown id with its 404, so a
            // made-up id never instantiates a Durable Object.
            let cfg = super::live::effective(&load_config(env)?);
            let game = games::read_game(req, &cfg, trace, &raw).await?;
            if game.status() != 200 {
                return game.into_response(trace).map_err(|e| internal("answer", e));
            }
            let forwarded = req.clone().map_err(|e| internal("reach the room", e))?;
            forward(env, &id, forwarded).await
        }
        Route::JoinedNotice(raw) => {
            let id = game_id(&raw)?;
            check_notice_secret(req, env)?;
            let body = games::read_json_body(req).await?;
            // Checked here, so the room only ever gets a well-formed join.
            let _: SeatJoin = api::json::parse_body(&body)?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_body(Some(JsValue::from_str(
                    std::str::from_utf8(&body).unwrap_or("{}"),
                )));
            let forwarded = Request::new_with_init(
                &format!("https://live-room/edge/internal/game/{id}/joined"),
                &init,
            )
            .map_err(|e| internal("reach the room", e))?;
            forward(env, &id, forwarded).await?;
            Reply::raw(200, br#"{"ok":true}"#.to_vec())
                .into_response(trace)
                .map_err(|e| internal("answer", e))
        }
        Route::ExitedNotice(raw) => {
            let id = game_id(&raw)?;
            check_notice_secret(req, env)?;
            let body = games::read_json_body(req).await?;
            let notice: ExitedNotice = api::json::parse_body(&body)?;
            // The game's record changed: drop the cached copy as the edge's own exit does.
            cache::delete(&cache_policy::game_key(&id)).await;
            notify_exited(env, id, &notice, ExitSource::Origin).await;
            Reply::raw(200, br#"{"ok":true}"#.to_vec())
                .into_response(trace)
                .map_err(|e| internal("answer", e))
        }
        _ => Err(ApiError::internal("not a live route")),
    }
}

/// The origin's notices carry the edge's `EDGE_NOTIFY_SECRET`: without it configured the
/// routes do not exist (404); a missing or wrong one is 401.
fn check_notice_secret(req: &Request, env: &Env) -> Result<(), ApiError> {
    let cfg = load_config(env)?;
    let Some(secret) = &cfg.notify_secret else {
        return Err(ApiError::not_found(
            "origin notices are not enabled at this edge",
        ));
    };
    let presented = header(req, NOTIFY_SECRET_HEADER).unwrap_or_default();
    if !rules::secret_matches(&presented, secret.expose()) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong notify secret",
        ));
    }
    Ok(())
}

/// Tells `id`'s room that the game exited (or, with `notice.seat`, that one seat did) (never
/// fails the caller: a room that cannot be told only means its sockets fall back to polling).
pub(super) async fn notify_exited(
    env: &Env,
    id: GameId,
    notice: &ExitedNotice,
    source: ExitSource,
) {
    let result = async {
        let body = serde_json::to_string(notice)?;
        let headers = worker::Headers::new();
        headers.set(
            SOURCE_HEADER,
            if source == ExitSource::Origin {
                "origin"
            } else {
                "edge"
            },
        )?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let req = Request::new_with_init(
            &format!("https://live-room/edge/internal/game/{id}/exited"),
            &init,
        )?;
        room(env, &id)?.fetch_with_request(req).await?;
        Ok::<(), worker::Error>(())
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("live room {id}: exit notice failed: {e}");
    }
}
