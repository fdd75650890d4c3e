//! The origin's integration tests, one binary (`cargo test -p origin --test it`): one build
//! and link of scylla and axum instead of one per file. Each file is a module; filter by it
//! (`cargo test -p origin --test it -- auth::`).
//!
//! `events::` and `multi_dc::` are ignored by default: they need nats-server and the
//! three-datacenter cluster, and `make test` runs them in stages of their own
//! (`-- --ignored events::`, `-- --ignored multi_dc::`). `tls_cassandra::` is ignored too: it
//! needs the TLS-only node of `scripts/cassandra.sh start-tls` (`make test`'s tls stage).

mod common;

mod abuse;
mod api;
mod auth;
mod cli;
mod compat;
mod compose;
mod edge_auth;
mod events;
mod in_process;
mod leaderboard;
mod max_age;
mod migrations;
mod multi_dc;
mod openapi;
mod ops;
mod process;
mod registry;
mod retention;
mod sealed;
mod seats;
mod settings;
mod storage_failure;
mod tls;
mod tls_cassandra;
mod tournament;
