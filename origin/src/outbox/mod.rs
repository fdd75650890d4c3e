//! The transactional outbox of game events: every event (`game.started`, `game.joined`,
//! `game.exited`, `game.ended` with its `game.break`s, see [`api::events`]) is durable in
//! Cassandra together with the game, and a relay publishes it to NATS JetStream later. One row
//! may stand for several events (a one-player game's exit is also its end; an end brings its
//! breaks): they are published together, and the row goes once all are on the broker.
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
//! - `game.exited` of a one-player game is published once the game row says `exited`, with
//!   its first exit time, together with its `game.ended` and `game.break`s;
//! - `game.joined` once the user holds a seat of the game; a seat's `game.exited` once that
//!   seat has its result; a shared game's `game.ended` (with its breaks) once the game row
//!   says `exited`. Seats are read at the default consistency: a row whose seat is still not
//!   there after the grace is dropped (a join that gave its seat back, or died before it);
//! - a game's end at its maximum age: every start also queues an *expiry row*, due at the
//!   game's expiry (its `queued_at` is the expiry, and scans read no row before it is due). Once
//!   due (and the grace past, so that every exit judged before the expiry has committed), the
//!   relay that reads it ends the game itself if nobody did (the same LWT an exit makes, at the
//!   expiry) and publishes its `game.ended` (`reason: "maxAge"`, the seats that never exited)
//!   with its `game.break`s. A game that ended by its exits before drops the row; an end at the
//!   expiry is published only from the expiry row (rows of exits then drop theirs), so each
//!   game has one `game.ended`, whichever relays race for it;
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
mod settings;

use std::sync::{Arc, Mutex};

use api::{GameEvent, GameId, RegionName, UserId};
use tokio::sync::mpsc;

use crate::domain::Game;
use crate::store::StoreError;

pub use crate::store::{OutboxStore, PendingEvent, SHARDS, shard_of};
pub use relay::{Relay, RelayHandle, RelaySettings};
pub use settings::EventSettings;

/// An event this origin's request path committed, handed to its relay with its outbox row:
/// the relay publishes it without reading the game back (the fast path). Rows that never get
/// here (a crash, another process, a full channel) are found by the relay's scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The outbox row to delete once published.
    pub row: PendingEvent,
    /// Its events (one, or an end with its breaks), built from the state the request
    /// committed; published together, the row deleted once all are on the broker.
    pub events: Vec<GameEvent>,
    /// The span that committed it (exported spans only): the relay's publication links to it.
    pub trace: Option<opentelemetry::trace::SpanContext>,
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

    /// Queues the start of `game` (the row expires after `ttl_seconds`, with the game); must
    /// be acknowledged before its claim.
    pub async fn queue_started(
        &self,
        game: &Game,
        ttl_seconds: i32,
    ) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::started(&self.region, game, kernel::clock::now_ms());
        self.store.queue(&row, ttl_seconds).await?;
        Ok(row)
    }

    /// Queues the end of `game` at its maximum age, due at `expires_at_ms` (the row expires
    /// after `ttl_seconds`, with the game); must be acknowledged before the start's claim, like
    /// the start's row, so that every committed game ends in the stream.
    pub async fn queue_expiry(
        &self,
        game: &Game,
        expires_at_ms: i64,
        ttl_seconds: i32,
    ) -> Result<(), StoreError> {
        let row = PendingEvent::expiry(&game.region, game, expires_at_ms);
        self.store.queue(&row, ttl_seconds).await
    }

    /// Deletes the expiry row of `game` (due at `expires_at_ms`), which ended by its exits:
    /// it would otherwise outlive the game's retention, until the relay dropped it at the
    /// expiry. Any origin can, since the row's key follows from the game.
    pub async fn forget_expiry(&self, game: &Game, expires_at_ms: i64) -> Result<(), StoreError> {
        let row = PendingEvent::expiry(&game.region, game, expires_at_ms);
        self.store.remove(std::slice::from_ref(&row)).await
    }

    /// Queues the exit of `game_id` (the row expires after `ttl_seconds`); must be
    /// acknowledged before the exit's LWT.
    pub async fn queue_exited(
        &self,
        game_id: GameId,
        user: &UserId,
        ttl_seconds: i32,
    ) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::exited(&self.region, game_id, user, kernel::clock::now_ms());
        self.store.queue(&row, ttl_seconds).await?;
        Ok(row)
    }

    /// Queues `user`'s join of shared game `game_id`; must be acknowledged before the seat's
    /// claim.
    pub async fn queue_joined(
        &self,
        game_id: GameId,
        user: &UserId,
        ttl_seconds: i32,
    ) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::joined(&self.region, game_id, user, kernel::clock::now_ms());
        self.store.queue(&row, ttl_seconds).await?;
        Ok(row)
    }

    /// Queues `user`'s exit from `seat` of shared game `game_id`; must be acknowledged before
    /// the seat's exit LWT.
    pub async fn queue_seat_exited(
        &self,
        game_id: GameId,
        seat: u32,
        user: &UserId,
        ttl_seconds: i32,
    ) -> Result<PendingEvent, StoreError> {
        let row =
            PendingEvent::seat_exited(&self.region, game_id, seat, user, kernel::clock::now_ms());
        self.store.queue(&row, ttl_seconds).await?;
        Ok(row)
    }

    /// Queues the end of shared game `game_id` (its `game.ended` and `game.break`s); must be
    /// acknowledged before the game's exit LWT.
    pub async fn queue_ended(
        &self,
        game_id: GameId,
        creator: &UserId,
        ttl_seconds: i32,
    ) -> Result<PendingEvent, StoreError> {
        let row = PendingEvent::ended(&self.region, game_id, creator, kernel::clock::now_ms());
        self.store.queue(&row, ttl_seconds).await?;
        Ok(row)
    }

    /// Hands the events a row's commit produced to the relay (never waits: a full channel
    /// drops the hint, and the relay's scan publishes the row instead).
    pub fn committed(&self, row: PendingEvent, events: Vec<GameEvent>) {
        let trace = crate::telemetry::current_span_context();
        let _ = self.hints.try_send(Committed { row, events, trace });
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
