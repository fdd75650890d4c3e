//! The keyspace and tables (created if missing) and every statement, prepared once.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::rows::GAME_COLUMNS;
use super::{IDEMPOTENCY_TTL_SECONDS, StoreError};
use crate::config::CassandraSettings;

/// Every statement the store runs.
pub(super) struct Statements {
    pub(super) insert_game: PreparedStatement,
    pub(super) insert_game_if_absent: PreparedStatement,
    pub(super) select_game: PreparedStatement,
    pub(super) delete_game: PreparedStatement,
    pub(super) exit_game: PreparedStatement,
    pub(super) claim_active: PreparedStatement,
    pub(super) release_active: PreparedStatement,
    pub(super) select_active: PreparedStatement,
    pub(super) claim_key: PreparedStatement,
    pub(super) repoint_key: PreparedStatement,
    pub(super) ping: PreparedStatement,
}

/// The DDL of the keyspace and its tables.
fn ddl(settings: &CassandraSettings) -> [String; 4] {
    let ks = &settings.keyspace;
    [
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
    ]
}

/// Creates the keyspace and tables if missing, and waits for the cluster to agree on them.
pub(super) async fn create(
    session: &Session,
    settings: &CassandraSettings,
) -> Result<(), StoreError> {
    let schema_error = |e: &dyn std::fmt::Display| StoreError::Schema {
        keyspace: settings.keyspace.clone(),
        message: e.to_string(),
    };
    for statement in ddl(settings) {
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

/// Prepares every statement of keyspace `ks`.
pub(super) async fn prepare(session: &Session, ks: &str) -> Result<Statements, StoreError> {
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
