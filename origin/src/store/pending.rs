//! The rows of the event outbox (`outbox_pending`) and what the outbox needs from storage.
//!
//! They live with the store, below the outbox: the store implements [`OutboxStore`] on
//! Cassandra (and the in-memory store for tests), and [`crate::outbox`] (the request path's
//! queue and the relay) builds on both without the store looking back up at it.

use api::{EventId, EventType, GameId, RegionName, UserId};
use async_trait::async_trait;

use super::StoreError;
use crate::domain::Game;

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
    /// Start, join, exit or end (the row's first event; a row may publish several, see
    /// [`crate::outbox::relay`]).
    pub kind: EventType,
    /// The player (a start's commit is checked on the user's active slot; a join's and a
    /// seat's exit on the user's seat); the creator for an end.
    pub user_id: UserId,
    /// The row of a game's end at its maximum age ([`PendingEvent::expiry`]): queued with the
    /// start, due at the expiry (`queued_at_ms`).
    pub expiry: bool,
}

/// The `kind` column of an expiry row: its event's type with this suffix, so that a row of an
/// end by exits and a row of an end at the maximum age are told apart.
pub(super) const EXPIRY_SUFFIX: &str = "@maxAge";

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

    /// The pending row of `user`'s join of shared game `game_id` (its `game.joined`).
    pub fn joined(
        region: &RegionName,
        game_id: GameId,
        user: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        let id = EventId::of_player(game_id, EventType::Joined, user);
        PendingEvent::with_id(region, game_id, EventType::Joined, user, now_ms, id)
    }

    /// The pending row of `user`'s exit from `seat` of shared game `game_id` (seat 0's has
    /// the one-player exit's id, see [`api::events`]).
    pub fn seat_exited(
        region: &RegionName,
        game_id: GameId,
        seat: u32,
        user: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        let id = if seat == 0 {
            EventId::of(game_id, EventType::Exited)
        } else {
            EventId::of_player(game_id, EventType::Exited, user)
        };
        PendingEvent::with_id(region, game_id, EventType::Exited, user, now_ms, id)
    }

    /// The pending row of the end of shared game `game_id` (created by `creator`): its
    /// `game.ended` and `game.break` events.
    pub fn ended(
        region: &RegionName,
        game_id: GameId,
        creator: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        PendingEvent::new(region, game_id, EventType::Ended, creator, now_ms)
    }

    /// The row of `game`'s end at its maximum age, due at `expires_at_ms`: queued with the
    /// start (so every committed game has it), it ends the game then if nobody did before (see
    /// [`crate::outbox::relay`]). Its key is the game's alone, so queuing it again (a retried
    /// start) writes the same row.
    pub fn expiry(region: &RegionName, game: &Game, expires_at_ms: i64) -> PendingEvent {
        PendingEvent {
            expiry: true,
            ..PendingEvent::new(
                region,
                game.id,
                EventType::Ended,
                &game.user_id,
                expires_at_ms,
            )
        }
    }

    /// The `kind` column of this row.
    pub fn kind_column(&self) -> String {
        if self.expiry {
            format!("{}{EXPIRY_SUFFIX}", self.kind)
        } else {
            self.kind.as_str().to_owned()
        }
    }

    /// Whether `id` is one a row of `kind` for `user` in `game` can carry.
    pub fn valid_id(id: EventId, game: GameId, kind: EventType, user: &UserId) -> bool {
        match kind {
            EventType::Started | EventType::Ended => id == EventId::of(game, kind),
            EventType::Joined => id == EventId::of_player(game, kind, user),
            EventType::Exited => {
                id == EventId::of(game, kind) || id == EventId::of_player(game, kind, user)
            }
            EventType::Break => false,
        }
    }

    fn new(
        region: &RegionName,
        game_id: GameId,
        kind: EventType,
        user: &UserId,
        now_ms: i64,
    ) -> PendingEvent {
        let event_id = EventId::of(game_id, kind);
        PendingEvent::with_id(region, game_id, kind, user, now_ms, event_id)
    }

    fn with_id(
        region: &RegionName,
        game_id: GameId,
        kind: EventType,
        user: &UserId,
        now_ms: i64,
        event_id: EventId,
    ) -> PendingEvent {
        PendingEvent {
            region: region.clone(),
            shard: shard_of(event_id),
            queued_at_ms: now_ms,
            event_id,
            game_id,
            kind,
            user_id: user.clone(),
            expiry: false,
        }
    }
}

/// What the outbox needs from storage, beyond [`GameStore`](super::GameStore)'s reads.
#[async_trait]
pub trait OutboxStore: Send + Sync + std::fmt::Debug {
    /// Writes a pending row (a plain, idempotent insert) that expires after `ttl_seconds`
    /// with its game (see [`crate::retention`]).
    async fn queue(&self, event: &PendingEvent, ttl_seconds: i32) -> Result<(), StoreError>;

    /// Up to `limit` pending rows of one partition, oldest first: those queued at or after
    /// `since_ms`, or, for the next page, those after the row `after` (its queue time and id);
    /// never a row queued for later than now (an expiry row before its game's expiry).
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
