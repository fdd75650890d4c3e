//! Tournaments through three real origins (eu, us, asia) on one keyspace of the real Cassandra:
//! 25 players joining round 0 at once across the origins sit at exactly 3 tables (10, 10, 5)
//! that play the identical game; the standings equal the engine's values at each exit (or at
//! the round's end for a player who never exited), recomputed here from the game parameters;
//! and every refusal is a clear JSON error (operator only, closed or unknown rounds, forged
//! ids).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use shared_engine::{Algorithm, Params};

use crate::common::{TestApp, now_ms, settings_with, spawn_app_with, unique_user};

const TOKEN: &str = "tournament-test-admin-token-0123456789abcdef";

async fn three_origins() -> [TestApp; 3] {
    let with_admin = |region: &str| settings_with(region, &[("ADMIN_TOKEN", TOKEN)]);
    [
        spawn_app_with(with_admin("eu")).await,
        spawn_app_with(with_admin("us")).await,
        spawn_app_with(with_admin("asia")).await,
    ]
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, body: &Value) -> (u16, Value) {
    send(app, "POST", "/admin/tournaments", Some(body), Some(TOKEN)).await
}

async fn join(app: &TestApp, id: &str, round: u32, user: &str) -> (u16, Value) {
    let path = format!("/tournaments/{id}/rounds/{round}/join");
    send(app, "POST", &path, Some(&json!({ "userId": user })), None).await
}

async fn exit(app: &TestApp, game_id: &str, user: &str, token: &str) -> (u16, Value) {
    let body = json!({"gameId": game_id, "userId": user});
    send(app, "POST", "/game/exit", Some(&body), Some(token)).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

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

/// The engine's value for a player who left at `at`: the last step that began before `at`,
/// computed here from the game's parameters (0 during the countdown).
fn value_at(params: &Params, at: i64) -> u64 {
    let start = params.start_at_ms();
    if at <= start {
        return 0;
    }
    let step = u64::try_from((at - 1 - start) / i64::from(params.tick_ms())).unwrap();
    shared_engine::tick_at(params, step).value
}

async fn sleep_until(at: i64) {
    let wait = u64::try_from((at - now_ms()).max(0)).unwrap();
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// A player's seat in a round: (game view, owner token).
type Seated = HashMap<String, (Value, String)>;

#[tokio::test]
async fn twenty_five_players_three_origins_three_tables_engine_totals() {
    let origins = three_origins().await;
    let first_start = now_ms() + 10_000;
    let interval = 10_000;
    let (status, t) = create(
        &origins[0],
        &json!({
            "name": "Three tables cup", "rounds": 2, "firstStartAt": first_start,
            "intervalMs": interval, "tickMs": 50, "breakEvery": 20, "algorithm": "mix32-v1",
            "seatsPerTable": 10,
        }),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert!(
        !t.to_string().contains("seed"),
        "no seed in the schedule: {t}"
    );
    let id = t["tournamentId"].as_str().unwrap().to_owned();
    let schedule = t["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 2);
    assert_eq!(schedule[0]["startAt"], first_start);
    assert_eq!(schedule[1]["startAt"], first_start + interval);
    assert_eq!(schedule[0]["state"], "open");
    // Every origin serves it (Cassandra is the only place it lives).
    for origin in &origins[1..] {
        let (status, view) = origin.get(&format!("/tournaments/{id}")).await;
        assert_eq!((status, &view["name"]), (200, &json!("Three tables cup")));
    }

    // 25 players join round 0 at once, spread over the three origins.
    let players: Vec<String> = (0..25).map(|n| unique_user(&format!("t{n}"))).collect();
    let answers = join_all(
        players
            .iter()
            .enumerate()
            .map(|(n, user)| join(&origins[n % 3], &id, 0, user)),
    )
    .await;
    let mut round0: Seated = HashMap::new();
    let mut tables: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (user, (status, body)) in players.iter().zip(&answers) {
        assert_eq!(*status, 201, "{user}: {body}");
        assert_eq!(body["userId"], user.as_str());
        let game = body["game"].clone();
        tables
            .entry(game["gameId"].as_str().unwrap().to_owned())
            .or_default()
            .push(body["seat"].as_u64().unwrap());
        let token = body["ownerToken"]
            .as_str()
            .expect("a seat token")
            .to_owned();
        assert!(round0.insert(user.clone(), (game, token)).is_none());
    }
    let mut sizes: Vec<usize> = tables.values().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![5, 10, 10], "exactly 3 tables: {tables:?}");
    for seats in tables.values() {
        let distinct: HashSet<&u64> = seats.iter().collect();
        assert_eq!(distinct.len(), seats.len(), "no seat given twice");
        assert!(seats.iter().all(|s| *s < 10), "{seats:?}");
    }
    // Every table plays the identical game: the round's seed, start and settings.
    let games: Vec<&Value> = round0.values().map(|(g, _)| g).collect();
    for game in &games {
        for field in ["seed", "startAt", "tickMs", "breakEvery", "algorithm"] {
            assert_eq!(game[field], games[0][field], "{field}");
        }
        assert_eq!(game["startAt"], first_start);
        assert_eq!(game["metadata"]["tournamentId"], id.as_str());
        assert_eq!(game["shared"]["maxPlayers"], 10);
    }
    // Each table's results list its players, everywhere.
    for (n, (game_id, seats)) in tables.iter().enumerate() {
        let (_, results) = origins[n % 3]
            .get(&format!("/game/{game_id}/results"))
            .await;
        assert_eq!(results["seats"].as_array().unwrap().len(), seats.len());
    }

    // A repeat of a join answers the same seat (200, no token without its key): one seat per
    // round; and the next round takes no join before it opens.
    let alice = &players[0];
    let (status, again) = join(&origins[2], &id, 0, alice).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["game"]["gameId"], round0[alice].0["gameId"]);
    assert!(again.get("ownerToken").is_none());
    let (status, body) = join(&origins[1], &id, 1, alice).await;
    assert_eq!((status, code(&body)), (425, "too_early"), "{body}");

    // Round 0 runs: 20 players exit at different instants through any origin; 5 never do.
    sleep_until(first_start + 100).await;
    let (status, body) = join(&origins[0], &id, 0, &unique_user("late")).await;
    assert_eq!((status, code(&body)), (410, "join_closed"), "{body}");
    let leavers: Vec<&String> = players.iter().take(20).collect();
    let exits = join_all(leavers.iter().enumerate().map(|(n, user)| {
        let (game, token) = &round0[*user];
        let origin = &origins[n % 3];
        async move {
            tokio::time::sleep(Duration::from_millis(150 * n as u64)).await;
            exit(origin, game["gameId"].as_str().unwrap(), user, token).await
        }
    }))
    .await;
    let mut exited_at: HashMap<(String, u32), i64> = HashMap::new();
    for (user, (status, body)) in leavers.iter().zip(&exits) {
        assert_eq!(*status, 200, "{body}");
        exited_at.insert(((*user).clone(), 0), body["exitedAt"].as_i64().unwrap());
    }
    // Mid-round, the standings count the exited players only.
    let (status, mid) = origins[1]
        .get(&format!("/tournaments/{id}/standings"))
        .await;
    assert_eq!(status, 200, "{mid}");
    assert_eq!(
        (mid["players"].as_u64(), mid["roundsFinished"].as_u64()),
        (Some(20), Some(0))
    );
    // A player still in round 0 cannot play round 1 (one game at a time).
    let (status, body) = join(&origins[2], &id, 1, &players[24]).await;
    assert_eq!((status, code(&body)), (409, "already_playing"), "{body}");

    // Round 1: five of the leavers play it; four exit, one stays to the end.
    let round1_players: Vec<&String> = players.iter().take(5).collect();
    let answers = join_all(
        round1_players
            .iter()
            .enumerate()
            .map(|(n, user)| join(&origins[n % 3], &id, 1, user)),
    )
    .await;
    let mut round1: Seated = HashMap::new();
    for (user, (status, body)) in round1_players.iter().zip(&answers) {
        assert_eq!(*status, 201, "{body}");
        round1.insert(
            (*user).clone(),
            (
                body["game"].clone(),
                body["ownerToken"].as_str().unwrap().to_owned(),
            ),
        );
    }
    let round1_games: HashSet<&str> = round1
        .values()
        .map(|(g, _)| g["gameId"].as_str().unwrap())
        .collect();
    assert_eq!(round1_games.len(), 1, "5 players, one table");
    let any0 = &round0[alice].0;
    let any1 = &round1[alice].0;
    assert_eq!(any1["startAt"], first_start + interval);
    sleep_until(first_start + interval + 200).await;
    for (n, user) in round1_players.iter().take(4).enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (game, token) = &round1[*user];
        let (status, body) = exit(
            &origins[n % 3],
            game["gameId"].as_str().unwrap(),
            user,
            token,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        exited_at.insert(((*user).clone(), 1), body["exitedAt"].as_i64().unwrap());
    }

    // After the last round: totals recomputed here from the engine, compared on every origin.
    sleep_until(first_start + 2 * interval + 100).await;
    let ends = [first_start + interval, first_start + 2 * interval];
    let mut expected: HashMap<String, (u64, u64)> = HashMap::new();
    for (round, seated, game) in [(0u32, &round0, any0), (1, &round1, any1)] {
        let engine = params(game);
        for user in seated.keys() {
            let at = exited_at
                .get(&(user.clone(), round))
                .copied()
                .unwrap_or(ends[round as usize]);
            let line = expected.entry(user.clone()).or_default();
            line.0 += value_at(&engine, at);
            line.1 += 1;
        }
    }
    assert!(
        expected.values().any(|(total, _)| *total > 0),
        "some player scored: {expected:?}"
    );
    for origin in &origins {
        let (status, standings) = origin.get(&format!("/tournaments/{id}/standings")).await;
        assert_eq!(status, 200, "{standings}");
        assert_eq!(standings["roundsFinished"], 2);
        assert_eq!(standings["players"], 25);
        let entries = standings["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 25);
        let mut previous = u64::MAX;
        for (n, entry) in entries.iter().enumerate() {
            let user = entry["userId"].as_str().unwrap();
            let total = entry["total"].as_u64().unwrap();
            assert_eq!(
                (total, entry["roundsPlayed"].as_u64().unwrap()),
                expected[user],
                "{user}"
            );
            assert!(total <= previous, "ranked by total");
            let better = expected.values().filter(|(t, _)| *t > total).count();
            assert_eq!(entry["rank"].as_u64(), Some(better as u64 + 1), "#{n}");
            previous = total;
        }
    }

    // Every tournament statement is timed (and, in a traced request, traced) like the game
    // store's: the operator sees them in the statement latency histogram.
    let metrics = origins[0].metrics().await;
    for statement in [
        "select_tournament",
        "select_tournament_tables",
        "claim_tournament_entry",
        "seat_tournament_entry",
    ] {
        assert!(
            metrics.contains(&format!(
                "seedsync_cassandra_statement_duration_seconds_count{{statement=\"{statement}\","
            )),
            "no latency of {statement} in /metrics: {}",
            metrics
                .lines()
                .filter(|l| l.contains("statement_duration_seconds_count"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    // Once settled, a finished round's scores are stored and read back, not recomputed: the
    // same standings everywhere, then (with round 1's stored row emptied here) without it.
    sleep_until(first_start + 2 * interval + 15_200).await;
    let (_, settled) = origins[2]
        .get(&format!("/tournaments/{id}/standings"))
        .await;
    let (_, before) = origins[0]
        .get(&format!("/tournaments/{id}/standings"))
        .await;
    assert_eq!(settled["entries"], before["entries"]);
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let keyspace = crate::common::KEYSPACE.as_str();
    let (stored,): (Option<String>,) = origins[0]
        .store
        .session()
        .query_unpaged(
            format!("SELECT scores FROM {keyspace}.tournament_scores WHERE tournament_id = ? AND round = 1"),
            (uuid,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    let stored: Vec<(String, u64)> = serde_json::from_str(&stored.unwrap()).unwrap();
    assert_eq!(stored.len(), 5, "round 1's five players: {stored:?}");
    origins[0]
        .store
        .session()
        .query_unpaged(
            format!("UPDATE {keyspace}.tournament_scores SET scores = '[]' WHERE tournament_id = ? AND round = 1"),
            (uuid,),
        )
        .await
        .unwrap();
    let (_, without) = origins[1]
        .get(&format!("/tournaments/{id}/standings"))
        .await;
    for entry in without["entries"].as_array().unwrap() {
        let user = entry["userId"].as_str().unwrap();
        let round1 = stored
            .iter()
            .find(|(u, _)| u == user)
            .map_or(0, |(_, v)| *v);
        assert_eq!(
            entry["total"].as_u64().unwrap(),
            expected[user].0 - round1,
            "{user}"
        );
    }
    for origin in origins {
        origin.stop().await;
    }
}

#[tokio::test]
async fn only_the_operator_creates_and_every_refusal_is_a_clear_error() {
    let origins = three_origins().await;
    let app = &origins[0];
    let body = json!({
        "name": "Refusals", "rounds": 2, "firstStartAt": now_ms() + 6_000,
        "intervalMs": 6_000, "tickMs": 100, "seatsPerTable": 2,
    });
    // Operator only: 401 without a token, 403 with another one.
    let (status, answer) = send(app, "POST", "/admin/tournaments", Some(&body), None).await;
    assert_eq!((status, code(&answer)), (401, "unauthorized"), "{answer}");
    let (status, answer) = send(
        app,
        "POST",
        "/admin/tournaments",
        Some(&body),
        Some("guess"),
    )
    .await;
    assert_eq!((status, code(&answer)), (403, "forbidden"), "{answer}");
    // Bad fields are named.
    for (change, field) in [
        (json!({"rounds": 0}), "rounds"),
        (json!({"rounds": 101}), "rounds"),
        (json!({"firstStartAt": now_ms() - 1}), "firstStartAt"),
        (json!({"intervalMs": 10}), "intervalMs"),
        (json!({"seatsPerTable": 101}), "seatsPerTable"),
        (json!({"tickMs": 0}), "tickMs"),
        (json!({"name": " "}), "name"),
    ] {
        let mut bad = body.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, answer) = create(app, &bad).await;
        assert_eq!(status, 422, "{change}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, t) = create(app, &body).await;
    assert_eq!(status, 201, "{t}");
    let id = t["tournamentId"].as_str().unwrap().to_owned();
    assert_eq!(t["algorithm"], "sealed-v1", "the default: {t}");
    // The costliest creation: 100 sealed rounds of the longest chain (86,400 keys each, at
    // tickMs 100), while the origin keeps answering (the hashing is off its async workers).
    let mut most = body.clone();
    most["rounds"] = json!(100);
    most["breakEvery"] = json!(20);
    let began = std::time::Instant::now();
    let (created, health) = tokio::join!(create(&origins[1], &most), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let began = std::time::Instant::now();
        let (status, _) = origins[1].get(&format!("/tournaments/{id}")).await;
        (status, began.elapsed())
    });
    let took = began.elapsed();
    assert_eq!(created.0, 201, "{}", created.1);
    assert_eq!(health.0, 200);
    eprintln!(
        "100 sealed rounds created in {took:?}; a read meanwhile took {:?}",
        health.1
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(health.1 < Duration::from_secs(2), "{:?}", health.1);

    // Unknown and forged ids, rounds out of range or not numbers.
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/tournaments/{unknown}"),
        format!("/tournaments/{unknown}/standings"),
    ] {
        let (status, answer) = origins[1].get(&path).await;
        assert_eq!(
            (status, code(&answer)),
            (404, "not_found"),
            "{path}: {answer}"
        );
    }
    let user = unique_user("r");
    let (status, answer) = join(&origins[2], &unknown.to_string(), 0, &user).await;
    assert_eq!((status, code(&answer)), (404, "not_found"), "{answer}");
    let (status, answer) = join(&origins[2], &id, 2, &user).await;
    assert_eq!((status, code(&answer)), (404, "not_found"), "{answer}");
    let (status, answer) = send(
        app,
        "POST",
        &format!("/tournaments/{id}/rounds/x/join"),
        Some(&json!({"userId": user})),
        None,
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (400, &json!("round")),
        "{answer}"
    );
    let (status, answer) = origins[1].get("/tournaments/not-a-uuid").await;
    assert_eq!(
        (status, &answer["error"]["field"]),
        (422, &json!("tournamentId")),
        "{answer}"
    );

    // A round takes joins until its start, then 410.
    let (status, seated) = join(&origins[1], &id, 0, &user).await;
    assert_eq!(status, 201, "{seated}");
    sleep_until(t["schedule"][0]["startAt"].as_i64().unwrap() + 50).await;
    let (status, answer) = join(&origins[0], &id, 0, &unique_user("late")).await;
    assert_eq!((status, code(&answer)), (410, "join_closed"), "{answer}");
    for origin in origins {
        origin.stop().await;
    }
}

#[tokio::test]
async fn a_round_opens_at_most_ten_tables_and_seats_nobody_twice() {
    let origins = three_origins().await;
    let (status, t) = create(
        &origins[0],
        &json!({
            "name": "Crowded", "rounds": 1, "firstStartAt": now_ms() + 30_000,
            "intervalMs": 30_000, "tickMs": 100, "seatsPerTable": 2,
        }),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let id = t["tournamentId"].as_str().unwrap().to_owned();
    // 23 players for 10 tables of 2 seats, at once over three origins; each asks twice.
    let players: Vec<String> = (0..23).map(|n| unique_user(&format!("c{n}"))).collect();
    let answers = join_all(
        players
            .iter()
            .chain(players.iter())
            .enumerate()
            .map(|(n, user)| join(&origins[n % 3], &id, 0, user)),
    )
    .await;
    let mut table_of: HashMap<&str, HashSet<String>> = HashMap::new();
    let mut per_table: HashMap<String, HashSet<&str>> = HashMap::new();
    let mut full = 0;
    for (user, (status, body)) in players.iter().chain(players.iter()).zip(&answers) {
        match status {
            200 | 201 => {
                let game = body["game"]["gameId"].as_str().unwrap().to_owned();
                table_of.entry(user).or_default().insert(game.clone());
                per_table.entry(game).or_default().insert(user);
            }
            409 => assert!(
                ["game_full", "already_playing"].contains(&code(body)),
                "{body}"
            ),
            other => panic!("join answered {other}: {body}"),
        }
        if code(body) == "game_full" {
            full += 1;
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("10 tables")
            );
        }
    }
    assert_eq!(per_table.len(), 10, "at most 10 tables: {per_table:?}");
    assert!(
        per_table.values().all(|users| users.len() == 2),
        "{per_table:?}"
    );
    assert!(
        table_of.values().all(|games| games.len() == 1),
        "one table each"
    );
    assert_eq!(table_of.len(), 20, "20 seated");
    assert!(full >= 3, "the 3 left over are refused: {full}");
    for origin in origins {
        origin.stop().await;
    }
}

/// A `sealed-v1` tournament (the default): both tables of a round play one chain (same
/// commitment), no answer holds a seed, the root or a key before its break, not even once one
/// table has ended while the other plays on; a table is joined only through the round's join
/// (a forged table marker in an ordinary start blocks nothing); the standings equal the sealed
/// engine's values from the revealed keys.
#[tokio::test]
async fn a_sealed_round_plays_one_hidden_chain_at_every_table() {
    use crate::sealed::{hex64, schedule};
    use shared_engine::sealed::{self, Key};

    let origins = three_origins().await;
    let first_start = now_ms() + 3_000;
    let interval = 5_000;
    let end_at = first_start + interval;
    let (status, t) = create(
        &origins[0],
        &json!({
            "name": "Sealed cup", "rounds": 1, "firstStartAt": first_start,
            "intervalMs": interval, "tickMs": 100, "breakEvery": 20, "seatsPerTable": 2,
        }),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["algorithm"], "sealed-v1", "the default: {t}");
    let id = t["tournamentId"].as_str().unwrap().to_owned();
    // (instant, source, text) of every answer.
    let mut seen: Vec<(i64, String, String)> = vec![(now_ms(), "create".into(), t.to_string())];

    // Four players, one after the other: two tables of two.
    let players: Vec<String> = (0..4).map(|n| unique_user(&format!("s{n}"))).collect();
    let mut seat_of: Vec<(String, String)> = Vec::new(); // (game id, token)
    let mut tables: BTreeMap<String, Value> = BTreeMap::new();
    for (n, user) in players.iter().enumerate() {
        let (status, body) = join(&origins[n % 3], &id, 0, user).await;
        assert_eq!(status, 201, "{user}: {body}");
        seen.push((now_ms(), format!("join {n}"), body.to_string()));
        let game = body["game"].clone();
        assert_eq!(game["algorithm"], "sealed-v1", "{game}");
        assert!(game.get("root").is_none_or(Value::is_null), "{game}");
        assert!(game.get("seed").is_none_or(|s| s == 0), "no seed: {game}");
        let game_id = game["gameId"].as_str().unwrap().to_owned();
        seat_of.push((
            game_id.clone(),
            body["ownerToken"].as_str().unwrap().to_owned(),
        ));
        tables.insert(game_id, game);
    }
    assert_eq!(tables.len(), 2, "two tables: {tables:?}");
    let commitments: HashSet<&Value> = tables.values().map(|g| &g["commitment"]).collect();
    assert_eq!(commitments.len(), 1, "one chain per round: {commitments:?}");
    let (table_a, table_b) = (seat_of[0].0.clone(), seat_of[2].0.clone());
    assert_eq!((&seat_of[1].0, &seat_of[3].0), (&table_a, &table_b));

    // A table is joined only through the round's join; a forged marker blocks nothing.
    let (status, answer) = send(
        &origins[1],
        "POST",
        &format!("/game/{table_a}/join"),
        Some(&json!({"userId": unique_user("direct")})),
        None,
    )
    .await;
    assert_eq!((status, code(&answer)), (409, "not_joinable"), "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains(&id),
        "names the tournament: {answer}"
    );
    let (status, forged) = send(
        &origins[2],
        "POST",
        "/game/start",
        Some(
            &json!({"userId": unique_user("forger"), "maxPlayers": 2, "tickMs": 100,
                     "metadata": {"tournamentId": id, "round": 0, "table": 0}}),
        ),
        None,
    )
    .await;
    assert_eq!(status, 201, "{forged}");
    let (status, answer) = send(
        &origins[0],
        "POST",
        &format!("/game/{}/join", forged["gameId"].as_str().unwrap()),
        Some(&json!({"userId": unique_user("guest")})),
        None,
    )
    .await;
    assert_eq!(
        status, 201,
        "an ordinary game with a forged marker: {answer}"
    );

    // Table A: both exit early (it ends); table B: one exits, one plays to the round's end.
    // Meanwhile every origin is polled.
    let exits_after = [1_200i64, 2_000, 3_000];
    let mut exited: HashMap<String, i64> = HashMap::new();
    let mut turn = 0usize;
    let mut next = 0usize;
    while now_ms() < end_at + 300 {
        if next < exits_after.len() && now_ms() >= first_start + exits_after[next] {
            let (game_id, token) = &seat_of[next];
            let (status, body) = exit(&origins[next % 3], game_id, &players[next], token).await;
            assert_eq!(status, 200, "{body}");
            seen.push((now_ms(), format!("exit {next}"), body.to_string()));
            exited.insert(players[next].clone(), body["exitedAt"].as_i64().unwrap());
            next += 1;
            continue;
        }
        let app = &origins[turn % 3];
        turn += 1;
        for path in [
            format!("/game/{table_a}"),
            format!("/game/{table_a}/rounds"),
            format!("/game/{table_b}/rounds"),
            format!("/game/{table_a}/results"),
            format!("/game/{table_b}/state"),
            format!("/tournaments/{id}"),
            format!("/tournaments/{id}/standings"),
        ] {
            let response = app.client.get(app.url(&path)).send().await.unwrap();
            let text = response.text().await.unwrap();
            seen.push((now_ms(), path, text));
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    assert_eq!(next, 3, "the three exits ran");

    // After the round: table A's root is public; it gives the whole chain of both tables.
    let (status, view) = origins[1].get(&format!("/game/{table_a}")).await;
    assert_eq!((status, &view["status"]), (200, &json!("exited")), "{view}");
    let root = Key::from_hex(view["root"].as_str().expect("the root after the round")).unwrap();
    let (params, reveal, keys) = schedule(&view, &root);
    let mut found = 0;
    // Until the round's end, that is: then the root of the ended table is public.
    for (at, source, text) in seen.iter().filter(|s| s.0 < end_at) {
        for (at_seed, _) in text.match_indices("\"seed\":") {
            let digit = text[at_seed + 7..].chars().next();
            assert!(
                !digit.is_some_and(|d| ('1'..='9').contains(&d)),
                "a seed in {source}: {text}"
            );
        }
        for token in hex64(text) {
            assert_ne!(token, root.to_string(), "the root in {source} at {at}");
            if let Some(&(round, reveal_at)) = reveal.get(token) {
                found += 1;
                assert!(
                    reveal_at <= *at,
                    "{source}: round {round}'s key at {at} before its reveal at {reveal_at}"
                );
            }
        }
    }
    assert!(found > 0, "keys came out at the breaks");

    // The standings: the sealed engine's value at each exit, or at the round's end.
    let value =
        |at: i64| match sealed::state_at(&params.clone().with_end(Some(at)), &keys, at).state {
            shared_engine::State::Ended(tick) => tick.map_or(0, |t| t.value),
            other => panic!("{other:?}"),
        };
    let (status, standings) = origins[2]
        .get(&format!("/tournaments/{id}/standings"))
        .await;
    assert_eq!(status, 200, "{standings}");
    let entries = standings["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{standings}");
    for entry in entries {
        let user = entry["userId"].as_str().unwrap();
        let expected = value(exited.get(user).copied().unwrap_or(end_at));
        assert_eq!(
            entry["total"].as_u64(),
            Some(expected),
            "{user}: {standings}"
        );
    }
    eprintln!(
        "sealed tournament: {found} keys seen in {} answers; totals {:?}",
        seen.len(),
        entries
            .iter()
            .map(|e| e["total"].clone())
            .collect::<Vec<_>>()
    );
    for origin in origins {
        origin.stop().await;
    }
}
