//! `sealed-v1` games at the origin (issue 24, docs/sealed.md), on the real Cassandra:
//! - during a live game, every origin path that could hold a key (start answer, views, state,
//!   replay, rounds, the user's game, the `/v1` routes, metrics, the events built from the
//!   views, the outbox rows, and the binary's own log at debug level) is polled, and once the
//!   root is out every key found is checked against its reveal instant: none is early, the root
//!   never appears before the end;
//! - a round answers 425 (with a public `retryAt`, never later than the real reveal) and then
//!   200 with the key that chains to the commitment;
//! - `origin replay --verify` accepts the game's public record and refuses every tampering;
//! - an exit at the break instant and one a millisecond later are judged "escaped" and
//!   "broken" alike by two origins sharing the keyspace;
//! - a shared sealed game's seats, exited through three origins, each get the sealed engine's
//!   state at their exit instant, and no answer holds a key early.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared_engine::sealed::{self, Key, SealedParams};

use crate::common::{KEYSPACE, now_ms, spawn_app, test_vars, unique_user};

const BINARY: &str = env!("CARGO_BIN_EXE_origin");

/// Every maximal run of exactly 64 lowercase hex digits in `text`.
pub(crate) fn hex64(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'a'..=b'f') {
            i += 1;
        }
        if i - start == 64 {
            out.push(&text[start..i]);
        }
        i = i.max(start + 1);
    }
    out
}

/// The origin binary on a free port, logging at debug level into `log`.
struct Origin {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl Origin {
    fn spawn(region: &str) -> Origin {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            std::env::temp_dir().join(format!("sealed-origin-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(BINARY);
        for (k, v) in test_vars() {
            command.env(k, v);
        }
        let child = command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("REGION", region)
            .env("CASSANDRA_KEYSPACE", KEYSPACE.as_str())
            .env(
                "CASSANDRA_HOSTS",
                std::env::var("CASSANDRA_HOSTS").unwrap_or_else(|_| "127.0.0.1:9042".into()),
            )
            .env("START_DELAY_MS", "300")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn origin");
        let origin = Origin {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(true) = probe::ready(&origin.url) {
                return origin;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "origin did not become ready; log at {}",
            origin.log.display()
        );
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny readiness probe without an async runtime.
mod probe {
    pub(super) fn ready(url: &str) -> std::io::Result<bool> {
        use std::io::{Read, Write};
        let address = url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address)?;
        stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply.starts_with("HTTP/1.1 200"))
    }
}

/// What one poll saw: when the answer was complete, from where, and its text.
struct Seen {
    at: i64,
    source: String,
    text: String,
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Every key and the instant it may be revealed, from the root.
pub(crate) fn schedule(
    view: &Value,
    root: &Key,
) -> (SealedParams, HashMap<String, (u64, i64)>, Vec<Key>) {
    let commitment = Key::from_hex(view["commitment"].as_str().unwrap()).unwrap();
    let params = SealedParams::new(
        view["startAt"].as_i64().unwrap(),
        view["tickMs"].as_u64().unwrap() as u32,
        view["breakEvery"].as_u64().unwrap() as u32,
        commitment,
    )
    .unwrap();
    let rounds = params.rounds();
    let mut keys = Vec::with_capacity(rounds as usize);
    let mut key = *root;
    for _ in 0..rounds {
        keys.push(key);
        key = sealed::hash(&key);
    }
    assert_eq!(key, commitment, "the root hashes down to the commitment");
    keys.reverse();
    let reveal: HashMap<String, (u64, i64)> = params
        .breaks(&keys)
        .zip(keys.iter())
        .enumerate()
        .map(|(i, (at, key))| (key.to_string(), (i as u64 + 1, params.reveal_at_ms(at))))
        .collect();
    (params, reveal, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_holds_a_key_before_its_reveal_and_the_record_verifies() {
    // The schema first (serialized with the other tests), then the real binary on it.
    let app = spawn_app("eu").await;
    let origin = Origin::spawn("eu");
    let client = reqwest::Client::new();
    let user = unique_user("sealed");
    let mut seen: Vec<Seen> = Vec::new();

    let response = client
        .post(format!("{}/game/start", origin.url))
        .json(&json!({"userId": user, "algorithm": "sealed-v1", "tickMs": 100, "breakEvery": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let started: Value = response.json().await.unwrap();
    seen.push(Seen {
        at: now_ms(),
        source: "start".into(),
        text: started.to_string(),
    });
    let id = started["gameId"].as_str().unwrap().to_owned();
    assert_eq!(started["algorithm"], "sealed-v1");
    assert_eq!(started["rounds"], 86_400);
    assert!(started.get("root").is_none(), "{started}");
    let token = started["ownerToken"].as_str().unwrap().to_owned();

    // A bad start: breakEvery below twice the shortest round (10 steps at 100 ms).
    let bad = client
        .post(format!("{}/game/start", origin.url))
        .json(&json!({"userId": unique_user("sealed-bad"), "algorithm": "sealed-v1", "tickMs": 100, "breakEvery": 19}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["field"], "breakEvery", "{bad}");

    // Poll everything for about 7 s (three or so rounds of mean 2 s).
    let deadline = Instant::now() + Duration::from_secs(7);
    let mut revealed = 0u64;
    // (round, retryAt, sent, answered) of every 425 on the next round; the rounds later
    // answered.
    let mut too_early: Vec<(u64, i64, i64, i64)> = Vec::new();
    let mut answered: HashMap<u64, i64> = HashMap::new();
    let v1_id = id.clone();
    while Instant::now() < deadline {
        let now = now_ms();
        let paths = [
            format!("/game/{id}"),
            format!("/game/{id}/state"),
            format!("/game/{id}/state?at={}", now - 1),
            format!("/game/{id}/replay?from=0&to=9999"),
            format!("/game/{id}/rounds"),
            format!("/users/{user}/game"),
            format!("/v1/sessions/{v1_id}"),
            format!("/v1/sessions/{v1_id}/state"),
            "/metrics".to_owned(),
        ];
        for path in &paths {
            let (_, _, text) = get(&client, &format!("{}{path}", origin.url)).await;
            seen.push(Seen {
                at: now_ms(),
                source: path.clone(),
                text,
            });
        }
        // The view as the events would carry it.
        let (_, _, text) = get(&client, &format!("{}/game/{id}", origin.url)).await;
        let view: api::GameView = serde_json::from_str(&text).unwrap();
        seen.push(Seen {
            at: now_ms(),
            source: "game.started event".into(),
            text: serde_json::to_string(&api::GameEvent::started(&view)).unwrap(),
        });
        // A state after now is refused.
        let (status, _, text) = get(
            &client,
            &format!("{}/game/{id}/state?at={}", origin.url, now + 5_000),
        )
        .await;
        assert_eq!(status, 425, "{text}");
        seen.push(Seen {
            at: now_ms(),
            source: "state in the future".into(),
            text,
        });
        // The next round: 425 until it breaks, then 200.
        let next = revealed + 1;
        let sent = now_ms();
        let (status, headers, text) = get(
            &client,
            &format!("{}/game/{id}/rounds?from={next}", origin.url),
        )
        .await;
        let at = now_ms();
        seen.push(Seen {
            at,
            source: format!("rounds?from={next}"),
            text: text.clone(),
        });
        let body: Value = serde_json::from_str(&text).unwrap();
        match status {
            425 => {
                let retry_at = body["error"]["retryAt"].as_i64().unwrap();
                assert_eq!(body["error"]["code"], "too_early");
                assert!(retry_at > sent, "{body}");
                let retry_after: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry_after >= 1);
                assert_eq!(headers["cache-control"], "no-store");
                too_early.push((next, retry_at, sent, at));
            }
            200 => {
                let rounds = body["rounds"].as_array().unwrap();
                assert!(!rounds.is_empty(), "{body}");
                revealed += rounds.len() as u64;
                answered.entry(next).or_insert(at);
                assert_eq!(headers["cache-control"], "no-cache");
            }
            other => panic!("rounds?from={next}: {other} {body}"),
        }
        // The outbox rows of the keyspace, whatever they hold.
        let rows = app
            .store
            .session()
            .query_unpaged(
                format!("SELECT * FROM {}.outbox_pending", KEYSPACE.as_str()),
                (),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap();
        seen.push(Seen {
            at: now_ms(),
            source: "outbox_pending".into(),
            text: format!(
                "{:?}",
                rows.rows::<scylla::value::Row>()
                    .unwrap()
                    .collect::<Vec<_>>()
            ),
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(revealed >= 1, "no round broke in 7 s");

    // The /v1 routes do not serve sealed games.
    let (status, _, text) = get(&client, &format!("{}/v1/sessions/{id}", origin.url)).await;
    assert_eq!(status, 404, "{text}");

    // Exit, then the root is public.
    let exit = client
        .post(format!("{}/game/exit", origin.url))
        .bearer_auth(&token)
        .json(&json!({"gameId": id, "userId": user}))
        .send()
        .await
        .unwrap();
    assert_eq!(exit.status().as_u16(), 200);
    let exited_at = now_ms();
    let (_, _, text) = get(&client, &format!("{}/game/{id}", origin.url)).await;
    let view: Value = serde_json::from_str(&text).unwrap();
    let root = Key::from_hex(view["root"].as_str().expect("the root after the end")).unwrap();
    let (params, reveal, keys) = schedule(&view, &root);

    // No key before its reveal instant, anywhere; no root before the end.
    let log = std::fs::read_to_string(&origin.log).unwrap();
    assert!(log.len() > 1_000, "the debug log was captured");
    let mut found = 0;
    for s in &seen {
        for token in hex64(&s.text) {
            assert_ne!(
                token,
                root.to_string(),
                "the root in {} at {}",
                s.source,
                s.at
            );
            if let Some(&(round, reveal_at)) = reveal.get(token) {
                found += 1;
                assert!(
                    reveal_at <= s.at,
                    "{}: round {round}'s key answered at {} before its reveal at {reveal_at}",
                    s.source,
                    s.at
                );
            }
        }
    }
    assert!(found > 0, "the polls saw the revealed keys");
    for token in hex64(&log) {
        assert_ne!(token, root.to_string(), "the root in the log");
        assert!(!reveal.contains_key(token), "a key in the log");
    }

    // 425 then 200 for a round, and the retry time was public and never late.
    assert!(
        too_early.iter().any(|(r, ..)| answered.contains_key(r)),
        "a round answered 425 and then 200"
    );
    // retryAt is public: the reveal of the shortest possible next round, or one poll (100 ms
    // at this tick) after the server's clock, whichever is later; never the real reveal.
    let breaks: Vec<u64> = params.breaks(&keys[..(revealed as usize + 1)]).collect();
    let m = params.min_round_steps();
    for &(r, retry_at, sent, at) in &too_early {
        let earliest = params.reveal_at_ms(match r {
            1 => m - 1,
            _ => breaks[r as usize - 2] + m,
        });
        let real = reveal[&keys[r as usize - 1].to_string()].1;
        assert!(
            retry_at == earliest || (sent + 100..=at + 100).contains(&retry_at),
            "round {r}: retryAt {retry_at}, earliest {earliest}, asked {sent}..{at}, reveal {real}"
        );
        assert!(
            retry_at <= real.max(at + 100),
            "round {r}: {retry_at} after {real}"
        );
    }

    // The public record verifies with `origin replay --verify`, and tampering fails.
    let mut rounds = Vec::new();
    let mut from = 1;
    loop {
        let (status, headers, text) = get(
            &client,
            &format!("{}/game/{id}/rounds?from={from}", origin.url),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let page: Value = serde_json::from_str(&text).unwrap();
        let page = page["rounds"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        from += page.len() as u64;
        rounds.extend(page);
    }
    let (_, _, final_state) = get(&client, &format!("{}/game/{id}/state", origin.url)).await;
    let final_state: Value = serde_json::from_str(&final_state).unwrap();
    assert_eq!(final_state["phase"], "ended");
    let last = final_state["step"].as_u64().unwrap();
    let (_, _, replay) = get(
        &client,
        &format!("{}/game/{id}/replay?from=0&to={last}", origin.url),
    )
    .await;
    let ticks = serde_json::from_str::<Value>(&replay).unwrap()["ticks"].clone();
    // The final state is the engine's, from the keys.
    let ended = params.clone().with_end(view["exitedAt"].as_i64());
    let engine = sealed::state_at(&ended, &keys, exited_at + 1);
    assert!(engine.settled);
    assert_eq!(
        serde_json::to_value(api::Phase::from(engine.state)).unwrap()["step"],
        final_state["step"]
    );
    let record = json!({"game": view, "rounds": rounds, "final": final_state, "ticks": ticks});
    let verify = |record: &Value, name: &str| -> (i32, String) {
        let path =
            std::env::temp_dir().join(format!("sealed-record-{}-{name}.json", std::process::id()));
        std::fs::write(&path, record.to_string()).unwrap();
        let output = Command::new(BINARY)
            .args(["replay", "--verify", path.to_str().unwrap()])
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        (
            output.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (code, out) = verify(&record, "good");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified"), "{out}");
    let flip = |text: &str| {
        let first = if text.starts_with('0') { "1" } else { "0" };
        format!("{first}{}", &text[1..])
    };
    let mut tampered: Vec<(&str, Value)> = Vec::new();
    let mut t = record.clone();
    let k = t["rounds"][0]["key"].as_str().unwrap().to_owned();
    t["rounds"][0]["key"] = json!(flip(&k));
    tampered.push(("key", t));
    let mut t = record.clone();
    let c = t["game"]["commitment"].as_str().unwrap().to_owned();
    t["game"]["commitment"] = json!(flip(&c));
    tampered.push(("commitment", t));
    let mut t = record.clone();
    let r = t["game"]["root"].as_str().unwrap().to_owned();
    t["game"]["root"] = json!(flip(&r));
    tampered.push(("root", t));
    let mut t = record.clone();
    let step = t["ticks"].as_array().unwrap().len() / 2;
    let broken = t["ticks"][step]["broken"].as_bool().unwrap();
    t["ticks"][step]["broken"] = json!(!broken);
    tampered.push(("step", t));
    let mut t = record.clone();
    t["final"]["round"] = json!(t["final"]["round"].as_u64().unwrap() + 1);
    tampered.push(("final", t));
    for (name, t) in tampered {
        let (code, out) = verify(&t, name);
        assert_eq!(code, 1, "tampered {name} was accepted: {out}");
        assert!(out.contains("NOT verified"), "{name}: {out}");
    }
    drop(origin);
    app.stop().await;
}

#[tokio::test]
async fn an_exit_at_the_break_instant_is_judged_alike_by_two_origins() {
    let eu = spawn_app("eu").await;
    let us = spawn_app("us").await;
    // Two games; each exit is written at a chosen instant of the origin's clock (the store's
    // exit LWT, which the exit route calls with `now`).
    let mut judged = Vec::new();
    for offset in [0i64, 1] {
        let user = unique_user("sealed-exit");
        let (status, game) = eu
            .post(
                "/game/start",
                &json!({"userId": user, "algorithm": "sealed-v1", "tickMs": 100, "breakEvery": 20}),
            )
            .await;
        assert_eq!(status, 201, "{game}");
        let id = game["gameId"].as_str().unwrap().to_owned();
        // Wait for round 1's key, from the other origin.
        let deadline = Instant::now() + Duration::from_secs(30);
        let key = loop {
            let (status, body) = us.get(&format!("/game/{id}/rounds?from=1")).await;
            if status == 200 {
                break Key::from_hex(body["rounds"][0]["key"].as_str().unwrap()).unwrap();
            }
            assert_eq!(status, 425, "{body}");
            assert!(Instant::now() < deadline, "round 1 never broke");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let commitment = Key::from_hex(game["commitment"].as_str().unwrap()).unwrap();
        assert_eq!(sealed::hash(&key), commitment);
        let params =
            SealedParams::new(game["startAt"].as_i64().unwrap(), 100, 20, commitment).unwrap();
        let break_step = params.round_length(&key) - 1;
        let exit_at = params.step_start_ms(break_step) + offset;
        let gid = api::GameId::parse(&id).unwrap();
        use origin::store::GameStore;
        let stored = eu.store.game(gid).await.unwrap().expect("stored");
        eu.store.exit_game(&stored, exit_at, 86_400).await.unwrap();
        let (_, from_eu) = eu.get(&format!("/game/{id}/state")).await;
        let (_, from_us) = us.get(&format!("/game/{id}/state")).await;
        let strip = |mut v: Value| {
            v.as_object_mut().unwrap().remove("at");
            v
        };
        assert_eq!(strip(from_eu.clone()), strip(from_us.clone()));
        assert_eq!(from_eu["phase"], "ended");
        // The engine, from the public key alone, agrees.
        let ended = params.clone().with_end(Some(exit_at));
        let engine = sealed::state_at(&ended, &[key], exit_at);
        assert!(engine.settled);
        let phase = serde_json::to_value(api::Phase::from(engine.state)).unwrap();
        assert_eq!(phase["broken"], from_eu["broken"]);
        assert_eq!(phase["step"], from_eu["step"]);
        judged.push((
            from_eu["broken"].as_bool().unwrap(),
            from_eu["round"].as_u64().unwrap(),
            from_eu["step"].as_u64().unwrap(),
            break_step,
        ));
    }
    // At the break instant the game froze the step before the break: escaped, round 0.
    let (broken, round, step, at) = judged[0];
    assert_eq!((broken, round, step), (false, 0, at - 1));
    // One millisecond later (the key's reveal instant), the break step: broken, round 1.
    let (broken, round, step, at) = judged[1];
    assert_eq!((broken, round, step), (true, 1, at));
    eu.stop().await;
    us.stop().await;
}

/// POST JSON (with a bearer token, if any) to `app`; the status and the body's text.
async fn post_text(
    app: &crate::common::TestApp,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> (u16, String) {
    let mut request = app.client.post(app.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Three players of one sealed game, on three origins (eu, us, asia) of one keyspace, exit at
/// different times each through a different origin: every seat's result is judged by the
/// origin's clock (its `exitedAt` lies within the exit request) and equals the sealed engine's
/// ended state at that instant, computed here from the keys the rounds pages reveal after the
/// end (checked against the commitment published at the start). No answer of any origin
/// during the game (start, joins, exits, results, views, states, rounds) holds a key before
/// its reveal instant, nor the root before the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_sealed_game_judges_every_seat_from_the_chain_on_every_origin() {
    let origins = [
        spawn_app("eu").await,
        spawn_app("us").await,
        spawn_app("asia").await,
    ];
    let mut seen: Vec<Seen> = Vec::new();
    let host = unique_user("sealed-host");
    let (status, text) = post_text(
        &origins[0],
        "/game/start",
        &json!({"userId": host, "algorithm": "sealed-v1", "tickMs": 100, "breakEvery": 20,
                "maxPlayers": 3, "joinDeadline": now_ms() + 30_000}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{text}");
    seen.push(Seen {
        at: now_ms(),
        source: "start".into(),
        text: text.clone(),
    });
    let game: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(game["algorithm"], "sealed-v1");
    assert_eq!(game["shared"]["maxPlayers"], 3, "{game}");
    let id = game["gameId"].as_str().unwrap().to_owned();
    let start_at = game["startAt"].as_i64().unwrap();
    let commitment = Key::from_hex(game["commitment"].as_str().unwrap()).unwrap();
    // (user, token, origin index, exit instant after the start)
    let mut players = vec![(
        host.clone(),
        game["ownerToken"].as_str().unwrap().to_owned(),
        0usize,
        7_500i64,
    )];
    for (n, exit_after) in [(1usize, 4_500i64), (2, 1_700)] {
        let user = unique_user(&format!("sealed-p{n}"));
        let (status, text) = post_text(
            &origins[n],
            &format!("/game/{id}/join"),
            &json!({"userId": user}),
            None,
        )
        .await;
        assert_eq!(status, 201, "{text}");
        seen.push(Seen {
            at: now_ms(),
            source: format!("join via {n}"),
            text: text.clone(),
        });
        let seat: Value = serde_json::from_str(&text).unwrap();
        players.push((
            user,
            seat["ownerToken"].as_str().unwrap().to_owned(),
            n,
            exit_after,
        ));
    }
    players.sort_by_key(|p| p.3);

    // Poll every origin until each exit is due, then exit through the player's origin.
    // (user, exitedAt answered, sent, answered)
    let mut exits: Vec<(String, Value, i64, i64)> = Vec::new();
    let mut turn = 0usize;
    for (user, token, origin, after) in &players {
        while now_ms() < start_at + after {
            let app = &origins[turn % 3];
            turn += 1;
            for path in [
                format!("/game/{id}"),
                format!("/game/{id}/results"),
                format!("/game/{id}/state"),
                format!("/game/{id}/rounds"),
                format!("/users/{host}/game"),
            ] {
                let response = app.client.get(app.url(&path)).send().await.unwrap();
                let text = response.text().await.unwrap();
                seen.push(Seen {
                    at: now_ms(),
                    source: path,
                    text,
                });
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        let sent = now_ms();
        let (status, text) = post_text(
            &origins[*origin],
            "/game/exit",
            &json!({"gameId": id, "userId": user}),
            Some(token),
        )
        .await;
        let answered = now_ms();
        assert_eq!(status, 200, "{text}");
        seen.push(Seen {
            at: answered,
            source: format!("exit via {origin}"),
            text: text.clone(),
        });
        let body: Value = serde_json::from_str(&text).unwrap();
        exits.push((user.clone(), body["result"].clone(), sent, answered));
    }

    // After the end: the root, and the keys as the rounds pages reveal them.
    let (status, view) = origins[1].get(&format!("/game/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "exited", "{view}");
    let root = Key::from_hex(view["root"].as_str().expect("the root after the end")).unwrap();
    let (params, reveal, _) = schedule(&view, &root);
    let mut keys: Vec<Key> = Vec::new();
    loop {
        let (status, page) = origins[2]
            .get(&format!("/game/{id}/rounds?from={}", keys.len() + 1))
            .await;
        assert_eq!(status, 200, "{page}");
        let page = page["rounds"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        keys.extend(
            page.iter()
                .map(|r| Key::from_hex(r["key"].as_str().unwrap()).unwrap()),
        );
    }
    assert_eq!(sealed::verify_chain(&commitment, &keys), Ok(()));

    // Every seat's result: the server's clock within the request, the engine's state then.
    let (_, results) = origins[0].get(&format!("/game/{id}/results")).await;
    assert_eq!(results["status"], "exited", "{results}");
    let seats = results["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 3, "{results}");
    let mut broke_first = Vec::new();
    for (user, answered_result, sent, answered) in &exits {
        let seat = seats
            .iter()
            .find(|s| s["userId"] == user.as_str())
            .unwrap_or_else(|| panic!("no seat of {user}: {results}"));
        assert_eq!(&seat["result"], answered_result, "{user}");
        let result: api::SeatResult = serde_json::from_value(seat["result"].clone()).unwrap();
        let at = result.exited_at;
        assert!(
            (*sent..=*answered).contains(&at),
            "{user}: exitedAt {at} outside its request {sent}..{answered}"
        );
        let engine = sealed::state_at(&params.clone().with_end(Some(at)), &keys, at);
        assert!(engine.settled, "{user}: the public keys settle the exit");
        let shared_engine::State::Ended(tick) = engine.state else {
            panic!("{user}: {engine:?}");
        };
        assert_eq!(
            result.final_tick,
            tick.map(api::TickView::from),
            "{user}: exited at {at}"
        );
        assert_eq!(result.break_first, tick.is_some_and(|t| t.round > 0));
        assert!(result.final_tick.is_some(), "{user} exited after step 0");
        broke_first.push((result.final_tick.unwrap().step, result.break_first));
    }
    let ended_at = view["exitedAt"].as_i64().unwrap();
    assert_eq!(
        ended_at,
        exits
            .iter()
            .map(|e| e.1["exitedAt"].as_i64().unwrap())
            .max()
            .unwrap()
    );
    assert!(
        seen.iter()
            .filter(|s| s.source.ends_with("/rounds"))
            .count()
            > 10,
        "the polls ran"
    );

    // No key before its reveal, no root before the end, in anything an origin answered.
    let mut found = 0;
    for s in &seen {
        for token in hex64(&s.text) {
            if s.at < ended_at {
                assert_ne!(
                    token,
                    root.to_string(),
                    "the root in {} at {}",
                    s.source,
                    s.at
                );
            }
            if let Some(&(round, reveal_at)) = reveal.get(token) {
                found += 1;
                assert!(
                    reveal_at <= s.at,
                    "{}: round {round}'s key answered at {} before its reveal at {reveal_at}",
                    s.source,
                    s.at
                );
            }
        }
    }
    eprintln!(
        "shared sealed game: seats (step, breakFirst) {broke_first:?}; {found} keys seen in {} answers",
        seen.len()
    );
    for app in origins {
        app.stop().await;
    }
}

/// The sealed columns are cells of the game's row: the start writes them with the row's TTL.
#[tokio::test]
async fn the_sealed_columns_expire_with_their_row() {
    let app = spawn_app("eu").await;
    let user = unique_user("sealed-ttl");
    let (status, game) = app
        .post(
            "/game/start",
            &json!({"userId": user, "algorithm": "sealed-v1"}),
        )
        .await;
    assert_eq!(status, 201, "{game}");
    let id = uuid::Uuid::parse_str(game["gameId"].as_str().unwrap()).unwrap();
    let ks = KEYSPACE.as_str();
    let row = app
        .store
        .session()
        .query_unpaged(
            format!(
                "SELECT TTL(user_id), TTL(sealed_root), TTL(sealed_commitment) FROM {ks}.games \
                 WHERE game_id = ?"
            ),
            (id,),
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row::<(Option<i32>, Option<i32>, Option<i32>)>()
        .unwrap();
    let (Some(user_ttl), Some(root_ttl), Some(commitment_ttl)) = row else {
        panic!("a cell without a TTL: {row:?}");
    };
    assert!(user_ttl > 0, "{row:?}");
    // Written by the same statement: the same TTL, give or take the second it took to read.
    assert!((user_ttl - root_ttl).abs() <= 1, "{row:?}");
    assert!((user_ttl - commitment_ttl).abs() <= 1, "{row:?}");
}
