//! seedsync origin: the regional service that creates game sessions and stores them in
//! Apache Cassandra.
//!
//! `main.rs` only reads settings and calls [`startup::run`]; everything else is here so tests
//! and benchmarks can build the app against a real cluster.

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use startup::{AppState, app, run};
