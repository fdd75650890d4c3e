//! Abuse limits of the origin: a per-client token bucket (`governor`, GCRA) with a tighter
//! budget for starts than for everything else, and a global cap on requests in flight.
//!
//! Order matters: the per-client check runs first and costs no I/O, so one client bursting
//! thousands of starts is turned away before it can occupy any of the in-flight slots that
//! other clients need. What passes takes a slot for its whole duration; when none is free the
//! request is shed at once (503 `overloaded`-style answer with `Retry-After`) instead of
//! queueing behind Cassandra. Health, readiness and metrics (`GET`/`HEAD` only) never take a
//! slot, so operators can see an origin that is shedding load, but spend a per-client budget
//! of their own (`RATE_LIMIT_PROBE`), so they are no free way in.
//!
//! Who is "a client": for a request from the edge (its signature verified, see
//! [`crate::edge_auth`]), the `x-seedsync-client-address` the edge signed. Otherwise the socket
//! peer, unless the peer is one of `TRUSTED_PROXIES` (an ordinary load balancer), in which case
//! the address the proxy put in `CLIENT_IP_HEADER` (default `X-Forwarded-For`, read right to
//! left, skipping trusted hops). A client cannot spoof either: the edge's header counts only
//! under a valid signature, the proxies' only from a trusted peer. IPv6 clients are keyed by
//! their /64, since one host usually holds a whole /64.
//!
//! Slow clients: a client holds at most `MAX_IN_FLIGHT_PER_CLIENT` slots (429 beyond, before
//! it takes a global slot), so one address opening hundreds of connections cannot take the
//! `MAX_IN_FLIGHT` slots every other client needs. A request body is read here, whole, within
//! `BODY_READ_TIMEOUT_SECONDS` of the request reaching the middleware (408 otherwise): a body
//! dribbled a byte at a time gives its slots back after that, not after the request timeout.
//!
//! Metadata: each start may carry up to 4 KiB of `metadata`, kept with the game until its
//! retention ends ([`crate::retention`]). Its bytes (the object as JSON, compact) are counted
//! against a per-client byte budget of their own (`METADATA_BUDGET_BYTES_PER_MINUTE`, 429
//! naming that budget), charged when the start's body has been read, before it is served.
//!
//! The same middleware refuses, in production, public API requests that are not from the
//! edge ([`crate::edge_auth::EdgeAuth::gated`]), before they spend any budget.
//!
//! | variable | default | |
//! |---|---|---|
//! | `RATE_LIMIT_START` | `60/60` | starts per client: `REQUESTS/SECONDS` (a bucket of REQUESTS refilled over SECONDS) or `off` |
//! | `RATE_LIMIT_READ` | `1200/60` | every other limited request per client (reads, exits) |
//! | `RATE_LIMIT_PROBE` | `600/60` | `GET`/`HEAD` of `/health`, `/ready`, `/healthz`, `/metrics` per client |
//! | `MAX_IN_FLIGHT` | `512` | requests served at once by this process, or `off` |
//! | `MAX_IN_FLIGHT_PER_CLIENT` | `32` | requests one client may have in flight at once, or `off` |
//! | `BODY_READ_TIMEOUT_SECONDS` | `5` | how long a request body may take to arrive (then 408) |
//! | `TRUSTED_PROXIES` | none | comma-separated IPs or CIDRs whose `CLIENT_IP_HEADER` is believed |
//! | `CLIENT_IP_HEADER` | `x-forwarded-for` | the header the trusted proxies set |
//! | `METADATA_BUDGET_BYTES_PER_MINUTE` | `65536` | bytes of start `metadata` per client per minute (4096 or more), or `off` |
//!
//! The budgets and both in-flight caps may also be changed while running, through the admin
//! API ([`crate::runtime`], [`Limits::reconfigure`]): a budget whose quota did not change
//! keeps its buckets; a changed one starts with fresh (full) buckets of the new size; a changed
//! global cap starts a new set of slots (requests already in flight finish on the old ones, so
//! for their duration up to old + new may run at once). The proxies, the header, the body
//! deadline and the metadata budget stay start-up settings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::limits::MAX_BODY_BYTES;
use api::{ApiError, ErrorCode};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota as GovernorQuota};
use tokio::sync::Semaphore;

use crate::edge_auth::EdgeAuth;
use crate::error::{AppError, V1Error};
use kernel::SettingsError;

/// Starts per client.
pub const RATE_LIMIT_START: &str = "RATE_LIMIT_START";
/// Other limited requests per client.
pub const RATE_LIMIT_READ: &str = "RATE_LIMIT_READ";
/// Health, readiness and metrics requests per client.
pub const RATE_LIMIT_PROBE: &str = "RATE_LIMIT_PROBE";
/// Requests in flight per process.
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
/// Proxies whose client-IP header is believed.
pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
/// The header those proxies set.
pub const CLIENT_IP_HEADER: &str = "CLIENT_IP_HEADER";
/// Requests in flight per client.
pub const MAX_IN_FLIGHT_PER_CLIENT: &str = "MAX_IN_FLIGHT_PER_CLIENT";
/// How long a request body may take to arrive.
pub const BODY_READ_TIMEOUT_SECONDS: &str = "BODY_READ_TIMEOUT_SECONDS";
/// Bytes of start metadata per client per minute.
pub const METADATA_BUDGET_BYTES_PER_MINUTE: &str = "METADATA_BUDGET_BYTES_PER_MINUTE";
/// Every variable this module reads.
pub const VARIABLES: [&str; 9] = [
    METADATA_BUDGET_BYTES_PER_MINUTE,
    RATE_LIMIT_PROBE,
    RATE_LIMIT_START,
    RATE_LIMIT_READ,
    MAX_IN_FLIGHT,
    MAX_IN_FLIGHT_PER_CLIENT,
    BODY_READ_TIMEOUT_SECONDS,
    TRUSTED_PROXIES,
    CLIENT_IP_HEADER,
];

/// `burst` requests, refilled at `burst` per `period_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed at once.
    pub burst: NonZeroU32,
    /// Seconds to refill an empty bucket.
    pub period_secs: NonZeroU32,
}

impl Quota {
    /// Parses `REQUESTS/SECONDS` (e.g. `60/60`), or `off` (`None`).
    pub fn parse(raw: &str) -> Result<Option<Quota>, String> {
        Ok(api::limits::parse_rate_budget(raw)?.map(|(n, s)| Quota {
            burst: NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN),
            period_secs: NonZeroU32::new(s).unwrap_or(NonZeroU32::MIN),
        }))
    }

    fn governor(self) -> GovernorQuota {
        let per_token = Duration::from_secs(u64::from(self.period_secs.get())) / self.burst.get();
        GovernorQuota::with_period(per_token.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| GovernorQuota::per_second(self.burst))
            .allow_burst(self.burst)
    }
}

/// An IP network (`10.0.0.0/8`, `::1/128`; a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(raw: &str) -> Result<IpNet, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{raw:?}: prefix must be 0..={max}")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as a dual-stack socket reports IPv4 peers)
/// are the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket key of a client: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The validated limit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// Starts per client (`None`: unlimited).
    pub start: Option<Quota>,
    /// Other limited requests per client.
    pub read: Option<Quota>,
    /// Health, readiness and metrics requests per client.
    pub probe: Option<Quota>,
    /// Requests in flight at once (`None`: unlimited).
    pub max_in_flight: Option<usize>,
    /// Requests one client may have in flight at once (`None`: unlimited).
    pub max_in_flight_per_client: Option<usize>,
    /// How long a request body may take to arrive in full.
    pub body_read_timeout: Duration,
    /// Peers whose client-IP header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// That header.
    pub client_ip_header: HeaderName,
    /// Bytes of start metadata per client per minute (`None`: unlimited).
    pub metadata_bytes_per_minute: Option<NonZeroU32>,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        let q = |n, s| Quota::parse(&format!("{n}/{s}")).ok().flatten();
        LimitSettings {
            start: q(60, 60),
            read: q(1200, 60),
            probe: q(600, 60),
            max_in_flight: Some(512),
            max_in_flight_per_client: Some(32),
            body_read_timeout: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            client_ip_header: HeaderName::from_static("x-forwarded-for"),
            metadata_bytes_per_minute: NonZeroU32::new(65_536),
        }
    }
}

impl LimitSettings {
    /// Reads [`VARIABLES`] through `lookup`; absent or blank means the default.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<LimitSettings, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = LimitSettings::default();
        let quota = |variable: &'static str, default: Option<Quota>| match get(variable) {
            None => Ok(default),
            Some(raw) => Quota::parse(&raw).map_err(|message| SettingsError { variable, message }),
        };
        let slots = |variable: &'static str, default: Option<usize>| match get(variable) {
            None => Ok(default),
            Some(raw) if raw.trim().eq_ignore_ascii_case("off") => Ok(None),
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n @ 1..=1_000_000) => Ok(Some(n)),
                _ => Err(SettingsError {
                    variable,
                    message: format!("{raw:?} is not a number in 1..=1000000 or `off`"),
                }),
            },
        };
        let max_in_flight = slots(MAX_IN_FLIGHT, defaults.max_in_flight)?;
        let max_in_flight_per_client =
            slots(MAX_IN_FLIGHT_PER_CLIENT, defaults.max_in_flight_per_client)?;
        let body_read_timeout = match get(BODY_READ_TIMEOUT_SECONDS) {
            None => defaults.body_read_timeout,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n @ 1..=300) => Duration::from_secs(n),
                _ => {
                    return Err(SettingsError {
                        variable: BODY_READ_TIMEOUT_SECONDS,
                        message: format!("{raw:?} is not a number of seconds in 1..=300"),
                    });
                }
            },
        };
        let trusted_proxies = match get(TRUSTED_PROXIES) {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(IpNet::parse)
                .collect::<Result<_, _>>()
                .map_err(|message| SettingsError {
                    variable: TRUSTED_PROXIES,
                    message,
                })?,
        };
        let client_ip_header = match get(CLIENT_IP_HEADER) {
            None => defaults.client_ip_header,
            Some(raw) => HeaderName::try_from(raw.trim().to_ascii_lowercase()).map_err(|_| {
                SettingsError {
                    variable: CLIENT_IP_HEADER,
                    message: format!("{raw:?} is not a header name"),
                }
            })?,
        };
        let metadata_bytes_per_minute = match get(METADATA_BUDGET_BYTES_PER_MINUTE) {
            None => defaults.metadata_bytes_per_minute,
            Some(raw) if raw.trim().eq_ignore_ascii_case("off") => None,
            Some(raw) => match raw.trim().parse::<u32>() {
                // At least one full-size metadata object, or no start with one could pass.
                Ok(n @ 4_096..=1_000_000_000) => NonZeroU32::new(n),
                _ => {
                    return Err(SettingsError {
                        variable: METADATA_BUDGET_BYTES_PER_MINUTE,
                        message: format!(
                            "{raw:?} is not a number of bytes in 4096..=1000000000 or `off`"
                        ),
                    });
                }
            },
        };
        Ok(LimitSettings {
            metadata_bytes_per_minute,
            start: quota(RATE_LIMIT_START, defaults.start)?,
            read: quota(RATE_LIMIT_READ, defaults.read)?,
            probe: quota(RATE_LIMIT_PROBE, defaults.probe)?,
            max_in_flight,
            max_in_flight_per_client,
            body_read_timeout,
            trusted_proxies,
            client_ip_header,
        })
    }

    /// No limits at all (benchmarks' baseline).
    pub fn off() -> LimitSettings {
        LimitSettings {
            start: None,
            read: None,
            probe: None,
            max_in_flight: None,
            max_in_flight_per_client: None,
            metadata_bytes_per_minute: None,
            ..LimitSettings::default()
        }
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(peer))
    }

    /// The client behind a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        if !self.trusts(peer) {
            return canonical(peer);
        }
        // Each proxy appends the address it received from; the rightmost untrusted entry is
        // the first one no trusted hop vouches for.
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in headers.get_all(&self.client_ip_header) {
            let Ok(text) = value.to_str() else {
                return canonical(peer);
            };
            for part in text.split(',') {
                match part.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    // A garbled chain cannot be trusted past this point.
                    Err(_) => return canonical(peer),
                }
            }
        }
        hops.iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or_else(|| hops.first())
            .copied()
            .unwrap_or_else(|| canonical(peer))
    }
}

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `POST /game/start`, `POST /v1/sessions`, `POST /game/{id}/join`,
    /// `POST /tournaments/{id}/rounds/{round}/join`.
    Start,
    /// Everything else that reaches the API (reads, exits, unknown routes).
    Read,
    /// `GET`/`HEAD` of health, readiness and metrics: a budget of their own
    /// (`RATE_LIMIT_PROBE`), and never an in-flight slot, so an origin that sheds load can
    /// still be seen doing it.
    Probe,
}

impl Class {
    /// The class of `method` + `path`.
    pub fn of(method: &Method, path: &str) -> Class {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        match (method, path) {
            (&Method::GET | &Method::HEAD, "/health" | "/ready" | "/metrics" | "/healthz") => {
                Class::Probe
            }
            (&Method::POST, "/game/start" | "/v1/sessions") => Class::Start,
            // A join writes as much as a start (slot and seat LWTs).
            (&Method::POST, p) if p.starts_with("/game/") && p.ends_with("/join") => Class::Start,
            // A tournament join may also open a table (a start).
            (&Method::POST, p) if p.starts_with("/tournaments/") && p.ends_with("/join") => {
                Class::Start
            }
            _ => Class::Read,
        }
    }
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The client spent its budget of this class; retry after this long.
    Client(Class, Duration),
    /// The client already has `MAX_IN_FLIGHT_PER_CLIENT` requests in flight.
    ClientInFlight,
    /// Every in-flight slot is taken.
    Overloaded,
    /// The client spent its metadata byte budget; retry after this long.
    Metadata(Duration),
}

impl Rejection {
    /// The metric label: `start`, `read`, `client_in_flight` or `overloaded` (a body cut at
    /// `BODY_READ_TIMEOUT_SECONDS` counts as `slow_body`).
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Client(Class::Start, _) => "start",
            Rejection::Client(Class::Probe, _) => "probe",
            Rejection::Client(..) => "read",
            Rejection::ClientInFlight => "client_in_flight",
            Rejection::Overloaded => "overloaded",
            Rejection::Metadata(_) => "metadata",
        }
    }

    /// `Retry-After`, whole seconds, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Rejection::Client(_, wait) | Rejection::Metadata(wait) => {
                wait.as_millis().div_ceil(1000).max(1) as u64
            }
            Rejection::ClientInFlight | Rejection::Overloaded => 1,
        }
    }

    /// The JSON error answer: 429 `rate_limited` for a client over its budget, 503 `timeout`
    /// for an origin at capacity (a shed request is one the server could not serve in time),
    /// in the `/v1` dialect's shape when `v1`, with the exact `Retry-After`.
    pub fn into_response(self, v1: bool) -> Response {
        let (code, message) = match self {
            Rejection::Client(Class::Start, _) => (
                ErrorCode::RateLimited,
                "too many game starts from this client; retry after the time in Retry-After",
            ),
            Rejection::Client(Class::Probe, _) => (
                ErrorCode::RateLimited,
                "too many health, readiness or metrics requests from this client; retry after the time in Retry-After",
            ),
            Rejection::Client(..) => (
                ErrorCode::RateLimited,
                "too many requests from this client; retry after the time in Retry-After",
            ),
            Rejection::ClientInFlight => (
                ErrorCode::RateLimited,
                "too many requests in flight from this client; finish some, then retry",
            ),
            Rejection::Metadata(_) => (
                ErrorCode::RateLimited,
                "too many metadata bytes from this client (budget METADATA_BUDGET_BYTES_PER_MINUTE); start without metadata, or retry after the time in Retry-After",
            ),
            Rejection::Overloaded => (
                ErrorCode::Timeout,
                "the server is at capacity; retry shortly (starts are safe to retry with the same Idempotency-Key)",
            ),
        };
        let error = AppError::Api(ApiError::new(code, message));
        let mut response = if v1 {
            V1Error::from(error).into_response()
        } else {
            error.into_response()
        };
        if let Ok(value) = HeaderValue::from_str(&self.retry_after_secs().to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Counts of turned-away requests, for the metrics.
#[derive(Debug, Default)]
pub struct Rejections {
    /// Starts over a client's budget.
    pub start: AtomicU64,
    /// Other requests over a client's budget.
    pub read: AtomicU64,
    /// Probes over a client's budget.
    pub probe: AtomicU64,
    /// Requests shed at capacity.
    pub overloaded: AtomicU64,
    /// Requests over their client's in-flight cap.
    pub client_in_flight: AtomicU64,
    /// Requests whose body did not arrive within `BODY_READ_TIMEOUT_SECONDS`.
    pub slow_body: AtomicU64,
    /// Starts over their client's metadata byte budget.
    pub metadata: AtomicU64,
}

/// Requests in flight per client key, for `MAX_IN_FLIGHT_PER_CLIENT`.
#[derive(Debug, Default)]
struct PerClient {
    /// Only clients with a request in flight have an entry, so memory follows concurrency.
    counts: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

/// One of a client's in-flight slots, given back when dropped.
#[derive(Debug)]
struct ClientSlot {
    table: Arc<PerClient>,
    key: IpAddr,
}

impl PerClient {
    fn acquire(self: &Arc<Self>, key: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: Arc::clone(self),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// One class's per-client buckets and the quota they were made for.
#[derive(Debug, Clone)]
struct Bucket {
    quota: Quota,
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Bucket {
    /// The buckets for `quota`: `kept` when they were made for the same quota (their clients'
    /// state survives a settings change), else fresh ones.
    fn for_quota(quota: Option<Quota>, kept: Option<&Bucket>) -> Option<Bucket> {
        let quota = quota?;
        match kept {
            Some(bucket) if bucket.quota == quota => Some(bucket.clone()),
            _ => Some(Bucket {
                quota,
                limiter: Arc::new(DefaultKeyedRateLimiter::keyed(quota.governor())),
            }),
        }
    }
}

/// The limits a runtime settings change may replace, swapped whole by
/// [`Limits::reconfigure`] (a request sees one consistent set).
#[derive(Debug)]
struct Budgets {
    start: Option<Bucket>,
    read: Option<Bucket>,
    probe: Option<Bucket>,
    /// `MAX_IN_FLIGHT` and its slots.
    in_flight: Option<(usize, Arc<Semaphore>)>,
    max_in_flight_per_client: Option<usize>,
}

impl Budgets {
    /// The budgets of `settings`, keeping what `old` made for the same values.
    fn new(settings: &LimitSettings, old: Option<&Budgets>) -> Budgets {
        let in_flight =
            settings
                .max_in_flight
                .map(|max| match old.and_then(|o| o.in_flight.as_ref()) {
                    Some((n, slots)) if *n == max => (max, Arc::clone(slots)),
                    _ => (max, Arc::new(Semaphore::new(max))),
                });
        Budgets {
            start: Bucket::for_quota(settings.start, old.and_then(|o| o.start.as_ref())),
            read: Bucket::for_quota(settings.read, old.and_then(|o| o.read.as_ref())),
            probe: Bucket::for_quota(settings.probe, old.and_then(|o| o.probe.as_ref())),
            in_flight,
            max_in_flight_per_client: settings.max_in_flight_per_client,
        }
    }

    fn limiter(&self, class: Class) -> Option<&DefaultKeyedRateLimiter<IpAddr>> {
        let bucket = match class {
            Class::Start => self.start.as_ref(),
            Class::Read => self.read.as_ref(),
            Class::Probe => self.probe.as_ref(),
        };
        bucket.map(|b| &*b.limiter)
    }

    fn limiters(&self) -> impl Iterator<Item = &DefaultKeyedRateLimiter<IpAddr>> {
        [&self.start, &self.read, &self.probe]
            .into_iter()
            .flatten()
            .map(|b| &*b.limiter)
    }
}

/// The live limiters of one process.
#[derive(Debug)]
pub struct Limits {
    /// `seedsync_rate_limited_total`, by reason, when wired to the metrics.
    counter: Option<prometheus::IntCounterVec>,
    /// The start-up settings (the budgets' current values live in `budgets`).
    settings: LimitSettings,
    budgets: std::sync::RwLock<Arc<Budgets>>,
    /// Metadata bytes (one cell per byte); a start-up setting.
    metadata: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_client: Arc<PerClient>,
    /// Which requests come from the edge (no secret: none).
    edge: Arc<EdgeAuth>,
    clock: DefaultClock,
    /// What was turned away.
    pub rejected: Rejections,
}

impl Limits {
    /// Limiters for `settings`.
    pub fn new(settings: LimitSettings) -> Limits {
        Limits {
            counter: None,
            budgets: std::sync::RwLock::new(Arc::new(Budgets::new(&settings, None))),
            metadata: settings.metadata_bytes_per_minute.map(|bytes| {
                DefaultKeyedRateLimiter::keyed(
                    Quota {
                        burst: bytes,
                        period_secs: NonZeroU32::new(60).unwrap_or(NonZeroU32::MIN),
                    }
                    .governor(),
                )
            }),
            per_client: Arc::default(),
            edge: Arc::default(),
            clock: DefaultClock::default(),
            rejected: Rejections::default(),
            settings,
        }
    }

    /// Also counts refusals into `counter` (label: [`Rejection::reason`]).
    pub fn with_counter(mut self, counter: prometheus::IntCounterVec) -> Limits {
        self.counter = Some(counter);
        self
    }

    /// Believes the client address of requests `edge` verifies, and refuses what it gates.
    pub fn with_edge_auth(mut self, edge: Arc<EdgeAuth>) -> Limits {
        self.edge = edge;
        self
    }

    fn refused(&self, rejection: Rejection, v1: bool) -> Response {
        if let Some(counter) = &self.counter {
            counter.with_label_values(&[rejection.reason()]).inc();
        }
        rejection.into_response(v1)
    }

    /// The settings in force: the start-up ones with the budgets and caps of the last
    /// [`Limits::reconfigure`].
    pub fn settings(&self) -> LimitSettings {
        let budgets = self.budgets();
        LimitSettings {
            start: budgets.start.as_ref().map(|b| b.quota),
            read: budgets.read.as_ref().map(|b| b.quota),
            probe: budgets.probe.as_ref().map(|b| b.quota),
            max_in_flight: budgets.in_flight.as_ref().map(|(n, _)| *n),
            max_in_flight_per_client: budgets.max_in_flight_per_client,
            ..self.settings.clone()
        }
    }

    /// Applies the budgets and in-flight caps of `settings` (a runtime settings change; the
    /// other fields stay the start-up ones). Unchanged budgets keep their clients' state.
    pub fn reconfigure(&self, settings: &LimitSettings) {
        let mut budgets = self.budgets.write().unwrap_or_else(|e| e.into_inner());
        let next = Budgets::new(settings, Some(&budgets));
        *budgets = Arc::new(next);
    }

    fn budgets(&self) -> Arc<Budgets> {
        Arc::clone(&self.budgets.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Spends one request of `class` for `client`.
    pub fn check_client(&self, class: Class, client: IpAddr) -> Result<(), Rejection> {
        let budgets = self.budgets();
        let Some(limiter) = budgets.limiter(class) else {
            return Ok(());
        };
        limiter.check_key(&client_key(client)).map_err(|not_until| {
            let counter = match class {
                Class::Start => &self.rejected.start,
                Class::Read => &self.rejected.read,
                Class::Probe => &self.rejected.probe,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Rejection::Client(class, not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Spends `bytes` of `client`'s metadata budget. Nothing to spend for no metadata, nor
    /// for more than the 4 KiB a game may hold: the handler refuses that (422) and stores
    /// nothing, and the client learns what is wrong with its request.
    pub fn check_metadata(&self, client: IpAddr, bytes: usize) -> Result<(), Rejection> {
        if bytes > api::limits::MAX_METADATA_BYTES {
            return Ok(());
        }
        let (Some(limiter), Some(n)) = (
            &self.metadata,
            u32::try_from(bytes).ok().and_then(NonZeroU32::new),
        ) else {
            return Ok(());
        };
        let refuse = |wait: Duration| {
            self.rejected.metadata.fetch_add(1, Ordering::Relaxed);
            Rejection::Metadata(wait)
        };
        match limiter.check_key_n(&client_key(client), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refuse(not_until.wait_time_from(self.clock.now()))),
            // More than the whole budget at once: impossible, the budget is at least 4 KiB.
            Err(_) => Err(refuse(Duration::from_secs(60))),
        }
    }

    /// Takes one of `client`'s in-flight slots (none to take when the cap is off).
    fn client_slot(&self, client: IpAddr) -> Result<Option<ClientSlot>, Rejection> {
        let Some(max) = self.budgets().max_in_flight_per_client else {
            return Ok(None);
        };
        match self.per_client.acquire(client_key(client), max) {
            Some(slot) => Ok(Some(slot)),
            None => {
                self.rejected
                    .client_in_flight
                    .fetch_add(1, Ordering::Relaxed);
                Err(Rejection::ClientInFlight)
            }
        }
    }

    /// Clients with requests in flight now (for `MAX_IN_FLIGHT_PER_CLIENT`).
    pub fn clients_in_flight(&self) -> usize {
        self.per_client
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Clients currently tracked (start, read).
    pub fn tracked_clients(&self) -> (usize, usize) {
        let budgets = self.budgets();
        let tracked = |class| budgets.limiter(class).map_or(0, |l| l.len());
        (tracked(Class::Start), tracked(Class::Read))
    }

    /// Forgets clients whose buckets are full again (they are indistinguishable from new
    /// ones), so memory follows the clients active within one refill period.
    pub fn forget_idle_clients(&self) {
        let budgets = self.budgets();
        for limiter in budgets.limiters().chain(self.metadata.as_ref()) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Runs [`Limits::forget_idle_clients`] every `every` until the process ends.
    pub fn spawn_housekeeping(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match limits.upgrade() {
                    Some(limits) => limits.forget_idle_clients(),
                    None => break,
                }
            }
        })
    }
}

/// `router` with the limits in front of every route.
pub fn apply(router: Router, limits: Arc<Limits>) -> Router {
    router.layer(middleware::from_fn_with_state(limits, enforce))
}

/// The middleware: per-client budget, then an in-flight slot for the request's duration.
async fn enforce(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let class = Class::of(request.method(), request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if class == Class::Probe {
        // Probes come from load balancers and scrapers, not through the edge: keyed by the
        // peer (or what a trusted proxy says), and answered without taking a slot.
        let client = limits.settings.client_ip(peer, request.headers());
        if let Err(rejection) = limits.check_client(class, client) {
            return limits.refused(rejection, false);
        }
        return next.run(request).await;
    }
    let v1 = request.uri().path().starts_with("/v1");
    let edge = limits.edge.check(
        request.method(),
        request.uri(),
        request.headers(),
        kernel::clock::now_ms(),
    );
    if !edge.is_edge() && limits.edge.gated(request.uri().path()) {
        return EdgeAuth::refusal(v1);
    }
    let mut request = request;
    if edge.is_edge() {
        request.extensions_mut().insert(crate::edge_auth::FromEdge);
    }
    let client = edge
        .client()
        .unwrap_or_else(|| limits.settings.client_ip(peer, request.headers()));
    if let Err(rejection) = limits.check_client(class, client) {
        return limits.refused(rejection, v1);
    }
    // The client's own cap first: a client at its cap takes no global slot.
    let _client_slot = match limits.client_slot(client) {
        Ok(slot) => slot,
        Err(rejection) => return limits.refused(rejection, v1),
    };
    let _slot = match limits.budgets().in_flight.as_ref() {
        None => None,
        Some((_, slots)) => match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                limits.rejected.overloaded.fetch_add(1, Ordering::Relaxed);
                return limits.refused(Rejection::Overloaded, v1);
            }
        },
    };
    let request = match read_body(request, limits.settings.body_read_timeout).await {
        Ok(request) => request,
        Err(refusal) => {
            if refusal == BodyRefusal::Slow {
                limits.rejected.slow_body.fetch_add(1, Ordering::Relaxed);
                if let Some(counter) = &limits.counter {
                    counter.with_label_values(&["slow_body"]).inc();
                }
            }
            return refusal.into_response(v1);
        }
    };
    let request = if class == Class::Start && limits.metadata.is_some() {
        let (parts, body) = request.into_parts();
        // Already in memory (read above, at most the body limit plus a chunk).
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        if let Err(rejection) = limits.check_metadata(client, metadata_bytes(&bytes)) {
            return limits.refused(rejection, v1);
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        request
    };
    next.run(request).await
}

/// The bytes the `metadata` of a start body takes as stored (compact JSON); 0 when there is
/// none or the body is not JSON (the handler refuses that itself).
pub fn metadata_bytes(body: &[u8]) -> usize {
    let Ok(serde_json::Value::Object(start)) = serde_json::from_slice(body) else {
        return 0;
    };
    match start.get("metadata") {
        None | Some(serde_json::Value::Null) => 0,
        Some(value) => serde_json::to_vec(value).map_or(0, |v| v.len()),
    }
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRefusal {
    /// It did not arrive within `BODY_READ_TIMEOUT_SECONDS`.
    Slow,
    /// The connection failed while sending it.
    Broken,
}

impl BodyRefusal {
    /// 408 `timeout`, 413 `payload_too_large` or 400 `bad_request`, as JSON of the dialect.
    fn into_response(self, v1: bool) -> Response {
        let (code, message) = match self {
            BodyRefusal::Slow => (
                ErrorCode::Timeout,
                "the request body did not arrive in time; send it at once".to_owned(),
            ),
            BodyRefusal::Broken => (
                ErrorCode::BadRequest,
                "the request body could not be read".to_owned(),
            ),
        };
        let error = AppError::Api(ApiError::new(code, message));
        let mut response = if v1 {
            V1Error::from(error).into_response()
        } else {
            error.into_response()
        };
        if self == BodyRefusal::Slow {
            // The code says what happened; the status says it was the client's slowness (and
            // that the connection is closed), not the server's.
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The request with its body read in full within `timeout` (bodies are at most
/// [`MAX_BODY_BYTES`]), so that the handler never waits on a slow client while holding slots.
/// A request without a body passes untouched.
async fn read_body(request: Request, timeout: Duration) -> Result<Request, BodyRefusal> {
    use axum::body::HttpBody as _;
    if request.body().is_end_stream() {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut buffered = Vec::new();
    let read = async {
        use futures::StreamExt;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| BodyRefusal::Broken)?;
            buffered.extend_from_slice(&chunk);
            // Over the limit: stop reading (memory stays under the limit plus one chunk) and
            // let the handler answer as the contract says (415 for a body that is not JSON,
            // else 413), from what was read.
            if buffered.len() > MAX_BODY_BYTES {
                break;
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(BodyRefusal::Slow),
        Ok(Err(refusal)) => Err(refusal),
        Ok(Ok(())) => Ok(Request::from_parts(parts, axum::body::Body::from(buffered))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<LimitSettings, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LimitSettings::from_lookup(|n| vars.get(n).cloned())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_and_bad_values() {
        let s = settings(&[]).unwrap();
        assert_eq!(s, LimitSettings::default());
        assert_eq!(s.start.unwrap().burst.get(), 60);
        for (var, bad) in [
            (RATE_LIMIT_START, "60"),
            (RATE_LIMIT_READ, "0/1"),
            (MAX_IN_FLIGHT, "0"),
            (MAX_IN_FLIGHT_PER_CLIENT, "x"),
            (BODY_READ_TIMEOUT_SECONDS, "0"),
            (BODY_READ_TIMEOUT_SECONDS, "301"),
            (TRUSTED_PROXIES, "10.0.0.0/33"),
            (TRUSTED_PROXIES, "edge.example"),
            (CLIENT_IP_HEADER, "bad header"),
        ] {
            let err = settings(&[(var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{var}={bad}");
        }
        let off = settings(&[
            (RATE_LIMIT_START, "off"),
            (RATE_LIMIT_READ, "OFF"),
            (MAX_IN_FLIGHT, "off"),
            (MAX_IN_FLIGHT_PER_CLIENT, "off"),
            (RATE_LIMIT_PROBE, "off"),
            (METADATA_BUDGET_BYTES_PER_MINUTE, "off"),
        ])
        .unwrap();
        assert_eq!(off, LimitSettings::off());
    }

    #[test]
    fn networks() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(!IpNet::parse("::1").unwrap().contains(ip("127.0.0.1")));
        assert!(IpNet::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_peers() {
        let s = settings(&[(TRUSTED_PROXIES, "127.0.0.1, 10.0.0.0/8")]).unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4, 10.0.0.7"),
        );
        // From the edge: the rightmost address no trusted hop vouches for.
        assert_eq!(s.client_ip(Some(ip("127.0.0.1")), &h), ip("1.2.3.4"));
        // From anyone else the header is ignored.
        assert_eq!(s.client_ip(Some(ip("5.5.5.5")), &h), ip("5.5.5.5"));
        // Garbage in the chain: fall back to the peer.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, nonsense"),
        );
        assert_eq!(s.client_ip(Some(ip("127.0.0.1")), &h), ip("127.0.0.1"));
        // Only trusted hops: the original client is the leftmost.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 10.0.0.2"),
        );
        assert_eq!(s.client_ip(Some(ip("127.0.0.1")), &h), ip("10.0.0.1"));
        assert_eq!(
            s.client_ip(Some(ip("127.0.0.1")), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        assert_eq!(s.client_ip(None, &h), ip("0.0.0.0"));
    }

    #[test]
    fn classes() {
        assert_eq!(Class::of(&Method::POST, "/game/start"), Class::Start);
        assert_eq!(Class::of(&Method::POST, "/v1/sessions/"), Class::Start);
        assert_eq!(Class::of(&Method::GET, "/game/start"), Class::Read);
        assert_eq!(Class::of(&Method::POST, "/game/g/join"), Class::Start);
        assert_eq!(
            Class::of(&Method::POST, "/tournaments/t/rounds/0/join"),
            Class::Start
        );
        assert_eq!(Class::of(&Method::GET, "/game/g/results"), Class::Read);
        assert_eq!(Class::of(&Method::POST, "/game/exit"), Class::Read);
        assert_eq!(Class::of(&Method::GET, "/ready"), Class::Probe);
        assert_eq!(Class::of(&Method::HEAD, "/metrics"), Class::Probe);
        // Made-up methods on a probe's path spend the ordinary budget (and get a 405).
        assert_eq!(Class::of(&Method::POST, "/ready"), Class::Read);
        let made_up = Method::from_bytes(b"PROBEFLOOD").unwrap();
        assert_eq!(Class::of(&made_up, "/health"), Class::Read);
    }

    #[test]
    fn budgets_per_client_and_class() {
        let limits = Limits::new(
            settings(&[(RATE_LIMIT_START, "2/60"), (RATE_LIMIT_READ, "3/60")]).unwrap(),
        );
        let (a, b) = (ip("1.1.1.1"), ip("2.2.2.2"));
        assert!(limits.check_client(Class::Start, a).is_ok());
        assert!(limits.check_client(Class::Start, a).is_ok());
        let Err(Rejection::Client(Class::Start, wait)) = limits.check_client(Class::Start, a)
        else {
            panic!("third start should be limited");
        };
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            Rejection::Client(Class::Start, wait).retry_after_secs(),
            wait.as_secs() + 1
        );
        assert!(
            limits.check_client(Class::Start, b).is_ok(),
            "other clients unaffected"
        );
        for _ in 0..3 {
            assert!(
                limits.check_client(Class::Read, a).is_ok(),
                "reads have their own budget"
            );
        }
        assert!(limits.check_client(Class::Read, a).is_err());
        assert!(limits.check_client(Class::Probe, a).is_ok());
        assert_eq!(limits.rejected.start.load(Ordering::Relaxed), 1);
        assert_eq!(limits.rejected.read.load(Ordering::Relaxed), 1);
        assert_eq!(limits.tracked_clients(), (2, 1));
        // One IPv6 host cannot mint fresh budgets from its /64.
        let limits = Limits::new(settings(&[(RATE_LIMIT_START, "1/60")]).unwrap());
        assert!(limits.check_client(Class::Start, ip("2001:db8::1")).is_ok());
        assert!(
            limits
                .check_client(Class::Start, ip("2001:db8::2"))
                .is_err()
        );
    }

    #[test]
    fn reconfiguring_keeps_unchanged_budgets_and_applies_new_ones() {
        let limits = Limits::new(
            settings(&[(RATE_LIMIT_START, "1/3600"), (RATE_LIMIT_READ, "1/3600")]).unwrap(),
        );
        let a = ip("1.1.1.1");
        assert!(limits.check_client(Class::Start, a).is_ok());
        assert!(limits.check_client(Class::Read, a).is_ok());
        // Starts get a bigger budget, reads keep theirs (and the client's spent bucket).
        limits.reconfigure(
            &settings(&[
                (RATE_LIMIT_START, "3/3600"),
                (RATE_LIMIT_READ, "1/3600"),
                (MAX_IN_FLIGHT, "7"),
            ])
            .unwrap(),
        );
        assert!(
            limits.check_client(Class::Read, a).is_err(),
            "read state kept"
        );
        for _ in 0..3 {
            assert!(
                limits.check_client(Class::Start, a).is_ok(),
                "a fresh, bigger bucket"
            );
        }
        assert!(limits.check_client(Class::Start, a).is_err());
        let now = limits.settings();
        assert_eq!(now.start.unwrap().burst.get(), 3);
        assert_eq!(now.max_in_flight, Some(7));
        // Off is off.
        limits.reconfigure(
            &settings(&[(RATE_LIMIT_START, "off"), (RATE_LIMIT_READ, "off")]).unwrap(),
        );
        for _ in 0..10 {
            assert!(limits.check_client(Class::Start, a).is_ok());
            assert!(limits.check_client(Class::Read, a).is_ok());
        }
    }

    async fn call(app: &Router, method: Method, path: &str) -> Response {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn middleware_answers_429_and_503_as_json() {
        let limits = Arc::new(Limits::new(
            settings(&[(RATE_LIMIT_START, "1/60"), (MAX_IN_FLIGHT, "1")]).unwrap(),
        ));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let wait = Arc::new(tokio::sync::Mutex::new(Some(wait)));
        let app = apply(
            Router::new()
                .route("/game/start", post(|| async { "started" }))
                .route(
                    "/slow",
                    get(move || {
                        let wait = Arc::clone(&wait);
                        async move {
                            if let Some(rx) = wait.lock().await.take() {
                                let _ = rx.await;
                            }
                            "slow"
                        }
                    }),
                )
                .route("/health", get(|| async { "ok" })),
            Arc::clone(&limits),
        );
        assert_eq!(call(&app, Method::POST, "/game/start").await.status(), 200);
        let limited = call(&app, Method::POST, "/game/start").await;
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59..=60).contains(&retry), "{retry}");
        let body = axum::body::to_bytes(limited.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");

        // One slot: a request in flight makes the next one shed, but health still answers.
        let slow = tokio::spawn({
            let app = app.clone();
            async move { call(&app, Method::GET, "/slow").await.status() }
        });
        while limits
            .budgets()
            .in_flight
            .as_ref()
            .unwrap()
            .1
            .available_permits()
            > 0
        {
            tokio::task::yield_now().await;
        }
        let shed = call(&app, Method::GET, "/slow").await;
        assert_eq!(shed.status(), 503);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert_eq!(call(&app, Method::GET, "/health").await.status(), 200);
        release.send(()).unwrap();
        assert_eq!(slow.await.unwrap(), 200);
        assert_eq!(limits.rejected.overloaded.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn housekeeping_forgets_refilled_clients() {
        let limits = Arc::new(Limits::new(
            settings(&[(RATE_LIMIT_READ, "1000/1")]).unwrap(),
        ));
        for i in 0..50u8 {
            limits
                .check_client(Class::Read, IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
                .unwrap();
        }
        assert_eq!(limits.tracked_clients().1, 50);
        tokio::time::sleep(Duration::from_millis(20)).await;
        limits.forget_idle_clients();
        assert_eq!(limits.tracked_clients().1, 0);
    }

    #[test]
    fn metadata_bytes_are_those_stored_and_spend_their_own_budget() {
        assert_eq!(metadata_bytes(br#"{"userId":"u","metadata":{"a": 1}}"#), 7);
        assert_eq!(metadata_bytes(br#"{"userId":"u"}"#), 0);
        assert_eq!(metadata_bytes(br#"{"userId":"u","metadata":null}"#), 0);
        assert_eq!(metadata_bytes(b"{not json"), 0);
        let limits = Limits::new(settings(&[(METADATA_BUDGET_BYTES_PER_MINUTE, "8192")]).unwrap());
        let (a, b) = (ip("203.0.113.9"), ip("198.51.100.7"));
        assert!(limits.check_metadata(a, 4_096).is_ok());
        assert!(limits.check_metadata(a, 4_000).is_ok());
        let refused = limits.check_metadata(a, 4_096).unwrap_err();
        assert_eq!(refused.reason(), "metadata");
        assert!((1..=60).contains(&refused.retry_after_secs()));
        // Nothing and oversized (the handler's 422) cost nothing; other clients are untouched.
        assert!(limits.check_metadata(a, 0).is_ok());
        assert!(limits.check_metadata(a, 5_000).is_ok());
        assert!(limits.check_metadata(b, 4_096).is_ok());
        assert_eq!(limits.rejected.metadata.load(Ordering::Relaxed), 1);
        for bad in ["4095", "0", "-1", "lots"] {
            let e = settings(&[(METADATA_BUDGET_BYTES_PER_MINUTE, bad)]).unwrap_err();
            assert_eq!(e.variable, METADATA_BUDGET_BYTES_PER_MINUTE);
        }
        let off = settings(&[(METADATA_BUDGET_BYTES_PER_MINUTE, "off")]).unwrap();
        assert_eq!(off.metadata_bytes_per_minute, None);
        assert!(Limits::new(off).check_metadata(a, 4_096).is_ok());
    }
}
