//! The origin's HTTP contract, end to end against a real Cassandra.

use crate::common;

use std::collections::HashSet;

use crate::common::{now_ms, spawn_app, unique_user};
use serde_json::{Value, json};
use shared_engine::{Algorithm, Params, tick_at};

#[tokio::test]
async fn start_creates_a_game_with_engine_parameters() {
    let app = spawn_app("eu").await;
    let user = unique_user("start");
    let before = now_ms();
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    assert_eq!(game["userId"], user.as_str());
    assert_eq!(game["region"], "eu");
    assert_eq!(game["status"], "active");
    assert_eq!(game["tickMs"], 100);
    assert_eq!(game["breakEvery"], 50);
    assert_eq!(game["algorithm"], "mix32-v1");
    let id = game["gameId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert!(game["seed"].as_u64().unwrap() <= u64::from(u32::MAX));
    let start_at = game["startAt"].as_i64().unwrap();
    assert!(
        start_at >= before + 3_000 && start_at <= now_ms() + 3_000,
        "startAt {start_at}"
    );
    let created = game["createdAt"].as_i64().unwrap();
    assert!(created >= before && created <= now_ms());
    // Optional parameters and metadata round-trip through Cassandra.
    let (status, custom) = app
        .post(
            "/game/start",
            &json!({"userId": unique_user("custom"), "algorithm": "lcg32", "tickMs": 16, "breakEvery": 7, "metadata": {"mode": "duel", "level": 3}}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, stored) = app
        .get(&format!("/game/{}", custom["gameId"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    // The read is the start's answer without the owner token, which only the start carries.
    assert!(custom["ownerToken"].is_string());
    assert_eq!(stored, common::without_owner_token(&custom));
    assert_eq!(stored["algorithm"], "lcg32");
    assert_eq!(stored["metadata"], json!({"mode": "duel", "level": 3}));
    app.stop().await;
}

#[tokio::test]
async fn one_active_game_per_user_even_under_concurrent_starts() {
    let app = spawn_app("eu").await;
    let user = unique_user("race");
    let requests = (0..24).map(|_| app.start(&user));
    let results = futures::future::join_all(requests).await;
    let ids: HashSet<&str> = results
        .iter()
        .map(|(_, g)| g["gameId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "concurrent starts produced {ids:?}");
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let found = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, found), (1, 23));
    let id = *ids.iter().next().unwrap();
    let (status, active) = app.get(&format!("/users/{user}/game")).await;
    assert_eq!(status, 200);
    assert_eq!(active["gameId"], id);
    // Again later: the same game, 200.
    let (status, again) = app.start(&user).await;
    assert_eq!((status, again["gameId"].as_str().unwrap()), (200, id));
    app.stop().await;
}

#[tokio::test]
async fn idempotency_key_returns_the_same_game_from_any_region() {
    let eu = spawn_app("eu").await;
    let us = spawn_app("us").await;
    let user = unique_user("idem");
    let key = format!("key-{}", uuid::Uuid::new_v4());
    let send = |app: &common::TestApp| {
        app.client
            .post(app.url("/game/start"))
            .header("Idempotency-Key", key.clone())
            .json(&json!({"userId": user}))
            .send()
    };
    let first = send(&eu).await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    // Retries (e.g. the first response was lost), from the same and another region, racing.
    let retries = futures::future::join_all([send(&eu), send(&us), send(&us)]).await;
    for retry in retries {
        let retry = retry.unwrap();
        assert_eq!(retry.status().as_u16(), 200);
        let body: Value = retry.json().await.unwrap();
        assert_eq!(body["gameId"], first["gameId"]);
        assert_eq!(body["seed"], first["seed"]);
        assert_eq!(body["region"], "eu");
    }
    // Even after the game has exited, the key still names it.
    let (status, _) = eu
        .post(
            "/game/exit",
            &json!({"gameId": first["gameId"], "userId": user}),
        )
        .await;
    assert_eq!(status, 200);
    let retry: Value = send(&us).await.unwrap().json().await.unwrap();
    assert_eq!(retry["gameId"], first["gameId"]);
    assert_eq!(retry["status"], "exited");
    // Another user may not reuse the key.
    let other = us
        .client
        .post(us.url("/game/start"))
        .header("Idempotency-Key", key.clone())
        .json(&json!({"userId": unique_user("thief")}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 409);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
    eu.stop().await;
    us.stop().await;
}

#[tokio::test]
async fn concurrent_starts_with_distinct_keys_still_make_one_game() {
    let app = spawn_app("asia").await;
    let user = unique_user("keys");
    let requests = (0..8).map(|i| {
        app.client
            .post(app.url("/game/start"))
            .header("Idempotency-Key", format!("k{i}-{user}"))
            .json(&json!({"userId": user}))
            .send()
    });
    let mut ids = HashSet::new();
    for response in futures::future::join_all(requests).await {
        let body: Value = response.unwrap().json().await.unwrap();
        ids.insert(body["gameId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    // Every key now names that one game.
    let retry: Value = app
        .client
        .post(app.url("/game/start"))
        .header("Idempotency-Key", format!("k3-{user}"))
        .json(&json!({"userId": user}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ids.contains(retry["gameId"].as_str().unwrap()));
    app.stop().await;
}

#[tokio::test]
async fn exit_rules() {
    let app = spawn_app("eu").await;
    let user = unique_user("exit");
    let (_, game) = app.start(&user).await;
    let id = game["gameId"].as_str().unwrap();
    // Another user's game: 403; unknown game: 404; malformed id: 422.
    let (status, body) = app
        .post(
            "/game/exit",
            &json!({"gameId": id, "userId": "someone-else"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, body) = app
        .post("/game/exit", &json!({"gameId": unknown, "userId": user}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = app
        .post(
            "/game/exit",
            &json!({"gameId": "not-a-uuid", "userId": user}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("gameId"))
    );
    // Concurrent exits agree on the first exit time.
    let exit_body = json!({"gameId": id, "userId": user});
    let exits = futures::future::join_all((0..6).map(|_| app.post("/game/exit", &exit_body))).await;
    let times: HashSet<i64> = exits
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            assert_eq!(body["ok"], true);
            assert_eq!(body["status"], "exited");
            assert_eq!(body["gameId"], id);
            body["exitedAt"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(times.len(), 1, "{times:?}");
    let exited_at = *times.iter().next().unwrap();
    let (_, again) = app
        .post("/game/exit", &json!({"gameId": id, "userId": user}))
        .await;
    assert_eq!(again["exitedAt"], exited_at);
    let (_, stored) = app.get(&format!("/game/{id}")).await;
    assert_eq!(
        (stored["status"].as_str(), stored["exitedAt"].as_i64()),
        (Some("exited"), Some(exited_at))
    );
    // No active game any more; a new start makes a new one.
    let (status, _) = app.get(&format!("/users/{user}/game")).await;
    assert_eq!(status, 404);
    let (status, fresh) = app.start(&user).await;
    assert_eq!(status, 201);
    assert_ne!(fresh["gameId"], id);
    app.stop().await;
}

#[tokio::test]
async fn state_and_replay_match_the_engine() {
    let app = spawn_app("eu").await;
    let user = unique_user("state");
    let (_, game) = app
        .post(
            "/game/start",
            &json!({"userId": user, "tickMs": 10, "breakEvery": 5}),
        )
        .await;
    let id = game["gameId"].as_str().unwrap();
    let start_at = game["startAt"].as_i64().unwrap();
    let params = Params::new(
        game["seed"].as_u64().unwrap() as u32,
        start_at,
        10,
        5,
        Algorithm::Mix32V1,
    )
    .unwrap();

    let (status, countdown) = app
        .get(&format!("/game/{id}/state?at={}", start_at - 1_234))
        .await;
    assert_eq!(status, 200);
    assert_eq!(countdown["phase"], "countdown");
    assert_eq!(countdown["msUntilStart"], 1_234);

    for step in [0u64, 1, 57, 4_321] {
        let at = start_at + step as i64 * 10 + 9;
        let (status, state) = app.get(&format!("/game/{id}/state?at={at}")).await;
        assert_eq!(status, 200);
        let tick = tick_at(&params, step);
        assert_eq!(state["phase"], "running");
        assert_eq!(state["step"], step);
        assert_eq!(state["value"], tick.value);
        assert_eq!(state["round"], tick.round);
        assert_eq!(state["broken"], tick.broken);
        assert_eq!(state["at"], at);
    }

    let (status, replay) = app.get(&format!("/game/{id}/replay?from=100&to=199")).await;
    assert_eq!(status, 200);
    let ticks = replay["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 100);
    for (i, t) in ticks.iter().enumerate() {
        let tick = tick_at(&params, 100 + i as u64);
        assert_eq!(
            (t["step"].as_u64(), t["value"].as_u64(), t["round"].as_u64()),
            (Some(tick.step), Some(tick.value), Some(tick.round))
        );
        assert_eq!(t["broken"], tick.broken);
    }
    assert!(
        ticks.iter().any(|t| t["broken"] == true),
        "1-in-5 odds over 100 steps must break"
    );

    // After the exit the state freezes and the replay stops at the frozen step.
    let (_, exit) = app
        .post("/game/exit", &json!({"gameId": id, "userId": user}))
        .await;
    let exited_at = exit["exitedAt"].as_i64().unwrap();
    let (_, ended) = app
        .get(&format!("/game/{id}/state?at={}", exited_at + 60_000))
        .await;
    assert_eq!(ended["phase"], "ended");
    if exited_at > start_at {
        let frozen = ((exited_at - 1 - start_at) / 10) as u64;
        assert_eq!(ended["step"], frozen);
        let (_, tail) = app
            .get(&format!(
                "/game/{id}/replay?from={frozen}&to={}",
                frozen + 50
            ))
            .await;
        assert_eq!(tail["ticks"].as_array().unwrap().len(), 1);
    }

    // Bad parameters name the field.
    for (query, field) in [("at=soon", "at"), ("at=1.5", "at")] {
        let (status, body) = app.get(&format!("/game/{id}/state?{query}")).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{query}"
        );
    }
    for (query, field) in [
        ("from=10&to=5", "to"),
        ("from=0&to=10000", "to"),
        ("from=-1", "from"),
        ("from=0&to=999999999999", "to"),
    ] {
        let (status, body) = app.get(&format!("/game/{id}/replay?{query}")).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{query}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn games_are_visible_from_every_region_and_survive_a_restart() {
    let eu = spawn_app("eu").await;
    let user = unique_user("durable");
    let (_, game) = eu.start(&user).await;
    let id = game["gameId"].as_str().unwrap().to_owned();
    eu.stop().await;
    // A new origin process (fresh connection) and another region both read it back.
    let eu_again = spawn_app("eu").await;
    let asia = spawn_app("asia").await;
    for app in [&eu_again, &asia] {
        let (status, stored) = app.get(&format!("/game/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(stored, common::without_owner_token(&game));
        let (status, active) = app.get(&format!("/users/{user}/game")).await;
        assert_eq!(
            (status, active["gameId"].as_str()),
            (200, Some(id.as_str()))
        );
    }
    // The other region exits it; the first sees the exit.
    let (status, _) = asia
        .post("/game/exit", &json!({"gameId": id, "userId": user}))
        .await;
    assert_eq!(status, 200);
    let (_, stored) = eu_again.get(&format!("/game/{id}")).await;
    assert_eq!(stored["status"], "exited");
    eu_again.stop().await;
    asia.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_json_errors_never_a_500() {
    let app = spawn_app("eu").await;
    let raw = |method: reqwest::Method, path: &str, content_type: Option<&str>, body: Vec<u8>| {
        let mut request = app.client.request(method, app.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    // (method, path, content type, body, expected status, expected error code)
    type Case = (
        reqwest::Method,
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            b"{not json".to_vec(),
            400,
            "bad_request",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            b"".to_vec(),
            400,
            "bad_request",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            b"{}".to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": 42}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": ""}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "a b"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "u", "tickMs": 0}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "u", "tickMs": -5}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "u", "algorithm": "xorshift"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "u", "breakEvery": 99999999999}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"[1,2,3]"#.to_vec(),
            422,
            "validation_failed",
        ),
        // Not a game for "u1": bodies are objects, whatever serde would take.
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"["u1"]"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            br#"{"userId": "u", "preferredRegion": "eu_west"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("text/plain"),
            br#"{"userId": "u"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            None,
            br#"{"userId": "u"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            reqwest::Method::POST,
            "/game/start",
            Some("application/json"),
            format!(r#"{{"userId": "u", "pad": "{}"}}"#, "x".repeat(17_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            reqwest::Method::POST,
            "/game/exit",
            Some("application/json"),
            br#"{"gameId": "x"}"#.to_vec(),
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::GET,
            "/game/not-a-uuid",
            None,
            vec![],
            422,
            "validation_failed",
        ),
        (
            reqwest::Method::GET,
            "/game/00000000-0000-4000-8000-000000000000",
            None,
            vec![],
            404,
            "not_found",
        ),
        (
            reqwest::Method::GET,
            "/no/such/route",
            None,
            vec![],
            404,
            "not_found",
        ),
        (
            reqwest::Method::GET,
            "/game/start",
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::DELETE,
            "/game/exit",
            None,
            vec![],
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::GET,
            "/users/bad%20user/game",
            None,
            vec![],
            422,
            "validation_failed",
        ),
        // The /v1 dialect answers its own error shape: see compat.rs.
    ];
    for (method, path, content_type, body, expected, code) in cases {
        let response = raw(method.clone(), path, content_type, body).await.unwrap();
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{method} {path}: {json}");
        assert_eq!(json["error"]["code"], code, "{method} {path}: {json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    // The validation message names the field.
    let (_, body) = app
        .post("/game/start", &json!({"userId": "u", "tickMs": 0}))
        .await;
    assert_eq!(body["error"]["field"], "tickMs");
    let (_, body) = app.post("/game/start", &json!({})).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("userId"),
        "{body}"
    );
    // A bad Idempotency-Key header is a validation error too.
    let response = app
        .client
        .post(app.url("/game/start"))
        .header("Idempotency-Key", "has space")
        .json(&json!({"userId": "u"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    app.stop().await;
}

#[tokio::test]
async fn request_ids_traces_health_and_metrics() {
    let app = spawn_app("us").await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "req-123")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
    let traceparent = response.headers()["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{traceparent}"
    );
    assert!(!traceparent.contains("00f067aa0ba902b7"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok", "region": "us"}));
    // Generated when absent.
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok());

    let (status, ready) = app.get("/ready").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

    let user = unique_user("metrics");
    let (_, game) = app.start(&user).await;
    app.get(&format!("/game/{}", game["gameId"].as_str().unwrap()))
        .await;
    app.post(
        "/game/exit",
        &json!({"gameId": game["gameId"], "userId": user}),
    )
    .await;
    let metrics = app.metrics().await;
    for needle in [
        r#"seedsync_http_requests_total{method="POST",route="/game/start",status="201",region="us"} 1"#,
        r#"seedsync_http_requests_total{method="GET",route="/game/{id}",status="200",region="us"} 1"#,
        r#"seedsync_http_requests_total{method="POST",route="/game/exit",status="200",region="us"} 1"#,
        r#"seedsync_http_request_duration_seconds_bucket{method="POST",route="/game/start",region="us",le="+Inf"} 1"#,
        "seedsync_sessions_started_total{region=\"us\"} 1",
        "seedsync_sessions_exited_total{region=\"us\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let app = spawn_app("eu").await;
    let url = app.url("/game/start");
    // Ten clients send starts back to back, each on its own connection, so whenever the
    // shutdown comes some requests are in flight, whatever the machine's speed.
    let clients: Vec<_> = (0..10)
        .map(|i| {
            let client = reqwest::Client::new();
            let url = url.clone();
            tokio::spawn(async move {
                let mut answered = 0;
                for n in 0..1_000 {
                    let user = format!("drain-{i}-{n}-{}", uuid::Uuid::new_v4().simple());
                    match client
                        .post(&url)
                        .json(&json!({ "userId": user }))
                        .send()
                        .await
                    {
                        // A request either completed normally or was never accepted; none is
                        // cut off midway with a 5xx.
                        Ok(response) => {
                            assert!(response.status().is_success(), "{}", response.status());
                            answered += 1;
                        }
                        Err(_) => break,
                    }
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.stop().await;
    let mut answered = 0;
    for client in clients {
        answered += client.await.unwrap();
    }
    assert!(answered > 0, "no request was answered");
}
