//! What the edge checks on a POST before parsing its body, in the origin's order: the body
//! must be declared JSON (415), then fit [`MAX_BODY_BYTES`] (413, by the declared
//! `Content-Length` before reading, and by the bytes actually read, since chunked uploads
//! declare none). The body itself is then parsed by [`api::json::parse_body`].

use api::ApiError;
use api::json::is_json_content_type;
use api::limits::MAX_BODY_BYTES;

/// 415 `unsupported_media_type` unless the body is declared JSON.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    if content_type.is_some_and(is_json_content_type) {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// 413 `payload_too_large` when the declared `Content-Length` is over the limit. A length that
/// is not a number is left to the runtime (and to [`check_body_len`]).
pub fn check_declared_length(content_length: Option<&str>) -> Result<(), ApiError> {
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > MAX_BODY_BYTES as u64 => Err(ApiError::payload_too_large()),
        _ => Ok(()),
    }
}

/// 413 `payload_too_large` when the body read is over the limit.
pub fn check_body_len(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        Err(ApiError::payload_too_large())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ErrorCode;

    #[test]
    fn json_content_types() {
        assert_eq!(
            check_content_type(None).unwrap_err().code,
            ErrorCode::UnsupportedMediaType
        );
        assert_eq!(
            check_content_type(Some("text/plain")).unwrap_err().status(),
            415
        );
        assert!(check_content_type(Some("application/json")).is_ok());
    }

    #[test]
    fn length_limits() {
        let limit = MAX_BODY_BYTES.to_string();
        let over = (MAX_BODY_BYTES + 1).to_string();
        assert!(check_declared_length(None).is_ok());
        assert!(check_declared_length(Some(&limit)).is_ok());
        assert!(check_declared_length(Some("x")).is_ok());
        let e = check_declared_length(Some(&over)).unwrap_err();
        assert_eq!((e.status(), e.code), (413, ErrorCode::PayloadTooLarge));
        assert!(check_body_len(MAX_BODY_BYTES).is_ok());
        assert_eq!(
            check_body_len(MAX_BODY_BYTES + 1).unwrap_err().status(),
            413
        );
    }
}
