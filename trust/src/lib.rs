//! Who may speak for seedsync, checked without I/O: the pieces the origins and the edge Worker
//! share to decide whom to believe.
//!
//! - [`registry`]: region-registry records (name, URL, version, expiry) signed by an origin with
//!   `REGISTRY_SECRET`, so a row written by anyone else (an anonymous `register`, a forged
//!   Cassandra row) is ignored.
//! - [`pattern`]: `REGION_URL_PATTERN`, the allow-list a registry URL must match before the edge
//!   sends it anything.
//! - [`edge_auth`]: the edge's HMAC signature on each request it sends an origin
//!   (`EDGE_ORIGIN_SECRET`), binding method, path, time, a nonce and the client address the
//!   edge vouches for; plus [`edge_auth::ReplayGuard`], the bounded memory of nonces seen.
//!
//! Every key is a [`Keys`]: the current secret and optionally the previous one, so a secret
//! can be rotated without a flag day (deploy the new one as current with the old as previous
//! everywhere, then drop the previous).
//!
//! Pure logic, no clock and no randomness: callers pass the time and the nonces, so the same
//! code runs in the origin and in the Worker (wasm32) and tests are deterministic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod edge_auth;
pub mod pattern;
pub mod registry;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use kernel::{Secret, SettingsError};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted, in bytes (256 bits; `openssl rand -base64 48` gives 64).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why something was not believed. Deliberately coarse towards the peer (callers answer 401 or
/// 403 without detail); precise enough for a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Not in the expected format (a missing field, bad base64, an unknown version).
    Malformed,
    /// The MAC does not verify under any of the keys.
    BadSignature,
    /// A registry record past its expiry.
    Expired,
    /// A request timestamp older than the window allows.
    Stale,
    /// A request timestamp further in the future than the window allows.
    Future,
    /// A nonce already seen within the window.
    Replayed,
    /// The replay guard is full of live nonces; refused rather than forgetting one (which
    /// would let a replay through).
    GuardFull,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Malformed => "malformed",
            Why::BadSignature => "bad signature",
            Why::Expired => "expired",
            Why::Stale => "timestamp too old",
            Why::Future => "timestamp in the future",
            Why::Replayed => "nonce replayed",
            Why::GuardFull => "replay guard full",
        })
    }
}

impl std::error::Error for Why {}

/// A secret and, during a rotation, the one before it. Signing uses the current secret;
/// verifying accepts either.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    current: Secret,
    previous: Option<Secret>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

impl Keys {
    /// Keys from a current and an optional previous secret, each at least
    /// [`MIN_SECRET_BYTES`] long. `variable` names the setting in the error.
    pub fn new(
        variable: &'static str,
        current: Secret,
        previous: Option<Secret>,
    ) -> Result<Keys, SettingsError> {
        for secret in std::iter::once(&current).chain(previous.as_ref()) {
            if secret.expose().len() < MIN_SECRET_BYTES {
                return Err(SettingsError::new(
                    variable,
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes; generate one with `openssl rand -base64 48`"
                    ),
                ));
            }
        }
        Ok(Keys { current, previous })
    }

    /// Reads `NAME` (or `NAME_FILE`) and `PREVIOUS` (or `PREVIOUS_FILE`) with
    /// [`kernel::secret_setting`]. `Ok(None)` when the current secret is unset; a previous
    /// secret without a current one is an error (it would sign nothing and verify forever).
    pub fn from_settings(
        lookup: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<String>,
        names: [&'static str; 4],
    ) -> Result<Option<Keys>, SettingsError> {
        let [name, name_file, previous, previous_file] = names;
        let current = kernel::secret_setting(&lookup, &read_file, name, name_file)?;
        let previous_secret = kernel::secret_setting(&lookup, &read_file, previous, previous_file)?;
        match (current, previous_secret) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SettingsError::new(
                previous,
                format!("is set but {name} is not: set {name} (the current secret) too"),
            )),
            (Some(current), previous_secret) => {
                if let Some(p) = &previous_secret
                    && p.expose().len() < MIN_SECRET_BYTES
                {
                    return Err(SettingsError::new(
                        previous,
                        format!("must be at least {MIN_SECRET_BYTES} bytes"),
                    ));
                }
                Keys::new(name, current, previous_secret).map(Some)
            }
        }
    }

    /// Whether `given` is the current or the previous secret itself (a bearer credential),
    /// compared in time that depends only on the lengths; both are always compared.
    pub fn matches(&self, given: &str) -> bool {
        let current = self.current.matches(given);
        let previous = self.previous.as_ref().is_some_and(|p| p.matches(given));
        current | previous
    }

    /// The MAC of `message` under the current secret.
    fn tag(&self, message: &[u8]) -> [u8; 32] {
        tag_with(&self.current, message)
    }

    /// Whether `tag` is the MAC of `message` under the current or the previous secret
    /// (compared in constant time by `hmac`).
    fn verifies(&self, message: &[u8], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|secret| {
                let mut mac = keyed(secret);
                mac.update(message);
                mac.verify_slice(tag).is_ok()
            })
    }
}

fn keyed(secret: &Secret) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!())
}

fn tag_with(secret: &Secret, message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(secret);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Appends one field as `<decimal length>:<bytes>\n`. Length-prefixing makes the encoding
/// unambiguous whatever the field holds (a `\n` or `:` inside a value cannot shift a boundary),
/// so two different field lists never produce the same signed bytes.
fn push_field(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Decodes a base64url (no padding) 32-byte MAC.
fn decode_tag(text: &str) -> Result<[u8; 32], Why> {
    use base64::Engine as _;
    let mut tag = [0u8; 32];
    if text.len() != 43 {
        return Err(Why::Malformed);
    }
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(text, &mut tag) {
        Ok(32) => Ok(tag),
        _ => Err(Why::Malformed),
    }
}

fn encode_tag(tag: &[u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<Keys>, SettingsError> {
        Keys::from_settings(
            |name| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            },
            |_| Err(std::io::Error::other("no files here")),
            ["S", "S_FILE", "S_PREV", "S_PREV_FILE"],
        )
    }

    #[test]
    fn keys_from_settings() {
        let long = "k".repeat(32);
        assert_eq!(read(&[]), Ok(None));
        assert!(read(&[("S", &long)]).unwrap().is_some());
        assert_eq!(read(&[("S", "short")]).unwrap_err().variable, "S");
        assert_eq!(
            read(&[("S", &long), ("S_PREV", "short")])
                .unwrap_err()
                .variable,
            "S_PREV"
        );
        assert_eq!(read(&[("S_PREV", &long)]).unwrap_err().variable, "S_PREV");
        let error = read(&[("S_FILE", "/run/secrets/s")]).unwrap_err();
        assert_eq!(error.variable, "S_FILE");
        let keys = read(&[("S", &long), ("S_PREV", &"p".repeat(40))])
            .unwrap()
            .unwrap();
        let printed = format!("{keys:?}");
        assert!(!printed.contains("kkkk") && !printed.contains("pppp"));
    }

    #[test]
    fn bearer_matches_current_or_previous() {
        let keys = Keys::new(
            "T",
            Secret::new("c".repeat(32)),
            Some(Secret::new("p".repeat(32))),
        )
        .unwrap();
        assert!(keys.matches(&"c".repeat(32)));
        assert!(keys.matches(&"p".repeat(32)));
        assert!(!keys.matches(&"c".repeat(31)));
        assert!(!keys.matches(""));
    }

    #[test]
    fn encoding_is_length_prefixed() {
        let mut a = Vec::new();
        push_field(&mut a, b"a\n1:b");
        let mut b = Vec::new();
        push_field(&mut b, b"a");
        push_field(&mut b, b"b");
        assert_eq!(a, b"5:a\n1:b\n");
        assert_ne!(a, b);
    }
}
