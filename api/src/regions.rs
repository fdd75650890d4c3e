//! The live region registry: what each origin heartbeats into the shared store, and what
//! `GET /regions` (any origin) answers to the edge and to operators.
//!
//! There is no main server: every origin writes its own [`RegionRecord`] with a TTL of a few
//! heartbeat intervals, so a region whose heartbeats stop drops out of every origin's list on
//! its own. The architecture document's registration route (`POST /api/regions/register`,
//! snake_case `{region, base_url}`) and region list ([`LegacyRegionList`]) are kept for its
//! clients, over the same table.

use serde::{Deserialize, Serialize};

use crate::ids::RegionName;

/// Whether a region takes new games.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum RegionStatus {
    /// Takes new games.
    #[default]
    Active,
    /// Takes no new games; its games are served by the live regions (shared store).
    Draining,
}

impl RegionStatus {
    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RegionStatus::Active => "active",
            RegionStatus::Draining => "draining",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Option<RegionStatus> {
        match value {
            "active" => Some(RegionStatus::Active),
            "draining" => Some(RegionStatus::Draining),
            _ => None,
        }
    }
}

/// The load an origin reports with each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RegionLoad {
    /// Requests being served at the heartbeat.
    pub in_flight: u32,
    /// p99 request latency over the last interval, ms (0 without requests).
    pub p99_ms: u32,
    /// Games started per second over the last interval.
    pub starts_per_sec: f64,
}

/// One live region, as `GET /regions` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RegionRecord {
    /// The region.
    pub name: RegionName,
    /// Its origin's public base URL (`PUBLIC_URL`).
    pub url: String,
    /// The origin's version.
    pub version: String,
    /// Active or draining.
    pub status: RegionStatus,
    /// What it reported at its last heartbeat.
    pub load: RegionLoad,
    /// Unix ms of its last heartbeat.
    #[cfg_attr(test, ts(type = "number"))]
    pub heartbeat_at: i64,
    /// Seconds until the record expires unless another heartbeat comes.
    pub ttl_seconds: u32,
    /// The origin's `REGISTRY_SECRET` signature of `(name, url, version, expiresAt)` (see the
    /// `trust` crate); absent when the origins run without one (development). The edge and the
    /// origins use a record only if it verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub signature: Option<String>,
    /// Unix ms after which the signature is void (the heartbeat's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub expires_at: Option<i64>,
}

/// `GET /regions`: the live regions (expired ones are gone), by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RegionList {
    /// The region of the origin that answered.
    pub served_by: RegionName,
    /// Unix ms at the answering origin.
    #[cfg_attr(test, ts(type = "number"))]
    pub now: i64,
    /// Live regions, by name.
    pub regions: Vec<RegionRecord>,
}

/// `POST /regions/{name}/drain` and `/undrain`: the region's new status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct DrainView {
    /// The region.
    pub region: RegionName,
    /// Its status now.
    pub status: RegionStatus,
}

/// `POST /api/regions/register`, in the architecture document's shape (snake_case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RegisterRequest {
    /// The region.
    pub region: RegionName,
    /// Its origin's base URL (http or https).
    pub base_url: String,
}

/// One region in the architecture document's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LegacyRegion {
    /// The region.
    pub region: RegionName,
    /// Its origin's base URL.
    pub base_url: String,
    /// Active or draining.
    pub status: RegionStatus,
    /// Unix ms of its last heartbeat or registration.
    #[cfg_attr(test, ts(type = "number"))]
    pub last_seen: i64,
}

/// `GET /api/regions` (and the answer to a registration): the live regions in the
/// architecture document's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LegacyRegionList {
    /// Live regions, by name.
    pub regions: Vec<LegacyRegion>,
}

impl From<&RegionRecord> for LegacyRegion {
    fn from(r: &RegionRecord) -> LegacyRegion {
        LegacyRegion {
            region: r.name.clone(),
            base_url: r.url.clone(),
            status: r.status,
            last_seen: r.heartbeat_at,
        }
    }
}

/// Whether `url` is an http(s) base URL with a host and no query, fragment or blank: the rule
/// for `PUBLIC_URL` and a registration's `base_url`.
pub fn is_base_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    !host.is_empty() && !url.contains(['?', '#', ' ']) && url.len() <= 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_and_legacy_shapes() {
        let r = RegionRecord {
            name: RegionName::parse("sa").unwrap(),
            url: "http://127.0.0.1:9000".into(),
            version: "0.1.0".into(),
            status: RegionStatus::Draining,
            load: RegionLoad {
                in_flight: 2,
                p99_ms: 9,
                starts_per_sec: 1.5,
            },
            heartbeat_at: 5,
            ttl_seconds: 3,
            signature: None,
            expires_at: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "draining");
        assert_eq!(
            v["load"],
            json!({"inFlight": 2, "p99Ms": 9, "startsPerSec": 1.5})
        );
        assert_eq!(v["heartbeatAt"], 5);
        assert_eq!(serde_json::from_value::<RegionRecord>(v).unwrap(), r);
        let legacy = serde_json::to_value(LegacyRegion::from(&r)).unwrap();
        assert_eq!(
            legacy,
            json!({"region": "sa", "base_url": "http://127.0.0.1:9000", "status": "draining", "last_seen": 5})
        );
    }

    #[test]
    fn base_urls() {
        for ok in ["http://127.0.0.1:8081", "https://eu.example/x"] {
            assert!(is_base_url(ok), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "http://",
            "http://x?y",
            "http://a b",
            "127.0.0.1:1",
        ] {
            assert!(!is_base_url(bad), "{bad}");
        }
    }
}
