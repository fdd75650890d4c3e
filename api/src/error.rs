//! The one error body of the `/game/*` and `/edge/*` APIs and its codes.
//!
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`: `code` is stable and
//! machine-readable, each [`ErrorCode`] has exactly one HTTP status, `message` is for people
//! and never carries internals (hosts, driver errors), `field` names the offending input of a
//! `validation_failed`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every error code, with its one HTTP status ([`ErrorCode::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ErrorCode {
    /// 400: the body is not JSON (or empty where JSON is required).
    BadRequest,
    /// 401: the request needs credentials it did not carry.
    Unauthorized,
    /// 403: the credentials do not allow this (e.g. another player's game).
    Forbidden,
    /// 404: no such game, user game or route.
    NotFound,
    /// 405: the route exists with other methods (see `Allow`).
    MethodNotAllowed,
    /// 409: conflicts with stored state (e.g. an `Idempotency-Key` of another user).
    Conflict,
    /// 409: the shared game has no free seat left.
    GameFull,
    /// 409: the user already holds a seat or an active game (one at a time, in every region).
    AlreadyPlaying,
    /// 409: the game was not created open for players (no `maxPlayers`), or is a tournament's
    /// table (joined only through its round's join).
    NotJoinable,
    /// 410: the game's join deadline has passed.
    JoinClosed,
    /// 410: the game has ended (every seat exited, or it reached its maximum age).
    GameEnded,
    /// 413: the body is over [`crate::limits::MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// 415: the body is not declared `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed JSON (or a path/query/header) with a value that breaks a rule; names
    /// the `field`.
    ValidationFailed,
    /// 425: asks for something that is not public yet (a sealed game's round that has not
    /// broken, a state after now); `retryAt` says when to ask again (also `Retry-After`).
    TooEarly,
    /// 429: over a rate limit (see `Retry-After`).
    RateLimited,
    /// 500: a server misconfiguration; the details are in the server's log.
    Internal,
    /// 502: an upstream origin answered something that is not the contract.
    BadGateway,
    /// 503: Cassandra failed or did not answer (see `Retry-After`).
    StorageUnavailable,
    /// 503: the request took longer than the server's timeout (see `Retry-After`).
    Timeout,
    /// 503: the server is not ready (Cassandra does not answer).
    NotReady,
    /// 503: no origin could serve the request (all failed or their breakers are open).
    OriginsUnavailable,
}

impl ErrorCode {
    /// Every code, for docs and exhaustive tests.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::GameFull,
        ErrorCode::AlreadyPlaying,
        ErrorCode::NotJoinable,
        ErrorCode::JoinClosed,
        ErrorCode::GameEnded,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::ValidationFailed,
        ErrorCode::TooEarly,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::BadGateway,
        ErrorCode::StorageUnavailable,
        ErrorCode::Timeout,
        ErrorCode::NotReady,
        ErrorCode::OriginsUnavailable,
    ];

    /// The HTTP status of this code.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict
            | ErrorCode::GameFull
            | ErrorCode::AlreadyPlaying
            | ErrorCode::NotJoinable => 409,
            ErrorCode::JoinClosed | ErrorCode::GameEnded => 410,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::ValidationFailed => 422,
            ErrorCode::TooEarly => 425,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::BadGateway => 502,
            ErrorCode::StorageUnavailable
            | ErrorCode::Timeout
            | ErrorCode::NotReady
            | ErrorCode::OriginsUnavailable => 503,
        }
    }

    /// The wire name (`"validation_failed"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::GameFull => "game_full",
            ErrorCode::AlreadyPlaying => "already_playing",
            ErrorCode::NotJoinable => "not_joinable",
            ErrorCode::JoinClosed => "join_closed",
            ErrorCode::GameEnded => "game_ended",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::TooEarly => "too_early",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::BadGateway => "bad_gateway",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::OriginsUnavailable => "origins_unavailable",
        }
    }

    /// Whether a client should retry later (the answer carries `Retry-After`).
    pub const fn is_retryable(self) -> bool {
        self.status() == 503 || self.status() == 429
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// For people; no internals.
    pub message: String,
    /// The offending input of a `validation_failed` (a JSON path like `userId` or `metadata`,
    /// a query parameter, a path segment or a header name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub field: Option<String>,
    /// `too_early` only: the Unix ms at which asking again may succeed.
    #[serde(rename = "retryAt", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(rename = "retryAt"))]
    #[cfg_attr(test, ts(optional, type = "number", rename = "retryAt"))]
    pub retry_at: Option<i64>,
}

/// The JSON body of every error of the `/game/*` and `/edge/*` APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error to answer: a code (hence a status), a message and maybe a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// For `validation_failed`.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A `validation_failed` naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> ApiError {
        let field = field.into();
        ApiError {
            code: ErrorCode::ValidationFailed,
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    /// A `bad_request` (the body is not JSON).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// A `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// The body over the limit.
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "request body is larger than {} bytes",
                crate::limits::MAX_BODY_BYTES
            ),
        )
    }

    /// The body not declared as JSON.
    pub fn unsupported_media_type() -> ApiError {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected a JSON body with content-type: application/json",
        )
    }

    /// No route matches the path.
    pub fn route_not_found(method: &str, path: &str) -> ApiError {
        ApiError::not_found(format!("no route for {method} {path}"))
    }

    /// The path exists with other methods.
    pub fn method_not_allowed(method: &str, allow: &str) -> ApiError {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on this route (allowed: {allow})"),
        )
    }

    /// A server misconfiguration (500 `internal`); the message says what to fix, without
    /// secrets.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// An upstream origin answered something that is not the contract (502 `bad_gateway`).
    pub fn bad_gateway(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadGateway, message)
    }

    /// No origin could serve the request (503 `origins_unavailable`); `detail` says what
    /// happened in each region (region names and outcomes only, no hosts).
    pub fn origins_unavailable(detail: &str) -> ApiError {
        ApiError::new(
            ErrorCode::OriginsUnavailable,
            format!("no origin could serve the request ({detail})"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                retry_at: None,
            },
        }
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_else(|_| {
            // Serializing strings and an enum cannot fail; keep a valid body regardless.
            format!(r#"{{"error":{{"code":"{}","message":""}}}}"#, self.code)
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_status_and_round_trips() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!((400..600).contains(&code.status()), "{code}");
        }
        assert_eq!(ErrorCode::ValidationFailed.status(), 422);
        assert_eq!(ErrorCode::BadRequest.status(), 400);
    }

    #[test]
    fn edge_constructors_have_their_codes() {
        assert_eq!(ApiError::internal("x").status(), 500);
        assert_eq!(ApiError::bad_gateway("x").code, ErrorCode::BadGateway);
        let e = ApiError::origins_unavailable("eu: circuit open");
        assert_eq!((e.status(), e.code), (503, ErrorCode::OriginsUnavailable));
        assert!(e.message.contains("eu: circuit open"), "{}", e.message);
    }

    #[test]
    fn body_shape() {
        let e = ApiError::invalid("userId", "must be 1 to 64 characters");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "validation_failed", "field": "userId",
                "message": "userId: must be 1 to 64 characters"}})
        );
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::not_found("no game").to_json()).unwrap();
        assert!(v["error"].get("field").is_none());
    }
}
