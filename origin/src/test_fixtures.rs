//! Values the unit tests of several modules share, so a new field of [`Game`] is filled in
//! one place rather than in every module's copy.

use api::{Algorithm, BreakEvery, GameId, GameStatus, RegionName, TickMs, UserId};

use crate::domain::Game;

/// An active single-player game created at `created_ms` that starts at `start_ms`.
pub(crate) fn active_game(created_ms: i64, start_ms: i64) -> Game {
    Game {
        id: GameId::from(uuid::Uuid::nil()),
        user_id: UserId::parse("alice").unwrap(),
        region: RegionName::parse("eu").unwrap(),
        seed: 1,
        start_at_ms: start_ms,
        tick_ms: TickMs::parse(100).unwrap(),
        break_every: BreakEvery::parse(10).unwrap(),
        algorithm: Algorithm::default().into(),
        status: GameStatus::Active,
        created_at_ms: created_ms,
        exited_at_ms: None,
        metadata: None,
        owner_key: None,
        shared: None,
        sealed: None,
    }
}
