//! Calls to the origins: one exchange under a timeout (the fetch is aborted when it runs out),
//! and failover across regions with backoff and per-region circuit breakers. A connect error,
//! a timeout or a 5xx is a failed attempt; any other answer (2xx, 4xx) is the answer, read by
//! [`crate::origin`].
//!
//! Every call is signed for the origin when `EDGE_ORIGIN_SECRET` is set ([`sign`]): a fresh
//! timestamp and nonce per attempt, over the method, the path and query as sent, the client
//! address the edge vouches for and the user it verified ([`trust::edge_auth`]). That is what
//! lets an origin believe the client address (for its per-client limits) and, in production,
//! serve the public API at all. `x-forwarded-for` is still sent, for origins behind an
//! ordinary load balancer that trust it by IP.
//!
//! What the calls observe stays here, in isolate memory: each region's breaker and its round
//! trips ([`Measurements`]). The live region table ([`super::live`]) reads both to route, and
//! adds the round trips of its probes through [`observe_rtt`].

use std::cell::RefCell;
use std::pin::pin;
use std::time::Duration;

use api::{ApiError, RegionName};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::{Either, select};
use trust::Keys;
use trust::edge_auth::{self, SignedRequest};
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use super::context::{Trace, now_ms, random_bytes, random_u32};
use crate::breaker::Breakers;
use crate::config::{Config, Region};
use crate::live::{Measurements, RegionTable};

thread_local! {
    // Isolate memory; never borrowed across an `.await` (see `super::context`).
    static BREAKERS: RefCell<Breakers> = RefCell::new(Breakers::default());
    static MEASUREMENTS: RefCell<Measurements> = RefCell::new(Measurements::default());
}

/// Reads this isolate's breakers and round trips.
pub(super) fn with_observed<R>(f: impl FnOnce(&Breakers, &Measurements) -> R) -> R {
    BREAKERS.with(|b| MEASUREMENTS.with(|m| f(&b.borrow(), &m.borrow())))
}

/// Records a round trip to `region`.
pub(super) fn observe_rtt(region: &RegionName, ms: f64) {
    MEASUREMENTS.with(|m| m.borrow_mut().observe(region, ms));
}

/// Remembers the region the latency policy chose (its hysteresis keeps it).
pub(super) fn remember_latency_choice(region: &RegionName) {
    MEASUREMENTS.with(|m| m.borrow_mut().latency_choice = Some(region.clone()));
}

/// Forgets the round trips of regions no longer in `table`.
pub(super) fn retain_measured(table: &RegionTable) {
    MEASUREMENTS.with(|m| m.borrow_mut().retain(table));
}

/// One HTTP call to "an origin", before a region is picked.
#[derive(Debug)]
pub(super) struct OriginCall {
    /// Method.
    method: Method,
    /// Path and query, e.g. `/game/start`.
    path: String,
    /// JSON body, if any.
    body: Option<String>,
    /// Headers to send.
    headers: Vec<(&'static str, String)>,
    /// The client address the edge vouches for (`cf-connecting-ip`; empty for the edge's own
    /// calls), signed for the origin.
    client_address: String,
    /// The user the edge verified (USER_AUTH), signed for the origin.
    user_id: Option<String>,
}

impl OriginCall {
    /// A `GET` of `path`.
    pub(super) fn get(path: String, trace: &Trace) -> Self {
        Self::new(Method::Get, path, None, trace)
    }

    /// A `POST` of a JSON body to `path`.
    pub(super) fn post(path: &str, body: String, trace: &Trace) -> Self {
        Self::new(Method::Post, path.to_owned(), Some(body), trace)
    }

    fn new(method: Method, path: String, body: Option<String>, trace: &Trace) -> Self {
        let mut headers = vec![
            ("accept", "application/json".to_string()),
            ("x-request-id", trace.request_id.clone()),
            ("traceparent", trace.traceparent.clone()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_string()));
        }
        // The origins key their per-client limits on it (when they trust this edge).
        if let Some(ip) = &trace.client_ip {
            headers.push(("x-forwarded-for", ip.clone()));
        }
        Self {
            method,
            path,
            body,
            headers,
            client_address: trace.client_ip.clone().unwrap_or_default(),
            user_id: None,
        }
    }

    /// Vouches for `user_id` (verified by the edge) in the signature.
    pub(super) fn for_user(mut self, user_id: Option<String>) -> Self {
        self.user_id = user_id;
        self
    }

    /// Adds a header.
    pub(super) fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// An origin's answer.
#[derive(Debug)]
pub(super) struct Served {
    /// The region whose origin answered.
    pub(super) region: RegionName,
    /// HTTP status (never 5xx).
    pub(super) status: u16,
    /// Body.
    pub(super) body: Vec<u8>,
    /// The answer's headers the edge reads ([`KEPT_HEADERS`]), lowercase names.
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Served {
    /// The value of header `name` (one of [`KEPT_HEADERS`]).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The origin answer headers kept in [`Served`]: caching and retry advice passed on to
/// clients, and the reveal schedule of a sealed game an origin tells the edge's rooms.
pub(super) const KEPT_HEADERS: [&str; 5] = [
    "cache-control",
    "retry-after",
    crate::reveal::PUBLIC_ROUNDS_HEADER,
    crate::reveal::NEXT_ROUND_HEADER,
    crate::reveal::NEXT_REVEAL_AT_HEADER,
];

/// Why one attempt failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The fetch failed (connect error, reset); the runtime's message, for the log only.
    Connect(String),
    /// No complete answer within the budget.
    Timeout(u64),
    /// The origin answered a 5xx.
    Status(u16),
}

impl Failure {
    /// What the client is told about this attempt (no hosts, no runtime messages).
    fn summary(&self) -> String {
        match self {
            Failure::Connect(_) => "unreachable".to_owned(),
            Failure::Timeout(ms) => format!("timed out after {ms} ms"),
            Failure::Status(status) => format!("HTTP {status}"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "unreachable: {e}"),
            other => f.write_str(&other.summary()),
        }
    }
}

/// The edge's signature headers for `call` sent to `url`: the signature, the client address
/// and the user. The path is taken from `url` as parsed (what the fetch sends), so an origin
/// base URL with a path of its own is covered too.
fn sign(keys: &Keys, call: &OriginCall, url: &str) -> Result<[(&'static str, String); 3], String> {
    let parsed = worker::Url::parse(url).map_err(|e| format!("bad origin URL: {e}"))?;
    let mut path_and_query = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let method = call.method.to_string();
    let request = SignedRequest {
        method: &method,
        path_and_query: &path_and_query,
        client_address: &call.client_address,
        user_id: call.user_id.as_deref(),
    };
    // 128 random bits: a nonce never repeats within the origins' replay window.
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<16>());
    let timestamp = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let signature =
        edge_auth::sign(keys, &request, timestamp, &nonce).map_err(|e| e.to_string())?;
    Ok([
        (edge_auth::HEADER, signature),
        (
            edge_auth::CLIENT_ADDRESS_HEADER,
            call.client_address.clone(),
        ),
        (
            edge_auth::USER_HEADER,
            edge_auth::user_header(call.user_id.as_deref()),
        ),
    ])
}

/// Sends `call` to one origin, signed with `keys` when set (a fresh signature per attempt);
/// the whole exchange (headers and body) must finish within `timeout_ms`, after which the
/// fetch is aborted.
pub(super) async fn call_origin(
    keys: Option<&Keys>,
    origin: &str,
    call: &OriginCall,
    timeout_ms: u64,
) -> Result<(u16, Vec<u8>), Failure> {
    call_origin_kept(keys, origin, call, timeout_ms)
        .await
        .map(|(status, body, _)| (status, body))
}

/// [`call_origin`], with the answer's [`KEPT_HEADERS`].
async fn call_origin_kept(
    keys: Option<&Keys>,
    origin: &str,
    call: &OriginCall,
    timeout_ms: u64,
) -> Result<(u16, Vec<u8>, Vec<(&'static str, String)>), Failure> {
    let url = format!("{origin}{}", call.path);
    let headers = Headers::new();
    let signed = match keys {
        Some(keys) => sign(keys, call, &url).map_err(Failure::Connect)?.to_vec(),
        None => Vec::new(),
    };
    for (name, value) in call.headers.iter().chain(&signed) {
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
            let kept = KEPT_HEADERS
                .iter()
                .filter_map(|&name| Some((name, resp.headers().get(name).ok().flatten()?)))
                .collect::<Vec<_>>();
            let body = resp.bytes().await?;
            Ok::<_, worker::Error>((status, body, kept))
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
    match outcome {
        Ok((status, _, _)) if status >= 500 => Err(Failure::Status(status)),
        other => other,
    }
}

/// Tries the regions of `order` in turn: regions whose breaker is open are skipped without a
/// call; failed attempts move on to the next region after a backoff. When every region failed
/// or was skipped: 503 `origins_unavailable`, saying what happened in each region.
pub(super) async fn call_with_failover(
    cfg: &Config,
    order: &[&Region],
    call: &OriginCall,
) -> Result<Served, ApiError> {
    let mut notes: Vec<String> = Vec::new();
    let mut retries = 0u32;
    for region in order {
        let name = region.name.as_str();
        let allowed = BREAKERS.with(|b| b.borrow_mut().allow(name, now_ms(), &cfg.breaker));
        if !allowed {
            notes.push(format!("{name}: circuit open"));
            continue;
        }
        if retries > 0 {
            let wait = cfg.backoff.delay_ms(retries, random_u32());
            if wait > 0 {
                Delay::from(Duration::from_millis(wait)).await;
            }
        }
        retries += 1;
        let started = now_ms();
        let keys = cfg.origin_keys.as_ref();
        match call_origin_kept(keys, &region.origin, call, cfg.origin_timeout_ms).await {
            Ok((status, body, headers)) => {
                observe_rtt(&region.name, now_ms().saturating_sub(started) as f64);
                BREAKERS.with(|b| b.borrow_mut().on_success(name));
                return Ok(Served {
                    region: region.name.clone(),
                    status,
                    body,
                    headers,
                });
            }
            Err(failure) => {
                BREAKERS.with(|b| b.borrow_mut().on_failure(name, now_ms(), &cfg.breaker));
                worker::console_warn!(
                    "origin call {} {} to {name} failed: {failure}",
                    call.method,
                    call.path
                );
                notes.push(format!("{name}: {}", failure.summary()));
            }
        }
    }
    Err(ApiError::origins_unavailable(&notes.join("; ")))
}
