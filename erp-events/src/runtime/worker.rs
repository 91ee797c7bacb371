//! Processing one partition of one listener: records in order, each claimed, handled with
//! retries or dead-lettered, and only then marked done for the transport. Claims are taken per
//! batch (one store round trip, see [`crate::runtime::claims`]), renewed while the batch is
//! worked on and confirmed `done` as their records are handled, and a batch's offset is stored
//! only once its handled records are confirmed.
//!
//! A worker never panics on input and never reports an offset whose record was neither handled
//! nor dead-lettered. When the idempotency store or the dead-letter topic is unreachable it
//! waits, retrying with backoff, and its queue fills until the transport stops fetching for it.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, error, warn};

use crate::core::context::{ClaimMarker, EventContext, RecordTrace};
use crate::core::envelope::{DecodeError, Envelope, named_trace};
use crate::core::event::Event;
use crate::core::listener::{HandlerError, Listener, ListenerOptions};
use crate::core::spans;
use crate::core::trace::{TRACEPARENT, TraceContext};
use crate::idempotency::{Claim, idempotency_key};
use crate::runtime::claims::{ClaimBook, Idempotency};
use crate::runtime::dlt::{DECODE_ERROR_TYPE, DeadLetterReason};
use crate::runtime::record::Record;
use crate::runtime::sinks::{DeadLetterSink, OffsetSink};
use crate::runtime::stats::{Busy, ListenerStats};
use crate::runtime::stop::{
    Stopped, Waiting, sleep_unless_stopped, unless_stopped, until_it_works,
};

/// Records taken from the queue, claimed and confirmed together.
pub(crate) const MAX_BATCH: usize = 64;

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

/// One partition's place in its transport.
pub(crate) struct Partition {
    pub(crate) topic: &'static str,
    pub(crate) partition: i32,
    pub(crate) offsets: Arc<dyn OffsetSink>,
    pub(crate) stop: CancellationToken,
}

/// Where a partition's worker takes its records from, in order. While the worker is busy it
/// takes nothing (and while it waits for its turn, one record), and the source's bound (the
/// consumer's budget, a bounded queue) holds the rest back.
pub(crate) trait RecordSource: Send {
    /// The next record, waiting for one; `None` once the source is closed.
    fn next_record(&mut self) -> impl Future<Output = Option<Record>> + Send;
    /// The next record if one is ready now, or `None` where the source ends a batch (the
    /// Kafka inbox at the end of a run).
    fn ready_record(&mut self) -> Option<Record>;
}

/// A record of a batch: unread, decoded, taken or unreadable. Its envelope stays in the batch
/// until the handler's first attempt takes it: an envelope is a few hundred bytes, and passed
/// by value, each future on the way copied it.
enum Decoded<E> {
    /// Not read yet.
    Unread,
    /// Decoded, not yet taken.
    Envelope(Envelope<E>),
    /// Taken by the handler's first attempt.
    Taken,
    /// Why it could not be read.
    Unreadable(DecodeError),
}

impl<E: Event> Decoded<E> {
    /// Decodes `record`'s value into the slot, unless it was read already.
    fn read(&mut self, record: &Record) {
        if let Decoded::Unread = self {
            *self = match Envelope::decode_event(record.value().unwrap_or_default()) {
                Ok(envelope) => Decoded::Envelope(envelope),
                Err(error) => Decoded::Unreadable(error),
            };
        }
    }
}

impl<E> Decoded<E> {
    /// The envelope, unless unread, unreadable or taken.
    fn envelope(&self) -> Option<&Envelope<E>> {
        match self {
            Decoded::Envelope(envelope) => Some(envelope),
            Decoded::Unread | Decoded::Taken | Decoded::Unreadable(_) => None,
        }
    }

    /// Takes the envelope out, leaving `Taken`; `None` if unread, unreadable or taken already.
    fn take(&mut self) -> Option<Envelope<E>> {
        match std::mem::replace(self, Decoded::Taken) {
            Decoded::Envelope(envelope) => Some(envelope),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// A record as its batch prepared it: decoded, its idempotency key (for an idempotent
/// listener), and its producer's trace.
struct Incoming<'a, E> {
    decoded: &'a mut Decoded<E>,
    key: Option<String>,
    parent: Option<TraceContext>,
}

/// What became of a record; each lets its offset be stored.
enum Outcome {
    Handled,
    Skipped,
    DeadLettered,
}

/// How a record's attempts ended.
enum Attempts {
    Succeeded,
    GaveUp { error: HandlerError, attempts: u32 },
}

impl<L: Listener> ListenerRuntime<L> {
    /// Processes `source` until it closes or `partition.stop` fires.
    pub(crate) async fn run_partition<S: RecordSource>(
        self: Arc<Self>,
        partition: Partition,
        mut source: S,
    ) {
        let stop = &partition.stop;
        let busy = self.stats.busy(partition.partition);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut decoded = Vec::with_capacity(MAX_BATCH);
        while let Ok(Some(first)) = unless_stopped(stop, source.next_record()).await {
            // The permit before the rest of the batch: what a worker takes leaves its source's
            // bound (the consumer's budget), so a worker waiting for its turn holds one record.
            let Ok(permit) = unless_stopped(stop, self.concurrency.acquire()).await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match source.ready_record() {
                    Some(record) => batch.push(record),
                    None => break,
                }
            }
            #[cfg(feature = "test-util")]
            batch
                .iter()
                .for_each(|record| crate::runtime::fault::kill_worker_on(record.value()));
            self.stats.received(batch.len());
            let processed = pin!(self.process_batch(&partition, &busy, &batch, &mut decoded)).await;
            drop(permit);
            // Nothing of a batch outlives it while the partition waits for the next one.
            batch.clear();
            decoded.clear();
            if processed.is_err() {
                return;
            }
        }
    }

    async fn process_batch(
        &self,
        p: &Partition,
        busy: &Busy,
        batch: &[Record],
        decoded: &mut Vec<Decoded<L::Event>>,
    ) -> Result<(), Stopped> {
        // Every slot starts unread (`read` keeps what a slot holds).
        decoded.clear();
        decoded.resize_with(batch.len(), || Decoded::Unread);
        let (keys, claims) = match &self.idempotency {
            // The batch is claimed in one round trip, so an idempotent listener reads it first.
            Some(idempotency) => {
                let keys: Vec<Option<String>> = decoded
                    .iter_mut()
                    .zip(batch)
                    .map(|(slot, record)| {
                        slot.read(record);
                        let envelope = slot.envelope()?;
                        Some(idempotency_key(L::GROUP, &envelope.event_id))
                    })
                    .collect();
                let offset = batch.first().map_or(-1, |record| record.offset);
                let claims = idempotency
                    .claim_batch(&self.waiting(p, offset), &keys)
                    .await?;
                (keys, claims)
            }
            None => (vec![None; batch.len()], ClaimBook::default()),
        };
        let renewal = self.idempotency.as_ref().zip(claims.lease());
        let work = pin!(self.work_through(p, busy, batch, decoded, keys, claims));
        match renewal {
            // The claims are renewed for as long as the batch is worked on.
            Some((idempotency, lease)) => tokio::select! {
                biased;
                outcome = work => outcome,
                never = idempotency.keep_alive(lease) => match never {},
            },
            None => work.await,
        }
    }

    /// Handles the claimed batch's records in order, then settles their claims and stores the
    /// offset of the last one done.
    async fn work_through(
        &self,
        p: &Partition,
        busy: &Busy,
        batch: &[Record],
        decoded: &mut [Decoded<L::Event>],
        keys: Vec<Option<String>>,
        mut claims: ClaimBook,
    ) -> Result<(), Stopped> {
        let mut outcome = Ok(());
        let mut done = None;
        for ((record, slot), key) in batch.iter().zip(decoded).zip(keys) {
            if p.stop.is_cancelled() {
                // Revoked or shutting down: the rest of the batch is redelivered.
                outcome = Err(Stopped);
                break;
            }
            // Read as it comes (if not read for its claim): what decoding allocates is freed
            // before the next record is read, and the allocator hands the same memory out again.
            slot.read(record);
            let span = tracing::info_span!(
                "erp.record",
                topic = p.topic,
                partition = p.partition,
                offset = record.offset,
                group = L::GROUP,
                listener = L::NAME,
                event_id = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                attempt = tracing::field::Empty,
            );
            let envelope = slot.envelope();
            if let Some(envelope) = envelope {
                span.record("event_id", tracing::field::display(envelope.event_id));
                if let Some(trace_id) = &envelope.trace_id {
                    span.record("trace_id", trace_id.as_str());
                }
            }
            let parent = producer_trace(record, envelope, &span);
            spans::continue_trace(&span, parent.as_ref());
            let incoming = Incoming {
                decoded: slot,
                key,
                parent,
            };
            // Futures are pinned where they are made (here and below): awaiting one by value
            // moves all of it once more, and a record's is a few KiB (every path it may take,
            // retries and the dead letter included). A span nobody listens to is not entered.
            let processing = pin!(self.process_record(p, busy, record, incoming, &mut claims));
            let processed = if span.is_disabled() {
                processing.await
            } else {
                processing.instrument(span).await
            };
            match processed {
                Ok(Outcome::Handled) => self.stats.handled(),
                Ok(Outcome::Skipped) => self.stats.duplicate(),
                Ok(Outcome::DeadLettered) => self.stats.dead_lettered(),
                Err(Stopped) => {
                    outcome = Err(Stopped);
                    break;
                }
            }
            done = Some(record.offset);
        }
        // The `done` markers first, then the offsets (fail closed, DESIGN §5): while the store
        // is unreachable nothing is committed past a record whose marker is not written, and a
        // crash in between is a redelivery that the markers skip.
        let confirmed = match &self.idempotency {
            Some(idempotency) => {
                idempotency
                    .settle(&self.waiting(p, done.unwrap_or(-1)), claims)
                    .await
            }
            None => true,
        };
        if let (Some(offset), true) = (done, confirmed) {
            p.offsets.store(p.topic, p.partition, offset);
        }
        outcome
    }

    async fn process_record(
        &self,
        p: &Partition,
        busy: &Busy,
        record: &Record,
        incoming: Incoming<'_, L::Event>,
        claims: &mut ClaimBook,
    ) -> Result<Outcome, Stopped> {
        let Incoming {
            decoded,
            key,
            parent,
        } = incoming;
        if let Decoded::Unreadable(error) = &*decoded {
            let reason = DeadLetterReason::new(DECODE_ERROR_TYPE, error, 0);
            return self.dead_letter(p, record, reason).await;
        }
        let claim = match (&self.idempotency, &key) {
            (Some(idempotency), Some(key)) => {
                let waiting = self.waiting(p, record.offset);
                if idempotency.resolve(&waiting, key, claims).await? == Claim::Done {
                    debug!("duplicate event skipped");
                    return Ok(Outcome::Skipped);
                }
                Some(ClaimMarker {
                    key: key.clone(),
                    owner: claims.owner().to_owned(),
                    done_ttl: idempotency.done_ttl,
                })
            }
            _ => None,
        };
        let handling = pin!(self.handle_with_retries(p, busy, record, decoded, (parent, claim)));
        match handling.await {
            Ok(Attempts::Succeeded) => {
                if let Some(idempotency) = &self.idempotency {
                    let waiting = self.waiting(p, record.offset);
                    idempotency.handled(&waiting, claims, key).await;
                }
                Ok(Outcome::Handled)
            }
            Ok(Attempts::GaveUp { error, attempts }) => {
                let reason = DeadLetterReason::new(error.type_name(), &error, attempts);
                // Whether or not it reaches the DLT now, the claim must not block a redelivery.
                claims.release(key);
                self.dead_letter(p, record, reason).await
            }
            Err(Stopped) => {
                claims.release(key);
                Err(Stopped)
            }
        }
    }

    /// Runs the handler, retrying retryable failures with backoff.
    async fn handle_with_retries(
        &self,
        p: &Partition,
        busy: &Busy,
        record: &Record,
        decoded: &mut Decoded<L::Event>,
        (parent, claim): (Option<TraceContext>, Option<ClaimMarker>),
    ) -> Result<Attempts, Stopped> {
        let envelope = decoded.envelope();
        let delivered = spans::Delivered {
            system: self.dead_letters.system(),
            topic: p.topic,
            group: L::GROUP,
            partition: p.partition,
            offset: record.offset,
            key: record.key(),
            event_id: envelope.map(|envelope| envelope.event_id),
        };
        let mut context = EventContext::new().continuing_record(RecordTrace(parent));
        if let Some(user) = envelope.and_then(|envelope| envelope.user_id.clone()) {
            context = context.with_user(user);
        }
        if let Some(claim) = claim {
            context = context.with_claim(claim);
        }
        let mut attempt = 1;
        loop {
            Span::current().record("attempt", attempt);
            let result = match decoded.take() {
                Some(envelope) => Ok(envelope),
                // A retry decodes the record again: events need not be `Clone`.
                None => Envelope::decode_event(record.value().unwrap_or_default())
                    .map_err(HandlerError::permanent),
            };
            let span = spans::process(&delivered, attempt);
            spans::link_to(&span, parent.as_ref());
            let result = match result {
                Ok(envelope) => {
                    // What the handler publishes continues from this attempt's span.
                    let context = match spans::trace_of(&span) {
                        Some(trace) => context.clone().with_trace(trace),
                        None => context.clone(),
                    };
                    busy.start();
                    let handling = pin!(context.scope(self.listener.handle(envelope, &self.state)));
                    // A panic is a failed attempt: the worker, its partition and the records
                    // after this one go on. So is running past the timeout.
                    let attempt = AssertUnwindSafe(handling).catch_unwind();
                    let limited = async {
                        match self.options.timeout {
                            Some(limit) => tokio::time::timeout(limit, attempt)
                                .await
                                .unwrap_or_else(|_| Ok(Err(HandlerError::timed_out(limit)))),
                            None => attempt.await,
                        }
                    };
                    let outcome = if span.is_disabled() {
                        limited.await
                    } else {
                        limited.instrument(span.clone()).await
                    };
                    let result = outcome.unwrap_or_else(|panic| Err(HandlerError::panicked(panic)));
                    let took = busy.end();
                    let error_type = result.as_ref().err().map(HandlerError::type_name);
                    self.stats.attempted(p.partition, took, error_type);
                    result
                }
                Err(error) => Err(error),
            };
            if let Err(error) = &result {
                spans::failed(&span, error.type_name());
            }
            drop(span);
            match result {
                Ok(()) => return Ok(Attempts::Succeeded),
                Err(error) if error.is_permanent() || attempt > self.options.retries => {
                    return Ok(Attempts::GaveUp {
                        error,
                        attempts: attempt,
                    });
                }
                Err(error) => {
                    self.stats.retried();
                    let delay = self.options.backoff.delay(attempt);
                    warn!(%error, attempt, ?delay, "handler failed; retrying");
                    sleep_unless_stopped(&p.stop, delay).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// How `p` waits at `offset` on something failing.
    fn waiting<'a>(&'a self, p: &'a Partition, offset: i64) -> Waiting<'a> {
        let at = (L::GROUP, p.topic, p.partition, offset);
        Waiting {
            stop: &p.stop,
            at,
            stats: &self.stats,
        }
    }

    /// Publishes `record` to its dead-letter topic, retrying until it is there.
    async fn dead_letter(
        &self,
        p: &Partition,
        record: &Record,
        reason: DeadLetterReason,
    ) -> Result<Outcome, Stopped> {
        warn!(
            reason = %reason.message,
            error_type = %reason.error_type,
            attempts = reason.attempts,
            "sending record to the dead-letter topic"
        );
        let publish = || self.dead_letters.publish(record, L::GROUP, &reason);
        let waiting = self.waiting(p, record.offset);
        let dead_letter_topic = <L::Event as Event>::DEAD_LETTER_TOPIC;
        let span = spans::send(self.dead_letters.system(), dead_letter_topic, None);
        let sent = until_it_works(
            &waiting,
            "the dead-letter topic",
            publish,
            |error, failures| {
                error!(%error, failures, "dead-letter publish failed; the record stays uncommitted and is tried again");
            },
        );
        if span.is_disabled() {
            sent.await?;
        } else {
            sent.instrument(span).await?;
        }
        Ok(Outcome::DeadLettered)
    }
}

/// Whether a record's `erp.record` span would be recorded to continue its producer's own span,
/// which only the record's `traceparent` header names (see [`producer_trace`]): with the
/// `otel` feature, when a subscriber takes the span. A Kafka consumer asks as it polls, to
/// copy the headers then.
pub(crate) fn records_continue_producers_spans() -> bool {
    cfg!(feature = "otel") && tracing::span_enabled!(tracing::Level::INFO)
}

/// The producer's position in its trace, which the record's spans continue: its envelope's
/// `traceId` (ours and the seed's Kotlin producer always write it, and it is decoded already;
/// for an envelope that does not decode, the one its bytes name), else the `traceparent`
/// header: when the envelope names no trace, or when OpenTelemetry records the spans
/// (`traceparent` names the producer's span itself).
fn producer_trace<E>(
    record: &Record,
    envelope: Option<&Envelope<E>>,
    span: &Span,
) -> Option<TraceContext> {
    let from_header = || record.header_str(TRACEPARENT).and_then(TraceContext::parse);
    let from_envelope = || {
        let trace_id = match envelope {
            Some(envelope) => envelope.trace_id.as_deref()?,
            None => named_trace(record.value()?)?,
        };
        TraceContext::continuing(trace_id)
    };
    if cfg!(feature = "otel") && !span.is_disabled() {
        from_header().or_else(from_envelope)
    } else {
        from_envelope().or_else(from_header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::record::{RunBuffer, Timestamp};

    /// No headers to copy.
    type Unread<'a> = std::iter::Empty<(&'a str, Option<&'a [u8]>)>;

    #[test]
    fn a_record_that_does_not_decode_continues_the_trace_its_bytes_name() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        // Not an envelope (no version, say), its headers left at the broker for its `traceId`.
        let value = format!(r#"{{"eventId":"e","traceId":"{id}"}}"#);
        let mut run = RunBuffer::new();
        let unread: Option<Unread> = None;
        let value = Some(value.as_bytes());
        run.push(("t", 0, 0), None, value, unread, Timestamp::NotAvailable);
        let record = &run.into_records()[0];
        let trace = producer_trace::<()>(record, None, &Span::none());
        assert_eq!(trace.map(|trace| trace.trace_id_hex()), Some(id.to_owned()));
    }
}
