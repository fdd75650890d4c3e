//! The origin binary: settings from the environment, then serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use origin::config::Settings;
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
    let (state, relay) = match state_with_events(&settings, store).await {
        Ok(wired) => wired,
        Err(error) => {
            eprintln!("origin: {error} (check NATS_URL)");
            return ExitCode::from(1);
        }
    };
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
