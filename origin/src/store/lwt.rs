//! The lightweight transactions (compare-and-set statements) of the store: the claims that make
//! concurrent starts agree, the first-exit-wins update, and running a statement again when an
//! error leaves its outcome unknown.

use std::time::Duration;

use api::{GameId, GameStatus, IdempotencyKey, UserId};
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::traced::Kind;
use scylla::value::{CqlTimestamp, CqlValue, Row};

use super::rows::{GameRowTtl, SeatRow};
use super::{Claim, ExitOutcome, GameStore, SeatExit, Store, StoreError, query_error};
use crate::domain::{Game, Seat};
use api::SeatResult;

/// Attempts of one LWT before giving up (the driver itself never retries LWTs).
const LWT_ATTEMPTS: u32 = 5;

/// Whether an error leaves an LWT's outcome unknown or merely unreached, so that running the
/// same conditional statement again is the way to learn it: timeouts (Paxos contention across
/// datacenters surfaces as CAS write timeouts), unavailable replicas, overload, broken
/// connections.
pub(super) fn worth_retrying(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::RequestTimeout(_)
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::EmptyPlan => true,
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::DbError(db, _) => matches!(
                db,
                DbError::WriteTimeout { .. }
                    | DbError::ReadTimeout { .. }
                    | DbError::Unavailable { .. }
                    | DbError::Overloaded
                    | DbError::IsBootstrapping
            ),
            RequestAttemptError::BrokenConnectionError(_)
            | RequestAttemptError::UnableToAllocStreamId => true,
            _ => false,
        },
        _ => false,
    }
}

/// Reads the `[applied]` flag of an LWT and, when not applied, the named columns of the row
/// that won.
pub(crate) fn lwt_outcome(
    result: QueryResult,
    columns: &[&str],
    operation: &'static str,
) -> Result<(bool, Vec<Option<CqlValue>>), StoreError> {
    let rows = result
        .into_rows_result()
        .map_err(|e| query_error(operation)(&e))?;
    let specs = rows.column_specs();
    let index_of = |name: &str| specs.get_by_name(name).map(|(i, _)| i);
    let applied_index = index_of("[applied]")
        .ok_or_else(|| StoreError::Corrupt(format!("{operation}: no [applied] column")))?;
    let wanted: Vec<Option<usize>> = columns.iter().map(|c| index_of(c)).collect();
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(|e| query_error(operation)(&e))?
        .ok_or_else(|| StoreError::Corrupt(format!("{operation}: LWT returned no row")))?;
    let applied = matches!(
        row.columns.get(applied_index),
        Some(Some(CqlValue::Boolean(true)))
    );
    let values = wanted
        .into_iter()
        .map(|i| i.and_then(|i| row.columns.get(i).cloned().flatten()))
        .collect();
    Ok((applied, values))
}

/// The statement name of an LWT in spans and `seedsync_cassandra_statement_duration_seconds`
/// (the field of [`super::schema::Statements`]), from the operation its errors name.
fn statement_name(operation: &'static str) -> &'static str {
    match operation {
        "insert game (LWT)" => "insert_game_if_absent",
        "exit game" => "exit_game",
        "claim active game" => "claim_active",
        "release active game" => "release_active",
        "claim idempotency key" => "claim_key",
        "repoint idempotency key" => "repoint_key",
        other => other,
    }
}

impl Store {
    /// Runs a conditional statement, running it again after errors that leave its outcome
    /// unknown. Every LWT here is safe to repeat: a repeat of one that was applied reports the
    /// row it wrote, which callers recognise as their own.
    async fn execute_lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow + Clone,
        operation: &'static str,
    ) -> Result<QueryResult, StoreError> {
        self.retry_lwt(operation, || {
            self.run(
                statement_name(operation),
                Kind::Lwt,
                statement,
                values.clone(),
            )
        })
        .await
    }

    /// Runs `run` (one conditional statement or batch) again after errors that leave its
    /// outcome unknown, with jittered backoff.
    async fn retry_lwt<F, R>(
        &self,
        operation: &'static str,
        run: F,
    ) -> Result<QueryResult, StoreError>
    where
        F: Fn() -> R,
        R: std::future::Future<Output = Result<QueryResult, ExecutionError>>,
    {
        let mut attempt = 1;
        loop {
            match run().await {
                Ok(result) => return Ok(result),
                Err(error) if attempt < LWT_ATTEMPTS && worth_retrying(&error) => {
                    // Jittered backoff lets competing proposers finish their Paxos rounds.
                    let mut jitter = [0u8; 1];
                    let _ = getrandom::fill(&mut jitter);
                    let delay = 10u64 * (1 << attempt) + u64::from(jitter[0] % 32);
                    tracing::warn!(%error, operation, attempt, "LWT outcome unknown; running it again");
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    attempt += 1;
                }
                Err(error) => return Err(query_error(operation)(&error)),
            }
        }
    }

    /// `INSERT ... IF NOT EXISTS` of a game; whether it was applied.
    pub(super) async fn insert_game_lwt(
        &self,
        game: &Game,
        ttl_seconds: i32,
    ) -> Result<bool, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.insert_game_if_absent,
                GameRowTtl::new(game, ttl_seconds),
                "insert game (LWT)",
            )
            .await?;
        Ok(lwt_outcome(result, &[], "insert game (LWT)")?.0)
    }

    /// Exits a game unless it is already exited (or missing). One conditional batch: the
    /// `IF status = 'active'` update and an `INSERT` of the whole exited row, both with the
    /// finished TTL. The insert rewrites every cell and the row marker (an `UPDATE` alone
    /// leaves the start's longer TTL on the cells it does not set and on the marker, and a row
    /// whose marker outlives its cells reads as a row of nulls).
    pub(super) async fn exit_game_lwt(
        &self,
        game: &Game,
        at_ms: i64,
        ttl_seconds: i32,
    ) -> Result<ExitOutcome, StoreError> {
        let id = game.id;
        let ttl = ttl_seconds.max(1);
        let mut exited = game.clone();
        exited.status = GameStatus::Exited;
        exited.exited_at_ms = Some(at_ms);
        let mut batch = Batch::new(BatchType::Logged);
        batch.append_statement(self.statements.exit_game.clone());
        batch.append_statement(self.statements.rewrite_game.clone());
        let values = (
            (ttl, CqlTimestamp(at_ms), id.uuid()),
            GameRowTtl::new(&exited, ttl),
        );
        let result = self
            .retry_lwt("exit game", || {
                self.observe(
                    "exit_game",
                    Kind::Lwt,
                    self.defaults.consistency,
                    self.session.batch(&batch, values.clone()),
                )
            })
            .await?;
        let (applied, values) = lwt_outcome(result, &["status"], "exit game")?;
        if applied {
            return Ok(ExitOutcome::Exited(at_ms));
        }
        match values.first() {
            // `IF status = ...` on a missing row reports no status.
            Some(None) | None => Ok(ExitOutcome::NotFound),
            Some(Some(_)) => match self.game(id).await? {
                Some(Game {
                    exited_at_ms: Some(at),
                    ..
                }) => Ok(ExitOutcome::AlreadyExited(at)),
                Some(_) => Err(StoreError::Corrupt(format!(
                    "game {id} is neither active nor exited"
                ))),
                None => Ok(ExitOutcome::NotFound),
            },
        }
    }

    /// Claims the user's active slot for `game`, for `ttl_seconds` (the game's remaining
    /// life: Cassandra frees the slot by itself, see `crate::max_age`).
    pub(super) async fn claim_active_lwt(
        &self,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.claim_active,
                (user.as_str(), game.uuid(), ttl_seconds.max(1)),
                "claim active game",
            )
            .await?;
        match lwt_outcome(result, &["game_id"], "claim active game")? {
            (true, _) => Ok(Claim::Claimed),
            (false, values) => match values.into_iter().next().flatten() {
                Some(CqlValue::Uuid(id)) => Ok(Claim::Held(GameId::from(id))),
                other => Err(StoreError::Corrupt(format!(
                    "active game of {user} is {other:?}"
                ))),
            },
        }
    }

    /// Clears the user's active slot if it still holds `game`.
    pub(super) async fn release_active_lwt(
        &self,
        user: &UserId,
        game: GameId,
    ) -> Result<(), StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.release_active,
                (user.as_str(), game.uuid()),
                "release active game",
            )
            .await?;
        lwt_outcome(result, &[], "release active game")?;
        Ok(())
    }

    /// Claims an idempotency key for `(game, user)`, or reports who holds it.
    pub(super) async fn claim_key_lwt(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<(GameId, UserId)>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.claim_key,
                (key.as_str(), game.uuid(), user.as_str(), ttl_seconds.max(1)),
                "claim idempotency key",
            )
            .await?;
        match lwt_outcome(result, &["game_id", "user_id"], "claim idempotency key")? {
            (true, _) => Ok(Claim::Claimed),
            (false, values) => {
                let mut values = values.into_iter();
                match (values.next().flatten(), values.next().flatten()) {
                    (Some(CqlValue::Uuid(id)), Some(CqlValue::Text(owner))) => {
                        let owner = UserId::parse(&owner).map_err(|_| {
                            StoreError::Corrupt(format!("idempotency key owner {owner:?}"))
                        })?;
                        Ok(Claim::Held((GameId::from(id), owner)))
                    }
                    other => Err(StoreError::Corrupt(format!(
                        "idempotency key row is {other:?}"
                    ))),
                }
            }
        }
    }

    /// Points a key held by `user` at `game`.
    pub(super) async fn repoint_key_lwt(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<(), StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.repoint_key,
                (ttl_seconds.max(1), game.uuid(), key.as_str(), user.as_str()),
                "repoint idempotency key",
            )
            .await?;
        lwt_outcome(result, &[], "repoint idempotency key")?;
        Ok(())
    }

    /// Takes a seat unless taken; on a taken seat, answers its holder (our own user when a
    /// retried LWT sees its first run applied, or a concurrent join of the same user).
    pub(super) async fn claim_seat_lwt(&self, seat: &Seat) -> Result<Claim<UserId>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.claim_seat,
                SeatRow::from(seat),
                "claim seat",
            )
            .await?;
        match lwt_outcome(result, &["user_id"], "claim seat")? {
            (true, _) => Ok(Claim::Claimed),
            (false, values) => match values.into_iter().next().flatten() {
                Some(CqlValue::Text(user)) => UserId::parse(&user)
                    .map(Claim::Held)
                    .map_err(|_| StoreError::Corrupt(format!("seat holder {user:?}"))),
                other => Err(StoreError::Corrupt(format!(
                    "seat {} of game {} is held by {other:?}",
                    seat.seat, seat.game_id
                ))),
            },
        }
    }

    /// Records a seat's exit unless it already has one.
    pub(super) async fn exit_seat_lwt(
        &self,
        game: GameId,
        seat: u32,
        user: &UserId,
        result: &SeatResult,
    ) -> Result<SeatExit, StoreError> {
        let tick = result.final_tick;
        let big = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let seat_no = i32::try_from(seat).unwrap_or(i32::MAX);
        let outcome = self
            .execute_lwt(
                &self.statements.exit_seat,
                (
                    CqlTimestamp(result.exited_at),
                    tick.map(|t| big(t.step)),
                    tick.map(|t| big(t.value)),
                    tick.map(|t| big(t.round)),
                    tick.map(|t| t.broken),
                    result.break_first,
                    game.uuid(),
                    seat_no,
                    user.as_str(),
                ),
                "exit seat",
            )
            .await?;
        let (applied, values) = lwt_outcome(outcome, &["exited_at", "user_id"], "exit seat")?;
        if applied {
            return Ok(SeatExit::Exited);
        }
        let mut values = values.into_iter();
        match (values.next().flatten(), values.next().flatten()) {
            (Some(CqlValue::Timestamp(_)), Some(CqlValue::Text(holder)))
                if holder == user.as_str() =>
            {
                let seats = self.seats(game, seat + 1).await?;
                match seats.into_iter().find(|s| s.seat == seat) {
                    Some(Seat {
                        result: Some(found),
                        ..
                    }) => Ok(SeatExit::AlreadyExited(found)),
                    _ => Err(StoreError::Corrupt(format!(
                        "seat {seat} of game {game} is exited without a result"
                    ))),
                }
            }
            _ => Ok(SeatExit::NotFound),
        }
    }

    /// Frees a seat if `user` still holds it.
    pub(super) async fn delete_seat_lwt(
        &self,
        game: GameId,
        seat: u32,
        user: &UserId,
    ) -> Result<(), StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.delete_seat,
                (
                    game.uuid(),
                    i32::try_from(seat).unwrap_or(i32::MAX),
                    user.as_str(),
                ),
                "free seat",
            )
            .await?;
        lwt_outcome(result, &[], "free seat")?;
        Ok(())
    }
}
