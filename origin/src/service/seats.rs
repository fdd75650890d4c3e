//! Shared games: joining a seat, exiting one, and reading the results (see [`api::seats`]).
//!
//! Invariants, all enforced by Cassandra LWTs so that they hold between origins of every
//! region:
//! - **One game per user.** A join first claims the user's active slot
//!   (`active_game_by_user`, the same `IF NOT EXISTS` a start claims): a slot held by another
//!   active game refuses the join with `already_playing`.
//! - **Never a seat too many.** Seats are rows of their own partition, numbered `1..maxPlayers`
//!   (the creator holds 0), each taken with `INSERT ... IF NOT EXISTS`: a full game has no
//!   number left to take.
//! - **One seat per user.** Every join of one user walks the seat numbers in the *same* order
//!   (a permutation derived from the game and the user, [`seat_order`]), skipping only seats
//!   seen held by someone else, which stay so. Two concurrent joins of one user therefore meet
//!   at the first seat either of them can take, and one sees the other's claim as its own.
//!   Different users walk different orders, so concurrent joins rarely try the same seat;
//!   when one does lose a seat, it reads the seats again (a full game is refused then, and a
//!   seat of its user found then is a concurrent join's) rather than try taken seats one LWT
//!   at a time.
//! - **No seat in an ended game.** The game ends when the exit of a seat finds every seat
//!   exited; a join re-reads the game at SERIAL consistency after taking its seat and gives
//!   the seat back if the game ended meanwhile (either the ending exit saw the new seat, or the
//!   join sees the end).
//!
//! A join that dies after its slot claim leaves the slot pointing at the game without a seat;
//! a retry of the join takes the seat, and the slot frees itself with the game's life anyway
//! (its TTL, see [`crate::max_age`]).

use api::{
    ApiError, ErrorCode, GameId, GameStatus, IdempotencyKey, ResultsView, SeatResult, SharedGame,
    UserId,
};
use kernel::clock::now_ms;

use super::{GameService, not_found};
use crate::domain::{Game, Seat};
use crate::error::AppError;
use crate::store::{Claim, SeatExit};

/// Shared games still taking joins, as this origin first read them, so that a join skips
/// the game's read. While a game is active nothing of its row changes (only its end does), and
/// what a join decides from it is either immutable (seats, join deadline, parameters) or
/// checked again after the seat's claim (the end: the SERIAL read every join makes), so a
/// cached copy decides the same as a fresh read, one round trip earlier. An entry lives until
/// the game's join deadline (joins are refused after it anyway); at most [`JOINABLE_CAP`].
#[derive(Debug, Default)]
pub(crate) struct Joinable {
    games: std::sync::Mutex<std::collections::HashMap<GameId, Game>>,
}

/// Seat claims a join may lose in a row before it reads the seats again: a lost claim (an LWT
/// that finds the seat taken, no write) cost about a third of a read of a full game's seats in
/// `make bench-seats`, so a few blind tries come first.
const LOSSES_BEFORE_REREAD: u32 = 3;

/// Games kept by [`Joinable`] (a few hundred KiB at most).
const JOINABLE_CAP: usize = 1_024;

impl Joinable {
    /// The game `id` as first read, if it still takes joins at `now_ms`.
    pub(super) fn get(&self, id: GameId, now_ms: i64) -> Option<Game> {
        let games = self.games.lock().ok()?;
        games
            .get(&id)
            .filter(|g| g.shared.is_some_and(|s| now_ms < s.join_deadline))
            .cloned()
    }

    /// Forgets game `id` (it ended).
    fn keep_out(&self, id: GameId) {
        if let Ok(mut games) = self.games.lock() {
            games.remove(&id);
        }
    }

    /// Keeps an active shared game that takes joins at `now_ms`.
    pub(super) fn keep(&self, game: &Game, now_ms: i64) {
        let takes_joins = game.status == GameStatus::Active
            && game.shared.is_some_and(|s| now_ms < s.join_deadline);
        let Ok(mut games) = self.games.lock() else {
            return;
        };
        if !takes_joins {
            games.remove(&game.id);
            return;
        }
        if games.len() >= JOINABLE_CAP {
            games.retain(|_, g| g.shared.is_some_and(|s| now_ms < s.join_deadline));
            if games.len() >= JOINABLE_CAP {
                games.clear();
            }
        }
        games.insert(game.id, game.clone());
    }
}

/// The answer to a join.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The game.
    pub game: Game,
    /// The user's seat.
    pub seat: Seat,
    /// Whether this request took it (201) or found it (200).
    pub created: bool,
    /// Whether this request may receive the seat's owner token: it took the seat, or carries
    /// the `Idempotency-Key` that did.
    pub owner: bool,
}

/// The answer to a seat's exit.
#[derive(Debug, Clone, Copy)]
pub struct SeatExited {
    /// The result (the first exit's on repeats).
    pub result: SeatResult,
    /// Whether this request exited it.
    pub first: bool,
    /// Whether this exit ended the game (it was the last seat).
    pub ended: bool,
}

/// What a seat's exit is judged against: a seeded game's parameters, or a sealed game's chain.
enum Judge {
    Seeded(shared_engine::Params),
    Sealed(std::sync::Arc<crate::sealed::Chain>),
}

impl Judge {
    /// The result of an exit at `exited_at` (Unix ms, the origin's clock).
    fn result_at(&self, exited_at: i64) -> SeatResult {
        match self {
            Judge::Seeded(params) => SeatResult::at(params, exited_at),
            Judge::Sealed(chain) => chain.seat_result(exited_at),
        }
    }
}

/// The order in which `user` tries the joiners' seats `1..max_players` of `game`: a
/// permutation fixed by the two (so every join of one user walks the same one) and spread
/// between users (so concurrent joins of different users rarely collide).
pub fn seat_order(game: GameId, user: &UserId, max_players: u32) -> Vec<u32> {
    let mut seats: Vec<u32> = (1..max_players).collect();
    // SplitMix64 seeded by FNV-1a of the two ids: a fixed, dependency-free shuffle.
    let mut state = game
        .uuid()
        .as_bytes()
        .iter()
        .chain(user.as_str().as_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..seats.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap_or(0);
        seats.swap(i, j);
    }
    seats
}

/// Why a game takes no join at `now_ms` (`None`: it does).
pub fn join_refusal(game: &Game, now_ms: i64) -> Option<ApiError> {
    let Some(shared) = game.shared else {
        return Some(ApiError::new(
            ErrorCode::NotJoinable,
            format!(
                "game {} is a one-player game (start one with maxPlayers to share it)",
                game.id
            ),
        ));
    };
    if game.status == GameStatus::Exited {
        return Some(ApiError::new(
            ErrorCode::GameEnded,
            format!("game {} has ended", game.id),
        ));
    }
    if now_ms >= shared.join_deadline {
        return Some(ApiError::new(
            ErrorCode::JoinClosed,
            format!(
                "game {} took joins until {} (Unix ms)",
                game.id, shared.join_deadline
            ),
        ));
    }
    None
}

fn full(game: &Game, shared: SharedGame) -> AppError {
    ApiError::new(
        ErrorCode::GameFull,
        format!(
            "game {} has no free seat (all {} are taken)",
            game.id, shared.max_players
        ),
    )
    .into()
}

/// The creator's seat of a shared game: derived from the game only, so writing it again
/// writes the same row.
pub fn creator_seat(game: &Game) -> Seat {
    Seat {
        game_id: game.id,
        seat: 0,
        user_id: game.user_id.clone(),
        joined_at_ms: game.created_at_ms,
        owner_key: game.owner_key.clone(),
        result: None,
    }
}

impl GameService {
    /// Seats `user` in shared game `id` (or finds the seat they hold).
    pub async fn join(
        &self,
        id: GameId,
        user: &UserId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Joined, AppError> {
        let cached = self.joinable.get(id, now_ms());
        let game = match &cached {
            // As a fresh read would show it now (its maximum age applies).
            Some(game) => self.defaults().max_age.effective(game.clone(), now_ms()),
            None => {
                let game = self.game(id).await?;
                self.joinable.keep(&game, now_ms());
                game
            }
        };
        let shared = match game.shared {
            Some(shared) => shared,
            None => {
                return Err(join_refusal(&game, now_ms()).map_or_else(|| not_found(id), Into::into));
            }
        };
        let seats = self.store.seats(id, shared.max_players).await?;
        if let Some(seat) = seats.iter().find(|s| s.user_id == *user) {
            // A repeat: answered with the game as it is now.
            let game = match cached {
                Some(_) => self.game(id).await?,
                None => game,
            };
            return Ok(self.found(game, seat.clone(), key));
        }
        if let Some(refusal) = join_refusal(&game, now_ms()) {
            return Err(refusal.into());
        }
        if cached.is_some() && seats.iter().all(|s| s.result.is_some()) {
            // Every seat exited: the game ended (or its last exit is ending it now), which the
            // cached copy cannot show.
            return Err(ApiError::new(ErrorCode::GameEnded, format!("game {id} has ended")).into());
        }
        if seats.len() >= shared.max_players as usize {
            return Err(full(&game, shared));
        }
        // The slot's LWT and the event's row do not depend on each other: both only have to
        // be acknowledged before the seat's claim commits the join (see `crate::outbox`).
        let queue = async {
            match &self.outbox {
                Some(outbox) => outbox
                    .queue_joined(id, user, self.defaults().retention.outbox_ttl_seconds())
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        let ((), queued) = futures::try_join!(
            async { self.claim_slot_for_join(&game, user).await },
            async { queue.await.map_err(AppError::from) },
        )?;
        let mut taken: std::collections::HashSet<u32> = seats.iter().map(|s| s.seat).collect();
        let mut seat = Seat {
            game_id: id,
            seat: 0,
            user_id: user.clone(),
            joined_at_ms: now_ms(),
            owner_key: key.cloned(),
            result: None,
        };
        let mut won = None;
        let mut lost = 0u32;
        let mut order = seat_order(id, user, shared.max_players).into_iter();
        while let Some(number) = order.find(|n| !taken.contains(n)) {
            seat.seat = number;
            match self.store.claim_seat(&seat).await? {
                Claim::Claimed => {
                    won = Some(true);
                    break;
                }
                // A concurrent join of this user (or our own retried LWT) took it: one seat.
                Claim::Held(holder) if holder == *user => {
                    won = Some(false);
                    break;
                }
                Claim::Held(_) => {
                    lost += 1;
                    if !lost.is_multiple_of(LOSSES_BEFORE_REREAD) {
                        continue;
                    }
                    // Others are joining now: the seats read before are stale. Read them again
                    // rather than go on trying, one LWT each, seats that were taken meanwhile
                    // (a full game is then refused at once, where a joiner that lost the race
                    // used to try every seat left in its first read). Seats seen held by others
                    // stay so, and a seat of this user found now is a concurrent join's, so the
                    // order's rule holds.
                    let now = self.store.seats(id, shared.max_players).await?;
                    if now.iter().any(|s| s.user_id == *user) {
                        won = Some(false);
                        break;
                    }
                    taken = now.iter().map(|s| s.seat).collect();
                    if taken.len() >= shared.max_players as usize {
                        break;
                    }
                }
            }
        }
        let Some(created) = won else {
            // Every seat is held by someone else: give the slot back.
            self.store.release_active(user, id).await?;
            return Err(full(&game, shared));
        };
        // Against an end committed while this join ran (see the module docs).
        let now = self.store.game_serial(id).await?;
        if now.is_none_or(|g| g.status == GameStatus::Exited) {
            self.joinable.keep_out(id);
            if created {
                self.store.delete_seat(id, seat.seat, user).await?;
            }
            self.store.release_active(user, id).await?;
            return Err(ApiError::new(ErrorCode::GameEnded, format!("game {id} has ended")).into());
        }
        if !created {
            // The seat of the concurrent join: answer it as stored.
            let stored = self.store.seats(id, shared.max_players).await?;
            if let Some(found) = stored.into_iter().find(|s| s.user_id == *user) {
                return Ok(self.found(game, found, key));
            }
        }
        if created {
            self.metrics.seats_joined.inc();
            // Committed: the room pushes the new seat to every socket now.
            if let Some(n) = &self.notifier {
                n.joined(id, seat.join_notice());
            }
            if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
                let event =
                    api::GameEvent::joined(&game.view(), seat.seat, user, seat.joined_at_ms);
                outbox.committed(row, vec![event]);
            }
        }
        Ok(Joined {
            game,
            seat,
            created,
            owner: created,
        })
    }

    /// The user's existing seat, with the token only for the key that took it.
    fn found(&self, game: Game, seat: Seat, key: Option<&IdempotencyKey>) -> Joined {
        let owner = key.is_some_and(|key| seat.owner_key.as_ref() == Some(key));
        Joined {
            game,
            seat,
            created: false,
            owner,
        }
    }

    /// Claims the user's active slot for the shared `game`: refused when another active game
    /// holds it (a stale slot, whose game ended, is released and claimed again).
    async fn claim_slot_for_join(&self, game: &Game, user: &UserId) -> Result<(), AppError> {
        for _ in 0..3 {
            let ttl = self.defaults().max_age.slot_ttl_seconds(game, now_ms());
            match self.store.claim_active(user, game.id, ttl).await? {
                Claim::Claimed => return Ok(()),
                // A concurrent or earlier join of this user to this game.
                Claim::Held(id) if id == game.id => return Ok(()),
                Claim::Held(other) => match self.read_game(other).await? {
                    Some(other) if other.status == GameStatus::Active => {
                        return Err(ApiError::new(
                            ErrorCode::AlreadyPlaying,
                            format!(
                                "user {user} already plays game {} (one game at a time)",
                                other.id
                            ),
                        )
                        .into());
                    }
                    _ => self.store.release_active(user, other).await?,
                },
            }
        }
        Err(AppError::Conflict(
            "the user's active game changed while joining; retry".into(),
        ))
    }

    /// Exits `user`'s seat of the shared `game` at the server's clock, recording the engine's
    /// state at that instant; ends the game when it was the last seat playing.
    pub(super) async fn exit_seat(
        &self,
        game: &Game,
        shared: SharedGame,
        user: &UserId,
    ) -> Result<SeatExited, AppError> {
        let seats = self.store.seats(game.id, shared.max_players).await?;
        let Some(seat) = seats.iter().find(|s| s.user_id == *user) else {
            return Err(AppError::Forbidden(format!(
                "user {user} holds no seat in game {}",
                game.id
            )));
        };
        let (result, first) = match seat.result {
            Some(result) => (result, false),
            None => {
                // A seeded game's result follows from its parameters; a sealed game's from its
                // chain, the schedule the origin holds (built before the clock is read).
                let judge = match self.chain(game).await? {
                    Some(chain) => Judge::Sealed(chain),
                    None => Judge::Seeded(game.params().ok_or_else(|| {
                        AppError::Internal(format!("shared game {} has no parameters", game.id))
                    })?),
                };
                let queued = match &self.outbox {
                    Some(outbox) => Some(
                        outbox
                            .queue_seat_exited(
                                game.id,
                                seat.seat,
                                user,
                                self.defaults().retention.outbox_ttl_seconds(),
                            )
                            .await?,
                    ),
                    None => None,
                };
                // Judged by this origin's clock, against the same schedule in every region.
                let at = now_ms();
                let expiry = self.defaults().max_age.expires_at(game);
                if at >= expiry {
                    // The game ended at its maximum age before this seat exited: no result
                    // after the end (its `game.ended` lists the seat as never exited).
                    return Err(ApiError::new(
                        ErrorCode::GameEnded,
                        format!(
                            "game {} ended at its maximum age ({expiry}, Unix ms) before this seat exited",
                            game.id
                        ),
                    )
                    .into());
                }
                let result = judge.result_at(at);
                match self
                    .store
                    .exit_seat(game.id, seat.seat, user, &result)
                    .await?
                {
                    SeatExit::Exited => {
                        // Committed: the room pushes the seat's result to every socket now.
                        if let Some(n) = &self.notifier {
                            n.seat_exited(
                                game.id,
                                api::room::SeatExit {
                                    seat: seat.seat,
                                    user_id: user.clone(),
                                    result,
                                },
                            );
                        }
                        if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
                            let event =
                                api::GameEvent::seat_exited(&game.view(), seat.seat, user, &result);
                            outbox.committed(row, vec![event]);
                        }
                        (result, true)
                    }
                    // Our own retried LWT shows our own time.
                    SeatExit::AlreadyExited(found) => (found, found == result),
                    SeatExit::NotFound => return Err(not_found(game.id)),
                }
            }
        };
        // Also on repeats, so an exit that died between its writes is completed by a retry.
        self.store.release_active(user, game.id).await?;
        if first {
            self.metrics.seats_exited.inc();
        }
        let ended = self.end_if_done(game, shared).await?;
        Ok(SeatExited {
            result,
            first,
            ended,
        })
    }

    /// Ends the game if every seat has exited, at the last exit's time; whether this call
    /// ended it.
    async fn end_if_done(&self, game: &Game, shared: SharedGame) -> Result<bool, AppError> {
        if game.status == GameStatus::Exited {
            return Ok(false);
        }
        let seats = self.store.seats(game.id, shared.max_players).await?;
        let Some(last) = seats
            .iter()
            .map(|s| s.result.map(|r| r.exited_at))
            .collect::<Option<Vec<i64>>>()
            .and_then(|times| times.into_iter().max())
        else {
            return Ok(false);
        };
        let queued = match &self.outbox {
            Some(outbox) => Some(
                outbox
                    .queue_ended(
                        game.id,
                        &game.user_id,
                        self.defaults().retention.outbox_ttl_seconds(),
                    )
                    .await?,
            ),
            None => None,
        };
        let first = matches!(
            self.store
                .exit_game(game, last, self.defaults().retention.finished_ttl_seconds())
                .await?,
            crate::store::ExitOutcome::Exited(_)
        );
        if first {
            if let Some(n) = &self.notifier {
                n.exited(game.id, last);
            }
            self.forget_expiry(game).await;
            self.metrics.sessions_exited.inc();
            if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
                let mut ended = game.clone();
                ended.status = GameStatus::Exited;
                ended.exited_at_ms = Some(last);
                // Committed already: without its chain (no failure a start allows), the
                // events go without `final` rather than failing the exit.
                let chain = self.chain(game).await.ok().flatten();
                let events = crate::outbox::relay::end_events(
                    &ended,
                    api::EventType::Ended,
                    chain.as_deref(),
                    None,
                );
                if !events.is_empty() {
                    outbox.committed(row, events);
                }
            }
        }
        Ok(first)
    }

    /// Every seat of a game and its result (a one-player game lists none).
    pub async fn results(&self, id: GameId) -> Result<ResultsView, AppError> {
        let game = self.game(id).await?;
        let seats = match game.shared {
            Some(shared) => self.store.seats(id, shared.max_players).await?,
            None => Vec::new(),
        };
        Ok(ResultsView {
            game_id: id,
            status: game.status,
            max_players: game.shared.map(|s| s.max_players),
            seats: seats.iter().map(Seat::view).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_orders_are_fixed_per_user_and_spread_between_users() {
        let game = GameId::parse("3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b").unwrap();
        let alice = UserId::parse("alice").unwrap();
        let order = seat_order(game, &alice, 40);
        assert_eq!(order, seat_order(game, &alice, 40));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..40).collect::<Vec<u32>>());
        let firsts: std::collections::HashSet<u32> = (0..50)
            .map(|n| seat_order(game, &UserId::parse(&format!("p{n}")).unwrap(), 40)[0])
            .collect();
        assert!(firsts.len() > 20, "first choices collide: {firsts:?}");
        assert_eq!(seat_order(game, &alice, 2), vec![1]);
    }
}
