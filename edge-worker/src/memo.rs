//! Isolate-memory memo of facts that never change: which region a game lives in. It lets
//! `POST /edge/game/exit` without `backendRegion` skip a lookup, and unlike game records it can
//! never go stale, so keeping it per isolate (where invalidation cannot reach) is safe. Bounded:
//! the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A map of at most `capacity` entries that forgets its oldest insertions first.
#[derive(Debug, Clone)]
pub struct BoundedMemo<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone, V> BoundedMemo<K, V> {
    /// An empty memo of at most `capacity` (at least 1) entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The value remembered for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Remembers `value` for `key` (overwriting keeps the entry's age).
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_overwrites() {
        let mut m = BoundedMemo::new(4);
        assert!(m.is_empty());
        m.insert("g1", "eu");
        m.insert("g1", "us");
        assert_eq!(m.get(&"g1"), Some(&"us"));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(&"g2"), None);
    }

    #[test]
    fn evicts_oldest_first() {
        let mut m = BoundedMemo::new(2);
        m.insert("a", "eu");
        m.insert("b", "us");
        m.insert("c", "asia");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&"a"), None);
        assert_eq!(m.get(&"b"), Some(&"us"));
        assert_eq!(m.get(&"c"), Some(&"asia"));
    }
}
