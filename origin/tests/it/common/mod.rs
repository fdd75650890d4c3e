//! Test helpers. Both build the origin as the binary does ([`Application::build`]); only the
//! settings differ (see [`test_wiring`]).
//!
//! - `spawn_app()`: a real origin on 127.0.0.1:0 against the real Cassandra named by
//!   `CASSANDRA_HOSTS` (default 127.0.0.1:9042), in a keyspace unique to this test run.
//! - `InProcess`: the application on [`MemoryStore`] ([`StoreChoice::Memory`]), its router
//!   driven with `tower::ServiceExt::oneshot` (no socket, no Cassandra).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use origin::config::Settings;
use origin::store::memory::MemoryStore;
use origin::store::{Store, StoreChoice};
use origin::{Application, StartupError};
use serde_json::Value;
use tokio::sync::{Mutex, oneshot};
use tower::ServiceExt;

pub mod sweep;

/// One keyspace per test process, so runs never see each other's data.
pub static KEYSPACE: LazyLock<String> = LazyLock::new(|| {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test_{}_{:x}", std::process::id(), nanos & 0xffff_ffff)
});

/// Schema creation is serialized: concurrent DDL from many tests only adds noise.
static CONNECT: Mutex<()> = Mutex::const_new(());

pub fn settings(region: &str) -> Settings {
    test_wiring(Settings::from_map(&base_vars(region)).expect("test settings are valid"))
}

/// The variables every test origin of `region` starts from: loopback, any port, the run's
/// keyspace, and [`test_vars`].
fn base_vars(region: &str) -> HashMap<String, String> {
    // reqwest has no crypto provider of its own in this build (see the function); every test
    // starts from these settings, before any client is built.
    origin::tls::install_default_provider();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("HOST".into(), "127.0.0.1".into());
    vars.insert("PORT".into(), "0".into());
    vars.insert("REGION".into(), region.into());
    vars.insert("CASSANDRA_KEYSPACE".into(), KEYSPACE.clone());
    vars.insert(
        "CASSANDRA_HOSTS".into(),
        std::env::var("CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1:9042".into()),
    );
    vars.insert("CASSANDRA_TIMEOUT_SECONDS".into(), "10".into());
    if let Ok(serial) = std::env::var("CASSANDRA_SERIAL_CONSISTENCY") {
        vars.insert("CASSANDRA_SERIAL_CONSISTENCY".into(), serial);
    }
    vars.extend(test_vars());
    vars
}

/// Test settings for `region` with `extra` variables on top.
pub fn settings_with(region: &str, extra: &[(&str, &str)]) -> Settings {
    let mut vars = base_vars(region);
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    test_wiring(Settings::from_map(&vars).expect("test settings are valid"))
}

/// What the tests change in the production wiring: a missing Cassandra fails at once
/// instead of being retried for a minute, and the origin does not join the shared region
/// registry (each keeps an empty one in memory, which the registry tests expect, and no test
/// origin heartbeats into the keyspace the other tests share).
pub fn test_wiring(mut settings: Settings) -> Settings {
    settings.store = StoreChoice::Cassandra { retries: 0 };
    settings.registry.heartbeat = false;
    settings
}

/// The owner-token secret every test origin shares (as the regions of a deployment do).
pub const TEST_SECRET: &str = "seedsync-integration-tests-owner-token-secret";

/// What every test app sets beyond the defaults: the shared secret, and no per-client budgets
/// (all test traffic comes from 127.0.0.1; the limits have tests of their own).
pub fn test_vars() -> Vec<(String, String)> {
    [
        ("OWNER_TOKEN_SECRET", TEST_SECRET),
        ("RATE_LIMIT_START", "off"),
        ("RATE_LIMIT_READ", "off"),
        // Load tests (events::) keep more than 32 requests of one client in flight on a loaded
        // machine; abuse.rs sets this itself.
        ("MAX_IN_FLIGHT_PER_CLIENT", "off"),
        ("METADATA_BUDGET_BYTES_PER_MINUTE", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A start's answer as reads show the same game: without `ownerToken` / `owner_token`.
pub fn without_owner_token(view: &Value) -> Value {
    let mut view = view.clone();
    if let Some(object) = view.as_object_mut() {
        object.remove("ownerToken");
        object.remove("owner_token");
    }
    view
}

/// A genuine owner token of `game_id` for `user`, as the test origins issue them.
pub fn owner_token(game_id: &str, user: &str) -> String {
    let keys = owner_token::Keyring::new(TEST_SECRET.as_bytes(), &[], owner_token::DEFAULT_TTL_MS)
        .unwrap();
    keys.issue(game_id, user, now_ms())
}

/// `Authorization: Bearer` for the player named in an exit body (`gameId`, `userId`), so the
/// tests about other things can exit as the owner; the owner-token tests (auth.rs) send
/// exactly what they mean to.
fn owner_header(path: &str, body: &Value) -> Option<String> {
    if path != "/game/exit" {
        return None;
    }
    let game = body.get("gameId")?.as_str()?;
    let user = body.get("userId")?.as_str()?;
    Some(format!("Bearer {}", owner_token(game, user)))
}

pub async fn connect(settings: &Settings) -> Store {
    let _guard = CONNECT.lock().await;
    sweep::sweep_stale_test_keyspaces().await;
    Store::connect(&settings.cassandra).await.unwrap_or_else(|e| {
        panic!("{e}\nThe origin's integration tests need a real Cassandra: run `scripts/cassandra.sh start` (make test does)")
    })
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), StartupError>>>,
}

pub async fn spawn_app(region: &str) -> TestApp {
    spawn_app_with(settings(region)).await
}

/// The origin of `settings` (which must name 127.0.0.1 and a port, 0 for any), built as the
/// binary builds it; schema creation is serialized (see `CONNECT`).
pub async fn build(settings: Settings) -> Application {
    let _guard = CONNECT.lock().await;
    sweep::sweep_stale_test_keyspaces().await;
    Application::build(settings).await.unwrap_or_else(|e| {
        panic!("{e}\nThe origin's integration tests need a real Cassandra: run `scripts/cassandra.sh start` (make test does)")
    })
}

/// The origin of `settings` (see [`build`]), served until [`TestApp::stop`].
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let application = build(settings).await;
    let address = format!("http://{}", application.local_addr());
    let store = application
        .cassandra_store()
        .expect("spawn_app runs on Cassandra")
        .clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        store,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POST JSON; exits carry the owner's token (see `owner_header`).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(auth) = owner_header(path, body) {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn start(&self, user: &str) -> (u16, Value) {
        self.post("/game/start", &serde_json::json!({ "userId": user }))
            .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

pub fn unique_user(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub use kernel::clock::now_ms;

/// An answer of the in-process app.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

/// The application over an in-memory store, driven without its socket.
pub struct InProcess {
    pub store: Arc<MemoryStore>,
    pub router: axum::Router,
}

impl InProcess {
    /// Default settings (region `eu`), with this request timeout.
    pub async fn new(request_timeout: std::time::Duration) -> InProcess {
        origin::tls::install_default_provider();
        let mut vars: HashMap<String, String> = test_vars().into_iter().collect();
        vars.insert("HOST".into(), "127.0.0.1".into());
        vars.insert("PORT".into(), "0".into());
        let mut settings = test_wiring(Settings::from_map(&vars).expect("default settings"));
        settings.request_timeout = request_timeout;
        settings.store = StoreChoice::Memory;
        let application = Application::build(settings)
            .await
            .expect("the in-memory application builds");
        InProcess {
            store: application
                .memory_store()
                .expect("StoreChoice::Memory")
                .clone(),
            router: application.router(),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// `method path` with an optional content type and a body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        self.send(request.body(body.into()).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None, Body::empty()).await
    }

    /// POST JSON; exits carry the owner's token (see `owner_header`).
    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let mut request = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json");
        if let Some(auth) = owner_header(path, body) {
            request = request.header("authorization", auth);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text
    }
}
