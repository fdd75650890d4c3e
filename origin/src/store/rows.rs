//! The `games` row as the driver reads and writes it, and its conversions to and from
//! [`Game`]. Reads check every column again: a row this service did not write is reported as
//! corrupt instead of reaching the engine.

use api::{
    BreakEvery, GameAlgorithm, GameId, GameStatus, IdempotencyKey, Metadata, RegionName,
    SeatResult, SharedGame, TickMs, TickView, UserId,
};
use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};
use shared_engine::sealed::Key;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{Game, SealedSecret, Seat};

/// The columns of `games`, in the order of the prepared statements.
pub(super) const GAME_COLUMNS: &str = "game_id, user_id, region, seed, start_at, tick_ms, break_every, algorithm, status, \
                                       created_at, exited_at, metadata, owner_key, max_players, join_deadline, \
                                       sealed_root, sealed_commitment";

/// The columns of `game_seats`, in the order of the prepared statements.
pub(super) const SEAT_COLUMNS: &str = "game_id, seat, user_id, joined_at, owner_key, exited_at, \
                                       final_step, final_value, final_round, final_broken, break_first";

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
    /// Shared games (migration 0004): null for one-player games.
    max_players: Option<i32>,
    join_deadline: Option<CqlTimestamp>,
    /// Added for `sealed-v1` (migration 0006): the chain's secret root and its commitment.
    sealed_root: Option<Vec<u8>>,
    sealed_commitment: Option<Vec<u8>>,
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
            // At most api::limits::MAX_PLAYERS: fits an `int`.
            max_players: game
                .shared
                .map(|s| i32::try_from(s.max_players).unwrap_or(i32::MAX)),
            join_deadline: game.shared.map(|s| CqlTimestamp(s.join_deadline)),
            sealed_root: game.sealed.as_ref().map(|s| s.root.0.to_vec()),
            sealed_commitment: game.sealed.as_ref().map(|s| s.commitment.0.to_vec()),
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
        let algorithm =
            GameAlgorithm::parse(&row.algorithm).ok_or_else(|| corrupt("unknown algorithm"))?;
        let key = |bytes: &Vec<u8>| <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Key);
        // A sealed game has both halves of its chain, any other game neither.
        let sealed = match (
            &row.sealed_root,
            &row.sealed_commitment,
            algorithm.is_sealed(),
        ) {
            (None, None, false) => None,
            (Some(root), Some(commitment), true) => Some(SealedSecret {
                root: key(root).ok_or_else(|| corrupt("sealed_root is not 32 bytes"))?,
                commitment: key(commitment)
                    .ok_or_else(|| corrupt("sealed_commitment is not 32 bytes"))?,
            }),
            _ => return Err(corrupt("sealed columns do not match the algorithm")),
        };
        Ok(Game {
            id: GameId::from(row.game_id),
            user_id: UserId::parse(&row.user_id).map_err(|_| corrupt("bad user_id"))?,
            region: RegionName::parse(&row.region).map_err(|_| corrupt("bad region"))?,
            seed: u32::try_from(row.seed).map_err(|_| corrupt("seed out of range"))?,
            start_at_ms: row.start_at.0,
            tick_ms: TickMs::parse(number(row.tick_ms)).map_err(|_| corrupt("bad tick_ms"))?,
            break_every: BreakEvery::parse(number(row.break_every))
                .map_err(|_| corrupt("bad break_every"))?,
            algorithm,
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
            shared: match (row.max_players, row.join_deadline) {
                (None, None) => None,
                (Some(seats), Some(deadline)) => Some(SharedGame {
                    max_players: api::MaxPlayers::parse(u64::try_from(seats).unwrap_or(0))
                        .map_err(|_| corrupt("bad max_players"))?
                        .get(),
                    join_deadline: deadline.0,
                }),
                _ => return Err(corrupt("max_players and join_deadline go together")),
            },
            sealed,
        })
    }
}

/// One `game_seats` row.
#[derive(Debug, Clone, DeserializeRow, SerializeRow)]
pub(super) struct SeatRow {
    pub(super) game_id: Uuid,
    pub(super) seat: i32,
    user_id: String,
    joined_at: CqlTimestamp,
    owner_key: Option<String>,
    exited_at: Option<CqlTimestamp>,
    final_step: Option<i64>,
    final_value: Option<i64>,
    final_round: Option<i64>,
    final_broken: Option<bool>,
    break_first: Option<bool>,
}

/// A step count as a `bigint` (every step a server computes is far below `i64::MAX`).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<&Seat> for SeatRow {
    fn from(seat: &Seat) -> SeatRow {
        let tick = seat.result.and_then(|r| r.final_tick);
        SeatRow {
            game_id: seat.game_id.uuid(),
            seat: i32::try_from(seat.seat).unwrap_or(i32::MAX),
            user_id: seat.user_id.as_str().to_owned(),
            joined_at: CqlTimestamp(seat.joined_at_ms),
            owner_key: seat.owner_key.as_ref().map(|k| k.as_str().to_owned()),
            exited_at: seat.result.map(|r| CqlTimestamp(r.exited_at)),
            final_step: tick.map(|t| big(t.step)),
            final_value: tick.map(|t| big(t.value)),
            final_round: tick.map(|t| big(t.round)),
            final_broken: tick.map(|t| t.broken),
            break_first: seat.result.map(|r| r.break_first),
        }
    }
}

impl TryFrom<SeatRow> for Seat {
    type Error = StoreError;

    fn try_from(row: SeatRow) -> Result<Seat, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("seat {} of game {}: {what}", row.seat, row.game_id))
        };
        let count = |n: i64| u64::try_from(n).map_err(|_| corrupt("negative step"));
        let final_tick = match (
            row.final_step,
            row.final_value,
            row.final_round,
            row.final_broken,
        ) {
            (None, None, None, None) => None,
            (Some(step), Some(value), Some(round), Some(broken)) => Some(TickView {
                step: count(step)?,
                value: count(value)?,
                round: count(round)?,
                broken,
            }),
            _ => return Err(corrupt("partial final state")),
        };
        let result = match (row.exited_at, row.break_first) {
            (None, None) if final_tick.is_none() => None,
            (Some(at), Some(break_first)) => Some(SeatResult {
                exited_at: at.0,
                final_tick,
                break_first,
            }),
            _ => return Err(corrupt("partial exit")),
        };
        Ok(Seat {
            game_id: GameId::from(row.game_id),
            seat: u32::try_from(row.seat).map_err(|_| corrupt("negative seat"))?,
            user_id: UserId::parse(&row.user_id).map_err(|_| corrupt("bad user_id"))?,
            joined_at_ms: row.joined_at.0,
            owner_key: match &row.owner_key {
                None => None,
                Some(key) => {
                    Some(IdempotencyKey::parse(key).map_err(|_| corrupt("bad owner_key"))?)
                }
            },
            result,
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
            algorithm: api::Algorithm::Lcg32.into(),
            status: GameStatus::Exited,
            created_at_ms: 1_700_000_000_000,
            exited_at_ms: Some(1_700_000_009_000),
            metadata: Some(serde_json::from_str(r#"{"mode":"duel"}"#).unwrap()),
            owner_key: Some(IdempotencyKey::parse("retry-7").unwrap()),
            shared: Some(SharedGame {
                max_players: 40,
                join_deadline: 1_700_000_003_000,
            }),
            sealed: None,
        }
    }

    #[test]
    fn rows_round_trip() {
        let game = game();
        assert_eq!(Game::try_from(GameRow::from(&game)).unwrap(), game);
        let bare = Game {
            metadata: None,
            owner_key: None,
            shared: None,
            exited_at_ms: None,
            status: GameStatus::Active,
            ..game
        };
        assert_eq!(Game::try_from(GameRow::from(&bare)).unwrap(), bare);
        let sealed = Game {
            algorithm: GameAlgorithm::SealedV1,
            sealed: Some(SealedSecret {
                root: Key([1; 32]),
                commitment: Key([2; 32]),
            }),
            ..bare
        };
        assert_eq!(Game::try_from(GameRow::from(&sealed)).unwrap(), sealed);
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
            GameRow {
                max_players: Some(1),
                ..good.clone()
            },
            GameRow {
                join_deadline: None,
                ..good.clone()
            },
            // A seeded game with a chain, a sealed one without, a short key.
            GameRow {
                sealed_root: Some(vec![0; 32]),
                sealed_commitment: Some(vec![0; 32]),
                ..good.clone()
            },
            GameRow {
                algorithm: "sealed-v1".into(),
                ..good.clone()
            },
            GameRow {
                algorithm: "sealed-v1".into(),
                sealed_root: Some(vec![0; 31]),
                sealed_commitment: Some(vec![0; 32]),
                ..good.clone()
            },
        ] {
            assert!(
                matches!(Game::try_from(bad.clone()), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seat_rows_round_trip() {
        let seat = Seat {
            game_id: game().id,
            seat: 39,
            user_id: UserId::parse("p39").unwrap(),
            joined_at_ms: 5,
            owner_key: Some(IdempotencyKey::parse("join-1").unwrap()),
            result: Some(SeatResult {
                exited_at: 9,
                final_tick: Some(TickView {
                    step: 3,
                    value: 1,
                    round: 2,
                    broken: false,
                }),
                break_first: true,
            }),
        };
        assert_eq!(Seat::try_from(SeatRow::from(&seat)).unwrap(), seat);
        let countdown = Seat {
            result: Some(SeatResult {
                exited_at: 9,
                final_tick: None,
                break_first: false,
            }),
            ..seat.clone()
        };
        assert_eq!(
            Seat::try_from(SeatRow::from(&countdown)).unwrap(),
            countdown
        );
        let playing = Seat {
            result: None,
            owner_key: None,
            ..seat.clone()
        };
        assert_eq!(Seat::try_from(SeatRow::from(&playing)).unwrap(), playing);
        let good = SeatRow::from(&seat);
        for bad in [
            SeatRow {
                final_value: None,
                ..good.clone()
            },
            SeatRow {
                break_first: None,
                ..good.clone()
            },
            SeatRow {
                seat: -1,
                ..good.clone()
            },
            SeatRow {
                final_step: Some(-5),
                ..good.clone()
            },
        ] {
            assert!(
                matches!(Seat::try_from(bad.clone()), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
