//! The seedsync HTTP contract, in one place.
//!
//! The origin (axum), the edge Worker (wasm) and, through generated TypeScript, the page all
//! speak through these types, so a field name, a validation rule, a limit or an error code
//! exists exactly once:
//! - [`ids`]: validated identifiers ([`UserId`], [`GameId`], [`RegionName`],
//!   [`IdempotencyKey`]) that can only be built through their `parse` constructors (serde goes
//!   through them too);
//! - [`limits`]: every bound the service enforces;
//! - [`error`]: the one error body `{"error": {"code", "message", "field"?}}` and the
//!   [`ErrorCode`] enum, each code with exactly one HTTP status;
//! - [`game`]: the `/game/*` (origin) and `/edge/game/*` (edge) requests and views;
//! - [`regions`]: the live region registry (`/regions`, heartbeats, drain);
//! - [`room`]: the messages of the live game rooms (`/edge/game/{id}/live` WebSocket);
//! - [`seats`]: shared games (joins, seats, per-seat results);
//! - [`tournament`]: tournaments (a schedule of shared games, joins by round, standings);
//! - [`v1`]: the session-service dialect (`/v1/sessions`, snake_case, its own error shape);
//! - [`sealed`]: `sealed-v1` games (the algorithm name, the revealed round keys);
//! - [`events`]: the `game.started` / `game.exited` events the origins publish to the event
//!   stream (versioned envelope, deterministic event ids);
//! - [`json`] and [`query`]: the parsers both servers run on raw bodies and query strings, so
//!   the same bad input gets the same status and code from either.
//!
//! The crate is std + serde only and builds for native and `wasm32-unknown-unknown`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod events;
pub mod game;
pub mod ids;
pub mod json;
pub mod leaderboard;
pub mod limits;
pub mod query;
pub mod regions;
pub mod room;
pub mod sealed;
pub mod seats;
pub mod tournament;
pub mod v1;

#[cfg(test)]
mod ts;

pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use events::{EndReason, EventId, EventType, GameEvent, UnexitedSeat};
pub use game::{
    EdgeExitView, EdgeGameView, ExitRequest, ExitView, GameStatus, GameView, Phase, ReplayView,
    RoutedBy, StartRequest, StateView, TickView,
};
pub use ids::{
    BreakEvery, GameId, IdempotencyKey, MaxPlayers, Metadata, RegionName, TickMs, UserId,
};
pub use leaderboard::{LeaderboardEntry, LeaderboardQuery, LeaderboardView, Period};
pub use regions::{RegionList, RegionLoad, RegionRecord, RegionStatus};
pub use sealed::{GameAlgorithm, RoundKey, RoundsView};
pub use seats::{
    EdgeJoinView, JoinRequest, JoinView, ResultsView, SeatResult, SeatView, SharedGame,
};
pub use shared_engine::Algorithm;
pub use tournament::{
    CreateTournamentRequest, RoundState, RoundView, StandingEntry, StandingsView, TournamentId,
    TournamentView,
};
