//! Game events end to end: origins on the real Cassandra with the outbox and relay on, a real
//! nats-server (JetStream), and a deduping consumer reading what arrived.
//!
//! `make test` runs these in its `events` stage (`cargo test -p origin --test it --
//! --ignored events::`) against the one nats-server that stage starts; run alone they start their own.
//! They run one at a time (one stops the broker) and each uses a region of its own, which is
//! the subject the consumer filters on, so they never read each other's events.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{EventType, GameEvent, GameId, GameView};
use events::testkit::NatsServer;
use events::{Consumer, StartFrom};
use origin::StartupError;
use origin::config::{EventSettings, Settings};
use origin::outbox::{OutboxStore, RelaySettings, SHARDS};
use origin::store::Store;
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};

/// One test at a time: one of them stops the broker, and the rate measurements need the
/// machine to themselves.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn unique_region() -> String {
    format!("ev{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// An origin with events on, served on 127.0.0.1:0.
struct EventApp {
    address: String,
    client: reqwest::Client,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    /// The application serving (and relaying) until `shutdown`.
    server: Option<tokio::task::JoinHandle<Result<(), StartupError>>>,
}

fn event_settings(region: &str, nats: &NatsServer) -> Settings {
    let mut settings = common::settings(region);
    settings.events = Some(EventSettings {
        nats_url: nats.url(),
        stream_replicas: None,
        broker_sync: events::stream::parse_sync_interval(&events::testkit::sync_policy()).unwrap(),
    });
    settings
}

async fn spawn_event_app(settings: &Settings, relay: RelaySettings) -> EventApp {
    let mut settings = settings.clone();
    settings.relay_pacing = Some(relay);
    let application = common::build(settings).await;
    assert!(application.relays_events(), "NATS_URL set: the relay runs");
    let address = format!("http://{}", application.local_addr());
    let store = application
        .cassandra_store()
        .expect("events run on Cassandra")
        .clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = rx.await;
    }));
    EventApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        store,
        shutdown: Some(tx),
        server: Some(server),
    }
}

fn default_relay(settings: &Settings) -> RelaySettings {
    settings.relay()
}

impl EventApp {
    async fn post(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Starts a game for a fresh user and exits it; the game id, or why not.
    async fn start_and_exit(&self, user: &str) -> Result<GameId, String> {
        let (status, game) = self
            .post("/game/start", &json!({ "userId": user }), None)
            .await?;
        if status != 201 {
            return Err(format!("start: {status} {game}"));
        }
        let id = game["gameId"].as_str().unwrap_or_default().to_owned();
        // The exit proves ownership with the token the start answered.
        let token = game["ownerToken"].as_str().map(str::to_owned);
        let (status, body) = self
            .post(
                "/game/exit",
                &json!({ "gameId": id, "userId": user }),
                token.as_deref(),
            )
            .await?;
        if status != 200 {
            return Err(format!("exit: {status} {body}"));
        }
        GameId::parse(&id).map_err(|e| e.to_string())
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// SIGTERM-like: drain requests, then the relay's last pass (both in
    /// `run_until_stopped`).
    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// A crash: the server and the relay stop where they are, nothing drains (abandoning
    /// `run_until_stopped` aborts the relay).
    fn kill(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// What a deduping consumer of one region has seen.
#[derive(Debug, Default)]
struct Seen {
    started: HashSet<GameId>,
    exited: HashSet<GameId>,
    duplicates: u64,
    lags_ms: Vec<i64>,
    events: Vec<GameEvent>,
}

impl Seen {
    fn total(&self) -> usize {
        self.started.len() + self.exited.len()
    }
}

async fn consumer_for(nats: &NatsServer, region: &str) -> Consumer {
    let client = events::connect(&nats.url(), "origin-events-test", true)
        .await
        .unwrap();
    Consumer::new(client, StartFrom::All, vec![format!("game.*.{region}")])
        .await
        .unwrap()
}

/// Reads until `want` distinct events arrived, or `patience` passes without a new one.
async fn collect(consumer: &mut Consumer, seen: &mut Seen, want: usize, patience: Duration) {
    while seen.total() < want {
        match tokio::time::timeout(patience, consumer.next()).await {
            Ok(Ok(r)) => {
                if !r.first_time {
                    seen.duplicates += 1;
                    continue;
                }
                seen.lags_ms.push(r.lag_ms());
                let fresh = match r.event.kind {
                    EventType::Started => seen.started.insert(r.event.game_id),
                    EventType::Exited => seen.exited.insert(r.event.game_id),
                };
                assert!(fresh, "a first delivery of a known game: {:?}", r.event);
                seen.events.push(r.event);
            }
            Ok(Err(e)) => eprintln!("consumer: {e}"),
            Err(_) => break,
        }
    }
}

/// Starts and exits `n` games with `concurrency` workers; every request must succeed.
async fn play(app: &Arc<EventApp>, n: usize, concurrency: usize) -> Vec<GameId> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let app = app.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let user = common::unique_user("ev");
                    ids.push(app.start_and_exit(&user).await.expect("start and exit"));
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for worker in workers {
        ids.extend(worker.await.unwrap());
    }
    ids
}

/// The value of an unlabelled (but for `region`) metric.
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn p99(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    kernel::stats::nearest_rank(&values, 99).unwrap_or(0)
}

async fn pending_rows(store: &Store, region: &str) -> usize {
    let region = api::RegionName::parse(region).unwrap();
    let mut n = 0;
    for shard in 0..SHARDS {
        n += store
            .pending_page(&region, shard, 0, None, 10_000)
            .await
            .unwrap()
            .len();
    }
    n
}

#[tokio::test]
#[ignore = "events stage: real Cassandra and nats-server (make test, or --ignored)"]
async fn a_thousand_games_give_exactly_a_thousand_starts_and_exits() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::for_tests().await;
    let region = unique_region();
    let settings = event_settings(&region, &nats);
    let app = Arc::new(spawn_event_app(&settings, default_relay(&settings)).await);
    // Consuming while the games are played, so the lag is the live one.
    let mut consumer = consumer_for(&nats, &region).await;
    let reader = tokio::spawn(async move {
        let mut seen = Seen::default();
        collect(&mut consumer, &mut seen, 2_000, Duration::from_secs(60)).await;
        (consumer, seen)
    });

    let started = Instant::now();
    let ids = play(&app, 1_000, 16).await;
    let played = started.elapsed();
    let (mut consumer, seen) = reader.await.unwrap();
    eprintln!(
        "1000 starts + exits in {played:?}; consumed {} started, {} exited, {} duplicates; \
         lag commit->consumer p99 {} ms",
        seen.started.len(),
        seen.exited.len(),
        seen.duplicates,
        p99(seen.lags_ms.clone())
    );
    let ids: HashSet<GameId> = ids.into_iter().collect();
    assert_eq!(ids.len(), 1_000);
    assert_eq!(seen.started, ids, "every start, once");
    assert_eq!(seen.exited, ids, "every exit, once");

    // The events are the committed games: compare a few with the API's view of them.
    for event in seen.events.iter().take(20) {
        let view: GameView = app
            .client
            .get(format!("{}/game/{}", app.address, event.game_id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expected = match event.kind {
            EventType::Started => GameEvent::started(&view),
            EventType::Exited => GameEvent::exited(&view).unwrap(),
        };
        assert_eq!(event, &expected);
    }
    // Nothing else arrives, and the outbox is empty.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), consumer.next())
            .await
            .is_err()
    );
    let metrics = app.metrics().await;
    for kind in ["game.started", "game.exited"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("origin_outbox_published_total") && l.contains(&format!("\"{kind}\""))
            })
            .unwrap_or_else(|| panic!("no published count for {kind}:\n{metrics}"));
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 1_000.0, "{line}");
    }
    assert!(metrics.contains("origin_outbox_relay_lag_seconds_bucket"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_rows(&app.store, &region).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pending_rows(&app.store, &region).await, 0, "outbox drained");
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

/// Per-second outcome of a paced load.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    ok: bool,
    latency: Duration,
}

#[tokio::test]
#[ignore = "events stage: real Cassandra and nats-server (make test, or --ignored)"]
async fn starts_keep_their_rate_while_the_broker_is_down_and_every_event_arrives_after() {
    let _serial = SERIAL.lock().await;
    let mut nats = NatsServer::for_tests().await;
    let region = unique_region();
    let settings = event_settings(&region, &nats);
    let app = Arc::new(spawn_event_app(&settings, default_relay(&settings)).await);
    let mut consumer = consumer_for(&nats, &region).await;

    // A steady 20 games/s (start then exit): 8 s with the broker, 20 s without, 5 s with.
    const RATE: u32 = 20;
    const UP_BEFORE: Duration = Duration::from_secs(8);
    const DOWN: Duration = Duration::from_secs(20);
    const UP_AFTER: Duration = Duration::from_secs(5);
    let total = UP_BEFORE + DOWN + UP_AFTER;
    let t0 = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Sample, Option<GameId>)>();
    let load = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1) / RATE);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while t0.elapsed() < total {
                ticker.tick().await;
                let app = app.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let at = t0.elapsed();
                    let began = Instant::now();
                    let outcome = app.start_and_exit(&common::unique_user("out")).await;
                    let sample = Sample {
                        at,
                        ok: outcome.is_ok(),
                        latency: began.elapsed(),
                    };
                    if let Err(e) = &outcome {
                        eprintln!("request failed at {at:?}: {e}");
                    }
                    let _ = tx.send((sample, outcome.ok()));
                });
            }
        })
    };

    tokio::time::sleep(UP_BEFORE).await;
    let stopped_at = t0.elapsed();
    nats.stop();
    eprintln!("broker stopped at {stopped_at:?}");
    tokio::time::sleep(DOWN.saturating_sub(t0.elapsed() - stopped_at)).await;
    let down_for = t0.elapsed() - stopped_at;
    // The outbox shows what waits.
    let waiting = gauge(&app.metrics().await, "origin_outbox_pending");
    eprintln!("origin_outbox_pending at the end of the outage: {waiting}");
    assert!(
        waiting > 100.0,
        "the pending gauge shows the backlog: {waiting}"
    );
    nats.start_again().await;
    let restarted_at = t0.elapsed();
    eprintln!("broker back at {restarted_at:?} (down {down_for:?})");
    load.await.unwrap();

    // Every request has answered once the channel closes (all senders dropped).
    let mut samples = Vec::new();
    let mut ids = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(Some((sample, id))) = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        rx.recv(),
    )
    .await
    {
        samples.push(sample);
        ids.extend(id);
    }
    let failures = samples.iter().filter(|s| !s.ok).count();
    let window = |from: Duration, to: Duration| -> (f64, i64) {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.ok && s.at >= from && s.at < to)
            .collect();
        let rate = inside.len() as f64 / (to - from).as_secs_f64();
        let p99_ms = p99(inside
            .iter()
            .map(|s| s.latency.as_millis() as i64)
            .collect());
        (rate, p99_ms)
    };
    // Skip the first second (warm-up) and the second around each switch.
    let (rate_up, p99_up) = window(Duration::from_secs(1), stopped_at);
    let (rate_down, p99_down) = window(
        stopped_at + Duration::from_secs(1),
        restarted_at.saturating_sub(Duration::from_secs(1)),
    );
    eprintln!(
        "games/s with the broker up: {rate_up:.1} (p99 {p99_up} ms); broker down: {rate_down:.1} \
         (p99 {p99_down} ms); {failures} failed of {}",
        samples.len()
    );
    assert_eq!(
        failures, 0,
        "no start or exit may fail because the broker is down"
    );
    assert!(
        rate_down >= 0.9 * rate_up,
        "starts slowed down without the broker: {rate_down:.1}/s vs {rate_up:.1}/s"
    );

    // After the broker returns, every event arrives: 0 missing.
    let mut seen = Seen::default();
    collect(
        &mut consumer,
        &mut seen,
        2 * ids.len(),
        Duration::from_secs(30),
    )
    .await;
    let missing_started = ids.difference(&seen.started).count();
    let missing_exited = ids.difference(&seen.exited).count();
    eprintln!(
        "{} games: consumed {} started, {} exited, {} duplicates (same ids); missing {} + {}",
        ids.len(),
        seen.started.len(),
        seen.exited.len(),
        seen.duplicates,
        missing_started,
        missing_exited
    );
    assert_eq!((missing_started, missing_exited), (0, 0));
    assert_eq!(seen.started, ids);
    assert_eq!(seen.exited, ids);
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("origin_outbox_publish_failures_total") && !l.ends_with(" 0")),
        "the outage shows as publish failures:\n{metrics}"
    );
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

#[tokio::test]
#[ignore = "events stage: real Cassandra and nats-server (make test, or --ignored)"]
async fn an_origin_killed_mid_relay_loses_nothing_its_restart_finishes_the_outbox() {
    let _serial = SERIAL.lock().await;
    let mut nats = NatsServer::for_tests().await;
    let region = unique_region();
    let settings = event_settings(&region, &nats);
    // A slow relay (small pages, one pass per second) so the kill lands mid-outbox.
    let slow = RelaySettings {
        page: 10,
        pages_per_pass: 2,
        idle_poll: Duration::from_millis(300),
        gather: Duration::from_millis(300),
        ..default_relay(&settings)
    };
    let mut consumer = consumer_for(&nats, &region).await;

    // The broker is down while 300 games are played: every event waits in the outbox.
    nats.stop();
    let first = Arc::new(spawn_event_app(&settings, slow).await);
    let ids: HashSet<GameId> = play(&first, 300, 8).await.into_iter().collect();
    assert_eq!(pending_rows(&first.store, &region).await, 600);
    nats.start_again().await;

    // Kill the origin as soon as its relay has published something.
    let mut seen = Seen::default();
    collect(&mut consumer, &mut seen, 1, Duration::from_secs(30)).await;
    assert!(seen.total() >= 1, "the relay published nothing");
    let store = first.store.clone();
    Arc::try_unwrap(first).ok().unwrap().kill();
    let left = pending_rows(&store, &region).await;
    eprintln!(
        "killed the origin mid-relay: {} events consumed, {left} rows still pending",
        seen.total()
    );
    assert!(
        left > 0,
        "the kill came after the relay finished: not mid-relay"
    );

    // A new origin of the same region finishes the outbox.
    let second = spawn_event_app(&settings, default_relay(&settings)).await;
    collect(&mut consumer, &mut seen, 600, Duration::from_secs(30)).await;
    let republished = second
        .metrics()
        .await
        .lines()
        .find(|l| l.starts_with("origin_outbox_duplicates_total"))
        .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
        .unwrap_or_default();
    eprintln!(
        "after the restart: {} started, {} exited; {} duplicates reached the consumer, \
         {republished} re-publications were dropped by the broker (same event ids)",
        seen.started.len(),
        seen.exited.len(),
        seen.duplicates
    );
    assert_eq!(seen.started, ids);
    assert_eq!(seen.exited, ids);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending_rows(&second.store, &region).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(pending_rows(&second.store, &region).await, 0);
    second.stop().await;
}

#[tokio::test]
#[ignore = "events stage: real Cassandra and nats-server (make test, or --ignored)"]
async fn events_the_broker_acknowledged_but_lost_are_published_again() {
    let _serial = SERIAL.lock().await;
    let mut nats = NatsServer::for_tests().await;
    let region = unique_region();
    let mut settings = event_settings(&region, &nats);
    // As far as the relay knows, the broker fsyncs every 30 s: no acknowledgement of this test
    // is proven to be on its disk when the store is lost.
    if let Some(events) = settings.events.as_mut() {
        events.broker_sync = Duration::from_secs(30);
    }
    let app = Arc::new(spawn_event_app(&settings, default_relay(&settings)).await);
    let mut consumer = consumer_for(&nats, &region).await;
    let ids: HashSet<GameId> = play(&app, 50, 4).await.into_iter().collect();
    let mut seen = Seen::default();
    collect(&mut consumer, &mut seen, 100, Duration::from_secs(30)).await;
    assert_eq!(seen.total(), 100, "every event acknowledged and delivered");
    // Acknowledged, yet their rows are kept until the broker surely has them on disk.
    assert_eq!(pending_rows(&app.store, &region).await, 100);
    drop(consumer);

    // A power cut at its worst: the broker comes back without any of them.
    nats.stop_and_lose_store();
    nats.start_again().await;
    let mut consumer = consumer_for(&nats, &region).await;
    let mut again = Seen::default();
    collect(&mut consumer, &mut again, 100, Duration::from_secs(30)).await;
    let republished = gauge(&app.metrics().await, "origin_outbox_republished_total");
    eprintln!(
        "after the broker lost its store: {} started, {} exited published again \
         ({republished} re-publications)",
        again.started.len(),
        again.exited.len()
    );
    assert_eq!(again.started, ids);
    assert_eq!(again.exited, ids);
    assert!(republished >= 100.0, "{republished}");
    // The rows are held again (30 s sync): a crash now would lose nothing either.
    Arc::try_unwrap(app).ok().unwrap().kill();
}
