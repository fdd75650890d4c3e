//! `GET /leaderboard` (origin) and `GET /edge/leaderboard` (edge): the best exit value and the
//! games played of each player, per period and per algorithm.
//!
//! The origins' leaderboard consumer keeps it from the `game.exited` events of the event
//! stream (see [`crate::events`]): every seat's exit counts one game for its player in the
//! period `all` and in the UTC day of the exit, under the game's algorithm; the player's best
//! is the highest `final.value` among those exits (an exit during the countdown counts a game
//! but has no value).
//!
//! Query: `period` (`day` or `all`, default `all`), `algorithm` (a game algorithm, default
//! `mix32-v1`), `day` (`YYYY-MM-DD`, only with `period=day`, default today, UTC) and `limit`
//! (`1..=100`, default 10). Anything else about them is refused with a `bad_request` naming the
//! parameter. Players are ranked by best value, then games played, then user id.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::ids::UserId;
use crate::query::raw;
use crate::sealed::GameAlgorithm;

/// The most entries one answer lists.
pub const MAX_LIMIT: u32 = 100;
/// Entries listed without `limit`.
pub const DEFAULT_LIMIT: u32 = 10;
/// How long an answer may be cached (seconds): the leaderboard lags the stream anyway.
pub const MAX_AGE_SECONDS: u32 = 5;

/// Which games count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Period {
    /// Exits of one UTC day.
    Day,
    /// Every exit.
    All,
}

/// A validated leaderboard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardQuery {
    /// The period.
    pub period: Period,
    /// `period=day`: the day, `YYYY-MM-DD` (UTC).
    pub day: Option<String>,
    /// The algorithm whose games count.
    pub algorithm: GameAlgorithm,
    /// How many entries.
    pub limit: u32,
}

fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: ErrorCode::BadRequest,
        message: format!("{field}: {message}"),
        field: Some(field.to_owned()),
    }
}

/// The day (`YYYY-MM-DD`, proleptic Gregorian, UTC) of a Unix time in milliseconds.
pub fn utc_day(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether `text` is a real `YYYY-MM-DD` day between 1970 and 9999.
fn valid_day(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1970 && (1..=days).contains(&d)
}

impl LeaderboardQuery {
    /// Parses and checks a query string (no leading `?`) at `now_ms` (for today's day).
    pub fn parse(query: &str, now_ms: i64) -> Result<LeaderboardQuery, ApiError> {
        let period = match raw(query, "period") {
            None | Some("all") => Period::All,
            Some("day") => Period::Day,
            Some(other) => return Err(bad("period", format!("must be day or all, got {other:?}"))),
        };
        let algorithm = match raw(query, "algorithm") {
            None => GameAlgorithm::default(),
            Some(name) => GameAlgorithm::parse(name).ok_or_else(|| {
                bad(
                    "algorithm",
                    format!("must be one of mix32-v1, lcg32, interval-v0, sealed-v1, got {name:?}"),
                )
            })?,
        };
        let day = match (period, raw(query, "day")) {
            (Period::Day, None) => Some(utc_day(now_ms)),
            (Period::Day, Some(day)) if valid_day(day) => Some(day.to_owned()),
            (Period::Day, Some(day)) => {
                return Err(bad(
                    "day",
                    format!("must be a date YYYY-MM-DD, got {day:?}"),
                ));
            }
            (Period::All, None) => None,
            (Period::All, Some(_)) => return Err(bad("day", "only goes with period=day")),
        };
        let limit = match raw(query, "limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n)
                    if (1..=MAX_LIMIT).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    n
                }
                _ => {
                    return Err(bad(
                        "limit",
                        format!("must be an integer 1..={MAX_LIMIT}, got {text:?}"),
                    ));
                }
            },
        };
        Ok(LeaderboardQuery {
            period,
            day,
            algorithm,
            limit,
        })
    }

    /// The stored period key: `all`, or `day:YYYY-MM-DD`.
    pub fn period_key(&self) -> String {
        match &self.day {
            Some(day) => format!("day:{day}"),
            None => "all".to_owned(),
        }
    }
}

/// One player's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LeaderboardEntry {
    /// 1 for the best.
    pub rank: u32,
    /// The player.
    pub user_id: UserId,
    /// The highest `final.value` of their exits (absent if every exit was in a countdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional, type = "number"))]
    pub best_value: Option<u64>,
    /// Games played (exits counted).
    #[cfg_attr(test, ts(type = "number"))]
    pub games: u64,
}

/// `GET /leaderboard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LeaderboardView {
    /// The period.
    pub period: Period,
    /// `period=day`: the day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub day: Option<String>,
    /// The algorithm.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[cfg_attr(test, ts(type = "GameAlgorithm"))]
    pub algorithm: GameAlgorithm,
    /// Best first, at most `limit`.
    pub entries: Vec<LeaderboardEntry>,
}

/// Ranks `(user, best, games)` lines: best value (none last), then games, then user id.
pub fn rank(mut lines: Vec<(UserId, Option<u64>, u64)>, limit: u32) -> Vec<LeaderboardEntry> {
    lines.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.2.cmp(&a.2))
            .then_with(|| a.0.as_str().cmp(b.0.as_str()))
    });
    lines
        .into_iter()
        .take(limit as usize)
        .enumerate()
        .map(|(i, (user_id, best_value, games))| LeaderboardEntry {
            rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
            user_id,
            best_value,
            games,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_with_defaults_and_clear_refusals() {
        let now = 1_765_000_000_000; // 2025-12-06
        let q = LeaderboardQuery::parse("", now).unwrap();
        assert_eq!(
            (q.period, q.limit, q.period_key()),
            (Period::All, 10, "all".into())
        );
        assert_eq!(q.algorithm.as_str(), "mix32-v1");
        let q = LeaderboardQuery::parse("period=day&algorithm=lcg32&limit=100", now).unwrap();
        assert_eq!(q.period_key(), "day:2025-12-06");
        assert_eq!(q.algorithm.as_str(), "lcg32");
        let q = LeaderboardQuery::parse("period=day&day=2024-02-29", now).unwrap();
        assert_eq!(q.period_key(), "day:2024-02-29");
        for (query, field) in [
            ("period=week", "period"),
            ("algorithm=nope", "algorithm"),
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=+5", "limit"),
            ("limit=x", "limit"),
            ("period=day&day=2023-02-29", "day"),
            ("period=day&day=2024-13-01", "day"),
            ("period=day&day=24-01-01", "day"),
            ("day=2024-01-01", "day"),
        ] {
            let e = LeaderboardQuery::parse(query, now).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{query}");
            assert_eq!(e.field.as_deref(), Some(field), "{query}");
            assert!(e.message.starts_with(field), "{query}: {}", e.message);
        }
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(86_399_999), "1970-01-01");
        assert_eq!(utc_day(86_400_000), "1970-01-02");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(1_705_314_603_000), "2024-01-15");
        assert!(valid_day("2000-02-29") && !valid_day("1900-02-29"));
    }

    #[test]
    fn ranking_is_by_best_then_games_then_user() {
        let u = |s: &str| UserId::parse(s).unwrap();
        let ranked = rank(
            vec![
                (u("c"), Some(5), 1),
                (u("a"), None, 9),
                (u("b"), Some(5), 2),
                (u("d"), Some(7), 1),
                (u("e"), Some(5), 2),
            ],
            4,
        );
        let order: Vec<(&str, u32)> = ranked
            .iter()
            .map(|e| (e.user_id.as_str(), e.rank))
            .collect();
        assert_eq!(order, [("d", 1), ("b", 2), ("e", 3), ("c", 4)]);
    }
}
