//! Structured JSON logs, request ids, W3C trace context and span export.
//!
//! The request plumbing around every route (see [`crate::startup::app`]): an invalid client
//! `x-request-id` is dropped ([`drop_invalid_request_id`]) so tower-http's request-id layers
//! generate one; [`propagate_trace_context`] continues or starts the caller's trace and echoes
//! `traceparent`; tower-http's `TraceLayer` opens [`request_span`] and logs
//! [`log_response`]'s line.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set ([`crate::otlp`]), [`init`] also installs a
//! `tracing-opentelemetry` layer for this crate's spans only: the request span (a server span,
//! child of the caller's `traceparent`), the service step, each Cassandra statement
//! ([`crate::store`]) and the relay's publications. Its ids then become the ones logged and
//! echoed, so a log line, the response's `traceparent` and the collector's span agree.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::Next;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::otlp::TraceSettings;

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What [`init`] installed: the span exporter, flushed by [`Telemetry::shutdown`].
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued and stops the exporter. Blocks (up to the export
    /// timeout): call it off the async workers.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "the last spans could not be exported");
        }
    }
}

/// Installs the JSON log subscriber (level from `RUST_LOG`, default `info`) and, given
/// `export` (the settings and this origin's region), the span exporter. A exporter that cannot
/// be built is logged and left out: tracing is never a reason not to serve.
pub fn init(export: Option<(&TraceSettings, &str)>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_filter(filter);
    let provider = export.and_then(|(settings, region)| match settings.provider(region) {
        Ok(provider) => Some(provider),
        Err(error) => {
            eprintln!("origin: spans will not be exported: {error}");
            None
        }
    });
    // Only this crate's spans (not the driver's or hyper's), whatever RUST_LOG says.
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("origin"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target("origin", tracing::Level::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    Telemetry { provider }
}

/// The OpenTelemetry context of the current span, for a link from later work (the relay's
/// publication of an event the request committed); `None` when spans are not exported.
pub fn current_span_context() -> Option<SpanContext> {
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.clone())
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
    /// The caller's span id, when the trace was continued.
    pub parent_span_id: Option<String>,
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
                    parent_span_id: Some(parent.to_owned()),
                };
            }
        }
        TraceContext {
            trace_id: random_hex(32),
            span_id: random_hex(16),
            flags: "01".to_owned(),
            parent_span_id: None,
        }
    }

    /// The caller's span as an OpenTelemetry remote parent, when the trace was continued.
    pub fn remote_parent(&self) -> Option<opentelemetry::Context> {
        let parent = self.parent_span_id.as_deref()?;
        let span_context = SpanContext::new(
            TraceId::from_hex(&self.trace_id).ok()?,
            SpanId::from_hex(parent).ok()?,
            TraceFlags::new(u8::from_str_radix(&self.flags, 16).ok()?),
            true,
            TraceState::default(),
        );
        Some(opentelemetry::Context::new().with_remote_span_context(span_context))
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

/// The `traceparent` of the exported request span, filled by [`request_span`] when spans are
/// exported (their ids are the collector's, not [`TraceContext`]'s).
#[derive(Debug, Clone, Default)]
struct ExportedHop(Arc<OnceLock<String>>);

/// Middleware: continues the caller's W3C trace (or starts one), makes the [`TraceContext`]
/// available to the request span, and answers `traceparent` naming this hop.
pub async fn propagate_trace_context(mut request: Request, next: Next) -> axum::response::Response {
    let trace = TraceContext::from_header(
        request
            .headers()
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok()),
    );
    let fallback = trace.header();
    let hop = ExportedHop::default();
    request.extensions_mut().insert(trace);
    request.extensions_mut().insert(hop.clone());
    let mut response = next.run(request).await;
    let header = hop.0.get().cloned().unwrap_or(fallback);
    if let Ok(value) = HeaderValue::from_str(&header) {
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
    let trace = request.extensions().get::<TraceContext>();
    let (trace_id, span_id) = trace
        .map(|t| (t.trace_id.as_str(), t.span_id.as_str()))
        .unwrap_or_default();
    // The template, not the path, so log lines group by endpoint (the path is there too).
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", axum::extract::MatchedPath::as_str);
    // Never the query string or headers: they may carry tokens.
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        method = %request.method(),
        route = %route,
        path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = trace.and_then(TraceContext::remote_parent) {
        let _ = span.set_parent(parent);
    }
    // Exported: the collector's ids become this hop's, in the logs and the response.
    let context = span.context();
    let exported = context.span().span_context().clone();
    if exported.is_valid() {
        let (trace_id, span_id) = (exported.trace_id(), exported.span_id());
        span.record("trace_id", tracing::field::display(trace_id));
        span.record("span_id", tracing::field::display(span_id));
        if let Some(hop) = request.extensions().get::<ExportedHop>() {
            let flags = if exported.is_sampled() { "01" } else { "00" };
            let _ = hop.0.set(format!("00-{trace_id}-{span_id}-{flags}"));
        }
    } else {
        // Recorded once, after the exporter had its say (a second record would repeat them).
        span.record("trace_id", trace_id);
        span.record("span_id", span_id);
    }
    span
}

/// The one structured log line per request, in its span.
pub fn log_response(response: &Response<Body>, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
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
