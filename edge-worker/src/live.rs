//! The live region table and the measurements routing reads, as plain data:
//! - [`RegionTable`]: the regions the edge routes to, from the origins' registry (`GET
//!   /regions`) when one answered, else the static `REGION_ORIGINS` list (the bootstrap and the
//!   fallback); [`RegionTable::effective`] turns it into the [`Config`] every handler routes
//!   with, so a new region is routable, and a drained or expired one is not, without a
//!   redeploy;
//! - [`Ewma`] and [`Measurements`]: the round trip to each origin (real requests and probes)
//!   and the load each origin last reported, bounded to the regions of the table.
//!
//! Time is passed in, so all of it is unit-tested natively; the Worker keeps one of each per
//! isolate and refreshes the table off the request path.

use std::collections::BTreeMap;

use api::RegionName;
use api::regions::{RegionList, RegionLoad, RegionRecord, RegionStatus};
use serde::Serialize;

use crate::config::{Config, Region, RegistryTrust};

/// Where the region table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An origin's `GET /regions`.
    Registry,
    /// The static `REGION_ORIGINS` (no origin answered, or the registry is disabled).
    Fallback,
}

/// One region of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRegion {
    /// Its name.
    pub name: RegionName,
    /// Its origin's base URL.
    pub origin: String,
    /// Active or draining.
    pub status: RegionStatus,
    /// What it last reported (registry only).
    pub load: Option<RegionLoad>,
}

/// The regions the edge routes to.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionTable {
    /// Where it came from.
    pub source: Source,
    /// Regions: the configured failover order first, then new ones by name.
    pub regions: Vec<LiveRegion>,
    /// When it was built (Unix ms).
    pub fetched_at_ms: u64,
}

impl RegionTable {
    /// The static list, every region active.
    pub fn fallback(cfg: &Config, now_ms: u64) -> RegionTable {
        RegionTable {
            source: Source::Fallback,
            regions: cfg
                .regions
                .iter()
                .map(|r| LiveRegion {
                    name: r.name.clone(),
                    origin: r.origin.clone(),
                    status: RegionStatus::Active,
                    load: None,
                })
                .collect(),
            fetched_at_ms: now_ms,
        }
    }

    /// The registry's regions the edge believes, in the configured failover order and then by
    /// name, at most `REGION_MAX` of them; `None` when none is left (an empty registry is no
    /// reason to route nowhere). A row is believed only if its URL is an http(s) base URL that
    /// matches `REGION_URL_PATTERN` (when set) and, when `REGISTRY_SECRET` is set, its
    /// signature verifies and has not expired: an anonymous registration or a row written
    /// straight into Cassandra never reaches routing.
    pub fn from_registry(cfg: &Config, list: &RegionList, now_ms: u64) -> Option<RegionTable> {
        let trust = &cfg.live.trust;
        let mut live: BTreeMap<&RegionName, LiveRegion> = BTreeMap::new();
        for r in list.regions.iter().filter(|r| believed(trust, r, now_ms)) {
            live.insert(
                &r.name,
                LiveRegion {
                    name: r.name.clone(),
                    origin: r.url.trim_end_matches('/').to_owned(),
                    status: r.status,
                    load: Some(r.load),
                },
            );
        }
        if live.is_empty() {
            return None;
        }
        let mut regions = Vec::with_capacity(live.len());
        for name in cfg.failover_order() {
            if let Some(r) = live.remove(name) {
                regions.push(r);
            }
        }
        regions.extend(live.into_values());
        regions.truncate(trust.max_regions);
        Some(RegionTable {
            source: Source::Registry,
            regions,
            fetched_at_ms: now_ms,
        })
    }

    /// Whether a refresh is due.
    pub fn is_stale(&self, now_ms: u64, refresh_ms: u64) -> bool {
        now_ms.saturating_sub(self.fetched_at_ms) >= refresh_ms
    }

    /// `cfg` routing over this table: its active regions (all of them if every one drains,
    /// rather than none), the default region kept when it is among them, else the first.
    /// Geo maps naming a region that is not routable are left to [`Config::known_region`]
    /// checks by the router.
    pub fn effective(&self, cfg: &Config) -> Config {
        let active: Vec<Region> = self
            .regions
            .iter()
            .filter(|r| r.status == RegionStatus::Active)
            .map(|r| Region {
                name: r.name.clone(),
                origin: r.origin.clone(),
            })
            .collect();
        let regions = if active.is_empty() {
            self.regions
                .iter()
                .map(|r| Region {
                    name: r.name.clone(),
                    origin: r.origin.clone(),
                })
                .collect()
        } else {
            active
        };
        let mut out = cfg.clone();
        if !regions.iter().any(|r| r.name == cfg.default_region)
            && let Some(first) = regions.first()
        {
            out.default_region = first.name.clone();
        }
        out.regions = regions;
        out
    }

    /// The region named `name`.
    pub fn get(&self, name: &str) -> Option<&LiveRegion> {
        self.regions.iter().find(|r| r.name.as_str() == name)
    }
}

/// Whether the edge may use registry row `r` (see [`RegionTable::from_registry`]).
fn believed(trust: &RegistryTrust, r: &RegionRecord, now_ms: u64) -> bool {
    if !api::regions::is_base_url(&r.url) {
        return false;
    }
    if let Some(pattern) = &trust.url_pattern
        && !pattern.matches(&r.url)
    {
        return false;
    }
    let Some(keys) = &trust.keys else {
        return true;
    };
    let (Some(signature), Some(expires_at_ms)) = (&r.signature, r.expires_at) else {
        return false;
    };
    let record = trust::registry::RegistryRecord {
        name: r.name.as_str().to_owned(),
        url: r.url.clone(),
        version: r.version.clone(),
        expires_at_ms,
    };
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    trust::registry::verify(keys, &record, signature, now).is_ok()
}

/// An exponentially weighted moving average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    /// The average, once there is a sample.
    pub value: Option<f64>,
}

/// Weight of a new round-trip sample.
pub const RTT_ALPHA: f64 = 0.2;

impl Ewma {
    /// Folds in a sample.
    pub fn observe(&mut self, sample: f64) {
        self.value = Some(match self.value {
            None => sample,
            Some(v) => v + RTT_ALPHA * (sample - v),
        });
    }
}

/// Round trips to each region's origin, as measured from this isolate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    rtt: BTreeMap<RegionName, Ewma>,
    /// The region the latency policy chose last (hysteresis keeps it).
    pub latency_choice: Option<RegionName>,
}

impl Measurements {
    /// Records a round trip to `region` of `ms`.
    pub fn observe(&mut self, region: &RegionName, ms: f64) {
        // Bounded by the table: `retain` drops regions that left it.
        self.rtt
            .entry(region.clone())
            .or_insert(Ewma { value: None })
            .observe(ms);
    }

    /// The average round trip to `region`, if measured.
    pub fn rtt_ms(&self, region: &str) -> Option<f64> {
        self.rtt
            .iter()
            .find(|(k, _)| k.as_str() == region)
            .and_then(|(_, e)| e.value)
    }

    /// Forgets regions no longer in `table`.
    pub fn retain(&mut self, table: &RegionTable) {
        self.rtt.retain(|k, _| table.get(k.as_str()).is_some());
        if self
            .latency_choice
            .as_ref()
            .is_some_and(|c| table.get(c.as_str()).is_none())
        {
            self.latency_choice = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::local;
    use kernel::Secret;
    use trust::Keys;
    use trust::pattern::UrlPattern;
    use trust::registry::RegistryRecord;

    const SECRET: &str = "registry-secret-for-the-edge-tests-0123456789";

    fn record(name: &str, url: &str, status: RegionStatus) -> RegionRecord {
        RegionRecord {
            name: RegionName::parse(name).unwrap(),
            url: url.into(),
            version: "1".into(),
            status,
            load: RegionLoad::default(),
            heartbeat_at: 0,
            ttl_seconds: 3,
            signature: None,
            expires_at: None,
        }
    }

    fn list(records: Vec<RegionRecord>) -> RegionList {
        RegionList {
            served_by: RegionName::parse("eu").unwrap(),
            now: 0,
            regions: records,
        }
    }

    fn names(cfg: &Config) -> Vec<&str> {
        cfg.regions.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn registry_merges_in_failover_order_then_new_regions() {
        let cfg = local();
        let l = list(vec![
            record("sa", "http://127.0.0.1:9/", RegionStatus::Active),
            record("asia", "http://127.0.0.1:8083", RegionStatus::Active),
            record("eu", "http://127.0.0.1:8081", RegionStatus::Draining),
            record("bad", "not a url", RegionStatus::Active),
        ]);
        let t = RegionTable::from_registry(&cfg, &l, 5).unwrap();
        let order: Vec<&str> = t.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(order, ["eu", "asia", "sa"], "us expired, bad skipped");
        assert_eq!(t.get("sa").unwrap().origin, "http://127.0.0.1:9");
        let eff = t.effective(&cfg);
        assert_eq!(names(&eff), ["asia", "sa"], "draining eu takes nothing");
        assert_eq!(
            eff.default_region.as_str(),
            "asia",
            "default moved to a live region"
        );
        assert!(eff.known_region("sa").is_some(), "a new region is routable");
    }

    #[test]
    fn empty_registry_and_all_draining() {
        let cfg = local();
        assert_eq!(RegionTable::from_registry(&cfg, &list(vec![]), 0), None);
        let t = RegionTable::fallback(&cfg, 0);
        assert_eq!(t.source, Source::Fallback);
        assert_eq!(t.effective(&cfg), cfg, "the fallback routes as configured");
        let l = list(vec![record("us", "http://x", RegionStatus::Draining)]);
        let eff = RegionTable::from_registry(&cfg, &l, 0)
            .unwrap()
            .effective(&cfg);
        assert_eq!(names(&eff), ["us"], "rather a draining region than none");
    }

    #[test]
    fn staleness() {
        let t = RegionTable::fallback(&local(), 1_000);
        assert!(!t.is_stale(1_499, 500));
        assert!(t.is_stale(1_500, 500));
        assert!(t.is_stale(0, 0) || t.fetched_at_ms > 0);
    }

    #[test]
    fn ewma_and_bounds() {
        let mut e = Ewma { value: None };
        e.observe(100.0);
        assert_eq!(e.value, Some(100.0));
        e.observe(200.0);
        assert!((e.value.unwrap() - 120.0).abs() < 1e-9);
        let mut m = Measurements::default();
        let sa = RegionName::parse("sa").unwrap();
        m.observe(&sa, 10.0);
        m.latency_choice = Some(sa.clone());
        assert_eq!(m.rtt_ms("sa"), Some(10.0));
        m.retain(&RegionTable::fallback(&local(), 0));
        assert_eq!((m.rtt_ms("sa"), m.latency_choice.clone()), (None, None));
    }

    fn keys(secret: &str) -> Keys {
        Keys::new("REGISTRY_SECRET", Secret::new(secret), None).unwrap()
    }

    /// `record` signed by an origin holding `secret`, valid until `expires_at`.
    fn signed(mut r: RegionRecord, secret: &str, expires_at: i64) -> RegionRecord {
        let fields = RegistryRecord {
            name: r.name.as_str().to_owned(),
            url: r.url.clone(),
            version: r.version.clone(),
            expires_at_ms: expires_at,
        };
        r.signature = Some(trust::registry::sign(&keys(secret), &fields));
        r.expires_at = Some(expires_at);
        r
    }

    fn order(t: Option<RegionTable>) -> Vec<String> {
        t.map(|t| t.regions.iter().map(|r| r.name.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn with_a_registry_secret_only_signed_unexpired_rows_are_believed() {
        let mut cfg = local();
        cfg.live.trust.keys = Some(keys(SECRET));
        let active = RegionStatus::Active;
        let good = signed(record("eu", "http://127.0.0.1:8081", active), SECRET, 1_000);
        let unsigned = record("us", "http://127.0.0.1:8082", active);
        let forged = signed(
            record("asia", "http://attacker", active),
            "not-the-secret-but-long-enough-0123456789",
            1_000,
        );
        let expired = signed(record("sa", "http://127.0.0.1:8084", active), SECRET, 500);
        // A signed row whose URL was rewritten afterwards (e.g. in Cassandra).
        let mut moved = signed(record("zz", "http://127.0.0.1:8085", active), SECRET, 1_000);
        moved.url = "http://attacker".into();
        let l = list(vec![good, unsigned, forged, expired, moved]);
        assert_eq!(order(RegionTable::from_registry(&cfg, &l, 600)), ["eu"]);
        // Without the secret (development) the same rows are all believed but the bad URL.
        let open = local();
        assert_eq!(order(RegionTable::from_registry(&open, &l, 600)).len(), 5);
        // Nothing believable: no registry table, so the edge keeps its static list.
        let l = list(vec![record("eu", "http://attacker", active)]);
        assert_eq!(RegionTable::from_registry(&cfg, &l, 600), None);
    }

    #[test]
    fn rows_outside_the_url_pattern_are_ignored_even_when_signed() {
        let mut cfg = local();
        cfg.live.trust.keys = Some(keys(SECRET));
        cfg.live.trust.url_pattern = Some(UrlPattern::parse("http://127.0.0.1:*").unwrap());
        let active = RegionStatus::Active;
        let l = list(vec![
            signed(record("eu", "http://127.0.0.1:8081", active), SECRET, 1_000),
            signed(
                record("us", "http://evil.example.com", active),
                SECRET,
                1_000,
            ),
            signed(
                record("asia", "http://user:pw@127.0.0.1:8083", active),
                SECRET,
                1_000,
            ),
        ]);
        assert_eq!(order(RegionTable::from_registry(&cfg, &l, 0)), ["eu"]);
    }

    #[test]
    fn the_table_is_capped_configured_regions_first() {
        let mut cfg = local();
        cfg.live.trust.max_regions = 3;
        let active = RegionStatus::Active;
        let mut rows: Vec<RegionRecord> = (0..40)
            .map(|i| record(&format!("r{i:02}"), "http://127.0.0.1:9", active))
            .collect();
        rows.push(record("us", "http://127.0.0.1:8082", active));
        let t = order(RegionTable::from_registry(&cfg, &list(rows), 0));
        assert_eq!(t, ["us", "r00", "r01"]);
    }
}
