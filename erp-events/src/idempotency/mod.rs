//! Idempotent dispatch: each event handled once per consumer group, claimed before and
//! confirmed after its handler.
//!
//! Per record: `SET erp:idem:<group>:<eventId> processing NX PX <lease>` before the handler; on
//! success the value becomes `done` with a TTL; on failure the key is deleted so the retry or
//! redelivery runs. A record that finds `done` is a duplicate (skipped, its offset committed);
//! one that finds `processing` waits until the holder finishes or its lease runs out. The seed's
//! `consumed:$eventId`, set before the handler and shared by every group, loses events on a
//! crash and makes the second group skip everything; this does neither.

mod memory;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

pub use memory::MemoryStore;
pub use redis::RedisStore;

/// A boxed future returned by [`IdempotencyStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free and is now ours: run the handler.
    Acquired,
    /// The event was handled already: skip it.
    Done,
    /// Someone else is handling it now: wait and claim again.
    InProgress,
}

/// What went wrong with an idempotency store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store's address is not valid (e.g. a malformed `REDIS_URL`).
    #[error("invalid idempotency store address: {source}")]
    Address {
        /// Why the address was refused.
        source: BoxError,
    },
    /// The store did not answer (unreachable, timed out, refused a command): the listener
    /// fails closed and tries again.
    #[error("idempotency store unavailable: {source}")]
    Unavailable {
        /// The client's error.
        source: BoxError,
    },
    /// An operation that belongs in an idempotent listener's handler was called elsewhere.
    #[error("`{operation}` must be called from an idempotent listener's handler")]
    OutsideHandler {
        /// The operation.
        operation: &'static str,
    },
}

/// Any error of a store's client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    /// The store did not answer: `source` says why.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            source: source.into(),
        }
    }
}

/// Where claims live. Every method works on a batch of keys, so that a remote store can answer
/// the records in flight in one round trip.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims each key for `lease` (`SET key processing NX PX lease`), reporting what was found.
    fn claim<'a>(&'a self, keys: &'a [String], lease: Duration) -> StoreFuture<'a, Vec<Claim>>;

    /// Marks each key `done` for `ttl`.
    fn confirm<'a>(&'a self, keys: &'a [String], ttl: Duration) -> StoreFuture<'a, ()>;

    /// Deletes each key, so the event can run again.
    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()>;

    /// Answers when the store is reachable (checked before an application starts).
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Timing of claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencySettings {
    /// How long a `done` marker is kept (24 h by default).
    pub done_ttl: Duration,
    /// How long a claim is held before its handler has finished, on top of the time the
    /// listener's retries may take; after it, a crashed holder's event can run elsewhere.
    pub lease: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            done_ttl: Duration::from_secs(24 * 60 * 60),
            lease: Duration::from_secs(30),
        }
    }
}

/// `erp:idem:<group>:<eventId>`. The event id is a parsed UUID, printed canonically, so nothing
/// from the record reaches the key as raw text.
pub fn idempotency_key(group: &str, event_id: &Uuid) -> String {
    format!("erp:idem:{group}:{}", event_id.hyphenated())
}

impl<S: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<S> {
    fn claim<'a>(&'a self, keys: &'a [String], lease: Duration) -> StoreFuture<'a, Vec<Claim>> {
        (**self).claim(keys, lease)
    }

    fn confirm<'a>(&'a self, keys: &'a [String], ttl: Duration) -> StoreFuture<'a, ()> {
        (**self).confirm(keys, ttl)
    }

    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        (**self).release(keys)
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        (**self).ping()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_group_and_canonical() {
        let id = Uuid::parse_str("{0192F1C4-7A3E-7B6C-9D2E-5F8A1B3C4D5E}").unwrap();
        assert_eq!(
            idempotency_key("search-sync", &id),
            "erp:idem:search-sync:0192f1c4-7a3e-7b6c-9d2e-5f8a1b3c4d5e"
        );
        assert_ne!(
            idempotency_key("analytics", &id),
            idempotency_key("search-sync", &id)
        );
    }
}
