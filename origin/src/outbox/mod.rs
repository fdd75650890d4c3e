//! The transactional outbox of game events: every `game.started` and `game.exited` is durable
//! in Cassandra together with the game, and a relay publishes it to NATS JetStream later.
//!
//! Why an outbox: a start must never fail or slow down because the broker is down, and no
//! event may be lost. So the request path only writes Cassandra, and publishing happens off
//! the request path, retried until the broker acknowledges.
//!
//! Why "pending row first": game writes are LWTs (Paxos), which cannot share a logged batch
//! with other partitions. Instead, a row in `outbox_pending` is written *before* the write that
//! commits the event (a start's claim of the user's active slot; an exit's LWT). So whenever
//! an event is committed, its pending row exists. The converse does not hold: a start that
//! lost the one-active-game race, or a request that died between the two writes, leaves a
//! pending row for something that never happened. The relay therefore builds every event from
//! the committed game state, never from the request ([`relay`]):
//!
//! - `game.started` is published once the game is committed: the user's active slot holds it,
//!   or it has exited since (exits happen only to committed games);
//! - `game.exited` is published once the game row says `exited`, with its first exit time;
//! - a row whose event is not committed after [`relay::RelaySettings::grace`] (longer than any
//!   request can run) is read again at SERIAL consistency, which completes any LWT still in
//!   flight, and dropped only if the event still did not happen.
//!
//! Event ids are deterministic ([`api::EventId::of`]), so any number of relays, retries and
//! crash restarts publish the same id: JetStream drops repeats within its duplicate window and
//! consumers dedupe the rest (at-least-once delivery, exactly-once effect).
//!
//! Table `outbox_pending`, partition `(region, shard)` (the region of the origin that wrote it,
//! so each region's relay reads only its own rows; [`SHARDS`] partitions spread the writes),
//! clustered by `(queued_at, event_id)`. Published rows are deleted. The relay scans each
//! partition from a floor that trails the oldest row still pending, so it never reads back
//! through the tombstones of what it already published; floors are kept in `outbox_floor`.

pub mod relay;

use std::sync::{Arc, Mutex};

use api::{EventId, EventType, GameEvent, GameId, RegionName, UserId};
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::Game;
use crate::store::StoreError;

pub use relay::{Relay, RelayHandle, RelaySettings};

/// Partitions per region of `outbox_pending`.
pub const SHARDS: i32 = 8;

/// One row of `outbox_pending`: an event that may have to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    /// The region of the origin that queued it (its relay publishes it).
    pub region: RegionName,
    /// Its partition within the region ([`shard_of`] its id).
    pub shard: i32,
    /// When it was queued (Unix ms, the queuing origin's clock).
    pub queued_at_ms: i64,
    /// The event's id.
    pub event_id: EventId,
    /// The game.
    pub game_id: GameId,
    /// Start or exit.
    pub kind: EventType,
    /// The player (a start's commit is checked on the user's active slot).
    pub user_id: UserId,
}

/// The partition of an event id: a stable hash, the same on every origin.
pub fn shard_of(id: EventId) -> i32 {
    let bytes = id.uuid().into_bytes();
    let folded = bytes
        .iter()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b)));
    // SHARDS is a small positive constant: the remainder fits.
    (folded % SHARDS.unsigned_abs()) as i32
}

impl PendingEvent {
    /// The pending row of `game`'s start, queued by an origin of `region` at `now_ms`.
    pub fn started(region: &RegionName, game: &Game, now_ms: i64) -> PendingEvent {
        PendingEvent::new(region, game.id, EventType::Started, &game.user_id, now_ms)
    }

    /// The pending row of the exit of `game_id` (played by `user`).
    pub fn exited(
        region: &RegionName,
        game_id: GameId,
        user: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        PendingEvent::new(region, game_id, EventType::Exited, user, now_ms)
    }

    fn new(
        region: &RegionName,
        game_id: GameId,
        kind: EventType,
        user: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        let event_id = EventId::of(game_id, kind);
        PendingEvent {
            region: region.clone(),
            shard: shard_of(event_id),
            queued_at_ms: now_ms,
            event_id,
            game_id,
            kind,
            user_id: user.clone(),
        }
    }
}

/// What the outbox needs from storage, beyond [`crate::store::GameStore`]'s reads.
#[async_trait]
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Writes a pending row (a plain, idempotent insert).
    async fn queue(&self, event: &PendingEvent) -> Result<(), StoreError>;

    /// Up to `limit` pending rows of one partition, oldest first: those queued at or after
    /// `since_ms`, or, for the next page, those after the row `after` (its queue time and id).
    async fn pending_page(
        &self,
        region: &RegionName,
        shard: i32,
        since_ms: i64,
        after: Option<(i64, EventId)>,
        limit: usize,
    ) -> Result<Vec<PendingEvent>, StoreError>;

    /// Deletes published (or dropped) rows, all of one partition.
    async fn remove(&self, events: &[PendingEvent]) -> Result<(), StoreError>;

    /// The scan floors of a region's partitions, as last saved.
    async fn floors(&self, region: &RegionName) -> Result<Vec<(i32, i64)>, StoreError>;

    /// Saves the scan floor of one partition.
    async fn save_floor(
        &self,
        region: &RegionName,
        shard: i32,
        floor_ms: i64,
    ) -> Result<(), StoreError>;

    /// Reads a game at SERIAL consistency: completes any LWT on it still in flight first.
    async fn game_serial(&self, id: GameId) -> Result<Option<Game>, StoreError>;

    /// Reads the user's active slot at SERIAL consistency.
    async fn active_game_id_serial(&self, user: &UserId) -> Result<Option<GameId>, StoreError>;
}

/// An event this origin's request path committed, handed to its relay with its outbox row:
/// the relay publishes it without reading the game back (the fast path). Rows that never get
/// here (a crash, another process, a full channel) are found by the relay's scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The outbox row to delete once published.
    pub row: PendingEvent,
    /// The event, built from the state the request committed.
    pub event: GameEvent,
}

/// Committed events waiting for the relay; beyond this, hints are dropped (the scan remains).
const HINTS: usize = 16_384;

/// The request path's side of the outbox: queues pending rows and hands committed events to
/// the relay.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Arc<dyn OutboxStore>,
    region: RegionName,
    hints: mpsc::Sender<Committed>,
    receiver: Arc<Mutex<Option<mpsc::Receiver<Committed>>>>,
}

impl Outbox {
    /// The outbox of origins of `region` on `store`.
    pub fn new(store: Arc<dyn OutboxStore>, region: RegionName) -> Outbox {
        let (hints, receiver) = mpsc::channel(HINTS);
        Outbox {
            store,
            region,
            hints,
            receiver: Arc::new(Mutex::new(Some(receiver))),
        }
    }

    /// Queues the start of `game`; must be acknowledged before its claim.
    pub async fn queue_started(&self, game: &Game) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::started(&self.region, game, kernel::clock::now_ms());
        self.store.queue(&row).await?;
        Ok(row)
    }

    /// Queues the exit of `game_id`; must be acknowledged before the exit's LWT.
    pub async fn queue_exited(
        &self,
        game_id: GameId,
        user: &UserId,
    ) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::exited(&self.region, game_id, user, kernel::clock::now_ms());
        self.store.queue(&row).await?;
        Ok(row)
    }

    /// Hands a committed event to the relay (never waits: a full channel drops the hint, and
    /// the relay's scan publishes the row instead).
    pub fn committed(&self, row: PendingEvent, event: GameEvent) {
        let _ = self.hints.try_send(Committed { row, event });
    }

    /// The receiving end of the hints, for the one relay of this outbox.
    pub(crate) fn take_hints(&self) -> Option<mpsc::Receiver<Committed>> {
        self.receiver.lock().ok().and_then(|mut r| r.take())
    }

    /// The storage behind it.
    pub fn store(&self) -> &Arc<dyn OutboxStore> {
        &self.store
    }

    /// The region whose rows it queues.
    pub fn region(&self) -> &RegionName {
        &self.region
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let mut counts = [0u32; SHARDS as usize];
        for n in 0..4_000u32 {
            let game = GameId::from(uuid::Uuid::from_u128(u128::from(n) * 0x9e37_79b9_7f4a_7c15));
            let shard = shard_of(EventId::of(game, EventType::Started));
            assert!((0..SHARDS).contains(&shard));
            counts[shard as usize] += 1;
        }
        // Roughly even: each within 30 % of 500.
        assert!(
            counts.iter().all(|&c| (350..=650).contains(&c)),
            "{counts:?}"
        );
        let id = EventId::parse("3e024453-c383-5396-993b-07853ae10b8e").unwrap();
        assert_eq!(shard_of(id), shard_of(id));
    }
}
