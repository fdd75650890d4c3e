//! Tournaments: creating one, seating a player at a table of a round, and the standings (see
//! [`api::tournament`] and [`crate::tournament`]).
//!
//! A join of round `r`:
//! 1. claims the player's entry in the round (`IF NOT EXISTS`); an entry that names a table's
//!    game already answers that seat (a repeat, or a player who exited and joins again: one
//!    seat per round);
//! 2. walks the round's tables in number order, joining each as an ordinary shared game
//!    ([`GameService::join`]: the one-active-game rule and the seat LWTs hold as for any
//!    game) until one seats the player; tables answered `game_full` or `game_ended` stay so,
//!    and a table whose game is not written yet (its opener is at work) is waited for a
//!    moment;
//! 3. when every table is full, opens the next one (`IF NOT EXISTS` under its number: one
//!    opener per number) as a shared game started by this player, with the round's seed and
//!    start; at most [`MAX_TABLES_PER_ROUND`] tables;
//! 4. records the table in the entry (`IF game_id = null`).
//!
//! Standings: a round's score for a player is their exit's `final.value` if they exited by the
//! round's end, else (once it is over) the engine's value at its end. A finished round's
//! scores never change once the exits begun before its end have committed: the first read 15 s
//! after its end ([`SETTLED_AFTER_MS`]) computes them from the seats and stores them, so a standings read costs one tournament read, one row per finished round (at most
//! 100, each at most 1,000 lines), and for the round in play (at most one: rounds do not
//! overlap) one tables read plus one game and one seats read per table (at most 10 each).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use api::tournament::{
    CreateTournamentRequest, MAX_TABLES_PER_ROUND, RoundView, StandingsView, TournamentId,
    rank_standings,
};
use api::{ApiError, ErrorCode, GameId, GameStatus, IdempotencyKey, Metadata, SeatResult, UserId};
use kernel::clock::now_ms;

use super::{GameService, Joined, RoundSecret, creator_seat, secure_seed};
use crate::domain::NewGame;
use crate::error::AppError;
use crate::store::Claim;
use crate::tournament::{Table, Tournament, TournamentStore};

/// How long a join waits for the game of a table whose opener is writing it (below the
/// origin's default 10 s request timeout).
const OPENING_WAIT: Duration = Duration::from_secs(8);
/// A table whose game is still missing this long after its claim is taken for dead (its
/// opener failed) and passed.
const OPENING_GRACE_MS: i64 = 10_000;
/// A finished round's scores are stored only this long after its end: an exit that began
/// before the end may commit up to a request timeout later (its `exitedAt` is still before the
/// end), and the stored scores must include it.
const SETTLED_AFTER_MS: i64 = 15_000;

fn has_code(error: &AppError, codes: &[ErrorCode]) -> bool {
    matches!(error, AppError::Api(e) if codes.contains(&e.code))
}

/// A round's scores: (player, score), each player once.
type Scores = Vec<(UserId, u64)>;

/// The score of a result: its `final.value` (0 for an exit during the countdown).
fn value_of(result: &SeatResult) -> u64 {
    result.final_tick.map_or(0, |t| t.value)
}

/// The tournament and round a game's metadata names (as a table's does), if it names them.
fn table_claim(metadata: Option<&Metadata>) -> Option<(TournamentId, u32)> {
    let map = metadata?.as_map();
    let tournament = map.get("tournamentId")?.as_str()?;
    let tournament = TournamentId::from(uuid::Uuid::parse_str(tournament).ok()?);
    let round = u32::try_from(map.get("round")?.as_u64()?).ok()?;
    Some((tournament, round))
}

impl GameService {
    /// The TTL of a tournament's rows: until its last round ends, plus the game retention.
    fn tournament_ttl(&self, t: &Tournament) -> i32 {
        let left_ms = t.end_at().saturating_sub(now_ms()).max(0);
        i32::try_from(left_ms / 1_000 + 1)
            .unwrap_or(i32::MAX)
            .saturating_add(self.defaults().retention.finished_ttl_seconds())
    }

    /// Creates a tournament (the caller checked the admin token).
    #[tracing::instrument(name = "service.create_tournament", skip_all)]
    pub async fn create_tournament(
        &self,
        store: &dyn TournamentStore,
        request: &CreateTournamentRequest,
    ) -> Result<Tournament, AppError> {
        let now = now_ms();
        request.validate(now)?;
        let defaults = self.defaults();
        let algorithm = request.algorithm_or_sealed();
        let tick_ms = request.tick_ms.unwrap_or(defaults.tick_ms);
        let break_every = request.break_every.unwrap_or(defaults.break_every);
        let rounds = request.rounds as usize;
        // One secret per round: a sealed chain (its commitment costs `chain_rounds` hashes,
        // off the async workers) or a seed.
        let (seeds, sealed) = if algorithm.is_sealed() {
            (
                vec![0; rounds],
                super::sealed::draw_secrets(tick_ms, break_every, rounds).await?,
            )
        } else {
            (
                (0..rounds)
                    .map(|_| secure_seed())
                    .collect::<Result<_, _>>()?,
                Vec::new(),
            )
        };
        let tournament = Tournament {
            id: GameId::from(uuid::Uuid::new_v4()),
            name: request.name.trim().to_owned(),
            rounds: request.rounds,
            first_start_at: request.first_start_at,
            interval_ms: request.interval_ms,
            tick_ms,
            break_every,
            algorithm,
            seats_per_table: request.seats_per_table,
            seeds,
            sealed,
            created_at: now,
        };
        store
            .insert(&tournament, self.tournament_ttl(&tournament))
            .await?;
        tracing::info!(tournament = %tournament.id, rounds = tournament.rounds, "tournament created");
        Ok(tournament)
    }

    /// A tournament, or 404.
    #[tracing::instrument(name = "service.tournament", skip_all)]
    pub async fn tournament(
        &self,
        store: &dyn TournamentStore,
        id: TournamentId,
    ) -> Result<Tournament, AppError> {
        store
            .get(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no tournament with id {id}")))
    }

    /// Seats `user` at a table of round `round` (or answers the seat they hold in it).
    #[tracing::instrument(name = "service.join_round", skip_all)]
    pub async fn join_round(
        &self,
        store: &dyn TournamentStore,
        id: TournamentId,
        round: u32,
        user: &UserId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Joined, AppError> {
        let t = self.tournament(store, id).await?;
        let now = now_ms();
        let r = t.round(round, now)?;
        if now < r.joins_open_at {
            return Err(AppError::TooEarly {
                message: format!(
                    "round {round} of tournament {id} takes joins from {} (Unix ms)",
                    r.joins_open_at
                ),
                retry_at_ms: r.joins_open_at,
            });
        }
        if now >= r.start_at {
            return Err(ApiError::new(
                ErrorCode::JoinClosed,
                format!(
                    "round {round} of tournament {id} took joins until its start, {} (Unix ms)",
                    r.start_at
                ),
            )
            .into());
        }
        let ttl = self.tournament_ttl(&t);
        if let Claim::Held(Some(game)) = store.claim_entry(id, round, user, ttl).await? {
            return self.join(game, user, key).await;
        }
        let (joined, table) = match self.seat_at_a_table(store, &t, r, user, key).await {
            Ok(seated) => seated,
            Err(e) if has_code(&e, &[ErrorCode::AlreadyPlaying]) => {
                // A concurrent join of this user may have seated them in this round.
                return match store.claim_entry(id, round, user, ttl).await? {
                    Claim::Held(Some(game)) => self.join(game, user, key).await,
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        match store.seat_entry(id, round, user, &table, ttl).await? {
            Claim::Claimed => Ok(joined),
            Claim::Held(Some(game)) => {
                // Seated in this round by a concurrent join first: give this seat back.
                if joined.created {
                    self.store
                        .delete_seat(joined.game.id, joined.seat.seat, user)
                        .await?;
                    self.store.release_active(user, joined.game.id).await?;
                }
                self.join(game, user, key).await
            }
            Claim::Held(None) => Err(AppError::Internal(format!(
                "the entry of {user} in round {round} of tournament {id} vanished"
            ))),
        }
    }

    /// `POST /game/{id}/join`: as [`GameService::join`], but a tournament's table is refused
    /// (409 `not_joinable`, naming the tournament): a seat at a table is taken only through
    /// the round's join, which records the player's entry.
    ///
    /// A table is known by its game's metadata (`tournamentId`, `round`, `table`) AND the
    /// tournament's own record of that table holding this game: metadata alone is a client's
    /// to write in an ordinary start, and must neither block a game that is no table (its id
    /// is in no tournament's tables) nor let a table be joined (a table's metadata is the
    /// service's, written when it opens the table, before anyone can join it).
    #[tracing::instrument(name = "service.join_direct", skip_all)]
    pub async fn join_direct(
        &self,
        store: &dyn TournamentStore,
        id: GameId,
        user: &UserId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Joined, AppError> {
        let game = match self.joinable.get(id, now_ms()) {
            Some(game) => game,
            None => {
                let game = self.game(id).await?;
                self.joinable.keep(&game, now_ms());
                game
            }
        };
        if let Some((tournament, round)) = table_claim(game.metadata.as_ref())
            && store
                .tables(tournament, round)
                .await?
                .iter()
                .any(|table| table.game_id == id)
        {
            return Err(ApiError::new(
                ErrorCode::NotJoinable,
                format!(
                    "game {id} is a table of round {round} of tournament {tournament}: join it \
                     with POST /tournaments/{tournament}/rounds/{round}/join"
                ),
            )
            .into());
        }
        self.join(id, user, key).await
    }

    /// Refuses (409 `already_playing`) a user who plays another active game: checked before
    /// opening a table, so a table is rarely opened for a player who cannot sit at it.
    async fn refuse_if_playing(&self, user: &UserId) -> Result<(), AppError> {
        if let Some(other) = self.store.active_game_id(user).await?
            && let Some(game) = self.read_game(other).await?
            && game.status == GameStatus::Active
        {
            return Err(ApiError::new(
                ErrorCode::AlreadyPlaying,
                format!("user {user} already plays game {other} (one game at a time)"),
            )
            .into());
        }
        Ok(())
    }

    /// Steps 2 and 3 of a join (see the module docs): the seat, and its table.
    async fn seat_at_a_table(
        &self,
        store: &dyn TournamentStore,
        t: &Tournament,
        r: RoundView,
        user: &UserId,
        key: Option<&IdempotencyKey>,
    ) -> Result<(Joined, Table), AppError> {
        let waited_until = Instant::now() + OPENING_WAIT;
        // Doubling from 50 ms to 400 ms: many joins waiting for one opener must not slow its
        // writes with their reads.
        let mut pause = Duration::from_millis(50);
        let mut passed: HashSet<u32> = HashSet::new();
        // Each pass either answers, waits (bounded by OPENING_WAIT), or sees a table opened
        // by someone else (at most MAX_TABLES_PER_ROUND of them).
        loop {
            let tables = store.tables(t.id, r.round).await?;
            let mut opening = false;
            for table in &tables {
                if passed.contains(&table.number) {
                    continue;
                }
                match self.join(table.game_id, user, key).await {
                    Ok(joined) => return Ok((joined, *table)),
                    // Full and ended tables stay so.
                    Err(e) if has_code(&e, &[ErrorCode::GameFull, ErrorCode::GameEnded]) => {
                        passed.insert(table.number);
                    }
                    Err(AppError::NotFound(_))
                        if now_ms().saturating_sub(table.opened_at) < OPENING_GRACE_MS =>
                    {
                        opening = true;
                        break;
                    }
                    Err(AppError::NotFound(_)) => {
                        passed.insert(table.number);
                    }
                    Err(e) => return Err(e),
                }
            }
            if opening {
                if Instant::now() >= waited_until {
                    return Err(AppError::Conflict(format!(
                        "a table of round {} is still opening; retry",
                        r.round
                    )));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(400));
                continue;
            }
            let next = tables.iter().map(|t| t.number + 1).max().unwrap_or(0);
            if next >= MAX_TABLES_PER_ROUND {
                return Err(ApiError::new(
                    ErrorCode::GameFull,
                    format!(
                        "round {} of tournament {} is full (all {MAX_TABLES_PER_ROUND} tables of {} seats)",
                        r.round,
                        t.id,
                        t.seats_per_table.get()
                    ),
                )
                .into());
            }
            self.refuse_if_playing(user).await?;
            let table = Table {
                number: next,
                game_id: GameId::from(uuid::Uuid::new_v4()),
                opened_at: now_ms(),
            };
            match store
                .open_table(t.id, r.round, &table, self.tournament_ttl(t))
                .await?
            {
                Claim::Claimed => {
                    let joined = self.open_table_game(t, r, &table, user, key).await?;
                    return Ok((joined, table));
                }
                // Another join opened it: read the tables again.
                Claim::Held(_) => {}
            }
        }
    }

    /// Starts the game of a table just claimed, with `user` in seat 0: the round's seed,
    /// start and settings, joins until the round's start.
    async fn open_table_game(
        &self,
        t: &Tournament,
        r: RoundView,
        table: &Table,
        user: &UserId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Joined, AppError> {
        let mut about = serde_json::Map::new();
        about.insert("tournamentId".into(), t.id.to_string().into());
        about.insert("round".into(), r.round.into());
        about.insert("table".into(), table.number.into());
        about.insert(crate::domain::ROUND_ENDS_AT.into(), r.end_at.into());
        let request = NewGame {
            user_id: user.clone(),
            algorithm: Some(t.algorithm),
            tick_ms: Some(t.tick_ms),
            break_every: Some(t.break_every),
            metadata: Some(Metadata::parse(about).map_err(|e| AppError::Internal(e.0))?),
            start_at_ms: Some(r.start_at),
            shared: Some((t.seats_per_table, None)),
        };
        let missing = || {
            AppError::Internal(format!(
                "tournament {} has no secret for round {}",
                t.id, r.round
            ))
        };
        let round = r.round as usize;
        let secret = if t.algorithm.is_sealed() {
            RoundSecret::Sealed(t.sealed.get(round).cloned().ok_or_else(missing)?)
        } else {
            RoundSecret::Seed(*t.seeds.get(round).ok_or_else(missing)?)
        };
        let game = self
            .build_game_with(table.game_id, &request, key, Some(secret))
            .await?;
        // As a start (see the module docs of the service): the game row and its event's row,
        // the creator's seat, then the slot claim that commits it.
        let ttl = self.running_ttl(&game);
        let queued = if self.outbox.is_some() {
            futures::try_join!(
                self.store.insert_game(&game, ttl),
                self.queue_started(&game)
            )?
            .1
        } else {
            self.store.insert_game(&game, ttl).await?;
            None
        };
        let seat = creator_seat(&game);
        self.store.insert_seat(&seat).await?;
        let started = self.claim_slot(&request, None, game, true).await?;
        if started.game.id != table.game_id {
            // The player started another game meanwhile (the claim dropped this table's row).
            return Err(ApiError::new(
                ErrorCode::AlreadyPlaying,
                format!(
                    "user {user} already plays game {} (one game at a time)",
                    started.game.id
                ),
            )
            .into());
        }
        self.metrics.sessions_started.inc();
        if let (Some(outbox), Some(row)) = (&self.outbox, queued) {
            outbox.committed(row, crate::outbox::relay::started_events(&started.game));
        }
        Ok(Joined {
            game: started.game,
            seat,
            created: true,
            owner: true,
        })
    }

    /// The standings of a tournament now (see the module docs for what they cost).
    #[tracing::instrument(name = "service.standings", skip_all)]
    pub async fn standings(
        &self,
        store: &dyn TournamentStore,
        id: TournamentId,
    ) -> Result<StandingsView, AppError> {
        let t = self.tournament(store, id).await?;
        let now = now_ms();
        let started: Vec<RoundView> = (0..t.rounds)
            .filter_map(|round| t.round(round, now).ok())
            .filter(|r| r.start_at <= now)
            .collect();
        let rounds = futures::future::try_join_all(
            started
                .iter()
                .map(|r| self.round_scores(store, &t, *r, now)),
        )
        .await?;
        let mut totals: HashMap<UserId, (u64, u32)> = HashMap::new();
        for scores in rounds {
            for (user, score) in scores {
                let line = totals.entry(user).or_default();
                line.0 = line.0.saturating_add(score);
                line.1 += 1;
            }
        }
        let players = u32::try_from(totals.len()).unwrap_or(u32::MAX);
        Ok(StandingsView {
            tournament_id: id,
            as_of: now,
            rounds_finished: u32::try_from(started.iter().filter(|r| now >= r.end_at).count())
                .unwrap_or(u32::MAX),
            players,
            entries: rank_standings(
                totals
                    .into_iter()
                    .map(|(user, (total, rounds))| (user, total, rounds))
                    .collect(),
            ),
        })
    }

    /// The scores of a started round at `now`: stored once it is over, else computed (a
    /// round in play counts only the seats exited already).
    async fn round_scores(
        &self,
        store: &dyn TournamentStore,
        t: &Tournament,
        r: RoundView,
        now: i64,
    ) -> Result<Scores, AppError> {
        let over = now >= r.end_at;
        let settled = now >= r.end_at.saturating_add(SETTLED_AFTER_MS);
        if settled && let Some(text) = store.scores(t.id, r.round).await? {
            let lines: Vec<(String, u64)> = serde_json::from_str(&text).map_err(|e| {
                AppError::Internal(format!(
                    "stored scores of round {} are not valid: {e}",
                    r.round
                ))
            })?;
            return Ok(lines
                .into_iter()
                .filter_map(|(user, score)| Some((UserId::parse(&user).ok()?, score)))
                .collect());
        }
        let tables = store.tables(t.id, r.round).await?;
        let seated = futures::future::try_join_all(tables.iter().map(|table| async move {
            let Some(game) = self.store.game(table.game_id).await? else {
                return Ok::<_, AppError>(Vec::new());
            };
            let seats = self.store.seats(game.id, t.seats_per_table.get()).await?;
            // Not out by the end: the engine's value at the end (a sealed game's from its
            // chain, whose keys up to the end are public once the round is over).
            let at_end = if !over {
                None
            } else if let Some(chain) = self.chain(&game).await? {
                Some(value_of(&chain.seat_result(r.end_at)))
            } else {
                game.params()
                    .map(|params| value_of(&SeatResult::at(&params, r.end_at)))
            };
            Ok(seats
                .into_iter()
                .filter_map(|seat| {
                    let score = match seat.result {
                        Some(result) if result.exited_at <= r.end_at => value_of(&result),
                        _ => at_end?,
                    };
                    Some((seat.user_id, score))
                })
                .collect())
        }))
        .await?;
        let mut seen = HashSet::new();
        let scores: Scores = seated
            .into_iter()
            .flatten()
            .filter(|(user, _)| seen.insert(user.clone()))
            .collect();
        if settled {
            let lines: Vec<(&str, u64)> = scores.iter().map(|(u, s)| (u.as_str(), *s)).collect();
            let text = serde_json::to_string(&lines)
                .map_err(|e| AppError::Internal(format!("cannot write scores: {e}")))?;
            store
                .put_scores(t.id, r.round, &text, self.tournament_ttl(t))
                .await?;
        }
        Ok(scores)
    }
}
