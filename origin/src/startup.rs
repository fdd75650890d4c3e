//! Wiring: the application state, the router, the request middleware and the server loop.
//!
//! `app(state)` builds the router without binding anything, so tests can drive it directly;
//! `run(listener, state, shutdown)` serves it until `shutdown` resolves, then drains.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::{GameDefaults, Settings};
use crate::domain::Region;
use crate::error::{AppError, StorageFailure};
use crate::metrics::Metrics;
use crate::routes::{MAX_BODY_BYTES, compat, game, health};
use crate::store::Store;
use crate::telemetry::TraceContext;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Cassandra.
    pub store: Store,
    /// This origin's region.
    pub region: Region,
    /// Defaults for new games.
    pub games: GameDefaults,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requests slower than this are answered 503.
    pub request_timeout: Duration,
}

impl AppState {
    /// State for the given settings and an already connected store.
    pub fn new(settings: &Settings, store: Store) -> AppState {
        AppState {
            store,
            region: settings.region.clone(),
            games: settings.games,
            metrics: Arc::new(Metrics::new(settings.region.as_str())),
            request_timeout: settings.request_timeout,
        }
    }
}

/// The metrics endpoint, on its own router so it can be mounted elsewhere if needed.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/game/start", post(game::start))
        .route("/game/exit", post(game::exit))
        .route("/game/{id}", get(game::get))
        .route("/game/{id}/state", get(game::state_at))
        .route("/game/{id}/replay", get(game::replay))
        .route("/users/{user_id}/game", get(game::user_game))
        .route("/v1/sessions", post(compat::create))
        .route("/v1/sessions/{id}", get(compat::get))
        .route("/v1/sessions/{id}/state", get(compat::state_at))
        .route("/v1/sessions/{id}/stop", post(compat::stop))
        .route("/healthz", get(compat::healthz))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .with_state(state.clone());
    api.merge(metrics_router(state.clone()))
        .fallback(|| async { AppError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state, observe))
}

/// Per request: request id and trace context, a log span, the timeout, metrics, and a
/// structured log line.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace = TraceContext::from_header(
        request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, trace_id = %trace.trace_id, span_id = %trace.span_id);

    let mut response = match tokio::time::timeout(
        state.request_timeout,
        next.run(request).instrument(span.clone()),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => AppError::Timeout.into_response(),
    };

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .http_requests
        .with_label_values(&[method.as_str(), &route, &status.to_string()])
        .inc();
    state
        .metrics
        .http_latency
        .with_label_values(&[method.as_str(), &route])
        .observe(elapsed.as_secs_f64());
    if let Some(StorageFailure(operation)) = response.extensions().get::<StorageFailure>() {
        state
            .metrics
            .cassandra_errors
            .with_label_values(&[operation])
            .inc();
    }
    span.in_scope(|| {
        tracing::info!(
            method = %method, route = %route, path = %path, status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            traceparent = %trace.header(),
            "request finished"
        );
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&trace.header()) {
        headers.insert("traceparent", value);
    }
    if method == Method::HEAD {
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
