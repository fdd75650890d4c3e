//! Request bodies: the one JSON parser both servers use, so the same bytes get the same answer.
//!
//! - empty or whitespace-only → 400 `bad_request`;
//! - not JSON (syntax error, truncated) → 400 `bad_request`;
//! - JSON of the wrong shape or a value that breaks a rule (wrong type, missing field, bad id,
//!   out-of-range number) → 422 `validation_failed` naming the field by its JSON path.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Whether a `Content-Type` declares JSON: `application/json` or a `+json` type under
/// `application/`, any case, parameters (`; charset=utf-8`) allowed. A POST body not declared
/// JSON is 415 `unsupported_media_type` at both servers.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || (subtype.len() > 5 && subtype.ends_with("+json")))
}

/// Parses a request body into `T`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    // serde accepts a JSON array for a struct (fields by position); the contract's bodies are
    // objects only, so anything else that is valid JSON is refused as the wrong shape.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!("malformed JSON: {e}"))),
        };
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(from_path_error)?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Maps a JSON error located by `serde_path_to_error` (what axum's `Json` extractor reports
/// too) onto the contract's error.
pub fn from_path_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(field, strip_position(&inner.to_string()))
        }
        _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
    }
}

/// serde_json appends " at line L column C" to data errors; the field says where already.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::game::StartRequest;

    fn start(body: &str) -> Result<StartRequest, ApiError> {
        parse_body(body.as_bytes())
    }

    #[test]
    fn malformed_is_400_and_wrong_shape_is_422() {
        for (body, code, field) in [
            ("", ErrorCode::BadRequest, None),
            (" \n", ErrorCode::BadRequest, None),
            ("{", ErrorCode::BadRequest, None),
            ("{\"userId\": }", ErrorCode::BadRequest, None),
            ("{\"userId\":\"u\"} x", ErrorCode::BadRequest, None),
            ("[1,2]", ErrorCode::ValidationFailed, Some("body")),
            ("\"u1\"", ErrorCode::ValidationFailed, Some("body")),
            ("{}", ErrorCode::ValidationFailed, Some("body")),
            (
                "{\"userId\": 7}",
                ErrorCode::ValidationFailed,
                Some("userId"),
            ),
            (
                "{\"userId\": \"\"}",
                ErrorCode::ValidationFailed,
                Some("userId"),
            ),
            (
                "{\"userId\": \"a b\"}",
                ErrorCode::ValidationFailed,
                Some("userId"),
            ),
            (
                "{\"userId\": \"u\", \"preferredRegion\": \"EU_1\"}",
                ErrorCode::ValidationFailed,
                Some("preferredRegion"),
            ),
            (
                "{\"userId\": \"u\", \"tickMs\": 0}",
                ErrorCode::ValidationFailed,
                Some("tickMs"),
            ),
            (
                "{\"userId\": \"u\", \"algorithm\": \"md5\"}",
                ErrorCode::ValidationFailed,
                Some("algorithm"),
            ),
            (
                "{\"userId\": \"u\", \"metadata\": [1]}",
                ErrorCode::ValidationFailed,
                Some("metadata"),
            ),
        ] {
            let e = start(body).unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), (code, field), "{body:?}: {e}");
        }
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            " application/json ;charset=UTF-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json_content_type(ok), "{ok:?}");
        }
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/+json",
            "text/json",
            "json",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!is_json_content_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn messages_name_the_rule_without_positions() {
        let e = start("{\"userId\": \"\"}").unwrap_err();
        assert_eq!(e.message, "userId: must be 1 to 64 characters, got 0");
        let e = start("{\"userId\": \"u\", \"algorithm\": \"md5\"}").unwrap_err();
        assert!(e.message.contains("\"mix32-v1\""), "{}", e.message);
    }
}
