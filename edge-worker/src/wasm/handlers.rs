//! One function per endpoint: start, exit, game and state reads, regions, health, time. Bodies,
//! ids and query parameters are parsed by the contract's parsers ([`api::json::parse_body`],
//! [`GameId::parse`], [`api::query::at`]), so a bad input gets exactly the origin's answer.

use std::cell::RefCell;

use api::room::ExitSource;
use api::{
    ApiError, EdgeExitView, EdgeGameView, ErrorCode, ExitRequest, GameId, GameView, IdempotencyKey,
    RegionName, StartRequest,
};
use worker::{Env, Request};

use super::reply::Reply;
use super::upstream::{self, OriginCall, Served};
use super::{CfLocation, Trace, cache, header, now_ms};
use crate::cache_policy;
use crate::config::Config;
use crate::engine_state::Timeline;
use crate::ids;
use crate::memo::BoundedMemo;
use crate::origin::{self, Answer, OffContract};
use crate::request;
use crate::routing::{self, RouteHints};
use crate::views::{HealthView, TimeView};

thread_local! {
    // Which region each game lives in: immutable facts, so safe in isolate memory (see
    // `crate::memo`). Never borrowed across an `.await`.
    static GAME_REGIONS: RefCell<BoundedMemo<GameId, RegionName>> =
        RefCell::new(BoundedMemo::new(10_000));
}

/// `GET /edge/time`.
pub(super) fn time() -> Reply {
    Reply::json(200, &TimeView { now: now_ms() })
}

/// `GET /edge/health`.
pub(super) fn health(cfg: &Config) -> Reply {
    Reply::json(200, &HealthView::new(cfg, now_ms()))
}

/// `GET /edge/regions`.
pub(super) fn regions(cfg: &Config) -> Reply {
    super::live::regions_view(cfg, |view| Reply::json(200, view))
}

/// The location hints of a request: the `x-user-region` header and `request.cf`.
struct Location {
    /// `x-user-region`.
    header: Option<String>,
    /// `request.cf`.
    cf: CfLocation,
}

impl Location {
    /// The hints of `req`.
    fn of(req: &Request) -> Self {
        Self {
            header: header(req, "x-user-region"),
            cf: CfLocation::of(req),
        }
    }

    /// Routing hints, with a start's `preferredRegion`.
    fn hints<'a>(&'a self, preferred: Option<&'a RegionName>) -> RouteHints<'a> {
        RouteHints {
            preferred,
            header: self.header.as_deref(),
            country: self.cf.country.as_deref(),
            continent: self.cf.continent.as_deref(),
        }
    }
}

/// The game id of a path, as the contract parses it (422 on `gameId`).
fn game_id(raw: &str) -> Result<GameId, ApiError> {
    GameId::parse(raw).map_err(|e| ApiError::invalid("gameId", e))
}

/// Reads a POST body the way the origin does: declared JSON (415), within the size limit (413).
pub(super) async fn read_json_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    request::check_content_type(header(req, "content-type").as_deref())?;
    request::check_declared_length(header(req, "content-length").as_deref())?;
    let body = req
        .bytes()
        .await
        .map_err(|_| ApiError::bad_request("could not read the request body"))?;
    request::check_body_len(body.len())?;
    Ok(body)
}

/// Logs an off-contract origin answer and turns it into the client's 502.
fn off_contract(e: OffContract) -> ApiError {
    worker::console_error!("{e}");
    e.into()
}

/// Serializes a value the edge built from contract types (infallible in practice).
fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|e| ApiError::internal(format!("the edge could not serialize its answer: {e}")))
}

/// Where a game lives: its record's region when this edge knows that region, else the region
/// whose origin served it.
fn backend_region(cfg: &Config, game: &GameView, served: &RegionName) -> RegionName {
    cfg.known_region(game.region.as_str())
        .unwrap_or(served)
        .clone()
}

/// Remembers where a game lives.
fn remember_region(game_id: GameId, region: &RegionName) {
    GAME_REGIONS.with(|m| m.borrow_mut().insert(game_id, region.clone()));
}

/// An origin's refusal, passed on with its status.
fn refused(served: &Served, status: u16, body: &api::ErrorBody) -> Reply {
    Reply::error_body(status, body).with("x-edge-region", served.region.as_str())
}

/// `POST /edge/game/start`: routes the start to a region and answers the origin's game with
/// `backendRegion` and `routedBy`.
pub(super) async fn start(
    req: &mut Request,
    cfg: &Config,
    trace: &Trace,
    limit: impl FnOnce(&str) -> Result<(), Reply>,
) -> Result<Reply, ApiError> {
    let body = read_json_body(req).await?;
    let start: StartRequest = api::json::parse_body(&body)?;
    if let Err(refused) = limit(start.user_id.as_str()) {
        return Ok(refused);
    }
    let idempotency_key = match header(req, "idempotency-key") {
        Some(k) => IdempotencyKey::parse(&k)
            .map_err(|e| ApiError::invalid("Idempotency-Key", e))?
            .into(),
        // One key per client attempt, reused for every region this request fails over to.
        None => ids::new_id(),
    };
    let location = Location::of(req);
    let (first, rule) =
        super::live::select_start(cfg, &location.hints(start.preferred_region.as_ref()));
    let first = &first;
    let order = routing::attempt_order(cfg, first.as_str());
    // The typed request, re-serialized: the origin sees exactly the contract's fields
    // (`preferredRegion` included; origins accept and ignore it).
    let call = OriginCall::post("/game/start", to_json(&start)?, trace)
        .with("idempotency-key", idempotency_key.clone());
    let served = upstream::call_with_failover(cfg, &order, &call).await?;
    let reply =
        match origin::started(&served.region, served.status, &served.body).map_err(off_contract)? {
            Answer::Refused(status, error) => refused(&served, status, &error),
            Answer::Ok(status, game) => {
                let backend = backend_region(cfg, &game, &served.region);
                remember_region(game.game_id, &backend);
                let view = EdgeGameView {
                    game,
                    backend_region: backend,
                    routed_by: Some(routing::routed_by(first, rule, &served.region)),
                };
                Reply::json(status, &view).with("x-edge-region", served.region.as_str())
            }
        };
    Ok(reply.with("idempotency-key", idempotency_key))
}

/// Where the game of an exit lives: the client's word, else what this isolate or the cache
/// knows, else the answer of the nearest healthy origin (`Err(reply)`: its refusal, e.g. 404).
async fn exit_region(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    exit: &ExitRequest,
) -> Result<Result<RegionName, Reply>, ApiError> {
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
    let location = Location::of(req);
    let (first, _) = routing::select_region(cfg, &location.hints(None));
    let lookup = OriginCall::get(format!("/game/{}", exit.game_id), trace);
    let served =
        upstream::call_with_failover(cfg, &routing::attempt_order(cfg, first.as_str()), &lookup)
            .await?;
    Ok(
        match origin::game(&served.region, served.status, &served.body, &exit.game_id)
            .map_err(off_contract)?
        {
            Answer::Refused(status, error) => Err(refused(&served, status, &error)),
            Answer::Ok(_, game) => Ok(backend_region(cfg, &game, &served.region)),
        },
    )
}

/// `POST /edge/game/exit`: exits the game at its region (failing over like starts), drops the
/// cached record, tells the game's live room, and answers the origin's exit with `backendRegion`.
pub(super) async fn exit(
    req: &mut Request,
    env: &Env,
    cfg: &Config,
    trace: &Trace,
) -> Result<Reply, ApiError> {
    let body = read_json_body(req).await?;
    let exit: ExitRequest = api::json::parse_body(&body)?;
    // The origin verifies the owner token; a request without a well-formed one is refused
    // here, without any origin call. The value is passed on as it is and never logged.
    let authorization = header(req, "authorization");
    if let Err(e) = owner_token::bearer(authorization.as_deref()) {
        return Err(ApiError::new(ErrorCode::Unauthorized, e.message()));
    }
    let region = match exit_region(req, cfg, trace, &exit).await? {
        Ok(region) => region,
        Err(refusal) => return Ok(refusal),
    };
    remember_region(exit.game_id, &region);

    let call = OriginCall::post("/game/exit", to_json(&exit)?, trace)
        .with("authorization", authorization.unwrap_or_default());
    let served =
        upstream::call_with_failover(cfg, &routing::attempt_order(cfg, region.as_str()), &call)
            .await?;
    match origin::exited(&served.region, served.status, &served.body, &exit.game_id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => Ok(refused(&served, status, &error)),
        Answer::Ok(status, view) => {
            // Drop the cached record before answering, so nobody reads a stale `active`
            // afterwards.
            cache::delete(&cache_policy::game_key(&exit.game_id)).await;
            // Push the exit to the game's live room before answering.
            super::room::notify_exited(env, exit.game_id, view.exited_at, ExitSource::Edge).await;
            let view = EdgeExitView {
                exit: view,
                backend_region: region,
            };
            Ok(Reply::json(status, &view).with("x-edge-region", served.region.as_str()))
        }
    }
}

/// A cache hit: the stored body with its age.
fn hit(body: Vec<u8>, stored_at: u64) -> Reply {
    Reply::raw(200, body).with("x-edge-cache", "hit").with(
        "age",
        cache_policy::age_secs(stored_at, now_ms()).to_string(),
    )
}

/// Asks the nearest healthy origin for `path` (a read: no preference, failover in order).
pub(super) async fn read_from_origin(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    path: String,
) -> Result<Served, ApiError> {
    let location = Location::of(req);
    let (first, _) = routing::select_region(cfg, &location.hints(None));
    let call = OriginCall::get(path, trace);
    upstream::call_with_failover(cfg, &routing::attempt_order(cfg, first.as_str()), &call).await
}

/// `GET /edge/game/{id}`: the game with `backendRegion`, from the cache when fresh.
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
    let served = read_from_origin(req, cfg, trace, format!("/game/{id}")).await?;
    let reply = match origin::game(&served.region, served.status, &served.body, &id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served, status, &error),
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

/// Answers a state read with the shared engine from the cached game record, when that answer
/// is final (see [`crate::engine_state`]); `None` sends the read down the usual cache/origin
/// path.
async fn local_state(cfg: &Config, id: &GameId, at: Option<i64>) -> Option<Reply> {
    let (body, stored_at) = cache::get(cfg, &cache_policy::game_key(id)).await?;
    // The cached record is an `EdgeGameView`; read as the origin's `GameView` (the edge's
    // additions ignored), which is all a timeline needs.
    let game: GameView = serde_json::from_slice(&body).ok()?;
    let timeline = Timeline::of(&game)?;
    let now = i64::try_from(now_ms()).ok()?;
    let at = at.unwrap_or_else(|| timeline.default_at(now));
    if !timeline.is_final_at(at, stored_at) {
        return None;
    }
    let state = timeline.state(at)?;
    Some(
        Reply::json(200, &state)
            .with("x-edge-cache", "hit")
            .with("x-edge-engine", "local")
            .with(
                "age",
                cache_policy::age_secs(stored_at, now_ms()).to_string(),
            ),
    )
}

/// `GET /edge/game/{id}/state?at=`: computed here when final, else from the cache (settled
/// instants only) or the nearest healthy origin.
pub(super) async fn read_state(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
    query: &str,
) -> Result<Reply, ApiError> {
    let id = game_id(raw_id)?;
    let at = api::query::at(query)?;
    if let Some(reply) = local_state(cfg, &id, at).await {
        return Ok(reply);
    }
    let key = at
        .filter(|_| cache_policy::state_cacheable(at, now_ms()))
        .map(|t| cache_policy::state_key(&id, t));
    if let Some(key) = &key
        && let Some((body, stored_at)) = cache::get(cfg, key).await
    {
        return Ok(hit(body, stored_at));
    }
    let path = match at {
        Some(t) => format!("/game/{id}/state?at={t}"),
        None => format!("/game/{id}/state"),
    };
    let served = read_from_origin(req, cfg, trace, path).await?;
    let reply = match origin::state(&served.region, served.status, &served.body, &id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served, status, &error),
        Answer::Ok(status, state) => {
            let body = to_json(&state)?.into_bytes();
            if let Some(key) = &key
                && cache_policy::status_cacheable(status)
            {
                cache::put(cfg, key, &body).await;
            }
            Reply::raw(status, body).with("x-edge-region", served.region.as_str())
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}
