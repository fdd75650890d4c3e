//! The leaderboard: a durable consumer of the game event stream ([`consumer`]) that keeps, per
//! period (`all`, and each UTC day) and algorithm, every player's best exit value and games
//! played in Cassandra ([`store`]), and what `GET /leaderboard` serves from it.
//!
//! Exactly-once effect under at-least-once delivery: every `game.exited` becomes one result row
//! per period keyed by (player, game, seat); writing it again (a redelivery after a crash, a
//! lost acknowledgement, a broker restart, or the same event published twice) writes the same
//! row. The player's totals are then recounted from their rows and stored only if they grew
//! (a Cassandra LWT on `games`), so neither a repeat nor a concurrent or late writer can count
//! twice or go back. A message is acknowledged only after both writes, so a crash at any point
//! leaves it to be delivered again to the durable consumer, which resumes where it was.

pub mod consumer;
pub mod store;

use api::leaderboard::utc_day;
use api::{EventType, GameEvent, GameId, UserId};

pub use consumer::{LeaderboardHandle, LeaderboardSettings};
pub use store::{CassandraLeaderboard, LeaderboardStore, MemoryLeaderboard};

/// One seat's result as one period counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// `all` or `day:YYYY-MM-DD`.
    pub period: String,
    /// The game's algorithm (wire name).
    pub algorithm: String,
    /// The player.
    pub user_id: UserId,
    /// The game.
    pub game_id: GameId,
    /// The seat (0 in a one-player game).
    pub seat: u32,
    /// `final.value`, absent for an exit during the countdown (or a sealed game's).
    pub value: Option<u64>,
    /// Unix ms of the exit.
    pub exited_at: i64,
}

/// The lines an event adds to the leaderboard: for a `game.exited`, one for `all` and one for
/// the UTC day of the exit; nothing for the other types.
pub fn lines_of(event: &GameEvent) -> Vec<ResultLine> {
    let (EventType::Exited, Some(exited_at)) = (event.kind, event.exited_at) else {
        return Vec::new();
    };
    ["all".to_owned(), format!("day:{}", utc_day(exited_at))]
        .into_iter()
        .map(|period| ResultLine {
            period,
            algorithm: event.algorithm.as_str().to_owned(),
            user_id: event.user_id.clone(),
            game_id: event.game_id,
            seat: event.seat_or_creator(),
            value: event.final_tick.map(|t| t.value),
            exited_at,
        })
        .collect()
}

/// Per player of one period and algorithm: (best value, games), as [`recount`] computes it
/// from the raw events; what the stored leaderboard must equal.
pub type Totals = std::collections::BTreeMap<String, (Option<u64>, u64)>;

/// Recomputes a leaderboard from raw events (any order, repeats included): the reference the
/// tests compare the consumer's work with.
pub fn recount<'a>(
    events: impl IntoIterator<Item = &'a GameEvent>,
    period: &str,
    algorithm: &str,
) -> Totals {
    let mut seats = std::collections::BTreeMap::new();
    for event in events {
        for line in lines_of(event) {
            if line.period == period && line.algorithm == algorithm {
                seats.insert(
                    (line.user_id.to_string(), line.game_id, line.seat),
                    line.value,
                );
            }
        }
    }
    let mut totals = Totals::new();
    for ((user, _, _), value) in seats {
        let entry = totals.entry(user).or_insert((None, 0));
        entry.0 = entry.0.max(value);
        entry.1 += 1;
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{GameStatus, GameView, RegionName, SeatResult};

    fn game() -> GameView {
        GameView {
            game_id: GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap(),
            user_id: UserId::parse("host").unwrap(),
            region: RegionName::parse("eu").unwrap(),
            seed: 42,
            start_at: 1_705_314_603_000,
            tick_ms: 100,
            break_every: 50,
            algorithm: api::Algorithm::Mix32V1.into(),
            status: GameStatus::Active,
            created_at: 1_705_314_600_000,
            exited_at: None,
            metadata: None,
            shared: None,
            owner_token: None,
            commitment: None,
            rounds: None,
            root: None,
        }
    }

    #[test]
    fn an_exit_counts_in_all_and_its_day_and_repeats_count_once() {
        let view = game();
        let params = view.params().unwrap();
        let user = UserId::parse("p1").unwrap();
        let a =
            GameEvent::seat_exited(&view, 1, &user, &SeatResult::at(&params, 1_705_314_613_000));
        let b = GameEvent::seat_exited(
            &view,
            0,
            &view.user_id,
            &SeatResult::at(&params, 1_705_314_601_000),
        );
        let lines = lines_of(&a);
        assert_eq!(
            lines.iter().map(|l| l.period.as_str()).collect::<Vec<_>>(),
            ["all", "day:2024-01-15"]
        );
        assert_eq!(lines[0].value, a.final_tick.map(|t| t.value));
        assert!(lines_of(&GameEvent::started(&view)).is_empty());
        let totals = recount([&a, &b, &a, &a], "all", "mix32-v1");
        assert_eq!(totals["p1"], (a.final_tick.map(|t| t.value), 1));
        // A countdown exit counts a game without a value.
        assert_eq!(totals["host"], (None, 1));
        assert!(recount([&a], "all", "lcg32").is_empty());
    }
}
