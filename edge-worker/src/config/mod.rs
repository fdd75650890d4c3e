//! The edge's configuration, read from the Worker's `[vars]` (all plain strings, so `wrangler dev
//! --var NAME:VALUE` can override any of them) and validated up front: a bad value becomes a
//! [`SettingsError`] naming the variable, which the Worker answers as a JSON 500 instead of
//! panicking somewhere down the line.
//!
//! [`vars`] holds the variable names, defaults and scalar parsers; [`regions`] the region,
//! failover and geo-routing maps; [`live`] the live-routing settings. The settings the Worker
//! uses on every request or socket message (rate limits, room thresholds, the owner-token
//! keyring, the notify secret) are parsed here too, once per distinct `[vars]`, never per use.

use std::collections::BTreeMap;
use std::rc::Rc;

use api::RegionName;

use kernel::Secret;
use trust::Keys;

use crate::backoff::Backoff;
use crate::breaker::BreakerConfig;
use crate::rate_limit;
use crate::room::RoomSettings;
use crate::user_auth::UserAuth;

pub mod live;
pub mod regions;
pub mod vars;

pub use live::{LiveSettings, Policy, RegistryTrust};
pub use regions::{Continent, DEFAULT_CONTINENT_REGIONS};
pub use vars::*;

/// A configuration variable that is missing or malformed: the workspace's one settings error,
/// which names the variable and never holds a secret's value.
pub use kernel::SettingsError;

/// The answer to a request the edge cannot serve for its own bad configuration: a 500
/// `internal` naming the variable. The operator's to fix, and the values involved are the
/// operator's own (region names and origin URLs, which `/edge/regions` lists anyway).
pub fn misconfigured(e: &SettingsError) -> api::ApiError {
    api::ApiError::internal(format!("edge misconfigured: {e}"))
}

/// One region and the base URL of its origin (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Its name.
    pub name: RegionName,
    /// Its origin's base URL.
    pub origin: String,
}

/// Parses the configuration once per distinct set of raw values. The Worker reads its vars on
/// every request, but they only change with a new deployment, so parsing the JSON maps each time
/// would be wasted work on the hot path; keying on the raw values keeps any change visible.
#[derive(Debug, Default)]
pub struct ConfigCache {
    /// The raw values last seen, and what they parsed to.
    last: Option<(RawVars, Result<Rc<Config>, SettingsError>)>,
}

/// The raw value of each of [`ALL_VARS`], in order.
type RawVars = Vec<Option<String>>;

impl ConfigCache {
    /// The configuration for the current raw values of [`ALL_VARS`].
    pub fn load(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Rc<Config>, SettingsError> {
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
    /// The region used when no hint names one.
    pub default_region: RegionName,
    /// Per-country overrides (uppercase ISO code -> configured region).
    pub country_regions: BTreeMap<String, RegionName>,
    /// Continent -> configured region, built-in defaults merged with `CONTINENT_REGIONS`.
    pub continent_regions: BTreeMap<Continent, RegionName>,
    /// Cache TTL in ms (0: no caching).
    pub cache_ttl_ms: u64,
    /// Budget of one origin exchange, in ms.
    pub origin_timeout_ms: u64,
    /// Circuit breaker parameters.
    pub breaker: BreakerConfig,
    /// Backoff between failover attempts.
    pub backoff: Backoff,
    /// Live routing: policy order, registry refresh, load threshold, hysteresis.
    pub live: LiveSettings,
    /// The per-client rate limits. A bad value fails the requests they limit (a 500 naming
    /// the variable), not the configuration as a whole.
    pub rate_limits: Result<rate_limit::Settings, SettingsError>,
    /// What the live rooms read: latency thresholds and the owner-token keyring.
    pub room: RoomSettings,
    /// `EDGE_NOTIFY_SECRET` (`None`: unset or empty, so the notice route does not exist).
    pub notify_secret: Option<Secret>,
    /// `EDGE_ORIGIN_SECRET` (+ previous): every origin request is signed with it
    /// ([`trust::edge_auth`]). `None` (development only): requests go unsigned, with
    /// `x-forwarded-for` alone. Required with `SEEDSYNC_ENV=production`.
    pub origin_keys: Option<Keys>,
    /// Who a user is (`USER_AUTH` and its secrets). A bad value fails the requests that need
    /// a user (a 500 naming the variable), not the configuration as a whole.
    pub users: UserSettings,
}

/// [`UserAuth::from_lookup`]'s answer, kept as it came (shared: a JWKS parse is not free).
#[derive(Clone)]
pub struct UserSettings(pub Result<Rc<UserAuth>, SettingsError>);

impl PartialEq for UserSettings {
    /// The same parse (configurations are compared after cloning, never re-parsed to compare).
    fn eq(&self, other: &UserSettings) -> bool {
        match (&self.0, &other.0) {
            (Ok(a), Ok(b)) => Rc::ptr_eq(a, b),
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for UserSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(auth) => write!(f, "UserSettings({})", auth.mode().name()),
            Err(e) => write!(f, "UserSettings(invalid: {e})"),
        }
    }
}

impl Config {
    /// Builds the configuration from a variable lookup (`None` = variable not set). Empty strings
    /// count as not set, so an optional variable can be blanked with `--var NAME:`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required =
            |name: &'static str| get(name).ok_or_else(|| SettingsError::new(name, "is not set"));

        let origins = regions::parse_region_origins(&required(REGION_ORIGINS)?)?;
        let order = regions::parse_failover_order(&required(FAILOVER_ORDER)?, &origins)?;
        let default_region =
            regions::known_region(DEFAULT_REGION, required(DEFAULT_REGION)?.trim(), &origins)?;
        let country_regions =
            regions::parse_country_regions(get(COUNTRY_REGIONS).as_deref(), &origins)?;
        let continent_regions =
            regions::parse_continent_regions(get(CONTINENT_REGIONS).as_deref(), &origins)?;

        let number = |name: &'static str, default: u64, range| {
            bounded_u64(name, get(name).as_deref(), default, range)
        };
        let cache_ttl_s = number(CACHE_TTL_SECONDS, DEFAULT_CACHE_TTL_SECONDS, 0..=86_400)?;
        let origin_timeout_ms = number(ORIGIN_TIMEOUT_MS, DEFAULT_ORIGIN_TIMEOUT_MS, 1..=60_000)?;
        let failure_threshold = number(
            BREAKER_FAILURE_THRESHOLD,
            DEFAULT_BREAKER_FAILURE_THRESHOLD,
            1..=1_000,
        )?;
        let cooldown_ms = number(
            BREAKER_COOLDOWN_MS,
            DEFAULT_BREAKER_COOLDOWN_MS,
            1..=3_600_000,
        )?;
        let backoff_base = number(
            RETRY_BACKOFF_BASE_MS,
            DEFAULT_RETRY_BACKOFF_BASE_MS,
            0..=10_000,
        )?;
        let backoff_max = number(
            RETRY_BACKOFF_MAX_MS,
            DEFAULT_RETRY_BACKOFF_MAX_MS,
            0..=60_000,
        )?;
        if backoff_max < backoff_base {
            return Err(SettingsError::new(
                RETRY_BACKOFF_MAX_MS,
                format!("{backoff_max} is smaller than {RETRY_BACKOFF_BASE_MS} ({backoff_base})"),
            ));
        }

        let live = live::parse(get)?;
        let rate_limits = rate_limit::Settings::from_lookup(&lookup);
        let room = RoomSettings::from_lookup(&lookup);
        // A Worker has no files: its secrets arrive as bindings (`wrangler secret put`).
        let no_files = |_: &str| Err(std::io::Error::other("a Worker reads no files"));
        let users = UserSettings(UserAuth::from_lookup(&lookup, no_files).map(Rc::new));
        let notify_secret = lookup(EDGE_NOTIFY_SECRET)
            .filter(|v| !v.is_empty())
            .map(Secret::new);
        let origin_keys = Keys::from_settings(
            |name| {
                [EDGE_ORIGIN_SECRET, EDGE_ORIGIN_PREVIOUS_SECRET]
                    .into_iter()
                    .find(|n| *n == name)
                    .and_then(get)
            },
            no_files,
            trust::edge_auth::SECRET_VARIABLES,
        )?;
        if origin_keys.is_none()
            && get(owner_token::env::MODE_VAR).is_some_and(|v| v.trim() == "production")
        {
            return Err(SettingsError::new(
                EDGE_ORIGIN_SECRET,
                "is required with SEEDSYNC_ENV=production (the origins refuse public requests \
                 the edge has not signed); `wrangler secret put EDGE_ORIGIN_SECRET` with the \
                 origins' value",
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
            live,
            rate_limits,
            room,
            notify_secret,
            origin_keys,
            users,
        })
    }

    /// The configured region named exactly `name`, if any.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name.as_str() == name)
    }

    /// The configured region's name matching `name` exactly, if any.
    pub fn known_region(&self, name: &str) -> Option<&RegionName> {
        self.region(name).map(|r| &r.name)
    }

    /// The origin base URL of `region`.
    pub fn origin_of(&self, region: &str) -> Option<&str> {
        self.region(region).map(|r| r.origin.as_str())
    }

    /// Region names in failover order.
    pub fn failover_order(&self) -> impl Iterator<Item = &RegionName> {
        self.regions.iter().map(|r| &r.name)
    }

    /// The region serving a client located by `request.cf`: a `COUNTRY_REGIONS` override for
    /// its country first, else its continent through the continent map; `None` when neither
    /// applies (no location, or a continent mapped to no configured region).
    pub fn region_for_location(
        &self,
        country: Option<&str>,
        continent: Option<&str>,
    ) -> Option<&RegionName> {
        if let Some(region) =
            country.and_then(|c| self.country_regions.get(&c.trim().to_ascii_uppercase()))
        {
            return Some(region);
        }
        let continent = Continent::from_code(continent?)?;
        self.continent_regions.get(&continent)
    }
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
        // Debug, not ==: two parses hold distinct (pointer-compared) user settings.
        assert_eq!(format!("{:?}", *changed), format!("{direct:?}"));
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

    pub(crate) fn config(pairs: &[(&str, &str)]) -> Result<Config, SettingsError> {
        let m = vars(pairs);
        Config::from_lookup(|k| m.get(k).cloned())
    }

    /// The local configuration of wrangler.toml.
    pub(crate) fn local() -> Config {
        config(&[]).unwrap()
    }

    fn err(pairs: &[(&str, &str)]) -> SettingsError {
        config(pairs).unwrap_err()
    }

    /// The region a client in `country` on `continent` is routed to by geo.
    fn geo<'c>(c: &'c Config, country: &str, continent: &str) -> Option<&'c str> {
        c.region_for_location(Some(country), Some(continent))
            .map(RegionName::as_str)
    }

    #[test]
    fn edge_origin_secret_is_parsed_once_and_required_in_production() {
        const SECRET: &str = "edge-origin-secret-for-the-edge-tests-0123456789";
        assert_eq!(local().origin_keys, None);
        let c = config(&[(EDGE_ORIGIN_SECRET, SECRET)]).unwrap();
        assert!(c.origin_keys.is_some());
        assert!(!format!("{c:?}").contains(SECRET), "redacted in Debug");
        let prod = [
            ("SEEDSYNC_ENV", "production"),
            // What production needs besides (the registry's trust); not under test here.
            (REGISTRY_REFRESH_MS, "0"),
        ];
        assert_eq!(err(&prod).variable, EDGE_ORIGIN_SECRET);
        let with = [prod[0], prod[1], (EDGE_ORIGIN_SECRET, SECRET)];
        assert!(config(&with).unwrap().origin_keys.is_some());
        let short = err(&[(EDGE_ORIGIN_SECRET, "short")]);
        assert_eq!(short.variable, EDGE_ORIGIN_SECRET);
        assert!(!short.to_string().contains("short"));
        assert_eq!(
            err(&[(EDGE_ORIGIN_PREVIOUS_SECRET, SECRET)]).variable,
            EDGE_ORIGIN_PREVIOUS_SECRET
        );
    }

    #[test]
    fn defaults_and_lookups() {
        let c = local();
        let names: Vec<&str> = c.failover_order().map(RegionName::as_str).collect();
        assert_eq!(names, ["eu", "us", "asia"]);
        assert_eq!(c.origin_of("us"), Some("http://127.0.0.1:8082"));
        assert_eq!(c.default_region.as_str(), "eu");
        assert_eq!(c.cache_ttl_ms, 30_000);
        assert_eq!(c.origin_timeout_ms, DEFAULT_ORIGIN_TIMEOUT_MS);
        assert_eq!(c.breaker.failure_threshold, 3);
        assert_eq!(c.known_region("us").map(RegionName::as_str), Some("us"));
        assert_eq!(c.known_region("US"), None, "region names are exact");
        assert_eq!(c.known_region("mars"), None);
    }

    /// The string values of wrangler.toml's `[table]`, read by hand: enough to prove the
    /// committed configuration is valid without a TOML parser dependency.
    fn wrangler_table(table: &str) -> HashMap<String, String> {
        let toml = include_str!("../../../wrangler.toml");
        let header = format!("[{table}]");
        let mut inside = false;
        let mut m = HashMap::new();
        for line in toml.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                inside = line == header;
                continue;
            }
            if !inside || line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').unwrap();
            let v = v.trim();
            let v = if let Some(inner) = v.strip_prefix("'''").and_then(|s| s.strip_suffix("'''")) {
                inner.to_string()
            } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                inner.to_string()
            } else if v.starts_with('[') {
                v.to_string()
            } else {
                serde_json::from_str::<String>(v).unwrap()
            };
            m.insert(k.trim().to_string(), v);
        }
        m
    }

    #[test]
    fn the_wrangler_toml_values_parse() {
        let m = wrangler_table("vars");
        let c = Config::from_lookup(|k| m.get(k).cloned()).unwrap();
        assert_eq!(c.origin_of("eu"), Some("http://127.0.0.1:8081"));
        assert_eq!(c.origin_of("us"), Some("http://127.0.0.1:8082"));
        assert_eq!(c.origin_of("asia"), Some("http://127.0.0.1:8083"));
        assert_eq!(c.cache_ttl_ms, 30_000);
    }

    /// `wrangler deploy --env production` with the secrets it declares: the production Worker
    /// must start in production mode with exactly those, and each is needed.
    #[test]
    fn the_production_environment_parses_with_its_declared_secrets() {
        let vars = wrangler_table("env.production.vars");
        assert_eq!(
            vars.get("SEEDSYNC_ENV").map(String::as_str),
            Some("production")
        );
        let required: Vec<String> =
            serde_json::from_str(&wrangler_table("env.production.secrets")["required"]).unwrap();
        let with = |skip: Option<&str>| {
            let mut m = vars.clone();
            for (i, name) in required.iter().enumerate() {
                if Some(name.as_str()) != skip {
                    // Distinct stand-ins of 48 bytes, what `wrangler secret put` would hold.
                    m.insert(
                        name.clone(),
                        format!("stand-in-secret-{i}-{}", "x".repeat(30)),
                    );
                }
            }
            Config::from_lookup(|k| m.get(k).cloned())
        };
        let c = with(None).unwrap_or_else(|e| panic!("production config: {e}"));
        assert!(
            c.origin_keys.is_some(),
            "the edge signs its origin requests"
        );
        assert!(c.notify_secret.is_some());
        assert!(c.rate_limits.is_ok());
        assert!(c.users.0.is_ok(), "{:?}", c.users);
        // Secrets the parser needs in production must be declared; the test fails on any
        // declared secret whose absence the parser does not notice for a reason we name here.
        for name in &required {
            // OWNER_TOKEN_SECRET and EDGE_NOTIFY_SECRET switch features on (player hellos,
            // exit notices) rather than being refused at parse time.
            if name == "OWNER_TOKEN_SECRET" || name == "EDGE_NOTIFY_SECRET" {
                continue;
            }
            // User settings are kept as parsed and refused at the first request that needs
            // them; everything else is refused at parse time.
            let e = match with(Some(name)) {
                Ok(c) => c.users.0.expect_err(name),
                Err(e) => e,
            };
            assert_eq!(&e.variable, name, "{e}");
        }
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
            r#"{"eu_1": "http://x"}"#,
            r#"{"EU": "http://x"}"#,
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
    fn an_underscore_region_is_a_config_error_naming_the_variable() {
        let e = err(&[
            (REGION_ORIGINS, r#"{"eu_west":"http://127.0.0.1:8081"}"#),
            (FAILOVER_ORDER, "eu_west"),
            (DEFAULT_REGION, "eu_west"),
        ]);
        assert_eq!(e.variable, REGION_ORIGINS);
        let api = misconfigured(&e);
        assert_eq!(api.code, api::ErrorCode::Internal);
        assert!(api.message.contains(REGION_ORIGINS), "{}", api.message);
        assert!(api.message.contains("\"eu_west\""), "{}", api.message);
    }

    #[test]
    fn failover_order_must_be_a_permutation() {
        for bad in [
            "eu,us",
            "eu,us,asia,eu",
            "eu,,us,asia",
            "eu,us,mars,asia",
            "EU,us,asia",
        ] {
            let e = err(&[(FAILOVER_ORDER, bad)]);
            assert_eq!(e.variable, FAILOVER_ORDER, "{bad}: {e}");
        }
        let c = config(&[(FAILOVER_ORDER, " asia , us,eu ")]).unwrap();
        let names: Vec<&str> = c.failover_order().map(RegionName::as_str).collect();
        assert_eq!(names, ["asia", "us", "eu"]);
    }

    #[test]
    fn default_region_must_be_known() {
        let e = err(&[(DEFAULT_REGION, "mars")]);
        assert_eq!(e.variable, DEFAULT_REGION);
        assert!(e.message.contains("known: asia, eu, us"), "{}", e.message);
        assert!(
            e.message.starts_with("\"mars\" is not a region"),
            "{}",
            e.message
        );
        assert_eq!(err(&[(DEFAULT_REGION, "e_u")]).variable, DEFAULT_REGION);
        assert_eq!(
            config(&[(DEFAULT_REGION, " us ")])
                .unwrap()
                .default_region
                .as_str(),
            "us"
        );
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
    fn geo_defaults_by_continent_with_country_overrides() {
        let c = local();
        assert_eq!(geo(&c, "DE", "EU"), Some("eu"));
        assert_eq!(geo(&c, "NG", "AF"), Some("eu"));
        assert_eq!(geo(&c, "US", "NA"), Some("us"));
        assert_eq!(geo(&c, "BR", "SA"), Some("us"));
        assert_eq!(geo(&c, "JP", "as"), Some("asia"));
        assert_eq!(geo(&c, "AU", "OC"), Some("asia"));
        assert_eq!(geo(&c, "AQ", "AN"), Some("us"));
        assert_eq!(geo(&c, "XX", "XX"), None);
        assert_eq!(geo(&c, "T1", "T1"), None);
        assert_eq!(c.region_for_location(None, None), None);
        assert_eq!(
            c.region_for_location(None, Some("EU"))
                .map(RegionName::as_str),
            Some("eu"),
            "a continent without a country still routes"
        );

        let c = config(&[
            (COUNTRY_REGIONS, r#"{"gb":"us","AU":"us"}"#),
            (CONTINENT_REGIONS, r#"{"AF":"asia"}"#),
        ])
        .unwrap();
        assert_eq!(geo(&c, "GB", "EU"), Some("us"), "country override");
        assert_eq!(geo(&c, "gb", "EU"), Some("us"));
        assert_eq!(geo(&c, "AU", "OC"), Some("us"));
        assert_eq!(geo(&c, "NZ", "OC"), Some("asia"));
        assert_eq!(geo(&c, "KE", "AF"), Some("asia"), "continent override");
        assert_eq!(geo(&c, "FR", "EU"), Some("eu"));
        assert_eq!(
            c.region_for_location(Some("GB"), None)
                .map(RegionName::as_str),
            Some("us"),
            "an override needs no continent"
        );
    }

    #[test]
    fn every_continent_maps_to_a_configured_region_by_default() {
        let c = local();
        for continent in Continent::ALL {
            let r = c.region_for_location(None, Some(continent.code())).unwrap();
            assert!(c.known_region(r.as_str()).is_some(), "{continent:?} -> {r}");
        }
    }

    #[test]
    fn built_in_continent_entries_for_missing_regions_are_dropped() {
        // A two-region deployment: Asian clients fall through to the default region.
        let c = config(&[
            (
                REGION_ORIGINS,
                r#"{"eu":"https://eu.example","us":"https://us.example"}"#,
            ),
            (FAILOVER_ORDER, "us,eu"),
        ])
        .unwrap();
        assert_eq!(geo(&c, "JP", "AS"), None);
        assert_eq!(geo(&c, "US", "NA"), Some("us"));
    }

    #[test]
    fn runtime_settings_are_parsed_with_the_config_and_keep_their_own_errors() {
        let c = local();
        assert_eq!(c.rate_limits, Ok(rate_limit::Settings::default()));
        assert_eq!(c.room.thresholds, crate::room::Thresholds::default());
        assert!(
            matches!(c.room.keyring.0, Ok(None)),
            "no secret: nobody plays"
        );
        assert_eq!(c.notify_secret, None);

        let secret = "an edge test secret of 32+ bytes, shared";
        let c = config(&[
            (rate_limit::READ_PER_IP, "off"),
            (crate::room::WARN_RTT_VAR, "120"),
            (owner_token::env::SECRET_VAR, secret),
            (EDGE_NOTIFY_SECRET, "notify-me"),
        ])
        .unwrap();
        assert_eq!(c.rate_limits.as_ref().unwrap().read_per_ip, None);
        assert_eq!(c.room.thresholds.rtt_ms, 120);
        assert!(matches!(c.room.keyring.0, Ok(Some(_))));
        assert!(c.notify_secret.as_ref().unwrap().matches("notify-me"));
        assert!(
            !format!("{c:?}").contains("notify-me"),
            "the secret never prints"
        );

        // A bad value fails only what uses it, with the error it always had.
        let c = config(&[
            (rate_limit::READ_PER_IP, "nope"),
            (owner_token::env::SECRET_VAR, "short"),
        ])
        .unwrap();
        assert_eq!(c.rate_limits.unwrap_err().variable, rate_limit::READ_PER_IP);
        let e = c.room.keyring.0.unwrap_err();
        assert!(e.message.contains("OWNER_TOKEN_SECRET"), "{}", e.message);
        // An empty notify secret leaves the route disabled.
        assert_eq!(
            config(&[(EDGE_NOTIFY_SECRET, "")]).unwrap().notify_secret,
            None
        );
    }

    #[test]
    fn country_and_continent_map_errors() {
        for bad in [
            r#"{"GBR":"eu"}"#,
            r#"{"GB":"mars"}"#,
            r#"{"GB":"e_u"}"#,
            r#"{"GB":1}"#,
            "[1]",
        ] {
            assert_eq!(
                err(&[(COUNTRY_REGIONS, bad)]).variable,
                COUNTRY_REGIONS,
                "{bad}"
            );
        }
        for bad in [
            r#"{"XX":"eu"}"#,
            r#"{"EU":"mars"}"#,
            r#"{"EU":"EU"}"#,
            "nope",
        ] {
            assert_eq!(
                err(&[(CONTINENT_REGIONS, bad)]).variable,
                CONTINENT_REGIONS,
                "{bad}"
            );
        }
    }
}
