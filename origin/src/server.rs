//! The HTTP server loop: connections from any listener (plain TCP or the TLS listener) served
//! by hyper with a deadline on request headers, and a graceful shutdown.
//!
//! `axum::serve` sets no timer, so hyper's header read timeout never runs there: a client that
//! sends half a request line and then nothing holds its connection (a task, a buffer, a file
//! descriptor) for as long as it likes, and thousands of them are cheap to open. Here every
//! HTTP/1 connection must deliver each request's headers within `HEADER_READ_TIMEOUT_SECONDS`
//! of starting to wait for them; the same deadline closes a keep-alive connection that stays
//! idle that long. Bodies have their own deadline, in [`crate::limits`] (it needs the request
//! to be routed first, to know whose slots it holds).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets the
/// requests in flight finish and closes idle connections. Each request carries its peer
/// address as `ConnectInfo<SocketAddr>`, which the per-client limits key on.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Header timeouts, resets and half-sent requests end here; they are the client's.
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
