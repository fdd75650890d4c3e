//! Shared games through three real origins (regions eu, us, asia) on one keyspace of the real
//! Cassandra: concurrent joins never seat one player too many or one user twice, every seat's
//! exit is judged by the server's clock and the engine, a seat's token exits only that seat,
//! and every refusal is a clear JSON error.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use shared_engine::{Algorithm, Params};

use crate::common::{TestApp, now_ms, settings, spawn_app_with, unique_user};

/// POST JSON with exactly these headers.
async fn post(app: &TestApp, path: &str, body: &Value, auth: Option<&str>) -> (u16, Value) {
    let mut request = app.client.post(app.url(path)).json(body);
    if let Some(token) = auth {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn three_origins() -> [TestApp; 3] {
    [
        spawn_app_with(settings("eu")).await,
        spawn_app_with(settings("us")).await,
        spawn_app_with(settings("asia")).await,
    ]
}

/// A shared game of `seats` created by a fresh host on `app`, open for joins for `open_ms`.
async fn shared_game(app: &TestApp, seats: u32, open_ms: i64, tick_ms: u32) -> Value {
    let body = json!({
        "userId": unique_user("host"), "maxPlayers": seats, "tickMs": tick_ms,
        "breakEvery": 20, "joinDeadline": now_ms() + open_ms,
    });
    let (status, game) = post(app, "/game/start", &body, None).await;
    assert_eq!(status, 201, "{game}");
    assert_eq!(game["shared"]["maxPlayers"], seats, "{game}");
    game
}

async fn join(app: &TestApp, game: &Value, user: &str) -> (u16, Value) {
    let path = format!("/game/{}/join", game["gameId"].as_str().unwrap());
    post(app, &path, &json!({ "userId": user }), None).await
}

async fn exit(app: &TestApp, game_id: &str, user: &str, token: &str) -> (u16, Value) {
    let body = json!({"gameId": game_id, "userId": user});
    post(app, "/game/exit", &body, Some(token)).await
}

/// The engine's parameters of a game view.
fn params(game: &Value) -> Params {
    Params::new(
        u32::try_from(game["seed"].as_u64().unwrap()).unwrap(),
        game["startAt"].as_i64().unwrap(),
        u32::try_from(game["tickMs"].as_u64().unwrap()).unwrap(),
        u32::try_from(game["breakEvery"].as_u64().unwrap()).unwrap(),
        Algorithm::parse(game["algorithm"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
}

/// What the engine says a player who left at `at` finished with: the last step that began
/// before `at`, computed here from the game's parameters, not by the server.
fn expected_result(params: &Params, at: i64) -> Value {
    let start = params.start_at_ms();
    if at <= start {
        return json!({"exitedAt": at, "breakFirst": false});
    }
    let step = u64::try_from((at - 1 - start) / i64::from(params.tick_ms())).unwrap();
    let tick = shared_engine::tick_at(params, step);
    json!({
        "exitedAt": at,
        "final": {"step": tick.step, "value": tick.value, "round": tick.round, "broken": tick.broken},
        "breakFirst": tick.round > 0,
    })
}

#[tokio::test]
async fn fifty_players_forty_seats_three_origins_own_exits_engine_results() {
    let origins = three_origins().await;
    let game = shared_game(&origins[0], 40, 60_000, 10).await;
    let game_id = game["gameId"].as_str().unwrap().to_owned();
    let host = game["userId"].as_str().unwrap().to_owned();
    let host_token = game["ownerToken"].as_str().unwrap().to_owned();

    // 49 more players, all at once, spread over the three origins: 50 players, 40 seats.
    let players: Vec<String> = (0..49).map(|n| unique_user(&format!("p{n}"))).collect();
    let answers = join_all(
        players
            .iter()
            .enumerate()
            .map(|(n, user)| join(&origins[n % 3], &game, user)),
    )
    .await;
    let mut seated: HashMap<String, (u32, String)> = HashMap::new();
    seated.insert(host.clone(), (0, host_token.clone()));
    let mut refused = 0;
    for (user, (status, body)) in players.iter().zip(&answers) {
        match status {
            201 => {
                assert_eq!(body["userId"], user.as_str(), "{body}");
                assert_eq!(body["game"]["gameId"], game_id.as_str());
                let seat = u32::try_from(body["seat"].as_u64().unwrap()).unwrap();
                assert!((1..40).contains(&seat), "{body}");
                let token = body["ownerToken"]
                    .as_str()
                    .expect("a seat token")
                    .to_owned();
                seated.insert(user.clone(), (seat, token));
            }
            409 => {
                assert_eq!(code(body), "game_full", "{body}");
                assert!(body["error"]["message"].as_str().unwrap().contains("40"));
                refused += 1;
            }
            other => panic!("join answered {other}: {body}"),
        }
    }
    assert_eq!(
        (seated.len(), refused),
        (40, 10),
        "exactly 40 seats, 10 refusals"
    );
    let numbers: HashSet<u32> = seated.values().map(|(seat, _)| *seat).collect();
    assert_eq!(numbers.len(), 40, "no seat given twice");

    // Every origin lists the same 40 seats, each user once.
    for origin in &origins {
        let (status, results) = origin.get(&format!("/game/{game_id}/results")).await;
        assert_eq!(status, 200, "{results}");
        let listed: HashMap<String, u64> = results["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["userId"].as_str().unwrap().to_owned(),
                    s["seat"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(listed.len(), 40, "{results}");
        for (user, (seat, _)) in &seated {
            assert_eq!(listed.get(user), Some(&u64::from(*seat)), "{user}");
        }
        assert_eq!(results["status"], "active");
    }

    // No user in two games: a seated player can neither join another game nor start one of
    // their own (the start answers the shared game they play).
    let other = shared_game(&origins[1], 100, 60_000, 10).await;
    let some: Vec<&String> = seated.keys().take(6).collect();
    for (n, user) in some.iter().enumerate() {
        let (status, body) = join(&origins[n % 3], &other, user).await;
        assert_eq!((status, code(&body)), (409, "already_playing"), "{body}");
        let (status, body) = origins[(n + 1) % 3].start(user).await;
        assert_eq!(
            (status, body["gameId"].as_str()),
            (200, Some(game_id.as_str()))
        );
    }

    // A seat's token exits only its seat: another player's token, and the creator's (the
    // game's) token, are refused with 403; nothing is exited by them.
    let mut joiners = seated.iter().filter(|(user, _)| **user != host);
    let (alice, (_, alice_token)) = joiners.next().unwrap();
    let (bob, (_, bob_token)) = joiners.next().unwrap();
    for (token, victim) in [(alice_token, bob), (bob_token, alice), (&host_token, alice)] {
        let (status, body) = exit(&origins[2], &game_id, victim, token).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    }
    let (status, body) = exit(&origins[2], &game_id, alice, "not-a-token").await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");

    // Each player exits at a different instant, through any origin, once the game runs.
    let start_at = game["startAt"].as_i64().unwrap();
    let wait = u64::try_from((start_at - now_ms()).max(0)).unwrap();
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    let order: Vec<(&String, &(u32, String))> = seated.iter().collect();
    let exits = join_all(order.iter().enumerate().map(|(n, (user, (_, token)))| {
        let origin = &origins[n % 3];
        let game_id = game_id.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(40 * n as u64)).await;
            exit(origin, &game_id, user, token).await
        }
    }))
    .await;
    let engine = params(&game);
    let mut results: HashMap<String, Value> = HashMap::new();
    for ((user, _), (status, body)) in order.iter().zip(&exits) {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["userId"], user.as_str());
        let at = body["exitedAt"].as_i64().unwrap();
        assert_eq!(body["result"], expected_result(&engine, at), "{user}");
        results.insert((*user).clone(), body["result"].clone());
    }
    let instants: HashSet<i64> = results
        .values()
        .map(|r| r["exitedAt"].as_i64().unwrap())
        .collect();
    assert!(
        instants.len() >= 35,
        "exits at different times: {instants:?}"
    );

    // A repeat answers the first exit's result.
    let (status, again) = exit(&origins[1], &game_id, alice, alice_token).await;
    assert_eq!((status, &again["result"]), (200, &results[alice]));

    // The last exit ended the game at its instant; results are final, everywhere.
    let last = instants.iter().max().copied().unwrap();
    for origin in &origins {
        let (_, view) = origin.get(&format!("/game/{game_id}")).await;
        assert_eq!(
            (view["status"].as_str(), view["exitedAt"].as_i64()),
            (Some("exited"), Some(last))
        );
        let (_, listed) = origin.get(&format!("/game/{game_id}/results")).await;
        assert_eq!(listed["status"], "exited");
        for seat in listed["seats"].as_array().unwrap() {
            let user = seat["userId"].as_str().unwrap();
            assert_eq!(seat["result"], results[user], "{user}");
        }
    }
    // An ended game takes nobody, and the players are free to play again.
    let (status, body) = join(&origins[0], &game, &unique_user("late")).await;
    assert_eq!((status, code(&body)), (410, "game_ended"), "{body}");
    let (status, _) = join(&origins[2], &other, alice).await;
    assert_eq!(status, 201);
    for origin in origins {
        origin.stop().await;
    }
}

#[tokio::test]
async fn concurrent_joins_of_one_user_or_into_two_games_seat_them_once() {
    let origins = three_origins().await;
    let first = shared_game(&origins[0], 100, 60_000, 100).await;
    let second = shared_game(&origins[1], 100, 60_000, 100).await;
    let users: Vec<String> = (0..12).map(|n| unique_user(&format!("twice{n}"))).collect();
    // Each user joins the first game three times at once (one per origin), and the second game
    // once, all concurrently.
    let mut attempts = Vec::new();
    for user in &users {
        for origin in &origins {
            attempts.push((user.clone(), 1, join(origin, &first, user)));
        }
        attempts.push((user.clone(), 2, join(&origins[2], &second, user)));
    }
    let (labels, futures): (Vec<(String, u8)>, Vec<_>) = attempts
        .into_iter()
        .map(|(user, game, future)| ((user, game), future))
        .unzip();
    let answers = join_all(futures).await;
    let mut games_of: HashMap<&str, HashSet<u8>> = HashMap::new();
    for ((user, game), (status, body)) in labels.iter().zip(&answers) {
        match status {
            200 | 201 => {
                games_of.entry(user).or_default().insert(*game);
            }
            409 => assert_eq!(code(body), "already_playing", "{body}"),
            other => panic!("join answered {other}: {body}"),
        }
    }
    for user in &users {
        assert_eq!(
            games_of.get(user.as_str()).map(HashSet::len),
            Some(1),
            "{user}: {games_of:?}"
        );
    }
    // The stored seats agree: every user holds exactly one seat in all.
    let mut seats_of: HashMap<String, usize> = HashMap::new();
    for game in [&first, &second] {
        let (_, results) = origins[0]
            .get(&format!(
                "/game/{}/results",
                game["gameId"].as_str().unwrap()
            ))
            .await;
        for seat in results["seats"].as_array().unwrap() {
            *seats_of
                .entry(seat["userId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for user in &users {
        assert_eq!(seats_of.get(user), Some(&1), "{user}: {seats_of:?}");
    }
    for origin in origins {
        origin.stop().await;
    }
}

#[tokio::test]
async fn refusals_are_clear_json_errors() {
    let origins = three_origins().await;
    let app = &origins[0];
    // Bad shared-game settings name their field.
    for (body, field) in [
        (
            json!({"userId": unique_user("h"), "maxPlayers": 1}),
            "maxPlayers",
        ),
        (
            json!({"userId": unique_user("h"), "maxPlayers": 101}),
            "maxPlayers",
        ),
        (
            json!({"userId": unique_user("h"), "maxPlayers": 4, "joinDeadline": now_ms() - 1}),
            "joinDeadline",
        ),
        (
            json!({"userId": unique_user("h"), "maxPlayers": 4, "joinDeadline": now_ms() + 86_400_000}),
            "joinDeadline",
        ),
    ] {
        let (status, answer) = post(app, "/game/start", &body, None).await;
        assert_eq!(
            (status, code(&answer)),
            (422, "validation_failed"),
            "{answer}"
        );
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // A one-player game takes nobody.
    let (_, solo) = app.start(&unique_user("solo")).await;
    let (status, body) = join(app, &solo, &unique_user("j")).await;
    assert_eq!((status, code(&body)), (409, "not_joinable"), "{body}");
    // Past the join deadline: 410 join_closed, from any origin.
    let closing = shared_game(app, 4, 800, 100).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    for origin in &origins {
        let (status, body) = join(origin, &closing, &unique_user("j")).await;
        assert_eq!((status, code(&body)), (410, "join_closed"), "{body}");
    }
    // Unknown game, bad id, bad body.
    let missing = json!({"gameId": uuid::Uuid::new_v4().to_string()});
    let (status, body) = join(app, &missing, &unique_user("j")).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = post(app, "/game/nope/join", &json!({"userId": "u"}), None).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("gameId"))
    );
    let open = shared_game(app, 4, 60_000, 100).await;
    let path = format!("/game/{}/join", open["gameId"].as_str().unwrap());
    let (status, body) = post(app, &path, &json!({"userId": "a b"}), None).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("userId")),
        "{body}"
    );
    // A repeat join finds the seat (200) without its token; the token comes back only with
    // the Idempotency-Key that took the seat.
    let user = unique_user("again");
    let keyed = app
        .client
        .post(app.url(&path))
        .header("idempotency-key", "join-key-1")
        .json(&json!({ "userId": user }));
    let first = keyed.try_clone().unwrap().send().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let (status, plain) = join(&origins[1], &open, &user).await;
    assert_eq!(
        (status, plain["seat"].clone(), plain.get("ownerToken")),
        (200, first["seat"].clone(), None)
    );
    let replay: Value = keyed.send().await.unwrap().json().await.unwrap();
    assert_eq!(replay["ownerToken"], first["ownerToken"]);
    for origin in origins {
        origin.stop().await;
    }
}
