//! seedsync game events on NATS JetStream.
//!
//! The origins publish [`api::GameEvent`]s (`game.started`, `game.joined`, `game.exited`,
//! `game.ended`, `game.break`; schema in [`api::events`]) from a Cassandra
//! outbox; analytics, leaderboards and fraud detection consume them, decoupled from the game
//! path. This crate holds everything both sides share about the broker:
//!
//! - [`stream`]: the `GAME_EVENTS` stream (file storage, a 2 h duplicate window keyed by the
//!   `Nats-Msg-Id` header) and its subjects `<type>.<region>`, e.g. `game.started.eu`;
//! - [`Publisher`]: publishes one event with `Nats-Msg-Id = eventId` and awaits JetStream's
//!   acknowledgement, so a re-publication (a relay retry, a crash before the outbox row was
//!   cleared) is dropped by the broker;
//! - [`Consumer`]: reads the stream and dedupes by event id ([`Dedupe`]), for re-publications
//!   older than the broker's window: at-least-once delivery, exactly-once effect;
//! - [`rate`]: per-region starts per minute and lag percentiles, as the `tail` CLI prints them;
//! - [`tail`]: the `tail` CLI's arguments and output lines (the binary is a thin `main`);
//! - `testkit` (feature `testkit`, for tests and benchmarks only): a real `nats-server` on a
//!   free port, stopped by PID.

pub mod consumer;
pub mod dedupe;
pub mod publisher;
pub mod rate;
pub mod stream;
pub mod tail;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::time::Duration;

/// The NATS client this crate is built on, for consumers of their own (the origin's
/// leaderboard).
pub use async_nats;
pub use consumer::{Consumer, Received, StartFrom};
pub use dedupe::Dedupe;
pub use publisher::{Published, Publisher};

/// What went wrong talking to the broker. Messages carry the client's text for the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EventsError {
    /// The URL is not a NATS URL or the first connection failed.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's error.
        message: String,
    },
    /// Creating, updating or reading the stream failed.
    #[error("JetStream stream {stream}: {message}")]
    Stream {
        /// The stream name.
        stream: &'static str,
        /// The client's error.
        message: String,
    },
    /// A publication was not acknowledged (broker down, timeout, no stream).
    #[error("publishing {subject} failed: {message}")]
    Publish {
        /// The subject.
        subject: String,
        /// The client's error.
        message: String,
    },
    /// Reading from a consumer failed.
    #[error("consuming game events failed: {0}")]
    Consume(String),
}

/// The servers of a NATS URL list: `nats://a:4222,nats://b:4222` (spaces and empty items
/// ignored). async-nats takes a `&str` as one server, so a list must be split before connecting.
pub fn server_list(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Connects to NATS at `url`: one server, or several comma-separated (the nodes of a JetStream
/// cluster). The client starts with a random one of them, learns the cluster's other nodes
/// from the server, and after losing its server reconnects to any other that answers.
///
/// With `wait_for_server = false` this returns at once even if no server answers yet: the
/// client keeps connecting in the background and requests fail (then succeed) meanwhile. The
/// origins use that, since a broker that is down must never stop them from serving games.
/// With `true`, the first connection tries each listed server once and fails if none answers.
pub async fn connect(
    url: &str,
    name: &str,
    wait_for_server: bool,
) -> Result<async_nats::Client, EventsError> {
    let servers = server_list(url);
    let failed = |message: String| EventsError::Connect {
        url: servers
            .iter()
            .map(|s| kernel::redact_url(s))
            .collect::<Vec<_>>()
            .join(","),
        message,
    };
    if servers.is_empty() {
        return Err(failed("no server given".into()));
    }
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(2))
        // The default backoff reaches 4 s; a local broker coming back should be found sooner.
        // The delay is per attempt, and each attempt tries the next server of the list.
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts.min(5)).unwrap_or(5);
            Duration::from_millis(50 * 2u64.pow(exp)).min(Duration::from_secs(1))
        });
    if !wait_for_server {
        options = options.retry_on_initial_connect();
    }
    options
        .connect(servers.as_slice())
        .await
        .map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_lists_split_into_servers() {
        assert_eq!(server_list("nats://a:1"), ["nats://a:1"]);
        assert_eq!(
            server_list(" nats://a:1, nats://b:2 ,,tls://c:3"),
            ["nats://a:1", "nats://b:2", "tls://c:3"]
        );
        assert!(server_list(" , ").is_empty());
        // Each item parses as a server address of its own.
        for server in server_list("nats://127.0.0.1:4222,nats://127.0.0.1:4223") {
            assert!(server.parse::<async_nats::ServerAddr>().is_ok(), "{server}");
        }
        // The whole list is not the first server of it: why it must be split.
        let whole = "nats://127.0.0.1:4222,nats://127.0.0.1:4223".parse::<async_nats::ServerAddr>();
        assert!(!whole.is_ok_and(|a| a.port() == 4222 && a.host() == "127.0.0.1"));
    }
}
