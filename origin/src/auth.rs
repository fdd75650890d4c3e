//! Owner tokens at the origin, the authority that issues and verifies them.
//!
//! A start answers the game's token when that request created the game, or when it carries the
//! `Idempotency-Key` that created it (a replay, or a second device of the same player that
//! kept the key). Exits (and `/v1` stops, see [`AuthSettings::v1_stop_requires_token`]) must
//! present it as `Authorization: Bearer <token>`: missing or malformed is 401 `unauthorized`,
//! anything else that does not allow the exit (another game's token, a forged, expired or
//! rotated-out one) is 403 `forbidden`.
//!
//! Tokens are stateless (see the `owner-token` crate), so they survive restarts and work in
//! every region that shares the secret. Neither the token nor the `Authorization` header is
//! ever logged or put in a metric: the request log line records method, route, path and
//! status only.

use api::{ApiError, ErrorCode, GameId, UserId};
use axum::http::HeaderMap;
use owner_token::env::{KeySource, Mode};
use owner_token::{Claims, Keyring, VerifyError};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::service::{Joined, Started};
use kernel::SettingsError;

/// `true` (default) or `false`: whether `POST /v1/sessions/{id}/stop` needs the owner token.
pub const V1_STOP_REQUIRES_TOKEN: &str = "V1_STOP_REQUIRES_TOKEN";
/// Every variable this module reads.
pub const VARIABLES: [&str; 5] = [
    owner_token::env::SECRET_VAR,
    owner_token::env::PREVIOUS_SECRET_VAR,
    owner_token::env::TTL_VAR,
    owner_token::env::MODE_VAR,
    V1_STOP_REQUIRES_TOKEN,
];

/// The validated owner-token settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Signs with the current secret, verifies with current and previous.
    pub keyring: Keyring,
    /// Whether the secret was configured or made up for this process.
    pub source: KeySource,
    /// `SEEDSYNC_ENV`.
    pub mode: Mode,
    /// Whether `/v1` stops need the token. Default `true`: a session id is the game id that
    /// every viewer's share link carries, so a stop without a credential is exactly the hole
    /// owner tokens close. The document's clients get `owner_token` from their create and send
    /// it back; a deployment whose `/v1` clients cannot be changed and are not reachable by
    /// the public (the edge never routes `/v1`) may set it to `false`.
    pub v1_stop_requires_token: bool,
}

impl AuthSettings {
    /// Reads [`VARIABLES`]; `random` makes the ephemeral development secret if none is set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        random: impl FnOnce() -> [u8; 32],
    ) -> Result<AuthSettings, SettingsError> {
        let (keyring, source, mode) =
            owner_token::env::keyring(&lookup, random).map_err(|e| SettingsError {
                variable: e.variable,
                message: e.message,
            })?;
        let v1_stop_requires_token = v1_stop_requires_token(lookup(V1_STOP_REQUIRES_TOKEN))?;
        Ok(AuthSettings {
            keyring,
            source,
            mode,
            v1_stop_requires_token,
        })
    }

    /// Settings with a fixed secret (tests, benchmarks).
    pub fn with_secret(secret: &[u8]) -> AuthSettings {
        AuthSettings {
            keyring: Keyring::new(secret, &[], owner_token::DEFAULT_TTL_MS)
                .unwrap_or_else(|_| panic!("test secrets are at least 32 bytes")),
            source: KeySource::Configured,
            mode: Mode::Development,
            v1_stop_requires_token: true,
        }
    }
}

/// `V1_STOP_REQUIRES_TOKEN`: unset, blank, `true`, `1` or `yes` is true; `false`, `0` or `no`
/// false. At start-up and for a runtime change alike ([`crate::runtime`]).
pub fn v1_stop_requires_token(raw: Option<String>) -> Result<bool, SettingsError> {
    match raw.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(SettingsError {
            variable: V1_STOP_REQUIRES_TOKEN,
            message: format!("{other:?} is not true or false"),
        }),
    }
}

/// 32 bytes from the OS CSPRNG, for an ephemeral development secret.
pub fn random_secret() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without OS randomness, a v4 UUID pair (itself from the OS or a fallback) still
        // gives a secret no one else holds; it only lives as long as this process.
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    bytes
}

/// Checks that `headers` carry the owner token of game `game_id`, and says whose it is.
pub fn authorize(
    keyring: &Keyring,
    headers: &HeaderMap,
    game_id: &str,
    now_ms: i64,
) -> Result<Claims, VerifyError> {
    let header = match headers.get(axum::http::header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| VerifyError::Malformed)?),
    };
    let token = owner_token::bearer(header)?;
    keyring.verify_for_game(token, game_id, now_ms)
}

/// The player whose owner token of `game` the request carries, or the contract's 401/403
/// (counted in `seedsync_owner_token_refusals_total` by reason).
pub fn owner_of(
    auth: &AuthSettings,
    metrics: &Metrics,
    headers: &HeaderMap,
    game: GameId,
) -> Result<UserId, AppError> {
    let refused = |error: VerifyError| {
        metrics
            .owner_token_refusals
            .with_label_values(&[reason(error)])
            .inc();
        let code = if error.is_unauthenticated() {
            ErrorCode::Unauthorized
        } else {
            ErrorCode::Forbidden
        };
        AppError::Api(ApiError::new(code, error.message()))
    };
    let claims = authorize(
        &auth.keyring,
        headers,
        &game.to_string(),
        kernel::clock::now_ms(),
    )
    .map_err(refused)?;
    // Only this service signs tokens, and only for valid user ids.
    UserId::parse(&claims.user_id).map_err(|_| refused(VerifyError::Malformed))
}

/// The metric label of a refusal.
pub fn reason(error: VerifyError) -> &'static str {
    match error {
        VerifyError::Missing => "missing",
        VerifyError::Malformed => "malformed",
        VerifyError::UnknownKey => "unknown_key",
        VerifyError::BadSignature => "bad_signature",
        VerifyError::Expired => "expired",
        VerifyError::WrongGame => "wrong_game",
    }
}

/// The token to answer a start with: the game's, when this request owns it.
pub fn token_for(auth: &AuthSettings, started: &Started) -> Option<String> {
    started.owner.then(|| {
        let game = &started.game;
        auth.keyring.issue(
            &game.id.to_string(),
            game.user_id.as_str(),
            game.created_at_ms,
        )
    })
}

/// The token to answer a join with: the seat's, when this request owns it. It names the
/// seat's player, so it exits that seat and no other (an exit checks the token's user against
/// the exit's, and each user holds at most one seat of a game).
pub fn token_for_seat(auth: &AuthSettings, joined: &Joined) -> Option<String> {
    joined.owner.then(|| {
        auth.keyring.issue(
            &joined.game.id.to_string(),
            joined.seat.user_id.as_str(),
            joined.seat.joined_at_ms,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::HeaderValue;

    use super::*;

    const SECRET: &[u8] = b"an origin test secret, 32+ bytes long";
    const GAME: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert("authorization", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn exits_need_the_games_token() {
        let auth = AuthSettings::with_secret(SECRET);
        let token = auth.keyring.issue(GAME, "alice", 1_000);
        let ok = headers(Some(&format!("Bearer {token}")));
        assert_eq!(
            authorize(&auth.keyring, &ok, GAME, 2_000).unwrap().user_id,
            "alice"
        );
        let missing = authorize(&auth.keyring, &headers(None), GAME, 2_000);
        assert_eq!(missing, Err(VerifyError::Missing));
        let basic = authorize(&auth.keyring, &headers(Some("Basic x")), GAME, 2_000);
        assert!(basic.unwrap_err().is_unauthenticated());
        let other = "00000000-0000-4000-8000-000000000000";
        assert_eq!(
            authorize(&auth.keyring, &ok, other, 2_000),
            Err(VerifyError::WrongGame)
        );
        let mut bad = HeaderMap::new();
        bad.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(
            authorize(&auth.keyring, &bad, GAME, 2_000),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn settings() {
        let vars: HashMap<&str, &str> =
            [("OWNER_TOKEN_SECRET", "0123456789abcdef0123456789abcdef")]
                .into_iter()
                .collect();
        let s =
            AuthSettings::from_lookup(|n| vars.get(n).map(|v| v.to_string()), || [0; 32]).unwrap();
        assert!(s.v1_stop_requires_token);
        assert_eq!(s.source, KeySource::Configured);
        let s = AuthSettings::from_lookup(
            |n| (n == V1_STOP_REQUIRES_TOKEN).then(|| "false".to_string()),
            random_secret,
        )
        .unwrap();
        assert!(!s.v1_stop_requires_token);
        assert_eq!(s.source, KeySource::Ephemeral);
        let err = AuthSettings::from_lookup(
            |n| (n == V1_STOP_REQUIRES_TOKEN).then(|| "maybe".to_string()),
            random_secret,
        )
        .unwrap_err();
        assert_eq!(err.variable, V1_STOP_REQUIRES_TOKEN);
        let err = AuthSettings::from_lookup(
            |n| (n == "SEEDSYNC_ENV").then(|| "production".to_string()),
            random_secret,
        )
        .unwrap_err();
        assert_eq!(err.variable, "OWNER_TOKEN_SECRET");
        assert_ne!(random_secret(), random_secret());
    }
}
