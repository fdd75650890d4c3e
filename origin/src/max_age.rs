//! A game's maximum lifetime (`GAME_MAX_AGE`, 24 h by default), so that a user's one active
//! slot cannot be held forever by a game nobody exits (a closed tab, a lost token, a squatter).
//!
//! Two halves, neither of which needs a sweeper that could fall behind:
//! - the slot (`active_game_by_user`) is written with a Cassandra TTL of the game's remaining
//!   life ([`MaxAge::slot_ttl_seconds`]), so Cassandra frees it by itself;
//! - every read of a game applies [`MaxAge::effective`]: an active game past its expiry reads
//!   as exited *at its expiry*, so the timeline, the views and an exit (answered like the exit
//!   of an ended game, nothing written) agree on when it ended.
//!
//! With events on, the end at the expiry is also stored and published: the start queues an
//! expiry row due then, and the relay that reads it ends the game (see [`crate::outbox`]). An
//! exit judged at or after the expiry records nothing (a one-player game answers the end at the
//! expiry; a shared game's seat is refused), so every exit's time is before its game's expiry.
//!
//! The TTL is per write, so rows written before this existed keep working: their slot is
//! released by the next start of that user, because the game it points at reads as ended.
//!
//! A game's life counts from the later of its creation and its first step (`/v1` may schedule
//! a session up to 7 days ahead; it must not end before it starts).

use api::GameStatus;
use kernel::SettingsError;

use crate::domain::Game;

/// The variable.
pub const GAME_MAX_AGE: &str = "GAME_MAX_AGE";
/// The default: 24 hours.
pub const DEFAULT_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest accepted: 365 days (Cassandra's TTL limit is 20 years; a year is already generous).
pub const MAX_MAX_AGE_MS: i64 = 365 * 24 * 60 * 60 * 1000;

/// How long a game may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge {
    ms: i64,
}

impl Default for MaxAge {
    fn default() -> MaxAge {
        MaxAge {
            ms: DEFAULT_MAX_AGE_MS,
        }
    }
}

impl MaxAge {
    /// A lifetime of `ms` milliseconds (at least one second).
    pub fn from_ms(ms: i64) -> MaxAge {
        MaxAge { ms: ms.max(1_000) }
    }

    /// Parses `GAME_MAX_AGE`: a whole number followed by `s`, `m`, `h` or `d` (`90s`, `30m`,
    /// `24h`, `7d`), or a bare number of seconds; from one second to 365 days. Unset or empty
    /// is the default.
    pub fn parse(value: Option<&str>) -> Result<MaxAge, SettingsError> {
        Ok(MaxAge {
            ms: parse_duration_ms(
                GAME_MAX_AGE,
                value,
                DEFAULT_MAX_AGE_MS,
                MAX_MAX_AGE_MS,
                "365 days",
            )?,
        })
    }

    /// The lifetime, ms.
    pub fn ms(self) -> i64 {
        self.ms
    }

    /// When `game` ends at the latest, Unix ms. A sealed game also ends when its chain does,
    /// [`shared_engine::sealed::LIFETIME_MS`] after its first step.
    pub fn expires_at(self, game: &Game) -> i64 {
        let expiry = game
            .created_at_ms
            .max(game.start_at_ms)
            .saturating_add(self.ms);
        if game.algorithm.is_sealed() {
            let chain_end = game
                .start_at_ms
                .saturating_add(shared_engine::sealed::LIFETIME_MS as i64);
            return expiry.min(chain_end);
        }
        expiry
    }

    /// The TTL for the slot of `game` written at `now_ms`: the seconds it has left, rounded up,
    /// at least 1 (a TTL of 0 would mean "never expires").
    pub fn slot_ttl_seconds(self, game: &Game, now_ms: i64) -> i32 {
        let left_ms = self.expires_at(game).saturating_sub(now_ms).max(1);
        let secs = left_ms.saturating_add(999) / 1_000;
        i32::try_from(secs).unwrap_or(i32::MAX).max(1)
    }

    /// Whether `game` is past its lifetime at `now_ms`.
    pub fn is_expired(self, game: &Game, now_ms: i64) -> bool {
        now_ms >= self.expires_at(game)
    }

    /// `game` as reads show it at `now_ms`: an active game past its lifetime is exited at its
    /// expiry. Exited games are as stored.
    pub fn effective(self, mut game: Game, now_ms: i64) -> Game {
        if game.status == GameStatus::Active && self.is_expired(&game, now_ms) {
            game.exited_at_ms = Some(self.expires_at(&game));
            game.status = GameStatus::Exited;
        }
        game
    }
}

/// Parses a duration variable: a whole number followed by `s`, `m`, `h` or `d` (`90s`, `30m`,
/// `24h`, `7d`), or a bare number of seconds; from one second to `max_ms` (`max_text` in the
/// error). Unset or empty is `default_ms`. Shared by `GAME_MAX_AGE` and `GAME_RETENTION`.
pub(crate) fn parse_duration_ms(
    variable: &'static str,
    value: Option<&str>,
    default_ms: i64,
    max_ms: i64,
    max_text: &str,
) -> Result<i64, SettingsError> {
    let Some(raw) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default_ms);
    };
    let invalid = || {
        SettingsError::new(
            variable,
            format!(
                "must be a duration like 90s, 30m, 24h or 7d (1 second to {max_text}), got {raw:?}"
            ),
        )
    };
    let (digits, unit_ms) = match raw.char_indices().last() {
        Some((i, 's')) => (&raw[..i], 1_000),
        Some((i, 'm')) => (&raw[..i], 60_000),
        Some((i, 'h')) => (&raw[..i], 3_600_000),
        Some((i, 'd')) => (&raw[..i], 86_400_000),
        _ => (raw, 1_000),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .filter(|ms| (1_000..=max_ms).contains(ms))
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn game(created: i64, start: i64) -> Game {
        crate::test_fixtures::active_game(created, start)
    }

    #[test]
    fn game_max_age_parses_units_and_names_the_variable_when_wrong() {
        assert_eq!(MaxAge::parse(None).unwrap().ms(), DEFAULT_MAX_AGE_MS);
        assert_eq!(MaxAge::parse(Some(" ")).unwrap().ms(), DEFAULT_MAX_AGE_MS);
        assert_eq!(MaxAge::parse(Some("24h")).unwrap().ms(), DEFAULT_MAX_AGE_MS);
        assert_eq!(MaxAge::parse(Some("5s")).unwrap().ms(), 5_000);
        assert_eq!(MaxAge::parse(Some("5")).unwrap().ms(), 5_000);
        assert_eq!(MaxAge::parse(Some("30m")).unwrap().ms(), 1_800_000);
        assert_eq!(MaxAge::parse(Some("7d")).unwrap().ms(), 7 * 86_400_000);
        assert_eq!(MaxAge::parse(Some("365d")).unwrap().ms(), MAX_MAX_AGE_MS);
        for bad in [
            "0s",
            "0",
            "366d",
            "-5s",
            "1.5h",
            "h",
            "5w",
            "soon",
            "99999999999999999d",
        ] {
            let e = MaxAge::parse(Some(bad)).unwrap_err();
            assert_eq!(e.variable, GAME_MAX_AGE, "{bad}");
            assert!(e.to_string().starts_with("invalid GAME_MAX_AGE:"), "{e}");
        }
    }

    #[test]
    fn a_game_past_its_max_age_reads_as_exited_at_its_expiry() {
        let age = MaxAge::from_ms(10_000);
        let g = game(T0, T0 + 3_000);
        // Counted from the first step, which is after the creation here.
        assert_eq!(age.expires_at(&g), T0 + 13_000);
        assert_eq!(age.effective(g.clone(), T0 + 12_999), g);
        let ended = age.effective(g.clone(), T0 + 13_000);
        assert_eq!(ended.status, GameStatus::Exited);
        assert_eq!(ended.exited_at_ms, Some(T0 + 13_000));
        assert_eq!(ended.params().unwrap().ended_at_ms(), Some(T0 + 13_000));
        // An exit before the expiry stands.
        let mut exited = g.clone();
        exited.status = GameStatus::Exited;
        exited.exited_at_ms = Some(T0 + 5_000);
        assert_eq!(age.effective(exited.clone(), T0 + 99_000), exited);
        // A start time in the past counts from the creation.
        assert_eq!(age.expires_at(&game(T0, T0 - 50_000)), T0 + 10_000);
    }

    #[test]
    fn the_slot_ttl_is_the_games_remaining_life_rounded_up() {
        let age = MaxAge::from_ms(10_000);
        let g = game(T0, T0);
        assert_eq!(age.slot_ttl_seconds(&g, T0), 10);
        assert_eq!(age.slot_ttl_seconds(&g, T0 + 1), 10);
        assert_eq!(age.slot_ttl_seconds(&g, T0 + 1_000), 9);
        assert_eq!(age.slot_ttl_seconds(&g, T0 + 9_999), 1);
        // Past it (a late claim of an old game): never 0, which would mean "no TTL".
        assert_eq!(age.slot_ttl_seconds(&g, T0 + 60_000), 1);
        assert_eq!(
            MaxAge::default().slot_ttl_seconds(&g, T0),
            (DEFAULT_MAX_AGE_MS / 1_000) as i32
        );
    }
}
