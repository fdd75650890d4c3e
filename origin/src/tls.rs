//! HTTPS served by the origin itself: `TLS_CERT_FILE` and `TLS_KEY_FILE` (PEM, both or
//! neither) turn the listener into a TLS-only one (rustls on ring, no OpenSSL; ALPN
//! `http/1.1`), for deployments where no proxy ends TLS in front of the origin.
//!
//! The pair is reloaded without a restart, so certificates can be renewed in place (cert-manager,
//! certbot): every `TLS_RELOAD_SECONDS` the files' modification times and sizes are compared with
//! the last ones seen, and SIGHUP forces a reload. New connections get the new pair; open ones
//! keep theirs. A broken new pair (half-written, mismatched key) is logged and the old one kept.
//!
//! The pure parts, loading and validating a pair ([`load_pair`]) and the reload decision
//! ([`should_reload`]), are plain functions; [`TlsListener`] and [`reload_loop`] are the I/O
//! around them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use kernel::SettingsError;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The certificate chain file (PEM, leaf first).
pub const CERT_VAR: &str = "TLS_CERT_FILE";
/// The private key file (PEM: PKCS#8, PKCS#1 or SEC1).
pub const KEY_VAR: &str = "TLS_KEY_FILE";
/// How often the files are checked for a new pair.
pub const RELOAD_VAR: &str = "TLS_RELOAD_SECONDS";
/// [`RELOAD_VAR`]'s default.
pub const DEFAULT_RELOAD_SECONDS: u64 = 10;
/// A client that has not finished its handshake by then is dropped (it holds a task and a
/// socket, and must not hold them forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server loop to take them.
const ACCEPT_QUEUE: usize = 64;

/// The TLS settings: where the pair lives and how often to look for a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `TLS_CERT_FILE`.
    pub cert_file: PathBuf,
    /// `TLS_KEY_FILE`.
    pub key_file: PathBuf,
    /// `TLS_RELOAD_SECONDS`.
    pub reload_every: Duration,
}

impl TlsSettings {
    /// Reads the TLS variables (empty counts as unset): `None` when neither file is set.
    /// The pair is loaded once here, so a deployment with a bad pair stops at start-up with
    /// the variable named instead of serving handshake failures.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TlsSettings>, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let reload_seconds = match get(RELOAD_VAR) {
            None => DEFAULT_RELOAD_SECONDS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=86_400).contains(s))
                .ok_or_else(|| SettingsError::new(RELOAD_VAR, format!("{v:?} is not 1..=86400")))?,
        };
        let (cert_file, key_file) = match (get(CERT_VAR), get(KEY_VAR)) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (PathBuf::from(cert), PathBuf::from(key)),
            (Some(_), None) => {
                return Err(SettingsError::new(
                    KEY_VAR,
                    format!("must be set when {CERT_VAR} is (the certificate's private key)"),
                ));
            }
            (None, Some(_)) => {
                return Err(SettingsError::new(
                    CERT_VAR,
                    format!("must be set when {KEY_VAR} is (the certificate chain)"),
                ));
            }
        };
        let settings = TlsSettings {
            cert_file,
            key_file,
            reload_every: Duration::from_secs(reload_seconds),
        };
        settings.read_pair()?;
        Ok(Some(settings))
    }

    /// Reads and validates the pair from its files.
    pub fn read_pair(&self) -> Result<CertifiedKey, SettingsError> {
        let read = |variable: &'static str, path: &Path| {
            std::fs::read(path).map_err(|e| {
                SettingsError::new(variable, format!("cannot read {}: {e}", path.display()))
            })
        };
        load_pair(
            &read(CERT_VAR, &self.cert_file)?,
            &read(KEY_VAR, &self.key_file)?,
        )
    }

    /// The files' current [`Stamp`].
    pub fn stamp(&self) -> Stamp {
        Stamp::of(&[&self.cert_file, &self.key_file])
    }
}

/// The crypto every TLS endpoint of the origin uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes [`provider`] the process default. reqwest is built without a provider of its own
/// (ring here instead of its aws-lc-rs, which needs a C toolchain), so every client it builds
/// without a preconfigured TLS config, plain-HTTP ones included, needs this first or panics.
/// Idempotent: a provider already installed (this one, or an embedder's) is kept.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: either provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Parses and checks a PEM pair: at least one certificate, one private key, and the key
/// belonging to the first (leaf) certificate. Errors name the variable at fault.
pub fn load_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, SettingsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SettingsError::new(CERT_VAR, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(SettingsError::new(
            CERT_VAR,
            "holds no certificate (expected PEM BEGIN CERTIFICATE blocks, leaf first)",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        SettingsError::new(
            KEY_VAR,
            format!("holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    let provider = provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| SettingsError::new(KEY_VAR, format!("unsupported private key: {e}")))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| {
        SettingsError::new(
            KEY_VAR,
            format!("does not match the first certificate of {CERT_VAR}: {e}"),
        )
    })?;
    Ok(pair)
}

/// What the reload loop compares: each file's modification time and size (`None` while it
/// cannot be read, e.g. mid-replacement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp(Vec<Option<(SystemTime, u64)>>);

impl Stamp {
    /// The stamp of `paths` now.
    pub fn of(paths: &[&Path]) -> Stamp {
        Stamp(
            paths
                .iter()
                .map(|p| {
                    let meta = std::fs::metadata(p).ok()?;
                    Some((meta.modified().ok()?, meta.len()))
                })
                .collect(),
        )
    }
}

/// Whether to try loading the pair again: on SIGHUP always, otherwise when the files changed
/// since the last attempt (successful or not: a broken pair is reported once, not every tick)
/// and both can be read.
pub fn should_reload(last_attempt: &Stamp, now: &Stamp, forced: bool) -> bool {
    forced || (now != last_attempt && now.0.iter().all(Option::is_some))
}

/// The certificate handed to new connections, swapped by the reload loop.
#[derive(Debug)]
pub struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    /// Starts with `pair`.
    pub fn new(pair: CertifiedKey) -> CurrentCert {
        CurrentCert(RwLock::new(Arc::new(pair)))
    }

    /// The pair new connections get.
    pub fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, pair: CertifiedKey) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The server config over `current` (reloadable), HTTP/1.1 over ALPN.
pub fn server_config(current: Arc<CurrentCert>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Tries the pair again when [`should_reload`] says so; logs what happened. Returns whether
/// the certificate changed.
pub fn reload_once(
    settings: &TlsSettings,
    current: &CurrentCert,
    last_attempt: &mut Stamp,
    forced: bool,
) -> bool {
    let now = settings.stamp();
    if !should_reload(last_attempt, &now, forced) {
        return false;
    }
    *last_attempt = now;
    match settings.read_pair() {
        Ok(pair) => {
            current.set(pair);
            tracing::info!(cert = %settings.cert_file.display(), "TLS certificate reloaded");
            true
        }
        Err(error) => {
            tracing::error!(%error, "new TLS certificate pair rejected; keeping the current one");
            false
        }
    }
}

/// Checks the files every [`TlsSettings::reload_every`] and on SIGHUP, until aborted.
pub async fn reload_loop(settings: TlsSettings, current: Arc<CurrentCert>) {
    let mut last_attempt = settings.stamp();
    let mut tick = tokio::time::interval(settings.reload_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        #[cfg(not(unix))]
        let forced = {
            tick.tick().await;
            false
        };
        reload_once(&settings, &current, &mut last_attempt, forced);
    }
}

/// A listener that hands the server loop connections whose TLS handshake is done. Handshakes
/// run in their own tasks (a slow client never holds up the others); dropping the listener,
/// as a graceful shutdown does, stops accepting.
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener` and handshakes with `config`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> TlsListener {
        let (sender, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { incoming, acceptor }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept task only ends when aborted, i.e. with this listener.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Err(std::io::Error::other(
            "the TLS listener's address is the TCP listener's",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn both_files_or_neither() {
        assert_eq!(TlsSettings::from_lookup(lookup(&[])).unwrap(), None);
        assert_eq!(
            TlsSettings::from_lookup(lookup(&[(CERT_VAR, " "), (KEY_VAR, "")])).unwrap(),
            None
        );
        let e = TlsSettings::from_lookup(lookup(&[(CERT_VAR, "/x.pem")])).unwrap_err();
        assert_eq!(e.variable, KEY_VAR);
        let e = TlsSettings::from_lookup(lookup(&[(KEY_VAR, "/x.pem")])).unwrap_err();
        assert_eq!(e.variable, CERT_VAR);
    }

    #[test]
    fn unreadable_files_and_bad_reload_periods_name_their_variable() {
        let e = TlsSettings::from_lookup(lookup(&[
            (CERT_VAR, "/nonexistent/cert.pem"),
            (KEY_VAR, "/nonexistent/key.pem"),
        ]))
        .unwrap_err();
        assert_eq!(e.variable, CERT_VAR);
        assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
        for bad in ["0", "x", "86401"] {
            let e = TlsSettings::from_lookup(lookup(&[(RELOAD_VAR, bad)])).unwrap_err();
            assert_eq!(e.variable, RELOAD_VAR, "{bad}");
        }
    }

    #[test]
    fn a_pair_needs_a_certificate_and_a_key() {
        let e = load_pair(b"", b"").unwrap_err();
        assert_eq!(e.variable, CERT_VAR);
        let e = load_pair(b"not pem at all", b"").unwrap_err();
        assert_eq!(e.variable, CERT_VAR);
        // A syntactically fine certificate block (the check of the key comes first here).
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = load_pair(cert, b"no key here").unwrap_err();
        assert_eq!(e.variable, KEY_VAR);
    }

    #[test]
    fn reload_when_the_files_change_or_on_demand() {
        let t = SystemTime::UNIX_EPOCH;
        let a = Stamp(vec![Some((t, 10)), Some((t, 20))]);
        let b = Stamp(vec![Some((t + Duration::from_secs(1), 10)), Some((t, 20))]);
        let resized = Stamp(vec![Some((t, 11)), Some((t, 20))]);
        let missing = Stamp(vec![None, Some((t, 20))]);
        assert!(!should_reload(&a, &a, false));
        assert!(should_reload(&a, &a, true));
        assert!(should_reload(&a, &b, false));
        assert!(should_reload(&a, &resized, false));
        // A file being replaced (gone for a moment) is waited out, not loaded.
        assert!(!should_reload(&a, &missing, false));
    }
}
