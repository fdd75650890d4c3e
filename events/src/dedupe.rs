//! Consumer-side dedupe by event id, in bounded memory.
//!
//! JetStream drops re-publications within its duplicate window; a consumer still has to expect
//! the same event twice (a relay retrying after a longer outage, two consumers' outputs merged,
//! a replay from an earlier position). Event ids are deterministic per game and type, so
//! remembering the ids seen is enough to apply each event once.

use std::collections::{HashSet, VecDeque};

use api::EventId;

/// Remembers the most recent `capacity` event ids; forgets the oldest first.
#[derive(Debug, Clone)]
pub struct Dedupe {
    seen: HashSet<EventId>,
    order: VecDeque<EventId>,
    capacity: usize,
    duplicates: u64,
}

impl Dedupe {
    /// Default capacity: a million ids (about 50 MB), hours of every region's events.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A dedupe that remembers up to `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Dedupe {
        let capacity = capacity.max(1);
        Dedupe {
            seen: HashSet::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity,
            duplicates: 0,
        }
    }

    /// Records `id`; `true` the first time, `false` for a duplicate.
    pub fn first_time(&mut self, id: EventId) -> bool {
        if !self.seen.insert(id) {
            self.duplicates += 1;
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Duplicates seen so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

impl Default for Dedupe {
    fn default() -> Dedupe {
        Dedupe::new(Dedupe::DEFAULT_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::{EventType, GameId};

    fn id(n: u128) -> EventId {
        EventId::of(game(n), EventType::Started)
    }

    fn game(n: u128) -> GameId {
        GameId::parse(&format!(
            "00000000-0000-4000-8000-{:012x}",
            n & 0xffff_ffff_ffff
        ))
        .unwrap()
    }

    #[test]
    fn repeats_are_duplicates_until_forgotten() {
        let mut d = Dedupe::new(3);
        assert!(d.first_time(id(1)));
        assert!(!d.first_time(id(1)));
        assert!(d.first_time(id(2)));
        assert!(d.first_time(id(3)));
        assert_eq!((d.len(), d.duplicates()), (3, 1));
        // A fourth id evicts the oldest (1), which then counts as new again.
        assert!(d.first_time(id(4)));
        assert_eq!(d.len(), 3);
        assert!(!d.first_time(id(4)) && !d.first_time(id(2)));
        assert!(d.first_time(id(1)));
        assert_eq!(d.duplicates(), 3);
    }

    #[test]
    fn started_and_exited_of_one_game_are_distinct() {
        let game = game(7);
        let mut d = Dedupe::default();
        assert!(d.first_time(EventId::of(game, EventType::Started)));
        assert!(d.first_time(EventId::of(game, EventType::Exited)));
        assert!(!d.first_time(EventId::of(game, EventType::Exited)));
    }

    #[test]
    fn many_ids_with_interleaved_repeats() {
        let mut d = Dedupe::new(10_000);
        let mut fresh = 0;
        for n in 0..5_000u128 {
            fresh += usize::from(d.first_time(id(n)));
            // Every id is re-delivered once, a little later.
            if n >= 3 {
                fresh += usize::from(d.first_time(id(n - 3)));
            }
        }
        assert_eq!(fresh, 5_000);
        assert_eq!(d.duplicates(), 4_997);
    }
}
