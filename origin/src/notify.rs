//! Origin → edge notices: once an exit is committed (a game's, or one seat's of a shared
//! game, with its result), the origin tells the edge
//! (`POST {EDGE_NOTIFY_URL}/edge/internal/game/{id}/exited` with the shared secret header), so
//! the game's live room pushes `exited` to its sockets even when the exit bypassed the edge
//! (another region's origin called directly, a `/v1` stop). Likewise once a join of a shared
//! game is committed (`POST .../edge/internal/game/{id}/joined` with the [`SeatJoin`]): the
//! room pushes `seated` to every socket, so pages learn of new seats without polling.
//!
//! Fire-and-forget: sent from a spawned task with a bounded timeout, counted in
//! `seedsync_edge_notices_total{outcome}` and logged when it fails, and never able to fail or
//! slow the exit itself (a room that misses a notice only means its viewers fall back to
//! polling). At most [`MAX_IN_FLIGHT`] notices wait at once: an edge that hangs cannot pile up
//! tasks, the surplus is dropped and counted.
//!
//! Configured by two optional variables, validated at start-up ([`NotifySettings::from_lookup`]):
//! `EDGE_NOTIFY_URL` (the edge's base URL, e.g. `http://127.0.0.1:8787` or
//! `https://edge.example`) and `EDGE_NOTIFY_SECRET` (the edge's `EDGE_NOTIFY_SECRET`).
//! Both set, or neither (no notices). `https://` uses rustls and trusts the system's roots plus
//! the PEM roots of the optional `EDGE_NOTIFY_CA_FILE` (a private CA, or a test's).

use std::sync::Arc;
use std::time::Duration;

use api::GameId;
use api::room::{ExitedNotice, NOTIFY_SECRET_HEADER, SeatExit, SeatJoin};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use kernel::{Secret, SettingsError};

/// The edge's base URL.
pub const URL_VAR: &str = "EDGE_NOTIFY_URL";
/// The shared secret.
pub const SECRET_VAR: &str = "EDGE_NOTIFY_SECRET";
/// Extra trusted root certificates (PEM) for an `https://` edge.
pub const CA_VAR: &str = "EDGE_NOTIFY_CA_FILE";
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
    /// The roots of `EDGE_NOTIFY_CA_FILE`, trusted besides the system's.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for NotifySettings {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySettings")
            .field("base", &self.base)
            .field("extra_roots", &self.extra_roots.len())
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
            (None, None) => {
                if get(CA_VAR).is_some() {
                    return Err(SettingsError::new(
                        CA_VAR,
                        format!("is only used with {URL_VAR} (https); set both or neither"),
                    ));
                }
                return Ok(None);
            }
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
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"));
        let valid = rest.is_some_and(|rest| {
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
                    "{url:?} is not an http(s):// base URL like http://127.0.0.1:8787 or \
                     https://edge.example (no path)"
                ),
            });
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SettingsError {
                variable: SECRET_VAR,
                message: format!("must be at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        let extra_roots = match get(CA_VAR) {
            None => Vec::new(),
            Some(path) => read_roots(&path)?,
        };
        Ok(Some(NotifySettings {
            base: base.to_owned(),
            secret: Secret::new(secret),
            extra_roots,
        }))
    }

    /// The exit notice URL of game `id`.
    pub fn url_of(&self, id: GameId) -> String {
        format!("{}/edge/internal/game/{id}/exited", self.base)
    }

    /// The join notice URL of game `id`.
    pub fn joined_url_of(&self, id: GameId) -> String {
        format!("{}/edge/internal/game/{id}/joined", self.base)
    }
}

/// The certificates of the PEM file at `path` (at least one), errors naming [`CA_VAR`].
fn read_roots(path: &str) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    let pem = std::fs::read(path)
        .map_err(|e| SettingsError::new(CA_VAR, format!("cannot read {path}: {e}")))?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SettingsError::new(CA_VAR, format!("{path} is not PEM: {e}")))?;
    if roots.is_empty() {
        return Err(SettingsError::new(
            CA_VAR,
            format!("{path} holds no certificate (expected PEM BEGIN CERTIFICATE blocks)"),
        ));
    }
    Ok(roots)
}

/// The TLS client config of the notices: the system's roots (when it has any) plus
/// `extra_roots`; a root the trust store refuses is logged and skipped.
pub fn client_tls(
    extra_roots: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system root certificate could not be loaded");
    }
    let (_, skipped) = roots.add_parsable_certificates(native.certs);
    if skipped > 0 {
        tracing::debug!(skipped, "system root certificates skipped");
    }
    for root in extra_roots {
        if let Err(error) = roots.add(root.clone()) {
            tracing::warn!(%error, "a root of {CA_VAR} was refused");
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
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
        // The fallback client below takes the process default provider.
        crate::tls::install_default_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .connect_timeout(NOTIFY_TIMEOUT);
        match client_tls(&settings.extra_roots) {
            Ok(tls) => builder = builder.tls_backend_preconfigured(tls),
            Err(error) => tracing::error!(%error, "no TLS for edge exit notices"),
        }
        let client = builder.build().unwrap_or_else(|error| {
            // Only a TLS backend that cannot start fails the builder; https notices then fail
            // (counted), plain ones still go.
            tracing::error!(%error, "edge notice client without TLS");
            reqwest::Client::new()
        });
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
        self.send(
            id,
            ExitedNotice {
                exited_at: exited_at_ms,
                seat: None,
            },
        );
    }

    /// Tells the edge that a seat of the shared game `id` exited with its committed result (the
    /// room pushes it as `seat`; the game goes on), in the background; returns at once.
    pub fn seat_exited(&self, id: GameId, seat: SeatExit) {
        self.send(
            id,
            ExitedNotice {
                exited_at: seat.result.exited_at,
                seat: Some(seat),
            },
        );
    }

    /// Tells the edge that a seat of the shared game `id` was taken (the room pushes it as
    /// `seated`), in the background; returns at once.
    pub fn joined(&self, id: GameId, join: SeatJoin) {
        self.post(id, self.settings.joined_url_of(id), &join);
    }

    fn send(&self, id: GameId, notice: ExitedNotice) {
        self.post(id, self.settings.url_of(id), &notice);
    }

    fn post(&self, id: GameId, url: String, body: &impl serde::Serialize) {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            Self::count(&self.metrics, "dropped");
            tracing::warn!(game_id = %id, "edge notice dropped: too many in flight");
            return;
        };
        let request = self
            .client
            .post(url)
            .header(NOTIFY_SECRET_HEADER, self.settings.secret.expose())
            .json(body);
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(resp) if resp.status().is_success() => Self::count(&metrics, "sent"),
                Ok(resp) => {
                    Self::count(&metrics, "refused");
                    tracing::warn!(game_id = %id, status = resp.status().as_u16(), "edge notice refused");
                }
                Err(e) => {
                    Self::count(&metrics, "failed");
                    tracing::warn!(game_id = %id, error = %e, "edge notice failed");
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
        assert!(s.extra_roots.is_empty());
        let tls = read(&[
            (URL_VAR, "https://edge.example:8443/"),
            (SECRET_VAR, SECRET),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(tls.base, "https://edge.example:8443");
        let id = GameId::parse("0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e").unwrap();
        assert_eq!(
            s.url_of(id),
            "http://127.0.0.1:8787/edge/internal/game/0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e/exited"
        );
        assert_eq!(
            s.joined_url_of(id),
            "http://127.0.0.1:8787/edge/internal/game/0b6c1f7e-3a52-4a8e-9d4e-0f1a2b3c4d5e/joined"
        );
        assert!(!format!("{s:?}").contains(SECRET));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for url in [
            "ftp://edge.example",
            "https://",
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
        // The CA file: alone, unreadable, or without a certificate.
        assert_eq!(
            read(&[(CA_VAR, "/etc/ca.pem")]).unwrap_err().variable,
            CA_VAR
        );
        let with_ca = |path: &str| {
            read(&[
                (URL_VAR, "https://edge.example"),
                (SECRET_VAR, SECRET),
                (CA_VAR, path),
            ])
        };
        assert_eq!(with_ca("/nonexistent/ca.pem").unwrap_err().variable, CA_VAR);
        let empty = std::env::temp_dir().join(format!("seedsync-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = with_ca(empty.to_str().unwrap()).unwrap_err();
        std::fs::remove_file(&empty).unwrap();
        assert_eq!(e.variable, CA_VAR, "{e}");
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
                extra_roots: Vec::new(),
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
