//! `GET /leaderboard` on a real origin over the real Cassandra: ranking, idempotent results,
//! caching headers and clear 400s. (The consumer that fills it from the event stream is tested
//! in the events stage: `events::the_leaderboard_equals_a_recount...`.)

use api::{GameId, UserId};
use origin::leaderboard::{CassandraLeaderboard, LeaderboardStore, ResultLine};
use serde_json::Value;

use crate::common::{KEYSPACE, spawn_app, unique_user};

fn line(day: &str, user: &str, game: GameId, seat: u32, value: Option<u64>) -> ResultLine {
    ResultLine {
        period: format!("day:{day}"),
        algorithm: "interval-v0".into(),
        user_id: UserId::parse(user).unwrap(),
        game_id: game,
        seat,
        value,
        exited_at: 915_148_800_000,
    }
}

#[tokio::test]
async fn the_leaderboard_ranks_stored_results_once_each_and_refuses_bad_queries() {
    let app = spawn_app("eu").await;
    let board = CassandraLeaderboard::connect(app.store.clone(), &KEYSPACE)
        .await
        .unwrap();
    // A day of its own (no other test writes 1999), under interval-v0.
    let day = format!("1999-01-{:02}", 1 + uuid::Uuid::new_v4().as_bytes()[0] % 28);
    let (a, b, c) = (unique_user("lba"), unique_user("lbb"), unique_user("lbc"));
    let g1 = GameId::from(uuid::Uuid::new_v4());
    let g2 = GameId::from(uuid::Uuid::new_v4());
    let lines = [
        line(&day, &a, g1, 0, Some(7)),
        line(&day, &b, g1, 1, Some(9)),
        line(&day, &c, g1, 2, None),
        line(&day, &a, g2, 0, Some(3)),
    ];
    for l in &lines {
        board.apply(l).await.unwrap();
    }
    // Every result again, concurrently (a redelivery): nothing changes.
    futures::future::join_all(lines.iter().map(|l| board.apply(l))).await;

    let get = |query: String| {
        let client = app.client.clone();
        let url = app.url(&format!("/leaderboard?{query}"));
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let cache = response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, cache, response.json::<Value>().await.unwrap())
        }
    };
    let (status, cache, body) = get(format!("period=day&day={day}&algorithm=interval-v0")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("public, max-age=5"));
    assert_eq!(body["period"], "day");
    assert_eq!(body["day"], day.as_str());
    assert_eq!(body["algorithm"], "interval-v0");
    let entries: Vec<(u64, String, Option<u64>, u64)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().unwrap(),
                e["userId"].as_str().unwrap().to_owned(),
                e["bestValue"].as_u64(),
                e["games"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (1, b.clone(), Some(9), 1),
            (2, a.clone(), Some(7), 2),
            (3, c.clone(), None, 1)
        ]
    );
    let (_, _, top) = get(format!(
        "period=day&day={day}&algorithm=interval-v0&limit=1"
    ))
    .await;
    assert_eq!(top["entries"].as_array().unwrap().len(), 1);
    // Another algorithm's board of the same day is empty.
    let (status, _, other) = get(format!("period=day&day={day}&algorithm=lcg32")).await;
    assert_eq!(
        (status, other["entries"].as_array().unwrap().len()),
        (200, 0)
    );

    for (query, field) in [
        ("period=week", "period"),
        ("algorithm=best", "algorithm"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("period=day&day=1999-02-30", "day"),
        ("day=1999-01-01", "day"),
    ] {
        let (status, cache, body) = get(query.to_owned()).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
        assert!(cache.is_none_or(|c| !c.contains("max-age=5")), "{query}");
    }
    let response = app
        .client
        .post(app.url("/leaderboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    app.stop().await;
}
