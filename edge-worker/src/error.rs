//! The edge's error type and its JSON body, `{"error": {"code", "message"}}`: the same shape the
//! origin uses, so the frontend handles one format whoever answered.

use serde_json::json;

/// An error answered to the client: HTTP status, a stable machine-readable code, a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(400, "bad_json", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(404, "not_found", format!("no route for {method} {path}"))
    }

    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path} (allowed: {allow})"),
        )
    }

    /// Every origin that could have answered failed or was skipped by its circuit breaker.
    pub fn origins_unavailable(detail: &str) -> Self {
        Self::new(
            503,
            "origins_unavailable",
            format!("no origin could serve the request ({detail})"),
        )
    }

    /// An origin answered something that is not the JSON the contract promises.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, "bad_gateway", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> String {
        json!({ "error": { "code": self.code, "message": self.message } }).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_contract_shape_and_escapes_the_message() {
        let e = ApiError::bad_json("expected `\"` at line 1");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], "bad_json");
        assert_eq!(v["error"]["message"], "expected `\"` at line 1");
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(e.status, 400);
    }

    #[test]
    fn statuses_match_their_meaning() {
        assert_eq!(ApiError::too_large(16384).status, 413);
        assert!(ApiError::too_large(16384).message.contains("16384"));
        assert_eq!(ApiError::route_not_found("GET", "/x").status, 404);
        assert_eq!(
            ApiError::method_not_allowed("GET", "/x", "POST").status,
            405
        );
        assert_eq!(ApiError::origins_unavailable("eu: timeout").status, 503);
        assert_eq!(ApiError::bad_gateway("x").status, 502);
    }
}
