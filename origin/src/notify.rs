//! Origin → edge exit notices: once an exit is committed, the origin tells the edge
//! (`POST {EDGE_NOTIFY_URL}/edge/internal/game/{id}/exited` with the shared secret header), so
//! the game's live room pushes `exited` to its sockets even when the exit bypassed the edge
//! (another region's origin called directly, a `/v1` stop).
//!
//! Fire-and-forget: sent from a spawned task with a bounded timeout, counted in
//! `origin_edge_notices_total{outcome}` and logged when it fails, and never able to fail or
//! slow the exit itself (a room that misses a notice only means its viewers fall back to
//! polling). At most [`MAX_IN_FLIGHT`] notices wait at once: an edge that hangs cannot pile up
//! tasks, the surplus is dropped and counted.
//!
//! Configured by two optional variables, validated at start-up ([`NotifySettings::from_lookup`]):
//! `EDGE_NOTIFY_URL` (the edge's base URL, e.g. `http://127.0.0.1:8787`; plain `http://` only,
//! this build has no TLS client) and `EDGE_NOTIFY_SECRET` (the edge's `EDGE_NOTIFY_SECRET`).
//! Both set, or neither (no notices).

use std::sync::Arc;
use std::time::Duration;

use api::GameId;
use api::room::{ExitedNotice, NOTIFY_SECRET_HEADER};
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use kernel::{Secret, SettingsError};

/// The edge's base URL.
pub const URL_VAR: &str = "EDGE_NOTIFY_URL";
/// The shared secret.
pub const SECRET_VAR: &str = "EDGE_NOTIFY_SECRET";
/// How long one notice may take, connect included.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_millis(1500);
/// Notices waiting for the edge at once; more are dropped.
pub const MAX_IN_FLIGHT: usize = 256;
/// Shortest accepted secret: it guards a route that ends nothing but tells rooms a game ended,
/// so a guessable one would let anyone freeze viewers.
pub const MIN_SECRET_BYTES: usize = 16;

/// Where exit notices go.
#[derive(Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// The edge's base URL, without a trailing slash.
    pub base: String,
    /// `EDGE_NOTIFY_SECRET`.
    pub secret: Secret,
}

impl std::fmt::Debug for NotifySettings {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySettings")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl NotifySettings {
    /// Reads [`URL_VAR`] and [`SECRET_VAR`] (empty counts as unset): `None` when neither is
    /// set, an error naming the variable when one is missing or unusable.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<NotifySettings>, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (url, secret) = match (get(URL_VAR), get(SECRET_VAR)) {
            (None, None) => return Ok(None),
            (Some(url), Some(secret)) => (url, secret),
            (Some(_), None) => {
                return Err(SettingsError {
                    variable: SECRET_VAR,
                    message: format!("must be set when {URL_VAR} is (the edge's secret)"),
                });
            }
            (None, Some(_)) => {
                return Err(SettingsError {
                    variable: URL_VAR,
                    message: format!("must be set when {SECRET_VAR} is (the edge's base URL)"),
                });
            }
        };
        let base = url.trim_end_matches('/');
        let valid = base.strip_prefix("http://").is_some_and(|rest| {
            !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' '])
                && rest.rsplit_once(':').is_none_or(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                })
        });
        if !valid {
            return Err(SettingsError {
                variable: URL_VAR,
                message: format!(
                    "{url:?} is not an http:// base URL like http://127.0.0.1:8787 (no path; \
                     this build has no TLS client)"
                ),
            });
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SettingsError {
                variable: SECRET_VAR,
                message: format!("must be at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        Ok(Some(NotifySettings {
            base: base.to_owned(),
            secret: Secret::new(secret),
        }))
    }

    /// The notice URL of game `id`.
    pub fn url_of(&self, id: GameId) -> String {
        format!("{}/edge/internal/game/{id}/exited", self.base)
    }
}

/// Sends exit notices to one edge.
#[derive(Debug)]
pub struct EdgeNotifier {
    client: reqwest::Client,
    settings: NotifySettings,
    in_flight: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl EdgeNotifier {
    /// A notifier for `settings`, counting into `metrics`.
    pub fn new(settings: NotifySettings, metrics: Arc<Metrics>) -> EdgeNotifier {
        // The builder fails only when a TLS backend cannot start; this one has none.
        let client = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .connect_timeout(NOTIFY_TIMEOUT)
            .build()
            .unwrap_or_default();
        EdgeNotifier {
            client,
            settings,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            metrics,
        }
    }

    fn count(metrics: &Metrics, outcome: &str) {
        metrics.edge_notices.with_label_values(&[outcome]).inc();
    }

    /// Tells the edge that `id` exited at `exited_at_ms`, in the background; returns at once.
    pub fn exited(&self, id: GameId, exited_at_ms: i64) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            Self::count(&self.metrics, "dropped");
            tracing::warn!(game_id = %id, "edge exit notice dropped: too many in flight");
            return;
        };
        let request = self
            .client
            .post(self.settings.url_of(id))
            .header(NOTIFY_SECRET_HEADER, self.settings.secret.expose())
            .json(&ExitedNotice {
                exited_at: exited_at_ms,
            });
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(resp) if resp.status().is_success() => Self::count(&metrics, "sent"),
                Ok(resp) => {
                    Self::count(&metrics, "refused");
                    tracing::warn!(game_id = %id, status = resp.status().as_u16(), "edge exit notice refused");
                }
                Err(e) => {
                    Self::count(&metrics, "failed");
                    tracing::warn!(game_id = %id, error = %e, "edge exit notice failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<NotifySettings>, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NotifySettings::from_lookup(|name| vars.get(name).cloned())
    }

    const SECRET: &str = "a notify secret, 16+";

    #[test]
    fn both_or_neither() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[(URL_VAR, " "), (SECRET_VAR, "")]).unwrap(), None);
        assert_eq!(
            read(&[(URL_VAR, "http://127.0.0.1:8787")])
                .unwrap_err()
                .variable,
            SECRET_VAR
        );
        assert_eq!(read(&[(SECRET_VAR, SECRET)]).unwrap_err().variable, URL_VAR);
        let s = read(&[(URL_VAR, "http://127.0.0.1:8787/"), (SECRET_VAR, SECRET)])
            .unwrap()
            .unwrap();
        assert_eq!(s.base, "http://127.0.0.1:8787");
        let id = GameId::parse("0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e").unwrap();
        assert_eq!(
            s.url_of(id),
            "http://127.0.0.1:8787/edge/internal/game/0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e/exited"
        );
        assert!(!format!("{s:?}").contains(SECRET));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for url in [
            "https://edge.example",
            "127.0.0.1:8787",
            "http://",
            "http://127.0.0.1:0",
            "http://127.0.0.1:x",
            "http://edge.example/edge",
        ] {
            assert_eq!(
                read(&[(URL_VAR, url), (SECRET_VAR, SECRET)])
                    .unwrap_err()
                    .variable,
                URL_VAR,
                "{url}"
            );
        }
        assert_eq!(
            read(&[(URL_VAR, "http://edge.example"), (SECRET_VAR, "short")])
                .unwrap_err()
                .variable,
            SECRET_VAR
        );
    }

    #[tokio::test]
    async fn an_unreachable_edge_neither_blocks_nor_fails() {
        // A port nothing listens on: the notice fails in the background, counted.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let metrics = Arc::new(Metrics::new("eu"));
        let n = EdgeNotifier::new(
            NotifySettings {
                base: format!("http://127.0.0.1:{port}"),
                secret: SECRET.into(),
            },
            metrics.clone(),
        );
        let id = GameId::parse("0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e").unwrap();
        let started = std::time::Instant::now();
        n.exited(id, 1);
        assert!(started.elapsed() < Duration::from_millis(50));
        let deadline = started + NOTIFY_TIMEOUT * 2;
        while metrics.edge_notices.with_label_values(&["failed"]).get() == 0 {
            assert!(std::time::Instant::now() < deadline, "no failure counted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
