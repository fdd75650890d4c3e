//! What the edge checks on a POST before parsing its body, in the origin's order: the body
//! must be declared JSON (415), then fit [`MAX_BODY_BYTES`] (413, by the declared
//! `Content-Length` before reading, and by the bytes actually read, since chunked uploads
//! declare none). The bytes are counted as they stream in ([`BodyLimit`]): the read stops at
//! the first chunk past the limit, so an oversized chunked body is refused without being read
//! to its end. The body itself is then parsed by [`api::json::parse_body`].

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

/// Collects a streamed body up to [`MAX_BODY_BYTES`]: [`BodyLimit::push`] each chunk as it
/// arrives and stop reading at its first error (413); never holds more than the limit plus
/// one chunk.
#[derive(Debug, Default)]
pub struct BodyLimit {
    body: Vec<u8>,
}

impl BodyLimit {
    /// An empty body.
    pub fn new() -> BodyLimit {
        BodyLimit::default()
    }

    /// Adds a chunk; 413 `payload_too_large` once the body would pass the limit (the caller
    /// stops reading there).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        check_body_len(self.body.len().saturating_add(chunk.len()))?;
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    /// The whole body, within the limit.
    pub fn finish(self) -> Vec<u8> {
        self.body
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

    #[test]
    fn a_streamed_body_stops_at_the_first_chunk_past_the_limit() {
        let mut b = BodyLimit::new();
        let chunk = vec![b'x'; 4096];
        for _ in 0..4 {
            b.push(&chunk).unwrap();
        }
        // Exactly the limit is fine; one byte more is refused, whatever the chunking.
        assert_eq!(b.finish().len(), MAX_BODY_BYTES);
        let mut b = BodyLimit::new();
        for _ in 0..4 {
            b.push(&chunk).unwrap();
        }
        let e = b.push(b"x").unwrap_err();
        assert_eq!((e.status(), e.code), (413, ErrorCode::PayloadTooLarge));
        // A single huge chunk is refused without being copied.
        let mut b = BodyLimit::new();
        assert!(b.push(&vec![0; MAX_BODY_BYTES + 1]).is_err());
        assert!(b.finish().is_empty());
        // Empty chunks and an empty body are fine.
        let mut b = BodyLimit::new();
        b.push(b"").unwrap();
        assert!(b.finish().is_empty());
    }
}
