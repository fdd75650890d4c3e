//! The publisher, the consumer and `tail` against a real nats-server (JetStream, file storage)
//! started by each test on a free port and stopped by PID.

use std::time::Duration;

use api::{GameEvent, GameId, GameStatus, GameView, RegionName, UserId};
use bytes::Bytes;
use events::testkit::NatsServer;
use events::{Consumer, Publisher, Received, StartFrom};

const ACK_TIMEOUT: Duration = Duration::from_secs(2);

fn game(n: u32, region: &str, exited_at: Option<i64>) -> GameView {
    let created_at = 1_705_314_600_000 + i64::from(n);
    GameView {
        game_id: game_id(n),
        user_id: UserId::parse(&format!("player-{n}")).unwrap(),
        region: RegionName::parse(region).unwrap(),
        seed: n.wrapping_mul(2_654_435_761),
        start_at: created_at + 3_000,
        tick_ms: 100,
        break_every: 50,
        algorithm: api::Algorithm::Mix32V1.into(),
        status: if exited_at.is_some() {
            GameStatus::Exited
        } else {
            GameStatus::Active
        },
        created_at,
        exited_at,
        metadata: None,
        shared: None,
        owner_token: None,
        commitment: None,
        rounds: None,
        root: None,
    }
}

fn game_id(n: u32) -> GameId {
    GameId::parse(&format!("00000000-0000-4000-8000-{n:012x}")).unwrap()
}

async fn publisher(server: &NatsServer) -> Publisher {
    let client = events::connect(&server.url(), "test-publisher", true)
        .await
        .unwrap();
    Publisher::new(client, ACK_TIMEOUT)
}

async fn open_consumer(server: &NatsServer, start: StartFrom) -> Consumer {
    let client = events::connect(&server.url(), "test-consumer", true)
        .await
        .unwrap();
    Consumer::new(client, start, Vec::new()).await.unwrap()
}

async fn next(consumer: &mut Consumer) -> Received {
    tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("an event within 10 s")
        .expect("a valid event")
}

/// Whether anything more arrives within `wait`.
async fn nothing_more(consumer: &mut Consumer, wait: Duration) -> bool {
    tokio::time::timeout(wait, consumer.next()).await.is_err()
}

#[tokio::test]
async fn events_round_trip_through_jetstream() {
    let server = NatsServer::start().await;
    let publisher = publisher(&server).await;
    let started = GameEvent::started(&game(1, "eu", None));
    let exited = GameEvent::exited(&game(1, "eu", Some(1_705_314_615_345))).unwrap();
    let countdown_exit = GameEvent::exited(&game(2, "asia", Some(1_705_314_601_000))).unwrap();
    let mut sequences = Vec::new();
    for event in [&started, &exited, &countdown_exit] {
        let published = publisher.publish(event).await.unwrap();
        assert!(!published.duplicate);
        sequences.push(published.sequence);
    }
    assert_eq!(sequences, [1, 2, 3]);

    let mut consumer = open_consumer(&server, StartFrom::All).await;
    for (event, sequence) in [&started, &exited, &countdown_exit].into_iter().zip(1..) {
        let r = next(&mut consumer).await;
        assert_eq!(&r.event, event);
        assert_eq!(r.sequence, sequence);
        assert!(r.first_time);
        assert!(r.stored_at_ms > 0 && r.received_at_ms >= r.stored_at_ms - 1_000);
    }
    assert_eq!(consumer.dedupe().duplicates(), 0);

    // Filters by type and region follow the subjects.
    let client = events::connect(&server.url(), "filtered", true)
        .await
        .unwrap();
    let mut exits_in_asia = Consumer::new(client, StartFrom::All, vec!["game.exited.asia".into()])
        .await
        .unwrap();
    assert_eq!(next(&mut exits_in_asia).await.event, countdown_exit);
    assert!(nothing_more(&mut exits_in_asia, Duration::from_millis(500)).await);
}

#[tokio::test]
async fn repeated_event_ids_are_stored_once_and_delivered_once() {
    let server = NatsServer::start().await;
    let publisher = publisher(&server).await;
    let event = GameEvent::started(&game(7, "us", None));
    let first = publisher.publish(&event).await.unwrap();
    assert!(!first.duplicate);
    // Four retries, e.g. a relay that lost its acks or crashed before clearing its outbox.
    for _ in 0..4 {
        let again = publisher.publish(&event).await.unwrap();
        assert!(
            again.duplicate,
            "the broker's duplicate window drops the repeat"
        );
        assert_eq!(again.sequence, first.sequence);
    }
    // Past the broker's window (simulated: published without Nats-Msg-Id), the consumer's
    // dedupe catches it.
    publisher
        .jetstream()
        .publish(event.subject(), Bytes::from(event.to_json()))
        .await
        .unwrap()
        .await
        .unwrap();
    let other = GameEvent::started(&game(8, "us", None));
    publisher.publish(&other).await.unwrap();

    let mut consumer = open_consumer(&server, StartFrom::All).await;
    let a = next(&mut consumer).await;
    let b = next(&mut consumer).await;
    let c = next(&mut consumer).await;
    assert_eq!((a.event.event_id, a.first_time), (event.event_id, true));
    assert_eq!((b.event.event_id, b.first_time), (event.event_id, false));
    assert_eq!((c.event.event_id, c.first_time), (other.event_id, true));
    assert_eq!(consumer.dedupe().duplicates(), 1);
    assert!(nothing_more(&mut consumer, Duration::from_millis(500)).await);
}

#[tokio::test]
async fn invalid_messages_are_skipped_and_counted() {
    let server = NatsServer::start().await;
    let publisher = publisher(&server).await;
    publisher.ensure_stream().await.unwrap();
    let js = publisher.jetstream();
    for payload in [&b"not json"[..], br#"{"schema": 2}"#, br#"{"schema": 1}"#] {
        js.publish("game.started.eu", Bytes::from_static(payload))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let event = GameEvent::started(&game(3, "eu", None));
    publisher.publish(&event).await.unwrap();
    let mut consumer = open_consumer(&server, StartFrom::All).await;
    assert_eq!(next(&mut consumer).await.event, event);
    assert_eq!(consumer.invalid(), 3);
}

#[tokio::test]
async fn events_survive_a_broker_restart_and_clients_resume() {
    let mut server = NatsServer::start().await;
    let publisher = publisher(&server).await;
    let mut consumer = open_consumer(&server, StartFrom::All).await;
    let before = GameEvent::started(&game(10, "eu", None));
    publisher.publish(&before).await.unwrap();
    assert_eq!(next(&mut consumer).await.event, before);

    server.stop();
    let during = GameEvent::started(&game(11, "eu", None));
    let failed = tokio::time::timeout(Duration::from_secs(10), publisher.publish(&during))
        .await
        .expect("a publication fails within its ack timeout while the broker is down");
    assert!(failed.is_err(), "{failed:?}");

    server.start_again().await;
    // The same clients reconnect; a retry of the failed publication goes through (possibly as
    // a duplicate, if the client delivered the first attempt after reconnecting).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match publisher.publish(&during).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("retrying after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("publishing after the restart failed: {e}"),
        }
    }
    // The consumer reopens itself where it left off once the client has reconnected.
    let resumed = loop {
        match tokio::time::timeout(Duration::from_secs(20), consumer.next()).await {
            Ok(Ok(r)) => break r,
            Ok(Err(e)) => eprintln!("consumer: {e}"),
            Err(_) => panic!("no event within 20 s of the restart"),
        }
    };
    assert_eq!(resumed.event, during);
    assert!(resumed.first_time);

    // Both events are stored on disk: a new consumer reads them from the start.
    let mut fresh = open_consumer(&server, StartFrom::All).await;
    assert_eq!(next(&mut fresh).await.event, before);
    assert_eq!(next(&mut fresh).await.event, during);
    assert!(nothing_more(&mut fresh, Duration::from_millis(500)).await);
}

#[tokio::test]
async fn tail_prints_events_and_the_starts_per_minute() {
    let server = NatsServer::start().await;
    let publisher = publisher(&server).await;
    let now = kernel::clock::now_ms();
    let mut live = game(20, "eu", None);
    live.created_at = now;
    let mut live_us = game(21, "us", None);
    live_us.created_at = now;
    for view in [&live, &live_us] {
        publisher.publish(&GameEvent::started(view)).await.unwrap();
    }
    let mut exited = live.clone();
    exited.status = GameStatus::Exited;
    exited.exited_at = Some(now + 50);
    publisher
        .publish(&GameEvent::exited(&exited).unwrap())
        .await
        .unwrap();

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tail"))
        .args([
            "--nats",
            &server.url(),
            "--all",
            "--count",
            "3",
            "--every",
            "1",
        ])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("tail exits after --count events")
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].contains(" game.started eu ") && lines[0].contains(&live.game_id.to_string()));
    assert!(lines[1].contains(" game.started us "));
    assert!(lines[2].contains(" game.exited  eu ") && lines[2].contains(" final=countdown "));
    // The closing summary counts both regions' starts of the last minute.
    assert!(
        stderr.contains("starts/min eu=1 us=1 | events 3 duplicates 0 invalid 0"),
        "{stderr}"
    );

    // --json prints the events themselves.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tail"))
        .args([
            "--nats",
            &server.url(),
            "--all",
            "--count",
            "1",
            "--json",
            "--type",
            "exited",
        ])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .unwrap()
        .unwrap();
    let event = GameEvent::from_json(output.stdout.trim_ascii()).unwrap();
    assert_eq!(event, GameEvent::exited(&exited).unwrap());

    // No broker: a clear message and a failure exit code.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tail"))
        .args([
            "--nats",
            &format!("nats://127.0.0.1:{}", events::testkit::free_port()),
        ])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("scripts/nats.sh start"));
}

#[tokio::test]
async fn stream_replicas_are_set_only_when_asked() {
    let server = NatsServer::start().await;
    publisher(&server).await.ensure_stream().await.unwrap();
    let client = events::connect(&server.url(), "test-replicas", true)
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let replicas = || async {
        js.get_stream(events::stream::STREAM)
            .await
            .unwrap()
            .cached_info()
            .config
            .num_replicas
    };
    assert_eq!(replicas().await, 1);

    // Three copies cannot live on one server: the error says so instead of silently keeping one.
    let three = Publisher::new(client.clone(), ACK_TIMEOUT).with_replicas(3);
    let err = three.ensure_stream().await.unwrap_err().to_string();
    assert!(err.contains(events::stream::STREAM), "{err}");
    assert!(
        err.to_lowercase().contains("replica") || err.contains("resources"),
        "{err}"
    );

    // A consumer (no replica count of its own) leaves the stream as it is.
    events::stream::ensure(&js, None).await.unwrap();
    assert_eq!(replicas().await, 1);
}

#[tokio::test]
async fn a_url_list_connects_to_whichever_server_answers() {
    let server = NatsServer::start().await;
    // A list whose first server is down: async-nats takes a `&str` as one server, so the list
    // must be split for the second to be tried at all.
    let dead = events::testkit::free_port();
    let list = format!("nats://127.0.0.1:{dead}, {}", server.url());
    for _ in 0..3 {
        let client = events::connect(&list, "test-list", true).await.unwrap();
        let publisher = Publisher::new(client, ACK_TIMEOUT);
        publisher.ensure_stream().await.unwrap();
        // One server, not clustered: no Raft leadership to report.
        assert_eq!(publisher.leadership().await.unwrap(), None);
    }
    let err = events::connect(&format!("nats://127.0.0.1:{dead}"), "test-list", true)
        .await
        .unwrap_err();
    assert!(matches!(err, events::EventsError::Connect { .. }), "{err}");
}
