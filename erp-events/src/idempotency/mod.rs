//! Idempotent dispatch: each event handled once per consumer group, claimed before and
//! confirmed after its handler.
//!
//! Per record: `erp:idem:{<group>}:<eventId>` is claimed before the handler, its value the
//! claimer's owner token, for a lease that is renewed while the claimer works (so the lease
//! bounds how long a crashed holder blocks its events, not how long a handler may run); on success the value becomes `done` with a TTL; on
//! failure the key is deleted so the retry or redelivery runs. A record that finds `done` is a
//! duplicate (skipped, its offset committed); one that finds another owner's token waits until
//! that holder finishes or its lease runs out. Claims are fenced: confirming and releasing act
//! only on the caller's own claim (or a free key), so a holder whose lease ran out can neither
//! delete the next holder's claim nor its `done`; a claim retried by its owner (a timed-out
//! call that Redis had applied) is recognised as its own. The seed's `consumed:$eventId`, set
//! before the handler and shared by every group, loses events on a crash and makes the second
//! group skip everything; this does neither.

mod memory;
mod redis;
mod redis_connection;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use uuid::Uuid;

pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use redis_connection::RedisConnection;

/// A boxed future returned by [`IdempotencyStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free, or already the caller's, and is now the caller's: run the handler.
    Acquired,
    /// The event was handled already: skip it.
    Done,
    /// Someone else is handling it now: wait and claim again.
    InProgress,
}

/// What confirming a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The claim was the caller's (or had expired with no one else claiming): now `done`.
    Confirmed,
    /// The event was `done` already (the caller's own earlier confirm, applied although its
    /// answer was lost, or a holder that took over after the caller's lease ran out).
    AlreadyDone,
    /// Another owner holds the claim now: the caller's lease ran out while its handler ran, so
    /// the event may run twice. Nothing was written.
    Lost,
}

/// A token that names one claimer (one batch of one partition worker of one process), unique
/// across processes: claims hold it, and only it confirms or releases them.
pub fn owner_token() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PROCESS: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let process = PROCESS.get_or_init(|| Uuid::new_v4().simple().to_string()[..16].to_owned());
    format!("{process}.{}", NEXT.fetch_add(1, Ordering::Relaxed))
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
    /// The handler's claim is no longer its own: its lease ran out and another consumer took
    /// the event over. Nothing was applied.
    #[error("the claim on `{key}` expired and another consumer holds it; nothing was applied")]
    ClaimLost {
        /// The event's key.
        key: String,
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
/// the records in flight in one round trip; `owner` is the caller's [`owner_token`].
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims each key for `owner` for `lease` where it is free, reporting what was found; a
    /// key already `owner`'s is reported [`Claim::Acquired`] (its lease unchanged).
    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>>;

    /// Marks each key `done` for `ttl` where it is `owner`'s claim or free; a key another owner
    /// holds stays that owner's ([`Confirmation::Lost`]).
    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>>;

    /// Deletes each key that is `owner`'s claim, so the event can run again; other owners'
    /// claims and `done` markers stay.
    fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()>;

    /// Extends each of `owner`'s claims among `keys` to `lease` from now (called while their
    /// handlers run, so a claim outlives its holder only by `lease`); other keys stay as they are.
    fn renew<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Answers when the store is reachable (checked before an application starts).
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Timing of claims, and when `done` markers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencySettings {
    /// How long a `done` marker is kept (24 h by default).
    pub done_ttl: Duration,
    /// How long a claim outlives its holder: claims are renewed while their handlers run (every
    /// third of the lease), so after a crash (or while the holder cannot reach the store) its
    /// events can run elsewhere after this, on top of the time the listener's retries may take.
    pub lease: Duration,
    /// When handled events' `done` markers are written, which bounds what a crash repeats.
    pub confirm: ConfirmMode,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            done_ttl: Duration::from_secs(24 * 60 * 60),
            lease: Duration::from_secs(30),
            confirm: ConfirmMode::InGroups,
        }
    }
}

/// When an idempotent listener writes the `done` markers of the events it handled. Either way
/// a record's offset is stored only after its marker is written; what differs is how many
/// handled events a crash (SIGKILL, power loss) can catch without their markers, and so run
/// again: the trade Spring Kafka's `AckMode.RECORD` and `BATCH` make for offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmMode {
    /// In groups of 8 as records are handled, one group in flight while the next fills (the
    /// default): while the store answers, a crash repeats at most 16 handled events per
    /// partition (after a failed group, the markers of the rest of the batch, up to 64, wait
    /// for it to settle); 1.2–1.6 times the throughput of [`ConfirmMode::EachRecord`]
    /// (`erp-events-bench dedup`).
    InGroups,
    /// Each event's marker is written before its partition's next record is handled (the
    /// partition waits while the store is unreachable): a crash repeats at most the event in
    /// flight in each partition, at one store round trip per event.
    EachRecord,
}

/// `erp:idem:{<group>}:<eventId>`. The event id is a parsed UUID, printed canonically, so nothing
/// from the record reaches the key as raw text. The group is the key's hash tag: on a Redis
/// Cluster all of a group's keys share one slot, so a batch's claims and scripts go to one node
/// and the same event arriving on any partition finds the same key (a group's dedup load is on
/// one node; groups spread over the nodes).
pub fn idempotency_key(group: &str, event_id: &Uuid) -> String {
    format!("erp:idem:{{{group}}}:{}", event_id.hyphenated())
}

impl<S: IdempotencyStore + ?Sized> IdempotencyStore for std::sync::Arc<S> {
    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>> {
        (**self).claim(keys, owner, lease)
    }

    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>> {
        (**self).confirm(keys, owner, ttl)
    }

    fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()> {
        (**self).release(keys, owner)
    }

    fn renew<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ()> {
        (**self).renew(keys, owner, lease)
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        (**self).ping()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tokens_are_unique() {
        let (first, second) = (owner_token(), owner_token());
        assert_ne!(first, second);
        assert_eq!(
            first.split('.').next(),
            second.split('.').next(),
            "one process"
        );
    }

    #[test]
    fn keys_are_per_group_and_canonical() {
        let id = Uuid::parse_str("{0192F1C4-7A3E-7B6C-9D2E-5F8A1B3C4D5E}").unwrap();
        assert_eq!(
            idempotency_key("search-sync", &id),
            "erp:idem:{search-sync}:0192f1c4-7a3e-7b6c-9d2e-5f8a1b3c4d5e"
        );
        assert_ne!(
            idempotency_key("analytics", &id),
            idempotency_key("search-sync", &id)
        );
    }
}
