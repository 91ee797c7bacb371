//! The task-scoped event context: who acts and in which trace, for everything published inside.

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use crate::trace::TraceContext;

tokio::task_local! {
    static CURRENT: EventContext;
}

/// Reads the trace a handler continues from the record it handles.
pub(crate) type RecordTrace<'a> = dyn Fn() -> TraceContext + Sync + 'a;

thread_local! {
    /// While a listener's handler is being polled (and only then): its record's trace reader.
    static RECORD_TRACE: Cell<Option<*const RecordTrace<'static>>> = const { Cell::new(None) };
}

/// What a publisher adds to every envelope it writes inside [`EventContext::scope`]: the user
/// (`userId`) and the trace (`traceId` and the `traceparent` header).
///
/// Listeners run every handler inside the context of the record being handled, so events a
/// handler publishes continue the same trace on behalf of the same user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventContext {
    user_id: Option<String>,
    trace: OnceLock<TraceContext>,
    claim: Option<ClaimMarker>,
    /// The trace is the handled record's, read on first use (see [`continuing_record`]).
    continues_record: bool,
}

/// The idempotency claim of the event an idempotent listener is handling: the key that becomes
/// `done`, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimMarker {
    /// `erp:idem:<group>:<eventId>`.
    pub(crate) key: String,
    /// How long the `done` marker is kept.
    pub(crate) done_ttl: Duration,
}

impl EventContext {
    /// An empty context: no user, and a new trace for each record published.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the acting user.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the trace to continue.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = OnceLock::from(trace);
        self
    }

    /// Continues the trace of the record being handled, read from its `traceparent` only when
    /// something inside asks for the context: a handler that publishes nothing costs no header
    /// parsing.
    pub(crate) fn continuing_record(mut self) -> Self {
        self.continues_record = true;
        self
    }

    /// Sets the claim of the event being handled.
    pub(crate) fn with_claim(mut self, claim: ClaimMarker) -> Self {
        self.claim = Some(claim);
        self
    }

    /// The claim of the event being handled, inside an idempotent listener's handler.
    pub(crate) fn claim(&self) -> Option<&ClaimMarker> {
        self.claim.as_ref()
    }

    /// The acting user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The trace to continue, if any.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.get()
    }

    /// The context of the current task, or an empty one outside any scope.
    pub fn current() -> EventContext {
        CURRENT
            .try_with(|context| {
                if context.continues_record && context.trace.get().is_none() {
                    let trace = RECORD_TRACE.get().map(|read| {
                        // SAFETY: set only while `continuing_record`'s future polls the
                        // handler, which borrows the reader for longer (see there).
                        unsafe { (*read)() }
                    });
                    if let Some(trace) = trace {
                        // The first read in this handler's run fixes its span for the rest.
                        let _ = context.trace.set(trace);
                    }
                }
                EventContext {
                    continues_record: false,
                    ..context.clone()
                }
            })
            .unwrap_or_default()
    }

    /// Runs `future` with this context as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

/// Polls `future` with `read` as the trace reader of the record it handles, for the contexts
/// inside that continue it ([`EventContext::continuing_record`]).
pub(crate) async fn continuing_record<F: Future>(read: &RecordTrace<'_>, future: F) -> F::Output {
    /// Puts back the reader of an enclosing poll, also when the poll panics.
    struct Restore(Option<*const RecordTrace<'static>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            RECORD_TRACE.set(self.0);
        }
    }
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        let read: *const RecordTrace<'_> = read;
        // SAFETY: only the lifetime bound is erased. The pointer is readable only through
        // `RECORD_TRACE` during this poll, while `read` is borrowed by this future.
        let read = unsafe {
            std::mem::transmute::<*const RecordTrace<'_>, *const RecordTrace<'static>>(read)
        };
        let _restore = Restore(RECORD_TRACE.replace(Some(read)));
        future.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_scoped_to_its_future() {
        assert_eq!(EventContext::current(), EventContext::new());
        let trace = TraceContext::new_root();
        let context = EventContext::new().with_user("u-1").with_trace(trace);
        let seen = context
            .clone()
            .scope(async { EventContext::current() })
            .await;
        assert_eq!(seen, context);
        assert_eq!(EventContext::current().user_id(), None);
    }

    #[tokio::test]
    async fn a_record_trace_is_read_once_and_only_when_asked_for() {
        let parent = TraceContext::new_root();
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let read = || {
            reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            parent.child()
        };
        let context = EventContext::new().continuing_record();
        continuing_record(&read, context.clone().scope(async {})).await;
        assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 0);

        let (first, second) = continuing_record(
            &read,
            context.scope(async { (EventContext::current(), EventContext::current()) }),
        )
        .await;
        assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 1);
        let trace = first.trace().expect("the record's trace");
        assert_eq!(trace.trace_id_hex(), parent.trace_id_hex());
        assert_eq!(second.trace(), Some(trace));
    }

    #[tokio::test]
    async fn a_record_trace_is_not_readable_outside_its_handler() {
        let context = EventContext::new().continuing_record();
        let escaped = context.scope(async { EventContext::current() }).await;
        assert_eq!(escaped.trace(), None);
    }
}
