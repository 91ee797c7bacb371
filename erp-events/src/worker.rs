//! Processing one partition of one listener: records in order, each claimed, handled with
//! retries or dead-lettered, and only then marked done for the transport. Claims are taken and
//! confirmed per batch (one store round trip each); a handled record whose offset is committed
//! before its confirmation is never redelivered, so the order of the two does not matter.
//!
//! A worker never panics on input and never reports an offset whose record was neither handled
//! nor dead-lettered. When the idempotency store or the dead-letter topic is unreachable it
//! waits, retrying with backoff, and its queue fills until the transport stops fetching for it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, error, warn};

use crate::consumer::KafkaPartitionQueue;
use crate::context::{ClaimMarker, EventContext, RecordTrace};
use crate::dlt::{DECODE_ERROR_TYPE, DeadLetterReason, dead_letter_headers};
use crate::envelope::{DecodeError, Envelope};
use crate::idempotency::{
    Claim, IdempotencySettings, IdempotencyStore, StoreFuture, idempotency_key,
};
use crate::listener::{HandlerError, Listener, ListenerOptions};
use crate::record::{ConsumedRecord, Record};
use crate::retry::Backoff;
use crate::sinks::{DeadLetterSink, OffsetSink};
use crate::stats::ListenerStats;
use crate::trace::TraceContext;

/// Records taken from the queue, claimed and confirmed together.
const MAX_BATCH: usize = 64;

/// Waiting on an unreachable store or dead-letter topic, or on another holder's claim.
const WAIT: Backoff = Backoff {
    initial: Duration::from_millis(50),
    multiplier: 2.0,
    max: Duration::from_secs(2),
};

/// The worker was told to stop (shutdown or partition revoked) before finishing a record.
#[derive(Debug)]
pub(crate) struct Stopped;

/// A listener with everything its workers share.
pub(crate) struct ListenerRuntime<L: Listener> {
    pub(crate) listener: L,
    pub(crate) state: L::State,
    pub(crate) options: ListenerOptions,
    pub(crate) idempotency: Option<Idempotency>,
    pub(crate) concurrency: Arc<Semaphore>,
    pub(crate) dead_letters: Arc<dyn DeadLetterSink>,
    pub(crate) stats: Arc<ListenerStats>,
}

/// The store of an idempotent listener, with the lease its retries need.
pub(crate) struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    done_ttl: Duration,
    lease: Duration,
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
        }
    }
}

/// One partition's place in its transport.
pub(crate) struct Partition {
    pub(crate) topic: &'static str,
    pub(crate) partition: i32,
    pub(crate) offsets: Arc<dyn OffsetSink>,
    pub(crate) stop: CancellationToken,
}

/// Where a partition's worker takes its records from, in order. While the worker is busy it
/// takes nothing, and the source's bound (librdkafka's prefetch limit, a bounded queue) holds
/// the rest back.
pub(crate) trait RecordSource: Send {
    /// The records it yields.
    type Record: ConsumedRecord + Send + Sync;
    /// The next record, waiting for one; `None` once the source is closed.
    fn next_record(&mut self) -> impl Future<Output = Option<Self::Record>> + Send;
    /// The next record if one is ready now.
    fn ready_record(&mut self) -> Option<Self::Record>;
}

impl RecordSource for mpsc::Receiver<Record> {
    type Record = Record;

    fn next_record(&mut self) -> impl Future<Output = Option<Record>> + Send {
        self.recv()
    }

    fn ready_record(&mut self) -> Option<Record> {
        self.try_recv().ok()
    }
}

/// Claims of one batch: what each key found, and what became of it.
#[derive(Default)]
struct ClaimBook {
    found: HashMap<String, Claim>,
    handled: HashSet<String>,
    to_release: Vec<String>,
}

async fn sleep_or_stop(stop: &CancellationToken, delay: Duration) -> Result<(), Stopped> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => Err(Stopped),
        _ = tokio::time::sleep(delay) => Ok(()),
    }
}

impl<L: Listener> ListenerRuntime<L> {
    /// Processes `source` until it closes or `partition.stop` fires.
    pub(crate) async fn run_partition<S: RecordSource>(
        self: Arc<Self>,
        partition: Partition,
        mut source: S,
    ) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                biased;
                _ = partition.stop.cancelled() => return,
                record = source.next_record() => match record {
                    Some(record) => record,
                    None => return,
                },
            };
            batch.clear();
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match source.ready_record() {
                    Some(record) => batch.push(record),
                    None => break,
                }
            }
            let permit = tokio::select! {
                biased;
                _ = partition.stop.cancelled() => return,
                permit = self.concurrency.acquire() => permit.expect("the semaphore is never closed"),
            };
            let result = self.process_batch(&partition, &batch).await;
            drop(permit);
            if result.is_err() {
                return;
            }
        }
    }

    async fn process_batch<R: ConsumedRecord + Sync>(
        &self,
        p: &Partition,
        batch: &[R],
    ) -> Result<(), Stopped> {
        let decoded: Vec<Result<Envelope<L::Event>, DecodeError>> = batch
            .iter()
            .map(|record| Envelope::decode_event(record.value().unwrap_or_default()))
            .collect();
        let keys: Vec<Option<String>> = decoded
            .iter()
            .map(|envelope| {
                let envelope = envelope
                    .as_ref()
                    .ok()
                    .filter(|_| self.idempotency.is_some())?;
                Some(idempotency_key(L::GROUP, &envelope.event_id))
            })
            .collect();
        let mut claims = self.claim_batch(p, &keys).await?;
        let mut outcome = Ok(());
        let mut done = None;
        for ((record, envelope), key) in batch.iter().zip(decoded).zip(keys) {
            if p.stop.is_cancelled() {
                // Revoked or shutting down: the rest of the batch is redelivered.
                outcome = Err(Stopped);
                break;
            }
            let span = tracing::info_span!(
                "erp.record",
                topic = p.topic,
                partition = p.partition,
                offset = record.offset(),
                group = L::GROUP,
                listener = L::NAME,
                event_id = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                attempt = tracing::field::Empty,
            );
            let processing = self.process_record(p, record, envelope, key, &mut claims);
            // Entering a span nobody listens to still costs a move of the whole future.
            let processed = if span.is_disabled() {
                processing.await
            } else {
                processing.instrument(span).await
            };
            match processed {
                // Handled, skipped or dead-lettered: its offset may be committed.
                Ok(()) => done = Some(record.offset()),
                Err(Stopped) => {
                    outcome = Err(Stopped);
                    break;
                }
            }
        }
        // Stored before the claims settle: a handled record is never redelivered, even while
        // the store is unreachable and its confirmation waits.
        if let Some(offset) = done {
            p.offsets.store(p.topic, p.partition, offset);
        }
        self.settle_claims(p, claims).await;
        outcome
    }

    async fn process_record<R: ConsumedRecord + Sync>(
        &self,
        p: &Partition,
        record: &R,
        decoded: Result<Envelope<L::Event>, DecodeError>,
        key: Option<String>,
        claims: &mut ClaimBook,
    ) -> Result<(), Stopped> {
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = dead_letter_reason(DECODE_ERROR_TYPE, &error, 0);
                return self.dead_letter(p, record, reason).await;
            }
        };
        let span = Span::current();
        span.record("event_id", tracing::field::display(envelope.event_id));
        if let Some(trace_id) = &envelope.trace_id {
            span.record("trace_id", trace_id.as_str());
        }
        if let (Some(idempotency), Some(key)) = (&self.idempotency, &key)
            && self.resolve_claim(p, idempotency, key, claims).await? == Claim::Done
        {
            self.stats.duplicate();
            debug!("duplicate event skipped");
            return Ok(());
        }
        let claim = key
            .as_ref()
            .zip(self.idempotency.as_ref())
            .map(|(key, idempotency)| ClaimMarker {
                key: key.clone(),
                done_ttl: idempotency.done_ttl,
            });
        let result = match self.handle_with_retries(p, record, envelope, claim).await {
            Ok(result) => result,
            Err(Stopped) => {
                claims.to_release.extend(key);
                return Err(Stopped);
            }
        };
        match result {
            Ok(()) => {
                self.stats.handled();
                claims.handled.extend(key);
                Ok(())
            }
            Err((error, attempts)) => {
                let reason = dead_letter_reason(error.type_name(), &error, attempts);
                // Whether or not it reaches the DLT now, the claim must not block a redelivery.
                claims.to_release.extend(key);
                self.dead_letter(p, record, reason).await
            }
        }
    }

    /// Claims the batch's keys in one call (fail-closed: waits while the store is unreachable).
    async fn claim_batch(
        &self,
        p: &Partition,
        keys: &[Option<String>],
    ) -> Result<ClaimBook, Stopped> {
        let Some(idempotency) = &self.idempotency else {
            return Ok(ClaimBook::default());
        };
        let mut seen = HashSet::new();
        let keys: Vec<String> = keys
            .iter()
            .flatten()
            .filter(|key| seen.insert(key.as_str()))
            .cloned()
            .collect();
        if keys.is_empty() {
            return Ok(ClaimBook::default());
        }
        let found = fail_closed(&p.stop, "claim", || {
            idempotency.store.claim(&keys, idempotency.lease)
        })
        .await?;
        Ok(ClaimBook {
            found: keys.into_iter().zip(found).collect(),
            ..ClaimBook::default()
        })
    }

    /// Decides a record's claim: the batch's answer, or (for a key seen earlier in the batch,
    /// or held by someone else) a fresh claim, waiting while another holder has it.
    async fn resolve_claim(
        &self,
        p: &Partition,
        idempotency: &Idempotency,
        key: &str,
        claims: &mut ClaimBook,
    ) -> Result<Claim, Stopped> {
        let mut claim = match claims.found.remove(key) {
            Some(claim) => claim,
            // Seen earlier in this batch: handled, or failed and still ours to run again.
            None if claims.handled.contains(key) => return Ok(Claim::Done),
            None => match claims.to_release.iter().position(|held| held == key) {
                Some(held) => {
                    claims.to_release.swap_remove(held);
                    Claim::Acquired
                }
                None => Claim::InProgress,
            },
        };
        let keys = [key.to_owned()];
        let mut waits = 0;
        while claim == Claim::InProgress {
            waits += 1;
            if waits == 1 {
                debug!("event claimed by another consumer; waiting");
            }
            sleep_or_stop(&p.stop, WAIT.delay(waits)).await?;
            let found = fail_closed(&p.stop, "claim", || {
                idempotency.store.claim(&keys, idempotency.lease)
            })
            .await?;
            claim = found.first().copied().unwrap_or(Claim::InProgress);
        }
        Ok(claim)
    }

    /// Confirms what was handled and releases what was not.
    async fn settle_claims(&self, p: &Partition, claims: ClaimBook) {
        let Some(idempotency) = &self.idempotency else {
            return;
        };
        if !claims.handled.is_empty() {
            let handled: Vec<String> = claims.handled.into_iter().collect();
            let confirm = || idempotency.store.confirm(&handled, idempotency.done_ttl);
            let confirmed = match fail_closed(&p.stop, "confirm", confirm).await {
                Ok(()) => Ok(()),
                // Stopping: one last try, so finished work is not left claimed until the lease ends.
                Err(Stopped) => confirm().await,
            };
            if let Err(error) = confirmed {
                warn!(
                    %error,
                    count = handled.len(),
                    "handled events not confirmed before stopping; their claims expire with the lease"
                );
            }
        }
        let unstarted = claims
            .found
            .into_iter()
            .filter(|(_, claim)| *claim == Claim::Acquired)
            .map(|(key, _)| key);
        let release: Vec<String> = claims.to_release.into_iter().chain(unstarted).collect();
        if release.is_empty() {
            return;
        }
        if let Err(error) = idempotency.store.release(&release).await {
            warn!(%error, count = release.len(), "claims not released; they expire with the lease");
        }
    }

    /// Runs the handler, retrying retryable failures with backoff.
    /// `Ok(Err((error, attempts)))` is a failure to dead-letter.
    async fn handle_with_retries<R: ConsumedRecord + Sync>(
        &self,
        p: &Partition,
        record: &R,
        first: Envelope<L::Event>,
        claim: Option<ClaimMarker>,
    ) -> Result<Result<(), (HandlerError, u32)>, Stopped> {
        // The producer's trace: its envelope's `traceId` (ours and the seed's Kotlin producer
        // always write it, and it is decoded already), else the `traceparent` header. Reading a
        // header makes librdkafka unpack all of the record's headers, which costs the listener
        // about 8% of its throughput (`erp-events-bench consume`): only when needed.
        let parent = first
            .trace_id
            .as_deref()
            .and_then(TraceContext::continuing)
            .or_else(|| record.traceparent().and_then(TraceContext::parse));
        let mut context = EventContext::new().continuing_record(RecordTrace(parent));
        if let Some(user) = &first.user_id {
            context = context.with_user(user.clone());
        }
        if let Some(claim) = claim {
            context = context.with_claim(claim);
        }
        let mut next = Some(first);
        let mut attempt = 1;
        loop {
            Span::current().record("attempt", attempt);
            let result = match next.take() {
                Some(envelope) => Ok(envelope),
                // A retry decodes the record again: events need not be `Clone`.
                None => Envelope::decode_event(record.value().unwrap_or_default())
                    .map_err(HandlerError::permanent),
            };
            let result = match result {
                Ok(envelope) => {
                    context
                        .clone()
                        .scope(self.listener.handle(envelope, &self.state))
                        .await
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => return Ok(Ok(())),
                Err(error) if error.is_permanent() || attempt > self.options.retries => {
                    return Ok(Err((error, attempt)));
                }
                Err(error) => {
                    self.stats.retried();
                    let delay = self.options.backoff.delay(attempt);
                    warn!(%error, attempt, ?delay, "handler failed; retrying");
                    sleep_or_stop(&p.stop, delay).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// Publishes `record` to its dead-letter topic, retrying until it is there.
    async fn dead_letter(
        &self,
        p: &Partition,
        record: &(impl ConsumedRecord + Sync),
        reason: DeadLetterReason,
    ) -> Result<(), Stopped> {
        let record = &record.to_record(p.topic);
        warn!(
            reason = %reason.message,
            error_type = %reason.error_type,
            attempts = reason.attempts,
            "sending record to the dead-letter topic"
        );
        let headers = dead_letter_headers(record, L::GROUP, &reason);
        let mut failures = 0;
        loop {
            let published = tokio::select! {
                biased;
                _ = p.stop.cancelled() => return Err(Stopped),
                published = self.dead_letters.publish(record, headers.clone()) => published,
            };
            match published {
                Ok(()) => {
                    self.stats.dead_lettered();
                    return Ok(());
                }
                Err(error) => {
                    failures += 1;
                    error!(%error, failures, "dead-letter publish failed; the record stays uncommitted and is tried again");
                    sleep_or_stop(&p.stop, WAIT.delay(failures)).await?;
                }
            }
        }
    }
}

/// The longest reason written to a dead letter's header: an error quoting a huge value must
/// not make a huge header.
const MAX_REASON_BYTES: usize = 1024;

/// Why a record is dead-lettered, its message cut to [`MAX_REASON_BYTES`].
fn dead_letter_reason(
    error_type: &str,
    error: &dyn std::fmt::Display,
    attempts: u32,
) -> DeadLetterReason {
    let mut message = error.to_string();
    if message.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    DeadLetterReason {
        error_type: error_type.to_owned(),
        message,
        attempts,
    }
}

/// Calls the store until it answers, backing off while it is unreachable (fail-closed).
async fn fail_closed<'a, T>(
    stop: &CancellationToken,
    operation: &str,
    mut call: impl FnMut() -> StoreFuture<'a, T>,
) -> Result<T, Stopped> {
    let mut failures = 0;
    loop {
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => return Err(Stopped),
            result = call() => result,
        };
        match result {
            Ok(value) => {
                if failures > 0 {
                    warn!(
                        operation,
                        failures, "idempotency store answers again; resuming"
                    );
                }
                return Ok(value);
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    error!(%error, operation, "idempotency store unreachable; this partition waits (nothing is handled without the check)");
                }
                sleep_or_stop(stop, WAIT.delay(failures)).await?;
            }
        }
    }
}

/// Type-erased access to a listener's runtime, for transports that route by topic.
pub(crate) trait Route: Send + Sync + 'static {
    /// The listener's topic.
    fn topic(&self) -> &'static str;
    /// The listener's consumer group.
    fn group(&self) -> &'static str;
    /// The handler's name.
    fn name(&self) -> &'static str;
    /// Its counters.
    fn stats(&self) -> Arc<ListenerStats>;
    /// Starts a worker for one partition.
    fn start_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: mpsc::Receiver<Record>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
    /// Starts a worker for one Kafka partition, reading its queue in place.
    fn start_kafka_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: KafkaPartitionQueue,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<L: Listener> Route for ListenerRuntime<L> {
    fn topic(&self) -> &'static str {
        <L::Event as crate::event::Event>::TOPIC
    }

    fn group(&self) -> &'static str {
        L::GROUP
    }

    fn name(&self) -> &'static str {
        L::NAME
    }

    fn stats(&self) -> Arc<ListenerStats> {
        self.stats.clone()
    }

    fn start_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: mpsc::Receiver<Record>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.run_partition(partition, queue))
    }

    fn start_kafka_partition(
        self: Arc<Self>,
        partition: Partition,
        queue: KafkaPartitionQueue,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { self.run_partition(partition, queue.stream()).await })
    }
}
