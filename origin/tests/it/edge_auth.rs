//! Requests from the edge through a real origin on a real Cassandra: only a request whose edge
//! signature verifies (fresh, nonce unseen) gets the client address it claims for the
//! per-client limits; a forged, replayed or stale one is the socket peer's; and in production
//! the public API refuses whatever the edge did not sign (`/v1` only if
//! `ORIGIN_DIRECT_ACCESS=v1` opens it).

use std::collections::HashMap;

use kernel::Secret;
use origin::config::Settings;
use serde_json::{Value, json};
use trust::Keys;
use trust::edge_auth::{self, SignedRequest};

use crate::common::{self, KEYSPACE, TestApp, now_ms, spawn_app_with, unique_user};

const SECRET: &str = "edge-origin-secret-of-the-integration-tests-0123";
const REGISTRY: &str = "registry-secret-of-the-integration-tests-0123456";

fn settings_with(extra: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = common::test_vars().into_iter().collect();
    vars.insert("HOST".into(), "127.0.0.1".into());
    vars.insert("PORT".into(), "0".into());
    vars.insert("REGION".into(), "eu".into());
    vars.insert("CASSANDRA_KEYSPACE".into(), KEYSPACE.clone());
    vars.insert(
        "CASSANDRA_HOSTS".into(),
        std::env::var("CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1:9042".into()),
    );
    vars.insert("CASSANDRA_TIMEOUT_SECONDS".into(), "10".into());
    vars.insert("EDGE_ORIGIN_SECRET".into(), SECRET.into());
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    common::test_wiring(Settings::from_map(&vars).expect("test settings are valid"))
}

/// The headers the edge sends with a request for `client` at `timestamp_ms`, signed with
/// `secret`.
fn signed_with(
    secret: &str,
    method: &str,
    path: &str,
    client: &str,
    timestamp_ms: i64,
) -> Vec<(&'static str, String)> {
    let keys = Keys::new("EDGE_ORIGIN_SECRET", Secret::new(secret), None).unwrap();
    let request = SignedRequest {
        method,
        path_and_query: path,
        client_address: client,
        user_id: None,
    };
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    vec![
        (
            edge_auth::HEADER,
            edge_auth::sign(&keys, &request, timestamp_ms, &nonce).unwrap(),
        ),
        (edge_auth::CLIENT_ADDRESS_HEADER, client.to_owned()),
        (edge_auth::USER_HEADER, edge_auth::user_header(None)),
    ]
}

fn signed(method: &str, path: &str, client: &str) -> Vec<(&'static str, String)> {
    signed_with(SECRET, method, path, client, now_ms())
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&'static str, String)],
) -> (u16, Value) {
    let mut request = match method {
        "POST" => app.client.post(app.url(path)),
        _ => app.client.get(app.url(path)),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(app: &TestApp, headers: &[(&'static str, String)]) -> u16 {
    let body = json!({"userId": unique_user("edge")});
    send(app, "POST", "/game/start", Some(&body), headers)
        .await
        .0
}

fn counted(metrics: &str, outcome: &str) -> u64 {
    let prefix = format!(r#"seedsync_edge_auth_total{{outcome="{outcome}",region="eu"}} "#);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn only_a_valid_edge_signature_chooses_the_client_address() {
    let app = spawn_app_with(settings_with(&[
        ("RATE_LIMIT_START", "2/60"),
        ("RATE_LIMIT_READ", "1000/60"),
    ]))
    .await;
    let edge = |client: &str| signed("POST", "/game/start", client);
    // Two clients behind the edge, each with its own budget.
    for client in ["10.20.0.1", "10.20.0.2"] {
        assert_eq!(start(&app, &edge(client)).await, 201, "{client}");
        assert_eq!(start(&app, &edge(client)).await, 201, "{client}");
        assert_eq!(start(&app, &edge(client)).await, 429, "{client}");
    }
    // Unsigned: the socket peer (127.0.0.1), with a budget of its own, now spent.
    assert_eq!(start(&app, &[]).await, 201);
    assert_eq!(start(&app, &[]).await, 201);
    assert_eq!(start(&app, &[]).await, 429);
    // A fresh address with a valid signature still starts ...
    assert_eq!(start(&app, &edge("10.20.0.3")).await, 201);

    // ... but a forged one is the peer's: the signature of one address under another claim,
    let mut forged = edge("10.20.0.4");
    forged[1].1 = "10.20.0.5".to_owned();
    assert_eq!(start(&app, &forged).await, 429, "forged claim");
    // a signature under another secret,
    let other = signed_with(
        "not-the-edge-secret-but-long-enough-0123456789",
        "POST",
        "/game/start",
        "10.20.0.6",
        now_ms(),
    );
    assert_eq!(start(&app, &other).await, 429, "wrong secret");
    // the same signed request twice (the first is believed, the replay is not),
    let once = edge("10.20.0.7");
    assert_eq!(start(&app, &once).await, 201);
    assert_eq!(start(&app, &once).await, 429, "replayed");
    // and a stale one.
    let stale = signed_with(
        SECRET,
        "POST",
        "/game/start",
        "10.20.0.8",
        now_ms() - 60_000,
    );
    assert_eq!(start(&app, &stale).await, 429, "stale");

    let metrics = app.metrics().await;
    assert_eq!(counted(&metrics, "ok"), 8, "{metrics}");
    assert_eq!(counted(&metrics, "missing"), 3, "{metrics}");
    assert_eq!(counted(&metrics, "bad_signature"), 2, "{metrics}");
    assert_eq!(counted(&metrics, "replayed"), 1, "{metrics}");
    assert_eq!(counted(&metrics, "stale"), 1, "{metrics}");
    assert!(!metrics.contains(SECRET));
    app.stop().await;
}

#[tokio::test]
async fn production_refuses_public_requests_the_edge_did_not_sign() {
    let production = [
        ("SEEDSYNC_ENV", "production"),
        ("REGISTRY_SECRET", REGISTRY),
    ];
    let app = spawn_app_with(settings_with(&production)).await;
    let body = json!({"userId": unique_user("prod")});
    let (status, refused) = send(&app, "POST", "/game/start", Some(&body), &[]).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("through the edge"),
        "{refused}"
    );
    let forged = signed_with(
        "not-the-edge-secret-but-long-enough-0123456789",
        "POST",
        "/game/start",
        "10.30.0.1",
        now_ms(),
    );
    let (status, _) = send(&app, "POST", "/game/start", Some(&body), &forged).await;
    assert_eq!(status, 403, "forged");
    let headers = signed("POST", "/game/start", "10.30.0.1");
    let (status, game) = send(&app, "POST", "/game/start", Some(&body), &headers).await;
    assert_eq!(status, 201, "{game}");
    // Replaying the edge's request is refused too.
    let (status, _) = send(&app, "POST", "/game/start", Some(&body), &headers).await;
    assert_eq!(status, 403, "replayed");
    let read = format!("/game/{}", game["gameId"].as_str().unwrap());
    assert_eq!(send(&app, "GET", &read, None, &[]).await.0, 403);
    let signed_read = signed("GET", &read, "10.30.0.1");
    assert_eq!(send(&app, "GET", &read, None, &signed_read).await.0, 200);
    let user_game = format!("/users/{}/game", body["userId"].as_str().unwrap());
    assert_eq!(send(&app, "GET", &user_game, None, &[]).await.0, 403);
    let (status, v1) = send(
        &app,
        "POST",
        "/v1/sessions",
        Some(&json!({"tick_ms": 100})),
        &[],
    )
    .await;
    assert_eq!(
        (status, v1["error"].as_str()),
        (403, Some("forbidden")),
        "{v1}"
    );
    // Operations and the registry have credentials of their own.
    for path in ["/health", "/ready", "/metrics", "/regions", "/api/regions"] {
        assert_eq!(
            app.client
                .get(app.url(path))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200,
            "{path}"
        );
    }
    app.stop().await;

    // ORIGIN_DIRECT_ACCESS=v1: the session-service document's clients may call directly.
    let mut open = production.to_vec();
    open.push(("ORIGIN_DIRECT_ACCESS", "v1"));
    let app = spawn_app_with(settings_with(&open)).await;
    let (status, session) = send(
        &app,
        "POST",
        "/v1/sessions",
        Some(&json!({"tick_ms": 100})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let body = json!({"userId": unique_user("prod")});
    assert_eq!(
        send(&app, "POST", "/game/start", Some(&body), &[]).await.0,
        403
    );
    app.stop().await;
}

#[test]
fn production_requires_the_secret() {
    let mut vars: HashMap<String, String> = common::test_vars().into_iter().collect();
    vars.insert("SEEDSYNC_ENV".into(), "production".into());
    vars.insert("REGISTRY_SECRET".into(), REGISTRY.into());
    let err = Settings::from_map(&vars).unwrap_err();
    assert_eq!(err.variable, "EDGE_ORIGIN_SECRET", "{err}");
}

/// The reveal schedule of a sealed game (`x-seedsync-*` on `GET /game/{id}/rounds`) is told
/// only to a request the edge signed that asks for it (`x-seedsync-schedule: 1`): never to a
/// public client, asking or not, nor to a forged signature; and a told answer is `no-store`.
#[tokio::test]
async fn only_the_edge_is_told_when_a_sealed_game_breaks_next() {
    let app = spawn_app_with(settings_with(&[])).await;
    let body = json!({"userId": unique_user("sched"), "algorithm": "sealed-v1", "tickMs": 100, "breakEvery": 20});
    let (status, game) = send(&app, "POST", "/game/start", Some(&body), &[]).await;
    assert_eq!(status, 201, "{game}");
    let path = format!("/game/{}/rounds?from=1", game["gameId"].as_str().unwrap());
    let ask = |headers: Vec<(&'static str, String)>| {
        let request = app.client.get(app.url(&path));
        async move {
            let mut request = request;
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let h = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            (
                status,
                h("x-seedsync-public-rounds"),
                h("x-seedsync-next-reveal-at"),
                h("x-seedsync-next-round"),
                h("cache-control"),
            )
        }
    };
    let asking = || ("x-seedsync-schedule", "1".to_owned());
    let mut edge = signed("GET", &path, "");
    edge.push(asking());
    let (status, public, next_at, round, cache) = ask(edge).await;
    // In the countdown: nothing public, round 1 comes out at its reveal.
    assert_eq!(status, 425);
    assert_eq!(public.as_deref(), Some("0"));
    assert_eq!(round.as_deref(), Some("1"));
    let next_at: i64 = next_at.unwrap().parse().unwrap();
    let start = game["startAt"].as_i64().unwrap();
    // At least the shortest round (10 steps) after the start, one ms into its break step.
    assert!(next_at > start + 9 * 100, "{next_at} vs start {start}");
    assert_eq!((next_at - start - 1) % 100, 0, "{next_at}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    // Not asked for: not told, even to the edge.
    let told = ask(signed("GET", &path, "")).await;
    assert_eq!((told.1, told.2, told.3), (None, None, None));
    // A public client, asking: not told.
    let told = ask(vec![asking()]).await;
    assert_eq!(told.0, 425);
    assert_eq!((told.1, told.2, told.3), (None, None, None));
    // A forged signature, asking: not told.
    let mut forged = signed_with(
        "not-the-edge-secret-but-long-enough-0123456789",
        "GET",
        &path,
        "",
        now_ms(),
    );
    forged.push(asking());
    let told = ask(forged).await;
    assert_eq!((told.1, told.2, told.3), (None, None, None));
    app.stop().await;
}
