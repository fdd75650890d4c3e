//! The one error type of the HTTP layer and its JSON form.
//!
//! Every failure becomes `{"error": {"code", "message"}}` with a fitting status. Internal
//! details (driver errors, hosts) go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::Invalid;
use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON, or not the JSON this route takes.
    #[error("{0}")]
    BadRequest(String),
    /// A field has a value this service does not accept.
    #[error("{}: {}", .0.field, .0.message)]
    Validation(Invalid),
    /// The body is larger than the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not declared as JSON.
    #[error("expected a JSON body with content-type: application/json")]
    UnsupportedMediaType,
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// The game belongs to another user.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with stored state.
    #[error("{0}")]
    Conflict(String),
    /// No route for the method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The request took longer than the configured timeout.
    #[error("the request took too long; it is safe to retry a start with the same Idempotency-Key")]
    Timeout,
    /// Cassandra failed or did not answer.
    #[error(
        "session storage is unavailable; retry shortly (starts are safe to retry with the same Idempotency-Key)"
    )]
    Storage(#[source] StoreError),
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            AppError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            AppError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> AppError {
        AppError::Validation(invalid)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> AppError {
        AppError::Storage(error)
    }
}

/// Marks a response caused by a failed Cassandra operation (read by the metrics middleware).
#[derive(Debug, Clone, Copy)]
pub struct StorageFailure(pub &'static str);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let AppError::Storage(source) = &self {
            tracing::error!(error = %source, "storage failure");
        }
        let mut body = json!({"error": {"code": code, "message": self.to_string()}});
        if let AppError::Validation(invalid) = &self {
            body["error"]["field"] = json!(invalid.field);
        }
        let mut response = (status, Json(body)).into_response();
        if let AppError::Storage(_) | AppError::Timeout = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let AppError::Storage(source) = &self {
            response
                .extensions_mut()
                .insert(StorageFailure(source.operation()));
        }
        response
    }
}
