//! The edge's hop of a distributed trace and its one log line per request, as pure values
//! (the `wasm` glue supplies the clock, the randomness and the I/O).
//!
//! Every request gets its own span ([`EdgeSpan`]): a child of the client's `traceparent` when
//! that is valid, else the root of a new trace. The origin is sent a `traceparent` naming this
//! span, so the origin's request span is the edge span's child. The span is reported as
//! OTLP/HTTP JSON ([`EdgeSpan::otlp_json`]) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (local
//! development; production uses the Workers runtime's own trace export, see
//! docs/operations.md). The log line ([`RequestRecord::log_line`]) names the request, the
//! trace, the route template, the region that answered, the status and the duration: never
//! the query string, a header or a body, where tokens live.

use serde_json::{Value, json};

use crate::ids;

/// The `service.name` of the edge's spans.
pub const SERVICE_NAME: &str = "seedsync-edge";

/// The variable that turns span export on.
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Where spans are posted for the raw `OTEL_EXPORTER_OTLP_ENDPOINT` value: `None` when unset
/// or blank; an error naming the variable (never echoing the value, which may hold
/// credentials) when it is not an `http(s)://` URL without user info, query or fragment.
pub fn export_url(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(raw) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"));
    let host = rest.and_then(|r| r.split('/').next()).unwrap_or_default();
    if host.is_empty() || host.contains('@') || raw.contains(['?', '#', ' ']) || raw.len() > 2048 {
        return Err(format!(
            "{ENDPOINT_VAR} is not an http:// or https:// URL without user info, query or fragment"
        ));
    }
    Ok(Some(format!("{}/v1/traces", raw.trim_end_matches('/'))))
}

/// This request's span: its ids and its parent in the client's trace, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits, this span's.
    pub span_id: String,
    /// The client's span, when the client sent a valid `traceparent`.
    pub parent_span_id: Option<String>,
    /// The trace flags (2 hex digits): the client's, else `01` (sampled).
    pub flags: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl EdgeSpan {
    /// The span of a request whose `traceparent` header is `client` (a valid one is
    /// continued, anything else ignored), with fresh random ids (an all-zero id is invalid in
    /// W3C trace context, so one is replaced by a fixed non-zero one).
    pub fn start(client: Option<&str>, trace_id: [u8; 16], span_id: [u8; 8]) -> EdgeSpan {
        let fresh = ids::new_traceparent(trace_id, span_id);
        let mut fresh_parts = fresh.split('-').skip(1);
        let new_trace = fresh_parts.next().unwrap_or_default().to_owned();
        let new_span = fresh_parts.next().unwrap_or_default().to_owned();
        match client.filter(|v| ids::is_valid_traceparent(v)) {
            Some(parent) => {
                let parts: Vec<&str> = parent.split('-').collect();
                EdgeSpan {
                    trace_id: parts[1].to_owned(),
                    span_id: new_span,
                    parent_span_id: Some(parts[2].to_owned()),
                    flags: parts[3].to_owned(),
                }
            }
            None => EdgeSpan {
                trace_id: new_trace,
                span_id: new_span,
                parent_span_id: None,
                flags: "01".to_owned(),
            },
        }
    }

    /// The `traceparent` naming this span: sent to the origin (whose span becomes its child)
    /// and echoed to the client.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// Whether the trace is sampled (the flags' low bit): unsampled spans are not exported.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|f| f & 1 == 1)
    }

    /// One OTLP/HTTP JSON export request holding this span (a server span), with the
    /// request's `record`.
    pub fn otlp_json(&self, record: &RequestRecord) -> String {
        let string = |key: &str, value: &str| json!({"key": key, "value": {"stringValue": value}});
        let mut attributes = vec![
            string("http.request.method", &record.method),
            string("http.route", &record.route),
            json!({"key": "http.response.status_code", "value": {"intValue": record.status.to_string()}}),
            string("seedsync.request_id", &record.request_id),
        ];
        if let Some(region) = &record.region {
            attributes.push(string("seedsync.region", region));
        }
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": format!("{} {}", record.method, record.route),
            // SPAN_KIND_SERVER.
            "kind": 2,
            "startTimeUnixNano": (u128::from(record.start_ms) * 1_000_000).to_string(),
            "endTimeUnixNano": (u128::from(record.start_ms + record.duration_ms) * 1_000_000).to_string(),
            "attributes": attributes,
            // STATUS_CODE_ERROR for 5xx (a client's 4xx is not the server's error), else UNSET.
            "status": {"code": if record.status >= 500 { 2 } else { 0 }},
        });
        if let (Some(parent), Value::Object(map)) = (&self.parent_span_id, &mut span) {
            map.insert("parentSpanId".into(), Value::String(parent.clone()));
        }
        json!({
            "resourceSpans": [{
                "resource": {"attributes": [string("service.name", SERVICE_NAME)]},
                "scopeSpans": [{"scope": {"name": "edge-worker"}, "spans": [span]}],
            }]
        })
        .to_string()
    }
}

/// What the edge records about one request once it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `x-request-id`.
    pub request_id: String,
    /// The HTTP method.
    pub method: String,
    /// The route template ([`route_template`]), never the raw path or query.
    pub route: String,
    /// The region that answered (`x-edge-region`), when one did.
    pub region: Option<String>,
    /// The status answered.
    pub status: u16,
    /// When the request arrived, Unix ms.
    pub start_ms: u64,
    /// How long it took, ms (the Workers clock advances only across I/O).
    pub duration_ms: u64,
}

impl RequestRecord {
    /// The one JSON log line of the request, in `span`'s trace.
    pub fn log_line(&self, span: &EdgeSpan) -> String {
        json!({
            "level": if self.status >= 500 { "error" } else { "info" },
            "message": "request finished",
            "request_id": self.request_id,
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            "method": self.method,
            "route": self.route,
            "region": self.region,
            "status": self.status,
            "duration_ms": self.duration_ms,
        })
        .to_string()
    }
}

/// The route template of `method` `path` for logs and spans: ids replaced by `{id}`, and
/// anything that is no route one fixed label, so a client cannot fill the logs with made-up
/// paths.
pub fn route_template(method: &str, path: &str) -> &'static str {
    use crate::routes::{Route, route};
    match route(method, path) {
        Ok(Route::Start) => "/edge/game/start",
        Ok(Route::Exit) => "/edge/game/exit",
        Ok(Route::GuestAuth) => "/edge/auth/guest",
        Ok(Route::Game(_)) => "/edge/game/{id}",
        Ok(Route::GameState(_)) => "/edge/game/{id}/state",
        Ok(Route::Join(_)) => "/edge/game/{id}/join",
        Ok(Route::Results(_)) => "/edge/game/{id}/results",
        Ok(Route::Rounds(_)) => "/edge/game/{id}/rounds",
        Ok(Route::Leaderboard) => "/edge/leaderboard",
        Ok(Route::Tournament(_)) => "/edge/tournament/{id}",
        Ok(Route::Standings(_)) => "/edge/tournament/{id}/standings",
        Ok(Route::TournamentJoin(..)) => "/edge/tournament/{id}/rounds/{round}/join",
        Ok(Route::Time) => "/edge/time",
        Ok(Route::Regions) => "/edge/regions",
        Ok(Route::Health) => "/edge/health",
        Ok(Route::Preflight) => "preflight",
        Ok(Route::Room(_)) => "/edge/game/{id}/live",
        Ok(Route::RoomStats(_)) => "/edge/game/{id}/live/stats",
        Ok(Route::ExitedNotice(_)) => "/edge/internal/game/{id}/exited",
        Ok(Route::JoinedNotice(_)) => "/edge/internal/game/{id}/joined",
        Err(_) => "unmatched",
    }
}

/// A method label from a closed set (any token is a valid method).
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "OPTIONS" => "OPTIONS",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => "OTHER",
    }
}

/// `x-edge-region` as logged: a region name's characters only, else nothing.
pub fn region_label(raw: Option<String>) -> Option<String> {
    raw.filter(|r| {
        !r.is_empty()
            && r.len() <= 32
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// `hex` of 8 bytes, for tests and callers that hold raw ids.
pub fn span_id_hex(bytes: [u8; 8]) -> String {
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn record(status: u16) -> RequestRecord {
        RequestRecord {
            request_id: "req-1".into(),
            method: "POST".into(),
            route: "/edge/game/start".into(),
            region: Some("eu".into()),
            status,
            start_ms: 1_700_000_000_000,
            duration_ms: 12,
        }
    }

    #[test]
    fn continues_a_valid_client_trace_as_its_child() {
        let span = EdgeSpan::start(Some(CLIENT), [0xaa; 16], [0xbb; 8]);
        assert_eq!(span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.span_id, span_id_hex([0xbb; 8]));
        assert_eq!(span.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        // The origin is told this span, not the client's.
        assert_eq!(
            span.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-bbbbbbbbbbbbbbbb-01"
        );
        assert!(span.sampled());
    }

    #[test]
    fn starts_a_new_trace_for_a_missing_or_invalid_header() {
        for client in [
            None,
            Some(""),
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            let span = EdgeSpan::start(client, [0xaa; 16], [0xbb; 8]);
            assert_eq!(span.trace_id, "a".repeat(32), "{client:?}");
            assert_eq!(span.parent_span_id, None);
            assert!(ids::is_valid_traceparent(&span.traceparent()));
        }
    }

    #[test]
    fn the_client_decides_sampling() {
        let span = EdgeSpan::start(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            [1; 16],
            [2; 8],
        );
        assert!(!span.sampled());
    }

    #[test]
    fn otlp_json_is_one_server_span_with_its_parent() {
        let span = EdgeSpan::start(Some(CLIENT), [0xaa; 16], [0xbb; 8]);
        let body: Value = serde_json::from_str(&span.otlp_json(&record(503))).unwrap();
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["name"], "POST /edge/game/start");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["endTimeUnixNano"], "1700000000012000000");
        assert_eq!(
            body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            SERVICE_NAME
        );
        let root = EdgeSpan::start(None, [0xaa; 16], [0xbb; 8]);
        let body: Value = serde_json::from_str(&root.otlp_json(&record(200))).unwrap();
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert!(s.get("parentSpanId").is_none());
        assert_eq!(s["status"]["code"], 0);
    }

    #[test]
    fn the_log_line_has_the_fields_and_nothing_else() {
        let span = EdgeSpan::start(Some(CLIENT), [0xaa; 16], [0xbb; 8]);
        let line: Value = serde_json::from_str(&record(200).log_line(&span)).unwrap();
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "duration_ms",
                "level",
                "message",
                "method",
                "region",
                "request_id",
                "route",
                "span_id",
                "status",
                "trace_id"
            ]
        );
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["status"], 200);
        assert_eq!(line["duration_ms"], 12);
    }

    #[test]
    fn routes_are_templates() {
        assert_eq!(
            route_template("GET", "/edge/game/abc/state"),
            "/edge/game/{id}/state"
        );
        assert_eq!(
            route_template("POST", "/edge/game/start"),
            "/edge/game/start"
        );
        assert_eq!(
            route_template("GET", "/edge/secret-token-in-path"),
            "unmatched"
        );
        assert_eq!(method_label("BREW"), "OTHER");
        assert_eq!(region_label(Some("eu".into())).as_deref(), Some("eu"));
        assert_eq!(region_label(Some("<script>".into())), None);
    }

    #[test]
    fn the_endpoint_is_validated_without_echoing_it() {
        assert_eq!(export_url(None), Ok(None));
        assert_eq!(export_url(Some("  ")), Ok(None));
        assert_eq!(
            export_url(Some("http://127.0.0.1:4318/"))
                .unwrap()
                .as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        for bad in [
            "127.0.0.1:4318",
            "http://u:s3cret@h",
            "https://h/?k=s3cret",
            "ftp://h",
        ] {
            let error = export_url(Some(bad)).unwrap_err();
            assert!(
                error.contains(ENDPOINT_VAR) && !error.contains("s3cret"),
                "{error}"
            );
        }
    }
}
