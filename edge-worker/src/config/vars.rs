//! The Worker's `[vars]`: their names, defaults, and the parsers of their raw string values.
//! Every parser names its variable in the [`SettingsError`] it returns.

use serde_json::{Map, Value};

use owner_token::env::{MODE_VAR, PREVIOUS_SECRET_VAR, SECRET_VAR, TTL_VAR};

use super::SettingsError;
use crate::rate_limit::{MAX_KEYS, READ_PER_IP, START_PER_IP, START_PER_USER};
use crate::room::{WARN_JITTER_VAR, WARN_RTT_VAR};
use crate::roster::{HELLO_TIMEOUT_VAR, MAX_PER_ADDRESS_VAR, MAX_PER_ROOM_VAR};
use crate::user_auth;

/// JSON object region -> origin base URL (required).
pub const REGION_ORIGINS: &str = "REGION_ORIGINS";
/// The region used when no hint names one (required).
pub const DEFAULT_REGION: &str = "DEFAULT_REGION";
/// Comma-separated, every region exactly once (required).
pub const FAILOVER_ORDER: &str = "FAILOVER_ORDER";
/// JSON object ISO country -> region, checked before the continent map.
pub const COUNTRY_REGIONS: &str = "COUNTRY_REGIONS";
/// JSON object continent code -> region, merged over the built-in defaults.
pub const CONTINENT_REGIONS: &str = "CONTINENT_REGIONS";
/// Cache TTL in seconds (0 disables the cache).
pub const CACHE_TTL_SECONDS: &str = "CACHE_TTL_SECONDS";
/// Budget of one origin exchange, in ms.
pub const ORIGIN_TIMEOUT_MS: &str = "ORIGIN_TIMEOUT_MS";
/// Consecutive failures that open a region's breaker.
pub const BREAKER_FAILURE_THRESHOLD: &str = "BREAKER_FAILURE_THRESHOLD";
/// How long an open breaker skips its region, in ms.
pub const BREAKER_COOLDOWN_MS: &str = "BREAKER_COOLDOWN_MS";
/// Ceiling of the first retry's backoff, in ms.
pub const RETRY_BACKOFF_BASE_MS: &str = "RETRY_BACKOFF_BASE_MS";
/// Largest backoff ceiling, in ms.
pub const RETRY_BACKOFF_MAX_MS: &str = "RETRY_BACKOFF_MAX_MS";

/// Comma-separated routing policies for starts, in order.
pub const ROUTING_POLICY: &str = "ROUTING_POLICY";
/// How long a region table from the registry is used before a refresh, ms (0: static list).
pub const REGISTRY_REFRESH_MS: &str = "REGISTRY_REFRESH_MS";
/// Requests in flight above which the `load` policy skips a region.
pub const LOAD_THRESHOLD: &str = "LOAD_THRESHOLD";
/// How much faster (percent) another region must be to take over a latency choice.
pub const LATENCY_HYSTERESIS_PCT: &str = "LATENCY_HYSTERESIS_PCT";

/// The origins' registry signing secret: the edge uses only registry rows it signed.
pub const REGISTRY_SECRET: &str = trust::registry::SECRET_VARIABLES[0];
/// The previous registry secret, still accepted while a rotation is under way.
pub const REGISTRY_SECRET_PREVIOUS: &str = trust::registry::SECRET_VARIABLES[2];
/// Comma-separated URL patterns a registry row's origin URL must match (`https://*.example.com`).
pub const REGION_URL_PATTERN: &str = "REGION_URL_PATTERN";
/// Most regions the edge takes from the registry.
pub const REGION_MAX: &str = "REGION_MAX";

/// The shared secret of origin -> edge exit notices (unset: the notice route does not exist).
pub const EDGE_NOTIFY_SECRET: &str = "EDGE_NOTIFY_SECRET";

/// The secret the edge signs every origin request with (the origins hold the same one).
pub const EDGE_ORIGIN_SECRET: &str = trust::edge_auth::SECRET_VARIABLES[0];
/// The previous edge -> origin secret, still accepted by the origins during a rotation (the
/// edge signs with the current one only; listed so a rotation is one deployment of both).
pub const EDGE_ORIGIN_PREVIOUS_SECRET: &str = trust::edge_auth::SECRET_VARIABLES[2];

/// Every variable the edge reads, for the Worker glue to look up (all of them once per
/// distinct values: [`super::ConfigCache`]).
pub const ALL_VARS: [&str; 46] = [
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
    ROUTING_POLICY,
    REGISTRY_REFRESH_MS,
    LOAD_THRESHOLD,
    LATENCY_HYSTERESIS_PCT,
    START_PER_IP,
    START_PER_USER,
    READ_PER_IP,
    MAX_KEYS,
    WARN_RTT_VAR,
    WARN_JITTER_VAR,
    MAX_PER_ROOM_VAR,
    MAX_PER_ADDRESS_VAR,
    HELLO_TIMEOUT_VAR,
    SECRET_VAR,
    PREVIOUS_SECRET_VAR,
    TTL_VAR,
    MODE_VAR,
    EDGE_NOTIFY_SECRET,
    EDGE_ORIGIN_SECRET,
    EDGE_ORIGIN_PREVIOUS_SECRET,
    REGISTRY_SECRET,
    REGISTRY_SECRET_PREVIOUS,
    REGION_URL_PATTERN,
    REGION_MAX,
    user_auth::USER_AUTH,
    user_auth::USER_TOKEN_SECRET,
    user_auth::USER_TOKEN_PREVIOUS_SECRET,
    user_auth::GUEST_TOKEN_TTL_SECONDS,
    user_auth::USER_JWT_SECRET,
    user_auth::USER_JWT_JWKS,
    user_auth::USER_JWT_JWKS_URL,
    user_auth::USER_JWT_JWKS_CACHE_SECONDS,
    user_auth::USER_JWT_ISSUER,
    user_auth::USER_JWT_AUDIENCE,
    user_auth::USER_JWT_LEEWAY_SECONDS,
];

/// `CACHE_TTL_SECONDS` when unset.
pub const DEFAULT_CACHE_TTL_SECONDS: u64 = 30;
/// `ORIGIN_TIMEOUT_MS` when unset.
pub const DEFAULT_ORIGIN_TIMEOUT_MS: u64 = 5_000;
/// `BREAKER_FAILURE_THRESHOLD` when unset.
pub const DEFAULT_BREAKER_FAILURE_THRESHOLD: u64 = 3;
/// `BREAKER_COOLDOWN_MS` when unset.
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 10_000;
/// `RETRY_BACKOFF_BASE_MS` when unset.
pub const DEFAULT_RETRY_BACKOFF_BASE_MS: u64 = 50;
/// `RETRY_BACKOFF_MAX_MS` when unset.
pub const DEFAULT_RETRY_BACKOFF_MAX_MS: u64 = 400;

/// A JSON object variable.
pub(crate) fn json_object(
    variable: &'static str,
    raw: &str,
) -> Result<Map<String, Value>, SettingsError> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SettingsError::new(variable, "must be a JSON object")),
        Err(e) => Err(SettingsError::new(
            variable,
            format!("is not valid JSON ({e})"),
        )),
    }
}

/// The string value of `key` in a JSON object variable.
pub(crate) fn string_value<'a>(
    variable: &'static str,
    key: &str,
    value: &'a Value,
) -> Result<&'a str, SettingsError> {
    value
        .as_str()
        .ok_or_else(|| SettingsError::new(variable, format!("value of {key:?} must be a string")))
}

/// An integer variable within `range`, `default` when unset.
pub(crate) fn bounded_u64(
    variable: &'static str,
    raw: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, SettingsError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| {
        SettingsError::new(variable, format!("{raw:?} is not a non-negative integer"))
    })?;
    if !range.contains(&value) {
        return Err(SettingsError::new(
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
mod tests {
    use super::*;

    #[test]
    fn integers_are_bounded_and_named() {
        assert_eq!(bounded_u64(CACHE_TTL_SECONDS, None, 30, 0..=10), Ok(30));
        assert_eq!(
            bounded_u64(CACHE_TTL_SECONDS, Some(" 7 "), 30, 0..=10),
            Ok(7)
        );
        for bad in ["-1", "seven", "11", ""] {
            let e = bounded_u64(CACHE_TTL_SECONDS, Some(bad), 30, 0..=10).unwrap_err();
            assert_eq!(e.variable, CACHE_TTL_SECONDS, "{bad}");
        }
    }

    #[test]
    fn json_objects_only() {
        assert!(json_object(COUNTRY_REGIONS, r#"{"DE":"eu"}"#).is_ok());
        for bad in ["[]", "nope", "\"x\""] {
            assert_eq!(
                json_object(COUNTRY_REGIONS, bad).unwrap_err().variable,
                COUNTRY_REGIONS
            );
        }
        let e = string_value(COUNTRY_REGIONS, "DE", &Value::from(1)).unwrap_err();
        assert!(e.message.contains("\"DE\""), "{e}");
    }
}
