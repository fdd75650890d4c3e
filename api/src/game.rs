//! The game API: `/game/*` at the origin and `/edge/game/*` at the edge (camelCase JSON).
//!
//! The edge forwards [`StartRequest`] and [`ExitRequest`] to the origin as they are and answers
//! the origin's views with the edge's additions ([`EdgeGameView`], [`EdgeExitView`]).

use serde::{Deserialize, Serialize};
use shared_engine::{State, Tick};

use crate::sealed::GameAlgorithm;

use crate::ids::{BreakEvery, GameId, MaxPlayers, Metadata, RegionName, TickMs, UserId};
use crate::seats::{SeatResult, SharedGame};

/// `POST /game/start` and `POST /edge/game/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StartRequest {
    /// The player.
    pub user_id: UserId,
    /// The region the client would like (edge routing; origins accept and ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub preferred_region: Option<RegionName>,
    /// Break algorithm (default `mix32-v1`; `sealed-v1` for breaks nobody can compute ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[cfg_attr(test, ts(optional, type = "GameAlgorithm"))]
    pub algorithm: Option<GameAlgorithm>,
    /// Milliseconds per step (default: the region's `TICK_MS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tick_ms: Option<TickMs>,
    /// Break odds `1/n` (default: the region's `BREAK_EVERY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub break_every: Option<BreakEvery>,
    /// Free-form JSON object, at most 4 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub metadata: Option<Metadata>,
    /// Creates a shared game with this many seats (the creator's included, `2..=100`): others
    /// join it with `POST /game/{id}/join` (see [`crate::seats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub max_players: Option<MaxPlayers>,
    /// Shared games: Unix ms from which joins are refused (default: `startAt`, the end of the
    /// countdown); after the server's clock, at most an hour after `startAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub join_deadline: Option<i64>,
}

/// `POST /game/exit` and `POST /edge/game/exit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ExitRequest {
    /// The game.
    pub game_id: GameId,
    /// Its player.
    pub user_id: UserId,
    /// Where the game lives, if the client knows (edge routing; origins ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub backend_region: Option<RegionName>,
}

/// Whether a game still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum GameStatus {
    /// Started, not exited.
    Active,
    /// Exited by its player; its timeline is frozen at `exitedAt`.
    Exited,
}

impl GameStatus {
    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GameStatus::Active => "active",
            GameStatus::Exited => "exited",
        }
    }

    /// Parses the stored name.
    pub fn parse(value: &str) -> Option<GameStatus> {
        match value {
            "active" => Some(GameStatus::Active),
            "exited" => Some(GameStatus::Exited),
            _ => None,
        }
    }
}

/// A game as the API shows it: everything a client needs to compute its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct GameView {
    /// Its id.
    pub game_id: GameId,
    /// The player who started it.
    pub user_id: UserId,
    /// The region whose origin created it.
    pub region: RegionName,
    /// Engine seed (from the OS CSPRNG).
    pub seed: u32,
    /// Unix ms of step 0.
    #[cfg_attr(test, ts(type = "number"))]
    pub start_at: i64,
    /// Milliseconds per step.
    pub tick_ms: u32,
    /// Break odds `1/n`.
    pub break_every: u32,
    /// Break algorithm.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[cfg_attr(test, ts(type = "GameAlgorithm"))]
    pub algorithm: GameAlgorithm,
    /// Active or exited.
    pub status: GameStatus,
    /// Unix ms of creation.
    #[cfg_attr(test, ts(type = "number"))]
    pub created_at: i64,
    /// Unix ms of the exit, once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub exited_at: Option<i64>,
    /// The client's metadata, if it sent any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub metadata: Option<Metadata>,
    /// Shared games only: their seats and join deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub shared: Option<SharedGame>,
    /// Starts only, and only to the request that created the game or one carrying the
    /// `Idempotency-Key` that did: the credential its exit needs (`Authorization: Bearer`).
    /// Reads never carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub owner_token: Option<String>,
    /// `sealed-v1` only: the head of the game's hash chain (64 hex digits), from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub commitment: Option<String>,
    /// `sealed-v1` only: the number of rounds of the chain (`shared_engine::sealed::chain_rounds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub rounds: Option<u64>,
    /// `sealed-v1` only, and only once the game has ended: the chain's secret root, from which
    /// every key follows (`replay --verify` checks it against the commitment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub root: Option<String>,
}

impl GameView {
    /// The engine parameters of this game (with its end, once exited); `None` for a sealed
    /// game (no seed gives its breaks: see [`crate::sealed`]) and if the view holds values the
    /// engine refuses (only possible for a view that did not come from this API).
    pub fn params(&self) -> Option<shared_engine::Params> {
        shared_engine::Params::new(
            self.seed,
            self.start_at,
            self.tick_ms,
            self.break_every,
            self.algorithm.engine()?,
        )
        .ok()
        .map(|p| p.with_end(self.exited_at))
    }
}

/// Why the edge sent a start to the region it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum RoutedBy {
    /// The body's `preferredRegion`.
    Preference,
    /// The `x-user-region` header.
    Header,
    /// The client's location (`request.cf`).
    Geo,
    /// The healthy region with the lowest measured round trip (live registry).
    Latency,
    /// The first region under the load threshold, when the lowest-latency one is over it.
    Load,
    /// The configured default region.
    Default,
    /// The chosen region failed and another one answered.
    Failover,
}

impl RoutedBy {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RoutedBy::Preference => "preference",
            RoutedBy::Header => "header",
            RoutedBy::Geo => "geo",
            RoutedBy::Latency => "latency",
            RoutedBy::Load => "load",
            RoutedBy::Default => "default",
            RoutedBy::Failover => "failover",
        }
    }
}

/// A game as the edge answers it: the origin's view plus where it was served from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EdgeGameView {
    /// The origin's view.
    #[serde(flatten)]
    pub game: GameView,
    /// The region whose origin holds the game (its home region).
    pub backend_region: RegionName,
    /// Starts only: why that region was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub routed_by: Option<RoutedBy>,
}

/// The answer to an exit (also to a repeated one, with the first exit's time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ExitView {
    /// Always `true`: the exit is committed (the architecture document's `{"ok": true}`).
    pub ok: bool,
    /// The game.
    pub game_id: GameId,
    /// Its player.
    pub user_id: UserId,
    /// Unix ms of the first exit.
    #[cfg_attr(test, ts(type = "number"))]
    pub exited_at: i64,
    /// Always `exited`.
    pub status: GameStatus,
    /// Shared games: the seat's result, frozen at `exitedAt` (the game itself ends when its
    /// last seat exits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub result: Option<SeatResult>,
}

/// An exit as the edge answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct EdgeExitView {
    /// The origin's answer.
    #[serde(flatten)]
    pub exit: ExitView,
    /// The region whose origin exited it.
    pub backend_region: RegionName,
}

/// One step of a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TickView {
    /// Step index, 0 at `startAt`.
    #[cfg_attr(test, ts(type = "number"))]
    pub step: u64,
    /// Steps since the last break (0 at a break).
    #[cfg_attr(test, ts(type = "number"))]
    pub value: u64,
    /// Breaks in `[0, step]`.
    #[cfg_attr(test, ts(type = "number"))]
    pub round: u64,
    /// Whether this step broke.
    pub broken: bool,
}

impl From<Tick> for TickView {
    fn from(tick: Tick) -> TickView {
        TickView {
            step: tick.step,
            value: tick.value,
            round: tick.round,
            broken: tick.broken,
        }
    }
}

/// Where a game is at an instant, tagged by `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Phase {
    /// Before step 0.
    #[serde(rename_all = "camelCase")]
    Countdown {
        /// Milliseconds until step 0 (at least 1).
        #[cfg_attr(test, ts(type = "number"))]
        ms_until_start: u64,
    },
    /// Running at this step.
    Running {
        /// Step index.
        #[cfg_attr(test, ts(type = "number"))]
        step: u64,
        /// Steps since the last break.
        #[cfg_attr(test, ts(type = "number"))]
        value: u64,
        /// Breaks so far.
        #[cfg_attr(test, ts(type = "number"))]
        round: u64,
        /// Whether this step broke.
        broken: bool,
    },
    /// Exited; frozen at this step (all absent if it exited during the countdown).
    Ended {
        /// Step index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional, type = "number"))]
        step: Option<u64>,
        /// Steps since the last break.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional, type = "number"))]
        value: Option<u64>,
        /// Breaks so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional, type = "number"))]
        round: Option<u64>,
        /// Whether that step broke.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        broken: Option<bool>,
    },
}

impl From<State> for Phase {
    fn from(state: State) -> Phase {
        match state {
            State::Countdown { ms_until_start } => Phase::Countdown { ms_until_start },
            State::Running(t) => Phase::Running {
                step: t.step,
                value: t.value,
                round: t.round,
                broken: t.broken,
            },
            State::Ended(t) => Phase::Ended {
                step: t.map(|t| t.step),
                value: t.map(|t| t.value),
                round: t.map(|t| t.round),
                broken: t.map(|t| t.broken),
            },
        }
    }
}

/// `GET /game/{id}/state?at=`: the engine's state of a game at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StateView {
    /// The game.
    pub game_id: GameId,
    /// The instant, Unix ms.
    #[cfg_attr(test, ts(type = "number"))]
    pub at: i64,
    /// The state.
    #[serde(flatten)]
    pub phase: Phase,
}

impl StateView {
    /// The view of an engine state.
    pub fn new(game_id: GameId, at: i64, state: State) -> StateView {
        StateView {
            game_id,
            at,
            phase: state.into(),
        }
    }
}

/// `GET /game/{id}/replay?from=&to=`: a piece of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ReplayView {
    /// The game.
    pub game_id: GameId,
    /// First step asked for.
    #[cfg_attr(test, ts(type = "number"))]
    pub from: u64,
    /// Last step asked for (inclusive).
    #[cfg_attr(test, ts(type = "number"))]
    pub to: u64,
    /// The steps (fewer than asked if the game exited before `to`).
    pub ticks: Vec<TickView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b";

    #[test]
    fn state_views_have_the_documented_shapes() {
        let id = GameId::parse(ID).unwrap();
        let countdown = StateView::new(id, 5, State::Countdown { ms_until_start: 7 });
        assert_eq!(
            serde_json::to_value(countdown).unwrap(),
            json!({"gameId": ID, "at": 5, "phase": "countdown", "msUntilStart": 7})
        );
        let tick = Tick {
            step: 3,
            value: 0,
            round: 1,
            broken: true,
        };
        let running = serde_json::to_value(StateView::new(id, 9, State::Running(tick))).unwrap();
        assert_eq!(
            running,
            json!({"gameId": ID, "at": 9, "phase": "running", "step": 3, "value": 0, "round": 1, "broken": true})
        );
        let ended = serde_json::to_value(StateView::new(id, 9, State::Ended(None))).unwrap();
        assert_eq!(ended, json!({"gameId": ID, "at": 9, "phase": "ended"}));
        let back: StateView = serde_json::from_value(running).unwrap();
        assert_eq!(back, StateView::new(id, 9, State::Running(tick)));
    }

    #[test]
    fn edge_views_flatten_the_origin_view() {
        let game: GameView = serde_json::from_value(json!({
            "gameId": ID, "userId": "u", "region": "eu", "seed": 42, "startAt": 1000,
            "tickMs": 100, "breakEvery": 50, "algorithm": "mix32-v1", "status": "active",
            "createdAt": 900
        }))
        .unwrap();
        let edge = EdgeGameView {
            game,
            backend_region: RegionName::parse("eu").unwrap(),
            routed_by: Some(RoutedBy::Geo),
        };
        let v = serde_json::to_value(&edge).unwrap();
        assert_eq!(
            (v["seed"].as_u64(), v["routedBy"].as_str()),
            (Some(42), Some("geo"))
        );
        assert_eq!(serde_json::from_value::<EdgeGameView>(v).unwrap(), edge);
    }

    #[test]
    fn start_requests_round_trip_without_nulls() {
        let r: StartRequest =
            serde_json::from_str(r#"{"userId":"u1","tickMs":100,"metadata":{"a":1},"extra":true}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"userId": "u1", "tickMs": 100, "metadata": {"a": 1}})
        );
        let r: StartRequest =
            serde_json::from_str(r#"{"userId":"u1","preferredRegion":null}"#).unwrap();
        assert_eq!(r.preferred_region, None);
    }
}
