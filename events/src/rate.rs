//! The figures `tail` keeps: starts per minute by region, and lag percentiles.

use std::collections::{BTreeMap, VecDeque};

use api::{EventType, GameEvent, RegionName};

const WINDOW_MS: i64 = 60_000;

/// Starts per minute by region: `game.started` events whose `occurredAt` lies in the last 60 s.
///
/// Counted by event time, not arrival time, so a burst of events delivered late (a broker that
/// was down) is attributed to the minute the games really started.
#[derive(Debug, Clone, Default)]
pub struct StartsPerMinute {
    /// Per region, start times in arrival order (nearly sorted; pruned by value).
    starts: BTreeMap<RegionName, VecDeque<i64>>,
}

impl StartsPerMinute {
    /// An empty counter.
    pub fn new() -> StartsPerMinute {
        StartsPerMinute::default()
    }

    /// Counts `event` if it is a start (call it for first deliveries only).
    pub fn record(&mut self, event: &GameEvent) {
        let times = self.starts.entry(event.region.clone()).or_default();
        if event.kind == EventType::Started {
            times.push_back(event.occurred_at);
        }
    }

    /// Starts per region within `(now_ms - 60 s, now_ms]`; every region seen so far is listed,
    /// with 0 if it had none. Forgets older starts.
    pub fn per_region(&mut self, now_ms: i64) -> BTreeMap<RegionName, u64> {
        let since = now_ms - WINDOW_MS;
        self.starts
            .iter_mut()
            .map(|(region, times)| {
                times.retain(|&t| t > since);
                let count = times.iter().filter(|&&t| t <= now_ms).count() as u64;
                (region.clone(), count)
            })
            .collect()
    }
}

/// Lag samples (ms) of one reporting interval, for p50/p99/max.
#[derive(Debug, Clone, Default)]
pub struct LagWindow {
    samples: Vec<i64>,
}

/// Percentiles of a [`LagWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagSummary {
    /// Samples.
    pub count: usize,
    /// Median, ms.
    pub p50: i64,
    /// 99th percentile (nearest rank), ms.
    pub p99: i64,
    /// Largest, ms.
    pub max: i64,
}

impl LagWindow {
    /// Adds one sample.
    pub fn record(&mut self, lag_ms: i64) {
        self.samples.push(lag_ms);
    }

    /// The percentiles so far (`None` without samples), and starts a new interval.
    pub fn take(&mut self) -> Option<LagSummary> {
        let mut samples = std::mem::take(&mut self.samples);
        let summary = summarize(&mut samples);
        // Keep the allocation for the next interval.
        samples.clear();
        self.samples = samples;
        summary
    }
}

/// Nearest-rank percentiles of `samples` (sorted in place).
pub fn summarize(samples: &mut [i64]) -> Option<LagSummary> {
    samples.sort_unstable();
    let rank = |percent| kernel::stats::nearest_rank(samples, percent);
    Some(LagSummary {
        count: samples.len(),
        p50: rank(50)?,
        p99: rank(99)?,
        max: *samples.last()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{GameId, GameStatus, GameView, UserId};

    fn event(region: &str, kind: EventType, at: i64) -> GameEvent {
        let game = GameView {
            game_id: GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap(),
            user_id: UserId::parse("u").unwrap(),
            region: RegionName::parse(region).unwrap(),
            seed: 1,
            start_at: at + 3_000,
            tick_ms: 100,
            break_every: 50,
            algorithm: api::Algorithm::Mix32V1.into(),
            status: GameStatus::Exited,
            created_at: at,
            exited_at: Some(at),
            metadata: None,
            shared: None,
            owner_token: None,
            commitment: None,
            rounds: None,
            root: None,
        };
        GameEvent::of(&game, kind).unwrap()
    }

    #[test]
    fn counts_starts_of_the_last_minute_by_region() {
        let mut rate = StartsPerMinute::new();
        let now = 10 * 60_000;
        for i in 0..30 {
            rate.record(&event("eu", EventType::Started, now - i * 2_000));
        }
        // Older than a minute, an exit, another region.
        rate.record(&event("eu", EventType::Started, now - 61_000));
        rate.record(&event("eu", EventType::Exited, now - 1_000));
        rate.record(&event("us", EventType::Started, now - 59_999));
        rate.record(&event("asia", EventType::Exited, now - 5));
        let counts = rate.per_region(now);
        let get = |r: &str| counts[&RegionName::parse(r).unwrap()];
        assert_eq!((get("eu"), get("us"), get("asia")), (30, 1, 0));
        // 2 s later the oldest eu start (exactly 60 s old then) and the us start are out.
        let counts = rate.per_region(now + 2_000);
        assert_eq!(counts[&RegionName::parse("eu").unwrap()], 29);
        assert_eq!(counts[&RegionName::parse("us").unwrap()], 0);
    }

    #[test]
    fn late_events_count_in_their_own_minute() {
        let mut rate = StartsPerMinute::new();
        rate.record(&event("eu", EventType::Started, 1_000));
        assert_eq!(
            rate.per_region(200_000)[&RegionName::parse("eu").unwrap()],
            0
        );
    }

    #[test]
    fn lag_percentiles() {
        let mut lags = LagWindow::default();
        assert_eq!(lags.take(), None);
        for ms in (1..=100).rev() {
            lags.record(ms);
        }
        assert_eq!(
            lags.take(),
            Some(LagSummary {
                count: 100,
                p50: 50,
                p99: 99,
                max: 100
            })
        );
        assert_eq!(lags.take(), None);
        lags.record(7);
        assert_eq!(lags.take().map(|s| (s.p50, s.p99)), Some((7, 7)));
    }
}
