//! The origin binary: settings from the environment, then serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use origin::config::Settings;
use origin::registry::{self, cassandra::CassandraRegistry};
use origin::startup::{run, shutdown_signal, state_with_events};
use origin::store::Store;
use origin::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("origin: {error}");
            tracing::error!(variable = error.variable, %error, "invalid configuration");
            return ExitCode::from(2);
        }
    };
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
    // Cassandra may still be starting (compose, make up): retry for about a minute.
    let mut attempt = 0;
    let store = loop {
        match Store::connect(&settings.cassandra).await {
            Ok(store) => break store,
            Err(error) if attempt < 30 => {
                attempt += 1;
                tracing::warn!(%error, attempt, "Cassandra not reachable yet; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => {
                eprintln!("origin: {error}");
                tracing::error!(%error, "giving up on Cassandra");
                return ExitCode::from(1);
            }
        }
    };
    let listener = match tokio::net::TcpListener::bind((settings.host, settings.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "origin: cannot listen on {}:{}: {error} (check HOST and PORT)",
                settings.host, settings.port
            );
            return ExitCode::from(1);
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The registry shares the games keyspace; without it the origin still serves games, but
    // nobody learns it is alive, so failing here is the honest answer.
    let registry =
        match CassandraRegistry::connect(store.clone(), &settings.cassandra.keyspace).await {
            Ok(registry) => registry,
            Err(error) => {
                eprintln!("origin: {error}");
                return ExitCode::from(1);
            }
        };
    let (state, relay) = match state_with_events(&settings, store).await {
        Ok(wired) => wired,
        Err(error) => {
            eprintln!("origin: {error} (check NATS_URL)");
            return ExitCode::from(1);
        }
    };
    let state = state.with_registry(std::sync::Arc::new(registry));
    let metrics = state.metrics.clone();
    tokio::spawn(registry::heartbeat_loop(
        state.registry.clone(),
        settings.region.clone(),
        move || metrics.sessions_started.get(),
    ));
    tracing::info!(%address, region = settings.region.as_str(), keyspace = %settings.cassandra.keyspace,
        events = settings.events.as_ref().map(|e| e.nats_url.as_str()), "origin listening");
    let served = run(listener, state, shutdown_signal()).await;
    // After the drain: the relay gets one last pass at what the drained requests queued.
    if let Some(relay) = relay {
        relay.shutdown(Duration::from_secs(5)).await;
    }
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("origin: server error: {error}");
            ExitCode::from(1)
        }
    }
}
