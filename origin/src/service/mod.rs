//! The game service: starting, exiting and reading games, and counting what it decides.
//!
//! Both HTTP dialects (`/game/*` and `/v1/sessions`) call this one service, so a game behaves
//! the same whichever API made it. Its start and exit are orderings of Cassandra writes that
//! keep one active game per user and one game per idempotency key, even under concurrent
//! requests and crashes:
//!
//! Start:
//! 1. With an `Idempotency-Key`, claim the key for a fresh game id (LWT). If the key is taken,
//!    its game is the answer; if that game was never written (the first attempt died), finish
//!    the first attempt under the same id.
//! 2. Write the game row (an LWT when a key is involved, since two retries may race on one id).
//! 3. Claim the user's active slot (LWT). If another game holds it, that game is the answer:
//!    drop this request's row and point the key at the answer. A slot that points at an exited
//!    or missing game (a crash mid-exit) is released and claimed again.
//!
//! Because the game row is written before the slot is claimed, a slot never points at a game
//! that does not exist, and a success is only sent after every write was acknowledged.
//!
//! With game events on, the event's outbox row is written before the write that commits it:
//! alongside the game row (before the claim) for a start, before the exit's LWT for an exit.
//! The relay publishes it once the game state shows the event happened ([`crate::outbox`]);
//! the broker is never on the request path.
//!
//! Timelines (state at an instant, replays) are computed by the shared engine: see `timeline`.

mod sealed;
mod seats;
mod settings;
mod timeline;
mod tournament;

use std::sync::Arc;

use api::{GameId, GameStatus, IdempotencyKey, RegionName, SeatResult, SharedGame, UserId};
use shared_engine::{State, Tick};

use kernel::clock::now_ms;

use crate::domain::{Game, NewGame, check_join_deadline};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::notify::EdgeNotifier;
use crate::outbox::{Outbox, PendingEvent};
use crate::store::{Claim, ExitOutcome, GameStore, StoreError};
pub use sealed::{Rounds, Schedule};
pub use seats::{Joined, SeatExited, creator_seat, join_refusal, seat_order};
pub use settings::GameDefaults;

/// The secret a tournament round gives every one of its tables.
enum RoundSecret {
    /// A seeded algorithm's seed.
    Seed(u32),
    /// `sealed-v1`'s root and commitment.
    Sealed(crate::domain::SealedSecret),
}

/// The answer to a start request.
#[derive(Debug, Clone)]
pub struct Started {
    /// The game the user now plays.
    pub game: Game,
    /// Whether this request created it (201) or found it (200).
    pub created: bool,
    /// Whether this request may receive the game's owner token: it created the game, or it
    /// carries the `Idempotency-Key` that did. A start that merely finds the user's active
    /// game (anyone can name a user id) is not the owner.
    pub owner: bool,
}

/// The answer to an exit request.
#[derive(Debug, Clone)]
pub struct Exited {
    /// The game.
    pub game_id: GameId,
    /// Its player.
    pub user_id: UserId,
    /// When it was exited (the first exit's time on repeats).
    pub exited_at_ms: i64,
    /// Whether this request exited it.
    pub first: bool,
    /// Shared games: the seat's result (the game ends with its last seat).
    pub result: Option<SeatResult>,
}

/// A piece of a game's timeline.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The game.
    pub game: Game,
    /// First step asked for.
    pub from: u64,
    /// Last step asked for.
    pub to: u64,
    /// The steps that exist in `from..=to` (fewer once the game exited).
    pub ticks: Vec<Tick>,
}

/// A seed from the operating system's CSPRNG.
fn secure_seed() -> Result<u32, AppError> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Internal(format!("no OS randomness: {e}")))?;
    Ok(u32::from_le_bytes(bytes))
}

/// Games of one region on one store.
#[derive(Debug, Clone)]
pub struct GameService {
    store: Arc<dyn GameStore>,
    region: RegionName,
    /// Shared by the clones, replaced by a runtime settings change ([`GameService::set_defaults`]).
    defaults: Arc<std::sync::RwLock<GameDefaults>>,
    metrics: Arc<Metrics>,
    /// Tells the edge about committed exits (live rooms), if configured.
    notifier: Option<Arc<EdgeNotifier>>,
    outbox: Option<Outbox>,
    /// When storage last answered a readiness check: `/ready` is unauthenticated and probed
    /// often, so it asks Cassandra at most once per [`READY_FRESH`] (one check at a time).
    last_ready: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// The break schedules of recently read sealed games (see [`crate::sealed`]).
    chains: Arc<crate::sealed::ChainCache>,
    /// Long engine computations at once (see [`timeline::EnginePool`]).
    engine: Arc<timeline::EnginePool>,
    /// Shared games taking joins, as first read (see [`seats::Joinable`]).
    joinable: Arc<seats::Joinable>,
}

/// How long a successful readiness check is reused. Failures are not reused: a recovered
/// store is seen at the next probe.
pub const READY_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl GameService {
    /// A service creating games of `region` (with `defaults`) in `store`, counting into
    /// `metrics`.
    pub fn new(
        store: Arc<dyn GameStore>,
        region: RegionName,
        defaults: GameDefaults,
        metrics: Arc<Metrics>,
    ) -> GameService {
        GameService {
            last_ready: Arc::new(tokio::sync::Mutex::new(None)),
            chains: Arc::default(),
            joinable: Arc::default(),
            engine: Arc::new(timeline::EnginePool::new(
                timeline::EnginePool::default_size(),
                metrics.engine_cancelled.clone(),
            )),
            store,
            region,
            defaults: Arc::new(std::sync::RwLock::new(defaults)),
            metrics,
            notifier: None,
            outbox: None,
        }
    }

    /// The defaults new games get now.
    pub fn defaults(&self) -> GameDefaults {
        *self.defaults.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the defaults of new games (a runtime settings change; games already started
    /// keep theirs).
    pub fn set_defaults(&self, defaults: GameDefaults) {
        *self.defaults.write().unwrap_or_else(|e| e.into_inner()) = defaults;
    }

    /// The same service, queuing game events in `outbox`.
    pub fn with_outbox(mut self, outbox: Outbox) -> GameService {
        self.outbox = Some(outbox);
        self
    }

    /// The outbox, when game events are on.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Queues the start of `game` (an active game about to be claimed), if events are on.
    async fn queue_started(&self, game: &Game) -> Result<Option<PendingEvent>, StoreError> {
        match &self.outbox {
            Some(outbox) if game.status == GameStatus::Active => {
                let defaults = self.defaults();
                // With it, the game's end at its maximum age, due then (see `crate::outbox`).
                let expires_at = defaults.max_age.expires_at(game);
                let (row, ()) = futures::try_join!(
                    outbox.queue_started(game, defaults.retention.outbox_ttl_seconds()),
                    outbox.queue_expiry(game, expires_at, self.running_ttl(game)),
                )?;
                Ok(Some(row))
            }
            _ => Ok(None),
        }
    }

    /// Deletes the expiry row of `game`, which ended by its exits (see [`crate::outbox`]). A
    /// failure only leaves the row to the relay, which drops it at the expiry.
    async fn forget_expiry(&self, game: &Game) {
        if let Some(outbox) = &self.outbox {
            let expires_at = self.defaults().max_age.expires_at(game);
            if let Err(error) = outbox.forget_expiry(game, expires_at).await {
                tracing::warn!(%error, game_id = %game.id,
                    "cannot delete the expiry row of an ended game; the relay drops it at the expiry");
            }
        }
    }

    /// The TTL of rows of `game` written now, while it runs (see [`crate::retention`]).
    fn running_ttl(&self, game: &Game) -> i32 {
        let defaults = self.defaults();
        defaults
            .retention
            .running_ttl_seconds(defaults.max_age, game, now_ms())
    }

    /// Sends an exit notice to the edge after every first exit (see [`crate::notify`]).
    pub fn with_notifier(mut self, notifier: Option<EdgeNotifier>) -> GameService {
        self.notifier = notifier.map(Arc::new);
        self
    }

    /// The region this service creates games in.
    pub fn region(&self) -> &RegionName {
        &self.region
    }

    /// A new game record for `request` under `id`, not yet stored. A sealed game gets a
    /// fresh root and its commitment (and seed 0: no seed gives its breaks).
    async fn build_game(
        &self,
        id: GameId,
        request: &NewGame,
        key: Option<&IdempotencyKey>,
    ) -> Result<Game, AppError> {
        self.build_game_with(id, request, key, None).await
    }

    /// As [`GameService::build_game`], with `secret` (a tournament round's) instead of a fresh
    /// one when given: its seed for a seeded algorithm, its sealed secret for `sealed-v1`.
    async fn build_game_with(
        &self,
        id: GameId,
        request: &NewGame,
        key: Option<&IdempotencyKey>,
        secret: Option<RoundSecret>,
    ) -> Result<Game, AppError> {
        let defaults = self.defaults();
        let algorithm = request
            .algorithm
            .unwrap_or_else(|| api::GameAlgorithm::from(defaults.algorithm));
        let tick_ms = request.tick_ms.unwrap_or(defaults.tick_ms);
        let break_every = request.break_every.unwrap_or(defaults.break_every);
        let (seed, sealed) = match (algorithm.is_sealed(), secret) {
            (true, Some(RoundSecret::Sealed(secret))) => (0, Some(secret)),
            (false, Some(RoundSecret::Seed(seed))) => (seed, None),
            (_, Some(_)) => {
                return Err(AppError::Internal(format!(
                    "game {id}: a round's secret does not fit algorithm {algorithm}"
                )));
            }
            (true, None) => (0, Some(sealed::draw_secret(tick_ms, break_every).await?)),
            (false, None) => (secure_seed()?, None),
        };
        let now = now_ms();
        let start_at_ms = request
            .start_at_ms
            .unwrap_or_else(|| now.saturating_add(i64::from(defaults.start_delay_ms)));
        let shared = match request.shared {
            None => None,
            Some((seats, deadline)) => Some(SharedGame {
                max_players: seats.get(),
                join_deadline: check_join_deadline(deadline, start_at_ms, now)?,
            }),
        };
        Ok(Game {
            id,
            user_id: request.user_id.clone(),
            region: self.region.clone(),
            seed,
            start_at_ms,
            tick_ms,
            break_every,
            algorithm,
            status: GameStatus::Active,
            created_at_ms: now,
            exited_at_ms: None,
            metadata: request.metadata.clone(),
            owner_key: key.cloned(),
            shared,
            sealed,
        })
    }

    /// Starts a game for `request.user_id`, or returns the one that user already plays (or
    /// the one `key` already produced). Counts `seedsync_sessions_started_total` when it creates.
    #[tracing::instrument(name = "service.start", skip_all)]
    pub async fn start(
        &self,
        request: &NewGame,
        key: Option<&IdempotencyKey>,
    ) -> Result<Started, AppError> {
        let (mut started, queued) = self.start_uncounted(request, key).await?;
        if started.created {
            self.metrics.sessions_started.inc();
            // Joins are routed to the game's region, often to this origin: they need not read
            // the game again.
            if started.game.shared.is_some() {
                self.joinable.keep(&started.game, now_ms());
            }
            // Committed by this request: its relay may publish it without reading it back.
            if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
                outbox.committed(row, crate::outbox::relay::started_events(&started.game));
            }
        }
        started.owner =
            started.created || key.is_some_and(|key| started.game.owner_key.as_ref() == Some(key));
        Ok(started)
    }

    /// Starts (or finds) the game, and the outbox row this request queued for it.
    async fn start_uncounted(
        &self,
        request: &NewGame,
        key: Option<&IdempotencyKey>,
    ) -> Result<(Started, Option<PendingEvent>), AppError> {
        let store = &*self.store;
        let mut game = self
            .build_game(GameId::from(uuid::Uuid::new_v4()), request, key)
            .await?;
        let mut inserted_here = true;
        let queued = if let Some(key) = key {
            match store
                .claim_idempotency_key(
                    key,
                    &request.user_id,
                    game.id,
                    self.defaults().retention.key_ttl_seconds(),
                )
                .await?
            {
                Claim::Claimed => {}
                // Our own claim, seen again by a retried LWT whose first run was applied.
                Claim::Held((id, _)) if id == game.id => {}
                Claim::Held((id, owner)) => {
                    if owner != request.user_id {
                        return Err(AppError::Conflict(
                            "this Idempotency-Key was already used by another user; use a fresh key"
                                .into(),
                        ));
                    }
                    if let Some(existing) = self.read_game(id).await? {
                        return Ok((self.finish_existing(existing, request).await?, None));
                    }
                    game.id = id;
                }
            }
            if let Some(existing) = store
                .insert_game_if_absent(&game, self.running_ttl(&game))
                .await?
            {
                game = existing;
                inserted_here = false;
            }
            // The game is known now (ours or a first attempt's): queue its start before the
            // claim that commits it.
            self.queue_started(&game).await?
        } else if self.outbox.is_some() {
            // Both must be acknowledged before the claim; neither has to wait for the other.
            let ttl = self.running_ttl(&game);
            futures::try_join!(store.insert_game(&game, ttl), self.queue_started(&game))?.1
        } else {
            store.insert_game(&game, self.running_ttl(&game)).await?;
            None
        };
        if game.shared.is_some() {
            // The creator's seat exists before the claim that commits the game, so no join
            // can ever see the game without it (joiners never take seat 0).
            store.insert_seat(&creator_seat(&game)).await?;
        }
        let started = self.claim_slot(request, key, game, inserted_here).await?;
        Ok((started, queued))
    }

    /// Claims the user's active slot for `game` (the commit of a start), or answers the game
    /// that holds it.
    async fn claim_slot(
        &self,
        request: &NewGame,
        key: Option<&IdempotencyKey>,
        game: Game,
        inserted_here: bool,
    ) -> Result<Started, AppError> {
        let store = &*self.store;
        // A stale slot is released and claimed again; twice is plenty, since only a crash or a
        // concurrent exit can make a slot stale.
        for _ in 0..3 {
            let ttl = self.defaults().max_age.slot_ttl_seconds(&game, now_ms());
            match store.claim_active(&request.user_id, game.id, ttl).await? {
                Claim::Claimed => {
                    return Ok(Started {
                        game,
                        created: inserted_here,
                        owner: false,
                    });
                }
                // Our own claim, seen again by a retried LWT whose first run was applied.
                Claim::Held(id) if id == game.id => {
                    return Ok(Started {
                        game,
                        created: inserted_here,
                        owner: false,
                    });
                }
                // A slot whose game is past its max age (a row from before slots had a TTL)
                // reads as exited: released and claimed again.
                Claim::Held(other_id) => match self.read_game(other_id).await? {
                    Some(other) if other.status == GameStatus::Active => {
                        if inserted_here {
                            store.delete_game(game.id).await?;
                        }
                        if let Some(key) = key {
                            store
                                .repoint_idempotency_key(
                                    key,
                                    &request.user_id,
                                    other.id,
                                    self.defaults().retention.key_ttl_seconds(),
                                )
                                .await?;
                        }
                        return Ok(Started {
                            game: other,
                            created: false,
                            owner: false,
                        });
                    }
                    _ => store.release_active(&request.user_id, other_id).await?,
                },
            }
        }
        Err(AppError::Conflict(
            "the user's active game changed while starting; retry".into(),
        ))
    }

    /// An idempotent retry found its game: make sure the rest of the first attempt happened.
    async fn finish_existing(
        &self,
        existing: Game,
        request: &NewGame,
    ) -> Result<Started, AppError> {
        if existing.status == GameStatus::Active {
            // The first attempt may have died before its claim: this claim may commit it.
            self.queue_started(&existing).await?;
            let ttl = self
                .defaults()
                .max_age
                .slot_ttl_seconds(&existing, now_ms());
            match self
                .store
                .claim_active(&request.user_id, existing.id, ttl)
                .await?
            {
                Claim::Claimed => {}
                Claim::Held(id) if id == existing.id => {}
                Claim::Held(other_id) => {
                    // The first attempt lost the slot to another game between its writes.
                    if let Some(other) = self.read_game(other_id).await?
                        && other.status == GameStatus::Active
                    {
                        return Ok(Started {
                            game: other,
                            created: false,
                            owner: false,
                        });
                    }
                }
            }
        }
        Ok(Started {
            game: existing,
            created: false,
            owner: false,
        })
    }

    /// Exits a game on behalf of `user` (`None` skips the ownership check, for the `/v1`
    /// dialect). Counts `seedsync_sessions_exited_total` when this request is the first exit.
    #[tracing::instrument(name = "service.exit", skip_all)]
    pub async fn exit(&self, id: GameId, user: Option<&UserId>) -> Result<Exited, AppError> {
        let game = self.game(id).await?;
        if let Some(shared) = game.shared {
            // Every player exits their own seat; `/v1` (no user) exits the creator's.
            let player = user.unwrap_or(&game.user_id);
            let exited = self.exit_seat(&game, shared, player).await?;
            return Ok(Exited {
                game_id: id,
                user_id: player.clone(),
                exited_at_ms: exited.result.exited_at,
                first: exited.first,
                result: Some(exited.result),
            });
        }
        if let Some(user) = user
            && *user != game.user_id
        {
            return Err(AppError::Forbidden(format!(
                "game {id} belongs to another user"
            )));
        }
        // The exit's rows keep the game only for the retention (see `crate::retention`).
        let finished_ttl = self.defaults().retention.finished_ttl_seconds();
        let queued = match &self.outbox {
            Some(outbox) if game.exited_at_ms.is_none() => Some(
                outbox
                    .queue_exited(
                        id,
                        &game.user_id,
                        self.defaults().retention.outbox_ttl_seconds(),
                    )
                    .await?,
            ),
            _ => None,
        };
        let expiry = self.defaults().max_age.expires_at(&game);
        let now = now_ms();
        let (exited_at_ms, first) = match game.exited_at_ms {
            Some(at) => (at, false),
            // The game reached its maximum age while this exit ran: it ended then, like a read
            // now shows it, and that end is its expiry row's to publish (see `crate::outbox`).
            None if now >= expiry => (expiry, false),
            None => match self.store.exit_game(&game, now, finished_ttl).await? {
                ExitOutcome::Exited(at) => (at, true),
                ExitOutcome::AlreadyExited(at) => (at, false),
                ExitOutcome::NotFound => return Err(not_found(id)),
            },
        };
        // The exit is committed: tell the edge's live room now, before the second write, so a
        // failure there cannot lose the notice (fire-and-forget and bounded: it can neither
        // fail nor slow this exit).
        if first && let Some(n) = &self.notifier {
            n.exited(id, exited_at_ms);
        }
        // Also on repeats, so an exit that died between its two writes is completed by a retry.
        let release = self.store.release_active(&game.user_id, id);
        if exited_at_ms < expiry {
            // Ended by this exit: its expiry row has nothing left to do.
            futures::join!(release, self.forget_expiry(&game)).0?;
        } else {
            release.await?;
        }
        if first {
            self.metrics.sessions_exited.inc();
            if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
                let mut exited = game.clone();
                exited.status = GameStatus::Exited;
                exited.exited_at_ms = Some(exited_at_ms);
                // Committed already: without its chain (no failure a start allows), the
                // events go without `final` rather than failing the exit.
                let chain = self.chain(&game).await.ok().flatten();
                let events = crate::outbox::relay::end_events(
                    &exited,
                    api::EventType::Exited,
                    chain.as_deref(),
                    None,
                );
                if !events.is_empty() {
                    outbox.committed(row, events);
                }
            }
        }
        Ok(Exited {
            game_id: id,
            user_id: game.user_id,
            exited_at_ms,
            first,
            result: None,
        })
    }

    /// A game as reads show it: past `GAME_MAX_AGE`, exited at its expiry (see
    /// [`crate::max_age`]).
    async fn read_game(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        let game = self.store.game(id).await?;
        Ok(game.map(|g| self.defaults().max_age.effective(g, now_ms())))
    }

    /// A game, or 404.
    #[tracing::instrument(name = "service.game", skip_all)]
    pub async fn game(&self, id: GameId) -> Result<Game, AppError> {
        self.read_game(id).await?.ok_or_else(|| not_found(id))
    }

    /// The user's active game, or 404.
    #[tracing::instrument(name = "service.user_game", skip_all)]
    pub async fn user_game(&self, user: &UserId) -> Result<Game, AppError> {
        let no_game = || AppError::NotFound(format!("user {user} has no active game"));
        let id = self.store.active_game_id(user).await?.ok_or_else(no_game)?;
        match self.read_game(id).await? {
            Some(game) if game.status == GameStatus::Active => Ok(game),
            _ => Err(no_game()),
        }
    }

    /// A game and the engine's state of it at `at_ms` (default now), with the instant used.
    /// A running sealed game answers only instants before now (default: a millisecond ago).
    #[tracing::instrument(name = "service.state", skip_all)]
    pub async fn state(
        &self,
        id: GameId,
        at_ms: Option<i64>,
    ) -> Result<(Game, i64, State), AppError> {
        let game = self.game(id).await?;
        if let Some(chain) = self.chain(&game).await? {
            let (at, state) = GameService::sealed_state(&chain, &game, at_ms, now_ms())?;
            return Ok((game, at, state));
        }
        let at = at_ms.unwrap_or_else(now_ms);
        let state = timeline::state_at(&game, at, &self.engine).await?;
        Ok((game, at, state))
    }

    /// Steps `from..=to` of a game (`to` defaults to `from + 99`), at most
    /// [`api::limits::MAX_REPLAY_STEPS`] of them.
    #[tracing::instrument(name = "service.replay", skip_all)]
    pub async fn replay(&self, id: GameId, from: u64, to: Option<u64>) -> Result<Replay, AppError> {
        let to = timeline::replay_range(from, to)?;
        let game = self.game(id).await?;
        let ticks = match self.chain(&game).await? {
            Some(chain) => GameService::sealed_replay(&chain, &game, from, to, now_ms())?,
            None => timeline::replay(&game, from, to, &self.engine).await?,
        };
        Ok(Replay {
            game,
            from,
            to,
            ticks,
        })
    }

    /// Whether storage answers: a check at most once per [`READY_FRESH`], however often asked.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let mut last = self.last_ready.lock().await;
        if last.is_some_and(|at| at.elapsed() < READY_FRESH) {
            return Ok(());
        }
        *last = None;
        self.store.ping().await?;
        *last = Some(std::time::Instant::now());
        Ok(())
    }
}

fn not_found(id: GameId) -> AppError {
    AppError::NotFound(format!("no game with id {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_come_from_the_os_and_vary() {
        let seeds: std::collections::HashSet<u32> =
            (0..64).map(|_| secure_seed().unwrap()).collect();
        assert!(
            seeds.len() > 60,
            "64 CSPRNG draws collided: {}",
            64 - seeds.len()
        );
    }
}
