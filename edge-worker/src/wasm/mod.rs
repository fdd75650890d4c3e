//! Workers runtime glue (wasm32 only). Decisions are delegated to the pure modules; this module
//! only does I/O and assembles responses:
//! - here: the fetch handler, request correlation ([`Trace`]), configuration loading, dispatch;
//! - [`reply`]: what a handler answers, turned into a `worker::Response` (CORS, common headers);
//! - [`upstream`]: calls to the origins, with timeout, failover, backoff and breakers;
//! - [`cache`]: the Workers Cache API;
//! - [`handlers`]: one function per endpoint;
//! - [`live`]: the live region table (registry refresh off the request path, round trips).
//! - [`room`]: the live game rooms (a Durable Object per game, WebSockets).

use std::cell::RefCell;
use std::rc::Rc;

use api::{ApiError, ErrorCode};
use worker::wasm_bindgen::JsValue;
use worker::{Context, Date, Env, Request, Response, event, js_sys};

use crate::config::{Config, ConfigCache};
use crate::ids;
use crate::rate_limit::{self, Kind, Limits, Scope};
use crate::routes::{self, NoRoute, Route};

mod cache;
mod handlers;
mod live;
mod reply;
mod room;
mod upstream;

use reply::Reply;

thread_local! {
    // Isolate memory. wasm is single-threaded, and although one isolate interleaves concurrent
    // requests at `.await` points, these cells are never borrowed across an `.await`, so a
    // RefCell cannot be re-entered.
    static CONFIG: RefCell<ConfigCache> = RefCell::new(ConfigCache::default());
    static LIMITS: RefCell<Limits> = RefCell::new(Limits::default());
}

/// Spends one request of `kind` for the client (and `user`, for starts) from this isolate's
/// buckets; over budget is 429 `rate_limited` with `Retry-After`.
fn limit(env: &Env, trace: &Trace, kind: Kind, user: Option<&str>) -> Result<(), Reply> {
    let settings =
        rate_limit::Settings::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
            .map_err(|e| Reply::error(&crate::config::misconfigured(&e)))?;
    let ip = trace.client_ip.as_deref().unwrap_or("unknown");
    let outcome = LIMITS.with(|l| {
        let mut limits = l.borrow_mut();
        limits.configure(settings);
        limits.check(kind, ip, user, now_ms())
    });
    match outcome {
        Ok(()) => Ok(()),
        Err((scope, decision)) => {
            let message = match (kind, scope) {
                (Kind::Start, Scope::User) => {
                    "too many game starts for this user; retry after the time in Retry-After"
                }
                (Kind::Start, Scope::Ip) => {
                    "too many game starts from this address; retry after the time in Retry-After"
                }
                (Kind::Read, _) => {
                    "too many requests from this address; retry after the time in Retry-After"
                }
            };
            let e = ApiError::new(ErrorCode::RateLimited, message);
            let secs = decision.retry_after_secs().unwrap_or(1);
            Err(Reply::error(&e).with("retry-after", secs.to_string()))
        }
    }
}

/// The Worker's clock, Unix ms.
fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Random bytes from `crypto.getRandomValues`.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        // crypto.getRandomValues is always there in workerd; this only keeps trace ids and
        // jitter varied if it ever were not.
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

/// A uniformly random `u32` (backoff jitter).
fn random_u32() -> u32 {
    u32::from_le_bytes(random_bytes::<4>())
}

/// Request correlation ids: the client's when well-formed, else fresh ones. Forwarded to the
/// origin and echoed to the client.
#[derive(Debug)]
struct Trace {
    /// `x-request-id`.
    request_id: String,
    /// W3C `traceparent`.
    traceparent: String,
    /// The client's address (`cf-connecting-ip`), forwarded to the origin as
    /// `x-forwarded-for` for its per-client limits.
    client_ip: Option<String>,
}

impl Trace {
    /// The ids of `req`.
    fn of(req: &Request) -> Self {
        let request_id = ids::request_id(header(req, "x-request-id").as_deref());
        let traceparent = header(req, "traceparent")
            .filter(|v| ids::is_valid_traceparent(v))
            .unwrap_or_else(|| ids::new_traceparent(random_bytes(), random_bytes()));
        Self {
            request_id,
            traceparent,
            client_ip: header(req, "cf-connecting-ip")
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
        }
    }
}

/// A request header's value, if present and readable.
fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Where Cloudflare located the client: `request.cf.country` and `request.cf.continent`.
/// Read by reflection rather than through `worker::Cf`, whose accessors panic on a value of an
/// unexpected type; a missing or odd value is simply no hint.
#[derive(Debug, Default)]
struct CfLocation {
    /// ISO 3166-1 alpha-2 country code.
    country: Option<String>,
    /// Continent code (`EU`, `NA`, ...).
    continent: Option<String>,
}

impl CfLocation {
    /// The location of `req` (empty without `request.cf`).
    fn of(req: &Request) -> Self {
        let target: &JsValue = req.inner().as_ref();
        let Ok(cf) = js_sys::Reflect::get(target, &JsValue::from_str("cf")) else {
            return Self::default();
        };
        if !cf.is_object() {
            return Self::default();
        }
        let field = |name: &str| {
            js_sys::Reflect::get(&cf, &JsValue::from_str(name))
                .ok()?
                .as_string()
        };
        Self {
            country: field("country"),
            continent: field("continent"),
        }
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let trace = Trace::of(&req);
    // Live rooms answer with the room's own response (a 101 WebSocket upgrade included).
    if let Some(route) = room_route(&req) {
        // Opening a socket reads the game (cache, else an origin): it spends the read budget.
        if matches!(route, Route::Room(_))
            && let Err(refused) = limit(&env, &trace, Kind::Read, None)
        {
            return refused.into_response(&trace);
        }
        return match room::serve(&mut req, &env, &trace, route).await {
            Ok(resp) => Ok(resp),
            Err(e) => Reply::error(&e).into_response(&trace),
        };
    }
    let reply = match handle(&mut req, &env, &trace).await {
        Ok(reply) => reply,
        Err(e) => {
            if e.status() >= 500 {
                worker::console_error!("{} {}: {e}", req.method(), req.path());
            }
            Reply::error(&e)
        }
    };
    // After the answer is built: a due registry refresh runs past the response.
    if let Ok(cfg) = load_config(&env) {
        live::maybe_refresh(&cfg, &ctx);
    }
    match reply.into_response(&trace) {
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
    // Starts are charged once their body names the user (in the handler); everything else that
    // reaches an origin spends the looser per-address budget first.
    if matches!(route, Route::Exit | Route::Game(_) | Route::GameState(_))
        && let Err(refused) = limit(env, trace, Kind::Read, None)
    {
        return Ok(refused);
    }
    let cfg = live::effective(&load_config(env)?);
    match route {
        Route::Health => Ok(handlers::health(&cfg)),
        Route::Regions => Ok(handlers::regions(&cfg)),
        Route::Start => {
            handlers::start(req, &cfg, trace, |user| {
                limit(env, trace, Kind::Start, Some(user))
            })
            .await
        }
        Route::Exit => handlers::exit(req, env, &cfg, trace).await,
        Route::Game(id) => handlers::read_game(req, &cfg, trace, &id).await,
        Route::GameState(id) => handlers::read_state(req, &cfg, trace, &id, query).await,
        Route::Preflight
        | Route::Time
        | Route::Room(_)
        | Route::RoomStats(_)
        | Route::ExitedNotice(_) => Err(ApiError::internal("unreachable route")),
    }
}

/// The configuration of the current `[vars]`, parsed once per distinct values.
fn load_config(env: &Env) -> Result<Rc<Config>, ApiError> {
    CONFIG
        .with(|cache| {
            cache.borrow_mut().load(|name| {
                env.var(name).ok().map(|v| v.to_string()).or_else(|| {
                    // A [vars] entry written as a TOML table arrives as an object: accept it as
                    // JSON.
                    env.object_var::<serde_json::Value>(name)
                        .ok()
                        .map(|v| v.to_string())
                })
            })
        })
        .map_err(|e| crate::config::misconfigured(&e))
}
