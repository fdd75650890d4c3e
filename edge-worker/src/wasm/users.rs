//! The Workers-runtime side of user authentication ([`crate::user_auth`] decides): reading
//! the `USER_*` settings from the Worker's bindings, `POST /edge/auth/guest`, proving a
//! start's user, fetching and caching a JWKS from `USER_JWT_JWKS_URL`, and the owner-token
//! keyring the edge mints an existing game's token with.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use api::{ApiError, ErrorCode};
use futures_util::future::{Either, select};
use serde::Serialize;
use worker::{AbortController, Delay, Fetch, Request};

use super::context::{header, now_ms, random_bytes};
use super::reply::Reply;
use crate::config::{self, Config};
use crate::user_auth::{
    self, AuthError, Identity, JwksCache, JwtKeySource, USER_JWT_JWKS_URL, UserAuth,
};

/// How long a JWKS fetch may take.
const JWKS_FETCH_TIMEOUT_MS: u64 = 3_000;

thread_local! {
    // Isolate memory, never borrowed across an `.await`: the fetched JWKS.
    static JWKS: RefCell<JwksCache> = RefCell::new(JwksCache::default());
}

/// The user-authentication settings, parsed with the rest of the [`Config`]. A bad value is a
/// 500 naming its variable (never its value).
fn settings(cfg: &Config) -> Result<Rc<UserAuth>, ApiError> {
    cfg.users.0.clone().map_err(|e| config::misconfigured(&e))
}

/// The answer of `POST /edge/auth/guest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GuestView {
    user_id: String,
    user_token: String,
    /// Unix ms.
    expires_at: u64,
}

/// `POST /edge/auth/guest`: a new guest identity. 404 unless `USER_AUTH=guest`.
pub(super) fn guest(cfg: &Config) -> Result<Reply, ApiError> {
    let auth = settings(cfg)?;
    let UserAuth::Guest(tokens) = &*auth else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "guest identities are not issued here (USER_AUTH is not guest)",
        ));
    };
    let issued = tokens.issue(random_bytes(), now_ms() / 1_000);
    Ok(Reply::json(
        201,
        &GuestView {
            user_id: issued.user_id.to_string(),
            user_token: issued.user_token,
            expires_at: issued.expires_at_s.saturating_mul(1_000),
        },
    )
    .with("cache-control", "no-store"))
}

/// The 401 of a refused credential, with its `WWW-Authenticate` challenge.
pub(super) fn unauthorized(e: AuthError) -> Reply {
    Reply::error(&ApiError::new(ErrorCode::Unauthorized, e.message()))
        .with("www-authenticate", e.www_authenticate())
}

/// Who a start's `Authorization` proves: `Ok(None)` with `USER_AUTH=off`, `Err(reply)` (401,
/// or 500 on bad settings) when it proves nobody.
pub(super) async fn authenticate(req: &Request, cfg: &Config) -> Result<Option<Identity>, Reply> {
    let auth = settings(cfg).map_err(|e| Reply::error(&e))?;
    let authorization = header(req, "authorization");
    let now_s = now_ms() / 1_000;
    let outcome = match &*auth {
        UserAuth::Jwt(jwt) => match &jwt.keys {
            JwtKeySource::Static(keys) => {
                auth.authenticate(authorization.as_deref(), Some(keys), now_s)
            }
            JwtKeySource::Url { url, cache_ttl_s } => {
                // Reject what cannot be a credential before any fetch.
                if let Err(e) = user_auth::bearer(authorization.as_deref()) {
                    return Err(unauthorized(e));
                }
                refresh_jwks(url, *cache_ttl_s, now_s, false).await;
                let keys = JWKS.with(|c| c.borrow().keys().cloned());
                let first = auth.authenticate(authorization.as_deref(), keys.as_ref(), now_s);
                if first == Err(AuthError::UnknownKey) {
                    // The provider may have rotated: one refetch (rate-bounded by the cache).
                    refresh_jwks(url, *cache_ttl_s, now_s, true).await;
                    let keys = JWKS.with(|c| c.borrow().keys().cloned());
                    auth.authenticate(authorization.as_deref(), keys.as_ref(), now_s)
                } else {
                    first
                }
            }
        },
        _ => auth.authenticate(authorization.as_deref(), None, now_s),
    };
    outcome.map_err(unauthorized)
}

/// Fetches the JWKS when the cache says so.
async fn refresh_jwks(url: &str, cache_ttl_s: u64, now_s: u64, unknown_kid: bool) {
    if !JWKS.with(|c| c.borrow().should_fetch(now_s, cache_ttl_s, unknown_kid)) {
        return;
    }
    let fetched = fetch_text(url).await;
    let recorded = JWKS.with(|c| {
        c.borrow_mut()
            .record(now_s, fetched.as_deref().map_err(|_| ()))
    });
    if let Err(e) = recorded {
        // The URL is the operator's own setting and holds no credential (checked at parse).
        let why = fetched.err().unwrap_or(e);
        worker::console_error!("{USER_JWT_JWKS_URL}: {why}");
    }
}

/// GET `url` under a timeout; the body of a 2xx within [`user_auth::MAX_JWKS_BYTES`].
async fn fetch_text(url: &str) -> Result<String, String> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async {
        let mut resp = Fetch::Url(url.parse().map_err(|e| format!("bad URL: {e}"))?)
            .send_with_signal(&signal)
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        if !(200..300).contains(&resp.status_code()) {
            return Err(format!("HTTP {}", resp.status_code()));
        }
        let body = resp.bytes().await.map_err(|e| format!("unreadable: {e}"))?;
        if body.len() > user_auth::MAX_JWKS_BYTES {
            return Err("the JWKS is too large".to_owned());
        }
        String::from_utf8(body).map_err(|_| "the JWKS is not UTF-8".to_owned())
    };
    let timer = Delay::from(Duration::from_millis(JWKS_FETCH_TIMEOUT_MS));
    match select(Box::pin(exchange), Box::pin(timer)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => {
            controller.abort();
            Err(format!("timed out after {JWKS_FETCH_TIMEOUT_MS} ms"))
        }
    }
}

/// The owner-token keyring the edge mints an existing game's token with (`None` without
/// `OWNER_TOKEN_SECRET`, or with a bad one: the start itself still succeeds, only without the
/// minted token; the rooms report the bad secret).
pub(super) fn owner_keyring(cfg: &Config) -> Option<&owner_token::Keyring> {
    cfg.room.keyring.0.as_ref().ok().and_then(Option::as_ref)
}
