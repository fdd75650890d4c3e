//! Prometheus metrics of the origin, served at `GET /metrics`, and the middleware that
//! records every request into them.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
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
                "origin_http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "origin_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let cassandra_errors = IntCounterVec::new(
            Opts::new(
                "origin_cassandra_errors_total",
                "Failed Cassandra operations",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let sessions_started = IntCounter::new("origin_sessions_started_total", "Games created")
            .expect("valid metric");
        let sessions_exited =
            IntCounter::new("origin_sessions_exited_total", "Games exited").expect("valid metric");
        let seats_joined =
            IntCounter::new("seedsync_seats_joined_total", "Seats taken in shared games")
                .expect("valid metric");
        let seats_exited = IntCounter::new(
            "seedsync_seats_exited_total",
            "Seats of shared games exited (first exit only)",
        )
        .expect("valid metric");
        let outbox_pending = IntGauge::new(
            "origin_outbox_pending",
            "Game events in the outbox not yet acknowledged by the broker (last relay pass)",
        )
        .expect("valid metric");
        let outbox_published = IntCounterVec::new(
            Opts::new(
                "origin_outbox_published_total",
                "Game events acknowledged by the broker, by type",
            ),
            &["type"],
        )
        .expect("valid metric");
        let outbox_publish_failures = IntCounter::new(
            "origin_outbox_publish_failures_total",
            "Game event publications that failed and stay in the outbox",
        )
        .expect("valid metric");
        let outbox_duplicates = IntCounter::new(
            "origin_outbox_duplicates_total",
            "Re-publications the broker acknowledged as duplicates",
        )
        .expect("valid metric");
        let outbox_republished = IntCounter::new(
            "origin_outbox_republished_total",
            "Published events whose broker connection changed before they were surely on its disk",
        )
        .expect("valid metric");
        let outbox_dropped = IntCounterVec::new(
            Opts::new(
                "origin_outbox_dropped_total",
                "Outbox rows dropped because their event never happened, by type",
            ),
            &["type"],
        )
        .expect("valid metric");
        let outbox_lag = Histogram::with_opts(
            HistogramOpts::new(
                "origin_outbox_relay_lag_seconds",
                "Seconds from a game event's commit to the broker's acknowledgement",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "origin_rate_limited_total",
                "Requests turned away by the abuse limits",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let owner_token_refusals = IntCounterVec::new(
            Opts::new(
                "origin_owner_token_refusals_total",
                "Exits and stops refused for their owner token",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let edge_notices = IntCounterVec::new(
            Opts::new(
                "origin_edge_notices_total",
                "Exit notices to the edge's live rooms, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let edge_auth = IntCounterVec::new(
            Opts::new(
                "origin_edge_auth_total",
                "Edge signatures checked on incoming requests, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let engine_cancelled = IntCounter::new(
            "origin_engine_cancelled_total",
            "Engine computations stopped because their request was abandoned",
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
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
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
