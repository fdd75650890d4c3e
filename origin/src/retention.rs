//! How long a finished game stays in Cassandra (`GAME_RETENTION`, 30 days by default), and the
//! TTL every write of a game's rows carries so that Cassandra removes them by itself (no
//! sweeper that could fall behind, nothing to schedule).
//!
//! A TTL in Cassandra belongs to each cell (and to the row marker an `INSERT` writes), not to a
//! row: a later write without a TTL would leave an immortal cell behind. So every statement
//! that writes a row keyed by a game (or pointing at one) binds one of these TTLs:
//!
//! - the `games` row written at start: [`Retention::running_ttl_seconds`], the game's
//!   remaining life (`GAME_MAX_AGE`) plus the retention. A game nobody exits is gone
//!   `GAME_RETENTION` after its expiry.
//! - the exit rewrites the whole `games` row, row marker included, in the same conditional
//!   batch as its LWT: [`Retention::finished_ttl_seconds`], the retention alone, so an early
//!   exit frees the row early.
//! - outbox rows (`game.started`, `game.exited`; the relay deletes them once published):
//!   [`Retention::outbox_ttl_seconds`], the retention, counted from their queuing, which is
//!   never before the game's row was written: they never outlive it. An event the relay could
//!   not publish within the retention (a broker down for a month with the default) is dropped
//!   with its game.
//! - the `Idempotency-Key` row: [`Retention::key_ttl_seconds`], 24 h or the retention if
//!   shorter. It is written before the game and the game lives at least the retention from
//!   then, so a key never outlives the game it names (a retried start after that is a new
//!   start).
//! - the user's active slot already expires with the game's life (`crate::max_age`) and is
//!   deleted by the exit.
//!
//! Rows written before this existed carry no TTL; an exit of such a game rewrites its row with
//! one. Every TTL is at least 1 s (0 would mean "never").

use kernel::SettingsError;

use crate::domain::Game;
use crate::max_age::{MaxAge, parse_duration_ms};
use crate::store::IDEMPOTENCY_TTL_SECONDS;

/// The variable.
pub const GAME_RETENTION: &str = "GAME_RETENTION";
/// The default: 30 days.
pub const DEFAULT_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Longest accepted: 3,650 days. With a 365-day `GAME_MAX_AGE` and a `/v1` start 7 days ahead,
/// a TTL stays well under Cassandra's 20-year limit.
pub const MAX_RETENTION_MS: i64 = 3_650 * 24 * 60 * 60 * 1000;

/// How long a finished game is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    seconds: i32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention::from_ms(DEFAULT_RETENTION_MS)
    }
}

impl Retention {
    /// A retention of `ms` milliseconds, rounded up to whole seconds (at least one).
    pub fn from_ms(ms: i64) -> Retention {
        let seconds = ms.clamp(1_000, MAX_RETENTION_MS).saturating_add(999) / 1_000;
        Retention {
            seconds: i32::try_from(seconds).unwrap_or(i32::MAX),
        }
    }

    /// Parses `GAME_RETENTION` like `GAME_MAX_AGE` (`90s`, `30m`, `24h`, `30d`, or seconds),
    /// from 1 second to 3,650 days. Unset or empty is the default.
    pub fn parse(value: Option<&str>) -> Result<Retention, SettingsError> {
        let ms = parse_duration_ms(
            GAME_RETENTION,
            value,
            DEFAULT_RETENTION_MS,
            MAX_RETENTION_MS,
            "3650 days",
        )?;
        Ok(Retention::from_ms(ms))
    }

    /// The retention, seconds.
    pub fn seconds(self) -> i32 {
        self.seconds
    }

    /// The TTL of rows of `game` written at `now_ms` while it runs: until its expiry, plus the
    /// retention.
    pub fn running_ttl_seconds(self, max_age: MaxAge, game: &Game, now_ms: i64) -> i32 {
        max_age
            .slot_ttl_seconds(game, now_ms)
            .saturating_add(self.seconds)
    }

    /// The TTL of rows of a game written as it finishes.
    pub fn finished_ttl_seconds(self) -> i32 {
        self.seconds
    }

    /// The TTL of an outbox row.
    pub fn outbox_ttl_seconds(self) -> i32 {
        self.seconds
    }

    /// The TTL of an `Idempotency-Key` row.
    pub fn key_ttl_seconds(self) -> i32 {
        self.seconds
            .min(i32::try_from(IDEMPOTENCY_TTL_SECONDS).unwrap_or(i32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn game(created: i64, start: i64) -> Game {
        crate::test_fixtures::active_game(created, start)
    }

    #[test]
    fn game_retention_parses_units_and_names_the_variable_when_wrong() {
        assert_eq!(Retention::parse(None).unwrap().seconds(), 30 * 86_400);
        assert_eq!(Retention::parse(Some("")).unwrap(), Retention::default());
        assert_eq!(Retention::parse(Some("2s")).unwrap().seconds(), 2);
        assert_eq!(Retention::parse(Some("3")).unwrap().seconds(), 3);
        assert_eq!(Retention::parse(Some("90m")).unwrap().seconds(), 5_400);
        assert_eq!(
            Retention::parse(Some("3650d")).unwrap().seconds(),
            3_650 * 86_400
        );
        for bad in ["0s", "3651d", "-1d", "1.5d", "forever", "d"] {
            let e = Retention::parse(Some(bad)).unwrap_err();
            assert_eq!(e.variable, GAME_RETENTION, "{bad}");
            assert!(e.to_string().contains("3650 days"), "{e}");
        }
    }

    #[test]
    fn running_rows_live_until_the_expiry_plus_the_retention() {
        let age = MaxAge::from_ms(10_000);
        let keep = Retention::from_ms(5_000);
        let g = game(T0, T0 + 2_000);
        // Expiry at T0 + 12 s: 12 s left, plus 5 s.
        assert_eq!(keep.running_ttl_seconds(age, &g, T0), 17);
        assert_eq!(keep.running_ttl_seconds(age, &g, T0 + 11_500), 6);
        // A late write of an expired game still keeps it the retention (and never 0).
        assert_eq!(keep.running_ttl_seconds(age, &g, T0 + 99_000), 6);
        // The longest settings stay below Cassandra's 20-year TTL limit.
        let longest = Retention::from_ms(MAX_RETENTION_MS).running_ttl_seconds(
            MaxAge::from_ms(crate::max_age::MAX_MAX_AGE_MS),
            &game(T0, T0 + 7 * 86_400_000),
            T0,
        );
        assert!(longest < 630_720_000, "{longest}");
    }

    #[test]
    fn finished_rows_and_keys_never_outlive_the_retention() {
        let keep = Retention::from_ms(2_500);
        assert_eq!(keep.finished_ttl_seconds(), 3);
        assert_eq!(keep.outbox_ttl_seconds(), 3);
        assert_eq!(keep.key_ttl_seconds(), 3);
        // A long retention: keys are still remembered 24 h.
        assert_eq!(Retention::default().key_ttl_seconds(), 86_400);
        assert_eq!(Retention::default().finished_ttl_seconds(), 30 * 86_400);
    }
}
