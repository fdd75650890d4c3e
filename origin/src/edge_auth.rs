//! Whether a request comes from the edge: its `x-seedsync-edge-signature` (see
//! [`trust::edge_auth`]) checked against `EDGE_ORIGIN_SECRET`, with a bounded replay guard.
//!
//! On Cloudflare the edge leaves from address space every Worker shares, so `TRUSTED_PROXIES`
//! cannot tell our edge from anyone else's Worker. A request whose signature verifies (fresh,
//! nonce never seen) is "from the edge": its client address, for the per-client limits, is the
//! `x-seedsync-client-address` the edge signed. Any other request (no signature, a forged,
//! stale or replayed one) never gets its client address from those headers; the limits fall
//! back to `TRUSTED_PROXIES` (ordinary load balancers) or the socket peer, as before.
//!
//! With `SEEDSYNC_ENV=production` the secret is required, and the public API (`/game/*`,
//! `/users/*`, `/tournaments/*`, and `/v1/*` unless `ORIGIN_DIRECT_ACCESS=v1`) answers 403
//! `forbidden` to any request that is not from the edge. Health, readiness, metrics and the registry routes are
//! not gated here: they have credentials of their own.
//!
//! | variable | default | |
//! |---|---|---|
//! | `EDGE_ORIGIN_SECRET` (or `_FILE`) | none | the secret the edge signs with (32+ bytes); required in production |
//! | `EDGE_ORIGIN_PREVIOUS_SECRET` (or `_FILE`) | none | the secret before it, still accepted during a rotation |
//! | `ORIGIN_DIRECT_ACCESS` | `none` | `v1`: `/v1/*` clients may call this origin directly in production |
//!
//! Outcomes are counted in `seedsync_edge_auth_total{outcome}`; no secret, signature or nonce is
//! ever logged or put in a label.

use std::net::IpAddr;
use std::sync::Mutex;

use api::{ApiError, ErrorCode};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use kernel::SettingsError;
use trust::Keys;
use trust::Why;
use trust::edge_auth::{self, ReplayGuard, SignedRequest};

use crate::error::{AppError, V1Error};

/// `none` (default) or `v1`: which dialect may be called without the edge in production.
pub const ORIGIN_DIRECT_ACCESS: &str = "ORIGIN_DIRECT_ACCESS";
/// The secret's variables: `EDGE_ORIGIN_SECRET`, `_FILE`, and the previous secret's two.
pub const SECRET_VARIABLES: [&str; 4] = edge_auth::SECRET_VARIABLES;
/// Every variable this module reads.
pub const VARIABLES: [&str; 5] = [
    SECRET_VARIABLES[0],
    SECRET_VARIABLES[1],
    SECRET_VARIABLES[2],
    SECRET_VARIABLES[3],
    ORIGIN_DIRECT_ACCESS,
];

/// Nonces remembered at most (about 30 MB when full). The edge's request rate to one origin
/// times twice the window must stay below it; past it, signed requests are refused
/// (`guard_full`) rather than a nonce forgotten.
pub const REPLAY_CAPACITY: usize = 100_000;

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeAuthSettings {
    /// `EDGE_ORIGIN_SECRET` (+ previous): `None` believes no signature (every request is
    /// treated as not from the edge, and nothing is refused for it).
    pub keys: Option<Keys>,
    /// `SEEDSYNC_ENV=production`: the public API is refused to requests not from the edge.
    pub required: bool,
    /// `ORIGIN_DIRECT_ACCESS=v1`: `/v1/*` is open to direct clients even in production.
    pub direct_v1: bool,
    /// How far a signature's timestamp may be from this origin's clock, ms.
    pub window_ms: i64,
}

impl Default for EdgeAuthSettings {
    fn default() -> EdgeAuthSettings {
        EdgeAuthSettings {
            keys: None,
            required: false,
            direct_v1: false,
            window_ms: edge_auth::DEFAULT_WINDOW_MS,
        }
    }
}

impl EdgeAuthSettings {
    /// Reads [`VARIABLES`] (and `SEEDSYNC_ENV`); secrets may come from files (`*_FILE`).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<EdgeAuthSettings, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let keys = Keys::from_settings(get, read_file, SECRET_VARIABLES)?;
        let direct_v1 = match get(ORIGIN_DIRECT_ACCESS)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => false,
            Some("v1") => true,
            Some(other) => {
                return Err(SettingsError::new(
                    ORIGIN_DIRECT_ACCESS,
                    format!("{other:?} is not `none` or `v1`"),
                ));
            }
        };
        let required = get(owner_token::env::MODE_VAR).is_some_and(|v| v.trim() == "production");
        if required && keys.is_none() {
            return Err(SettingsError::new(
                SECRET_VARIABLES[0],
                "is required with SEEDSYNC_ENV=production (without it any Worker could claim \
                 to be the edge and choose its client address); set the edge's value, e.g. \
                 from `openssl rand -base64 48`",
            ));
        }
        Ok(EdgeAuthSettings {
            keys,
            required,
            direct_v1,
            ..EdgeAuthSettings::default()
        })
    }
}

/// The request extension the limits middleware ([`crate::limits`]) adds to a request whose
/// edge signature verified: routes that answer the edge more than the public (the schedule of
/// a sealed game's reveals, see [`crate::routes::game::rounds`]) ask for it with [`IsFromEdge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FromEdge;

/// Whether the request carries [`FromEdge`] (its edge signature verified), as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsFromEdge(pub bool);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IsFromEdge {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<IsFromEdge, std::convert::Infallible> {
        Ok(IsFromEdge(parts.extensions.get::<FromEdge>().is_some()))
    }
}

/// What a request's signature showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// From the edge: the client address it vouches for (`None` for the edge's own calls,
    /// which carry none) and the user it verified.
    Edge {
        /// The client behind the edge.
        client: Option<IpAddr>,
        /// The user id the edge verified, if any.
        user: Option<String>,
    },
    /// Not from the edge; why (the metric label).
    NotEdge(&'static str),
}

impl Verdict {
    /// Whether the request is from the edge.
    pub fn is_edge(&self) -> bool {
        matches!(self, Verdict::Edge { .. })
    }

    /// The client address the edge vouches for.
    pub fn client(&self) -> Option<IpAddr> {
        match self {
            Verdict::Edge { client, .. } => *client,
            Verdict::NotEdge(_) => None,
        }
    }
}

/// The live check of one process: the settings, the replay guard and the counter.
#[derive(Debug)]
pub struct EdgeAuth {
    settings: EdgeAuthSettings,
    guard: Mutex<ReplayGuard>,
    counter: Option<prometheus::IntCounterVec>,
}

impl Default for EdgeAuth {
    fn default() -> EdgeAuth {
        EdgeAuth::new(EdgeAuthSettings::default())
    }
}

impl EdgeAuth {
    /// The check for `settings`, with an empty replay guard of [`REPLAY_CAPACITY`].
    pub fn new(settings: EdgeAuthSettings) -> EdgeAuth {
        EdgeAuth {
            guard: Mutex::new(ReplayGuard::new(REPLAY_CAPACITY, settings.window_ms)),
            settings,
            counter: None,
        }
    }

    /// Also counts outcomes into `counter` (label `outcome`).
    pub fn with_counter(mut self, counter: prometheus::IntCounterVec) -> EdgeAuth {
        self.counter = Some(counter);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &EdgeAuthSettings {
        &self.settings
    }

    fn count(&self, outcome: &'static str) {
        if let Some(counter) = &self.counter {
            counter.with_label_values(&[outcome]).inc();
        }
    }

    /// Checks the edge signature of a request (`NotEdge("unconfigured")`, uncounted, when this
    /// origin has no secret). A verified nonce is remembered: the same request again is
    /// `replayed`.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap, now_ms: i64) -> Verdict {
        let Some(keys) = &self.settings.keys else {
            return Verdict::NotEdge("unconfigured");
        };
        let verdict = self.verify(keys, method, uri, headers, now_ms);
        self.count(match &verdict {
            Verdict::Edge { .. } => "ok",
            Verdict::NotEdge(outcome) => outcome,
        });
        verdict
    }

    fn verify(
        &self,
        keys: &Keys,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Verdict {
        let text = |name: &str| headers.get(name).map(|v| v.to_str());
        let signature = match text(edge_auth::HEADER) {
            None => return Verdict::NotEdge("missing"),
            Some(Ok(s)) => s,
            Some(Err(_)) => return Verdict::NotEdge("malformed"),
        };
        let client_address = match text(edge_auth::CLIENT_ADDRESS_HEADER) {
            None => "",
            Some(Ok(s)) => s,
            Some(Err(_)) => return Verdict::NotEdge("malformed"),
        };
        let user = match text(edge_auth::USER_HEADER).transpose() {
            Ok(value) => match edge_auth::parse_user_header(value) {
                Ok(user) => user,
                Err(_) => return Verdict::NotEdge("malformed"),
            },
            Err(_) => return Verdict::NotEdge("malformed"),
        };
        let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let request = SignedRequest {
            method: method.as_str(),
            path_and_query,
            client_address,
            user_id: user,
        };
        let admitted =
            edge_auth::verify(keys, &request, signature, now_ms, self.settings.window_ms).and_then(
                |verified| {
                    // A poisoned lock only means another request panicked mid-admit; the guard's
                    // sets are still consistent enough to refuse replays.
                    let mut guard = self.guard.lock().unwrap_or_else(|e| e.into_inner());
                    guard.admit(&verified, now_ms)
                },
            );
        match admitted {
            Ok(()) => Verdict::Edge {
                client: client_address.parse::<IpAddr>().ok(),
                user: user.map(str::to_owned),
            },
            Err(why) => Verdict::NotEdge(outcome(why)),
        }
    }

    /// Whether `path` must come from the edge: the public API in production (see the module
    /// docs).
    pub fn gated(&self, path: &str) -> bool {
        if !self.settings.required {
            return false;
        }
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        under("/game")
            || under("/users")
            || under("/tournaments")
            || (under("/v1") && !self.settings.direct_v1)
    }

    /// The 403 for a gated request not from the edge, in its dialect.
    pub fn refusal(v1: bool) -> Response {
        let error = AppError::Api(ApiError::new(
            ErrorCode::Forbidden,
            "this origin serves the public API only through the edge: send the request to the \
             edge (requests straight to an origin need the edge's signature)",
        ));
        if v1 {
            V1Error::from(error).into_response()
        } else {
            error.into_response()
        }
    }
}

/// The metric label of a refusal.
fn outcome(why: Why) -> &'static str {
    match why {
        Why::Malformed => "malformed",
        Why::BadSignature => "bad_signature",
        Why::Stale | Why::Future | Why::Expired => "stale",
        Why::Replayed => "replayed",
        Why::GuardFull => "guard_full",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::HeaderValue;
    use kernel::Secret;

    use super::*;

    const SECRET: &str = "edge-origin-secret-for-unit-tests-0123456789";
    const NOW: i64 = 1_700_000_000_000;

    fn settings(pairs: &[(&str, &str)]) -> Result<EdgeAuthSettings, SettingsError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EdgeAuthSettings::from_lookup(
            |n| vars.get(n).cloned(),
            |path| {
                (path == "/run/secrets/edge")
                    .then(|| format!("{SECRET}\n"))
                    .ok_or_else(|| std::io::Error::other("no such file"))
            },
        )
    }

    fn keys() -> Keys {
        Keys::new("T", Secret::new(SECRET), None).unwrap()
    }

    fn signed(path: &str, client: &str, user: Option<&str>, t: i64, nonce: &str) -> HeaderMap {
        let request = SignedRequest {
            method: "POST",
            path_and_query: path,
            client_address: client,
            user_id: user,
        };
        let mut h = HeaderMap::new();
        h.insert(
            edge_auth::HEADER,
            HeaderValue::from_str(&edge_auth::sign(&keys(), &request, t, nonce).unwrap()).unwrap(),
        );
        h.insert(
            edge_auth::CLIENT_ADDRESS_HEADER,
            HeaderValue::from_str(client).unwrap(),
        );
        h.insert(
            edge_auth::USER_HEADER,
            HeaderValue::from_str(&edge_auth::user_header(user)).unwrap(),
        );
        h
    }

    #[test]
    fn settings_and_production() {
        assert_eq!(settings(&[]).unwrap(), EdgeAuthSettings::default());
        let err = settings(&[("SEEDSYNC_ENV", "production")]).unwrap_err();
        assert_eq!(err.variable, "EDGE_ORIGIN_SECRET");
        let prod = settings(&[
            ("SEEDSYNC_ENV", "production"),
            ("EDGE_ORIGIN_SECRET_FILE", "/run/secrets/edge"),
        ])
        .unwrap();
        assert!(prod.required && prod.keys.is_some() && !prod.direct_v1);
        assert!(settings(&[(ORIGIN_DIRECT_ACCESS, "V1")]).unwrap().direct_v1);
        let err = settings(&[(ORIGIN_DIRECT_ACCESS, "all")]).unwrap_err();
        assert_eq!(err.variable, ORIGIN_DIRECT_ACCESS);
        let err = settings(&[("EDGE_ORIGIN_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "EDGE_ORIGIN_SECRET");
        assert!(!err.to_string().contains("short"));
        assert!(!format!("{prod:?}").contains(SECRET));
    }

    #[test]
    fn verdicts() {
        let auth = EdgeAuth::new(EdgeAuthSettings {
            keys: Some(keys()),
            ..EdgeAuthSettings::default()
        });
        let post = Method::POST;
        let uri: Uri = "/game/start".parse().unwrap();
        let nonce = "nonce-0000000000001";
        let h = signed("/game/start", "203.0.113.9", Some("alice"), NOW, nonce);
        assert_eq!(
            auth.check(&post, &uri, &h, NOW + 10),
            Verdict::Edge {
                client: Some("203.0.113.9".parse().unwrap()),
                user: Some("alice".into())
            }
        );
        assert_eq!(
            auth.check(&post, &uri, &h, NOW + 20),
            Verdict::NotEdge("replayed")
        );
        // Another claimed address under the same signature: forged.
        let mut forged = signed(
            "/game/start",
            "203.0.113.9",
            None,
            NOW,
            "nonce-0000000000002",
        );
        forged.insert(
            edge_auth::CLIENT_ADDRESS_HEADER,
            HeaderValue::from_static("198.51.100.1"),
        );
        assert_eq!(
            auth.check(&post, &uri, &forged, NOW),
            Verdict::NotEdge("bad_signature")
        );
        let old = signed(
            "/game/start",
            "203.0.113.9",
            None,
            NOW,
            "nonce-0000000000003",
        );
        assert_eq!(
            auth.check(&post, &uri, &old, NOW + 60_000),
            Verdict::NotEdge("stale")
        );
        assert_eq!(
            auth.check(&post, &uri, &HeaderMap::new(), NOW),
            Verdict::NotEdge("missing")
        );
        // Signed for another path.
        let elsewhere = signed(
            "/game/exit",
            "203.0.113.9",
            None,
            NOW,
            "nonce-0000000000004",
        );
        assert_eq!(
            auth.check(&post, &uri, &elsewhere, NOW),
            Verdict::NotEdge("bad_signature")
        );
        // The edge's own calls vouch for no client.
        let own = signed("/game/start", "", None, NOW, "nonce-0000000000005");
        assert_eq!(
            auth.check(&post, &uri, &own, NOW),
            Verdict::Edge {
                client: None,
                user: None
            }
        );
        // Without a secret nothing is believed.
        assert_eq!(
            EdgeAuth::default().check(&post, &uri, &h, NOW),
            Verdict::NotEdge("unconfigured")
        );
    }

    #[test]
    fn gates_only_the_public_api_in_production() {
        let auth = |required, direct_v1| {
            EdgeAuth::new(EdgeAuthSettings {
                keys: Some(keys()),
                required,
                direct_v1,
                ..EdgeAuthSettings::default()
            })
        };
        let prod = auth(true, false);
        for path in [
            "/game/start",
            "/game/x/state",
            "/users/u/game",
            "/tournaments/t/rounds/0/join",
            "/v1/sessions",
        ] {
            assert!(prod.gated(path), "{path}");
        }
        for path in [
            "/health",
            "/ready",
            "/metrics",
            "/regions",
            "/api/regions/register",
            "/gamex",
            "/v1x",
        ] {
            assert!(!prod.gated(path), "{path}");
        }
        assert!(!auth(true, true).gated("/v1/sessions"));
        assert!(auth(true, true).gated("/game/start"));
        assert!(!auth(false, false).gated("/game/start"));
    }
}
