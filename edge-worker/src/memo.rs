//! Isolate-memory memo of facts that never change: which region a game lives in. It lets
//! `POST /edge/game/exit` without `backendRegion` skip a lookup, and unlike game records it can
//! never go stale, so keeping it per isolate (where invalidation cannot reach) is safe. Bounded:
//! the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct BoundedMemo {
    capacity: usize,
    map: HashMap<String, String>,
    order: VecDeque<String>,
}

impl BoundedMemo {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn insert(&mut self, key: &str, value: &str) {
        if let Some(v) = self.map.get_mut(key) {
            value.clone_into(v);
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
        self.map.insert(key.to_string(), value.to_string());
        self.order.push_back(key.to_string());
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

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
        assert_eq!(m.get("g1"), Some("us"));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("g2"), None);
    }

    #[test]
    fn evicts_oldest_first() {
        let mut m = BoundedMemo::new(2);
        m.insert("a", "eu");
        m.insert("b", "us");
        m.insert("c", "asia");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("a"), None);
        assert_eq!(m.get("b"), Some("us"));
        assert_eq!(m.get("c"), Some("asia"));
    }
}
