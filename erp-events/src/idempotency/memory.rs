//! The in-memory store: the embedded default, with the Redis store's semantics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Claim, Confirmation, IdempotencyStore, StoreFuture};

/// Claims in a map of this process: enough for one consumer process and for tests; use
/// [`super::RedisStore`] when several processes share a group. It remembers at most
/// [`MemoryStore::DEFAULT_CAPACITY`] events (or its capacity): past that, the events handled
/// longest ago are forgotten first, so a very late redelivery of one is handled again.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    writes_since_sweep: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    holder: Holder,
    expires: Instant,
}

/// Who an entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// A claim, by its owner's token.
    Owner(String),
    /// The event was handled.
    Done,
}

impl MemoryStore {
    /// How many events the default store remembers (about 15 MiB of keys).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store of [`MemoryStore::DEFAULT_CAPACITY`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that remembers at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryStore {
            entries: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .expect("no panics while the lock is held");
        let now = Instant::now();
        let result = f(&mut entries, now);
        entries.writes_since_sweep += 1;
        if entries.writes_since_sweep > entries.map.len().max(1024) {
            entries.map.retain(|_, entry| entry.expires > now);
            entries.writes_since_sweep = 0;
        }
        if entries.map.len() > self.capacity {
            entries.forget_oldest_done(self.capacity - self.capacity / 10);
        }
        result
    }
}

/// Whose a key is, as `owner` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No live entry.
    Free,
    /// `owner`'s claim.
    Own,
    /// Another owner's claim.
    Other,
    /// Handled.
    Done,
}

impl Entries {
    /// Whose `key` is for `owner` at `now`.
    fn found(&self, key: &str, owner: &str, now: Instant) -> Found {
        match self.map.get(key).filter(|entry| entry.expires > now) {
            None => Found::Free,
            Some(entry) => match &entry.holder {
                Holder::Done => Found::Done,
                Holder::Owner(holder) if holder == owner => Found::Own,
                Holder::Owner(_) => Found::Other,
            },
        }
    }

    fn set(&mut self, key: &str, holder: Holder, expires: Instant) {
        self.map.insert(key.to_owned(), Entry { holder, expires });
    }

    /// Forgets the `done` entries that expire first until at most `keep` entries are left
    /// (claims in progress are kept).
    fn forget_oldest_done(&mut self, keep: usize) {
        let mut done: Vec<(Instant, String)> = self
            .map
            .iter()
            .filter(|(_, entry)| entry.holder == Holder::Done)
            .map(|(key, entry)| (entry.expires, key.clone()))
            .collect();
        done.sort_unstable();
        let excess = self.map.len().saturating_sub(keep);
        for (_, key) in done.into_iter().take(excess) {
            self.map.remove(&key);
        }
    }
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>> {
        let claims = self.with_entries(|entries, now| {
            keys.iter()
                .map(|key| match entries.found(key, owner, now) {
                    Found::Done => Claim::Done,
                    Found::Own => Claim::Acquired,
                    Found::Other => Claim::InProgress,
                    Found::Free => {
                        entries.set(key, Holder::Owner(owner.to_owned()), now + lease);
                        Claim::Acquired
                    }
                })
                .collect()
        });
        Box::pin(std::future::ready(Ok(claims)))
    }

    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>> {
        let confirmations = self.with_entries(|entries, now| {
            keys.iter()
                .map(|key| match entries.found(key, owner, now) {
                    Found::Done => Confirmation::AlreadyDone,
                    Found::Other => Confirmation::Lost,
                    Found::Own | Found::Free => {
                        entries.set(key, Holder::Done, now + ttl);
                        Confirmation::Confirmed
                    }
                })
                .collect()
        });
        Box::pin(std::future::ready(Ok(confirmations)))
    }

    fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()> {
        self.with_entries(|entries, now| {
            for key in keys {
                if entries.found(key, owner, now) == Found::Own {
                    entries.map.remove(key);
                }
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn renew<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ()> {
        self.with_entries(|entries, now| {
            for key in keys {
                if entries.found(key, owner, now) == Found::Own {
                    entries.set(key, Holder::Owner(owner.to_owned()), now + lease);
                }
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_store_forgets_the_events_handled_longest_ago() {
        let store = MemoryStore::with_capacity(10);
        let keys: Vec<String> = (0..25).map(|i| format!("erp:idem:g:{i}")).collect();
        for key in &keys {
            let key = std::slice::from_ref(key);
            store
                .claim(key, "me", Duration::from_secs(60))
                .await
                .unwrap();
            store
                .confirm(key, "me", Duration::from_secs(3600))
                .await
                .unwrap();
        }
        assert!(store.entries.lock().unwrap().map.len() <= 10);
        let newest = store
            .claim(&keys[24..], "me", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(newest, [Claim::Done], "the newest is remembered");
        let oldest = store
            .claim(&keys[..1], "me", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(oldest, [Claim::Acquired], "the oldest is forgotten");
    }
}
