//! The whole origin as one value: [`Application::build`] wires what the binary serves and
//! binds its listener, [`Application::run_until_stopped`] serves until a shutdown future
//! resolves, drains, and gives the event relay its last pass.
//!
//! The binary and the integration tests build it the same way, so the tests run the
//! production wiring; the settings decide the differences: [`StoreChoice`] (Cassandra, or
//! memory for the fast tests), `registry.heartbeat` (join the shared region registry and
//! heartbeat into it), `events` (the outbox and its relay to NATS).
//!
//! Order of the wiring, as the binary always did it: the store (Cassandra may still be
//! starting, so a refused connection is retried), the listener, the region registry, the
//! events. The heartbeat starts with serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::outbox::RelayHandle;
use crate::registry::{self, cassandra::CassandraRegistry};
use crate::runtime::CassandraSettingsStore;
use crate::startup::{self, state_with_events};
use crate::state::AppState;
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreChoice, StoreError};

/// How long apart the attempts to reach a Cassandra that is still starting are.
const CONNECT_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// How long the relay's last pass may take after the requests drained.
const RELAY_LAST_PASS: Duration = Duration::from_secs(5);

/// Why the origin could not start, or stopped with an error. Each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Cassandra never answered, or its schema is not the version this origin knows (or could
    /// not be migrated with `SCHEMA_AUTO_MIGRATE`).
    #[error("{0}")]
    Store(StoreError),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source} (check HOST and PORT)")]
    Listen {
        /// `HOST:PORT`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The region registry's tables could not be prepared.
    #[error("{0}")]
    Registry(StoreError),
    /// The events wiring failed.
    #[error("{0} (check NATS_URL)")]
    Events(events::EventsError),
    /// Events need the outbox, which lives in Cassandra.
    #[error("NATS_URL needs the Cassandra store: the outbox lives there")]
    EventsNeedCassandra,
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The store the application runs on, for the tests that look behind the HTTP API.
#[derive(Debug, Clone)]
enum Backing {
    Cassandra(Store),
    Memory(Arc<MemoryStore>),
}

/// A wired origin with its listener bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    backing: Backing,
    tasks: Tasks,
}

impl Application {
    /// Wires the origin for `settings` and binds `HOST:PORT`.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        Application::assemble(settings, None).await
    }

    /// Wires the origin for `settings` on a listener the caller bound (its `HOST`/`PORT` are
    /// then not used for binding).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Application, StartupError> {
        Application::assemble(settings, Some(listener)).await
    }

    async fn assemble(
        settings: Settings,
        listener: Option<TcpListener>,
    ) -> Result<Application, StartupError> {
        // Before any HTTP client is built (exit notices; see the function).
        crate::tls::install_default_provider();
        announce_owner_tokens(&settings);
        let backing = match settings.store {
            StoreChoice::Cassandra { retries } => {
                Backing::Cassandra(connect_store(&settings, retries).await?)
            }
            StoreChoice::Memory => Backing::Memory(Arc::new(MemoryStore::default())),
        };
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind((settings.host, settings.port))
                .await
                .map_err(|source| StartupError::Listen {
                    address: format!("{}:{}", settings.host, settings.port),
                    source,
                })?,
        };
        let address = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                address: format!("{}:{}", settings.host, settings.port),
                source,
            })?;
        let mut leaderboard_task = None;
        let (state, relay) = match &backing {
            Backing::Cassandra(store) => {
                // The registry shares the games keyspace; without it the origin still serves
                // games, but nobody learns it is alive, so failing here is the honest answer.
                let registry = if settings.registry.heartbeat {
                    Some(
                        CassandraRegistry::connect(store.clone(), &settings.cassandra.keyspace)
                            .await
                            .map_err(StartupError::Registry)?,
                    )
                } else {
                    None
                };
                let (state, relay) = state_with_events(&settings, store.clone())
                    .await
                    .map_err(StartupError::Events)?;
                state.metrics.register(store.statement_latency());
                // Every origin of the keyspace shares one settings history.
                let runtime_store =
                    CassandraSettingsStore::connect(store.clone(), &settings.cassandra.keyspace)
                        .await
                        .map_err(StartupError::Store)?;
                let state = state.with_settings_store(Arc::new(runtime_store));
                let leaderboard_store = Arc::new(
                    crate::leaderboard::CassandraLeaderboard::connect(
                        store.clone(),
                        &settings.cassandra.keyspace,
                    )
                    .await
                    .map_err(StartupError::Store)?,
                );
                let state = state.with_leaderboard(leaderboard_store.clone());
                let state = state.with_tournaments(Arc::new(
                    crate::tournament::CassandraTournaments::connect(
                        store.clone(),
                        &settings.cassandra.keyspace,
                    )
                    .await
                    .map_err(StartupError::Store)?,
                ));
                if let (Some(leaderboard), Some(events)) = (&settings.leaderboard, &settings.events)
                {
                    let client = events::connect(
                        &events.nats_url,
                        &format!("seedsync-leaderboard-{}", settings.region),
                        false,
                    )
                    .await
                    .map_err(StartupError::Events)?;
                    leaderboard_task = Some(crate::leaderboard::consumer::spawn(
                        client,
                        leaderboard.clone(),
                        leaderboard_store,
                        state.metrics.clone(),
                    ));
                }
                match registry {
                    Some(registry) => (state.with_registry(Arc::new(registry)), relay),
                    None => (state, relay),
                }
            }
            Backing::Memory(store) => {
                if settings.events.is_some() {
                    return Err(StartupError::EventsNeedCassandra);
                }
                (AppState::with_store(&settings, store.clone()), None)
            }
        };
        // Serve the stored runtime settings from the first request on. Not fatal: the poller
        // keeps trying, and until then the environment's values hold.
        if let Err(error) = state.runtime.refresh().await {
            tracing::warn!(%error, "cannot read the runtime settings yet; the environment's values hold");
        }
        Ok(Application {
            settings,
            listener,
            address,
            state,
            backing,
            tasks: Tasks {
                heartbeat: None,
                relay,
                settings: None,
                leaderboard: leaderboard_task,
            },
        })
    }

    /// The address it listens on (with the port the system picked for `PORT=0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Whether the leaderboard consumer runs (`LEADERBOARD_CONSUMER` and `NATS_URL` set).
    pub fn keeps_leaderboard(&self) -> bool {
        self.tasks.leaderboard.is_some()
    }

    /// Whether the game-event relay runs (`NATS_URL` set).
    pub fn relays_events(&self) -> bool {
        self.tasks.relay.is_some()
    }

    /// The state every handler sees.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The HTTP application over the same state, to drive without the socket (in-process
    /// tests with `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        startup::app(self.state.clone())
    }

    /// The Cassandra store, when it runs on one.
    pub fn cassandra_store(&self) -> Option<&Store> {
        match &self.backing {
            Backing::Cassandra(store) => Some(store),
            Backing::Memory(_) => None,
        }
    }

    /// The in-memory store, when it runs on one ([`StoreChoice::Memory`]).
    pub fn memory_store(&self) -> Option<&Arc<MemoryStore>> {
        match &self.backing {
            Backing::Memory(store) => Some(store),
            Backing::Cassandra(_) => None,
        }
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and gives the relay
    /// one last pass at what they queued. Heartbeats run while it serves (when the settings
    /// enable them).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Application {
            settings,
            listener,
            address,
            state,
            mut tasks,
            ..
        } = self;
        tasks.heartbeat = settings.registry.heartbeat.then(|| {
            tokio::spawn(registry::heartbeat_loop(
                state.registry.clone(),
                settings.region.clone(),
                state.metrics.clone(),
            ))
        });
        tasks.settings = Some(state.runtime.spawn_poller());
        tracing::info!(%address, tls = settings.tls.is_some(), region = settings.region.as_str(),
            keyspace = %settings.cassandra.keyspace,
            events = settings.events.as_ref().map(|e| kernel::redact_url(&e.nats_url)), "origin listening");
        let served = startup::run_with_tls(listener, state, settings.tls.as_ref(), shutdown).await;
        if let Some(heartbeat) = tasks.heartbeat.take() {
            heartbeat.abort();
        }
        if let Some(poller) = tasks.settings.take() {
            poller.abort();
        }
        // After the drain: the relay gets one last pass at what the drained requests queued.
        if let Some(leaderboard) = tasks.leaderboard.take() {
            leaderboard.abort();
        }
        if let Some(relay) = tasks.relay.take() {
            relay.shutdown(RELAY_LAST_PASS).await;
        }
        served.map_err(StartupError::Serve)?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The background tasks of an application. Should it be dropped unserved, or serving be
/// abandoned (its future dropped, as a test's simulated crash does), they stop where they
/// are: nothing outlives the application, and the relay gets no last pass.
#[derive(Debug)]
struct Tasks {
    heartbeat: Option<JoinHandle<()>>,
    relay: Option<RelayHandle>,
    /// The runtime settings poller.
    settings: Option<JoinHandle<()>>,
    /// The leaderboard consumer (aborted with the tasks: it acknowledges only what it wrote).
    leaderboard: Option<crate::leaderboard::LeaderboardHandle>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        if let Some(poller) = self.settings.take() {
            poller.abort();
        }
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}

/// Warns loudly about a per-process owner-token key, and logs which keys are in use.
fn announce_owner_tokens(settings: &Settings) {
    if settings.auth.source == owner_token::env::KeySource::Ephemeral {
        // Loud on purpose: such tokens die with this process and no other origin accepts them.
        let warning = "OWNER_TOKEN_SECRET is not set: owner tokens use a random key of this \
                       process only (they stop working at restart and in other regions). \
                       Set OWNER_TOKEN_SECRET (32+ bytes, the same on every origin); \
                       SEEDSYNC_ENV=production makes this fatal.";
        eprintln!("origin: WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    tracing::info!(
        kids = ?settings.auth.keyring.kids().collect::<Vec<_>>(),
        v1_stop_requires_token = settings.auth.v1_stop_requires_token,
        "owner tokens"
    );
}

/// Connects to Cassandra, retrying `retries` times while it may still be starting (compose,
/// `make up`).
async fn connect_store(settings: &Settings, retries: u32) -> Result<Store, StartupError> {
    let mut attempt = 0;
    loop {
        match Store::connect(&settings.cassandra).await {
            Ok(store) => return Ok(store),
            // A wrong schema version does not fix itself by waiting: say so at once.
            Err(error)
                if attempt < retries && !matches!(error, StoreError::SchemaVersion { .. }) =>
            {
                attempt += 1;
                tracing::warn!(%error, attempt, "Cassandra not reachable yet; retrying in 2 s");
                tokio::time::sleep(CONNECT_RETRY_PAUSE).await;
            }
            Err(error) => {
                tracing::error!(%error, "giving up on Cassandra");
                return Err(StartupError::Store(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn memory_settings(extra: &[(&str, &str)]) -> Settings {
        let mut vars: HashMap<String, String> = [("HOST", "127.0.0.1"), ("PORT", "0")]
            .iter()
            .chain(extra)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.insert("OWNER_TOKEN_SECRET".into(), "x".repeat(32));
        let mut settings = Settings::from_map(&vars).unwrap();
        settings.store = StoreChoice::Memory;
        settings
    }

    #[tokio::test]
    async fn a_memory_application_serves_heartbeats_and_stops() {
        let application = Application::build(memory_settings(&[])).await.unwrap();
        assert!(application.memory_store().is_some());
        assert!(application.cassandra_store().is_none());
        assert!(!application.relays_events());
        let address = application.local_addr();
        assert_ne!(application.port(), 0, "the system picked a port");
        let registry = application.state().registry.store.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let health = reqwest::get(format!("http://{address}/health"))
            .await
            .unwrap();
        assert_eq!(health.status().as_u16(), 200);
        // The first heartbeat is immediate: the in-memory registry soon lists this region.
        let mut listed = registry.list().await.unwrap();
        for _ in 0..100 {
            if !listed.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            listed = registry.list().await.unwrap();
        }
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].name.as_str(), "eu");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn events_need_the_cassandra_store() {
        let settings = memory_settings(&[("NATS_URL", "nats://127.0.0.1:4222")]);
        let error = Application::build(settings).await.unwrap_err();
        assert!(
            matches!(error, StartupError::EventsNeedCassandra),
            "{error}"
        );
    }
}
