//! What the edge caches, under which key, and for how long.
//!
//! Entries live in the Workers Cache API keyed by synthetic URLs (never the client's URL, so query
//! strings or hosts cannot fragment or poison them). Freshness is judged by the edge itself from
//! the `x-edge-stored-at` header written at `put` time, in milliseconds, rather than by the
//! Cache API's own expiry (whole seconds, and not guaranteed to evict on time); the entry's
//! `Cache-Control: max-age` only lets the platform drop it eventually.

use api::GameId;

/// Header carrying the store time (ms since the epoch) on cached entries.
pub const STORED_AT_HEADER: &str = "x-edge-stored-at";

/// A state is only cached once `at` is this far in the past. The state at `at` can still change
/// until then: an exit recorded by an origin whose clock lags the edge's could land before `at`.
pub const STATE_SETTLE_MS: u64 = 2_000;

const KEY_BASE: &str = "https://edge-cache.seedsync.invalid";

/// The cache key of a game record (`GET /edge/game/{id}`). Game ids are canonical UUIDs, so one
/// game has exactly one key whatever case the client wrote it in.
pub fn game_key(game_id: &GameId) -> String {
    format!("{KEY_BASE}/game/{game_id}")
}

/// The cache key of a game's state at an instant.
pub fn state_key(game_id: &GameId, at: i64) -> String {
    format!("{KEY_BASE}/game/{game_id}/state?at={at}")
}

/// The cache key of a game's results (`GET /edge/game/{id}/results`).
pub fn results_key(game_id: &GameId) -> String {
    format!("{KEY_BASE}/game/{game_id}/results")
}

/// The cache key of a sealed game's round keys from round `from` (`GET /edge/game/{id}/rounds`).
pub fn rounds_key(game_id: &GameId, from: u64) -> String {
    format!("{KEY_BASE}/game/{game_id}/rounds?from={from}")
}

/// The cache key of a tournament's schedule (`GET /edge/tournament/{id}`).
pub fn tournament_key(id: &api::TournamentId) -> String {
    format!("{KEY_BASE}/tournaments/{id}")
}

/// The cache key of a tournament's standings (`GET /edge/tournament/{id}/standings`).
pub fn standings_key(id: &api::TournamentId) -> String {
    format!("{KEY_BASE}/tournaments/{id}/standings")
}

/// `Cache-Control` of a rounds page that never changes (a full page, or an ended game's): the
/// origin's own, passed on.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether a rounds answer may be cached (for good): only a 200 the origin marked immutable. A
/// partial page of a live game grows at the next break, and a 425 is never stored.
pub fn rounds_cacheable(status: u16, cache_control: Option<&str>) -> bool {
    status_cacheable(status) && cache_control.is_some_and(|c| c.contains("immutable"))
}

/// `Retry-After` (whole seconds, at least 1) for a 425 whose body says `retryAt`.
pub fn retry_after_secs(retry_at_ms: i64, now_ms: u64) -> u64 {
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let wait = retry_at_ms.saturating_sub(now).max(1);
    u64::try_from(wait).unwrap_or(1).div_ceil(1000)
}

/// The origin path of a validated leaderboard query, in one canonical form (every parameter,
/// fixed order): also its cache key's tail, so spellings of one query share one entry.
pub fn leaderboard_path(query: &api::LeaderboardQuery) -> String {
    let period = match query.period {
        api::Period::Day => "day",
        api::Period::All => "all",
    };
    let mut path = format!(
        "/leaderboard?period={period}&algorithm={}&limit={}",
        query.algorithm.as_str(),
        query.limit
    );
    if let Some(day) = &query.day {
        path.push_str("&day=");
        path.push_str(day);
    }
    path
}

/// The cache key of a leaderboard answer (`GET /edge/leaderboard`), from its canonical path.
pub fn leaderboard_key(query: &api::LeaderboardQuery) -> String {
    format!("{KEY_BASE}{}", leaderboard_path(query))
}

/// Whether a results answer may be cached: only a 200 whose results are final (the game ended:
/// every seat exited, so nothing in it can change). Live results are never cached: a seat's
/// exit must show at once.
pub fn results_cacheable(status: u16, is_final: bool) -> bool {
    status_cacheable(status) && is_final
}

/// Whether an entry stored at `stored_at_ms` is still fresh at `now_ms`. A TTL of 0 disables the
/// cache. A store time in the future (clock step) counts as age 0, i.e. fresh, but never longer
/// than one TTL after `now_ms` catches up.
pub fn is_fresh(stored_at_ms: u64, now_ms: u64, ttl_ms: u64) -> bool {
    ttl_ms > 0 && now_ms.saturating_sub(stored_at_ms) < ttl_ms
}

/// The TTL of an answer whose clients are promised `max-age=cap_secs`: the edge's TTL, but
/// never longer than the promise (a copy older than what clients were told to keep would be
/// served as if fresh). A TTL of 0 (caching off) stays 0.
pub fn capped_ttl_ms(ttl_ms: u64, cap_secs: u32) -> u64 {
    ttl_ms.min(u64::from(cap_secs) * 1000)
}

/// Age in whole seconds, for the `age` header on hits.
pub fn age_secs(stored_at_ms: u64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(stored_at_ms) / 1000
}

/// `max-age` for `cache.put`: the TTL rounded up to whole seconds (at least 1, which the Cache API
/// needs to store anything).
pub fn max_age_secs(ttl_ms: u64) -> u64 {
    ttl_ms.div_ceil(1000).max(1)
}

/// Whether `GET /game/{id}/state?at=` may be cached: only a state far enough in the past (see
/// [`STATE_SETTLE_MS`]), and only when the client named `at` (without it the origin uses its
/// own "now", which must not be replayed).
pub fn state_cacheable(at: Option<i64>, now_ms: u64) -> bool {
    match at.map(u64::try_from) {
        Some(Ok(at)) => at.saturating_add(STATE_SETTLE_MS) <= now_ms,
        _ => false,
    }
}

/// Only successful origin answers are cached: a 404 for a game being created elsewhere right now
/// must not stick for a TTL.
pub fn status_cacheable(status: u16) -> bool {
    status == 200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_ttl_never_outlives_the_promise_to_clients() {
        assert_eq!(capped_ttl_ms(30_000, 5), 5_000);
        assert_eq!(capped_ttl_ms(2_000, 5), 2_000);
        assert_eq!(capped_ttl_ms(0, 5), 0);
        // A 5 s promise: a copy 5 s old is stale, whatever the edge's own TTL.
        assert!(!is_fresh(1_000, 6_000, capped_ttl_ms(30_000, 5)));
        assert!(is_fresh(1_000, 5_999, capped_ttl_ms(30_000, 5)));
    }

    #[test]
    fn leaderboard_queries_have_one_canonical_key() {
        let now = 1_765_000_000_000;
        let a = api::LeaderboardQuery::parse("limit=5&period=day", now).unwrap();
        let b = api::LeaderboardQuery::parse("period=day&algorithm=mix32-v1&limit=5", now).unwrap();
        assert_eq!(leaderboard_key(&a), leaderboard_key(&b));
        assert_eq!(
            leaderboard_path(&a),
            "/leaderboard?period=day&algorithm=mix32-v1&limit=5&day=2025-12-06"
        );
        let all = api::LeaderboardQuery::parse("", now).unwrap();
        assert_eq!(
            leaderboard_path(&all),
            "/leaderboard?period=all&algorithm=mix32-v1&limit=10"
        );
    }

    #[test]
    fn only_final_results_are_cached() {
        assert!(results_cacheable(200, true));
        assert!(!results_cacheable(200, false));
        assert!(!results_cacheable(404, true));
        let id = GameId::parse("3F2B8C1E-9D4A-4F6B-8E2A-1C5D7E9F0A3B").unwrap();
        assert!(results_key(&id).ends_with("/game/3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b/results"));
        assert_ne!(results_key(&id), game_key(&id));
    }

    #[test]
    fn only_immutable_round_pages_are_cached() {
        assert!(rounds_cacheable(200, Some(IMMUTABLE)));
        assert!(!rounds_cacheable(200, Some("no-cache")));
        assert!(!rounds_cacheable(200, None));
        assert!(!rounds_cacheable(425, Some(IMMUTABLE)));
        let id = GameId::parse("3F2B8C1E-9D4A-4F6B-8E2A-1C5D7E9F0A3B").unwrap();
        assert_ne!(rounds_key(&id, 1), rounds_key(&id, 2));
        assert!(rounds_key(&id, 7).ends_with("/rounds?from=7"));
        assert_eq!(retry_after_secs(10_001, 10_000), 1);
        assert_eq!(retry_after_secs(12_500, 10_000), 3);
        assert_eq!(
            retry_after_secs(5_000, 10_000),
            1,
            "past: ask at once, in a second"
        );
    }

    #[test]
    fn ttl_boundaries() {
        let ttl = 30_000;
        assert!(is_fresh(1_000, 1_000, ttl));
        assert!(is_fresh(1_000, 30_999, ttl));
        assert!(!is_fresh(1_000, 31_000, ttl), "expires exactly at TTL");
        assert!(!is_fresh(1_000, 1_000_000, ttl));
        assert!(is_fresh(5_000, 1_000, ttl), "store time ahead of clock");
        assert!(!is_fresh(1_000, 1_000, 0), "TTL 0 disables caching");
    }

    #[test]
    fn ages_and_max_age() {
        assert_eq!(age_secs(1_000, 2_999), 1);
        assert_eq!(age_secs(5_000, 1_000), 0);
        assert_eq!(max_age_secs(30_000), 30);
        assert_eq!(max_age_secs(30_001), 31);
        assert_eq!(max_age_secs(0), 1);
    }

    #[test]
    fn keys_are_distinct_per_game_and_instant() {
        let a = GameId::parse("3F2B8C1E-9D4A-4F6B-8E2A-1C5D7E9F0A3B").unwrap();
        let b = GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3c").unwrap();
        assert_eq!(
            game_key(&a),
            "https://edge-cache.seedsync.invalid/game/3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b",
            "canonical lowercase"
        );
        assert_ne!(state_key(&a, 1), state_key(&a, 2));
        assert_ne!(state_key(&a, 1), state_key(&b, 1));
        assert_ne!(game_key(&a), state_key(&a, 0));
    }

    #[test]
    fn only_settled_states_are_cached() {
        let now = 100_000u64;
        let settled = i64::try_from(now - STATE_SETTLE_MS).unwrap();
        assert!(state_cacheable(Some(settled), now));
        assert!(state_cacheable(Some(0), now));
        assert!(!state_cacheable(Some(settled + 1), now));
        assert!(!state_cacheable(Some(160_000), now), "future");
        assert!(!state_cacheable(None, now));
        assert!(!state_cacheable(Some(i64::MAX), now), "no overflow");
        assert!(!state_cacheable(Some(-1), now), "never negative");
    }

    #[test]
    fn only_200_is_cached() {
        assert!(status_cacheable(200));
        for s in [201, 304, 404, 500, 503] {
            assert!(!status_cacheable(s), "{s}");
        }
    }
}
