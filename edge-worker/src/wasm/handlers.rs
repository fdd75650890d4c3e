//! One function per endpoint that is not a game read (those are [`super::games`], shared with
//! the rooms): start, exit, state reads, regions, health, time. Bodies, ids and query
//! parameters are parsed by the contract's parsers ([`api::json::parse_body`],
//! [`api::GameId::parse`], [`api::query::at`]), so a bad input gets exactly the origin's
//! answer.

use api::{
    ApiError, EdgeGameView, EdgeJoinView, ExitRequest, GameId, GameView, IdempotencyKey,
    JoinRequest, JoinView, RegionName, StartRequest,
};
use worker::Request;

use super::cache;
use super::context::{Trace, header, now_ms};
use super::games::{
    self, ExitOutcome, Location, backend_region, game_id, hit, off_contract, read_from_origin,
    read_json_body, refused, remember_region, to_json,
};
use super::reply::Reply;
use super::upstream::{self, OriginCall};
use crate::cache_policy;
use crate::config::Config;
use crate::engine_state::Timeline;
use crate::ids;
use crate::origin::{self, Answer, OffContract};
use crate::routing;
use crate::views::{HealthView, TimeView};

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
    // With USER_AUTH on, the start must prove its user (401) and be that user (403), before
    // anything is charged to that user's budget (which anyone could otherwise drain).
    let identity = match super::users::authenticate(req, cfg).await {
        Ok(identity) => identity,
        Err(refused) => return Ok(refused),
    };
    crate::user_auth::start_user(identity.as_ref(), &start.user_id)?;
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
        .with("idempotency-key", idempotency_key.clone())
        .for_user(identity.as_ref().map(|i| i.user_id.as_str().to_owned()));
    let served = upstream::call_with_failover(cfg, &order, &call).await?;
    let reply =
        match origin::started(&served.region, served.status, &served.body).map_err(off_contract)? {
            Answer::Refused(status, error) => refused(&served.region, status, &error),
            Answer::Ok(status, mut game) => {
                let backend = backend_region(cfg, &game, &served.region);
                remember_region(game.game_id, &backend);
                // The authenticated owner's existing game, answered without its token (another
                // tab or device): the edge mints the same token the origin issued.
                if identity.is_some()
                    && let Some(token) = crate::user_auth::owner_token_for(
                        super::users::owner_keyring(cfg),
                        identity.as_ref(),
                        &game,
                    )
                {
                    game.owner_token = Some(token);
                }
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

/// `POST /edge/game/{id}/join`: a seat in a shared game for the authenticated user (with
/// `USER_AUTH` on, the body's `userId` must be the credential's: 401/403 as for starts),
/// charged to the user's start budget. Sent to the game's region when known (any origin can
/// seat: they share the store), failing over in order with one `Idempotency-Key` for every
/// attempt, so a retried join answers the same seat and token.
pub(super) async fn join(
    req: &mut Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
    limit: impl FnOnce(&str) -> Result<(), Reply>,
) -> Result<Reply, ApiError> {
    let id = game_id(raw_id)?;
    let path = format!("/game/{id}/join");
    seat_join(req, cfg, trace, path, limit, |region, status, body| {
        origin::joined(region, status, body, &id)
    })
    .await
}

/// `POST /edge/tournament/{id}/rounds/{round}/join`: a seat at a table of a tournament's round
/// for the authenticated user, with the same identity checks, budgets, failover and one
/// `Idempotency-Key` as a game join ([`join`]). The id and round are checked here (422
/// `tournamentId`, 400 `round`) before anything is charged or sent; the origin's answer must be
/// a table of this tournament.
pub(super) async fn tournament_join(
    req: &mut Request,
    cfg: &Config,
    trace: &Trace,
    (raw_id, raw_round): (&str, &str),
    limit: impl FnOnce(&str) -> Result<(), Reply>,
) -> Result<Reply, ApiError> {
    let id = api::tournament::parse_id(raw_id)?;
    let round = api::tournament::parse_round(raw_round)?;
    let path = format!("/tournaments/{id}/rounds/{round}/join");
    seat_join(req, cfg, trace, path, limit, |region, status, body| {
        origin::tournament_joined(region, status, body, &id)
    })
    .await
}

/// A join of either kind, once its path is checked: the body, the user's identity and budget,
/// one `Idempotency-Key` for every attempt, the origin call at `path` with failover, and its
/// answer, which `check` holds to the contract, given back with the seat's token made for
/// this user.
async fn seat_join(
    req: &mut Request,
    cfg: &Config,
    trace: &Trace,
    path: String,
    limit: impl FnOnce(&str) -> Result<(), Reply>,
    check: impl FnOnce(&RegionName, u16, &[u8]) -> Result<Answer<JoinView>, OffContract>,
) -> Result<Reply, ApiError> {
    let body = read_json_body(req).await?;
    let join: JoinRequest = api::json::parse_body(&body)?;
    let identity = match super::users::authenticate(req, cfg).await {
        Ok(identity) => identity,
        Err(refused) => return Ok(refused),
    };
    crate::user_auth::start_user(identity.as_ref(), &join.user_id)?;
    if let Err(refused) = limit(join.user_id.as_str()) {
        return Ok(refused);
    }
    let idempotency_key = match header(req, "idempotency-key") {
        Some(k) => IdempotencyKey::parse(&k)
            .map_err(|e| ApiError::invalid("Idempotency-Key", e))?
            .into(),
        None => ids::new_id(),
    };
    let location = Location::of(req);
    let (first, _) = routing::select_region(cfg, &location.hints(join.backend_region.as_ref()));
    let order = routing::attempt_order(cfg, first.as_str());
    let call = OriginCall::post(&path, to_json(&join)?, trace)
        .with("idempotency-key", idempotency_key.clone())
        .for_user(identity.as_ref().map(|i| i.user_id.as_str().to_owned()));
    let served = upstream::call_with_failover(cfg, &order, &call).await?;
    let reply = match check(&served.region, served.status, &served.body).map_err(off_contract)? {
        Answer::Refused(status, error) => refused(&served.region, status, &error),
        Answer::Ok(status, mut joined) => {
            let backend = backend_region(cfg, &joined.game, &served.region);
            remember_region(joined.game.game_id, &backend);
            if let Some(token) = crate::user_auth::seat_token_for(
                super::users::owner_keyring(cfg),
                identity.as_ref(),
                &joined,
            ) {
                joined.owner_token = Some(token);
            }
            let view = EdgeJoinView {
                join: joined,
                backend_region: backend,
            };
            Reply::json(status, &view).with("x-edge-region", served.region.as_str())
        }
    };
    Ok(reply.with("idempotency-key", idempotency_key))
}

/// `GET /edge/tournament/{id}` (`standings`: `.../standings`): from the cache (a few seconds)
/// or the nearest healthy origin (every origin serves every tournament).
pub(super) async fn read_tournament(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
    standings: bool,
) -> Result<Reply, ApiError> {
    let id = api::tournament::parse_id(raw_id)?;
    let cache_control = format!("public, max-age={}", api::tournament::MAX_AGE_SECONDS);
    let (key, path) = if standings {
        (
            cache_policy::standings_key(&id),
            format!("/tournaments/{id}/standings"),
        )
    } else {
        (
            cache_policy::tournament_key(&id),
            format!("/tournaments/{id}"),
        )
    };
    if let Some((body, stored_at)) =
        cache::get_capped(cfg, &key, api::tournament::MAX_AGE_SECONDS).await
    {
        return Ok(hit(body, stored_at).with("cache-control", &cache_control));
    }
    let served = read_from_origin(&Location::of(req), cfg, trace, path).await?;
    let (region, status, body) = (&served.region, served.status, &served.body);
    let answer = if standings {
        match origin::standings(region, status, body, &id).map_err(off_contract)? {
            Answer::Ok(status, view) => Answer::Ok(status, to_json(&view)?),
            Answer::Refused(status, error) => Answer::Refused(status, error),
        }
    } else {
        match origin::tournament(region, status, body, &id).map_err(off_contract)? {
            Answer::Ok(status, view) => Answer::Ok(status, to_json(&view)?),
            Answer::Refused(status, error) => Answer::Refused(status, error),
        }
    };
    let reply = match answer {
        Answer::Refused(status, error) => refused(region, status, &error),
        Answer::Ok(status, json) => {
            let body = json.into_bytes();
            if cache_policy::status_cacheable(status) {
                cache::put_capped(cfg, &key, &body, api::tournament::MAX_AGE_SECONDS).await;
            }
            Reply::raw(status, body)
                .with("x-edge-region", region.as_str())
                .with("cache-control", &cache_control)
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}

/// `GET /edge/game/{id}/results`: every seat's result, from the cache once final (the game
/// ended), else from the nearest healthy origin.
pub(super) async fn read_results(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
) -> Result<Reply, ApiError> {
    let id = game_id(raw_id)?;
    let key = cache_policy::results_key(&id);
    if let Some((body, stored_at)) = cache::get(cfg, &key).await {
        return Ok(hit(body, stored_at));
    }
    let path = format!("/game/{id}/results");
    let served = read_from_origin(&Location::of(req), cfg, trace, path).await?;
    let reply = match origin::results(&served.region, served.status, &served.body, &id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served.region, status, &error),
        Answer::Ok(status, results) => {
            let body = to_json(&results)?.into_bytes();
            if cache_policy::results_cacheable(status, results.is_final()) {
                cache::put(cfg, &key, &body).await;
            }
            Reply::raw(status, body).with("x-edge-region", served.region.as_str())
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}

/// `GET /edge/game/{id}/rounds?from=R`: a sealed game's revealed keys, from the game's own
/// region when known (failing over in order), else the nearest healthy origin. A page the
/// origin marks immutable (full, or of an ended game) is cached for good and served from the
/// cache; any other page is `no-cache`. A round not over yet is the origin's 425 with its
/// `retryAt` and `Retry-After`, never stored. The origin's private schedule headers are never
/// asked for here (and never passed on: only the kept cache and retry headers are).
pub(super) async fn read_rounds(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    raw_id: &str,
    query: &str,
) -> Result<Reply, ApiError> {
    let id = game_id(raw_id)?;
    let from = api::query::step(query, "from")?.unwrap_or(1);
    let key = cache_policy::rounds_key(&id, from);
    if let Some((body, stored_at)) = cache::get_immutable(cfg, &key).await {
        return Ok(hit(body, stored_at).with("cache-control", cache_policy::IMMUTABLE));
    }
    let path = format!("/game/{id}/rounds?from={from}");
    let served = match games::known_region(&id) {
        Some(region) => {
            let call = OriginCall::get(path, trace);
            upstream::call_with_failover(cfg, &routing::attempt_order(cfg, region.as_str()), &call)
                .await?
        }
        None => read_from_origin(&Location::of(req), cfg, trace, path).await?,
    };
    let reply = match origin::rounds(&served.region, served.status, &served.body, &id, from)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => {
            let retry_at = error.error.retry_at;
            let reply = refused(&served.region, status, &error);
            match (status, retry_at) {
                (425, Some(at)) => {
                    let secs = served.header("retry-after").map_or_else(
                        || cache_policy::retry_after_secs(at, now_ms()).to_string(),
                        str::to_owned,
                    );
                    reply.with("retry-after", secs)
                }
                _ => reply,
            }
        }
        Answer::Ok(status, view) => {
            let body = to_json(&view)?.into_bytes();
            let immutable = cache_policy::rounds_cacheable(status, served.header("cache-control"));
            if immutable {
                cache::put_immutable(cfg, &key, &body).await;
            }
            Reply::raw(status, body)
                .with("x-edge-region", served.region.as_str())
                .with(
                    "cache-control",
                    if immutable {
                        cache_policy::IMMUTABLE
                    } else {
                        "no-cache"
                    },
                )
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}

/// `GET /edge/leaderboard?period=&algorithm=&day=&limit=`: validated here (a bad parameter is
/// a 400 without an origin call), then from the cache (a few seconds, under the query's
/// canonical form) or the nearest healthy origin.
pub(super) async fn read_leaderboard(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    query: &str,
) -> Result<Reply, ApiError> {
    let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let query = api::LeaderboardQuery::parse(query, now)?;
    let cache_control = format!("public, max-age={}", api::leaderboard::MAX_AGE_SECONDS);
    let key = cache_policy::leaderboard_key(&query);
    if let Some((body, stored_at)) =
        cache::get_capped(cfg, &key, api::leaderboard::MAX_AGE_SECONDS).await
    {
        return Ok(hit(body, stored_at).with("cache-control", &cache_control));
    }
    let path = cache_policy::leaderboard_path(&query);
    let served = read_from_origin(&Location::of(req), cfg, trace, path).await?;
    let reply = match origin::leaderboard(&served.region, served.status, &served.body)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served.region, status, &error),
        Answer::Ok(status, view) => {
            let body = to_json(&view)?.into_bytes();
            if cache_policy::status_cacheable(status) {
                cache::put_capped(cfg, &key, &body, api::leaderboard::MAX_AGE_SECONDS).await;
            }
            Reply::raw(status, body)
                .with("x-edge-region", served.region.as_str())
                .with("cache-control", &cache_control)
        }
    };
    Ok(reply.with("x-edge-cache", "miss"))
}

/// An exit the origin committed: the game and when it exited, for the caller to tell the
/// game's live room.
#[derive(Debug, Clone, Copy)]
pub(super) struct Committed {
    /// The game.
    pub(super) game_id: GameId,
    /// When it exited (Unix ms).
    pub(super) exited_at: i64,
}

/// `POST /edge/game/exit`: the exit core ([`games::exit`]) with the request's body, owner
/// token and location; answers the origin's exit with `backendRegion`, and what was committed
/// (the dispatcher tells the room before the answer leaves).
pub(super) async fn exit(
    req: &mut Request,
    cfg: &Config,
    trace: &Trace,
) -> Result<(Reply, Option<Committed>), ApiError> {
    let body = read_json_body(req).await?;
    let exit: ExitRequest = api::json::parse_body(&body)?;
    let authorization = header(req, "authorization");
    let outcome = games::exit(cfg, trace, &Location::of(req), &exit, authorization).await?;
    let committed = match &outcome {
        // A seat of a shared game: the game goes on (its origin tells the room when the last
        // seat's exit ends it).
        ExitOutcome::Exited { view, .. } if view.exit.result.is_some() => None,
        ExitOutcome::Exited { view, .. } => Some(Committed {
            game_id: exit.game_id,
            exited_at: view.exit.exited_at,
        }),
        ExitOutcome::Refused { .. } => None,
    };
    Ok((outcome.into_reply(), committed))
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
    let served = read_from_origin(&Location::of(req), cfg, trace, path).await?;
    let reply = match origin::state(&served.region, served.status, &served.body, &id)
        .map_err(off_contract)?
    {
        Answer::Refused(status, error) => refused(&served.region, status, &error),
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
