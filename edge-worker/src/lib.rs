//! seedsync edge Worker: routes `/edge/game/*` to the right regional origin, caches reads for a
//! TTL and fails over between regions.
//!
//! Everything that decides something (configuration, region selection, the country table, TTL
//! arithmetic, the circuit breaker, failover order, backoff, request validation, error bodies,
//! game states computed with the shared engine) is
//! plain Rust in the modules below, compiled and unit-tested natively. Only [`wasm`] (built for
//! `wasm32` only) touches the Workers runtime: the fetch handler, outbound `fetch`, the Cache API.

pub mod backoff;
pub mod breaker;
pub mod cache_policy;
pub mod config;
pub mod countries;
pub mod engine_state;
pub mod error;
pub mod ids;
pub mod memo;
pub mod rate_limit;
pub mod routes;
pub mod routing;
pub mod validate;

#[cfg(target_arch = "wasm32")]
mod wasm;
