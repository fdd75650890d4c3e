//! The owner-token settings of a process, from any variable lookup (the process environment of
//! the origin, the bindings of a Worker), validated once at start-up.
//!
//! | variable | |
//! |---|---|
//! | `OWNER_TOKEN_SECRET` | the current secret, at least 32 bytes (surrounding whitespace ignored) |
//! | `OWNER_TOKEN_PREVIOUS_SECRET` | optional: the secret before the last rotation, still accepted |
//! | `OWNER_TOKEN_TTL_SECONDS` | token lifetime from the game's creation (default 604800, 7 days) |
//! | `SEEDSYNC_ENV` | `development` (default) or `production` |
//!
//! In production a missing or short secret is fatal. In development a missing one is replaced
//! by an ephemeral random secret (the caller supplies the random bytes) and reported as
//! [`KeySource::Ephemeral`], so the caller can warn loudly: its tokens die with the process and
//! are not accepted by other regions. A secret that is set but short is fatal everywhere: it
//! is a mistake, not an absence.

pub use kernel::SettingsError;

use crate::{DEFAULT_TTL_MS, Keyring};

/// The current secret.
pub const SECRET_VAR: &str = "OWNER_TOKEN_SECRET";
/// The previous secret (rotation).
pub const PREVIOUS_SECRET_VAR: &str = "OWNER_TOKEN_PREVIOUS_SECRET";
/// Token lifetime, seconds.
pub const TTL_VAR: &str = "OWNER_TOKEN_TTL_SECONDS";
/// `development` or `production`.
pub const MODE_VAR: &str = "SEEDSYNC_ENV";
/// Every variable this module reads.
pub const VARIABLES: [&str; 4] = [SECRET_VAR, PREVIOUS_SECRET_VAR, TTL_VAR, MODE_VAR];

/// Longest accepted token lifetime: one year.
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 60 * 60;

/// How strict start-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Missing secrets are replaced by an ephemeral one, with a warning.
    Development,
    /// Missing or short secrets stop the process.
    Production,
}

impl Mode {
    /// The mode named by `SEEDSYNC_ENV` (absent: development).
    pub fn parse(value: Option<&str>) -> Result<Mode, SettingsError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "development" | "dev" | "test") => Ok(Mode::Development),
            Some("production" | "prod") => Ok(Mode::Production),
            Some(other) => Err(SettingsError {
                variable: MODE_VAR,
                message: format!("{other:?} is not `development` or `production`"),
            }),
        }
    }
}

/// Where the current key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `OWNER_TOKEN_SECRET`.
    Configured,
    /// Generated for this process (development only): tokens do not survive a restart and
    /// other processes do not accept them.
    Ephemeral,
}

/// The keyring described by the variables `lookup` finds. `random` is called only when a
/// development process has no secret.
pub fn keyring(
    lookup: impl Fn(&str) -> Option<String>,
    random: impl FnOnce() -> [u8; 32],
) -> Result<(Keyring, KeySource, Mode), SettingsError> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mode = Mode::parse(get(MODE_VAR).as_deref())?;
    let ttl_seconds = match get(TTL_VAR) {
        None => u64::try_from(DEFAULT_TTL_MS / 1000).unwrap_or(604_800),
        Some(raw) => match raw.parse::<u64>() {
            Ok(s @ 1..=MAX_TTL_SECONDS) => s,
            _ => {
                return Err(SettingsError {
                    variable: TTL_VAR,
                    message: format!("{raw:?} is not a number of seconds in 1..={MAX_TTL_SECONDS}"),
                });
            }
        },
    };
    let ttl_ms = i64::try_from(ttl_seconds * 1000).unwrap_or(DEFAULT_TTL_MS);
    let previous = get(PREVIOUS_SECRET_VAR);
    let previous_keys: Vec<&[u8]> = previous.iter().map(|s| s.as_bytes()).collect();
    // Checked first so its error names its own variable.
    if let Some(p) = &previous {
        Keyring::new(p.as_bytes(), &[], ttl_ms).map_err(|e| SettingsError {
            variable: PREVIOUS_SECRET_VAR,
            message: e.to_string(),
        })?;
    }
    let (current, source) = match get(SECRET_VAR) {
        Some(secret) => (secret.into_bytes(), KeySource::Configured),
        None if mode == Mode::Production => {
            return Err(SettingsError {
                variable: SECRET_VAR,
                message: format!(
                    "is required when {MODE_VAR}=production: set it to a random secret of at least {} bytes shared by every origin (and rotate through {PREVIOUS_SECRET_VAR})",
                    crate::MIN_SECRET_BYTES
                ),
            });
        }
        None => (random().to_vec(), KeySource::Ephemeral),
    };
    let keyring = Keyring::new(&current, &previous_keys, ttl_ms).map_err(|e| SettingsError {
        variable: SECRET_VAR,
        message: e.to_string(),
    })?;
    Ok((keyring, source, mode))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789abcdef";

    fn run(pairs: &[(&str, &str)]) -> Result<(Keyring, KeySource, Mode), SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        keyring(|name| vars.get(name).cloned(), || [7u8; 32])
    }

    #[test]
    fn development_without_a_secret_is_ephemeral() {
        let (keys, source, mode) = run(&[]).unwrap();
        assert_eq!((source, mode), (KeySource::Ephemeral, Mode::Development));
        assert_eq!(keys.ttl_ms(), DEFAULT_TTL_MS);
    }

    #[test]
    fn production_requires_a_long_secret() {
        let err = run(&[(MODE_VAR, "production")]).unwrap_err();
        assert_eq!(err.variable, SECRET_VAR);
        assert!(err.to_string().contains("OWNER_TOKEN_SECRET"), "{err}");
        let err = run(&[(MODE_VAR, "production"), (SECRET_VAR, "short")]).unwrap_err();
        assert_eq!(err.variable, SECRET_VAR);
        assert!(err.message.contains("at least 32 bytes"), "{err}");
        assert!(!err.message.contains("short"), "never echo a secret: {err}");
        let (_, source, mode) = run(&[(MODE_VAR, "PRODUCTION"), (SECRET_VAR, GOOD)]).unwrap();
        assert_eq!((source, mode), (KeySource::Configured, Mode::Production));
    }

    #[test]
    fn a_short_secret_is_fatal_in_development_too() {
        assert_eq!(run(&[(SECRET_VAR, "x")]).unwrap_err().variable, SECRET_VAR);
        assert_eq!(
            run(&[(SECRET_VAR, GOOD), (PREVIOUS_SECRET_VAR, "x")])
                .unwrap_err()
                .variable,
            PREVIOUS_SECRET_VAR
        );
    }

    #[test]
    fn rotation_and_ttl() {
        let old = run(&[(SECRET_VAR, &GOOD.repeat(2))]).unwrap().0;
        let token = old.issue("g", "u", 0);
        let (rotated, ..) = run(&[
            (SECRET_VAR, GOOD),
            (PREVIOUS_SECRET_VAR, &GOOD.repeat(2)),
            (TTL_VAR, "60"),
        ])
        .unwrap();
        assert_eq!(rotated.ttl_ms(), 60_000);
        assert!(rotated.verify(&token, 1).is_ok());
        assert_eq!(rotated.kids().count(), 2);
        // Whitespace around a secret (a trailing newline from a file) does not change the key.
        let (padded, ..) = run(&[(SECRET_VAR, &format!(" {GOOD}\n"))]).unwrap();
        let (plain, ..) = run(&[(SECRET_VAR, GOOD)]).unwrap();
        assert_eq!(padded.current_kid(), plain.current_kid());
        for bad in ["0", "-5", "x", "31536001"] {
            assert_eq!(run(&[(TTL_VAR, bad)]).unwrap_err().variable, TTL_VAR);
        }
        assert_eq!(
            run(&[(MODE_VAR, "staging")]).unwrap_err().variable,
            MODE_VAR
        );
    }
}
