//! The keyspace and tables (created if missing) and every statement, prepared once.

use std::time::Duration;

use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;

use super::CassandraSettings;
use super::rows::GAME_COLUMNS;
use super::{IDEMPOTENCY_TTL_SECONDS, StoreError};

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
    pub(super) outbox: OutboxStatements,
}

/// The statements of the event outbox (see [`crate::outbox`]).
pub(super) struct OutboxStatements {
    pub(super) insert: PreparedStatement,
    pub(super) select_since: PreparedStatement,
    pub(super) select_after: PreparedStatement,
    pub(super) delete: PreparedStatement,
    pub(super) select_floors: PreparedStatement,
    pub(super) save_floor: PreparedStatement,
    pub(super) select_game_serial: PreparedStatement,
    pub(super) select_active_serial: PreparedStatement,
}

/// The columns of `outbox_pending`, in the order of the prepared statements.
pub(super) const OUTBOX_COLUMNS: &str =
    "region, shard, queued_at, event_id, game_id, kind, user_id";

/// How long a deleted outbox row's tombstone is kept. Shorter than the 10-day default: a
/// deleted row that a replica missed and that comes back after this only makes the relay
/// publish its event again, which the broker and consumers dedupe by event id.
const OUTBOX_GC_GRACE_SECONDS: u32 = 3 * 60 * 60;

/// The DDL of the keyspace and its tables.
fn ddl(settings: &CassandraSettings) -> [String; 6] {
    let ks = &settings.keyspace;
    [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {}",
            settings.replication.cql()
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.games (game_id uuid PRIMARY KEY, user_id text, region text, \
             seed bigint, start_at timestamp, tick_ms int, break_every int, algorithm text, status text, \
             created_at timestamp, exited_at timestamp, metadata text, owner_key text)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.active_game_by_user (user_id text PRIMARY KEY, game_id uuid)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.game_by_idempotency_key (idempotency_key text PRIMARY KEY, \
             game_id uuid, user_id text) WITH default_time_to_live = {IDEMPOTENCY_TTL_SECONDS}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.outbox_pending (region text, shard int, queued_at timestamp, \
             event_id uuid, game_id uuid, kind text, user_id text, \
             PRIMARY KEY ((region, shard), queued_at, event_id)) \
             WITH gc_grace_seconds = {OUTBOX_GC_GRACE_SECONDS}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.outbox_floor (region text, shard int, floor timestamp, \
             PRIMARY KEY ((region), shard))"
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
    add_missing_columns(session, &settings.keyspace, &ADDED_COLUMNS)
        .await
        .map_err(|e| schema_error(&e))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| schema_error(&e))?;
    Ok(())
}

/// Columns added after the first release, as `(table, column, type)`. `CREATE TABLE IF NOT
/// EXISTS` leaves an existing table as it was, so a keyspace made by an older origin gets
/// them here.
const ADDED_COLUMNS: [(&str, &str, &str); 1] = [("games", "owner_key", "text")];

/// Adds `columns` (such as [`ADDED_COLUMNS`]) where missing. Origins starting together may
/// race: a failed `ALTER` is retried after checking again whether another origin added the
/// column meanwhile.
pub(crate) async fn add_missing_columns(
    session: &Session,
    ks: &str,
    columns: &[(&str, &str, &str)],
) -> Result<(), String> {
    for &(table, column, kind) in columns {
        let mut attempt = 0u64;
        loop {
            let rows = session
                .query_unpaged(
                    "SELECT column_name FROM system_schema.columns \
                     WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
                    (ks, table, column),
                )
                .await
                .map_err(|e| e.to_string())?
                .into_rows_result()
                .map_err(|e| e.to_string())?;
            if rows.rows_num() > 0 {
                break;
            }
            match session
                .query_unpaged(format!("ALTER TABLE {ks}.{table} ADD {column} {kind}"), ())
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(error = %e, table, column, attempt, "adding a column failed; checking again");
                    session
                        .await_schema_agreement()
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(300 * attempt)).await;
                }
                Err(e) => return Err(format!("ALTER TABLE {table} ADD {column}: {e}")),
            }
        }
    }
    Ok(())
}

/// Prepares every statement of keyspace `ks`; `serial` is the consistency of SERIAL reads.
pub(super) async fn prepare(
    session: &Session,
    ks: &str,
    serial: Consistency,
) -> Result<Statements, StoreError> {
    let prepare = |cql: String| async move {
        session
            .prepare(cql.clone())
            .await
            .map_err(|e| StoreError::Query {
                operation: "prepare",
                message: format!("{e} in `{cql}`"),
            })
    };
    let placeholders = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";
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
    let outbox = prepare_outbox(session, ks, serial).await?;
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
            "INSERT INTO {ks}.active_game_by_user (user_id, game_id) VALUES (?, ?) IF NOT EXISTS USING TTL ?"
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
        outbox,
    })
}

async fn prepare_outbox(
    session: &Session,
    ks: &str,
    serial: Consistency,
) -> Result<OutboxStatements, StoreError> {
    // Every outbox statement is idempotent (plain writes of deterministic keys, reads).
    let prepare = |cql: String| async move {
        let mut statement = session
            .prepare(cql.clone())
            .await
            .map_err(|e| StoreError::Query {
                operation: "prepare",
                message: format!("{e} in `{cql}`"),
            })?;
        statement.set_is_idempotent(true);
        Ok::<_, StoreError>(statement)
    };
    let mut select_game_serial = prepare(format!(
        "SELECT {GAME_COLUMNS} FROM {ks}.games WHERE game_id = ?"
    ))
    .await?;
    select_game_serial.set_consistency(serial);
    let mut select_active_serial = prepare(format!(
        "SELECT game_id FROM {ks}.active_game_by_user WHERE user_id = ?"
    ))
    .await?;
    select_active_serial.set_consistency(serial);
    Ok(OutboxStatements {
        insert: prepare(format!(
            "INSERT INTO {ks}.outbox_pending ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .await?,
        select_since: prepare(format!(
            "SELECT {OUTBOX_COLUMNS} FROM {ks}.outbox_pending WHERE region = ? AND shard = ? \
             AND queued_at >= ? LIMIT ?"
        ))
        .await?,
        select_after: prepare(format!(
            "SELECT {OUTBOX_COLUMNS} FROM {ks}.outbox_pending WHERE region = ? AND shard = ? \
             AND (queued_at, event_id) > (?, ?) LIMIT ?"
        ))
        .await?,
        delete: prepare(format!(
            "DELETE FROM {ks}.outbox_pending WHERE region = ? AND shard = ? AND queued_at = ? \
             AND event_id = ?"
        ))
        .await?,
        select_floors: prepare(format!(
            "SELECT shard, floor FROM {ks}.outbox_floor WHERE region = ?"
        ))
        .await?,
        save_floor: prepare(format!(
            "UPDATE {ks}.outbox_floor SET floor = ? WHERE region = ? AND shard = ?"
        ))
        .await?,
        select_game_serial,
        select_active_serial,
    })
}
