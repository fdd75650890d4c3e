//! Prometheus metrics of the origin, served at `GET /metrics`, and the middleware that
//! records every request into them.
//!
//! Every name starts with `seedsync_` (docs/operations.md lists them, and the names they had
//! before). Every label value comes from a closed set: route templates, not paths; a fixed
//! list of methods; reasons and outcomes named in code; regions from the signed registry,
//! capped at [`MAX_PEERS`]. The process figures ([`process`]), the age of the oldest pending
//! outbox event and the regions' heartbeat ages are computed when `/metrics` is scraped, so
//! they keep growing while whatever should refresh them is stuck.

pub mod process;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::regions::{RegionRecord, RegionStatus};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// At most this many other regions get a heartbeat-age series: the registry lists only signed
/// rows in production, but an open development registry would otherwise let anyone add series.
pub const MAX_PEERS: usize = 32;

/// A region not listed for this long is forgotten (its series removed): a region taken out of
/// service on purpose stops alerting after an hour without a restart of every origin.
pub const FORGET_PEER_AFTER: Duration = Duration::from_secs(3600);

/// Every `reason` of `seedsync_rate_limited_total` ([`crate::limits`]).
pub const RATE_LIMIT_REASONS: [&str; 7] = [
    "start",
    "read",
    "probe",
    "client_in_flight",
    "overloaded",
    "slow_body",
    "metadata",
];

/// The commit the binary was built from: `SEEDSYNC_COMMIT` at compile time, else `unknown`.
pub const COMMIT: &str = match option_env!("SEEDSYNC_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The origin's metrics and the registry that renders them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by method, matched route template and status.
    pub http_requests: IntCounterVec,
    /// Request latency by method and route.
    pub http_latency: HistogramVec,
    /// Failed Cassandra operations by operation.
    pub cassandra_errors: IntCounterVec,
    /// Games created.
    pub sessions_started: IntCounter,
    /// Games exited (first exit only).
    pub sessions_exited: IntCounter,
    /// Seats taken in shared games (joins that took a seat).
    pub seats_joined: IntCounter,
    /// Seats exited in shared games (first exit only).
    pub seats_exited: IntCounter,
    /// Game events the leaderboard consumer applied and acknowledged.
    pub leaderboard_applied: IntCounter,
    /// Events the leaderboard consumer received more than once (a crash or a lost ack before
    /// the acknowledgement; applied again without effect).
    pub leaderboard_redelivered: IntCounter,
    /// Events the leaderboard consumer could not apply (storage failed: redelivered later).
    pub leaderboard_failures: IntCounter,
    /// Outbox rows the relay's last pass left pending (read up to 10,000 per partition).
    pub outbox_pending: IntGauge,
    /// Game events acknowledged by the broker, by type.
    pub outbox_published: IntCounterVec,
    /// Publications that failed or could not be tried (broker down, timeout); the events stay
    /// in the outbox.
    pub outbox_publish_failures: IntCounter,
    /// Acknowledgements that reported a duplicate (a re-publication the broker dropped).
    pub outbox_duplicates: IntCounter,
    /// Published events whose broker connection changed before they were surely on its disk,
    /// published again.
    pub outbox_republished: IntCounter,
    /// Outbox rows dropped because their event never happened (a lost race, a failed request).
    pub outbox_dropped: IntCounterVec,
    /// Seconds from an event's commit (`occurredAt`) to the broker's acknowledgement.
    pub outbox_lag: Histogram,
    /// Requests turned away by the abuse limits, by reason (`start`, `read`: a client over
    /// its budget; `overloaded`: no in-flight slot).
    pub rate_limited: IntCounterVec,
    /// Exits and stops refused for their owner token, by reason (`missing`, `malformed`,
    /// `unknown_key`, `bad_signature`, `expired`, `wrong_game`). Never the token itself.
    pub owner_token_refusals: IntCounterVec,
    /// Exit notices to the edge's live rooms, by outcome (`sent`: the edge answered 2xx;
    /// `refused`: another status; `failed`: no answer within the timeout; `dropped`: too many
    /// already in flight).
    pub edge_notices: IntCounterVec,
    /// Edge signatures checked, by outcome (`ok`, `missing`, `malformed`, `bad_signature`,
    /// `stale`, `replayed`, `guard_full`). Never the signature, nonce or secret.
    pub edge_auth: IntCounterVec,
    /// Engine computations (states, replays) stopped because their request was abandoned
    /// (timed out or disconnected) before they finished: each one freed its core early.
    pub engine_cancelled: IntCounter,
    /// Requests being served now (admitted past the limits; refusals are never in flight).
    pub in_flight: IntGauge,
    /// Failed registry operations of this origin, by operation (`heartbeat`: writing its own
    /// record; `list`: reading everyone's).
    pub registry_errors: IntCounterVec,
    /// Unix ms of the oldest outbox event the relay's last pass left pending; 0: none.
    outbox_oldest_pending_ms: Arc<AtomicI64>,
    outbox_oldest_pending_age: Gauge,
    /// What the last registry read saw, rendered as gauges at scrape time.
    regions: Arc<Mutex<RegionsSeen>>,
    registry_regions: IntGaugeVec,
    region_heartbeat_age: GaugeVec,
    /// The process figures, refreshed at scrape time.
    process: Arc<Mutex<ProcessGauges>>,
    /// `seedsync_settings_changes_total{outcome}`: admin changes of the runtime settings
    /// (`changed`, `rolled_back`, `invalid`, `unauthorized`, `forbidden`, `conflict`, `failed`)
    /// and stored versions this origin could not use (`unusable`).
    pub settings_changes: IntCounterVec,
    /// `seedsync_settings_version`: the runtime settings version this origin applies (0: none
    /// stored, the environment's values).
    pub settings_version: IntGauge,
}

/// Regions as the last registry read listed them.
#[derive(Debug, Default)]
struct RegionsSeen {
    /// By name: the last heartbeat's Unix ms and when a read last listed it.
    peers: BTreeMap<String, (i64, Instant)>,
    /// Live regions by status at the last successful read.
    by_status: [(RegionStatus, i64); 2],
}

#[derive(Debug)]
struct ProcessGauges {
    cpu_seconds: Counter,
    resident_bytes: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: Gauge,
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new(region: &str) -> Metrics {
        let registry = Registry::new_custom(
            None,
            Some([("region".to_owned(), region.to_owned())].into()),
        )
        .expect("static registry labels are valid");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "seedsync_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "seedsync_http_request_duration_seconds",
                "HTTP request latency",
            )
            // 0.1 and 0.2: the start SLA's p95 and p99 bounds fall on bucket edges.
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let cassandra_errors = IntCounterVec::new(
            Opts::new(
                "seedsync_cassandra_errors_total",
                "Failed Cassandra operations",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let sessions_started = IntCounter::new("seedsync_sessions_started_total", "Games created")
            .expect("valid metric");
        let sessions_exited = IntCounter::new("seedsync_sessions_exited_total", "Games exited")
            .expect("valid metric");
        let seats_joined =
            IntCounter::new("seedsync_seats_joined_total", "Seats taken in shared games")
                .expect("valid metric");
        let seats_exited = IntCounter::new(
            "seedsync_seats_exited_total",
            "Seats of shared games exited (first exit only)",
        )
        .expect("valid metric");
        let leaderboard_applied = IntCounter::new(
            "seedsync_leaderboard_applied_total",
            "Game events the leaderboard consumer applied and acknowledged",
        )
        .expect("valid metric");
        let leaderboard_redelivered = IntCounter::new(
            "seedsync_leaderboard_redelivered_total",
            "Game events the leaderboard consumer received again (applied without effect)",
        )
        .expect("valid metric");
        let leaderboard_failures = IntCounter::new(
            "seedsync_leaderboard_failures_total",
            "Game events the leaderboard consumer could not apply yet (redelivered later)",
        )
        .expect("valid metric");
        let outbox_pending = IntGauge::new(
            "seedsync_outbox_pending",
            "Game events in the outbox not yet acknowledged by the broker (last relay pass)",
        )
        .expect("valid metric");
        let outbox_published = IntCounterVec::new(
            Opts::new(
                "seedsync_outbox_published_total",
                "Game events acknowledged by the broker, by type",
            ),
            &["type"],
        )
        .expect("valid metric");
        let outbox_publish_failures = IntCounter::new(
            "seedsync_outbox_publish_failures_total",
            "Game event publications that failed and stay in the outbox",
        )
        .expect("valid metric");
        let outbox_duplicates = IntCounter::new(
            "seedsync_outbox_duplicates_total",
            "Re-publications the broker acknowledged as duplicates",
        )
        .expect("valid metric");
        let outbox_republished = IntCounter::new(
            "seedsync_outbox_republished_total",
            "Published events whose broker connection changed before they were surely on its disk",
        )
        .expect("valid metric");
        let outbox_dropped = IntCounterVec::new(
            Opts::new(
                "seedsync_outbox_dropped_total",
                "Outbox rows dropped because their event never happened, by type",
            ),
            &["type"],
        )
        .expect("valid metric");
        let outbox_lag = Histogram::with_opts(
            HistogramOpts::new(
                "seedsync_outbox_relay_lag_seconds",
                "Seconds from a game event's commit to the broker's acknowledgement",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "seedsync_rate_limited_total",
                "Requests turned away by the abuse limits",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let owner_token_refusals = IntCounterVec::new(
            Opts::new(
                "seedsync_owner_token_refusals_total",
                "Exits and stops refused for their owner token",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let edge_notices = IntCounterVec::new(
            Opts::new(
                "seedsync_edge_notices_total",
                "Exit notices to the edge's live rooms, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let edge_auth = IntCounterVec::new(
            Opts::new(
                "seedsync_edge_auth_total",
                "Edge signatures checked on incoming requests, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let engine_cancelled = IntCounter::new(
            "seedsync_engine_cancelled_total",
            "Engine computations stopped because their request was abandoned",
        )
        .expect("valid metric");
        let in_flight = int_gauge(
            "seedsync_http_requests_in_flight",
            "Requests being served (admitted past the rate limits and the in-flight cap)",
        );
        let build_info = IntGaugeVec::new(
            Opts::new(
                "seedsync_build_info",
                "Always 1: the origin's version and the commit it was built from",
            ),
            &["version", "commit"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), COMMIT])
            .set(1);
        let outbox_oldest_pending_age = Gauge::new(
            "seedsync_outbox_oldest_pending_age_seconds",
            "Age of the oldest game event the relay's last pass left unpublished (0: none)",
        )
        .expect("valid metric");
        let registry_errors = IntCounterVec::new(
            Opts::new(
                "seedsync_registry_errors_total",
                "Failed region registry operations of this origin, by operation",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let registry_regions = IntGaugeVec::new(
            Opts::new(
                "seedsync_registry_regions",
                "Live regions (verified records) at this origin's last registry read, by status",
            ),
            &["status"],
        )
        .expect("valid metric");
        let region_heartbeat_age = GaugeVec::new(
            Opts::new(
                "seedsync_region_heartbeat_age_seconds",
                "Seconds since each region's last heartbeat this origin has seen (grows once \
                 a region stops beating and its record expires)",
            ),
            &["peer"],
        )
        .expect("valid metric");
        let process = ProcessGauges {
            cpu_seconds: Counter::new(
                "seedsync_process_cpu_seconds_total",
                "User and system CPU time of the origin process",
            )
            .expect("valid metric"),
            resident_bytes: int_gauge(
                "seedsync_process_resident_memory_bytes",
                "Resident memory of the origin process",
            ),
            open_fds: int_gauge(
                "seedsync_process_open_fds",
                "Open file descriptors of the origin process",
            ),
            max_fds: int_gauge(
                "seedsync_process_max_fds",
                "Soft limit of open file descriptors (-1: unlimited)",
            ),
            start_time: Gauge::new(
                "seedsync_process_start_time_seconds",
                "Start time of the origin process, Unix seconds",
            )
            .expect("valid metric"),
        };
        // Present at 0 from the start, so the alert rules' rate() sees the very first refusal
        // or failure (a series born at 1 shows no increase).
        for reason in RATE_LIMIT_REASONS {
            rate_limited.with_label_values(&[reason]);
        }
        for operation in ["heartbeat", "list"] {
            registry_errors.with_label_values(&[operation]);
        }
        for outcome in ["sent", "refused", "failed", "dropped"] {
            edge_notices.with_label_values(&[outcome]);
        }
        for outcome in [
            "ok",
            "missing",
            "malformed",
            "bad_signature",
            "stale",
            "replayed",
            "guard_full",
        ] {
            edge_auth.with_label_values(&[outcome]);
        }
        for reason in [
            "missing",
            "malformed",
            "unknown_key",
            "bad_signature",
            "expired",
            "wrong_game",
        ] {
            owner_token_refusals.with_label_values(&[reason]);
        }
        let settings_changes = IntCounterVec::new(
            Opts::new(
                "seedsync_settings_changes_total",
                "Runtime settings changes through the admin API, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let settings_version = IntGauge::new(
            "seedsync_settings_version",
            "The runtime settings version this origin applies (0: the environment's)",
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(settings_changes.clone()),
            Box::new(settings_version.clone()),
            Box::new(in_flight.clone()),
            Box::new(build_info),
            Box::new(outbox_oldest_pending_age.clone()),
            Box::new(registry_errors.clone()),
            Box::new(registry_regions.clone()),
            Box::new(region_heartbeat_age.clone()),
            Box::new(process.cpu_seconds.clone()),
            Box::new(process.resident_bytes.clone()),
            Box::new(process.open_fds.clone()),
            Box::new(process.max_fds.clone()),
            Box::new(process.start_time.clone()),
            Box::new(engine_cancelled.clone()),
            Box::new(edge_notices.clone()),
            Box::new(edge_auth.clone()),
            Box::new(rate_limited.clone()),
            Box::new(owner_token_refusals.clone()),
            Box::new(http_latency.clone()),
            Box::new(cassandra_errors.clone()),
            Box::new(sessions_started.clone()),
            Box::new(sessions_exited.clone()),
            Box::new(seats_joined.clone()),
            Box::new(seats_exited.clone()),
            Box::new(leaderboard_applied.clone()),
            Box::new(leaderboard_redelivered.clone()),
            Box::new(leaderboard_failures.clone()),
            Box::new(outbox_pending.clone()),
            Box::new(outbox_published.clone()),
            Box::new(outbox_publish_failures.clone()),
            Box::new(outbox_duplicates.clone()),
            Box::new(outbox_republished.clone()),
            Box::new(outbox_dropped.clone()),
            Box::new(outbox_lag.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            engine_cancelled,
            http_requests,
            http_latency,
            cassandra_errors,
            sessions_started,
            sessions_exited,
            seats_joined,
            seats_exited,
            leaderboard_applied,
            leaderboard_redelivered,
            leaderboard_failures,
            outbox_pending,
            outbox_published,
            outbox_publish_failures,
            outbox_duplicates,
            outbox_republished,
            outbox_dropped,
            outbox_lag,
            rate_limited,
            owner_token_refusals,
            edge_notices,
            edge_auth,
            settings_changes,
            settings_version,
            in_flight,
            registry_errors,
            outbox_oldest_pending_ms: Arc::default(),
            outbox_oldest_pending_age,
            regions: Arc::default(),
            registry_regions,
            region_heartbeat_age,
            process: Arc::new(Mutex::new(process)),
        }
    }

    /// Records the commit time (Unix ms) of the oldest event a relay pass left pending
    /// (`None`: nothing pending).
    pub fn set_outbox_oldest_pending(&self, queued_at_ms: Option<i64>) {
        self.outbox_oldest_pending_ms
            .store(queued_at_ms.unwrap_or(0).max(0), Ordering::Relaxed);
    }

    /// Records what a registry read listed (the verified live records).
    pub fn observe_regions(&self, records: &[RegionRecord]) {
        let mut seen = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut by_status = [(RegionStatus::Active, 0), (RegionStatus::Draining, 0)];
        for record in records {
            for (status, count) in &mut by_status {
                if *status == record.status {
                    *count += 1;
                }
            }
            let name = record.name.as_str();
            if seen.peers.contains_key(name) || seen.peers.len() < MAX_PEERS {
                seen.peers
                    .insert(name.to_owned(), (record.heartbeat_at, now));
            }
        }
        seen.by_status = by_status;
    }

    /// Sets the gauges computed at scrape time.
    fn refresh(&self) {
        let now_ms = kernel::clock::now_ms();
        let oldest = self.outbox_oldest_pending_ms.load(Ordering::Relaxed);
        self.outbox_oldest_pending_age
            .set(pending_age_seconds(oldest, now_ms));
        {
            let mut seen = self.regions.lock().unwrap_or_else(|e| e.into_inner());
            for (status, count) in seen.by_status {
                self.registry_regions
                    .with_label_values(&[status.as_str()])
                    .set(count);
            }
            let forgotten: Vec<String> = seen
                .peers
                .iter()
                .filter(|(_, (_, listed))| listed.elapsed() > FORGET_PEER_AFTER)
                .map(|(name, _)| name.clone())
                .collect();
            for name in forgotten {
                seen.peers.remove(&name);
                // Absent already if never rendered: nothing to undo then.
                let _ = self.region_heartbeat_age.remove_label_values(&[&name]);
            }
            for (name, (heartbeat_at, _)) in &seen.peers {
                self.region_heartbeat_age
                    .with_label_values(&[name])
                    .set(pending_age_seconds(*heartbeat_at, now_ms));
            }
        }
        if let Some(reading) = process::read() {
            let gauges = self.process.lock().unwrap_or_else(|e| e.into_inner());
            // A counter only goes up: add what the kernel counted since the last scrape.
            let counted = gauges.cpu_seconds.get();
            if reading.cpu_seconds > counted {
                gauges.cpu_seconds.inc_by(reading.cpu_seconds - counted);
            }
            gauges
                .resident_bytes
                .set(i64::try_from(reading.resident_bytes).unwrap_or(i64::MAX));
            gauges
                .open_fds
                .set(i64::try_from(reading.open_fds).unwrap_or(i64::MAX));
            gauges.max_fds.set(
                reading
                    .max_fds
                    .map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX)),
            );
            gauges.start_time.set(reading.start_time_seconds);
        }
    }

    /// Serves `collector` with the others (a metric its owner keeps, such as the store's
    /// statement latency). Registering one twice is a bug in the wiring, logged and ignored.
    pub fn register(&self, collector: impl prometheus::core::Collector + 'static) {
        if let Err(error) = self.registry.register(Box::new(collector)) {
            tracing::error!(%error, "a metric could not be registered");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.refresh();
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// The `method` label: one of a closed set, so made-up methods (any token is a valid HTTP
/// method) cannot add series to `/metrics` without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Middleware: counts each request by method, matched route template and status, observes its
/// latency, and counts the Cassandra operation behind a storage failure (marked on the
/// response by [`crate::error::StorageFailure`]).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A guard, so a request whose future is dropped (client gone, timeout) leaves the gauge.
    let _in_flight = InFlight::enter(&metrics.in_flight);
    let method = method_label(request.method());
    // The template, not the path: ids would make every request its own series.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics
        .http_requests
        .with_label_values(&[method, &route, &status])
        .inc();
    metrics
        .http_latency
        .with_label_values(&[method, &route])
        .observe(started.elapsed().as_secs_f64());
    if let Some(crate::error::StorageFailure(operation)) = response.extensions().get() {
        metrics
            .cassandra_errors
            .with_label_values(&[operation])
            .inc();
    }
    response
}

/// Seconds from `since_ms` (Unix ms; 0 or less: nothing) to `now_ms`, never negative.
pub fn pending_age_seconds(since_ms: i64, now_ms: i64) -> f64 {
    if since_ms <= 0 {
        0.0
    } else {
        now_ms.saturating_sub(since_ms).max(0) as f64 / 1000.0
    }
}

/// One request in flight, for as long as it lives.
struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a IntGauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn every_name_is_in_the_seedsync_namespace_and_build_info_is_one() {
        let metrics = Metrics::new("eu");
        metrics.rate_limited.with_label_values(&["start"]).inc();
        let text = metrics.render();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("seedsync_"), "{l}");
        }
        let build = line(&text, "seedsync_build_info{").unwrap();
        assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(build.ends_with(" 1"), "{build}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_figures_are_read_at_scrape_time() {
        let metrics = Metrics::new("eu");
        let text = metrics.render();
        for name in [
            "seedsync_process_cpu_seconds_total",
            "seedsync_process_resident_memory_bytes",
            "seedsync_process_open_fds",
            "seedsync_process_start_time_seconds",
        ] {
            let l = line(&text, name).unwrap_or_else(|| panic!("{name} missing"));
            let value: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(value > 0.0 || name.contains("cpu"), "{l}");
        }
    }

    #[test]
    fn ages_grow_from_what_was_last_seen() {
        assert_eq!(pending_age_seconds(0, 5_000), 0.0);
        assert_eq!(pending_age_seconds(1_000, 3_500), 2.5);
        assert_eq!(pending_age_seconds(9_000, 3_500), 0.0);
        let metrics = Metrics::new("eu");
        metrics.set_outbox_oldest_pending(Some(kernel::clock::now_ms() - 60_000));
        let text = metrics.render();
        let age: f64 = line(&text, "seedsync_outbox_oldest_pending_age_seconds")
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((59.0..70.0).contains(&age), "{age}");
        metrics.set_outbox_oldest_pending(None);
        assert!(
            metrics
                .render()
                .contains("seedsync_outbox_oldest_pending_age_seconds{region=\"eu\"} 0")
        );
    }

    #[test]
    fn regions_are_counted_and_peers_capped() {
        let metrics = Metrics::new("eu");
        let now = kernel::clock::now_ms();
        let record = |name: &str, status| RegionRecord {
            name: api::RegionName::parse(name).unwrap(),
            url: "http://127.0.0.1:1".into(),
            version: "0".into(),
            status,
            load: Default::default(),
            heartbeat_at: now - 20_000,
            ttl_seconds: 30,
            signature: None,
            expires_at: None,
        };
        let mut records = vec![
            record("us", RegionStatus::Active),
            record("ap", RegionStatus::Draining),
        ];
        records.extend((0..MAX_PEERS + 10).map(|i| record(&format!("r{i}"), RegionStatus::Active)));
        metrics.observe_regions(&records);
        let text = metrics.render();
        assert!(
            text.contains(r#"seedsync_registry_regions{status="active",region="eu"} 43"#),
            "{text}"
        );
        assert!(text.contains(r#"seedsync_registry_regions{status="draining",region="eu"} 1"#));
        let peers = text
            .lines()
            .filter(|l| l.starts_with("seedsync_region_heartbeat_age_seconds{"))
            .count();
        assert_eq!(peers, MAX_PEERS);
        let us = line(&text, r#"seedsync_region_heartbeat_age_seconds{peer="us""#).unwrap();
        let age: f64 = us.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((19.0..30.0).contains(&age), "{us}");
        // A later read without "us": its age keeps growing from its last heartbeat.
        metrics.observe_regions(&records[1..]);
        assert!(
            metrics
                .render()
                .contains(r#"seedsync_region_heartbeat_age_seconds{peer="us""#)
        );
    }

    #[test]
    fn a_dropped_request_leaves_the_in_flight_gauge() {
        let gauge = IntGauge::new("g", "g").unwrap();
        {
            let _a = InFlight::enter(&gauge);
            let _b = InFlight::enter(&gauge);
            assert_eq!(gauge.get(), 2);
        }
        assert_eq!(gauge.get(), 0);
    }

    #[test]
    fn method_labels_are_a_closed_set() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::POST), "POST");
        for made_up in ["FOO", "BREW", "X-1"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other");
        }
    }
}
