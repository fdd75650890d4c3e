//! Games as the edge serves them, for every caller alike (the HTTP handlers, a room's Worker
//! side and the `LiveRoom` itself): where a game lives, the game read
//! (`GET /edge/game/{id}`: cache, else the nearest healthy origin), the exit core (commit at
//! the game's origin, drop the cached record) and request-body parsing. Nothing here knows
//! about rooms: whoever commits an exit tells the game's room itself.
//!
//! Bodies and ids are parsed by the contract's parsers ([`api::json::parse_body`],
//! [`GameId::parse`]), so a bad input gets exactly the origin's answer.

use std::cell::RefCell;

use api::{
    ApiError, EdgeExitView, EdgeGameView, ErrorCode, ExitRequest, GameId, GameView, RegionName,
};
use worker::Request;

use super::cache;
use super::context::{CfLocation, Trace, header, now_ms};
use super::reply::Reply;
use super::upstream::{self, OriginCall, Served};
use crate::cache_policy;
use crate::config::Config;
use crate::memo::BoundedMemo;
use crate::origin::{self, Answer, OffContract};
use crate::request;
use crate::routing::{self, RouteHints};

thread_local! {
    // Which region each game lives in: immutable facts, so safe in isolate memory (see
    // `crate::memo`). Never borrowed across an `.await`.
    static GAME_REGIONS: RefCell<BoundedMemo<GameId, RegionName>> =
        RefCell::new(BoundedMemo::new(10_000));
}

/// The location hints of a request: the `x-user-region` header and `request.cf`. A call the
/// edge makes on its own (a socket's exit) has none.
#[derive(Debug, Default)]
pub(super) struct Location {
    /// `x-user-region`.
    header: Option<String>,
    /// `request.cf`.
    cf: CfLocation,
}

impl Location {
    /// The hints of `req`.
    pub(super) fn of(req: &Request) -> Self {
        Self {
            header: header(req, "x-user-region"),
            cf: CfLocation::of(req),
        }
    }

    /// Routing hints, with a start's `preferredRegion`.
    pub(super) fn hints<'a>(&'a self, preferred: Option<&'a RegionName>) -> RouteHints<'a> {
        RouteHints {
            preferred,
            header: self.header.as_deref(),
            country: self.cf.country.as_deref(),
            continent: self.cf.continent.as_deref(),
        }
    }
}

/// The game id of a path, as the contract parses it (422 on `gameId`).
pub(super) fn game_id(raw: &str) -> Result<GameId, ApiError> {
    GameId::parse(raw).map_err(|e| ApiError::invalid("gameId", e))
}

/// Reads a POST body the way the origin does: declared JSON (415), within the size limit
/// (413). The body is read as a stream and counted as it arrives ([`request::BodyLimit`]): the
/// read stops at the first chunk past the limit, so a chunked body without `Content-Length`
/// is refused without being read to its end (or buffered whole).
pub(super) async fn read_json_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;

    request::check_content_type(header(req, "content-type").as_deref())?;
    request::check_declared_length(header(req, "content-length").as_deref())?;
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req
        .stream()
        .map_err(|_| ApiError::bad_request("could not read the request body"))?;
    let mut body = request::BodyLimit::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("could not read the request body"))?;
        body.push(&chunk)?;
    }
    Ok(body.finish())
}

/// Logs an off-contract origin answer and turns it into the client's 502.
pub(super) fn off_contract(e: OffContract) -> ApiError {
    worker::console_error!("{e}");
    e.into()
}

/// Serializes a value the edge built from contract types (infallible in practice).
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|e| ApiError::internal(format!("the edge could not serialize its answer: {e}")))
}

/// Where a game lives: its record's region when this edge knows that region, else the region
/// whose origin served it.
pub(super) fn backend_region(cfg: &Config, game: &GameView, served: &RegionName) -> RegionName {
    cfg.known_region(game.region.as_str())
        .unwrap_or(served)
        .clone()
}

/// Where this isolate knows a game lives, if it does.
pub(super) fn known_region(game_id: &GameId) -> Option<RegionName> {
    GAME_REGIONS.with(|m| m.borrow().get(game_id).cloned())
}

/// Remembers where a game lives.
pub(super) fn remember_region(game_id: GameId, region: &RegionName) {
    GAME_REGIONS.with(|m| m.borrow_mut().insert(game_id, region.clone()));
}

/// An origin's refusal, passed on with its status.
pub(super) fn refused(region: &RegionName, status: u16, body: &api::ErrorBody) -> Reply {
    Reply::error_body(status, body).with("x-edge-region", region.as_str())
}

/// A cache hit: the stored body with its age.
pub(super) fn hit(body: Vec<u8>, stored_at: u64) -> Reply {
    Reply::raw(200, body).with("x-edge-cache", "hit").with(
        "age",
        cache_policy::age_secs(stored_at, now_ms()).to_string(),
    )
}

/// Asks the nearest healthy origin for `path` (a read: no preference, failover in order).
pub(super) async fn read_from_origin(
    location: &Location,
    cfg: &Config,
    trace: &Trace,
    path: String,
) -> Result<Served, ApiError> {
    let (first, _) = routing::select_region(cfg, &location.hints(None));
    let call = OriginCall::get(path, trace);
    upstream::call_with_failover(cfg, &routing::attempt_order(cfg, first.as_str()), &call).await
}

/// `GET /edge/game/{id}`: the game with `backendRegion`, from the cache when fresh. Also how
/// a room's Worker side learns the game before a socket opens.
pub(super) async fn read_game(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
) -> Result<Reply, ApiError> {
    let id = game_id(raw_id)?;
    let key = cache_policy::game_key(&id);
    if let Some((body, stored_at)) = cache::get(cfg, &key).await {
        return Ok(hit(body, stored_at));
    }
    let served = read_from_origin(&Location::of(req), cfg, trace, format!("/game/{id}")).await?;
    let reply = match origin::game(&served.region, served.status, &served.body, &id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served.region, status, &error),
        Answer::Ok(status, game) => {
            let backend = backend_region(cfg, &game, &served.region);
            remember_region(id, &backend);
            let body = to_json(&EdgeGameView {
                game,
                backend_region: backend,
                routed_by: None,
            })?
            .into_bytes();
            if cache_policy::status_cacheable(status) {
                cache::put(cfg, &key, &body).await;
            }
            Reply::raw(status, body).with("x-edge-region", served.region.as_str())
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}

/// What the exit core did.
#[derive(Debug)]
pub(super) enum ExitOutcome {
    /// The origin exited the game (or had already): the caller answers `view` and tells the
    /// game's live room.
    Exited {
        /// The origin's status.
        status: u16,
        /// The origin's answer with `backendRegion`.
        view: EdgeExitView,
        /// The region whose origin answered.
        served: RegionName,
    },
    /// An origin refused (its status and error, passed on).
    Refused {
        /// The origin's status.
        status: u16,
        /// The origin's error.
        error: api::ErrorBody,
        /// The region whose origin answered.
        served: RegionName,
    },
}

impl ExitOutcome {
    /// The HTTP answer.
    pub(super) fn into_reply(self) -> Reply {
        match self {
            ExitOutcome::Exited {
                status,
                view,
                served,
            } => Reply::json(status, &view).with("x-edge-region", served.as_str()),
            ExitOutcome::Refused {
                status,
                error,
                served,
            } => refused(&served, status, &error),
        }
    }
}

/// Where the game of an exit lives: the client's word, else what this isolate or the cache
/// knows, else the answer of the nearest healthy origin (`Err`: its refusal, e.g. 404).
async fn exit_region(
    location: &Location,
    cfg: &Config,
    trace: &Trace,
    exit: &ExitRequest,
) -> Result<Result<RegionName, ExitOutcome>, ApiError> {
    let known = exit
        .backend_region
        .as_ref()
        .and_then(|r| cfg.known_region(r.as_str()))
        .cloned()
        .or_else(|| GAME_REGIONS.with(|m| m.borrow().get(&exit.game_id).cloned()))
        // A game whose home region is no longer routable (drained, expired) moves to a live
        // one: any origin can exit it (shared store).
        .filter(|r| cfg.known_region(r.as_str()).is_some());
    if let Some(region) = known {
        return Ok(Ok(region));
    }
    if let Some((body, _)) = cache::get(cfg, &cache_policy::game_key(&exit.game_id)).await
        && let Ok(game) = serde_json::from_slice::<GameView>(&body)
        && let Some(region) = cfg.known_region(game.region.as_str())
    {
        return Ok(Ok(region.clone()));
    }
    let path = format!("/game/{}", exit.game_id);
    let served = read_from_origin(location, cfg, trace, path).await?;
    Ok(
        match origin::game(&served.region, served.status, &served.body, &exit.game_id)
            .map_err(off_contract)?
        {
            Answer::Refused(status, error) => Err(ExitOutcome::Refused {
                status,
                error,
                served: served.region,
            }),
            Answer::Ok(_, game) => Ok(backend_region(cfg, &game, &served.region)),
        },
    )
}

/// The exit core, for `POST /edge/game/exit` and a socket's `exit` alike: exits the game at
/// its region (failing over like starts) with the owner token in `authorization` (checked for
/// shape here, verified by the origin), and drops the cached record before the caller
/// answers, so nobody reads a stale `active` afterwards.
pub(super) async fn exit(
    cfg: &Config,
    trace: &Trace,
    location: &Location,
    exit: &ExitRequest,
    authorization: Option<String>,
) -> Result<ExitOutcome, ApiError> {
    // A request without a well-formed token is refused here, without any origin call. The
    // value is passed on as it is and never logged.
    if let Err(e) = owner_token::bearer(authorization.as_deref()) {
        return Err(ApiError::new(ErrorCode::Unauthorized, e.message()));
    }
    let region = match exit_region(location, cfg, trace, exit).await? {
        Ok(region) => region,
        Err(refusal) => return Ok(refusal),
    };
    remember_region(exit.game_id, &region);

    let call = OriginCall::post("/game/exit", to_json(exit)?, trace)
        .with("authorization", authorization.unwrap_or_default());
    let served =
        upstream::call_with_failover(cfg, &routing::attempt_order(cfg, region.as_str()), &call)
            .await?;
    Ok(
        match origin::exited(&served.region, served.status, &served.body, &exit.game_id)
            .map_err(off_contract)?
        {
            Answer::Refused(status, error) => ExitOutcome::Refused {
                status,
                error,
                served: served.region,
            },
            Answer::Ok(status, view) => {
                cache::delete(&cache_policy::game_key(&exit.game_id)).await;
                ExitOutcome::Exited {
                    status,
                    view: EdgeExitView {
                        exit: view,
                        backend_region: region,
                    },
                    served: served.region,
                }
            }
        },
    )
}
