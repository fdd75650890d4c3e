//! Origin → edge exit notices: after an exit is committed, the origin tells the edge
//! (`POST {EDGE_NOTIFY_URL}/edge/internal/game/{id}/exited` with the shared secret header),
//! so the game's live room pushes `exited` to its sockets even when the exit bypassed the edge
//! (another region's origin called directly, `/v1` stop).
//!
//! Fire-and-forget: sent from a spawned task with a short timeout, logged when it fails, and
//! never able to fail or slow the exit itself (viewers fall back to polling).
//!
//! Configured by two optional variables: `EDGE_NOTIFY_URL` (the edge's base URL, e.g.
//! `http://127.0.0.1:8787`; plain HTTP only, this build has no TLS client) and
//! `EDGE_NOTIFY_SECRET` (the edge's `EDGE_NOTIFY_SECRET`). Both set, or no notices.

use std::time::Duration;

use api::GameId;
use api::live::{ExitedNotice, NOTIFY_SECRET_HEADER};

/// How long one notice may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_millis(1500);

/// Sends exit notices to one edge.
#[derive(Debug, Clone)]
pub struct EdgeNotifier {
    client: reqwest::Client,
    base: String,
    secret: String,
}

impl EdgeNotifier {
    /// A notifier for `base` (no trailing slash needed) with `secret`; `None` if either is
    /// empty.
    pub fn new(base: &str, secret: &str) -> Option<EdgeNotifier> {
        let base = base.trim().trim_end_matches('/');
        if base.is_empty() || secret.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .build()
            .ok()?;
        Some(EdgeNotifier {
            client,
            base: base.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// From `EDGE_NOTIFY_URL` and `EDGE_NOTIFY_SECRET`; `None` when not both set.
    pub fn from_env() -> Option<EdgeNotifier> {
        let url = std::env::var("EDGE_NOTIFY_URL").unwrap_or_default();
        let secret = std::env::var("EDGE_NOTIFY_SECRET").unwrap_or_default();
        if url.is_empty() != secret.is_empty() {
            tracing::warn!(
                "EDGE_NOTIFY_URL and EDGE_NOTIFY_SECRET must be set together; exit notices are off"
            );
        }
        EdgeNotifier::new(&url, &secret)
    }

    /// Tells the edge that `id` exited at `exited_at_ms`, in the background.
    pub fn exited(&self, id: GameId, exited_at_ms: i64) {
        let url = format!("{}/edge/internal/game/{id}/exited", self.base);
        let request = self
            .client
            .post(url)
            .header(NOTIFY_SECRET_HEADER, &self.secret)
            .json(&ExitedNotice {
                exited_at: exited_at_ms,
            });
        tokio::spawn(async move {
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => {
                    tracing::warn!(game_id = %id, status = resp.status().as_u16(), "edge exit notice refused");
                }
                Err(e) => tracing::warn!(game_id = %id, error = %e, "edge exit notice failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_both_url_and_secret() {
        assert!(EdgeNotifier::new("", "s").is_none());
        assert!(EdgeNotifier::new("http://127.0.0.1:1", "").is_none());
        let n = EdgeNotifier::new("http://127.0.0.1:1/", "s").unwrap();
        assert_eq!(n.base, "http://127.0.0.1:1");
    }
}
