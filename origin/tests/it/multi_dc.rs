//! Three regions on a three-datacenter Cassandra (eu, us, asia; one node each,
//! NetworkTopologyStrategy eu:1,us:1,asia:1), each origin preferring its own datacenter with
//! LOCAL_QUORUM reads and writes: the one-active-game and idempotency guarantees must hold
//! across regions (they rest on SERIAL LWTs), and every region must see every game.
//!
//! Needs the cluster `scripts/cassandra.sh start --nodes 3 --dcs eu,us,asia`; `make test`
//! runs it in its `multidc` stage: `cargo test -p origin --test it -- --ignored multi_dc::`.

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{TestApp, spawn_app_with, unique_user};
use origin::config::Replication;
use serde_json::{Value, json};

const REGIONS: [&str; 3] = ["eu", "us", "asia"];

async fn spawn_regions() -> Vec<TestApp> {
    let hosts = std::env::var("MULTI_DC_CASSANDRA_HOSTS")
        .unwrap_or_else(|_| "127.0.0.1:9042,127.0.0.2:9042,127.0.0.3:9042".into());
    let mut apps = Vec::new();
    for region in REGIONS {
        let mut settings = common::settings(region);
        settings.cassandra.hosts = hosts.split(',').map(str::to_owned).collect();
        settings.cassandra.keyspace = format!("{}_mdc", common::KEYSPACE.as_str());
        settings.cassandra.local_dc = Some(region.to_owned());
        settings.cassandra.replication =
            Replication::NetworkTopology(REGIONS.iter().map(|dc| (dc.to_string(), 1)).collect());
        apps.push(spawn_app_with(settings).await);
    }
    apps
}

async fn stop_all(apps: Vec<TestApp>) {
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test]
#[ignore = "needs the 3-datacenter cluster (make test, stage multidc)"]
async fn concurrent_starts_in_every_region_make_one_game() {
    let apps = spawn_regions().await;
    for _ in 0..6 {
        let user = unique_user("mdc");
        let requests = apps
            .iter()
            .flat_map(|app| (0..3).map(|_| app.start(&user)))
            .collect::<Vec<_>>();
        let results = futures::future::join_all(requests).await;
        for (status, body) in &results {
            assert!(*status == 200 || *status == 201, "{status} {body}");
        }
        let ids: HashSet<&str> = results
            .iter()
            .map(|(_, g)| g["gameId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "one user got several games across regions: {ids:?}"
        );
        assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1);
        assert!(results.iter().all(|(s, _)| *s == 201 || *s == 200));
    }
    stop_all(apps).await;
}

#[tokio::test]
#[ignore = "needs the 3-datacenter cluster (make test, stage multidc)"]
async fn one_idempotency_key_sent_to_every_region_makes_one_game() {
    let apps = spawn_regions().await;
    let user = unique_user("mdc-key");
    let key = format!("mdc-{}", uuid::Uuid::new_v4());
    let requests = apps.iter().map(|app| {
        app.client
            .post(app.url("/game/start"))
            .header("Idempotency-Key", key.clone())
            .json(&json!({"userId": user}))
            .send()
    });
    let mut ids = HashSet::new();
    for response in futures::future::join_all(requests).await {
        let response = response.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 200 || status == 201, "{status} {body}");
        ids.insert(body["gameId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    stop_all(apps).await;
}

#[tokio::test]
#[ignore = "needs the 3-datacenter cluster (make test, stage multidc)"]
async fn every_region_sees_every_game_and_its_exit() {
    let apps = spawn_regions().await;
    let user = unique_user("mdc-join");
    let (status, game) = apps[0].start(&user).await;
    assert_eq!(status, 201);
    let id = game["gameId"].as_str().unwrap();
    // LOCAL_QUORUM writes reach the other datacenters asynchronously: wait, boundedly.
    let visible_everywhere = |expect_status: &'static str| {
        let apps = &apps;
        async move {
            let started = Instant::now();
            loop {
                let mut all = true;
                for app in apps {
                    let (status, body) = app.get(&format!("/game/{id}")).await;
                    all &= status == 200 && body["status"] == expect_status;
                }
                if all {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "not visible in every region after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let took = visible_everywhere("active").await;
    println!("game visible in every region after {took:?}");
    let (status, _) = apps[2]
        .post("/game/exit", &json!({"gameId": id, "userId": user}))
        .await;
    assert_eq!(status, 200);
    let took = visible_everywhere("exited").await;
    println!("exit visible in every region after {took:?}");
    stop_all(apps).await;
}
