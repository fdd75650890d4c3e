//! seedsync edge Worker: routes `/edge/game/*` to the right regional origin, caches reads for a
//! TTL and fails over between regions.
//!
//! The HTTP contract (request bodies, ids, limits, views, error codes) is the shared [`api`]
//! crate, so the edge answers a bad input exactly as the origin does. Everything that decides
//! something here (configuration, region selection, TTL arithmetic, the circuit breaker,
//! failover order, backoff, request checks, what an origin answer must look like, game states
//! computed with the shared engine) is plain Rust in the modules below, compiled and
//! unit-tested natively. Only `wasm` (built for `wasm32` only) touches the Workers runtime:
//! the fetch handler, outbound `fetch`, the Cache API, the live region table's refresh, and the
//! live game rooms (a Durable Object per game, whose decisions are in [`room`]).
#![warn(missing_docs)]

pub mod backoff;
pub mod breaker;
pub mod cache_policy;
pub mod config;
pub mod engine_state;
pub mod ids;
pub mod live;
pub mod memo;
pub mod origin;
pub mod rate_limit;
pub mod request;
pub mod reveal;
pub mod room;
pub mod roster;
pub mod routes;
pub mod routing;
pub mod telemetry;
pub mod user_auth;
pub mod views;

#[cfg(target_arch = "wasm32")]
mod wasm;
