//! The edge's configuration, read from the Worker's `[vars]` (all plain strings, so `wrangler dev
//! --var NAME:VALUE` can override any of them) and validated up front: a bad value becomes a
//! [`ConfigError`] naming the variable, which the Worker answers as a JSON 500 instead of
//! panicking somewhere down the line.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::countries::{self, Continent};

pub const REGION_ORIGINS: &str = "REGION_ORIGINS";
pub const DEFAULT_REGION: &str = "DEFAULT_REGION";
pub const FAILOVER_ORDER: &str = "FAILOVER_ORDER";
pub const COUNTRY_REGIONS: &str = "COUNTRY_REGIONS";
pub const CONTINENT_REGIONS: &str = "CONTINENT_REGIONS";
pub const CACHE_TTL_SECONDS: &str = "CACHE_TTL_SECONDS";
pub const ORIGIN_TIMEOUT_MS: &str = "ORIGIN_TIMEOUT_MS";
pub const BREAKER_FAILURE_THRESHOLD: &str = "BREAKER_FAILURE_THRESHOLD";
pub const BREAKER_COOLDOWN_MS: &str = "BREAKER_COOLDOWN_MS";
pub const RETRY_BACKOFF_BASE_MS: &str = "RETRY_BACKOFF_BASE_MS";
pub const RETRY_BACKOFF_MAX_MS: &str = "RETRY_BACKOFF_MAX_MS";

/// Every variable the edge reads, for the Worker glue to look up.
pub const ALL_VARS: [&str; 11] = [
    REGION_ORIGINS,
    DEFAULT_REGION,
    FAILOVER_ORDER,
    COUNTRY_REGIONS,
    CONTINENT_REGIONS,
    CACHE_TTL_SECONDS,
    ORIGIN_TIMEOUT_MS,
    BREAKER_FAILURE_THRESHOLD,
    BREAKER_COOLDOWN_MS,
    RETRY_BACKOFF_BASE_MS,
    RETRY_BACKOFF_MAX_MS,
];

pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 30;
pub const DEFAULT_ORIGIN_TIMEOUT_MS: u64 = 5_000;

/// A configuration variable that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration variable {}: {}",
            self.variable, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// One region and the base URL of its origin (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub origin: String,
}

/// Parses the configuration once per distinct set of raw values. The Worker reads its vars on
/// every request, but they only change with a new deployment, so parsing the JSON maps each time
/// would be wasted work on the hot path; keying on the raw values keeps any change visible.
#[derive(Debug, Default)]
pub struct ConfigCache {
    /// The raw values last seen, and what they parsed to.
    last: Option<(RawVars, Result<Rc<Config>, ConfigError>)>,
}

/// The raw value of each of [`ALL_VARS`], in order.
type RawVars = Vec<Option<String>>;

impl ConfigCache {
    /// The configuration for the current raw values of [`ALL_VARS`].
    pub fn load(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Rc<Config>, ConfigError> {
        let raw: RawVars = ALL_VARS.iter().map(|name| lookup(name)).collect();
        match &self.last {
            Some((seen, parsed)) if *seen == raw => parsed.clone(),
            _ => {
                let parsed = Config::from_lookup(|name| {
                    let index = ALL_VARS.iter().position(|known| *known == name)?;
                    raw[index].clone()
                })
                .map(Rc::new);
                self.last = Some((raw, parsed.clone()));
                parsed
            }
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Regions in failover order.
    pub regions: Vec<Region>,
    pub default_region: String,
    /// Per-country overrides (uppercase ISO code -> known region).
    pub country_regions: BTreeMap<String, String>,
    /// Continent -> known region, built-in defaults merged with `CONTINENT_REGIONS`.
    pub continent_regions: BTreeMap<Continent, String>,
    pub cache_ttl_ms: u64,
    pub origin_timeout_ms: u64,
    pub breaker: BreakerConfig,
    pub backoff: Backoff,
}

impl Config {
    /// Builds the configuration from a variable lookup (`None` = variable not set). Empty strings
    /// count as not set, so an optional variable can be blanked with `--var NAME:`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let origins = parse_region_origins(
            &get(REGION_ORIGINS).ok_or_else(|| ConfigError::new(REGION_ORIGINS, "is not set"))?,
        )?;

        let order_raw =
            get(FAILOVER_ORDER).ok_or_else(|| ConfigError::new(FAILOVER_ORDER, "is not set"))?;
        let order = parse_failover_order(&order_raw, &origins)?;

        let default_region = normalize_region(
            &get(DEFAULT_REGION).ok_or_else(|| ConfigError::new(DEFAULT_REGION, "is not set"))?,
        );
        if !origins.contains_key(&default_region) {
            return Err(ConfigError::new(
                DEFAULT_REGION,
                format!(
                    "{default_region:?} is not a region of {REGION_ORIGINS} ({})",
                    known_list(&origins)
                ),
            ));
        }

        let country_regions = match get(COUNTRY_REGIONS) {
            None => BTreeMap::new(),
            Some(raw) => parse_country_regions(&raw, &origins)?,
        };
        let continent_regions = parse_continent_regions(get(CONTINENT_REGIONS), &origins)?;

        let cache_ttl_s = parse_u64(
            CACHE_TTL_SECONDS,
            get(CACHE_TTL_SECONDS),
            DEFAULT_CACHE_TTL_SECONDS,
            0..=86_400,
        )?;
        let origin_timeout_ms = parse_u64(
            ORIGIN_TIMEOUT_MS,
            get(ORIGIN_TIMEOUT_MS),
            DEFAULT_ORIGIN_TIMEOUT_MS,
            1..=60_000,
        )?;
        let failure_threshold = parse_u64(
            BREAKER_FAILURE_THRESHOLD,
            get(BREAKER_FAILURE_THRESHOLD),
            3,
            1..=1_000,
        )?;
        let cooldown_ms = parse_u64(
            BREAKER_COOLDOWN_MS,
            get(BREAKER_COOLDOWN_MS),
            10_000,
            1..=3_600_000,
        )?;
        let backoff_base = parse_u64(
            RETRY_BACKOFF_BASE_MS,
            get(RETRY_BACKOFF_BASE_MS),
            50,
            0..=10_000,
        )?;
        let backoff_max = parse_u64(
            RETRY_BACKOFF_MAX_MS,
            get(RETRY_BACKOFF_MAX_MS),
            400,
            0..=60_000,
        )?;
        if backoff_max < backoff_base {
            return Err(ConfigError::new(
                RETRY_BACKOFF_MAX_MS,
                format!("{backoff_max} is smaller than {RETRY_BACKOFF_BASE_MS} ({backoff_base})"),
            ));
        }

        let regions = order
            .into_iter()
            .map(|name| {
                let origin = origins[&name].clone();
                Region { name, origin }
            })
            .collect();

        Ok(Config {
            regions,
            default_region,
            country_regions,
            continent_regions,
            cache_ttl_ms: cache_ttl_s * 1000,
            origin_timeout_ms,
            breaker: BreakerConfig {
                failure_threshold: u32::try_from(failure_threshold).unwrap_or(u32::MAX),
                cooldown_ms,
            },
            backoff: Backoff {
                base_ms: backoff_base,
                max_ms: backoff_max,
            },
        })
    }

    /// The known region matching `name` (trimmed, case-insensitive), if any.
    pub fn known_region(&self, name: &str) -> Option<&str> {
        let wanted = normalize_region(name);
        self.regions
            .iter()
            .find(|r| r.name == wanted)
            .map(|r| r.name.as_str())
    }

    pub fn origin_of(&self, region: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|r| r.name == region)
            .map(|r| r.origin.as_str())
    }

    /// Region names in failover order.
    pub fn failover_order(&self) -> impl Iterator<Item = &str> {
        self.regions.iter().map(|r| r.name.as_str())
    }

    /// The region serving a country: a `COUNTRY_REGIONS` override first, else the country's
    /// continent through the continent map; `None` when neither applies (unknown country).
    pub fn region_for_country(&self, country: &str) -> Option<&str> {
        let code = country.trim().to_ascii_uppercase();
        if let Some(region) = self.country_regions.get(&code) {
            return Some(region);
        }
        let continent = countries::continent_of(&code)?;
        self.continent_regions.get(&continent).map(String::as_str)
    }
}

fn normalize_region(name: &str) -> String {
    name.trim().to_ascii_lowercase()
}

fn known_list(origins: &BTreeMap<String, String>) -> String {
    let names: Vec<&str> = origins.keys().map(String::as_str).collect();
    format!("known: {}", names.join(", "))
}

fn is_valid_region_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_json_object(
    variable: &'static str,
    raw: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ConfigError> {
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::new(variable, "must be a JSON object")),
        Err(e) => Err(ConfigError::new(
            variable,
            format!("is not valid JSON ({e})"),
        )),
    }
}

fn string_value<'a>(
    variable: &'static str,
    key: &str,
    value: &'a serde_json::Value,
) -> Result<&'a str, ConfigError> {
    value
        .as_str()
        .ok_or_else(|| ConfigError::new(variable, format!("value of {key:?} must be a string")))
}

/// Validates an origin base URL and returns it without trailing slashes.
fn normalize_origin_url(region: &str, url: &str) -> Result<String, ConfigError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            ConfigError::new(
                REGION_ORIGINS,
                format!("origin of {region:?} must start with http:// or https:// (got {url:?})"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || url.contains(['?', '#', ' ']) {
        return Err(ConfigError::new(
            REGION_ORIGINS,
            format!("origin of {region:?} is not a base URL (got {url:?})"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn parse_region_origins(raw: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let map = parse_json_object(REGION_ORIGINS, raw)?;
    if map.is_empty() {
        return Err(ConfigError::new(REGION_ORIGINS, "names no region"));
    }
    let mut origins = BTreeMap::new();
    for (key, value) in &map {
        let name = normalize_region(key);
        if !is_valid_region_name(&name) {
            return Err(ConfigError::new(
                REGION_ORIGINS,
                format!("{key:?} is not a region name (lowercase letters, digits, - or _)"),
            ));
        }
        let url = normalize_origin_url(&name, string_value(REGION_ORIGINS, key, value)?)?;
        if origins.insert(name.clone(), url).is_some() {
            return Err(ConfigError::new(
                REGION_ORIGINS,
                format!("region {name:?} is listed twice"),
            ));
        }
    }
    Ok(origins)
}

/// `FAILOVER_ORDER` is a comma-separated list naming every region exactly once: being strict
/// here means a region can never be silently left out of failover.
fn parse_failover_order(
    raw: &str,
    origins: &BTreeMap<String, String>,
) -> Result<Vec<String>, ConfigError> {
    let mut order: Vec<String> = Vec::new();
    for item in raw.split(',') {
        let name = normalize_region(item);
        if name.is_empty() {
            return Err(ConfigError::new(FAILOVER_ORDER, "has an empty entry"));
        }
        if !origins.contains_key(&name) {
            return Err(ConfigError::new(
                FAILOVER_ORDER,
                format!(
                    "{name:?} is not a region of {REGION_ORIGINS} ({})",
                    known_list(origins)
                ),
            ));
        }
        if order.contains(&name) {
            return Err(ConfigError::new(
                FAILOVER_ORDER,
                format!("{name:?} is listed twice"),
            ));
        }
        order.push(name);
    }
    let missing: Vec<&str> = origins
        .keys()
        .filter(|k| !order.contains(k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::new(
            FAILOVER_ORDER,
            format!("must list every region; missing {}", missing.join(", ")),
        ));
    }
    Ok(order)
}

fn parse_country_regions(
    raw: &str,
    origins: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let map = parse_json_object(COUNTRY_REGIONS, raw)?;
    let mut out = BTreeMap::new();
    for (key, value) in &map {
        let code = key.trim().to_ascii_uppercase();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::new(
                COUNTRY_REGIONS,
                format!("{key:?} is not a two-letter country code"),
            ));
        }
        let region = normalize_region(string_value(COUNTRY_REGIONS, key, value)?);
        if !origins.contains_key(&region) {
            return Err(ConfigError::new(
                COUNTRY_REGIONS,
                format!(
                    "{code} maps to {region:?}, which is not a region of {REGION_ORIGINS} ({})",
                    known_list(origins)
                ),
            ));
        }
        out.insert(code, region);
    }
    Ok(out)
}

/// Built-in continent defaults (only those naming a configured region) overlaid with
/// `CONTINENT_REGIONS`, whose entries must all name configured regions.
fn parse_continent_regions(
    raw: Option<String>,
    origins: &BTreeMap<String, String>,
) -> Result<BTreeMap<Continent, String>, ConfigError> {
    let mut out: BTreeMap<Continent, String> = countries::DEFAULT_CONTINENT_REGIONS
        .iter()
        .filter(|(_, region)| origins.contains_key(*region))
        .map(|(c, region)| (*c, (*region).to_string()))
        .collect();
    let Some(raw) = raw else {
        return Ok(out);
    };
    for (key, value) in &parse_json_object(CONTINENT_REGIONS, &raw)? {
        let continent = Continent::from_code(key.trim()).ok_or_else(|| {
            ConfigError::new(
                CONTINENT_REGIONS,
                format!("{key:?} is not a continent code (AF, AN, AS, EU, NA, OC, SA)"),
            )
        })?;
        let region = normalize_region(string_value(CONTINENT_REGIONS, key, value)?);
        if !origins.contains_key(&region) {
            return Err(ConfigError::new(
                CONTINENT_REGIONS,
                format!(
                    "{key} maps to {region:?}, which is not a region of {REGION_ORIGINS} ({})",
                    known_list(origins)
                ),
            ));
        }
        out.insert(continent, region);
    }
    Ok(out)
}

fn parse_u64(
    variable: &'static str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| {
        ConfigError::new(variable, format!("{raw:?} is not a non-negative integer"))
    })?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            variable,
            format!(
                "{value} is out of range {}..={}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use std::cell::Cell;

    fn vars(origins: &str) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| match name {
            REGION_ORIGINS => Some(origins.to_owned()),
            DEFAULT_REGION => Some("eu".to_owned()),
            FAILOVER_ORDER => Some("eu".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn parses_once_per_distinct_raw_values() {
        let mut cache = ConfigCache::default();
        let first = cache
            .load(vars(r#"{"eu":"http://127.0.0.1:8081"}"#))
            .unwrap();
        let again = cache
            .load(vars(r#"{"eu":"http://127.0.0.1:8081"}"#))
            .unwrap();
        assert!(
            Rc::ptr_eq(&first, &again),
            "same raw values must not be parsed again"
        );
        let changed = cache
            .load(vars(r#"{"eu":"http://127.0.0.1:9999"}"#))
            .unwrap();
        assert!(!Rc::ptr_eq(&first, &changed));
        let direct = Config::from_lookup(vars(r#"{"eu":"http://127.0.0.1:9999"}"#)).unwrap();
        assert_eq!(*changed, direct);
    }

    #[test]
    fn errors_are_kept_and_every_variable_is_read() {
        let mut cache = ConfigCache::default();
        let err = cache.load(vars("not json")).unwrap_err();
        assert_eq!(err.variable, REGION_ORIGINS);
        assert_eq!(cache.load(vars("not json")).unwrap_err(), err);
        let reads = Cell::new(0);
        let _ = cache.load(|name| {
            reads.set(reads.get() + 1);
            vars("not json")(name)
        });
        assert_eq!(reads.get(), ALL_VARS.len());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) const ORIGINS: &str = r#"{"eu":"http://127.0.0.1:8081","us":"http://127.0.0.1:8082/","asia":"http://127.0.0.1:8083"}"#;

    pub(crate) fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = [
            (REGION_ORIGINS, ORIGINS),
            (DEFAULT_REGION, "eu"),
            (FAILOVER_ORDER, "eu,us,asia"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            m.insert((*k).to_string(), (*v).to_string());
        }
        m
    }

    pub(crate) fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m = vars(pairs);
        Config::from_lookup(|k| m.get(k).cloned())
    }

    /// The local configuration of wrangler.toml.
    pub(crate) fn local() -> Config {
        config(&[]).unwrap()
    }

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        config(pairs).unwrap_err()
    }

    #[test]
    fn defaults_and_normalisation() {
        let c = local();
        let names: Vec<&str> = c.failover_order().collect();
        assert_eq!(names, ["eu", "us", "asia"]);
        assert_eq!(c.origin_of("us"), Some("http://127.0.0.1:8082"));
        assert_eq!(c.default_region, "eu");
        assert_eq!(c.cache_ttl_ms, 30_000);
        assert_eq!(c.origin_timeout_ms, DEFAULT_ORIGIN_TIMEOUT_MS);
        assert_eq!(c.breaker.failure_threshold, 3);
        assert_eq!(c.known_region(" US "), Some("us"));
        assert_eq!(c.known_region("mars"), None);
    }

    #[test]
    fn the_wrangler_toml_values_parse() {
        let toml = include_str!("../../wrangler.toml");
        // Read the [vars] table's string values by hand: enough to prove the committed local
        // configuration is valid without a TOML parser dependency.
        let mut in_vars = false;
        let mut m = HashMap::new();
        for line in toml.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_vars = line == "[vars]";
                continue;
            }
            if !in_vars || line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').unwrap();
            let v = v.trim();
            let v = if let Some(inner) = v.strip_prefix("'''").and_then(|s| s.strip_suffix("'''")) {
                inner.to_string()
            } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                inner.to_string()
            } else {
                serde_json::from_str::<String>(v).unwrap()
            };
            m.insert(k.trim().to_string(), v);
        }
        let c = Config::from_lookup(|k| m.get(k).cloned()).unwrap();
        assert_eq!(c.origin_of("eu"), Some("http://127.0.0.1:8081"));
        assert_eq!(c.origin_of("us"), Some("http://127.0.0.1:8082"));
        assert_eq!(c.origin_of("asia"), Some("http://127.0.0.1:8083"));
        assert_eq!(c.cache_ttl_ms, 30_000);
    }

    #[test]
    fn missing_required_variables_are_named() {
        for var in [REGION_ORIGINS, DEFAULT_REGION, FAILOVER_ORDER] {
            let mut m = vars(&[]);
            m.remove(var);
            let e = Config::from_lookup(|k| m.get(k).cloned()).unwrap_err();
            assert_eq!(e.variable, var);
            assert!(e.to_string().contains(var), "{e}");
            assert!(e.message.contains("not set"));
        }
        // Blank counts as unset.
        assert_eq!(err(&[(DEFAULT_REGION, "  ")]).variable, DEFAULT_REGION);
    }

    #[test]
    fn region_origins_errors() {
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"eu": 8081}"#,
            r#"{"eu": "ftp://x"}"#,
            r#"{"eu": "http://"}"#,
            r#"{"eu": "http://x/?a=1"}"#,
            r#"{"e u": "http://x"}"#,
            r#"{"EU": "http://x", "eu": "http://y"}"#,
        ] {
            let e = err(&[
                (REGION_ORIGINS, bad),
                (FAILOVER_ORDER, "eu"),
                (DEFAULT_REGION, "eu"),
            ]);
            assert_eq!(e.variable, REGION_ORIGINS, "{bad}: {e}");
        }
    }

    #[test]
    fn failover_order_must_be_a_permutation() {
        for bad in ["eu,us", "eu,us,asia,eu", "eu,,us,asia", "eu,us,mars,asia"] {
            let e = err(&[(FAILOVER_ORDER, bad)]);
            assert_eq!(e.variable, FAILOVER_ORDER, "{bad}: {e}");
        }
        let c = config(&[(FAILOVER_ORDER, " ASIA , us,eu ")]).unwrap();
        assert_eq!(c.failover_order().collect::<Vec<_>>(), ["asia", "us", "eu"]);
    }

    #[test]
    fn default_region_must_be_known() {
        let e = err(&[(DEFAULT_REGION, "mars")]);
        assert_eq!(e.variable, DEFAULT_REGION);
        assert!(e.message.contains("known: asia, eu, us"), "{}", e.message);
    }

    #[test]
    fn numbers_are_validated() {
        assert_eq!(
            err(&[(CACHE_TTL_SECONDS, "thirty")]).variable,
            CACHE_TTL_SECONDS
        );
        assert_eq!(
            err(&[(CACHE_TTL_SECONDS, "-1")]).variable,
            CACHE_TTL_SECONDS
        );
        assert_eq!(err(&[(ORIGIN_TIMEOUT_MS, "0")]).variable, ORIGIN_TIMEOUT_MS);
        assert_eq!(
            err(&[(ORIGIN_TIMEOUT_MS, "600000")]).variable,
            ORIGIN_TIMEOUT_MS
        );
        assert_eq!(
            err(&[(BREAKER_FAILURE_THRESHOLD, "0")]).variable,
            BREAKER_FAILURE_THRESHOLD
        );
        assert_eq!(
            err(&[
                (RETRY_BACKOFF_BASE_MS, "500"),
                (RETRY_BACKOFF_MAX_MS, "100")
            ])
            .variable,
            RETRY_BACKOFF_MAX_MS
        );
        let c = config(&[(CACHE_TTL_SECONDS, "0"), (ORIGIN_TIMEOUT_MS, " 1500 ")]).unwrap();
        assert_eq!(c.cache_ttl_ms, 0);
        assert_eq!(c.origin_timeout_ms, 1500);
    }

    #[test]
    fn country_map_defaults_by_continent_and_overrides() {
        let c = local();
        assert_eq!(c.region_for_country("DE"), Some("eu"));
        assert_eq!(c.region_for_country("NG"), Some("eu"));
        assert_eq!(c.region_for_country("US"), Some("us"));
        assert_eq!(c.region_for_country("BR"), Some("us"));
        assert_eq!(c.region_for_country("jp"), Some("asia"));
        assert_eq!(c.region_for_country("AU"), Some("asia"));
        assert_eq!(c.region_for_country("XX"), None);
        assert_eq!(c.region_for_country("T1"), None);

        let c = config(&[
            (COUNTRY_REGIONS, r#"{"gb":"us","AU":"us"}"#),
            (CONTINENT_REGIONS, r#"{"AF":"asia"}"#),
        ])
        .unwrap();
        assert_eq!(c.region_for_country("GB"), Some("us"));
        assert_eq!(c.region_for_country("AU"), Some("us"));
        assert_eq!(c.region_for_country("NZ"), Some("asia"));
        assert_eq!(c.region_for_country("KE"), Some("asia"));
        assert_eq!(c.region_for_country("FR"), Some("eu"));
    }

    #[test]
    fn every_iso_country_maps_to_a_known_region_by_default() {
        let c = local();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                if countries::continent_of(&code).is_some() {
                    let r = c.region_for_country(&code).unwrap();
                    assert!(c.known_region(r).is_some(), "{code} -> {r}");
                }
            }
        }
    }

    #[test]
    fn built_in_continent_entries_for_missing_regions_are_dropped() {
        // A two-region deployment: Asian countries fall through to the default region.
        let c = config(&[
            (
                REGION_ORIGINS,
                r#"{"eu":"https://eu.example","us":"https://us.example"}"#,
            ),
            (FAILOVER_ORDER, "us,eu"),
        ])
        .unwrap();
        assert_eq!(c.region_for_country("JP"), None);
        assert_eq!(c.region_for_country("US"), Some("us"));
    }

    #[test]
    fn country_and_continent_map_errors() {
        for bad in [r#"{"GBR":"eu"}"#, r#"{"GB":"mars"}"#, r#"{"GB":1}"#, "[1]"] {
            assert_eq!(
                err(&[(COUNTRY_REGIONS, bad)]).variable,
                COUNTRY_REGIONS,
                "{bad}"
            );
        }
        for bad in [r#"{"XX":"eu"}"#, r#"{"EU":"mars"}"#, "nope"] {
            assert_eq!(
                err(&[(CONTINENT_REGIONS, bad)]).variable,
                CONTINENT_REGIONS,
                "{bad}"
            );
        }
    }
}
