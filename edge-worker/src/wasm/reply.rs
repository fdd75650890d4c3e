//! What a handler answers ([`Reply`]) and how it becomes a `worker::Response`: JSON with
//! `cache-control: no-store`, the correlation ids, and CORS headers set by `worker::Cors`
//! (every answer exposes the edge's headers; preflights also list methods and headers).

use api::{ApiError, ErrorBody};
use serde::Serialize;
use worker::{Cors, Headers, Method, Response};

use super::context::Trace;

/// Request headers a browser may send cross-origin.
const CORS_ALLOW_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "traceparent",
    "x-user-region",
];

/// Response headers a browser may read cross-origin.
const CORS_EXPOSE_HEADERS: [&str; 8] = [
    "retry-after",
    "x-edge-cache",
    "x-edge-engine",
    "x-edge-region",
    "x-request-id",
    "traceparent",
    "idempotency-key",
    "age",
];

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE_S: u32 = 86_400;

/// The CORS headers of every answer: any origin, the edge's headers readable.
fn cors() -> Cors {
    Cors::new()
        .with_origins(["*"])
        .with_exposed_headers(CORS_EXPOSE_HEADERS)
}

/// The CORS headers of a preflight answer.
fn preflight_cors() -> Cors {
    cors()
        .with_methods([Method::Get, Method::Head, Method::Post, Method::Options])
        .with_allowed_headers(CORS_ALLOW_HEADERS)
        .with_max_age(PREFLIGHT_MAX_AGE_S)
}

/// What the handler answers, before it becomes a `worker::Response`.
#[derive(Debug)]
pub(super) struct Reply {
    /// HTTP status.
    status: u16,
    /// JSON body (empty for 204).
    body: Vec<u8>,
    /// Headers on top of the common ones.
    headers: Vec<(&'static str, String)>,
    /// Whether this answers a CORS preflight.
    preflight: bool,
}

impl Reply {
    /// A JSON body as it is (already serialized, e.g. from the cache).
    pub(super) fn raw(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
            preflight: false,
        }
    }

    /// A value serialized as JSON.
    pub(super) fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::raw(status, body),
            // The contract's views serialize infallibly; stay well-formed regardless.
            Err(e) => Self::error(&ApiError::internal(format!(
                "the edge could not serialize its answer: {e}"
            ))),
        }
    }

    /// A contract error body with its status, and `Retry-After: 1` when retrying later helps
    /// (503, 429).
    pub(super) fn error_body(status: u16, body: &ErrorBody) -> Self {
        let reply = Self::json(status, body);
        if body.error.code.is_retryable() {
            reply.with("retry-after", "1")
        } else {
            reply
        }
    }

    /// An error of this edge.
    pub(super) fn error(e: &ApiError) -> Self {
        Self::error_body(e.status(), &e.body())
    }

    /// The answer to a CORS preflight.
    pub(super) fn preflight() -> Self {
        Self {
            preflight: true,
            ..Self::raw(204, Vec::new())
        }
    }

    /// The status.
    pub(super) fn status(&self) -> u16 {
        self.status
    }

    /// The body (JSON).
    pub(super) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Adds a header.
    pub(super) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The response, with the common headers and CORS.
    pub(super) fn into_response(self, trace: &Trace) -> worker::Result<Response> {
        let h = Headers::new();
        if self.status != 204 {
            h.set("content-type", "application/json; charset=utf-8")?;
        }
        h.set("cache-control", "no-store")?;
        h.set("x-request-id", &trace.request_id)?;
        h.set("traceparent", &trace.traceparent)?;
        for (name, value) in &self.headers {
            h.set(name, value)?;
        }
        let cors = if self.preflight {
            preflight_cors()
        } else {
            cors()
        };
        let builder = Response::builder()
            .with_status(self.status)
            .with_headers(h)
            .with_cors(&cors)?;
        Ok(if self.status == 204 {
            builder.empty()
        } else {
            builder.fixed(self.body)
        })
    }
}
