//! The live-routing variables: the policy order (`ROUTING_POLICY`), how often the region table
//! is refreshed from the registry (`REGISTRY_REFRESH_MS`), the load threshold
//! (`LOAD_THRESHOLD`, requests in flight) and the latency hysteresis
//! (`LATENCY_HYSTERESIS_PCT`), and whom the edge believes about regions
//! ([`RegistryTrust`]: `REGISTRY_SECRET`, `REGION_URL_PATTERN`, `REGION_MAX`).

use trust::Keys;
use trust::pattern::UrlPattern;

use super::SettingsError;
use super::vars::{
    LATENCY_HYSTERESIS_PCT, LOAD_THRESHOLD, REGION_MAX, REGION_URL_PATTERN, REGISTRY_REFRESH_MS,
    REGISTRY_SECRET, REGISTRY_SECRET_PREVIOUS, ROUTING_POLICY, bounded_u64,
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
    /// Which registry rows the edge believes.
    pub trust: RegistryTrust,
}

/// Which registry rows the edge believes. A row names the URL the edge sends players'
/// requests and owner tokens to, so it must be signed by an origin (`REGISTRY_SECRET`) and
/// point inside the deployment (`REGION_URL_PATTERN`); the table is capped at `REGION_MAX`
/// regions so a registry cannot make the edge probe without bound.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryTrust {
    /// `REGISTRY_SECRET` (and `REGISTRY_SECRET_PREVIOUS`): `None` believes unsigned rows
    /// (development only; `SEEDSYNC_ENV=production` requires it when the registry is read).
    pub keys: Option<Keys>,
    /// `REGION_URL_PATTERN`: `None` allows any http(s) base URL (development only).
    pub url_pattern: Option<UrlPattern>,
    /// `REGION_MAX`: at most this many registry regions are used (the rest are ignored).
    pub max_regions: usize,
}

/// `REGION_MAX` when unset.
pub const DEFAULT_REGION_MAX: u64 = 16;

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
    let trust = parse_trust(&get, refresh_ms > 0)?;
    Ok(LiveSettings {
        policy,
        refresh_ms,
        load_threshold: u32::try_from(load_threshold).unwrap_or(u32::MAX),
        hysteresis_pct: u32::try_from(hysteresis_pct).unwrap_or(u32::MAX),
        trust,
    })
}

/// Parses [`RegistryTrust`]. With `SEEDSYNC_ENV=production` and the registry in use, both the
/// secret and the URL pattern are required: without them anyone who can write a row could
/// send the edge's players elsewhere.
fn parse_trust(
    get: &impl Fn(&'static str) -> Option<String>,
    registry_used: bool,
) -> Result<RegistryTrust, SettingsError> {
    const NAMES: [&str; 2] = [REGISTRY_SECRET, REGISTRY_SECRET_PREVIOUS];
    let keys = Keys::from_settings(
        |name| NAMES.into_iter().find(|n| *n == name).and_then(get),
        // A Worker has no files: its secrets arrive as bindings (`wrangler secret put`).
        |_| Err(std::io::Error::other("a Worker reads no files")),
        trust::registry::SECRET_VARIABLES,
    )?;
    let url_pattern = get(REGION_URL_PATTERN)
        .map(|raw| UrlPattern::parse(&raw))
        .transpose()?;
    let max_regions = bounded_u64(
        REGION_MAX,
        get(REGION_MAX).as_deref(),
        DEFAULT_REGION_MAX,
        1..=64,
    )?;
    let production = get(owner_token::env::MODE_VAR).is_some_and(|v| v.trim() == "production");
    if production && registry_used {
        if keys.is_none() {
            return Err(SettingsError::new(
                REGISTRY_SECRET,
                "is required with SEEDSYNC_ENV=production while REGISTRY_REFRESH_MS > 0 \
                 (the edge must only believe registry rows the origins signed); \
                 `wrangler secret put REGISTRY_SECRET` with the origins' value",
            ));
        }
        if url_pattern.is_none() {
            return Err(SettingsError::new(
                REGION_URL_PATTERN,
                "is required with SEEDSYNC_ENV=production while REGISTRY_REFRESH_MS > 0, \
                 e.g. `https://*.origins.example.com`",
            ));
        }
    }
    Ok(RegistryTrust {
        keys,
        url_pattern,
        max_regions: usize::try_from(max_regions).unwrap_or(usize::MAX),
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

    #[test]
    fn production_requires_registry_trust_while_the_registry_is_read() {
        const SECRET: &str = "registry-secret-for-the-edge-tests-0123456789";
        let prod = ("SEEDSYNC_ENV", "production");
        let err = parsed(&[prod]).unwrap_err();
        assert_eq!(err.variable, REGISTRY_SECRET);
        let err = parsed(&[prod, (REGISTRY_SECRET, SECRET)]).unwrap_err();
        assert_eq!(err.variable, REGION_URL_PATTERN);
        let ok = parsed(&[
            prod,
            (REGISTRY_SECRET, SECRET),
            (REGION_URL_PATTERN, "https://*.origins.example.com"),
        ])
        .unwrap();
        assert!(ok.trust.keys.is_some() && ok.trust.url_pattern.is_some());
        // The static list only: nothing to trust.
        assert!(parsed(&[prod, (REGISTRY_REFRESH_MS, "0")]).is_ok());
        // A short secret or a bad pattern names its variable, never the value.
        let err = parsed(&[(REGISTRY_SECRET, "short")]).unwrap_err();
        assert_eq!(err.variable, REGISTRY_SECRET);
        assert!(!err.to_string().contains("short"), "{err}");
        assert_eq!(
            parsed(&[(REGION_URL_PATTERN, "ftp://x")])
                .unwrap_err()
                .variable,
            REGION_URL_PATTERN
        );
        assert_eq!(
            parsed(&[(REGION_MAX, "0")]).unwrap_err().variable,
            REGION_MAX
        );
        assert_eq!(parsed(&[]).unwrap().trust.max_regions, 16);
    }
}
