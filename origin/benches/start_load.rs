//! Load benchmark of `POST /game/start` against the local Cassandra, next to raw driver writes
//! of the same table in the same run. Prints figures; it is not a pass/fail test.
//!
//! `make bench-origin` (Cassandra must be running; the Makefile starts it). Knobs:
//! `BENCH_SECONDS` (default 8 per phase), `BENCH_CONCURRENCY` (default 32), `BENCH_TRACE_PAIRS`
//! (default 4 off/on pairs of the tracing comparison).
//!
//! Phases, interleaved so drift in the shared machine hits all of them alike:
//! 1. raw insert: the `games` table's prepared INSERT through the driver (the baseline);
//! 2. raw start writes: the same two writes a start makes (INSERT game + LWT claim of the
//!    user's active slot), through the driver;
//! 3. HTTP: `POST /game/start` through the real origin (axum + JSON + the same writes).
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set (`make bench-origin` starts a Jaeger for it when one
//! is built), more HTTP phases compare span export off and on (every span of every start
//! exported to the collector) in alternating pairs, in the same process: the span layer's
//! filter is switched between phases, the JSON log layer (to a sink) runs in all of them.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api::{Algorithm, BreakEvery, GameId, GameStatus, RegionName, TickMs, UserId};
use origin::config::Settings;
use origin::domain::Game;
use origin::startup::{AppState, run};
use origin::store::{GameStore, Store};
use support::{Line, drive, env_number};

/// The phase lines: `<name> <n> ops/s   p50 ...`, failed calls counted.
const LINE: Line = Line {
    name_width: 34,
    rate_width: 8,
    unit: "ops",
    count_failures: true,
};

fn game_for(user: String) -> Game {
    let now = kernel::clock::now_ms();
    Game {
        id: GameId::from(uuid::Uuid::new_v4()),
        user_id: UserId::parse(&user).expect("valid"),
        region: RegionName::parse("eu").expect("valid"),
        seed: 42,
        start_at_ms: now + 3_000,
        tick_ms: TickMs::parse(100).expect("valid"),
        break_every: BreakEvery::parse(50).expect("valid"),
        algorithm: Algorithm::Mix32V1.into(),
        status: GameStatus::Active,
        created_at_ms: now,
        exited_at_ms: None,
        metadata: None,
        owner_key: None,
        shared: None,
        sealed: None,
    }
}

/// Prints the first few failures, so an error count always comes with its cause.
fn report_error(what: String) {
    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SEEN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("error: {what}");
    }
}

/// Installs the JSON log layer (to a sink, as production logs every request) and the span
/// export layer to `endpoint` behind a filter [`SpanSwitch::set`] turns on and off.
fn install_tracing(endpoint: &str) -> SpanSwitch {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, reload};

    let vars: HashMap<String, String> = [(
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        endpoint.to_owned(),
    )]
    .into();
    let settings = origin::otlp::TraceSettings::from_env(&origin::env::Env::new(&vars))
        .expect("OTEL_EXPORTER_OTLP_ENDPOINT")
        .expect("set");
    let provider = settings.provider("eu").expect("span exporter");
    let (filter, handle) = reload::Layer::new(Targets::new());
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("origin"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(filter);
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::sink)
        .with_filter(EnvFilter::new("info"));
    tracing_subscriber::registry().with(logs).with(spans).init();
    SpanSwitch {
        set: Box::new(move |on| {
            let targets = if on {
                Targets::new().with_target("origin", tracing::Level::INFO)
            } else {
                Targets::new()
            };
            handle.reload(targets).expect("reload the span filter");
        }),
        provider,
    }
}

/// Turns span export on and off between phases.
struct SpanSwitch {
    set: Box<dyn Fn(bool)>,
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

#[tokio::main]
async fn main() {
    // reqwest is built without a crypto provider of its own (origin::tls).
    origin::tls::install_default_provider();
    let seconds = env_number("BENCH_SECONDS", 8);
    let concurrency = env_number("BENCH_CONCURRENCY", 32) as usize;
    let duration = Duration::from_secs(seconds);
    let keyspace = format!("bench_{}", std::process::id());
    let vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("REGION", "eu"),
        ("CASSANDRA_KEYSPACE", keyspace.as_str()),
        ("REQUEST_TIMEOUT_SECONDS", "30"),
        // All clients are this process: per-client budgets would measure the limiter (see
        // benches/auth_load.rs for the limits' own cost).
        ("RATE_LIMIT_START", "off"),
        ("RATE_LIMIT_READ", "off"),
        (
            "OWNER_TOKEN_SECRET",
            "bench-owner-token-secret-0123456789abcdef",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(
        std::env::var("CASSANDRA_HOSTS")
            .ok()
            .map(|h| ("CASSANDRA_HOSTS".to_owned(), h)),
    )
    .collect();
    let export = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let switch = export.as_deref().map(install_tracing);
    let settings = Settings::from_map(&vars).expect("settings");
    let store = Store::connect(&settings.cassandra)
        .await
        .unwrap_or_else(|e| panic!("{e}\nstart Cassandra first: scripts/cassandra.sh start"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/game/start", listener.local_addr().expect("addr"));
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(
        listener,
        AppState::new(&settings, store.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");

    println!(
        "origin start benchmark: {concurrency} concurrent clients, {seconds} s per phase, keyspace {keyspace}, Cassandra at {}",
        settings.cassandra.hosts.join(",")
    );
    let raw_insert = |store: Store| {
        move |_worker: usize, n: u64| {
            let store = store.clone();
            async move {
                store
                    .insert_game(&game_for(format!("raw-{n}")), 86_400)
                    .await
                    .is_ok()
            }
        }
    };
    let raw_start = |store: Store| {
        move |_worker: usize, n: u64| {
            let store = store.clone();
            async move {
                let game = game_for(format!("rawstart-{n}-{}", std::process::id()));
                store.insert_game(&game, 86_400).await.is_ok()
                    && store
                        .claim_active(&game.user_id, game.id, 86_400)
                        .await
                        .is_ok()
            }
        }
    };
    let http = |client: reqwest::Client, url: String| {
        move |_worker: usize, n: u64| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let body =
                    serde_json::json!({"userId": format!("http-{n}-{}", std::process::id())});
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => true,
                    Ok(r) => {
                        report_error(format!(
                            "HTTP {}: {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ));
                        false
                    }
                    Err(e) => {
                        report_error(format!("request failed: {e:?}"));
                        false
                    }
                }
            }
        }
    };

    // Warm-up: JIT, connection pools, prepared statement caches.
    drive(
        concurrency,
        Duration::from_secs(2),
        raw_start(store.clone()),
    )
    .await;
    drive(
        concurrency,
        Duration::from_secs(2),
        http(client.clone(), url.clone()),
    )
    .await;

    let insert_a = drive(concurrency, duration, raw_insert(store.clone())).await;
    let start_a = drive(concurrency, duration, raw_start(store.clone())).await;
    let http_fig = drive(concurrency, duration, http(client.clone(), url.clone())).await;
    let start_b = drive(concurrency, duration, raw_start(store.clone())).await;
    let insert_b = drive(concurrency, duration, raw_insert(store.clone())).await;

    insert_a.print("raw INSERT games (driver)", &LINE);
    start_a.print("raw start writes (driver)", &LINE);
    http_fig.print("POST /game/start (HTTP)", &LINE);
    start_b.print("raw start writes (driver, again)", &LINE);
    insert_b.print("raw INSERT games (driver, again)", &LINE);
    let insert_rate = (insert_a.rate() + insert_b.rate()) / 2.0;
    let start_rate = (start_a.rate() + start_b.rate()) / 2.0;
    println!(
        "BENCH origin_starts_per_s={:.0} p50_ms={:.2} p99_ms={:.2} raw_insert_per_s={:.0} raw_start_writes_per_s={:.0} \
         ratio_vs_raw_insert={:.2} ratio_vs_same_writes={:.2} target=0.8",
        http_fig.rate(),
        support::millis(http_fig.p50),
        support::millis(http_fig.p99),
        insert_rate,
        start_rate,
        http_fig.rate() / insert_rate,
        http_fig.rate() / start_rate,
    );
    if let Some(switch) = switch {
        // Off/on pairs in alternation (off first, then on, then on, then off, ...), so a
        // neighbour's load that drifts during the run weighs on both sides alike; the ratio is
        // of the summed counts over the summed times.
        let pairs = env_number("BENCH_TRACE_PAIRS", 4);
        let (mut on_ops, mut on_secs, mut off_ops, mut off_secs) = (0usize, 0f64, 0usize, 0f64);
        let (mut on_p99, mut off_p99) = (Duration::ZERO, Duration::ZERO);
        for pair in 0..pairs {
            let order = if pair % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for on in order {
                (switch.set)(on);
                let figures = drive(concurrency, duration, http(client.clone(), url.clone())).await;
                let name = if on {
                    "POST /game/start, spans exported"
                } else {
                    "POST /game/start, spans off"
                };
                figures.print(name, &LINE);
                if on {
                    on_ops += figures.ops;
                    on_secs += figures.elapsed.as_secs_f64();
                    on_p99 = on_p99.max(figures.p99);
                } else {
                    off_ops += figures.ops;
                    off_secs += figures.elapsed.as_secs_f64();
                    off_p99 = off_p99.max(figures.p99);
                }
            }
        }
        (switch.set)(false);
        let (on_rate, off_rate) = (on_ops as f64 / on_secs, off_ops as f64 / off_secs);
        println!(
            "BENCH traced_starts_per_s={on_rate:.0} untraced_starts_per_s={off_rate:.0} \
             traced_p99_ms={:.2} untraced_p99_ms={:.2} ratio_traced_vs_off={:.2} target=0.9 \
             pairs={pairs} collector={}",
            support::millis(on_p99),
            support::millis(off_p99),
            on_rate / off_rate,
            export.as_deref().unwrap_or_default(),
        );
        let provider = switch.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
    let _ = stop_server.send(());
    let _ = server.await;
    // The benchmark's keyspace is throwaway.
    let _ = store
        .session()
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await;
}
