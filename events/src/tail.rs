//! The `tail` CLI: prints game events as they arrive, one line each, and every few seconds the
//! starts per minute of each region and the lag from commit to receipt.
//!
//! ```text
//! cargo run -p events --bin tail -- [--nats URL] [--since 1m | --all | --new] [--region R]...
//!     [--type started|exited] [--every SECS] [--json] [--show-duplicates] [--count N]
//!     [--duration SECS]
//! ```
//!
//! Events go to stdout (`--json`: the event's JSON, one per line); the periodic summary and
//! warnings go to stderr, so stdout can be piped. Duplicates (the same event id delivered again)
//! are counted, not printed, unless `--show-duplicates`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use api::events::EventType;
use api::v1::Timestamp;
use api::{GameEvent, RegionName};

use crate::consumer::{Received, StartFrom};
use crate::rate::LagSummary;

/// The usage line.
pub const USAGE: &str = "usage: tail [--nats URL] [--since DURATION | --all | --new] [--region R]... \
[--type started|exited] [--every SECS] [--json] [--show-duplicates] [--count N] [--duration SECS]

  --nats URL          NATS server, or a cluster's servers comma-separated (any node serves;
                      default: $NATS_URL, else nats://127.0.0.1:4222)
  --since DURATION    start with the events of the last DURATION (30s, 10m, 2h; default 1m)
  --all | --new       start with every stored event | only events from now on
  --region R          only this region (repeatable)
  --type T            only one type: started, joined, exited, ended or break
  --every SECS        print starts/min per region and lag every SECS to stderr (default 10, 0: never)
  --json              print each event as its JSON
  --show-duplicates   also print repeated deliveries of an event id (marked DUPLICATE)
  --count N           exit after N events (first deliveries)
  --duration SECS     exit after SECS seconds";

/// The default broker.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Broker URL.
    pub nats: String,
    /// Where to start.
    pub start: StartFrom,
    /// Regions to show (all if empty).
    pub regions: Vec<RegionName>,
    /// Type to show (all if `None`).
    pub kind: Option<EventType>,
    /// Summary interval; `None`: no summary.
    pub every: Option<Duration>,
    /// Print JSON instead of text.
    pub json: bool,
    /// Print duplicates too.
    pub show_duplicates: bool,
    /// Stop after this many first deliveries.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// Parses `30s`, `10m`, `2h`, `1d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 10m, 2h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3_600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_secs(seconds))
}

impl Args {
    /// Parses the arguments after the program name; `env_url` is `$NATS_URL`.
    pub fn parse(
        mut raw: impl Iterator<Item = String>,
        env_url: Option<String>,
    ) -> Result<Args, String> {
        let mut args = Args {
            nats: env_url
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned()),
            start: StartFrom::Since(Duration::from_secs(60)),
            regions: Vec::new(),
            kind: None,
            every: Some(Duration::from_secs(10)),
            json: false,
            show_duplicates: false,
            count: None,
            duration: None,
        };
        let value =
            |flag: &str, v: Option<String>| v.ok_or_else(|| format!("{flag} needs a value"));
        while let Some(flag) = raw.next() {
            match flag.as_str() {
                "--nats" => args.nats = value(&flag, raw.next())?,
                "--since" => {
                    args.start = StartFrom::Since(parse_duration(&value(&flag, raw.next())?)?)
                }
                "--all" => args.start = StartFrom::All,
                "--new" => args.start = StartFrom::New,
                "--region" => {
                    let r = value(&flag, raw.next())?;
                    args.regions
                        .push(RegionName::parse(&r).map_err(|e| format!("--region: {e}"))?);
                }
                "--type" => {
                    let t = value(&flag, raw.next())?;
                    let name = if t.starts_with("game.") {
                        t.clone()
                    } else {
                        format!("game.{t}")
                    };
                    args.kind = Some(EventType::parse(&name).ok_or_else(|| {
                        format!("--type: {t:?} is not started, joined, exited, ended or break")
                    })?);
                }
                "--every" => {
                    let every = parse_duration(&value(&flag, raw.next())?)?;
                    args.every = (!every.is_zero()).then_some(every);
                }
                "--json" => args.json = true,
                "--show-duplicates" => args.show_duplicates = true,
                "--count" => {
                    let n = value(&flag, raw.next())?;
                    args.count = Some(
                        n.parse()
                            .map_err(|_| format!("--count: {n:?} is not a number"))?,
                    );
                }
                "--duration" => args.duration = Some(parse_duration(&value(&flag, raw.next())?)?),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        let servers = crate::server_list(&args.nats);
        if servers.is_empty() || servers.iter().any(|s| !s.contains(':')) {
            return Err(format!(
                "--nats: {:?} is not a URL like nats://127.0.0.1:4222 (or several, comma-separated)",
                args.nats
            ));
        }
        Ok(args)
    }

    /// The stream subjects to read: every combination of the chosen types and regions.
    pub fn filters(&self) -> Vec<String> {
        let kinds: Vec<EventType> = match self.kind {
            Some(k) => vec![k],
            None => EventType::ALL.to_vec(),
        };
        if self.regions.is_empty() && self.kind.is_none() {
            return Vec::new();
        }
        let mut filters = Vec::new();
        for kind in kinds {
            if self.regions.is_empty() {
                filters.push(format!("{}.*", kind.as_str()));
            }
            for region in &self.regions {
                filters.push(kind.subject(region));
            }
        }
        filters
    }
}

fn instant(ms: i64) -> String {
    Timestamp::from_ms(ms).map_or_else(|| ms.to_string(), |t| t.to_string())
}

/// One event as a line of text (or its JSON with `json`).
pub fn event_line(received: &Received, json: bool) -> String {
    let e = &received.event;
    if json {
        return e.to_json();
    }
    let mut line = format!(
        "{} {:<12} {:<6} game={} user={} seed={} startAt={} tickMs={} breakEvery={} algorithm={}",
        instant(e.occurred_at),
        e.kind.as_str(),
        e.region.as_str(),
        e.game_id,
        e.user_id,
        e.seed,
        instant(e.start_at),
        e.tick_ms,
        e.break_every,
        e.algorithm.as_str(),
    );
    if e.kind == EventType::Exited {
        match e.final_tick {
            Some(t) => {
                let _ = write!(
                    line,
                    " final=step:{},value:{},round:{}",
                    t.step, t.value, t.round
                );
            }
            None => line.push_str(" final=countdown"),
        }
    }
    let _ = write!(
        line,
        " lag={}ms seq={}",
        received.lag_ms(),
        received.sequence
    );
    if !received.first_time {
        line.push_str(" DUPLICATE");
    }
    line
}

/// Totals printed with each summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// First deliveries.
    pub events: u64,
    /// Repeated deliveries.
    pub duplicates: u64,
    /// Messages that were not valid events.
    pub invalid: u64,
}

/// The periodic summary line.
pub fn summary_line(
    starts: &BTreeMap<RegionName, u64>,
    lag: Option<LagSummary>,
    totals: Totals,
) -> String {
    let mut line = String::from("starts/min");
    if starts.is_empty() {
        line.push_str(" (no regions yet)");
    }
    for (region, count) in starts {
        let _ = write!(line, " {region}={count}");
    }
    let _ = write!(
        line,
        " | events {} duplicates {} invalid {}",
        totals.events, totals.duplicates, totals.invalid
    );
    match lag {
        Some(l) => {
            let _ = write!(
                line,
                " | lag p50 {}ms p99 {}ms max {}ms (n={})",
                l.p50, l.p99, l.max, l.count
            );
        }
        None => line.push_str(" | lag -"),
    }
    line
}

/// Whether `event` passes the chosen filters (the broker filters too; this guards replays).
pub fn wanted(args: &Args, event: &GameEvent) -> bool {
    args.kind.is_none_or(|k| k == event.kind)
        && (args.regions.is_empty() || args.regions.contains(&event.region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{GameId, GameStatus, GameView, UserId};

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()), None)
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.nats, DEFAULT_NATS_URL);
        assert_eq!(a.start, StartFrom::Since(Duration::from_secs(60)));
        assert_eq!(a.every, Some(Duration::from_secs(10)));
        assert!(a.filters().is_empty());
        let env = Args::parse(std::iter::empty(), Some("nats://h:1".into())).unwrap();
        assert_eq!(env.nats, "nats://h:1");

        let a = parse(&[
            "--nats",
            "nats://127.0.0.1:4333",
            "--all",
            "--region",
            "eu",
            "--region",
            "us",
            "--type",
            "exited",
            "--every",
            "0",
            "--json",
            "--count",
            "5",
            "--duration",
            "2m",
        ])
        .unwrap();
        assert_eq!(a.start, StartFrom::All);
        assert_eq!(a.filters(), ["game.exited.eu", "game.exited.us"]);
        assert_eq!((a.every, a.json, a.count), (None, true, Some(5)));
        assert_eq!(a.duration, Some(Duration::from_secs(120)));
        assert_eq!(
            parse(&["--type", "started"]).unwrap().filters(),
            ["game.started.*"]
        );
        assert_eq!(
            parse(&["--region", "asia"]).unwrap().filters(),
            [
                "game.started.asia",
                "game.exited.asia",
                "game.joined.asia",
                "game.ended.asia",
                "game.break.asia"
            ]
        );
        assert_eq!(
            parse(&["--since", "90s"]).unwrap().start,
            StartFrom::Since(Duration::from_secs(90))
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        for (args, needle) in [
            (&["--region", "EU"][..], "--region"),
            (&["--type", "paused"], "--type"),
            (&["--since", "soon"], "duration"),
            (&["--since", "5y"], "unit"),
            (&["--count", "-1"], "--count"),
            (&["--nats"], "needs a value"),
            (&["--nats", "localhost"], "--nats"),
            (&["--nats", "nats://a:1,localhost"], "--nats"),
            (&["--nats", " , "], "--nats"),
            (&["--frobnicate"], "unknown argument"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
    }

    fn received(exited_at: Option<i64>, first_time: bool) -> Received {
        let game = GameView {
            game_id: GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap(),
            user_id: UserId::parse("player-1").unwrap(),
            region: RegionName::parse("eu").unwrap(),
            seed: 42,
            start_at: 1_705_314_603_000,
            tick_ms: 100,
            break_every: 50,
            algorithm: api::Algorithm::Mix32V1.into(),
            status: if exited_at.is_some() {
                GameStatus::Exited
            } else {
                GameStatus::Active
            },
            created_at: 1_705_314_600_000,
            exited_at,
            metadata: None,
            shared: None,
            owner_token: None,
            commitment: None,
            rounds: None,
            root: None,
        };
        let event = match exited_at {
            Some(_) => GameEvent::exited(&game).unwrap(),
            None => GameEvent::started(&game),
        };
        Received {
            sequence: 7,
            stored_at_ms: event.occurred_at + 3,
            received_at_ms: event.occurred_at + 12,
            event,
            first_time,
        }
    }

    #[test]
    fn event_lines() {
        assert_eq!(
            event_line(&received(None, true), false),
            "2024-01-15T10:30:00Z game.started eu     game=3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b \
             user=player-1 seed=42 startAt=2024-01-15T10:30:03Z tickMs=100 breakEvery=50 \
             algorithm=mix32-v1 lag=12ms seq=7"
        );
        let exited = event_line(&received(Some(1_705_314_615_345), false), false);
        assert!(
            exited.starts_with("2024-01-15T10:30:15.345Z game.exited  eu "),
            "{exited}"
        );
        assert!(
            exited.ends_with(" final=step:123,value:4,round:3 lag=12ms seq=7 DUPLICATE"),
            "{exited}"
        );
        let countdown = event_line(&received(Some(1_705_314_601_000), true), false);
        assert!(countdown.contains(" final=countdown "), "{countdown}");
        let json = event_line(&received(None, true), true);
        assert_eq!(
            GameEvent::from_json(json.as_bytes()).unwrap(),
            received(None, true).event
        );
    }

    #[test]
    fn summary_lines() {
        let starts: BTreeMap<RegionName, u64> = [("eu", 12), ("us", 0)]
            .into_iter()
            .map(|(r, n)| (RegionName::parse(r).unwrap(), n))
            .collect();
        let lag = LagSummary {
            count: 20,
            p50: 8,
            p99: 30,
            max: 41,
        };
        let totals = Totals {
            events: 150,
            duplicates: 2,
            invalid: 0,
        };
        assert_eq!(
            summary_line(&starts, Some(lag), totals),
            "starts/min eu=12 us=0 | events 150 duplicates 2 invalid 0 | lag p50 8ms p99 30ms max 41ms (n=20)"
        );
        assert_eq!(
            summary_line(&BTreeMap::new(), None, Totals::default()),
            "starts/min (no regions yet) | events 0 duplicates 0 invalid 0 | lag -"
        );
    }

    #[test]
    fn filtering() {
        let a = parse(&["--region", "us"]).unwrap();
        assert!(!wanted(&a, &received(None, true).event));
        let a = parse(&["--type", "started", "--region", "eu"]).unwrap();
        assert!(wanted(&a, &received(None, true).event));
        assert!(!wanted(&a, &received(Some(1_705_314_615_345), true).event));
    }
}
