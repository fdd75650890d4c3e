//! HTTP routes and the extractors that turn bad input into clear JSON errors.

pub mod compat;
pub mod game;
pub mod health;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `axum::Json`, with rejections mapped onto [`AppError`] (400 malformed, 422 wrong shape,
/// 413 too large, 415 not JSON).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => AppError::Validation(crate::domain::Invalid {
                    field: "body",
                    message: e.body_text().replace(
                        "Failed to deserialize the JSON body into the target type: ",
                        "",
                    ),
                }),
                JsonRejection::JsonSyntaxError(e) => AppError::BadRequest(format!(
                    "malformed JSON: {}",
                    e.body_text()
                        .replace("Failed to parse the request body as JSON: ", "")
                )),
                JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    AppError::PayloadTooLarge(MAX_BODY_BYTES)
                }
                other => AppError::BadRequest(other.body_text()),
            }),
        }
    }
}

/// Parses a JSON body read by hand, with the same errors as [`ApiJson`].
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => AppError::Validation(crate::domain::Invalid {
            field: "body",
            message: e.to_string(),
        }),
        _ => AppError::BadRequest(format!("malformed JSON: {e}")),
    })
}

/// Parses an optional integer query parameter, naming it on failure.
pub(crate) fn query_integer<T: std::str::FromStr>(
    params: &std::collections::HashMap<String, String>,
    field: &'static str,
    expected: &str,
) -> Result<Option<T>, AppError> {
    match params.get(field) {
        None => Ok(None),
        Some(raw) => raw.parse::<T>().map(Some).map_err(|_| {
            AppError::Validation(crate::domain::Invalid::new(
                field,
                format!("must be {expected}, got {raw:?}"),
            ))
        }),
    }
}
