//! A small per-process cache of values that the database re-validates on
//! every use (clients authenticated by secret, device public keys), so a
//! stale entry can cost a lookup but never grant anything.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Values by string key, at most `capacity` of them: reaching the bound
/// simply empties the cache (entries are cheap to load again). With a
/// time to live, an entry older than that is loaded again: for values an
/// operator can change in another process (a client's settings).
#[derive(Debug)]
pub struct BoundedCache<V> {
    entries: Mutex<HashMap<String, (Instant, Arc<V>)>>,
    capacity: usize,
    time_to_live: Option<Duration>,
}

impl<V> BoundedCache<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            time_to_live: None,
        }
    }

    /// A cache whose entries are dropped `time_to_live` after they were put.
    pub fn with_time_to_live(capacity: usize, time_to_live: Duration) -> Self {
        Self {
            time_to_live: Some(time_to_live),
            ..Self::new(capacity)
        }
    }

    /// A panic while the lock was held cannot leave a half-written entry
    /// (every operation is one map call), so a poisoned lock is used as is.
    fn entries(&self) -> MutexGuard<'_, HashMap<String, (Instant, Arc<V>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let mut entries = self.entries();
        let (put_at, value) = entries.get(key)?;
        if self.time_to_live.is_some_and(|ttl| put_at.elapsed() >= ttl) {
            entries.remove(key);
            return None;
        }
        Some(value.clone())
    }

    pub fn put(&self, key: String, value: Arc<V>) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn evict(&self, key: &str) {
        self.entries().remove(key);
    }

    /// No entry at all (expired ones count until read): a cheap first check.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_empties_the_cache() {
        let cache = BoundedCache::new(2);
        cache.put("a".into(), Arc::new(1));
        cache.put("b".into(), Arc::new(2));
        assert_eq!(cache.get("a").as_deref(), Some(&1));
        cache.put("c".into(), Arc::new(3));
        assert!(cache.get("a").is_none() && cache.get("b").is_none());
        assert_eq!(cache.get("c").as_deref(), Some(&3));
        cache.evict("c");
        assert!(cache.get("c").is_none());
    }

    #[test]
    fn entries_expire_after_their_time_to_live() {
        let cache = BoundedCache::with_time_to_live(2, Duration::from_millis(30));
        cache.put("a".into(), Arc::new(1));
        assert_eq!(cache.get("a").as_deref(), Some(&1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
    }
}
