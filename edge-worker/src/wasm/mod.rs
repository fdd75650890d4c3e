//! Workers runtime glue (wasm32 only). Decisions are delegated to the pure modules; this module
//! only does I/O and assembles responses:
//! - here: the fetch handler, the per-client rate limits, dispatch;
//! - [`context`]: the clock, randomness, request correlation ([`Trace`]), headers, location
//!   and the cached configuration (a leaf every other module may read);
//! - [`reply`]: what a handler answers, turned into a `worker::Response` (CORS, common headers);
//! - [`upstream`]: calls to the origins, with timeout, failover, backoff, and what they observe
//!   (breakers, round trips);
//! - [`cache`]: the Workers Cache API;
//! - [`live`]: the live region table (registry refresh off the request path) and start routing;
//! - [`games`]: game reads, the exit core and body parsing, shared by handlers and rooms;
//! - [`handlers`]: one function per endpoint (other than game reads);
//! - [`room_routes`]: the Worker side of the live rooms (upgrade, stats, exit notices);
//! - [`live_room`]: the `LiveRoom` Durable Object (one per game, WebSockets).
//!
//! No module here imports one that imports it back: `context` and `reply` are leaves, the
//! handlers and the two room files meet only in `games`, and whoever commits an exit tells the
//! room ([`room_routes::notify_exited`]) itself.

use std::cell::RefCell;

use api::room::ExitSource;
use api::{ApiError, ErrorCode};
use worker::{Context, Env, Request, Response, event};

use crate::config::{self, Config};
use crate::rate_limit::{Kind, Limits, Scope};
use crate::routes::{self, NoRoute, Route};
use crate::telemetry::{self, RequestRecord};

mod cache;
mod context;
mod games;
mod handlers;
mod live;
mod live_room;
mod reply;
mod room_routes;
mod spans;
mod upstream;
mod users;

use context::{Trace, load_config, now_ms};
use reply::Reply;

thread_local! {
    // Isolate memory; never borrowed across an `.await` (see `context`).
    static LIMITS: RefCell<Limits> = RefCell::new(Limits::default());
}

/// Which budget a request is charged to.
#[derive(Clone, Copy)]
enum Charge<'a> {
    /// The client address's budget of this kind (IPv6 by /64).
    Address(Kind),
    /// A start's user budget (once the body names the user).
    StartUser(&'a str),
}

/// Spends one request from this isolate's buckets, under the limits parsed with `cfg`; over
/// budget is 429 `rate_limited` with `Retry-After`, and a bad limit variable the 500 naming it.
fn limit(cfg: &Config, trace: &Trace, charge: Charge<'_>) -> Result<(), Reply> {
    let settings = cfg
        .rate_limits
        .clone()
        .map_err(|e| Reply::error(&config::misconfigured(&e)))?;
    let ip = trace.client_ip.as_deref().unwrap_or("unknown");
    let outcome = LIMITS.with(|l| {
        let mut limits = l.borrow_mut();
        limits.configure(settings);
        match charge {
            Charge::Address(kind) => limits.check_ip(kind, ip, now_ms()),
            Charge::StartUser(user) => limits.check_user(user, now_ms()),
        }
    });
    match outcome {
        Ok(()) => Ok(()),
        Err((scope, decision)) => {
            let message = match (charge, scope) {
                (_, Scope::User) => {
                    "too many game starts for this user; retry after the time in Retry-After"
                }
                (Charge::Address(Kind::Start), Scope::Ip) => {
                    "too many game starts from this address; retry after the time in Retry-After"
                }
                _ => "too many requests from this address; retry after the time in Retry-After",
            };
            let e = ApiError::new(ErrorCode::RateLimited, message);
            let secs = decision.retry_after_secs().unwrap_or(1);
            Err(Reply::error(&e).with("retry-after", secs.to_string()))
        }
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = now_ms();
    let trace = Trace::of(&req);
    let method = telemetry::method_label(req.method().as_ref());
    let raw_url = req.inner().url();
    let route = telemetry::route_template(method, routes::split_url(&raw_url).0);
    let response = serve(&mut req, &env, &ctx, &trace).await;
    let record = RequestRecord {
        request_id: trace.request_id.clone(),
        method: method.to_owned(),
        route: route.to_owned(),
        region: response
            .as_ref()
            .ok()
            .and_then(|r| telemetry::region_label(r.headers().get("x-edge-region").ok().flatten())),
        // An error here becomes the runtime's own 500.
        status: response.as_ref().map_or(500, Response::status_code),
        start_ms: started,
        duration_ms: now_ms().saturating_sub(started),
    };
    spans::finish(&env, &ctx, &trace, &record);
    response
}

/// Answers one request (`fetch` records it).
async fn serve(
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    trace: &Trace,
) -> worker::Result<Response> {
    // Live rooms answer with the room's own response (a 101 WebSocket upgrade included).
    if let Some(route) = room_route(req) {
        // Opening a socket or reading a room's counters reads the game (cache, else an
        // origin): both spend the read budget, as a game read does.
        if matches!(route, Route::Room(_) | Route::RoomStats(_)) {
            let limited = load_config(env)
                .map_err(|e| Reply::error(&e))
                .and_then(|cfg| limit(&cfg, trace, Charge::Address(Kind::Read)));
            if let Err(refused) = limited {
                return refused.into_response(trace);
            }
        }
        return match room_routes::serve(req, env, trace, route).await {
            Ok(resp) => Ok(resp),
            Err(e) => Reply::error(&e).into_response(trace),
        };
    }
    let reply = match handle(req, env, trace).await {
        Ok(reply) => reply,
        Err(e) => {
            if e.status() >= 500 {
                // A JSON line like the request's own (the path without its query).
                let line = serde_json::json!({
                    "level": "error",
                    "message": e.to_string(),
                    "request_id": trace.request_id,
                    "trace_id": trace.span.trace_id,
                    "method": telemetry::method_label(req.method().as_ref()),
                    "path": req.path(),
                });
                worker::console_error!("{line}");
            }
            Reply::error(&e)
        }
    };
    // After the answer is built: a due registry refresh runs past the response.
    if let Ok(cfg) = load_config(env) {
        live::maybe_refresh(&cfg, ctx);
    }
    match reply.into_response(trace) {
        Ok(resp) => Ok(resp),
        // Building headers only fails on invalid header values, which are never produced;
        // answer something well-formed anyway rather than the runtime's generic error.
        Err(e) => {
            worker::console_error!("building the response failed: {e}");
            let e = ApiError::internal("the edge could not build its answer");
            Response::error(e.to_json(), e.status())
        }
    }
}

/// Tells the runtime the body of a refused request will never be read (cancels its stream),
/// so nothing waits to drain it: a client over budget gets its 429 while still sending.
fn discard_body(req: &Request) {
    if let Some(body) = req.inner().body() {
        let _ = body.cancel();
    }
}

/// The live-room route of `req`, if it is one.
fn room_route(req: &Request) -> Option<Route> {
    let method = req.method().to_string();
    let raw_url = req.inner().url();
    let (path, _) = routes::split_url(&raw_url);
    routes::route(&method, path).ok().filter(Route::is_room)
}

/// Routes a request to its handler.
async fn handle(req: &mut Request, env: &Env, trace: &Trace) -> Result<Reply, ApiError> {
    let method = req.method().to_string();
    let raw_url = req.inner().url();
    let (path, query) = routes::split_url(&raw_url);
    let route = match routes::route(&method, path) {
        Ok(route) => route,
        Err(NoRoute::NotFound) => return Err(ApiError::route_not_found(&method, path)),
        Err(NoRoute::MethodNotAllowed(allow)) => {
            let e = ApiError::method_not_allowed(&method, allow);
            return Ok(Reply::error(&e).with("allow", allow));
        }
    };
    match route {
        Route::Preflight => return Ok(Reply::preflight()),
        // Clock sync must stay cheap and independent of configuration.
        Route::Time => return Ok(handlers::time()),
        _ => {}
    }
    // Starts spend their address's start budget before the body is read, and the user's once
    // the body names the user (in the handler); everything else that reaches an origin spends
    // the looser per-address budget first.
    let base = load_config(env)?;
    if matches!(
        route,
        Route::Exit
            | Route::Game(_)
            | Route::GameState(_)
            | Route::Results(_)
            | Route::Rounds(_)
            | Route::Leaderboard
            | Route::Tournament(_)
            | Route::Standings(_)
    ) && let Err(refused) = limit(&base, trace, Charge::Address(Kind::Read))
    {
        discard_body(req);
        return Ok(refused);
    }
    let cfg = live::effective(&base);
    match route {
        Route::Health => Ok(handlers::health(&cfg)),
        Route::Regions => Ok(handlers::regions(&cfg)),
        Route::GuestAuth => match limit(&base, trace, Charge::Address(Kind::Start)) {
            // Issuing identities costs what a start costs, from the same per-address budget.
            Ok(()) => users::guest(&base),
            Err(refused) => Ok(refused),
        },
        Route::Start => {
            // The address first, before a byte of the body is read: a client over its start
            // budget costs no body read. The user's budget once the body names the user.
            if let Err(refused) = limit(&base, trace, Charge::Address(Kind::Start)) {
                discard_body(req);
                return Ok(refused);
            }
            handlers::start(req, &cfg, trace, |user| {
                limit(&base, trace, Charge::StartUser(user))
            })
            .await
        }
        Route::Join(id) => {
            // A join writes what a start writes: the same budgets, in the same order.
            if let Err(refused) = limit(&base, trace, Charge::Address(Kind::Start)) {
                discard_body(req);
                return Ok(refused);
            }
            handlers::join(req, &cfg, trace, &id, |user| {
                limit(&base, trace, Charge::StartUser(user))
            })
            .await
        }
        Route::TournamentJoin(id, round) => {
            // A tournament join is a game join (or a start, opening a table): the same budgets.
            if let Err(refused) = limit(&base, trace, Charge::Address(Kind::Start)) {
                discard_body(req);
                return Ok(refused);
            }
            handlers::tournament_join(req, &cfg, trace, (&id, &round), |user| {
                limit(&base, trace, Charge::StartUser(user))
            })
            .await
        }
        Route::Tournament(id) => handlers::read_tournament(req, &cfg, trace, &id, false).await,
        Route::Standings(id) => handlers::read_tournament(req, &cfg, trace, &id, true).await,
        Route::Results(id) => handlers::read_results(req, &cfg, trace, &id).await,
        Route::Rounds(id) => handlers::read_rounds(req, &cfg, trace, &id, query).await,
        Route::Leaderboard => handlers::read_leaderboard(req, &cfg, trace, query).await,
        Route::Exit => {
            let (reply, committed) = handlers::exit(req, &cfg, trace).await?;
            // Push the exit to the game's live room before answering.
            if let Some(c) = committed {
                let notice = api::room::ExitedNotice {
                    exited_at: c.exited_at,
                    seat: None,
                };
                room_routes::notify_exited(env, c.game_id, &notice, ExitSource::Edge).await;
            }
            Ok(reply)
        }
        Route::Game(id) => games::read_game(req, &cfg, trace, &id).await,
        Route::GameState(id) => handlers::read_state(req, &cfg, trace, &id, query).await,
        Route::Preflight
        | Route::Time
        | Route::Room(_)
        | Route::RoomStats(_)
        | Route::ExitedNotice(_)
        | Route::JoinedNotice(_) => Err(ApiError::internal("unreachable route")),
    }
}
