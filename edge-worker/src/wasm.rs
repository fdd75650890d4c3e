//! Workers runtime glue (wasm32 only): the fetch handler, outbound calls to the origins with a
//! timeout, breaker bookkeeping and failover, and the Cache API. Decisions are delegated to the
//! pure modules; this module only does I/O and assembles responses.

use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{Either, select};
use serde_json::{Map, Value, json};
use worker::wasm_bindgen::JsValue;
use worker::{
    AbortController, Cache, Context, Date, Delay, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, event, js_sys,
};

use crate::breaker::Breakers;
use crate::cache_policy::{self, STORED_AT_HEADER};
use crate::config::{self, Config, ConfigCache};
use crate::engine_state;
use crate::error::ApiError;
use crate::ids;
use crate::memo::BoundedMemo;
use crate::routes::{self, NoRoute, Route};
use crate::routing::{self, RouteHints};
use crate::validate::{self, ExitRequest, StartRequest};

thread_local! {
    // Isolate memory. wasm is single-threaded, and although one isolate interleaves concurrent
    // requests at `.await` points, these cells are never borrowed across an `.await`, so a
    // RefCell cannot be re-entered.
    static BREAKERS: RefCell<Breakers> = RefCell::new(Breakers::default());
    static GAME_REGIONS: RefCell<BoundedMemo> = RefCell::new(BoundedMemo::new(10_000));
    static CONFIG: RefCell<ConfigCache> = RefCell::new(ConfigCache::default());
}

const CORS_ALLOW_HEADERS: &str =
    "content-type, idempotency-key, x-request-id, traceparent, x-user-region";
const CORS_EXPOSE_HEADERS: &str =
    "x-edge-cache, x-edge-engine, x-edge-region, x-request-id, traceparent, idempotency-key, age";

fn now_ms() -> u64 {
    Date::now().as_millis()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        // crypto.getRandomValues is always there in workerd; this only keeps ids unique-ish if
        // it ever were not.
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

fn random_u32() -> u32 {
    u32::from_le_bytes(random_bytes::<4>())
}

/// Request correlation ids: the client's when well-formed, else fresh ones. Forwarded to the
/// origin and echoed to the client.
#[derive(Debug)]
struct Trace {
    request_id: String,
    traceparent: String,
}

impl Trace {
    fn of(req: &Request) -> Self {
        let request_id = header(req, "x-request-id")
            .filter(|v| ids::is_valid_client_id(v))
            .unwrap_or_else(|| ids::uuid_v4(random_bytes()));
        let traceparent = header(req, "traceparent")
            .filter(|v| ids::is_valid_traceparent(v))
            .unwrap_or_else(|| ids::new_traceparent(random_bytes(), random_bytes()));
        Self {
            request_id,
            traceparent,
        }
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// `request.cf.country`, read without the `worker` accessor (which unwraps).
fn cf_country(req: &Request) -> Option<String> {
    let target: &JsValue = req.inner().as_ref();
    let cf = js_sys::Reflect::get(target, &JsValue::from_str("cf")).ok()?;
    if cf.is_undefined() || cf.is_null() {
        return None;
    }
    js_sys::Reflect::get(&cf, &JsValue::from_str("country"))
        .ok()?
        .as_string()
}

/// What the handler answers, before it becomes a `worker::Response`.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            body: value.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    fn raw(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn error(e: &ApiError) -> Self {
        Self::raw(e.status, e.body().into_bytes())
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn into_response(self, trace: &Trace) -> worker::Result<Response> {
        let h = Headers::new();
        if self.status != 204 {
            h.set("content-type", "application/json; charset=utf-8")?;
        }
        h.set("cache-control", "no-store")?;
        h.set("access-control-allow-origin", "*")?;
        h.set("access-control-expose-headers", CORS_EXPOSE_HEADERS)?;
        h.set("x-request-id", &trace.request_id)?;
        h.set("traceparent", &trace.traceparent)?;
        for (name, value) in &self.headers {
            h.set(name, value)?;
        }
        let builder = Response::builder().with_status(self.status).with_headers(h);
        Ok(if self.status == 204 {
            builder.empty()
        } else {
            builder.fixed(self.body)
        })
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let trace = Trace::of(&req);
    let reply = match handle(&mut req, &env, &trace).await {
        Ok(reply) => reply,
        Err(e) => {
            if e.status >= 500 {
                worker::console_error!("{} {}: {e}", req.method(), req.path());
            }
            Reply::error(&e)
        }
    };
    match reply.into_response(&trace) {
        Ok(resp) => Ok(resp),
        // Building headers only fails on invalid header values, which we never produce; answer
        // something well-formed anyway rather than the runtime's generic error.
        Err(e) => Response::error(ApiError::internal(e.to_string()).body(), 500),
    }
}

async fn handle(req: &mut Request, env: &Env, trace: &Trace) -> Result<Reply, ApiError> {
    let method = req.method().to_string();
    let raw_url = req.inner().url();
    let (path, query) = routes::split_url(&raw_url);
    let (path, query) = (path.to_string(), query.to_string());
    let route = match routes::route(&method, &path) {
        Ok(route) => route,
        Err(NoRoute::NotFound) => return Err(ApiError::route_not_found(&method, &path)),
        Err(NoRoute::MethodNotAllowed(allow)) => {
            let e = ApiError::method_not_allowed(&method, &path, allow);
            return Ok(Reply::error(&e).with("allow", allow));
        }
    };
    match route {
        Route::Preflight => {
            return Ok(Reply::raw(204, Vec::new())
                .with("access-control-allow-methods", "GET, HEAD, POST, OPTIONS")
                .with("access-control-allow-headers", CORS_ALLOW_HEADERS)
                .with("access-control-max-age", "86400"));
        }
        // Clock sync must stay cheap and independent of configuration.
        Route::Time => return Ok(Reply::json(200, &json!({ "now": now_ms() }))),
        _ => {}
    }
    let cfg = load_config(env)?;
    match route {
        Route::Health => Ok(Reply::json(
            200,
            &json!({ "status": "ok", "regions": cfg.regions.len(), "now": now_ms() }),
        )),
        Route::Regions => Ok(regions(&cfg)),
        Route::Start => start(req, &cfg, trace).await,
        Route::Exit => exit(req, &cfg, trace).await,
        Route::Game(id) => read_game(req, &cfg, trace, &id, Read::Game).await,
        Route::GameState(id) => {
            let at = validate::parse_at(&query)?;
            read_game(req, &cfg, trace, &id, Read::State { at }).await
        }
        Route::Preflight | Route::Time => Err(ApiError::internal("unreachable route")),
    }
}

fn load_config(env: &Env) -> Result<Rc<Config>, ApiError> {
    CONFIG
        .with(|cache| {
            cache.borrow_mut().load(|name| {
                env.var(name).ok().map(|v| v.to_string()).or_else(|| {
                    // A [vars] entry written as a TOML table arrives as an object: accept it as JSON.
                    env.object_var::<Value>(name).ok().map(|v| v.to_string())
                })
            })
        })
        .map_err(|e| ApiError::new(500, "bad_config", e.to_string()))
}

fn regions(cfg: &Config) -> Reply {
    let now = now_ms();
    let list: Vec<Value> = BREAKERS.with(|b| {
        let b = b.borrow();
        cfg.regions
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "origin": r.origin,
                    "breaker": b.get(&r.name).state_name(now),
                })
            })
            .collect()
    });
    Reply::json(
        200,
        &json!({
            "regions": list,
            "defaultRegion": cfg.default_region,
            "failoverOrder": cfg.failover_order().collect::<Vec<_>>(),
            "cacheTtlSeconds": cfg.cache_ttl_ms / 1000,
            "originTimeoutMs": cfg.origin_timeout_ms,
            "variables": config::ALL_VARS,
        }),
    )
}

/// Location hints of a request; `preferred` comes from the start body only.
fn hints<'a>(
    preferred: Option<&'a str>,
    header: &'a Option<String>,
    country: &'a Option<String>,
) -> RouteHints<'a> {
    RouteHints {
        preferred,
        header: header.as_deref(),
        country: country.as_deref(),
    }
}

async fn read_body(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    validate::check_declared_length(header(req, "content-length").as_deref())?;
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
    validate::check_body_len(body.len())?;
    Ok(body)
}

/// One HTTP call to "an origin", before a region is picked.
#[derive(Debug)]
struct OriginCall {
    method: Method,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
}

impl OriginCall {
    fn new(method: Method, path: String, body: Option<String>, trace: &Trace) -> Self {
        let mut headers = vec![
            ("accept", "application/json".to_string()),
            ("x-request-id", trace.request_id.clone()),
            ("traceparent", trace.traceparent.clone()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_string()));
        }
        Self {
            method,
            path,
            body,
            headers,
        }
    }
}

#[derive(Debug)]
struct OriginReply {
    status: u16,
    body: Vec<u8>,
}

#[derive(Debug)]
enum Failure {
    Connect(String),
    Timeout(u64),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "{e}"),
            Failure::Timeout(ms) => write!(f, "timed out after {ms} ms"),
        }
    }
}

/// Sends `call` to one origin; the whole exchange (headers and body) must finish within
/// `timeout_ms`, after which the fetch is aborted.
async fn call_origin(
    origin: &str,
    call: &OriginCall,
    timeout_ms: u64,
) -> Result<OriginReply, Failure> {
    let url = format!("{origin}{}", call.path);
    let headers = Headers::new();
    for (name, value) in &call.headers {
        headers
            .set(name, value)
            .map_err(|e| Failure::Connect(e.to_string()))?;
    }
    let mut init = RequestInit::new();
    init.with_method(call.method.clone()).with_headers(headers);
    if let Some(body) = &call.body {
        init.with_body(Some(JsValue::from_str(body)));
    }
    let request =
        Request::new_with_init(&url, &init).map_err(|e| Failure::Connect(e.to_string()))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let outcome = {
        let exchange = pin!(async {
            let mut resp = Fetch::Request(request).send_with_signal(&signal).await?;
            let status = resp.status_code();
            let body = resp.bytes().await?;
            Ok::<_, worker::Error>(OriginReply { status, body })
        });
        let timer = pin!(Delay::from(Duration::from_millis(timeout_ms)));
        match select(exchange, timer).await {
            Either::Left((Ok(reply), _)) => Ok(reply),
            Either::Left((Err(e), _)) => Err(Failure::Connect(e.to_string())),
            Either::Right(((), _)) => Err(Failure::Timeout(timeout_ms)),
        }
    };
    if matches!(outcome, Err(Failure::Timeout(_))) {
        controller.abort();
    }
    outcome
}

#[derive(Debug)]
struct Served {
    region: String,
    reply: OriginReply,
}

/// Tries the regions of `order` in turn: regions whose breaker is open are skipped without a
/// call; connect errors, timeouts and 5xx count as failures and move on to the next region after
/// a backoff. Any other status (2xx, 4xx) is the answer.
async fn call_with_failover(
    cfg: &Config,
    order: &[&str],
    call: &OriginCall,
) -> Result<Served, ApiError> {
    let mut notes: Vec<String> = Vec::new();
    let mut retries = 0u32;
    for &region in order {
        let Some(origin) = cfg.origin_of(region) else {
            continue;
        };
        let allowed = BREAKERS.with(|b| b.borrow_mut().allow(region, now_ms(), &cfg.breaker));
        if !allowed {
            notes.push(format!("{region}: circuit open"));
            continue;
        }
        if retries > 0 {
            let wait = cfg.backoff.delay_ms(retries, random_u32());
            if wait > 0 {
                Delay::from(Duration::from_millis(wait)).await;
            }
        }
        retries += 1;
        let outcome = call_origin(origin, call, cfg.origin_timeout_ms).await;
        let failed = match &outcome {
            Ok(reply) if reply.status >= 500 => Some(format!("{region}: HTTP {}", reply.status)),
            Ok(_) => None,
            Err(f) => Some(format!("{region}: {f}")),
        };
        match (failed, outcome) {
            (None, Ok(reply)) => {
                BREAKERS.with(|b| b.borrow_mut().on_success(region));
                return Ok(Served {
                    region: region.to_string(),
                    reply,
                });
            }
            (note, _) => {
                BREAKERS.with(|b| b.borrow_mut().on_failure(region, now_ms(), &cfg.breaker));
                let note = note.unwrap_or_else(|| format!("{region}: failed"));
                worker::console_warn!("origin call {} {} failed: {note}", call.method, call.path);
                notes.push(note);
            }
        }
    }
    Err(ApiError::origins_unavailable(&notes.join("; ")))
}

fn parse_object(body: &[u8], region: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_gateway(format!(
            "origin {region} answered a body that is not a JSON object"
        ))),
    }
}

/// A non-2xx origin answer (404, 403, 400...) is passed through as long as it is JSON.
fn pass_through(served: Served) -> Result<Reply, ApiError> {
    parse_object(&served.reply.body, &served.region)?;
    Ok(Reply::raw(served.reply.status, served.reply.body).with("x-edge-region", served.region))
}

/// The known region a game record names, if any.
fn region_of_game<'c>(cfg: &'c Config, game: &Map<String, Value>) -> Option<&'c str> {
    game.get("region")
        .and_then(Value::as_str)
        .and_then(|r| cfg.known_region(r))
}

fn remember_region(game_id: &str, region: &str) {
    GAME_REGIONS.with(|m| m.borrow_mut().insert(game_id, region));
}

async fn start(req: &mut Request, cfg: &Config, trace: &Trace) -> Result<Reply, ApiError> {
    let body = read_body(req).await?;
    let start = StartRequest::parse(&body)?;
    let idempotency_key = match header(req, "idempotency-key") {
        Some(k) if ids::is_valid_client_id(&k) => k,
        Some(_) => {
            return Err(ApiError::invalid(
                "Idempotency-Key must be 1-128 visible ASCII characters",
            ));
        }
        // One key per client attempt, reused for every region this request fails over to.
        None => ids::uuid_v4(random_bytes()),
    };
    let (header_region, country) = (header(req, "x-user-region"), cf_country(req));
    let (first, rule) = routing::select_region(
        cfg,
        &hints(start.preferred_region.as_deref(), &header_region, &country),
    );
    let order = routing::attempt_order(cfg, first);
    let mut call = OriginCall::new(
        Method::Post,
        "/game/start".to_string(),
        Some(start.forward_body()),
        trace,
    );
    call.headers
        .push(("idempotency-key", idempotency_key.clone()));
    let served = call_with_failover(cfg, &order, &call).await?;
    if !(200..300).contains(&served.reply.status) {
        return pass_through(served).map(|r| r.with("idempotency-key", idempotency_key));
    }
    let mut game = parse_object(&served.reply.body, &served.region)?;
    let backend = region_of_game(cfg, &game)
        .unwrap_or(served.region.as_str())
        .to_string();
    if let Some(id) = game.get("gameId").and_then(Value::as_str) {
        remember_region(id, &backend);
    }
    let routed_by = routing::routed_by(first, rule, &served.region);
    game.insert("backendRegion".into(), Value::String(backend));
    game.insert("routedBy".into(), Value::String(routed_by.as_str().into()));
    Ok(Reply::json(served.reply.status, &Value::Object(game))
        .with("idempotency-key", idempotency_key)
        .with("x-edge-region", served.region))
}

async fn exit(req: &mut Request, cfg: &Config, trace: &Trace) -> Result<Reply, ApiError> {
    let body = read_body(req).await?;
    let exit = ExitRequest::parse(&body)?;
    let (header_region, country) = (header(req, "x-user-region"), cf_country(req));

    // Where the game lives: the client's word, else what this isolate or the cache knows, else
    // ask the nearest healthy origin.
    let known = exit
        .backend_region
        .as_deref()
        .and_then(|r| cfg.known_region(r))
        .map(str::to_string)
        .or_else(|| GAME_REGIONS.with(|m| m.borrow().get(&exit.game_id).map(str::to_string)));
    let region = match known {
        Some(r) => r,
        None => match cached(cfg, &cache_policy::game_key(&exit.game_id)).await {
            Some((body, _)) => {
                let game = parse_object(&body, "cache")?;
                region_of_game(cfg, &game)
                    .map(str::to_string)
                    .unwrap_or_else(|| cfg.default_region.clone())
            }
            None => {
                let (first, _) =
                    routing::select_region(cfg, &hints(None, &header_region, &country));
                let lookup =
                    OriginCall::new(Method::Get, format!("/game/{}", exit.game_id), None, trace);
                let served =
                    call_with_failover(cfg, &routing::attempt_order(cfg, first), &lookup).await?;
                if served.reply.status != 200 {
                    return pass_through(served);
                }
                let game = parse_object(&served.reply.body, &served.region)?;
                region_of_game(cfg, &game)
                    .map(str::to_string)
                    .unwrap_or(served.region)
            }
        },
    };
    remember_region(&exit.game_id, &region);

    let call = OriginCall::new(
        Method::Post,
        "/game/exit".to_string(),
        Some(exit.forward_body()),
        trace,
    );
    let served = call_with_failover(cfg, &routing::attempt_order(cfg, &region), &call).await?;
    if !(200..300).contains(&served.reply.status) {
        return pass_through(served);
    }
    // Drop the cached record before answering, so nobody reads a stale `active` afterwards.
    let cache = Cache::default();
    if let Err(e) = cache
        .delete(cache_policy::game_key(&exit.game_id), false)
        .await
    {
        worker::console_error!("cache delete failed for {}: {e}", exit.game_id);
    }
    let mut out = parse_object(&served.reply.body, &served.region)?;
    out.insert("backendRegion".into(), Value::String(region));
    Ok(Reply::json(served.reply.status, &Value::Object(out)).with("x-edge-region", served.region))
}

/// A fresh cached body and its store time, if any.
async fn cached(cfg: &Config, key: &str) -> Option<(Vec<u8>, u64)> {
    if cfg.cache_ttl_ms == 0 {
        return None;
    }
    let mut resp = Cache::default().get(key, false).await.ok()??;
    let stored_at: u64 = resp.headers().get(STORED_AT_HEADER).ok()??.parse().ok()?;
    if !cache_policy::is_fresh(stored_at, now_ms(), cfg.cache_ttl_ms) {
        return None;
    }
    let body = resp.bytes().await.ok()?;
    Some((body, stored_at))
}

async fn store(cfg: &Config, key: &str, body: &[u8], region: &str) {
    if cfg.cache_ttl_ms == 0 {
        return;
    }
    let put = async {
        let h = Headers::new();
        h.set("content-type", "application/json")?;
        h.set(
            "cache-control",
            &format!(
                "public, max-age={}",
                cache_policy::max_age_secs(cfg.cache_ttl_ms)
            ),
        )?;
        h.set(STORED_AT_HEADER, &now_ms().to_string())?;
        h.set("x-edge-region", region)?;
        let resp = Response::builder()
            .with_status(200)
            .with_headers(h)
            .fixed(body.to_vec());
        Cache::default().put(key, resp).await
    };
    if let Err(e) = put.await {
        // A cache failure only costs a future miss.
        worker::console_error!("cache put failed for {key}: {e}");
    }
}

/// Answers a state read with the shared engine from the cached game record, when that answer
/// is final (see [`engine_state`]); `None` sends the read down the usual cache/origin path.
async fn local_state(cfg: &Config, id: &str, at: Option<u64>) -> Option<Reply> {
    let (body, stored_at) = cached(cfg, &cache_policy::game_key(id)).await?;
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(&body) else {
        return None;
    };
    let timeline = engine_state::Timeline::from_record(&record)?;
    // Without `at` the origin answers for its own "now", which for an exited game is past the
    // exit even if this edge's clock lags the origin's.
    let end = timeline
        .params
        .ended_at_ms()
        .and_then(|e| u64::try_from(e).ok());
    let at = at.unwrap_or_else(|| now_ms().max(end.unwrap_or(0)));
    if !timeline.is_final_at(at, stored_at) {
        return None;
    }
    let state = timeline.state_json(id, at)?;
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

/// What a read asks for.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// `GET /edge/game/{id}`: the game record.
    Game,
    /// `GET /edge/game/{id}/state?at=`: the state at an instant (`None`: the origin's now).
    State { at: Option<u64> },
}

/// Serves a read from the cache when fresh, else from the nearest healthy origin, caching what
/// may be cached.
async fn read_game(
    req: &Request,
    cfg: &Config,
    trace: &Trace,
    id: &str,
    read: Read,
) -> Result<Reply, ApiError> {
    validate::validate_game_id(id)?;
    if let Read::State { at } = read
        && let Some(reply) = local_state(cfg, id, at).await
    {
        return Ok(reply);
    }
    let (key, path) = match read {
        Read::Game => (Some(cache_policy::game_key(id)), format!("/game/{id}")),
        Read::State { at } => {
            let key = cache_policy::state_cacheable(at, now_ms())
                .then(|| at.map(|t| cache_policy::state_key(id, t)))
                .flatten();
            let path = match at {
                Some(t) => format!("/game/{id}/state?at={t}"),
                None => format!("/game/{id}/state"),
            };
            (key, path)
        }
    };
    if let Some(key) = &key
        && let Some((body, stored_at)) = cached(cfg, key).await
    {
        return Ok(Reply::raw(200, body).with("x-edge-cache", "hit").with(
            "age",
            cache_policy::age_secs(stored_at, now_ms()).to_string(),
        ));
    }
    let (header_region, country) = (header(req, "x-user-region"), cf_country(req));
    let (first, _) = routing::select_region(cfg, &hints(None, &header_region, &country));
    let call = OriginCall::new(Method::Get, path, None, trace);
    let served = call_with_failover(cfg, &routing::attempt_order(cfg, first), &call).await?;
    if served.reply.status != 200 {
        return pass_through(served).map(|r| r.with("x-edge-cache", "miss"));
    }
    let record = parse_object(&served.reply.body, &served.region)?;
    if matches!(read, Read::Game)
        && let (Some(gid), Some(region)) = (
            record.get("gameId").and_then(Value::as_str),
            region_of_game(cfg, &record),
        )
    {
        remember_region(gid, region);
    }
    if let Some(key) = &key
        && cache_policy::status_cacheable(served.reply.status)
    {
        store(cfg, key, &served.reply.body, &served.region).await;
    }
    Ok(Reply::raw(200, served.reply.body)
        .with("x-edge-cache", "miss")
        .with("x-edge-region", served.region))
}
