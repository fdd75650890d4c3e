//! What every part of the Worker reads from the runtime, in one leaf module that imports no
//! other `wasm` module: the clock, randomness, a request's correlation ids ([`Trace`]), its
//! headers and location ([`CfLocation`]), and the configuration of the current `[vars]`
//! ([`load_config`], parsed once per distinct values).

use std::cell::RefCell;
use std::rc::Rc;

use api::ApiError;
use worker::wasm_bindgen::JsValue;
use worker::{Date, Env, Request, js_sys};

use crate::config::{self, Config, ConfigCache};
use crate::ids;
use crate::telemetry::EdgeSpan;

thread_local! {
    // Isolate memory. wasm is single-threaded, and although one isolate interleaves concurrent
    // requests at `.await` points, these cells are never borrowed across an `.await`, so a
    // RefCell cannot be re-entered.
    static CONFIG: RefCell<ConfigCache> = RefCell::new(ConfigCache::default());
}

/// The Worker's clock, Unix ms.
pub(super) fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Random bytes from `crypto.getRandomValues`.
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
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
pub(super) fn random_u32() -> u32 {
    u32::from_le_bytes(random_bytes::<4>())
}

/// Request correlation ids: the client's when well-formed, else fresh ones. Forwarded to the
/// origin and echoed to the client.
#[derive(Debug)]
pub(super) struct Trace {
    /// `x-request-id`.
    pub(super) request_id: String,
    /// This request's span (a child of the client's `traceparent`, or a new trace).
    pub(super) span: EdgeSpan,
    /// W3C `traceparent` naming [`Trace::span`]: sent to the origin, echoed to the client.
    pub(super) traceparent: String,
    /// The client's address (`cf-connecting-ip`), forwarded to the origin as
    /// `x-forwarded-for` for its per-client limits.
    pub(super) client_ip: Option<String>,
}

impl Trace {
    /// The ids of `req`.
    pub(super) fn of(req: &Request) -> Self {
        let request_id = ids::request_id(header(req, "x-request-id").as_deref());
        let span = EdgeSpan::start(
            header(req, "traceparent").as_deref(),
            random_bytes(),
            random_bytes(),
        );
        Self {
            request_id,
            traceparent: span.traceparent(),
            span,
            client_ip: header(req, "cf-connecting-ip")
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
        }
    }

    /// Fresh ids for a call the edge makes on its own (a registry read, a probe, a socket's
    /// exit), charged to `client_ip` when a client is behind it.
    pub(super) fn fresh(client_ip: Option<String>) -> Self {
        let span = EdgeSpan::start(None, random_bytes(), random_bytes());
        Self {
            request_id: ids::new_id(),
            traceparent: span.traceparent(),
            span,
            client_ip,
        }
    }
}

/// A request header's value, if present and readable.
pub(super) fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Where Cloudflare located the client: `request.cf.country` and `request.cf.continent`.
/// Read by reflection rather than through `worker::Cf`, whose accessors panic on a value of an
/// unexpected type; a missing or odd value is simply no hint.
#[derive(Debug, Default)]
pub(super) struct CfLocation {
    /// ISO 3166-1 alpha-2 country code.
    pub(super) country: Option<String>,
    /// Continent code (`EU`, `NA`, ...).
    pub(super) continent: Option<String>,
}

impl CfLocation {
    /// The location of `req` (empty without `request.cf`).
    pub(super) fn of(req: &Request) -> Self {
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

/// The configuration of the current `[vars]`, parsed once per distinct values.
pub(super) fn load_config(env: &Env) -> Result<Rc<Config>, ApiError> {
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
        .map_err(|e| config::misconfigured(&e))
}
