//! The edge's own answers (`/edge/time`, `/edge/health`, `/edge/regions`), which are not part
//! of the game API the origin shares and so live here rather than in [`api`].

use api::RegionName;
use api::regions::{RegionLoad, RegionStatus};
use serde::Serialize;

use crate::breaker::Breakers;
use crate::config::{ALL_VARS, Config};
use crate::live::{Measurements, RegionTable, Source};

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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionView<'a> {
    /// Its name.
    pub name: &'a RegionName,
    /// Its origin's base URL.
    pub origin: &'a str,
    /// `closed`, `open` or `half-open` in this isolate.
    pub breaker: &'static str,
    /// `active` or `draining` (the registry's word; `active` in the fallback list).
    pub status: RegionStatus,
    /// Round trip from this isolate (EWMA of requests and probes), ms, once measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// The load the region last reported (registry only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<RegionLoad>,
}

/// `GET /edge/regions`: the live region table, this isolate's breakers and measurements, and
/// the routing settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionsView<'a> {
    /// `registry` (an origin's `GET /regions`) or `fallback` (the static `REGION_ORIGINS`).
    pub source: Source,
    /// When the table was built (Unix ms).
    pub refreshed_at: u64,
    /// Regions: routable ones in failover order, then draining ones.
    pub regions: Vec<RegionView<'a>>,
    /// The region used when no hint names one.
    pub default_region: &'a RegionName,
    /// Routable region names in failover order.
    pub failover_order: Vec<&'a RegionName>,
    /// Routing policies for starts, in order.
    pub routing_policy: Vec<&'static str>,
    /// Cache TTL in whole seconds.
    pub cache_ttl_seconds: u64,
    /// Budget of one origin exchange.
    pub origin_timeout_ms: u64,
    /// Every variable the edge reads.
    pub variables: &'static [&'static str],
}

impl<'a> RegionsView<'a> {
    /// The view of the effective configuration `cfg` over `table`, with each region's breaker
    /// as seen at `now`.
    pub fn new(
        cfg: &'a Config,
        table: &'a RegionTable,
        measurements: &Measurements,
        breakers: &Breakers,
        now: u64,
    ) -> RegionsView<'a> {
        RegionsView {
            source: table.source,
            refreshed_at: table.fetched_at_ms,
            regions: table
                .regions
                .iter()
                .map(|r| RegionView {
                    name: &r.name,
                    origin: &r.origin,
                    breaker: breakers.get(r.name.as_str()).state_name(now),
                    status: r.status,
                    rtt_ms: measurements
                        .rtt_ms(r.name.as_str())
                        .map(|v| (v * 10.0).round() / 10.0),
                    load: r.load,
                })
                .collect(),
            default_region: &cfg.default_region,
            failover_order: cfg.failover_order().collect(),
            routing_policy: cfg.live.policy.iter().map(|p| p.name()).collect(),
            cache_ttl_seconds: cfg.cache_ttl_ms / 1000,
            origin_timeout_ms: cfg.origin_timeout_ms,
            variables: &ALL_VARS,
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
        let table = RegionTable::fallback(&cfg, 1);
        let mut m = Measurements::default();
        m.observe(&api::RegionName::parse("us").unwrap(), 4.25);
        let v = serde_json::to_value(RegionsView::new(&cfg, &table, &m, &breakers, 1)).unwrap();
        assert_eq!(v["source"], "fallback");
        assert_eq!(v["routingPolicy"][2], "latency");
        assert_eq!(v["defaultRegion"], "eu");
        assert_eq!(v["failoverOrder"], json!(["eu", "us", "asia"]));
        assert_eq!(v["cacheTtlSeconds"], 30);
        assert_eq!(
            v["regions"][1],
            json!({"name": "us", "origin": "http://127.0.0.1:8082", "breaker": "open", "status": "active", "rttMs": 4.3})
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
