//! The HTTP layer in-process, over an in-memory store (no Cassandra): the contract's error
//! mapping of both dialects (400/404/405/413/415/422, 503 storage failure and timeout), the
//! request plumbing (request ids, traceparent) and the service's counting. The same
//! behaviour on the real store is proven by the Cassandra tests (api.rs, compat.rs).

use crate::common;

use std::time::Duration;

use crate::common::{InProcess, Reply};
use api::ErrorBody;
use api::v1::V1ErrorBody;
use axum::body::{Body, Bytes};
use axum::http::Request;
use serde_json::{Value, json};

const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

async fn app() -> InProcess {
    InProcess::new(Duration::from_secs(10)).await
}

/// The reply is exactly an `api::ErrorBody` with this status, code and field.
fn assert_contract_error(reply: &Reply, status: u16, code: &str, field: Option<&str>, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    let body: ErrorBody = serde_json::from_value(reply.body.clone())
        .unwrap_or_else(|e| panic!("{what}: not an ErrorBody ({e}): {}", reply.text));
    assert_eq!(body.error.code.as_str(), code, "{what}: {}", reply.text);
    assert_eq!(body.error.field.as_deref(), field, "{what}: {}", reply.text);
    assert!(!body.error.message.is_empty(), "{what}");
    let keys: Vec<&String> = reply.body["error"].as_object().unwrap().keys().collect();
    assert!(keys.len() <= 3, "{what}: extra keys {keys:?}");
    assert_eq!(
        reply.headers.get("retry-after").is_some(),
        status == 503,
        "{what}: Retry-After on 503s only"
    );
}

/// The reply is exactly a `V1ErrorBody` with this status and short message.
fn assert_v1_error(reply: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
    let body: V1ErrorBody = serde_json::from_value(reply.body.clone())
        .unwrap_or_else(|e| panic!("{what}: not a V1ErrorBody ({e}): {}", reply.text));
    assert_eq!(body.error, error, "{what}: {}", reply.text);
    assert!(!body.message.is_empty(), "{what}");
    assert_eq!(
        reply.body.as_object().unwrap().len(),
        2,
        "{what}: {}",
        reply.text
    );
    assert_eq!(
        reply.headers.get("retry-after").is_some(),
        status == 503,
        "{what}: Retry-After on 503s only"
    );
}

#[tokio::test]
async fn game_api_bad_input_maps_onto_the_contract() {
    let app = app().await;
    let big = format!(r#"{{"userId": "u", "pad": "{}"}}"#, "x".repeat(17_000));
    // POST /game/start declared JSON: (body, status, code, field).
    for (body, status, code, field) in [
        ("{not json", 400, "bad_request", None),
        ("", 400, "bad_request", None),
        ("{}", 422, "validation_failed", Some("body")),
        // axum's Json would take this array as the struct's fields and start a game for u1.
        (r#"["u1"]"#, 422, "validation_failed", Some("body")),
        (
            r#"{"userId": 42}"#,
            422,
            "validation_failed",
            Some("userId"),
        ),
        (
            r#"{"userId": " u"}"#,
            422,
            "validation_failed",
            Some("userId"),
        ),
        (
            r#"{"userId": "u", "tickMs": 0}"#,
            422,
            "validation_failed",
            Some("tickMs"),
        ),
        (
            r#"{"userId": "u", "preferredRegion": "eu_1"}"#,
            422,
            "validation_failed",
            Some("preferredRegion"),
        ),
        (
            r#"{"userId": "u", "metadata": [1]}"#,
            422,
            "validation_failed",
            Some("metadata"),
        ),
        (&big, 413, "payload_too_large", None),
    ] {
        let reply = app
            .call(
                "POST",
                "/game/start",
                Some("application/json"),
                body.to_owned(),
            )
            .await;
        assert_contract_error(&reply, status, code, field, body);
    }
    // Not declared JSON: 415, checked before the size.
    for (content_type, body) in [
        (Some("text/plain"), r#"{"userId": "u"}"#),
        (None, r#"{"userId": "u"}"#),
        (Some("application/x-www-form-urlencoded"), "userId=u"),
        (Some("text/plain"), &big),
    ] {
        let reply = app
            .call("POST", "/game/start", content_type, body.to_owned())
            .await;
        assert_contract_error(&reply, 415, "unsupported_media_type", None, "content type");
    }
    let reply = app
        .post_json("/game/exit", &json!({"gameId": "x", "userId": "u"}))
        .await;
    assert_contract_error(&reply, 422, "validation_failed", Some("gameId"), "exit");
    // Paths, queries, routes and methods: (method, path, status, code, field).
    let game = format!("/game/{UNKNOWN}");
    for (method, path, status, code, field) in [
        (
            "GET",
            "/game/not-a-uuid",
            422,
            "validation_failed",
            Some("gameId"),
        ),
        ("GET", "/game/%FF", 422, "validation_failed", Some("gameId")),
        ("GET", &game, 404, "not_found", None),
        (
            "GET",
            &format!("{game}/state?at=9007199254740993"),
            422,
            "validation_failed",
            Some("at"),
        ),
        (
            "GET",
            &format!("{game}/state?at=soon"),
            422,
            "validation_failed",
            Some("at"),
        ),
        (
            "GET",
            &format!("{game}/replay?from=-1"),
            422,
            "validation_failed",
            Some("from"),
        ),
        (
            "GET",
            &format!("{game}/replay?from=10&to=5"),
            422,
            "validation_failed",
            Some("to"),
        ),
        (
            "GET",
            "/users/bad%20user/game",
            422,
            "validation_failed",
            Some("userId"),
        ),
        ("GET", "/users/nobody/game", 404, "not_found", None),
        ("GET", "/no/such/route", 404, "not_found", None),
        ("GET", "/game/start", 405, "method_not_allowed", None),
        ("DELETE", "/game/exit", 405, "method_not_allowed", None),
        ("PUT", &game, 405, "method_not_allowed", None),
        ("POST", "/metrics", 405, "method_not_allowed", None),
    ] {
        let reply = app.call(method, path, None, Body::empty()).await;
        assert_contract_error(&reply, status, code, field, &format!("{method} {path}"));
    }
    // 405s say what is allowed.
    let reply = app.get("/game/start").await;
    assert_eq!(reply.headers["allow"], "POST");
    let reply = app.call("DELETE", &game, None, "").await;
    assert_eq!(reply.headers["allow"], "GET,HEAD");
    // Nothing above started a game.
    let metrics = app.metrics().await;
    assert!(metrics.contains("seedsync_sessions_started_total{region=\"eu\"} 0"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_by_declared_or_actual_size() {
    let app = app().await;
    // A chunked upload declares no length: the bytes read decide.
    let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1_000])));
    let request = Request::post("/game/start")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let reply = app.send(request).await;
    assert_contract_error(&reply, 413, "payload_too_large", None, "chunked");
    // A declared length over the limit is refused before reading.
    let request = Request::post("/game/start")
        .header("content-type", "application/json")
        .header("content-length", "999999")
        .body(Body::from("{}"))
        .unwrap();
    let reply = app.send(request).await;
    assert_contract_error(&reply, 413, "payload_too_large", None, "declared");
    // Just under the limit is parsed.
    let pad = api::limits::MAX_BODY_BYTES - r#"{"userId":"u","p":""}"#.len();
    let body = format!(r#"{{"userId":"u","p":"{}"}}"#, "x".repeat(pad));
    let reply = app
        .call("POST", "/game/start", Some("application/json"), body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

#[tokio::test]
async fn bad_idempotency_keys_are_validation_errors() {
    let app = app().await;
    let request = Request::post("/game/start")
        .header("content-type", "application/json")
        .header("idempotency-key", "has space")
        .body(Body::from(r#"{"userId":"u"}"#))
        .unwrap();
    let reply = app.send(request).await;
    assert_contract_error(
        &reply,
        422,
        "validation_failed",
        Some("Idempotency-Key"),
        "key",
    );
}

#[tokio::test]
async fn starts_exits_and_their_counts() {
    let app = app().await;
    let reply = app
        .post_json("/game/start", &json!({"userId": "u1", "tickMs": 16}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let game: api::GameView = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!((game.tick_ms, game.region.as_str()), (16, "eu"));
    assert_eq!(
        game.start_at - game.created_at,
        3_000,
        "the region's start delay"
    );
    let again = app.post_json("/game/start", &json!({"userId": "u1"})).await;
    assert_eq!(
        (again.status, &again.body["gameId"]),
        (200, &reply.body["gameId"])
    );
    let (status, view) = {
        let r = app.get("/users/u1/game").await;
        (r.status, r.body)
    };
    assert_eq!(
        (status, &view),
        (200, &common::without_owner_token(&reply.body))
    );

    let exit = json!({"gameId": game.game_id, "userId": "u1"});
    let forbidden = app
        .post_json(
            "/game/exit",
            &json!({"gameId": game.game_id, "userId": "u2"}),
        )
        .await;
    assert_contract_error(&forbidden, 403, "forbidden", None, "another user's exit");
    let first = app.post_json("/game/exit", &exit).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let view: api::ExitView = serde_json::from_value(first.body.clone()).unwrap();
    assert!(view.ok);
    assert_eq!(view.status, api::GameStatus::Exited);
    let repeat = app.post_json("/game/exit", &exit).await;
    assert_eq!((repeat.status, &repeat.body), (200, &first.body));

    let metrics = app.metrics().await;
    for needle in [
        "seedsync_sessions_started_total{region=\"eu\"} 1",
        "seedsync_sessions_exited_total{region=\"eu\"} 1",
        r#"seedsync_http_requests_total{method="POST",route="/game/start",status="201",region="eu"} 1"#,
        r#"seedsync_http_requests_total{method="POST",route="/game/start",status="200",region="eu"} 1"#,
        r#"seedsync_http_requests_total{method="POST",route="/game/exit",status="403",region="eu"} 1"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

#[tokio::test]
async fn storage_failures_are_503_with_retry_after_in_both_dialects() {
    let app = app().await;
    let started = app.post_json("/game/start", &json!({"userId": "u1"})).await;
    let id = started.body["gameId"].as_str().unwrap().to_owned();
    app.store.set_failing(true);

    let reply = app.get(&format!("/game/{id}")).await;
    assert_contract_error(&reply, 503, "storage_unavailable", None, "read");
    assert_eq!(reply.headers["retry-after"], "1");
    assert!(
        !reply.text.contains("10.0.0.7"),
        "internals leaked: {}",
        reply.text
    );
    let reply = app.post_json("/game/start", &json!({"userId": "u2"})).await;
    assert_contract_error(&reply, 503, "storage_unavailable", None, "start");
    let reply = app.get("/ready").await;
    assert_contract_error(&reply, 503, "not_ready", None, "ready");

    let reply = app.get(&format!("/v1/sessions/sess_{id}")).await;
    assert_v1_error(&reply, 503, "storage unavailable", "v1 read");
    assert!(!reply.text.contains("10.0.0.7"));

    let metrics = app.metrics().await;
    for needle in [
        r#"seedsync_cassandra_errors_total{operation="read game",region="eu"} 2"#,
        r#"seedsync_cassandra_errors_total{operation="insert game",region="eu"} 1"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    app.store.set_failing(false);
    assert_eq!(app.get("/ready").await.status, 200);
}

#[tokio::test]
async fn slow_requests_time_out_with_a_503_of_their_dialect() {
    let app = InProcess::new(Duration::from_millis(100)).await;
    app.store.set_stalling(true);
    let reply = app.get(&format!("/game/{UNKNOWN}")).await;
    assert_contract_error(&reply, 503, "timeout", None, "game");
    let reply = app.get(&format!("/v1/sessions/sess_{UNKNOWN}")).await;
    assert_v1_error(&reply, 503, "timeout", "v1");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"seedsync_http_requests_total{method="GET",route="/game/{id}",status="503",region="eu"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn v1_errors_have_the_dialect_shape_on_every_path() {
    let app = app().await;
    // POST /v1/sessions, no content type: every bad body is a 400.
    for body in [
        "",
        "{oops",
        "{}",
        "[100]",
        r#"{"tick_ms": "fast"}"#,
        r#"{"tick_ms": 0}"#,
        r#"{"tick_ms": 100, "start_at": "soon"}"#,
        r#"{"tick_ms": 100, "start_at": "2001-01-01T00:00:00Z"}"#,
    ] {
        let reply = app.call("POST", "/v1/sessions", None, body).await;
        assert_v1_error(&reply, 400, "invalid request body", body);
    }
    let reply = app
        .call(
            "POST",
            "/v1/sessions",
            None,
            r#"{"tick_ms": 100, "start_at": "2001-01-01T00:00:00Z"}"#,
        )
        .await;
    assert!(
        reply.body["message"].as_str().unwrap().contains("60 s"),
        "{}",
        reply.text
    );
    let reply = app.call("POST", "/v1/sessions", None, "{}").await;
    assert!(
        reply.body["message"].as_str().unwrap().contains("tick_ms"),
        "{}",
        reply.text
    );
    let big = format!(r#"{{"tick_ms": 100, "pad": "{}"}}"#, "x".repeat(17_000));
    let reply = app.call("POST", "/v1/sessions", None, big).await;
    assert_v1_error(&reply, 413, "request body too large", "oversized");
    // Paths, queries, routes and methods: (method, path, status, short message).
    let session = format!("/v1/sessions/sess_{UNKNOWN}");
    for (method, path, status, error) in [
        (
            "GET",
            "/v1/sessions/sess_abc-123-def",
            404,
            "session not found",
        ),
        ("GET", &session, 404, "session not found"),
        (
            "GET",
            "/v1/sessions/sess_abc-123-def/state",
            404,
            "session not found",
        ),
        ("GET", &format!("{session}/state"), 404, "session not found"),
        (
            "GET",
            &format!("{session}/state?at=9007199254740993"),
            400,
            "invalid at",
        ),
        ("POST", "/v1/sessions/nope/stop", 404, "session not found"),
        // A stop needs the owner token first (V1_STOP_REQUIRES_TOKEN, default true).
        ("POST", &format!("{session}/stop"), 401, "unauthorized"),
        ("GET", "/v1/nothing/here", 404, "not found"),
        ("GET", "/v1/", 404, "not found"),
        ("GET", "/v1", 404, "not found"),
        ("GET", "/v1/sessions/", 404, "not found"),
        ("DELETE", "/v1/sessions", 405, "method not allowed"),
        ("GET", &format!("{session}/stop"), 405, "method not allowed"),
    ] {
        let reply = app.call(method, path, None, Body::empty()).await;
        assert_v1_error(&reply, status, error, &format!("{method} {path}"));
    }
    let reply = app.call("DELETE", "/v1/sessions", None, "").await;
    assert_eq!(reply.headers["allow"], "POST");
}

#[tokio::test]
async fn v1_sessions_in_process() {
    let app = app().await;
    // Any content type (or none) is accepted.
    let reply = app
        .call(
            "POST",
            "/v1/sessions",
            Some("text/plain"),
            r#"{"tick_ms": 50, "metadata": {"a": 1}}"#,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let session: api::v1::SessionView = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(session.algorithm.as_str(), "interval-v0");
    assert_eq!(session.tick_ms, 50);
    let id = session.id.to_string();
    let token = session
        .owner_token
        .clone()
        .expect("a create answers the owner token");
    let stop_as_owner = || {
        axum::http::Request::builder()
            .method("POST")
            .uri(format!("/v1/sessions/{id}/stop"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let anonymous = app
        .call("POST", &format!("/v1/sessions/{id}/stop"), None, "")
        .await;
    assert_v1_error(&anonymous, 401, "unauthorized", "stop without the token");
    let stop = app.send(stop_as_owner()).await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    assert_eq!(stop.body["ok"], true);
    let again = app.send(stop_as_owner()).await;
    assert_v1_error(&again, 400, "session already stopped", "second stop");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("seedsync_sessions_exited_total{region=\"eu\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn request_ids_and_trace_context() {
    let app = app().await;
    let with_id = |id: &str| {
        Request::get("/health")
            .header("x-request-id", id)
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(Body::empty())
            .unwrap()
    };
    let reply = app.send(with_id("req-123")).await;
    assert_eq!(reply.headers["x-request-id"], "req-123");
    let traceparent = reply.headers["traceparent"].to_str().unwrap();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"));
    assert_eq!(reply.body, json!({"status": "ok", "region": "eu"}));
    for invalid in ["has space", &"r".repeat(129)] {
        let reply = app.send(with_id(invalid)).await;
        let generated = reply.headers["x-request-id"].to_str().unwrap();
        assert!(
            uuid::Uuid::parse_str(generated).is_ok(),
            "{invalid:?} -> {generated}"
        );
    }
    // Errors carry them too.
    let reply = app.get("/nowhere").await;
    assert!(reply.headers.contains_key("x-request-id"));
    assert!(reply.headers.contains_key("traceparent"));
    let _: Value = reply.body;
}
