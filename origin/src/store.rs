//! Game storage on Apache Cassandra.
//!
//! Query-first model, a table per question the service asks:
//! - `games` (by game id): the game record; written once, then exited by an LWT.
//! - `active_game_by_user` (by user id): the user's one active game, claimed with
//!   `INSERT ... IF NOT EXISTS` so concurrent starts agree on a single game.
//! - `game_by_idempotency_key` (by key, 24 h TTL): which game a start request's
//!   `Idempotency-Key` produced, so a retried start returns the same game from any region.
//!
//! Every statement is prepared once at start-up. Errors keep the driver's text for the log and
//! say what to check.

use std::sync::Arc;
use std::time::Duration;

use scylla::DeserializeRow;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use shared_engine::Algorithm;
use uuid::Uuid;

use crate::config::CassandraSettings;
use crate::domain::{Game, GameId, GameStatus, IdempotencyKey, Region, UserId};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: u32 = 24 * 60 * 60;

/// A failed storage operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Could not connect to any contact point.
    #[error(
        "cannot connect to Cassandra at {hosts}: {message} (is it running? check CASSANDRA_HOSTS and credentials)"
    )]
    Connect {
        /// The contact points tried.
        hosts: String,
        /// The driver's error.
        message: String,
    },
    /// Creating the keyspace or tables failed.
    #[error(
        "cannot create the schema in keyspace {keyspace}: {message} (check CASSANDRA_REPLICATION matches the cluster's datacenters)"
    )]
    Schema {
        /// The keyspace.
        keyspace: String,
        /// The driver's error.
        message: String,
    },
    /// A query failed or timed out.
    #[error("Cassandra {operation} failed: {message}")]
    Query {
        /// What the service was doing.
        operation: &'static str,
        /// The driver's error.
        message: String,
    },
    /// A stored row does not hold what this service writes.
    #[error("stored row is not valid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// What the service was doing, for the `origin_cassandra_errors_total{operation}` metric.
    pub fn operation(&self) -> &'static str {
        match self {
            StoreError::Connect { .. } => "connect",
            StoreError::Schema { .. } => "schema",
            StoreError::Query { operation, .. } => operation,
            StoreError::Corrupt(_) => "decode row",
        }
    }
}

fn query_error(operation: &'static str) -> impl Fn(&dyn std::fmt::Display) -> StoreError {
    move |error| StoreError::Query {
        operation,
        message: error.to_string(),
    }
}

/// Whether an error leaves an LWT's outcome unknown or merely unreached, so that running the
/// same conditional statement again is the way to learn it: timeouts (Paxos contention across
/// datacenters surfaces as CAS write timeouts), unavailable replicas, overload, broken
/// connections.
fn worth_retrying(error: &ExecutionError) -> bool {
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

/// Attempts of one LWT before giving up (the driver itself never retries LWTs).
const LWT_ATTEMPTS: u32 = 5;

/// The outcome of a compare-and-set claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<T> {
    /// This request now holds it.
    Claimed,
    /// Someone already holds it, with this value.
    Held(T),
}

/// The outcome of exiting a game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitOutcome {
    /// This request exited it at the given time.
    Exited(i64),
    /// It had already been exited at the given time.
    AlreadyExited(i64),
    /// No such game.
    NotFound,
}

struct Statements {
    insert_game: PreparedStatement,
    insert_game_if_absent: PreparedStatement,
    select_game: PreparedStatement,
    delete_game: PreparedStatement,
    exit_game: PreparedStatement,
    claim_active: PreparedStatement,
    release_active: PreparedStatement,
    select_active: PreparedStatement,
    claim_key: PreparedStatement,
    repoint_key: PreparedStatement,
    ping: PreparedStatement,
}

/// The games store: one Cassandra session and its prepared statements.
#[derive(Clone)]
pub struct Store {
    session: Arc<Session>,
    statements: Arc<Statements>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const GAME_COLUMNS: &str = "game_id, user_id, region, seed, start_at, tick_ms, break_every, algorithm, status, \
                            created_at, exited_at, metadata";

#[derive(DeserializeRow)]
struct GameRow {
    game_id: Uuid,
    user_id: String,
    region: String,
    seed: i64,
    start_at: CqlTimestamp,
    tick_ms: i32,
    break_every: i32,
    algorithm: String,
    status: String,
    created_at: CqlTimestamp,
    exited_at: Option<CqlTimestamp>,
    metadata: Option<String>,
}

impl GameRow {
    fn into_game(self) -> Result<Game, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("game {}: {what}", self.game_id));
        let metadata = match &self.metadata {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text).map_err(|_| corrupt("metadata is not a JSON object"))?,
            ),
        };
        Ok(Game {
            id: GameId(self.game_id),
            user_id: UserId::parse("user_id", &self.user_id).map_err(|_| corrupt("bad user_id"))?,
            region: Region::parse(&self.region).map_err(|_| corrupt("bad region"))?,
            seed: u32::try_from(self.seed).map_err(|_| corrupt("seed out of range"))?,
            start_at_ms: self.start_at.0,
            tick_ms: u32::try_from(self.tick_ms)
                .ok()
                .filter(|t| *t >= 1)
                .ok_or_else(|| corrupt("bad tick_ms"))?,
            break_every: u32::try_from(self.break_every)
                .ok()
                .filter(|b| *b >= 2)
                .ok_or_else(|| corrupt("bad break_every"))?,
            algorithm: Algorithm::parse(&self.algorithm)
                .map_err(|_| corrupt("unknown algorithm"))?,
            status: GameStatus::parse(&self.status).ok_or_else(|| corrupt("unknown status"))?,
            created_at_ms: self.created_at.0,
            exited_at_ms: self.exited_at.map(|t| t.0),
            metadata,
        })
    }
}

type GameValues = (
    Uuid,
    String,
    String,
    i64,
    CqlTimestamp,
    i32,
    i32,
    String,
    String,
    CqlTimestamp,
    Option<CqlTimestamp>,
    Option<String>,
);

fn game_values(game: &Game) -> GameValues {
    (
        game.id.0,
        game.user_id.as_str().to_owned(),
        game.region.as_str().to_owned(),
        i64::from(game.seed),
        CqlTimestamp(game.start_at_ms),
        game.tick_ms as i32,
        game.break_every as i32,
        game.algorithm.as_str().to_owned(),
        game.status.as_str().to_owned(),
        CqlTimestamp(game.created_at_ms),
        game.exited_at_ms.map(CqlTimestamp),
        game.metadata
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string()),
    )
}

/// Reads the `[applied]` flag of an LWT and, when not applied, the named columns of the row
/// that won.
fn lwt_outcome(
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

impl Store {
    /// Connects, creates the keyspace and tables if missing, and prepares every statement.
    pub async fn connect(settings: &CassandraSettings) -> Result<Store, StoreError> {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(dc) = &settings.local_dc {
            policy = policy
                .prefer_datacenter(dc.clone())
                .permit_dc_failover(true);
        }
        let profile = ExecutionProfile::builder()
            .consistency(settings.consistency)
            .serial_consistency(Some(settings.serial_consistency))
            .request_timeout(Some(settings.timeout))
            .load_balancing_policy(policy.build())
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&settings.hosts)
            .connection_timeout(settings.timeout)
            .default_execution_profile_handle(profile.into_handle());
        if let Some((user, password)) = &settings.credentials {
            builder = builder.user(user, password);
        }
        let session = builder.build().await.map_err(|e| StoreError::Connect {
            hosts: settings.hosts.join(","),
            message: e.to_string(),
        })?;
        Self::create_schema(&session, settings).await?;
        let statements = Self::prepare(&session, &settings.keyspace).await?;
        Ok(Store {
            session: Arc::new(session),
            statements: Arc::new(statements),
        })
    }

    async fn create_schema(
        session: &Session,
        settings: &CassandraSettings,
    ) -> Result<(), StoreError> {
        let ks = &settings.keyspace;
        let schema_error = |e: &dyn std::fmt::Display| StoreError::Schema {
            keyspace: ks.clone(),
            message: e.to_string(),
        };
        let ddl = [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
                settings.replication.cql()
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.games (game_id uuid PRIMARY KEY, user_id text, region text, \
                 seed bigint, start_at timestamp, tick_ms int, break_every int, algorithm text, status text, \
                 created_at timestamp, exited_at timestamp, metadata text)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.active_game_by_user (user_id text PRIMARY KEY, game_id uuid)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.game_by_idempotency_key (idempotency_key text PRIMARY KEY, \
                 game_id uuid, user_id text) WITH default_time_to_live = {IDEMPOTENCY_TTL_SECONDS}"
            ),
        ];
        for statement in ddl {
            // Several origins may start at once; DDL is idempotent, and agreement is awaited by
            // the driver after each schema change.
            let mut attempt = 0;
            loop {
                match session.query_unpaged(statement.as_str(), ()).await {
                    Ok(_) => break,
                    Err(e) if attempt < 3 => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "schema statement failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                    }
                    Err(e) => return Err(schema_error(&e)),
                }
            }
        }
        session
            .await_schema_agreement()
            .await
            .map_err(|e| schema_error(&e))?;
        Ok(())
    }

    async fn prepare(session: &Session, ks: &str) -> Result<Statements, StoreError> {
        let prepare = |cql: String| async move {
            session
                .prepare(cql.clone())
                .await
                .map_err(|e| StoreError::Query {
                    operation: "prepare",
                    message: format!("{e} in `{cql}`"),
                })
        };
        let placeholders = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";
        let mut insert_game = prepare(format!(
            "INSERT INTO {ks}.games ({GAME_COLUMNS}) VALUES ({placeholders})"
        ))
        .await?;
        // A fresh random id cannot collide, so a plain insert may be retried safely.
        insert_game.set_is_idempotent(true);
        let mut select_game = prepare(format!(
            "SELECT {GAME_COLUMNS} FROM {ks}.games WHERE game_id = ?"
        ))
        .await?;
        select_game.set_is_idempotent(true);
        let mut select_active = prepare(format!(
            "SELECT game_id FROM {ks}.active_game_by_user WHERE user_id = ?"
        ))
        .await?;
        select_active.set_is_idempotent(true);
        let mut ping = prepare("SELECT release_version FROM system.local".to_owned()).await?;
        ping.set_is_idempotent(true);
        Ok(Statements {
            insert_game,
            insert_game_if_absent: prepare(format!(
                "INSERT INTO {ks}.games ({GAME_COLUMNS}) VALUES ({placeholders}) IF NOT EXISTS"
            ))
            .await?,
            select_game,
            delete_game: prepare(format!("DELETE FROM {ks}.games WHERE game_id = ?")).await?,
            exit_game: prepare(format!(
                "UPDATE {ks}.games SET status = 'exited', exited_at = ? WHERE game_id = ? IF status = 'active'"
            ))
            .await?,
            claim_active: prepare(format!(
                "INSERT INTO {ks}.active_game_by_user (user_id, game_id) VALUES (?, ?) IF NOT EXISTS"
            ))
            .await?,
            release_active: prepare(format!(
                "DELETE FROM {ks}.active_game_by_user WHERE user_id = ? IF game_id = ?"
            ))
            .await?,
            select_active,
            claim_key: prepare(format!(
                "INSERT INTO {ks}.game_by_idempotency_key (idempotency_key, game_id, user_id) VALUES (?, ?, ?) \
                 IF NOT EXISTS"
            ))
            .await?,
            repoint_key: prepare(format!(
                "UPDATE {ks}.game_by_idempotency_key SET game_id = ? WHERE idempotency_key = ? IF user_id = ?"
            ))
            .await?,
            ping,
        })
    }

    /// Runs a conditional statement, running it again after errors that leave its outcome
    /// unknown. Every LWT here is safe to repeat: a repeat of one that was applied reports the
    /// row it wrote, which callers recognise as their own.
    async fn execute_lwt(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow + Clone,
        operation: &'static str,
    ) -> Result<QueryResult, StoreError> {
        let mut attempt = 1;
        loop {
            match self
                .session
                .execute_unpaged(statement, values.clone())
                .await
            {
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

    /// Writes a new game whose id nobody else can hold (a fresh random UUID).
    pub async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.statements.insert_game, game_values(game))
            .await
            .map_err(|e| query_error("insert game")(&e))?;
        Ok(())
    }

    /// Writes a game unless one with its id exists; returns the existing one in that case.
    pub async fn insert_game_if_absent(&self, game: &Game) -> Result<Option<Game>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.insert_game_if_absent,
                game_values(game),
                "insert game (LWT)",
            )
            .await?;
        let (applied, _) = lwt_outcome(result, &[], "insert game (LWT)")?;
        if applied {
            Ok(None)
        } else {
            self.game(game.id)
                .await?
                .map(Some)
                .ok_or_else(|| StoreError::Query {
                    operation: "insert game (LWT)",
                    message: "the existing game could not be read back".into(),
                })
        }
    }

    /// Reads a game.
    pub async fn game(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_game, (id.0,))
            .await
            .map_err(|e| query_error("read game")(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error("read game")(&e))?;
        let row = rows
            .maybe_first_row::<GameRow>()
            .map_err(|e| query_error("read game")(&e))?;
        row.map(GameRow::into_game).transpose()
    }

    /// Deletes a game that never became anyone's active game.
    pub async fn delete_game(&self, id: GameId) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.statements.delete_game, (id.0,))
            .await
            .map_err(|e| query_error("delete game")(&e))?;
        Ok(())
    }

    /// Marks a game exited at `at_ms` unless it already is (the first exit time wins).
    pub async fn exit_game(&self, id: GameId, at_ms: i64) -> Result<ExitOutcome, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.exit_game,
                (CqlTimestamp(at_ms), id.0),
                "exit game",
            )
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

    /// Makes `game` the user's active game unless the user already has one.
    pub async fn claim_active(
        &self,
        user: &UserId,
        game: GameId,
    ) -> Result<Claim<GameId>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.claim_active,
                (user.as_str(), game.0),
                "claim active game",
            )
            .await?;
        match lwt_outcome(result, &["game_id"], "claim active game")? {
            (true, _) => Ok(Claim::Claimed),
            (false, values) => match values.into_iter().next().flatten() {
                Some(CqlValue::Uuid(id)) => Ok(Claim::Held(GameId(id))),
                other => Err(StoreError::Corrupt(format!(
                    "active game of {} is {other:?}",
                    user.as_str()
                ))),
            },
        }
    }

    /// Clears the user's active game if it is still `game`.
    pub async fn release_active(&self, user: &UserId, game: GameId) -> Result<(), StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.release_active,
                (user.as_str(), game.0),
                "release active game",
            )
            .await?;
        lwt_outcome(result, &[], "release active game")?;
        Ok(())
    }

    /// The id of the user's active game, if any.
    pub async fn active_game_id(&self, user: &UserId) -> Result<Option<GameId>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_active, (user.as_str(),))
            .await
            .map_err(|e| query_error("read active game")(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error("read active game")(&e))?;
        let row = rows
            .maybe_first_row::<(Uuid,)>()
            .map_err(|e| query_error("read active game")(&e))?;
        Ok(row.map(|(id,)| GameId(id)))
    }

    /// Records that `key` produces `game` for `user`, unless the key is already taken.
    pub async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
    ) -> Result<Claim<(GameId, String)>, StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.claim_key,
                (key.as_str(), game.0, user.as_str()),
                "claim idempotency key",
            )
            .await?;
        match lwt_outcome(result, &["game_id", "user_id"], "claim idempotency key")? {
            (true, _) => Ok(Claim::Claimed),
            (false, values) => {
                let mut values = values.into_iter();
                match (values.next().flatten(), values.next().flatten()) {
                    (Some(CqlValue::Uuid(id)), Some(CqlValue::Text(owner))) => {
                        Ok(Claim::Held((GameId(id), owner)))
                    }
                    other => Err(StoreError::Corrupt(format!(
                        "idempotency key row is {other:?}"
                    ))),
                }
            }
        }
    }

    /// Points `key` at the game the request finally answered with.
    pub async fn repoint_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
    ) -> Result<(), StoreError> {
        let result = self
            .execute_lwt(
                &self.statements.repoint_key,
                (game.0, key.as_str(), user.as_str()),
                "repoint idempotency key",
            )
            .await?;
        lwt_outcome(result, &[], "repoint idempotency key")?;
        Ok(())
    }

    /// Whether Cassandra answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.statements.ping, ())
            .await
            .map_err(|e| query_error("ping")(&e))?;
        Ok(())
    }

    /// The underlying session, for benchmarks that compare against raw driver writes.
    pub fn session(&self) -> &Session {
        &self.session
    }
}
