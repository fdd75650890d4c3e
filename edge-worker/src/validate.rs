//! Validation of what clients send: body size, JSON shape of the start and exit bodies, game ids
//! and the `at` query parameter. Everything rejected here becomes a 400/413 JSON error before the
//! edge spends an origin round trip on it.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Largest request body the edge accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted `userId` / `gameId`.
pub const MAX_ID_CHARS: usize = 128;

/// Rejects a body whose declared `Content-Length` is over the limit, before reading it.
pub fn check_declared_length(content_length: Option<&str>) -> Result<(), ApiError> {
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > MAX_BODY_BYTES as u64 => Err(ApiError::too_large(MAX_BODY_BYTES)),
        Some(Err(_)) => Err(ApiError::invalid("Content-Length is not a number")),
        _ => Ok(()),
    }
}

/// Rejects a body that turned out to be over the limit (chunked uploads declare no length).
pub fn check_body_len(len: usize) -> Result<(), ApiError> {
    if len > MAX_BODY_BYTES {
        Err(ApiError::too_large(MAX_BODY_BYTES))
    } else {
        Ok(())
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_json(
            "request body is empty; expected a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_json(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

fn required_id(map: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{field} is required"))),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Err(ApiError::invalid(format!("{field} must not be empty")))
            } else if s.chars().count() > MAX_ID_CHARS {
                Err(ApiError::invalid(format!(
                    "{field} is longer than {MAX_ID_CHARS} characters"
                )))
            } else {
                Ok(s.to_string())
            }
        }
        Some(_) => Err(ApiError::invalid(format!("{field} must be a string"))),
    }
}

fn optional_string(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ApiError::invalid(format!("{field} must be a string"))),
    }
}

/// `POST /edge/game/start` body.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub user_id: String,
    pub preferred_region: Option<String>,
    /// The body forwarded to the origin: the client's fields minus the edge-only
    /// `preferredRegion` (the origin validates the game options itself).
    pub forward: Map<String, Value>,
}

impl StartRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut map = parse_object(body)?;
        let user_id = required_id(&map, "userId")?;
        let preferred_region = optional_string(&map, "preferredRegion")?;
        map.remove("preferredRegion");
        map.insert("userId".into(), Value::String(user_id.clone()));
        Ok(Self {
            user_id,
            preferred_region,
            forward: map,
        })
    }

    pub fn forward_body(&self) -> String {
        Value::Object(self.forward.clone()).to_string()
    }
}

/// `POST /edge/game/exit` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRequest {
    pub game_id: String,
    pub user_id: String,
    pub backend_region: Option<String>,
}

impl ExitRequest {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let map = parse_object(body)?;
        let game_id = required_id(&map, "gameId")?;
        validate_game_id(&game_id)?;
        Ok(Self {
            game_id,
            user_id: required_id(&map, "userId")?,
            backend_region: optional_string(&map, "backendRegion")?,
        })
    }

    /// The body forwarded to the origin's `/game/exit`.
    pub fn forward_body(&self) -> String {
        serde_json::json!({ "gameId": self.game_id, "userId": self.user_id }).to_string()
    }
}

/// Game ids end up in origin URLs and cache keys, so only URL-safe characters pass.
pub fn validate_game_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "game id must be 1-{MAX_ID_CHARS} characters of A-Z, a-z, 0-9, - or _"
        )))
    }
}

/// The `at` query parameter (ms since the epoch) of a raw query string (no leading `?`).
pub fn parse_at(query: &str) -> Result<Option<u64>, ApiError> {
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "at" {
            continue;
        }
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "at must be a non-negative integer (ms since the epoch)",
            ));
        }
        return value
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("at is out of range"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_length_limits() {
        assert!(check_declared_length(None).is_ok());
        assert!(check_declared_length(Some("16384")).is_ok());
        assert_eq!(
            check_declared_length(Some("16385")).unwrap_err().status,
            413
        );
        assert_eq!(check_declared_length(Some("x")).unwrap_err().status, 400);
        assert!(check_body_len(MAX_BODY_BYTES).is_ok());
        assert_eq!(check_body_len(MAX_BODY_BYTES + 1).unwrap_err().status, 413);
    }

    #[test]
    fn start_body() {
        let r = StartRequest::parse(
            br#"{"userId":" u1 ","preferredRegion":"asia","tickMs":100,"metadata":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(r.user_id, "u1");
        assert_eq!(r.preferred_region.as_deref(), Some("asia"));
        let fwd: Value = serde_json::from_str(&r.forward_body()).unwrap();
        assert_eq!(
            fwd,
            serde_json::json!({"userId":"u1","tickMs":100,"metadata":{"a":1}})
        );
        let r = StartRequest::parse(br#"{"userId":"u1","preferredRegion":null}"#).unwrap();
        assert_eq!(r.preferred_region, None);
    }

    #[test]
    fn start_body_errors() {
        let cases: &[(&[u8], u16, &str)] = &[
            (b"", 400, "bad_json"),
            (b"  \n", 400, "bad_json"),
            (b"{", 400, "bad_json"),
            (b"{\"userId\": }", 400, "bad_json"),
            (b"[1,2]", 400, "invalid_request"),
            (b"\"u1\"", 400, "invalid_request"),
            (b"{}", 400, "invalid_request"),
            (b"{\"userId\": 7}", 400, "invalid_request"),
            (b"{\"userId\": \"  \"}", 400, "invalid_request"),
            (
                b"{\"userId\": \"u\", \"preferredRegion\": 3}",
                400,
                "invalid_request",
            ),
        ];
        for (body, status, code) in cases {
            let e = StartRequest::parse(body).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (*status, *code),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!("{{\"userId\":\"{}\"}}", "x".repeat(MAX_ID_CHARS + 1));
        assert_eq!(
            StartRequest::parse(long.as_bytes()).unwrap_err().status,
            400
        );
    }

    #[test]
    fn exit_body() {
        let r =
            ExitRequest::parse(br#"{"gameId":"g-1","userId":"u1","backendRegion":"us"}"#).unwrap();
        assert_eq!(r.game_id, "g-1");
        assert_eq!(r.backend_region.as_deref(), Some("us"));
        let fwd: Value = serde_json::from_str(&r.forward_body()).unwrap();
        assert_eq!(fwd, serde_json::json!({"gameId":"g-1","userId":"u1"}));
        for bad in [
            &br#"{"userId":"u1"}"#[..],
            br#"{"gameId":"g-1"}"#,
            br#"{"gameId":"../x","userId":"u1"}"#,
            br#"{"gameId":"g","userId":"u1","backendRegion":[]}"#,
        ] {
            assert_eq!(ExitRequest::parse(bad).unwrap_err().status, 400);
        }
    }

    #[test]
    fn game_ids() {
        assert!(validate_game_id("0b9c5f2e-8a6d-4c1e-9f3a-2d7b6e5c4a10").is_ok());
        for bad in ["", "a/b", "a%2F", "a b", "é", &"a".repeat(MAX_ID_CHARS + 1)] {
            assert!(validate_game_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn at_parameter() {
        assert_eq!(parse_at(""), Ok(None));
        assert_eq!(parse_at("x=1"), Ok(None));
        assert_eq!(parse_at("at=1700000000000"), Ok(Some(1_700_000_000_000)));
        assert_eq!(parse_at("x=1&at=5&at=6"), Ok(Some(5)));
        for bad in [
            "at=",
            "at",
            "at=-1",
            "at=1.5",
            "at=abc",
            "at=99999999999999999999999",
        ] {
            assert_eq!(parse_at(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
