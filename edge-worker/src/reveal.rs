//! Sealed games (`sealed-v1`, issue 24) at the edge: when a game's room asks its origin for
//! the next round key, and what it pushes to its sockets (`{"type":"round","round":R,"key":
//! "<hex>"}`, [`api::room::ServerMessage::Round`]).
//!
//! The room never knows a key before the origin hands it out, and the origin hands a key out
//! only once its reveal instant has passed by the origin's clock (`425 Too Early` before), so
//! nothing the room does can send a key early. To push each key at its break rather than poll,
//! the room asks `GET /game/{id}/rounds?from=R` with `x-seedsync-schedule: 1`; an origin that
//! verifies the edge's signature answers the schedule in private headers
//! ([`NEXT_REVEAL_AT_HEADER`]: the next reveal instant), which no public client ever gets. The
//! room sets its Durable Object alarm for that instant and sleeps until then. An origin that
//! does not know the edge (no `EDGE_ORIGIN_SECRET`) answers no schedule: the room then asks
//! again at the public `retryAt` of the 425 (the shortest possible round), which still never
//! sends a key early, only later.
//!
//! [`RevealState`] is the room's whole memory of it, kept in Durable Object storage (under
//! [`STORAGE_KEY`]) so a room evicted between breaks resumes where it was.

use api::sealed::RoundKey;
use serde::{Deserialize, Serialize};

/// Edge → origin: asks `GET /game/{id}/rounds` for the schedule (value `1`; heeded only on a
/// signed request).
pub const SCHEDULE_REQUEST_HEADER: &str = "x-seedsync-schedule";
/// Origin → edge: how many rounds are public now.
pub const PUBLIC_ROUNDS_HEADER: &str = "x-seedsync-public-rounds";
/// Origin → edge: the round whose key comes out next.
pub const NEXT_ROUND_HEADER: &str = "x-seedsync-next-round";
/// Origin → edge: when it comes out, Unix ms by the origin's clock (absent: nothing more will
/// be revealed round by round).
pub const NEXT_REVEAL_AT_HEADER: &str = "x-seedsync-next-reveal-at";

/// The Durable Object storage key of a room's [`RevealState`].
pub const STORAGE_KEY: &str = "reveal";

/// The most keys one alarm pushes (after a gap, e.g. a room that had no sockets for a while):
/// the latest ones; a client hashes down from the newest key to any it missed.
pub const PUSH_AT_MOST: usize = 16;

/// How long after a failed origin call the room asks again, ms.
pub const FAILURE_RETRY_MS: i64 = 1_000;

/// The least time between two asks, ms: an origin whose clock lags the edge's answers 425
/// with a reveal instant already past by the edge's clock; this keeps that from spinning.
pub const MIN_ASK_GAP_MS: i64 = 20;

/// An alarm this early (by the runtime's coarse clock) still counts as due, ms. Asking a
/// little early costs only a 425, never an early key.
pub const DUE_SLACK_MS: i64 = 5;

/// What a sealed game's room remembers about its reveals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealState {
    /// The last round pushed (0: none yet).
    pub round: u64,
    /// Its key (what a socket that joins later is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When to ask the origin next, Unix ms; `None`: nothing more to ask (the game ended, or
    /// the origin does not know it as a sealed game).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<i64>,
}

/// What an ask of the origin came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 200: the public keys from the round asked for, and the schedule if the origin told it.
    Page {
        /// The keys, in round order.
        rounds: Vec<RoundKey>,
        /// The schedule headers, when the origin sent them.
        schedule: Option<Schedule>,
    },
    /// 425: the round asked for is not out yet.
    TooEarly {
        /// The public `retryAt` of the error body.
        retry_at: Option<i64>,
        /// The schedule headers, when the origin sent them.
        schedule: Option<Schedule>,
    },
    /// Any other refusal (404 no such game, 422 not sealed): stop asking.
    Refused,
    /// No origin answered: ask again later.
    Failed,
}

/// The private schedule an origin tells the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Rounds public now.
    pub public: u64,
    /// The next reveal instant (Unix ms), if any.
    pub next_reveal_at: Option<i64>,
}

impl Schedule {
    /// Reads the schedule headers (`None` without [`PUBLIC_ROUNDS_HEADER`], or unreadable).
    pub fn from_headers(public: Option<&str>, next_reveal_at: Option<&str>) -> Option<Schedule> {
        let public = public?.trim().parse().ok()?;
        let next_reveal_at = match next_reveal_at {
            None => None,
            Some(text) => Some(text.trim().parse().ok()?),
        };
        Some(Schedule {
            public,
            next_reveal_at,
        })
    }
}

impl RevealState {
    /// A room that has just learnt its game is sealed: ask at once.
    pub fn fresh(now_ms: i64) -> RevealState {
        RevealState {
            next_at: Some(now_ms),
            ..RevealState::default()
        }
    }

    /// The round to ask the origin for.
    pub fn from_round(&self) -> u64 {
        self.round.saturating_add(1)
    }

    /// Whether an ask is due at `now_ms`.
    pub fn due(&self, now_ms: i64) -> bool {
        self.next_at
            .is_some_and(|at| at <= now_ms.saturating_add(DUE_SLACK_MS))
    }

    /// The latest round pushed, for a socket that joins now.
    pub fn latest(&self) -> Option<RoundKey> {
        Some(RoundKey {
            round: self.round,
            key: self.key.clone()?,
        })
        .filter(|k| k.round > 0)
    }

    /// The game ended (an exit reached the room): ask once more at once, for the keys up to
    /// the end, then the origin's answer stops the asking.
    pub fn ended(&mut self, now_ms: i64) {
        self.next_at = Some(now_ms);
    }

    /// Takes in what an ask at `now_ms` came back with: the keys to push now (new rounds
    /// only, in order, at most [`PUSH_AT_MOST`], the latest ones), and when to ask next.
    pub fn apply(&mut self, fetched: Fetched, now_ms: i64) -> Vec<RoundKey> {
        let not_before = now_ms.saturating_add(MIN_ASK_GAP_MS);
        match fetched {
            Fetched::Page { rounds, schedule } => {
                // Only rounds that follow on from what was pushed (a page starts at the round
                // asked for; anything else is ignored rather than pushed out of order).
                let mut fresh = Vec::new();
                let mut expected = self.from_round();
                for key in rounds {
                    if key.round == expected {
                        expected += 1;
                        fresh.push(key);
                    }
                }
                if let Some(last) = fresh.last() {
                    self.round = last.round;
                    self.key = Some(last.key.clone());
                }
                self.next_at = match schedule {
                    // More public than this page held (a full page): ask again at once.
                    Some(s) if s.public > self.round => Some(now_ms),
                    Some(s) => s.next_reveal_at.map(|at| at.max(not_before)),
                    // No schedule: an empty page means an ended game; else ask again, and
                    // the 425 says when.
                    None if fresh.is_empty() => None,
                    None => Some(now_ms),
                };
                let skip = fresh.len().saturating_sub(PUSH_AT_MOST);
                fresh.split_off(skip)
            }
            Fetched::TooEarly { retry_at, schedule } => {
                let at = schedule
                    .and_then(|s| s.next_reveal_at)
                    .or(retry_at)
                    .unwrap_or(now_ms.saturating_add(FAILURE_RETRY_MS));
                self.next_at = Some(at.max(not_before));
                Vec::new()
            }
            Fetched::Refused => {
                self.next_at = None;
                Vec::new()
            }
            Fetched::Failed => {
                self.next_at = Some(now_ms.saturating_add(FAILURE_RETRY_MS));
                Vec::new()
            }
        }
    }
}

/// When the room's single alarm must ring: the earlier of the `hello` deadline and the next
/// ask (the latter only while sockets are open: a room nobody watches asks nothing).
pub fn alarm_at(
    hello_deadline: Option<u64>,
    reveal: Option<&RevealState>,
    sockets: usize,
) -> Option<u64> {
    let ask = reveal
        .filter(|_| sockets > 0)
        .and_then(|r| r.next_at)
        .map(|at| u64::try_from(at).unwrap_or(0));
    match (hello_deadline, ask) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(round: u64) -> RoundKey {
        RoundKey {
            round,
            key: format!("{round:064x}"),
        }
    }

    fn scheduled(public: u64, next: Option<i64>) -> Option<Schedule> {
        Some(Schedule {
            public,
            next_reveal_at: next,
        })
    }

    #[test]
    fn a_room_asks_at_once_then_at_each_reveal() {
        let mut s = RevealState::fresh(1_000);
        assert!(s.due(1_000) && s.due(996) && !s.due(994));
        assert_eq!(s.from_round(), 1);
        // Nothing out yet: the origin says when round 1 comes out.
        let early = Fetched::TooEarly {
            retry_at: Some(1_500),
            schedule: scheduled(0, Some(4_001)),
        };
        assert!(s.apply(early, 1_000).is_empty());
        assert_eq!(
            s.next_at,
            Some(4_001),
            "the private schedule wins over retryAt"
        );
        assert_eq!(s.latest(), None);
        // At the reveal: round 1, and when round 2 comes out.
        let page = Fetched::Page {
            rounds: vec![key(1)],
            schedule: scheduled(1, Some(6_001)),
        };
        assert_eq!(s.apply(page, 4_001), vec![key(1)]);
        assert_eq!((s.round, s.next_at), (1, Some(6_001)));
        assert_eq!(s.latest(), Some(key(1)));
        assert_eq!(s.from_round(), 2);
        // The alarm rang a little early by the edge's clock: 425, the same instant again, but
        // never sooner than the least gap.
        let early = Fetched::TooEarly {
            retry_at: Some(7_000),
            schedule: scheduled(1, Some(6_001)),
        };
        assert!(s.apply(early, 5_999).is_empty());
        assert_eq!(s.next_at, Some(6_019));
        // Stored and read back (an evicted room resumes).
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<RevealState>(&text).unwrap(), s);
    }

    #[test]
    fn without_a_schedule_the_public_retry_time_is_used() {
        let mut s = RevealState::fresh(0);
        let early = Fetched::TooEarly {
            retry_at: Some(1_200),
            schedule: None,
        };
        s.apply(early, 0);
        assert_eq!(s.next_at, Some(1_200));
        let page = Fetched::Page {
            rounds: vec![key(1)],
            schedule: None,
        };
        assert_eq!(s.apply(page, 1_300), vec![key(1)]);
        assert_eq!(
            s.next_at,
            Some(1_300),
            "asks again at once; the 425 says when"
        );
        // An ended game answers an empty page: stop.
        let empty = Fetched::Page {
            rounds: vec![],
            schedule: None,
        };
        assert!(s.apply(empty, 1_400).is_empty());
        assert_eq!(s.next_at, None);
        assert!(!s.due(i64::MAX - 10));
    }

    #[test]
    fn gaps_push_the_latest_keys_in_order_and_ignore_strays() {
        let mut s = RevealState {
            round: 2,
            key: Some(key(2).key),
            next_at: Some(0),
        };
        let rounds: Vec<RoundKey> = (3..=40).map(key).collect();
        let page = Fetched::Page {
            rounds,
            schedule: scheduled(40, Some(9_000)),
        };
        let pushed = s.apply(page, 100);
        assert_eq!(pushed.len(), PUSH_AT_MOST);
        assert_eq!(pushed.first().unwrap().round, 40 - PUSH_AT_MOST as u64 + 1);
        assert_eq!(pushed.last().unwrap(), &key(40));
        assert_eq!(s.round, 40);
        // A page that does not follow on is not pushed.
        let stray = Fetched::Page {
            rounds: vec![key(45)],
            schedule: scheduled(45, Some(9_500)),
        };
        assert!(s.apply(stray, 200).is_empty());
        assert_eq!(s.round, 40);
        assert_eq!(s.next_at, Some(200), "more is public: ask again at once");
        // A full page with more public behind it: ask again at once.
        let mut s = RevealState::fresh(0);
        let page = Fetched::Page {
            rounds: (1..=3).map(key).collect(),
            schedule: scheduled(5, Some(9_000)),
        };
        s.apply(page, 50);
        assert_eq!(s.next_at, Some(50));
    }

    #[test]
    fn the_end_refusals_and_failures() {
        let mut s = RevealState::fresh(0);
        s.apply(
            Fetched::Page {
                rounds: vec![key(1)],
                schedule: scheduled(1, Some(5_000)),
            },
            10,
        );
        s.ended(3_000);
        assert_eq!(s.next_at, Some(3_000));
        // After the end the origin tells no next reveal: done.
        let last = Fetched::Page {
            rounds: vec![key(2)],
            schedule: scheduled(2, None),
        };
        assert_eq!(s.apply(last, 3_000), vec![key(2)]);
        assert_eq!(s.next_at, None);
        let mut s = RevealState::fresh(0);
        s.apply(Fetched::Failed, 100);
        assert_eq!(s.next_at, Some(100 + FAILURE_RETRY_MS));
        s.apply(Fetched::Refused, 200);
        assert_eq!(s.next_at, None);
    }

    #[test]
    fn schedule_headers_and_the_alarm() {
        assert_eq!(
            Schedule::from_headers(Some("3"), Some("1700000000001")),
            scheduled(3, Some(1_700_000_000_001))
        );
        assert_eq!(Schedule::from_headers(Some("3"), None), scheduled(3, None));
        assert_eq!(Schedule::from_headers(None, Some("5")), None);
        assert_eq!(Schedule::from_headers(Some("x"), None), None);
        assert_eq!(Schedule::from_headers(Some("3"), Some("soon")), None);
        let s = RevealState::fresh(500);
        assert_eq!(alarm_at(Some(900), Some(&s), 1), Some(500));
        assert_eq!(alarm_at(Some(400), Some(&s), 1), Some(400));
        assert_eq!(alarm_at(None, Some(&s), 0), None, "nobody watches: no ask");
        assert_eq!(alarm_at(Some(900), Some(&s), 0), Some(900));
        assert_eq!(alarm_at(None, None, 3), None);
        let done = RevealState::default();
        assert_eq!(alarm_at(None, Some(&done), 3), None);
    }
}
