//! What owner tokens and abuse limits cost a start: `POST /game/start` throughput through two
//! origins on the same Cassandra in the same run, one with every limit off and one with them
//! on (per-client budgets large enough never to refuse, so only their bookkeeping is measured:
//! client address from a trusted proxy's `X-Forwarded-For`, governor bucket, in-flight slot).
//! Both sign an owner token for every new game. Phases alternate (off, on, off, on) so drift
//! on the shared machine hits both alike. Prints figures and the ratio on/off (target >= 0.95).
//!
//! `make bench-auth`. Knobs: `BENCH_SECONDS` (default 6 per phase), `BENCH_CONCURRENCY` (32).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use origin::config::Settings;
use origin::startup::{AppState, run};
use origin::store::Store;
use support::{Figures, env_number};

/// `concurrency` clients (each its own address) starting games for fresh users at `url` for
/// `duration`.
async fn drive(url: &str, concurrency: usize, duration: Duration) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let url = url.to_owned();
    support::drive(concurrency, duration, move |worker, seq| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body =
                serde_json::json!({"userId": format!("auth-bench-{seq}-{}", std::process::id())});
            client
                .post(&url)
                .header(
                    "x-forwarded-for",
                    format!("10.20.{}.{}", worker / 250, worker % 250),
                )
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await
}

async fn serve(settings: &Settings, store: Store) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/game/start", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(listener, AppState::new(settings, store), async {
        let _ = stopped.await;
    }));
    (url, stop)
}

#[tokio::main]
async fn main() {
    // reqwest is built without a crypto provider of its own (origin::tls).
    origin::tls::install_default_provider();
    let seconds = env_number("BENCH_SECONDS", 6);
    let concurrency = env_number("BENCH_CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(seconds);
    let keyspace = format!("bench_auth_{}", std::process::id());
    let base: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("REGION", "eu"),
        ("CASSANDRA_KEYSPACE", keyspace.as_str()),
        ("REQUEST_TIMEOUT_SECONDS", "30"),
        (
            "OWNER_TOKEN_SECRET",
            "bench-owner-token-secret-0123456789abcdef",
        ),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(
        std::env::var("CASSANDRA_HOSTS")
            .ok()
            .map(|h| ("CASSANDRA_HOSTS".to_owned(), h)),
    )
    .collect();
    let with = |extra: &[(&str, &str)]| {
        let mut vars = base.clone();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::from_map(&vars).expect("settings")
    };
    let off = with(&[
        ("RATE_LIMIT_START", "off"),
        ("RATE_LIMIT_READ", "off"),
        ("MAX_IN_FLIGHT", "off"),
    ]);
    let on = with(&[
        ("RATE_LIMIT_START", "1000000/60"),
        ("RATE_LIMIT_READ", "1000000/60"),
        ("MAX_IN_FLIGHT", "512"),
    ]);
    let store = Store::connect(&off.cassandra)
        .await
        .unwrap_or_else(|e| panic!("{e}\nstart Cassandra first: scripts/cassandra.sh start"));
    let (url_off, stop_off) = serve(&off, store.clone()).await;
    let (url_on, stop_on) = serve(&on, store.clone()).await;
    println!(
        "owner tokens + limits: {concurrency} clients, {seconds} s per phase, keyspace {keyspace}"
    );
    // Warm-up of both servers, pools and prepared statements.
    drive(&url_off, concurrency, Duration::from_secs(2)).await;
    drive(&url_on, concurrency, Duration::from_secs(2)).await;
    let (mut total_off, mut total_on) = (0.0, 0.0);
    // ABBA order: a machine that speeds up or slows down during the run favours neither.
    let rounds = env_number("BENCH_ROUNDS", 2);
    for round in 1..=rounds {
        let mut order = [("limits off", &url_off), ("limits on ", &url_on)];
        if round % 2 == 0 {
            order.reverse();
        }
        for (name, url) in order {
            let figures = drive(url, concurrency, duration).await;
            let rate = figures.rate();
            println!(
                "round {round} {name}: {rate:>7.0} starts/s   p99 {:>6.1} ms   {} errors",
                support::millis(figures.p99),
                figures.errors
            );
            if url == &url_off {
                total_off += rate;
            } else {
                total_on += rate;
            }
        }
    }
    println!(
        "start throughput, limits on / off (same run): {:.0} / {:.0} starts/s = {:.3} (target >= 0.95)",
        total_on / rounds as f64,
        total_off / rounds as f64,
        total_on / total_off
    );
    let _ = stop_off.send(());
    let _ = stop_on.send(());
}
