//! Every bound the service enforces, shared by the origin, the edge and the docs.

/// Largest request body, in bytes (both the origin and the edge refuse more with 413).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest user id, in characters (ASCII only, so also bytes).
pub const MAX_USER_ID_LEN: usize = 64;
/// Longest region name.
pub const MAX_REGION_LEN: usize = 32;
/// Longest `Idempotency-Key` (and client-supplied `x-request-id`).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Shortest tick a game may ask for, in ms.
pub const MIN_TICK_MS: u32 = 1;
/// Longest tick a game may ask for (one minute).
pub const MAX_TICK_MS: u32 = 60_000;
/// Most frequent break odds (`1/2`).
pub const MIN_BREAK_EVERY: u32 = 2;
/// Rarest break odds a game may ask for.
pub const MAX_BREAK_EVERY: u32 = 1_000_000;
/// Fewest seats of a shared game (`maxPlayers`).
pub const MIN_PLAYERS: u32 = 2;
/// Most seats of a shared game (`maxPlayers`): a results read and a join read every seat, so
/// this bounds what one request can make the store do.
pub const MAX_PLAYERS: u32 = 100;
/// Latest join deadline, after the game's `startAt` (`joinDeadline`): one hour.
pub const MAX_JOIN_AFTER_START_MS: i64 = 60 * 60 * 1_000;
/// Largest `metadata` object, serialized as JSON.
pub const MAX_METADATA_BYTES: usize = 4_096;
/// Most steps one replay request returns.
pub const MAX_REPLAY_STEPS: u64 = 10_000;
/// Furthest step a server computes (`state_at` is O(step) for `mix32-v1`: ~20 ms here on AVX2).
pub const MAX_COMPUTED_STEP: u64 = 100_000_000;
/// Latest instant accepted as `at` (9999-12-31T23:59:59.999Z): every accepted instant has an
/// RFC 3339 form, which the `/v1` dialect answers with.
pub const MAX_AT_MS: i64 = 253_402_300_799_999;
/// Earliest instant accepted as `at` (the Unix epoch).
pub const MIN_AT_MS: i64 = 0;
/// Default steps of a replay when `to` is not given (`from + 99`).
pub const DEFAULT_REPLAY_SPAN: u64 = 100;
/// `/v1/sessions`: how far in the past a client's `start_at` may be (clock skew), in ms.
pub const MAX_START_AT_BEHIND_MS: i64 = 60_000;
/// `/v1/sessions`: how far in the future a client's `start_at` may be (7 days), in ms.
pub const MAX_START_AT_AHEAD_MS: i64 = 7 * 24 * 60 * 60 * 1_000;

/// A request budget as configured at both layers (`RATE_LIMIT_*` at the origin,
/// `*_RATE_LIMIT_*` at the edge): `REQUESTS/SECONDS` (e.g. `30/60`), or `off`.
///
/// Returns `(requests, seconds)`, `None` for `off`; requests `1..=1000000`, seconds
/// `1..=86400`.
///
/// ```
/// assert_eq!(api::limits::parse_rate_budget(" 30/60 "), Ok(Some((30, 60))));
/// assert_eq!(api::limits::parse_rate_budget("OFF"), Ok(None));
/// assert!(api::limits::parse_rate_budget("0/60").is_err());
/// ```
pub fn parse_rate_budget(raw: &str) -> Result<Option<(u32, u32)>, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let parsed = raw
        .split_once('/')
        .and_then(|(n, s)| Some((n.trim().parse::<u32>().ok()?, s.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((n @ 1..=1_000_000, s @ 1..=86_400)) => Ok(Some((n, s))),
        _ => Err(format!(
            "{raw:?} is not `REQUESTS/SECONDS` (1..=1000000 / 1..=86400, e.g. 30/60) or `off`"
        )),
    }
}
