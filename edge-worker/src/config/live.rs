//! The live-routing variables: the policy order (`ROUTING_POLICY`), how often the region table
//! is refreshed from the registry (`REGISTRY_REFRESH_MS`), the load threshold
//! (`LOAD_THRESHOLD`, requests in flight) and the latency hysteresis
//! (`LATENCY_HYSTERESIS_PCT`).

use super::SettingsError;
use super::vars::{
    LATENCY_HYSTERESIS_PCT, LOAD_THRESHOLD, REGISTRY_REFRESH_MS, ROUTING_POLICY, bounded_u64,
};

/// One routing policy, tried in the configured order for a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The body's `preferredRegion`.
    Preference,
    /// The `x-user-region` header.
    Header,
    /// The healthy region with the lowest measured round trip (with hysteresis).
    Latency,
    /// From here on, regions over the load threshold are skipped.
    Load,
    /// The client's location.
    Geo,
    /// The default region.
    Default,
}

impl Policy {
    /// The name in `ROUTING_POLICY`.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::Preference => "preference",
            Policy::Header => "header",
            Policy::Latency => "latency",
            Policy::Load => "load",
            Policy::Geo => "geo",
            Policy::Default => "default",
        }
    }

    fn parse(name: &str) -> Option<Policy> {
        [
            Policy::Preference,
            Policy::Header,
            Policy::Latency,
            Policy::Load,
            Policy::Geo,
            Policy::Default,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }
}

/// `ROUTING_POLICY` when unset.
pub const DEFAULT_ROUTING_POLICY: &str = "preference,header,latency,load,geo,default";

/// The live-routing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSettings {
    /// Policies in order; always ends with [`Policy::Default`].
    pub policy: Vec<Policy>,
    /// How long a region table fetched from the registry is used before a refresh (0: never
    /// ask the registry; the static list only).
    pub refresh_ms: u64,
    /// Requests in flight above which a region is skipped by `load`.
    pub load_threshold: u32,
    /// A region chosen by latency stays chosen until another is this much faster (percent).
    pub hysteresis_pct: u32,
}

/// Parses the live-routing variables.
pub(crate) fn parse(
    get: impl Fn(&'static str) -> Option<String>,
) -> Result<LiveSettings, SettingsError> {
    let raw = get(ROUTING_POLICY).unwrap_or_else(|| DEFAULT_ROUTING_POLICY.to_owned());
    let mut policy = Vec::new();
    for item in raw.split(',') {
        let item = item.trim();
        let p = Policy::parse(item).ok_or_else(|| {
            SettingsError::new(
                ROUTING_POLICY,
                format!(
                    "{item:?} is not a policy (preference, header, latency, load, geo, default)"
                ),
            )
        })?;
        if policy.contains(&p) {
            return Err(SettingsError::new(
                ROUTING_POLICY,
                format!("{item:?} is listed twice"),
            ));
        }
        policy.push(p);
    }
    // Something must always answer: the default closes every order.
    policy.retain(|p| *p != Policy::Default);
    policy.push(Policy::Default);
    let refresh_ms = bounded_u64(
        REGISTRY_REFRESH_MS,
        get(REGISTRY_REFRESH_MS).as_deref(),
        5_000,
        0..=3_600_000,
    )?;
    let load_threshold = bounded_u64(
        LOAD_THRESHOLD,
        get(LOAD_THRESHOLD).as_deref(),
        64,
        1..=1_000_000,
    )?;
    let hysteresis_pct = bounded_u64(
        LATENCY_HYSTERESIS_PCT,
        get(LATENCY_HYSTERESIS_PCT).as_deref(),
        25,
        0..=1_000,
    )?;
    Ok(LiveSettings {
        policy,
        refresh_ms,
        load_threshold: u32::try_from(load_threshold).unwrap_or(u32::MAX),
        hysteresis_pct: u32::try_from(hysteresis_pct).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parsed(pairs: &[(&'static str, &str)]) -> Result<LiveSettings, SettingsError> {
        let m: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        parse(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_order() {
        let s = parsed(&[]).unwrap();
        let names: Vec<&str> = s.policy.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            ["preference", "header", "latency", "load", "geo", "default"]
        );
        assert_eq!(
            (s.refresh_ms, s.load_threshold, s.hysteresis_pct),
            (5_000, 64, 25)
        );
        let s = parsed(&[(ROUTING_POLICY, "geo, preference")]).unwrap();
        assert_eq!(s.policy, [Policy::Geo, Policy::Preference, Policy::Default]);
        for bad in ["geo,geo", "fastest", ""] {
            assert_eq!(
                parsed(&[(ROUTING_POLICY, bad)]).unwrap_err().variable,
                ROUTING_POLICY
            );
        }
        assert_eq!(
            parsed(&[(LOAD_THRESHOLD, "0")]).unwrap_err().variable,
            LOAD_THRESHOLD
        );
    }
}
