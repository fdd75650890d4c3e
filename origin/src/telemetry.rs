//! Structured JSON logs, request ids and W3C trace context.
//!
//! The request plumbing around every route (see [`crate::startup::app`]): an invalid client
//! `x-request-id` is dropped ([`drop_invalid_request_id`]) so tower-http's request-id layers
//! generate one; [`propagate_trace_context`] continues or starts the caller's trace and echoes
//! `traceparent`; tower-http's `TraceLayer` opens [`request_span`] and logs
//! [`log_response`]'s line.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::Next;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Installs the JSON log subscriber (level from `RUST_LOG`, default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}

/// A W3C `traceparent`: the caller's trace id (or a new one), and this hop's span id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits, new for this hop.
    pub span_id: String,
    /// Trace flags, 2 hex digits.
    pub flags: String,
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(len: usize) -> String {
    let mut bytes = [0u8; 16];
    // Trace ids need uniqueness, not secrecy; fall back to a UUID's randomness if the OS fails.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = *uuid::Uuid::new_v4().as_bytes();
    }
    bytes
        .iter()
        .take(len / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TraceContext {
    /// Continues the caller's trace if `header` is a valid version-00 traceparent, else
    /// starts a new sampled trace.
    pub fn from_header(header: Option<&str>) -> TraceContext {
        if let Some(header) = header {
            let parts: Vec<&str> = header.trim().split('-').collect();
            if let [version, trace_id, parent, flags] = parts[..]
                && version == "00"
                && is_hex(trace_id, 32)
                && trace_id != "0".repeat(32)
                && is_hex(parent, 16)
                && is_hex(flags, 2)
            {
                return TraceContext {
                    trace_id: trace_id.to_owned(),
                    span_id: random_hex(16),
                    flags: flags.to_owned(),
                };
            }
        }
        TraceContext {
            trace_id: random_hex(32),
            span_id: random_hex(16),
            flags: "01".to_owned(),
        }
    }

    /// The `traceparent` header naming this hop as the parent.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// Removes a client `x-request-id` that is not 1 to 128 visible ASCII characters (the rule of
/// [`api::IdempotencyKey`]), so that one is generated instead of logging and echoing junk.
pub fn drop_invalid_request_id(mut request: Request) -> Request {
    let valid = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| api::IdempotencyKey::parse(v).is_ok());
    if !valid {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// Middleware: continues the caller's W3C trace (or starts one), makes the [`TraceContext`]
/// available to the request span, and answers `traceparent` naming this hop.
pub async fn propagate_trace_context(mut request: Request, next: Next) -> axum::response::Response {
    let trace = TraceContext::from_header(
        request
            .headers()
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
    );
    let header = HeaderValue::from_str(&trace.header());
    request.extensions_mut().insert(trace);
    let mut response = next.run(request).await;
    if let Ok(value) = header {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

/// The span every log line of a request is recorded in: its request id and trace context.
pub fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (trace_id, span_id) = request
        .extensions()
        .get::<TraceContext>()
        .map(|t| (t.trace_id.as_str(), t.span_id.as_str()))
        .unwrap_or_default();
    // The template, not the path, so log lines group by endpoint (the path is there too).
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    tracing::info_span!(
        "request",
        request_id = %request_id,
        trace_id = %trace_id,
        span_id = %span_id,
        method = %request.method(),
        route = %route,
        path = %request.uri().path(),
    )
}

/// The one structured log line per request, in its span.
pub fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::from_header(Some(incoming));
        assert_eq!(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(trace.span_id, "00f067aa0ba902b7");
        assert!(
            trace
                .header()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
    }

    #[test]
    fn invalid_request_ids_are_dropped() {
        let with = |id: &str| {
            let request = Request::builder()
                .header(REQUEST_ID, id)
                .body(Body::empty())
                .unwrap();
            drop_invalid_request_id(request)
                .headers()
                .get(&REQUEST_ID)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(with("req-123").as_deref(), Some("req-123"));
        assert_eq!(with(&"r".repeat(128)).map(|v| v.len()), Some(128));
        for bad in ["", "has space", &"r".repeat(129)] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn starts_a_new_trace_for_invalid_headers() {
        for bad in [
            "",
            "garbage",
            "00-XYZ-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ] {
            let trace = TraceContext::from_header(Some(bad));
            assert!(
                is_hex(&trace.trace_id, 32) && is_hex(&trace.span_id, 16),
                "{bad}"
            );
            assert_ne!(trace.trace_id, "0".repeat(32));
        }
    }
}
