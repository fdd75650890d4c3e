//! Tournaments: a scheduled series of shared games with a common `startAt` grid, which any
//! number of players join, ranked by their total over the series.
//!
//! - The operator creates one with `POST /admin/tournaments` (bearer `ADMIN_TOKEN`, as
//!   `/admin/settings`): [`CreateTournamentRequest`]. Round `i` starts at
//!   `firstStartAt + i * intervalMs` and ends one interval later, when the next one starts.
//! - A round is played at tables: every table of round `i` is a shared game (see
//!   [`crate::seats`]) with the round's start, tick, odds and algorithm and the round's secret,
//!   drawn at creation, so every table plays the identical game. With `sealed-v1` (the default)
//!   that secret is a sealed chain's root ([`crate::sealed`]): every table of the round shows
//!   the same commitment, and each break's key comes out only at that break, so nobody can
//!   predict a break. With a seeded algorithm (on request only) it is the round's seed, which
//!   every seated player sees in the table's game: the whole round, its breaks included, is
//!   then predictable from the moment a player is seated.
//!   A table is joined only through its round's join: `POST /game/{id}/join` of a table
//!   answers 409 `not_joinable` naming the tournament.
//!   `POST /tournaments/{id}/rounds/{i}/join` (origin) or `POST /edge/tournament/{id}/rounds/{i}/join`
//!   (edge) seats the player at a table with a free seat, opening the next table when every
//!   one is full (at most [`MAX_TABLES_PER_ROUND`]); the answer is the ordinary
//!   [`crate::JoinView`], so exits, room pushes and results work as for any shared game.
//!   Joins open one interval before the round starts ([`RoundView::joins_open_at`], 425
//!   `too_early` before) and close at its start (410 `join_closed`).
//! - A player's round score is their exit's `final.value` if they exited by the round's end
//!   (0 for an exit during the countdown), else the engine's value at the round's end. The
//!   standings ([`StandingsView`]) rank players by their total over the rounds played.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::{BreakEvery, GameId, MaxPlayers, TickMs, UserId};
use crate::sealed::GameAlgorithm;

/// A tournament's id: a UUID, written like a game id.
pub type TournamentId = GameId;

/// Most rounds of one tournament.
pub const MAX_ROUNDS: u32 = 100;
/// Shortest round (`intervalMs`): 2 s.
pub const MIN_INTERVAL_MS: i64 = 2_000;
/// Longest round (`intervalMs`): 24 h, the default `GAME_MAX_AGE` of its table games.
pub const MAX_INTERVAL_MS: i64 = 24 * 60 * 60 * 1_000;
/// Latest first round, after the server's clock: 7 days.
pub const MAX_FIRST_START_AHEAD_MS: i64 = 7 * 24 * 60 * 60 * 1_000;
/// Most tables of one round: with at most 100 seats each, 1,000 players per round. It bounds
/// what a round's join and its standings read cost.
pub const MAX_TABLES_PER_ROUND: u32 = 10;
/// Longest tournament name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most entries a standings answer lists (`players` counts them all).
pub const MAX_STANDINGS: usize = 1_000;
/// How long a schedule or standings answer may be cached (seconds).
pub const MAX_AGE_SECONDS: u32 = 5;

/// `POST /admin/tournaments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CreateTournamentRequest {
    /// Shown to players: 1 to 100 characters, not only spaces.
    pub name: String,
    /// Rounds, `1..=100`.
    pub rounds: u32,
    /// Unix ms of round 0's first step: in the future, at most 7 days ahead.
    #[cfg_attr(test, ts(type = "number"))]
    pub first_start_at: i64,
    /// Milliseconds between two rounds' starts, each round's length: `2000..=86400000`.
    #[cfg_attr(test, ts(type = "number"))]
    pub interval_ms: i64,
    /// Every table's tick, else the region default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tick_ms: Option<TickMs>,
    /// Every table's break odds, else the region default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub break_every: Option<BreakEvery>,
    /// Every table's algorithm, else `sealed-v1` (whatever the region default: a seeded one
    /// makes every round predictable to a seated player).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[cfg_attr(test, ts(optional, type = "GameAlgorithm"))]
    pub algorithm: Option<GameAlgorithm>,
    /// Seats of each table, `2..=100`.
    pub seats_per_table: MaxPlayers,
}

impl CreateTournamentRequest {
    /// Every table's algorithm: the one requested, else `sealed-v1` (never the region default:
    /// a seeded game is predictable to every player seated at it).
    pub fn algorithm_or_sealed(&self) -> GameAlgorithm {
        self.algorithm.unwrap_or(GameAlgorithm::SealedV1)
    }

    /// Checks what the types cannot against the server's clock `now_ms`: the error names the
    /// field (422 `validation_failed`).
    pub fn validate(&self, now_ms: i64) -> Result<(), ApiError> {
        let name = self.name.trim();
        if name.is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters, not only spaces"),
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "name",
                "must not hold control characters",
            ));
        }
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(ApiError::invalid(
                "rounds",
                format!("must be 1..={MAX_ROUNDS}, got {}", self.rounds),
            ));
        }
        if self.first_start_at <= now_ms {
            return Err(ApiError::invalid(
                "firstStartAt",
                "must be after the server's clock",
            ));
        }
        if self.first_start_at > now_ms.saturating_add(MAX_FIRST_START_AHEAD_MS) {
            return Err(ApiError::invalid(
                "firstStartAt",
                "must be at most 7 days after the server's clock",
            ));
        }
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&self.interval_ms) {
            return Err(ApiError::invalid(
                "intervalMs",
                format!(
                    "must be {MIN_INTERVAL_MS}..={MAX_INTERVAL_MS} (ms, each round's length), got {}",
                    self.interval_ms
                ),
            ));
        }
        Ok(())
    }
}

/// Where a round stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum RoundState {
    /// Joins are not open yet.
    Upcoming,
    /// Taking joins (until `startAt`).
    Open,
    /// Started, not over.
    Playing,
    /// Over: its scores are final.
    Finished,
}

/// One round of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RoundView {
    /// Its index, from 0.
    pub round: u32,
    /// Unix ms from which joins are taken (one interval before the start).
    #[cfg_attr(test, ts(type = "number"))]
    pub joins_open_at: i64,
    /// Unix ms of its tables' step 0; joins close then.
    #[cfg_attr(test, ts(type = "number"))]
    pub start_at: i64,
    /// Unix ms of its end (the next round's start): a seat not exited by then scores the
    /// engine's value at this instant.
    #[cfg_attr(test, ts(type = "number"))]
    pub end_at: i64,
    /// At the answer's `asOf`.
    pub state: RoundState,
}

/// `GET /tournaments/{id}` and `GET /edge/tournament/{id}`: the schedule (never a seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TournamentView {
    /// Its id.
    pub tournament_id: TournamentId,
    /// Its name.
    pub name: String,
    /// Round count.
    pub rounds: u32,
    /// Unix ms of round 0's start.
    #[cfg_attr(test, ts(type = "number"))]
    pub first_start_at: i64,
    /// Between two rounds' starts (each round's length).
    #[cfg_attr(test, ts(type = "number"))]
    pub interval_ms: i64,
    /// Every table's tick.
    pub tick_ms: u32,
    /// Every table's break odds.
    pub break_every: u32,
    /// Every table's algorithm.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[cfg_attr(test, ts(type = "GameAlgorithm"))]
    pub algorithm: GameAlgorithm,
    /// Seats per table.
    pub seats_per_table: u32,
    /// Tables per round at most.
    pub max_tables: u32,
    /// Unix ms of its creation.
    #[cfg_attr(test, ts(type = "number"))]
    pub created_at: i64,
    /// Unix ms the `state`s are given at.
    #[cfg_attr(test, ts(type = "number"))]
    pub as_of: i64,
    /// Every round.
    pub schedule: Vec<RoundView>,
}

/// The schedule of round `round` of a grid starting at `first_start_at` every `interval_ms`,
/// as seen at `now_ms`.
pub fn round_view(first_start_at: i64, interval_ms: i64, round: u32, now_ms: i64) -> RoundView {
    let start_at = first_start_at.saturating_add(interval_ms.saturating_mul(i64::from(round)));
    let joins_open_at = start_at.saturating_sub(interval_ms);
    let end_at = start_at.saturating_add(interval_ms);
    let state = if now_ms < joins_open_at {
        RoundState::Upcoming
    } else if now_ms < start_at {
        RoundState::Open
    } else if now_ms < end_at {
        RoundState::Playing
    } else {
        RoundState::Finished
    };
    RoundView {
        round,
        joins_open_at,
        start_at,
        end_at,
        state,
    }
}

/// One player's line of the standings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StandingEntry {
    /// 1 + the number of players with a larger total (ties share a rank).
    pub rank: u32,
    /// The player.
    pub user_id: UserId,
    /// The sum of their round scores.
    #[cfg_attr(test, ts(type = "number"))]
    pub total: u64,
    /// Rounds that counted for them: exited, or over.
    pub rounds_played: u32,
}

/// `GET /tournaments/{id}/standings` and `GET /edge/tournament/{id}/standings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StandingsView {
    /// The tournament.
    pub tournament_id: TournamentId,
    /// Unix ms the standings are computed at.
    #[cfg_attr(test, ts(type = "number"))]
    pub as_of: i64,
    /// Rounds whose scores are final (over).
    pub rounds_finished: u32,
    /// Players with at least one counted round.
    pub players: u32,
    /// Best first, at most [`MAX_STANDINGS`]: by total, then fewer rounds, then user id.
    pub entries: Vec<StandingEntry>,
}

/// A tournament id from a path: 422 `validation_failed` naming `tournamentId` unless a UUID.
pub fn parse_id(text: &str) -> Result<TournamentId, ApiError> {
    GameId::parse(text).map_err(|e| ApiError::invalid("tournamentId", e))
}

/// A round index from a path: 400 `bad_request` naming `round` unless a whole number of at
/// most 9 digits (a number past the last round is the server's 404).
pub fn parse_round(text: &str) -> Result<u32, ApiError> {
    let digits = !text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(round) if digits => Ok(round),
        _ => Err(ApiError {
            code: crate::ErrorCode::BadRequest,
            message: format!("round: must be a round index (0, 1, ...), got {text:?}"),
            field: Some("round".into()),
        }),
    }
}

/// Ranks `(player, total, rounds)` lines: by total (highest first), then fewer rounds, then
/// user id; ties on total share a rank; at most [`MAX_STANDINGS`] entries.
pub fn rank_standings(mut lines: Vec<(UserId, u64, u32)>) -> Vec<StandingEntry> {
    lines.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(a.2.cmp(&b.2))
            .then(a.0.as_str().cmp(b.0.as_str()))
    });
    let mut entries: Vec<StandingEntry> = Vec::with_capacity(lines.len().min(MAX_STANDINGS));
    for (index, (user_id, total, rounds_played)) in lines.into_iter().enumerate() {
        if index == MAX_STANDINGS {
            break;
        }
        let rank = match entries.last() {
            Some(previous) if previous.total == total => previous.rank,
            _ => u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        entries.push(StandingEntry {
            rank,
            user_id,
            total,
            rounds_played,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use serde_json::json;

    fn request() -> CreateTournamentRequest {
        serde_json::from_value(json!({
            "name": "Friday cup", "rounds": 3, "firstStartAt": 10_000, "intervalMs": 60_000,
            "tickMs": 100, "algorithm": "mix32-v1", "seatsPerTable": 10,
        }))
        .unwrap()
    }

    #[test]
    fn requests_are_validated_naming_the_field() {
        assert_eq!(request().validate(0), Ok(()));
        type Change = Box<dyn Fn(&mut CreateTournamentRequest)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|r| r.name = "  ".into())),
            ("name", Box::new(|r| r.name = "x".repeat(101))),
            ("name", Box::new(|r| r.name = "a\nb".into())),
            ("rounds", Box::new(|r| r.rounds = 0)),
            ("rounds", Box::new(|r| r.rounds = 101)),
            ("firstStartAt", Box::new(|r| r.first_start_at = 0)),
            (
                "firstStartAt",
                Box::new(|r| r.first_start_at = MAX_FIRST_START_AHEAD_MS + 1),
            ),
            ("intervalMs", Box::new(|r| r.interval_ms = 1_999)),
            (
                "intervalMs",
                Box::new(|r| r.interval_ms = MAX_INTERVAL_MS + 1),
            ),
        ];
        // Every algorithm is allowed; none named means sealed-v1.
        let mut sealed = request();
        sealed.algorithm = Some(GameAlgorithm::SealedV1);
        assert!(sealed.validate(0).is_ok());
        sealed.algorithm = None;
        assert_eq!(sealed.algorithm_or_sealed(), GameAlgorithm::SealedV1);
        for (field, change) in cases {
            let mut r = request();
            change(&mut r);
            let e = r.validate(0).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (ErrorCode::ValidationFailed, Some(field))
            );
        }
        let unknown = serde_json::from_value::<CreateTournamentRequest>(json!({
            "name": "x", "rounds": 1, "firstStartAt": 1, "intervalMs": 2_000,
            "seatsPerTable": 2, "seed": 7,
        }));
        assert!(unknown.is_err(), "a client never chooses the seeds");
        let seats = serde_json::from_value::<CreateTournamentRequest>(json!({
            "name": "x", "rounds": 1, "firstStartAt": 1, "intervalMs": 2_000, "seatsPerTable": 1,
        }));
        assert!(seats.is_err());
    }

    #[test]
    fn path_parts_parse_alike_everywhere() {
        assert_eq!(parse_round("0"), Ok(0));
        assert_eq!(parse_round("99"), Ok(99));
        for bad in ["", "-1", "+1", "1.0", "x", "0x1", "1234567890", " 1"] {
            let e = parse_round(bad).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                (ErrorCode::BadRequest, Some("round"))
            );
        }
        let e = parse_id("t-1").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tournamentId"));
        assert!(parse_id("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").is_ok());
    }

    #[test]
    fn rounds_follow_the_grid() {
        let r = round_view(10_000, 1_000, 2, 11_500);
        assert_eq!(
            (r.joins_open_at, r.start_at, r.end_at, r.state),
            (11_000, 12_000, 13_000, RoundState::Open)
        );
        assert_eq!(
            round_view(10_000, 1_000, 2, 10_999).state,
            RoundState::Upcoming
        );
        assert_eq!(
            round_view(10_000, 1_000, 2, 12_000).state,
            RoundState::Playing
        );
        assert_eq!(
            round_view(10_000, 1_000, 2, 13_000).state,
            RoundState::Finished
        );
    }

    #[test]
    fn standings_rank_by_total_and_share_ties() {
        let u = |s: &str| UserId::parse(s).unwrap();
        let entries = rank_standings(vec![
            (u("c"), 5, 2),
            (u("a"), 9, 2),
            (u("b"), 5, 1),
            (u("d"), 1, 2),
        ]);
        let ranks: Vec<(&str, u32)> = entries
            .iter()
            .map(|e| (e.user_id.as_str(), e.rank))
            .collect();
        assert_eq!(ranks, vec![("a", 1), ("b", 2), ("c", 2), ("d", 4)]);
        assert_eq!(
            serde_json::to_value(&entries[0]).unwrap(),
            json!({"rank": 1, "userId": "a", "total": 9, "roundsPlayed": 2})
        );
    }
}
