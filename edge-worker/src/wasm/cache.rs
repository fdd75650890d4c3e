//! The Workers Cache API (`caches.default`) under the edge's own freshness rule (see
//! [`crate::cache_policy`]): entries carry their store time, and a TTL of 0 disables caching.
//! A cache failure only costs a future miss, so failures are logged, never answered.

use worker::{Cache, Headers, Response};

use super::context::now_ms;
use crate::cache_policy::{self, STORED_AT_HEADER};
use crate::config::Config;

/// A fresh cached body under `key`, and its store time (Unix ms), if any.
pub(super) async fn get(cfg: &Config, key: &str) -> Option<(Vec<u8>, u64)> {
    let (body, stored_at) = read(cfg, key).await?;
    cache_policy::is_fresh(stored_at, now_ms(), cfg.cache_ttl_ms).then_some((body, stored_at))
}

/// Stores a JSON body under `key`, stamped with the current time.
pub(super) async fn put(cfg: &Config, key: &str, body: &[u8]) {
    let control = format!(
        "public, max-age={}",
        cache_policy::max_age_secs(cfg.cache_ttl_ms)
    );
    store(cfg, key, body, &control).await;
}

/// [`get`] for an answer promised to clients for at most `cap_secs` (see
/// [`cache_policy::capped_ttl_ms`]).
pub(super) async fn get_capped(cfg: &Config, key: &str, cap_secs: u32) -> Option<(Vec<u8>, u64)> {
    let (body, stored_at) = read(cfg, key).await?;
    let ttl_ms = cache_policy::capped_ttl_ms(cfg.cache_ttl_ms, cap_secs);
    cache_policy::is_fresh(stored_at, now_ms(), ttl_ms).then_some((body, stored_at))
}

/// [`put`] for an answer promised to clients for at most `cap_secs`.
pub(super) async fn put_capped(cfg: &Config, key: &str, body: &[u8], cap_secs: u32) {
    let ttl_ms = cache_policy::capped_ttl_ms(cfg.cache_ttl_ms, cap_secs);
    let control = format!("public, max-age={}", cache_policy::max_age_secs(ttl_ms));
    store(cfg, key, body, &control).await;
}

/// A body stored by [`put_immutable`] under `key`, and its store time: no TTL applies (it
/// never changes), only the switch of a TTL of 0.
pub(super) async fn get_immutable(cfg: &Config, key: &str) -> Option<(Vec<u8>, u64)> {
    read(cfg, key).await
}

/// Stores a JSON body that never changes under `key` (`Cache-Control: immutable`, a year).
pub(super) async fn put_immutable(cfg: &Config, key: &str, body: &[u8]) {
    store(cfg, key, body, cache_policy::IMMUTABLE).await;
}

/// The body under `key` and its store time, whatever its age; nothing when caching is off.
async fn read(cfg: &Config, key: &str) -> Option<(Vec<u8>, u64)> {
    if cfg.cache_ttl_ms == 0 {
        return None;
    }
    let mut resp = Cache::default().get(key, false).await.ok()??;
    let stored_at: u64 = resp.headers().get(STORED_AT_HEADER).ok()??.parse().ok()?;
    let body = resp.bytes().await.ok()?;
    Some((body, stored_at))
}

/// Stores a JSON body under `key` with `cache_control`, stamped with the current time;
/// nothing when caching is off.
async fn store(cfg: &Config, key: &str, body: &[u8], cache_control: &str) {
    if cfg.cache_ttl_ms == 0 {
        return;
    }
    let put = async {
        let h = Headers::new();
        h.set("content-type", "application/json")?;
        h.set("cache-control", cache_control)?;
        h.set(STORED_AT_HEADER, &now_ms().to_string())?;
        let resp = Response::builder()
            .with_status(200)
            .with_headers(h)
            .fixed(body.to_vec());
        Cache::default().put(key, resp).await
    };
    if let Err(e) = put.await {
        worker::console_error!("cache put failed for {key}: {e}");
    }
}

/// Drops the entry under `key` (in this data centre).
pub(super) async fn delete(key: &str) {
    if let Err(e) = Cache::default().delete(key, false).await {
        worker::console_error!("cache delete failed for {key}: {e}");
    }
}
