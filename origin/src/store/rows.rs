//! The `games` row as the driver reads and writes it, and its conversions to and from
//! [`Game`]. Reads check every column again: a row this service did not write is reported as
//! corrupt instead of reaching the engine.

use api::{
    Algorithm, BreakEvery, GameId, GameStatus, IdempotencyKey, Metadata, RegionName, TickMs, UserId,
};
use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};
use uuid::Uuid;

use super::StoreError;
use crate::domain::Game;

/// The columns of `games`, in the order of the prepared statements.
pub(super) const GAME_COLUMNS: &str = "game_id, user_id, region, seed, start_at, tick_ms, break_every, algorithm, status, \
                                       created_at, exited_at, metadata, owner_key";

/// One `games` row; bound and read by column name.
#[derive(Debug, Clone, DeserializeRow, SerializeRow)]
pub(super) struct GameRow {
    game_id: Uuid,
    user_id: String,
    region: String,
    seed: i64,
    start_at: CqlTimestamp,
    tick_ms: i32,
    break_every: i32,
    algorithm: String,
    status: String,
    created_at: CqlTimestamp,
    exited_at: Option<CqlTimestamp>,
    metadata: Option<String>,
    /// Added after the first release (`ALTER TABLE`): rows written before it read as null.
    owner_key: Option<String>,
}

/// A `games` row with the TTL of the statement that writes it (bind marker `[ttl]` of
/// `USING TTL ?`).
#[derive(Debug, Clone, SerializeRow)]
pub(super) struct GameRowTtl {
    #[scylla(flatten)]
    row: GameRow,
    #[scylla(rename = "[ttl]")]
    ttl: i32,
}

impl GameRowTtl {
    /// `game`'s row, expiring after `ttl_seconds` (at least 1: 0 would mean "never").
    pub(super) fn new(game: &Game, ttl_seconds: i32) -> GameRowTtl {
        GameRowTtl {
            row: GameRow::from(game),
            ttl: ttl_seconds.max(1),
        }
    }
}

impl From<&Game> for GameRow {
    fn from(game: &Game) -> GameRow {
        GameRow {
            game_id: game.id.uuid(),
            user_id: game.user_id.as_str().to_owned(),
            region: game.region.as_str().to_owned(),
            seed: i64::from(game.seed),
            start_at: CqlTimestamp(game.start_at_ms),
            // TickMs and BreakEvery are at most 60 000 and 1 000 000: they fit an `int`.
            tick_ms: i32::try_from(game.tick_ms.get()).unwrap_or(i32::MAX),
            break_every: i32::try_from(game.break_every.get()).unwrap_or(i32::MAX),
            algorithm: game.algorithm.as_str().to_owned(),
            status: game.status.as_str().to_owned(),
            created_at: CqlTimestamp(game.created_at_ms),
            exited_at: game.exited_at_ms.map(CqlTimestamp),
            metadata: game.metadata.as_ref().map(Metadata::to_json),
            owner_key: game.owner_key.as_ref().map(|k| k.as_str().to_owned()),
        }
    }
}

impl TryFrom<GameRow> for Game {
    type Error = StoreError;

    fn try_from(row: GameRow) -> Result<Game, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("game {}: {what}", row.game_id));
        let metadata = match &row.metadata {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Metadata>(text)
                    .map_err(|_| corrupt("metadata is not a JSON object"))?,
            ),
        };
        let number = |value: i32| u64::try_from(value).unwrap_or(u64::MAX);
        Ok(Game {
            id: GameId::from(row.game_id),
            user_id: UserId::parse(&row.user_id).map_err(|_| corrupt("bad user_id"))?,
            region: RegionName::parse(&row.region).map_err(|_| corrupt("bad region"))?,
            seed: u32::try_from(row.seed).map_err(|_| corrupt("seed out of range"))?,
            start_at_ms: row.start_at.0,
            tick_ms: TickMs::parse(number(row.tick_ms)).map_err(|_| corrupt("bad tick_ms"))?,
            break_every: BreakEvery::parse(number(row.break_every))
                .map_err(|_| corrupt("bad break_every"))?,
            algorithm: Algorithm::parse(&row.algorithm)
                .map_err(|_| corrupt("unknown algorithm"))?,
            status: GameStatus::parse(&row.status).ok_or_else(|| corrupt("unknown status"))?,
            created_at_ms: row.created_at.0,
            exited_at_ms: row.exited_at.map(|t| t.0),
            metadata,
            owner_key: match &row.owner_key {
                None => None,
                Some(key) => {
                    Some(IdempotencyKey::parse(key).map_err(|_| corrupt("bad owner_key"))?)
                }
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game() -> Game {
        Game {
            id: GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            region: RegionName::parse("eu").unwrap(),
            seed: u32::MAX,
            start_at_ms: 1_700_000_003_000,
            tick_ms: TickMs::parse(60_000).unwrap(),
            break_every: BreakEvery::parse(1_000_000).unwrap(),
            algorithm: Algorithm::Lcg32,
            status: GameStatus::Exited,
            created_at_ms: 1_700_000_000_000,
            exited_at_ms: Some(1_700_000_009_000),
            metadata: Some(serde_json::from_str(r#"{"mode":"duel"}"#).unwrap()),
            owner_key: Some(IdempotencyKey::parse("retry-7").unwrap()),
        }
    }

    #[test]
    fn rows_round_trip() {
        let game = game();
        assert_eq!(Game::try_from(GameRow::from(&game)).unwrap(), game);
        let bare = Game {
            metadata: None,
            owner_key: None,
            exited_at_ms: None,
            status: GameStatus::Active,
            ..game
        };
        assert_eq!(Game::try_from(GameRow::from(&bare)).unwrap(), bare);
    }

    #[test]
    fn foreign_rows_are_corrupt() {
        let good = GameRow::from(&game());
        for bad in [
            GameRow {
                tick_ms: 0,
                ..good.clone()
            },
            GameRow {
                break_every: -3,
                ..good.clone()
            },
            GameRow {
                seed: -1,
                ..good.clone()
            },
            GameRow {
                status: "paused".into(),
                ..good.clone()
            },
            GameRow {
                user_id: "a b".into(),
                ..good.clone()
            },
            GameRow {
                metadata: Some("[1]".into()),
                ..good.clone()
            },
            GameRow {
                owner_key: Some("has space".into()),
                ..good.clone()
            },
        ] {
            assert!(
                matches!(Game::try_from(bad.clone()), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
