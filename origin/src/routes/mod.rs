//! HTTP routes, and the extractors they share, which turn bad input into the contract's errors.
//!
//! - [`game`]: the game API (`/game/*`, `/users/{userId}/game`);
//! - [`v1`]: the session-service dialect (`/v1/sessions`);
//! - [`health`]: liveness, readiness and metrics;
//! - [`regions`]: the live region registry (list, register, drain);
//! - [`admin`]: the runtime settings (bearer `ADMIN_TOKEN`, as the drain routes);
//! - [`tournament`]: tournaments (created by the operator, joined by round, standings).
//!
//! Route modules only translate between HTTP and the service ([`crate::service`]); they never
//! call each other.

pub mod admin;
pub mod game;
pub mod health;
pub mod leaderboard;
pub mod regions;
pub mod tournament;
pub mod v1;

use api::json::is_json_content_type;
use api::limits::MAX_BODY_BYTES;
use api::{ApiError, GameId, IdempotencyKey, UserId};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{AppError, V1Error};

/// The request body, at most [`MAX_BODY_BYTES`]: 413 when the declared `Content-Length` is
/// over (before reading anything) or when the bytes read are (chunked uploads declare none; the
/// router's `DefaultBodyLimit` caps the read).
#[derive(Debug)]
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<BodyBytes, AppError> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(ApiError::payload_too_large().into());
        }
        match Bytes::from_request(request, state).await {
            Ok(bytes) if bytes.len() <= MAX_BODY_BYTES => Ok(BodyBytes(bytes)),
            Ok(_) => Err(ApiError::payload_too_large().into()),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::payload_too_large().into())
            }
            Err(rejection) => Err(ApiError::bad_request(format!(
                "could not read the request body: {}",
                rejection.body_text()
            ))
            .into()),
        }
    }
}

/// A JSON body of the game API, checked in the contract's order: declared JSON (415), size
/// (413), then [`api::json::parse_body`] (400 not JSON, 422 wrong shape naming the field).
///
/// Not `axum::Json`: serde accepts a JSON array for a struct (fields by position), so `["u1"]`
/// would start a game for `u1`, and its rejections are worded differently from the edge's.
/// Both servers run the same parser on the same bytes, so the same input gets the same status
/// and code from either.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<ApiJson<T>, AppError> {
        let declared_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_content_type);
        if !declared_json {
            return Err(ApiError::unsupported_media_type().into());
        }
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        Ok(ApiJson(api::json::parse_body(&bytes)?))
    }
}

/// The single `{...}` path parameter, as text (percent-decoded). Text that is not UTF-8 is
/// refused as a value of `field` would be.
async fn path_text(parts: &mut Parts, field: &'static str) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, &())
        .await
        .map(|Path(text)| text)
        .map_err(|_| ApiError::invalid(field, "is not valid UTF-8 text"))
}

/// The `{id}` of `/game/{id}...`: 422 `validation_failed` field `gameId` unless a UUID.
#[derive(Debug, Clone, Copy)]
pub struct GamePath(pub GameId);

impl<S: Send + Sync> FromRequestParts<S> for GamePath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<GamePath, AppError> {
        let text = path_text(parts, "gameId").await?;
        let id = GameId::parse(&text).map_err(|e| ApiError::invalid("gameId", e))?;
        Ok(GamePath(id))
    }
}

/// The `{userId}` of `/users/{userId}/game`: 422 `validation_failed` field `userId` unless a
/// valid user id.
#[derive(Debug, Clone)]
pub struct UserPath(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for UserPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<UserPath, AppError> {
        let text = path_text(parts, "userId").await?;
        let user = UserId::parse(&text).map_err(|e| ApiError::invalid("userId", e))?;
        Ok(UserPath(user))
    }
}

/// The optional `Idempotency-Key` header: 422 `validation_failed` field `Idempotency-Key`
/// unless 1 to 128 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<IdempotencyKeyHeader, AppError> {
        const FIELD: &str = "Idempotency-Key";
        let Some(value) = parts.headers.get(FIELD) else {
            return Ok(IdempotencyKeyHeader(None));
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid(FIELD, "must be 1 to 128 visible ASCII characters"))?;
        let key = IdempotencyKey::parse(text).map_err(|e| ApiError::invalid(FIELD, e))?;
        Ok(IdempotencyKeyHeader(Some(key)))
    }
}

/// Whether `path` belongs to the `/v1` session dialect (and so answers its errors).
pub fn is_v1_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The answer to a path no route serves: 404, in the `/v1` dialect under `/v1`, else
/// `not_found` of the game API.
pub async fn route_not_found(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    let error = ApiError::route_not_found(method.as_str(), uri.path());
    if is_v1_path(uri.path()) {
        V1Error::from(error).into_response()
    } else {
        AppError::from(error).into_response()
    }
}

/// The game API's answer to a method a route does not serve: 405 `method_not_allowed`, naming
/// `allow` (axum adds the matching `Allow` header).
pub fn method_not_allowed(
    allow: &'static str,
) -> impl Fn(Method) -> std::future::Ready<AppError> + Clone + Send + Sync + 'static {
    move |method: Method| {
        std::future::ready(ApiError::method_not_allowed(method.as_str(), allow).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_paths() {
        for path in ["/v1", "/v1/", "/v1/sessions", "/v1/x/y"] {
            assert!(is_v1_path(path), "{path}");
        }
        for path in ["/", "/v1x", "/v10/sessions", "/game/v1"] {
            assert!(!is_v1_path(path), "{path}");
        }
    }
}
