//! What every handler can reach: [`AppState`], built from the settings over a store.
//!
//! Its own module so the routes (which read it) and the wiring in [`crate::startup`] (which
//! builds the routers from it) both sit above it, and nothing it uses looks back at either.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::AuthSettings;
use crate::config::Settings;
use crate::edge_auth::EdgeAuth;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::notify::EdgeNotifier;
use crate::outbox::Outbox;
use crate::registry::{MemoryRegistry, RegionRegistry, Registry};
use crate::runtime::{MemorySettingsStore, Runtime, SettingsStore, Values};
use crate::service::GameService;
use crate::store::GameStore;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The game service (store, region, defaults).
    pub service: Arc<GameService>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Requests slower than this are answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Connections slower than this to send a request's headers are closed.
    pub header_read_timeout: Duration,
    /// Owner tokens: issued by starts, required by exits.
    pub auth: Arc<AuthSettings>,
    /// Per-client budgets and the in-flight cap.
    pub limits: Arc<Limits>,
    /// Which requests come from the edge, with the replay guard every request shares (also
    /// held by [`Limits`], which asks it for the client address).
    pub edge_auth: Arc<EdgeAuth>,
    /// The live region registry (in memory until [`AppState::with_registry`]).
    pub registry: Registry,
    /// The runtime settings (in memory until [`AppState::with_settings_store`]).
    pub runtime: Arc<Runtime>,
    /// The leaderboard `GET /leaderboard` reads (in memory until
    /// [`AppState::with_leaderboard`]).
    pub leaderboard: Arc<dyn crate::leaderboard::LeaderboardStore>,
    /// Where tournaments live (in memory until [`AppState::with_tournaments`]).
    pub tournaments: Arc<dyn crate::tournament::TournamentStore>,
}

impl AppState {
    /// State for the given settings over a store (Cassandra's [`crate::store::Store`], or a
    /// test's fake).
    pub fn new(settings: &Settings, store: impl GameStore + 'static) -> AppState {
        AppState::with_store(settings, Arc::new(store))
    }

    /// State for the given settings over a shared store.
    pub fn with_store(settings: &Settings, store: Arc<dyn GameStore>) -> AppState {
        AppState::build(settings, store, None)
    }

    pub(crate) fn build(
        settings: &Settings,
        store: Arc<dyn GameStore>,
        outbox: Option<Outbox>,
    ) -> AppState {
        let metrics = Arc::new(Metrics::new(settings.region.as_str()));
        let mut service = GameService::new(
            store,
            settings.region.clone(),
            settings.games,
            metrics.clone(),
        );
        if let Some(outbox) = outbox {
            service = service.with_outbox(outbox);
        }
        // Exit notices are sent only after the commit (GameService::exit), off the request path.
        service = service.with_notifier(
            settings
                .notify
                .clone()
                .map(|n| EdgeNotifier::new(n, metrics.clone())),
        );
        let edge_auth = Arc::new(
            EdgeAuth::new(settings.edge_auth.clone()).with_counter(metrics.edge_auth.clone()),
        );
        let limits = Limits::new(settings.limits.clone())
            .with_counter(metrics.rate_limited.clone())
            .with_edge_auth(edge_auth.clone());
        let service = Arc::new(service);
        let limits = Arc::new(limits);
        let runtime = Runtime::new(
            settings.runtime_env.0.clone(),
            Values {
                limits: settings.limits.clone(),
                games: settings.games,
                v1_stop_requires_token: settings.auth.v1_stop_requires_token,
            },
            Arc::new(MemorySettingsStore::default()),
            limits.clone(),
            service.clone(),
            metrics.clone(),
        );
        AppState {
            service,
            leaderboard: Arc::new(crate::leaderboard::MemoryLeaderboard::default()),
            tournaments: Arc::new(crate::tournament::MemoryTournaments::default()),
            runtime: Arc::new(runtime),
            metrics,
            request_timeout: settings.request_timeout,
            header_read_timeout: settings.header_read_timeout,
            auth: Arc::new(settings.auth.clone()),
            limits,
            edge_auth,
            registry: Registry {
                store: Arc::new(MemoryRegistry::default()),
                settings: settings.registry.clone(),
                load: Arc::default(),
            },
        }
    }

    /// The same state keeping its runtime settings in `store` (Cassandra's, in the binary).
    pub fn with_settings_store(mut self, store: Arc<dyn SettingsStore>) -> AppState {
        self.runtime = Arc::new(self.runtime.with_store(store));
        self
    }

    /// The same state reading the leaderboard from `store` (Cassandra's, in the binary).
    pub fn with_leaderboard(
        mut self,
        store: Arc<dyn crate::leaderboard::LeaderboardStore>,
    ) -> AppState {
        self.leaderboard = store;
        self
    }

    /// The same state keeping tournaments in `store` (Cassandra's, in the binary).
    pub fn with_tournaments(
        mut self,
        store: Arc<dyn crate::tournament::TournamentStore>,
    ) -> AppState {
        self.tournaments = store;
        self
    }

    /// The same state over another region registry (Cassandra's, in the binary).
    pub fn with_registry(mut self, store: Arc<dyn RegionRegistry>) -> AppState {
        self.registry.store = store;
        self
    }
}
