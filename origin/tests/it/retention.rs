//! `GAME_RETENTION` on a real Cassandra: every row a game wrote (its `games` row, its
//! `Idempotency-Key` row, its outbox rows, the user's slot) carries a TTL, so an exited game is
//! gone `GAME_RETENTION` after its exit and a game nobody exits is gone `GAME_RETENTION` after
//! its `GAME_MAX_AGE`; a game still running is kept. Checked with raw CQL (rows and `TTL()` of
//! every cell) and through the API.

use std::time::{Duration, Instant};

use crate::common::{self, unique_user};
use serde_json::{Value, json};
use uuid::Uuid;

const RETENTION_S: i64 = 2;
const MAX_AGE_S: i64 = 8;

/// The regular columns of `games`: each must carry a TTL.
const GAME_CELLS: [&str; 12] = [
    "user_id",
    "region",
    "seed",
    "start_at",
    "tick_ms",
    "break_every",
    "algorithm",
    "status",
    "created_at",
    "exited_at",
    "metadata",
    "owner_key",
];

/// An origin with a short max age and retention, and game events on towards a broker that is
/// not there, so the outbox rows stay until their TTL removes them.
async fn app() -> common::TestApp {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nats = format!("nats://{}", dead.local_addr().unwrap());
    drop(dead);
    common::spawn_app_with(common::settings_with(
        "eu",
        &[
            ("GAME_RETENTION", &format!("{RETENTION_S}s")),
            ("GAME_MAX_AGE", &format!("{MAX_AGE_S}s")),
            ("START_DELAY_MS", "0"),
            ("NATS_URL", &nats),
        ],
    ))
    .await
}

async fn rows(app: &common::TestApp, cql: String, id: Uuid) -> Vec<Vec<Option<i32>>> {
    app.store
        .session()
        .query_unpaged(cql, (id,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<scylla::value::Row>()
        .unwrap()
        .map(|row| {
            row.unwrap()
                .columns
                .into_iter()
                .map(|c| match c {
                    Some(scylla::value::CqlValue::Int(ttl)) => Some(ttl),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Everything Cassandra still holds of game `id` (and the key `key`, the slot of `user`): one
/// line per row found, with the TTL of each of its cells (`None`: no TTL).
async fn leftovers(app: &common::TestApp, id: Uuid, key: &str, user: &str) -> Vec<String> {
    let ks = common::KEYSPACE.as_str();
    let mut found = Vec::new();
    let ttls = GAME_CELLS
        .iter()
        .map(|c| format!("TTL({c})"))
        .collect::<Vec<_>>()
        .join(", ");
    for row in rows(
        app,
        format!("SELECT {ttls} FROM {ks}.games WHERE game_id = ?"),
        id,
    )
    .await
    {
        found.push(format!("games: {row:?}"));
    }
    let session = app.store.session();
    let key_rows = session
        .query_unpaged(
            format!(
                "SELECT game_id, TTL(game_id), TTL(user_id) FROM {ks}.game_by_idempotency_key \
                 WHERE idempotency_key = ?"
            ),
            (key,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(Uuid, Option<i32>, Option<i32>)>()
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    for row in key_rows {
        found.push(format!("game_by_idempotency_key: {row:?}"));
    }
    let slot = session
        .query_unpaged(
            format!("SELECT game_id, TTL(game_id) FROM {ks}.active_game_by_user WHERE user_id = ?"),
            (user,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows::<(Uuid, Option<i32>)>()
        .unwrap()
        .map(Result::unwrap)
        .filter(|(g, _)| *g == id)
        .collect::<Vec<_>>();
    for row in slot {
        found.push(format!("active_game_by_user: {row:?}"));
    }
    // The outbox is partitioned by region and shard: read every partition of this region.
    for shard in 0..origin::store::SHARDS {
        let pending = session
            .query_unpaged(
                format!(
                    "SELECT game_id, kind, TTL(game_id), TTL(kind), TTL(user_id) \
                     FROM {ks}.outbox_pending WHERE region = 'eu' AND shard = ?"
                ),
                (shard,),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows::<(Uuid, String, Option<i32>, Option<i32>, Option<i32>)>()
            .unwrap()
            .map(Result::unwrap)
            .filter(|row| row.0 == id)
            .collect::<Vec<_>>();
        for row in pending {
            found.push(format!("outbox_pending: {row:?}"));
        }
    }
    found
}

/// Every cell found carries a TTL of at most `max_s`; only `games_nulls` cells of the `games`
/// row may read as `None` (an unset column: `exited_at` of a running game).
fn assert_ttls(found: &[String], max_s: i64, games_nulls: usize, what: &str) {
    assert!(!found.is_empty(), "{what}: nothing stored");
    for line in found {
        let numbers: Vec<i64> = line
            .match_indices("Some(")
            .filter_map(|(i, _)| line[i + 5..].split(')').next()?.parse().ok())
            .collect();
        for n in &numbers {
            assert!(
                (1..=max_s).contains(n),
                "{what}: TTL {n} s outside 1..={max_s} in {line}"
            );
        }
        let nulls = line.matches("None").count();
        let allowed = if line.starts_with("games:") {
            games_nulls
        } else {
            0
        };
        assert!(
            nulls <= allowed,
            "{what}: {nulls} cell(s) without a TTL in {line}"
        );
    }
}

async fn start(app: &common::TestApp, user: &str, key: &str) -> Value {
    let response = app
        .client
        .post(app.url("/game/start"))
        .header("idempotency-key", key)
        .json(&json!({"userId": user, "metadata": {"note": "x".repeat(64)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn finished_games_leave_cassandra_after_the_retention_and_running_ones_stay() {
    let app = app().await;
    let (exiting, running) = (unique_user("retention-exit"), unique_user("retention-run"));
    let (exit_key, run_key) = (unique_user("key"), unique_user("key"));
    let t0 = Instant::now();
    let exited = start(&app, &exiting, &exit_key).await;
    let kept = start(&app, &running, &run_key).await;
    let exited_id: Uuid = exited["gameId"].as_str().unwrap().parse().unwrap();
    let kept_id: Uuid = kept["gameId"].as_str().unwrap().parse().unwrap();
    let (status, body) = app
        .post(
            "/game/exit",
            &json!({"gameId": exited_id.to_string(), "userId": exiting}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Every cell of the exited game: TTL at most the retention. Of the running one: at most
    // its remaining life plus the retention (exited_at is its one unset cell).
    let now = leftovers(&app, exited_id, &exit_key, &exiting).await;
    assert_ttls(&now, RETENTION_S, 0, "the exited game");
    assert!(
        now.iter().any(|l| l.starts_with("outbox_pending")),
        "{now:?}"
    );
    assert!(
        now.iter().any(|l| l.starts_with("game_by_idempotency_key")),
        "{now:?}"
    );
    let running_rows = leftovers(&app, kept_id, &run_key, &running).await;
    // Outbox and key rows of the running game live the retention; its row, slot and expiry
    // row (its end at the maximum age, due then) longer.
    assert!(
        running_rows.iter().any(|l| l.contains("@maxAge")),
        "{running_rows:?}"
    );
    assert_ttls(
        &running_rows
            .iter()
            .filter(|l| l.starts_with("outbox") || l.starts_with("game_by"))
            .filter(|l| !l.contains("@maxAge"))
            .cloned()
            .collect::<Vec<_>>(),
        RETENTION_S,
        0,
        "the running game's outbox and key",
    );
    assert_ttls(
        &running_rows,
        MAX_AGE_S + RETENTION_S,
        1,
        "the running game",
    );
    assert!(
        running_rows
            .iter()
            .any(|l| l.starts_with("active_game_by_user")),
        "{running_rows:?}"
    );

    // Past the retention (Cassandra expires at whole seconds: a second and a half of margin).
    tokio::time::sleep(Duration::from_millis((RETENTION_S * 1_000 + 1_500) as u64)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(MAX_AGE_S as u64),
        "the machine is too slow for this test's timing"
    );
    let left = leftovers(&app, exited_id, &exit_key, &exiting).await;
    assert_eq!(
        left,
        Vec::<String>::new(),
        "cells of the exited game remain"
    );
    let (status, body) = app.get(&format!("/game/{exited_id}")).await;
    assert_eq!(status, 404, "{body}");
    // The running game is untouched, and still the user's game.
    let (status, body) = app.get(&format!("/game/{kept_id}")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    let (status, body) = app.get(&format!("/users/{running}/game")).await;
    assert_eq!(status, 200, "{body}");

    // Past its max age plus the retention, the game nobody exited is gone too.
    let gone_at = Duration::from_millis(((MAX_AGE_S + RETENTION_S) * 1_000 + 1_500) as u64);
    tokio::time::sleep(gone_at.saturating_sub(t0.elapsed())).await;
    let left = leftovers(&app, kept_id, &run_key, &running).await;
    assert_eq!(
        left,
        Vec::<String>::new(),
        "cells of the expired game remain"
    );
    let (status, body) = app.get(&format!("/game/{kept_id}")).await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}
