//! Each request's log line and, with `OTEL_EXPORTER_OTLP_ENDPOINT` set, its span posted to the
//! collector as OTLP/HTTP JSON after the response (`ctx.wait_until`), so the client never waits
//! for the collector. What they hold is decided in [`crate::telemetry`].

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{Either, select};
use worker::wasm_bindgen::JsValue;
use worker::{AbortController, Context, Delay, Env, Fetch, Headers, Method, Request, RequestInit};

use super::context::Trace;
use crate::telemetry::{self, ENDPOINT_VAR, RequestRecord};

/// How long one export may take before it is abandoned (the span is lost, nothing else).
const EXPORT_TIMEOUT_MS: u64 = 2_000;

/// Logs `record` as one JSON line and, when export is on and the trace sampled, sends the span.
pub(super) fn finish(env: &Env, ctx: &Context, trace: &Trace, record: &RequestRecord) {
    worker::console_log!("{}", record.log_line(&trace.span));
    let raw = env.var(ENDPOINT_VAR).ok().map(|v| v.to_string());
    match telemetry::export_url(raw.as_deref()) {
        Ok(Some(url)) if trace.span.sampled() => {
            ctx.wait_until(export(url, trace.span.otlp_json(record)));
        }
        Ok(_) => {}
        Err(why) => worker::console_error!(
            "{}",
            serde_json::json!({"level": "error", "message": format!("{why}; spans are not exported")})
        ),
    }
}

/// Posts one export request; failures are logged, never retried.
async fn export(url: String, body: String) {
    let headers = Headers::new();
    if headers.set("content-type", "application/json").is_err() {
        return;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&body)));
    let Ok(request) = Request::new_with_init(&url, &init) else {
        return;
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let sent = pin!(async {
        let resp = Fetch::Request(request).send_with_signal(&signal).await?;
        Ok::<_, worker::Error>(resp.status_code())
    });
    let timer = pin!(Delay::from(Duration::from_millis(EXPORT_TIMEOUT_MS)));
    let failure = match select(sent, timer).await {
        Either::Left((Ok(status), _)) if (200..300).contains(&status) => None,
        Either::Left((Ok(status), _)) => Some(format!("the collector answered {status}")),
        Either::Left((Err(e), _)) => Some(e.to_string()),
        Either::Right(((), _)) => {
            controller.abort();
            Some(format!("no answer within {EXPORT_TIMEOUT_MS} ms"))
        }
    };
    if let Some(why) = failure {
        worker::console_warn!(
            "{}",
            serde_json::json!({"level": "warn", "message": format!("span export failed: {why}")})
        );
    }
}
