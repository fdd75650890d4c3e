//! The live region registry, without a main server: every origin writes its own record into
//! the shared store at start and then every `REGISTER_INTERVAL_SECONDS`, with a TTL of
//! [`TTL_INTERVALS`] intervals, so a region whose heartbeats stop drops out of every origin's
//! list by itself. Any origin answers `GET /regions` from the same table.
//!
//! Pieces: [`RegistrySettings`] (the variables), [`RegionRegistry`] (the storage seam:
//! [`cassandra::CassandraRegistry`] in production, [`MemoryRegistry`] for tests and for an app
//! built without Cassandra), [`LoadTracker`] (in-flight requests, recent p99, starts/s, which
//! each heartbeat reports), [`heartbeat_loop`], and the admin check of drain/undrain
//! ([`admin_allows`]). A drained region's status lives in its own table without TTL, so
//! heartbeats never overwrite an operator's drain.
//!
//! Only origins write the registry: with `REGISTRY_SECRET` set (required with
//! `SEEDSYNC_ENV=production`), every heartbeat is signed ([`Seal`], see [`trust::registry`]),
//! `POST /api/regions/register` needs `Authorization: Bearer <REGISTRY_SECRET>` (the origin
//! then signs the record itself), and [`Registry::live`] lists only rows whose signature
//! verifies, so a row written by anyone else (straight into Cassandra, say) is never listed.
//! Without the secret (development) rows are unsigned and registration is open, as before.

pub mod cassandra;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use api::RegionName;
use api::regions::{RegionLoad, RegionRecord, RegionStatus, is_base_url};
use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;
use crate::store::StoreError;
use kernel::{Secret, SettingsError};
use trust::Keys;
use trust::registry::RegistryRecord;

/// A record lives this many heartbeat intervals: one lost heartbeat never drops a region.
pub const TTL_INTERVALS: u32 = 3;

/// Latency samples kept between two heartbeats (the p99 of more would cost memory, not
/// accuracy).
const MAX_SAMPLES: usize = 4096;

/// `REGISTRY_SECRET` and its `_FILE` / previous-secret variants, in
/// [`trust::Keys::from_settings`] order.
pub const REGISTRY_SECRET_VARIABLES: [&str; 4] = trust::registry::SECRET_VARIABLES;

/// The registry's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `REGISTER_INTERVAL_SECONDS` (default 10).
    pub interval: Duration,
    /// `PUBLIC_URL`: where the edge reaches this origin (default `http://HOST:PORT`, with
    /// 127.0.0.1 for an unspecified host).
    pub public_url: String,
    /// `ADMIN_TOKEN`: bearer token of drain/undrain; unset disables them (403).
    pub admin_token: Option<Secret>,
    /// `TEST_ARTIFICIAL_DELAY_MS`, honoured only with `TEST_MODE=1`: every request waits this
    /// long first (latency-routing tests).
    pub artificial_delay: Option<Duration>,
    /// Whether this origin joins the registry of its store (Cassandra's, shared by every
    /// origin of the keyspace) and heartbeats into it. Always on from the environment; off
    /// (tests), its registry is an empty in-memory one that only learns what it is told.
    pub heartbeat: bool,
    /// `REGISTRY_SECRET` (+ `REGISTRY_PREVIOUS_SECRET` while rotating; each also as `*_FILE`):
    /// signs this origin's heartbeats and verifies every listed row. Unset: development mode
    /// (unsigned rows, open registration); required with `SEEDSYNC_ENV=production`.
    pub keys: Option<Keys>,
}

impl RegistrySettings {
    /// Seconds a record lives after its last heartbeat.
    pub fn ttl_seconds(&self) -> u32 {
        u32::try_from(self.interval.as_secs())
            .unwrap_or(u32::MAX / TTL_INTERVALS)
            .max(1)
            * TTL_INTERVALS
    }

    /// Reads the variables (`get` answers a set, non-blank variable).
    pub fn from_lookup(
        get: impl Fn(&'static str) -> Option<String>,
        host: std::net::IpAddr,
        port: u16,
    ) -> Result<RegistrySettings, SettingsError> {
        let interval = match get("REGISTER_INTERVAL_SECONDS") {
            None => 10,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(s @ 1..=3600) => s,
                _ => {
                    return Err(SettingsError {
                        variable: "REGISTER_INTERVAL_SECONDS",
                        message: format!("{raw:?} is not 1..=3600"),
                    });
                }
            },
        };
        let public_url = match get("PUBLIC_URL") {
            Some(raw) => {
                let url = raw.trim().trim_end_matches('/').to_owned();
                if !is_base_url(&url) {
                    return Err(SettingsError {
                        variable: "PUBLIC_URL",
                        message: format!("{raw:?} is not an http(s) base URL"),
                    });
                }
                url
            }
            None => {
                let host = if host.is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    host.to_string()
                };
                // An origin serving TLS itself is only reachable over https.
                let scheme = if get("TLS_CERT_FILE").is_some_and(|v| !v.trim().is_empty()) {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{host}:{port}")
            }
        };
        let test_mode = get("TEST_MODE").is_some_and(|v| v.trim() == "1");
        let artificial_delay = match get("TEST_ARTIFICIAL_DELAY_MS") {
            Some(raw) if test_mode => match raw.trim().parse::<u64>() {
                Ok(ms @ 0..=60_000) => Some(Duration::from_millis(ms)),
                _ => {
                    return Err(SettingsError {
                        variable: "TEST_ARTIFICIAL_DELAY_MS",
                        message: format!("{raw:?} is not 0..=60000"),
                    });
                }
            },
            // Never honoured outside test mode: a stray variable must not slow production.
            _ => None,
        };
        let keys = Keys::from_settings(
            |name| {
                REGISTRY_SECRET_VARIABLES
                    .into_iter()
                    .find(|v| *v == name)
                    .and_then(&get)
            },
            |path| std::fs::read_to_string(path),
            REGISTRY_SECRET_VARIABLES,
        )
        .map_err(|e| SettingsError::new(e.variable, e.message))?;
        let production = get("SEEDSYNC_ENV").is_some_and(|v| v.trim() == "production");
        if production && keys.is_none() {
            return Err(SettingsError::new(
                "REGISTRY_SECRET",
                "is required with SEEDSYNC_ENV=production (without it anyone could \
                 register a region); generate one with `openssl rand -base64 48`",
            ));
        }
        Ok(RegistrySettings {
            interval: Duration::from_secs(interval),
            public_url,
            admin_token: get("ADMIN_TOKEN").map(|t| Secret::new(t.trim())),
            artificial_delay,
            heartbeat: true,
            keys,
        })
    }
}

/// One heartbeat, as written to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The region.
    pub name: RegionName,
    /// Its public URL.
    pub url: String,
    /// Its version.
    pub version: String,
    /// Its load.
    pub load: RegionLoad,
    /// Unix ms.
    pub at_ms: i64,
}

/// The registry signature of a heartbeat, stored with its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// `r1.<mac>` over the record (see [`trust::registry`]).
    pub signature: String,
    /// Unix ms the signature covers as the record's expiry.
    pub expires_at_ms: i64,
}

/// Where region records live.
#[async_trait]
pub trait RegionRegistry: Send + Sync + std::fmt::Debug {
    /// Writes `beat` unsigned, to expire after `ttl_seconds` unless renewed.
    async fn heartbeat(&self, beat: &Heartbeat, ttl_seconds: u32) -> Result<(), StoreError> {
        self.heartbeat_sealed(beat, ttl_seconds, None).await
    }
    /// Writes `beat` with its signature (if any), to expire after `ttl_seconds`.
    async fn heartbeat_sealed(
        &self,
        beat: &Heartbeat,
        ttl_seconds: u32,
        seal: Option<&Seal>,
    ) -> Result<(), StoreError>;
    /// The live records (status merged in), by name.
    async fn list(&self) -> Result<Vec<RegionRecord>, StoreError>;
    /// Sets a region's status (kept without TTL).
    async fn set_status(&self, name: &RegionName, status: RegionStatus) -> Result<(), StoreError>;
}

/// One in-memory row: the heartbeat, its signature, its TTL and when it was written.
type Stored = (Heartbeat, Option<Seal>, u32, Instant);

/// An in-memory registry (tests; an app built without Cassandra). Expiry is by wall clock.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    records: Mutex<BTreeMap<RegionName, Stored>>,
    statuses: Mutex<HashMap<RegionName, RegionStatus>>,
}

#[async_trait]
impl RegionRegistry for MemoryRegistry {
    async fn heartbeat_sealed(
        &self,
        beat: &Heartbeat,
        ttl_seconds: u32,
        seal: Option<&Seal>,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.insert(
            beat.name.clone(),
            (beat.clone(), seal.cloned(), ttl_seconds, Instant::now()),
        );
        Ok(())
    }

    async fn list(&self) -> Result<Vec<RegionRecord>, StoreError> {
        let statuses = self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(records
            .values()
            .filter_map(|(beat, seal, ttl, written)| {
                let left = u64::from(*ttl).checked_sub(written.elapsed().as_secs())?;
                (left > 0).then(|| {
                    sealed_record(
                        beat,
                        statuses.get(&beat.name).copied().unwrap_or_default(),
                        u32::try_from(left).unwrap_or(u32::MAX),
                        seal.as_ref(),
                    )
                })
            })
            .collect())
    }

    async fn set_status(&self, name: &RegionName, status: RegionStatus) -> Result<(), StoreError> {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), status);
        Ok(())
    }
}

/// The record of an unsigned heartbeat with its status and remaining TTL.
pub fn record(beat: &Heartbeat, status: RegionStatus, ttl_seconds: u32) -> RegionRecord {
    sealed_record(beat, status, ttl_seconds, None)
}

/// The record of a heartbeat with its status, remaining TTL and signature.
pub fn sealed_record(
    beat: &Heartbeat,
    status: RegionStatus,
    ttl_seconds: u32,
    seal: Option<&Seal>,
) -> RegionRecord {
    RegionRecord {
        name: beat.name.clone(),
        url: beat.url.clone(),
        version: beat.version.clone(),
        status,
        load: beat.load,
        heartbeat_at: beat.at_ms,
        ttl_seconds,
        signature: seal.map(|s| s.signature.clone()),
        expires_at: seal.map(|s| s.expires_at_ms),
    }
}

/// What a record's signature covers.
fn signed_fields(
    name: &RegionName,
    url: &str,
    version: &str,
    expires_at_ms: i64,
) -> RegistryRecord {
    RegistryRecord {
        name: name.as_str().to_owned(),
        url: url.to_owned(),
        version: version.to_owned(),
        expires_at_ms,
    }
}

/// Load since the last heartbeat: requests in flight now, latencies, and starts.
#[derive(Debug, Default)]
pub struct LoadTracker {
    in_flight: AtomicU32,
    samples_ms: Mutex<Vec<u32>>,
    last: Mutex<Option<(Instant, u64)>>,
}

impl LoadTracker {
    /// A request began.
    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended after `elapsed`.
    fn end(&self, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let ms = u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX);
        let mut samples = self.samples_ms.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() < MAX_SAMPLES {
            samples.push(ms);
        }
    }

    /// The load to report now, given the running total of games started; resets the window.
    pub fn snapshot(&self, starts_total: u64) -> RegionLoad {
        let mut samples =
            std::mem::take(&mut *self.samples_ms.lock().unwrap_or_else(|e| e.into_inner()));
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let starts_per_sec = match *last {
            Some((at, total)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    starts_total.saturating_sub(total) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        *last = Some((now, starts_total));
        RegionLoad {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            p99_ms: p99(&mut samples),
            starts_per_sec: (starts_per_sec * 100.0).round() / 100.0,
        }
    }
}

/// The 99th percentile (nearest rank) of `samples`; 0 for none.
pub fn p99(samples: &mut [u32]) -> u32 {
    samples.sort_unstable();
    kernel::stats::nearest_rank(samples, 99).unwrap_or(0)
}

/// What the registry routes and middleware share.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Where records live.
    pub store: Arc<dyn RegionRegistry>,
    /// The variables.
    pub settings: RegistrySettings,
    /// This origin's load.
    pub load: Arc<LoadTracker>,
}

impl Registry {
    /// The signature of `beat` living `ttl_seconds`, when this origin has `REGISTRY_SECRET`.
    pub fn seal(&self, beat: &Heartbeat, ttl_seconds: u32) -> Option<Seal> {
        let keys = self.settings.keys.as_ref()?;
        let expires_at_ms = beat
            .at_ms
            .saturating_add(i64::from(ttl_seconds).saturating_mul(1000));
        let fields = signed_fields(&beat.name, &beat.url, &beat.version, expires_at_ms);
        Some(Seal {
            signature: trust::registry::sign(keys, &fields),
            expires_at_ms,
        })
    }

    /// Writes `beat` signed (when this origin has the secret).
    pub async fn write(&self, beat: &Heartbeat) -> Result<(), StoreError> {
        let ttl = self.settings.ttl_seconds();
        let seal = self.seal(beat, ttl);
        self.store.heartbeat_sealed(beat, ttl, seal.as_ref()).await
    }

    /// The live records everyone may believe: with `REGISTRY_SECRET`, only those whose
    /// signature verifies (current or previous secret) and has not expired; a forged or
    /// unsigned row is skipped (and logged). Without it (development), all of them.
    pub async fn live(&self) -> Result<Vec<RegionRecord>, StoreError> {
        let records = self.store.list().await?;
        let Some(keys) = &self.settings.keys else {
            return Ok(records);
        };
        let now = kernel::clock::now_ms();
        Ok(records
            .into_iter()
            .filter(|r| match verify_record(keys, r, now) {
                Ok(()) => true,
                Err(why) => {
                    tracing::warn!(region = r.name.as_str(), %why, "registry row ignored: its signature does not verify");
                    false
                }
            })
            .collect())
    }
}

/// Whether `record` carries a valid, unexpired registry signature.
pub fn verify_record(keys: &Keys, record: &RegionRecord, now_ms: i64) -> Result<(), trust::Why> {
    let (Some(signature), Some(expires_at_ms)) = (&record.signature, record.expires_at) else {
        return Err(trust::Why::Malformed);
    };
    let fields = signed_fields(&record.name, &record.url, &record.version, expires_at_ms);
    trust::registry::verify(keys, &fields, signature, now_ms)
}

/// Checks a registration's `Authorization: Bearer` against `REGISTRY_SECRET` (current or
/// previous), in constant time. `None` keys: open registration (development only).
pub fn registrant_allows(
    keys: Option<&Keys>,
    authorization: Option<&str>,
) -> Result<(), AdminRefusal> {
    let Some(keys) = keys else {
        return Ok(());
    };
    let given = authorization
        .and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(AdminRefusal::Missing)?;
    if keys.matches(given) {
        Ok(())
    } else {
        Err(AdminRefusal::Denied)
    }
}

/// Middleware: counts requests in flight and their latency for the heartbeat's load, and in
/// test mode delays every request by `TEST_ARTIFICIAL_DELAY_MS`.
pub async fn track(State(registry): State<Registry>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    registry.load.begin();
    if let Some(delay) = registry.settings.artificial_delay {
        tokio::time::sleep(delay).await;
    }
    let response = next.run(request).await;
    registry.load.end(started.elapsed());
    response
}

/// Writes one heartbeat of this origin.
pub async fn beat(
    registry: &Registry,
    region: &RegionName,
    starts_total: u64,
) -> Result<(), StoreError> {
    let beat = Heartbeat {
        name: region.clone(),
        url: registry.settings.public_url.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        load: registry.load.snapshot(starts_total),
        at_ms: kernel::clock::now_ms(),
    };
    registry.write(&beat).await
}

/// Heartbeats forever, every interval (the first one at once). A failed write is logged and
/// retried at the next tick: the record survives [`TTL_INTERVALS`] - 1 missed beats. After
/// each beat it reads the registry back (one query per interval) so `/metrics` shows every
/// region's heartbeat age as this origin sees it; failures of either are counted by
/// operation.
pub async fn heartbeat_loop(registry: Registry, region: RegionName, metrics: Arc<Metrics>) {
    let mut ticker = tokio::time::interval(registry.settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = beat(&registry, &region, metrics.sessions_started.get()).await {
            metrics
                .registry_errors
                .with_label_values(&["heartbeat"])
                .inc();
            tracing::warn!(%error, "region heartbeat failed");
        }
        match registry.live().await {
            Ok(records) => metrics.observe_regions(&records),
            Err(error) => {
                metrics.registry_errors.with_label_values(&["list"]).inc();
                tracing::warn!(%error, "cannot read the region registry");
            }
        }
    }
}

/// Why an admin request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRefusal {
    /// No `Authorization: Bearer` credentials (401).
    Missing,
    /// Wrong token, or admin routes disabled (403).
    Denied,
}

/// Checks an `Authorization` header against `ADMIN_TOKEN`, in time independent of where the
/// two differ.
pub fn admin_allows(
    configured: Option<&str>,
    authorization: Option<&str>,
) -> Result<(), AdminRefusal> {
    let given = authorization
        .and_then(|h| {
            let (scheme, token) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(AdminRefusal::Missing)?;
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Err(AdminRefusal::Denied);
    };
    if kernel::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(AdminRefusal::Denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&'static str, &str)]) -> Result<RegistrySettings, SettingsError> {
        let map: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        RegistrySettings::from_lookup(|k| map.get(k).cloned(), [0, 0, 0, 0].into(), 8081)
    }

    #[test]
    fn settings_defaults_and_errors() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.public_url, "http://127.0.0.1:8081");
        assert_eq!(s.ttl_seconds(), 30);
        assert_eq!(s.artificial_delay, None);
        let s = settings(&[
            ("REGISTER_INTERVAL_SECONDS", "1"),
            ("PUBLIC_URL", "https://eu.example/"),
        ])
        .unwrap();
        assert_eq!(
            (s.ttl_seconds(), s.public_url.as_str()),
            (3, "https://eu.example")
        );
        // The delay is ignored unless in test mode.
        let s = settings(&[("TEST_ARTIFICIAL_DELAY_MS", "50")]).unwrap();
        assert_eq!(s.artificial_delay, None);
        let s = settings(&[("TEST_ARTIFICIAL_DELAY_MS", "50"), ("TEST_MODE", "1")]).unwrap();
        assert_eq!(s.artificial_delay, Some(Duration::from_millis(50)));
        for (k, v) in [
            ("REGISTER_INTERVAL_SECONDS", "0"),
            ("PUBLIC_URL", "eu.example"),
        ] {
            assert_eq!(settings(&[(k, v)]).unwrap_err().variable, k);
        }
    }

    #[test]
    fn admin_checks() {
        let t = Some("s3cret");
        assert_eq!(admin_allows(t, Some("Bearer s3cret")), Ok(()));
        assert_eq!(admin_allows(t, Some("bearer  s3cret ")), Ok(()));
        assert_eq!(admin_allows(t, None), Err(AdminRefusal::Missing));
        assert_eq!(
            admin_allows(t, Some("Basic eDp5")),
            Err(AdminRefusal::Missing)
        );
        assert_eq!(
            admin_allows(t, Some("Bearer s3cre")),
            Err(AdminRefusal::Denied)
        );
        assert_eq!(
            admin_allows(t, Some("Bearer s3cret!")),
            Err(AdminRefusal::Denied)
        );
        assert_eq!(
            admin_allows(None, Some("Bearer x")),
            Err(AdminRefusal::Denied)
        );
    }

    #[test]
    fn p99_and_load() {
        assert_eq!(p99(&mut []), 0);
        let mut v: Vec<u32> = (1..=100).collect();
        assert_eq!(p99(&mut v), 99);
        assert_eq!(p99(&mut [7]), 7);
        let t = LoadTracker::default();
        t.begin();
        t.begin();
        t.end(Duration::from_millis(12));
        let load = t.snapshot(10);
        assert_eq!(
            (load.in_flight, load.p99_ms, load.starts_per_sec),
            (1, 12, 0.0)
        );
        assert_eq!(t.snapshot(10).p99_ms, 0, "the window resets");
    }

    #[tokio::test]
    async fn memory_registry_merges_status() {
        let r = MemoryRegistry::default();
        let eu = RegionName::parse("eu").unwrap();
        let beat = Heartbeat {
            name: eu.clone(),
            url: "http://x".into(),
            version: "1".into(),
            load: RegionLoad::default(),
            at_ms: 1,
        };
        r.heartbeat(&beat, 3).await.unwrap();
        r.set_status(&eu, RegionStatus::Draining).await.unwrap();
        let list = r.list().await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, RegionStatus::Draining);
        assert!(list[0].ttl_seconds <= 3);
    }
}
