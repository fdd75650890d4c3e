//! When Cassandra fails under a running origin, clients get a JSON 503 with Retry-After (never a
//! 500), and the failure is counted by operation.

use crate::common;

use crate::common::{settings, spawn_app_with, unique_user};

#[tokio::test]
async fn a_failing_store_answers_503_and_counts_the_operation() {
    // A keyspace of its own: this test destroys it.
    let mut settings = settings("eu");
    settings.cassandra.keyspace = format!("{}_doomed", common::KEYSPACE.as_str());
    let app = spawn_app_with(settings.clone()).await;
    let user = unique_user("doomed");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201);

    app.store
        .session()
        .query_unpaged(format!("DROP KEYSPACE {}", settings.cassandra.keyspace), ())
        .await
        .expect("drop the keyspace under the running origin");

    let response = app
        .client
        .get(app.url(&format!("/game/{}", game["gameId"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unconfigured"),
        "internals leaked: {body}"
    );

    let (status, body) = app.start(&unique_user("doomed")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("storage_unavailable"))
    );

    // The /v1 dialect: its own body, the same status and Retry-After.
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/sessions/sess_{}",
            game["gameId"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "storage unavailable", "{body}");
    assert!(
        !body["message"].as_str().unwrap().contains("unconfigured"),
        "{body}"
    );

    let metrics = app.metrics().await;
    for needle in [
        r#"seedsync_cassandra_errors_total{operation="read game",region="eu"} 2"#,
        r#"seedsync_cassandra_errors_total{operation="insert game",region="eu"} 1"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    app.stop().await;
}
