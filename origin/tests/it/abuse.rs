//! One client against everyone else, through a real origin on a real Cassandra and real
//! sockets: a slow-body attacker must not starve an honest client (and does starve it with the
//! defences turned off, so the first test can fail), and a read past an algorithm's engine
//! horizon is refused before any engine work.

use crate::common::{self, TestApp, spawn_app_with, unique_user};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The attacker's address, as a trusted proxy (the test itself, on 127.0.0.1) reports it.
const ATTACKER: &str = "203.0.113.9";
/// The honest client's.
const HONEST: &str = "198.51.100.7";
/// Connections the attacker keeps open at once: more than all the in-flight slots.
const ATTACK_CONNECTIONS: usize = 40;
/// How long the attack (and the honest client's traffic under it) lasts.
const ATTACK_FOR: Duration = Duration::from_secs(5);

/// An origin whose in-flight slots are few (16), behind a trusted proxy on 127.0.0.1 so that
/// `X-Forwarded-For` names the client, with rate limits off so only the slot defences decide.
async fn origin(region: &str, defences: &[(&str, &str)]) -> TestApp {
    let mut extra = vec![
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("MAX_IN_FLIGHT", "16"),
        ("RATE_LIMIT_START", "off"),
        ("RATE_LIMIT_READ", "off"),
        ("REQUEST_TIMEOUT_SECONDS", "30"),
    ];
    extra.extend_from_slice(defences);
    spawn_app_with(common::settings_with(region, &extra)).await
}

/// What the attacker's connections were answered.
#[derive(Debug, Default)]
struct AttackTally {
    connections: AtomicU64,
    timed_out_408: AtomicU64,
    refused_429: AtomicU64,
    other: AtomicU64,
}

/// One attacking connection, over and over until `stop`: headers of a start with a 2,000-byte
/// body, then one byte every 200 ms, reading whatever the server answers.
async fn slow_body_connection(address: String, stop: Arc<AtomicBool>, tally: Arc<AttackTally>) {
    let host = address.trim_start_matches("http://").to_string();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut socket) = TcpStream::connect(&host).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.connections.fetch_add(1, Ordering::Relaxed);
        let head = format!(
            "POST /game/start HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {ATTACKER}\r\n\
             Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        );
        if socket.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let mut answer = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // Dribble one byte, then see whether the server has answered (and so gave up).
            if socket.write_all(b" ").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        let status_line = String::from_utf8_lossy(&answer);
        let counter = if status_line.starts_with("HTTP/1.1 408") {
            &tally.timed_out_408
        } else if status_line.starts_with("HTTP/1.1 429") {
            &tally.refused_429
        } else {
            &tally.other
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the honest client saw: requests made, and the statuses that were not 2xx.
#[derive(Debug)]
struct HonestTally {
    requests: usize,
    failures: Vec<u16>,
    slowest: Duration,
}

/// The honest client: one start, then reads of its game, one after another, for `for_how_long`.
async fn honest_client(app: &TestApp, for_how_long: Duration) -> HonestTally {
    let user = unique_user("honest");
    let mut failures = Vec::new();
    let mut requests = 0;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    let mut game_id: Option<String> = None;
    while started.elapsed() < for_how_long {
        let sent = Instant::now();
        let response = match &game_id {
            None => app
                .client
                .post(app.url("/game/start"))
                .header("x-forwarded-for", HONEST)
                .json(&json!({ "userId": user }))
                .send()
                .await
                .unwrap(),
            Some(id) => app
                .client
                .get(app.url(&format!("/game/{id}")))
                .header("x-forwarded-for", HONEST)
                .send()
                .await
                .unwrap(),
        };
        slowest = slowest.max(sent.elapsed());
        requests += 1;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            if game_id.is_none() {
                let body: Value = response.json().await.unwrap();
                game_id = body["gameId"].as_str().map(str::to_string);
            }
        } else {
            failures.push(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    HonestTally {
        requests,
        failures,
        slowest,
    }
}

/// Runs the slow-body attack against `app` while the honest client plays, and returns both
/// tallies once every attacking connection is closed.
async fn attack(app: &TestApp) -> (HonestTally, Arc<AttackTally>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(AttackTally::default());
    let attackers: Vec<_> = (0..ATTACK_CONNECTIONS)
        .map(|_| {
            tokio::spawn(slow_body_connection(
                app.address.clone(),
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    // Let the attack take hold before the honest client arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let honest = honest_client(app, ATTACK_FOR).await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.await.unwrap();
    }
    (honest, tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_body_attacker_cannot_starve_an_honest_client() {
    let app = origin(
        "abuse-on",
        &[
            ("MAX_IN_FLIGHT_PER_CLIENT", "4"),
            ("BODY_READ_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let (honest, tally) = attack(&app).await;
    println!("defences on: honest {honest:?}; attacker {tally:?}");
    assert!(
        honest.requests >= 10,
        "the honest client made only {} requests in {ATTACK_FOR:?} (slowest {:?})",
        honest.requests,
        honest.slowest
    );
    assert!(
        honest.failures.is_empty(),
        "the honest client failed {} of {} requests under the attack: {:?}",
        honest.failures.len(),
        honest.requests,
        honest.failures
    );
    // Both defences acted: dribbled bodies were cut at the deadline, extra connections refused.
    assert!(tally.timed_out_408.load(Ordering::Relaxed) > 0, "{tally:?}");
    assert!(tally.refused_429.load(Ordering::Relaxed) > 0, "{tally:?}");
    let metrics = app.metrics().await;
    for reason in ["client_in_flight", "slow_body"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.contains(&format!("reason=\"{reason}\"")) && !l.ends_with(" 0")),
            "no rejections counted for {reason}:\n{metrics}"
        );
    }
    app.stop().await;
}

/// The same attack against an origin without the per-client cap and with a long body timeout:
/// the honest client is refused, which is what the test above guards against.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_defences_the_same_attack_starves_the_honest_client() {
    let app = origin(
        "abuse-off",
        &[
            ("MAX_IN_FLIGHT_PER_CLIENT", "off"),
            ("BODY_READ_TIMEOUT_SECONDS", "300"),
        ],
    )
    .await;
    let (honest, tally) = attack(&app).await;
    println!("defences off: honest {honest:?}; attacker {tally:?}");
    assert!(
        honest.failures.iter().filter(|s| **s == 503).count() * 2 >= honest.requests,
        "expected most honest requests shed with 503 while the attacker holds every slot: {honest:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_read_past_the_engine_horizon_is_refused_naming_the_field() {
    let app = spawn_app_with(common::settings_with("abuse-horizon", &[])).await;
    let user = unique_user("horizon");
    let (status, game) = app
        .post(
            "/game/start",
            &json!({ "userId": user, "tickMs": 1, "algorithm": "lcg32" }),
        )
        .await;
    assert_eq!(status, 201, "{game}");
    let id = game["gameId"].as_str().unwrap();
    let start_at = game["startAt"].as_i64().unwrap();

    // Within the horizon: answered.
    let (status, body) = app
        .get(&format!("/game/{id}/state?at={}", start_at + 1_000))
        .await;
    assert_eq!(status, 200, "{body}");

    // 1e8 steps of 1 ms past the start: lcg32's horizon is far below; refused at once.
    let asked = Instant::now();
    let (status, body) = app
        .get(&format!("/game/{id}/state?at={}", start_at + 100_000_000))
        .await;
    let took = asked.elapsed();
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("lcg32"), "{body}");
    assert!(
        body.to_string().contains("\"at\""),
        "the error names the field: {body}"
    );
    println!("refused past the horizon in {took:?}");

    let (status, body) = app
        .get(&format!("/game/{id}/replay?from=99999990&to=100000000"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("from") || body.to_string().contains("to"),
        "{body}"
    );
    app.stop().await;
}

/// Whether the server closed `socket` (EOF, reset, or an answer followed by EOF) within `wait`.
async fn closed_within(socket: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An error answer before closing is fine; keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed_at_the_header_deadline() {
    let app = spawn_app_with(common::settings_with(
        "abuse-headers",
        &[("HEADER_READ_TIMEOUT_SECONDS", "1")],
    ))
    .await;
    let host = app.address.trim_start_matches("http://").to_string();

    // Half a request, then silence: closed after about a second.
    let mut half = TcpStream::connect(&host).await.unwrap();
    half.write_all(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n").as_bytes())
        .await
        .unwrap();
    let waited = Instant::now();
    assert!(
        closed_within(&mut half, Duration::from_secs(5)).await,
        "a connection with half-sent headers was still open after 5 s"
    );
    let took = waited.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );

    // A whole request is answered; the connection then idles and is closed at the deadline.
    let mut idle = TcpStream::connect(&host).await.unwrap();
    idle.write_all(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = idle.read(&mut buffer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle keep-alive connection was still open after 5 s"
    );
    println!("half-sent headers closed after {took:?}");
    app.stop().await;
}

#[tokio::test]
async fn with_the_default_header_deadline_half_sent_headers_wait_longer() {
    // The control for the test above: the same half request on an origin with the default
    // deadline (10 s) is still open after 2 s, so the closing above is the setting's doing.
    let app = spawn_app_with(common::settings_with("abuse-headers-default", &[])).await;
    let host = app.address.trim_start_matches("http://").to_string();
    let mut half = TcpStream::connect(&host).await.unwrap();
    half.write_all(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n").as_bytes())
        .await
        .unwrap();
    assert!(!closed_within(&mut half, Duration::from_secs(2)).await);
    drop(half);
    app.stop().await;
}

#[tokio::test]
async fn probes_spend_a_budget_of_their_own_per_client() {
    let app = spawn_app_with(common::settings_with(
        "abuse-probes",
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("RATE_LIMIT_PROBE", "5/60"),
        ],
    ))
    .await;
    let probe = |path: &'static str, client: &'static str| {
        app.client
            .get(app.url(path))
            .header("x-forwarded-for", client)
            .send()
    };
    for path in ["/health", "/ready", "/healthz", "/metrics", "/ready"] {
        let response = probe(path, ATTACKER).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let refused = probe("/ready", ATTACKER).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Another client's probes are untouched.
    assert_eq!(probe("/ready", HONEST).await.unwrap().status(), 200);
    // A made-up method on a probe's path is no probe: the ordinary budget and a 405.
    let other = app
        .client
        .request(
            reqwest::Method::from_bytes(b"PROBEFLOOD").unwrap(),
            app.url("/health"),
        )
        .header("x-forwarded-for", ATTACKER)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 405);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", HONEST)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reason=\"probe\"") && !metrics.contains("PROBEFLOOD"),
        "{metrics}"
    );
    app.stop().await;
}

/// A start from `client` for a fresh user with `bytes` of metadata (as stored: compact JSON).
async fn start_with_metadata(app: &TestApp, client: &str, bytes: usize) -> reqwest::Response {
    // {"m":"xxx..."} is 8 bytes plus the string.
    let metadata = json!({ "m": "x".repeat(bytes.saturating_sub(8)) });
    assert_eq!(metadata.to_string().len(), bytes.max(8));
    app.client
        .post(app.url("/game/start"))
        .header("x-forwarded-for", client)
        .json(&json!({ "userId": unique_user("meta"), "metadata": metadata }))
        .send()
        .await
        .unwrap()
}

async fn metadata_origin(budget: &str) -> TestApp {
    spawn_app_with(common::settings_with(
        "abuse-metadata",
        &[
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("METADATA_BUDGET_BYTES_PER_MINUTE", budget),
        ],
    ))
    .await
}

#[tokio::test]
async fn metadata_bytes_spend_a_budget_of_their_own_per_client() {
    let app = metadata_origin("10000").await;
    // Two full-size objects fit the budget; the third is refused, naming the budget.
    for _ in 0..2 {
        assert_eq!(
            start_with_metadata(&app, ATTACKER, 4_096).await.status(),
            201
        );
    }
    let refused = start_with_metadata(&app, ATTACKER, 4_096).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("METADATA_BUDGET_BYTES_PER_MINUTE"),
        "{body}"
    );
    // What is left (10000 - 8192 bytes) still takes a small object, and starts without
    // metadata are not this budget's business.
    assert_eq!(
        start_with_metadata(&app, ATTACKER, 1_000).await.status(),
        201
    );
    assert_eq!(
        start_with_metadata(&app, ATTACKER, 1_000).await.status(),
        429
    );
    let bare = app
        .client
        .post(app.url("/game/start"))
        .header("x-forwarded-for", ATTACKER)
        .json(&json!({ "userId": unique_user("meta-bare") }))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 201);
    // Another client's budget is its own.
    assert_eq!(start_with_metadata(&app, HONEST, 4_096).await.status(), 201);
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("reason=\"metadata\"") && l.ends_with(" 2")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_the_metadata_budget_one_client_sends_metadata_unchecked() {
    // The control for the test above: the same starts with the budget off all pass.
    let app = metadata_origin("off").await;
    for _ in 0..4 {
        assert_eq!(
            start_with_metadata(&app, ATTACKER, 4_096).await.status(),
            201
        );
    }
    app.stop().await;
}
