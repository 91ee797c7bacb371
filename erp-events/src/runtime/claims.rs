//! Claims of an idempotent listener's records: taken per batch in one store call, resolved per
//! record (waiting while another consumer holds one), renewed while the batch is worked on,
//! confirmed as records are handled (in groups, or each before the next, [`ConfirmMode`]), and
//! released per batch. Fail-closed: while the store is unreachable the partition waits; nothing
//! runs unchecked.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use crate::core::listener::ListenerOptions;
use crate::idempotency::{
    Claim, ConfirmMode, Confirmation, IdempotencySettings, IdempotencyStore, StoreError,
    StoreFuture, owner_token,
};
use crate::runtime::stop::{Stopped, WAIT, Waiting, sleep_unless_stopped, until_it_works};

/// The store of an idempotent listener, with the lease its retries need.
pub(crate) struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    pub(crate) done_ttl: Duration,
    lease: Duration,
    confirm: ConfirmMode,
}

/// Handled records whose `done` markers are asked for in one store call, in
/// [`ConfirmMode::InGroups`]: the batch's confirmations go out in groups of this many as its
/// records are handled (one group in flight while the next fills), and the rest when it
/// settles. So at most twice this many handled records of a partition wait for their markers
/// at any time, which bounds what a crash repeats, while a busy listener still confirms many
/// records per call.
const CONFIRM_GROUP: usize = 8;

/// Claims of one batch: its owner token, what each key found, and what became of it.
#[derive(Default)]
pub(crate) struct ClaimBook {
    owner: String,
    /// Every key the batch claimed, shared with [`Idempotency::keep_alive`].
    keys: Arc<[String]>,
    found: HashMap<String, Claim>,
    handled: HashSet<String>,
    /// Handled, and their `done` markers not asked for yet.
    unconfirmed: Vec<String>,
    /// The group of confirmations in flight.
    confirming: Option<JoinHandle<Answered>>,
    /// A confirmation failed: the rest wait for the batch to settle, which retries them.
    store_failed: bool,
    /// Confirmations that found another owner's claim.
    lost: usize,
    to_release: Vec<String>,
}

/// Keys, and what confirming them found.
type Answered = (Vec<String>, Result<Vec<Confirmation>, StoreError>);

impl ClaimBook {
    /// `key`'s event was not handled (dead-lettered, or stopped): its claim is released so a
    /// redelivery runs.
    pub(crate) fn release(&mut self, key: Option<String>) {
        self.to_release.extend(key);
    }

    /// The token the batch's claims are held by.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// The batch's keys and owner, for [`Idempotency::keep_alive`]; `None` without claims.
    pub(crate) fn lease(&self) -> Option<(Arc<[String]>, String)> {
        (!self.keys.is_empty()).then(|| (self.keys.clone(), self.owner.clone()))
    }

    /// Takes the claims acquired for records not started yet.
    fn take_unstarted(&mut self) -> Vec<String> {
        self.found
            .extract_if(|_, claim| *claim == Claim::Acquired)
            .map(|(key, _)| key)
            .collect()
    }
}

impl Idempotency {
    /// Claims in `store`, leased long enough for `options`' retries.
    pub(crate) fn new(
        store: Arc<dyn IdempotencyStore>,
        settings: IdempotencySettings,
        options: &ListenerOptions,
    ) -> Self {
        Idempotency {
            store,
            done_ttl: settings.done_ttl,
            lease: settings.lease + options.backoff.total(options.retries),
            confirm: settings.confirm,
        }
    }

    /// Claims the batch's keys in one call.
    pub(crate) async fn claim_batch(
        &self,
        waiting: &Waiting<'_>,
        keys: &[Option<String>],
    ) -> Result<ClaimBook, Stopped> {
        let mut seen = HashSet::new();
        let keys: Vec<String> = keys
            .iter()
            .flatten()
            .filter(|key| seen.insert(key.as_str()))
            .cloned()
            .collect();
        let owner = owner_token();
        if keys.is_empty() {
            return Ok(ClaimBook {
                owner,
                ..ClaimBook::default()
            });
        }
        let claim = || self.store.claim(&keys, &owner, self.lease);
        let found = fail_closed(waiting, "claim", claim).await?;
        Ok(ClaimBook {
            found: keys.iter().cloned().zip(found).collect(),
            keys: keys.into(),
            owner,
            ..ClaimBook::default()
        })
    }

    /// Renews `owner`'s claims among `keys` every third of the lease, for as long as it is
    /// polled (alongside the batch's work), so they run out only a lease after this process
    /// stops renewing them (a crash, or the store out of reach), however long handlers take.
    pub(crate) async fn keep_alive(&self, (keys, owner): (Arc<[String]>, String)) -> Infallible {
        let every = (self.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = self.store.renew(&keys, &owner, self.lease).await {
                warn!(%error, count = keys.len(), "claims not renewed; unless a later renewal lands, they run out with their lease and another consumer may take their events over");
            }
        }
    }

    /// `key`'s event was handled. In [`ConfirmMode::EachRecord`] its `done` marker is written
    /// before this returns, waiting while the store is unreachable (fail-closed); if the
    /// partition is stopping, it is left to the batch's settling, which tries once more before
    /// the offset may be stored. In [`ConfirmMode::InGroups`] it is asked for with the next
    /// group of [`CONFIRM_GROUP`] (waiting for the group in flight before sending another), or,
    /// once a group failed, when the batch settles.
    pub(crate) async fn handled(
        &self,
        waiting: &Waiting<'_>,
        claims: &mut ClaimBook,
        key: Option<String>,
    ) {
        let Some(key) = key else { return };
        claims.handled.insert(key.clone());
        claims.unconfirmed.push(key);
        match self.confirm {
            ConfirmMode::EachRecord => {
                let (keys, owner) = (&claims.unconfirmed, claims.owner.as_str());
                let confirm = || self.store.confirm(keys, owner, self.done_ttl);
                if let Ok(confirmations) = fail_closed(waiting, "confirm", confirm).await {
                    claims.lost += lost(&confirmations);
                    claims.unconfirmed.clear();
                }
            }
            ConfirmMode::InGroups
                if !claims.store_failed && claims.unconfirmed.len() >= CONFIRM_GROUP =>
            {
                self.confirm_group(claims).await;
            }
            ConfirmMode::InGroups => {}
        }
    }

    /// Sends the unconfirmed markers as a group, once the group in flight is answered.
    async fn confirm_group(&self, claims: &mut ClaimBook) {
        self.collect(claims).await;
        if !claims.store_failed {
            let keys = std::mem::take(&mut claims.unconfirmed);
            let (store, owner, ttl) = (self.store.clone(), claims.owner.clone(), self.done_ttl);
            claims.confirming = Some(tokio::spawn(async move {
                let answer = store.confirm(&keys, &owner, ttl).await;
                (keys, answer)
            }));
        }
    }

    /// Waits for the confirmation in flight and books its answer.
    async fn collect(&self, claims: &mut ClaimBook) {
        let Some(confirming) = claims.confirming.take() else {
            return;
        };
        match confirming.await {
            Ok((_, Ok(confirmations))) => claims.lost += lost(&confirmations),
            Ok((keys, Err(error))) => {
                debug!(%error, "confirmation failed; retried when the batch settles");
                claims.unconfirmed.extend(keys);
                claims.store_failed = true;
            }
            // The store panicked: which keys it confirmed is unknown, so all the batch's handled
            // keys are confirmed again (a confirmation of one's own `done` finds it done).
            Err(error) => {
                error!(%error, "confirmation task failed; confirming the batch again");
                claims.unconfirmed = claims.handled.iter().cloned().collect();
                claims.store_failed = true;
            }
        }
    }

    /// Decides a record's claim: the batch's answer, or (for a key seen earlier in the batch,
    /// or held by someone else) a fresh claim, waiting while another holder has it.
    pub(crate) async fn resolve(
        &self,
        waiting: &Waiting<'_>,
        key: &str,
        claims: &mut ClaimBook,
    ) -> Result<Claim, Stopped> {
        let claimed = match claims.found.remove(key) {
            Some(claim) => Some(claim),
            // Seen earlier in this batch: handled, or failed and still ours to run again.
            None if claims.handled.contains(key) => return Ok(Claim::Done),
            None => match claims.to_release.iter().position(|held| held == key) {
                Some(held) => {
                    claims.to_release.swap_remove(held);
                    Some(Claim::Acquired)
                }
                // Skipped earlier in this batch, or handed back: asked again.
                None => None,
            },
        };
        let keys = [key.to_owned()];
        let mut claim = match claimed {
            Some(claim) => claim,
            None => self.claim_one(waiting, &keys, &claims.owner).await?,
        };
        if claim == Claim::InProgress {
            self.hand_back(waiting, claims).await?;
        }
        let mut waits = 0;
        while claim == Claim::InProgress {
            waits += 1;
            if waits == 1 {
                debug!("event claimed by another consumer; waiting");
            }
            sleep_unless_stopped(waiting.stop, WAIT.delay(waits)).await?;
            claim = self.claim_one(waiting, &keys, &claims.owner).await?;
        }
        Ok(claim)
    }

    /// Claims one key (`keys`) for `owner`, failing closed.
    async fn claim_one(
        &self,
        waiting: &Waiting<'_>,
        keys: &[String; 1],
        owner: &str,
    ) -> Result<Claim, Stopped> {
        let claim = || self.store.claim(keys, owner, self.lease);
        let found = fail_closed(waiting, "claim", claim).await?;
        Ok(found.first().copied().unwrap_or(Claim::InProgress))
    }

    /// Before waiting on another holder, who may be waiting on one of this batch's events:
    /// writes the `done` markers of what the batch handled and releases what it has not
    /// started (claimed again when reached), so two batches that hold each other's events do
    /// not wait on each other for as long as they renew their claims.
    async fn hand_back(
        &self,
        waiting: &Waiting<'_>,
        claims: &mut ClaimBook,
    ) -> Result<(), Stopped> {
        self.collect(claims).await;
        if !claims.unconfirmed.is_empty() {
            let confirm = || {
                self.store
                    .confirm(&claims.unconfirmed, &claims.owner, self.done_ttl)
            };
            let confirmations = fail_closed(waiting, "confirm", confirm).await?;
            claims.lost += lost(&confirmations);
            claims.unconfirmed.clear();
            claims.store_failed = false;
        }
        let unstarted = claims.take_unstarted();
        let release: Vec<String> = claims.to_release.drain(..).chain(unstarted).collect();
        if !release.is_empty() {
            let owner = claims.owner.as_str();
            fail_closed(waiting, "release", || self.store.release(&release, owner)).await?;
        }
        Ok(())
    }

    /// Confirms what was handled and not confirmed yet, and releases what was not handled;
    /// returns whether every handled event is confirmed (its offset may then be stored).
    pub(crate) async fn settle(&self, waiting: &Waiting<'_>, mut claims: ClaimBook) -> bool {
        self.collect(&mut claims).await;
        let owner = claims.owner.as_str();
        let mut all_confirmed = true;
        if !claims.unconfirmed.is_empty() {
            let unconfirmed = &claims.unconfirmed;
            let confirm = || self.store.confirm(unconfirmed, owner, self.done_ttl);
            let confirmed = match fail_closed(waiting, "confirm", confirm).await {
                Ok(confirmations) => Ok(confirmations),
                // Stopping: one last try, so finished work is not left claimed until the lease ends.
                Err(Stopped) => confirm().await,
            };
            match confirmed {
                Ok(confirmations) => claims.lost += lost(&confirmations),
                Err(error) => {
                    all_confirmed = false;
                    warn!(
                        %error,
                        count = unconfirmed.len(),
                        "handled events not confirmed before stopping: not committed, so they are redelivered (their claims expire with the lease)"
                    );
                }
            }
        }
        if claims.lost > 0 {
            warn!(
                lost = claims.lost,
                "handled events whose claims expired while their handlers ran: another consumer took them over, so they may run twice (raise the lease)"
            );
        }
        let unstarted = claims.take_unstarted();
        let release: Vec<String> = claims.to_release.drain(..).chain(unstarted).collect();
        if !release.is_empty()
            && let Err(error) = self.store.release(&release, &claims.owner).await
        {
            warn!(%error, count = release.len(), "claims not released; they expire with the lease");
        }
        all_confirmed
    }
}

/// How many confirmations found another owner's claim.
fn lost(confirmations: &[Confirmation]) -> usize {
    confirmations
        .iter()
        .filter(|found| **found == Confirmation::Lost)
        .count()
}

/// Calls the store until it answers, backing off while it is unreachable (fail-closed).
async fn fail_closed<'a, T>(
    waiting: &Waiting<'_>,
    operation: &str,
    call: impl FnMut() -> StoreFuture<'a, T>,
) -> Result<T, Stopped> {
    let what = "the idempotency store";
    let (value, failures) = until_it_works(waiting, what, call, |error, failures| {
        waiting.stats.store_error();
        if failures == 1 {
            error!(%error, operation, "idempotency store unreachable; this partition waits (nothing is handled without the check)");
        }
    })
    .await?;
    if failures > 0 {
        warn!(
            operation,
            failures, "idempotency store answers again; resuming"
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::idempotency::MemoryStore;
    use crate::runtime::metrics::Metrics;
    use crate::runtime::stats::ListenerStats;

    /// Claims in `store`, with the default settings.
    fn on(store: Arc<dyn IdempotencyStore>) -> Idempotency {
        Idempotency::new(
            store,
            IdempotencySettings::default(),
            &ListenerOptions::default(),
        )
    }

    /// A partition's stop signal and counters, for its [`Waiting`].
    struct TestPartition {
        stop: CancellationToken,
        stats: ListenerStats,
    }

    impl TestPartition {
        fn new() -> Self {
            TestPartition {
                stop: CancellationToken::new(),
                stats: ListenerStats::new(
                    Arc::default(),
                    Metrics::default().listener("kafka", "g", "t", "l"),
                ),
            }
        }

        fn waiting(&self) -> Waiting<'_> {
            Waiting {
                stop: &self.stop,
                at: ("group", "topic", 0, 0),
                stats: &self.stats,
            }
        }
    }

    /// The memory store, with faults: claims answered just as the partition is told to stop (a
    /// revocation arriving while the claim is in flight), and the first confirmations failing.
    #[derive(Default)]
    struct Unreliable {
        store: MemoryStore,
        stop_when_claiming: Option<CancellationToken>,
        failing_confirms: std::sync::atomic::AtomicUsize,
    }

    impl IdempotencyStore for Unreliable {
        fn claim<'a>(
            &'a self,
            keys: &'a [String],
            owner: &'a str,
            lease: Duration,
        ) -> StoreFuture<'a, Vec<Claim>> {
            if let Some(stop) = &self.stop_when_claiming {
                stop.cancel();
            }
            self.store.claim(keys, owner, lease)
        }

        fn confirm<'a>(
            &'a self,
            keys: &'a [String],
            owner: &'a str,
            ttl: Duration,
        ) -> StoreFuture<'a, Vec<Confirmation>> {
            use std::sync::atomic::Ordering::SeqCst;
            let fails = self
                .failing_confirms
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
            if fails.is_ok() {
                return Box::pin(std::future::ready(Err(StoreError::unavailable("down"))));
            }
            self.store.confirm(keys, owner, ttl)
        }

        fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()> {
            self.store.release(keys, owner)
        }

        fn renew<'a>(
            &'a self,
            keys: &'a [String],
            owner: &'a str,
            lease: Duration,
        ) -> StoreFuture<'a, ()> {
            self.store.renew(keys, owner, lease)
        }
    }

    #[tokio::test]
    async fn a_claim_answered_as_the_partition_stops_is_released_not_left_to_its_lease() {
        let partition = TestPartition::new();
        let store = Arc::new(Unreliable {
            stop_when_claiming: Some(partition.stop.clone()),
            ..Unreliable::default()
        });
        let idempotency = on(store.clone());
        let waiting = partition.waiting();
        let claims = idempotency
            .claim_batch(&waiting, &[Some("key".to_owned())])
            .await
            .expect("a claim once made is answered, even when the partition stops meanwhile");
        // The batch stops before its first record: the claim is released, not left to expire.
        idempotency.settle(&waiting, claims).await;
        let next_owner = store
            .store
            .claim(
                &["key".to_owned()],
                "the next owner",
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert_eq!(next_owner, vec![Claim::Acquired]);
    }

    #[tokio::test]
    async fn a_batch_waiting_on_another_holder_first_confirms_its_handled_events_and_hands_back_the_rest()
     {
        let store = Arc::new(MemoryStore::new());
        let idempotency = on(store.clone());
        let partition = TestPartition::new();
        let waiting = partition.waiting();
        let [x, y, z] = ["x", "y", "z"].map(str::to_owned);
        let (lease, ttl) = (Duration::from_secs(30), Duration::from_secs(60));
        // Another consumer's batch holds Y, and reaches X, which this batch holds, next.
        let other = |key: &String| {
            let keys = vec![key.clone()];
            let store = store.clone();
            async move { store.claim(&keys, "other", lease).await }
        };
        assert_eq!(other(&y).await.unwrap(), [Claim::Acquired]);
        let keys = [Some(x.clone()), Some(y.clone()), Some(z.clone())];
        let mut claims = idempotency.claim_batch(&waiting, &keys).await.unwrap();
        let resolved = idempotency.resolve(&waiting, &x, &mut claims).await;
        assert_eq!(resolved.unwrap(), Claim::Acquired);
        idempotency
            .handled(&waiting, &mut claims, Some(x.clone()))
            .await;
        let the_other_goes_on = async {
            while other(&x).await.unwrap() != [Claim::Done] {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(other(&z).await.unwrap(), [Claim::Acquired], "Z handed back");
            store
                .confirm(&[y.clone(), z.clone()], "other", ttl)
                .await
                .unwrap();
        };
        let the_other_goes_on = tokio::time::timeout(Duration::from_secs(5), the_other_goes_on);
        let (resolved, went_on) = tokio::join!(
            idempotency.resolve(&waiting, &y, &mut claims),
            the_other_goes_on
        );
        went_on.expect("X's done marker is written while this batch waits on Y");
        assert_eq!(resolved.unwrap(), Claim::Done);
        let resolved = idempotency.resolve(&waiting, &z, &mut claims).await;
        assert_eq!(
            resolved.unwrap(),
            Claim::Done,
            "Z, done by the other meanwhile"
        );
    }

    /// Claims, resolves and handles the one event `k` in `store`, confirming as `confirm` says;
    /// returns what another owner's claim of `k` finds then.
    async fn handle_k(store: Arc<dyn IdempotencyStore>, confirm: ConfirmMode) -> Claim {
        let settings = IdempotencySettings {
            confirm,
            ..IdempotencySettings::default()
        };
        let idempotency = Idempotency::new(store.clone(), settings, &ListenerOptions::default());
        let partition = TestPartition::new();
        let waiting = partition.waiting();
        let keys = ["k".to_owned()];
        let batch = [Some(keys[0].clone())];
        let mut claims = idempotency.claim_batch(&waiting, &batch).await.unwrap();
        let resolved = idempotency.resolve(&waiting, &keys[0], &mut claims).await;
        assert_eq!(resolved.unwrap(), Claim::Acquired);
        let handled = idempotency.handled(&waiting, &mut claims, Some(keys[0].clone()));
        handled.await;
        let found = store.claim(&keys, "the next owner", Duration::from_secs(1));
        found.await.unwrap()[0]
    }

    #[tokio::test]
    async fn in_each_record_mode_a_marker_is_written_before_the_next_record_in_groups_it_waits() {
        let store = Arc::new(MemoryStore::new());
        assert_eq!(handle_k(store, ConfirmMode::EachRecord).await, Claim::Done);
        let store = Arc::new(MemoryStore::new());
        assert_eq!(
            handle_k(store, ConfirmMode::InGroups).await,
            Claim::InProgress
        );
    }

    #[tokio::test]
    async fn in_each_record_mode_a_failed_confirmation_is_retried_before_the_next_record() {
        let store = Arc::new(Unreliable {
            failing_confirms: 1.into(),
            ..Unreliable::default()
        });
        assert_eq!(
            handle_k(store.clone(), ConfirmMode::EachRecord).await,
            Claim::Done
        );
        let failing = store
            .failing_confirms
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(failing, 0, "the first confirmation was tried, and failed");
    }

    #[tokio::test]
    async fn a_group_whose_confirmation_failed_is_confirmed_when_the_batch_settles() {
        let store = Arc::new(Unreliable {
            failing_confirms: 1.into(),
            ..Unreliable::default()
        });
        let idempotency = on(store.clone());
        let partition = TestPartition::new();
        let waiting = partition.waiting();
        let keys: Vec<String> = (0..CONFIRM_GROUP + 2).map(|i| format!("k{i}")).collect();
        let batch: Vec<Option<String>> = keys.iter().cloned().map(Some).collect();
        let mut claims = idempotency.claim_batch(&waiting, &batch).await.unwrap();
        for key in &keys {
            assert_eq!(
                idempotency
                    .resolve(&waiting, key, &mut claims)
                    .await
                    .unwrap(),
                Claim::Acquired
            );
            // The first group's confirmation goes out (and fails) as its eighth record is done.
            let handled = idempotency.handled(&waiting, &mut claims, Some(key.clone()));
            handled.await;
        }
        assert!(idempotency.settle(&waiting, claims).await, "all confirmed");
        let found = store
            .store
            .claim(&keys, "the next owner", Duration::from_secs(1));
        assert_eq!(found.await.unwrap(), vec![Claim::Done; keys.len()]);
        assert_eq!(
            store
                .failing_confirms
                .load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the first confirmation was tried, and failed"
        );
    }
}
