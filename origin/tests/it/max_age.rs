//! `GAME_MAX_AGE` on a real Cassandra: a game's slot is written with a TTL of the game's
//! remaining life, so Cassandra frees it by itself; afterwards the user starts again, and the
//! old game reads (and exits) as ended at its expiry.

use std::time::Duration;

use crate::common::{self, spawn_app_with, unique_user};
use origin::max_age::MaxAge;
use serde_json::{Value, json};

const MAX_AGE_MS: i64 = 3_000;

async fn app() -> common::TestApp {
    let mut settings = common::settings("eu");
    settings.games.max_age = MaxAge::from_ms(MAX_AGE_MS);
    // Step 0 at creation, so the expiry is createdAt + max age.
    settings.games.start_delay_ms = 0;
    spawn_app_with(settings).await
}

/// The user's slot row and its TTL, straight from Cassandra.
async fn slot(app: &common::TestApp, user: &str) -> Option<(uuid::Uuid, Option<i32>)> {
    let cql = format!(
        "SELECT game_id, TTL(game_id) FROM {}.active_game_by_user WHERE user_id = ?",
        common::KEYSPACE.as_str()
    );
    app.store
        .session()
        .query_unpaged(cql, (user,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .maybe_first_row::<(uuid::Uuid, Option<i32>)>()
        .unwrap()
}

async fn wait_past(expires_at: i64) {
    let now = common::now_ms();
    // Cassandra expires TTL cells at second granularity: a second of margin.
    let wait = (expires_at - now).max(0) + 1_500;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
}

#[tokio::test]
async fn a_game_past_its_max_age_frees_the_slot_and_reads_as_ended_at_its_expiry() {
    let app = app().await;
    let user = unique_user("max-age");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    let id = game["gameId"].as_str().unwrap().to_owned();
    let created = game["createdAt"].as_i64().unwrap();
    let expires_at = created + MAX_AGE_MS;

    // The slot carries a TTL of the game's remaining life.
    let (slot_game, ttl) = slot(&app, &user).await.expect("the start claimed a slot");
    assert_eq!(slot_game.to_string(), id);
    let ttl = ttl.expect("the slot must be written with a TTL");
    assert!((1..=3).contains(&ttl), "slot TTL {ttl}");
    // Before the expiry: still the user's one game.
    let (status, again) = app.start(&user).await;
    assert_eq!((status, again["gameId"].as_str()), (200, Some(id.as_str())));

    wait_past(expires_at).await;

    // Cassandra freed the slot by itself: nothing swept it.
    assert_eq!(slot(&app, &user).await, None);
    // The old game reads as ended at its expiry.
    let (status, old) = app.get(&format!("/game/{id}")).await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["status"], "exited");
    assert_eq!(old["exitedAt"].as_i64(), Some(expires_at));
    let (status, state) = app.get(&format!("/game/{id}/state")).await;
    assert_eq!(status, 200, "{state}");
    // An exit is answered like the exit of an ended game: its end stays the expiry.
    let (status, exit) = app
        .post("/game/exit", &json!({"gameId": id, "userId": user}))
        .await;
    assert_eq!(status, 200, "{exit}");
    assert_eq!(exit["status"], "exited");
    assert_eq!(exit["exitedAt"].as_i64(), Some(expires_at));
    // And the user starts again.
    let (status, fresh) = app.start(&user).await;
    assert_eq!(status, 201, "{fresh}");
    assert_ne!(fresh["gameId"].as_str(), Some(id.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn a_slot_written_before_slots_had_a_ttl_is_released_once_its_game_is_past_its_max_age() {
    let app = app().await;
    let user = unique_user("max-age-old-row");
    let (status, game) = app.start(&user).await;
    assert_eq!(status, 201, "{game}");
    let id: uuid::Uuid = game["gameId"].as_str().unwrap().parse().unwrap();
    let expires_at = game["createdAt"].as_i64().unwrap() + MAX_AGE_MS;
    // Rewrite the slot as an older origin did: no TTL.
    let cql = format!(
        "INSERT INTO {}.active_game_by_user (user_id, game_id) VALUES (?, ?)",
        common::KEYSPACE.as_str()
    );
    app.store
        .session()
        .query_unpaged(cql, (user.as_str(), id))
        .await
        .unwrap();
    assert_eq!(slot(&app, &user).await, Some((id, None)));

    wait_past(expires_at).await;

    // The row is still there, but its game reads as ended: the next start takes the slot.
    assert!(slot(&app, &user).await.is_some());
    let (status, user_game) = app.get(&format!("/users/{user}/game")).await;
    assert_eq!(status, 404, "{user_game}");
    let (status, fresh): (u16, Value) = app.start(&user).await;
    assert_eq!(status, 201, "{fresh}");
    assert_ne!(fresh["gameId"].as_str(), Some(id.to_string().as_str()));
    app.stop().await;
}
