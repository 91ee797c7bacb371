//! The in-memory store: the embedded default, with the Redis store's semantics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Claim, IdempotencyStore, StoreFuture};

/// Claims in a map of this process: enough for one consumer process and for tests; use
/// [`super::RedisStore`] when several processes share a group.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    writes_since_sweep: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    done: bool,
    expires: Instant,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        result
    }
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(&'a self, keys: &'a [String], lease: Duration) -> StoreFuture<'a, Vec<Claim>> {
        let claims = self.with_entries(|entries, now| {
            keys.iter()
                .map(|key| match entries.map.get(key) {
                    Some(entry) if entry.expires > now && entry.done => Claim::Done,
                    Some(entry) if entry.expires > now => Claim::InProgress,
                    _ => {
                        let expires = now + lease;
                        entries.map.insert(
                            key.clone(),
                            Entry {
                                done: false,
                                expires,
                            },
                        );
                        Claim::Acquired
                    }
                })
                .collect()
        });
        Box::pin(std::future::ready(Ok(claims)))
    }

    fn confirm<'a>(&'a self, keys: &'a [String], ttl: Duration) -> StoreFuture<'a, ()> {
        self.with_entries(|entries, now| {
            for key in keys {
                let expires = now + ttl;
                entries.map.insert(
                    key.clone(),
                    Entry {
                        done: true,
                        expires,
                    },
                );
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        self.with_entries(|entries, _| {
            for key in keys {
                entries.map.remove(key);
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }
}
