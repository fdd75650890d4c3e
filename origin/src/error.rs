//! The errors of the HTTP layer and their two JSON forms.
//!
//! [`AppError`] is what extractors, handlers and the service fail with. It answers the
//! contract's [`api::ErrorBody`] with the one status of its [`ErrorCode`]; [`V1Error`] answers
//! the same causes in the `/v1` dialect ([`V1ErrorBody`]). Internals (driver errors, hosts) go
//! to the log, never to the client, and every 503 carries `Retry-After: 1`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use api::v1::V1ErrorBody;
use api::{ApiError, ErrorCode};

use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An answer the contract spells out: bad input (400, 413, 415, 422), unknown routes and
    /// methods (404, 405), readiness (503 `not_ready`).
    #[error("{}", .0.message)]
    Api(#[from] ApiError),
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// The game belongs to another user.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The request took longer than the configured timeout.
    #[error("the request took too long; it is safe to retry a start with the same Idempotency-Key")]
    Timeout,
    /// Cassandra failed or did not answer.
    #[error(
        "session storage is unavailable; retry shortly (starts are safe to retry with the same Idempotency-Key)"
    )]
    Storage(#[source] StoreError),
    /// Asks for what is not public yet (a sealed game's round before its break, a state after
    /// now): 425 `too_early`, with `retryAt` in the body and `Retry-After` (whole seconds).
    #[error("{message}")]
    TooEarly {
        /// For people.
        message: String,
        /// Unix ms at which asking again may succeed.
        retry_at_ms: i64,
    },
    /// This process failed (no OS randomness, a crashed computation); the detail is only
    /// logged.
    #[error("the server failed to process the request")]
    Internal(String),
}

/// Marks a response caused by a failed Cassandra operation, naming the operation (read by the
/// metrics middleware for `seedsync_cassandra_errors_total`).
#[derive(Debug, Clone, Copy)]
pub struct StorageFailure(pub &'static str);

impl AppError {
    /// The contract's code (hence the status) of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Api(error) => error.code,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::Timeout => ErrorCode::Timeout,
            AppError::TooEarly { .. } => ErrorCode::TooEarly,
            AppError::Storage(_) => ErrorCode::StorageUnavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The error as the contract words it (no internals).
    pub fn to_api(&self) -> ApiError {
        ApiError {
            code: self.code(),
            message: self.to_string(),
            field: match self {
                AppError::Api(error) => error.field.clone(),
                _ => None,
            },
        }
    }

    /// What every error response gets whatever its dialect: the log line for failures of this
    /// service, `Retry-After` on retryable codes and the [`StorageFailure`] mark.
    fn finish(&self, response: &mut Response) {
        match self {
            AppError::Storage(source) => {
                tracing::error!(error = %source, operation = source.operation(), "storage failure");
                response
                    .extensions_mut()
                    .insert(StorageFailure(source.operation()));
            }
            AppError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => {}
        }
        if self.code().is_retryable() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let AppError::TooEarly { retry_at_ms, .. } = self {
            let wait_ms = retry_at_ms.saturating_sub(kernel::clock::now_ms()).max(1);
            let seconds = wait_ms.saturating_add(999) / 1_000;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            // Not an answer to keep: the same request succeeds later.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        AppError::Storage(error)
    }
}

/// The HTTP status of a contract code.
fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let error = self.to_api();
        let mut body = error.body();
        if let AppError::TooEarly { retry_at_ms, .. } = &self {
            body.error.retry_at = Some(*retry_at_ms);
        }
        let mut response = (status_of(error.code), Json(body)).into_response();
        self.finish(&mut response);
        response
    }
}

/// An error of the `/v1/sessions` dialect: `{"error": "<short message>", "message": "<detail>"}`.
///
/// That API answers 400 to every kind of bad input (where the contract says 422), and 404 to a
/// malformed session id as to an unknown one; everything else keeps the contract's status.
#[derive(Debug, thiserror::Error)]
#[error("{status} {error}: {message}")]
pub struct V1Error {
    status: StatusCode,
    error: &'static str,
    message: String,
    cause: Option<AppError>,
}

impl V1Error {
    /// An error with this status, short message and detail.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> V1Error {
        V1Error {
            status,
            error,
            message: message.into(),
            cause: None,
        }
    }

    /// 404 `session not found` (also for ids that cannot be session ids).
    pub fn session_not_found() -> V1Error {
        V1Error::new(
            StatusCode::NOT_FOUND,
            "session not found",
            "no session with this id",
        )
    }

    /// 400 `session already stopped`.
    pub fn already_stopped() -> V1Error {
        V1Error::new(
            StatusCode::BAD_REQUEST,
            "session already stopped",
            "the session was stopped before",
        )
    }

    /// Bad input, with `error` as the short message: 400, except an oversized body (413)
    /// and failures of this service, which keep their own answer.
    pub fn invalid(error: &'static str, cause: AppError) -> V1Error {
        let mut v1 = V1Error::from(cause);
        if v1.status == StatusCode::BAD_REQUEST {
            v1.error = error;
        }
        v1
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The short message.
    pub fn error(&self) -> &'static str {
        self.error
    }
}

/// The dialect's status and short message for a contract code.
fn v1_status_and_error(code: ErrorCode) -> (StatusCode, &'static str) {
    match code {
        ErrorCode::BadRequest | ErrorCode::ValidationFailed | ErrorCode::UnsupportedMediaType => {
            (StatusCode::BAD_REQUEST, "invalid request")
        }
        ErrorCode::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ErrorCode::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        ErrorCode::NotFound => (StatusCode::NOT_FOUND, "not found"),
        ErrorCode::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        ErrorCode::Conflict
        | ErrorCode::GameFull
        | ErrorCode::AlreadyPlaying
        | ErrorCode::NotJoinable => (StatusCode::CONFLICT, "conflict"),
        ErrorCode::JoinClosed | ErrorCode::GameEnded => (StatusCode::GONE, "gone"),
        ErrorCode::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        ErrorCode::TooEarly => (StatusCode::TOO_EARLY, "too early"),
        ErrorCode::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        ErrorCode::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        ErrorCode::BadGateway => (StatusCode::BAD_GATEWAY, "bad gateway"),
        ErrorCode::StorageUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
        ErrorCode::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        ErrorCode::NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
        ErrorCode::OriginsUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "origins unavailable"),
    }
}

impl From<AppError> for V1Error {
    fn from(cause: AppError) -> V1Error {
        let (status, error) = v1_status_and_error(cause.code());
        V1Error {
            status,
            error,
            message: cause.to_string(),
            cause: Some(cause),
        }
    }
}

impl From<ApiError> for V1Error {
    fn from(error: ApiError) -> V1Error {
        V1Error::from(AppError::Api(error))
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let body = V1ErrorBody {
            error: self.error.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        match &self.cause {
            Some(cause) => cause.finish(&mut response),
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            None => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_v1_answer_with_the_same_class() {
        for code in ErrorCode::ALL {
            let (status, error) = v1_status_and_error(code);
            assert!(!error.is_empty());
            let contract = status_of(code);
            if contract == StatusCode::UNPROCESSABLE_ENTITY
                || contract == StatusCode::UNSUPPORTED_MEDIA_TYPE
            {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{code}");
            } else {
                assert_eq!(status, contract, "{code}");
            }
        }
    }

    #[test]
    fn invalid_input_is_400_but_failures_keep_their_status() {
        let bad = V1Error::invalid(
            "invalid request body",
            ApiError::invalid("tick_ms", "must be 1..=60000").into(),
        );
        assert_eq!(
            (bad.status(), bad.error()),
            (StatusCode::BAD_REQUEST, "invalid request body")
        );
        let big = V1Error::invalid("invalid request body", ApiError::payload_too_large().into());
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let down = V1Error::invalid("invalid request body", AppError::Timeout);
        assert_eq!(
            (down.status(), down.error()),
            (StatusCode::SERVICE_UNAVAILABLE, "timeout")
        );
    }

    #[test]
    fn storage_failures_hide_the_driver_and_ask_for_a_retry() {
        let error = AppError::Storage(StoreError::Query {
            operation: "read game",
            message: "unconfigured table games at 10.0.0.7".into(),
        });
        assert!(!error.to_string().contains("10.0.0.7"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert!(matches!(
            response.extensions().get::<StorageFailure>(),
            Some(StorageFailure("read game"))
        ));
    }
}
