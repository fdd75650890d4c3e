//! [`OutboxStore`] on Cassandra: the `outbox_pending` and `outbox_floor` tables, and the SERIAL
//! reads the relay makes before it drops a row.

use api::{EventId, EventType, GameId, RegionName, UserId};
use async_trait::async_trait;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::CqlTimestamp;
use scylla::{DeserializeRow, SerializeRow};
use uuid::Uuid;

use super::pending::{EXPIRY_SUFFIX, OutboxStore, PendingEvent};
use super::rows::GameRow;
use super::traced::Kind;
use super::{Store, StoreError, query_error};
use crate::domain::Game;

/// One `outbox_pending` row; bound and read by column name.
#[derive(Debug, Clone, DeserializeRow, SerializeRow)]
struct PendingRow {
    region: String,
    shard: i32,
    queued_at: CqlTimestamp,
    event_id: Uuid,
    game_id: Uuid,
    kind: String,
    user_id: String,
}

impl From<&PendingEvent> for PendingRow {
    fn from(event: &PendingEvent) -> PendingRow {
        PendingRow {
            region: event.region.as_str().to_owned(),
            shard: event.shard,
            queued_at: CqlTimestamp(event.queued_at_ms),
            event_id: event.event_id.uuid(),
            game_id: event.game_id.uuid(),
            kind: event.kind_column(),
            user_id: event.user_id.as_str().to_owned(),
        }
    }
}

/// A pending row with the TTL it is written with (`USING TTL ?`, see [`crate::retention`]).
#[derive(Debug, Clone, SerializeRow)]
struct PendingRowTtl {
    #[scylla(flatten)]
    row: PendingRow,
    #[scylla(rename = "[ttl]")]
    ttl: i32,
}

impl TryFrom<PendingRow> for PendingEvent {
    type Error = StoreError;

    fn try_from(row: PendingRow) -> Result<PendingEvent, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("outbox row {}: {what}", row.event_id));
        let game_id = GameId::from(row.game_id);
        let (kind, expiry) = match row.kind.strip_suffix(EXPIRY_SUFFIX) {
            Some(kind) => (kind, true),
            None => (row.kind.as_str(), false),
        };
        let kind = EventType::parse(kind)
            .filter(|k| !expiry || *k == EventType::Ended)
            .ok_or_else(|| corrupt("unknown kind"))?;
        let event_id = EventId::parse(&row.event_id.hyphenated().to_string())
            .map_err(|_| corrupt("bad event id"))?;
        let user_id = UserId::parse(&row.user_id).map_err(|_| corrupt("bad user id"))?;
        if !PendingEvent::valid_id(event_id, game_id, kind, &user_id) {
            return Err(corrupt("event id is not the game's"));
        }
        Ok(PendingEvent {
            region: RegionName::parse(&row.region).map_err(|_| corrupt("bad region"))?,
            shard: row.shard,
            queued_at_ms: row.queued_at.0,
            event_id,
            game_id,
            kind,
            user_id,
            expiry,
        })
    }
}

/// The LIMIT bound of a page (CQL's `int`).
fn limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[async_trait]
impl OutboxStore for Store {
    async fn queue(&self, event: &PendingEvent, ttl_seconds: i32) -> Result<(), StoreError> {
        let row = PendingRowTtl {
            row: PendingRow::from(event),
            ttl: ttl_seconds.max(1),
        };
        self.run(
            "outbox_insert",
            Kind::Plain,
            &self.statements.outbox.insert,
            row,
        )
        .await
        .map_err(|e| query_error("queue game event")(&e))?;
        Ok(())
    }

    async fn pending_page(
        &self,
        region: &RegionName,
        shard: i32,
        since_ms: i64,
        after: Option<(i64, EventId)>,
        limit_rows: usize,
    ) -> Result<Vec<PendingEvent>, StoreError> {
        let operation = "read outbox";
        // Rows queued for later (a game's expiry row, due at its expiry) stay unread until due.
        let until = CqlTimestamp(kernel::clock::now_ms());
        let result = match after {
            None => {
                self.run(
                    "outbox_select_since",
                    Kind::Plain,
                    &self.statements.outbox.select_since,
                    (
                        region.as_str(),
                        shard,
                        CqlTimestamp(since_ms),
                        until,
                        limit(limit_rows),
                    ),
                )
                .await
            }
            Some((queued_at, id)) => {
                self.run(
                    "outbox_select_after",
                    Kind::Plain,
                    &self.statements.outbox.select_after,
                    (
                        region.as_str(),
                        shard,
                        CqlTimestamp(queued_at),
                        id.uuid(),
                        until,
                        limit(limit_rows),
                    ),
                )
                .await
            }
        }
        .map_err(|e| query_error(operation)(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let mut events = Vec::new();
        for row in rows
            .rows::<PendingRow>()
            .map_err(|e| query_error(operation)(&e))?
        {
            let row = row.map_err(|e| query_error(operation)(&e))?;
            match PendingEvent::try_from(row) {
                Ok(event) => events.push(event),
                // A row this service did not write must not stop every other event.
                Err(error) => tracing::error!(%error, "skipping a corrupt outbox row"),
            }
        }
        Ok(events)
    }

    async fn remove(&self, events: &[PendingEvent]) -> Result<(), StoreError> {
        // Rows of one partition: an unlogged batch is one mutation of that partition.
        for chunk in events.chunks(100) {
            let mut batch = Batch::new(BatchType::Unlogged);
            for _ in chunk {
                batch.append_statement(self.statements.outbox.delete.clone());
            }
            batch.set_is_idempotent(true);
            let values: Vec<_> = chunk
                .iter()
                .map(|e| {
                    (
                        e.region.as_str(),
                        e.shard,
                        CqlTimestamp(e.queued_at_ms),
                        e.event_id.uuid(),
                    )
                })
                .collect();
            self.observe(
                "outbox_delete_batch",
                Kind::Plain,
                self.defaults.consistency,
                self.session.batch(&batch, values),
            )
            .await
            .map_err(|e| query_error("clear outbox")(&e))?;
        }
        Ok(())
    }

    async fn floors(&self, region: &RegionName) -> Result<Vec<(i32, i64)>, StoreError> {
        let operation = "read outbox floors";
        let result = self
            .run(
                "outbox_select_floors",
                Kind::Plain,
                &self.statements.outbox.select_floors,
                (region.as_str(),),
            )
            .await
            .map_err(|e| query_error(operation)(&e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| query_error(operation)(&e))?;
        let mut floors = Vec::new();
        for row in rows
            .rows::<(i32, Option<CqlTimestamp>)>()
            .map_err(|e| query_error(operation)(&e))?
        {
            let (shard, floor) = row.map_err(|e| query_error(operation)(&e))?;
            if let Some(floor) = floor {
                floors.push((shard, floor.0));
            }
        }
        Ok(floors)
    }

    async fn save_floor(
        &self,
        region: &RegionName,
        shard: i32,
        floor_ms: i64,
    ) -> Result<(), StoreError> {
        self.run(
            "outbox_save_floor",
            Kind::Plain,
            &self.statements.outbox.save_floor,
            (CqlTimestamp(floor_ms), region.as_str(), shard),
        )
        .await
        .map_err(|e| query_error("save outbox floor")(&e))?;
        Ok(())
    }

    async fn game_serial(&self, id: GameId) -> Result<Option<Game>, StoreError> {
        let operation = "read game (SERIAL)";
        let row: Option<GameRow> = self
            .first_row(
                "outbox_select_game_serial",
                Kind::Plain,
                &self.statements.outbox.select_game_serial,
                (id.uuid(),),
                operation,
            )
            .await?;
        row.map(Game::try_from).transpose()
    }

    async fn active_game_id_serial(&self, user: &UserId) -> Result<Option<GameId>, StoreError> {
        let operation = "read active game (SERIAL)";
        let row: Option<(Uuid,)> = self
            .first_row(
                "outbox_select_active_serial",
                Kind::Plain,
                &self.statements.outbox.select_active_serial,
                (user.as_str(),),
                operation,
            )
            .await?;
        Ok(row.map(|(id,)| GameId::from(id)))
    }
}
