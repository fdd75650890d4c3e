//! The live region registry against the real Cassandra: heartbeats expire by TTL, a drain
//! survives heartbeats, and the admin routes refuse without the right bearer token.

use std::time::Duration;

use crate::common::{connect, settings, spawn_app_with};
use api::RegionName;
use api::regions::{RegionLoad, RegionStatus};
use origin::registry::cassandra::CassandraRegistry;
use origin::registry::{Heartbeat, RegionRegistry};

fn beat(name: &str, url: &str) -> Heartbeat {
    Heartbeat {
        name: RegionName::parse(name).unwrap(),
        url: url.into(),
        version: "test".into(),
        load: RegionLoad {
            in_flight: 1,
            p99_ms: 7,
            starts_per_sec: 0.5,
        },
        at_ms: 42,
    }
}

#[tokio::test]
async fn heartbeats_expire_and_drains_survive_them() {
    let s = settings("eu");
    let store = connect(&s).await;
    let registry = CassandraRegistry::connect(store, &s.cassandra.keyspace)
        .await
        .unwrap();
    let name = format!("reg-{}", uuid::Uuid::new_v4().simple());
    let name = &name[..20];
    let region = RegionName::parse(name).unwrap();
    registry
        .heartbeat(&beat(name, "http://127.0.0.1:1"), 2)
        .await
        .unwrap();
    let listed = registry.list().await.unwrap();
    let mine = listed.iter().find(|r| r.name == region).expect("listed");
    assert_eq!(
        (mine.url.as_str(), mine.load.p99_ms, mine.status),
        ("http://127.0.0.1:1", 7, RegionStatus::Active)
    );
    assert!((1..=2).contains(&mine.ttl_seconds), "{}", mine.ttl_seconds);

    registry
        .set_status(&region, RegionStatus::Draining)
        .await
        .unwrap();
    registry
        .heartbeat(&beat(name, "http://127.0.0.1:2"), 2)
        .await
        .unwrap();
    let listed = registry.list().await.unwrap();
    let mine = listed.iter().find(|r| r.name == region).expect("listed");
    assert_eq!(
        mine.status,
        RegionStatus::Draining,
        "a heartbeat keeps the drain"
    );
    assert_eq!(mine.url, "http://127.0.0.1:2");

    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let listed = registry.list().await.unwrap();
    assert!(
        listed.iter().all(|r| r.name != region),
        "expired after its TTL: {listed:?}"
    );
}

#[tokio::test]
async fn drain_needs_the_admin_token() {
    let mut s = settings("eu");
    s.registry.admin_token = Some("s3cret".into());
    let app = spawn_app_with(s).await;
    let post = |path: &'static str, auth: Option<&'static str>| {
        let mut request = app.client.post(app.url(path));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let www = response.headers().get("www-authenticate").cloned();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
                www,
            )
        }
    };
    let (status, code, www) = post("/regions/eu/drain", None).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    assert_eq!(www.unwrap(), "Bearer");
    let (status, code, _) = post("/regions/eu/drain", Some("Bearer nope")).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, code, _) = post("/regions/EU_1/drain", Some("Bearer s3cret")).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    // The in-process app's registry is empty: no live region of that name.
    let (status, code, _) = post("/regions/eu/undrain", Some("Bearer s3cret")).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));

    // The document's registration, then both lists show it.
    let (status, body) = app
        .post(
            "/api/regions/register",
            &serde_json::json!({"region": "sa", "base_url": "http://127.0.0.1:9/"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["regions"][0]["base_url"], "http://127.0.0.1:9");
    let (status, body) = app.get("/regions").await;
    assert_eq!(status, 200);
    assert_eq!(body["regions"][0]["name"], "sa");
    assert_eq!(body["servedBy"], "eu");
    let (status, code, _) = post("/regions/sa/drain", Some("Bearer s3cret")).await;
    assert_eq!((status, code.as_str()), (200, ""));
    let (_, body) = app.get("/api/regions").await;
    assert_eq!(body["regions"][0]["status"], "draining");
    app.stop().await;
}
