//! Owner tokens: the credential that lets a player (and nobody who merely knows the game id and
//! the user id) exit their game.
//!
//! A token is stateless: `st1.<kid>.<payload>.<mac>`, where `payload` is the base64url (no
//! padding) of a small JSON object `{"gid","uid","iat","exp"}` (game id, user id, issued-at and
//! expiry in Unix ms) and `mac` is the base64url HMAC-SHA256 of `st1.<kid>.<payload>` under the
//! key named by `kid`. The server keeps no session table: any origin holding the secret verifies
//! any token, after a restart and in any region.
//!
//! The issued-at of a game's token is the game's creation time, so the same game always yields
//! the *same* token under the same key. A replayed start therefore answers the very token the
//! first attempt did, without storing it.
//!
//! Keys come from secrets of at least [`MIN_SECRET_BYTES`] bytes. Each secret derives two
//! independent values with HMAC-SHA256: the MAC key and a short public key id (`kid`). A
//! [`Keyring`] signs with its current key and verifies with the current and the previous one,
//! so a secret can be rotated without logging every player out: tokens of the previous key stay
//! valid until that key is dropped.
//!
//! Verification checks the shape, then the key id, then the MAC (in constant time, through
//! [`hmac::Mac::verify_slice`]), and only then parses the payload: nothing an attacker wrote is
//! interpreted before it is authenticated. [`VerifyError::is_unauthenticated`] separates "no
//! usable credential" (HTTP 401) from "a credential that does not allow this" (HTTP 403).
//!
//! The crate has no clock, no randomness and no I/O, and builds for `wasm32-unknown-unknown`.
//! [`env`] reads its settings from any variable lookup (process environment, Worker bindings).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod env;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The format version, the token's first part.
pub const PREFIX: &str = "st1";
/// Shortest accepted secret, in bytes (256 bits, the HMAC-SHA256 key size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest token [`Keyring::verify`] looks at; anything longer is malformed without further work.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Default lifetime of a token, counted from the game's creation: 7 days.
pub const DEFAULT_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

type HmacSha256 = Hmac<Sha256>;

/// What a token says: whose game it is and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The game id, in the canonical form the server prints.
    #[serde(rename = "gid")]
    pub game_id: String,
    /// The player's user id.
    #[serde(rename = "uid")]
    pub user_id: String,
    /// Issued at (the game's creation), Unix ms.
    #[serde(rename = "iat")]
    pub issued_at_ms: i64,
    /// Not valid from this instant on, Unix ms.
    #[serde(rename = "exp")]
    pub expires_at_ms: i64,
}

/// Why a secret cannot be a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_BYTES`] (the length it had).
    TooShort(usize),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::TooShort(len) => write!(
                f,
                "must be at least {MIN_SECRET_BYTES} bytes (got {len}); generate one with `openssl rand -base64 48`"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// No token was presented (no `Authorization` header).
    Missing,
    /// Not a token of this format (wrong scheme, parts, encoding or length).
    Malformed,
    /// Signed with a key this server does not hold (rotated out, or another deployment's).
    UnknownKey,
    /// The MAC does not match: forged or altered.
    BadSignature,
    /// Past its expiry.
    Expired,
    /// A valid token of another game.
    WrongGame,
}

impl VerifyError {
    /// `true` when the request carried no usable credential (answer 401); `false` when it
    /// carried one that does not allow the action (answer 403).
    pub fn is_unauthenticated(self) -> bool {
        matches!(self, VerifyError::Missing | VerifyError::Malformed)
    }

    /// A sentence for the client. It says what to do, and never echoes the token.
    pub fn message(self) -> &'static str {
        match self {
            VerifyError::Missing => {
                "this action needs the game's owner token: send `Authorization: Bearer <ownerToken>` (the start answered it)"
            }
            VerifyError::Malformed => {
                "the Authorization header is not `Bearer <ownerToken>` with a token this service issued"
            }
            VerifyError::UnknownKey => {
                "the owner token was signed with a key this service no longer accepts"
            }
            VerifyError::BadSignature | VerifyError::WrongGame => {
                "the owner token does not allow this action on this game"
            }
            VerifyError::Expired => "the owner token has expired",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for VerifyError {}

/// The token of an `Authorization` header value: `Bearer <token>` (scheme case-insensitive).
pub fn bearer(header: Option<&str>) -> Result<&str, VerifyError> {
    let header = header.ok_or(VerifyError::Missing)?.trim();
    let (scheme, token) = header.split_once(' ').ok_or(VerifyError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(VerifyError::Malformed);
    }
    Ok(token)
}

/// One key: its public id and a MAC instance already keyed (cloned per use, so the key's
/// padding blocks are hashed once, not per token).
#[derive(Clone)]
struct Key {
    kid: String,
    mac: HmacSha256,
}

impl Key {
    fn derive(secret: &[u8]) -> Result<Key, SecretError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort(secret.len()));
        }
        let kid_bytes = hmac_sha256(secret, b"seedsync owner-token v1 kid");
        let mac_key = hmac_sha256(secret, b"seedsync owner-token v1 mac");
        Ok(Key {
            kid: URL_SAFE_NO_PAD.encode(&kid_bytes[..6]),
            mac: keyed(&mac_key),
        })
    }

    fn tag(&self, signing_input: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(signing_input);
        mac.finalize().into_bytes().into()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The keys of a deployment and the lifetime of what it issues.
#[derive(Clone)]
pub struct Keyring {
    /// `[current, previous...]`.
    keys: Vec<Key>,
    ttl_ms: i64,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids only: the keys themselves never reach a log.
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Keyring")
            .field("kids", &kids)
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

impl Keyring {
    /// A keyring signing with `current` and also accepting tokens of `previous`; tokens it
    /// issues live `ttl_ms` from the game's creation (at least 1 ms).
    pub fn new(current: &[u8], previous: &[&[u8]], ttl_ms: i64) -> Result<Keyring, SecretError> {
        let mut keys = vec![Key::derive(current)?];
        for secret in previous {
            keys.push(Key::derive(secret)?);
        }
        Ok(Keyring {
            keys,
            ttl_ms: ttl_ms.max(1),
        })
    }

    /// The id of the key new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The ids of every key accepted, current first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// Token lifetime, ms.
    pub fn ttl_ms(&self) -> i64 {
        self.ttl_ms
    }

    /// The token of a game: issued at its creation, valid for the keyring's TTL. The same
    /// game always gets the same token from the same current key.
    pub fn issue(&self, game_id: &str, user_id: &str, created_at_ms: i64) -> String {
        self.sign(&Claims {
            game_id: game_id.to_owned(),
            user_id: user_id.to_owned(),
            issued_at_ms: created_at_ms,
            expires_at_ms: created_at_ms.saturating_add(self.ttl_ms),
        })
    }

    /// Signs arbitrary claims with the current key.
    pub fn sign(&self, claims: &Claims) -> String {
        let key = &self.keys[0];
        // A struct of strings and integers always serializes.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = String::with_capacity(PREFIX.len() + 80 + payload.len() * 4 / 3);
        token.push_str(PREFIX);
        token.push('.');
        token.push_str(&key.kid);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let tag = key.tag(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag, &mut token);
        token
    }

    /// The claims of a genuine, unexpired token.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, VerifyError> {
        if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
            return Err(VerifyError::Malformed);
        }
        let (signing_input, tag_text) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let mut parts = signing_input.split('.');
        let (Some(prefix), Some(kid), Some(payload_text), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        if prefix != PREFIX || kid.is_empty() || payload_text.is_empty() {
            return Err(VerifyError::Malformed);
        }
        let mut tag = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(tag_text, &mut tag) {
            Ok(32) => {}
            _ => return Err(VerifyError::Malformed),
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(VerifyError::UnknownKey)?;
        let mut mac = key.mac.clone();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| VerifyError::BadSignature)?;
        // Authenticated from here on: only this service wrote these bytes.
        let payload = URL_SAFE_NO_PAD
            .decode(payload_text)
            .map_err(|_| VerifyError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)?;
        if now_ms >= claims.expires_at_ms {
            return Err(VerifyError::Expired);
        }
        Ok(claims)
    }

    /// [`Keyring::verify`], and the token must be for `game_id`.
    pub fn verify_for_game(
        &self,
        token: &str,
        game_id: &str,
        now_ms: i64,
    ) -> Result<Claims, VerifyError> {
        let claims = self.verify(token, now_ms)?;
        if claims.game_id != game_id {
            return Err(VerifyError::WrongGame);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";
    const GAME: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";
    const CREATED: i64 = 1_700_000_000_000;

    /// Computed independently with Python's `hmac`/`hashlib`/`base64` (see
    /// `owner-token/vectors/golden.py`); any change to the format breaks this test.
    const GOLDEN_KID: &str = "hTIdIhng";
    const GOLDEN_TOKEN: &str = "st1.hTIdIhng.eyJnaWQiOiIzZjJiOGMxZS05ZDRhLTRmNmItOGUyYS0xYzVkN2U5ZjBhM2IiLCJ1aWQiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMDAwMCwiZXhwIjoxNzAwNjA0ODAwMDAwfQ.lT4EIaAp4Xr8T7c5QF6JQ-5Cuw6WRBIP7HR3g4o2gfU";

    fn ring(current: &[u8], previous: &[&[u8]]) -> Keyring {
        Keyring::new(current, previous, DEFAULT_TTL_MS).unwrap()
    }

    #[test]
    fn golden_vector() {
        let keys = ring(SECRET, &[]);
        assert_eq!(keys.current_kid(), GOLDEN_KID);
        let token = keys.issue(GAME, "alice", CREATED);
        assert_eq!(token, GOLDEN_TOKEN);
        let claims = keys.verify(GOLDEN_TOKEN, CREATED + 1).unwrap();
        assert_eq!(
            claims,
            Claims {
                game_id: GAME.into(),
                user_id: "alice".into(),
                issued_at_ms: CREATED,
                expires_at_ms: CREATED + DEFAULT_TTL_MS,
            }
        );
    }

    #[test]
    fn same_game_same_token_and_games_differ() {
        let keys = ring(SECRET, &[]);
        assert_eq!(
            keys.issue(GAME, "alice", CREATED),
            keys.issue(GAME, "alice", CREATED)
        );
        assert_ne!(
            keys.issue(GAME, "alice", CREATED),
            keys.issue(GAME, "bob", CREATED)
        );
    }

    #[test]
    fn bound_to_the_game() {
        let keys = ring(SECRET, &[]);
        let token = keys.issue(GAME, "alice", CREATED);
        assert!(keys.verify_for_game(&token, GAME, CREATED).is_ok());
        let other_game = "00000000-0000-4000-8000-000000000000";
        assert_eq!(
            keys.verify_for_game(&token, other_game, CREATED),
            Err(VerifyError::WrongGame)
        );
    }

    #[test]
    fn expires_at_exp() {
        let keys = Keyring::new(SECRET, &[], 60_000).unwrap();
        let token = keys.issue(GAME, "alice", CREATED);
        assert!(keys.verify(&token, CREATED + 59_999).is_ok());
        assert_eq!(
            keys.verify(&token, CREATED + 60_000),
            Err(VerifyError::Expired)
        );
    }

    #[test]
    fn rotation_accepts_previous_until_dropped() {
        let old = ring(OTHER, &[]);
        let token = old.issue(GAME, "alice", CREATED);
        let rotated = ring(SECRET, &[OTHER]);
        assert_eq!(rotated.verify(&token, CREATED).unwrap().user_id, "alice");
        // New tokens use the new key, and the old keyring does not know them.
        let fresh = rotated.issue(GAME, "alice", CREATED);
        assert!(fresh.starts_with(&format!("st1.{}.", rotated.current_kid())));
        assert_eq!(old.verify(&fresh, CREATED), Err(VerifyError::UnknownKey));
        let dropped = ring(SECRET, &[]);
        assert_eq!(
            dropped.verify(&token, CREATED),
            Err(VerifyError::UnknownKey)
        );
        assert_eq!(rotated.kids().count(), 2);
    }

    #[test]
    fn forgeries_are_refused() {
        let keys = ring(SECRET, &[]);
        let token = keys.issue(GAME, "alice", CREATED);
        let (head, tag) = token.rsplit_once('.').unwrap();
        // Another payload under the genuine tag.
        let forged_claims = Claims {
            game_id: GAME.into(),
            user_id: "mallory".into(),
            issued_at_ms: CREATED,
            expires_at_ms: i64::MAX,
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("st1.{}.{forged_payload}.{tag}", keys.current_kid());
        assert_eq!(
            keys.verify(&forged, CREATED),
            Err(VerifyError::BadSignature)
        );
        // One flipped character of the tag.
        let mut bad_tag: Vec<u8> = tag.bytes().collect();
        bad_tag[5] = if bad_tag[5] == b'A' { b'B' } else { b'A' };
        let altered = format!("{head}.{}", String::from_utf8(bad_tag).unwrap());
        assert_eq!(
            keys.verify(&altered, CREATED),
            Err(VerifyError::BadSignature)
        );
        // Signed by another deployment that happens to reuse the kid text.
        let other = ring(OTHER, &[]);
        let theirs = other.issue(GAME, "alice", CREATED);
        let relabelled = theirs.replacen(other.current_kid(), keys.current_kid(), 1);
        assert_eq!(
            keys.verify(&relabelled, CREATED),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        let keys = ring(SECRET, &[]);
        let token = keys.issue(GAME, "alice", CREATED);
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let padded = format!("{token}=");
        let spaced = token.replacen('.', " ", 1);
        for bad in [
            "",
            "st1",
            "st1.a.b",
            "st2.hTIdIhng.e30.AAAA",
            &long,
            &padded,
            &spaced,
            "st1..e30.2mfzKFhnfaApgjNWg1dzwvADmYp7RWRUPwOtx-nWy7w",
            "st1.hTIdIhng.e30.e30.2mfzKFhnfaApgjNWg1dzwvADmYp7RWRUPwOtx-nWy7w",
            "st1.hTIdIhng.e30.AAAA",
            "st1.hTIdIhng.é.2mfzKFhnfaApgjNWg1dzwvADmYp7RWRUPwOtx-nWy7w",
        ] {
            let err = keys.verify(bad, CREATED).unwrap_err();
            assert_eq!(err, VerifyError::Malformed, "{bad:?}");
            assert!(err.is_unauthenticated());
        }
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Ok("abc"));
        assert_eq!(bearer(None), Err(VerifyError::Missing));
        for bad in ["abc", "Basic abc", "Bearer", "Bearer ", "Bearer a b"] {
            assert_eq!(bearer(Some(bad)), Err(VerifyError::Malformed), "{bad:?}");
        }
        assert!(VerifyError::Missing.is_unauthenticated());
        assert!(!VerifyError::Expired.is_unauthenticated());
        assert!(!VerifyError::WrongGame.is_unauthenticated());
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_keys() {
        assert_eq!(
            Keyring::new(b"short", &[], DEFAULT_TTL_MS).unwrap_err(),
            SecretError::TooShort(5)
        );
        assert!(Keyring::new(SECRET, &[b"short"], DEFAULT_TTL_MS).is_err());
        let debug = format!("{:?}", ring(SECRET, &[]));
        assert!(debug.contains(GOLDEN_KID) && !debug.contains("0123456789"));
    }
}
