//! Tournaments ([`api::tournament`]): the stored definition, its tables and entries, and where
//! they live: the tables of migration 0008 on Cassandra ([`CassandraTournaments`]), or memory
//! ([`MemoryTournaments`], for origins on the memory store).
//!
//! The decisions (which table a player sits at, when a round's scores are final) are the
//! service's ([`crate::service`]); this module only offers the compare-and-set claims they
//! rest on:
//! - a table of a round is opened with `INSERT ... IF NOT EXISTS` under its number, so
//!   concurrent joins that all find every table full agree on one next table;
//! - a player's entry in a round is claimed with `INSERT ... IF NOT EXISTS` and completed
//!   with its table's game by `UPDATE ... IF game_id = null`, so a player sits at one table
//!   per round at most.
//!
//! An LWT whose outcome is unknown (a timeout) is run again: every claim writes a value only
//! its writer holds (a fresh game id, or the game the writer seated the player at), so seeing
//! that value held means the first run was applied.

use std::collections::HashMap;
use std::sync::Mutex;

use api::tournament::{RoundView, TournamentId, TournamentView, round_view};
use api::{BreakEvery, GameAlgorithm, GameId, MaxPlayers, TickMs, UserId};
use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue};

use crate::domain::SealedSecret;
use crate::error::AppError;
use crate::store::{Claim, Kind, Store, StoreError, lwt_outcome, query_error};

/// A stored tournament.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tournament {
    /// Its id.
    pub id: TournamentId,
    /// Its name.
    pub name: String,
    /// Round count (`1..=100`).
    pub rounds: u32,
    /// Unix ms of round 0's start.
    pub first_start_at: i64,
    /// Between two rounds' starts.
    pub interval_ms: i64,
    /// Every table's tick.
    pub tick_ms: TickMs,
    /// Every table's odds.
    pub break_every: BreakEvery,
    /// Every table's algorithm.
    pub algorithm: GameAlgorithm,
    /// Seats per table.
    pub seats_per_table: MaxPlayers,
    /// Each round's seed: never shown, except in the games of the round's tables (a seeded
    /// algorithm: predictable to a seated player).
    pub seeds: Vec<u32>,
    /// Each round's sealed secret (`sealed-v1`; empty otherwise): given to every table of the
    /// round, whose keys come out one break at a time. Never in a view, log line or span.
    pub sealed: Vec<SealedSecret>,
    /// Unix ms of its creation.
    pub created_at: i64,
}

impl Tournament {
    /// Round `round` as seen at `now_ms`: 404 past the last round.
    pub fn round(&self, round: u32, now_ms: i64) -> Result<RoundView, AppError> {
        if round >= self.rounds {
            return Err(AppError::NotFound(format!(
                "tournament {} has rounds 0..={}, not {round}",
                self.id,
                self.rounds - 1
            )));
        }
        Ok(round_view(
            self.first_start_at,
            self.interval_ms,
            round,
            now_ms,
        ))
    }

    /// Unix ms at which its last round ends.
    pub fn end_at(&self) -> i64 {
        round_view(
            self.first_start_at,
            self.interval_ms,
            self.rounds.saturating_sub(1),
            0,
        )
        .end_at
    }

    /// The schedule at `now_ms` (no seed).
    pub fn view(&self, now_ms: i64) -> TournamentView {
        TournamentView {
            tournament_id: self.id,
            name: self.name.clone(),
            rounds: self.rounds,
            first_start_at: self.first_start_at,
            interval_ms: self.interval_ms,
            tick_ms: self.tick_ms.get(),
            break_every: self.break_every.get(),
            algorithm: self.algorithm,
            seats_per_table: self.seats_per_table.get(),
            max_tables: api::tournament::MAX_TABLES_PER_ROUND,
            created_at: self.created_at,
            as_of: now_ms,
            schedule: (0..self.rounds)
                .map(|r| round_view(self.first_start_at, self.interval_ms, r, now_ms))
                .collect(),
        }
    }
}

/// A table of a round: a shared game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// From 0, in opening order.
    pub number: u32,
    /// Its game (written by the opener after the table's claim: briefly missing).
    pub game_id: GameId,
    /// Unix ms of the claim.
    pub opened_at: i64,
}

/// A player's entry in a round: the table's game once seated (`None`: being seated).
pub type Entry = Option<GameId>;

/// Where tournaments live.
#[async_trait]
pub trait TournamentStore: Send + Sync + std::fmt::Debug {
    /// Writes a new tournament (a fresh id), expiring after `ttl_seconds`.
    async fn insert(&self, tournament: &Tournament, ttl_seconds: i32) -> Result<(), StoreError>;

    /// Reads one.
    async fn get(&self, id: TournamentId) -> Result<Option<Tournament>, StoreError>;

    /// The tables of a round, by number.
    async fn tables(&self, id: TournamentId, round: u32) -> Result<Vec<Table>, StoreError>;

    /// Opens `table` unless its number is taken; then answers the game that holds it.
    async fn open_table(
        &self,
        id: TournamentId,
        round: u32,
        table: &Table,
        ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError>;

    /// Claims the player's entry in a round (not yet seated) unless they have one; then
    /// answers it.
    async fn claim_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        ttl_seconds: i32,
    ) -> Result<Claim<Entry>, StoreError>;

    /// Records the player's table in their entry unless it holds one; then answers it.
    async fn seat_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        table: &Table,
        ttl_seconds: i32,
    ) -> Result<Claim<Entry>, StoreError>;

    /// A finished round's stored scores (JSON), if computed already.
    async fn scores(&self, id: TournamentId, round: u32) -> Result<Option<String>, StoreError>;

    /// Stores a finished round's scores (every writer writes the same).
    async fn put_scores(
        &self,
        id: TournamentId,
        round: u32,
        scores: &str,
        ttl_seconds: i32,
    ) -> Result<(), StoreError>;
}

type Round = (TournamentId, u32);

/// Tournaments in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryTournaments {
    tournaments: Mutex<HashMap<TournamentId, Tournament>>,
    tables: Mutex<HashMap<Round, Vec<Table>>>,
    entries: Mutex<HashMap<(Round, UserId), Entry>>,
    scores: Mutex<HashMap<Round, String>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl TournamentStore for MemoryTournaments {
    async fn insert(&self, tournament: &Tournament, _: i32) -> Result<(), StoreError> {
        locked(&self.tournaments).insert(tournament.id, tournament.clone());
        Ok(())
    }

    async fn get(&self, id: TournamentId) -> Result<Option<Tournament>, StoreError> {
        Ok(locked(&self.tournaments).get(&id).cloned())
    }

    async fn tables(&self, id: TournamentId, round: u32) -> Result<Vec<Table>, StoreError> {
        Ok(locked(&self.tables)
            .get(&(id, round))
            .cloned()
            .unwrap_or_default())
    }

    async fn open_table(
        &self,
        id: TournamentId,
        round: u32,
        table: &Table,
        _: i32,
    ) -> Result<Claim<GameId>, StoreError> {
        let mut tables = locked(&self.tables);
        let round = tables.entry((id, round)).or_default();
        if let Some(held) = round.iter().find(|t| t.number == table.number) {
            return Ok(Claim::Held(held.game_id));
        }
        round.push(*table);
        round.sort_by_key(|t| t.number);
        Ok(Claim::Claimed)
    }

    async fn claim_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        _: i32,
    ) -> Result<Claim<Entry>, StoreError> {
        let mut entries = locked(&self.entries);
        match entries.get(&((id, round), user.clone())) {
            Some(entry) => Ok(Claim::Held(*entry)),
            None => {
                entries.insert(((id, round), user.clone()), None);
                Ok(Claim::Claimed)
            }
        }
    }

    async fn seat_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        table: &Table,
        _: i32,
    ) -> Result<Claim<Entry>, StoreError> {
        let mut entries = locked(&self.entries);
        let entry = entries.entry(((id, round), user.clone())).or_insert(None);
        match entry {
            Some(game) => Ok(Claim::Held(Some(*game))),
            None => {
                *entry = Some(table.game_id);
                Ok(Claim::Claimed)
            }
        }
    }

    async fn scores(&self, id: TournamentId, round: u32) -> Result<Option<String>, StoreError> {
        Ok(locked(&self.scores).get(&(id, round)).cloned())
    }

    async fn put_scores(
        &self,
        id: TournamentId,
        round: u32,
        scores: &str,
        _: i32,
    ) -> Result<(), StoreError> {
        locked(&self.scores).insert((id, round), scores.to_owned());
        Ok(())
    }
}

/// Tournaments on Cassandra (migrations 0008 and 0009).
#[derive(Debug)]
pub struct CassandraTournaments {
    store: Store,
    insert: PreparedStatement,
    select: PreparedStatement,
    select_tables: PreparedStatement,
    open_table: PreparedStatement,
    claim_entry: PreparedStatement,
    seat_entry: PreparedStatement,
    select_scores: PreparedStatement,
    insert_scores: PreparedStatement,
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// How often an LWT whose outcome is unknown is run again.
const LWT_ATTEMPTS: u32 = 3;

type TournamentRow = (
    uuid::Uuid,
    String,
    i32,
    CqlTimestamp,
    i64,
    i32,
    i32,
    String,
    i32,
    Vec<i64>,
    CqlTimestamp,
    Option<Vec<Vec<u8>>>,
    Option<Vec<Vec<u8>>>,
);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("tournament row: {what}"))
}

fn from_row(row: TournamentRow) -> Result<Tournament, StoreError> {
    let (
        id,
        name,
        rounds,
        first,
        interval,
        tick,
        odds,
        algorithm,
        seats,
        seeds,
        created,
        roots,
        heads,
    ) = row;
    let key = |bytes: Vec<u8>, what: &str| {
        <[u8; 32]>::try_from(bytes)
            .map(shared_engine::sealed::Key)
            .map_err(|_| corrupt(what))
    };
    let (roots, heads) = (roots.unwrap_or_default(), heads.unwrap_or_default());
    if roots.len() != heads.len() {
        return Err(corrupt(
            "sealed_roots and sealed_commitments differ in length",
        ));
    }
    let sealed = roots
        .into_iter()
        .zip(heads)
        .map(|(root, head)| {
            Ok(SealedSecret {
                root: key(root, "a sealed root is not 32 bytes")?,
                commitment: key(head, "a sealed commitment is not 32 bytes")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let u = |v: i32| u64::try_from(v).map_err(|_| corrupt("a negative number"));
    Ok(Tournament {
        id: GameId::from(id),
        name,
        rounds: u32::try_from(rounds).map_err(|_| corrupt("rounds"))?,
        first_start_at: first.0,
        interval_ms: interval,
        tick_ms: TickMs::parse(u(tick)?).map_err(|_| corrupt("tick_ms"))?,
        break_every: BreakEvery::parse(u(odds)?).map_err(|_| corrupt("break_every"))?,
        algorithm: GameAlgorithm::parse(&algorithm).ok_or_else(|| corrupt("algorithm"))?,
        seats_per_table: MaxPlayers::parse(u(seats)?).map_err(|_| corrupt("seats_per_table"))?,
        seeds: seeds
            .into_iter()
            .map(|s| u32::try_from(s).map_err(|_| corrupt("seeds")))
            .collect::<Result<_, _>>()?,
        sealed,
        created_at: created.0,
    })
}

impl CassandraTournaments {
    /// Prepares the statements over `keyspace`'s tournament tables (made by the migrations,
    /// which [`Store::connect`] checked).
    pub async fn connect(store: Store, keyspace: &str) -> Result<CassandraTournaments, StoreError> {
        let session = store.session();
        let prepare = |cql: String, idempotent: bool| async move {
            let mut statement = session
                .prepare(cql)
                .await
                .map_err(|e| query_error("prepare")(&e))?;
            statement.set_is_idempotent(idempotent);
            Ok::<_, StoreError>(statement)
        };
        let columns = "tournament_id, name, rounds, first_start_at, interval_ms, tick_ms, \
                       break_every, algorithm, seats_per_table, seeds, created_at, \
                       sealed_roots, sealed_commitments";
        let entry = "tournament_id = ? AND round = ? AND user_id = ?";
        Ok(CassandraTournaments {
            insert: prepare(
                format!(
                    "INSERT INTO {keyspace}.tournaments ({columns}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            select: prepare(
                format!("SELECT {columns} FROM {keyspace}.tournaments WHERE tournament_id = ?"),
                true,
            )
            .await?,
            select_tables: prepare(
                format!(
                    "SELECT table_no, game_id, opened_at FROM {keyspace}.tournament_tables \
                     WHERE tournament_id = ? AND round = ?"
                ),
                true,
            )
            .await?,
            open_table: prepare(
                format!(
                    "INSERT INTO {keyspace}.tournament_tables \
                     (tournament_id, round, table_no, game_id, opened_at) \
                     VALUES (?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?"
                ),
                false,
            )
            .await?,
            claim_entry: prepare(
                format!(
                    "INSERT INTO {keyspace}.tournament_entries (tournament_id, round, user_id) \
                     VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?"
                ),
                false,
            )
            .await?,
            seat_entry: prepare(
                format!(
                    "UPDATE {keyspace}.tournament_entries USING TTL ? \
                     SET game_id = ?, table_no = ? WHERE {entry} IF game_id = null"
                ),
                false,
            )
            .await?,
            select_scores: prepare(
                format!(
                    "SELECT scores FROM {keyspace}.tournament_scores \
                     WHERE tournament_id = ? AND round = ?"
                ),
                true,
            )
            .await?,
            insert_scores: prepare(
                format!(
                    "INSERT INTO {keyspace}.tournament_scores (tournament_id, round, scores) \
                     VALUES (?, ?, ?) USING TTL ?"
                ),
                true,
            )
            .await?,
            store,
        })
    }

    /// Runs an LWT (again while its outcome is unknown): whether it applied, and the named
    /// columns of the row it found.
    async fn lwt(
        &self,
        name: &'static str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow + Clone,
        columns: &[&str],
        operation: &'static str,
    ) -> Result<(bool, Vec<Option<CqlValue>>), StoreError> {
        let mut attempt = 1;
        loop {
            match self
                .store
                .run(name, Kind::Lwt, statement, values.clone())
                .await
            {
                Ok(result) => return lwt_outcome(result, columns, operation),
                Err(e) if attempt >= LWT_ATTEMPTS => return Err(query_error(operation)(&e)),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, operation, "LWT outcome unknown; running it again");
                    attempt += 1;
                }
            }
        }
    }
}

fn game_of(value: Option<&Option<CqlValue>>) -> Entry {
    match value {
        Some(Some(CqlValue::Uuid(id))) => Some(GameId::from(*id)),
        _ => None,
    }
}

#[async_trait]
impl TournamentStore for CassandraTournaments {
    async fn insert(&self, t: &Tournament, ttl_seconds: i32) -> Result<(), StoreError> {
        let seeds: Vec<i64> = t.seeds.iter().map(|s| i64::from(*s)).collect();
        let roots: Vec<Vec<u8>> = t.sealed.iter().map(|s| s.root.0.to_vec()).collect();
        let heads: Vec<Vec<u8>> = t.sealed.iter().map(|s| s.commitment.0.to_vec()).collect();
        self.store
            .run(
                "insert_tournament",
                Kind::Plain,
                &self.insert,
                (
                    t.id.uuid(),
                    t.name.as_str(),
                    int(t.rounds),
                    CqlTimestamp(t.first_start_at),
                    t.interval_ms,
                    int(t.tick_ms.get()),
                    int(t.break_every.get()),
                    t.algorithm.as_str(),
                    int(t.seats_per_table.get()),
                    seeds,
                    CqlTimestamp(t.created_at),
                    roots,
                    heads,
                    ttl_seconds,
                ),
            )
            .await
            .map_err(|e| query_error("insert tournament")(&e))?;
        Ok(())
    }

    async fn get(&self, id: TournamentId) -> Result<Option<Tournament>, StoreError> {
        let operation = "read tournament";
        let rows = self
            .store
            .run("select_tournament", Kind::Plain, &self.select, (id.uuid(),))
            .await
            .map_err(|e| query_error(operation)(&e))?
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        rows.maybe_first_row::<TournamentRow>()
            .map_err(|e| query_error(operation)(&e))?
            .map(from_row)
            .transpose()
    }

    async fn tables(&self, id: TournamentId, round: u32) -> Result<Vec<Table>, StoreError> {
        let operation = "read tournament tables";
        let rows = self
            .store
            .run(
                "select_tournament_tables",
                Kind::Plain,
                &self.select_tables,
                (id.uuid(), int(round)),
            )
            .await
            .map_err(|e| query_error(operation)(&e))?
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let mut tables = Vec::new();
        for row in rows
            .rows::<(i32, uuid::Uuid, CqlTimestamp)>()
            .map_err(|e| query_error(operation)(&e))?
        {
            let (number, game, opened) = row.map_err(|e| query_error(operation)(&e))?;
            tables.push(Table {
                number: u32::try_from(number).map_err(|_| corrupt("table_no"))?,
                game_id: GameId::from(game),
                opened_at: opened.0,
            });
        }
        tables.sort_by_key(|t| t.number);
        Ok(tables)
    }

    async fn open_table(
        &self,
        id: TournamentId,
        round: u32,
        table: &Table,
        ttl_seconds: i32,
    ) -> Result<Claim<GameId>, StoreError> {
        let values = (
            id.uuid(),
            int(round),
            int(table.number),
            table.game_id.uuid(),
            CqlTimestamp(table.opened_at),
            ttl_seconds,
        );
        let (applied, found) = self
            .lwt(
                "open_tournament_table",
                &self.open_table,
                values,
                &["game_id"],
                "open tournament table",
            )
            .await?;
        match game_of(found.first()) {
            _ if applied => Ok(Claim::Claimed),
            // Our own claim, seen by a run again of an applied LWT.
            Some(game) if game == table.game_id => Ok(Claim::Claimed),
            Some(game) => Ok(Claim::Held(game)),
            None => Err(corrupt("a table without its game")),
        }
    }

    async fn claim_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        ttl_seconds: i32,
    ) -> Result<Claim<Entry>, StoreError> {
        let values = (id.uuid(), int(round), user.as_str(), ttl_seconds);
        let (applied, found) = self
            .lwt(
                "claim_tournament_entry",
                &self.claim_entry,
                values,
                &["game_id"],
                "claim tournament entry",
            )
            .await?;
        if applied {
            return Ok(Claim::Claimed);
        }
        // A pending entry (ours, run again, or a concurrent join's) answers `Held(None)`: the
        // caller seats the player either way, under the one-active-game rule.
        Ok(Claim::Held(game_of(found.first())))
    }

    async fn seat_entry(
        &self,
        id: TournamentId,
        round: u32,
        user: &UserId,
        table: &Table,
        ttl_seconds: i32,
    ) -> Result<Claim<Entry>, StoreError> {
        let values = (
            ttl_seconds,
            table.game_id.uuid(),
            int(table.number),
            id.uuid(),
            int(round),
            user.as_str(),
        );
        let (applied, found) = self
            .lwt(
                "seat_tournament_entry",
                &self.seat_entry,
                values,
                &["game_id"],
                "seat tournament entry",
            )
            .await?;
        match game_of(found.first()) {
            _ if applied => Ok(Claim::Claimed),
            Some(game) if game == table.game_id => Ok(Claim::Claimed),
            other => Ok(Claim::Held(other)),
        }
    }

    async fn scores(&self, id: TournamentId, round: u32) -> Result<Option<String>, StoreError> {
        let operation = "read tournament scores";
        let rows = self
            .store
            .run(
                "select_tournament_scores",
                Kind::Plain,
                &self.select_scores,
                (id.uuid(), int(round)),
            )
            .await
            .map_err(|e| query_error(operation)(&e))?
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        Ok(rows
            .maybe_first_row::<(Option<String>,)>()
            .map_err(|e| query_error(operation)(&e))?
            .and_then(|(s,)| s))
    }

    async fn put_scores(
        &self,
        id: TournamentId,
        round: u32,
        scores: &str,
        ttl_seconds: i32,
    ) -> Result<(), StoreError> {
        self.store
            .run(
                "insert_tournament_scores",
                Kind::Plain,
                &self.insert_scores,
                (id.uuid(), int(round), scores, ttl_seconds),
            )
            .await
            .map_err(|e| query_error("write tournament scores")(&e))?;
        Ok(())
    }
}
