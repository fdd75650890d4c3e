//! The session-service API of the design documents, over the same store.

mod common;

use common::spawn_app;
use serde_json::{Value, json};

#[tokio::test]
async fn v1_sessions_lifecycle() {
    let app = spawn_app("eu").await;
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    let (status, session) = app
        .post(
            "/v1/sessions",
            &json!({"tick_ms": 50, "metadata": {"game_type": "counter"}}),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sess_"));
    assert_eq!(session["status"], "running");
    assert_eq!(session["tick_ms"], 50);
    assert_eq!(session["metadata"], json!({"game_type": "counter"}));
    let seed: u64 = session["seed"].as_str().unwrap().parse().unwrap();
    assert!(seed <= u64::from(u32::MAX));
    let start_at = time::OffsetDateTime::parse(
        session["start_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(start_at > time::OffsetDateTime::now_utc());

    // The same record through both APIs.
    let (status, fetched) = app.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!((status, &fetched), (200, &session));
    let (status, game) = app.get(&format!("/game/{}", &id[5..])).await;
    assert_eq!(status, 200);
    assert_eq!(game["seed"].as_u64(), Some(seed));

    let (status, state) = app.get(&format!("/v1/sessions/{id}/state")).await;
    assert_eq!(status, 200);
    assert_eq!(state["phase"], "countdown");
    assert!(state["ms_until_start"].as_u64().unwrap() <= 3_000);
    assert!(state["computed_at"].as_str().is_some());

    let response = app
        .client
        .post(app.url(&format!("/v1/sessions/{id}/stop")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stopped: Value = response.json().await.unwrap();
    assert_eq!(
        (stopped["id"].as_str(), stopped["status"].as_str()),
        (Some(id.as_str()), Some("stopped"))
    );
    let (_, fetched) = app.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(fetched["status"], "stopped");
    let (_, state) = app.get(&format!("/v1/sessions/{id}/state")).await;
    assert_eq!(state["phase"], "ended");

    // No body at all means every default.
    let response = app
        .client
        .post(app.url("/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let (status, missing) = app
        .get("/v1/sessions/sess_00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    app.stop().await;
}
