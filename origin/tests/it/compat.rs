//! The session-service dialect of the design documents (`/v1/sessions`), end to end against a
//! real Cassandra, over the same store as `/game/*`.

use crate::common;

use crate::common::{TestApp, now_ms, spawn_app, unique_user};
use api::v1::{SessionStateView, SessionView, StopView, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};
use shared_engine::{Algorithm, Params};

struct Reply {
    status: u16,
    retry_after: Option<String>,
    allow: Option<String>,
    body: Value,
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (retry_after, allow) = (header("retry-after"), header("allow"));
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        retry_after,
        allow,
        body,
    }
}

async fn create(app: &TestApp, body: &str, headers: &[(&str, &str)]) -> Reply {
    call(app, Method::POST, "/v1/sessions", headers, Some(body)).await
}

/// `{"error": error, "message": "..."}` and nothing else.
fn assert_v1_error(reply: &Reply, status: u16, error: &str, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    assert_eq!(reply.body["error"], error, "{what}: {}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.body.as_object().map(|o| o.len()), Some(2), "{what}");
}

fn interval_v0() -> Algorithm {
    Algorithm::parse("interval-v0").expect("shared-engine with the interval-v0 algorithm")
}

fn ms(text: &Value) -> i64 {
    Timestamp::parse(text.as_str().expect("an RFC 3339 string"))
        .expect("RFC 3339")
        .ms()
}

#[tokio::test]
async fn create_answers_a_session_view_and_get_returns_it() {
    let app = spawn_app("eu").await;
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    let before = now_ms();
    let reply = create(
        &app,
        r#"{"tick_ms": 50, "metadata": {"game_type": "counter"}}"#,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let session: SessionView = serde_json::from_value(reply.body.clone()).unwrap();
    let id = session.id.to_string();
    assert!(id.starts_with("sess_"), "{id}");
    assert_eq!(reply.body["status"], "running");
    assert_eq!(reply.body["tick_ms"], 50);
    assert_eq!(
        reply.body["algorithm"], "interval-v0",
        "the dialect's default"
    );
    assert_eq!(reply.body["region"], "eu");
    assert_eq!(reply.body["metadata"], json!({"game_type": "counter"}));
    assert!(
        reply.body["user_id"]
            .as_str()
            .unwrap()
            .starts_with("v1-anon-")
    );
    let seed: u64 = reply.body["seed"].as_str().unwrap().parse().unwrap();
    assert!(seed <= u64::from(u32::MAX));
    let (start_at, created_at) = (ms(&reply.body["start_at"]), ms(&reply.body["created_at"]));
    assert!(created_at >= before && created_at <= now_ms());
    assert_eq!(
        start_at - created_at,
        3_000,
        "absent start_at: now + the region's delay"
    );
    assert!(reply.body.get("stopped_at").is_none());

    // The same record through both APIs.
    let (status, fetched) = app.get(&format!("/v1/sessions/{id}")).await;
    assert!(reply.body["owner_token"].is_string());
    assert_eq!(
        (status, &fetched),
        (200, &common::without_owner_token(&reply.body))
    );
    let (status, game) = app.get(&format!("/game/{}", &id[5..])).await;
    assert_eq!(status, 200);
    assert_eq!(game["seed"].as_u64(), Some(seed));
    assert_eq!(game["startAt"].as_i64(), Some(start_at));

    // No metadata: absent, never null. A chosen algorithm and user are kept.
    let user = unique_user("v1");
    let reply = create(
        &app,
        &format!(
            r#"{{"tick_ms": 100, "algorithm": "mix32-v1", "break_every": 7, "user_id": "{user}"}}"#
        ),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(reply.body.get("metadata").is_none(), "{}", reply.body);
    assert_eq!(
        (
            &reply.body["algorithm"],
            &reply.body["break_every"],
            &reply.body["user_id"]
        ),
        (&json!("mix32-v1"), &json!(7), &json!(user))
    );
    app.stop().await;
}

#[tokio::test]
async fn every_bad_body_is_400_and_any_content_type_is_accepted() {
    let app = spawn_app("eu").await;
    let now = now_ms();
    let too_early = Timestamp::from_ms(now - 120_000).unwrap().to_string();
    let too_late = Timestamp::from_ms(now + 8 * 86_400_000)
        .unwrap()
        .to_string();
    for (body, mentions) in [
        ("", "empty"),
        ("{oops", "malformed"),
        ("[50]", "object"),
        ("{}", "tick_ms"),
        (r#"{"tick_ms": "fast"}"#, "tick_ms"),
        (r#"{"tick_ms": 0}"#, "tick_ms"),
        (r#"{"tick_ms": 60001}"#, "tick_ms"),
        (r#"{"tick_ms": 100, "break_every": 1}"#, "break_every"),
        (r#"{"tick_ms": 100, "algorithm": "md5"}"#, "algorithm"),
        (r#"{"tick_ms": 100, "user_id": "a b"}"#, "user_id"),
        (r#"{"tick_ms": 100, "metadata": [1]}"#, "metadata"),
        (r#"{"tick_ms": 100, "start_at": "tomorrow"}"#, "start_at"),
        (r#"{"tick_ms": 100, "start_at": 1700000000000}"#, "start_at"),
        (
            &format!(r#"{{"tick_ms": 100, "start_at": "{too_early}"}}"#),
            "60 s",
        ),
        (
            &format!(r#"{{"tick_ms": 100, "start_at": "{too_late}"}}"#),
            "7 days",
        ),
    ] {
        let reply = create(&app, body, &[("content-type", "application/json")]).await;
        assert_v1_error(&reply, 400, "invalid request body", body);
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let big = format!(r#"{{"tick_ms": 100, "pad": "{}"}}"#, "x".repeat(17_000));
    let reply = create(&app, &big, &[("content-type", "application/json")]).await;
    assert_v1_error(&reply, 413, "request body too large", "oversized");
    // The document's service does not check the content type.
    for headers in [&[("content-type", "text/plain")][..], &[]] {
        let reply = create(&app, r#"{"tick_ms": 100}"#, headers).await;
        assert_eq!(reply.status, 201, "{headers:?}: {}", reply.body);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_chosen_start_at_is_kept() {
    let app = spawn_app("eu").await;
    let soon = Timestamp::from_ms(now_ms() + 10_000).unwrap();
    let reply = create(
        &app,
        &format!(r#"{{"tick_ms": 100, "start_at": "{soon}"}}"#),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(ms(&reply.body["start_at"]), soon.ms());
    // Up to a minute in the past (clock skew): already running.
    let past = Timestamp::from_ms(now_ms() - 30_000).unwrap();
    let reply = create(
        &app,
        &format!(r#"{{"tick_ms": 100, "start_at": "{past}"}}"#),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap();
    let (_, state) = app.get(&format!("/v1/sessions/{id}/state")).await;
    assert_eq!(state["phase"], "running", "{state}");
    assert!(state["step"].as_u64().unwrap() >= 299, "{state}");
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_an_anonymous_session() {
    let eu = spawn_app("eu").await;
    let us = spawn_app("us").await;
    let key = format!("v1-{}", uuid::Uuid::new_v4());
    let headers = [("idempotency-key", key.as_str())];
    let first = create(&eu, r#"{"tick_ms": 100}"#, &headers).await;
    assert_eq!(first.status, 201, "{}", first.body);
    // Replays, from this region and another: the same session, 200 (never a 409).
    for app in [&eu, &us, &us] {
        let replay = create(app, r#"{"tick_ms": 100}"#, &headers).await;
        assert_eq!((replay.status, &replay.body), (200, &first.body));
    }
    // Another key is another anonymous user: another session.
    let other_key = format!("v1-{}", uuid::Uuid::new_v4());
    let other = create(
        &eu,
        r#"{"tick_ms": 100}"#,
        &[("idempotency-key", other_key.as_str())],
    )
    .await;
    assert_eq!(other.status, 201);
    assert_ne!(other.body["id"], first.body["id"]);
    assert_ne!(other.body["user_id"], first.body["user_id"]);
    // Without a key, every request is a fresh session.
    let a = create(&eu, r#"{"tick_ms": 100}"#, &[]).await;
    let b = create(&eu, r#"{"tick_ms": 100}"#, &[]).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["id"], b.body["id"]);

    // A key used by an explicit user: that user replays it, anyone else gets 409.
    let user = unique_user("v1-key");
    let key = format!("v1-{}", uuid::Uuid::new_v4());
    let headers = [("idempotency-key", key.as_str())];
    let body = format!(r#"{{"tick_ms": 100, "user_id": "{user}"}}"#);
    let owned = create(&eu, &body, &headers).await;
    assert_eq!(owned.status, 201);
    let replay = create(&us, &body, &headers).await;
    assert_eq!(
        (replay.status, &replay.body["id"]),
        (200, &owned.body["id"])
    );
    let anonymous = create(&eu, r#"{"tick_ms": 100}"#, &headers).await;
    assert_v1_error(
        &anonymous,
        409,
        "conflict",
        "anonymous reuse of a user's key",
    );
    let thief = format!(
        r#"{{"tick_ms": 100, "user_id": "{}"}}"#,
        unique_user("thief")
    );
    let stolen = create(&us, &thief, &headers).await;
    assert_v1_error(&stolen, 409, "conflict", "another user's key");
    let bad = create(
        &eu,
        r#"{"tick_ms": 100}"#,
        &[("idempotency-key", "has space")],
    )
    .await;
    assert_v1_error(&bad, 400, "invalid Idempotency-Key", "bad key");
    eu.stop().await;
    us.stop().await;
}

#[tokio::test]
async fn malformed_and_unknown_ids_are_404() {
    let app = spawn_app("eu").await;
    let unknown = format!("sess_{}", uuid::Uuid::new_v4());
    for id in ["sess_abc-123-def", "nope", "sess_", unknown.as_str()] {
        for (method, path) in [
            (Method::GET, format!("/v1/sessions/{id}")),
            (Method::GET, format!("/v1/sessions/{id}/state")),
            (
                Method::GET,
                format!("/v1/sessions/{id}/state?at=1700000000000"),
            ),
            (Method::POST, format!("/v1/sessions/{id}/stop")),
        ] {
            let reply = call(&app, method.clone(), &path, &[], None).await;
            // A stop needs the owner token before anything else (V1_STOP_REQUIRES_TOKEN):
            // a well-formed id without one is 401, only an id that cannot be one is 404.
            if method == Method::POST && id == unknown {
                assert_v1_error(&reply, 401, "unauthorized", &format!("{method} {path}"));
                continue;
            }
            assert_v1_error(
                &reply,
                404,
                "session not found",
                &format!("{method} {path}"),
            );
        }
    }
    // Unknown /v1 paths and wrong methods answer in the dialect too.
    let reply = call(&app, Method::GET, "/v1/elsewhere", &[], None).await;
    assert_v1_error(&reply, 404, "not found", "unknown path");
    let reply = call(&app, Method::PUT, "/v1/sessions", &[], None).await;
    assert_v1_error(&reply, 405, "method not allowed", "wrong method");
    assert_eq!(reply.allow.as_deref(), Some("POST"));
    assert_eq!(reply.retry_after, None);
    app.stop().await;
}

#[tokio::test]
async fn state_is_zeros_during_the_countdown_and_refuses_bad_instants() {
    let app = spawn_app("eu").await;
    let reply = create(&app, r#"{"tick_ms": 20}"#, &[]).await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let start_at = ms(&reply.body["start_at"]);

    let (status, state) = app.get(&format!("/v1/sessions/{id}/state")).await;
    assert_eq!(status, 200);
    let view: SessionStateView = serde_json::from_value(state.clone()).unwrap();
    assert_eq!(view.id.to_string(), id);
    assert_eq!(state["phase"], "countdown");
    assert_eq!(
        (
            &state["step"],
            &state["value"],
            &state["round"],
            &state["broken"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(false)),
        "zeros, not nulls: {state}"
    );
    assert!(state["ms_until_start"].as_u64().unwrap() <= 3_000);
    ms(&state["computed_at"]);

    let at = start_at - 1_234;
    let (_, state) = app.get(&format!("/v1/sessions/{id}/state?at={at}")).await;
    assert_eq!(state["ms_until_start"], 1_234);
    assert_eq!(ms(&state["computed_at"]), at);
    let (_, running) = app
        .get(&format!("/v1/sessions/{id}/state?at={}", start_at + 20 * 7))
        .await;
    assert_eq!(
        (&running["phase"], &running["step"]),
        (&json!("running"), &json!(7))
    );
    assert!(running.get("ms_until_start").is_none());

    for query in ["at=9007199254740993", "at=-1", "at=soon", "at=1.5", "at="] {
        let reply = call(
            &app,
            Method::GET,
            &format!("/v1/sessions/{id}/state?{query}"),
            &[],
            None,
        )
        .await;
        assert_v1_error(&reply, 400, "invalid at", query);
    }
    // Steps beyond what the server computes are bad instants too.
    let far = start_at + 20 * 200_000_000;
    let reply = call(
        &app,
        Method::GET,
        &format!("/v1/sessions/{id}/state?at={far}"),
        &[],
        None,
    )
    .await;
    assert_v1_error(&reply, 400, "invalid at", "beyond the computed steps");
    app.stop().await;
}

#[tokio::test]
async fn stop_answers_ok_and_a_second_stop_is_400() {
    let app = spawn_app("eu").await;
    let past = Timestamp::from_ms(now_ms() - 10_000).unwrap();
    let reply = create(
        &app,
        &format!(r#"{{"tick_ms": 10, "start_at": "{past}"}}"#),
        &[],
    )
    .await;
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {}", reply.body["owner_token"].as_str().unwrap());
    let auth = [("authorization", auth.as_str())];

    let stop = call(
        &app,
        Method::POST,
        &format!("/v1/sessions/{id}/stop"),
        &auth,
        None,
    )
    .await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    let view: StopView = serde_json::from_value(stop.body.clone()).unwrap();
    assert!(view.ok);
    assert_eq!(view.id.to_string(), id);
    assert_eq!(stop.body["status"], "stopped");
    let stopped_at = ms(&stop.body["stopped_at"]);

    let again = call(
        &app,
        Method::POST,
        &format!("/v1/sessions/{id}/stop"),
        &auth,
        None,
    )
    .await;
    assert_v1_error(&again, 400, "session already stopped", "second stop");

    let (_, fetched) = app.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(fetched["status"], "stopped");
    assert_eq!(ms(&fetched["stopped_at"]), stopped_at);
    let (_, state) = app
        .get(&format!(
            "/v1/sessions/{id}/state?at={}",
            stopped_at + 60_000
        ))
        .await;
    assert_eq!(state["phase"], "ended");
    assert!(
        state["step"].as_u64().unwrap() >= 999,
        "frozen where it stopped: {state}"
    );
    // Through the game API the same game is exited.
    let (_, game) = app.get(&format!("/game/{}", &id[5..])).await;
    assert_eq!(
        (game["status"].as_str(), game["exitedAt"].as_i64()),
        (Some("exited"), Some(stopped_at))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_computing_interval_v0_agrees_with_the_server() {
    let app = spawn_app("eu").await;
    // Started a minute ago with 10 ms ticks: ~6,000 steps, dozens of rounds, already behind us.
    let start = Timestamp::from_ms(now_ms() - 59_000).unwrap();
    let reply = create(
        &app,
        &format!(r#"{{"tick_ms": 10, "start_at": "{start}"}}"#),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let session: SessionView = serde_json::from_value(reply.body.clone()).unwrap();
    let id = session.id.to_string();
    // The client needs only (seed, start_at, tick_ms) and the algorithm.
    let params = Params::new(
        session.seed.parse().unwrap(),
        session.start_at.ms(),
        session.tick_ms,
        session.break_every,
        interval_v0(),
    )
    .unwrap();
    assert_eq!(session.algorithm, interval_v0());
    let mut broken_seen = false;
    for offset in [
        -500i64, 0, 9, 10, 995, 1_000, 1_010, 2_345, 17_777, 30_000, 58_990,
    ] {
        let at = session.start_at.ms() + offset;
        let (status, server) = app.get(&format!("/v1/sessions/{id}/state?at={at}")).await;
        assert_eq!(status, 200, "{server}");
        let server: SessionStateView = serde_json::from_value(server).unwrap();
        let client = SessionStateView::new(
            session.id,
            Timestamp::from_ms(at).unwrap(),
            shared_engine::state_at(&params, at).into(),
        );
        assert_eq!(server, client, "at start + {offset} ms");
        broken_seen |= server.round > 0;
    }
    assert!(
        broken_seen,
        "a minute of 10 ms ticks spans several interval-v0 rounds"
    );
    // And exactly on the step where the first round ends.
    let first_break = (0..)
        .find(|step| shared_engine::tick_at(&params, *step).broken)
        .unwrap();
    let at = session.start_at.ms() + first_break as i64 * 10;
    let (_, server) = app.get(&format!("/v1/sessions/{id}/state?at={at}")).await;
    assert_eq!(
        (
            &server["step"],
            &server["value"],
            &server["round"],
            &server["broken"]
        ),
        (&json!(first_break), &json!(0), &json!(1), &json!(true)),
        "{server}"
    );
    app.stop().await;
}
