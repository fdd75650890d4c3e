//! Every statement of the store, prepared once at start-up (the tables they use come from the
//! versioned migrations, [`super::migrate`]).

use scylla::client::session::Session;
use scylla::frame::types::Consistency;
use scylla::statement::prepared::PreparedStatement;

use super::StoreError;
use super::rows::{GAME_COLUMNS, SEAT_COLUMNS};

/// Every statement the store runs.
pub(super) struct Statements {
    pub(super) insert_game: PreparedStatement,
    pub(super) insert_game_if_absent: PreparedStatement,
    pub(super) select_game: PreparedStatement,
    pub(super) delete_game: PreparedStatement,
    /// The exit's condition; runs in one conditional batch with `rewrite_game`.
    pub(super) exit_game: PreparedStatement,
    /// The whole row again (row marker included) with the finished TTL.
    pub(super) rewrite_game: PreparedStatement,
    pub(super) claim_active: PreparedStatement,
    pub(super) release_active: PreparedStatement,
    pub(super) select_active: PreparedStatement,
    pub(super) claim_key: PreparedStatement,
    pub(super) repoint_key: PreparedStatement,
    pub(super) ping: PreparedStatement,
    pub(super) insert_seat: PreparedStatement,
    pub(super) claim_seat: PreparedStatement,
    pub(super) select_seats: PreparedStatement,
    pub(super) exit_seat: PreparedStatement,
    pub(super) delete_seat: PreparedStatement,
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
    // One `?` per column of GAME_COLUMNS.
    let placeholders = vec!["?"; GAME_COLUMNS.split(',').count()].join(", ");
    let seat_placeholders = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";
    // Seat 0 is written once with values derived from its game: a repeat writes the same.
    let mut insert_seat = prepare(format!(
        "INSERT INTO {ks}.game_seats ({SEAT_COLUMNS}) VALUES ({seat_placeholders})"
    ))
    .await?;
    insert_seat.set_is_idempotent(true);
    let mut select_seats = prepare(format!(
        "SELECT {SEAT_COLUMNS} FROM {ks}.game_seats WHERE game_id = ? AND seat IN ?"
    ))
    .await?;
    select_seats.set_is_idempotent(true);
    let mut insert_game = prepare(format!(
        "INSERT INTO {ks}.games ({GAME_COLUMNS}) VALUES ({placeholders}) USING TTL ?"
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
            "INSERT INTO {ks}.games ({GAME_COLUMNS}) VALUES ({placeholders}) IF NOT EXISTS \
             USING TTL ?"
        ))
        .await?,
        select_game,
        delete_game: prepare(format!("DELETE FROM {ks}.games WHERE game_id = ?")).await?,
        exit_game: prepare(format!(
            "UPDATE {ks}.games USING TTL ? SET status = 'exited', exited_at = ? WHERE game_id = ? \
             IF status = 'active'"
        ))
        .await?,
        rewrite_game: prepare(format!(
            "INSERT INTO {ks}.games ({GAME_COLUMNS}) VALUES ({placeholders}) USING TTL ?"
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
             IF NOT EXISTS USING TTL ?"
        ))
        .await?,
        repoint_key: prepare(format!(
            "UPDATE {ks}.game_by_idempotency_key USING TTL ? SET game_id = ? WHERE idempotency_key = ? \
             IF user_id = ?"
        ))
        .await?,
        ping,
        insert_seat,
        claim_seat: prepare(format!(
            "INSERT INTO {ks}.game_seats ({SEAT_COLUMNS}) VALUES ({seat_placeholders}) IF NOT EXISTS"
        ))
        .await?,
        select_seats,
        exit_seat: prepare(format!(
            "UPDATE {ks}.game_seats SET exited_at = ?, final_step = ?, final_value = ?, \
             final_round = ?, final_broken = ?, break_first = ? WHERE game_id = ? AND seat = ? \
             IF exited_at = null AND user_id = ?"
        ))
        .await?,
        delete_seat: prepare(format!(
            "DELETE FROM {ks}.game_seats WHERE game_id = ? AND seat = ? IF user_id = ?"
        ))
        .await?,
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
            "INSERT INTO {ks}.outbox_pending ({OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
             USING TTL ?"
        ))
        .await?,
        select_since: prepare(format!(
            "SELECT {OUTBOX_COLUMNS} FROM {ks}.outbox_pending WHERE region = ? AND shard = ? \
             AND queued_at >= ? AND queued_at <= ? LIMIT ?"
        ))
        .await?,
        select_after: prepare(format!(
            "SELECT {OUTBOX_COLUMNS} FROM {ks}.outbox_pending WHERE region = ? AND shard = ? \
             AND (queued_at, event_id) > (?, ?) AND (queued_at) <= (?) LIMIT ?"
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
