//! Wiring: the application state, the routers and the request plumbing, and the server loop.
//!
//! `app(state)` builds the router without binding anything, so tests can drive it directly
//! (with `tower::ServiceExt::oneshot`, on any [`GameStore`]); `run(listener, state, shutdown)`
//! serves it ([`crate::server::serve`]: with a header read deadline) until `shutdown`
//! resolves, then drains. [`crate::Application`] builds them with
//! the store, the region registry and the event relay, for the binary and the tests alike.
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
use crate::limits;
use crate::metrics;
use crate::outbox::{Outbox, Relay, RelayHandle};
use crate::routes::{self, admin, game, health, regions, v1};
use crate::server;
pub use crate::state::AppState;
use crate::store::{GameStore, Store};
use crate::telemetry;
use crate::tls::{self, TlsListener, TlsSettings};

/// The application state on Cassandra and, when `NATS_URL` is set, the game-event relay
/// (paced by [`Settings::relay`]), as [`crate::Application`] wires them. The relay connects to
/// NATS in the background (a broker that is down or late never delays the origin: events wait
/// in the outbox) and publishes until [`RelayHandle::shutdown`].
pub async fn state_with_events(
    settings: &Settings,
    store: Store,
) -> Result<(AppState, Option<RelayHandle>), events::EventsError> {
    let Some(events_settings) = &settings.events else {
        return Ok((AppState::new(settings, store), None));
    };
    let client = events::connect(
        &events_settings.nats_url,
        &format!("seedsync-origin-{}", settings.region),
        false,
    )
    .await?;
    let mut publisher = events::Publisher::new(client, EVENT_ACK_TIMEOUT);
    if let Some(replicas) = events_settings.stream_replicas {
        publisher = publisher.with_replicas(replicas);
    }
    let outbox = Outbox::new(Arc::new(store.clone()), settings.region.clone());
    let games: Arc<dyn GameStore> = Arc::new(store);
    let state = AppState::build(settings, games.clone(), Some(outbox.clone()));
    let relay = Relay::new(
        games,
        outbox,
        publisher,
        state.metrics.clone(),
        settings.relay(),
    )
    .with_lifetime(settings.games.max_age, settings.games.retention)
    .spawn();
    Ok((state, Some(relay)))
}

/// How long the relay waits for JetStream to acknowledge one event.
const EVENT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

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
        .route("/game/{id}/join", post(game::join).fallback(only("POST")))
        .route(
            "/game/{id}/results",
            get(game::results).fallback(only("GET, HEAD")),
        )
        .route(
            "/game/{id}/rounds",
            get(game::rounds).fallback(only("GET, HEAD")),
        )
        .route(
            "/users/{user_id}/game",
            get(game::user_game).fallback(only("GET, HEAD")),
        )
        .route(
            "/leaderboard",
            get(routes::leaderboard::leaderboard).fallback(only("GET, HEAD")),
        )
        .route("/health", get(health::health).fallback(only("GET, HEAD")))
        .route("/ready", get(health::ready).fallback(only("GET, HEAD")))
        .route("/healthz", get(v1::healthz).fallback(only("GET, HEAD")))
        .route("/regions", get(regions::list).fallback(only("GET, HEAD")))
        .route(
            "/regions/{name}/drain",
            post(regions::drain).fallback(only("POST")),
        )
        .route(
            "/regions/{name}/undrain",
            post(regions::undrain).fallback(only("POST")),
        )
        .route(
            "/admin/settings",
            get(admin::get)
                .patch(admin::patch)
                .fallback(only("GET, HEAD, PATCH")),
        )
        .route(
            "/admin/tournaments",
            post(routes::tournament::create).fallback(only("POST")),
        )
        .route(
            "/tournaments/{id}",
            get(routes::tournament::get).fallback(only("GET, HEAD")),
        )
        .route(
            "/tournaments/{id}/standings",
            get(routes::tournament::standings).fallback(only("GET, HEAD")),
        )
        .route(
            "/tournaments/{id}/rounds/{round}/join",
            post(routes::tournament::join).fallback(only("POST")),
        )
        .route(
            "/admin/settings/rollback",
            post(admin::rollback).fallback(only("POST")),
        )
        .route(
            "/api/regions",
            get(regions::legacy_list).fallback(only("GET, HEAD")),
        )
        .route(
            "/api/regions/register",
            post(regions::register).fallback(only("POST")),
        )
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
    let router = Router::new()
        .merge(game_routes(state.request_timeout))
        .nest("/v1", v1_routes(state.request_timeout))
        .fallback(routes::route_not_found)
        .with_state(state.clone())
        .merge(metrics_router(state.clone()));
    let router = router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.registry.clone(),
            crate::registry::track,
        ))
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
        .layer(MapRequestLayer::new(telemetry::drop_invalid_request_id));
    // The limits are the outermost layer: what they turn away costs no request id, span, log
    // line or latency histogram (a flood of refusals must stay cheap and must not flood the
    // log); it is counted in seedsync_rate_limited_total.
    limits::apply(router, state.limits.clone())
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_tls(listener, state, None, shutdown).await
}

/// [`run`], speaking only HTTPS when `tls` is set: the pair is loaded now and reloaded while
/// serving ([`tls::reload_loop`]); the graceful shutdown is the same (the TLS listener stops
/// accepting, in-flight requests finish).
pub async fn run_with_tls(
    listener: TcpListener,
    state: AppState,
    tls: Option<&TlsSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = state.limits.spawn_housekeeping(Duration::from_secs(30));
    let header_read_timeout = state.header_read_timeout;
    let router = app(state);
    let served = match tls {
        None => server::serve(listener, router, header_read_timeout, shutdown).await,
        Some(settings) => {
            let pair = settings.read_pair().map_err(std::io::Error::other)?;
            let current = Arc::new(tls::CurrentCert::new(pair));
            let config = tls::server_config(current.clone()).map_err(std::io::Error::other)?;
            let reload = tokio::spawn(tls::reload_loop(settings.clone(), current));
            let listener = TlsListener::new(listener, Arc::new(config));
            let served = server::serve(listener, router, header_read_timeout, shutdown).await;
            reload.abort();
            served
        }
    };
    housekeeping.abort();
    served
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
