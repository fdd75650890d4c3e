//! Where the leaderboard lives: the `leaderboard_results` and `leaderboard` tables (migration
//! 0007), or memory (origins on the memory store, which run no consumer).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use api::UserId;
use async_trait::async_trait;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;

use super::ResultLine;
use crate::store::{Kind, Store, StoreError, lwt_outcome, query_error};

/// One player's standing: (player, best value, games).
pub type Standing = (UserId, Option<u64>, u64);

/// The leaderboard's storage.
#[async_trait]
pub trait LeaderboardStore: Send + Sync + std::fmt::Debug {
    /// Applies one result: idempotent, so applying it again changes nothing.
    async fn apply(&self, line: &ResultLine) -> Result<(), StoreError>;

    /// Every player's standing in `period` under `algorithm`, unordered.
    async fn standings(&self, period: &str, algorithm: &str) -> Result<Vec<Standing>, StoreError>;
}

/// The mutation `LEADERBOARD_COUNT_BLINDLY=1` (feature `test-mutations` only): every delivery
/// writes a result row of its own (keyed by a fresh id instead of the game and seat), so a
/// redelivered exit counts again: the missing idempotency the tests must catch. Never in a
/// production build.
pub fn count_blindly() -> bool {
    #[cfg(feature = "test-mutations")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            let on = std::env::var("LEADERBOARD_COUNT_BLINDLY").is_ok_and(|v| v == "1");
            if on {
                tracing::warn!(
                    "LEADERBOARD_COUNT_BLINDLY=1: counting every delivery (a test mutation)"
                );
            }
            on
        })
    }
    #[cfg(not(feature = "test-mutations"))]
    {
        false
    }
}

type Board = (String, String);
type Seats = BTreeMap<(api::GameId, u32), Option<u64>>;

/// The leaderboard in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryLeaderboard {
    results: Mutex<HashMap<Board, HashMap<String, Seats>>>,
}

#[async_trait]
impl LeaderboardStore for MemoryLeaderboard {
    async fn apply(&self, line: &ResultLine) -> Result<(), StoreError> {
        let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        results
            .entry((line.period.clone(), line.algorithm.clone()))
            .or_default()
            .entry(line.user_id.to_string())
            .or_default()
            .insert((line.game_id, line.seat), line.value);
        Ok(())
    }

    async fn standings(&self, period: &str, algorithm: &str) -> Result<Vec<Standing>, StoreError> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        let Some(board) = results.get(&(period.to_owned(), algorithm.to_owned())) else {
            return Ok(Vec::new());
        };
        Ok(board
            .iter()
            .filter_map(|(user, seats)| {
                let best = seats.values().copied().max().flatten();
                Some((UserId::parse(user).ok()?, best, seats.len() as u64))
            })
            .collect())
    }
}

/// The leaderboard in Cassandra, in the games keyspace.
#[derive(Debug, Clone)]
pub struct CassandraLeaderboard {
    store: Store,
    insert_result: PreparedStatement,
    select_results: PreparedStatement,
    insert_totals: PreparedStatement,
    grow_totals: PreparedStatement,
    select_board: PreparedStatement,
}

/// A value as CQL `bigint`.
fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl CassandraLeaderboard {
    /// Prepares the statements over `keyspace`'s leaderboard tables (made by the migrations,
    /// which [`Store::connect`] checked).
    pub async fn connect(store: Store, keyspace: &str) -> Result<CassandraLeaderboard, StoreError> {
        let session = store.session();
        let prepare = |cql: String, idempotent: bool| async move {
            let mut statement = session
                .prepare(cql)
                .await
                .map_err(|e| query_error("prepare")(&e))?;
            statement.set_is_idempotent(idempotent);
            Ok::<_, StoreError>(statement)
        };
        let board = "period = ? AND algorithm = ?";
        Ok(CassandraLeaderboard {
            insert_result: prepare(
                format!(
                    "INSERT INTO {keyspace}.leaderboard_results \
                     (period, algorithm, user_id, game_id, seat, value, exited_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                true,
            )
            .await?,
            select_results: prepare(
                format!(
                    "SELECT value FROM {keyspace}.leaderboard_results \
                     WHERE {board} AND user_id = ?"
                ),
                true,
            )
            .await?,
            insert_totals: prepare(
                format!(
                    "INSERT INTO {keyspace}.leaderboard (period, algorithm, user_id, games, best_value) \
                     VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
                ),
                false,
            )
            .await?,
            grow_totals: prepare(
                format!(
                    "UPDATE {keyspace}.leaderboard SET games = ?, best_value = ? \
                     WHERE {board} AND user_id = ? IF games < ?"
                ),
                false,
            )
            .await?,
            select_board: prepare(
                format!(
                    "SELECT user_id, games, best_value FROM {keyspace}.leaderboard WHERE {board}"
                ),
                true,
            )
            .await?,
            store,
        })
    }
}

#[async_trait]
impl LeaderboardStore for CassandraLeaderboard {
    async fn apply(&self, line: &ResultLine) -> Result<(), StoreError> {
        // The mutation: a row per delivery (see [`count_blindly`]).
        let game_id = if count_blindly() {
            uuid::Uuid::new_v4()
        } else {
            line.game_id.uuid()
        };
        let user = line.user_id.as_str();
        let (period, algorithm) = (line.period.as_str(), line.algorithm.as_str());
        self.store
            .run(
                "insert_leaderboard_result",
                Kind::Plain,
                &self.insert_result,
                (
                    period,
                    algorithm,
                    user,
                    game_id,
                    i32::try_from(line.seat).unwrap_or(i32::MAX),
                    line.value.map(big),
                    CqlTimestamp(line.exited_at),
                ),
            )
            .await
            .map_err(|e| query_error("write leaderboard result")(&e))?;
        // Recount the player's results (this one included, and any written meanwhile).
        let operation = "read leaderboard results";
        let rows = self
            .store
            .run(
                "select_leaderboard_results",
                Kind::Plain,
                &self.select_results,
                (period, algorithm, user),
            )
            .await
            .map_err(|e| query_error(operation)(&e))?
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let mut games = 0i64;
        let mut best: Option<i64> = None;
        for row in rows
            .rows::<(Option<i64>,)>()
            .map_err(|e| query_error(operation)(&e))?
        {
            let (value,) = row.map_err(|e| query_error(operation)(&e))?;
            games += 1;
            best = best.max(value);
        }
        // Store the recount only if it grew: a recount never shrinks (rows are only added), so
        // the largest is the most complete, whoever writes it and in whatever order.
        let result = self
            .store
            .run(
                "insert_leaderboard_totals",
                Kind::Lwt,
                &self.insert_totals,
                (period, algorithm, user, games, best),
            )
            .await
            .map_err(|e| query_error("write leaderboard totals")(&e))?;
        let (applied, _) = lwt_outcome(result, &[], "write leaderboard totals")?;
        if !applied {
            let result = self
                .store
                .run(
                    "grow_leaderboard_totals",
                    Kind::Lwt,
                    &self.grow_totals,
                    (games, best, period, algorithm, user, games),
                )
                .await
                .map_err(|e| query_error("grow leaderboard totals")(&e))?;
            // Not applied: the stored count is already as large (as complete) as this one.
            lwt_outcome(result, &[], "grow leaderboard totals")?;
        }
        Ok(())
    }

    async fn standings(&self, period: &str, algorithm: &str) -> Result<Vec<Standing>, StoreError> {
        let operation = "read leaderboard";
        let rows = self
            .store
            .run(
                "select_leaderboard",
                Kind::Plain,
                &self.select_board,
                (period, algorithm),
            )
            .await
            .map_err(|e| query_error(operation)(&e))?
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let mut standings = Vec::new();
        for row in rows
            .rows::<(String, Option<i64>, Option<i64>)>()
            .map_err(|e| query_error(operation)(&e))?
        {
            let (user, games, best) = row.map_err(|e| query_error(operation)(&e))?;
            let Ok(user) = UserId::parse(&user) else {
                tracing::error!(user, "skipping a leaderboard row with a bad user id");
                continue;
            };
            standings.push((
                user,
                best.and_then(|b| u64::try_from(b).ok()),
                games.and_then(|g| u64::try_from(g).ok()).unwrap_or(0),
            ));
        }
        Ok(standings)
    }
}
