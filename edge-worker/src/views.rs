//! The edge's own answers (`/edge/time`, `/edge/health`, `/edge/regions`), which are not part
//! of the game API the origin shares and so live here rather than in [`api`].

use api::RegionName;
use serde::Serialize;

use crate::breaker::Breakers;
use crate::config::{ALL_VARS, Config};

/// `GET /edge/time`: the edge's clock, for clients to sync theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeView {
    /// Unix ms.
    pub now: u64,
}

/// `GET /edge/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthView {
    /// Always `ok` (a bad configuration answers 500 instead).
    pub status: &'static str,
    /// How many regions are configured.
    pub regions: usize,
    /// Unix ms.
    pub now: u64,
}

impl HealthView {
    /// The health of a valid configuration.
    pub fn new(cfg: &Config, now: u64) -> HealthView {
        HealthView {
            status: "ok",
            regions: cfg.regions.len(),
            now,
        }
    }
}

/// One region in [`RegionsView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionView<'a> {
    /// Its name.
    pub name: &'a RegionName,
    /// Its origin's base URL.
    pub origin: &'a str,
    /// `closed`, `open` or `half-open` in this isolate.
    pub breaker: &'static str,
}

/// `GET /edge/regions`: the configuration and this isolate's breakers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionsView<'a> {
    /// Regions in failover order.
    pub regions: Vec<RegionView<'a>>,
    /// The region used when no hint names one.
    pub default_region: &'a RegionName,
    /// Region names in failover order.
    pub failover_order: Vec<&'a RegionName>,
    /// Cache TTL in whole seconds.
    pub cache_ttl_seconds: u64,
    /// Budget of one origin exchange.
    pub origin_timeout_ms: u64,
    /// Every variable the edge reads.
    pub variables: [&'static str; ALL_VARS.len()],
}

impl<'a> RegionsView<'a> {
    /// The view of `cfg` with each region's breaker as seen at `now`.
    pub fn new(cfg: &'a Config, breakers: &Breakers, now: u64) -> RegionsView<'a> {
        RegionsView {
            regions: cfg
                .regions
                .iter()
                .map(|r| RegionView {
                    name: &r.name,
                    origin: &r.origin,
                    breaker: breakers.get(r.name.as_str()).state_name(now),
                })
                .collect(),
            default_region: &cfg.default_region,
            failover_order: cfg.failover_order().collect(),
            cache_ttl_seconds: cfg.cache_ttl_ms / 1000,
            origin_timeout_ms: cfg.origin_timeout_ms,
            variables: ALL_VARS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::local;
    use serde_json::json;

    #[test]
    fn regions_view_shape() {
        let cfg = local();
        let mut breakers = Breakers::default();
        for _ in 0..3 {
            breakers.on_failure("us", 0, &cfg.breaker);
        }
        let v = serde_json::to_value(RegionsView::new(&cfg, &breakers, 1)).unwrap();
        assert_eq!(v["defaultRegion"], "eu");
        assert_eq!(v["failoverOrder"], json!(["eu", "us", "asia"]));
        assert_eq!(v["cacheTtlSeconds"], 30);
        assert_eq!(
            v["regions"][1],
            json!({"name": "us", "origin": "http://127.0.0.1:8082", "breaker": "open"})
        );
        assert_eq!(v["variables"].as_array().unwrap().len(), ALL_VARS.len());
    }

    #[test]
    fn health_and_time() {
        let v = serde_json::to_value(HealthView::new(&local(), 7)).unwrap();
        assert_eq!(v, json!({"status": "ok", "regions": 3, "now": 7}));
        assert_eq!(
            serde_json::to_value(TimeView { now: 9 }).unwrap(),
            json!({"now": 9})
        );
    }
}
