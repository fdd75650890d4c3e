//! Wiring: the application state, the routers and the request plumbing, and the server loop.
//!
//! `app(state)` builds the router without binding anything, so tests can drive it directly
//! (with `tower::ServiceExt::oneshot`, on any [`GameStore`]); `run(listener, state, shutdown)`
//! serves it until `shutdown` resolves, then drains.
//!
//! Around every route, outermost first: an invalid client `x-request-id` is dropped, then
//! tower-http sets one (keeping the client's, else a UUID) and echoes it; the W3C trace
//! context is continued and `traceparent` echoed; `TraceLayer` opens the request span and logs
//! the request line; the metrics middleware counts the request; the body limit applies. Inside
//! each dialect's routes, a timeout answers that dialect's 503 `timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use api::limits::MAX_BODY_BYTES;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;
use tower::timeout::error::Elapsed;
use tower::util::MapRequestLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::error::{AppError, V1Error};
use crate::metrics::{self, Metrics};
use crate::routes::{self, game, health, v1};
use crate::service::GameService;
use crate::store::GameStore;
use crate::telemetry;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The game service (store, region, defaults).
    pub service: Arc<GameService>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requests slower than this are answered 503 `timeout`.
    pub request_timeout: Duration,
}

impl AppState {
    /// State for the given settings over a store (Cassandra's [`crate::store::Store`], or a
    /// test's fake).
    pub fn new(settings: &Settings, store: impl GameStore + 'static) -> AppState {
        AppState::with_store(settings, Arc::new(store))
    }

    /// State for the given settings over a shared store.
    pub fn with_store(settings: &Settings, store: Arc<dyn GameStore>) -> AppState {
        let metrics = Arc::new(Metrics::new(settings.region.as_str()));
        AppState {
            service: Arc::new(
                GameService::new(
                    store,
                    settings.region.clone(),
                    settings.games,
                    metrics.clone(),
                )
                .with_notifier(crate::notify::EdgeNotifier::from_env()),
            ),
            metrics,
            request_timeout: settings.request_timeout,
        }
    }
}

/// The metrics endpoint, on its own router so it can be mounted elsewhere if needed.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(health::metrics).fallback(routes::method_not_allowed("GET, HEAD")),
        )
        .with_state(state)
}

/// Maps the error of a timed-out route onto a response of its dialect.
fn timed_out<E: From<AppError>>(error: tower::BoxError) -> E {
    if error.is::<Elapsed>() {
        AppError::Timeout.into()
    } else {
        AppError::Internal(format!("middleware failed: {error}")).into()
    }
}

/// The game API, liveness and readiness, with [`api::ErrorBody`] errors.
fn game_routes(timeout: Duration) -> Router<AppState> {
    use routes::method_not_allowed as only;
    Router::new()
        .route("/game/start", post(game::start).fallback(only("POST")))
        .route("/game/exit", post(game::exit).fallback(only("POST")))
        .route("/game/{id}", get(game::get).fallback(only("GET, HEAD")))
        .route(
            "/game/{id}/state",
            get(game::state_at).fallback(only("GET, HEAD")),
        )
        .route(
            "/game/{id}/replay",
            get(game::replay).fallback(only("GET, HEAD")),
        )
        .route(
            "/users/{user_id}/game",
            get(game::user_game).fallback(only("GET, HEAD")),
        )
        .route("/health", get(health::health).fallback(only("GET, HEAD")))
        .route("/ready", get(health::ready).fallback(only("GET, HEAD")))
        .route("/healthz", get(v1::healthz).fallback(only("GET, HEAD")))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|error: tower::BoxError| async move {
                    timed_out::<AppError>(error)
                }))
                .layer(TimeoutLayer::new(timeout)),
        )
}

/// The `/v1` session dialect (mounted under `/v1`), with its own errors, also for wrong
/// methods and timeouts (and, through [`routes::route_not_found`], unknown paths under `/v1`).
fn v1_routes(timeout: Duration) -> Router<AppState> {
    use v1::method_not_allowed as only;
    Router::new()
        .route("/sessions", post(v1::create).fallback(only("POST")))
        .route("/sessions/{id}", get(v1::get).fallback(only("GET, HEAD")))
        .route(
            "/sessions/{id}/state",
            get(v1::state_at).fallback(only("GET, HEAD")),
        )
        .route("/sessions/{id}/stop", post(v1::stop).fallback(only("POST")))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|error: tower::BoxError| async move {
                    timed_out::<V1Error>(error)
                }))
                .layer(TimeoutLayer::new(timeout)),
        )
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(game_routes(state.request_timeout))
        .nest("/v1", v1_routes(state.request_timeout))
        .fallback(routes::route_not_found)
        .with_state(state.clone())
        .merge(metrics_router(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(telemetry::request_span)
                .on_response(telemetry::log_response),
        )
        .layer(axum::middleware::from_fn(
            telemetry::propagate_trace_context,
        ))
        .layer(PropagateRequestIdLayer::new(telemetry::REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            telemetry::REQUEST_ID,
            MakeRequestUuid,
        ))
        .layer(MapRequestLayer::new(telemetry::drop_invalid_request_id))
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
