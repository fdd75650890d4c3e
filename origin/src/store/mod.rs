//! Game storage: the [`GameStore`] seam the service talks to, and [`Store`], its Apache
//! Cassandra implementation.
//!
//! Query-first model, a table per question the service asks:
//! - `games` (by game id): the game record; written once, then exited by an LWT.
//! - `active_game_by_user` (by user id): the user's one active game, claimed with
//!   `INSERT ... IF NOT EXISTS` so concurrent starts agree on a single game.
//! - `game_seats` (by game id and seat number): the seats of shared games, each taken with
//!   `INSERT ... IF NOT EXISTS` and exited by an LWT (see [`crate::service`]'s join).
//! - `game_by_idempotency_key` (by key, 24 h TTL): which game a start request's
//!   `Idempotency-Key` produced, so a retried start returns the same game from any region.
//! - `outbox_pending` and `outbox_floor`: the game events waiting for the relay (see
//!   [`crate::outbox`]).
//!
//! Every write of a row keyed by (or naming) a game carries a TTL the caller computes from the
//! game's lifecycle ([`crate::retention`]), so finished games leave by themselves.
//!
//! Pieces: [`migrate`] holds the versioned schema (`origin migrate`, and the check serving
//! origins make), `schema` prepares every statement once at start-up,
//! `rows` maps the `games` row to and from [`Game`], `lwt` runs the conditional statements
//! (claims) and retries those whose outcome is unknown, `outbox` implements
//! [`crate::outbox::OutboxStore`]. Errors keep the driver's text for the
//! log and say what to check. [`memory::MemoryStore`] is the same seam in this process's
//! memory, for the fast tests ([`StoreChoice::Memory`]).

mod lwt;
pub(crate) use lwt::lwt_outcome;
pub mod memory;
pub mod migrate;
mod outbox;
mod pending;
mod rows;
mod schema;
mod settings;
mod traced;

use std::sync::Arc;

use api::{GameId, IdempotencyKey, UserId};
use async_trait::async_trait;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::frame::types::{Consistency, SerialConsistency};
use scylla::policies::load_balancing::DefaultPolicy;
use uuid::Uuid;

pub(crate) use traced::Kind;
pub use traced::STATEMENT_DURATION;

use crate::domain::{Game, Seat};
use api::SeatResult;
pub use pending::{OutboxStore, PendingEvent, SHARDS, shard_of};
use rows::{GameRow, GameRowTtl, SeatRow};
use schema::Statements;
pub use settings::{CassandraSettings, Replication};

/// Where the application keeps its games (and its region registry).
///
/// The environment always means Cassandra; memory is for tests that want the production
/// wiring without a cluster (nothing survives the process and no other origin sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// Apache Cassandra at `CASSANDRA_HOSTS`. An unreachable cluster is retried `retries`
    /// times, 2 s apart (30 from the environment: compose starts Cassandra alongside).
    Cassandra {
        /// Further attempts after the first failed connection.
        retries: u32,
    },
    /// A [`memory::MemoryStore`] and an in-memory region registry.
    Memory,
}

impl Default for StoreChoice {
    fn default() -> StoreChoice {
        StoreChoice::Cassandra { retries: 30 }
    }
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: u32 = 24 * 60 * 60;

/// A failed storage operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Could not connect to any contact point.
    #[error(
        "cannot connect to Cassandra at {hosts}: {message} (is it running? check CASSANDRA_HOSTS, the credentials, and CASSANDRA_TLS_CA_FILE if the cluster requires TLS)"
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
    /// The keyspace's schema version is not the one this binary needs (or migrating failed
    /// for a reason that is not the driver's); the message names the versions and what to run.
    #[error("schema of keyspace {keyspace}: {message}")]
    SchemaVersion {
        /// The keyspace.
        keyspace: String,
        /// What is wrong and what to do.
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
    /// What the service was doing, for the `seedsync_cassandra_errors_total{operation}` metric.
    pub fn operation(&self) -> &'static str {
        match self {
            StoreError::Connect { .. } => "connect",
            StoreError::Schema { .. } | StoreError::SchemaVersion { .. } => "schema",
            StoreError::Query { operation, .. } => operation,
            StoreError::Corrupt(_) => "decode row",
        }
    }
}

/// Maps a driver error of `operation` onto a [`StoreError::Query`].
pub(crate) fn query_error(
    operation: &'static str,
) -> impl Fn(&dyn std::fmt::Display) -> StoreError {
    move |error| StoreError::Query {
        operation,
        message: error.to_string(),
    }
}

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

/// The outcome of exiting a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatExit {
    /// This request exited it with the result it gave.
    Exited,
    /// It had already been exited, with this result.
    AlreadyExited(SeatResult),
    /// No such seat held by that user.
    NotFound,
}

/// What the service needs from storage. Every write that decides something between
/// concurrent requests is a compare-and-set whose repeat is harmless (see [`crate::service`]).
///
/// Implemented by [`Store`] on Cassandra, and by [`memory::MemoryStore`], on which the tests
/// drive the HTTP layer without a cluster.
#[async_trait]
pub trait GameStore: Send + Sync + std::fmt::Debug {
    /// Writes a new game whose id nobody else can hold (a fresh random UUID); its cells
    /// expire after `ttl_seconds`.
    async fn insert_game(&self, game: &Game, ttl_seconds: i32) -> Result<(), StoreError>;

    /// Writes a game (expiring after `ttl_seconds`) unless one with its id exists; returns the
    /// existing one in that case.
    async fn insert_game_if_absent(
        &self,
        game: &Game,
        ttl_seconds: i32,
    ) -> Result<Option<Game>, StoreError>;

    /// Reads a game.
    async fn game(&self, id: GameId) -> Result<Option<Game>, StoreError>;

    /// Deletes a game that never became anyone's active game.
    async fn delete_game(&self, id: GameId) -> Result<(), StoreError>;

    /// Marks `game` (as read) exited at `at_ms` unless it already is (the first exit time
    /// wins). The exit rewrites the whole row, so all of it expires `ttl_seconds` later.
    async fn exit_game(
        &self,
        game: &Game,
        at_ms: i64,
        ttl_seconds: i32,
    ) -> Result<ExitOutcome, StoreError>;

    /// Makes `game` the user's active game unless the user already has one. The slot frees
    /// itself after `ttl_seconds` (the game's remaining life, `crate::max_age`).
    async fn claim_active(
        &self,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError>;

    /// Clears the user's active game if it is still `game`.
    async fn release_active(&self, user: &UserId, game: GameId) -> Result<(), StoreError>;

    /// The id of the user's active game, if any.
    async fn active_game_id(&self, user: &UserId) -> Result<Option<GameId>, StoreError>;

    /// Records that `key` produces `game` for `user` for `ttl_seconds`, unless the key is
    /// already taken; then answers the game and user that hold it.
    async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<(GameId, UserId)>, StoreError>;

    /// Points `key` (held by `user`) at the game the request finally answered with, for
    /// `ttl_seconds` more.
    async fn repoint_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<(), StoreError>;

    /// Reads a game at SERIAL consistency (completing any LWT in flight on it): what a join
    /// checks after taking its seat, against an end committed meanwhile.
    async fn game_serial(&self, id: GameId) -> Result<Option<Game>, StoreError>;

    /// Writes a seat nobody else can hold (the creator's seat 0, written before the game is
    /// committed); a repeat writes the same values.
    async fn insert_seat(&self, seat: &Seat) -> Result<(), StoreError>;

    /// Takes `seat` unless it is taken; then answers who holds it.
    async fn claim_seat(&self, seat: &Seat) -> Result<Claim<UserId>, StoreError>;

    /// Every taken seat of a game of `max_players` seats, by seat number.
    async fn seats(&self, game: GameId, max_players: u32) -> Result<Vec<Seat>, StoreError>;

    /// Records `result` on seat `seat` of `game` if `user` holds it and has not exited (the
    /// first exit wins).
    async fn exit_seat(
        &self,
        game: GameId,
        seat: u32,
        user: &UserId,
        result: &SeatResult,
    ) -> Result<SeatExit, StoreError>;

    /// Frees seat `seat` of `game` if `user` still holds it (a join that lost to the game's
    /// end gives its seat back).
    async fn delete_seat(&self, game: GameId, seat: u32, user: &UserId) -> Result<(), StoreError>;

    /// Whether storage answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The games store on Cassandra: one session and its prepared statements.
#[derive(Clone)]
pub struct Store {
    session: Arc<Session>,
    statements: Arc<Statements>,
    /// Statement latency ([`traced`]), registered by the application's metrics.
    latency: prometheus::HistogramVec,
    /// The session's consistency levels, for the statement spans.
    defaults: traced::Defaults,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// A driver session to the cluster of `settings` (no keyspace, no schema work).
pub(crate) async fn open_session(settings: &CassandraSettings) -> Result<Session, StoreError> {
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
        builder = builder.user(user, password.expose());
    }
    if let Some(tls) = &settings.tls {
        builder = builder.tls_context(Some(tls.clone()));
    }
    builder.build().await.map_err(|e| StoreError::Connect {
        hosts: settings.hosts.join(","),
        message: e.to_string(),
    })
}

impl Store {
    /// Connects, makes sure the schema is the one this binary knows (applying the pending
    /// migrations when [`CassandraSettings::auto_migrate`], else only checking: see
    /// [`migrate`]), and prepares every statement.
    pub async fn connect(settings: &CassandraSettings) -> Result<Store, StoreError> {
        let session = open_session(settings).await?;
        if settings.auto_migrate {
            migrate::apply(&session, settings).await?;
        } else {
            migrate::check(&session, settings).await?;
        }
        let serial = match settings.serial_consistency {
            SerialConsistency::Serial => Consistency::Serial,
            SerialConsistency::LocalSerial => Consistency::LocalSerial,
        };
        let statements = schema::prepare(&session, &settings.keyspace, serial).await?;
        Ok(Store {
            session: Arc::new(session),
            statements: Arc::new(statements),
            latency: traced::statement_histogram(),
            defaults: traced::Defaults {
                consistency: settings.consistency,
                serial: settings.serial_consistency,
            },
        })
    }

    /// The statement latency histogram (`seedsync_cassandra_statement_duration_seconds`), for
    /// the metrics registry to serve.
    pub fn statement_latency(&self) -> prometheus::HistogramVec {
        self.latency.clone()
    }

    /// The underlying session, for benchmarks that compare against raw driver writes and for
    /// tests that break the schema under a running origin.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

#[async_trait]
impl GameStore for Store {
    async fn insert_game(&self, game: &Game, ttl_seconds: i32) -> Result<(), StoreError> {
        self.run(
            "insert_game",
            Kind::Plain,
            &self.statements.insert_game,
            GameRowTtl::new(game, ttl_seconds),
        )
        .await
        .map_err(|e| query_error("insert game")(&e))?;
        Ok(())
    }

    async fn insert_game_if_absent(
        &self,
        game: &Game,
        ttl_seconds: i32,
    ) -> Result<Option<Game>, StoreError> {
        if self.insert_game_lwt(game, ttl_seconds).await? {
            return Ok(None);
        }
        self.game(game.id)
            .await?
            .map(Some)
            .ok_or_else(|| StoreError::Query {
                operation: "insert game (LWT)",
                message: "the existing game could not be read back".into(),
            })
    }

    async fn game(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        let row: Option<GameRow> = self
            .first_row(
                "select_game",
                Kind::Plain,
                &self.statements.select_game,
                (id.uuid(),),
                "read game",
            )
            .await?;
        row.map(Game::try_from).transpose()
    }

    async fn delete_game(&self, id: GameId) -> Result<(), StoreError> {
        self.run(
            "delete_game",
            Kind::Plain,
            &self.statements.delete_game,
            (id.uuid(),),
        )
        .await
        .map_err(|e| query_error("delete game")(&e))?;
        Ok(())
    }

    async fn exit_game(
        &self,
        game: &Game,
        at_ms: i64,
        ttl_seconds: i32,
    ) -> Result<ExitOutcome, StoreError> {
        self.exit_game_lwt(game, at_ms, ttl_seconds).await
    }

    async fn claim_active(
        &self,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError> {
        self.claim_active_lwt(user, game, ttl_seconds).await
    }

    async fn release_active(&self, user: &UserId, game: GameId) -> Result<(), StoreError> {
        self.release_active_lwt(user, game).await
    }

    async fn active_game_id(&self, user: &UserId) -> Result<Option<GameId>, StoreError> {
        let row: Option<(Uuid,)> = self
            .first_row(
                "select_active",
                Kind::Plain,
                &self.statements.select_active,
                (user.as_str(),),
                "read active game",
            )
            .await?;
        Ok(row.map(|(id,)| GameId::from(id)))
    }

    async fn claim_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<Claim<(GameId, UserId)>, StoreError> {
        self.claim_key_lwt(key, user, game, ttl_seconds).await
    }

    async fn repoint_idempotency_key(
        &self,
        key: &IdempotencyKey,
        user: &UserId,
        game: GameId,
        ttl_seconds: i32,
    ) -> Result<(), StoreError> {
        self.repoint_key_lwt(key, user, game, ttl_seconds).await
    }

    async fn game_serial(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        let row: Option<GameRow> = self
            .first_row(
                "select_game_serial",
                Kind::Lwt,
                &self.statements.outbox.select_game_serial,
                (id.uuid(),),
                "read game (serial)",
            )
            .await?;
        row.map(Game::try_from).transpose()
    }

    async fn insert_seat(&self, seat: &Seat) -> Result<(), StoreError> {
        self.run(
            "insert_seat",
            Kind::Plain,
            &self.statements.insert_seat,
            SeatRow::from(seat),
        )
        .await
        .map_err(|e| query_error("insert seat")(&e))?;
        Ok(())
    }

    async fn claim_seat(&self, seat: &Seat) -> Result<Claim<UserId>, StoreError> {
        self.claim_seat_lwt(seat).await
    }

    async fn seats(&self, game: GameId, max_players: u32) -> Result<Vec<Seat>, StoreError> {
        let numbers: Vec<i32> = (0..max_players)
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
            .collect();
        let result = self
            .run(
                "select_seats",
                Kind::Plain,
                &self.statements.select_seats,
                (game.uuid(), numbers),
            )
            .await
            .map_err(|e| query_error("read seats")(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error("read seats")(&e))?;
        let mut seats = rows
            .rows::<SeatRow>()
            .map_err(|e| query_error("read seats")(&e))?
            .map(|row| {
                row.map_err(|e| query_error("read seats")(&e))
                    .and_then(Seat::try_from)
            })
            .collect::<Result<Vec<Seat>, StoreError>>()?;
        seats.sort_by_key(|s| s.seat);
        Ok(seats)
    }

    async fn exit_seat(
        &self,
        game: GameId,
        seat: u32,
        user: &UserId,
        result: &SeatResult,
    ) -> Result<SeatExit, StoreError> {
        self.exit_seat_lwt(game, seat, user, result).await
    }

    async fn delete_seat(&self, game: GameId, seat: u32, user: &UserId) -> Result<(), StoreError> {
        self.delete_seat_lwt(game, seat, user).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", Kind::Plain, &self.statements.ping, ())
            .await
            .map_err(|e| query_error("ping")(&e))?;
        Ok(())
    }
}
