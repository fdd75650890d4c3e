//! Shared games: one deterministic game, several players, each in a seat of their own.
//!
//! A start with `maxPlayers` creates a game open for players until its `joinDeadline` (by
//! default its `startAt`, the end of the countdown); its creator holds seat 0. Others join it
//! with `POST /game/{id}/join` (origin) or `POST /edge/game/{id}/join` (edge), each getting a
//! seat and an owner token that exits only that seat. A seat's exit freezes that player's
//! result at the engine's state of the exit instant (server clock); the game ends when its last
//! seat has exited. `GET /game/{id}/results` lists every seat and its result.
//!
//! Refusals of a join, each with its own code: [`ErrorCode::GameFull`] (409),
//! [`ErrorCode::AlreadyPlaying`] (409, the user holds a seat or game elsewhere),
//! [`ErrorCode::NotJoinable`] (409, a one-player game), [`ErrorCode::JoinClosed`] (410, past
//! the join deadline) and [`ErrorCode::GameEnded`] (410).
//!
//! [`ErrorCode::GameFull`]: crate::ErrorCode::GameFull
//! [`ErrorCode::AlreadyPlaying`]: crate::ErrorCode::AlreadyPlaying
//! [`ErrorCode::NotJoinable`]: crate::ErrorCode::NotJoinable
//! [`ErrorCode::JoinClosed`]: crate::ErrorCode::JoinClosed
//! [`ErrorCode::GameEnded`]: crate::ErrorCode::GameEnded

use serde::{Deserialize, Serialize};
use shared_engine::{Params, State};

use crate::game::{GameStatus, GameView, TickView};
use crate::ids::{GameId, RegionName, UserId};

/// What makes a game shared: its seats and until when it takes players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SharedGame {
    /// Seats, the creator's included.
    pub max_players: u32,
    /// Unix ms from which joins are refused (`join_closed`).
    #[cfg_attr(test, ts(type = "number"))]
    pub join_deadline: i64,
}

/// `POST /game/{id}/join` and `POST /edge/game/{id}/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct JoinRequest {
    /// The joining player.
    pub user_id: UserId,
    /// Where the game lives, if the client knows (edge routing; origins ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub backend_region: Option<RegionName>,
}

/// One player's result: the engine's state at the instant their exit was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SeatResult {
    /// Unix ms of the exit, by the server's clock.
    #[cfg_attr(test, ts(type = "number"))]
    pub exited_at: i64,
    /// The step the player's game froze at (the last step that began before the exit);
    /// absent if they exited during the countdown.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, rename = "final"))]
    pub final_tick: Option<TickView>,
    /// Whether a break came before the exit (at least one break in `[0, final.step]`).
    pub break_first: bool,
}

impl SeatResult {
    /// The result of leaving the game of `params` at `exited_at`, from the shared engine.
    pub fn at(params: &Params, exited_at: i64) -> SeatResult {
        let final_tick = match shared_engine::state_at(&params.with_end(Some(exited_at)), exited_at)
        {
            State::Ended(tick) => tick,
            // with_end(exited_at) makes every instant from exited_at on Ended.
            _ => None,
        };
        SeatResult {
            exited_at,
            final_tick: final_tick.map(TickView::from),
            break_first: final_tick.is_some_and(|t| t.round > 0),
        }
    }
}

/// A seat of a shared game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SeatView {
    /// `0` is the creator's; joiners get `1..maxPlayers`.
    pub seat: u32,
    /// Its player.
    pub user_id: UserId,
    /// Unix ms the seat was taken.
    #[cfg_attr(test, ts(type = "number"))]
    pub joined_at: i64,
    /// The player's result, once they exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub result: Option<SeatResult>,
}

/// The answer to a join (201 for a new seat, 200 for the user's seat found again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct JoinView {
    /// The seat.
    #[serde(flatten)]
    pub seat: SeatView,
    /// The game (everything a client needs to compute its timeline).
    pub game: GameView,
    /// Only to the request that took the seat, or one carrying the `Idempotency-Key` that
    /// did: the credential that exits this seat and no other (`Authorization: Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub owner_token: Option<String>,
}

/// A join as the edge answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EdgeJoinView {
    /// The origin's answer.
    #[serde(flatten)]
    pub join: JoinView,
    /// The region whose origin seated the player.
    pub backend_region: RegionName,
}

/// `GET /game/{id}/results`: every seat of a game and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ResultsView {
    /// The game.
    pub game_id: GameId,
    /// `exited` once every seat exited (or the game reached its maximum age): the results
    /// are final and may be cached.
    pub status: GameStatus,
    /// Seats, the creator's included (absent for a one-player game).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub max_players: Option<u32>,
    /// Every taken seat, by seat number.
    pub seats: Vec<SeatView>,
}

impl ResultsView {
    /// Whether the results can change no more.
    pub fn is_final(&self) -> bool {
        self.status == GameStatus::Exited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_come_from_the_engine_at_the_exit_instant() {
        let params = Params::new(7, 1_000, 100, 4, shared_engine::Algorithm::Mix32V1).unwrap();
        let countdown = SeatResult::at(&params, 900);
        assert_eq!((countdown.final_tick, countdown.break_first), (None, false));
        for at in [1_001, 1_100, 1_150, 5_000, 50_000] {
            let r = SeatResult::at(&params, at);
            let tick = shared_engine::tick_at(&params, r.final_tick.unwrap().step);
            assert_eq!(r.final_tick, Some(TickView::from(tick)));
            // Frozen at the last step that began strictly before the exit.
            assert_eq!(tick.step, ((at - 1 - 1_000) / 100) as u64);
            assert_eq!(r.break_first, tick.round > 0);
        }
        // With breaks every 4 steps on average, 490 steps in have seen one.
        assert!(SeatResult::at(&params, 50_000).break_first);
    }

    #[test]
    fn seat_views_have_the_documented_shape() {
        let seat = SeatView {
            seat: 3,
            user_id: UserId::parse("p3").unwrap(),
            joined_at: 10,
            result: Some(SeatResult {
                exited_at: 20,
                final_tick: None,
                break_first: false,
            }),
        };
        assert_eq!(
            serde_json::to_value(&seat).unwrap(),
            json!({"seat": 3, "userId": "p3", "joinedAt": 10,
                   "result": {"exitedAt": 20, "breakFirst": false}})
        );
    }
}
