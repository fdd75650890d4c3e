//! TLS on the origin's hops (issue 20), against the real Cassandra like the other modules:
//!
//! - the origin serving HTTPS itself (`TLS_CERT_FILE`, `TLS_KEY_FILE`) with a test CA: a client
//!   trusting the CA gets `/health` and plays a game; plain HTTP on the TLS port gets no answer;
//! - certificate rotation without a restart (the mtime reload with `TLS_RELOAD_SECONDS=1`): a
//!   pair from a second CA replaces the first for new connections; a broken key file keeps the
//!   pair being served;
//! - exit notices to an https edge: delivered when `EDGE_NOTIFY_CA_FILE` trusts the edge's CA,
//!   refused in the handshake (counted, the exit itself still succeeds) when it does not.
//!
//! Every certificate is made here with rcgen; the fake edge is tokio-rustls on 127.0.0.1:0.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use origin::notify::NotifySettings;
use origin::tls::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::common::{self, TestApp, unique_user};

/// How long a reload may take to show: a few `TLS_RELOAD_SECONDS=1` periods.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// A test CA and one server certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, format!("seedsync test CA {name}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, format!("seedsync test server {name}"));
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &*ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A directory of its own for one test's PEM files, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(prefix: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "seedsync-{prefix}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    /// Writes `contents` to `name` as a renewal tool does: a temporary file renamed over the
    /// old one, so the reload never reads half a file.
    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// A reqwest client trusting only the CA of `ca_pem`, and a fresh connection pool (a rotated
/// certificate is only seen by new connections).
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(origin::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// An origin serving HTTPS with the pair in `dir` (`cert.pem`, `key.pem`), checked for changes
/// every second; its client trusts `ca_pem`.
async fn spawn_https(dir: &Dir, ca_pem: &str) -> TestApp {
    let cert = dir.0.join("cert.pem");
    let key = dir.0.join("key.pem");
    let mut settings = common::settings("eu");
    settings.tls = TlsSettings::from_lookup(lookup(&[
        ("TLS_CERT_FILE", cert.to_str().unwrap()),
        ("TLS_KEY_FILE", key.to_str().unwrap()),
        ("TLS_RELOAD_SECONDS", "1"),
    ]))
    .expect("the test pair is valid");
    assert!(settings.tls.is_some());
    let mut app = common::spawn_app_with(settings).await;
    app.address = app.address.replacen("http://", "https://", 1);
    app.client = client_trusting(ca_pem);
    app
}

/// The status of `GET /health` through `client`, or the error's text.
async fn health(client: &reqwest::Client, app: &TestApp) -> Result<u16, String> {
    client
        .get(app.url("/health"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

/// Waits until `check` holds, for at most [`RELOAD_WAIT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + RELOAD_WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_origin_serves_https_with_a_test_ca_and_refuses_plain_http() {
    let pki = Pki::new("serve");
    let dir = Dir::new("tls-serve");
    dir.write("cert.pem", &pki.cert_pem);
    dir.write("key.pem", &pki.key_pem);
    let app = spawn_https(&dir, &pki.ca_pem).await;

    assert_eq!(health(&app.client, &app).await, Ok(200));
    let user = unique_user("tls");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    let (status, exited) = app
        .post(
            "/game/exit",
            &json!({"gameId": game["gameId"], "userId": user}),
        )
        .await;
    assert_eq!(status, 200, "{exited}");

    // Plain HTTP on the TLS port: the handshake fails, no HTTP answer comes back.
    let plain_url = app.url("/health").replacen("https://", "http://", 1);
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let refused = plain.get(&plain_url).send().await;
    assert!(refused.is_err(), "plain HTTP answered: {refused:?}");
    // The same over a raw socket: whatever comes back (a TLS alert, or nothing) is not HTTP.
    let address = app.address.trim_start_matches("https://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&address).await.unwrap();
    raw.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // A client that does not trust the CA is refused too.
    let stranger = client_trusting(&Pki::new("stranger").ca_pem);
    assert!(health(&stranger, &app).await.is_err());
    // And the listener still serves after all that.
    assert_eq!(health(&app.client, &app).await, Ok(200));
    app.stop().await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let first = Pki::new("first");
    let dir = Dir::new("tls-rotate");
    dir.write("cert.pem", &first.cert_pem);
    dir.write("key.pem", &first.key_pem);
    let app = spawn_https(&dir, &first.ca_pem).await;
    let trusts_first = || client_trusting(&first.ca_pem);
    assert_eq!(health(&trusts_first(), &app).await, Ok(200));

    // Renewal under a second CA: new connections get the new pair.
    let second = Pki::new("second");
    let trusts_second = || client_trusting(&second.ca_pem);
    assert!(health(&trusts_second(), &app).await.is_err());
    dir.write("key.pem", &second.key_pem);
    dir.write("cert.pem", &second.cert_pem);
    eventually("the second CA's certificate", || async {
        health(&trusts_second(), &app).await == Ok(200)
    })
    .await;
    let old = health(&trusts_first(), &app).await;
    assert!(old.is_err(), "the old certificate is still served: {old:?}");

    // A third certificate with a broken key file: the reload refuses the pair and keeps
    // serving the second one.
    let third = Pki::new("third");
    let trusts_third = || client_trusting(&third.ca_pem);
    dir.write("cert.pem", &third.cert_pem);
    dir.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
    );
    // Several reload periods pass with the broken pair in place.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(health(&trusts_second(), &app).await, Ok(200));
    assert!(health(&trusts_third(), &app).await.is_err());
    // The key repaired: the loop is still alive and takes the third pair.
    dir.write("key.pem", &third.key_pem);
    eventually("the third CA's certificate", || async {
        health(&trusts_third(), &app).await == Ok(200)
    })
    .await;
    assert!(health(&trusts_second(), &app).await.is_err());
    app.stop().await;
}

/// A fake edge speaking only HTTPS on 127.0.0.1:0 with `pki`'s server pair: each request it
/// receives (head and body, as text) goes to `requests`; failed handshakes are counted.
struct HttpsEdge {
    url: String,
    requests: mpsc::UnboundedReceiver<String>,
    handshake_failures: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpsEdge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn https_edge(pki: &Pki) -> HttpsEdge {
    let chain = CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(origin::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let (sender, requests) = mpsc::unbounded_channel();
    let handshake_failures = Arc::new(AtomicUsize::new(0));
    let failures = handshake_failures.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    failures.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                if let Some(request) = read_request(&mut tls).await {
                    let _ = sender.send(request);
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    HttpsEdge {
        url,
        requests,
        handshake_failures,
        task,
    }
}

/// One HTTP/1.1 request with a `content-length` body, as text (`None` if the peer goes away).
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

const NOTIFY_SECRET: &str = "tls-test-edge-notify-secret";

/// A plain-HTTP origin whose exit notices go to `edge` trusting the CA file at `ca_file`.
async fn spawn_notifying(edge: &HttpsEdge, ca_file: &str) -> TestApp {
    let mut settings = common::settings("eu");
    settings.notify = NotifySettings::from_lookup(lookup(&[
        ("EDGE_NOTIFY_URL", &edge.url),
        ("EDGE_NOTIFY_SECRET", NOTIFY_SECRET),
        ("EDGE_NOTIFY_CA_FILE", ca_file),
    ]))
    .expect("the notice settings are valid");
    assert!(settings.notify.is_some());
    common::spawn_app_with(settings).await
}

/// The origin's `seedsync_edge_notices_total` for `outcome`.
async fn notices(app: &TestApp, outcome: &str) -> f64 {
    let label = format!("outcome=\"{outcome}\"");
    app.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("seedsync_edge_notices_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Starts and exits a game on `app`; the exit's answer is checked, the game id returned.
async fn play_and_exit(app: &TestApp) -> String {
    let user = unique_user("tls-notice");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    let (status, exited) = app
        .post(
            "/game/exit",
            &json!({"gameId": game["gameId"], "userId": user}),
        )
        .await;
    assert_eq!(status, 200, "{exited}");
    game["gameId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn exit_notices_reach_an_https_edge_whose_ca_is_trusted() {
    let pki = Pki::new("edge");
    let dir = Dir::new("tls-notice");
    let ca_file = dir.write("edge-ca.pem", &pki.ca_pem);
    let mut edge = https_edge(&pki).await;
    let app = spawn_notifying(&edge, &ca_file).await;

    let game_id = play_and_exit(&app).await;
    let request = tokio::time::timeout(RELOAD_WAIT, edge.requests.recv())
        .await
        .expect("the edge received no notice")
        .unwrap();
    let head = request.lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        head,
        format!("POST /edge/internal/game/{game_id}/exited HTTP/1.1")
    );
    let secret_header = format!("{}: {NOTIFY_SECRET}", api::room::NOTIFY_SECRET_HEADER);
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&secret_header.to_ascii_lowercase()),
        "{request}"
    );
    let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(body["exitedAt"].as_i64().is_some(), "{body}");
    eventually("the notice counted as sent", || async {
        notices(&app, "sent").await == 1.0
    })
    .await;
    assert_eq!(notices(&app, "failed").await, 0.0);
    assert_eq!(edge.handshake_failures.load(Ordering::SeqCst), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_https_edge_with_an_untrusted_certificate_gets_no_notice_and_the_exit_succeeds() {
    let pki = Pki::new("edge-untrusted");
    let dir = Dir::new("tls-notice-untrusted");
    // EDGE_NOTIFY_CA_FILE names another CA than the one that signed the edge's certificate.
    let ca_file = dir.write("other-ca.pem", &Pki::new("other").ca_pem);
    let mut edge = https_edge(&pki).await;
    let app = spawn_notifying(&edge, &ca_file).await;

    play_and_exit(&app).await;
    eventually("the notice counted as failed", || async {
        notices(&app, "failed").await == 1.0
    })
    .await;
    assert_eq!(notices(&app, "sent").await, 0.0);
    assert!(edge.handshake_failures.load(Ordering::SeqCst) >= 1);
    assert!(
        edge.requests.try_recv().is_err(),
        "the edge got a request over an untrusted connection"
    );
    app.stop().await;
}
