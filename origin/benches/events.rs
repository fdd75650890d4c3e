//! Game events benchmark: `POST /game/start` throughput with event publishing on (outbox +
//! relay + a real nats-server) against off, in the same run, and the lag of each event from
//! its commit to a consumer. Prints figures; it is not a pass/fail test.
//!
//! `make bench-events` (Cassandra must be running; the Makefile starts it; the nats-server is
//! started here on a free port). Knobs: `BENCH_SECONDS` (default 4 per phase), `BENCH_ROUNDS`
//! (default 3), `BENCH_CONCURRENCY` (default 32), `BENCH_NATS_CLUSTER=1` (a local three-node
//! JetStream cluster from `scripts/nats.sh start-cluster` on free ports, the stream with three
//! replicas, instead of one server).
//!
//! Each round runs off, on, on, off, so drift of the shared machine hits both alike; the
//! figures are the mean rates and the median of the rounds' ratios. After each "on" phase the
//! run waits until the consumer has every event of it (the relay's backlog must not spill into
//! the next phase), and at the end checks that none is missing.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::{EventType, GameId};
use events::rate::LagSummary;
use events::testkit::{NatsCluster, NatsServer};
use events::{Consumer, StartFrom};
use origin::config::Settings;
use origin::startup::{AppState, run, state_with_events};
use origin::store::Store;
use support::{Figures, Line, env_number};
use tokio::sync::Mutex;

/// The phase lines: `<name> <n> starts/s   p50 ...`, only games actually started counted.
const LINE: Line = Line {
    name_width: 40,
    rate_width: 7,
    unit: "starts",
    count_failures: false,
};

/// `POST /game/start` for fresh users from `concurrency` clients for `duration`; the ids of the
/// games started go into `started`.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    concurrency: usize,
    duration: Duration,
    started: Arc<Mutex<HashSet<GameId>>>,
) -> Figures {
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (client, url, made) = (client.clone(), url.to_owned(), ids.clone());
    let figures = support::drive(concurrency, duration, move |_worker, seq| {
        let (client, url, made) = (client.clone(), url.clone(), made.clone());
        async move {
            let user = format!("bench-{}-{seq}", std::process::id());
            let answer = client
                .post(&url)
                .json(&serde_json::json!({ "userId": user }))
                .send()
                .await;
            match answer {
                Ok(r) if r.status().as_u16() == 201 => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if let Some(id) = body["gameId"].as_str().and_then(|s| GameId::parse(s).ok()) {
                        made.lock().expect("ids").push(id);
                    }
                    true
                }
                Ok(r) => {
                    eprintln!("error: HTTP {}", r.status());
                    false
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    false
                }
            }
        }
    })
    .await;
    let ids = std::mem::take(&mut *ids.lock().expect("ids"));
    started.lock().await.extend(ids);
    figures
}

/// What the consumer has seen: started game ids and lags (ms, commit to consumer).
#[derive(Default)]
struct Consumed {
    started: HashSet<GameId>,
    lags_ms: Vec<i64>,
    duplicates: u64,
}

fn settings(region: &str, keyspace: &str, nats: Option<&str>, replicas: usize) -> Settings {
    let mut vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("REGION", region),
        ("CASSANDRA_KEYSPACE", keyspace),
        ("REQUEST_TIMEOUT_SECONDS", "30"),
        // One client address drives the load: the per-client budgets would throttle it.
        ("RATE_LIMIT_START", "off"),
        ("RATE_LIMIT_READ", "off"),
        (
            "OWNER_TOKEN_SECRET",
            "seedsync-events-benchmark-owner-token-secret",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Ok(hosts) = std::env::var("CASSANDRA_HOSTS") {
        vars.insert("CASSANDRA_HOSTS".into(), hosts);
    }
    if let Some(url) = nats {
        vars.insert("NATS_URL".into(), url.to_owned());
        // The relay holds published rows for the sync interval the test server runs with.
        vars.insert("NATS_SYNC".into(), events::testkit::sync_policy());
        vars.insert("NATS_STREAM_REPLICAS".into(), replicas.to_string());
    }
    Settings::from_map(&vars).expect("settings")
}

async fn serve(state: AppState) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/game/start", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(listener, state, async {
        let _ = stopped.await;
    }));
    (url, stop)
}

#[tokio::main]
async fn main() {
    // reqwest is built without a crypto provider of its own (origin::tls).
    origin::tls::install_default_provider();
    let seconds = env_number("BENCH_SECONDS", 4);
    let rounds = env_number("BENCH_ROUNDS", 3).max(1);
    let concurrency = env_number("BENCH_CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(seconds);
    let keyspace = format!("bench_events_{}", std::process::id());
    // One server (R1), or a three-node cluster (R3); kept alive until the end.
    let (_server, _cluster, nats_url, replicas) =
        if std::env::var("BENCH_NATS_CLUSTER").as_deref() == Ok("1") {
            let cluster = NatsCluster::for_tests().await;
            let url = cluster.urls();
            (None, Some(cluster), url, 3)
        } else {
            let server = NatsServer::start().await;
            let url = server.url();
            (Some(server), None, url, 1)
        };

    let off = settings("bench-off", &keyspace, None, replicas);
    let on = settings("bench-on", &keyspace, Some(&nats_url), replicas);
    let store = Store::connect(&off.cassandra)
        .await
        .unwrap_or_else(|e| panic!("{e}\nstart Cassandra first: scripts/cassandra.sh start"));
    let (url_off, stop_off) = serve(AppState::new(&off, store.clone())).await;
    let (state_on, relay) = state_with_events(&on, store.clone())
        .await
        .expect("events wiring");
    let (url_on, stop_on) = serve(state_on).await;

    // The consumer reads the "on" region's starts as they arrive.
    let consumed = Arc::new(Mutex::new(Consumed::default()));
    let reader = {
        let client = events::connect(&nats_url, "bench-consumer", true)
            .await
            .expect("consumer connects");
        let mut consumer =
            Consumer::new(client, StartFrom::All, vec!["game.started.bench-on".into()])
                .await
                .expect("consumer");
        let consumed = consumed.clone();
        tokio::spawn(async move {
            loop {
                match consumer.next().await {
                    Ok(r) if r.event.kind == EventType::Started => {
                        let mut c = consumed.lock().await;
                        if r.first_time {
                            c.started.insert(r.event.game_id);
                            c.lags_ms.push(r.lag_ms());
                        } else {
                            c.duplicates += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("consumer: {e}"),
                }
            }
        })
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    println!(
        "game events benchmark: {concurrency} concurrent clients, {rounds} rounds of 4 phases of {seconds} s, \
         keyspace {keyspace}, nats-server at {nats_url} (R{replicas}, JetStream sync_interval {})",
        events::testkit::sync_policy()
    );
    let made_off = Arc::new(Mutex::new(HashSet::new()));
    let made_on = Arc::new(Mutex::new(HashSet::new()));
    // Warm-up of both paths (connections, prepared statements, the stream).
    drive(
        &client,
        &url_off,
        concurrency,
        Duration::from_secs(2),
        made_off.clone(),
    )
    .await;
    drive(
        &client,
        &url_on,
        concurrency,
        Duration::from_secs(2),
        made_on.clone(),
    )
    .await;

    let wait_for_events = |label: &'static str| {
        let quiet = label == "on";
        let (consumed, made_on) = (consumed.clone(), made_on.clone());
        async move {
            let want = made_on.lock().await.len();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let have = consumed.lock().await.started.len();
                if have >= want || Instant::now() > deadline {
                    if !quiet || have < want {
                        println!("  {label}: {have} of {want} start events consumed");
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for_events("after warm-up").await;
    consumed.lock().await.lags_ms.clear();

    // Rounds of off, on, on, off: each round's ratio cancels a linear drift of the shared
    // machine, and the median of the rounds discards the round a neighbour's burst hit.
    let mut ratios = Vec::new();
    let (mut sum_on, mut sum_off) = (0.0, 0.0);
    for round in 1..=rounds {
        let off_a = drive(&client, &url_off, concurrency, duration, made_off.clone()).await;
        let on_a = drive(&client, &url_on, concurrency, duration, made_on.clone()).await;
        wait_for_events("on").await;
        let on_b = drive(&client, &url_on, concurrency, duration, made_on.clone()).await;
        wait_for_events("on").await;
        let off_b = drive(&client, &url_off, concurrency, duration, made_off.clone()).await;
        off_a.print(
            &format!("round {round}: POST /game/start, events off"),
            &LINE,
        );
        on_a.print(
            &format!("round {round}: POST /game/start, events on"),
            &LINE,
        );
        on_b.print(
            &format!("round {round}: POST /game/start, events on"),
            &LINE,
        );
        off_b.print(
            &format!("round {round}: POST /game/start, events off"),
            &LINE,
        );
        let (on, off) = (
            on_a.ok_rate() + on_b.ok_rate(),
            off_a.ok_rate() + off_b.ok_rate(),
        );
        println!("round {round}: ratio on/off {:.2}", on / off);
        ratios.push(on / off);
        sum_on += on / 2.0;
        sum_off += off / 2.0;
    }
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];
    let rate_on = sum_on / rounds as f64;
    let rate_off = sum_off / rounds as f64;

    let made: HashSet<GameId> = made_on.lock().await.clone();
    let c = consumed.lock().await;
    let missing = made.difference(&c.started).count();
    // Nearest-rank, as the `tail` CLI reports lags.
    let lags = events::rate::summarize(&mut c.lags_ms.clone()).unwrap_or(LagSummary {
        count: 0,
        p50: 0,
        p99: 0,
        max: 0,
    });
    println!(
        "events: {} starts made with events on, {} start events consumed, {missing} missing, {} duplicates",
        made.len(),
        c.started.len(),
        c.duplicates
    );
    println!(
        "BENCH events_starts_per_s_on={rate_on:.0} events_starts_per_s_off={rate_off:.0} ratio_on_off={:.2} \
         median_round_ratio={median_ratio:.2} target=0.9 lag_commit_to_consumer_ms p50={} p99={} max={} (n={}) \
         missing={missing} nats_sync={} replicas={replicas}",
        rate_on / rate_off,
        lags.p50,
        lags.p99,
        lags.max,
        lags.count,
        events::testkit::sync_policy()
    );
    drop(c);
    reader.abort();
    let _ = stop_off.send(());
    let _ = stop_on.send(());
    if let Some(relay) = relay {
        relay.shutdown(Duration::from_secs(5)).await;
    }
    // The benchmark's keyspace is throwaway.
    let _ = store
        .session()
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await;
}
