//! Who a user is, as the edge (the public entry point) establishes it before a start: the
//! `USER_AUTH` setting and the two ways of proving a user id.
//!
//! - `off`: the body's `userId` is believed (development and `/v1` deployments that
//!   authenticate elsewhere).
//! - `guest`: the edge issues anonymous identities itself (`POST /edge/auth/guest`):
//!   `userId = guest-<128 random bits>` and a **user token** `gt1.<exp>.<userId>.<mac>`, the
//!   base64url HMAC-SHA256 of `gt1.<exp>.<userId>` under a key derived from
//!   `USER_TOKEN_SECRET` ([`GuestTokens`]). `USER_TOKEN_PREVIOUS_SECRET` still verifies while a
//!   secret is rotated. The token expires after `GUEST_TOKEN_TTL_SECONDS` (30 days by default).
//! - `jwt`: the game's own identity provider signs JWTs ([`JwtSettings`]): HS256 with
//!   `USER_JWT_SECRET`, or RS256/ES256/EdDSA (any asymmetric algorithm the JWKS names) with the
//!   keys of a JWKS given inline (`USER_JWT_JWKS`) or fetched from `USER_JWT_JWKS_URL` (cached
//!   for `USER_JWT_JWKS_CACHE_SECONDS`, see [`JwksCache`]). `iss` must be `USER_JWT_ISSUER`,
//!   `aud` must contain `USER_JWT_AUDIENCE`, `exp` (required) and `nbf` are checked with
//!   `USER_JWT_LEEWAY_SECONDS` of clock skew, and `sub` is the user id (it must be a valid
//!   [`UserId`]).
//!
//! Both are presented as `Authorization: Bearer <token>`; [`UserAuth::authenticate`] turns
//! the header into an [`Identity`] or an [`AuthError`] (always HTTP 401).
//!
//! Security decisions, each tested below:
//! - The algorithm a JWT is checked with is the *key's* (the JWKS entry's `alg`, or its type
//!   and curve), never the token header's: `alg: none` cannot be expressed, and an HS256 token
//!   "signed" with an RSA public key as the HMAC secret (algorithm confusion) is refused.
//! - Symmetric (`oct`) keys in a JWKS are ignored: a key published in a key set is public.
//! - Every secret is a [`Secret`] (redacted when printed) and is at least 32 bytes.
//! - Guest MACs are compared in constant time ([`Mac::verify_slice`]); nothing in a guest
//!   token is interpreted before its MAC verifies.
//!
//! Pure logic: no clock, no randomness, no I/O (callers pass the time, the random bytes and
//! the fetched JWKS), so it is unit-tested natively and builds for wasm32.

use std::fmt;

use api::UserId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kernel::{Secret, SettingsError, secret_setting};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `off`, `guest` or `jwt`.
pub const USER_AUTH: &str = "USER_AUTH";
/// The guest-token secret (at least 32 bytes).
pub const USER_TOKEN_SECRET: &str = "USER_TOKEN_SECRET";
/// The file holding [`USER_TOKEN_SECRET`] (origin-style deployments).
pub const USER_TOKEN_SECRET_FILE: &str = "USER_TOKEN_SECRET_FILE";
/// The guest-token secret being rotated out: still verifies, never signs.
pub const USER_TOKEN_PREVIOUS_SECRET: &str = "USER_TOKEN_PREVIOUS_SECRET";
/// The file holding [`USER_TOKEN_PREVIOUS_SECRET`].
pub const USER_TOKEN_PREVIOUS_SECRET_FILE: &str = "USER_TOKEN_PREVIOUS_SECRET_FILE";
/// How long a guest token is valid, in seconds.
pub const GUEST_TOKEN_TTL_SECONDS: &str = "GUEST_TOKEN_TTL_SECONDS";
/// The HS256 secret shared with the identity provider.
pub const USER_JWT_SECRET: &str = "USER_JWT_SECRET";
/// The file holding [`USER_JWT_SECRET`].
pub const USER_JWT_SECRET_FILE: &str = "USER_JWT_SECRET_FILE";
/// The identity provider's public keys, as a JWKS JSON document.
pub const USER_JWT_JWKS: &str = "USER_JWT_JWKS";
/// Where to fetch the identity provider's JWKS (https).
pub const USER_JWT_JWKS_URL: &str = "USER_JWT_JWKS_URL";
/// How long a fetched JWKS is used before it is fetched again, in seconds.
pub const USER_JWT_JWKS_CACHE_SECONDS: &str = "USER_JWT_JWKS_CACHE_SECONDS";
/// The required `iss`.
pub const USER_JWT_ISSUER: &str = "USER_JWT_ISSUER";
/// The audience `aud` must contain.
pub const USER_JWT_AUDIENCE: &str = "USER_JWT_AUDIENCE";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const USER_JWT_LEEWAY_SECONDS: &str = "USER_JWT_LEEWAY_SECONDS";

/// Shortest accepted secret, in bytes (the HMAC-SHA256 key size; RFC 7518 §3.2 for HS256).
pub const MIN_SECRET_BYTES: usize = 32;
/// Default guest-token lifetime: 30 days.
pub const DEFAULT_GUEST_TOKEN_TTL_S: u64 = 30 * 24 * 60 * 60;
/// Guest-token lifetimes accepted: one minute to 400 days.
pub const GUEST_TOKEN_TTL_RANGE_S: (u64, u64) = (60, 400 * 24 * 60 * 60);
/// Default JWT clock skew: one minute.
pub const DEFAULT_LEEWAY_S: u64 = 60;
/// Largest accepted clock skew: ten minutes (more would let expired tokens live on).
pub const MAX_LEEWAY_S: u64 = 600;
/// Default JWKS cache lifetime: five minutes.
pub const DEFAULT_JWKS_CACHE_S: u64 = 300;
/// JWKS cache lifetimes accepted: ten seconds to a day.
pub const JWKS_CACHE_RANGE_S: (u64, u64) = (10, 24 * 60 * 60);
/// A token naming a key the cached JWKS lacks refetches it, but not more often than this
/// (the identity provider rotated; a flood of made-up `kid`s must not become a flood of fetches).
pub const JWKS_MIN_REFETCH_S: u64 = 30;
/// Longest bearer token looked at; longer is malformed without further work.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Largest JWKS document accepted (inline or fetched).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Most keys kept from one JWKS.
pub const MAX_JWKS_KEYS: usize = 32;
/// The prefix of every guest user id.
pub const GUEST_PREFIX: &str = "guest-";
/// The guest token format's version, its first part.
pub const GUEST_TOKEN_PREFIX: &str = "gt1";

/// How users are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The body's `userId` is believed.
    Off,
    /// Edge-issued guest identities.
    Guest,
    /// JWTs of the game's identity provider.
    Jwt,
}

impl Mode {
    /// Parses `USER_AUTH`; unset or empty is `off` (the behaviour before user authentication
    /// existed).
    pub fn parse(value: Option<&str>) -> Result<Mode, SettingsError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Mode::Off),
            Some(v) if v.eq_ignore_ascii_case("off") => Ok(Mode::Off),
            Some(v) if v.eq_ignore_ascii_case("guest") => Ok(Mode::Guest),
            Some(v) if v.eq_ignore_ascii_case("jwt") => Ok(Mode::Jwt),
            Some(v) => Err(SettingsError::new(
                USER_AUTH,
                format!("must be off, guest or jwt, got {v:?}"),
            )),
        }
    }

    /// The setting's value for this mode.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Guest => "guest",
            Mode::Jwt => "jwt",
        }
    }
}

/// A proven user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id the credential proves.
    pub user_id: UserId,
    /// When the credential stops being valid, Unix seconds.
    pub expires_at_s: u64,
}

/// Why a user credential was refused. Every case is HTTP 401 with `WWW-Authenticate: Bearer`:
/// the client has to (re)authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer <token>`, or a token of no known shape.
    Malformed,
    /// The signature does not verify (forged, altered, another deployment's or a rotated-out
    /// key's).
    BadSignature,
    /// Signed with an algorithm the key does not allow (`none`, or algorithm confusion).
    WrongAlgorithm,
    /// The JWT names a key (`kid`) the key set does not hold: the JWKS may need a refetch.
    UnknownKey,
    /// Past its expiry (plus the leeway).
    Expired,
    /// Before its `nbf` (minus the leeway).
    NotYetValid,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// A required claim (`exp`, `sub`, `iss`, `aud`) is missing or has the wrong type.
    BadClaims,
    /// `sub` is not a valid user id.
    BadSubject,
    /// `USER_AUTH=jwt` with a JWKS URL whose keys could not be fetched yet.
    KeysUnavailable,
}

impl AuthError {
    /// A sentence for the client. It says what is wrong, never echoes the credential.
    pub fn message(self) -> &'static str {
        match self {
            AuthError::Missing => {
                "starting a game needs the player's identity: send `Authorization: Bearer <userToken or JWT>`"
            }
            AuthError::Malformed => {
                "the Authorization header is not `Bearer <token>` with a user token or JWT"
            }
            AuthError::BadSignature => "the user credential's signature does not verify",
            AuthError::WrongAlgorithm => "the user credential's algorithm is not accepted",
            AuthError::UnknownKey => {
                "the user credential was signed by a key this service does not know"
            }
            AuthError::Expired => "the user credential has expired",
            AuthError::NotYetValid => "the user credential is not valid yet",
            AuthError::WrongIssuer => "the user credential was issued by another issuer",
            AuthError::WrongAudience => "the user credential is for another audience",
            AuthError::BadClaims => {
                "the user credential lacks a required claim (exp, sub, iss, aud)"
            }
            AuthError::BadSubject => "the user credential's subject is not a valid userId",
            AuthError::KeysUnavailable => {
                "the identity provider's keys are not available yet; retry shortly"
            }
        }
    }

    /// The `error` parameter of `WWW-Authenticate: Bearer` (RFC 6750 §3.1).
    pub fn www_authenticate(self) -> &'static str {
        match self {
            AuthError::Missing => "Bearer",
            AuthError::Malformed => "Bearer error=\"invalid_request\"",
            _ => "Bearer error=\"invalid_token\"",
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AuthError {}

/// The token of an `Authorization` header: `Bearer <token>`, bounded in length.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let token = owner_token::bearer(header).map_err(|e| match e {
        owner_token::VerifyError::Missing => AuthError::Missing,
        _ => AuthError::Malformed,
    })?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

/// The user-authentication settings of a deployment.
#[derive(Debug, Clone)]
pub enum UserAuth {
    /// `USER_AUTH=off`.
    Off,
    /// `USER_AUTH=guest`.
    Guest(GuestTokens),
    /// `USER_AUTH=jwt`.
    Jwt(JwtSettings),
}

impl UserAuth {
    /// Reads every `USER_*`/`GUEST_*` setting the mode needs. `lookup` answers a variable's raw
    /// value, `read_file` a file's contents (for `*_FILE`; the edge, which has no files, passes
    /// one that always fails).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<UserAuth, SettingsError> {
        match Mode::parse(lookup(USER_AUTH).as_deref())? {
            Mode::Off => Ok(UserAuth::Off),
            Mode::Guest => GuestTokens::from_lookup(&lookup, &read_file).map(UserAuth::Guest),
            Mode::Jwt => JwtSettings::from_lookup(&lookup, &read_file).map(UserAuth::Jwt),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        match self {
            UserAuth::Off => Mode::Off,
            UserAuth::Guest(_) => Mode::Guest,
            UserAuth::Jwt(_) => Mode::Jwt,
        }
    }

    /// Who the `Authorization` header proves. `Ok(None)` with `off` (nobody is authenticated,
    /// the body's `userId` stands). `jwt_keys` are the verifying keys for `jwt` (see
    /// [`JwtSettings::static_keys`] and [`JwksCache`]); `None` there is
    /// [`AuthError::KeysUnavailable`].
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        jwt_keys: Option<&KeySet>,
        now_s: u64,
    ) -> Result<Option<Identity>, AuthError> {
        match self {
            UserAuth::Off => Ok(None),
            UserAuth::Guest(guest) => guest.verify(bearer(authorization)?, now_s).map(Some),
            UserAuth::Jwt(jwt) => {
                let token = bearer(authorization)?;
                let keys = jwt_keys.ok_or(AuthError::KeysUnavailable)?;
                jwt.verify(token, keys, now_s).map(Some)
            }
        }
    }
}

/// Reads an optional whole number of seconds within `range`.
fn seconds(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, SettingsError> {
    let Some(raw) = lookup(variable).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| {
        SettingsError::new(
            variable,
            format!("must be a whole number of seconds, got {:?}", raw.trim()),
        )
    })?;
    if !(min..=max).contains(&value) {
        return Err(SettingsError::new(
            variable,
            format!("must be between {min} and {max} seconds, got {value}"),
        ));
    }
    Ok(value)
}

fn long_enough(secret: Secret, variable: &'static str) -> Result<Secret, SettingsError> {
    if secret.expose().len() < MIN_SECRET_BYTES {
        return Err(SettingsError::new(
            variable,
            format!(
                "must be at least {MIN_SECRET_BYTES} bytes (got {}); generate one with `openssl rand -base64 48`",
                secret.expose().len()
            ),
        ));
    }
    Ok(secret)
}

fn hmac_key(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Issues and verifies guest identities.
#[derive(Clone)]
pub struct GuestTokens {
    /// `[current, previous?]`, each already keyed with the derived MAC key.
    keys: Vec<HmacSha256>,
    ttl_s: u64,
}

impl fmt::Debug for GuestTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestTokens")
            .field("keys", &self.keys.len())
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

/// A freshly issued guest identity: the answer of `POST /edge/auth/guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestIdentity {
    /// `guest-<32 hex digits>`.
    pub user_id: UserId,
    /// The bearer token that proves it.
    pub user_token: String,
    /// When the token expires, Unix seconds.
    pub expires_at_s: u64,
}

impl GuestTokens {
    /// A signer/verifier from the current secret, the previous one (rotation) and the token
    /// lifetime. Each secret must be at least [`MIN_SECRET_BYTES`].
    pub fn new(
        current: &Secret,
        previous: Option<&Secret>,
        ttl_s: u64,
    ) -> Result<GuestTokens, SettingsError> {
        let mut keys = vec![Self::derive(current, USER_TOKEN_SECRET)?];
        if let Some(previous) = previous {
            keys.push(Self::derive(previous, USER_TOKEN_PREVIOUS_SECRET)?);
        }
        Ok(GuestTokens { keys, ttl_s })
    }

    /// The MAC key is derived (domain-separated) from the secret, so a secret that is reused
    /// elsewhere by mistake still yields unrelated MACs here.
    fn derive(secret: &Secret, variable: &'static str) -> Result<HmacSha256, SettingsError> {
        let secret = long_enough(secret.clone(), variable)?;
        let mut derive = hmac_key(secret.expose().as_bytes());
        derive.update(b"seedsync user-token v1 guest");
        Ok(hmac_key(&derive.finalize().into_bytes()))
    }

    fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<GuestTokens, SettingsError> {
        let current = secret_setting(lookup, read_file, USER_TOKEN_SECRET, USER_TOKEN_SECRET_FILE)?
            .ok_or_else(|| {
                SettingsError::new(
                    USER_TOKEN_SECRET,
                    "is required with USER_AUTH=guest (it signs guest identities); generate one with `openssl rand -base64 48`",
                )
            })?;
        let previous = secret_setting(
            lookup,
            read_file,
            USER_TOKEN_PREVIOUS_SECRET,
            USER_TOKEN_PREVIOUS_SECRET_FILE,
        )?;
        let ttl_s = seconds(
            lookup,
            GUEST_TOKEN_TTL_SECONDS,
            DEFAULT_GUEST_TOKEN_TTL_S,
            GUEST_TOKEN_TTL_RANGE_S,
        )?;
        GuestTokens::new(&current, previous.as_ref(), ttl_s)
    }

    /// The token lifetime, in seconds.
    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// A new guest: `random` must come from a CSPRNG (`crypto.getRandomValues` in the Worker),
    /// because the id is the only thing that keeps two guests apart.
    pub fn issue(&self, random: [u8; 16], now_s: u64) -> GuestIdentity {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let user_id = UserId::parse(&format!("{GUEST_PREFIX}{hex}"))
            .unwrap_or_else(|_| unreachable!("guest- and 32 hex digits is a valid user id"));
        let expires_at_s = now_s.saturating_add(self.ttl_s);
        GuestIdentity {
            user_token: self.sign(&user_id, expires_at_s),
            user_id,
            expires_at_s,
        }
    }

    /// The token for `user_id` until `expires_at_s`, under the current key.
    pub fn sign(&self, user_id: &UserId, expires_at_s: u64) -> String {
        let signed = format!("{GUEST_TOKEN_PREFIX}.{expires_at_s}.{}", user_id.as_str());
        let mut mac = self.keys[0].clone();
        mac.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The identity a token proves: its MAC verifies under the current or the previous key
    /// (in constant time), then its expiry and user id are read and checked.
    pub fn verify(&self, token: &str, now_s: u64) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| AuthError::Malformed)?;
        if !signed.starts_with(GUEST_TOKEN_PREFIX) || tag.len() != 32 {
            return Err(AuthError::Malformed);
        }
        let authentic = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(signed.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        if !authentic {
            return Err(AuthError::BadSignature);
        }
        // Authenticated: what follows was written by this deployment.
        let mut parts = signed.splitn(3, '.');
        let (Some(GUEST_TOKEN_PREFIX), Some(exp), Some(user_id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let expires_at_s: u64 = exp.parse().map_err(|_| AuthError::Malformed)?;
        if now_s >= expires_at_s {
            return Err(AuthError::Expired);
        }
        let user_id = UserId::parse(user_id).map_err(|_| AuthError::BadSubject)?;
        Ok(Identity {
            user_id,
            expires_at_s,
        })
    }
}

/// Where the JWT verifying keys come from.
#[derive(Debug, Clone)]
pub enum JwtKeySource {
    /// Known at start-up: `USER_JWT_SECRET` (HS256) or `USER_JWT_JWKS`.
    Static(KeySet),
    /// Fetched from `USER_JWT_JWKS_URL` and kept for `cache_ttl_s` (see [`JwksCache`]).
    Url {
        /// The JWKS URL (https, or http to a loopback host for local tests).
        url: String,
        /// How long fetched keys are used before a refetch, seconds.
        cache_ttl_s: u64,
    },
}

/// `USER_AUTH=jwt`: where the keys come from and what the claims must say.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The verifying keys.
    pub keys: JwtKeySource,
    /// The required `iss`.
    pub issuer: String,
    /// The audience `aud` must contain.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub leeway_s: u64,
}

/// The claims read after the signature, issuer and audience have been checked.
#[derive(Deserialize)]
struct UserClaims {
    sub: String,
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
}

impl JwtSettings {
    fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<JwtSettings, SettingsError> {
        let secret = secret_setting(lookup, read_file, USER_JWT_SECRET, USER_JWT_SECRET_FILE)?;
        let present = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let inline = present(USER_JWT_JWKS);
        let url = present(USER_JWT_JWKS_URL);
        let keys = match (secret, inline, url) {
            (Some(secret), None, None) => {
                JwtKeySource::Static(KeySet::hs256(&long_enough(secret, USER_JWT_SECRET)?)?)
            }
            (None, Some(jwks), None) => JwtKeySource::Static(
                KeySet::from_jwks_json(&jwks)
                    .map_err(|message| SettingsError::new(USER_JWT_JWKS, message))?,
            ),
            (None, None, Some(url)) => JwtKeySource::Url {
                url: jwks_url(url.trim())?,
                cache_ttl_s: seconds(
                    lookup,
                    USER_JWT_JWKS_CACHE_SECONDS,
                    DEFAULT_JWKS_CACHE_S,
                    JWKS_CACHE_RANGE_S,
                )?,
            },
            (None, None, None) => {
                return Err(SettingsError::new(
                    USER_AUTH,
                    "jwt needs the identity provider's keys: set USER_JWT_SECRET (HS256), USER_JWT_JWKS or USER_JWT_JWKS_URL",
                ));
            }
            _ => {
                return Err(SettingsError::new(
                    USER_AUTH,
                    "set only one of USER_JWT_SECRET, USER_JWT_JWKS and USER_JWT_JWKS_URL",
                ));
            }
        };
        // Both are required: a shared identity provider signs tokens for many applications,
        // and `aud` is what keeps another application's tokens out.
        let required = |name: &'static str| {
            present(name)
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| SettingsError::new(name, "is required with USER_AUTH=jwt"))
        };
        Ok(JwtSettings {
            keys,
            issuer: required(USER_JWT_ISSUER)?,
            audience: required(USER_JWT_AUDIENCE)?,
            leeway_s: seconds(
                lookup,
                USER_JWT_LEEWAY_SECONDS,
                DEFAULT_LEEWAY_S,
                (0, MAX_LEEWAY_S),
            )?,
        })
    }

    /// The keys known without fetching (`None` for a JWKS URL).
    pub fn static_keys(&self) -> Option<&KeySet> {
        match &self.keys {
            JwtKeySource::Static(keys) => Some(keys),
            JwtKeySource::Url { .. } => None,
        }
    }

    /// The identity a JWT proves against `keys` at `now_s`.
    pub fn verify(&self, token: &str, keys: &KeySet, now_s: u64) -> Result<Identity, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let named: Vec<&VerifyKey> = match header.kid.as_deref() {
            Some(kid) => keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => keys.keys.iter().collect(),
        };
        if named.is_empty() {
            return Err(AuthError::UnknownKey);
        }
        // The key decides the algorithm; the header only has to agree with it.
        let usable: Vec<&VerifyKey> = named.into_iter().filter(|k| k.alg == header.alg).collect();
        if usable.is_empty() {
            return Err(AuthError::WrongAlgorithm);
        }
        let mut last = AuthError::BadSignature;
        for key in usable {
            let mut validation = Validation::new(key.alg);
            validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
            validation.set_issuer(&[self.issuer.as_str()]);
            validation.set_audience(&[self.audience.as_str()]);
            // Time is checked below against the caller's clock (the crate would read its own).
            validation.validate_exp = false;
            validation.validate_nbf = false;
            match jsonwebtoken::decode::<UserClaims>(token, &key.key, &validation) {
                Ok(data) => return self.check(data.claims, now_s),
                Err(e) => {
                    last = classify(&e);
                    if last != AuthError::BadSignature {
                        // The signature verified (claims come after it): another key will
                        // not change the verdict.
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn check(&self, claims: UserClaims, now_s: u64) -> Result<Identity, AuthError> {
        let now = now_s as f64;
        let leeway = self.leeway_s as f64;
        if !claims.exp.is_finite() || now >= claims.exp + leeway {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.nbf
            && (!nbf.is_finite() || now + leeway < nbf)
        {
            return Err(AuthError::NotYetValid);
        }
        let user_id = UserId::parse(&claims.sub).map_err(|_| AuthError::BadSubject)?;
        Ok(Identity {
            user_id,
            expires_at_s: claims.exp.max(0.0) as u64,
        })
    }
}

fn classify(e: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => AuthError::BadSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
            AuthError::WrongAlgorithm
        }
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAudience => AuthError::WrongAudience,
        K::InvalidSubject => AuthError::BadSubject,
        K::MissingRequiredClaim(_) | K::InvalidClaimFormat(_) | K::Json(_) => AuthError::BadClaims,
        _ => AuthError::Malformed,
    }
}

/// A JWKS URL must be https: its keys decide who every user is. Plain http is allowed only
/// to a loopback host (local tests).
fn jwks_url(url: &str) -> Result<String, SettingsError> {
    let loopback = [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
        "http://localhost/",
        "http://[::1]:",
    ];
    if url.starts_with("https://") && url.len() > "https://".len() && !url.contains('@') {
        return Ok(url.to_owned());
    }
    if loopback.iter().any(|p| url.starts_with(p)) {
        return Ok(url.to_owned());
    }
    Err(SettingsError::new(
        USER_JWT_JWKS_URL,
        "must be an https:// URL without credentials (http only to 127.0.0.1 or localhost)",
    ))
}

/// One verifying key: its id, the one algorithm it verifies, the key.
#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The keys JWTs are verified with.
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<VerifyKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key ids and algorithms only: an HS256 key is a secret.
        f.debug_list()
            .entries(self.keys.iter().map(|k| (k.kid.as_deref(), k.alg)))
            .finish()
    }
}

impl KeySet {
    /// The one HS256 key of `USER_JWT_SECRET`.
    pub fn hs256(secret: &Secret) -> Result<KeySet, SettingsError> {
        let key = DecodingKey::from_secret(secret.expose().as_bytes())
            .map_err(|e| SettingsError::new(USER_JWT_SECRET, format!("unusable: {e}")))?;
        Ok(KeySet {
            keys: vec![VerifyKey {
                kid: None,
                alg: Algorithm::HS256,
                key,
            }],
        })
    }

    /// The signature keys of a JWKS document. Each key's algorithm is its `alg`, or follows
    /// from its type and curve (RSA: RS256, P-256: ES256, P-384: ES384, Ed25519: EdDSA).
    /// Encryption keys (`use: enc`), symmetric keys and unsupported types are skipped; a
    /// document with no usable key is an error.
    pub fn from_jwks_json(json: &str) -> Result<KeySet, String> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in set.keys.iter().take(MAX_JWKS_KEYS) {
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            let implied = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Some(Algorithm::ES256)
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
                    Some(Algorithm::ES384)
                }
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Some(Algorithm::EdDSA)
                }
                _ => None,
            };
            let alg = match jwk.common.key_algorithm {
                Some(named) => Algorithm::try_from(named).ok(),
                None => implied,
            };
            // The key's own type must fit its algorithm: an RSA key named ES256 verifies
            // nothing, and HS* never comes from a JWKS (a symmetric key in a published key set
            // would be a secret made public).
            let Some(alg) = alg.filter(|alg| fits(*alg, &jwk.algorithm)) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            return Err(
                "the JWKS holds no usable signature key (RSA, P-256, P-384 or Ed25519)".into(),
            );
        }
        Ok(KeySet { keys })
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none (never, for a set built here).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Whether a JWK's type (and curve) can verify `alg`.
fn fits(alg: Algorithm, params: &AlgorithmParameters) -> bool {
    match (params, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// The fetched JWKS of `USER_JWT_JWKS_URL` and when to fetch it again.
///
/// Fresh keys are used for `cache_ttl_s`; after that the next request fetches. A token
/// naming an unknown `kid` also fetches (the provider rotated), at most every
/// [`JWKS_MIN_REFETCH_S`]. A failed fetch keeps the keys already held (an identity-provider
/// outage must not log every player out) and is retried after [`JWKS_MIN_REFETCH_S`].
#[derive(Debug, Clone, Default)]
pub struct JwksCache {
    keys: Option<KeySet>,
    fetched_at_s: Option<u64>,
    attempted_at_s: Option<u64>,
}

impl JwksCache {
    /// The keys held, fresh or not.
    pub fn keys(&self) -> Option<&KeySet> {
        self.keys.as_ref()
    }

    /// Whether to fetch now. `unknown_kid`: a token named a key the held set lacks.
    pub fn should_fetch(&self, now_s: u64, cache_ttl_s: u64, unknown_kid: bool) -> bool {
        let recently_tried = self
            .attempted_at_s
            .is_some_and(|t| now_s < t.saturating_add(JWKS_MIN_REFETCH_S));
        if self.keys.is_none() || unknown_kid {
            return !recently_tried;
        }
        let stale = self
            .fetched_at_s
            .is_none_or(|t| now_s >= t.saturating_add(cache_ttl_s));
        stale && !recently_tried
    }

    /// Records a fetch: `Ok(body)` of a 2xx answer, or `Err` (network error, non-2xx).
    /// Returns the parse error of a body that is not a usable JWKS (the old keys stay).
    pub fn record(&mut self, now_s: u64, fetched: Result<&str, ()>) -> Result<(), String> {
        self.attempted_at_s = Some(now_s);
        match fetched.map(KeySet::from_jwks_json) {
            Ok(Ok(keys)) => {
                self.keys = Some(keys);
                self.fetched_at_s = Some(now_s);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(()) => Err("the JWKS could not be fetched".into()),
        }
    }
}

/// The start's `userId` against the authenticated identity: without authentication (`off`)
/// the body stands; with it, a body naming another user is 403 `forbidden` (field `userId`).
/// The identity's user id is what the origin is then sent.
pub fn start_user(identity: Option<&Identity>, body_user: &UserId) -> Result<(), api::ApiError> {
    match identity {
        Some(identity) if identity.user_id != *body_user => Err(api::ApiError::new(
            api::ErrorCode::Forbidden,
            "userId is not the user this credential proves: start as your own userId",
        )
        .about("userId")),
        _ => Ok(()),
    }
}

/// The owner token for a start's answer that lacks one (the user's existing active game,
/// started from another tab or device): minted here, because owner tokens are deterministic
/// (same game, same user, same creation time, same key: same token) and the edge holds the
/// owner-token keyring. Only for an authenticated owner of an active game; `None` otherwise.
pub fn owner_token_for(
    keyring: Option<&owner_token::Keyring>,
    identity: Option<&Identity>,
    game: &api::GameView,
) -> Option<String> {
    let (keyring, identity) = (keyring?, identity?);
    let mine = game.user_id == identity.user_id && game.status == api::GameStatus::Active;
    (mine && game.owner_token.is_none()).then(|| {
        keyring.issue(
            &game.game_id.to_string(),
            game.user_id.as_str(),
            game.created_at,
        )
    })
}

/// The seat token for a join's answer that lacks one (the authenticated player's existing
/// seat, joined from another tab or device): seat tokens are deterministic too (game, seat's
/// player, seat's join time). Only for the authenticated player of that seat, while they
/// have not exited it; `None` otherwise.
pub fn seat_token_for(
    keyring: Option<&owner_token::Keyring>,
    identity: Option<&Identity>,
    join: &api::JoinView,
) -> Option<String> {
    let (keyring, identity) = (keyring?, identity?);
    let mine = join.seat.user_id == identity.user_id && join.seat.result.is_none();
    (mine && join.owner_token.is_none()).then(|| {
        keyring.issue(
            &join.game.game_id.to_string(),
            join.seat.user_id.as_str(),
            join.seat.joined_at,
        )
    })
}

trait About {
    fn about(self, field: &str) -> Self;
}

impl About for api::ApiError {
    fn about(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

#[cfg(test)]
mod tests;
