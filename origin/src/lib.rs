//! seedsync origin: the regional service that creates game sessions and stores them in
//! Apache Cassandra.
//!
//! It speaks the shared HTTP contract of the `api` crate (one source for types, limits and
//! error codes, shared with the edge) in two dialects over the same games: the game API
//! (`/game/*`) and the session-service API of the design documents (`/v1/sessions`).
//!
//! Layers, each in its module: [`routes`] translate HTTP to and from [`service`] calls, the
//! service decides (one active game per user, idempotent starts, counting), [`store`] persists
//! behind the [`store::GameStore`] seam, [`domain`] holds the game record, [`outbox`] queues
//! game events with the game and relays them to NATS JetStream. [`application`] wires them
//! into the running origin (store with connect retries, region registry and heartbeat, event
//! relay, graceful shutdown): `main.rs` only hands its arguments to [`cli`] (`--help`,
//! `--version`, `check-config`) or reads the settings, builds an [`Application`] and runs it
//! until SIGTERM. The integration tests build the same [`Application`], on the real
//! cluster or (with [`store::StoreChoice::Memory`]) on [`store::memory::MemoryStore`].
#![warn(missing_docs)]

pub mod application;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod edge_auth;
pub mod env;
pub mod error;
pub mod leaderboard;
pub mod limits;
pub mod max_age;
pub mod metrics;
pub mod notify;
pub mod otlp;
pub mod outbox;
pub mod registry;
pub mod retention;
pub mod routes;
pub mod runtime;
pub mod sealed;
pub mod server;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod test_fixtures;
pub mod tls;
pub mod tournament;
pub mod verify;

pub use application::{Application, StartupError};
pub use startup::{app, run};
pub use state::AppState;
