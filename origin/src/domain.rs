//! The stored game record and the validated request to create one, both built from the
//! contract's types (`api`), so nothing past the HTTP boundary holds an unchecked value.

use api::limits::{MAX_START_AT_AHEAD_MS, MAX_START_AT_BEHIND_MS};
use api::{
    ApiError, BreakEvery, GameAlgorithm, GameId, GameStatus, GameView, IdempotencyKey, MaxPlayers,
    Metadata, RegionName, SeatResult, SeatView, SharedGame, TickMs, UserId,
};
use shared_engine::Params;

/// The metadata key of a tournament table's round end (see [`Game::secret_held_until`]).
pub const ROUND_ENDS_AT: &str = "roundEndsAt";
use shared_engine::sealed::{self, Key, SealedParams};

/// The secret of a `sealed-v1` game: its chain's root, and the commitment published from the
/// start (`H^N(root)`, stored so that no read has to hash the whole chain).
///
/// `Debug` shows the commitment only: a game logged with `{:?}` never prints its root.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The chain's root: never in a view, event, log line, span or metric while the game runs.
    pub root: Key,
    /// The chain's head.
    pub commitment: Key,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("root", &"<secret>")
            .field("commitment", &self.commitment)
            .finish()
    }
}

/// Everything stored about one game.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// Its id.
    pub id: GameId,
    /// The player who started it.
    pub user_id: UserId,
    /// The region whose origin created it.
    pub region: RegionName,
    /// Engine seed.
    pub seed: u32,
    /// Unix ms of step 0.
    pub start_at_ms: i64,
    /// Milliseconds per step.
    pub tick_ms: TickMs,
    /// Break odds.
    pub break_every: BreakEvery,
    /// Break algorithm.
    pub algorithm: GameAlgorithm,
    /// Active or exited.
    pub status: GameStatus,
    /// Unix ms of creation.
    pub created_at_ms: i64,
    /// Unix ms of the exit, once exited.
    pub exited_at_ms: Option<i64>,
    /// Client-supplied JSON object, if any.
    pub metadata: Option<Metadata>,
    /// The `Idempotency-Key` of the start that created it, if it had one: a later start
    /// carrying the same key (a replay, or the player's other device) gets the owner token
    /// again; any other start of the same user does not. Never shown in a view.
    pub owner_key: Option<IdempotencyKey>,
    /// Shared games only: seats and join deadline (the creator holds seat 0).
    pub shared: Option<SharedGame>,
    /// `sealed-v1` games only (and always for them): the chain's root and commitment.
    pub sealed: Option<SealedSecret>,
}

impl Game {
    /// The engine parameters of this game (with its end, once exited); `None` for a sealed
    /// game, whose breaks no seed gives (see [`Game::sealed_params`]).
    pub fn params(&self) -> Option<Params> {
        let algorithm = self.algorithm.engine()?;
        Params::new(
            self.seed,
            self.start_at_ms,
            self.tick_ms.get(),
            self.break_every.get(),
            algorithm,
        )
        // TickMs (>= 1) and BreakEvery (>= 2) only hold values the engine accepts.
        .ok()
        .map(|p| p.with_end(self.exited_at_ms))
    }

    /// The public parameters of a sealed game (with its end, once exited), and its secret;
    /// `None` for any other game (or a sealed row whose odds the chain refuses, which no
    /// start writes).
    pub fn sealed_params(&self) -> Option<(SealedParams, &SealedSecret)> {
        let secret = self.sealed.as_ref()?;
        let params = SealedParams::new(
            self.start_at_ms,
            self.tick_ms.get(),
            self.break_every.get(),
            secret.commitment,
        )
        .ok()?
        .with_end(self.exited_at_ms);
        Some((params, secret))
    }

    /// Until when a sealed game's secret stays hidden after its end: a tournament table's
    /// round end (metadata `roundEndsAt`, written by the service when it opens the table), as
    /// every table of the round plays the same chain and the round goes on at the others.
    /// Capped at a day after the start (the longest round): metadata a client wrote in an
    /// ordinary start can only delay its own game's root, never reveal anything earlier.
    pub fn secret_held_until(&self) -> Option<i64> {
        self.sealed.as_ref()?;
        let hold = self
            .metadata
            .as_ref()?
            .as_map()
            .get(ROUND_ENDS_AT)?
            .as_i64()?;
        Some(
            hold.min(
                self.start_at_ms
                    .saturating_add(api::tournament::MAX_INTERVAL_MS),
            ),
        )
    }

    /// The end as public at `now`: a sealed game's end (which makes its remaining keys and
    /// root public) only once [`Game::secret_held_until`] has passed; `None` before.
    pub fn public_end(&self, now: i64) -> Option<i64> {
        self.exited_at_ms
            .filter(|_| self.secret_held_until().is_none_or(|hold| now >= hold))
    }

    /// The game as the API shows it.
    pub fn view(&self) -> GameView {
        GameView {
            game_id: self.id,
            user_id: self.user_id.clone(),
            region: self.region.clone(),
            seed: self.seed,
            start_at: self.start_at_ms,
            tick_ms: self.tick_ms.get(),
            break_every: self.break_every.get(),
            algorithm: self.algorithm,
            status: self.status,
            created_at: self.created_at_ms,
            exited_at: self.exited_at_ms,
            metadata: self.metadata.clone(),
            shared: self.shared,
            owner_token: None,
            commitment: self.sealed.as_ref().map(|s| s.commitment.to_string()),
            rounds: self
                .sealed
                .as_ref()
                .map(|_| sealed::chain_rounds(self.tick_ms.get())),
            // The root only once the game is over: before, it would give every future break.
            // (and a tournament table's only once its round is over: see `secret_held_until`).
            root: match (&self.sealed, self.status) {
                (Some(secret), GameStatus::Exited)
                    if self
                        .secret_held_until()
                        .is_none_or(|hold| kernel::clock::now_ms() >= hold) =>
                {
                    Some(secret.root.to_string())
                }
                _ => None,
            },
        }
    }
}

/// One seat of a shared game (table `game_seats`, a partition per seat, so that joins to one
/// game contend only when they try the same seat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The game.
    pub game_id: GameId,
    /// `0` (the creator) to `maxPlayers - 1`.
    pub seat: u32,
    /// Its player.
    pub user_id: UserId,
    /// Unix ms the seat was taken (the issued-at of its owner token).
    pub joined_at_ms: i64,
    /// The `Idempotency-Key` of the join that took it: a repeat carrying it gets the seat's
    /// owner token again. Never shown.
    pub owner_key: Option<IdempotencyKey>,
    /// The player's result, once they exited.
    pub result: Option<SeatResult>,
}

impl Seat {
    /// The seat as the API shows it.
    pub fn view(&self) -> SeatView {
        SeatView {
            seat: self.seat,
            user_id: self.user_id.clone(),
            joined_at: self.joined_at_ms,
            result: self.result,
        }
    }

    /// The seat's join as the live room pushes it (`seated`).
    pub fn join_notice(&self) -> api::room::SeatJoin {
        api::room::SeatJoin {
            seat: self.seat,
            user_id: self.user_id.clone(),
            joined_at: self.joined_at_ms,
        }
    }
}

/// A validated request for a new game (from `POST /game/start` or `POST /v1/sessions`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewGame {
    /// The player.
    pub user_id: UserId,
    /// The break algorithm, else the region default (`DEFAULT_ALGORITHM`).
    pub algorithm: Option<GameAlgorithm>,
    /// Chosen tick, else the region default.
    pub tick_ms: Option<TickMs>,
    /// Chosen odds, else the region default.
    pub break_every: Option<BreakEvery>,
    /// Free-form JSON object.
    pub metadata: Option<Metadata>,
    /// Chosen start (Unix ms, already within [`check_start_at`]'s bounds), else now plus the
    /// region's start delay.
    pub start_at_ms: Option<i64>,
    /// A shared game's seats and requested join deadline (checked against the clock and the
    /// start when the game is built: [`check_join_deadline`]).
    pub shared: Option<(MaxPlayers, Option<i64>)>,
}

/// The join deadline of a shared game starting at `start_at_ms`: `requested`, else the start
/// (the end of the countdown). It must be after `now_ms` and at most
/// [`api::limits::MAX_JOIN_AFTER_START_MS`] after the start; the error names `joinDeadline`.
pub fn check_join_deadline(
    requested: Option<i64>,
    start_at_ms: i64,
    now_ms: i64,
) -> Result<i64, ApiError> {
    let Some(deadline) = requested else {
        return Ok(start_at_ms);
    };
    if deadline <= now_ms {
        return Err(ApiError::invalid(
            "joinDeadline",
            "must be after the server's clock",
        ));
    }
    if deadline > start_at_ms.saturating_add(api::limits::MAX_JOIN_AFTER_START_MS) {
        return Err(ApiError::invalid(
            "joinDeadline",
            format!(
                "must be at most {} minutes after startAt",
                api::limits::MAX_JOIN_AFTER_START_MS / 60_000
            ),
        ));
    }
    Ok(deadline)
}

impl From<api::StartRequest> for NewGame {
    fn from(request: api::StartRequest) -> NewGame {
        // `preferredRegion` is the edge's routing hint: validated by the type, unused here.
        NewGame {
            user_id: request.user_id,
            algorithm: request.algorithm,
            tick_ms: request.tick_ms,
            break_every: request.break_every,
            metadata: request.metadata,
            start_at_ms: None,
            shared: request
                .max_players
                .map(|seats| (seats, request.join_deadline)),
        }
    }
}

/// Checks a client-chosen start time against the clock: at most
/// [`MAX_START_AT_BEHIND_MS`] in the past (clock skew between client and server) and at most
/// [`MAX_START_AT_AHEAD_MS`] in the future. The error names the `start_at` field and the bound.
pub fn check_start_at(start_at_ms: i64, now_ms: i64) -> Result<i64, ApiError> {
    let earliest = now_ms.saturating_sub(MAX_START_AT_BEHIND_MS);
    let latest = now_ms.saturating_add(MAX_START_AT_AHEAD_MS);
    if start_at_ms < earliest {
        return Err(ApiError::invalid(
            "start_at",
            format!(
                "must not be earlier than {} s before the server's clock",
                MAX_START_AT_BEHIND_MS / 1_000
            ),
        ));
    }
    if start_at_ms > latest {
        return Err(ApiError::invalid(
            "start_at",
            format!(
                "must not be later than {} days after the server's clock",
                MAX_START_AT_AHEAD_MS / 86_400_000
            ),
        ));
    }
    Ok(start_at_ms)
}

/// The player of a `/v1` session created without a `user_id`.
///
/// Every such session gets a user of its own, so anonymous sessions never meet each other's
/// one-active-game rule. With an `Idempotency-Key` the user is derived from the key, so a
/// replay of the request is recognised as the same user's and answers the same session (a
/// random user would look like another user reusing the key: 409). Knowing the key already
/// gives its session, so the derivation needs to be stable, not secret.
pub fn anonymous_user(key: Option<&IdempotencyKey>) -> UserId {
    let name = match key {
        Some(key) => format!("v1-anon-key-{:032x}", fnv1a_128(key.as_str().as_bytes())),
        None => format!("v1-anon-{}", uuid::Uuid::new_v4().simple()),
    };
    // At most 44 characters of [a-z0-9-]: always a valid user id.
    UserId::parse(&name).expect("anonymous user ids are valid")
}

/// 128-bit FNV-1a: a fixed, dependency-free hash, identical on every origin and version (the
/// key may be replayed to another region's origin).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_requests_become_new_games_with_defaults() {
        let request: api::StartRequest =
            serde_json::from_str(r#"{"userId":"u1","preferredRegion":"us","tickMs":16}"#).unwrap();
        let new = NewGame::from(request);
        assert_eq!(new.user_id.as_str(), "u1");
        assert_eq!(new.algorithm, None);
        assert_eq!(new.tick_ms.map(TickMs::get), Some(16));
        assert_eq!((new.break_every, new.start_at_ms), (None, None));
    }

    #[test]
    fn join_deadlines_default_to_the_start_and_stay_bounded() {
        let now = 1_700_000_000_000;
        let start = now + 3_000;
        assert_eq!(check_join_deadline(None, start, now), Ok(start));
        assert_eq!(check_join_deadline(Some(now + 1), start, now), Ok(now + 1));
        let hour = api::limits::MAX_JOIN_AFTER_START_MS;
        assert_eq!(
            check_join_deadline(Some(start + hour), start, now),
            Ok(start + hour)
        );
        for bad in [now, now - 1, start + hour + 1, i64::MIN, i64::MAX] {
            let e = check_join_deadline(Some(bad), start, now).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("joinDeadline"), "{bad}");
        }
    }

    #[test]
    fn start_at_bounds() {
        let now = 1_700_000_000_000;
        assert_eq!(check_start_at(now, now), Ok(now));
        assert!(check_start_at(now - 60_000, now).is_ok());
        assert!(check_start_at(now + 7 * 86_400_000, now).is_ok());
        let past = check_start_at(now - 60_001, now).unwrap_err();
        assert_eq!(past.field.as_deref(), Some("start_at"));
        assert!(past.message.contains("60 s"), "{past}");
        let future = check_start_at(now + 7 * 86_400_000 + 1, now).unwrap_err();
        assert!(future.message.contains("7 days"), "{future}");
    }

    #[test]
    fn anonymous_users_are_fresh_or_follow_the_key() {
        let key = IdempotencyKey::parse("retry-7").unwrap();
        let other = IdempotencyKey::parse("retry-8").unwrap();
        assert_eq!(anonymous_user(Some(&key)), anonymous_user(Some(&key)));
        assert_ne!(anonymous_user(Some(&key)), anonymous_user(Some(&other)));
        assert_ne!(anonymous_user(None), anonymous_user(None));
        let longest = IdempotencyKey::parse(&"~".repeat(128)).unwrap();
        assert!(anonymous_user(Some(&longest)).as_str().len() <= 64);
        // Pinned: the derivation must never change, or replays after an upgrade would 409.
        assert_eq!(
            anonymous_user(Some(&key)).as_str(),
            format!("v1-anon-key-{:032x}", fnv1a_128(b"retry-7"))
        );
        assert_eq!(fnv1a_128(b""), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
    }
}
